//! Snapshots in object storage, against a real S3-compatible server (moto's
//! server mode) and the real test cluster: round trip, interrupted uploads,
//! retention, and clear errors for wrong credentials and missing buckets.

mod cluster;
mod no_cluster;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use cluster::{Helm, TestEnv};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use no_cluster::s3::S3Server;
use no_cluster::{fails_with, ok};

fn bulk(env: Option<&TestEnv>, s3: &S3Server, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
    if let Some(env) = env {
        env.configure(&mut c);
        c.env("HELM_BIN", env.helm_bin(Helm::V4));
    }
    s3.configure(&mut c);
    c.current_dir(dir).env("HELM_CONFIG_HOME", dir);
    c
}

/// `helm-bulk save -r RECIPIENT --to s3://dr-vault/helm --endpoint …` on `env`.
fn save_to_vault(env: &TestEnv, s3: &S3Server, dir: &std::path::Path, recipient: &str) -> Command {
    let mut c = bulk(Some(env), s3, dir);
    c.args([
        "save",
        "-r",
        recipient,
        "--to",
        "s3://dr-vault/helm",
        "--endpoint",
        &s3.endpoint,
    ]);
    c
}

fn listed(
    env: Option<&TestEnv>,
    s3: &S3Server,
    dir: &std::path::Path,
    url: &str,
) -> Vec<serde_json::Value> {
    let out = ok(bulk(env, s3, dir)
        .args(["list", "--endpoint", &s3.endpoint, url, "-o", "json"])
        .output()
        .unwrap());
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

#[test]
fn save_list_show_load_round_trip() {
    let s3 = S3Server::start(&["dr-vault"]);
    let env = TestEnv::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, ns) in [("shop", "retail"), ("ledger", "finance")] {
        env.helm(
            Helm::V4,
            [
                "install",
                name,
                &cluster::chart("smoke"),
                "-n",
                ns,
                "--create-namespace",
                "--set-string",
                "secretValue=top-secret",
                "--labels",
                "team=dr-drill",
            ],
        );
    }
    let (identity, recipient) = no_cluster::keygen(d, "id.txt");
    let key = no_cluster::ssh_keygen(d, "sign", "ed25519", "");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(d.join("allowed"), format!("ops@example.com {public}")).unwrap();
    let cluster = save_signed_and_list_it(&env, &s3, d, &recipient, &key);
    let allowed = d.join("allowed");
    let out = ok(bulk(Some(&env), &s3, d)
        .args(["show", "--endpoint", &s3.endpoint, "-o", "json", "-i"])
        .arg(&identity)
        .arg("--trusted-signers")
        .arg(&allowed)
        .arg(format!("s3://dr-vault/helm/{cluster}/latest"))
        .output()
        .unwrap());
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(index["releases"].as_array().unwrap().len(), 2);
    env.wipe();
    assert!(env.helm_list(Helm::V4).is_empty());
    load_latest_into_the_wiped_cluster(&env, &s3, d, &identity, &allowed);
}

/// A signed save to the bucket: `list` shows one signed object, named by the
/// cluster and a time alone. Returns the cluster's name.
fn save_signed_and_list_it(
    env: &TestEnv,
    s3: &S3Server,
    d: &Path,
    recipient: &str,
    sign_key: &Path,
) -> String {
    let out = ok(save_to_vault(env, s3, d, recipient)
        .arg("--sign-key")
        .arg(sign_key)
        .output()
        .unwrap());
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://dr-vault/helm"));
    let objects = listed(Some(env), s3, d, "s3://dr-vault/helm");
    assert_eq!(objects.len(), 1, "{objects:?}");
    let obj = &objects[0];
    assert_eq!(obj["signed"], true);
    let cluster = obj["cluster"].as_str().unwrap().to_owned();
    let key_name = obj["key"].as_str().unwrap();
    assert!(
        key_name.starts_with(&format!("helm/{cluster}/")),
        "{key_name}"
    );
    assert!(key_name.ends_with(".tar.gz.age"));
    // Nothing about the releases leaks into object names.
    for word in ["shop", "retail", "ledger", "finance", "smoke"] {
        assert!(!key_name.contains(word), "{key_name}");
    }
    cluster
}

