//! `helm bulk load`: decrypt, verify, plan and restore what the cluster lacks.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use zeroize::Zeroizing;

use super::args::{ClusterArgs, Origin, SelectArgs, SnapshotSource, StoreArgs, VerifyArgs};
use super::{DEFAULT_SNAPSHOT, DecryptArgs, EXIT_PARTIAL, Failure, fail, print_stdout};
use crate::config::{Loaded, effective_order};
use crate::release::Installed;
use crate::restore::crds::{CrdOutcome, ensure};
use crate::restore::execute::{HelmRunner, Outcome, Report, Stop, run_plan};
use crate::restore::history::{self, Keep, Storage};
use crate::restore::plan::{Action, Mode, PlanInput, Step, plan, targets};
use crate::restore::preflight;
use crate::snapshot::{Entry, IndexCrd, Limits, SourceKind};
use crate::source::helm::{Driver, installed_releases};
use crate::tiller::client::{Tiller, TillerArgs};

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
anything is installed. Exit code 3 means some releases failed or are not
deployed at the end (each is listed); the others were restored. Ctrl-C,
SIGTERM and SIGHUP stop starting installs, undo the installs they cut short and
exit 128 + the signal number; a second Ctrl-C exits at once.

The release's saved history comes back too (Helm 3/4 snapshots): the restored
revision keeps its number and every other saved revision (older ones, a failed
upgrade after it) is written to Helm's storage as saved, so `helm history` and
`helm rollback` work as before. --history N keeps the newest N revisions,
--no-history restores the one revision as revision 1. A rerun completes an
interrupted history; revisions already stored as saved are left alone.

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
    pub store: StoreArgs,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

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

    /// Helm's storage driver, used to see which releases exist
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

