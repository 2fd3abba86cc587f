//! An RDB file on disk, read ahead on a thread of its own.
//!
//! Copying a file out of the page cache (`read(2)`) is about a fifth of the parser's time
//! on a warm cache, and it is work the parser's thread need not do: a reader thread reads
//! the file in [`BLOCK`]-sized blocks, at most [`AHEAD`] blocks ahead of the parser, and the
//! parser copies them out of memory (faster than the kernel's copy and on its own core). The
//! blocks are recycled, so the read-ahead holds `(AHEAD + 2) × BLOCK` bytes whatever the
//! file's size. Dropping the reader (the parser stopped early) ends the thread at its next
//! block.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::error::Cause;
use super::{OpenedStream, SourceError};

/// Bytes per read of the reader thread.
const BLOCK: usize = 512 * 1024;
/// Blocks read ahead of the parser (besides the one it copies from and the one being read).
const AHEAD: usize = 2;

/// Open `path` for reading, read ahead on a thread; the parser does its own buffering.
pub fn open(instance: &str, path: &Path) -> Result<OpenedStream, SourceError> {
    let io_error =
        |context: String, source| SourceError::instance(instance, Cause::Io { context, source });
    let file =
        File::open(path).map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
    let total_bytes = file.metadata().ok().map(|m| m.len());
    let reader = ReadAhead::start(file)
        .map_err(|e| io_error(format!("cannot start reading {}", path.display()), e))?;
    Ok(OpenedStream {
        reader: Box::new(reader),
        total_bytes,
        cancel: None,
        memory: None,
    })
}

/// A `Read` over blocks that a thread reads from `inner` (see the module docs).
pub struct ReadAhead {
    /// Filled blocks, in order; an error or the end (an empty block) ends the stream.
    blocks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied blocks back to the thread.
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    /// Start the reader thread over `inner`.
    pub fn start<R: Read + Send + 'static>(inner: R) -> io::Result<Self> {
        let (filled_tx, filled_rx) = sync_channel(AHEAD);
        let (spent_tx, spent_rx) = sync_channel(AHEAD + 2);
        std::thread::Builder::new()
            .name("rdb-read-ahead".into())
            .spawn(move || read_blocks(inner, &filled_tx, &spent_rx))?;
        Ok(ReadAhead {
            blocks: filled_rx,
            spent: spent_tx,
            current: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let spent = std::mem::take(&mut self.current);
            if spent.capacity() > 0 {
                // The thread may have ended (end of file): then the block is just freed.
                let _ = self.spent.try_send(spent);
            }
            self.pos = 0;
            match self.blocks.recv() {
                Ok(Ok(block)) if block.is_empty() => self.done = true,
                Ok(Ok(block)) => self.current = block,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the read-ahead thread ended early"));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The reader thread: fill blocks (recycled ones first) until the end or an error, which is
/// sent as the last item. Returns when the parser side is gone.
fn read_blocks<R: Read>(
    mut inner: R,
    filled: &SyncSender<io::Result<Vec<u8>>>,
    spent: &Receiver<Vec<u8>>,
) {
    loop {
        let mut block = spent.try_recv().unwrap_or_default();
        block.resize(BLOCK, 0);
        let mut len = 0;
        let result = loop {
            match inner.read(&mut block[len..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    len += n;
                    if len == BLOCK {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        block.truncate(len);
        let end = len < BLOCK;
        if len > 0 && filled.send(Ok(block)).is_err() {
            return;
        }
        match result {
            Err(e) => {
                let _ = filled.send(Err(e));
                return;
            }
            Ok(()) if end => {
                let _ = filled.send(Ok(Vec::new()));
                return;
            }
            Ok(()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `data` through a `ReadAhead` with reads of `chunk` bytes.
    fn read_all(data: Vec<u8>, chunk: usize) -> io::Result<Vec<u8>> {
        let mut r = ReadAhead::start(io::Cursor::new(data))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn every_byte_in_order_across_blocks() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            for chunk in [1000, 128 * 1024, 3 * BLOCK] {
                assert_eq!(
                    read_all(data.clone(), chunk).unwrap(),
                    data,
                    "{len} by {chunk}"
                );
            }
        }
    }

    /// A source that fails after some bytes.
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "boom"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_read_before_it() {
        let mut r = ReadAhead::start(Failing(BLOCK + 10)).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("end instead of the error"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(got, BLOCK + 10);
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }

    /// An endless source that records when it is dropped (the thread ended).
    struct Endless(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(0);
            Ok(buf.len())
        }
    }
    impl Drop for Endless {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_the_reader_ends_the_thread() {
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut r = ReadAhead::start(Endless(std::sync::Arc::clone(&ended))).unwrap();
        let mut buf = vec![0u8; 1000];
        assert_eq!(r.read(&mut buf).unwrap(), 1000);
        drop(r);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !ended.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread still runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
