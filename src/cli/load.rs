//! `helm bulk load`: decrypt, verify, plan and restore what the cluster lacks.

use std::io::Seek as _;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use clap::Args;

use super::args::TillerArgs;
use super::args::{ClusterArgs, OpenArgs, Origin, SelectArgs, VerifyArgs};
use super::interrupt::Interrupt;
use super::{DEFAULT_SNAPSHOT, EXIT_PARTIAL, Failure, fail, print_stdout};
use helm_bulk::config::{Loaded as Config, effective_order};
use helm_bulk::release::ReleaseId as _;
use helm_bulk::restore::crds::CrdOutcome;
use helm_bulk::restore::execute::{Outcome, Report, Stop};
use helm_bulk::restore::history::{self, Keep};
use helm_bulk::restore::load::{self, LoadError, LoadOptions};
use helm_bulk::restore::pipeline::{
    self, Destination, Input, Planned, Progress, Ran, Unchanged, Veto,
};
use helm_bulk::restore::plan::{Action, Mode, Step};
use helm_bulk::restore::preflight::Preflight;
use helm_bulk::snapshot::Index;
use helm_bulk::source::helm::Driver;
use helm_bulk::store::input::SnapshotSource;
use helm_bulk::tiller::client::Tiller;

/// Arguments of `load`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk load --dry-run                         # print the plan, change nothing
  helm bulk load -i key.txt backup.age             # install what the cluster lacks
  helm bulk load --exclude 'ingress-nginx' backup.age
  helm bulk load --upgrade backup.age              # also bring existing releases back
  helm bulk load -n prod --jobs 8 backup.age
  helm bulk load --from s3://backups/helm/prod/latest

For each release, the last *deployed* revision in the snapshot is restored
(Helm's current release; for a snapshot taken in the middle of an upgrade, the
last good revision). It is installed with the real helm (HELM_BIN, or helm on
PATH) from a frozen chart: the stored manifest, hooks and notes reproduced
literally, with the same chart name, version, appVersion and values. Releases
listed in `order:` (config) or HELM_BULK_ORDER go first, one at a time; the
rest install in parallel. Releases the cluster has *deployed* are skipped;
those an earlier, interrupted load left are uninstalled and installed again;
someone else's release that is not deployed is left alone and reported (use
--replace, or --upgrade for a failed one). So load can be run again after a
partial failure, a Ctrl-C or a killed process, until it exits 0.

The whole snapshot is decrypted and verified in memory, and every frozen chart
to install is rendered with helm (client side) and its APIs checked, before
anything is installed. Load keeps little of it (the index, the CRDs, the
records of `order:` releases) and reads it again for the records of the
preflight, the installs and the history: a file is opened again, a bucket
object fetched again (the same ETag), standard input kept, still encrypted,
in an unlinked 0600 temporary file; a passphrase is asked once. If the
snapshot changed in between, load stops at once with one line. Exit code 3
means some releases failed or are not deployed at the end (each is listed);
the others were restored. Ctrl-C,
SIGTERM and SIGHUP stop starting installs, undo the installs they cut short and
exit 128 + the signal number; a second Ctrl-C exits at once.

The release's saved history comes back too: the restored revision keeps its
number and every other saved revision (older ones, a failed upgrade after it)
is written to Helm's storage as saved, so `helm history` and `helm rollback`
work as before. --history N keeps the newest N revisions, --no-history
restores the one revision as revision 1. A rerun completes an interrupted
history; revisions already stored as saved are left alone.

