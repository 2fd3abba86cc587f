//! [`InsertStream`]: one instance's rows, streamed into ClickHouse as a sequence of INSERTs.
//!
//! The brief's Inserter semantics, on the crate's streaming primitive: one long-lived object
//! per instance; rows are appended one at a time to a buffer that goes to the socket
//! (LZ4-compressed) every [`CHUNK_BYTES`], so the server parses and stores rows while the
//! parser produces the next ones and memory stays flat; the INSERT is ended and a new one
//! begun every [`MAX_ROWS_PER_INSERT`] rows; `finish` ends the last one; no retries.
//!
//! Built on `clickhouse::insert_formatted::InsertFormatted` (what the crate's `Insert<T>` uses
//! underneath) rather than on `Insert<T>` itself, because `Insert<T>` reports an INSERT the
//! server aborted as `network error: channel closed`: its `write` sees only the request's body
//! channel closing, and its `end` cannot reach the request's result after that. With
//! `InsertFormatted` a failed `send` is followed by `end`, which returns the request's own
//! result: the server's exception (code and text). Rows are encoded by
//! [`super::rowbinary`].
//!
//! Idle INSERTs: ClickHouse drops an HTTP request whose body sends nothing for
//! `http_receive_timeout` (30 s by default, a server-side setting). A live source can pause
//! for minutes (a master preparing its snapshot, one huge key). [`InsertStream::on_idle`]
//! (called by the pipeline while no record arrives) ends the current INSERT cleanly once
//! nothing went out for [`IDLE_END`]: its rows are stored (still invisible until the batch
//! marker) and the next row begins a new INSERT. While rows flow, a chunk goes out at least
//! every few seconds (the pipeline hands records over in chunks of 1024, ~100 KB).
//!
//! Every INSERT carries a `query_id` of `<attempt>-<instance number>-<n>`, so that
//! `abort_batch` can wait until the server has finished every INSERT of the attempt before it
//! deletes the attempt's rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clickhouse::Client;
use clickhouse::Compression;
use clickhouse::error::Error;
use clickhouse::insert_formatted::{CompressedData, InsertFormatted};

use super::claim::Fence;
use super::config::Timeouts;
use super::error::{Step, ch_error};
use super::rowbinary::RowEncoder;
use crate::output::OutputError;
use crate::record::Record;

/// Rows per INSERT statement: the INSERT is ended and a new one begun after this many rows.
pub const MAX_ROWS_PER_INSERT: u64 = 10_000_000;
/// Serialized bytes handed to the connection at once (before LZ4). The crate's own chunk size.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// An INSERT that sent nothing for this long while no record arrives is ended (see the module
/// docs); well within ClickHouse's default `http_receive_timeout` of 30 s.
pub const IDLE_END: Duration = Duration::from_secs(5);
/// How long a failed request may take to hand over the server's answer.
const RECOVER_WAIT: Duration = Duration::from_secs(10);

/// Limits of an [`InsertStream`] (tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_rows: u64,
    pub chunk_bytes: usize,
    pub idle_end: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_rows: MAX_ROWS_PER_INSERT,
            chunk_bytes: CHUNK_BYTES,
            idle_end: IDLE_END,
        }
    }
}

/// What every INSERT of an instance shares.
#[derive(Clone)]
pub struct StreamConfig {
    /// Default database set; carries the settings for the records table (e.g. synchronous
    /// Distributed inserts).
    pub client: Client,
    /// Whether `client` compresses (LZ4); the chunks are compressed here.
    pub compress: bool,
    /// `INSERT INTO ... FORMAT RowBinaryWithNamesAndTypes`.
    pub sql: Arc<str>,
    /// The format header, sent first in every INSERT.
    pub header: Arc<[u8]>,
    pub timeouts: Timeouts,
    pub limits: StreamLimits,
    /// Fails the stream once the attempt lost its claim on the batch.
    pub fence: Arc<Fence>,
}

/// One instance's INSERT stream; see the module docs.
pub struct InsertStream {
    config: StreamConfig,
    /// Prefix of every error: which table, which instance.
    context: String,
    /// `<attempt>-<instance number>`; INSERT n gets `<query_id_prefix>-<n>`.
    query_id_prefix: String,
    inserts_started: u64,
    insert: Option<InsertFormatted>,
    buf: Vec<u8>,
    rows_in_insert: u64,
    /// When the current INSERT last handed bytes to the connection (or began).
    last_sent: Instant,
}

