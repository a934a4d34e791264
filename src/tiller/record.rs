//! Helm 2 release records: `hapi.release.Release` protobuf bytes, kept in
//! snapshots exactly as Tiller sent or stored them, and the view of them that
//! the rest of helm-bulk uses.
//!
//! Tiller's statuses are upper-case (`DEPLOYED`); index rows carry the Helm 3
//! names (`deployed`, and `uninstalled` for `DELETED`), the same mapping as
//! Helm's own 2to3 migration, so `show`, `--status` and the restore planner
//! treat every snapshot alike.

use std::collections::BTreeSet;

use prost::Message;
use zeroize::Zeroizing;

use super::hapi::release::{Release, status::Code};
use crate::release::{ReleaseRecord, Summary};

/// What is wrong with a Helm 2 release record, or with a status given for one.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a `hapi.release.Release`.
    #[error("not a Helm 2 release record (protobuf): {0}")]
    Decode(#[source] prost::DecodeError),
    /// The record has no release name.
    #[error("the release record has no name")]
    NoName,
    /// The record (of this release) has no namespace.
    #[error("release {0} has no namespace")]
    NoNamespace(String),
    /// The record's revision is not a positive number.
    #[error("release {name} has revision {revision}")]
    BadRevision {
        /// The release.
        name: String,
        /// Its revision as stored.
        revision: i32,
    },
    /// The user values are not YAML.
    #[error("the release's values are not valid YAML: {0}")]
    Values(#[source] serde_norway::Error),
    /// A status the user gave is none of Helm's or Tiller's.
    #[error(
        "unknown release status `{}`; use deployed, failed, superseded, uninstalled (Tiller's DELETED), pending-install, pending-upgrade, pending-rollback, uninstalling, unknown or all",
        .0.escape_debug()
    )]
    UnknownStatus(String),
}

/// Decodes a record.
pub fn decode(data: &[u8]) -> Result<Release, RecordError> {
    Release::decode(data).map_err(RecordError::Decode)
}

/// A decoded release whose values, manifests and chart files are wiped from
/// memory when dropped (best effort, like the record bytes themselves).
pub struct Wiped(pub Release);

impl std::ops::Deref for Wiped {
    type Target = Release;
    fn deref(&self) -> &Release {
        &self.0
    }
}

fn wipe_chart(c: &mut super::hapi::chart::Chart) {
    use zeroize::Zeroize;
    if let Some(v) = c.values.as_mut() {
        v.raw.zeroize();
    }
    for t in &mut c.templates {
        t.data.zeroize();
    }
    for f in &mut c.files {
        f.value.zeroize();
    }
    for d in &mut c.dependencies {
        wipe_chart(d);
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        let r = &mut self.0;
        r.manifest.zeroize();
        if let Some(c) = r.config.as_mut() {
            c.raw.zeroize();
        }
        for h in &mut r.hooks {
            h.manifest.zeroize();
        }
        if let Some(c) = r.chart.as_mut() {
            wipe_chart(c);
        }
    }
}

/// Decodes a record into a [`Wiped`] release.
pub fn decode_wiped(data: &[u8]) -> Result<Wiped, RecordError> {
    decode(data).map(Wiped)
}

/// The Helm 3 name of a Tiller status code (unknown codes are `unknown`).
pub fn status_name(code: i32) -> &'static str {
    match Code::try_from(code).unwrap_or(Code::Unknown) {
        Code::Unknown => "unknown",
        Code::Deployed => "deployed",
        Code::Deleted => "uninstalled",
        Code::Superseded => "superseded",
        Code::Failed => "failed",
        Code::Deleting => "uninstalling",
        Code::PendingInstall => "pending-install",
        Code::PendingUpgrade => "pending-upgrade",
        Code::PendingRollback => "pending-rollback",
    }
}

/// Every status code, for `--status all`.
pub const ALL_CODES: [Code; 9] = [
    Code::Unknown,
    Code::Deployed,
    Code::Deleted,
    Code::Superseded,
    Code::Failed,
    Code::Deleting,
    Code::PendingInstall,
    Code::PendingUpgrade,
    Code::PendingRollback,
];

