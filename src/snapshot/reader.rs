//! The verifying snapshot reader. Its input is untrusted.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use sha2::Digest;
use zeroize::Zeroizing;

use super::v2::{BlobStore, blob_digest};
use super::{Entry, INDEX_PATH, Index, SnapshotError};

/// Size limits applied before any entry is read into memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted `index.json`, in bytes.
    pub max_index: u64,
    /// Largest accepted record, in bytes. Helm keeps a record in one Secret
    /// (1 MiB of base64 of gzip), which decodes to well under this.
    pub max_record: u64,
    /// Most bytes of zero padding accepted after the end of the tar archive.
    pub max_padding: u64,
    /// Format 2: most bytes of blobs held at once (the reader keeps every
    /// blob it has read until the end of the records).
    pub max_blobs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_index: 64 << 20,
            max_record: 64 << 20,
            max_padding: 1 << 20,
            max_blobs: 1 << 30,
        }
    }
}

/// A path for an error message: control characters escaped, and cut short
/// (a hostile archive can carry very long names).
fn escaped(path: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(path).escape_debug().collect();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// The most bytes the tar reader may consume between two entries: the
/// padding of the previous entry, the header, and any GNU long-name or PAX
/// extension records, which the tar crate reads whole into memory.
const HEADER_BUDGET: u64 = 64 * 1024;

/// Caps how many bytes the tar layer may read before the budget is renewed,
/// so extension headers cannot make it buffer unbounded data.
struct Budgeted<R> {
    inner: R,
    left: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an archive header (long name or PAX extension) is over 64 KiB; refusing it",
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// Refuses paths that are absolute or could climb out of a directory.
fn check_path(raw: &[u8]) -> Result<&str, SnapshotError> {
    let unsafe_entry = |reason| SnapshotError::UnsafeEntry {
        path: escaped(raw),
        reason,
    };
    let path = std::str::from_utf8(raw).map_err(|_| unsafe_entry("path is not UTF-8"))?;
    if path.starts_with('/') || path.starts_with('\\') || path.contains(':') {
        return Err(unsafe_entry("absolute path"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(unsafe_entry("path contains a backslash or NUL"));
    }
    if path
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(unsafe_entry(
            "path contains `..`, `.` or an empty component",
        ));
    }
    Ok(path)
}

fn check_type(entry_type: tar::EntryType, raw: &[u8]) -> Result<(), SnapshotError> {
    let reason = match entry_type {
        tar::EntryType::Regular => return Ok(()),
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char | tar::EntryType::Block => "device",
        tar::EntryType::Fifo => "fifo",
        tar::EntryType::Directory => "directory",
        _ => "not a regular file",
    };
    Err(SnapshotError::UnsafeEntry {
        path: escaped(raw),
        reason,
    })
}

fn read_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    limit: u64,
    budget: &std::cell::Cell<u64>,
) -> Result<Zeroizing<Vec<u8>>, SnapshotError> {
    let size = entry.header().size()?;
    if size > limit {
        return Err(SnapshotError::EntryTooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    // The body may be read whole; the next header gets a fresh budget.
    budget.set(size);
    let mut buf = Zeroizing::new(Vec::with_capacity(size as usize));
    entry.take(size).read_to_end(&mut buf)?;
    if buf.len() as u64 != size {
        return Err(SnapshotError::Truncated);
    }
    Ok(buf)
}

/// Reads and verifies a snapshot, calling `on_entry` for each entry (records,
/// then CRDs) in index order, and returns the index once the whole input has
/// been checked.
///
/// Memory use is bounded by the largest record plus the index. The input is
/// read to its very end, so a truncated, extended or (through the decryption
/// layer) tampered stream is always detected, even when every record matched.
pub fn read_snapshot<R, F>(
    input: R,
    limits: &Limits,
    mut on_entry: F,
) -> Result<Index, SnapshotError>
where
    R: Read,
    F: FnMut(&Index, Entry<'_>, Zeroizing<Vec<u8>>) -> Result<(), SnapshotError>,
{
    let buffered = check_gzip(input)?;
    let budget = std::rc::Rc::new(std::cell::Cell::new(HEADER_BUDGET));
    let mut archive = tar::Archive::new(Budgeted {
        inner: GzDecoder::new(buffered),
        left: budget.clone(),
    });
    let index = {
        let mut entries = archive.entries()?;
        let index = read_index(&mut entries, limits, &budget)?;
        let mut rows = index.entries().peekable();
        // Format 2 (Helm 3/4 records): blobs come before the first record
        // that uses them, and records are rebuilt from them.
        let v2 = index.format_version == super::FORMAT_V2
            && index.source.kind != super::SourceKind::Tiller;
        let mut blobs = BlobStore::default();
        for entry in entries {
            let mut entry = entry?;
            let raw = entry.path_bytes().into_owned();
            check_type(entry.header().entry_type(), &raw)?;
            let path = check_path(&raw)?;
            if let Some(digest) = blob_digest(path).filter(|_| v2) {
                let next = rows.peek();
                read_blob(&mut entry, path, digest, next, &mut blobs, limits, &budget)?;
                continue;
            }
            let Some(row) = rows.next() else {
                return Err(SnapshotError::UnexpectedEntry {
                    path: escaped(&raw),
                    expected: "the end of the archive".to_owned(),
                });
            };
            let data = read_row(&mut entry, path, &row, v2, &mut blobs, limits, &budget)?;
            on_entry(&index, row, data)?;
        }
        let missing: Vec<Entry<'_>> = rows.collect();
        if let Some(first) = missing.first() {
            return Err(SnapshotError::MissingEntries {
                missing: missing.len(),
                first: first.path().to_owned(),
            });
        }
        index
    };
    check_end(archive.into_inner().inner, limits)?;
    Ok(index)
}

/// The input must not be empty and must start with the gzip magic bytes.
fn check_gzip<R: Read>(input: R) -> Result<BufReader<R>, SnapshotError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.is_empty() {
        return Err(SnapshotError::NotASnapshot("the input is empty".to_owned()));
    }
    if !head.starts_with(&[0x1f, 0x8b]) {
        return Err(SnapshotError::NotASnapshot(
            "the data is not gzip-compressed".to_owned(),
        ));
    }
    Ok(buffered)
}

/// The first entry must be a safe, regular `index.json` within
/// `limits.max_index`, holding a valid index.
fn read_index<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    limits: &Limits,
    budget: &std::cell::Cell<u64>,
) -> Result<Index, SnapshotError> {
    let Some(entry) = entries.next() else {
        return Err(SnapshotError::NotASnapshot(
            "the archive is empty".to_owned(),
        ));
    };
    let mut entry = entry?;
    let raw = entry.path_bytes().into_owned();
    check_type(entry.header().entry_type(), &raw)?;
    let path = check_path(&raw)?;
    if path != INDEX_PATH {
        return Err(SnapshotError::NotASnapshot(format!(
            "the first entry is `{}`, not {INDEX_PATH}",
            escaped(&raw)
        )));
    }
    let data = read_entry(&mut entry, path, limits.max_index, budget)?;
    budget.set(HEADER_BUDGET);
    let index: Index = serde_json::from_slice(&data)
        .map_err(|e| SnapshotError::BadIndex(format!("{INDEX_PATH} is not valid: {e}")))?;
    index.validate()?;
    Ok(index)
}

/// Format 2: a blob (`digest` parsed from its name) must be well named, come
/// before a release record (`next`), be stored once, fit the record and
/// total blob limits, and match its digest; it is then kept in `blobs`.
fn read_blob<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    digest: Result<[u8; 32], ()>,
    next: Option<&Entry<'_>>,
    blobs: &mut BlobStore,
    limits: &Limits,
    budget: &std::cell::Cell<u64>,
) -> Result<(), SnapshotError> {
    let refuse = |reason: &str| SnapshotError::BadBlob {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let digest = digest
        .map_err(|()| refuse("its name is not blobs/ and 64 lowercase hexadecimal digits"))?;
    if !matches!(next, Some(Entry::Release(_))) {
        return Err(refuse("it comes after the last release record"));
    }
    if blobs.contains(&digest) {
        return Err(refuse("it is stored twice"));
    }
    let size = entry_size(entry, path, limits)?;
    if blobs.bytes().saturating_add(size) > limits.max_blobs {
        return Err(refuse(&format!(
            "the snapshot's blobs are over the limit of {} bytes",
            limits.max_blobs
        )));
    }
    let data = read_entry(entry, path, limits.max_record, budget)?;
    budget.set(HEADER_BUDGET);
    if sha2::Sha256::digest(data.as_slice()).as_slice() != digest {
        return Err(SnapshotError::Mismatch {
            path: path.to_owned(),
            what: "sha256",
        });
    }
    blobs.insert(digest, data);
    Ok(())
}

/// The size an entry's header gives, refused over `limits.max_record`
/// before anything is read.
fn entry_size<R: Read>(
    entry: &tar::Entry<'_, R>,
    path: &str,
    limits: &Limits,
) -> Result<u64, SnapshotError> {
    let size = entry.header().size()?;
    if size > limits.max_record {
        return Err(SnapshotError::EntryTooLarge {
            path: path.to_owned(),
            size,
            limit: limits.max_record,
        });
    }
    Ok(size)
}

/// A record or CRD entry must be the index's next `row`, within
/// `limits.max_record`, of the size and sha256 the index gives; a format 2
/// release record is rebuilt from its skeleton and `blobs` first.
fn read_row<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    row: &Entry<'_>,
    v2: bool,
    blobs: &mut BlobStore,
    limits: &Limits,
    budget: &std::cell::Cell<u64>,
) -> Result<Zeroizing<Vec<u8>>, SnapshotError> {
    if path != row.path() {
        return Err(SnapshotError::UnexpectedEntry {
            // `path` is `raw` itself, checked to be UTF-8.
            path: escaped(path.as_bytes()),
            expected: format!("`{}`", row.path()),
        });
    }
    let size = entry_size(entry, path, limits)?;
    let skeleton = v2 && matches!(row, Entry::Release(_));
    if size != row.size() && !skeleton {
        return Err(SnapshotError::Mismatch {
            path: path.to_owned(),
            what: "size",
        });
    }
    let mut data = read_entry(entry, path, limits.max_record, budget)?;
    budget.set(HEADER_BUDGET);
    if skeleton {
        data = blobs
            .rebuild(&data, row.size(), row.blobs_last_used())
            .map_err(|reason| SnapshotError::BadRecord {
                path: path.to_owned(),
                reason,
            })?;
        if data.len() as u64 != row.size() {
            return Err(SnapshotError::Mismatch {
                path: path.to_owned(),
                what: "size",
            });
        }
    }
    if super::sha256_hex(&data) != row.sha256() {
        return Err(SnapshotError::Mismatch {
            path: path.to_owned(),
            what: "sha256",
        });
    }
    Ok(data)
}

/// After the tar end marker only zero padding (at most `limits.max_padding`
/// bytes) may follow inside the gzip stream, and nothing after the stream.
fn check_end<R: Read>(
    mut gz: GzDecoder<BufReader<R>>,
    limits: &Limits,
) -> Result<(), SnapshotError> {
    // Reading the padding to the end also checks the gzip CRC and length.
    let mut padding = [0u8; 8192];
    let mut seen = 0u64;
    loop {
        let n = gz.read(&mut padding)?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        if seen > limits.max_padding || padding[..n].iter().any(|&b| b != 0) {
            return Err(SnapshotError::TrailingData);
        }
    }
    // Nothing may follow the gzip stream. Reading the source to its end also
    // makes the decryption layer authenticate its final chunk.
    let mut rest = gz.into_inner();
    let mut extra = [0u8; 1];
    match rest.read(&mut extra) {
        Ok(0) => Ok(()),
        Ok(_) => Err(SnapshotError::TrailingData),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(SnapshotError::Io(e)),
        Err(e) => Err(e.into()),
    }
}