/// `load --from s3://…/latest` brings both releases back, with their values
/// and their labels.
fn load_latest_into_the_wiped_cluster(
    env: &TestEnv,
    s3: &S3Server,
    d: &Path,
    identity: &Path,
    allowed: &Path,
) {
    ok(bulk(Some(env), s3, d)
        .args([
            "load",
            "--endpoint",
            &s3.endpoint,
            "--from",
            "s3://dr-vault/helm/latest",
            "-i",
        ])
        .arg(identity)
        .arg("--trusted-signers")
        .arg(allowed)
        .output()
        .unwrap());
    assert_eq!(
        env.release_names(Helm::V4),
        ["finance/ledger", "retail/shop"]
    );
    let values = env.helm(
        Helm::V4,
        ["get", "values", "shop", "-n", "retail", "-o", "json"],
    );
    assert!(values.contains("top-secret"));
    // Release labels live on Helm's storage object, not in the record: they
    // come back too.
    let label = env.kubectl([
        "get",
        "secret",
        "-n",
        "retail",
        "-l",
        "owner=helm,name=shop",
        "-o",
        "jsonpath={.items[0].metadata.labels.team}",
    ]);
    assert_eq!(label.trim(), "dr-drill");
}

/// A Helm release Secret with a large, incompressible value, created directly.
fn big_release(i: usize) -> Secret {
    let mut noise = vec![0u8; 450 * 1024];
    for (j, b) in noise.iter_mut().enumerate() {
        // A simple generator is enough to defeat gzip.
        *b = ((j as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add((i as u64).wrapping_mul(1442695040888963407))
            >> 33) as u8;
    }
    let value = base64::engine::general_purpose::STANDARD.encode(&noise);
    let json = serde_json::json!({
        "name": format!("big{i}"), "namespace": "bulk", "version": 1,
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": "big", "version": "1.0.0"}},
        "config": {"blob": value}, "manifest": ""
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json.to_string().as_bytes()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let mut secret = Secret::default();
    secret.metadata.name = Some(format!("sh.helm.release.v1.big{i}.v1"));
    secret.metadata.namespace = Some("bulk".to_owned());
    secret.metadata.labels = Some(
        [
            ("owner", "helm"),
            ("name", &format!("big{i}")),
            ("status", "deployed"),
            ("version", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    secret.type_ = Some("helm.sh/release.v1".to_owned());
    secret.data = Some([("release".to_owned(), ByteString(payload.into_bytes()))].into());
    secret
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_upload_leaves_no_snapshot() {
    let s3 = S3Server::start(&["dr-vault"]);
    let env = TestEnv::start();
    env.kubectl(["create", "namespace", "bulk"]);
    let client = env.client().await;
    let api: kube::Api<Secret> = kube::Api::namespaced(client, "bulk");
    for i in 0..60 {
        api.create(&Default::default(), &big_release(i))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = no_cluster::keygen(d, "id.txt");
    // Ctrl-C first (save aborts its multipart upload), then SIGKILL (no
    // chance to clean up: the parts stay as an unfinished upload).
    for sig in ["INT", "KILL"] {
        interrupt_an_upload(&env, &s3, d, &recipient, sig);
    }
    let out = bulk(Some(&env), &s3, d)
        .args([
            "show",
            "--endpoint",
            &s3.endpoint,
            "s3://dr-vault/helm/latest",
        ])
        .output()
        .unwrap();
    fails_with(&out, 1, "no snapshot found at s3://dr-vault/helm");
}

/// Starts a save to the bucket and sends it `sig` (INT or KILL) while its
/// multipart upload is in progress: no snapshot is left, and after SIGINT
/// save says so in one line and aborts the upload.
fn interrupt_an_upload(env: &TestEnv, s3: &S3Server, d: &Path, recipient: &str, sig: &str) {
    // Watching first, so that it is polling by the time save starts uploading.
    let mut watcher = s3.watch_uploads("dr-vault");
    std::thread::sleep(Duration::from_secs(1));
    let stderr_file = d.join(format!("save-{sig}.stderr"));
    let mut save = save_to_vault(env, s3, d, recipient)
        // One object per request: the records take a while to stream.
        .args(["--page-size", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = watcher.try_wait().unwrap() {
            assert!(status.success(), "the upload watcher failed: {status}");
            break;
        }
        if let Some(status) = save.try_wait().unwrap() {
            let _ = watcher.kill();
            panic!(
                "save ended ({status}) before its upload was seen in progress: {}",
                std::fs::read_to_string(&stderr_file).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(save.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = save.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    assert!(
        listed(Some(env), s3, d, "s3://dr-vault/helm").is_empty(),
        "an interrupted upload (SIG{sig}) left a snapshot"
    );
    if sig == "INT" {
        assert_eq!(status.code(), Some(130), "save after SIGINT: {stderr}");
        assert_eq!(
            stderr.trim(),
            "Error: interrupted; the unfinished snapshot was removed",
            "one line after SIGINT"
        );
        assert_eq!(
            s3.uploads_in_progress("dr-vault"),
            0,
            "save interrupted by SIGINT left its multipart upload behind"
        );
    }
}

#[test]
fn prune_keeps_exactly_the_right_snapshots() {
    let s3 = S3Server::start(&["dr-vault"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stamps = [
        "20261120T010000Z",
        "20261121T010000Z",
        "20261121T130000Z",
        "20261122T010000Z",
        "20261123T010000Z",
        "20261123T120000Z",
        "20261123T230000Z",
    ];
    for (i, ts) in stamps.iter().enumerate() {
        s3.put("dr-vault", &format!("helm/prod/{ts}.tar.gz.age"), b"x");
        if i % 2 == 0 {
            s3.put(
                "dr-vault",
                &format!("helm/prod/{ts}.tar.gz.age.sig"),
                b"sig",
            );
        }
    }
    s3.put("dr-vault", "helm/staging/20261101T000000Z.tar.gz.age", b"y");
    // keep-last 2: 23T23, 23T12; keep-daily 3: newest of 23rd, 22nd, 21st (21T13).
    let expect_kept = [
        "20261121T130000Z",
        "20261122T010000Z",
        "20261123T120000Z",
        "20261123T230000Z",
    ];
    let prune = |extra: &[&str]| {
        ok(bulk(None, &s3, d)
            .args([
                "prune",
                "--endpoint",
                &s3.endpoint,
                "s3://dr-vault/helm",
                "--keep-last",
                "2",
                "--keep-daily",
                "3",
            ])
            .args(extra)
            .output()
            .unwrap())
    };
    let dry = prune(&["--dry-run"]);
    let text = String::from_utf8(dry.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(
        listed(None, &s3, d, "s3://dr-vault/helm").len(),
        8,
        "dry run deleted something"
    );
    prune(&[]);
    let left = listed(None, &s3, d, "s3://dr-vault/helm");
    let prod: Vec<&str> = left
        .iter()
        .filter(|o| o["cluster"] == "prod")
        .map(|o| o["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(prod, expect_kept);
    // The other cluster keeps its only snapshot; deleted snapshots took their signatures along.
    assert!(left.iter().any(|o| o["cluster"] == "staging"));
    let signed: Vec<bool> = left
        .iter()
        .filter(|o| o["cluster"] == "prod")
        .map(|o| o["signed"] == true)
        .collect();
    // Signatures were written for every other snapshot: 21T13 and 23T23 of the kept ones.
    assert_eq!(signed, [true, false, false, true]);
}

#[test]
fn wrong_credentials_and_missing_bucket_are_one_clear_line() {
    let s3 = S3Server::start(&["dr-vault"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out: Output = bulk(None, &s3, d)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .args(["list", "--endpoint", &s3.endpoint, "s3://dr-vault/helm"])
        .output()
        .unwrap();
    fails_with(&out, 1, "cannot list s3://dr-vault/helm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") || err.contains("SignatureDoesNotMatch") || err.contains("Forbidden"),
        "{err}"
    );
    let out = bulk(None, &s3, d)
        .args([
            "list",
            "--endpoint",
            &s3.endpoint,
            "s3://no-such-bucket/helm",
        ])
        .output()
        .unwrap();
    fails_with(&out, 1, "cannot list s3://no-such-bucket/helm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NoSuchBucket") || err.contains("404") || err.contains("not found"),
        "{err}"
    );
}
