//! Creates the CustomResourceDefinitions that releases being restored need,
//! before the releases. An existing CRD is never modified, and a CRD that a
//! release's frozen chart installs from its `crds/` is left to helm (see
//! [`super::load::crds_to_create`]). CRDs are created with a plain create, not client-side
//! apply, so very large ones do not hit the 256 KiB limit of the
//! last-applied annotation.
//!
//! The stored JSON is sent as it is, never parsed into typed objects, so the
//! created CRD equals the saved one field for field (numbers, key order and
//! fields this version does not know included), and the create names its
//! field manager, [`FIELD_MANAGER`].

use std::time::{Duration, Instant};

use kube::api::{GetParams, PostParams};
use serde::Deserialize;

use crate::snapshot::IndexCrd;
use crate::source::crds::{CRD_API, RawCrd};

/// The field manager of everything helm-bulk itself writes to a cluster.
pub const FIELD_MANAGER: &str = "helm-bulk";

/// What happened to one CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdOutcome {
    /// It was missing and was created (and is established).
    Created,
    /// It exists already; left untouched.
    Exists,
    /// A release's frozen chart installs it from its `crds/`: left to helm.
    LeftToHelm(String),
    /// Dry run: it would be created.
    WouldCreate,
    /// Creating it failed.
    Failed(String),
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    status: Option<Conditions>,
}

#[derive(Deserialize)]
struct Conditions {
    #[serde(default)]
    conditions: Option<Vec<Condition>>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

/// The CRD's live JSON, `None` if it does not exist.
async fn get(client: &kube::Client, name: &str) -> Result<Option<String>, crate::source::ApiCause> {
    use crate::source::ApiCause;
    let request = kube::core::Request::new(CRD_API)
        .get(name, &GetParams::default())
        .map_err(ApiCause::Request)?;
    match client.request_text(request).await {
        Ok(text) => Ok(Some(text)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(crate::cluster::KubeFailure(e).into()),
    }
}

fn established(json: &str) -> bool {
    serde_json::from_str::<Status>(json)
        .ok()
        .and_then(|s| s.status)
        .and_then(|s| s.conditions)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Ensures each CRD exists, except those named in `left_to_helm` (name →
/// the release whose chart installs it); returns `(name, outcome)` in the
/// given order.
pub async fn ensure(
    client: &kube::Client,
    crds: &[(IndexCrd, Vec<u8>)],
    left_to_helm: &std::collections::BTreeMap<String, String>,
    dry_run: bool,
) -> Vec<(String, CrdOutcome)> {
    let mut out = Vec::new();
    for (row, json) in crds {
        let outcome = match get(client, &row.name).await {
            Ok(Some(_)) => CrdOutcome::Exists,
            Ok(None) => match left_to_helm.get(&row.name) {
                Some(release) => CrdOutcome::LeftToHelm(release.clone()),
                None if dry_run => CrdOutcome::WouldCreate,
                None => create(client, row, json).await,
            },
            Err(e) => CrdOutcome::Failed(e.to_string()),
        };
        out.push((row.name.clone(), outcome));
    }
    out
}

async fn create(client: &kube::Client, row: &IndexCrd, json: &[u8]) -> CrdOutcome {
    // Checked, not converted: the bytes sent are the stored ones.
    match std::str::from_utf8(json)
        .ok()
        .and_then(|text| serde_json::from_str::<RawCrd>(text).ok())
    {
        Some(crd) if crd.metadata.name == row.name => {}
        _ => {
            return CrdOutcome::Failed(format!(
                "the snapshot's CRD {} is not a CustomResourceDefinition of that name",
                row.name
            ));
        }
    }
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    let request = match kube::core::Request::new(CRD_API).create(&params, json.to_vec()) {
        Ok(r) => r,
        Err(e) => return CrdOutcome::Failed(e.to_string()),
    };
    match client.request_text(request).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => return CrdOutcome::Exists,
        Err(e) => return CrdOutcome::Failed(crate::cluster::describe(&e)),
    }
    // Custom resources can only be created once the CRD is established.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match get(client, &row.name).await {
            Ok(Some(c)) if established(&c) => return CrdOutcome::Created,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => {
                return CrdOutcome::Failed("created, but not established within 60s".to_owned());
            }
            Err(e) => return CrdOutcome::Failed(e.to_string()),
        }
    }
}
