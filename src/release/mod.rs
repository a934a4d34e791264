//! The release model: one stored revision of one Helm release.
//!
//! Records are kept exactly as Helm stores them (decoded JSON for Helm 3/4,
//! protobuf bytes for Tiller) so nothing Helm wrote is lost; [`Summary`] is a
//! parsed view of the few fields helm-bulk itself needs.

pub mod compare;
pub mod key;
pub mod storage;

pub use key::{GroupKind, ReleaseId, ReleaseKey, RevisionId, RevisionKey};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::snapshot::{IndexRow, SnapshotError, SourceKind, record_path, sha256_hex};

/// One release revision, as Helm stored it.
pub struct ReleaseRecord {
    /// The parsed view of the record.
    pub summary: Summary,
    /// The record bytes. They hold user values (often secrets), so they are
    /// wiped from memory when dropped.
    pub data: Zeroizing<Vec<u8>>,
}

/// The fields of a release record that helm-bulk uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Namespace of the release.
    pub namespace: String,
    /// Release name.
    pub name: String,
    /// Revision number.
    pub revision: u32,
    /// Helm status of this revision.
    pub status: String,
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub chart_version: String,
    /// Chart appVersion.
    pub app_version: String,
    /// Last deployment time, as Helm wrote it.
    pub updated: Option<String>,
}

/// Why a release record could not be understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The record is not the JSON Helm 3/4 writes.
    #[error("release record is not valid Helm JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field helm-bulk needs is missing.
    #[error("release record has no {0}")]
    Missing(&'static str),
}

#[derive(Deserialize)]
struct HelmRelease {
    name: Option<String>,
    namespace: Option<String>,
    version: Option<u32>,
    #[serde(default)]
    info: Option<HelmInfo>,
    #[serde(default)]
    chart: Option<HelmChart>,
}

#[derive(Deserialize)]
struct HelmInfo {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    last_deployed: Option<String>,
}

#[derive(Deserialize)]
struct HelmChart {
    #[serde(default)]
    metadata: Option<HelmMetadata>,
}

#[derive(Deserialize)]
struct HelmMetadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default, rename = "appVersion")]
    app_version: Option<String>,
}

impl Summary {
    /// Parses the summary of a Helm 3/4 release record (the decoded JSON).
    pub fn from_helm_json(data: &[u8]) -> Result<Summary, ReleaseError> {
        let r: HelmRelease = serde_json::from_slice(data)?;
        let info = r.info.unwrap_or(HelmInfo {
            status: None,
            last_deployed: None,
        });
        let meta = r.chart.and_then(|c| c.metadata).unwrap_or(HelmMetadata {
            name: None,
            version: None,
            app_version: None,
        });
        Ok(Summary {
            namespace: r.namespace.ok_or(ReleaseError::Missing("namespace"))?,
            name: r.name.ok_or(ReleaseError::Missing("name"))?,
            revision: r.version.ok_or(ReleaseError::Missing("version"))?,
            status: info.status.unwrap_or_else(|| "unknown".to_owned()),
            chart: meta.name.unwrap_or_default(),
            chart_version: meta.version.unwrap_or_default(),
            app_version: meta.app_version.unwrap_or_default(),
            updated: info.last_deployed.filter(|s| !s.is_empty()),
        })
    }
}

impl ReleaseRecord {
    /// A record from Helm 3/4 JSON, with its summary parsed from the bytes.
    pub fn from_helm_json(data: Vec<u8>) -> Result<ReleaseRecord, ReleaseError> {
        let data = Zeroizing::new(data);
        let summary = Summary::from_helm_json(&data)?;
        Ok(ReleaseRecord { summary, data })
    }

    /// The index row describing this record in a snapshot of the given kind.
    pub fn index_row(&self, kind: SourceKind) -> Result<IndexRow, SnapshotError> {
        let s = &self.summary;
        Ok(IndexRow {
            path: record_path(kind, &s.namespace, &s.name, s.revision)?,
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            revision: s.revision,
            status: s.status.clone(),
            chart: s.chart.clone(),
            chart_version: s.chart_version.clone(),
            app_version: s.app_version.clone(),
            updated: s.updated.clone(),
            size: self.data.len() as u64,
            sha256: sha256_hex(&self.data),
            labels: Default::default(),
            blobs_last_used: Vec::new(),
            extra: Default::default(),
        })
    }
}

