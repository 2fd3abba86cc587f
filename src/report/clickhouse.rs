//! The ClickHouse reader: the server aggregates (`GROUP BY`, `ORDER BY ... LIMIT`) and streams
//! the keys in byte order for the prefix tree; this side only merges small results.
//!
//! * Reads `redis_records_raw` restricted to one `(cluster, batch)` that is listed in
//!   `import_batches_completed` (checked first), and to the attempt that batch's marker names
//!   (rows of other attempts of the batch are never read), never `redis_records_view` (which
//!   shows only each cluster's latest batch).
//! * All SQL is in [`Sql`] (table names and the row filter in one place). A sharded schema
//!   (`dump ... into-clickhouse --on-cluster`) keeps the name `redis_records_raw` for the
//!   `Distributed` table over the shards' `redis_records_raw_local`, and the batch markers are
//!   on every node, so the same SQL reads it: the shards aggregate and sort their part, the
//!   server we talk to merges (tested on two real engines against one server and Parquet).
//! * The rules that put a key in a bucket are restated in SQL here and must match
//!   [`super::aggregate`] exactly: the expiry the report uses ([`Sql::expire_ms`]: NULL beyond
//!   ±`MAX_EXPIRE_MS`, the record's rule, `record::expire`), the expiry, idle and freq buckets (a count of
//!   bounds `<=` the value), the big-key rule and the key order (String comparison in
//!   ClickHouse is bytewise, as in Rust; keys as `key_parts`: first 4 KiB, length, SHA-256).
//! * No key travels whole: lists receive a key's first 4 KiB, its length and its digest, the
//!   prefix tree its first 4 KiB + 1 bytes (with `--baseline`, its `key_parts` and db, spooled
//!   for the pair pass: [`Sql::keys_with_db`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use clickhouse::Client;
use serde::Deserialize;

use crate::output::clickhouse::config::{ClickHouseConfig, ClickHouseUrl, Timeouts};
use crate::output::clickhouse::conn::Conn;
use crate::output::clickhouse::error::cause_chain;
use crate::output::clickhouse::schema::{
    BATCH_FILTER, BATCHES_TABLE, DEFAULT_TTL_DAYS, RECORDS_TABLE, quote_ident, winning_rows,
};
use crate::record::expire::MAX_EXPIRE_MS;
use crate::record::{BatchTs, InstanceSummary, RecordType};
use crate::slot::SlotKind;

use super::ReportError;
use super::aggregate::{
    Aggregates, EXPIRY_BOUNDS_MS, GroupKey, KeyCandidate, TYPES, WideTotals, effective_measure,
};
use super::assemble::total_agg;
use super::keytext::{sort_form_from_parts, sort_form_from_parts_into};
use super::model::{
    Agg, BIG_MEMBERS, BIG_OTHER_BYTES, BIG_STRING_BYTES, FREQ_BOUNDS, IDLE_BOUNDS, KEY_SHOWN_BYTES,
    Measure,
};
use super::prefix::{KeyFacts, PrefixBuilder};
use super::spill::Spool;

/// How many available batches an error message lists.
const LIST_BATCHES: usize = 20;

/// What a report reads of a batch's aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything the page shows.
    Full,
    /// What the changes since a `--baseline` batch take from that batch: the summaries, the
    /// breakdowns and the expiry buckets (with the key stream: the totals, the no-TTL and
    /// expired bytes, the groups, the prefix tree). No histograms, slots or key lists: their
    /// eight scans of the batch would be read for nothing.
    Changes,
}

/// A connection to the database of `--url`.
#[derive(Clone)]
pub struct ClickHouseReader {
    client: Client,
    /// Bounds every request by `--ch-response-timeout` ([`Conn::run`]).
    conn: Conn,
    url: ClickHouseUrl,
    sql: Sql,
}

impl std::fmt::Debug for ClickHouseReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseReader")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// `context: error: cause: ...` as a [`ReportError`].
fn ch_err(context: impl std::fmt::Display, err: clickhouse::error::Error) -> ReportError {
    ReportError::ClickHouse(format!("{context}: {}", cause_chain(&err)))
}

/// The SQL of the report, in one place.
#[derive(Debug, Clone)]
pub struct Sql {
    /// The records table, as written in queries.
    pub records: String,
    /// The completed-batch markers.
    pub batches: String,
    /// The instance summaries (memory model, `used-mem`), when that table exists.
    pub summaries: String,
    /// `mem_size`, or a NULL of its type for a table created before the column.
    pub mem: &'static str,
}

