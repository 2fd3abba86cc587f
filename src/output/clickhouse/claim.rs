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
//! 1. **Claim.** Each run is an attempt with a random id. It inserts a claim row
//!    `(cluster, batch, seq, attempt, host, pid, started_at, state = running, expiry_ms)` into
//!    `import_batch_claims`, where `seq` is one more than the batch's latest claim, with the
//!    insert deduplication token `claim:<cluster>:<batch>:<seq>`. ClickHouse keeps only the
//!    first insert of a token (`non_replicated_deduplication_window`; through Keeper for
//!    replicated tables), at commit time, atomically: of two attempts racing for the same
//!    `seq`, exactly one row is stored. Each reads back the claim `seq` and proceeds only if
//!    the stored row is its own; no clock is involved.
//! 2. **Refusal, up front.** The owner then checks the batch: a completion marker, or rows
//!    that name no attempt (left by an rdbinsight before attempts), means the batch is not
//!    this attempt's to write; it releases its claim and fails in `prepare_batch`, before any
//!    row, saying what to do. A latest claim that is still `running` (a live attempt, see 3) is
//!    refused before claiming. Rows of other attempts are ignored: nothing shows them.
//! 3. **Heartbeat.** While it runs, the owner adds a row to its claim every
//!    `expiry / 12` (10 s by default; the server's `now64()` is the heartbeat time). If it
//!    cannot for `expiry / 2`, or finds its claim taken over, it stops itself ([`Fence`]):
//!    every writer fails at its next chunk, before sending it. The claim records `expiry`
//!    (`--ch-claim-expiry`): every other run judges the claim by it, not by its own.
//! 4. **Complete.** `finalize_batch` checks the claim is still its own and live, then writes
//!    the marker naming its attempt ([`write_marker`]): an `INSERT ... SELECT` that the server
//!    turns into a row only while the claim is still `running`, with one deduplication token
//!    per batch, so the **first** marker of a batch is the only one stored. It reads the
//!    markers back: if they name another attempt (or none: the claim was reclaimed), it lost,
//!    says so and fails; its rows stay invisible and its abort removes them. The winner marks
//!    its claim `completed` and, if earlier attempts claimed the batch, deletes their rows.
//! 5. **Abort.** A failed or interrupted attempt waits until the server has finished its
//!    queries (their `query_id`s start with the attempt id), then deletes its own rows only
//!    (`attempt = <id>`, lightweight `DELETE`, synchronous) unless a marker names it, and
//!    marks the claim `aborted`. If that fails, its rows stay (invisible; see 6 and the TTL).
//! 6. **Dead attempts.** A killed attempt (SIGKILL, power loss) stops heartbeating. Every run
//!    starts by looking for `running` claims (of any batch) whose last heartbeat is older than
//!    their own expiry: it marks the claim `reclaimed` first (from then on the server refuses
//!    that attempt's marker), waits until no marker insert of that attempt runs, then deletes
//!    that attempt's rows, unless a marker names it (then the claim is marked `completed`).
//!
//! Every `DELETE` a run issues is limited to one attempt ([`delete_attempt_rows`], which
//! never deletes the rows of an attempt a marker names) or, for the winner's housekeeping, to
//! the attempts other than the marker's; only `misc clickhouse-drop-batch`, an operator's
//! decision refused while a live claim exists, removes a batch's marker and all its rows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::conn::Conn;
use super::schema::{
    ATTEMPT_COLUMN, BATCH_FILTER, BATCHES_TABLE, CLAIMS_TABLE, RECORDS_TABLE, SUMMARIES_TABLE,
};
use crate::output::{BatchContext, OutputError};

/// Default `--ch-claim-expiry`.
pub const DEFAULT_CLAIM_EXPIRY: Duration = Duration::from_secs(120);
/// Versions of terminal claim rows start here, above every heartbeat.
const TERMINAL: u64 = 1 << 62;
/// A cleaner's terminal row outranks its owner's.
const CLEANER: u64 = TERMINAL + (1 << 40);
/// How long `abort_batch` waits for the server to finish the attempt's INSERTs.
const INSERTS_DRAIN_WAIT: Duration = Duration::from_secs(30);

