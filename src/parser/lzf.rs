//! LZF (Redis's `lzf_d.c` format) without materializing values.
//!
//! Token format: a control byte `c`; `c < 32` is a literal run of `c + 1` bytes; otherwise a
//! back-reference of length `(c >> 5) + 2` (length 7 reads one more byte and adds it) at
//! distance `((c & 0x1f) << 8 | next) + 1` from the current output end.
//!
//! One token decoder ([`decode_token`]) serves both uses, over either input ([`Compressed`]):
//! keys, which must be reported whole ([`decompress_key`]: from the input buffer when the
//! compressed bytes fit in it, else streamed), and compressed containers, streamed through a
//! bounded window ([`LzfSrc`], a [`ByteSrc`] read only as far as the count needs: usually just
//! the header).

use std::io::Read;

use super::container::ByteSrc;
use super::error::{ParseErrorKind, corrupt};
use super::reader::{BUF_SIZE, PResult, Reader};

/// Longest output one input byte can produce (a 3-byte token yields up to 264 bytes).
pub const MAX_EXPANSION: u64 = 88;
/// Back-references reach at most this far back.
const MAX_DISTANCE: usize = 8192;
/// The streaming window of a container is compacted when it grows past this.
const WINDOW_COMPACT: usize = 64 * 1024;

/// Whether `ulen` bytes can possibly come out of `clen` compressed bytes.
pub fn plausible(clen: u64, ulen: u64) -> bool {
    ulen <= clen.saturating_mul(MAX_EXPANSION)
}

/// The compressed bytes of one LZF string.
trait Compressed {
    /// Bytes not yet read.
    fn left(&self) -> u64;
    /// The next byte; the caller has checked that one is left.
    fn byte(&mut self) -> PResult<u8>;
    /// Append the next `len` bytes to `out`; the caller has checked that they are left.
    fn copy_to(&mut self, len: usize, out: &mut Vec<u8>) -> PResult<()>;
}

/// Compressed bytes that are all in memory.
struct SliceIn<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Compressed for SliceIn<'_> {
    #[inline]
    fn left(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }
    #[inline]
    fn byte(&mut self) -> PResult<u8> {
        let b = self.data[self.pos];
        self.pos += 1;
        Ok(b)
    }
    #[inline]
    fn copy_to(&mut self, len: usize, out: &mut Vec<u8>) -> PResult<()> {
        out.extend_from_slice(&self.data[self.pos..self.pos + len]);
        self.pos += len;
        Ok(())
    }
}

/// Compressed bytes read from the input stream as they arrive.
struct StreamIn<'r, R> {
    rd: &'r mut Reader<R>,
    left: u64,
}

impl<R: Read> Compressed for StreamIn<'_, R> {
    #[inline]
    fn left(&self) -> u64 {
        self.left
    }
    #[inline]
    fn byte(&mut self) -> PResult<u8> {
        self.left -= 1;
        self.rd.read_u8("LZF-compressed data")
    }
    #[inline]
    fn copy_to(&mut self, len: usize, out: &mut Vec<u8>) -> PResult<()> {
        self.left -= len as u64;
        self.rd.require(len, "LZF-compressed data")?;
        out.extend_from_slice(self.rd.peek(len));
        self.rd.consume(len);
        Ok(())
    }
}

/// Decode one token of `input` onto the end of `out`, which holds at least the last
/// [`MAX_DISTANCE`] bytes of the `produced` bytes output so far (all of them if fewer).
/// Returns the number of bytes added. Every length is checked against the input left and the
/// declared output length `ulen` before anything is copied.
#[inline(always)]
fn decode_token<I: Compressed>(
    input: &mut I,
    out: &mut Vec<u8>,
    produced: u64,
    ulen: u64,
    kind: &str,
) -> PResult<u64> {
    let next = |input: &mut I| {
        if input.left() == 0 {
            return Err(corrupt(format!("LZF data of a {kind} ends inside a token")));
        }
        input.byte()
    };
    let ctrl = usize::from(next(input)?);
    if ctrl < 32 {
        let len = ctrl + 1;
        if input.left() < len as u64 {
            return Err(corrupt(format!(
                "LZF literal runs past the compressed data of a {kind}"
            )));
        }
        if produced + len as u64 > ulen {
            return Err(overflow(kind, ulen));
        }
        input.copy_to(len, out)?;
        return Ok(len as u64);
    }
    let mut len = ctrl >> 5;
    if len == 7 {
        len += usize::from(next(input)?);
    }
    let dist = ((ctrl & 0x1f) << 8 | usize::from(next(input)?)) + 1;
    len += 2;
    if dist as u64 > produced {
        return Err(corrupt(format!(
            "invalid LZF back-reference in a {kind}: {dist} bytes back with only {produced} \
             written"
        )));
    }
    if produced + len as u64 > ulen {
        return Err(overflow(kind, ulen));
    }
    let start = out.len() - dist;
    if dist >= len {
        out.extend_from_within(start..start + len);
    } else {
        // An overlapping copy repeats the pattern: byte by byte.
        for k in 0..len {
            let b = out[start + k];
            out.push(b);
        }
    }
    Ok(len as u64)
}