Helm 2 snapshots (save --source tiller or tiller-storage) are migrated: each
release is installed into Helm 3/4 as a frozen chart made from its manifest,
hooks (crd-install hooks become the chart's crds/), values and chart metadata.
With --to-tiller they go back into a Tiller instead (--tiller-host, TLS flags as
for save): InstallRelease, UpdateRelease for --upgrade, UninstallRelease --purge
then InstallRelease for --replace.")]
pub struct LoadArgs {
    /// The snapshot file (`-` reads standard input), or a bucket URL of one
    #[arg(value_name = "FILE|URL", default_value = DEFAULT_SNAPSHOT)]
    pub file: String,

    /// Load from object storage: s3://bucket/prefix/cluster/<timestamp>.tar.gz.age, or
    /// …/latest for the newest snapshot under that prefix
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,

    #[command(flatten)]
    pub open: OpenArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Upgrade releases the cluster already has to the snapshot's state
    #[arg(short = 'u', long, conflicts_with = "replace")]
    pub upgrade: bool,

    /// Uninstall releases the cluster already has, then install them from the snapshot
    #[arg(short = 'd', long)]
    pub replace: bool,

    /// Releases installed at the same time (ordered releases always go one by one)
    #[arg(short, long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,

    /// Revision statuses that may be restored; repeatable or comma-separated
    #[arg(
        long,
        value_name = "STATUS",
        value_delimiter = ',',
        default_value = "deployed"
    )]
    pub status: Vec<String>,

    /// Helm's storage driver: where releases are looked up, installed and their history written
    #[arg(
        long,
        value_name = "DRIVER",
        env = "HELM_DRIVER",
        default_value = "secret"
    )]
    pub driver: String,

    /// Restore a Helm 2 snapshot into Tiller (over gRPC) rather than migrating it to Helm 3/4
    #[arg(long, help_heading = "Helm 2 (Tiller)")]
    pub to_tiller: bool,

    #[command(flatten, next_help_heading = "Helm 2 (Tiller)")]
    pub tiller: TillerArgs,

    /// Restore at most the newest N saved revisions of each release (the restored one always)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "no_history")]
    pub history: Option<u32>,

    /// Restore no history: only the restored revision, as helm installs it (revision 1)
    #[arg(long)]
    pub no_history: bool,
}

pub(super) fn run(args: LoadArgs, config: &Config) -> Result<(), Failure> {
    let start = Instant::now();
    let selection = args.select.selection(config)?;
    let driver = Driver::parse(&args.driver)?;
    let order = effective_order(&config.config);
    let bin = load::helm_bin();
    // Even a dry run renders the frozen charts with helm (the preflight).
    if !args.to_tiller {
        load::check_helm(&bin)?;
    }
    let identities = args.open.decrypt.identity_files(config);
    let runtime = super::args::runtime()?;
    let (to, scope) = connect(&args, &runtime)?;

    // Check who made the snapshot, then decrypt and verify everything before
    // touching the cluster, keeping only the records that may be restored.
    let source = super::args::resolve_input(
        args.from.as_deref().unwrap_or(&args.file),
        &args.open.store,
        config,
    )?;
    if let Origin::Unverified = args.open.verify.check(&source, config)? {
        eprintln!(
            "WARNING: the snapshot's origin is unverified (no trusted signers are configured); anyone who knows a recipient can write a snapshot. Set --trusted-signers or `trustedSigners:`."
        );
    }
    // Load reads the snapshot more than once (see restore::stream): standard
    // input, which cannot be read again, is spooled as received (encrypted)
    // to an unlinked 0600 file; a bucket object is read again pinned to the
    // ETag of the first read.
    let spooled = match &source {
        SnapshotSource::File(p) if p.as_path() == std::path::Path::new("-") => Some(
            helm_bulk::store::input::spool(std::io::stdin())
                .map_err(|e| fail(format!("cannot read the snapshot from standard input: {e}")))?,
        ),
        _ => None,
    };
    let open_input = || -> Result<Box<dyn std::io::Read>, String> {
        match &spooled {
            Some(file) => {
                let mut file = file.try_clone().map_err(|e| e.to_string())?;
                file.seek(std::io::SeekFrom::Start(0))
                    .map_err(|e| e.to_string())?;
                Ok(Box::new(file))
            }
            None => source.open().map_err(|e| super::one_line(&e)),
        }
    };
    let passphrase = helm_bulk::vault::Passphrase::default();
    let input = match &spooled {
        Some(_) => open_input().map_err(fail)?,
        None => source.open()?,
    };
    let opened = helm_bulk::vault::open_again(input, &identities, &passphrase)?;
    let input = Input {
        first: opened.reader,
        again: Box::new(|| {
            let input = open_input()?;
            helm_bulk::vault::open_again(input, &identities, &passphrase)
                .map(|o| o.reader)
                .map_err(|e| super::one_line(&e).into())
        }),
    };
    let options = LoadOptions {
        selection,
        scope,
        statuses: args.status.clone(),
        mode: args.mode(),
        order,
        jobs: args.jobs,
        dry_run: args.dry_run,
        keep: args.keep(),
        driver,
        helm: bin,
        helm_args: helm_global_args(&args),
    };
    let stop = Arc::new(Stop::default());
    let terminal = Terminal {
        verify: &args.open.verify,
        runtime: &runtime,
        stop: stop.clone(),
        // A Ctrl-C stops a load into a cluster; one into Tiller just ends.
        signals: !args.to_tiller,
        interrupt: OnceLock::new(),
    };
    let loaded = load::load(&runtime, to, input, &options, &stop, &terminal).map_err(failure)?;
    match loaded {
        pipeline::Loaded::Planned(plan) => dry_run(&plan),
        pipeline::Loaded::Unchanged(unchanged) => nothing_to_install(&unchanged),
        pipeline::Loaded::Ran(ran) => report(&ran, terminal.interrupt.get().map(|i| &**i), start),
    }
}

