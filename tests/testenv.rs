//! Acceptance tests of the test environment itself (`scripts/testenv` and
//! `tests/cluster`): real Helm v3/v4 against a real kube-apiserver.

mod cluster;
mod no_cluster;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{Helm, TestEnv, chart, decode_helm_release, unique_name};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams};

/// Installs the smoke chart.
fn install_smoke(env: &TestEnv, helm: Helm, release: &str, namespace: &str) {
    env.helm(
        helm,
        [
            "install",
            release,
            &chart("smoke"),
            "--namespace",
            namespace,
            "--create-namespace",
            "--set",
            "config.greeting=hi-from-test",
        ],
    );
}

/// The release as `helm list -A -o json` reports it, if it is there.
fn listed(env: &TestEnv, helm: Helm, release: &str) -> Option<serde_json::Value> {
    env.helm_list(helm)
        .into_iter()
        .find(|r| r["name"] == release)
}

/// The Secrets labelled `owner=helm` in the whole cluster.
async fn helm_secrets(client: &kube::Client) -> Vec<Secret> {
    Api::<Secret>::all(client.clone())
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .expect("list Secrets labelled owner=helm")
        .items
}

async fn install_and_check_record(helm: Helm) {
    let env = TestEnv::shared();
    let release = unique_name(&format!("smoke-{}", helm.tag()));
    let namespace = unique_name(&format!("ns-{}", helm.tag()));
    install_smoke(env, helm, &release, &namespace);

    // helm itself lists it as deployed, in its namespace.
    let entry = listed(env, helm, &release)
        .unwrap_or_else(|| panic!("helm list -A does not show {release}"));
    assert_eq!(entry["namespace"], namespace.as_str(), "{entry}");
    assert_eq!(entry["status"], "deployed", "{entry}");
    assert_eq!(entry["chart"], "smoke-0.1.0", "{entry}");

    // The release record, read with kube-rs: a helm.sh/release.v1 Secret.
    let client = env.client().await;
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .expect("list the release's Secrets");
    assert_eq!(
        secrets.items.len(),
        1,
        "expected one release Secret for {release} in {namespace}"
    );
    let secret = &secrets.items[0];
    assert_eq!(secret.type_.as_deref(), Some("helm.sh/release.v1"));
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some(format!("sh.helm.release.v1.{release}.v1").as_str())
    );
    let labels = secret.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels.get("status").map(String::as_str), Some("deployed"));
    assert_eq!(labels.get("version").map(String::as_str), Some("1"));

    let data = secret.data.as_ref().expect("the Secret has data");
    let record = decode_helm_release(&data.get("release").expect("a release field").0);
    assert_eq!(record["name"], release.as_str());
    assert_eq!(record["namespace"], namespace.as_str());
    assert_eq!(record["version"], 1);
    assert_eq!(record["info"]["status"], "deployed");
    assert_eq!(record["chart"]["metadata"]["name"], "smoke");
    assert_eq!(record["chart"]["metadata"]["version"], "0.1.0");
    assert_eq!(record["config"]["config"]["greeting"], "hi-from-test");
    // The hook is recorded and was created (it is a ConfigMap, not a Job).
    let hooks = record["hooks"].as_array().expect("hooks in the record");
    assert!(
        hooks.iter().any(|h| h["kind"] == "ConfigMap"
            && h["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e == "pre-install"))),
        "no pre-install ConfigMap hook in the record: {hooks:?}"
    );

    // The chart's objects exist in the API server.
    let objects = env.kubectl([
        "get",
        "deployment,service,secret,configmap",
        "-n",
        &namespace,
        "-l",
        &format!("app.kubernetes.io/instance={release}"),
        "-o",
        "name",
    ]);
    let fullname = format!("{release}-smoke");
    for kind in ["deployment.apps", "service", "secret", "configmap"] {
        let line = format!("{kind}/{fullname}");
        assert!(
            objects.lines().any(|l| l == line),
            "{line} missing:\n{objects}"
        );
    }
    assert!(
        objects
            .lines()
            .any(|l| l == format!("configmap/{fullname}-pre-install")),
        "the pre-install hook ConfigMap is missing:\n{objects}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn helm4_install_is_listed_and_recorded() {
    install_and_check_record(Helm::V4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn helm3_install_is_listed_and_recorded() {
    install_and_check_record(Helm::V3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_environments_do_not_see_each_other() {
    // Start both at once, as parallel test binaries would.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(TestEnv::start);
        let b = s.spawn(TestEnv::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.dir, b.dir);
    let kubeconfig_a = std::fs::read_to_string(&a.kubeconfig).unwrap();
    let kubeconfig_b = std::fs::read_to_string(&b.kubeconfig).unwrap();
    assert_ne!(kubeconfig_a, kubeconfig_b, "both point at the same server");

    install_smoke(&a, Helm::V4, "only-in-a", "ns-a");
    install_smoke(&b, Helm::V3, "only-in-b", "ns-b");

    for helm in Helm::ALL {
        assert!(listed(&a, helm, "only-in-a").is_some());
        assert!(
            listed(&a, helm, "only-in-b").is_none(),
            "a sees b's release"
        );
        assert!(listed(&b, helm, "only-in-b").is_some());
        assert!(
            listed(&b, helm, "only-in-a").is_none(),
            "b sees a's release"
        );
    }

    let names = |secrets: Vec<Secret>| -> Vec<String> {
        secrets
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect()
    };
    assert_eq!(
        names(helm_secrets(&a.client().await).await),
        ["sh.helm.release.v1.only-in-a.v1"]
    );
    assert_eq!(
        names(helm_secrets(&b.client().await).await),
        ["sh.helm.release.v1.only-in-b.v1"]
    );

    // Dropping an owned environment tears it down and removes its directory.
    let (dir_a, dir_b) = (a.dir.clone(), b.dir.clone());
    drop(a);
    assert!(!dir_a.exists(), "{} survived drop", dir_a.display());
    assert!(b.is_running(), "dropping a stopped b too");
    drop(b);
    assert!(!dir_b.exists(), "{} survived drop", dir_b.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn wipe_leaves_an_empty_cluster_that_still_answers() {
    let env = TestEnv::start();
    install_smoke(&env, Helm::V4, "before-wipe-v4", "wipe-v4");
    install_smoke(&env, Helm::V3, "before-wipe-v3", "wipe-v3");
    assert_eq!(helm_secrets(&env.client().await).await.len(), 2);

    let started = Instant::now();
    env.wipe();
    eprintln!("wipe took {:.1}s", started.elapsed().as_secs_f64());

    // The API answers (a new client: the server restarted).
    let client = env.client().await;
    let version = client.apiserver_version().await.expect("the API answers");
    assert_eq!(version.major, "1");
    let namespaces: Vec<String> = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(namespaces.iter().any(|n| n == "default"), "{namespaces:?}");
    assert!(
        !namespaces.iter().any(|n| n.starts_with("wipe-")),
        "namespaces survived the wipe: {namespaces:?}"
    );

    assert!(
        helm_secrets(&client).await.is_empty(),
        "release Secrets survived the wipe"
    );
    for helm in Helm::ALL {
        assert_eq!(env.helm_list(helm), Vec::<serde_json::Value>::new());
    }

    // And it is usable again.
    install_smoke(&env, Helm::V4, "after-wipe", "wipe-v4");
    assert!(listed(&env, Helm::V4, "after-wipe").is_some());
}

/// `up --owner-pid`: when the owner dies (here: SIGKILL, so no Drop runs),
/// the reaper stops the processes and removes the directory.
#[test]
fn reaper_tears_down_after_the_owner_dies() {
    // The owner waits for EOF on a pipe held by this test, so it also ends
    // (and its environment is reaped) if this test process itself dies.
    let mut owner = Command::new("sh")
        .args(["-c", "read -r _"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn an owner process");
    let dir = tempfile::Builder::new()
        .prefix("helm-bulk-testenv-reaper.")
        .tempdir()
        .unwrap()
        .keep();
    let mut up = Command::new("bash");
    up.arg(cluster::testenv_script())
        .arg("up")
        .arg(&dir)
        .arg("--owner-pid")
        .arg(owner.id().to_string())
        .stdin(Stdio::null());
    let out = no_cluster::run(&mut up);
    if !out.status.success() {
        let _ = owner.kill();
        let _ = owner.wait();
        let _ = std::fs::remove_dir_all(&dir);
        panic!(
            "scripts/testenv up failed (run `scripts/testenv build` first?):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pids: Vec<u32> = [
        "etcd.pid",
        "apiserver.pid",
        "kcm.pid",
        "scheduler.pid",
        "kwok.pid",
        "reaper.pid",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .trim()
            .parse()
            .unwrap()
    })
    .collect();
    assert!(pids.iter().all(|&p| alive(p)), "not all processes started");

    owner.kill().unwrap();
    owner.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while (dir.exists() || pids.iter().any(|&p| alive(p))) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let survivors: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    for &p in &survivors {
        // Clean up after a failure; these are the PIDs this test started.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(p.to_string())
            .status();
    }
    assert!(survivors.is_empty(), "still running: {survivors:?}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// `tiller DIR NAME`: a real Tiller v2.17.0 outside the cluster that the Helm
/// 2 client reaches through the env file; `tiller-stop` stops one, `down`
/// stops the rest.
#[test]
fn tillers_start_answer_and_stop() {
    let env = TestEnv::start();
    let script = |args: &[&str]| {
        let mut c = Command::new("bash");
        c.arg(cluster::testenv_script())
            .args(args)
            .stdin(Stdio::null());
        no_cluster::run(&mut c)
    };
    let dir = env.dir.to_str().unwrap().to_owned();
    let pid_of = |name: &str| -> u32 {
        std::fs::read_to_string(env.dir.join("tiller").join(name).join("tiller.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    env.kubectl(["create", "namespace", "tiller-a"]);
    let mut pids = Vec::new();
    for (name, extra) in [("a", vec![]), ("b", vec!["--storage", "secret", "--tls"])] {
        let mut args = vec!["tiller", &dir, name, "--namespace", "tiller-a"];
        args.extend(extra.iter().copied());
        let out = script(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env_file = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let text = std::fs::read_to_string(&env_file).unwrap();
        let var = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(|v| v.trim_matches('\'').to_owned())
        };
        let host = var("TILLER_HOST").unwrap();
        assert_eq!(var("HELM_HOST"), Some(host.clone()));
        assert_eq!(var("TILLER_NAMESPACE").as_deref(), Some("tiller-a"));
        assert_eq!(var("HELM_TLS_VERIFY").is_some(), name == "b");
        // The Helm 2 client, pointed by the env file, gets Tiller's version.
        let home = tempfile::tempdir().unwrap();
        let mut helm2 = Command::new(&env.helm2);
        env.configure(&mut helm2);
        helm2.env("HELM_HOME", home.path()).env("HELM_HOST", &host);
        helm2.arg("version");
        if name == "b" {
            for k in ["HELM_TLS_CA_CERT", "HELM_TLS_CERT", "HELM_TLS_KEY"] {
                helm2.env(k, var(k).unwrap());
            }
            helm2.arg("--tls");
        }
        let version = no_cluster::run_ok(&mut helm2);
        assert!(
            version.contains("Server: &version.Version{SemVer:\"v2.17.0\""),
            "{version}"
        );
        pids.push(pid_of(name));
    }
    assert!(pids.iter().all(|&p| alive(p)));

    // One line for a bad argument, and a name already running.
    let out = script(&["tiller", &dir, "c", "--storage", "sql"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    let out = script(&["tiller", &dir, "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));

    let out = script(&["tiller-stop", &dir, "a"]);
    assert!(out.status.success());
    assert!(!alive(pids[0]), "tiller-stop left Tiller a running");
    assert!(!env.dir.join("tiller").join("a").exists());
    assert!(alive(pids[1]));
    drop(env);
    assert!(!alive(pids[1]), "down left Tiller b running");
}

/// Whether a process is running (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    match std::fs::read_to_string(stat) {
        // The state follows the parenthesised command name.
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}
