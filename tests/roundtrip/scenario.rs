//! The round trip with one Helm version, as a sequence of named steps on one
//! environment (and a second one for the clone).

use super::*;

/// Every scenario, in sequence, with one Helm major version.
pub(crate) fn round_trip(helm: Helm) {
    let run = Run::new(helm, "roundtrip");
    // The clone target starts in the background meanwhile.
    let clone_target = std::thread::spawn(TestEnv::start);
    let env = TestEnv::start();
    run.step("environment up");

    let canary = format!("canary-{}", random_hex(12));
    let mut before = install_and_record_fixtures(&run, &env, &canary);
    let (largest, original_size) = largest_record(&env, &before);
    run.step("fixtures installed and recorded");

    let snapshot = save_without_plaintext(&run, &env, &canary);
    run.step("saved");

    formats_1_and_2_hold_the_same_records(&run, &env, &snapshot, &canary);
    run.step("format 1 and 2 hold the same records");

    let clone_env = clone_target
        .join()
        .expect("starting the clone target panicked");
    clone_into_a_second_cluster(&run, &clone_env, &env, &before, &snapshot);
    drop(clone_env);
    run.step("cloned into a second cluster");

    let stderr = restore_after_the_cluster_was_lost(&run, &env, &before, &snapshot, &canary);
    report_record_sizes(&run, &env, largest, original_size);
    crds_are_created_by_helm_bulk_or_left_to_helm(&env, &stderr);
    run.step("restored after a wipe");

    second_load_installs_nothing(&run, &env, &snapshot);
    run.step("second load: nothing to install");

    // load --upgrade upgrades flaky too, whose newest revision is its failed
    // upgrade: helm list shows the new, deployed revision.
    before.set_listed_status("gamma", "flaky", "deployed");
    upgrade_brings_changed_values_back(&run, &env, &before, &snapshot);
    before.set_listed_status("gamma", "flaky", "failed");
    run.step("load --upgrade");

    dry_run_changes_nothing(&run, &env, &snapshot);
    run.step("load --dry-run");

    refused_and_excluded_releases(&run, &env, &snapshot);
    rerun_after_fixing_the_cause(&run, &env, &before, &snapshot);
    run.step("failed release reported, rerun completed; excluded release skipped");

    frozen_chart_defect_is_reported(&run, &env);
    run.step("a frozen chart helm refuses: reported as a helm-bulk defect");

    save_dies_with_the_apiserver(&run, &env);
    run.step("save with the API server killed");
}

/// Installs the fixture releases, records them as they are before the save,
/// and makes gamma/flaky's latest upgrade fail.
fn install_and_record_fixtures(run: &Run, env: &TestEnv, canary: &str) -> Before {
    let helm = run.helm;
    let operator = operator_chart(run.work.path());
    install_fixtures(env, helm, canary, &operator);
    let mut before = Before::record(env, helm);
    before.check_fixtures();
    // Positive control for the plaintext scans: the canary is a user value.
    assert_eq!(
        before.release("alpha", "db").values["db"]["password"],
        canary
    );
    fail_flaky_upgrade(env, helm);
    // helm list shows the newest revision's status: flaky's is `failed` now,
    // and load restores the history, that failed revision included.
    let listed = env.helm_list(helm);
    for e in before.releases.iter_mut() {
        let status = listed
            .iter()
            .find(|r| r["namespace"] == e.namespace.as_str() && r["name"] == e.name.as_str())
            .map(|r| r["status"].clone());
        e.row["status"] = status.unwrap_or_default();
    }
    assert_eq!(before.release("gamma", "flaky").row["status"], "failed");
    before
}

/// The largest release record and its size, for the size comparison after
/// the restore.
fn largest_record<'b>(env: &TestEnv, before: &'b Before) -> (&'b Expected, usize) {
    before
        .releases
        .iter()
        .map(|r| (r, record_size(env, &r.namespace, &r.name, r.revision)))
        .max_by_key(|(_, size)| *size)
        .expect("fixtures")
}

