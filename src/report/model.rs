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
pub const FORMAT_VERSION: u32 = 4;

/// The most bytes of a key the report shows, and the longest prefix a prefix-tree node can
/// have (4 KiB). A longer key is shown as its first `KEY_SHOWN_BYTES` bytes with its exact
/// length and SHA-256 ([`KeyText::len`], [`KeyText::sha256`]), and counted in the prefix tree
/// under its first `KEY_SHOWN_BYTES` bytes (see [`PrefixTree`]).
pub const KEY_SHOWN_BYTES: usize = 4096;

/// Default `--top`.
pub const DEFAULT_TOP: u64 = 100;
/// Default `--prefix-threshold`, percent of the batch's total of the measure.
pub const DEFAULT_PREFIX_THRESHOLD_PCT: &str = "1";
/// A string key is "big" above this many bytes of the measure (1 MiB).
pub const BIG_STRING_BYTES: u64 = 1 << 20;
/// A key of another type is "big" above this many bytes of the measure (1 GiB)...
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
    /// What the memory numbers are and how they reconcile with the servers' own.
    pub memory: Memory,
    pub totals: Totals,
    /// Per type. Order: the measure desc, then type name asc.
    pub by_type: Vec<TypeRow>,
    /// Per (type, encoding): also the "encoding mix per type" of the outliers section.
    /// Order: the measure desc, then type asc, then encoding asc.
    pub by_type_encoding: Vec<TypeEncodingRow>,
    /// Per db number. Order: db asc.
    pub by_db: Vec<DbRow>,
    /// Per instance. Order: instance name asc (bytewise).
    pub by_instance: Vec<InstanceRow>,
    pub prefix_tree: PrefixTree,
    /// The `params.top` keys with the largest measure (`memory.measure`: `mem_size`, a NULL
    /// counted as 0, or `rdb_size`). Order: the measure desc, then key asc ([`KeyText`] order), then instance
    /// asc, then db asc.
    pub top_keys_by_size: Vec<KeyRow>,
    /// The `params.top` keys with the most members. Order: `member_count` desc, then key ([`KeyText`] order)
    /// asc, then instance asc, then db asc.
    pub top_keys_by_members: Vec<KeyRow>,
    pub expiry: Expiry,
    pub cold: Cold,
    pub outliers: Outliers,
    pub balance: Balance,
    /// What the batch's numbers suggest doing, decided from the sections above
    /// (`report::advice`). Order: the order of the [`Recommendation`] variants (one of each at
    /// most, `small-*` in the order hash, set, zset).
    pub recommendations: Vec<Recommendation>,
    /// What changed since `--baseline`; absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// The parameters the report was made with (so a reader of the JSON knows what the lists mean).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// `--top`: length of the top-key lists, of `expiry.no_ttl_prefixes` and the cap of
    /// `outliers.big_keys`.
    pub top: u64,
    /// `--prefix-threshold` as a normalized decimal (`"1"`, `"0.5"`): percent of the total of
    /// the measure (`totals.mem_size` or `totals.rdb_size`, see [`Memory::measure`]).
    pub prefix_threshold_pct: String,
    /// `max(1, floor(total × pct / 100))` of the measure's total, computed exactly (integer
    /// arithmetic on the decimal, never through floating point). 0 when the batch holds no bytes.
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

/// Exact count of keys and sums of `rdb_size`, `mem_size` and `member_count` over a set of keys.
///
/// The adds wrap instead of panicking: every `Agg` sums a subset of the batch's keys, and both
/// readers first check that the batch's totals fit a u64 (a batch whose totals do not is
/// impossible input, reported as [`super::ReportError::Overflow`]), so no sum ever wraps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agg {
    pub keys: u64,
    pub rdb_size: u64,
    /// Sum of `mem_size`, a NULL counted as 0: see `mem_missing`.
    pub mem_size: u64,
    /// Of `keys`, those without a `mem_size` (module values; every key of a batch stored
    /// before the column existed). Left out of the JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mem_missing: u64,
    pub member_count: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What the tree, the rankings and the big-key rule measure a key by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// `mem_size`: the RAM the key takes once a server loaded the RDB (a NULL counts as 0).
    #[default]
    Mem,
    /// `rdb_size`: the key's serialized size in the RDB file.
    Rdb,
}

