//! `helm bulk diff` against a real kube-apiserver, with real helm v4 and v3.

mod cluster;
mod no_cluster;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cluster::{Helm, TestEnv};
use no_cluster::ok;

fn bulk(env: &TestEnv, helm: Helm, dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
    env.configure(&mut c);
    c.current_dir(dir)
        .env("HELM_BIN", env.helm_bin(helm))
        .env_remove("HELM_BULK_CONFIG")
        .env("HELM_CONFIG_HOME", "/nonexistent/helm-bulk-test");
    c
}

/// `diff -o json`: the exit code and the rows by `name`.
fn diff(
    env: &TestEnv,
    helm: Helm,
    dir: &Path,
    ns: &str,
    id: &Path,
) -> (i32, Vec<serde_json::Value>, Output) {
    let out = bulk(env, helm, dir)
        .args(["diff", "-n", ns, "-o", "json", "-i"])
        .arg(id)
        .arg("snap.age")
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "diff output is not JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), rows, out)
}

fn row<'a>(rows: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row for {name}: {rows:?}"))
}

/// What the steps of one drill share: two releases, web and db, of the
/// smoke chart in `ns`, saved to `d/snap.age` for the identity `id`.
struct Drill<'a> {
    env: &'a TestEnv,
    helm: Helm,
    d: &'a Path,
    ns: String,
    id: PathBuf,
    chart: String,
    /// A password set by the upgrade, which diff must not print unasked.
    canary: String,
}

impl Drill<'_> {
    fn bulk(&self) -> Command {
        bulk(self.env, self.helm, self.d)
    }

    fn diff(&self) -> (i32, Vec<serde_json::Value>, Output) {
        diff(self.env, self.helm, self.d, &self.ns, &self.id)
    }

    fn helm<const N: usize>(&self, args: [&str; N]) {
        self.env.helm(self.helm, args);
    }
}

fn drill(helm: Helm) {
    let env = TestEnv::shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = no_cluster::keygen(d, "id.txt");
    let t = Drill {
        env,
        helm,
        d,
        ns: cluster::unique_name(&format!("diff-{}", helm.tag())),
        id,
        chart: cluster::chart("smoke"),
        canary: format!("canary-{}", std::process::id()),
    };
    install_and_save_web_and_db(&t, &recipient);
    just_saved_is_equal(&t);
    restored_by_load_after_a_loss_is_equal_again(&t);
    an_upgrade_drifts_one_release(&t);
    values_and_manifest_diffs_redact_the_secret(&t);
    uninstalled_is_missing_and_installed_after_is_extra(&t);
    a_wrong_key_is_exit_2(&t);
}

fn install_and_save_web_and_db(t: &Drill<'_>, recipient: &str) {
    for (name, extra) in [("web", "replicaCount=2"), ("db", "replicaCount=1")] {
        t.helm([
            "install",
            name,
            &t.chart,
            "-n",
            &t.ns,
            "--create-namespace",
            "--set",
            extra,
        ]);
    }
    ok(t.bulk()
        .args(["save", "-n", &t.ns, "-r", recipient, "-o", "snap.age"])
        .output()
        .unwrap());
}

fn just_saved_is_equal(t: &Drill<'_>) {
    let (code, rows, out) = t.diff();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["status"] == "equal"), "{rows:?}");
}

fn restored_by_load_after_a_loss_is_equal_again(t: &Drill<'_>) {
    t.helm(["uninstall", "web", "-n", &t.ns]);
    t.helm(["uninstall", "db", "-n", &t.ns]);
    let (code, rows, _) = t.diff();
    assert_eq!(code, 1);
    assert!(rows.iter().all(|r| r["status"] == "missing"), "{rows:?}");
    ok(t.bulk()
        .args(["load", "-n", &t.ns, "-i"])
        .arg(&t.id)
        .arg("snap.age")
        .output()
        .unwrap());
    let (code, rows, out) = t.diff();
    assert_eq!(
        code,
        0,
        "after load: {rows:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One value changed by an upgrade: that release drifted, in its values
/// (and the manifest they render); the other is still equal.
fn an_upgrade_drifts_one_release(t: &Drill<'_>) {
    t.helm([
        "upgrade",
        "web",
        &t.chart,
        "-n",
        &t.ns,
        "--reuse-values",
        "--set",
        "replicaCount=3",
        "--set-string",
        &format!("secret.password={}", t.canary),
    ]);
    let (code, rows, out) = t.diff();
    assert_eq!(code, 1);
    let web = row(&rows, "web");
    assert_eq!(web["status"], "drifted", "{rows:?}");
    assert_eq!(web["differs"], serde_json::json!(["values", "manifest"]));
    assert_eq!(row(&rows, "db")["status"], "equal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Error: the cluster differs from the snapshot: 1 drifted, 0 missing, 0 extra"
        ),
        "{stderr}"
    );
}

/// `s` in base64, by the base64 tool.
fn b64(s: &str) -> String {
    use std::io::Write;
    let mut c = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
}

/// --values and --manifest: unified diffs, the secret redacted unless --show-secrets.
fn values_and_manifest_diffs_redact_the_secret(t: &Drill<'_>) {
    let (ns, canary) = (&t.ns, &t.canary);
    let show = |extra: &[&str]| {
        t.bulk()
            .args(["diff", "-n", ns, "--values", "--manifest", "-i"])
            .arg(&t.id)
            .args(extra)
            .arg("snap.age")
            .output()
            .unwrap()
    };
    let out = show(&[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "--- snapshot {ns}/web revision 1 (values)\n+++ cluster {ns}/web revision 2 (values)"
        )),
        "{text}"
    );
    assert!(
        text.contains("\n-replicaCount: 2\n+replicaCount: 3\n"),
        "{text}"
    );
    assert!(text.contains("+  password: <redacted>"), "{text}");
    assert!(
        text.contains("(manifest)") && text.contains("-  replicas: 2\n+  replicas: 3"),
        "{text}"
    );
    assert!(
        !text.contains(canary.as_str()) && !text.contains(&b64(canary)),
        "{text}"
    );
    let out = show(&["--show-secrets"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("+  password: {canary}")), "{text}");
    assert!(text.contains(&b64(canary)), "positive control: {text}");
}

/// Uninstalled: missing. Installed after the snapshot: extra.
fn uninstalled_is_missing_and_installed_after_is_extra(t: &Drill<'_>) {
    t.helm(["uninstall", "db", "-n", &t.ns]);
    t.helm(["install", "late", &t.chart, "-n", &t.ns]);
    let (code, rows, _) = t.diff();
    assert_eq!(code, 1);
    assert_eq!(row(&rows, "db")["status"], "missing");
    assert_eq!(row(&rows, "late")["status"], "extra");
}

/// An error (wrong key) is exit 2, as diff's convention says.
fn a_wrong_key_is_exit_2(t: &Drill<'_>) {
    let (other, _) = no_cluster::keygen(t.d, "other.txt");
    let out = t
        .bulk()
        .args(["diff", "-n", &t.ns, "-i"])
        .arg(&other)
        .arg("snap.age")
        .output()
        .unwrap();
    no_cluster::fails_with(&out, 2, "none of the given identities");
}

cluster::helm4_and_helm3! {
    drill => diff_reports_equal_drifted_missing_and_extra_with_helm_v4, diff_reports_equal_drifted_missing_and_extra_with_helm_v3;
}