/// Saves with no plaintext on disk (in the working directory or TMPDIR), and
/// `show` lists every CRD and why save took it. Returns the snapshot.
fn save_without_plaintext(run: &Run, env: &TestEnv, canary: &str) -> PathBuf {
    let save_cwd = run.dir("save-cwd");
    let save_tmp = run.dir("save-tmp");
    let snapshot = save_cwd.join("snapshot.age");
    let out = ok_as(
        run.save(env, &save_cwd, &save_tmp, &snapshot),
        "helm-bulk save",
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("Saved 8 releases (11 revisions, 7 CRDs, 3 of them for their API group only"),
        "save summary: {stderr}"
    );
    assert!(snapshot.is_file());
    let scanned = assert_no_plaintext(&[&save_cwd, &save_tmp], canary);
    assert!(scanned >= 1, "the snapshot itself was scanned");
    assert!(leftover_temp_files(&save_cwd).is_empty());
    // show lists every CRD and why save took it.
    let out = ok_as(run.show_in(env, &save_cwd, &snapshot), "show");
    let table = text(&out.stdout);
    for (crd, why) in [
        (
            "clusters.ops.helm-bulk.test",
            "kind Cluster used by delta/ops",
        ),
        (
            "backups.ops.helm-bulk.test",
            "API group ops.helm-bulk.test used by delta/ops",
        ),
        (
            "snapshots.ops.helm-bulk.test",
            "API group ops.helm-bulk.test used by delta/ops",
        ),
        (
            "limits.bounds.helm-bulk.test",
            "kind Limit used by delta/grafana",
        ),
        (
            "gadgets.fixtures.helm-bulk.test",
            "kind Gadget used by gamma/gadgets",
        ),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(crd) && l.trim_end().ends_with(why)),
            "show lists {crd} taken for {why}:\n{table}"
        );
    }
    snapshot
}

/// Loads into a second cluster while the first is up; the source cluster is
/// left untouched.
fn clone_into_a_second_cluster(
    run: &Run,
    clone_env: &TestEnv,
    env: &TestEnv,
    before: &Before,
    snapshot: &Path,
) {
    let helm = run.helm;
    let out = ok_as(run.load(clone_env, snapshot, &[]), "load into the clone");
    let stderr = text(&out.stderr);
    assert_eq!(
        lines_with(&stderr, "installed ").len(),
        RELEASES.len(),
        "{stderr}"
    );
    before.verify(clone_env, helm, "clone into a second cluster");
    // The source cluster is untouched: still every release, flaky still failed.
    let source_list = env.helm_list(helm);
    assert_eq!(source_list.len(), RELEASES.len());
    assert!(
        source_list
            .iter()
            .any(|r| r["name"] == "flaky" && r["status"] == "failed"),
        "{source_list:?}"
    );
}

/// The cluster is lost (wiped): load restores every release, the deployed
/// revision of gamma/flaky, and writes no plaintext to TMPDIR. Returns load's
/// stderr.
fn restore_after_the_cluster_was_lost(
    run: &Run,
    env: &TestEnv,
    before: &Before,
    snapshot: &Path,
    canary: &str,
) -> String {
    let helm = run.helm;
    env.wipe();
    assert!(env.helm_list(helm).is_empty(), "the wipe left releases");
    let load_tmp = run.dir("load-tmp");
    let mut cmd = run.bulk_cmd_in(env, &run.dir("load-cwd"));
    cmd.env("TMPDIR", &load_tmp)
        .arg("load")
        .arg("-i")
        .arg(&run.key)
        .arg(snapshot);
    let out = ok_as(no_cluster::run(&mut cmd), "load after the cluster was lost");
    let stderr = text(&out.stderr);
    for (ns, name) in RELEASES {
        assert_eq!(
            lines_with(&stderr, &format!("installed {ns}/{name} ")).len(),
            1,
            "{stderr}"
        );
    }
    assert!(
        lines_with(&stderr, "installed gamma/flaky ")[0].contains("revision 1)"),
        "flaky restores its deployed revision 1, not the failed 2: {stderr}"
    );
    assert_no_plaintext(&[&load_tmp], canary);
    before.verify(env, helm, "restore after the cluster was lost");
    stderr
}

