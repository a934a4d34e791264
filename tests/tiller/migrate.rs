//! Against a real Tiller v2.17.0 and the Helm 2 client, built from source by
//! `scripts/testenv build` and run against the real test environment:
//! releases are installed by the real Helm 2 client, stored by Tiller
//! itself, read back by helm-bulk, migrated into Helm 4 and Helm 3, and
//! restored into an empty Tiller.

use super::*;
use cluster::{Helm, TestEnv};
use helm2_fixture::{Helm2History, Helm2Release, helm2_statuses};
use real::RealTiller;

#[test]
fn real_tiller_save_show_migrate_and_restore() {
    // Owned: the cluster is wiped ("lost") between the migrations.
    let env = TestEnv::start();
    let w = Work::new();
    let src = RealTiller::start(&env, "src", "configmap", false);
    let before = install_helm2_fixtures(&env, &w, &src);
    // web's Helm 2 history, which the migration keeps (as `helm 2to3` does).
    let web_history = Helm2History::record(&src);
    let (snap, stored) = save_over_grpc_and_from_storage(&env, &w, &src);
    show_helm2_snapshots(&w, &snap, &stored, &before);
    drop(src);
    migrate_into_helm4(&env, &w, &snap, &before);
    web_history.verify(&env, Helm::V4, "into Helm 4");
    migrate_into_helm3(&env, &w, &stored, &before);
    web_history.verify(&env, Helm::V3, "into Helm 3");
    rollback_after_the_migration(&env);
    let dst = restore_into_an_empty_tiller(&env, &w, &snap, &before);
    second_load_into_tiller_changes_nothing(&w, &dst, &snap);
    upgrade_in_tiller(&w, &dst, &snap, &before);
    reinstall_under_a_deleted_name(&env, &w, &dst, &snap, &before);
    replace_in_tiller(&env, &w, &dst, &snap, &before);
    save_from_tiller_secrets(&env, &w, &dst, &before);
}

/// `helm-bulk load -i KEY FILE` with `helm`: a migration into Helm 3/4.
fn migrate(env: &TestEnv, w: &Work, helm: Helm, file: &Path) -> Output {
    bulk(
        env,
        w,
        helm,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    )
}

/// `save --source tiller-storage` of Tiller's ConfigMaps in `namespace`.
fn save_from_storage(env: &TestEnv, w: &Work, namespace: &str, file: &Path) -> Output {
    bulk(
        env,
        w,
        Helm::V4,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--tiller-namespace",
            namespace,
            "-r",
            &w.recipient,
            "-o",
            file.to_str().unwrap(),
        ],
    )
}

/// helm-bulk with `args`, pointed at `env` with the helm of `helm`.
fn bulk(env: &TestEnv, w: &Work, helm: Helm, args: &[&str]) -> Output {
    let mut c = w.cmd();
    env.configure(&mut c);
    c.env("HELM_BIN", env.helm_bin(helm))
        .env("HELM_HOME", &w.helm_home)
        .args(args);
    no_cluster::run(&mut c)
}

