//! The prefix tree (one pass over sorted keys, `report::prefix`) against its definition by brute
//! force (`common::report_ref::prefix_tree`), on random key sets: binary keys, the empty key,
//! the same key several times (several instances or dbs), keys that are prefixes of others,
//! keys cut inside a multi-byte character, every threshold from 1 byte to all bytes, with and
//! without `--delimiter`. The keys also go through the external sort with tiny budgets, as the
//! Parquet reader sends them.

use crate::common;

use base64::Engine as _;
use common::fixtures::xorshift;
use common::report_ref::{self, PKey, RefNode, Sums};
use rdbinsight::cancel::Cancel;
use rdbinsight::record::RecordType;
use rdbinsight::report::model::{Measure, PrefixNode};
use rdbinsight::report::options::Delimiters;
use rdbinsight::report::prefix::{KeyFacts, PrefixBuilder, PrefixError};
use rdbinsight::report::spill::ExternalSorter;

const TYPES: [RecordType; 7] = RecordType::ALL;

/// Bytes keys are made of: ASCII, a delimiter, NUL, 0xff, and the three bytes of '→'.
const ALPHABET: [u8; 8] = [b'a', b'b', b':', 0x00, 0xff, 0xe2, 0x86, 0x92];

fn random_keys(rnd: &mut impl FnMut() -> u64) -> Vec<PKey> {
    let n = 1 + (rnd() % 120) as usize;
    let mut keys: Vec<PKey> = Vec::with_capacity(n);
    for _ in 0..n {
        let key = match rnd() % 10 {
            // The same key again, or a prefix of one, when there is one.
            0 | 1 if !keys.is_empty() => keys[(rnd() % keys.len() as u64) as usize].key.clone(),
            2 if !keys.is_empty() => {
                let k = &keys[(rnd() % keys.len() as u64) as usize].key;
                k[..(rnd() % (k.len() as u64 + 1)) as usize].to_vec()
            }
            3 => "a→b:".as_bytes()[..(rnd() % 7) as usize].to_vec(),
            _ => {
                let len = (rnd() % 10) as usize;
                (0..len)
                    .map(|_| ALPHABET[(rnd() % ALPHABET.len() as u64) as usize])
                    .collect()
            }
        };
        let rdb_size = if rnd().is_multiple_of(20) {
            1_000 + rnd() % 100_000
        } else {
            1 + rnd() % 100
        };
        // mem_size unrelated to rdb_size (the tree is on mem), NULL for some module keys.
        let rtype = (rnd() % 7) as usize;
        let mem_size = (rtype != 6 || rnd().is_multiple_of(2)).then(|| {
            if rnd().is_multiple_of(20) {
                2_000 + rnd() % 200_000
            } else {
                1 + rnd() % 300
            }
        });
        keys.push(PKey {
            key,
            rdb_size,
            mem_size,
            member_count: rnd() % 50,
            rtype,
            has_ttl: rnd().is_multiple_of(3),
        });
    }
    keys
}

fn facts(k: &PKey) -> KeyFacts {
    KeyFacts {
        rdb_size: k.rdb_size,
        mem_size: k.mem_size,
        member_count: k.member_count,
        rtype: TYPES[k.rtype],
        has_ttl: k.has_ttl,
    }
}

/// A node as the tests compare it.
fn ours(n: &PrefixNode) -> RefNode {
    let prefix = match &n.prefix.base64 {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("base64"),
        None => n.prefix.text.as_bytes().to_vec(),
    };
    assert_eq!(prefix.len() as u64, n.prefix_len);
    assert_eq!(report_ref::key_text(&prefix)["text"], n.prefix.text);
    let (t, m) = (n.rdb_size_by_type, n.mem_size_by_type);
    let sums = |a: &rdbinsight::report::model::Agg| Sums {
        keys: a.keys,
        rdb_size: a.rdb_size,
        mem_size: a.mem_size,
        mem_missing: a.mem_missing,
        member_count: a.member_count,
    };
    RefNode {
        prefix,
        parent: n.parent.map(|p| p as usize),
        is_key: n.is_key,
        all: sums(&n.agg),
        no_ttl: sums(&n.no_ttl),
        by_type: [t.string, t.list, t.set, t.zset, t.hash, t.stream, t.module],
        by_type_mem: [m.string, m.list, m.set, m.zset, m.hash, m.stream, m.module],
    }
}

fn build_sorted(keys: &[PKey], threshold: u64, d: Option<&Delimiters>) -> Vec<RefNode> {
    build_capped(keys, threshold, d, usize::MAX).expect("tree")
}

/// The tree with a node cap of `max_nodes`.
fn build_capped(
    keys: &[PKey],
    threshold: u64,
    d: Option<&Delimiters>,
    max_nodes: usize,
) -> Result<Vec<RefNode>, PrefixError> {
    let mut sorted: Vec<&PKey> = keys.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut b = PrefixBuilder::new(threshold, Measure::Mem, d).with_max_nodes(max_nodes);
    for k in sorted {
        b.push(&k.key, facts(k))?;
    }
    Ok(b.finish()?.nodes.iter().map(ours).collect())
}

