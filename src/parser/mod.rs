//! Streaming RDB parser: bytes in, one [`Record`] per key out.
//!
//! [`RdbParser`] is a pull parser over any [`std::io::Read`] (file, socket, pipe). It never
//! seeks and never materializes a value: strings are skipped, containers are counted while
//! streaming, and memory stays flat whatever the value sizes (one input window of 128 KiB that
//! grows to at most 1 MiB for a container that must be contiguous, plus a small LZF window).
//! Keys are read whole, but no untrusted length sizes an allocation before the bytes have
//! arrived.
//!
//! Layout: `reader` (the input window, offsets, CRC64), `lzf` (streaming LZF decoding for
//! keys and containers), `container` (ziplist/listpack/intset/zipmap counting), `rdb` (type
//! and opcode numbers, named as in Redis's `rdb.h`), and this module (the record loop and the
//! per-type value walkers).

mod container;
mod error;
mod lzf;
pub(crate) mod rdb;
mod reader;

use std::io::Read;
use std::sync::Arc;

pub use error::{ParseError, ParseErrorKind};

use error::corrupt;

use crate::record::{Encoding, Record, RecordType};
use container::{ByteSrc, SliceSrc, StreamSrc};
use reader::{BUF_SIZE, PResult, Reader};

/// Parser settings.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Verify the CRC64 trailer when the file carries one (version ≥ 5, non-zero).
    pub verify_checksum: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            verify_checksum: true,
        }
    }
}

/// What the header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdbHeader {
    /// `true` for the `VALKEY` magic (Valkey 9+), `false` for `REDIS`.
    pub valkey: bool,
    pub version: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Body,
    Done,
    Failed,
}

/// The compact encodings stored as one string blob.
#[derive(Debug, Clone, Copy)]
enum Blob {
    Ziplist,
    Listpack,
    Intset,
    Zipmap,
}

impl Blob {
    fn name(self) -> &'static str {
        match self {
            Blob::Ziplist => "ziplist",
            Blob::Listpack => "listpack",
            Blob::Intset => "intset",
            Blob::Zipmap => "zipmap",
        }
    }

    fn count<S: ByteSrc>(self, s: &mut S) -> PResult<u64> {
        match self {
            Blob::Ziplist => container::count_ziplist(s),
            Blob::Listpack => container::count_listpack(s),
            Blob::Intset => container::count_intset(s),
            Blob::Zipmap => container::count_zipmap(s),
        }
    }
}

/// Pull parser over an RDB byte stream.
pub struct RdbParser<R: Read> {
    rd: Reader<R>,
    source_name: Arc<str>,
    state: State,
    header: Option<RdbHeader>,
    db: u64,
    expire_at_ms: Option<i64>,
    idle_seconds: Option<u64>,
    freq: Option<u8>,
    /// Window of the streaming LZF decoder.
    lzf_win: Vec<u8>,
    /// The error that stopped the parser, repeated if it is called again.
    failure: Option<ParseError>,
    /// Length of the RDB (through the checksum), once the end has been reached.
    rdb_len: Option<u64>,
}

impl<R: Read> RdbParser<R> {
    /// A parser reading from `reader`; `source_name` names the file or instance in errors.
    pub fn new(reader: R, source_name: impl Into<Arc<str>>, opts: ParseOptions) -> Self {
        let mut rd = Reader::new(reader);
        if opts.verify_checksum {
            rd.enable_crc();
        }
        RdbParser {
            rd,
            source_name: source_name.into(),
            state: State::Start,
            header: None,
            db: 0,
            expire_at_ms: None,
            idle_seconds: None,
            freq: None,
            lzf_win: Vec::new(),
            failure: None,
            rdb_len: None,
        }
    }

    /// Length of the RDB through its checksum, once `next_record` has returned `Ok(None)`.
    /// Bytes after it (ignored, with a warning) are not included.
    pub fn rdb_len(&self) -> Option<u64> {
        self.rdb_len
    }

    /// Bytes consumed from the stream so far.
    pub fn offset(&self) -> u64 {
        self.rd.offset()
    }

    /// The header, once it has been read (after the first `next_record` call).
    pub fn header(&self) -> Option<RdbHeader> {
        self.header
    }

    fn error(&mut self, kind: ParseErrorKind, offset: u64, key: Option<&[u8]>) -> ParseError {
        let err = ParseError {
            source_name: self.source_name.clone(),
            offset,
            key: key.map(<[u8]>::to_vec),
            kind,
        };
        self.state = State::Failed;
        self.failure = Some(err.clone());
        err
    }

