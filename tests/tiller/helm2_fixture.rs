//! The Helm 2 fixture releases as the Helm 2 client and the cluster show
//! them, recorded before a save and compared after a restore or migration.

use super::*;

/// The values the Helm 2 client was given for each fixture release (Helm 2
/// keeps only those as the release's config).
pub(crate) fn helm2_values(text: &str) -> Value {
    let v: Value = serde_norway::from_str(text)
        .unwrap_or_else(|e| panic!("helm get values printed invalid YAML ({e}): {text}"));
    v
}

/// `helm history NAME` of the Helm 2 client: (revision, status) rows.
pub(crate) fn helm2_statuses(tiller: &real::RealTiller, name: &str) -> Vec<(u32, String)> {
    let out = tiller.helm2_ok(&["history", name, "--max", "100", "-o", "json"]);
    let rows: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap() as u32,
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// One Helm 2 fixture release as it was before the save.
#[derive(Debug)]
pub(crate) struct Helm2Release {
    pub(crate) ns: &'static str,
    pub(crate) name: &'static str,
    /// `helm get values` of its deployed revision (the user's values).
    pub(crate) values: Value,
    /// Its objects (manifest, pre-install hook, custom resource), without
    /// metadata and status, by `Kind/name`.
    pub(crate) objects: BTreeMap<String, Value>,
}

/// The objects the fixture chart makes for a release: `Kind/name` and the
/// kubectl argument that gets it.
pub(crate) fn helm2_objects(name: &str) -> Vec<(String, String)> {
    [
        ("ConfigMap", "configmap", "config"),
        ("ConfigMap", "configmap", "pre-install"),
        ("Secret", "secret", "db"),
        ("Secret", "secret", "random"),
        ("Widget", "widgets.legacy2.example.com", "widget"),
    ]
    .iter()
    .map(|(kind, res, suffix)| {
        (
            format!("{kind}/{name}-{suffix}"),
            format!("{res}/{name}-{suffix}"),
        )
    })
    .collect()
}

/// The live objects of a fixture release (those that exist), without
/// metadata and status.
pub(crate) fn live_helm2_objects(
    env: &cluster::TestEnv,
    ns: &str,
    name: &str,
) -> BTreeMap<String, Value> {
    let objects = helm2_objects(name);
    let mut args = vec!["get", "-n", ns, "--ignore-not-found", "-o", "json"];
    args.extend(objects.iter().map(|(_, arg)| arg.as_str()));
    let stdout = env.kubectl(args);
    let mut out = BTreeMap::new();
    if stdout.trim().is_empty() {
        return out;
    }
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let items = if v["kind"] == "List" {
        v["items"].as_array().cloned().unwrap_or_default()
    } else {
        vec![v]
    };
    for mut item in items {
        let key = format!(
            "{}/{}",
            item["kind"].as_str().unwrap(),
            item["metadata"]["name"].as_str().unwrap()
        );
        let o = item.as_object_mut().unwrap();
        o.remove("metadata");
        o.remove("status");
        out.insert(key, item);
    }
    out
}

impl Helm2Release {
    pub(crate) fn record(
        env: &cluster::TestEnv,
        tiller: &real::RealTiller,
        ns: &'static str,
        name: &'static str,
    ) -> Helm2Release {
        let values = helm2_values(&tiller.helm2_ok(&["get", "values", name]));
        let objects = live_helm2_objects(env, ns, name);
        let want: Vec<String> = helm2_objects(name).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            objects.keys().cloned().collect::<Vec<_>>(),
            {
                let mut w = want.clone();
                w.sort();
                w
            },
            "the objects Tiller made for {ns}/{name}"
        );
        Helm2Release {
            ns,
            name,
            values,
            objects,
        }
    }

    /// Asserts the release's objects are in the cluster as they were, the
    /// render-time random password byte-equal.
    pub(crate) fn verify_objects(&self, env: &cluster::TestEnv, what: &str) {
        let live = live_helm2_objects(env, self.ns, self.name);
        assert_eq!(
            live, self.objects,
            "{what}: the objects of {}/{}",
            self.ns, self.name
        );
        let random = format!("Secret/{}-random", self.name);
        let pw = self.objects[&random]["data"]["password"].as_str().unwrap();
        assert_eq!(live[&random]["data"]["password"].as_str(), Some(pw));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(pw)
            .unwrap();
        assert_eq!(decoded.len(), 32, "a randAlphaNum 32 password");
    }

    /// Asserts Helm 3/4 holds the release as migrated: helm list, helm get
    /// values, notes, and the objects.
    pub(crate) fn verify_migrated(&self, env: &cluster::TestEnv, helm: cluster::Helm, what: &str) {
        let list = env.helm_list(helm);
        let row = list
            .iter()
            .find(|r| r["name"] == self.name && r["namespace"] == self.ns)
            .unwrap_or_else(|| panic!("{what}: {} not in helm list: {list:?}", self.name));
        assert_eq!(row["status"], "deployed", "{what}");
        assert_eq!(row["chart"], "legacy2-1.4.2", "{what}");
        assert_eq!(row["app_version"], "2.0.1", "{what}");
        let values: Value = serde_json::from_str(&env.helm(
            helm,
            ["get", "values", self.name, "-n", self.ns, "-o", "json"],
        ))
        .unwrap();
        assert_eq!(values, self.values, "{what}: values of {}", self.name);
        let all: Value = serde_json::from_str(&env.helm(
            helm,
            [
                "get", "values", self.name, "-n", self.ns, "--all", "-o", "json",
            ],
        ))
        .unwrap();
        assert_eq!(
            all["image"], "legacy:2.0.1",
            "{what}: the chart's defaults: {all}"
        );
        let notes = env.helm(helm, ["get", "notes", self.name, "-n", self.ns]);
        assert!(
            notes.contains(&format!(
                "{} is installed. Literal: {{{{ not a template }}}}.",
                self.name
            )),
            "{what}: {notes}"
        );
        self.verify_objects(env, what);
    }
}

