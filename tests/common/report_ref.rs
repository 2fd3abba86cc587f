//! A naive, independent restatement of the report for tests: every section computed
//! from the records by brute force (full sorts, every prefix of every key tried), written as
//! JSON by hand. Shares no code with `src/report`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{Value, json};

/// The most bytes of a key the report shows, and the longest prefix-tree node.
pub const SHOWN: usize = 4096;

/// The SHA-256 of `b`, lowercase hex.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// How the report shows a key: as [`key_text`] up to [`SHOWN`] bytes; a longer key by its
/// first [`SHOWN`] bytes with `len` and `sha256`.
pub fn key_json(b: &[u8]) -> Value {
    if b.len() <= SHOWN {
        return key_text(b);
    }
    let mut v = key_text(&b[..SHOWN]);
    v["len"] = json!(b.len());
    v["sha256"] = json!(sha256_hex(b));
    v
}

/// The report's key order: by the first [`SHOWN`] bytes, then length, then SHA-256.
pub fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let shown = |k: &[u8]| k[..k.len().min(SHOWN)].to_vec();
    shown(a)
        .cmp(&shown(b))
        .then(a.len().cmp(&b.len()))
        .then_with(|| sha256_hex(a).cmp(&sha256_hex(b)))
}

/// One stored row, as the tests read it back from `into-jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub instance: String,
    pub db: u64,
    pub key: Vec<u8>,
    pub rtype: String,
    pub member_count: u64,
    pub rdb_size: u64,
    /// `None`: no memory model applied (module values).
    pub mem_size: Option<u64>,
    pub encoding: String,
    /// Unix ms; `None` without expiry (or one JSONL cannot show, i.e. absurd).
    pub expire_ms: Option<i64>,
    pub idle_seconds: Option<u64>,
    pub freq: Option<u64>,
    pub codis_slot: Option<u64>,
    pub redis_slot: Option<u64>,
}

/// Read `into-jsonl` output.
pub fn read_jsonl(path: &std::path::Path) -> Vec<Rec> {
    let text = std::fs::read_to_string(path).expect("read jsonl");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let key = match v.get("key_base64") {
                Some(b) => base64::engine::general_purpose::STANDARD
                    .decode(b.as_str().expect("base64 text"))
                    .expect("base64"),
                None => v["key"].as_str().expect("key").as_bytes().to_vec(),
            };
            let expire_ms = v["expire_at"].as_str().map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .expect("rfc3339")
                    .timestamp_millis()
            });
            Rec {
                instance: v["instance"].as_str().expect("instance").into(),
                db: v["db"].as_u64().expect("db"),
                key,
                rtype: v["type"].as_str().expect("type").into(),
                member_count: v["member_count"].as_u64().expect("member_count"),
                rdb_size: v["rdb_size"].as_u64().expect("rdb_size"),
                mem_size: v["mem_size"].as_u64(),
                encoding: v["encoding"].as_str().expect("encoding").into(),
                expire_ms,
                idle_seconds: v["idle_seconds"].as_u64(),
                freq: v["freq"].as_u64(),
                codis_slot: v["codis_slot"].as_u64(),
                redis_slot: v["redis_slot"].as_u64(),
            }
        })
        .collect()
}

/// The display form of key bytes: UTF-8, with `\xNN` for invalid bytes and control
/// characters, `\\` for a backslash; base64 when anything was escaped.
pub fn key_text(b: &[u8]) -> Value {
    let mut out = String::new();
    let mut escaped = false;
    let mut rest = b;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => (
                std::str::from_utf8(&rest[..e.valid_up_to()]).expect("valid part"),
                e.error_len().unwrap_or(rest.len() - e.valid_up_to()),
            ),
        };
        for c in valid.chars() {
            if c == '\\' {
                out.push_str("\\\\");
                escaped = true;
            } else if (c as u32) < 0x20 || c as u32 == 0x7f {
                out.push_str(&format!("\\x{:02x}", c as u32));
                escaped = true;
            } else {
                out.push(c);
            }
        }
        let bad_bytes = &rest[valid.len()..valid.len() + bad];
        for x in bad_bytes {
            out.push_str(&format!("\\x{x:02x}"));
            escaped = true;
        }
        rest = &rest[valid.len() + bad..];
    }
    if escaped {
        json!({"text": out, "base64": base64::engine::general_purpose::STANDARD.encode(b)})
    } else {
        json!({"text": out})
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub keys: u64,
    pub rdb_size: u64,
    pub mem_size: u64,
    pub mem_missing: u64,
    pub member_count: u64,
}

