//! The ClickHouse writer when things go wrong: a server that never answers, a connection that
//! cannot be made, a server that dies mid-dump, a source that pauses longer than the server's
//! receive timeout, a batch older than the TTL, a signal while the server holds a request. (A server that stops reading is a unit test of the INSERT stream.)
//!
//! The hung peers are tiny TCP servers in the test (they stand for a hung server, not for
//! ClickHouse); everything else runs against the real engine.

use crate::common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ch::{
    FedDump, TestDb, batch, dump_command, error_lines, instance_writer, prepare_error, record,
    refused, t1,
};
use common::fake_server::FakeServer;
use rdbinsight::output::clickhouse::{ClickHouseConfig, ClickHouseOutput, Timeouts};
use rdbinsight::output::{ChunkWriter, Output};

fn config(url: &str, timeouts: Timeouts) -> ClickHouseConfig {
    let mut c = ClickHouseConfig::new(url, None, true, 30).expect("valid URL");
    c.timeouts = timeouts;
    c
}

fn secs(connect: u64, send: u64, response: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(connect),
        send: Duration::from_secs(send),
        response: Duration::from_secs(response),
    }
}

/// `prepare_batch`'s error with `timeouts` against `url`; it must come within 5 s.
async fn quick_error(url: &str, timeouts: Timeouts) -> String {
    let mut output = ClickHouseOutput::new(config(url, timeouts)).expect("output");
    let started = Instant::now();
    let err = prepare_error(&mut output, &batch("c", t1())).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    err
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_response_timeout() {
    // A server that accepts connections and never answers.
    let hung = FakeServer::start(usize::MAX, |peer| {
        peer.hold();
        Ok(())
    });
    let addr = hung.addr();
    let url = format!("http://{addr}?database=x");
    let err = quick_error(&url, secs(5, 5, 1)).await;
    assert!(
        err.contains("no answer from the server within 1 s (--ch-response-timeout)"),
        "{err}"
    );
    assert!(err.contains(&addr), "{err}");

    // The binary: one error line, exit code 1, in about the timeout.
    let started = Instant::now();
    let fixture = common::fixtures::own_fixtures().join("r7-multidb.rdb");
    let out = dump_command(&fixture, "c", t1(), &url, &[])
        .env("RDBINSIGHT_CH_RESPONSE_TIMEOUT", "2")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("within 2 s (--ch-response-timeout)"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_connection_that_cannot_be_made_hits_the_connect_timeout() {
    // A listener whose accept queue (backlog 0) is full: further SYNs are dropped, so
    // connecting hangs as it does for a firewalled or unreachable host.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "the accept queue should be full"
    );
    let url = format!("http://{addr}?database=x");
    let err = quick_error(&url, secs(1, 5, 30)).await;
    assert!(
        err.contains("no connection within 1 s (--ch-connect-timeout)"),
        "{err}"
    );
    drop(listener);
}

/// The Python of the test engine's venv (exported by scripts/clickhouse-test-env.sh).
fn engine_python() -> Option<String> {
    for var in [
        "RDBINSIGHT_TEST_CLICKHOUSE_PYTHON",
        "RDBINSIGHT_TEST_CHDB_PYTHON",
    ] {
        if let Ok(p) = std::env::var(var)
            && std::path::Path::new(&p).exists()
        {
            return Some(p);
        }
    }
    let local = concat!(env!("CARGO_MANIFEST_DIR"), "/target/chdb-venv/bin/python");
    std::path::Path::new(local)
        .exists()
        .then(|| local.to_string())
}

/// A private engine (the same as the shared one) that this test may kill.
struct PrivateEngine {
    child: std::process::Child,
    url: String,
    _state: tempfile::TempDir,
}

impl PrivateEngine {
    fn start() -> PrivateEngine {
        let python = engine_python().expect(
            "the test engine's Python (RDBINSIGHT_TEST_CLICKHOUSE_PYTHON, or target/chdb-venv) \
             is needed to start a private engine; run under scripts/clickhouse-test-env.sh",
        );
        let state = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/clickhouse-server.py"
            ))
            .args(["run", "--state-dir"])
            .arg(state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the engine");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url_file = state.path().join("url");
        loop {
            if let Ok(u) = std::fs::read_to_string(&url_file)
                && !u.trim().is_empty()
            {
                return PrivateEngine {
                    child,
                    url: u.trim().to_string(),
                    _state: state,
                };
            }
            assert!(
                child.try_wait().expect("try_wait").is_none(),
                "the private engine exited"
            );
            assert!(
                Instant::now() < deadline,
                "the private engine did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server dies while an INSERT streams: the error says the connection was lost, and does
/// not blame ClickHouse's http_receive_timeout (the server never said so).
#[tokio::test]
async fn a_server_that_dies_mid_dump_is_not_blamed_on_its_receive_timeout() {
    if common::ch::base_url().is_none() {
        return;
    }
    let mut engine = PrivateEngine::start();
    let db = TestDb::on(&engine.url, "dies");
    let b = batch("c1", t1());
    let mut output = db.prepared(&b).await;
    let mut w = instance_writer(&mut output, &b, "i1").await;
    for i in 0..20_000 {
        w.write_record(&record(i)).await.expect("write");
    }
    engine.kill();
    let (err, _) = refused(&mut w, 20_000..2_000_000).await;
    assert!(err.contains("failed for instance i1"), "{err}");
    assert!(!err.contains("http_receive_timeout"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

/// A source that pauses 45 s, longer than ClickHouse's 30 s http_receive_timeout: the writer
/// ends its INSERT while idle and begins another with the next row; the dump succeeds.
#[tokio::test]
async fn a_source_that_pauses_45_seconds() {
    let Some(db) = TestDb::new("pause") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let FedDump {
        child,
        mut source,
        bytes,
        ..
    } = FedDump::start(dir.path(), 30_000, &db, &["--auto-create-tables"], |cmd| {
        cmd.env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
    });
    std::thread::sleep(Duration::from_secs(45));
    source
        .write_all(&bytes[bytes.len() / 2..])
        .expect("second half");
    drop(source);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ending the INSERT"), "{stderr}");
    assert_eq!(db.view_keys("").await, "30000\t30000");
    db.drop_db().await;
}

/// A batch older than the TTL is refused before anything is written (not even the database
/// is created); the TTL of an existing table wins over --ttl-days.
#[tokio::test]
async fn a_batch_older_than_the_ttl_is_refused_before_anything_is_written() {
    let Some(db) = TestDb::new("ttl") else { return };
    let day = 86_400 * 1_000_000_000i64;
    let old = batch("c1", t1() - 31 * day);
    let err = prepare_error(&mut db.output(true), &old).await;
    assert!(
        err.contains("is 31 days old, older than --ttl-days 30"),
        "{err}"
    );
    assert!(err.contains("--batch-timestamp"), "{err}");
    assert_eq!(
        db.q(&format!(
            "SELECT count() FROM system.databases WHERE name = '{}'",
            db.name
        ))
        .await,
        "0"
    );
    // Tables made with a 7-day TTL: a 10-day-old batch is refused even with --ttl-days 30.
    let mut output = ClickHouseOutput::from_args(&db.url(), None, true, 7).expect("url");
    output
        .prepare_batch(&batch("c1", t1()))
        .await
        .expect("schema");
    drop(output);
    let err = prepare_error(&mut db.output(false), &batch("c1", t1() - 10 * day)).await;
    assert!(err.contains("older than the 7-day TTL of"), "{err}");
    assert_eq!(db.count("redis_records_raw").await, 0);
    db.drop_db().await;
}

/// SIGTERM while a ClickHouse that accepts and never answers holds the preparation's request
/// stops the dump at once (exit 143, the interrupt line), instead of waiting for
/// `--ch-response-timeout`.
#[tokio::test]
async fn a_signal_interrupts_a_preparation_the_server_holds() {
    let hung = FakeServer::start(usize::MAX, |peer| {
        peer.hold();
        Ok(())
    });
    let url = format!("http://{}?database=x", hung.addr());
    let fixture = common::fixtures::own_fixtures().join("r7-multidb.rdb");
    let child = dump_command(&fixture, "c", t1(), &url, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Let it reach the server (its first request is then held; the response timeout is 300 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    common::cli::signal(&child, "-TERM");
    let out = child.wait_with_output().expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("interrupted by SIGTERM"), "{errors:?}");
}
