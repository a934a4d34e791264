//! Against the recording Tiller (`recording_tiller.rs`): the requests
//! helm-bulk sends (call order, client version, pages, GetHistory's max,
//! reset_values, purge, reuse_name), a Tiller of another 2.x minor, revisions
//! in states made on demand, and servers that are not a Helm 2 Tiller.

use super::*;

/// The fleet of the source Tiller: histories, a failed upgrade, a deleted
/// release, a crd-install hook, and enough releases for several list pages.
pub(crate) fn seed_fleet(t: &RecordingTiller) {
    t.seed(sample_release(
        "web",
        "prod",
        1,
        Code::Superseded,
        "password: s3cr3t-web-1\n",
        false,
    ));
    t.seed(sample_release(
        "web",
        "prod",
        2,
        Code::Deployed,
        "password: s3cr3t-web-2\nreplicas: 3\n",
        false,
    ));
    t.seed(sample_release(
        "db",
        "data",
        1,
        Code::Deployed,
        "password: s3cr3t-db\n",
        false,
    ));
    t.seed(sample_release(
        "db",
        "data",
        2,
        Code::Failed,
        "password: broken\n",
        false,
    ));
    t.seed(sample_release(
        "gone",
        "prod",
        1,
        Code::Deleted,
        "x: 1\n",
        false,
    ));
    t.seed(sample_release(
        "crds",
        "infra",
        1,
        Code::Deployed,
        "{}\n",
        true,
    ));
    for i in 0..4 {
        t.seed(sample_release(
            &format!("app{i}"),
            "apps",
            1,
            Code::Deployed,
            &format!("n: {i}\n"),
            false,
        ));
    }
}

/// save, show and load --to-tiller against the recording Tiller: the
/// requests helm-bulk sends, and the records and frozen charts it reads and
/// writes. A real Tiller's behaviour is tested in `migrate.rs`.
#[test]
fn save_show_and_load_through_tiller() {
    let w = Work::new();
    let src = RecordingTiller::start("v2.16.12");
    seed_fleet(&src);
    let snap = w.path("helm2.tar.gz.age");

    save_sends_what_tiller_expects(&w, &src, &snap);
    show_reads_helm2_records(&w, &src, &snap);
    status_all_and_namespace(&w, &src);
    let dst = RecordingTiller::start("v2.17.0");
    load_dry_run_plans_and_changes_nothing(&w, &dst, &snap);
    load_installs_every_frozen_chart(&w, &src, &dst, &snap);
    second_load_changes_nothing(&w, &dst, &snap);
    upgrade_resets_values(&w, &dst, &snap);
    replace_purges_then_installs(&w, &dst, &snap);
    a_deleted_name_is_reused(&w, &dst, &snap);
}

/// save pages ListReleases, asks GetHistory for every revision and sends Tiller's own version back; the records are the bytes Tiller sent.
fn save_sends_what_tiller_expects(w: &Work, src: &RecordingTiller, snap: &Path) {
    let out = ok(w.save(&src.host(), snap, &["--page-size", "2"]));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Saved 7 releases (9 revisions, 0 CRDs"),
        "{stderr}"
    );
    let calls = src.state.lock().unwrap().calls.clone();
    assert_eq!(calls[0].method, "GetVersion", "{calls:?}");
    assert!(
        calls[1..].iter().all(|c| c.client_version == "v2.16.12"),
        "{calls:?}"
    );
    assert!(
        src.calls("ListReleases").len() >= 4,
        "pages: {:?}",
        src.calls("ListReleases")
    );
    assert!(
        src.calls("GetHistory")
            .iter()
            .all(|c| c.detail == format!("max={}", i32::MAX))
    );

    // The records are the bytes Tiller sent, unchanged.
    let plain = w.path("helm2.age");
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host(),
        "-r",
        &w.recipient,
        "-o",
        plain.to_str().unwrap(),
    ]));
    let (index, records) = records_of(&w.key, &plain);
    assert_eq!(index.source.kind.to_string(), "tiller");
    assert_eq!(index.source.driver, "tiller");
    assert_eq!(index.cluster.server, format!("grpc://{}", src.host()));
    assert_eq!(records.len(), 9);
    for (name, ns) in [("web", "prod"), ("db", "data"), ("crds", "infra")] {
        for r in src.history(name) {
            let path = format!("releases/{ns}/{name}/{}.pb", r.version);
            assert_eq!(records[&path], r.encode_to_vec(), "{path}");
        }
    }
    assert!(
        !records.keys().any(|p| p.contains("/gone/")),
        "DELETED is not saved by default"
    );
}

