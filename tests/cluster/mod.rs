//! Helpers for tests that need a cluster: a real Kubernetes control plane
//! (etcd, kube-apiserver, controllers, KWOK) and real Helm v2/v3/v4 binaries,
//! started by `scripts/testenv`. Cluster-free helpers (running commands,
//! keys, sample snapshots) are in `tests/no_cluster`, which this module uses.
//!
//! Use it from an integration test file with `mod cluster; mod no_cluster;`:
//!
//! ```ignore
//! mod cluster;
//! mod no_cluster;
//! use cluster::{Helm, TestEnv};
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn something() {
//!     let env = TestEnv::shared(); // one environment per test binary
//!     env.helm(Helm::V4, ["install", "r1", &cluster::chart("smoke"), "-n", "ns1", "--create-namespace"]);
//!     let client = env.client().await;
//!     // ...
//! }
//! ```
//!
//! * [`TestEnv::shared`] is started once per test binary and torn down by the
//!   `--owner-pid` reaper of `scripts/testenv` when the test process exits
//!   (normally, by panic, abort or signal). Tests sharing it must use their own
//!   release names and namespaces, and must not [`TestEnv::wipe`] it.
//! * [`TestEnv::start`] gives an environment owned by one test; dropping it
//!   runs `scripts/testenv down`, and the reaper covers the process dying first.
//!
//! If the environment cannot start (for example the pinned binaries are not
//! built), the test panics with instructions: it never skips silently.
//!
//! The environment runs the real controller-manager and scheduler, and KWOK
//! plays the kubelet (see `scripts/testenv-kwok.yaml`): scheduled Pods become
//! Running and Ready at once, Job Pods (and any Pod with restartPolicy Never or
//! OnFailure) succeed after a delay (1 s, or the Pod's `helm-bulk.testenv/delay`
//! annotation), and a Pod labelled `helm-bulk.testenv/fail=true` fails. So
//! `helm install --wait --wait-for-jobs` and Job hooks work; no container
//! ever runs. [`TestEnv::wait_for`] waits for an object's condition.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::no_cluster::{run, run_ok};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which Helm major version to run.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Helm {
    V3,
    V4,
}

#[allow(dead_code)]
impl Helm {
    /// Both versions, for tests that must hold with each of them.
    pub const ALL: [Helm; 2] = [Helm::V4, Helm::V3];

    /// "v3" or "v4", handy for release and namespace names.
    pub fn tag(self) -> &'static str {
        match self {
            Helm::V3 => "v3",
            Helm::V4 => "v4",
        }
    }
}

/// One running test environment: the fields are read from `DIR/env`, which
/// `scripts/testenv up` writes.
#[allow(dead_code)]
#[derive(Debug)]
pub struct TestEnv {
    /// The environment's state directory (`HELM_BULK_TESTENV_DIR`).
    pub dir: PathBuf,
    /// Admin kubeconfig for this environment's API server (`KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// Helm v4 binary (`HELM4`).
    pub helm4: PathBuf,
    /// Helm v3 binary (`HELM3`).
    pub helm3: PathBuf,
    /// kubectl binary (`KUBECTL`).
    pub kubectl: PathBuf,
    /// Helm v2 client binary (`HELM2`); Tillers are started with `scripts/testenv tiller`.
    pub helm2: PathBuf,
    /// Isolated `HELM_CONFIG_HOME`.
    pub helm_config_home: PathBuf,
    /// Isolated `HELM_DATA_HOME`.
    pub helm_data_home: PathBuf,
    /// Isolated `HELM_CACHE_HOME`.
    pub helm_cache_home: PathBuf,
    /// Whether dropping this value tears the environment down (false for the
    /// shared one, which lives in a static and is reaped at process exit).
    owned: bool,
}