/// Parses a status as a user gives it: Helm 3's names (`deployed`,
/// `uninstalled`, `pending-install`) or Tiller's (`DEPLOYED`, `DELETED`,
/// `PENDING_INSTALL`), in any case. `all` is every status.
pub fn parse_statuses(given: &[String]) -> Result<Vec<Code>, RecordError> {
    if given.is_empty() {
        return Ok(vec![Code::Deployed]);
    }
    let mut out = Vec::new();
    for s in given {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        if norm == "all" {
            return Ok(ALL_CODES.to_vec());
        }
        let code = ALL_CODES.iter().copied().find(|c| {
            status_name(*c as i32) == norm
                || c.as_str_name().to_ascii_lowercase().replace('_', "-") == norm
        });
        match code {
            Some(c) if !out.contains(&c) => out.push(c),
            Some(_) => {}
            None => return Err(RecordError::UnknownStatus(s.clone())),
        }
    }
    Ok(out)
}

/// The status code of a release revision.
pub fn code(r: &Release) -> i32 {
    r.info
        .as_ref()
        .and_then(|i| i.status.as_ref())
        .map(|s| s.code)
        .unwrap_or(0)
}

/// An RFC 3339 time from a protobuf timestamp (none when unset or zero).
pub fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    if ts.seconds <= 0 && ts.nanos <= 0 {
        return None;
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos.max(0));
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The summary (index row fields) of a Helm 2 release.
pub fn summary(r: &Release) -> Result<Summary, RecordError> {
    if r.name.is_empty() {
        return Err(RecordError::NoName);
    }
    if r.namespace.is_empty() {
        return Err(RecordError::NoNamespace(r.name.clone()));
    }
    let revision = u32::try_from(r.version)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| RecordError::BadRevision {
            name: r.name.clone(),
            revision: r.version,
        })?;
    let meta = r.chart.as_ref().and_then(|c| c.metadata.as_ref());
    let info = r.info.as_ref();
    Ok(Summary {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        revision,
        status: status_name(code(r)).to_owned(),
        chart: meta.map(|m| m.name.clone()).unwrap_or_default(),
        chart_version: meta.map(|m| m.version.clone()).unwrap_or_default(),
        app_version: meta.map(|m| m.app_version.clone()).unwrap_or_default(),
        updated: rfc3339(info.and_then(|i| i.last_deployed.as_ref())),
    })
}

/// A snapshot record from the exact bytes Tiller sent or stored.
pub fn record_from_bytes(
    data: Zeroizing<Vec<u8>>,
) -> Result<(ReleaseRecord, Release), RecordError> {
    let release = decode(&data)?;
    let summary = summary(&release)?;
    Ok((ReleaseRecord { summary, data }, release))
}

/// The values the user supplied, as the YAML text Helm 2 keeps (empty when none).
pub fn user_values(r: &Release) -> &str {
    r.config.as_ref().map(|c| c.raw.as_str()).unwrap_or("")
}

/// The user values as JSON, for `show --values` (an empty object when none).
pub fn user_values_json(r: &Release) -> Result<serde_json::Value, RecordError> {
    let raw = user_values(r);
    let v: serde_json::Value = serde_norway::from_str(raw).map_err(RecordError::Values)?;
    Ok(match v {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    })
}

/// The `(group, kind)` of every object in the release's manifest and hooks.
pub fn kinds_used(r: &Release) -> BTreeSet<crate::release::GroupKind> {
    let view = serde_json::json!({
        "manifest": r.manifest,
        "hooks": r.hooks.iter().map(|h| serde_json::json!({"manifest": h.manifest})).collect::<Vec<_>>(),
    });
    crate::release::kinds_used(view.to_string().as_bytes())
}

/// The `(group, kind)` of every object of a record's bytes (empty when they do not decode).
pub fn kinds_used_bytes(data: &[u8]) -> BTreeSet<crate::release::GroupKind> {
    decode(data).map(|r| kinds_used(&r)).unwrap_or_default()
}

