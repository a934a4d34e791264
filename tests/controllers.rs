//! The test environment behaves like a cluster as far as Helm can tell: the
//! real controller-manager and scheduler run, and KWOK plays the kubelet. Job
//! hooks complete (or fail on purpose), workloads become ready for `--wait`,
//! namespaces delete, CronJobs fire, and the API server can crash and return.

mod cluster;
mod no_cluster;

use std::time::Duration;

use cluster::{Helm, TestEnv, chart, unique_name, wait_until};

/// Seconds since the epoch of an RFC 3339 time as the API server prints it
/// (`2026-12-01T15:04:05Z`, second resolution).
fn epoch_seconds(rfc3339: &str) -> i64 {
    let t = rfc3339.trim();
    let parse = |range: std::ops::Range<usize>| -> i64 {
        t.get(range.clone())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 UTC time: {t:?}"))
    };
    assert!(
        t.len() == 20 && t.ends_with('Z'),
        "not an RFC 3339 UTC time: {t:?}"
    );
    let (y, mo, d) = (parse(0..4), parse(5..7), parse(8..10));
    let (h, mi, s) = (parse(11..13), parse(14..16), parse(17..19));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3_600 + mi * 60 + s
}

/// `helm install` of the workloads chart with `--wait --wait-for-jobs`.
fn install_workloads(
    env: &TestEnv,
    helm: Helm,
    release: &str,
    ns: &str,
    sets: &[&str],
) -> std::process::Output {
    let chart = chart("workloads");
    let mut args = vec![
        "install",
        release,
        chart.as_str(),
        "-n",
        ns,
        "--create-namespace",
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        "120s",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    env.try_helm(helm, args)
}

fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn job_hooks_run_in_weight_order(helm: Helm) {
    let env = TestEnv::shared();
    let release = unique_name(&format!("hooks-{}", helm.tag()));
    let ns = unique_name(&format!("hooks-{}", helm.tag()));
    // Keep the hook Jobs after they succeed, to read their times.
    let out = install_workloads(
        env,
        helm,
        &release,
        &ns,
        &["hookDeletePolicy=before-hook-creation"],
    );
    assert_success(&out, "helm install --wait --wait-for-jobs");

    // Each hook Job ran to completion through the job controller.
    let time = |job: &str, path: &str| {
        epoch_seconds(&env.jsonpath(&ns, &format!("job/{release}-{job}"), path))
    };
    for job in ["pre-a", "pre-b", "post"] {
        let succeeded = env.jsonpath(&ns, &format!("job/{release}-{job}"), "{.status.succeeded}");
        assert_eq!(succeeded, "1", "job {job} did not succeed");
    }
    // Weight -5 before weight 5, and post-install after both. A Job's Pod
    // runs 2 s (hookDelay), so Jobs started together would overlap.
    let (a_done, b_created, b_done, post_created) = (
        time("pre-a", "{.status.completionTime}"),
        time("pre-b", "{.metadata.creationTimestamp}"),
        time("pre-b", "{.status.completionTime}"),
        time("post", "{.metadata.creationTimestamp}"),
    );
    assert!(
        a_done <= b_created,
        "pre-b (weight 5) was created at {b_created}, before pre-a (weight -5) completed at {a_done}"
    );
    assert!(
        b_done <= post_created,
        "the post-install hook was created at {post_created}, before pre-b completed at {b_done}"
    );

    // The workloads helm waited for are ready: 2 Deployment replicas, 2
    // StatefulSet replicas, and the DaemonSet's Pod on the one Node.
    assert_eq!(
        env.jsonpath(
            &ns,
            &format!("deployment/{release}-web"),
            "{.status.readyReplicas}"
        ),
        "2"
    );
    assert_eq!(
        env.jsonpath(
            &ns,
            &format!("statefulset/{release}-db"),
            "{.status.readyReplicas}"
        ),
        "2"
    );
    assert_eq!(
        env.jsonpath(
            &ns,
            &format!("daemonset/{release}-agent"),
            "{.status.numberReady}"
        ),
        "1"
    );
    let listed = env
        .helm_list(helm)
        .into_iter()
        .find(|r| r["name"] == release.as_str())
        .expect("the release is listed");
    assert_eq!(listed["status"], "deployed", "{listed}");
}

#[test]
fn helm4_job_hooks_run_in_weight_order_and_wait_finishes() {
    job_hooks_run_in_weight_order(Helm::V4);
}

#[test]
fn helm3_job_hooks_run_in_weight_order_and_wait_finishes() {
    job_hooks_run_in_weight_order(Helm::V3);
}

fn hook_succeeded_removes_the_jobs(helm: Helm) {
    let env = TestEnv::shared();
    let release = unique_name(&format!("hookdel-{}", helm.tag()));
    let ns = unique_name(&format!("hookdel-{}", helm.tag()));
    let out = install_workloads(
        env,
        helm,
        &release,
        &ns,
        &["hookDeletePolicy=hook-succeeded"],
    );
    assert_success(&out, "helm install --wait --wait-for-jobs");
    let selector = format!("app.kubernetes.io/instance={release}");
    assert_eq!(
        env.kubectl(["get", "jobs", "-n", &ns, "-l", &selector, "-o", "name"]),
        "",
        "helm left hook Jobs behind despite hook-succeeded"
    );
    // Their Pods go too: the garbage collector removes what the Jobs owned.
    let hook_pods = || {
        env.kubectl([
            "get",
            "pods",
            "-n",
            &ns,
            "-l",
            &format!("{selector},app.kubernetes.io/component"),
            "-o",
            "name",
        ])
    };
    wait_until(
        "the hook Jobs' Pods to be garbage-collected",
        Duration::from_secs(60),
        || hook_pods().is_empty(),
    );
}

#[test]
fn helm4_hook_succeeded_removes_hook_jobs_and_their_pods() {
    hook_succeeded_removes_the_jobs(Helm::V4);
}

#[test]
fn helm3_hook_succeeded_removes_hook_jobs_and_their_pods() {
    hook_succeeded_removes_the_jobs(Helm::V3);
}

fn failing_hook_fails_the_install(helm: Helm) {
    let env = TestEnv::shared();
    let release = unique_name(&format!("hookfail-{}", helm.tag()));
    let ns = unique_name(&format!("hookfail-{}", helm.tag()));
    let out = install_workloads(env, helm, &release, &ns, &["failHook=true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "helm install succeeded over a failing hook:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{release}-pre-a")) && stderr.contains("pre-install"),
        "helm's error does not name the failed pre-install Job:\n{stderr}"
    );
    // The job controller marked the Job failed; the later hook never ran.
    env.wait_for(
        &ns,
        &format!("job/{release}-pre-a"),
        "condition=Failed",
        Duration::from_secs(10),
    );
    let b = env.try_kubectl(["get", "job", "-n", &ns, &format!("{release}-pre-b")]);
    assert!(
        !b.status.success(),
        "the weight-5 hook ran after the weight -5 hook failed"
    );
    let listed = env
        .helm_list(helm)
        .into_iter()
        .find(|r| r["name"] == release.as_str())
        .expect("the failed release is listed");
    assert_eq!(listed["status"], "failed", "{listed}");
}

#[test]
fn helm4_a_failing_job_hook_fails_the_install() {
    failing_hook_fails_the_install(Helm::V4);
}

#[test]
fn helm3_a_failing_job_hook_fails_the_install() {
    failing_hook_fails_the_install(Helm::V3);
}

/// The namespace controller empties and removes a deleted namespace; the
/// ServiceAccount controller and admission give Pods the default account.
#[test]
fn a_namespace_with_objects_is_deleted() {
    let env = TestEnv::shared();
    let ns = unique_name("nsdel");
    env.kubectl(["create", "namespace", &ns]);
    env.kubectl([
        "create",
        "configmap",
        "settings",
        "-n",
        &ns,
        "--from-literal=a=b",
    ]);
    env.kubectl([
        "create",
        "deployment",
        "web",
        "-n",
        &ns,
        "--image=registry.invalid/web:1",
        "--replicas=2",
    ]);
    env.wait_for(
        &ns,
        "deployment/web",
        "condition=Available",
        Duration::from_secs(60),
    );
    let pod_sa = env.kubectl([
        "get",
        "pods",
        "-n",
        &ns,
        "-o",
        "jsonpath={.items[*].spec.serviceAccountName}",
    ]);
    assert_eq!(
        pod_sa, "default default",
        "Pods did not get the default ServiceAccount"
    );

    env.kubectl(["delete", "namespace", &ns, "--wait=false"]);
    env.wait_for(
        "default",
        &format!("namespace/{ns}"),
        "delete",
        Duration::from_secs(90),
    );
    let gone = env.try_kubectl(["get", "namespace", &ns]);
    assert!(!gone.status.success(), "namespace {ns} still exists");
}

/// The CronJob controller creates a Job on schedule, and the Job completes.
#[test]
fn a_cronjob_creates_a_job_on_schedule() {
    let env = TestEnv::shared();
    let ns = unique_name("cron");
    env.kubectl(["create", "namespace", &ns]);
    env.kubectl([
        "create",
        "cronjob",
        "tick",
        "-n",
        &ns,
        "--image=registry.invalid/tick:1",
        "--schedule=* * * * *",
    ]);
    let jobs = || env.jsonpath(&ns, "jobs", "{.items[*].metadata.name}");
    wait_until(
        "the CronJob to create a Job",
        Duration::from_secs(70),
        || !jobs().is_empty(),
    );
    let job = jobs();
    let job = job.split_whitespace().next().expect("a Job name");
    assert!(job.starts_with("tick-"), "unexpected Job {job}");
    env.wait_for(
        &ns,
        &format!("job/{job}"),
        "condition=Complete",
        Duration::from_secs(30),
    );
}

/// `up --nodes 2 --pod-delay 3s`, and an API server that crashes and returns:
/// the controllers reconnect and act on what is created afterwards.
#[test]
fn nodes_pod_delay_and_an_api_server_restart() {
    let env = TestEnv::start_with(&["--nodes", "2", "--pod-delay", "3s"]);
    let nodes = env.kubectl(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(nodes, "testenv-node-1 testenv-node-2");

    env.kubectl([
        "create",
        "job",
        "slow",
        "-n",
        "default",
        "--image=registry.invalid/job:1",
    ]);
    env.wait_for(
        "default",
        "job/slow",
        "condition=Complete",
        Duration::from_secs(60),
    );
    let started = epoch_seconds(&env.jsonpath("default", "job/slow", "{.status.startTime}"));
    let done = epoch_seconds(&env.jsonpath("default", "job/slow", "{.status.completionTime}"));
    assert!(
        done - started >= 2,
        "the Job took {}s, not the 3 s pod delay",
        done - started
    );

    env.stop_api();
    assert!(
        !env.try_kubectl(["get", "nodes"]).status.success(),
        "the API still answers"
    );
    env.start_api();
    env.kubectl([
        "create",
        "deployment",
        "after",
        "-n",
        "default",
        "--image=registry.invalid/web:1",
        "--replicas=3",
    ]);
    env.wait_for(
        "default",
        "deployment/after",
        "condition=Available",
        Duration::from_secs(90),
    );
    // Spread over both Nodes by the scheduler.
    let placed = env.kubectl([
        "get",
        "pods",
        "-n",
        "default",
        "-l",
        "app=after",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert_eq!(placed.split_whitespace().count(), 3, "{placed}");
}

#[test]
fn epoch_seconds_reads_api_server_times() {
    assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), 0);
    assert_eq!(epoch_seconds("2026-12-01T15:04:05Z"), 1_796_137_445);
}
