//! Release history restored by `load` (issue 21), with helm v4 and v3, on
//! the test environment's real API server:
//!
//! | release  | saved revisions                                                  |
//! |----------|------------------------------------------------------------------|
//! | `web`    | 1 install, 2 upgrade, 3 failed upgrade (port 99999), 4 upgrade |
//! | `tail`   | 1 install, 2 failed upgrade: the newest revision is `failed`     |
//! | `single` | 1 install                                                        |
//!
//! save → wipe → load, then: `helm history` rows are the same (revision,
//! status, chart, app version, description, updated); `helm get manifest
//! --revision K` and `helm get values --revision K` are the same for every
//! revision; the storage objects carry Helm's labels; a second load writes
//! nothing and exits 0; `helm rollback web 2` succeeds and the live objects
//! are those of revision 2 before the save; a following `helm upgrade` with
//! the original chart works. Then a load killed (SIGKILL of its process
//! group) between two history writes (`HELM_BULK_TEST_HISTORY_PAUSE_MS`
//! slows the writes down) leaves a history helm can read, and a rerun
//! completes it. `--no-history` and `--history 2` restore what they say,
//! and the dry run lists the writes.
//!
//! The same releases made, saved and loaded with HELM_DRIVER=configmap
//! (helm's ConfigMap storage driver): the same history, manifests, values,
//! labels and second load, every revision a ConfigMap and no release Secret
//! anywhere, and the same rollback and upgrade; then a load with
//! `--driver configmap` and no HELM_DRIVER restores the same into ConfigMaps.
#![cfg(unix)]

#[path = "cluster/mod.rs"]
mod cluster;
#[path = "no_cluster/mod.rs"]
mod no_cluster;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::{Helm, Run, TestEnv, chart, helm4_and_helm3};
use no_cluster::{lines_with, ok_as, show, text};
use serde_json::Value;

const NS: &str = "hist";
const RELEASES: [&str; 3] = ["single", "tail", "web"];

impl Run {
    fn load_cmd(&self, env: &TestEnv, c: Cli, snapshot: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.bulk_cmd(env);
        c.driver_env(&mut cmd);
        cmd.arg("load").arg("-i").arg(&self.key);
        cmd.args(extra).arg(snapshot);
        cmd
    }

    fn load(&self, env: &TestEnv, c: Cli, snapshot: &Path, extra: &[&str]) -> Output {
        no_cluster::run(&mut self.load_cmd(env, c, snapshot, extra))
    }

    fn save(&self, env: &TestEnv, c: Cli, snapshot: &Path) -> Output {
        self.save_with(env, c, snapshot, &[])
    }

    fn save_with(&self, env: &TestEnv, c: Cli, snapshot: &Path, extra: &[&str]) -> Output {
        let mut cmd = self.bulk_cmd(env);
        c.driver_env(&mut cmd);
        cmd.args(["save", "-r", &self.recipient])
            .args(extra)
            .arg("-o")
            .arg(snapshot);
        no_cluster::run(&mut cmd)
    }

