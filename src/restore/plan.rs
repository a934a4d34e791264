//! Restore planning: which revision of each release to restore, and what to
//! do with it given what the cluster already has. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use crate::release::{Installed, ReleaseId, ReleaseKey};

use crate::select::Selection;
use crate::snapshot::{Index, IndexRow};

/// What load does with releases the cluster already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Skip them (the default: load is idempotent).
    Install,
    /// Upgrade them to the snapshot's state (`--upgrade`).
    Upgrade,
    /// Uninstall and install them again (`--replace`).
    Replace,
}

/// What happens to one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Installed from the snapshot.
    Install,
    /// Upgraded to the snapshot's state.
    Upgrade,
    /// Uninstalled, then installed from the snapshot.
    Replace,
    /// An earlier load of helm-bulk left it not deployed (interrupted, or
    /// the API server went away): what is left is uninstalled, then it is
    /// installed again from the snapshot.
    Complete,
    /// Not touched, with the reason.
    Skip(String),
    /// Not touched because it exists in a state load must not decide about
    /// (someone else's release that is not `deployed`): a failure, with the
    /// reason and what to do.
    Refuse(String),
}

impl Action {
    /// Whether the action changes the cluster.
    pub fn changes(&self) -> bool {
        !matches!(self, Action::Skip(_) | Action::Refuse(_))
    }
}

/// One release in the plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// Namespace.
    pub namespace: String,
    /// Release name.
    pub name: String,
    /// The snapshot revision restored (or the latest, for skips).
    pub revision: u32,
    /// The chart, `name-version`.
    pub chart: String,
    /// What to do.
    pub action: Action,
    /// Whether it is in the `order:` list (installed one by one, first).
    pub ordered: bool,
    /// The release's labels (`helm install --labels`), restored with it.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Said with the step: why this revision (a save that caught an upgrade
    /// in flight), or what the cluster had (an interrupted restore).
    pub note: Option<String>,
    /// Whether the step restores a revision of the snapshot (it is selected,
    /// and the snapshot has a revision to restore): the release must be
    /// `deployed` when load ends.
    pub selected: bool,
}

impl Step {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl crate::release::ReleaseId for Step {
    fn release_parts(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

impl crate::release::RevisionId for Step {
    fn revision_parts(&self) -> (&str, &str, u32) {
        (&self.namespace, &self.name, self.revision)
    }
}

/// The revision of one release that load restores.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Its row.
    pub row: &'a IndexRow,
    /// When the save caught an upgrade or rollback in flight: the newest
    /// revision's row (`pending-*`); `row` is then the last good revision.
    pub in_flight: Option<&'a IndexRow>,
}

/// Which snapshot rows are restore targets: per release, the newest revision
/// whose status is in `statuses` (by default `deployed`: Helm's current
/// release, which after a failed upgrade is older than the latest revision).
/// With `deployed` among `statuses`, a release saved in the middle of an
/// upgrade (no `deployed` revision) restores its last good revision, as
/// [`crate::release::current_revision`] finds it.
pub fn targets<'a>(index: &'a Index, statuses: &[String]) -> BTreeMap<ReleaseKey, Target<'a>> {
    let mut by_release: BTreeMap<ReleaseKey, Vec<&IndexRow>> = BTreeMap::new();
    for row in &index.releases {
        by_release.entry(row.release_key()).or_default().push(row);
    }
    let mut out = BTreeMap::new();
    for (key, rows) in by_release {
        let newest = rows
            .iter()
            .filter(|r| statuses.contains(&r.status))
            .max_by_key(|r| r.revision);
        if let Some(row) = newest {
            out.insert(
                key,
                Target {
                    row,
                    in_flight: None,
                },
            );
            continue;
        }
        if !statuses.iter().any(|s| s == "deployed") {
            continue;
        }
        let revs: Vec<(u32, &str)> = rows
            .iter()
            .map(|r| (r.revision, r.status.as_str()))
            .collect();
        let Some(current) = crate::release::current_revision(&revs) else {
            continue;
        };
        let find = |n: u32| rows.iter().copied().find(|r| r.revision == n);
        if let (Some(row), Some((pending, _))) = (find(current.revision), &current.in_flight) {
            out.insert(
                key,
                Target {
                    row,
                    in_flight: find(*pending),
                },
            );
        }
    }
    out
}

pub(crate) fn order_position(order: &[String], namespace: &str, name: &str) -> Option<usize> {
    order.iter().position(|o| match o.split_once('/') {
        Some((ns, n)) => ns == namespace && n == name,
        None => o == name,
    })
}

/// Inputs of the planner.
pub struct PlanInput<'a> {
    /// The snapshot index.
    pub index: &'a Index,
    /// Include/exclude patterns.
    pub selection: &'a Selection,
    /// Only this namespace, if set.
    pub namespace: Option<&'a str>,
    /// Statuses a restore target may have.
    pub statuses: &'a [String],
    /// Releases the cluster has, by `(namespace, name)`.
    pub existing: &'a HashMap<ReleaseKey, Installed>,
    /// What to do with existing releases.
    pub mode: Mode,
    /// The `order:` list.
    pub order: &'a [String],
}

