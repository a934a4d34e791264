//! The Helm plugin: `plugin.yaml`, `scripts/install.sh`, the release layout
//! `.github/workflows/release.yml` publishes, and `helm bulk` run by real
//! Helm 4 and Helm 3 against the test environment.
//!
//! The path installs build the plugin from source through the install hook
//! (`cargo build --release --locked`, with LTO and most optimization turned
//! off through CARGO_PROFILE_RELEASE_* to keep the test fast). Both share one
//! cargo target directory, `<target>/plugin-install`, so only the first build
//! compiles the dependencies; later runs rebuild helm-bulk alone, if changed.
#![cfg(unix)]

mod cluster;
mod no_cluster;

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

/// Cargo profile overrides for the install builds of this test: what is
/// tested is the plugin machinery, not an optimized binary, and without LTO a
/// change to the sources rebuilds in seconds instead of minutes. (Release
/// binaries are built by .github/workflows/release.yml with Cargo.toml's
/// release profile.)
const TEST_BUILD_PROFILE: [(&str, &str); 3] = [
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
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
    let installed = fs::read(&binary).expect("read bin/helm-bulk");

    // A checksum that does not match is an error (no fallback), and the
    // installed bin/ stays as it was.
    fs::write(
        release.join("SHA256SUMS"),
        format!(
            "{}  helm-bulk-{VERSION}-{}.tar.gz\n",
            "0".repeat(64),
            release_target()
        ),
    )
    .expect("tamper with SHA256SUMS");
    let out = run_install_script(
        &plugin,
        scratch.path(),
        &path,
        &[("HELM_BULK_DOWNLOAD_URL", &url)],
    );
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
    assert_eq!(leftovers(&plugin, scratch.path()), Vec::<String>::new());
}