/// Releases installed by the real Helm 2 client, through Tiller, and recorded as they are before the save.
fn install_helm2_fixtures(env: &TestEnv, w: &Work, src: &RealTiller) -> [Helm2Release; 2] {
    let chart = real::chart();
    // Tiller 2.17 creates a crd-install hook's CRD, then waits for it as an
    // apiextensions.k8s.io/v1beta1 CRD, which Kubernetes 1.22 and later no
    // longer serve: the hook fails on this API server. As Helm 2 users on
    // such clusters did, the CRD is applied first and the releases are
    // installed with --no-crd-hook; their records still hold the hook.
    let failed = src.helm2(&["install", &chart, "--name", "web", "--namespace", "h2app"]);
    assert!(
        !failed.status.success() && text(&failed.stderr).contains("unable to convert to CRD type"),
        "Tiller's crd-install hook on Kubernetes 1.37: {}",
        text(&failed.stderr)
    );
    env.kubectl(["get", "crd", "widgets.legacy2.example.com"]);
    src.helm2_ok(&[
        "install",
        &chart,
        "--name",
        "web",
        "--namespace",
        "h2app",
        "--no-crd-hook",
        "--set",
        "db.password=s3cr3t-web-1",
    ]);
    src.helm2_ok(&[
        "upgrade",
        "web",
        &chart,
        "--set",
        "db.password=s3cr3t-web-2,replicas=3",
    ]);
    let values_file = w.path("db-values.yaml");
    std::fs::write(
        &values_file,
        "greeting: from-a-file\ndb:\n  password: s3cr3t-db\n",
    )
    .unwrap();
    src.helm2_ok(&[
        "install",
        &chart,
        "--name",
        "db",
        "--namespace",
        "h2data",
        "--no-crd-hook",
        "-f",
        values_file.to_str().unwrap(),
    ]);
    src.helm2_ok(&[
        "install",
        &chart,
        "--name",
        "gone",
        "--namespace",
        "h2app",
        "--no-crd-hook",
    ]);
    src.helm2_ok(&["delete", "gone"]);
    assert_eq!(
        src.stored("configmap"),
        ["db.v1", "gone.v1", "web.v1", "web.v2"],
        "Tiller's own records"
    );
    let before = [
        Helm2Release::record(env, src, "h2app", "web"),
        Helm2Release::record(env, src, "h2data", "db"),
    ];
    assert_eq!(
        before[0].values,
        serde_json::json!({"db": {"password": "s3cr3t-web-2"}, "replicas": 3})
    );
    assert_eq!(
        before[1].values,
        serde_json::json!({"greeting": "from-a-file", "db": {"password": "s3cr3t-db"}})
    );
    assert_eq!(
        before[0].objects["ConfigMap/web-config"]["data"]["template"],
        "{{ .Values.x }}"
    );
    before
}

/// save over gRPC (one release a page) and from Tiller's ConfigMaps: the same records both ways. Returns the two snapshots.
fn save_over_grpc_and_from_storage(
    env: &TestEnv,
    w: &Work,
    src: &RealTiller,
) -> (PathBuf, PathBuf) {
    let snap = w.path("tiller.age");
    ok_saying(
        w.save(&src.host, &snap, &["--page-size", "1"]),
        "Saved 2 releases (3 revisions, 0 CRDs",
    );
    let stored = w.path("storage.age");
    ok_saying(
        save_from_storage(env, w, &src.namespace, &stored),
        "Saved 2 releases (3 revisions,",
    );
    // The same records both ways: what Tiller sends is what it stored.
    let (grpc_plain, storage_plain) = (w.path("grpc.age"), w.path("storage.age"));
    ok(w.save(&src.host, &grpc_plain, &[]));
    ok(save_from_storage(env, w, &src.namespace, &storage_plain));
    let (grpc_index, grpc_records) = records_of(&w.key, &grpc_plain);
    let (storage_index, storage_records) = records_of(&w.key, &storage_plain);
    assert_eq!(
        grpc_records.keys().collect::<Vec<_>>(),
        [
            "releases/h2app/web/1.pb",
            "releases/h2app/web/2.pb",
            "releases/h2data/db/1.pb"
        ]
    );
    assert_eq!(
        grpc_records.keys().collect::<Vec<_>>(),
        storage_records.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &grpc_records {
        let a = Release::decode(bytes.as_slice()).unwrap();
        let b = Release::decode(storage_records[path].as_slice()).unwrap();
        assert_eq!(a, b, "{path}: over gRPC and from storage");
    }
    assert_eq!(grpc_index.source.kind.to_string(), "tiller");
    assert_eq!(storage_index.source.driver, "configmap");
    let web2 = Release::decode(grpc_records["releases/h2app/web/2.pb"].as_slice()).unwrap();
    assert_eq!(
        web2.config.as_ref().unwrap().raw,
        "db:\n  password: s3cr3t-web-2\nreplicas: 3\n"
    );
    assert!(
        web2.hooks
            .iter()
            .any(|h| h.events == [Event::CrdInstall as i32]),
        "the crd-install hook: {:?}",
        web2.hooks
    );
    (snap, stored)
}

/// show of both snapshots.
fn show_helm2_snapshots(w: &Work, snap: &Path, stored: &Path, before: &[Helm2Release]) {
    let table = w.show(snap, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller), read over gRPC"),
        "{table}"
    );
    let web_line = table
        .lines()
        .find(|l| l.starts_with("h2app ") && l.contains(" web "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        web_line.contains(" 2 ")
            && web_line.contains("deployed")
            && web_line.contains("legacy2-1.4.2")
            && web_line.contains("2.0.1"),
        "{web_line}"
    );
    assert!(!table.contains(" gone "), "DELETED is not saved: {table}");
    let values: Value =
        serde_json::from_str(&w.show(snap, &["--values", "h2app/web", "-o", "json"])).unwrap();
    assert_eq!(values, before[0].values);
    let table = w.show(stored, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller) release storage (configmap)"),
        "{table}"
    );
}

