//! The load pipeline: [`load`] restores a decrypted snapshot onto a
//! cluster (through helm) or a Tiller, in passes over the snapshot: the
//! `first` verifies all of it, each later one reads it `again`
//! ([`super::stream`]).
//!
//! ```text
//! first    load::read           every entry verified; the index, the CRDs, the
//!                               records of `order:` releases kept
//!          Progress::check      the caller's own checks of the index
//!          existing             what the destination has (+ histories load wrote)
//!          load::prepare        plan (pure) + the CRDs to create
//! again    preflight            every frozen chart rendered by helm, APIs checked
//!          crds::ensure         CRDs before the releases
//!          (dry run: stop here with the plan)
//! again    execute::run_plan    helm │ Tiller target, records fed by stream::Feed
//! again    history              the other saved revisions, a few releases at a time
//!          not_deployed         the final check
//! ```
//!
//! The caller resolves its options into [`LoadOptions`], connects
//! ([`Destination`]), opens and decrypts the snapshot ([`Input`]), and
//! prints what [`Progress`] reports and what [`load`] returns; the
//! pipeline prints nothing. A [`Stop`] passed in ends the install pass
//! early ([`Stop::interrupt`]: the caller's signal handling).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::crds::{CrdOutcome, ensure};
use super::execute::{Outcome, Report, Stop, Target, run_plan};
use super::histories;
use super::history::{self, Keep};
use super::load::{self as steps, LoadError, LoadOptions, Prepared, Snapshot, Tally, read};
use super::plan::{Action, Step};
use super::preflight::{Preflight, run_preflight};
use super::stream::{self, Open, Rereader};
use super::tiller::TillerTarget;
use crate::release::{Installed, ReleaseKey};
use crate::snapshot::{Index, IndexCrd};

/// Where a load restores the releases.
pub enum Destination {
    /// A cluster: its Helm storage through the Kubernetes API, installs
    /// through the helm binary.
    Cluster(crate::cluster::Cluster),
    /// A Tiller (Helm 2 snapshots only), over gRPC.
    Tiller(crate::tiller::client::Tiller),
}

/// The snapshot to load, decrypted.
pub struct Input<'a> {
    /// The plaintext for the first pass.
    pub first: Box<dyn Read + 'a>,
    /// Opens and decrypts the same snapshot again, for each later pass.
    pub again: Box<Open<'a>>,
}

/// The caller's refusal of a snapshot ([`Progress::check`]).
pub type Veto = Box<dyn std::error::Error + Send + Sync>;

/// What a load reports while it runs, in the order it happens. Every
/// method does nothing by default.
pub trait Progress: Sync {
    /// The first pass verified the snapshot: the caller's own checks of
    /// its index (an error ends the load, [`LoadError::Refused`]).
    fn check(&self, _index: &Index) -> Result<(), Veto> {
        Ok(())
    }
    /// The snapshot is accepted: what it holds.
    fn verified(&self, _index: &Index) {}
    /// The preflight found no problem (not in a dry run).
    fn preflight(&self, _preflight: &Preflight) {}
    /// What happened to a stored CRD before the installs (not in a dry run).
    fn crd(&self, _name: &str, _outcome: &CrdOutcome) {}
    /// Nothing is to be installed, and this release is skipped.
    fn skipped(&self, _step: &Step, _why: &str) {}
    /// The install pass starts: the [`Stop`] passed to [`load`] may now be
    /// used to stop it.
    fn installing(&self) {}
    /// One release's restore ended (not reported once interrupted).
    fn restored(&self, _report: &Report) {}
    /// One release's history was restored (not reported once interrupted).
    fn history(&self, _outcome: &history::Outcome) {}
    /// The history pass after the installs failed as a whole.
    fn history_failed(&self, _error: &LoadError) {}
    /// The final check, that every selected release is deployed, could not run.
    fn check_failed(&self, _error: &LoadError) {}
}

/// A [`Progress`] that ignores everything.
pub struct Quiet;

impl Progress for Quiet {}

/// How a load ended, when it did not fail as a whole.
#[derive(Debug)]
pub enum Loaded {
    /// A dry run: what load would do; nothing was changed.
    Planned(Planned),
    /// Nothing was to be installed; the histories were completed.
    Unchanged(Unchanged),
    /// The plan ran, to its end or until interrupted.
    Ran(Ran),
}

