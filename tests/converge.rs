//! A load that converges (issue 14), with helm v4 and v3:
//!
//! * `interrupted_loads_converge_*`: a snapshot taken in the middle of an
//!   upgrade (save warns, show and the dry run say which revision is
//!   restored); `load` killed (SIGKILL of its process group) and interrupted
//!   (SIGINT, exit 130; SIGINT twice, which exits at once; SIGHUP to load
//!   alone, which passes SIGTERM on to helm) while helm waits on a
//!   pre-install Job hook, and the
//!   API server restarted during a load: each time a rerun ends with every
//!   release `deployed` and its objects present.
//! * `someone_elses_failed_release_*`: a release of someone else, `failed` in
//!   the target cluster, is left alone, listed and counted (exit 3);
//!   `--replace` restores it.
//! * `preflight_stops_the_load_*`: a snapshot with frozen charts that cannot
//!   install stops the load before anything is installed (exit 1, one line
//!   per bad release); the dry run shows the same.
//!
//! Each test has an environment of its own (the first wipes it between its
//! scenarios). The hook Job needs the environment's controllers and KWOK:
//! its Pod succeeds after the delay its `helm-bulk.testenv/delay`
//! annotation asks for (15 s), long enough to stop load while helm waits.
//!
//! The fixtures of the first test, all in namespace `conv`:
//!
//! | release | chart     | what it covers                                                |
//! |---------|-----------|---------------------------------------------------------------|
//! | `hook`  | slowhook  | install waits on a pre-install Job hook: load is stopped then |
//! | `plain` | smoke     | a release installed next to it                                |
//! | `mid`   | smoke     | upgraded once, its storage then edited to look mid-upgrade    |
#![cfg(unix)]

mod cluster;
mod no_cluster;

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cluster::{Helm, Run, TestEnv, chart};
use no_cluster::{ok_as, show, text};
use serde_json::{Value, json};

const NS: &str = "conv";
const RELEASES: [&str; 3] = ["hook", "mid", "plain"];

fn lines_with<'a>(s: &'a str, needle: &str) -> Vec<&'a str> {
    s.lines().filter(|l| l.contains(needle)).collect()
}

impl Run {
    /// `helm-bulk load -i KEY [extra…] SNAPSHOT`.
    fn load_cmd(&self, env: &TestEnv, snapshot: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.bulk_cmd(env);
        cmd.arg("load").arg("-i").arg(&self.key);
        cmd.args(extra).arg(snapshot);
        cmd
    }

    fn load(&self, env: &TestEnv, snapshot: &Path, extra: &[&str]) -> Output {
        no_cluster::run(&mut self.load_cmd(env, snapshot, extra))
    }

    fn save(&self, env: &TestEnv, snapshot: &Path, extra: &[&str]) -> Output {
        let mut cmd = self.bulk_cmd(env);
        cmd.args(["save", "-r", &self.recipient, "-o"])
            .arg(snapshot)
            .args(extra);
        no_cluster::run(&mut cmd)
    }

    /// Starts load in a process group of its own (as a shell runs a
    /// foreground job), its output going to files.
    fn spawn_load(&self, env: &TestEnv, snapshot: &Path, name: &str) -> Background {
        let stderr = self.path(&format!("{name}.stderr"));
        let mut cmd = self.load_cmd(env, snapshot, &[]);
        cmd.process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("create a file"));
        Background {
            child: cmd.spawn().expect("start helm-bulk load"),
            stderr,
        }
    }
}

/// A load running in the background.
struct Background {
    child: Child,
    stderr: PathBuf,
}

