//! The prefix tree (which key prefixes hold the memory) from keys in ascending byte order, in one pass.
//!
//! A byte string P is a node when the keys starting with P hold at least `T` bytes of
//! the measure (`mem_size` or `rdb_size`) and P is the longest common prefix of exactly those keys: a branching point of
//! the key trie, or a whole key. [`PrefixBuilder`] walks the sorted keys keeping a stack of the
//! trie nodes that are prefixes of the current key (an "LCP stack"): a new key first closes
//! every open node deeper than its longest common prefix with the previous key (such a node's
//! keys are all seen, since keys arrive sorted), then opens the branching point at that depth if
//! it is new, then opens the key itself. A closed node's aggregate is added to its parent, and
//! it is kept only if it holds at least `T` bytes.
//!
//! Keys are taken by their first [`KEY_SHOWN_BYTES`] bytes (see `model::PrefixTree`), so a
//! 10 MB key costs no more than a 4 KiB one.
//!
//! Memory: the previous key (at most [`KEY_SHOWN_BYTES`]), a stack no deeper than that (open
//! depths strictly increase), and the kept nodes (at most [`MAX_PREFIX_NODES`], twice that before a snap with
//! `--delimiter`; else an error). Nothing per key is retained, so the builder takes a stream of
//! any length.
//!
//! With `--delimiter`, a kept node keeps only its prefix cut back to the last delimiter, and
//! kept nodes are snapped (equal cuts merged) whenever they reach twice the cap, so the cap applies to the snapped tree the
//! report shows, not to the nodes before snapping. Snapping a part of the nodes early gives the
//! same result as snapping all at the end (a cut group keeps its member with the shortest
//! original prefix, whenever that member arrives), and the number of distinct cuts only grows,
//! so more than the cap after a snap is final.
//!
//! Every comparison is on raw bytes; the display text of a prefix ([`KeyText`](super::model::KeyText)) is made only
//! for the kept nodes.

use crate::record::RecordType;

use super::keytext::key_text;
use super::model::{
    Agg, KEY_SHOWN_BYTES, MAX_PREFIX_NODES, Measure, PrefixNode, PrefixTree, TypeBytes,
};
use super::options::Delimiters;

/// What the prefix tree needs to know about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts {
    pub rdb_size: u64,
    pub mem_size: Option<u64>,
    pub member_count: u64,
    pub rtype: RecordType,
    /// Whether the key has an expiry (as the report counts it: see `aggregate::report_expire_ms`).
    pub has_ttl: bool,
}

impl KeyFacts {
    /// The facts of no key: a reader's slot before its first entry.
    pub const EMPTY: KeyFacts = KeyFacts {
        rdb_size: 0,
        mem_size: None,
        member_count: 0,
        rtype: RecordType::String,
        has_ttl: false,
    };
}

/// Why the tree could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error(
        "the prefix tree has more than {max} nodes at this threshold ({threshold} bytes): \
         raise --prefix-threshold"
    )]
    TooManyNodes { max: usize, threshold: u64 },
    /// The input was not sorted (a reader bug, or a server sorting with a collation).
    #[error("keys are not in ascending byte order: {later:?} came after {earlier:?}")]
    OutOfOrder { earlier: String, later: String },
}

/// A node's totals: the keys starting with its prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    agg: Agg,
    no_ttl: Agg,
    by_type: TypeBytes,
    by_type_mem: TypeBytes,
}

impl Totals {
    #[inline]
    fn add_key(&mut self, f: &KeyFacts) {
        self.agg.add(f.rdb_size, f.mem_size, f.member_count);
        if !f.has_ttl {
            self.no_ttl.add(f.rdb_size, f.mem_size, f.member_count);
        }
        add_type_bytes(&mut self.by_type, f.rtype, f.rdb_size);
        add_type_bytes(&mut self.by_type_mem, f.rtype, f.mem_size.unwrap_or(0));
    }

    #[inline]
    fn merge(&mut self, o: &Totals) {
        self.agg.merge(&o.agg);
        self.no_ttl.merge(&o.no_ttl);
        merge_type_bytes(&mut self.by_type, &o.by_type);
        merge_type_bytes(&mut self.by_type_mem, &o.by_type_mem);
    }
}

/// Add `b` to `a`, field by field (wrapping, as `Agg`: the readers check the batch totals).
#[inline]
fn merge_type_bytes(a: &mut TypeBytes, b: &TypeBytes) {
    a.string = a.string.wrapping_add(b.string);
    a.list = a.list.wrapping_add(b.list);
    a.set = a.set.wrapping_add(b.set);
    a.zset = a.zset.wrapping_add(b.zset);
    a.hash = a.hash.wrapping_add(b.hash);
    a.stream = a.stream.wrapping_add(b.stream);
    a.module = a.module.wrapping_add(b.module);
}