fn overflow(kind: &str, ulen: u64) -> ParseErrorKind {
    corrupt(format!(
        "LZF output overflow in a {kind}: data decompresses to more than the declared {ulen} bytes"
    ))
}

fn length_mismatch(kind: &str, ulen: u64, produced: u64) -> ParseErrorKind {
    corrupt(format!(
        "LZF decompressed length mismatch in a {kind}: header says {ulen}, data gives {produced}"
    ))
}

/// Decode all of `input` onto `out`: exactly `ulen` bytes, and no compressed byte after them
/// (any token there would overflow).
fn decode_all<I: Compressed>(input: &mut I, out: &mut Vec<u8>, ulen: u64) -> PResult<()> {
    let mut produced = 0u64;
    while produced < ulen || input.left() > 0 {
        if input.left() == 0 {
            return Err(length_mismatch("key", ulen, produced));
        }
        produced += decode_token(input, out, produced, ulen, "key")?;
    }
    Ok(())
}

/// Decompress the `clen` compressed bytes of a key from `rd` into `out` (cleared first); the
/// output must be exactly `ulen` bytes ([`plausible`] checked by the caller). When the
/// compressed bytes fit in the input buffer they are decoded in place and `out` is sized once:
/// `ulen` is then bounded by bytes that arrived. Larger keys are decoded as they stream in,
/// `out` growing with the tokens that arrive.
pub(crate) fn decompress_key<R: Read>(
    rd: &mut Reader<R>,
    clen: u64,
    ulen: u64,
    out: &mut Vec<u8>,
) -> PResult<()> {
    out.clear();
    match usize::try_from(clen) {
        Ok(n) if n <= BUF_SIZE => {
            rd.require(n, "a key")?;
            // ulen <= 88 * n <= 88 MiB (`plausible`): it fits a usize, and the n compressed
            // bytes it is bounded by have arrived.
            out.reserve(ulen as usize);
            decode_all(
                &mut SliceIn {
                    data: rd.peek(n),
                    pos: 0,
                },
                out,
                ulen,
            )?;
            rd.consume(n);
            Ok(())
        }
        _ => decode_all(&mut StreamIn { rd, left: clen }, out, ulen),
    }
}

/// Streams the decompressed bytes of an LZF-compressed container read from `rd`, keeping only
/// a bounded window (back-references reach 8 KiB back, so older bytes are dropped once
/// consumed).
pub(crate) struct LzfSrc<'r, R> {
    input: StreamIn<'r, R>,
    /// Declared decompressed length.
    ulen: u64,
    /// Output bytes produced so far.
    produced: u64,
    /// Output bytes handed to the caller so far.
    consumed: u64,
    /// The most recent output; `win[rpos..]` is produced but not yet consumed.
    win: &'r mut Vec<u8>,
    rpos: usize,
    kind: &'static str,
}

impl<'r, R: Read> LzfSrc<'r, R> {
    pub fn new(
        rd: &'r mut Reader<R>,
        clen: u64,
        ulen: u64,
        win: &'r mut Vec<u8>,
        kind: &'static str,
    ) -> Self {
        win.clear();
        LzfSrc {
            input: StreamIn { rd, left: clen },
            ulen,
            produced: 0,
            consumed: 0,
            win,
            rpos: 0,
            kind,
        }
    }

    /// Decode one token into the window.
    fn produce(&mut self) -> PResult<()> {
        if self.input.left == 0 {
            return Err(length_mismatch(self.kind, self.ulen, self.produced));
        }
        if self.win.len() > WINDOW_COMPACT {
            let keep_from = self.rpos.min(self.win.len() - MAX_DISTANCE);
            self.win.drain(..keep_from);
            self.rpos -= keep_from;
        }
        self.produced += decode_token(
            &mut self.input,
            self.win,
            self.produced,
            self.ulen,
            self.kind,
        )?;
        Ok(())
    }

    fn out_of_bounds(&self) -> ParseErrorKind {
        corrupt(format!("{} entry out of bounds", self.kind))
    }

    /// Decode whatever is left and check the string as a whole: the output comes to exactly
    /// the declared length, and no compressed byte follows it (any token there overflows).
    pub fn finish(&mut self) -> PResult<()> {
        self.skip(self.remaining())?;
        while self.input.left > 0 {
            self.produce()?;
        }
        Ok(())
    }
}

