//! Snapshot format v1: a gzip-compressed tar archive whose first entry is
//! `index.json`, followed by one entry per release revision in index order.
//!
//! The writer is deterministic (fixed headers, sorted entries) and streaming:
//! it holds one record at a time. The reader treats its input as hostile: it
//! checks every entry against the index, refuses unsafe entries, enforces size
//! limits before reading, and rejects data after the end of the archive.
//! See `docs/FORMAT.md`.

mod index;
mod reader;
pub mod v2;
mod writer;

use std::io;

pub use index::{
    Cluster, Entry, FORMAT_NAME, FORMAT_V1, FORMAT_V2, FORMAT_VERSION, INDEX_PATH, Index, IndexCrd,
    IndexRow, Source, SourceKind, crd_path, record_path, sha256_hex, storage_order,
};
pub use reader::{Limits, read_snapshot};
pub(crate) use writer::header as tar_header;
pub use writer::{SnapshotWriter, write_snapshot};

/// Errors from writing or reading a snapshot archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The input is not a helm-bulk snapshot at all.
    #[error("not a helm-bulk snapshot: {0}")]
    NotASnapshot(String),
    /// The snapshot was written in a format version this build does not read.
    #[error(
        "snapshot format version {0} is not supported (this helm-bulk reads versions 1 and 2); upgrade helm-bulk"
    )]
    UnsupportedVersion(u32),
    /// The index is malformed or inconsistent.
    #[error("the snapshot index is invalid: {0}")]
    BadIndex(String),
    /// A namespace or release name cannot be used as an archive path component.
    #[error("invalid {what} `{value}`: only letters, digits, '-', '.' and '_' are allowed")]
    InvalidName {
        /// Which name.
        what: String,
        /// The offending value, escaped.
        value: String,
    },
    /// An archive entry that could escape an extraction directory or is not a plain file.
    #[error("refused archive entry `{path}`: {reason}")]
    UnsafeEntry {
        /// The entry's path, escaped.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An entry that is not the one the index says comes next.
    #[error("unexpected archive entry `{path}`, expected {expected}")]
    UnexpectedEntry {
        /// The entry found.
        path: String,
        /// What the index expected.
        expected: String,
    },
    /// An entry over the size limit (e.g. a decompression bomb).
    #[error("archive entry `{path}` is {size} bytes, over the limit of {limit} bytes")]
    EntryTooLarge {
        /// The entry.
        path: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry whose size or hash differs from its index row.
    #[error("archive entry `{path}` does not match the index: {what} differs")]
    Mismatch {
        /// The entry.
        path: String,
        /// `size` or `sha256`.
        what: &'static str,
    },
    /// The archive ended before every indexed record was seen.
    #[error(
        "the snapshot is incomplete: {missing} record(s) in the index are missing, first `{first}`"
    )]
    MissingEntries {
        /// How many rows had no entry.
        missing: usize,
        /// The first missing path.
        first: String,
    },
    /// A release record that cannot be read.
    #[error("release record `{path}` is invalid: {reason}")]
    BadRecord {
        /// The entry's path.
        path: String,
        /// Why.
        #[source]
        reason: RecordFault,
    },
    /// A release record whose own name, namespace or revision is not its index row's.
    #[error(
        "release record `{path}` does not match the index: its {what} is `{own}`, the index says `{listed}`; refusing the snapshot"
    )]
    RecordMismatch {
        /// The entry's path.
        path: String,
        /// Which field.
        what: &'static str,
        /// The record's own value.
        own: String,
        /// The index row's value.
        listed: String,
    },
    /// A format 2 blob that is malformed, unused, duplicated or missing.
    #[error("blob `{path}` is refused: {reason}")]
    BadBlob {
        /// The blob's path (or the record's, for a missing blob).
        path: String,
        /// Why.
        reason: String,
    },
    /// Bytes after the end of the archive.
    #[error("the snapshot has unexpected data after its end")]
    TrailingData,
    /// The input ended early.
    #[error("the snapshot is truncated")]
    Truncated,
    /// The writer was given records that do not follow its index.
    #[error("snapshot writer: {0}")]
    WriterMisuse(String),
    /// An I/O error, from the underlying stream (including decryption).
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// Why a release record in a snapshot is invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordFault {
    /// A format 2 skeleton that does not rebuild into the record.
    #[error(transparent)]
    Skeleton(#[from] v2::CodecError),
    /// The record is not what its source kind writes (a Helm 3/4 release
    /// JSON, a Helm 2 `hapi.release.Release`).
    #[error("{0}")]
    Content(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<io::Error> for SnapshotError {
    fn from(e: io::Error) -> Self {
        // Every layer below (tar, gzip, age) reports a cut-off input as
        // UnexpectedEof; other errors keep their own description.
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SnapshotError::Truncated
        } else {
            SnapshotError::Io(e)
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod v2_tests;
