//! `plugin.yaml` and `scripts/install.sh` without Helm: versions, the
//! download, its checksum, and the failures.

use super::*;

// --- plugin.yaml ---------------------------------------------------------------

#[test]
fn plugin_yaml_version_and_repository_match_cargo_toml() {
    let text = fs::read_to_string(repo_root().join("plugin.yaml")).expect("read plugin.yaml");
    let yaml: serde_json::Value = serde_norway::from_str(&text).expect("plugin.yaml is YAML");
    assert_eq!(yaml["name"], "bulk");
    assert_eq!(
        yaml["version"], VERSION,
        "plugin.yaml's version must equal Cargo.toml's (install.sh downloads that release)"
    );
    // Helm 3 loads plugin.yaml strictly and Helm 4 only accepts a missing
    // apiVersion (legacy) or v1: the legacy format, with no apiVersion.
    assert!(
        yaml.get("apiVersion").is_none(),
        "plugin.yaml must not set apiVersion"
    );
    assert!(
        yaml.get("command").is_none(),
        "Helm 4 refuses command together with platformCommand"
    );
    for hook in ["install", "update"] {
        let h = yaml["hooks"][hook].as_str().unwrap_or_default();
        assert!(
            h.contains("$HELM_PLUGIN_DIR/scripts/install.sh"),
            "{hook} hook: {h}"
        );
    }
    let commands = yaml["platformCommand"].as_array().expect("platformCommand");
    for os in ["linux", "darwin", "windows"] {
        assert!(
            commands.iter().any(|c| c["os"] == os),
            "no platformCommand for {os} (Helm 3 before 3.18 needs an os match)"
        );
    }

    // install.sh downloads from Cargo.toml's repository, and release.yml
    // builds every target install.sh knows.
    let script = fs::read_to_string(repo_root().join("scripts/install.sh")).expect("install.sh");
    let repository = env!("CARGO_PKG_REPOSITORY");
    assert!(
        script.contains(&format!("\nREPOSITORY={repository}\n")),
        "scripts/install.sh's REPOSITORY must be Cargo.toml's repository ({repository})"
    );
    let workflow =
        fs::read_to_string(repo_root().join(".github/workflows/release.yml")).expect("release.yml");
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        assert!(
            script.contains(&format!("target={target}")),
            "install.sh: {target}"
        );
        assert!(
            workflow.contains(&format!("target: {target}")),
            "release.yml: {target}"
        );
    }
    assert!(workflow.contains("name=helm-bulk-$VERSION-${{ matrix.target }}"));
    assert!(script.contains("asset=helm-bulk-$version-$target.tar.gz"));
}

// --- scripts/install.sh without Helm ----------------------------------------------

#[test]
fn install_script_downloads_verifies_and_replaces_bin_whole() {
    let scratch = tempdir("helm-bulk-install-dl.");
    let plugin = scratch.path().join("plugin");
    fs::create_dir_all(plugin.join("scripts")).expect("mkdir");
    fs::copy(repo_root().join("plugin.yaml"), plugin.join("plugin.yaml")).expect("copy");
    fs::copy(
        repo_root().join("scripts/install.sh"),
        plugin.join("scripts/install.sh"),
    )
    .expect("copy");
    let release = scratch.path().join("release");
    fs::create_dir_all(&release).expect("mkdir");
    fake_release(&release);
    let url = file_url(&release);
    let path = std::env::var_os("PATH").unwrap_or_default();
    assert!(
        which("curl").is_some(),
        "this test needs curl (for file:// URLs)"
    );

    let out = run_install_script(
        &plugin,
        scratch.path(),
        &path,
        &[("HELM_BULK_DOWNLOAD_URL", &url)],
    );
    assert!(
        out.status.success(),
        "install.sh failed:\n{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("SHA-256 verified"),
        "{}",
        stderr_of(&out)
    );
    let binary = plugin.join("bin/helm-bulk");
    let mode = fs::metadata(&binary)
        .expect("bin/helm-bulk")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "bin/helm-bulk mode {mode:o}");
    let dir_mode = fs::metadata(plugin.join("bin"))
        .expect("bin/")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o755, "bin/ mode {dir_mode:o}");
    let reported = run_ok(Command::new(&binary).arg("--version"));
    assert_eq!(reported.trim(), format!("helm-bulk {VERSION}"));
    assert_eq!(leftovers(&plugin, scratch.path()), Vec::<String>::new());
    a_checksum_mismatch_keeps_the_installed_bin(&plugin, scratch.path(), &release);
}

