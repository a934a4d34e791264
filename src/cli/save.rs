//! `helm bulk save`: every release record of the cluster into one encrypted snapshot.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use zeroize::Zeroizing;

use super::args::{ClusterArgs, SelectArgs};
use super::{DEFAULT_SNAPSHOT, EncryptArgs, Failure, fail};
use crate::config::Loaded;
use crate::snapshot::{Cluster, Index, SnapshotWriter, Source, SourceKind};
use crate::source::SourceError;
use crate::source::helm::{Driver, HelmSource, SaveFilter};
use crate::store::Sink;
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
The file appears only when the snapshot is complete; it is created with mode 0600.")]
pub struct SaveArgs {
    /// Where to write the snapshot; `-` writes to standard output
    #[arg(short, long, value_name = "FILE", default_value = DEFAULT_SNAPSHOT)]
    pub output: PathBuf,

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

    /// Only releases whose latest revision has this status (deployed, failed, …); repeatable or comma-separated
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

    /// Sign the snapshot with this SSH private key (ed25519, ECDSA or RSA); the signature is
    /// written to FILE.sig [config: signKey]
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,

    /// Objects per list request
    #[arg(long, value_name = "N", default_value_t = 100, hide_short_help = true)]
    pub page_size: u32,
}

fn detect_kind(arg: SourceArg) -> SourceKind {
    match arg {
        SourceArg::Helm3 => SourceKind::Helm3,
        SourceArg::Helm4 => SourceKind::Helm4,
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

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

pub(super) fn run(args: SaveArgs, config: &Loaded) -> Result<(), Failure> {
    let start = Instant::now();
    // Everything that can be checked locally is checked before the cluster is touched.
    let driver = Driver::parse(&args.driver)?;
    let selection = args.select.selection(config)?;
    let sign_key = match args
        .sign_key
        .clone()
        .or_else(|| config.config.sign_key.clone())
    {
        Some(path) => {
            if args.output == std::path::Path::new("-") {
                return Err(fail(
                    "--sign-key needs -o FILE: the signature is written beside it as FILE.sig",
                ));
            }
            Some(crate::vault::sign::load_signing_key(&path)?)
        }
        None => None,
    };
    let protection = args.encrypt.protection(config)?;
    let kind = detect_kind(args.source);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let cluster = crate::cluster::connect(&args.cluster.options()).await?;
        let scope = args.cluster.scope(&cluster.default_namespace);
        let source = HelmSource::new(
            cluster.client.clone(),
            driver,
            scope.clone(),
            kind,
            args.page_size,
        );
        let filter = SaveFilter {
            selection,
            history: args.history,
            statuses: args.status.clone(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = Ctx {
                args: &args,
                source: &source,
                filter: &filter,
                cluster: &cluster,
                kind,
                driver,
                protection: &protection,
                sign_key: sign_key.as_ref(),
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
        let where_ = if args.output == std::path::Path::new("-") {
            "standard output".to_owned()
        } else {
            args.output.display().to_string()
        };
        eprintln!(
            "Saved {} releases ({} revisions, {} CRDs, {} of records) from {} to {where_} in {:.1}s",
            stats.releases,
            stats.revisions,
            stats.crds,
            human_bytes(stats.bytes),
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

struct Stats {
    releases: usize,
    crds: usize,
    revisions: usize,
    bytes: u64,
    server: String,
    problems: Vec<String>,
}

/// Everything one save attempt needs.
struct Ctx<'a> {
    args: &'a SaveArgs,
    source: &'a HelmSource,
    filter: &'a SaveFilter,
    cluster: &'a crate::cluster::Cluster,
    kind: SourceKind,
    driver: Driver,
    protection: &'a crate::vault::Protection,
    sign_key: Option<&'a ssh_key::PrivateKey>,
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
    } = *ctx;
    let plan = source.plan(filter).await.map_err(from_source)?;
    let mut index = Index::new(
        crate::timefmt::now_rfc3339(),
        Source {
            kind,
            driver: driver.name().to_owned(),
            extra: Default::default(),
        },
        Cluster {
            server: cluster.server.clone(),
            context: cluster.context.clone(),
            extra: Default::default(),
        },
    );
    index.releases = plan.rows.clone();
    let crds = crate::source::crds::capture(&cluster.client, &plan.kinds)
        .await
        .map_err(from_source)?;
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

    let binary = !args.encrypt.armor && !args.encrypt.no_encrypt;
    let sink = HashingWriter::new(Sink::open(&args.output, binary)?);
    let encrypted = crate::vault::encrypt(sink, protection, args.encrypt.armor)?;
    let mut writer = SnapshotWriter::new(encrypted, &index)?;

    // Records flow from the lister to a writer thread through a bounded
    // channel: the network and the compression+encryption overlap, and at
    // most one page of records is in memory.
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(usize, Zeroizing<Vec<u8>>)>(args.page_size.max(1) as usize);
    let paths: Vec<String> = index.releases.iter().map(|r| r.path.clone()).collect();
    let crd_entries: Vec<(String, Vec<u8>)> =
        crds.into_iter().map(|c| (c.row.path, c.json)).collect();
    let progress = std::io::stderr().is_terminal() && revisions > 0;
    let write_thread = std::thread::spawn(move || -> Result<_, Failure> {
        let mut done = 0usize;
        while let Some((pos, data)) = rx.blocking_recv() {
            writer.append(&paths[pos], &data)?;
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
    let (sink, digest) = written?.finish();
    fetched.map_err(from_source)?;
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
        revisions,
        bytes,
        server: cluster.server.clone(),
        problems: plan.problems,
    })
}
