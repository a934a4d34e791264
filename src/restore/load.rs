//! `load`: [`load`] is the entry point (the pass sequence is in
//! [`super::pipeline`]); this module holds its options ([`LoadOptions`]),
//! its errors ([`LoadError`]), and the steps that need no destination: the
//! first pass ([`read`]: every entry verified, what the plan needs kept),
//! the plan ([`prepare`]: [`super::plan`] and the CRDs to create), the
//! order the later passes read records in ([`run_order`],
//! [`keys_to_read`]), and how a run ended ([`tally`], [`not_deployed`],
//! [`unexplained`]). What the destination has is [`existing`], the helm
//! binary [`helm_runner`]; the preflight is [`super::preflight`] and the
//! history passes [`super::histories`].

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::execute::{Outcome, Report, Stop};
use super::helm::HelmRunner;
use super::history::{self, Keep};
use super::plan::{Action, Mode, PlanInput, Step, plan, targets};
use super::preflight::Preflight;
use crate::release::{GroupKind, Installed, ReleaseId, ReleaseKey, RevisionId, RevisionKey};
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
    Preflight(#[source] super::preflight::PreflightError),
    /// The snapshot could not be read again.
    #[error(transparent)]
    Reread(#[from] super::stream::StreamError),
    /// The releases' storage could not be read.
    #[error("cannot read the release storage: {0}")]
    Storage(#[source] history::HistoryError),
    /// The first pass: the snapshot does not verify, or cannot be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The caller refused the snapshot ([`super::pipeline::Progress::check`]).
    #[error(transparent)]
    Refused(super::pipeline::Veto),
    /// A Tiller was given a snapshot of Helm 3/4 releases.
    #[error("a Tiller restores Helm 2 snapshots, and this one holds {0} releases")]
    NotHelm2(&'static str),
    /// Tiller could not be asked what it has.
    #[error(transparent)]
    Tiller(#[from] crate::tiller::TillerError),
    /// The cluster's Helm storage could not be listed.
    #[error(transparent)]
    Existing(SourceError),
    /// The preflight's pass over the snapshot failed.
    #[error("{0}; nothing was installed")]
    PreflightRead(#[source] super::stream::StreamError),
    /// The preflight found releases that would fail; nothing was installed.
    #[error("preflight found problems with {} release(s); nothing was installed", .0.problems.len())]
    Problems(Preflight),
    /// The install pass's reading of the snapshot failed: no further
    /// release was started, and no history written.
    #[error(
        "{error}; load stopped: restored {} release(s) from records read before that, failed {}, not started {}; no history was written. Run load again with an intact snapshot",
        tally.done, tally.failed, tally.not_started
    )]
    Stopped {
        /// Why reading failed.
        #[source]
        error: Box<super::stream::StreamError>,
        /// How the steps ended.
        tally: Tally,
    },
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
    /// Plan only: change nothing.
    pub dry_run: bool,
    /// Which saved revisions of each release's history to restore.
    pub keep: Keep,
    /// Helm's storage driver.
    pub driver: Driver,
    /// The helm binary ([`helm_bin`]).
    pub helm: PathBuf,
    /// Arguments for every helm call (`--kubeconfig`, `--kube-context`).
    pub helm_args: Vec<String>,
}

/// A decrypted, verified snapshot, reduced to what load needs before it
/// reads the records again ([`super::stream`]): the index, the stored CRDs,
/// what each restorable record uses, and the records of the releases that
/// go first (`order:`; few).
pub struct Snapshot {
    /// The index.
    pub index: Index,
    /// The records of the `order:` releases' restorable revisions, by
    /// `(namespace, name, revision)`.
    pub records: HashMap<RevisionKey, Zeroizing<Vec<u8>>>,
    /// The API kinds and chart CRDs of each revision that may be restored.
    pub uses: HashMap<RevisionKey, Uses>,
    /// Every stored CRD with its JSON.
    pub crds: StoredCrds,
}

impl Snapshot {
    /// Whether it holds Helm 2 (Tiller) records.
    pub fn is_helm2(&self) -> bool {
        self.index.source.kind == crate::snapshot::SourceKind::Tiller
    }

    /// The record of a step, if this first pass kept it (an ordered step's).
    pub fn record(&self, step: &Step) -> Option<Zeroizing<Vec<u8>>> {
        self.records.get(step.revision_id()).cloned()
    }
}

/// What a release record uses, for the choice of CRDs ([`crds_to_create`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    /// The `(group, kind)` of each object in its manifest.
    pub kinds: BTreeSet<GroupKind>,
    /// The names of the CRDs in its chart's `crds/` (Helm 3 records).
    pub chart_crds: BTreeSet<String>,
}

impl Uses {
    /// What `record` uses; `helm2`: a Helm 2 record.
    pub fn of(record: &[u8], helm2: bool) -> Uses {
        if helm2 {
            return Uses {
                kinds: crate::tiller::record::kinds_used_bytes(record)
                    .into_iter()
                    .collect(),
                chart_crds: BTreeSet::new(),
            };
        }
        Uses {
            kinds: crate::release::kinds_used(record),
            chart_crds: crate::release::chart_crd_files(record)
                .into_iter()
                .flat_map(|(_, text)| crate::release::crd_names(&text))
                .collect(),
        }
    }
}

/// Reads the decrypted snapshot, checking every entry against the index
/// (the first pass: nothing is restored before all of it verified), and
/// keeps what [`Snapshot`] says: memory grows with the index, not with
/// the records. `order`: the `order:` list.
pub fn read(
    plain: impl std::io::Read,
    statuses: &[String],
    order: &[String],
) -> Result<Snapshot, SnapshotError> {
    let mut wanted: Option<std::collections::HashSet<RevisionKey>> = None;
    let mut records = HashMap::new();
    let mut uses = HashMap::new();
    let mut crds: Vec<(IndexCrd, Vec<u8>)> = Vec::new();
    let index = crate::release::read_checked(plain, &Limits::default(), |index, entry, data| {
        let wanted = wanted.get_or_insert_with(|| {
            targets(index, statuses)
                .values()
                .map(|t| t.row.revision_key())
                .collect()
        });
        match entry {
            Entry::Release(row) => {
                let key = row.revision_key();
                if wanted.contains(&key) {
                    let helm2 = index.source.kind == crate::snapshot::SourceKind::Tiller;
                    uses.insert(key.clone(), Uses::of(&data, helm2));
                    if super::plan::order_position(order, &row.namespace, &row.name).is_some() {
                        records.insert(key, data);
                    }
                }
            }
            Entry::Crd(c) => crds.push((c.clone(), data.to_vec())),
        }
        Ok(())
    })?;
    Ok(Snapshot {
        index,
        records,
        uses,
        crds,
    })
}

/// The steps in the order load runs them: the ordered ones first, as
/// planned, then the others in archive order ([`crate::snapshot::storage_order`]),
/// the order a second pass reads their records in.
pub fn run_order(steps: &[Step]) -> Vec<Step> {
    let (mut ordered, mut rest): (Vec<Step>, Vec<Step>) =
        steps.iter().cloned().partition(|s| s.ordered);
    rest.sort_by_cached_key(|s| crate::snapshot::storage_order(&s.namespace, &s.name, s.revision));
    ordered.append(&mut rest);
    ordered
}

/// The record keys a pass must read for `steps` (in run order): those of
/// the steps that change a release and whose record the first pass did not
/// keep.
pub fn keys_to_read(snapshot: &Snapshot, steps: &[Step]) -> Vec<RevisionKey> {
    steps
        .iter()
        .filter(|s| s.action.changes())
        .map(super::stream::key)
        .filter(|k| !snapshot.records.contains_key(k))
        .collect()
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
    let (crds, left_to_helm) =
        crds_to_create(std::mem::take(&mut snapshot.crds), &steps, &snapshot.uses);
    Prepared {
        steps,
        crds,
        left_to_helm,
    }
}

/// Which releases selected by the plan are not deployed in `now` (what
/// the target has, after [`super::histories::recognize`]), with their state (`failed
/// (revision 2)`, `not installed`).
pub fn not_deployed(
    now: &HashMap<ReleaseKey, Installed>,
    steps: &[Step],
) -> Vec<(ReleaseKey, String)> {
    steps
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
        .collect()
}

pub use super::helm::helm_bin;
pub use super::pipeline::load;

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
    uses: &HashMap<RevisionKey, Uses>,
) -> (StoredCrds, std::collections::BTreeMap<String, String>) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut groups = BTreeSet::new();
    // (group, kind) → the changing releases that use it.
    let mut users: BTreeMap<crate::release::GroupKind, BTreeSet<String>> = BTreeMap::new();
    // CRD name → the releases whose frozen chart installs it.
    let mut installers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in steps.iter().filter(|s| s.action.changes()) {
        let Some(u) = uses.get(s.revision_id()) else {
            continue;
        };
        for gk in &u.kinds {
            groups.insert(gk.group.clone());
            users.entry(gk.clone()).or_default().insert(s.key());
        }
        if matches!(s.action, Action::Install | Action::Replace) {
            for name in &u.chart_crds {
                installers.entry(name.clone()).or_default().insert(s.key());
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
        let uses: HashMap<_, _> = records
            .iter()
            .map(|(k, r)| (k.clone(), Uses::of(r, false)))
            .collect();
        let (kept, left) = crds_to_create(crds, &steps, &uses);
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
        let index = crate::testing::helm3_index("https://127.0.0.1:6443", "test");
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
            dry_run: false,
            keep: Keep::All,
            driver: Driver::Secret,
            helm: PathBuf::from("helm"),
            helm_args: Vec::new(),
        }
    }

    fn kept(snapshot: &Snapshot) -> Vec<String> {
        let mut keys: Vec<String> = snapshot
            .uses
            .keys()
            .map(|k| format!("{}/{}.v{}", k.namespace, k.name, k.revision))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn read_keeps_what_restorable_records_use_and_only_the_ordered_records() {
        let bytes = snapshot_bytes();
        let deployed = read(&bytes[..], &["deployed".to_owned()], &[]).unwrap();
        assert_eq!(deployed.index.releases.len(), 5);
        assert_eq!(kept(&deployed), ["a/db.v2", "b/web.v1"]);
        assert!(deployed.records.is_empty());
        let db = &deployed.uses[&RevisionKey::new("a", "db", 2)];
        assert_eq!(db.kinds, BTreeSet::from([GroupKind::new("g.test", "K")]));
        let failed = read(&bytes[..], &["failed".to_owned()], &[]).unwrap();
        assert_eq!(kept(&failed), ["a/db.v3"]);
        // The record of a release in `order:` is kept: it is installed
        // first, before a second pass reaches it.
        let ordered = read(&bytes[..], &["deployed".to_owned()], &["b/web".to_owned()]).unwrap();
        let records: Vec<&RevisionKey> = ordered.records.keys().collect();
        assert_eq!(records, [&RevisionKey::new("b", "web", 1)]);
        let mut truncated = bytes.clone();
        truncated.truncate(bytes.len() / 2);
        assert!(read(&truncated[..], &["deployed".to_owned()], &[]).is_err());
    }

    #[test]
    fn run_order_puts_ordered_steps_first_then_the_others_in_archive_order() {
        // Plan order sorts (namespace, name): `app` before `app-x`; the
        // archive sorts `ns/app-x.v1` before `ns/app.v1` ('-' < '.').
        let mut first = step("zz", Action::Install);
        first.ordered = true;
        let steps = vec![
            first,
            step("app", Action::Install),
            step("app-x", Action::Install),
            step("b", Action::Skip("x".into())),
        ];
        let names: Vec<String> = run_order(&steps).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["zz", "app-x", "app", "b"]);
        let snapshot = Snapshot {
            index: crate::testing::helm3_index("", ""),
            records: HashMap::from([(RevisionKey::new("ns", "zz", 1), record(&[], None))]),
            uses: HashMap::new(),
            crds: Vec::new(),
        };
        // A second pass reads the changing steps' records the first did not keep.
        let keys: Vec<String> = keys_to_read(&snapshot, &run_order(&steps))
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(keys, ["app-x", "app"]);
    }

    #[test]
    fn prepare_plans_against_what_the_target_has_and_picks_the_crds() {
        let mut snapshot = read(&snapshot_bytes()[..], &["deployed".to_owned()], &[]).unwrap();
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
        let mut snapshot = read(&snapshot_bytes()[..], &["deployed".to_owned()], &[]).unwrap();
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
