//! `helm bulk prune`: retention for snapshots in a bucket.

use clap::Args;

use super::args::{StoreArgs, runtime};
use super::{Failure, fail, print_stdout};
use helm_bulk::config::Loaded;
use helm_bulk::store::bucket::prune_plan;

/// Arguments of `prune`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk prune s3://backups/helm --keep-last 24 --keep-daily 30 --dry-run
  helm bulk prune gs://dr-bucket/prod --keep-last 10

Per cluster, keeps the newest --keep-last snapshots and the newest snapshot of
each of the --keep-daily most recent days; deletes the rest with their .sig.")]
pub struct PruneArgs {
    /// The bucket and prefix: s3://, gs://, az:// or file://
    #[arg(value_name = "URL")]
    pub url: String,

    /// Keep the newest N snapshots of each cluster
    #[arg(long, value_name = "N")]
    pub keep_last: usize,

    /// Also keep the newest snapshot of each of the D most recent days
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub keep_daily: usize,

    /// Print what would be deleted, delete nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

pub(super) fn run(args: PruneArgs, config: &Loaded) -> Result<(), Failure> {
    if args.keep_last == 0 && args.keep_daily == 0 {
        return Err(fail(
            "--keep-last 0 with no --keep-daily would delete every snapshot; keep at least one",
        ));
    }
    let bucket = args.store.open(&args.url, config)?;
    let rt = runtime()?;
    let listed = rt.block_on(bucket.list())?;
    let doomed = prune_plan(&listed, args.keep_last, args.keep_daily);
    let mut out = String::new();
    for l in &doomed {
        if args.dry_run {
            out.push_str(&format!("would delete {}\n", l.key));
        } else {
            rt.block_on(bucket.delete_snapshot(&l.key))?;
            out.push_str(&format!("deleted {}\n", l.key));
        }
    }
    eprintln!(
        "{} {} of {} snapshots; kept {}",
        if args.dry_run {
            "Would delete"
        } else {
            "Deleted"
        },
        doomed.len(),
        listed.len(),
        listed.len() - doomed.len()
    );
    print_stdout(&out)
}
