//! The parser's one input buffer: a window over the byte stream with absolute offsets and an
//! incremental CRC64.
//!
//! Memory is decided here: the window starts at [`INITIAL_BUF_SIZE`] (128 KiB) and grows, by
//! powers of two, to at most [`BUF_SIZE`] (1 MiB), only when a caller asks for that many
//! contiguous bytes (`ensure`, for a container counted in place); it never shrinks. Everything
//! larger is streamed through (`skip`, `read_append`). Running out of input is reported as
//! [`ParseErrorKind::UnexpectedEof`] only when the stream really ended: short reads from
//! sockets and pipes are retried, and no error value is built for control flow.
//!
//! Read ahead ([`Reader::read_ahead`]), a thread fills blocks of [`BLOCK`] bytes behind
//! [`HEADROOM`] free bytes and each block becomes the window in turn (the unread tail moved
//! into the headroom), so the input is not copied again; the window is then a block, or, for a
//! container that must be contiguous, the tail with the next block's data appended.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crc_fast::{CrcAlgorithm, Digest};

use super::error::ParseErrorKind;

/// Largest input window. Containers up to this size are counted in place; the window starts
/// at [`INITIAL_BUF_SIZE`] and grows to the power of two that holds such a container, only
/// when one needs it.
pub const BUF_SIZE: usize = 1 << 20;
/// Initial input window: enough for the read sizes that keep throughput at memory speed.
pub const INITIAL_BUF_SIZE: usize = 128 * 1024;

/// CRC64 with the Jones polynomial, reflected, as Redis's `crc64.c` computes it
/// (CRC-64/REDIS). `crc-fast` uses carry-less multiplication where the CPU has it: the
/// table-driven `crc` crate cost a quarter of the parse time.
const CRC64: CrcAlgorithm = CrcAlgorithm::Crc64Redis;

pub(crate) type PResult<T> = Result<T, ParseErrorKind>;

/// Data bytes per block of the read-ahead thread ([`Reader::read_ahead`]).
const BLOCK: usize = 128 * 1024;
/// Free bytes in front of a block's data: the unread tail of the previous window moves there
/// (a record that straddles two blocks), so the window becomes the block without a copy.
const HEADROOM: usize = 64 * 1024;
/// Blocks the read-ahead thread may have filled before the parser takes them.
const AHEAD: usize = 2;

/// Where the window's bytes come from.
enum Input<R> {
    /// Read into the window by the parser's thread.
    Stream(R),
    /// Blocks filled by a read-ahead thread, taken over as the window.
    Blocks(Blocks),
}

/// The parser's end of a read-ahead thread: filled blocks with the end of their data (each
/// `HEADROOM` bytes, then the data; no data = the end; an error ends the stream), and the way
/// back for spent ones. Blocks keep their full length both ways, so a block is zeroed once,
/// when it is first made, not each time a short read fills part of it.
struct Blocks {
    filled: Receiver<io::Result<(Vec<u8>, usize)>>,
    spent: SyncSender<Vec<u8>>,
}

/// Buffered reader with absolute offsets and an optional running CRC64.
pub(crate) struct Reader<R> {
    input: Input<R>,
    /// The window: `buf[pos..end]` is unread; `buf[end..]` is room to read into (a stream)
    /// or the unused part of a block (read ahead).
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Absolute stream offset of `buf[0]`, modulo 2^64 (read ahead, a block's headroom may
    /// start before offset 0): offsets are `base + pos`, computed wrapping.
    base: u64,
    /// `buf[..crc_pos]` has been fed to the digest.
    crc_pos: usize,
    digest: Option<Digest>,
    eof: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Self::over(Input::Stream(inner), vec![0u8; INITIAL_BUF_SIZE])
    }

    /// A reader at offset 0 of `input`, with an empty window in `buf`.
    fn over(input: Input<R>, buf: Vec<u8>) -> Self {
        Reader {
            input,
            buf,
            pos: 0,
            end: 0,
            base: 0,
            crc_pos: 0,
            digest: None,
            eof: false,
        }
    }

