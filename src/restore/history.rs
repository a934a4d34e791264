//! Restoring a release's history (Helm 3/4): after helm installed the
//! restored revision as a frozen chart (revision 1, helm always starts
//! there), the release's storage is rewritten so that it holds every saved
//! revision under its own number, each record exactly as saved.
//!
//! The order of the writes, per release, with `D` the restored (deployed)
//! revision and `F` = 1 the revision helm's install wrote:
//!
//! 1. `D` is written: created next to `F` (or, when `D` = 1, `F` is replaced
//!    by it in one update). Helm's `Deployed()` takes the newest deployed
//!    revision and `Last()` the newest revision, so both are `D` from here on.
//! 2. `F` is deleted (when `D` ≠ 1): the storage is one revision, `D`,
//!    `deployed`, as after a `--history-max` clean-up.
//! 3. The older revisions, newest first (`D-1`, `D-2`, …): the revisions
//!    stored are always one unbroken run ending at `D`.
//! 4. The newer ones (a failed upgrade after `D`), oldest first: the run
//!    grows at its top, so `Last()` is always a revision as saved and never
//!    `pending-*` (those are not restored).
//!
//! A rerun finds what is there and goes on: a revision identical to the
//! saved one is left alone, helm-bulk's own install (`F`: a frozen chart
//! with this load's description) is replaced or deleted as above, and any
//! other revision that differs is reported and left alone. A release whose
//! storage holds neither `D` as saved nor `F` was not installed by this
//! load: nothing is written to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use zeroize::{Zeroize as _, Zeroizing};

use crate::cluster::KubeFailure;
use crate::release::storage::{self, Write};
use crate::release::{ReleaseId, ReleaseKey, RevisionKey};
use crate::snapshot::{Index, IndexRow};
use crate::source::helm::{Driver, decode_payload};

/// Why the record of a revision could not be read (the caller's error).
pub type RecordCause = Box<dyn std::error::Error + Send + Sync>;

/// Why a release's history cannot be built from the snapshot or written to
/// its storage. The text of each holds its cause's.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The record of a revision could not be read.
    #[error("revision {revision}: {source}")]
    Record {
        /// The revision.
        revision: u32,
        /// Why.
        source: RecordCause,
    },
    /// The record of the restored revision is not JSON.
    #[error("revision {revision} is not a release record: {source}")]
    NotARecord {
        /// The revision.
        revision: u32,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A write planned a revision the history does not hold.
    #[error("revision {0} is not in the snapshot")]
    NotInSnapshot(u32),
    /// The release's storage could not be listed.
    #[error("{0}")]
    List(#[source] KubeFailure),
    /// A revision could not be written.
    #[error("cannot write revision {revision}: {source}")]
    Write {
        /// The revision.
        revision: u32,
        /// The API server's error.
        source: KubeFailure,
    },
    /// Helm's install record could not be deleted.
    #[error("cannot delete revision {revision} (helm's install record): {source}")]
    Delete {
        /// The revision.
        revision: u32,
        /// The API server's error.
        source: KubeFailure,
    },
    /// The history of one release (of several) failed.
    #[error("{release}: {source}")]
    Release {
        /// The release.
        release: ReleaseKey,
        /// Why.
        source: Box<HistoryError>,
    },
}

/// How much history load restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every saved revision (the default).
    All,
    /// The newest N saved revisions (and the restored one, always).
    Newest(u32),
    /// None: only the restored revision, as helm installs it (revision 1).
    None,
}

/// Statuses of revisions that are not restored: an operation in flight (a
/// `pending-*` newest revision makes helm refuse every upgrade and rollback)
/// and an uninstall.
fn restorable(status: &str) -> bool {
    !crate::release::is_pending(status) && status != "uninstalling" && status != "uninstalled"
}

