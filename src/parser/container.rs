//! Counting the entries of Redis's compact encodings (ziplist, listpack, intset, zipmap)
//! without materializing them.
//!
//! Every container is read through a [`ByteSrc`]: a slice when the blob sits in the input
//! buffer, the input stream itself for large plain blobs, or a streaming LZF decoder. All reads
//! are bounded by the blob, never by lengths inside it. The header count is used when it is
//! exact; only a saturated count (65535 for ziplists/listpacks, ≥ 254 for zipmaps) makes us
//! walk the entries. Cheap integrity checks always run: the header's total size must equal
//! the blob's, and the terminator must be 0xFF.

use std::io::Read;

use super::error::corrupt;
use super::reader::{PResult, Reader};
use crate::memory::encode::string2ll;
use crate::memory::estimate::Elem;

const ZIP_END: u8 = 0xFF;

/// Sequential access to one container blob.
pub(crate) trait ByteSrc {
    /// The blob's length.
    fn total(&self) -> u64;
    /// Bytes not yet consumed.
    fn remaining(&self) -> u64;
    fn u8(&mut self) -> PResult<u8>;
    fn skip(&mut self, n: u64) -> PResult<()>;
    /// Skip to the end of the blob, checking that its last byte is `terminator` where that can
    /// be known cheaply.
    fn skip_rest_check_last(&mut self, terminator: u8) -> PResult<()>;
    /// What the blob is (for messages).
    fn kind(&self) -> &'static str;

    fn u32_le(&mut self) -> PResult<u32> {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.u8()?;
        }
        Ok(u32::from_le_bytes(b))
    }

    fn u16_le(&mut self) -> PResult<u16> {
        let lo = self.u8()?;
        let hi = self.u8()?;
        Ok(u16::from_le_bytes([lo, hi]))
    }
}

/// A blob that is entirely in memory.
pub(crate) struct SliceSrc<'a> {
    data: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> SliceSrc<'a> {
    pub fn new(data: &'a [u8], kind: &'static str) -> Self {
        SliceSrc { data, pos: 0, kind }
    }
}

impl ByteSrc for SliceSrc<'_> {
    fn total(&self) -> u64 {
        self.data.len() as u64
    }
    fn remaining(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }
    #[inline]
    fn u8(&mut self) -> PResult<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(corrupt(format!("{} entry out of bounds", self.kind))),
        }
    }
    #[inline]
    fn skip(&mut self, n: u64) -> PResult<()> {
        if n > self.remaining() {
            return Err(corrupt(format!("{} entry out of bounds", self.kind)));
        }
        self.pos += n as usize;
        Ok(())
    }
    fn skip_rest_check_last(&mut self, terminator: u8) -> PResult<()> {
        let last = self.data.last().copied();
        self.pos = self.data.len();
        check_last(self.kind, last, terminator)
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
}

fn check_last(kind: &str, last: Option<u8>, terminator: u8) -> PResult<()> {
    match last {
        Some(b) if b == terminator => Ok(()),
        Some(b) => Err(corrupt(format!(
            "{kind} is missing its 0x{terminator:02x} terminator (last byte 0x{b:02x})"
        ))),
        None => Err(corrupt(format!("{kind} is empty"))),
    }
}

/// A plain (uncompressed) blob read straight from the input stream, for blobs too large to
/// hold in the input buffer.
pub(crate) struct StreamSrc<'r, R> {
    rd: &'r mut Reader<R>,
    total: u64,
    left: u64,
    kind: &'static str,
}

impl<'r, R: Read> StreamSrc<'r, R> {
    pub fn new(rd: &'r mut Reader<R>, len: u64, kind: &'static str) -> Self {
        StreamSrc {
            rd,
            total: len,
            left: len,
            kind,
        }
    }
}