    /// A reader whose input a thread reads ahead, in blocks of [`BLOCK`] bytes, at most
    /// [`AHEAD`] blocks ahead of the parser; the blocks become the window in turn (no copy)
    /// and are recycled, so it holds about `(AHEAD + 2) × (HEADROOM + BLOCK)` bytes. Reading
    /// the input (for a file, the page-cache copy of `read(2)`) then runs beside the parser.
    /// Dropping the reader ends the thread at its next block.
    pub fn read_ahead(inner: R) -> io::Result<Self>
    where
        R: Send + 'static,
    {
        let (filled_tx, filled) = sync_channel(AHEAD);
        let (spent, spent_rx) = sync_channel(AHEAD + 2);
        std::thread::Builder::new()
            .name("rdb-read-ahead".into())
            .spawn(move || read_blocks(inner, &filled_tx, &spent_rx))?;
        Ok(Self::over(
            Input::Blocks(Blocks { filled, spent }),
            Vec::new(),
        ))
    }

    /// Start checksumming from the current position (callers do this at offset 0).
    pub fn enable_crc(&mut self) {
        self.crc_pos = self.pos;
        self.digest = Some(Digest::new(CRC64));
    }

    /// Stop checksumming at the current position and return the CRC of everything since
    /// `enable_crc`.
    pub fn finish_crc(&mut self) -> Option<u64> {
        let mut digest = self.digest.take()?;
        digest.update(&self.buf[self.crc_pos..self.pos]);
        self.crc_pos = self.pos;
        Some(digest.finalize())
    }

