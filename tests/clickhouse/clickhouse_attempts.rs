//! A ClickHouse batch is exactly one complete attempt, against the real engine: a second
//! attempt is refused up front, concurrent attempts cannot both complete, a failed attempt
//! removes its rows, a killed one is cleaned up by the next run, a fenced one stops writing. In-process through the output API, and through the real binary.

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::ch::{
    FedDump, TestDb, batch, dump_command, error_lines, instance_writer, misc, prepare_error,
    rdb_with_keys, record, rfc3339, run_ok, t1, t2, write_instance, write_until_error,
};
use common::cli::signal;
use rdbinsight::output::clickhouse::ClickHouseOutput;
use rdbinsight::output::{BatchContext, ChunkWriter, Output};

async fn complete(output: &mut ClickHouseOutput, b: &BatchContext, range: std::ops::Range<u64>) {
    output.prepare_batch(b).await.expect("prepare_batch");
    write_instance(output, b, "i1", range, true)
        .await
        .expect("write");
    output.finalize_batch().await.expect("finalize_batch");
}

/// `rdbinsight misc clickhouse-drop-batch` of `cluster`'s batch at `nanos`.
fn drop_batch(db: &TestDb, cluster: &str, nanos: i64) -> std::process::Output {
    misc(&[
        "clickhouse-drop-batch",
        "--url",
        &db.url(),
        "--cluster",
        cluster,
        "--batch",
        &rfc3339(nanos),
    ])
}

fn batch_filter(nanos: i64) -> String {
    format!("WHERE batch = fromUnixTimestamp64Nano(toInt64({nanos}), 'UTC')")
}

/// Raw rows of batch `t1()`, `and` (e.g. `AND cluster = 'c1'`) applied.
async fn t1_raw_rows(db: &TestDb, and: &str) -> u64 {
    db.count(&format!("redis_records_raw {} {and}", batch_filter(t1())))
        .await
}

/// An output (`--auto-create-tables`) whose claims expire after `expiry`, batch `b` prepared.
async fn prepared_with_expiry(db: &TestDb, b: &BatchContext, expiry: Duration) -> ClickHouseOutput {
    let mut output = db.output(true);
    output.set_claim_expiry(expiry);
    output.prepare_batch(b).await.expect("prepare_batch");
    output
}

/// `rows` string rows of `cluster`'s batch `t1()` for `instance`, inserted by hand (no
/// attempt, no marker), as an older rdbinsight or another writer left them.
async fn insert_rows_by_hand(db: &TestDb, cluster: &str, instance: &str, rows: u64) {
    db.exec(&format!(
        "INSERT INTO {{db}}.redis_records_raw (cluster, batch, instance, db, key, type, \
         member_count, rdb_size, encoding) SELECT '{cluster}', \
         fromUnixTimestamp64Nano(toInt64({})), '{instance}', 0, toString(number), 'string', 1, \
         10, 'raw' FROM numbers({rows})",
        t1()
    ))
    .await;
}

/// Marks the claim of `attempt` on `c1`'s batch `t1()` reclaimed, as a cleaner does once the
/// attempt's heartbeat is stale.
async fn mark_reclaimed(db: &TestDb, attempt: impl std::fmt::Display) {
    db.exec(&format!(
        "INSERT INTO {{db}}.import_batch_claims (cluster, batch, seq, attempt, host, pid, \
         started_at, state, version) VALUES ('c1', fromUnixTimestamp64Nano(toInt64({})), 1, \
         '{attempt}', 'h', 1, now64(3), 'reclaimed', {})",
        t1(),
        (1u64 << 62) + (1 << 40)
    ))
    .await;
}

/// `--ch-claim-expiry 3`: the short claim expiry of the dumps that are killed or frozen.
const EXPIRY_3S: [&str; 2] = ["--ch-claim-expiry", "3"];

/// A dump (`--auto-create-tables`, [`EXPIRY_3S`]) of an RDB of `keys` keys into `db` fed half
/// of it, then the source stalls: returned once the idle INSERT was ended (rows stored).
async fn stalled_dump(dir: &Path, keys: u64, db: &TestDb, stderr: Stdio) -> FedDump {
    let extra = ["--auto-create-tables", EXPIRY_3S[0], EXPIRY_3S[1]];
    let dump = FedDump::start(dir, keys, db, &extra, |cmd| {
        cmd.stdout(Stdio::null()).stderr(stderr);
    });
    wait_for_stored_rows(db).await;
    dump
}