impl<R: Read> ByteSrc for StreamSrc<'_, R> {
    fn total(&self) -> u64 {
        self.total
    }
    fn remaining(&self) -> u64 {
        self.left
    }
    fn u8(&mut self) -> PResult<u8> {
        if self.left == 0 {
            return Err(corrupt(format!("{} entry out of bounds", self.kind)));
        }
        self.left -= 1;
        self.rd.read_u8(self.kind)
    }
    fn skip(&mut self, n: u64) -> PResult<()> {
        if n > self.left {
            return Err(corrupt(format!("{} entry out of bounds", self.kind)));
        }
        self.left -= n;
        self.rd.skip(n, self.kind)
    }
    fn skip_rest_check_last(&mut self, terminator: u8) -> PResult<()> {
        if self.left == 0 {
            return Err(corrupt(format!("{} is missing its terminator", self.kind)));
        }
        self.skip(self.left - 1)?;
        let last = self.u8()?;
        check_last(self.kind, Some(last), terminator)
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// The entry count of a ziplist, listpack or zipmap whose header has been read: `exact` when
/// the header's count can be trusted (the rest of the blob is then skipped, its terminator
/// checked where that is cheap), otherwise a walk calling `skip_entry` with each entry's first
/// byte until the 0xFF terminator, which must be the blob's last byte.
fn count_entries<S: ByteSrc>(
    s: &mut S,
    exact: Option<u64>,
    mut skip_entry: impl FnMut(&mut S, u8) -> PResult<()>,
) -> PResult<u64> {
    if let Some(count) = exact {
        s.skip_rest_check_last(ZIP_END)?;
        return Ok(count);
    }
    let mut count = 0u64;
    loop {
        let first = s.u8()?;
        if first == ZIP_END {
            break;
        }
        skip_entry(s, first)?;
        count += 1;
    }
    let left = s.remaining();
    if left != 0 {
        return Err(corrupt(format!(
            "{} has {left} bytes after its terminator",
            s.kind()
        )));
    }
    Ok(count)
}

/// A blob must hold at least its fixed header and terminator (`min` bytes) before any of it
/// is read.
fn check_min_size<S: ByteSrc>(s: &S, min: u64) -> PResult<()> {
    if s.total() < min {
        return Err(corrupt(format!(
            "{} too short: {} bytes",
            s.kind(),
            s.total()
        )));
    }
    Ok(())
}

/// Read the 32-bit size field that opens a ziplist or listpack: it must be the blob's size.
fn check_size_field<S: ByteSrc>(s: &mut S) -> PResult<()> {
    let header = u64::from(s.u32_le()?);
    let total = s.total();
    if header != total {
        return Err(corrupt(format!(
            "{} size mismatch: header says {header} bytes, blob is {total}",
            s.kind()
        )));
    }
    Ok(())
}

/// Read and check a ziplist's header (size, tail offset); returns its entry count field.
fn ziplist_header<S: ByteSrc>(s: &mut S) -> PResult<u16> {
    check_min_size(s, 11)?;
    check_size_field(s)?;
    let zltail = s.u32_le()?;
    if u64::from(zltail) >= s.total() {
        return Err(corrupt(format!(
            "ziplist tail offset {zltail} is outside the blob"
        )));
    }
    s.u16_le()
}

/// Number of entries in a ziplist.
pub(crate) fn count_ziplist<S: ByteSrc>(s: &mut S) -> PResult<u64> {
    let zllen = ziplist_header(s)?;
    let exact = (zllen != u16::MAX).then_some(u64::from(zllen));
    count_entries(s, exact, |s, first| {
        if first == 0xFE {
            s.skip(4)?; // 5-byte prevlen
        }
        let enc = s.u8()?;
        let data_len: u64 = match enc >> 6 {
            0 => u64::from(enc & 0x3F),
            1 => u64::from(enc & 0x3F) << 8 | u64::from(s.u8()?),
            2 => {
                let mut b = [0u8; 4];
                for x in &mut b {
                    *x = s.u8()?;
                }
                u64::from(u32::from_be_bytes(b))
            }
            _ => match enc {
                0xC0 => 2,
                0xD0 => 4,
                0xE0 => 8,
                0xF0 => 3,
                0xFE => 1,
                0xF1..=0xFD => 0,
                _ => {
                    return Err(corrupt(format!(
                        "ziplist corrupt: invalid entry encoding 0x{enc:02x}"
                    )));
                }
            },
        };
        s.skip(data_len)
    })
}

/// Size in bytes of a listpack entry's back-length field for an entry of `len` bytes.
fn lp_backlen_size(len: u64) -> u64 {
    match len {
        0..=127 => 1,
        128..=16383 => 2,
        16384..=2097151 => 3,
        2097152..=268435455 => 4,
        _ => 5,
    }
}

/// Number of entries in a listpack.
pub(crate) fn count_listpack<S: ByteSrc>(s: &mut S) -> PResult<u64> {
    check_min_size(s, 7)?;
    check_size_field(s)?;
    let num = s.u16_le()?;
    let exact = (num != u16::MAX).then_some(u64::from(num));
    count_entries(s, exact, |s, b| {
        // Bytes of the entry (encoding + data) after the first byte.
        let (rest, entry_len): (u64, u64) = if b & 0x80 == 0 {
            (0, 1) // 7-bit uint
        } else if b & 0xC0 == 0x80 {
            let l = u64::from(b & 0x3F);
            (l, 1 + l) // 6-bit string length
        } else if b & 0xE0 == 0xC0 {
            (1, 2) // 13-bit int
        } else if b & 0xF0 == 0xE0 {
            let l = u64::from(b & 0x0F) << 8 | u64::from(s.u8()?);
            (l, 2 + l) // 12-bit string length (one length byte already read)
        } else {
            match b {
                0xF0 => {
                    let l = u64::from(s.u32_le()?);
                    (l, 5 + l)
                }
                0xF1 => (2, 3),
                0xF2 => (3, 4),
                0xF3 => (4, 5),
                0xF4 => (8, 9),
                _ => {
                    return Err(corrupt(format!(
                        "listpack corrupt: invalid entry encoding 0x{b:02x}"
                    )));
                }
            }
        };
        s.skip(rest + lp_backlen_size(entry_len))
    })
}

/// Number of members of an intset.
pub(crate) fn count_intset<S: ByteSrc>(s: &mut S) -> PResult<u64> {
    check_min_size(s, 8)?;
    let width = s.u32_le()?;
    if !matches!(width, 2 | 4 | 8) {
        return Err(corrupt(format!(
            "intset corrupt: invalid integer width {width}"
        )));
    }
    let len = u64::from(s.u32_le()?);
    let expected = 8 + len * u64::from(width);
    if expected != s.total() {
        return Err(corrupt(format!(
            "intset size mismatch: {len} members of {width} bytes need {expected} bytes, blob is {}",
            s.total()
        )));
    }
    s.skip(s.remaining())?;
    Ok(len)
}

/// Number of field-value pairs of a zipmap.
pub(crate) fn count_zipmap<S: ByteSrc>(s: &mut S) -> PResult<u64> {
    check_min_size(s, 2)?;
    let zmlen = s.u8()?;
    let exact = (zmlen < 254).then_some(u64::from(zmlen));
    fn len<S: ByteSrc>(s: &mut S, first: u8) -> PResult<u64> {
        match first {
            0..=253 => Ok(u64::from(first)),
            254 => Ok(u64::from(s.u32_le()?)),
            _ => Err(corrupt("zipmap corrupt: unexpected end marker")),
        }
    }
    count_entries(s, exact, |s, b| {
        let klen = len(s, b)?;
        s.skip(klen)?;
        let vb = s.u8()?;
        let vlen = len(s, vb)?;
        let free = s.u8()?;
        s.skip(vlen + u64::from(free))
    })
}

/// Read a string entry of `len` bytes as an element: its bytes are looked at only when it
/// could be an integer's text (at most 20 bytes).
fn elem_of<S: ByteSrc>(s: &mut S, len: u64) -> PResult<Elem> {
    if len <= 20 {
        let mut buf = [0u8; 20];
        let n = len as usize;
        for b in &mut buf[..n] {
            *b = s.u8()?;
        }
        Ok(Elem {
            len,
            int: string2ll(&buf[..n]),
        })
    } else {
        s.skip(len)?;
        Ok(Elem { len, int: None })
    }
}

/// Walk a ziplist's entries (for a server that re-encodes them on load), calling `f` with
/// each; returns the entry count. The same checks as [`count_ziplist`], and the header count
/// must match the entries unless saturated.
pub(crate) fn walk_ziplist<S: ByteSrc>(s: &mut S, mut f: impl FnMut(Elem)) -> PResult<u64> {
    let zllen = ziplist_header(s)?;
    let count = count_entries(s, None, |s, first| {
        if first == 0xFE {
            s.skip(4)?; // 5-byte prevlen
        }
        let enc = s.u8()?;
        let elem = match enc >> 6 {
            0 => elem_of(s, u64::from(enc & 0x3F))?,
            1 => {
                let len = u64::from(enc & 0x3F) << 8 | u64::from(s.u8()?);
                elem_of(s, len)?
            }
            2 => {
                let mut b = [0u8; 4];
                for x in &mut b {
                    *x = s.u8()?;
                }
                elem_of(s, u64::from(u32::from_be_bytes(b)))?
            }
            _ => {
                let mut le = |n: usize| -> PResult<i64> {
                    let mut b = [0u8; 8];
                    for x in &mut b[..n] {
                        *x = s.u8()?;
                    }
                    // Sign-extend the n-byte little-endian integer.
                    let shift = 64 - 8 * n as u32;
                    Ok((i64::from_le_bytes(b) << shift) >> shift)
                };
                let v = match enc {
                    0xC0 => le(2)?,
                    0xD0 => le(4)?,
                    0xE0 => le(8)?,
                    0xF0 => le(3)?,
                    0xFE => le(1)?,
                    0xF1..=0xFD => i64::from(enc & 0x0F) - 1,
                    _ => {
                        return Err(corrupt(format!(
                            "ziplist corrupt: invalid entry encoding 0x{enc:02x}"
                        )));
                    }
                };
                Elem::int(v)
            }
        };
        f(elem);
        Ok(())
    })?;
    if zllen != u16::MAX && u64::from(zllen) != count {
        return Err(corrupt(format!(
            "ziplist corrupt: header says {zllen} entries, found {count}"
        )));
    }
    Ok(count)
}

/// Walk a zipmap's fields and values, calling `f` with each; returns the pair count.
pub(crate) fn walk_zipmap<S: ByteSrc>(s: &mut S, mut f: impl FnMut(Elem)) -> PResult<u64> {
    check_min_size(s, 2)?;
    let _zmlen = s.u8()?;
    fn len<S: ByteSrc>(s: &mut S, first: u8) -> PResult<u64> {
        match first {
            0..=253 => Ok(u64::from(first)),
            254 => Ok(u64::from(s.u32_le()?)),
            _ => Err(corrupt("zipmap corrupt: unexpected end marker")),
        }
    }
    count_entries(s, None, |s, b| {
        let klen = len(s, b)?;
        f(elem_of(s, klen)?);
        let vb = s.u8()?;
        let vlen = len(s, vb)?;
        let free = s.u8()?;
        f(elem_of(s, vlen)?);
        s.skip(u64::from(free))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listpack(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            assert!(e.len() < 64);
            body.push(0x80 | e.len() as u8);
            body.extend_from_slice(e);
            body.push(1 + e.len() as u8);
        }
        let total = 6 + body.len() + 1;
        let mut lp = (total as u32).to_le_bytes().to_vec();
        lp.extend_from_slice(&(entries.len().min(65535) as u16).to_le_bytes());
        lp.extend_from_slice(&body);
        lp.push(0xFF);
        lp
    }

    #[test]
    fn listpack_counts_and_checks() {
        let lp = listpack(&[b"a", b"bc", b""]);
        assert_eq!(
            count_listpack(&mut SliceSrc::new(&lp, "listpack")).unwrap(),
            3
        );
        let mut bad = lp.clone();
        *bad.last_mut().unwrap() = 0x00;
        assert!(count_listpack(&mut SliceSrc::new(&bad, "listpack")).is_err());
        let mut bad = lp.clone();
        bad[0] = 99;
        assert!(count_listpack(&mut SliceSrc::new(&bad, "listpack")).is_err());
    }

    #[test]
    fn saturated_listpack_is_walked() {
        let entries: Vec<&[u8]> = vec![b"x"; 70000];
        let lp = listpack(&entries);
        assert_eq!(
            count_listpack(&mut SliceSrc::new(&lp, "listpack")).unwrap(),
            70000
        );
        // A truncated walk must fail, not run past the blob.
        let mut cut = lp[..lp.len() - 4].to_vec();
        let total = cut.len() as u32;
        cut[..4].copy_from_slice(&total.to_le_bytes());
        assert!(count_listpack(&mut SliceSrc::new(&cut, "listpack")).is_err());
    }

    #[test]
    fn ziplist_walk_decodes_strings_and_integers() {
        // "ab", the int16 -5, "7" (a 1-byte string that is an integer's text).
        let mut zl = Vec::new();
        zl.extend_from_slice(&0u32.to_le_bytes()); // size, set below
        zl.extend_from_slice(&0u32.to_le_bytes()); // tail, set below
        zl.extend_from_slice(&3u16.to_le_bytes());
        zl.extend_from_slice(&[0, 0x02, b'a', b'b']);
        zl.extend_from_slice(&[4, 0xC0]);
        zl.extend_from_slice(&(-5i16).to_le_bytes());
        let tail = zl.len() as u32;
        zl.extend_from_slice(&[4, 0x01, b'7', 0xFF]);
        let total = zl.len() as u32;
        zl[..4].copy_from_slice(&total.to_le_bytes());
        zl[4..8].copy_from_slice(&tail.to_le_bytes());
        let mut seen = Vec::new();
        let n = walk_ziplist(&mut SliceSrc::new(&zl, "ziplist"), |e| seen.push(e)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            seen,
            [
                Elem { len: 2, int: None },
                Elem::int(-5),
                Elem {
                    len: 1,
                    int: Some(7)
                }
            ]
        );
        // The header's count must match the entries.
        let mut wrong = zl.clone();
        wrong[8] = 2;
        assert!(walk_ziplist(&mut SliceSrc::new(&wrong, "ziplist"), |_| {}).is_err());
    }

    #[test]
    fn zipmap_walk_gives_fields_and_values() {
        // 1 pair: "k" -> "10", with 1 free byte after the value.
        let zm = [1u8, 1, b'k', 2, 1, b'1', b'0', 0, 0xFF];
        let mut seen = Vec::new();
        let pairs = walk_zipmap(&mut SliceSrc::new(&zm, "zipmap"), |e| seen.push(e)).unwrap();
        assert_eq!(pairs, 1);
        assert_eq!(seen, [Elem { len: 1, int: None }, Elem::int(10)]);
    }

    #[test]
    fn intset_checks_size() {
        let mut is = 2u32.to_le_bytes().to_vec();
        is.extend_from_slice(&3u32.to_le_bytes());
        is.extend_from_slice(&[1, 0, 2, 0, 3, 0]);
        assert_eq!(count_intset(&mut SliceSrc::new(&is, "intset")).unwrap(), 3);
        is.pop();
        assert!(count_intset(&mut SliceSrc::new(&is, "intset")).is_err());
    }
}