    /// Absolute offset of the next unread byte.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.base.wrapping_add(self.pos as u64)
    }

    #[inline]
    fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Move unread bytes to the front and read more. Returns false at end of stream.
    #[cold]
    fn fill(&mut self) -> PResult<bool> {
        if self.eof {
            return Ok(false);
        }
        if let Some(d) = self.digest.as_mut() {
            d.update(&self.buf[self.crc_pos..self.pos]);
        }
        self.crc_pos = self.pos;
        let inner = match &mut self.input {
            Input::Stream(inner) => inner,
            Input::Blocks(_) => return self.fill_block(),
        };
        self.buf.copy_within(self.pos..self.end, 0);
        self.base = self.base.wrapping_add(self.pos as u64);
        self.end -= self.pos;
        self.pos = 0;
        self.crc_pos = 0;
        loop {
            match inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseErrorKind::from(&e)),
            }
        }
    }

    /// Make `n` (≤ [`BUF_SIZE`]) contiguous bytes available; false if the stream ends first.
    #[inline]
    pub fn ensure(&mut self, n: usize) -> PResult<bool> {
        debug_assert!(n <= BUF_SIZE);
        if n > self.buf.len() {
            self.grow(n);
        }
        while self.available() < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// [`Self::fill`] from the read-ahead thread: the next block becomes the window, the
    /// unread tail moved into its headroom; a tail larger than the headroom (a container being
    /// made contiguous) stays in front and the block's data is appended to it instead.
    #[cold]
    fn fill_block(&mut self) -> PResult<bool> {
        let Input::Blocks(blocks) = &mut self.input else {
            return Ok(false);
        };
        let (block, data_end) = match blocks.filled.recv() {
            Ok(Ok(filled)) => filled,
            Ok(Err(e)) => return Err(ParseErrorKind::from(&e)),
            Err(_) => {
                let e = io::Error::other("the read-ahead thread ended before the stream did");
                return Err(ParseErrorKind::from(&e));
            }
        };
        if data_end <= HEADROOM {
            self.eof = true;
            return Ok(false);
        }
        let tail = self.end - self.pos;
        if tail <= HEADROOM {
            let start = HEADROOM - tail;
            let mut block = block;
            block[start..HEADROOM].copy_from_slice(&self.buf[self.pos..self.end]);
            // buf[pos] becomes block[start]: same absolute offset.
            self.base = self
                .base
                .wrapping_add(self.pos as u64)
                .wrapping_sub(start as u64);
            let spent = std::mem::replace(&mut self.buf, block);
            if spent.capacity() <= 2 * (HEADROOM + BLOCK) {
                // The thread may be gone (end of stream): the block is then just freed.
                let _ = blocks.spent.try_send(spent);
            }
            self.pos = start;
            self.end = data_end;
        } else {
            // Append. Move the tail to the front only once the consumed part is at least as
            // large, so a container arriving in many small reads is copied a bounded number
            // of times, not once per read.
            if self.pos >= tail {
                self.buf.copy_within(self.pos..self.end, 0);
                self.base = self.base.wrapping_add(self.pos as u64);
                self.pos = 0;
            }
            self.buf.truncate(self.pos + tail);
            self.buf.extend_from_slice(&block[HEADROOM..data_end]);
            let _ = blocks.spent.try_send(block);
            self.end = self.buf.len();
        }
        self.crc_pos = self.pos;
        Ok(true)
    }

    /// Grow the window to hold `n` (≤ [`BUF_SIZE`]) contiguous bytes.
    #[cold]
    fn grow(&mut self, n: usize) {
        let size = n.next_power_of_two().min(BUF_SIZE);
        let mut buf = vec![0u8; size];
        buf[..self.end].copy_from_slice(&self.buf[..self.end]);
        self.buf = buf;
    }

    /// Like [`ensure`](Self::ensure) but an early end is an error naming `what`.
    #[inline]
    pub fn require(&mut self, n: usize, what: &'static str) -> PResult<()> {
        if self.available() >= n || self.ensure(n)? {
            Ok(())
        } else {
            Err(ParseErrorKind::UnexpectedEof { what })
        }
    }

    /// The next `n` buffered bytes (after a successful `ensure`/`require` of at least `n`).
    #[inline]
    pub fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + n]
    }

    /// Consume `n` bytes that are already buffered.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.pos += n;
    }

    #[inline(always)]
    pub fn read_u8(&mut self, what: &'static str) -> PResult<u8> {
        if let Some(&b) = self.buf[..self.end].get(self.pos) {
            self.pos += 1;
            return Ok(b);
        }
        self.read_u8_slow(what)
    }

    /// [`Self::read_u8`] when the buffer is empty: out of line, the hot path stays small.
    #[cold]
    #[inline(never)]
    fn read_u8_slow(&mut self, what: &'static str) -> PResult<u8> {
        self.require(1, what)?;
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub fn read_array<const N: usize>(&mut self, what: &'static str) -> PResult<[u8; N]> {
        self.require(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    /// Skip `n` bytes, streaming through the buffer (they are still checksummed).
    #[inline]
    pub fn skip(&mut self, mut n: u64, what: &'static str) -> PResult<()> {
        loop {
            let avail = self.available() as u64;
            if n <= avail {
                self.pos += n as usize;
                return Ok(());
            }
            n -= avail;
            self.pos = self.end;
            if !self.fill()? {
                return Err(ParseErrorKind::UnexpectedEof { what });
            }
        }
    }

    /// Append `n` bytes to `out`, growing it only as bytes actually arrive.
    pub fn read_append(
        &mut self,
        out: &mut Vec<u8>,
        mut n: u64,
        what: &'static str,
    ) -> PResult<()> {
        loop {
            let avail = self.available();
            let take = (avail as u64).min(n) as usize;
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            n -= take as u64;
            if n == 0 {
                return Ok(());
            }
            if !self.fill()? {
                return Err(ParseErrorKind::UnexpectedEof { what });
            }
        }
    }

    /// Count the bytes left in the stream (reads it to the end), up to `limit`.
    pub fn drain_count(&mut self, limit: u64) -> PResult<u64> {
        let mut count = 0u64;
        loop {
            count += self.available() as u64;
            self.pos = self.end;
            if count >= limit || !self.fill()? {
                return Ok(count);
            }
        }
    }
}

/// The read-ahead thread: one read into each block (recycled ones first), until the end (a
/// block without data) or an error (sent as the last item). Returns early when the reader is
/// gone.
fn read_blocks<R: Read>(
    mut inner: R,
    filled: &SyncSender<io::Result<(Vec<u8>, usize)>>,
    spent: &Receiver<Vec<u8>>,
) {
    loop {
        let mut block = spent.try_recv().unwrap_or_default();
        // A no-op for a recycled block (they come back whole); zeroes a new one once.
        block.resize(HEADROOM + BLOCK, 0);
        // One read per block: what a slow source (a socket, a pipe) delivers goes on to the
        // parser at once; a file fills the block in one read.
        let read = loop {
            match inner.read(&mut block[HEADROOM..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match read {
            Ok(0) => {
                let _ = filled.send(Ok((Vec::new(), 0)));
                return;
            }
            Ok(n) => {
                if filled.send(Ok((block, HEADROOM + n))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = filled.send(Err(e));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns one byte per `read` call.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn crc_matches_redis_test_vector() {
        let mut r = Reader::new(Trickle(b"123456789"));
        r.enable_crc();
        r.skip(9, "x").unwrap();
        assert_eq!(r.finish_crc(), Some(0xe9c6d914c4b8d9ca));
    }

    #[test]
    fn offsets_and_eof() {
        let data: Vec<u8> = (0..=255u8).collect();
        let mut r = Reader::new(Trickle(&data));
        assert_eq!(r.read_u8("a").unwrap(), 0);
        assert_eq!(r.read_array::<3>("b").unwrap(), [1, 2, 3]);
        r.skip(100, "c").unwrap();
        assert_eq!(r.offset(), 104);
        let mut v = Vec::new();
        r.read_append(&mut v, 2, "d").unwrap();
        assert_eq!(v, [104, 105]);
        assert_eq!(
            r.skip(1000, "e"),
            Err(ParseErrorKind::UnexpectedEof { what: "e" })
        );
    }

    /// The same operations on a stream reader and a read-ahead one give the same bytes,
    /// offsets, ends and checksum: across block boundaries, with tails larger than the
    /// headroom (`ensure` of up to 1 MiB), and through short reads.
    #[test]
    fn read_ahead_reads_what_a_stream_reader_reads() {
        let len = 2 * BUF_SIZE + 3 * BLOCK + HEADROOM + 12_345;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        for short_reads in [false, true] {
            let source = |d: Vec<u8>| -> Box<dyn Read + Send> {
                if short_reads {
                    Box::new(Trickled(io::Cursor::new(d), 777))
                } else {
                    Box::new(io::Cursor::new(d))
                }
            };
            let mut a = Reader::new(source(data.clone()));
            let mut b = Reader::read_ahead(source(data.clone())).unwrap();
            a.enable_crc();
            b.enable_crc();
            let mut op = 0u64;
            loop {
                op += 1;
                assert_eq!(a.offset(), b.offset(), "offset before op {op}");
                let r = next();
                let (ra, rb) = match r % 5 {
                    0 => (
                        a.read_u8("u8").map(|v| vec![v]),
                        b.read_u8("u8").map(|v| vec![v]),
                    ),
                    1 => (
                        a.read_array::<7>("arr").map(|v| v.to_vec()),
                        b.read_array::<7>("arr").map(|v| v.to_vec()),
                    ),
                    2 => {
                        let n = (r >> 8) % (2 * BLOCK as u64);
                        (
                            a.skip(n, "skip").map(|_| vec![]),
                            b.skip(n, "skip").map(|_| vec![]),
                        )
                    }
                    3 => {
                        let n = (r >> 8) % (200 * 1024);
                        let (mut va, mut vb) = (Vec::new(), Vec::new());
                        (
                            a.read_append(&mut va, n, "append").map(|_| va),
                            b.read_append(&mut vb, n, "append").map(|_| vb),
                        )
                    }
                    _ => {
                        let n = ((r >> 8) % BUF_SIZE as u64) as usize + 1;
                        let peek = |rd: &mut Reader<Box<dyn Read + Send>>| {
                            rd.ensure(n)
                                .map(|ok| if ok { rd.peek(n).to_vec() } else { vec![] })
                        };
                        (peek(&mut a), peek(&mut b))
                    }
                };
                assert_eq!(ra, rb, "op {op} ({})", r % 5);
                if ra.is_err() {
                    break;
                }
            }
            assert!(op > 10, "only {op} operations");
            assert_eq!(a.finish_crc(), b.finish_crc());
        }
    }

    /// At most `.1` bytes per read.
    struct Trickled<R>(R, usize);
    impl<R: Read> Read for Trickled<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    /// A source that fails after `.0` bytes.
    struct FailAfter(usize);
    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "boom"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_reports_the_error_after_the_bytes_before_it() {
        let mut r = Reader::read_ahead(FailAfter(BLOCK + 10)).unwrap();
        r.skip(BLOCK as u64 + 10, "ok").unwrap();
        match r.read_u8("x") {
            Err(ParseErrorKind::Io { kind, .. }) => {
                assert_eq!(kind, io::ErrorKind::ConnectionReset)
            }
            other => panic!("{other:?}"),
        }
    }

    /// An endless source that records when it is dropped (its thread ended).
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
    fn dropping_a_read_ahead_reader_ends_its_thread() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let ended = std::sync::Arc::new(AtomicBool::new(false));
        let mut r = Reader::read_ahead(Endless(std::sync::Arc::clone(&ended))).unwrap();
        r.skip(3 * BLOCK as u64, "x").unwrap();
        drop(r);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !ended.load(Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread still runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
