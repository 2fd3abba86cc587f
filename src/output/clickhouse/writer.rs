//! [`ClickHouseOutput`] (batch level) and [`ClickHouseChunkWriter`] (one per instance).
//!
//! * `prepare_batch` checks, in the URL's database, that both tables and the view exist
//!   (`system.tables`); with `--auto-create-tables` it creates what is missing (and the
//!   database), otherwise a missing object is an error pointing at
//!   `rdbinsight misc clickhouse-schema`.
//! * Each instance writer holds ONE long-lived [`clickhouse::inserter::Inserter`] into
//!   `redis_records_raw`, created in `prepare_instance` with
//!   `client.inserter(RECORDS_TABLE).with_max_rows(`[`MAX_ROWS_PER_INSERT`]`)`. `write_record`
//!   maps the record to a row, `write`s it and `commit`s; `finalize_instance` calls `end()`.
//!   Rows are serialized as RowBinaryWithNamesAndTypes, validated against the table's columns
//!   (the Inserter starts each INSERT with `Client::insert`, which fetches the columns and
//!   checks their names; `prepare_instance` runs that once up front, so a missing column fails
//!   there; a column of another type fails at the first record's serialization, which aborts
//!   the INSERT before anything is sent).
//!
//!   How the Inserter behaves (clickhouse 0.15.3), and why two more limits are set:
//!   - `write()` only appends the serialized row to the current INSERT's in-memory buffer;
//!     nothing is sent until `commit()` finds a limit reached, and then the whole pending
//!     INSERT is LZ4-compressed and sent as one block, and `commit()` waits for the server to
//!     acknowledge it. `commit()` is a few comparisons when no limit is reached. So the
//!     instance's parser pauses while each INSERT is sent and stored (the ignored `perf`
//!     test, one writer against a local ClickHouse on a busy 2-core host: 0.3M-0.5M
//!     records/s, the writer adding ~69 MiB to peak RSS).
//!   - Memory: with `with_max_rows(10_000_000)` alone the buffer would hold ~1 GB of rows
//!     per instance. [`MAX_BYTES_PER_INSERT`] (just under 32 MiB of serialized rows) ends
//!     the INSERT long before that, so with rows of typical size (~100 bytes) INSERTs carry
//!     a few hundred thousand rows and the 10M-row limit is only an upper bound. The buffer
//!     grows by doubling from 256 KiB, and the cap sits just under a power of two so it
//!     stops at 32 MiB; the LZ4 output needs as much again while a block is sent, so one
//!     instance peaks at roughly 64 MiB (a single huge key can exceed the soft cap by its
//!     own size).
//!   - Timeout: the INSERT's HTTP request (headers) starts with its first row, but its body
//!     is only sent at the commit. ClickHouse drops an HTTP request that sends nothing for
//!     `http_receive_timeout` (30 s by default; a server/settings-profile setting, not
//!     settable per query). [`INSERT_PERIOD`] (10 s) makes `commit()` end the INSERT once it
//!     is that old, so while records flow no INSERT stays silent for much more than 10 s.
//!     The Inserter only checks its limits when a record is written (it runs no timer):
//!     if records stop flowing mid-INSERT (e.g. the parser spends a long time on one huge
//!     key, or the source stalls) so that an INSERT's first row and the write that commits
//!     it (or `finalize_instance`) are more than 30 s apart, the server has dropped the
//!     INSERT and the writer fails ("channel closed"). If that happens, raise
//!     `http_receive_timeout` in the ClickHouse user's settings profile (or the server
//!     config). (The period is counted from the previous commit, not from the INSERT's first
//!     row; while records flow the two coincide.)
//!   - Each INSERT becomes at least one part per partition (one per batch here; an INSERT
//!     under the byte cap stays below `max_insert_block_size` rows for typical rows, so one
//!     part); ClickHouse merges them. The byte cap means many more, smaller INSERTs than
//!     10M-row ones: ~300 per 100M keys per instance instead of 10.
//! * `finalize_batch` inserts the `(cluster, batch)` row into `import_batches_completed`, which
//!   is what makes the batch visible in `redis_records_view`.
//!
//! Nothing is retried. After an error the writer refuses further records.

use std::time::Duration;

use clickhouse::Client;
use clickhouse::inserter::Inserter;
use serde::Serialize;

use super::config::{ClickHouseConfig, Scheme};
use super::proxy;
use super::schema::{self, BATCHES_TABLE, RECORDS_TABLE, quote_ident};
use crate::output::{BatchContext, ChunkWriter, Output, OutputError};
use crate::record::{Record, WriteContext};

