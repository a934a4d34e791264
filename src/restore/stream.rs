//! Reading a verified snapshot's records again, with memory that does not
//! grow with the number of releases.
//!
//! Load reads the snapshot first to verify all of it ([`super::load::read`]),
//! keeping the index and little else. Every later step that needs records
//! (the preflight, the installs, the history writes) reads the snapshot
//! again with a [`Rereader`]: the same source opened and decrypted again,
//! its index compared with the first pass's and every entry checked against
//! it as it is read. The records go through a [`Feed`], a small store the
//! reading thread fills in archive order and the workers empty in the same
//! order; a worker asking for a record that is not there yet waits for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::{Condvar, Mutex};

use zeroize::Zeroizing;

use super::history::{self, HistoryError, Keep, Wanted};
use super::plan::Step;
use crate::release::{ReleaseId as _, ReleaseKey, RevisionId as _, RevisionKey};
use crate::snapshot::{Entry, Index, IndexRow, Limits, SnapshotError};

/// Why reading the snapshot again failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The snapshot could not be opened and decrypted again.
    #[error("{CHANGED} (reading it again: {0})")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Its index is not the one the first pass read.
    #[error("{CHANGED} (reading it again: its index is not the one read in the first pass)")]
    OtherIndex,
    /// An entry failed its checks, or the archive could not be read.
    #[error("{CHANGED} (reading it again: {0})")]
    Read(#[source] SnapshotError),
    /// A release's history could not be built from its records.
    #[error("cannot restore the history of {release}: {source}")]
    History {
        /// The release.
        release: ReleaseKey,
        /// Why.
        source: HistoryError,
    },
}

/// The start of the text of a pass that failed.
const CHANGED: &str = "the snapshot changed after load verified it, or cannot be read again";

/// A record the snapshot does not hold.
#[derive(Debug, thiserror::Error)]
#[error("the snapshot has no record of it")]
pub struct NoRecord;

/// A release revision.
pub type Key = RevisionKey;

/// The record key of a step.
pub fn key(step: &Step) -> Key {
    step.revision_key()
}

/// How a [`Feed`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Every record was delivered.
    Finished,
    /// Reading failed: the snapshot changed, or could not be read again
    /// (the error's text, for the consumers that ask).
    Failed(String),
    /// The consumers are done: no more records are wanted.
    Closed,
}

struct State {
    ready: HashMap<Key, Zeroizing<Vec<u8>>>,
    /// The records consumers wait for that are not there yet.
    waited: BTreeSet<Key>,
    end: Option<End>,
}

/// A bounded store of records between the thread that reads the snapshot
/// and the workers that use them.
///
/// [`Feed::put`] waits while `capacity` records are stored and no consumer
/// waits for a record that is not there. When `n` consumers take records in
/// the order they are put (load arranges that), the store holds at most
/// `max(capacity, n)` records: it goes past `capacity` only while a
/// consumer waits, and then everything in it was already asked for by one
/// of the others. In any other order it may hold more, but never deadlocks.
pub struct Feed {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
}

