//! The save pipeline: every release record of a source into one encrypted
//! snapshot, over [`SaveOptions`] (no flags, no printing).
//!
//! ```text
//! source.plan ──▶ Index (rows, CRDs) ──▶ source.fetch ──records──▶ writer thread:
//!   SnapshotWriter ──▶ vault::encrypt ──▶ HashingWriter ──▶ Sink (file │ stdout │ bucket upload)
//! commit the snapshot ──▶ then its signature (.sig), computed from the digest
//! ```
//!
//! Nothing is committed when any step fails: the atomic file is dropped, the
//! bucket upload is aborted. When the release list changes too much between
//! the two passes of a Helm source (the consistent list expired), the save
//! starts again, at most three times.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::snapshot::SourceKind;
use crate::snapshot::{Cluster as IndexCluster, Index, SnapshotError, SnapshotWriter};
use crate::source::helm::SaveFilter;
use crate::source::{Source, SourceError};
use crate::store::Sink;
use crate::store::bucket::{Bucket, BucketError, timestamp_of};
use crate::vault::sign::{HashingWriter, SigningKey, signature_path};
use crate::vault::{Protection, VaultError};

/// Why a save failed. Each variant is its cause, shown as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// Listing or reading the records.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Encryption or signing.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Writing the archive.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The bucket.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// Files and standard output.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The writer thread panicked.
    #[error("the snapshot writer thread panicked")]
    WriterPanicked,
}

impl SaveError {
    /// The error this one stands for (for callers that look at the chain).
    pub fn inner(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SaveError::Source(e) => Some(e),
            SaveError::Vault(e) => Some(e),
            SaveError::Snapshot(e) => Some(e),
            SaveError::Bucket(e) => Some(e),
            SaveError::Io(e) => Some(e),
            SaveError::WriterPanicked => None,
        }
    }
}

/// Which records a save reads (`save --source`): Helm 3/4 storage (its
/// generation detected from the helm binary, or given), Tiller over gRPC,
/// or Tiller's storage objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChoice {
    /// Helm 3/4 storage, recorded as Helm 4 when helm is Helm 4, else Helm 3.
    Auto,
    /// Helm 3 release storage.
    Helm3,
    /// Helm 4 release storage.
    Helm4,
    /// Helm 2: Tiller over gRPC.
    Tiller,
    /// Helm 2: Tiller's ConfigMaps or Secrets, through the Kubernetes API.
    TillerStorage,
}

impl SourceChoice {
    /// Every choice, in the order `--help` lists them.
    pub const ALL: [SourceChoice; 5] = [
        SourceChoice::Auto,
        SourceChoice::Helm3,
        SourceChoice::Helm4,
        SourceChoice::Tiller,
        SourceChoice::TillerStorage,
    ];

    /// The name `--source` takes.
    pub fn name(self) -> &'static str {
        match self {
            SourceChoice::Auto => "auto",
            SourceChoice::Helm3 => "helm3",
            SourceChoice::Helm4 => "helm4",
            SourceChoice::Tiller => "tiller",
            SourceChoice::TillerStorage => "tiller-storage",
        }
    }

    /// Whether it reads Helm 2 records.
    pub fn is_helm2(self) -> bool {
        matches!(self, SourceChoice::Tiller | SourceChoice::TillerStorage)
    }

    /// The Helm generation recorded in the snapshot; `Auto` asks the helm
    /// binary ([`crate::restore::helm::helm_generation`]).
    pub fn kind(self) -> SourceKind {
        match self {
            SourceChoice::Helm3 => SourceKind::Helm3,
            SourceChoice::Helm4 => SourceKind::Helm4,
            SourceChoice::Tiller | SourceChoice::TillerStorage => SourceKind::Tiller,
            SourceChoice::Auto => crate::restore::helm::helm_generation(),
        }
    }
}

/// A `--source` name that is none of [`SourceChoice::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown source `{0}`; use auto, helm3, helm4, tiller or tiller-storage")]
pub struct UnknownSource(String);