/// The cluster is lost; migrate into Helm 4 (the gRPC snapshot).
fn migrate_into_helm4(env: &TestEnv, w: &Work, snap: &Path, before: &[Helm2Release]) {
    env.wipe();
    let out = ok(bulk(
        env,
        w,
        Helm::V4,
        &[
            "load",
            "-i",
            w.key.to_str().unwrap(),
            "--dry-run",
            snap.to_str().unwrap(),
        ],
    ));
    let plan = text(&out.stdout);
    for (release, revision) in [("h2app/web", "2"), ("h2data/db", "1")] {
        let line = plan
            .lines()
            .find(|l| l.starts_with(&format!("{release} ")))
            .unwrap_or_else(|| panic!("no {release} in\n{plan}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        // REVISION, CHART, ACTION and the preflight's verdict.
        assert_eq!(
            cells[1..5],
            [revision, "legacy2-1.4.2", "install", "ok"],
            "{line}"
        );
        // REASON: the history to write (web has 2 revisions, db 1).
        let history = if revision == "2" {
            "history: revisions 1-2 as saved (2 restored); would write 1-2; would remove helm's revision 1"
        } else {
            "history: revisions 1 as saved (1 restored); would write 1"
        };
        assert_eq!(cells[5..].join(" "), history, "{line}");
    }
    assert!(
        env.helm_list(Helm::V4).is_empty(),
        "a dry run installs nothing"
    );
    ok_saying(
        migrate(env, w, Helm::V4, snap),
        "Restored 2, skipped 0, failed 0",
    );
    for r in before {
        r.verify_migrated(env, Helm::V4, "into Helm 4");
    }
    env.kubectl(["get", "crd", "widgets.legacy2.example.com"]);
    ok_saying(migrate(env, w, Helm::V4, snap), "Nothing to install");
}

/// Lost again; migrate into Helm 3 (the storage snapshot).
fn migrate_into_helm3(env: &TestEnv, w: &Work, stored: &Path, before: &[Helm2Release]) {
    env.wipe();
    ok_saying(
        migrate(env, w, Helm::V3, stored),
        "Restored 2, skipped 0, failed 0",
    );
    for r in before {
        r.verify_migrated(env, Helm::V3, "into Helm 3");
    }
}

/// Rollback to the migrated revision 1 of web works (Helm 3).
fn rollback_after_the_migration(env: &TestEnv) {
    env.helm(Helm::V3, ["rollback", "web", "1", "-n", "h2app"]);
    let values: Value = serde_json::from_str(&env.helm(
        Helm::V3,
        ["get", "values", "web", "-n", "h2app", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(
        values,
        serde_json::json!({"db": {"password": "s3cr3t-web-1"}}),
        "revision 1's values after the rollback"
    );
    assert_eq!(
        env.kubectl([
            "get",
            "secret",
            "web-db",
            "-n",
            "h2app",
            "-o",
            "jsonpath={.data.password}"
        ]),
        base64::engine::general_purpose::STANDARD.encode("s3cr3t-web-1"),
        "revision 1's objects after the rollback"
    );
}

/// Lost again; restore into an empty Tiller (Secret storage this time).
fn restore_into_an_empty_tiller<'e>(
    env: &'e TestEnv,
    w: &Work,
    snap: &Path,
    before: &[Helm2Release],
) -> RealTiller<'e> {
    env.wipe();
    let dst = real::RealTiller::start(env, "dst", "secret", false);
    assert!(
        dst.helm2_ok(&["list", "--all", "--short"])
            .trim()
            .is_empty(),
        "an empty Tiller"
    );
    let out = ok(w.load_tiller(&dst.host, snap, &[]));
    assert!(
        text(&out.stderr).contains("Restored 2, skipped 0, failed 0"),
        "{}\n--- tiller log ---\n{}",
        text(&out.stderr),
        real::read_lossy(&dst.log())
    );
    let list = dst.helm2_ok(&["list", "--all"]);
    for (name, ns) in [("web", "h2app"), ("db", "h2data")] {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in helm2 list:\n{list}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(
            cells.contains(&"DEPLOYED")
                && cells.contains(&"legacy2-1.4.2")
                && cells.contains(&"2.0.1")
                && cells.contains(&ns),
            "{line}"
        );
    }
    for r in before {
        assert_eq!(
            helm2_values(&dst.helm2_ok(&["get", "values", r.name])),
            r.values,
            "values of {} in the restored Tiller",
            r.name
        );
        r.verify_objects(env, "restored into Tiller");
    }
    assert_eq!(dst.stored("secret"), ["db.v1", "web.v1"]);
    let notes = dst.helm2_ok(&["status", "web"]);
    assert!(
        notes.contains("web is installed. Literal: {{ not a template }}."),
        "{notes}"
    );
    dst
}

/// A second load changes nothing.
fn second_load_into_tiller_changes_nothing(w: &Work, dst: &RealTiller, snap: &Path) {
    ok_saying(w.load_tiller(&dst.host, snap, &[]), "Nothing to install");
}

/// `--upgrade`: a new revision from the snapshot's values (UpdateRelease with reset_values), the restored one superseded.
fn upgrade_in_tiller(w: &Work, dst: &RealTiller, snap: &Path, before: &[Helm2Release]) {
    ok_saying(
        w.load_tiller(&dst.host, snap, &["--upgrade", "--jobs", "2"]),
        "Restored 2, skipped 0, failed 0",
    );
    assert_eq!(
        helm2_statuses(dst, "web"),
        [(1, "SUPERSEDED".to_owned()), (2, "DEPLOYED".to_owned())]
    );
    assert_eq!(
        helm2_values(&dst.helm2_ok(&["get", "values", "web"])),
        before[0].values
    );
}

/// A deleted (not purged) release: its name is reused.
fn reinstall_under_a_deleted_name(
    env: &TestEnv,
    w: &Work,
    dst: &RealTiller,
    snap: &Path,
    before: &[Helm2Release],
) {
    dst.helm2_ok(&["delete", "db"]);
    ok_saying(
        w.load_tiller(&dst.host, snap, &[]),
        "Restored 1, skipped 1, failed 0",
    );
    assert_eq!(
        helm2_statuses(dst, "db"),
        [
            (1, "SUPERSEDED".to_owned()),
            (2, "SUPERSEDED".to_owned()),
            (3, "DEPLOYED".to_owned())
        ],
        "the --upgrade revision, deleted, then superseded by the reinstall"
    );
    assert_eq!(
        helm2_values(&dst.helm2_ok(&["get", "values", "db"])),
        before[1].values
    );
    before[1].verify_objects(env, "reinstalled under a deleted name");
}

/// `--replace`: purged, then installed again (its crd-install hook's CRD is still there, which Tiller cannot create twice).
fn replace_in_tiller(
    env: &TestEnv,
    w: &Work,
    dst: &RealTiller,
    snap: &Path,
    before: &[Helm2Release],
) {
    ok_saying(
        w.load_tiller(&dst.host, snap, &["--replace", "--include", "h2app/*"]),
        "replaced  h2app/web",
    );
    assert_eq!(helm2_statuses(dst, "web"), [(1, "DEPLOYED".to_owned())]);
    before[0].verify_objects(env, "replaced in Tiller");
}

/// Tiller's Secrets (tiller --storage=secret), one namespace's releases.
fn save_from_tiller_secrets(env: &TestEnv, w: &Work, dst: &RealTiller, before: &[Helm2Release]) {
    let secrets = w.path("secrets.age");
    ok(bulk(
        env,
        w,
        Helm::V3,
        &[
            "save",
            "--source",
            "tiller-storage",
            "--tiller-storage",
            "secret",
            "--tiller-namespace",
            &dst.namespace,
            "--include",
            "h2app/*",
            "-r",
            &w.recipient,
            "-o",
            secrets.to_str().unwrap(),
        ],
    ));
    let table = w.show(&secrets, &[]);
    assert!(table.contains("release storage (secret)"), "{table}");
    assert!(
        table.contains(" web ") && !table.contains(" db "),
        "{table}"
    );
    let values: Value =
        serde_json::from_str(&w.show(&secrets, &["--values", "h2app/web", "-o", "json"])).unwrap();
    assert_eq!(values, before[0].values);
}