impl Feed {
    /// An empty store of at most `capacity` records (at least 1).
    pub fn new(capacity: usize) -> Feed {
        Feed {
            state: Mutex::new(State {
                ready: HashMap::new(),
                waited: BTreeSet::new(),
                end: None,
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a record, waiting for room. False: the consumers are done.
    pub fn put(&self, key: Key, data: Zeroizing<Vec<u8>>) -> bool {
        let mut s = self.lock();
        loop {
            if s.end.is_some() {
                return false;
            }
            if s.ready.len() < self.capacity || !s.waited.is_empty() {
                break;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.waited.remove(&key);
        s.ready.insert(key, data);
        self.changed.notify_all();
        true
    }

    /// Takes the record of `key`, waiting until it is read; `None` once
    /// reading has ended without it (see [`Feed::failure`]).
    pub fn take(&self, key: &Key) -> Option<Zeroizing<Vec<u8>>> {
        let mut s = self.lock();
        loop {
            if let Some(data) = s.ready.remove(key) {
                self.changed.notify_all();
                return Some(data);
            }
            if s.end.is_some() {
                s.waited.remove(key);
                return None;
            }
            if s.waited.insert(key.clone()) {
                self.changed.notify_all();
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Reading ended: every record was put (`Ok`), or it failed.
    pub fn finish(&self, result: Result<(), &StreamError>) {
        let mut s = self.lock();
        if s.end.is_none() {
            s.end = Some(match result {
                Ok(()) => End::Finished,
                Err(e) => End::Failed(e.to_string()),
            });
        }
        self.changed.notify_all();
    }

    /// The consumers are done: a waiting [`Feed::put`] returns false and
    /// the records left are dropped (and wiped).
    pub fn close(&self) {
        let mut s = self.lock();
        if s.end.is_none() {
            s.end = Some(End::Closed);
        }
        s.ready.clear();
        self.changed.notify_all();
    }

    /// Why reading failed, if it did.
    pub fn failure(&self) -> Option<String> {
        match &self.lock().end {
            Some(End::Failed(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// How many records are stored now.
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// Whether no record is stored now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Closes a [`Feed`] when dropped.
struct CloseOnDrop<'f>(&'f Feed);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Some records of one release, by revision.
type Records = BTreeMap<u32, Zeroizing<Vec<u8>>>;

/// Opens the decrypted snapshot again.
pub type Open<'a> =
    dyn Fn() -> Result<Box<dyn Read>, Box<dyn std::error::Error + Send + Sync>> + 'a;

/// Reads a snapshot again after a first pass verified it.
pub struct Rereader<'a> {
    open: Box<Open<'a>>,
    index: Index,
    /// Passes read so far (for the test pause and debug output).
    passes: std::sync::atomic::AtomicUsize,
}

/// The error of a pass whose consumer stopped it (not a failure).
const STOPPED: &str = "helm-bulk: pass stopped by its consumer";

impl<'a> Rereader<'a> {
    /// Reads with `open`, checking against `index` (the first pass's).
    pub fn new(open: Box<Open<'a>>, index: Index) -> Rereader<'a> {
        Rereader {
            open,
            index,
            passes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The index of the first pass.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Reads the whole snapshot again, checking every entry as the first
    /// pass did and the index against the first pass's, and calls `on` with
    /// each release record `wanted` selects, in archive order, until `on`
    /// returns false. An error says the snapshot changed or cannot be read.
    pub fn pass<W, F>(&self, wanted: W, mut on: F) -> Result<(), StreamError>
    where
        W: Fn(&IndexRow) -> bool,
        F: FnMut(&IndexRow, Zeroizing<Vec<u8>>) -> bool,
    {
        let n = self
            .passes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 2;
        test_pause(n);
        crate::debug::note(|| format!("load: reading the snapshot again (pass {n})"));
        let input = (self.open)().map_err(StreamError::Open)?;
        let mut checked = false;
        let mut other_index = false;
        let result =
            crate::release::read_checked(input, &Limits::default(), |index, entry, data| {
                if !checked {
                    if *index != self.index {
                        other_index = true;
                        return Err(SnapshotError::BadIndex(STOPPED.to_owned()));
                    }
                    checked = true;
                }
                if let Entry::Release(row) = entry
                    && wanted(row)
                    && !on(row, data)
                {
                    return Err(SnapshotError::BadIndex(STOPPED.to_owned()));
                }
                Ok(())
            });
        match result {
            _ if other_index => Err(StreamError::OtherIndex),
            Ok(index) if index == self.index => Ok(()),
            Ok(_) => Err(StreamError::OtherIndex),
            Err(SnapshotError::BadIndex(m)) if m == STOPPED => Ok(()),
            Err(e) => Err(StreamError::Read(e)),
        }
    }

    /// Reads the records of `order` (in that order, which should be archive
    /// order) into a [`Feed`] of `capacity` on this thread, while `consume`
    /// runs on another and takes them. Returns what `consume` returned and
    /// how reading ended.
    pub fn feed<T, C>(
        &self,
        order: &[Key],
        capacity: usize,
        consume: C,
    ) -> (T, Result<(), StreamError>)
    where
        T: Send,
        C: FnOnce(&Feed) -> T + Send,
    {
        let feed = Feed::new(capacity);
        let wanted: BTreeSet<Key> = order.iter().cloned().collect();
        std::thread::scope(|scope| {
            let feed = &feed;
            let consumer = scope.spawn(move || {
                // Closed however `consume` ends (a panic too), so that the
                // reader never waits for a consumer that is gone.
                let _close = CloseOnDrop(feed);
                consume(feed)
            });
            let result = if wanted.is_empty() {
                Ok(())
            } else {
                self.pass(
                    |row| wanted.contains(row.revision_id()),
                    |row, data| feed.put(row.revision_key(), data),
                )
            };
            feed.finish(result.as_ref().map(|_| ()));
            let out = match consumer.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            (out, result)
        })
    }

    /// Reads the history records of the releases of `targets` (`(namespace,
    /// name)` → restored revision; [`history::records_needed`]) and calls
    /// `on` with the histories, at most `batch` releases at a time, in
    /// archive order. A release's revisions are contiguous in the archive,
    /// so about one release is held besides the batch. Helm 2 records are
    /// converted as `helm 2to3` does ([`super::helm2to3`]). `on` returning false
    /// stops reading.
    pub fn histories<F>(
        &self,
        targets: &BTreeMap<ReleaseKey, u32>,
        keep: Keep,
        helm2: bool,
        batch: usize,
        mut on: F,
    ) -> Result<(), StreamError>
    where
        F: FnMut(BTreeMap<ReleaseKey, Wanted>) -> bool,
    {
        if keep == Keep::None || targets.is_empty() {
            return Ok(());
        }
        let needed = history::records_needed(&self.index, targets, keep);
        let mut left: BTreeMap<ReleaseKey, usize> = BTreeMap::new();
        for r in &needed {
            *left.entry(r.release()).or_default() += 1;
        }
        let mut partial: BTreeMap<ReleaseKey, Records> = BTreeMap::new();
        let mut ready: BTreeMap<ReleaseKey, Wanted> = BTreeMap::new();
        let mut error: Option<StreamError> = None;
        let mut go_on = true;
        let result = self.pass(
            |row| needed.contains(row.revision_id()),
            |row, data| {
                let release = row.release_key();
                partial
                    .entry(release.clone())
                    .or_default()
                    .insert(row.revision, data);
                let Some(n) = left.get_mut(&release) else {
                    return true;
                };
                *n -= 1;
                if *n > 0 {
                    return true;
                }
                let records = partial.remove(&release).unwrap_or_default();
                let deployed = targets.get(&release).copied().unwrap_or(row.revision);
                let w = history::wanted(
                    &self.index,
                    &release.namespace,
                    &release.name,
                    deployed,
                    keep,
                    |r| {
                        let data = records
                            .get(&r)
                            .ok_or_else(|| history::RecordCause::from(NoRecord))?;
                        if helm2 {
                            super::helm2to3::record_to_helm3(data).map_err(Box::from)
                        } else {
                            Ok(data.clone())
                        }
                    },
                );
                match w {
                    Ok(w) => {
                        ready.insert(release, w);
                    }
                    Err(e) => {
                        error = Some(StreamError::History { release, source: e });
                        return false;
                    }
                }
                if ready.len() >= batch.max(1) {
                    go_on = on(std::mem::take(&mut ready));
                }
                go_on
            },
        );
        if let Some(e) = error {
            return Err(e);
        }
        result?;
        if go_on && !ready.is_empty() {
            on(ready);
        }
        Ok(())
    }
}

/// A pause before each pass after the first, for tests that change the
/// snapshot between two passes: `HELM_BULK_TEST_PASS_PAUSE_MS` (read by
/// debug builds only) pauses before pass 2 and later ones, after printing
/// `helm-bulk test: pass N` on stderr.
fn test_pause(pass: usize) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(ms) = std::env::var("HELM_BULK_TEST_PASS_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    eprintln!("helm-bulk test: pass {pass}");
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn k(i: u32) -> Key {
        RevisionKey::new("ns", format!("r{i:03}"), 1)
    }

    fn rec(i: u32) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(i.to_le_bytes().to_vec())
    }

    /// Puts `n` records in order from this thread while `workers` threads
    /// take them in the same order from a shared queue; returns the most
    /// records the store held at once.
    fn run(n: u32, workers: usize, capacity: usize) -> usize {
        let feed = Feed::new(capacity);
        let next = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let got = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst) as u32;
                        if i >= n {
                            break;
                        }
                        let r = feed.take(&k(i)).expect("every record is delivered");
                        assert_eq!(*r, *rec(i));
                        got.lock().unwrap().push(i);
                        std::thread::yield_now();
                    }
                });
            }
            for i in 0..n {
                assert!(feed.put(k(i), rec(i)));
                most.fetch_max(feed.len(), Ordering::SeqCst);
            }
            feed.finish(Ok(()));
        });
        let mut got = got.into_inner().unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
        most.into_inner()
    }

    /// A Helm 3 snapshot: `(namespace, name, revision, status)` records,
    /// created at `created`.
    fn snapshot(created: &str, rows: &[(&str, &str, u32, &str)]) -> Vec<u8> {
        let mut index = crate::testing::helm3_index("https://127.0.0.1:6443", "test");
        index.created_at = created.to_owned();
        let records: Vec<crate::release::ReleaseRecord> = rows
            .iter()
            .map(|(ns, name, rev, status)| {
                let json = serde_json::json!({
                    "name": name, "namespace": ns, "version": rev,
                    "info": {"status": status},
                    "chart": {"metadata": {"name": "c", "version": "1.0.0"}},
                    "manifest": format!("---\n# Source: c/templates/x.yaml\nkind: K\nrev: {rev}\n"),
                });
                crate::release::ReleaseRecord::from_helm_json(json.to_string().into_bytes())
                    .unwrap()
            })
            .collect();
        crate::snapshot::write_snapshot(Vec::new(), index, &records).unwrap()
    }

    const ROWS: [(&str, &str, u32, &str); 6] = [
        ("a", "db", 1, "superseded"),
        ("a", "db", 2, "deployed"),
        ("a", "db", 3, "failed"),
        ("a", "db-x", 1, "deployed"),
        ("b", "web", 1, "superseded"),
        ("b", "web", 2, "deployed"),
    ];

    fn rereader(first: &[u8], again: Vec<u8>) -> Rereader<'static> {
        let index =
            crate::release::read_checked(first, &Limits::default(), |_, _, _| Ok(())).unwrap();
        Rereader::new(
            Box::new(move || Ok(Box::new(std::io::Cursor::new(again.clone())) as Box<dyn Read>)),
            index,
        )
    }

    #[test]
    fn a_second_pass_reads_the_records_in_archive_order_and_refuses_another_snapshot() {
        let bytes = snapshot("2026-11-26T00:00:00Z", &ROWS);
        let reread = rereader(&bytes, bytes.clone());
        let mut seen = Vec::new();
        reread
            .pass(
                |r| r.status == "deployed",
                |r, data| {
                    assert!(!data.is_empty());
                    seen.push(r.sort_key());
                    true
                },
            )
            .unwrap();
        // Archive order: `a/db-x` before `a/db` ('-' sorts before '.').
        assert_eq!(seen, ["a/db-x.v1", "a/db.v2", "b/web.v2"]);
        // Stopped by its consumer: not an error.
        let mut n = 0;
        reread
            .pass(
                |_| true,
                |_, _| {
                    n += 1;
                    n < 2
                },
            )
            .unwrap();
        assert_eq!(n, 2);

        // Another valid snapshot (a later save): its index differs.
        let later = snapshot("2026-11-27T00:00:00Z", &ROWS);
        let err = rereader(&bytes, later)
            .pass(|_| true, |_, _| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("changed after load verified it"), "{err}");
        assert!(err.contains("not the one read in the first pass"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // The same file cut short: the records before the cut came, then an error.
        let cut = bytes[..bytes.len() - 40].to_vec();
        let err = rereader(&bytes, cut)
            .pass(|_| true, |_, _| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("changed after load verified it"), "{err}");
    }

    #[test]
    fn histories_read_again_equal_those_built_from_records_in_memory() {
        let bytes = snapshot("2026-11-26T00:00:00Z", &ROWS);
        let reread = rereader(&bytes, bytes.clone());
        let mut all: HashMap<(String, String, u32), Zeroizing<Vec<u8>>> = HashMap::new();
        crate::release::read_checked(&bytes[..], &Limits::default(), |_, e, data| {
            if let Entry::Release(r) = e {
                all.insert((r.namespace.clone(), r.name.clone(), r.revision), data);
            }
            Ok(())
        })
        .unwrap();
        let targets = super::super::histories::restored(reread.index(), &["deployed".to_owned()]);
        for keep in [Keep::All, Keep::Newest(1), Keep::Newest(2)] {
            let want = history::wanted_all(reread.index(), &targets, keep, |ns, n, r| {
                Ok(all[&(ns.to_owned(), n.to_owned(), r)].clone())
            })
            .unwrap();
            let mut batches = Vec::new();
            let mut got = BTreeMap::new();
            reread
                .histories(&targets, keep, false, 2, |b| {
                    batches.push(b.len());
                    got.extend(b);
                    true
                })
                .unwrap();
            assert!(batches.iter().all(|n| *n <= 2), "{batches:?}");
            // Each release's key, restored revision, and every revision's
            // number, status and record.
            let flat = |m: &BTreeMap<ReleaseKey, Wanted>| -> Vec<String> {
                m.values()
                    .flat_map(|w| {
                        w.revisions.iter().map(|r| {
                            let record = String::from_utf8_lossy(&r.record).into_owned();
                            format!(
                                "{} {} {} {} {record}",
                                w.key(),
                                w.deployed,
                                r.revision,
                                r.status
                            )
                        })
                    })
                    .collect()
            };
            assert_eq!(flat(&got), flat(&want), "{keep:?}");
            assert_eq!(got.len(), 3);
        }
    }

    #[test]
    fn feed_delivers_a_pass_to_a_consumer_on_another_thread() {
        let bytes = snapshot("2026-11-26T00:00:00Z", &ROWS);
        let reread = rereader(&bytes, bytes.clone());
        let order: Vec<Key> = [("a", "db-x", 1), ("a", "db", 2), ("b", "web", 2)]
            .iter()
            .map(|(ns, n, r)| RevisionKey::new(*ns, *n, *r))
            .collect();
        let (got, read) = reread.feed(&order, 1, |feed| {
            order
                .iter()
                .map(|k| feed.take(k).is_some())
                .collect::<Vec<_>>()
        });
        read.unwrap();
        assert_eq!(got, [true, true, true]);
        // A consumer that stops early releases the reader.
        let (n, read) = reread.feed(&order, 1, |feed| feed.take(&order[0]).map(|r| r.len()));
        read.unwrap();
        assert!(n.is_some());
    }

    #[test]
    fn records_taken_in_the_order_they_are_put_stay_within_capacity() {
        for (workers, capacity) in [(1, 1), (4, 1), (4, 8), (8, 3)] {
            let most = run(500, workers, capacity);
            let bound = capacity.max(workers);
            assert!(
                most <= bound,
                "{most} records held, capacity {capacity}, {workers} workers"
            );
        }
    }

    #[test]
    fn a_consumer_waiting_for_a_later_record_never_deadlocks_the_reader() {
        // The consumer wants the last record first: the reader must go past
        // its capacity instead of waiting forever.
        let feed = Feed::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(*feed.take(&k(9)).unwrap(), *rec(9));
                for i in 0..9 {
                    assert_eq!(*feed.take(&k(i)).unwrap(), *rec(i));
                }
            });
            for i in 0..10 {
                assert!(feed.put(k(i), rec(i)));
            }
            feed.finish(Ok(()));
        });
        assert!(feed.is_empty());
    }

    #[test]
    fn a_failed_or_finished_read_wakes_every_waiting_consumer_and_closing_stops_the_reader() {
        // A record never read (the snapshot changed): the waiting worker gets
        // None and the failure, and so does every later one.
        let feed = Arc::new(Feed::new(2));
        let waiter = {
            let feed = feed.clone();
            std::thread::spawn(move || feed.take(&k(5)))
        };
        assert!(feed.put(k(0), rec(0)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        feed.finish(Err(&StreamError::OtherIndex));
        assert_eq!(waiter.join().unwrap(), None);
        assert_eq!(
            feed.failure().as_deref(),
            Some(StreamError::OtherIndex.to_string().as_str())
        );
        // A record put before the failure is still delivered (it was verified).
        assert_eq!(*feed.take(&k(0)).unwrap(), *rec(0));
        assert_eq!(feed.take(&k(1)), None);

        // Finished without a record nobody will put: None, no failure.
        let feed = Feed::new(1);
        feed.finish(Ok(()));
        assert_eq!(feed.take(&k(3)), None);
        assert_eq!(feed.failure(), None);

        // The consumers stopped (a stopped load): a reader blocked on a full
        // store is released and told to stop, and the records are dropped.
        let feed = Arc::new(Feed::new(1));
        assert!(feed.put(k(0), rec(0)));
        let reader = {
            let feed = feed.clone();
            std::thread::spawn(move || feed.put(k(1), rec(1)))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        feed.close();
        assert!(!reader.join().unwrap());
        assert!(feed.is_empty());
        assert!(!feed.put(k(2), rec(2)));
    }

    #[test]
    fn a_history_error_keeps_its_causes_and_reads_as_one_line() {
        let e = StreamError::History {
            release: ReleaseKey::new("a", "db"),
            source: HistoryError::Record {
                revision: 3,
                source: history::RecordCause::from(NoRecord),
            },
        };
        let line =
            "cannot restore the history of a/db: revision 3: the snapshot has no record of it";
        assert_eq!(e.to_string(), line);
        // Each cause's text is already in its error's: nothing repeats.
        assert_eq!(crate::errors::one_line(&e), line);
        let history = std::error::Error::source(&e).unwrap();
        assert!(history.is::<HistoryError>());
        assert!(std::error::Error::source(history).unwrap().is::<NoRecord>());
    }
}
