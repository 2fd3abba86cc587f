//! The real ClickHouse engine for tests, and what the ClickHouse tests share.
//!
//! The engine comes from `RDBINSIGHT_TEST_CLICKHOUSE_URL` (`http://[user[:pass]@]host:port`,
//! without a database). `scripts/clickhouse-test-env.sh cargo test` starts a local one (the
//! chdb-core wheel's embedded server) and sets it. Without the variable these tests FAIL,
//! unless `RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1` skips them explicitly. Every test works in its
//! own fresh database and drops it at the end.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use rdbinsight::output::clickhouse::schema;
use rdbinsight::output::clickhouse::{ClickHouseConfig, ClickHouseOutput, ClickHouseUrl};
use rdbinsight::output::{BatchContext, ChunkWriter, Output, OutputError};
use rdbinsight::record::{Encoding, Record, RecordType};

pub const URL_VAR: &str = "RDBINSIGHT_TEST_CLICKHOUSE_URL";
pub const SKIP_VAR: &str = "RDBINSIGHT_SKIP_CLICKHOUSE_TESTS";

/// The engine's base URL, or `None` when skipping was asked for. Panics (fails the test) when
/// the URL is not set and skipping was not asked for.
pub fn base_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ => {
            if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
                eprintln!("{SKIP_VAR}=1: skipping a ClickHouse test");
                return None;
            }
            panic!(
                "{URL_VAR} is not set, so there is no ClickHouse to test against.\n\
                 Start the local test engine and run the tests with it:\n    \
                 scripts/clickhouse-test-env.sh cargo test\n\
                 (or `source scripts/clickhouse-test-env.sh` once per shell), or point {URL_VAR} \
                 at your own ClickHouse (http://[user[:pass]@]host:8123), or set {SKIP_VAR}=1 to \
                 skip the ClickHouse tests explicitly."
            )
        }
    }
}

/// An admin client (no database) for `base` (`http://[user[:pass]@]host:port`).
pub fn admin_client(base: &str) -> clickhouse::Client {
    let parsed = ClickHouseUrl::parse(&format!("{base}?database=default"))
        .unwrap_or_else(|e| panic!("{base}: {e}"));
    let mut admin = clickhouse::Client::default().with_url(parsed.endpoint());
    if let Some(user) = parsed.user {
        admin = admin.with_user(user);
    }
    if let Some(password) = parsed.password {
        admin = admin.with_password(password);
    }
    admin
}

/// A fresh database for one test; dropped by [`TestDb::drop_db`].
pub struct TestDb {
    pub base: String,
    pub name: String,
    pub admin: clickhouse::Client,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A database name unique to this process and call.
pub fn unique_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "rdbinsight_test_{test}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

impl TestDb {
    pub fn new(test: &str) -> Option<TestDb> {
        let base = base_url()?;
        Some(TestDb::on(&base, test))
    }

    /// A database on the engine at `base`.
    pub fn on(base: &str, test: &str) -> TestDb {
        TestDb {
            base: base.to_string(),
            name: unique_name(test),
            admin: admin_client(base),
        }
    }

    /// `--url` for this database.
    pub fn url(&self) -> String {
        format!("{}?database={}", self.base, self.name)
    }

    pub fn output(&self, auto_create: bool) -> ClickHouseOutput {
        ClickHouseOutput::from_args(&self.url(), None, auto_create, 30).expect("valid URL")
    }

    /// An output (`--auto-create-tables`) with batch `b` prepared.
    pub async fn prepared(&self, b: &BatchContext) -> ClickHouseOutput {
        let mut output = self.output(true);
        output.prepare_batch(b).await.expect("prepare_batch");
        output
    }

