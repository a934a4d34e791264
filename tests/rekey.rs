//! `helm bulk rekey`: key rotation checked with the reference `age` CLI, real
//! ssh-keygen, and moto S3 for bucket prefixes (with a SIGKILL mid-run).

mod no_cluster;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
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

/// A working directory with the key to rotate from (`old.txt`) and the one
/// to rotate to (`new.txt`), each with its recipient.
fn old_and_new_keys() -> (tempfile::TempDir, (PathBuf, String), (PathBuf, String)) {
    let dir = tempfile::tempdir().unwrap();
    let old = no_cluster::keygen(dir.path(), "old.txt");
    let new = no_cluster::keygen(dir.path(), "new.txt");
    (dir, old, new)
}

/// A signed snapshot file to rotate, in `d`: the plaintext, encrypted to the
/// old recipient as `snap.age`, with an old signature beside it.
struct FileRotation<'a> {
    d: &'a Path,
    /// TMPDIR of every rekey run (scanned for plaintext at the end).
    tmp: PathBuf,
    sign: PathBuf,
    allowed: PathBuf,
    plain: Vec<u8>,
    file: PathBuf,
    old_sig: Vec<u8>,
}

impl FileRotation<'_> {
    fn new<'a>(d: &'a Path, old_recipient: &str) -> FileRotation<'a> {
        let tmp = d.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let sign = no_cluster::ssh_keygen(d, "sign", "ed25519", "");
        let allowed = no_cluster::allowed_signers(
            d,
            "allowed-ops@example.org",
            &[("ops@example.org", &sign)],
        );
        let plain = no_cluster::plain_snapshot(&records("file"));
        let file = d.join("snap.age");
        std::fs::write(&file, no_cluster::encrypt_to(&plain, old_recipient, false)).unwrap();
        // An old signature beside it (signed by the same trusted key).
        ok(Command::new(require("ssh-keygen", "openssh-client"))
            .args(["-Y", "sign", "-n", "helm-bulk", "-f"])
            .arg(&sign)
            .arg(&file)
            .output()
            .unwrap());
        let old_sig = std::fs::read(d.join("snap.age.sig")).unwrap();
        FileRotation {
            d,
            tmp,
            sign,
            allowed,
            plain,
            file,
            old_sig,
        }
    }
}

#[test]
fn a_rotated_file_opens_with_the_new_key_only_is_re_signed_and_byte_identical() {
    let (dir, (old, old_recipient), (new, new_recipient)) = old_and_new_keys();
    let d = dir.path();
    let t = FileRotation::new(d, &old_recipient);
    let out = ok(bin()
        .env("TMPDIR", &t.tmp)
        .arg("rekey")
        .arg("-i")
        .arg(&old)
        .args(["-r", &new_recipient, "--sign-key"])
        .arg(&t.sign)
        .arg("--trusted-signers")
        .arg(&t.allowed)
        .arg(&t.file)
        .output()
        .unwrap());
    assert!(out.stdout.is_empty());
    let rotated = std::fs::read(&t.file).unwrap();
    the_new_key_only_opens_the_same_plaintext(&t, &old, &new, &rotated);
    the_new_signature_covers_the_new_ciphertext(&t, &new, &rotated);
    let third_recipient = rekey_to_a_new_file_leaves_the_original(&t, &new, &rotated);
    a_damaged_snapshot_is_refused_and_left_as_it_was(&t, &new, &third_recipient, &rotated);

    // Nothing decrypted reached disk: not the test directory, not TMPDIR.
    assert!(assert_no_plaintext(d) >= 8);
}

/// The reference age CLI: the new key opens it, to the very same plaintext;
/// the old key no longer does (age CLI and helm-bulk).
fn the_new_key_only_opens_the_same_plaintext(
    t: &FileRotation<'_>,
    old: &Path,
    new: &Path,
    rotated: &[u8],
) {
    let opened = ok(age_decrypt(new, rotated));
    assert!(
        opened.stdout == t.plain,
        "the plaintext changed in rotation"
    );
    // Positive control for the disk scans at the end: the plaintext shows the canary.
    assert!(has_canary(&t.plain), "positive control");
    let refused = age_decrypt(old, rotated);
    assert!(!refused.status.success(), "the old key still decrypts");
    fails_with(
        &bin()
            .args(["verify", "-i"])
            .arg(old)
            .arg(&t.file)
            .output()
            .unwrap(),
        1,
        "none of the given identities can decrypt this snapshot",
    );
}