/// Add `bytes` to the field of `rtype`.
#[inline]
pub fn add_type_bytes(t: &mut TypeBytes, rtype: RecordType, bytes: u64) {
    let field = match rtype {
        RecordType::String => &mut t.string,
        RecordType::List => &mut t.list,
        RecordType::Set => &mut t.set,
        RecordType::ZSet => &mut t.zset,
        RecordType::Hash => &mut t.hash,
        RecordType::Stream => &mut t.stream,
        RecordType::Module => &mut t.module,
    };
    *field = field.wrapping_add(bytes);
}

/// An open trie node: a prefix of the current key.
#[derive(Debug, Clone, Copy)]
struct Open {
    depth: usize,
    is_key: bool,
    totals: Totals,
}

/// A kept node, before the tree is ordered.
#[derive(Debug, Clone)]
struct Kept {
    /// The node's prefix, or with a delimiter its cut.
    prefix: Vec<u8>,
    /// The length of the node's own prefix (before any snap).
    orig_len: usize,
    /// Whether the node's own prefix is a whole key.
    is_key: bool,
    totals: Totals,
}

/// Builds the prefix tree from keys pushed in ascending byte order (duplicates allowed: the
/// same key on several instances or dbs).
#[derive(Debug)]
pub struct PrefixBuilder {
    threshold: u64,
    measure: Measure,
    prev: Vec<u8>,
    started: bool,
    stack: Vec<Open>,
    kept: Vec<Kept>,
    delimiter: Option<Delimiters>,
    max_nodes: usize,
}

impl PrefixBuilder {
    /// `threshold`: the minimum bytes of `measure` of a node (`params.prefix_threshold_bytes`).
    /// With 0 (a batch without bytes) no node is kept. `delimiter`: `--delimiter`, if given.
    pub fn new(threshold: u64, measure: Measure, delimiter: Option<&Delimiters>) -> Self {
        PrefixBuilder {
            threshold,
            measure,
            prev: Vec::new(),
            started: false,
            stack: Vec::new(),
            kept: Vec::new(),
            delimiter: delimiter.cloned(),
            max_nodes: MAX_PREFIX_NODES,
        }
    }

    /// A smaller node cap than [`MAX_PREFIX_NODES`] (tests reach it with small key sets).
    #[doc(hidden)]
    pub fn with_max_nodes(mut self, max_nodes: usize) -> Self {
        self.max_nodes = max_nodes.max(1);
        self
    }

    fn too_many(&self) -> PrefixError {
        PrefixError::TooManyNodes {
            max: self.max_nodes,
            threshold: self.threshold,
        }
    }

    /// The next key; its first [`KEY_SHOWN_BYTES`] bytes must not sort before the previous
    /// key's. A key longer than that (a raw key or a sort form, `keytext::sort_form`) counts as
    /// its first [`KEY_SHOWN_BYTES`] bytes, without being a whole key.
    pub fn push(&mut self, key: &[u8], facts: KeyFacts) -> Result<(), PrefixError> {
        let whole = key.len() <= KEY_SHOWN_BYTES;
        let key = &key[..key.len().min(KEY_SHOWN_BYTES)];
        if !self.started {
            self.started = true;
            self.open_key(key.len(), whole, facts);
            self.prev.extend_from_slice(key);
            return Ok(());
        }
        let lcp = common_prefix_len(&self.prev, key);
        if lcp < key.len() && (lcp == self.prev.len() || key[lcp] > self.prev[lcp]) {
            // key > prev: close what lies deeper than the common prefix.
            self.close_deeper_than(lcp)?;
            self.open_key(key.len(), whole, facts);
        } else if lcp == key.len() && lcp == self.prev.len() {
            // The same key (or cut) again: the open node at its depth is the key.
            let top = self.stack.last_mut().expect("the previous key is open");
            top.totals.add_key(&facts);
            top.is_key |= whole;
        } else {
            return Err(PrefixError::OutOfOrder {
                earlier: key_text(&self.prev).text,
                later: key_text(key).text,
            });
        }
        self.prev.clear();
        self.prev.extend_from_slice(key);
        Ok(())
    }

    /// Close the open nodes deeper than `depth` (all prefixes of `prev`), and make sure a node
    /// of exactly `depth` is open (the branching point of `prev` and the next key). Works in
    /// place on the stack (an `Open` is 120 bytes; this runs once per key).
    fn close_deeper_than(&mut self, depth: usize) -> Result<(), PrefixError> {
        loop {
            let n = self.stack.len();
            match self.stack.last() {
                Some(top) if top.depth > depth => {}
                _ => return Ok(()),
            }
            self.keep(n - 1)?;
            if n >= 2 && self.stack[n - 2].depth >= depth {
                let (below, top) = self.stack.split_at_mut(n - 1);
                below[n - 2].totals.merge(&top[0].totals);
                self.stack.truncate(n - 1);
            } else {
                // The branching point at `depth` is new: it holds exactly the closed node's
                // keys, so the closed node becomes it.
                let top = &mut self.stack[n - 1];
                top.depth = depth;
                top.is_key = false;
                return Ok(());
            }
        }
    }