#[test]
fn install_script_without_download_or_cargo_fails_clearly_and_leaves_no_bin() {
    let scratch = tempdir("helm-bulk-install-fail.");
    let plugin = scratch.path().join("helm-bulk");
    clean_copy(&plugin);

    // A PATH with what install.sh uses, curl included, but no cargo.
    let tools = scratch.path().join("tools");
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

// --- helm plugin install <path>, then helm bulk, with Helm 4 and Helm 3 -----------

fn install_from_path_and_save(helm: Helm) {
    let started = Instant::now();
    let env = TestEnv::shared();
    let work = tempdir(&format!("helm-bulk-plugin-{}.", helm.tag()));
    let source = work.path().join("helm-bulk");
    clean_copy(&source);
    let ph = PluginHelm {
        env,
        helm,
        data_home: work.path().join("helm-data"),
    };

    // Install from the path, building from source in the install hook.
    let mut install = ph.cmd();
    for_source_build(&mut install)
        .args(["plugin", "install"])
        .arg(&source);
    if helm == Helm::V4 {
        // Helm 4 verifies plugin signatures by default; only archives carry one.
        install.arg("--verify=false");
    }
    let build_started = Instant::now();
    let out = run_ok_for(&mut install, INSTALL_TIMEOUT);
    eprintln!(
        "plugin ({}): helm plugin install took {:.1}s",
        helm.tag(),
        build_started.elapsed().as_secs_f64()
    );
    assert!(out.contains("Installed plugin: bulk"), "{out}");
    assert!(
        source.join("bin/helm-bulk").is_file(),
        "the install hook made no bin/helm-bulk"
    );

    let list = ph.ok(["plugin", "list"]);
    let rows = bulk_rows(&list);
    assert_eq!(rows.len(), 1, "helm plugin list:\n{list}");
    assert_eq!(rows[0].get(1).map(String::as_str), Some(VERSION), "{list}");

    let help = ph.ok(["bulk", "--help"]);
    assert!(help.contains("Usage: helm bulk"), "{help}");
    for sub in ["save", "show", "keygen"] {
        assert!(help.contains(sub), "no {sub} in helm bulk --help:\n{help}");
    }
    let version = ph.ok(["bulk", "--version"]);
    assert_eq!(version.trim(), format!("helm-bulk {VERSION}"));

    // A key, through helm.
    let key = work.path().join("key.txt");
    let recipient = ph.ok([
        OsStr::new("bulk"),
        OsStr::new("keygen"),
        OsStr::new("-o"),
        key.as_os_str(),
    ]);
    let recipient = recipient.trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");

    let tag = helm.tag();
    let (ns_a, rel_a) = (
        unique_name(&format!("pl-{tag}-a")),
        unique_name(&format!("pa-{tag}")),
    );
    let (ns_b, rel_b) = (
        unique_name(&format!("pl-{tag}-b")),
        unique_name(&format!("pb-{tag}")),
    );
    let (ns_c, rel_c) = (
        unique_name(&format!("pl-{tag}-c")),
        unique_name(&format!("pc-{tag}")),
    );
    install_smoke(env, helm, &rel_a, &ns_a, "secret");
    install_smoke(env, helm, &rel_b, &ns_b, "secret");
    install_smoke(env, helm, &rel_c, &ns_c, "configmap");
    let kind = match helm {
        Helm::V4 => "helm4",
        Helm::V3 => "helm3",
    };

    // Helm's own flags: helm consumes -n, --kube-context and --kubeconfig and
    // passes them as HELM_NAMESPACE, HELM_KUBECONTEXT and KUBECONFIG.
    let context = current_context(&env.kubeconfig);
    let file_a = work.path().join("a.age");
    let mut save = ph.cmd();
    save.env_remove("KUBECONFIG")
        .args([
            "bulk",
            "save",
            "-n",
            &ns_a,
            "--kube-context",
            &context,
            "--kubeconfig",
        ])
        .arg(&env.kubeconfig)
        .args(["-r", &recipient, "-o"])
        .arg(&file_a);
    run_ok(&mut save);
    let index = show_json(&ph, &key, &file_a);
    assert_eq!(
        releases_of(&index),
        vec![(ns_a.clone(), rel_a.clone())],
        "{index}"
    );
    assert_eq!(index["source"]["kind"], kind, "{index}");
    assert_eq!(index["source"]["driver"], "secret", "{index}");
    assert_eq!(index["cluster"]["context"], context.as_str(), "{index}");

    // No -n: HELM_NAMESPACE is the context's namespace, which means "all".
    let file_all = work.path().join("all.age");
    ph.ok([
        OsStr::new("bulk"),
        OsStr::new("save"),
        OsStr::new("-r"),
        OsStr::new(&recipient),
        OsStr::new("-o"),
        file_all.as_os_str(),
    ]);
    let all = releases_of(&show_json(&ph, &key, &file_all));
    for release in [(&ns_a, &rel_a), (&ns_b, &rel_b)] {
        assert!(
            all.iter().any(|(ns, name)| (ns, name) == release),
            "{release:?} not in {all:?}"
        );
    }
    assert!(
        !all.iter().any(|(_, name)| name == &rel_c),
        "a configmap record in a secret-driver save"
    );
    let table = ph.ok([
        OsStr::new("bulk"),
        OsStr::new("show"),
        OsStr::new("-i"),
        key.as_os_str(),
        file_all.as_os_str(),
    ]);
    assert!(table.contains(&rel_a) && table.contains(&rel_b), "{table}");

    // HELM_DRIVER reaches the plugin.
    let file_c = work.path().join("c.age");
    let mut save = ph.cmd();
    save.env("HELM_DRIVER", "configmap")
        .args(["bulk", "save", "-n", &ns_c, "-r", &recipient, "-o"])
        .arg(&file_c);
    run_ok(&mut save);
    let index = show_json(&ph, &key, &file_c);
    assert_eq!(
        releases_of(&index),
        vec![(ns_c.clone(), rel_c.clone())],
        "{index}"
    );
    assert_eq!(index["source"]["driver"], "configmap", "{index}");
    assert_eq!(index["source"]["kind"], kind, "{index}");

    // load --dry-run through helm: the plan lists the saved releases and
    // nothing changes (they exist, so they are skipped).
    let plan = ph.ok([
        OsStr::new("bulk"),
        OsStr::new("load"),
        OsStr::new("--dry-run"),
        OsStr::new("-i"),
        key.as_os_str(),
        file_all.as_os_str(),
    ]);
    assert!(plan.contains("Plan (dry run"), "{plan}");
    assert!(
        plan.contains(&rel_a) && plan.contains("already installed"),
        "{plan}"
    );

    ph.ok(["plugin", "uninstall", "bulk"]);
    let list = ph.ok(["plugin", "list"]);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some("bulk")),
        "bulk still listed after uninstall: {list}"
    );
    eprintln!(
        "plugin ({}): whole test took {:.1}s",
        helm.tag(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn helm4_installs_from_path_and_runs_helm_bulk() {
    install_from_path_and_save(Helm::V4);
}

#[test]
fn helm3_installs_from_path_and_runs_helm_bulk() {
    install_from_path_and_save(Helm::V3);
}

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

#[test]
fn helm4_signed_plugin_archive_installs_and_verifies() {
    let env = TestEnv::shared();
    let work = tempdir("helm-bulk-plugin-signed.");
    let w = work.path();

    // A passphrase-protected signing key, exported as release.yml does.
    let gpg = Gpg::new();
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

    // The release: binary archive + SHA256SUMS, and the plugin directory
    // release.yml packages (plugin.yaml, scripts/install.sh, SHA256SUMS).
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

    let ph = PluginHelm {
        env,
        helm: Helm::V4,
        data_home: w.join("helm-data"),
    };
    let dist = w.join("dist");
    let mut package = ph.cmd();
    package
        .args(["plugin", "package"])
        .arg(&stage)
        .arg("--sign")
        .arg("--keyring")
        .arg(&secring)
        .args(["--key", &uid])
        .arg("--passphrase-file")
        .arg(&passphrase)
        .arg("-d")
        .arg(&dist);
    let out = run_ok(&mut package);
    let archive = dist.join(format!("bulk-{VERSION}.tgz"));
    assert!(archive.is_file(), "no {}: {out}", archive.display());
    assert!(
        dist.join(format!("bulk-{VERSION}.tgz.prov")).is_file(),
        "{out}"
    );

    // helm plugin verify and install check the signature against the
    // published public key; the install hook then downloads the binary and
    // checks it against the SHA256SUMS the signature covers.
    let mut verify = ph.cmd();
    verify
        .args(["plugin", "verify"])
        .arg(&archive)
        .arg("--keyring")
        .arg(&public_key);
    run_ok(&mut verify);
    let mut install = ph.cmd();
    install
        .env("HELM_BULK_DOWNLOAD_URL", file_url(&release))
        .args(["plugin", "install"])
        .arg(&archive)
        .arg("--keyring")
        .arg(&public_key);
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

    // A modified archive, or one without its .prov, is refused.
    let tampered = w.join("tampered");
    fs::create_dir_all(&tampered).expect("mkdir");
    let mut bytes = fs::read(&archive).expect("read the archive");
    bytes.extend_from_slice(b"tampered");
    fs::write(tampered.join(archive.file_name().unwrap()), bytes).expect("write");
    fs::copy(
        dist.join(format!("bulk-{VERSION}.tgz.prov")),
        tampered.join(format!("bulk-{VERSION}.tgz.prov")),
    )
    .expect("copy the .prov");
    let unsigned = w.join("unsigned");
    fs::create_dir_all(&unsigned).expect("mkdir");
    fs::copy(&archive, unsigned.join(archive.file_name().unwrap())).expect("copy");
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
            .env("HELM_BULK_DOWNLOAD_URL", file_url(&release))
            .args(["plugin", "install"])
            .arg(dir.join(archive.file_name().unwrap()))
            .arg("--keyring")
            .arg(&public_key);
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