impl LoadArgs {
    /// What to do with the releases the target has.
    fn mode(&self) -> Mode {
        if self.upgrade {
            Mode::Upgrade
        } else if self.replace {
            Mode::Replace
        } else {
            Mode::Install
        }
    }

    /// The history of each release (not into Tiller).
    fn keep(&self) -> Keep {
        match (self.no_history || self.to_tiller, self.history) {
            (true, _) => Keep::None,
            (false, Some(n)) => Keep::Newest(n),
            (false, None) => Keep::All,
        }
    }
}

/// Connects to the destination and returns it with the namespace load is
/// limited to: --to-tiller talks to Tiller only; otherwise to the
/// Kubernetes API and helm.
fn connect(
    args: &LoadArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<(Destination, Option<String>), Failure> {
    if args.to_tiller {
        let tiller = runtime.block_on(Tiller::connect(&args.tiller.options()))?;
        let scope = args
            .cluster
            .namespace
            .clone()
            .filter(|_| !args.cluster.all_namespaces);
        Ok((Destination::Tiller(tiller), scope))
    } else {
        let cluster = runtime.block_on(helm_bulk::cluster::connect(&args.cluster.options()))?;
        let scope = args.cluster.scope(&cluster.default_namespace);
        Ok((Destination::Cluster(cluster), scope))
    }
}

/// What the CLI prints while a load runs, on standard error.
struct Terminal<'a> {
    verify: &'a VerifyArgs,
    runtime: &'a tokio::runtime::Runtime,
    stop: Arc<Stop>,
    /// Whether signals stop the install pass.
    signals: bool,
    /// The signal handling, once the install pass started.
    interrupt: OnceLock<Arc<Interrupt>>,
}

/// A [`Failure`] the CLI's own check of the snapshot returned.
#[derive(Debug)]
struct Refusal(Failure);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Refusal {}

