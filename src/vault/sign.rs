//! Authenticity: detached SSH signatures (the SSHSIG format of `ssh-keygen -Y
//! sign`) over the exact bytes of an encrypted snapshot, in the `helm-bulk`
//! namespace, checked against an OpenSSH `allowed_signers` file.
//!
//! age gives confidentiality and integrity, not authenticity: anyone who knows
//! a recipient (public by design) can write a valid snapshot. A signature made
//! with a key in the trusted signers file proves who made it.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};
use signature::Verifier;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::VaultError;

/// Why a signing key or a trusted signers file cannot be used, or signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The signing key file is not an OpenSSH private key.
    #[error(
        "cannot read the signing key {}: {source} (an OpenSSH private key is expected)",
        path.display()
    )]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: ssh_key::Error,
    },
    /// The passphrase does not decrypt the signing key.
    #[error("wrong passphrase for the signing key {}", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// A key of an algorithm helm-bulk does not sign with.
    #[error("signing key {} is {algorithm}; use an ed25519, ECDSA or RSA key", path.display())]
    Algorithm {
        /// The key file.
        path: PathBuf,
        /// Its algorithm.
        algorithm: ssh_key::Algorithm,
    },
    /// A public key given, with no ssh-agent to hold its private key.
    #[error(
        "{} is a public key, so its private key must be in ssh-agent, but SSH_AUTH_SOCK is not set",
        path.display()
    )]
    NoAgent {
        /// The public key file.
        path: PathBuf,
    },
    /// The ssh-agent does not hold the private key of the public key given.
    #[error(
        "ssh-agent ({}) does not hold the private key of {}; add it with ssh-add",
        socket.display(),
        path.display()
    )]
    NotInAgent {
        /// The agent's socket.
        socket: PathBuf,
        /// The public key file.
        path: PathBuf,
    },
    /// Asking ssh-agent failed.
    #[error("{0}")]
    Agent(#[source] super::agent::AgentError),
    /// Making the signature failed.
    #[error("signing failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An RSA private key whose numbers do not make a key.
    #[error("the RSA signing key is malformed")]
    RsaMalformed,
    /// An RSA key too short to sign with.
    #[error("the RSA signing key is shorter than 2048 bits; use a stronger key")]
    RsaTooShort,
    /// The trusted signers file cannot be read.
    #[error("cannot read trusted signers file {}: {source}", path.display())]
    SignersFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of a trusted signers file that cannot be used (named by its
    /// number, never its content).
    #[error("trusted signers file {origin} line {line}: {why}")]
    SignersLine {
        /// The file.
        origin: String,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A trusted signers file without a key.
    #[error("trusted signers file {origin} lists no keys")]
    NoSigners {
        /// The file.
        origin: String,
    },
}

/// The SSHSIG namespace of helm-bulk signatures.
pub const NAMESPACE: &str = "helm-bulk";

/// The signature file of a snapshot: `<snapshot>.sig`.
pub fn signature_path(snapshot: &Path) -> PathBuf {
    let mut s = snapshot.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Loads an SSH private key (ed25519, ECDSA P-256/P-384 or RSA), asking for
/// its passphrase on the terminal when it is encrypted.
pub fn load_signing_key(path: &Path) -> Result<PrivateKey, VaultError> {
    let key = PrivateKey::read_openssh_file(path).map_err(|source| SigningError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let key = if key.is_encrypted() {
        let pass =
            super::prompt_passphrase(&format!("Enter the passphrase of {}: ", path.display()))?;
        use secrecy::ExposeSecret;
        key.decrypt(pass.expose_secret().as_bytes())
            .map_err(|_| SigningError::WrongPassphrase {
                path: path.to_owned(),
            })?
    } else {
        key
    };
    match key.algorithm() {
        ssh_key::Algorithm::Ed25519
        | ssh_key::Algorithm::Rsa { .. }
        | ssh_key::Algorithm::Ecdsa { .. } => Ok(key),
        other => Err(SigningError::Algorithm {
            path: path.to_owned(),
            algorithm: other,
        }
        .into()),
    }
}

/// What signs snapshots.
pub enum SigningKey {
    /// A private key read from a file.
    Key(Box<PrivateKey>),
    /// A key whose private half is held by ssh-agent (at `socket`).
    Agent {
        /// The public key, from the `.pub` file given.
        public: Box<PublicKey>,
        /// The agent's socket (SSH_AUTH_SOCK).
        socket: PathBuf,
    },
}

/// Loads what `--sign-key FILE` names: an OpenSSH private key file (see
/// [`load_signing_key`]), or a public key file (`id_ed25519.pub`) whose
/// private key is held by the ssh-agent at SSH_AUTH_SOCK, as with
/// `ssh-keygen -Y sign -f KEY.pub`.
pub fn load_signer(path: &Path) -> Result<SigningKey, VaultError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let Ok(public) = PublicKey::from_openssh(text.trim()) else {
        return Ok(SigningKey::Key(Box::new(load_signing_key(path)?)));
    };
    if !matches!(
        public.algorithm(),
        ssh_key::Algorithm::Ed25519
            | ssh_key::Algorithm::Rsa { .. }
            | ssh_key::Algorithm::Ecdsa { .. }
    ) {
        return Err(SigningError::Algorithm {
            path: path.to_owned(),
            algorithm: public.algorithm(),
        }
        .into());
    }
    let socket = std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| SigningError::NoAgent {
            path: path.to_owned(),
        })?;
    match super::agent::holds(&socket, &public) {
        Ok(true) => Ok(SigningKey::Agent {
            public: Box::new(public),
            socket,
        }),
        Ok(false) => Err(SigningError::NotInAgent {
            socket,
            path: path.to_owned(),
        }
        .into()),
        Err(e) => Err(SigningError::Agent(e).into()),
    }
}

/// A writer that passes bytes through and hashes them (SHA-512).
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha512,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha512::new(),
        }
    }

    /// The inner writer and the digest of everything written.
    pub fn finish(self) -> (W, Vec<u8>) {
        (self.inner, self.hasher.finalize().to_vec())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// The blob an SSHSIG signature covers (PROTOCOL.sshsig), from a message digest.
fn signed_data(namespace: &str, reserved: &[u8], alg: HashAlg, digest: &[u8]) -> Vec<u8> {
    let mut out = b"SSHSIG".to_vec();
    put_string(&mut out, namespace.as_bytes());
    put_string(&mut out, reserved);
    put_string(&mut out, alg.as_str().as_bytes());
    put_string(&mut out, digest);
    out
}

/// Signs a SHA-512 digest of the snapshot; returns the armored signature.
pub fn sign_digest(signer: &SigningKey, sha512: &[u8]) -> Result<String, VaultError> {
    let data = signed_data(NAMESPACE, &[], HashAlg::Sha512, sha512);
    let (public, sig) = match signer {
        SigningKey::Key(key) => {
            let sig = match key.key_data() {
                ssh_key::private::KeypairData::Rsa(rsa) => sign_rsa(rsa, &data)?,
                _ => signature::Signer::try_sign(key.as_ref(), &data)
                    .map_err(|e| SigningError::Failed(e.into()))?,
            };
            (key.public_key().key_data().clone(), sig)
        }
        SigningKey::Agent { public, socket } => {
            let sig = super::agent::sign(socket, public, &data)
                .map_err(|e| SigningError::Failed(e.into()))?;
            (public.key_data().clone(), sig)
        }
    };
    let sshsig = SshSig::new(public, NAMESPACE, HashAlg::Sha512, sig)
        .map_err(|e| SigningError::Failed(e.into()))?;
    let mut pem = sshsig
        .to_pem(LineEnding::LF)
        .map_err(|e| SigningError::Failed(e.into()))?;
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    Ok(pem)
}

/// RSA signing (rsa-sha2-512) done here: ssh-key 0.6.7 builds the RSA
/// private key from the wrong primes (`p` twice) and cannot sign.
fn sign_rsa(
    key: &ssh_key::private::RsaKeypair,
    data: &[u8],
) -> Result<ssh_key::Signature, SigningError> {
    let err = || SigningError::RsaMalformed;
    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or_else(err)
    };
    let private = rsa::RsaPrivateKey::from_components(
        int(&key.public.n)?,
        int(&key.public.e)?,
        int(&key.private.d)?,
        vec![int(&key.private.p)?, int(&key.private.q)?],
    )
    .map_err(|_| err())?;
    if rsa::traits::PublicKeyParts::size(&private) * 8 < 2048 {
        return Err(SigningError::RsaTooShort);
    }
    let signing = rsa::pkcs1v15::SigningKey::<Sha512>::new(private);
    let sig: rsa::pkcs1v15::Signature =
        signature::Signer::try_sign(&signing, data).map_err(|e| SigningError::Failed(e.into()))?;
    ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        signature::SignatureEncoding::to_vec(&sig),
    )
    .map_err(|e| SigningError::Failed(e.into()))
}

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The principals (identities) of the line.
    pub principals: Vec<String>,
    /// `namespaces="…"`, when given.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after`, as a UTC timestamp.
    pub valid_after: Option<time::OffsetDateTime>,
    /// `valid-before`, as a UTC timestamp.
    pub valid_before: Option<time::OffsetDateTime>,
    /// The key.
    pub key: PublicKey,
}

