//! The ClickHouse output against a real ClickHouse (no mocks).
//!
//! The engine comes from `RDBINSIGHT_TEST_CLICKHOUSE_URL` (`http://[user[:pass]@]host:port`,
//! without a database). `scripts/clickhouse-test-env.sh cargo test` starts a local one (the
//! chdb-core wheel's embedded server) and sets it. Without the variable these tests FAIL,
//! unless `RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1` skips them explicitly.
//!
//! Every test works in its own fresh database and drops it at the end. Throughput is measured
//! by `bench/clickhouse.sh`, not here. The batch-attempt rules are tested in
//! clickhouse_attempts.rs, failures in clickhouse_faults.rs, `--on-cluster` in
//! clickhouse_cluster.rs.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::ch::{
    TYPES, TestDb, batch, dump_command, instance_writer, misc, prepare_error, record, refused, t1,
    t2, write_instance,
};
use rdbinsight::output::clickhouse::{ClickHouseOutput, ClickHouseUrl};
use rdbinsight::output::{BatchContext, ChunkWriter, Output};
use rdbinsight::record::Record;

/// A whole successful dump of `n_a` + `n_b` records over two instances.
async fn full_dump(output: &mut ClickHouseOutput, b: &BatchContext, n_a: u64, n_b: u64) {
    output.prepare_batch(b).await.expect("prepare_batch");
    write_instance(output, b, "10.0.0.1:6379", 0..n_a, true)
        .await
        .expect("instance a");
    write_instance(output, b, "10.0.0.2:6379", n_a..n_a + n_b, true)
        .await
        .expect("instance b");
    output.finalize_batch().await.expect("finalize_batch");
}

/// `toString(batch)` of a DateTime64(9, 'UTC').
fn batch_text(nanos: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos)
        .format("%Y-%m-%d %H:%M:%S%.9f")
        .to_string()
}

