//! The snapshot of a full resynchronization, framed as the replication protocol sends it.
//!
//! `PSYNC ? -1` is answered by `+FULLRESYNC <replid> <offset>`; the snapshot then comes either
//! disk-based (`$<len>\r\n` + exactly `len` bytes) or diskless (`$EOF:<40-byte mark>\r\n`,
//! the RDB, then the mark). The master sends bare `\n` keep-alives while it prepares the
//! snapshot; they are skipped and count as activity for `--read-timeout`. The returned reader
//! stops exactly at the end of the RDB: a connection that drops before that is an
//! `UnexpectedEof` error from `read()`, silence longer than `--read-timeout` a `TimedOut` one,
//! never a short stream.

use std::io::{self, Read};
use std::time::Duration;

use super::OpenedStream;
use super::connection::{Connection, READ_BUFFER, is_timeout};
use super::error::{Cause, SourceError, secs};
use super::resp;

/// Length of the diskless end-of-snapshot mark.
pub const EOF_MARK_LEN: usize = 40;

/// Ask `conn` (handshake done) for a full resynchronization and return the snapshot stream.
pub fn request(mut conn: Connection) -> Result<OpenedStream, SourceError> {
    conn.send(&[b"PSYNC", b"?", b"-1"])?;
    let line = conn.read_line("PSYNC")?;
    if let Some(rest) = line.strip_prefix(b"+FULLRESYNC") {
        tracing::debug!(
            "{}: full resync{}",
            conn.addr(),
            String::from_utf8_lossy(rest).trim_end()
        );
    } else if let Some(e) = line.strip_prefix(b"-") {
        return Err(conn.server_error("PSYNC", String::from_utf8_lossy(e).into_owned()));
    } else {
        return Err(conn.fail(Cause::Protocol(format!(
            "unexpected reply to PSYNC: \"{}\" (expected +FULLRESYNC); is this a Redis master \
             or replica?",
            resp::preview(&line)
        ))));
    }

    let header = conn.read_line("waiting for the snapshot")?;
    let timeout = conn.read_timeout();
    if let Some(mark) = header.strip_prefix(b"$EOF:") {
        let mark: [u8; EOF_MARK_LEN] = mark.try_into().map_err(|_| {
            conn.fail(Cause::Protocol(format!(
                "bad diskless snapshot header \"{}\" (expected a 40-byte end mark)",
                resp::preview(&header)
            )))
        })?;
        tracing::debug!("{}: diskless snapshot", conn.addr());
        let (io, cancel) = conn.into_stream();
        Ok(OpenedStream {
            reader: Box::new(EofMarkReader::new(TimeoutReader::new(io, timeout), mark)),
            total_bytes: None,
            cancel: Some(cancel),
            memory: None,
        })
    } else if let Some(len) = header.strip_prefix(b"$").and_then(resp::parse_int) {
        let len = u64::try_from(len)
            .map_err(|_| conn.fail(Cause::Protocol(format!("bad snapshot length {len}"))))?;
        tracing::debug!("{}: disk-based snapshot of {len} bytes", conn.addr());
        let (io, cancel) = conn.into_stream();
        Ok(OpenedStream {
            reader: Box::new(SizedReader::new(TimeoutReader::new(io, timeout), len)),
            total_bytes: Some(len),
            cancel: Some(cancel),
            memory: None,
        })
    } else if let Some(e) = header.strip_prefix(b"-") {
        Err(conn.server_error(
            "the snapshot transfer",
            String::from_utf8_lossy(e).into_owned(),
        ))
    } else {
        Err(conn.fail(Cause::Protocol(format!(
            "unexpected data instead of the snapshot header: \"{}\"",
            resp::preview(&header)
        ))))
    }
}

/// Turns socket timeouts into a clear `TimedOut` error naming `--read-timeout` (the parser's
/// error names the instance and the offset).
pub struct TimeoutReader<R> {
    inner: R,
    timeout: Duration,
}

impl<R: Read> TimeoutReader<R> {
    pub fn new(inner: R, timeout: Duration) -> Self {
        TimeoutReader { inner, timeout }
    }
}

impl<R: Read> Read for TimeoutReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if is_timeout(&e) {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data for {} (--read-timeout)", secs(&self.timeout)),
                )
            } else {
                e
            }
        })
    }
}

/// A disk-based snapshot: exactly `total` bytes.
pub struct SizedReader<R> {
    inner: R,
    total: u64,
    done: u64,
}

impl<R: Read> SizedReader<R> {
    pub fn new(inner: R, total: u64) -> Self {
        SizedReader {
            inner,
            total,
            done: 0,
        }
    }
}

impl<R: Read> Read for SizedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.total - self.done;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..want]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("after {} of {} snapshot bytes: {e}", self.done, self.total),
            )
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {} of {} snapshot bytes",
                    self.done, self.total
                ),
            ));
        }
        self.done += n as u64;
        Ok(n)
    }
}

