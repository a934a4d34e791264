//! The load pipeline's steps, between the decrypted snapshot and the helm
//! (or Tiller) calls: which records to keep ([`read`]), what the target has
//! ([`existing`]), the plan ([`prepare`]: [`super::plan`] and the CRDs to
//! create), the preflight ([`run_preflight`]) and the final check that every
//! selected release is deployed ([`not_deployed`]). The command line strings
//! them together and prints between them.
//!
//! ```text
//! store input ─▶ signing::verify ─▶ vault::open ─▶ read (records to restore)
//!   ─▶ existing ─▶ prepare (plan, CRDs) ─▶ run_preflight ─▶ crds::ensure
//!   ─▶ execute::run_plan (helm │ Tiller target) ─▶ not_deployed
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use zeroize::Zeroizing;

use super::execute::{Outcome, Report, Stop};
use super::helm::HelmRunner;
use super::history::{self, Keep};
use super::plan::{Action, Mode, PlanInput, Step, plan, targets};
use super::preflight;
use crate::release::{Installed, ReleaseId, ReleaseKey, RevisionId, RevisionKey};
use crate::select::Selection;
use crate::snapshot::{Entry, Index, IndexCrd, Limits, SnapshotError};
use crate::source::SourceError;
use crate::source::helm::{Driver, installed_releases};

/// Why a load cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The helm binary does not run.
    #[error("cannot run helm (`{0}`); set HELM_BIN or put helm on PATH")]
    NoHelm(String),
    /// The preflight could not ask the cluster which APIs it serves.
    #[error("preflight: {0}")]
    Preflight(String),
}

/// What the plan needs besides the snapshot and the target's releases.
pub struct LoadOptions {
    /// Include/exclude patterns.
    pub selection: Selection,
    /// Only this namespace, if set.
    pub scope: Option<String>,
    /// Revision statuses that may be restored.
    pub statuses: Vec<String>,
    /// What to do with releases the target has.
    pub mode: Mode,
    /// Releases that go first, one at a time (`order:`).
    pub order: Vec<String>,
    /// Releases installed at the same time.
    pub jobs: usize,
}

/// A decrypted, verified snapshot, reduced to what may be restored.
pub struct Snapshot {
    /// The index.
    pub index: Index,
    /// The records of the revisions that may be restored, by
    /// `(namespace, name, revision)`.
    pub records: HashMap<RevisionKey, Zeroizing<Vec<u8>>>,
    /// Every stored CRD with its JSON.
    pub crds: StoredCrds,
}

impl Snapshot {
    /// Whether it holds Helm 2 (Tiller) records.
    pub fn is_helm2(&self) -> bool {
        self.index.source.kind == crate::snapshot::SourceKind::Tiller
    }

    /// The record of a step.
    pub fn record(&self, step: &Step) -> Option<Zeroizing<Vec<u8>>> {
        self.records.get(step.revision_id()).cloned()
    }
}

/// Reads the decrypted snapshot, checking every entry against the index,
/// and keeps the records of the revisions `statuses` allow to restore.
pub fn read(plain: impl std::io::Read, statuses: &[String]) -> Result<Snapshot, SnapshotError> {
    read_with_history(plain, statuses, Keep::None)
}

/// [`read`], keeping also the records of the history `keep` restores
/// ([`super::history`]).
pub fn read_with_history(
    plain: impl std::io::Read,
    statuses: &[String],
    keep: Keep,
) -> Result<Snapshot, SnapshotError> {
    let mut wanted: Option<std::collections::HashSet<RevisionKey>> = None;
    let mut records: HashMap<RevisionKey, Zeroizing<Vec<u8>>> = HashMap::new();
    let mut crds: Vec<(IndexCrd, Vec<u8>)> = Vec::new();
    let index = crate::release::read_checked(plain, &Limits::default(), |index, entry, data| {
        let wanted = wanted.get_or_insert_with(|| {
            let mut w: std::collections::HashSet<_> = targets(index, statuses)
                .values()
                .map(|t| t.row.revision_key())
                .collect();
            w.extend(history::records_needed(
                index,
                &restored(index, statuses),
                keep,
            ));
            w
        });
        match entry {
            Entry::Release(row) => {
                if wanted.contains(row.revision_id()) {
                    records.insert(row.revision_key(), data);
                }
            }
            Entry::Crd(c) => crds.push((c.clone(), data.to_vec())),
        }
        Ok(())
    })?;
    Ok(Snapshot {
        index,
        records,
        crds,
    })
}