    /// Run a statement; `{db}` is replaced by the quoted database name.
    pub async fn exec(&self, sql: &str) {
        let sql = sql.replace("{db}", &format!("`{}`", self.name));
        self.admin
            .query(&sql.replace('?', "??"))
            .execute()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The result as TabSeparated text, trailing newline removed; `{db}` as for `exec`.
    pub async fn q(&self, sql: &str) -> String {
        let sql = sql.replace("{db}", &format!("`{}`", self.name));
        let bytes = self
            .admin
            .query(&sql.replace('?', "??"))
            .fetch_bytes("TabSeparated")
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        String::from_utf8_lossy(&bytes).trim_end().to_string()
    }

    /// `SELECT count() FROM {db}.<table> [WHERE ...]` as a number.
    pub async fn count(&self, table_and_filter: &str) -> u64 {
        self.q(&format!("SELECT count() FROM {{db}}.{table_and_filter}"))
            .await
            .parse()
            .expect("a count")
    }

    /// `count() \t uniqExact(key)` of the view, `filter` (e.g. `WHERE cluster = 'c1'`) applied.
    pub async fn view_keys(&self, filter: &str) -> String {
        self.q(&format!(
            "SELECT count(), uniqExact(key) FROM {{db}}.redis_records_view {filter}"
        ))
        .await
    }

    /// How many of this database's tables match `filter` (e.g. `AND name = 'x'`).
    pub async fn tables(&self, filter: &str) -> String {
        self.q(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}' {filter}",
            self.name
        ))
        .await
    }

    /// The latest state of every claim: `seq state` lines for `cluster`.
    pub async fn claim_states(&self, cluster: &str) -> String {
        self.q(&format!(
            "SELECT toUnixTimestamp64Nano(batch), seq, argMax(state, version) FROM \
             {{db}}.import_batch_claims WHERE cluster = '{cluster}' GROUP BY batch, seq \
             ORDER BY batch, seq"
        ))
        .await
    }

    pub async fn drop_db(self) {
        self.exec("DROP DATABASE IF EXISTS {db}").await;
    }
}

pub const TYPES: [(RecordType, Encoding); 7] = [
    (RecordType::String, Encoding::Raw),
    (RecordType::List, Encoding::QuickList2),
    (RecordType::Set, Encoding::IntSet),
    (RecordType::ZSet, Encoding::SkipList),
    (RecordType::Hash, Encoding::ListPack),
    (RecordType::Stream, Encoding::ListPacks3),
    (RecordType::Module, Encoding::Module),
];

/// Deterministic synthetic record `i`. Every 1000th key (from 7) is not valid UTF-8.
pub fn record(i: u64) -> Record {
    let (t, e) = TYPES[(i % 7) as usize];
    let key = if i % 1000 == 7 {
        let mut k = vec![0xff, 0xfe, 0x00, b'k'];
        k.extend_from_slice(i.to_string().as_bytes());
        k
    } else {
        format!("user:{i}:profile").into_bytes()
    };
    Record {
        db: i % 4,
        key,
        r#type: t,
        member_count: i % 100 + 1,
        rdb_size: 20 + i % 1000,
        encoding: e,
        expire_at_ms: i.is_multiple_of(3).then_some(1_700_000_000_123 + i as i64),
        idle_seconds: i.is_multiple_of(5).then_some(i * 10),
        freq: i.is_multiple_of(11).then_some((i % 256) as u8),
        codis_slot: i.is_multiple_of(2).then_some((i % 1024) as u16),
        redis_slot: (i % 2 == 1).then_some((i % 16384) as u16),
        mem_size: (!i.is_multiple_of(3)).then_some(64 + i),
    }
}

pub fn batch(cluster: &str, ts_nanos: i64) -> BatchContext {
    super::output::batch(cluster, ts_nanos)
}

/// A batch timestamp two hours ago, at .123456789 s. Batches must be recent: one older than
/// the table TTL (`--ttl-days`) is refused.
pub fn t1() -> i64 {
    static T: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        let now = chrono::Utc::now().timestamp();
        (now - 7200) * 1_000_000_000 + 123_456_789
    })
}

pub fn t2() -> i64 {
    t1() + 3_600_000_000_000
}

/// RFC 3339 of a batch timestamp (for `--batch-timestamp`).
pub fn rfc3339(nanos: i64) -> String {
    rdbinsight::record::BatchTs::from_nanos(nanos).rfc3339()
}

