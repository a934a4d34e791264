//! Object storage for snapshots: `s3://`, `gs://`, `az://` and `file://`
//! URLs through the object_store crate, with each cloud's standard
//! credential chain (AWS_* variables and shared credentials profiles,
//! GOOGLE_APPLICATION_CREDENTIALS, AZURE_*).
//!
//! Objects are named `<prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age`, plus
//! `<same>.sig` when signed: nothing about the releases leaks into names or
//! metadata. Uploads are multipart and streamed; one that does not finish is
//! aborted, so no object that looks complete is left behind, and the
//! signature is written only after its snapshot.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

pub use super::unfinished::abort_uploads;
use super::unfinished::{ActiveUpload, interrupted};

/// The suffix of snapshot objects.
pub const SNAPSHOT_SUFFIX: &str = ".tar.gz.age";
/// Upload part size: S3's minimum is 5 MiB.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once; memory use is about PART_SIZE × (this + 1).
const PARTS_IN_FLIGHT: usize = 2;

/// Errors from object storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    /// The URL cannot be used.
    #[error("invalid bucket URL `{url}`: {why}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The store refused or failed a request.
    #[error("{0}")]
    Store(String),
    /// No snapshot matched.
    #[error("no snapshot found at {0}")]
    NotFound(String),
}

fn describe(e: &object_store::Error) -> String {
    let head = match e {
        object_store::Error::NotFound { path, .. } => format!("object {path} not found"),
        other => other.to_string(),
    };
    let msg = crate::errors::with_causes(head, std::error::Error::source(e));
    // Cloud error bodies can be long XML; keep the line readable.
    let msg = msg.replace('\n', " ");
    if msg.len() > 400 {
        format!(
            "{}…",
            &msg[..msg
                .char_indices()
                .take_while(|(i, _)| *i < 400)
                .last()
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(0)]
        )
    } else {
        msg
    }
}

/// A snapshot object found by listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// The object key.
    pub key: String,
    /// The cluster name part of the key.
    pub cluster: String,
    /// The timestamp part of the key (`YYYYMMDDTHHMMSSZ`).
    pub timestamp: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether `<key>.sig` exists.
    pub signed: bool,
}

/// A bucket (and prefix) holding snapshots.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

fn aws_profile_credentials(
    mut b: object_store::aws::AmazonS3Builder,
) -> object_store::aws::AmazonS3Builder {
    use object_store::aws::AmazonS3ConfigKey as K;
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return b;
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let section = |path: Option<std::path::PathBuf>, names: &[String]| -> Vec<(String, String)> {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return Vec::new();
        };
        let mut inside = false;
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                let name = line.trim_matches(|c| c == '[' || c == ']').trim();
                inside = names.iter().any(|n| n == name);
            } else if inside && let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        out
    };
    for (k, v) in section(creds, std::slice::from_ref(&profile)) {
        match k.as_str() {
            "aws_access_key_id" => b = b.with_config(K::AccessKeyId, v),
            "aws_secret_access_key" => b = b.with_config(K::SecretAccessKey, v),
            "aws_session_token" => b = b.with_config(K::Token, v),
            _ => {}
        }
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        for (k, v) in section(config, &[format!("profile {profile}"), profile.clone()]) {
            if k == "region" {
                b = b.with_config(K::Region, v);
            }
        }
    }
    b
}

