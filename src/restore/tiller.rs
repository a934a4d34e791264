//! `load --to-tiller`: restore a Helm 2 snapshot into a Tiller.
//!
//! The plan is the same as for Helm 3/4 ([`crate::restore::plan`]); each step
//! sends Tiller the frozen chart of [`super::frozen_helm2::tiller_chart`]:
//! InstallRelease (with `reuse_name` when the name belongs to a deleted, not
//! purged, release), UpdateRelease with `reset_values` for `--upgrade`, and
//! UninstallRelease with `purge` followed by InstallRelease for `--replace`.
//! A failed install is purged again, so nothing is left half-applied and a
//! second `load` can complete it.
//!
//! Tiller runs a chart's `crd-install` hooks only to create CRDs: when a CRD
//! is already there, or when Tiller created it but cannot wait for it (Tiller
//! reads CRDs as `apiextensions.k8s.io/v1beta1`, which Kubernetes 1.22 and
//! later no longer serve), the install fails before anything else is done,
//! and is sent again without those hooks, as Helm 2's `--no-crd-hook`.

use std::collections::HashSet;

use super::execute::{Outcome, Target};
use super::plan::{Action, Step};
use crate::release::ReleaseKey;
use crate::tiller::TillerError;
use crate::tiller::client::Tiller;
use crate::tiller::hapi::release::hook::Event;
use crate::tiller::hapi::release::status::Code;
use crate::tiller::hapi::services::tiller::{
    InstallReleaseRequest, UninstallReleaseRequest, UpdateReleaseRequest,
};

/// How long Tiller may take for one operation (Helm 2's default), in seconds.
const TIMEOUT_SECONDS: i64 = 300;

/// The releases a Tiller has.
#[derive(Debug, Default, Clone)]
pub struct Existing {
    /// The releases whose latest revision is not deleted.
    pub installed: HashSet<ReleaseKey>,
    /// Names of deleted releases whose history Tiller keeps (the name is
    /// taken until purged, so installing reuses it).
    pub deleted: HashSet<String>,
}

/// Lists every release of the Tiller (in `scope`, when given).
pub async fn existing(tiller: &Tiller, scope: Option<&str>) -> Result<Existing, TillerError> {
    let listed = tiller
        .list_all(&crate::tiller::record::ALL_CODES, scope, 256)
        .await?;
    let mut out = Existing::default();
    // A Helm 2 release name is unique in the cluster: its newest revision
    // says whether it is installed, and in which namespace.
    for (name, l) in crate::release::newest_by(&listed, |l| l.name.as_str(), |l| l.version) {
        if l.code == Code::Deleted as i32 {
            out.deleted.insert(name.to_owned());
        } else {
            out.installed.insert(ReleaseKey::new(&l.namespace, &l.name));
        }
    }
    Ok(out)
}

/// Tiller as a restore [`Target`]: each step is sent as gRPC calls on
/// `runtime`, from the scheduler's threads (which are not the runtime's).
pub struct TillerTarget {
    /// The connected Tiller.
    pub tiller: Tiller,
    /// The runtime the calls run on (a multi-threaded one, whose own threads
    /// drive the connection).
    pub runtime: tokio::runtime::Handle,
    /// What the Tiller had before the restore.
    pub existing: Existing,
    /// The release description recorded by Tiller.
    pub description: String,
}

impl Target for TillerTarget {
    fn restore(&self, step: &Step, record: &[u8]) -> Outcome {
        let reuse_name = self.existing.deleted.contains(&step.name);
        self.runtime.block_on(execute(
            &self.tiller,
            step,
            record,
            reuse_name,
            &self.description,
        ))
    }
}

