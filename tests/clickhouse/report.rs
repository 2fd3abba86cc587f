//! `rdbinsight report` end to end, through the real binary: crafted datasets written by real
//! `redis-server`s, dumped into Parquet, ClickHouse (the real engine) and JSON lines; the two
//! reports must be byte-identical, and equal to the report recomputed naively from the JSON
//! lines (`common::report_ref`, which shares no code with `src/report`).
//!
//! ClickHouse parts follow `clickhouse_output.rs`: `scripts/clickhouse-test-env.sh`
//! provides the engine; without `RDBINSIGHT_TEST_CLICKHOUSE_URL` the tests fail unless
//! `RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1` (then only the Parquet side runs, with a note).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use common::ch::{Shards, TestDb};
use common::cli::{run_measured, signal};
use common::codis::{FakeGroup, serve_topom, topom_json};
use common::redis::{RedisCluster, RedisServer, wait_until};
use common::report_ref::{self, Rec, RefParams};
use common::resp::{Reply, Resp};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rdbinsight");

/// The main crafted batch (the latest of cluster `crafted`), and two older ones.
const BATCH_M: &str = "2030-01-02T03:04:05.123456789Z";
const BATCH_L: &str = "2030-01-01T00:00:00Z";
const BATCH_F: &str = "2030-01-01T00:00:01Z";

fn ns(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("rfc3339")
        .timestamp_nanos_opt()
        .expect("in range")
}

fn slug(rfc3339: &str) -> String {
    chrono::DateTime::from_timestamp_nanos(ns(rfc3339))
        .format("%Y-%m-%d_%H-%M-%S%.9fZ")
        .to_string()
}

/// Run the binary with a clean environment (no inherited RDBINSIGHT_* or RUST_BACKTRACE) and
/// `env`, in `cwd` when given (where a report without `-o` lands).
fn run_in<S: AsRef<str>>(cwd: Option<&Path>, args: &[S], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args.iter().map(AsRef::as_ref)).env_clear();
    cmd.envs(env.iter().copied());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.output().expect("run rdbinsight")
}

fn rdbinsight(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_in(None, args, env)
}

fn ok<S: AsRef<str>>(args: &[S]) -> String {
    ok_in(None, args)
}

/// Run in `cwd`; asserts success, returns stderr.
fn ok_in<S: AsRef<str>>(cwd: Option<&Path>, args: &[S]) -> String {
    expect_run(cwd, args, true)
}

fn fails<S: AsRef<str>>(args: &[S]) -> String {
    expect_run(None, args, false)
}

/// Run; asserts that it succeeds (`success`) or fails; returns stderr.
fn expect_run<S: AsRef<str>>(cwd: Option<&Path>, args: &[S], success: bool) -> String {
    let out = run_in(cwd, args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    assert_eq!(
        out.status.success(),
        success,
        "rdbinsight {args:?} (expected success: {success}):\n{stderr}"
    );
    stderr
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The ClickHouse stores of one test: a database on the single engine and, when the two test
/// shards are there (`scripts/clickhouse-test-env.sh` starts them), the same batches written
/// with `--on-cluster` into a sharded schema (`redis_records_raw_local` on each shard under the
/// `Distributed` table `redis_records_raw`; [`Shards`] makes it without Keeper).
struct Ch {
    single: Option<TestDb>,
    shards: Option<Shards>,
}

impl Ch {
    fn new(test: &str) -> Option<Ch> {
        let single = TestDb::new(test)?;
        let Some((urls, cluster)) = common::ch::shard_env() else {
            eprintln!(
                "no RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS / _CLUSTER: the sharded ClickHouse part \
                 of {test} is skipped"
            );
            return Some(Ch {
                single: Some(single),
                shards: None,
            });
        };
        let shards = block_on(Shards::create(test, &urls, &cluster));
        Some(Ch {
            single: Some(single),
            shards: Some(shards),
        })
    }

    /// (store name, `--url`, `--on-cluster`) of each ClickHouse store.
    fn stores(&self) -> Vec<(&'static str, String, Option<String>)> {
        let mut v = Vec::new();
        if let Some(single) = &self.single {
            v.push(("clickhouse", single.url(), None));
        }
        if let Some(shards) = &self.shards {
            v.push(("sharded", shards.url(), Some(shards.cluster.clone())));
        }
        v
    }

    /// Give every ClickHouse store the instance summaries the Parquet dump stored. A live
    /// source hands each dump its own snapshot, whose `used-mem` aux field differs from one to
    /// the next; the stores' reports are compared on the same data, so their summaries must be
    /// the same too (the ClickHouse writer's own summaries are checked by
    /// `clickhouse_attempts`).
    async fn align_summaries(&self, summaries: &[(String, String, String)], batch: &str) {
        let dbs = self
            .single
            .iter()
            .chain(self.shards.iter().map(|s| &s.dbs[0]));
        for db in dbs {
            for (cluster, instance, json) in summaries {
                let lit = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
                db.exec(&format!(
                    "ALTER TABLE {{db}}.import_instance_summaries UPDATE summary = {} WHERE \
                     cluster = {} AND instance = {} AND batch = \
                     fromUnixTimestamp64Nano(toInt64({}), 'UTC') SETTINGS mutations_sync = 2",
                    lit(json),
                    lit(cluster),
                    lit(instance),
                    ns(batch)
                ))
                .await;
            }
        }
    }

    /// Rows of the records table on each shard (to see that both hold some).
    fn shard_counts(&self) -> Vec<u64> {
        match &self.shards {
            None => Vec::new(),
            Some(shards) => block_on(shards.local_counts()),
        }
    }
}

impl Drop for Ch {
    fn drop(&mut self) {
        let (single, shards) = (self.single.take(), self.shards.take());
        block_on(async {
            if let Some(db) = single {
                db.drop_db().await;
            }
            if let Some(shards) = shards {
                shards.drop_all().await;
            }
        });
    }
}

/// A source's arguments dumped into every store with one batch timestamp: a temporary
/// directory (JSONL, Parquet, the reports) and the ClickHouse stores.
struct Stores {
    tmp: tempfile::TempDir,
    ch: Option<Ch>,
}

impl Stores {
    fn new(test: &str) -> Stores {
        Stores {
            tmp: tempfile::tempdir().expect("temp dir"),
            ch: Ch::new(test),
        }
    }

    fn parquet(&self) -> String {
        self.tmp.path().join("pq").display().to_string()
    }

    /// Dump `source` (`from-...` and its flags) into JSONL (returned), Parquet and ClickHouse
    /// (single and sharded).
    fn dump<S: AsRef<str>>(&self, source: &[S], batch: &str, name: &str) -> Vec<Rec> {
        let jsonl = self.tmp.path().join(format!("{name}.jsonl"));
        let run = |out: &[&str]| {
            let mut args = vec!["dump"];
            args.extend(source.iter().map(AsRef::as_ref));
            // Batches in the future keep the "expired at batch time" keys alive in Redis.
            args.extend(["--batch-timestamp", batch, "--allow-future-batch"]);
            args.extend(out);
            ok(&args);
        };
        run(&["into-jsonl", "--output", jsonl.to_str().expect("utf-8")]);
        run(&["into-parquet", "--dir", &self.parquet()]);
        for (_, url, on_cluster) in self.ch.as_ref().map(Ch::stores).unwrap_or_default() {
            let mut out = vec!["into-clickhouse", "--url", &url];
            match &on_cluster {
                None => out.push("--auto-create-tables"),
                Some(c) => out.extend(["--on-cluster", c]),
            }
            run(&out);
        }
        let recs = report_ref::read_jsonl(&jsonl);
        // The reference's summaries: what the Parquet footers hold.
        let summaries = read_summaries(Path::new(&self.parquet()), batch, &recs);
        if let Some(ch) = &self.ch {
            block_on(ch.align_summaries(&summaries, batch));
        }
        recs
    }

    /// The report from every store; asserts the JSON documents and the HTML pages are
    /// byte-identical.
    fn report(&self, cluster: &str, extra: &[&str], name: &str) -> Value {
        // `report <source...> --cluster C --json name.store.json -o name.store.html`: the
        // document and the page.
        let run = |store: &str, source: &[&str]| -> (Vec<u8>, Vec<u8>) {
            let json = self.tmp.path().join(format!("{name}.{store}.json"));
            let html = self.tmp.path().join(format!("{name}.{store}.html"));
            let mut args = vec!["report"];
            args.extend(source);
            args.extend(["--cluster", cluster]);
            args.extend(["--json", json.to_str().expect("utf-8")]);
            args.extend(["-o", html.to_str().expect("utf-8")]);
            args.extend(extra);
            ok(&args);
            (
                std::fs::read(&json).expect("report"),
                std::fs::read(&html).expect("page"),
            )
        };
        let (pq, html) = run("parquet", &["from-parquet", "--dir", &self.parquet()]);
        for (store, url, _) in self.ch.as_ref().map(Ch::stores).unwrap_or_default() {
            let (got, got_html) = run(store, &["from-clickhouse", "--url", &url]);
            assert!(
                pq == got,
                "{name}: the Parquet and {store} reports differ\nparquet: {}\n{store}: {}",
                String::from_utf8_lossy(&pq),
                String::from_utf8_lossy(&got)
            );
            assert!(
                html == got_html,
                "{name}: the Parquet and {store} pages differ"
            );
        }
        let page = String::from_utf8(html).expect("utf-8 page");
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains(r#"id="report-data""#));
        serde_json::from_slice(&pq).expect("report JSON")
    }
}

/// `from-file --path PATH --cluster CLUSTER --instance INSTANCE`.
fn file_source(path: &Path, cluster: &str, instance: &str) -> Vec<String> {
    let path = path.display().to_string();
    [
        "from-file",
        "--path",
        &path,
        "--cluster",
        cluster,
        "--instance",
        instance,
    ]
    .map(String::from)
    .to_vec()
}

fn check(got: &Value, recs: &[Rec], p: &RefParams<'_>, what: &str) {
    let want = report_ref::report(recs, p);
    report_ref::assert_same_report(got, &want, what);
}

/// The instance summaries of the batches dumped so far, as their Parquet files hold them:
/// (cluster, batch ns) -> instance -> summary JSON.
type Summaries = BTreeMap<(String, i64), BTreeMap<String, Value>>;
static SUMMARIES: std::sync::Mutex<Summaries> = std::sync::Mutex::new(BTreeMap::new());

/// Read every `rdbinsight.instance` footer of the Parquet batches under `dir` into
/// [`SUMMARIES`] and return those of batch `batch` (cluster, instance, summary JSON). Test
/// cluster names are plain, so a directory's suffix is its cluster; a file's stem is its
/// instance, percent-encoded.
fn read_summaries(dir: &Path, batch: &str, recs: &[Rec]) -> Vec<(String, String, String)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut out = Vec::new();
    let want = format!("batch={}", slug(batch));
    for c in std::fs::read_dir(dir).expect("parquet dir").flatten() {
        let name = c.file_name().to_string_lossy().to_string();
        let Some(cluster) = name.strip_prefix("cluster=") else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(c.path().join(&want)) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let r = SerializedFileReader::new(std::fs::File::open(&path).expect("open"))
                .expect("parquet");
            let kv = r.metadata().file_metadata().key_value_metadata().cloned();
            let Some(json) = kv
                .unwrap_or_default()
                .into_iter()
                .find(|e| e.key == "rdbinsight.instance")
                .and_then(|e| e.value)
            else {
                continue;
            };
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .to_string();
            let Some(instance) = recs
                .iter()
                .map(|r| r.instance.clone())
                .find(|i| rdbinsight::output::parquet::encode_name(i) == stem)
            else {
                continue;
            };
            SUMMARIES
                .lock()
                .expect("lock")
                .entry((cluster.to_string(), ns(batch)))
                .or_default()
                .insert(instance.clone(), serde_json::from_str(&json).expect("json"));
            out.push((cluster.to_string(), instance, json));
        }
    }
    out
}

fn params<'a>(cluster: &'a str, batch: &str, top: usize) -> RefParams<'a> {
    RefParams {
        cluster,
        batch_ns: ns(batch),
        top,
        micro_pct: 1_000_000,
        pct_text: "1",
        delimiter: None,
        measure: "mem",
        summaries: SUMMARIES
            .lock()
            .expect("lock")
            .get(&(cluster.to_string(), ns(batch)))
            .cloned()
            .unwrap_or_default(),
    }
}

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn select(c: &mut Resp, db: u64) {
    c.ok(&[b"SELECT", db.to_string().as_bytes()]);
}

