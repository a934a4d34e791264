//! A load that converges (issue 14), with helm v4 and v3:
//!
//! * `interrupted_loads_converge_*`: a snapshot taken in the middle of an
//!   upgrade (save warns, show and the dry run say which revision is
//!   restored); `load` killed (SIGKILL of its process group) and interrupted
//!   (SIGINT, exit 130; SIGINT twice, which exits at once; SIGHUP to load
//!   alone, which passes SIGTERM on to helm) while helm waits on a
//!   pre-install Job hook, and the
//!   API server restarted during a load: each time a rerun ends with every
//!   release `deployed` and its objects present. Then the snapshot file is
//!   replaced by another valid one between load's first read (which
//!   verifies it) and a later one (preflight, installs): refused with one
//!   line, nothing installed; and it loads from standard input (issue 17).
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

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../no_cluster/mod.rs"]
mod no_cluster;

mod changed;
mod fixtures;
mod interrupts;
mod refusals;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cluster::{Helm, Run, TestEnv, chart};
use no_cluster::{lines_with, ok_as, show, signal, text};
use serde_json::{Value, json};

use changed::*;
use fixtures::*;
use interrupts::*;
use refusals::*;

const NS: &str = "conv";
const RELEASES: [&str; 3] = ["hook", "mid", "plain"];

/// The commands of these tests.
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

    /// Starts load in the background (see [`Run::spawn_load`]) and returns
    /// once helm waits on the hook: plain and mid deployed, hook
    /// pending-install.
    fn load_until_the_hook(&self, env: &TestEnv, snapshot: &Path, name: &str) -> Background {
        let load = self.spawn_load(env, snapshot, name);
        wait_for_status(env, "plain", "deployed", &load);
        wait_for_status(env, "mid", "deployed", &load);
        wait_for_status(env, "hook", "pending-install", &load);
        load
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

cluster::helm4_and_helm3! {
    converge => interrupted_loads_converge_helm4, interrupted_loads_converge_helm3;
    someone_elses_failed_release => someone_elses_failed_release_helm4, someone_elses_failed_release_helm3;
    preflight => preflight_stops_the_load_helm4, preflight_stops_the_load_helm3;
}
