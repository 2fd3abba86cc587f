//! Synthetic `ReportData` for the renderer's tests: a made-up key set aggregated in memory the
//! way the report defines every section (orders, ties, buckets), so the page's numbers can be
//! checked against it. Not a reader: the prefix nodes are chosen by construction, not found.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rdbinsight::report::key_text;
use rdbinsight::report::model::*;

use super::fixtures::xorshift;

/// The batch timestamp of every synthetic report.
pub const BATCH: &str = "2024-05-06T07:08:09.123456789Z";
/// `BATCH` in milliseconds since the epoch (truncated).
pub const BATCH_MS: i64 = 1_714_979_289_123;

pub const INSTANCES: [&str; 3] = ["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"];

/// One key of the synthetic batch.
#[derive(Debug, Clone)]
pub struct SynthKey {
    pub key: Vec<u8>,
    pub instance: usize,
    pub db: u64,
    pub r#type: &'static str,
    pub encoding: &'static str,
    pub rdb_size: u64,
    /// `None` for module values (no memory model applies).
    pub mem_size: Option<u64>,
    pub member_count: u64,
    pub ttl_ms: Option<i64>,
    pub idle_seconds: Option<u64>,
    pub freq: Option<u8>,
    pub slot: u16,
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

/// The synthetic `mem_size`: 1.5 × `rdb_size` + 64, none for module values.
pub fn synth_mem(r#type: &str, rdb_size: u64) -> Option<u64> {
    (r#type != "module").then(|| rdb_size * 3 / 2 + 64)
}

fn mem(k: &SynthKey) -> u64 {
    k.mem_size.unwrap_or(0)
}

/// One namespace of the synthetic key space.
struct Ns {
    prefix: &'static [u8],
    r#type: &'static str,
    encodings: &'static [&'static str],
    members: (u64, u64),
    /// TTL range in ms (`None`: no TTL), chosen per key.
    ttl: &'static [Option<(i64, i64)>],
    weight: usize,
}

const H: i64 = 3_600_000;
const DAY: i64 = 24 * H;

const NAMESPACES: &[Ns] = &[
    Ns {
        prefix: b"user:",
        r#type: "hash",
        encodings: &["list_pack", "list_pack", "raw"],
        members: (5, 120),
        ttl: &[None],
        weight: 6,
    },
    Ns {
        prefix: b"session:",
        r#type: "string",
        encodings: &["raw"],
        members: (1, 1),
        ttl: &[Some((H, DAY))],
        weight: 4,
    },
    Ns {
        prefix: b"cache:page:",
        r#type: "string",
        encodings: &["lzf", "raw"],
        members: (1, 1),
        ttl: &[Some((-H, 0)), Some((1, H))],
        weight: 3,
    },
    Ns {
        prefix: b"feed:",
        r#type: "list",
        encodings: &["quick_list2"],
        members: (10, 5000),
        ttl: &[None, Some((7 * DAY, 30 * DAY))],
        weight: 3,
    },
    Ns {
        prefix: b"rank:",
        r#type: "zset",
        encodings: &["skip_list", "list_pack"],
        members: (20, 20000),
        ttl: &[None, Some((DAY, 7 * DAY))],
        weight: 2,
    },
    Ns {
        prefix: b"tags:",
        r#type: "set",
        encodings: &["int_set", "list_pack", "raw"],
        members: (3, 900),
        ttl: &[None],
        weight: 2,
    },
    Ns {
        prefix: b"events:",
        r#type: "stream",
        encodings: &["list_packs3"],
        members: (100, 90000),
        ttl: &[Some((31 * DAY, 90 * DAY))],
        weight: 1,
    },
    Ns {
        prefix: b"mod:",
        r#type: "module",
        encodings: &["module"],
        members: (0, 0),
        ttl: &[None],
        weight: 1,
    },
    Ns {
        prefix: "\u{e9}t\u{e9}:".as_bytes(),
        r#type: "hash",
        encodings: &["list_pack"],
        members: (2, 60),
        ttl: &[None],
        weight: 1,
    },
    Ns {
        prefix: b"</script><b>x</b>:",
        r#type: "hash",
        encodings: &["list_pack"],
        members: (2, 60),
        ttl: &[None],
        weight: 1,
    },
    Ns {
        prefix: b"\xff\xfe\x00bin:",
        r#type: "zset",
        encodings: &["list_pack"],
        members: (2, 100),
        ttl: &[None],
        weight: 1,
    },
];

/// Add a key of namespace `ns` with `rdb_size` in `size`, the rest drawn from `range`.
fn push(
    keys: &mut Vec<SynthKey>,
    key: Vec<u8>,
    ns: &Ns,
    size: (u64, u64),
    range: &mut dyn FnMut(u64, u64) -> u64,
) {
    let enc = ns.encodings[range(0, ns.encodings.len() as u64 - 1) as usize];
    let ttl = ns.ttl[range(0, ns.ttl.len() as u64 - 1) as usize]
        .map(|(lo, hi)| lo + range(0, (hi - lo) as u64) as i64);
    let members = if enc == "raw" && ns.r#type == "hash" {
        range(20, 100)
    } else {
        range(ns.members.0, ns.members.1)
    };
    let slot = (fnv(&key) % 16384) as u16;
    let mut instance = slot as usize * 3 / 16384;
    if fnv(&key).is_multiple_of(997) {
        instance = (instance + 1) % 3; // a key left behind by a slot migration
    }
    let db = if ns.prefix == b"tags:" && instance == 2 {
        2
    } else {
        0
    };
    let (idle_seconds, freq) = match instance {
        0 => (Some(range(0, 180 * 86_400).pow(2) / (180 * 86_400)), None),
        1 => (None, Some(range(0, 255).min(range(0, 255)) as u8)),
        _ => (None, None),
    };
    let rdb_size = range(size.0, size.1);
    keys.push(SynthKey {
        key,
        instance,
        db,
        r#type: ns.r#type,
        encoding: enc,
        rdb_size,
        mem_size: synth_mem(ns.r#type, rdb_size),
        member_count: if ns.r#type == "string" { 1 } else { members },
        ttl_ms: ttl,
        idle_seconds,
        freq,
        slot,
    });
}

/// A realistic batch with every section non-empty and exactly `nodes` prefix nodes (at least
/// 100): three instances of a Redis Cluster (one LRU, one LFU, one neither), keys with and
/// without TTL (some expired), binary and `</script>` keys, an integer key, the empty key, big
/// strings and huge collections (more than `top`), slots found on two instances.
pub fn synthetic(nodes: usize, seed: u64) -> ReportData {
    let (keys, node_prefixes, params) = synthetic_parts(nodes, seed);
    aggregate(&keys, node_prefixes, params, "prod-cache")
}

/// The keys, prefix nodes and parameters [`synthetic`] aggregates.
pub fn synthetic_parts(nodes: usize, seed: u64) -> (Vec<SynthKey>, Vec<Vec<u8>>, Params) {
    assert!(nodes >= 100, "the fixed part of the key space has 77 nodes");
    let mut rnd = xorshift(seed);
    let mut range = move |lo: u64, hi: u64| {
        if hi <= lo {
            lo
        } else {
            lo + rnd() % (hi - lo + 1)
        }
    };
    let mut keys: Vec<SynthKey> = Vec::new();
    let mut node_prefixes: Vec<Vec<u8>> = vec![Vec::new()];
    let mut count = 1;

    for ns in NAMESPACES {
        node_prefixes.push(ns.prefix.to_vec());
        count += 1;
        for r in 0..5 {
            // Keys of the namespace below every group (too small to be nodes).
            let key = [ns.prefix, format!("x{r}").as_bytes()].concat();
            push(&mut keys, key, ns, (50, 2_000), &mut range);
        }
    }
    // Big keys: 60 strings over 1 MiB under their own prefix, and two huge collections.
    let big = Ns {
        prefix: b"big:",
        r#type: "string",
        encodings: &["raw"],
        members: (1, 1),
        ttl: &[None],
        weight: 0,
    };
    node_prefixes.push(big.prefix.to_vec());
    count += 1;
    for i in 0..60 {
        let key = format!("big:blob:{i:02}").into_bytes();
        node_prefixes.push(key.clone());
        count += 1;
        push(
            &mut keys,
            key,
            &big,
            (BIG_STRING_BYTES + 1, 24 << 20),
            &mut range,
        );
    }
    for (ns_i, name, members) in [
        (9usize, "all", 2_500_000u64),
        (10, "lb", 1_200_000),
        (5, "\"quoted\",key", 1_500_000),
    ] {
        let ns = &NAMESPACES[ns_i];
        let key = [ns.prefix, name.as_bytes()].concat();
        node_prefixes.push(key.clone());
        count += 1;
        push(&mut keys, key, ns, (30 << 20, 60 << 20), &mut range);
        let k = keys.last_mut().expect("just pushed");
        k.member_count = members;
        k.encoding = match ns.r#type {
            "zset" => "skip_list",
            _ => "raw",
        };
    }
    // Keys at the root: an integer-encoded key and the empty key.
    let misc = Ns {
        prefix: b"",
        r#type: "string",
        encodings: &["int"],
        members: (1, 1),
        ttl: &[None],
        weight: 0,
    };
    push(&mut keys, b"12345".to_vec(), &misc, (10, 10), &mut range);
    push(&mut keys, Vec::new(), &misc, (8, 8), &mut range);
    // A key a spreadsheet would run as a formula (CSV injection): a huge hash, in the top keys.
    let formula = Ns {
        prefix: b"",
        r#type: "hash",
        encodings: &["raw"],
        members: (1, 1),
        ttl: &[None],
        weight: 0,
    };
    let key = b"=HYPERLINK(\"http://example.invalid\",\"x\")".to_vec();
    node_prefixes.push(key.clone());
    count += 1;
    push(&mut keys, key, &formula, (30 << 20, 60 << 20), &mut range);
    if let Some(k) = keys.last_mut() {
        k.member_count = 1_800_000;
    }

