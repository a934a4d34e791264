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

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

mod aws_profile;
mod keys;
mod retention;
mod stream;

pub use super::unfinished::abort_uploads;
use super::unfinished::{ActiveUpload, interrupted};
use aws_profile::aws_profile_credentials;
use keys::Named;
pub use keys::{Listed, SNAPSHOT_SUFFIX, is_timestamp, newest, parse_snapshot_key, timestamp_of};
pub use retention::prune_plan;
use stream::Chunk;
pub use stream::{ObjectReader, Upload, UploadHandle, UploadWriter};
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
    /// The store refused or failed a request: what was being done, then why.
    #[error("{what}{}{source}", if what.is_empty() { "" } else { ": " })]
    Request {
        /// What was being done (`cannot write <key>`); may be empty.
        what: String,
        /// The store's error.
        source: StoreFailure,
    },
    /// The task uploading a snapshot panicked or was cancelled.
    #[error("the upload task failed: {0}")]
    UploadTask(#[source] tokio::task::JoinError),
    /// An upload stopped by an interruption (Ctrl-C, SIGTERM), and aborted.
    #[error("interrupted; the upload was aborted")]
    Interrupted,
    /// An upload whose writer went away before the end of the snapshot,
    /// and aborted.
    #[error("the upload was interrupted and aborted")]
    Unfinished,
    /// An object that changed since its signature was checked (its ETag
    /// no longer matches).
    #[error("{key} changed after its signature was checked; refusing it")]
    Changed {
        /// The object's key.
        key: String,
    },
    /// No snapshot matched.
    #[error("no snapshot found at {0}")]
    NotFound(String),
}

/// An object store error. Its text is the store's error with its causes
/// on one line, shortened (cloud error bodies can be long XML); the error
/// itself is [`StoreFailure::cause`]. It reports no `source()`: its text
/// already holds the chain.
#[derive(Debug)]
pub struct StoreFailure(object_store::Error);

impl StoreFailure {
    /// The store's error.
    pub fn cause(&self) -> &object_store::Error {
        &self.0
    }
}

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for StoreFailure {}

impl BucketError {
    /// A failed request: `what` was being done (may be empty).
    fn request(what: impl Into<String>, e: object_store::Error) -> BucketError {
        BucketError::Request {
            what: what.into(),
            source: StoreFailure(e),
        }
    }
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

/// A bucket (and prefix) holding snapshots.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
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

    /// The object key for a new snapshot of `cluster` taken at `timestamp`.
    pub fn snapshot_key(&self, cluster: &str, timestamp: &str) -> String {
        keys::snapshot_key(&self.prefix, cluster, timestamp)
    }

    /// Streams an upload: returns a writer for the snapshot bytes and the
    /// task uploading them. Call [`Upload::finish`] after the last byte; if the
    /// writer is dropped without it, the multipart upload is aborted.
    pub async fn upload(&self, key: &str) -> Result<Upload, BucketError> {
        let path = Path::from(key);
        let multipart = self.store.put_multipart(&path).await.map_err(|e| {
            BucketError::request(format!("cannot start uploading to {}", self.url), e)
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
                    return Err(BucketError::Interrupted);
                };
                let Some(chunk) = chunk else { break };
                match chunk {
                    Chunk::Data(b) => {
                        if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                            let _ = w.abort().await;
                            return Err(BucketError::request(format!("upload to {url} failed"), e));
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
                return Err(BucketError::Unfinished);
            }
            w.finish()
                .await
                .map_err(|e| BucketError::request(format!("upload to {url} failed"), e))?;
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
            .map_err(|e| BucketError::request(format!("cannot write {key}"), e))
    }

    /// Reads a small object whole (signatures); `None` when it does not exist.
    pub async fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, BucketError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => r
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| BucketError::request("", e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BucketError::request("", e)),
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
                object_store::Error::Precondition { .. } => BucketError::Changed {
                    key: key.to_owned(),
                },
                other => BucketError::request(format!("cannot read {key}"), other),
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
            let meta =
                item.map_err(|e| BucketError::request(format!("cannot list {}", self.url), e))?;
            objects.push(meta);
        }
        Ok(keys::snapshots(
            objects
                .into_iter()
                .map(|m| (m.location.to_string(), m.size))
                .collect(),
        ))
    }

    /// Resolves what `load --from`/`show` name: a full object key, or
    /// `…/latest` (the newest snapshot under that prefix).
    pub async fn resolve(&self) -> Result<(Bucket, String), BucketError> {
        let path = self.prefix.to_string();
        let scoped = |prefix: &str, url: &str| Bucket {
            store: self.store.clone(),
            prefix: Path::from(prefix),
            url: url.to_owned(),
        };
        match keys::named(&path) {
            Named::Latest { parent } => {
                let parent_url = keys::latest_parent_url(&self.url);
                let scoped = scoped(parent, parent_url);
                let listed = scoped.list().await?;
                let key = keys::newest(&listed)
                    .map(|l| l.key.clone())
                    .ok_or_else(|| BucketError::NotFound(parent_url.to_owned()))?;
                Ok((scoped, key))
            }
            Named::Object { parent } => Ok((scoped(parent, &self.url), path.clone())),
            Named::Other => Err(BucketError::Url {
                url: self.url.clone(),
                why: format!(
                    "name a snapshot object (…{SNAPSHOT_SUFFIX}) or end the URL with /latest"
                ),
            }),
        }
    }

    /// Copies an object within the store, replacing `to` (server-side).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), BucketError> {
        self.store
            .copy(&Path::from(from), &Path::from(to))
            .await
            .map_err(|e| BucketError::request(format!("cannot copy {from} to {to}"), e))
    }

    /// Deletes one object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BucketError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BucketError::request(format!("cannot delete {key}"), e)),
        }
    }

    /// Deletes a snapshot and its signature.
    pub async fn delete_snapshot(&self, key: &str) -> Result<(), BucketError> {
        for k in [format!("{key}.sig"), key.to_owned()] {
            match self.store.delete(&Path::from(k.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(BucketError::request(format!("cannot delete {k}"), e));
                }
            }
        }
        Ok(())
    }
}
