//! `helm bulk save`: every release record of the cluster into one encrypted snapshot.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::args::TillerArgs;
use super::args::{ClusterArgs, SelectArgs, StoreArgs};
use super::{DEFAULT_SNAPSHOT, EncryptArgs, Failure, fail};
use helm_bulk::config::Loaded;
use helm_bulk::save::{Destination, Progress, SaveOptions, Saved, SourceChoice, save};
use helm_bulk::source::helm::{Driver, HelmSource, SaveFilter};
use helm_bulk::source::tiller::{GrpcSource, StorageSource};
use helm_bulk::tiller::client::Tiller;
use helm_bulk::tiller::hapi::release::status::Code;

/// `--source`: the library's [`SourceChoice`], with each value's help.
fn source_values() -> impl clap::builder::TypedValueParser<Value = SourceChoice> {
    super::args::library_values(&[
        (
            SourceChoice::Auto.name(),
            "Helm 4 if $HELM_BIN (or `helm` on PATH) is Helm 4, else Helm 3",
        ),
        (SourceChoice::Helm3.name(), "Helm 3 release storage"),
        (SourceChoice::Helm4.name(), "Helm 4 release storage"),
        (
            SourceChoice::Tiller.name(),
            "Helm 2: ask Tiller over gRPC (--tiller-host)",
        ),
        (
            SourceChoice::TillerStorage.name(),
            "Helm 2: read Tiller's ConfigMaps or Secrets through the Kubernetes API (Tiller may be gone)",
        ),
    ])
}

/// `--tiller-storage`: where Tiller kept its release records, a [`Driver`].
fn tiller_storage_values() -> impl clap::builder::TypedValueParser<Value = Driver> {
    super::args::library_values(&[
        (Driver::ConfigMap.name(), "ConfigMaps (Tiller's default)"),
        (Driver::Secret.name(), "Secrets (tiller --storage=secret)"),
    ])
}

/// Arguments of `save`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk save -r age1...                        # all namespaces, to ./helm-releases.tar.gz.age
  helm bulk save -R team.txt -o backup-$(date +%F).age
  helm bulk save -r age1... --exclude 'kube-system/*' --history 2
  helm bulk save -r age1... -a -o - | aws s3 cp - s3://bucket/backup.age

Records are read from the driver named by HELM_DRIVER (secret, the default, or
configmap) through the Kubernetes API, compressed and encrypted as one stream.
The file appears only when the snapshot is complete; it is created with mode 0600.

Helm 2:
  helm bulk save -r age1... --source tiller --tiller-host 127.0.0.1:44134
  helm bulk save -r age1... --source tiller-storage --tiller-namespace kube-system

--source tiller asks Tiller (gRPC; TLS when $HELM_HOME/ca.pem exists or a TLS
flag is given, -t for plaintext); --source tiller-storage reads Tiller's
ConfigMaps (or Secrets, --tiller-storage secret) when Tiller is gone. Both keep
releases with a revision in --status (default: deployed; `all` for every
status) and store each revision as Tiller's protobuf bytes. `load` installs
them into Helm 3/4, or back into a Tiller with --to-tiller.")]
pub struct SaveArgs {
    /// Where to write the snapshot; `-` writes to standard output
    #[arg(short, long, value_name = "FILE", default_value = DEFAULT_SNAPSHOT)]
    pub output: PathBuf,

    /// Upload to object storage instead: s3://bucket/prefix, gs://…, az://…, file://…; the
    /// object is <prefix>/<cluster-name>/<UTC timestamp>.tar.gz.age (plus .sig when signed)
    #[arg(long, value_name = "URL", conflicts_with = "output")]
    pub to: Option<String>,

    /// The cluster's name in object keys [default: the kubeconfig context, else the API server host]
    #[arg(long, value_name = "NAME", requires = "to")]
    pub cluster_name: Option<String>,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub encrypt: EncryptArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Keep each release's latest revision and at most N older ones (0: latest only);
    /// the last deployed revision is always kept [default: all]
    #[arg(long, value_name = "N")]
    pub history: Option<u32>,

