//! The vault: age encryption of the snapshot stream, and the keys it uses.
//!
//! Encryption wraps any `Write` (the snapshot writer's output) and decryption
//! any `Read`; both stream in 64 KiB age chunks, so nothing is buffered whole
//! and no plaintext touches disk. Keys are parsed by the age crate's
//! `cli_common` helpers, which know X25519, SSH (ed25519, RSA), plugin and
//! passphrase-protected identity files.

pub mod agent;
mod decrypt;
mod encrypt;
mod keys;
mod rekey;
pub mod sign;

pub use decrypt::{Opened, Passphrase, open, open_again};
pub use encrypt::{EncryptingWriter, Protection, encrypt};
pub use keys::{
    AgeReadError, default_identity_path, generate_identity, prompt_new_passphrase,
    prompt_passphrase, read_identities, read_recipients, recipient_strings,
};
pub use rekey::reencrypt;

/// Errors from keys, encryption and decryption.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No recipient was configured for an encrypted save.
    #[error("no recipient to encrypt to")]
    NoRecipients,
    /// No identity was available to decrypt.
    #[error("no identity to decrypt with")]
    NoIdentities,
    /// None of the identities could decrypt the snapshot.
    #[error(
        "none of the given identities can decrypt this snapshot (it was encrypted to other recipients)"
    )]
    WrongIdentity,
    /// The passphrase did not decrypt the snapshot.
    #[error("the passphrase is wrong, or the snapshot header was modified")]
    WrongPassphrase,
    /// A plaintext tar.gz: helm-bulk reads only encrypted snapshots.
    #[error(
        "this file is a plaintext tar.gz, not an encrypted snapshot; helm-bulk reads only age-encrypted snapshots (it never writes plaintext ones)"
    )]
    UnexpectedPlaintext,
    /// The input is neither age nor gzip.
    #[error("not a helm-bulk snapshot: the data is neither age-encrypted nor gzip-compressed")]
    Unrecognized,
    /// The input is empty.
    #[error("the snapshot is empty")]
    Empty,
    /// The age header could not be parsed or authenticated.
    #[error("the snapshot's encryption header is invalid or was modified ({0})")]
    BadHeader(String),
    /// age cannot use a recipient, recipients file or identity file
    /// (missing file, bad recipients file line, …).
    #[error("{0}")]
    KeyFile(#[source] keys::AgeReadError),
    /// A key file, or the directory for one, cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done (`read recipients file`, `write`, …).
        action: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A new identity would overwrite an existing file.
    #[error("{} already exists; refusing to overwrite an identity{advice}", path.display())]
    IdentityExists {
        /// The existing file.
        path: std::path::PathBuf,
        /// What to do instead (may be empty).
        advice: &'static str,
    },
    /// The signing key, or the trusted signers, cannot be used.
    #[error(transparent)]
    Signing(#[from] sign::SigningError),
    /// No passphrase could be read from the terminal.
    #[error("cannot read a passphrase from the terminal ({0}); run in a terminal")]
    PassphraseInput(#[source] std::io::Error),
    /// An empty new passphrase.
    #[error("an empty passphrase is not allowed")]
    EmptyPassphrase,
    /// The two entries of a new passphrase differ.
    #[error("the passphrases do not match")]
    PassphrasesDiffer,
    /// Encryption could not start (e.g. incompatible recipients).
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    /// An I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The error a decrypting stream reports when ciphertext fails authentication.
/// It travels inside an `io::Error` through the gzip and tar layers.
#[derive(Debug, thiserror::Error)]
#[error(
    "the encrypted snapshot was modified or corrupted (age authentication failed); it cannot be trusted"
)]
pub struct Tampered;