fn set(c: &mut Resp, key: &[u8], val: &[u8]) {
    c.ok(&[b"SET", key, val]);
}

/// The expiry edge cases, as (key, TTL in ms relative to the batch's millisecond).
const TTLS: [(&str, i64); 12] = [
    ("ttl:expired", -60_000),
    ("ttl:zero", 0),
    ("ttl:1ms", 1),
    ("ttl:lt1h", 3_599_999),
    ("ttl:1h", 3_600_000),
    ("ttl:lt24h", 86_399_999),
    ("ttl:1d", 86_400_000),
    ("ttl:lt7d", 604_799_999),
    ("ttl:7d", 604_800_000),
    ("ttl:lt30d", 2_591_999_999),
    ("ttl:30d", 2_592_000_000),
    ("ttl:far", 3_650 * 86_400_000),
];

/// Instance A of the main batch: every kind of key.
fn fill_a(c: &mut Resp, batch_ms: i64) {
    select(c, 0);
    set(c, b"</script><!--x", b"v1");
    set(c, b"", b"empty-key-value");
    set(c, b"bin:\x00\xff\xfe", b"b");
    set(c, b"bin:\\x", b"backslash");
    set(c, b"12345", b"int-key");
    set(c, b"-1", b"neg");
    set(c, "ключ:✓".as_bytes(), b"utf8");
    set(c, b"shared:key", b"aaaa");
    for k in [&b"tie:a"[..], b"tie:b", b"tie:c"] {
        set(c, k, b"xx");
    }
    for (k, ttl) in TTLS {
        set(c, k.as_bytes(), b"t");
        c.ok(&[
            b"PEXPIREAT",
            k.as_bytes(),
            (batch_ms + ttl).to_string().as_bytes(),
        ]);
    }
    set(c, b"ttl:absurd", b"t");
    assert_eq!(
        c.ok(&[b"PEXPIREAT", b"ttl:absurd", i64::MAX.to_string().as_bytes()]),
        Reply::Int(1)
    );
    // One prefix exactly at the threshold the test picks, one a byte below it.
    set(c, b"above:a", b"aaaaaaaaaa");
    set(c, b"above:b", b"bbbbbbbbbb");
    set(c, b"below:a", b"aaaaaaaaaa");
    set(c, b"below:b", b"bbbbbbbbb");
    // A big (incompressible) string and a list with more than 1M members.
    let mut r = xorshift(0x9E37_79B9_7F4A_7C15);
    let big: Vec<u8> = (0..(1 << 20) + 1000).map(|_| r() as u8).collect();
    set(c, b"big:str", &big);
    let script = b"local t = {} for i = 1, 1000 do t[i] = 'x' end \
        for i = 1, 1000 do redis.call('RPUSH', KEYS[1], unpack(t)) end \
        return redis.call('RPUSH', KEYS[1], 'x')";
    assert_eq!(
        c.ok(&[b"EVAL", script, b"1", b"big:list"]),
        Reply::Int(1_000_001)
    );
    // The encodings of each type.
    c.ok(&[
        b"HSET", b"h:small", b"f1", b"v1", b"f2", b"v2", b"f3", b"v3",
    ]);
    let mut hbig: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"h:big".to_vec()];
    let mut zbig: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"z:big".to_vec()];
    for i in 0..200 {
        hbig.push(format!("field{i}").into_bytes());
        hbig.push(format!("value{i}").into_bytes());
        zbig.push(i.to_string().into_bytes());
        zbig.push(format!("member{i}").into_bytes());
    }
    c.ok(&hbig.iter().map(Vec::as_slice).collect::<Vec<_>>());
    c.ok(&zbig.iter().map(Vec::as_slice).collect::<Vec<_>>());
    c.ok(&[b"SADD", b"s:int", b"1", b"2", b"3"]);
    c.ok(&[b"SADD", b"s:str", b"a", b"b", b"c"]);
    c.ok(&[b"ZADD", b"z:small", b"1", b"a", b"2", b"b", b"3", b"c"]);
    c.ok(&[b"RPUSH", b"l:small", b"a", b"b", b"c"]);
    c.ok(&[b"XADD", b"x:s", b"*", b"f", b"v"]);
    c.ok(&[b"XADD", b"x:s", b"*", b"f", b"w"]);
    // The same keys in another db.
    select(c, 1);
    set(c, b"shared:key", b"bbbb");
    set(c, b"tie:a", b"xx");
}

fn fill_b(c: &mut Resp) {
    select(c, 0);
    set(c, b"shared:key", b"cccc");
    set(c, b"tie:a", b"xx");
    set(c, b"b:only", b"v");
    select(c, 2);
    set(c, b"db2:key", b"v");
}

fn fill_c(c: &mut Resp) {
    set(c, b"c:only", b"v");
    set(c, b"tie:z", b"xx");
    // Two fields, but values over hash-max-listpack-value (64): a small hash table.
    let wide = vec![b'w'; 100];
    c.ok(&[b"HSET", b"h:wide", b"f1", &wide, b"f2", &wide]);
}

/// An RDB file written by a server started with `args`, after `fill`.
fn rdb_file(dir: &Path, name: &str, args: &[&str], fill: impl FnOnce(&mut Resp)) -> PathBuf {
    let s = RedisServer::start(args);
    let mut c = Resp::connect(s.port);
    fill(&mut c);
    let path = dir.join(format!("{name}.rdb"));
    std::fs::copy(s.save(), &path).expect("copy the dump");
    path
}

/// `key` with `IDLETIME`/`FREQ` set through DUMP + RESTORE.
fn restore_with(c: &mut Resp, key: &str, option: &[u8], value: u64) {
    set(c, b"tmp", key.as_bytes());
    let Reply::Bulk(Some(payload)) = c.ok(&[b"DUMP", b"tmp"]) else {
        panic!("DUMP gave no payload");
    };
    c.ok(&[
        b"RESTORE",
        key.as_bytes(),
        b"0",
        &payload,
        option,
        value.to_string().as_bytes(),
    ]);
    c.ok(&[b"DEL", b"tmp"]);
}

/// Pick a `--prefix-threshold` whose threshold in bytes is exactly `bytes` for `total`.
fn pct_for(bytes: u64, total: u64) -> (u64, String) {
    let micro = (u128::from(bytes) * 100_000_000).div_ceil(u128::from(total)) as u64;
    assert_eq!(
        u128::from(total) * u128::from(micro) / 100_000_000,
        u128::from(bytes)
    );
    let text = format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000);
    let text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    (micro, text)
}

fn node<'a>(report: &'a Value, prefix: &str) -> Option<&'a Value> {
    report["prefix_tree"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["prefix"]["text"] == prefix)
}

/// The string at `path` (e.g. `["key", "text"]`) in each element of the JSON array `list`.
fn strs<'a>(list: &'a Value, path: &[&str]) -> Vec<&'a str> {
    let array = list
        .as_array()
        .unwrap_or_else(|| panic!("an array: {list}"));
    array
        .iter()
        .map(|item| {
            let v = path.iter().fold(item, |v, field| &v[*field]);
            v.as_str()
                .unwrap_or_else(|| panic!("{path:?} of {item} is a string"))
        })
        .collect()
}

