//! `helm plugin install <path>` with Helm 4 and Helm 3 (the install hook
//! builds from source), then `helm bulk` with Helm's own flags and
//! environment reaching the plugin.

use super::*;

/// What the steps of one path install share.
struct PathInstall<'e> {
    ph: PluginHelm<'e>,
    work: tempfile::TempDir,
    /// The age identity made through `helm bulk keygen`, and its recipient.
    key: PathBuf,
    recipient: String,
    /// The snapshot's source kind for this Helm (`helm4`, `helm3`).
    kind: &'static str,
    /// Three releases, `(namespace, name)`: a and b with the Secret driver,
    /// c with the ConfigMap driver.
    a: (String, String),
    b: (String, String),
    c: (String, String),
}

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
    install_and_list_the_plugin(&ph, &source);
    let (key, recipient) = keygen_through_helm(&ph, work.path());
    let [a, b, c] = install_three_releases(env, helm);
    let kind = match helm {
        Helm::V4 => "helm4",
        Helm::V3 => "helm3",
    };
    let p = PathInstall {
        ph,
        work,
        key,
        recipient,
        kind,
        a,
        b,
        c,
    };
    helm_flags_reach_the_plugin(&p);
    let file_all = no_namespace_saves_every_namespace(&p);
    helm_driver_reaches_the_plugin(&p);
    load_dry_run_through_helm(&p, &file_all);
    uninstall_the_plugin(&p);
    eprintln!(
        "plugin ({}): whole test took {:.1}s",
        helm.tag(),
        started.elapsed().as_secs_f64()
    );
}

/// Installs from the path, building from source in the install hook; helm
/// lists the plugin and runs `helm bulk --help` and `--version`.
fn install_and_list_the_plugin(ph: &PluginHelm<'_>, source: &Path) {
    let helm = ph.helm;
    let mut install = ph.cmd();
    for_source_build(&mut install)
        .args(["plugin", "install"])
        .arg(source);
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
}

/// A key, through helm: returns the identity file and its recipient.
fn keygen_through_helm(ph: &PluginHelm<'_>, work: &Path) -> (PathBuf, String) {
    let key = work.join("key.txt");
    let recipient = ph.ok([
        OsStr::new("bulk"),
        OsStr::new("keygen"),
        OsStr::new("-o"),
        key.as_os_str(),
    ]);
    let recipient = recipient.trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");

    (key, recipient)
}

/// Three releases of the smoke chart: two with the Secret driver, one with
/// the ConfigMap driver.
fn install_three_releases(env: &TestEnv, helm: Helm) -> [(String, String); 3] {
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

    [(ns_a, rel_a), (ns_b, rel_b), (ns_c, rel_c)]
}

/// Helm's own flags: helm consumes -n, --kube-context and --kubeconfig and
/// passes them as HELM_NAMESPACE, HELM_KUBECONTEXT and KUBECONFIG.
fn helm_flags_reach_the_plugin(p: &PathInstall<'_>) {
    let context = current_context(&p.ph.env.kubeconfig);
    let file_a = p.work.path().join("a.age");
    let mut save = p.ph.cmd();
    save.env_remove("KUBECONFIG")
        .args([
            "bulk",
            "save",
            "-n",
            &p.a.0,
            "--kube-context",
            &context,
            "--kubeconfig",
        ])
        .arg(&p.ph.env.kubeconfig)
        .args(["-r", &p.recipient, "-o"])
        .arg(&file_a);
    run_ok(&mut save);
    let index = show_json(&p.ph, &p.key, &file_a);
    assert_eq!(
        releases_of(&index),
        vec![(p.a.0.clone(), p.a.1.clone())],
        "{index}"
    );
    assert_eq!(index["source"]["kind"], p.kind, "{index}");
    assert_eq!(index["source"]["driver"], "secret", "{index}");
    assert_eq!(index["cluster"]["context"], context.as_str(), "{index}");
}

/// No -n: HELM_NAMESPACE is the context's namespace, which means "all".
/// Returns the snapshot of every namespace.
fn no_namespace_saves_every_namespace(p: &PathInstall<'_>) -> PathBuf {
    let file_all = p.work.path().join("all.age");
    p.ph.ok([
        OsStr::new("bulk"),
        OsStr::new("save"),
        OsStr::new("-r"),
        OsStr::new(&p.recipient),
        OsStr::new("-o"),
        file_all.as_os_str(),
    ]);
    let all = releases_of(&show_json(&p.ph, &p.key, &file_all));
    for release in [(&p.a.0, &p.a.1), (&p.b.0, &p.b.1)] {
        assert!(
            all.iter().any(|(ns, name)| (ns, name) == release),
            "{release:?} not in {all:?}"
        );
    }
    assert!(
        !all.iter().any(|(_, name)| name == &p.c.1),
        "a configmap record in a secret-driver save"
    );
    let table = p.ph.ok([
        OsStr::new("bulk"),
        OsStr::new("show"),
        OsStr::new("-i"),
        p.key.as_os_str(),
        file_all.as_os_str(),
    ]);
    assert!(table.contains(&p.a.1) && table.contains(&p.b.1), "{table}");

    file_all
}

/// HELM_DRIVER reaches the plugin.
fn helm_driver_reaches_the_plugin(p: &PathInstall<'_>) {
    let file_c = p.work.path().join("c.age");
    let mut save = p.ph.cmd();
    save.env("HELM_DRIVER", "configmap")
        .args(["bulk", "save", "-n", &p.c.0, "-r", &p.recipient, "-o"])
        .arg(&file_c);
    run_ok(&mut save);
    let index = show_json(&p.ph, &p.key, &file_c);
    assert_eq!(
        releases_of(&index),
        vec![(p.c.0.clone(), p.c.1.clone())],
        "{index}"
    );
    assert_eq!(index["source"]["driver"], "configmap", "{index}");
    assert_eq!(index["source"]["kind"], p.kind, "{index}");
}

/// load --dry-run through helm: the plan lists the saved releases and
/// nothing changes (they exist, so they are skipped).
fn load_dry_run_through_helm(p: &PathInstall<'_>, file_all: &Path) {
    let plan = p.ph.ok([
        OsStr::new("bulk"),
        OsStr::new("load"),
        OsStr::new("--dry-run"),
        OsStr::new("-i"),
        p.key.as_os_str(),
        file_all.as_os_str(),
    ]);
    assert!(plan.contains("Plan (dry run"), "{plan}");
    assert!(
        plan.contains(&p.a.1) && plan.contains("already installed"),
        "{plan}"
    );
}

/// `helm plugin uninstall bulk` removes it from `helm plugin list`.
fn uninstall_the_plugin(p: &PathInstall<'_>) {
    p.ph.ok(["plugin", "uninstall", "bulk"]);
    let list = p.ph.ok(["plugin", "list"]);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some("bulk")),
        "bulk still listed after uninstall: {list}"
    );
}

cluster::helm4_and_helm3! {
    install_from_path_and_save => helm4_installs_from_path_and_runs_helm_bulk, helm3_installs_from_path_and_runs_helm_bulk;
}