/// An RDB file with `keys` string keys, written by a real redis-server (`DEBUG POPULATE`),
/// copied into `dir`.
pub fn rdb_with_keys(dir: &Path, keys: u64) -> PathBuf {
    let server = super::redis::RedisServer::start(&[]);
    assert_eq!(
        server.cli(&["DEBUG", "POPULATE", &keys.to_string(), "key", "40"]),
        "OK"
    );
    let path = dir.join(format!("populate-{keys}.rdb"));
    std::fs::copy(server.save(), &path).expect("copy the RDB");
    path
}

/// `rdbinsight dump from-file --path PATH --cluster CLUSTER --instance i1
/// --batch-timestamp TS into-clickhouse --url URL [extra...]`, not started.
pub fn dump_command(
    path: &Path,
    cluster: &str,
    batch_nanos: i64,
    url: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = super::cli::command(&["dump", "from-file", "--path"]);
    cmd.arg(path)
        .args([
            "--cluster",
            cluster,
            "--instance",
            "i1",
            "--batch-timestamp",
        ])
        .arg(rfc3339(batch_nanos))
        .args(["into-clickhouse", "--url", url])
        .args(extra);
    cmd
}

/// The `error:` lines of a run's stderr.
pub fn error_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

/// `rdbinsight misc <args...>` run to the end (e.g. `clickhouse-schema`,
/// `clickhouse-drop-batch`).
pub fn misc(args: &[&str]) -> std::process::Output {
    let mut all = vec!["misc"];
    all.extend_from_slice(args);
    super::cli::command(&all).output().expect("run rdbinsight")
}

/// A writer for `instance` of the prepared batch `b`, its instance prepared.
pub async fn instance_writer(
    output: &mut ClickHouseOutput,
    b: &BatchContext,
    instance: &str,
) -> <ClickHouseOutput as Output>::Writer {
    let mut w = output
        .writer_for(b.write_context(instance))
        .expect("writer");
    w.prepare_instance().await.expect("prepare_instance");
    w
}

/// Records `range` for `instance` through one writer; `finalize`: call `finalize_instance`
/// (without it the writer is dropped mid-way, as when an instance fails).
pub async fn write_instance(
    output: &mut ClickHouseOutput,
    b: &BatchContext,
    instance: &str,
    range: Range<u64>,
    finalize: bool,
) -> Result<(), OutputError> {
    let mut w = output.writer_for(b.write_context(instance))?;
    w.prepare_instance().await?;
    for i in range {
        w.write_record(&record(i)).await?;
    }
    if finalize {
        w.finalize_instance().await?;
    }
    Ok(())
}

/// Writes records `range` until one is refused: that error (if any) and how many records
/// were accepted before it.
pub async fn write_until_error(
    w: &mut impl ChunkWriter,
    range: Range<u64>,
) -> (Option<String>, u64) {
    let mut written = 0;
    for i in range {
        if let Err(e) = w.write_record(&record(i)).await {
            return (Some(e.to_string()), written);
        }
        written += 1;
    }
    (None, written)
}

/// The error of a writer the server refuses: the first refused record of `range`, or, when
/// all were taken (buffered), `finalize_instance`'s; and how many records were accepted.
pub async fn refused(w: &mut impl ChunkWriter, range: Range<u64>) -> (String, u64) {
    match write_until_error(w, range).await {
        (Some(e), written) => (e, written),
        (None, written) => (
            w.finalize_instance()
                .await
                .expect_err("the server refuses the rows")
                .to_string(),
            written,
        ),
    }
}

/// The two test shards (`RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS`, comma-separated) and their
/// cluster name (`RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER`), when both are set.
pub fn shard_env() -> Option<(Vec<String>, String)> {
    let urls = std::env::var("RDBINSIGHT_TEST_CLICKHOUSE_SHARD_URLS").unwrap_or_default();
    let cluster = std::env::var("RDBINSIGHT_TEST_CLICKHOUSE_CLUSTER").unwrap_or_default();
    let urls: Vec<String> = urls
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    (!urls.is_empty() && !cluster.is_empty()).then_some((urls, cluster))
}

