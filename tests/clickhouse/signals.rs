//! Issue #7 item 4: SIGINT / SIGTERM sent to the real binary's process group (as a terminal's
//! Ctrl-C, `timeout` or `systemctl stop` do) at several points of a dump, into Parquet, JSONL
//! and ClickHouse; and the leftovers of a SIGKILLed run, removed by the next run.
//!
//! The source is a FIFO the test feeds (the RDB a real redis-server `SAVE`d), so the test
//! decides how far the dump has got when the signal arrives.

use crate::common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::ch::TestDb;
use common::cli::{FifoFeeder, Running, command};
use common::redis::RedisServer;
use rdbinsight::output::clickhouse::ClickHouseUrl;

const T: Duration = Duration::from_secs(60);
const SIGINT: i32 = libc::SIGINT;
const SIGTERM: i32 = libc::SIGTERM;

/// An RDB of `keys` string keys written by a real redis-server.
fn rdb(keys: u32) -> Vec<u8> {
    rdb_sized(keys, 64)
}

fn rdb_sized(keys: u32, value_bytes: u32) -> Vec<u8> {
    let server = RedisServer::start(&[]);
    assert_eq!(
        server.cli(&[
            "DEBUG",
            "POPULATE",
            &keys.to_string(),
            "key",
            &value_bytes.to_string()
        ]),
        "OK"
    );
    fs::read(server.save()).expect("read the dump")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Every entry under `dir`, recursively, as paths relative to it (sorted).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string(),
            );
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `dump from-file --path PATH --cluster c --instance i:1 --batch-timestamp BATCH <output...>`.
fn dump_args<'a>(path: &'a Path, batch: &'a str, output: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "dump",
        "from-file",
        "--path",
        s(path),
        "--cluster",
        "c",
        "--instance",
        "i:1",
        "--batch-timestamp",
        batch,
    ];
    args.extend_from_slice(output);
    args
}

/// A dump (in its own process group) of the FIFO `dir/<name>`, which the returned feeder
/// feeds; returns once the dump opened it.
fn fed_dump(dir: &Path, name: &str, batch: &str, output: &[&str]) -> (FifoFeeder, Running) {
    let fifo = dir.join(name);
    let feeder = FifoFeeder::new(&fifo);
    let run = Running::spawn(command(&dump_args(&fifo, batch, output)));
    feeder.wait_opened(T);
    (feeder, run)
}

fn assert_interrupted(status: std::process::ExitStatus, stderr: &[String], code: i32, sig: &str) {
    assert_eq!(status.code(), Some(code), "stderr: {stderr:#?}");
    let errors: Vec<&String> = stderr.iter().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr:#?}");
    let last = stderr.last().expect("a line");
    assert!(
        last.starts_with(&format!("error: dump interrupted by {sig}")),
        "{stderr:#?}"
    );
    assert!(last.contains("not finalized"), "{last}");
}