    /// The next key's record; `Ok(None)` once the EOF opcode (and checksum) have been read.
    /// After an error, every further call returns the same error.
    pub fn next_record(&mut self) -> Result<Option<Record>, ParseError> {
        match self.state {
            State::Done => return Ok(None),
            State::Failed => {
                if let Some(e) = &self.failure {
                    return Err(e.clone());
                }
            }
            State::Start => {
                let header = match self.read_header() {
                    Ok(h) => h,
                    Err((kind, off)) => return Err(self.error(kind, off, None)),
                };
                self.header = Some(header);
                self.state = State::Body;
            }
            State::Body => {}
        }
        loop {
            let start = self.rd.offset();
            let t = match self.rd.read_u8("an opcode or type byte") {
                Ok(t) => t,
                Err(k) => return Err(self.error(k, start, None)),
            };
            if t >= rdb::OPCODE_MIN {
                if t == rdb::OPCODE_EOF {
                    self.read_trailer()?;
                    self.state = State::Done;
                    return Ok(None);
                }
                if let Err(k) = self.read_opcode(t) {
                    let off = if matches!(k, ParseErrorKind::UnknownType(_)) {
                        start
                    } else {
                        self.rd.offset()
                    };
                    return Err(self.error(k, off, None));
                }
                continue;
            }
            return self.read_entry(t, start).map(Some);
        }
    }

    fn read_header(&mut self) -> Result<RdbHeader, (ParseErrorKind, u64)> {
        let eof = |what| (ParseErrorKind::UnexpectedEof { what }, 0);
        let has5 = self.rd.ensure(5).map_err(|k| (k, 0))?;
        if !has5 {
            let n = self.rd.drain_count(5).map_err(|k| (k, 0))?;
            return Err(if n == 0 {
                (
                    ParseErrorKind::UnexpectedEof {
                        what: "the RDB header (empty input)",
                    },
                    0,
                )
            } else {
                eof("the RDB header")
            });
        }
        let magic: [u8; 5] = self.rd.read_array("the RDB header").map_err(|k| (k, 0))?;
        let (valkey, digits) = match &magic {
            b"REDIS" => (false, 4),
            b"VALKE" => {
                let y = self.rd.read_u8("the RDB header").map_err(|k| (k, 5))?;
                if y != b'Y' {
                    return Err((ParseErrorKind::BadMagic, 0));
                }
                (true, 3)
            }
            _ => return Err((ParseErrorKind::BadMagic, 0)),
        };
        let version_at = self.rd.offset();
        let mut version = 0u32;
        for _ in 0..digits {
            let d = self
                .rd
                .read_u8("the RDB version")
                .map_err(|k| (k, self.rd.offset()))?;
            if !d.is_ascii_digit() {
                return Err((ParseErrorKind::InvalidVersion, version_at));
            }
            version = version * 10 + u32::from(d - b'0');
        }
        let supported = if valkey {
            version == rdb::VALKEY_VERSION
        } else {
            (1..=rdb::MAX_REDIS_VERSION).contains(&version)
        };
        if !supported {
            return Err((ParseErrorKind::UnsupportedVersion(version), version_at));
        }
        Ok(RdbHeader { valkey, version })
    }

    fn version(&self) -> u32 {
        self.header.map_or(0, |h| h.version)
    }

    fn is_valkey(&self) -> bool {
        self.header.is_some_and(|h| h.valkey)
    }

