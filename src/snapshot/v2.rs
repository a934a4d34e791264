//! Format version 2: Helm 3/4 records with their large, repeating JSON values
//! (chart templates and files, default values, schema, metadata, user values,
//! manifest, hook manifests, notes) moved into content-addressed blobs.
//!
//! A record is rebuilt byte for byte by splicing: the *skeleton* stored for a
//! record is the record's JSON with the text of some values replaced by a
//! reference string, and the reader puts the blob's text back in place of the
//! reference. Nothing is re-serialized, so key order, spacing and fields
//! helm-bulk does not know are kept exactly. See `docs/FORMAT.md`, section 13.
//!
//! Which values: those at the [designated paths](designated_spans), and of
//! them every one whose JSON text is at least [`MIN_BLOB`] bytes long or has
//! the form of a reference. So a designated value that looks like a
//! reference is always replaced itself: a reference in a skeleton is never
//! ambiguous.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use base64::Engine;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A designated value whose JSON text is at least this long is stored as a
/// blob. Shorter ones cost less inline than a blob's tar header and reference.
pub const MIN_BLOB: usize = 128;

/// The archive directory of blobs: `blobs/<64 hex digits>`.
pub const BLOB_DIR: &str = "blobs/";

const REF_JSON: &str = "\"sha256:";
const REF_BASE64: &str = "\"base64:sha256:";

/// How a blob stands for the value it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobForm {
    /// The blob is the value's JSON text, verbatim (reference `"sha256:<hex>"`).
    Json,
    /// The value is a JSON string of standard, padded base64 (Go's encoding of
    /// `[]byte`); the blob is the decoded bytes (reference `"base64:sha256:<hex>"`).
    Base64,
}

/// One designated value in a JSON document: its byte range and whether it may
/// be stored decoded from base64.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    base64: bool,
}

