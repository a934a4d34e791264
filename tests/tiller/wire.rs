//! Wire compatibility of helm-bulk's `hapi` messages with a second protobuf
//! implementation: Python's protobuf runtime, using code that grpcio-tools'
//! protoc generates at test time from the same proto/hapi files.
//!
//! For every message helm-bulk sends or receives, with every field set:
//! * Rust encodes → Python decodes: no field unknown to Python, the decoded
//!   values are the expected ones (by field name), and Python encodes them
//!   back to the very same bytes;
//! * Python encodes the expected values → Rust decodes the same message and
//!   encodes it back to the very same bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use helm_bulk::tiller::hapi::chart::{
    Chart, Config, Maintainer, Metadata, Template, Value as HValue,
};
use helm_bulk::tiller::hapi::release::status::Code;
use helm_bulk::tiller::hapi::release::test_run::Status as RunStatus;
use helm_bulk::tiller::hapi::release::{Hook, Info, Release, Status, TestRun, TestSuite, hook};
use helm_bulk::tiller::hapi::services::tiller::*;
use helm_bulk::tiller::hapi::version::Version;
use prost::Message;
use prost_types::{Any, Timestamp};
use serde_json::{Value, json};

mod samples;

use samples::*;

include!("../../proto/protos.rs");

const PIP_HINT: &str = "this test needs Python 3 with the `protobuf` and `grpcio-tools` packages \
     (python3 -m pip install protobuf grpcio-tools; scripts/test installs them). \
     Set HELM_BULK_PYTHON to use another interpreter";

/// The Python interpreter: HELM_BULK_PYTHON, else the test environment's
/// virtualenv when it has the packages, else python3 on PATH.
fn python() -> PathBuf {
    let check = |p: &Path| {
        Command::new(p)
            .args(["-c", "import google.protobuf, grpc_tools.protoc"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(p) = std::env::var_os("HELM_BULK_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            check(&p),
            "HELM_BULK_PYTHON={} cannot import google.protobuf and grpc_tools: {PIP_HINT}",
            p.display()
        );
        return p;
    }
    let mut candidates = Vec::new();
    if let Some(env) = std::env::var_os("HELM_BULK_PYENV") {
        candidates.push(PathBuf::from(env).join("bin/python3"));
    }
    let cache = std::env::var_os("HELM_BULK_TESTENV_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/helm-bulk/testenv")
        });
    candidates.push(cache.join("py/bin/python3"));
    candidates.push(PathBuf::from("python3"));
    candidates
        .into_iter()
        .find(|p| check(p))
        .unwrap_or_else(|| panic!("{PIP_HINT}"))
}

/// Decodes Python's bytes, compares with the Rust value, encodes it again.
type Roundtrip = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, String>>;

/// One message to check both ways.
struct Case {
    type_name: &'static str,
    bytes: Vec<u8>,
    plain: Value,
    roundtrip: Roundtrip,
}