impl Bucket {
    /// Opens `url` (`s3://bucket/prefix`, `gs://…`, `az://container/prefix`,
    /// `file:///dir`). `endpoint` points S3 at a compatible store.
    pub fn open(url: &str, endpoint: Option<&str>) -> Result<Bucket, BucketError> {
        let bad = |why: String| BucketError::Url {
            url: url.to_owned(),
            why,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let key_prefix = parsed.path().trim_matches('/').to_owned();
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match parsed.scheme() {
            "s3" | "s3a" => {
                let bucket = parsed
                    .host_str()
                    .ok_or_else(|| bad("no bucket name".to_owned()))?;
                let mut b = aws_profile_credentials(object_store::aws::AmazonS3Builder::from_env())
                    .with_bucket_name(bucket);
                if let Some(ep) = endpoint {
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(ep.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                (
                    Arc::new(b.build().map_err(|e| bad(describe(&e)))?),
                    key_prefix,
                )
            }
            "gs" => {
                let bucket = parsed
                    .host_str()
                    .ok_or_else(|| bad("no bucket name".to_owned()))?;
                let b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket);
                (
                    Arc::new(b.build().map_err(|e| bad(describe(&e)))?),
                    key_prefix,
                )
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
                let prefix = match parsed.scheme() {
                    // az://container/prefix: the container is the host.
                    "az" | "azure" => key_prefix,
                    _ => key_prefix,
                };
                (Arc::new(b.build().map_err(|e| bad(describe(&e)))?), prefix)
            }
            "file" => {
                parsed
                    .to_file_path()
                    .map_err(|()| bad("not a local absolute path".to_owned()))?;
                (
                    Arc::new(object_store::local::LocalFileSystem::new()),
                    key_prefix,
                )
            }
            other => {
                return Err(bad(format!(
                    "unsupported scheme `{other}`; use s3://, gs://, az:// or file://"
                )));
            }
        };
        Ok(Bucket {
            store,
            prefix: Path::from(prefix),
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL this bucket was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, rest: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rest.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// The object key for a new snapshot of `cluster` taken at `timestamp`.
    pub fn snapshot_key(&self, cluster: &str, timestamp: &str) -> String {
        self.key(&format!("{cluster}/{timestamp}{SNAPSHOT_SUFFIX}"))
            .to_string()
    }

    /// Streams an upload: returns a writer for the snapshot bytes and the
    /// task uploading them. Call [`Upload::finish`] after the last byte; if the
    /// writer is dropped without it, the multipart upload is aborted.
    pub async fn upload(&self, key: &str) -> Result<Upload, BucketError> {
        let path = Path::from(key);
        let multipart = self.store.put_multipart(&path).await.map_err(|e| {
            BucketError::Store(format!(
                "cannot start uploading to {}: {}",
                self.url,
                describe(&e)
            ))
        })?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let url = self.url.clone();
        let mut stop = interrupted().subscribe();
        let active = ActiveUpload::new();
        let task = tokio::spawn(async move {
            let _active = active;
            let mut w = WriteMultipart::new_with_chunk_size(multipart, PART_SIZE);
            let mut total = 0u64;
            let mut complete = false;
            loop {
                let received = tokio::select! {
                    chunk = rx.recv() => Some(chunk),
                    _ = stop.wait_for(|&stop| stop) => None,
                };
                let Some(chunk) = received else {
                    let _ = w.abort().await;
                    return Err(BucketError::Store(
                        "interrupted; the upload was aborted".to_owned(),
                    ));
                };
                let Some(chunk) = chunk else { break };
                match chunk {
                    Chunk::Data(b) => {
                        if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                            let _ = w.abort().await;
                            return Err(BucketError::Store(format!(
                                "upload to {url} failed: {}",
                                describe(&e)
                            )));
                        }
                        total += b.len() as u64;
                        w.put(b);
                    }
                    Chunk::Done => {
                        complete = true;
                        break;
                    }
                }
            }
            if !complete {
                let _ = w.abort().await;
                return Err(BucketError::Store(
                    "the upload was interrupted and aborted".to_owned(),
                ));
            }
            w.finish().await.map_err(|e| {
                BucketError::Store(format!("upload to {url} failed: {}", describe(&e)))
            })?;
            Ok(total)
        });
        Ok(Upload {
            writer: UploadWriter {
                tx: Some(tx),
                buf: Vec::with_capacity(1 << 20),
            },
            task,
            key: key.to_owned(),
        })
    }

    /// Writes a small object in one request (signatures).
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), BucketError> {
        self.store
            .put(&Path::from(key), data.into())
            .await
            .map(|_| ())
            .map_err(|e| BucketError::Store(format!("cannot write {key}: {}", describe(&e))))
    }

    /// Reads a small object whole (signatures); `None` when it does not exist.
    pub async fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, BucketError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| BucketError::Store(describe(&e))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BucketError::Store(describe(&e))),
        }
    }