/// Ctrl-C as soon as the instance started (nothing read yet), then SIGTERM mid-stream: each
/// exits 130 / 143 with one line, and leaves no batch, no temporary directory, no lock file.
#[test]
fn parquet_interrupted_after_start_and_mid_stream_leaves_nothing() {
    let bytes = rdb(60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    for (i, (sig, code, name, fraction)) in [
        (SIGINT, 130, "SIGINT", 0usize),
        (SIGTERM, 143, "SIGTERM", 60),
    ]
    .into_iter()
    .enumerate()
    {
        let (feeder, mut run) = fed_dump(
            dir.path(),
            &format!("src{i}.fifo"),
            &format!("2024-01-01T00:00:0{i}Z"),
            &["into-parquet", "--dir", s(&out)],
        );
        let cluster_dir = out.join("cluster=c");
        let tmp = cluster_dir.join(format!("_tmp_batch=2024-01-01_00-00-0{i}.000000000Z"));
        assert!(tmp.is_dir(), "the batch is being written: {:?}", tree(&out));
        if fraction > 0 {
            feeder.write(&bytes[..bytes.len() * fraction / 100], T);
            assert!(tmp.join("i%3A1.parquet.tmp").exists(), "{:?}", tree(&out));
        }
        run.signal_group(sig);
        let (status, stderr) = run.wait(T);
        assert_interrupted(status, &stderr, code, name);
        assert_eq!(tree(&out), ["cluster=c"], "nothing left behind");
    }
}

/// Into a JSONL file: the previous content of the file is kept, no temp or lock file remains.
#[test]
fn jsonl_file_interrupted_mid_stream_is_left_as_it_was() {
    let bytes = rdb(60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("keys.jsonl");
    fs::write(&out, b"previous run\n").expect("write");
    let (feeder, mut run) = fed_dump(
        dir.path(),
        "src.fifo",
        "2024-01-01T00:00:00Z",
        &["into-jsonl", "--output", s(&out)],
    );
    feeder.write(&bytes[..bytes.len() * 3 / 4], T);
    let tmp = tree(dir.path());
    assert!(
        tmp.iter().any(|n| n.starts_with("keys.jsonl.tmp.")),
        "{tmp:?}"
    );
    run.signal_group(SIGINT);
    let (status, stderr) = run.wait(T);
    assert_interrupted(status, &stderr, 130, "SIGINT");
    assert_eq!(tree(dir.path()), ["keys.jsonl", "src.fifo"]);
    assert_eq!(fs::read(&out).expect("read"), b"previous run\n");
}

/// A signal around the commit, sent when the log says the dump got there: while the last
/// micro-batch is written (the instance is about to be finalized), and once the instance is
/// done (the batch is being published). Wherever the signal falls, what is on disk agrees with
/// the exit code: 0 and the complete batch (a signal during `finalize_batch` lets the commit
/// finish, with a warning), or 130 and nothing at all.
#[test]
fn parquet_signal_around_finalize_leaves_a_complete_batch_or_nothing() {
    let bytes = rdb(60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut outcomes = Vec::new();
    let triggers = ["flushed micro-batch 6 ", "done: instance i:1"];
    for (i, trigger) in triggers.iter().cycle().take(6).enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let (mut feeder, mut run) = fed_dump(
            dir.path(),
            &format!("src{i}.fifo"),
            "2024-01-01T00:00:00Z",
            &["-v", "into-parquet", "--dir", s(&out)],
        );
        feeder.write(&bytes, T);
        feeder.close();
        run.wait_for_line(trigger, T);
        run.signal_group(SIGINT);
        let (status, stderr) = run.wait(T);
        let batch = out.join("cluster=c/batch=2024-01-01_00-00-00.000000000Z");
        match status.code() {
            Some(0) => {
                assert_eq!(
                    tree(&out.join("cluster=c")),
                    [
                        "batch=2024-01-01_00-00-00.000000000Z",
                        "batch=2024-01-01_00-00-00.000000000Z/i%3A1.parquet"
                    ]
                );
                assert!(
                    stderr
                        .iter()
                        .any(|l| l.contains("dump complete: 60000 records")),
                    "{stderr:#?}"
                );
                let deferred = stderr
                    .iter()
                    .any(|l| l.contains("SIGINT arrived while the batch was being finalized"));
                outcomes.push(if deferred {
                    "complete (deferred)"
                } else {
                    "complete"
                });
            }
            Some(130) => {
                assert_interrupted(status, &stderr, 130, "SIGINT");
                assert!(!batch.exists());
                assert_eq!(tree(&out), ["cluster=c"], "{stderr:#?}");
                outcomes.push("interrupted");
            }
            other => panic!("exit {other:?}: {stderr:#?}"),
        }
    }
    eprintln!("outcomes after {triggers:?}, alternating: {outcomes:?}");
}

/// A commit that cannot finish (JSONL into a FIFO nobody reads: the final flush blocks): the
/// first SIGINT waits for it, a second one exits at once with 130 and says so.
#[test]
fn a_second_signal_exits_at_once_while_cleanup_is_stuck() {
    let bytes = rdb(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("src.fifo");
    let sink = dir.path().join("sink.fifo");
    common::cli::mkfifo(&sink);
    let mut feeder = FifoFeeder::new(&fifo);
    let mut run = Running::spawn(command(&dump_args(
        &fifo,
        "2024-01-01T00:00:00Z",
        &["into-jsonl", "--output", s(&sink)],
    )));
    // Open the sink's read end (so the dump can open it) and never read from it.
    let _stalled = fs::File::open(&sink).expect("open the sink");
    feeder.wait_opened(T);
    feeder.write(&bytes, T);
    feeder.close();
    // 20,000 lines are ~4 MB: far more than the pipe holds; the dump blocks writing.
    std::thread::sleep(Duration::from_millis(500));
    assert!(run.child.try_wait().expect("try_wait").is_none(), "blocked");
    run.signal_group(SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        run.child.try_wait().expect("try_wait").is_none(),
        "the first signal waits for the blocked write"
    );
    run.signal_group(SIGINT);
    let (status, stderr) = run.wait(T);
    assert_eq!(status.code(), Some(130), "{stderr:#?}");
    assert!(
        stderr
            .last()
            .is_some_and(|l| l.starts_with("error: SIGINT again: exiting at once")),
        "{stderr:#?}"
    );
}

/// `kill -9` mid-stream leaves `_tmp_batch=` and its lock; the next run, with another batch
/// timestamp, removes them (and says so) and completes.
#[test]
fn a_killed_runs_leftovers_are_removed_by_the_next_run() {
    let bytes = rdb(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let (feeder, mut run) = fed_dump(
        dir.path(),
        "src.fifo",
        "2024-01-01T00:00:00Z",
        &["into-parquet", "--dir", s(&out)],
    );
    feeder.write(&bytes[..bytes.len() / 2], T);
    run.kill9();
    let _ = run.wait(T);
    let killed = "_tmp_batch=2024-01-01_00-00-00.000000000Z";
    let left = tree(&out.join("cluster=c"));
    assert!(left.contains(&killed.to_string()), "{left:?}");
    assert!(left.contains(&format!("{killed}.lock")), "{left:?}");

    let file = dir.path().join("dump.rdb");
    fs::write(&file, &bytes).expect("write");
    let next = command(&dump_args(
        &file,
        "2024-01-02T00:00:00Z",
        &["into-parquet", "--dir", s(&out)],
    ))
    .output()
    .expect("run");
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(next.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "removing {}",
            out.join("cluster=c").join(killed).display()
        )),
        "{stderr}"
    );
    assert_eq!(
        tree(&out.join("cluster=c")),
        [
            "batch=2024-01-02_00-00-00.000000000Z",
            "batch=2024-01-02_00-00-00.000000000Z/i%3A1.parquet"
        ]
    );
}

/// Into ClickHouse: once rows of the attempt are in `redis_records_raw`, SIGINT; afterwards no
/// row of that batch remains (and the batch is not marked complete).
#[test]
fn clickhouse_interrupted_mid_stream_leaves_no_rows() {
    let Some(db) = TestDb::new("signals") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Rows are stored before the end once the source pauses: the writer ends an INSERT that
    // sent nothing for 5 s (and the next row begins another).
    let bytes = rdb_sized(800_000, 8);
    let dir = tempfile::tempdir().expect("tempdir");
    // A current batch time: an old one would fall to the table's TTL.
    let batch = chrono::Utc::now().to_rfc3339();
    let url = db.url();
    let (feeder, mut run) = fed_dump(
        dir.path(),
        "src.fifo",
        &batch,
        &["into-clickhouse", "--url", &url, "--auto-create-tables"],
    );
    // The database is this test's own: every row in it is the attempt's.
    let count = || rt.block_on(db.count("redis_records_raw"));
    // Feed a part, then pause until rows of the attempt are stored (the idle INSERT ended).
    let mut fed = 0;
    let step = bytes.len() / 20;
    while fed + step < bytes.len() * 19 / 20 && count() == 0 {
        feeder.write(&bytes[fed..fed + step], T);
        fed += step;
        let paused = std::time::Instant::now();
        while count() == 0 && paused.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let stored = count();
    eprintln!("rows stored when the signal was sent: {stored} (of {fed} bytes fed)");
    run.signal_group(SIGINT);
    let (status, stderr) = run.wait(T);
    assert_interrupted(status, &stderr, 130, "SIGINT");
    assert_eq!(count(), 0, "rows before the signal: {stored}");
    assert_eq!(
        rt.block_on(db.count("import_batches_completed WHERE cluster = 'c'")),
        0
    );
    rt.block_on(db.drop_db());
}

/// A TCP relay to ClickHouse that can be told to stop answering, as a server that hangs or a
/// network that drops everything: from [`HangingRelay::hang`] on it forwards nothing more in
/// either direction, and accepts new connections it never serves, keeping every socket open
/// (nothing fails fast: only the client's own deadlines end its waits).
struct HangingRelay {
    addr: std::net::SocketAddr,
    hang: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl HangingRelay {
    fn start(target: String) -> HangingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let hang = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&hang), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => break,
                };
                if h.load(Ordering::SeqCst) {
                    held.push(client); // accepted, never answered
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let (h, s) = (Arc::clone(&h), Arc::clone(&s));
                    std::thread::spawn(move || relay(from, to, &h, &s));
                }
            }
        });
        HangingRelay { addr, hang, stop }
    }

    /// From now on nothing is forwarded any more.
    fn hang(&self) {
        self.hang.store(true, Ordering::SeqCst);
    }
}