/// The repository root (where `Cargo.toml` and `scripts/` live).
#[allow(dead_code)]
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/testenv`.
#[allow(dead_code)]
pub fn testenv_script() -> PathBuf {
    repo_root().join("scripts").join("testenv")
}

/// Path of a test chart under `tests/charts/`, as a string for helm arguments.
#[allow(dead_code)]
pub fn chart(name: &str) -> String {
    let path = repo_root().join("tests").join("charts").join(name);
    assert!(
        path.join("Chart.yaml").is_file(),
        "no test chart at {}",
        path.display()
    );
    path.to_str()
        .expect("the repository path is not valid UTF-8")
        .to_owned()
}

/// A name unique within this test process, usable as a release or namespace
/// name (lowercase, at most 53 characters when `prefix` is short).
#[allow(dead_code)]
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn testenv_command() -> Command {
    // Run through bash so a checkout without the executable bit still works.
    let mut cmd = Command::new("bash");
    cmd.arg(testenv_script());
    cmd.current_dir(repo_root());
    cmd
}

fn cache_dir_hint() -> String {
    std::env::var("HELM_BULK_TESTENV_CACHE")
        .unwrap_or_else(|_| "$HOME/.cache/helm-bulk/testenv".to_owned())
}

#[allow(dead_code)]
impl TestEnv {
    /// The environment shared by every test of this test binary, started on
    /// first use. It is torn down by the reaper when the process exits.
    pub fn shared() -> &'static TestEnv {
        static SHARED: OnceLock<Result<TestEnv, String>> = OnceLock::new();
        let env = SHARED.get_or_init(|| {
            Self::try_start().map(|mut env| {
                env.owned = false;
                env
            })
        });
        match env {
            Ok(env) => env,
            Err(message) => panic!("{message}"),
        }
    }

    /// A fresh environment owned by the caller; dropping it tears it down.
    pub fn start() -> TestEnv {
        Self::try_start_with(&[]).unwrap_or_else(|message| panic!("{message}"))
    }

    /// [`TestEnv::start`] with extra `scripts/testenv up` arguments, such as
    /// `["--pod-delay", "5s"]` or `["--nodes", "3"]`.
    pub fn start_with(up_args: &[&str]) -> TestEnv {
        Self::try_start_with(up_args).unwrap_or_else(|message| panic!("{message}"))
    }

    fn try_start() -> Result<TestEnv, String> {
        Self::try_start_with(&[])
    }

    fn try_start_with(up_args: &[&str]) -> Result<TestEnv, String> {
        let dir = tempfile::Builder::new()
            .prefix("helm-bulk-testenv.")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            // `scripts/testenv down` (or the reaper) removes it.
            .keep();
        let started = Instant::now();
        let output = testenv_command()
            .arg("up")
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .args(up_args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", testenv_script().display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            // Best effort: stop whatever did start and remove the directory.
            let _ = testenv_command()
                .arg("down")
                .arg(&dir)
                .stdin(Stdio::null())
                .output();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "the helm-bulk test environment did not start ({}).\n\
                 The integration tests need a real kube-apiserver, etcd, kubectl and Helm v3/v4;\n\
                 build and cache them once with `scripts/testenv build` \
                 (needs Go; cache: {}), then check `scripts/testenv paths`.\n\
                 --- scripts/testenv up stderr ---\n{stderr}",
                output.status,
                cache_dir_hint(),
            ));
        }
        let env_file = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let env = Self::from_env_file(&env_file, true).inspect_err(|_| {
            let _ = testenv_command().arg("down").arg(&dir).output();
        })?;
        eprintln!(
            "cluster: test environment up in {:.1}s at {}",
            started.elapsed().as_secs_f64(),
            env.dir.display()
        );
        Ok(env)
    }

    /// Parses a `DIR/env` file written by `scripts/testenv up`.
    fn from_env_file(path: &Path, owned: bool) -> Result<TestEnv, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut vars = std::collections::HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(assignment) = line.strip_prefix("export ") else {
                continue;
            };
            let Some((key, value)) = assignment.split_once('=') else {
                continue;
            };
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value);
            vars.insert(key.to_owned(), PathBuf::from(value));
        }
        let mut take = |key: &str| {
            vars.remove(key)
                .ok_or_else(|| format!("{} does not set {key}", path.display()))
        };
        Ok(TestEnv {
            dir: take("HELM_BULK_TESTENV_DIR")?,
            kubeconfig: take("KUBECONFIG")?,
            helm4: take("HELM4")?,
            helm3: take("HELM3")?,
            kubectl: take("KUBECTL")?,
            helm2: take("HELM2")?,
            helm_config_home: take("HELM_CONFIG_HOME")?,
            helm_data_home: take("HELM_DATA_HOME")?,
            helm_cache_home: take("HELM_CACHE_HOME")?,
            owned,
        })
    }

    /// The helm binary of the given major version.
    pub fn helm_bin(&self, helm: Helm) -> &Path {
        match helm {
            Helm::V3 => &self.helm3,
            Helm::V4 => &self.helm4,
        }
    }

    /// The environment variables that point a process at this environment:
    /// `KUBECONFIG`, the isolated Helm homes and the helm binaries.
    pub fn env_vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.clone().into_os_string()),
            (
                "HELM_CONFIG_HOME",
                self.helm_config_home.clone().into_os_string(),
            ),
            (
                "HELM_DATA_HOME",
                self.helm_data_home.clone().into_os_string(),
            ),
            (
                "HELM_CACHE_HOME",
                self.helm_cache_home.clone().into_os_string(),
            ),
            ("HELM4", self.helm4.clone().into_os_string()),
            ("HELM3", self.helm3.clone().into_os_string()),
            ("KUBECTL", self.kubectl.clone().into_os_string()),
            ("HELM2", self.helm2.clone().into_os_string()),
            ("HELM_BULK_TESTENV_DIR", self.dir.clone().into_os_string()),
        ]
    }

    /// Points `cmd` at this environment: removes every inherited `HELM_*`, `TILLER_*` and
    /// `KUBECONFIG` variable (so the developer's own cluster and Helm
    /// settings never leak in) and sets [`TestEnv::env_vars`]. Use it for the
    /// helm-bulk binary too.
    pub fn configure<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("HELM_")
                || k.starts_with("TILLER_")
                || ["KUBECONFIG", "HELM4", "HELM3", "HELM2"].contains(&k.as_ref())
            {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.env_vars());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// A helm command of the given version, configured for this environment.
    pub fn helm_cmd(&self, helm: Helm) -> Command {
        let mut cmd = Command::new(self.helm_bin(helm));
        self.configure(&mut cmd);
        cmd
    }

    /// A kubectl command configured for this environment.
    pub fn kubectl_cmd(&self) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        self.configure(&mut cmd);
        cmd
    }

    /// Runs helm and returns its output, whatever its exit status.
    pub fn try_helm<I, S>(&self, helm: Helm, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.helm_cmd(helm);
        cmd.args(args);
        run(&mut cmd)
    }

    /// Runs helm, asserts it succeeded (the panic shows its stderr) and
    /// returns its stdout.
    pub fn helm<I, S>(&self, helm: Helm, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.helm_cmd(helm);
        cmd.args(args);
        run_ok(&mut cmd)
    }

    /// Every release in the cluster, in any status, as `helm list -A -o json`
    /// prints them (Helm v3 needs `--all` for that; v4 dropped the flag and
    /// lists every status by default).
    pub fn helm_list(&self, helm: Helm) -> Vec<serde_json::Value> {
        let mut args = vec!["list", "--all-namespaces", "--output", "json"];
        if helm == Helm::V3 {
            args.push("--all");
        }
        let out = self.helm(helm, args);
        let value: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("helm list printed invalid JSON ({e}): {out}"));
        match value {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Null => Vec::new(),
            other => panic!("helm list printed {other}, not an array"),
        }
    }

    /// Runs kubectl and returns its output, whatever its exit status.
    pub fn try_kubectl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.kubectl_cmd();
        cmd.args(args);
        run(&mut cmd)
    }

    /// Runs kubectl, asserts it succeeded (the panic shows its stderr) and
    /// returns its stdout.
    pub fn kubectl<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.kubectl_cmd();
        cmd.args(args);
        run_ok(&mut cmd)
    }

    /// The kube-rs configuration for this environment's kubeconfig.
    pub async fn kube_config(&self) -> kube::Config {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", self.kubeconfig.display()))
    }

    /// A kube-rs client for this environment. Must be called inside a tokio
    /// runtime, and used in that runtime only.
    pub async fn client(&self) -> kube::Client {
        // Two rustls crypto providers are linked (kube-rs brings ring,
        // object_store aws-lc-rs); pick ring, as the helm-bulk binary does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        kube::Client::try_from(self.kube_config().await)
            .unwrap_or_else(|e| panic!("cannot build a kube client: {e}"))
    }

    /// Restarts this environment with an empty etcd, as if the cluster had
    /// been lost: no namespaces but the built-in ones, no Helm releases. The
    /// API server keeps its address and credentials, but build new clients
    /// afterwards. Do not wipe [`TestEnv::shared`]: other tests use it.
    pub fn wipe(&self) {
        let mut cmd = testenv_command();
        cmd.arg("wipe").arg(&self.dir).stdin(Stdio::null());
        run_ok(&mut cmd);
    }

    /// Kills this environment's kube-apiserver (a crash: the controllers keep
    /// running and reconnect once [`TestEnv::start_api`] brings it back).
    pub fn stop_api(&self) {
        let mut cmd = testenv_command();
        cmd.arg("stop-api").arg(&self.dir).stdin(Stdio::null());
        run_ok(&mut cmd);
    }

    /// Starts this environment's kube-apiserver again and waits until it is ready.
    pub fn start_api(&self) {
        let mut cmd = testenv_command();
        cmd.arg("start-api").arg(&self.dir).stdin(Stdio::null());
        run_ok(&mut cmd);
    }

    /// Waits until `object` (`job/NAME`, `deployment/NAME`, `namespace/NAME`…)
    /// in `namespace` meets `condition`, as `kubectl wait --for` takes it:
    /// `condition=Complete`, `condition=Available`, `jsonpath={.status.readyReplicas}=2`,
    /// `delete`. Panics with kubectl's message after `timeout`.
    pub fn wait_for(&self, namespace: &str, object: &str, condition: &str, timeout: Duration) {
        let timeout_arg = format!("--timeout={}s", timeout.as_secs().max(1));
        let for_arg = format!("--for={condition}");
        self.kubectl(["wait", "-n", namespace, object, &for_arg, &timeout_arg]);
    }

    /// An object's field, read with a kubectl JSONPath template (empty when unset).
    pub fn jsonpath(&self, namespace: &str, object: &str, path: &str) -> String {
        let template = format!("jsonpath={path}");
        self.kubectl(["get", "-n", namespace, object, "-o", &template])
    }

    /// Whether `scripts/testenv status` reports everything running.
    pub fn is_running(&self) -> bool {
        let mut cmd = testenv_command();
        cmd.arg("status").arg(&self.dir).stdin(Stdio::null());
        run(&mut cmd).status.success()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let result = testenv_command()
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            // Never panic in drop (it may run during a panic); the reaper
            // still tears the environment down when the process exits.
            Ok(out) => eprintln!(
                "cluster: scripts/testenv down {} failed ({}): {}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cluster: cannot run scripts/testenv down: {e}"),
        }
    }
}

/// Decodes the `release` field of a Helm release Secret (`helm.sh/release.v1`):
/// base64 text of gzip-compressed JSON (the Secret's own base64 layer is
/// already removed by the API client). Returns the release as JSON.
#[allow(dead_code)]
pub fn decode_helm_release(data: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(data.trim_ascii())
        .unwrap_or_else(|e| panic!("the release field is not base64 text: {e}"));
    let json = if compressed.starts_with(&[0x1f, 0x8b]) {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut json)
            .unwrap_or_else(|e| panic!("the release field is not valid gzip: {e}"));
        json
    } else {
        // Helm writes uncompressed JSON when it cannot gzip; accept it too.
        compressed
    };
    serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("the release field is not JSON after gunzip: {e}"))
}

/// Polls `check` every 200 ms until it returns true; panics naming `what`
/// after `timeout`.
#[allow(dead_code)]
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

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

/// Declares, for each `scenario => test_helm4, test_helm3;`, one `#[test]`
/// per Helm version that runs `scenario(Helm::V4)` and `scenario(Helm::V3)`.
#[allow(unused_macros)]
macro_rules! helm4_and_helm3 {
    ($($scenario:path => $v4:ident, $v3:ident;)*) => {
        $(
            #[test]
            fn $v4() {
                $scenario($crate::cluster::Helm::V4);
            }

            #[test]
            fn $v3() {
                $scenario($crate::cluster::Helm::V3);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use helm4_and_helm3;
