//! The decrypting half: detects what the input is, refuses the unexpected,
//! and returns a plaintext stream whose authentication failures are typed.

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use age::armor::ArmoredReader;

use super::{Tampered, VaultError};

const AGE_BINARY: &[u8] = b"age-encryption.org/";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const GZIP: &[u8] = &[0x1f, 0x8b];

/// The decrypted stream of a snapshot.
pub struct Opened {
    /// The plaintext stream. Read it to its end: the final age chunk is only
    /// authenticated there.
    pub reader: Box<dyn Read>,
}

/// Maps age's stream errors to typed ones: truncation stays `UnexpectedEof`,
/// every other failure becomes [`Tampered`].
struct Authenticated<R>(R);

impl<R: Read> Read for Authenticated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(io::ErrorKind::UnexpectedEof, "the snapshot is truncated")
            }
            io::ErrorKind::Interrupted => e,
            _ => io::Error::new(io::ErrorKind::InvalidData, Tampered),
        })
    }
}

/// Opens a snapshot stream.
///
/// Only encrypted snapshots are read: a plaintext tar.gz is refused (helm-bulk
/// never writes one, and accepting one would let anybody who can write to
/// the store substitute releases without knowing a recipient).
///
/// * `identities`: identity files; only read when the input is encrypted to
///   recipients. A passphrase-encrypted input prompts on the terminal instead.
pub fn open<R: Read + 'static>(input: R, identities: &[PathBuf]) -> Result<Opened, VaultError> {
    open_again(input, identities, &Passphrase::default())
}

/// The passphrase of a snapshot that is decrypted more than once (load
/// reads it again for the records): asked the first time, then kept in
/// memory only, wiped when dropped.
#[derive(Default)]
pub struct Passphrase(std::sync::Mutex<Option<secrecy::SecretString>>);

/// [`open`], asking for the passphrase only if `passphrase` does not hold
/// the one that opened it before.
pub fn open_again<R: Read + 'static>(
    input: R,
    identities: &[PathBuf],
    passphrase: &Passphrase,
) -> Result<Opened, VaultError> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let head = input.fill_buf()?;
    if head.is_empty() {
        return Err(VaultError::Empty);
    }
    let kind = if head.starts_with(GZIP) {
        Kind::Gzip
    } else if head.starts_with(AGE_BINARY) || head.starts_with(AGE_ARMOR) {
        Kind::Age
    } else if AGE_BINARY.starts_with(head) || AGE_ARMOR.starts_with(head) {
        // A prefix of an age header: a truncated file.
        Kind::Age
    } else {
        return Err(VaultError::Unrecognized);
    };
    if kind == Kind::Gzip {
        return Err(VaultError::UnexpectedPlaintext);
    }
    let decryptor =
        age::Decryptor::new_buffered(ArmoredReader::new(input)).map_err(header_error)?;
    let reader = if decryptor.is_scrypt() {
        let known = passphrase.0.lock().ok().and_then(|p| p.clone());
        let secret = match known {
            Some(p) => p,
            None => super::prompt_passphrase("Enter the snapshot's passphrase: ")?,
        };
        let identity = age::scrypt::Identity::new(secret.clone());
        let reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
                    VaultError::WrongPassphrase
                }
                other => header_error(other),
            })?;
        if let Ok(mut p) = passphrase.0.lock() {
            *p = Some(secret);
        }
        reader
    } else {
        if identities.is_empty() {
            return Err(VaultError::NoIdentities);
        }
        let ids = super::read_identities(identities)?;
        decryptor
            .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => VaultError::WrongIdentity,
                other => header_error(other),
            })?
    };
    Ok(Opened {
        reader: Box::new(Authenticated(reader)),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gzip,
    Age,
}

fn header_error(e: age::DecryptError) -> VaultError {
    match e {
        age::DecryptError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            VaultError::BadHeader("the file is truncated".to_owned())
        }
        age::DecryptError::NoMatchingKeys => VaultError::WrongIdentity,
        other => VaultError::BadHeader(super::keys::plain_message(&other.to_string())),
    }
}