    /// `show --history -o json`: `name#revision status` of every record.
    fn saved_revisions(&self, env: &TestEnv, snapshot: &Path) -> Vec<String> {
        let out = ok_as(
            self.bulk(
                env,
                [
                    "show".as_ref(),
                    "-i".as_ref(),
                    self.key.as_os_str(),
                    "--history".as_ref(),
                    "-o".as_ref(),
                    "json".as_ref(),
                    snapshot.as_os_str(),
                ],
            ),
            "show",
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("show -o json");
        v["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .map(|r| {
                format!(
                    "{}#{} {}",
                    r["name"].as_str().unwrap_or("?"),
                    r["revision"],
                    r["status"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

/// A helm version and the storage driver (`HELM_DRIVER`) that helm and
/// helm-bulk are run with; `None` leaves HELM_DRIVER unset (Secrets, the
/// default).
#[derive(Clone, Copy)]
struct Cli {
    helm: Helm,
    driver: Option<&'static str>,
}

impl Cli {
    fn driver_env(self, cmd: &mut Command) {
        if let Some(d) = self.driver {
            cmd.env("HELM_DRIVER", d);
        }
    }

    /// The kind of Helm's storage objects: `secrets` or `configmaps`.
    fn kind(self) -> &'static str {
        match self.driver {
            None => "secrets",
            Some(_) => "configmaps",
        }
    }
}

/// `helm ARGS` with the helm version and driver of `c`.
fn helm_cmd<I, S>(env: &TestEnv, c: Cli, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = env.helm_cmd(c.helm);
    c.driver_env(&mut cmd);
    cmd.args(args);
    cmd
}

fn try_helm<I, S>(env: &TestEnv, c: Cli, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    no_cluster::run(&mut helm_cmd(env, c, args))
}

fn helm<I, S>(env: &TestEnv, c: Cli, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    no_cluster::run_ok(&mut helm_cmd(env, c, args))
}

/// `helm history` of a release: one row per revision, every column helm prints.
fn history(env: &TestEnv, h: Cli, release: &str) -> Vec<BTreeMap<String, Value>> {
    let out = helm(
        env,
        h,
        ["history", release, "-n", NS, "-o", "json", "--max", "100"],
    );
    serde_json::from_str(&out).expect("helm history JSON")
}

/// Every revision's manifest and user values, as helm prints them.
fn contents(env: &TestEnv, h: Cli, release: &str) -> Vec<(u64, String, String)> {
    history(env, h, release)
        .iter()
        .map(|row| {
            let rev = row["revision"].as_u64().expect("a revision number");
            let r = rev.to_string();
            let manifest = helm(
                env,
                h,
                ["get", "manifest", release, "-n", NS, "--revision", &r],
            );
            let values = helm(
                env,
                h,
                [
                    "get",
                    "values",
                    release,
                    "-n",
                    NS,
                    "--revision",
                    &r,
                    "-o",
                    "json",
                ],
            );
            (rev, manifest, values)
        })
        .collect()
}

/// The live objects of `web` that its revisions change.
fn live_web(env: &TestEnv) -> Value {
    let get = |what: &str| -> Value {
        let out = env.kubectl(["get", what, "web-smoke", "-n", NS, "-o", "json"]);
        serde_json::from_str(&out).expect("kubectl JSON")
    };
    let cm = get("configmap");
    let svc = get("service");
    let deploy = get("deployment");
    serde_json::json!({
        "configmap": cm["data"],
        "ports": svc["spec"]["ports"],
        "template": deploy["spec"]["template"],
    })
}

/// The storage objects of a release (Secrets, or ConfigMaps with
/// HELM_DRIVER=configmap): `(version, status, labels, resourceVersion)`.
fn storage(
    env: &TestEnv,
    c: Cli,
    release: &str,
) -> Vec<(u64, String, BTreeMap<String, String>, String)> {
    let selector = format!("owner=helm,name={release}");
    let out = env.kubectl(["get", c.kind(), "-n", NS, "-l", &selector, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("kubectl JSON");
    let mut rows: Vec<_> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(s["metadata"]["labels"].clone()).expect("labels");
            let version = labels["version"].parse().expect("a version label");
            if c.driver.is_none() {
                assert_eq!(s["type"], "helm.sh/release.v1");
            } else {
                assert_eq!(s["kind"], "ConfigMap");
            }
            assert_eq!(
                s["metadata"]["name"],
                format!("sh.helm.release.v1.{release}.v{version}")
            );
            (
                version,
                labels["status"].clone(),
                labels,
                s["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

struct Before {
    history: BTreeMap<&'static str, Vec<BTreeMap<String, Value>>>,
    contents: BTreeMap<&'static str, Vec<(u64, String, String)>>,
    web_rev2: Value,
}

/// The releases of the table above.
fn make_releases(env: &TestEnv, h: Cli) -> Before {
    let smoke = chart("smoke");
    let install = |rel: &str, greeting: &str| {
        let g = format!("config.greeting={greeting}");
        helm(
            env,
            h,
            [
                "install",
                rel,
                &smoke,
                "-n",
                NS,
                "--create-namespace",
                "--set",
                &g,
                "--labels",
                "team=blue",
            ],
        );
    };
    let upgrade = |rel: &str, set: &str| {
        try_helm(
            env,
            h,
            [
                "upgrade",
                rel,
                &smoke,
                "-n",
                NS,
                "--reuse-values",
                "--set",
                set,
            ],
        )
    };
    install("web", "one");
    assert!(upgrade("web", "config.greeting=two").status.success());
    let web_rev2 = live_web(env);
    let bad = upgrade("web", "service.port=99999");
    assert!(!bad.status.success(), "the upgrade with port 99999 fails");
    assert!(
        upgrade("web", "service.port=8081,config.greeting=four")
            .status
            .success()
    );
    install("tail", "tail");
    assert!(!upgrade("tail", "service.port=99999").status.success());
    install("single", "single");
    let mut before = Before {
        history: BTreeMap::new(),
        contents: BTreeMap::new(),
        web_rev2,
    };
    for rel in RELEASES {
        before.history.insert(rel, history(env, h, rel));
        before.contents.insert(rel, contents(env, h, rel));
    }
    let statuses = |rel: &str| -> Vec<&str> {
        before.history[rel]
            .iter()
            .map(|r| r["status"].as_str().unwrap_or_default())
            .collect()
    };
    assert_eq!(
        statuses("web"),
        ["superseded", "superseded", "failed", "deployed"]
    );
    assert_eq!(statuses("tail"), ["deployed", "failed"]);
    before
}

fn assert_restored(env: &TestEnv, h: Cli, before: &Before, when: &str) {
    for rel in RELEASES {
        assert_eq!(
            history(env, h, rel),
            before.history[rel],
            "[{}] helm history of {rel} {when}",
            h.helm.tag()
        );
        assert_eq!(
            contents(env, h, rel),
            before.contents[rel],
            "[{}] manifests and values of every revision of {rel} {when}",
            h.helm.tag()
        );
        // Helm's labels, and the release's own.
        let stored = storage(env, h, rel);
        assert_eq!(
            stored.iter().map(|r| r.0).collect::<Vec<_>>(),
            (1..=before.history[rel].len() as u64).collect::<Vec<_>>(),
            "[{}] {} of {rel} {when}",
            h.helm.tag(),
            h.kind()
        );
        for (version, status, labels, _) in stored {
            assert_eq!(labels["name"], rel);
            assert_eq!(labels["owner"], "helm");
            assert_eq!(labels["status"], status);
            assert_eq!(labels["version"], version.to_string());
            assert_eq!(labels["team"], "blue", "{rel} v{version}: {labels:?}");
            assert!(
                labels.contains_key("createdAt") || labels.contains_key("modifiedAt"),
                "{labels:?}"
            );
        }
    }
    if h.driver.is_some() {
        // Neither helm nor helm-bulk wrote a release Secret.
        let out = env.kubectl(["get", "secrets", "-A", "-l", "owner=helm", "-o", "name"]);
        assert_eq!(out.trim(), "", "[{}] release Secrets {when}", h.helm.tag());
    }
}

/// save → wipe → load (the dry run first), checked by [`assert_restored`];
/// a second load writes nothing. Returns the snapshot.
fn save_wipe_load(run: &Run, env: &TestEnv, h: Cli, before: &Before) -> PathBuf {
    // save --history 0: the latest revision of each release and its last
    // deployed one; the second pass reads only those objects.
    let newest = run.work.path().join("newest.age");
    ok_as(
        run.save_with(env, h, &newest, &["--history", "0"]),
        "save --history 0",
    );
    assert_eq!(
        run.saved_revisions(env, &newest),
        [
            "single#1 deployed",
            "tail#1 deployed",
            "tail#2 failed",
            "web#4 deployed"
        ]
    );
    let snapshot = run.work.path().join("snapshot.age");
    ok_as(run.save(env, h, &snapshot), "save");
    assert_eq!(run.saved_revisions(env, &snapshot).len(), 7);
    env.wipe();

    // The dry run lists the writes.
    let out = ok_as(
        run.load(env, h, &snapshot, &["--dry-run"]),
        "load --dry-run",
    );
    let stdout = text(&out.stdout);
    assert!(
        lines_with(&stdout, "hist/web ")[0].contains(
            "history: revisions 1-4 as saved (4 restored); would write 1-4; would remove helm's revision 1"
        ),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains("history: revisions 1-2 as saved (1 restored); would write 1-2"),
        "{}",
        show(&out)
    );

    let started = Instant::now();
    let out = ok_as(run.load(env, h, &snapshot, &[]), "load");
    run.step(&format!(
        "loaded with history in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    let stderr = text(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        stderr.contains("history   hist/web: revisions 1-4 as saved (4 restored); wrote 1-4")
            && stderr.contains("removed helm's revision 1"),
        "{}",
        show(&out)
    );
    assert_restored(env, h, before, "after load");

    // A second load changes nothing.
    let versions: Vec<_> = RELEASES.iter().map(|r| storage(env, h, r)).collect();
    let out = ok_as(run.load(env, h, &snapshot, &[]), "second load");
    let stderr = text(&out.stderr);
    for rel in RELEASES {
        let line = lines_with(&stderr, &format!("history   hist/{rel}: "));
        assert!(
            line.len() == 1 && line[0].contains(" as saved; nothing to write"),
            "{}",
            show(&out)
        );
        assert!(
            stderr.contains(&format!("skipped   hist/{rel}: already installed")),
            "{}",
            show(&out)
        );
    }
    assert!(
        stderr.contains("every restored history is complete"),
        "{stderr}"
    );
    let after: Vec<_> = RELEASES.iter().map(|r| storage(env, h, r)).collect();
    assert_eq!(versions, after, "the second load wrote nothing");
    run.step("second load: nothing written");
    snapshot
}

/// After [`save_wipe_load`]: rollback to revision 2 brings back its objects;
/// an upgrade with the original chart works after it.
fn rollback_and_upgrade(run: &Run, env: &TestEnv, h: Cli, before: &Before) {
    helm(env, h, ["rollback", "web", "2", "-n", NS]);
    assert_eq!(live_web(env), before.web_rev2, "live objects of revision 2");
    let rows = history(env, h, "web");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4]["status"], "deployed");
    assert_eq!(rows[3]["status"], "superseded");
    helm(
        env,
        h,
        [
            "upgrade",
            "web",
            &chart("smoke"),
            "-n",
            NS,
            "--reuse-values",
            "--set",
            "config.greeting=six",
        ],
    );
    let rows = history(env, h, "web");
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[5]["status"], "deployed");
    let deployed = rows.iter().filter(|r| r["status"] == "deployed").count();
    assert_eq!(deployed, 1, "one deployed revision: {rows:?}");
    helm(env, h, ["rollback", "tail", "-n", NS]);
    run.step("rollback and upgrade after the restore work");
}

fn history_roundtrip(h: Cli) {
    let run = Run::new(h.helm, "history");
    let env = TestEnv::start();
    let before = make_releases(&env, h);
    run.step("releases made");
    let snapshot = save_wipe_load(&run, &env, h, &before);
    rollback_and_upgrade(&run, &env, h, &before);

    // A load killed between two history writes: what is left is a history
    // helm reads, and a rerun completes it. Load pauses 4 s after each write
    // so that the poll below (a kubectl call, slow on a loaded machine or
    // beside other test binaries) sees revision 3 before the next write.
    env.wipe();
    let stderr_path = run.work.path().join("killed.stderr");
    let mut cmd = run.load_cmd(&env, h, &snapshot, &[]);
    cmd.env("HELM_BULK_TEST_HISTORY_PAUSE_MS", "4000")
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("create a file"));
    let mut child = cmd.spawn().expect("start load");
    cluster::wait_until(
        "load writes revision 3 of web",
        Duration::from_secs(120),
        || {
            storage(&env, h, "web").iter().any(|r| r.0 == 3)
                || child.try_wait().ok().flatten().is_some()
        },
    );
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status()
        .expect("run kill");
    assert!(status.success());
    let _ = child.wait();
    let left: Vec<u64> = storage(&env, h, "web").iter().map(|r| r.0).collect();
    assert!(
        left.contains(&4) && left.contains(&3) && !left.contains(&1),
        "killed in the middle of web's history: {left:?}; {}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    // What is left reads as a release: revision 4 deployed, the newest.
    let rows = history(&env, h, "web");
    assert_eq!(rows.last().map(|r| r["revision"].clone()), Some(4.into()));
    assert_eq!(
        rows.last().map(|r| r["status"].clone()),
        Some("deployed".into())
    );
    run.step(&format!("load killed with web at revisions {left:?}"));
    let out = ok_as(run.load(&env, h, &snapshot, &[]), "rerun after SIGKILL");
    assert!(
        text(&out.stderr)
            .contains("history   hist/web: revisions 1-4 as saved (4 restored); wrote"),
        "{}",
        show(&out)
    );
    assert_restored(&env, h, &before, "after the rerun");
    run.step("rerun completed the history");

    // --no-history: today's single revision; --history 2: the newest two.
    env.wipe();
    ok_as(
        run.load(&env, h, &snapshot, &["--no-history"]),
        "load --no-history",
    );
    let rows = history(&env, h, "web");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["revision"], 1);
    env.wipe();
    ok_as(
        run.load(&env, h, &snapshot, &["--history", "2"]),
        "load --history 2",
    );
    let revs: Vec<Value> = history(&env, h, "web")
        .iter()
        .map(|r| r["revision"].clone())
        .collect();
    assert_eq!(revs, [Value::from(3), Value::from(4)]);
    assert_eq!(history(&env, h, "web"), before.history["web"][2..].to_vec());
    run.step("--no-history and --history 2");
}

/// The history with HELM_DRIVER=configmap: releases made, saved and loaded
/// with it, restored into ConfigMaps as [`save_wipe_load`] and
/// [`rollback_and_upgrade`] check.
fn configmap_roundtrip(helm: Helm) {
    let h = Cli {
        helm,
        driver: Some("configmap"),
    };
    let run = Run::new(helm, "history-configmap");
    let env = TestEnv::start();
    let before = make_releases(&env, h);
    run.step("releases made in ConfigMaps");
    let snapshot = save_wipe_load(&run, &env, h, &before);
    rollback_and_upgrade(&run, &env, h, &before);

    // `--driver configmap` in place of HELM_DRIVER: helm's install goes to
    // ConfigMaps too.
    env.wipe();
    let flag_only = Cli { helm, driver: None };
    ok_as(
        run.load(&env, flag_only, &snapshot, &["--driver", "configmap"]),
        "load --driver configmap",
    );
    assert_restored(&env, h, &before, "after load --driver configmap");
    run.step("load --driver configmap");
}

fn secret_roundtrip(helm: Helm) {
    history_roundtrip(Cli { helm, driver: None });
}

helm4_and_helm3! {
    secret_roundtrip => history_is_restored_helm4, history_is_restored_helm3;
    configmap_roundtrip => history_in_configmaps_is_restored_helm4, history_in_configmaps_is_restored_helm3;
}