/// Prints the size of the largest release record, before and after the
/// restore (as a frozen chart).
fn report_record_sizes(run: &Run, env: &TestEnv, largest: &Expected, original_size: usize) {
    let helm = run.helm;
    let restored_size = record_size(
        env,
        &largest.namespace,
        &largest.name,
        current_revision(env, helm, &largest.namespace, &largest.name),
    );
    eprintln!(
        "[{}] largest fixture release record, {}/{} (.data.release of its Secret): original {} bytes (revision {}), restored {} bytes (frozen chart)",
        helm.tag(),
        largest.namespace,
        largest.name,
        original_size,
        largest.revision,
        restored_size
    );
}

/// helm-bulk created the CRDs no restored chart's crds/ holds, as
/// `helm-bulk`; those in a chart's crds/ were left to helm.
fn crds_are_created_by_helm_bulk_or_left_to_helm(env: &TestEnv, stderr: &str) {
    for crd in CRDS {
        let managers = env.kubectl([
            "get",
            "crd",
            crd,
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ]);
        // limits is in ops' crds/, but grafana uses it too: helm-bulk
        // creates it, and Helm 4's server-side apply of ops' crds/ must not
        // conflict with that.
        let by_helm = ["widgets.fixtures.helm-bulk.test"];
        if by_helm.contains(&crd) {
            assert!(
                !managers.contains("helm-bulk") && lines_with(stderr, crd).is_empty(),
                "{crd} is left to helm: managers {managers}\n{stderr}"
            );
        } else {
            let managers: Vec<&str> = managers.split_whitespace().collect();
            assert!(
                managers.contains(&"helm-bulk") && !managers.contains(&"unknown"),
                "the field managers of {crd}: {managers:?}"
            );
            assert_eq!(
                lines_with(stderr, &format!("created   CRD {crd}")).len(),
                1,
                "{stderr}"
            );
        }
    }
}

/// A second load installs nothing.
fn second_load_installs_nothing(run: &Run, env: &TestEnv, snapshot: &Path) {
    let out = ok_as(run.load(env, snapshot, &[]), "second load");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Nothing to install"), "{stderr}");
    assert!(lines_with(&stderr, "installed ").is_empty(), "{stderr}");
}

/// After an upgrade with changed values, `load --upgrade` brings the saved
/// values and manifest back.
fn upgrade_brings_changed_values_back(run: &Run, env: &TestEnv, before: &Before, snapshot: &Path) {
    let helm = run.helm;
    env.helm(
        helm,
        [
            "upgrade",
            "db",
            &chart("app"),
            "-n",
            "alpha",
            "--reuse-values",
            "--set-string",
            "db.password=changed-after-the-snapshot",
            "--set",
            "greeting=changed",
        ],
    );
    let changed = parse_json(
        &env.helm(helm, ["get", "values", "db", "-n", "alpha", "-o", "json"]),
        "helm get values",
    );
    assert_eq!(changed["greeting"], "changed");
    let random_key = "Secret/alpha/db-random";
    let rerendered = live_objects(env, &before.release("alpha", "db").refs);
    assert_ne!(
        rerendered[random_key],
        *before.object("alpha", "db", random_key),
        "the upgrade with the original chart renders a new random password"
    );
    let out = ok_as(run.load(env, snapshot, &["--upgrade"]), "load --upgrade");
    let stderr = text(&out.stderr);
    assert_eq!(
        lines_with(&stderr, "upgraded  alpha/db ").len(),
        1,
        "{stderr}"
    );
    // Values, the manifest (the re-rendered random password too) are back.
    before.verify(env, helm, "load --upgrade after a change");
}

