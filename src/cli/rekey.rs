//! `helm bulk rekey`: re-encrypt snapshots to new recipients (key rotation).
//!
//! The age decrypting stream feeds the age encrypting stream directly
//! ([`helm_bulk::vault::reencrypt`]); the plaintext is also read through the
//! checked snapshot reader on its way, so a damaged snapshot is refused
//! rather than re-signed. Nothing decrypted is written anywhere.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use sha2::{Digest, Sha512};

use super::args::{EncryptArgs, SnapshotSource, StoreArgs, VerifyArgs, runtime};
use super::{DecryptArgs, Failure, fail};
use helm_bulk::config::Loaded;
use helm_bulk::snapshot::Limits;
use helm_bulk::store::bucket::Bucket;
use helm_bulk::vault::sign::{HashingWriter, SigningKey, signature_path};
use helm_bulk::vault::{Protection, VaultError};

/// Suffix of the new object while it is written and checked.
const STAGED: &str = ".rekey";
/// Suffix of the original kept with `--keep-old`.
const KEPT: &str = ".pre-rekey";

/// Arguments of `rekey`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk rekey -i old.txt -r age1new... backup.tar.gz.age
  helm bulk rekey -i old.txt -R team.txt -o rotated.age backup.age
  helm bulk rekey -i old.txt -r age1new... --sign-key ~/.ssh/dr_sign --all s3://dr/helm

The snapshot is read with -i, checked entry by entry, and re-encrypted to the new
recipients (-r/-R, else `recipients:` of the config) in one stream; nothing
decrypted reaches disk. Its old signature covers the old ciphertext, so it is
replaced by a new one (--sign-key, or `signKey:` of the config) or removed.
A file is replaced atomically (or written to -o NEW). A bucket object is written
beside the original as KEY.rekey, read back and compared, and only then copied over
the original (--keep-old keeps the original as KEY.pre-rekey).

--all rotates every snapshot under a bucket prefix; one that fails (damaged,
refused signature) is left as it was and listed, the others are rotated, and
the exit code is 3. An object that none of the -i
identities can open is taken as already rotated and skipped, so a rerun after an
interruption finishes the job without encrypting anything twice; for that, the new
recipients must not include a key given with -i (rekey refuses then).")]
pub struct RekeyArgs {
    /// The snapshot file, or a bucket URL of one (…/<timestamp>.tar.gz.age or …/latest);
    /// with --all, the bucket prefix
    #[arg(value_name = "FILE|URL")]
    pub file: String,

    /// Rotate every snapshot under the bucket prefix URL
    #[arg(long)]
    pub all: bool,

    /// Write the rotated snapshot to FILE instead of replacing the original (files only)
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "all"
    )]
    pub output: Option<PathBuf>,

    /// Keep the original bucket object as KEY.pre-rekey (and its signature)
    #[arg(long)]
    pub keep_old: bool,

    /// Sign the rotated snapshot with this SSH private key, or the key held by ssh-agent whose
    /// public key file this is [config: signKey]
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,

    #[command(flatten)]
    pub encrypt: EncryptArgs,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// Everything one rotation needs.
struct Ctx<'a> {
    args: &'a RekeyArgs,
    config: &'a Loaded,
    identities: Vec<PathBuf>,
    protection: Protection,
    signer: Option<SigningKey>,
}

impl Ctx<'_> {
    /// Decrypts `source` (after its signature check) and re-encrypts it into
    /// `out`, checking every entry as it passes. Returns `out` and the SHA-512
    /// of the new ciphertext, for its signature.
    fn rotate<W: std::io::Write>(
        &self,
        source: &SnapshotSource,
        out: W,
    ) -> Result<(W, Vec<u8>), Failure> {
        self.args.verify.check(source, self.config)?;
        let opened = helm_bulk::vault::open(source.open()?, &self.identities)?;
        let encrypted = helm_bulk::vault::encrypt(
            HashingWriter::new(out),
            &self.protection,
            self.args.encrypt.armor,
        )?;
        let hashing = helm_bulk::vault::reencrypt(opened, encrypted, |plain: &mut dyn Read| {
            let index =
                helm_bulk::release::read_checked(plain, &Limits::default(), |_, _, _| Ok(()))?;
            self.args.verify.check_age(&index)
        })?;
        Ok(hashing.finish())
    }

    fn signature(&self, digest: &[u8]) -> Result<Option<String>, Failure> {
        match &self.signer {
            Some(k) => Ok(Some(helm_bulk::vault::sign::sign_digest(k, digest)?)),
            None => Ok(None),
        }
    }
}