impl Sums {
    pub fn add(&mut self, r: &Rec) {
        self.add_key(r.rdb_size, r.mem_size, r.member_count);
    }
    fn add_key(&mut self, rdb_size: u64, mem_size: Option<u64>, member_count: u64) {
        self.keys += 1;
        self.rdb_size += rdb_size;
        match mem_size {
            Some(m) => self.mem_size += m,
            None => self.mem_missing += 1,
        }
        self.member_count += member_count;
    }
    /// The measure's sum (`mem` or `rdb`).
    pub fn measured(&self, measure: &str) -> u64 {
        if measure == "mem" {
            self.mem_size
        } else {
            self.rdb_size
        }
    }
    pub fn of<'a>(recs: impl IntoIterator<Item = &'a Rec>) -> Sums {
        let mut s = Sums::default();
        for r in recs {
            s.add(r);
        }
        s
    }
    pub fn json(&self) -> Value {
        self.flat(json!({}))
    }
    /// Merge into an object (the report flattens sums into rows).
    pub fn flat(&self, mut v: Value) -> Value {
        let o = v.as_object_mut().expect("object");
        o.insert("keys".into(), json!(self.keys));
        o.insert("rdb_size".into(), json!(self.rdb_size));
        o.insert("mem_size".into(), json!(self.mem_size));
        if self.mem_missing > 0 {
            o.insert("mem_missing".into(), json!(self.mem_missing));
        }
        o.insert("member_count".into(), json!(self.member_count));
        v
    }
}

pub const TYPES: [&str; 7] = ["string", "list", "set", "zset", "hash", "stream", "module"];

/// What the prefix tree needs per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PKey {
    pub key: Vec<u8>,
    pub rdb_size: u64,
    pub mem_size: Option<u64>,
    pub member_count: u64,
    pub rtype: usize,
    pub has_ttl: bool,
}

/// A node of the reference tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefNode {
    pub prefix: Vec<u8>,
    pub parent: Option<usize>,
    pub is_key: bool,
    pub all: Sums,
    pub no_ttl: Sums,
    pub by_type: [u64; 7],
    pub by_type_mem: [u64; 7],
}

type NodeSums = (Sums, Sums, [u64; 7], [u64; 7]);

fn sums_of(keys: &[&PKey]) -> NodeSums {
    let (mut all, mut no_ttl, mut by_type, mut by_type_mem) =
        (Sums::default(), Sums::default(), [0u64; 7], [0u64; 7]);
    for k in keys {
        all.add_key(k.rdb_size, k.mem_size, k.member_count);
        if !k.has_ttl {
            no_ttl.add_key(k.rdb_size, k.mem_size, k.member_count);
        }
        by_type[k.rtype] += k.rdb_size;
        by_type_mem[k.rtype] += k.mem_size.unwrap_or(0);
    }
    (all, no_ttl, by_type, by_type_mem)
}

/// The prefix tree by its definition: every prefix of every key is tried; P is a node when the
/// keys starting with P hold >= `threshold` bytes of `measure` (`mem`: `mem_size`, `rdb`) and their longest common prefix is P. With
/// `delimiters`, each node is cut after its last delimiter and the node for a cut prefix C holds
/// the keys starting with C. Parents: the longest other node that is a prefix.
pub fn prefix_tree(
    keys: &[PKey],
    threshold: u64,
    measure: &str,
    delimiters: Option<&[Vec<u8>]>,
) -> Vec<RefNode> {
    if threshold == 0 {
        return Vec::new();
    }
    // Keys count by their first SHOWN bytes; `is_key` below looks at the whole keys.
    let whole = keys;
    let cut: Vec<PKey> = keys
        .iter()
        .map(|k| PKey {
            key: k.key[..k.key.len().min(SHOWN)].to_vec(),
            ..k.clone()
        })
        .collect();
    let keys = &cut[..];
    // Inserted one by one: collecting would hold every prefix of every key at once (the
    // sum of the key lengths squared: hundreds of MB with 4 KiB keys).
    let mut candidates: BTreeSet<Vec<u8>> = BTreeSet::new();
    for k in keys {
        for n in 0..=k.key.len() {
            if !candidates.contains(&k.key[..n]) {
                candidates.insert(k.key[..n].to_vec());
            }
        }
    }
    let mut prefixes: BTreeSet<Vec<u8>> = BTreeSet::new();
    for p in &candidates {
        let under: Vec<&PKey> = keys.iter().filter(|k| k.key.starts_with(p)).collect();
        let bytes: u64 = under
            .iter()
            .map(|k| {
                if measure == "mem" {
                    k.mem_size.unwrap_or(0)
                } else {
                    k.rdb_size
                }
            })
            .sum();
        if bytes < threshold {
            continue;
        }
        let first = &under[0].key;
        let lcp = under
            .iter()
            .map(|k| first.iter().zip(&k.key).take_while(|(a, b)| a == b).count())
            .min()
            .unwrap_or(0);
        if lcp == p.len() {
            prefixes.insert(p.clone());
        }
    }
    if let Some(ds) = delimiters {
        prefixes = prefixes
            .into_iter()
            .map(|p| {
                let cut = (0..=p.len())
                    .rev()
                    .find(|&end| ds.iter().any(|d| p[..end].ends_with(d) && !d.is_empty()))
                    .unwrap_or(0);
                p[..cut].to_vec()
            })
            .collect();
    }
    let list: Vec<Vec<u8>> = prefixes.into_iter().collect();
    list.iter()
        .map(|p| {
            let under: Vec<&PKey> = keys.iter().filter(|k| k.key.starts_with(p)).collect();
            let (all, no_ttl, by_type, by_type_mem) = sums_of(&under);
            let parent = list
                .iter()
                .enumerate()
                .filter(|(_, q)| q.len() < p.len() && p.starts_with(q))
                .max_by_key(|(_, q)| q.len())
                .map(|(i, _)| i);
            RefNode {
                prefix: p.clone(),
                parent,
                is_key: whole.iter().any(|k| &k.key == p),
                all,
                no_ttl,
                by_type,
                by_type_mem,
            }
        })
        .collect()
}