/// `load --dry-run` on an empty cluster plans every release and CRD and
/// changes nothing.
fn dry_run_changes_nothing(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    env.wipe();
    let namespaces = env.kubectl(["get", "namespaces", "-o", "name"]);
    let list_before = env.helm_list(helm);
    let out = ok_as(run.load(env, snapshot, &["--dry-run"]), "load --dry-run");
    let stdout = text(&out.stdout);
    for (ns, name) in RELEASES {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{ns}/{name} ")))
            .unwrap_or_else(|| panic!("the plan does not list {ns}/{name}: {stdout}"));
        assert!(line.contains("install"), "{line}");
    }
    for crd in CRDS {
        let by_helm = match crd {
            "widgets.fixtures.helm-bulk.test" => Some("beta/widgets"),
            _ => None,
        };
        let want = match by_helm {
            Some(r) => format!("CRD {crd}: installed by helm from the crds/ of {r}"),
            None => format!("CRD {crd}: would be created"),
        };
        assert!(
            stdout.lines().any(|l| l == want),
            "the plan says `{want}`: {stdout}"
        );
    }
    assert_eq!(
        env.helm_list(helm),
        list_before,
        "--dry-run installed something"
    );
    assert_eq!(
        env.kubectl(["get", "namespaces", "-o", "name"]),
        namespaces,
        "--dry-run created namespaces"
    );
    assert!(crd_specs(env).is_empty(), "--dry-run created CRDs");
}

/// A release helm refuses to install (an object it does not own is in the
/// way) fails alone with exit 3, leaving nothing of it, while an excluded
/// release is skipped and the others install.
fn refused_and_excluded_releases(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    // An object helm does not own, with the name and kind of one of web's.
    env.kubectl(["create", "namespace", "alpha"]);
    env.kubectl([
        "create",
        "configmap",
        "web-config",
        "-n",
        "alpha",
        "--from-literal=owner=somebody-else",
    ]);
    let out = run.load(env, snapshot, &["--exclude", "gamma/flaky"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let failed = lines_with(&stderr, "FAILED");
    assert!(
        failed.len() == 1 && failed[0].contains("alpha/web"),
        "one FAILED line, for alpha/web: {stderr}"
    );
    assert_eq!(
        lines_with(&stderr, "gamma/flaky")
            .iter()
            .filter(|l| l.contains("excluded"))
            .count(),
        1,
        "{stderr}"
    );
    let installed: BTreeSet<String> = env.release_names(helm).into_iter().collect();
    let want: BTreeSet<String> = [
        "alpha/db",
        "beta/stack",
        "beta/widgets",
        "gamma/gadgets",
        "delta/grafana",
        "delta/ops",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        installed, want,
        "the others install; web failed, flaky excluded"
    );
    refused_and_excluded_left_nothing(env, helm);
}

/// Nothing of the refused release alpha/web and the excluded gamma/flaky is
/// installed, and the object helm does not own is left alone.
fn refused_and_excluded_left_nothing(env: &TestEnv, helm: Helm) {
    assert!(
        !env.try_helm(helm, ["status", "web", "-n", "alpha"])
            .status
            .success(),
        "no partial release of alpha/web is left"
    );
    assert!(
        !env.try_helm(helm, ["status", "flaky", "-n", "gamma"])
            .status
            .success(),
        "the excluded release gamma/flaky is not installed"
    );
    let conflicting = parse_json(
        &env.kubectl([
            "get",
            "configmap",
            "web-config",
            "-n",
            "alpha",
            "-o",
            "json",
        ]),
        "kubectl get configmap",
    );
    assert_eq!(
        conflicting["data"],
        json!({"owner": "somebody-else"}),
        "the object helm does not own is left alone"
    );
}

/// With the cause of the failure removed, load completes the restore.
fn rerun_after_fixing_the_cause(run: &Run, env: &TestEnv, before: &Before, snapshot: &Path) {
    let helm = run.helm;
    // Fix the cause and run load again: it completes.
    env.kubectl(["delete", "configmap", "web-config", "-n", "alpha"]);
    let out = ok_as(run.load(env, snapshot, &[]), "load after fixing the cause");
    let stderr = text(&out.stderr);
    assert_eq!(lines_with(&stderr, "installed ").len(), 2, "{stderr}");
    assert!(
        stderr.contains("installed alpha/web ") && stderr.contains("installed gamma/flaky "),
        "{stderr}"
    );
    before.verify(env, helm, "rerun after a failed release");
}
