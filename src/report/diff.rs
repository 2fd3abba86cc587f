//! `--baseline`: one pass over both batches' `(db, key)`s in key order ([`pair_spools`], a merge
//! of the two reports' own key streams kept in spools: the Parquet key sorts, the ClickHouse
//! key streams) into [`DiffBuilder`], which sums
//! the union of both prefix trees per batch and keeps the key rankings. `assemble::changes`
//! turns its [`DiffParts`] and the two reports into [`super::model::Changes`].

use crate::cancel::Cancel;
use std::cmp::Ordering;

use crate::record::RecordType;

use super::model::{Agg, Measure};
use super::prefix::KeyFacts;
use super::spill::{SpillError, SpoolReader};

/// One `(db, key)` in one batch: the sums over the instances holding it, and its type (the
/// smallest type name among them; `None`: absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Side {
    pub agg: Agg,
    pub rtype: Option<RecordType>,
}

impl Side {
    /// Count one record.
    pub fn add(&mut self, f: &KeyFacts) {
        self.agg.add(f.rdb_size, f.mem_size, f.member_count);
        self.rtype = Some(match self.rtype {
            Some(t) if t.as_str() <= f.rtype.as_str() => t,
            _ => f.rtype,
        });
    }
}

/// A ranked key candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCand {
    pub key: Vec<u8>,
    pub db: u64,
    pub current: Side,
    pub baseline: Side,
    /// The rank value: the delta (growth) or the current measure (new keys).
    pub rank: i128,
}

fn cand_cmp(a: &KeyCand, b: &KeyCand) -> Ordering {
    b.rank
        .cmp(&a.rank)
        .then_with(|| a.key.cmp(&b.key))
        .then_with(|| a.db.cmp(&b.db))
}

/// The best `n` candidates by [`cand_cmp`], kept in a buffer cut back to `n` when it reaches `2n`.
#[derive(Debug)]
struct Top {
    n: usize,
    v: Vec<KeyCand>,
    /// After a cut to `n`: the rank of the n-th; below it nothing enters.
    floor: Option<i128>,
}

impl Top {
    fn new(n: usize) -> Self {
        Top {
            n,
            v: Vec::new(),
            floor: None,
        }
    }
    fn offer(&mut self, make: impl FnOnce() -> KeyCand, rank: i128) {
        if self.n == 0 {
            return;
        }
        // Strictly below the worst of n kept ones: never in the top (ties may be).
        if self.floor.is_some_and(|w| rank < w) {
            return;
        }
        self.v.push(make());
        if self.v.len() >= 2 * self.n {
            self.cut();
        }
    }
    fn cut(&mut self) {
        self.v.sort_by(cand_cmp);
        self.v.truncate(self.n);
        if self.v.len() == self.n {
            self.floor = self.v.last().map(|c| c.rank);
        }
    }
    fn into_sorted(mut self) -> Vec<KeyCand> {
        self.cut();
        self.v
    }
}

/// What the pass over both batches found.
#[derive(Debug, PartialEq, Eq)]
pub struct DiffParts {
    /// Per union prefix (the order of [`DiffBuilder::new`]'s list): (current, baseline).
    pub prefix_sums: Vec<(Agg, Agg)>,
    pub top_growth: Vec<KeyCand>,
    pub top_new: Vec<KeyCand>,
    pub keys_type_changed: u64,
}

/// Consumes `(key, db, current, baseline)` in ascending key order (the dbs of one key in any
/// order, each once).
#[derive(Debug)]
pub struct DiffBuilder {
    prefixes: Vec<Vec<u8>>,
    sums: Vec<(Agg, Agg)>,
    /// Open prefixes (indexes), each a prefix of the last key, shortest first.
    stack: Vec<usize>,
    next: usize,
    measure: Measure,
    growth: Top,
    new: Top,
    type_changed: u64,
    pairs: u64,
}

impl DiffBuilder {
    /// `prefixes`: the union of both trees' prefixes, sorted ascending, without duplicates.
    pub fn new(prefixes: Vec<Vec<u8>>, measure: Measure, top: usize) -> Self {
        let n = prefixes.len();
        DiffBuilder {
            prefixes,
            sums: vec![(Agg::default(), Agg::default()); n],
            stack: Vec::new(),
            next: 0,
            measure,
            growth: Top::new(top),
            new: Top::new(top),
            type_changed: 0,
            pairs: 0,
        }
    }

    fn close_top(&mut self) {
        if let Some(i) = self.stack.pop() {
            let (c, b) = self.sums[i];
            if let Some(&parent) = self.stack.last() {
                self.sums[parent].0.merge(&c);
                self.sums[parent].1.merge(&b);
            }
        }
    }

