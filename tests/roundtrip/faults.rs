//! Faults: a frozen chart helm refuses, and save interrupted by signals or
//! by the API server dying.

use super::*;

/// A stored document helm cannot read (a hand-made record: invalid YAML)
/// makes helm refuse the frozen chart. load's preflight (which renders every
/// frozen chart before the first install) reports it as a helm-bulk defect
/// naming the stored document and line, stops with exit 1, and `--debug`
/// prints the document.
pub(crate) fn frozen_chart_defect_is_reported(run: &Run, env: &TestEnv) {
    let record = json!({
        "name": "broken",
        "namespace": "defect",
        "version": 1,
        "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"name": "broken", "version": "0.1.0", "appVersion": "1"}},
        "config": {},
        "manifest": "---\n# Source: broken/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\n\
                     metadata:\n  name: broken\ndata:\n  a: [unclosed {{ x }}\n",
    })
    .to_string();
    run.create_release_secrets(env, "defect", &[record]);
    let dir = run.dir("defect");
    let snapshot = dir.join("defect.age");
    let mut cmd = run.save_cmd(env, &dir, &dir, &snapshot);
    cmd.args(["--include", "defect/*"]);
    ok_as(no_cluster::run(&mut cmd), "save of the defect record");
    env.kubectl(["delete", "namespace", "defect", "--wait=true"]);
    let out = run.bulk_in(
        env,
        &dir,
        [
            OsStr::new("--debug"),
            OsStr::new("load"),
            OsStr::new("-i"),
            run.key.as_os_str(),
            snapshot.as_os_str(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let failed = lines_with(&stderr, "preflight defect/broken: ");
    assert_eq!(failed.len(), 1, "{stderr}");
    for part in [
        "the chart helm-bulk generated from the stored release",
        "(manifest document 1 of 1 (# Source: broken/templates/cm.yaml), line 5)",
        "defect of helm-bulk",
        "/issues",
    ] {
        assert!(failed[0].contains(part), "{part:?} in {}", failed[0]);
    }
    assert!(
        stderr.contains(
            "debug: manifest document 1 of 1 (# Source: broken/templates/cm.yaml) as stored"
        ) && stderr.contains("  a: [unclosed {{ x }}")
            && stderr.contains(r#"  a: [unclosed {{"{{"}} x {{"}}"}}"#),
        "--debug prints the document as stored and as escaped: {stderr}"
    );
    assert!(
        stderr.contains("helm-bulk defect, please report it at"),
        "the summary says it is a helm-bulk defect: {stderr}"
    );
    assert!(
        !env.try_helm(run.helm, ["status", "broken", "-n", "defect"])
            .status
            .success(),
        "nothing of the release is left"
    );
}

/// Creates [`BULK_RECORDS`] release Secrets and starts `save --page-size 1`
/// three times, each time stopping it once it is writing its output: with
/// SIGINT (Ctrl-C), with SIGTERM, and by killing the API server. Each save
/// must fail and leave neither the output file nor its temp file. The
/// environment is unusable afterwards.
pub(crate) fn save_dies_with_the_apiserver(run: &Run, env: &TestEnv) {
    let records: Vec<String> = (0..BULK_RECORDS)
        .map(|i| {
            // Incompressible, so every page carries some weight.
            synthetic_record("bulk", &format!("bulk-{i:03}"), 2048)
        })
        .collect();
    run.create_release_secrets(env, "bulk", &records);
    run.step(&format!("{BULK_RECORDS} release records created"));

    // ---- Ctrl-C (SIGINT) and SIGTERM in the middle of the records ----
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let out_dir = run.dir(&format!("interrupted-save-{sig}"));
        let tmp = run.dir(&format!("interrupted-save-{sig}-tmp"));
        let output = out_dir.join("snapshot.age");
        let (mut child, stderr_file) = start_slow_save(run, env, &out_dir, &tmp, &output);
        signal(sig, child.id());
        let status = wait_for_exit(&mut child, &stderr_file);
        let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
        assert_eq!(status.code(), Some(code), "save after SIG{sig}: {stderr}");
        assert!(
            stderr.contains("Error: interrupted"),
            "save says it was interrupted: {stderr}"
        );
        assert_nothing_left(&out_dir, &tmp, &format!("an interrupted save (SIG{sig})"));
    }
    run.step("save interrupted by SIGINT and SIGTERM: nothing left");

    let out_dir = run.dir("killed-save");
    let tmp = run.dir("killed-save-tmp");
    let output = out_dir.join("snapshot.age");
    let (mut child, stderr_file) = start_slow_save(run, env, &out_dir, &tmp, &output);
    let save_stderr = || std::fs::read_to_string(&stderr_file).unwrap_or_default();
    // Freeze save so it cannot finish meanwhile, kill the API server, resume.
    signal("STOP", child.id());
    let apiserver: u32 = std::fs::read_to_string(env.dir.join("apiserver.pid"))
        .expect("DIR/apiserver.pid")
        .trim()
        .parse()
        .expect("a PID");
    assert!(
        !output.exists(),
        "save finished before the API server was killed; make it slower (more records)"
    );
    signal("KILL", apiserver);
    std::thread::sleep(Duration::from_millis(300));
    signal("CONT", child.id());
    let status = wait_for_exit(&mut child, &stderr_file);
    let stderr = save_stderr();
    assert!(
        !status.success(),
        "save must fail when the API server dies: {status}\n{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("Error: ")),
        "save explains the failure: {stderr}"
    );
    assert!(!output.exists(), "a failed save left {}", output.display());
    assert_nothing_left(&out_dir, &tmp, "a failed save");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_default();
    eprintln!(
        "[{}] save with the API server killed: {status}; {error}",
        run.helm.tag(),
    );
    // The error names the cause (listing the release Secrets failed), not a
    // consequence inside save's own snapshot writer.
    assert!(
        error.contains("release Secrets") && !error.contains("snapshot writer"),
        "save reports a consequence instead of the cause of the failure: {error}"
    );
}

/// Starts `save --page-size 1` of the bulk records into `output` (TMPDIR
/// `tmp`) and returns once some records are in its temp file (age writes
/// 64 KiB chunks): save is then in the middle of the records.
pub(crate) fn start_slow_save(
    run: &Run,
    env: &TestEnv,
    out_dir: &Path,
    tmp: &Path,
    output: &Path,
) -> (std::process::Child, PathBuf) {
    let stderr_file = out_dir.with_extension("stderr");
    let mut cmd = run.save_cmd(env, out_dir, tmp, output);
    cmd.args(["--page-size", "1"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap());
    let mut child = cmd.spawn().expect("start helm-bulk save");
    let save_stderr = || std::fs::read_to_string(&stderr_file).unwrap_or_default();
    // The temp file appears when the index is complete and the records start
    // flowing (one request per record).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let written = leftover_temp_files(out_dir)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum::<u64>();
        if written >= 64 << 10 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "save ended ({status}) before 64 KiB of the snapshot were written; stderr:\n{}",
                save_stderr()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("save did not start writing within 120s:\n{}", save_stderr());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (child, stderr_file)
}

/// Asserts that neither the output directory nor TMPDIR holds any file.
pub(crate) fn assert_nothing_left(out_dir: &Path, tmp: &Path, what: &str) {
    assert_eq!(
        files_under(out_dir),
        Vec::<PathBuf>::new(),
        "{what} left files (temp files .helm-bulk-*.tmp?)"
    );
    assert_eq!(
        files_under(tmp),
        Vec::<PathBuf>::new(),
        "{what} left files in TMPDIR"
    );
}

/// Waits (at most 120 s) for a save started by [`start_slow_save`] to end.
pub(crate) fn wait_for_exit(
    child: &mut std::process::Child,
    stderr_file: &Path,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "save still runs after 120s:\n{}",
                std::fs::read_to_string(stderr_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