impl std::str::FromStr for SourceChoice {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<SourceChoice, UnknownSource> {
        SourceChoice::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

/// [`SourceChoice::name`].
impl std::fmt::Display for SourceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the records came from: the source's own server (Tiller), else the
/// API server and context.
fn origin(source: &impl Source, cluster: Option<&Cluster>) -> (String, String) {
    match (source.server(), cluster) {
        (Some(server), _) => (server, String::new()),
        (None, Some(c)) => (c.server.clone(), c.context.clone()),
        (None, None) => (String::new(), String::new()),
    }
}

/// Where the snapshot goes.
pub enum Destination {
    /// A file (atomic, mode 0600), or `-` for standard output.
    File(PathBuf),
    /// A new object `<prefix>/<cluster name>/<UTC timestamp>.tar.gz.age`.
    Bucket {
        /// The bucket and prefix.
        bucket: Bucket,
        /// The cluster's name in the key; `None`: the context, else the
        /// server's host (see [`cluster_name`]).
        cluster_name: Option<String>,
    },
}

/// What a save is told while it runs.
pub trait Progress: Send + Sync {
    /// The release list changed too much between the passes; the save starts again.
    fn restarting(&self) {}
    /// `done` of the `total` revisions are written.
    fn written(&self, _done: usize, _total: usize) {}
}

/// A [`Progress`] that ignores everything.
pub struct Quiet;

impl Progress for Quiet {}

/// Everything a save needs besides its source.
pub struct SaveOptions {
    /// Which releases and revisions to keep.
    pub filter: SaveFilter,
    /// The Helm generation recorded in the index.
    pub kind: SourceKind,
    /// The snapshot format version to write: 1, or 2 (the default, see
    /// [`crate::snapshot::FORMAT_VERSION`]). For format 2 of Helm 3/4 records,
    /// build the source with [`HelmSource::with_blob_lifetimes`] so that the
    /// index says where each blob is last used.
    ///
    /// [`HelmSource::with_blob_lifetimes`]: crate::source::helm::HelmSource::with_blob_lifetimes
    pub format: u32,
    /// Where the snapshot goes.
    pub destination: Destination,
    /// How the snapshot is encrypted.
    pub protection: Protection,
    /// ASCII-armored output.
    pub armor: bool,
    /// Sign the snapshot (the signature is written after the snapshot is complete).
    pub sign_key: Option<SigningKey>,
    /// Told about restarts and written revisions.
    pub progress: Arc<dyn Progress>,
}

/// What a save wrote.
#[derive(Debug)]
pub struct Saved {
    /// `standard output`, the file's path, or `<bucket url> as <key>`.
    pub destination: String,
    /// Distinct releases saved.
    pub releases: usize,
    /// CRDs saved.
    pub crds: usize,
    /// CRDs taken for their API group only (no saved object is of their kind).
    pub group_crds: usize,
    /// Revisions saved.
    pub revisions: usize,
    /// Bytes of release records.
    pub bytes: u64,
    /// The API server (or Tiller) the records came from.
    pub server: String,
    /// Storage objects that could not be decoded: `namespace/object: reason`.
    pub problems: Vec<String>,
    /// Releases saved with an upgrade in flight, and what load does about it.
    pub in_flight: Vec<(crate::release::ReleaseKey, String)>,
    /// A signature of an earlier snapshot at the output path, removed since
    /// this snapshot is not signed.
    pub removed_stale_signature: Option<PathBuf>,
}

/// Saves `source` (whose Kubernetes connection, for CRDs and the index, is
/// `cluster`; none for a Tiller-only save) as `opts` say.
pub async fn save(
    source: &impl Source,
    cluster: Option<&Cluster>,
    opts: &SaveOptions,
) -> Result<Saved, SaveError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match save_once(source, cluster, opts).await {
            Err(Attempt::Expired) if attempt < 3 => opts.progress.restarting(),
            Err(Attempt::Expired) => break Err(SourceError::Expired.into()),
            Err(Attempt::Failed(f)) => break Err(f),
            Ok(saved) => break Ok(saved),
        }
    }
}

/// How one attempt at saving ended, when it did not succeed.
enum Attempt {
    /// The consistent list expired between the passes: worth another try.
    Expired,
    /// Anything else.
    Failed(SaveError),
}

impl<E: Into<SaveError>> From<E> for Attempt {
    fn from(e: E) -> Self {
        Attempt::Failed(e.into())
    }
}

fn from_source(e: SourceError) -> Attempt {
    match e {
        SourceError::Expired => Attempt::Expired,
        other => Attempt::Failed(other.into()),
    }
}

/// How many of the index's CRDs were taken for their API group only.
fn group_only(index: &Index) -> usize {
    index
        .crds
        .iter()
        .filter(|c| c.reason.starts_with("API group"))
        .count()
}

