//! Byte sinks and sources for snapshots: files (written atomically, mode
//! 0600) and standard input/output, buckets ([`bucket`]), and where a
//! snapshot is read from ([`input`]).

pub mod bucket;
pub mod input;
pub mod unfinished;

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use unfinished::Unfinished;
pub use unfinished::remove_unfinished;

/// Where a snapshot is written.
pub enum Sink {
    /// A file, written to a private temp file beside it and renamed on commit.
    File(AtomicFile),
    /// Standard output.
    Stdout(io::Stdout),
    /// An object storage upload (see [`bucket`]).
    Remote(bucket::UploadWriter),
}

/// A file that appears at its destination only when [`commit`](Self::commit)
/// is called. Until then it is a 0600 temp file in the same directory, which
/// is removed if the writer is dropped (on any error) or the process is
/// interrupted ([`remove_unfinished`]).
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
    _unfinished: Unfinished,
}

/// Creates a temp file with mode 0600 in `dir`.
pub fn private_temp_file(dir: &Path) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".helm-bulk-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    builder.tempfile_in(dir)
}

impl AtomicFile {
    /// Starts writing `dest`.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dest.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", dest.display()),
            ));
        }
        let tmp = private_temp_file(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })?;
        Ok(AtomicFile {
            _unfinished: Unfinished::new(tmp.path()),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Makes the file readable by everyone (0644) once committed: for output
    /// that holds nothing secret and that another user must read, such as
    /// the metrics of `check --prometheus-textfile`.
    pub fn readable_by_all(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            self.tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        self.tmp.flush()?;
        self.tmp.as_file().sync_all()?;
        let dest = self.dest.clone();
        self.tmp.persist(&dest).map_err(|e| {
            io::Error::new(
                e.error.kind(),
                format!("cannot rename into {}: {}", dest.display(), e.error),
            )
        })?;
        #[cfg(unix)]
        if let Some(dir) = dest.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Make the rename durable; a failure here is not worth failing the save.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// A binary snapshot was to be written to a terminal.
#[derive(Debug, thiserror::Error)]
#[error("refusing to write a binary snapshot to a terminal; redirect standard output")]
pub struct BinaryToTerminal;

impl Sink {
    /// Opens `-` as standard output, anything else as an atomic file.
    /// `binary` output is refused on a terminal.
    pub fn open(path: &Path, binary: bool) -> io::Result<Sink> {
        if path == Path::new("-") {
            let out = io::stdout();
            if binary && out.is_terminal() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    BinaryToTerminal,
                ));
            }
            Ok(Sink::Stdout(out))
        } else {
            Ok(Sink::File(AtomicFile::create(path)?))
        }
    }

    /// Completes the output: renames a file into place, flushes stdout.
    pub fn commit(self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.commit(),
            Sink::Stdout(mut s) => s.flush(),
            Sink::Remote(u) => u.commit(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.tmp.write(buf),
            Sink::Stdout(s) => s.write(buf),
            Sink::Remote(u) => u.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.tmp.flush(),
            Sink::Stdout(s) => s.flush(),
            Sink::Remote(u) => u.flush(),
        }
    }
}

/// Opens a snapshot for reading: `-` is standard input.
pub fn open_source(path: &Path) -> io::Result<Box<dyn Read>> {
    if path == Path::new("-") {
        Ok(Box::new(io::stdin()))
    } else {
        let f = File::open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        Ok(Box::new(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.age");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.tmp.write_all(b"data").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn dropped_atomic_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.age");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.tmp.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
