//! CustomResourceDefinitions a snapshot needs. A release's custom resources
//! cannot be created without their CRD, and CRDs shipped in a subchart's
//! `crds/` are in neither the release record nor its manifest, so save
//! captures them from the API.
//!
//! Which: every CRD whose API group a saved release uses, through an object
//! of its manifest or hooks or a CRD it ships (in its templates or its
//! chart's `crds/`). A subchart's `crds/` usually defines a whole group for
//! an operator, and the release only creates objects of some of its kinds:
//! taking the group brings back the others, which the operator watches.
//!
//! How: byte-exact. The list is read as raw JSON and each CRD's `spec` is
//! kept as the API server wrote it (`serde_json::value::RawValue`), never
//! parsed into numbers. A typed parse rounded values such as
//! `9.223372036854775e+18` (k8s-openapi's `f64` fields, serde_json's default
//! float parsing) and dropped fields it does not know. Only `metadata` is
//! parsed, to keep its name, labels and annotations and drop what the server
//! owns.

use std::collections::BTreeMap;

use kube::api::ListParams;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{ApiCause, SourceError};
use crate::release::{GroupKind, ReleaseKey};
use crate::snapshot::{IndexCrd, crd_path, sha256_hex};

/// The annotation `kubectl apply` adds; never stored or restored.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The API path of CustomResourceDefinitions.
pub const CRD_API: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// CRDs per list request: they can be over 1 MiB each.
const PAGE: u32 = 25;

/// A CRD ready to store: its row and its JSON.
pub struct CapturedCrd {
    /// The index row.
    pub row: IndexCrd,
    /// The cleaned object as JSON.
    pub json: Vec<u8>,
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow, default)]
    items: Vec<&'a RawValue>,
    #[serde(default)]
    metadata: PageMeta,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    next: Option<String>,
}

/// The parts of a CRD that helm-bulk reads; `spec` stays raw.
#[derive(Deserialize)]
pub struct RawCrd<'a> {
    /// `metadata`, parsed (strings only).
    pub metadata: CrdMeta,
    /// `spec`, exactly as written.
    #[serde(borrow)]
    pub spec: &'a RawValue,
}

/// A CRD's metadata: what is kept of it.
#[derive(Deserialize)]
pub struct CrdMeta {
    /// `<plural>.<group>`.
    #[serde(default)]
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: Option<Map<String, Value>>,
    /// Annotations.
    #[serde(default)]
    pub annotations: Option<Map<String, Value>>,
}

/// The group and kind of a CRD's spec.
#[derive(Deserialize)]
pub struct CrdNames {
    /// `spec.group`.
    pub group: String,
    /// `spec.names`.
    pub names: Kind,
}

/// `spec.names.kind`.
#[derive(Deserialize)]
pub struct Kind {
    /// The kind.
    pub kind: String,
}

impl RawCrd<'_> {
    /// `(group, kind)` of the CRD.
    pub fn names(&self) -> Result<CrdNames, serde_json::Error> {
        serde_json::from_str(self.spec.get())
    }
}

/// The CRD as it is stored: `apiVersion`, `kind`, `metadata` with its name,
/// labels and annotations (without kubectl's last-applied one), and the
/// spec byte for byte. What the server owns (status, uid, resourceVersion,
/// managed fields, timestamps) is left out, so the object can be created in
/// another cluster.
pub fn clean(crd: &RawCrd<'_>) -> Result<Vec<u8>, serde_json::Error> {
    let m = &crd.metadata;
    let mut meta = Map::new();
    meta.insert("name".to_owned(), Value::from(m.name.as_str()));
    if let Some(l) = m.labels.as_ref().filter(|l| !l.is_empty()) {
        meta.insert("labels".to_owned(), Value::Object(l.clone()));
    }
    let mut annotations = m.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_APPLIED);
    if !annotations.is_empty() {
        meta.insert("annotations".to_owned(), Value::Object(annotations));
    }
    let mut out = Vec::with_capacity(crd.spec.get().len() + 256);
    out.extend_from_slice(
        br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":"#,
    );
    serde_json::to_writer(&mut out, &meta)?;
    out.extend_from_slice(br#","spec":"#);
    out.extend_from_slice(crd.spec.get().as_bytes());
    out.push(b'}');
    Ok(out)
}

