//! A fresh database on the real ClickHouse engine for one test (same conventions as
//! `tests/clickhouse_output.rs`): the engine comes from `RDBINSIGHT_TEST_CLICKHOUSE_URL`
//! (`scripts/clickhouse-test-env.sh` starts one); without it a test FAILS, unless
//! `RDBINSIGHT_SKIP_CLICKHOUSE_TESTS=1` skips the ClickHouse part with a printed note.

use std::sync::atomic::{AtomicU64, Ordering};

pub const URL_VAR: &str = "RDBINSIGHT_TEST_CLICKHOUSE_URL";
pub const SKIP_VAR: &str = "RDBINSIGHT_SKIP_CLICKHOUSE_TESTS";

/// The engine's base URL, or `None` when skipping was asked for (a note is printed).
pub fn base_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ => {
            if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
                eprintln!("{SKIP_VAR}=1: skipping the ClickHouse part of {test}");
                return None;
            }
            panic!(
                "{URL_VAR} is not set, so there is no ClickHouse to test against.\n\
                 Start the local test engine and run the tests with it:\n    \
                 scripts/clickhouse-test-env.sh cargo test\n\
                 (or `source scripts/clickhouse-test-env.sh` once per shell), or set {SKIP_VAR}=1 \
                 to skip the ClickHouse tests explicitly."
            )
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A database name no other test uses; the database is dropped on drop (best effort).
pub struct TestDb {
    pub base: String,
    pub name: String,
}

impl TestDb {
    pub fn new(test: &str) -> Option<TestDb> {
        let base = base_url(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "rdbinsight_test_{test}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos % 1_000_000_000
        );
        Some(TestDb { base, name })
    }

    /// `--url` for this database.
    pub fn url(&self) -> String {
        format!("{}?database={}", self.base, self.name)
    }

    /// Run one statement over HTTP (POST body), returning the response text.
    pub fn exec(&self, sql: &str) -> String {
        http_post(&self.base, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            http_post(
                &self.base,
                &format!("DROP DATABASE IF EXISTS `{}`", self.name),
            )
        });
    }
}

/// POST `sql` to the ClickHouse HTTP interface at `base` (`http://[user:pass@]host:port`).
pub fn http_post(base: &str, sql: &str) -> String {
    use std::io::{Read, Write};
    let rest = base.strip_prefix("http://").expect("an http:// test URL");
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let mut s = std::net::TcpStream::connect(hostport).expect("connect to ClickHouse");
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {}\r\nConnection: close\r\n",
        sql.len()
    );
    if let Some(a) = auth {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(a);
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(sql);
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "ClickHouse rejected {sql}: {head}\n{body}"
    );
    // Chunked or not: the tests only look at short bodies of plain text.
    body.to_string()
}
