//! [`ClickHouseOutput`] (batch level) and [`ClickHouseChunkWriter`] (one per instance).
//!
//! * `prepare_batch`, before any row is written:
//!   - checks the schema, creating or migrating it with `--auto-create-tables`, and refuses a
//!     batch timestamp older than the records table's TTL ([`super::schema_check`]);
//!   - removes what dead attempts left, then claims the batch ([`super::claim`]): a batch that
//!     is complete, has rows of an rdbinsight before attempts, or is being written by a live
//!     attempt is refused here.
//! * Each instance writer streams its rows, tagged with the attempt, through an
//!   [`InsertStream`] (see `stream` for the design and why it is not the crate's `Inserter`),
//!   then stores the instance's summary (`set_summary`) in `import_instance_summaries`.
//! * `finalize_batch` re-checks the claim, writes the `(cluster, batch, attempt)` marker into
//!   `import_batches_completed` (the first marker of a batch wins; from then on
//!   `redis_records_view` shows this attempt's rows), reads it back (an attempt that lost
//!   fails) and marks the claim `completed`.
//! * `abort_batch` (a failed or interrupted dump) waits for the attempt's INSERTs to end on
//!   the server, deletes this attempt's rows (unless a marker names it) and marks the claim
//!   `aborted`.
//!
//! Throughput and memory against the engine's own ingest of the same rows: `bench/README.md`.
//!
//! Nothing is retried. After an error the writer refuses further records.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::attempt::AttemptId;
use super::batch_rows;
use super::claim::{self, Attempt, Claim, ClaimStatus, ClaimTiming};
use super::config::ClickHouseConfig;
use super::conn::Conn;
use super::rowbinary::{self, RowEncoder};
use super::schema::{RECORDS_TABLE, SUMMARIES_TABLE};
use super::schema_check::SchemaCheck;
use super::stream::{InsertStream, StreamConfig, StreamLimits};
use crate::output::{BatchContext, ChunkWriter, Output, OutputError};
use crate::record::{InstanceSummary, Record, WriteContext};

/// Default `--ch-cleanup-timeout`.
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of `import_instance_summaries`.
#[derive(clickhouse::Row, Serialize)]
struct SummaryRow<'a> {
    cluster: &'a str,
    batch: i64,
    instance: &'a str,
    attempt: u64,
    summary: &'a str,
}

/// Batch-level ClickHouse output.
pub struct ClickHouseOutput {
    config: ClickHouseConfig,
    conn: Conn,
    limits: StreamLimits,
    timing: ClaimTiming,
    compress: bool,
    attempt: Attempt,
    /// Set by `prepare_batch`.
    claim: Option<Claim>,
    /// Set by `prepare_batch`: what every writer's stream shares.
    stream: Option<StreamConfig>,
    writers: u32,
    /// Fault injection (tests): skip the claim check before the marker.
    skip_owner_check: bool,
    /// `--ch-cleanup-timeout`: how long `abort_batch` may take.
    cleanup_timeout: Duration,
}