/// A checksum that does not match is an error (no fallback), and the
/// installed bin/ stays as it was.
fn a_checksum_mismatch_keeps_the_installed_bin(plugin: &Path, scratch: &Path, release: &Path) {
    let binary = plugin.join("bin/helm-bulk");
    let installed = fs::read(&binary).expect("read bin/helm-bulk");
    let url = file_url(release);
    let path = std::env::var_os("PATH").unwrap_or_default();
    fs::write(
        release.join("SHA256SUMS"),
        format!(
            "{}  helm-bulk-{VERSION}-{}.tar.gz\n",
            "0".repeat(64),
            release_target()
        ),
    )
    .expect("tamper with SHA256SUMS");
    let out = run_install_script(plugin, scratch, &path, &[("HELM_BULK_DOWNLOAD_URL", &url)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("SHA-256 mismatch"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        !stderr_of(&out).contains("building from source"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        fs::read(&binary).expect("bin/helm-bulk is still there"),
        installed
    );
    assert_eq!(leftovers(plugin, scratch), Vec::<String>::new());
}

/// A PATH directory with what install.sh uses, curl included, but no cargo.
fn tools_without_cargo(scratch: &Path) -> PathBuf {
    let tools = scratch.join("tools");
    fs::create_dir_all(&tools).expect("mkdir tools");
    for tool in [
        "sh",
        "dirname",
        "sed",
        "head",
        "uname",
        "mktemp",
        "rm",
        "cp",
        "chmod",
        "mv",
        "mkdir",
        "awk",
        "tar",
        "curl",
        "sha256sum",
        "shasum",
        "cat",
    ] {
        if let Some(p) = which(tool) {
            std::os::unix::fs::symlink(p, tools.join(tool)).expect("symlink a tool");
        }
    }
    assert!(!tools.join("cargo").exists());
    tools
}

#[test]
fn install_script_without_download_or_cargo_fails_clearly_and_leaves_no_bin() {
    let scratch = tempdir("helm-bulk-install-fail.");
    let plugin = scratch.path().join("helm-bulk");
    clean_copy(&plugin);

    let tools = tools_without_cargo(scratch.path());
    // A loopback port nobody listens on: the download is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/releases");

    let out = run_install_script(
        &plugin,
        scratch.path(),
        tools.as_os_str(),
        &[("HELM_BULK_DOWNLOAD_URL", &url)],
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        format!("could not install helm-bulk {VERSION}"),
        format!("could not download {url}/helm-bulk-{VERSION}-"),
        "cargo is not installed".to_owned(),
        "install curl or wget".to_owned(),
        "https://rustup.rs".to_owned(),
    ] {
        assert!(stderr.contains(&needle), "no `{needle}` in:\n{stderr}");
    }
    assert!(
        !plugin.join("bin").exists(),
        "install.sh left a bin/ behind"
    );
    assert_eq!(leftovers(&plugin, scratch.path()), Vec::<String>::new());

    // Asked to build from source without cargo: a clear error too.
    let out = run_install_script(
        &plugin,
        scratch.path(),
        tools.as_os_str(),
        &[("HELM_BULK_BUILD_FROM_SOURCE", "1")],
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HELM_BULK_BUILD_FROM_SOURCE=1, but cargo is not installed"),
        "{stderr}"
    );
    assert!(
        !plugin.join("bin").exists(),
        "install.sh left a bin/ behind"
    );
    assert_eq!(leftovers(&plugin, scratch.path()), Vec::<String>::new());
}