pub fn node_json(n: &RefNode) -> Value {
    let (t, m) = (&n.by_type, &n.by_type_mem);
    n.all.flat(json!({
        "parent": n.parent,
        "prefix": key_text(&n.prefix),
        "prefix_len": n.prefix.len(),
        "is_key": n.is_key,
        "no_ttl": n.no_ttl.json(),
        "rdb_size_by_type": {"string": t[0], "list": t[1], "set": t[2], "zset": t[3],
                             "hash": t[4], "stream": t[5], "module": t[6]},
        "mem_size_by_type": {"string": m[0], "list": m[1], "set": m[2], "zset": m[3],
                             "hash": m[4], "stream": m[5], "module": m[6]},
    }))
}

/// What the report is made with.
pub struct RefParams<'a> {
    pub cluster: &'a str,
    pub batch_ns: i64,
    pub top: usize,
    /// The percentage × 1,000,000.
    pub micro_pct: u64,
    /// As the report normalizes it.
    pub pct_text: &'a str,
    pub delimiter: Option<&'a str>,
    /// `--measure`: `mem` or `rdb`.
    pub measure: &'a str,
    /// The instance summaries the store holds (`record::InstanceSummary` JSON), by instance.
    pub summaries: BTreeMap<String, Value>,
}

const IDLE: [u64; 8] = [60, 600, 3600, 21600, 86400, 604800, 2592000, 7776000];
const FREQ: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn key_row(r: &Rec, batch_ms: i64) -> Value {
    json!({
        "key": key_json(&r.key),
        "instance": r.instance,
        "db": r.db,
        "type": r.rtype,
        "encoding": r.encoding,
        "rdb_size": r.rdb_size,
        "mem_size": r.mem_size,
        "member_count": r.member_count,
        "expire_at": r.expire_ms.map(rfc3339_ms),
        "ttl_ms": r.expire_ms.map(|e| e - batch_ms),
        "idle_seconds": r.idle_seconds,
        "freq": r.freq,
    })
}

fn histogram(recs: &[Rec], bounds: &[u64], field: impl Fn(&Rec) -> Option<u64>) -> Value {
    let with: Vec<&Rec> = recs.iter().filter(|r| field(r).is_some()).collect();
    let mut buckets = Vec::new();
    for i in 0..=bounds.len() {
        let lo = if i == 0 { 0 } else { bounds[i - 1] };
        let hi = bounds.get(i).copied();
        let inside = with.iter().copied().filter(|r| {
            let v = field(r).expect("filtered");
            v >= lo && hi.is_none_or(|h| v < h)
        });
        buckets.push(Sums::of(inside).flat(json!({"lo": lo, "hi": hi})));
    }
    json!({"with_field": Sums::of(with.iter().copied()).json(), "buckets": buckets})
}