/// A database of one name on every test shard, with rdbinsight's `--on-cluster` schema made
/// runnable without Keeper (the test engines have none, so `ON CLUSTER` DDL and Replicated
/// tables cannot run): the per-shard table on each engine with a non-replicated engine, the
/// `Distributed` table and the view as printed (without `ON CLUSTER`), and the markers,
/// claims and summaries tables (single-server DDL) on the first engine, the one the writer
/// talks to.
pub struct Shards {
    pub dbs: Vec<TestDb>,
    pub cluster: String,
}

impl Shards {
    pub async fn create(test: &str, urls: &[String], cluster: &str) -> Shards {
        assert!(urls.len() >= 2, "two shards expected: {urls:?}");
        let name = unique_name(test);
        let ddl =
            |object: &str, sharded: bool| -> String {
                let on = sharded.then_some(cluster);
                let o = schema::schema_objects(Some(&name), 30, on)
                    .into_iter()
                    .find(|o| o.name == object)
                    .expect("schema object");
                let sql = o.ddl.replace(&format!(" ON CLUSTER `{cluster}`"), "").replace(
                "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', \
                 '{replica}')",
                "ReplacingMergeTree",
            );
                assert!(!sql.contains("Replicated"), "{sql}");
                sql
            };
        let mut dbs = Vec::new();
        for url in urls {
            let mut db = TestDb::on(url, test);
            db.name = name.clone();
            db.exec("CREATE DATABASE {db}").await;
            db.exec(&ddl(schema::RECORDS_LOCAL_TABLE, true)).await;
            dbs.push(db);
        }
        for (object, sharded) in [
            (schema::RECORDS_TABLE, true),
            (schema::BATCHES_TABLE, false),
            (schema::CLAIMS_TABLE, false),
            (schema::SUMMARIES_TABLE, false),
            (schema::VIEW, true),
        ] {
            dbs[0].exec(&ddl(object, sharded)).await;
        }
        Shards {
            dbs,
            cluster: cluster.to_string(),
        }
    }

    /// `--url` of the engine the writer talks to.
    pub fn url(&self) -> String {
        self.dbs[0].url()
    }

    /// An `--on-cluster` output for the sharded schema.
    pub fn output(&self) -> ClickHouseOutput {
        let config = ClickHouseConfig::new(&self.url(), None, false, 30)
            .expect("url")
            .with_on_cluster(Some(&self.cluster))
            .expect("cluster");
        ClickHouseOutput::new(config).expect("output")
    }

    /// Rows of the per-shard records table on each shard.
    pub async fn local_counts(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for db in &self.dbs {
            out.push(db.count(schema::RECORDS_LOCAL_TABLE).await);
        }
        out
    }

    pub async fn drop_all(self) {
        for db in self.dbs {
            db.drop_db().await;
        }
    }
}

/// `prepare_batch`'s error (it must fail) as text.
pub async fn prepare_error(output: &mut ClickHouseOutput, b: &BatchContext) -> String {
    output
        .prepare_batch(b)
        .await
        .expect_err("prepare_batch must fail")
        .to_string()
}

/// Run `cmd` to the end; it must succeed. Returns its stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&super::cli::succeeds(cmd).stderr).into_owned()
}

/// A dump into `db` of an RDB of `keys` keys (written by a real redis-server) read from a
/// FIFO: the first half of the file is fed, the dump keeps waiting for the rest. `setup`
/// adjusts the command (environment, stdio) before it is spawned.
pub struct FedDump {
    pub child: std::process::Child,
    pub source: std::fs::File,
    pub rdb: PathBuf,
    pub bytes: Vec<u8>,
}

impl FedDump {
    pub fn start(
        dir: &Path,
        keys: u64,
        db: &TestDb,
        extra: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> FedDump {
        use std::io::Write as _;
        let rdb = rdb_with_keys(dir, keys);
        let bytes = std::fs::read(&rdb).expect("read rdb");
        let fifo = dir.join("source.fifo");
        super::cli::mkfifo(&fifo);
        let mut cmd = dump_command(&fifo, "c1", t1(), &db.url(), extra);
        setup(&mut cmd);
        let child = cmd.spawn().expect("spawn rdbinsight");
        let mut source = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open fifo");
        source
            .write_all(&bytes[..bytes.len() / 2])
            .expect("write the first half");
        FedDump {
            child,
            source,
            rdb,
            bytes,
        }
    }
}