fn sum_of(recs: &[Rec], f: impl Fn(&Rec) -> bool) -> u64 {
    recs.iter().filter(|r| f(r)).map(|r| r.rdb_size).sum()
}

#[test]
fn crafted_batches_are_identical_from_both_stores_and_match_the_reference() {
    let stores = Stores::new("report_crafted");
    let (tmp, db) = (&stores.tmp, &stores.ch);
    let batch_ms = ns(BATCH_M).div_euclid(1_000_000);

    // --- The main batch: three live instances behind a (fake) Codis dashboard.
    let a = RedisServer::start(&[]);
    let b = RedisServer::start(&[]);
    let c = RedisServer::start(&[]);
    fill_a(&mut Resp::connect(a.port), batch_ms);
    fill_b(&mut Resp::connect(b.port));
    fill_c(&mut Resp::connect(c.port));
    let groups: Vec<FakeGroup> = [&a, &b, &c]
        .iter()
        .enumerate()
        .map(|(i, s)| FakeGroup {
            id: i as u32 + 1,
            servers: vec![(s.addr(), false)],
        })
        .collect();
    let dashboard_server = serve_topom(topom_json("crafted", &groups));
    let dashboard = dashboard_server.url();
    let m = stores.dump(&["from-codis", "--dashboard", &dashboard], BATCH_M, "m");
    if let Some(ch) = &db {
        let counts = ch.shard_counts();
        if !counts.is_empty() {
            assert_eq!(counts.iter().sum::<u64>(), m.len() as u64, "{counts:?}");
            assert!(
                counts.iter().all(|&n| n > 0),
                "both shards hold keys: {counts:?}"
            );
        }
    }

    // --- Two older batches of the same cluster: idle times (LRU) and LFU counters.
    let idle_values: [u64; 18] = [
        0,
        59,
        60,
        599,
        600,
        3_599,
        3_600,
        21_599,
        21_600,
        86_399,
        86_400,
        604_799,
        604_800,
        2_591_999,
        2_592_000,
        7_775_999,
        7_776_000,
        100_000_000,
    ];
    // An RDB of keys `<what>:<v>` restored with `option v` under `policy`.
    let restored = |policy: &str, what: &str, option: &[u8], values: &[u64]| {
        let name = &policy[policy.len() - 3..];
        rdb_file(tmp.path(), name, &["--maxmemory-policy", policy], |c| {
            for &v in values {
                restore_with(c, &format!("{what}:{v}"), option, v);
            }
        })
    };
    let lru = restored("allkeys-lru", "idle", b"IDLETIME", &idle_values);
    let freq_values: [u64; 16] = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255];
    let lfu = restored("allkeys-lfu", "freq", b"FREQ", &freq_values);
    let l = stores.dump(&file_source(&lru, "crafted", "lru:1"), BATCH_L, "l");
    let f = stores.dump(&file_source(&lfu, "crafted", "lfu:1"), BATCH_F, "f");

    // --- What the data must contain for the checks below to mean something.
    assert_eq!(m.len(), 47, "keys of the main batch");
    assert!(m.iter().any(|r| r.key.is_empty()));
    assert!(m.iter().any(|r| r.key == b"bin:\x00\xff\xfe"));
    assert!(m.iter().any(|r| r.key == b"</script><!--x"));
    assert_eq!(m.iter().filter(|r| r.key == b"shared:key").count(), 3);
    assert!(
        m.iter().any(|r| r.key == b"12345" && r.rtype == "string"),
        "integer-encoded key"
    );
    assert!(
        m.iter()
            .all(|r| r.codis_slot.is_some() && r.idle_seconds.is_none())
    );
    assert!(l.iter().all(|r| r.idle_seconds.is_some()));
    assert!(f.iter().all(|r| r.freq.is_some()));
    let l_idle: Vec<u64> = l.iter().filter_map(|r| r.idle_seconds).collect();
    assert!(
        l_idle.iter().filter(|&&v| idle_values.contains(&v)).count() >= 9,
        "idle times near the bucket edges: {l_idle:?}"
    );
    let mut f_freq: Vec<u64> = f.iter().filter_map(|r| r.freq).collect();
    f_freq.sort();
    assert_eq!(f_freq, freq_values, "LFU counters saved as restored");
    let absurd = m
        .iter()
        .find(|r| r.key == b"ttl:absurd")
        .expect("absurd TTL key");
    assert_eq!(absurd.expire_ms, None, "JSONL cannot show year 292 million");

    // --- The main batch with a threshold exactly at the bytes of "above:".
    let total = sum_of(&m, |_| true);
    let above = sum_of(&m, |r| r.key.starts_with(b"above:"));
    assert_eq!(sum_of(&m, |r| r.key.starts_with(b"below:")), above - 1);
    let (micro, pct) = pct_for(above, total);
    // The bytes here are rdb_size: this edge is checked with --measure rdb.
    let report = stores.report(
        "crafted",
        &["--prefix-threshold", &pct, "--measure", "rdb"],
        "m-threshold",
    );
    let p = RefParams {
        micro_pct: micro,
        pct_text: &pct,
        measure: "rdb",
        ..params("crafted", BATCH_M, 100)
    };
    check(&report, &m, &p, "main batch at the 'above:' threshold");
    // The reference's recommendations were compared above; the batch makes at least these
    // (`small-set` too where the server stores small string sets as hash tables, before 7.2).
    let kinds = strs(&report["recommendations"], &["kind"]);
    for kind in [
        "big-strings",
        "huge-collections",
        "small-hash",
        "no-ttl",
        "expired",
        "many-dbs",
        "imbalance",
        "shared-slots",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(report["params"]["prefix_threshold_bytes"], above);
    assert_eq!(
        node(&report, "above:").expect("above: is a node")["rdb_size"],
        above
    );
    assert!(node(&report, "below:").is_none(), "below: is a byte short");
    // Hand-checked facts (independent of the reference implementation too).
    assert_eq!(report["totals"]["keys"], 47);
    assert_eq!(report["totals"]["instances"], 3);
    assert_eq!(report["totals"]["dbs"], 3);
    let buckets: Vec<(String, u64)> = report["expiry"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            (
                b["id"].as_str().expect("id").to_string(),
                b["keys"].as_u64().expect("keys"),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        [
            ("no_ttl", 47 - 12),
            ("expired", 2),
            ("lt_1h", 2),
            ("1h_24h", 2),
            ("1d_7d", 2),
            ("7d_30d", 2),
            ("gt_30d", 2),
        ]
        .map(|(id, n)| (id.to_string(), n))
    );
    let big = strs(&report["outliers"]["big_keys"], &["key", "text"]);
    assert_eq!(big, ["big:str", "big:list"]);
    let shared = report["balance"]["shared_slots"]
        .as_array()
        .expect("shared");
    let shared_key_slot = m
        .iter()
        .find(|r| r.key == b"shared:key")
        .and_then(|r| r.codis_slot);
    assert!(
        shared
            .iter()
            .any(|s| s["slot"] == shared_key_slot.expect("slot"))
    );
    let bin = report["top_keys_by_size"]
        .as_array()
        .expect("top")
        .iter()
        .find(|k| k["key"]["base64"] == "YmluOgD//g==")
        .expect("the binary key is listed");
    assert_eq!(bin["key"]["text"], "bin:\\x00\\xff\\xfe");

    // --- Default threshold, snapped to ':'; and the same again: byte-identical.
    let snapped = stores.report("crafted", &["--delimiter", ":"], "m-snapped");
    let p = RefParams {
        delimiter: Some(":"),
        ..params("crafted", BATCH_M, 100)
    };
    check(&snapped, &m, &p, "main batch, delimiter ':'");
    let again = stores.report("crafted", &["--delimiter", ":"], "m-snapped-again");
    for ext in ["json", "html"] {
        assert_eq!(
            std::fs::read(tmp.path().join(format!("m-snapped.parquet.{ext}"))).expect("first"),
            std::fs::read(tmp.path().join(format!("m-snapped-again.parquet.{ext}")))
                .expect("second"),
            "the same batch twice: byte-identical {ext}"
        );
    }
    assert_eq!(snapped, again);

    // --- Top lists cut inside a tie (by size, then by members).
    let mut sizes: Vec<u64> = m.iter().map(|r| r.rdb_size).collect();
    sizes.sort_by(|a, b| b.cmp(a));
    let cut = (1..sizes.len())
        .find(|&i| sizes[i - 1] == sizes[i] && i >= 3)
        .expect("a tie in rdb_size");
    let top = cut.to_string();
    let tied = stores.report("crafted", &["--top", &top], "m-top-size");
    check(
        &tied,
        &m,
        &params("crafted", BATCH_M, cut),
        "top by size cut in a tie",
    );
    let tied = stores.report("crafted", &["--top", "5"], "m-top-5");
    check(
        &tied,
        &m,
        &params("crafted", BATCH_M, 5),
        "top 5 (members cut in a tie)",
    );
    let members: Vec<u64> = tied["top_keys_by_members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|k| k["member_count"].as_u64().expect("count"))
        .collect();
    assert_eq!(
        members,
        [1_000_001, 200, 200, 3, 3],
        "cut among the 3-member keys"
    );
    // Cuts between copies of one key that differ only in instance or db ("shared:key" is on
    // A db 0, A db 1 and B db 0, with equal sizes): the server's LIMIT must break ties as the
    // report does.
    let a_addr = a.addr();
    for metric in [|r: &Rec| r.rdb_size, |r: &Rec| r.member_count] {
        let mut order: Vec<&Rec> = m.iter().collect();
        order.sort_by(|x, y| {
            metric(y)
                .cmp(&metric(x))
                .then(x.key.cmp(&y.key))
                .then(x.instance.cmp(&y.instance))
                .then(x.db.cmp(&y.db))
        });
        let at: Vec<(usize, &str, u64)> = order
            .iter()
            .enumerate()
            .filter(|(_, r)| r.key == b"shared:key")
            .map(|(i, r)| (i, r.instance.as_str(), r.db))
            .collect();
        assert_eq!(at.len(), 3);
        // Adjacent; of the two cuts one separates the dbs of A, the other A from B.
        assert_eq!((at[0].0 + 1, at[1].0 + 1), (at[1].0, at[2].0));
        let dbs_of_a = at.iter().filter(|(_, i, _)| *i == a_addr).count();
        assert_eq!(dbs_of_a, 2);
        for (cut, _, _) in &at[1..] {
            let top = cut.to_string();
            let r = stores.report("crafted", &["--top", &top], &format!("m-top-{cut}"));
            check(
                &r,
                &m,
                &params("crafted", BATCH_M, *cut),
                "top cut between copies of a key",
            );
        }
    }

    // --- The older batches, chosen with --batch (not the latest).
    for (batch, recs, name) in [(BATCH_L, &l, "l"), (BATCH_F, &f, "f")] {
        let r = stores.report("crafted", &["--batch", batch], name);
        check(&r, recs, &params("crafted", batch, 100), name);
    }
    // The Parquet store also takes the directory name.
    let by_slug = stores.report("crafted", &["--batch", &slug(BATCH_L)], "l-slug");
    assert_eq!(
        std::fs::read(tmp.path().join("l.parquet.json")).expect("l"),
        std::fs::read(tmp.path().join("l-slug.parquet.json")).expect("l by slug"),
    );
    assert_eq!(by_slug["cold"]["idle"]["with_field"]["keys"], 18);
    assert!(
        by_slug["recommendations"]
            .as_array()
            .expect("recommendations")
            .iter()
            .any(|r| r["kind"] == "cold"),
        "idle 30 days or more: {}",
        by_slug["recommendations"]
    );

    // --- A batch that does not exist: both stores name the available ones.
    let missing = "2029-12-31T00:00:00Z";
    let pq = stores.parquet();
    // `report <source> --cluster C [extra] --json /dev/null`, which must fail.
    let refused = |source: &[&str], cluster: &str, extra: &[&str]| {
        let mut args = vec!["report"];
        args.extend(source);
        args.extend(["--cluster", cluster]);
        args.extend(extra);
        args.extend(["--json", "/dev/null"]);
        fails(&args)
    };
    let from_parquet = ["from-parquet", "--dir", &pq];
    let err = refused(&from_parquet, "crafted", &["--batch", missing]);
    for b in [BATCH_M, BATCH_L, BATCH_F] {
        assert!(err.contains(&slug(b)), "{err}");
    }
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for (_, url, _) in db.as_ref().map(Ch::stores).unwrap_or_default() {
        let from_clickhouse = ["from-clickhouse", "--url", &url];
        let err = refused(&from_clickhouse, "crafted", &["--batch", missing]);
        for b in [
            "2030-01-02T03:04:05.123456789Z",
            "2030-01-01T00:00:00.000000000Z",
        ] {
            assert!(err.contains(b), "{err}");
        }
        assert!(err.contains("2029-12-31T00:00:00.000000000Z"), "{err}");
        let err = refused(&from_clickhouse, "nope", &[]);
        assert!(err.contains("crafted"), "lists the clusters: {err}");
    }
    let err = refused(&from_parquet, "nope", &[]);
    assert!(err.contains("clusters present: crafted"), "{err}");
}

#[test]
fn empty_one_key_and_type_tie_batches() {
    let stores = Stores::new("report_small");
    let tmp = &stores.tmp;
    let batch = "2030-03-04T05:06:07.000000001Z";

    let empty = rdb_file(tmp.path(), "empty", &[], |_| {});
    let recs = stores.dump(&file_source(&empty, "empty", "10.0.0.1:6379"), batch, "e");
    assert!(recs.is_empty());
    let r = stores.report("empty", &[], "empty");
    check(&r, &recs, &params("empty", batch, 100), "empty batch");
    assert_eq!(r["prefix_tree"]["nodes"], serde_json::json!([]));
    assert_eq!(r["params"]["prefix_threshold_bytes"], 0);

    let one = rdb_file(tmp.path(), "one", &[], |c| set(c, b"only:key", b"v"));
    let recs = stores.dump(&file_source(&one, "one", "10.0.0.1:6379"), batch, "o");
    assert_eq!(recs.len(), 1);
    let r = stores.report("one", &["--prefix-threshold", "100"], "one");
    check(
        &r,
        &recs,
        &RefParams {
            micro_pct: 100_000_000,
            pct_text: "100",
            ..params("one", batch, 100)
        },
        "one-key batch",
    );
    let nodes = r["prefix_tree"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["prefix"]["text"], "only:key");
    assert_eq!(nodes[0]["is_key"], true);

    // Two types holding exactly the same bytes: by_type is ordered by name on the tie.
    let set_only = rdb_file(tmp.path(), "set", &[], |c| {
        c.ok(&[b"SADD", b"s", b"1"]);
    });
    let probe = stores.dump(
        &file_source(&set_only, "probe", "10.0.0.1:6379"),
        batch,
        "p",
    );
    let set_size = probe[0].rdb_size as usize;
    // A string "k" = "vvv..." takes 1 (type) + 2 (key) + 1 + len (value) bytes.
    let value = "v".repeat(set_size - 4);
    let ties = rdb_file(tmp.path(), "ties", &[], |c| {
        c.ok(&[b"SADD", b"s", b"1"]);
        set(c, b"k", value.as_bytes());
    });
    let recs = stores.dump(&file_source(&ties, "ties", "10.0.0.1:6379"), batch, "t");
    assert_eq!(recs[0].rdb_size, recs[1].rdb_size, "equal sizes");
    let r = stores.report("ties", &[], "ties");
    check(&r, &recs, &params("ties", batch, 100), "type tie");
    let types = strs(&r["by_type"], &["type"]);
    assert_eq!(types, ["set", "string"]);
}

#[test]
fn cluster_batch_with_a_slot_on_two_instances() {
    let stores = Stores::new("report_cluster");
    let cluster = RedisCluster::start(3);
    let seed = cluster.nodes[0].port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &seed])
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for i in 0..12 {
        cli(&["SET", &format!("cl:{i}"), &"v".repeat(i)]);
    }
    cli(&["SET", "{m}:a", "stays"]);
    cli(&["SET", "{m}:b", "moves"]);
    // Move "{m}:b" to another master mid-migration: its slot is then on two instances.
    let slot = cli(&["CLUSTER", "KEYSLOT", "{m}:a"]);
    let masters = cluster.masters();
    let owner = cluster
        .node(masters[0].port)
        .cli(&["CLUSTER", "NODES"])
        .lines()
        .find(|l| {
            l.contains("master")
                && l.split_whitespace().skip(8).any(|r| {
                    let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                    match (lo.parse::<u64>(), hi.parse::<u64>(), slot.parse::<u64>()) {
                        (Ok(lo), Ok(hi), Ok(s)) => lo <= s && s <= hi,
                        _ => false,
                    }
                })
        })
        .map(|l| l.split_whitespace().next().expect("id").to_string())
        .expect("the slot's owner");
    let src = masters.iter().find(|m| m.id == owner).expect("source");
    let dst = masters.iter().find(|m| m.id != owner).expect("target");
    cluster
        .node(dst.port)
        .cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src.id]);
    cluster
        .node(src.port)
        .cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst.id]);
    let moved = cluster.node(src.port).cli(&[
        "MIGRATE",
        "127.0.0.1",
        &dst.port.to_string(),
        "",
        "0",
        "5000",
        "KEYS",
        "{m}:b",
    ]);
    assert_eq!(moved, "OK");
    // Replicas (which the dump reads) must have caught up.
    wait_until("replicas in sync", Duration::from_secs(30), || {
        cluster.replicas().iter().all(|r| {
            let master = cluster.node(
                masters
                    .iter()
                    .find(|m| m.id == r.master_id)
                    .expect("master")
                    .port,
            );
            cluster.node(r.port).cli(&["DBSIZE"]) == master.cli(&["DBSIZE"])
        })
    });
    let seeds = cluster.seeds().join(",");
    let batch = "2030-05-06T07:08:09Z";
    let recs = stores.dump(
        &["from-cluster", "--nodes", &seeds, "--cluster", "cl"],
        batch,
        "cl",
    );
    assert_eq!(recs.len(), 14);
    assert!(recs.iter().all(|r| r.redis_slot.is_some()));
    let r = stores.report("cl", &[], "cl");
    check(&r, &recs, &params("cl", batch, 100), "cluster batch");
    let shared = r["balance"]["shared_slots"].as_array().expect("shared");
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert!(
        r["recommendations"]
            .as_array()
            .expect("recommendations")
            .contains(&serde_json::json!({"kind": "shared-slots", "slots": 1})),
        "{}",
        r["recommendations"]
    );
    assert_eq!(shared[0]["kind"], "redis");
    assert_eq!(shared[0]["slot"].to_string(), slot);
    assert_eq!(
        shared[0]["instances"].as_array().expect("instances").len(),
        2
    );
    assert_eq!(
        r["balance"]["top_slots_by_keys"][0]["slot"].to_string(),
        slot
    );
}