    /// A blocking reader streaming the object (for the decryption pipeline),
    /// and the object's ETag. With `pinned`, the read succeeds only if the
    /// object still has that ETag (so what was verified is what is read).
    pub async fn reader(
        &self,
        key: &str,
        pinned: Option<&str>,
    ) -> Result<(ObjectReader, Option<String>), BucketError> {
        let options = object_store::GetOptions {
            if_match: pinned.map(str::to_owned),
            ..Default::default()
        };
        let r = self
            .store
            .get_opts(&Path::from(key), options)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    BucketError::NotFound(format!("{}/{key}", self.url))
                }
                object_store::Error::Precondition { .. } => BucketError::Store(format!(
                    "{key} changed after its signature was checked; refusing it"
                )),
                other => BucketError::Store(format!("cannot read {key}: {}", describe(&other))),
            })?;
        let etag = r.meta.e_tag.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        let mut stream = r.into_stream();
        tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let item = item.map_err(|e| io::Error::other(describe(&e)));
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok((
            ObjectReader {
                rx,
                current: Bytes::new(),
            },
            etag,
        ))
    }

    /// Every snapshot under the prefix, oldest first.
    pub async fn list(&self) -> Result<Vec<Listed>, BucketError> {
        let prefix = if self.prefix.as_ref().is_empty() {
            None
        } else {
            Some(&self.prefix)
        };
        let mut objects = Vec::new();
        let mut stream = self.store.list(prefix);
        while let Some(item) = stream.next().await {
            let meta = item.map_err(|e| {
                BucketError::Store(format!("cannot list {}: {}", self.url, describe(&e)))
            })?;
            objects.push(meta);
        }
        let sigs: std::collections::HashSet<String> = objects
            .iter()
            .map(|m| m.location.to_string())
            .filter(|k| k.ends_with(".sig"))
            .collect();
        let mut out: Vec<Listed> = objects
            .into_iter()
            .filter_map(|m| {
                let key = m.location.to_string();
                let (cluster, timestamp) = parse_snapshot_key(&key)?;
                Some(Listed {
                    signed: sigs.contains(&format!("{key}.sig")),
                    cluster: cluster.to_owned(),
                    timestamp: timestamp.to_owned(),
                    size: m.size,
                    key,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.timestamp, &a.cluster).cmp(&(&b.timestamp, &b.cluster)));
        Ok(out)
    }

    /// Resolves what `load --from`/`show` name: a full object key, or
    /// `…/latest` (the newest snapshot under that prefix).
    pub async fn resolve(&self) -> Result<(Bucket, String), BucketError> {
        let path = self.prefix.to_string();
        if let Some(parent) = path.strip_suffix("latest").map(|p| p.trim_end_matches('/')) {
            let parent_url = self
                .url
                .trim_end_matches("latest")
                .trim_end_matches('/')
                .to_owned();
            let scoped = Bucket {
                store: self.store.clone(),
                prefix: Path::from(parent),
                url: parent_url.clone(),
            };
            let newest = scoped
                .list()
                .await?
                .into_iter()
                .max_by(|a, b| a.timestamp.cmp(&b.timestamp));
            let key = newest
                .map(|l| l.key)
                .ok_or(BucketError::NotFound(parent_url))?;
            return Ok((scoped, key));
        }
        if path.ends_with(SNAPSHOT_SUFFIX) {
            let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            return Ok((
                Bucket {
                    store: self.store.clone(),
                    prefix: Path::from(parent),
                    url: self.url.clone(),
                },
                path,
            ));
        }
        Err(BucketError::Url {
            url: self.url.clone(),
            why: format!("name a snapshot object (…{SNAPSHOT_SUFFIX}) or end the URL with /latest"),
        })
    }

    /// Copies an object within the store, replacing `to` (server-side).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), BucketError> {
        self.store
            .copy(&Path::from(from), &Path::from(to))
            .await
            .map_err(|e| {
                BucketError::Store(format!("cannot copy {from} to {to}: {}", describe(&e)))
            })
    }

    /// Deletes one object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BucketError::Store(format!(
                "cannot delete {key}: {}",
                describe(&e)
            ))),
        }
    }

    /// Deletes a snapshot and its signature.
    pub async fn delete_snapshot(&self, key: &str) -> Result<(), BucketError> {
        for k in [format!("{key}.sig"), key.to_owned()] {
            match self.store.delete(&Path::from(k.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(BucketError::Store(format!(
                        "cannot delete {k}: {}",
                        describe(&e)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The cluster and timestamp of a snapshot object key
/// (`<prefix>/<cluster>/<YYYYMMDDTHHMMSSZ>.tar.gz.age`), or `None` for any
/// other object (signatures, foreign files).
pub fn parse_snapshot_key(key: &str) -> Option<(&str, &str)> {
    let (dir, file) = key.rsplit_once('/')?;
    let cluster = dir.rsplit('/').next()?;
    let timestamp = file.strip_suffix(SNAPSHOT_SUFFIX)?;
    if cluster.is_empty() || !is_timestamp(timestamp) {
        return None;
    }
    Some((cluster, timestamp))
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// A snapshot timestamp for object names, from an RFC 3339 time.
pub fn timestamp_of(rfc3339: &str) -> String {
    match crate::timefmt::parse_rfc3339(rfc3339) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => "19700101T000000Z".to_owned(),
    }
}

enum Chunk {
    Data(Bytes),
    Done,
}

/// An upload in progress.
pub struct Upload {
    /// Where the snapshot bytes go.
    pub writer: UploadWriter,
    task: tokio::task::JoinHandle<Result<u64, BucketError>>,
    /// The object key.
    pub key: String,
}

impl Upload {
    /// Splits into the writer and a handle that completes the upload.
    pub fn split(self) -> (UploadWriter, UploadHandle) {
        (
            self.writer,
            UploadHandle {
                task: self.task,
                key: self.key,
            },
        )
    }
}

/// Waits for an upload to complete.
pub struct UploadHandle {
    task: tokio::task::JoinHandle<Result<u64, BucketError>>,
    /// The object key.
    pub key: String,
}

impl UploadHandle {
    /// Waits for the upload; it completes only if the writer was committed.
    pub async fn wait(self) -> Result<u64, BucketError> {
        self.task
            .await
            .map_err(|e| BucketError::Store(format!("the upload task failed: {e}")))?
    }
}

/// The blocking writer side of an upload (used from the snapshot writer thread).
pub struct UploadWriter {
    tx: Option<tokio::sync::mpsc::Sender<Chunk>>,
    buf: Vec<u8>,
}

impl UploadWriter {
    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("the upload is already finished"))?;
        tx.blocking_send(chunk)
            .map_err(|_| io::Error::other("the upload stopped"))
    }

    /// Sends the last bytes and marks the upload complete.
    pub fn commit(mut self) -> io::Result<()> {
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            self.send(Chunk::Data(Bytes::from(rest)))?;
        }
        self.send(Chunk::Done)?;
        self.tx = None;
        Ok(())
    }
}

impl UploadWriter {
    /// [`commit`](Self::commit) from async code.
    pub async fn commit_async(mut self) -> io::Result<()> {
        let tx = self
            .tx
            .take()
            .ok_or_else(|| io::Error::other("the upload is already finished"))?;
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            tx.send(Chunk::Data(Bytes::from(rest)))
                .await
                .map_err(|_| io::Error::other("the upload stopped"))?;
        }
        tx.send(Chunk::Done)
            .await
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 20));
            self.send(Chunk::Data(Bytes::from(full)))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking reader over a streamed object.
pub struct ObjectReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Which snapshots `prune` deletes: all but the newest `keep_last` and the
/// newest of each of the `keep_daily` most recent days, per cluster.
pub fn prune_plan(listed: &[Listed], keep_last: usize, keep_daily: usize) -> Vec<Listed> {
    let mut by_cluster: std::collections::BTreeMap<&str, Vec<&Listed>> = Default::default();
    for l in listed {
        by_cluster.entry(&l.cluster).or_default().push(l);
    }
    let mut delete = Vec::new();
    for (_, mut snaps) in by_cluster {
        snaps.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
        let mut keep: std::collections::HashSet<&str> = snaps
            .iter()
            .take(keep_last)
            .map(|l| l.key.as_str())
            .collect();
        let mut days = Vec::new();
        for l in &snaps {
            let day = &l.timestamp[..8];
            if days.len() < keep_daily && !days.contains(&day) {
                days.push(day);
                keep.insert(&l.key);
            }
        }
        delete.extend(
            snaps
                .into_iter()
                .filter(|l| !keep.contains(l.key.as_str()))
                .cloned(),
        );
    }
    delete.sort_by(|a, b| a.key.cmp(&b.key));
    delete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(cluster: &str, ts: &str) -> Listed {
        Listed {
            key: format!("p/{cluster}/{ts}{SNAPSHOT_SUFFIX}"),
            cluster: cluster.into(),
            timestamp: ts.into(),
            size: 1,
            signed: false,
        }
    }

    #[test]
    fn prune_keeps_last_and_daily_per_cluster() {
        let listed = vec![
            l("a", "20260101T010000Z"),
            l("a", "20260101T020000Z"),
            l("a", "20260102T010000Z"),
            l("a", "20260103T010000Z"),
            l("a", "20260103T020000Z"),
            l("b", "20260101T010000Z"),
        ];
        let del: Vec<String> = prune_plan(&listed, 1, 2)
            .into_iter()
            .map(|x| x.timestamp)
            .collect();
        // keep-last 1: a 0103T02; daily 2: 0103 (T02) and 0102; b keeps its only one.
        assert_eq!(
            del,
            ["20260101T010000Z", "20260101T020000Z", "20260103T010000Z"]
        );
        assert!(prune_plan(&listed, 10, 0).is_empty());
    }

    #[test]
    fn timestamps() {
        assert!(is_timestamp("20261126T164600Z"));
        assert!(!is_timestamp("2026-11-26"));
        assert_eq!(timestamp_of("2026-11-26T16:46:00Z"), "20261126T164600Z");
    }
}
