//! `helm bulk save`: every release record of the cluster into one encrypted snapshot.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::args::{ClusterArgs, SelectArgs, StoreArgs};
use super::{DEFAULT_SNAPSHOT, EncryptArgs, Failure, fail};
use crate::config::Loaded;
use crate::snapshot::{Cluster, Index, SnapshotWriter, Source, SourceKind};
use crate::source::SourceError;
use crate::source::helm::{Driver, HelmSource, SaveFilter};
use crate::store::Sink;
use crate::store::bucket::{Bucket, timestamp_of};
use crate::tiller::client::{Tiller, TillerArgs};
use crate::tiller::source::{GrpcSource, Storage, StorageSource};
use crate::vault::sign::{HashingWriter, signature_path};

/// Which Helm generation the cluster's records belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// Helm 4 if $HELM_BIN (or `helm` on PATH) is Helm 4, else Helm 3
    Auto,
    /// Helm 3 release storage
    Helm3,
    /// Helm 4 release storage
    Helm4,
    /// Helm 2: ask Tiller over gRPC (--tiller-host)
    Tiller,
    /// Helm 2: read Tiller's ConfigMaps or Secrets through the Kubernetes API (Tiller may be gone)
    TillerStorage,
}

/// Where Tiller kept its release records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TillerStorageArg {
    /// ConfigMaps (Tiller's default)
    Configmap,
    /// Secrets (tiller --storage=secret)
    Secret,
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
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,

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
    #[arg(long, value_name = "N", default_value_t = crate::snapshot::FORMAT_VERSION,
          value_parser = clap::value_parser!(u32).range(1..=2))]
    pub format: u32,

    /// Objects per list request at most (pages also stay under 8 MiB of records)
    #[arg(long, value_name = "N", default_value_t = 100, hide_short_help = true)]
    pub page_size: u32,

    #[command(flatten, next_help_heading = "Helm 2 (Tiller)")]
    pub tiller: TillerArgs,

    /// Where Tiller kept its records, for --source tiller-storage
    #[arg(long, value_enum, value_name = "KIND", default_value_t = TillerStorageArg::Configmap, help_heading = "Helm 2 (Tiller)")]
    pub tiller_storage: TillerStorageArg,
}

fn detect_kind(arg: SourceArg) -> SourceKind {
    match arg {
        SourceArg::Helm3 => SourceKind::Helm3,
        SourceArg::Helm4 => SourceKind::Helm4,
        SourceArg::Tiller | SourceArg::TillerStorage => SourceKind::Tiller,
        SourceArg::Auto => {
            let helm = std::env::var_os("HELM_BIN").unwrap_or_else(|| "helm".into());
            let out = std::process::Command::new(helm)
                .args(["version", "--template", "{{.Version}}"])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output();
            match out {
                Ok(o) if o.status.success() && o.stdout.starts_with(b"v4.") => SourceKind::Helm4,
                _ => SourceKind::Helm3,
            }
        }
    }
}