impl Progress for Terminal<'_> {
    fn check(&self, index: &Index) -> Result<(), Veto> {
        self.verify
            .check_age(index)
            .map_err(|f| Box::new(Refusal(f)) as Veto)
    }

    fn verified(&self, index: &Index) {
        eprintln!(
            "Snapshot of {} (context {}) created {}: {} releases",
            if index.cluster.server.is_empty() {
                "an unknown cluster".to_owned()
            } else {
                super::printable(&index.cluster.server)
            },
            if index.cluster.context.is_empty() {
                "-".to_owned()
            } else {
                super::printable(&index.cluster.context)
            },
            super::printable(&helm_bulk::timefmt::human(&index.created_at)),
            helm_bulk::release::distinct_releases(&index.releases)
        );
    }

    fn preflight(&self, p: &Preflight) {
        if p.checked > 0 {
            eprintln!(
                "Preflight: {} frozen chart(s) rendered with helm; every API they use will exist ({:.2}s)",
                p.checked,
                p.elapsed.as_secs_f64()
            );
        }
    }

    fn crd(&self, name: &str, outcome: &CrdOutcome) {
        match outcome {
            CrdOutcome::Created => eprintln!("created   CRD {name}"),
            CrdOutcome::Failed(e) => eprintln!("FAILED    CRD {name}: {e}"),
            _ => {}
        }
    }

    fn skipped(&self, step: &Step, why: &str) {
        eprintln!("skipped   {}: {why}", step.key());
    }

    fn installing(&self) {
        if self.signals {
            let _ = self.interrupt.set(super::interrupt::stop_on_interrupt(
                self.runtime,
                self.stop.clone(),
            ));
        }
    }

    fn restored(&self, report: &Report) {
        eprintln!("{}", report_line(report));
    }

    fn history(&self, outcome: &history::Outcome) {
        eprintln!("{}", history::report_line(outcome, false));
    }

    fn history_failed(&self, error: &LoadError) {
        eprintln!("FAILED    history: {error}");
    }

    fn check_failed(&self, error: &LoadError) {
        let why = match error {
            LoadError::Existing(e) => super::one_line(e),
            e => e.to_string(),
        };
        eprintln!("FAILED    cannot check that every release is deployed: {why}");
    }
}

/// The user's line for a load that failed as a whole.
fn failure(e: LoadError) -> Failure {
    match e {
        LoadError::Snapshot(e) => e.into(),
        LoadError::Tiller(e) => e.into(),
        LoadError::Existing(e) => e.into(),
        LoadError::Refused(v) => match v.downcast::<Refusal>() {
            Ok(refusal) => refusal.0,
            Err(v) => fail(super::one_line(&*v)),
        },
        LoadError::NotHelm2(kind) => fail(format!(
            "--to-tiller restores Helm 2 snapshots, and this one holds {kind} releases; load it without --to-tiller"
        )),
        LoadError::Problems(p) => {
            for (key, why) in &p.problems {
                eprintln!("preflight {key}: {why}");
            }
            fail(format!(
                "preflight found problems with {} release(s) (listed above); nothing was installed. {}",
                p.problems.len(),
                preflight_advice(&p)
            ))
        }
        e @ LoadError::Stopped { .. } => Failure {
            message: e.to_string(),
            code: EXIT_PARTIAL,
        },
        e @ (LoadError::NoHelm(_) | LoadError::Preflight(_)) => e.into(),
        // The snapshot read again, the release storage.
        e => fail(e.to_string()),
    }
}

/// A dry run: the plan, then whether the preflight would stop the load.
fn dry_run(plan: &Planned) -> Result<(), Failure> {
    let mut text = plan_table(&plan.steps, plan.preflight.as_ref());
    for (name, o) in &plan.crds {
        let what = match o {
            CrdOutcome::WouldCreate => "would be created".to_owned(),
            CrdOutcome::Exists => "exists; left as it is".to_owned(),
            CrdOutcome::Created => "created".to_owned(),
            CrdOutcome::LeftToHelm(r) => format!("installed by helm from the crds/ of {r}"),
            CrdOutcome::Failed(e) => format!("cannot be checked: {e}"),
        };
        text.push_str(&format!("CRD {name}: {what}\n"));
    }
    print_stdout(&text)?;
    match &plan.preflight {
        Some(p) if !p.problems.is_empty() => Err(fail(format!(
            "preflight found problems with {} release(s) (listed above); load would stop before installing anything. {}",
            p.problems.len(),
            preflight_advice(p)
        ))),
        _ => Ok(()),
    }
}