    pub fn push(&mut self, key: &[u8], db: u64, cur: &Side, base: &Side) {
        self.pairs += 1;
        while let Some(&i) = self.stack.last() {
            if key.starts_with(&self.prefixes[i]) {
                break;
            }
            self.close_top();
        }
        while self.next < self.prefixes.len() && self.prefixes[self.next].as_slice() <= key {
            if key.starts_with(&self.prefixes[self.next]) {
                self.stack.push(self.next);
            }
            self.next += 1;
        }
        if let Some(&i) = self.stack.last() {
            self.sums[i].0.merge(&cur.agg);
            self.sums[i].1.merge(&base.agg);
        }
        if let (Some(a), Some(b)) = (cur.rtype, base.rtype)
            && a != b
        {
            self.type_changed += 1;
        }
        let m = self.measure;
        let now = cur.agg.measured(m);
        let delta = i128::from(now) - i128::from(base.agg.measured(m));
        let cand = || KeyCand {
            key: key.to_vec(),
            db,
            current: *cur,
            baseline: *base,
            rank: 0,
        };
        if delta > 0 {
            self.growth.offer(
                || KeyCand {
                    rank: delta,
                    ..cand()
                },
                delta,
            );
        }
        if base.rtype.is_none() && cur.rtype.is_some() {
            let rank = i128::from(now);
            self.new.offer(|| KeyCand { rank, ..cand() }, rank);
        }
    }

    pub fn finish(mut self) -> DiffParts {
        tracing::debug!("compared {} (db, key)s", self.pairs);
        while !self.stack.is_empty() {
            self.close_top();
        }
        DiffParts {
            prefix_sums: self.sums,
            top_growth: self.growth.into_sorted(),
            top_new: self.new.into_sorted(),
            keys_type_changed: self.type_changed,
        }
    }
}

/// Turns both batches' entries in key order (each with its db and side) into `(db, key)` pairs
/// for a [`DiffBuilder`].
#[derive(Debug)]
pub struct PairGrouper {
    key: Vec<u8>,
    /// (db, current, baseline) of `key`, in arrival order.
    dbs: Vec<(u64, Side, Side)>,
}

impl PairGrouper {
    pub fn new() -> Self {
        PairGrouper {
            key: Vec::new(),
            dbs: Vec::new(),
        }
    }

    /// One record of `key` in `db`, of the baseline batch or the current one.
    pub fn push(
        &mut self,
        b: &mut DiffBuilder,
        key: &[u8],
        facts: &KeyFacts,
        db: u64,
        baseline: bool,
    ) {
        if key != self.key.as_slice() {
            self.flush(b);
            self.key.clear();
            self.key.extend_from_slice(key);
        }
        let i = match self.dbs.iter().position(|e| e.0 == db) {
            Some(i) => i,
            None => {
                self.dbs.push((db, Side::default(), Side::default()));
                self.dbs.len() - 1
            }
        };
        let e = &mut self.dbs[i];
        if baseline {
            e.2.add(facts);
        } else {
            e.1.add(facts);
        }
    }

    pub fn flush(&mut self, b: &mut DiffBuilder) {
        self.dbs.sort_by_key(|e| e.0);
        for (db, c, s) in self.dbs.drain(..) {
            b.push(&self.key, db, &c, &s);
        }
    }
}

impl Default for PairGrouper {
    fn default() -> Self {
        Self::new()
    }
}

/// Entries between two checks of the cancel flag in [`pair_spools`].
const CANCEL_CHECK_EVERY: u64 = 1 << 14;

