//! What a batch holds in ClickHouse, by attempt: row and marker counts, the deletes (always
//! synchronous, each limited as [`super::claim`]'s module docs say), and the wait until the
//! server runs no query of an attempt any more (so that a delete cannot miss a part committed
//! after it). The claim protocol decides when each is safe; this file only does it.

use std::time::{Duration, Instant};

use super::attempt::AttemptId;
use super::conn::Conn;
use super::schema::{ATTEMPT_COLUMN, BATCH_FILTER, BATCHES_TABLE, RECORDS_TABLE, SUMMARIES_TABLE};
use crate::output::{BatchContext, OutputError, Timeout};

/// How long a cleanup waits for the server to finish an attempt's queries.
const INSERTS_DRAIN_WAIT: Duration = Duration::from_secs(30);

/// An admin query about `batch`: its cluster and timestamp bound to the first two `?` of
/// `sql` (which filters with `BATCH_FILTER`).
pub fn batch_query(conn: &Conn, sql: &str, batch: &BatchContext) -> clickhouse::query::Query {
    conn.admin
        .query(sql)
        .bind(batch.cluster.as_str())
        .bind(batch.batch.nanos())
}

/// Rows of `table` (its `what`, for the error) in `batch`, `extra` (an SQL condition without
/// binds, or empty) applied.
pub async fn count(
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

/// The attempts the completion markers of `batch` name (one for a completed batch, 0 for one
/// completed before attempts were recorded; none for an incomplete one).
pub async fn marker_attempts(conn: &Conn, batch: &BatchContext) -> Result<Vec<u64>, OutputError> {
    let sql = format!(
        "SELECT DISTINCT {ATTEMPT_COLUMN} FROM {} WHERE {BATCH_FILTER} ORDER BY 1",
        conn.table(BATCHES_TABLE)
    );
    conn.run(
        format!(
            "cannot read the completion marker of batch {} of cluster {}",
            batch.batch, batch.cluster
        ),
        batch_query(conn, &sql, batch).fetch_all::<u64>(),
    )
    .await
}

/// Delete every row of `batch` (synchronously): `drop-batch` only.
pub async fn delete_rows(conn: &Conn, batch: &BatchContext) -> Result<(), OutputError> {
    let target = conn.rows_delete_target();
    delete_where(conn, &target, "rows", batch, "", &[]).await
}

/// Delete the rows attempt `attempt` wrote into `batch`, unless a completion marker names it
/// (then they are the batch's: nothing is deleted, `Ok(false)`). Never rows of attempt 0
/// (written before attempts were recorded; an [`AttemptId`] is not 0). The attempt must be unable
/// to write a marker any more: it is this process's own (after its INSERTs ended), or its
/// claim was marked terminal and its marker insert waited for (see the module docs).
pub async fn delete_attempt_rows(
    conn: &Conn,
    batch: &BatchContext,
    attempt: AttemptId,
) -> Result<bool, OutputError> {
    if marker_attempts(conn, batch).await?.contains(&attempt.get()) {
        return Ok(false);
    }
    let target = conn.rows_delete_target();
    let extra = format!(" AND {ATTEMPT_COLUMN} = ?");
    delete_where(conn, &target, "rows", batch, &extra, &[attempt.get()]).await?;
    Ok(true)
}

/// Housekeeping by the winner of `batch`: delete the rows of every other attempt (dead or
/// fenced ones; none of them can ever be shown, the first marker having won). Rows of
/// attempt 0 (an rdbinsight before attempts) are left to `drop-batch`.
pub async fn delete_losing_rows(
    conn: &Conn,
    batch: &BatchContext,
    winner: AttemptId,
) -> Result<(), OutputError> {
    let target = conn.rows_delete_target();
    let extra = format!(" AND {ATTEMPT_COLUMN} NOT IN (?, 0)");
    delete_where(
        conn,
        &target,
        "other attempts' rows",
        batch,
        &extra,
        &[winner.get()],
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
    binds: &[u64],
) -> Result<(), OutputError> {
    let sql = format!("DELETE FROM {table} WHERE {BATCH_FILTER}{extra}");
    let mut query = batch_query(conn, &sql, batch);
    for b in binds {
        query = query.bind(b);
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

/// Wait (bounded) until the server runs no INSERT of this attempt any more, so that a delete
/// cannot miss a part committed after it.
pub async fn wait_inserts_done(conn: &Conn, attempt: AttemptId) -> Result<(), OutputError> {
    wait_queries_done(conn, &attempt.to_string()).await
}

/// Wait (bounded) until the server runs no query whose id starts with `prefix`.
pub async fn wait_queries_done(conn: &Conn, prefix: &str) -> Result<(), OutputError> {
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
            return Err(OutputError::timeout(
                "",
                Timeout::InsertsDrain {
                    running,
                    after: INSERTS_DRAIN_WAIT,
                },
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