/// Nothing was to be installed: whether every history is complete.
fn nothing_to_install(u: &Unchanged) -> Result<(), Failure> {
    let failed = u.history.iter().filter(|o| o.failed()).count();
    if failed > 0 {
        return Err(Failure {
            message: format!(
                "the history of {failed} release(s) could not be restored (listed above); fix the cause and run load again to complete"
            ),
            code: EXIT_PARTIAL,
        });
    }
    let written = u.history.iter().filter(|o| !o.ops.is_empty()).count();
    eprintln!(
        "Nothing to install: every selected release in the snapshot is already installed{}.",
        match written {
            0 if !u.has_history => String::new(),
            0 => "; every restored history is complete".to_owned(),
            n => format!("; completed the history of {n} release(s)"),
        }
    );
    Ok(())
}

/// The end of a load that ran: what is not deployed, the summary line and
/// the exit code.
fn report(ran: &Ran, interrupt: Option<&Interrupt>, start: Instant) -> Result<(), Failure> {
    let load::Tally {
        done,
        skipped,
        failed,
        defects,
        not_started,
        stopped: stopped_installs,
    } = ran.tally;
    let failed = failed + ran.other_failures;
    let not_deployed = &ran.not_deployed;
    if let Some(code) = interrupt.and_then(|i| i.code()) {
        let name = interrupt.map(|i| i.name()).unwrap_or("SIGINT");
        for (key, status) in not_deployed {
            eprintln!("NOT DEPLOYED {key}: {status}");
        }
        return Err(Failure {
            message: format!(
                "interrupted by {name}: restored {done}, failed or stopped {stopped_installs}, not started {not_started}; {} selected release(s) not deployed{}. Run load again to finish",
                not_deployed.len(),
                if not_deployed.is_empty() {
                    ""
                } else {
                    " (listed above)"
                }
            ),
            code,
        });
    }
    for (key, status) in &ran.unexplained {
        eprintln!("NOT DEPLOYED {key}: {status} after load");
    }
    let failed = failed + ran.unexplained.len();
    eprintln!(
        "Restored {done}, skipped {skipped}, failed {failed}{} in {:.1}s",
        if not_deployed.is_empty() {
            String::new()
        } else {
            format!("; {} selected release(s) not deployed", not_deployed.len())
        },
        start.elapsed().as_secs_f64()
    );
    if failed == 0 {
        return Ok(());
    }
    let message = if defects == failed {
        format!(
            "{failed} release(s) failed because helm refused the chart helm-bulk generated (listed above): a helm-bulk defect, please report it at {}",
            helm_bulk::restore::helm::REPORT_URL
        )
    } else if defects > 0 {
        format!(
            "{failed} release(s) or CRD(s) failed to restore (listed above); {defects} of them because of a helm-bulk defect (report those at {}); fix the cause of the others and run load again to complete",
            helm_bulk::restore::helm::REPORT_URL
        )
    } else {
        format!(
            "{failed} release(s) or CRD(s) failed to restore (listed above); fix the cause and run load again to complete"
        )
    };
    Err(Failure {
        message,
        code: EXIT_PARTIAL,
    })
}

/// `--kubeconfig` and `--kube-context` for every helm call.
fn helm_global_args(args: &LoadArgs) -> Vec<String> {
    let mut global_args = Vec::new();
    if let Some(k) = &args.cluster.kubeconfig {
        global_args.push("--kubeconfig".to_owned());
        global_args.push(k.display().to_string());
    }
    if let Some(c) = &args.cluster.kube_context {
        global_args.push("--kube-context".to_owned());
        global_args.push(c.clone());
    }
    global_args
}