#[tokio::test]
async fn end_to_end_two_instances() {
    let Some(db) = TestDb::new("e2e") else { return };
    let mut output = db.output(true);
    let b = batch("prod-cache", t1());
    let (n_a, n_b) = (15_000u64, 10_000u64);
    full_dump(&mut output, &b, n_a, n_b).await;

    // Counts per instance.
    assert_eq!(
        db.q("SELECT instance, count() FROM {db}.redis_records_raw GROUP BY instance ORDER BY instance")
            .await,
        "10.0.0.1:6379\t15000\n10.0.0.2:6379\t10000"
    );
    // Sums and null counts against the generator.
    let all: Vec<Record> = (0..n_a + n_b).map(record).collect();
    let sum_members: u64 = all.iter().map(|r| r.member_count).sum();
    let sum_size: u64 = all.iter().map(|r| r.rdb_size).sum();
    let sum_db: u64 = all.iter().map(|r| r.db).sum();
    let no_expire = all.iter().filter(|r| r.expire_at_ms.is_none()).count();
    let sum_expire: i64 = all.iter().filter_map(|r| r.expire_at_ms).sum();
    let no_idle = all.iter().filter(|r| r.idle_seconds.is_none()).count();
    let sum_idle: u64 = all.iter().filter_map(|r| r.idle_seconds).sum();
    let no_freq = all.iter().filter(|r| r.freq.is_none()).count();
    let sum_freq: u64 = all.iter().filter_map(|r| r.freq).map(u64::from).sum();
    let codis: u64 = all.iter().filter_map(|r| r.codis_slot).map(u64::from).sum();
    let redis: u64 = all.iter().filter_map(|r| r.redis_slot).map(u64::from).sum();
    let non_utf8 = all
        .iter()
        .filter(|r| std::str::from_utf8(&r.key).is_err())
        .count();
    assert_eq!(
        db.q("SELECT sum(member_count), sum(rdb_size), sum(db), \
              countIf(expire_at IS NULL), sum(toUnixTimestamp64Milli(expire_at)), \
              countIf(idle_seconds IS NULL), sum(idle_seconds), \
              countIf(freq IS NULL), sum(freq), sum(codis_slot), sum(redis_slot), \
              countIf(NOT isValidUTF8(key)), uniqExact(key, db) \
              FROM {db}.redis_records_raw")
            .await,
        format!(
            "{sum_members}\t{sum_size}\t{sum_db}\t{no_expire}\t{sum_expire}\t{no_idle}\t{sum_idle}\t\
             {no_freq}\t{sum_freq}\t{codis}\t{redis}\t{non_utf8}\t{}",
            n_a + n_b
        )
    );
    // Per type / encoding.
    let per_type = db
        .q("SELECT type, encoding, count() FROM {db}.redis_records_raw GROUP BY type, encoding ORDER BY type")
        .await;
    let mut expected: Vec<String> = TYPES
        .iter()
        .enumerate()
        .map(|(k, (t, e))| {
            let n = (0..n_a + n_b).filter(|i| i % 7 == k as u64).count();
            format!("{t}\t{e}\t{n}")
        })
        .collect();
    expected.sort();
    assert_eq!(per_type, expected.join("\n"));

    // One non-UTF-8 key, byte for byte, with every typed column.
    let r = record(1007);
    assert_eq!(
        db.q(
            "SELECT hex(key), db, type, member_count, rdb_size, encoding, \
              toUnixTimestamp64Milli(expire_at), idle_seconds, freq, codis_slot, redis_slot, \
              instance, cluster, toUnixTimestamp64Nano(batch), toString(batch), toTypeName(batch) \
              FROM {db}.redis_records_raw WHERE key = unhex('FFFE006B31303037')"
        )
        .await,
        format!(
            "FFFE006B31303037\t{}\tmodule\t{}\t{}\tmodule\t\\N\t\\N\t\\N\t\\N\t{}\t\
             10.0.0.1:6379\tprod-cache\t{}\t{}\tDateTime64(9, \\'UTC\\')",
            r.db,
            r.member_count,
            r.rdb_size,
            r.redis_slot.expect("odd i"),
            t1(),
            batch_text(t1())
        )
    );
    // A key with every optional column set: i = 990 (expire, idle, freq, codis).
    let r = record(990);
    assert_eq!(
        db.q(
            "SELECT toString(expire_at), idle_seconds, freq, codis_slot, redis_slot \
              FROM {db}.redis_records_raw WHERE key = 'user:990:profile'"
        )
        .await,
        format!(
            "2023-11-14 22:13:21.113\t{}\t{}\t{}\t\\N",
            r.idle_seconds.expect("set"),
            r.freq.expect("set"),
            r.codis_slot.expect("set")
        )
    );
    assert_eq!(r.expire_at_ms, Some(1_700_000_001_113));

    // The view shows the completed batch.
    assert_eq!(
        db.q("SELECT count(), min(batch) = max(batch) FROM {db}.redis_records_view")
            .await,
        "25000\t1"
    );
    assert_eq!(
        db.q("SELECT cluster, toUnixTimestamp64Nano(batch) FROM {db}.import_batches_completed")
            .await,
        format!("prod-cache\t{}", t1())
    );
    db.drop_db().await;
}

/// How many parts were ever inserted into `redis_records_raw`. In a (non-replicated) MergeTree
/// every inserted part takes the next block number (from 1) and merges keep the range, so
/// this is the number of INSERTs while each INSERT holds one partition (one batch) and fewer
/// than `max_insert_block_size` rows. (`system.query_log` is not enabled in the test engine.)
async fn inserted_parts(db: &TestDb) -> u64 {
    db.q(&format!(
        "SELECT max(max_block_number) FROM system.parts WHERE database = '{}' AND table = \
         'redis_records_raw' AND active",
        db.name
    ))
    .await
    .parse()
    .expect("a number")
}

