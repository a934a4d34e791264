//! Helm 4: a signed plugin archive, as release.yml publishes it, installs
//! and verifies; a modified or unsigned one is refused.

use super::*;

// --- Helm 4: signed plugin archive ---------------------------------------------

/// A throwaway GnuPG home; its gpg-agent is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        assert!(
            which("gpg").is_some(),
            "this test needs GnuPG (gpg): apt-get install gnupg"
        );
        // Short path: gpg-agent's socket path has a length limit.
        let home = tempfile::Builder::new()
            .prefix("hb-gpg.")
            .tempdir_in("/tmp")
            .expect("create a GnuPG home");
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).expect("chmod 700");
        Gpg { home }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
        ]);
        cmd
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A gpg signing key, exported as release.yml uses it.
struct SigningKey {
    passphrase: PathBuf,
    /// The secret key, exported (`--export-secret-keys`).
    secring: PathBuf,
    /// The published public key, armored.
    public: PathBuf,
    uid: String,
}

#[test]
fn helm4_signed_plugin_archive_installs_and_verifies() {
    let env = TestEnv::shared();
    let work = tempdir("helm-bulk-plugin-signed.");
    let w = work.path();
    let gpg = Gpg::new();
    let key = make_signing_key(&gpg, w);
    let release = stage_the_release(w);
    let ph = PluginHelm {
        env,
        helm: Helm::V4,
        data_home: w.join("helm-data"),
    };
    let archive = package_signed(&ph, w, &key);
    verify_and_install(&ph, &archive, &release, &key);
    modified_or_unsigned_archives_are_refused(env, w, &archive, &release, &key);
}

/// A passphrase-protected signing key, exported as release.yml does.
fn make_signing_key(gpg: &Gpg, w: &Path) -> SigningKey {
    let passphrase = w.join("passphrase");
    fs::write(&passphrase, "not-a-secret\n").expect("write the passphrase");
    let params = w.join("key-params");
    fs::write(
        &params,
        "Key-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: sign\n\
         Name-Real: helm-bulk test signer\nName-Email: signer@helm-bulk.invalid\n\
         Expire-Date: 0\nPassphrase: not-a-secret\n%commit\n",
    )
    .expect("write the key parameters");
    run_ok(gpg.cmd().arg("--gen-key").arg(&params));
    let secring = w.join("secring.gpg");
    let exported = gpg
        .cmd()
        .arg("--passphrase-file")
        .arg(&passphrase)
        .arg("--export-secret-keys")
        .output()
        .expect("gpg --export-secret-keys");
    assert!(
        exported.status.success() && !exported.stdout.is_empty(),
        "{}",
        stderr_of(&exported)
    );
    fs::write(&secring, &exported.stdout).expect("write secring.gpg");
    let public_key = w.join("helm-bulk-signing-key.asc");
    let armored = run_ok(gpg.cmd().args(["--armor", "--export"]));
    fs::write(&public_key, armored).expect("write the public key");
    let uid = run_ok(gpg.cmd().args(["--with-colons", "--list-secret-keys"]))
        .lines()
        .find_map(|l| {
            l.strip_prefix("uid:")
                .map(|rest| rest.split(':').nth(8).unwrap_or_default().to_owned())
        })
        .expect("a uid");
    assert_eq!(uid, "helm-bulk test signer <signer@helm-bulk.invalid>");

    SigningKey {
        passphrase,
        secring,
        public: public_key,
        uid,
    }
}

/// The release: binary archive + SHA256SUMS (returned: its directory), and
/// the plugin directory release.yml packages (plugin.yaml,
/// scripts/install.sh, SHA256SUMS) under `w/stage/bulk`.
fn stage_the_release(w: &Path) -> PathBuf {
    let release = w.join("release");
    fs::create_dir_all(&release).expect("mkdir");
    fake_release(&release);
    let stage = w.join("stage/bulk");
    fs::create_dir_all(stage.join("scripts")).expect("mkdir");
    fs::copy(repo_root().join("plugin.yaml"), stage.join("plugin.yaml")).expect("copy");
    fs::copy(
        repo_root().join("scripts/install.sh"),
        stage.join("scripts/install.sh"),
    )
    .expect("copy");
    fs::copy(release.join("SHA256SUMS"), stage.join("SHA256SUMS")).expect("copy");

    release
}

