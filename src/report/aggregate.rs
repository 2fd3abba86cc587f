//! The report's aggregates in mergeable form ([`Aggregates`]), the rules that put a key in a
//! bucket, and the single-pass accumulator the Parquet reader feeds row by row
//! ([`RowAccumulator`]).
//!
//! Both readers produce an [`Aggregates`]: the Parquet reader through [`RowAccumulator`], the
//! ClickHouse reader from `GROUP BY` results whose SQL mirrors the functions here
//! ([`expiry_bucket`], [`hist_bucket`], [`report_expire_ms`], the big-key rule, the top-key
//! order). Everything after that (sums, orders, top slots) is one shared piece of code
//! (`report::assemble`), so the two stores can only disagree where these rules are restated
//! in SQL, and the tests compare the two on crafted edge cases.
//!
//! Memory: per (instance, db, type, encoding) group and per (slot, instance) pair one [`Agg`];
//! fixed bucket arrays; three bounded top-N heaps of sort forms (`keytext::sort_form`: at most
//! 4 KiB and 40 bytes per key, however long the key). Nothing grows with the number of keys
//! or their length.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use crate::record::{BatchTs, InstanceSummary, RecordType, expire};
use crate::slot::SlotKind;

use super::model::{
    Agg, BIG_MEMBERS, BIG_OTHER_BYTES, BIG_STRING_BYTES, FREQ_BOUNDS, IDLE_BOUNDS, Measure,
};

/// Ids of the expiry buckets, in report order (see `model::Expiry::buckets`).
pub const EXPIRY_BUCKETS: [&str; 7] = [
    "no_ttl", "expired", "lt_1h", "1h_24h", "1d_7d", "7d_30d", "gt_30d",
];
/// Lower bounds (inclusive, ms of TTL) of buckets 3.. of [`EXPIRY_BUCKETS`]: 1 h, 1 d, 7 d, 30 d.
pub const EXPIRY_BOUNDS_MS: [i64; 4] = [3_600_000, 86_400_000, 604_800_000, 2_592_000_000];
/// Buckets of the `idle_seconds` histogram.
pub const IDLE_BUCKETS: usize = IDLE_BOUNDS.len() + 1;
/// Buckets of the `freq` histogram.
pub const FREQ_BUCKETS: usize = FREQ_BOUNDS.len() + 1;

/// The expiry the report uses: the record's rule (`record::expire::expire_at_ms`) applied to
/// what a store holds. Batches written before that rule held for every store may have an
/// absurd value (ClickHouse kept it); such a key counts as having no expiry, in both readers,
/// so the two stores agree.
#[inline]
pub fn report_expire_ms(ms: Option<i64>) -> Option<i64> {
    ms.and_then(expire::expire_at_ms)
}

/// Index in [`EXPIRY_BUCKETS`] of a key with (report) expiry `expire_ms`.
#[inline]
pub fn expiry_bucket(expire_ms: Option<i64>, batch_ms: i64) -> usize {
    match expire_ms {
        None => 0,
        Some(ms) => {
            // |ms| <= i64::MAX / 1000 and batch_ms fits a timestamp: no overflow.
            let ttl = ms - batch_ms;
            if ttl <= 0 {
                1
            } else {
                2 + EXPIRY_BOUNDS_MS.partition_point(|&b| b <= ttl)
            }
        }
    }
}

/// Bucket of `v` in a histogram with these exclusive upper bounds: the number of bounds `<= v`.
#[inline]
pub fn hist_bucket(bounds: &[u64], v: u64) -> usize {
    bounds.partition_point(|&b| b <= v)
}

/// Whether a key is "big" (a string by bytes, a collection by members or bytes); `size` is
/// the key's measure.
#[inline]
pub fn is_big(rtype: RecordType, size: u64, member_count: u64) -> bool {
    match rtype {
        RecordType::String => size > BIG_STRING_BYTES,
        _ => size > BIG_OTHER_BYTES || member_count > BIG_MEMBERS,
    }
}

