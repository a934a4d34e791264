//! `helm bulk diff`: compare a snapshot with the live cluster, per release.
//! Both sides are read into memory; nothing is written, nothing is changed.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;
use zeroize::Zeroizing;

use super::args::{ClusterArgs, OpenArgs};
use super::{DEFAULT_SNAPSHOT, EXIT_USAGE, Failure, OutputFormat, print_stdout, printable};
use helm_bulk::config::Loaded;
use helm_bulk::release::{ReleaseId as _, ReleaseKey};
use helm_bulk::snapshot::{Entry, IndexRow, Limits, SourceKind};
use helm_bulk::source::helm::{Driver, HelmSource, SaveFilter};

/// Arguments of `diff`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk diff -i key.txt backup.tar.gz.age
  helm bulk diff -i key.txt -o json s3://dr/helm/prod/latest
  helm bulk diff -i key.txt --values --manifest -n prod backup.age

Compares each release's latest revision in the snapshot with its latest revision
in the cluster: `missing` (in the snapshot, not in the cluster), `extra` (in the
cluster, not in the snapshot), `equal`, or `drifted` with the parts that differ:
chart (name and version), values (user-supplied), manifest, hooks. --values and
--manifest add a unified diff of those parts, with the values of keys containing
password, token, secret or key, and the data of Secrets, shown as <redacted>
unless --show-secrets.

Exit codes (as diff): 0 the cluster equals the snapshot, 1 they differ, 2 error.")]
pub struct DiffArgs {
    /// The snapshot file, or a bucket URL of one (…/<timestamp>.tar.gz.age or …/latest)
    #[arg(value_name = "FILE|URL", default_value = DEFAULT_SNAPSHOT)]
    pub file: String,

    #[command(flatten)]
    pub open: OpenArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Helm's storage driver in the cluster
    #[arg(
        long,
        value_name = "DRIVER",
        env = "HELM_DRIVER",
        default_value = "secret"
    )]
    pub driver: String,

    /// Also print a unified diff of the user-supplied values of each drifted release
    #[arg(long)]
    pub values: bool,

    /// Also print a unified diff of the manifest of each drifted release
    #[arg(long)]
    pub manifest: bool,

    /// Show secrets in those diffs (by default, values whose key contains password, token,
    /// secret or key, and the data of Secrets, are shown as <redacted>)
    #[arg(long)]
    pub show_secrets: bool,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// One release's comparison.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    namespace: String,
    name: String,
    /// `equal`, `drifted`, `missing` or `extra`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_revision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_revision: Option<u32>,
    differs: Vec<&'static str>,
    /// With --values: the unified diff of the user values (snapshot to cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    values_diff: Option<String>,
    /// With --manifest: the unified diff of the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_diff: Option<String>,
}

impl Row {
    /// The row of `key` with `status`, and nothing else known yet.
    fn new(key: &ReleaseKey, status: &'static str) -> Row {
        Row {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            status,
            snapshot_revision: None,
            live_revision: None,
            differs: Vec::new(),
            values_diff: None,
            manifest_diff: None,
        }
    }
}

type TextOf = fn(&[u8], bool) -> Result<String, serde_json::Error>;

/// The record of each release's newest revision, with its number.
type Latest = BTreeMap<ReleaseKey, (u32, Zeroizing<Vec<u8>>)>;

/// The newest revision of each release among `rows`.
fn newest_revisions(rows: &[IndexRow]) -> BTreeMap<ReleaseKey, u32> {
    helm_bulk::release::newest_rows(rows)
        .into_iter()
        .map(|((ns, name), r)| (ReleaseKey::new(ns, name), r.revision))
        .collect()
}

/// Keeps the record of `row` when it is its release's newest revision.
fn keep_newest(
    map: &mut Latest,
    newest: &BTreeMap<ReleaseKey, u32>,
    row: &IndexRow,
    data: Zeroizing<Vec<u8>>,
) {
    if newest.get(row.release_id()) == Some(&row.revision) {
        map.insert(row.release_key(), (row.revision, data));
    }
}

fn error(f: Failure) -> Failure {
    Failure {
        message: f.message,
        code: EXIT_USAGE,
    }
}

pub(super) fn run(args: DiffArgs, config: &Loaded) -> Result<(), Failure> {
    compare(&args, config).map_err(error).and_then(|rows| {
        let differ = rows.iter().filter(|r| r.status != "equal").count();
        let text = match args.output {
            OutputFormat::Table => table(&rows),
            format => super::output::structured(format, &rows)?,
        };
        print_stdout(&text).map_err(error)?;
        if differ == 0 {
            return Ok(());
        }
        let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
        Err(Failure {
            message: format!(
                "the cluster differs from the snapshot: {} drifted, {} missing, {} extra",
                count("drifted"),
                count("missing"),
                count("extra")
            ),
            code: 1,
        })
    })
}