/// Waits (60 s at most) until a dump has stored rows.
async fn wait_for_stored_rows(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exists = db.tables("AND name = 'redis_records_raw'").await == "1";
        if exists && db.count("redis_records_raw").await > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no rows stored in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The one `error:` line of a run's stderr (asserts there is exactly one).
fn the_error_line(stderr: &[u8]) -> String {
    let mut errors = error_lines(stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[tokio::test]
async fn a_complete_batch_is_refused_up_front() {
    let Some(db) = TestDb::new("complete") else {
        return;
    };
    let b = batch("c1", t1());
    complete(&mut db.output(true), &b, 0..500).await;
    let err = prepare_error(&mut db.output(false), &b).await;
    assert!(err.contains("is already complete"), "{err}");
    assert!(err.contains("another --batch-timestamp"), "{err}");
    assert!(
        err.contains("rdbinsight misc clickhouse-drop-batch --url"),
        "{err}"
    );
    assert!(err.contains(&format!("--batch {}", rfc3339(t1()))), "{err}");
    assert_eq!(db.count("redis_records_raw").await, 500);
    assert_eq!(db.count("redis_records_view").await, 500);
    // The refused attempt's claim was released.
    assert_eq!(
        db.claim_states("c1").await,
        format!("{}\t1\tcompleted\n{}\t2\treleased", t1(), t1())
    );
    db.drop_db().await;
}

/// Rows of an attempt that could not clean up (here: written by hand, as an older rdbinsight
/// left them) block the batch until `misc clickhouse-drop-batch` removes them.
#[tokio::test]
async fn rows_without_a_marker_are_refused_until_dropped() {
    let Some(db) = TestDb::new("leftover") else {
        return;
    };
    let b = batch("c1", t1());
    // Create the schema (and a completed earlier batch), then leave 5 rows in batch b.
    complete(
        &mut db.output(true),
        &batch("c1", t1() - 1_000_000_000),
        0..10,
    )
    .await;
    insert_rows_by_hand(&db, "c1", "old", 5).await;
    let err = prepare_error(&mut db.output(false), &b).await;
    assert!(err.contains("already has 5 rows"), "{err}");
    assert!(err.contains("no completion marker"), "{err}");
    assert!(err.contains("clickhouse-drop-batch"), "{err}");

    let out = drop_batch(&db, "c1", t1());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("5 rows (it was not complete)"), "{stderr}");
    assert_eq!(t1_raw_rows(&db, "").await, 0);
    // Now the batch can be written, and shows exactly this attempt's rows.
    complete(&mut db.output(false), &b, 100..400).await;
    assert_eq!(
        db.q("SELECT count(), min(key), max(instance) FROM {db}.redis_records_view")
            .await,
        "300\tuser:100:profile\ti1"
    );
    db.drop_db().await;
}

/// Several attempts prepare the same batch at the same moment: exactly one gets it.
#[tokio::test]
async fn concurrent_attempts_cannot_both_claim_a_batch() {
    let Some(db) = TestDb::new("race") else {
        return;
    };
    // The schema first, so that the racers only race for the claim.
    db.output(true)
        .prepare_batch(&batch("setup", t1()))
        .await
        .expect("schema");
    for round in 0..5i64 {
        let b = batch("c1", t2() + round);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let mut output = db.output(false);
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                let r = output.prepare_batch(&b).await;
                (output, r)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (output, r) = t.await.expect("task");
            match r {
                Ok(()) => winners.push(output),
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("at the same moment")
                            || e.contains("being written by another attempt"),
                        "{e}"
                    );
                }
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one attempt claims the batch"
        );
        let mut winner = winners.pop().expect("one");
        write_instance(&mut winner, &b, "i1", 0..300, true)
            .await
            .expect("write");
        winner.finalize_batch().await.expect("finalize");
        assert_eq!(
            db.count(&format!(
                "redis_records_raw {}",
                batch_filter(b.batch.nanos())
            ))
            .await,
            300
        );
    }
    db.drop_db().await;
}