/// The members of a JSON object, duplicates included, values as raw text.
struct RawObject<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(RawObject(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

fn object(raw: &RawValue) -> Option<RawObject<'_>> {
    serde_json::from_str(raw.get()).ok()
}

fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// The designated values of a Helm release JSON document, in document order:
///
/// | path | form |
/// |---|---|
/// | `chart.metadata`, `chart.lock`, `chart.values` | JSON |
/// | `chart.schema`, `chart.templates[*].data`, `chart.files[*].data` | base64 or JSON |
/// | `config`, `manifest`, `hooks[*].manifest`, `info.notes` | JSON |
///
/// A member that is not where the table says (not an object, not an array)
/// is simply not designated. `doc` must be valid JSON.
fn designated_spans(doc: &[u8]) -> Result<Vec<Span>, String> {
    let top: RawObject<'_> = match serde_json::from_slice::<&RawValue>(doc) {
        Ok(raw) => match object(raw) {
            Some(o) => o,
            None => return Ok(Vec::new()),
        },
        Err(e) => return Err(format!("not valid JSON: {e}")),
    };
    let base = doc.as_ptr() as usize;
    let mut spans = Vec::new();
    let mut push = |raw: &RawValue, base64: bool| {
        let start = raw.get().as_ptr() as usize - base;
        spans.push(Span {
            start,
            end: start + raw.get().len(),
            base64,
        });
    };
    let each_member = |list: &RawValue, key: &str, push: &mut dyn FnMut(&RawValue)| {
        for item in array(list).unwrap_or_default() {
            if let Some(o) = object(item) {
                for (k, v) in &o.0 {
                    if k == key {
                        push(v);
                    }
                }
            }
        }
    };
    for (key, value) in &top.0 {
        match key.as_str() {
            "config" | "manifest" => push(value, false),
            "info" => {
                for (k, v) in object(value).map(|o| o.0).unwrap_or_default() {
                    if k == "notes" {
                        push(v, false);
                    }
                }
            }
            "hooks" => each_member(value, "manifest", &mut |v| push(v, false)),
            "chart" => {
                for (k, v) in object(value).map(|o| o.0).unwrap_or_default() {
                    match k.as_str() {
                        "metadata" | "lock" | "values" => push(v, false),
                        "schema" => push(v, true),
                        "templates" | "files" => each_member(v, "data", &mut |d| push(d, true)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    spans.sort_by_key(|s| s.start);
    Ok(spans)
}

/// The decoded bytes of a JSON string of canonical base64 (what Go writes for
/// `[]byte`): `None` when re-encoding them would not give `text` back exactly.
fn canonical_base64(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let inner = text.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = Zeroizing::new(engine.decode(inner).ok()?);
    if engine.encode(decoded.as_slice()).as_bytes() == inner {
        Some(decoded)
    } else {
        None
    }
}

/// A blob of an encoded record.
pub struct Blob<'a> {
    /// SHA-256 of `data`.
    pub digest: [u8; 32],
    /// The blob's bytes (decoded base64, or a slice of the record).
    pub data: Cow<'a, [u8]>,
}

impl Drop for Blob<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(v) = &mut self.data {
            zeroize::Zeroize::zeroize(v);
        }
    }
}

/// A record split into its skeleton and the blobs it refers to (each once,
/// in the order of their first reference).
pub struct Encoded<'a> {
    /// The record's JSON with designated values replaced by references.
    pub skeleton: Zeroizing<Vec<u8>>,
    /// The distinct blobs the skeleton refers to.
    pub blobs: Vec<Blob<'a>>,
}

/// The blob of one designated value's text, and its reference prefix.
fn blob_of(text: &[u8], base64: bool) -> (&'static str, Blob<'_>) {
    let (prefix, data) = match base64.then(|| canonical_base64(text)).flatten() {
        Some(mut decoded) => (REF_BASE64, Cow::Owned(std::mem::take(&mut *decoded))),
        None => (REF_JSON, Cow::Borrowed(text)),
    };
    let digest: [u8; 32] = Sha256::digest(&data).into();
    (prefix, Blob { digest, data })
}

/// Whether a designated value's text is stored as a blob.
fn is_blob(text: &[u8]) -> bool {
    text.len() >= MIN_BLOB || reference(text).is_some()
}

/// The values of `record` to store as blobs, in document order: the span,
/// the reference prefix and the blob.
fn blob_values(record: &[u8]) -> Result<Vec<(Span, &'static str, Blob<'_>)>, String> {
    let mut out = Vec::new();
    for span in designated_spans(record)? {
        let text = &record[span.start..span.end];
        if is_blob(text) {
            let (prefix, blob) = blob_of(text, span.base64);
            out.push((span, prefix, blob));
        }
    }
    Ok(out)
}

/// The distinct blobs a record's skeleton refers to, in the order of their
/// first reference: what [`encode`] would give, without building the skeleton.
pub fn references(record: &[u8]) -> Result<Vec<[u8; 32]>, String> {
    let mut out: Vec<[u8; 32]> = Vec::new();
    for (_, _, blob) in blob_values(record)? {
        if !out.contains(&blob.digest) {
            out.push(blob.digest);
        }
    }
    Ok(out)
}

/// Splits a Helm release JSON record into skeleton and blobs, and checks
/// that [`decode`] gives the record back byte for byte.
pub fn encode(record: &[u8]) -> Result<Encoded<'_>, String> {
    let mut skeleton = Zeroizing::new(Vec::with_capacity(record.len().min(1 << 16)));
    let mut blobs: Vec<Blob<'_>> = Vec::new();
    let mut at = 0;
    for (span, prefix, blob) in blob_values(record)? {
        skeleton.extend_from_slice(&record[at..span.start]);
        skeleton.extend_from_slice(prefix.as_bytes());
        skeleton.extend_from_slice(hex::encode(blob.digest).as_bytes());
        skeleton.push(b'"');
        at = span.end;
        if !blobs.iter().any(|b| b.digest == blob.digest) {
            blobs.push(blob);
        }
    }
    skeleton.extend_from_slice(&record[at..]);
    let back = decode(&skeleton, record.len() as u64, |d| {
        blobs.iter().find(|b| &b.digest == d).map(|b| &*b.data)
    })
    .map_err(|e| format!("it does not decode: {e}"))?;
    if back.as_slice() != record {
        return Err("it does not decode to the same bytes".to_owned());
    }
    Ok(Encoded { skeleton, blobs })
}

/// Collects, in the first pass of a save, which blobs each record refers to,
/// and then marks on each index row the blobs whose last use it is
/// (`blobsLastUsed`), so that readers hold a blob only while it is needed.
/// Memory: 4 bytes per reference plus about 100 per distinct blob.
///
/// A value's text is recognised again by a 128-bit keyed hash (two SipHash
/// keys chosen at random per save), so the SHA-256 of each distinct text is
/// computed once. Should two texts ever collide, the index would name a
/// wrong blob and the writer refuses it (it checks every listed blob against
/// the record): the save fails, no snapshot is wrong.
#[derive(Default)]
pub struct Lifetimes {
    ids: HashMap<[u8; 32], u32>,
    digests: Vec<[u8; 32]>,
    refs: HashMap<String, Vec<u32>>,
    finder: std::sync::Arc<BlobFinder>,
}

/// Finds the blobs a record refers to. Shared by the threads of a save's
/// first pass (it only caches each distinct text's digest), while
/// [`Lifetimes`] itself is filled in archive order by one thread.
#[derive(Default)]
pub struct BlobFinder {
    seen: std::sync::Mutex<HashMap<(u64, u64, bool), [u8; 32]>>,
    fingerprint: (RandomState, RandomState),
}

impl BlobFinder {
    /// The digests of the blobs `record` refers to, each once, in the order
    /// of first use. A record that is not JSON the codec understands has
    /// none (the writer then refuses it).
    pub fn blobs(&self, record: &[u8]) -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = Vec::new();
        for span in designated_spans(record).unwrap_or_default() {
            let text = &record[span.start..span.end];
            if !is_blob(text) {
                continue;
            }
            // The same text gives the same blob: its digest is computed once
            // (a chart's files repeat in every record). Two threads that meet
            // a new text at once both compute it, and get the same digest.
            let seen = (
                self.fingerprint.0.hash_one(text),
                self.fingerprint.1.hash_one(text),
                span.base64,
            );
            let known = self.lock().get(&seen).copied();
            let digest = match known {
                Some(d) => d,
                None => {
                    let d = blob_of(text, span.base64).1.digest;
                    self.lock().insert(seen, d);
                    d
                }
            };
            if !out.contains(&digest) {
                out.push(digest);
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64, bool), [u8; 32]>> {
        // The map is only a cache of pure results: a panic elsewhere cannot
        // leave it wrong, so a poisoned lock is used as it is.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Lifetimes {
    /// Notes the blobs of the record that will have the row whose
    /// [`super::IndexRow::sort_key`] is `key`.
    pub fn add(&mut self, key: String, record: &[u8]) {
        let blobs = self.finder.blobs(record);
        self.add_blobs(key, blobs);
    }

    /// The finder [`Lifetimes::add`] uses, for threads that find the blobs
    /// of several records at once; give each result to
    /// [`Lifetimes::add_blobs`].
    pub fn finder(&self) -> std::sync::Arc<BlobFinder> {
        std::sync::Arc::clone(&self.finder)
    }

    /// Notes `blobs` (from [`BlobFinder::blobs`]) as those of the row whose
    /// sort key is `key`.
    pub fn add_blobs(&mut self, key: String, blobs: Vec<[u8; 32]>) {
        let ids = blobs
            .into_iter()
            .map(|digest| {
                *self.ids.entry(digest).or_insert_with(|| {
                    self.digests.push(digest);
                    u32::try_from(self.digests.len() - 1).unwrap_or(u32::MAX)
                })
            })
            .collect();
        self.refs.insert(key, ids);
    }

    /// Sets `blobs_last_used` on `rows` (in archive order, the filtered rows
    /// of the records given to [`Lifetimes::add`]).
    pub fn assign(mut self, rows: &mut [super::IndexRow]) {
        let mut last: HashMap<u32, usize> = HashMap::new();
        let per_row: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| self.refs.remove(&r.sort_key()).unwrap_or_default())
            .collect();
        for (i, ids) in per_row.iter().enumerate() {
            for id in ids {
                last.insert(*id, i);
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            let mut here: Vec<String> = per_row[i]
                .iter()
                .filter(|id| last.get(id) == Some(&i))
                .filter_map(|id| self.digests.get(*id as usize).map(hex::encode))
                .collect();
            here.sort();
            here.dedup();
            row.blobs_last_used = here;
        }
    }
}

/// The blob a designated value's text refers to, if the text is exactly a
/// reference (`"sha256:<64 hex>"` or `"base64:sha256:<64 hex>"`). Any other
/// text is the value itself ([`encode`] replaces every designated value
/// that has this form, whatever its length).
fn reference(text: &[u8]) -> Option<(BlobForm, [u8; 32])> {
    let (form, rest) = if let Some(rest) = text.strip_prefix(REF_BASE64.as_bytes()) {
        (BlobForm::Base64, rest)
    } else {
        (BlobForm::Json, text.strip_prefix(REF_JSON.as_bytes())?)
    };
    let hex = rest.strip_suffix(b"\"")?;
    if hex.len() != 64
        || !hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex, &mut digest).ok()?;
    Some((form, digest))
}

/// Rebuilds a record from its skeleton: every reference at a designated path
/// is replaced by its blob's text (from `blob`, which returns `None` for a
/// blob it does not hold). The result may not exceed `max_len` bytes, which
/// bounds what a small skeleton referring to a large blob many times can cost.
pub fn decode<'b, F>(
    skeleton: &[u8],
    max_len: u64,
    mut blob: F,
) -> Result<Zeroizing<Vec<u8>>, String>
where
    F: FnMut(&[u8; 32]) -> Option<&'b [u8]>,
{
    let spans = designated_spans(skeleton)?;
    let cap = usize::try_from(max_len).unwrap_or(usize::MAX);
    let mut out = Zeroizing::new(Vec::with_capacity(cap.min(skeleton.len().max(1 << 16))));
    let too_long = || format!("it rebuilds to more than the {max_len} bytes of its index row");
    let mut at = 0;
    for span in spans {
        let text = &skeleton[span.start..span.end];
        let Some((form, digest)) = reference(text) else {
            continue;
        };
        let data = blob(&digest).ok_or_else(|| {
            format!(
                "it refers to blob {} that the snapshot does not hold at this point",
                hex::encode(digest)
            )
        })?;
        let added = match form {
            BlobForm::Json => data.len(),
            BlobForm::Base64 => data.len().div_ceil(3) * 4 + 2,
        };
        if (out.len() + (span.start - at) + added) as u64 > max_len {
            return Err(too_long());
        }
        out.extend_from_slice(&skeleton[at..span.start]);
        match form {
            BlobForm::Json => out.extend_from_slice(data),
            BlobForm::Base64 => {
                if !span.base64 {
                    return Err("a base64 blob reference where the value is not base64".to_owned());
                }
                out.push(b'"');
                let start = out.len();
                out.resize(start + added - 2, 0);
                base64::engine::general_purpose::STANDARD
                    .encode_slice(data, &mut out[start..])
                    .map_err(|e| e.to_string())?;
                out.push(b'"');
            }
        }
        at = span.end;
    }
    if (out.len() + skeleton.len() - at) as u64 > max_len {
        return Err(too_long());
    }
    out.extend_from_slice(&skeleton[at..]);
    Ok(out)
}

/// The archive path of a blob.
pub fn blob_path(digest: &[u8; 32]) -> String {
    format!("{BLOB_DIR}{}", hex::encode(digest))
}

/// The digest named by a blob's archive path, if `path` is one.
pub fn blob_digest(path: &str) -> Option<Result<[u8; 32], ()>> {
    let hex = path.strip_prefix(BLOB_DIR)?;
    let mut digest = [0u8; 32];
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && hex::decode_to_slice(hex, &mut digest).is_ok();
    Some(if ok { Ok(digest) } else { Err(()) })
}

/// The blobs a v2 reader has seen, by digest, within a byte budget.
#[derive(Default)]
pub struct BlobStore {
    held: HashMap<[u8; 32], Zeroizing<Vec<u8>>>,
    bytes: u64,
    /// Blobs read since the last record: the next record must use them all.
    pending: Vec<[u8; 32]>,
}

impl BlobStore {
    /// Whether a blob is held.
    pub fn contains(&self, digest: &[u8; 32]) -> bool {
        self.held.contains_key(digest)
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Keeps a verified blob.
    pub fn insert(&mut self, digest: [u8; 32], data: Zeroizing<Vec<u8>>) {
        self.bytes += data.len() as u64;
        self.pending.push(digest);
        self.held.insert(digest, data);
    }

    /// Rebuilds a record from its skeleton; fails when a reference is to a
    /// blob not held, or when a blob read just before it is not used by it.
    /// Then drops the blobs `last_used` names (its row's `blobsLastUsed`),
    /// each of which it must have used.
    pub fn rebuild(
        &mut self,
        skeleton: &[u8],
        max_len: u64,
        last_used: &[String],
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut used: Vec<[u8; 32]> = Vec::new();
        let held = &self.held;
        let out = decode(skeleton, max_len, |d| {
            let b = held.get(d)?;
            used.push(*d);
            Some(b.as_slice())
        })?;
        if let Some(unused) = self.pending.iter().find(|p| !used.contains(p)) {
            return Err(format!(
                "blob {} comes before it but it does not use it",
                hex::encode(unused)
            ));
        }
        self.pending.clear();
        for hex_digest in last_used {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_digest, &mut digest).map_err(|e| e.to_string())?;
            if !used.contains(&digest) {
                return Err(format!(
                    "its index row lists blob {hex_digest} as last used by it, but it does not use it"
                ));
            }
            if let Some(data) = self.held.remove(&digest) {
                self.bytes -= data.len() as u64;
            }
        }
        Ok(out)
    }

    /// A blob read but not used by a record after it (at the end of the records).
    pub fn unused(&self) -> Option<&[u8; 32]> {
        self.pending.first()
    }
}
