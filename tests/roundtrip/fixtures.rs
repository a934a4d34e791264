//! The fixture releases of the round trip (see the table in `main.rs`) and
//! hand-made release records for the fault scenarios.

use super::*;

/// Installs every fixture release but leaves `gamma/flaky` at its first
/// (deployed) revision: its failing upgrade is [`fail_flaky_upgrade`], run
/// after the "before" state is recorded, since a failed upgrade may have
/// changed some live objects (the last deployed revision is what is restored).
pub(crate) fn install_fixtures(env: &TestEnv, helm: Helm, canary: &str, operator: &str) {
    // One thread per namespace, each namespace's releases in order: (chart,
    // helm arguments split on whitespace, `CHART` standing for its path).
    let chains: [&[(&str, &str)]; 4] = [
        &[
            (
                "app",
                &format!(
                    "install db CHART -n alpha --create-namespace \
                     --set-string db.password={canary} --set greeting=bonjour"
                ),
            ),
            ("app", "install web CHART -n alpha"),
            ("app", "upgrade web CHART -n alpha --set greeting=second"),
            (
                "app",
                "upgrade web CHART -n alpha --set greeting=third \
                 --set-string db.password=third-password",
            ),
        ],
        &[
            (
                "umbrella",
                "install stack CHART -n beta --create-namespace \
                 --set child.message=from-the-command-line --set tier=backend",
            ),
            ("crds", "install widgets CHART -n beta --set size=5"),
        ],
        &[
            (
                "app",
                "install flaky CHART -n gamma --create-namespace --set greeting=stable",
            ),
            ("crdparent", "install gadgets CHART -n gamma --set speed=9"),
        ],
        &[
            (
                "operator",
                "install ops CHART -n delta --create-namespace --set replicas=5",
            ),
            (
                "dashboards",
                "install grafana CHART -n delta --set adminUser=root",
            ),
        ],
    ];
    std::thread::scope(|s| {
        for chain in chains {
            s.spawn(move || {
                for (name, line) in chain {
                    let path = if *name == "operator" {
                        operator.to_owned()
                    } else {
                        chart(name)
                    };
                    let args = line
                        .split_whitespace()
                        .map(|a| if a == "CHART" { path.as_str() } else { a });
                    env.helm(helm, args);
                }
            });
        }
    });
}

/// Upgrades `gamma/flaky` with a Service port the API server rejects: its
/// latest revision (2) is `failed`, its deployed one stays 1.
pub(crate) fn fail_flaky_upgrade(env: &TestEnv, helm: Helm) {
    let out = env.try_helm(
        helm,
        [
            "upgrade",
            "flaky",
            &chart("app"),
            "-n",
            "gamma",
            "--reuse-values",
            "--set",
            "service.port=99999",
        ],
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("99999"),
        "the upgrade with port 99999 should be rejected by the API server: {}",
        show(&out)
    );
    let history = parse_json(
        &env.helm(helm, ["history", "flaky", "-n", "gamma", "-o", "json"]),
        "helm history",
    );
    let statuses: Vec<(u64, &str)> = history
        .as_array()
        .expect("history is an array")
        .iter()
        .map(|h| {
            (
                h["revision"].as_u64().unwrap_or(0),
                h["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(statuses, [(1, "deployed"), (2, "failed")], "{history}");
}

/// Copies the `operator` fixture chart to `dir` and adds to its CRD
/// subchart a CRD of over 1 MiB (long descriptions full of braces, as
/// generated API documentation has), too big to keep in the repository.
pub(crate) fn operator_chart(dir: &Path) -> String {
    pub(crate) fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
    let chart_dir = dir.join("operator");
    copy(Path::new(&chart("operator")), &chart_dir);
    let mut yaml = String::from(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
         name: snapshots.ops.helm-bulk.test\nspec:\n  group: ops.helm-bulk.test\n  \
         scope: Namespaced\n  names:\n    plural: snapshots\n    singular: snapshot\n    \
         kind: Snapshot\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      \
         schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n",
    );
    let text: String =
        "Selects {\"matchLabels\":{}} of {{ .Values.x }}; 9.223372036854775e+18. ".repeat(420);
    for i in 0..40 {
        yaml.push_str(&format!(
            "            field{i:02}:\n              type: string\n              description: '{text}'\n"
        ));
    }
    assert!(
        yaml.len() > 1 << 20,
        "the large CRD is {} bytes",
        yaml.len()
    );
    std::fs::write(
        chart_dir.join("charts/operator-crds/crds/snapshots.yaml"),
        yaml,
    )
    .unwrap();
    chart_dir.to_str().unwrap().to_owned()
}

/// A minimal Helm release record (decoded JSON) of `namespace/name`, revision
/// 1, deployed, whose manifest carries `random` bytes of random hex.
pub(crate) fn synthetic_record(namespace: &str, name: &str, random: usize) -> String {
    json!({
        "name": name,
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z"},
        "chart": {"metadata": {"name": namespace, "version": "0.1.0", "appVersion": "1"}},
        "config": {},
        "manifest": format!("---\n# {}\n", random_hex(random)),
    })
    .to_string()
}