/// The table of instance summaries (`record::InstanceSummary` as JSON in `summary`).
pub const SUMMARIES_TABLE: &str = "import_instance_summaries";

impl Sql {
    /// The tables the writer creates, in the URL's database.
    pub fn new() -> Self {
        Sql {
            records: quote_ident(RECORDS_TABLE),
            batches: quote_ident(BATCHES_TABLE),
            summaries: quote_ident(SUMMARIES_TABLE),
            mem: "mem_size",
        }
    }

    /// For a records table without `mem_size`: every key's `mem_size` reads as NULL.
    pub fn without_mem(mut self) -> Self {
        self.mem = "CAST(NULL, 'Nullable(UInt64)')";
        self
    }

    /// A key's value of the measure, in SQL.
    fn measure(&self, m: Measure) -> String {
        match m {
            Measure::Mem => format!("ifNull({}, 0)", self.mem),
            Measure::Rdb => "rdb_size".to_string(),
        }
    }

    /// Whether the records table has `mem_size` and the summaries table exists; binds the
    /// records table's name, then the summaries table's.
    fn schema_probe() -> &'static str {
        "SELECT toUInt8(ifNull((SELECT count() FROM system.columns WHERE database = \
         currentDatabase() AND table = ? AND name = 'mem_size'), 0) > 0) AS has_mem, \
         toUInt8(ifNull((SELECT count() FROM system.tables WHERE database = currentDatabase() \
         AND name = ?), 0) > 0) AS has_summaries"
    }

    /// The summaries of a batch's winning attempt, one per instance; binds cluster, then
    /// batch nanoseconds.
    fn summaries(&self) -> String {
        format!(
            "SELECT instance, max(summary) AS summary_json FROM {} WHERE {} GROUP BY instance \
             ORDER BY instance",
            self.summaries,
            winning_rows(&self.batches, "", &format!(" WHERE {BATCH_FILTER}"))
        )
    }

    /// The row filter: the rows of the batch's winning attempt, the one its completion marker
    /// names (all rows of a batch completed before attempts were recorded: their attempt and
    /// their marker's are both 0). Binds cluster, then batch nanoseconds. The server prunes
    /// partitions and the primary index by the set's (cluster, batch); `GLOBAL`, so that a
    /// `Distributed` table's shards get the set rather than read the markers themselves.
    fn filter(&self) -> String {
        winning_rows(&self.batches, "GLOBAL ", &format!(" WHERE {BATCH_FILTER}"))
    }

    /// The expiry the report uses, in Unix ms: NULL when absent or beyond ±MAX_EXPIRE_MS
    /// (`aggregate::report_expire_ms`).
    pub fn expire_ms() -> String {
        format!(
            "if(toUnixTimestamp64Milli(expire_at) BETWEEN {lo} AND {hi}, \
             toUnixTimestamp64Milli(expire_at), NULL)",
            lo = -MAX_EXPIRE_MS,
            hi = MAX_EXPIRE_MS
        )
    }

    /// `aggregate::expiry_bucket` in SQL.
    fn expiry_bucket(batch_ms: i64) -> String {
        let bounds: Vec<String> = EXPIRY_BOUNDS_MS.iter().map(|b| b.to_string()).collect();
        format!(
            "if(e IS NULL, 0, if(ifNull(e, 0) - ({batch_ms}) <= 0, 1, \
             2 + arrayCount(b -> b <= ifNull(e, 0) - ({batch_ms}), [{}])))",
            bounds.join(", ")
        )
    }

    /// `aggregate::hist_bucket` in SQL.
    fn hist_bucket(column: &str, bounds: &[u64]) -> String {
        let bounds: Vec<String> = bounds.iter().map(|b| b.to_string()).collect();
        format!(
            "arrayCount(b -> b <= assumeNotNull({column}), [{}])",
            bounds.join(", ")
        )
    }

    /// `aggregate::is_big` in SQL, on the measure.
    fn is_big(&self, m: Measure) -> String {
        let size = self.measure(m);
        format!(
            "((type = 'string' AND {size} > {BIG_STRING_BYTES}) OR (type != 'string' AND \
             ({size} > {BIG_OTHER_BYTES} OR member_count > {BIG_MEMBERS})))"
        )
    }

    /// The sums of a group, with `mem` the `mem_size` expression. (Aliases never reuse a
    /// column name: ClickHouse would substitute them for the column in WHERE.)
    fn sums_of(mem: &str) -> String {
        format!(
            "count() AS n_keys, sum(rdb_size) AS n_bytes, sum(ifNull({mem}, 0)) AS n_mem, \
             countIf({mem} IS NULL) AS n_mem_missing, sum(member_count) AS n_members"
        )
    }

    fn sums(&self) -> String {
        Self::sums_of(self.mem)
    }

    /// The sums of the breakdown groups, in UInt128: ClickHouse's `sum` of UInt64 wraps, and
    /// these tell (`aggregate::WideTotals`) that no total, so no sum over fewer keys, did.
    fn wide_sums(&self) -> String {
        let mem = self.mem;
        format!(
            "count() AS n_keys, sum(toUInt128(rdb_size)) AS n_bytes, \
             sum(toUInt128(ifNull({mem}, 0))) AS n_mem, countIf({mem} IS NULL) AS n_mem_missing, \
             sum(toUInt128(member_count)) AS n_members"
        )
    }

    fn list_batches(&self) -> String {
        format!(
            "SELECT toUnixTimestamp64Nano(batch) AS ns FROM {} WHERE cluster = ? \
             GROUP BY batch ORDER BY batch DESC",
            self.batches
        )
    }

    fn list_clusters(&self) -> String {
        format!(
            "SELECT cluster FROM {} GROUP BY cluster ORDER BY cluster LIMIT {}",
            self.batches,
            LIST_BATCHES + 1
        )
    }

    fn groups(&self) -> String {
        format!(
            "SELECT instance, db, toString(type) AS type_name, toString(encoding) AS \
             encoding_name, {} FROM {} WHERE {} GROUP BY instance, db, type_name, encoding_name",
            self.wide_sums(),
            self.records,
            self.filter()
        )
    }

    fn expiry(&self, batch_ms: i64) -> String {
        format!(
            "SELECT toUInt8({}) AS bucket, {} FROM (SELECT {} AS e, rdb_size, member_count, \
             {} AS mem_v FROM {} WHERE {}) GROUP BY bucket",
            Self::expiry_bucket(batch_ms),
            Self::sums_of("mem_v"),
            Self::expire_ms(),
            self.mem,
            self.records,
            self.filter()
        )
    }

    fn histogram(&self, column: &str, bounds: &[u64]) -> String {
        format!(
            "SELECT toUInt8({}) AS bucket, {} FROM {} WHERE {} AND {column} IS NOT NULL \
             GROUP BY bucket",
            Self::hist_bucket(column, bounds),
            self.sums(),
            self.records,
            self.filter()
        )
    }

    fn slots(&self, column: &str) -> String {
        format!(
            "SELECT assumeNotNull({column}) AS slot, instance, {} FROM {} WHERE {} AND \
             {column} IS NOT NULL GROUP BY slot, instance",
            self.sums(),
            self.records,
            self.filter()
        )
    }

    /// The first `n` keys by `metric` (an SQL expression: the measure or `member_count`) in
    /// the report's order, among the rows matching `extra` (an SQL condition).
    fn top(&self, metric: &str, extra: &str, n: u64) -> String {
        format!(
            "SELECT {}, instance, db, toString(type) AS type_name, toString(encoding) AS \
             encoding_name, rdb_size, {} AS mem_v, member_count, {} AS expire_ms, idle_seconds, \
             freq FROM {} WHERE {} AND {extra} ORDER BY {metric} DESC, key_shown ASC, \
             key_len ASC, key_sha256 ASC, instance ASC, db ASC LIMIT {n}",
            key_parts(),
            self.mem,
            Self::expire_ms(),
            self.records,
            self.filter()
        )
    }

    fn big_sums(&self, m: Measure) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} AND {}",
            self.sums(),
            self.records,
            self.filter(),
            self.is_big(m)
        )
    }

    /// Every key's first [`KEY_SHOWN_BYTES`] + 1 bytes (all the prefix tree looks at, and
    /// whether there is more) in byte order with what the prefix tree needs; `t` is the 1-based index in
    /// [`TYPES`] (0: unknown). `t` and `has_ttl` are also sort keys, which changes nothing (the
    /// order among equal keys does not matter) but makes the server compute them before
    /// sorting: left to itself it moves them after the sort, where `type` has lost its
    /// LowCardinality dictionary, and the query takes 3-5 times as long.
    fn keys(&self) -> String {
        self.key_stream(
            &format!("substring(key, 1, {}) AS key_head", KEY_SHOWN_BYTES + 1),
            "key_head",
        )
    }

    /// As [`Sql::keys`] for a `--baseline` report, whose key stream the pair pass reads again
    /// ([`super::spill::Spool`]): each key as its `key_parts` (its identity, long or not) and
    /// its db, ordered by the parts, which is the order of the sort forms the Parquet reader
    /// sorts (a long key's form is its shown bytes, its length big-endian, its digest).
    fn keys_with_db(&self) -> String {
        self.key_stream(
            &format!("{}, toUInt64(db) AS db", key_parts()),
            "key_shown, key_len, key_sha256",
        )
    }

    fn key_stream(&self, key: &str, order: &str) -> String {
        let names: Vec<String> = TYPES.iter().map(|t| format!("'{}'", t.as_str())).collect();
        format!(
            "SELECT {key}, toUInt64(rdb_size) AS size, \
             CAST({}, 'Nullable(UInt64)') AS mem_v, toUInt64(member_count) AS members, \
             toUInt8(indexOf([{}], toString(type))) AS t, toUInt8(({}) IS NOT NULL) AS has_ttl \
             FROM {} WHERE {} ORDER BY {order}, t, has_ttl",
            self.mem,
            names.join(", "),
            Self::expire_ms(),
            self.records,
            self.filter()
        )
    }
}

