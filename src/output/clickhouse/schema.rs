//! The ClickHouse schema: four tables and a view (plus a local table per shard with
//! `--on-cluster`).
//!
//! * `redis_records_raw`: one row per key per import batch and attempt (ReplacingMergeTree,
//!   partitioned by batch day, kept `ttl_days` days). Its columns are
//!   [`crate::record::columns::COLUMNS`] and the storage column [`ATTEMPT_COLUMN`], which is
//!   also the last column of the sorting key (the primary key stays
//!   [`RECORDS_PRIMARY_KEY`]), so rows of two attempts never collapse into each other.
//! * `import_batches_completed`: one `(cluster, batch, attempt)` row per *completed* dump,
//!   written by `finalize_batch` after every instance succeeded; inserts are deduplicated per
//!   batch, so the first marker wins (see `claim`).
//! * `import_batch_claims`: which attempt owns which batch (see `claim`): one row per claim and
//!   per heartbeat, the latest `version` of a `(cluster, batch, seq)` being its state, with the
//!   expiry its attempt uses. Insert deduplication (`non_replicated_deduplication_window`) is
//!   what makes a claim exclusive.
//! * `import_instance_summaries`: per `(cluster, batch, instance, attempt)` the instance's
//!   `record::InstanceSummary` as JSON, written before the marker.
//! * `redis_records_view`: `redis_records_raw` restricted to each cluster's latest completed
//!   batch and to the attempt its marker names, so a dump that failed, is still running or lost
//!   is never visible through it.
//!
//! With `--on-cluster NAME` every statement is `ON CLUSTER NAME`, and:
//! * the rows live in `redis_records_raw_local` (ReplicatedReplacingMergeTree, one replica set
//!   per shard: `/clickhouse/tables/{shard}/{database}/{table}`); `redis_records_raw` is a
//!   `Distributed` table over it, sharded by `cityHash64(cluster, instance, key)`, so readers
//!   and users' SQL keep the same name;
//! * the markers, claims and summaries tables are small ReplicatedReplacingMergeTree tables
//!   with one replica on every node (a path without `{shard}`), so each node sees every marker
//!   and claim, and deduplication is cluster-wide (through Keeper);
//! * the view reads the `Distributed` table and filters with `GLOBAL IN` over the markers.
//!
//! **Migration.** Every object has its `CREATE ... IF NOT EXISTS` (the view: `CREATE OR
//! REPLACE VIEW`, it holds no data) and the `ALTER TABLE`s that bring a table of an earlier
//! release up to date (`ADD COLUMN IF NOT EXISTS` for the columns added since, the records
//! table's sorting key extended in the ALTER that adds `attempt`: the one way ClickHouse lets a
//! key column be added). All of it is idempotent. Rows and markers written before the
//! migration read `attempt = 0` (the column's default; a run's attempt id is never 0), so an
//! old batch shows all its rows, as before.
//!
//! `rdbinsight misc clickhouse-schema [--on-cluster NAME]` prints [`schema_sql`];
//! `--auto-create-tables` runs the same statements, qualified with the URL's database, when
//! something is missing or out of date.

use crate::record::columns::{COLUMNS, Column, ColumnType};

/// The records table (with `--on-cluster`: the `Distributed` table).
pub const RECORDS_TABLE: &str = "redis_records_raw";
/// With `--on-cluster`: the per-shard table under [`RECORDS_TABLE`].
pub const RECORDS_LOCAL_TABLE: &str = "redis_records_raw_local";
/// The completed-batch markers.
pub const BATCHES_TABLE: &str = "import_batches_completed";
/// The batch claims of running, finished and dead attempts.
pub const CLAIMS_TABLE: &str = "import_batch_claims";
/// The per-instance summaries (`record::InstanceSummary` as JSON), one per attempt.
pub const SUMMARIES_TABLE: &str = "import_instance_summaries";
/// The view over the latest completed batch of each cluster.
pub const VIEW: &str = "redis_records_view";