    /// Open the node of a key longer than every open node.
    fn open_key(&mut self, len: usize, is_key: bool, facts: KeyFacts) {
        self.stack.push(Open {
            depth: len,
            is_key,
            totals: Totals::default(),
        });
        if let Some(top) = self.stack.last_mut() {
            top.totals.add_key(&facts);
        }
    }

    /// Keep the open node at `i` (a prefix of `prev`) if it holds enough bytes.
    fn keep(&mut self, i: usize) -> Result<(), PrefixError> {
        let node = &self.stack[i];
        if self.threshold == 0 || node.totals.agg.measured(self.measure) < self.threshold {
            return Ok(());
        }
        let (depth, is_key, totals) = (node.depth, node.is_key, node.totals);
        match &self.delimiter {
            None if self.kept.len() >= self.max_nodes => return Err(self.too_many()),
            Some(_) if self.kept.len() >= self.max_nodes.saturating_mul(2) => {
                self.kept = snap(std::mem::take(&mut self.kept));
                if self.kept.len() > self.max_nodes {
                    return Err(self.too_many());
                }
            }
            _ => {}
        }
        // With a delimiter only the cut is ever shown: keep that, not the whole prefix.
        let len = self
            .delimiter
            .as_ref()
            .map_or(depth, |d| d.cut(&self.prev[..depth]));
        self.kept.push(Kept {
            prefix: self.prev[..len].to_vec(),
            orig_len: depth,
            is_key,
            totals,
        });
        Ok(())
    }

    /// Close every open node and order the tree (merging equal cuts first with a delimiter).
    pub fn finish(mut self) -> Result<PrefixTree, PrefixError> {
        while let Some(n) = self.stack.len().checked_sub(1) {
            self.keep(n)?;
            if n > 0 {
                let (below, top) = self.stack.split_at_mut(n);
                below[n - 1].totals.merge(&top[0].totals);
            }
            self.stack.truncate(n);
        }
        let mut kept = std::mem::take(&mut self.kept);
        if self.delimiter.is_some() {
            kept = snap(kept);
            if kept.len() > self.max_nodes {
                return Err(self.too_many());
            }
        }
        kept.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(PrefixTree {
            nodes: with_parents(kept),
        })
    }
}

/// Merge the nodes with the same cut prefix (their prefixes are already cut back to just
/// after their last delimiter, see `keep`): the keys starting with the cut prefix are exactly
/// those of the node with the shortest original prefix (any other key starting with the cut
/// would branch off between the cut and that node, in a node of its own that is shorter
/// still). The shortest original is kept, so snapping snapped nodes together with new ones is
/// the same as snapping all of them once.
fn snap(mut kept: Vec<Kept>) -> Vec<Kept> {
    // By cut prefix, then by original length: the first of each group is the shortest.
    kept.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(a.orig_len.cmp(&b.orig_len)));
    kept.dedup_by(|later, first| later.prefix == first.prefix);
    kept
}

/// Nodes sorted by prefix, with the index of each one's longest proper-prefix node.
fn with_parents(sorted: Vec<Kept>) -> Vec<PrefixNode> {
    let mut stack: Vec<usize> = Vec::new();
    let mut out: Vec<PrefixNode> = Vec::with_capacity(sorted.len());
    for (i, k) in sorted.iter().enumerate() {
        while let Some(&top) = stack.last() {
            if k.prefix.starts_with(&sorted[top].prefix) {
                break;
            }
            stack.pop();
        }
        out.push(PrefixNode {
            // i < MAX_PREFIX_NODES, far below u32::MAX.
            parent: stack.last().map(|&p| p as u32),
            prefix: key_text(&k.prefix),
            prefix_len: k.prefix.len() as u64,
            // A snapped node is a whole key only if its cut is its own prefix.
            is_key: k.is_key && k.orig_len == k.prefix.len(),
            agg: k.totals.agg,
            no_ttl: k.totals.no_ttl,
            rdb_size_by_type: k.totals.by_type,
            mem_size_by_type: k.totals.by_type_mem,
        });
        stack.push(i);
    }
    out
}

