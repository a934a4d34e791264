//! Where release records come from. Each source produces an index in a first
//! pass and then the records in index order, so the snapshot writer can put
//! the index first while holding only one page of records at a time.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use zeroize::Zeroizing;

pub mod crds;
pub mod helm;
pub mod list;
pub mod tiller;

/// Which kind of Kubernetes object holds release records, one per revision:
/// Helm 3/4's storage driver (`HELM_DRIVER`) and Tiller's `--storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Secrets (Helm 3/4's default).
    Secret,
    /// ConfigMaps (Tiller's default).
    ConfigMap,
}

impl Driver {
    /// Parses HELM_DRIVER's value, as Helm does.
    pub fn parse(s: &str) -> Result<Driver, SourceError> {
        match s {
            "" | "secret" | "secrets" => Ok(Driver::Secret),
            "configmap" | "configmaps" => Ok(Driver::ConfigMap),
            "sql" => Err(SourceError::SqlDriver),
            "memory" => Err(SourceError::MemoryDriver),
            other => Err(SourceError::UnknownDriver(other.to_owned())),
        }
    }

    /// The name stored in the snapshot index.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Secret => "secret",
            Driver::ConfigMap => "configmap",
        }
    }

    /// What Helm 3/4 keeps releases in with this driver, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Driver::Secret => "release Secrets",
            Driver::ConfigMap => "release ConfigMaps",
        }
    }

    /// What Tiller keeps releases in with this storage, for messages.
    pub fn tiller_what(self) -> &'static str {
        match self {
            Driver::Secret => "Tiller's release Secrets",
            Driver::ConfigMap => "Tiller's release ConfigMaps",
        }
    }

    /// The objects' kind, plural (`Secrets`).
    pub fn objects(self) -> &'static str {
        match self {
            Driver::Secret => "Secrets",
            Driver::ConfigMap => "ConfigMaps",
        }
    }
}

/// [`Driver::parse`].
impl std::str::FromStr for Driver {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Driver, SourceError> {
        Driver::parse(s)
    }
}

/// [`Driver::name`].
impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A place release records are saved from, read in two passes: [`plan`]
/// lists what the filter keeps (the index rows in archive order, at one
/// consistent resource version), [`fetch`] then sends each planned record
/// in index order. Helm 3/4 storage, Tiller over gRPC and Tiller's storage
/// objects are the implementations.
///
/// [`plan`]: Source::plan
/// [`fetch`]: Source::fetch
// The futures are awaited in place (`block_on`), never spawned: no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// The first pass: what to save.
    async fn plan(&self, filter: &helm::SaveFilter) -> Result<helm::Plan, SourceError>;
    /// The second pass: the planned records, in index order.
    async fn fetch(&self, plan: &helm::Plan, tx: &RecordSender) -> Result<(), SourceError>;
    /// The driver recorded in the index (`secret`, `configmap`, `tiller`).
    fn driver_name(&self) -> &'static str;
    /// Where the records come from when that is not the Kubernetes API
    /// server (Tiller's address); `None`: the API server.
    fn server(&self) -> Option<String> {
        None
    }
}

/// Applies `f` to every item on up to `threads` threads (the calling thread
/// is one of them) and returns the results in the items' order. A panic in
/// `f` is passed on.
pub(crate) fn map_parallel<T: Send, U: Send>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let work = || {
        let mut done = Vec::new();
        loop {
            // Only `next` runs under the lock, and it cannot panic.
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
            match next {
                Some((i, item)) => done.push((i, f(item))),
                None => break done,
            }
        }
    };
    let mut all = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for other in others {
            match other.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, u)| u).collect()
}

/// Record bytes queued between a source and the snapshot writer at most.
pub const IN_FLIGHT_BYTES: usize = 8 << 20;

/// A record on its way to the snapshot writer: its position in the index and
/// its bytes. Dropping it frees its share of [`IN_FLIGHT_BYTES`].
pub struct Record {
    /// The row's position in the index.
    pub pos: usize,
    /// The record.
    pub data: Zeroizing<Vec<u8>>,
    _budget: OwnedSemaphorePermit,
}

/// The sending half of [`record_channel`].
#[derive(Clone)]
pub struct RecordSender {
    tx: mpsc::Sender<Record>,
    budget: Arc<Semaphore>,
}

/// The receiving half of [`record_channel`].
pub struct RecordReceiver {
    rx: mpsc::Receiver<Record>,
}

/// A channel from a source to the snapshot writer that holds at most
/// [`IN_FLIGHT_BYTES`] of records (or one record, if that is larger), so
/// fetching overlaps with compression and encryption without the queue
/// growing with the cluster.
pub fn record_channel() -> (RecordSender, RecordReceiver) {
    let (tx, rx) = mpsc::channel(1024);
    let budget = Arc::new(Semaphore::new(IN_FLIGHT_BYTES >> 10));
    (RecordSender { tx, budget }, RecordReceiver { rx })
}