    /// After the EOF opcode: the checksum (version ≥ 5) and anything after it.
    fn read_trailer(&mut self) -> Result<(), ParseError> {
        let computed = self.rd.finish_crc();
        if self.version() >= 5 {
            let at = self.rd.offset();
            let stored = match self.rd.read_array::<8>("the CRC64 checksum") {
                Ok(b) => u64::from_le_bytes(b),
                Err(k) => {
                    let off = self.rd.offset();
                    return Err(self.error(k, off, None));
                }
            };
            if let Some(computed) = computed
                && stored != 0
                && stored != computed
            {
                return Err(self.error(
                    ParseErrorKind::ChecksumMismatch { stored, computed },
                    at,
                    None,
                ));
            }
        }
        let at = self.rd.offset();
        self.rdb_len = Some(at);
        match self.rd.drain_count(1 << 20) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                "{}: {n}{} bytes after the end of the RDB at byte offset {at} ignored (Redis \
                 ignores them too; diskless replication captures end with a 40-byte EOF mark)",
                self.source_name,
                if n >= 1 << 20 { "+" } else { "" }
            ),
            Err(k) => return Err(self.error(k, at, None)),
        }
        Ok(())
    }

    fn read_opcode(&mut self, op: u8) -> PResult<()> {
        match op {
            rdb::OPCODE_SELECTDB => self.db = self.read_len("a SELECTDB number")?,
            rdb::OPCODE_RESIZEDB => {
                self.read_len("a RESIZEDB size")?;
                self.read_len("a RESIZEDB size")?;
            }
            rdb::OPCODE_EXPIRETIME_MS => {
                let t = i64::from_le_bytes(self.rd.read_array("an expire time")?);
                self.expire_at_ms = Some(t);
            }
            rdb::OPCODE_EXPIRETIME => {
                let t = i32::from_le_bytes(self.rd.read_array("an expire time")?);
                self.expire_at_ms = Some(i64::from(t) * 1000);
            }
            rdb::OPCODE_IDLE => self.idle_seconds = Some(self.read_len("an IDLE time")?),
            rdb::OPCODE_FREQ => self.freq = Some(self.rd.read_u8("a FREQ value")?),
            rdb::OPCODE_AUX => {
                self.skip_string("an AUX field name")?;
                self.skip_string("an AUX field value")?;
            }
            rdb::OPCODE_MODULE_AUX => {
                self.read_len("a module id")?;
                self.read_len("a module AUX when-opcode")?;
                self.read_len("a module AUX when")?;
                self.walk_module_value()?;
            }
            rdb::OPCODE_FUNCTION_PRE_GA => {
                self.skip_string("a function name")?;
                self.skip_string("a function engine")?;
                if self.read_len("a function description flag")? != 0 {
                    self.skip_string("a function description")?;
                }
                self.skip_string("a function body")?;
            }
            rdb::OPCODE_FUNCTION2 => {
                self.skip_string("a function library")?;
            }
            rdb::OPCODE_SLOT_INFO => {
                self.read_len("a SLOT_INFO slot")?;
                self.read_len("a SLOT_INFO size")?;
                self.read_len("a SLOT_INFO expires size")?;
            }
            rdb::OPCODE_SLOT_IMPORT if self.is_valkey() => {
                self.skip_string("a slot import job name")?;
                let ranges = self.read_len("a slot range count")?;
                for _ in 0..ranges {
                    self.read_len("a slot range start")?;
                    self.read_len("a slot range end")?;
                }
            }
            rdb::OPCODE_SLOT_IMPORT => {
                return Err(corrupt(
                    "opcode 243 (Redis 8 key metadata) in a REDIS file is not supported",
                ));
            }
            other => return Err(ParseErrorKind::UnknownType(other)),
        }
        Ok(())
    }

    fn read_entry(&mut self, t: u8, start: u64) -> Result<Record, ParseError> {
        match t {
            rdb::TYPE_MODULE_PRE_GA => {
                return Err(self.error(ParseErrorKind::UnsupportedModulePreGa, start, None));
            }
            0..=5 | 7 | 9..=rdb::TYPE_MAX => {}
            _ => return Err(self.error(ParseErrorKind::UnknownType(t), start, None)),
        }
        let mut key = Vec::new();
        if let Err(k) = self.read_key(&mut key) {
            let off = self.rd.offset();
            return Err(self.error(k, off, None));
        }
        let (r#type, encoding, member_count) = match self.read_value(t) {
            Ok(v) => v,
            Err(k) => {
                let off = self.rd.offset();
                return Err(self.error(k, off, Some(&key)));
            }
        };
        Ok(Record {
            db: self.db,
            key,
            r#type,
            member_count,
            rdb_size: self.rd.offset() - start,
            encoding,
            expire_at_ms: self.expire_at_ms.take(),
            idle_seconds: self.idle_seconds.take(),
            freq: self.freq.take(),
            codis_slot: None,
            redis_slot: None,
        })
    }

    /// A length, or a special string encoding (`true` in the second field).
    #[inline]
    fn read_len_enc(&mut self, what: &'static str) -> PResult<(u64, bool)> {
        let b = self.rd.read_u8(what)?;
        Ok(match b >> 6 {
            rdb::LEN_6BIT => (u64::from(b & 0x3F), false),
            rdb::LEN_14BIT => (
                u64::from(b & 0x3F) << 8 | u64::from(self.rd.read_u8(what)?),
                false,
            ),
            rdb::LEN_ENCVAL => (u64::from(b & 0x3F), true),
            _ => match b {
                rdb::LEN_32BIT => (
                    u64::from(u32::from_be_bytes(self.rd.read_array(what)?)),
                    false,
                ),
                rdb::LEN_64BIT => (u64::from_be_bytes(self.rd.read_array(what)?), false),
                _ => {
                    return Err(corrupt(format!(
                        "invalid length encoding 0x{b:02x} in {what}"
                    )));
                }
            },
        })
    }

    #[inline]
    fn read_len(&mut self, what: &'static str) -> PResult<u64> {
        match self.read_len_enc(what)? {
            (n, false) => Ok(n),
            (e, true) => Err(corrupt(format!(
                "{what}: expected a length, found string encoding {e}"
            ))),
        }
    }

    /// Skip a string value; returns its encoding.
    #[inline]
    fn skip_string(&mut self, what: &'static str) -> PResult<Encoding> {
        match self.read_len_enc(what)? {
            (n, false) => {
                self.rd.skip(n, what)?;
                Ok(Encoding::Raw)
            }
            (rdb::ENC_INT8, true) => self.rd.skip(1, what).map(|_| Encoding::Int),
            (rdb::ENC_INT16, true) => self.rd.skip(2, what).map(|_| Encoding::Int),
            (rdb::ENC_INT32, true) => self.rd.skip(4, what).map(|_| Encoding::Int),
            (rdb::ENC_LZF, true) => {
                let (clen, _) = self.read_lzf_lens(what)?;
                self.rd.skip(clen, what)?;
                Ok(Encoding::Lzf)
            }
            (e, true) => Err(corrupt(format!("unknown string encoding {e} in {what}"))),
        }
    }

    /// The compressed and decompressed lengths of an LZF string, checked against each other.
    fn read_lzf_lens(&mut self, what: &'static str) -> PResult<(u64, u64)> {
        let clen = self.read_len(what)?;
        let ulen = self.read_len(what)?;
        if !lzf::plausible(clen, ulen) {
            return Err(corrupt(format!(
                "impossible LZF lengths in {what}: {ulen} bytes from {clen} compressed bytes"
            )));
        }
        Ok((clen, ulen))
    }

    /// Read a key whole into `out` (integer keys become decimal text, LZF keys decompressed).
    fn read_key(&mut self, out: &mut Vec<u8>) -> PResult<()> {
        const WHAT: &str = "a key";
        let mut itoa = itoa::Buffer::new();
        match self.read_len_enc(WHAT)? {
            (n, false) => self.rd.read_append(out, n, WHAT),
            (rdb::ENC_INT8, true) => {
                let v = i8::from_le_bytes(self.rd.read_array(WHAT)?);
                out.extend_from_slice(itoa.format(v).as_bytes());
                Ok(())
            }
            (rdb::ENC_INT16, true) => {
                let v = i16::from_le_bytes(self.rd.read_array(WHAT)?);
                out.extend_from_slice(itoa.format(v).as_bytes());
                Ok(())
            }
            (rdb::ENC_INT32, true) => {
                let v = i32::from_le_bytes(self.rd.read_array(WHAT)?);
                out.extend_from_slice(itoa.format(v).as_bytes());
                Ok(())
            }
            (rdb::ENC_LZF, true) => {
                let (clen, ulen) = self.read_lzf_lens(WHAT)?;
                lzf::decompress_key(&mut self.rd, clen, ulen, out)
            }
            (e, true) => Err(corrupt(format!("unknown string encoding {e} in a key"))),
        }
    }

    /// Count the entries of a blob-encoded container (ziplist, listpack, intset, zipmap).
    fn read_blob(&mut self, blob: Blob) -> PResult<u64> {
        let what = blob.name();
        match self.read_len_enc(what)? {
            (n, false) if n <= BUF_SIZE as u64 => {
                let n = n as usize;
                self.rd.require(n, what)?;
                let count = blob.count(&mut SliceSrc::new(self.rd.peek(n), what))?;
                self.rd.consume(n);
                Ok(count)
            }
            (n, false) => {
                let mut src = StreamSrc::new(&mut self.rd, n, what);
                blob.count(&mut src)
            }
            (rdb::ENC_LZF, true) => {
                let (clen, ulen) = self.read_lzf_lens(what)?;
                let mut src = lzf::LzfSrc::new(&mut self.rd, clen, ulen, &mut self.lzf_win, what);
                let count = blob.count(&mut src)?;
                src.finish()?;
                if self.lzf_win.capacity() > 4 * BUF_SIZE {
                    self.lzf_win = Vec::new();
                }
                Ok(count)
            }
            (e, true) => Err(corrupt(format!("{what} stored with string encoding {e}"))),
        }
    }

    fn skip_strings(&mut self, n: u64, what: &'static str) -> PResult<()> {
        for _ in 0..n {
            self.skip_string(what)?;
        }
        Ok(())
    }

    /// Walk a value; returns its type, encoding and member count.
    fn read_value(&mut self, t: u8) -> PResult<(RecordType, Encoding, u64)> {
        use Encoding as E;
        use RecordType as T;
        Ok(match t {
            rdb::TYPE_STRING => (T::String, self.skip_string("a string value")?, 1),
            rdb::TYPE_LIST => {
                let n = self.read_len("a list length")?;
                self.skip_strings(n, "a list element")?;
                (T::List, E::List, n)
            }
            rdb::TYPE_SET => {
                let n = self.read_len("a set size")?;
                self.skip_strings(n, "a set member")?;
                (T::Set, E::Raw, n)
            }
            rdb::TYPE_ZSET => {
                let n = self.read_len("a zset size")?;
                for _ in 0..n {
                    self.skip_string("a zset member")?;
                    // Scores as text: 1-byte length, 253/254/255 = nan/+inf/-inf with no bytes.
                    let len = self.rd.read_u8("a zset score")?;
                    if len < 253 {
                        self.rd.skip(u64::from(len), "a zset score")?;
                    }
                }
                (T::ZSet, E::SkipList, n)
            }
            rdb::TYPE_HASH => {
                let n = self.read_len("a hash size")?;
                for _ in 0..n {
                    self.skip_string("a hash field")?;
                    self.skip_string("a hash value")?;
                }
                (T::Hash, E::Raw, n)
            }
            rdb::TYPE_ZSET_2 => {
                let n = self.read_len("a zset size")?;
                for _ in 0..n {
                    self.skip_string("a zset member")?;
                    self.rd.skip(8, "a zset score")?;
                }
                (T::ZSet, E::SkipList, n)
            }
            rdb::TYPE_MODULE_2 => {
                self.read_len("a module id")?;
                self.walk_module_value()?;
                (T::Module, E::Module, 0)
            }
            rdb::TYPE_HASH_ZIPMAP => (T::Hash, E::ZipMap, self.read_blob(Blob::Zipmap)?),
            rdb::TYPE_LIST_ZIPLIST => (T::List, E::ZipList, self.read_blob(Blob::Ziplist)?),
            rdb::TYPE_SET_INTSET => (T::Set, E::IntSet, self.read_blob(Blob::Intset)?),
            rdb::TYPE_ZSET_ZIPLIST => (T::ZSet, E::ZipList, self.pairs(Blob::Ziplist, 2)?),
            rdb::TYPE_HASH_ZIPLIST => (T::Hash, E::ZipList, self.pairs(Blob::Ziplist, 2)?),
            rdb::TYPE_LIST_QUICKLIST => {
                let nodes = self.read_len("a quicklist node count")?;
                let mut n = 0u64;
                for _ in 0..nodes {
                    n = n.saturating_add(self.read_blob(Blob::Ziplist)?);
                }
                (T::List, E::QuickList, n)
            }
            rdb::TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.read_len("a quicklist node count")?;
                let mut n = 0u64;
                for _ in 0..nodes {
                    match self.read_len("a quicklist node container")? {
                        rdb::QUICKLIST_NODE_PLAIN => {
                            self.skip_string("a plain quicklist node")?;
                            n = n.saturating_add(1);
                        }
                        rdb::QUICKLIST_NODE_PACKED => {
                            n = n.saturating_add(self.read_blob(Blob::Listpack)?);
                        }
                        c => return Err(corrupt(format!("invalid quicklist container {c}"))),
                    }
                }
                (T::List, E::QuickList2, n)
            }
            rdb::TYPE_STREAM_LISTPACKS => (T::Stream, E::ListPacks, self.read_stream(1)?),
            rdb::TYPE_STREAM_LISTPACKS_2 => (T::Stream, E::ListPacks2, self.read_stream(2)?),
            rdb::TYPE_STREAM_LISTPACKS_3 => (T::Stream, E::ListPacks3, self.read_stream(3)?),
            rdb::TYPE_HASH_LISTPACK => (T::Hash, E::ListPack, self.pairs(Blob::Listpack, 2)?),
            rdb::TYPE_ZSET_LISTPACK => (T::ZSet, E::ListPack, self.pairs(Blob::Listpack, 2)?),
            rdb::TYPE_SET_LISTPACK => (T::Set, E::ListPack, self.read_blob(Blob::Listpack)?),
            rdb::TYPE_HASH_METADATA_PRE_GA if self.is_valkey() => {
                // Valkey 9 HASH_2: per field: field, value, 8-byte expiry (-1: none).
                let n = self.read_len("a hash size")?;
                for _ in 0..n {
                    self.skip_string("a hash field")?;
                    self.skip_string("a hash value")?;
                    self.rd.skip(8, "a hash field expiry")?;
                }
                (T::Hash, E::Hash2, n)
            }
            rdb::TYPE_HASH_METADATA_PRE_GA | rdb::TYPE_HASH_METADATA => {
                if t == rdb::TYPE_HASH_METADATA {
                    self.rd.skip(8, "a hash minimum expiry")?;
                }
                let n = self.read_len("a hash size")?;
                for _ in 0..n {
                    self.read_len("a hash field TTL")?;
                    self.skip_string("a hash field")?;
                    self.skip_string("a hash value")?;
                }
                (T::Hash, E::Metadata, n)
            }
            rdb::TYPE_HASH_LISTPACK_EX_PRE_GA => {
                (T::Hash, E::ListPackEx, self.pairs(Blob::Listpack, 3)?)
            }
            rdb::TYPE_HASH_LISTPACK_EX => {
                self.rd.skip(8, "a hash minimum expiry")?;
                (T::Hash, E::ListPackEx, self.pairs(Blob::Listpack, 3)?)
            }
            other => return Err(ParseErrorKind::UnknownType(other)),
        })
    }

    /// Entries of a blob grouped `per` to a member (field-value pairs, triples with a TTL).
    fn pairs(&mut self, blob: Blob, per: u64) -> PResult<u64> {
        let n = self.read_blob(blob)?;
        if n % per != 0 {
            return Err(corrupt(format!(
                "{} corrupt: {n} entries is not a multiple of {per}",
                blob.name()
            )));
        }
        Ok(n / per)
    }

    /// Walk a stream; returns its length (live entries).
    fn read_stream(&mut self, v: u8) -> PResult<u64> {
        let nodes = self.read_len("a stream node count")?;
        for _ in 0..nodes {
            self.skip_string("a stream node key")?;
            self.skip_string("a stream listpack")?;
        }
        let length = self.read_len("a stream length")?;
        self.read_len("a stream last id")?;
        self.read_len("a stream last id")?;
        if v >= 2 {
            for what in ["a stream first id", "a stream max deleted id"] {
                self.read_len(what)?;
                self.read_len(what)?;
            }
            self.read_len("a stream entries-added count")?;
        }
        let groups = self.read_len("a stream group count")?;
        for _ in 0..groups {
            self.skip_string("a consumer group name")?;
            self.read_len("a consumer group last id")?;
            self.read_len("a consumer group last id")?;
            if v >= 2 {
                self.read_len("a consumer group entries-read count")?;
            }
            let pel = self.read_len("a group PEL size")?;
            for _ in 0..pel {
                self.rd.skip(16 + 8, "a group PEL entry")?;
                self.read_len("a PEL delivery count")?;
            }
            let consumers = self.read_len("a consumer count")?;
            for _ in 0..consumers {
                self.skip_string("a consumer name")?;
                self.rd
                    .skip(if v >= 3 { 16 } else { 8 }, "a consumer seen time")?;
                let pel = self.read_len("a consumer PEL size")?;
                for _ in 0..pel {
                    self.rd.skip(16, "a consumer PEL entry")?;
                }
            }
        }
        Ok(length)
    }

    /// Walk a module value generically through its typed opcodes until EOF (0).
    fn walk_module_value(&mut self) -> PResult<()> {
        loop {
            match self.read_len("a module opcode")? {
                rdb::MODULE_OPCODE_EOF => return Ok(()),
                rdb::MODULE_OPCODE_SINT | rdb::MODULE_OPCODE_UINT => {
                    self.read_len("a module integer")?;
                }
                rdb::MODULE_OPCODE_FLOAT => self.rd.skip(4, "a module float")?,
                rdb::MODULE_OPCODE_DOUBLE => self.rd.skip(8, "a module double")?,
                rdb::MODULE_OPCODE_STRING => {
                    self.skip_string("a module string")?;
                }
                op => return Err(corrupt(format!("invalid module opcode {op}"))),
            }
        }
    }
}