impl<R: Read> ByteSrc for LzfSrc<'_, R> {
    fn total(&self) -> u64 {
        self.ulen
    }

    fn remaining(&self) -> u64 {
        self.ulen - self.consumed
    }

    #[inline]
    fn u8(&mut self) -> PResult<u8> {
        while self.rpos == self.win.len() {
            if self.produced == self.ulen {
                return Err(self.out_of_bounds());
            }
            self.produce()?;
        }
        let b = self.win[self.rpos];
        self.rpos += 1;
        self.consumed += 1;
        Ok(b)
    }

    fn skip(&mut self, mut n: u64) -> PResult<()> {
        if n > self.remaining() {
            return Err(self.out_of_bounds());
        }
        while n > 0 {
            if self.rpos == self.win.len() {
                self.produce()?;
            }
            let take = ((self.win.len() - self.rpos) as u64).min(n);
            self.rpos += take as usize;
            self.consumed += take;
            n -= take;
        }
        Ok(())
    }

    /// The header was enough: skip the rest of the compressed bytes without decoding them.
    ///
    /// This is the hot path for compressed containers (profiles show the token walk alone
    /// costing 40% of parse time): the count comes from the header, the header's size field
    /// was checked against the declared length, and the file's CRC64 guards the bytes skipped
    /// here. The terminator is therefore not checked for LZF-compressed blobs.
    fn skip_rest_check_last(&mut self, _terminator: u8) -> PResult<()> {
        self.input.rd.skip(self.input.left, "LZF-compressed data")?;
        self.input.left = 0;
        self.produced = self.ulen;
        self.consumed = self.ulen;
        self.rpos = self.win.len();
        Ok(())
    }

    fn kind(&self) -> &'static str {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(input: &[u8], ulen: u64) -> PResult<Vec<u8>> {
        let mut rd = Reader::new(input);
        let mut out = Vec::new();
        decompress_key(&mut rd, input.len() as u64, ulen, &mut out)?;
        Ok(out)
    }

    #[test]
    fn key_literal_and_backref() {
        // "abcabcabc": literal "abc" then a back-reference of 6 at distance 3.
        let input = [2u8, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(key(&input, 9).ok(), Some(b"abcabcabc".to_vec()));
        assert!(key(&input, 8).is_err_and(|e| e.to_string().contains("overflow")));
        assert!(key(&input, 10).is_err_and(|e| e.to_string().contains("length mismatch")));
        assert!(key(&[(1 << 5), 0], 3).is_err_and(|e| e.to_string().contains("back-reference")));
        // A literal run longer than the compressed data.
        assert!(key(&[5u8, b'a'], 6).is_err_and(|e| e.to_string().contains("runs past")));
    }

    #[test]
    fn streaming_matches_key() {
        let input = [2u8, b'a', b'b', b'c', (4 << 5), 2, 0, b'z'];
        let mut rd = Reader::new(&input[..]);
        let mut win = Vec::new();
        let mut src = LzfSrc::new(&mut rd, input.len() as u64, 10, &mut win, "test");
        let mut got = Vec::new();
        while src.remaining() > 0 {
            got.push(src.u8().unwrap());
        }
        assert_eq!(got, b"abcabcabcz");
        assert!(src.u8().is_err());
        assert_eq!(key(&input, 10).ok(), Some(got));

        let mut rd = Reader::new(&input[..]);
        let mut src = LzfSrc::new(&mut rd, input.len() as u64, 10, &mut win, "test");
        assert_eq!(src.u8().unwrap(), b'a');
        assert_eq!(src.finish(), Ok(()));
        assert_eq!(win, b"abcabcabcz");
    }

    #[test]
    fn long_streams_keep_the_reach_of_back_references() {
        // 100,000 output bytes: a 32-byte literal, then back-references at the farthest
        // distance the window must keep (8192) once the output is long enough.
        let mut input = vec![31u8];
        input.extend((0..32u8).map(|i| i.wrapping_mul(37)));
        let mut expected: Vec<u8> = input[1..].to_vec();
        while expected.len() < 100_000 {
            let (dist, len) = if expected.len() >= 8192 {
                (8192, 264)
            } else {
                (32, 32)
            };
            let d = dist - 1;
            input.extend_from_slice(&[(7 << 5) | (d >> 8) as u8, (len - 9) as u8, d as u8]);
            for _ in 0..len {
                expected.push(expected[expected.len() - dist]);
            }
        }
        let ulen = expected.len() as u64;
        assert_eq!(key(&input, ulen).ok().as_ref(), Some(&expected));
        let mut rd = Reader::new(&input[..]);
        let mut win = Vec::new();
        let mut src = LzfSrc::new(&mut rd, input.len() as u64, ulen, &mut win, "test");
        let mut got = Vec::with_capacity(expected.len());
        while src.remaining() > 0 {
            got.push(src.u8().unwrap());
        }
        assert_eq!(got, expected);
        assert!(win.len() < 80_000, "the window is compacted: {}", win.len());
    }

    #[test]
    fn keys_larger_than_the_buffer_are_streamed() {
        // Literal runs of 32 bytes: more compressed bytes than the input buffer holds.
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut i = 0u32;
        while input.len() <= BUF_SIZE + 1000 {
            input.push(31);
            for _ in 0..32 {
                let b = (i % 251) as u8;
                input.push(b);
                expected.push(b);
                i += 1;
            }
        }
        assert_eq!(
            key(&input, expected.len() as u64).ok().as_ref(),
            Some(&expected)
        );
        assert!(key(&input, expected.len() as u64 + 1).is_err());
    }
}