pub(super) fn run(args: SaveArgs, config: &Loaded) -> Result<(), Failure> {
    let start = Instant::now();
    // Everything that can be checked locally is checked before the cluster is touched.
    let helm2 = matches!(args.source, SourceArg::Tiller | SourceArg::TillerStorage);
    // HELM_DRIVER names Helm 3/4's storage; Helm 2 sources have their own.
    let driver = if helm2 {
        Driver::Secret
    } else {
        Driver::parse(&args.driver)?
    };
    let tiller_statuses = if helm2 {
        crate::tiller::record::parse_statuses(&args.status).map_err(fail)?
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
            Some(crate::vault::sign::load_signer(&path)?)
        }
        None => None,
    };
    let protection = args.encrypt.protection(config)?;
    let bucket = match &args.to {
        Some(url) => Some(args.store.open(url, config)?),
        None => None,
    };
    let kind = detect_kind(args.source);
    let runtime = super::args::runtime()?;
    super::exit_cleanly_on_interrupt(&runtime);
    runtime.block_on(async {
        let (source, cluster) = match args.source {
            SourceArg::Tiller => {
                // Tiller alone is enough: no Kubernetes access is needed.
                let tiller = Tiller::connect(&args.tiller).await?;
                let scope = args
                    .cluster
                    .namespace
                    .clone()
                    .filter(|_| !args.cluster.all_namespaces);
                let source =
                    GrpcSource::new(tiller, scope, tiller_statuses.clone(), args.page_size);
                (AnySource::Grpc(source), None)
            }
            _ => {
                let cluster = crate::cluster::connect(&args.cluster.options()).await?;
                let scope = args.cluster.scope(&cluster.default_namespace);
                let source = if args.source == SourceArg::TillerStorage {
                    AnySource::Storage(StorageSource::new(
                        cluster.client.clone(),
                        match args.tiller_storage {
                            TillerStorageArg::Configmap => Storage::ConfigMap,
                            TillerStorageArg::Secret => Storage::Secret,
                        },
                        args.tiller.tiller_namespace.clone(),
                        scope,
                        tiller_statuses.clone(),
                        args.page_size,
                    ))
                } else {
                    AnySource::Helm(
                        HelmSource::new(
                            cluster.client.clone(),
                            driver,
                            scope,
                            kind,
                            args.page_size,
                        )
                        .with_blob_lifetimes(args.format == crate::snapshot::FORMAT_V2),
                    )
                };
                (source, Some(cluster))
            }
        };
        let filter = SaveFilter {
            selection,
            history: args.history,
            // Helm 2 sources apply their statuses themselves.
            statuses: if helm2 {
                Vec::new()
            } else {
                args.status.clone()
            },
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = Ctx {
                args: &args,
                source: &source,
                filter: &filter,
                cluster: cluster.as_ref(),
                kind,
                driver: source.driver_name(driver),
                protection: &protection,
                sign_key: sign_key.as_ref(),
                bucket: bucket.as_ref(),
            };
            match save_once(&ctx).await {
                Err(Attempt::Expired) if attempt < 3 => {
                    eprintln!("The release list changed too much while saving; starting again.");
                }
                Err(Attempt::Expired) => break Err(SourceError::Expired.into()),
                Err(Attempt::Failed(f)) => break Err(f),
                Ok(stats) => break Ok(stats),
            }
        }
    })
    .map(|stats| {
        for (ns, name, what) in &stats.in_flight {
            eprintln!(
                "warning: {}/{}: {what}; save again once helm has finished to capture the new revision",
                super::printable(ns),
                super::printable(name)
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
        stats.problems
    })
    .and_then(|problems| {
        if problems.is_empty() {
            Ok(())
        } else {
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
    })
}

/// How one attempt at saving ended, when it did not succeed.
enum Attempt {
    /// The consistent list expired between the passes: worth another try.
    Expired,
    /// Anything else.
    Failed(Failure),
}

impl<E: Into<Failure>> From<E> for Attempt {
    fn from(e: E) -> Self {
        Attempt::Failed(e.into())
    }
}

fn from_source(e: SourceError) -> Attempt {
    match e {
        SourceError::Expired => Attempt::Expired,
        other => Attempt::Failed(other.into()),
    }
}

/// How many of the index's CRDs were taken for their API group only.
fn group_only(index: &Index) -> usize {
    index
        .crds
        .iter()
        .filter(|c| c.reason.starts_with("API group"))
        .count()
}

struct Stats {
    destination: String,
    releases: usize,
    crds: usize,
    /// CRDs taken for their API group only (no saved object is of their kind).
    group_crds: usize,
    revisions: usize,
    bytes: u64,
    server: String,
    problems: Vec<String>,
    /// Releases saved with an upgrade in flight, and what load does about it.
    in_flight: Vec<(String, String, String)>,
}

/// The source of one save.
enum AnySource {
    /// Helm 3/4 storage.
    Helm(HelmSource),
    /// Tiller over gRPC.
    Grpc(GrpcSource),
    /// Tiller's storage objects.
    Storage(StorageSource),
}

impl AnySource {
    async fn plan(&self, filter: &SaveFilter) -> Result<crate::source::helm::Plan, SourceError> {
        match self {
            AnySource::Helm(s) => s.plan(filter).await,
            AnySource::Grpc(s) => s.plan(filter).await,
            AnySource::Storage(s) => s.plan(filter).await,
        }
    }

    async fn fetch(
        &self,
        plan: &crate::source::helm::Plan,
        tx: &crate::source::RecordSender,
    ) -> Result<(), SourceError> {
        match self {
            AnySource::Helm(s) => s.fetch(plan, tx).await,
            AnySource::Grpc(s) => s.fetch(plan, tx).await,
            AnySource::Storage(s) => s.fetch(plan, tx).await,
        }
    }

    /// The driver recorded in the index.
    fn driver_name(&self, helm: Driver) -> &'static str {
        match self {
            AnySource::Helm(_) => helm.name(),
            AnySource::Grpc(_) => "tiller",
            AnySource::Storage(s) => s.storage().name(),
        }
    }

    /// Where the records came from: the API server, or Tiller's address.
    fn origin(&self, cluster: Option<&crate::cluster::Cluster>) -> (String, String) {
        match (self, cluster) {
            (AnySource::Grpc(s), _) => (s.tiller().url(), String::new()),
            (_, Some(c)) => (c.server.clone(), c.context.clone()),
            (_, None) => (String::new(), String::new()),
        }
    }
}

/// Everything one save attempt needs.
struct Ctx<'a> {
    args: &'a SaveArgs,
    source: &'a AnySource,
    filter: &'a SaveFilter,
    cluster: Option<&'a crate::cluster::Cluster>,
    kind: SourceKind,
    driver: &'static str,
    protection: &'a crate::vault::Protection,
    sign_key: Option<&'a crate::vault::sign::SigningKey>,
    bucket: Option<&'a Bucket>,
}

