//! CustomResourceDefinitions a snapshot needs. A release's custom resources
//! cannot be created without their CRD, and CRDs shipped in a subchart's
//! `crds/` are in neither the release record nor its manifest, so save
//! captures them from the API.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, ObjectMeta};

use super::SourceError;
use crate::snapshot::{IndexCrd, crd_path, sha256_hex};

/// The annotation `kubectl apply` adds; never stored or restored.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A CRD ready to store: its row and its JSON.
pub struct CapturedCrd {
    /// The index row.
    pub row: IndexCrd,
    /// The cleaned object as JSON.
    pub json: Vec<u8>,
}

/// Strips what the server owns (status, uid, resourceVersion, managed
/// fields, timestamps) so the object can be created in another cluster.
pub fn clean(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let m = crd.metadata;
    let mut annotations = m.annotations.unwrap_or_default();
    annotations.remove(LAST_APPLIED);
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: m.name,
            labels: m.labels,
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..Default::default()
        },
        spec: crd.spec,
        status: None,
    }
}

/// Fetches the CRDs defining any of `kinds` (`(group, kind)`), sorted by name.
pub async fn capture(
    client: &kube::Client,
    kinds: &BTreeSet<(String, String)>,
) -> Result<Vec<CapturedCrd>, SourceError> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| SourceError::Api {
            what: "CustomResourceDefinitions",
            cause: crate::cluster::describe(&e),
        })?;
    let mut out = Vec::new();
    for crd in list.items {
        let key = (crd.spec.group.clone(), crd.spec.names.kind.clone());
        if !kinds.contains(&key) {
            continue;
        }
        let name = crd.metadata.name.clone().unwrap_or_default();
        let json = serde_json::to_vec(&clean(crd))
            .map_err(|e| SourceError::Write(format!("cannot encode CRD {name}: {e}")))?;
        out.push(CapturedCrd {
            row: IndexCrd {
                path: crd_path(&name).map_err(|e| SourceError::Write(e.to_string()))?,
                name,
                group: key.0,
                kind: key.1,
                size: json.len() as u64,
                sha256: sha256_hex(&json),
                extra: Default::default(),
            },
            json,
        });
    }
    out.sort_by(|a, b| a.row.name.cmp(&b.row.name));
    Ok(out)
}