/// Fetches the CRDs of every API group in `kinds` (each kind → the first
/// release using it), sorted by name, each with why it was taken.
pub async fn capture(
    client: &kube::Client,
    kinds: &BTreeMap<GroupKind, ReleaseKey>,
) -> Result<Vec<CapturedCrd>, SourceError> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let api_error = |cause: ApiCause| SourceError::Api {
        what: "CustomResourceDefinitions",
        cause,
    };
    let mut groups: BTreeMap<&str, &ReleaseKey> = BTreeMap::new();
    for (gk, release) in kinds {
        groups.entry(gk.group.as_str()).or_insert(release);
    }
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(token) = &next {
            lp = lp.continue_token(token);
        }
        let request = kube::core::Request::new(CRD_API)
            .list(&lp)
            .map_err(|e| api_error(ApiCause::Request(e)))?;
        let text = client
            .request_text(request)
            .await
            .map_err(|e| api_error(crate::cluster::KubeFailure(e).into()))?;
        let page: Page =
            serde_json::from_str(&text).map_err(|e| api_error(ApiCause::InvalidList(e)))?;
        for item in page.items {
            let crd: RawCrd =
                serde_json::from_str(item.get()).map_err(|e| api_error(ApiCause::InvalidCrd(e)))?;
            let names = crd.names().map_err(|source| {
                api_error(ApiCause::CrdNames {
                    name: crd.metadata.name.clone(),
                    source,
                })
            })?;
            let gk = GroupKind::new(names.group.clone(), names.names.kind.clone());
            let reason = match (kinds.get(&gk), groups.get(names.group.as_str())) {
                (Some(release), _) => format!("kind {} used by {release}", names.names.kind),
                (None, Some(release)) => format!("API group {} used by {release}", names.group),
                (None, None) => continue,
            };
            let name = crd.metadata.name.clone();
            let json = clean(&crd).map_err(|source| SourceError::EncodeCrd {
                name: name.clone(),
                source,
            })?;
            out.push(CapturedCrd {
                row: IndexCrd {
                    path: crd_path(&name)?,
                    name,
                    group: names.group,
                    kind: names.names.kind,
                    size: json.len() as u64,
                    sha256: sha256_hex(&json),
                    reason,
                    extra: Default::default(),
                },
                json,
            });
        }
        next = page.metadata.next.filter(|t| !t.is_empty());
        if next.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| a.row.name.cmp(&b.row.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleaned_crd_keeps_its_spec_byte_for_byte() {
        let spec = r#"{"group":"g.test","names":{"kind":"W","plural":"ws"},"versions":[{"name":"v1","schema":{"openAPIV3Schema":{"type":"object","properties":{"n":{"type":"integer","maximum":9.223372036854775e+18,"minimum":-9223372036854775808},"f":{"type":"number","multipleOf":0.1000000000000000055511151231257827}}}}}],"x-unknown":{"b":1,"a":2}}"#;
        let live = format!(
            r#"{{"kind":"CustomResourceDefinition","apiVersion":"apiextensions.k8s.io/v1","metadata":{{"name":"ws.g.test","uid":"u","resourceVersion":"7","generation":1,"creationTimestamp":"2026-01-01T00:00:00Z","managedFields":[{{"manager":"helm"}}],"labels":{{"a":"b"}},"annotations":{{"{LAST_APPLIED}":"x","helm.sh/resource-policy":"keep"}}}},"spec":{spec},"status":{{"conditions":[]}}}}"#
        );
        let crd: RawCrd = serde_json::from_str(&live).unwrap();
        let names = crd.names().unwrap();
        assert_eq!(
            (names.group.as_str(), names.names.kind.as_str()),
            ("g.test", "W")
        );
        let json = String::from_utf8(clean(&crd).unwrap()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{{"name":"ws.g.test","labels":{{"a":"b"}},"annotations":{{"helm.sh/resource-policy":"keep"}}}},"spec":{spec}}}"#
            )
        );
    }
}