impl InsertStream {
    pub fn new(config: StreamConfig, context: String, query_id_prefix: String) -> Self {
        let buf = Vec::with_capacity(config.limits.chunk_bytes + 4096);
        InsertStream {
            config,
            context,
            query_id_prefix,
            inserts_started: 0,
            insert: None,
            buf,
            rows_in_insert: 0,
            last_sent: Instant::now(),
        }
    }

    /// INSERT statements begun so far.
    pub fn inserts_started(&self) -> u64 {
        self.inserts_started
    }

    /// Append one row; sends a chunk when the buffer is full and ends the INSERT at the row
    /// limit.
    #[inline]
    pub async fn write(
        &mut self,
        encoder: &RowEncoder,
        record: &Record,
    ) -> Result<(), OutputError> {
        if self.insert.is_none() {
            self.begin();
        }
        encoder.encode(record, &mut self.buf);
        self.rows_in_insert += 1;
        if self.buf.len() >= self.config.limits.chunk_bytes {
            self.send_chunk().await?;
        }
        if self.rows_in_insert >= self.config.limits.max_rows {
            self.end_insert().await?;
        }
        Ok(())
    }

    /// No record arrived for a while: end the INSERT if it sent nothing for
    /// [`StreamLimits::idle_end`].
    pub async fn on_idle(&mut self) -> Result<(), OutputError> {
        self.config.fence.check()?;
        if self.insert.is_some() && self.last_sent.elapsed() >= self.config.limits.idle_end {
            tracing::debug!(
                "{}: no record for {:?}: ending the INSERT ({} rows) before the server's receive timeout",
                self.context,
                self.last_sent.elapsed(),
                self.rows_in_insert
            );
            self.end_insert().await?;
        }
        Ok(())
    }

    /// End the running INSERT (if any) and wait for the server to acknowledge it.
    pub async fn finish(&mut self) -> Result<(), OutputError> {
        self.end_insert().await
    }

    fn begin(&mut self) {
        let query_id = format!("{}-{}", self.query_id_prefix, self.inserts_started);
        self.inserts_started += 1;
        let t = self.config.timeouts;
        let insert = self
            .config
            .client
            .insert_formatted_with(self.config.sql.to_string())
            .with_setting("query_id", query_id)
            .with_timeouts(Some(t.send), Some(t.response));
        self.insert = Some(insert);
        self.buf.clear();
        self.buf.extend_from_slice(&self.config.header);
        self.rows_in_insert = 0;
        self.last_sent = Instant::now();
    }

