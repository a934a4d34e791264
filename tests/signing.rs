//! Signed snapshots: interop with real `ssh-keygen -Y`, and the refusals that
//! keep a forged snapshot in an untrusted bucket from being read or loaded.

mod cluster;
mod no_cluster;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cluster::{Helm, TestEnv};
use no_cluster::{fails_with, ok, on_pty, require, ssh_keygen};

/// The helm-bulk binary pointed at the shared test environment.
fn bulk(env: &TestEnv, dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
    env.configure(&mut c);
    c.current_dir(dir).env("HELM_BIN", env.helm_bin(Helm::V4));
    c
}

fn ssh_keygen_cmd() -> Command {
    Command::new(require("ssh-keygen", "openssh-client"))
}

/// One release in its own namespace, a key pair, and a signed snapshot of it.
struct Fixture {
    namespace: String,
    dir: tempfile::TempDir,
    identity: PathBuf,
    recipient: String,
}

fn fixture(env: &TestEnv, tag: &str) -> Fixture {
    let ns = cluster::unique_name(&format!("sig-{tag}"));
    env.helm(
        Helm::V4,
        [
            "install",
            "signed",
            &cluster::chart("smoke"),
            "-n",
            &ns,
            "--create-namespace",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = no_cluster::keygen(dir.path(), "id.txt");
    Fixture {
        namespace: ns,
        dir,
        identity,
        recipient,
    }
}

fn save_signed(env: &TestEnv, f: &Fixture, key: &Path, out: &str) -> Output {
    bulk(env, f.dir.path())
        .args(["save", "-r", &f.recipient, "-o", out, "--sign-key"])
        .arg(key)
        .output()
        .unwrap()
}

/// Asserts `ssh-keygen -Y verify` accepts `sig` over `snapshot` from `principal`.
fn ssh_keygen_verifies(allowed: &Path, principal: &str, sig: &Path, snapshot: &Path) {
    let verified = ssh_keygen_cmd()
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", principal, "-n", "helm-bulk", "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(snapshot).unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "ssh-keygen -Y verify of {}: {text} {}",
        sig.display(),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        text.contains(&format!("Good \"helm-bulk\" signature for {principal}")),
        "{text}"
    );
}

fn show(env: &TestEnv, f: &Fixture, args: &[&OsStr]) -> Output {
    bulk(env, f.dir.path())
        .arg("show")
        .arg("-i")
        .arg(&f.identity)
        .args(args)
        .output()
        .unwrap()
}

/// Asserts `show --trusted-signers ALLOWED SNAPSHOT` accepts the signature
/// and names `principal` as the signer.
fn helm_bulk_accepts(env: &TestEnv, f: &Fixture, allowed: &Path, snap: &str, principal: &str) {
    let out = ok(show(
        env,
        f,
        &[
            "--trusted-signers".as_ref(),
            allowed.as_os_str(),
            snap.as_ref(),
        ],
    ));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("Signed by {principal}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn helm_bulk_signatures_verify_with_ssh_keygen() {
    let env = TestEnv::shared();
    let f = fixture(env, "out");
    for kind in ["ed25519", "rsa"] {
        let key = ssh_keygen(f.dir.path(), &format!("sign_{kind}"), kind, "");
        let snap = format!("snap-{kind}.age");
        ok(save_signed(env, &f, &key, &snap));
        let sig = f.dir.path().join(format!("{snap}.sig"));
        assert!(
            std::fs::read_to_string(&sig)
                .unwrap()
                .starts_with("-----BEGIN SSH SIGNATURE-----")
        );
        let allowed =
            no_cluster::allowed_signers(f.dir.path(), "allowed", &[("ops@example.com", &key)]);
        ssh_keygen_verifies(&allowed, "ops@example.com", &sig, &f.dir.path().join(&snap));
        // And helm-bulk itself accepts it.
        helm_bulk_accepts(env, &f, &allowed, &snap, "ops@example.com");
    }
}

/// A real `ssh-agent` on a private socket, killed when dropped.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new(require("ssh-agent", "openssh-client"))
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent did not create its socket"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    fn add(&self, key: &Path) {
        ok(Command::new(require("ssh-add", "openssh-client"))
            .env("SSH_AUTH_SOCK", &self.socket)
            .arg(key)
            .output()
            .unwrap());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn signs_with_a_key_held_by_ssh_agent() {
    let env = TestEnv::shared();
    let f = fixture(env, "agent");
    let agent = Agent::start(f.dir.path());
    for kind in ["ed25519", "rsa"] {
        let key = ssh_keygen(f.dir.path(), &format!("agent_{kind}"), kind, "");
        let public = key.with_extension("pub");
        let snap = format!("agent-{kind}.age");
        let save = |sock: Option<&Path>| {
            let mut c = bulk(env, f.dir.path());
            c.env_remove("SSH_AUTH_SOCK");
            if let Some(s) = sock {
                c.env("SSH_AUTH_SOCK", s);
            }
            c.args(["save", "-r", &f.recipient, "-o", &snap, "--sign-key"])
                .arg(&public)
                .output()
                .unwrap()
        };
        // A public key without an agent, or one the agent does not hold.
        fails_with(&save(None), 1, "SSH_AUTH_SOCK is not set");
        fails_with(
            &save(Some(&agent.socket)),
            1,
            "does not hold the private key",
        );
        assert!(
            !f.dir.path().join(&snap).exists(),
            "{kind}: no snapshot on a refused key"
        );
        agent.add(&key);
        // The private key file is gone: only the agent can sign now.
        std::fs::remove_file(&key).unwrap();
        ok(save(Some(&agent.socket)));
        let sig = f.dir.path().join(format!("{snap}.sig"));
        let allowed = no_cluster::allowed_signers(
            f.dir.path(),
            "allowed-agent",
            &[("agent@example.com", &key)],
        );
        ssh_keygen_verifies(
            &allowed,
            "agent@example.com",
            &sig,
            &f.dir.path().join(&snap),
        );
        helm_bulk_accepts(env, &f, &allowed, &snap, "agent@example.com");
    }
}

#[test]
fn passphrase_protected_signing_key_is_prompted() {
    let env = TestEnv::shared();
    let f = fixture(env, "pass");
    let key = ssh_keygen(f.dir.path(), "locked", "ed25519", "s1gn-me");
    let mut args: Vec<std::ffi::OsString> = vec![env!("CARGO_BIN_EXE_helm-bulk").into()];
    args.extend(["save", "-r", &f.recipient, "-o"].map(Into::into));
    args.push(f.dir.path().join("locked.age").into());
    args.push("--sign-key".into());
    args.push(key.clone().into());
    let argv: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    // on_pty runs the command with the caller's environment: point it at the cluster.
    let mut wrapper: Vec<std::ffi::OsString> = vec!["env".into()];
    for (k, v) in env.env_vars() {
        let mut kv = std::ffi::OsString::from(format!("{k}="));
        kv.push(v);
        wrapper.push(kv);
    }
    wrapper.extend(argv.iter().map(|a| a.to_os_string()));
    let wrapper: Vec<&OsStr> = wrapper.iter().map(|a| a.as_os_str()).collect();
    let run = on_pty(&["s1gn-me"], &wrapper);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let allowed =
        no_cluster::allowed_signers(f.dir.path(), "allowed", &[("locked@example.com", &key)]);
    let out = ok(show(
        env,
        &f,
        &[
            "--trusted-signers".as_ref(),
            allowed.as_os_str(),
            "locked.age".as_ref(),
        ],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Signed by locked@example.com"));
}

#[test]
fn ssh_keygen_signatures_verify_in_helm_bulk() {
    let env = TestEnv::shared();
    let f = fixture(env, "in");
    let unsigned = bulk(env, f.dir.path())
        .args(["save", "-r", &f.recipient, "-o", "snap.age"])
        .output()
        .unwrap();
    ok(unsigned);
    for kind in ["ed25519", "rsa"] {
        let key = ssh_keygen(f.dir.path(), &format!("ext_{kind}"), kind, "");
        let _ = std::fs::remove_file(f.dir.path().join("snap.age.sig"));
        ok(ssh_keygen_cmd()
            .args(["-Y", "sign", "-n", "helm-bulk", "-f"])
            .arg(&key)
            .arg(f.dir.path().join("snap.age"))
            .output()
            .unwrap());
        let allowed =
            no_cluster::allowed_signers(f.dir.path(), "allowed", &[("ci@example.com", &key)]);
        let out = ok(show(
            env,
            &f,
            &[
                "--trusted-signers".as_ref(),
                allowed.as_os_str(),
                "snap.age".as_ref(),
            ],
        ));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Signed by ci@example.com"),
            "{kind}"
        );
    }
}

#[test]
fn forged_tampered_and_stale_snapshots_are_refused() {
    let env = TestEnv::shared();
    let f = fixture(env, "forge");
    let d = f.dir.path();
    let trusted = ssh_keygen(d, "trusted", "ed25519", "");
    let attacker = ssh_keygen(d, "attacker", "ed25519", "");
    ok(save_signed(env, &f, &trusted, "good.age"));
    let allowed = no_cluster::allowed_signers(d, "allowed", &[("ops@example.com", &trusted)]);
    let signers: [&OsStr; 2] = ["--trusted-signers".as_ref(), allowed.as_os_str()];
    ok(show(
        env,
        &f,
        &[signers[0], signers[1], "good.age".as_ref()],
    ));

    // A forgery made with only the public recipient, by the reference age CLI:
    // decrypt the real one (standing in for any plaintext the attacker wants)
    // and re-encrypt it.
    let plain = ok(no_cluster::age()
        .arg("-d")
        .arg("-i")
        .arg(&f.identity)
        .arg(d.join("good.age"))
        .output()
        .unwrap())
    .stdout;
    std::fs::write(d.join("forged.tar.gz"), &plain).unwrap();
    ok(no_cluster::age()
        .args(["-r", &f.recipient, "-o"])
        .arg(d.join("forged.age"))
        .arg(d.join("forged.tar.gz"))
        .output()
        .unwrap());
    // Unsigned forgery.
    fails_with(
        &show(env, &f, &[signers[0], signers[1], "forged.age".as_ref()]),
        1,
        "the snapshot is not signed",
    );
    // Forgery signed by the attacker's key.
    ok(ssh_keygen_cmd()
        .args(["-Y", "sign", "-n", "helm-bulk", "-f"])
        .arg(&attacker)
        .arg(d.join("forged.age"))
        .output()
        .unwrap());
    fails_with(
        &show(env, &f, &[signers[0], signers[1], "forged.age".as_ref()]),
        1,
        "signed by an untrusted key",
    );
    // The trusted signature copied onto the forgery.
    std::fs::copy(d.join("good.age.sig"), d.join("forged.age.sig")).unwrap();
    fails_with(
        &show(env, &f, &[signers[0], signers[1], "forged.age".as_ref()]),
        1,
        "does not match the snapshot",
    );
    // A trusted signature in another namespace (e.g. made for git commits).
    let _ = std::fs::remove_file(d.join("forged.age.sig"));
    ok(ssh_keygen_cmd()
        .args(["-Y", "sign", "-n", "git", "-f"])
        .arg(&trusted)
        .arg(d.join("forged.age"))
        .output()
        .unwrap());
    fails_with(
        &show(env, &f, &[signers[0], signers[1], "forged.age".as_ref()]),
        1,
        "namespace `git`",
    );

    // A flipped byte in the snapshot, at several places.
    let good = std::fs::read(d.join("good.age")).unwrap();
    let sig = std::fs::read(d.join("good.age.sig")).unwrap();
    for pos in [0, 50, good.len() / 2, good.len() - 1] {
        let mut b = good.clone();
        b[pos] ^= 1;
        std::fs::write(d.join("flip.age"), &b).unwrap();
        std::fs::write(d.join("flip.age.sig"), &sig).unwrap();
        fails_with(
            &show(env, &f, &[signers[0], signers[1], "flip.age".as_ref()]),
            1,
            "does not match the snapshot",
        );
    }
    // A flipped byte in the signature (inside its base64 body).
    for pos in [40, sig.len() / 2, sig.len() - 40] {
        let mut s = sig.clone();
        s[pos] = if s[pos] == b'A' { b'B' } else { b'A' };
        std::fs::write(d.join("flip.age"), &good).unwrap();
        std::fs::write(d.join("flip.age.sig"), &s).unwrap();
        let out = show(env, &f, &[signers[0], signers[1], "flip.age".as_ref()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "signature byte {pos} flipped was accepted"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("does not match")
                || err.contains("not a valid SSH signature")
                || err.contains("untrusted key"),
            "{err}"
        );
    }
    // --insecure-skip-verify reads the forgery, loudly.
    let out = ok(show(
        env,
        &f,
        &[
            signers[0],
            signers[1],
            "--insecure-skip-verify".as_ref(),
            "forged.age".as_ref(),
        ],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING: --insecure-skip-verify"));
    // Freshness: a snapshot older than --max-age.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = show(
        env,
        &f,
        &[
            signers[0],
            signers[1],
            "--max-age".as_ref(),
            "1s".as_ref(),
            "good.age".as_ref(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // The signer line (information), then exactly one error line.
    assert_eq!(
        err.lines().filter(|l| l.starts_with("Error: ")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("older than --max-age 1s; refusing it"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    ok(show(
        env,
        &f,
        &[
            signers[0],
            signers[1],
            "--max-age".as_ref(),
            "1h".as_ref(),
            "good.age".as_ref(),
        ],
    ));
}

#[test]
fn load_refuses_a_forgery_before_installing_anything() {
    let env = TestEnv::shared();
    let f = fixture(env, "load");
    let d = f.dir.path();
    let trusted = ssh_keygen(d, "trusted", "ed25519", "");
    ok(bulk(env, d)
        .args(["save", "-r", &f.recipient, "-o", "unsigned.age"])
        .output()
        .unwrap());
    let allowed = no_cluster::allowed_signers(d, "allowed", &[("ops@example.com", &trusted)]);
    let revision = || {
        let list = env.helm(Helm::V4, ["list", "-n", &f.namespace, "-o", "json"]);
        let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
        rows[0]["revision"].as_str().unwrap().to_owned()
    };
    assert_eq!(revision(), "1");
    let out = bulk(env, d)
        .args(["load", "--upgrade", "-i"])
        .arg(&f.identity)
        .arg("--trusted-signers")
        .arg(&allowed)
        .arg("unsigned.age")
        .output()
        .unwrap();
    fails_with(&out, 1, "the snapshot is not signed");
    // --upgrade would have made revision 2.
    assert_eq!(revision(), "1", "load changed the release");
    // Without signers configured, load says the origin is unverified.
    let out = bulk(env, d)
        .args(["load", "--dry-run", "-i"])
        .arg(&f.identity)
        .arg("unsigned.age")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("origin is unverified"));
}