/// The reproduction: two runs of the real binary with one fixed --batch-timestamp,
/// started together. One completes; the view shows exactly one copy of the keys.
#[tokio::test]
async fn two_concurrent_runs_with_one_timestamp() {
    let Some(db) = TestDb::new("tworuns") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rdb = rdb_with_keys(dir.path(), 20_000);
    let url = db.url();
    let spawn = || {
        dump_command(&rdb, "c1", t1(), &url, &["--auto-create-tables"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rdbinsight")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    );
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one run completes:\n{a:?}\n{b:?}");
    let failed = if a.status.success() { &b } else { &a };
    let error = the_error_line(&failed.stderr);
    assert!(
        error.contains("being written by another attempt")
            || error.contains("at the same moment")
            || error.contains("is already complete"),
        "{error}"
    );
    assert_eq!(db.count("redis_records_view").await, 20_000);
    assert_eq!(db.count("redis_records_raw").await, 20_000);
    db.drop_db().await;
}

/// A failed attempt removes its rows (abort_batch); a retry of the same batch then completes
/// with exactly its own rows.
#[tokio::test]
async fn a_failed_attempt_removes_its_rows() {
    let Some(db) = TestDb::new("failed") else {
        return;
    };
    let b = batch("c1", t1());
    let mut output = db.output(true);
    output.set_max_rows_per_insert(500);
    output.prepare_batch(&b).await.expect("prepare_batch");
    // Instance 1 completes (4 INSERTs stored), instance 2 fails mid-way (what the pipeline
    // sees): its writer is dropped, then the batch aborted.
    write_instance(&mut output, &b, "i1", 0..2000, true)
        .await
        .expect("i1");
    write_instance(&mut output, &b, "i2", 2000..2700, false)
        .await
        .expect("i2 partly");
    assert!(db.count("redis_records_raw").await >= 2000);
    output.abort_batch().await;
    assert_eq!(db.count("redis_records_raw").await, 0);
    assert_eq!(db.claim_states("c1").await, format!("{}\t1\taborted", t1()));

    // The retry: same batch, other keys.
    complete(&mut db.output(false), &b, 5000..5800).await;
    assert_eq!(
        db.q("SELECT count(), min(key) FROM {db}.redis_records_view")
            .await,
        "800\tuser:5000:profile"
    );
    db.drop_db().await;
}

/// The same through the binary: a truncated RDB fails after rows went in; they are removed,
/// and the retry with the full file and the same timestamp shows each key once (the issue saw
/// 820,532 rows for a 500,000-key file).
#[tokio::test]
async fn a_failed_run_leaves_no_rows_and_its_retry_completes() {
    let Some(db) = TestDb::new("truncated") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rdb = rdb_with_keys(dir.path(), 30_000);
    let bytes = std::fs::read(&rdb).expect("read rdb");
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).expect("write cut");
    let url = db.url();
    let out = dump_command(&cut, "c1", t1(), &url, &["--auto-create-tables"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("removed the rows this attempt wrote"),
        "{stderr}"
    );
    assert_eq!(error_lines(&out.stderr).len(), 1, "{stderr}");
    assert_eq!(db.count("redis_records_raw").await, 0);
    run_ok(&mut dump_command(&rdb, "c1", t1(), &url, &[]));
    assert_eq!(db.view_keys("").await, "30000\t30000");
    db.drop_db().await;
}

/// SIGKILL mid-dump (no abort runs): the batch is blocked while the claim is fresh, then the
/// next run — whatever its batch — removes the dead attempt's rows, and the batch can be
/// written again. Its rows never become visible.
#[tokio::test]
async fn a_killed_attempt_is_cleaned_up_by_the_next_run() {
    let Some(db) = TestDb::new("killed") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url();
    let FedDump {
        mut child,
        source,
        rdb,
        ..
    } = stalled_dump(dir.path(), 30_000, &db, Stdio::null()).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    drop(source);
    let stored = db.count("redis_records_raw").await;
    assert!(stored > 0);

    // At once: the claim is still fresh, the batch is refused.
    let out = dump_command(&rdb, "c1", t1(), &url, &EXPIRY_3S)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let errors = error_lines(&out.stderr);
    assert!(
        errors[0].contains("being written by another attempt"),
        "{errors:?}"
    );
    assert!(errors[0].contains("--ch-claim-expiry"), "{errors:?}");
    assert_eq!(db.count("redis_records_view").await, 0);

    // After the expiry, a run of another cluster and batch removes the dead attempt's rows.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stderr =
        run_ok(dump_command(&rdb, "other", t2(), &url, &EXPIRY_3S).env("RUST_LOG", "warn"));
    assert!(
        stderr.contains("removed the rows of a dead attempt"),
        "{stderr}"
    );
    assert_eq!(t1_raw_rows(&db, "AND cluster = 'c1'").await, 0);
    assert_eq!(
        db.claim_states("c1").await,
        format!("{}\t1\treclaimed", t1())
    );

    // The batch can be written again: exactly one copy of each key.
    run_ok(&mut dump_command(&rdb, "c1", t1(), &url, &EXPIRY_3S));
    assert_eq!(db.view_keys("WHERE cluster = 'c1'").await, "30000\t30000");
    db.drop_db().await;
}

/// An attempt whose claim was taken over (another run considered it dead) stops writing at
/// its next chunk, does not complete the batch, and does not delete the new owner's rows.
#[tokio::test]
async fn a_fenced_attempt_stops_and_deletes_nothing() {
    let Some(db) = TestDb::new("fenced") else {
        return;
    };
    let b = batch("c1", t1());
    let mut output = prepared_with_expiry(&db, &b, Duration::from_secs(3)).await;
    let mut w = instance_writer(&mut output, &b, "i1").await;
    for i in 0..100 {
        w.write_record(&record(i)).await.expect("write");
    }
    // A cleaner marks the claim reclaimed (what a run does once the heartbeat is stale).
    mark_reclaimed(&db, output.attempt_id()).await;
    // The heartbeat (every 0.25 s here) notices; the next chunk is refused.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = write_until_error(&mut w, 100..200_000)
        .await
        .0
        .expect("the writer stops");
    assert!(err.contains("was taken over"), "{err}");
    drop(w);
    let err = output
        .finalize_batch()
        .await
        .expect_err("no marker")
        .to_string();
    assert!(
        err.contains("taken over") || err.contains("no longer this attempt's"),
        "{err}"
    );
    // The new owner's rows (here: some rows written by hand) are not deleted by the abort.
    insert_rows_by_hand(&db, "c1", "new", 7).await;
    output.abort_batch().await;
    assert_eq!(
        db.count("redis_records_raw WHERE instance = 'new'").await,
        7
    );
    assert_eq!(db.count("import_batches_completed").await, 0);
    db.drop_db().await;
}

/// `drop-batch` refuses a batch a live attempt is writing.
#[tokio::test]
async fn drop_batch_refuses_a_live_attempt() {
    let Some(db) = TestDb::new("droplive") else {
        return;
    };
    let b = batch("c1", t1());
    let mut output = db.prepared(&b).await;
    let out = drop_batch(&db, "c1", t1());
    assert!(!out.status.success());
    let error = the_error_line(&out.stderr);
    assert!(
        error.contains("being written by another attempt"),
        "{error}"
    );
    write_instance(&mut output, &b, "i1", 0..10, true)
        .await
        .expect("still writable");
    output.finalize_batch().await.expect("finalize");
    assert_eq!(db.count("redis_records_view").await, 10);
    db.drop_db().await;
}

/// Keys and bytes of `cluster`'s latest completed batch as the report's ClickHouse reader
/// reads them.
async fn report_totals(db: &TestDb, cluster: &str) -> (u64, u64) {
    let report = rdbinsight::report::from_clickhouse(
        &db.url(),
        None,
        rdbinsight::output::clickhouse::Timeouts::default(),
        cluster,
        None,
        &rdbinsight::report::options::ReportOptions::default(),
    )
    .await
    .expect("report");
    let agg = &report.data.totals.agg;
    (agg.keys, agg.rdb_size)
}

/// The fault injection: a dump frozen (SIGSTOP) past its claim expiry while another run
/// completes the same batch, then resumed (SIGCONT) with the rest of its input. The resumed
/// run fails (exit 1) and the view and the report show exactly the winner's rows, also after a
/// merge (`OPTIMIZE ... FINAL`), even with rows of a stale attempt stored for the same keys.
#[tokio::test]
async fn a_frozen_writer_cannot_change_a_batch_another_run_completed() {
    use std::io::Write as _;
    let Some(db) = TestDb::new("frozen") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url();
    let FedDump {
        child,
        mut source,
        rdb,
        bytes,
    } = stalled_dump(dir.path(), 20_000, &db, Stdio::piped()).await;
    signal(&child, "-STOP");
    let frozen_rows = db.count("redis_records_raw").await;
    // Past the frozen run's expiry (3 s, recorded in its claim), another run completes the
    // batch: it reclaims the frozen run's claim first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let winner = run_ok(dump_command(&rdb, "c1", t1(), &url, &EXPIRY_3S).env("RUST_LOG", "warn"));
    assert!(
        winner.contains("removed the rows of a dead attempt"),
        "{winner}"
    );
    assert_eq!(db.view_keys("").await, "20000\t20000");
    let (keys, bytes_winner) = report_totals(&db, "c1").await;
    assert_eq!(keys, 20_000);
    // The winner's instance summary, stored before its marker and tagged with its attempt.
    assert_eq!(
        db.q(
            "SELECT count(), countIf(JSONHas(summary, 'rdb_server')) FROM \
              {db}.import_instance_summaries WHERE (cluster, batch, attempt) IN \
              (SELECT cluster, batch, attempt FROM {db}.import_batches_completed)"
        )
        .await,
        "1\t1"
    );

    // The frozen run resumes and gets the rest of its input: it fails, changing nothing.
    signal(&child, "-CONT");
    source
        .write_all(&bytes[bytes.len() / 2..])
        .expect("write the second half");
    drop(source);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let error = the_error_line(&out.stderr);
    assert!(
        error.contains("taken over")
            || error.contains("no longer this attempt's")
            || error.contains("lost batch"),
        "{error}"
    );
    assert!(frozen_rows > 0);
    assert_eq!(db.view_keys("").await, "20000\t20000");
    assert_eq!(report_totals(&db, "c1").await, (20_000, bytes_winner));

    // What a stale attempt could still store (e.g. an INSERT the server finished after the
    // freeze): the same keys with other values. Never shown, never merged into the winner's.
    db.exec(&format!(
        "INSERT INTO {{db}}.redis_records_raw (cluster, batch, instance, db, key, type, \
         member_count, rdb_size, encoding, attempt) SELECT cluster, batch, instance, db, key, \
         type, member_count, rdb_size + 1000, encoding, 12345 FROM {{db}}.redis_records_raw \
         WHERE cluster = 'c1' {}",
        batch_filter(t1()).replace("WHERE", "AND")
    ))
    .await;
    for optimized in [false, true] {
        if optimized {
            db.exec("OPTIMIZE TABLE {db}.redis_records_raw FINAL").await;
        }
        assert_eq!(db.view_keys("").await, "20000\t20000", "{optimized}");
        assert_eq!(
            report_totals(&db, "c1").await,
            (20_000, bytes_winner),
            "{optimized}"
        );
        assert_eq!(
            db.count("redis_records_raw WHERE attempt = 12345").await,
            20_000
        );
    }
    db.drop_db().await;
}

/// A run whose claim was reclaimed (it was considered dead) while another run took the batch
/// over: both finalize at once; exactly one completion marker (the live run's) is stored, the
/// other run fails and its abort deletes only its own rows. `skip_check`: the stale run goes
/// straight to its marker, as one frozen between its claim check and its marker insert would.
async fn finalize_race(skip_check: bool) {
    let Some(db) = TestDb::new("finalrace") else {
        return;
    };
    let b = batch("c1", t1());
    let mut stale = prepared_with_expiry(&db, &b, Duration::from_secs(60)).await;
    write_instance(&mut stale, &b, "i1", 0..700, true)
        .await
        .expect("stale rows");
    // A cleaner marked its claim reclaimed (what a run does once it looks dead).
    mark_reclaimed(&db, stale.attempt_id()).await;
    let mut live = db.output(false);
    live.prepare_batch(&b)
        .await
        .expect("the batch can be taken over");
    write_instance(&mut live, &b, "i1", 1000..1500, true)
        .await
        .expect("live rows");
    if skip_check {
        stale.skip_owner_check_before_marker();
    }
    let (s, l) = tokio::join!(stale.finalize_batch(), live.finalize_batch());
    l.expect("the live attempt completes");
    let err = s.expect_err("the stale attempt fails").to_string();
    if skip_check {
        assert!(err.contains("lost batch"), "{err}");
    } else {
        assert!(
            err.contains("no longer this attempt's") || err.contains("lost batch"),
            "{err}"
        );
    }
    stale.abort_batch().await;
    assert_eq!(
        db.q("SELECT count(), attempt = 0 FROM {db}.import_batches_completed GROUP BY 2")
            .await,
        "1\t0"
    );
    assert_eq!(
        db.q("SELECT count(), min(key) FROM {db}.redis_records_view")
            .await,
        "500\tuser:1000:profile"
    );
    assert_eq!(db.count("redis_records_raw").await, 500);
    db.drop_db().await;
}

#[tokio::test]
async fn two_attempts_finalizing_at_once_store_one_marker() {
    finalize_race(false).await;
}

#[tokio::test]
async fn a_frozen_attempt_past_its_claim_check_cannot_store_its_marker() {
    finalize_race(true).await;
}

/// Expiry belongs to the claim: a run with a short `--ch-claim-expiry` judges a live run with
/// a long one by the long one (its heartbeat is older than 3 s but younger than its own
/// expiry), on another cluster and on the same one: nobody's rows are deleted.
#[tokio::test]
async fn runs_with_different_expiries_delete_no_live_rows() {
    let Some(db) = TestDb::new("expiries") else {
        return;
    };
    let b = batch("c1", t1());
    // Heartbeat every 50 s.
    let mut long = prepared_with_expiry(&db, &b, Duration::from_secs(600)).await;
    write_instance(&mut long, &b, "i1", 0..800, true)
        .await
        .expect("rows");
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Another cluster, short expiry: its cleanup must leave the long run alone.
    let mut short = db.output(false);
    short.set_claim_expiry(Duration::from_secs(3));
    complete(&mut short, &batch("c2", t1()), 0..10).await;
    // The same batch, short expiry: refused up front, the live run's rows kept.
    let mut same = db.output(false);
    same.set_claim_expiry(Duration::from_secs(3));
    let err = prepare_error(&mut same, &b).await;
    assert!(err.contains("being written by another attempt"), "{err}");
    assert!(err.contains("expires 59"), "its own expiry, not 3 s: {err}");
    assert_eq!(t1_raw_rows(&db, "AND cluster = 'c1'").await, 800);
    long.finalize_batch().await.expect("the long run completes");
    assert_eq!(db.view_keys("WHERE cluster = 'c1'").await, "800\t800");
    db.drop_db().await;
}

/// The release before attempts (ed29f78): its tables, holding a completed batch, are migrated
/// by `--auto-create-tables`; the old batch stays readable as it was (its rows and marker
/// name no attempt), and a new batch is written and shown. Without the flag, the run says
/// what to do.
#[tokio::test]
async fn a_deployment_of_the_previous_release_is_migrated() {
    let Some(db) = TestDb::new("migrate") else {
        return;
    };
    db.exec("CREATE DATABASE {db}").await;
    for ddl in OLD_DDL {
        db.exec(ddl).await;
    }
    insert_rows_by_hand(&db, "old", "i0", 25).await;
    db.exec(&format!(
        "INSERT INTO {{db}}.import_batches_completed VALUES ('old', \
         fromUnixTimestamp64Nano(toInt64({})))",
        t1()
    ))
    .await;
    assert_eq!(db.view_keys("").await, "25\t25");

    let b = batch("c1", t2());
    let err = prepare_error(&mut db.output(false), &b).await;
    assert!(err.contains("--auto-create-tables"), "{err}");
    assert!(err.contains("rdbinsight misc clickhouse-schema"), "{err}");
    // Once the missing table exists, what is out of date is named.
    db.exec(
        &rdbinsight::output::clickhouse::schema::schema_objects(Some(&db.name), 30, None)
            .into_iter()
            .find(|o| o.name == "import_instance_summaries")
            .expect("summaries")
            .ddl,
    )
    .await;
    let err = prepare_error(&mut db.output(false), &b).await;
    for needle in [
        "redis_records_raw.mem_size is missing",
        "redis_records_raw.attempt is missing",
        "import_batches_completed.attempt is missing",
        "import_batch_claims.expiry_ms is missing",
        "view redis_records_view shows every attempt's rows",
        "--auto-create-tables",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    assert_eq!(db.count("import_batch_claims").await, 0, "nothing claimed");

    // Migrated, then written.
    complete(&mut db.output(true), &b, 0..300).await;
    assert_eq!(
        db.q(&format!(
            "SELECT sorting_key FROM system.tables WHERE database = '{}' AND name = \
             'redis_records_raw'",
            db.name
        ))
        .await,
        "cluster, batch, instance, db, key, attempt"
    );
    assert_eq!(db.view_keys("WHERE cluster = 'old'").await, "25\t25");
    assert_eq!(db.view_keys("WHERE cluster = 'c1'").await, "300\t300");
    assert_eq!(report_totals(&db, "old").await, (25, 250));
    assert_eq!(report_totals(&db, "c1").await.0, 300);
    // The migrated schema is what the writer needs: a run without the flag goes through.
    complete(&mut db.output(false), &batch("c1", t2() + 1), 0..5).await;
    assert_eq!(db.view_keys("WHERE cluster = 'c1'").await, "5\t5");
    db.drop_db().await;
}

/// Tables of a development build that stored attempt ids as text (`attempt String`, never
/// released): refused with what to do, also with `--auto-create-tables` (the key column's type
/// cannot be migrated in place), rather than written with ids that do not compare.
#[tokio::test]
async fn text_attempt_ids_of_a_development_build_are_refused() {
    let Some(db) = TestDb::new("textattempt") else {
        return;
    };
    db.exec("CREATE DATABASE {db}").await;
    for object in rdbinsight::output::clickhouse::schema::schema_objects(Some(&db.name), 30, None) {
        let ddl = object
            .ddl
            .replace("UInt64 COMMENT 'Attempt", "String COMMENT 'Attempt");
        db.exec(&ddl).await;
    }
    let b = batch("c1", t1());
    let err = prepare_error(&mut db.output(true), &b).await;
    for needle in [
        "redis_records_raw.attempt is String, expected UInt64 (a development build's text \
         attempt ids: recreate the table)",
        "import_batches_completed.attempt is String, expected UInt64",
        "import_instance_summaries.attempt is String, expected UInt64",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    assert_eq!(db.count("import_batch_claims").await, 0, "nothing claimed");
    db.drop_db().await;
}

/// The DDL of the release before attempts (ed29f78, `misc clickhouse-schema`, abridged
/// comments), in `{db}`.
const OLD_DDL: [&str; 4] = [
    "CREATE TABLE {db}.redis_records_raw (\
     `cluster` String, `batch` DateTime64(9, 'UTC'), `instance` String, `db` UInt64, \
     `key` String, `type` LowCardinality(String), `member_count` UInt64, `rdb_size` UInt64, \
     `encoding` LowCardinality(String), `expire_at` Nullable(DateTime64(3, 'UTC')), \
     `idle_seconds` Nullable(UInt64), `freq` Nullable(UInt8), `codis_slot` Nullable(UInt16), \
     `redis_slot` Nullable(UInt16)) ENGINE = ReplacingMergeTree \
     PARTITION BY toYYYYMMDD(batch) ORDER BY (cluster, batch, instance, db, key) \
     TTL toDateTime(batch) + INTERVAL 30 DAY",
    "CREATE TABLE {db}.import_batches_completed (`cluster` String, \
     `batch` DateTime64(9, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY (cluster, batch) \
     TTL toDateTime(batch) + INTERVAL 30 DAY",
    "CREATE TABLE {db}.import_batch_claims (`cluster` String, `batch` DateTime64(9, 'UTC'), \
     `seq` UInt32, `attempt` String, `host` String, `pid` UInt32, \
     `started_at` DateTime64(3, 'UTC'), `state` LowCardinality(String), `version` UInt64, \
     `updated_at` DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree(version) \
     ORDER BY (cluster, batch, seq) TTL toDateTime(batch) + INTERVAL 30 DAY \
     SETTINGS non_replicated_deduplication_window = 10000",
    "CREATE VIEW {db}.redis_records_view AS SELECT * FROM {db}.redis_records_raw \
     WHERE (cluster, batch) IN (SELECT cluster, max(batch) FROM {db}.import_batches_completed \
     GROUP BY cluster)",
];