/// The measure a report uses: the requested one, except `rdb_size` when no key of a non-empty
/// batch has a `mem_size` (a batch stored before the column: ranking by zeros would say
/// nothing).
pub fn effective_measure(requested: Measure, total: &Agg) -> Measure {
    if requested == Measure::Mem && total.keys > 0 && total.mem_missing == total.keys {
        Measure::Rdb
    } else {
        requested
    }
}

/// A batch whose totals do not fit a u64: impossible input (a key holds at most 512 MB of
/// name and a server at most a few TB), so a crafted or corrupt store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the batch's total {what} ({total}) exceeds 2^64 - 1: the stored data is corrupt or crafted \
     (no real batch holds that much)"
)]
pub struct Overflow {
    pub what: &'static str,
    pub total: u128,
}

/// Exact batch totals, kept wider than the report's u64 sums to tell that none of them wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct WideTotals {
    pub keys: u128,
    pub rdb_size: u128,
    pub mem_size: u128,
    pub member_count: u128,
}

impl WideTotals {
    #[inline]
    pub fn add(&mut self, keys: u64, rdb_size: u64, mem_size: u64, member_count: u64) {
        // At most 2^64 additions of values below 2^64 each (rows are counted in a u64, group
        // sums are themselves below 2^64): no u128 overflow.
        self.keys += u128::from(keys);
        self.rdb_size += u128::from(rdb_size);
        self.mem_size += u128::from(mem_size);
        self.member_count += u128::from(member_count);
    }

    /// An error when a total does not fit a u64 (then some `Agg` sum would have wrapped).
    pub fn check(&self) -> Result<(), Overflow> {
        for (what, total) in [
            ("key count", self.keys),
            ("rdb_size", self.rdb_size),
            ("mem_size", self.mem_size),
            ("member_count", self.member_count),
        ] {
            if total > u128::from(u64::MAX) {
                return Err(Overflow { what, total });
            }
        }
        Ok(())
    }
}

/// Every [`RecordType`], in the order of `model::TypeBytes`' fields (which is
/// [`RecordType::ALL`]'s; the spill format stores indexes into it).
pub const TYPES: [RecordType; 7] = RecordType::ALL;

/// Index of `t` in [`TYPES`].
#[inline]
pub fn type_index(t: RecordType) -> usize {
    match t {
        RecordType::String => 0,
        RecordType::List => 1,
        RecordType::Set => 2,
        RecordType::ZSet => 3,
        RecordType::Hash => 4,
        RecordType::Stream => 5,
        RecordType::Module => 6,
    }
}

/// Encoding ids counted in the accumulator's dense tables (there are 18 encodings today).
const DENSE_ENCODINGS: usize = 32;

/// One key with the facts a [`super::model::KeyRow`] shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCandidate {
    /// The key's sort form (`keytext::sort_form`): at most `keytext::LONG_FORM_BYTES` bytes
    /// however long the key.
    pub key: Vec<u8>,
    pub instance: Arc<str>,
    pub db: u64,
    pub rtype: RecordType,
    pub encoding: Arc<str>,
    pub rdb_size: u64,
    pub mem_size: Option<u64>,
    pub member_count: u64,
    /// The report expiry ([`report_expire_ms`]).
    pub expire_ms: Option<i64>,
    pub idle_seconds: Option<u64>,
    pub freq: Option<u8>,
}

impl KeyCandidate {
    /// The key's value of the measure.
    #[inline]
    pub fn measured(&self, m: Measure) -> u64 {
        m.of(self.rdb_size, self.mem_size)
    }
}