/// The revisions of one release to restore, ascending, given its restored
/// revision `deployed` and the snapshot's rows of it. A revision left out is
/// returned with the reason.
pub fn select(deployed: u32, rows: &[&IndexRow], keep: Keep) -> (Vec<u32>, Vec<(u32, String)>) {
    let mut revs: Vec<&IndexRow> = rows.to_vec();
    revs.sort_by_key(|r| std::cmp::Reverse(r.revision));
    let mut kept = Vec::new();
    let mut left = Vec::new();
    let mut counted = 0u32;
    for r in revs {
        if r.revision == deployed {
            kept.push(r.revision);
            counted += 1;
            continue;
        }
        if keep == Keep::None {
            continue;
        }
        if !restorable(&r.status) {
            left.push((
                r.revision,
                format!("revision {} is {}; not restored", r.revision, r.status),
            ));
            continue;
        }
        if let Keep::Newest(n) = keep
            && counted >= n
        {
            continue;
        }
        counted += 1;
        kept.push(r.revision);
    }
    kept.sort_unstable();
    left.sort();
    (kept, left)
}

/// The record numbers to read from the snapshot for the history of each
/// release in `targets`.
pub fn records_needed(
    index: &Index,
    targets: &BTreeMap<ReleaseKey, u32>,
    keep: Keep,
) -> BTreeSet<RevisionKey> {
    let mut out = BTreeSet::new();
    for (key, rows) in rows_by_release(index) {
        let Some(&deployed) = targets.get(key.release_id()) else {
            continue;
        };
        for r in select(deployed, &rows, keep).0 {
            out.insert(key.revision(r));
        }
    }
    out
}

fn rows_by_release(index: &Index) -> BTreeMap<ReleaseKey, Vec<&IndexRow>> {
    let mut by: BTreeMap<ReleaseKey, Vec<&IndexRow>> = BTreeMap::new();
    for r in &index.releases {
        by.entry(r.release_key()).or_default().push(r);
    }
    by
}

/// One revision to write.
pub struct Revision {
    /// Its number.
    pub revision: u32,
    /// Its status (the `status` label).
    pub status: String,
    /// The release's own labels.
    pub labels: BTreeMap<String, String>,
    /// The record (JSON) to store.
    pub record: Zeroizing<Vec<u8>>,
}

/// The history of one release to restore.
pub struct Wanted {
    /// Namespace.
    pub namespace: String,
    /// Release name.
    pub name: String,
    /// The restored revision, installed by helm.
    pub deployed: u32,
    /// Every revision to store, ascending (the restored one included).
    pub revisions: Vec<Revision>,
    /// Saved revisions that are not restored, with the reason.
    pub left_out: Vec<(u32, String)>,
}

impl Wanted {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn get(&self, revision: u32) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.revision == revision)
    }
}

/// The history of the release `(namespace, name)` whose restored revision is
/// `deployed`, from the snapshot's rows and records. The restored revision
/// is stored `deployed` (helm installed it): a record saved with another
/// status (the last good revision of a save that caught an upgrade in flight,
/// or one restored with `--status`) gets that status, and only that change.
pub fn wanted<F>(
    index: &Index,
    namespace: &str,
    name: &str,
    deployed: u32,
    keep: Keep,
    record: F,
) -> Result<Wanted, HistoryError>
where
    F: Fn(u32) -> Result<Zeroizing<Vec<u8>>, RecordCause>,
{
    let by = rows_by_release(index);
    let rows = by
        .get((namespace, name).release_id())
        .cloned()
        .unwrap_or_default();
    let (kept, left_out) = select(deployed, &rows, keep);
    let mut revisions = Vec::new();
    for n in kept {
        let Some(row) = rows.iter().find(|r| r.revision == n) else {
            continue;
        };
        let data = record(n).map_err(|e| HistoryError::Record {
            revision: n,
            source: e,
        })?;
        let (status, data) = if n == deployed && row.status != "deployed" {
            (
                "deployed".to_owned(),
                with_status(&data, "deployed").map_err(|source| HistoryError::NotARecord {
                    revision: n,
                    source,
                })?,
            )
        } else {
            (row.status.clone(), data)
        };
        revisions.push(Revision {
            revision: n,
            status,
            labels: row.labels.clone(),
            record: data,
        });
    }
    Ok(Wanted {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        deployed,
        revisions,
        left_out,
    })
}