/// A key as three columns whose order is the report's key order (`keytext::sort_form`):
/// `key_shown` (its first [`KEY_SHOWN_BYTES`] bytes), `key_len` (its length) and `key_sha256`
/// (the hex SHA-256 of a longer key, else empty; `hex` writes uppercase digits, which sort as
/// the bytes do).
fn key_parts() -> String {
    format!(
        "substring(key, 1, {n}) AS key_shown, toUInt64(length(key)) AS key_len, \
         if(length(key) > {n}, hex(SHA256(key)), '') AS key_sha256",
        n = KEY_SHOWN_BYTES
    )
}

impl Default for Sql {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(clickhouse::Row, Deserialize)]
struct BatchRow {
    ns: i64,
}

#[derive(clickhouse::Row, Deserialize)]
struct ClusterRow {
    cluster: String,
}

#[derive(clickhouse::Row, Deserialize)]
struct GroupRow {
    instance: String,
    db: u64,
    type_name: String,
    encoding_name: String,
    n_keys: u64,
    n_bytes: u128,
    n_mem: u128,
    n_mem_missing: u64,
    n_members: u128,
}

#[derive(clickhouse::Row, Deserialize)]
struct BucketRow {
    bucket: u8,
    n_keys: u64,
    n_bytes: u64,
    n_mem: u64,
    n_mem_missing: u64,
    n_members: u64,
}