/// A Parquet batch of `keys` keys (DEBUG POPULATE), for the spill tests.
fn populated_batch(dir: &Path, keys: u64) -> PathBuf {
    let rdb = rdb_file(dir, "populated", &[], |c| {
        c.ok(&[
            b"DEBUG",
            b"POPULATE",
            keys.to_string().as_bytes(),
            b"key",
            b"10",
        ]);
        c.ok(&[b"SET", b"shared:ttl", b"v", b"PX", b"100000000"]);
    });
    let pq = dir.join("pq");
    dump_pop_to_parquet(&rdb, "2030-01-01T00:00:00Z", &pq);
    pq
}

/// `dump from-file` of `rdb` as instance `i1` of cluster `pop`, batch `ts`, into Parquet
/// under `pq`.
fn dump_pop_to_parquet(rdb: &Path, ts: &str, pq: &Path) {
    let pq = pq.display().to_string();
    let into = [
        "--batch-timestamp",
        ts,
        "--allow-future-batch",
        "into-parquet",
        "--dir",
        &pq,
    ];
    let mut args = vec!["dump".to_string()];
    args.extend(file_source(rdb, "pop", "i1"));
    args.extend(into.map(String::from));
    ok(&args);
}

/// `report from-parquet --dir PQ --cluster CLUSTER` and `extra`.
fn from_parquet(pq: &str, cluster: &str, extra: &[&str]) -> Vec<String> {
    ["report", "from-parquet", "--dir", pq, "--cluster", cluster]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
}

