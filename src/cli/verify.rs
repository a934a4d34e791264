//! `helm bulk verify`: prove that a snapshot opens with the escrowed key and
//! is complete, without a cluster. Decrypts in memory and reads every entry
//! through the checked reader; nothing is written.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::args::{OpenArgs, Origin, SnapshotSource, runtime};
use super::{DEFAULT_SNAPSHOT, Failure, OutputFormat, fail, print_stdout, printable};
use helm_bulk::config::Loaded;
use helm_bulk::snapshot::Limits;

/// Arguments of `verify`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk verify -i key.txt backup.tar.gz.age
  helm bulk verify -i key.txt --trusted-signers allowed_signers --max-age 26h s3://dr/helm/prod/latest
  helm bulk verify -i key.txt --trusted-signers allowed_signers --all s3://dr/helm -o json

The snapshot is decrypted and read in memory: every entry is checked against
the index (SHA-256, size, order, structure, each record's own name, namespace and
revision). With trusted signers (flag or config), its signature is checked first.
No cluster is needed. Exit 0 when every snapshot verifies, 1 otherwise (one line
says what is wrong).")]
pub struct VerifyCmdArgs {
    /// The snapshot file, or a bucket URL of one (…/<timestamp>.tar.gz.age or …/latest);
    /// with --all, the bucket prefix
    #[arg(value_name = "FILE|URL", default_value = DEFAULT_SNAPSHOT)]
    pub file: String,

    /// Verify every snapshot under the bucket prefix URL
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub open: OpenArgs,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// What verifying one snapshot found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    snapshot: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    releases: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revisions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crds: Option<usize>,
    /// `signed`, `unverified` (no trusted signers configured) or `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age_seconds: Option<i64>,
}

impl Report {
    fn failed(snapshot: String, error: String) -> Report {
        Report {
            snapshot,
            ok: false,
            error: Some(error),
            releases: None,
            revisions: None,
            crds: None,
            signature: None,
            signer: None,
            signer_fingerprint: None,
            created_at: None,
            age_seconds: None,
        }
    }

    fn line(&self) -> String {
        if let Some(e) = &self.error {
            return format!("FAILED {}: {}", printable(&self.snapshot), printable(e));
        }
        let signed = match (self.signature, &self.signer, &self.signer_fingerprint) {
            (Some("signed"), Some(who), Some(fp)) => {
                format!("signed by {} ({fp})", printable(who))
            }
            (Some("skipped"), _, _) => "signature NOT checked (--insecure-skip-verify)".to_owned(),
            _ => "signature not checked (no trusted signers configured)".to_owned(),
        };
        let created = self.created_at.as_deref().unwrap_or_default();
        let age = self
            .age_seconds
            .map(|s| {
                let s = s.max(0) as u64;
                // Whole minutes are enough to judge freshness.
                humantime::format_duration(std::time::Duration::from_secs(s - s % 60)).to_string()
            })
            .unwrap_or_default();
        format!(
            "OK {}: {} releases, {} revisions, {} CRDs; {signed}; created {} ({age} ago)",
            printable(&self.snapshot),
            self.releases.unwrap_or(0),
            self.revisions.unwrap_or(0),
            self.crds.unwrap_or(0),
            printable(&helm_bulk::timefmt::human(created)),
        )
    }
}

/// Verifies one snapshot; an error is the one line saying what is wrong.
fn verify_one(
    source: &SnapshotSource,
    args: &VerifyCmdArgs,
    identities: &[PathBuf],
    config: &Loaded,
) -> Result<Report, Failure> {
    let origin = args.open.verify.check(source, config)?;
    let opened = helm_bulk::vault::open(source.open()?, identities)?;
    let index =
        helm_bulk::release::read_checked(opened.reader, &Limits::default(), |_, _, _| Ok(()))?;
    args.open.verify.check_age(&index)?;
    let releases = helm_bulk::release::distinct_releases(&index.releases);
    let age = helm_bulk::timefmt::parse_rfc3339(&index.created_at)
        .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds());
    let (signature, signer, fingerprint) = match origin {
        Origin::Signed(s) => (
            "signed",
            Some(s.principals),
            Some(format!("{} {}", s.algorithm, s.fingerprint)),
        ),
        Origin::Unverified => ("unverified", None, None),
        Origin::Skipped => ("skipped", None, None),
    };
    Ok(Report {
        snapshot: source.describe(),
        ok: true,
        error: None,
        releases: Some(releases),
        revisions: Some(index.releases.len()),
        crds: Some(index.crds.len()),
        signature: Some(signature),
        signer,
        signer_fingerprint: fingerprint,
        created_at: Some(index.created_at.clone()),
        age_seconds: age,
    })
}

fn render(reports: &[Report], format: OutputFormat, many: bool) -> Result<String, Failure> {
    Ok(match format {
        OutputFormat::Table => reports.iter().map(|r| r.line() + "\n").collect(),
        format if many => super::output::structured(format, reports)?,
        format => super::output::structured(format, &reports[0])?,
    })
}

pub(super) fn run(args: VerifyCmdArgs, config: &Loaded) -> Result<(), Failure> {
    let identities = args.open.decrypt.identity_files(config);
    if !args.all {
        if args.file == "-" {
            return Err(fail(
                "verify reads a file or a bucket URL, not standard input",
            ));
        }
        let source = super::args::resolve_input(&args.file, &args.open.store, config)?;
        let report = verify_one(&source, &args, &identities, config)?;
        return print_stdout(&render(&[report], args.output, false)?);
    }
    if !args.file.contains("://") {
        return Err(fail(format!(
            "--all takes a bucket URL (s3://, gs://, az://, file://), not `{}`",
            args.file
        )));
    }
    let bucket = args.open.store.open(&args.file, config)?;
    let rt = std::sync::Arc::new(runtime()?);
    let listed = rt.block_on(bucket.list())?;
    if listed.is_empty() {
        return Err(fail(format!("no snapshot under {}", bucket.url())));
    }
    let mut reports = Vec::new();
    for item in &listed {
        let source = SnapshotSource::Object {
            bucket: bucket.clone(),
            key: item.key.clone(),
            runtime: std::sync::Arc::clone(&rt),
            pinned: std::sync::Mutex::new(None),
        };
        let report = verify_one(&source, &args, &identities, config)
            .unwrap_or_else(|f| Report::failed(source.describe(), f.message));
        if args.output == OutputFormat::Table {
            print_stdout(&report.line())?;
            print_stdout("\n")?;
        }
        reports.push(report);
    }
    if args.output != OutputFormat::Table {
        print_stdout(&render(&reports, args.output, true)?)?;
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        return Err(fail(format!(
            "{failed} of {} snapshots under {} failed verification",
            reports.len(),
            bucket.url()
        )));
    }
    Ok(())
}