/// show: Helm 2, Helm 3 style statuses, values.
fn show_reads_helm2_records(w: &Work, src: &RecordingTiller, snap: &Path) {
    let table = w.show(snap, &[]);
    assert!(
        table.contains("Source:   Helm 2 (Tiller), read over gRPC, created"),
        "{table}"
    );
    assert!(
        table.contains(&format!("from grpc://{}", src.host())),
        "{table}"
    );
    let web_line = table
        .lines()
        .find(|l| l.starts_with("prod ") && l.contains(" web "))
        .unwrap();
    assert!(
        web_line.contains(" 2 ")
            && web_line.contains("deployed")
            && web_line.contains("legacy-1.4.2")
            && web_line.contains("2.0.1"),
        "{web_line}"
    );
    let db_line = table.lines().find(|l| l.contains(" db ")).unwrap();
    assert!(db_line.contains("failed"), "{db_line}");
    let json: Value = serde_json::from_str(&w.show(snap, &["-o", "json", "--history"])).unwrap();
    let statuses: Vec<(String, u64, String)> = json["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "web" || r["name"] == "db")
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("db".to_owned(), 1, "deployed".to_owned()),
            ("db".to_owned(), 2, "failed".to_owned()),
            ("web".to_owned(), 1, "superseded".to_owned()),
            ("web".to_owned(), 2, "deployed".to_owned()),
        ]
    );
    assert_eq!(
        w.show(snap, &["--values", "prod/web"]),
        "password: s3cr3t-web-2\nreplicas: 3\n"
    );
    let values: Value =
        serde_json::from_str(&w.show(snap, &["--values", "prod/web", "-o", "json"])).unwrap();
    assert_eq!(
        values,
        serde_json::json!({"password": "s3cr3t-web-2", "replicas": 3})
    );
}

/// `--status all` and `-n`: the DELETED release too, one namespace.
fn status_all_and_namespace(w: &Work, src: &RecordingTiller) {
    let all = w.path("all.age");
    ok(w.run([
        "save",
        "--source",
        "tiller",
        "--tiller-host",
        &src.host(),
        "-r",
        &w.recipient,
        "-o",
        all.to_str().unwrap(),
        "--status",
        "all",
        "-n",
        "prod",
    ]));
    let (index, _) = records_of(&w.key, &all);
    let rows: Vec<(String, u32, String)> = index
        .releases
        .iter()
        .map(|r| (r.name.clone(), r.revision, r.status.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("gone".to_owned(), 1, "uninstalled".to_owned()),
            ("web".to_owned(), 1, "superseded".to_owned()),
            ("web".to_owned(), 2, "deployed".to_owned()),
        ]
    );
}