/// Splits off the first whitespace-delimited token, honouring double quotes.
fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], &s[i..]),
            _ => {}
        }
    }
    (s, "")
}

fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_time(v: &str) -> Option<time::OffsetDateTime> {
    let v = v.trim_end_matches(['Z', 'z']);
    if !v.bytes().all(|b| b.is_ascii_digit()) || !matches!(v.len(), 8 | 12 | 14) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| v.get(r).and_then(|s| s.parse::<u32>().ok());
    let date = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let (h, m, s) = match v.len() {
        8 => (0, 0, 0),
        12 => (n(8..10)?, n(10..12)?, 0),
        _ => (n(8..10)?, n(10..12)?, n(12..14)?),
    };
    let t = time::Time::from_hms(h as u8, m as u8, s as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

/// Parses an OpenSSH `allowed_signers` file. Errors name the line, never its content.
pub fn read_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, VaultError> {
    let text = std::fs::read_to_string(path).map_err(|source| SigningError::SignersFile {
        path: path.to_owned(),
        source,
    })?;
    parse_allowed_signers(&text, &path.display().to_string())
}

/// Parses the text of an OpenSSH `allowed_signers` file; `origin` names it in
/// errors (which give the line, never its content).
pub fn parse_allowed_signers(text: &str, origin: &str) -> Result<Vec<AllowedSigner>, VaultError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |why: &'static str| {
            VaultError::from(SigningError::SignersLine {
                origin: origin.to_owned(),
                line: i + 1,
                why,
            })
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (principals, rest) = token(line);
        let (next, after) = token(rest);
        let (options, key_text) = if is_key_type(next) {
            ("", rest)
        } else {
            (next, after)
        };
        let mut signer = AllowedSigner {
            principals: principals
                .trim_matches('"')
                .split(',')
                .map(str::to_owned)
                .collect(),
            namespaces: None,
            valid_after: None,
            valid_before: None,
            key: PublicKey::from_openssh(key_text.trim())
                .map_err(|_| bad("not a valid public key"))?,
        };
        for opt in split_options(options).into_iter().filter(|o| !o.is_empty()) {
            let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
            let value = value.trim_matches('"');
            match name.to_ascii_lowercase().as_str() {
                "namespaces" => {
                    signer.namespaces = Some(value.split(',').map(str::to_owned).collect())
                }
                "valid-after" => {
                    signer.valid_after =
                        Some(parse_time(value).ok_or_else(|| bad("bad valid-after time"))?)
                }
                "valid-before" => {
                    signer.valid_before =
                        Some(parse_time(value).ok_or_else(|| bad("bad valid-before time"))?)
                }
                "cert-authority" => {
                    return Err(bad(
                        "cert-authority (SSH certificates) is not supported; list the signing keys themselves",
                    ));
                }
                _ => return Err(bad("unknown option")),
            }
        }
        out.push(signer);
    }
    if out.is_empty() {
        return Err(SigningError::NoSigners {
            origin: origin.to_owned(),
        }
        .into());
    }
    Ok(out)
}