/// The record with `info.status` set to `status`, every other field as it
/// was (and in the same order).
fn with_status(data: &[u8], status: &str) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_slice(data)?;
    if let Some(info) = v.get_mut("info").and_then(|i| i.as_object_mut()) {
        info.insert("status".to_owned(), serde_json::Value::from(status));
    }
    let out = Zeroizing::new(serde_json::to_vec(&v)?);
    crate::release::wipe_json(&mut v);
    Ok(out)
}

/// What the cluster's storage holds of one revision, compared with what is
/// to be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// The record equals the one to restore under that number.
    pub identical: bool,
    /// It is the revision helm wrote when this load installed the release:
    /// a frozen chart with this load's description.
    pub ours: bool,
    /// Its status is `deployed`.
    pub deployed: bool,
}

/// One storage write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create the object of a revision.
    Create(u32),
    /// Replace helm-bulk's own install record, at that number, by the saved one.
    Replace(u32),
    /// Delete helm-bulk's own install record (its number is not the restored one).
    Delete(u32),
}

/// The writes for one release, in order, and what is left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writes {
    /// The writes.
    pub ops: Vec<Op>,
    /// Revisions already stored as saved.
    pub same: Vec<u32>,
    /// Revisions stored with another content (left alone).
    pub differ: Vec<u32>,
    /// Why nothing is written, when the release is not one this load installed.
    pub not_ours: Option<String>,
}

/// Plans the writes (see the module documentation for the order).
/// `revisions`: the numbers to restore, `deployed` among them; `cluster`:
/// what the storage holds now.
pub fn plan(deployed: u32, revisions: &[u32], cluster: &BTreeMap<u32, Seen>) -> Writes {
    let mut w = Writes::default();
    match cluster.get(&deployed) {
        Some(s) if s.identical => w.same.push(deployed),
        Some(s) if s.ours => w.ops.push(Op::Replace(deployed)),
        Some(_) => {
            w.differ.push(deployed);
            w.not_ours = Some(format!(
                "the cluster's revision {deployed} is not the one in the snapshot"
            ));
            return w;
        }
        None => {
            if !cluster.values().any(|s| s.ours && s.deployed) {
                let newest = cluster.keys().next_back();
                w.not_ours = Some(match newest {
                    Some(n) => format!(
                        "the cluster's release (revision {n}) is not one this load restored"
                    ),
                    None => "the cluster does not have the release".to_owned(),
                });
                return w;
            }
            w.ops.push(Op::Create(deployed));
        }
    }
    for (&n, s) in cluster {
        if s.ours && n != deployed {
            w.ops.push(Op::Delete(n));
        }
    }
    let older = revisions.iter().rev().filter(|&&n| n < deployed);
    let newer = revisions.iter().filter(|&&n| n > deployed);
    for &n in older.chain(newer) {
        match cluster.get(&n) {
            Some(s) if s.identical => w.same.push(n),
            Some(s) if s.ours => w.ops.push(Op::Create(n)),
            Some(_) => w.differ.push(n),
            None => w.ops.push(Op::Create(n)),
        }
    }
    w.same.sort_unstable();
    w.differ.sort_unstable();
    w
}

/// One stored revision read from the cluster.
struct Stored {
    object: String,
    resource_version: Option<String>,
    status: String,
    record: Option<Zeroizing<Vec<u8>>>,
}

/// The release storage of the cluster (the driver helm uses).
pub struct Storage {
    client: kube::Client,
    driver: Driver,
    /// The description helm-bulk gave the releases it installs in this load.
    description: String,
    /// A pause after each write (tests stop load between writes).
    pause: Duration,
}

