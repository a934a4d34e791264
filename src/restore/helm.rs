//! The helm binary as a restore [`Target`]: each step runs the real `helm`
//! with a frozen chart, the user's values on its standard input. A failed
//! install is uninstalled again so that nothing is left half-applied and a
//! rerun can complete it. Its processes are registered with the run's
//! [`Stop`], so an interrupt reaches them, and their failed installs are
//! still uninstalled.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::RestoreError;
use super::execute::{NotSpawned, Outcome, Stop, Target};
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

/// Why a helm command failed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The list of running helm processes is poisoned (a thread panicked).
    #[error("helm-bulk's process list is poisoned")]
    Poisoned,
    /// Load was stopped before the command started.
    #[error("stopped before it started")]
    Stopped,
    /// The helm binary could not be started.
    #[error("cannot run {}: {source}", bin.display())]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for helm failed.
    #[error("helm did not finish: {0}")]
    Wait(#[source] std::io::Error),
    /// helm ran and failed: the last error line it printed (helm's own
    /// message, the text the defect check reads).
    #[error("{0}")]
    Helm(String),
}

impl HelmRunner {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(&self.global_args)
            .env("HELM_DRIVER", self.driver.name());
        c
    }

    /// Runs helm with `stdin` as its standard input; Err is helm's message.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<(), HelmError> {
        self.output(args, stdin).map(drop)
    }

    /// Runs helm with `stdin` as its standard input and returns its standard
    /// output; Err is helm's message.
    pub(crate) fn output(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, HelmError> {
        let mut c = self.command();
        c.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // An install either starts before the stop (and gets the signal) or
        // not at all; clean-up commands still run.
        let new_work = matches!(args.first(), Some(&"install" | &"upgrade"));
        let mut child = self.stop.spawn(&mut c, new_work).map_err(|e| match e {
            NotSpawned::Poisoned => HelmError::Poisoned,
            NotSpawned::Stopped => HelmError::Stopped,
            NotSpawned::Io(source) => HelmError::Spawn {
                bin: self.bin.clone(),
                source,
            },
        })?;
        let pid = child.id();
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // helm reads the whole of stdin before doing anything, so this does not deadlock.
            let _ = pipe.write_all(data);
        }
        let out = child.wait_with_output();
        self.stop.ended(pid);
        let out = out.map_err(HelmError::Wait)?;
        let stdout = Zeroizing::new(out.stdout);
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(HelmError::Helm(last_error_line(&out.stderr)))
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

    fn install(&self, step: &Step, chart: &str, values: &[u8]) -> Result<(), HelmError> {
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
    ) -> Result<(), HelmError> {
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
}

impl Target for HelmRunner {
    fn restore(&self, step: &Step, record: &[u8]) -> Outcome {
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
                    Partial::None => e.to_string(),
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
            Action::Upgrade => self
                .apply("upgrade", "--reset-values", step, &chart, &frozen.values)
                .map_err(|e| e.to_string()),
            Action::Replace => self
                .run(&["uninstall", &step.name, "-n", &step.namespace], None)
                .map_err(|e| format!("uninstall before reinstalling failed: {e}"))
                .and_then(|()| {
                    install().map_err(|e| format!("uninstalled, but reinstalling failed: {e}"))
                }),
            // Not restored: the scheduler reports these without a target.
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
