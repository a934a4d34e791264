//! Messages with every field set, and the values Python must decode them to.

use super::*;

pub(super) fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

pub(super) fn full_metadata() -> Metadata {
    Metadata {
        name: "web".into(),
        home: "https://example.com/web".into(),
        sources: vec![
            "https://git.example.com/web".into(),
            "https://mirror.example.com/web".into(),
        ],
        version: "1.2.3".into(),
        description: "A web app".into(),
        keywords: vec!["web".into(), "http".into()],
        maintainers: vec![
            Maintainer {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                url: "https://ada.example.com".into(),
            },
            Maintainer {
                name: "Bob".into(),
                ..Default::default()
            },
        ],
        engine: "gotpl".into(),
        icon: "https://example.com/icon.png".into(),
        api_version: "v1".into(),
        condition: "web.enabled".into(),
        tags: "frontend".into(),
        app_version: "2.0".into(),
        deprecated: true,
        tiller_version: ">=2.10.0".into(),
        annotations: [
            ("a.example.com/x".to_owned(), "1".to_owned()),
            ("b".to_owned(), "two".to_owned()),
        ]
        .into_iter()
        .collect(),
        kube_version: ">=1.10.0".into(),
    }
}

pub(super) fn full_metadata_json() -> Value {
    json!({
        "name": "web", "home": "https://example.com/web",
        "sources": ["https://git.example.com/web", "https://mirror.example.com/web"],
        "version": "1.2.3", "description": "A web app", "keywords": ["web", "http"],
        "maintainers": [
            {"name": "Ada", "email": "ada@example.com", "url": "https://ada.example.com"},
            {"name": "Bob"}
        ],
        "engine": "gotpl", "icon": "https://example.com/icon.png", "apiVersion": "v1",
        "condition": "web.enabled", "tags": "frontend", "appVersion": "2.0", "deprecated": true,
        "tillerVersion": ">=2.10.0", "annotations": {"a.example.com/x": "1", "b": "two"},
        "kubeVersion": ">=1.10.0"
    })
}

pub(super) fn full_chart() -> Chart {
    Chart {
        metadata: Some(full_metadata()),
        templates: vec![Template {
            name: "templates/cm.yaml".into(),
            data: b"kind: ConfigMap\nname: {{ .Release.Name }}\n\xff\x00".to_vec(),
        }],
        dependencies: vec![Chart {
            metadata: Some(Metadata {
                name: "sub".into(),
                version: "0.1.0".into(),
                ..Default::default()
            }),
            values: Some(Config {
                raw: "a: 1\n".into(),
                values: Default::default(),
            }),
            ..Default::default()
        }],
        values: Some(Config {
            raw: "replicas: 1\n".into(),
            values: [
                ("k1".to_owned(), HValue { value: "v1".into() }),
                ("k2".to_owned(), HValue { value: "v2".into() }),
            ]
            .into_iter()
            .collect(),
        }),
        files: vec![
            Any {
                type_url: "README.md".into(),
                value: b"# web\n".to_vec(),
            },
            Any {
                type_url: "files/blob.bin".into(),
                value: vec![0, 1, 2, 255],
            },
        ],
    }
}

pub(super) fn full_chart_json() -> Value {
    json!({
        "metadata": full_metadata_json(),
        "templates": [{"name": "templates/cm.yaml", "data": B64.encode(b"kind: ConfigMap\nname: {{ .Release.Name }}\n\xff\x00")}],
        "dependencies": [{"metadata": {"name": "sub", "version": "0.1.0"}, "values": {"raw": "a: 1\n"}}],
        "values": {"raw": "replicas: 1\n", "values": {"k1": {"value": "v1"}, "k2": {"value": "v2"}}},
        "files": [
            {"type_url": "README.md", "value": B64.encode(b"# web\n")},
            {"type_url": "files/blob.bin", "value": B64.encode([0u8, 1, 2, 255])}
        ]
    })
}