/// What to do about the preflight's problems.
fn preflight_advice(p: &Preflight) -> String {
    let exclude = "Fix them, or leave those releases out with --exclude";
    match p.defects {
        0 => exclude.to_owned(),
        n => format!(
            "{n} of them because of a helm-bulk defect, please report it at {}; {exclude}",
            helm_bulk::restore::helm::REPORT_URL
        ),
    }
}

fn verb(a: &Action) -> &'static str {
    match a {
        Action::Install => "installed",
        Action::Upgrade => "upgraded",
        Action::Replace => "replaced",
        Action::Complete => "completed",
        Action::Skip(_) => "skipped",
        Action::Refuse(_) => "left",
    }
}

fn report_line(r: &Report) -> String {
    let s = &r.step;
    match &r.outcome {
        Outcome::Done => {
            let mut line = format!(
                "{:<9} {} ({} revision {}) in {:.1}s",
                verb(&s.action),
                s.key(),
                s.chart,
                s.revision,
                r.elapsed.as_secs_f64()
            );
            if s.action == Action::Complete {
                line.push_str(": completed an interrupted restore (uninstalled what it left, installed again)");
            }
            if let Some(n) = &s.note {
                line.push_str(&format!("; {n}"));
            }
            line
        }
        Outcome::Skipped(why) => format!("skipped   {}: {why}", s.key()),
        Outcome::Failed(why) | Outcome::Defect(why) => format!("FAILED    {}: {why}", s.key()),
        Outcome::NotStarted => format!("stopped   {}: not started", s.key()),
    }
}

fn plan_table(steps: &[Step], preflight: Option<&Preflight>) -> String {
    let mut header = vec!["RELEASE", "REVISION", "CHART", "ACTION"];
    // Only a load into a cluster (not into Tiller) has a preflight.
    if preflight.is_some() {
        header.push("PREFLIGHT");
    }
    header.push("REASON");
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let (action, reason) = match &s.action {
                Action::Install => ("install", String::new()),
                Action::Upgrade => ("upgrade", String::new()),
                Action::Replace => ("replace", String::new()),
                Action::Complete => (
                    "complete",
                    "uninstall what an interrupted restore left, install again".to_owned(),
                ),
                Action::Skip(why) => ("skip", why.clone()),
                Action::Refuse(why) => ("FAIL", why.clone()),
            };
            let reason = match (&s.note, reason.is_empty()) {
                (Some(n), true) => n.clone(),
                (Some(n), false) => format!("{reason}; {n}"),
                (None, _) => reason,
            };
            let mut row = vec![
                s.key(),
                s.revision.to_string(),
                s.chart.clone(),
                if s.ordered {
                    format!("{action} (ordered)")
                } else {
                    action.to_owned()
                },
            ];
            if let Some(p) = preflight {
                let check = if !s.action.changes() {
                    "-"
                } else if p
                    .problems
                    .iter()
                    .any(|(k, _)| k.release_parts() == s.release_parts())
                {
                    "FAILED"
                } else {
                    "ok"
                };
                row.push(check.to_owned());
            }
            row.push(reason);
            row
        })
        .collect();
    let mut out = String::from("Plan (dry run, nothing was changed):\n");
    out.push_str(&super::output::table(&header, &rows));
    match preflight {
        Some(p) if p.problems.is_empty() => out.push_str(&format!(
            "Preflight: {} frozen chart(s) rendered with helm; every API they use will exist ({:.2}s).\n",
            p.checked,
            p.elapsed.as_secs_f64()
        )),
        Some(p) => {
            out.push_str(&format!(
                "Preflight: {} of {} frozen chart(s) would fail; load stops before changing anything:\n",
                p.problems.len(),
                p.checked
            ));
            for (key, why) in &p.problems {
                out.push_str(&format!("  {key}: {why}\n"));
            }
        }
        None => {}
    }
    out
}