fn helm_bin() -> PathBuf {
    std::env::var_os("HELM_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("helm"))
}

fn check_helm(bin: &PathBuf) -> Result<(), Failure> {
    let out = std::process::Command::new(bin)
        .args(["version", "--short"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(fail(format!(
            "cannot run helm (`{}`); set HELM_BIN or put helm on PATH",
            bin.display()
        ))),
    }
}

pub(super) fn run(args: LoadArgs, config: &Loaded) -> Result<(), Failure> {
    let start = Instant::now();
    let selection = args.select.selection(config)?;
    let driver = Driver::parse(&args.driver)?;
    let order = effective_order(&config.config);
    let mode = if args.upgrade {
        Mode::Upgrade
    } else if args.replace {
        Mode::Replace
    } else {
        Mode::Install
    };
    let bin = helm_bin();
    // Even a dry run renders the frozen charts with helm (the preflight).
    if !args.to_tiller {
        check_helm(&bin)?;
    }
    let identities = args.decrypt.identity_files(config);
    let runtime = super::args::runtime()?;
    // --to-tiller talks to Tiller only; otherwise to the Kubernetes API and helm.
    let (cluster, tiller, scope) = if args.to_tiller {
        let tiller = runtime.block_on(Tiller::connect(&args.tiller))?;
        let scope = args
            .cluster
            .namespace
            .clone()
            .filter(|_| !args.cluster.all_namespaces);
        (None, Some(tiller), scope)
    } else {
        let cluster = runtime.block_on(crate::cluster::connect(&args.cluster.options()))?;
        let scope = args.cluster.scope(&cluster.default_namespace);
        (Some(cluster), None, scope)
    };

    // Check who made the snapshot, then decrypt and verify everything before
    // touching the cluster, keeping only the records that may be restored.
    let source = SnapshotSource::resolve(
        args.from.as_deref().unwrap_or(&args.file),
        &args.store,
        config,
    )?;
    if let Origin::Unverified = args.verify.check(&source, config)? {
        eprintln!(
            "WARNING: the snapshot's origin is unverified (no trusted signers are configured); anyone who knows a recipient can write a snapshot. Set --trusted-signers or `trustedSigners:`."
        );
    }
    let input = source.open()?;
    let opened = crate::vault::open(input, &identities)?;
    let keep = match (args.no_history, args.history) {
        (true, _) => Keep::None,
        (false, Some(n)) => Keep::Newest(n),
        (false, None) => Keep::All,
    };
    let mut wanted: Option<std::collections::HashSet<(String, String, u32)>> = None;
    let mut records: HashMap<(String, String, u32), Zeroizing<Vec<u8>>> = HashMap::new();
    let mut crds: Vec<(IndexCrd, Vec<u8>)> = Vec::new();
    let index =
        crate::release::read_checked(opened.reader, &Limits::default(), |index, entry, data| {
            let wanted = wanted.get_or_insert_with(|| {
                let mut w: std::collections::HashSet<_> = targets(index, &args.status)
                    .values()
                    .map(|t| (t.row.namespace.clone(), t.row.name.clone(), t.row.revision))
                    .collect();
                if !args.to_tiller {
                    w.extend(history::records_needed(
                        index,
                        &restored(index, &args.status),
                        keep,
                    ));
                }
                w
            });
            match entry {
                Entry::Release(row) => {
                    let key = (row.namespace.clone(), row.name.clone(), row.revision);
                    if wanted.contains(&key) {
                        records.insert(key, data);
                    }
                }
                Entry::Crd(c) => crds.push((c.clone(), data.to_vec())),
            }
            Ok(())
        })?;
    args.verify.check_age(&index)?;
    let helm2 = index.source.kind == SourceKind::Tiller;
    if args.to_tiller && !helm2 {
        return Err(fail(format!(
            "--to-tiller restores Helm 2 snapshots, and this one holds {} releases; load it without --to-tiller",
            index.source.kind.describe()
        )));
    }
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
        super::printable(&crate::timefmt::human(&index.created_at)),
        {
            let mut k: Vec<_> = index
                .releases
                .iter()
                .map(|r| (&r.namespace, &r.name))
                .collect();
            k.dedup();
            k.len()
        }
    );
    let tiller_existing = match &tiller {
        Some(t) => Some(runtime.block_on(crate::tiller::restore::existing(t, scope.as_deref()))?),
        None => None,
    };
    // The history of each release (Helm 3/4 only; not into Tiller).
    // Helm 2 records are converted to Helm 3 records, as `helm 2to3` does.
    let keep = if args.to_tiller { Keep::None } else { keep };
    let histories =
        history::wanted_all(&index, &restored(&index, &args.status), keep, |ns, n, r| {
            let data = records
                .get(&(ns.to_owned(), n.to_owned(), r))
                .ok_or("the snapshot has no record of it")?;
            if helm2 {
                crate::tiller::convert::record_to_helm3(data)
            } else {
                Ok(data.clone())
            }
        })
        .map_err(|e| fail(format!("cannot restore the history of {e}")))?;
    let storage = cluster
        .as_ref()
        .map(|c| Storage::new(c.client.clone(), driver, restore_description(&index)));
    let mut existing: HashMap<(String, String), Installed> = match (&cluster, &tiller_existing) {
        (Some(cluster), _) => runtime.block_on(installed_releases(
            &cluster.client,
            driver,
            scope.as_deref(),
        ))?,
        // A Tiller release that is not deleted counts as installed, as before.
        (None, Some(t)) => t
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
            .collect(),
        (None, None) => Default::default(),
    };
    if let Some(storage) = &storage {
        runtime
            .block_on(history::recognize(storage, &histories, &mut existing))
            .map_err(|e| fail(format!("cannot read the release storage: {e}")))?;
    }
    let steps = plan(&PlanInput {
        index: &index,
        selection: &selection,
        namespace: scope.as_deref(),
        statuses: &args.status,
        existing: &existing,
        mode,
        order: &order,
    });

    // The CRDs of the API groups used by the releases that will change (the
    // rule save captures them by), except those a release's frozen chart
    // installs from its `crds/`: helm does, so that Helm 4's server-side
    // apply of them never conflicts with a create by helm-bulk.
    let (crds, left_to_helm) = crds_to_create(crds, &steps, &records, helm2);

    let fetch = |step: &Step| {
        records
            .get(&(step.namespace.clone(), step.name.clone(), step.revision))
            .cloned()
    };
    let stop = Arc::new(Stop::default());
    let runner = helm_runner(&args, bin, &index, helm2, stop.clone());
    // Every frozen chart about to be installed renders, and finds the APIs
    // it needs, before anything in the cluster changes.
    let preflight = match &cluster {
        Some(cluster) => Some(run_preflight(
            &runtime, cluster, &runner, &steps, &crds, args.jobs, &fetch,
        )?),
        None => None,
    };
    // Tiller installs into its own cluster, which helm-bulk does not reach.
    let crd_outcomes = match (&cluster, &preflight) {
        (Some(cluster), Some(p)) if p.problems.is_empty() || args.dry_run => {
            runtime.block_on(ensure(&cluster.client, &crds, &left_to_helm, args.dry_run))
        }
        _ => Vec::new(),
    };

    if args.dry_run {
        // What the history writes would be, in each release's REASON.
        let mut shown = steps.clone();
        let outcomes = run_history(
            &runtime,
            storage.as_ref(),
            &histories,
            &steps,
            true,
            args.jobs,
            &|| false,
        );
        for s in &mut shown {
            if let Some(o) = outcomes.iter().find(|o| o.key == s.key()) {
                let h = format!("history: {}", history::summary(o, true));
                s.note = Some(match s.note.take() {
                    Some(n) => format!("{n}; {h}"),
                    None => h,
                });
            }
        }
        let mut text = plan_table(&shown, preflight.as_ref());
        for (name, o) in &crd_outcomes {
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
        return match &preflight {
            Some(p) if !p.problems.is_empty() => Err(fail(format!(
                "preflight found problems with {} release(s) (listed above); load would stop before installing anything. {}",
                p.problems.len(),
                preflight_advice(p)
            ))),
            _ => Ok(()),
        };
    }
    if let Some(p) = &preflight
        && !p.problems.is_empty()
    {
        for (key, why) in &p.problems {
            eprintln!("preflight {key}: {why}");
        }
        return Err(fail(format!(
            "preflight found problems with {} release(s) (listed above); nothing was installed. {}",
            p.problems.len(),
            preflight_advice(p)
        )));
    }
    if let Some(p) = &preflight
        && p.checked > 0
    {
        eprintln!(
            "Preflight: {} frozen chart(s) rendered with helm; every API they use will exist ({:.2}s)",
            p.checked,
            p.elapsed.as_secs_f64()
        );
    }
    // CRDs that could not be created, and a final check that could not run.
    let mut other_failures = 0;
    for (name, o) in &crd_outcomes {
        match o {
            CrdOutcome::Created => eprintln!("created   CRD {name}"),
            CrdOutcome::Failed(e) => {
                other_failures += 1;
                eprintln!("FAILED    CRD {name}: {e}");
            }
            _ => {}
        }
    }
    let to_change = steps.iter().filter(|s| s.action.changes()).count();
    let refused = steps
        .iter()
        .filter(|s| matches!(s.action, Action::Refuse(_)))
        .count();
    if to_change == 0 && other_failures == 0 && refused == 0 {
        for s in &steps {
            if let Action::Skip(why) = &s.action {
                eprintln!("skipped   {}: {why}", s.key());
            }
        }
        let outcomes = run_history(
            &runtime,
            storage.as_ref(),
            &histories,
            &steps,
            false,
            args.jobs,
            &|| false,
        );
        for o in &outcomes {
            eprintln!("{}", history::report_line(o, false));
        }
        let failed = outcomes.iter().filter(|o| o.failed()).count();
        let written = outcomes.iter().filter(|o| !o.ops.is_empty()).count();
        if failed > 0 {
            return Err(Failure {
                message: format!(
                    "the history of {failed} release(s) could not be restored (listed above); fix the cause and run load again to complete"
                ),
                code: EXIT_PARTIAL,
            });
        }
        eprintln!(
            "Nothing to install: every selected release in the snapshot is already installed{}.",
            match written {
                0 if histories.is_empty() => String::new(),
                0 => "; every restored history is complete".to_owned(),
                n => format!("; completed the history of {n} release(s)"),
            }
        );
        return Ok(());
    }

    let interrupt = tiller
        .is_none()
        .then(|| super::interrupt::stop_on_interrupt(&runtime, stop.clone()));
    let stopped = || interrupt.as_ref().is_some_and(|i| i.code().is_some());
    let print = |r: &Report| {
        // After an interrupt, one line says what happened, at the end.
        if !stopped() {
            eprintln!("{}", report_line(r));
        }
    };
    let reports = match (&tiller, &tiller_existing) {
        (Some(t), Some(existing)) => runtime.block_on(crate::tiller::restore::run_plan(
            t,
            &steps,
            args.jobs,
            existing,
            &runner.description,
            fetch,
            print,
        )),
        _ => run_plan(&runner, &steps, args.jobs, fetch, print),
    };
    drop(records);
    // The other saved revisions of the releases now installed.
    let done_steps: Vec<Step> = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Done | Outcome::Skipped(_)))
        .map(|r| r.step.clone())
        .collect();
    let history_outcomes = run_history(
        &runtime,
        storage.as_ref(),
        &histories,
        &done_steps,
        false,
        args.jobs,
        &stopped,
    );
    for o in &history_outcomes {
        if !stopped() {
            eprintln!("{}", history::report_line(o, false));
        }
    }
    other_failures += history_outcomes.iter().filter(|o| o.failed()).count();

    // Every selected release must be deployed now, whatever helm said.
    let not_deployed: Vec<(String, String)> = match &cluster {
        Some(cluster) => {
            let now = runtime.block_on(async {
                let mut now = installed_releases(&cluster.client, driver, scope.as_deref())
                    .await
                    .map_err(|e| super::one_line(&e))?;
                if let Some(storage) = &storage {
                    history::recognize(storage, &histories, &mut now).await?;
                }
                Ok::<_, String>(now)
            });
            match now {
                Ok(now) => steps
                    .iter()
                    .filter(|s| s.selected)
                    .filter_map(|s| match now.get(&(s.namespace.clone(), s.name.clone())) {
                        Some(r) if r.status == "deployed" => None,
                        Some(r) => {
                            Some((s.key(), format!("{} (revision {})", r.status, r.revision)))
                        }
                        None => Some((s.key(), "not installed".to_owned())),
                    })
                    .collect(),
                Err(e) => {
                    // Not knowing is not success.
                    eprintln!("FAILED    cannot check that every release is deployed: {e}");
                    other_failures += 1;
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    let count = |f: fn(&Report) -> bool| reports.iter().filter(|r| f(r)).count();
    let defects = count(|r| matches!(r.outcome, Outcome::Defect(_)));
    let failed = count(|r| matches!(r.outcome, Outcome::Failed(_))) + other_failures + defects;
    let done = count(|r| r.outcome == Outcome::Done);
    let skipped = count(|r| matches!(r.outcome, Outcome::Skipped(_)));
    let not_started = count(|r| r.outcome == Outcome::NotStarted);
    // Releases not deployed that no failure above explains.
    let failed_keys: std::collections::HashSet<String> = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Defect(_)))
        .map(|r| r.step.key())
        .collect();
    let unexplained: Vec<&(String, String)> = not_deployed
        .iter()
        .filter(|(k, _)| !failed_keys.contains(k))
        .filter(|(k, _)| {
            !reports
                .iter()
                .any(|r| r.outcome == Outcome::NotStarted && r.step.key() == *k)
        })
        .collect();

    if let Some(code) = interrupt.as_ref().and_then(|i| i.code()) {
        let name = interrupt.as_ref().map(|i| i.name()).unwrap_or("SIGINT");
        for (key, status) in &not_deployed {
            eprintln!("NOT DEPLOYED {key}: {status}");
        }
        let stopped_installs = reports
            .iter()
            .filter(|r| {
                matches!(r.outcome, Outcome::Failed(_) | Outcome::Defect(_))
                    && !matches!(r.step.action, Action::Refuse(_))
            })
            .count();
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
    for (key, status) in &unexplained {
        eprintln!("NOT DEPLOYED {key}: {status} after load");
    }
    let failed = failed + unexplained.len();
    eprintln!(
        "Restored {done}, skipped {skipped}, failed {failed}{} in {:.1}s",
        if not_deployed.is_empty() {
            String::new()
        } else {
            format!("; {} selected release(s) not deployed", not_deployed.len())
        },
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        let message = if defects == failed {
            format!(
                "{failed} release(s) failed because helm refused the chart helm-bulk generated (listed above): a helm-bulk defect, please report it at {}",
                crate::restore::execute::REPORT_URL
            )
        } else if defects > 0 {
            format!(
                "{failed} release(s) or CRD(s) failed to restore (listed above); {defects} of them because of a helm-bulk defect (report those at {}); fix the cause of the others and run load again to complete",
                crate::restore::execute::REPORT_URL
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
    } else {
        Ok(())
    }
}

/// What the preflight found.
struct Preflight {
    /// Releases checked.
    checked: usize,
    /// `(namespace/name, reason)` of each release that would fail.
    problems: Vec<(String, String)>,
    /// How many of them fail because of a helm-bulk defect.
    defects: usize,
    /// How long it took.
    elapsed: std::time::Duration,
}

/// What to do about the preflight's problems.
fn preflight_advice(p: &Preflight) -> String {
    let exclude = "Fix them, or leave those releases out with --exclude";
    match p.defects {
        0 => exclude.to_owned(),
        n => format!(
            "{n} of them because of a helm-bulk defect, please report it at {}; {exclude}",
            crate::restore::execute::REPORT_URL
        ),
    }
}

/// Renders the frozen chart of every step that installs or upgrades a
/// release, client side, and checks the APIs its objects need.
fn run_preflight<R>(
    runtime: &tokio::runtime::Runtime,
    cluster: &crate::cluster::Cluster,
    runner: &HelmRunner,
    steps: &[Step],
    crds: &[(IndexCrd, Vec<u8>)],
    jobs: usize,
    record: &R,
) -> Result<Preflight, Failure>
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
        .map_err(|e| fail(format!("preflight: {e}")))?;
    let mut problems = Vec::new();
    let mut defects = 0;
    for step in &changing {
        match rendered.get(&step.key()) {
            Some(Ok(r)) => {
                let missing = preflight::missing(r, |g| served.contains(g), &provided);
                if !missing.is_empty() {
                    problems.push((step.key(), preflight::describe_missing(&missing)));
                }
            }
            Some(Err(e)) => {
                if matches!(e, preflight::Problem::Defect(_)) {
                    defects += 1;
                }
                problems.push((step.key(), e.to_string()))
            }
            None => problems.push((step.key(), "was not rendered".to_owned())),
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

fn helm_runner(
    args: &LoadArgs,
    bin: PathBuf,
    index: &crate::snapshot::Index,
    helm2: bool,
    stop: Arc<Stop>,
) -> HelmRunner {
    let mut global_args = Vec::new();
    if let Some(k) = &args.cluster.kubeconfig {
        global_args.push("--kubeconfig".to_owned());
        global_args.push(k.display().to_string());
    }
    if let Some(c) = &args.cluster.kube_context {
        global_args.push("--kube-context".to_owned());
        global_args.push(c.clone());
    }
    HelmRunner {
        bin,
        global_args,
        description: restore_description(index),
        freezer: if helm2 {
            crate::tiller::freeze::freeze_record
        } else {
            crate::restore::frozen::freeze
        },
        stop,
    }
}

/// The description helm-bulk gives the releases it installs.
fn restore_description(index: &crate::snapshot::Index) -> String {
    format!(
        "Restored by helm-bulk from a snapshot taken {}",
        index.created_at
    )
}

/// The restored revision of each release: `(namespace, name)` → revision.
fn restored(
    index: &crate::snapshot::Index,
    statuses: &[String],
) -> std::collections::BTreeMap<(String, String), u32> {
    targets(index, statuses)
        .into_iter()
        .map(|(k, t)| (k, t.row.revision))
        .collect()
}

/// Restores the history of the steps' releases that are installed by this
/// load or were already (not of upgraded or refused ones); in a dry run, says
/// what it would write.
fn run_history(
    runtime: &tokio::runtime::Runtime,
    storage: Option<&Storage>,
    histories: &std::collections::BTreeMap<(String, String), history::Wanted>,
    steps: &[Step],
    dry_run: bool,
    jobs: usize,
    stopped: &dyn Fn() -> bool,
) -> Vec<history::Outcome> {
    let Some(storage) = storage else {
        return Vec::new();
    };
    let releases: Vec<(&history::Wanted, bool)> = steps
        .iter()
        .filter(|s| s.selected && !matches!(s.action, Action::Upgrade | Action::Refuse(_)))
        .filter_map(|s| {
            let w = histories.get(&(s.namespace.clone(), s.name.clone()))?;
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
type StoredCrds = Vec<(IndexCrd, Vec<u8>)>;

/// Which stored CRDs helm-bulk creates before the releases: those of an
/// API group that a changing release uses. Returns them and the CRDs left to
/// helm (name → release): those in the `crds/` of a release being installed,
/// when every changing release that uses their kind is one that installs
/// them (a release installed earlier could not wait for another one's).
fn crds_to_create(
    mut crds: StoredCrds,
    steps: &[Step],
    records: &HashMap<(String, String, u32), Zeroizing<Vec<u8>>>,
    helm2: bool,
) -> (StoredCrds, std::collections::BTreeMap<String, String>) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut groups = BTreeSet::new();
    // (group, kind) → the changing releases that use it.
    let mut users: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    // CRD name → the releases whose frozen chart installs it.
    let mut installers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in steps.iter().filter(|s| s.action.changes()) {
        let Some(r) = records.get(&(s.namespace.clone(), s.name.clone(), s.revision)) else {
            continue;
        };
        let kinds = if helm2 {
            crate::tiller::record::kinds_used_bytes(r)
        } else {
            crate::release::kinds_used(r)
        };
        for gk in kinds {
            groups.insert(gk.0.clone());
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
            .get(&(c.group.clone(), c.kind.clone()))
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
                } else if p.problems.iter().any(|(k, _)| *k == s.key()) {
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
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::from("Plan (dry run, nothing was changed):\n");
    let last = header.len() - 1;
    let fmt = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        format!("{}\n", l.trim_end())
    };
    out.push_str(&fmt(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&fmt(&cells));
    }
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
            records.insert(("ns".to_owned(), name.to_owned(), 1), r);
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
}