/// Length of the longest common prefix.
#[inline]
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    // Compare 8 bytes at a time, then finish bytewise.
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_ne_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            break;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(rdb_size: u64, has_ttl: bool) -> KeyFacts {
        KeyFacts {
            rdb_size,
            mem_size: Some(100 - rdb_size),
            member_count: 1,
            rtype: RecordType::String,
            has_ttl,
        }
    }

    /// (prefix, parent, is_key, keys, bytes) per node.
    type Node = (Vec<u8>, Option<u32>, bool, u64, u64);

    fn build(keys: &[(&[u8], u64)], t: u64, d: Option<&str>) -> Vec<Node> {
        let d = d.map(|d| d.parse::<Delimiters>().unwrap());
        let mut b = PrefixBuilder::new(t, Measure::Rdb, d.as_ref());
        for (k, s) in keys {
            b.push(k, facts(*s, false)).unwrap();
        }
        b.finish()
            .unwrap()
            .nodes
            .into_iter()
            .map(|n| {
                let bytes = match n.prefix.base64 {
                    Some(_) => panic!("test keys are plain"),
                    None => n.prefix.text.into_bytes(),
                };
                (bytes, n.parent, n.is_key, n.agg.keys, n.agg.rdb_size)
            })
            .collect()
    }

    #[test]
    fn small_tree() {
        let keys: &[(&[u8], u64)] = &[(b"a:1", 10), (b"a:2", 10), (b"a:22", 5), (b"b", 1)];
        assert_eq!(
            build(keys, 1, None),
            vec![
                (b"".to_vec(), None, false, 4, 26),
                (b"a:".to_vec(), Some(0), false, 3, 25),
                (b"a:1".to_vec(), Some(1), true, 1, 10),
                (b"a:2".to_vec(), Some(1), true, 2, 15),
                (b"a:22".to_vec(), Some(3), true, 1, 5),
                (b"b".to_vec(), Some(0), true, 1, 1),
            ]
        );
        // Threshold 10: "a:22" and "b" drop out.
        assert_eq!(build(keys, 10, None).len(), 4);
        // Delimiter ':': "a:1", "a:2", "a:22" cut to "a:" (keeping "a:"'s sums), "b" to "".
        assert_eq!(
            build(keys, 1, Some(":")),
            vec![
                (b"".to_vec(), None, false, 4, 26),
                (b"a:".to_vec(), Some(0), false, 3, 25),
            ]
        );
    }

    #[test]
    fn the_threshold_is_on_the_measure() {
        // mem_size is 100 - rdb_size in these facts: "a" holds 90 of mem, "b" 10.
        let keys: &[(&[u8], u64)] = &[(b"a", 10), (b"b", 90)];
        for (measure, kept) in [(Measure::Rdb, b"b"), (Measure::Mem, b"a")] {
            let mut b = PrefixBuilder::new(50, measure, None);
            for (k, s) in keys {
                b.push(k, facts(*s, false)).unwrap();
            }
            let nodes = b.finish().unwrap().nodes;
            let prefixes: Vec<&str> = nodes.iter().map(|n| n.prefix.text.as_str()).collect();
            assert_eq!(
                prefixes,
                ["", std::str::from_utf8(kept).unwrap()],
                "{measure:?}"
            );
            assert_eq!((nodes[0].agg.rdb_size, nodes[0].agg.mem_size), (100, 100));
            assert_eq!(nodes[0].mem_size_by_type.string, 100);
        }
    }

    #[test]
    fn duplicates_and_single_key() {
        let keys: &[(&[u8], u64)] = &[(b"k", 3), (b"k", 4)];
        assert_eq!(
            build(keys, 1, None),
            vec![(b"k".to_vec(), None, true, 2, 7)]
        );
        assert_eq!(
            build(&[(b"", 2)], 1, None),
            vec![(b"".to_vec(), None, true, 1, 2)]
        );
        assert_eq!(build(&[], 1, None), vec![]);
        assert_eq!(build(&[(b"x", 2)], 0, None), vec![]);
    }

    #[test]
    fn out_of_order_is_an_error() {
        let mut b = PrefixBuilder::new(1, Measure::Rdb, None);
        b.push(b"b", facts(1, false)).unwrap();
        assert!(matches!(
            b.push(b"a", facts(1, false)),
            Err(PrefixError::OutOfOrder { .. })
        ));
        let mut b = PrefixBuilder::new(1, Measure::Rdb, None);
        b.push(b"ab", facts(1, false)).unwrap();
        assert!(b.push(b"a", facts(1, false)).is_err());
    }

    #[test]
    fn lcp() {
        assert_eq!(common_prefix_len(b"", b"abc"), 0);
        assert_eq!(common_prefix_len(b"abcdefghij", b"abcdefghik"), 9);
        assert_eq!(common_prefix_len(b"abcdefgh", b"abcdefgh"), 8);
        assert_eq!(common_prefix_len(b"abcdefgh1", b"abcdefgh"), 8);
        assert_eq!(common_prefix_len(b"x", b"y"), 0);
    }
}
