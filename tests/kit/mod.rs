//! Helpers for tests that need no cluster: sample records, snapshots written
//! through the library, the real `age` and `ssh-keygen` programs, and a pty
//! driver for passphrase prompts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use helm_bulk::release::ReleaseRecord;
use helm_bulk::snapshot::{Cluster, Index, Source, SourceKind, write_snapshot};
use helm_bulk::vault::{Protection, encrypt};

/// The helm-bulk binary under test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
    // Isolate from the developer's own config and keys.
    c.env_remove("HELM_BULK_CONFIG")
        .env_remove("HELM_DEBUG")
        .env("HELM_CONFIG_HOME", "/nonexistent/helm-bulk-test");
    c
}

/// Fails the test with the command's output unless it exits 0.
pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts a failure with exactly one line on stderr, `Error: …` containing `needle`,
/// nothing on stdout, and exit code `code`.
pub fn fails_with(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}; stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("Error: "), "{stderr}");
    assert!(
        lines[0].contains(needle),
        "expected `{needle}` in: {}",
        lines[0]
    );
    assert!(
        out.stdout.is_empty(),
        "stdout should be empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A Helm 3 style record with a value.
pub fn record(ns: &str, name: &str, rev: u32, status: &str, value: &str) -> ReleaseRecord {
    let json = format!(
        r#"{{"name":"{name}","namespace":"{ns}","version":{rev},"info":{{"status":"{status}","last_deployed":"2026-01-01T00:00:00Z"}},"chart":{{"metadata":{{"name":"demo","version":"1.0.0","appVersion":"2.0"}},"templates":[]}},"config":{{"password":"{value}"}},"manifest":"---\n"}}"#
    );
    ReleaseRecord::from_helm_json(json.into_bytes()).expect("valid record")
}

/// Snapshot metadata.
pub fn meta() -> Index {
    Index::new(
        "2026-11-26T00:00:00Z".to_owned(),
        Source {
            kind: SourceKind::Helm3,
            driver: "secret".to_owned(),
            extra: Default::default(),
        },
        Cluster {
            server: "https://127.0.0.1:6443".to_owned(),
            context: "kit".to_owned(),
            extra: Default::default(),
        },
    )
}

/// A few records across namespaces, with history.
pub fn sample() -> Vec<ReleaseRecord> {
    vec![
        record("prod", "web", 1, "superseded", "s3cr3t-1"),
        record("prod", "web", 2, "deployed", "s3cr3t-2"),
        record("dev", "db", 1, "deployed", "s3cr3t-3"),
        record("edge", "ingress", 1, "deployed", "s3cr3t-4"),
    ]
}

/// The plaintext tar.gz of `records`.
pub fn plain_snapshot(records: &[ReleaseRecord]) -> Vec<u8> {
    write_snapshot(Vec::new(), meta(), records).expect("write snapshot")
}

/// Encrypts bytes with the library to `recipient`.
pub fn encrypt_to(plain: &[u8], recipient: &str, armor: bool) -> Vec<u8> {
    let rs = helm_bulk::vault::read_recipients(&[recipient.to_owned()], &[]).expect("recipients");
    let mut w = encrypt(Vec::new(), &Protection::Recipients(rs), armor).expect("encrypt");
    std::io::Write::write_all(&mut w, plain).expect("write");
    w.finish().expect("finish")
}

/// A new age identity made by helm-bulk keygen; returns (file, recipient).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = ok(bin().arg("keygen").arg("-o").arg(&path).output().unwrap());
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    (path, recipient)
}

/// Requires a program, failing (never skipping) with what to install.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{program}` is required by this test; install the Debian package `{package}` (.ci/run does)")
    })
}

/// The reference age CLI.
pub fn age() -> Command {
    Command::new(require("age", "age"))
}

/// A new SSH key made by real ssh-keygen: returns the private key path
/// (the public key is beside it with `.pub`).
pub fn ssh_keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let mut c = Command::new(require("ssh-keygen", "openssh-client"));
    c.args(["-q", "-t", kind, "-C", name, "-N", passphrase, "-f"])
        .arg(&path);
    if kind == "rsa" {
        c.args(["-b", "3072"]);
    }
    ok(c.output().unwrap());
    path
}

/// Runs a command on a pty, typing `answers` at its passphrase prompts.
pub fn on_pty(answers: &[&str], cmd: &[&std::ffi::OsStr]) -> Output {
    let mut c = Command::new(require("python3", "python3"));
    // age's key reader prefers a pinentry program when one is installed; the
    // terminal prompt is what these tests drive.
    c.env("PINENTRY_PROGRAM", "/nonexistent/pinentry")
        .env_remove("HELM_BULK_CONFIG")
        .env("HELM_CONFIG_HOME", "/nonexistent/helm-bulk-test");
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kit/pty_run.py"));
    for a in answers {
        c.args(["--answer", a]);
    }
    c.arg("--");
    c.args(cmd);
    c.output().unwrap()
}

/// All files under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}
pub mod adversarial;
pub mod s3;