impl std::fmt::Debug for ClickHouseOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseOutput")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClickHouseOutput {
    /// Build the clients. Nothing connects until `prepare_batch`. `https://` uses rustls with
    /// the bundled Mozilla root certificates.
    pub fn new(config: ClickHouseConfig) -> Result<Self, OutputError> {
        if let Some(p) = &config.proxy
            && config.url.scheme == super::config::Scheme::Https
        {
            return Err(OutputError::Misuse(format!(
                "--proxy-url {p}: an https:// ClickHouse URL through a proxy is not supported \
                 (only plain HTTP forwarding)"
            )));
        }
        let conn = Conn::new(&config)?;
        Ok(ClickHouseOutput {
            config,
            conn,
            limits: StreamLimits::default(),
            timing: ClaimTiming::default(),
            compress: true,
            attempt: Attempt::new(),
            claim: None,
            stream: None,
            writers: 0,
            skip_owner_check: false,
            cleanup_timeout: DEFAULT_CLEANUP_TIMEOUT,
        })
    }

    /// Parse the command-line values and build the output (default timeouts, no
    /// `--on-cluster`).
    pub fn from_args(
        url: &str,
        proxy_url: Option<&str>,
        auto_create_tables: bool,
        ttl_days: u32,
    ) -> Result<Self, OutputError> {
        let config = ClickHouseConfig::new(url, proxy_url, auto_create_tables, ttl_days)
            .map_err(|e| OutputError::Misuse(e.to_string()))?;
        Self::new(config)
    }

    /// Rows per INSERT (default `super::stream::MAX_ROWS_PER_INSERT`; tests use small
    /// values). Applies to batches prepared afterwards.
    pub fn set_max_rows_per_insert(&mut self, rows: u64) {
        self.limits.max_rows = rows.max(1);
    }

    /// Idle time after which an INSERT is ended (default `super::stream::IDLE_END`).
    pub fn set_idle_end(&mut self, idle: Duration) {
        self.limits.idle_end = idle;
    }

    /// `--ch-claim-expiry`: a claim not refreshed for this long belongs to a dead attempt.
    pub fn set_claim_expiry(&mut self, expiry: Duration) {
        self.timing.expiry = expiry.max(Duration::from_secs(1));
    }

    /// `--ch-cleanup-timeout`: the longest `abort_batch` (waiting for this attempt's INSERTs,
    /// deleting its rows, releasing its claim) may take; then the rows are left, never shown.
    pub fn set_cleanup_timeout(&mut self, timeout: Duration) {
        self.cleanup_timeout = timeout;
    }

    /// LZ4 on the wire (default on).
    pub fn set_compression(&mut self, on: bool) {
        self.compress = on;
    }

    /// Fault injection for tests: `finalize_batch` skips its claim check and goes straight to
    /// the marker, as a process frozen between that check and the marker insert would. What
    /// keeps such an attempt from completing a batch is then the marker itself.
    #[doc(hidden)]
    pub fn skip_owner_check_before_marker(&mut self) {
        self.skip_owner_check = true;
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// This run's attempt id (the prefix of its INSERTs' `query_id`s).
    pub fn attempt_id(&self) -> AttemptId {
        self.attempt.id
    }

    /// The schema checks, against this output's server and configuration.
    fn schema(&self) -> SchemaCheck<'_> {
        SchemaCheck::new(&self.conn, &self.config)
    }

    /// The client the writers insert with.
    fn stream_config(&self, claim: &Claim) -> StreamConfig {
        let mut client = self
            .conn
            .client
            .clone()
            .with_compression(if self.compress {
                clickhouse::Compression::Lz4
            } else {
                clickhouse::Compression::None
            })
            // A settings profile with async inserts would buffer our rows server-side.
            .with_setting("async_insert", "0");
        if self.config.on_cluster.is_some() {
            // Through the Distributed table synchronously: a failed shard fails the INSERT
            // instead of queueing it on disk.
            client = client.with_setting("insert_distributed_sync", "1");
        }
        StreamConfig {
            client,
            compress: self.compress,
            sql: Arc::from(rowbinary::insert_sql(&self.conn.table(RECORDS_TABLE))),
            header: Arc::from(rowbinary::header()),
            timeouts: self.config.timeouts,
            limits: self.limits,
            fence: Arc::clone(&claim.fence),
        }
    }

    /// `rdbinsight misc clickhouse-drop-batch`: remove a batch (its completion marker, then its
    /// rows), refusing while a live attempt writes it. Returns the rows and markers it had.
    pub async fn drop_batch(&mut self, batch: &BatchContext) -> Result<(u64, u64), OutputError> {
        self.schema().existing().await?;
        claim::clean_up_dead_attempts(&self.conn, self.timing).await?;
        let mut claim = Claim::for_drop(&self.conn, batch, &self.attempt, self.timing).await?;
        let result = async {
            let counts = batch_rows::batch_counts(&self.conn, batch).await?;
            batch_rows::delete_marker(&self.conn, batch).await?;
            batch_rows::delete_rows(&self.conn, batch).await?;
            batch_rows::delete_summaries(&self.conn, batch).await?;
            Ok::<_, OutputError>(counts)
        }
        .await;
        claim.stop_heartbeat().await;
        let status = if result.is_ok() {
            ClaimStatus::Dropped
        } else {
            ClaimStatus::Aborted
        };
        if let Err(e) = claim.set_status(&self.conn, status).await {
            tracing::warn!("{e}");
        }
        result
    }
}

impl Output for ClickHouseOutput {
    type Writer = ClickHouseChunkWriter;

