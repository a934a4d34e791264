//! `helm bulk rekey`: key rotation checked with the reference `age` CLI, real
//! ssh-keygen, and moto S3 for bucket prefixes (with a SIGKILL mid-run).

mod no_cluster;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use no_cluster::{bin, fails_with, files_under, ok, require};

const CANARY: &str = "canary-7f3e9a1c5d";

fn records(tag: &str) -> Vec<helm_bulk::release::ReleaseRecord> {
    (0..6)
        .map(|i| {
            no_cluster::record(
                "prod",
                &format!("app{i}"),
                1,
                "deployed",
                &format!("{CANARY}-{tag}-{i}-{}", "x".repeat(2000)),
            )
        })
        .collect()
}

fn ssh_keygen_verifies(allowed: &Path, principal: &str, sig: &[u8], snapshot: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let sig_file = dir.path().join("s.sig");
    std::fs::write(&sig_file, sig).unwrap();
    let mut child = Command::new(require("ssh-keygen", "openssh-client"))
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", principal, "-n", "helm-bulk", "-s"])
        .arg(&sig_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), snapshot).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains(&format!("Good \"helm-bulk\" signature for {principal}")),
        "ssh-keygen -Y verify: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The reference age CLI decrypting `data` with `identity`.
fn age_decrypt(identity: &Path, data: &[u8]) -> Output {
    let mut child = no_cluster::age()
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, &data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Whether `data` holds the canary, as is or inside gzip (a decrypted
/// snapshot is a tar.gz, where the canary is not visible as bytes).
fn has_canary(data: &[u8]) -> bool {
    let found = |d: &[u8]| d.windows(CANARY.len()).any(|w| w == CANARY.as_bytes());
    if found(data) {
        return true;
    }
    let mut inflated = Vec::new();
    data.starts_with(&[0x1f, 0x8b])
        && std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(data), &mut inflated)
            .is_ok()
        && found(&inflated)
}

/// Asserts no file under `dir` holds the canary; returns how many were scanned.
fn assert_no_plaintext(dir: &Path) -> usize {
    let files = files_under(dir);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        assert!(
            !has_canary(&data),
            "plaintext canary found in {}",
            f.display()
        );
    }
    files.len()
}

#[test]
fn a_rotated_file_opens_with_the_new_key_only_is_re_signed_and_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (old, old_recipient) = no_cluster::keygen(d, "old.txt");
    let (new, new_recipient) = no_cluster::keygen(d, "new.txt");
    let sign = no_cluster::ssh_keygen(d, "sign", "ed25519", "");
    let allowed =
        no_cluster::allowed_signers(d, "allowed-ops@example.org", &[("ops@example.org", &sign)]);
    let plain = no_cluster::plain_snapshot(&records("file"));
    let file = d.join("snap.age");
    std::fs::write(&file, no_cluster::encrypt_to(&plain, &old_recipient, false)).unwrap();
    // An old signature beside it (signed by the same trusted key).
    ok(Command::new(require("ssh-keygen", "openssh-client"))
        .args(["-Y", "sign", "-n", "helm-bulk", "-f"])
        .arg(&sign)
        .arg(&file)
        .output()
        .unwrap());
    let old_sig = std::fs::read(d.join("snap.age.sig")).unwrap();

    let out = ok(bin()
        .env("TMPDIR", &tmp)
        .arg("rekey")
        .arg("-i")
        .arg(&old)
        .args(["-r", &new_recipient, "--sign-key"])
        .arg(&sign)
        .arg("--trusted-signers")
        .arg(&allowed)
        .arg(&file)
        .output()
        .unwrap());
    assert!(out.stdout.is_empty());
    let rotated = std::fs::read(&file).unwrap();
    // The reference age CLI: the new key opens it, to the very same plaintext.
    let opened = ok(age_decrypt(&new, &rotated));
    assert!(opened.stdout == plain, "the plaintext changed in rotation");
    // Positive control for the disk scans below: the plaintext shows the canary.
    assert!(has_canary(&plain), "positive control");
    // The old key no longer does (age CLI and helm-bulk).
    let refused = age_decrypt(&old, &rotated);
    assert!(!refused.status.success(), "the old key still decrypts");
    fails_with(
        &bin()
            .args(["verify", "-i"])
            .arg(&old)
            .arg(&file)
            .output()
            .unwrap(),
        1,
        "none of the given identities can decrypt this snapshot",
    );
    // The new signature covers the new ciphertext; the old one is gone.
    let sig = std::fs::read(d.join("snap.age.sig")).unwrap();
    assert_ne!(sig, old_sig);
    ssh_keygen_verifies(&allowed, "ops@example.org", &sig, &rotated);
    let out = ok(bin()
        .args(["verify", "-i"])
        .arg(&new)
        .arg("--trusted-signers")
        .arg(&allowed)
        .arg(&file)
        .output()
        .unwrap());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("signed by ops@example.org"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // -o NEW leaves the original as it was; unsigned, no signature beside NEW.
    let (third, third_recipient) = no_cluster::keygen(d, "third.txt");
    let copy = d.join("copy.age");
    ok(bin()
        .env("TMPDIR", &tmp)
        .arg("rekey")
        .arg("-i")
        .arg(&new)
        .args(["-r", &third_recipient, "-o"])
        .arg(&copy)
        .arg(&file)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), rotated);
    assert!(!d.join("copy.age.sig").exists());
    assert!(ok(age_decrypt(&third, &std::fs::read(&copy).unwrap())).stdout == plain);

    // A damaged snapshot is refused and left as it was, with nothing beside it.
    let mut bad = rotated.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    let damaged = d.join("damaged.age");
    std::fs::write(&damaged, &bad).unwrap();
    let before = files_under(d);
    fails_with(
        &bin()
            .env("TMPDIR", &tmp)
            .arg("rekey")
            .arg("-i")
            .arg(&new)
            .args(["-r", &third_recipient])
            .arg(&damaged)
            .output()
            .unwrap(),
        1,
        "modified or corrupted",
    );
    assert_eq!(std::fs::read(&damaged).unwrap(), bad);
    assert_eq!(files_under(d), before, "a failed rekey left files behind");

    // Nothing decrypted reached disk: not the test directory, not TMPDIR.
    assert!(assert_no_plaintext(d) >= 8);
}

