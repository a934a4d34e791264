//! `helm bulk diff` against a real kube-apiserver, with real helm v4 and v3.

mod cluster;
mod no_cluster;

use std::path::Path;
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

fn drill(helm: Helm) {
    let env = TestEnv::shared();
    let ns = cluster::unique_name(&format!("diff-{}", helm.tag()));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, recipient) = no_cluster::keygen(d, "id.txt");
    let chart = cluster::chart("smoke");
    let canary = format!("canary-{}", std::process::id());
    for (name, extra) in [("web", "replicaCount=2"), ("db", "replicaCount=1")] {
        env.helm(
            helm,
            [
                "install",
                name,
                &chart,
                "-n",
                &ns,
                "--create-namespace",
                "--set",
                extra,
            ],
        );
    }
    ok(bulk(env, helm, d)
        .args(["save", "-n", &ns, "-r", &recipient, "-o", "snap.age"])
        .output()
        .unwrap());

    // Just saved: equal.
    let (code, rows, out) = diff(env, helm, d, &ns, &id);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["status"] == "equal"), "{rows:?}");

    // Restored by load after a loss: equal again.
    env.helm(helm, ["uninstall", "web", "-n", &ns]);
    env.helm(helm, ["uninstall", "db", "-n", &ns]);
    let (code, rows, _) = diff(env, helm, d, &ns, &id);
    assert_eq!(code, 1);
    assert!(rows.iter().all(|r| r["status"] == "missing"), "{rows:?}");
    ok(bulk(env, helm, d)
        .args(["load", "-n", &ns, "-i"])
        .arg(&id)
        .arg("snap.age")
        .output()
        .unwrap());
    let (code, rows, out) = diff(env, helm, d, &ns, &id);
    assert_eq!(
        code,
        0,
        "after load: {rows:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One value changed by an upgrade: that release drifted, in its values
    // (and the manifest they render); the other is still equal.
    env.helm(
        helm,
        [
            "upgrade",
            "web",
            &chart,
            "-n",
            &ns,
            "--reuse-values",
            "--set",
            "replicaCount=3",
            "--set-string",
            &format!("secret.password={canary}"),
        ],
    );
    let (code, rows, out) = diff(env, helm, d, &ns, &id);
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

    // --values and --manifest: unified diffs, the secret redacted unless --show-secrets.
    let show = |extra: &[&str]| {
        bulk(env, helm, d)
            .args(["diff", "-n", &ns, "--values", "--manifest", "-i"])
            .arg(&id)
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
    let b64 = |s: &str| {
        use std::io::Write;
        let mut c = Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    assert!(
        !text.contains(&canary) && !text.contains(&b64(&canary)),
        "{text}"
    );
    let out = show(&["--show-secrets"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("+  password: {canary}")), "{text}");
    assert!(text.contains(&b64(&canary)), "positive control: {text}");

    // Uninstalled: missing. Installed after the snapshot: extra.
    env.helm(helm, ["uninstall", "db", "-n", &ns]);
    env.helm(helm, ["install", "late", &chart, "-n", &ns]);
    let (code, rows, _) = diff(env, helm, d, &ns, &id);
    assert_eq!(code, 1);
    assert_eq!(row(&rows, "db")["status"], "missing");
    assert_eq!(row(&rows, "late")["status"], "extra");

    // An error (wrong key) is exit 2, as diff's convention says.
    let (other, _) = no_cluster::keygen(d, "other.txt");
    let out = bulk(env, helm, d)
        .args(["diff", "-n", &ns, "-i"])
        .arg(&other)
        .arg("snap.age")
        .output()
        .unwrap();
    no_cluster::fails_with(&out, 2, "none of the given identities");
}

#[test]
fn diff_reports_equal_drifted_missing_and_extra_with_helm_v4() {
    drill(Helm::V4);
}

#[test]
fn diff_reports_equal_drifted_missing_and_extra_with_helm_v3() {
    drill(Helm::V3);
}
