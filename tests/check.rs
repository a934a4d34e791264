//! `helm bulk check`: fresh, stale, unsigned, wrongly signed and missing
//! clusters in a bucket (a `file://` bucket here: the listing and reading
//! paths are the same as for S3, which tests/buckets.rs covers), signatures
//! made by the real `ssh-keygen -Y sign`, and the Prometheus textfile.

mod no_cluster;

use std::path::Path;
use std::process::{Command, Output};

use no_cluster::{bin, fails_with, ok, ssh_keygen};

/// A key timestamp (`YYYYMMDDTHHMMSSZ`) `hours` ago.
fn hours_ago(hours: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::hours(hours);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Writes an encrypted snapshot object `<root>/<cluster>/<timestamp>.tar.gz.age`
/// and, when `signer` is given, its `.sig` made by `ssh-keygen -Y sign`.
fn put_snapshot(root: &Path, cluster: &str, timestamp: &str, signer: Option<&Path>) {
    let dir = root.join(cluster);
    std::fs::create_dir_all(&dir).unwrap();
    let (_, recipient) =
        no_cluster::keygen(root.parent().unwrap(), &format!("id-{cluster}-{timestamp}"));
    let bytes = no_cluster::encrypt_to(
        &no_cluster::plain_snapshot(&no_cluster::sample()),
        &recipient,
        false,
    );
    let object = dir.join(format!("{timestamp}.tar.gz.age"));
    std::fs::write(&object, bytes).unwrap();
    if let Some(key) = signer {
        ok(
            Command::new(no_cluster::require("ssh-keygen", "openssh-client"))
                .args(["-Y", "sign", "-n", "helm-bulk", "-f"])
                .arg(key)
                .arg(&object)
                .output()
                .unwrap(),
        );
    }
}

fn check(url: &str, allowed: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("check")
        .arg(url)
        .arg("--trusted-signers")
        .arg(allowed)
        .args(extra)
        .output()
        .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    trusted: std::path::PathBuf,
    allowed: std::path::PathBuf,
    url: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trusted = ssh_keygen(d, "ops", "ed25519", "");
    let allowed =
        no_cluster::allowed_signers(d, "allowed_signers", &[("ops@example.com", &trusted)]);
    let root = d.join("bucket").join("helm");
    std::fs::create_dir_all(&root).unwrap();
    let url = format!("file://{}", root.display());
    Fixture {
        _dir: dir,
        root,
        trusted,
        allowed,
        url,
    }
}

#[test]
fn every_cluster_fresh_and_signed_exits_0() {
    let f = fixture();
    // An older snapshot (stale, unsigned) does not matter: only the newest counts.
    put_snapshot(&f.root, "prod", &hours_ago(80), None);
    put_snapshot(&f.root, "prod", &hours_ago(2), Some(&f.trusted));
    put_snapshot(&f.root, "staging", &hours_ago(20), Some(&f.trusted));
    let out = ok(check(&f.url, &f.allowed, &["--cluster", "prod"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, cluster) in lines[1..].iter().zip(["prod", "staging"]) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[0], cols[1]), (cluster, "ok"), "{line}");
        assert!(line.contains("signed by ops@example.com"), "{line}");
    }
}

#[test]
fn stale_unsigned_untrusted_and_missing_each_fail() {
    let f = fixture();
    let d = f.root.parent().unwrap().parent().unwrap();
    let stranger = ssh_keygen(d, "stranger", "ed25519", "");
    put_snapshot(&f.root, "fresh", &hours_ago(1), Some(&f.trusted));
    put_snapshot(&f.root, "old", &hours_ago(30), Some(&f.trusted));
    put_snapshot(&f.root, "unsigned", &hours_ago(1), None);
    put_snapshot(&f.root, "forged", &hours_ago(1), Some(&stranger));
    let prom = d.join("metrics").join("helm_bulk.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let out = check(
        &f.url,
        &f.allowed,
        &[
            "--cluster",
            "ghost",
            "--max-age",
            "26h",
            "--prometheus-textfile",
            prom.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("4 of 5 cluster(s) without a verified snapshot younger than 1day 2h"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let status = |cluster: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(cluster))
            .unwrap_or_else(|| panic!("no line for {cluster}:\n{stdout}"));
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(status("fresh"), "ok");
    assert_eq!(status("old"), "stale");
    assert_eq!(status("unsigned"), "unverified");
    assert_eq!(status("forged"), "unverified");
    assert_eq!(status("ghost"), "missing");
    assert!(stdout.contains("not signed"), "{stdout}");
    assert!(stdout.contains("untrusted key"), "{stdout}");

    // The textfile: readable by the node exporter, one sample per cluster.
    let text = std::fs::read_to_string(&prom).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let sample = |metric: &str, cluster: &str| -> Option<String> {
        let prefix = format!("{metric}{{url=\"{}\",cluster=\"{cluster}\"}} ", f.url);
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    };
    assert_eq!(
        sample("helm_bulk_last_snapshot_verified", "fresh").as_deref(),
        Some("1")
    );
    assert_eq!(
        sample("helm_bulk_last_snapshot_verified", "old").as_deref(),
        Some("1")
    );
    assert_eq!(
        sample("helm_bulk_last_snapshot_verified", "unsigned").as_deref(),
        Some("0")
    );
    assert_eq!(
        sample("helm_bulk_last_snapshot_verified", "forged").as_deref(),
        Some("0")
    );
    assert_eq!(
        sample("helm_bulk_last_snapshot_verified", "ghost").as_deref(),
        Some("0")
    );
    assert_eq!(
        sample("helm_bulk_last_snapshot_timestamp_seconds", "ghost"),
        None
    );
    let size = std::fs::metadata(
        std::fs::read_dir(f.root.join("fresh"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".age"))
            .unwrap(),
    )
    .unwrap()
    .len();
    assert_eq!(
        sample("helm_bulk_last_snapshot_bytes", "fresh"),
        Some(size.to_string())
    );
    let ts: i64 = sample("helm_bulk_last_snapshot_timestamp_seconds", "old")
        .unwrap()
        .parse()
        .unwrap();
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - ts;
    assert!((30 * 3600 - 60..30 * 3600 + 60).contains(&age), "age {age}");

    // JSON says the same.
    let out = check(&f.url, &f.allowed, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let health: Vec<(String, String)> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["cluster"].as_str().unwrap().to_owned(),
                r["health"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        health,
        [
            ("forged", "unverified"),
            ("fresh", "ok"),
            ("old", "stale"),
            ("unsigned", "unverified")
        ]
        .map(|(c, h)| (c.to_owned(), h.to_owned()))
    );
}

#[test]
fn an_empty_prefix_or_no_signers_is_one_line() {
    let f = fixture();
    fails_with(&check(&f.url, &f.allowed, &[]), 1, "no snapshots under");
    let out = bin().arg("check").arg(&f.url).output().unwrap();
    fails_with(&out, 1, "check needs the trusted signers");
}
