//! Per-key arithmetic: what a key costs once loaded, fed element by element by the parser.
//!
//! Each collection type has an accumulator that replays the loading server's decisions as
//! the elements stream past (`rdbLoadObject`: which encoding a value starts in, when it
//! converts, how its dict is presized), keeping only sums and counts. The numbers follow the
//! servers' sources (Redis 6.2.14, 7.0.15, 7.2.6, 7.4.1, Valkey 8.0.1); where a layout is
//! random (skiplist levels, which set members share a bucket in a 7.2+ `no_value` dict, how
//! far an incremental rehash got), the expected value is used.

use super::alloc::SMALL_SDS;
use super::encode::{
    LP_EMPTY, ScoreText, ZL_EMPTY, decimal_len, double2ll, lp_entry, score_text_len, sds_header,
    zl_entry,
};
use super::{Model, ServerVersion};

/// One string element as the parser saw it: its length once loaded (integers as decimal
/// text) and, when it is the canonical text of an integer (or stored as one), that integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elem {
    pub len: u64,
    pub int: Option<i64>,
}

impl Elem {
    /// A string stored in the RDB as an integer (0xC0–0xC2 encodings, ziplist integers).
    pub fn int(v: i64) -> Self {
        Elem {
            len: decimal_len(v),
            int: Some(v),
        }
    }
}

/// `sizeof(robj)`.
const ROBJ: u64 = 16;
/// `sizeof(dict)` (7.x; 6.2's is 96 with its two embedded tables, see [`Model::dict`]).
const DICT: u64 = 56;
/// `sizeof(dictEntry)`.
const DICT_ENTRY: u64 = 24;

impl Model {
    #[inline]
    pub(crate) fn c(&self, n: u64) -> u64 {
        self.allocator.class(n)
    }

    /// An sds string of `len` bytes.
    #[inline]
    pub(crate) fn sds(&self, len: u64) -> u64 {
        if len < SMALL_SDS as u64 {
            return self.allocator.small_sds(len as usize);
        }
        self.c(sds_header(len, self.version.is_valkey()) + len + 1)
    }

    /// A dict struct (6.2 embeds two `dictht` of 32 bytes each: 8 + 8 + 64 + 8 + 8 = 96).
    fn dict(&self) -> u64 {
        if self.version == ServerVersion::Redis62 {
            self.c(96)
        } else {
            self.c(DICT)
        }
    }

    /// The key's part: its sds, its main-dict entry and, with a TTL, its expires-dict entry.
    #[inline]
    pub(crate) fn key_part(&self, key_len: u64, ttl: bool) -> u64 {
        let entry = if self.version == ServerVersion::Valkey80 {
            // dictEntryEmbedded: value 8, next 8, header size 1, then the key's sds.
            self.c(17 + sds_header(key_len, true) + key_len + 1)
        } else {
            let slot_meta = match self.version {
                ServerVersion::Redis70 | ServerVersion::Redis72 if self.cluster => 16,
                _ => 0,
            };
            self.c(DICT_ENTRY + slot_meta) + self.sds(key_len)
        };
        entry + if ttl { self.c(DICT_ENTRY) } else { 0 }
    }

    /// A string value.
    #[inline]
    pub(crate) fn string_value(&self, e: Elem) -> u64 {
        match e.int {
            Some(v) if self.settings.shares_integers() && (0..10_000).contains(&v) => 0,
            Some(_) => self.c(ROBJ),
            // embstr: robj + sdshdr8 + bytes + NUL in one allocation.
            None if e.len <= 44 => self.c(ROBJ + 3 + e.len + 1),
            None => self.c(ROBJ) + self.sds(e.len),
        }
    }

    /// A value kept as the blob the RDB holds (listpack, intset, ziplist on 6.2).
    #[inline]
    pub(crate) fn blob_value(&self, blob_len: u64) -> u64 {
        self.c(ROBJ) + self.c(blob_len)
    }

    /// A listpack (or 6.2 ziplist) built element by element on load, of `bytes` bytes.
    #[inline]
    pub(crate) fn packed_value(&self, bytes: u64) -> u64 {
        self.c(ROBJ) + self.c(bytes)
    }

    /// `sizeof(quicklistNode)`: 32 on 6.2, 40 later.
    fn ql_node(&self) -> u64 {
        self.c(if self.version.ziplists() { 32 } else { 40 })
    }

