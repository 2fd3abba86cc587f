//! [`ClickHouseOutput`] (batch level) and [`ClickHouseChunkWriter`] (one per instance).
//!
//! * `prepare_batch` checks, in the URL's database, that both tables and the view exist
//!   (`system.tables`); with `--auto-create-tables` it creates what is missing (and the
//!   database), otherwise a missing object is an error pointing at
//!   `rdbinsight misc clickhouse-schema`.
//! * Each instance writer holds one long-lived INSERT stream into `redis_records_raw`: records
//!   are serialized (RowBinaryWithNamesAndTypes, validated against the table's columns) into a
//!   256 KiB buffer that is LZ4-compressed and sent whenever it fills, so the server works
//!   while the parser runs and memory stays bounded. The INSERT is ended and a new one started
//!   every [`MAX_ROWS_PER_INSERT`] rows; `finalize_instance` ends the last one.
//!
//!   Why not `clickhouse::inserter::Inserter` (0.15)? Its `write()` only appends to an
//!   in-memory buffer; nothing is sent until `commit()` finds a limit reached, and then the
//!   whole pending INSERT goes out as a single LZ4 block. With a 10M-row limit that is ~1 GB of
//!   RAM per instance and a block near ClickHouse's 1 GiB compressed-block cap. Worse, the
//!   HTTP request (headers) starts with the first row, and the server drops a request that
//!   sends no bytes for `http_receive_timeout` (30 s by default, not settable per query): an
//!   INSERT whose 10M rows take longer than 30 s to arrive fails ("channel closed"), i.e. any
//!   instance slower than ~330K keys/s (verified against ClickHouse 26.9).
//!   `clickhouse::insert::Insert` streams; rolling it over every 10M rows gives the same
//!   INSERT sizes with bounded memory, and the server only waits >30 s if 256 KiB of rows
//!   (~3,000 keys) take that long to arrive.
//! * `finalize_batch` inserts the `(cluster, batch)` row into `import_batches_completed`, which
//!   is what makes the batch visible in `redis_records_view`.
//!
//! Nothing is retried. After an error the writer refuses further records.

use clickhouse::Client;
use clickhouse::insert::Insert;
use serde::Serialize;

use super::config::{ClickHouseConfig, Scheme};
use super::proxy;
use super::schema::{self, BATCHES_TABLE, RECORDS_TABLE, quote_ident};
use crate::output::{BatchContext, ChunkWriter, OutputError};
use crate::record::{Record, WriteContext};