/// The whole report document.
pub fn report(recs: &[Rec], p: &RefParams<'_>) -> Value {
    let batch_ms = p.batch_ns.div_euclid(1_000_000);
    let total = Sums::of(recs);
    // The measure: as asked, but rdb when no key has a mem_size.
    let ms = if p.measure == "mem" && total.keys > 0 && total.mem_missing == total.keys {
        "rdb"
    } else {
        p.measure
    };
    let measure = |r: &Rec| -> u64 {
        if ms == "mem" {
            r.mem_size.unwrap_or(0)
        } else {
            r.rdb_size
        }
    };
    let threshold = if total.measured(ms) == 0 {
        0
    } else {
        ((u128::from(total.measured(ms)) * u128::from(p.micro_pct) / 100_000_000) as u64).max(1)
    };
    let instances: BTreeSet<&str> = recs.iter().map(|r| r.instance.as_str()).collect();
    let dbs: BTreeSet<u64> = recs.iter().map(|r| r.db).collect();
    let with_ttl = Sums::of(recs.iter().filter(|r| r.expire_ms.is_some()));

    let mut by_type: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    let mut by_te: BTreeMap<(&str, &str), Vec<&Rec>> = BTreeMap::new();
    let mut by_db: BTreeMap<u64, Vec<&Rec>> = BTreeMap::new();
    let mut by_inst: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    for r in recs {
        by_type.entry(&r.rtype).or_default().push(r);
        by_te.entry((&r.rtype, &r.encoding)).or_default().push(r);
        by_db.entry(r.db).or_default().push(r);
        by_inst.entry(&r.instance).or_default().push(r);
    }
    let mut types: Vec<(&str, Sums)> = by_type
        .iter()
        .map(|(t, v)| (*t, Sums::of(v.iter().copied())))
        .collect();
    types.sort_by(|a, b| b.1.measured(ms).cmp(&a.1.measured(ms)).then(a.0.cmp(b.0)));
    let mut tes: Vec<((&str, &str), Sums)> = by_te
        .iter()
        .map(|(t, v)| (*t, Sums::of(v.iter().copied())))
        .collect();
    tes.sort_by(|a, b| b.1.measured(ms).cmp(&a.1.measured(ms)).then(a.0.cmp(&b.0)));

    fn order(metric: impl Fn(&Rec) -> u64) -> impl Fn(&&Rec, &&Rec) -> std::cmp::Ordering {
        move |a: &&Rec, b: &&Rec| {
            metric(b)
                .cmp(&metric(a))
                .then(key_order(&a.key, &b.key))
                .then(a.instance.cmp(&b.instance))
                .then(a.db.cmp(&b.db))
        }
    }
    let mut by_size: Vec<&Rec> = recs.iter().collect();
    by_size.sort_by(order(measure));
    let mut by_members: Vec<&Rec> = recs.iter().collect();
    by_members.sort_by(order(|r: &Rec| r.member_count));
    let big: Vec<&Rec> = by_size
        .iter()
        .copied()
        .filter(|r| {
            if r.rtype == "string" {
                measure(r) > 1 << 20
            } else {
                measure(r) > 1 << 30 || r.member_count > 1_000_000
            }
        })
        .collect();

    let pkeys: Vec<PKey> = recs
        .iter()
        .map(|r| PKey {
            key: r.key.clone(),
            rdb_size: r.rdb_size,
            mem_size: r.mem_size,
            member_count: r.member_count,
            rtype: TYPES
                .iter()
                .position(|t| *t == r.rtype)
                .expect("known type"),
            has_ttl: r.expire_ms.is_some(),
        })
        .collect();
    let delims: Option<Vec<Vec<u8>>> = p
        .delimiter
        .map(|d| d.chars().map(|c| c.to_string().into_bytes()).collect());
    let nodes = prefix_tree(&pkeys, threshold, ms, delims.as_deref());

    let ttl_bucket = |r: &Rec| -> usize {
        match r.expire_ms {
            None => 0,
            Some(e) => {
                let ttl = e - batch_ms;
                if ttl <= 0 {
                    1
                } else if ttl < 3_600_000 {
                    2
                } else if ttl < 86_400_000 {
                    3
                } else if ttl < 7 * 86_400_000 {
                    4
                } else if ttl < 30 * 86_400_000 {
                    5
                } else {
                    6
                }
            }
        }
    };
    let bucket_ids = [
        "no_ttl", "expired", "lt_1h", "1h_24h", "1d_7d", "7d_30d", "gt_30d",
    ];
    let buckets: Vec<Value> = bucket_ids
        .iter()
        .enumerate()
        .map(|(i, id)| Sums::of(recs.iter().filter(|r| ttl_bucket(r) == i)).flat(json!({"id": id})))
        .collect();
    let mut no_ttl: Vec<(usize, &RefNode)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.no_ttl.measured(ms) > 0)
        .collect();
    no_ttl.sort_by(|a, b| {
        b.1.no_ttl
            .measured(ms)
            .cmp(&a.1.no_ttl.measured(ms))
            .then(a.1.prefix.cmp(&b.1.prefix))
    });
    no_ttl.truncate(p.top);

    // Slots.
    let mut slots: BTreeMap<(&str, u64), BTreeMap<&str, Vec<&Rec>>> = BTreeMap::new();
    for r in recs {
        for (kind, slot) in [("redis", r.redis_slot), ("codis", r.codis_slot)] {
            if let Some(s) = slot {
                slots
                    .entry((kind, s))
                    .or_default()
                    .entry(&r.instance)
                    .or_default()
                    .push(r);
            }
        }
    }
    let slot_rows: Vec<(&str, u64, u64, Sums)> = slots
        .iter()
        .map(|((k, s), insts)| {
            let all = Sums::of(insts.values().flatten().copied());
            (*k, *s, insts.len() as u64, all)
        })
        .collect();
    let slot_json = |v: &[(&str, u64, u64, Sums)]| -> Vec<Value> {
        v.iter()
            .take(20)
            .map(|(k, s, n, sums)| sums.flat(json!({"kind": k, "slot": s, "instances": n})))
            .collect()
    };
    // The slot rows by `metric` desc, then kind and slot.
    let sorted_by = |metric: &dyn Fn(&Sums) -> u64| {
        let mut v = slot_rows.clone();
        v.sort_by(|a, b| {
            metric(&b.3)
                .cmp(&metric(&a.3))
                .then(a.0.cmp(b.0))
                .then(a.1.cmp(&b.1))
        });
        v
    };
    let sb = sorted_by(&|s: &Sums| s.measured(ms));
    let sk = sorted_by(&|s: &Sums| s.keys);
    let shared: Vec<Value> = slots
        .iter()
        .filter(|(_, insts)| insts.len() > 1)
        .map(|((k, s), insts)| {
            let list: Vec<Value> = insts
                .iter()
                .map(|(i, v)| Sums::of(v.iter().copied()).flat(json!({"instance": i})))
                .collect();
            json!({"kind": k, "slot": s, "instances": list})
        })
        .collect();
    let inst_sums: Vec<Sums> = by_inst
        .values()
        .map(|v| Sums::of(v.iter().copied()))
        .collect();
    let n = instances.len();
    let mean = |x: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };

    let mem_instances: Vec<Value> = by_inst
        .iter()
        .map(|(i, v)| {
            let sums = Sums::of(v.iter().copied());
            let s = p.summaries.get(*i);
            let field = |name: &str| s.map_or(Value::Null, |s| s[name].clone());
            let tables = field("keyspace_tables").as_u64();
            json!({
                "instance": i,
                "summary": s.is_some(),
                "model": field("memory_model"),
                "approximate": s.is_some_and(|s| s["memory_approximate"] == json!(true)),
                "rdb_server": field("rdb_server"),
                "mem_size": sums.mem_size,
                "keys_without_mem_size": sums.mem_missing,
                "keyspace_tables": tables,
                "keys_and_tables": tables.map(|t| t + sums.mem_size),
                "used_mem": field("used_mem"),
            })
        })
        .collect();
    let note = (ms != p.measure).then(|| {
        format!(
            "none of the batch's {} keys has a mem_size (it was stored before rdbinsight \
             measured memory, or by a store without the column): every ranking, the prefix \
             tree and the big keys use rdb_size, the serialized size, instead",
            total.keys
        )
    });

    // Recommendations, each from the records (the listed big keys are the first `top`).
    let listed: Vec<&Rec> = big.iter().take(p.top).copied().collect();
    let at_least = big.len() > listed.len();
    let mut recs_json: Vec<Value> = Vec::new();
    let strings: Vec<&&Rec> = listed.iter().filter(|r| r.rtype == "string").collect();
    if let Some(s) = strings.first() {
        recs_json.push(
            json!({"kind": "big-strings", "keys": strings.len(), "at_least": at_least,
            "largest": key_json(&s.key), "largest_instance": s.instance,
            "largest_bytes": measure(s)}),
        );
    }
    let colls: Vec<&&Rec> = listed.iter().filter(|r| r.rtype != "string").collect();
    if let Some(c) = colls.first() {
        recs_json.push(json!({"kind": "huge-collections", "keys": colls.len(),
            "at_least": at_least, "largest": key_json(&c.key), "largest_type": c.rtype,
            "largest_members": c.member_count}));
    }
    for (t, e) in [("hash", "raw"), ("set", "raw"), ("zset", "skip_list")] {
        let in_group = |r: &Rec| r.rtype == t && r.encoding == e;
        let left = listed.iter().filter(|r| in_group(r)).count();
        let rest: Vec<&Rec> = recs
            .iter()
            .filter(|r| in_group(r) && !listed.iter().any(|l| std::ptr::eq(*l, *r)))
            .collect();
        let members: u64 = rest.iter().map(|r| r.member_count).sum();
        // At most 128 members on average.
        if !rest.is_empty() && members <= 128 * rest.len() as u64 {
            recs_json.push(json!({"kind": format!("small-{t}"), "encoding": e,
                "keys": rest.len(), "bytes": rest.iter().map(|r| measure(r)).sum::<u64>(),
                "member_count": members, "big_keys_left_out": left}));
        }
    }
    let total_m = total.measured(ms);
    let nt: Vec<&Rec> = recs.iter().filter(|r| r.expire_ms.is_none()).collect();
    let nt_bytes: u64 = nt.iter().map(|r| measure(r)).sum();
    if total_m > 0 && 2 * nt_bytes >= total_m {
        let prefix = no_ttl.iter().find(|(_, n)| !n.prefix.is_empty());
        recs_json.push(
            json!({"kind": "no-ttl", "keys": nt.len(), "bytes": nt_bytes,
            "total_bytes": total_m, "prefix": prefix.map(|(_, n)| key_text(&n.prefix)),
            "prefix_bytes": prefix.map_or(0, |(_, n)| n.no_ttl.measured(ms))}),
        );
    }
    let expired: Vec<&Rec> = recs.iter().filter(|r| ttl_bucket(r) == 1).collect();
    if !expired.is_empty() {
        recs_json.push(json!({"kind": "expired", "keys": expired.len(),
            "bytes": expired.iter().map(|r| measure(r)).sum::<u64>()}));
    }
    if dbs.len() > 1 {
        recs_json.push(json!({"kind": "many-dbs", "dbs": dbs.iter().collect::<Vec<_>>()}));
    }
    if by_inst.len() > 1 && total_m > 0 {
        let sums: Vec<(&str, u64)> = by_inst
            .iter()
            .map(|(i, v)| (*i, v.iter().map(|r| measure(r)).sum::<u64>()))
            .collect();
        let max = sums.iter().map(|s| s.1).max().unwrap_or(0);
        let first = sums.iter().find(|s| s.1 == max).expect("an instance");
        // max / (total / n) >= 1.5
        if u128::from(max) * sums.len() as u128 * 2 >= u128::from(total_m) * 3 {
            recs_json.push(
                json!({"kind": "imbalance", "instance": first.0, "bytes": max,
                "total_bytes": total_m, "instances": sums.len()}),
            );
        }
    }
    if !shared.is_empty() {
        recs_json.push(json!({"kind": "shared-slots", "slots": shared.len()}));
    }
    let idle_bytes: u64 = recs
        .iter()
        .filter(|r| r.idle_seconds.is_some())
        .map(&measure)
        .sum();
    let old: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.idle_seconds.is_some_and(|s| s >= 30 * 86_400))
        .collect();
    let old_bytes: u64 = old.iter().map(|r| measure(r)).sum();
    if idle_bytes > 0 && !old.is_empty() && 10 * old_bytes >= idle_bytes {
        recs_json.push(
            json!({"kind": "cold", "keys": old.len(), "bytes": old_bytes,
            "with_idle_bytes": idle_bytes}),
        );
    }

    json!({
        "format_version": 4,
        "generator": format!("rdbinsight {}", env!("CARGO_PKG_VERSION")),
        "cluster": p.cluster,
        "batch": chrono::DateTime::from_timestamp_nanos(p.batch_ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "params": {
            "top": p.top,
            "prefix_threshold_pct": p.pct_text,
            "prefix_threshold_bytes": threshold,
            "delimiter": p.delimiter,
            "big_string_bytes": 1u64 << 20,
            "big_other_bytes": 1u64 << 30,
            "big_members": 1_000_000,
        },
        "memory": {
            "requested": p.measure,
            "measure": ms,
            "note": note,
            "keys_without_mem_size": total.mem_missing,
            "instances": mem_instances,
        },
        "totals": total.flat(json!({
            "instances": instances.len(),
            "dbs": dbs.len(),
            "with_ttl": with_ttl.json(),
        })),
        "by_type": types.iter().map(|(t, s)| s.flat(json!({"type": t}))).collect::<Vec<_>>(),
        "by_type_encoding": tes.iter()
            .map(|((t, e), s)| s.flat(json!({"type": t, "encoding": e})))
            .collect::<Vec<_>>(),
        "by_db": by_db.iter()
            .map(|(d, v)| Sums::of(v.iter().copied()).flat(json!({"db": d})))
            .collect::<Vec<_>>(),
        "by_instance": by_inst.iter()
            .map(|(i, v)| Sums::of(v.iter().copied()).flat(json!({"instance": i})))
            .collect::<Vec<_>>(),
        "prefix_tree": {"nodes": nodes.iter().map(node_json).collect::<Vec<_>>()},
        "top_keys_by_size": by_size.iter().take(p.top).map(|r| key_row(r, batch_ms)).collect::<Vec<_>>(),
        "top_keys_by_members": by_members.iter().take(p.top).map(|r| key_row(r, batch_ms)).collect::<Vec<_>>(),
        "expiry": {
            "buckets": buckets,
            "no_ttl_prefixes": no_ttl.iter().map(|(i, n)| json!({
                "node": i,
                "prefix": key_text(&n.prefix),
                "no_ttl": n.no_ttl.json(),
                "all": n.all.json(),
            })).collect::<Vec<_>>(),
        },
        "cold": {
            "idle": histogram(recs, &IDLE, |r| r.idle_seconds),
            "freq": histogram(recs, &FREQ, |r| r.freq),
        },
        "outliers": {
            "big_keys": big.iter().take(p.top).map(|r| key_row(r, batch_ms)).collect::<Vec<_>>(),
            "big_keys_total": big.len(),
            "big_keys_agg": Sums::of(big.iter().copied()).json(),
        },
        "balance": {
            "keys_max": inst_sums.iter().map(|s| s.keys).max().unwrap_or(0),
            "rdb_size_max": inst_sums.iter().map(|s| s.rdb_size).max().unwrap_or(0),
            "mem_size_max": inst_sums.iter().map(|s| s.mem_size).max().unwrap_or(0),
            "keys_mean": mean(total.keys),
            "rdb_size_mean": mean(total.rdb_size),
            "mem_size_mean": mean(total.mem_size),
            "top_slots_by_bytes": slot_json(&sb),
            "top_slots_by_keys": slot_json(&sk),
            "shared_slots": shared,
        },
        "recommendations": recs_json,
    })
}

