//! Where a snapshot is read from: a file, standard input, or a bucket object
//! (`…/<timestamp>.tar.gz.age` or `…/latest`), and the check of its
//! signature before anything is decrypted. A bucket object whose signature
//! was verified is pinned by its ETag: later reads get exactly that object.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::bucket::{Bucket, BucketError};
use crate::vault::sign::{AllowedSigner, Signer, VerifyError};

/// Why a snapshot cannot be read or its signature checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The bucket.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The signature does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The file, or standard input.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A signature file given explicitly cannot be read.
    #[error("cannot read {}: {cause}", path.display())]
    Signature {
        /// The signature file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A signed snapshot was to be read from standard input.
    #[error(
        "a signed snapshot must be read from a file, not standard input, so its signature can be checked before decrypting"
    )]
    SignedFromStdin,
    /// The async runtime for the bucket's requests did not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl InputError {
    /// The error this one stands for, when it is transparent (for callers
    /// that look at the chain).
    pub fn inner(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InputError::Bucket(e) => Some(e),
            InputError::Verify(e) => Some(e),
            InputError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Where a snapshot is read from.
pub enum SnapshotSource {
    /// A file, or `-` for standard input.
    File(PathBuf),
    /// An object in a bucket.
    Object {
        /// The bucket (scoped to the object's folder).
        bucket: Bucket,
        /// The object key.
        key: String,
        /// The runtime its requests run on.
        runtime: Arc<tokio::runtime::Runtime>,
        /// The ETag of the object whose signature was verified: later reads
        /// must get exactly that object.
        pinned: Mutex<Option<String>>,
    },
}

/// Copies `input` (a snapshot as received, still encrypted) to an unlinked
/// temporary file readable only by this user (0600), so that load can read
/// standard input more than once. Only ciphertext is written: nothing
/// decrypted touches the disk.
pub fn spool(mut input: impl Read) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let mut file = tempfile::tempfile()?;
    std::io::copy(&mut input, &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// A runtime for the async parts (cluster and object storage).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

impl SnapshotSource {
    /// A file path, or a bucket URL (`…/<timestamp>.tar.gz.age` or `…/latest`)
    /// opened with `open_bucket`.
    pub fn resolve(
        arg: &str,
        open_bucket: impl FnOnce(&str) -> Result<Bucket, BucketError>,
    ) -> Result<SnapshotSource, InputError> {
        if !arg.contains("://") {
            return Ok(SnapshotSource::File(PathBuf::from(arg)));
        }
        let runtime = Arc::new(runtime().map_err(InputError::Runtime)?);
        let (bucket, key) = runtime.block_on(open_bucket(arg)?.resolve())?;
        Ok(SnapshotSource::Object {
            bucket,
            key,
            runtime,
            pinned: Mutex::new(None),
        })
    }

    /// A reader over the snapshot's bytes.
    pub fn open(&self) -> Result<Box<dyn Read>, InputError> {
        match self {
            SnapshotSource::File(p) => Ok(super::open_source(p)?),
            SnapshotSource::Object {
                bucket,
                key,
                runtime,
                pinned,
            } => {
                let pin = pinned.lock().ok().and_then(|p| p.clone());
                let (reader, _) = runtime.block_on(bucket.reader(key, pin.as_deref()))?;
                Ok(Box::new(reader))
            }
        }
    }

    /// How to name it in messages.
    pub fn describe(&self) -> String {
        match self {
            SnapshotSource::File(p) => p.display().to_string(),
            SnapshotSource::Object { bucket, key, .. } => format!("{} ({key})", bucket.url()),
        }
    }

    /// Checks the snapshot's detached signature (`signature`, else the
    /// snapshot's path or key with `.sig` appended) against `allowed`,
    /// before anything is decrypted. A bucket object is pinned to the ETag
    /// of the bytes that were verified.
    pub fn verify(
        &self,
        signature: Option<&Path>,
        allowed: &[AllowedSigner],
    ) -> Result<Signer, InputError> {
        match self {
            SnapshotSource::File(file) if file == Path::new("-") => {
                Err(InputError::SignedFromStdin)
            }
            SnapshotSource::File(file) => {
                let sig = signature
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| crate::vault::sign::signature_path(file));
                Ok(crate::vault::sign::verify_file(file, &sig, allowed)?)
            }
            SnapshotSource::Object {
                bucket,
                key,
                runtime,
                pinned,
            } => {
                let sig_key = format!("{key}.sig");
                let text =
                    match signature {
                        Some(p) => Some(std::fs::read_to_string(p).map_err(|cause| {
                            InputError::Signature {
                                path: p.to_path_buf(),
                                cause,
                            }
                        })?),
                        None => runtime
                            .block_on(bucket.get_small(&sig_key))?
                            .map(|b| String::from_utf8_lossy(&b).into_owned()),
                    };
                let (mut reader, etag) = runtime.block_on(bucket.reader(key, None))?;
                let signer = crate::vault::sign::verify_stream(
                    &mut reader,
                    key,
                    text.as_deref(),
                    &sig_key,
                    allowed,
                )?;
                if let Ok(mut p) = pinned.lock() {
                    *p = etag;
                }
                Ok(signer)
            }
        }
    }
}