/// The report order of a top list: metric desc, then key asc (byte order on sort forms, see
/// `keytext::sort_form`), instance asc, db asc. `Less` means "ranks first".
#[inline]
pub fn rank_cmp(a: (u64, &[u8], &str, u64), b: (u64, &[u8], &str, u64)) -> Ordering {
    b.0.cmp(&a.0)
        .then_with(|| a.1.cmp(b.1))
        .then_with(|| a.2.cmp(b.2))
        .then_with(|| a.3.cmp(&b.3))
}

/// A candidate in a heap whose top is the one that ranks last.
#[derive(Debug)]
struct Ranked {
    metric: u64,
    c: KeyCandidate,
}

impl Ranked {
    fn tuple(&self) -> (u64, &[u8], &str, u64) {
        (self.metric, &self.c.key, &self.c.instance, self.c.db)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        rank_cmp(self.tuple(), other.tuple())
    }
}

/// The `n` keys that rank first (bounded heap) by the metric each is offered with
/// (`rdb_size` or `member_count`: one list, one metric).
#[derive(Debug)]
pub struct TopKeys {
    n: usize,
    heap: BinaryHeap<Ranked>,
}

impl TopKeys {
    pub fn new(n: usize) -> Self {
        TopKeys {
            n,
            heap: BinaryHeap::with_capacity(n.min(1 << 16) + 1),
        }
    }

    /// Whether a key with these ranking fields would enter the list (cheap: no allocation).
    #[inline]
    pub fn admits(&self, metric: u64, key: &[u8], instance: &str, db: u64) -> bool {
        if self.n == 0 {
            return false;
        }
        if self.heap.len() < self.n {
            return true;
        }
        let worst = self.heap.peek().expect("full heap");
        if metric != worst.metric {
            return metric > worst.metric;
        }
        rank_cmp((metric, key, instance, db), worst.tuple()) == Ordering::Less
    }

    /// Offer a key; `make` builds it only if it enters the list.
    #[inline]
    pub fn offer(
        &mut self,
        metric: u64,
        key: &[u8],
        instance: &str,
        db: u64,
        make: impl FnOnce() -> KeyCandidate,
    ) {
        if !self.admits(metric, key, instance, db) {
            return;
        }
        if self.heap.len() >= self.n {
            self.heap.pop();
        }
        self.heap.push(Ranked { metric, c: make() });
    }

    /// The list, first-ranked first.
    pub fn into_sorted(self) -> Vec<KeyCandidate> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.c)
            .collect()
    }
}

/// A (instance, db, type, encoding) group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub instance: String,
    pub db: u64,
    pub rtype: String,
    pub encoding: String,
}

/// Everything the report shows except the prefix tree, as partial sums a reader fills.
#[derive(Debug)]
pub struct Aggregates {
    /// The measure the top lists and big keys below were chosen by ([`effective_measure`]).
    pub measure: Measure,
    /// The instance summaries the store holds, by instance name.
    pub summaries: BTreeMap<String, InstanceSummary>,
    /// Per (instance, db, type, encoding): breakdowns and totals are sums of these.
    pub groups: BTreeMap<GroupKey, Agg>,
    /// Per [`EXPIRY_BUCKETS`] entry.
    pub expiry: [Agg; 7],
    /// Per `idle_seconds` bucket (keys carrying the field).
    pub idle: [Agg; IDLE_BUCKETS],
    /// Per `freq` bucket (keys carrying the field).
    pub freq: [Agg; FREQ_BUCKETS],
    /// Per (kind, slot, instance).
    pub slots: BTreeMap<(SlotKind, u16, String), Agg>,
    /// Candidates for the top lists and the big keys (by `measure`), in any order (at least
    /// the first `top` by each list's order, or all of them).
    pub top_by_size: Vec<KeyCandidate>,
    pub top_by_members: Vec<KeyCandidate>,
    pub big_keys: Vec<KeyCandidate>,
    /// All big keys: how many, and their sums.
    pub big_agg: Agg,
}

