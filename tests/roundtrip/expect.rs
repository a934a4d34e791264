//! What a restored cluster must look like: each fixture release as it was
//! before the save (recorded by [`Before::record`]), and the checks that
//! compare a cluster with it.

use super::*;

/// A release as it must be after a restore: its last deployed revision.
#[derive(Debug)]
pub(crate) struct Expected {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The revision that was deployed (and is restored).
    pub(crate) revision: u64,
    /// name, namespace, chart, app_version and status of `helm list -o json`.
    pub(crate) row: Value,
    /// `helm get values -o json`.
    pub(crate) values: Value,
    /// `helm get notes` (the app chart's notes hold literal braces).
    pub(crate) notes: String,
    /// `helm get manifest` and `helm get hooks`, `# Source:` comments included.
    pub(crate) manifest: String,
    /// The objects of its manifest and hooks.
    pub(crate) refs: Vec<ObjRef>,
    /// Their live state, by [`ObjRef::key`].
    pub(crate) objects: BTreeMap<String, Value>,
}

pub(crate) fn list_row(entry: &Value) -> Value {
    json!({
        "name": entry["name"],
        "namespace": entry["namespace"],
        "chart": entry["chart"],
        "app_version": entry["app_version"],
        "status": entry["status"],
    })
}

/// The manifest and hooks of a release (its current revision, or `revision`).
pub(crate) fn manifest_and_hooks(
    env: &TestEnv,
    helm: Helm,
    ns: &str,
    name: &str,
    revision: Option<u64>,
) -> String {
    let rev = revision.map(|r| r.to_string());
    let mut manifest = String::new();
    for what in ["manifest", "hooks"] {
        let mut args = vec!["get", what, name, "-n", ns];
        if let Some(r) = &rev {
            args.extend(["--revision", r.as_str()]);
        }
        manifest.push_str(&env.helm(helm, args));
        manifest.push_str("\n---\n");
    }
    manifest
}

/// A release's last deployed revision (helm's current one; the newest
/// revision is a failed upgrade after it when the history has one), as helm
/// shows it.
struct Deployed {
    /// Its `helm history -o json` entry.
    entry: Value,
    revision: u64,
    /// `helm get values -o json` (the user-supplied values).
    values: Value,
    /// `helm get notes`.
    notes: String,
}

fn deployed_revision(env: &TestEnv, helm: Helm, ns: &str, name: &str, what: &str) -> Deployed {
    let history = parse_json(
        &env.helm(helm, ["history", name, "-n", ns, "-o", "json"]),
        "helm history",
    );
    let entry = history
        .as_array()
        .and_then(|h| h.iter().rev().find(|e| e["status"] == "deployed"))
        .unwrap_or_else(|| panic!("{what}: {ns}/{name} has no deployed revision: {history}"))
        .clone();
    let revision = entry["revision"].as_u64().expect("numeric revision");
    let rev = revision.to_string();
    let values = parse_json(
        &env.helm(
            helm,
            [
                "get",
                "values",
                name,
                "-n",
                ns,
                "--revision",
                &rev,
                "-o",
                "json",
            ],
        ),
        "helm get values",
    );
    let notes = env.helm(helm, ["get", "notes", name, "-n", ns, "--revision", &rev]);
    Deployed {
        entry,
        revision,
        values,
        notes,
    }
}

/// Records the last deployed revision of one release.
pub(crate) fn expect_release(env: &TestEnv, helm: Helm, ns: &str, name: &str) -> Expected {
    let Deployed {
        entry: deployed,
        revision,
        values,
        notes,
    } = deployed_revision(env, helm, ns, name, "before");
    let row = json!({
        "name": name,
        "namespace": ns,
        "chart": deployed["chart"],
        "app_version": deployed["app_version"],
        "status": "deployed",
    });
    let manifest = manifest_and_hooks(env, helm, ns, name, Some(revision));
    let refs = parse_refs(&manifest, ns);
    let objects = live_objects(env, &refs);
    for r in &refs {
        assert!(
            objects.contains_key(&r.key()),
            "fixture {ns}/{name}: {} is not in the cluster before the save",
            r.key()
        );
    }
    Expected {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        revision,
        row,
        values,
        notes,
        manifest,
        refs,
        objects,
    }
}

/// The "before" state: every release's last deployed revision, and the CRDs.
pub(crate) struct Before {
    pub(crate) releases: Vec<Expected>,
    pub(crate) crds: BTreeMap<String, (Value, Value, String)>,
}

