//! `helm bulk list`: the snapshots in a bucket.

use clap::Args;

use super::args::{StoreArgs, runtime};
use super::{Failure, OutputFormat, print_stdout};
use helm_bulk::config::Loaded;

/// Arguments of `list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk list s3://backups/helm
  helm bulk list --endpoint http://127.0.0.1:9000 s3://backups/helm -o json
  helm bulk list gs://dr-bucket/prod

Snapshots are the objects named <prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age;
SIGNED says whether <object>.sig exists (it is checked at show and load time).")]
pub struct ListArgs {
    /// The bucket and prefix: s3://, gs://, az:// or file://
    #[arg(value_name = "URL")]
    pub url: String,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

pub(super) fn run(args: ListArgs, config: &Loaded) -> Result<(), Failure> {
    let bucket = args.store.open(&args.url, config)?;
    let listed = runtime()?.block_on(bucket.list())?;
    let text = match args.output {
        OutputFormat::Table => {
            let mut out = format!(
                "{:<16}  {:<24}  {:>10}  {:<6}  KEY\n",
                "TIMESTAMP", "CLUSTER", "SIZE", "SIGNED"
            );
            for l in &listed {
                out.push_str(&format!(
                    "{:<16}  {:<24}  {:>10}  {:<6}  {}\n",
                    l.timestamp,
                    l.cluster,
                    super::human_bytes(l.size),
                    if l.signed { "yes" } else { "no" },
                    l.key
                ));
            }
            out
        }
        format => super::output::structured(format, &listed)?,
    };
    print_stdout(&text)
}
