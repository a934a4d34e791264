//! The restore scheduler: runs a plan's steps against a [`Target`], the
//! helm binary ([`super::helm::HelmRunner`]) or a Tiller
//! ([`super::tiller::TillerTarget`]). Ordered steps run one by one first,
//! the rest on `jobs` threads; the reports come back in plan order. A
//! failing release never stops the others.
//!
//! A [`Stop`] ends a run early (the CLI's Ctrl-C): no step starts after it
//! (its report says [`Outcome::NotStarted`]), and a target that runs
//! processes registers them with it so the caller can pass the signal on.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::plan::{Action, Step};

/// Where a plan's releases are restored: it installs, upgrades, replaces or
/// completes one release from the stored record of its revision, and leaves
/// nothing half-applied when that fails.
pub trait Target: Sync {
    /// Restores `step`, whose action changes the target ([`Action::changes`]),
    /// from `record`, the stored record of its revision.
    fn restore(&self, step: &Step, record: &[u8]) -> Outcome;
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done as planned.
    Done,
    /// Not touched.
    Skipped(String),
    /// Failed, with the target's message.
    Failed(String),
    /// Not started: the run was stopped first.
    NotStarted,
    /// Failed because helm refused the chart helm-bulk generated: a defect
    /// of helm-bulk, which a rerun does not fix. The message names the
    /// stored document and says how to report it.
    Defect(String),
}

/// A finished step.
#[derive(Debug, Clone)]
pub struct Report {
    /// The step.
    pub step: Step,
    /// Its outcome.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// Stops a running plan: no step starts once [`Stop::stop`] was called.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: AtomicBool,
    /// Stopped from outside the run ([`Stop::interrupt`]).
    interrupted: AtomicBool,
    running: Mutex<BTreeSet<u32>>,
}

/// Why [`Stop::spawn`] did not start a process.
#[derive(Debug)]
pub(crate) enum NotSpawned {
    /// The run was stopped, and the process would start new work.
    Stopped,
    /// The list of running processes is poisoned.
    Poisoned,
    /// The process did not start.
    Io(std::io::Error),
}

impl Stop {
    /// No further step starts.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether [`Stop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Stops the run from outside it (the CLI's Ctrl-C), as [`Stop::stop`]
    /// does, and remembers that: a run stopped this way reports no more
    /// releases as they end ([`Stop::is_interrupted`]).
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.stop();
    }

    /// Whether [`Stop::interrupt`] was called.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// The process IDs of the processes running now.
    pub fn running(&self) -> Vec<u32> {
        self.running
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Starts `command` and registers it as running, unless it starts new
    /// work (`new_work`, an install or upgrade) and the run is stopped.
    /// Checked and registered under the lock the caller's signal forwarding
    /// takes ([`Stop::running`]): such a process either starts before the
    /// stop (and gets the signal) or not at all. Clean-up commands still run.
    pub(crate) fn spawn(&self, command: &mut Command, new_work: bool) -> Result<Child, NotSpawned> {
        let mut running = self.running.lock().map_err(|_| NotSpawned::Poisoned)?;
        if new_work && self.is_stopped() {
            return Err(NotSpawned::Stopped);
        }
        let child = command.spawn().map_err(NotSpawned::Io)?;
        running.insert(child.id());
        Ok(child)
    }

    /// The process `pid` of [`Stop::spawn`] has ended.
    pub(crate) fn ended(&self, pid: u32) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(&pid);
        }
    }
}