impl Measure {
    /// `mem` / `rdb` (the `--measure` values, and [`Memory::measure`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Mem => "mem",
            Measure::Rdb => "rdb",
        }
    }

    /// A key's value of the measure.
    #[inline]
    pub fn of(self, rdb_size: u64, mem_size: Option<u64>) -> u64 {
        match self {
            Measure::Mem => mem_size.unwrap_or(0),
            Measure::Rdb => rdb_size,
        }
    }
}

impl std::str::FromStr for Measure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mem" => Ok(Measure::Mem),
            "rdb" => Ok(Measure::Rdb),
            _ => Err(format!("'{s}' is not a measure: expected mem or rdb")),
        }
    }
}

impl Agg {
    /// Count one key.
    #[inline]
    pub fn add(&mut self, rdb_size: u64, mem_size: Option<u64>, member_count: u64) {
        self.keys = self.keys.wrapping_add(1);
        self.rdb_size = self.rdb_size.wrapping_add(rdb_size);
        match mem_size {
            Some(m) => self.mem_size = self.mem_size.wrapping_add(m),
            None => self.mem_missing = self.mem_missing.wrapping_add(1),
        }
        self.member_count = self.member_count.wrapping_add(member_count);
    }

    /// Add another aggregate.
    #[inline]
    pub fn merge(&mut self, other: &Agg) {
        self.keys = self.keys.wrapping_add(other.keys);
        self.rdb_size = self.rdb_size.wrapping_add(other.rdb_size);
        self.mem_size = self.mem_size.wrapping_add(other.mem_size);
        self.mem_missing = self.mem_missing.wrapping_add(other.mem_missing);
        self.member_count = self.member_count.wrapping_add(other.member_count);
    }

    /// The sum of the measure.
    #[inline]
    pub fn measured(&self, m: Measure) -> u64 {
        match m {
            Measure::Mem => self.mem_size,
            Measure::Rdb => self.rdb_size,
        }
    }
}

/// The memory view of the report: which measure ranks, which model each instance's `mem_size`
/// comes from, and how the sums compare with what the servers said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// `--measure` as asked (`mem` or `rdb`).
    pub requested: String,
    /// The measure the prefix tree, every ranking, the big-key rule and the balance's top slots
    /// use: `requested`, except `rdb` for a batch where no key has a `mem_size` (stored before
    /// the column existed), see `note`.
    pub measure: String,
    /// Why `measure` is not `requested`, in words.
    pub note: Option<String>,
    /// Keys without a `mem_size` (counted as 0 in every `mem_size` sum).
    pub keys_without_mem_size: u64,
    /// Per instance holding keys, name asc.
    pub instances: Vec<InstanceMemory>,
}

/// One instance's memory model and reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceMemory {
    pub instance: String,
    /// Whether the store holds the instance's summary at all (older batches, or ClickHouse
    /// without `import_instance_summaries`, do not: every field below is then unknown).
    pub summary: bool,
    /// The memory model `mem_size` was computed with (`None`: none applied, or unknown).
    pub model: Option<String>,
    /// The model is the nearest one for a server it was not validated on.
    pub approximate: bool,
    /// What the RDB said wrote it (`redis 7.2.4`).
    pub rdb_server: Option<String>,
    /// Σ `mem_size` of the instance's keys.
    pub mem_size: u64,
    /// Of its keys, those without a `mem_size`.
    pub keys_without_mem_size: u64,
    /// The keyspace dicts' bucket arrays, in no key's `mem_size`.
    pub keyspace_tables: Option<u64>,
    /// `mem_size` + `keyspace_tables` (when known): what the keys and the keyspace take.
    pub keys_and_tables: Option<u64>,
    /// The RDB's `used-mem` aux field: the server's whole `used_memory` when it saved (its
    /// allocator's fragmentation excluded, but clients, buffers and the like included).
    pub used_mem: Option<u64>,
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
///
/// A key longer than [`KEY_SHOWN_BYTES`] (only keys: prefixes are never longer) is shown by its
/// first [`KEY_SHOWN_BYTES`] bytes (`text` and `base64` are those bytes', and a multi-byte
/// character cut at the end shows as `\xNN`), with `len` (its length in bytes) and `sha256`
/// (the SHA-256 of all its bytes, 64 lowercase hex digits), both absent for every other key.
/// Lists order such keys by (first [`KEY_SHOWN_BYTES`] bytes, `len`, `sha256`), which is byte
/// order except between two keys sharing their first [`KEY_SHOWN_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyText {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
}

/// Bytes per type, in the fixed order of the fields.
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