fn build_spilled(
    keys: &[PKey],
    threshold: u64,
    d: Option<&Delimiters>,
    budget: u64,
) -> Vec<RefNode> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut s = ExternalSorter::new(budget, Some(tmp.path().to_path_buf()), Cancel::default());
    for k in keys {
        s.push(&k.key, facts(k)).expect("push");
    }
    let mut b = PrefixBuilder::new(threshold, Measure::Mem, d);
    s.finish(|key, f| b.push(key, f)).expect("sorted");
    b.finish().expect("tree").nodes.iter().map(ours).collect()
}

#[test]
fn prefix_tree_matches_its_definition_on_random_keys() {
    let mut rnd = xorshift(0x5DEE_CE66_D1CE_4E5B);
    let mut nodes_seen = 0usize;
    let mut snapped_seen = 0usize;
    let (mut capped_fit, mut capped_refused, mut snapped_early) = (0usize, 0usize, 0usize);
    for case in 0..400 {
        let keys = random_keys(&mut rnd);
        let total: u64 = keys.iter().map(|k| k.mem_size.unwrap_or(0)).sum();
        if total == 0 {
            continue; // only module keys without mem_size: no tree
        }
        let threshold = match case % 5 {
            0 => 1,
            1 => (total / 100).max(1),
            2 => (total / 10).max(1),
            3 => 1 + rnd() % total,
            _ => total,
        };
        // Nodes before any snapping.
        let unsnapped = report_ref::prefix_tree(&keys, threshold, "mem", None).len();
        for delim in [None, Some(":"), Some("→\u{0}")] {
            let parsed = delim.map(|d| d.parse::<Delimiters>().expect("delimiters"));
            let seqs: Option<Vec<Vec<u8>>> =
                delim.map(|d| d.chars().map(|c| c.to_string().into_bytes()).collect());
            let want = report_ref::prefix_tree(&keys, threshold, "mem", seqs.as_deref());
            let got = build_sorted(&keys, threshold, parsed.as_ref());
            assert_eq!(
                got, want,
                "case {case}, threshold {threshold}, delimiter {delim:?}, keys {keys:?}"
            );
            // The node cap applies to the tree shown (after snapping, which with a delimiter
            // also runs whenever the kept nodes reach twice the cap): refused exactly when the
            // tree has more nodes than the cap.
            for cap in [1, 2, 3, 5, 8] {
                match build_capped(&keys, threshold, parsed.as_ref(), cap) {
                    Ok(capped) => {
                        assert!(want.len() <= cap, "case {case}, cap {cap}: not refused");
                        assert_eq!(capped, want, "case {case}, cap {cap}");
                        capped_fit += 1;
                        // Kept nodes reached twice the cap and were snapped while building.
                        snapped_early += usize::from(delim.is_some() && unsnapped >= 2 * cap);
                    }
                    Err(PrefixError::TooManyNodes { max, .. }) => {
                        assert_eq!(max, cap);
                        assert!(want.len() > cap, "case {case}, cap {cap}: refused");
                        capped_refused += 1;
                    }
                    Err(e) => panic!("case {case}: {e}"),
                }
            }
            if case % 10 == 0 {
                let spilled = build_spilled(&keys, threshold, parsed.as_ref(), 64);
                assert_eq!(spilled, want, "case {case} through the spilled sort");
            }
            // The first node holds every key, whatever the cut.
            assert_eq!(want[0].all.keys, keys.len() as u64);
            nodes_seen += want.len();
            snapped_seen += usize::from(delim.is_some() && want.len() > 1);
        }
    }
    assert!(
        nodes_seen > 5_000,
        "the cases build real trees: {nodes_seen}"
    );
    assert!(snapped_seen > 100, "{snapped_seen}");
    assert!(
        capped_fit > 500 && capped_refused > 500,
        "both sides of the cap: {capped_fit} fit, {capped_refused} refused"
    );
    assert!(
        snapped_early > 100,
        "trees that fit only once snapped: {snapped_early}"
    );
}

#[test]
fn long_chains_and_wide_fans() {
    // "a", "aa", "aaa", ...: every key is a node nested in the previous one.
    let chain: Vec<PKey> = (0..300)
        .map(|n| PKey {
            key: vec![b'a'; n],
            rdb_size: 1,
            mem_size: Some(1),
            member_count: 1,
            rtype: 0,
            has_ttl: false,
        })
        .collect();
    let got = build_sorted(&chain, 1, None);
    assert_eq!(got, report_ref::prefix_tree(&chain, 1, "mem", None));
    assert_eq!(got.len(), 300);
    assert_eq!(got[299].parent, Some(298));
    // 256 one-byte keys under the empty root.
    let fan: Vec<PKey> = (0..=255u8)
        .map(|b| PKey {
            key: vec![b],
            rdb_size: 2,
            mem_size: Some(2),
            member_count: 0,
            rtype: 1,
            has_ttl: true,
        })
        .collect();
    let got = build_sorted(&fan, 2, None);
    assert_eq!(got, report_ref::prefix_tree(&fan, 2, "mem", None));
    assert_eq!(got.len(), 257);
    assert!(got[1..].iter().all(|n| n.parent == Some(0)));
}