    async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        self.schema().prepare(batch).await?;
        claim::clean_up_dead_attempts(&self.conn, self.timing).await?;
        let claim = Claim::for_dump(&self.conn, batch, &self.attempt, self.timing).await?;
        self.stream = Some(self.stream_config(&claim));
        self.claim = Some(claim);
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<ClickHouseChunkWriter, OutputError> {
        let Some(stream) = &self.stream else {
            return Err(OutputError::Misuse(
                "ClickHouse output used before prepare_batch".into(),
            ));
        };
        self.writers += 1;
        let context = format!(
            "ClickHouse insert into {} failed for instance {}",
            self.conn.table(RECORDS_TABLE),
            ctx.instance
        );
        let query_id = format!("{}-{}", self.attempt.id, self.writers);
        Ok(ClickHouseChunkWriter {
            encoder: RowEncoder::new(&ctx, self.attempt.id),
            stream: InsertStream::new(stream.clone(), context, query_id),
            conn: self.conn.clone(),
            attempt: self.attempt.id,
            summary: None,
            ctx,
            state: WriterState::New,
        })
    }

    /// Mark the batch complete: from now on `redis_records_view` shows it. The first marker
    /// of a batch wins; an attempt that finds another's marker fails (its rows stay
    /// invisible, and `abort_batch` removes them).
    async fn finalize_batch(&mut self) -> Result<(), OutputError> {
        let conn = &self.conn;
        let Some(claim) = self.claim.as_mut() else {
            return Err(OutputError::Misuse(
                "ClickHouse output used before prepare_batch".into(),
            ));
        };
        claim.stop_heartbeat().await;
        if !self.skip_owner_check {
            claim.ensure_owned(conn).await?;
        }
        let winners = claim.write_marker(conn).await?;
        let what = format!(
            "batch {} of cluster {}",
            claim.batch.batch, claim.batch.cluster
        );
        if winners != [claim.attempt.id.get()] {
            let why = if winners.is_empty() {
                "its claim was taken over before its completion marker was stored (it was \
                 considered dead after --ch-claim-expiry without a heartbeat)"
                    .to_string()
            } else {
                let named: Vec<String> = winners
                    .iter()
                    .map(|&w| {
                        AttemptId::from_stored(w).map_or_else(
                            || "none: written by an rdbinsight before attempts".to_string(),
                            |id| id.to_string(),
                        )
                    })
                    .collect();
                format!(
                    "another attempt completed it first (the marker names attempt {})",
                    named.join(", ")
                )
            };
            return Err(OutputError::Refused(format!(
                "this attempt ({}) lost {what}: {why}; its rows are not shown",
                claim.attempt.id
            )));
        }
        if let Err(e) = claim.set_status(conn, ClaimStatus::Completed).await {
            // The batch is complete (its marker is written); a later run records it.
            tracing::warn!("{e}");
        }
        if claim.seq > 1 {
            // Earlier attempts on this batch died or were fenced: their rows are invisible;
            // remove them (housekeeping).
            if let Err(e) =
                batch_rows::delete_losing_rows(conn, &claim.batch, claim.attempt.id).await
            {
                tracing::warn!("{e} (they are not shown; the table's TTL removes them)");
            }
        }
        self.claim = None;
        Ok(())
    }

    /// Remove this attempt's rows (see the module docs), within `--ch-cleanup-timeout`.
    async fn abort_batch(&mut self) {
        let Some(mut claim) = self.claim.take() else {
            return;
        };
        claim.stop_heartbeat().await;
        let timeout = self.cleanup_timeout;
        if tokio::time::timeout(timeout, self.clean_up(claim))
            .await
            .is_err()
        {
            tracing::warn!(
                "the cleanup did not finish within {} s (--ch-cleanup-timeout): this attempt's \
                 rows are left in {}, never shown (no completion marker names them); the next \
                 run removes them once this attempt's claim expires (--ch-claim-expiry, {} s), \
                 or `rdbinsight misc clickhouse-drop-batch` does",
                timeout.as_secs(),
                self.conn.table(RECORDS_TABLE),
                self.timing.expiry.as_secs()
            );
        }
    }
}

