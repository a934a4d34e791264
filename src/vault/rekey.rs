//! Re-encryption of a snapshot stream to new recipients, in memory: the age
//! decrypting reader feeds the age encrypting writer directly, so the
//! plaintext exists only in the buffers between them (never on disk).

use std::io::{self, Read, Write};

use super::{EncryptingWriter, Opened};

/// A reader that copies every byte it reads into a writer.
struct Tee<'a, R: Read, W: Write> {
    inner: R,
    out: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Streams the plaintext of `opened` into `out`, byte for byte, while
/// `check` reads (and validates) the same bytes as they pass. Whatever
/// `check` leaves unread is passed on too, so the output always holds the
/// whole input. Returns the inner writer once the final age chunk is written;
/// on any error `out` is dropped unfinished (its output will not decrypt).
pub fn reencrypt<W, E, F>(opened: Opened, mut out: EncryptingWriter<W>, check: F) -> Result<W, E>
where
    W: Write,
    E: From<io::Error>,
    F: FnOnce(&mut dyn Read) -> Result<(), E>,
{
    let mut tee = Tee {
        inner: opened.reader,
        out: &mut out,
    };
    check(&mut tee)?;
    io::copy(&mut tee, &mut io::sink())?;
    Ok(out.finish()?)
}