pub(super) fn full_release() -> Release {
    Release {
        name: "web".into(),
        info: Some(Info {
            status: Some(Status {
                code: Code::Deployed as i32,
                resources: "==> v1/ConfigMap\nNAME  DATA\nweb   1\n".into(),
                notes: "Hello {{ x }}".into(),
                last_test_suite_run: Some(TestSuite {
                    started_at: ts(1_600_000_000, 5),
                    completed_at: ts(1_600_000_100, 0),
                    results: vec![
                        TestRun {
                            name: "web-test".into(),
                            status: RunStatus::Success as i32,
                            info: "ok".into(),
                            started_at: ts(1_600_000_001, 0),
                            completed_at: ts(1_600_000_002, 999_999_999),
                        },
                        TestRun {
                            name: "web-test-2".into(),
                            status: RunStatus::Failure as i32,
                            ..Default::default()
                        },
                    ],
                }),
            }),
            first_deployed: ts(1_577_836_800, 123_456_789),
            last_deployed: ts(1_577_840_400, 0),
            deleted: ts(1_577_844_000, 1),
            description: "Upgrade complete".into(),
        }),
        chart: Some(full_chart()),
        config: Some(Config {
            raw: "password: s3cr3t\nnested:\n  list: [1, 2]\n".into(),
            values: Default::default(),
        }),
        manifest: "---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\n".into(),
        hooks: vec![
            Hook {
                name: "web-pre".into(),
                kind: "ConfigMap".into(),
                path: "web/templates/hook.yaml".into(),
                manifest: "kind: ConfigMap\n".into(),
                events: vec![
                    hook::Event::PreInstall as i32,
                    hook::Event::PreUpgrade as i32,
                    hook::Event::CrdInstall as i32,
                ],
                last_run: ts(1_577_836_801, 0),
                weight: -5,
                delete_policies: vec![
                    hook::DeletePolicy::Succeeded as i32,
                    hook::DeletePolicy::BeforeHookCreation as i32,
                ],
                delete_timeout: 600,
            },
            Hook {
                name: "web-post".into(),
                events: vec![hook::Event::PostDelete as i32],
                weight: 3,
                delete_policies: vec![hook::DeletePolicy::Failed as i32],
                ..Default::default()
            },
        ],
        version: 7,
        namespace: "prod".into(),
    }
}

pub(super) fn full_release_json() -> Value {
    json!({
        "name": "web",
        "info": {
            "status": {
                "code": "DEPLOYED",
                "resources": "==> v1/ConfigMap\nNAME  DATA\nweb   1\n",
                "notes": "Hello {{ x }}",
                "last_test_suite_run": {
                    "started_at": {"seconds": 1_600_000_000, "nanos": 5},
                    "completed_at": {"seconds": 1_600_000_100},
                    "results": [
                        {"name": "web-test", "status": "SUCCESS", "info": "ok",
                         "started_at": {"seconds": 1_600_000_001},
                         "completed_at": {"seconds": 1_600_000_002, "nanos": 999_999_999}},
                        {"name": "web-test-2", "status": "FAILURE"}
                    ]
                }
            },
            "first_deployed": {"seconds": 1_577_836_800, "nanos": 123_456_789},
            "last_deployed": {"seconds": 1_577_840_400},
            "deleted": {"seconds": 1_577_844_000, "nanos": 1},
            "Description": "Upgrade complete"
        },
        "chart": full_chart_json(),
        "config": {"raw": "password: s3cr3t\nnested:\n  list: [1, 2]\n"},
        "manifest": "---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\n",
        "hooks": [
            {"name": "web-pre", "kind": "ConfigMap", "path": "web/templates/hook.yaml",
             "manifest": "kind: ConfigMap\n",
             "events": ["PRE_INSTALL", "PRE_UPGRADE", "CRD_INSTALL"],
             "last_run": {"seconds": 1_577_836_801}, "weight": -5,
             "delete_policies": ["SUCCEEDED", "BEFORE_HOOK_CREATION"], "delete_timeout": 600},
            {"name": "web-post", "events": ["POST_DELETE"], "weight": 3, "delete_policies": ["FAILED"]}
        ],
        "version": 7,
        "namespace": "prod"
    })
}