/// The storage column that tags every row of the records table (and every marker and
/// summary) with the attempt that wrote it. Not a record column (not in
/// [`crate::record::columns::COLUMNS`]): it exists only in ClickHouse, where rows of several
/// attempts can share a table; a Parquet batch is one attempt by its atomic rename.
pub const ATTEMPT_COLUMN: &str = "attempt";
/// The ClickHouse type of [`ATTEMPT_COLUMN`]: the attempt id's 64 random bits (shown as 16
/// hex digits, `leftPad(lower(hex(attempt)), 16, '0')` in SQL). Rows and markers written before the migration read 0
/// (the type's default; an attempt id is never 0), so an old batch shows all its rows, as
/// before. The claims table, older than the column, stores the id as its 16 hex digits.
pub const ATTEMPT_TYPE: &str = "UInt64";
const ATTEMPT_DOC: &str = "Attempt (run) that wrote the row, 64 random bits (16 hex digits in \
                           messages and import_batch_claims); a batch shows only the rows of \
                           the attempt its completion marker names (0: written before attempts \
                           were recorded)";

/// The primary key of the records table, and its sorting key without [`ATTEMPT_COLUMN`]: what
/// every release before attempts created.
pub const RECORDS_PRIMARY_KEY: &str = "cluster, batch, instance, db, key";

/// Default `--ttl-days`.
pub const DEFAULT_TTL_DAYS: u32 = 30;

/// Batch claims and completion markers whose insert is remembered for deduplication (see
/// `claim`).
pub const CLAIMS_DEDUP_WINDOW: u32 = 10_000;

/// The sharding key of the `Distributed` records table.
pub const SHARDING_KEY: &str = "cityHash64(cluster, instance, key)";

/// The rows of one batch: binds the cluster, then the batch timestamp in Unix nanoseconds
/// (`BatchTs::nanos`), so the comparison is exact to the nanosecond.
pub(crate) const BATCH_FILTER: &str =
    "cluster = ? AND batch = fromUnixTimestamp64Nano(toInt64(?), 'UTC')";

/// A table or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    View,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::View => "view",
        }
    }
}