#[tokio::test]
async fn inserts_roll_over_at_max_rows() {
    let Some(db) = TestDb::new("rollover") else {
        return;
    };
    let mut ch = ClickHouseOutput::from_args(&db.url(), None, true, 30).expect("valid URL");
    ch.set_max_rows_per_insert(1000);
    let mut output = ch;
    let b = batch("c1", t1());
    // 2500 + 3000 rows: INSERTs of 1000, 1000, 500 and 1000, 1000, 1000.
    full_dump(&mut output, &b, 2500, 3000).await;
    assert_eq!(
        db.q("SELECT count(), uniqExact(instance, db, key) FROM {db}.redis_records_view")
            .await,
        "5500\t5500"
    );
    assert_eq!(inserted_parts(&db).await, 6);
    db.drop_db().await;
}

#[tokio::test]
async fn default_limits_make_one_insert_per_small_instance() {
    let Some(db) = TestDb::new("onepart") else {
        return;
    };
    let mut output = db.output(true);
    let b = batch("c1", t1());
    full_dump(&mut output, &b, 2500, 3000).await;
    assert_eq!(
        db.q("SELECT count() FROM {db}.redis_records_view").await,
        "5500"
    );
    assert_eq!(inserted_parts(&db).await, 2);
    db.drop_db().await;
}

