//! The deterministic, streaming snapshot writer.

use std::collections::HashSet;
use std::io::Write;

use flate2::{Compression, GzBuilder, write::GzEncoder};

use super::{INDEX_PATH, Index, SnapshotError};
use crate::release::ReleaseRecord;

/// gzip level: the same as `gzip -6`, the default of gzip(1).
const GZIP_LEVEL: u32 = 6;

/// Writes a snapshot: the index first, then each record in index order.
///
/// The index must be complete before the first record is written (the
/// cluster source reads a consistent list twice to achieve this), so the writer
/// only ever holds the record being appended. Every record is checked against
/// its index row as it is written.
pub struct SnapshotWriter<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
    rows: Vec<(String, u64, String)>,
    next: usize,
    /// Format 2 for Helm 3/4 records: how many rows are release records
    /// (to split into skeleton and blobs), and the blobs already written.
    blobs: Option<(usize, HashSet<[u8; 32]>)>,
    /// Format 2: each release row's `blobsLastUsed`, in row order.
    last_used: Vec<Vec<String>>,
}

/// The tar header of every entry: fixed mode, owner and time, so the same
/// snapshot gives the same bytes.
pub(crate) fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot on `out` and writes the index.
    pub fn new(out: W, index: &Index) -> Result<Self, SnapshotError> {
        index.validate()?;
        let gz = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(out, Compression::new(GZIP_LEVEL));
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        let json = serde_json::to_vec_pretty(index)
            .map_err(|e| SnapshotError::WriterMisuse(format!("cannot encode the index: {e}")))?;
        let mut h = header(json.len() as u64);
        tar.append_data(&mut h, INDEX_PATH, json.as_slice())?;
        let rows = index
            .entries()
            .map(|e| (e.path().to_owned(), e.size(), e.sha256().to_owned()))
            .collect();
        let blobs = (index.format_version == super::FORMAT_V2
            && index.source.kind != super::SourceKind::Tiller)
            .then(|| (index.releases.len(), HashSet::new()));
        let last_used = index
            .releases
            .iter()
            .map(|r| r.blobs_last_used.clone())
            .collect();
        Ok(SnapshotWriter {
            tar,
            rows,
            next: 0,
            blobs,
            last_used,
        })
    }

    /// The archive path the next record must have, if any is still expected.
    pub fn expected(&self) -> Option<&str> {
        self.rows.get(self.next).map(|r| r.0.as_str())
    }

    /// Appends the next entry (a record, then the CRDs); it must match the
    /// next entry of the index.
    pub fn append(&mut self, path: &str, data: &[u8]) -> Result<(), SnapshotError> {
        let Some((want_path, size, sha)) = self.rows.get(self.next) else {
            return Err(SnapshotError::WriterMisuse(format!(
                "record `{path}` is not in the index"
            )));
        };
        if want_path != path {
            return Err(SnapshotError::WriterMisuse(format!(
                "record `{path}` given where the index expects `{want_path}`"
            )));
        }
        if *size != data.len() as u64 || *sha != super::sha256_hex(data) {
            return Err(SnapshotError::WriterMisuse(format!(
                "record `{path}` changed since the index was made"
            )));
        }
        match &mut self.blobs {
            Some((records, written)) if self.next < *records => {
                // Format 2: the blobs this record is the first to use, then
                // its skeleton.
                let encoded = super::v2::encode(data).map_err(|e| {
                    SnapshotError::WriterMisuse(format!(
                        "record `{path}` cannot be stored in format 2 ({e}); this is a helm-bulk bug, save with --format 1"
                    ))
                })?;
                for blob in &encoded.blobs {
                    if written.insert(blob.digest) {
                        let mut h = header(blob.data.len() as u64);
                        self.tar.append_data(
                            &mut h,
                            super::v2::blob_path(&blob.digest),
                            &*blob.data,
                        )?;
                    }
                }
                let mut h = header(encoded.skeleton.len() as u64);
                self.tar
                    .append_data(&mut h, path, encoded.skeleton.as_slice())?;
                // Blobs whose last use this was are forgotten: a reader drops
                // them, so a later use (none, when the index is right) would
                // write them again.
                for hex in self.last_used.get(self.next).into_iter().flatten() {
                    let blob = encoded
                        .blobs
                        .iter()
                        .find(|b| hex::encode(b.digest) == *hex)
                        .ok_or_else(|| {
                            SnapshotError::WriterMisuse(format!(
                                "the index lists blob {hex} as last used by `{path}`, which does not use it"
                            ))
                        })?;
                    written.remove(&blob.digest);
                }
            }
            _ => {
                let mut h = header(data.len() as u64);
                self.tar.append_data(&mut h, path, data)?;
            }
        }
        self.next += 1;
        Ok(())
    }

    /// Ends the archive and the gzip stream and returns the output.
    pub fn finish(self) -> Result<W, SnapshotError> {
        if let Some((path, _, _)) = self.rows.get(self.next) {
            return Err(SnapshotError::WriterMisuse(format!(
                "finished with {} record(s) still missing, first `{path}`",
                self.rows.len() - self.next
            )));
        }
        let gz = self.tar.into_inner()?;
        Ok(gz.finish()?)
    }
}

/// Writes a complete snapshot of `records` (in any order) with the metadata of
/// `index` (its rows are replaced). Convenient when the records are already in
/// memory; sources that stream use [`SnapshotWriter`] directly.
pub fn write_snapshot<W: Write>(
    out: W,
    mut index: Index,
    records: &[ReleaseRecord],
) -> Result<W, SnapshotError> {
    let kind = index.source.kind;
    let mut order: Vec<&ReleaseRecord> = records.iter().collect();
    order.sort_by_cached_key(|r| {
        let s = &r.summary;
        super::storage_order(&s.namespace, &s.name, s.revision)
    });
    index.releases = order
        .iter()
        .map(|r| r.index_row(kind))
        .collect::<Result<_, _>>()?;
    if index.format_version == super::FORMAT_V2 && kind != super::SourceKind::Tiller {
        let mut lifetimes = super::v2::Lifetimes::default();
        for (record, row) in order.iter().zip(&index.releases) {
            lifetimes.add(row.sort_key(), &record.data);
        }
        lifetimes.assign(&mut index.releases);
    }
    let mut w = SnapshotWriter::new(out, &index)?;
    for (record, row) in order.iter().zip(&index.releases) {
        w.append(&row.path, &record.data)?;
    }
    w.finish()
}