fn case<M>(type_name: &'static str, value: M, plain: Value) -> Case
where
    M: Message + Default + PartialEq + std::fmt::Debug + 'static,
{
    let bytes = value.encode_to_vec();
    Case {
        type_name,
        bytes,
        plain,
        roundtrip: Box::new(move |data| {
            let decoded = M::decode(data).map_err(|e| format!("Rust cannot decode it: {e}"))?;
            if decoded != value {
                return Err(format!(
                    "Rust decoded\n{decoded:#?}\ninstead of\n{value:#?}"
                ));
            }
            Ok(decoded.encode_to_vec())
        }),
    }
}

/// Every message with a value that sets each field, and its JSON.
fn cases() -> Vec<Case> {
    let mut all = model_cases();
    all.extend(read_cases());
    all.extend(write_cases());
    all.extend(version_and_history_cases());
    all
}

/// The release, chart and version messages.
fn model_cases() -> Vec<Case> {
    let release = full_release();
    let release_json = full_release_json();
    vec![
        case(
            "hapi.release.Release",
            release.clone(),
            release_json.clone(),
        ),
        case("hapi.chart.Chart", full_chart(), full_chart_json()),
        case("hapi.chart.Metadata", full_metadata(), full_metadata_json()),
        case(
            "hapi.version.Version",
            Version {
                sem_ver: "v2.17.0".into(),
                git_commit: "a690bad98af45b015bd3da1a41f6218b1a451dbe".into(),
                git_tree_state: "clean".into(),
            },
            json!({"sem_ver": "v2.17.0", "git_commit": "a690bad98af45b015bd3da1a41f6218b1a451dbe", "git_tree_state": "clean"}),
        ),
    ]
}

/// The requests and responses helm-bulk reads releases with.
fn read_cases() -> Vec<Case> {
    let release = full_release();
    let release_json = full_release_json();
    vec![
        case(
            "hapi.services.tiller.ListReleasesRequest",
            ListReleasesRequest {
                limit: 100,
                offset: "carl".into(),
                sort_by: list_sort::SortBy::LastReleased as i32,
                filter: "^web".into(),
                sort_order: list_sort::SortOrder::Desc as i32,
                status_codes: vec![
                    Code::Deployed as i32,
                    Code::Deleted as i32,
                    Code::PendingRollback as i32,
                ],
                namespace: "prod".into(),
            },
            json!({"limit": 100, "offset": "carl", "sort_by": "LAST_RELEASED", "filter": "^web",
                   "sort_order": "DESC", "status_codes": ["DEPLOYED", "DELETED", "PENDING_ROLLBACK"],
                   "namespace": "prod"}),
        ),
        case("hapi.services.tiller.ListSort", ListSort {}, json!({})),
        case(
            "hapi.services.tiller.ListReleasesResponse",
            ListReleasesResponse {
                count: 1,
                next: "dennis".into(),
                total: 1234,
                releases: vec![release.clone()],
            },
            json!({"count": 1, "next": "dennis", "total": 1234, "releases": [release_json.clone()]}),
        ),
        case(
            "hapi.services.tiller.GetReleaseStatusRequest",
            GetReleaseStatusRequest {
                name: "web".into(),
                version: 3,
            },
            json!({"name": "web", "version": 3}),
        ),
        case(
            "hapi.services.tiller.GetReleaseStatusResponse",
            GetReleaseStatusResponse {
                name: "web".into(),
                info: release.info.clone(),
                namespace: "prod".into(),
            },
            json!({"name": "web", "info": release_json["info"].clone(), "namespace": "prod"}),
        ),
        case(
            "hapi.services.tiller.GetReleaseContentRequest",
            GetReleaseContentRequest {
                name: "web".into(),
                version: 7,
            },
            json!({"name": "web", "version": 7}),
        ),
        case(
            "hapi.services.tiller.GetReleaseContentResponse",
            GetReleaseContentResponse {
                release: Some(release.clone()),
            },
            json!({"release": release_json.clone()}),
        ),
    ]
}

/// The requests and responses `load --to-tiller` writes releases with.
fn write_cases() -> Vec<Case> {
    let release = full_release();
    let release_json = full_release_json();
    let config = Config {
        raw: "password: s3cr3t\n".into(),
        values: Default::default(),
    };
    vec![
        case(
            "hapi.services.tiller.UpdateReleaseRequest",
            UpdateReleaseRequest {
                name: "web".into(),
                chart: Some(full_chart()),
                values: Some(config.clone()),
                dry_run: true,
                disable_hooks: true,
                recreate: true,
                timeout: 300,
                reset_values: true,
                wait: true,
                reuse_values: true,
                force: true,
                description: "Restored".into(),
                sub_notes: true,
                cleanup_on_fail: true,
            },
            json!({"name": "web", "chart": full_chart_json(), "values": {"raw": "password: s3cr3t\n"},
                   "dry_run": true, "disable_hooks": true, "recreate": true, "timeout": 300,
                   "reset_values": true, "wait": true, "reuse_values": true, "force": true,
                   "description": "Restored", "subNotes": true, "cleanup_on_fail": true}),
        ),
        case(
            "hapi.services.tiller.UpdateReleaseResponse",
            UpdateReleaseResponse {
                release: Some(release.clone()),
            },
            json!({"release": release_json.clone()}),
        ),
        case(
            "hapi.services.tiller.InstallReleaseRequest",
            InstallReleaseRequest {
                chart: Some(full_chart()),
                values: Some(config.clone()),
                dry_run: true,
                name: "web".into(),
                disable_hooks: true,
                namespace: "prod".into(),
                reuse_name: true,
                timeout: 300,
                wait: true,
                disable_crd_hook: true,
                description: "Restored".into(),
                sub_notes: true,
            },
            json!({"chart": full_chart_json(), "values": {"raw": "password: s3cr3t\n"},
                   "dry_run": true, "name": "web", "disable_hooks": true, "namespace": "prod",
                   "reuse_name": true, "timeout": 300, "wait": true, "disable_crd_hook": true,
                   "description": "Restored", "subNotes": true}),
        ),
        case(
            "hapi.services.tiller.InstallReleaseResponse",
            InstallReleaseResponse {
                release: Some(release.clone()),
            },
            json!({"release": release_json.clone()}),
        ),
        case(
            "hapi.services.tiller.UninstallReleaseRequest",
            UninstallReleaseRequest {
                name: "web".into(),
                disable_hooks: true,
                purge: true,
                timeout: 300,
                description: "Replaced".into(),
            },
            json!({"name": "web", "disable_hooks": true, "purge": true, "timeout": 300, "description": "Replaced"}),
        ),
        case(
            "hapi.services.tiller.UninstallReleaseResponse",
            UninstallReleaseResponse {
                release: Some(release.clone()),
                info: "deleted".into(),
            },
            json!({"release": release_json.clone(), "info": "deleted"}),
        ),
    ]
}

/// GetVersion and GetHistory.
fn version_and_history_cases() -> Vec<Case> {
    let release = full_release();
    let release_json = full_release_json();
    vec![
        case(
            "hapi.services.tiller.GetVersionRequest",
            GetVersionRequest {},
            json!({}),
        ),
        case(
            "hapi.services.tiller.GetVersionResponse",
            GetVersionResponse {
                version: Some(Version {
                    sem_ver: "v2.16.12".into(),
                    git_commit: "47f0b88409e71fd9ca272abc7cd762a56a1c613e".into(),
                    git_tree_state: "clean".into(),
                }),
            },
            json!({"Version": {"sem_ver": "v2.16.12", "git_commit": "47f0b88409e71fd9ca272abc7cd762a56a1c613e", "git_tree_state": "clean"}}),
        ),
        case(
            "hapi.services.tiller.GetHistoryRequest",
            GetHistoryRequest {
                name: "web".into(),
                max: 256,
            },
            json!({"name": "web", "max": 256}),
        ),
        case(
            "hapi.services.tiller.GetHistoryResponse",
            GetHistoryResponse {
                releases: vec![
                    release.clone(),
                    Release {
                        name: "web".into(),
                        version: 6,
                        namespace: "prod".into(),
                        ..Default::default()
                    },
                ],
            },
            json!({"releases": [release_json, {"name": "web", "version": 6, "namespace": "prod"}]}),
        ),
    ]
}

/// Runs the Python side on `requests`; returns its results.
fn run_python(python: &Path, generated: &Path, requests: &Value) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tiller/hapi_wire.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(generated)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let input = serde_json::to_vec(requests).unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tests/tiller/hapi_wire.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hapi_wire.py printed JSON")
}