#[derive(clickhouse::Row, Deserialize)]
struct SlotRow {
    slot: u16,
    instance: String,
    n_keys: u64,
    n_bytes: u64,
    n_mem: u64,
    n_mem_missing: u64,
    n_members: u64,
}

#[derive(clickhouse::Row, Deserialize)]
struct SumRow {
    n_keys: u64,
    n_bytes: u64,
    n_mem: u64,
    n_mem_missing: u64,
    n_members: u64,
}

#[derive(clickhouse::Row, Deserialize)]
struct ProbeRow {
    has_mem: u8,
    has_summaries: u8,
}

#[derive(clickhouse::Row, Deserialize)]
struct SummaryRow {
    instance: String,
    summary_json: String,
}

#[derive(clickhouse::Row, Deserialize)]
struct TopRow {
    #[serde(deserialize_with = "bytes")]
    key_shown: Vec<u8>,
    key_len: u64,
    key_sha256: String,
    instance: String,
    db: u64,
    type_name: String,
    encoding_name: String,
    rdb_size: u64,
    mem_v: Option<u64>,
    member_count: u64,
    expire_ms: Option<i64>,
    idle_seconds: Option<u64>,
    freq: Option<u8>,
}

/// A row of [`Sql::keys_with_db`].
#[derive(clickhouse::Row, Deserialize)]
struct KeyDbRow<'a> {
    key_shown: &'a [u8],
    key_len: u64,
    key_sha256: &'a [u8],
    db: u64,
    size: u64,
    mem_v: Option<u64>,
    members: u64,
    t: u8,
    has_ttl: u8,
}