impl Default for Aggregates {
    fn default() -> Self {
        Aggregates {
            measure: Measure::default(),
            summaries: BTreeMap::new(),
            groups: BTreeMap::new(),
            expiry: [Agg::default(); 7],
            idle: [Agg::default(); IDLE_BUCKETS],
            freq: [Agg::default(); FREQ_BUCKETS],
            slots: BTreeMap::new(),
            top_by_size: Vec::new(),
            top_by_members: Vec::new(),
            big_keys: Vec::new(),
            big_agg: Agg::default(),
        }
    }
}

/// One stored row as the Parquet reader hands it over, with the strings interned
/// ([`RowAccumulator::instance_id`], [`RowAccumulator::encoding_id`]).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub instance: u32,
    pub db: u64,
    /// The key's sort form (`keytext::sort_form`).
    pub key: &'a [u8],
    pub rtype: RecordType,
    pub encoding: u32,
    pub member_count: u64,
    pub rdb_size: u64,
    pub mem_size: Option<u64>,
    /// The report expiry ([`report_expire_ms`]).
    pub expire_ms: Option<i64>,
    pub idle_seconds: Option<u64>,
    pub freq: Option<u8>,
    pub codis_slot: Option<u16>,
    pub redis_slot: Option<u16>,
}

/// Per-slot sums, per instance id; indexed by slot number, allocated on first use.
type SlotTable = Vec<Vec<(u32, Agg)>>;

/// The single-pass accumulator behind the Parquet reader: every row goes through
/// [`RowAccumulator::add`].
#[derive(Debug)]
pub struct RowAccumulator {
    batch_ms: i64,
    instances: Vec<Arc<str>>,
    instance_ids: HashMap<Arc<str>, u32>,
    encodings: Vec<Arc<str>>,
    encoding_ids: HashMap<Arc<str>, u32>,
    /// Per (instance, db): a dense table by (type, encoding id) while the encoding id is below
    /// [`DENSE_ENCODINGS`]; the last (instance, db) looked up is cached (rows of one db come
    /// together in an RDB file).
    tables: Vec<((u32, u64), Vec<Agg>)>,
    table_ids: HashMap<(u32, u64), usize>,
    last_table: Option<((u32, u64), usize)>,
    /// Groups of encoding ids beyond the dense tables (only with unusual data).
    sparse_groups: HashMap<(u32, u64, RecordType, u32), Agg>,
    expiry: [Agg; 7],
    idle: [Agg; IDLE_BUCKETS],
    freq: [Agg; FREQ_BUCKETS],
    redis_slots: SlotTable,
    codis_slots: SlotTable,
    /// Per measure a top list, big keys and their sums: the requested measure first, and
    /// `rdb_size` too when `mem_size` is requested (whether the batch has any `mem_size` is
    /// known only at the end, see [`effective_measure`]).
    by_measure: Vec<MeasureLists>,
    top_by_members: TopKeys,
    wide: WideTotals,
    summaries: BTreeMap<String, InstanceSummary>,
    rows: u64,
}

/// The lists that depend on the measure.
#[derive(Debug)]
struct MeasureLists {
    measure: Measure,
    top_by_size: TopKeys,
    big_keys: TopKeys,
    big_agg: Agg,
}

