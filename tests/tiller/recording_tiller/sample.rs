//! Sample Helm 2 releases, as Tiller would have stored them, to seed the
//! recording Tiller with.

use super::*;

/// A Helm 2 release revision as Tiller would have stored it: a ConfigMap
/// manifest, a pre-install ConfigMap hook, a crd-install hook when `crd` is
/// set, notes, default and user values.
pub fn sample_release(
    name: &str,
    namespace: &str,
    version: i32,
    status: Code,
    values: &str,
    crd: bool,
) -> Release {
    let manifest = format!(
        "---\n# Source: legacy/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n  labels:\n    app: {name}\n    revision: \"{version}\"\ndata:\n  greeting: \"hello {{{{ not a template }}}}\"\n  values: |\n{}\n",
        values
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut hooks = vec![Hook {
        name: format!("{name}-pre-install"),
        kind: "ConfigMap".to_owned(),
        path: "legacy/templates/hook.yaml".to_owned(),
        manifest: format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-pre-install\n  annotations:\n    \"helm.sh/hook\": pre-install\n    \"helm.sh/hook-weight\": \"-5\"\ndata:\n  at: install\n"
        ),
        events: vec![hook::Event::PreInstall as i32],
        last_run: Some(prost_types::Timestamp {
            seconds: 1_577_836_800,
            nanos: 0,
        }),
        weight: -5,
        delete_policies: vec![hook::DeletePolicy::BeforeHookCreation as i32],
        delete_timeout: 0,
    }];
    if crd {
        hooks.insert(
            0,
            Hook {
                name: "widgets.legacy.example.com".to_owned(),
                kind: "CustomResourceDefinition".to_owned(),
                path: "legacy/templates/crd.yaml".to_owned(),
                manifest: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.legacy.example.com\n  annotations:\n    \"helm.sh/hook\": crd-install\nspec:\n  group: legacy.example.com\n  names:\n    kind: Widget\n    plural: widgets\n    singular: widget\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n".to_owned(),
                events: vec![hook::Event::CrdInstall as i32],
                ..Default::default()
            },
        );
    }
    Release {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        version,
        info: Some(Info {
            status: Some(Status {
                code: status as i32,
                notes: format!("{name} is installed. Try {{{{ .Release.Name }}}}."),
                ..Default::default()
            }),
            first_deployed: Some(prost_types::Timestamp {
                seconds: 1_577_836_800,
                nanos: 0,
            }),
            last_deployed: Some(prost_types::Timestamp {
                seconds: 1_577_836_800 + i64::from(version) * 3600,
                nanos: 0,
            }),
            deleted: None,
            description: "Install complete".to_owned(),
        }),
        chart: Some(Chart {
            metadata: Some(Metadata {
                name: "legacy".to_owned(),
                version: "1.4.2".to_owned(),
                app_version: "2.0.1".to_owned(),
                description: "A Helm 2 chart".to_owned(),
                api_version: "v1".to_owned(),
                engine: "gotpl".to_owned(),
                tiller_version: ">=2.10.0".to_owned(),
                keywords: vec!["legacy".to_owned()],
                ..Default::default()
            }),
            templates: vec![helm_bulk::tiller::hapi::chart::Template {
                name: "templates/configmap.yaml".to_owned(),
                data: b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n".to_vec(),
            }],
            dependencies: vec![],
            values: Some(Config {
                raw: "replicas: 1\nimage: legacy:2.0.1\n".to_owned(),
                values: Default::default(),
            }),
            files: vec![prost_types::Any {
                type_url: "README.md".to_owned(),
                value: b"# legacy\n".to_vec(),
            }],
        }),
        config: Some(Config {
            raw: values.to_owned(),
            values: Default::default(),
        }),
        manifest,
        hooks,
    }
}