/// The binary started with a clean environment, stderr piped, stdout discarded.
fn spawn<S: AsRef<str>>(args: &[S]) -> std::process::Child {
    Command::new(BIN)
        .args(args.iter().map(AsRef::as_ref))
        .env_clear()
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Polls `ready` (every 5 ms, 60 s at most: else `never`) while `child` runs (else `early`).
fn wait_while_running(
    child: &mut std::process::Child,
    never: &str,
    early: &str,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{never}");
        assert!(child.try_wait().expect("wait").is_none(), "{early}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for a report `signal` (`SIGINT`, `SIGTERM`) interrupted: it must exit with `code`
/// and say so.
fn assert_interrupted(child: std::process::Child, signal: &str, code: i32) {
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("error: report interrupted by {signal}")),
        "{stderr}"
    );
}

/// The new empty directory `name` in `parent`.
fn new_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// `--baseline` from Parquet keeps its two key spools in memory while they fit: a report that
/// spills nothing never touches `--spill-dir` (it used to create the spools' directories
/// there first, so an unusable `--spill-dir` failed it), and one that spills names it.
#[test]
fn a_baseline_report_that_spills_nothing_does_not_need_the_spill_dir() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let rdb = rdb_file(tmp.path(), "populated", &[], |c| {
        c.ok(&[b"DEBUG", b"POPULATE", b"3000", b"key", b"10"]);
    });
    let pq = tmp.path().join("pq");
    let pq_s = pq.to_str().expect("utf-8");
    for ts in ["2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"] {
        dump_pop_to_parquet(&rdb, ts, &pq);
    }
    // A regular file: no directory can be created in it, whoever runs the test.
    let not_a_dir = tmp.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"").expect("write");
    let json = tmp.path().join("r.json");
    let html = tmp.path().join("r.html");
    let args = |extra: &[&str]| -> Vec<String> {
        let fixed = [
            "--baseline",
            "previous",
            "-o",
            html.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
            "--spill-dir",
            not_a_dir.to_str().expect("utf-8"),
        ];
        from_parquet(pq_s, "pop", &[&fixed[..], extra].concat())
    };
    ok(&args(&[]));
    let report: Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("json");
    assert_eq!(
        report["changes"]["totals"]["current"]["keys"], 3_000,
        "{report}"
    );
    // With a budget the spools outgrow, the report needs the directory and says which.
    let err = fails(&args(&["--memory-limit", "64KiB"]));
    let last = err.lines().last().expect("error line");
    assert!(
        last.contains("cannot create a spill directory in") && last.contains("not-a-dir"),
        "{last}"
    );
}

#[test]
fn tiny_memory_limit_spills_and_gives_the_same_report() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pq = populated_batch(tmp.path(), 20_000);
    let pq = pq.to_str().expect("utf-8");
    let spill = new_dir(tmp.path(), "spill");
    let spill_s = spill.to_str().expect("utf-8");
    let unlimited = tmp.path().join("unlimited.json");
    let limited = tmp.path().join("limited.json");
    let unlimited_s = unlimited.to_str().expect("utf-8");
    let limited_s = limited.to_str().expect("utf-8");
    // `report from-parquet` of this batch with `extra`.
    let args = |extra: &[&str]| from_parquet(pq, "pop", extra);
    // Without -o the page gets its default name in the current directory.
    let log = ok_in(
        Some(tmp.path()),
        &args(&["--json", unlimited_s, "--prefix-threshold", "0.01"]),
    );
    let default_html = tmp.path().join(format!(
        "rdb_report_pop_{}.html",
        slug("2030-01-01T00:00:00Z")
    ));
    assert!(default_html.is_file(), "{log}");
    let html = tmp.path().join("r.html");
    let html_s = html.to_str().expect("utf-8");
    assert!(!log.contains("spilled"), "256 MiB holds 20,000 keys: {log}");
    // With a 4 KiB budget, into `limited`.
    let spilling = [
        "-v",
        "-o",
        html_s,
        "--json",
        limited_s,
        "--memory-limit",
        "4KiB",
        "--spill-dir",
        spill_s,
    ];
    let log = ok(&args(
        &[&spilling[..], &["--prefix-threshold", "0.01"]].concat(),
    ));
    let runs = log.matches("spilled run").count();
    assert!(runs > 100, "a 3 KiB sort budget spills many runs: {runs}");
    assert!(log.contains("intermediate merge"), "{log}");
    assert_eq!(
        std::fs::read(&unlimited).expect("unlimited"),
        std::fs::read(&limited).expect("limited"),
        "the spilled sort gives the same report"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&limited).expect("json")).expect("json");
    assert_eq!(report["totals"]["keys"], 20_001);
    assert!(
        entries(&spill).is_empty(),
        "spill directory removed: {:?}",
        entries(&spill)
    );

    // A newer batch still being written (`_tmp_batch=`) is not "the latest batch".
    let batch_dir = Path::new(pq)
        .join("cluster=pop")
        .join(format!("batch={}", slug("2030-01-01T00:00:00Z")));
    let unfinished = Path::new(pq)
        .join("cluster=pop")
        .join(format!("_tmp_batch={}", slug("2030-06-01T00:00:00Z")));
    std::fs::create_dir(&unfinished).expect("tmp batch dir");
    std::fs::copy(batch_dir.join("i1.parquet"), unfinished.join("i1.parquet")).expect("copy");
    let again = tmp.path().join("again.json");
    let again_s = again.to_str().expect("utf-8");
    ok(&args(&[
        "-o",
        html_s,
        "--json",
        again_s,
        "--prefix-threshold",
        "0.01",
    ]));
    assert_eq!(
        std::fs::read(&unlimited).expect("unlimited"),
        std::fs::read(&again).expect("again")
    );

    // A report that fails midway (a broken file read after spilling started) removes its runs.
    std::fs::write(batch_dir.join("zz-broken.parquet"), b"PAR1 not really").expect("write");
    let err = fails(&args(&spilling));
    assert!(err.contains("spilled run"), "spilled before failing: {err}");
    let last = err.lines().last().expect("error line");
    assert!(
        last.starts_with("error: Parquet file ") && last.contains("zz-broken.parquet"),
        "{last}"
    );
    assert!(
        entries(&spill).is_empty(),
        "removed after the error: {:?}",
        entries(&spill)
    );
    // The failed report did not replace the earlier output.
    assert_eq!(
        std::fs::read(&unlimited).expect("unlimited"),
        std::fs::read(&limited).expect("limited")
    );
}

#[test]
fn ctrl_c_stops_the_report_and_removes_spilled_runs() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pq = populated_batch(tmp.path(), 300_000);
    let spill = new_dir(tmp.path(), "spill");
    let out = tmp.path().join("r.json");
    let html = out.with_extension("html");
    let mut args = vec!["-v".to_string()];
    args.extend(from_parquet(
        pq.to_str().expect("utf-8"),
        "pop",
        &[
            "--json",
            out.to_str().expect("utf-8"),
            "-o",
            html.to_str().expect("utf-8"),
            "--memory-limit",
            "4KiB",
            "--spill-dir",
            spill.to_str().expect("utf-8"),
        ],
    ));
    let mut child = spawn(&args);
    // Interrupt once runs exist on disk.
    let spilled = || {
        entries(&spill).first().is_some_and(|d| {
            std::fs::read_dir(spill.join(d))
                .map(|e| e.count())
                .unwrap_or(0)
                > 3
        })
    };
    wait_while_running(
        &mut child,
        "no spilled runs appeared",
        "finished before spilling",
        spilled,
    );
    signal(&child, "-INT");
    assert_interrupted(child, "SIGINT", 130);
    assert!(
        entries(&spill).is_empty(),
        "spill directory removed: {:?}",
        entries(&spill)
    );
    assert!(!out.exists(), "no output written");
}