/// `on_idle` ends an INSERT that sent nothing for the idle time (its rows stored, invisible),
/// and only then; the next record begins a new INSERT.
#[tokio::test]
async fn idle_insert_is_ended_and_the_next_row_begins_another() {
    let Some(db) = TestDb::new("idle") else {
        return;
    };
    let mut output = db.output(true);
    output.set_idle_end(Duration::from_millis(300));
    let b = batch("c1", t1());
    output.prepare_batch(&b).await.expect("prepare_batch");
    let mut w = instance_writer(&mut output, &b, "i1").await;
    for i in 0..100 {
        w.write_record(&record(i)).await.expect("write");
    }
    // Not idle long enough yet: the INSERT stays open.
    w.on_idle().await.expect("on_idle");
    assert_eq!(db.count("redis_records_raw").await, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.on_idle().await.expect("on_idle");
    // Ended: stored, but not visible.
    assert_eq!(db.count("redis_records_raw").await, 100);
    assert_eq!(db.count("redis_records_view").await, 0);
    // Nothing open: idle calls do nothing.
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.on_idle().await.expect("on_idle");
    for i in 100..250 {
        w.write_record(&record(i)).await.expect("write");
    }
    w.finalize_instance().await.expect("finalize_instance");
    assert_eq!(w.inserts_started(), 2);
    output.finalize_batch().await.expect("finalize_batch");
    assert_eq!(db.view_keys("").await, "250\t250");
    assert_eq!(inserted_parts(&db).await, 2);
    db.drop_db().await;
}

#[tokio::test]
async fn view_shows_batch_only_after_finalize_batch() {
    let Some(db) = TestDb::new("visible") else {
        return;
    };
    let b = batch("c1", t1());
    let mut output = db.prepared(&b).await;
    write_instance(&mut output, &b, "i1", 0..3000, true)
        .await
        .expect("i1");
    write_instance(&mut output, &b, "i2", 3000..5000, true)
        .await
        .expect("i2");
    // Every row is stored, none visible.
    assert_eq!(
        db.q("SELECT count() FROM {db}.redis_records_raw").await,
        "5000"
    );
    assert_eq!(
        db.q("SELECT count() FROM {db}.redis_records_view").await,
        "0"
    );
    output.finalize_batch().await.expect("finalize_batch");
    assert_eq!(
        db.q("SELECT count() FROM {db}.redis_records_view").await,
        "5000"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn unfinished_batch_stays_invisible() {
    let Some(db) = TestDb::new("unfinished") else {
        return;
    };
    // Batch 1 of cluster c1 completes; so does a batch of another cluster.
    let mut output = db.output(true);
    let b1 = batch("c1", t1());
    full_dump(&mut output, &b1, 1200, 800).await;
    let other = batch("c2", t1() + 5);
    full_dump(&mut output, &other, 10, 20).await;

    // Batch 2 of c1: one instance finalized, one dropped mid-way; finalize_batch never runs
    // (what the pipeline does when an instance fails).
    let mut output = db.output(false);
    let b2 = batch("c1", t2());
    output.prepare_batch(&b2).await.expect("prepare_batch");
    write_instance(&mut output, &b2, "10.0.0.1:6379", 0..3000, true)
        .await
        .expect("finalized instance");
    write_instance(&mut output, &b2, "10.0.0.2:6379", 3000..4000, false)
        .await
        .expect("dropped instance");
    drop(output);

    // Batch 2's finalized rows are stored...
    assert_eq!(
        db.q(&format!(
            "SELECT count() FROM {{db}}.redis_records_raw WHERE toUnixTimestamp64Nano(batch) = {}",
            t2()
        ))
        .await,
        "3000"
    );
    // ...but the view still shows batch 1 of c1 (and c2's batch), only.
    assert_eq!(
        db.q(
            "SELECT cluster, toUnixTimestamp64Nano(batch), count() FROM {db}.redis_records_view \
              GROUP BY cluster, batch ORDER BY cluster"
        )
        .await,
        format!("c1\t{}\t2000\nc2\t{}\t30", t1(), t1() + 5)
    );
    db.drop_db().await;
}

#[tokio::test]
async fn missing_tables_without_auto_create() {
    let Some(db) = TestDb::new("missing") else {
        return;
    };
    let b = batch("c1", t1());
    // No database at all.
    let err = prepare_error(&mut db.output(false), &b).await;
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("rdbinsight misc clickhouse-schema"), "{err}");
    assert!(err.contains("--auto-create-tables"), "{err}");

    // The database but only one table.
    db.exec("CREATE DATABASE {db}").await;
    db.exec(
        "CREATE TABLE {db}.import_batches_completed (cluster String, batch DateTime64(9, 'UTC')) \
         ENGINE = MergeTree ORDER BY cluster",
    )
    .await;
    let err = prepare_error(&mut db.output(false), &b).await;
    assert!(
        err.contains(
            "table redis_records_raw, table import_batch_claims, table import_instance_summaries, \
             view redis_records_view"
        ),
        "{err}"
    );
    assert!(!err.contains("table import_batches_completed"), "{err}");
    assert!(err.contains("rdbinsight misc clickhouse-schema"), "{err}");

    // A deployment of an earlier version: everything but the claims table.
    db.exec("DROP DATABASE {db}").await;
    let mut output = db.output(true);
    output.prepare_batch(&b).await.expect("creates everything");
    drop(output);
    db.exec("DROP TABLE {db}.import_batch_claims").await;
    let err = prepare_error(&mut db.output(false), &batch("c1", t2())).await;
    assert!(err.contains("lacks table import_batch_claims"), "{err}");
    assert!(err.contains("it only adds what is missing"), "{err}");
    db.drop_db().await;
}

#[tokio::test]
async fn missing_tables_with_auto_create() {
    let Some(db) = TestDb::new("autocreate") else {
        return;
    };
    let mut output = ClickHouseOutput::from_args(&db.url(), None, true, 7).expect("valid URL");
    output
        .prepare_batch(&batch("c1", t1()))
        .await
        .expect("creates everything");
    // Idempotent.
    let mut output = ClickHouseOutput::from_args(&db.url(), None, true, 7).expect("valid URL");
    output
        .prepare_batch(&batch("c1", t2()))
        .await
        .expect("second prepare");
    let objects = db
        .q(&format!(
            "SELECT name, engine FROM system.tables WHERE database = '{}' ORDER BY name",
            db.name
        ))
        .await;
    assert_eq!(
        objects,
        "import_batch_claims\tReplacingMergeTree\n\
         import_batches_completed\tReplacingMergeTree\n\
         import_instance_summaries\tReplacingMergeTree\n\
         redis_records_raw\tReplacingMergeTree\n\
         redis_records_view\tView"
    );
    let ddl = db
        .q(&format!(
            "SELECT create_table_query FROM system.tables WHERE database = '{}' AND name = 'redis_records_raw'",
            db.name
        ))
        .await;
    assert!(ddl.contains("PARTITION BY toYYYYMMDD(batch)"), "{ddl}");
    assert!(
        ddl.contains("ORDER BY (cluster, batch, instance, db, key, attempt)"),
        "{ddl}"
    );
    assert!(
        ddl.contains("PRIMARY KEY (cluster, batch, instance, db, key)"),
        "{ddl}"
    );
    assert!(ddl.contains("toIntervalDay(7)"), "{ddl}");
    let comments = db
        .q(&format!(
            "SELECT countIf(comment != ''), count() FROM system.columns WHERE database = '{}' AND table = 'redis_records_raw'",
            db.name
        ))
        .await;
    // The record columns and the attempt.
    let n = rdbinsight::record::columns::COLUMNS.len() + 1;
    assert_eq!(comments, format!("{n}\t{n}"));
    // Only some objects missing: the schema is brought up to date (the view here; every
    // statement is idempotent).
    db.exec("DROP VIEW {db}.redis_records_view").await;
    let mut output = ClickHouseOutput::from_args(&db.url(), None, true, 7).expect("valid URL");
    output
        .prepare_batch(&batch("c1", t2() + 1))
        .await
        .expect("recreates the view");
    assert_eq!(
        db.q(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}'",
            db.name
        ))
        .await,
        "5"
    );
    db.drop_db().await;
}

