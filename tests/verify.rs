//! `helm bulk verify`: a DR drill without a cluster. Real age keys, the real
//! ssh-keygen for signatures, and moto S3 for `--all`.

mod no_cluster;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use no_cluster::{bin, fails_with, ok, require};

fn verify(args: &[&OsStr]) -> Output {
    bin().arg("verify").args(args).output().unwrap()
}

/// Signs `file` with real ssh-keygen (writes FILE.sig).
fn ssh_sign(key: &Path, file: &Path) {
    ok(Command::new(require("ssh-keygen", "openssh-client"))
        .args(["-Y", "sign", "-n", "helm-bulk", "-f"])
        .arg(key)
        .arg(file)
        .output()
        .unwrap());
}

struct Fixture {
    dir: tempfile::TempDir,
    identity: PathBuf,
    recipient: String,
    snapshot: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = no_cluster::keygen(dir.path(), "id.txt");
    let snapshot = dir.path().join("good.age");
    let plain = no_cluster::plain_snapshot(&no_cluster::sample());
    std::fs::write(&snapshot, no_cluster::encrypt_to(&plain, &recipient, false)).unwrap();
    Fixture {
        dir,
        identity,
        recipient,
        snapshot,
    }
}

#[test]
fn a_good_snapshot_verifies_with_one_summary_line() {
    let f = fixture();
    let out = ok(verify(&[
        "-i".as_ref(),
        f.identity.as_os_str(),
        f.snapshot.as_os_str(),
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "OK {}: 3 releases, 4 revisions, 0 CRDs; ",
            f.snapshot.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("no trusted signers configured"), "{stdout}");
    assert!(
        stdout.contains("created 2026-11-26 00:00:00 UTC"),
        "{stdout}"
    );

    // Signed, with the signer trusted: the summary names it; JSON says the same.
    let key = no_cluster::ssh_keygen(f.dir.path(), "sign", "ed25519", "");
    ssh_sign(&key, &f.snapshot);
    let allowed = no_cluster::allowed_signers(
        f.dir.path(),
        "allowed-ops@example.org",
        &[("ops@example.org", &key)],
    );
    let out = ok(verify(&[
        "-i".as_ref(),
        f.identity.as_os_str(),
        "--trusted-signers".as_ref(),
        allowed.as_os_str(),
        "--max-age".as_ref(),
        "36500d".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        f.snapshot.as_os_str(),
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["releases"], 3);
    assert_eq!(v["revisions"], 4);
    assert_eq!(v["crds"], 0);
    assert_eq!(v["signature"], "signed");
    assert_eq!(v["signer"], "ops@example.org");
    assert!(
        v["signerFingerprint"].as_str().unwrap().contains("SHA256:"),
        "{v}"
    );
    assert_eq!(v["createdAt"], "2026-11-26T00:00:00Z");
    assert!(v["ageSeconds"].as_i64().unwrap() > 0);
}

#[test]
fn wrong_key_stale_and_unsigned_are_refused_in_one_line() {
    let f = fixture();
    let (other, _) = no_cluster::keygen(f.dir.path(), "other.txt");
    fails_with(
        &verify(&["-i".as_ref(), other.as_os_str(), f.snapshot.as_os_str()]),
        1,
        "none of the given identities can decrypt this snapshot",
    );
    fails_with(
        &verify(&[
            "-i".as_ref(),
            f.identity.as_os_str(),
            "--max-age".as_ref(),
            "1h".as_ref(),
            f.snapshot.as_os_str(),
        ]),
        1,
        "older than --max-age 1h",
    );
    let key = no_cluster::ssh_keygen(f.dir.path(), "sign", "ed25519", "");
    let allowed = no_cluster::allowed_signers(f.dir.path(), "allowed-ops", &[("ops", &key)]);
    fails_with(
        &verify(&[
            "-i".as_ref(),
            f.identity.as_os_str(),
            "--trusted-signers".as_ref(),
            allowed.as_os_str(),
            f.snapshot.as_os_str(),
        ]),
        1,
        "the snapshot is not signed",
    );
    // Signed by a key that is not trusted.
    let rogue = no_cluster::ssh_keygen(f.dir.path(), "rogue", "ed25519", "");
    ssh_sign(&rogue, &f.snapshot);
    fails_with(
        &verify(&[
            "-i".as_ref(),
            f.identity.as_os_str(),
            "--trusted-signers".as_ref(),
            allowed.as_os_str(),
            f.snapshot.as_os_str(),
        ]),
        1,
        "signed by an untrusted key",
    );
    // No identity at all.
    fails_with(
        &verify(&[f.snapshot.as_os_str()]),
        1,
        "no identity to decrypt with",
    );
    let _ = &f.recipient;
}

#[test]
fn every_adversarial_variant_is_refused() {
    let f = fixture();
    let d = f.dir.path();
    let file = d.join("bad.age");
    let good = std::fs::read(&f.snapshot).unwrap();
    let check = |bytes: &[u8], needle: &str| {
        std::fs::write(&file, bytes).unwrap();
        fails_with(
            &verify(&["-i".as_ref(), f.identity.as_os_str(), file.as_os_str()]),
            1,
            needle,
        );
    };
    // The encryption: a flipped byte in the payload, truncation, garbage after.
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 20] ^= 0x40;
    check(&flipped, "was modified or corrupted");
    // (age reports a cut inside the last chunk as failed authentication.)
    check(&good[..good.len() - 100], "modified or corrupted");
    check(&good[..40], "truncated");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage");
    std::fs::write(&file, &trailing).unwrap();
    let out = verify(&["-i".as_ref(), f.identity.as_os_str(), file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "trailing garbage accepted");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    // A plaintext tar.gz.
    check(
        &no_cluster::plain_snapshot(&no_cluster::sample()),
        "plaintext tar.gz, not an encrypted snapshot",
    );
    // Hostile archives inside valid encryption.
    for (needle, plain) in no_cluster::adversarial::hostile_archives() {
        check(&no_cluster::encrypt_to(&plain, &f.recipient, false), needle);
    }
    // Records that lie about their index row.
    for (listed, what, own) in [
        (("prod", "api", 2), "name", "web"),
        (("staging", "web", 2), "namespace", "prod"),
        (("prod", "web", 7), "revision", "2"),
    ] {
        let plain = no_cluster::adversarial::lying_plain(listed);
        check(
            &no_cluster::encrypt_to(&plain, &f.recipient, false),
            &format!("does not match the index: its {what} is `{own}`"),
        );
    }
}

#[test]
fn all_verifies_every_snapshot_under_a_bucket_prefix() {
    let s3 = no_cluster::s3::S3Server::start(&["dr-verify"]);
    let f = fixture();
    let d = f.dir.path();
    let key = no_cluster::ssh_keygen(d, "sign", "ed25519", "");
    let allowed = no_cluster::allowed_signers(d, "allowed-ops", &[("ops", &key)]);
    ssh_sign(&key, &f.snapshot);
    let good = std::fs::read(&f.snapshot).unwrap();
    let sig = std::fs::read(format!("{}.sig", f.snapshot.display())).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    for (k, body) in [
        ("helm/prod/20261126T000000Z.tar.gz.age", &good),
        ("helm/prod/20261126T000000Z.tar.gz.age.sig", &sig),
        ("helm/staging/20261126T000000Z.tar.gz.age", &good),
        ("helm/staging/20261126T000000Z.tar.gz.age.sig", &sig),
    ] {
        s3.put("dr-verify", k, body);
    }
    let run = |extra: &[&str]| {
        s3.bulk("verify")
            .arg("-i")
            .arg(&f.identity)
            .arg("--trusted-signers")
            .arg(&allowed)
            .args(extra)
            .args(["--all", "s3://dr-verify/helm"])
            .output()
            .unwrap()
    };
    let out = ok(run(&[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        2,
        "{stdout}"
    );
    // One snapshot tampered: its signature no longer matches; exit 1, each reported.
    s3.put(
        "dr-verify",
        "helm/staging/20261126T000000Z.tar.gz.age",
        &bad,
    );
    let out = run(&["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ok"], true, "{v}");
    assert_eq!(rows[1]["ok"], false, "{v}");
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{v}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error: 1 of 2 snapshots under s3://dr-verify/helm failed verification"),
        "{stderr}"
    );
}
