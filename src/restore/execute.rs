//! Restore execution: each step runs the real `helm` binary with a frozen
//! chart. Ordered steps run one by one first, the rest on `jobs` threads. A
//! failing release never stops the others; a failed install is uninstalled
//! again so that nothing is left half-applied and a rerun can complete it.
//!
//! A [`Stop`] ends a run early (the CLI's Ctrl-C): no step starts after it,
//! the helm processes running are listed so the caller can pass the signal
//! on, and their failed installs are still uninstalled.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::RestoreError;
use super::frozen::{ChartHandle, FrozenChart};
use super::plan::{Action, Step};
use crate::source::helm::Driver;

/// The helm binary: HELM_BIN (unless empty), else `helm` on PATH.
pub fn helm_bin() -> PathBuf {
    std::env::var_os("HELM_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"))
}

/// The Helm generation of the helm binary: Helm 4 when `helm version` says
/// v4, else Helm 3 (also when it does not run).
pub fn helm_generation() -> crate::snapshot::SourceKind {
    let out = std::process::Command::new(helm_bin())
        .args(["version", "--template", "{{.Version}}"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() && o.stdout.starts_with(b"v4.") => {
            crate::snapshot::SourceKind::Helm4
        }
        _ => crate::snapshot::SourceKind::Helm3,
    }
}

/// How to run helm.
#[derive(Debug, Clone)]
pub struct HelmRunner {
    /// The helm binary (HELM_BIN, else `helm`).
    pub bin: PathBuf,
    /// Arguments added to every call (`--kube-context`, `--kubeconfig`).
    pub global_args: Vec<String>,
    /// Helm's storage driver, given to every call as HELM_DRIVER (helm has
    /// no flag for it), so that helm installs where `--driver` says.
    pub driver: Driver,
    /// The release description recorded by helm.
    pub description: String,
    /// Builds the frozen chart of a record: [`super::frozen::freeze`] for
    /// Helm 3/4 records, [`super::frozen_helm2::freeze_record`] for Helm 2 ones.
    pub freezer: Freezer,
    /// Stops the run; the helm processes started are registered with it.
    pub stop: std::sync::Arc<Stop>,
}

/// What was left of a release whose install did not finish.
enum Partial {
    /// Nothing: the release does not exist.
    None,
    /// It existed and was uninstalled.
    Removed,
    /// It exists, and uninstalling it failed.
    Left,
}

/// Turns a stored record into a frozen chart.
pub type Freezer = fn(&[u8]) -> Result<FrozenChart, RestoreError>;

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done as planned.
    Done,
    /// Not touched.
    Skipped(String),
    /// Failed, with helm's message.
    Failed(String),
    /// Not started: the run was stopped first.
    NotStarted,
    /// Failed because helm refused the chart helm-bulk generated: a defect
    /// of helm-bulk, which a rerun does not fix. The message names the
    /// stored document and says how to report it.
    Defect(String),
}

/// Stops a running plan: no step starts once [`Stop::stop`] was called.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: AtomicBool,
    running: Mutex<BTreeSet<u32>>,
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

    /// The process IDs of the helm processes running now.
    pub fn running(&self) -> Vec<u32> {
        self.running
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    fn ended(&self, pid: u32) {
        if let Ok(mut r) = self.running.lock() {
            r.remove(&pid);
        }
    }
}

/// Where helm-bulk defects are reported.
pub const REPORT_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/issues");

/// The one-line explanation of a helm error about a frozen chart, and, with
/// `--debug`, the stored document and its frozen form on stderr (they may
/// hold secrets, so only on request and never on disk).
pub(crate) fn defect(frozen: &FrozenChart, error: &str) -> Option<String> {
    let at = frozen.locate(error)?;
    let place = match (at.doc, at.line) {
        (Some(doc), Some(line)) => format!("{}, line {line}", doc.what),
        (Some(doc), None) => doc.what.clone(),
        (None, _) => format!(
            "a stored document of template {} ({} in all)",
            at.file.path,
            at.file.docs.len()
        ),
    };
    if crate::debug::enabled() {
        let docs: Vec<&super::frozen::FrozenDoc> = match at.doc {
            Some(d) => vec![d],
            None => at.file.docs.iter().collect(),
        };
        for doc in docs {
            eprintln!(
                "debug: {} as stored (may hold secrets):\n{}\ndebug: end of the stored document\n\
                 debug: the same document escaped in the frozen template {} (from line {}):\n{}\ndebug: end of the frozen document",
                doc.what,
                doc.text.as_str(),
                at.file.path,
                doc.first_line,
                super::frozen::escape_template(&doc.text)
            );
        }
    }
    Some(format!(
        "helm cannot read the chart helm-bulk generated from the stored release ({place}): {error}. \
         This is a defect of helm-bulk, not of your chart or cluster, and running load again will not fix it: \
         please report it at {REPORT_URL}, with what `helm bulk --debug load` prints about this release \
         (the document itself: check it for secrets before sharing)"
    ))
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

/// helm's error in one line: from its last `Error: …` line to the end (Helm
/// 3 lists multiple errors on the lines after it), without hints such as
/// "Use --debug flag to render out invalid YAML"; else its last line.
fn last_error_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let Some(start) = lines.iter().rposition(|l| l.starts_with("Error: ")) else {
        return lines
            .iter()
            .rev()
            .find(|l| !l.is_empty())
            .unwrap_or(&"helm failed without a message")
            .to_string();
    };
    let message: Vec<&str> = lines[start..]
        .iter()
        .copied()
        .filter(|l| !l.is_empty() && !l.starts_with("Use --debug"))
        .collect();
    let message = message.join(" ");
    message
        .strip_prefix("Error: ")
        .unwrap_or(&message)
        .to_owned()
}