    /// The robj and `quicklist` struct of a quicklist-encoded list.
    fn ql_head(&self) -> u64 {
        self.c(ROBJ) + self.c(40)
    }

    /// The quicklist node limits for `list-max-listpack-size`: (bytes, entries).
    fn list_node_limit(&self) -> (u64, u64) {
        const LEVELS: [u64; 5] = [4096, 8192, 16384, 32768, 65536];
        let fill = self.settings.list_max_size;
        if fill >= 0 {
            (u64::MAX, fill.max(1) as u64)
        } else {
            let i = ((-fill - 1) as usize).min(LEVELS.len() - 1);
            (LEVELS[i], u64::MAX)
        }
    }

    fn score_style(&self) -> ScoreText {
        if self.version >= ServerVersion::Redis72 {
            ScoreText::Shortest
        } else {
            ScoreText::Printf17g
        }
    }

    /// A listpack entry (or 6.2 ziplist entry after one of < 254 bytes) for a score.
    fn score_entry(&self, score: f64) -> u64 {
        let int = double2ll(score);
        let len = match int {
            Some(v) => decimal_len(v),
            None => score_text_len(score, self.score_style()),
        };
        if self.version.ziplists() {
            zl_entry(0, len, int)
        } else {
            lp_entry(len, int)
        }
    }

    /// Expected bytes of a skiplist node: 24 + 16 per level, levels geometric (p = 1/4,
    /// at most 32).
    fn skiplist_node(&self) -> f64 {
        let mut expected = 0.0;
        let mut p = 0.75;
        for level in 1..=32u64 {
            let prob = if level == 32 { p / 0.75 } else { p };
            expected += prob * self.c(24 + 16 * level) as f64;
            p *= 0.25;
        }
        expected
    }

    /// Expected entry allocations of a 7.2+ `no_value` set dict of `n` members in `buckets`
    /// buckets: a member that lands in an empty bucket is stored in the bucket itself.
    fn set_entries(&self, n: u64, buckets: u64) -> f64 {
        if !self.version.since_72() {
            return (n * self.c(DICT_ENTRY)) as f64;
        }
        let b = buckets as f64;
        let occupied = b * (1.0 - (1.0 - 1.0 / b).powf(n as f64));
        (n as f64 - occupied).max(0.0) * self.c(16) as f64
    }
}

/// A dict as `rdbLoadObject` sizes it: explicit expansions, growth at a 1:1 fill, and the
/// incremental rehash that each insert advances by one bucket. Only sizes are tracked; a
/// rehash is taken to need one step per occupied bucket (expected value).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DictSim {
    size0: u64,
    size1: u64,
    used: u64,
    steps_left: f64,
}

impl DictSim {
    /// `_dictNextExp`: the power of two ≥ `n`, at least 4. A length from the input may be
    /// absurd (a truncated file claims 2^62 members): the size saturates, it never wraps.
    fn next_size(n: u64) -> u64 {
        n.max(4).checked_next_power_of_two().unwrap_or(1 << 63)
    }

    /// `dictExpand(d, n)`.
    pub fn expand(&mut self, n: u64) {
        if self.size1 != 0 || self.used > n {
            return;
        }
        let size = Self::next_size(n);
        if size == self.size0 {
            return;
        }
        if self.size0 == 0 || self.used == 0 {
            // A fresh table; an empty old one is dropped at the next step.
            self.size0 = size;
            return;
        }
        self.size1 = size;
        let s = self.size0 as f64;
        self.steps_left = s * (1.0 - (1.0 - 1.0 / s).powf(self.used as f64));
    }

    /// `dictAdd`: a rehash step, growth if full, then the insert.
    pub fn add(&mut self) {
        if self.size1 != 0 {
            self.steps_left -= 1.0;
            if self.steps_left <= 0.0 {
                self.size0 = self.size1;
                self.size1 = 0;
            }
        }
        if self.size1 == 0 {
            if self.size0 == 0 {
                self.size0 = 4;
            } else if self.used >= self.size0 {
                self.expand(self.used + 1);
            }
        }
        self.used += 1;
    }

    pub fn add_n(&mut self, n: u64) {
        for _ in 0..n {
            self.add();
        }
    }

