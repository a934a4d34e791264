//! The Helm plugin: `plugin.yaml`, `scripts/install.sh`, the release layout
//! `.github/workflows/release.yml` publishes, and `helm bulk` run by real
//! Helm 4 and Helm 3 against the test environment.
//!
//! The path installs build the plugin from source through the install hook
//! (`cargo build --release --locked`, with LTO and optimization turned off
//! through CARGO_PROFILE_RELEASE_* to keep the test fast). Both share one
//! cargo target directory, `<target>/plugin-install`, and the copies they
//! install from keep the sources' modification times, so the Helm 4 and
//! Helm 3 installs share one build: whichever comes second waits for cargo's
//! lock and finds everything fresh. Later runs rebuild helm-bulk alone, if
//! changed.
#![cfg(unix)]

#[path = "../cluster/mod.rs"]
mod cluster;
#[path = "../no_cluster/mod.rs"]
mod no_cluster;

mod from_path;
mod install_script;
mod signed;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::{Helm, TestEnv, chart, repo_root, unique_name};
use no_cluster::{run, run_ok, run_ok_for};
use sha2::{Digest, Sha256};

/// The crate version: plugin.yaml and the release assets must carry it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `helm plugin install` of a path builds helm-bulk in release mode the first
/// time: allow for a slow machine.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

// --- helpers -----------------------------------------------------------------

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory")
}

/// Copies the working tree (tracked and untracked files, so uncommitted work
/// is what gets built) without `.git`, `target` and an installed `bin/`,
/// keeping modes and modification times (so that cargo, sharing one target
/// directory between copies, sees unchanged sources as unchanged).
fn clean_copy(dest: &Path) {
    copy_tree(&repo_root(), dest, true);
    assert!(dest.join("plugin.yaml").is_file());
}

fn copy_tree(src: &Path, dst: &Path, top: bool) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    let entries = fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        // Build output and the fuzzer's build and corpora are not part of a checkout.
        if top && matches!(name.to_str(), Some(".git" | "target" | "bin" | "fuzz")) {
            continue;
        }
        let from = entry.path();
        let to = dst.join(&name);
        let kind = entry.file_type().expect("file type");
        if kind.is_symlink() {
            let link = fs::read_link(&from).expect("read a symlink");
            std::os::unix::fs::symlink(link, &to).expect("copy a symlink");
        } else if kind.is_dir() {
            copy_tree(&from, &to, false);
        } else if kind.is_file() {
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
            let modified = entry.metadata().and_then(|m| m.modified()).expect("mtime");
            fs::File::options()
                .write(true)
                .open(&to)
                .and_then(|f| f.set_modified(modified))
                .expect("set the copy's mtime");
        }
    }
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

fn sha256_hex(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&data))
}

/// Where `name` is on the PATH this test runs with.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The release target scripts/install.sh picks on this machine.
fn release_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        (os, arch) => panic!("no helm-bulk release is published for {os}/{arch}"),
    }
}

/// A directory laid out like a GitHub release of this version:
/// `helm-bulk-<version>-<target>.tar.gz` (holding
/// `helm-bulk-<version>-<target>/helm-bulk`) and `SHA256SUMS`. The "binary" is
/// a small script that runs the helm-bulk binary cargo built for the tests.
fn fake_release(dir: &Path) -> PathBuf {
    let name = format!("helm-bulk-{VERSION}-{}", release_target());
    let inner = dir.join(&name);
    fs::create_dir_all(&inner).expect("mkdir");
    write_executable(
        &inner.join("helm-bulk"),
        &format!(
            "#!/bin/sh\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_helm-bulk")
        ),
    );
    let asset = format!("{name}.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(dir)
            .args(["-czf", &asset, &name])
            .current_dir(dir),
    );
    fs::remove_dir_all(&inner).expect("rm the staging directory");
    fs::write(
        dir.join("SHA256SUMS"),
        format!("{}  {asset}\n", sha256_hex(&dir.join(&asset))),
    )
    .expect("write SHA256SUMS");
    dir.join(asset)
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// Runs scripts/install.sh of `plugin_dir` with only the given environment
/// (plus HOME and TMPDIR pointing into `scratch`).
fn run_install_script(
    plugin_dir: &Path,
    scratch: &Path,
    path: &OsStr,
    vars: &[(&str, &str)],
) -> Output {
    let home = scratch.join("home");
    let tmp = scratch.join("tmp");
    fs::create_dir_all(&home).expect("mkdir home");
    fs::create_dir_all(&tmp).expect("mkdir tmp");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(plugin_dir.join("scripts").join("install.sh"))
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("HELM_PLUGIN_DIR", plugin_dir)
        .envs(vars.iter().copied());
    run(&mut cmd)
}