#[derive(clickhouse::Row, Deserialize)]
struct KeyRow<'a> {
    key_head: &'a [u8],
    size: u64,
    mem_v: Option<u64>,
    members: u64,
    t: u8,
    has_ttl: u8,
}

/// A String column's raw bytes (not UTF-8 text) into a `Vec<u8>`.
fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    d.deserialize_byte_buf(V)
}

/// An `Agg` from a row's sums (`n_keys, n_bytes, n_mem, n_mem_missing, n_members`).
macro_rules! agg {
    ($r:expr) => {
        Agg {
            keys: $r.n_keys,
            rdb_size: $r.n_bytes,
            mem_size: $r.n_mem,
            mem_missing: $r.n_mem_missing,
            member_count: $r.n_members,
        }
    };
}

impl ClickHouseReader {
    /// Validate `--url` / `--proxy-url` and build the client (nothing connects yet): the
    /// writer's HTTP client (`output::clickhouse::http`: `--ch-connect-timeout`, TLS, proxy),
    /// every request bounded by `--ch-response-timeout` as the writer's.
    pub fn new(
        url: &str,
        proxy_url: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Self, ReportError> {
        let mut config = ClickHouseConfig::new(url, proxy_url, false, DEFAULT_TTL_DAYS)
            .map_err(|e| ReportError::Options(e.to_string()))?;
        config.timeouts = timeouts;
        let conn = Conn::new(&config).map_err(|e| ReportError::Options(e.to_string()))?;
        Ok(ClickHouseReader {
            client: conn.client.clone(),
            conn,
            url: config.url,
            sql: Sql::new(),
        })
    }

    /// `request` within `--ch-response-timeout`; its failure as one line naming `context`.
    async fn run<T>(
        &self,
        context: String,
        request: impl std::future::Future<Output = Result<T, clickhouse::error::Error>>,
    ) -> Result<T, ReportError> {
        self.conn
            .run(context, request)
            .await
            .map_err(|e| ReportError::ClickHouse(e.to_string()))
    }

    /// Adapt the SQL to the schema: a records table created before `mem_size` reads it as
    /// NULL; the summaries are read when their table exists (else every instance's model is
    /// unknown).
    async fn probe_schema(&mut self) -> Result<bool, ReportError> {
        let query = self
            .client
            .query(Sql::schema_probe())
            .bind(RECORDS_TABLE)
            .bind(SUMMARIES_TABLE);
        let rows: Vec<ProbeRow> = self
            .run(self.ctx("cannot read the schema"), query.fetch_all())
            .await?;
        let (has_mem, has_summaries) = rows
            .first()
            .map_or((false, false), |r| (r.has_mem != 0, r.has_summaries != 0));
        if !has_mem {
            tracing::warn!(
                "{RECORDS_TABLE} has no mem_size column (created before rdbinsight measured \
                 memory): the report ranks by rdb_size"
            );
            self.sql = Sql::new().without_mem();
        }
        Ok(has_summaries)
    }

    /// The instance summaries of the batch, by instance.
    async fn summaries(
        &self,
        cluster: &str,
        batch: BatchTs,
    ) -> Result<BTreeMap<String, InstanceSummary>, ReportError> {
        let rows: Vec<SummaryRow> = self
            .fetch(
                &self.sql.summaries(),
                cluster,
                batch,
                "the instance summaries",
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let s = serde_json::from_str::<InstanceSummary>(&r.summary_json).map_err(|e| {
                    ReportError::ClickHouse(format!(
                        "{}: the summary of instance '{}' in {SUMMARIES_TABLE} is not an \
                         instance summary: {e}",
                        self.url, r.instance
                    ))
                })?;
                Ok((r.instance, s))
            })
            .collect()
    }

    fn ctx(&self, what: &str) -> String {
        format!("ClickHouse {}: {what}", self.url)
    }

