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

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../no_cluster/mod.rs"]
mod no_cluster;

mod expect;
mod faults;
mod fixtures;
mod scenario;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cluster::{Helm, Run, TestEnv, chart};
use no_cluster::{files_under, lines_with, ok_as, show, signal, text};
use serde::Deserialize as _;
use serde_json::{Value, json};

use expect::*;
use faults::*;
use fixtures::*;
use scenario::*;
use state::*;

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

// --- one test's context ----------------------------------------------------------

impl Run {
    /// The command `helm-bulk save -r RECIPIENT -o FILE` in `cwd` with TMPDIR=`tmp`.
    fn save_cmd(&self, env: &TestEnv, cwd: &Path, tmp: &Path, file: &Path) -> Command {
        let mut cmd = self.bulk_cmd_in(env, cwd);
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
        no_cluster::run(&mut self.save_cmd(env, cwd, tmp, file))
    }

    /// `helm-bulk load -i KEY [extra…] FILE`.
    fn load(&self, env: &TestEnv, file: &Path, extra: &[&str]) -> Output {
        let cwd = self.dir("load-cwd");
        let mut args: Vec<&OsStr> = vec!["load".as_ref(), "-i".as_ref(), self.key.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        args.push(file.as_os_str());
        self.bulk_in(env, &cwd, args)
    }
}

cluster::helm4_and_helm3! {
    round_trip => round_trip_helm4, round_trip_helm3;
}

/// Release records near Kubernetes' size limit: list pages shrink to the
/// byte budget (8 MiB of records) instead of asking for 100 objects of ~½ MiB,
/// and every record still arrives byte-exact.
#[test]
fn large_records_are_listed_in_small_pages() {
    use sha2::Digest as _;
    const COUNT: usize = 40;
    let env = TestEnv::start();
    let run = Run::new(Helm::V4, "roundtrip");
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
    run.create_release_secrets(&env, "large", &records);

    let cwd = run.dir("large");
    let snapshot = cwd.join("large.age");
    let mut cmd = run.bulk_cmd_in(&env, &cwd);
    cmd.args(["--debug", "save", "-r", &run.recipient, "-o"])
        .arg(&snapshot);
    let out = ok_as(no_cluster::run(&mut cmd), "save of large records");
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

    let out = ok_as(
        run.bulk_in(
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
