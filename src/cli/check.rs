//! `helm bulk check`: does every cluster have a recent, verified snapshot?
//! For monitoring and alerting; nothing is decrypted.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::args::{StoreArgs, runtime};
use super::{Failure, OutputFormat, fail, one_line, print_stdout};
use helm_bulk::config::Loaded;
use helm_bulk::freshness::{self, ClusterReport, Health};

/// Arguments of `check`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk check s3://backups/helm --trusted-signers allowed_signers
  helm bulk check s3://backups/helm --max-age 8h --cluster prod --cluster staging
  helm bulk check gs://dr/helm --prometheus-textfile /var/lib/node_exporter/helm_bulk.prom

For each cluster under the prefix (<prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age),
the newest snapshot must be younger than --max-age and signed by a trusted signer.
The signature is checked over the encrypted object; nothing is decrypted, so no
identity is needed. One line per cluster: ok, stale, unverified or missing.

Exit codes: 0 every cluster is ok, 1 a cluster is not (or the check could not run),
2 invalid command line.

--prometheus-textfile writes, per cluster, for the node exporter's textfile collector:
  helm_bulk_last_snapshot_timestamp_seconds, helm_bulk_last_snapshot_bytes,
  helm_bulk_last_snapshot_verified (1 or 0)")]
pub struct CheckArgs {
    /// The bucket and prefix: s3://, gs://, az:// or file://
    #[arg(value_name = "URL")]
    pub url: String,

    #[command(flatten)]
    pub store: StoreArgs,

    /// The newest snapshot of each cluster must be younger than this (e.g. 26h, 2d)
    #[arg(long, value_name = "DURATION", default_value = "26h", value_parser = humantime::parse_duration)]
    pub max_age: Duration,

    /// OpenSSH allowed_signers file of keys trusted to sign snapshots [config: trustedSigners]
    #[arg(long, value_name = "FILE")]
    pub trusted_signers: Option<PathBuf>,

    /// A cluster that must have a snapshot (repeatable); a cluster without one is `missing`
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,

    /// Also write the result as Prometheus metrics to FILE (replaced atomically)
    #[arg(long, value_name = "FILE")]
    pub prometheus_textfile: Option<PathBuf>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

pub(super) fn run(args: CheckArgs, config: &Loaded) -> Result<(), Failure> {
    let signers_path = args
        .trusted_signers
        .clone()
        .or_else(|| config.config.trusted_signers.clone())
        .ok_or_else(|| {
            fail(
                "check needs the trusted signers to verify snapshots: pass --trusted-signers FILE or set trustedSigners: in the config",
            )
        })?;
    let allowed = std::sync::Arc::new(helm_bulk::vault::sign::read_allowed_signers(&signers_path)?);
    let bucket = args.store.open(&args.url, config)?;
    let rt = runtime()?;
    let listed = rt.block_on(bucket.list())?;
    let newest = freshness::newest_per_cluster(&listed);
    let now = time::OffsetDateTime::now_utc();

    let mut reports: Vec<ClusterReport> = Vec::new();
    for snapshot in newest.values() {
        let verification = rt.block_on(async {
            let sig_key = format!("{}.sig", snapshot.key);
            let text = match bucket.get_small(&sig_key).await {
                Ok(t) => t.map(|b| String::from_utf8_lossy(&b).into_owned()),
                Err(e) => return Err(one_line(&e)),
            };
            if text.is_none() {
                return Err(format!("not signed ({sig_key} is missing)"));
            }
            let (reader, _) = bucket
                .reader(&snapshot.key, None)
                .await
                .map_err(|e| one_line(&e))?;
            let key = snapshot.key.clone();
            let allowed = std::sync::Arc::clone(&allowed);
            // Hashing the object reads it from the store: off the async threads.
            tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                helm_bulk::vault::sign::verify_stream(
                    &mut reader,
                    &key,
                    text.as_deref(),
                    &sig_key,
                    &allowed,
                )
                .map(|s| format!("{} ({})", s.principals, s.fingerprint))
                .map_err(|e| one_line(&e))
            })
            .await
            .map_err(|e| format!("verification task failed: {e}"))?
        });
        reports.push(freshness::assess(snapshot, verification, now, args.max_age));
    }
    for cluster in &args.clusters {
        if !newest.contains_key(cluster) {
            reports.push(freshness::missing(cluster));
        }
    }
    reports.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    if reports.is_empty() {
        return Err(fail(format!("no snapshots under {}", bucket.url())));
    }

    if let Some(path) = &args.prometheus_textfile {
        let text = freshness::prometheus_textfile(bucket.url(), &reports);
        let write = || -> std::io::Result<()> {
            let mut file = helm_bulk::store::AtomicFile::create(path)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.readable_by_all()?;
            file.commit()
        };
        write().map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
    }

    let text = match args.output {
        OutputFormat::Table => table(&reports, &args),
        format => super::output::structured(format, &reports)?,
    };
    print_stdout(&text)?;

    let bad = reports.iter().filter(|r| r.health != Health::Ok).count();
    if bad > 0 {
        return Err(fail(format!(
            "{bad} of {} cluster(s) without a verified snapshot younger than {}",
            reports.len(),
            humantime::format_duration(args.max_age)
        )));
    }
    Ok(())
}

fn table(reports: &[ClusterReport], args: &CheckArgs) -> String {
    let mut out = format!(
        "{:<24}  {:<10}  {:<16}  {:>10}  {:>10}  DETAIL\n",
        "CLUSTER", "STATUS", "NEWEST", "AGE", "SIZE"
    );
    for r in reports {
        let status = match r.health {
            Health::Ok => "ok",
            Health::Stale => "stale",
            Health::Unverified => "unverified",
            Health::Missing => "missing",
        };
        let newest = r
            .key
            .as_deref()
            .and_then(|k| k.rsplit('/').next())
            .and_then(|f| f.split('.').next())
            .unwrap_or("-");
        let age = r
            .age_seconds
            .map(|a| {
                humantime::format_duration(Duration::from_secs(a.max(0) as u64 / 60 * 60))
                    .to_string()
            })
            .unwrap_or_else(|| "-".to_owned());
        let size = r
            .bytes
            .map(super::human_bytes)
            .unwrap_or_else(|| "-".to_owned());
        let detail = if r.health == Health::Stale && r.detail.starts_with("signed by") {
            format!(
                "older than {}; {}",
                humantime::format_duration(args.max_age),
                r.detail
            )
        } else {
            r.detail.clone()
        };
        out.push_str(&format!(
            "{:<24}  {:<10}  {:<16}  {:>10}  {:>10}  {}\n",
            r.cluster.escape_debug().to_string(),
            status,
            newest,
            age,
            size,
            detail.escape_debug()
        ));
    }
    out
}
