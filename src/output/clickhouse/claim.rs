//! A batch is exactly one complete attempt: attempts, claims, markers and cleanup.
//!
//! ClickHouse has no transactions, and a lease cannot fence a writer paused past it. So the
//! guarantee comes from what readers read, not from who may write: every row carries the
//! attempt that wrote it (the `attempt` column, last in the sorting key, so rows of two
//! attempts never collapse into each other in a merge), the completion marker names one
//! attempt, and the view and the report read only that attempt's rows. Whatever a stale
//! attempt writes or deletes later is harmless. The claims do the rest: refuse a concurrent run
//! early, and garbage-collect the rows of attempts that died.
//!
//! 1. **Claim.** Each run is an attempt with a random id ([`AttemptId`]: 64 bits, never 0,
//!    the `attempt` of rows written before attempts; 16 hex digits in the claims table, in
//!    messages and in `query_id`s, `UInt64` elsewhere). It inserts a claim row
//!    `(cluster, batch, seq, attempt, host, pid, started_at, state = running, expiry_ms)` into
//!    `import_batch_claims`, where `seq` is one more than the batch's latest claim, with the
//!    insert deduplication token `claim:<cluster>:<batch>:<seq>`. ClickHouse keeps only the
//!    first insert of a token (`non_replicated_deduplication_window`; through Keeper for
//!    replicated tables), at commit time, atomically: of two attempts racing for the same
//!    `seq`, exactly one row is stored. Each reads back the claim `seq` and proceeds only if
//!    the stored row is its own; no clock is involved.
//! 2. **Refusal, up front.** The owner then checks the batch: a completion marker, or rows
//!    of attempt 0 (left by an rdbinsight before attempts), means the batch is not
//!    this attempt's to write; it releases its claim and fails in `prepare_batch`, before any
//!    row, saying what to do. A latest claim that is still `running` (a live attempt, see 3) is
//!    refused before claiming. Rows of other attempts are ignored: nothing shows them.
//! 3. **Heartbeat.** While it runs, the owner adds a row to its claim every
//!    `expiry / 12` (10 s by default; the server's `now64()` is the heartbeat time). If it
//!    cannot for `expiry / 2`, or finds its claim taken over, it stops itself ([`Fence`]):
//!    every writer fails at its next chunk, before sending it. The claim records `expiry`
//!    (`--ch-claim-expiry`): every other run judges the claim by it, not by its own.
//! 4. **Complete.** `finalize_batch` checks the claim is still its own and live, then writes
//!    the marker naming its attempt ([`Claim::write_marker`]): an `INSERT ... SELECT` that the
//!    server turns into a row only while the claim is still `running`, with one deduplication
//!    token per batch, so the **first** marker of a batch is the only one stored. It reads the
//!    markers back: if they name another attempt (or none: the claim was reclaimed), it lost,
//!    says so and fails; its rows stay invisible and its abort removes them. The winner marks
//!    its claim `completed` and, if earlier attempts claimed the batch, deletes their rows.
//! 5. **Abort.** A failed or interrupted attempt waits until the server has finished its
//!    queries (their `query_id`s start with the attempt id), then deletes its own rows only
//!    (`attempt = <id>`, lightweight `DELETE`, synchronous; never attempt 0) unless a marker
//!    names it, and marks the claim `aborted`. If that fails, its rows stay (invisible; see 6 and the TTL).
//! 6. **Dead attempts.** A killed attempt (SIGKILL, power loss) stops heartbeating. Every run
//!    starts by looking for `running` claims (of any batch) whose last heartbeat is older than
//!    their own expiry: it marks the claim `reclaimed` first (from then on the server refuses
//!    that attempt's marker), waits until no marker insert of that attempt runs, then deletes
//!    that attempt's rows, unless a marker names it (then the claim is marked `completed`).
//!
//! Every `DELETE` a run issues is limited to one attempt ([`delete_attempt_rows`], which
//! never deletes the rows of an attempt a marker names) or, for the winner's housekeeping, to
//! the attempts other than the marker's and 0; only `misc clickhouse-drop-batch`, an operator's
//! decision refused while a live claim exists, removes a batch's marker and all its rows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::attempt::AttemptId;
use super::batch_rows::{self, batch_query, count, delete_attempt_rows, marker_attempts};
use super::config::on_cluster_flag;
use super::conn::Conn;
use super::schema::{ATTEMPT_COLUMN, BATCH_FILTER, BATCHES_TABLE, CLAIMS_TABLE, RECORDS_TABLE};
use crate::output::{BatchContext, OutputError};