    /// Only releases whose latest revision has this status (deployed, failed, …); repeatable or
    /// comma-separated. Helm 2 sources: releases with a revision in these statuses [default: deployed]
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    pub status: Vec<String>,

    /// The Helm generation recorded in the snapshot
    #[arg(long, value_parser = source_values(), default_value = "auto")]
    pub source: SourceChoice,

    /// Helm's storage driver
    #[arg(
        long,
        value_name = "DRIVER",
        env = "HELM_DRIVER",
        default_value = "secret"
    )]
    pub driver: String,

    /// Sign the snapshot with this SSH private key (ed25519, ECDSA or RSA), or with the key in
    /// ssh-agent whose public key file (KEY.pub) this is; the signature is written to FILE.sig
    /// [config: signKey]
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,

    /// Snapshot format: 2 stores each chart file, values, manifest… once across revisions and
    /// releases; 1 stores every record whole (for helm-bulk before format 2)
    #[arg(long, value_name = "N", default_value_t = helm_bulk::snapshot::FORMAT_VERSION,
          value_parser = clap::value_parser!(u32).range(1..=2))]
    pub format: u32,

    /// Objects per list request at most (pages also stay under 8 MiB of records)
    #[arg(long, value_name = "N", default_value_t = 100, hide_short_help = true)]
    pub page_size: u32,

    #[command(flatten, next_help_heading = "Helm 2 (Tiller)")]
    pub tiller: TillerArgs,

    /// Where Tiller kept its records, for --source tiller-storage
    #[arg(long, value_name = "KIND", value_parser = tiller_storage_values(), default_value = "configmap", help_heading = "Helm 2 (Tiller)")]
    pub tiller_storage: Driver,
}

pub(super) fn run(args: SaveArgs, config: &Loaded) -> Result<(), Failure> {
    let start = Instant::now();
    // Everything that can be checked locally is checked before the cluster is touched.
    let resolved = resolve(&args, config)?;
    let runtime = super::args::runtime()?;
    super::exit_cleanly_on_interrupt(&runtime);
    let stats = runtime.block_on(save_from_source(&args, &resolved))?;
    report(stats, start)
}

/// What `save` does, from its flags, the config file and the environment.
struct Resolved {
    /// Helm 3/4's storage driver.
    driver: Driver,
    /// The statuses of a Helm 2 source (empty for Helm 3/4).
    tiller_statuses: Vec<Code>,
    options: SaveOptions,
}

/// Resolves and checks the flags, in order: the storage driver, the
/// statuses, the selection, the signing key, the keys, the destination.
fn resolve(args: &SaveArgs, config: &Loaded) -> Result<Resolved, Failure> {
    let helm2 = args.source.is_helm2();
    // HELM_DRIVER names Helm 3/4's storage; Helm 2 sources have their own.
    let driver = if helm2 {
        Driver::Secret
    } else {
        Driver::parse(&args.driver)?
    };
    let tiller_statuses = if helm2 {
        helm_bulk::tiller::record::parse_statuses(&args.status).map_err(|e| fail(e.to_string()))?
    } else {
        Vec::new()
    };
    let selection = args.select.selection(config)?;
    let sign_key = match args
        .sign_key
        .clone()
        .or_else(|| config.config.sign_key.clone())
    {
        Some(path) => {
            if args.to.is_none() && args.output == std::path::Path::new("-") {
                return Err(fail(
                    "--sign-key needs -o FILE: the signature is written beside it as FILE.sig",
                ));
            }
            Some(helm_bulk::vault::sign::load_signer(&path)?)
        }
        None => None,
    };
    let protection = args.encrypt.protection(config)?;
    let destination = match &args.to {
        Some(url) => Destination::Bucket {
            bucket: args.store.open(url, config)?,
            cluster_name: args.cluster_name.clone(),
        },
        None => Destination::File(args.output.clone()),
    };
    let options = SaveOptions {
        filter: SaveFilter {
            selection,
            history: args.history,
            // Helm 2 sources apply their statuses themselves.
            statuses: if helm2 {
                Vec::new()
            } else {
                args.status.clone()
            },
        },
        kind: args.source.kind(),
        format: args.format,
        destination,
        protection,
        armor: args.encrypt.armor,
        sign_key,
        progress: std::sync::Arc::new(Terminal {
            shown: std::io::stderr().is_terminal(),
        }),
    };
    Ok(Resolved {
        driver,
        tiller_statuses,
        options,
    })
}