pub(super) fn run(args: RekeyArgs, config: &Loaded) -> Result<(), Failure> {
    let bucket_mode = check_mode(&args)?;
    let identities = args.decrypt.identity_files(config);
    if identities.is_empty() {
        return Err(VaultError::NoIdentities.into());
    }
    let protection = args.encrypt.protection(config)?;
    let signer = match args
        .sign_key
        .clone()
        .or_else(|| config.config.sign_key.clone())
    {
        Some(p) => Some(helm_bulk::vault::sign::load_signer(&p)?),
        None => None,
    };
    let ctx = Ctx {
        args: &args,
        config,
        identities,
        protection,
        signer,
    };
    if !bucket_mode {
        return rekey_file(&ctx, Path::new(&args.file));
    }
    let rt = Arc::new(runtime()?);
    super::exit_cleanly_on_interrupt(&rt);
    if args.all {
        rekey_all(&ctx, &rt)
    } else {
        rekey_named(&ctx, &rt)
    }
}

/// Refuses option combinations that do not fit the input: a file, or a
/// bucket object (`true`) or prefix (`--all`).
fn check_mode(args: &RekeyArgs) -> Result<bool, Failure> {
    if args.file == "-" {
        return Err(fail(
            "rekey replaces a file or a bucket object; it does not read standard input",
        ));
    }
    let bucket_mode = args.file.contains("://");
    if args.all && !bucket_mode {
        return Err(fail(format!(
            "--all takes a bucket URL (s3://, gs://, az://, file://), not `{}`",
            args.file
        )));
    }
    if bucket_mode && args.output.is_some() {
        return Err(fail(
            "-o/--output is for files; a bucket object is replaced in place",
        ));
    }
    if args.keep_old && !bucket_mode {
        return Err(fail(
            "--keep-old is for bucket objects; for a file, write the new one with -o NEW",
        ));
    }
    if bucket_mode && args.encrypt.passphrase {
        return Err(fail(
            "-p/--passphrase is not supported for bucket objects; rekey them to recipients",
        ));
    }
    Ok(bucket_mode)
}

/// Rotates the one bucket object the URL names.
fn rekey_named(ctx: &Ctx<'_>, rt: &Arc<tokio::runtime::Runtime>) -> Result<(), Failure> {
    let SnapshotSource::Object { bucket, key, .. } =
        super::args::resolve_input(&ctx.args.file, &ctx.args.store, ctx.config)?
    else {
        return Err(fail("not a bucket object"));
    };
    let outcome = rekey_object(ctx, &bucket, &key, rt)?;
    eprintln!("{}: {}", key, outcome.describe());
    Ok(())
}