/// Overwrites every string of a JSON value parsed from a record (values,
/// keys, numbers' text is not kept by serde_json) with zeros, then empties
/// it. `serde_json::Value` has no `Zeroize`: call this before dropping a
/// value that held user values, as `show --values` and the frozen chart do.
pub fn wipe_json(value: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => {
            for item in items.iter_mut() {
                wipe_json(item);
            }
            items.clear();
        }
        serde_json::Value::Object(map) => {
            for (mut key, mut item) in std::mem::take(map) {
                wipe_json(&mut item);
                key.zeroize();
            }
        }
        _ => {}
    }
    *value = serde_json::Value::Null;
}

/// The user-supplied values (`config`) of a Helm 3/4 release record.
pub fn helm_user_values(data: &[u8]) -> Result<serde_json::Value, ReleaseError> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let c: Config = serde_json::from_slice(data)?;
    Ok(c.config
        .unwrap_or(serde_json::Value::Object(Default::default())))
}

/// Helm's current revision of one release, as [`current_revision`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The revision to restore.
    pub revision: u32,
    /// When a save caught an upgrade or rollback in flight: the newest
    /// revision and its `pending-*` status. `revision` is then the last good
    /// (`superseded`) one.
    pub in_flight: Option<(u32, String)>,
}

/// Whether a Helm status is one of the `pending-*` ones of an operation in flight.
pub fn is_pending(status: &str) -> bool {
    status.starts_with("pending-") || status.starts_with("pending_")
}

/// Helm's current revision of one release from its revisions' `(number,
/// status)`, in any order: the newest `deployed` one. Helm writes an upgrade
/// (or rollback) as two separate updates, the old revision `superseded` first
/// and the new one `deployed` second (`pkg/action/upgrade.go`, also in Helm
/// 3), so a save that lands between them holds no `deployed` revision: the
/// current one is then the newest `superseded` revision followed only by
/// `pending-*` ones. `None` when there is neither (a first install in flight,
/// a failed install, an uninstalled release).
pub fn current_revision(revisions: &[(u32, &str)]) -> Option<Current> {
    let mut revs: Vec<(u32, &str)> = revisions.to_vec();
    revs.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    if let Some((n, _)) = revs.iter().find(|(_, s)| *s == "deployed") {
        return Some(Current {
            revision: *n,
            in_flight: None,
        });
    }
    let newest = *revs.first()?;
    let good = revs.iter().position(|(_, s)| !is_pending(s))?;
    if good == 0 || revs[good].1 != "superseded" {
        return None;
    }
    Some(Current {
        revision: revs[good].0,
        in_flight: Some((newest.0, newest.1.to_owned())),
    })
}

/// The newest revision of each release among index rows, by
/// `(namespace, name)`.
pub fn newest_rows(rows: &[IndexRow]) -> std::collections::BTreeMap<(&str, &str), &IndexRow> {
    newest_by(
        rows,
        |row| (row.namespace.as_str(), row.name.as_str()),
        |row| row.revision,
    )
}

/// The newest revision of each release among `items`: `release` says which
/// release an item is a revision of, `revision` which revision (of equal
/// ones, the first).
pub fn newest_by<'a, T, K: Ord, R: Ord>(
    items: &'a [T],
    release: impl Fn(&'a T) -> K,
    revision: impl Fn(&T) -> R,
) -> std::collections::BTreeMap<K, &'a T> {
    let mut newest: std::collections::BTreeMap<K, &'a T> = Default::default();
    for item in items {
        let e = newest.entry(release(item)).or_insert(item);
        if revision(item) > revision(e) {
            *e = item;
        }
    }
    newest
}

/// How many distinct releases index rows in archive order hold (the
/// revisions of a release are adjacent there).
pub fn distinct_releases(rows: &[IndexRow]) -> usize {
    let mut keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.namespace.as_str(), r.name.as_str()))
        .collect();
    keys.dedup();
    keys.len()
}

