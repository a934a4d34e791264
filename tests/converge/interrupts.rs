//! Loads interrupted by signals and by an API server restart: each time a
//! rerun converges.

use super::*;

/// Every scenario with one helm version.
pub(crate) fn converge(helm: Helm) {
    let run = Run::new(helm, "converge");
    let env = TestEnv::start();
    // Without a node agent the hook Job never completes and every rerun
    // would wait for helm's 5 minute timeout: fail at once instead.
    let nodes = env.kubectl(["get", "nodes", "-o", "name"]);
    assert!(
        !nodes.trim().is_empty(),
        "the test environment has no Nodes: these tests need its controllers and KWOK (scripts/testenv, issue 12)"
    );
    install_fixtures(&env, helm);
    run.step("fixtures installed");

    let snapshot = save_warns_and_show_notes_the_upgrade_in_flight(&run, &env);
    run.step("save warned, show notes the upgrade in flight");

    dry_run_restores_revision_1_and_preflight_passes(&run, &env, &snapshot);
    run.step("dry run");

    sigkill_then_a_rerun_converges(&run, &env, &snapshot);
    run.step("SIGKILL, then a rerun converged");

    sigint_exits_130_and_a_rerun_converges(&run, &env, &snapshot);
    run.step("SIGINT: exit 130, rerun converged");

    ctrl_c_twice_exits_at_once(&run, &env, &snapshot);
    run.step("Ctrl-C twice: exit 130 at once, rerun converged");

    sighup_passes_sigterm_to_helm(&run, &env, &snapshot);
    run.step("SIGHUP to load alone: helm got SIGTERM, exit 129, rerun converged");

    api_server_restart_during_a_load(&run, &env, &snapshot);
    run.step("API server restarted mid-load; rerun converged");

    a_snapshot_changed_between_two_reads_is_refused(&run, &env, &snapshot);
    run.step("snapshot replaced between two reads: refused, nothing installed");

    a_snapshot_from_standard_input_loads(&run, &env, &snapshot);
    run.step("loaded from standard input");
}

/// Save warns about the upgrade in flight; show says so. Returns the snapshot.
fn save_warns_and_show_notes_the_upgrade_in_flight(run: &Run, env: &TestEnv) -> PathBuf {
    let snapshot = run.path("snapshot.age");
    let out = ok_as(run.save(env, &snapshot, &[]), "save");
    let stderr = text(&out.stderr);
    let warnings = lines_with(&stderr, "warning:");
    assert!(
        warnings.len() == 1
            && warnings[0].contains("conv/mid")
            && warnings[0].contains("revision 2 is pending-upgrade")
            && warnings[0].contains("restores revision 1"),
        "save warns once, for conv/mid: {stderr}"
    );
    let out = ok_as(run.show_in(env, run.work.path(), &snapshot), "show");
    let stdout = text(&out.stdout);
    assert_eq!(
        lines_with(&stdout, "Note: conv/mid: an upgrade was in flight").len(),
        1,
        "{stdout}"
    );
    snapshot
}

/// The plan restores mid's revision 1, and preflight passes.
fn dry_run_restores_revision_1_and_preflight_passes(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    env.wipe();
    let out = ok_as(run.load(env, snapshot, &["--dry-run"]), "load --dry-run");
    let stdout = text(&out.stdout);
    let mid = lines_with(&stdout, "conv/mid ");
    assert!(
        mid.len() == 1
            && mid[0].contains(" 1 ")
            && mid[0].contains("install")
            && mid[0].contains("upgrade in flight"),
        "{stdout}"
    );
    for name in RELEASES {
        let line = lines_with(&stdout, &format!("conv/{name} "));
        assert!(
            line.len() == 1 && line[0].split_whitespace().any(|w| w == "ok"),
            "preflight ok for {name}: {stdout}"
        );
    }
    assert!(
        stdout.contains("Preflight: 3 frozen chart(s) rendered with helm"),
        "{stdout}"
    );
    assert!(
        statuses(env, helm).is_empty(),
        "--dry-run installed something"
    );
}

/// SIGKILL of load's process group while helm waits on the hook; a rerun
/// completes the interrupted restore, a third load has nothing to do.
fn sigkill_then_a_rerun_converges(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    let mut load = run.load_until_the_hook(env, snapshot, "killed");
    load.signal_group("KILL");
    let _ = load.wait(Duration::from_secs(30));
    let left = statuses(env, helm);
    assert!(
        left.contains(&("hook".to_owned(), 1, "pending-install".to_owned())),
        "the kill leaves hook pending-install: {left:?}"
    );
    assert!(
        !env.try_kubectl(["get", "configmap", "hook-config", "-n", NS])
            .status
            .success(),
        "hook's objects are missing"
    );
    let out = ok_as(run.load(env, snapshot, &[]), "load after the SIGKILL");
    let stderr = text(&out.stderr);
    let completed = lines_with(&stderr, "completed an interrupted restore");
    assert!(
        completed.len() == 1 && completed[0].contains("conv/hook"),
        "the rerun completes hook's interrupted restore: {stderr}"
    );
    assert!(!stderr.contains("conv/hook: already installed"), "{stderr}");
    assert_converged(env, helm, "rerun after SIGKILL");
    let out = ok_as(run.load(env, snapshot, &[]), "a third load");
    assert!(
        text(&out.stderr).contains("Nothing to install"),
        "{}",
        show(&out)
    );
}