#[test]
fn an_identity_that_opens_the_new_recipients_is_refused_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let (old, old_recipient) = no_cluster::keygen(dir.path(), "old.txt");
    fails_with(
        &bin()
            .arg("rekey")
            .arg("-i")
            .arg(&old)
            .args(["-r", &old_recipient, "--all", "file:///nonexistent/x"])
            .output()
            .unwrap(),
        1,
        "could not tell rotated snapshots from the others",
    );
}

const BUCKET: &str = "dr-rekey";

fn originals() -> Vec<(String, Vec<u8>)> {
    (0..5)
        .map(|i| {
            let cluster = if i % 2 == 0 { "prod" } else { "staging" };
            (
                format!("helm/{cluster}/2026112{i}T000000Z.tar.gz.age"),
                no_cluster::plain_snapshot(&records(&format!("b{i}"))),
            )
        })
        .collect()
}

#[test]
fn a_bucket_rotation_killed_midway_finishes_on_rerun_without_rotating_twice() {
    let s3 = no_cluster::s3::S3Server::start(&[BUCKET]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (old, old_recipient) = no_cluster::keygen(d, "old.txt");
    let (new, new_recipient) = no_cluster::keygen(d, "new.txt");
    let sign = no_cluster::ssh_keygen(d, "sign", "ed25519", "");
    let allowed = no_cluster::allowed_signers(d, "allowed-ops", &[("ops", &sign)]);
    let originals = originals();
    for (key, plain) in &originals {
        s3.put(
            BUCKET,
            key,
            &no_cluster::encrypt_to(plain, &old_recipient, false),
        );
    }
    let rekey = || {
        let mut c = s3.bulk("rekey");
        c.env("TMPDIR", &tmp)
            .arg("-i")
            .arg(&old)
            .args(["-r", &new_recipient, "--sign-key"])
            .arg(&sign)
            .args(["--all", &format!("s3://{BUCKET}/helm")]);
        c
    };

    // Killed with SIGKILL once the second snapshot is done: no cleanup runs.
    let mut child = rekey().stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("[2/5]") {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run finished before the kill: {seen:?}"
    );
    let halfway: Vec<String> = s3.keys(BUCKET);
    assert!(
        halfway
            .iter()
            .filter(|k| k.ends_with(".tar.gz.age"))
            .count()
            == 5,
        "{halfway:?}"
    );

    let out = ok(rekey().output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let skipped = stderr.matches("already rotated, skipped").count()
        + stderr
            .matches("finished (rotated by an interrupted run)")
            .count();
    assert!(skipped >= 2, "the rerun rotated again: {stderr}");
    assert!(stdout.contains("Rotated 5 of 5 snapshots"), "{stdout}");

    // Exactly one snapshot (and its signature) per original, nothing else.
    let mut expected: Vec<String> = originals
        .iter()
        .flat_map(|(k, _)| [k.clone(), format!("{k}.sig")])
        .collect();
    expected.sort();
    assert_eq!(s3.keys(BUCKET), expected);
    for (key, plain) in &originals {
        let body = s3.get(BUCKET, key);
        assert!(
            ok(age_decrypt(&new, &body)).stdout == *plain,
            "{key} is not the original under the new key"
        );
        assert!(
            !age_decrypt(&old, &body).status.success(),
            "{key}: old key opens it"
        );
        ssh_keygen_verifies(
            &allowed,
            "ops",
            &s3.get(BUCKET, &format!("{key}.sig")),
            &body,
        );
    }
    // A run killed between copying KEY.rekey over KEY and the end of the
    // step: KEY is rotated, its signature still the old object's, the staged
    // object still there. The rerun finishes the step, rotating nothing.
    let (key, _) = &originals[0];
    let body = s3.get(BUCKET, key);
    let sig = s3.get(BUCKET, &format!("{key}.sig"));
    s3.put(BUCKET, &format!("{key}.rekey"), &body);
    s3.put(BUCKET, &format!("{key}.rekey.sig"), &sig);
    s3.put(BUCKET, &format!("{key}.sig"), b"a stale signature");
    let out = ok(rekey().output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("finished (rotated by an interrupted run)")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(s3.keys(BUCKET), expected);
    assert_eq!(s3.get(BUCKET, key), body);
    assert_eq!(s3.get(BUCKET, &format!("{key}.sig")), sig);
    // A third run has nothing to do.
    let out = ok(rekey().output().unwrap());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("already rotated, skipped")
            .count(),
        5
    );
    assert!(assert_no_plaintext(d) >= 5);
}

#[test]
fn keep_old_keeps_the_original_beside_the_rotated_object() {
    let s3 = no_cluster::s3::S3Server::start(&["dr-keep"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old, old_recipient) = no_cluster::keygen(d, "old.txt");
    let (new, new_recipient) = no_cluster::keygen(d, "new.txt");
    let plain = no_cluster::plain_snapshot(&records("keep"));
    let key = "helm/prod/20261126T000000Z.tar.gz.age";
    let original = no_cluster::encrypt_to(&plain, &old_recipient, false);
    s3.put("dr-keep", key, &original);
    ok(s3
        .bulk("rekey")
        .arg("-i")
        .arg(&old)
        .args(["-r", &new_recipient, "--keep-old"])
        .arg(format!("s3://dr-keep/{key}"))
        .output()
        .unwrap());
    assert_eq!(
        s3.keys("dr-keep"),
        [key.to_owned(), format!("{key}.pre-rekey")]
    );
    assert_eq!(s3.get("dr-keep", &format!("{key}.pre-rekey")), original);
    assert!(ok(age_decrypt(&new, &s3.get("dr-keep", key))).stdout == plain);
}

#[test]
fn a_damaged_object_is_left_as_it_was_and_the_others_are_rotated() {
    let s3 = no_cluster::s3::S3Server::start(&["dr-bad"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old, old_recipient) = no_cluster::keygen(d, "old.txt");
    let (new, new_recipient) = no_cluster::keygen(d, "new.txt");
    let plain = no_cluster::plain_snapshot(&records("bad"));
    let good = no_cluster::encrypt_to(&plain, &old_recipient, false);
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    let (k1, k2, k3) = (
        "helm/a/20261101T000000Z.tar.gz.age",
        "helm/a/20261102T000000Z.tar.gz.age",
        "helm/a/20261103T000000Z.tar.gz.age",
    );
    s3.put("dr-bad", k1, &good);
    s3.put("dr-bad", k2, &bad);
    s3.put("dr-bad", k3, &good);
    let out = s3
        .bulk("rekey")
        .arg("-i")
        .arg(&old)
        .args(["-r", &new_recipient, "--all", "s3://dr-bad/helm"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "[2/3] {k2}: FAILED, left as it was: the encrypted snapshot was modified or corrupted"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Error: 1 snapshots could not be rotated and still open with the old key: {k2}"
        )),
        "{stderr}"
    );
    assert_eq!(s3.keys("dr-bad"), [k1, k2, k3]);
    assert_eq!(s3.get("dr-bad", k2), bad);
    for k in [k1, k3] {
        assert!(ok(age_decrypt(&new, &s3.get("dr-bad", k))).stdout == plain);
    }
}
