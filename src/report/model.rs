//! The report data model ([`ReportData`]): everything the HTML page shows, and nothing else.
//!
//! One `ReportData` is filled by either reader (Parquet files or ClickHouse) and rendered by the
//! one renderer. The same stored batch must give the same `ReportData`, and so byte-identical
//! JSON, from both stores and on every run. That rules out anything that depends on when or where
//! the report is made: every time in it is the batch timestamp or relative to it, every list has a
//! total order (ties are broken down to the last field, see each list's doc), and every number is
//! an exact integer except the two means of [`Balance`], which are computed from exact integers in
//! one fixed way.
//!
//! Serialized with `serde_json` (compact). Field names are part of the `--json` output format;
//! [`FORMAT_VERSION`] changes when they change incompatibly.
//!
//! Keys and prefixes are raw bytes; in JSON they are a [`KeyText`]: a display string with
//! `\xNN` escapes for bytes that are not UTF-8, plus the exact bytes (base64) whenever the display
//! string is not the key itself.

use serde::{Deserialize, Serialize};

/// Version of the JSON document.
pub const FORMAT_VERSION: u32 = 1;

/// Default `--top`.
pub const DEFAULT_TOP: u64 = 100;
/// Default `--prefix-threshold`, percent of the batch's total `rdb_size`.
pub const DEFAULT_PREFIX_THRESHOLD_PCT: &str = "1";
/// A string key is "big" above this many bytes of `rdb_size` (1 MiB).
pub const BIG_STRING_BYTES: u64 = 1 << 20;
/// A key of another type is "big" above this many bytes of `rdb_size` (1 GiB)...
pub const BIG_OTHER_BYTES: u64 = 1 << 30;
/// ...or above this many members.
pub const BIG_MEMBERS: u64 = 1_000_000;
/// Slots listed in each of [`Balance::top_slots_by_bytes`] and [`Balance::top_slots_by_keys`].
pub const TOP_SLOTS: usize = 20;
/// More prefix nodes than this is an error asking for a higher `--prefix-threshold` (the page
/// must stay responsive, and the tree is held in memory).
pub const MAX_PREFIX_NODES: usize = 100_000;

/// Upper bounds (exclusive) of the `idle_seconds` buckets, in seconds: 1 min, 10 min, 1 h, 6 h,
/// 1 d, 7 d, 30 d, 90 d; the last bucket is unbounded. Roughly log-scale, in units people use.
pub const IDLE_BOUNDS: [u64; 8] = [
    60, 600, 3_600, 21_600, 86_400, 604_800, 2_592_000, 7_776_000,
];
/// Upper bounds (exclusive) of the `freq` buckets: powers of two (the LFU counter is itself
/// logarithmic); the last bucket is `[128, 256)`.
pub const FREQ_BOUNDS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `rdbinsight <version>` of the binary that made the report.
    pub generator: String,
    pub cluster: String,
    /// The batch timestamp, RFC 3339 UTC with 9 fractional digits
    /// (`2024-01-02T03:04:05.123456789Z`).
    pub batch: String,
    pub params: Params,
    pub totals: Totals,
    /// Per type. Order: `rdb_size` desc, then type name asc.
    pub by_type: Vec<TypeRow>,
    /// Per (type, encoding): also the "encoding mix per type" of the outliers section.
    /// Order: `rdb_size` desc, then type asc, then encoding asc.
    pub by_type_encoding: Vec<TypeEncodingRow>,
    /// Per db number. Order: db asc.
    pub by_db: Vec<DbRow>,
    /// Per instance. Order: instance name asc (bytewise).
    pub by_instance: Vec<InstanceRow>,
    pub prefix_tree: PrefixTree,
    /// The `params.top` keys with the largest `rdb_size`. Order: `rdb_size` desc, then key bytes
    /// asc, then instance asc, then db asc.
    pub top_keys_by_size: Vec<KeyRow>,
    /// The `params.top` keys with the most members. Order: `member_count` desc, then key bytes
    /// asc, then instance asc, then db asc.
    pub top_keys_by_members: Vec<KeyRow>,
    pub expiry: Expiry,
    pub cold: Cold,
    pub outliers: Outliers,
    pub balance: Balance,
}