/// Names in `dir` that install.sh must never leave behind.
fn leftovers(plugin_dir: &Path, scratch: &Path) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(plugin_dir)
        .expect("read the plugin directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".bin."))
        .collect();
    if let Ok(entries) = fs::read_dir(scratch.join("tmp")) {
        found.extend(entries.map(|e| {
            format!(
                "$TMPDIR/{}",
                e.expect("entry").file_name().to_string_lossy()
            )
        }));
    }
    found
}

/// Lines of `helm plugin list` whose first column is `bulk`, split in columns.
fn bulk_rows(list: &str) -> Vec<Vec<String>> {
    list.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|cols| cols.first().is_some_and(|c| c == "bulk"))
        .collect()
}

/// A helm of one version with its own plugin directory, so Helm 3 and Helm 4
/// installs do not see each other.
struct PluginHelm<'e> {
    env: &'e TestEnv,
    helm: Helm,
    data_home: PathBuf,
}

impl PluginHelm<'_> {
    fn cmd(&self) -> Command {
        let mut cmd = self.env.helm_cmd(self.helm);
        cmd.env("HELM_DATA_HOME", &self.data_home)
            .env("HELM_PLUGINS", self.data_home.join("plugins"));
        cmd
    }

    fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_ok(self.cmd().args(args))
    }
}

/// `<target>/plugin-install`: the cargo target directory every source
/// install of this test shares.
fn shared_cargo_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("plugin-install")
}

/// Cargo profile overrides for the install builds of this test (cargo reads
/// them from the environment; scripts/install.sh's header says so): what is
/// tested is the plugin machinery, not an optimized binary, and without LTO
/// or optimization the cold build of a clean checkout takes about half the
/// time. (Release binaries are built by .github/workflows/release.yml with
/// Cargo.toml's release profile; users' source builds use it too.)
const TEST_BUILD_PROFILE: [(&str, &str); 3] = [
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0"),
];

/// Prepares `cmd` to run a cargo build from the install hook: the same
/// toolchain as this test, the shared target directory, the faster profile,
/// and none of the package variables cargo set for this test process.
fn for_source_build(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
    let mut dirs = Vec::new();
    if let Some(cargo) = std::env::var_os("CARGO").map(PathBuf::from)
        && let Some(dir) = cargo.parent()
    {
        dirs.push(dir.to_path_buf());
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    cmd.env("PATH", std::env::join_paths(dirs).expect("join PATH"))
        .env("HELM_BULK_BUILD_FROM_SOURCE", "1")
        .env("CARGO_TARGET_DIR", shared_cargo_target())
        .envs(TEST_BUILD_PROFILE)
}

/// `current-context` of a kubeconfig.
fn current_context(kubeconfig: &Path) -> String {
    let text = fs::read_to_string(kubeconfig).expect("read the kubeconfig");
    text.lines()
        .find_map(|l| l.strip_prefix("current-context:"))
        .map(|c| c.trim().to_owned())
        .expect("the kubeconfig has a current-context")
}

fn install_smoke(env: &TestEnv, helm: Helm, release: &str, namespace: &str, driver: &str) {
    let mut cmd = env.helm_cmd(helm);
    cmd.env("HELM_DRIVER", driver).args([
        "install",
        release,
        &chart("smoke"),
        "--namespace",
        namespace,
        "--create-namespace",
    ]);
    run_ok(&mut cmd);
}

/// `helm bulk show -o json` of a snapshot, through helm.
fn show_json(ph: &PluginHelm<'_>, key: &Path, file: &Path) -> serde_json::Value {
    let out = ph.ok([
        OsStr::new("bulk"),
        OsStr::new("show"),
        OsStr::new("-i"),
        key.as_os_str(),
        OsStr::new("-o"),
        OsStr::new("json"),
        file.as_os_str(),
    ]);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("show -o json printed invalid JSON ({e}): {out}"))
}

/// The (namespace, name) pairs a snapshot's index lists.
fn releases_of(index: &serde_json::Value) -> Vec<(String, String)> {
    index["releases"]
        .as_array()
        .unwrap_or_else(|| panic!("no releases array in {index}"))
        .iter()
        .map(|r| {
            (
                r["namespace"].as_str().expect("namespace").to_owned(),
                r["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}
