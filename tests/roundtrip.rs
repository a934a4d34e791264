//! Acceptance tests of "Save and load Helm 3 and Helm 4 releases against a
//! real cluster": the fixture charts of `tests/charts/` are installed with the
//! real helm into a real kube-apiserver, saved with `helm-bulk save`, the
//! cluster is lost (`TestEnv::wipe`) and `helm-bulk load` restores it. Then
//! the load modes, a clone into a second cluster that is up at the same time,
//! and the faults (a release helm refuses to install, the API server dying
//! during save), and that no plaintext ever reaches the disk.
//!
//! One test per Helm major version runs every scenario in sequence on one
//! environment (plus a second one, started in the background, for the clone):
//! environments take seconds to start and wipe, so this keeps the file short
//! on a 2-core machine. Every helm-bulk run gets `HELM_BIN` set to the helm of
//! the test's version.
//!
//! The fixture releases (the same in both tests, each in its own cluster):
//!
//! | release         | chart     | what it covers                                              |
//! |-----------------|-----------|-------------------------------------------------------------|
//! | `alpha/db`      | app       | user values holding a secret (the canary), random password, |
//! |                 |           | pre-install hook Secret, literal `{{ }}` in a ConfigMap     |
//! | `alpha/web`     | app       | upgraded twice: a history of 3, revision 3 restored         |
//! | `beta/stack`    | umbrella  | a subchart vendored as a directory under `charts/`          |
//! | `beta/widgets`  | crds      | a CRD in `crds/` and a custom resource of it                |
//! | `gamma/flaky`   | app       | latest upgrade rejected by the API server: revision 1       |
//! |                 |           | (the last deployed one) restored, not the failed 2          |
//! | `gamma/gadgets` | crdparent | a CRD in a *subchart's* `crds/`, its custom resource in the |
//! |                 |           | parent's templates                                          |
//! | `delta/grafana` | dashboards| modelled on public charts (issue 13): dashboard JSON with   |
//! |                 |           | every brace pattern, JSON in annotations, a lookup-made     |
//! |                 |           | password, generated TLS, a kube-system Service, RBAC and    |
//! |                 |           | ServiceAccount hooks and Job hooks in weight order (kept:   |
//! |                 |           | before-hook-creation), a test hook,                         |
//! |                 |           | `.Capabilities` gates (one on ops' CRD: a Limit of its own),|
//! |                 |           | a template whose last document has no final newline and     |
//! |                 |           | ends in a `|+` block                                        |
//! | `delta/ops`     | operator  | a CRD with 64-bit bounds, floats and `resource-policy: keep`|
//! |                 |           | in `crds/`; a CRD subchart whose `crds/` hold a whole API   |
//! |                 |           | group, three kinds of it unused, one CRD over 1 MiB         |

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::{Value, json};
use support::{Helm, TestEnv, chart};

/// Every fixture release, `(namespace, name)`.
const RELEASES: [(&str, &str); 8] = [
    ("alpha", "db"),
    ("alpha", "web"),
    ("beta", "stack"),
    ("beta", "widgets"),
    ("gamma", "flaky"),
    ("gamma", "gadgets"),
    ("delta", "grafana"),
    ("delta", "ops"),
];

/// The CRDs of the fixtures: in a chart's `crds/` (widgets, limits), in a
/// subchart's (gadgets, and the whole `ops` group, used or not).
const CRDS: [&str; 7] = [
    "widgets.fixtures.helm-bulk.test",
    "gadgets.fixtures.helm-bulk.test",
    "limits.bounds.helm-bulk.test",
    "clusters.ops.helm-bulk.test",
    "backups.ops.helm-bulk.test",
    "restores.ops.helm-bulk.test",
    "snapshots.ops.helm-bulk.test",
];

/// Copies the `operator` fixture chart to `dir` and adds to its CRD
/// subchart a CRD of over 1 MiB (long descriptions full of braces, as
/// generated API documentation has), too big to keep in the repository.
fn operator_chart(dir: &Path) -> String {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
    let chart_dir = dir.join("operator");
    copy(Path::new(&chart("operator")), &chart_dir);
    let mut yaml = String::from(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
         name: snapshots.ops.helm-bulk.test\nspec:\n  group: ops.helm-bulk.test\n  \
         scope: Namespaced\n  names:\n    plural: snapshots\n    singular: snapshot\n    \
         kind: Snapshot\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      \
         schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n",
    );
    let text: String =
        "Selects {\"matchLabels\":{}} of {{ .Values.x }}; 9.223372036854775e+18. ".repeat(420);
    for i in 0..40 {
        yaml.push_str(&format!(
            "            field{i:02}:\n              type: string\n              description: '{text}'\n"
        ));
    }
    assert!(
        yaml.len() > 1 << 20,
        "the large CRD is {} bytes",
        yaml.len()
    );
    std::fs::write(
        chart_dir.join("charts/operator-crds/crds/snapshots.yaml"),
        yaml,
    )
    .unwrap();
    chart_dir.to_str().unwrap().to_owned()
}

/// Release records created for the "API server dies during save" scenario.
const BULK_RECORDS: usize = 300;

// --- small helpers -------------------------------------------------------------

/// A random lowercase hex string (std's randomly keyed hasher, no extra crate).
fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(bytes * 2);
    out
}