/// `load --to-tiller --dry-run`: the plan, nothing changed.
fn load_dry_run_plans_and_changes_nothing(w: &Work, dst: &RecordingTiller, snap: &Path) {
    let out = ok(w.load_tiller(&dst.host(), snap, &["--dry-run"]));
    let plan = text(&out.stdout);
    assert!(
        plan.starts_with("Plan (dry run, nothing was changed):"),
        "{plan}"
    );
    for (release, revision) in [("prod/web", "2"), ("data/db", "1"), ("infra/crds", "1")] {
        let line = plan
            .lines()
            .find(|l| l.starts_with(&format!("{release} ")))
            .unwrap_or_else(|| panic!("no {release} in\n{plan}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1..], [revision, "legacy-1.4.2", "install"], "{line}");
    }
    assert_eq!(plan.matches("install").count(), 7, "{plan}");
    assert!(dst.calls("InstallRelease").is_empty());
}

/// `load --to-tiller`: every release installed from its frozen chart.
fn load_installs_every_frozen_chart(
    w: &Work,
    src: &RecordingTiller,
    dst: &RecordingTiller,
    snap: &Path,
) {
    let out = ok(w.load_tiller(&dst.host(), snap, &[]));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Restored 7, skipped 0, failed 0"),
        "{stderr}"
    );
    let installs = dst.calls("InstallRelease");
    assert_eq!(installs.len(), 7);
    assert!(
        installs.iter().all(|c| c.client_version == "v2.17.0"),
        "{installs:?}"
    );
    let original = &src.history("web")[1];
    let restored = dst.history("web");
    assert_eq!(restored.len(), 1);
    let r = &restored[0];
    assert_eq!((r.namespace.as_str(), r.version), ("prod", 1));
    assert_eq!(code(r), Code::Deployed as i32);
    assert_eq!(
        r.config.as_ref().unwrap().raw,
        "password: s3cr3t-web-2\nreplicas: 3\n"
    );
    assert!(
        r.manifest.contains(&original.manifest),
        "restored manifest:\n{}\noriginal:\n{}",
        r.manifest,
        original.manifest
    );
    assert!(r.manifest.contains("hello {{ not a template }}"));
    assert_eq!(r.hooks.len(), 1);
    assert_eq!(r.hooks[0].manifest, original.hooks[0].manifest);
    assert_eq!(r.hooks[0].events, [Event::PreInstall as i32]);
    assert_eq!(
        r.info.as_ref().unwrap().status.as_ref().unwrap().notes,
        "web is installed. Try {{ .Release.Name }}."
    );
    let chart = r.chart.as_ref().unwrap();
    let meta = chart.metadata.as_ref().unwrap();
    assert_eq!(
        (
            meta.name.as_str(),
            meta.version.as_str(),
            meta.app_version.as_str()
        ),
        ("legacy", "1.4.2", "2.0.1")
    );
    assert_eq!(meta.annotations["helm-bulk.io/frozen-from-revision"], "2");
    assert_eq!(
        chart.values.as_ref().unwrap().raw,
        "replicas: 1\nimage: legacy:2.0.1\n"
    );
    let db = dst.history("db");
    assert_eq!(
        db[0].config.as_ref().unwrap().raw,
        "password: s3cr3t-db\n",
        "the deployed revision, not the failed one"
    );
    let crds = &dst.history("crds")[0];
    assert!(
        crds.hooks
            .iter()
            .any(|h| h.events == [Event::CrdInstall as i32]),
        "crd-install hook kept for Tiller"
    );
}

/// Idempotence: a second load changes nothing.
fn second_load_changes_nothing(w: &Work, dst: &RecordingTiller, snap: &Path) {
    let out = ok(w.load_tiller(&dst.host(), snap, &[]));
    assert!(
        text(&out.stderr).contains("Nothing to install"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(dst.calls("InstallRelease").len(), 7);
}

/// `--upgrade`: UpdateRelease with reset values.
fn upgrade_resets_values(w: &Work, dst: &RecordingTiller, snap: &Path) {
    let out = ok(w.load_tiller(&dst.host(), snap, &["--upgrade", "--jobs", "3"]));
    assert!(
        text(&out.stderr).contains("Restored 7, skipped 0, failed 0"),
        "{}",
        text(&out.stderr)
    );
    let updates = dst.calls("UpdateRelease");
    assert_eq!(updates.len(), 7);
    assert!(updates.iter().all(|c| c.detail == "reset_values=true"));
    let web = dst.history("web");
    assert_eq!(
        web.iter().map(code).collect::<Vec<_>>(),
        [Code::Superseded as i32, Code::Deployed as i32]
    );
}

/// `--replace`: purge, then install.
fn replace_purges_then_installs(w: &Work, dst: &RecordingTiller, snap: &Path) {
    let out = ok(w.load_tiller(&dst.host(), snap, &["--replace", "--include", "prod/*"]));
    assert!(
        text(&out.stderr).contains("replaced  prod/web"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        dst.calls("UninstallRelease")
            .iter()
            .map(|c| c.detail.as_str())
            .collect::<Vec<_>>(),
        ["purge=true"]
    );
    assert_eq!(dst.history("web").len(), 1);
}

/// A deleted (not purged) release's name is reused.
fn a_deleted_name_is_reused(w: &Work, dst: &RecordingTiller, snap: &Path) {
    {
        let mut s = dst.state.lock().unwrap();
        let db = s.releases.get_mut("db").unwrap().last_mut().unwrap();
        db.info.as_mut().unwrap().status.as_mut().unwrap().code = Code::Deleted as i32;
    }
    let out = ok(w.load_tiller(&dst.host(), snap, &[]));
    assert!(
        text(&out.stderr).contains("Restored 1, skipped 6, failed 0"),
        "{}",
        text(&out.stderr)
    );
    let last = dst.calls("InstallRelease").pop().unwrap();
    assert_eq!(last.detail, "namespace=data reuse_name=true");
    assert_eq!(
        dst.history("db").iter().map(code).collect::<Vec<_>>(),
        [
            Code::Superseded as i32,
            Code::Superseded as i32,
            Code::Deployed as i32
        ]
    );
}

#[test]
fn clear_errors() {
    let w = Work::new();
    // No address.
    let out = w.run(["save", "--source", "tiller", "-r", &w.recipient]);
    fails_with(&out, 1, "no Tiller address");
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = w.save(&format!("127.0.0.1:{port}"), &w.path("x.age"), &[]);
    fails_with(
        &out,
        1,
        &format!("cannot connect to Tiller at 127.0.0.1:{port} (plaintext)"),
    );
    assert!(!w.path("x.age").exists());
    // A bad status.
    let t = RecordingTiller::start("v2.17.0");
    let out = w.save(&t.host(), &w.path("x.age"), &["--status", "gone"]);
    fails_with(&out, 1, "unknown release status `gone`");
    // A server of another major version.
    let t3 = RecordingTiller::start("v3.0.0");
    let out = w.save(&t3.host(), &w.path("x.age"), &[]);
    fails_with(&out, 1, "not a Helm 2 Tiller");
    // --to-tiller with a Helm 3 snapshot.
    let helm3 = w.path("helm3.age");
    std::fs::write(
        &helm3,
        no_cluster::encrypt_to(
            &no_cluster::plain_snapshot(&no_cluster::sample()),
            &w.recipient,
            false,
        ),
    )
    .unwrap();
    let out = w.run([
        "load",
        "--to-tiller",
        "--tiller-host",
        &t.host(),
        "-i",
        w.key.to_str().unwrap(),
        helm3.to_str().unwrap(),
    ]);
    // (load warns first that the snapshot's origin is unverified.)
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: --to-tiller restores Helm 2 snapshots"),
        "{stderr}"
    );
}