/// The new signature covers the new ciphertext; the old one is gone.
fn the_new_signature_covers_the_new_ciphertext(t: &FileRotation<'_>, new: &Path, rotated: &[u8]) {
    let sig = std::fs::read(t.d.join("snap.age.sig")).unwrap();
    assert_ne!(sig, t.old_sig);
    ssh_keygen_verifies(&t.allowed, "ops@example.org", &sig, rotated);
    let out = ok(bin()
        .args(["verify", "-i"])
        .arg(new)
        .arg("--trusted-signers")
        .arg(&t.allowed)
        .arg(&t.file)
        .output()
        .unwrap());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("signed by ops@example.org"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// -o NEW leaves the original as it was; unsigned, no signature beside NEW.
/// Returns the recipient it rotated to.
fn rekey_to_a_new_file_leaves_the_original(
    t: &FileRotation<'_>,
    new: &Path,
    rotated: &[u8],
) -> String {
    let (third, third_recipient) = no_cluster::keygen(t.d, "third.txt");
    let copy = t.d.join("copy.age");
    ok(bin()
        .env("TMPDIR", &t.tmp)
        .arg("rekey")
        .arg("-i")
        .arg(new)
        .args(["-r", &third_recipient, "-o"])
        .arg(&copy)
        .arg(&t.file)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&t.file).unwrap(), rotated);
    assert!(!t.d.join("copy.age.sig").exists());
    assert!(ok(age_decrypt(&third, &std::fs::read(&copy).unwrap())).stdout == t.plain);
    third_recipient
}

/// A damaged snapshot is refused and left as it was, with nothing beside it.
fn a_damaged_snapshot_is_refused_and_left_as_it_was(
    t: &FileRotation<'_>,
    new: &Path,
    recipient: &str,
    rotated: &[u8],
) {
    let mut bad = rotated.to_vec();
    let n = bad.len();
    bad[n - 20] ^= 1;
    let damaged = t.d.join("damaged.age");
    std::fs::write(&damaged, &bad).unwrap();
    let before = files_under(t.d);
    fails_with(
        &bin()
            .env("TMPDIR", &t.tmp)
            .arg("rekey")
            .arg("-i")
            .arg(new)
            .args(["-r", recipient])
            .arg(&damaged)
            .output()
            .unwrap(),
        1,
        "modified or corrupted",
    );
    assert_eq!(std::fs::read(&damaged).unwrap(), bad);
    assert_eq!(files_under(t.d), before, "a failed rekey left files behind");
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

/// `rekey --all` of five snapshots in a bucket, from the old key to the new.
struct BucketRotation<'a> {
    s3: &'a no_cluster::s3::S3Server,
    tmp: PathBuf,
    old: &'a Path,
    new: &'a Path,
    new_recipient: &'a str,
    sign: PathBuf,
    allowed: PathBuf,
    originals: Vec<(String, Vec<u8>)>,
}

impl BucketRotation<'_> {
    fn rekey(&self) -> Command {
        let mut c = self.s3.bulk("rekey");
        c.env("TMPDIR", &self.tmp)
            .arg("-i")
            .arg(self.old)
            .args(["-r", self.new_recipient, "--sign-key"])
            .arg(&self.sign)
            .args(["--all", &format!("s3://{BUCKET}/helm")]);
        c
    }

    /// Every key the bucket should hold: one snapshot and its signature per
    /// original, sorted.
    fn expected_keys(&self) -> Vec<String> {
        let mut expected: Vec<String> = self
            .originals
            .iter()
            .flat_map(|(k, _)| [k.clone(), format!("{k}.sig")])
            .collect();
        expected.sort();
        expected
    }
}