/// Every object the batch touches is checked in prepare_batch, with its columns, before
/// anything is written or claimed.
#[tokio::test]
async fn incompatible_schema_is_refused_before_anything_is_written() {
    let Some(db) = TestDb::new("mismatch") else {
        return;
    };
    let mut output = db.output(true);
    output
        .prepare_batch(&batch("c1", t1()))
        .await
        .expect("prepare_batch");
    drop(output);
    db.exec("TRUNCATE TABLE {db}.import_batch_claims").await;
    // Someone changed column types and dropped columns, in the records and the markers.
    db.exec("ALTER TABLE {db}.redis_records_raw MODIFY COLUMN member_count UInt32")
        .await;
    db.exec("ALTER TABLE {db}.redis_records_raw DROP COLUMN freq")
        .await;
    db.exec("DROP TABLE {db}.import_batches_completed").await;
    db.exec(
        "CREATE TABLE {db}.import_batches_completed (cluster String, batch DateTime64(3, 'UTC')) \
         ENGINE = ReplacingMergeTree ORDER BY (cluster, batch)",
    )
    .await;
    // And the view reads other columns.
    db.exec("DROP VIEW {db}.redis_records_view").await;
    db.exec(
        "CREATE VIEW {db}.redis_records_view AS SELECT cluster, batch FROM {db}.redis_records_raw",
    )
    .await;
    let err = prepare_error(&mut db.output(false), &batch("c1", t2())).await;
    for needle in [
        "redis_records_raw.member_count is UInt32, expected UInt64",
        "redis_records_raw.freq is missing",
        "import_batches_completed.batch is DateTime64(3, 'UTC'), expected DateTime64(9, 'UTC')",
        "redis_records_view.instance is missing",
        "rdbinsight misc clickhouse-schema",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    assert_eq!(err.lines().count(), 1, "{err}");
    // Nothing written, nothing claimed.
    assert_eq!(db.count("redis_records_raw").await, 0);
    assert_eq!(db.count("import_batch_claims").await, 0);
    db.drop_db().await;
}

/// The schema changes between prepare_batch and the INSERT: the server refuses the INSERT,
/// and the error is the server's own (code and text), on one line, not "channel closed".
#[tokio::test]
async fn insert_refused_by_the_server_reports_its_exception() {
    let Some(db) = TestDb::new("refused") else {
        return;
    };
    let b = batch("c1", t1());
    let mut output = db.prepared(&b).await;
    db.exec("ALTER TABLE {db}.redis_records_raw MODIFY COLUMN member_count UInt32")
        .await;
    let mut w = instance_writer(&mut output, &b, "i1").await;
    // Enough rows that chunks keep going out after the server refused the first one.
    let (err, _) = refused(&mut w, 0..200_000).await;
    assert!(err.contains("failed for instance i1"), "{err}");
    assert!(err.contains("Code: "), "{err}");
    assert!(err.contains("member_count"), "{err}");
    assert!(!err.contains("channel closed"), "{err}");
    assert!(!err.contains("http_receive_timeout"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let refused = w
        .write_record(&record(0))
        .await
        .expect_err("refused")
        .to_string();
    assert!(refused.contains("after an earlier error"), "{refused}");
    db.drop_db().await;
}

/// The server fails an INSERT in the middle (a constraint fails on its first block of ~1M
/// rows; the server reads the rest of the body and answers with its exception at the end):
/// the error is the server's exception, and the abort leaves no row behind.
#[tokio::test]
async fn insert_aborted_mid_stream_reports_the_server_exception() {
    let Some(db) = TestDb::new("midstream") else {
        return;
    };
    let b = batch("c1", t1());
    let mut output = db.prepared(&b).await;
    db.exec("ALTER TABLE {db}.redis_records_raw ADD CONSTRAINT small CHECK member_count < 100")
        .await;
    let mut w = instance_writer(&mut output, &b, "i1").await;
    let (err, written) = refused(&mut w, 0..1_100_000).await;
    assert!(written > 0);
    assert!(err.contains("Code: 469."), "{err}");
    assert!(err.contains("(VIOLATED_CONSTRAINT)"), "{err}");
    assert!(!err.contains("channel closed"), "{err}");
    output.abort_batch().await;
    assert_eq!(db.count("redis_records_raw").await, 0);
    db.drop_db().await;
}

#[tokio::test]
async fn schema_from_cli_is_what_the_writer_needs() {
    let Some(db) = TestDb::new("clischema") else {
        return;
    };
    let out = misc(&["clickhouse-schema"]);
    assert!(out.status.success());
    let sql = String::from_utf8(out.stdout).expect("UTF-8");
    db.exec(&format!("CREATE DATABASE `{}`", db.name)).await;
    let in_db = db.admin.clone().with_database(db.name.clone());
    // Twice: the script is idempotent (the second run finds everything up to date).
    for _ in 0..2 {
        for statement in sql
            .split(";\n")
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.lines().all(|l| l.trim_start().starts_with("--")))
        {
            // `query` binds `?` placeholders; `??` is a literal `?`.
            in_db
                .query(&statement.replace('?', "??"))
                .execute()
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
    // Without --auto-create-tables the writer now finds everything.
    let mut output = db.output(false);
    let b = batch("c1", t1());
    full_dump(&mut output, &b, 100, 50).await;
    assert_eq!(
        db.q("SELECT count() FROM {db}.redis_records_view").await,
        "150"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn through_http_proxy() {
    let Some(db) = TestDb::new("proxy") else {
        return;
    };
    let parsed = ClickHouseUrl::parse(&db.url()).expect("valid");
    let target = format!("{}:{}", parsed.host, parsed.port);
    // A minimal forward proxy: records each connection's first request line and
    // Proxy-Authorization header, then relays bytes both ways.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_addr = listener.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen_in = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            let seen = Arc::clone(&seen_in);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                use tokio::io::AsyncWriteExt as _;
                // Read the request head.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match client.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let rest = buf[head_end..].to_vec();
                let mut lines = head.split("\r\n");
                let first = lines.next().unwrap_or("").to_string();
                let mut auth = String::new();
                let mut headers = Vec::new();
                for line in lines.filter(|l| !l.is_empty()) {
                    let lower = line.to_ascii_lowercase();
                    if lower.starts_with("proxy-authorization:") {
                        auth = line.to_string();
                    } else if !lower.starts_with("connection:") {
                        headers.push(line.to_string());
                    }
                }
                if let Ok(mut s) = seen.lock() {
                    s.push(format!("{first} | {auth}"));
                }
                // What a forwarding proxy does: origin-form target, no proxy headers. One
                // request per connection keeps this relay simple.
                let mut parts = first.splitn(3, ' ');
                let (method, uri, version) = (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                let path = uri
                    .strip_prefix("http://")
                    .and_then(|u| u.find('/').map(|i| &u[i..]))
                    .unwrap_or(uri);
                let mut forwarded = format!("{method} {path} {version}\r\n");
                for h in headers {
                    forwarded.push_str(&h);
                    forwarded.push_str("\r\n");
                }
                forwarded.push_str("Connection: close\r\n\r\n");
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                if server.write_all(forwarded.as_bytes()).await.is_err()
                    || server.write_all(&rest).await.is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    let proxy_url = format!("http://pu:p%40ss@{proxy_addr}");
    let mut output =
        ClickHouseOutput::from_args(&db.url(), Some(&proxy_url), true, 30).expect("valid");
    let b = batch("c1", t1());
    full_dump(&mut output, &b, 500, 500).await;
    assert_eq!(
        db.q("SELECT count() FROM {db}.redis_records_view").await,
        "1000"
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(!seen.is_empty());
    for line in &seen {
        // Absolute-form request target, and Basic credentials "pu:p@ss".
        assert!(
            line.contains(&format!(" http://{}:{}/", parsed.host, parsed.port)),
            "{line}"
        );
        assert!(line.ends_with("Basic cHU6cEBzcw=="), "{line}");
    }
    db.drop_db().await;
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let url = format!("http://alice:s3cret@127.0.0.1:{port}?database=x");
    let mut output = ClickHouseOutput::from_args(&url, None, true, 30).expect("valid URL");
    let err = prepare_error(&mut output, &batch("c", t1())).await;
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

/// `https://` really speaks TLS: against the plain-HTTP test engine the handshake fails.
#[tokio::test]
async fn https_speaks_tls() {
    let Some(db) = TestDb::new("tls") else { return };
    let parsed = ClickHouseUrl::parse(&db.url()).expect("valid");
    let url = format!(
        "https://u:tlspw@{}:{}?database={}",
        parsed.host, parsed.port, db.name
    );
    let mut output = ClickHouseOutput::from_args(&url, None, true, 30).expect("valid URL");
    let err = prepare_error(&mut output, &batch("c", t1())).await;
    assert!(
        err.contains("cannot query ClickHouse at https://u:***@"),
        "{err}"
    );
    assert!(!err.contains("tlspw"), "{err}");
}

fn url_error(url: &str) -> String {
    ClickHouseOutput::from_args(url, None, false, 30)
        .expect_err(url)
        .to_string()
}

#[test]
fn bad_urls() {
    let e = url_error("http://u:secretpw@ch.example?database=redis");
    assert!(e.contains("port is missing"), "{e}");
    assert!(!e.contains("secretpw"), "{e}");
    let e = url_error("clickhouse://ch.example:9000?database=redis");
    assert!(e.contains("unsupported scheme 'clickhouse'"), "{e}");
    assert!(e.contains("http:// or https://"), "{e}");
    let e = url_error("http://ch.example:8123");
    assert!(e.contains("database is missing"), "{e}");
    assert!(e.contains("?database="), "{e}");
    let e = url_error("http://ch.example:8123/?database=");
    assert!(e.contains("database is missing"), "{e}");
    assert!(
        ClickHouseOutput::from_args("https://ch.example:8443?database=d", None, false, 30).is_ok()
    );
    let e = ClickHouseOutput::from_args(
        "https://ch.example:8443?database=d",
        Some("http://proxy:3128"),
        false,
        30,
    )
    .expect_err("https through a proxy")
    .to_string();
    assert!(e.contains("not supported"), "{e}");
    let e = ClickHouseOutput::from_args(
        "http://ch.example:8123?database=d",
        Some("socks5://p:1080"),
        false,
        30,
    )
    .expect_err("socks")
    .to_string();
    assert!(e.contains("only an HTTP proxy"), "{e}");
}

#[test]
fn cli_clickhouse_schema() {
    let out = misc(&["clickhouse-schema", "--ttl-days", "9"]);
    assert!(out.status.success(), "{out:?}");
    let sql = String::from_utf8(out.stdout).expect("UTF-8");
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "CREATE TABLE IF NOT EXISTS `redis_records_raw`",
        "CREATE TABLE IF NOT EXISTS `import_batches_completed`",
        "CREATE OR REPLACE VIEW `redis_records_view`",
        "CREATE TABLE IF NOT EXISTS `import_batch_claims`",
        "CREATE TABLE IF NOT EXISTS `import_instance_summaries`",
        "SETTINGS non_replicated_deduplication_window = 10000",
        "ENGINE = ReplacingMergeTree",
        "PARTITION BY toYYYYMMDD(batch)",
        "PRIMARY KEY (cluster, batch, instance, db, key) ORDER BY (cluster, batch, instance, db, key, attempt)",
        "ALTER TABLE `redis_records_raw` ADD COLUMN IF NOT EXISTS `mem_size` Nullable(UInt64) COMMENT",
        "ADD COLUMN IF NOT EXISTS `attempt` UInt64 COMMENT",
        "MODIFY ORDER BY (cluster, batch, instance, db, key, attempt);",
        "TTL toDateTime(batch) + INTERVAL 9 DAY",
        "`expire_at` Nullable(DateTime64(3, 'UTC')) COMMENT",
        "`batch` DateTime64(9, 'UTC') COMMENT",
        "`key` String COMMENT",
        "`type` LowCardinality(String) COMMENT",
    ] {
        assert!(flat.contains(needle), "missing {needle:?} in\n{sql}");
    }
    // 5 objects; migrations: records (1), markers and claims (2 each: columns, setting).
    assert_eq!(sql.matches(";\n").count(), 10);
    // Default TTL.
    let out = misc(&["clickhouse-schema"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("INTERVAL 30 DAY"));
    // The sharded variant (its statements run on the 2-shard engines in clickhouse_cluster.rs).
    let out = misc(&["clickhouse-schema", "--on-cluster", "prod"]);
    assert!(out.status.success(), "{out:?}");
    let sql = String::from_utf8(out.stdout).expect("UTF-8");
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "CREATE TABLE IF NOT EXISTS `redis_records_raw_local` ON CLUSTER `prod`",
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')",
        "CREATE TABLE IF NOT EXISTS `redis_records_raw` ON CLUSTER `prod`",
        "ENGINE = Distributed('prod', currentDatabase(), 'redis_records_raw_local', cityHash64(cluster, instance, key))",
        "CREATE TABLE IF NOT EXISTS `import_batches_completed` ON CLUSTER `prod`",
        "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', version)",
        "CREATE OR REPLACE VIEW `redis_records_view` ON CLUSTER `prod`",
        "WHERE (cluster, batch, attempt) GLOBAL IN (",
        "ALTER TABLE `redis_records_raw_local` ON CLUSTER `prod` ADD COLUMN IF NOT EXISTS `mem_size`",
        "ALTER TABLE `redis_records_raw` ON CLUSTER `prod` ADD COLUMN IF NOT EXISTS `mem_size`",
    ] {
        assert!(flat.contains(needle), "missing {needle:?} in\n{sql}");
    }
    // 6 objects; migrations: local and Distributed records, markers, claims.
    assert_eq!(sql.matches(";\n").count(), 10);
    assert_eq!(sql.matches(" ON CLUSTER `prod`").count(), 10);
}

#[test]
fn cli_bad_url_is_reported_without_password() {
    let url = "http://bob:hunter2@ch.example?database=redis";
    let out = dump_command(Path::new("/nonexistent.rdb"), "c", t1(), url, &[])
        .output()
        .expect("run rdbinsight");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("port is missing"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
