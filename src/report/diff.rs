//! `--baseline`: one pass over both batches' `(db, key)`s in key order (Parquet: the tagged
//! external sort; ClickHouse: a GROUP BY over both batches) into [`DiffBuilder`], which sums
//! the union of both prefix trees per batch and keeps the key rankings. `assemble::changes`
//! turns its [`DiffParts`] and the two reports into [`super::model::Changes`].

use std::cmp::Ordering;

use crate::record::RecordType;

use super::model::{Agg, Measure};
use super::prefix::KeyFacts;

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
#[derive(Debug)]
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

/// Turns the tagged sort's entries (tag = `db × 2 + 1` for the baseline, `db × 2` for the
/// current batch) into `(db, key)` pairs for a [`DiffBuilder`].
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

    pub fn push(&mut self, b: &mut DiffBuilder, key: &[u8], facts: &KeyFacts, tag: u64) {
        if key != self.key.as_slice() {
            self.flush(b);
            self.key.clear();
            self.key.extend_from_slice(key);
        }
        let (db, baseline) = (tag / 2, tag % 2 == 1);
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
