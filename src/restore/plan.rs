//! Restore planning: which revision of each release to restore, and what to
//! do with it given what the cluster already has. Pure: no I/O.

use std::collections::{BTreeMap, HashSet};

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
    /// Not touched, with the reason.
    Skip(String),
}

impl Action {
    /// Whether the action changes the cluster.
    pub fn changes(&self) -> bool {
        !matches!(self, Action::Skip(_))
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
}

impl Step {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Which snapshot rows are restore targets: per release, the newest revision
/// whose status is in `statuses` (by default `deployed`: Helm's current
/// release, which after a failed upgrade is older than the latest revision).
pub fn targets<'a>(
    index: &'a Index,
    statuses: &[String],
) -> BTreeMap<(String, String), &'a IndexRow> {
    let mut out: BTreeMap<(String, String), &IndexRow> = BTreeMap::new();
    for row in &index.releases {
        if !statuses.contains(&row.status) {
            continue;
        }
        let e = out
            .entry((row.namespace.clone(), row.name.clone()))
            .or_insert(row);
        if row.revision > e.revision {
            *e = row;
        }
    }
    out
}

fn order_position(order: &[String], namespace: &str, name: &str) -> Option<usize> {
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
    /// Releases the cluster has (`namespace`, `name`).
    pub existing: &'a HashSet<(String, String)>,
    /// What to do with existing releases.
    pub mode: Mode,
    /// The `order:` list.
    pub order: &'a [String],
}

/// Plans the restore: ordered releases first (in `order:` order), then the
/// rest by namespace and name.
pub fn plan(input: &PlanInput) -> Vec<Step> {
    let targets = targets(input.index, input.statuses);
    let mut latest: BTreeMap<(String, String), &IndexRow> = BTreeMap::new();
    for row in &input.index.releases {
        let e = latest
            .entry((row.namespace.clone(), row.name.clone()))
            .or_insert(row);
        if row.revision > e.revision {
            *e = row;
        }
    }
    let mut steps: Vec<(Option<usize>, Step)> = latest
        .iter()
        .filter(|((ns, _), _)| input.namespace.is_none_or(|n| n == ns))
        .map(|((ns, name), last)| {
            let target = targets.get(&(ns.clone(), name.clone()));
            let row = target.copied().unwrap_or(last);
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
            } else if input.existing.contains(&(ns.clone(), name.clone())) {
                match input.mode {
                    Mode::Install => Action::Skip("already installed".to_owned()),
                    Mode::Upgrade => Action::Upgrade,
                    Mode::Replace => Action::Replace,
                }
            } else {
                Action::Install
            };
            let pos = order_position(input.order, ns, name);
            (
                pos,
                Step {
                    namespace: ns.clone(),
                    name: name.clone(),
                    revision: row.revision,
                    chart: format!("{}-{}", row.chart, row.chart_version),
                    action,
                    ordered: pos.is_some(),
                    labels: row.labels.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Cluster, Source, SourceKind};

    fn row(ns: &str, name: &str, rev: u32, status: &str) -> IndexRow {
        IndexRow {
            namespace: ns.into(),
            name: name.into(),
            revision: rev,
            status: status.into(),
            chart: "c".into(),
            chart_version: "1.0.0".into(),
            app_version: String::new(),
            updated: None,
            path: String::new(),
            size: 0,
            sha256: String::new(),
            labels: Default::default(),
            extra: Default::default(),
        }
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
        let existing: HashSet<(String, String)> = existing
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
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
        .into_iter()
        .map(|s| (s.key(), s.revision, s.action))
        .collect()
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
}