    // Groups of two keys (both nodes) plus a small key, until the node count is reached.
    let weights: usize = NAMESPACES.iter().map(|n| n.weight).sum();
    let mut g = 0u64;
    while count < nodes {
        let mut pick = (g as usize * 7919) % weights;
        let ns = NAMESPACES
            .iter()
            .find(|n| {
                if pick < n.weight {
                    true
                } else {
                    pick -= n.weight;
                    false
                }
            })
            .expect("weights cover the range");
        let group = [ns.prefix, format!("{}:", 100_000 + g).as_bytes()].concat();
        g += 1;
        node_prefixes.push(group.clone());
        count += 1;
        for leaf in ["a", "b"] {
            if count >= nodes {
                break;
            }
            let key = [group.as_slice(), leaf.as_bytes()].concat();
            node_prefixes.push(key.clone());
            count += 1;
            push(&mut keys, key, ns, (5_000, 60_000), &mut range);
        }
        push(
            &mut keys,
            [group.as_slice(), b"z"].concat(),
            ns,
            (50, 1_000),
            &mut range,
        );
    }

    let total: u64 = keys.iter().map(mem).sum();
    // A threshold every node holds (leaf keys have at least 5,000 bytes of rdb_size, 7,564
    // of mem_size).
    let (pct, threshold) = if total * 2 / 1_000_000 <= 7_564 {
        ("0.0002", (total * 2 / 1_000_000).max(1))
    } else {
        ("0.0001", (total / 1_000_000).max(1))
    };
    assert!(
        threshold <= 7_564,
        "every node must hold at least the threshold"
    );
    let params = Params {
        top: 50,
        prefix_threshold_pct: pct.into(),
        prefix_threshold_bytes: threshold,
        delimiter: None,
        big_string_bytes: BIG_STRING_BYTES,
        big_other_bytes: BIG_OTHER_BYTES,
        big_members: BIG_MEMBERS,
    };
    (keys, node_prefixes, params)
}