#[test]
fn bad_options_are_one_line_usage_errors() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_str().expect("utf-8");
    let from_parquet = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["report", "from-parquet", "--dir", dir, "--cluster", "c"];
        args.extend(extra);
        rdbinsight(&args, env)
    };
    for (flag, value, says) in [
        ("--prefix-threshold", "0", "greater than 0"),
        ("--prefix-threshold", "101", "more than 100"),
        ("--prefix-threshold", "0.0000001", "6 decimals"),
        ("--prefix-threshold", "1%", "not a percentage"),
        ("--memory-limit", "1KiB", "minimum"),
        ("--memory-limit", "lots", "not a memory size"),
        ("--top", "0", "0"),
        ("--delimiter", "", "empty"),
    ] {
        let out = from_parquet(&[flag, value], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    // The same through the environment.
    let out = from_parquet(&[], &[("RDBINSIGHT_PREFIX_THRESHOLD", "-3")]);
    assert_eq!(out.status.code(), Some(2));
    // No batch at all: one line naming the directory.
    let out = from_parquet(&["--json", "-"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(dir) && err.contains("cluster=c"), "{err}");
}

/// Rewrite every Parquet file of `cluster` under `dir` in place: `rewrite` maps each file's
/// schema and record batches to the ones written instead.
fn rewrite_parquet(
    dir: &Path,
    cluster: &str,
    rewrite: impl Fn(SchemaRef, Vec<RecordBatch>) -> (SchemaRef, Vec<RecordBatch>),
) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let cdir = dir.join(format!("cluster={cluster}"));
    for b in std::fs::read_dir(&cdir).expect("cluster dir").flatten() {
        for f in std::fs::read_dir(b.path()).expect("batch dir").flatten() {
            let path = f.path();
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).expect("open"))
                    .expect("parquet");
            let schema = builder.schema().clone();
            let batches = builder
                .build()
                .expect("reader")
                .map(|b| b.expect("batch"))
                .collect();
            let (schema, batches) = rewrite(schema, batches);
            let tmp = path.with_extension("rewritten");
            let mut w =
                ArrowWriter::try_new(std::fs::File::create(&tmp).expect("create"), schema, None)
                    .expect("writer");
            for b in &batches {
                w.write(b).expect("write");
            }
            w.close().expect("close");
            std::fs::rename(&tmp, &path).expect("rename");
        }
    }
}

/// Rewrite every Parquet file of `cluster` under `dir` as a writer before `mem_size` did: the
/// column dropped, no instance summary in the footer.
fn strip_mem_size(dir: &Path, cluster: &str) {
    rewrite_parquet(dir, cluster, |schema, batches| {
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| schema.field(i).name() != "mem_size")
            .collect();
        assert!(keep.len() < schema.fields().len(), "the file had mem_size");
        let batches = batches
            .iter()
            .map(|b| b.project(&keep).expect("project"))
            .collect();
        (Arc::new(schema.project(&keep).expect("schema")), batches)
    });
}

#[test]
fn a_batch_stored_before_mem_size_is_ranked_by_rdb_size_with_a_note() {
    let stores = Stores::new("report_old");
    let tmp = &stores.tmp;
    let batch = "2030-05-06T07:08:09.000000001Z";
    let rdb = rdb_file(tmp.path(), "old", &[], |c| {
        fill_b(c);
        // A 2000-byte run of one letter: small in the RDB (LZF), not in memory.
        set(c, b"big:lzf", "a".repeat(2000).as_bytes());
        c.ok(&[b"SADD", b"ints", b"1", b"2", b"3"]);
    });
    let mut recs = stores.dump(&file_source(&rdb, "old", "10.0.0.1:6379"), batch, "old");
    assert!(
        recs.iter().all(|r| r.mem_size.is_some()),
        "dumped with mem_size"
    );
    // The same batch as an older rdbinsight stored it: no mem_size, no summaries.
    strip_mem_size(Path::new(&stores.parquet()), "old");
    if let Some(ch) = &stores.ch {
        let dbs: Vec<&TestDb> = ch.single.iter().collect();
        block_on(async {
            for db in dbs {
                db.exec("ALTER TABLE {db}.redis_records_raw DROP COLUMN mem_size")
                    .await;
                db.exec("TRUNCATE TABLE {db}.import_instance_summaries")
                    .await;
            }
            if let Some(shards) = &ch.shards {
                for db in &shards.dbs {
                    db.exec("ALTER TABLE {db}.redis_records_raw_local DROP COLUMN mem_size")
                        .await;
                }
                shards.dbs[0]
                    .exec("ALTER TABLE {db}.redis_records_raw DROP COLUMN mem_size")
                    .await;
                shards.dbs[0]
                    .exec("TRUNCATE TABLE {db}.import_instance_summaries")
                    .await;
            }
        });
    }
    for r in &mut recs {
        r.mem_size = None;
    }
    let r = stores.report("old", &[], "old");
    let p = RefParams {
        summaries: BTreeMap::new(),
        ..params("old", batch, 100)
    };
    check(&r, &recs, &p, "batch without mem_size");
    assert_eq!(r["memory"]["measure"], "rdb");
    assert_eq!(r["memory"]["requested"], "mem");
    assert!(
        r["memory"]["note"]
            .as_str()
            .expect("a note")
            .contains("use rdb_size"),
        "{}",
        r["memory"]
    );
    assert_eq!(r["memory"]["keys_without_mem_size"], recs.len());
    assert_eq!(r["memory"]["instances"][0]["summary"], false);
    // The tree's threshold is on rdb_size, never on zeros.
    let total: u64 = recs.iter().map(|r| r.rdb_size).sum();
    assert_eq!(r["params"]["prefix_threshold_bytes"], (total / 100).max(1));
    assert_eq!(r["top_keys_by_size"][0]["key"]["text"], "big:lzf");
    let page = std::fs::read_to_string(tmp.path().join("old.parquet.html")).expect("page");
    assert!(page.contains("\"measure\":\"rdb\""));
}

/// Set every `rdb_size` of `cluster`'s Parquet files under `dir` to `value`.
fn set_rdb_size(dir: &Path, cluster: &str, value: u64) {
    use arrow::array::{ArrayRef, UInt64Array};
    rewrite_parquet(dir, cluster, |schema, batches| {
        let at = schema.index_of("rdb_size").expect("rdb_size");
        let batches = batches
            .into_iter()
            .map(|b| {
                let mut cols: Vec<ArrayRef> = b.columns().to_vec();
                cols[at] = Arc::new(UInt64Array::from(vec![value; b.num_rows()]));
                RecordBatch::try_new(schema.clone(), cols).expect("batch")
            })
            .collect();
        (schema, batches)
    });
}

#[test]
fn totals_beyond_u64_are_an_error_not_wrapped_sums() {
    let stores = Stores::new("report_overflow");
    let tmp = &stores.tmp;
    let batch = "2030-06-07T08:09:10.000000001Z";
    let rdb = rdb_file(tmp.path(), "ovf", &[], fill_b);
    let recs = stores.dump(&file_source(&rdb, "ovf", "10.0.0.1:6379"), batch, "ovf");
    assert!(recs.len() >= 2);
    // Each key claims 2^63 bytes of RDB: the batch's total is beyond u64.
    let huge = 1u64 << 63;
    set_rdb_size(Path::new(&stores.parquet()), "ovf", huge);
    let pq = stores.parquet();
    let err = fails(&["report", "from-parquet", "--dir", &pq, "--cluster", "ovf"]);
    assert!(
        err.contains("total rdb_size") && err.contains("exceeds 2^64 - 1"),
        "{err}"
    );
    if let Some(db) = stores.ch.as_ref().and_then(|c| c.single.as_ref()) {
        block_on(db.exec(&format!(
            "ALTER TABLE {{db}}.redis_records_raw UPDATE rdb_size = {huge} WHERE 1 \
             SETTINGS mutations_sync = 1"
        )));
        let url = db.url();
        let err = fails(&[
            "report",
            "from-clickhouse",
            "--url",
            &url,
            "--cluster",
            "ovf",
        ]);
        assert!(
            err.contains("total rdb_size") && err.contains("exceeds 2^64 - 1"),
            "{err}"
        );
    }
}

#[test]
fn report_from_a_clickhouse_that_never_answers_stops_at_the_response_timeout() {
    // A server that accepts connections and never answers (a hung ClickHouse).
    let hung = common::fake_server::FakeServer::start(usize::MAX, |peer| {
        peer.hold();
        Ok(())
    });
    let addr = hung.addr();
    let url = format!("http://{addr}?database=x");
    for (flag, env) in [
        (vec!["--ch-response-timeout", "1"], vec![]),
        (vec![], vec![("RDBINSIGHT_CH_RESPONSE_TIMEOUT", "1")]),
    ] {
        let started = Instant::now();
        let mut args = vec!["report", "from-clickhouse", "--url", &url, "--cluster", "c"];
        args.extend(flag);
        let out = rdbinsight(&args, &env);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let errors = common::ch::error_lines(&out.stderr);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("within 1 s (--ch-response-timeout)") && errors[0].contains(&addr),
            "{errors:?}"
        );
    }
}

#[test]
fn the_json_and_the_page_are_published_both_or_neither() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pq = populated_batch(tmp.path(), 100);
    let pq = pq.to_str().expect("utf-8");
    let out = new_dir(tmp.path(), "out");
    let json = out.join("r.json");
    let json = json.to_str().expect("utf-8");

    // The page cannot be written (its directory does not exist): the JSON is not published.
    let missing = out.join("missing/r.html");
    let err = fails(&from_parquet(
        pq,
        "pop",
        &["--json", json, "-o", missing.to_str().expect("utf-8")],
    ));
    assert!(err.contains("missing"), "{err}");
    assert!(
        entries(&out).is_empty(),
        "nothing published: {:?}",
        entries(&out)
    );

    // A SIGTERM while the page is written (into a FIFO, which blocks until it is read): exit
    // 143 and the JSON is not published.
    let fifo = out.join("page.fifo");
    common::cli::mkfifo(&fifo);
    let mut child = spawn(&from_parquet(
        pq,
        "pop",
        &["--json", json, "-o", fifo.to_str().expect("utf-8")],
    ));
    // The JSON is staged first (a temporary file beside it), then the page blocks on the FIFO.
    wait_while_running(
        &mut child,
        "the JSON was never staged",
        "finished early",
        || entries(&out).iter().any(|e| e.starts_with(".r.json.")),
    );
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "-TERM");
    // The signal lands while the page is blocked on the FIFO; give the runtime's signal task
    // a moment to record it (it runs on another thread) before letting the page through.
    std::thread::sleep(Duration::from_millis(300));
    let page = std::fs::read(&fifo).expect("read the FIFO");
    assert!(page.starts_with(b"<!DOCTYPE html>"));
    assert_interrupted(child, "SIGTERM", 143);
    assert_eq!(entries(&out), ["page.fifo"], "the JSON is not published");
}