/// The prefix tree: the key prefixes that hold at least the threshold of the measure.
///
/// With `T = params.prefix_threshold_bytes`, a byte string P is a node when the keys starting
/// with P hold at least T bytes of the measure (`memory.measure`) and P is the longest common prefix of exactly
/// those keys (a branching point of the key trie, or a whole key). The parent of a node is the
/// longest other node that is a prefix of it (on raw bytes). The root is the longest common
/// prefix of all keys (often empty), so there is exactly one root when the batch holds any
/// bytes, and none otherwise.
///
/// Keys are counted by their first [`KEY_SHOWN_BYTES`] bytes: a longer key counts as if it
/// were those bytes (except that it does not make `is_key` true), so no node's prefix is longer
/// than [`KEY_SHOWN_BYTES`], and a node of exactly that length holds every key starting with it.
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
    /// Whether some key equals the prefix exactly (a key longer than [`KEY_SHOWN_BYTES`]
    /// never does).
    pub is_key: bool,
    /// Keys starting with the prefix.
    #[serde(flatten)]
    pub agg: Agg,
    /// Of those, the keys without an expiry.
    pub no_ttl: Agg,
    /// Of those, `rdb_size` per type.
    pub rdb_size_by_type: TypeBytes,
    /// Of those, `mem_size` per type.
    pub mem_size_by_type: TypeBytes,
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
    /// `None`: no memory model applies (module values) or the batch predates the column.
    pub mem_size: Option<u64>,
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

/// Expiry relative to the batch timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// Always these seven buckets, in this order, with these ids: `no_ttl`, `expired`
    /// (`ttl_ms <= 0`), `lt_1h` (`0 < ttl_ms < 3,600,000`), `1h_24h`, `1d_7d`, `7d_30d`
    /// (each `[lower, upper)`), `gt_30d` (`ttl_ms >= 30 days`), with `ttl_ms` as in
    /// [`KeyRow::ttl_ms`].
    pub buckets: Vec<BucketRow>,
    /// The prefix-tree nodes holding the most bytes without expiry: the measure of their no-TTL
    /// keys desc, then prefix bytes asc; at most `params.top`, nodes with no such bytes left out.
    pub no_ttl_prefixes: Vec<NoTtlPrefix>,
}

impl Expiry {
    /// The sums of the bucket `id` (zero when absent).
    pub fn bucket(&self, id: &str) -> Agg {
        self.buckets
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.agg)
            .unwrap_or_default()
    }
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

/// Access recency (LRU idle time) and frequency (LFU counter).
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

/// Outliers: big keys. The encoding mix per type is
/// [`ReportData::by_type_encoding`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outliers {
    /// Big keys: strings whose measure is `> big_string_bytes`; other types with the measure
    /// `> big_other_bytes` or `member_count > big_members`. Order as
    /// [`ReportData::top_keys_by_size`]; at most `params.top`.
    pub big_keys: Vec<KeyRow>,
    /// How many keys are big in all (listed or not).
    pub big_keys_total: u64,
    /// Sums over all big keys.
    pub big_keys_agg: Agg,
}

/// Balance across instances and slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    /// Largest per-instance key count and byte sum (0 for an empty batch).
    pub keys_max: u64,
    pub rdb_size_max: u64,
    pub mem_size_max: u64,
    /// Means over the instances of `totals.instances` (`total as f64 / instances as f64`; 0.0
    /// for an empty batch).
    pub keys_mean: f64,
    pub rdb_size_mean: f64,
    pub mem_size_mean: f64,
    /// The [`TOP_SLOTS`] slots with most bytes: the measure desc, then kind asc, then slot asc.
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

/// Signed differences `current − baseline` of an [`Agg`]'s sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    pub keys: i128,
    pub rdb_size: i128,
    pub mem_size: i128,
    pub member_count: i128,
}

impl Delta {
    /// `current − baseline`, field by field.
    pub fn between(current: &Agg, baseline: &Agg) -> Self {
        let d = |a: u64, b: u64| i128::from(a) - i128::from(b);
        Delta {
            keys: d(current.keys, baseline.keys),
            rdb_size: d(current.rdb_size, baseline.rdb_size),
            mem_size: d(current.mem_size, baseline.mem_size),
            member_count: d(current.member_count, baseline.member_count),
        }
    }

    /// The delta of the measure.
    pub fn measured(&self, m: Measure) -> i128 {
        match m {
            Measure::Mem => self.mem_size,
            Measure::Rdb => self.rdb_size,
        }
    }
}

