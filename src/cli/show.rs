//! `helm bulk show`: decrypt in memory and list what a snapshot holds.

use clap::Args;
use zeroize::Zeroizing;

use super::args::OpenArgs;
use super::{DEFAULT_SNAPSHOT, Failure, OutputFormat, fail, print_stdout, printable};
use helm_bulk::config::Loaded;
use helm_bulk::snapshot::{Entry, Index, IndexRow, Limits, SourceKind};

/// Arguments of `show`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk show                                  # ./helm-releases.tar.gz.age, default identity
  helm bulk show -i key.txt backup.tar.gz.age
  helm bulk show -i ~/.ssh/id_ed25519 -o json backup.age
  helm bulk show --values prod/web backup.age     # that release's user-supplied values
  cat backup.age | helm bulk show -i key.txt -
  helm bulk show s3://backups/helm/prod/latest    # the newest snapshot in a bucket

The whole snapshot is decrypted and verified in memory (one release at a time)
before anything is printed; nothing is written to disk.")]
pub struct ShowArgs {
    /// The snapshot file (`-` reads standard input), or a bucket URL of one
    /// (s3://bucket/prefix/cluster/<timestamp>.tar.gz.age, or …/latest)
    #[arg(value_name = "FILE|URL", default_value = DEFAULT_SNAPSHOT)]
    pub file: String,

    #[command(flatten)]
    pub open: OpenArgs,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Print the user-supplied values of release NAMESPACE/NAME (as `helm get values`)
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub values: Option<String>,

    /// Include superseded revisions, not only each release's latest
    #[arg(long)]
    pub history: bool,
}

/// The newest revision of each release, by position in the index.
fn latest_rows(index: &Index) -> Vec<&IndexRow> {
    helm_bulk::release::newest_rows(&index.releases)
        .into_values()
        .collect()
}

pub(super) fn run(args: ShowArgs, config: &Loaded) -> Result<(), Failure> {
    let wanted = match &args.values {
        Some(v) => Some(
            v.split_once('/')
                .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
                .ok_or_else(|| fail(format!("--values takes NAMESPACE/NAME, got `{v}`")))?,
        ),
        None => None,
    };
    let (_, _, opened) = args.open.open(&args.file, config)?;

    let mut values: Option<Zeroizing<Vec<u8>>> = None;
    let mut target_revision: Option<u32> = None;
    let index = helm_bulk::release::read_checked(
        opened.reader,
        &Limits::default(),
        |index, entry, data| {
            if let Entry::Release(row) = entry
                && let Some((ns, name)) = wanted
                && row.namespace == ns
                && row.name == name
            {
                let latest = *target_revision.get_or_insert_with(|| {
                    index
                        .releases
                        .iter()
                        .filter(|r| r.namespace == ns && r.name == name)
                        .map(|r| r.revision)
                        .max()
                        .unwrap_or(0)
                });
                if row.revision == latest {
                    values = Some(data);
                }
            }
            Ok(())
        },
    )?;
    args.open.verify.check_age(&index)?;

    if let Some((ns, name)) = wanted {
        let Some(data) = values else {
            return Err(fail(format!("release {ns}/{name} is not in this snapshot")));
        };
        let mut v = if index.source.kind == SourceKind::Tiller {
            // Helm 2 keeps the values as YAML text (Config.raw).
            let r =
                helm_bulk::tiller::record::decode_wiped(&data).map_err(|e| fail(e.to_string()))?;
            helm_bulk::tiller::record::user_values_json(&r).map_err(|e| fail(e.to_string()))?
        } else {
            helm_bulk::release::helm_user_values(&data)?
        };
        let text = zeroize::Zeroizing::new(super::output::structured(args.output, &v)?);
        helm_bulk::release::wipe_json(&mut v);
        return print_stdout(&text);
    }

    let rows: Vec<&IndexRow> = if args.history {
        index.releases.iter().collect()
    } else {
        latest_rows(&index)
    };
    let text = match args.output {
        OutputFormat::Table => table(&index, &rows),
        OutputFormat::Json | OutputFormat::Yaml => {
            let mut view = index.clone();
            view.releases = rows.into_iter().cloned().collect();
            super::output::structured(args.output, &view)?
        }
    };
    print_stdout(&text)
}

fn table(index: &Index, rows: &[&IndexRow]) -> String {
    let releases = latest_rows(index).len();
    let context = if index.cluster.context.is_empty() {
        String::new()
    } else {
        format!(" (context {})", printable(&index.cluster.context))
    };
    // A Helm 2 snapshot read over gRPC came from Tiller, not from storage objects.
    let source = if index.source.kind == SourceKind::Tiller && index.source.driver == "tiller" {
        format!("{}, read over gRPC", index.source.kind.describe())
    } else {
        format!(
            "{} release storage ({})",
            index.source.kind.describe(),
            printable(&index.source.driver)
        )
    };
    let mut out = format!(
        "Snapshot: {} releases, {} revisions, {} CRDs from {}{context}\nSource:   {source}, created {} by helm-bulk {}\n\n",
        releases,
        index.releases.len(),
        index.crds.len(),
        if index.cluster.server.is_empty() {
            "an unknown cluster".to_owned()
        } else {
            printable(&index.cluster.server)
        },
        printable(&helm_bulk::timefmt::human(&index.created_at)),
        printable(&index.tool_version),
    );
    let header = [
        "NAMESPACE",
        "NAME",
        "REVISION",
        "STATUS",
        "CHART",
        "APP VERSION",
        "UPDATED",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.namespace.clone(),
                r.name.clone(),
                r.revision.to_string(),
                printable(&r.status),
                printable(&format!("{}-{}", r.chart, r.chart_version)),
                printable(&r.app_version),
                printable(
                    &r.updated
                        .as_deref()
                        .map(helm_bulk::timefmt::human)
                        .unwrap_or_default(),
                ),
            ]
        })
        .collect();
    out.push_str(&super::output::table(&header, &body));
    let notes = helm_bulk::release::caught_in_flight(&index.releases);
    if !notes.is_empty() {
        out.push('\n');
    }
    for (release, what) in notes {
        out.push_str(&format!(
            "Note: {}/{}: {what}.\n",
            printable(&release.namespace),
            printable(&release.name)
        ));
    }
    if !index.crds.is_empty() {
        out.push('\n');
        out.push_str(&crd_table(index));
    }
    out
}

/// The snapshot's CRDs, and why save took each.
fn crd_table(index: &Index) -> String {
    let header = ["CRD", "KIND", "WHY"];
    let body: Vec<Vec<String>> = index
        .crds
        .iter()
        .map(|c| {
            vec![
                printable(&c.name),
                printable(&c.kind),
                if c.reason.is_empty() {
                    "-".to_owned()
                } else {
                    printable(&c.reason)
                },
            ]
        })
        .collect();
    super::output::table(&header, &body)
}