/// Compare section by section, so a failure names the section.
pub fn assert_same_report(got: &Value, want: &Value, what: &str) {
    let (g, w) = (
        got.as_object().expect("report object"),
        want.as_object().expect("report object"),
    );
    let keys: BTreeSet<&String> = g.keys().chain(w.keys()).collect();
    for k in keys {
        assert_eq!(
            g.get(k),
            w.get(k),
            "{what}: section '{k}' differs from the reference\n got: {}\nwant: {}",
            serde_json::to_string(&g.get(k)).unwrap_or_default(),
            serde_json::to_string(&w.get(k)).unwrap_or_default()
        );
    }
}

fn sums_json(s: &Sums) -> Value {
    let mut v = json!({"keys": s.keys, "rdb_size": s.rdb_size, "mem_size": s.mem_size,
                       "member_count": s.member_count});
    if s.mem_missing > 0 {
        v["mem_missing"] = json!(s.mem_missing);
    }
    v
}

fn agg_of(v: &Value) -> Sums {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Sums {
        keys: n("keys"),
        rdb_size: n("rdb_size"),
        mem_size: n("mem_size"),
        mem_missing: n("mem_missing"),
        member_count: n("member_count"),
    }
}

fn change_json(name: &str, c: &Sums, b: &Sums) -> Value {
    let d = |x: u64, y: u64| i128::from(x) - i128::from(y);
    json!({"name": name, "current": sums_json(c), "baseline": sums_json(b),
           "delta": {"keys": d(c.keys, b.keys), "rdb_size": d(c.rdb_size, b.rdb_size),
                     "mem_size": d(c.mem_size, b.mem_size),
                     "member_count": d(c.member_count, b.member_count)}})
}

