//! The streaming halves of an upload and a download: the blocking writer
//! the snapshot writer thread feeds, the handle that completes the upload,
//! and the blocking reader over a streamed object.

use std::io::{self, Read, Write};

use bytes::Bytes;

use super::BucketError;

pub(super) enum Chunk {
    Data(Bytes),
    Done,
}

/// An upload in progress.
pub struct Upload {
    /// Where the snapshot bytes go.
    pub writer: UploadWriter,
    pub(super) task: tokio::task::JoinHandle<Result<u64, BucketError>>,
    /// The object key.
    pub key: String,
}

impl Upload {
    /// Splits into the writer and a handle that completes the upload.
    pub fn split(self) -> (UploadWriter, UploadHandle) {
        (
            self.writer,
            UploadHandle {
                task: self.task,
                key: self.key,
            },
        )
    }
}

/// Waits for an upload to complete.
pub struct UploadHandle {
    pub(super) task: tokio::task::JoinHandle<Result<u64, BucketError>>,
    /// The object key.
    pub key: String,
}

impl UploadHandle {
    /// Waits for the upload; it completes only if the writer was committed.
    pub async fn wait(self) -> Result<u64, BucketError> {
        self.task.await.map_err(BucketError::UploadTask)?
    }
}

/// The blocking writer side of an upload (used from the snapshot writer thread).
pub struct UploadWriter {
    pub(super) tx: Option<tokio::sync::mpsc::Sender<Chunk>>,
    pub(super) buf: Vec<u8>,
}

impl UploadWriter {
    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("the upload is already finished"))?;
        tx.blocking_send(chunk)
            .map_err(|_| io::Error::other("the upload stopped"))
    }

    /// Sends the last bytes and marks the upload complete.
    pub fn commit(mut self) -> io::Result<()> {
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            self.send(Chunk::Data(Bytes::from(rest)))?;
        }
        self.send(Chunk::Done)?;
        self.tx = None;
        Ok(())
    }
}

impl UploadWriter {
    /// [`commit`](Self::commit) from async code.
    pub async fn commit_async(mut self) -> io::Result<()> {
        let tx = self
            .tx
            .take()
            .ok_or_else(|| io::Error::other("the upload is already finished"))?;
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            tx.send(Chunk::Data(Bytes::from(rest)))
                .await
                .map_err(|_| io::Error::other("the upload stopped"))?;
        }
        tx.send(Chunk::Done)
            .await
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 20));
            self.send(Chunk::Data(Bytes::from(full)))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking reader over a streamed object.
pub struct ObjectReader {
    pub(super) rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    pub(super) current: Bytes,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