    /// Buckets allocated (both tables while a rehash is unfinished).
    pub fn buckets(&self) -> u64 {
        self.size0 + self.size1
    }

    /// Bytes of the bucket arrays.
    pub fn bucket_bytes(&self, m: &Model) -> u64 {
        let table = |size: u64| {
            if size == 0 {
                0
            } else {
                m.c(size.saturating_mul(8))
            }
        };
        table(self.size0) + table(self.size1)
    }
}

/// A dict presized to `n` entries, then filled with them (the common case).
fn presized(n: u64) -> DictSim {
    let mut d = DictSim::default();
    if n > 4 {
        d.expand(n);
    }
    d.used = n;
    if d.size0 == 0 && n > 0 {
        d.size0 = 4;
    }
    d
}

/// Where a set is while it loads (RDB type 2).
#[derive(Debug, Clone, Copy)]
enum SetEnc {
    Intset { width: u64 },
    Listpack { bytes: u64 },
    Ht,
}

/// A hashtable-typed set (RDB type 2), member by member.
#[derive(Debug, Clone)]
pub(crate) struct SetAcc {
    len: u64,
    n: u64,
    enc: SetEnc,
    dict: DictSim,
    /// Σ sds of every member so far (what the dict holds if it converts).
    sds: u64,
    /// Σ listpack entries of every member so far.
    lp: u64,
    max_len: u64,
}

impl SetAcc {
    pub fn new(m: &Model, len: u64) -> Self {
        let mut dict = DictSim::default();
        let enc = if len > m.settings.set_max_intset_entries.min(1 << 30) {
            if len > 4 {
                dict.expand(len);
            }
            SetEnc::Ht
        } else {
            SetEnc::Intset { width: 2 }
        };
        SetAcc {
            len,
            n: 0,
            enc,
            dict,
            sds: 0,
            lp: 0,
            max_len: 0,
        }
    }

    /// Whether the next member's integer value can matter (it cannot once the set is a
    /// hashtable: then only lengths count, and the parser need not look at the bytes).
    #[inline]
    pub fn needs_ints(&self) -> bool {
        !matches!(self.enc, SetEnc::Ht)
    }

    fn convert_to_table(&mut self, m: &Model) {
        if m.version.since_72() {
            // setTypeConvertAndExpand(o, HT, len): the dict presized to the whole set.
            self.dict.expand(self.len);
            self.dict.add_n(self.n);
        } else {
            // setTypeConvert presizes to the members so far, then dictTryExpand(len).
            self.dict.expand(self.n);
            self.dict.add_n(self.n);
            self.dict.expand(self.len);
        }
        self.enc = SetEnc::Ht;
    }

    #[inline]
    pub fn add(&mut self, m: &Model, e: Elem) {
        if let SetEnc::Ht = self.enc {
            // The common case of a big set: only its members' sizes count.
            self.n += 1;
            self.sds += m.sds(e.len);
            self.dict.add();
            return;
        }
        self.max_len = self.max_len.max(e.len);
        let st = &m.settings;
        if let SetEnc::Intset { width } = self.enc {
            if let Some(v) = e.int {
                let w = if i16::try_from(v).is_ok() {
                    2
                } else if i32::try_from(v).is_ok() {
                    4
                } else {
                    8
                };
                self.enc = SetEnc::Intset {
                    width: width.max(w),
                };
            } else if m.version.since_72()
                && self.n < st.set_max_listpack_entries
                && self.max_len <= st.set_max_listpack_value
            {
                self.enc = SetEnc::Listpack {
                    bytes: LP_EMPTY + self.lp,
                };
            } else {
                self.convert_to_table(m);
            }
        }
        if let SetEnc::Listpack { bytes } = self.enc {
            if self.n < st.set_max_listpack_entries && e.len <= st.set_max_listpack_value {
                self.enc = SetEnc::Listpack {
                    bytes: bytes + lp_entry(e.len, e.int),
                };
            } else {
                self.convert_to_table(m);
            }
        }
        self.n += 1;
        self.sds += m.sds(e.len);
        if let SetEnc::Ht = self.enc {
            self.dict.add();
        } else {
            // Only a set that is still an intset or listpack may need its listpack size.
            self.lp += lp_entry(e.len, e.int);
        }
    }