impl ClickHouseOutput {
    /// `abort_batch`'s work: wait for this attempt's INSERTs, delete its rows, release the
    /// claim.
    async fn clean_up(&self, claim: Claim) {
        let conn = &self.conn;
        let what = format!(
            "batch {} of cluster {}",
            claim.batch.batch, claim.batch.cluster
        );
        let later = "they are not shown (no completion marker names this attempt); the next \
                     run removes them once this attempt's claim expires (--ch-claim-expiry)";
        if let Err(e) = batch_rows::wait_inserts_done(conn, claim.attempt.id).await {
            tracing::warn!("not removing the rows of {what} yet: {e}; {later}");
            return;
        }
        // Only this attempt's rows, and never those of the attempt a marker names (this one,
        // if its marker was stored before the failure).
        match batch_rows::delete_attempt_rows(conn, &claim.batch, claim.attempt.id).await {
            Ok(true) => {
                tracing::info!("removed the rows this attempt wrote for {what}");
                if let Err(e) = claim.set_status(conn, ClaimStatus::Aborted).await {
                    tracing::warn!("{e}");
                }
            }
            Ok(false) => {
                tracing::warn!(
                    "the completion marker of {what} names this attempt: the batch is complete"
                );
                if let Err(e) = claim.set_status(conn, ClaimStatus::Completed).await {
                    tracing::warn!("{e}");
                }
            }
            Err(e) => tracing::warn!("could not remove the rows this attempt wrote: {e}; {later}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterState {
    New,
    Open,
    Finalized,
    Failed,
}

/// One instance's writer: its rows streamed into `redis_records_raw`.
pub struct ClickHouseChunkWriter {
    encoder: RowEncoder,
    stream: InsertStream,
    /// For the summary row.
    conn: Conn,
    attempt: AttemptId,
    /// `set_summary`'s, as JSON: stored in `finalize_instance`.
    summary: Option<String>,
    ctx: WriteContext,
    state: WriterState,
}

impl ClickHouseChunkWriter {
    fn not_open(&self) -> OutputError {
        let why = match self.state {
            WriterState::New => "before prepare_instance",
            WriterState::Finalized => "after finalize_instance",
            WriterState::Failed => "after an earlier error",
            WriterState::Open => "in an inconsistent state",
        };
        OutputError::Misuse(format!(
            "ClickHouse writer for instance {} used {why}",
            self.ctx.instance
        ))
    }

    /// INSERT statements begun so far.
    pub fn inserts_started(&self) -> u64 {
        self.stream.inserts_started()
    }

    /// Store the instance's summary (if `set_summary` gave one), tagged with the attempt:
    /// before the batch's marker, so a completed batch has its summaries.
    async fn store_summary(&mut self) -> Result<(), OutputError> {
        let Some(summary) = self.summary.take() else {
            return Ok(());
        };
        let conn = &self.conn;
        let t = conn.timeouts;
        let row = SummaryRow {
            cluster: &self.ctx.cluster,
            batch: self.ctx.batch.nanos(),
            instance: &self.ctx.instance,
            attempt: self.attempt.get(),
            summary: &summary,
        };
        conn.run(
            format!(
                "cannot store the summary of instance {} in {}",
                self.ctx.instance,
                conn.table(SUMMARIES_TABLE)
            ),
            async {
                let mut insert = conn
                    .client
                    .insert::<SummaryRow<'static>>(SUMMARIES_TABLE)
                    .await?
                    .with_timeouts(Some(t.send), Some(t.response));
                insert.write(&row).await?;
                insert.end().await
            },
        )
        .await
    }

    fn check<T>(&mut self, result: Result<T, OutputError>) -> Result<T, OutputError> {
        if result.is_err() {
            self.state = WriterState::Failed;
        }
        result
    }
}

impl ChunkWriter for ClickHouseChunkWriter {
    fn set_summary(&mut self, summary: &InstanceSummary) {
        self.summary = serde_json::to_string(summary).ok();
    }

    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::New {
            return Err(self.not_open());
        }
        // The schema was checked in prepare_batch; the first INSERT begins with the first row.
        self.state = WriterState::Open;
        Ok(())
    }

    #[inline]
    async fn write_record(&mut self, record: &Record) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Err(self.not_open());
        }
        let result = self.stream.write(&self.encoder, record).await;
        self.check(result)
    }

    async fn on_idle(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Ok(());
        }
        let result = self.stream.on_idle().await;
        self.check(result)
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Err(self.not_open());
        }
        let result = self.stream.finish().await;
        self.check(result)?;
        let result = self.store_summary().await;
        self.check(result)?;
        self.state = WriterState::Finalized;
        Ok(())
    }
}