/// Rows per INSERT statement (each INSERT becomes at least one part per partition).
pub const MAX_ROWS_PER_INSERT: u64 = 10_000_000;
/// One row of `redis_records_raw`, borrowing from the record and its context.
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
    config: Box<ClickHouseConfig>,
    /// No default database: used for `system.*` queries and DDL (the database may not exist).
    admin: Box<Client>,
    /// Default database = the URL's: used for the inserts.
    client: Box<Client>,
    max_rows_per_insert: u64,
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
            config: Box::new(config),
            admin: Box::new(admin),
            client: Box::new(client),
            max_rows_per_insert: MAX_ROWS_PER_INSERT,
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

    /// Rows per INSERT statement (default [`MAX_ROWS_PER_INSERT`]; tests use small values).
    pub fn set_max_rows_per_insert(&mut self, rows: u64) {
        self.max_rows_per_insert = rows.max(1);
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

    pub async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        let ttl_nanos = i64::from(self.config.ttl_days) * 86_400 * 1_000_000_000;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        if batch.batch_ts_nanos.saturating_add(ttl_nanos) < now {
            tracing::warn!(
                "the batch timestamp {} is more than {} days old: with the table TTL of that \
                 many days, ClickHouse drops its rows as soon as they are inserted",
                crate::output::jsonl::format_batch_ts(batch.batch_ts_nanos),
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

    pub fn writer_for(
        &self,
        _batch: &BatchContext,
        instance: &str,
    ) -> Result<ClickHouseChunkWriter, OutputError> {
        Ok(ClickHouseChunkWriter {
            client: self.client.clone(),
            insert: None,
            rows_in_insert: 0,
            max_rows_per_insert: self.max_rows_per_insert,
            instance: instance.to_string(),
            state: WriterState::New,
        })
    }

    /// Mark the batch complete: from now on `redis_records_view` shows it.
    pub async fn finalize_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        let context = || {
            format!(
                "cannot mark batch {} of cluster {} complete in {BATCHES_TABLE}",
                crate::output::jsonl::format_batch_ts(batch.batch_ts_nanos),
                batch.cluster
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
                batch: batch.batch_ts_nanos,
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

/// One instance's writer: a long-lived stream of `INSERT`s into `redis_records_raw`.
pub struct ClickHouseChunkWriter {
    client: Box<Client>,
    /// The running INSERT (boxed: it is large, and `ChunkWriterEnum` holds writers by value).
    insert: Option<Box<Insert<RecordRow<'static>>>>,
    /// Rows written into the running INSERT.
    rows_in_insert: u64,
    max_rows_per_insert: u64,
    instance: String,
    state: WriterState,
}

impl ClickHouseChunkWriter {
    fn fail(&mut self, err: clickhouse::error::Error) -> OutputError {
        self.state = WriterState::Failed;
        // Dropping the INSERT aborts it. Rows of earlier INSERTs (and blocks the server
        // already stored) remain, but the batch is never marked complete, so
        // `redis_records_view` never shows them.
        self.insert = None;
        let hint = if matches!(err, clickhouse::error::Error::Network(_)) {
            // The crate reports an INSERT the server dropped as "channel closed", without the
            // server's reason. The usual one: no bytes for `http_receive_timeout` (30 s by
            // default, a server/profile setting that cannot be raised per query).
            " (if this instance sent nothing for a long while, e.g. while parsing a huge key, \
             the server may have dropped the idle INSERT after its http_receive_timeout, 30 s \
             by default; raise it in the ClickHouse user's settings profile)"
        } else {
            ""
        };
        let mut e = ch_error(
            format!(
                "ClickHouse insert into {RECORDS_TABLE} failed for instance {}",
                self.instance
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
            self.instance
        ))
    }

    /// Start the next INSERT. With validation on (the default), this fetches the table's
    /// columns once per client, so a schema mismatch fails here, before any row is sent.
    async fn start_insert(&mut self) -> Result<(), OutputError> {
        match self
            .client
            .insert::<RecordRow<'static>>(RECORDS_TABLE)
            .await
        {
            Ok(insert) => {
                self.insert = Some(Box::new(insert));
                self.rows_in_insert = 0;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl ChunkWriter for ClickHouseChunkWriter {
    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::New {
            return Err(self.not_open());
        }
        self.start_insert().await?;
        self.state = WriterState::Open;
        Ok(())
    }

    #[inline]
    async fn write_record(
        &mut self,
        record: &Record,
        ctx: &WriteContext,
    ) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Err(self.not_open());
        }
        if self.insert.is_none() {
            self.start_insert().await?;
        }
        let row = RecordRow {
            cluster: &ctx.cluster,
            batch: ctx.batch_ts_nanos,
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
        // Serializes into a 256 KiB buffer and sends it (LZ4-compressed) whenever it is
        // full: the INSERT streams, memory stays bounded.
        let written = match self.insert.as_mut() {
            Some(insert) => insert.write(&row).await,
            None => return Err(self.not_open()),
        };
        if let Err(e) = written {
            return Err(self.fail(e));
        }
        self.rows_in_insert += 1;
        if self.rows_in_insert >= self.max_rows_per_insert
            && let Some(insert) = self.insert.take()
            && let Err(e) = insert.end().await
        {
            return Err(self.fail(e));
        }
        Ok(())
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        if self.state != WriterState::Open {
            return Err(self.not_open());
        }
        if let Some(insert) = self.insert.take()
            && let Err(e) = insert.end().await
        {
            return Err(self.fail(e));
        }
        self.state = WriterState::Finalized;
        Ok(())
    }
}