    /// The batch to report: `batch` (RFC 3339, or a Parquet batch directory name) exactly, or
    /// the newest completed batch of the cluster. Unix nanoseconds.
    pub async fn resolve_batch(
        &self,
        cluster: &str,
        batch: Option<&str>,
    ) -> Result<BatchTs, ReportError> {
        let batches = self.completed_batches(cluster).await?;
        if batches.is_empty() {
            let query = self.client.query(&self.sql.list_clusters());
            let clusters: Vec<ClusterRow> = self
                .run(self.ctx("cannot list the clusters"), query.fetch_all())
                .await?;
            let mut names: Vec<String> = clusters.into_iter().map(|c| c.cluster).collect();
            let more = names.len() > LIST_BATCHES;
            names.truncate(LIST_BATCHES);
            let present = if names.is_empty() {
                "no completed batch of any cluster".to_string()
            } else {
                format!(
                    "clusters with completed batches: {}{}",
                    names.join(", "),
                    if more { ", ..." } else { "" }
                )
            };
            return Err(ReportError::NoBatch(format!(
                "{}: no completed batch of cluster '{cluster}' in {BATCHES_TABLE} ({present})",
                self.url
            )));
        }
        let Some(want) = batch else {
            return Ok(batches[0]);
        };
        let ns = parse_batch_arg(want)?;
        if batches.contains(&ns) {
            return Ok(ns);
        }
        let mut names: Vec<String> = batches
            .iter()
            .take(LIST_BATCHES)
            .map(|b| b.rfc3339())
            .collect();
        if batches.len() > LIST_BATCHES {
            names.push(format!("and {} more", batches.len() - LIST_BATCHES));
        }
        Err(ReportError::NoBatch(format!(
            "{}: batch {} of cluster '{cluster}' is not a completed batch in {BATCHES_TABLE} \
             (available, newest first: {})",
            self.url,
            ns.rfc3339(),
            names.join(", ")
        )))
    }

    /// The histogram of `column` (`name` in messages) over `bounds` into `out`.
    async fn histogram<const N: usize>(
        &self,
        (column, name): (&str, &str),
        bounds: &[u64],
        cluster: &str,
        batch: BatchTs,
        out: &mut [Agg; N],
    ) -> Result<(), ReportError> {
        let what = format!("the {name} histogram");
        let rows: Vec<BucketRow> = self
            .fetch(&self.sql.histogram(column, bounds), cluster, batch, &what)
            .await?;
        fill_buckets(out, rows, name)
    }