impl Background {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `sig` to the whole process group (load and its helm processes).
    fn signal_group(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} of the process group failed");
    }

    /// The helm processes load runs now (its children).
    fn helm_processes(&self) -> Vec<u32> {
        let out = Command::new("ps")
            .args(["-o", "pid=", "--ppid", &self.child.id().to_string()])
            .output()
            .expect("run ps");
        text(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| *p != self.child.id())
            .collect()
    }

    /// Waits (at most `limit`) for load to end.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for load") {
                return status;
            }
            if Instant::now() > deadline {
                self.signal_group("KILL");
                let _ = self.child.wait();
                panic!("load still runs after {limit:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends `sig` to one process.
fn signal_pid(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// `(revision, status)` of every release of the namespace, from helm.
fn statuses(env: &TestEnv, helm: Helm) -> Vec<(String, u64, String)> {
    let mut out: Vec<(String, u64, String)> = env
        .helm_list(helm)
        .iter()
        .filter(|r| r["namespace"] == NS)
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["revision"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .or_else(|| r["revision"].as_u64())
                    .unwrap_or(0),
                r["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Asserts every fixture release is deployed and its objects exist.
fn assert_converged(env: &TestEnv, helm: Helm, what: &str) {
    let got: Vec<(String, String)> = statuses(env, helm)
        .into_iter()
        .map(|(n, _, s)| (n, s))
        .collect();
    let want: Vec<(String, String)> = RELEASES
        .iter()
        .map(|n| (n.to_string(), "deployed".to_owned()))
        .collect();
    assert_eq!(got, want, "{what}: every release deployed");
    let data = |name: &str| -> Value {
        let out = env.kubectl(["get", "configmap", name, "-n", NS, "-o", "json"]);
        serde_json::from_str::<Value>(&out).expect("kubectl JSON")["data"].clone()
    };
    assert_eq!(
        data("hook-config")["greeting"],
        "from-the-snapshot",
        "{what}"
    );
    assert_eq!(data("plain-smoke")["greeting"], "plain", "{what}");
    // mid: revision 1's values, the last good revision of the snapshot.
    assert_eq!(data("mid-smoke")["greeting"], "first", "{what}");
    env.kubectl(["get", "deployment", "plain-smoke", "mid-smoke", "-n", NS]);
}

/// Waits until helm's record of `name` has `status` (the storage Secret's label).
fn wait_for_status(env: &TestEnv, name: &str, status: &str, load: &Background) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let selector = format!("owner=helm,name={name},status={status}");
    loop {
        let out = env.kubectl(["get", "secrets", "-n", NS, "-l", &selector, "-o", "name"]);
        if !out.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {status}; load's stderr:\n{}",
            load.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Installs the fixtures, then edits `mid`'s storage so that it looks like a
/// save that landed between helm's two writes of an upgrade: revision 1
/// `superseded`, revision 2 `pending-upgrade`.
fn install_fixtures(env: &TestEnv, helm: Helm) {
    env.helm(
        helm,
        [
            "install",
            "hook",
            &chart("slowhook"),
            "-n",
            NS,
            "--create-namespace",
            "--set",
            "greeting=from-the-snapshot",
            "--no-hooks",
        ],
    );
    let smoke = chart("smoke");
    env.helm(
        helm,
        [
            "install",
            "plain",
            &smoke,
            "-n",
            NS,
            "--set",
            "config.greeting=plain",
        ],
    );
    env.helm(
        helm,
        [
            "install",
            "mid",
            &smoke,
            "-n",
            NS,
            "--set",
            "config.greeting=first",
        ],
    );
    env.helm(
        helm,
        [
            "upgrade",
            "mid",
            &smoke,
            "-n",
            NS,
            "--set",
            "config.greeting=second",
        ],
    );
    // Revision 2's record and its status label say pending-upgrade.
    let secret = "sh.helm.release.v1.mid.v2";
    let out = env.kubectl(["get", "secret", secret, "-n", NS, "-o", "json"]);
    let obj: Value = serde_json::from_str(&out).expect("secret JSON");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(obj["data"]["release"].as_str().expect("release key"))
        .expect("base64");
    let mut record = cluster::decode_helm_release(&payload);
    assert_eq!(record["info"]["status"], "deployed");
    record["info"]["status"] = json!("pending-upgrade");
    record["info"]["description"] = json!("Preparing upgrade");
    let encoded = {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(record.to_string().as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
    };
    let patch = json!({
        "metadata": {"labels": {"status": "pending-upgrade"}},
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(encoded)},
    });
    env.kubectl([
        "patch",
        "secret",
        secret,
        "-n",
        NS,
        "--type",
        "merge",
        "-p",
        &patch.to_string(),
    ]);
    let history = statuses(env, helm);
    assert!(
        history.contains(&("mid".to_owned(), 2, "pending-upgrade".to_owned())),
        "{history:?}"
    );
    let revs = env.helm(helm, ["history", "mid", "-n", NS, "-o", "json"]);
    assert!(revs.contains("superseded"), "{revs}");
}

/// `scripts/testenv VERB DIR` for this environment.
fn testenv(env: &TestEnv, verb: &str) {
    let mut cmd = Command::new("bash");
    cmd.arg(cluster::testenv_script())
        .arg(verb)
        .arg(&env.dir)
        .stdin(Stdio::null());
    no_cluster::run_ok(&mut cmd);
}

/// Every scenario with one helm version.
fn converge(helm: Helm) {
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

    // ---- save warns about the upgrade in flight; show says so -----------------
    let snapshot = run.path("snapshot.age");
    let out = ok_as(run.save(&env, &snapshot, &[]), "save");
    let stderr = text(&out.stderr);
    let warnings = lines_with(&stderr, "warning:");
    assert!(
        warnings.len() == 1
            && warnings[0].contains("conv/mid")
            && warnings[0].contains("revision 2 is pending-upgrade")
            && warnings[0].contains("restores revision 1"),
        "save warns once, for conv/mid: {stderr}"
    );
    let out = ok_as(
        run.bulk(
            &env,
            [
                OsStr::new("show"),
                OsStr::new("-i"),
                run.key.as_os_str(),
                snapshot.as_os_str(),
            ],
        ),
        "show",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        lines_with(&stdout, "Note: conv/mid: an upgrade was in flight").len(),
        1,
        "{stdout}"
    );
    run.step("save warned, show notes the upgrade in flight");

    // ---- the plan restores mid's revision 1, and preflight passes ---------------
    env.wipe();
    let out = ok_as(run.load(&env, &snapshot, &["--dry-run"]), "load --dry-run");
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
        statuses(&env, helm).is_empty(),
        "--dry-run installed something"
    );
    run.step("dry run");

    // ---- SIGKILL of load's process group while helm waits on the hook -----------
    let mut load = run.spawn_load(&env, &snapshot, "killed");
    wait_for_status(&env, "plain", "deployed", &load);
    wait_for_status(&env, "mid", "deployed", &load);
    wait_for_status(&env, "hook", "pending-install", &load);
    load.signal_group("KILL");
    let _ = load.wait(Duration::from_secs(30));
    let left = statuses(&env, helm);
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
    let out = ok_as(run.load(&env, &snapshot, &[]), "load after the SIGKILL");
    let stderr = text(&out.stderr);
    let completed = lines_with(&stderr, "completed an interrupted restore");
    assert!(
        completed.len() == 1 && completed[0].contains("conv/hook"),
        "the rerun completes hook's interrupted restore: {stderr}"
    );
    assert!(!stderr.contains("conv/hook: already installed"), "{stderr}");
    assert_converged(&env, helm, "rerun after SIGKILL");
    let out = ok_as(run.load(&env, &snapshot, &[]), "a third load");
    assert!(
        text(&out.stderr).contains("Nothing to install"),
        "{}",
        show(&out)
    );
    run.step("SIGKILL, then a rerun converged");

    // ---- SIGINT (Ctrl-C) of the process group -----------------------------------
    env.wipe();
    let mut load = run.spawn_load(&env, &snapshot, "interrupted");
    wait_for_status(&env, "plain", "deployed", &load);
    wait_for_status(&env, "mid", "deployed", &load);
    wait_for_status(&env, "hook", "pending-install", &load);
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
    for (name, _, st) in statuses(&env, helm) {
        if st != "deployed" {
            assert_eq!(
                lines_with(&stderr, &format!("NOT DEPLOYED conv/{name}:")).len(),
                1,
                "{name} is {st} and must be listed: {stderr}"
            );
        }
    }
    assert!(
        !statuses(&env, helm).iter().any(|(n, _, _)| n == "hook"),
        "the install of hook that SIGINT stopped was uninstalled: {stderr}"
    );
    let out = ok_as(run.load(&env, &snapshot, &[]), "load after SIGINT");
    assert_converged(&env, helm, "rerun after SIGINT");
    drop(out);
    run.step("SIGINT: exit 130, rerun converged");

    // ---- Ctrl-C twice: load exits at once, and a rerun finishes -----------------
    // The helm processes are stopped (SIGSTOP) so that load, which waits for
    // them after the first SIGINT, is still running when the second comes.
    env.wipe();
    let mut load = run.spawn_load(&env, &snapshot, "interrupted-twice");
    wait_for_status(&env, "hook", "pending-install", &load);
    let helms = load.helm_processes();
    assert!(!helms.is_empty(), "load runs helm");
    for pid in &helms {
        signal_pid("STOP", *pid);
    }
    signal_pid("INT", load.child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        load.child.try_wait().expect("wait for load").is_none(),
        "load waits for its helm processes after the first SIGINT: {}",
        load.stderr()
    );
    signal_pid("INT", load.child.id());
    let status = load.wait(Duration::from_secs(30));
    let stderr = load.stderr();
    for pid in &helms {
        signal_pid("CONT", *pid);
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
    ok_as(run.load(&env, &snapshot, &[]), "load after two Ctrl-C");
    assert_converged(&env, helm, "rerun after two Ctrl-C");
    run.step("Ctrl-C twice: exit 130 at once, rerun converged");

    // ---- SIGHUP to load alone: it passes SIGTERM on to helm ---------------------
    // helm gets no signal but the one load forwards: without it, helm would
    // wait for the hook and install the release.
    env.wipe();
    let mut load = run.spawn_load(&env, &snapshot, "hangup");
    wait_for_status(&env, "plain", "deployed", &load);
    wait_for_status(&env, "mid", "deployed", &load);
    wait_for_status(&env, "hook", "pending-install", &load);
    signal_pid("HUP", load.child.id());
    let status = load.wait(Duration::from_secs(120));
    let stderr = load.stderr();
    assert_eq!(status.code(), Some(129), "{stderr}");
    let errors = lines_with(&stderr, "Error:");
    assert!(
        errors.len() == 1 && errors[0].contains("interrupted by SIGHUP"),
        "{stderr}"
    );
    let left = statuses(&env, helm);
    assert!(
        !left.iter().any(|(n, _, _)| n == "hook"),
        "helm got SIGTERM, gave up the install, and load uninstalled it: {left:?}\n{stderr}"
    );
    assert_eq!(
        lines_with(&stderr, "NOT DEPLOYED conv/hook: not installed").len(),
        1,
        "{stderr}"
    );
    ok_as(run.load(&env, &snapshot, &[]), "load after SIGHUP");
    assert_converged(&env, helm, "rerun after SIGHUP");
    run.step("SIGHUP to load alone: helm got SIGTERM, exit 129, rerun converged");

    // ---- the API server restarts during a load ------------------------------------
    env.wipe();
    let mut load = run.spawn_load(&env, &snapshot, "apiserver");
    wait_for_status(&env, "hook", "pending-install", &load);
    testenv(&env, "stop-api");
    std::thread::sleep(Duration::from_secs(3));
    testenv(&env, "start-api");
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
        run.load(&env, &snapshot, &[]),
        "load after the API server restart",
    );
    drop(out);
    assert_converged(&env, helm, "rerun after an API server restart");
    run.step("API server restarted mid-load; rerun converged");
}

/// A release of someone else, `failed` in the target cluster: load leaves
/// it alone, lists it with what to do and exits 3; `--replace` restores it.
fn someone_elses_failed_release(helm: Helm) {
    let run = Run::new(helm, "converge");
    let env = TestEnv::start();
    let smoke = chart("smoke");
    env.helm(
        helm,
        [
            "install",
            "plain",
            &smoke,
            "-n",
            NS,
            "--create-namespace",
            "--set",
            "config.greeting=plain",
        ],
    );
    let snapshot = run.path("snapshot.age");
    ok_as(run.save(&env, &snapshot, &[]), "save");
    env.wipe();
    env.helm(
        helm,
        [
            "install",
            "plain",
            &smoke,
            "-n",
            NS,
            "--create-namespace",
            "--set",
            "config.greeting=theirs",
        ],
    );
    let bad = env.try_helm(
        helm,
        [
            "upgrade",
            "plain",
            &smoke,
            "-n",
            NS,
            "--reuse-values",
            "--set",
            "service.port=99999",
        ],
    );
    assert!(!bad.status.success(), "the upgrade with port 99999 fails");
    let before = statuses(&env, helm);
    assert_eq!(before, [("plain".to_owned(), 2, "failed".to_owned())]);
    let greeting = || -> Value {
        let out = env.kubectl(["get", "configmap", "plain-smoke", "-n", NS, "-o", "json"]);
        serde_json::from_str::<Value>(&out).expect("kubectl JSON")["data"]["greeting"].clone()
    };
    let out = run.load(&env, &snapshot, &[]);
    let stderr = text(&out.stderr);
    eprintln!(
        "[{}] load over someone else's failed release:\n{stderr}",
        helm.tag()
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let failed = lines_with(&stderr, "FAILED");
    assert!(
        failed.len() == 1
            && failed[0].contains("conv/plain")
            && failed[0].contains("status failed")
            && failed[0].contains("--upgrade or --replace"),
        "plain is listed with what to do: {stderr}"
    );
    assert!(
        stderr.contains("failed 1"),
        "the summary counts it: {stderr}"
    );
    assert_eq!(
        statuses(&env, helm),
        before,
        "plain is not touched: {stderr}"
    );
    assert_eq!(greeting(), "theirs", "plain's objects are not touched");
    // The dry run says the same.
    let out = run.load(&env, &snapshot, &["--dry-run"]);
    let row = lines_with(&text(&out.stdout), "conv/plain ").join("\n");
    assert!(
        row.contains("FAIL") && row.contains("--replace"),
        "{}",
        show(&out)
    );
    let out = ok_as(run.load(&env, &snapshot, &["--replace"]), "load --replace");
    assert_eq!(
        lines_with(&text(&out.stderr), "replaced  conv/plain ").len(),
        1,
        "{}",
        show(&out)
    );
    let after = statuses(&env, helm);
    assert_eq!(after, [("plain".to_owned(), 1, "deployed".to_owned())]);
    assert_eq!(greeting(), "plain", "the snapshot's release is back");
    run.step("someone else's failed release: left alone, exit 3; --replace restores it");
}

/// A release record as helm stores it (decoded JSON), revision 1, deployed.
fn record(namespace: &str, name: &str, manifest: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"apiVersion": "v2", "name": name, "version": "0.1.0"}},
        "config": {},
        "manifest": manifest,
    })
}

/// Creates one helm release Secret per record in `namespace`.
fn create_release_secrets(env: &TestEnv, namespace: &str, records: &[Value]) {
    use std::io::Write as _;
    env.kubectl(["create", "namespace", namespace]);
    for r in records {
        let name = r["name"].as_str().unwrap_or_default();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(r.to_string().as_bytes()).unwrap();
        let payload = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": format!("sh.helm.release.v1.{name}.v1"),
                "namespace": namespace,
                "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"},
            },
            "stringData": {"release": payload},
        });
        let mut cmd = env.kubectl_cmd();
        cmd.args(["create", "-f", "-"]).stdin(Stdio::piped());
        let mut child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("run kubectl create");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secret.to_string().as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "kubectl create of {name}");
    }
}