pub fn check_against_python() {
    let python = python();
    let generated = tempfile::tempdir().unwrap();
    let proto_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let out = Command::new(&python)
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto_dir.display()))
        .arg(format!("--python_out={}", generated.path().display()))
        .args(PROTOS)
        .output()
        .expect("run grpc_tools.protoc");
    assert!(
        out.status.success(),
        "grpcio-tools' protoc rejected proto/hapi:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = cases();
    let mut requests = Vec::new();
    for c in &cases {
        requests.push(json!({"type": c.type_name, "bytes": B64.encode(&c.bytes)}));
        requests.push(json!({"type": c.type_name, "plain": c.plain}));
    }
    let results = run_python(&python, generated.path(), &Value::Array(requests));
    assert_eq!(results.len(), cases.len() * 2);
    for (c, pair) in cases.iter().zip(results.chunks(2)) {
        let (decoded, encoded) = (&pair[0], &pair[1]);
        // Rust → Python.
        assert_eq!(
            decoded["unknown"], false,
            "{}: Python found fields it does not know in Rust's encoding",
            c.type_name
        );
        assert_eq!(
            decoded["plain"], c.plain,
            "{}: Python decoded Rust's bytes to other values",
            c.type_name
        );
        assert_eq!(
            decoded["bytes"].as_str().unwrap(),
            B64.encode(&c.bytes),
            "{}: Python re-encodes Rust's bytes differently",
            c.type_name
        );
        // Python → Rust.
        let py = B64.decode(encoded["bytes"].as_str().unwrap()).unwrap();
        let again = (c.roundtrip)(&py).unwrap_or_else(|e| panic!("{}: {e}", c.type_name));
        assert_eq!(
            again, py,
            "{}: Rust re-encodes Python's bytes differently",
            c.type_name
        );
        assert_eq!(
            py, c.bytes,
            "{}: Python and Rust encode the same values differently",
            c.type_name
        );
    }
    eprintln!(
        "wire: {} message types agree with Python protobuf ({})",
        cases.len(),
        python.display()
    );
}
