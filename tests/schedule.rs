//! The in-cluster schedule (charts/helm-bulk): the chart lints and installs
//! with helm v4 and v3 into a namespace where the `restricted` Pod Security
//! level is enforced, its CronJob creates Jobs with the expected arguments,
//! environment and security context, and its RBAC is enough for `save` and
//! no more (checked with a real token of its ServiceAccount, against a real
//! S3 server).

mod cluster;
mod no_cluster;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cluster::{Helm, TestEnv, unique_name, wait_until};
use no_cluster::ok;
use no_cluster::s3::S3Server;

fn chart() -> String {
    cluster::repo_root()
        .join("charts/helm-bulk")
        .to_string_lossy()
        .into_owned()
}

fn ci_values() -> String {
    cluster::repo_root()
        .join("charts/helm-bulk/ci/test-values.yaml")
        .to_string_lossy()
        .into_owned()
}

/// The chart's object names for a release.
fn fullname(release: &str) -> String {
    format!("{release}-helm-bulk")
}

#[test]
fn the_chart_lints_strictly_with_both_helm_versions() {
    let env = TestEnv::shared();
    for helm in Helm::ALL {
        let out = env.helm(helm, ["lint", "--strict", &chart(), "-f", &ci_values()]);
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

fn cronjob_runs_in_a_restricted_namespace(helm: Helm) {
    let env = TestEnv::shared();
    let ns = unique_name(&format!("sched-{}", helm.tag()));
    let release = format!("snap-{}", helm.tag());
    restricted_namespace(env, &ns);
    let dir = tempfile::tempdir().unwrap();
    create_the_job_secrets(env, &ns, dir.path());
    install_every_minute(env, helm, &release, &ns);
    let cronjob = format!("cronjob/{}", fullname(&release));
    assert_eq!(
        env.jsonpath(&ns, &cronjob, "{.spec.concurrencyPolicy}"),
        "Forbid"
    );

    let job = first_job(env, &ns);
    the_job_saves_with_the_chart_settings(env, &ns, &job, &release);
    the_job_is_locked_down(env, &ns, &job);
    the_jobs_pod_is_admitted_and_completes(env, &ns, &job);
}

/// A new namespace where the `restricted` Pod Security level is enforced:
/// a Pod with the defaults of `kubectl run` is refused.
fn restricted_namespace(env: &TestEnv, ns: &str) {
    env.kubectl(["create", "namespace", ns]);
    env.kubectl([
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    ]);
    let refused = env.try_kubectl(["run", "plain", "-n", ns, "--image=registry.invalid/x:1"]);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("PodSecurity"),
        "the restricted level is not enforced: {refused:?}"
    );
}

/// The signing key and bucket credential Secrets the chart's values name.
fn create_the_job_secrets(env: &TestEnv, ns: &str, dir: &Path) {
    let key = no_cluster::ssh_keygen(dir, "signing-key", "ed25519", "");
    env.kubectl([
        "create",
        "secret",
        "generic",
        "bulk-signing",
        "-n",
        ns,
        &format!("--from-file=signing-key={}", key.display()),
    ]);
    env.kubectl([
        "create",
        "secret",
        "generic",
        "bulk-bucket",
        "-n",
        ns,
        "--from-literal=AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
        "--from-literal=AWS_SECRET_ACCESS_KEY=secret",
    ]);
}

/// The chart with a schedule of every minute, signing, an existing bucket
/// credential and one exclude.
fn install_every_minute(env: &TestEnv, helm: Helm, release: &str, ns: &str) {
    env.helm(
        helm,
        [
            "install",
            release,
            &chart(),
            "-n",
            ns,
            "-f",
            &ci_values(),
            "--set",
            "schedule=* * * * *",
            "--set",
            "clusterName=prod-eu",
            "--set",
            "bucket.endpoint=http://minio.invalid:9000",
            "--set",
            "signing.existingSecret=bulk-signing",
            "--set",
            "credentials.existingSecret=bulk-bucket",
            "--set",
            "exclude[0]=ingress-nginx/*",
            "--wait",
            "--timeout",
            "60s",
        ],
    );
}

/// Waits for the CronJob's first Job; returns `job/<name>`.
fn first_job(env: &TestEnv, ns: &str) -> String {
    let jobs = || env.jsonpath(ns, "jobs", "{.items[*].metadata.name}");
    wait_until(
        "the CronJob to create a Job",
        Duration::from_secs(75),
        || !jobs().is_empty(),
    );
    format!(
        "job/{}",
        jobs().split_whitespace().next().unwrap().to_owned()
    )
}

/// The Job runs `save` with the chart's settings as flags, the bucket
/// credential as environment, as the chart's ServiceAccount, with a deadline.
fn the_job_saves_with_the_chart_settings(env: &TestEnv, ns: &str, job: &str, release: &str) {
    let field = |path: &str| env.jsonpath(ns, job, path);
    let args: Vec<String> =
        serde_json::from_str(&field("{.spec.template.spec.containers[0].args}")).unwrap();
    assert_eq!(
        args,
        [
            "save",
            "--to",
            "s3://helm-bulk-lint/snapshots",
            "--endpoint",
            "http://minio.invalid:9000",
            "--cluster-name",
            "prod-eu",
            "--source",
            "helm4",
            "--driver",
            "secret",
            "--all-namespaces",
            "--recipients-file",
            "/etc/helm-bulk/recipients/recipients.txt",
            "--sign-key",
            "/etc/helm-bulk/signing/signing-key",
            "--exclude",
            "ingress-nginx/*",
        ]
    );
    assert_eq!(
        field("{.spec.template.spec.containers[0].envFrom[0].secretRef.name}"),
        "bulk-bucket"
    );
    assert_eq!(
        field("{.spec.template.spec.serviceAccountName}"),
        fullname(release)
    );
    assert_eq!(field("{.spec.activeDeadlineSeconds}"), "3600");
}

/// The container's security context meets the `restricted` level.
fn the_job_is_locked_down(env: &TestEnv, ns: &str, job: &str) {
    let field = |path: &str| env.jsonpath(ns, job, path);
    let sc: serde_json::Value = serde_json::from_str(&field(
        "{.spec.template.spec.containers[0].securityContext}",
    ))
    .unwrap();
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{sc}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{sc}");
    assert_eq!(
        field("{.spec.template.spec.securityContext.runAsNonRoot}"),
        "true"
    );
}

/// Its Pod passed the restricted admission (KWOK then "runs" it).
fn the_jobs_pod_is_admitted_and_completes(env: &TestEnv, ns: &str, job: &str) {
    let job_name = job.trim_start_matches("job/").to_owned();
    let pods = || {
        env.kubectl([
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            &format!("job-name={job_name}"),
            "-o",
            "name",
        ])
    };
    wait_until(
        "the Job's Pod to be admitted",
        Duration::from_secs(30),
        || !pods().is_empty(),
    );
    env.wait_for(ns, job, "condition=Complete", Duration::from_secs(60));
}

cluster::helm4_and_helm3! {
    cronjob_runs_in_a_restricted_namespace => helm4_the_cronjob_runs_save_in_a_restricted_namespace, helm3_the_cronjob_runs_save_in_a_restricted_namespace;
}

/// A kubeconfig that authenticates with the chart's ServiceAccount token.
fn token_kubeconfig(env: &TestEnv, ns: &str, sa: &str, dir: &Path) -> PathBuf {
    let token = env.kubectl(["create", "token", sa, "-n", ns, "--duration=1h"]);
    let server = env.kubectl([
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = env.kubectl([
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ]);
    let path = dir.join("sa-kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context:\n    cluster: c\n    user: sa\n    namespace: {ns}\ncurrent-context: sa\n",
            token.trim()
        ),
    )
    .unwrap();
    path
}

/// `kubectl auth can-i` as the ServiceAccount (asked with the admin credential).
fn can_i(env: &TestEnv, who: &str, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i", "--as", who];
    full.extend_from_slice(args);
    let out = env.try_kubectl(full);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[test]
fn the_service_account_can_save_and_nothing_more() {
    let env = TestEnv::shared();
    let ns = unique_name("rbac");
    let apps = unique_name("rbac-apps");
    let release = "rbac";
    install_suspended_with_a_release_to_save(env, release, &ns, &apps);
    let sa = fullname(release);
    let who = format!("system:serviceaccount:{ns}:{sa}");
    the_documented_rules_and_nothing_else(env, &who, &ns, &apps);
    exactly_two_rules_beyond_a_bare_account(env, &who, &ns, &apps);

    // With a real token of the account, save works against a real S3 server...
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kubeconfig = token_kubeconfig(env, &ns, &sa, d);
    let s3 = S3Server::start(&["dr-vault"]);
    let (identity, recipient) = no_cluster::keygen(d, "id.txt");
    save_with_the_account_token(env, &s3, d, &kubeconfig, &recipient);
    // ...and a write with it is forbidden.
    a_write_with_the_token_is_forbidden(env, &kubeconfig, &apps);
    the_accounts_snapshot_restores(env, &s3, d, &identity, &apps);
}

/// The chart, suspended, in `ns`, and a smoke release in `apps` to save.
fn install_suspended_with_a_release_to_save(env: &TestEnv, release: &str, ns: &str, apps: &str) {
    env.helm(
        Helm::V4,
        [
            "install",
            release,
            &chart(),
            "-n",
            ns,
            "--create-namespace",
            "-f",
            &ci_values(),
            "--set",
            "suspend=true",
        ],
    );
    env.helm(
        Helm::V4,
        [
            "install",
            "rbac-smoke",
            &cluster::chart("smoke"),
            "-n",
            apps,
            "--create-namespace",
        ],
    );
}

/// The documented rules and nothing else.
fn the_documented_rules_and_nothing_else(env: &TestEnv, who: &str, ns: &str, apps: &str) {
    assert!(can_i(env, who, &["list", "secrets", "--all-namespaces"]));
    assert!(can_i(env, who, &["get", "secrets", "-n", apps]));
    assert!(can_i(
        env,
        who,
        &["list", "customresourcedefinitions.apiextensions.k8s.io"]
    ));
    for denied in [
        vec!["create", "secrets", "-n", apps],
        vec!["delete", "secrets", "-n", apps],
        vec!["watch", "secrets", "--all-namespaces"],
        vec!["list", "configmaps", "--all-namespaces"],
        vec!["list", "pods", "--all-namespaces"],
        vec!["create", "pods", "-n", ns],
        vec!["get", "nodes"],
        vec!["create", "customresourcedefinitions.apiextensions.k8s.io"],
        vec!["create", "serviceaccounts/token", "-n", ns],
    ] {
        assert!(
            !can_i(env, who, &denied),
            "the ServiceAccount may {denied:?}"
        );
    }
}

/// Exactly two rules beyond what any ServiceAccount may do (compared with
/// a new account that has no binding at all).
fn exactly_two_rules_beyond_a_bare_account(env: &TestEnv, who: &str, ns: &str, apps: &str) {
    env.kubectl(["create", "serviceaccount", "baseline", "-n", ns]);
    let rules = |who: &str| -> std::collections::BTreeSet<String> {
        env.kubectl(["auth", "can-i", "--list", "--as", who, "-n", apps])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let baseline = rules(&format!("system:serviceaccount:{ns}:baseline"));
    let granted: Vec<String> = rules(who).difference(&baseline).cloned().collect();
    assert_eq!(
        granted,
        [
            "customresourcedefinitions.apiextensions.k8s.io [] [] [get list]",
            "secrets [] [] [get list]",
        ],
        "beyond a bare ServiceAccount's rules ({baseline:?})"
    );
}

/// helm-bulk against the test environment and the S3 server, run in `d`.
fn bulk(env: &TestEnv, s3: &S3Server, d: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helm-bulk"));
    env.configure(&mut c);
    s3.configure(&mut c);
    c.current_dir(d).env("HELM_CONFIG_HOME", d);
    c
}

/// `save --all-namespaces` to the bucket with the account's kubeconfig: no
/// request is forbidden.
fn save_with_the_account_token(
    env: &TestEnv,
    s3: &S3Server,
    d: &Path,
    kubeconfig: &Path,
    recipient: &str,
) {
    let out = ok(bulk(env, s3, d)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("HELM_BIN")
        .args([
            "save",
            "-r",
            recipient,
            "--to",
            "s3://dr-vault/helm",
            "--endpoint",
            &s3.endpoint,
        ])
        .args([
            "--cluster-name",
            "rbac",
            "--source",
            "helm4",
            "--all-namespaces",
        ])
        .output()
        .unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.to_lowercase().contains("forbidden"), "{stderr}");
}

fn a_write_with_the_token_is_forbidden(env: &TestEnv, kubeconfig: &Path, apps: &str) {
    let write = Command::new(&env.kubectl)
        .env("KUBECONFIG", kubeconfig)
        .args(["create", "configmap", "intruder", "-n", apps])
        .output()
        .unwrap();
    assert!(
        !write.status.success(),
        "the ServiceAccount wrote a ConfigMap"
    );
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("forbidden"),
        "{write:?}"
    );
}

/// The snapshot restores: remove the release, load it back (as admin).
fn the_accounts_snapshot_restores(
    env: &TestEnv,
    s3: &S3Server,
    d: &Path,
    identity: &Path,
    apps: &str,
) {
    env.helm(Helm::V4, ["uninstall", "rbac-smoke", "-n", apps]);
    ok(bulk(env, s3, d)
        .env("HELM_BIN", env.helm_bin(Helm::V4))
        .args(["load", "-i"])
        .arg(identity)
        .args([
            "--endpoint",
            &s3.endpoint,
            "s3://dr-vault/helm/rbac/latest",
            "--include",
        ])
        .arg(format!("{apps}/rbac-smoke"))
        .output()
        .unwrap());
    let restored = env
        .helm_list(Helm::V4)
        .into_iter()
        .find(|r| r["name"] == "rbac-smoke" && r["namespace"] == apps)
        .expect("rbac-smoke restored from the ServiceAccount's snapshot");
    assert_eq!(restored["status"], "deployed", "{restored}");
}

#[test]
fn the_namespaced_mode_reads_only_the_listed_namespaces() {
    let env = TestEnv::shared();
    let ns = unique_name("rbacns");
    let (a, b) = (unique_name("team-a"), unique_name("team-b"));
    env.kubectl(["create", "namespace", &a]);
    env.kubectl(["create", "namespace", &b]);
    env.helm(
        Helm::V4,
        [
            "install",
            "scoped",
            &chart(),
            "-n",
            &ns,
            "--create-namespace",
            "-f",
            &ci_values(),
            "--set",
            &format!("namespaces[0]={a}"),
            "--set",
            "helm.driver=configmap",
        ],
    );
    let who = format!("system:serviceaccount:{ns}:{}", fullname("scoped"));
    assert!(can_i(env, &who, &["list", "configmaps", "-n", &a]));
    assert!(!can_i(env, &who, &["list", "configmaps", "-n", &b]));
    assert!(!can_i(
        env,
        &who,
        &["list", "configmaps", "--all-namespaces"]
    ));
    assert!(!can_i(env, &who, &["list", "secrets", "-n", &a]));
    assert!(can_i(
        env,
        &who,
        &["list", "customresourcedefinitions.apiextensions.k8s.io"]
    ));
    // One CronJob, saving only that namespace under its own cluster name.
    let cronjob = format!("cronjob/scoped-helm-bulk-{a}");
    let args: Vec<String> = serde_json::from_str(&env.jsonpath(
        &ns,
        &cronjob,
        "{.spec.jobTemplate.spec.template.spec.containers[0].args}",
    ))
    .unwrap();
    let after = |flag: &str| {
        args.iter()
            .position(|x| x == flag)
            .map(|i| args[i + 1].clone())
    };
    assert_eq!(after("--namespace"), Some(a.clone()));
    assert_eq!(after("--cluster-name"), Some(format!("lint.{a}")));
    assert_eq!(after("--driver").as_deref(), Some("configmap"));
}