/// A snapshot with a release whose frozen chart does not render (invalid
/// YAML: helm refuses it, reported as a helm-bulk defect naming the stored
/// document) and one whose custom resource no CRD defines: load stops before
/// installing anything, with one line per bad release; the good release is
/// not installed either. The dry run shows the same.
fn preflight(helm: Helm) {
    let run = Run::new(helm, "converge");
    let env = TestEnv::start();
    let (run, env) = (&run, &env);
    let ns = "preflight";
    let good = "---\n# Source: good/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  a: b\n";
    let bad_yaml = "---\n# Source: badyaml/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n";
    let no_crd = "---\n# Source: nocrd/templates/gizmo.yaml\napiVersion: gizmos.example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n";
    create_release_secrets(
        env,
        ns,
        &[
            record(ns, "good", good),
            record(ns, "badyaml", bad_yaml),
            record(ns, "nocrd", no_crd),
        ],
    );
    let snapshot = run.path("preflight.age");
    ok_as(
        run.save(env, &snapshot, &["-n", ns]),
        "save of the preflight fixtures",
    );
    env.kubectl(["delete", "secrets", "-n", ns, "-l", "owner=helm"]);

    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["-n", ns];
        args.extend_from_slice(extra);
        let out = run.load(env, &snapshot, &args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        eprintln!("[{}] load {extra:?}:\n{stderr}{stdout}", helm.tag());
        assert_eq!(out.status.code(), Some(1), "load {extra:?}: {}", show(&out));
        let errors = lines_with(&stderr, "Error:");
        assert!(
            errors.len() == 1 && errors[0].contains("preflight found problems with 2 release(s)"),
            "{stderr}"
        );
        // One line per bad release: on stderr for a load, in the plan for a dry run.
        let listing = if extra.is_empty() { &stderr } else { &stdout };
        let bad: Vec<&str> = listing
            .lines()
            .filter(|l| l.contains("preflight/badyaml:") || l.contains("preflight/nocrd:"))
            .collect();
        assert_eq!(bad.len(), 2, "{listing}");
        assert!(
            bad.iter()
                .any(|l| l.contains("badyaml") && l.contains("helm cannot read the chart")),
            "{listing}"
        );
        assert!(
            bad.iter()
                .any(|l| l.contains("nocrd") && l.contains("gizmos.example.com/v1 Gizmo")),
            "{listing}"
        );
        assert!(!listing.contains("preflight/good:"), "{listing}");
        if !extra.is_empty() {
            let row = lines_with(&stdout, "preflight/good ");
            assert!(
                row.len() == 1 && row[0].split_whitespace().any(|w| w == "ok"),
                "{stdout}"
            );
        }
        let installed = env.try_helm(run.helm, ["status", "good", "-n", ns]);
        assert!(
            !installed.status.success(),
            "nothing may be installed: {stderr}"
        );
    }
}

#[test]
fn interrupted_loads_converge_helm4() {
    converge(Helm::V4);
}

#[test]
fn interrupted_loads_converge_helm3() {
    converge(Helm::V3);
}

#[test]
fn someone_elses_failed_release_helm4() {
    someone_elses_failed_release(Helm::V4);
}

#[test]
fn someone_elses_failed_release_helm3() {
    someone_elses_failed_release(Helm::V3);
}

#[test]
fn preflight_stops_the_load_helm4() {
    preflight(Helm::V4);
}

#[test]
fn preflight_stops_the_load_helm3() {
    preflight(Helm::V3);
}