impl RecordSender {
    /// Queues a record, waiting while the queue is full. Fails when the
    /// writer has stopped.
    pub async fn send(&self, pos: usize, data: Zeroizing<Vec<u8>>) -> Result<(), SourceError> {
        let stopped = || SourceError::Write("the snapshot writer stopped".to_owned());
        let kib = data.len().div_ceil(1024).clamp(1, IN_FLIGHT_BYTES >> 10);
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(u32::try_from(kib).unwrap_or(u32::MAX))
            .await
            .map_err(|_| stopped())?;
        self.tx
            .send(Record {
                pos,
                data,
                _budget: permit,
            })
            .await
            .map_err(|_| stopped())
    }
}

impl RecordReceiver {
    /// The next record, blocking the (non-async) writer thread; `None` once
    /// every sender is gone.
    pub fn blocking_recv(&mut self) -> Option<Record> {
        self.rx.blocking_recv()
    }
}

/// Why listing from the Kubernetes API failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiCause {
    /// The API server refused or did not answer.
    #[error("{0}")]
    Kube(#[from] crate::cluster::KubeFailure),
    /// The list request could not be built.
    #[error("{0}")]
    Request(#[source] kube::core::request::Error),
    /// The list is not JSON of the expected shape.
    #[error("the API server sent an invalid list: {0}")]
    InvalidList(#[source] serde_json::Error),
    /// An item of a CRD list is not a CRD.
    #[error("the API server sent an invalid CRD: {0}")]
    InvalidCrd(#[source] serde_json::Error),
    /// A CRD without `spec.group` or `spec.names.kind`.
    #[error("CRD {name} has no group or kind: {source}")]
    CrdNames {
        /// The CRD's name.
        name: String,
        /// The parser's error.
        source: serde_json::Error,
    },
}

/// Errors from reading a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// HELM_DRIVER=sql.
    #[error(
        "HELM_DRIVER=sql is not supported yet; helm-bulk reads the secret and configmap drivers"
    )]
    SqlDriver,
    /// HELM_DRIVER=memory.
    #[error("HELM_DRIVER=memory keeps releases in helm's own process; there is nothing to save")]
    MemoryDriver,
    /// HELM_DRIVER names no driver.
    #[error("unknown HELM_DRIVER `{0}`; use secret (the default) or configmap")]
    UnknownDriver(String),
    /// A Tiller call failed.
    #[error("{0}")]
    Tiller(#[source] crate::tiller::TillerError),
    /// The Kubernetes API failed.
    #[error("listing Helm {what} failed: {cause}")]
    Api {
        /// What was being listed.
        what: &'static str,
        /// Why.
        #[source]
        cause: ApiCause,
    },
    /// The consistent list expired (etcd compaction) between the passes.
    #[error(
        "the cluster's release list changed too much while saving (resource version expired); run save again"
    )]
    Expired,
    /// A record present in the first pass was missing in the second.
    #[error("release record {0} disappeared while saving; run save again")]
    Vanished(String),
    /// Writing to the snapshot failed.
    #[error("{0}")]
    Write(String),
    /// A record or CRD cannot be placed in the snapshot (its path).
    #[error("{0}")]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// The threads examining the listed records were stopped (the runtime
    /// is shutting down).
    #[error("reading the release records was cancelled")]
    Cancelled(#[source] tokio::task::JoinError),
    /// A CRD cannot be encoded as JSON.
    #[error("cannot encode CRD {name}: {source}")]
    EncodeCrd {
        /// The CRD's name.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::map_parallel;

    #[test]
    fn map_parallel_keeps_the_items_order_with_any_number_of_threads() {
        let items: Vec<u32> = (0..500).collect();
        let want: Vec<u64> = items.iter().map(|i| u64::from(*i) * 3).collect();
        for threads in [0, 1, 2, 3, 8, 1000] {
            let got = map_parallel(items.clone(), threads, |i| u64::from(i) * 3);
            assert_eq!(got, want, "{threads} threads");
        }
        assert!(map_parallel(Vec::<u32>::new(), 4, |i| i).is_empty());
    }

    #[test]
    fn map_parallel_uses_several_threads_and_each_item_once() {
        let seen = Mutex::new(Vec::new());
        let threads = Mutex::new(HashSet::new());
        let items: Vec<u32> = (0..64).collect();
        map_parallel(items, 2, |i| {
            threads.lock().unwrap().insert(std::thread::current().id());
            seen.lock().unwrap().push(i);
            // Long enough that one thread cannot take every item first.
            std::thread::sleep(std::time::Duration::from_millis(2));
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        assert_eq!(threads.into_inner().unwrap().len(), 2);
    }

    #[test]
    fn map_parallel_passes_a_panic_on() {
        let result = std::panic::catch_unwind(|| {
            map_parallel((0..10).collect::<Vec<u32>>(), 2, |i| {
                assert_ne!(i, 7, "item seven");
                i
            })
        });
        assert!(result.is_err());
    }
}