/// The releases of `rows` (index rows, any order) that were saved with an
/// upgrade or rollback in flight (see [`current_revision`]), sorted, each
/// with the message that says so.
pub fn caught_in_flight(rows: &[IndexRow]) -> Vec<(ReleaseKey, String)> {
    let mut by_release: std::collections::BTreeMap<(&str, &str), Vec<(u32, &str)>> =
        Default::default();
    for r in rows {
        by_release
            .entry((&r.namespace, &r.name))
            .or_default()
            .push((r.revision, &r.status));
    }
    by_release
        .into_iter()
        .filter_map(|((ns, name), revs)| {
            let c = current_revision(&revs)?;
            let (pending, status) = c.in_flight?;
            Some((
                ReleaseKey::new(ns, name),
                format!(
                    "an upgrade was in flight when it was saved (revision {pending} is {status}); load restores revision {}, the last good one",
                    c.revision
                ),
            ))
        })
        .collect()
}

/// A release the cluster has now, as its newest revision describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The newest revision.
    pub revision: u32,
    /// Its status (`deployed`, `pending-install`, `failed`, …; never `uninstalled`).
    pub status: String,
    /// Whether that revision was installed by helm-bulk: its chart is a frozen
    /// chart (it carries `helm-bulk.io/frozen-from-revision`). Only looked up
    /// for revisions that are not `deployed`.
    pub frozen: bool,
}

/// A Helm 3/4 release record read for its chart only, as `C` (the parts of
/// the chart a caller needs); every other field is ignored.
#[derive(Deserialize)]
#[serde(bound = "C: Deserialize<'de>")]
struct WithChart<C> {
    #[serde(default)]
    chart: Option<C>,
}

/// Whether a Helm 3/4 release record's chart is a frozen chart made by
/// helm-bulk (it carries the `frozen_annotation`).
pub fn has_chart_annotation(data: &[u8], annotation: &str) -> bool {
    #[derive(Deserialize)]
    struct Chart {
        #[serde(default)]
        metadata: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default)]
        annotations: Option<std::collections::BTreeMap<String, String>>,
    }
    serde_json::from_slice::<WithChart<Chart>>(data)
        .ok()
        .and_then(|r| r.chart?.metadata?.annotations)
        .is_some_and(|a| a.contains_key(annotation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_json_empties_every_string() {
        let mut v =
            serde_json::json!({"password": "hunter2", "nested": [{"token": "abc"}, 3, true]});
        wipe_json(&mut v);
        assert_eq!(v, serde_json::Value::Null);
    }

    const RECORD: &str = r#"{"name":"web","namespace":"prod","version":3,
        "info":{"status":"deployed","last_deployed":"2026-01-02T03:04:05Z"},
        "chart":{"metadata":{"name":"nginx","version":"1.2.3","appVersion":"1.27"}},
        "config":{"password":"hunter2"},"manifest":"---","future":"kept"}"#;

    #[test]
    fn parses_summary() {
        let s = Summary::from_helm_json(RECORD.as_bytes()).unwrap();
        assert_eq!(s.namespace, "prod");
        assert_eq!(s.name, "web");
        assert_eq!(s.revision, 3);
        assert_eq!(s.status, "deployed");
        assert_eq!(s.chart, "nginx");
        assert_eq!(s.chart_version, "1.2.3");
        assert_eq!(s.app_version, "1.27");
        assert_eq!(s.updated.as_deref(), Some("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn user_values() {
        let v = helm_user_values(RECORD.as_bytes()).unwrap();
        assert_eq!(v["password"], "hunter2");
    }

    #[test]
    fn current_revision_is_the_deployed_or_the_last_good_one() {
        let c = |revs: &[(u32, &str)]| current_revision(revs);
        assert_eq!(
            c(&[(1, "superseded"), (2, "deployed"), (3, "failed")]),
            Some(Current {
                revision: 2,
                in_flight: None
            })
        );
        // A save between helm's two writes of an upgrade.
        assert_eq!(
            c(&[(2, "pending-upgrade"), (1, "superseded")]),
            Some(Current {
                revision: 1,
                in_flight: Some((2, "pending-upgrade".into()))
            })
        );
        assert_eq!(
            c(&[
                (1, "superseded"),
                (2, "superseded"),
                (3, "pending-rollback")
            ]),
            Some(Current {
                revision: 2,
                in_flight: Some((3, "pending-rollback".into()))
            })
        );
        // Nothing good: a first install in flight, a failed install, a
        // superseded revision followed by a failed one.
        assert_eq!(c(&[(1, "pending-install")]), None);
        assert_eq!(c(&[(1, "failed")]), None);
        assert_eq!(c(&[(1, "superseded"), (2, "failed")]), None);
        assert_eq!(c(&[(1, "superseded")]), None);
        assert_eq!(c(&[]), None);
    }

    #[test]
    fn finds_the_frozen_chart_annotation() {
        let frozen =
            br#"{"chart":{"metadata":{"annotations":{"helm-bulk.io/frozen-from-revision":"3"}}}}"#;
        assert!(has_chart_annotation(
            frozen,
            "helm-bulk.io/frozen-from-revision"
        ));
        assert!(!has_chart_annotation(
            RECORD.as_bytes(),
            "helm-bulk.io/frozen-from-revision"
        ));
        assert!(!has_chart_annotation(b"not json", "x"));
    }

    #[test]
    fn missing_name_is_an_error() {
        let e = Summary::from_helm_json(br#"{"namespace":"a","version":1}"#).unwrap_err();
        assert_eq!(e.to_string(), "release record has no name");
    }
}

/// The YAML documents of a multi-document stream (split on `---` lines).
pub(crate) fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..pos]);
            start = pos + line.len();
        }
        pos += line.len();
    }
    docs.push(&text[start..]);
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v.split(" #").next().unwrap_or(v).trim();
    v.trim_matches(|c| c == '"' || c == '\'').to_owned()
}

