//! A real Tiller (Helm v2.17.0, built from source by `scripts/testenv build`)
//! running outside the cluster against a test environment's kubeconfig, as
//! Helm 2's "running Tiller locally" does, and the real Helm 2 client talking
//! to it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::cluster::{self, TestEnv};
use crate::no_cluster;

/// A Tiller started with `scripts/testenv tiller`; stopped when dropped.
pub struct RealTiller<'e> {
    env: &'e TestEnv,
    name: String,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Where it keeps its release records (`TILLER_NAMESPACE`).
    pub namespace: String,
    /// `ca.pem`, `tiller.pem`, `client.pem` and `client.key` when started with TLS.
    pub pki: Option<PathBuf>,
    /// The variables of its env file (TILLER_HOST, TILLER_NAMESPACE, HELM_TLS_*).
    vars: BTreeMap<String, String>,
    /// An initialised HELM_HOME for the Helm 2 client.
    pub helm_home: tempfile::TempDir,
}

fn testenv(args: &[&str]) -> Output {
    let mut c = Command::new("bash");
    c.arg(cluster::testenv_script())
        .args(args)
        .current_dir(cluster::repo_root())
        .stdin(Stdio::null());
    no_cluster::run(&mut c)
}

impl<'e> RealTiller<'e> {
    /// Starts Tiller `name` with `--storage storage` (configmap or secret),
    /// keeping its records in a new namespace, over TLS (client certificates
    /// required) when `tls`.
    pub fn start(env: &'e TestEnv, name: &str, storage: &str, tls: bool) -> RealTiller<'e> {
        let namespace = cluster::unique_name(&format!("tiller-{name}"));
        env.kubectl(["create", "namespace", &namespace]);
        let dir = env.dir.to_str().unwrap();
        let mut args = vec![
            "tiller",
            dir,
            name,
            "--storage",
            storage,
            "--namespace",
            &namespace,
        ];
        if tls {
            args.push("--tls");
        }
        let out = testenv(&args);
        assert!(
            out.status.success(),
            "scripts/testenv tiller failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env_file = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let mut vars = BTreeMap::new();
        for line in std::fs::read_to_string(&env_file).unwrap().lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|a| a.split_once('=')) {
                vars.insert(k.to_owned(), v.trim_matches('\'').to_owned());
            }
        }
        let host = vars["TILLER_HOST"].clone();
        assert_eq!(vars["TILLER_NAMESPACE"], namespace);
        let pki = tls.then(|| env_file.parent().unwrap().join("pki"));
        let helm_home = tempfile::Builder::new()
            .prefix("helm-bulk-helm2-home.")
            .tempdir()
            .unwrap();
        let t = RealTiller {
            env,
            name: name.to_owned(),
            host,
            namespace,
            pki,
            vars,
            helm_home,
        };
        t.helm2_ok(&["init", "--client-only", "--skip-refresh"]);
        t
    }

    /// A file of its TLS material.
    pub fn pki(&self, file: &str) -> String {
        self.pki
            .as_ref()
            .expect("a TLS Tiller")
            .join(file)
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The Helm 2 client, pointed at this Tiller (and over TLS with a valid
    /// client certificate when Tiller uses TLS).
    pub fn helm2_cmd(&self) -> Command {
        let mut c = Command::new(&self.env.helm2);
        self.env.configure(&mut c);
        c.env("HELM_HOME", self.helm_home.path()).envs(&self.vars);
        c
    }

    /// Runs the Helm 2 client, whatever its exit status.
    pub fn helm2(&self, args: &[&str]) -> Output {
        no_cluster::run(self.helm2_cmd().args(args))
    }

    /// Runs the Helm 2 client, asserting it succeeded; its stdout.
    pub fn helm2_ok(&self, args: &[&str]) -> String {
        no_cluster::run_ok(self.helm2_cmd().args(args))
    }

    /// The Tiller-stored records of this Tiller (ConfigMaps or Secrets
    /// labelled OWNER=TILLER in its namespace): `name.vN` names.
    pub fn stored(&self, kind: &str) -> Vec<String> {
        let out = self.env.kubectl([
            "get",
            kind,
            "-n",
            &self.namespace,
            "-l",
            "OWNER=TILLER",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        let mut names: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// Where its log is.
    pub fn log(&self) -> PathBuf {
        self.env
            .dir
            .join("tiller")
            .join(&self.name)
            .join("tiller.log")
    }
}

impl Drop for RealTiller<'_> {
    fn drop(&mut self) {
        // Never panic in drop; `scripts/testenv down` stops it otherwise.
        let result = Command::new("bash")
            .arg(cluster::testenv_script())
            .arg("tiller-stop")
            .arg(&self.env.dir)
            .arg(&self.name)
            .stdin(Stdio::null())
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "tiller-stop {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cannot run scripts/testenv tiller-stop: {e}"),
        }
    }
}

/// The path of the Helm 2 test chart.
pub fn chart() -> String {
    cluster::chart("helm2")
}

/// Reads a file of the environment's directory (for diagnostics).
pub fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}