/// One group (the whole batch, a type, a db, an instance) in both batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// The group: `""` for the totals, a type name, a db number in decimal, an instance name.
    pub name: String,
    pub current: Agg,
    pub baseline: Agg,
    pub delta: Delta,
}

/// "Changes since the baseline" (`--baseline`, issue 18).
///
/// Identity: a key is `(db, key bytes)`; its numbers in a batch are the sums over every
/// instance holding it there (so a key that moved between instances is one key, unchanged
/// when its sizes are). Every ranking below uses `measure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The baseline batch, RFC 3339 as [`ReportData::batch`].
    pub baseline: String,
    /// `mem` when both batches are measured by `mem_size` (see [`Memory::measure`]), else
    /// `rdb` for both.
    pub measure: String,
    /// Why `measure` is not the report's, in words.
    pub note: Option<String>,
    /// The baseline's prefix threshold in bytes of `measure` (its own total × the same
    /// `--prefix-threshold`).
    pub baseline_prefix_threshold_bytes: u64,
    /// The current batch's prefix threshold in bytes of `measure`.
    pub current_prefix_threshold_bytes: u64,
    /// The whole batch (`name` is empty). Keys count records, as [`Totals`].
    pub totals: ChangeRow,
    /// Keys without an expiry (the `no_ttl` bucket of [`Expiry::buckets`]).
    pub no_ttl: ChangeRow,
    /// Keys already expired at their batch's time but stored (the `expired` bucket).
    pub expired: ChangeRow,
    /// Per type present in either batch. Order: type name asc.
    pub by_type: Vec<ChangeRow>,
    /// Per db present in either batch. Order: db asc (`name` is the number in decimal).
    pub by_db: Vec<ChangeRow>,
    /// Per instance present in either batch. Order: name asc (bytewise).
    pub by_instance: Vec<ChangeRow>,
    /// `(db, key)`s present in both batches whose type differs (a key on several instances
    /// has, per batch, the smallest of their type names).
    pub keys_type_changed: u64,
    /// The union of both batches' prefix-tree nodes (each tree built as the report builds
    /// it, with `measure` and each batch's own threshold). Order: prefix bytes asc.
    pub prefixes: Vec<PrefixChange>,
    /// Indexes into `prefixes`: those whose measure grew. Order: delta of the measure desc,
    /// then index asc. At most `params.top`.
    pub growth: Vec<u32>,
    /// Indexes into `prefixes`: those holding at least `baseline_prefix_threshold_bytes`
    /// (and more than 0) of the measure in the baseline that grew, by `current / baseline`
    /// desc (compared exactly: `c1 × b2` vs `c2 × b1`), then index asc. At most `params.top`.
    pub relative_growth: Vec<u32>,
    /// Indexes into `prefixes`: no keys in the baseline. Order: current measure desc, then
    /// index asc. At most `params.top`.
    pub appeared: Vec<u32>,
    /// Indexes into `prefixes`: no keys now. Order: baseline measure desc, then index asc.
    /// At most `params.top`.
    pub vanished: Vec<u32>,
    /// Indexes into `prefixes`: those whose measure shrank. Order: delta asc (most negative
    /// first), then index asc. At most `params.top`.
    pub shrink: Vec<u32>,
    /// `(db, key)`s whose measure grew (new keys included). Order: delta desc, then key ([`KeyText`] order)
    /// asc, then db asc. At most `params.top`.
    pub top_key_growth: Vec<KeyChange>,
    /// `(db, key)`s absent from the baseline. Order: current measure desc, then key asc ([`KeyText`] order),
    /// then db asc. At most `params.top`.
    pub top_new_keys: Vec<KeyChange>,
}

/// One prefix in both batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixChange {
    pub prefix: KeyText,
    pub prefix_len: u64,
    /// A node of the current batch's tree.
    pub in_current: bool,
    /// A node of the baseline's tree.
    pub in_baseline: bool,
    /// Keys starting with the prefix, in each batch.
    pub current: Agg,
    pub baseline: Agg,
    pub delta: Delta,
}

/// One `(db, key)` in both batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChange {
    pub key: KeyText,
    pub db: u64,
    /// The type now (see [`Changes::keys_type_changed`]).
    #[serde(rename = "type")]
    pub r#type: String,
    /// The type in the baseline; `None` when the key is new.
    pub baseline_type: Option<String>,
    /// Both batches hold it, with different types.
    pub type_changed: bool,
    /// The measure, summed over the instances holding the key, in each batch.
    pub current: u64,
    pub baseline: u64,
    pub delta: i128,
}