/// Parts of Helm 2 release records, for tests.
#[cfg(test)]
pub(crate) mod samples {
    use crate::tiller::hapi::chart::{Chart, Config, Metadata, Template};

    /// Chart metadata: its name, version and appVersion.
    pub fn metadata(name: &str, version: &str, app_version: &str) -> Metadata {
        Metadata {
            name: name.into(),
            version: version.into(),
            app_version: app_version.into(),
            ..Default::default()
        }
    }

    /// Values as Helm 2 stores them (user values, or a chart's defaults).
    pub fn values(yaml: &str) -> Option<Config> {
        Some(Config {
            raw: yaml.into(),
            ..Default::default()
        })
    }

    /// A chart of `metadata` with one template and default values.
    pub fn chart(metadata: Metadata, template: (&str, &[u8]), defaults: &str) -> Option<Chart> {
        Some(Chart {
            metadata: Some(metadata),
            templates: vec![Template {
                name: template.0.into(),
                data: template.1.to_vec(),
            }],
            values: values(defaults),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::samples::{metadata, values};
    use super::*;
    use crate::tiller::hapi::chart::Chart;
    use crate::tiller::hapi::release::{Hook, Info, Status};

    fn release() -> Release {
        Release {
            name: "web".into(),
            namespace: "prod".into(),
            version: 3,
            info: Some(Info {
                status: Some(Status {
                    code: Code::Deleted as i32,
                    ..Default::default()
                }),
                last_deployed: Some(prost_types::Timestamp {
                    seconds: 1_767_323_045,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            chart: Some(Chart {
                metadata: Some(metadata("nginx", "1.2.3", "1.27")),
                ..Default::default()
            }),
            config: values("password: hunter2\n"),
            manifest: "---\napiVersion: v1\nkind: ConfigMap\n".into(),
            hooks: vec![Hook {
                manifest: "apiVersion: example.com/v1\nkind: Widget\n".into(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn summary_maps_statuses_and_times() {
        let s = summary(&release()).unwrap();
        assert_eq!(
            (s.namespace.as_str(), s.name.as_str(), s.revision),
            ("prod", "web", 3)
        );
        assert_eq!(s.status, "uninstalled");
        assert_eq!(
            (
                s.chart.as_str(),
                s.chart_version.as_str(),
                s.app_version.as_str()
            ),
            ("nginx", "1.2.3", "1.27")
        );
        assert_eq!(s.updated.as_deref(), Some("2026-01-02T03:04:05Z"));
        let bytes = Zeroizing::new(release().encode_to_vec());
        let (rec, _) = record_from_bytes(bytes).unwrap();
        assert_eq!(rec.summary, s);
        assert!(record_from_bytes(Zeroizing::new(b"\xff\xff".to_vec())).is_err());
    }

    #[test]
    fn parses_statuses_both_ways() {
        assert_eq!(parse_statuses(&[]).unwrap(), [Code::Deployed]);
        let got = parse_statuses(&[
            "DEPLOYED".into(),
            "uninstalled".into(),
            "pending_install".into(),
            "Deleted".into(),
        ])
        .unwrap();
        assert_eq!(got, [Code::Deployed, Code::Deleted, Code::PendingInstall]);
        assert_eq!(parse_statuses(&["all".into()]).unwrap().len(), 9);
        assert!(parse_statuses(&["gone".into()]).is_err());
    }

    #[test]
    fn values_and_kinds() {
        let r = release();
        assert_eq!(user_values_json(&r).unwrap()["password"], "hunter2");
        let mut empty = r.clone();
        empty.config = None;
        assert_eq!(user_values_json(&empty).unwrap(), serde_json::json!({}));
        let kinds: Vec<_> = kinds_used(&r)
            .into_iter()
            .map(|g| (g.group, g.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (String::new(), "ConfigMap".to_owned()),
                ("example.com".to_owned(), "Widget".to_owned())
            ]
        );
    }
}