    pub fn finish(&self, m: &Model) -> u64 {
        match self.enc {
            _ if self.n == 0 => 0,
            SetEnc::Intset { width } => m.c(ROBJ) + m.c(8 + self.n * width),
            SetEnc::Listpack { bytes } => m.packed_value(bytes),
            SetEnc::Ht => {
                m.c(ROBJ)
                    + m.dict()
                    + self.dict.bucket_bytes(m)
                    + self.sds
                    + m.set_entries(self.n, self.dict.buckets()).round() as u64
            }
        }
    }
}

/// A hashtable-typed hash (RDB type 4), pair by pair.
#[derive(Debug, Clone)]
pub(crate) struct HashAcc {
    n: u64,
    left: u64,
    packed: Option<u64>,
    dict: DictSim,
    sds: u64,
    prev_zl_entry: u64,
}

impl HashAcc {
    pub fn new(m: &Model, len: u64) -> Self {
        let mut dict = DictSim::default();
        let packed = if len > m.settings.hash_max_entries {
            // Converted before the first pair: an empty dict expanded to the length.
            dict.expand(0);
            if len > 4 {
                dict.expand(len);
            }
            None
        } else if m.version.ziplists() {
            Some(ZL_EMPTY)
        } else {
            Some(LP_EMPTY)
        };
        HashAcc {
            n: 0,
            left: len,
            packed,
            dict,
            sds: 0,
            prev_zl_entry: 0,
        }
    }

    /// Whether the next pair's integer values can matter (only while it is packed).
    #[inline]
    pub fn needs_ints(&self) -> bool {
        self.packed.is_some()
    }

    pub fn add(&mut self, m: &Model, field: Elem, value: Elem) {
        self.left = self.left.saturating_sub(1);
        if let Some(bytes) = self.packed {
            let max = m.settings.hash_max_value;
            if field.len > max || value.len > max {
                // hashTypeConvert presizes to the pairs so far, the pair goes in, then the
                // dict is expanded to what is left when that is more than 4.
                self.packed = None;
                self.dict.expand(self.n);
                self.dict.add_n(self.n);
                self.dict.add();
                if self.left > 4 {
                    self.dict.expand(self.left);
                }
            } else if m.version.ziplists() {
                let f = zl_entry(self.prev_zl_entry, field.len, field.int);
                let v = zl_entry(f, value.len, value.int);
                self.prev_zl_entry = v;
                self.packed = Some(bytes + f + v);
            } else {
                self.packed =
                    Some(bytes + lp_entry(field.len, field.int) + lp_entry(value.len, value.int));
            }
        } else {
            self.dict.add();
        }
        self.n += 1;
        self.sds += m.sds(field.len) + m.sds(value.len);
    }

    pub fn finish(&self, m: &Model) -> u64 {
        if self.n == 0 {
            return 0;
        }
        match self.packed {
            Some(bytes) => m.packed_value(bytes),
            None => {
                m.c(ROBJ)
                    + m.dict()
                    + self.dict.bucket_bytes(m)
                    + self.sds
                    + self.n * m.c(DICT_ENTRY)
            }
        }
    }
}

/// A skiplist-typed zset (RDB types 3 and 5), member by member.
#[derive(Debug, Clone, Default)]
pub(crate) struct ZsetAcc {
    /// The declared length is within the listpack limit: the packed size may be needed.
    may_pack: bool,
    n: u64,
    max_len: u64,
    sds: u64,
    packed: u64,
}

impl ZsetAcc {
    pub fn new(m: &Model, len: u64) -> Self {
        ZsetAcc {
            may_pack: len <= m.settings.zset_max_entries,
            ..ZsetAcc::default()
        }
    }

    /// Whether the next member's integer value can matter (only while the zset may still
    /// end up a listpack).
    #[inline]
    pub fn needs_ints(&self, m: &Model) -> bool {
        self.may_pack
            && self.n < m.settings.zset_max_entries
            && self.max_len <= m.settings.zset_max_value
    }

    pub fn add(&mut self, m: &Model, member: Elem, score: f64) {
        self.n += 1;
        self.max_len = self.max_len.max(member.len);
        self.sds += m.sds(member.len);
        let st = &m.settings;
        if !self.may_pack || self.n > st.zset_max_entries || self.max_len > st.zset_max_value {
            // A skiplist whatever follows: the packed size is never needed (and scores need
            // not be printed).
            return;
        }
        let member_entry = if m.version.ziplists() {
            zl_entry(0, member.len, member.int)
        } else {
            lp_entry(member.len, member.int)
        };
        self.packed += member_entry + m.score_entry(score);
    }