fn prefix_bytes(kt: &Value) -> Vec<u8> {
    match kt.get("base64").and_then(Value::as_str) {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("base64"),
        None => kt["text"].as_str().expect("text").as_bytes().to_vec(),
    }
}

/// The `changes` part of `--baseline` by brute force: `cur`/`base` are the two batches'
/// records, `cur_report`/`base_report` their own reports (for the measure, the trees and the
/// expiry buckets, which the single-batch reference checks).
pub fn changes(
    cur: &[Rec],
    base: &[Rec],
    cur_report: &Value,
    base_report: &Value,
    top: usize,
) -> Value {
    let m = if cur_report["memory"]["measure"] == "mem" && base_report["memory"]["measure"] == "mem"
    {
        "mem"
    } else {
        "rdb"
    };
    let group = |recs: &[Rec], f: &dyn Fn(&Rec) -> (String, String)| {
        let mut g: BTreeMap<String, (String, Sums)> = BTreeMap::new();
        for r in recs {
            let (k, name) = f(r);
            g.entry(k).or_insert((name, Sums::default())).1.add(r);
        }
        g
    };
    let rows = |f: &dyn Fn(&Rec) -> (String, String)| -> Value {
        let (c, b) = (group(cur, f), group(base, f));
        let keys: BTreeSet<&String> = c.keys().chain(b.keys()).collect();
        Value::Array(
            keys.into_iter()
                .map(|k| {
                    let name = c
                        .get(k)
                        .or(b.get(k))
                        .map(|x| x.0.clone())
                        .unwrap_or_default();
                    let z = Sums::default();
                    change_json(
                        &name,
                        c.get(k).map_or(&z, |x| &x.1),
                        b.get(k).map_or(&z, |x| &x.1),
                    )
                })
                .collect(),
        )
    };
    let total = |recs: &[Rec]| {
        let mut s = Sums::default();
        recs.iter().for_each(|r| s.add(r));
        s
    };
    let bucket = |rep: &Value, id: &str| {
        agg_of(
            rep["expiry"]["buckets"]
                .as_array()
                .expect("buckets")
                .iter()
                .find(|b| b["id"] == id)
                .expect("bucket"),
        )
    };
    // Prefixes: the union of both trees, sums by brute force.
    let mut union: BTreeMap<Vec<u8>, (bool, bool)> = BTreeMap::new();
    for (rep, side) in [(cur_report, 0), (base_report, 1)] {
        for n in rep["prefix_tree"]["nodes"].as_array().expect("nodes") {
            let e = union.entry(prefix_bytes(&n["prefix"])).or_default();
            if side == 0 {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
    }
    let under = |recs: &[Rec], p: &[u8]| {
        let mut s = Sums::default();
        recs.iter()
            .filter(|r| r.key.starts_with(p))
            .for_each(|r| s.add(r));
        s
    };
    let prefixes: Vec<(Vec<u8>, bool, bool, Sums, Sums)> = union
        .into_iter()
        .map(|(p, (ic, ib))| {
            let (c, b) = (under(cur, &p), under(base, &p));
            (p, ic, ib, c, b)
        })
        .collect();
    let delta = |c: &Sums, b: &Sums| i128::from(c.measured(m)) - i128::from(b.measured(m));
    let rank = |keep: &dyn Fn(&Sums, &Sums) -> bool, by: &dyn Fn(&Sums, &Sums) -> i128| {
        let mut v: Vec<(i128, usize)> = prefixes
            .iter()
            .enumerate()
            .filter(|(_, p)| keep(&p.3, &p.4))
            .map(|(i, p)| (by(&p.3, &p.4), i))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter()
            .take(top)
            .map(|x| json!(x.1))
            .collect::<Vec<_>>()
    };
    let bt = base_report_threshold(base_report, cur_report, m);
    let mut rel: Vec<usize> = (0..prefixes.len())
        .filter(|&i| {
            let (c, b) = (&prefixes[i].3, &prefixes[i].4);
            b.measured(m) > 0 && b.measured(m) >= bt.0 && delta(c, b) > 0
        })
        .collect();
    // As fractions, exactly: sort by current/baseline desc.
    rel.sort_by(|&x, &y| {
        let fx = (
            prefixes[x].3.measured(m) as u128,
            prefixes[x].4.measured(m) as u128,
        );
        let fy = (
            prefixes[y].3.measured(m) as u128,
            prefixes[y].4.measured(m) as u128,
        );
        (fy.0 * fx.1).cmp(&(fx.0 * fy.1)).then(x.cmp(&y))
    });
    // Keys: (db, key) summed over instances; type = the smallest name.
    let by_key = |recs: &[Rec]| {
        let mut g: BTreeMap<(Vec<u8>, u64), (Sums, String)> = BTreeMap::new();
        for r in recs {
            let e = g
                .entry((r.key.clone(), r.db))
                .or_insert((Sums::default(), r.rtype.clone()));
            e.0.add(r);
            if r.rtype < e.1 {
                e.1 = r.rtype.clone();
            }
        }
        g
    };
    let (ck, bk) = (by_key(cur), by_key(base));
    let all: BTreeSet<&(Vec<u8>, u64)> = ck.keys().chain(bk.keys()).collect();
    let mut type_changed = 0u64;
    let mut growth = Vec::new();
    let mut new = Vec::new();
    for k in all {
        let (c, b) = (ck.get(k), bk.get(k));
        let z = Sums::default();
        let (cs, bs) = (c.map_or(&z, |x| &x.0), b.map_or(&z, |x| &x.0));
        let changed = matches!((c, b), (Some(c), Some(b)) if c.1 != b.1);
        type_changed += u64::from(changed);
        let row = json!({"key": key_json(&k.0), "db": k.1,
            "type": c.map(|x| x.1.clone()).unwrap_or_default(),
            "baseline_type": b.map(|x| x.1.clone()),
            "type_changed": changed,
            "current": cs.measured(m), "baseline": bs.measured(m), "delta": delta(cs, bs)});
        let d = delta(cs, bs);
        if d > 0 {
            growth.push((d, k.clone(), row.clone()));
        }
        if b.is_none() && c.is_some() {
            new.push((i128::from(cs.measured(m)), k.clone(), row));
        }
    }
    let top_of = |mut v: Vec<(i128, (Vec<u8>, u64), Value)>| {
        v.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(key_order(&a.1.0, &b.1.0))
                .then(a.1.1.cmp(&b.1.1))
        });
        v.into_iter().take(top).map(|x| x.2).collect::<Vec<_>>()
    };
    let note = if m == cur_report["memory"]["measure"] && m == base_report["memory"]["measure"] {
        if m == "rdb" {
            cur_report["memory"]["note"]
                .clone()
                .as_str()
                .map(|s| json!(s))
                .or_else(|| base_report["memory"]["note"].as_str().map(|s| json!(s)))
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        }
    } else {
        json!(
            "one of the two batches has no mem_size (stored before the column existed): the \
             changes compare rdb_size, the keys' serialized size"
        )
    };
    json!({
        "baseline": base_report["batch"],
        "measure": m,
        "note": note,
        "baseline_prefix_threshold_bytes": bt.0,
        "current_prefix_threshold_bytes": bt.1,
        "totals": change_json("", &total(cur), &total(base)),
        "no_ttl": change_json("no_ttl", &bucket(cur_report, "no_ttl"), &bucket(base_report, "no_ttl")),
        "expired": change_json("expired", &bucket(cur_report, "expired"), &bucket(base_report, "expired")),
        "by_type": rows(&|r| (r.rtype.clone(), r.rtype.clone())),
        "by_db": rows(&|r| (format!("{:020}", r.db), r.db.to_string())),
        "by_instance": rows(&|r| (r.instance.clone(), r.instance.clone())),
        "keys_type_changed": type_changed,
        "prefixes": prefixes.iter().map(|(p, ic, ib, c, b)| {
            let d = |x: u64, y: u64| i128::from(x) - i128::from(y);
            json!({"prefix": key_text(p), "prefix_len": p.len(), "in_current": ic,
                   "in_baseline": ib, "current": sums_json(c), "baseline": sums_json(b),
                   "delta": {"keys": d(c.keys, b.keys), "rdb_size": d(c.rdb_size, b.rdb_size),
                             "mem_size": d(c.mem_size, b.mem_size),
                             "member_count": d(c.member_count, b.member_count)}})
        }).collect::<Vec<_>>(),
        "growth": rank(&|c, b| delta(c, b) > 0, &|c, b| delta(c, b)),
        "relative_growth": rel.into_iter().take(top).collect::<Vec<_>>(),
        "appeared": rank(&|_, b| b.keys == 0, &|c, _| i128::from(c.measured(m))),
        "vanished": rank(&|c, _| c.keys == 0, &|_, b| i128::from(b.measured(m))),
        "shrink": rank(&|c, b| delta(c, b) < 0, &|c, b| -delta(c, b)),
        "top_key_growth": top_of(growth),
        "top_new_keys": top_of(new),
    })
}

/// (baseline, current) prefix thresholds for the measure `m`: the reports' own when they use
/// `m`, else recomputed from their totals of `m` at the reports' percentage.
fn base_report_threshold(base: &Value, cur: &Value, m: &str) -> (u64, u64) {
    let t = |rep: &Value| {
        if rep["memory"]["measure"] == m {
            rep["params"]["prefix_threshold_bytes"]
                .as_u64()
                .expect("threshold")
        } else {
            let total = rep["totals"][if m == "mem" { "mem_size" } else { "rdb_size" }]
                .as_u64()
                .expect("total");
            let pct: f64 = rep["params"]["prefix_threshold_pct"]
                .as_str()
                .expect("pct")
                .parse()
                .expect("pct");
            let micro = (pct * 1_000_000.0).round() as u128;
            if total == 0 {
                0
            } else {
                ((u128::from(total) * micro / 100_000_000) as u64).max(1)
            }
        }
    };
    (t(base), t(cur))
}