/// One object of the schema, the statement that creates it and the columns rdbinsight needs
/// in it.
#[derive(Debug, Clone)]
pub struct SchemaObject {
    pub name: &'static str,
    pub kind: ObjectKind,
    /// `CREATE ... IF NOT EXISTS ...` (the view: `CREATE OR REPLACE VIEW`), without a
    /// trailing semicolon.
    pub ddl: String,
    /// What brings an object created by an earlier release up to date (`ALTER TABLE ... ADD
    /// COLUMN IF NOT EXISTS ...`), run after `ddl`; idempotent, so that running the whole script
    /// again changes nothing.
    pub migrate: Vec<String>,
    /// `(name, ClickHouse type)` of every column rdbinsight reads or writes.
    pub columns: Vec<(&'static str, String)>,
}

/// `name` as a ClickHouse identifier in backquotes.
pub fn quote_ident(name: &str) -> String {
    quoted(name, '`')
}

/// `name` as a ClickHouse string literal.
pub fn quote_str(s: &str) -> String {
    quoted(s, '\'')
}

/// `s` between two `quote`s, with `quote` and backslash escaped by a backslash (the one rule
/// ClickHouse has for identifiers and string literals).
fn quoted(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(quote);
    out
}

/// The ClickHouse type of a column.
pub fn clickhouse_type(column: &Column) -> String {
    let ty = match column.ty {
        ColumnType::Text | ColumnType::Bytes => "String",
        ColumnType::Label => "LowCardinality(String)",
        ColumnType::TimestampNanos => "DateTime64(9, 'UTC')",
        ColumnType::TimestampMillis => "DateTime64(3, 'UTC')",
        ColumnType::UInt8 => "UInt8",
        ColumnType::UInt16 => "UInt16",
        ColumnType::UInt64 => "UInt64",
    };
    if column.nullable {
        format!("Nullable({ty})")
    } else {
        ty.to_string()
    }
}

/// Columns of `import_batches_completed`: name, type, comment.
const MARKER_COLUMNS: [(&str, &str, &str); 3] = [
    ("cluster", "String", "Cluster name"),
    (
        "batch",
        "DateTime64(9, 'UTC')",
        "Batch timestamp of a dump that completed for every instance",
    ),
    (
        ATTEMPT_COLUMN,
        ATTEMPT_TYPE,
        "Attempt whose rows the batch shows: the first marker of a batch wins (0: written \
         before attempts were recorded; the batch shows all its rows)",
    ),
];

/// Columns of `import_batch_claims`: name, type, comment. `updated_at` is filled by the server.
const CLAIM_COLUMNS: [(&str, &str, &str); 11] = [
    ("cluster", "String", "Cluster name"),
    ("batch", "DateTime64(9, 'UTC')", "Batch timestamp"),
    (
        "seq",
        "UInt32",
        "Claim number within the batch; claims are exclusive per (cluster, batch, seq)",
    ),
    (
        "attempt",
        "String",
        "Attempt id (random, one per run) as 16 hex digits; the other tables store it as UInt64 \
         (leftPad(lower(hex(attempt)), 16, '0') there)",
    ),
    ("host", "String", "Host name of the attempt"),
    ("pid", "UInt32", "Process id of the attempt"),
    (
        "started_at",
        "DateTime64(3, 'UTC')",
        "When the attempt started (its clock)",
    ),
    (
        "state",
        "LowCardinality(String)",
        "running, completed, aborted, reclaimed (rows of a dead attempt removed), released, dropped",
    ),
    (
        "version",
        "UInt64",
        "Row version: the latest row of a claim is its state",
    ),
    (
        "updated_at",
        "DateTime64(3, 'UTC') DEFAULT now64(3)",
        "Server time of this row: the heartbeat",
    ),
    (
        "expiry_ms",
        "UInt64",
        "The attempt's --ch-claim-expiry in ms: every run judges this claim's heartbeat by it \
         (0: written before claims recorded it)",
    ),
];

/// Columns of `import_instance_summaries`: name, type, comment.
const SUMMARY_COLUMNS: [(&str, &str, &str); 5] = [
    ("cluster", "String", "Cluster name"),
    ("batch", "DateTime64(9, 'UTC')", "Batch timestamp"),
    ("instance", "String", "Instance"),
    (
        ATTEMPT_COLUMN,
        ATTEMPT_TYPE,
        "Attempt that wrote it; the batch's is the one its completion marker names",
    ),
    (
        "summary",
        "String",
        "What the dump learned about the instance besides its keys (memory model, RDB server, \
         used-mem, keyspace tables), as JSON",
    ),
];

/// The type without a `DEFAULT` clause (what `system.columns` shows).
fn bare_type(ty: &str) -> &str {
    ty.split(" DEFAULT ").next().unwrap_or(ty)
}

fn column_line(name: &str, ty: &str, doc: &str) -> String {
    format!("{:<14} {ty} COMMENT {}", quote_ident(name), quote_str(doc))
}

fn column_lines(columns: impl Iterator<Item = (String, String, String)>) -> String {
    let columns: Vec<_> = columns.collect();
    let mut out = String::new();
    for (i, (name, ty, doc)) in columns.iter().enumerate() {
        let sep = if i + 1 == columns.len() { "" } else { "," };
        out.push_str(&format!("    {}{sep}\n", column_line(name, ty, doc)));
    }
    out
}

/// The columns of the records tables: [`COLUMNS`], then [`ATTEMPT_COLUMN`].
fn records_columns() -> Vec<(&'static str, String, &'static str)> {
    COLUMNS
        .iter()
        .map(|c| (c.name, clickhouse_type(c), c.doc))
        .chain(std::iter::once((
            ATTEMPT_COLUMN,
            ATTEMPT_TYPE.to_string(),
            ATTEMPT_DOC,
        )))
        .collect()
}

fn record_columns() -> Vec<(&'static str, String)> {
    records_columns()
        .into_iter()
        .map(|(n, t, _)| (n, t))
        .collect()
}

/// `ADD COLUMN IF NOT EXISTS` clauses for the records columns an earlier release lacks: the
/// [`COLUMNS`] added later, then [`ATTEMPT_COLUMN`], in storage order.
fn records_added_columns() -> Vec<String> {
    COLUMNS
        .iter()
        .filter(|c| c.added_later)
        .map(|c| (c.name, clickhouse_type(c), c.doc))
        .chain(std::iter::once((
            ATTEMPT_COLUMN,
            ATTEMPT_TYPE.to_string(),
            ATTEMPT_DOC,
        )))
        .map(|(n, t, d)| format!("ADD COLUMN IF NOT EXISTS {}", column_line(n, &t, d)))
        .collect()
}

/// The sorting key of the records table: the primary key, then the attempt, so that rows of
/// two attempts never collapse into each other in a merge.
pub fn records_sorting_key() -> String {
    format!("{RECORDS_PRIMARY_KEY}, {ATTEMPT_COLUMN}")
}

/// The condition on `(cluster, batch, attempt)` that keeps the rows of the attempt each
/// completed batch's marker names (`markers`: the qualified markers table; `global`: `GLOBAL `
/// when the rows are read through a `Distributed` table). `marker_filter`: a `WHERE` on the
/// markers (e.g. [`BATCH_FILTER`]), or empty.
pub fn winning_rows(markers: &str, global: &str, marker_filter: &str) -> String {
    format!(
        "(cluster, batch, {ATTEMPT_COLUMN}) {global}IN (SELECT cluster, batch, {ATTEMPT_COLUMN} \
         FROM {markers}{marker_filter})"
    )
}

/// The schema objects, in creation order. `database`: qualify names with it (auto-create);
/// `None`: unqualified, for running in the current database (`misc clickhouse-schema`).
/// `on_cluster`: the sharded variant (see the module docs).
pub fn schema_objects(
    database: Option<&str>,
    ttl_days: u32,
    on_cluster: Option<&str>,
) -> Vec<SchemaObject> {
    let q = |name: &str| match database {
        Some(db) => format!("{}.{}", quote_ident(db), quote_ident(name)),
        None => quote_ident(name),
    };
    let on = match on_cluster {
        Some(c) => format!(" ON CLUSTER {}", quote_ident(c)),
        None => String::new(),
    };
    // A ReplacingMergeTree; with --on-cluster replicated under `path`.
    let engine = |path: &str, version: Option<&str>| match on_cluster {
        None => format!(
            "ReplacingMergeTree{}",
            version.map(|v| format!("({v})")).unwrap_or_default()
        ),
        Some(_) => format!(
            "ReplicatedReplacingMergeTree({}, '{{replica}}'{})",
            quote_str(path),
            version.map(|v| format!(", {v}")).unwrap_or_default()
        ),
    };
    let alter = |name: &str, clauses: &[String]| {
        format!(
            "ALTER TABLE {}{on}\n    {}",
            q(name),
            clauses.join(",\n    ")
        )
    };
    let ttl = format!("TTL toDateTime(batch) + INTERVAL {ttl_days} DAY");
    let records_cols = column_lines(
        records_columns()
            .into_iter()
            .map(|(n, t, d)| (n.to_string(), t, d.to_string())),
    );
    let stored_records = if on_cluster.is_some() {
        RECORDS_LOCAL_TABLE
    } else {
        RECORDS_TABLE
    };
    let records_comment = "rdbinsight: one row per Redis key per import batch and attempt; query \
                           redis_records_view for the latest completed batch";
    let sorting_key = records_sorting_key();
    let mut objects = Vec::new();
    // The sorting key gains the attempt in the ALTER that adds it: the one way ClickHouse
    // lets a key column be added (a no-op when the key already has it).
    let mut stored_migration = records_added_columns();
    stored_migration.push(format!("MODIFY ORDER BY ({sorting_key})"));
    objects.push(SchemaObject {
        name: stored_records,
        kind: ObjectKind::Table,
        ddl: format!(
            "CREATE TABLE IF NOT EXISTS {table}{on}\n(\n{records_cols})\n\
             ENGINE = {engine}\n\
             PARTITION BY toYYYYMMDD(batch)\n\
             PRIMARY KEY ({RECORDS_PRIMARY_KEY})\n\
             ORDER BY ({sorting_key})\n\
             {ttl}\n\
             COMMENT {comment}",
            table = q(stored_records),
            engine = engine("/clickhouse/tables/{shard}/{database}/{table}", None),
            comment = quote_str(if on_cluster.is_some() {
                "rdbinsight: this shard's rows of redis_records_raw (the Distributed table)"
            } else {
                records_comment
            }),
        ),
        migrate: vec![alter(stored_records, &stored_migration)],
        columns: record_columns(),
    });
    if let Some(cluster) = on_cluster {
        let db_arg = match database {
            Some(db) => quote_str(db),
            None => "currentDatabase()".to_string(),
        };
        objects.push(SchemaObject {
            name: RECORDS_TABLE,
            kind: ObjectKind::Table,
            ddl: format!(
                "CREATE TABLE IF NOT EXISTS {table}{on}\n(\n{records_cols})\n\
                 ENGINE = Distributed({cluster}, {db_arg}, {local}, {SHARDING_KEY})\n\
                 COMMENT {comment}",
                table = q(RECORDS_TABLE),
                cluster = quote_str(cluster),
                local = quote_str(RECORDS_LOCAL_TABLE),
                comment = quote_str(records_comment),
            ),
            migrate: vec![alter(RECORDS_TABLE, &records_added_columns())],
            columns: record_columns(),
        });
    }
    // Replicated tables deduplicate through Keeper (replicated_deduplication_window); the
    // others need the setting.
    let dedup = on_cluster
        .is_none()
        .then(|| format!("non_replicated_deduplication_window = {CLAIMS_DEDUP_WINDOW}"));
    // The markers, claims and summaries tables: small, one engine path for all shards.
    // `added`: the columns an earlier release lacks; `dedup`: whether inserts are deduplicated.
    let small_table = |name: &'static str,
                       cols: &[(&'static str, &'static str, &'static str)],
                       added: &[&str],
                       order_by: &str,
                       version: Option<&str>,
                       dedup_inserts: bool,
                       comment: &str| {
        let setting = dedup.as_ref().filter(|_| dedup_inserts);
        let mut migrate = Vec::new();
        let clauses: Vec<String> = cols
            .iter()
            .filter(|(n, _, _)| added.contains(n))
            .map(|(n, t, d)| format!("ADD COLUMN IF NOT EXISTS {}", column_line(n, t, d)))
            .collect();
        if !clauses.is_empty() {
            migrate.push(alter(name, &clauses));
        }
        if let Some(s) = setting {
            migrate.push(alter(name, &[format!("MODIFY SETTING {s}")]));
        }
        SchemaObject {
            name,
            kind: ObjectKind::Table,
            ddl: format!(
                "CREATE TABLE IF NOT EXISTS {table}{on}\n(\n{cols})\n\
                 ENGINE = {engine}\n\
                 ORDER BY ({order_by})\n\
                 {ttl}{settings}\n\
                 COMMENT {comment}",
                table = q(name),
                cols = column_lines(cols.iter().map(|(n, t, d)| (
                    n.to_string(),
                    t.to_string(),
                    d.to_string()
                ))),
                engine = engine("/clickhouse/tables/all/{database}/{table}", version),
                settings = setting
                    .map(|s| format!("\nSETTINGS {s}"))
                    .unwrap_or_default(),
                comment = quote_str(comment),
            ),
            migrate,
            // The types rdbinsight checks, without the defaults.
            columns: cols
                .iter()
                .map(|(n, t, _)| (*n, bare_type(t).to_string()))
                .collect(),
        }
    };
    objects.push(small_table(
        BATCHES_TABLE,
        &MARKER_COLUMNS,
        &[ATTEMPT_COLUMN],
        "cluster, batch",
        None,
        true,
        "rdbinsight: import batches whose dump completed, and the attempt each shows; written \
         last, after all records; the first marker of a batch wins",
    ));
    objects.push(small_table(
        CLAIMS_TABLE,
        &CLAIM_COLUMNS,
        &["expiry_ms"],
        "cluster, batch, seq",
        Some("version"),
        true,
        "rdbinsight: which attempt owns which import batch; one row per claim and heartbeat",
    ));
    objects.push(small_table(
        SUMMARIES_TABLE,
        &SUMMARY_COLUMNS,
        &[],
        "cluster, batch, instance, attempt",
        None,
        false,
        "rdbinsight: what each attempt learned about each instance besides its keys",
    ));
    let global = if on_cluster.is_some() { "GLOBAL " } else { "" };
    let batches = q(BATCHES_TABLE);
    objects.push(SchemaObject {
        name: VIEW,
        kind: ObjectKind::View,
        // Replaced, not created if missing: it holds no data, and one created by an earlier
        // release shows every attempt's rows.
        ddl: format!(
            "CREATE OR REPLACE VIEW {view}{on} AS\n\
             SELECT *\n\
             FROM {records}\n\
             WHERE {rows}",
            view = q(VIEW),
            records = q(RECORDS_TABLE),
            rows = winning_rows(
                &batches,
                global,
                &format!(
                    "\n    WHERE (cluster, batch) IN (\n        \
                     SELECT cluster, max(batch)\n        \
                     FROM {batches}\n        \
                     GROUP BY cluster\n    )\n"
                )
            ),
        ),
        migrate: Vec::new(),
        columns: record_columns(),
    });
    objects
}

/// Whether a view created by `create_query` (`system.tables.create_table_query`) reads only
/// the rows of each batch's winning attempt (views of earlier releases read every row).
pub fn view_is_current(create_query: &str) -> bool {
    // The filter, not the column list (a view of an earlier release created over a migrated
    // table lists `attempt` among its columns).
    create_query.contains(&format!("(cluster, batch, {ATTEMPT_COLUMN}) "))
}

/// The DDL script printed by `rdbinsight misc clickhouse-schema`.
pub fn schema_sql(ttl_days: u32, on_cluster: Option<&str>) -> String {
    let mut out = String::from(
        "-- rdbinsight ClickHouse schema. Run it in the database given as ?database= in\n\
         -- `into-clickhouse --url`, e.g.:\n\
         --   clickhouse-client --database redis --multiquery < schema.sql\n\
         -- (or let `into-clickhouse --auto-create-tables` run it). It is idempotent: on an\n\
         -- existing database it only adds what is missing (CREATE ... IF NOT EXISTS), migrates\n\
         -- tables of an earlier release (ALTER TABLE ... ADD COLUMN IF NOT EXISTS; the records\n\
         -- table's sorting key gains the attempt column) and replaces the view (it holds no\n\
         -- data). Batches written before the migration stay readable as they are.\n",
    );
    out.push_str(&format!(
        "-- Rows are kept {ttl_days} days after their batch timestamp (TTL).\n"
    ));
    if let Some(cluster) = on_cluster {
        out.push_str(&format!(
            "-- Sharded over the ClickHouse cluster {cluster}: needs Keeper (ON CLUSTER DDL,\n\
             -- Replicated tables) and the {{shard}} and {{replica}} macros on every server.\n\
             -- Rows live in {RECORDS_LOCAL_TABLE} on each shard; {RECORDS_TABLE} is the\n\
             -- Distributed table over them (sharding key {SHARDING_KEY}).\n"
        ));
    }
    for object in schema_objects(None, ttl_days, on_cluster) {
        for statement in std::iter::once(&object.ddl).chain(&object.migrate) {
            out.push('\n');
            out.push_str(statement);
            out.push_str(";\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b\\c"), "`a\\`b\\\\c`");
        assert_eq!(quote_str("it's"), "'it\\'s'");
    }

    #[test]
    fn ddl_shape() {
        let objects = schema_objects(Some("my db"), 7, None);
        let names: Vec<_> = objects.iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                RECORDS_TABLE,
                BATCHES_TABLE,
                CLAIMS_TABLE,
                SUMMARIES_TABLE,
                VIEW
            ],
            "tables before the view"
        );
        assert!(objects[0].ddl.contains("`my db`.`redis_records_raw`"));
        assert!(objects[0].ddl.contains("INTERVAL 7 DAY"));
        assert!(
            objects[2]
                .ddl
                .contains("non_replicated_deduplication_window = 10000")
        );
        assert!(
            objects[2]
                .ddl
                .contains("ENGINE = ReplacingMergeTree(version)")
        );

        assert!(
            objects[1]
                .ddl
                .contains("non_replicated_deduplication_window = 10000"),
            "markers deduplicate too"
        );
        assert!(objects[0].ddl.contains(
            "PRIMARY KEY (cluster, batch, instance, db, key)\nORDER BY (cluster, batch, instance, db, key, attempt)"
        ));
        // The migration of a records table of an earlier release: the later columns, then the
        // attempt with the sorting key in the same ALTER.
        assert_eq!(objects[0].migrate.len(), 1);
        let m = &objects[0].migrate[0];
        assert!(
            m.starts_with("ALTER TABLE `my db`.`redis_records_raw`\n"),
            "{m}"
        );
        let mem = m
            .find("ADD COLUMN IF NOT EXISTS `mem_size`")
            .expect("mem_size");
        let attempt = m
            .find("ADD COLUMN IF NOT EXISTS `attempt`")
            .expect("attempt");
        let key = m
            .find("MODIFY ORDER BY (cluster, batch, instance, db, key, attempt)")
            .expect("key");
        assert!(mem < attempt && attempt < key, "{m}");
        assert!(objects[1].migrate[0].contains("ADD COLUMN IF NOT EXISTS `attempt`"));
        assert!(
            objects[1].migrate[1].contains("MODIFY SETTING non_replicated_deduplication_window")
        );
        assert!(objects[2].migrate[0].contains("ADD COLUMN IF NOT EXISTS `expiry_ms`"));
        assert!(objects[3].migrate.is_empty());
        assert!(objects[4].ddl.starts_with("CREATE OR REPLACE VIEW"));
        assert!(view_is_current(&objects[4].ddl));
        assert!(!view_is_current(
            "CREATE VIEW d.v (`cluster` String, `attempt` String) AS SELECT * FROM d.r \
             WHERE (cluster, batch) IN (SELECT cluster, max(batch) FROM d.m GROUP BY cluster)"
        ));
        assert!(objects[4].ddl.contains(
            "WHERE (cluster, batch, attempt) IN (SELECT cluster, batch, attempt FROM `my db`.`import_batches_completed`"
        ));
        assert_eq!(objects[0].columns.len(), COLUMNS.len() + 1);
        assert!(
            objects[2]
                .columns
                .contains(&("updated_at", "DateTime64(3, 'UTC')".to_string()))
        );
        let sql = schema_sql(30, None);
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS `redis_records_raw`"));
        assert!(sql.contains("`key`          String COMMENT 'Key name, raw bytes',"));
        assert!(sql.contains("`type`         LowCardinality(String)"));
        assert!(sql.contains("`expire_at`    Nullable(DateTime64(3, 'UTC'))"));
        assert!(sql.contains("`redis_slot`   Nullable(UInt16) COMMENT"));
        assert!(!sql.contains("ON CLUSTER"));
        // A comment per column of every table, and one per table; the migrations repeat the
        // added columns' comments.
        let added = COLUMNS.iter().filter(|c| c.added_later).count() + 1 + 1 + 1;
        assert_eq!(
            sql.matches("COMMENT").count(),
            COLUMNS.len()
                + 1
                + MARKER_COLUMNS.len()
                + CLAIM_COLUMNS.len()
                + SUMMARY_COLUMNS.len()
                + 4
                + added
        );
    }

    #[test]
    fn on_cluster_ddl() {
        let objects = schema_objects(Some("db"), 30, Some("prod"));
        let names: Vec<_> = objects.iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                RECORDS_LOCAL_TABLE,
                RECORDS_TABLE,
                BATCHES_TABLE,
                CLAIMS_TABLE,
                SUMMARIES_TABLE,
                VIEW
            ]
        );
        for o in &objects {
            assert!(o.ddl.contains(" ON CLUSTER `prod`"), "{}", o.ddl);
            for m in &o.migrate {
                assert!(m.contains(" ON CLUSTER `prod`"), "{m}");
            }
        }
        // The Distributed table gains the columns too, without a sorting key.
        let m = &objects[1].migrate[0];
        assert!(m.contains("ADD COLUMN IF NOT EXISTS `attempt`"), "{m}");
        assert!(!m.contains("ORDER BY"), "{m}");
        assert!(objects[0].migrate[0].contains("MODIFY ORDER BY"));
        // Replicated small tables deduplicate through Keeper: no setting to migrate.
        assert_eq!(objects[2].migrate.len(), 1);
        assert!(objects[0].ddl.contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
        ));
        assert!(objects[1].ddl.contains(
            "ENGINE = Distributed('prod', 'db', 'redis_records_raw_local', cityHash64(cluster, instance, key))"
        ));
        assert!(objects[3].ddl.contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}', version)"
        ));
        assert!(
            !objects[3]
                .ddl
                .contains("non_replicated_deduplication_window")
        );
        assert!(
            objects[5]
                .ddl
                .contains("(cluster, batch, attempt) GLOBAL IN (")
        );
        let sql = schema_sql(30, Some("prod"));
        assert!(sql.contains("Distributed('prod', currentDatabase(), 'redis_records_raw_local'"));
    }
}
