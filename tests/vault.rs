//! The vault end to end through the CLI: keys, interop with the reference
//! `age` CLI and real `ssh-keygen` keys, and every kind of bad input.

mod no_cluster;

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;

use no_cluster::*;

fn show(dir: &Path, args: &[&OsStr]) -> std::process::Output {
    bin()
        .current_dir(dir)
        .arg("show")
        .args(args)
        .output()
        .unwrap()
}

fn show_json(dir: &Path, identity: &Path, file: &Path) -> serde_json::Value {
    let out = ok(show(
        dir,
        &[
            "-i".as_ref(),
            identity.as_os_str(),
            "-o".as_ref(),
            "json".as_ref(),
            "--history".as_ref(),
            file.as_os_str(),
        ],
    ));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}#{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["revision"]
            )
        })
        .collect()
}

const EXPECTED: [&str; 4] = ["dev/db#1", "edge/ingress#1", "prod/web#1", "prod/web#2"];

#[test]
fn keygen_writes_a_private_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recipient) = keygen(dir.path(), "id.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("# public key: {recipient}")));
    assert!(text.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = bin().arg("keygen").arg("-o").arg(&path).output().unwrap();
    fails_with(&again, 1, "already exists");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the key was modified"
    );
}

#[test]
fn round_trip_through_show() {
    let dir = tempfile::tempdir().unwrap();
    let (id, recipient) = keygen(dir.path(), "id.txt");
    let records = sample();
    let file = dir.path().join("snap.age");
    std::fs::write(
        &file,
        encrypt_to(&plain_snapshot(&records), &recipient, false),
    )
    .unwrap();
    let v = show_json(dir.path(), &id, &file);
    assert_eq!(names(&v), EXPECTED);
    for row in v["releases"].as_array().unwrap() {
        let rec = records
            .iter()
            .find(|r| r.summary.name == row["name"] && r.summary.revision as u64 == row["revision"])
            .unwrap();
        assert_eq!(row["sha256"], helm_bulk::snapshot::sha256_hex(&rec.data));
        assert_eq!(row["size"], rec.data.len() as u64);
    }
    // Table: one row per release (latest revision) and the header.
    let out = ok(show(
        dir.path(),
        &["-i".as_ref(), id.as_os_str(), file.as_os_str()],
    ));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("NAMESPACE  NAME"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("prod ")).count(),
        1,
        "{table}"
    );
    // Values of one release, as helm get values prints them.
    let out = ok(show(
        dir.path(),
        &[
            "-i".as_ref(),
            id.as_os_str(),
            "--values".as_ref(),
            "prod/web".as_ref(),
            file.as_os_str(),
        ],
    ));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "password: s3cr3t-2\n"
    );
    // Standard input.
    let out = bin()
        .args(["show", "-o", "json", "-i"])
        .arg(&id)
        .arg("-")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    ok(out);
}

#[test]
fn helm_bulk_output_decrypts_with_the_age_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (id, recipient) = keygen(dir.path(), "id.txt");
    for armor in [false, true] {
        let file = dir.path().join(format!("snap-{armor}.age"));
        std::fs::write(
            &file,
            encrypt_to(&plain_snapshot(&sample()), &recipient, armor),
        )
        .unwrap();
        let out = ok(age()
            .arg("-d")
            .arg("-i")
            .arg(&id)
            .arg(&file)
            .output()
            .unwrap());
        // A valid tar.gz whose first entry is a readable index.
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(out.stdout.as_slice()));
        let mut entries = archive.entries().unwrap();
        let mut first = entries.next().unwrap().unwrap();
        assert_eq!(first.path().unwrap().to_str(), Some("index.json"));
        let mut text = String::new();
        first.read_to_string(&mut text).unwrap();
        let index: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Format 2, the default: records, each after the blobs it is first to use.
        assert_eq!(index["formatVersion"], 2);
        assert_eq!(index["releases"].as_array().unwrap().len(), 4);
        let paths: Vec<String> = entries
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            paths.iter().filter(|p| p.starts_with("releases/")).count(),
            4
        );
        assert!(
            paths
                .iter()
                .all(|p| p.starts_with("releases/") || p.starts_with("blobs/")),
            "{paths:?}"
        );
    }
}