    async fn fetch<T>(
        &self,
        sql: &str,
        cluster: &str,
        batch: BatchTs,
        what: &str,
    ) -> Result<Vec<T>, ReportError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let started = std::time::Instant::now();
        let query = self.client.query(sql).bind(cluster).bind(batch.nanos());
        let rows = self
            .run(
                self.ctx(&format!("cannot read {what}")),
                query.fetch_all::<T>(),
            )
            .await?;
        tracing::debug!("read {what} in {:.2?}", started.elapsed());
        Ok(rows)
    }

    /// Everything but the prefix tree, aggregated by the server.
    pub async fn aggregates(
        &mut self,
        cluster: &str,
        batch: BatchTs,
        top: u64,
        measure: Measure,
        scope: Scope,
    ) -> Result<Aggregates, ReportError> {
        let mut a = Aggregates::default();
        if self.probe_schema().await? {
            a.summaries = self.summaries(cluster, batch).await?;
        }
        let groups: Vec<GroupRow> = self
            .fetch(&self.sql.groups(), cluster, batch, "the breakdowns")
            .await?;
        let mut wide = WideTotals::default();
        for g in &groups {
            wide.add(g.n_keys, 0, 0, 0);
            wide.rdb_size += g.n_bytes;
            wide.mem_size += g.n_mem;
            wide.member_count += g.n_members;
        }
        wide.check()?;
        // Every group sum is at most its total, which fits: exact.
        let narrow = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        for g in groups {
            if RecordType::parse(&g.type_name).is_none() {
                return Err(ReportError::ClickHouse(format!(
                    "{}: batch {} holds keys of unknown type '{}'",
                    self.url,
                    batch.rfc3339(),
                    g.type_name
                )));
            }
            a.groups.insert(
                GroupKey {
                    instance: g.instance,
                    db: g.db,
                    rtype: g.type_name,
                    encoding: g.encoding_name,
                },
                Agg {
                    keys: g.n_keys,
                    rdb_size: narrow(g.n_bytes),
                    mem_size: narrow(g.n_mem),
                    mem_missing: g.n_mem_missing,
                    member_count: narrow(g.n_members),
                },
            );
        }
        a.measure = effective_measure(measure, &total_agg(&a));
        let m = a.measure;
        let expiry: Vec<BucketRow> = self
            .fetch(
                &self.sql.expiry(batch.millis()),
                cluster,
                batch,
                "the expiry buckets",
            )
            .await?;
        fill_buckets(&mut a.expiry, expiry, "expiry")?;
        if scope == Scope::Changes {
            return Ok(a);
        }
        self.histogram(
            ("idle_seconds", "idle"),
            &IDLE_BOUNDS,
            cluster,
            batch,
            &mut a.idle,
        )
        .await?;
        self.histogram(("freq", "freq"), &FREQ_BOUNDS, cluster, batch, &mut a.freq)
            .await?;
        for (kind, column) in [
            (SlotKind::Redis, "redis_slot"),
            (SlotKind::Codis, "codis_slot"),
        ] {
            let rows: Vec<SlotRow> = self
                .fetch(&self.sql.slots(column), cluster, batch, "the slots")
                .await?;
            for r in rows {
                a.slots.insert((kind, r.slot, r.instance), agg!(r));
            }
        }
        let mut interned: BTreeMap<String, Arc<str>> = BTreeMap::new();
        let size = self.sql.measure(m);
        for (metric, extra, list) in [
            (size.as_str(), "1".to_string(), &mut a.top_by_size),
            ("member_count", "1".to_string(), &mut a.top_by_members),
            (size.as_str(), self.sql.is_big(m), &mut a.big_keys),
        ] {
            let rows: Vec<TopRow> = self
                .fetch(
                    &self.sql.top(metric, &extra, top),
                    cluster,
                    batch,
                    "the top keys",
                )
                .await?;
            for r in rows {
                list.push(candidate(&self.url, r, &mut interned)?);
            }
        }
        let big: Vec<SumRow> = self
            .fetch(&self.sql.big_sums(m), cluster, batch, "the big keys")
            .await?;
        if let Some(b) = big.first() {
            a.big_agg = agg!(b);
        }
        Ok(a)
    }

    /// Stream every key of the batch in byte order into `builder`; with `spool` (a `--baseline`
    /// report), every key as its sort form with its db ([`Sql::keys_with_db`]) into both, the
    /// spool's tag being the db. Returns the row count.
    pub async fn stream_keys(
        &self,
        cluster: &str,
        batch: BatchTs,
        builder: &mut PrefixBuilder,
        spool: Option<&mut Spool>,
    ) -> Result<u64, ReportError> {
        let ctx = || self.ctx("cannot stream the keys");
        // Plain RowBinary for the one query whose rows are counted in millions: the crate's
        // per-row type validation costs more than the rest of the decoding. The query casts
        // every column to the type of `KeyRow` / `KeyDbRow` (the tests run it against the real
        // engine).
        let query = |sql: String| {
            self.client
                .clone()
                .with_validation(false)
                .query(&sql)
                .bind(cluster)
                .bind(batch.nanos())
        };
        let started = std::time::Instant::now();
        let mut rows = 0u64;
        let facts = |size, mem_size, members, t: u8, has_ttl: u8| {
            let rtype = usize::from(t)
                .checked_sub(1)
                .and_then(|i| TYPES.get(i))
                .copied()
                .ok_or_else(|| {
                    ReportError::ClickHouse(format!(
                        "{}: a key of batch {} has an unknown type",
                        self.url,
                        batch.rfc3339()
                    ))
                })?;
            Ok::<_, ReportError>(KeyFacts {
                rdb_size: size,
                mem_size,
                member_count: members,
                rtype,
                has_ttl: has_ttl != 0,
            })
        };
        match spool {
            None => {
                let mut cursor = query(self.sql.keys())
                    .fetch::<KeyRow<'_>>()
                    .map_err(|e| ch_err(ctx(), e))?;
                // Each batch of rows within --ch-response-timeout: a server that stops sending
                // is an error, not a report that waits forever.
                while let Some(r) = self.run(ctx(), cursor.next()).await? {
                    let f = facts(r.size, r.mem_v, r.members, r.t, r.has_ttl)?;
                    builder.push(r.key_head, f)?;
                    rows += 1;
                }
            }
            Some(spool) => {
                let mut cursor = query(self.sql.keys_with_db())
                    .fetch::<KeyDbRow<'_>>()
                    .map_err(|e| ch_err(ctx(), e))?;
                let mut form = Vec::new();
                while let Some(r) = self.run(ctx(), cursor.next()).await? {
                    let f = facts(r.size, r.mem_v, r.members, r.t, r.has_ttl)?;
                    if !sort_form_from_parts_into(r.key_shown, r.key_len, r.key_sha256, &mut form) {
                        return Err(bad_key_parts(&self.url));
                    }
                    spool.push(&form, f, Some(r.db));
                    builder.push(&form, f)?;
                    rows += 1;
                }
            }
        }
        tracing::debug!("streamed {rows} keys in {:.2?}", started.elapsed());
        Ok(rows)
    }
}