fn parse_json(text: &str, what: &str) -> Value {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{what}: invalid JSON ({e}): {text}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Describes an output for assertion messages.
fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout)
    )
}

/// Asserts the command exited 0.
fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed: {}", show(&out));
    out
}

/// All regular files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Temp files helm-bulk's atomic writer leaves behind if it fails to clean up.
fn leftover_temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(".helm-bulk-") && n.ends_with(".tmp")
        })
        .collect()
}

/// Sends a signal with kill(1) to a process by its PID.
fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// A minimal Helm release record (decoded JSON) of `namespace/name`, revision
/// 1, deployed, whose manifest carries `random` bytes of random hex.
fn synthetic_record(namespace: &str, name: &str, random: usize) -> String {
    json!({
        "name": name,
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"name": namespace, "version": "0.1.0", "appVersion": "1"}},
        "config": {},
        "manifest": format!("---\n# {}\n", random_hex(random)),
    })
    .to_string()
}

/// Creates `namespace` and, in it, one Helm release Secret per record, encoded
/// as Helm does (gzip, base64), in one `kubectl create` of a List.
fn create_release_secrets(run: &Run, env: &TestEnv, namespace: &str, records: &[String]) {
    let items: Vec<Value> = records
        .iter()
        .map(|record| {
            let name = parse_json(record, "record")["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(record.as_bytes()).unwrap();
            let payload = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
            json!({
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
    let list_file = run.work.path().join(format!("{namespace}-records.json"));
    std::fs::write(
        &list_file,
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
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

// --- one test's context ----------------------------------------------------------

/// What one test (one Helm version) works with.
struct Run {
    helm: Helm,
    /// The test's private working directory.
    work: tempfile::TempDir,
    /// The age identity made by `helm-bulk keygen`.
    key: PathBuf,
    /// Its recipient.
    recipient: String,
    started: Instant,
}

impl Run {
    fn new(helm: Helm) -> Run {
        let work = tempfile::Builder::new()
            .prefix(&format!("helm-bulk-roundtrip-{}.", helm.tag()))
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
        let out = ok(out, "helm-bulk keygen");
        let recipient = text(&out.stdout).trim().to_owned();
        assert!(recipient.starts_with("age1"), "keygen printed {recipient}");
        Run {
            helm,
            work,
            key,
            recipient,
            started: Instant::now(),
        }
    }

    /// A new directory under the working directory.
    fn dir(&self, name: &str) -> PathBuf {
        let d = self.work.path().join(name);
        std::fs::create_dir_all(&d).expect("create a directory");
        d
    }

    fn step(&self, what: &str) {
        eprintln!(
            "[{} +{:5.1}s] {what}",
            self.helm.tag(),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// helm-bulk pointed at `env`, with HELM_BIN set to this test's helm, run
    /// in `cwd` (so no `.helm-bulk.yaml` of the repository is picked up).
    fn bulk_cmd(&self, env: &TestEnv, cwd: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
        env.configure(&mut cmd);
        cmd.env("HELM_BIN", env.helm_bin(self.helm))
            .current_dir(cwd);
        cmd
    }

    fn bulk<I, S>(&self, env: &TestEnv, cwd: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.bulk_cmd(env, cwd);
        cmd.args(args);
        support::run(&mut cmd)
    }

    /// The command `helm-bulk save -r RECIPIENT -o FILE` in `cwd` with TMPDIR=`tmp`.
    fn save_cmd(&self, env: &TestEnv, cwd: &Path, tmp: &Path, file: &Path) -> Command {
        let mut cmd = self.bulk_cmd(env, cwd);
        cmd.env("TMPDIR", tmp)
            .arg("save")
            .arg("-r")
            .arg(&self.recipient)
            .arg("-o")
            .arg(file);
        cmd
    }

    /// Runs [`Run::save_cmd`].
    fn save(&self, env: &TestEnv, cwd: &Path, tmp: &Path, file: &Path) -> Output {
        support::run(&mut self.save_cmd(env, cwd, tmp, file))
    }

    /// `helm-bulk load -i KEY [extra…] FILE`.
    fn load(&self, env: &TestEnv, file: &Path, extra: &[&str]) -> Output {
        let cwd = self.dir("load-cwd");
        let mut args: Vec<&OsStr> = vec!["load".as_ref(), "-i".as_ref(), self.key.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        args.push(file.as_os_str());
        self.bulk(env, &cwd, args)
    }
}

// --- fixtures ---------------------------------------------------------------------

/// Installs every fixture release but leaves `gamma/flaky` at its first
/// (deployed) revision: its failing upgrade is [`fail_flaky_upgrade`], run
/// after the "before" state is recorded, since a failed upgrade may have
/// changed some live objects (the last deployed revision is what is restored).
fn install_fixtures(env: &TestEnv, helm: Helm, canary: &str, operator: &str) {
    // One thread per namespace, each namespace's releases in order: (chart,
    // helm arguments split on whitespace, `CHART` standing for its path).
    let chains: [&[(&str, &str)]; 4] = [
        &[
            (
                "app",
                &format!(
                    "install db CHART -n alpha --create-namespace \
                     --set-string db.password={canary} --set greeting=bonjour"
                ),
            ),
            ("app", "install web CHART -n alpha"),
            ("app", "upgrade web CHART -n alpha --set greeting=second"),
            (
                "app",
                "upgrade web CHART -n alpha --set greeting=third \
                 --set-string db.password=third-password",
            ),
        ],
        &[
            (
                "umbrella",
                "install stack CHART -n beta --create-namespace \
                 --set child.message=from-the-command-line --set tier=backend",
            ),
            ("crds", "install widgets CHART -n beta --set size=5"),
        ],
        &[
            (
                "app",
                "install flaky CHART -n gamma --create-namespace --set greeting=stable",
            ),
            ("crdparent", "install gadgets CHART -n gamma --set speed=9"),
        ],
        &[
            (
                "operator",
                "install ops CHART -n delta --create-namespace --set replicas=5",
            ),
            (
                "dashboards",
                "install grafana CHART -n delta --set adminUser=root",
            ),
        ],
    ];
    std::thread::scope(|s| {
        for chain in chains {
            s.spawn(move || {
                for (name, line) in chain {
                    let path = if *name == "operator" {
                        operator.to_owned()
                    } else {
                        chart(name)
                    };
                    let args = line
                        .split_whitespace()
                        .map(|a| if a == "CHART" { path.as_str() } else { a });
                    env.helm(helm, args);
                }
            });
        }
    });
}

/// Upgrades `gamma/flaky` with a Service port the API server rejects: its
/// latest revision (2) is `failed`, its deployed one stays 1.
fn fail_flaky_upgrade(env: &TestEnv, helm: Helm) {
    let out = env.try_helm(
        helm,
        [
            "upgrade",
            "flaky",
            &chart("app"),
            "-n",
            "gamma",
            "--reuse-values",
            "--set",
            "service.port=99999",
        ],
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("99999"),
        "the upgrade with port 99999 should be rejected by the API server: {}",
        show(&out)
    );
    let history = parse_json(
        &env.helm(helm, ["history", "flaky", "-n", "gamma", "-o", "json"]),
        "helm history",
    );
    let statuses: Vec<(u64, &str)> = history
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|h| {
            (
                h["revision"].as_u64().unwrap_or(0),
                h["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(statuses, [(1, "deployed"), (2, "failed")], "{history}");
}

// --- state of the cluster ------------------------------------------------------------

/// One object of a release's manifest (or hooks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ObjRef {
    kind: String,
    group: String,
    namespace: String,
    name: String,
}

impl ObjRef {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// `Kind.group/name`, as kubectl get takes it.
    fn kubectl_arg(&self) -> String {
        if self.group.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}.{}/{}", self.kind, self.group, self.name)
        }
    }
}

/// The objects of a multi-document YAML manifest, as helm get prints it.
fn parse_refs(yaml: &str, release_namespace: &str) -> Vec<ObjRef> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("the manifest is not valid YAML ({e}):\n{yaml}"));
        if v.is_null() {
            continue;
        }
        // Test hooks run only with `helm test`: no object of theirs exists.
        let hook = v["metadata"]["annotations"]["helm.sh/hook"]
            .as_str()
            .unwrap_or_default();
        if hook
            .split(',')
            .any(|e| matches!(e.trim(), "test" | "test-success"))
        {
            continue;
        }
        let api_version = v["apiVersion"].as_str().unwrap_or_default();
        out.push(ObjRef {
            kind: v["kind"].as_str().unwrap_or_default().to_owned(),
            group: api_version
                .rsplit_once('/')
                .map(|(g, _)| g.to_owned())
                .unwrap_or_default(),
            namespace: v["metadata"]["namespace"]
                .as_str()
                .unwrap_or(release_namespace)
                .to_owned(),
            name: v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    out.sort();
    out
}

/// What of a live object must survive a round trip: everything but metadata
/// and status (so data, stringData, type, spec), without the fields the
/// server generates.
fn comparable(mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    let job = obj["kind"] == "Job";
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        if job {
            // The Job controller labels each Job's Pods with its uid.
            spec.remove("selector");
            if let Some(labels) = spec
                .get_mut("template")
                .and_then(|t| t["metadata"]["labels"].as_object_mut())
            {
                labels.remove("batch.kubernetes.io/controller-uid");
                labels.remove("controller-uid");
            }
        }
    }
    obj
}

/// The live objects (those that exist) among `refs`, by [`ObjRef::key`].
fn live_objects(env: &TestEnv, refs: &[ObjRef]) -> BTreeMap<String, Value> {
    let mut by_ns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in refs {
        by_ns
            .entry(r.namespace.as_str())
            .or_default()
            .push(r.kubectl_arg());
    }
    let mut out = BTreeMap::new();
    for (ns, args) in by_ns {
        let mut cmd = vec![
            "get".to_owned(),
            "-n".to_owned(),
            ns.to_owned(),
            "--ignore-not-found".to_owned(),
            "-o".to_owned(),
            "json".to_owned(),
        ];
        cmd.extend(args);
        let stdout = env.kubectl(&cmd);
        if stdout.trim().is_empty() {
            continue;
        }
        let v = parse_json(&stdout, "kubectl get");
        let items = if v["kind"] == "List" {
            v["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![v]
        };
        for item in items {
            let key = format!(
                "{}/{}/{}",
                item["kind"].as_str().unwrap_or_default(),
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default()
            );
            out.insert(key, comparable(item));
        }
    }
    out
}

/// The fixture CRDs present in the cluster: name → their labels, their
/// annotations, and their `spec` byte for byte as the API server sends it
/// (raw JSON, never parsed into numbers: a rounded bound must show).
fn crd_specs(env: &TestEnv) -> BTreeMap<String, (Value, Value, String)> {
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Vec<Crd<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Crd<'a> {
        metadata: Value,
        #[serde(borrow)]
        spec: &'a serde_json::value::RawValue,
    }
    let stdout = env.kubectl([
        "get",
        "--raw",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ]);
    let list: List =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("the CRD list is not JSON ({e})"));
    list.items
        .into_iter()
        .filter_map(|c| {
            let name = c.metadata["name"].as_str().unwrap_or_default().to_owned();
            CRDS.contains(&name.as_str()).then(|| {
                (
                    name,
                    (
                        c.metadata["labels"].clone(),
                        c.metadata["annotations"].clone(),
                        c.spec.get().to_owned(),
                    ),
                )
            })
        })
        .collect()
}

/// A release as it must be after a restore: its last deployed revision.
#[derive(Debug)]
struct Expected {
    namespace: String,
    name: String,
    /// The revision that was deployed (and is restored).
    revision: u64,
    /// name, namespace, chart, app_version and status of `helm list -o json`.
    row: Value,
    /// `helm get values -o json`.
    values: Value,
    /// `helm get notes` (the app chart's notes hold literal braces).
    notes: String,
    /// `helm get manifest` and `helm get hooks`, `# Source:` comments included.
    manifest: String,
    /// The objects of its manifest and hooks.
    refs: Vec<ObjRef>,
    /// Their live state, by [`ObjRef::key`].
    objects: BTreeMap<String, Value>,
}

fn list_row(entry: &Value) -> Value {
    json!({
        "name": entry["name"],
        "namespace": entry["namespace"],
        "chart": entry["chart"],
        "app_version": entry["app_version"],
        "status": entry["status"],
    })
}

/// The manifest and hooks of a release (its current revision, or `revision`).
fn manifest_and_hooks(
    env: &TestEnv,
    helm: Helm,
    ns: &str,
    name: &str,
    revision: Option<u64>,
) -> String {
    let rev = revision.map(|r| r.to_string());
    let mut manifest = String::new();
    for what in ["manifest", "hooks"] {
        let mut args = vec!["get", what, name, "-n", ns];
        if let Some(r) = &rev {
            args.extend(["--revision", r.as_str()]);
        }
        manifest.push_str(&env.helm(helm, args));
        manifest.push_str("\n---\n");
    }
    manifest
}

/// Records the last deployed revision of one release.
fn expect_release(env: &TestEnv, helm: Helm, ns: &str, name: &str) -> Expected {
    let history = parse_json(
        &env.helm(helm, ["history", name, "-n", ns, "-o", "json"]),
        "helm history",
    );
    let deployed = history
        .as_array()
        .and_then(|h| h.iter().rev().find(|e| e["status"] == "deployed"))
        .unwrap_or_else(|| panic!("{ns}/{name} has no deployed revision: {history}"))
        .clone();
    let revision = deployed["revision"].as_u64().expect("numeric revision");
    let rev = revision.to_string();
    let row = json!({
        "name": name,
        "namespace": ns,
        "chart": deployed["chart"],
        "app_version": deployed["app_version"],
        "status": "deployed",
    });
    let values = parse_json(
        &env.helm(
            helm,
            [
                "get",
                "values",
                name,
                "-n",
                ns,
                "--revision",
                &rev,
                "-o",
                "json",
            ],
        ),
        "helm get values",
    );
    let notes = env.helm(helm, ["get", "notes", name, "-n", ns, "--revision", &rev]);
    let manifest = manifest_and_hooks(env, helm, ns, name, Some(revision));
    let refs = parse_refs(&manifest, ns);
    let objects = live_objects(env, &refs);
    for r in &refs {
        assert!(
            objects.contains_key(&r.key()),
            "fixture {ns}/{name}: {} is not in the cluster before the save",
            r.key()
        );
    }
    Expected {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        revision,
        row,
        values,
        notes,
        manifest,
        refs,
        objects,
    }
}

/// The "before" state: every release's last deployed revision, and the CRDs.
struct Before {
    releases: Vec<Expected>,
    crds: BTreeMap<String, (Value, Value, String)>,
}

impl Before {
    fn record(env: &TestEnv, helm: Helm) -> Before {
        let releases = std::thread::scope(|s| {
            let handles: Vec<_> = RELEASES
                .iter()
                .map(|(ns, name)| s.spawn(move || expect_release(env, helm, ns, name)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("recording a release panicked"))
                .collect::<Vec<_>>()
        });
        Before {
            releases,
            crds: crd_specs(env),
        }
    }

    /// Sets the status `helm list` is expected to show for a release.
    fn set_listed_status(&mut self, ns: &str, name: &str, status: &str) {
        for e in self.releases.iter_mut() {
            if e.namespace == ns && e.name == name {
                e.row["status"] = json!(status);
            }
        }
    }

    fn release(&self, ns: &str, name: &str) -> &Expected {
        self.releases
            .iter()
            .find(|r| r.namespace == ns && r.name == name)
            .unwrap_or_else(|| panic!("no fixture {ns}/{name}"))
    }

    fn object(&self, ns: &str, release: &str, key: &str) -> &Value {
        self.release(ns, release)
            .objects
            .get(key)
            .unwrap_or_else(|| panic!("fixture {ns}/{release} has no {key}"))
    }

    /// Checks the fixtures hold what the scenarios are about.
    fn check_fixtures(&self) {
        assert_eq!(
            self.release("alpha", "web").revision,
            3,
            "web: history of 3"
        );
        assert_eq!(self.release("gamma", "flaky").revision, 1, "flaky");
        let config = self.object("alpha", "db", "ConfigMap/alpha/db-config");
        assert_eq!(config["data"]["template"], "{{ .Values.x }}", "{config}");
        assert_eq!(
            config["data"]["mixed"], "a }} b {{ c {{- d -}} }}",
            "{config}"
        );
        let child = self.object("beta", "stack", "ConfigMap/beta/stack-child");
        assert_eq!(child["data"]["message"], "from-the-command-line", "{child}");
        assert_eq!(child["data"]["chart"], "child", "{child}");
        let notes = &self.release("alpha", "db").notes;
        assert!(notes.contains("Literal: {{ not a template }}"), "{notes}");
        self.object("alpha", "db", "Secret/alpha/db-pre-install");
        self.object("alpha", "db", "Secret/alpha/db-random");
        self.object("beta", "widgets", "Widget/beta/widgets-widget");
        self.object("gamma", "gadgets", "Gadget/gamma/gadgets-gadget");
        // Issue 13's real-world patterns.
        let dashboards = self.object(
            "delta",
            "grafana",
            "ConfigMap/delta/grafana-grafana-dashboards",
        );
        let json = dashboards["data"]["overview.json"]
            .as_str()
            .unwrap_or_default();
        for pattern in [
            r#""options": {}}"#,
            "{{instance}}",
            "{{{triple}}}",
            "}}}",
            "{{/* comment */}}",
        ] {
            assert!(
                json.contains(pattern),
                "the dashboard holds {pattern}: {json}"
            );
        }
        // Live objects are compared without metadata: the annotation is
        // checked in the manifest, which must come back byte-identical.
        let grafana = &self.release("delta", "grafana").manifest;
        assert!(
            grafana.contains(r#"co.elastic.logs/raw: "[{\"container\":{}},"#),
            "{grafana}"
        );
        let both = self.object("delta", "grafana", "ConfigMap/delta/grafana-both");
        assert_eq!(both["data"]["keep"], "echo hi\n", "{both}");
        self.object(
            "delta",
            "grafana",
            "Service/kube-system/grafana-coredns-metrics",
        );
        self.object(
            "delta",
            "grafana",
            "PodDisruptionBudget/delta/grafana-grafana",
        );
        self.object(
            "delta",
            "grafana",
            "RoleBinding/delta/grafana-grafana-setup",
        );
        self.object("delta", "grafana", "Secret/delta/grafana-grafana-tls");
        self.object("delta", "ops", "Cluster/delta/ops");
        self.object("delta", "ops", "Limit/delta/ops-limit");
        // The .Capabilities gate saw ops' CRD: grafana has a Limit too.
        self.object("delta", "grafana", "Limit/delta/grafana-limit");
        assert!(
            grafana.contains("helm.sh/hook: test"),
            "the test hook is stored: {grafana}"
        );
        let (_, annotations, spec) = &self.crds["limits.bounds.helm-bulk.test"];
        assert_eq!(annotations["helm.sh/resource-policy"], "keep");
        assert!(spec.contains(r#""maximum":9223372036854775000"#), "{spec}");
        assert!(self.crds["snapshots.ops.helm-bulk.test"].2.len() > 1 << 20);
        let names: Vec<&str> = self.crds.keys().map(String::as_str).collect();
        let mut want = CRDS.to_vec();
        want.sort();
        assert_eq!(names, want, "the fixtures' CRDs");
    }

    /// Asserts `env` holds exactly the recorded releases, each as recorded.
    fn verify(&self, env: &TestEnv, helm: Helm, what: &str) {
        let list = env.helm_list(helm);
        let listed: BTreeSet<(String, String)> = list
            .iter()
            .map(|r| {
                (
                    r["namespace"].as_str().unwrap_or_default().to_owned(),
                    r["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String)> = RELEASES
            .iter()
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
            .collect();
        assert_eq!(listed, want, "{what}: the releases helm lists");
        std::thread::scope(|s| {
            for r in &self.releases {
                let list = &list;
                s.spawn(move || verify_release(env, helm, r, list, what));
            }
        });
        assert_eq!(crd_specs(env), self.crds, "{what}: the CRDs");
        eprintln!(
            "[{}] {what}: {} releases, {} live objects and {} CRDs identical",
            helm.tag(),
            self.releases.len(),
            self.releases.iter().map(|r| r.objects.len()).sum::<usize>(),
            self.crds.len()
        );
    }
}

fn verify_release(env: &TestEnv, helm: Helm, want: &Expected, list: &[Value], what: &str) {
    let (ns, name) = (want.namespace.as_str(), want.name.as_str());
    let row = list
        .iter()
        .find(|r| r["namespace"] == ns && r["name"] == name)
        .unwrap_or_else(|| panic!("{what}: helm list does not show {ns}/{name}"));
    assert_eq!(
        list_row(row),
        want.row,
        "{what}: helm list row of {ns}/{name}"
    );
    // The release's last deployed revision (helm's current one; the newest
    // revision is a failed upgrade after it when the history has one).
    let history = parse_json(
        &env.helm(helm, ["history", name, "-n", ns, "-o", "json"]),
        "helm history",
    );
    let deployed = history
        .as_array()
        .and_then(|h| h.iter().rev().find(|e| e["status"] == "deployed"))
        .and_then(|e| e["revision"].as_u64())
        .unwrap_or_else(|| panic!("{what}: {ns}/{name} has no deployed revision: {history}"));
    let rev = deployed.to_string();
    let values = parse_json(
        &env.helm(
            helm,
            [
                "get",
                "values",
                name,
                "-n",
                ns,
                "--revision",
                &rev,
                "-o",
                "json",
            ],
        ),
        "helm get values",
    );
    assert_eq!(values, want.values, "{what}: values of {ns}/{name}");
    let notes = env.helm(helm, ["get", "notes", name, "-n", ns, "--revision", &rev]);
    assert_eq!(notes, want.notes, "{what}: notes of {ns}/{name}");
    let manifest = manifest_and_hooks(env, helm, ns, name, Some(deployed));
    let refs = parse_refs(&manifest, ns);
    assert_eq!(
        refs, want.refs,
        "{what}: the objects of {ns}/{name}'s manifest and hooks"
    );
    // The frozen chart puts every document back in the template its
    // `# Source:` comment names: the rendered text is byte-identical.
    assert_eq!(
        manifest, want.manifest,
        "{what}: helm get manifest + hooks of {ns}/{name}"
    );
    let live = live_objects(env, &want.refs);
    for (key, before) in &want.objects {
        let after = live
            .get(key)
            .unwrap_or_else(|| panic!("{what}: {key} of release {ns}/{name} does not exist"));
        assert_eq!(after, before, "{what}: {key} of release {ns}/{name}");
    }
    // Spelled out, although covered above: the render-time random password
    // is byte-equal, the hook-created Secret and the custom resources exist.
    let random = format!("Secret/{ns}/{name}-random");
    if let Some(before) = want.objects.get(&random) {
        let pw = before["data"]["password"]
            .as_str()
            .expect("random password");
        assert_eq!(
            live[&random]["data"]["password"].as_str(),
            Some(pw),
            "{what}: the random password of {ns}/{name}"
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(pw)
            .expect("base64 password");
        assert_eq!(decoded.len(), 32, "a randAlphaNum 32 password");
    }
    for suffix in [
        "Secret/{}/{}-pre-install",
        "Widget/{}/{}-widget",
        "Gadget/{}/{}-gadget",
    ] {
        let key = suffix.replacen("{}", ns, 1).replacen("{}", name, 1);
        if want.objects.contains_key(&key) {
            assert!(live.contains_key(&key), "{what}: {key} is missing");
        }
    }
}

/// The size of `.data.release` (the Secret's base64 text, as
/// `kubectl get secret -o json | jq '.data.release | length'` reports it).
fn record_size(env: &TestEnv, ns: &str, name: &str, revision: u64) -> usize {
    let secret = parse_json(
        &env.kubectl([
            "get",
            "secret",
            &format!("sh.helm.release.v1.{name}.v{revision}"),
            "-n",
            ns,
            "-o",
            "json",
        ]),
        "kubectl get secret",
    );
    secret["data"]["release"]
        .as_str()
        .expect("a release record")
        .len()
}

/// The current revision of a release, from helm list (a string in its JSON).
fn current_revision(env: &TestEnv, helm: Helm, ns: &str, name: &str) -> u64 {
    let list = env.helm_list(helm);
    let row = list
        .iter()
        .find(|r| r["namespace"] == ns && r["name"] == name)
        .unwrap_or_else(|| panic!("helm list does not show {ns}/{name}"));
    match &row["revision"] {
        Value::String(s) => s.parse().expect("numeric revision"),
        v => v.as_u64().expect("numeric revision"),
    }
}

/// Asserts no file under `dirs` contains `canary`; returns how many were scanned.
fn assert_no_plaintext(dirs: &[&Path], canary: &str) -> usize {
    let mut scanned = 0;
    for dir in dirs {
        for f in files_under(dir) {
            let data = std::fs::read(&f).unwrap_or_default();
            scanned += 1;
            assert!(
                !data.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "the secret value is in plaintext in {}",
                f.display()
            );
        }
    }
    scanned
}

fn lines_with<'a>(stderr: &'a str, needle: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(needle)).collect()
}

// --- the scenarios -------------------------------------------------------------------

/// Every scenario, in sequence, with one Helm major version.
fn round_trip(helm: Helm) {
    let run = Run::new(helm);
    // The clone target starts in the background meanwhile.
    let clone_target = std::thread::spawn(TestEnv::start);
    let env = TestEnv::start();
    run.step("environment up");

    let canary = format!("canary-{}", random_hex(12));
    let operator = operator_chart(run.work.path());
    install_fixtures(&env, helm, &canary, &operator);
    let mut before = Before::record(&env, helm);
    before.check_fixtures();
    // Positive control for the plaintext scans: the canary is a user value.
    assert_eq!(
        before.release("alpha", "db").values["db"]["password"],
        canary.as_str()
    );
    fail_flaky_upgrade(&env, helm);
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
    // The largest release record, for the size comparison after the restore.
    let (largest, original_size) = before
        .releases
        .iter()
        .map(|r| (r, record_size(&env, &r.namespace, &r.name, r.revision)))
        .max_by_key(|(_, size)| *size)
        .expect("fixtures");
    run.step("fixtures installed and recorded");

    // ---- save, with no plaintext on disk -----------------------------------------
    let save_cwd = run.dir("save-cwd");
    let save_tmp = run.dir("save-tmp");
    let snapshot = save_cwd.join("snapshot.age");
    let out = ok(
        run.save(&env, &save_cwd, &save_tmp, &snapshot),
        "helm-bulk save",
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("Saved 8 releases (11 revisions, 7 CRDs, 3 of them for their API group only"),
        "save summary: {stderr}"
    );
    assert!(snapshot.is_file());
    let scanned = assert_no_plaintext(&[&save_cwd, &save_tmp], &canary);
    assert!(scanned >= 1, "the snapshot itself was scanned");
    assert!(leftover_temp_files(&save_cwd).is_empty());
    // show lists every CRD and why save took it.
    let out = ok(
        run.bulk(
            &env,
            &save_cwd,
            [
                OsStr::new("show"),
                OsStr::new("-i"),
                run.key.as_os_str(),
                snapshot.as_os_str(),
            ],
        ),
        "show",
    );
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
    run.step("saved");

    // ---- clone: load into a second cluster while the first is up ---------------
    let clone_env = clone_target
        .join()
        .expect("starting the clone target panicked");
    let out = ok(run.load(&clone_env, &snapshot, &[]), "load into the clone");
    let stderr = text(&out.stderr);
    assert_eq!(
        lines_with(&stderr, "installed ").len(),
        RELEASES.len(),
        "{stderr}"
    );
    before.verify(&clone_env, helm, "clone into a second cluster");
    drop(clone_env);
    // The source cluster is untouched: still every release, flaky still failed.
    let source_list = env.helm_list(helm);
    assert_eq!(source_list.len(), RELEASES.len());
    assert!(
        source_list
            .iter()
            .any(|r| r["name"] == "flaky" && r["status"] == "failed"),
        "{source_list:?}"
    );
    run.step("cloned into a second cluster");

    // ---- the cluster is lost: restore it ---------------------------------------
    env.wipe();
    assert!(env.helm_list(helm).is_empty(), "the wipe left releases");
    let load_tmp = run.dir("load-tmp");
    let mut cmd = run.bulk_cmd(&env, &run.dir("load-cwd"));
    cmd.env("TMPDIR", &load_tmp)
        .arg("load")
        .arg("-i")
        .arg(&run.key)
        .arg(&snapshot);
    let out = ok(support::run(&mut cmd), "load after the cluster was lost");
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
    assert_no_plaintext(&[&load_tmp], &canary);
    before.verify(&env, helm, "restore after the cluster was lost");
    let restored_size = record_size(
        &env,
        &largest.namespace,
        &largest.name,
        current_revision(&env, helm, &largest.namespace, &largest.name),
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
    // helm-bulk created the CRDs no restored chart's crds/ holds, as
    // `helm-bulk`; those in a chart's crds/ were left to helm.
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
                !managers.contains("helm-bulk") && lines_with(&stderr, crd).is_empty(),
                "{crd} is left to helm: managers {managers}\n{stderr}"
            );
        } else {
            let managers: Vec<&str> = managers.split_whitespace().collect();
            assert!(
                managers.contains(&"helm-bulk") && !managers.contains(&"unknown"),
                "the field managers of {crd}: {managers:?}"
            );
            assert_eq!(
                lines_with(&stderr, &format!("created   CRD {crd}")).len(),
                1,
                "{stderr}"
            );
        }
    }
    run.step("restored after a wipe");

    // ---- a second load installs nothing --------------------------------------------
    let out = ok(run.load(&env, &snapshot, &[]), "second load");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Nothing to install"), "{stderr}");
    assert!(lines_with(&stderr, "installed ").is_empty(), "{stderr}");
    run.step("second load: nothing to install");

    // ---- --upgrade brings changed values back -----------------------------------
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
    let rerendered = live_objects(&env, &before.release("alpha", "db").refs);
    assert_ne!(
        rerendered[random_key],
        *before.object("alpha", "db", random_key),
        "the upgrade with the original chart renders a new random password"
    );
    let out = ok(run.load(&env, &snapshot, &["--upgrade"]), "load --upgrade");
    let stderr = text(&out.stderr);
    assert_eq!(
        lines_with(&stderr, "upgraded  alpha/db ").len(),
        1,
        "{stderr}"
    );
    // Values, the manifest (the re-rendered random password too) are back.
    // load --upgrade upgraded flaky too, whose newest revision was its
    // failed upgrade: helm list shows the new, deployed revision.
    before.set_listed_status("gamma", "flaky", "deployed");
    before.verify(&env, helm, "load --upgrade after a change");
    before.set_listed_status("gamma", "flaky", "failed");
    run.step("load --upgrade");

    // ---- --dry-run changes nothing ---------------------------------------------------
    env.wipe();
    let namespaces = env.kubectl(["get", "namespaces", "-o", "name"]);
    let list_before = env.helm_list(helm);
    let out = ok(run.load(&env, &snapshot, &["--dry-run"]), "load --dry-run");
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
    assert!(crd_specs(&env).is_empty(), "--dry-run created CRDs");
    run.step("load --dry-run");

    // ---- a release helm refuses to install; an excluded one -----------------------
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
    let out = run.load(&env, &snapshot, &["--exclude", "gamma/flaky"]);
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
    let installed: BTreeSet<String> = env
        .helm_list(helm)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
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
    // Fix the cause and run load again: it completes.
    env.kubectl(["delete", "configmap", "web-config", "-n", "alpha"]);
    let out = ok(
        run.load(&env, &snapshot, &[]),
        "load after fixing the cause",
    );
    let stderr = text(&out.stderr);
    assert_eq!(lines_with(&stderr, "installed ").len(), 2, "{stderr}");
    assert!(
        stderr.contains("installed alpha/web ") && stderr.contains("installed gamma/flaky "),
        "{stderr}"
    );
    before.verify(&env, helm, "rerun after a failed release");
    run.step("failed release reported, rerun completed; excluded release skipped");

    // ---- the API server dies during save ---------------------------------------------
    frozen_chart_defect_is_reported(&run, &env);
    run.step("a frozen chart helm refuses: reported as a helm-bulk defect");

    save_dies_with_the_apiserver(&run, &env);
    run.step("save with the API server killed");
}

/// A stored document helm cannot read (a hand-made record: invalid YAML)
/// makes helm refuse the frozen chart. load's preflight (which renders every
/// frozen chart before the first install) reports it as a helm-bulk defect
/// naming the stored document and line, stops with exit 1, and `--debug`
/// prints the document.
fn frozen_chart_defect_is_reported(run: &Run, env: &TestEnv) {
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
    create_release_secrets(run, env, "defect", &[record]);
    let dir = run.dir("defect");
    let snapshot = dir.join("defect.age");
    let mut cmd = run.save_cmd(env, &dir, &dir, &snapshot);
    cmd.args(["--include", "defect/*"]);
    ok(support::run(&mut cmd), "save of the defect record");
    env.kubectl(["delete", "namespace", "defect", "--wait=true"]);
    let out = run.bulk(
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
fn save_dies_with_the_apiserver(run: &Run, env: &TestEnv) {
    let records: Vec<String> = (0..BULK_RECORDS)
        .map(|i| {
            // Incompressible, so every page carries some weight.
            synthetic_record("bulk", &format!("bulk-{i:03}"), 2048)
        })
        .collect();
    create_release_secrets(run, env, "bulk", &records);
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
fn start_slow_save(
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
fn assert_nothing_left(out_dir: &Path, tmp: &Path, what: &str) {
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
fn wait_for_exit(child: &mut std::process::Child, stderr_file: &Path) -> std::process::ExitStatus {
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

#[test]
fn round_trip_helm4() {
    round_trip(Helm::V4);
}

#[test]
fn round_trip_helm3() {
    round_trip(Helm::V3);
}

/// Release records near Kubernetes' size limit: list pages shrink to the
/// byte budget (8 MiB of records) instead of asking for 100 objects of ~½ MiB,
/// and every record still arrives byte-exact.
#[test]
fn large_records_are_listed_in_small_pages() {
    use sha2::Digest as _;
    const COUNT: usize = 40;
    let env = TestEnv::start();
    let run = Run::new(Helm::V4);
    let records: Vec<String> = (0..COUNT)
        .map(|i| {
            // ~400 KiB that gzip cannot shrink much: a payload of ~½ MiB.
            synthetic_record("large", &format!("large-{i:02}"), 200 << 10)
        })
        .collect();
    let want: BTreeMap<String, String> = records
        .iter()
        .map(|r| {
            let name = parse_json(r, "record")["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (name, hex::encode(sha2::Sha256::digest(r.as_bytes())))
        })
        .collect();
    create_release_secrets(&run, &env, "large", &records);

    let cwd = run.dir("large");
    let snapshot = cwd.join("large.age");
    let mut cmd = run.bulk_cmd(&env, &cwd);
    cmd.args(["--debug", "save", "-r", &run.recipient, "-o"])
        .arg(&snapshot);
    let out = ok(support::run(&mut cmd), "save of large records");
    let stderr = text(&out.stderr);
    // "debug: listed N Secrets (limit L, ...)", one line per request, both passes.
    let limits: Vec<u32> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("debug: listed "))
        .filter_map(|l| l.split("(limit ").nth(1)?.split(',').next()?.parse().ok())
        .collect();
    assert!(
        limits.len() >= 4,
        "expected several pages per pass:\n{stderr}"
    );
    assert!(
        limits.iter().all(|&l| l <= 20),
        "pages of ~½ MiB records must stay near 8 MiB (at most ~16 records): {limits:?}\n{stderr}"
    );

    let out = ok(
        run.bulk(
            &env,
            &cwd,
            [
                OsStr::new("show"),
                OsStr::new("-o"),
                OsStr::new("json"),
                OsStr::new("-i"),
                run.key.as_os_str(),
                snapshot.as_os_str(),
            ],
        ),
        "show",
    );
    let index = parse_json(&text(&out.stdout), "show -o json");
    let got: BTreeMap<String, String> = index["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["sha256"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want, "every large record saved byte-exact");
}