/// The group and kind of every object in a Helm 3/4 record's manifest and
/// hooks (the core group is `""`), and of every custom kind defined by a CRD
/// among them or in the chart's `crds/`. Documents that are not YAML objects
/// are ignored.
pub fn kinds_used(data: &[u8]) -> std::collections::BTreeSet<GroupKind> {
    #[derive(Deserialize)]
    struct Record {
        #[serde(default)]
        manifest: Option<String>,
        #[serde(default)]
        hooks: Option<Vec<Hook>>,
    }
    #[derive(Deserialize)]
    struct Hook {
        #[serde(default)]
        manifest: Option<String>,
    }
    let mut out = std::collections::BTreeSet::new();
    let Ok(r) = serde_json::from_slice::<Record>(data) else {
        return out;
    };
    let texts = r.manifest.into_iter().chain(
        r.hooks
            .unwrap_or_default()
            .into_iter()
            .filter_map(|h| h.manifest),
    );
    for text in texts {
        kinds_in(&text, &mut out);
    }
    for (_, text) in chart_crd_files(data) {
        kinds_in(&text, &mut out);
    }
    out
}

/// The files of a Helm 3/4 record's chart under `crds/`: `(path, text)`.
pub fn chart_crd_files(data: &[u8]) -> Vec<(String, String)> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    struct Chart {
        #[serde(default)]
        files: Option<Vec<File>>,
    }
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        name: String,
        #[serde(default)]
        data: Option<String>,
    }
    let Ok(r) = serde_json::from_slice::<WithChart<Chart>>(data) else {
        return Vec::new();
    };
    r.chart
        .and_then(|c| c.files)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.name.starts_with("crds/"))
        .filter_map(|f| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(f.data.unwrap_or_default())
                .ok()?;
            Some((f.name, String::from_utf8(bytes).ok()?))
        })
        .collect()
}

/// The names of the CustomResourceDefinitions in a YAML stream (a chart's
/// `crds/` file).
pub fn crd_names(text: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        metadata: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default)]
        name: Option<String>,
    }
    split_documents(text)
        .into_iter()
        .filter_map(|doc| serde_norway::from_str::<Option<Head>>(doc).ok().flatten())
        .filter(|h| h.kind.as_deref() == Some("CustomResourceDefinition"))
        .filter_map(|h| h.metadata.and_then(|m| m.name))
        .collect()
}