/// Restores one step from the record of its revision.
async fn execute(
    tiller: &Tiller,
    step: &Step,
    record: &[u8],
    reuse_name: bool,
    description: &str,
) -> Outcome {
    let release = match crate::tiller::record::decode_wiped(record) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let (chart, values) = match super::frozen_helm2::tiller_chart(&release) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let values = ValuesGuard(values);
    let crd_hooks = release
        .hooks
        .iter()
        .any(|h| h.events.contains(&(Event::CrdInstall as i32)));
    let (chart_ref, values_ref) = (&chart, &values);
    let install = |reuse_name: bool| {
        move |disable_crd_hook: bool| InstallReleaseRequest {
            chart: Some(chart_ref.clone()),
            values: Some(values_ref.0.clone()),
            name: step.name.clone(),
            namespace: step.namespace.clone(),
            reuse_name,
            disable_crd_hook,
            timeout: TIMEOUT_SECONDS,
            description: description.to_owned(),
            ..Default::default()
        }
    };
    let purge = || UninstallReleaseRequest {
        name: step.name.clone(),
        purge: true,
        timeout: TIMEOUT_SECONDS,
        description: description.to_owned(),
        ..Default::default()
    };
    let result = match step.action {
        Action::Install => match install_release(tiller, install(reuse_name), crd_hooks).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave nothing half-applied: Tiller keeps a failed install's
                // record (and whatever it created); purge it.
                let exists = tiller
                    .history_raw(&step.name)
                    .await
                    .is_ok_and(|h| !h.is_empty());
                if exists && tiller.uninstall(purge()).await.is_ok() {
                    Err(format!("{e} (the partial release was purged)"))
                } else {
                    Err(e.to_string())
                }
            }
        },
        Action::Upgrade => tiller
            .update(UpdateReleaseRequest {
                name: step.name.clone(),
                chart: Some(chart.clone()),
                values: Some(values.0.clone()),
                reset_values: true,
                timeout: TIMEOUT_SECONDS,
                description: description.to_owned(),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(cause),
        Action::Replace | Action::Complete => match tiller.uninstall(purge()).await {
            Err(e) => Err(format!(
                "uninstall before reinstalling failed: {}",
                cause(e)
            )),
            Ok(()) => install_release(tiller, install(false), crd_hooks)
                .await
                .map_err(|e| format!("uninstalled, but reinstalling failed: {e}")),
        },
        // Not restored: the scheduler reports these without a target.
        Action::Skip(_) | Action::Refuse(_) => Ok(()),
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    }
}

/// Whether Tiller's message says a `crd-install` hook could not run because
/// its CRD is there: it exists already (Tiller creates a hook's objects and
/// never updates them), or Tiller created it and cannot read it back as the
/// `v1beta1` CRD it waits for.
fn crd_hook_blocked(cause: &str) -> bool {
    (cause.contains("customresourcedefinitions") && cause.contains("already exists"))
        || cause.contains("unable to convert to CRD type")
}

/// InstallRelease with the request `request(disable_crd_hook)`; when the
/// chart's `crd-install` hooks are blocked ([`crd_hook_blocked`]), again
/// without them. A CRD Tiller has just created may not be served yet when
/// Tiller validates the custom resources of the manifest: that is retried
/// for a few seconds.
async fn install_release<F>(tiller: &Tiller, request: F, crd_hooks: bool) -> Result<(), Refused>
where
    F: Fn(bool) -> InstallReleaseRequest,
{
    let first = match tiller.install(request(false)).await {
        Ok(_) => return Ok(()),
        Err(e) => Refused(e),
    };
    if !crd_hooks || !crd_hook_blocked(&first.to_string()) {
        return Err(first);
    }
    let mut last = first;
    for _ in 0..10 {
        match tiller.install(request(true)).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Refused(e),
        }
        if !last.to_string().contains("no matches for kind") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(last)
}

/// Wipes the user's values when dropped.
struct ValuesGuard(crate::tiller::hapi::chart::Config);

impl Drop for ValuesGuard {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0.raw);
    }
}

/// A failed Tiller call, shown as Tiller's own message ([`cause`]). It
/// reports no `source()`: its text is the error's.
#[derive(Debug, thiserror::Error)]
#[error("{}", cause_of(.0))]
struct Refused(TillerError);

/// Tiller's own message, without helm-bulk's "Tiller X failed:" prefix.
fn cause(e: TillerError) -> String {
    cause_of(&e)
}

/// [`cause`] of a borrowed error.
fn cause_of(e: &TillerError) -> String {
    match e {
        TillerError::Call { cause, .. } => cause.clone(),
        other => other.to_string(),
    }
}
