//! [`ClickHouseOutput`] (batch level) and [`ClickHouseChunkWriter`] (one per instance).
//!
//! * `prepare_batch`, before any row is written:
//!   - reads which tables and view exist in the URL's database (`system.tables`), with their
//!     columns (`system.columns`); when something is missing or out of date (a deployment of
//!     an earlier release), `--auto-create-tables` runs the schema's DDL and migrations (all
//!     idempotent; and creates the database); otherwise it is an error naming what is
//!     missing and pointing at `rdbinsight misc clickhouse-schema` and the flag;
//!   - checks that every object the batch touches (records, markers, claims, summaries, view;
//!     with `--on-cluster` also the per-shard table) has the columns rdbinsight writes or
//!     reads, with their types, that the records table's sorting key ends with the attempt,
//!     that the view reads only the winning attempt, that the records table is a
//!     `Distributed` one exactly when `--on-cluster` is given, and that the claims and markers
//!     tables deduplicate inserts;
//!   - refuses a batch timestamp older than the records table's TTL (every row would be
//!     dropped as soon as it is stored);
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
//! Throughput and memory, `bash bench/clickhouse.sh` (the local ClickHouse 26.9 engine on the
//! same 2 cores, shared with other builds; best of the runs, ratios within one run). The
//! ceiling is the engine's own ingest of the same rows: one plain HTTP INSERT of the same
//! RowBinary with `curl`.
//!
//! | file | `curl` INSERT | this writer (streaming) | previous design (`Inserter`) |
//! |---|---|---|---|
//! | mixed 500k keys | 1.95 s | 2.12 s = 1.09×, 16 MB peak RSS | 2.42 s = 1.24×, 79 MB |
//! | mixed 5M keys | 33.6 s | 32.5 s = 0.97×, 17.5 MB | 39.9 s = 1.19×, 80 MB |
//!
//! The previous design used `clickhouse::inserter::Inserter` (0.15), which buffers a whole
//! INSERT in memory and sends it only at the commit that reaches a limit: parser and engine
//! took turns, and a byte cap (32 MiB) was needed to bound memory and stay under the server's
//! 30 s body timeout. Streaming keeps the engine busy while the parser runs; each instance
//! holds a 256 KiB row buffer and at most two compressed chunks in flight (8 instances at
//! once: 3.2 MB of RSS per instance above the parser's).
//!
//! Nothing is retried. After an error the writer refuses further records.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::claim::{self, Attempt, Claim, ClaimTiming};
use super::config::ClickHouseConfig;
use super::conn::Conn;
use super::rowbinary::{self, RowEncoder};
use super::schema::{
    self, BATCHES_TABLE, CLAIMS_TABLE, RECORDS_LOCAL_TABLE, RECORDS_TABLE, SUMMARIES_TABLE,
    quote_ident,
};
use super::stream::{InsertStream, StreamConfig, StreamLimits};
use crate::output::{BatchContext, ChunkWriter, Output, OutputError};
use crate::record::{BatchTs, InstanceSummary, Record, WriteContext};

/// Default `--ch-cleanup-timeout`.
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of `import_instance_summaries`.
#[derive(clickhouse::Row, Serialize)]
struct SummaryRow<'a> {
    cluster: &'a str,
    batch: i64,
    instance: &'a str,
    attempt: &'a str,
    summary: &'a str,
}

/// A table or view as `system.tables` describes it.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct TableInfo {
    name: String,
    engine: String,
    create_table_query: String,
    sorting_key: String,
}