/// `helm plugin package --sign` of the staged plugin: returns the archive
/// (its `.prov` beside it).
fn package_signed(ph: &PluginHelm<'_>, w: &Path, key: &SigningKey) -> PathBuf {
    let stage = w.join("stage/bulk");
    let dist = w.join("dist");
    let mut package = ph.cmd();
    package
        .args(["plugin", "package"])
        .arg(&stage)
        .arg("--sign")
        .arg("--keyring")
        .arg(&key.secring)
        .args(["--key", &key.uid])
        .arg("--passphrase-file")
        .arg(&key.passphrase)
        .arg("-d")
        .arg(&dist);
    let out = run_ok(&mut package);
    let archive = dist.join(format!("bulk-{VERSION}.tgz"));
    assert!(archive.is_file(), "no {}: {out}", archive.display());
    assert!(
        dist.join(format!("bulk-{VERSION}.tgz.prov")).is_file(),
        "{out}"
    );

    archive
}

/// helm plugin verify and install check the signature against the
/// published public key; the install hook then downloads the binary and
/// checks it against the SHA256SUMS the signature covers.
fn verify_and_install(ph: &PluginHelm<'_>, archive: &Path, release: &Path, key: &SigningKey) {
    let mut verify = ph.cmd();
    verify
        .args(["plugin", "verify"])
        .arg(archive)
        .arg("--keyring")
        .arg(&key.public);
    run_ok(&mut verify);
    let mut install = ph.cmd();
    install
        .env("HELM_BULK_DOWNLOAD_URL", file_url(release))
        .args(["plugin", "install"])
        .arg(archive)
        .arg("--keyring")
        .arg(&key.public);
    let out = run_ok(&mut install);
    for needle in [
        "Verifying plugin signature",
        "Signed by: helm-bulk test signer <signer@helm-bulk.invalid>",
        "Plugin Hash Verified: sha256:",
        "Installed plugin: bulk",
    ] {
        assert!(out.contains(needle), "no `{needle}` in:\n{out}");
    }
    let installed = ph.data_home.join("plugins/bulk");
    assert!(installed.join("bin/helm-bulk").is_file());
    let list = ph.ok(["plugin", "list"]);
    let rows = bulk_rows(&list);
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0].get(1).map(String::as_str), Some(VERSION), "{list}");
    assert!(
        rows[0].iter().any(|c| c == "signed"),
        "not shown as signed:\n{list}"
    );
    let version = ph.ok(["bulk", "--version"]);
    assert_eq!(version.trim(), format!("helm-bulk {VERSION}"));
}

/// A modified archive, or one without its .prov, is refused.
fn modified_or_unsigned_archives_are_refused(
    env: &TestEnv,
    w: &Path,
    archive: &Path,
    release: &Path,
    key: &SigningKey,
) {
    let dist = archive.parent().expect("the archive's directory");
    let tampered = w.join("tampered");
    fs::create_dir_all(&tampered).expect("mkdir");
    let mut bytes = fs::read(archive).expect("read the archive");
    bytes.extend_from_slice(b"tampered");
    fs::write(tampered.join(archive.file_name().unwrap()), bytes).expect("write");
    fs::copy(
        dist.join(format!("bulk-{VERSION}.tgz.prov")),
        tampered.join(format!("bulk-{VERSION}.tgz.prov")),
    )
    .expect("copy the .prov");
    let unsigned = w.join("unsigned");
    fs::create_dir_all(&unsigned).expect("mkdir");
    fs::copy(archive, unsigned.join(archive.file_name().unwrap())).expect("copy");
    for (dir, expected) in [
        (&tampered, "plugin verification failed"),
        (&unsigned, "no provenance file"),
    ] {
        let fresh = PluginHelm {
            env,
            helm: Helm::V4,
            data_home: dir.join("helm-data"),
        };
        let mut install = fresh.cmd();
        install
            .env("HELM_BULK_DOWNLOAD_URL", file_url(release))
            .args(["plugin", "install"])
            .arg(dir.join(archive.file_name().unwrap()))
            .arg("--keyring")
            .arg(&key.public);
        let out = run(&mut install);
        assert!(
            !out.status.success(),
            "installed anyway from {}",
            dir.display()
        );
        assert!(stderr_of(&out).contains(expected), "{}", stderr_of(&out));
        assert!(!fresh.data_home.join("plugins/bulk").exists());
    }
}