/// A diskless snapshot: bytes up to the 40-byte end mark, which is held back and dropped.
/// Like Redis, the end is recognized when the last 40 bytes received equal the mark (the
/// master sends nothing after the mark until the replica acknowledges).
pub struct EofMarkReader<R> {
    inner: R,
    mark: [u8; EOF_MARK_LEN],
    /// Bytes read but not handed out: `buf[pos..ready]` may be handed out, `buf[ready..]`
    /// (at most 40 bytes) is held back as it may be the start of the mark.
    buf: Vec<u8>,
    pos: usize,
    ready: usize,
    received: u64,
    done: bool,
}

impl<R: Read> EofMarkReader<R> {
    pub fn new(inner: R, mark: [u8; EOF_MARK_LEN]) -> Self {
        EofMarkReader {
            inner,
            mark,
            buf: Vec::with_capacity(READ_BUFFER + EOF_MARK_LEN),
            pos: 0,
            ready: 0,
            received: 0,
            done: false,
        }
    }
}

impl<R: Read> Read for EofMarkReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.ready {
                let n = (self.ready - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            // Keep only the held-back tail, then read more after it.
            self.buf.drain(..self.ready);
            self.pos = 0;
            self.ready = 0;
            let held = self.buf.len();
            self.buf.resize(held + READ_BUFFER, 0);
            let n = match self.inner.read(&mut self.buf[held..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(held);
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("after {} snapshot bytes: {e}", self.received),
                    ));
                }
            };
            self.buf.truncate(held + n);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {} snapshot bytes, before the end mark of a \
                         diskless transfer",
                        self.received
                    ),
                ));
            }
            self.received += n as u64;
            let len = self.buf.len();
            if len >= EOF_MARK_LEN && self.buf[len - EOF_MARK_LEN..] == self.mark {
                self.done = true;
                self.ready = len - EOF_MARK_LEN;
            } else {
                self.ready = len.saturating_sub(EOF_MARK_LEN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data in pieces of the given sizes.
    struct Chunked {
        data: Vec<u8>,
        sizes: Vec<usize>,
        at: usize,
        step: usize,
    }

    impl Chunked {
        fn new(data: Vec<u8>, sizes: Vec<usize>) -> Self {
            Chunked {
                data,
                sizes,
                at: 0,
                step: 0,
            }
        }
    }

    impl Read for Chunked {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.step % self.sizes.len()];
            self.step += 1;
            let n = size.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    const MARK: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";

    fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn eof_mark_is_stripped_for_any_chunking() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for sizes in [
            vec![1],
            vec![3, 40, 1],
            vec![39],
            vec![41],
            vec![1000],
            vec![100_000],
        ] {
            let mut data = payload.clone();
            data.extend_from_slice(MARK);
            let inner = Chunked::new(data, sizes.clone());
            let mut r = EofMarkReader::new(inner, *MARK);
            assert_eq!(read_all(&mut r).ok(), Some(payload.clone()), "{sizes:?}");
            // And stays at EOF.
            assert_eq!(r.read(&mut [0u8; 8]).ok(), Some(0));
        }
    }

    #[test]
    fn eof_mark_empty_payload() {
        let inner = Chunked::new(MARK.to_vec(), vec![5]);
        let mut r = EofMarkReader::new(inner, *MARK);
        assert_eq!(read_all(&mut r).ok(), Some(vec![]));
    }

    #[test]
    fn eof_mark_missing_is_an_error() {
        let inner = Chunked::new(vec![1u8; 500], vec![64]);
        let mut r = EofMarkReader::new(inner, *MARK);
        let e = read_all(&mut r).err().map(|e| (e.kind(), e.to_string()));
        let (kind, msg) = e.unwrap_or((io::ErrorKind::Other, String::new()));
        assert_eq!(kind, io::ErrorKind::UnexpectedEof);
        assert!(msg.contains("after 500 snapshot bytes"), "{msg}");
    }

    #[test]
    fn sized_reader_stops_exactly_and_detects_truncation() {
        let inner = Chunked::new(b"0123456789EXTRA".to_vec(), vec![4]);
        let mut r = SizedReader::new(inner, 10);
        assert_eq!(read_all(&mut r).ok(), Some(b"0123456789".to_vec()));

        let inner = Chunked::new(b"01234".to_vec(), vec![4]);
        let mut r = SizedReader::new(inner, 10);
        let e = read_all(&mut r).err().map(|e| (e.kind(), e.to_string()));
        assert_eq!(
            e,
            Some((
                io::ErrorKind::UnexpectedEof,
                "connection closed after 5 of 10 snapshot bytes".to_string()
            ))
        );
    }
}
