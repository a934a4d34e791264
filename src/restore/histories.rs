//! The history passes of a load: each release's saved revisions read from
//! the snapshot again ([`super::stream::Rereader::histories`]), a few
//! releases at a time, and written to Helm's storage ([`run_history_read`])
//! or compared with what it holds, to count a release whose restored
//! history load wrote as deployed ([`recognize`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::history::{self, Keep};
use super::load::LoadError;
use super::plan::{Action, Step, targets};
use crate::release::{Installed, ReleaseId as _, ReleaseKey};
use crate::snapshot::Index;

/// Counts as deployed each release of `existing` whose restored history
/// load wrote ([`history::recognize`]), reading the histories of those
/// that are not deployed (and not frozen) from the snapshot again, a few
/// at a time.
pub fn recognize(
    runtime: &tokio::runtime::Runtime,
    storage: &history::Storage,
    reread: &super::stream::Rereader,
    statuses: &[String],
    keep: Keep,
    existing: &mut HashMap<ReleaseKey, Installed>,
) -> Result<(), LoadError> {
    let candidates: BTreeMap<ReleaseKey, u32> = restored(reread.index(), statuses)
        .into_iter()
        .filter(|(k, _)| {
            existing
                .get(k)
                .is_some_and(|e| e.status != "deployed" && !e.frozen)
        })
        .collect();
    let helm2 = reread.index().source.kind == crate::snapshot::SourceKind::Tiller;
    let mut error = None;
    reread.histories(&candidates, keep, helm2, 16, |batch| {
        match runtime.block_on(history::recognize(storage, &batch, existing)) {
            Ok(()) => true,
            Err(e) => {
                error = Some(LoadError::Storage(e));
                false
            }
        }
    })?;
    error.map_or(Ok(()), Err)
}

/// The restored revision of each release: `(namespace, name)` → revision.
pub fn restored(index: &Index, statuses: &[String]) -> BTreeMap<ReleaseKey, u32> {
    targets(index, statuses)
        .into_iter()
        .map(|(k, t)| (k, t.row.revision))
        .collect()
}

/// The history of each release to restore, by `(namespace, name)`.
pub type Histories = BTreeMap<ReleaseKey, history::Wanted>;

/// Restores the history of the steps' releases that this load installed or
/// that were already installed (not of upgraded or refused ones); in a dry
/// run, says what it would write. `stopped`: load was interrupted.
pub fn run_history(
    runtime: &tokio::runtime::Runtime,
    storage: &history::Storage,
    histories: &Histories,
    steps: &[Step],
    dry_run: bool,
    jobs: usize,
    stopped: &dyn Fn() -> bool,
) -> Vec<history::Outcome> {
    let releases: Vec<(&history::Wanted, bool)> = steps
        .iter()
        .filter(|s| s.selected && !matches!(s.action, Action::Upgrade | Action::Refuse(_)))
        .filter_map(|s| {
            let w = histories.get(s.release_id())?;
            let fresh = matches!(
                s.action,
                Action::Install | Action::Complete | Action::Replace
            );
            Some((w, fresh))
        })
        .collect();
    runtime.block_on(history::restore_all(
        storage, &releases, dry_run, jobs, stopped,
    ))
}

/// [`run_history`], the histories read from the snapshot again a few
/// releases at a time: only those of the releases [`run_history`] writes.
#[allow(clippy::too_many_arguments)]
pub fn run_history_read(
    runtime: &tokio::runtime::Runtime,
    storage: &history::Storage,
    reread: &super::stream::Rereader,
    statuses: &[String],
    keep: Keep,
    steps: &[Step],
    dry_run: bool,
    jobs: usize,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<history::Outcome>, LoadError> {
    let written: BTreeSet<ReleaseKey> = steps
        .iter()
        .filter(|s| s.selected && !matches!(s.action, Action::Upgrade | Action::Refuse(_)))
        .map(|s| s.release_key())
        .collect();
    let targets: BTreeMap<ReleaseKey, u32> = restored(reread.index(), statuses)
        .into_iter()
        .filter(|(k, _)| written.contains(k))
        .collect();
    let helm2 = reread.index().source.kind == crate::snapshot::SourceKind::Tiller;
    let mut outcomes = Vec::new();
    reread.histories(&targets, keep, helm2, jobs.max(1) * 4, |batch| {
        outcomes.extend(run_history(
            runtime, storage, &batch, steps, dry_run, jobs, stopped,
        ));
        !stopped()
    })?;
    Ok(outcomes)
}
