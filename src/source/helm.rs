//! Helm 3 and Helm 4 release storage read through the Kubernetes API.
//!
//! Helm keeps one object per release revision, named
//! `sh.helm.release.v1.<name>.v<revision>` and labelled `owner=helm`, in the
//! release's namespace: a Secret of type `helm.sh/release.v1` (the default
//! driver) or a ConfigMap. Its `release` key holds base64 of gzip of the
//! release JSON.
//!
//! Reading is two passes over one consistent list: the first (paginated)
//! builds the index and notes the list's resourceVersion; the second lists
//! again at exactly that resourceVersion and streams the records. Both see the
//! same data, so the index matches even if releases change meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams};
use zeroize::Zeroizing;

use super::list::{Lister, RawObject};
use super::{RecordSender, SourceError};
use crate::release::{
    GroupKind, Installed, ReleaseId, ReleaseKey, ReleaseRecord, RevisionId, RevisionKey, Summary,
};
use crate::select::Selection;
use crate::snapshot::{IndexRow, SourceKind};

/// The type of Helm's release Secrets.
const RELEASE_TYPE: &str = "helm.sh/release.v1";

/// The largest decoded record accepted (the snapshot reader's limit).
const MAX_RECORD: u64 = 64 << 20;

pub use super::Driver;

/// Which records to save.
#[derive(Debug, Clone)]
pub struct SaveFilter {
    /// Include/exclude patterns.
    pub selection: Selection,
    /// Keep the latest revision and at most this many older ones (`None`: all).
    /// The last deployed revision is always kept, since it is what load restores.
    pub history: Option<u32>,
    /// Keep only releases whose latest revision has one of these statuses
    /// (empty: all).
    pub statuses: Vec<String>,
}

/// The release's own labels: all but those Helm's storage drivers set
/// themselves ([`crate::release::storage::SYSTEM_LABELS`]).
fn release_labels(mut l: BTreeMap<String, String>) -> BTreeMap<String, String> {
    l.retain(|k, _| !crate::release::storage::SYSTEM_LABELS.contains(&k.as_str()));
    l
}

/// The result of the first pass.
pub struct Plan {
    /// Index rows in archive order.
    pub rows: Vec<IndexRow>,
    /// The resourceVersion the list was read at.
    pub resource_version: String,
    /// Objects that could not be decoded: `namespace/object: reason`.
    pub problems: Vec<String>,
    /// The group and kind of every object in the kept records' manifests and
    /// hooks, and of every custom kind their CRDs define, each with the first
    /// release that uses it.
    pub kinds: BTreeMap<GroupKind, ReleaseKey>,
    /// The storage objects (`namespace/name`, see [`object_id`]) that hold
    /// the kept records, when the source knows them: the second pass then
    /// decodes only these. `None`: it decodes every object it lists.
    pub objects: Option<HashSet<String>>,
}

/// How [`Plan::objects`] names a storage object.
pub fn object_id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The kinds of the kept rows, each with the first release that uses it.
pub fn kinds_by_release(
    rows: &[IndexRow],
    mut kinds_of: HashMap<RevisionKey, BTreeSet<GroupKind>>,
) -> BTreeMap<GroupKind, ReleaseKey> {
    let mut kinds = BTreeMap::new();
    for r in rows {
        if let Some(k) = kinds_of.remove(r.revision_id()) {
            for gk in k {
                kinds.entry(gk).or_insert_with(|| r.release_key());
            }
        }
    }
    kinds
}

/// Reads Helm 3/4 release storage.
pub struct HelmSource {
    client: kube::Client,
    driver: Driver,
    namespace: Option<String>,
    page_size: u32,
    kind: SourceKind,
    /// Format 2: mark each row's `blobsLastUsed` in the first pass.
    blob_lifetimes: bool,
}

