//! The snapshot index: the first entry of every snapshot, describing what follows.
//!
//! The index is JSON. Known fields are typed; unknown fields (from a newer
//! helm-bulk that still writes format version 1) are kept in `extra` maps so a
//! snapshot can be read and re-written without losing them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::SnapshotError;

/// The value of the index's `format` field.
pub const FORMAT_NAME: &str = "helm-bulk-snapshot";
/// The snapshot format version this build writes by default.
pub const FORMAT_VERSION: u32 = FORMAT_V2;
/// Format version 1: every record whole.
pub const FORMAT_V1: u32 = 1;
/// Format version 2: large repeating values of Helm 3/4 records stored once, as blobs.
pub const FORMAT_V2: u32 = 2;
/// The path of the index inside the tar archive.
pub const INDEX_PATH: &str = "index.json";

/// Where the records of a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Helm 3 release storage (Secrets or ConfigMaps, `helm.sh/release.v1`).
    Helm3,
    /// Helm 4 release storage (same record format as Helm 3).
    Helm4,
    /// Helm 2's Tiller (records are `hapi.release.Release` protobuf bytes).
    Tiller,
}

impl SourceKind {
    /// The file extension of one record of this kind inside the archive.
    pub fn record_extension(self) -> &'static str {
        match self {
            SourceKind::Helm3 | SourceKind::Helm4 => "json",
            SourceKind::Tiller => "pb",
        }
    }

    /// A human name for `show`.
    pub fn describe(self) -> &'static str {
        match self {
            SourceKind::Helm3 => "Helm 3",
            SourceKind::Helm4 => "Helm 4",
            SourceKind::Tiller => "Helm 2 (Tiller)",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::Helm3 => "helm3",
            SourceKind::Helm4 => "helm4",
            SourceKind::Tiller => "tiller",
        })
    }
}

/// The source of a snapshot: which Helm generation and storage driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// helm3, helm4 or tiller.
    pub kind: SourceKind,
    /// The storage driver the records were read from (`secret`, `configmap`, `tiller`, …).
    pub driver: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The cluster a snapshot was taken from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// The API server URL.
    pub server: String,
    /// The kubeconfig context name (empty when not known, e.g. in-cluster).
    pub context: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One release revision stored in the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexRow {
    /// The release's namespace.
    pub namespace: String,
    /// The release name.
    pub name: String,
    /// The revision number (Helm's `version`).
    pub revision: u32,
    /// Helm's status of this revision (deployed, superseded, failed, …).
    pub status: String,
    /// The chart name.
    pub chart: String,
    /// The chart version.
    pub chart_version: String,
    /// The chart's appVersion (may be empty).
    #[serde(default)]
    pub app_version: String,
    /// When this revision was last deployed (RFC 3339), if the record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// The path of the record inside the archive.
    pub path: String,
    /// The record's size in bytes.
    pub size: u64,
    /// The record's SHA-256, lowercase hex.
    pub sha256: String,
    /// Labels the release carried (`helm install --labels`). Helm keeps them on
    /// its storage object, not in the record, so the index holds them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Format 2: the blobs (SHA-256, hex, sorted) whose last use is this
    /// record; a reader drops them once it has rebuilt it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs_last_used: Vec<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IndexRow {
    /// `namespace/name`, the key used by include/exclude patterns and `order`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The sort key of rows, and so the order of archive entries:
    /// `<namespace>/<name>.v<revision>` compared as bytes. This is the order in
    /// which Kubernetes lists Helm's storage objects (etcd keys
    /// `…/<namespace>/sh.helm.release.v1.<name>.v<revision>`), so a snapshot
    /// streams straight from a paginated list without reordering.
    pub fn sort_key(&self) -> String {
        storage_order(&self.namespace, &self.name, self.revision)
    }
}

/// A CustomResourceDefinition stored in the snapshot: one of an API group a
/// saved release uses (often shipped in a subchart's `crds/`, which Helm
/// keeps in neither the record nor the manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexCrd {
    /// The CRD's name (`<plural>.<group>`).
    pub name: String,
    /// The API group.
    pub group: String,
    /// The kind it defines.
    pub kind: String,
    /// The path of its JSON inside the archive: `crds/<name>.json`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Why save took it: `kind Widget used by ns/release` or `API group g
    /// used by ns/release`. Empty in snapshots of older versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of the archive after the index, as the index describes it.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A release revision record.
    Release(&'a IndexRow),
    /// A CustomResourceDefinition.
    Crd(&'a IndexCrd),
}

impl Entry<'_> {
    /// Its archive path.
    pub fn path(&self) -> &str {
        match self {
            Entry::Release(r) => &r.path,
            Entry::Crd(c) => &c.path,
        }
    }

    /// Its size.
    pub fn size(&self) -> u64 {
        match self {
            Entry::Release(r) => r.size,
            Entry::Crd(c) => c.size,
        }
    }

    /// Format 2: the blobs whose last use is this entry.
    pub fn blobs_last_used(&self) -> &[String] {
        match self {
            Entry::Release(r) => &r.blobs_last_used,
            Entry::Crd(_) => &[],
        }
    }

    /// Its SHA-256.
    pub fn sha256(&self) -> &str {
        match self {
            Entry::Release(r) => &r.sha256,
            Entry::Crd(c) => &c.sha256,
        }
    }
}