/// `--baseline`: a crafted pair (grow, shrink, appear, vanish, unchanged, every key moved to
/// another instance, one to another db, a type change, binary keys), an empty baseline and
/// identical batches, byte-identical from every store and equal to the brute-force reference.
#[test]
fn baseline_changes_match_the_reference_from_every_store() {
    let stores = Stores::new("report_baseline");
    let tmp = &stores.tmp;
    const B0: &str = "2030-05-01T00:00:00Z";
    const B1: &str = "2030-05-02T00:00:00.5Z";
    const B2: &str = "2030-05-03T00:00:00Z";
    const B3: &str = "2030-05-04T00:00:00Z";
    let x = |n: usize| "x".repeat(n);
    let base_rdb = rdb_file(tmp.path(), "base", &[], |c| {
        set(c, b"grow:a", x(100).as_bytes());
        set(c, b"grow:b", x(300).as_bytes());
        set(c, b"shrink:a", x(3000).as_bytes());
        set(c, b"same:a", b"v");
        set(c, b"vanish:a", x(500).as_bytes());
        set(c, b"vanish:b", x(700).as_bytes());
        set(c, b"tc:k", x(50).as_bytes());
        set(c, b"bin:\xff\x00", x(200).as_bytes());
        set(c, b"mv:db", x(80).as_bytes());
    });
    let cur_rdb = rdb_file(tmp.path(), "cur", &[], |c| {
        set(c, b"grow:a", x(1000).as_bytes());
        set(c, b"grow:b", x(900).as_bytes());
        set(c, b"shrink:a", x(10).as_bytes());
        set(c, b"same:a", b"v");
        c.ok(&[b"RPUSH", b"tc:k", b"a", b"b"]);
        set(c, b"bin:\xff\x00", x(400).as_bytes());
        set(c, b"new:a", x(2000).as_bytes());
        set(c, b"new:b", x(20).as_bytes());
        select(c, 1);
        set(c, b"mv:db", x(80).as_bytes());
    });
    let empty = rdb_file(tmp.path(), "empty", &[], |_| {});
    let base = stores.dump(&file_source(&base_rdb, "diff", "10.0.0.1:6379"), B0, "b0");
    let cur = stores.dump(&file_source(&cur_rdb, "diff", "10.0.0.2:6379"), B1, "b1");
    let same = stores.dump(&file_source(&cur_rdb, "diff", "10.0.0.2:6379"), B2, "b2");
    let none = stores.dump(&file_source(&empty, "diffe", "10.0.0.1:6379"), B0, "e0");
    let cur_e = stores.dump(&file_source(&cur_rdb, "diffe", "10.0.0.1:6379"), B3, "e3");

    let thr = ["--prefix-threshold", "2"];
    let single = |cluster: &str, batch: &str, name: &str| {
        let mut a = vec!["--batch", batch];
        a.extend(thr);
        stores.report(cluster, &a, name)
    };
    let compared = |cluster: &str, batch: &str, baseline: &str, name: &str| {
        let mut a = vec!["--batch", batch, "--baseline", baseline];
        a.extend(thr);
        stores.report(cluster, &a, name)
    };
    for (cluster, cur_b, cur_recs, base_b, base_recs, what) in [
        ("diff", B1, &cur, B0, &base, "crafted pair"),
        ("diff", B2, &same, B1, &cur, "identical batches"),
        ("diffe", B3, &cur_e, B0, &none, "empty baseline"),
    ] {
        let cur_r = single(cluster, cur_b, &format!("{what}-cur"));
        let base_r = single(cluster, base_b, &format!("{what}-base"));
        let mut p = params(cluster, cur_b, 100);
        p.micro_pct = 2_000_000;
        p.pct_text = "2";
        check(&cur_r, cur_recs, &p, what);
        let got = compared(cluster, cur_b, base_b, what);
        let want = report_ref::changes(cur_recs, base_recs, &cur_r, &base_r, 100);
        report_ref::assert_same_report(&got["changes"], &want, what);
        // The rest of the document is the report without --baseline.
        let mut rest = got.clone();
        rest.as_object_mut().expect("object").remove("changes");
        assert_eq!(
            rest, cur_r,
            "{what}: --baseline changed the rest of the report"
        );
    }

    // 600 keys over two dbs, most in both batches with other sizes: at `--memory-limit 4KiB`
    // (a 3 KiB sort budget against some 20 KiB of entries per batch) both reports' key sorts
    // spill, so the pair pass merges spools written from merged runs. The same document as
    // without the limit, and the reference's changes.
    let many = |name: &str, salt: usize| {
        rdb_file(tmp.path(), name, &[], |c| {
            for db in [0u64, 1] {
                select(c, db);
                for i in (salt..600 + salt).filter(|i| i % 2 == db as usize) {
                    let len = (i * 37 + salt * 11) % 400 + 1;
                    set(c, format!("m:{}:{i}", i % 7).as_bytes(), x(len).as_bytes());
                }
            }
        })
    };
    let (m_base, m_cur) = (many("many-base", 0), many("many-cur", 50));
    let m0 = stores.dump(&file_source(&m_base, "diffm", "10.0.0.1:6379"), B0, "m0");
    let m1 = stores.dump(&file_source(&m_cur, "diffm", "10.0.0.1:6379"), B1, "m1");
    let m_cur_r = single("diffm", B1, "many-cur");
    let m_base_r = single("diffm", B0, "many-base");
    let unspilled = compared("diffm", B1, B0, "many");
    let json = tmp.path().join("many-spilled.json");
    let page = tmp.path().join("many-spilled.html").display().to_string();
    let (pq, json_s) = (stores.parquet(), json.display().to_string());
    let mut a = vec!["report", "from-parquet", "--dir", &pq, "--cluster", "diffm"];
    a.extend(["--batch", B1, "--baseline", B0, "--memory-limit", "4KiB"]);
    a.extend(thr);
    a.extend(["--json", &json_s, "-o", &page]);
    ok(&a);
    let spilled: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("report JSON");
    assert_eq!(
        spilled, unspilled,
        "--memory-limit 4KiB changed the changes"
    );
    let want = report_ref::changes(&m1, &m0, &m_cur_r, &m_base_r, 100);
    report_ref::assert_same_report(&spilled["changes"], &want, "many keys, spilled");

    // The crafted pair, by hand.
    let got = compared("diff", B1, "previous", "previous");
    let ch = &got["changes"];
    assert_eq!(ch["baseline"], "2030-05-01T00:00:00.000000000Z");
    assert_eq!(ch["keys_type_changed"], 1);
    let keys = strs(&ch["top_new_keys"], &["key", "text"]);
    assert_eq!(keys, ["new:a", "mv:db", "new:b"], "new keys, biggest first");
    let grown = strs(&ch["top_key_growth"], &["key", "text"]);
    assert!(
        grown.contains(&"grow:a") && !grown.contains(&"same:a"),
        "{grown:?}"
    );
    let bin = ch["top_key_growth"]
        .as_array()
        .expect("growth")
        .iter()
        .find(|k| k["key"]["text"] == "bin:\\xff\\x00")
        .expect("the binary key grew");
    assert!(bin["key"]["base64"].is_string());
    // Moved to another instance: unchanged, not vanished + appeared.
    assert!(!keys.contains(&"same:a"));
    // Identical batches: every delta is 0, no ranked list has an entry.
    let ident = compared("diff", B2, B1, "ident");
    let ch = &ident["changes"];
    for list in [
        "growth",
        "relative_growth",
        "appeared",
        "vanished",
        "shrink",
        "top_key_growth",
        "top_new_keys",
    ] {
        assert_eq!(ch[list], serde_json::json!([]), "identical batches: {list}");
    }
    for d in ["keys", "rdb_size", "mem_size", "member_count"] {
        assert_eq!(ch["totals"]["delta"][d], 0);
    }

    // Errors: a baseline that is not a batch lists them; one not older is a usage error.
    let pq = stores.parquet();
    let base_args = |baseline: &str| {
        vec![
            "report".to_string(),
            "from-parquet".into(),
            "--dir".into(),
            pq.clone(),
            "--cluster".into(),
            "diff".into(),
            "--batch".into(),
            B1.into(),
            "--baseline".into(),
            baseline.into(),
            "--json".into(),
            tmp.path().join("err.json").display().to_string(),
        ]
    };
    let err = fails(&base_args("2030-04-01T00:00:00Z"));
    assert!(
        err.contains(&slug(B0)) && err.contains("--baseline"),
        "{err}"
    );
    for newer in [B1, B2] {
        let out = rdbinsight(
            &base_args(newer)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &[],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("not older"));
    }
    let err = fails(
        &base_args("previous")
            .iter()
            .map(|s| s.replace(B1, B0))
            .collect::<Vec<_>>(),
    );
    assert!(err.contains("no completed batch before"), "{err}");
    for (store, url, _) in stores.ch.as_ref().map(Ch::stores).unwrap_or_default() {
        let args = [
            "report",
            "from-clickhouse",
            "--url",
            &url,
            "--cluster",
            "diff",
            "--batch",
            B1,
            "--baseline",
            "2030-04-01T00:00:00Z",
            "--json",
        ];
        let json = tmp.path().join("err2.json").display().to_string();
        let mut args = args.to_vec();
        args.push(&json);
        let err = fails(&args);
        assert!(
            err.contains("2030-05-01T00:00:00") && err.contains("--baseline"),
            "{store}: {err}"
        );
        let mut args2 = args.clone();
        args2[9] = B2;
        let out = rdbinsight(&args2, &[]);
        assert_eq!(out.status.code(), Some(2), "{store}");
    }
}