/// The baseline batch of [`synthetic_with_changes`].
pub const BASELINE: &str = "2024-04-29T07:08:09.123456789Z";

/// [`synthetic`] with a `changes` part against a baseline made from the same keys: by a hash of
/// the key, a tenth of them are new, a fifth were bigger (they shrank), three tenths smaller
/// (they grew), the rest unchanged; every `events:` key is new (the prefix appeared), a set of
/// `old:cart:` keys is in the baseline only (vanished), `12345` was a list (a type change) and
/// one `user:` key moved to another instance (unchanged).
pub fn synthetic_with_changes(nodes: usize, seed: u64) -> ReportData {
    let (cur, node_prefixes, params) = synthetic_parts(nodes, seed);
    let mut base: Vec<SynthKey> = Vec::new();
    let mut moved = false;
    for k in &cur {
        if k.key.starts_with(b"events:") {
            continue;
        }
        let mut b = k.clone();
        match fnv(&k.key) % 10 {
            0 => continue,
            1 | 2 => b.rdb_size = k.rdb_size * 2 + 100,
            3..=5 => b.rdb_size = k.rdb_size / 3,
            _ => {
                if !moved && k.key.starts_with(b"user:") {
                    b.instance = (k.instance + 1) % INSTANCES.len();
                    moved = true;
                }
            }
        }
        if k.key == b"12345" {
            b.r#type = "list";
        }
        b.mem_size = synth_mem(b.r#type, b.rdb_size);
        base.push(b);
    }
    let mut base_nodes: Vec<Vec<u8>> = node_prefixes
        .iter()
        .filter(|p| !p.starts_with(b"events:"))
        .cloned()
        .collect();
    base_nodes.push(b"old:".to_vec());
    for i in 0..12u64 {
        let key = format!("old:cart:{i:02}").into_bytes();
        base_nodes.push(key.clone());
        base.push(SynthKey {
            key,
            instance: (i % 3) as usize,
            db: 0,
            r#type: "hash",
            encoding: "list_pack",
            rdb_size: 40_000 + i * 7_000,
            mem_size: synth_mem("hash", 40_000 + i * 7_000),
            member_count: 50 + i,
            ttl_ms: None,
            idle_seconds: None,
            freq: None,
            slot: (i * 1000) as u16,
        });
    }
    let cur_total: u64 = cur.iter().map(mem).sum();
    let base_total: u64 = base.iter().map(mem).sum();
    let base_threshold = (params.prefix_threshold_bytes as u128 * base_total as u128
        / cur_total.max(1) as u128) as u64;
    let top = params.top as usize;
    let mut data = aggregate(&cur, node_prefixes.clone(), params.clone(), "prod-cache");
    data.changes = Some(changes(
        &cur,
        &base,
        &node_prefixes,
        &base_nodes,
        params.prefix_threshold_bytes,
        base_threshold,
        top,
    ));
    data
}

fn sums<'a>(keys: impl IntoIterator<Item = &'a SynthKey>) -> Agg {
    let mut a = Agg::default();
    for k in keys {
        a.add(k.rdb_size, k.mem_size, k.member_count);
    }
    a
}