/// The pair pass: merge the two batches' key streams (each spooled in key order, tagged
/// with the record's db) into `builder`. Returns the entries read.
pub fn pair_spools(
    current: &mut SpoolReader,
    baseline: &mut SpoolReader,
    builder: &mut DiffBuilder,
    cancel: &Cancel,
) -> Result<u64, SpillError> {
    let mut grouper = PairGrouper::new();
    let mut has = [current.advance()?, baseline.advance()?];
    let mut n = 0u64;
    loop {
        let side = match has {
            [false, false] => break,
            [true, false] => 0,
            [false, true] => 1,
            [true, true] => usize::from(current.key() > baseline.key()),
        };
        let r = if side == 0 {
            &mut *current
        } else {
            &mut *baseline
        };
        let db = r
            .tag()
            .ok_or_else(|| r.corrupt("an entry without its db"))?;
        grouper.push(builder, r.key(), &r.facts(), db, side == 1);
        has[side] = r.advance()?;
        n += 1;
        if n.is_multiple_of(CANCEL_CHECK_EVERY) && cancel.is_cancelled() {
            return Err(SpillError::Interrupted);
        }
    }
    grouper.flush(builder);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::spill::{ExternalSorter, Spool};

    type Entry = (Vec<u8>, u64, KeyFacts);

    fn entries(n: usize, seed: u64) -> Vec<Entry> {
        let mut x = seed;
        let mut r = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|_| {
                // Few keys and dbs: the same (db, key) repeats (several instances), the same
                // key lives in several dbs, and most keys are in both batches.
                let len = (r() % 6) as usize;
                let key: Vec<u8> = (0..len)
                    .map(|_| [b'a', b'b', b':', 0xff][(r() % 4) as usize])
                    .collect();
                let facts = KeyFacts {
                    rdb_size: r() % 5000,
                    mem_size: (!r().is_multiple_of(4)).then(|| r() % 9000),
                    member_count: r() % 50,
                    rtype: RecordType::ALL[(r() % 3) as usize],
                    has_ttl: r().is_multiple_of(2),
                };
                (key, r() % 3, facts)
            })
            .collect()
    }

    /// One batch through a report's sort (spilling at small budgets) into a spool.
    fn spooled(batch: &[Entry], budget: u64, mem: usize, dir: &std::path::Path) -> SpoolReader {
        let mut sorter = ExternalSorter::new(budget, Some(dir.to_path_buf()), Cancel::default());
        for (k, db, f) in batch {
            sorter.push_tagged(k, *f, Some(*db)).unwrap();
        }
        let mut spool = Spool::new(Some(dir), 4 << 10, mem);
        sorter
            .finish_tagged(|k, f, t| {
                spool.push(k, f, t);
                Ok::<(), std::io::Error>(())
            })
            .unwrap();
        spool.into_reader().unwrap()
    }

    fn builder() -> DiffBuilder {
        let prefixes = [&b"a"[..], b"a:", b"ab", b"b", b"b:a", b"\xff"]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        DiffBuilder::new(prefixes, Measure::Mem, 5)
    }

    /// The merge of two spooled sorts equals grouping both batches by `(key, db)` by brute
    /// force, at every budget (in memory, spilled runs, intermediate merges), and the spools
    /// leave nothing behind.
    #[test]
    fn pair_spools_match_a_brute_force_grouping() {
        for (seed, n_cur, n_base) in [(1, 3000, 2500), (2, 0, 700), (3, 900, 0), (4, 0, 0)] {
            let cur = entries(n_cur, seed);
            let base = entries(n_base, seed + 100);
            let mut want: BTreeMap<(Vec<u8>, u64), (Side, Side)> = BTreeMap::new();
            for (side, batch) in [(0, &cur), (1, &base)] {
                for (k, db, f) in batch {
                    let e = want.entry((k.clone(), *db)).or_default();
                    if side == 0 { e.0.add(f) } else { e.1.add(f) }
                }
            }
            let mut reference = builder();
            for ((k, db), (c, b)) in &want {
                reference.push(k, *db, c, b);
            }
            let want = reference.finish();
            // Spools on disk from the start, moved there midway, and kept in memory.
            for (budget, mem) in [(1 << 10, 0), (1 << 14, 8 << 10), (1 << 30, 1 << 30)] {
                let tmp = tempfile::tempdir().unwrap();
                let mut c = spooled(&cur, budget, mem, tmp.path());
                let mut b = spooled(&base, budget, mem, tmp.path());
                let mut got = builder();
                let n = pair_spools(&mut c, &mut b, &mut got, &Cancel::default()).unwrap();
                assert_eq!(n, (n_cur + n_base) as u64);
                assert_eq!(
                    got.finish(),
                    want,
                    "seed {seed}, budget {budget}, mem {mem}"
                );
                drop((c, b));
                assert_eq!(
                    std::fs::read_dir(tmp.path()).unwrap().count(),
                    0,
                    "spools removed"
                );
            }
        }
    }

    #[test]
    fn pair_spools_stop_when_cancelled() {
        let tmp = tempfile::tempdir().unwrap();
        let cur = entries(40_000, 5);
        let mut c = spooled(&cur, 1 << 30, 1 << 30, tmp.path());
        let mut b = spooled(&[], 1 << 30, 0, tmp.path());
        let err = pair_spools(&mut c, &mut b, &mut builder(), &{
            let c = Cancel::default();
            c.cancel();
            c
        })
        .unwrap_err();
        assert!(matches!(err, SpillError::Interrupted), "{err}");
    }
}