impl Drop for HangingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copy `from` to `to` until either end closes, holding what it read while `hang` is set, and
/// giving up once `stop` is.
fn relay(mut from: TcpStream, mut to: TcpStream, hang: &AtomicBool, stop: &AtomicBool) {
    use std::io::{Read as _, Write as _};
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        while hang.load(Ordering::SeqCst) {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Issue 17 item 1: SIGTERM while ClickHouse has stopped answering (after the run claimed
/// its batch and began streaming). The cleanup (waiting for this attempt's INSERTs, deleting
/// its rows, releasing the claim) cannot reach the server; it gives up at
/// `--ch-cleanup-timeout` and the run exits 143, saying what it left and who removes it.
#[test]
fn clickhouse_cleanup_stops_at_its_deadline_when_the_server_hangs() {
    let Some(db) = TestDb::new("cleanup_deadline") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let parsed = ClickHouseUrl::parse(&db.url()).expect("valid URL");
    let relay = HangingRelay::start(format!("{}:{}", parsed.host, parsed.port));
    let url = db.url().replacen(
        &format!("{}:{}", parsed.host, parsed.port),
        &relay.addr.to_string(),
        1,
    );
    assert_ne!(url, db.url(), "the dump goes through the relay");
    let bytes = rdb(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = chrono::Utc::now().to_rfc3339();
    const DEADLINE: u64 = 3;
    let deadline = DEADLINE.to_string();
    let (feeder, mut run) = fed_dump(
        dir.path(),
        "src.fifo",
        &batch,
        &[
            "into-clickhouse",
            "--url",
            &url,
            "--auto-create-tables",
            "--ch-cleanup-timeout",
            &deadline,
        ],
    );
    // Half the RDB: the run claims the batch and streams rows, then waits for more input.
    feeder.write(&bytes[..bytes.len() / 2], T);
    let claimed = std::time::Instant::now();
    let running = || {
        rt.block_on(db.q(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}' \
             AND name = 'import_batch_claims'",
            db.name
        ))) == "1"
            && rt.block_on(db.claim_states("c")).contains("running")
    };
    while !running() {
        assert!(
            claimed.elapsed() < T,
            "no running claim: {:#?}",
            run.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    relay.hang();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    run.signal_group(SIGTERM);
    let (status, stderr) = run.wait(T);
    let took = signalled.elapsed();
    assert_interrupted(status, &stderr, 143, "SIGTERM");
    // The cleanup had its deadline, and no more (a margin for the process to end).
    let deadline = Duration::from_secs(DEADLINE);
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(4),
        "exit {took:?} after SIGTERM, deadline {deadline:?}: {stderr:#?}"
    );
    let left = stderr
        .iter()
        .find(|l| l.contains("--ch-cleanup-timeout"))
        .unwrap_or_else(|| panic!("no line about the cleanup's deadline: {stderr:#?}"));
    let within = format!("the cleanup did not finish within {DEADLINE} s");
    for needle in [
        within.as_str(),
        "rows are left in",
        "redis_records_raw",
        "never shown",
        "--ch-claim-expiry",
        "misc clickhouse-drop-batch",
    ] {
        assert!(left.contains(needle), "{needle:?} in {left}");
    }
    // What was left is as the line says: the claim still names the (dead) attempt, and the
    // batch is not complete, so nothing of it is shown.
    assert!(
        rt.block_on(db.claim_states("c")).contains("running"),
        "the claim was not released"
    );
    assert_eq!(
        rt.block_on(db.count("import_batches_completed WHERE cluster = 'c'")),
        0
    );
    assert_eq!(rt.block_on(db.count("redis_records_view")), 0);
    drop(relay);
    rt.block_on(db.drop_db());
}