/// SIGINT (Ctrl-C) of the process group: exit 130, every release left not
/// deployed is listed, hook's install is undone; a rerun converges.
fn sigint_exits_130_and_a_rerun_converges(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    env.wipe();
    let mut load = run.load_until_the_hook(env, snapshot, "interrupted");
    load.signal_group("INT");
    let status = load.wait(Duration::from_secs(120));
    let stderr = load.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let errors = lines_with(&stderr, "Error:");
    assert!(
        errors.len() == 1 && errors[0].contains("interrupted by SIGINT"),
        "one line says load was interrupted: {stderr}"
    );
    // Every release left not deployed is listed; hook's install was undone.
    for (name, _, st) in statuses(env, helm) {
        if st != "deployed" {
            assert_eq!(
                lines_with(&stderr, &format!("NOT DEPLOYED conv/{name}:")).len(),
                1,
                "{name} is {st} and must be listed: {stderr}"
            );
        }
    }
    assert!(
        !statuses(env, helm).iter().any(|(n, _, _)| n == "hook"),
        "the install of hook that SIGINT stopped was uninstalled: {stderr}"
    );
    let out = ok_as(run.load(env, snapshot, &[]), "load after SIGINT");
    assert_converged(env, helm, "rerun after SIGINT");
    drop(out);
}

/// Ctrl-C twice: load exits at once, and a rerun finishes.
fn ctrl_c_twice_exits_at_once(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    // The helm processes are stopped (SIGSTOP) so that load, which waits for
    // them after the first SIGINT, is still running when the second comes.
    env.wipe();
    let mut load = run.spawn_load(env, snapshot, "interrupted-twice");
    wait_for_status(env, "hook", "pending-install", &load);
    let helms = load.helm_processes();
    assert!(!helms.is_empty(), "load runs helm");
    for pid in &helms {
        signal("STOP", *pid);
    }
    signal("INT", load.child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        load.child.try_wait().expect("wait for load").is_none(),
        "load waits for its helm processes after the first SIGINT: {}",
        load.stderr()
    );
    signal("INT", load.child.id());
    let status = load.wait(Duration::from_secs(30));
    let stderr = load.stderr();
    for pid in &helms {
        signal("CONT", *pid);
    }
    assert_eq!(status.code(), Some(130), "{stderr}");
    let errors = lines_with(&stderr, "Error:");
    assert!(
        errors.len() == 1
            && errors[0].contains("interrupted again")
            && errors[0].contains("Run load again"),
        "{stderr}"
    );
    // The helm processes it left end on their own (they had the SIGINT).
    let deadline = Instant::now() + Duration::from_secs(60);
    while helms
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "helm processes {helms:?} still run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ok_as(run.load(env, snapshot, &[]), "load after two Ctrl-C");
    assert_converged(env, helm, "rerun after two Ctrl-C");
}

/// SIGHUP to load alone: it passes SIGTERM on to helm.
fn sighup_passes_sigterm_to_helm(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    // helm gets no signal but the one load forwards: without it, helm would
    // wait for the hook and install the release.
    env.wipe();
    let mut load = run.load_until_the_hook(env, snapshot, "hangup");
    signal("HUP", load.child.id());
    let status = load.wait(Duration::from_secs(120));
    let stderr = load.stderr();
    assert_eq!(status.code(), Some(129), "{stderr}");
    let errors = lines_with(&stderr, "Error:");
    assert!(
        errors.len() == 1 && errors[0].contains("interrupted by SIGHUP"),
        "{stderr}"
    );
    let left = statuses(env, helm);
    assert!(
        !left.iter().any(|(n, _, _)| n == "hook"),
        "helm got SIGTERM, gave up the install, and load uninstalled it: {left:?}\n{stderr}"
    );
    assert_eq!(
        lines_with(&stderr, "NOT DEPLOYED conv/hook: not installed").len(),
        1,
        "{stderr}"
    );
    ok_as(run.load(env, snapshot, &[]), "load after SIGHUP");
    assert_converged(env, helm, "rerun after SIGHUP");
}

/// The API server restarts during a load; a rerun converges.
fn api_server_restart_during_a_load(run: &Run, env: &TestEnv, snapshot: &Path) {
    let helm = run.helm;
    env.wipe();
    let mut load = run.spawn_load(env, snapshot, "apiserver");
    wait_for_status(env, "hook", "pending-install", &load);
    env.stop_api();
    std::thread::sleep(Duration::from_secs(3));
    env.start_api();
    let status = load.wait(Duration::from_secs(400));
    let stderr = load.stderr();
    eprintln!(
        "[{}] load across an API server restart: {status}\n{stderr}",
        helm.tag()
    );
    if !status.success() {
        assert_eq!(status.code(), Some(3), "{stderr}");
        assert!(
            !lines_with(&stderr, "FAILED").is_empty() || stderr.contains("NOT DEPLOYED"),
            "{stderr}"
        );
    }
    let out = ok_as(
        run.load(env, snapshot, &[]),
        "load after the API server restart",
    );
    drop(out);
    assert_converged(env, helm, "rerun after an API server restart");
}