/// The snapshot index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version, [`FORMAT_VERSION`] for snapshots this build writes.
    pub format_version: u32,
    /// The helm-bulk version that wrote the snapshot.
    pub tool_version: String,
    /// Creation time, RFC 3339 in UTC.
    pub created_at: String,
    /// Where the records came from.
    pub source: Source,
    /// Which cluster they came from.
    pub cluster: Cluster,
    /// One row per release revision, in archive order.
    pub releases: Vec<IndexRow>,
    /// CustomResourceDefinitions used by the releases, sorted by name; stored after the releases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crds: Vec<IndexCrd>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The archive order of a release revision; see [`IndexRow::sort_key`].
pub fn storage_order(namespace: &str, name: &str, revision: u32) -> String {
    format!("{namespace}/{name}.v{revision}")
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Checks that one path component is safe and unambiguous inside the archive.
fn check_component(what: &str, s: &str) -> Result<(), SnapshotError> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidName {
            what: what.to_owned(),
            value: s.escape_debug().to_string(),
        })
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The archive path of a CRD: `crds/<name>.json`.
pub fn crd_path(name: &str) -> Result<String, SnapshotError> {
    check_component("CRD name", name)?;
    Ok(format!("crds/{name}.json"))
}

/// The archive path of one record: `releases/<namespace>/<name>/<revision>.<ext>`.
pub fn record_path(
    kind: SourceKind,
    namespace: &str,
    name: &str,
    revision: u32,
) -> Result<String, SnapshotError> {
    check_component("namespace", namespace)?;
    check_component("release name", name)?;
    Ok(format!(
        "releases/{namespace}/{name}/{revision}.{}",
        kind.record_extension()
    ))
}

impl Index {
    /// A new, empty index stamped with this build's version and the given time.
    pub fn new(created_at: String, source: Source, cluster: Cluster) -> Self {
        Index {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at,
            source,
            cluster,
            releases: Vec::new(),
            crds: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Every entry after the index, in archive order: releases, then CRDs.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.releases
            .iter()
            .map(Entry::Release)
            .chain(self.crds.iter().map(Entry::Crd))
    }

    /// Sorts rows into archive order.
    pub fn sort(&mut self) {
        self.releases.sort_by_cached_key(IndexRow::sort_key);
    }

    /// Checks the invariants both the writer and the reader rely on: the format,
    /// safe and unique paths that match their rows, sorted rows, well-formed hashes.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        if self.format != FORMAT_NAME {
            return Err(SnapshotError::NotASnapshot(format!(
                "the index names format `{}`",
                self.format.escape_debug()
            )));
        }
        if self.format_version != FORMAT_V1 && self.format_version != FORMAT_V2 {
            return Err(SnapshotError::UnsupportedVersion(self.format_version));
        }
        let mut previous: Option<&IndexRow> = None;
        for row in &self.releases {
            let expected = record_path(self.source.kind, &row.namespace, &row.name, row.revision)?;
            if row.path != expected {
                return Err(SnapshotError::BadIndex(format!(
                    "row {}/{} revision {} has path `{}`, expected `{expected}`",
                    row.namespace,
                    row.name,
                    row.revision,
                    row.path.escape_debug()
                )));
            }
            if !is_sha256(&row.sha256) {
                return Err(SnapshotError::BadIndex(format!(
                    "row `{}` has a malformed sha256",
                    row.path
                )));
            }
            if !row.blobs_last_used.is_empty()
                && (self.format_version != FORMAT_V2
                    || self.source.kind == SourceKind::Tiller
                    || !row.blobs_last_used.iter().all(|d| is_sha256(d))
                    || !row.blobs_last_used.is_sorted_by(|a, b| a < b))
            {
                return Err(SnapshotError::BadIndex(format!(
                    "row `{}` has a blobsLastUsed that is not sorted, unique SHA-256 digests of a format 2 snapshot of Helm 3/4 records",
                    row.path
                )));
            }
            if let Some(prev) = previous
                && prev.sort_key() >= row.sort_key()
            {
                return Err(SnapshotError::BadIndex(format!(
                    "rows are not sorted or not unique at `{}`",
                    row.path
                )));
            }
            previous = Some(row);
        }
        let mut previous: Option<&str> = None;
        for crd in &self.crds {
            check_component("CRD name", &crd.name)?;
            if crd.path != crd_path(&crd.name)? {
                return Err(SnapshotError::BadIndex(format!(
                    "CRD {} has path `{}`",
                    crd.name,
                    crd.path.escape_debug()
                )));
            }
            if !is_sha256(&crd.sha256) {
                return Err(SnapshotError::BadIndex(format!(
                    "CRD `{}` has a malformed sha256",
                    crd.name
                )));
            }
            if previous.is_some_and(|p| p >= crd.name.as_str()) {
                return Err(SnapshotError::BadIndex(format!(
                    "CRDs are not sorted or not unique at `{}`",
                    crd.name
                )));
            }
            previous = Some(&crd.name);
        }
        Ok(())
    }
}