/// A `small-*` recommendation's collections can use the compact encoding when their average
/// member count is at most this (Redis' default `*-max-listpack-entries`).
pub const SMALL_MEMBERS_AVG: u64 = 128;
/// `no-ttl`: at least this percent of the measure has no expiry.
pub const NO_TTL_PCT: u64 = 50;
/// `imbalance`: the biggest instance holds at least `NUM / DEN` times the mean (1.5).
pub const IMBALANCE_NUM: u64 = 3;
pub const IMBALANCE_DEN: u64 = 2;
/// `cold`: keys idle this long (seconds, 30 days: a bound of [`IDLE_BOUNDS`]) are cold...
pub const COLD_IDLE_SECONDS: u64 = 2_592_000;
/// ...and at least this percent of the measure of the keys with an idle time is cold.
pub const COLD_PCT: u64 = 10;

/// One recommendation: a condition the batch's numbers show, with the numbers that show it.
/// "Bytes" are the measure ([`Memory::measure`]). Each is decided exactly, on integers.
/// In JSON an object with `kind` (the variant's name in kebab case: `big-strings`,
/// `huge-collections`, `small-hash`, `small-set`, `small-zset`, `no-ttl`, `expired`,
/// `many-dbs`, `imbalance`, `shared-slots`, `cold`) beside its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Recommendation {
    /// Some listed big key ([`Outliers::big_keys`]) is a string.
    BigStrings {
        /// Listed big strings.
        keys: u64,
        /// Some big keys are not listed (`big_keys_total` > listed): there may be more.
        at_least: bool,
        /// The first listed big string (the largest listed).
        largest: KeyText,
        largest_instance: String,
        largest_bytes: u64,
    },
    /// Some listed big key is not a string.
    HugeCollections {
        /// Listed big keys that are not strings.
        keys: u64,
        at_least: bool,
        /// The first of them.
        largest: KeyText,
        largest_type: String,
        largest_members: u64,
    },
    /// Hashes in the `raw` (hash-table) encoding, few members on average.
    SmallHash(SmallCollections),
    /// Sets in the `raw` (hash-table) encoding, few members on average.
    SmallSet(SmallCollections),
    /// Sorted sets in the `skip_list` encoding, few members on average.
    SmallZset(SmallCollections),
    /// At least [`NO_TTL_PCT`] % of the measure (more than 0) has no expiry.
    NoTtl {
        /// The `no_ttl` expiry bucket.
        keys: u64,
        bytes: u64,
        /// The batch's total of the measure.
        total_bytes: u64,
        /// The first of [`Expiry::no_ttl_prefixes`] whose prefix is not empty, if any.
        prefix: Option<KeyText>,
        /// Its bytes without expiry (0 without a prefix).
        prefix_bytes: u64,
    },
    /// Keys already expired at batch time (the `expired` bucket, more than 0 keys).
    Expired { keys: u64, bytes: u64 },
    /// Keys in more than one db: the db numbers, asc.
    ManyDbs { dbs: Vec<u64> },
    /// More than one instance, and the biggest holds at least 1.5 × the mean of the measure
    /// (`bytes × instances × IMBALANCE_DEN >= total_bytes × IMBALANCE_NUM`, total > 0).
    Imbalance {
        /// The biggest instance (the first by name among equals).
        instance: String,
        bytes: u64,
        total_bytes: u64,
        instances: u64,
    },
    /// Slots found on more than one instance ([`Balance::shared_slots`], not empty).
    SharedSlots { slots: u64 },
    /// Of the measure of the keys with an idle time (more than 0), at least [`COLD_PCT`] % is
    /// idle [`COLD_IDLE_SECONDS`] or more (and such keys exist).
    Cold {
        keys: u64,
        bytes: u64,
        /// The measure of all keys with an idle time.
        with_idle_bytes: u64,
    },
}

/// A `small-*` recommendation: the (type, encoding) group of [`ReportData::by_type_encoding`]
/// without its listed big keys, when their members average at most [`SMALL_MEMBERS_AVG`]
/// (`member_count <= SMALL_MEMBERS_AVG × keys`, keys > 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmallCollections {
    pub encoding: String,
    pub keys: u64,
    pub bytes: u64,
    pub member_count: u64,
    /// Listed big keys of the group, left out of the numbers above.
    pub big_keys_left_out: u64,
}