    pub fn finish(&self, m: &Model) -> u64 {
        let st = &m.settings;
        if self.n == 0 {
            return 0;
        }
        if self.n <= st.zset_max_entries && self.max_len <= st.zset_max_value {
            let empty = if m.version.ziplists() {
                ZL_EMPTY
            } else {
                LP_EMPTY
            };
            return m.packed_value(empty + self.packed);
        }
        skiplist(m, self.n, self.sds)
    }
}

/// A skiplist zset of `n` members whose sds take `sds` bytes.
fn skiplist(m: &Model, n: u64, sds: u64) -> u64 {
    let dict = presized(n);
    let fixed = m.c(ROBJ) + m.c(16) + m.dict() + dict.bucket_bytes(m) + m.c(32) + m.c(24 + 32 * 16);
    fixed + sds + n * m.c(DICT_ENTRY) + (n as f64 * m.skiplist_node()).round() as u64
}

/// Elements pushed one by one into a quicklist (RDB type 1 lists; type 10 ziplists on 7.x),
/// with the node-size rule of `list-max-listpack-size`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListPush {
    nodes: u64,
    closed: u64,
    /// The open node: its packed bytes, its estimate (`sz` for the fill rule) and entries.
    bytes: u64,
    count: u64,
    prev_zl_entry: u64,
}

impl ListPush {
    pub fn push(&mut self, m: &Model, e: Elem) {
        let (size_limit, count_limit) = m.list_node_limit();
        let allowed = self.nodes > 0 && {
            if m.version.ziplists() {
                // 6.2: the estimate uses ziplist overheads; a size rule ≤ 8 KiB.
                let overhead = if e.len < 254 { 1 } else { 5 }
                    + if e.len < 64 {
                        1
                    } else if e.len < 16384 {
                        2
                    } else {
                        5
                    };
                let new_sz = self.bytes + e.len + overhead;
                if new_sz <= size_limit {
                    true
                } else if new_sz > 8192 {
                    false
                } else {
                    self.count < count_limit
                }
            } else {
                let new_sz = self.bytes + e.len + 8;
                if size_limit != u64::MAX {
                    new_sz <= size_limit
                } else {
                    new_sz <= 8192 && self.count < count_limit
                }
            }
        };
        if !allowed {
            self.close(m);
            self.nodes += 1;
            self.bytes = if m.version.ziplists() {
                ZL_EMPTY
            } else {
                LP_EMPTY
            };
            self.prev_zl_entry = 0;
        }
        if m.version.ziplists() {
            let entry = zl_entry(self.prev_zl_entry, e.len, e.int);
            self.prev_zl_entry = entry;
            self.bytes += entry;
        } else {
            self.bytes += lp_entry(e.len, e.int);
        }
        self.count += 1;
    }

    fn close(&mut self, m: &Model) {
        if self.nodes > 0 {
            self.closed += m.ql_node() + m.c(self.bytes);
        }
        self.count = 0;
    }

    /// `convert`: a 7.2+ list of one small node becomes a listpack (RDB type 1 only).
    pub fn finish(mut self, m: &Model, convert: bool) -> u64 {
        if self.nodes == 0 {
            return 0;
        }
        let (size_limit, count_limit) = m.list_node_limit();
        if convert
            && m.version.since_72()
            && self.nodes == 1
            && self.bytes <= size_limit
            && self.count <= count_limit
        {
            return m.packed_value(self.bytes);
        }
        self.close(m);
        m.ql_head() + self.closed
    }
}

/// Quicklist nodes loaded as they are (RDB types 14 and 18).
#[derive(Debug, Clone, Default)]
pub(crate) struct QuickNodes {
    nodes: u64,
    sum: u64,
    /// The only node so far: (bytes, entries, packed).
    first: Option<(u64, u64, bool)>,
}