#[test]
fn a_bucket_rotation_killed_midway_finishes_on_rerun_without_rotating_twice() {
    let s3 = no_cluster::s3::S3Server::start(&[BUCKET]);
    let (dir, (old, old_recipient), (new, new_recipient)) = old_and_new_keys();
    let d = dir.path();
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
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
    let t = BucketRotation {
        s3: &s3,
        tmp,
        old: &old,
        new: &new,
        new_recipient: &new_recipient,
        sign,
        allowed,
        originals,
    };
    killed_after_the_second_snapshot(&t);
    the_rerun_finishes_without_rotating_twice(&t);
    every_original_once_under_the_new_key_and_signed(&t);
    a_step_killed_after_its_copy_is_finished_by_the_rerun(&t);
    // A third run has nothing to do.
    let out = ok(t.rekey().output().unwrap());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("already rotated, skipped")
            .count(),
        5
    );
    assert!(assert_no_plaintext(d) >= 5);
}

/// Killed with SIGKILL once the second snapshot is done: no cleanup runs.
fn killed_after_the_second_snapshot(t: &BucketRotation<'_>) {
    let mut child = t.rekey().stderr(Stdio::piped()).spawn().unwrap();
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
    let halfway: Vec<String> = t.s3.keys(BUCKET);
    assert!(
        halfway
            .iter()
            .filter(|k| k.ends_with(".tar.gz.age"))
            .count()
            == 5,
        "{halfway:?}"
    );
}

fn the_rerun_finishes_without_rotating_twice(t: &BucketRotation<'_>) {
    let out = ok(t.rekey().output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let skipped = stderr.matches("already rotated, skipped").count()
        + stderr
            .matches("finished (rotated by an interrupted run)")
            .count();
    assert!(skipped >= 2, "the rerun rotated again: {stderr}");
    assert!(stdout.contains("Rotated 5 of 5 snapshots"), "{stdout}");
}

/// Exactly one snapshot (and its signature) per original, nothing else.
fn every_original_once_under_the_new_key_and_signed(t: &BucketRotation<'_>) {
    assert_eq!(t.s3.keys(BUCKET), t.expected_keys());
    for (key, plain) in &t.originals {
        let body = t.s3.get(BUCKET, key);
        assert!(
            ok(age_decrypt(t.new, &body)).stdout == *plain,
            "{key} is not the original under the new key"
        );
        assert!(
            !age_decrypt(t.old, &body).status.success(),
            "{key}: old key opens it"
        );
        ssh_keygen_verifies(
            &t.allowed,
            "ops",
            &t.s3.get(BUCKET, &format!("{key}.sig")),
            &body,
        );
    }
}

/// A run killed between copying KEY.rekey over KEY and the end of the
/// step: KEY is rotated, its signature still the old object's, the staged
/// object still there. The rerun finishes the step, rotating nothing.
fn a_step_killed_after_its_copy_is_finished_by_the_rerun(t: &BucketRotation<'_>) {
    let s3 = t.s3;
    let (key, _) = &t.originals[0];
    let body = s3.get(BUCKET, key);
    let sig = s3.get(BUCKET, &format!("{key}.sig"));
    s3.put(BUCKET, &format!("{key}.rekey"), &body);
    s3.put(BUCKET, &format!("{key}.rekey.sig"), &sig);
    s3.put(BUCKET, &format!("{key}.sig"), b"a stale signature");
    let out = ok(t.rekey().output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("finished (rotated by an interrupted run)")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(s3.keys(BUCKET), t.expected_keys());
    assert_eq!(s3.get(BUCKET, key), body);
    assert_eq!(s3.get(BUCKET, &format!("{key}.sig")), sig);
}

#[test]
fn keep_old_keeps_the_original_beside_the_rotated_object() {
    let s3 = no_cluster::s3::S3Server::start(&["dr-keep"]);
    let (_dir, (old, old_recipient), (new, new_recipient)) = old_and_new_keys();
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
    let (_dir, (old, old_recipient), (new, new_recipient)) = old_and_new_keys();
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