/// Default `--ch-claim-expiry`.
pub const DEFAULT_CLAIM_EXPIRY: Duration = Duration::from_secs(120);

/// The status of a claim (the `state` column; the latest row by `version` is the claim's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Its attempt is writing the batch (and heartbeats).
    Running,
    /// Its attempt's marker completed the batch.
    Completed,
    /// Its attempt failed or was interrupted and removed its rows.
    Aborted,
    /// Its attempt died; another run removed its rows.
    Reclaimed,
    /// Its attempt was refused after claiming (the batch was complete or had old rows).
    Released,
    /// `misc clickhouse-drop-batch` removed the batch.
    Dropped,
}

impl ClaimStatus {
    const ALL: [ClaimStatus; 6] = [
        ClaimStatus::Running,
        ClaimStatus::Completed,
        ClaimStatus::Aborted,
        ClaimStatus::Reclaimed,
        ClaimStatus::Released,
        ClaimStatus::Dropped,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Running => "running",
            ClaimStatus::Completed => "completed",
            ClaimStatus::Aborted => "aborted",
            ClaimStatus::Reclaimed => "reclaimed",
            ClaimStatus::Released => "released",
            ClaimStatus::Dropped => "dropped",
        }
    }

    /// The status a stored text names (`None`: not one this release writes).
    pub fn parse(text: &str) -> Option<ClaimStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The `version` of a claim's rows: the latest row (`argMax(.., version)`) is the claim's
/// state. The claim row is version 1, the owner's heartbeats count up from 2, terminal rows
/// start at [`Versions::TERMINAL`] (above every heartbeat), and a cleaner's terminal rows
/// (another run ending a dead attempt's claim) outrank the owner's. Shared with the heartbeat
/// task.
#[derive(Debug)]
struct Versions {
    next: AtomicU64,
    /// Added to every terminal row's version.
    terminal_base: u64,
}

impl Versions {
    /// The version of the row that claims.
    const CLAIM: u64 = 1;
    /// Versions of terminal claim rows start here, above every heartbeat.
    const TERMINAL: u64 = 1 << 62;
    /// A cleaner's terminal rows start here, above the owner's.
    const CLEANER: u64 = Self::TERMINAL + (1 << 40);

    /// The owner's: heartbeats after the claim row.
    fn owner() -> Self {
        Versions {
            next: AtomicU64::new(Self::CLAIM + 1),
            terminal_base: Self::TERMINAL,
        }
    }

    /// Another run's, ending a dead attempt's claim (it writes terminal rows only).
    fn cleaner() -> Self {
        Versions {
            next: AtomicU64::new(0),
            terminal_base: Self::CLEANER,
        }
    }

