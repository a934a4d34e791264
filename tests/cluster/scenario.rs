//! One scenario test's working context: its Helm version, directory, key,
//! and the helm-bulk command pointed at a test environment.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use super::{Helm, TestEnv};
use crate::no_cluster::run;

/// What one scenario test works with: its Helm version, a private working
/// directory, an age identity made by `helm-bulk keygen`, and a clock for
/// progress lines. Test files add their own commands in `impl Run` blocks.
#[allow(dead_code)]
pub struct Run {
    pub helm: Helm,
    /// The test's private working directory.
    pub work: tempfile::TempDir,
    /// The age identity made by `helm-bulk keygen`.
    pub key: PathBuf,
    /// Its recipient.
    pub recipient: String,
    pub started: Instant,
}

#[allow(dead_code)]
impl Run {
    /// A working directory named after `what` and the Helm version, and a new key.
    pub fn new(helm: Helm, what: &str) -> Run {
        let work = tempfile::Builder::new()
            .prefix(&format!("helm-bulk-{what}-{}.", helm.tag()))
            .tempdir()
            .expect("create a working directory");
        let key = work.path().join("key.txt");
        let out = Command::new(env!("CARGO_BIN_EXE_helm-bulk"))
            .arg("keygen")
            .arg("-o")
            .arg(&key)
            .current_dir(work.path())
            .env_remove("HELM_BULK_CONFIG")
            .output()
            .expect("run helm-bulk keygen");
        let out = crate::no_cluster::ok_as(out, "helm-bulk keygen");
        let recipient = crate::no_cluster::text(&out.stdout).trim().to_owned();
        assert!(recipient.starts_with("age1"), "keygen printed {recipient}");
        Run {
            helm,
            work,
            key,
            recipient,
            started: Instant::now(),
        }
    }

    /// A path under the working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// A new directory under the working directory.
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.path(name);
        std::fs::create_dir_all(&d).expect("create a directory");
        d
    }

    /// Prints a progress line with the time since the test started.
    pub fn step(&self, what: &str) {
        eprintln!(
            "[{} +{:5.1}s] {what}",
            self.helm.tag(),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// helm-bulk pointed at `env`, with HELM_BIN set to this test's helm, run
    /// in `cwd` (so no `.helm-bulk.yaml` of the repository is picked up).
    pub fn bulk_cmd_in(&self, env: &TestEnv, cwd: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
        env.configure(&mut cmd);
        cmd.env("HELM_BIN", env.helm_bin(self.helm))
            .current_dir(cwd);
        cmd
    }

    /// [`Run::bulk_cmd_in`] the working directory.
    pub fn bulk_cmd(&self, env: &TestEnv) -> Command {
        self.bulk_cmd_in(env, self.work.path())
    }

    /// Runs helm-bulk with `args` in `cwd` (see [`Run::bulk_cmd_in`]).
    pub fn bulk_in<I, S>(&self, env: &TestEnv, cwd: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.bulk_cmd_in(env, cwd);
        cmd.args(args);
        run(&mut cmd)
    }

    /// Runs helm-bulk with `args` in the working directory.
    pub fn bulk<I, S>(&self, env: &TestEnv, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.bulk_in(env, self.work.path(), args)
    }

    /// Creates `namespace` and, in it, one Helm release Secret per record (its
    /// JSON text), encoded as Helm does (gzip, base64), in one `kubectl
    /// create` of a List.
    pub fn create_release_secrets(&self, env: &TestEnv, namespace: &str, records: &[String]) {
        use base64::Engine as _;
        use std::io::Write as _;
        let items: Vec<serde_json::Value> = records
            .iter()
            .map(|record| {
                let name = serde_json::from_str::<serde_json::Value>(record)
                    .unwrap_or_else(|e| panic!("a record is not JSON ({e}): {record}"))["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(record.as_bytes()).unwrap();
                let payload = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "helm.sh/release.v1",
                    "metadata": {
                        "name": format!("sh.helm.release.v1.{name}.v1"),
                        "namespace": namespace,
                        "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"},
                    },
                    "stringData": {"release": payload},
                })
            })
            .collect();
        let list_file = self.path(&format!("{namespace}-records.json"));
        std::fs::write(
            &list_file,
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
        )
        .unwrap();
        env.kubectl(["create", "namespace", namespace]);
        env.kubectl([
            OsStr::new("create"),
            OsStr::new("-o"),
            OsStr::new("name"),
            OsStr::new("-f"),
            list_file.as_os_str(),
        ]);
    }

    /// Runs `helm-bulk show -i KEY SNAPSHOT` in `cwd`.
    pub fn show_in(&self, env: &TestEnv, cwd: &Path, snapshot: &Path) -> Output {
        self.bulk_in(
            env,
            cwd,
            [
                OsStr::new("show"),
                OsStr::new("-i"),
                self.key.as_os_str(),
                snapshot.as_os_str(),
            ],
        )
    }
}
