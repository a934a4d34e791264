//! A snapshot that changes while load reads it: load verifies all of it
//! first, then reads the records again (issue 17); a file that is not the
//! one verified is refused with one line, and nothing is installed after.

use super::*;

/// The snapshot file replaced by another valid snapshot (same key, another
/// index) during the pause before the second read (the preflight's) and
/// before the third (the installs'): each time load exits with one line
/// that says so, and nothing is installed.
pub(crate) fn a_snapshot_changed_between_two_reads_is_refused(
    run: &Run,
    env: &TestEnv,
    snapshot: &Path,
) {
    let helm = run.helm;
    // Another snapshot of the same cluster, taken later: a valid file for
    // the same key whose index differs.
    let other = run.path("other.age");
    ok_as(run.save(env, &other, &[]), "save another snapshot");
    for (pass, exit, said) in [
        (2, 1, "nothing was installed"),
        (3, 3, "load stopped: restored 0 release(s)"),
    ] {
        env.wipe();
        let changing = run.path(&format!("changing-{pass}.age"));
        std::fs::copy(snapshot, &changing).expect("copy the snapshot");
        let stderr = run.path(&format!("changed-{pass}.stderr"));
        let mut cmd = run.load_cmd(env, &changing, &[]);
        cmd.env("HELM_BULK_TEST_PASS_PAUSE_MS", "3000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("create a file"));
        let mut load = Background {
            child: cmd.spawn().expect("start helm-bulk load"),
            stderr,
        };
        // Replaced (as an editor or a copy would) while load pauses.
        let marker = format!("helm-bulk test: pass {pass}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !load.stderr().contains(&marker) {
            assert!(
                Instant::now() < deadline,
                "load never reached {marker}:\n{}",
                load.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let swap = run.path("swap.age");
        std::fs::copy(&other, &swap).expect("copy the other snapshot");
        std::fs::rename(&swap, &changing).expect("replace the snapshot");
        let status = load.wait(Duration::from_secs(120));
        let err = load.stderr();
        assert_eq!(status.code(), Some(exit), "pass {pass}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains("the snapshot changed after load verified it")
                && last.contains("not the one read in the first pass")
                && last.contains(said),
            "pass {pass}: one line says the snapshot changed and what was done: {err}"
        );
        assert_eq!(
            lines_with(&err, "the snapshot changed").len(),
            1,
            "pass {pass}: said once: {err}"
        );
        assert!(
            statuses(env, helm).is_empty(),
            "pass {pass}: nothing installed after the change: {:?}",
            statuses(env, helm)
        );
    }
    // The unchanged snapshot still loads.
    env.wipe();
    ok_as(
        run.load(env, snapshot, &[]),
        "load of the unchanged snapshot",
    );
    assert_converged(env, helm, "load after the refused ones");
}

/// The snapshot loads from standard input, which load cannot read twice:
/// it keeps the bytes as received (encrypted) in an unlinked temporary file
/// and reads them again for the preflight, the installs and the history.
pub(crate) fn a_snapshot_from_standard_input_loads(run: &Run, env: &TestEnv, snapshot: &Path) {
    env.wipe();
    let stderr = run.path("stdin.stderr");
    let mut cmd = run.load_cmd(env, Path::new("-"), &[]);
    cmd.stdin(std::fs::File::open(snapshot).expect("open the snapshot"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("create a file"));
    let mut load = Background {
        child: cmd.spawn().expect("start helm-bulk load"),
        stderr,
    };
    let status = load.wait(Duration::from_secs(300));
    assert!(status.success(), "load from stdin: {}", load.stderr());
    assert!(
        load.stderr().contains(", failed 0 in "),
        "{}",
        load.stderr()
    );
    assert_converged(env, run.helm, "load from standard input");
}