impl QuickNodes {
    /// A node of `bytes` bytes in RAM holding `entries` entries (`packed`: a listpack, not a
    /// plain node). Empty nodes are skipped on load.
    pub fn node(&mut self, m: &Model, bytes: u64, entries: u64, packed: bool) {
        if packed && entries == 0 {
            return;
        }
        self.nodes += 1;
        self.sum += m.ql_node() + m.c(bytes);
        if self.nodes == 1 {
            self.first = Some((bytes, entries, packed));
        }
    }

    pub fn finish(&self, m: &Model) -> u64 {
        if self.nodes == 0 {
            return 0;
        }
        if let (1, Some((bytes, entries, true))) = (self.nodes, self.first) {
            let (size_limit, count_limit) = m.list_node_limit();
            if m.version.since_72() && bytes <= size_limit && entries <= count_limit {
                return m.packed_value(bytes);
            }
        }
        m.ql_head() + self.sum
    }
}

/// Entries re-encoded into a listpack (a 7.x server converting a ziplist or zipmap), or into
/// a ziplist (6.2 converting a zipmap).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Repack {
    pub bytes: u64,
    prev: u64,
    pub entries: u64,
    pub max_len: u64,
    /// Σ sds of the entries, for a conversion to a hashtable.
    pub sds: u64,
}

impl Repack {
    pub fn new(m: &Model) -> Self {
        Repack {
            bytes: if m.version.ziplists() {
                ZL_EMPTY
            } else {
                LP_EMPTY
            },
            prev: 0,
            entries: 0,
            max_len: 0,
            sds: 0,
        }
    }

    pub fn add(&mut self, m: &Model, e: Elem) {
        let entry = if m.version.ziplists() {
            zl_entry(self.prev, e.len, e.int)
        } else {
            lp_entry(e.len, e.int)
        };
        self.prev = entry;
        self.bytes += entry;
        self.entries += 1;
        self.max_len = self.max_len.max(e.len);
        self.sds += m.sds(e.len);
    }
}

/// A hash of `pairs` field-value pairs whose sds take `sds` bytes, as a hashtable converted
/// from a listpack (presized to its length).
pub(crate) fn hash_table(m: &Model, pairs: u64, sds: u64) -> u64 {
    m.c(ROBJ) + m.dict() + presized(pairs).bucket_bytes(m) + sds + pairs * m.c(DICT_ENTRY)
}

/// A set of `n` members whose sds take `sds` bytes, as a hashtable converted from an intset
/// or a listpack (presized to its length).
pub(crate) fn set_table(m: &Model, n: u64, sds: u64) -> u64 {
    let dict = presized(n);
    m.c(ROBJ)
        + m.dict()
        + dict.bucket_bytes(m)
        + sds
        + m.set_entries(n, dict.buckets()).round() as u64
}

/// A zset of `n` members whose sds take `sds` bytes, as a skiplist converted from a listpack.
pub(crate) fn zset_skiplist(m: &Model, n: u64, sds: u64) -> u64 {
    skiplist(m, n, sds)
}

/// A blob-typed collection whose count exceeds the loading server's limit (written by a
/// server with higher limits), converted to a hashtable on load. The members' lengths are not
/// known without decoding the blob: the average entry (`payload / entries`) stands in.
pub(crate) fn average_sds(m: &Model, payload: u64, entries: u64) -> u64 {
    if entries == 0 {
        return 0;
    }
    let avg = payload / entries;
    entries * m.sds(avg.saturating_sub(2))
}

/// A stream: its nodes' listpacks (as loaded), the radix tree of node IDs, consumer groups,
/// their pending entries and consumers. The radix trees are estimated (about two nodes per
/// 16-byte ID key), so streams are approximate.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamAcc {
    nodes: u64,
    lp: u64,
    groups: u64,
    group_pel: u64,
    consumers: u64,
    consumer_names: u64,
    consumer_pel: u64,
}

impl StreamAcc {
    pub fn node(&mut self, m: &Model, lp_len: u64) {
        self.nodes += 1;
        self.lp += m.c(lp_len);
    }

    pub fn group(&mut self, pel: u64) {
        self.groups += 1;
        self.group_pel += pel;
    }

    pub fn consumer(&mut self, m: &Model, name_len: u64, pel: u64) {
        self.consumers += 1;
        self.consumer_names += m.sds(name_len);
        self.consumer_pel += pel;
    }