/// The parameters the report was made with (so a reader of the JSON knows what the lists mean).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// `--top`: length of the top-key lists, of `expiry.no_ttl_prefixes` and the cap of
    /// `outliers.big_keys`.
    pub top: u64,
    /// `--prefix-threshold` as a normalized decimal (`"1"`, `"0.5"`): percent of
    /// `totals.rdb_size`.
    pub prefix_threshold_pct: String,
    /// `max(1, floor(totals.rdb_size × pct / 100))`, computed exactly (integer arithmetic on
    /// the decimal, never through floating point). 0 when the batch holds no bytes.
    pub prefix_threshold_bytes: u64,
    /// `--delimiter`: the characters prefixes are snapped back to, if given.
    pub delimiter: Option<String>,
    /// [`BIG_STRING_BYTES`].
    pub big_string_bytes: u64,
    /// [`BIG_OTHER_BYTES`].
    pub big_other_bytes: u64,
    /// [`BIG_MEMBERS`].
    pub big_members: u64,
}

/// Exact count of keys and sums of `rdb_size` and `member_count` over a set of keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agg {
    pub keys: u64,
    pub rdb_size: u64,
    pub member_count: u64,
}

impl Agg {
    /// Count one key.
    #[inline]
    pub fn add(&mut self, rdb_size: u64, member_count: u64) {
        self.keys += 1;
        self.rdb_size += rdb_size;
        self.member_count += member_count;
    }

    /// Add another aggregate.
    #[inline]
    pub fn merge(&mut self, other: &Agg) {
        self.keys += other.keys;
        self.rdb_size += other.rdb_size;
        self.member_count += other.member_count;
    }
}

/// Batch totals. "Keys" counts records: the same key name on two instances (or dbs) is two keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    #[serde(flatten)]
    pub agg: Agg,
    /// Distinct instances holding at least one key. (An instance whose snapshot was empty has
    /// no rows in ClickHouse, so neither reader counts it; the Parquet file of such an instance
    /// exists but holds no rows.)
    pub instances: u64,
    /// Distinct db numbers.
    pub dbs: u64,
    /// Keys (and their sums) that carry an expiry.
    pub with_ttl: Agg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeRow {
    /// `string list set zset hash stream module`.
    #[serde(rename = "type")]
    pub r#type: String,
    #[serde(flatten)]
    pub agg: Agg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeEncodingRow {
    #[serde(rename = "type")]
    pub r#type: String,
    pub encoding: String,
    #[serde(flatten)]
    pub agg: Agg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbRow {
    pub db: u64,
    #[serde(flatten)]
    pub agg: Agg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub instance: String,
    #[serde(flatten)]
    pub agg: Agg,
}

/// Key or prefix bytes, made displayable.
///
/// `text`: the bytes decoded as UTF-8, where every byte that is not part of a valid UTF-8
/// sequence, and every control character (U+0000–U+001F, U+007F), is written `\xNN` (two
/// lowercase hex digits), and a backslash is written `\\`. So the text is unambiguous, and a prefix
/// that ends inside a multi-byte character shows that character's leading bytes as `\xNN`.
/// `base64`: the exact bytes (standard alphabet, padded), present only when `text` is not the key
/// itself (some escape was written).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyText {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base64: Option<String>,
}

/// `rdb_size` per type, in the fixed order of the fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeBytes {
    pub string: u64,
    pub list: u64,
    pub set: u64,
    pub zset: u64,
    pub hash: u64,
    pub stream: u64,
    pub module: u64,
}

/// The prefix tree (issue #9, section 3).
///
/// With `T = params.prefix_threshold_bytes`, a byte string P is a node when the keys starting
/// with P hold at least T bytes of `rdb_size` and P is the longest common prefix of exactly
/// those keys (a branching point of the key trie, or a whole key). The parent of a node is the
/// longest other node that is a prefix of it (on raw bytes). The root is the longest common
/// prefix of all keys (often empty), so there is exactly one root when the batch holds any
/// bytes, and none otherwise.
///
/// With `--delimiter`, each node's prefix is cut back to just after its last delimiter
/// character (to the empty prefix when it has none); nodes that end up with the same prefix
/// become one node holding the keys that start with that prefix (which are exactly the keys of
/// the shortest of them), and parents are recomputed on the cut prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixTree {
    /// The nodes, sorted by prefix bytes ascending (which is a pre-order: a parent comes before
    /// its children, and a node's subtree is contiguous). At most [`MAX_PREFIX_NODES`].
    pub nodes: Vec<PrefixNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixNode {
    /// Index of the parent in [`PrefixTree::nodes`]; `None` for the root.
    pub parent: Option<u32>,
    pub prefix: KeyText,
    /// Length of the prefix in bytes.
    pub prefix_len: u64,
    /// Whether some key equals the prefix exactly.
    pub is_key: bool,
    /// Keys starting with the prefix.
    #[serde(flatten)]
    pub agg: Agg,
    /// Of those, the keys without an expiry.
    pub no_ttl: Agg,
    /// Of those, `rdb_size` per type.
    pub rdb_size_by_type: TypeBytes,
}