/// `--all`: rotates every snapshot under the prefix; one that fails is left
/// as it was, and the run ends with EXIT_PARTIAL naming them.
fn rekey_all(ctx: &Ctx<'_>, rt: &Arc<tokio::runtime::Runtime>) -> Result<(), Failure> {
    refuse_overlap(ctx)?;
    let bucket = ctx.args.store.open(&ctx.args.file, ctx.config)?;
    let listed = rt.block_on(bucket.list())?;
    if listed.is_empty() {
        return Err(fail(format!("no snapshot under {}", bucket.url())));
    }
    let total = listed.len();
    let mut counts = [0usize; 3];
    let mut failed = Vec::new();
    for (i, item) in listed.iter().enumerate() {
        match rekey_object(ctx, &bucket, &item.key, rt) {
            Ok(outcome) => {
                counts[outcome as usize] += 1;
                eprintln!("[{}/{total}] {}: {}", i + 1, item.key, outcome.describe());
            }
            // That object is left as it was; the others are still rotated.
            Err(f) => {
                eprintln!(
                    "[{}/{total}] {}: FAILED, left as it was: {}",
                    i + 1,
                    item.key,
                    f.message
                );
                failed.push(item.key.clone());
            }
        }
    }
    println!(
        "Rotated {} of {} snapshots under {} ({} rotated now, {} finished from an interrupted run, {} already rotated)",
        total - failed.len(),
        total,
        bucket.url(),
        counts[Outcome::Rotated as usize],
        counts[Outcome::Finished as usize],
        counts[Outcome::AlreadyRotated as usize],
    );
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure {
        message: format!(
            "{} snapshots could not be rotated and still open with the old key: {}",
            failed.len(),
            failed.join(", ")
        ),
        code: super::EXIT_PARTIAL,
    })
}

