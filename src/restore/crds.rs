//! Creates the CustomResourceDefinitions that releases being restored need,
//! before the releases. An existing CRD is never modified. CRDs are created
//! with a plain create, not client-side apply, so very large ones do not hit
//! the 256 KiB limit of the last-applied annotation.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

use crate::snapshot::IndexCrd;

/// What happened to one CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdOutcome {
    /// It was missing and was created (and is established).
    Created,
    /// It exists already; left untouched.
    Exists,
    /// Dry run: it would be created.
    WouldCreate,
    /// Creating it failed.
    Failed(String),
}

fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Ensures each CRD exists; returns `(name, outcome)` in the given order.
pub async fn ensure(
    client: &kube::Client,
    crds: &[(IndexCrd, Vec<u8>)],
    dry_run: bool,
) -> Vec<(String, CrdOutcome)> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut out = Vec::new();
    for (row, json) in crds {
        let outcome = match api.get_opt(&row.name).await {
            Ok(Some(_)) => CrdOutcome::Exists,
            Ok(None) if dry_run => CrdOutcome::WouldCreate,
            Ok(None) => create(&api, row, json).await,
            Err(e) => CrdOutcome::Failed(crate::cluster::describe(&e)),
        };
        out.push((row.name.clone(), outcome));
    }
    out
}

async fn create(api: &Api<CustomResourceDefinition>, row: &IndexCrd, json: &[u8]) -> CrdOutcome {
    let crd: CustomResourceDefinition = match serde_json::from_slice(json) {
        Ok(c) => c,
        Err(e) => return CrdOutcome::Failed(format!("stored CRD is not valid: {e}")),
    };
    match api.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => return CrdOutcome::Exists,
        Err(e) => return CrdOutcome::Failed(crate::cluster::describe(&e)),
    }
    // Custom resources can only be created once the CRD is established.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.get_opt(&row.name).await {
            Ok(Some(c)) if established(&c) => return CrdOutcome::Created,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(_) => {
                return CrdOutcome::Failed("created, but not established within 60s".to_owned());
            }
            Err(e) => return CrdOutcome::Failed(crate::cluster::describe(&e)),
        }
    }
}