    fn heartbeat(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn terminal(&self) -> u64 {
        self.terminal_base + self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Heartbeat period, self-fencing and expiry, all derived from `--ch-claim-expiry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTiming {
    /// A `running` claim whose last heartbeat is older than this belongs to a dead attempt.
    pub expiry: Duration,
}

impl Default for ClaimTiming {
    fn default() -> Self {
        ClaimTiming {
            expiry: DEFAULT_CLAIM_EXPIRY,
        }
    }
}

impl ClaimTiming {
    pub fn heartbeat(&self) -> Duration {
        (self.expiry / 12).max(Duration::from_millis(100))
    }
    /// An attempt that could not heartbeat for this long stops itself.
    pub fn fence(&self) -> Duration {
        self.expiry / 2
    }
}

/// Set once the attempt must stop writing (its claim lost, or not refreshed for too long).
#[derive(Debug, Default)]
pub struct Fence {
    lost: AtomicBool,
    reason: Mutex<String>,
}

impl Fence {
    /// `Err` once tripped (one atomic load otherwise).
    #[inline]
    pub fn check(&self) -> Result<(), OutputError> {
        if self.lost.load(Ordering::Acquire) {
            let reason = self
                .reason
                .lock()
                .map(|r| r.clone())
                .unwrap_or_else(|_| "the batch claim was lost".to_string());
            return Err(OutputError::Refused(reason));
        }
        Ok(())
    }

    pub fn trip(&self, reason: String) {
        if let Ok(mut r) = self.reason.lock()
            && r.is_empty()
        {
            *r = reason;
        }
        self.lost.store(true, Ordering::Release);
    }
}

/// This process's attempt on a batch.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: AttemptId,
    pub host: String,
    pub pid: u32,
    /// Unix milliseconds (this host's clock; informational).
    pub started_ms: i64,
}

impl Attempt {
    pub fn new() -> Self {
        Attempt {
            id: AttemptId::random(),
            host: host_name(),
            pid: std::process::id(),
            started_ms: crate::record::BatchTs::now().millis(),
        }
    }
}

impl Default for Attempt {
    fn default() -> Self {
        Self::new()
    }
}

/// What a claim's rows say about the attempt that holds it: its id as the claims table stores
/// it (16 hex digits; another text in a claim of an rdbinsight before 64-bit ids) and where it
/// runs.
#[derive(Debug, Clone)]
struct Claimant {
    attempt: String,
    host: String,
    pid: u32,
    started_ms: i64,
}

impl Claimant {
    fn of(attempt: &Attempt) -> Self {
        Claimant {
            attempt: attempt.id.to_string(),
            host: attempt.host.clone(),
            pid: attempt.pid,
            started_ms: attempt.started_ms,
        }
    }

    /// The claimant a stored claim names.
    fn stored(state: &ClaimState) -> Self {
        Claimant {
            attempt: state.attempt.clone(),
            host: state.host.clone(),
            pid: state.pid,
            started_ms: state.started_ms,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// One row of `import_batch_claims` (`updated_at` is the server's).
#[derive(clickhouse::Row, Serialize)]
struct ClaimRow<'a> {
    cluster: &'a str,
    batch: i64,
    seq: u32,
    attempt: &'a str,
    host: &'a str,
    pid: u32,
    started_at: i64,
    state: &'a str,
    version: u64,
    expiry_ms: u64,
}

/// The current state of one claim.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct ClaimState {
    pub cluster: String,
    /// Unix nanoseconds (not called `batch`: an alias of that name would shadow the column in
    /// `WHERE`).
    pub batch_ns: i64,
    pub seq: u32,
    /// The attempt's id as 16 hex digits (the claims table's `String`).
    pub attempt: String,
    pub host: String,
    pub pid: u32,
    pub started_ms: i64,
    pub state: String,
    /// Milliseconds since the last row of the claim (server clock).
    pub age_ms: i64,
    /// The expiry its attempt uses (`--ch-claim-expiry`), ms; 0 for a claim written before
    /// claims recorded it (judged by the reader's own expiry).
    pub expiry_ms: u64,
}

impl ClaimState {
    /// Whether this is claim `seq` of attempt `attempt`, still running.
    fn is_running_claim_of(&self, seq: u32, attempt: AttemptId) -> bool {
        self.seq == seq
            && AttemptId::parse_hex(&self.attempt) == Some(attempt)
            && self.status() == Some(ClaimStatus::Running)
    }

    /// The stored state (`None`: a text this release does not write).
    fn status(&self) -> Option<ClaimStatus> {
        ClaimStatus::parse(&self.state)
    }

    /// `claim 3 of attempt ab12: running`, for messages.
    fn describe(&self) -> String {
        format!(
            "claim {} of attempt {}: {}",
            self.seq, self.attempt, self.state
        )
    }

    /// The claim's expiry: its own, or `fallback` for a claim that did not record one.
    fn expiry(&self, fallback: Duration) -> Duration {
        match self.expiry_ms {
            0 => fallback,
            ms => Duration::from_millis(ms),
        }
    }

    fn who(&self) -> String {
        let started = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(self.started_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "?".into());
        format!(
            "host {}, pid {}, started {started}, last heartbeat {} s ago",
            self.host,
            self.pid,
            self.age_ms.max(0) / 1000
        )
    }
}

/// `SELECT` of the latest state of claims, `{claims}` and `{filter}` to fill in.
const STATE_SQL: &str = "SELECT cluster, toInt64(toUnixTimestamp64Nano(batch)) AS batch_ns, seq, \
     argMax(attempt, version) AS attempt, argMax(host, version) AS host, \
     argMax(pid, version) AS pid, \
     toInt64(toUnixTimestamp64Milli(argMax(started_at, version))) AS started_ms, \
     toString(argMax(state, version)) AS state, \
     toInt64(toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(max(updated_at))) AS age_ms, \
     max(expiry_ms) AS expiry_ms \
     FROM {claims} {filter} GROUP BY cluster, batch, seq";

/// `batch = <nanos>` for a `DateTime64(9, 'UTC')` column, the nanoseconds bound as `?`.
fn state_sql(conn: &Conn, filter: &str) -> String {
    STATE_SQL
        .replace("{claims}", &conn.table(CLAIMS_TABLE))
        .replace("{filter}", filter)
}

/// The latest claim of `batch`, if any.
async fn latest_claim(
    conn: &Conn,
    batch: &BatchContext,
) -> Result<Option<ClaimState>, OutputError> {
    let sql = format!(
        "{} ORDER BY seq DESC LIMIT 1",
        state_sql(conn, &format!("WHERE {BATCH_FILTER}"))
    );
    conn.run(
        format!("cannot read the claims of batch {}", batch.batch),
        batch_query(conn, &sql, batch).fetch_optional::<ClaimState>(),
    )
    .await
}

/// Insert one claim row; `token` makes it exclusive (see the module docs). `expiry`: the
/// claim's own expiry, recorded in every row.
#[allow(clippy::too_many_arguments)]
async fn put_claim(
    conn: &Conn,
    batch: &BatchContext,
    claimant: &Claimant,
    seq: u32,
    status: ClaimStatus,
    version: u64,
    expiry: Duration,
    token: String,
) -> Result<(), OutputError> {
    let row = ClaimRow {
        cluster: &batch.cluster,
        batch: batch.batch.nanos(),
        seq,
        attempt: &claimant.attempt,
        host: &claimant.host,
        pid: claimant.pid,
        started_at: claimant.started_ms,
        state: status.as_str(),
        version,
        expiry_ms: u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX),
    };
    let t = conn.timeouts;
    conn.run(
        format!(
            "cannot write to {} (batch {} of cluster {})",
            conn.table(CLAIMS_TABLE),
            batch.batch,
            batch.cluster
        ),
        async {
            let mut insert = conn
                .client
                .insert::<ClaimRow<'static>>(CLAIMS_TABLE)
                .await?
                .with_setting("insert_deduplicate", "1")
                .with_setting("insert_deduplication_token", token)
                .with_timeouts(Some(t.send), Some(t.response));
            insert.write(&row).await?;
            insert.end().await
        },
    )
    .await
}

fn claim_token(batch: &BatchContext, seq: u32) -> String {
    let hex: String = batch.cluster.bytes().map(|b| format!("{b:02x}")).collect();
    format!("rdbinsight-claim:{hex}:{}:{seq}", batch.batch.nanos())
}

/// The attempts that hold rows of claim `seq` of `batch`: exactly one when the claim worked
/// (deduplication kept one claim insert; later rows of the seq are its owner's heartbeats).
async fn claim_owners(
    conn: &Conn,
    batch: &BatchContext,
    seq: u32,
) -> Result<Vec<String>, OutputError> {
    let sql = format!(
        "SELECT DISTINCT attempt FROM {} WHERE {BATCH_FILTER} AND seq = ?",
        conn.table(CLAIMS_TABLE)
    );
    conn.run(
        format!("cannot read the claims of batch {}", batch.batch),
        batch_query(conn, &sql, batch)
            .bind(seq)
            .fetch_all::<String>(),
    )
    .await
}

/// How to remove a batch (for messages).
fn drop_hint(conn: &Conn, batch: &BatchContext) -> String {
    let on = on_cluster_flag(conn.on_cluster.as_deref());
    format!(
        "rdbinsight misc clickhouse-drop-batch --url '{}'{on} --cluster '{}' --batch {}",
        conn.url, batch.cluster, batch.batch
    )
}

/// A claimed batch: what finalize and abort need.
#[derive(Debug)]
pub struct Claim {
    pub batch: BatchContext,
    pub attempt: Attempt,
    /// What its claim rows name.
    claimant: Claimant,
    pub seq: u32,
    pub fence: Arc<Fence>,
    /// The claim's expiry (its attempt's `--ch-claim-expiry`), recorded in its rows.
    pub expiry: Duration,
    /// The deduplication token of the batch's completion marker: one per batch, renewed when
    /// the batch is dropped (see [`Claim::write_marker`]).
    pub marker_token: String,
    /// The versions of the claim's rows (shared with the heartbeat task).
    versions: Arc<Versions>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// Whether the batch's latest claim (the server's view) is still a given attempt's, running.
enum Ownership {
    Owned,
    /// Not any more: the latest claim, if there is one.
    Lost(Option<ClaimState>),
}

/// The one "do I still own it?": is claim `seq` of `batch` still `attempt`'s and running?
async fn ownership(
    conn: &Conn,
    batch: &BatchContext,
    seq: u32,
    attempt: AttemptId,
) -> Result<Ownership, OutputError> {
    let latest = latest_claim(conn, batch).await?;
    Ok(match latest {
        Some(l) if l.is_running_claim_of(seq, attempt) => Ownership::Owned,
        other => Ownership::Lost(other),
    })
}

impl Claim {
    /// Claim `batch` for a dump by `attempt`, or refuse with a message saying what to do: a
    /// batch being written by a live attempt, one that is complete, or one that has rows of an
    /// rdbinsight before attempts is refused (a claim taken before the last two are found is
    /// released).
    pub async fn for_dump(
        conn: &Conn,
        batch: &BatchContext,
        attempt: &Attempt,
        timing: ClaimTiming,
    ) -> Result<Claim, OutputError> {
        let mut claim = Self::take(conn, batch, attempt, timing).await?;
        if let Some(msg) = refusal(conn, batch).await? {
            if let Err(e) = claim.set_status(conn, ClaimStatus::Released).await {
                tracing::warn!("{e}");
            }
            return Err(OutputError::Refused(msg));
        }
        claim.start_heartbeat(conn.clone(), timing);
        Ok(claim)
    }

    /// Claim `batch` for `misc clickhouse-drop-batch`, which claims a batch in order to remove
    /// it: only a batch being written by a live attempt is refused.
    pub async fn for_drop(
        conn: &Conn,
        batch: &BatchContext,
        attempt: &Attempt,
        timing: ClaimTiming,
    ) -> Result<Claim, OutputError> {
        let mut claim = Self::take(conn, batch, attempt, timing).await?;
        claim.start_heartbeat(conn.clone(), timing);
        Ok(claim)
    }

    /// Insert the claim row (the next `seq` of the batch) and read back whose it is (see the
    /// module docs, 1); refuse while the latest claim is running. No heartbeat yet.
    async fn take(
        conn: &Conn,
        batch: &BatchContext,
        attempt: &Attempt,
        timing: ClaimTiming,
    ) -> Result<Claim, OutputError> {
        let what = format!("batch {} of cluster {}", batch.batch, batch.cluster);
        let latest = latest_claim(conn, batch).await?;
        if let Some(l) = &latest
            && l.status() == Some(ClaimStatus::Running)
        {
            let left = l
                .expiry(timing.expiry)
                .as_secs()
                .saturating_sub((l.age_ms.max(0) / 1000) as u64);
            return Err(OutputError::Refused(format!(
                "{what} is being written by another attempt ({}): wait for it to finish, or use \
                 another --batch-timestamp. If that process is gone, its claim expires {left} s \
                 from now (--ch-claim-expiry) and the next run removes its rows",
                l.who()
            )));
        }
        let seq = latest.as_ref().map_or(1, |l| l.seq.saturating_add(1));
        let claimant = Claimant::of(attempt);
        put_claim(
            conn,
            batch,
            &claimant,
            seq,
            ClaimStatus::Running,
            Versions::CLAIM,
            timing.expiry,
            claim_token(batch, seq),
        )
        .await?;
        let owners = claim_owners(conn, batch, seq).await?;
        if owners != [claimant.attempt.as_str()] {
            let other = latest_claim(conn, batch)
                .await
                .ok()
                .flatten()
                .filter(|l| l.seq == seq)
                .map(|l| format!(" ({})", l.who()))
                .unwrap_or_default();
            return Err(OutputError::Refused(format!(
                "another attempt{other} claimed {what} at the same moment; use another \
                 --batch-timestamp"
            )));
        }
        tracing::debug!("claimed {what} as attempt {} (claim {seq})", attempt.id);
        Ok(Claim {
            batch: batch.clone(),
            attempt: attempt.clone(),
            claimant,
            seq,
            fence: Arc::new(Fence::default()),
            expiry: timing.expiry,
            marker_token: marker_token(conn, batch).await?,
            versions: Arc::new(Versions::owner()),
            heartbeat: None,
        })
    }

    /// Start the heartbeat task: see the module docs (3).
    fn start_heartbeat(&mut self, conn: Conn, timing: ClaimTiming) {
        let batch = self.batch.clone();
        let attempt = self.attempt.id;
        let claimant = self.claimant.clone();
        let seq = self.seq;
        let fence = Arc::clone(&self.fence);
        let versions = Arc::clone(&self.versions);
        self.heartbeat = Some(tokio::spawn(async move {
            let mut last_ok = Instant::now();
            loop {
                tokio::time::sleep(timing.heartbeat()).await;
                let v = versions.heartbeat();
                let beat = put_claim(
                    &conn,
                    &batch,
                    &claimant,
                    seq,
                    ClaimStatus::Running,
                    v,
                    timing.expiry,
                    format!("rdbinsight-heartbeat:{attempt}:{v}"),
                )
                .await;
                let checked = match beat {
                    Ok(()) => ownership(&conn, &batch, seq, attempt).await,
                    Err(e) => Err(e),
                };
                match checked {
                    Ok(Ownership::Owned) => {
                        last_ok = Instant::now();
                    }
                    Ok(Ownership::Lost(l)) => {
                        let by = l
                            .map(|l| format!(" (now {})", l.describe()))
                            .unwrap_or_default();
                        fence.trip(format!(
                            "the claim on batch {} of cluster {} was taken over{by}: this \
                             attempt stopped (it was considered dead after --ch-claim-expiry \
                             without a heartbeat)",
                            batch.batch, batch.cluster
                        ));
                        return;
                    }
                    Err(e) => {
                        tracing::debug!("heartbeat failed: {e}");
                        if last_ok.elapsed() >= timing.fence() {
                            fence.trip(format!(
                                "could not refresh the claim on batch {} of cluster {} for {} s \
                                 (half of --ch-claim-expiry), so this attempt stopped before \
                                 another run could consider it dead: {e}",
                                batch.batch,
                                batch.cluster,
                                last_ok.elapsed().as_secs()
                            ));
                            return;
                        }
                    }
                }
            }
        }));
    }

    /// Stop heartbeating (before the claim's terminal row).
    pub async fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
            let _ = h.await;
        }
    }

    /// Write the claim's terminal status.
    pub async fn set_status(&self, conn: &Conn, status: ClaimStatus) -> Result<(), OutputError> {
        let v = self.versions.terminal();
        put_claim(
            conn,
            &self.batch,
            &self.claimant,
            self.seq,
            status,
            v,
            self.expiry,
            format!("rdbinsight-state:{}:{v}", self.claimant.attempt),
        )
        .await
    }

    /// Before the marker: the claim must still be this attempt's, running, and not fenced.
    pub async fn ensure_owned(&self, conn: &Conn) -> Result<(), OutputError> {
        self.fence.check()?;
        let latest = match ownership(conn, &self.batch, self.seq, self.attempt.id).await? {
            Ownership::Owned => return Ok(()),
            Ownership::Lost(latest) => latest,
        };
        Err(OutputError::Refused(format!(
            "the claim on batch {} of cluster {} is no longer this attempt's ({}); not marking it \
             complete",
            self.batch.batch,
            self.batch.cluster,
            latest
                .map(|l| format!("latest {}", l.describe()))
                .unwrap_or_else(|| "no claim found".into())
        )))
    }

    /// Write the completion marker of the claim's batch, naming its attempt, and return the
    /// attempts the batch's markers name afterwards (0: a marker written before attempts). The marker is an `INSERT ... SELECT` that
    /// stores a row only while the claim is still `running` (the server checks it, so a process
    /// frozen before this request cannot complete a batch whose claim was reclaimed), with the
    /// batch's deduplication token (so only the first marker of a batch is stored): this
    /// attempt won iff the result is exactly its id.
    pub async fn write_marker(&self, conn: &Conn) -> Result<Vec<u64>, OutputError> {
        let batch = &self.batch;
        let sql = format!(
            "INSERT INTO {markers} (cluster, batch, {ATTEMPT_COLUMN}) \
             SELECT ?, fromUnixTimestamp64Nano(toInt64(?), 'UTC'), ? \
             WHERE (SELECT toString(argMax(state, version)) FROM {claims} \
             WHERE {BATCH_FILTER} AND seq = ? AND attempt = ?) = ?",
            markers = conn.table(BATCHES_TABLE),
            claims = conn.table(CLAIMS_TABLE),
        );
        let attempt = self.attempt.id;
        conn.run(
            format!(
                "cannot mark batch {} of cluster {} complete in {}",
                batch.batch,
                batch.cluster,
                conn.table(BATCHES_TABLE)
            ),
            batch_query(conn, &sql, batch)
                .bind(attempt.get())
                .bind(batch.cluster.as_str())
                .bind(batch.batch.nanos())
                .bind(self.seq)
                .bind(self.claimant.attempt.as_str())
                .bind(ClaimStatus::Running.as_str())
                .with_setting("insert_deduplicate", "1")
                .with_setting("insert_deduplication_token", self.marker_token.as_str())
                .with_setting("query_id", marker_query_id(attempt))
                .execute(),
        )
        .await?;
        marker_attempts(conn, batch).await
    }
}

/// Why a dump may not write `batch` although it claimed it: it is complete, or has rows that
/// name no attempt; `None` when it may.
async fn refusal(conn: &Conn, batch: &BatchContext) -> Result<Option<String>, OutputError> {
    let what = format!("batch {} of cluster {}", batch.batch, batch.cluster);
    if count(conn, "completion markers", BATCHES_TABLE, batch, "").await? > 0 {
        return Ok(Some(format!(
            "{what} is already complete in {}; a batch is written once. Use another \
             --batch-timestamp (the default is the current time), or remove the batch first: {}",
            conn.table(BATCHES_TABLE),
            drop_hint(conn, batch)
        )));
    }
    // Rows of other attempts are invisible (no marker names them) and harmless; rows that name
    // no attempt were written before attempts were recorded.
    let legacy = format!(" AND {ATTEMPT_COLUMN} = 0");
    let rows = count(conn, "rows", RECORDS_TABLE, batch, &legacy).await?;
    Ok((rows > 0).then(|| {
        format!(
            "{what} already has {rows} rows in {} but no completion marker (left by an older \
             rdbinsight, which did not tag rows with their attempt); remove them first: {}, or \
             use another --batch-timestamp",
            conn.table(RECORDS_TABLE),
            drop_hint(conn, batch)
        )
    }))
}

/// The `query_id` of an attempt's marker insert.
fn marker_query_id(attempt: AttemptId) -> String {
    format!("{attempt}-marker")
}

/// The deduplication token of `batch`'s completion marker: one per batch, so that of two
/// attempts that reach the marker, ClickHouse stores only the first one's. A batch removed by
/// `drop-batch` (a `dropped` claim) gets a new one, so that it can be written again.
async fn marker_token(conn: &Conn, batch: &BatchContext) -> Result<String, OutputError> {
    let sql = format!(
        "SELECT toUInt32(max(seq)) FROM ({}) WHERE state = ?",
        state_sql(conn, &format!("WHERE {BATCH_FILTER}"))
    );
    let generation = conn
        .run(
            format!("cannot read the claims of batch {}", batch.batch),
            batch_query(conn, &sql, batch)
                .bind(ClaimStatus::Dropped.as_str())
                .fetch_one::<u32>(),
        )
        .await?;
    let hex: String = batch.cluster.bytes().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "rdbinsight-marker:{hex}:{}:{generation}",
        batch.batch.nanos()
    ))
}

/// Remove what dead attempts left (module docs, 6). A claim is dead when its last heartbeat
/// is older than its own expiry (the one its attempt recorded; `timing`'s for claims that did
/// not record one). Problems are logged; the run goes on (a batch this run needs is still
/// protected by its claim check).
pub async fn clean_up_dead_attempts(conn: &Conn, timing: ClaimTiming) -> Result<(), OutputError> {
    let sql = format!(
        "SELECT * FROM ({}) WHERE state = ? \
         AND age_ms > if(expiry_ms > 0, toInt64(expiry_ms), toInt64(?)) \
         ORDER BY cluster, batch_ns, seq",
        state_sql(conn, "")
    );
    let dead = conn
        .run(
            format!("cannot read {}", conn.table(CLAIMS_TABLE)),
            conn.admin
                .query(&sql)
                .bind(ClaimStatus::Running.as_str())
                .bind(i64::try_from(timing.expiry.as_millis()).unwrap_or(i64::MAX))
                .fetch_all::<ClaimState>(),
        )
        .await?;
    for d in dead {
        let batch = BatchContext {
            cluster: d.cluster.clone(),
            batch: crate::record::BatchTs::from_nanos(d.batch_ns),
        };
        let claimant = Claimant::stored(&d);
        let versions = Versions::cleaner();
        let expiry = d.expiry(timing.expiry);
        let set_status = |status: ClaimStatus| {
            let v = versions.terminal();
            put_claim(
                conn,
                &batch,
                &claimant,
                d.seq,
                status,
                v,
                expiry,
                format!("rdbinsight-state:{}:{v}", claimant.attempt),
            )
        };
        let what = format!("batch {} of cluster {}", batch.batch, batch.cluster);
        let result = async {
            // First the terminal state: from now on the server refuses the attempt's marker
            // (write_marker); then wait for a marker insert it may have sent before.
            set_status(ClaimStatus::Reclaimed).await?;
            // A claim of an rdbinsight before 64-bit attempt ids: its rows read attempt 0
            // (rows of an older rdbinsight, which only drop-batch removes; the batch is refused
            // until then).
            let Some(id) = AttemptId::parse_hex(&d.attempt) else {
                return Ok(false);
            };
            batch_rows::wait_queries_done(conn, &marker_query_id(id)).await?;
            if delete_attempt_rows(conn, &batch, id).await? {
                return Ok(true);
            }
            // It completed but died before recording so.
            set_status(ClaimStatus::Completed).await?;
            Ok::<_, OutputError>(false)
        }
        .await;
        match result {
            Ok(true) => tracing::warn!(
                "removed the rows of a dead attempt on {what} ({}): it stopped heartbeating \
                 for longer than its --ch-claim-expiry ({} s) without completing",
                d.who(),
                expiry.as_secs()
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot clean up after a dead attempt on {what}: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_query_id_is_the_attempt_id_and_marker() {
        let small = AttemptId::parse_hex("00000000000000ff").expect("an id");
        assert_eq!(marker_query_id(small), "00000000000000ff-marker");
    }

    #[test]
    fn statuses_round_trip_through_their_stored_text() {
        for s in ClaimStatus::ALL {
            assert_eq!(ClaimStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClaimStatus::Running.as_str(), "running");
        assert_eq!(ClaimStatus::parse("paused"), None);
    }

    #[test]
    fn terminal_rows_outrank_heartbeats_and_a_cleaner_outranks_the_owner() {
        let owner = Versions::owner();
        let first = owner.heartbeat();
        assert_eq!(first, Versions::CLAIM + 1);
        assert!(owner.heartbeat() > first);
        let owner_end = owner.terminal();
        assert!(owner_end >= Versions::TERMINAL);
        let cleaner = Versions::cleaner();
        let cleaner_end = cleaner.terminal();
        assert_eq!(cleaner_end, Versions::CLEANER);
        assert!(cleaner_end > owner_end);
        assert!(cleaner.terminal() > cleaner_end);
    }
}
