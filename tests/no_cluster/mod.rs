//! Helpers that need no cluster, for every test binary (`mod no_cluster;`):
//! the helm-bulk binary, running commands with a deadline and asserting on
//! their output, sample records, snapshots written through the library, the
//! real `age` and `ssh-keygen` programs, a pty driver for passphrase prompts,
//! hostile archives (`adversarial`) and the S3 test server (`s3`).
//!
//! Tests that need a Kubernetes control plane and real helm also use
//! `tests/cluster` (`mod cluster;`), which builds on this module.
#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use helm_bulk::release::ReleaseRecord;
use helm_bulk::snapshot::{Index, write_snapshot};
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

/// How long one command run by [`run`] may take before it is killed and the
/// test fails (nothing waits for workloads that long, so this is generous).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Bytes as text, for messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Describes an output for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status.code(),
        text(&out.stderr),
        text(&out.stdout)
    )
}

/// Fails the test with the command's output unless it exits 0.
pub fn ok(out: Output) -> Output {
    ok_as(out, "command")
}

/// [`ok`], naming the command `what` in the failure message.
pub fn ok_as(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed: {}", show(&out));
    out
}

/// Runs a command with [`COMMAND_TIMEOUT`], capturing its output.
pub fn run(cmd: &mut Command) -> Output {
    run_for(cmd, COMMAND_TIMEOUT)
}

/// Runs a command with an empty standard input, capturing its output; kills
/// it and fails the test when it has not finished within `timeout`.
pub fn run_for(cmd: &mut Command, timeout: Duration) -> Output {
    let description = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                panic!(
                    "{description} did not finish within {timeout:?}; stderr:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            Err(e) => panic!("cannot wait for {description}: {e}"),
        }
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs a command (see [`run`]), asserts it succeeded and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    run_ok_for(cmd, COMMAND_TIMEOUT)
}

/// [`run_ok`] with its own deadline.
pub fn run_ok_for(cmd: &mut Command, timeout: Duration) -> String {
    let description = describe(cmd);
    let out = run_for(cmd, timeout);
    assert!(
        out.status.success(),
        "{description} failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{description} printed non-UTF-8: {e}"))
}

/// The lines of `text` that contain `needle`.
pub fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Sends a signal (`INT`, `KILL`…) to one process with kill(1).
pub fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// A command line in backquotes, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    format!("`{s}`")
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
    helm_bulk::testing::helm3_index("https://127.0.0.1:6443", "kit")
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

/// An allowed_signers file `dir/name` trusting each `(principal, key)` (the
/// key's `.pub` beside it) for the `helm-bulk` namespace.
pub fn allowed_signers(dir: &Path, name: &str, signers: &[(&str, &Path)]) -> PathBuf {
    let mut text = String::new();
    for (principal, key) in signers {
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        text.push_str(&format!("{principal} namespaces=\"helm-bulk\" {public}"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
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
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/no_cluster/pty_run.py"
    ));
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