/// Glob match of OpenSSH patterns (`*` and `?`).
fn pattern_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

/// Who signed a verified snapshot.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The principals of the matching allowed_signers line.
    pub principals: String,
    /// The key's SHA-256 fingerprint.
    pub fingerprint: String,
    /// The key algorithm.
    pub algorithm: String,
}

/// Why a signature was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No signature file.
    #[error(
        "the snapshot is not signed ({0} is missing) and trusted signers are configured; refusing it"
    )]
    Unsigned(String),
    /// The signature file is malformed.
    #[error("the signature {0} is not a valid SSH signature")]
    Malformed(String),
    /// Another namespace.
    #[error("the signature is for namespace `{0}`, not `helm-bulk`; refusing it")]
    Namespace(String),
    /// Signed by a key not in the trusted signers.
    #[error("the snapshot is signed by an untrusted key ({0}); refusing it")]
    Untrusted(String),
    /// The signature does not match the bytes.
    #[error(
        "the signature does not match the snapshot: the snapshot or its signature was modified; refusing it"
    )]
    Mismatch,
    /// Reading failed.
    #[error("cannot read {0}: {1}")]
    Io(String, io::Error),
}

/// Verifies `snapshot` against its detached signature and the trusted signers.
/// Reads the snapshot file once (hashing only; nothing is decrypted).
pub fn verify_file(
    snapshot: &Path,
    signature: &Path,
    signers: &[AllowedSigner],
) -> Result<Signer, VerifyError> {
    let text = match std::fs::read_to_string(signature) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(VerifyError::Io(signature.display().to_string(), e)),
    };
    let mut file = std::fs::File::open(snapshot)
        .map_err(|e| VerifyError::Io(snapshot.display().to_string(), e))?;
    verify_stream(
        &mut file,
        &snapshot.display().to_string(),
        text.as_deref(),
        &signature.display().to_string(),
        signers,
    )
}