/// The Inserter's row limit: at most this many rows per INSERT statement.
pub const MAX_ROWS_PER_INSERT: u64 = 10_000_000;
/// The Inserter's (soft) byte limit: an INSERT is ended once its serialized rows reach this
/// many bytes, which bounds the writer's buffer. Just under 32 MiB so that the buffer, which
/// grows by doubling from 256 KiB, stops at 32 MiB.
pub const MAX_BYTES_PER_INSERT: u64 = 32 * 1024 * 1024 - 64 * 1024;
/// The Inserter's period: an INSERT is ended at the first record written once it is this old,
/// well within ClickHouse's 30 s `http_receive_timeout` for an HTTP request that sends nothing.
pub const INSERT_PERIOD: Duration = Duration::from_secs(10);

/// The Inserter's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InsertLimits {
    max_rows: u64,
    max_bytes: u64,
    period: Duration,
}

impl Default for InsertLimits {
    fn default() -> Self {
        InsertLimits {
            max_rows: MAX_ROWS_PER_INSERT,
            max_bytes: MAX_BYTES_PER_INSERT,
            period: INSERT_PERIOD,
        }
    }
}
/// One row of `redis_records_raw`, borrowing from the record and its context. The fields are
/// the columns of [`crate::record::columns::COLUMNS`], in order (a test checks it).
#[derive(clickhouse::Row, Serialize)]
struct RecordRow<'a> {
    cluster: &'a str,
    /// DateTime64(9): nanoseconds.
    batch: i64,
    instance: &'a str,
    db: u64,
    /// Arbitrary bytes in a String column (serialized as bytes, not as UTF-8 text).
    #[serde(serialize_with = "serialize_bytes")]
    key: &'a [u8],
    #[serde(rename = "type")]
    kind: &'static str,
    member_count: u64,
    rdb_size: u64,
    encoding: &'static str,
    /// Nullable(DateTime64(3)): milliseconds.
    expire_at: Option<i64>,
    idle_seconds: Option<u64>,
    freq: Option<u8>,
    codis_slot: Option<u16>,
    redis_slot: Option<u16>,
}

/// One row of `import_batches_completed`.
#[derive(clickhouse::Row, Serialize)]
struct BatchRow<'a> {
    cluster: &'a str,
    batch: i64,
}

/// `serde_bytes` in one function: a `&[u8]` as a serde byte string, which the `clickhouse`
/// crate writes as a String value verbatim.
fn serialize_bytes<S: serde::Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// `context: error: cause: cause...`
fn ch_error(context: impl std::fmt::Display, err: clickhouse::error::Error) -> OutputError {
    let mut msg = format!("{context}: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = cause.source();
    }
    OutputError::Other(msg)
}