/// Why a storage object holds no release record helm-bulk can read.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    /// The object has no `release` key.
    #[error("it has no `release` key")]
    NoPayload,
    /// The payload is not base64.
    #[error("payload is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// The payload says gzip but does not decompress.
    #[error("payload is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// The payload decompresses to more than [`MAX_RECORD`] bytes.
    #[error("record is over {MAX_RECORD} bytes decoded")]
    TooLarge,
    /// A Helm 3/4 record that is not Helm's JSON.
    #[error(transparent)]
    Helm(#[from] crate::release::ReleaseError),
    /// A Helm 2 record that does not decode.
    #[error(transparent)]
    Helm2(#[from] crate::tiller::record::RecordError),
}

/// Decodes Helm's payload: base64, then gzip when the magic bytes say so
/// (as Helm's decodeRelease does), bounded to [`MAX_RECORD`].
pub fn decode_payload(payload: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoredError> {
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(StoredError::Base64)?,
    );
    if !raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Ok(raw);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(raw.len() * 4));
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(MAX_RECORD + 1)
        .read_to_end(&mut out)
        .map_err(StoredError::Gzip)?;
    if out.len() as u64 > MAX_RECORD {
        return Err(StoredError::TooLarge);
    }
    Ok(out)
}

impl super::Source for HelmSource {
    async fn plan(&self, filter: &SaveFilter) -> Result<Plan, SourceError> {
        HelmSource::plan(self, filter).await
    }

    async fn fetch(&self, plan: &Plan, tx: &RecordSender) -> Result<(), SourceError> {
        HelmSource::fetch(self, plan, tx).await
    }

    fn driver_name(&self) -> &'static str {
        self.driver.name()
    }
}

impl HelmSource {
    /// The storage driver it reads.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// A source over `namespace` (all namespaces when `None`).
    pub fn new(
        client: kube::Client,
        driver: Driver,
        namespace: Option<String>,
        kind: SourceKind,
        page_size: u32,
    ) -> HelmSource {
        HelmSource {
            client,
            driver,
            namespace,
            page_size: page_size.max(1),
            kind,
            blob_lifetimes: false,
        }
    }

    /// For a format 2 snapshot: the first pass also notes which blobs each
    /// record uses, and marks on each row the blobs it is the last to use
    /// (`blobsLastUsed`), so readers hold blobs only as long as needed.
    pub fn with_blob_lifetimes(mut self, on: bool) -> HelmSource {
        self.blob_lifetimes = on;
        self
    }

    fn lister(&self, at: Option<&str>) -> Lister {
        Lister::new(
            self.driver.what(),
            self.client.clone(),
            self.driver,
            self.namespace.clone(),
            "owner=helm",
            self.page_size,
            at,
        )
        .secret_type(RELEASE_TYPE)
    }

    fn decode(&self, s: &RawObject) -> Result<ReleaseRecord, StoredError> {
        decode_object(s)
    }

    /// First pass: the index rows of everything `filter` selects.
    ///
    /// Decoding and examining the records (base64, gzip, JSON, the kinds in
    /// the manifests, format 2's blobs) is most of a save's work, so each
    /// page is examined on up to [`first_pass_threads`] threads while the
    /// next page is listed; the results are merged in list order, so the
    /// plan does not depend on which thread finished first.
    pub async fn plan(&self, filter: &SaveFilter) -> Result<Plan, SourceError> {
        let mut rows: Vec<IndexRow> = Vec::new();
        let mut problems = Vec::new();
        let mut kinds_of: HashMap<RevisionKey, BTreeSet<GroupKind>> = HashMap::new();
        let mut objects: HashMap<RevisionKey, String> = HashMap::new();
        let mut lifetimes = self
            .blob_lifetimes
            .then(crate::snapshot::v2::Lifetimes::default);
        let examine = Arc::new(Examine {
            kind: self.kind,
            selection: filter.selection.clone(),
            blobs: lifetimes.as_ref().map(|l| l.finder()),
        });
        let threads = first_pass_threads();
        let mut lister = self.lister(None);
        let mut pending: Option<tokio::task::JoinHandle<Vec<Result<Examined, SourceError>>>> = None;
        loop {
            let page = lister.next_page().await;
            if let Some(task) = pending.take() {
                let examined = match task.await {
                    Ok(e) => e,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => return Err(SourceError::Cancelled(e)),
                };
                for e in examined {
                    match e? {
                        Examined::Kept(k) => {
                            let key = k.row.revision_key();
                            kinds_of.insert(key.clone(), k.kinds);
                            if let Some(l) = &mut lifetimes {
                                l.add_blobs(k.row.sort_key(), k.blobs);
                            }
                            objects.insert(key, k.object);
                            rows.push(k.row);
                        }
                        Examined::NotSelected => {}
                        Examined::Problem(p) => problems.push(p),
                    }
                }
            }
            let Some(items) = page? else { break };
            let examine = Arc::clone(&examine);
            pending = Some(tokio::task::spawn_blocking(move || {
                super::map_parallel(items, threads, |s| examine.object(s))
            }));
        }
        let rv = lister.resource_version().to_owned();
        let mut rows = apply_filter(rows, filter);
        if let Some(l) = lifetimes {
            l.assign(&mut rows);
        }
        let kinds = kinds_by_release(&rows, kinds_of);
        let objects = rows
            .iter()
            .filter_map(|r| objects.remove(r.revision_id()))
            .collect();
        Ok(Plan {
            rows,
            resource_version: rv,
            problems,
            kinds,
            objects: Some(objects),
        })
    }