/// web's Helm 2 history before the save: `helm history` rows and each
/// revision's manifest.
pub(crate) struct Helm2History {
    rows: Vec<Value>,
    manifests: Vec<String>,
}

impl Helm2History {
    pub(crate) fn record(tiller: &real::RealTiller) -> Helm2History {
        let out = tiller.helm2_ok(&["history", "web", "--max", "100", "-o", "json"]);
        let rows: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(rows.len(), 2, "web has 2 revisions: {out}");
        let manifests = rows
            .iter()
            .map(|r| {
                let rev = r["revision"].to_string();
                tiller.helm2_ok(&["get", "manifest", "web", "--revision", &rev])
            })
            .collect();
        Helm2History { rows, manifests }
    }

    /// Helm 3/4's history of the migrated web: the same revisions, statuses
    /// (Helm 3's names), charts and descriptions, and the same manifest for
    /// each revision.
    pub(crate) fn verify(&self, env: &cluster::TestEnv, helm: cluster::Helm, what: &str) {
        let out = env.helm(helm, ["history", "web", "-n", "h2app", "-o", "json"]);
        let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
        let pick = |r: &Value| {
            (
                r["revision"].as_u64(),
                r["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                r["chart"].clone(),
                r["description"].clone(),
            )
        };
        // Helm 2's history has no app version column; the chart's is 2.0.1.
        for r in &rows {
            assert_eq!(r["app_version"], "2.0.1", "{what}: {r}");
        }
        assert_eq!(
            rows.iter().map(pick).collect::<Vec<_>>(),
            self.rows.iter().map(pick).collect::<Vec<_>>(),
            "{what}: helm history of web"
        );
        for (row, manifest) in self.rows.iter().zip(&self.manifests) {
            let rev = row["revision"].to_string();
            let got = env.helm(
                helm,
                ["get", "manifest", "web", "-n", "h2app", "--revision", &rev],
            );
            assert_eq!(
                got.trim(),
                manifest.trim(),
                "{what}: manifest of web revision {rev}"
            );
        }
    }
}