impl ClickHouseReader {
    /// The completed batches of the cluster, newest first.
    pub async fn completed_batches(&self, cluster: &str) -> Result<Vec<BatchTs>, ReportError> {
        let query = self.client.query(&self.sql.list_batches()).bind(cluster);
        let rows: Vec<BatchRow> = self
            .run(
                self.ctx(&format!(
                    "cannot list the completed batches in {BATCHES_TABLE}"
                )),
                query.fetch_all(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| BatchTs::from_nanos(r.ns))
            .collect())
    }
}

fn fill_buckets<const N: usize>(
    out: &mut [Agg; N],
    rows: Vec<BucketRow>,
    what: &str,
) -> Result<(), ReportError> {
    for r in rows {
        let slot = out.get_mut(usize::from(r.bucket)).ok_or_else(|| {
            ReportError::ClickHouse(format!("{what} bucket {} out of range", r.bucket))
        })?;
        *slot = agg!(r);
    }
    Ok(())
}

/// The server sent a key's parts that do not fit together (see `key_parts`).
fn bad_key_parts(url: &impl std::fmt::Display) -> ReportError {
    ReportError::ClickHouse(format!(
        "{url}: a key's first bytes, length and SHA-256 do not fit together"
    ))
}

fn candidate(
    url: &impl std::fmt::Display,
    r: TopRow,
    interned: &mut BTreeMap<String, Arc<str>>,
) -> Result<KeyCandidate, ReportError> {
    let mut intern = |s: String| -> Arc<str> {
        interned
            .entry(s)
            .or_insert_with_key(|k| Arc::from(k.as_str()))
            .clone()
    };
    let rtype = RecordType::parse(&r.type_name)
        .ok_or_else(|| ReportError::ClickHouse(format!("unknown type '{}'", r.type_name)))?;
    let key = sort_form_from_parts(&r.key_shown, r.key_len, r.key_sha256.as_bytes())
        .ok_or_else(|| bad_key_parts(url))?;
    Ok(KeyCandidate {
        key,
        instance: intern(r.instance),
        db: r.db,
        rtype,
        encoding: intern(r.encoding_name),
        rdb_size: r.rdb_size,
        mem_size: r.mem_v,
        member_count: r.member_count,
        expire_ms: r.expire_ms,
        idle_seconds: r.idle_seconds,
        freq: r.freq,
    })
}

/// `--batch` for ClickHouse: RFC 3339, or a Parquet batch directory name.
fn parse_batch_arg(s: &str) -> Result<BatchTs, ReportError> {
    BatchTs::parse_slug_or_rfc3339(s).map_err(|e| ReportError::Options(format!("--batch {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_shapes() {
        let s = Sql::new();
        assert!(s.keys().ends_with("ORDER BY key_head, t, has_ttl"));
        assert!(
            s.keys()
                .starts_with("SELECT substring(key, 1, 4097) AS key_head,")
        );
        assert!(!s.groups().contains("redis_records_view"));
        assert_eq!(s.groups().matches('?').count(), 2);
        assert_eq!(s.expiry(5).matches('?').count(), 2);
        assert_eq!(
            s.top("rdb_size", &s.is_big(Measure::Mem), 3)
                .matches('?')
                .count(),
            2
        );
        assert!(s.clone().without_mem().keys().contains("CAST(NULL"));
        assert!(
            s.keys_with_db()
                .ends_with("ORDER BY key_shown, key_len, key_sha256, t, has_ttl")
        );
        assert!(s.keys_with_db().contains("toUInt64(db) AS db"));
        assert_eq!(s.summaries().matches('?').count(), 2);
        assert!(Sql::expire_ms().contains("9223372036854775"));
        assert_eq!(
            parse_batch_arg("2024-01-02T03:04:05.123456789Z").unwrap(),
            BatchTs::from_nanos(1_704_164_645_123_456_789)
        );
        assert_eq!(
            parse_batch_arg("2024-01-02_03-04-05.123456789Z").unwrap(),
            BatchTs::from_nanos(1_704_164_645_123_456_789)
        );
        assert!(parse_batch_arg("latest").is_err());
    }
}