    /// Second pass: sends the planned records in archive order. The receiver
    /// is the snapshot writer's thread; if it hangs up (a write failed),
    /// fetching stops.
    pub async fn fetch(&self, plan: &Plan, tx: &RecordSender) -> Result<(), SourceError> {
        let lister = self.lister(Some(&plan.resource_version));
        send_in_index_order(lister, plan, tx, |s| self.decode(s).ok()).await
    }
}

/// Threads that examine the records of one page in a save's first pass:
/// the machine's cores, at most 4 (each holds one decoded record).
fn first_pass_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Decodes a storage object's record.
fn decode_object(s: &RawObject) -> Result<ReleaseRecord, StoredError> {
    let payload = s.payload.as_deref().ok_or(StoredError::NoPayload)?;
    let data = decode_payload(payload)?;
    let summary = Summary::from_helm_json(&data)?;
    Ok(ReleaseRecord { summary, data })
}

/// What the first pass needs to examine one storage object, shared by its
/// threads.
struct Examine {
    kind: SourceKind,
    selection: Selection,
    /// Format 2: finds the blobs each record uses.
    blobs: Option<Arc<crate::snapshot::v2::BlobFinder>>,
}

/// What the first pass learned from one storage object.
enum Examined {
    /// A selected record.
    Kept(Box<Kept>),
    /// A record the include/exclude patterns leave out.
    NotSelected,
    /// An object that holds no readable record: `namespace/object: reason`.
    Problem(String),
}

/// A selected record, reduced to what the plan keeps of it.
struct Kept {
    row: IndexRow,
    /// [`object_id`] of the storage object.
    object: String,
    kinds: BTreeSet<GroupKind>,
    /// Format 2: the blobs it uses (empty otherwise).
    blobs: Vec<[u8; 32]>,
}

impl Examine {
    fn object(&self, s: RawObject) -> Result<Examined, SourceError> {
        let r = match decode_object(&s) {
            Ok(r) => r,
            Err(why) => {
                return Ok(Examined::Problem(format!(
                    "{}/{}: {why}",
                    s.namespace, s.name
                )));
            }
        };
        let sm = &r.summary;
        if !self.selection.matches(&sm.namespace, &sm.name) {
            return Ok(Examined::NotSelected);
        }
        let mut row = r.index_row(self.kind)?;
        row.labels = release_labels(s.labels);
        Ok(Examined::Kept(Box::new(Kept {
            row,
            object: object_id(&s.namespace, &s.name),
            kinds: crate::release::kinds_used(&r.data),
            blobs: self
                .blobs
                .as_ref()
                .map(|f| f.blobs(&r.data))
                .unwrap_or_default(),
        })))
    }
}