/// A column as `system.columns` describes it.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ColumnInfo {
    table: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
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
            return Err(OutputError::Other(format!(
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
            .map_err(|e| OutputError::Other(e.to_string()))?;
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
    pub fn attempt_id(&self) -> &str {
        &self.attempt.id
    }

    /// The stored objects rdbinsight uses, in creation order.
    fn objects(&self) -> Vec<schema::SchemaObject> {
        schema::schema_objects(
            Some(&self.config.url.database),
            self.config.ttl_days,
            self.config.on_cluster.as_deref(),
        )
    }

    /// The schema objects that exist (`None`: not even the database), and their columns.
    async fn inspect(&self) -> Result<Option<(Vec<TableInfo>, Vec<ColumnInfo>)>, OutputError> {
        let conn = &self.conn;
        let url = &conn.url;
        let databases: u64 = conn
            .run(
                format!("cannot query ClickHouse at {url}"),
                conn.admin
                    .query("SELECT count() FROM system.databases WHERE name = ?")
                    .bind(conn.db.as_str())
                    .fetch_one(),
            )
            .await?;
        if databases == 0 {
            return Ok(None);
        }
        let names: Vec<&str> = self.objects().iter().map(|o| o.name).collect();
        let tables: Vec<TableInfo> = system_rows(
            conn,
            "tables",
            "SELECT name, engine, create_table_query, sorting_key FROM system.tables \
             WHERE database = ? AND has(?, name)",
            &names,
        )
        .await?;
        let columns: Vec<ColumnInfo> = system_rows(
            conn,
            "columns",
            "SELECT table, name, type FROM system.columns WHERE database = ? AND has(?, table)",
            &names,
        )
        .await?;
        Ok(Some((tables, columns)))
    }

    /// Refuse a batch older than the records table's TTL (`--ttl-days` when the table does not
    /// exist yet).
    fn check_ttl(&self, batch: &BatchContext, tables: &[TableInfo]) -> Result<(), OutputError> {
        let stored = self.stored_records();
        let (days, source) = match tables.iter().find(|t| t.name == stored) {
            Some(t) => match table_ttl_days(&t.create_table_query) {
                TableTtl::None => return Ok(()),
                TableTtl::Days(d) => (d, format!("the {d}-day TTL of {}", self.conn.table(stored))),
                TableTtl::Unknown => (
                    u64::from(self.config.ttl_days),
                    format!("--ttl-days {}", self.config.ttl_days),
                ),
            },
            None => (
                u64::from(self.config.ttl_days),
                format!("--ttl-days {}", self.config.ttl_days),
            ),
        };
        let ttl_nanos = i64::try_from(days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400 * 1_000_000_000);
        let age = BatchTs::now().nanos().saturating_sub(batch.batch.nanos());
        if age > ttl_nanos {
            return Err(OutputError::Other(format!(
                "the batch timestamp {} is {} days old, older than {source}: ClickHouse would \
                 drop every row as soon as it is stored. Use a recent --batch-timestamp (the \
                 default is the current time)",
                batch.batch,
                age / 86_400_000_000_000
            )));
        }
        Ok(())
    }

    /// With `--auto-create-tables`: create what is missing and migrate what an earlier release
    /// created (every statement of the schema; all idempotent), when something is missing or
    /// out of date. Without it, say what to do. Returns whether it ran the DDL.
    async fn create_or_migrate(
        &self,
        found: &Option<(Vec<TableInfo>, Vec<ColumnInfo>)>,
    ) -> Result<bool, OutputError> {
        let db = &self.config.url.database;
        let objects = self.objects();
        let missing: Vec<_> = objects
            .iter()
            .filter(|o| {
                found
                    .as_ref()
                    .is_none_or(|(tables, _)| !tables.iter().any(|t| t.name == o.name))
            })
            .collect();
        let outdated = match found {
            Some((tables, columns)) if missing.is_empty() => {
                !self.problems(tables, columns).is_empty()
            }
            _ => false,
        };
        if missing.is_empty() && !outdated {
            return Ok(false);
        }
        let on = self
            .config
            .on_cluster
            .as_ref()
            .map(|c| format!(" --on-cluster {c}"))
            .unwrap_or_default();
        if !self.config.auto_create_tables {
            if missing.is_empty() {
                // check_objects names what is out of date.
                return Ok(false);
            }
            let what = if found.is_none() {
                format!("the database {} does not exist", quote_ident(db))
            } else {
                let list: Vec<String> = missing
                    .iter()
                    .map(|o| format!("{} {}", o.kind.as_str(), o.name))
                    .collect();
                format!("the database {} lacks {}", quote_ident(db), list.join(", "))
            };
            return Err(OutputError::Other(format!(
                "ClickHouse {}: {what}. Create the schema with the DDL printed by \
                 `rdbinsight misc clickhouse-schema{on}` (run it in that database; it only \
                 adds what is missing, migrates tables of an earlier release and replaces the \
                 view), or pass --auto-create-tables",
                self.conn.url
            )));
        }
        let conn = &self.conn;
        if found.is_none() {
            let on = conn
                .on_cluster
                .as_ref()
                .map(|c| format!(" ON CLUSTER {}", quote_ident(c)))
                .unwrap_or_default();
            conn.run(
                format!("cannot create the database {}", quote_ident(db)),
                conn.admin
                    .query(&format!(
                        "CREATE DATABASE IF NOT EXISTS {}{on}",
                        quote_ident(db)
                    ))
                    .execute(),
            )
            .await?;
            tracing::info!("created ClickHouse database {db}");
        }
        // Tables before the view (the order of `schema_objects`); each object's migration
        // right after its CREATE.
        for object in &objects {
            let created = missing.iter().any(|m| m.name == object.name);
            for (i, statement) in std::iter::once(&object.ddl)
                .chain(&object.migrate)
                .enumerate()
            {
                let doing = if i == 0 { "create" } else { "migrate" };
                // `query` treats `?` as a bind placeholder; `??` is a literal `?`.
                let sql = statement.replace('?', "??");
                conn.run(
                    format!(
                        "cannot {doing} {} {}.{} (statement: {})",
                        object.kind.as_str(),
                        db,
                        object.name,
                        statement.lines().next().unwrap_or_default()
                    ),
                    conn.admin.query(&sql).execute(),
                )
                .await?;
            }
            let done = if created {
                "created"
            } else {
                "brought up to date"
            };
            tracing::info!(
                "{done} ClickHouse {} {db}.{}",
                object.kind.as_str(),
                object.name
            );
        }
        Ok(true)
    }

    /// Every object with the columns and engine rdbinsight needs; all problems in one error.
    fn check_objects(
        &self,
        tables: &[TableInfo],
        columns: &[ColumnInfo],
    ) -> Result<(), OutputError> {
        let problems = self.problems(tables, columns);
        if problems.is_empty() {
            return Ok(());
        }
        let on = self
            .config
            .on_cluster
            .as_ref()
            .map(|c| format!(" --on-cluster {c}"))
            .unwrap_or_default();
        Err(OutputError::Other(format!(
            "ClickHouse {}: the schema is not what rdbinsight needs: {}. A deployment of an \
             earlier rdbinsight is migrated by --auto-create-tables or by the DDL of \
             `rdbinsight misc clickhouse-schema{on}` (idempotent); compare with it otherwise",
            self.conn.url,
            problems.join("; ")
        )))
    }

    /// What is missing or out of date in the objects rdbinsight uses.
    fn problems(&self, tables: &[TableInfo], columns: &[ColumnInfo]) -> Vec<String> {
        let mut problems = Vec::new();
        for object in self.objects() {
            let Some(table) = tables.iter().find(|t| t.name == object.name) else {
                problems.push(format!(
                    "{} {} is missing",
                    object.kind.as_str(),
                    object.name
                ));
                continue;
            };
            for (name, ty) in &object.columns {
                match columns
                    .iter()
                    .find(|c| c.table == object.name && c.name == *name)
                {
                    None => problems.push(format!("{}.{name} is missing", object.name)),
                    Some(c) if c.ty != *ty => {
                        problems.push(format!("{}.{name} is {}, expected {ty}", object.name, c.ty))
                    }
                    Some(_) => {}
                }
            }
            if object.name == RECORDS_TABLE {
                let distributed = table.engine == "Distributed";
                match (&self.config.on_cluster, distributed) {
                    (None, true) => problems.push(format!(
                        "{RECORDS_TABLE} is a Distributed table: pass --on-cluster with its \
                         cluster, so that inserts are synchronous"
                    )),
                    (Some(c), false) => problems.push(format!(
                        "--on-cluster {c} was given but {RECORDS_TABLE} is a {} table, not \
                         Distributed",
                        table.engine
                    )),
                    _ => {}
                }
            }
            if (object.name == CLAIMS_TABLE || object.name == BATCHES_TABLE)
                && !table.engine.starts_with("Replicated")
                && !table
                    .create_table_query
                    .contains("non_replicated_deduplication_window")
            {
                let why = if object.name == CLAIMS_TABLE {
                    "makes batch claims exclusive"
                } else {
                    "makes the first completion marker of a batch win"
                };
                problems.push(format!(
                    "{} does not deduplicate inserts, which {why}: ALTER TABLE {} MODIFY \
                     SETTING non_replicated_deduplication_window = {}",
                    object.name,
                    self.conn.table(object.name),
                    schema::CLAIMS_DEDUP_WINDOW
                ));
            }
            if object.name == self.stored_records()
                && !table.sorting_key.is_empty()
                && table.sorting_key.replace(' ', "")
                    != schema::records_sorting_key().replace(' ', "")
            {
                problems.push(format!(
                    "the sorting key of {} is ({}), expected ({})",
                    object.name,
                    table.sorting_key,
                    schema::records_sorting_key()
                ));
            }
            if object.kind == schema::ObjectKind::View
                && !schema::view_is_current(&table.create_table_query)
            {
                problems.push(format!(
                    "view {} shows every attempt's rows (created by an earlier rdbinsight)",
                    object.name
                ));
            }
        }
        problems
    }

    /// The table that stores the rows (the per-shard one with `--on-cluster`).
    fn stored_records(&self) -> &'static str {
        if self.config.on_cluster.is_some() {
            RECORDS_LOCAL_TABLE
        } else {
            RECORDS_TABLE
        }
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
        let found = self.inspect().await?;
        let Some((tables, columns)) = &found else {
            return Err(OutputError::Other(format!(
                "ClickHouse {}: the database {} does not exist",
                self.conn.url,
                quote_ident(&self.conn.db)
            )));
        };
        self.check_objects(tables, columns)?;
        claim::clean_up_dead_attempts(&self.conn, self.timing).await?;
        let mut claim = claim::claim(&self.conn, batch, &self.attempt, self.timing, false).await?;
        let result = async {
            let counts = claim::batch_counts(&self.conn, batch).await?;
            claim::delete_marker(&self.conn, batch).await?;
            claim::delete_rows(&self.conn, batch).await?;
            claim::delete_summaries(&self.conn, batch).await?;
            Ok::<_, OutputError>(counts)
        }
        .await;
        claim.stop_heartbeat().await;
        let state = if result.is_ok() {
            claim::state::DROPPED
        } else {
            claim::state::ABORTED
        };
        if let Err(e) = claim::set_state(&self.conn, &claim, state).await {
            tracing::warn!("{e}");
        }
        result
    }
}

/// What `TTL` a table has.
#[derive(Debug, PartialEq, Eq)]
enum TableTtl {
    None,
    Days(u64),
    Unknown,
}

/// The `toIntervalDay(N)` of a table's TTL, as `system.tables.create_table_query` shows it.
fn table_ttl_days(create: &str) -> TableTtl {
    let Some(i) = create.find(" TTL ") else {
        return TableTtl::None;
    };
    let ttl = &create[i..];
    let Some(j) = ttl.find("toIntervalDay(") else {
        return TableTtl::Unknown;
    };
    let digits: String = ttl[j + "toIntervalDay(".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().map_or(TableTtl::Unknown, TableTtl::Days)
}

/// Rows of a `system` table (`sql` binds the database, then the object `names`) about
/// rdbinsight's objects; `what` names them in the error.
async fn system_rows<T>(
    conn: &Conn,
    what: &str,
    sql: &str,
    names: &[&str],
) -> Result<Vec<T>, OutputError>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    conn.run(
        format!("cannot list the {what} of {}", conn.url),
        conn.admin
            .query(sql)
            .bind(conn.db.as_str())
            .bind(names)
            .fetch_all(),
    )
    .await
}

impl Output for ClickHouseOutput {
    type Writer = ClickHouseChunkWriter;

    async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        let mut found = self.inspect().await?;
        let tables: &[TableInfo] = found.as_ref().map_or(&[], |(t, _)| t);
        self.check_ttl(batch, tables)?;
        if self.create_or_migrate(&found).await? {
            found = self.inspect().await?;
        }
        let (tables, columns) = found.as_ref().map_or((&[][..], &[][..]), |(t, c)| (t, c));
        self.check_objects(tables, columns)?;
        claim::clean_up_dead_attempts(&self.conn, self.timing).await?;
        let claim = claim::claim(&self.conn, batch, &self.attempt, self.timing, true).await?;
        self.stream = Some(self.stream_config(&claim));
        self.claim = Some(claim);
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<ClickHouseChunkWriter, OutputError> {
        let Some(stream) = &self.stream else {
            return Err(OutputError::Other(
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
            encoder: RowEncoder::new(&ctx, &self.attempt.id),
            stream: InsertStream::new(stream.clone(), context, query_id),
            conn: self.conn.clone(),
            attempt: self.attempt.id.clone(),
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
            return Err(OutputError::Other(
                "ClickHouse output used before prepare_batch".into(),
            ));
        };
        claim.stop_heartbeat().await;
        if !self.skip_owner_check {
            claim::check_still_owner(conn, claim).await?;
        }
        let winners = claim::write_marker(conn, claim).await?;
        let what = format!(
            "batch {} of cluster {}",
            claim.batch.batch, claim.batch.cluster
        );
        if winners != [claim.attempt.id.as_str()] {
            let why = if winners.is_empty() {
                "its claim was taken over before its completion marker was stored (it was \
                 considered dead after --ch-claim-expiry without a heartbeat)"
                    .to_string()
            } else {
                format!(
                    "another attempt completed it first (the marker names attempt {})",
                    winners.join(", ")
                )
            };
            return Err(OutputError::Other(format!(
                "this attempt ({}) lost {what}: {why}; its rows are not shown",
                claim.attempt.id
            )));
        }
        if let Err(e) = claim::set_state(conn, claim, claim::state::COMPLETED).await {
            // The batch is complete (its marker is written); a later run records it.
            tracing::warn!("{e}");
        }
        if claim.seq > 1 {
            // Earlier attempts on this batch died or were fenced: their rows are invisible;
            // remove them (housekeeping).
            if let Err(e) = claim::delete_losing_rows(conn, &claim.batch, &claim.attempt.id).await {
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
        if let Err(e) = claim::wait_inserts_done(conn, &claim.attempt).await {
            tracing::warn!("not removing the rows of {what} yet: {e}; {later}");
            return;
        }
        // Only this attempt's rows, and never those of the attempt a marker names (this one,
        // if its marker was stored before the failure).
        match claim::delete_attempt_rows(conn, &claim.batch, &claim.attempt.id).await {
            Ok(true) => {
                tracing::info!("removed the rows this attempt wrote for {what}");
                if let Err(e) = claim::set_state(conn, &claim, claim::state::ABORTED).await {
                    tracing::warn!("{e}");
                }
            }
            Ok(false) => {
                tracing::warn!(
                    "the completion marker of {what} names this attempt: the batch is complete"
                );
                if let Err(e) = claim::set_state(conn, &claim, claim::state::COMPLETED).await {
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
    attempt: String,
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
        OutputError::Other(format!(
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
            attempt: &self.attempt,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_of_a_table() {
        assert_eq!(
            table_ttl_days(
                "CREATE TABLE d.t (`batch` DateTime64(9, 'UTC')) ENGINE = ReplacingMergeTree \
                 ORDER BY batch TTL toDateTime(batch) + toIntervalDay(7) SETTINGS index_granularity = 8192"
            ),
            TableTtl::Days(7)
        );
        assert_eq!(
            table_ttl_days("CREATE TABLE d.t (x UInt8) ENGINE = MergeTree ORDER BY x"),
            TableTtl::None
        );
        assert_eq!(
            table_ttl_days(
                "CREATE TABLE d.t (x UInt8) ENGINE = MergeTree ORDER BY x TTL toDateTime(batch) + toIntervalMonth(1)"
            ),
            TableTtl::Unknown
        );
    }
}