/// A dry run's plan.
#[derive(Debug)]
pub struct Planned {
    /// The steps, each history write planned in its note.
    pub steps: Vec<Step>,
    /// What the preflight found (a load into a cluster only).
    pub preflight: Option<Preflight>,
    /// What would happen to each stored CRD.
    pub crds: Vec<(String, CrdOutcome)>,
}

/// A load that had nothing to install.
#[derive(Debug)]
pub struct Unchanged {
    /// What completing each release's history did.
    pub history: Vec<history::Outcome>,
    /// Whether the snapshot has a history to restore at all.
    pub has_history: bool,
}

/// A load that ran its plan.
#[derive(Debug)]
pub struct Ran {
    /// How the releases' steps ended.
    pub tally: Tally,
    /// Other failures: CRDs, histories, a final check that could not run.
    pub other_failures: usize,
    /// The selected releases not deployed at the end, with their state.
    pub not_deployed: Vec<(ReleaseKey, String)>,
    /// Those of them no failure or unstarted step explains.
    pub unexplained: Vec<(ReleaseKey, String)>,
    /// Whether the [`Stop`] was interrupted.
    pub interrupted: bool,
}

/// Loads the snapshot of `input` into `to` as `options` say, reporting to
/// `progress`; `stop` ends the install pass early. See the module docs.
pub fn load(
    runtime: &tokio::runtime::Runtime,
    to: Destination,
    input: Input<'_>,
    options: &LoadOptions,
    stop: &Arc<Stop>,
    progress: &dyn Progress,
) -> Result<Loaded, LoadError> {
    // The first pass verifies all of it, keeping the index, the CRDs and the
    // records of the `order:` releases; later passes read the records again.
    let mut snapshot = read(input.first, &options.statuses, &options.order)?;
    let reread = Rereader::new(input.again, snapshot.index.clone());
    progress
        .check(&snapshot.index)
        .map_err(LoadError::Refused)?;
    let helm2 = snapshot.is_helm2();
    if matches!(to, Destination::Tiller(_)) && !helm2 {
        return Err(LoadError::NotHelm2(snapshot.index.source.kind.describe()));
    }
    progress.verified(&snapshot.index);
    let run = Run {
        runtime,
        options,
        reread: &reread,
        stop,
        progress,
        storage: match &to {
            Destination::Cluster(c) => Some(history::Storage::new(
                c.client.clone(),
                options.driver,
                steps::restore_description(&snapshot.index),
            )),
            Destination::Tiller(_) => None,
        },
    };
    let (to, existing) = run.existing(to)?;
    let has_history = options.keep != Keep::None
        && !histories::restored(&snapshot.index, &options.statuses).is_empty();
    let prepared = steps::prepare(&mut snapshot, &existing, options);
    run.passes(to, snapshot, prepared, has_history)
}

/// A connected destination, with what it had before the load.
enum Connected {
    Cluster(crate::cluster::Cluster),
    Tiller(crate::tiller::client::Tiller, super::tiller::Existing),
}

/// What the passes after the first share.
struct Run<'a> {
    runtime: &'a tokio::runtime::Runtime,
    options: &'a LoadOptions,
    reread: &'a Rereader<'a>,
    stop: &'a Arc<Stop>,
    progress: &'a dyn Progress,
    /// Helm's storage, for the histories (not in a Tiller).
    storage: Option<history::Storage>,
}