/// Batch-level ClickHouse output.
pub struct ClickHouseOutput {
    config: ClickHouseConfig,
    /// No default database: used for `system.*` queries and DDL (the database may not exist).
    admin: Client,
    /// Default database = the URL's: used for the inserts.
    client: Client,
    limits: InsertLimits,
    /// Set by `prepare_batch`.
    batch: Option<BatchContext>,
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
        let base = match &config.proxy {
            None => Client::default(),
            Some(p) => {
                if config.url.scheme == Scheme::Https {
                    return Err(OutputError::Other(format!(
                        "--proxy-url {p}: an https:// ClickHouse URL through a proxy is not \
                         supported (only plain HTTP forwarding)"
                    )));
                }
                proxy::client_via_proxy(p).map_err(OutputError::Other)?
            }
        };
        let mut admin = base.with_url(config.url.endpoint());
        if let Some(user) = &config.url.user {
            admin = admin.with_user(user.clone());
        }
        if let Some(password) = &config.url.password {
            admin = admin.with_password(password.clone());
        }
        let client = admin.clone().with_database(config.url.database.clone());
        Ok(ClickHouseOutput {
            config,
            admin,
            client,
            limits: InsertLimits::default(),
            batch: None,
        })
    }

    /// Parse the command-line values and build the output.
    pub fn from_args(
        url: &str,
        proxy_url: Option<&str>,
        auto_create_tables: bool,
        ttl_days: u32,
    ) -> Result<Self, OutputError> {
        let config = ClickHouseConfig::new(url, proxy_url, auto_create_tables, ttl_days)
            .map_err(|e| OutputError::Other(e.to_string()))?;
        Self::new(config)
    }

    /// The Inserter's row limit (default [`MAX_ROWS_PER_INSERT`]; tests use small values).
    /// Applies to writers created afterwards.
    pub fn set_max_rows_per_insert(&mut self, rows: u64) {
        self.limits.max_rows = rows.max(1);
    }

    /// The Inserter's byte limit (default [`MAX_BYTES_PER_INSERT`]; tests use small values).
    /// Applies to writers created afterwards.
    pub fn set_max_bytes_per_insert(&mut self, bytes: u64) {
        self.limits.max_bytes = bytes.max(1);
    }

    /// The Inserter's period (default [`INSERT_PERIOD`]; tests use small values).
    /// Applies to writers created afterwards.
    pub fn set_insert_period(&mut self, period: Duration) {
        self.limits.period = period;
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// Names of the schema objects that exist in the database, or `None` if the database
    /// itself does not exist.
    async fn existing_objects(&self) -> Result<Option<Vec<String>>, OutputError> {
        let db = &self.config.url.database;
        let url = &self.config.url;
        let databases: u64 = self
            .admin
            .query("SELECT count() FROM system.databases WHERE name = ?")
            .bind(db.as_str())
            .fetch_one()
            .await
            .map_err(|e| ch_error(format!("cannot query ClickHouse at {url}"), e))?;
        if databases == 0 {
            return Ok(None);
        }
        let names: Vec<String> = self
            .admin
            .query("SELECT name FROM system.tables WHERE database = ? AND name IN (?, ?, ?)")
            .bind(db.as_str())
            .bind(schema::RECORDS_TABLE)
            .bind(schema::BATCHES_TABLE)
            .bind(schema::VIEW)
            .fetch_all()
            .await
            .map_err(|e| ch_error(format!("cannot list the tables of {url}"), e))?;
        Ok(Some(names))
    }

    /// Check the schema (creating it with `--auto-create-tables`); see the module docs.
    async fn prepare_schema(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        let ttl_nanos = i64::from(self.config.ttl_days) * 86_400 * 1_000_000_000;
        let now = crate::record::BatchTs::now().nanos();
        if batch.batch.nanos().saturating_add(ttl_nanos) < now {
            tracing::warn!(
                "the batch timestamp {} is more than {} days old: with the table TTL of that \
                 many days, ClickHouse drops its rows as soon as they are inserted",
                batch.batch,
                self.config.ttl_days
            );
        }
        let db = self.config.url.database.clone();
        let existing = self.existing_objects().await?;
        let objects = schema::schema_objects(Some(&db), self.config.ttl_days);
        let missing: Vec<_> = objects
            .iter()
            .filter(|o| {
                existing
                    .as_ref()
                    .is_none_or(|names| !names.iter().any(|n| n == o.name))
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !self.config.auto_create_tables {
            let what = if existing.is_none() {
                format!("the database {} does not exist", quote_ident(&db))
            } else {
                let list: Vec<String> = missing
                    .iter()
                    .map(|o| format!("{} {}", o.kind.as_str(), o.name))
                    .collect();
                format!(
                    "the database {} lacks {}",
                    quote_ident(&db),
                    list.join(", ")
                )
            };
            return Err(OutputError::Other(format!(
                "ClickHouse {}: {what}. Create the schema with the DDL printed by \
                 `rdbinsight misc clickhouse-schema` (run it in that database), or pass \
                 --auto-create-tables",
                self.config.url
            )));
        }
        if existing.is_none() {
            self.admin
                .query(&format!(
                    "CREATE DATABASE IF NOT EXISTS {}",
                    quote_ident(&db)
                ))
                .execute()
                .await
                .map_err(|e| {
                    ch_error(
                        format!("cannot create the database {}", quote_ident(&db)),
                        e,
                    )
                })?;
            tracing::info!("created ClickHouse database {db}");
        }
        // Tables before the view (the order of `schema_objects`).
        for object in missing {
            // `query` treats `?` as a bind placeholder; `??` is a literal `?`.
            let ddl = object.ddl.replace('?', "??");
            self.admin.query(&ddl).execute().await.map_err(|e| {
                ch_error(
                    format!(
                        "cannot create {} {}.{}",
                        object.kind.as_str(),
                        db,
                        object.name
                    ),
                    e,
                )
            })?;
            tracing::info!(
                "created ClickHouse {} {db}.{}",
                object.kind.as_str(),
                object.name
            );
        }
        Ok(())
    }
}

impl Output for ClickHouseOutput {
    type Writer = ClickHouseChunkWriter;

    async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        self.prepare_schema(batch).await?;
        self.batch = Some(batch.clone());
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<ClickHouseChunkWriter, OutputError> {
        Ok(ClickHouseChunkWriter {
            client: self.client.clone(),
            inserter: None,
            limits: self.limits,
            ctx,
            state: WriterState::New,
        })
    }

    /// Mark the batch complete: from now on `redis_records_view` shows it.
    async fn finalize_batch(&mut self) -> Result<(), OutputError> {
        let batch = self.batch.take().ok_or_else(|| {
            OutputError::Other("ClickHouse output used before prepare_batch".into())
        })?;
        let context = || {
            format!(
                "cannot mark batch {} of cluster {} complete in {BATCHES_TABLE}",
                batch.batch, batch.cluster
            )
        };
        let mut insert = self
            .client
            .insert::<BatchRow<'static>>(BATCHES_TABLE)
            .await
            .map_err(|e| ch_error(context(), e))?;
        insert
            .write(&BatchRow {
                cluster: &batch.cluster,
                batch: batch.batch.nanos(),
            })
            .await
            .map_err(|e| ch_error(context(), e))?;
        insert.end().await.map_err(|e| ch_error(context(), e))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterState {
    New,
    Open,
    Finalized,
    Failed,
}

/// One instance's writer: one long-lived `Inserter` into `redis_records_raw`.
pub struct ClickHouseChunkWriter {
    client: Client,
    /// Created in `prepare_instance`, consumed by `finalize_instance`.
    inserter: Option<Inserter<RecordRow<'static>>>,
    limits: InsertLimits,
    ctx: WriteContext,
    state: WriterState,
}

impl ClickHouseChunkWriter {
    fn fail(&mut self, err: clickhouse::error::Error) -> OutputError {
        self.state = WriterState::Failed;
        // Dropping the Inserter aborts its running INSERT. Rows of earlier INSERTs remain, but
        // the batch is never marked complete, so `redis_records_view` never shows them.
        self.inserter = None;
        let hint = if matches!(err, clickhouse::error::Error::Network(_)) {
            // The crate reports an INSERT the server dropped as "channel closed", without the
            // server's reason. The usual one: no bytes for `http_receive_timeout` (30 s by
            // default, a server/profile setting that cannot be raised per query).
            " (if records stopped flowing for a long while, e.g. while parsing a huge key, the \
             server may have dropped the open INSERT after its http_receive_timeout, 30 s by \
             default; raise it in the ClickHouse user's settings profile)"
        } else {
            ""
        };
        let mut e = ch_error(
            format!(
                "ClickHouse insert into {RECORDS_TABLE} failed for instance {}",
                self.ctx.instance
            ),
            err,
        );
        if let OutputError::Other(msg) = &mut e {
            msg.push_str(hint);
        }
        e
    }

    fn not_open(&self) -> OutputError {
        let why = match self.state {
            WriterState::New => "before prepare_instance",
            WriterState::Finalized => "after finalize_instance",
            WriterState::Failed => "after an earlier error",
            WriterState::Open => "in an inconsistent state",
        };
        OutputError::Other(format!(
            "ClickHouse writer for instance {} used {why}",
            self.ctx.instance
        ))
    }
}

impl ChunkWriter for ClickHouseChunkWriter {
    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::New {
            return Err(self.not_open());
        }
        // The Inserter starts its first INSERT (and so fetches the table's columns and checks
        // their names) only at the first row. Do it now, so a missing column fails here: with
        // validation on (the default) `insert` fetches the columns once per client (the
        // Inserter's clone shares the cache); the INSERT is never started, and dropping it
        // sends nothing. Column types are checked as each row is serialized.
        if let Err(e) = self
            .client
            .insert::<RecordRow<'static>>(RECORDS_TABLE)
            .await
        {
            return Err(self.fail(e));
        }
        let inserter = self
            .client
            .inserter::<RecordRow<'static>>(RECORDS_TABLE)
            .with_max_rows(self.limits.max_rows)
            .with_max_bytes(self.limits.max_bytes)
            .with_period(Some(self.limits.period));
        self.inserter = Some(inserter);
        self.state = WriterState::Open;
        Ok(())
    }

    #[inline]
    async fn write_record(&mut self, record: &Record) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Err(self.not_open());
        }
        let Some(inserter) = self.inserter.as_mut() else {
            return Err(self.not_open());
        };
        let ctx = &self.ctx;
        let row = RecordRow {
            cluster: &ctx.cluster,
            batch: ctx.batch.nanos(),
            instance: &ctx.instance,
            db: record.db,
            key: &record.key,
            kind: record.r#type.as_str(),
            member_count: record.member_count,
            rdb_size: record.rdb_size,
            encoding: record.encoding.as_str(),
            expire_at: record.expire_at_ms,
            idle_seconds: record.idle_seconds,
            freq: record.freq,
            codis_slot: record.codis_slot,
            redis_slot: record.redis_slot,
        };
        // `write` serializes into the INSERT's buffer (starting the INSERT at its first row);
        // `commit` ends the INSERT, sending the buffer, only if a limit is reached.
        let result = match inserter.write(&row).await {
            Ok(()) => inserter.commit().await.map(drop),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.fail(e))
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Err(self.not_open());
        }
        if let Some(inserter) = self.inserter.take()
            && let Err(e) = inserter.end().await
        {
            return Err(self.fail(e));
        }
        self.state = WriterState::Finalized;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::Row as _;

    #[test]
    fn row_fields_are_the_column_list() {
        let names: Vec<_> = crate::record::columns::names().collect();
        assert_eq!(RecordRow::COLUMN_NAMES, names.as_slice());
    }
}