/// One key with its facts (top lists, big keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub key: KeyText,
    pub instance: String,
    pub db: u64,
    #[serde(rename = "type")]
    pub r#type: String,
    pub encoding: String,
    pub rdb_size: u64,
    pub member_count: u64,
    /// RFC 3339 UTC with 3 fractional digits, or `None` without expiry.
    pub expire_at: Option<String>,
    /// `expire_at` minus the batch timestamp, in milliseconds (negative: already expired at
    /// batch time). The batch timestamp is truncated to milliseconds first
    /// (`batch_ns.div_euclid(1_000_000)`).
    pub ttl_ms: Option<i64>,
    pub idle_seconds: Option<u64>,
    pub freq: Option<u8>,
}

/// Expiry relative to the batch timestamp (issue #9, section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// Always these seven buckets, in this order, with these ids: `no_ttl`, `expired`
    /// (`ttl_ms <= 0`), `lt_1h` (`0 < ttl_ms < 3,600,000`), `1h_24h`, `1d_7d`, `7d_30d`
    /// (each `[lower, upper)`), `gt_30d` (`ttl_ms >= 30 days`), with `ttl_ms` as in
    /// [`KeyRow::ttl_ms`].
    pub buckets: Vec<BucketRow>,
    /// The prefix-tree nodes holding the most bytes without expiry: `rdb_size` of their no-TTL
    /// keys desc, then prefix bytes asc; at most `params.top`, nodes with no such bytes left out.
    pub no_ttl_prefixes: Vec<NoTtlPrefix>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRow {
    /// Stable id (see where the buckets are defined).
    pub id: String,
    #[serde(flatten)]
    pub agg: Agg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoTtlPrefix {
    /// Index in [`PrefixTree::nodes`].
    pub node: u32,
    pub prefix: KeyText,
    /// The node's keys without expiry.
    pub no_ttl: Agg,
    /// All the node's keys.
    pub all: Agg,
}

/// Access recency and frequency (issue #9, section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cold {
    /// `idle_seconds`, buckets bounded by [`IDLE_BOUNDS`].
    pub idle: Histogram,
    /// `freq`, buckets bounded by [`FREQ_BOUNDS`].
    pub freq: Histogram,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Keys that carry the field at all (the rest have it NULL: the server's maxmemory policy
    /// did not record it).
    pub with_field: Agg,
    /// Always `bounds.len() + 1` buckets: `[0, b0)`, `[b0, b1)`, ..., `[b_last, ∞)`, empty ones
    /// included.
    pub buckets: Vec<HistBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistBucket {
    /// Inclusive lower bound.
    pub lo: u64,
    /// Exclusive upper bound; `None` for the last bucket.
    pub hi: Option<u64>,
    #[serde(flatten)]
    pub agg: Agg,
}

/// Outliers (issue #9, section 7). The encoding mix per type is
/// [`ReportData::by_type_encoding`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outliers {
    /// Big keys: strings with `rdb_size > big_string_bytes`; other types with
    /// `rdb_size > big_other_bytes` or `member_count > big_members`. Order as
    /// [`ReportData::top_keys_by_size`]; at most `params.top`.
    pub big_keys: Vec<KeyRow>,
    /// How many keys are big in all (listed or not).
    pub big_keys_total: u64,
    /// Sums over all big keys.
    pub big_keys_agg: Agg,
}

/// Balance across instances and slots (issue #9, section 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    /// Largest per-instance key count and byte sum (0 for an empty batch).
    pub keys_max: u64,
    pub rdb_size_max: u64,
    /// Means over the instances of `totals.instances` (`total as f64 / instances as f64`; 0.0
    /// for an empty batch).
    pub keys_mean: f64,
    pub rdb_size_mean: f64,
    /// The [`TOP_SLOTS`] slots with most bytes: `rdb_size` desc, then kind asc, then slot asc.
    pub top_slots_by_bytes: Vec<SlotRow>,
    /// The [`TOP_SLOTS`] slots with most keys: keys desc, then kind asc, then slot asc.
    pub top_slots_by_keys: Vec<SlotRow>,
    /// Every slot found on more than one instance. Order: kind asc, then slot asc.
    pub shared_slots: Vec<SharedSlot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRow {
    /// `redis` (`redis_slot`) or `codis` (`codis_slot`).
    pub kind: String,
    pub slot: u16,
    /// Instances holding keys of this slot.
    pub instances: u64,
    #[serde(flatten)]
    pub agg: Agg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSlot {
    pub kind: String,
    pub slot: u16,
    /// The instances holding keys of the slot, names asc, with their keys in it.
    pub instances: Vec<InstanceRow>,
}