impl Before {
    pub(crate) fn record(env: &TestEnv, helm: Helm) -> Before {
        let releases = std::thread::scope(|s| {
            let handles: Vec<_> = RELEASES
                .iter()
                .map(|(ns, name)| s.spawn(move || expect_release(env, helm, ns, name)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("recording a release panicked"))
                .collect::<Vec<_>>()
        });
        Before {
            releases,
            crds: crd_specs(env),
        }
    }

    /// Sets the status `helm list` is expected to show for a release.
    pub(crate) fn set_listed_status(&mut self, ns: &str, name: &str, status: &str) {
        for e in self.releases.iter_mut() {
            if e.namespace == ns && e.name == name {
                e.row["status"] = json!(status);
            }
        }
    }

    pub(crate) fn release(&self, ns: &str, name: &str) -> &Expected {
        self.releases
            .iter()
            .find(|r| r.namespace == ns && r.name == name)
            .unwrap_or_else(|| panic!("no fixture {ns}/{name}"))
    }

    pub(crate) fn object(&self, ns: &str, release: &str, key: &str) -> &Value {
        self.release(ns, release)
            .objects
            .get(key)
            .unwrap_or_else(|| panic!("fixture {ns}/{release} has no {key}"))
    }

    /// Checks the fixtures hold what the scenarios are about.
    pub(crate) fn check_fixtures(&self) {
        assert_eq!(
            self.release("alpha", "web").revision,
            3,
            "web: history of 3"
        );
        assert_eq!(self.release("gamma", "flaky").revision, 1, "flaky");
        let config = self.object("alpha", "db", "ConfigMap/alpha/db-config");
        assert_eq!(config["data"]["template"], "{{ .Values.x }}", "{config}");
        assert_eq!(
            config["data"]["mixed"], "a }} b {{ c {{- d -}} }}",
            "{config}"
        );
        let child = self.object("beta", "stack", "ConfigMap/beta/stack-child");
        assert_eq!(child["data"]["message"], "from-the-command-line", "{child}");
        assert_eq!(child["data"]["chart"], "child", "{child}");
        let notes = &self.release("alpha", "db").notes;
        assert!(notes.contains("Literal: {{ not a template }}"), "{notes}");
        self.object("alpha", "db", "Secret/alpha/db-pre-install");
        self.object("alpha", "db", "Secret/alpha/db-random");
        self.object("beta", "widgets", "Widget/beta/widgets-widget");
        self.object("gamma", "gadgets", "Gadget/gamma/gadgets-gadget");
        self.check_real_world_patterns();
        self.check_crds();
    }

    /// Issue 13's real-world patterns, in delta/grafana and delta/ops.
    fn check_real_world_patterns(&self) {
        let dashboards = self.object(
            "delta",
            "grafana",
            "ConfigMap/delta/grafana-grafana-dashboards",
        );
        let json = dashboards["data"]["overview.json"]
            .as_str()
            .unwrap_or_default();
        for pattern in [
            r#""options": {}}"#,
            "{{instance}}",
            "{{{triple}}}",
            "}}}",
            "{{/* comment */}}",
        ] {
            assert!(
                json.contains(pattern),
                "the dashboard holds {pattern}: {json}"
            );
        }
        // Live objects are compared without metadata: the annotation is
        // checked in the manifest, which must come back byte-identical.
        let grafana = &self.release("delta", "grafana").manifest;
        assert!(
            grafana.contains(r#"co.elastic.logs/raw: "[{\"container\":{}},"#),
            "{grafana}"
        );
        let both = self.object("delta", "grafana", "ConfigMap/delta/grafana-both");
        assert_eq!(both["data"]["keep"], "echo hi\n", "{both}");
        self.object(
            "delta",
            "grafana",
            "Service/kube-system/grafana-coredns-metrics",
        );
        self.object(
            "delta",
            "grafana",
            "PodDisruptionBudget/delta/grafana-grafana",
        );
        self.object(
            "delta",
            "grafana",
            "RoleBinding/delta/grafana-grafana-setup",
        );
        self.object("delta", "grafana", "Secret/delta/grafana-grafana-tls");
        self.object("delta", "ops", "Cluster/delta/ops");
        self.object("delta", "ops", "Limit/delta/ops-limit");
        // The .Capabilities gate saw ops' CRD: grafana has a Limit too.
        self.object("delta", "grafana", "Limit/delta/grafana-limit");
        assert!(
            grafana.contains("helm.sh/hook: test"),
            "the test hook is stored: {grafana}"
        );
    }

    /// The fixtures' CRDs: every one, the kept one with its 64-bit bounds,
    /// and the large one.
    fn check_crds(&self) {
        let (_, annotations, spec) = &self.crds["limits.bounds.helm-bulk.test"];
        assert_eq!(annotations["helm.sh/resource-policy"], "keep");
        assert!(spec.contains(r#""maximum":9223372036854775000"#), "{spec}");
        assert!(self.crds["snapshots.ops.helm-bulk.test"].2.len() > 1 << 20);
        let names: Vec<&str> = self.crds.keys().map(String::as_str).collect();
        let mut want = CRDS.to_vec();
        want.sort();
        assert_eq!(names, want, "the fixtures' CRDs");
    }

    /// Asserts `env` holds exactly the recorded releases, each as recorded.
    pub(crate) fn verify(&self, env: &TestEnv, helm: Helm, what: &str) {
        let list = env.helm_list(helm);
        let listed: BTreeSet<(String, String)> = list
            .iter()
            .map(|r| {
                (
                    r["namespace"].as_str().unwrap_or_default().to_owned(),
                    r["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String)> = RELEASES
            .iter()
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
            .collect();
        assert_eq!(listed, want, "{what}: the releases helm lists");
        std::thread::scope(|s| {
            for r in &self.releases {
                let list = &list;
                s.spawn(move || verify_release(env, helm, r, list, what));
            }
        });
        assert_eq!(crd_specs(env), self.crds, "{what}: the CRDs");
        eprintln!(
            "[{}] {what}: {} releases, {} live objects and {} CRDs identical",
            helm.tag(),
            self.releases.len(),
            self.releases.iter().map(|r| r.objects.len()).sum::<usize>(),
            self.crds.len()
        );
    }
}

pub(crate) fn verify_release(
    env: &TestEnv,
    helm: Helm,
    want: &Expected,
    list: &[Value],
    what: &str,
) {
    let (ns, name) = (want.namespace.as_str(), want.name.as_str());
    let row = list
        .iter()
        .find(|r| r["namespace"] == ns && r["name"] == name)
        .unwrap_or_else(|| panic!("{what}: helm list does not show {ns}/{name}"));
    assert_eq!(
        list_row(row),
        want.row,
        "{what}: helm list row of {ns}/{name}"
    );
    let Deployed {
        revision,
        values,
        notes,
        ..
    } = deployed_revision(env, helm, ns, name, what);
    assert_eq!(values, want.values, "{what}: values of {ns}/{name}");
    assert_eq!(notes, want.notes, "{what}: notes of {ns}/{name}");
    let manifest = manifest_and_hooks(env, helm, ns, name, Some(revision));
    let refs = parse_refs(&manifest, ns);
    assert_eq!(
        refs, want.refs,
        "{what}: the objects of {ns}/{name}'s manifest and hooks"
    );
    // The frozen chart puts every document back in the template its
    // `# Source:` comment names: the rendered text is byte-identical.
    assert_eq!(
        manifest, want.manifest,
        "{what}: helm get manifest + hooks of {ns}/{name}"
    );
    let live = live_objects(env, &want.refs);
    for (key, before) in &want.objects {
        let after = live
            .get(key)
            .unwrap_or_else(|| panic!("{what}: {key} of release {ns}/{name} does not exist"));
        assert_eq!(after, before, "{what}: {key} of release {ns}/{name}");
    }
    // Spelled out, although covered above: the render-time random password
    // is byte-equal, the hook-created Secret and the custom resources exist.
    let random = format!("Secret/{ns}/{name}-random");
    if let Some(before) = want.objects.get(&random) {
        let pw = before["data"]["password"]
            .as_str()
            .expect("random password");
        assert_eq!(
            live[&random]["data"]["password"].as_str(),
            Some(pw),
            "{what}: the random password of {ns}/{name}"
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(pw)
            .expect("base64 password");
        assert_eq!(decoded.len(), 32, "a randAlphaNum 32 password");
    }
    for suffix in [
        "Secret/{}/{}-pre-install",
        "Widget/{}/{}-widget",
        "Gadget/{}/{}-gadget",
    ] {
        let key = suffix.replacen("{}", ns, 1).replacen("{}", name, 1);
        if want.objects.contains_key(&key) {
            assert!(live.contains_key(&key), "{what}: {key} is missing");
        }
    }
}

/// The size of `.data.release` (the Secret's base64 text, as
/// `kubectl get secret -o json | jq '.data.release | length'` reports it).
pub(crate) fn record_size(env: &TestEnv, ns: &str, name: &str, revision: u64) -> usize {
    let secret = parse_json(
        &env.kubectl([
            "get",
            "secret",
            &format!("sh.helm.release.v1.{name}.v{revision}"),
            "-n",
            ns,
            "-o",
            "json",
        ]),
        "kubectl get secret",
    );
    secret["data"]["release"]
        .as_str()
        .expect("a release record")
        .len()
}

/// The current revision of a release, from helm list (a string in its JSON).
pub(crate) fn current_revision(env: &TestEnv, helm: Helm, ns: &str, name: &str) -> u64 {
    let list = env.helm_list(helm);
    let row = list
        .iter()
        .find(|r| r["namespace"] == ns && r["name"] == name)
        .unwrap_or_else(|| panic!("helm list does not show {ns}/{name}"));
    match &row["revision"] {
        Value::String(s) => s.parse().expect("numeric revision"),
        v => v.as_u64().expect("numeric revision"),
    }
}

/// Asserts no file under `dirs` contains `canary`; returns how many were scanned.
pub(crate) fn assert_no_plaintext(dirs: &[&Path], canary: &str) -> usize {
    let mut scanned = 0;
    for dir in dirs {
        for f in files_under(dir) {
            let data = std::fs::read(&f).unwrap_or_default();
            scanned += 1;
            assert!(
                !data.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "the secret value is in plaintext in {}",
                f.display()
            );
        }
    }
    scanned
}