/// A key of `len` bytes: `long:`, `L` up to 8 KB, then `tail` repeated.
fn long_key(len: usize, tail: u8) -> Vec<u8> {
    let mut k = b"long:".to_vec();
    k.resize(8_192, b'L');
    k.resize(len, tail);
    k
}

#[test]
fn long_keys_are_shown_cut_with_length_and_digest_the_same_from_every_store() {
    let stores = Stores::new("report_long_keys");
    let tmp = &stores.tmp;
    const B0: &str = "2030-06-01T00:00:00Z";
    const B1: &str = "2030-06-02T00:00:00Z";
    // Two 10 KB keys sharing their first 8 KB and equal in size (only their digests order
    // them), a key that is exactly their first 4 KiB, one a byte longer, a small one.
    let (k1, k2, k3) = (
        long_key(10_000, b'1'),
        long_key(10_000, b'2'),
        long_key(10_000, b'3'),
    );
    let exact = k1[..4_096].to_vec();
    let mut plus_one = exact.clone();
    plus_one.push(b'!');
    let base_rdb = rdb_file(tmp.path(), "base", &[], |c| {
        set(c, &k1, b"vv");
        set(c, &k2, b"vv");
        set(c, &exact, b"e");
        set(c, &plus_one, b"p");
        set(c, b"small", b"s");
    });
    let cur_rdb = rdb_file(tmp.path(), "cur", &[], |c| {
        set(c, &k1, &[b'v'; 5_000]);
        set(c, &k2, b"vv");
        set(c, &k3, b"vv");
        set(c, &exact, b"e");
        select(c, 1);
        set(c, &k2, b"vv");
    });
    let base = stores.dump(&file_source(&base_rdb, "long", "10.0.0.1:6379"), B0, "lb");
    let cur = stores.dump(&file_source(&cur_rdb, "long", "10.0.0.1:6379"), B1, "lc");
    assert!(cur.iter().any(|r| r.key == k3 && r.key.len() == 10_000));

    let mut reports = Vec::new();
    for (batch, recs, what) in [(B0, &base, "long keys, baseline"), (B1, &cur, "long keys")] {
        for measure in ["mem", "rdb"] {
            let r = stores.report(
                "long",
                &[
                    "--batch",
                    batch,
                    "--prefix-threshold",
                    "2",
                    "--measure",
                    measure,
                ],
                &format!("{what}-{measure}"),
            );
            let mut p = params("long", batch, 100);
            p.micro_pct = 2_000_000;
            p.pct_text = "2";
            p.measure = measure;
            check(&r, recs, &p, &format!("{what}, --measure {measure}"));
            if measure == "mem" {
                reports.push(r);
            }
        }
    }
    let (base_r, cur_r) = (&reports[0], &reports[1]);

    // By hand: the keys are cut, with their length and digest.
    let shown = |k: &[u8]| String::from_utf8(k[..4_096].to_vec()).expect("ascii");
    let rows = base_r["top_keys_by_size"].as_array().expect("top");
    let long_rows: Vec<&Value> = rows.iter().filter(|r| r["key"]["len"] == 10_000).collect();
    assert_eq!(long_rows.len(), 2, "{rows:?}");
    let digests: Vec<String> = [&k1, &k2].map(|k| report_ref::sha256_hex(k)).to_vec();
    let mut sorted = digests.clone();
    sorted.sort();
    for (row, d) in long_rows.iter().zip(&sorted) {
        assert_eq!(row["key"]["text"], shown(&k1));
        assert_eq!(
            row["key"]["sha256"],
            d.as_str(),
            "equal sizes: digest order"
        );
    }
    let exact_row = rows
        .iter()
        .find(|r| r["key"]["text"] == shown(&k1) && r["key"].get("len").is_none())
        .expect("the 4 KiB key is shown whole");
    assert!(exact_row["key"].get("sha256").is_none());
    let cap = base_r["prefix_tree"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["prefix_len"] == 4_096)
        .expect("a node at the 4 KiB cap");
    assert_eq!(cap["keys"], 4, "{cap}");
    assert_eq!(cap["is_key"], true, "the 4 KiB key is itself");
    assert!(
        base_r["prefix_tree"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|n| n["prefix_len"].as_u64().expect("len") <= 4_096)
    );

    // --baseline: (db, key) identity and the key order on long keys.
    let got = stores.report(
        "long",
        &["--batch", B1, "--baseline", B0, "--prefix-threshold", "2"],
        "long keys, changes",
    );
    let want = report_ref::changes(&cur, &base, cur_r, base_r, 100);
    report_ref::assert_same_report(&got["changes"], &want, "long keys, changes");
    let new: Vec<(u64, Option<u64>)> = got["changes"]["top_new_keys"]
        .as_array()
        .expect("new keys")
        .iter()
        .map(|k| (k["db"].as_u64().expect("db"), k["key"]["len"].as_u64()))
        .collect();
    assert_eq!(new.len(), 2, "k3 in db 0 and k2 in db 1: {new:?}");
    assert!(new.iter().all(|n| n.1 == Some(10_000)), "{new:?}");
}

/// 40 keys of 10 MiB (`scripts/gen-huge-keys.py`, a 4.6 MB RDB) dumped into every store: the
/// report from each stays within 16 MiB (`--memory-limit 16MiB` for Parquet) + 64 MiB of peak
/// RSS, with a page under 5 MB, and the documents are byte-identical. Before keys were cut to
/// 4 KiB the Parquet report took 2.0 GB and wrote a 2.1 GB page.
#[test]
fn forty_keys_of_ten_mib_report_within_the_memory_limit_from_every_store() {
    let stores = Stores::new("report_huge_keys");
    let rdb = stores.tmp.path().join("huge.rdb");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen-huge-keys.py");
    let out = Command::new("python3")
        .args([script, rdb.to_str().expect("utf-8")])
        .output()
        .expect("run python3 scripts/gen-huge-keys.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    const BATCH: &str = "2030-07-01T00:00:00Z";
    // Dumped without the JSON lines: this process reading 400 MB of keys back would keep its
    // RSS (the allocator keeps what it freed) and so the measured children's `ru_maxrss` high.
    let mut dump = vec!["dump".to_string()];
    dump.extend(file_source(&rdb, "huge", "i1"));
    dump.extend(["--batch-timestamp", BATCH, "--allow-future-batch"].map(String::from));
    let with = |tail: &[&str]| {
        let mut a = dump.clone();
        a.extend(tail.iter().map(|s| s.to_string()));
        a
    };
    ok(&with(&["into-parquet", "--dir", &stores.parquet()]));
    for (_, url, on_cluster) in stores.ch.as_ref().map(Ch::stores).unwrap_or_default() {
        let mut out = vec!["into-clickhouse", "--url", &url];
        match &on_cluster {
            None => out.push("--auto-create-tables"),
            Some(c) => out.extend(["--on-cluster", c]),
        }
        ok(&with(&out));
    }
    // The keys as the script writes them: `huge-key-NN-` then 'x' up to 10 MiB.
    let mut all: Vec<String> = (0..40)
        .map(|i| {
            let mut k = format!("huge-key-{i:02}-").into_bytes();
            k.resize(10 << 20, b'x');
            report_ref::sha256_hex(&k)
        })
        .collect();
    all.sort_unstable();
    let mut sources: Vec<(&str, Vec<String>)> = vec![(
        "parquet",
        vec!["from-parquet".into(), "--dir".into(), stores.parquet()],
    )];
    for (store, url, _) in stores.ch.as_ref().map(Ch::stores).unwrap_or_default() {
        sources.push((store, vec!["from-clickhouse".into(), "--url".into(), url]));
    }
    let mut docs = Vec::new();
    for (store, source) in &sources {
        let json = stores.tmp.path().join(format!("huge.{store}.json"));
        let page = stores.tmp.path().join(format!("huge.{store}.html"));
        let mut args: Vec<&str> = vec!["report"];
        args.extend(source.iter().map(String::as_str));
        args.extend(["--cluster", "huge"]);
        if *store == "parquet" {
            // The ClickHouse reader has no sort of its own to bound: the same limit applies.
            args.extend(["--memory-limit", "16MiB"]);
        }
        args.extend(["--json", json.to_str().expect("utf-8")]);
        args.extend(["-o", page.to_str().expect("utf-8")]);
        let (code, peak, stderr) = run_measured(&args);
        assert_eq!(code, 0, "{store}: {stderr}");
        eprintln!("report from {store}: peak RSS {} MiB", peak >> 20);
        let limit = (16u64 << 20) + (64 << 20);
        assert!(
            peak <= limit,
            "{store}: peak RSS {} MiB > {} MiB",
            peak >> 20,
            limit >> 20
        );
        let page_len = std::fs::metadata(&page).expect("page").len();
        assert!(
            page_len < 5_000_000,
            "{store}: the page is {page_len} bytes"
        );
        docs.push(std::fs::read(&json).expect("json"));
    }
    for (d, (store, _)) in docs.iter().zip(&sources) {
        assert!(d == &docs[0], "the Parquet and {store} reports differ");
    }
    let doc: Value = serde_json::from_slice(&docs[0]).expect("JSON");
    let top = doc["top_keys_by_size"].as_array().expect("top");
    assert_eq!(top.len(), 40);
    assert!(top.iter().all(|r| r["key"]["len"] == 10 << 20), "{top:?}");
    let mut got: Vec<&str> = top
        .iter()
        .map(|r| r["key"]["sha256"].as_str().expect("sha256"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, all, "every key's digest, once");
}