/// Plans the restore: ordered releases first (in `order:` order), then the
/// rest by namespace and name.
pub fn plan(input: &PlanInput) -> Vec<Step> {
    let targets = targets(input.index, input.statuses);
    let latest = crate::release::newest_rows(&input.index.releases);
    let mut steps: Vec<(Option<usize>, Step)> = latest
        .iter()
        .filter(|((ns, _), _)| input.namespace.is_none_or(|n| n == *ns))
        .map(|(&(ns, name), last)| {
            let key = (ns, name);
            let target = targets.get(key.release_id());
            let row = target.map(|t| t.row).unwrap_or(last);
            let mut note = target.and_then(|t| t.in_flight).map(|p| {
                format!(
                    "the snapshot caught an upgrade in flight (revision {} {}); revision {}, the last good one, is restored",
                    p.revision, p.status, row.revision
                )
            });
            let selected = !input.selection.excluded(ns, name)
                && input.selection.matches(ns, name)
                && target.is_some();
            let action = if input.selection.excluded(ns, name) {
                Action::Skip("excluded".to_owned())
            } else if !input.selection.matches(ns, name) {
                Action::Skip("not included".to_owned())
            } else if target.is_none() {
                Action::Skip(format!(
                    "no {} revision in the snapshot (latest is {} revision {})",
                    input.statuses.join("/"),
                    last.status,
                    last.revision
                ))
            } else if let Some(e) = input.existing.get(key.release_id()) {
                let (action, what) = existing_action(e, input.mode);
                if let Some(what) = what {
                    note = Some(match note {
                        Some(n) => format!("{what}; {n}"),
                        None => what,
                    });
                }
                action
            } else {
                Action::Install
            };
            let pos = order_position(input.order, ns, name);
            (
                pos,
                Step {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                    revision: row.revision,
                    chart: format!("{}-{}", row.chart, row.chart_version),
                    action,
                    ordered: pos.is_some(),
                    labels: row.labels.clone(),
                    note,
                    selected,
                },
            )
        })
        .collect();
    steps.sort_by(|(pa, a), (pb, b)| match (pa, pb) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)),
    });
    steps.into_iter().map(|(_, s)| s).collect()
}