fn change_row(name: String, current: Agg, baseline: Agg) -> ChangeRow {
    ChangeRow {
        name,
        delta: Delta::between(&current, &baseline),
        current,
        baseline,
    }
}

/// The `changes` part by brute force (measure `mem`), as `src/report/model.rs` defines it; the
/// given node lists stand for each batch's prefix tree.
pub fn changes(
    cur: &[SynthKey],
    base: &[SynthKey],
    cur_nodes: &[Vec<u8>],
    base_nodes: &[Vec<u8>],
    cur_threshold: u64,
    base_threshold: u64,
    top: usize,
) -> Changes {
    let group = |f: &dyn Fn(&SynthKey) -> bool| {
        (
            sums(cur.iter().filter(|k| f(k))),
            sums(base.iter().filter(|k| f(k))),
        )
    };
    let row = |name: String, f: &dyn Fn(&SynthKey) -> bool| {
        let (c, b) = group(f);
        change_row(name, c, b)
    };
    let types: BTreeSet<&str> = cur.iter().chain(base).map(|k| k.r#type).collect();
    let dbs: BTreeSet<u64> = cur.iter().chain(base).map(|k| k.db).collect();
    let insts: BTreeSet<usize> = cur.iter().chain(base).map(|k| k.instance).collect();
    // (db, key) -> (smallest type name, summed measure).
    let per_key = |keys: &[SynthKey]| {
        let mut m: BTreeMap<(Vec<u8>, u64), (&'static str, u64)> = BTreeMap::new();
        for k in keys {
            let e = m.entry((k.key.clone(), k.db)).or_insert((k.r#type, 0));
            e.0 = e.0.min(k.r#type);
            e.1 += mem(k);
        }
        m
    };
    let (kc, kb) = (per_key(cur), per_key(base));
    let keys_type_changed = kc
        .iter()
        .filter(|(id, (t, _))| kb.get(*id).is_some_and(|(bt, _)| bt != t))
        .count() as u64;

    let cur_set: HashSet<&Vec<u8>> = cur_nodes.iter().collect();
    let base_set: HashSet<&Vec<u8>> = base_nodes.iter().collect();
    let all: BTreeSet<&Vec<u8>> = cur_nodes.iter().chain(base_nodes).collect();
    let prefixes: Vec<PrefixChange> = all
        .into_iter()
        .map(|p| {
            let (c, b) = group(&|k: &SynthKey| k.key.starts_with(p));
            PrefixChange {
                prefix: key_text(p),
                prefix_len: p.len() as u64,
                in_current: cur_set.contains(p),
                in_baseline: base_set.contains(p),
                delta: Delta::between(&c, &b),
                current: c,
                baseline: b,
            }
        })
        .collect();
    let ranked =
        |keep: &dyn Fn(&PrefixChange) -> bool,
         cmp: &dyn Fn(&PrefixChange, &PrefixChange) -> std::cmp::Ordering| {
            let mut v: Vec<u32> = (0..prefixes.len() as u32)
                .filter(|&i| keep(&prefixes[i as usize]))
                .collect();
            v.sort_by(|&a, &b| cmp(&prefixes[a as usize], &prefixes[b as usize]).then(a.cmp(&b)));
            v.truncate(top);
            v
        };
    let growth = ranked(&|p| p.delta.mem_size > 0, &|a, b| {
        b.delta.mem_size.cmp(&a.delta.mem_size)
    });
    let relative_growth = ranked(
        &|p| {
            p.baseline.mem_size >= base_threshold && p.baseline.mem_size > 0 && p.delta.mem_size > 0
        },
        &|a, b| {
            let x = a.current.mem_size as u128 * b.baseline.mem_size as u128;
            let y = b.current.mem_size as u128 * a.baseline.mem_size as u128;
            y.cmp(&x)
        },
    );
    let appeared = ranked(&|p| p.baseline.keys == 0, &|a, b| {
        b.current.mem_size.cmp(&a.current.mem_size)
    });
    let vanished = ranked(&|p| p.current.keys == 0, &|a, b| {
        b.baseline.mem_size.cmp(&a.baseline.mem_size)
    });
    let shrink = ranked(&|p| p.delta.mem_size < 0, &|a, b| {
        a.delta.mem_size.cmp(&b.delta.mem_size)
    });

    let key_change = |id: &(Vec<u8>, u64), t: &str, c: u64| {
        let b = kb.get(id);
        KeyChange {
            key: key_text(&id.0),
            db: id.1,
            r#type: t.to_string(),
            baseline_type: b.map(|(bt, _)| bt.to_string()),
            type_changed: b.is_some_and(|(bt, _)| *bt != t),
            current: c,
            baseline: b.map_or(0, |x| x.1),
            delta: c as i128 - b.map_or(0, |x| x.1) as i128,
        }
    };
    let mut grew: Vec<KeyChange> = kc
        .iter()
        .map(|(id, (t, c))| key_change(id, t, *c))
        .filter(|k| k.delta > 0)
        .collect();
    grew.sort_by_key(|k| std::cmp::Reverse(k.delta));
    grew.truncate(top);
    let mut new: Vec<KeyChange> = kc
        .iter()
        .filter(|(id, _)| !kb.contains_key(*id))
        .map(|(id, (t, c))| key_change(id, t, *c))
        .collect();
    new.sort_by_key(|k| std::cmp::Reverse(k.current));
    new.truncate(top);

    let (tc, tb) = (sums(cur), sums(base));
    Changes {
        baseline: BASELINE.into(),
        measure: "mem".into(),
        note: None,
        baseline_prefix_threshold_bytes: base_threshold,
        current_prefix_threshold_bytes: cur_threshold,
        totals: change_row(String::new(), tc, tb),
        no_ttl: row(String::new(), &|k| k.ttl_ms.is_none()),
        expired: row(String::new(), &|k| k.ttl_ms.is_some_and(|t| t <= 0)),
        by_type: types
            .iter()
            .map(|t| row(t.to_string(), &|k| k.r#type == *t))
            .collect(),
        by_db: dbs
            .iter()
            .map(|d| row(d.to_string(), &|k| k.db == *d))
            .collect(),
        by_instance: insts
            .iter()
            .map(|i| row(INSTANCES[*i].to_string(), &|k| k.instance == *i))
            .collect(),
        keys_type_changed,
        prefixes,
        growth,
        relative_growth,
        appeared,
        vanished,
        shrink,
        top_key_growth: grew,
        top_new_keys: new,
    }
}

/// A batch with no keys.
pub fn empty() -> ReportData {
    let params = Params {
        top: 100,
        prefix_threshold_pct: "1".into(),
        prefix_threshold_bytes: 0,
        delimiter: None,
        big_string_bytes: BIG_STRING_BYTES,
        big_other_bytes: BIG_OTHER_BYTES,
        big_members: BIG_MEMBERS,
    };
    aggregate(&[], Vec::new(), params, "empty-cluster")
}

fn key_row(k: &SynthKey) -> KeyRow {
    KeyRow {
        key: key_text(&k.key),
        instance: INSTANCES[k.instance].to_string(),
        db: k.db,
        r#type: k.r#type.to_string(),
        encoding: k.encoding.to_string(),
        rdb_size: k.rdb_size,
        mem_size: k.mem_size,
        member_count: k.member_count,
        expire_at: k.ttl_ms.map(|t| {
            chrono::DateTime::from_timestamp_millis(BATCH_MS + t)
                .expect("in range")
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
        ttl_ms: k.ttl_ms,
        idle_seconds: k.idle_seconds,
        freq: k.freq,
    }
}

fn type_bytes_add(t: &mut TypeBytes, ty: &str, n: u64) {
    match ty {
        "string" => t.string += n,
        "list" => t.list += n,
        "set" => t.set += n,
        "zset" => t.zset += n,
        "hash" => t.hash += n,
        "stream" => t.stream += n,
        _ => t.module += n,
    }
}

fn histogram(
    bounds: &[u64],
    values: impl Iterator<Item = (Option<u64>, u64, Option<u64>, u64)>,
) -> Histogram {
    let mut buckets: Vec<HistBucket> = (0..=bounds.len())
        .map(|i| HistBucket {
            lo: if i == 0 { 0 } else { bounds[i - 1] },
            hi: bounds.get(i).copied(),
            agg: Agg::default(),
        })
        .collect();
    let mut with_field = Agg::default();
    for (v, size, mem, members) in values {
        let Some(v) = v else { continue };
        with_field.add(size, mem, members);
        let i = bounds.iter().position(|&b| v < b).unwrap_or(bounds.len());
        buckets[i].agg.add(size, mem, members);
    }
    Histogram {
        with_field,
        buckets,
    }
}

/// Every section of the report from `keys`, with the given prefix nodes.
pub fn aggregate(
    keys: &[SynthKey],
    mut prefixes: Vec<Vec<u8>>,
    params: Params,
    cluster: &str,
) -> ReportData {
    let top = params.top as usize;
    let mut totals = Agg::default();
    let mut with_ttl = Agg::default();
    let mut by_type: BTreeMap<&str, Agg> = BTreeMap::new();
    let mut by_te: BTreeMap<(&str, &str), Agg> = BTreeMap::new();
    let mut by_db: BTreeMap<u64, Agg> = BTreeMap::new();
    let mut by_inst: BTreeMap<&str, Agg> = BTreeMap::new();
    let mut slots: BTreeMap<u16, (Agg, BTreeMap<&str, Agg>)> = BTreeMap::new();
    for k in keys {
        let (s, mm, m) = (k.rdb_size, k.mem_size, k.member_count);
        totals.add(s, mm, m);
        if k.ttl_ms.is_some() {
            with_ttl.add(s, mm, m);
        }
        by_type.entry(k.r#type).or_default().add(s, mm, m);
        by_te
            .entry((k.r#type, k.encoding))
            .or_default()
            .add(s, mm, m);
        by_db.entry(k.db).or_default().add(s, mm, m);
        by_inst
            .entry(INSTANCES[k.instance])
            .or_default()
            .add(s, mm, m);
        let e = slots.entry(k.slot).or_default();
        e.0.add(s, mm, m);
        e.1.entry(INSTANCES[k.instance]).or_default().add(s, mm, m);
    }

    // Prefix nodes: sorted by bytes, parents by a stack walk, keys added to the deepest node
    // that is a prefix of them and to its ancestors.
    if totals.mem_size == 0 {
        prefixes.clear();
    }
    prefixes.sort();
    prefixes.dedup();
    let key_set: HashSet<&[u8]> = keys.iter().map(|k| k.key.as_slice()).collect();
    let mut nodes: Vec<PrefixNode> = Vec::with_capacity(prefixes.len());
    let mut stack: Vec<usize> = Vec::new();
    for (i, p) in prefixes.iter().enumerate() {
        while let Some(&top) = stack.last() {
            if p.starts_with(&prefixes[top]) {
                break;
            }
            stack.pop();
        }
        nodes.push(PrefixNode {
            parent: stack.last().map(|&t| t as u32),
            prefix: key_text(p),
            prefix_len: p.len() as u64,
            is_key: key_set.contains(p.as_slice()),
            agg: Agg::default(),
            no_ttl: Agg::default(),
            rdb_size_by_type: TypeBytes::default(),
            mem_size_by_type: TypeBytes::default(),
        });
        stack.push(i);
    }
    for k in keys {
        if prefixes.is_empty() {
            break;
        }
        let mut at = match prefixes.binary_search(&k.key) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        };
        while let Some(i) = at {
            if k.key.starts_with(&prefixes[i]) {
                break;
            }
            at = nodes[i].parent.map(|p| p as usize);
        }
        while let Some(i) = at {
            let n = &mut nodes[i];
            n.agg.add(k.rdb_size, k.mem_size, k.member_count);
            if k.ttl_ms.is_none() {
                n.no_ttl.add(k.rdb_size, k.mem_size, k.member_count);
            }
            type_bytes_add(&mut n.rdb_size_by_type, k.r#type, k.rdb_size);
            type_bytes_add(&mut n.mem_size_by_type, k.r#type, mem(k));
            at = n.parent.map(|p| p as usize);
        }
    }

    let by_size = {
        let mut v: Vec<&SynthKey> = keys.iter().collect();
        v.sort_by(|a, b| {
            mem(b)
                .cmp(&mem(a))
                .then(a.key.cmp(&b.key))
                .then(a.instance.cmp(&b.instance))
                .then(a.db.cmp(&b.db))
        });
        v
    };
    let mut by_members: Vec<&SynthKey> = keys.iter().collect();
    by_members.sort_by(|a, b| {
        b.member_count
            .cmp(&a.member_count)
            .then(a.key.cmp(&b.key))
            .then(a.instance.cmp(&b.instance))
            .then(a.db.cmp(&b.db))
    });
    let is_big = |k: &&SynthKey| {
        if k.r#type == "string" {
            mem(k) > BIG_STRING_BYTES
        } else {
            mem(k) > BIG_OTHER_BYTES || k.member_count > BIG_MEMBERS
        }
    };
    let big: Vec<&SynthKey> = by_size.iter().copied().filter(is_big).collect();
    let mut big_agg = Agg::default();
    for k in &big {
        big_agg.add(k.rdb_size, k.mem_size, k.member_count);
    }

    let ids = [
        "no_ttl", "expired", "lt_1h", "1h_24h", "1d_7d", "7d_30d", "gt_30d",
    ];
    let mut buckets: Vec<BucketRow> = ids
        .iter()
        .map(|id| BucketRow {
            id: id.to_string(),
            agg: Agg::default(),
        })
        .collect();
    for k in keys {
        let i = match k.ttl_ms {
            None => 0,
            Some(t) if t <= 0 => 1,
            Some(t) if t < H => 2,
            Some(t) if t < DAY => 3,
            Some(t) if t < 7 * DAY => 4,
            Some(t) if t < 30 * DAY => 5,
            Some(_) => 6,
        };
        buckets[i].agg.add(k.rdb_size, k.mem_size, k.member_count);
    }
    let mut no_ttl_nodes: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].no_ttl.mem_size > 0)
        .collect();
    no_ttl_nodes.sort_by(|&a, &b| {
        nodes[b]
            .no_ttl
            .mem_size
            .cmp(&nodes[a].no_ttl.mem_size)
            .then(prefixes[a].cmp(&prefixes[b]))
    });
    no_ttl_nodes.truncate(top);

    let instances = by_inst.len() as u64;
    let mut slot_rows: Vec<SlotRow> = slots
        .iter()
        .map(|(&slot, (a, inst))| SlotRow {
            kind: "redis".into(),
            slot,
            instances: inst.len() as u64,
            agg: *a,
        })
        .collect();
    let mut top_bytes = slot_rows.clone();
    top_bytes.sort_by(|a, b| {
        b.agg
            .mem_size
            .cmp(&a.agg.mem_size)
            .then(a.kind.cmp(&b.kind))
            .then(a.slot.cmp(&b.slot))
    });
    top_bytes.truncate(TOP_SLOTS);
    slot_rows.sort_by(|a, b| {
        b.agg
            .keys
            .cmp(&a.agg.keys)
            .then(a.kind.cmp(&b.kind))
            .then(a.slot.cmp(&b.slot))
    });
    slot_rows.truncate(TOP_SLOTS);
    let shared_slots: Vec<SharedSlot> = slots
        .iter()
        .filter(|(_, (_, inst))| inst.len() > 1)
        .map(|(&slot, (_, inst))| SharedSlot {
            kind: "redis".into(),
            slot,
            instances: inst
                .iter()
                .map(|(name, a)| InstanceRow {
                    instance: name.to_string(),
                    agg: *a,
                })
                .collect(),
        })
        .collect();

    let dbs: BTreeSet<u64> = keys.iter().map(|k| k.db).collect();
    let mut type_rows: Vec<TypeRow> = by_type
        .iter()
        .map(|(t, a)| TypeRow {
            r#type: t.to_string(),
            agg: *a,
        })
        .collect();
    type_rows.sort_by(|a, b| {
        b.agg
            .mem_size
            .cmp(&a.agg.mem_size)
            .then(a.r#type.cmp(&b.r#type))
    });
    let mut te_rows: Vec<TypeEncodingRow> = by_te
        .iter()
        .map(|((t, e), a)| TypeEncodingRow {
            r#type: t.to_string(),
            encoding: e.to_string(),
            agg: *a,
        })
        .collect();
    te_rows.sort_by(|a, b| {
        b.agg
            .mem_size
            .cmp(&a.agg.mem_size)
            .then(a.r#type.cmp(&b.r#type))
            .then(a.encoding.cmp(&b.encoding))
    });

    let mut data = ReportData {
        format_version: FORMAT_VERSION,
        generator: "rdbinsight 0.1.0".into(),
        cluster: cluster.into(),
        batch: BATCH.into(),
        params,
        memory: Memory {
            requested: "mem".into(),
            measure: "mem".into(),
            note: None,
            keys_without_mem_size: totals.mem_missing,
            instances: by_inst
                .iter()
                .enumerate()
                .map(|(i, (name, a))| {
                    // The first instance has no summary stored; the others do, one of them
                    // with an approximate model.
                    let tables = 1u64 << (20 + i);
                    InstanceMemory {
                        instance: name.to_string(),
                        summary: i > 0,
                        model: (i > 0).then(|| format!("redis-7.{} jemalloc", i + 1)),
                        approximate: i == 2,
                        rdb_server: (i > 0).then(|| format!("redis 7.{}.0", i + 1)),
                        mem_size: a.mem_size,
                        keys_without_mem_size: a.mem_missing,
                        keyspace_tables: (i > 0).then_some(tables),
                        keys_and_tables: (i > 0).then_some(a.mem_size + tables),
                        used_mem: (i > 0).then(|| (a.mem_size + tables) / 10 * 11),
                    }
                })
                .collect(),
        },
        totals: Totals {
            agg: totals,
            instances,
            dbs: dbs.len() as u64,
            with_ttl,
        },
        by_type: type_rows,
        by_type_encoding: te_rows,
        by_db: by_db.iter().map(|(&db, a)| DbRow { db, agg: *a }).collect(),
        by_instance: by_inst
            .iter()
            .map(|(i, a)| InstanceRow {
                instance: i.to_string(),
                agg: *a,
            })
            .collect(),
        top_keys_by_size: by_size.iter().take(top).map(|k| key_row(k)).collect(),
        top_keys_by_members: by_members.iter().take(top).map(|k| key_row(k)).collect(),
        expiry: Expiry {
            buckets,
            no_ttl_prefixes: no_ttl_nodes
                .iter()
                .map(|&i| NoTtlPrefix {
                    node: i as u32,
                    prefix: nodes[i].prefix.clone(),
                    no_ttl: nodes[i].no_ttl,
                    all: nodes[i].agg,
                })
                .collect(),
        },
        prefix_tree: PrefixTree { nodes },
        cold: Cold {
            idle: histogram(
                &IDLE_BOUNDS,
                keys.iter()
                    .map(|k| (k.idle_seconds, k.rdb_size, k.mem_size, k.member_count)),
            ),
            freq: histogram(
                &FREQ_BOUNDS,
                keys.iter().map(|k| {
                    (
                        k.freq.map(u64::from),
                        k.rdb_size,
                        k.mem_size,
                        k.member_count,
                    )
                }),
            ),
        },
        outliers: Outliers {
            big_keys: big.iter().take(top).map(|k| key_row(k)).collect(),
            big_keys_total: big.len() as u64,
            big_keys_agg: big_agg,
        },
        balance: Balance {
            keys_max: by_inst.values().map(|a| a.keys).max().unwrap_or(0),
            rdb_size_max: by_inst.values().map(|a| a.rdb_size).max().unwrap_or(0),
            mem_size_max: by_inst.values().map(|a| a.mem_size).max().unwrap_or(0),
            keys_mean: if instances == 0 {
                0.0
            } else {
                totals.keys as f64 / instances as f64
            },
            rdb_size_mean: if instances == 0 {
                0.0
            } else {
                totals.rdb_size as f64 / instances as f64
            },
            mem_size_mean: if instances == 0 {
                0.0
            } else {
                totals.mem_size as f64 / instances as f64
            },
            top_slots_by_bytes: top_bytes,
            top_slots_by_keys: slot_rows,
            shared_slots,
        },
        recommendations: Vec::new(),
        changes: None,
    };
    // The page shows what the JSON says; the report decides it from the sections above.
    data.recommendations = rdbinsight::report::advice::recommendations(&data);
    data
}