/// Adds the kinds of the documents of `text` (see [`kinds_used`]).
fn kinds_in(text: &str, out: &mut std::collections::BTreeSet<GroupKind>) {
    #[derive(Deserialize)]
    struct TypeMeta {
        #[serde(default, rename = "apiVersion")]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    }
    #[derive(Deserialize)]
    struct Crd {
        spec: CrdSpec,
    }
    #[derive(Deserialize)]
    struct CrdSpec {
        group: String,
        names: CrdNames,
    }
    #[derive(Deserialize)]
    struct CrdNames {
        kind: String,
    }
    for doc in split_documents(text) {
        // Helm renders top-level keys at column 0: read them directly, and
        // parse the document as YAML only when that finds nothing.
        let mut api_version = None;
        let mut kind = None;
        for line in doc.lines() {
            if let Some(v) = line.strip_prefix("apiVersion:") {
                api_version = Some(unquote(v));
            } else if let Some(v) = line.strip_prefix("kind:") {
                kind = Some(unquote(v));
            }
        }
        if (api_version.is_none() || kind.is_none())
            && let Ok(Some(tm)) = serde_norway::from_str::<Option<TypeMeta>>(doc)
        {
            api_version = api_version.or(tm.api_version);
            kind = kind.or(tm.kind);
        }
        if let (Some(av), Some(kind)) = (api_version, kind) {
            let group = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            if kind == "CustomResourceDefinition"
                && let Some(defined) = crd_kind(doc, |doc| {
                    serde_norway::from_str::<Crd>(doc)
                        .ok()
                        .map(|crd| GroupKind::new(crd.spec.group, crd.spec.names.kind))
                })
            {
                out.insert(defined);
            }
            out.insert(GroupKind::new(group, kind));
        }
    }
}

/// The kind a CRD document defines, by `parse`, remembered by the
/// document's SHA-256: a chart's CRDs (often hundreds of KiB of YAML) are the
/// same in every revision and every release of that chart, and parsing them
/// again for each record was most of a save's first pass.
fn crd_kind(doc: &str, parse: impl FnOnce(&str) -> Option<GroupKind>) -> Option<GroupKind> {
    use sha2::Digest as _;
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex, MutexGuard};
    /// Distinct CRDs remembered; the memory is forgotten when full.
    const REMEMBERED: usize = 1024;
    static DEFINED: LazyLock<Mutex<HashMap<[u8; 32], Option<GroupKind>>>> =
        LazyLock::new(Mutex::default);
    // A cache of pure results: a panic elsewhere cannot leave it wrong.
    let defined = || -> MutexGuard<'_, _> { DEFINED.lock().unwrap_or_else(|p| p.into_inner()) };
    let key: [u8; 32] = sha2::Sha256::digest(doc.as_bytes()).into();
    if let Some(known) = defined().get(&key).cloned() {
        return known;
    }
    let kind = parse(doc);
    let mut d = defined();
    if d.len() >= REMEMBERED {
        d.clear();
    }
    d.insert(key, kind.clone());
    kind
}

#[cfg(test)]
mod kinds_tests {
    #[test]
    fn finds_kinds_in_manifest_and_hooks() {
        let rec = serde_json::json!({
            "manifest": "---\n# Source: x\napiVersion: v1\nkind: ConfigMap\n---\napiVersion: example.com/v1\nkind: Widget\nspec: {}\n---\n# empty\n",
            "hooks": [{"manifest": "apiVersion: batch/v1\nkind: Job\n"}],
            "chart": {"files": [{"name": "crds/g.yaml", "data": "YXBpVmVyc2lvbjogYXBpZXh0ZW5zaW9ucy5rOHMuaW8vdjEKa2luZDogQ3VzdG9tUmVzb3VyY2VEZWZpbml0aW9uCm1ldGFkYXRhOgogIG5hbWU6IGdzLmV4YW1wbGUuY29tCnNwZWM6CiAgZ3JvdXA6IGV4YW1wbGUuY29tCiAgbmFtZXM6CiAgICBraW5kOiBHYWRnZXQK"}]}
        });
        let kinds = super::kinds_used(rec.to_string().as_bytes());
        let v: Vec<(String, String)> = kinds.into_iter().map(|g| (g.group, g.kind)).collect();
        assert_eq!(
            v,
            [
                ("".to_owned(), "ConfigMap".to_owned()),
                (
                    "apiextensions.k8s.io".to_owned(),
                    "CustomResourceDefinition".to_owned()
                ),
                ("batch".to_owned(), "Job".to_owned()),
                ("example.com".to_owned(), "Gadget".to_owned()),
                ("example.com".to_owned(), "Widget".to_owned())
            ]
        );
        let files = super::chart_crd_files(rec.to_string().as_bytes());
        assert_eq!(files.len(), 1);
        assert_eq!(super::crd_names(&files[0].1), ["gs.example.com"]);
    }