    /// Bytes of a radix tree of `keys` 16-byte keys.
    fn rax(m: &Model, keys: u64) -> u64 {
        // The rax struct and its empty head node, then per key a compressed node holding
        // the key's tail and a leaf with the value pointer.
        m.c(24) + m.c(8) + keys * (m.c(4 + 16 + 8) + m.c(4 + 8))
    }

    pub fn finish(&self, m: &Model) -> u64 {
        let stream = if m.version.ziplists() { 40 } else { 80 };
        let consumer = if m.version >= ServerVersion::Redis72 {
            40
        } else {
            32
        };
        let mut total = m.c(ROBJ) + m.c(stream) + Self::rax(m, self.nodes) + self.lp;
        if self.groups > 0 {
            total += Self::rax(m, self.groups)
                + self.groups * (m.c(40) + Self::rax(m, 0) + Self::rax(m, 0))
                + Self::rax(m, self.group_pel)
                - Self::rax(m, 0)
                + self.group_pel * m.c(24)
                + self.consumers * (m.c(consumer) + Self::rax(m, 0))
                + self.consumer_names
                + Self::rax(m, self.consumer_pel)
                - Self::rax(m, 0);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Allocator, MemoryOptions};

    fn model(v: &str, a: Allocator) -> Model {
        let o = MemoryOptions {
            allocator: Some(a),
            ..MemoryOptions::default()
        };
        o.resolve(Some((false, v)), false)
    }

    #[test]
    fn the_issue_example() {
        // An 11-byte key holding a 10-byte string with a TTL: 96 bytes on 7.2 (q8):
        // dictEntry 24 + key sds C(1+11+1)=16 + embstr C(16+3+10+1)=32 + expires entry 24.
        let m = model("7.2.6", Allocator::Jemalloc);
        let v = m.string_value(Elem { len: 10, int: None });
        assert_eq!(m.key_part(11, true) + v, 96);
    }

    #[test]
    fn strings() {
        let m = model("7.2.6", Allocator::Jemalloc);
        assert_eq!(m.string_value(Elem::int(5)), 0);
        assert_eq!(m.string_value(Elem::int(10_000)), 16);
        assert_eq!(m.string_value(Elem { len: 44, int: None }), 64);
        // raw: robj 16 + sds C(3 + 45 + 1 = 49) = 56.
        assert_eq!(m.string_value(Elem { len: 45, int: None }), 16 + 56);
    }

    #[test]
    fn dict_sim_presizes_and_grows() {
        let mut d = DictSim::default();
        d.expand(600);
        d.add_n(600);
        assert_eq!(d.buckets(), 1024);
        // Grown by adds: the 5th add starts a rehash to 8 buckets that no later add
        // finishes, so both tables are allocated.
        let mut d = DictSim::default();
        d.add_n(5);
        assert_eq!(d.buckets(), 4 + 8);
        d.add_n(3);
        assert_eq!(d.buckets(), 8);
    }

    #[test]
    fn absurd_lengths_saturate() {
        // Lengths come from the input before its elements are read: a truncated or hostile
        // file may claim anything, and the arithmetic must not overflow.
        // (A value is only finished once all its elements were read, so the sums at the end
        // stay within the input's size.)
        let m = model("7.2.6", Allocator::Jemalloc);
        let set = SetAcc::new(&m, u64::MAX);
        assert!(set.dict.buckets() >= 1 << 63);
        let mut hash = HashAcc::new(&m, u64::MAX);
        hash.add(&m, Elem::int(1), Elem::int(2));
        assert!(hash.dict.bucket_bytes(&m) > 1 << 62);
        assert!(Allocator::Jemalloc.class(u64::MAX) >= u64::MAX / 2);
        assert!(Allocator::Jemalloc16.class(u64::MAX - 1) > 0);
        assert!(Allocator::Libc.class(u64::MAX - 3) > 0);
    }

    #[test]
    fn small_hash_is_a_listpack() {
        let m = model("7.0.15", Allocator::Jemalloc16);
        let mut h = HashAcc::new(&m, 2);
        h.add(&m, Elem { len: 1, int: None }, Elem::int(1));
        h.add(&m, Elem { len: 2, int: None }, Elem { len: 3, int: None });
        // 7 + (3 + 2) + (4 + 5) = 21 → C = 32 (q16), robj 16.
        assert_eq!(h.finish(&m), 48);
    }
}