#[test]
fn age_cli_output_is_read_by_show() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = d.join("snap.tar.gz");
    std::fs::write(&plain, plain_snapshot(&sample())).unwrap();
    x25519_and_armored_age_files(d, &plain);
    ssh_recipient_age_files(d, &plain);
    a_passphrase_protected_ssh_key_is_asked_for(d, &plain);
    passphrase_age_files_are_asked_for(d, &plain);
}

/// Encrypts `plain` into `out` with the reference age CLI, given the
/// arguments that choose the recipients.
fn age_encrypt<S: AsRef<OsStr>>(keys: impl IntoIterator<Item = S>, out: &Path, plain: &Path) {
    ok(age()
        .args(keys)
        .arg("-o")
        .arg(out)
        .arg(plain)
        .output()
        .unwrap());
}

/// age -r, and age -a -r
fn x25519_and_armored_age_files(d: &Path, plain: &Path) {
    let (id, recipient) = keygen(d, "id.txt");
    for (name, extra) in [("x25519.age", vec![]), ("armored.age", vec!["-a"])] {
        let out = d.join(name);
        let keys = extra.iter().copied().chain(["-r", recipient.as_str()]);
        age_encrypt(keys, &out, plain);
        assert_eq!(names(&show_json(d, &id, &out)), EXPECTED, "{name}");
    }
}

/// age -R with real SSH public keys; decrypt with the private keys.
fn ssh_recipient_age_files(d: &Path, plain: &Path) {
    for kind in ["ed25519", "rsa"] {
        let key = ssh_keygen(d, &format!("id_{kind}"), kind, "");
        let out = d.join(format!("ssh-{kind}.age"));
        age_encrypt(
            ["-R".as_ref(), key.with_extension("pub").as_os_str()],
            &out,
            plain,
        );
        assert_eq!(names(&show_json(d, &key, &out)), EXPECTED, "{kind}");
    }
}

/// A passphrase-protected SSH key: helm-bulk prompts on the terminal.
fn a_passphrase_protected_ssh_key_is_asked_for(d: &Path, plain: &Path) {
    let key = ssh_keygen(d, "id_locked", "ed25519", "correct horse");
    let out = d.join("ssh-locked.age");
    age_encrypt(
        ["-R".as_ref(), key.with_extension("pub").as_os_str()],
        &out,
        plain,
    );
    let bin_path = Path::new(env!("CARGO_BIN_EXE_helm-bulk"));
    let run = on_pty(
        &["correct horse"],
        &[
            bin_path.as_os_str(),
            "show".as_ref(),
            "-i".as_ref(),
            key.as_os_str(),
            out.as_os_str(),
        ],
    );
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("ingress") && text.contains("prod"), "{text}");
}

/// age -p: passphrase typed at age's prompt, then at helm-bulk's; the wrong
/// passphrase is one clear error.
fn passphrase_age_files_are_asked_for(d: &Path, plain: &Path) {
    let out = d.join("passphrase.age");
    let made = on_pty(
        &["tr0ub4dor&3", "tr0ub4dor&3"],
        &[
            require("age", "age").as_os_str(),
            "-p".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            plain.as_os_str(),
        ],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stdout)
    );
    let bin_path = Path::new(env!("CARGO_BIN_EXE_helm-bulk"));
    let run = on_pty(
        &["tr0ub4dor&3"],
        &[
            bin_path.as_os_str(),
            "show".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            out.as_os_str(),
        ],
    );
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("\"name\": \"ingress\""), "{text}");
    // And the wrong passphrase is one clear error.
    let run = on_pty(
        &["not it"],
        &[bin_path.as_os_str(), "show".as_ref(), out.as_os_str()],
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stdout).contains("Error: the passphrase is wrong"));
}

/// Runs show in a fresh directory and checks the failure; also that show left
/// nothing behind.
fn refused(dir: &Path, args: &[&OsStr], code: i32, needle: &str) {
    let before = files_under(dir);
    let out = show(dir, args);
    fails_with(&out, code, needle);
    assert_eq!(files_under(dir), before, "show created files");
}

/// A temporary directory with an identity `id.txt` made by helm-bulk keygen.
fn dir_with_key() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let (id, recipient) = keygen(dir.path(), "id.txt");
    (dir, id, recipient)
}