/// The releases a cluster's Helm storage has in `scope`.
pub async fn existing(
    client: &kube::Client,
    driver: Driver,
    scope: Option<&str>,
) -> Result<HashMap<ReleaseKey, Installed>, SourceError> {
    installed_releases(client, driver, scope).await
}

/// The releases a Tiller has: a release that is not deleted counts as installed.
pub fn existing_in_tiller(tiller: &super::tiller::Existing) -> HashMap<ReleaseKey, Installed> {
    tiller
        .installed
        .iter()
        .map(|k| {
            let release = Installed {
                revision: 0,
                status: "deployed".to_owned(),
                frozen: false,
            };
            (k.clone(), release)
        })
        .collect()
}

/// The plan and the CRDs to create before it runs.
pub struct Prepared {
    /// One step per release in the snapshot, in the order they run.
    pub steps: Vec<Step>,
    /// The stored CRDs helm-bulk creates before the releases.
    pub crds: StoredCrds,
    /// CRDs left to helm (name → the release whose `crds/` installs them).
    pub left_to_helm: std::collections::BTreeMap<String, String>,
}

/// Plans the restore of `snapshot` onto a target that has `existing`.
pub fn prepare(
    snapshot: &mut Snapshot,
    existing: &HashMap<ReleaseKey, Installed>,
    opts: &LoadOptions,
) -> Prepared {
    let steps = plan(&PlanInput {
        index: &snapshot.index,
        selection: &opts.selection,
        namespace: opts.scope.as_deref(),
        statuses: &opts.statuses,
        existing,
        mode: opts.mode,
        order: &opts.order,
    });
    // The CRDs of the API groups used by the releases that will change (the
    // rule save captures them by), except those a release's frozen chart
    // installs from its `crds/`: helm does, so that Helm 4's server-side
    // apply of them never conflicts with a create by helm-bulk.
    let helm2 = snapshot.is_helm2();
    let (crds, left_to_helm) = crds_to_create(
        std::mem::take(&mut snapshot.crds),
        &steps,
        &snapshot.records,
        helm2,
    );
    Prepared {
        steps,
        crds,
        left_to_helm,
    }
}

/// Which releases selected by the plan are not deployed now, with their
/// state (`failed (revision 2)`, `not installed`).
///
/// With `history`, a release whose restored history ends with a failed
/// upgrade counts as deployed ([`history::recognize`]).
pub async fn not_deployed(
    client: &kube::Client,
    driver: Driver,
    scope: Option<&str>,
    steps: &[Step],
    history: Option<(&history::Storage, &Histories)>,
) -> Result<Vec<(ReleaseKey, String)>, SourceError> {
    let mut now = installed_releases(client, driver, scope).await?;
    if let Some((storage, histories)) = history {
        history::recognize(storage, histories, &mut now)
            .await
            .map_err(|cause| SourceError::Api {
                what: driver.what(),
                cause,
            })?;
    }
    Ok(steps
        .iter()
        .filter(|s| s.selected)
        .filter_map(|s| match now.get(s.release_id()) {
            Some(r) if r.status == "deployed" => None,
            Some(r) => Some((
                s.release_key(),
                format!("{} (revision {})", r.status, r.revision),
            )),
            None => Some((s.release_key(), "not installed".to_owned())),
        })
        .collect())
}

pub use super::helm::helm_bin;

/// How the steps of a run ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Restored (installed, upgraded, replaced or completed).
    pub done: usize,
    /// Skipped.
    pub skipped: usize,
    /// Failed, helm-bulk defects included.
    pub failed: usize,
    /// Failed because helm refused the chart helm-bulk generated.
    pub defects: usize,
    /// Not started (the run was stopped).
    pub not_started: usize,
    /// Failed or stopped while being restored (refusals by the plan not counted).
    pub stopped: usize,
}

/// Counts how the steps ended.
pub fn tally(reports: &[Report]) -> Tally {
    let count = |f: fn(&Report) -> bool| reports.iter().filter(|r| f(r)).count();
    Tally {
        done: count(|r| r.outcome == Outcome::Done),
        skipped: count(|r| matches!(r.outcome, Outcome::Skipped(_))),
        failed: count(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Defect(_))),
        defects: count(|r| matches!(r.outcome, Outcome::Defect(_))),
        not_started: count(|r| r.outcome == Outcome::NotStarted),
        stopped: count(|r| {
            matches!(r.outcome, Outcome::Failed(_) | Outcome::Defect(_))
                && !matches!(r.step.action, Action::Refuse(_))
        }),
    }
}

