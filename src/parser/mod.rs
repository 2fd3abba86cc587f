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

use crate::memory::encode::string2ll;
use crate::memory::estimate::{
    Elem, HashAcc, ListPush, QuickNodes, Repack, SetAcc, StreamAcc, ZsetAcc, average_sds,
    hash_table, set_table, zset_skiplist,
};
use crate::memory::{MemoryOptions, Model};
use crate::record::{Encoding, Record, RecordType, expire};
use container::{ByteSrc, SliceSrc, StreamSrc};
use reader::{BUF_SIZE, PResult, Reader};

/// Spare capacity a decoded key may keep; more is given back (`shrink_to_fit`).
const KEY_SLACK: usize = 4096;

/// Parser settings.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Verify the CRC64 trailer when the file carries one (version ≥ 5, non-zero).
    pub verify_checksum: bool,
    /// Compute `mem_size` with this model's inputs (completed from the RDB's aux fields);
    /// `None` leaves `mem_size` empty.
    pub memory: Option<MemoryOptions>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            verify_checksum: true,
            memory: Some(MemoryOptions::default()),
        }
    }
}

/// What the RDB said about itself, beyond its keys (aux fields, RESIZEDB hints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdbInfo {
    /// `redis-ver` (`(false, "7.2.4")`) or `valkey-ver` (`(true, "8.0.1")`).
    pub server: Option<(bool, String)>,
    /// `used-mem`: the writing server's `used_memory` when it saved.
    pub used_mem: Option<u64>,
    /// Per db: the RESIZEDB hint (keys, keys with a TTL).
    pub db_sizes: Vec<(u64, u64, u64)>,
    /// A SLOT_INFO opcode was seen (a cluster node's RDB, Redis 7.4+).
    pub slot_info: bool,
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

/// What is done with a blob's bytes, whichever source delivers them ([`RdbParser::visit_blob`]).
trait BlobVisitor {
    fn visit<S: ByteSrc>(&mut self, s: &mut S) -> PResult<u64>;
}

/// Count the entries.
struct CountBlob(Blob);

impl BlobVisitor for CountBlob {
    #[inline]
    fn visit<S: ByteSrc>(&mut self, s: &mut S) -> PResult<u64> {
        self.0.count(s)
    }
}

/// Walk every entry of a ziplist or zipmap, calling the closure with each.
struct WalkBlob<F>(Blob, F);