/// The cluster's name in object keys: `--cluster-name`, else the context,
/// else the server's host (the API server, or Tiller); reduced to letters,
/// digits, `.`, `-`, `_`.
fn cluster_name(explicit: Option<&str>, context: &str, server: &str) -> String {
    let raw = explicit.map(str::to_owned).unwrap_or_else(|| {
        if context.is_empty() {
            url::Url::parse(server)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "cluster".to_owned())
        } else {
            context.to_owned()
        }
    });
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '.') {
        "cluster".to_owned()
    } else {
        name
    }
}

async fn save_once(ctx: &Ctx<'_>) -> Result<Stats, Attempt> {
    let Ctx {
        args,
        source,
        filter,
        cluster,
        kind,
        driver,
        protection,
        sign_key,
        bucket,
    } = *ctx;
    let plan = source.plan(filter).await.map_err(from_source)?;
    let (server, context) = source.origin(cluster);
    let mut index = Index::new(
        crate::timefmt::now_rfc3339(),
        Source {
            kind,
            driver: driver.to_owned(),
            extra: Default::default(),
        },
        Cluster {
            server: server.clone(),
            context,
            extra: Default::default(),
        },
    );
    index.format_version = args.format;
    index.releases = plan.rows.clone();
    // CRDs are read from the Kubernetes API, which a Tiller-only save does not use.
    let crds = match cluster {
        Some(cluster) => crate::source::crds::capture(&cluster.client, &plan.kinds)
            .await
            .map_err(from_source)?,
        None => Vec::new(),
    };
    index.crds = crds.iter().map(|c| c.row.clone()).collect();
    let releases = {
        let mut keys: Vec<(&str, &str)> = index
            .releases
            .iter()
            .map(|r| (r.namespace.as_str(), r.name.as_str()))
            .collect();
        keys.dedup();
        keys.len()
    };
    let revisions = index.releases.len();
    let bytes: u64 = index.releases.iter().map(|r| r.size).sum();

    let binary = !args.encrypt.armor;
    let (sink, upload) = match bucket {
        Some(b) => {
            // A Tiller-only save (--source tiller) has no Kubernetes
            // context: it is named after Tiller's host.
            let context = cluster.map(|c| c.context.as_str()).unwrap_or("");
            let name = cluster_name(args.cluster_name.as_deref(), context, &server);
            let key = b.snapshot_key(&name, &timestamp_of(&index.created_at));
            let (w, h) = b.upload(&key).await?.split();
            (Sink::Remote(w), Some(h))
        }
        None => (Sink::open(&args.output, binary)?, None),
    };
    let sink = HashingWriter::new(sink);
    let encrypted = crate::vault::encrypt(sink, protection, args.encrypt.armor)?;
    let mut writer = SnapshotWriter::new(encrypted, &index)?;

    // Records flow from the lister to a writer thread through a channel
    // bounded in bytes: the network and the compression+encryption overlap,
    // and memory holds one page plus that budget, however big the cluster.
    let (tx, mut rx) = crate::source::record_channel();
    let paths: Vec<String> = index.releases.iter().map(|r| r.path.clone()).collect();
    let crd_entries: Vec<(String, Vec<u8>)> =
        crds.into_iter().map(|c| (c.row.path, c.json)).collect();
    let progress = std::io::stderr().is_terminal() && revisions > 0;
    let write_thread = std::thread::spawn(move || -> Result<_, Failure> {
        let mut done = 0usize;
        while let Some(record) = rx.blocking_recv() {
            writer.append(&paths[record.pos], &record.data)?;
            done += 1;
            if progress && (done.is_multiple_of(25) || done == paths.len()) {
                eprint!("\rSaving: {done}/{} revisions", paths.len());
                if done == paths.len() {
                    eprintln!();
                }
            }
        }
        for (path, json) in &crd_entries {
            writer.append(path, json)?;
        }
        let sink = writer.finish()?.finish()?;
        Ok(sink)
    });
    let fetched = source.fetch(&plan, &tx).await;
    drop(tx);
    let written = write_thread
        .join()
        .map_err(|_| fail("the snapshot writer thread panicked"))?;
    // A write error explains a fetch that stopped; report it first.
    // The fetch error is the cause unless the fetch stopped because the
    // writer did (then the writer's error says why).
    let finished = match (written, fetched) {
        (_, Err(e)) if !matches!(e, SourceError::Write(_)) => Err(from_source(e)),
        (Err(e), _) => Err(Attempt::Failed(e)),
        (Ok(_), Err(e)) => Err(from_source(e)),
        (Ok(w), Ok(())) => Ok(w.finish()),
    };
    let (sink, digest) = match finished {
        Ok(done) => done,
        Err(e) => {
            // The writer was dropped without committing: the upload task
            // aborts the multipart upload; wait for it to do so.
            if let Some(h) = upload {
                let _ = h.wait().await;
            }
            return Err(e);
        }
    };
    if let (Some(b), Some(h)) = (bucket, upload) {
        match sink {
            Sink::Remote(w) => w.commit_async().await?,
            other => other.commit()?,
        }
        let key = h.key.clone();
        h.wait().await?;
        // The signature only after its snapshot is complete.
        if let Some(k) = sign_key {
            let sig = crate::vault::sign::sign_digest(k, &digest)?;
            b.put(&format!("{key}.sig"), sig.into_bytes()).await?;
        }
        return Ok(Stats {
            releases,
            crds: index.crds.len(),
            group_crds: group_only(&index),
            revisions,
            bytes,
            server: server.clone(),
            problems: plan.problems,
            in_flight: crate::release::caught_in_flight(&index.releases),
            destination: format!("{} as {key}", b.url()),
        });
    }
    let signature = match sign_key {
        Some(key) => {
            let sig_path = signature_path(&args.output);
            let mut file = crate::store::AtomicFile::create(&sig_path)?;
            std::io::Write::write_all(
                &mut file,
                crate::vault::sign::sign_digest(key, &digest)?.as_bytes(),
            )?;
            Some(file)
        }
        None => None,
    };
    // The snapshot first, its signature last: a reader never sees a signature
    // without the snapshot it covers.
    sink.commit()?;
    match signature {
        Some(file) => file.commit()?,
        None => {
            // A signature left from an earlier snapshot at this path would no
            // longer match; remove it rather than leave it to confuse.
            if args.output != std::path::Path::new("-") {
                let stale = signature_path(&args.output);
                if stale.exists() {
                    std::fs::remove_file(&stale)?;
                    eprintln!(
                        "Removed {}: it signed an earlier snapshot at this path.",
                        stale.display()
                    );
                }
            }
        }
    }
    Ok(Stats {
        releases,
        crds: index.crds.len(),
        group_crds: group_only(&index),
        revisions,
        bytes,
        server,
        problems: plan.problems,
        in_flight: crate::release::caught_in_flight(&index.releases),
        destination: if args.output == std::path::Path::new("-") {
            "standard output".to_owned()
        } else {
            args.output.display().to_string()
        },
    })
}
