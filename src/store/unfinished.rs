//! What is being written and not finished yet, process-wide: the temp files
//! of atomic files and the multipart uploads to buckets. When the process
//! is interrupted, [`abandon`] removes the first and aborts the second, so
//! an interrupted command leaves nothing behind. This is the library's only
//! process-global state about interruption; the command line owns the
//! signal handling (its `interrupt` module).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Temp files being written now.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Keeps a temp file's path in [`UNFINISHED`] while it lives.
pub(crate) struct Unfinished(PathBuf);

impl Unfinished {
    pub(crate) fn new(path: &Path) -> Unfinished {
        let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
        list.push(path.to_path_buf());
        Unfinished(path.to_path_buf())
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|p| p != &self.0);
    }
}

/// Removes the temp file of every [`AtomicFile`](super::AtomicFile) not yet committed. Called
/// when the process is interrupted, just before it exits (destructors do not
/// run then), so that an interrupted save leaves nothing behind.
pub fn remove_unfinished() {
    let list = UNFINISHED.lock().unwrap_or_else(|p| p.into_inner());
    for path in list.iter() {
        let _ = std::fs::remove_file(path);
    }
}

/// Set to `true` when the process is interrupted: uploads in progress abort.
static INTERRUPTED: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();
/// Upload tasks still running, and a wake-up when one ends.
static ACTIVE_UPLOADS: AtomicUsize = AtomicUsize::new(0);
static UPLOAD_ENDED: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub(crate) fn interrupted() -> &'static tokio::sync::watch::Sender<bool> {
    INTERRUPTED.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Counts an upload task while it runs.
pub(crate) struct ActiveUpload;

impl ActiveUpload {
    pub(crate) fn new() -> ActiveUpload {
        ACTIVE_UPLOADS.fetch_add(1, Ordering::SeqCst);
        ActiveUpload
    }
}

impl Drop for ActiveUpload {
    fn drop(&mut self) {
        ACTIVE_UPLOADS.fetch_sub(1, Ordering::SeqCst);
        UPLOAD_ENDED.notify_waiters();
    }
}

/// Makes every upload in progress abort its multipart upload, and waits (at
/// most `limit`) until they have: called when the process is interrupted, so
/// that no parts are left behind in the bucket.
pub async fn abort_uploads(limit: Duration) {
    interrupted().send_replace(true);
    let _ = tokio::time::timeout(limit, async {
        loop {
            let ended = UPLOAD_ENDED.notified();
            if ACTIVE_UPLOADS.load(Ordering::SeqCst) == 0 {
                return;
            }
            ended.await;
        }
    })
    .await;
}

/// Abandons everything unfinished: removes the temp files and aborts the
/// uploads (waiting at most `limit` for the store).
pub async fn abandon(limit: Duration) {
    remove_unfinished();
    abort_uploads(limit).await;
}