/// For `--all`, "no -i identity opens it" must mean "already rotated": the
/// new recipients must not include a reading identity.
fn refuse_overlap(ctx: &Ctx<'_>) -> Result<(), Failure> {
    let mut probe = helm_bulk::vault::encrypt(Vec::new(), &ctx.protection, false)?;
    std::io::Write::write_all(&mut probe, b"helm-bulk rekey probe")?;
    let probe = probe.finish()?;
    match helm_bulk::vault::open(std::io::Cursor::new(probe), &ctx.identities) {
        Ok(_) => Err(fail(
            "an identity given with -i can decrypt for the new recipients, so rekey --all could not tell rotated snapshots from the others; rotate to recipients whose keys are not given with -i",
        )),
        Err(VaultError::WrongIdentity) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn rekey_file(ctx: &Ctx<'_>, path: &Path) -> Result<(), Failure> {
    let dest = ctx
        .args
        .output
        .clone()
        .unwrap_or_else(|| path.to_path_buf());
    if dest == Path::new("-") {
        return Err(fail(
            "rekey writes a file; -o - (standard output) is not supported",
        ));
    }
    let source = SnapshotSource::File(path.to_path_buf());
    let out = helm_bulk::store::AtomicFile::create(&dest)?;
    let (out, digest) = ctx.rotate(&source, out)?;
    let signature = match ctx.signature(&digest)? {
        Some(text) => {
            let mut f = helm_bulk::store::AtomicFile::create(&signature_path(&dest))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            Some(f)
        }
        None => None,
    };
    // The snapshot first, its signature last (as save does).
    out.commit()?;
    match signature {
        Some(f) => f.commit()?,
        None => {
            let stale = signature_path(&dest);
            if stale.exists() {
                std::fs::remove_file(&stale)?;
                eprintln!(
                    "Removed {}: it signed the old ciphertext (pass --sign-key to re-sign).",
                    stale.display()
                );
            }
        }
    }
    eprintln!(
        "Rotated {} to the new recipients{}{}",
        path.display(),
        if dest == path {
            String::new()
        } else {
            format!(", written to {}", dest.display())
        },
        if ctx.signer.is_some() { ", signed" } else { "" }
    );
    Ok(())
}

#[derive(Clone, Copy)]
enum Outcome {
    Rotated = 0,
    Finished = 1,
    AlreadyRotated = 2,
}

impl Outcome {
    fn describe(self) -> &'static str {
        match self {
            Outcome::Rotated => "rotated",
            Outcome::Finished => "finished (rotated by an interrupted run)",
            Outcome::AlreadyRotated => "already rotated, skipped",
        }
    }
}

/// Can the -i identities open the object's age header?
fn readable(
    ctx: &Ctx<'_>,
    bucket: &Bucket,
    key: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<bool, Failure> {
    let (reader, _) = rt.block_on(bucket.reader(key, None))?;
    match helm_bulk::vault::open(reader, &ctx.identities) {
        Ok(_) => Ok(true),
        Err(VaultError::WrongIdentity) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Rotates one bucket object. Steps, each safe to interrupt:
/// 1. write the new ciphertext to KEY.rekey, read it back and compare its
///    SHA-512, write its signature to KEY.rekey.sig;
/// 2. (--keep-old) copy KEY and KEY.sig to KEY.pre-rekey[.sig];
/// 3. copy KEY.rekey over KEY; put the new signature at KEY.sig (or delete
///    the old one); delete KEY.rekey, then KEY.rekey.sig.
///
/// On a rerun, KEY that no -i identity opens was copied over in step 3; if
/// KEY.rekey still exists, the rest of step 3 is finished.
fn rekey_object(
    ctx: &Ctx<'_>,
    bucket: &Bucket,
    key: &str,
    rt: &Arc<tokio::runtime::Runtime>,
) -> Result<Outcome, Failure> {
    let staged = format!("{key}{STAGED}");
    let staged_sig = format!("{staged}.sig");
    if !readable(ctx, bucket, key, rt)? {
        let pending = rt.block_on(bucket.get_small(&staged_sig))?;
        let interrupted = rt.block_on(bucket.reader(&staged, None)).is_ok();
        if !interrupted {
            rt.block_on(bucket.delete(&staged_sig))?;
            return Ok(Outcome::AlreadyRotated);
        }
        finish(bucket, key, pending, rt)?;
        return Ok(Outcome::Finished);
    }
    let source = SnapshotSource::Object {
        bucket: bucket.clone(),
        key: key.to_owned(),
        runtime: Arc::clone(rt),
        pinned: std::sync::Mutex::new(None),
    };
    // 1. The new object beside the original.
    let (writer, handle) = rt.block_on(bucket.upload(&staged))?.split();
    let (writer, digest) = match ctx.rotate(&source, writer) {
        Ok(done) => done,
        Err(e) => {
            // The writer is dropped unfinished: the upload aborts.
            let _ = rt.block_on(handle.wait());
            return Err(e);
        }
    };
    writer.commit()?;
    rt.block_on(handle.wait())?;
    let (mut reader, _) = rt.block_on(bucket.reader(&staged, None))?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hasher.finalize().as_slice() != digest.as_slice() {
        return Err(fail(format!(
            "{staged} does not read back as written; the original {key} is untouched"
        )));
    }
    let signature = ctx.signature(&digest)?;
    match &signature {
        Some(text) => rt.block_on(bucket.put(&staged_sig, text.clone().into_bytes()))?,
        None => rt.block_on(bucket.delete(&staged_sig))?,
    }
    // 2. The original, kept on request.
    let sig_key = format!("{key}.sig");
    if ctx.args.keep_old {
        rt.block_on(bucket.copy(key, &format!("{key}{KEPT}")))?;
        if let Some(old) = rt.block_on(bucket.get_small(&sig_key))? {
            rt.block_on(bucket.put(&format!("{key}{KEPT}.sig"), old))?;
        }
    }
    // 3. The new object in place of the original.
    rt.block_on(bucket.copy(&staged, key))?;
    finish(bucket, key, signature.map(String::into_bytes), rt)?;
    Ok(Outcome::Rotated)
}

/// The rest of step 3 once KEY holds the new ciphertext.
fn finish(
    bucket: &Bucket,
    key: &str,
    signature: Option<Vec<u8>>,
    rt: &tokio::runtime::Runtime,
) -> Result<(), Failure> {
    let sig_key = format!("{key}.sig");
    let staged = format!("{key}{STAGED}");
    rt.block_on(async {
        match signature {
            Some(sig) => bucket.put(&sig_key, sig).await?,
            None => bucket.delete(&sig_key).await?,
        }
        bucket.delete(&staged).await?;
        bucket.delete(&format!("{staged}.sig")).await
    })?;
    Ok(())
}