fn compare(args: &DiffArgs, config: &Loaded) -> Result<Vec<Row>, Failure> {
    let driver = Driver::parse(&args.driver)?;
    let (kind, snapshot) = read_snapshot(args, config)?;
    let live = read_live(args, driver, kind)?;
    // With -n, releases of other namespaces in the snapshot are not compared.
    let scope = args.cluster.namespace.clone();
    let mut rows = Vec::new();
    for (key, (rev, data)) in &snapshot {
        if scope.as_ref().is_some_and(|s| *s != key.namespace) {
            continue;
        }
        let row = match live.get(key) {
            None => Row {
                snapshot_revision: Some(*rev),
                ..Row::new(key, "missing")
            },
            Some((live_rev, live_data)) => drift(args, key, (*rev, data), (*live_rev, live_data))?,
        };
        rows.push(row);
    }
    for (key, (live_rev, _)) in &live {
        if !snapshot.contains_key(key) {
            rows.push(Row {
                live_revision: Some(*live_rev),
                ..Row::new(key, "extra")
            });
        }
    }
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

/// The snapshot's source kind and newest record of each release, verified
/// as `load` would; a Helm 2 snapshot is refused.
fn read_snapshot(args: &DiffArgs, config: &Loaded) -> Result<(SourceKind, Latest), Failure> {
    let (_, _, opened) = args.open.open(&args.file, config)?;
    let mut snapshot = Latest::new();
    let mut newest: Option<BTreeMap<ReleaseKey, u32>> = None;
    let index = helm_bulk::release::read_checked(
        opened.reader,
        &Limits::default(),
        |index, entry, data| {
            let newest = newest.get_or_insert_with(|| newest_revisions(&index.releases));
            if let Entry::Release(row) = entry {
                keep_newest(&mut snapshot, newest, row, data);
            }
            Ok(())
        },
    )?;
    args.open.verify.check_age(&index)?;
    if index.source.kind == SourceKind::Tiller {
        return Err(super::fail(
            "diff compares Helm 3/4 snapshots; this one holds Helm 2 (Tiller) records",
        ));
    }
    Ok((index.source.kind, snapshot))
}

/// The newest record of each release in the cluster (in `driver` storage,
/// of the Helm generation `kind`), in the scope of `-n`.
fn read_live(args: &DiffArgs, driver: Driver, kind: SourceKind) -> Result<Latest, Failure> {
    let rt = super::args::runtime()?;
    rt.block_on(async {
        let cluster = helm_bulk::cluster::connect(&args.cluster.options()).await?;
        let scope = args.cluster.scope(&cluster.default_namespace);
        let helm = HelmSource::new(cluster.client.clone(), driver, scope, kind, 500);
        let filter = SaveFilter {
            selection: helm_bulk::select::Selection::all(),
            history: Some(0),
            statuses: Vec::new(),
        };
        let plan = helm.plan(&filter).await?;
        let rows = plan.rows.clone();
        let (tx, mut rx) = helm_bulk::source::record_channel();
        let collect = std::thread::spawn(move || {
            let newest = newest_revisions(&rows);
            let mut out = Latest::new();
            while let Some(rec) = rx.blocking_recv() {
                keep_newest(&mut out, &newest, &rows[rec.pos], rec.data);
            }
            out
        });
        let fetched = helm.fetch(&plan, &tx).await;
        drop(tx);
        let out = collect
            .join()
            .map_err(|_| super::fail("the record collector panicked"))?;
        fetched?;
        Ok::<_, Failure>(out)
    })
}

/// The row of a release both in the snapshot and in the cluster: which
/// parts differ, and the diffs of values and manifest asked for.
fn drift(
    args: &DiffArgs,
    key: &ReleaseKey,
    (rev, data): (u32, &[u8]),
    (live_rev, live_data): (u32, &[u8]),
) -> Result<Row, Failure> {
    let (ns, name) = (&key.namespace, &key.name);
    let differs = helm_bulk::release::compare::differing_parts(data, live_data)?;
    let show = args.show_secrets;
    let label =
        |side: &str, rev: u32, what: &str| format!("{side} {ns}/{name} revision {rev} ({what})");
    let text_diff = |wanted: bool, part: &str, text: TextOf| -> Result<_, Failure> {
        if !wanted || !differs.contains(&part) {
            return Ok(None);
        }
        let d = helm_bulk::release::compare::unified(
            &text(data, show)?,
            &text(live_data, show)?,
            &label("snapshot", rev, part),
            &label("cluster", live_rev, part),
        );
        Ok(Some(if d.is_empty() {
            format!("{ns}/{name}: only redacted {part} differ (--show-secrets shows them)\n")
        } else {
            d
        }))
    };
    let values_diff = text_diff(
        args.values,
        "values",
        helm_bulk::release::compare::values_text,
    )?;
    let manifest_diff = text_diff(
        args.manifest,
        "manifest",
        helm_bulk::release::compare::manifest_text,
    )?;
    let status = if differs.is_empty() {
        "equal"
    } else {
        "drifted"
    };
    Ok(Row {
        values_diff,
        manifest_diff,
        snapshot_revision: Some(rev),
        live_revision: Some(live_rev),
        differs,
        ..Row::new(key, status)
    })
}

fn table(rows: &[Row]) -> String {
    let header = ["NAMESPACE", "NAME", "STATUS", "REVISIONS", "DIFFERS"];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let rev = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            vec![
                printable(&r.namespace),
                printable(&r.name),
                r.status.to_owned(),
                format!("{} -> {}", rev(r.snapshot_revision), rev(r.live_revision)),
                r.differs.join(", "),
            ]
        })
        .collect();
    let mut out = super::output::table(&header, &body);
    for r in rows {
        for d in [&r.values_diff, &r.manifest_diff].into_iter().flatten() {
            out.push('\n');
            out.push_str(&printable_lines(d));
        }
    }
    out
}

/// Control characters escaped, line by line (the diff's own newlines kept).
fn printable_lines(text: &str) -> String {
    text.lines().map(|l| printable(l) + "\n").collect()
}