/// Keys around and beyond 4 KiB: the tree counts each by its first 4 KiB (a longer key is
/// never a whole key of a node), from sorted keys and from the external sort (which here gets
/// the raw keys, longer than the sort forms the reader gives it), as the definition says.
#[test]
fn long_keys_count_under_their_first_four_kib() {
    let mut rnd = xorshift(0x0DDB_A11C_AFE5_1234);
    let mut checked = 0;
    let mut capped_nodes = 0;
    for case in 0..12 {
        let n = 2 + (rnd() % 40) as usize;
        let keys: Vec<PKey> = (0..n)
            .map(|_| {
                let base = 4_080 + (rnd() % 8) as usize;
                let tail = (rnd() % 40) as usize;
                let mut key = vec![b'k'; base];
                key.extend((0..tail).map(|_| ALPHABET[(rnd() % 3) as usize]));
                PKey {
                    key,
                    rdb_size: 1 + rnd() % 50,
                    mem_size: Some(1 + rnd() % 50),
                    member_count: 1,
                    rtype: (rnd() % 7) as usize,
                    has_ttl: rnd().is_multiple_of(2),
                }
            })
            .collect();
        let total: u64 = keys.iter().map(|k| k.mem_size.unwrap_or(0)).sum();
        for threshold in [1, 2, total / 4 + 1, total] {
            let want = report_ref::prefix_tree(&keys, threshold, "mem", None);
            assert_eq!(
                build_sorted(&keys, threshold, None),
                want,
                "case {case} threshold {threshold}"
            );
            assert_eq!(
                build_spilled(&keys, threshold, None, 1 << 14),
                want,
                "case {case} threshold {threshold}, spilled"
            );
            assert!(want.iter().all(|n| n.prefix.len() <= report_ref::SHOWN));
            capped_nodes += want
                .iter()
                .filter(|n| n.prefix.len() == report_ref::SHOWN)
                .count();
            checked += want.len();
        }
    }
    assert!(checked > 100, "{checked}");
    assert!(capped_nodes > 5, "nodes at the 4 KiB cap: {capped_nodes}");
}

/// The report of 40 keys of 10 MiB (stored by the real dump into Parquet) within
/// `--memory-limit 16MiB` + 64 MiB of peak RSS, with a page under 5 MB that shows each key by
/// its first 4 KiB, its length and its SHA-256. Before keys were cut to 4 KiB: 1.6 GB of RSS
/// and a 1.6 GB page.
#[test]
fn the_report_of_forty_ten_mib_keys_stays_within_its_memory_limit() {
    use super::huge_keys::{KEY_LEN, KEYS, huge_keys_rdb};
    use crate::common::cli::run_measured;
    let dir = tempfile::tempdir().expect("tempdir");
    let rdb = dir.path().join("huge-keys.rdb");
    huge_keys_rdb(&rdb);
    let pq = dir.path().join("parquet");
    let (page, json) = (dir.path().join("r.html"), dir.path().join("r.json"));
    let s = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    let (code, _, stderr) = run_measured(&[
        "dump",
        "from-file",
        "--path",
        &s(&rdb),
        "--cluster",
        "huge",
        "--instance",
        "i1",
        "into-parquet",
        "--dir",
        &s(&pq),
    ]);
    assert_eq!(code, 0, "dump: {stderr}");
    // A child spawned without a fork of its own starts its `ru_maxrss` at this process's
    // peak RSS (whatever other tests of this binary held): reset it to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (code, peak, stderr) = run_measured(&[
        "report",
        "from-parquet",
        "--dir",
        &s(&pq),
        "--cluster",
        "huge",
        "--memory-limit",
        "16MiB",
        "-o",
        &s(&page),
        "--json",
        &s(&json),
    ]);
    assert_eq!(code, 0, "report: {stderr}");
    eprintln!("report from-parquet: peak RSS {} MiB", peak >> 20);
    let page_len = std::fs::metadata(&page).expect("page").len();
    assert!(page_len < 5_000_000, "the page is {page_len} bytes");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("JSON");
    let top = doc["top_keys_by_size"].as_array().expect("top list");
    assert_eq!(top.len(), KEYS);
    for row in top {
        let k = &row["key"];
        assert_eq!(k["len"], KEY_LEN as u64, "{row}");
        let text = k["text"].as_str().expect("text");
        assert_eq!(text.len(), report_ref::SHOWN, "{text:.40}");
        assert!(text.starts_with("huge-key-"), "{text:.40}");
        assert_eq!(k["sha256"].as_str().map(str::len), Some(64), "{row}");
    }
    for n in doc["prefix_tree"]["nodes"].as_array().expect("nodes") {
        assert!(n["prefix_len"].as_u64().expect("len") <= report_ref::SHOWN as u64);
    }
    let limit = (16u64 << 20) + (64 << 20);
    assert!(
        peak <= limit,
        "peak RSS {} MiB > {} MiB",
        peak >> 20,
        limit >> 20
    );
}