/// The releases of `not_deployed` that no report explains: not failed, not
/// left unstarted.
pub fn unexplained<'a>(
    reports: &[Report],
    not_deployed: &'a [(ReleaseKey, String)],
) -> Vec<&'a (ReleaseKey, String)> {
    let failed_keys: std::collections::HashSet<ReleaseKey> = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Defect(_)))
        .map(|r| r.step.release_key())
        .collect();
    not_deployed
        .iter()
        .filter(|(k, _)| !failed_keys.contains(k))
        .filter(|(k, _)| {
            !reports.iter().any(|r| {
                r.outcome == Outcome::NotStarted && r.step.release_parts() == k.release_parts()
            })
        })
        .collect()
}

/// Checks that `bin` runs (`helm version`).
pub fn check_helm(bin: &std::path::Path) -> Result<(), LoadError> {
    let out = std::process::Command::new(bin)
        .args(["version", "--short"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(LoadError::NoHelm(bin.display().to_string())),
    }
}

/// What the preflight found.
pub struct Preflight {
    /// Releases checked.
    pub checked: usize,
    /// Each release that would fail, with the reason.
    pub problems: Vec<(ReleaseKey, String)>,
    /// How many of them fail because of a helm-bulk defect.
    pub defects: usize,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Renders the frozen chart of every step that installs or upgrades a
/// release, client side, and checks the APIs its objects need.
pub fn run_preflight<R>(
    runtime: &tokio::runtime::Runtime,
    cluster: &crate::cluster::Cluster,
    runner: &HelmRunner,
    steps: &[Step],
    crds: &[(IndexCrd, Vec<u8>)],
    jobs: usize,
    record: &R,
) -> Result<Preflight, LoadError>
where
    R: Fn(&Step) -> Option<Zeroizing<Vec<u8>>> + Sync,
{
    let started = Instant::now();
    let changing: Vec<&Step> = steps.iter().filter(|s| s.action.changes()).collect();
    // Rendering is client side: use every CPU, whatever --jobs allows the cluster.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rendered = preflight::render_all(runner, &changing, jobs.max(cpus), record);
    // APIs that will exist: stored CRDs (created before the installs) and
    // CRDs in the charts being restored.
    let mut provided: BTreeSet<preflight::Gvk> = BTreeSet::new();
    for (_, json) in crds {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
            provided.extend(preflight::crd_defines(&v));
        }
    }
    let mut wanted = BTreeSet::new();
    for r in rendered.values().flatten() {
        provided.extend(r.defines.iter().cloned());
        wanted.extend(r.objects.iter().cloned());
    }
    let served = runtime
        .block_on(preflight::served(&cluster.client, &wanted))
        .map_err(LoadError::Preflight)?;
    let mut problems = Vec::new();
    let mut defects = 0;
    for step in &changing {
        match rendered.get(step.release_id()) {
            Some(Ok(r)) => {
                let missing = preflight::missing(r, |g| served.contains(g), &provided);
                if !missing.is_empty() {
                    problems.push((step.release_key(), preflight::describe_missing(&missing)));
                }
            }
            Some(Err(e)) => {
                if matches!(e, preflight::Problem::Defect(_)) {
                    defects += 1;
                }
                problems.push((step.release_key(), e.to_string()))
            }
            None => problems.push((step.release_key(), "was not rendered".to_owned())),
        }
    }
    let elapsed = started.elapsed();
    crate::debug::note(|| {
        format!(
            "preflight: {} frozen charts rendered and checked in {:.2}s",
            changing.len(),
            elapsed.as_secs_f64()
        )
    });
    Ok(Preflight {
        checked: changing.len(),
        problems,
        defects,
        elapsed,
    })
}

/// The helm runner for a snapshot: `global_args` go to every helm call
/// (`--kubeconfig`, `--kube-context`) and `driver` as HELM_DRIVER, Helm 2
/// records are frozen as such.
pub fn helm_runner(
    bin: PathBuf,
    global_args: Vec<String>,
    driver: Driver,
    index: &Index,
    helm2: bool,
    stop: Arc<Stop>,
) -> HelmRunner {
    HelmRunner {
        bin,
        global_args,
        driver,
        description: restore_description(index),
        freezer: if helm2 {
            super::frozen_helm2::freeze_record
        } else {
            super::frozen::freeze
        },
        stop,
    }
}

/// The description helm-bulk gives the releases it installs.
pub fn restore_description(index: &Index) -> String {
    format!(
        "Restored by helm-bulk from a snapshot taken {}",
        index.created_at
    )
}

/// The restored revision of each release: `(namespace, name)` → revision.
fn restored(index: &Index, statuses: &[String]) -> BTreeMap<ReleaseKey, u32> {
    targets(index, statuses)
        .into_iter()
        .map(|(k, t)| (k, t.row.revision))
        .collect()
}

/// The release histories of a snapshot to restore ([`super::history`]),
/// its records read with [`read_with_history`]; Helm 2 records are
/// converted to Helm 3 records as `helm 2to3` does.
pub fn histories(
    snapshot: &Snapshot,
    statuses: &[String],
    keep: Keep,
) -> Result<Histories, String> {
    let helm2 = snapshot.is_helm2();
    let index = &snapshot.index;
    history::wanted_all(index, &restored(index, statuses), keep, |ns, n, r| {
        let data = snapshot
            .records
            .get((ns, n, r).revision_id())
            .ok_or("the snapshot has no record of it")?;
        if helm2 {
            super::helm2to3::record_to_helm3(data)
        } else {
            Ok(data.clone())
        }
    })
    .map_err(|e| format!("cannot restore the history of {e}"))
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

/// The snapshot's CRD rows with their JSON.
pub type StoredCrds = Vec<(IndexCrd, Vec<u8>)>;

/// Which stored CRDs helm-bulk creates before the releases: those of an
/// API group that a changing release uses. Returns them and the CRDs left to
/// helm (name → release): those in the `crds/` of a release being installed,
/// when every changing release that uses their kind is one that installs
/// them (a release installed earlier could not wait for another one's).
pub fn crds_to_create(
    mut crds: StoredCrds,
    steps: &[Step],
    records: &HashMap<RevisionKey, Zeroizing<Vec<u8>>>,
    helm2: bool,
) -> (StoredCrds, std::collections::BTreeMap<String, String>) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut groups = BTreeSet::new();
    // (group, kind) → the changing releases that use it.
    let mut users: BTreeMap<crate::release::GroupKind, BTreeSet<String>> = BTreeMap::new();
    // CRD name → the releases whose frozen chart installs it.
    let mut installers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in steps.iter().filter(|s| s.action.changes()) {
        let Some(r) = records.get(s.revision_id()) else {
            continue;
        };
        let kinds = if helm2 {
            crate::tiller::record::kinds_used_bytes(r)
        } else {
            crate::release::kinds_used(r)
        };
        for gk in kinds {
            groups.insert(gk.group.clone());
            users.entry(gk).or_default().insert(s.key());
        }
        if !helm2 && matches!(s.action, Action::Install | Action::Replace) {
            for (_, text) in crate::release::chart_crd_files(r) {
                for name in crate::release::crd_names(&text) {
                    installers.entry(name).or_default().insert(s.key());
                }
            }
        }
    }
    crds.retain(|(c, _)| groups.contains(&c.group));
    let mut left = BTreeMap::new();
    for (c, _) in &crds {
        let Some(by) = installers.get(&c.name) else {
            continue;
        };
        let used_by = users
            .get(&crate::release::GroupKind::new(
                c.group.clone(),
                c.kind.clone(),
            ))
            .cloned()
            .unwrap_or_default();
        if used_by.is_subset(by)
            && let Some(first) = by.iter().next()
        {
            left.insert(c.name.clone(), first.clone());
        }
    }
    (crds, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, group: &str, kind: &str) -> (IndexCrd, Vec<u8>) {
        let row = IndexCrd {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            path: format!("crds/{name}.json"),
            size: 0,
            sha256: String::new(),
            reason: String::new(),
            extra: Default::default(),
        };
        (row, Vec::new())
    }

    fn step(name: &str, action: Action) -> Step {
        Step {
            namespace: "ns".to_owned(),
            name: name.to_owned(),
            revision: 1,
            chart: "c-1".to_owned(),
            action,
            ordered: false,
            labels: Default::default(),
            note: None,
            selected: true,
        }
    }

    /// A record whose manifest holds objects of `kinds` (`apiVersion kind`)
    /// and whose chart's `crds/` holds a CRD named `crd` of `group`/`kind`.
    fn record(objects: &[(&str, &str)], crd: Option<(&str, &str, &str)>) -> Zeroizing<Vec<u8>> {
        use base64::Engine as _;
        let manifest: String = objects
            .iter()
            .map(|(v, k)| {
                format!("---\n# Source: c/templates/x.yaml\napiVersion: {v}\nkind: {k}\n")
            })
            .collect();
        let files: Vec<serde_json::Value> = crd
            .map(|(name, group, kind)| {
                let yaml = format!(
                    "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                     metadata:\n  name: {name}\nspec:\n  group: {group}\n  names:\n    kind: {kind}\n"
                );
                serde_json::json!({"name": "crds/a.yaml",
                    "data": base64::engine::general_purpose::STANDARD.encode(yaml)})
            })
            .into_iter()
            .collect();
        Zeroizing::new(
            serde_json::json!({"manifest": manifest, "chart": {"files": files}})
                .to_string()
                .into_bytes(),
        )
    }

    #[test]
    fn crds_of_used_groups_are_created_and_those_a_chart_installs_left_to_helm() {
        let crds = vec![
            crd("as.g.test", "g.test", "A"),
            crd("bs.g.test", "g.test", "B"),
            crd("cs.other.test", "other.test", "C"),
            crd("ls.l.test", "l.test", "L"),
            crd("ms.m.test", "m.test", "M"),
        ];
        let steps = vec![
            // op installs L and M from its crds/ and uses A (so all of g.test).
            step("op", Action::Install),
            // user uses M too: M must exist before either installs.
            step("user", Action::Install),
            // up is upgraded: helm does not install crds/ on upgrade.
            step("up", Action::Upgrade),
            step("skipped", Action::Skip("exists".to_owned())),
        ];
        let mut records = HashMap::new();
        let mut put = |name: &str, r| {
            records.insert(RevisionKey::new("ns", name, 1), r);
        };
        put(
            "op",
            record(
                &[("g.test/v1", "A"), ("l.test/v1", "L")],
                Some(("ls.l.test", "l.test", "L")),
            ),
        );
        put("user", record(&[("m.test/v1", "M")], None));
        put("up", record(&[], Some(("ms.m.test", "m.test", "M"))));
        put("skipped", record(&[("other.test/v1", "C")], None));
        let (kept, left) = crds_to_create(crds, &steps, &records, false);
        let names: Vec<&str> = kept.iter().map(|(c, _)| c.name.as_str()).collect();
        // bs.g.test for its group; cs.other.test only a skipped release uses.
        assert_eq!(names, ["as.g.test", "bs.g.test", "ls.l.test", "ms.m.test"]);
        let left: Vec<(&str, &str)> = left.iter().map(|(c, r)| (c.as_str(), r.as_str())).collect();
        assert_eq!(left, [("ls.l.test", "ns/op")]);
    }

    /// A Helm 3 record whose manifest holds one object of `kind` in `group`.
    fn helm_record(
        ns: &str,
        name: &str,
        rev: u32,
        status: &str,
        group: &str,
    ) -> crate::release::ReleaseRecord {
        let manifest =
            format!("---\n# Source: c/templates/x.yaml\napiVersion: {group}/v1\nkind: K\n");
        let json = serde_json::json!({
            "name": name, "namespace": ns, "version": rev,
            "info": {"status": status},
            "chart": {"metadata": {"name": "c", "version": "1.0.0"}},
            "manifest": manifest,
        });
        crate::release::ReleaseRecord::from_helm_json(json.to_string().into_bytes()).unwrap()
    }

    fn snapshot_bytes() -> Vec<u8> {
        let index = Index::new(
            "2026-11-26T00:00:00Z".to_owned(),
            crate::snapshot::Source {
                kind: crate::snapshot::SourceKind::Helm3,
                driver: "secret".to_owned(),
                extra: Default::default(),
            },
            crate::snapshot::Cluster {
                server: "https://127.0.0.1:6443".to_owned(),
                context: "test".to_owned(),
                extra: Default::default(),
            },
        );
        let records = vec![
            helm_record("a", "db", 1, "superseded", "g.test"),
            helm_record("a", "db", 2, "deployed", "g.test"),
            helm_record("a", "db", 3, "failed", "g.test"),
            helm_record("b", "web", 1, "deployed", "other.test"),
            helm_record("b", "gone", 1, "uninstalled", "g.test"),
        ];
        crate::snapshot::write_snapshot(Vec::new(), index, &records).unwrap()
    }

    fn options(mode: Mode, statuses: &[&str]) -> LoadOptions {
        LoadOptions {
            selection: Selection::new(&[], &["b/web".to_owned()]).unwrap(),
            scope: None,
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            mode,
            order: Vec::new(),
            jobs: 4,
        }
    }

    fn kept(snapshot: &Snapshot) -> Vec<String> {
        let mut keys: Vec<String> = snapshot
            .records
            .keys()
            .map(|k| format!("{}/{}.v{}", k.namespace, k.name, k.revision))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn read_keeps_only_the_records_that_may_be_restored() {
        let bytes = snapshot_bytes();
        let deployed = read(&bytes[..], &["deployed".to_owned()]).unwrap();
        assert_eq!(deployed.index.releases.len(), 5);
        assert_eq!(kept(&deployed), ["a/db.v2", "b/web.v1"]);
        let failed = read(&bytes[..], &["failed".to_owned()]).unwrap();
        assert_eq!(kept(&failed), ["a/db.v3"]);
        let mut truncated = bytes.clone();
        truncated.truncate(bytes.len() / 2);
        assert!(read(&truncated[..], &["deployed".to_owned()]).is_err());
    }

    #[test]
    fn prepare_plans_against_what_the_target_has_and_picks_the_crds() {
        let mut snapshot = read(&snapshot_bytes()[..], &["deployed".to_owned()]).unwrap();
        snapshot.crds = vec![
            crd("ks.g.test", "g.test", "K"),
            crd("ks.other.test", "other.test", "K"),
        ];
        let existing = HashMap::new();
        let prepared = prepare(
            &mut snapshot,
            &existing,
            &options(Mode::Install, &["deployed"]),
        );
        let actions: Vec<(String, bool)> = prepared
            .steps
            .iter()
            .map(|s| (format!("{}.v{}", s.key(), s.revision), s.action.changes()))
            .collect();
        // b/web is excluded; a/db restores its deployed revision.
        assert!(
            actions.contains(&("a/db.v2".to_owned(), true)),
            "{actions:?}"
        );
        assert!(
            !actions.iter().any(|(k, c)| k.starts_with("b/web") && *c),
            "{actions:?}"
        );
        // Only the CRD of the group a changing release uses is created.
        let names: Vec<&str> = prepared.crds.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(names, ["ks.g.test"]);
        assert!(prepared.left_to_helm.is_empty());

        // What the target has deployed is skipped, and then no CRD is needed.
        let mut snapshot = read(&snapshot_bytes()[..], &["deployed".to_owned()]).unwrap();
        snapshot.crds = vec![crd("ks.g.test", "g.test", "K")];
        let existing = HashMap::from([(
            ReleaseKey::new("a", "db"),
            Installed {
                revision: 2,
                status: "deployed".to_owned(),
                frozen: false,
            },
        )]);
        let prepared = prepare(
            &mut snapshot,
            &existing,
            &options(Mode::Install, &["deployed"]),
        );
        assert!(prepared.steps.iter().all(|s| !s.action.changes()));
        assert!(prepared.crds.is_empty());
    }

    fn report(name: &str, action: Action, outcome: Outcome) -> Report {
        Report {
            step: step(name, action),
            outcome,
            elapsed: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn tally_counts_outcomes_and_unexplained_finds_what_no_report_explains() {
        let reports = vec![
            report("a", Action::Install, Outcome::Done),
            report(
                "b",
                Action::Skip("exists".into()),
                Outcome::Skipped("exists".into()),
            ),
            report("c", Action::Install, Outcome::Failed("boom".into())),
            report("d", Action::Install, Outcome::Defect("bad chart".into())),
            report(
                "e",
                Action::Refuse("not ours".into()),
                Outcome::Failed("not ours".into()),
            ),
            report("f", Action::Install, Outcome::NotStarted),
        ];
        assert_eq!(
            tally(&reports),
            Tally {
                done: 1,
                skipped: 1,
                failed: 3,
                defects: 1,
                not_started: 1,
                stopped: 2,
            }
        );
        let not_deployed: Vec<(ReleaseKey, String)> = ["a", "c", "f"]
            .iter()
            .map(|n| (ReleaseKey::new("ns", *n), "failed (revision 1)".to_owned()))
            .collect();
        let left: Vec<String> = unexplained(&reports, &not_deployed)
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(left, ["ns/a"]);
    }
}