impl RowAccumulator {
    /// `batch`: TTLs are measured from its millisecond (`BatchTs::millis`); `measure`: the
    /// requested one.
    pub fn new(batch: BatchTs, top: usize, measure: Measure) -> Self {
        let measures: &[Measure] = match measure {
            Measure::Mem => &[Measure::Mem, Measure::Rdb],
            Measure::Rdb => &[Measure::Rdb],
        };
        RowAccumulator {
            batch_ms: batch.millis(),
            instances: Vec::new(),
            instance_ids: HashMap::new(),
            encodings: Vec::new(),
            encoding_ids: HashMap::new(),
            tables: Vec::new(),
            table_ids: HashMap::new(),
            last_table: None,
            sparse_groups: HashMap::new(),
            expiry: [Agg::default(); 7],
            idle: [Agg::default(); IDLE_BUCKETS],
            freq: [Agg::default(); FREQ_BUCKETS],
            redis_slots: Vec::new(),
            codis_slots: Vec::new(),
            by_measure: measures
                .iter()
                .map(|&measure| MeasureLists {
                    measure,
                    top_by_size: TopKeys::new(top),
                    big_keys: TopKeys::new(top),
                    big_agg: Agg::default(),
                })
                .collect(),
            top_by_members: TopKeys::new(top),
            wide: WideTotals::default(),
            summaries: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The id of an instance name (stable for the accumulator's life).
    pub fn instance_id(&mut self, name: &str) -> u32 {
        intern(&mut self.instances, &mut self.instance_ids, name)
    }

    /// The summary an instance's file holds (the first one given for an instance is kept).
    pub fn add_summary(&mut self, instance: &str, summary: InstanceSummary) {
        self.summaries
            .entry(instance.to_string())
            .or_insert(summary);
    }

    /// The id of an encoding name.
    pub fn encoding_id(&mut self, name: &str) -> u32 {
        intern(&mut self.encodings, &mut self.encoding_ids, name)
    }

    /// Count one row.
    #[inline]
    pub fn add(&mut self, r: &RowRef<'_>) {
        self.rows += 1;
        let (size, mem, members) = (r.rdb_size, r.mem_size, r.member_count);
        self.wide.add(1, size, mem.unwrap_or(0), members);
        self.group(r).add(size, mem, members);
        self.expiry[expiry_bucket(r.expire_ms, self.batch_ms)].add(size, mem, members);
        if let Some(v) = r.idle_seconds {
            self.idle[hist_bucket(&IDLE_BOUNDS, v)].add(size, mem, members);
        }
        if let Some(v) = r.freq {
            self.freq[hist_bucket(&FREQ_BOUNDS, u64::from(v))].add(size, mem, members);
        }
        if let Some(s) = r.redis_slot {
            slot_add(&mut self.redis_slots, s, r.instance, size, mem, members);
        }
        if let Some(s) = r.codis_slot {
            slot_add(&mut self.codis_slots, s, r.instance, size, mem, members);
        }
        let instance = &self.instances[r.instance as usize];
        let encoding = &self.encodings[r.encoding as usize];
        let make = || KeyCandidate {
            key: r.key.to_vec(),
            instance: Arc::clone(instance),
            db: r.db,
            rtype: r.rtype,
            encoding: Arc::clone(encoding),
            rdb_size: size,
            mem_size: mem,
            member_count: members,
            expire_ms: r.expire_ms,
            idle_seconds: r.idle_seconds,
            freq: r.freq,
        };
        for l in &mut self.by_measure {
            let m = l.measure.of(size, mem);
            l.top_by_size.offer(m, r.key, instance, r.db, make);
            if is_big(r.rtype, m, members) {
                l.big_agg.add(size, mem, members);
                l.big_keys.offer(m, r.key, instance, r.db, make);
            }
        }
        self.top_by_members
            .offer(members, r.key, instance, r.db, make);
    }

    #[inline]
    fn group(&mut self, r: &RowRef<'_>) -> &mut Agg {
        let enc = r.encoding as usize;
        if enc >= DENSE_ENCODINGS {
            return self
                .sparse_groups
                .entry((r.instance, r.db, r.rtype, r.encoding))
                .or_default();
        }
        let id = (r.instance, r.db);
        let table = match self.last_table {
            Some((last, t)) if last == id => t,
            _ => {
                let t = match self.table_ids.get(&id) {
                    Some(&t) => t,
                    None => {
                        self.tables
                            .push((id, vec![Agg::default(); TYPES.len() * DENSE_ENCODINGS]));
                        self.table_ids.insert(id, self.tables.len() - 1);
                        self.tables.len() - 1
                    }
                };
                self.last_table = Some((id, t));
                t
            }
        };
        &mut self.tables[table].1[type_index(r.rtype) * DENSE_ENCODINGS + enc]
    }

    /// The aggregates, with names in place of ids, for the measure [`effective_measure`] picks
    /// from `requested`; an error when the batch's totals do not fit a u64.
    pub fn into_aggregates(self) -> Result<Aggregates, Overflow> {
        self.wide.check()?;
        let name = |id: u32| self.instances[id as usize].to_string();
        let mut groups = BTreeMap::new();
        let mut add = |inst: u32, db: u64, rtype: RecordType, enc: usize, agg: &Agg| {
            let key = GroupKey {
                instance: name(inst),
                db,
                rtype: rtype.as_str().to_string(),
                encoding: self.encodings[enc].to_string(),
            };
            groups.insert(key, *agg);
        };
        for ((inst, db), table) in &self.tables {
            for (i, agg) in table.iter().enumerate().filter(|(_, a)| a.keys > 0) {
                let (t, enc) = (i / DENSE_ENCODINGS, i % DENSE_ENCODINGS);
                add(*inst, *db, TYPES[t], enc, agg);
            }
        }
        for ((inst, db, rtype, enc), agg) in &self.sparse_groups {
            add(*inst, *db, *rtype, *enc as usize, agg);
        }
        let mut slots = BTreeMap::new();
        for (kind, table) in [
            (SlotKind::Redis, &self.redis_slots),
            (SlotKind::Codis, &self.codis_slots),
        ] {
            for (slot, per_instance) in table.iter().enumerate() {
                for (inst, agg) in per_instance {
                    // slot < 65,536: the table is indexed by u16 values.
                    slots.insert((kind, slot as u16, name(*inst)), *agg);
                }
            }
        }
        let mut total = Agg::default();
        for agg in groups.values() {
            total.merge(agg);
        }
        let requested = self.by_measure[0].measure;
        let measure = effective_measure(requested, &total);
        let lists = self
            .by_measure
            .into_iter()
            .find(|l| l.measure == measure)
            .expect("the effective measure is the requested one or rdb, both kept");
        Ok(Aggregates {
            measure,
            summaries: self.summaries,
            groups,
            expiry: self.expiry,
            idle: self.idle,
            freq: self.freq,
            slots,
            top_by_size: lists.top_by_size.into_sorted(),
            top_by_members: self.top_by_members.into_sorted(),
            big_keys: lists.big_keys.into_sorted(),
            big_agg: lists.big_agg,
        })
    }
}

fn intern(names: &mut Vec<Arc<str>>, ids: &mut HashMap<Arc<str>, u32>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = names.len() as u32;
    let name: Arc<str> = Arc::from(name);
    names.push(Arc::clone(&name));
    ids.insert(name, id);
    id
}

#[inline]
fn slot_add(
    table: &mut SlotTable,
    slot: u16,
    instance: u32,
    size: u64,
    mem: Option<u64>,
    members: u64,
) {
    let i = usize::from(slot);
    if table.len() <= i {
        table.resize_with(i + 1, Vec::new);
    }
    let per_instance = &mut table[i];
    match per_instance.iter_mut().find(|(id, _)| *id == instance) {
        Some((_, agg)) => agg.add(size, mem, members),
        None => {
            let mut agg = Agg::default();
            agg.add(size, mem, members);
            per_instance.push((instance, agg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_buckets() {
        let b = 1_000_000;
        let at = |ttl: i64| expiry_bucket(Some(b + ttl), b);
        assert_eq!(expiry_bucket(None, b), 0);
        assert_eq!(at(-5), 1);
        assert_eq!(at(0), 1);
        assert_eq!(at(1), 2);
        assert_eq!(at(3_599_999), 2);
        assert_eq!(at(3_600_000), 3);
        assert_eq!(at(86_399_999), 3);
        assert_eq!(at(86_400_000), 4);
        assert_eq!(at(604_799_999), 4);
        assert_eq!(at(604_800_000), 5);
        assert_eq!(at(2_591_999_999), 5);
        assert_eq!(at(2_592_000_000), 6);
        assert_eq!(
            expiry_bucket(report_expire_ms(Some(i64::MAX)), b),
            0,
            "unstorable expiry = none"
        );
    }

    #[test]
    fn histogram_buckets() {
        assert_eq!(hist_bucket(&IDLE_BOUNDS, 0), 0);
        assert_eq!(hist_bucket(&IDLE_BOUNDS, 59), 0);
        assert_eq!(hist_bucket(&IDLE_BOUNDS, 60), 1);
        assert_eq!(hist_bucket(&IDLE_BOUNDS, 7_775_999), 7);
        assert_eq!(hist_bucket(&IDLE_BOUNDS, 7_776_000), 8);
        assert_eq!(hist_bucket(&IDLE_BOUNDS, u64::MAX), 8);
        assert_eq!(hist_bucket(&FREQ_BOUNDS, 0), 0);
        assert_eq!(hist_bucket(&FREQ_BOUNDS, 1), 1);
        assert_eq!(hist_bucket(&FREQ_BOUNDS, 3), 2);
        assert_eq!(hist_bucket(&FREQ_BOUNDS, 127), 7);
        assert_eq!(hist_bucket(&FREQ_BOUNDS, 255), 8);
    }

    #[test]
    fn big_keys() {
        assert!(!is_big(RecordType::String, BIG_STRING_BYTES, 1));
        assert!(is_big(RecordType::String, BIG_STRING_BYTES + 1, 1));
        assert!(!is_big(RecordType::Hash, BIG_STRING_BYTES + 1, BIG_MEMBERS));
        assert!(is_big(RecordType::Hash, 10, BIG_MEMBERS + 1));
        assert!(is_big(RecordType::List, BIG_OTHER_BYTES + 1, 0));
    }

    fn cand(key: &[u8], inst: &str, db: u64, size: u64) -> KeyCandidate {
        KeyCandidate {
            key: key.to_vec(),
            instance: inst.into(),
            db,
            rtype: RecordType::String,
            encoding: "raw".into(),
            rdb_size: size,
            mem_size: Some(size * 2),
            member_count: 1,
            expire_ms: None,
            idle_seconds: None,
            freq: None,
        }
    }

    #[test]
    fn top_keys_order_and_ties() {
        let all = vec![
            cand(b"b", "i1", 0, 10),
            cand(b"a", "i2", 0, 10),
            cand(b"a", "i1", 1, 10),
            cand(b"a", "i1", 0, 10),
            cand(b"z", "i1", 0, 30),
            cand(b"\xff", "i1", 0, 10),
            cand(b"c", "i1", 0, 5),
        ];
        let mut want = all.clone();
        want.sort_by(|a, b| {
            rank_cmp(
                (a.rdb_size, &a.key, &a.instance, a.db),
                (b.rdb_size, &b.key, &b.instance, b.db),
            )
        });
        assert_eq!(want[0].key, b"z");
        assert_eq!(
            (want[1].key.as_slice(), &*want[1].instance, want[1].db),
            (&b"a"[..], "i1", 0)
        );
        assert_eq!(
            (want[2].key.as_slice(), &*want[2].instance, want[2].db),
            (&b"a"[..], "i1", 1)
        );
        assert_eq!(&*want[3].instance, "i2");
        for n in 0..=all.len() + 1 {
            // Every arrival order gives the same list.
            for rot in 0..all.len() {
                let mut t = TopKeys::new(n);
                for c in all.iter().cycle().skip(rot).take(all.len()) {
                    t.offer(c.rdb_size, &c.key, &c.instance, c.db, || c.clone());
                }
                let got = t.into_sorted();
                assert_eq!(got, want[..n.min(all.len())].to_vec(), "n={n} rot={rot}");
            }
        }
    }
}