    /// Hand the buffer to the connection (waits while the connection is a chunk behind).
    async fn send_chunk(&mut self) -> Result<(), OutputError> {
        if let Err(e) = self.config.fence.check() {
            self.insert = None; // dropping it aborts the request: nothing more is stored
            return Err(e);
        }
        let Some(insert) = self.insert.as_mut() else {
            return Ok(());
        };
        let result = if self.config.compress {
            match CompressedData::new(&self.buf, Compression::Lz4) {
                Ok(data) => insert.send_compressed(data).await,
                Err(e) => Err(e),
            }
        } else {
            let cap = self.config.limits.chunk_bytes + 4096;
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(cap));
            insert.send(chunk.into()).await
        };
        self.buf.clear();
        match result {
            Ok(()) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Err(e) => Err(self.fail(e, Step::Send).await),
        }
    }

    async fn end_insert(&mut self) -> Result<(), OutputError> {
        if self.insert.is_none() {
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.send_chunk().await?;
        }
        let Some(insert) = self.insert.take() else {
            return Ok(());
        };
        self.rows_in_insert = 0;
        match insert.end().await {
            Ok(()) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Err(e) => Err(self.fail(e, Step::Response).await),
        }
    }

    /// The error of a failed send/end, with the server's own message when there is one.
    async fn fail(&mut self, err: Error, step: Step) -> OutputError {
        let mut err = err;
        if let (Error::Network(_), Some(insert)) = (&err, self.insert.take()) {
            // The request ended first (typically: the server answered with an exception and
            // closed), so the send saw only its body channel closing. The request's result,
            // which `end` returns, holds the server's answer.
            if let Ok(Err(answer)) = tokio::time::timeout(RECOVER_WAIT, insert.end()).await {
                err = answer;
            }
        }
        // Dropping an unfinished INSERT aborts its request: the server stores nothing more.
        self.insert = None;
        let t = self.config.timeouts;
        let timeout = match step {
            Step::Send => t.send,
            Step::Response => t.response,
        };
        ch_error(&self.context, &err, step, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::BatchContext;
    use crate::output::clickhouse::config::ClickHouseConfig;
    use crate::output::clickhouse::conn::Conn;
    use crate::output::clickhouse::rowbinary;
    use crate::record::{BatchTs, Record};

    /// Rows for the stream tests.
    fn test_record(i: u64) -> Record {
        Record {
            key: format!("user:{i}:profile").into_bytes(),
            member_count: 1,
            rdb_size: 40,
            ..Record::default()
        }
    }

    /// An uncompressed stream to `addr` with `timeouts`.
    fn test_stream(addr: std::net::SocketAddr, timeouts: Timeouts) -> (InsertStream, RowEncoder) {
        let mut cfg = ClickHouseConfig::new(&format!("http://{addr}?database=x"), None, true, 30)
            .expect("url");
        cfg.timeouts = timeouts;
        let conn = Conn::new(&cfg).expect("conn");
        let stream = StreamConfig {
            client: conn.client.clone().with_compression(Compression::None),
            compress: false,
            sql: Arc::from(rowbinary::insert_sql("`x`.`redis_records_raw`")),
            header: Arc::from(rowbinary::header()),
            timeouts: cfg.timeouts,
            limits: StreamLimits::default(),
            fence: Arc::new(Fence::default()),
        };
        let batch = BatchContext {
            cluster: "c".into(),
            batch: BatchTs::from_nanos(1_700_000_000_000_000_000),
        };
        let encoder = RowEncoder::new(
            &batch.write_context("i1"),
            super::super::attempt::AttemptId::random(),
        );
        let s = InsertStream::new(stream, "insert for instance i1".into(), "test-1".into());
        (s, encoder)
    }

    /// Read an HTTP request head (up to the blank line).
    async fn read_head(sock: &mut tokio::net::TcpStream) {
        use tokio::io::AsyncReadExt as _;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match sock.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    }

    /// A server that answers an INSERT with its exception while the body is still coming, and
    /// reads no more of it (as a proxy in front of ClickHouse, or a server out of memory, may):
    /// the error is the server's answer, not "channel closed", whether it answers at once or
    /// after the client has filled the socket and waits for room. (A TCP server in the test:
    /// the engine itself reads the whole body before answering, so it cannot produce this
    /// order.)
    #[tokio::test]
    async fn an_answer_before_the_body_ends_is_the_error() {
        for pause in [Duration::ZERO, Duration::from_millis(500)] {
            let err = answered_early(pause).await;
            assert!(err.contains("Code: 241"), "{pause:?}: {err}");
            assert!(err.contains("MEMORY_LIMIT_EXCEEDED"), "{pause:?}: {err}");
            assert!(!err.contains("channel closed"), "{pause:?}: {err}");
        }
    }

    /// The error of an INSERT whose server reads 256 KiB of the body, waits `pause`, answers
    /// with an exception and closes (lingering: no reset, which could discard the answer).
    async fn answered_early(pause: Duration) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                read_head(&mut sock).await;
                let mut body = vec![0u8; 256 << 10];
                let _ = sock.read_exact(&mut body).await;
                tokio::time::sleep(pause).await;
                let text = "Code: 241. DB::Exception: Memory limit (total) exceeded: would use \
                            9.31 GiB. (MEMORY_LIMIT_EXCEEDED) (version 26.9.2.1)\n";
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\nX-ClickHouse-Exception-Code: 241\r\n\
                     Content-Type: text/plain\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            send: Duration::from_secs(5),
            response: Duration::from_secs(5),
        };
        let (mut s, encoder) = test_stream(addr, timeouts);
        for i in 0..2_000_000u64 {
            if let Err(e) = s.write(&encoder, &test_record(i)).await {
                return e.to_string();
            }
        }
        s.finish().await.expect_err("refused").to_string()
    }

    /// A server that stops reading: it reads the request head, then holds the connection
    /// without reading or answering. Writing stops at the send timeout, with a message naming
    /// the flag. (A TCP server in the test, standing for a hung peer, not for
    /// ClickHouse.)
    #[tokio::test]
    async fn a_server_that_stops_reading_hits_the_send_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                read_head(&mut sock).await;
                held.push(sock);
            }
        });
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            send: Duration::from_secs(1),
            response: Duration::from_secs(30),
        };
        let (mut s, encoder) = test_stream(addr, timeouts);
        let started = Instant::now();
        let mut err = None;
        // Until the socket buffers are full and the server still does not read.
        for i in 0..2_000_000u64 {
            let record = test_record(i);
            if let Err(e) = s.write(&encoder, &record).await {
                err = Some(e.to_string());
                break;
            }
        }
        let err = err.expect("the send times out");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.contains("the server accepted no data for 1 s (--ch-send-timeout)"),
            "{err}"
        );
    }
}