/// Runs the plan on `target`: ordered steps one by one, then the rest on
/// `jobs` threads. `record` fetches the record of a step's revision; it is
/// called by the thread that runs the step, for the steps that change the
/// target, in plan order. `done` is called as each step finishes (for live
/// output). The reports are in plan order, ordered steps first.
pub fn run_plan<T, R, D>(
    target: &T,
    steps: &[Step],
    jobs: usize,
    stop: &Stop,
    record: R,
    done: D,
) -> Vec<Report>
where
    T: Target + ?Sized,
    R: Fn(&Step) -> Option<Zeroizing<Vec<u8>>> + Sync,
    D: Fn(&Report) + Sync,
{
    // The record of a step that changes the target, unless the run is
    // stopped: Err is the step's outcome without running it.
    let fetch = |step: &Step| -> Result<Zeroizing<Vec<u8>>, Outcome> {
        match &step.action {
            Action::Skip(why) => return Err(Outcome::Skipped(why.clone())),
            Action::Refuse(why) => return Err(Outcome::Failed(why.clone())),
            _ => {}
        }
        if stop.is_stopped() {
            return Err(Outcome::NotStarted);
        }
        record(step).ok_or_else(|| {
            Outcome::Failed("the snapshot has no record for this revision".to_owned())
        })
    };
    let run = |step: &Step, fetched: Result<Zeroizing<Vec<u8>>, Outcome>, start: Instant| {
        let outcome = match fetched {
            Ok(data) => target.restore(step, &data),
            Err(outcome) => outcome,
        };
        let report = Report {
            step: step.clone(),
            outcome,
            elapsed: start.elapsed(),
        };
        done(&report);
        report
    };
    let (ordered, rest): (Vec<&Step>, Vec<&Step>) = steps.iter().partition(|s| s.ordered);
    let mut reports: Vec<Report> = Vec::with_capacity(steps.len());
    for step in ordered {
        let start = Instant::now();
        reports.push(run(step, fetch(step), start));
    }
    // The next step and its record are taken under one lock, so that the
    // records are fetched in plan order whichever thread is free first.
    let workers = jobs.max(1).min(rest.len());
    let queue = Mutex::new(rest.into_iter().enumerate());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| {
                        let (i, step) = q.next()?;
                        let start = Instant::now();
                        Some((i, step, fetch(step), start))
                    });
                    let Some((i, step, fetched, start)) = next else {
                        break;
                    };
                    let report = run(step, fetched, start);
                    if let Ok(mut res) = results.lock() {
                        res.push((i, report));
                    }
                }
            });
        }
    });
    let mut rest: Vec<(usize, Report)> = results.into_inner().unwrap_or_default();
    rest.sort_by_key(|(i, _)| *i);
    reports.extend(rest.into_iter().map(|(_, r)| r));
    reports
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::thread::ThreadId;

    /// A target that records what the scheduler asks of it: the steps it
    /// restores, with the thread and the record, and how many run at once.
    #[derive(Default)]
    struct Recording {
        restored: Mutex<Vec<(String, ThreadId, Vec<u8>)>>,
        now: AtomicUsize,
        most: AtomicUsize,
        /// Each restore waits (at most 5 s) until this many ran at once.
        want: usize,
        /// Steps whose restore fails.
        fail: Vec<&'static str>,
        /// A step whose restore stops the run (as Ctrl-C would meanwhile).
        stop_at: Option<(&'static str, Arc<Stop>)>,
    }

    impl Target for Recording {
        fn restore(&self, step: &Step, record: &[u8]) -> Outcome {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let waiting = Instant::now();
            while self.most.load(Ordering::SeqCst) < self.want
                && waiting.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(5));
            self.restored.lock().unwrap().push((
                step.name.clone(),
                std::thread::current().id(),
                record.to_vec(),
            ));
            if let Some((name, stop)) = &self.stop_at
                && step.name == *name
            {
                stop.stop();
            }
            self.now.fetch_sub(1, Ordering::SeqCst);
            if self.fail.contains(&step.name.as_str()) {
                Outcome::Failed(format!("{} broke", step.name))
            } else {
                Outcome::Done
            }
        }
    }

    fn step(name: &str, action: Action, ordered: bool) -> Step {
        Step {
            namespace: "ns".to_owned(),
            name: name.to_owned(),
            revision: 1,
            chart: "c-1".to_owned(),
            action,
            ordered,
            labels: Default::default(),
            note: None,
            selected: true,
        }
    }

    fn installs(names: &[&str]) -> Vec<Step> {
        names
            .iter()
            .map(|n| step(n, Action::Install, false))
            .collect()
    }

    /// The record fetcher: the step's name as its record, each call noted
    /// with its thread.
    fn fetcher(
        calls: &Mutex<Vec<(String, ThreadId)>>,
    ) -> impl Fn(&Step) -> Option<Zeroizing<Vec<u8>>> + Sync + '_ {
        move |s: &Step| {
            calls
                .lock()
                .unwrap()
                .push((s.name.clone(), std::thread::current().id()));
            (s.name != "missing").then(|| Zeroizing::new(s.name.clone().into_bytes()))
        }
    }

    fn names(reports: &[Report]) -> Vec<&str> {
        reports.iter().map(|r| r.step.name.as_str()).collect()
    }

    /// Each report's step name and outcome.
    fn outcomes(reports: &[Report]) -> Vec<(&str, &Outcome)> {
        reports
            .iter()
            .map(|r| (r.step.name.as_str(), &r.outcome))
            .collect()
    }

    /// Runs `steps` on `target`, `jobs` at once, until `stop`: the reports,
    /// and the names of the steps whose record was fetched, in order.
    fn run(
        target: &Recording,
        steps: &[Step],
        jobs: usize,
        stop: &Stop,
    ) -> (Vec<Report>, Vec<String>) {
        let calls = Mutex::new(Vec::new());
        let reports = run_plan(target, steps, jobs, stop, fetcher(&calls), |_| {});
        let fetched = calls.into_inner().unwrap().into_iter().map(|c| c.0);
        (reports, fetched.collect())
    }

    #[test]
    fn ordered_steps_run_first_one_by_one_and_reports_come_in_plan_order() {
        let mut steps = installs(&["a", "b", "c", "d", "e", "f"]);
        steps.insert(2, step("first", Action::Install, true));
        steps.insert(5, step("second", Action::Install, true));
        let target = Recording::default();
        let calls = Mutex::new(Vec::new());
        let done = Mutex::new(Vec::new());
        let reports = run_plan(&target, &steps, 3, &Stop::default(), fetcher(&calls), |r| {
            done.lock().unwrap().push(r.step.name.clone())
        });
        assert_eq!(
            names(&reports),
            ["first", "second", "a", "b", "c", "d", "e", "f"]
        );
        assert!(reports.iter().all(|r| r.outcome == Outcome::Done));
        let restored = target.restored.into_inner().unwrap();
        // The ordered steps ran first, in order, before any other started.
        let order: Vec<&str> = restored.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(order[..2], ["first", "second"]);
        // Each restore got its step's record, fetched by the thread that ran it.
        let calls = calls.into_inner().unwrap();
        for (name, thread, record) in &restored {
            assert_eq!(record, name.as_bytes());
            assert!(calls.contains(&(name.clone(), *thread)), "{name}");
        }
        // The records were fetched in plan order, once each.
        let fetched: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(fetched, names(&reports));
        // `done` saw every step once.
        let mut done = done.into_inner().unwrap();
        done.sort();
        let mut all: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
        all.sort();
        assert_eq!(done, all);
    }

    #[test]
    fn at_most_jobs_steps_run_at_once() {
        let steps = installs(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]);
        for jobs in [1, 3] {
            let target = Recording {
                want: jobs,
                ..Default::default()
            };
            let (reports, _) = run(&target, &steps, jobs, &Stop::default());
            assert_eq!(reports.len(), steps.len());
            assert_eq!(target.most.load(Ordering::SeqCst), jobs, "jobs {jobs}");
        }
        // 0 jobs still runs one at a time.
        let target = Recording::default();
        let (reports, _) = run(&target, &steps, 0, &Stop::default());
        assert!(reports.iter().all(|r| r.outcome == Outcome::Done));
        assert_eq!(target.most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn skipped_refused_and_recordless_steps_never_reach_the_target_and_failures_stop_nothing() {
        let steps = vec![
            step("skip", Action::Skip("exists".to_owned()), true),
            step("refuse", Action::Refuse("not ours".to_owned()), false),
            step("missing", Action::Install, false),
            step("broken", Action::Upgrade, false),
            step("fine", Action::Replace, false),
        ];
        let target = Recording {
            fail: vec!["broken"],
            ..Default::default()
        };
        let (reports, fetched) = run(&target, &steps, 2, &Stop::default());
        assert_eq!(
            outcomes(&reports),
            [
                ("skip", &Outcome::Skipped("exists".to_owned())),
                ("refuse", &Outcome::Failed("not ours".to_owned())),
                (
                    "missing",
                    &Outcome::Failed("the snapshot has no record for this revision".to_owned())
                ),
                ("broken", &Outcome::Failed("broken broke".to_owned())),
                ("fine", &Outcome::Done),
            ]
        );
        // Records are fetched only for the steps that change the target.
        assert_eq!(fetched, ["missing", "broken", "fine"]);
        let mut restored: Vec<String> = target
            .restored
            .into_inner()
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        restored.sort();
        assert_eq!(restored, ["broken", "fine"]);
    }

    #[test]
    fn no_step_starts_after_a_stop() {
        let stop = Arc::new(Stop::default());
        let mut steps = installs(&["a", "b", "c", "d"]);
        steps.insert(0, step("first", Action::Install, true));
        steps.insert(1, step("second", Action::Install, true));
        steps.push(step("skip", Action::Skip("exists".to_owned()), false));
        let target = Recording {
            stop_at: Some(("first", stop.clone())),
            ..Default::default()
        };
        let (reports, fetched) = run(&target, &steps, 2, &stop);
        assert_eq!(
            outcomes(&reports),
            [
                ("first", &Outcome::Done),
                ("second", &Outcome::NotStarted),
                ("a", &Outcome::NotStarted),
                ("b", &Outcome::NotStarted),
                ("c", &Outcome::NotStarted),
                ("d", &Outcome::NotStarted),
                ("skip", &Outcome::Skipped("exists".to_owned())),
            ]
        );
        // Nothing after the stop was fetched or restored.
        assert_eq!(fetched, ["first"]);
        assert_eq!(target.restored.into_inner().unwrap().len(), 1);

        // Stopped before the run: nothing starts at all.
        let stop = Stop::default();
        stop.stop();
        let target = Recording::default();
        let (reports, fetched) = run(&target, &installs(&["a", "b"]), 4, &stop);
        assert!(reports.iter().all(|r| r.outcome == Outcome::NotStarted));
        assert!(fetched.is_empty());
        assert!(target.restored.into_inner().unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_stopped_run_spawns_no_new_work_but_still_cleans_up() {
        let stop = Stop::default();
        let mut child = stop.spawn(&mut Command::new("true"), true).unwrap();
        assert_eq!(stop.running(), [child.id()]);
        child.wait().unwrap();
        stop.ended(child.id());
        assert!(stop.running().is_empty());
        stop.stop();
        assert!(matches!(
            stop.spawn(&mut Command::new("true"), true),
            Err(NotSpawned::Stopped)
        ));
        let mut cleanup = stop.spawn(&mut Command::new("true"), false).unwrap();
        cleanup.wait().unwrap();
        stop.ended(cleanup.id());
        assert!(stop.running().is_empty());
    }
}