/// `count` records in namespace `ns`, record `i` holding the value `value(i)`.
fn records_of_size(
    count: usize,
    value: impl Fn(usize) -> String,
) -> Vec<helm_bulk::release::ReleaseRecord> {
    (0..count)
        .map(|i| no_cluster::record("ns", &format!("r{i}"), 1, "deployed", &value(i)))
        .collect()
}

/// Asserts `show` refuses a damaged `file`: exit 1, one line on stderr that
/// contains one of `reasons`, nothing on stdout.
fn damage_is_refused(dir: &Path, id: &Path, file: &Path, what: &str, reasons: &[&str]) {
    let out = show(dir, &["-i".as_ref(), id.as_os_str(), file.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what} was accepted: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(
        reasons.iter().any(|r| stderr.contains(r)),
        "{what}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: output printed");
}

#[test]
fn bad_keys_and_config_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = keygen(d, "id.txt");
    let (other, _) = keygen(d, "other.txt");
    let file = d.join("snap.age");
    std::fs::write(
        &file,
        encrypt_to(&plain_snapshot(&sample()), &recipient, false),
    )
    .unwrap();
    let f = file.as_os_str();

    refused(
        d,
        &["-i".as_ref(), other.as_os_str(), f],
        1,
        "none of the given identities can decrypt",
    );
    refused(
        d,
        &["-i".as_ref(), "missing.txt".as_ref(), f],
        1,
        "missing.txt",
    );
    refused(d, &[f], 1, "no identity to decrypt with");

    std::fs::write(
        d.join("bad.yaml"),
        "identities: [id.txt]\nrecipient: oops\n",
    )
    .unwrap();
    refused(
        d,
        &["--config".as_ref(), "bad.yaml".as_ref(), f],
        1,
        "config file bad.yaml:2:1: unknown field `recipient`",
    );
    std::fs::write(d.join("bad2.yaml"), "exclude: {a: b}\n").unwrap();
    refused(
        d,
        &["--config".as_ref(), "bad2.yaml".as_ref(), f],
        1,
        "config file bad2.yaml:1:",
    );
    refused(
        d,
        &["--config".as_ref(), "nope.yaml".as_ref(), f],
        1,
        "cannot read config file nope.yaml",
    );
}

