//! Reading the state of a cluster: the objects a release made, as
//! comparable JSON, and the CRDs.

use super::*;

/// One object of a release's manifest (or hooks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjRef {
    pub(crate) kind: String,
    pub(crate) group: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ObjRef {
    pub(crate) fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// `Kind.group/name`, as kubectl get takes it.
    pub(crate) fn kubectl_arg(&self) -> String {
        if self.group.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}.{}/{}", self.kind, self.group, self.name)
        }
    }
}

/// The objects of a multi-document YAML manifest, as helm get prints it.
pub(crate) fn parse_refs(yaml: &str, release_namespace: &str) -> Vec<ObjRef> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("the manifest is not valid YAML ({e}):\n{yaml}"));
        if v.is_null() {
            continue;
        }
        // Test hooks run only with `helm test`: no object of theirs exists.
        let hook = v["metadata"]["annotations"]["helm.sh/hook"]
            .as_str()
            .unwrap_or_default();
        if hook
            .split(',')
            .any(|e| matches!(e.trim(), "test" | "test-success"))
        {
            continue;
        }
        let api_version = v["apiVersion"].as_str().unwrap_or_default();
        out.push(ObjRef {
            kind: v["kind"].as_str().unwrap_or_default().to_owned(),
            group: api_version
                .rsplit_once('/')
                .map(|(g, _)| g.to_owned())
                .unwrap_or_default(),
            namespace: v["metadata"]["namespace"]
                .as_str()
                .unwrap_or(release_namespace)
                .to_owned(),
            name: v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    out.sort();
    out
}

/// What of a live object must survive a round trip: everything but metadata
/// and status (so data, stringData, type, spec), without the fields the
/// server generates.
pub(crate) fn comparable(mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    let job = obj["kind"] == "Job";
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        if job {
            // The Job controller labels each Job's Pods with its uid.
            spec.remove("selector");
            if let Some(labels) = spec
                .get_mut("template")
                .and_then(|t| t["metadata"]["labels"].as_object_mut())
            {
                labels.remove("batch.kubernetes.io/controller-uid");
                labels.remove("controller-uid");
            }
        }
    }
    obj
}

/// The live objects (those that exist) among `refs`, by [`ObjRef::key`].
pub(crate) fn live_objects(env: &TestEnv, refs: &[ObjRef]) -> BTreeMap<String, Value> {
    let mut by_ns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in refs {
        by_ns
            .entry(r.namespace.as_str())
            .or_default()
            .push(r.kubectl_arg());
    }
    let mut out = BTreeMap::new();
    for (ns, args) in by_ns {
        let mut cmd = vec![
            "get".to_owned(),
            "-n".to_owned(),
            ns.to_owned(),
            "--ignore-not-found".to_owned(),
            "-o".to_owned(),
            "json".to_owned(),
        ];
        cmd.extend(args);
        let stdout = env.kubectl(&cmd);
        if stdout.trim().is_empty() {
            continue;
        }
        let v = parse_json(&stdout, "kubectl get");
        let items = if v["kind"] == "List" {
            v["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![v]
        };
        for item in items {
            let key = format!(
                "{}/{}/{}",
                item["kind"].as_str().unwrap_or_default(),
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default()
            );
            out.insert(key, comparable(item));
        }
    }
    out
}

/// The fixture CRDs present in the cluster: name → their labels, their
/// annotations, and their `spec` byte for byte as the API server sends it
/// (raw JSON, never parsed into numbers: a rounded bound must show).
pub(crate) fn crd_specs(env: &TestEnv) -> BTreeMap<String, (Value, Value, String)> {
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Vec<Crd<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Crd<'a> {
        metadata: Value,
        #[serde(borrow)]
        spec: &'a serde_json::value::RawValue,
    }
    let stdout = env.kubectl([
        "get",
        "--raw",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ]);
    let list: List =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("the CRD list is not JSON ({e})"));
    list.items
        .into_iter()
        .filter_map(|c| {
            let name = c.metadata["name"].as_str().unwrap_or_default().to_owned();
            CRDS.contains(&name.as_str()).then(|| {
                (
                    name,
                    (
                        c.metadata["labels"].clone(),
                        c.metadata["annotations"].clone(),
                        c.spec.get().to_owned(),
                    ),
                )
            })
        })
        .collect()
}