/// What restoring one release's history did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `namespace/name`.
    pub key: String,
    /// The restored revision.
    pub deployed: u32,
    /// Revision numbers to restore.
    pub revisions: Vec<u32>,
    /// The writes done (or, in a dry run, to do).
    pub ops: Vec<Op>,
    /// Revisions already as saved.
    pub same: Vec<u32>,
    /// Revisions the cluster has with another content, left alone.
    pub differ: Vec<u32>,
    /// Saved revisions not restored, with the reason.
    pub left_out: Vec<(u32, String)>,
    /// Why nothing was written.
    pub not_ours: Option<String>,
    /// A write that failed.
    pub error: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether it failed (a write failed, or a revision differs).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether two records hold the same release (JSON equality: key order and
/// compression do not matter).
fn same_record(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (Ok(mut x), Ok(mut y)) = (
        serde_json::from_slice::<serde_json::Value>(a),
        serde_json::from_slice::<serde_json::Value>(b),
    ) else {
        return false;
    };
    let same = x == y;
    crate::release::wipe_json(&mut x);
    crate::release::wipe_json(&mut y);
    same
}

/// The description of a record (`info.description`).
fn description(data: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct R {
        info: Option<I>,
    }
    #[derive(serde::Deserialize)]
    struct I {
        description: Option<String>,
    }
    serde_json::from_slice::<R>(data).ok()?.info?.description
}

impl Storage {
    /// The storage of `driver`; `description` is the one helm-bulk gives
    /// the releases it installs in this load.
    pub fn new(client: kube::Client, driver: Driver, description: String) -> Storage {
        let pause = test_pause();
        Storage {
            client,
            driver,
            description,
            pause,
        }
    }

    /// The stored revisions of one release.
    async fn list(&self, ns: &str, name: &str) -> Result<BTreeMap<u32, Stored>, HistoryError> {
        let lp = ListParams::default().labels(&format!("owner=helm,name={name}"));
        let mut out = BTreeMap::new();
        let mut add = |meta: ObjectMeta, payload: Option<Vec<u8>>| {
            let labels = meta.labels.unwrap_or_default();
            let Some(version) = labels.get("version").and_then(|v| v.parse::<u32>().ok()) else {
                return;
            };
            let record = payload.and_then(|p| decode_payload(&Zeroizing::new(p)).ok());
            out.insert(
                version,
                Stored {
                    object: meta.name.unwrap_or_default(),
                    resource_version: meta.resource_version,
                    status: labels.get("status").cloned().unwrap_or_default(),
                    record,
                },
            );
        };
        match self.driver {
            Driver::Secret => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
                for s in api
                    .list(&lp)
                    .await
                    .map_err(|e| HistoryError::List(KubeFailure(e)))?
                    .items
                {
                    if s.type_.as_deref() != Some(storage::SECRET_TYPE) {
                        continue;
                    }
                    let payload = s.data.and_then(|mut d| d.remove("release")).map(|b| b.0);
                    add(s.metadata, payload);
                }
            }
            Driver::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
                for c in api
                    .list(&lp)
                    .await
                    .map_err(|e| HistoryError::List(KubeFailure(e)))?
                    .items
                {
                    let payload = c
                        .data
                        .and_then(|mut d| d.remove("release"))
                        .map(String::into_bytes);
                    add(c.metadata, payload);
                }
            }
        }
        Ok(out)
    }

    fn seen(&self, want: &Wanted, stored: &BTreeMap<u32, Stored>) -> BTreeMap<u32, Seen> {
        stored
            .iter()
            .map(|(&n, s)| {
                let rec = s.record.as_deref().map(Vec::as_slice);
                let identical = match (want.get(n), rec) {
                    (Some(w), Some(r)) => w.status == s.status && same_record(&w.record, r),
                    _ => false,
                };
                let ours = rec.is_some_and(|r| {
                    crate::release::has_chart_annotation(
                        r,
                        crate::restore::frozen::FROZEN_ANNOTATION,
                    ) && description(r).as_deref() == Some(self.description.as_str())
                });
                let seen = Seen {
                    identical,
                    ours: ours && !identical,
                    deployed: s.status == "deployed",
                };
                (n, seen)
            })
            .collect()
    }

    /// Whether the release's storage holds its restored revision as saved,
    /// `deployed`, and nothing that differs from the snapshot: a history this
    /// load (or an earlier one) restored, whose newest revision may be a
    /// failed upgrade. Load counts such a release as installed.
    pub async fn restored(&self, want: &Wanted) -> Result<bool, HistoryError> {
        let stored = self.list(&want.namespace, &want.name).await?;
        let seen = self.seen(want, &stored);
        let d = seen.get(&want.deployed);
        Ok(d.is_some_and(|s| s.identical && s.deployed)
            && seen.values().all(|s| s.identical || s.ours))
    }

    /// Restores the history of one release (or, with `dry_run`, says what
    /// it would write). `fresh`: the release is about to be installed by
    /// this load (a dry run plans as if helm's install record were there).
    pub async fn restore(&self, want: &Wanted, dry_run: bool, fresh: bool) -> Outcome {
        let started = Instant::now();
        let mut out = Outcome {
            key: want.key(),
            deployed: want.deployed,
            revisions: want.revisions.iter().map(|r| r.revision).collect(),
            ops: Vec::new(),
            same: Vec::new(),
            differ: Vec::new(),
            left_out: want.left_out.clone(),
            not_ours: None,
            error: None,
            elapsed: Duration::ZERO,
        };
        let seen = if dry_run && fresh {
            let mut m = BTreeMap::new();
            m.insert(
                1,
                Seen {
                    identical: false,
                    ours: true,
                    deployed: true,
                },
            );
            m
        } else {
            match self.list(&want.namespace, &want.name).await {
                Ok(stored) => self.seen(want, &stored),
                Err(e) => {
                    out.error = Some(format!("cannot read the release's storage: {e}"));
                    return out;
                }
            }
        };
        let w = plan(want.deployed, &out.revisions, &seen);
        out.same = w.same;
        out.differ = w.differ;
        out.not_ours = w.not_ours;
        if dry_run {
            out.ops = w.ops;
            out.elapsed = started.elapsed();
            return out;
        }
        for op in w.ops {
            if let Err(e) = self.apply(want, op).await {
                out.error = Some(e.to_string());
                break;
            }
            out.ops.push(op);
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
        out.elapsed = started.elapsed();
        out
    }

    async fn apply(&self, want: &Wanted, op: Op) -> Result<(), HistoryError> {
        match op {
            Op::Create(n) => self.write(want, n, Write::Create).await,
            Op::Replace(n) => self.write(want, n, Write::Update).await,
            Op::Delete(n) => self.delete(want, n).await,
        }
    }

    /// Creates, or replaces, the storage object of revision `n` with its
    /// record from the snapshot.
    async fn write(&self, want: &Wanted, n: u32, write: Write) -> Result<(), HistoryError> {
        let ns = &want.namespace;
        let rev = want.get(n).ok_or(HistoryError::NotInSnapshot(n))?;
        let resource_version = if write == Write::Update {
            let stored = self.list(ns, &want.name).await?;
            stored.get(&n).and_then(|s| s.resource_version.clone())
        } else {
            None
        };
        let name = storage::key(&want.name, n);
        let meta = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(storage::labels(
                &want.name,
                n,
                &rev.status,
                &rev.labels,
                write,
                now_unix(),
            )),
            resource_version,
            ..Default::default()
        };
        let payload = storage::encode_payload(&rev.record);
        let result = match self.driver {
            Driver::Secret => {
                let obj = Secret {
                    metadata: meta,
                    type_: Some(storage::SECRET_TYPE.to_owned()),
                    data: Some(
                        [(
                            "release".to_owned(),
                            ByteString(payload.as_bytes().to_vec()),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                };
                let wipe =
                    |s: &mut Secret| s.data.iter_mut().flatten().for_each(|v| v.1.0.zeroize());
                self.put(ns, write, &name, obj, wipe).await
            }
            Driver::ConfigMap => {
                let obj = ConfigMap {
                    metadata: meta,
                    data: Some([("release".to_owned(), payload.to_string())].into()),
                    ..Default::default()
                };
                let wipe =
                    |c: &mut ConfigMap| c.data.iter_mut().flatten().for_each(|v| v.1.zeroize());
                self.put(ns, write, &name, obj, wipe).await
            }
        };
        result.map_err(|e| HistoryError::Write {
            revision: n,
            source: KubeFailure(e),
        })
    }

    /// Creates (`Write::Create`) or replaces `obj`, named `name`, in `ns`;
    /// then `wipe`s the record out of it.
    async fn put<K>(
        &self,
        ns: &str,
        write: Write,
        name: &str,
        mut obj: K,
        wipe: impl FnOnce(&mut K),
    ) -> kube::Result<()>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let pp = PostParams::default();
        let result = match write {
            Write::Create => api.create(&pp, &obj).await.map(drop),
            Write::Update => api.replace(name, &pp, &obj).await.map(drop),
        };
        wipe(&mut obj);
        result
    }

    /// Deletes the storage object of revision `n`, if there is one.
    async fn delete(&self, want: &Wanted, n: u32) -> Result<(), HistoryError> {
        let ns = &want.namespace;
        let stored = self.list(ns, &want.name).await?;
        let Some(s) = stored.get(&n) else {
            return Ok(());
        };
        let dp = DeleteParams::default();
        let result = match self.driver {
            Driver::Secret => Api::<Secret>::namespaced(self.client.clone(), ns)
                .delete(&s.object, &dp)
                .await
                .map(drop),
            Driver::ConfigMap => Api::<ConfigMap>::namespaced(self.client.clone(), ns)
                .delete(&s.object, &dp)
                .await
                .map(drop),
        };
        result.map_err(|e| HistoryError::Delete {
            revision: n,
            source: KubeFailure(e),
        })
    }
}

/// Restores the history of each `(release, fresh)`, `jobs` releases at a
/// time, in the order given; `stopped` is asked before each release starts
/// (load was interrupted: no more writes).
pub async fn restore_all<S>(
    storage: &Storage,
    releases: &[(&Wanted, bool)],
    dry_run: bool,
    jobs: usize,
    stopped: S,
) -> Vec<Outcome>
where
    S: Fn() -> bool,
{
    use futures::StreamExt as _;
    let stopped = &stopped;
    futures::stream::iter(releases.iter().map(|(w, fresh)| async move {
        if stopped() {
            return None;
        }
        Some(storage.restore(w, dry_run, *fresh).await)
    }))
    .buffered(jobs.max(1))
    .filter_map(|o| async move { o })
    .collect()
    .await
}

/// Counts as installed (`deployed`, at its restored revision) every release
/// of `existing` whose newest revision is not `deployed` but whose storage
/// holds a history load restored (see [`Storage::restored`]): a release
/// whose saved history ends with a failed upgrade.
pub async fn recognize(
    storage: &Storage,
    wanted: &BTreeMap<ReleaseKey, Wanted>,
    existing: &mut std::collections::HashMap<ReleaseKey, crate::release::Installed>,
) -> Result<(), HistoryError> {
    for (key, e) in existing.iter_mut() {
        if e.status == "deployed" || e.frozen {
            continue;
        }
        let Some(w) = wanted.get(key) else { continue };
        if w.revisions.len() < 2 || !storage.restored(w).await? {
            continue;
        }
        e.revision = w.deployed;
        e.status = "deployed".to_owned();
    }
    Ok(())
}

/// The history to restore of each release in `targets` (`(namespace,
/// name)` → restored revision), the records read with `record`.
pub fn wanted_all<F>(
    index: &Index,
    targets: &BTreeMap<ReleaseKey, u32>,
    keep: Keep,
    record: F,
) -> Result<BTreeMap<ReleaseKey, Wanted>, HistoryError>
where
    F: Fn(&str, &str, u32) -> Result<Zeroizing<Vec<u8>>, RecordCause>,
{
    let mut out = BTreeMap::new();
    if keep == Keep::None {
        return Ok(out);
    }
    for (key, &d) in targets {
        let (ns, name) = (&key.namespace, &key.name);
        let w = wanted(index, ns, name, d, keep, |n| record(ns, name, n)).map_err(|e| {
            HistoryError::Release {
                release: key.clone(),
                source: Box::new(e),
            }
        })?;
        out.insert(key.clone(), w);
    }
    Ok(out)
}

/// A pause after each history write, for tests that stop load between two
/// writes: `HELM_BULK_TEST_HISTORY_PAUSE_MS`, read by debug builds only.
fn test_pause() -> Duration {
    if !cfg!(debug_assertions) {
        return Duration::ZERO;
    }
    std::env::var("HELM_BULK_TEST_HISTORY_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_millis)
}

/// Revision numbers as a short list: `1-3, 5`.
pub fn ranges(revs: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < revs.len() {
        let start = revs[i];
        let mut end = start;
        while i + 1 < revs.len() && revs[i + 1] == end + 1 {
            i += 1;
            end = revs[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

/// The line load prints for one release's history.
pub fn report_line(o: &Outcome, dry_run: bool) -> String {
    if o.error.is_some() {
        return format!("FAILED    {}: history: {}", o.key, summary(o, dry_run));
    }
    format!("history   {}: {}", o.key, summary(o, dry_run))
}

/// What restoring one release's history did (or, in a dry run, would do).
pub fn summary(o: &Outcome, dry_run: bool) -> String {
    let mut written: Vec<u32> = o
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Create(n) | Op::Replace(n) => Some(*n),
            Op::Delete(_) => None,
        })
        .collect();
    written.sort_unstable();
    written.dedup();
    let mut line = if let Some(e) = &o.error {
        format!(
            "{e}{}",
            if written.is_empty() {
                String::new()
            } else {
                format!(" (revisions {} were written)", ranges(&written))
            }
        )
    } else if let Some(why) = &o.not_ours {
        format!("not restored: {why}")
    } else if written.is_empty() {
        format!(
            "revisions {} as saved; nothing to write",
            ranges(&o.revisions)
        )
    } else if dry_run {
        format!(
            "revisions {} as saved ({} restored); would write {}",
            ranges(&o.revisions),
            o.deployed,
            ranges(&written)
        )
    } else {
        format!(
            "revisions {} as saved ({} restored); wrote {} in {:.2}s",
            ranges(&o.revisions),
            o.deployed,
            ranges(&written),
            o.elapsed.as_secs_f64()
        )
    };
    if o.ops.iter().any(|op| matches!(op, Op::Delete(1))) && o.error.is_none() {
        line.push_str(if dry_run {
            "; would remove helm's revision 1"
        } else {
            "; removed helm's revision 1"
        });
    }
    if !o.differ.is_empty() {
        line.push_str(&format!(
            "; revision(s) {} in the cluster differ from the snapshot, left as they are",
            ranges(&o.differ)
        ));
    }
    for (_, why) in &o.left_out {
        line.push_str(&format!("; {why}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rev: u32, status: &str) -> IndexRow {
        crate::testing::index_row("ns", "web", rev, status)
    }

    #[test]
    fn selects_the_newest_revisions_and_never_pending_ones() {
        let rows = [
            row(1, "superseded"),
            row(2, "superseded"),
            row(3, "failed"),
            row(4, "deployed"),
            row(5, "failed"),
        ];
        let r: Vec<&IndexRow> = rows.iter().collect();
        assert_eq!(select(4, &r, Keep::All).0, [1, 2, 3, 4, 5]);
        assert_eq!(select(4, &r, Keep::Newest(2)).0, [4, 5]);
        assert_eq!(select(4, &r, Keep::Newest(3)).0, [3, 4, 5]);
        assert_eq!(select(4, &r, Keep::Newest(1)).0, [4, 5]);
        assert_eq!(select(4, &r, Keep::None).0, [4]);
        let rows = [
            row(1, "superseded"),
            row(2, "superseded"),
            row(3, "pending-upgrade"),
        ];
        let r: Vec<&IndexRow> = rows.iter().collect();
        let (kept, left) = select(2, &r, Keep::All);
        assert_eq!(kept, [1, 2]);
        assert_eq!(left[0].0, 3);
    }

    fn seen(ours: bool, identical: bool, deployed: bool) -> Seen {
        Seen {
            identical,
            ours,
            deployed,
        }
    }

    #[test]
    fn write_order_keeps_the_storage_valid() {
        // Fresh install of revision 4 of 1..5: 4 next to helm's 1, 1 removed,
        // then 3, 2, 1 downwards and 5 upwards.
        let mut c = BTreeMap::new();
        c.insert(1, seen(true, false, true));
        let w = plan(4, &[1, 2, 3, 4, 5], &c);
        assert_eq!(
            w.ops,
            [
                Op::Create(4),
                Op::Delete(1),
                Op::Create(3),
                Op::Create(2),
                Op::Create(1),
                Op::Create(5)
            ]
        );
        assert!(w.not_ours.is_none());
        // Restored revision 1: helm's record is replaced in place.
        let w = plan(1, &[1, 2], &c);
        assert_eq!(w.ops, [Op::Replace(1), Op::Create(2)]);
        // Interrupted after 4 and 3: helm's 1 still there, it goes on.
        c.insert(4, seen(false, true, true));
        c.insert(3, seen(false, true, false));
        let w = plan(4, &[1, 2, 3, 4, 5], &c);
        assert_eq!(
            w.ops,
            [Op::Delete(1), Op::Create(2), Op::Create(1), Op::Create(5)]
        );
        assert_eq!(w.same, [3, 4]);
        // Complete: nothing to do.
        let mut done = BTreeMap::new();
        for n in 1..=5 {
            done.insert(n, seen(false, true, n == 4));
        }
        let w = plan(4, &[1, 2, 3, 4, 5], &done);
        assert!(w.ops.is_empty());
        assert_eq!(w.same, [1, 2, 3, 4, 5]);
        // A revision that differs is left alone and reported.
        done.insert(2, seen(false, false, false));
        let w = plan(4, &[1, 2, 3, 4, 5], &done);
        assert!(w.ops.is_empty());
        assert_eq!(w.differ, [2]);
        // Someone else's release: nothing is written.
        let mut theirs = BTreeMap::new();
        theirs.insert(1, seen(false, false, true));
        let w = plan(4, &[1, 2, 3, 4], &theirs);
        assert!(w.ops.is_empty());
        assert!(w.not_ours.is_some());
        let w = plan(1, &[1, 2], &theirs);
        assert!(w.ops.is_empty());
        assert_eq!(w.differ, [1]);
        assert!(plan(1, &[1], &BTreeMap::new()).not_ours.is_some());
    }

    #[test]
    fn status_of_the_restored_revision() {
        let rec = br#"{"name":"web","info":{"status":"superseded","description":"Upgrade complete"},"version":2}"#;
        let out = with_status(rec, "deployed").unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"name":"web","info":{"status":"deployed","description":"Upgrade complete"},"version":2}"#
        );
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
        assert_eq!(description(rec).as_deref(), Some("Upgrade complete"));
    }
}