/// Connects to the source `--source` names (Tiller, or the cluster) and
/// saves from it.
async fn save_from_source(args: &SaveArgs, resolved: &Resolved) -> Result<Saved, Failure> {
    let options = &resolved.options;
    let statuses = resolved.tiller_statuses.clone();
    let saved = match args.source {
        SourceChoice::Tiller => {
            // Tiller alone is enough: no Kubernetes access is needed.
            let tiller = Tiller::connect(&args.tiller.options()).await?;
            let scope = args
                .cluster
                .namespace
                .clone()
                .filter(|_| !args.cluster.all_namespaces);
            let source = GrpcSource::new(tiller, scope, statuses, args.page_size);
            save(&source, None, options).await?
        }
        _ => {
            let cluster = helm_bulk::cluster::connect(&args.cluster.options()).await?;
            let scope = args.cluster.scope(&cluster.default_namespace);
            if args.source == SourceChoice::TillerStorage {
                let source = StorageSource::new(
                    cluster.client.clone(),
                    args.tiller_storage,
                    args.tiller.tiller_namespace.clone(),
                    scope,
                    statuses,
                    args.page_size,
                );
                save(&source, Some(&cluster), options).await?
            } else {
                let source = HelmSource::new(
                    cluster.client.clone(),
                    resolved.driver,
                    scope,
                    options.kind,
                    args.page_size,
                )
                .with_blob_lifetimes(args.format == helm_bulk::snapshot::FORMAT_V2);
                save(&source, Some(&cluster), options).await?
            }
        }
    };
    Ok(saved)
}

/// Prints what was saved (and any warnings); fails with
/// [`super::EXIT_PARTIAL`] when storage objects could not be decoded.
fn report(stats: Saved, start: Instant) -> Result<(), Failure> {
    if let Some(stale) = &stats.removed_stale_signature {
        eprintln!(
            "Removed {}: it signed an earlier snapshot at this path.",
            stale.display()
        );
    }
    for (release, what) in &stats.in_flight {
        eprintln!(
            "warning: {}/{}: {what}; save again once helm has finished to capture the new revision",
            super::printable(&release.namespace),
            super::printable(&release.name)
        );
    }
    let where_ = &stats.destination;
    let crds = if stats.group_crds > 0 {
        format!(
            "{} CRDs, {} of them for their API group only",
            stats.crds, stats.group_crds
        )
    } else {
        format!("{} CRDs", stats.crds)
    };
    eprintln!(
        "Saved {} releases ({} revisions, {crds}, {} of records) from {} to {where_} in {:.1}s",
        stats.releases,
        stats.revisions,
        super::human_bytes(stats.bytes),
        stats.server,
        start.elapsed().as_secs_f64()
    );
    let problems = stats.problems;
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        eprintln!("warning: skipped {p}");
    }
    Err(Failure {
        message: format!(
            "{} storage object(s) could not be decoded and are not in the snapshot (listed above)",
            problems.len()
        ),
        code: super::EXIT_PARTIAL,
    })
}

/// Restarts and a progress line on a terminal.
struct Terminal {
    /// Whether stderr is a terminal (else no progress line).
    shown: bool,
}

impl Progress for Terminal {
    fn restarting(&self) {
        eprintln!("The release list changed too much while saving; starting again.");
    }

    fn written(&self, done: usize, total: usize) {
        if self.shown && (done.is_multiple_of(25) || done == total) {
            eprint!("\rSaving: {done}/{total} revisions");
            if done == total {
                eprintln!();
            }
        }
    }
}