    /// A CRD's kind is remembered by its text: the same text again gives
    /// the same kind without parsing, a changed text is parsed again, and a
    /// text that defines nothing is remembered as defining nothing.
    #[test]
    fn crd_kinds_are_remembered_by_their_text() {
        let crd = |group: &str| {
            format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: {group}\n  names:\n    kind: Remembered\n"
            )
        };
        let record = |text: &str| serde_json::json!({ "manifest": text }).to_string();
        let kinds = |text: &str| -> Vec<String> {
            super::kinds_used(record(text).as_bytes())
                .into_iter()
                .map(|g| g.to_string())
                .collect()
        };
        let first = kinds(&crd("one.remembered.test"));
        assert!(
            first.iter().any(|k| k.contains("one.remembered.test")),
            "{first:?}"
        );
        assert_eq!(kinds(&crd("one.remembered.test")), first);
        let parsed = std::cell::Cell::new(0);
        let again = super::crd_kind(&crd("one.remembered.test"), |_| {
            parsed.set(parsed.get() + 1);
            None
        });
        assert_eq!(parsed.get(), 0, "the same text is not parsed again");
        assert_eq!(
            again.map(|g| g.to_string()),
            Some(
                first
                    .iter()
                    .find(|k| k.contains("Remembered"))
                    .unwrap()
                    .clone()
            )
        );
        let second = kinds(&crd("two.remembered.test"));
        assert!(
            second.iter().any(|k| k.contains("two.remembered.test")),
            "{second:?}"
        );
        assert!(!second.iter().any(|k| k.contains("one.remembered.test")));
        let broken = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: [remembered-broken]\n";
        assert_eq!(super::crd_kind(broken, |_| None), None);
        assert_eq!(
            super::crd_kind(broken, |_| unreachable!("remembered")),
            None
        );
    }
}

/// Checks that a record's own name, namespace and revision are those of its
/// index row. Without this, a snapshot could list a release under one name
/// while its record installs another (or overwrites another's history).
pub fn check_record(kind: SourceKind, row: &IndexRow, data: &[u8]) -> Result<(), SnapshotError> {
    let bad = |reason: String| SnapshotError::BadRecord {
        path: row.path.escape_debug().to_string(),
        reason,
    };
    let (namespace, name, revision) = match kind {
        SourceKind::Tiller => {
            let release = crate::tiller::record::decode(data).map_err(|e| bad(e.to_string()))?;
            let s = crate::tiller::record::summary(&release).map_err(|e| bad(e.to_string()))?;
            (s.namespace, s.name, s.revision)
        }
        SourceKind::Helm3 | SourceKind::Helm4 => {
            let s = Summary::from_helm_json(data).map_err(|e| bad(e.to_string()))?;
            (s.namespace, s.name, s.revision)
        }
    };
    let differs = |what: &'static str, own: String, listed: String| SnapshotError::RecordMismatch {
        path: row.path.escape_debug().to_string(),
        what,
        own: own.escape_debug().to_string(),
        listed: listed.escape_debug().to_string(),
    };
    if namespace != row.namespace {
        return Err(differs("namespace", namespace, row.namespace.clone()));
    }
    if name != row.name {
        return Err(differs("name", name, row.name.clone()));
    }
    if revision != row.revision {
        return Err(differs(
            "revision",
            revision.to_string(),
            row.revision.to_string(),
        ));
    }
    Ok(())
}

/// [`crate::snapshot::read_snapshot`], with every release record checked
/// against its index row ([`check_record`]) before `on_entry` sees it.
pub fn read_checked<R, F>(
    input: R,
    limits: &crate::snapshot::Limits,
    mut on_entry: F,
) -> Result<crate::snapshot::Index, SnapshotError>
where
    R: std::io::Read,
    F: FnMut(
        &crate::snapshot::Index,
        crate::snapshot::Entry<'_>,
        Zeroizing<Vec<u8>>,
    ) -> Result<(), SnapshotError>,
{
    crate::snapshot::read_snapshot(input, limits, |index, entry, data| {
        if let crate::snapshot::Entry::Release(row) = &entry {
            check_record(index.source.kind, row, &data)?;
        }
        on_entry(index, entry, data)
    })
}
