//! The parser's one input buffer: a window over the byte stream with absolute offsets and an
//! incremental CRC64.
//!
//! Memory is decided here: the window starts at [`INITIAL_BUF_SIZE`] (128 KiB) and grows, by
//! powers of two, to at most [`BUF_SIZE`] (1 MiB), only when a caller asks for that many
//! contiguous bytes (`ensure`, for a container counted in place); it never shrinks. Everything
//! larger is streamed through (`skip`, `read_append`). Running out of input is reported as
//! [`ParseErrorKind::UnexpectedEof`] only when the stream really ended: short reads from
//! sockets and pipes are retried, and no error value is built for control flow.

use std::io::{self, Read};

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

/// Buffered reader with absolute offsets and an optional running CRC64.
pub(crate) struct Reader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Absolute stream offset of `buf[0]`.
    base: u64,
    /// `buf[..crc_pos]` has been fed to the digest.
    crc_pos: usize,
    digest: Option<Digest>,
    eof: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            buf: vec![0u8; INITIAL_BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            base: 0,
            crc_pos: 0,
            digest: None,
            eof: false,
        }
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
        self.base + self.pos as u64
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
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        self.crc_pos = 0;
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
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

    /// Grow the window to hold `n` (≤ [`BUF_SIZE`]) contiguous bytes.
    #[cold]
    fn grow(&mut self, n: usize) {
        let size = n.next_power_of_two().min(BUF_SIZE);
        let mut buf = vec![0u8; size].into_boxed_slice();
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
}