/// `--labels k=v,…` for a release that had labels.
fn labels_arg(step: &Step) -> Option<String> {
    if step.labels.is_empty() {
        return None;
    }
    Some(
        step.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

impl HelmRunner {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(&self.global_args)
            .env("HELM_DRIVER", self.driver.name());
        c
    }

    /// Runs helm with `stdin` as its standard input; Err is helm's message.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<(), String> {
        self.output(args, stdin).map(drop)
    }

    /// Runs helm with `stdin` as its standard input and returns its standard
    /// output; Err is helm's message.
    pub(crate) fn output(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut c = self.command();
        c.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Checked and registered under the lock the caller's signal
        // forwarding takes: an install either starts before the stop (and
        // gets the signal) or not at all. Clean-up commands still run.
        let mut child = {
            let mut running = self
                .stop
                .running
                .lock()
                .map_err(|_| "helm-bulk's process list is poisoned".to_owned())?;
            if self.stop.is_stopped() && matches!(args.first(), Some(&"install" | &"upgrade")) {
                return Err("stopped before it started".to_owned());
            }
            let child = c
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
            running.insert(child.id());
            child
        };
        let pid = child.id();
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // helm reads the whole of stdin before doing anything, so this does not deadlock.
            let _ = pipe.write_all(data);
        }
        let out = child.wait_with_output();
        self.stop.ended(pid);
        let out = out.map_err(|e| format!("helm did not finish: {e}"))?;
        let stdout = Zeroizing::new(out.stdout);
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(last_error_line(&out.stderr))
        }
    }

    /// Uninstalls what an install that did not finish left, without its
    /// hooks (the release never ran as a whole; its pre-delete hooks would
    /// act on a half-made release).
    fn remove_partial(&self, step: &Step) -> Partial {
        if !self.exists(step) {
            return Partial::None;
        }
        let args = ["uninstall", &step.name, "-n", &step.namespace, "--no-hooks"];
        match self.run(&args, None) {
            Ok(()) => Partial::Removed,
            Err(_) => Partial::Left,
        }
    }

    /// Whether the release exists now (any status).
    fn exists(&self, step: &Step) -> bool {
        self.run(&["status", &step.name, "-n", &step.namespace], None)
            .is_ok()
    }

    fn install(&self, step: &Step, chart: &str, values: &[u8]) -> Result<(), String> {
        self.apply("install", "--create-namespace", step, chart, values)
    }

    /// `helm VERB NAME CHART --namespace NS FLAG --values - --description …
    /// [--labels …]`, the values on standard input.
    fn apply(
        &self,
        verb: &str,
        flag: &str,
        step: &Step,
        chart: &str,
        values: &[u8],
    ) -> Result<(), String> {
        let labels = labels_arg(step);
        let mut args = vec![
            verb,
            &step.name,
            chart,
            "--namespace",
            &step.namespace,
            flag,
            "--values",
            "-",
            "--description",
            &self.description,
        ];
        if let Some(l) = &labels {
            args.extend(["--labels", l]);
        }
        self.run(&args, Some(values))
    }

    /// Runs one step with the record of its revision.
    pub fn execute(&self, step: &Step, record: Option<&[u8]>) -> Outcome {
        match &step.action {
            Action::Skip(why) => return Outcome::Skipped(why.clone()),
            Action::Refuse(why) => return Outcome::Failed(why.clone()),
            _ => {}
        }
        if self.stop.is_stopped() {
            return Outcome::NotStarted;
        }
        let Some(record) = record else {
            return Outcome::Failed("the snapshot has no record for this revision".to_owned());
        };
        let frozen = match (self.freezer)(record) {
            Ok(f) => f,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let handle = match ChartHandle::new(&frozen.archive) {
            Ok(h) => h,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let chart = handle.path();
        // Leave nothing half-applied: a failed install is removed again.
        let install = || {
            self.install(step, &chart, &frozen.values).map_err(|e| {
                match self.remove_partial(step) {
                    Partial::None => e,
                    Partial::Removed => format!("{e} (the partial release was uninstalled)"),
                    Partial::Left => format!(
                        "{e} (the partial release could not be uninstalled; run load again)"
                    ),
                }
            })
        };
        let result = match step.action {
            Action::Install => install(),
            Action::Complete => match self.remove_partial(step) {
                Partial::Left => Err(
                    "cannot uninstall what the interrupted restore left; run load again".to_owned(),
                ),
                Partial::None | Partial::Removed => install(),
            },
            Action::Upgrade => {
                self.apply("upgrade", "--reset-values", step, &chart, &frozen.values)
            }
            Action::Replace => self
                .run(&["uninstall", &step.name, "-n", &step.namespace], None)
                .map_err(|e| format!("uninstall before reinstalling failed: {e}"))
                .and_then(|()| {
                    install().map_err(|e| format!("uninstalled, but reinstalling failed: {e}"))
                }),
            Action::Skip(_) | Action::Refuse(_) => Ok(()),
        };
        drop(handle);
        match result {
            Ok(()) => Outcome::Done,
            Err(e) => match defect(&frozen, &e) {
                Some(d) => Outcome::Defect(d),
                None => Outcome::Failed(e),
            },
        }
    }
}

/// Runs the plan: ordered steps sequentially, then the rest on `jobs`
/// threads. `record` fetches the record of a step's revision; `done` is
/// called as each step finishes (for live output).
pub fn run_plan<R, D>(
    runner: &HelmRunner,
    steps: &[Step],
    jobs: usize,
    record: R,
    done: D,
) -> Vec<Report>
where
    R: Fn(&Step) -> Option<Zeroizing<Vec<u8>>> + Sync,
    D: Fn(&Report) + Sync,
{
    let one = |step: &Step| {
        let start = Instant::now();
        let data = if step.action.changes() {
            record(step)
        } else {
            None
        };
        let outcome = runner.execute(step, data.as_deref().map(|d| d.as_slice()));
        let report = Report {
            step: step.clone(),
            outcome,
            elapsed: start.elapsed(),
        };
        done(&report);
        report
    };
    let mut reports: Vec<Report> = Vec::with_capacity(steps.len());
    let (ordered, rest): (Vec<&Step>, Vec<&Step>) = steps.iter().partition(|s| s.ordered);
    for s in ordered {
        reports.push(one(s));
    }
    let queue = Mutex::new(rest.into_iter().enumerate());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some((i, step)) = next else { break };
                    let r = one(step);
                    if let Ok(mut res) = results.lock() {
                        res.push((i, r));
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

    #[test]
    fn helm_errors_become_one_line() {
        assert_eq!(
            last_error_line(b"Error: YAML parse error on x.yaml: bad\nUse --debug flag to render out invalid YAML\n"),
            "YAML parse error on x.yaml: bad"
        );
        assert_eq!(
            last_error_line(
                b"W warn\nError: INSTALLATION FAILED: 1 error occurred:\n\t* it broke\n\n"
            ),
            "INSTALLATION FAILED: 1 error occurred: * it broke"
        );
        assert_eq!(last_error_line(b"no prefix\n\n"), "no prefix");
        assert_eq!(last_error_line(b""), "helm failed without a message");
    }

    #[test]
    fn a_helm_error_about_a_frozen_chart_is_reported_as_a_defect() {
        let rec = serde_json::json!({
            "name": "r", "namespace": "n", "version": 2,
            "chart": {"metadata": {"name": "app", "version": "1.0.0"}},
            "manifest": "---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\n---\n# Source: app/templates/cm.yaml\nkind: Secret\nx: 1\n",
        });
        let frozen = super::super::frozen::freeze(rec.to_string().as_bytes()).unwrap();
        let error = r#"INSTALLATION FAILED: parse error at (app/templates/cm.yaml:4): unexpected "{" in command"#;
        let line = defect(&frozen, error).unwrap();
        assert!(!line.contains('\n'), "one line: {line}");
        for part in [
            "the chart helm-bulk generated from the stored release",
            "(manifest document 2 of 2 (# Source: app/templates/cm.yaml), line 2)",
            error,
            "defect of helm-bulk",
            "will not fix it",
            REPORT_URL,
            "--debug",
        ] {
            assert!(line.contains(part), "{part:?} in {line}");
        }
        assert!(REPORT_URL.starts_with("https://github.com/"));
        assert_eq!(defect(&frozen, "Service \"x\" is invalid: port"), None);
        // A YAML error names no document: the one that is not YAML.
        let rec = serde_json::json!({
            "name": "r", "namespace": "n", "version": 2,
            "chart": {"metadata": {"name": "app", "version": "1.0.0"}},
            "manifest": "---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\n---\n# Source: app/templates/cm.yaml\nkind: Secret\nx: [1\n",
        });
        let frozen = super::super::frozen::freeze(rec.to_string().as_bytes()).unwrap();
        let line = defect(
            &frozen,
            "YAML parse error on app/templates/cm.yaml: error converting YAML to JSON: yaml: line 2: did not find expected ',' or ']'",
        )
        .unwrap();
        assert!(
            line.contains("(manifest document 2 of 2 (# Source: app/templates/cm.yaml), line 2)"),
            "{line}"
        );
    }
}