#[test]
fn plaintext_snapshots_are_neither_written_nor_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id.txt");
    let plain = d.join("plain.tar.gz");
    std::fs::write(&plain, plain_snapshot(&sample())).unwrap();
    let enc = d.join("snap.age");
    std::fs::write(
        &enc,
        encrypt_to(&plain_snapshot(&sample()), &recipient, false),
    )
    .unwrap();

    // A plaintext tar.gz is refused, with or without an identity: nobody
    // can substitute releases without knowing a recipient.
    refused(
        d,
        &["-i".as_ref(), id.as_os_str(), plain.as_os_str()],
        1,
        "this file is a plaintext tar.gz, not an encrypted snapshot",
    );
    refused(
        d,
        &[plain.as_os_str()],
        1,
        "this file is a plaintext tar.gz, not an encrypted snapshot",
    );
    // --no-encrypt no longer exists, for show or save.
    let out = show(d, &["--no-encrypt".as_ref(), enc.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--no-encrypt'"));
    let out = bin()
        .current_dir(d)
        .args(["save", "--no-encrypt", "-o", "x.tar.gz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!d.join("x.tar.gz").exists());
    // For inspection, the reference age CLI decrypts to the plain tar.gz.
    let decrypted = no_cluster::age()
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg(&enc)
        .output()
        .unwrap();
    assert!(decrypted.status.success(), "{decrypted:?}");
    assert_eq!(decrypted.stdout, plain_snapshot(&sample()));
    std::fs::write(d.join("junk"), b"hello world").unwrap();
    refused(
        d,
        &["-i".as_ref(), id.as_os_str(), "junk".as_ref()],
        1,
        "not a helm-bulk snapshot",
    );
    std::fs::write(d.join("empty"), b"").unwrap();
    refused(
        d,
        &["-i".as_ref(), id.as_os_str(), "empty".as_ref()],
        1,
        "the snapshot is empty",
    );
}

#[test]
fn every_flipped_byte_is_detected() {
    let (dir, id, recipient) = dir_with_key();
    let d = dir.path();
    // Big enough for several 64 KiB age chunks.
    let records = records_of_size(40, |i| "x".repeat(4000 + i * 1000));
    let bytes = encrypt_to(&plain_snapshot(&records), &recipient, false);
    let file = d.join("flipped.age");
    let step = (bytes.len() / 150).max(1);
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(step).collect();
    positions.extend([bytes.len() - 1, bytes.len() - 17, 30, 100]);
    for pos in positions {
        let mut b = bytes.clone();
        b[pos] ^= 0x20;
        std::fs::write(&file, &b).unwrap();
        damage_is_refused(
            d,
            &id,
            &file,
            &format!("byte {pos} flipped"),
            &[
                "modified or corrupted",
                "encryption header is invalid",
                "none of the given identities",
                "not a helm-bulk snapshot",
            ],
        );
    }
}

#[test]
fn truncation_and_trailing_garbage_are_detected() {
    let (dir, id, recipient) = dir_with_key();
    let d = dir.path();
    let records = records_of_size(20, |_| "y".repeat(9000));
    for armor in [false, true] {
        let bytes = encrypt_to(&plain_snapshot(&records), &recipient, armor);
        let file = d.join("t.age");
        // (An armored file's final newline is optional, so cut from the one before it.)
        let last = if armor {
            bytes.len() - 2
        } else {
            bytes.len() - 1
        };
        for cut in [last, bytes.len() - 16, bytes.len() / 2, 300, 40] {
            std::fs::write(&file, &bytes[..cut]).unwrap();
            damage_is_refused(
                d,
                &id,
                &file,
                &format!("cut at {cut} (armor {armor})"),
                &["truncated", "modified or corrupted", "header is invalid"],
            );
        }
        let mut extended = bytes.clone();
        extended.extend_from_slice(if armor { b"\ngarbage\n" } else { b"garbage" });
        std::fs::write(&file, &extended).unwrap();
        damage_is_refused(
            d,
            &id,
            &file,
            &format!("trailing garbage (armor {armor})"),
            &[""],
        );
    }
}

#[test]
fn hostile_archives_inside_valid_encryption_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = keygen(d, "id.txt");
    // The cases are shared with `verify` (tests/no_cluster/adversarial.rs).
    let cases = no_cluster::adversarial::hostile_archives();
    for (needle, plain) in cases {
        let file = d.join("hostile.age");
        std::fs::write(&file, encrypt_to(&plain, &recipient, false)).unwrap();
        refused(
            d,
            &["-i".as_ref(), id.as_os_str(), file.as_os_str()],
            1,
            needle,
        );
    }
}

#[test]
fn recipients_lists_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, r1) = keygen(d, "a.txt");
    let (_, r2) = keygen(d, "b.txt");
    let ssh = ssh_keygen(d, "id_ed25519", "ed25519", "");
    let ssh_pub = std::fs::read_to_string(ssh.with_extension("pub")).unwrap();
    std::fs::write(
        d.join("team.txt"),
        format!("# the team\n{r2}\n\n{}", ssh_pub),
    )
    .unwrap();
    std::fs::write(d.join(".helm-bulk.yaml"), "recipientsFiles: [team.txt]\n").unwrap();
    let out = ok(bin()
        .current_dir(d)
        .args(["recipients", "-r", &r1])
        .output()
        .unwrap());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, [r1.as_str(), r2.as_str(), ssh_pub.trim()]);

    // A bad line is reported by number, never echoed.
    std::fs::write(
        d.join("bad.txt"),
        format!("{r1}\nAGE-SECRET-KEY-1NOTARECIPIENT\n"),
    )
    .unwrap();
    let out = bin()
        .current_dir(d)
        .args(["recipients", "-R", "bad.txt"])
        .output()
        .unwrap();
    fails_with(&out, 1, "line 2");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("AGE-SECRET-KEY"));
    let out = bin()
        .current_dir(d)
        .args(["recipients", "-r", "age1notakey"])
        .output()
        .unwrap();
    fails_with(&out, 1, "age1notakey");
}