/// The second pass of a storage source: lists again (with `lister`, pinned
/// to the plan's resourceVersion), decodes each object with `decode` (`None`:
/// not a record to save) and sends the planned records in index order, each
/// as soon as its turn comes. Objects that arrive before their turn wait in
/// memory (Helm's storage lists in archive order, so none do; Tiller's does
/// not). A planned record that is gone fails with [`SourceError::Vanished`].
pub(crate) async fn send_in_index_order<F>(
    mut lister: Lister,
    plan: &Plan,
    tx: &RecordSender,
    decode: F,
) -> Result<(), SourceError>
where
    F: Fn(&RawObject) -> Option<ReleaseRecord>,
{
    let wanted: HashMap<RevisionKey, usize> = plan
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.revision_key(), i))
        .collect();
    let mut early: BTreeMap<usize, Zeroizing<Vec<u8>>> = BTreeMap::new();
    let mut next = 0usize;
    while let Some(items) = lister.next_page().await? {
        for s in items {
            if let Some(objects) = &plan.objects
                && !objects.contains(&object_id(&s.namespace, &s.name))
            {
                continue;
            }
            let Some(r) = decode(&s) else { continue };
            drop(s);
            if let Some(&pos) = wanted.get(r.summary.revision_id()) {
                early.insert(pos, r.data);
            }
            while let Some(data) = early.remove(&next) {
                tx.send(next, data).await?;
                next += 1;
            }
        }
    }
    if next < plan.rows.len() {
        return Err(SourceError::Vanished(plan.rows[next].path.clone()));
    }
    Ok(())
}