/// States of a claim (the `state` column).
pub mod state {
    pub const RUNNING: &str = "running";
    pub const COMPLETED: &str = "completed";
    pub const ABORTED: &str = "aborted";
    pub const RECLAIMED: &str = "reclaimed";
    pub const RELEASED: &str = "released";
    pub const DROPPED: &str = "dropped";
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
            return Err(OutputError::Other(reason));
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
    /// 32 hex digits, random.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// Unix milliseconds (this host's clock; informational).
    pub started_ms: i64,
}

impl Attempt {
    pub fn new() -> Self {
        Attempt {
            id: random_id(),
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

/// 128 random bits as hex, from the standard library's randomly seeded hasher (no RNG crate
/// needed for an id that only has to be unique).
fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for salt in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        h.write_i64(crate::record::BatchTs::now().nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
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
    fn is_running_claim_of(&self, seq: u32, attempt: &str) -> bool {
        self.seq == seq && self.attempt == attempt && self.state == state::RUNNING
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
    attempt: &Attempt,
    seq: u32,
    state: &str,
    version: u64,
    expiry: Duration,
    token: String,
) -> Result<(), OutputError> {
    let row = ClaimRow {
        cluster: &batch.cluster,
        batch: batch.batch.nanos(),
        seq,
        attempt: &attempt.id,
        host: &attempt.host,
        pid: attempt.pid,
        started_at: attempt.started_ms,
        state,
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

/// An admin query about `batch`: its cluster and timestamp bound to the first two `?` of
/// `sql` (which filters with `BATCH_FILTER`).
fn batch_query(conn: &Conn, sql: &str, batch: &BatchContext) -> clickhouse::query::Query {
    conn.admin
        .query(sql)
        .bind(batch.cluster.as_str())
        .bind(batch.batch.nanos())
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

/// Rows of `table` (its `what`, for the error) in `batch`, `extra` (an SQL condition without
/// binds, or empty) applied.
async fn count(
    conn: &Conn,
    what: &str,
    table: &str,
    batch: &BatchContext,
    extra: &str,
) -> Result<u64, OutputError> {
    let sql = format!(
        "SELECT count() FROM {} WHERE {BATCH_FILTER}{extra}",
        conn.table(table)
    );
    conn.run(
        format!("cannot count the {what} of batch {}", batch.batch),
        batch_query(conn, &sql, batch).fetch_one::<u64>(),
    )
    .await
}

/// How to remove a batch (for messages).
fn drop_hint(conn: &Conn, batch: &BatchContext) -> String {
    let on = conn
        .on_cluster
        .as_ref()
        .map(|c| format!(" --on-cluster {c}"))
        .unwrap_or_default();
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
    pub seq: u32,
    pub fence: Arc<Fence>,
    /// The claim's expiry (its attempt's `--ch-claim-expiry`), recorded in its rows.
    pub expiry: Duration,
    /// The deduplication token of the batch's completion marker: one per batch, renewed when
    /// the batch is dropped (see [`write_marker`]).
    pub marker_token: String,
    /// The next version of the claim's rows (shared with the heartbeat task).
    version: Arc<AtomicU64>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// Claim `batch` for `attempt`, or refuse with a message saying what to do. `fresh`: refuse a
/// batch that is complete or has rows (a dump); `false` for `drop-batch`, which claims a batch
/// in order to remove it.
pub async fn claim(
    conn: &Conn,
    batch: &BatchContext,
    attempt: &Attempt,
    timing: ClaimTiming,
    fresh: bool,
) -> Result<Claim, OutputError> {
    let what = format!("batch {} of cluster {}", batch.batch, batch.cluster);
    let latest = latest_claim(conn, batch).await?;
    if let Some(l) = &latest
        && l.state == state::RUNNING
    {
        let left = l
            .expiry(timing.expiry)
            .as_secs()
            .saturating_sub((l.age_ms.max(0) / 1000) as u64);
        return Err(OutputError::Other(format!(
            "{what} is being written by another attempt ({}): wait for it to finish, or use \
             another --batch-timestamp. If that process is gone, its claim expires {left} s from \
             now (--ch-claim-expiry) and the next run removes its rows",
            l.who()
        )));
    }
    let seq = latest.as_ref().map_or(1, |l| l.seq.saturating_add(1));
    put_claim(
        conn,
        batch,
        attempt,
        seq,
        state::RUNNING,
        1,
        timing.expiry,
        claim_token(batch, seq),
    )
    .await?;
    let owners = claim_owners(conn, batch, seq).await?;
    if owners != [attempt.id.as_str()] {
        let other = latest_claim(conn, batch)
            .await
            .ok()
            .flatten()
            .filter(|l| l.seq == seq)
            .map(|l| format!(" ({})", l.who()))
            .unwrap_or_default();
        return Err(OutputError::Other(format!(
            "another attempt{other} claimed {what} at the same moment; use another \
             --batch-timestamp"
        )));
    }
    let mut claim = Claim {
        batch: batch.clone(),
        attempt: attempt.clone(),
        seq,
        fence: Arc::new(Fence::default()),
        expiry: timing.expiry,
        marker_token: marker_token(conn, batch).await?,
        version: Arc::new(AtomicU64::new(2)),
        heartbeat: None,
    };
    if fresh {
        let refusal = if count(conn, "completion markers", BATCHES_TABLE, batch, "").await? > 0 {
            Some(format!(
                "{what} is already complete in {}; a batch is written once. Use another \
                 --batch-timestamp (the default is the current time), or remove the batch \
                 first: {}",
                conn.table(BATCHES_TABLE),
                drop_hint(conn, batch)
            ))
        } else {
            // Rows of other attempts are invisible (no marker names them) and harmless; rows
            // that name no attempt were written before attempts were recorded.
            let legacy = format!(" AND {ATTEMPT_COLUMN} = ''");
            let rows = count(conn, "rows", RECORDS_TABLE, batch, &legacy).await?;
            (rows > 0).then(|| {
                format!(
                    "{what} already has {rows} rows in {} but no completion marker (left by an \
                     older rdbinsight, which did not tag rows with their attempt); remove them \
                     first: {}, or use another --batch-timestamp",
                    conn.table(RECORDS_TABLE),
                    drop_hint(conn, batch)
                )
            })
        };
        if let Some(msg) = refusal {
            if let Err(e) = set_state(conn, &claim, state::RELEASED).await {
                tracing::warn!("{e}");
            }
            return Err(OutputError::Other(msg));
        }
    }
    claim.heartbeat = Some(start_heartbeat(conn.clone(), &claim, timing));
    tracing::debug!("claimed {what} as attempt {} (claim {seq})", attempt.id);
    Ok(claim)
}

/// The heartbeat task: see the module docs (3).
fn start_heartbeat(conn: Conn, claim: &Claim, timing: ClaimTiming) -> tokio::task::JoinHandle<()> {
    let batch = claim.batch.clone();
    let attempt = claim.attempt.clone();
    let seq = claim.seq;
    let fence = Arc::clone(&claim.fence);
    let version = Arc::clone(&claim.version);
    tokio::spawn(async move {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(timing.heartbeat()).await;
            let v = version.fetch_add(1, Ordering::Relaxed);
            let beat = put_claim(
                &conn,
                &batch,
                &attempt,
                seq,
                state::RUNNING,
                v,
                timing.expiry,
                format!("rdbinsight-heartbeat:{}:{v}", attempt.id),
            )
            .await;
            let checked = match beat {
                Ok(()) => latest_claim(&conn, &batch).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(Some(l)) if l.is_running_claim_of(seq, &attempt.id) => {
                    last_ok = Instant::now();
                }
                Ok(l) => {
                    let by = l
                        .map(|l| format!(" (now {})", l.describe()))
                        .unwrap_or_default();
                    fence.trip(format!(
                        "the claim on batch {} of cluster {} was taken over{by}: this attempt \
                         stopped (it was considered dead after --ch-claim-expiry without a \
                         heartbeat)",
                        batch.batch, batch.cluster
                    ));
                    return;
                }
                Err(e) => {
                    tracing::debug!("heartbeat failed: {e}");
                    if last_ok.elapsed() >= timing.fence() {
                        fence.trip(format!(
                            "could not refresh the claim on batch {} of cluster {} for {} s \
                             (half of --ch-claim-expiry), so this attempt stopped before another \
                             run could consider it dead: {e}",
                            batch.batch,
                            batch.cluster,
                            last_ok.elapsed().as_secs()
                        ));
                        return;
                    }
                }
            }
        }
    })
}

impl Claim {
    /// Stop heartbeating (before the claim's terminal row).
    pub async fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
            let _ = h.await;
        }
    }
}

/// Write the claim's terminal state.
pub async fn set_state(conn: &Conn, claim: &Claim, new_state: &str) -> Result<(), OutputError> {
    let v = TERMINAL + claim.version.fetch_add(1, Ordering::Relaxed);
    put_claim(
        conn,
        &claim.batch,
        &claim.attempt,
        claim.seq,
        new_state,
        v,
        claim.expiry,
        format!("rdbinsight-state:{}:{v}", claim.attempt.id),
    )
    .await
}

/// The batch's latest claim (the server's view), if it is still this attempt's and running.
async fn owned(conn: &Conn, claim: &Claim) -> Result<(bool, Option<ClaimState>), OutputError> {
    let latest = latest_claim(conn, &claim.batch).await?;
    let owned = latest
        .as_ref()
        .is_some_and(|l| l.is_running_claim_of(claim.seq, &claim.attempt.id));
    Ok((owned, latest))
}

/// Before the marker: the claim must still be this attempt's, running, and not fenced.
pub async fn check_still_owner(conn: &Conn, claim: &Claim) -> Result<(), OutputError> {
    claim.fence.check()?;
    let (owned, latest) = owned(conn, claim).await?;
    if owned {
        return Ok(());
    }
    Err(OutputError::Other(format!(
        "the claim on batch {} of cluster {} is no longer this attempt's ({}); not marking it \
         complete",
        claim.batch.batch,
        claim.batch.cluster,
        latest
            .map(|l| format!("latest {}", l.describe()))
            .unwrap_or_else(|| "no claim found".into())
    )))
}

/// Wait (bounded) until the server runs no INSERT of this attempt any more, so that a delete
/// cannot miss a part committed after it.
pub async fn wait_inserts_done(conn: &Conn, attempt: &Attempt) -> Result<(), OutputError> {
    wait_queries_done(conn, &attempt.id).await
}

/// The `query_id` of an attempt's marker insert.
fn marker_query_id(attempt: &str) -> String {
    format!("{attempt}-marker")
}

/// Wait (bounded) until the server runs no query whose id starts with `prefix`.
async fn wait_queries_done(conn: &Conn, prefix: &str) -> Result<(), OutputError> {
    let sql = match &conn.on_cluster {
        None => "SELECT count() FROM system.processes WHERE startsWith(query_id, ?)".to_string(),
        Some(c) => format!(
            "SELECT count() FROM clusterAllReplicas({}, system.processes) \
             WHERE startsWith(initial_query_id, ?)",
            super::schema::quote_str(c)
        ),
    };
    let started = Instant::now();
    loop {
        let running = conn
            .run(
                "cannot list the running queries",
                conn.admin.query(&sql).bind(prefix).fetch_one::<u64>(),
            )
            .await?;
        if running == 0 {
            return Ok(());
        }
        if started.elapsed() >= INSERTS_DRAIN_WAIT {
            return Err(OutputError::Other(format!(
                "{running} INSERT(s) of this attempt still running on the server after {} s",
                INSERTS_DRAIN_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
                .bind(state::DROPPED)
                .fetch_one::<u32>(),
        )
        .await?;
    let hex: String = batch.cluster.bytes().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "rdbinsight-marker:{hex}:{}:{generation}",
        batch.batch.nanos()
    ))
}

/// The attempts the completion markers of `batch` name (one for a completed batch, `""` for
/// one completed before attempts were recorded; none for an incomplete one).
pub async fn marker_attempts(
    conn: &Conn,
    batch: &BatchContext,
) -> Result<Vec<String>, OutputError> {
    let sql = format!(
        "SELECT DISTINCT {ATTEMPT_COLUMN} FROM {} WHERE {BATCH_FILTER} ORDER BY 1",
        conn.table(BATCHES_TABLE)
    );
    conn.run(
        format!(
            "cannot read the completion marker of batch {} of cluster {}",
            batch.batch, batch.cluster
        ),
        batch_query(conn, &sql, batch).fetch_all::<String>(),
    )
    .await
}

/// Write the completion marker of `claim`'s batch, naming its attempt, and return the attempts
/// the batch's markers name afterwards. The marker is an `INSERT ... SELECT` that stores a row
/// only while the claim is still `running` (the server checks it, so a process frozen before
/// this request cannot complete a batch whose claim was reclaimed), with the batch's
/// deduplication token (so only the first marker of a batch is stored): this attempt won iff
/// the result is exactly its id.
pub async fn write_marker(conn: &Conn, claim: &Claim) -> Result<Vec<String>, OutputError> {
    let batch = &claim.batch;
    let sql = format!(
        "INSERT INTO {markers} (cluster, batch, {ATTEMPT_COLUMN}) \
         SELECT ?, fromUnixTimestamp64Nano(toInt64(?), 'UTC'), ? \
         WHERE (SELECT toString(argMax(state, version)) FROM {claims} \
         WHERE {BATCH_FILTER} AND seq = ? AND attempt = ?) = ?",
        markers = conn.table(BATCHES_TABLE),
        claims = conn.table(CLAIMS_TABLE),
    );
    let attempt = claim.attempt.id.as_str();
    conn.run(
        format!(
            "cannot mark batch {} of cluster {} complete in {}",
            batch.batch,
            batch.cluster,
            conn.table(BATCHES_TABLE)
        ),
        batch_query(conn, &sql, batch)
            .bind(attempt)
            .bind(batch.cluster.as_str())
            .bind(batch.batch.nanos())
            .bind(claim.seq)
            .bind(attempt)
            .bind(state::RUNNING)
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", claim.marker_token.as_str())
            .with_setting("query_id", marker_query_id(attempt))
            .execute(),
    )
    .await?;
    marker_attempts(conn, batch).await
}

/// Delete every row of `batch` (synchronously): `drop-batch` only.
pub async fn delete_rows(conn: &Conn, batch: &BatchContext) -> Result<(), OutputError> {
    let target = conn.rows_delete_target();
    delete_where(conn, &target, "rows", batch, "", &[]).await
}

/// Delete the rows attempt `attempt` wrote into `batch`, unless a completion marker names it
/// (then they are the batch's: nothing is deleted, `Ok(false)`). The attempt must be unable
/// to write a marker any more: it is this process's own (after its INSERTs ended), or its
/// claim was marked terminal and its marker insert waited for (see the module docs).
pub async fn delete_attempt_rows(
    conn: &Conn,
    batch: &BatchContext,
    attempt: &str,
) -> Result<bool, OutputError> {
    if marker_attempts(conn, batch)
        .await?
        .iter()
        .any(|a| a == attempt)
    {
        return Ok(false);
    }
    let target = conn.rows_delete_target();
    let extra = format!(" AND {ATTEMPT_COLUMN} = ?");
    delete_where(conn, &target, "rows", batch, &extra, &[attempt]).await?;
    Ok(true)
}

/// Housekeeping by the winner of `batch`: delete the rows of every other attempt (dead or
/// fenced ones; none of them can ever be shown, the first marker having won).
pub async fn delete_losing_rows(
    conn: &Conn,
    batch: &BatchContext,
    winner: &str,
) -> Result<(), OutputError> {
    let target = conn.rows_delete_target();
    let extra = format!(" AND {ATTEMPT_COLUMN} != ?");
    delete_where(
        conn,
        &target,
        "other attempts' rows",
        batch,
        &extra,
        &[winner],
    )
    .await
}

/// Delete the completion marker of `batch`.
pub async fn delete_marker(conn: &Conn, batch: &BatchContext) -> Result<(), OutputError> {
    let target = conn.table(BATCHES_TABLE);
    delete_where(conn, &target, "completion marker", batch, "", &[]).await
}

/// Delete the instance summaries of `batch`.
pub async fn delete_summaries(conn: &Conn, batch: &BatchContext) -> Result<(), OutputError> {
    let target = conn.table(SUMMARIES_TABLE);
    delete_where(conn, &target, "instance summaries", batch, "", &[]).await
}

/// Delete what `table` holds of `batch` (its `what`, for the error), `extra` applied (its `?`
/// bound to `binds`), synchronously.
async fn delete_where(
    conn: &Conn,
    table: &str,
    what: &str,
    batch: &BatchContext,
    extra: &str,
    binds: &[&str],
) -> Result<(), OutputError> {
    let sql = format!("DELETE FROM {table} WHERE {BATCH_FILTER}{extra}");
    let mut query = batch_query(conn, &sql, batch);
    for b in binds {
        query = query.bind(*b);
    }
    conn.run(
        format!(
            "cannot delete the {what} of batch {} of cluster {}",
            batch.batch, batch.cluster
        ),
        query.with_setting("mutations_sync", "2").execute(),
    )
    .await
}

/// Rows (of every attempt) and completion markers of `batch`.
pub async fn batch_counts(conn: &Conn, batch: &BatchContext) -> Result<(u64, u64), OutputError> {
    Ok((
        count(conn, "rows", RECORDS_TABLE, batch, "").await?,
        count(conn, "completion markers", BATCHES_TABLE, batch, "").await?,
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
                .bind(state::RUNNING)
                .bind(i64::try_from(timing.expiry.as_millis()).unwrap_or(i64::MAX))
                .fetch_all::<ClaimState>(),
        )
        .await?;
    for d in dead {
        let batch = BatchContext {
            cluster: d.cluster.clone(),
            batch: crate::record::BatchTs::from_nanos(d.batch_ns),
        };
        let attempt = Attempt {
            id: d.attempt.clone(),
            host: d.host.clone(),
            pid: d.pid,
            started_ms: d.started_ms,
        };
        let claim = Claim {
            batch: batch.clone(),
            attempt,
            seq: d.seq,
            fence: Arc::new(Fence::default()),
            expiry: d.expiry(timing.expiry),
            marker_token: String::new(),
            version: Arc::new(AtomicU64::new(CLEANER - TERMINAL)),
            heartbeat: None,
        };
        let what = format!("batch {} of cluster {}", batch.batch, batch.cluster);
        let result = async {
            // First the terminal state: from now on the server refuses the attempt's marker
            // (write_marker); then wait for a marker insert it may have sent before.
            set_state(conn, &claim, state::RECLAIMED).await?;
            wait_queries_done(conn, &marker_query_id(&d.attempt)).await?;
            if delete_attempt_rows(conn, &batch, &d.attempt).await? {
                return Ok(true);
            }
            // It completed but died before recording so.
            set_state(conn, &claim, state::COMPLETED).await?;
            Ok::<_, OutputError>(false)
        }
        .await;
        match result {
            Ok(true) => tracing::warn!(
                "removed the rows of a dead attempt on {what} ({}): it stopped heartbeating \
                 for longer than its --ch-claim-expiry ({} s) without completing",
                d.who(),
                claim.expiry.as_secs()
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot clean up after a dead attempt on {what}: {e}"),
        }
    }
    Ok(())
}