/// What to do with a release the cluster has, and what to say about it.
///
/// Only a `deployed` release counts as installed. One that is not (an
/// install, upgrade or uninstall that never finished, or a `failed` one) was
/// either left by an earlier load of helm-bulk (its chart is a frozen chart),
/// whose job this load finishes, or it is someone else's, which load leaves
/// alone unless told otherwise: `--replace`, or `--upgrade` for a `failed`
/// one (helm refuses to upgrade a release with an operation pending).
fn existing_action(e: &Installed, mode: Mode) -> (Action, Option<String>) {
    if e.status == "deployed" {
        let action = match mode {
            Mode::Install => Action::Skip("already installed".to_owned()),
            Mode::Upgrade => Action::Upgrade,
            Mode::Replace => Action::Replace,
        };
        return (action, None);
    }
    let what = format!("the cluster has revision {} {}", e.revision, e.status);
    if e.frozen {
        // A `failed` upgrade of an earlier `load --upgrade`: upgrade again.
        if mode == Mode::Upgrade && e.status == "failed" {
            return (Action::Upgrade, Some(format!("{what}, left by helm-bulk")));
        }
        return (
            Action::Complete,
            Some(format!("{what}, left by an interrupted helm-bulk load")),
        );
    }
    match mode {
        Mode::Replace => (Action::Replace, Some(what)),
        Mode::Upgrade if e.status == "failed" => (Action::Upgrade, Some(what)),
        _ => {
            let hint = if e.status == "failed" {
                "load --upgrade or --replace restores it"
            } else {
                "if no helm operation on it is running, load --replace restores it (uninstall, then install)"
            };
            (
                Action::Refuse(format!(
                    "exists with status {} (revision {}), not left by helm-bulk; {hint}",
                    e.status, e.revision
                )),
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Cluster, Source, SourceKind};

    fn row(ns: &str, name: &str, rev: u32, status: &str) -> IndexRow {
        crate::testing::index_row(ns, name, rev, status)
    }

    fn index(rows: Vec<IndexRow>) -> Index {
        let mut i = Index::new(
            String::new(),
            Source {
                kind: SourceKind::Helm3,
                driver: "secret".into(),
                extra: Default::default(),
            },
            Cluster::default(),
        );
        i.releases = rows;
        i
    }

    fn run(
        idx: &Index,
        existing: &[(&str, &str)],
        mode: Mode,
        order: &[&str],
        exclude: &[&str],
    ) -> Vec<(String, u32, Action)> {
        let existing: Vec<(&str, &str, &str, bool)> = existing
            .iter()
            .map(|(a, b)| (*a, *b, "deployed", false))
            .collect();
        run_with(idx, &existing, mode, order, exclude)
            .into_iter()
            .map(|s| (s.key(), s.revision, s.action))
            .collect()
    }

    /// `existing`: `(namespace, name, status, frozen)`.
    fn run_with(
        idx: &Index,
        existing: &[(&str, &str, &str, bool)],
        mode: Mode,
        order: &[&str],
        exclude: &[&str],
    ) -> Vec<Step> {
        let existing: HashMap<ReleaseKey, Installed> = existing
            .iter()
            .map(|(a, b, status, frozen)| {
                (
                    ReleaseKey::new(*a, *b),
                    Installed {
                        revision: 1,
                        status: status.to_string(),
                        frozen: *frozen,
                    },
                )
            })
            .collect();
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        let order: Vec<String> = order.iter().map(|s| s.to_string()).collect();
        let sel = Selection::new(&[], &exclude).unwrap();
        plan(&PlanInput {
            index: idx,
            selection: &sel,
            namespace: None,
            statuses: &["deployed".to_owned()],
            existing: &existing,
            mode,
            order: &order,
        })
    }

    #[test]
    fn restores_the_last_deployed_revision() {
        let idx = index(vec![
            row("a", "web", 1, "superseded"),
            row("a", "web", 2, "deployed"),
            row("a", "web", 3, "failed"),
            row("b", "job", 1, "failed"),
        ]);
        let p = run(&idx, &[], Mode::Install, &[], &[]);
        assert_eq!(p[0], ("a/web".into(), 2, Action::Install));
        assert_eq!(p[1].0, "b/job");
        assert!(matches!(&p[1].2, Action::Skip(r) if r.contains("latest is failed revision 1")));
    }

    #[test]
    fn modes_exclusions_and_order() {
        let idx = index(vec![
            row("a", "web", 1, "deployed"),
            row("b", "db", 1, "deployed"),
            row("c", "ingress", 1, "deployed"),
        ]);
        let p = run(&idx, &[("a", "web")], Mode::Install, &["db"], &["ingress"]);
        assert_eq!(p[0], ("b/db".into(), 1, Action::Install));
        assert_eq!(
            p[1],
            ("a/web".into(), 1, Action::Skip("already installed".into()))
        );
        assert_eq!(
            p[2],
            ("c/ingress".into(), 1, Action::Skip("excluded".into()))
        );
        let p = run(&idx, &[("a", "web")], Mode::Upgrade, &[], &[]);
        assert_eq!(p[0].2, Action::Upgrade);
        let p = run(&idx, &[("a", "web")], Mode::Replace, &[], &[]);
        assert_eq!(p[0].2, Action::Replace);
    }

    #[test]
    fn a_release_that_is_not_deployed_is_never_installed() {
        let idx = index(vec![
            row("a", "ours", 1, "deployed"),
            row("a", "theirs", 1, "deployed"),
            row("a", "broken", 1, "deployed"),
        ]);
        let existing = [
            ("a", "ours", "pending-install", true),
            ("a", "theirs", "pending-upgrade", false),
            ("a", "broken", "failed", false),
        ];
        let actions = |mode| -> Vec<Action> {
            run_with(&idx, &existing, mode, &[], &[])
                .into_iter()
                .map(|s| s.action)
                .collect()
        };
        // Sorted by name: broken, ours, theirs.
        let p = actions(Mode::Install);
        assert!(
            matches!(&p[0], Action::Refuse(r) if r.contains("status failed") && r.contains("--upgrade or --replace"))
        );
        assert_eq!(p[1], Action::Complete);
        assert!(
            matches!(&p[2], Action::Refuse(r) if r.contains("pending-upgrade") && r.contains("--replace"))
        );
        let p = actions(Mode::Upgrade);
        assert_eq!(p[0], Action::Upgrade);
        assert_eq!(p[1], Action::Complete);
        assert!(matches!(&p[2], Action::Refuse(_)));
        let p = actions(Mode::Replace);
        assert_eq!(p, [Action::Replace, Action::Complete, Action::Replace]);
        let steps = run_with(&idx, &existing, Mode::Install, &[], &[]);
        assert!(steps.iter().all(|s| s.selected));
        assert!(
            steps[1]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("pending-install") && n.contains("interrupted")),
            "{:?}",
            steps[1].note
        );
    }

    #[test]
    fn a_snapshot_taken_during_an_upgrade_restores_the_last_good_revision() {
        let idx = index(vec![
            row("a", "web", 1, "superseded"),
            row("a", "web", 2, "pending-upgrade"),
            row("a", "new", 1, "pending-install"),
        ]);
        let steps = run_with(&idx, &[], Mode::Install, &[], &["nothing"]);
        assert_eq!(steps[1].key(), "a/web");
        assert_eq!((steps[1].revision, &steps[1].action), (1, &Action::Install));
        assert!(steps[1].selected);
        let note = steps[1].note.as_deref().unwrap_or_default();
        assert!(
            note.contains("revision 2 pending-upgrade") && note.contains("revision 1"),
            "{note}"
        );
        // A first install in flight has nothing to restore.
        assert!(matches!(&steps[0].action, Action::Skip(r) if r.contains("pending-install")));
        assert!(!steps[0].selected);
    }
}