/// Applies `--status` and `--history` per release, and sorts into archive order.
pub fn apply_filter(rows: Vec<IndexRow>, filter: &SaveFilter) -> Vec<IndexRow> {
    let mut by_release: BTreeMap<ReleaseKey, Vec<IndexRow>> = BTreeMap::new();
    for r in rows {
        by_release.entry(r.release_key()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (_, mut revs) in by_release {
        revs.sort_by_key(|r| std::cmp::Reverse(r.revision));
        let latest_status = revs[0].status.as_str();
        if !filter.statuses.is_empty() && !filter.statuses.iter().any(|s| s == latest_status) {
            continue;
        }
        // Load restores the current revision: keep it, whatever --history says.
        let statuses: Vec<(u32, &str)> = revs
            .iter()
            .map(|r| (r.revision, r.status.as_str()))
            .collect();
        let current = crate::release::current_revision(&statuses).map(|c| c.revision);
        for (i, r) in revs.into_iter().enumerate() {
            let within = filter.history.is_none_or(|h| i <= h as usize);
            if within || Some(r.revision) == current {
                out.push(r);
            }
        }
    }
    out.sort_by_cached_key(IndexRow::sort_key);
    out
}

/// The releases the cluster has now, by `(namespace, name)`: the newest
/// revision of every release whose newest revision is not `uninstalled`.
/// Reads object metadata (Helm's `name`, `version` and `status` labels);
/// the record itself only of a newest revision that is not `deployed`, to
/// see whether helm-bulk installed it (its chart is a frozen chart).
pub async fn installed_releases(
    client: &kube::Client,
    driver: Driver,
    namespace: Option<&str>,
) -> Result<HashMap<ReleaseKey, Installed>, SourceError> {
    let revisions = stored_revisions(client, driver, namespace).await?;
    let latest = crate::release::newest_by(&revisions, |r| &r.release, |r| r.revision);
    let mut out = HashMap::new();
    for (key, newest) in latest {
        if newest.status == "uninstalled" {
            continue;
        }
        let frozen = newest.status != "deployed"
            && stored_payload(client, driver, &key.namespace, &newest.object)
                .await?
                .and_then(|p| decode_payload(&Zeroizing::new(p)).ok())
                .is_some_and(|data| {
                    crate::release::has_chart_annotation(
                        &data,
                        crate::restore::frozen::FROZEN_ANNOTATION,
                    )
                });
        out.insert(
            key.clone(),
            Installed {
                revision: newest.revision,
                status: newest.status.clone(),
                frozen,
            },
        );
    }
    Ok(out)
}

/// One stored revision, as its storage object's labels give it.
struct StoredRevision {
    release: ReleaseKey,
    revision: u32,
    status: String,
    /// The storage object's name.
    object: String,
}

/// Every stored revision, from the metadata of Helm's storage objects
/// (listed 500 at a time); objects without Helm's `name` label are left out.
async fn stored_revisions(
    client: &kube::Client,
    driver: Driver,
    namespace: Option<&str>,
) -> Result<Vec<StoredRevision>, SourceError> {
    async fn page<K: super::list::Namespaced>(
        client: &kube::Client,
        namespace: Option<&str>,
        lp: &ListParams,
    ) -> Result<(Vec<kube::core::ObjectMeta>, Option<String>), kube::Error>
    where
        K::DynamicType: Default,
    {
        let l = super::list::api_in::<K>(client, namespace)
            .list_metadata(lp)
            .await?;
        let items = l.items.into_iter().map(|m| m.metadata).collect();
        Ok((items, l.metadata.continue_))
    }
    let mut revisions = Vec::new();
    let base = ListParams::default().labels("owner=helm").limit(500);
    let mut lp = base.clone();
    loop {
        let listed = match driver {
            Driver::Secret => page::<Secret>(client, namespace, &lp).await,
            Driver::ConfigMap => page::<ConfigMap>(client, namespace, &lp).await,
        };
        let (items, token) = listed.map_err(|e| api_error(driver, e))?;
        for m in items {
            let labels = m.labels.unwrap_or_default();
            let (Some(name), Some(ns), Some(object)) = (labels.get("name"), m.namespace, m.name)
            else {
                continue;
            };
            revisions.push(StoredRevision {
                release: ReleaseKey::new(ns, name.clone()),
                revision: labels
                    .get("version")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                status: labels.get("status").cloned().unwrap_or_default(),
                object,
            });
        }
        match token.filter(|t| !t.is_empty()) {
            Some(t) => lp = base.clone().continue_token(&t),
            None => break,
        }
    }
    Ok(revisions)
}

/// The `release` key of one storage object (`None`: no such object or key).
async fn stored_payload(
    client: &kube::Client,
    driver: Driver,
    namespace: &str,
    object: &str,
) -> Result<Option<Vec<u8>>, SourceError> {
    let payload = match driver {
        Driver::Secret => Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(object)
            .await
            .map_err(|e| api_error(driver, e))?
            .and_then(|s| s.data?.remove("release"))
            .map(|b| b.0),
        Driver::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get_opt(object)
            .await
            .map_err(|e| api_error(driver, e))?
            .and_then(|c| c.data?.remove("release"))
            .map(String::into_bytes),
    };
    Ok(payload)
}

fn api_error(driver: Driver, e: kube::Error) -> SourceError {
    SourceError::Api {
        what: driver.what(),
        cause: crate::cluster::KubeFailure(e).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: &str, name: &str, rev: u32, status: &str) -> IndexRow {
        crate::testing::index_row(ns, name, rev, status)
    }

    #[test]
    fn history_keeps_latest_and_deployed() {
        let rows = vec![
            row("a", "x", 1, "superseded"),
            row("a", "x", 2, "deployed"),
            row("a", "x", 3, "failed"),
            row("a", "x", 4, "failed"),
        ];
        let f = SaveFilter {
            selection: Selection::all(),
            history: Some(0),
            statuses: vec![],
        };
        let kept: Vec<u32> = apply_filter(rows, &f).iter().map(|r| r.revision).collect();
        assert_eq!(kept, [2, 4]);
        // Saved between the two writes of an upgrade: the last good revision is kept.
        let rows = vec![
            row("a", "x", 1, "superseded"),
            row("a", "x", 2, "superseded"),
            row("a", "x", 3, "pending-upgrade"),
        ];
        let kept: Vec<u32> = apply_filter(rows, &f).iter().map(|r| r.revision).collect();
        assert_eq!(kept, [2, 3]);
    }

    #[test]
    fn status_filters_by_latest_revision() {
        let rows = vec![
            row("a", "x", 1, "deployed"),
            row("a", "y", 1, "deployed"),
            row("a", "y", 2, "failed"),
        ];
        let f = SaveFilter {
            selection: Selection::all(),
            history: None,
            statuses: vec!["deployed".into()],
        };
        let kept: Vec<String> = apply_filter(rows, &f)
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(kept, ["x"]);
    }

    #[test]
    fn decodes_helm_payloads() {
        use std::io::Write;
        let json = br#"{"name":"a"}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        assert_eq!(&decode_payload(b64.as_bytes()).unwrap()[..], json);
        let plain = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(&decode_payload(plain.as_bytes()).unwrap()[..], json);
        assert!(decode_payload(b"!!!").is_err());
    }
}