/// Verifies a snapshot stream against a signature's text (`None`: there is no
/// signature) and the trusted signers. The signer is checked before the
/// snapshot is read.
pub fn verify_stream(
    snapshot: &mut dyn Read,
    snapshot_name: &str,
    signature: Option<&str>,
    signature_name: &str,
    signers: &[AllowedSigner],
) -> Result<Signer, VerifyError> {
    let text = signature.ok_or_else(|| VerifyError::Unsigned(signature_name.to_owned()))?;
    let sig = SshSig::from_pem(text.trim())
        .map_err(|_| VerifyError::Malformed(signature_name.to_owned()))?;
    if sig.namespace() != NAMESPACE {
        return Err(VerifyError::Namespace(
            sig.namespace().escape_debug().to_string(),
        ));
    }
    let fingerprint = PublicKey::from(sig.public_key().clone())
        .fingerprint(HashAlg::Sha256)
        .to_string();
    let now = time::OffsetDateTime::now_utc();
    let signer = signers
        .iter()
        .find(|s| {
            s.key.key_data() == sig.public_key()
                && s.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|p| pattern_match(p, NAMESPACE)))
                && s.valid_after.is_none_or(|t| now >= t)
                && s.valid_before.is_none_or(|t| now < t)
        })
        .ok_or_else(|| VerifyError::Untrusted(fingerprint.clone()))?;
    let digest = match sig.hash_alg() {
        HashAlg::Sha256 => hash_reader::<Sha256>(snapshot),
        _ => hash_reader::<Sha512>(snapshot),
    }
    .map_err(|e| VerifyError::Io(snapshot_name.to_owned(), e))?;
    let data = signed_data(sig.namespace(), sig.reserved(), sig.hash_alg(), &digest);
    sig.public_key()
        .verify(&data, sig.signature())
        .map_err(|_| VerifyError::Mismatch)?;
    Ok(Signer {
        principals: signer.principals.join(","),
        fingerprint,
        algorithm: sig.algorithm().to_string(),
    })
}

fn hash_reader<D: Digest>(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut h = D::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_match("helm-*", "helm-bulk"));
        assert!(pattern_match("*", "helm-bulk"));
        assert!(!pattern_match("file", "helm-bulk"));
        assert!(pattern_match("helm-bul?", "helm-bulk"));
    }

    #[test]
    fn times() {
        assert!(parse_time("20260102").is_some());
        assert!(parse_time("202601021230Z").is_some());
        assert!(parse_time("20260102123005").is_some());
        assert!(parse_time("2026-01-02").is_none());
    }

    #[test]
    fn tokens_honour_quotes() {
        assert_eq!(token(r#"a,b namespaces="x y" ssh-ed25519 AAA"#).0, "a,b");
        let (_, rest) = token(r#"a namespaces="x y",valid-after="20200101" ssh-ed25519 AAA"#);
        let (opts, _) = token(rest);
        assert_eq!(
            split_options(opts),
            [r#"namespaces="x y""#, r#"valid-after="20200101""#]
        );
    }

    #[test]
    fn key_errors_keep_their_cause_and_read_as_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("allowed_signers");
        let e = read_allowed_signers(&missing).unwrap_err();
        let io = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<io::Error>())
            .expect("the I/O error is the cause");
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            crate::errors::one_line(&e),
            format!(
                "cannot read trusted signers file {}: {io}",
                missing.display()
            )
        );
        let e = parse_allowed_signers("a@b ssh-ed25519 AAAA\n", "f").unwrap_err();
        assert_eq!(
            crate::errors::one_line(&e),
            "trusted signers file f line 1: not a valid public key"
        );
    }
}