impl<F: FnMut(Elem)> BlobVisitor for WalkBlob<F> {
    fn visit<S: ByteSrc>(&mut self, s: &mut S) -> PResult<u64> {
        match self.0 {
            Blob::Zipmap => container::walk_zipmap(s, &mut self.1),
            _ => container::walk_ziplist(s, &mut self.1),
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
    /// The memory model's inputs, until the first key resolves them into `model`.
    memory: Option<MemoryOptions>,
    model: Option<Model>,
    info: RdbInfo,
}

impl<R: Read> RdbParser<R> {
    /// A parser reading from `reader`; `source_name` names the file or instance in errors.
    pub fn new(reader: R, source_name: impl Into<Arc<str>>, opts: ParseOptions) -> Self {
        Self::with_reader(Reader::new(reader), source_name, opts)
    }

    /// [`Self::new`], the input read on a thread of its own, ahead of the parser, in blocks
    /// the parser then reads in place (no copy): reading (for a file, the kernel's copy out of
    /// the page cache) no longer takes the parser's time. The thread ends when the parser is
    /// dropped. Fails only if the thread cannot be started.
    pub fn read_ahead(
        reader: R,
        source_name: impl Into<Arc<str>>,
        opts: ParseOptions,
    ) -> std::io::Result<Self>
    where
        R: Send + 'static,
    {
        Ok(Self::with_reader(
            Reader::read_ahead(reader)?,
            source_name,
            opts,
        ))
    }

    fn with_reader(
        mut rd: Reader<R>,
        source_name: impl Into<Arc<str>>,
        opts: ParseOptions,
    ) -> Self {
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
            memory: opts.memory,
            model: None,
            info: RdbInfo::default(),
        }
    }

    /// What the RDB said about itself so far (all of it once `next_record` returned
    /// `Ok(None)`).
    pub fn info(&self) -> &RdbInfo {
        &self.info
    }

    /// The memory model the records' `mem_size` follow: resolved at the first key (or at the
    /// end of an RDB without keys); `None` when no memory estimate was asked for.
    pub fn memory_model(&self) -> Option<Model> {
        self.model.or_else(|| self.resolve_model())
    }

    fn resolve_model(&self) -> Option<Model> {
        let server = self.info.server.as_ref().map(|(v, s)| (*v, s.as_str()));
        self.memory
            .as_ref()
            .map(|o| o.resolve(server, self.info.slot_info))
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
        let mut record = Record::default();
        Ok(self.next_record_into(&mut record)?.then_some(record))
    }

    /// [`Self::next_record`] into `out`, every field overwritten; `out.key`'s buffer is
    /// reused (a pipeline that recycles its records allocates no key per record). `false`
    /// at the end of the snapshot (`out` then holds no record).
    pub fn next_record_into(&mut self, out: &mut Record) -> Result<bool, ParseError> {
        match self.state {
            State::Done => return Ok(false),
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
                    return Ok(false);
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
            return self.read_entry(t, start, out).map(|()| true);
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
                let keys = self.read_len("a RESIZEDB size")?;
                let expires = self.read_len("a RESIZEDB size")?;
                if self.info.db_sizes.len() < 1024 {
                    self.info.db_sizes.push((self.db, keys, expires));
                }
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
                let name = self.read_short_string("an AUX field name")?;
                let value = self.read_short_string("an AUX field value")?;
                if let (Some(name), Some(value)) = (name, value) {
                    let text = String::from_utf8_lossy(&value).into_owned();
                    match name.as_slice() {
                        b"redis-ver" if self.info.server.is_none() => {
                            self.info.server = Some((false, text));
                        }
                        b"valkey-ver" => self.info.server = Some((true, text)),
                        b"used-mem" => self.info.used_mem = text.parse().ok(),
                        _ => {}
                    }
                }
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
                self.info.slot_info = true;
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

    fn read_entry(&mut self, t: u8, start: u64, out: &mut Record) -> Result<(), ParseError> {
        match t {
            rdb::TYPE_MODULE_PRE_GA => {
                return Err(self.error(ParseErrorKind::UnsupportedModulePreGa, start, None));
            }
            0..=5 | 7 | 9..=rdb::TYPE_MAX => {}
            _ => return Err(self.error(ParseErrorKind::UnknownType(t), start, None)),
        }
        let key = &mut out.key;
        key.clear();
        if let Err(k) = self.read_key(key) {
            let off = self.rd.offset();
            return Err(self.error(k, off, None));
        }
        // A long key read piece by piece grew by doubling: give the slack back before the
        // record travels (up to twice a huge key would otherwise stay allocated with it).
        if key.capacity() - key.len() > KEY_SLACK {
            key.shrink_to_fit();
        }
        if self.model.is_none() && self.memory.is_some() {
            self.model = self.resolve_model();
        }
        let model = self.model;
        let (r#type, encoding, member_count, value_mem) = match self.read_value(t, model.as_ref()) {
            Ok(v) => v,
            Err(k) => {
                let off = self.rd.offset();
                return Err(self.error(k, off, Some(&out.key)));
            }
        };
        let mem_size = match (model, value_mem) {
            (Some(m), Some(v)) => {
                Some(v + m.key_part(out.key.len() as u64, self.expire_at_ms.is_some()))
            }
            _ => None,
        };
        out.db = self.db;
        out.r#type = r#type;
        out.member_count = member_count;
        out.rdb_size = self.rd.offset() - start;
        out.encoding = encoding;
        // An absurd expiry still had its expires-dict entry in `mem_size` above.
        out.expire_at_ms = self.expire_at_ms.take().and_then(expire::expire_at_ms);
        out.idle_seconds = self.idle_seconds.take();
        out.freq = self.freq.take();
        out.codis_slot = None;
        out.redis_slot = None;
        out.mem_size = mem_size;
        Ok(())
    }

    /// A length, or a special string encoding (`true` in the second field).
    #[inline(always)]
    fn read_len_enc(&mut self, what: &'static str) -> PResult<(u64, bool)> {
        // The 6- and 14-bit forms and the special encodings are nearly every length: they stay
        // small enough to inline everywhere; the 32/64-bit forms and errors are out of line.
        let b = self.rd.read_u8(what)?;
        match b >> 6 {
            rdb::LEN_6BIT => Ok((u64::from(b & 0x3F), false)),
            rdb::LEN_14BIT => Ok((
                u64::from(b & 0x3F) << 8 | u64::from(self.rd.read_u8(what)?),
                false,
            )),
            rdb::LEN_ENCVAL => Ok((u64::from(b & 0x3F), true)),
            _ => self.read_len_wide(b, what),
        }
    }

    /// The 32- and 64-bit length forms (first byte 0x80 / 0x81), or an invalid first byte.
    #[inline(never)]
    fn read_len_wide(&mut self, b: u8, what: &'static str) -> PResult<(u64, bool)> {
        match b {
            rdb::LEN_32BIT => Ok((
                u64::from(u32::from_be_bytes(self.rd.read_array(what)?)),
                false,
            )),
            rdb::LEN_64BIT => Ok((u64::from_be_bytes(self.rd.read_array(what)?), false)),
            _ => Err(corrupt(format!(
                "invalid length encoding 0x{b:02x} in {what}"
            ))),
        }
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

    /// A string of at most 64 bytes (aux field names and values), or `None` (skipped) when
    /// it is longer. Integer encodings become their decimal text.
    fn read_short_string(&mut self, what: &'static str) -> PResult<Option<Vec<u8>>> {
        const MAX: u64 = 64;
        match self.read_len_enc(what)? {
            (n, false) if n <= MAX => {
                let mut out = Vec::with_capacity(n as usize);
                self.rd.read_append(&mut out, n, what)?;
                Ok(Some(out))
            }
            (n, false) => self.rd.skip(n, what).map(|_| None),
            (e @ (rdb::ENC_INT8 | rdb::ENC_INT16 | rdb::ENC_INT32), true) => {
                let v = self.read_int_enc(e, what)?;
                Ok(Some(itoa::Buffer::new().format(v).as_bytes().to_vec()))
            }
            (rdb::ENC_LZF, true) => {
                let (clen, ulen) = self.read_lzf_lens(what)?;
                if ulen > MAX {
                    return self.rd.skip(clen, what).map(|_| None);
                }
                let mut out = Vec::new();
                lzf::decompress_key(&mut self.rd, clen, ulen, &mut out)?;
                Ok(Some(out))
            }
            (e, true) => Err(corrupt(format!("unknown string encoding {e} in {what}"))),
        }
    }

    /// The integer of an 0xC0–0xC2 string encoding.
    #[inline]
    fn read_int_enc(&mut self, enc: u64, what: &'static str) -> PResult<i64> {
        Ok(match enc {
            rdb::ENC_INT8 => i64::from(i8::from_le_bytes(self.rd.read_array(what)?)),
            rdb::ENC_INT16 => i64::from(i16::from_le_bytes(self.rd.read_array(what)?)),
            _ => i64::from(i32::from_le_bytes(self.rd.read_array(what)?)),
        })
    }

    /// Read a string value as an element of the memory model: its loaded length and, when it
    /// is an integer or the canonical text of one, the integer. Only strings of at most 20
    /// bytes are looked at (no longer text is an integer); an LZF string of at most 20 bytes
    /// (Redis never writes one) is taken as text.
    #[inline]
    fn read_elem(&mut self, what: &'static str) -> PResult<(Elem, Encoding)> {
        match self.read_len_enc(what)? {
            (n, false) if n <= 20 => {
                let len = n as usize;
                self.rd.require(len, what)?;
                let int = string2ll(self.rd.peek(len));
                self.rd.consume(len);
                Ok((Elem { len: n, int }, Encoding::Raw))
            }
            (n, false) => {
                self.rd.skip(n, what)?;
                Ok((Elem { len: n, int: None }, Encoding::Raw))
            }
            (e @ (rdb::ENC_INT8 | rdb::ENC_INT16 | rdb::ENC_INT32), true) => {
                Ok((Elem::int(self.read_int_enc(e, what)?), Encoding::Int))
            }
            (rdb::ENC_LZF, true) => {
                let (clen, ulen) = self.read_lzf_lens(what)?;
                self.rd.skip(clen, what)?;
                Ok((
                    Elem {
                        len: ulen,
                        int: None,
                    },
                    Encoding::Lzf,
                ))
            }
            (e, true) => Err(corrupt(format!("unknown string encoding {e} in {what}"))),
        }
    }

    /// An element of a collection: with its integer value when `ints` (see
    /// [`read_elem`](Self::read_elem)), else only its length.
    #[inline]
    fn read_member(&mut self, what: &'static str, ints: bool) -> PResult<Elem> {
        if ints {
            Ok(self.read_elem(what)?.0)
        } else {
            Ok(Elem {
                len: self.string_len(what)?,
                int: None,
            })
        }
    }

    /// The length of a string value once loaded (LZF strings decompressed), skipping it.
    #[inline]
    fn string_len(&mut self, what: &'static str) -> PResult<u64> {
        match self.read_len_enc(what)? {
            (n, false) => self.rd.skip(n, what).map(|_| n),
            (e @ (rdb::ENC_INT8 | rdb::ENC_INT16 | rdb::ENC_INT32), true) => {
                let v = self.read_int_enc(e, what)?;
                Ok(crate::memory::encode::decimal_len(v))
            }
            (rdb::ENC_LZF, true) => {
                let (clen, ulen) = self.read_lzf_lens(what)?;
                self.rd.skip(clen, what)?;
                Ok(ulen)
            }
            (e, true) => Err(corrupt(format!("unknown string encoding {e} in {what}"))),
        }
    }

    /// Count the entries of a blob-encoded container (ziplist, listpack, intset, zipmap);
    /// returns the count and the blob's length (decompressed).
    fn read_blob(&mut self, blob: Blob) -> PResult<(u64, u64)> {
        self.visit_blob(blob, &mut CountBlob(blob))
    }

    /// Walk every entry of a ziplist or zipmap blob (`Blob::Ziplist`/`Blob::Zipmap`),
    /// calling `f` with each; returns the count (pairs for a zipmap) and the blob's length.
    fn walk_blob(&mut self, blob: Blob, f: impl FnMut(Elem)) -> PResult<(u64, u64)> {
        self.visit_blob(blob, &mut WalkBlob(blob, f))
    }

    /// Hand a blob to `visitor` through the right byte source: a slice of the input buffer,
    /// the stream itself for a large plain blob, or the streaming LZF decoder. Returns what
    /// the visitor returned and the blob's length (decompressed).
    #[inline]
    fn visit_blob(&mut self, blob: Blob, visitor: &mut impl BlobVisitor) -> PResult<(u64, u64)> {
        let what = blob.name();
        match self.read_len_enc(what)? {
            (n, false) if n <= BUF_SIZE as u64 => {
                let len = n as usize;
                self.rd.require(len, what)?;
                let count = visitor.visit(&mut SliceSrc::new(self.rd.peek(len), what))?;
                self.rd.consume(len);
                Ok((count, n))
            }
            (n, false) => {
                let mut src = StreamSrc::new(&mut self.rd, n, what);
                Ok((visitor.visit(&mut src)?, n))
            }
            (rdb::ENC_LZF, true) => {
                let (clen, ulen) = self.read_lzf_lens(what)?;
                let mut src = lzf::LzfSrc::new(&mut self.rd, clen, ulen, &mut self.lzf_win, what);
                let count = visitor.visit(&mut src)?;
                src.finish()?;
                if self.lzf_win.capacity() > 4 * BUF_SIZE {
                    self.lzf_win = Vec::new();
                }
                Ok((count, ulen))
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

    /// A zset score in the text form of RDB type 3 (1-byte length; 253/254/255 are
    /// nan/+inf/-inf with no bytes).
    fn read_text_score(&mut self) -> PResult<f64> {
        const WHAT: &str = "a zset score";
        let len = self.rd.read_u8(WHAT)?;
        Ok(match len {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            n => {
                let n = usize::from(n);
                self.rd.require(n, WHAT)?;
                let v = std::str::from_utf8(self.rd.peek(n))
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .unwrap_or(0.0);
                self.rd.consume(n);
                v
            }
        })
    }

    /// Walk a value; returns its type, encoding, member count and, with a memory model, the
    /// bytes its value takes once loaded (`None` for module values).
    fn read_value(
        &mut self,
        t: u8,
        m: Option<&Model>,
    ) -> PResult<(RecordType, Encoding, u64, Option<u64>)> {
        use Encoding as E;
        use RecordType as T;
        let Some(m) = m else {
            let (ty, enc, n) = self.read_value_plain(t)?;
            return Ok((ty, enc, n, None));
        };
        let st = m.settings;
        Ok(match t {
            rdb::TYPE_STRING => {
                let (e, enc) = self.read_elem("a string value")?;
                (T::String, enc, 1, Some(m.string_value(e)))
            }
            rdb::TYPE_LIST => {
                let n = self.read_len("a list length")?;
                let mut acc = ListPush::default();
                for _ in 0..n {
                    acc.push(m, self.read_elem("a list element")?.0);
                }
                (T::List, E::List, n, Some(acc.finish(m, true)))
            }
            rdb::TYPE_SET => {
                let n = self.read_len("a set size")?;
                let mut acc = SetAcc::new(m, n);
                for _ in 0..n {
                    let e = self.read_member("a set member", acc.needs_ints())?;
                    acc.add(m, e);
                }
                (T::Set, E::Raw, n, Some(acc.finish(m)))
            }
            rdb::TYPE_ZSET | rdb::TYPE_ZSET_2 => {
                let n = self.read_len("a zset size")?;
                let mut acc = ZsetAcc::new(m, n);
                for _ in 0..n {
                    let member = self.read_member("a zset member", acc.needs_ints(m))?;
                    let score = if t == rdb::TYPE_ZSET {
                        self.read_text_score()?
                    } else {
                        f64::from_le_bytes(self.rd.read_array("a zset score")?)
                    };
                    acc.add(m, member, score);
                }
                (T::ZSet, E::SkipList, n, Some(acc.finish(m)))
            }
            rdb::TYPE_HASH => {
                let n = self.read_len("a hash size")?;
                let mut acc = HashAcc::new(m, n);
                for _ in 0..n {
                    let ints = acc.needs_ints();
                    let field = self.read_member("a hash field", ints)?;
                    let value = self.read_member("a hash value", ints)?;
                    acc.add(m, field, value);
                }
                (T::Hash, E::Raw, n, Some(acc.finish(m)))
            }
            rdb::TYPE_MODULE_2 => {
                self.read_len("a module id")?;
                self.walk_module_value()?;
                (T::Module, E::Module, 0, None)
            }
            rdb::TYPE_HASH_ZIPMAP => {
                let mut lp = Repack::new(m);
                let (pairs, _) = self.walk_blob(Blob::Zipmap, |e| lp.add(m, e))?;
                let mem = if pairs > st.hash_max_entries || lp.max_len > st.hash_max_value {
                    hash_table(m, pairs, lp.sds)
                } else {
                    m.packed_value(lp.bytes)
                };
                (T::Hash, E::ZipMap, pairs, Some(mem))
            }
            rdb::TYPE_LIST_ZIPLIST if m.version.ziplists() => {
                let (n, len) = self.read_blob(Blob::Ziplist)?;
                (T::List, E::ZipList, n, Some(m.blob_value(len)))
            }
            rdb::TYPE_LIST_ZIPLIST => {
                let mut acc = ListPush::default();
                let (n, _) = self.walk_blob(Blob::Ziplist, |e| acc.push(m, e))?;
                (T::List, E::ZipList, n, Some(acc.finish(m, false)))
            }
            rdb::TYPE_SET_INTSET => {
                let (n, len) = self.read_blob(Blob::Intset)?;
                let mem = if n > st.set_max_intset_entries {
                    let width = len.saturating_sub(8).checked_div(n).unwrap_or(0);
                    set_table(m, n, n * m.sds(if width <= 2 { 5 } else { 10 }))
                } else {
                    m.blob_value(len)
                };
                (T::Set, E::IntSet, n, Some(mem))
            }
            rdb::TYPE_ZSET_ZIPLIST | rdb::TYPE_HASH_ZIPLIST if m.version.ziplists() => {
                let (n, len) = self.read_blob(Blob::Ziplist)?;
                let (ty, pairs) = (Self::pair_type(t), Self::whole_pairs(n, 2, Blob::Ziplist)?);
                (ty, E::ZipList, pairs, Some(m.blob_value(len)))
            }
            rdb::TYPE_ZSET_ZIPLIST | rdb::TYPE_HASH_ZIPLIST => {
                let mut lp = Repack::new(m);
                let (n, _) = self.walk_blob(Blob::Ziplist, |e| lp.add(m, e))?;
                let pairs = Self::whole_pairs(n, 2, Blob::Ziplist)?;
                let mem = if t == rdb::TYPE_HASH_ZIPLIST {
                    if pairs > st.hash_max_entries {
                        hash_table(m, pairs, lp.sds)
                    } else {
                        m.packed_value(lp.bytes)
                    }
                } else if pairs > st.zset_max_entries {
                    zset_skiplist(m, pairs, lp.sds / 2)
                } else {
                    m.packed_value(lp.bytes)
                };
                (Self::pair_type(t), E::ZipList, pairs, Some(mem))
            }
            rdb::TYPE_LIST_QUICKLIST => {
                let nodes = self.read_len("a quicklist node count")?;
                let mut acc = QuickNodes::default();
                let mut n = 0u64;
                for _ in 0..nodes {
                    let (count, bytes) = if m.version.ziplists() {
                        self.read_blob(Blob::Ziplist)?
                    } else {
                        let mut lp = Repack::new(m);
                        let (count, _) = self.walk_blob(Blob::Ziplist, |e| lp.add(m, e))?;
                        (count, lp.bytes)
                    };
                    acc.node(m, bytes, count, true);
                    n = n.saturating_add(count);
                }
                (T::List, E::QuickList, n, Some(acc.finish(m)))
            }
            rdb::TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.read_len("a quicklist node count")?;
                let mut acc = QuickNodes::default();
                let mut n = 0u64;
                for _ in 0..nodes {
                    match self.read_len("a quicklist node container")? {
                        rdb::QUICKLIST_NODE_PLAIN => {
                            let len = self.string_len("a plain quicklist node")?;
                            acc.node(m, len, 1, false);
                            n = n.saturating_add(1);
                        }
                        rdb::QUICKLIST_NODE_PACKED => {
                            let (count, len) = self.read_blob(Blob::Listpack)?;
                            acc.node(m, len, count, true);
                            n = n.saturating_add(count);
                        }
                        c => return Err(corrupt(format!("invalid quicklist container {c}"))),
                    }
                }
                (T::List, E::QuickList2, n, Some(acc.finish(m)))
            }
            rdb::TYPE_STREAM_LISTPACKS => {
                let (n, mem) = self.read_stream_mem(1, m)?;
                (T::Stream, E::ListPacks, n, Some(mem))
            }
            rdb::TYPE_STREAM_LISTPACKS_2 => {
                let (n, mem) = self.read_stream_mem(2, m)?;
                (T::Stream, E::ListPacks2, n, Some(mem))
            }
            rdb::TYPE_STREAM_LISTPACKS_3 => {
                let (n, mem) = self.read_stream_mem(3, m)?;
                (T::Stream, E::ListPacks3, n, Some(mem))
            }
            rdb::TYPE_HASH_LISTPACK => {
                let (n, len) = self.read_blob(Blob::Listpack)?;
                let pairs = Self::whole_pairs(n, 2, Blob::Listpack)?;
                let mem = if pairs > st.hash_max_entries {
                    hash_table(m, pairs, average_sds(m, len - 7, n))
                } else {
                    m.blob_value(len)
                };
                (T::Hash, E::ListPack, pairs, Some(mem))
            }
            rdb::TYPE_ZSET_LISTPACK => {
                let (n, len) = self.read_blob(Blob::Listpack)?;
                let pairs = Self::whole_pairs(n, 2, Blob::Listpack)?;
                let mem = if pairs > st.zset_max_entries {
                    zset_skiplist(m, pairs, average_sds(m, len - 7, n) / 2)
                } else {
                    m.blob_value(len)
                };
                (T::ZSet, E::ListPack, pairs, Some(mem))
            }
            rdb::TYPE_SET_LISTPACK => {
                let (n, len) = self.read_blob(Blob::Listpack)?;
                let mem = if m.version.since_72() && n > st.set_max_listpack_entries {
                    set_table(m, n, average_sds(m, len - 7, n))
                } else {
                    m.blob_value(len)
                };
                (T::Set, E::ListPack, n, Some(mem))
            }
            rdb::TYPE_HASH_METADATA_PRE_GA if self.is_valkey() => {
                // Valkey 9 HASH_2: per field: field, value, 8-byte expiry (-1: none). Modelled
                // as a hash whose fields carry 8 more bytes (approximate).
                let n = self.read_len("a hash size")?;
                let mut acc = HashAcc::new(m, n);
                for _ in 0..n {
                    let mut field = self.read_elem("a hash field")?.0;
                    let value = self.read_elem("a hash value")?.0;
                    self.rd.skip(8, "a hash field expiry")?;
                    field.len += 8;
                    acc.add(m, field, value);
                }
                (T::Hash, E::Hash2, n, Some(acc.finish(m)))
            }
            rdb::TYPE_HASH_METADATA_PRE_GA | rdb::TYPE_HASH_METADATA => {
                // Redis 7.4 hashtable with field TTLs: each field an `hfield` with 8 bytes of
                // expiry metadata (approximate).
                if t == rdb::TYPE_HASH_METADATA {
                    self.rd.skip(8, "a hash minimum expiry")?;
                }
                let n = self.read_len("a hash size")?;
                let mut acc = HashAcc::new(m, n);
                let mut with_ttl = false;
                for _ in 0..n {
                    let ttl = self.read_len("a hash field TTL")?;
                    let mut field = self.read_elem("a hash field")?.0;
                    let value = self.read_elem("a hash value")?.0;
                    // Fields are `hfield`s (mstr): with a TTL they carry its ExpireMeta and
                    // flags (17 bytes); the sizes beyond that are fitted to Redis 7.4.1
                    // (approximate).
                    field.len += if ttl != 0 { 17 } else { 8 };
                    with_ttl |= ttl != 0;
                    acc.add(m, field, value);
                }
                // The dict's expiry metadata (ExpireMeta, ebuckets, key).
                let meta = if with_ttl { m.c(56 + 32) - m.c(56) } else { 0 };
                (T::Hash, E::Metadata, n, Some(acc.finish(m) + meta))
            }
            rdb::TYPE_HASH_LISTPACK_EX_PRE_GA | rdb::TYPE_HASH_LISTPACK_EX => {
                if t == rdb::TYPE_HASH_LISTPACK_EX {
                    self.rd.skip(8, "a hash minimum expiry")?;
                }
                let (n, len) = self.read_blob(Blob::Listpack)?;
                let triples = Self::whole_pairs(n, 3, Blob::Listpack)?;
                // The listpack and its `listpackEx` wrapper (expiry metadata, key, lp).
                (
                    T::Hash,
                    E::ListPackEx,
                    triples,
                    Some(m.blob_value(len) + m.c(32)),
                )
            }
            other => return Err(ParseErrorKind::UnknownType(other)),
        })
    }

    fn pair_type(t: u8) -> RecordType {
        if t == rdb::TYPE_HASH_ZIPLIST {
            RecordType::Hash
        } else {
            RecordType::ZSet
        }
    }

    /// `n` entries grouped `per` to a member (field-value pairs, triples with a TTL).
    fn whole_pairs(n: u64, per: u64, blob: Blob) -> PResult<u64> {
        if !n.is_multiple_of(per) {
            return Err(corrupt(format!(
                "{} corrupt: {n} entries is not a multiple of {per}",
                blob.name()
            )));
        }
        Ok(n / per)
    }

    /// Walk a value without a memory model; returns its type, encoding and member count.
    fn read_value_plain(&mut self, t: u8) -> PResult<(RecordType, Encoding, u64)> {
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
            rdb::TYPE_HASH_ZIPMAP => (T::Hash, E::ZipMap, self.read_blob(Blob::Zipmap)?.0),
            rdb::TYPE_LIST_ZIPLIST => (T::List, E::ZipList, self.read_blob(Blob::Ziplist)?.0),
            rdb::TYPE_SET_INTSET => (T::Set, E::IntSet, self.read_blob(Blob::Intset)?.0),
            rdb::TYPE_ZSET_ZIPLIST => (T::ZSet, E::ZipList, self.pairs(Blob::Ziplist, 2)?),
            rdb::TYPE_HASH_ZIPLIST => (T::Hash, E::ZipList, self.pairs(Blob::Ziplist, 2)?),
            rdb::TYPE_LIST_QUICKLIST => {
                let nodes = self.read_len("a quicklist node count")?;
                let mut n = 0u64;
                for _ in 0..nodes {
                    n = n.saturating_add(self.read_blob(Blob::Ziplist)?.0);
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
                            n = n.saturating_add(self.read_blob(Blob::Listpack)?.0);
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
            rdb::TYPE_SET_LISTPACK => (T::Set, E::ListPack, self.read_blob(Blob::Listpack)?.0),
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
        let (n, _) = self.read_blob(blob)?;
        Self::whole_pairs(n, per, blob)
    }

    /// Walk a stream; returns its length (live entries).
    fn read_stream(&mut self, v: u8) -> PResult<u64> {
        self.walk_stream(v, None)
    }

    /// Walk a stream with the memory model; returns its length and its bytes once loaded.
    fn read_stream_mem(&mut self, v: u8, m: &Model) -> PResult<(u64, u64)> {
        let mut acc = StreamAcc::default();
        let length = self.walk_stream(v, Some((m, &mut acc)))?;
        Ok((length, acc.finish(m)))
    }

    fn walk_stream(&mut self, v: u8, mut mem: Option<(&Model, &mut StreamAcc)>) -> PResult<u64> {
        let nodes = self.read_len("a stream node count")?;
        for _ in 0..nodes {
            self.skip_string("a stream node key")?;
            match mem.as_mut() {
                Some((m, acc)) => {
                    let len = self.string_len("a stream listpack")?;
                    acc.node(m, len);
                }
                None => {
                    self.skip_string("a stream listpack")?;
                }
            }
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
            if let Some((_, acc)) = mem.as_mut() {
                acc.group(pel);
            }
            let consumers = self.read_len("a consumer count")?;
            for _ in 0..consumers {
                let name_len = self.string_len("a consumer name")?;
                self.rd
                    .skip(if v >= 3 { 16 } else { 8 }, "a consumer seen time")?;
                let pel = self.read_len("a consumer PEL size")?;
                for _ in 0..pel {
                    self.rd.skip(16, "a consumer PEL entry")?;
                }
                if let Some((m, acc)) = mem.as_mut() {
                    acc.consumer(m, name_len, pel);
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