impl Run<'_> {
    /// What `to` has: the releases of a cluster (those whose restored
    /// history load wrote counting as deployed), or of a Tiller.
    fn existing(
        &self,
        to: Destination,
    ) -> Result<(Connected, HashMap<ReleaseKey, Installed>), LoadError> {
        let scope = self.options.scope.as_deref();
        match to {
            Destination::Tiller(tiller) => {
                let had = self
                    .runtime
                    .block_on(super::tiller::existing(&tiller, scope))?;
                let existing = steps::existing_in_tiller(&had);
                Ok((Connected::Tiller(tiller, had), existing))
            }
            Destination::Cluster(cluster) => {
                let existing = self.deployed(&cluster)?;
                Ok((Connected::Cluster(cluster), existing))
            }
        }
    }

    /// The releases of `cluster`'s Helm storage in scope, those whose
    /// restored history load wrote counting as deployed.
    fn deployed(
        &self,
        cluster: &crate::cluster::Cluster,
    ) -> Result<HashMap<ReleaseKey, Installed>, LoadError> {
        let mut existing = self
            .runtime
            .block_on(steps::existing(
                &cluster.client,
                self.options.driver,
                self.options.scope.as_deref(),
            ))
            .map_err(LoadError::Existing)?;
        if let Some(storage) = &self.storage {
            histories::recognize(
                self.runtime,
                storage,
                self.reread,
                &self.options.statuses,
                self.options.keep,
                &mut existing,
            )?;
        }
        Ok(existing)
    }

    /// The history writes of `steps`' releases (a dry run plans them).
    fn history(
        &self,
        steps: &[Step],
        dry_run: bool,
        stopped: &dyn Fn() -> bool,
    ) -> Result<Vec<history::Outcome>, LoadError> {
        match &self.storage {
            Some(storage) => histories::run_history_read(
                self.runtime,
                storage,
                self.reread,
                &self.options.statuses,
                self.options.keep,
                steps,
                dry_run,
                self.options.jobs,
                stopped,
            ),
            None => Ok(Vec::new()),
        }
    }

    /// The passes after the first: preflight, CRDs, installs, histories,
    /// the final check.
    fn passes(
        &self,
        to: Connected,
        snapshot: Snapshot,
        prepared: Prepared,
        has_history: bool,
    ) -> Result<Loaded, LoadError> {
        let Prepared {
            steps,
            crds,
            left_to_helm,
        } = prepared;
        let opts = self.options;
        // Ordered steps first, then the others in the order a pass reads them.
        let run_steps = steps::run_order(&steps);
        let to_read = steps::keys_to_read(&snapshot, &run_steps);
        let runner = steps::helm_runner(
            opts.helm.clone(),
            opts.helm_args.clone(),
            opts.driver,
            &snapshot.index,
            snapshot.is_helm2(),
            self.stop.clone(),
        );
        // Every frozen chart about to be installed renders, and finds the
        // APIs it needs, before anything in the cluster changes.
        let (cluster, tiller) = match to {
            Connected::Cluster(c) => (Some(c), None),
            Connected::Tiller(t, had) => (None, Some((t, had))),
        };
        let cluster = cluster.as_ref();
        let preflight = match cluster {
            Some(c) => Some(self.preflight(c, &runner, &snapshot, &run_steps, &to_read, &crds)?),
            None => None,
        };
        // Tiller installs into its own cluster, which helm-bulk does not reach.
        let crd_outcomes = match (cluster, &preflight) {
            (Some(c), Some(p)) if p.problems.is_empty() || opts.dry_run => self
                .runtime
                .block_on(ensure(&c.client, &crds, &left_to_helm, opts.dry_run)),
            _ => Vec::new(),
        };
        if opts.dry_run {
            return self.planned(&steps, preflight, crd_outcomes);
        }
        if let Some(p) = preflight {
            if !p.problems.is_empty() {
                return Err(LoadError::Problems(p));
            }
            self.progress.preflight(&p);
        }
        // CRDs that could not be created.
        let mut other_failures = 0;
        for (name, o) in &crd_outcomes {
            self.progress.crd(name, o);
            other_failures += usize::from(matches!(o, CrdOutcome::Failed(_)));
        }
        let changes = steps
            .iter()
            .any(|s| s.action.changes() || matches!(s.action, Action::Refuse(_)));
        if !changes && other_failures == 0 {
            return self.unchanged(&steps, has_history);
        }
        let target = tiller.map(|(tiller, existing)| TillerTarget {
            tiller,
            runtime: self.runtime.handle().clone(),
            existing,
            description: runner.description.clone(),
        });
        let target: &dyn Target = match &target {
            Some(t) => t,
            None => &runner,
        };
        let reports = self.install(target, snapshot, &run_steps, &to_read)?;
        self.finish(cluster, &steps, reports, other_failures)
    }

    /// The preflight pass: the records read again for every frozen chart
    /// to render.
    fn preflight(
        &self,
        cluster: &crate::cluster::Cluster,
        runner: &super::helm::HelmRunner,
        snapshot: &Snapshot,
        run_steps: &[Step],
        to_read: &[stream::Key],
        crds: &[(IndexCrd, Vec<u8>)],
    ) -> Result<Preflight, LoadError> {
        let jobs = self.options.jobs;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = jobs.max(cpus);
        let (preflight, read) = self.reread.feed(to_read, workers * 2, |feed| {
            let fetch = |step: &Step| {
                snapshot
                    .record(step)
                    .or_else(|| feed.take(&stream::key(step)))
            };
            run_preflight(self.runtime, cluster, runner, run_steps, crds, jobs, &fetch)
        });
        read.map_err(LoadError::PreflightRead)?;
        preflight.map_err(LoadError::Preflight)
    }

    /// A dry run's result: the plan, with what the history writes would be
    /// in each release's note.
    fn planned(
        &self,
        steps: &[Step],
        preflight: Option<Preflight>,
        crds: Vec<(String, CrdOutcome)>,
    ) -> Result<Loaded, LoadError> {
        let mut shown = steps.to_vec();
        for o in self.history(steps, true, &|| false)? {
            if let Some(s) = shown.iter_mut().find(|s| s.key() == o.key) {
                let h = format!("history: {}", history::summary(&o, true));
                s.note = Some(match s.note.take() {
                    Some(n) => format!("{n}; {h}"),
                    None => h,
                });
            }
        }
        Ok(Loaded::Planned(Planned {
            steps: shown,
            preflight,
            crds,
        }))
    }

    /// Nothing to install: the skipped releases, and their histories completed.
    fn unchanged(&self, steps: &[Step], has_history: bool) -> Result<Loaded, LoadError> {
        for s in steps {
            if let Action::Skip(why) = &s.action {
                self.progress.skipped(s, why);
            }
        }
        let outcomes = self.history(steps, false, &|| false)?;
        for o in &outcomes {
            self.progress.history(o);
        }
        Ok(Loaded::Unchanged(Unchanged {
            history: outcomes,
            has_history,
        }))
    }

    /// The install pass: the plan run on `target`, its records read while
    /// the releases install; if reading fails, no further step starts.
    fn install(
        &self,
        target: &dyn Target,
        snapshot: Snapshot,
        run_steps: &[Step],
        to_read: &[stream::Key],
    ) -> Result<Vec<Report>, LoadError> {
        self.progress.installing();
        let stop = self.stop;
        let jobs = self.options.jobs;
        let print = |r: &Report| {
            // After an interrupt, the caller says what happened, at the end.
            if !stop.is_interrupted() {
                self.progress.restored(r);
            }
        };
        let (reports, read) = self.reread.feed(to_read, jobs.max(1) * 4, |feed| {
            let fetch = |step: &Step| -> Option<Zeroizing<Vec<u8>>> {
                snapshot.record(step).or_else(|| {
                    let record = feed.take(&stream::key(step));
                    if record.is_none() && feed.failure().is_some() {
                        stop.stop();
                    }
                    record
                })
            };
            run_plan(target, run_steps, jobs, stop, fetch, print)
        });
        drop(snapshot);
        match read {
            Ok(()) => Ok(reports),
            Err(error) => Err(LoadError::Stopped {
                error: Box::new(error),
                tally: steps::tally(&reports),
            }),
        }
    }

    /// After the installs: the other saved revisions of the releases now
    /// installed, and the check that every selected release is deployed.
    fn finish(
        &self,
        cluster: Option<&crate::cluster::Cluster>,
        steps: &[Step],
        reports: Vec<Report>,
        mut other_failures: usize,
    ) -> Result<Loaded, LoadError> {
        let interrupted = || self.stop.is_interrupted();
        let done: Vec<Step> = reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Skipped(_)))
            .map(|r| r.step.clone())
            .collect();
        let history = self
            .history(&done, false, &interrupted)
            .unwrap_or_else(|e| {
                self.progress.history_failed(&e);
                other_failures += 1;
                Vec::new()
            });
        for o in &history {
            if !interrupted() {
                self.progress.history(o);
            }
        }
        other_failures += history.iter().filter(|o| o.failed()).count();
        // Every selected release must be deployed now, whatever helm said.
        let not_deployed = match cluster.map(|c| self.deployed(c)) {
            Some(Ok(now)) => steps::not_deployed(&now, steps),
            Some(Err(e)) => {
                // Not knowing is not success.
                self.progress.check_failed(&e);
                other_failures += 1;
                Vec::new()
            }
            None => Vec::new(),
        };
        let unexplained = steps::unexplained(&reports, &not_deployed)
            .into_iter()
            .cloned()
            .collect();
        Ok(Loaded::Ran(Ran {
            tally: steps::tally(&reports),
            other_failures,
            not_deployed,
            unexplained,
            interrupted: interrupted(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::ReleaseRecord;
    use crate::select::Selection;
    use std::sync::Mutex;

    /// A Helm 3 release record.
    fn record(ns: &str, name: &str, rev: u32, status: &str) -> ReleaseRecord {
        let json = serde_json::json!({
            "name": name, "namespace": ns, "version": rev,
            "info": {"status": status},
            "chart": {"metadata": {"name": "c", "version": "1.0.0"}},
            "manifest": "---\n# Source: c/templates/x.yaml\nkind: K\n",
        });
        ReleaseRecord::from_helm_json(json.to_string().into_bytes()).unwrap()
    }

    /// A Helm 3 snapshot of `(namespace, name, revision, status)` records.
    fn snapshot(rows: &[(&str, &str, u32, &str)]) -> Vec<u8> {
        let index = crate::testing::helm3_index("https://127.0.0.1:6443", "test");
        let records: Vec<ReleaseRecord> = rows
            .iter()
            .map(|(ns, name, rev, status)| record(ns, name, *rev, status))
            .collect();
        crate::snapshot::write_snapshot(Vec::new(), index, &records).unwrap()
    }

    const ROWS: [(&str, &str, u32, &str); 5] = [
        ("a", "db", 1, "superseded"),
        ("a", "db", 2, "deployed"),
        ("a", "db-x", 1, "deployed"),
        ("b", "web", 1, "deployed"),
        ("b", "zz", 1, "deployed"),
    ];

    fn options(order: &[&str], exclude: &[&str]) -> LoadOptions {
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        LoadOptions {
            selection: Selection::new(&[], &exclude).unwrap(),
            scope: None,
            statuses: vec!["deployed".to_owned()],
            mode: super::super::plan::Mode::Install,
            order: order.iter().map(|s| s.to_string()).collect(),
            jobs: 2,
            dry_run: false,
            keep: Keep::None,
            driver: crate::source::helm::Driver::Secret,
            helm: std::path::PathBuf::from("helm"),
            helm_args: Vec::new(),
        }
    }

    /// A target that records the releases it restores and the revision of
    /// the record it got for each.
    #[derive(Default)]
    struct Recording {
        restored: Mutex<Vec<String>>,
    }

    impl Target for Recording {
        fn restore(&self, _step: &Step, record: &[u8]) -> Outcome {
            let r = crate::release::Summary::from_helm_json(record).unwrap();
            self.restored
                .lock()
                .unwrap()
                .push(format!("{}/{}.v{}", r.namespace, r.name, r.revision));
            Outcome::Done
        }
    }

    /// A progress that keeps what it is told, one line each.
    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Seen {
        fn push(&self, line: String) {
            self.0.lock().unwrap().push(line);
        }
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Progress for Seen {
        fn check(&self, index: &Index) -> Result<(), Veto> {
            self.push(format!("check {}", index.releases.len()));
            if index.cluster.context == "refused" {
                return Err("too old".into());
            }
            Ok(())
        }
        fn verified(&self, _index: &Index) {
            self.push("verified".to_owned());
        }
        fn skipped(&self, step: &Step, why: &str) {
            self.push(format!("skipped {}: {why}", step.key()));
        }
        fn installing(&self) {
            self.push("installing".to_owned());
        }
        fn restored(&self, report: &Report) {
            self.push(format!("{} {:?}", report.step.key(), report.outcome));
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// What an install pass test runs with: a runtime, a stop that is not
    /// set, the progress lines seen and a recording target.
    fn harness() -> (tokio::runtime::Runtime, Arc<Stop>, Seen, Recording) {
        (
            runtime(),
            Arc::new(Stop::default()),
            Seen::default(),
            Recording::default(),
        )
    }

    /// The first pass over `first`, planned against an empty target with
    /// `options`; later passes read `again`. Returns the plan's steps in
    /// run order, the records to read and what is left of the snapshot.
    fn prepared(
        first: &[u8],
        again: Vec<u8>,
        options: &LoadOptions,
    ) -> (Rereader<'static>, Snapshot, Vec<Step>, Vec<stream::Key>) {
        let mut snapshot = read(first, &options.statuses, &options.order).unwrap();
        let reread = Rereader::new(
            Box::new(move || Ok(Box::new(std::io::Cursor::new(again.clone())) as Box<dyn Read>)),
            snapshot.index.clone(),
        );
        let prepared = steps::prepare(&mut snapshot, &HashMap::new(), options);
        let run_steps = steps::run_order(&prepared.steps);
        let to_read = steps::keys_to_read(&snapshot, &run_steps);
        (reread, snapshot, run_steps, to_read)
    }

    fn run<'a>(
        runtime: &'a tokio::runtime::Runtime,
        options: &'a LoadOptions,
        reread: &'a Rereader<'a>,
        stop: &'a Arc<Stop>,
        progress: &'a dyn Progress,
    ) -> Run<'a> {
        Run {
            runtime,
            options,
            reread,
            stop,
            progress,
            storage: None,
        }
    }

    #[test]
    fn the_install_pass_restores_from_records_read_again_ordered_first_and_reports_each() {
        let bytes = snapshot(&ROWS);
        let options = options(&["b/zz"], &["b/web"]);
        let (reread, snapshot, run_steps, to_read) = prepared(&bytes, bytes.clone(), &options);
        // The ordered release's record was kept by the first pass; the
        // others are read again, in archive order.
        let names: Vec<String> = to_read.iter().map(|k| k.name.clone()).collect();
        assert_eq!(names, ["db-x", "db"]);
        let (rt, stop, seen, target) = harness();
        let run = run(&rt, &options, &reread, &stop, &seen);
        let reports = run
            .install(&target, snapshot, &run_steps, &to_read)
            .unwrap();
        let mut restored = target.restored.into_inner().unwrap();
        // The ordered one first, alone; then the others on 2 threads.
        assert_eq!(restored[0], "b/zz.v1");
        restored[1..].sort();
        assert_eq!(restored, ["b/zz.v1", "a/db-x.v1", "a/db.v2"]);
        let lines = seen.lines();
        assert_eq!(lines[0], "installing");
        assert_eq!(lines[1], "b/zz Done");
        let mut rest = lines[2..].to_vec();
        rest.sort();
        assert_eq!(
            rest,
            ["a/db Done", "a/db-x Done", "b/web Skipped(\"excluded\")"]
        );
        let t = steps::tally(&reports);
        assert_eq!((t.done, t.skipped, t.failed, t.not_started), (3, 1, 0, 0));
        // No cluster to check and no history: the tally is the result.
        let Loaded::Ran(ran) = run.finish(None, &run_steps, reports, 0).unwrap() else {
            panic!("not a run");
        };
        assert_eq!(ran.tally, t);
        assert_eq!(ran.other_failures, 0);
        assert!(ran.not_deployed.is_empty() && ran.unexplained.is_empty());
        assert!(!ran.interrupted);
    }

    #[test]
    fn an_interrupt_before_the_install_pass_starts_nothing_and_reports_nothing() {
        let bytes = snapshot(&ROWS);
        let options = options(&["b/zz"], &[]);
        let (reread, snapshot, run_steps, to_read) = prepared(&bytes, bytes.clone(), &options);
        let (rt, stop, seen, target) = harness();
        stop.interrupt();
        let run = run(&rt, &options, &reread, &stop, &seen);
        let reports = run
            .install(&target, snapshot, &run_steps, &to_read)
            .unwrap();
        assert!(target.restored.into_inner().unwrap().is_empty());
        assert!(reports.iter().all(|r| r.outcome == Outcome::NotStarted));
        assert_eq!(reports.len(), 4);
        // The caller armed its signals; the lines after an interrupt are its own.
        assert_eq!(seen.lines(), ["installing"]);
        let Loaded::Ran(ran) = run.finish(None, &run_steps, reports, 0).unwrap() else {
            panic!("not a run");
        };
        assert!(ran.interrupted);
        assert_eq!(ran.tally.not_started, 4);
    }

    #[test]
    fn a_snapshot_changed_before_the_install_pass_stops_it_with_the_tally() {
        let bytes = snapshot(&ROWS);
        // Another save: the index differs, so the second pass refuses it.
        let mut later = ROWS.to_vec();
        later.push(("c", "new", 1, "deployed"));
        let options = options(&["b/zz"], &[]);
        let (reread, snapshot, run_steps, to_read) =
            prepared(&bytes, self::snapshot(&later), &options);
        let (rt, stop, seen, target) = harness();
        let run = run(&rt, &options, &reread, &stop, &seen);
        let err = run
            .install(&target, snapshot, &run_steps, &to_read)
            .unwrap_err();
        let LoadError::Stopped { error, tally } = &err else {
            panic!("{err}");
        };
        assert!(
            matches!(**error, stream::StreamError::OtherIndex),
            "{error}"
        );
        // The ordered release's record came from the first pass; no other
        // release started once reading failed.
        assert_eq!(target.restored.into_inner().unwrap(), ["b/zz.v1"]);
        assert_eq!(tally.done, 1);
        assert_eq!(tally.done + tally.failed + tally.not_started, 4);
        assert!(
            err.to_string()
                .contains("; load stopped: restored 1 release(s)")
        );
        // Not an interrupt: the releases that ended were reported.
        assert!(seen.lines().contains(&"b/zz Done".to_owned()));
    }

    #[test]
    fn nothing_to_install_reports_the_skipped_releases_and_plans_without_storage() {
        let bytes = snapshot(&ROWS);
        let options = options(&[], &["*"]);
        let (reread, _snapshot, run_steps, _) = prepared(&bytes, bytes.clone(), &options);
        let (rt, stop, seen) = (runtime(), Arc::new(Stop::default()), Seen::default());
        let run = run(&rt, &options, &reread, &stop, &seen);
        let Loaded::Unchanged(u) = run.unchanged(&run_steps, false).unwrap() else {
            panic!("not unchanged");
        };
        assert!(u.history.is_empty() && !u.has_history);
        let mut lines = seen.lines();
        lines.sort();
        assert_eq!(
            lines,
            [
                "skipped a/db-x: excluded",
                "skipped a/db: excluded",
                "skipped b/web: excluded",
                "skipped b/zz: excluded"
            ]
        );
        // A dry run's plan is the steps as they are, with no history to note.
        let Loaded::Planned(p) = run.planned(&run_steps, None, Vec::new()).unwrap() else {
            panic!("not planned");
        };
        assert_eq!(p.steps.len(), 4);
        assert!(p.steps.iter().all(|s| s.note.is_none()));
    }

    #[test]
    fn load_checks_the_first_pass_and_the_callers_veto_before_touching_the_destination() {
        let rt = runtime();
        let _inside = rt.enter();
        // A client that is never used: the load ends before any request.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let cluster = || {
            Destination::Cluster(crate::cluster::Cluster {
                client: kube::Client::try_from(config.clone()).unwrap(),
                server: String::new(),
                context: String::new(),
                default_namespace: "default".to_owned(),
            })
        };
        let stop = Arc::new(Stop::default());
        let input = |bytes: Vec<u8>| Input {
            first: Box::new(std::io::Cursor::new(bytes)),
            again: Box::new(|| Err("not read again".into())),
        };
        let options = options(&[], &[]);
        // A truncated snapshot fails the first pass: nothing is checked.
        let mut bytes = snapshot(&ROWS);
        bytes.truncate(bytes.len() / 2);
        let seen = Seen::default();
        let err = load(&rt, cluster(), input(bytes), &options, &stop, &seen).unwrap_err();
        assert!(matches!(err, LoadError::Snapshot(_)), "{err}");
        assert!(seen.lines().is_empty());
        // The caller refuses the index: it is not reported as verified.
        let index = crate::testing::helm3_index("https://127.0.0.1:6443", "refused");
        let records: Vec<ReleaseRecord> = vec![record("a", "db", 1, "deployed")];
        let bytes = crate::snapshot::write_snapshot(Vec::new(), index, &records).unwrap();
        let seen = Seen::default();
        let err = load(&rt, cluster(), input(bytes), &options, &stop, &seen).unwrap_err();
        assert!(matches!(err, LoadError::Refused(_)), "{err}");
        assert_eq!(err.to_string(), "too old");
        assert_eq!(seen.lines(), ["check 1"]);
    }
}
