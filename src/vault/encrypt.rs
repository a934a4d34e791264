//! The encrypting half: snapshot bytes in, age (binary or armored) out.

use std::io::{self, Write};

use age::armor::{ArmoredWriter, Format};
use secrecy::SecretString;

use super::VaultError;

/// How a snapshot is protected.
pub enum Protection {
    /// Encrypted to these recipients.
    Recipients(Vec<Box<dyn age::Recipient + Send>>),
    /// Encrypted with a passphrase (scrypt).
    Passphrase(SecretString),
}

/// A writer that encrypts everything written to it. Call [`finish`](Self::finish):
/// without it the age stream has no final chunk and will not decrypt.
pub struct EncryptingWriter<W: Write>(age::stream::StreamWriter<ArmoredWriter<W>>);

/// Wraps `out` so that everything written is protected as `protection` says.
pub fn encrypt<W: Write>(
    out: W,
    protection: &Protection,
    armor: bool,
) -> Result<EncryptingWriter<W>, VaultError> {
    let encryptor = match protection {
        Protection::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        Protection::Recipients(rs) => {
            if rs.is_empty() {
                return Err(VaultError::NoRecipients);
            }
            age::Encryptor::with_recipients(rs.iter().map(|r| r.as_ref() as &dyn age::Recipient))
                .map_err(|e| VaultError::Encrypt(e.to_string()))?
        }
    };
    let format = if armor {
        Format::AsciiArmor
    } else {
        Format::Binary
    };
    let armored = ArmoredWriter::wrap_output(out, format)?;
    Ok(EncryptingWriter(encryptor.wrap_output(armored)?))
}

impl<W: Write> EncryptingWriter<W> {
    /// Writes the final age chunk and the armor footer, and returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.0.finish()?.finish()
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