/// The cluster's name in object keys: `explicit`, else the context,
/// else the server's host (the API server, or Tiller); reduced to letters,
/// digits, `.`, `-`, `_`.
pub fn cluster_name(explicit: Option<&str>, context: &str, server: &str) -> String {
    let raw = explicit.map(str::to_owned).unwrap_or_else(|| {
        if context.is_empty() {
            url::Url::parse(server)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "cluster".to_owned())
        } else {
            context.to_owned()
        }
    });
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '.') {
        "cluster".to_owned()
    } else {
        name
    }
}

/// Where one attempt writes.
enum Out<'a> {
    /// An upload into this bucket.
    Upload(&'a Bucket, crate::store::bucket::UploadHandle),
    /// A file, or `-`.
    File(&'a Path),
}

async fn save_once(
    source: &impl Source,
    cluster: Option<&Cluster>,
    opts: &SaveOptions,
) -> Result<Saved, Attempt> {
    let started = std::time::Instant::now();
    let plan = source.plan(&opts.filter).await.map_err(from_source)?;
    crate::debug::note(|| {
        format!(
            "save: first pass: {} records to save, in {:.2}s",
            plan.rows.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let (server, context) = origin(source, cluster);
    let mut index = Index::new(
        crate::timefmt::now_rfc3339(),
        crate::snapshot::Source {
            kind: opts.kind,
            driver: source.driver_name().to_owned(),
            extra: Default::default(),
        },
        IndexCluster {
            server: server.clone(),
            context,
            extra: Default::default(),
        },
    );
    index.format_version = opts.format;
    index.releases = plan.rows.clone();
    // CRDs are read from the Kubernetes API, which a Tiller-only save does not use.
    let crds = match cluster {
        Some(cluster) => crate::source::crds::capture(&cluster.client, &plan.kinds)
            .await
            .map_err(from_source)?,
        None => Vec::new(),
    };
    index.crds = crds.iter().map(|c| c.row.clone()).collect();
    let releases = crate::release::distinct_releases(&index.releases);
    let revisions = index.releases.len();
    let bytes: u64 = index.releases.iter().map(|r| r.size).sum();

    let (sink, out) = match &opts.destination {
        Destination::Bucket {
            bucket,
            cluster_name: explicit,
        } => {
            // A Tiller-only save (--source tiller) has no Kubernetes
            // context: it is named after Tiller's host.
            let context = cluster.map(|c| c.context.as_str()).unwrap_or("");
            let name = cluster_name(explicit.as_deref(), context, &server);
            let key = bucket.snapshot_key(&name, &timestamp_of(&index.created_at));
            let (w, h) = bucket.upload(&key).await?.split();
            (Sink::Remote(w), Out::Upload(bucket, h))
        }
        Destination::File(output) => (Sink::open(output, !opts.armor)?, Out::File(output)),
    };
    let sink = HashingWriter::new(sink);
    let encrypted = crate::vault::encrypt(sink, &opts.protection, opts.armor)?;
    let mut writer = SnapshotWriter::new(encrypted, &index)?;

    // Records flow from the lister to a writer thread through a channel
    // bounded in bytes: the network and the compression+encryption overlap,
    // and memory holds one page plus that budget, however big the cluster.
    let (tx, mut rx) = crate::source::record_channel();
    let paths: Vec<String> = index.releases.iter().map(|r| r.path.clone()).collect();
    let crd_entries: Vec<(String, Vec<u8>)> =
        crds.into_iter().map(|c| (c.row.path, c.json)).collect();
    let progress = Arc::clone(&opts.progress);
    let write_thread = std::thread::spawn(move || -> Result<_, SaveError> {
        let mut done = 0usize;
        while let Some(record) = rx.blocking_recv() {
            writer.append(&paths[record.pos], &record.data)?;
            done += 1;
            progress.written(done, paths.len());
        }
        for (path, json) in &crd_entries {
            writer.append(path, json)?;
        }
        let sink = writer.finish()?.finish()?;
        Ok(sink)
    });
    let second = std::time::Instant::now();
    let fetched = source.fetch(&plan, &tx).await;
    drop(tx);
    let fetch_time = second.elapsed();
    let written = write_thread
        .join()
        .map_err(|_| Attempt::Failed(SaveError::WriterPanicked))?;
    crate::debug::note(|| {
        format!(
            "save: second pass: records read in {:.2}s, written in {:.2}s",
            fetch_time.as_secs_f64(),
            second.elapsed().as_secs_f64()
        )
    });
    // A write error explains a fetch that stopped; report it first.
    // The fetch error is the cause unless the fetch stopped because the
    // writer did (then the writer's error says why).
    let finished = match (written, fetched) {
        (_, Err(e)) if !matches!(e, SourceError::Write(_)) => Err(from_source(e)),
        (Err(e), _) => Err(Attempt::Failed(e)),
        (Ok(_), Err(e)) => Err(from_source(e)),
        (Ok(w), Ok(())) => Ok(w.finish()),
    };
    let (sink, digest) = match finished {
        Ok(done) => done,
        Err(e) => {
            // The writer was dropped without committing: the upload task
            // aborts the multipart upload; wait for it to do so.
            if let Out::Upload(_, h) = out {
                let _ = h.wait().await;
            }
            return Err(e);
        }
    };
    let saved = |destination: String, removed_stale_signature: Option<PathBuf>| Saved {
        releases,
        crds: index.crds.len(),
        group_crds: group_only(&index),
        revisions,
        bytes,
        server: server.clone(),
        problems: plan.problems.clone(),
        in_flight: crate::release::caught_in_flight(&index.releases),
        destination,
        removed_stale_signature,
    };
    let output = match out {
        Out::Upload(bucket, h) => {
            match sink {
                Sink::Remote(w) => w.commit_async().await?,
                other => other.commit()?,
            }
            let key = h.key.clone();
            h.wait().await?;
            // The signature only after its snapshot is complete.
            if let Some(k) = &opts.sign_key {
                let sig = crate::vault::sign::sign_digest(k, &digest)?;
                bucket.put(&format!("{key}.sig"), sig.into_bytes()).await?;
            }
            return Ok(saved(format!("{} as {key}", bucket.url()), None));
        }
        Out::File(output) => output,
    };
    let signature = match &opts.sign_key {
        Some(key) => {
            let sig_path = signature_path(output);
            let mut file = crate::store::AtomicFile::create(&sig_path)?;
            std::io::Write::write_all(
                &mut file,
                crate::vault::sign::sign_digest(key, &digest)?.as_bytes(),
            )?;
            Some(file)
        }
        None => None,
    };
    // The snapshot first, its signature last: a reader never sees a signature
    // without the snapshot it covers.
    sink.commit()?;
    let mut removed = None;
    match signature {
        Some(file) => file.commit()?,
        None => {
            // A signature left from an earlier snapshot at this path would no
            // longer match; remove it rather than leave it to confuse.
            if output != Path::new("-") {
                let stale = signature_path(output);
                if stale.exists() {
                    std::fs::remove_file(&stale)?;
                    removed = Some(stale);
                }
            }
        }
    }
    Ok(saved(
        if output == Path::new("-") {
            "standard output".to_owned()
        } else {
            output.display().to_string()
        },
        removed,
    ))
}

#[cfg(test)]
mod tests {
    //! The pipeline over an in-memory [`Source`] (real age, real SSH
    //! signatures, real files): what is committed, in which order, and what
    //! is left when a step fails.

    use std::path::Path;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use age::secrecy::ExposeSecret;

    use super::*;
    use crate::source::RecordSender;
    use crate::source::helm::Plan;

    #[test]
    fn source_choices_parse_from_their_names() {
        for c in SourceChoice::ALL {
            assert_eq!(c.to_string().parse::<SourceChoice>().unwrap(), c);
        }
        assert_eq!(SourceChoice::TillerStorage.to_string(), "tiller-storage");
        assert!(SourceChoice::TillerStorage.is_helm2() && !SourceChoice::Helm4.is_helm2());
        assert_eq!(SourceChoice::Tiller.kind(), SourceKind::Tiller);
        assert!("helm2".parse::<SourceChoice>().is_err());
        for d in [
            crate::source::Driver::Secret,
            crate::source::Driver::ConfigMap,
        ] {
            assert_eq!(d.to_string().parse::<crate::source::Driver>().unwrap(), d);
        }
    }
    use crate::release::ReleaseRecord;
    use crate::snapshot::{Entry, Limits, read_snapshot};

    /// Records held in memory; `fail_after` makes the second pass fail
    /// after that many records, `expire` makes the first pass report an
    /// expired list that many times.
    struct Memory {
        records: Vec<ReleaseRecord>,
        fail_after: Option<usize>,
        expire: AtomicUsize,
    }

    fn record(ns: &str, name: &str, rev: u32) -> ReleaseRecord {
        let json = format!(
            r#"{{"name":"{name}","namespace":"{ns}","version":{rev},"info":{{"status":"deployed"}},"chart":{{"metadata":{{"name":"demo","version":"1.0.0"}}}}}}"#
        );
        ReleaseRecord::from_helm_json(json.into_bytes()).unwrap()
    }

    fn memory(fail_after: Option<usize>, expire: usize) -> Memory {
        Memory {
            records: vec![
                record("a", "db", 1),
                record("b", "web", 1),
                record("b", "web", 2),
            ],
            fail_after,
            expire: AtomicUsize::new(expire),
        }
    }

    impl Source for Memory {
        async fn plan(&self, _filter: &SaveFilter) -> Result<Plan, SourceError> {
            if self
                .expire
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SourceError::Expired);
            }
            Ok(Plan {
                rows: self
                    .records
                    .iter()
                    .map(|r| r.index_row(SourceKind::Helm3).unwrap())
                    .collect(),
                resource_version: "1".to_owned(),
                problems: Vec::new(),
                kinds: Default::default(),
                objects: None,
            })
        }

        async fn fetch(&self, _plan: &Plan, tx: &RecordSender) -> Result<(), SourceError> {
            for (pos, r) in self.records.iter().enumerate() {
                if self.fail_after == Some(pos) {
                    return Err(SourceError::Vanished("b/web.v2".to_owned()));
                }
                tx.send(pos, r.data.clone()).await?;
            }
            Ok(())
        }

        fn driver_name(&self) -> &'static str {
            "secret"
        }
    }

    /// Counts restarts.
    #[derive(Default)]
    struct Counting {
        restarts: AtomicUsize,
        written: Mutex<Vec<(usize, usize)>>,
    }

    impl Progress for Counting {
        fn restarting(&self) {
            self.restarts.fetch_add(1, Ordering::SeqCst);
        }
        fn written(&self, done: usize, total: usize) {
            self.written.lock().unwrap().push((done, total));
        }
    }

    struct Keys {
        dir: tempfile::TempDir,
        identity: PathBuf,
        recipient: age::x25519::Recipient,
        signing: ssh_key::PrivateKey,
    }

    fn keys() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let identity = dir.path().join("identity.txt");
        std::fs::write(&identity, id.to_string().expose_secret()).unwrap();
        let pair = ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]);
        let signing = ssh_key::PrivateKey::new(pair.into(), "test@helm-bulk").unwrap();
        Keys {
            dir,
            identity,
            recipient: id.to_public(),
            signing,
        }
    }

    fn options(keys: &Keys, output: &Path, sign: bool, progress: Arc<dyn Progress>) -> SaveOptions {
        SaveOptions {
            filter: SaveFilter {
                selection: crate::select::Selection::new(&[], &[]).unwrap(),
                history: None,
                statuses: Vec::new(),
            },
            kind: SourceKind::Helm3,
            format: crate::snapshot::FORMAT_VERSION,
            destination: Destination::File(output.to_path_buf()),
            protection: Protection::Recipients(vec![Box::new(keys.recipient.clone())]),
            armor: false,
            sign_key: sign.then(|| SigningKey::Key(Box::new(keys.signing.clone()))),
            progress,
        }
    }

    fn run(source: &Memory, opts: &SaveOptions) -> Result<Saved, SaveError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(save(source, None, opts))
    }

    /// The release keys and revisions a snapshot file holds.
    fn contents(keys: &Keys, path: &Path) -> Vec<String> {
        let file = std::fs::File::open(path).unwrap();
        let opened = crate::vault::open(file, std::slice::from_ref(&keys.identity)).unwrap();
        let mut got = Vec::new();
        read_snapshot(opened.reader, &Limits::default(), |_, entry, _| {
            if let Entry::Release(row) = entry {
                got.push(format!("{}.v{}", row.key(), row.revision));
            }
            Ok(())
        })
        .unwrap();
        got
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_signed_save_commits_the_snapshot_and_a_signature_of_its_bytes() {
        let keys = keys();
        let out = keys.dir.path().join("s.age");
        let progress = Arc::new(Counting::default());
        let saved = run(
            &memory(None, 0),
            &options(&keys, &out, true, progress.clone()),
        )
        .unwrap();
        assert_eq!((saved.releases, saved.revisions), (2, 3));
        assert_eq!(saved.destination, out.display().to_string());
        assert_eq!(contents(&keys, &out), ["a/db.v1", "b/web.v1", "b/web.v2"]);
        assert_eq!(*progress.written.lock().unwrap(), [(1, 3), (2, 3), (3, 3)]);
        let public = keys.signing.public_key().to_openssh().unwrap();
        let allowed =
            crate::vault::sign::parse_allowed_signers(&format!("ops {public}"), "test").unwrap();
        let signer =
            crate::vault::sign::verify_file(&out, &signature_path(&out), &allowed).unwrap();
        assert_eq!(signer.principals, "ops");
        assert_eq!(
            entries(keys.dir.path()),
            ["identity.txt", "s.age", "s.age.sig"]
        );
    }

    #[test]
    fn a_failed_fetch_commits_nothing_and_keeps_an_old_signature() {
        let keys = keys();
        let out = keys.dir.path().join("s.age");
        std::fs::write(signature_path(&out), "old").unwrap();
        for sign in [true, false] {
            let e = run(
                &memory(Some(1), 0),
                &options(&keys, &out, sign, Arc::new(Quiet)),
            )
            .unwrap_err();
            assert_eq!(
                e.to_string(),
                "release record b/web.v2 disappeared while saving; run save again"
            );
            // No snapshot, no temp file; the signature of whatever was there stays.
            assert_eq!(entries(keys.dir.path()), ["identity.txt", "s.age.sig"]);
            assert_eq!(
                std::fs::read_to_string(signature_path(&out)).unwrap(),
                "old"
            );
        }
    }

    #[test]
    fn a_signature_that_cannot_be_written_leaves_no_snapshot() {
        let keys = keys();
        let out = keys.dir.path().join("s.age");
        std::fs::create_dir(signature_path(&out)).unwrap();
        let e = run(
            &memory(None, 0),
            &options(&keys, &out, true, Arc::new(Quiet)),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert_eq!(entries(keys.dir.path()), ["identity.txt", "s.age.sig"]);
    }

    #[test]
    fn an_unsigned_save_removes_the_signature_of_an_earlier_snapshot() {
        let keys = keys();
        let out = keys.dir.path().join("s.age");
        run(
            &memory(None, 0),
            &options(&keys, &out, true, Arc::new(Quiet)),
        )
        .unwrap();
        let saved = run(
            &memory(None, 0),
            &options(&keys, &out, false, Arc::new(Quiet)),
        )
        .unwrap();
        assert_eq!(saved.removed_stale_signature, Some(signature_path(&out)));
        assert_eq!(entries(keys.dir.path()), ["identity.txt", "s.age"]);
    }

    #[test]
    fn an_expired_list_restarts_the_save_twice_at_most() {
        let keys = keys();
        let out = keys.dir.path().join("s.age");
        let progress = Arc::new(Counting::default());
        run(
            &memory(None, 2),
            &options(&keys, &out, false, progress.clone()),
        )
        .unwrap();
        assert_eq!(progress.restarts.load(Ordering::SeqCst), 2);
        assert_eq!(contents(&keys, &out).len(), 3);

        std::fs::remove_file(&out).unwrap();
        let progress = Arc::new(Counting::default());
        let e = run(
            &memory(None, 3),
            &options(&keys, &out, false, progress.clone()),
        )
        .unwrap_err();
        assert!(matches!(e, SaveError::Source(SourceError::Expired)), "{e}");
        assert_eq!(progress.restarts.load(Ordering::SeqCst), 2);
        assert_eq!(entries(keys.dir.path()), ["identity.txt"]);
    }

    #[test]
    fn cluster_names_are_safe_in_object_keys() {
        assert_eq!(cluster_name(Some("prod/eu 1"), "ctx", ""), "prod_eu_1");
        assert_eq!(cluster_name(None, "kind-dev", ""), "kind-dev");
        assert_eq!(cluster_name(None, "", "https://10.0.0.1:6443"), "10.0.0.1");
        assert_eq!(cluster_name(None, "", "not a url"), "cluster");
        assert_eq!(cluster_name(Some(".."), "", ""), "cluster");
    }
}
