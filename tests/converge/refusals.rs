//! What load refuses: someone else's failed release, and frozen charts
//! preflight finds unusable.

use super::*;

/// A release of someone else, `failed` in the target cluster: load leaves
/// it alone, lists it with what to do and exits 3; `--replace` restores it.
pub(crate) fn someone_elses_failed_release(helm: Helm) {
    let run = Run::new(helm, "converge");
    let env = TestEnv::start();
    let smoke = chart("smoke");
    smoke_release(&env, helm, "install", "plain", "plain");
    let snapshot = run.path("snapshot.age");
    ok_as(run.save(&env, &snapshot, &[]), "save");
    env.wipe();
    smoke_release(&env, helm, "install", "plain", "theirs");
    let bad = env.try_helm(
        helm,
        [
            "upgrade",
            "plain",
            &smoke,
            "-n",
            NS,
            "--reuse-values",
            "--set",
            "service.port=99999",
        ],
    );
    assert!(!bad.status.success(), "the upgrade with port 99999 fails");
    let before = statuses(&env, helm);
    assert_eq!(before, [("plain".to_owned(), 2, "failed".to_owned())]);
    let greeting = || -> Value {
        let out = env.kubectl(["get", "configmap", "plain-smoke", "-n", NS, "-o", "json"]);
        serde_json::from_str::<Value>(&out).expect("kubectl JSON")["data"]["greeting"].clone()
    };
    let out = run.load(&env, &snapshot, &[]);
    let stderr = text(&out.stderr);
    eprintln!(
        "[{}] load over someone else's failed release:\n{stderr}",
        helm.tag()
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let failed = lines_with(&stderr, "FAILED");
    assert!(
        failed.len() == 1
            && failed[0].contains("conv/plain")
            && failed[0].contains("status failed")
            && failed[0].contains("--upgrade or --replace"),
        "plain is listed with what to do: {stderr}"
    );
    assert!(
        stderr.contains("failed 1"),
        "the summary counts it: {stderr}"
    );
    assert_eq!(
        statuses(&env, helm),
        before,
        "plain is not touched: {stderr}"
    );
    assert_eq!(greeting(), "theirs", "plain's objects are not touched");
    // The dry run says the same.
    let out = run.load(&env, &snapshot, &["--dry-run"]);
    let row = lines_with(&text(&out.stdout), "conv/plain ").join("\n");
    assert!(
        row.contains("FAIL") && row.contains("--replace"),
        "{}",
        show(&out)
    );
    let out = ok_as(run.load(&env, &snapshot, &["--replace"]), "load --replace");
    assert_eq!(
        lines_with(&text(&out.stderr), "replaced  conv/plain ").len(),
        1,
        "{}",
        show(&out)
    );
    let after = statuses(&env, helm);
    assert_eq!(after, [("plain".to_owned(), 1, "deployed".to_owned())]);
    assert_eq!(greeting(), "plain", "the snapshot's release is back");
    run.step("someone else's failed release: left alone, exit 3; --replace restores it");
}

/// A snapshot with a release whose frozen chart does not render (invalid
/// YAML: helm refuses it, reported as a helm-bulk defect naming the stored
/// document) and one whose custom resource no CRD defines: load stops before
/// installing anything, with one line per bad release; the good release is
/// not installed either. The dry run shows the same.
pub(crate) fn preflight(helm: Helm) {
    let run = Run::new(helm, "converge");
    let env = TestEnv::start();
    let (run, env) = (&run, &env);
    let ns = "preflight";
    let good = "---\n# Source: good/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  a: b\n";
    let bad_yaml = "---\n# Source: badyaml/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n";
    let no_crd = "---\n# Source: nocrd/templates/gizmo.yaml\napiVersion: gizmos.example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n";
    run.create_release_secrets(
        env,
        ns,
        &[
            record(ns, "good", good),
            record(ns, "badyaml", bad_yaml),
            record(ns, "nocrd", no_crd),
        ],
    );
    let snapshot = run.path("preflight.age");
    ok_as(
        run.save(env, &snapshot, &["-n", ns]),
        "save of the preflight fixtures",
    );
    env.kubectl(["delete", "secrets", "-n", ns, "-l", "owner=helm"]);

    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["-n", ns];
        args.extend_from_slice(extra);
        let out = run.load(env, &snapshot, &args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        eprintln!("[{}] load {extra:?}:\n{stderr}{stdout}", helm.tag());
        assert_eq!(out.status.code(), Some(1), "load {extra:?}: {}", show(&out));
        let errors = lines_with(&stderr, "Error:");
        assert!(
            errors.len() == 1 && errors[0].contains("preflight found problems with 2 release(s)"),
            "{stderr}"
        );
        // One line per bad release: on stderr for a load, in the plan for a dry run.
        let listing = if extra.is_empty() { &stderr } else { &stdout };
        let bad: Vec<&str> = listing
            .lines()
            .filter(|l| l.contains("preflight/badyaml:") || l.contains("preflight/nocrd:"))
            .collect();
        assert_eq!(bad.len(), 2, "{listing}");
        assert!(
            bad.iter()
                .any(|l| l.contains("badyaml") && l.contains("helm cannot read the chart")),
            "{listing}"
        );
        assert!(
            bad.iter()
                .any(|l| l.contains("nocrd") && l.contains("gizmos.example.com/v1 Gizmo")),
            "{listing}"
        );
        assert!(!listing.contains("preflight/good:"), "{listing}");
        if !extra.is_empty() {
            let row = lines_with(&stdout, "preflight/good ");
            assert!(
                row.len() == 1 && row[0].split_whitespace().any(|w| w == "ok"),
                "{stdout}"
            );
        }
        let installed = env.try_helm(run.helm, ["status", "good", "-n", ns]);
        assert!(
            !installed.status.success(),
            "nothing may be installed: {stderr}"
        );
    }
}
