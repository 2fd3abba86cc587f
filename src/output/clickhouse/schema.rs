//! The ClickHouse schema: three tables and a view (plus a local table per shard with
//! `--on-cluster`).
//!
//! * `redis_records_raw`: one row per key per import batch (ReplacingMergeTree, partitioned by
//!   batch day, kept `ttl_days` days).
//! * `import_batches_completed`: one `(cluster, batch)` row per *completed* dump, written by
//!   `finalize_batch` after every instance succeeded.
//! * `import_batch_claims`: which attempt owns which batch (see `claim`): one row per claim and
//!   per heartbeat, the latest `version` of a `(cluster, batch, seq)` being its state. Insert
//!   deduplication (`non_replicated_deduplication_window`) is what makes a claim exclusive.
//! * `redis_records_view`: `redis_records_raw` restricted to each cluster's latest completed
//!   batch, so a dump that failed (or is still running) is never visible through it.
//!
//! With `--on-cluster NAME` every statement is `ON CLUSTER NAME`, and:
//! * the rows live in `redis_records_raw_local` (ReplicatedReplacingMergeTree, one replica set
//!   per shard: `/clickhouse/tables/{shard}/{database}/{table}`); `redis_records_raw` is a
//!   `Distributed` table over it, sharded by `cityHash64(cluster, instance, key)`, so readers
//!   and users' SQL keep the same name;
//! * `import_batches_completed` and `import_batch_claims` are small ReplicatedReplacingMergeTree
//!   tables with one replica on every node (a path without `{shard}`), so each node sees every
//!   marker and claim, and claim deduplication is cluster-wide (through Keeper);
//! * the view reads the `Distributed` table and filters with `GLOBAL IN` over the markers.
//!
//! `rdbinsight misc clickhouse-schema [--on-cluster NAME]` prints [`schema_sql`];
//! `--auto-create-tables` runs the same statements, qualified with the URL's database. The
//! columns of the records tables are derived from [`crate::record::columns::COLUMNS`].

use crate::record::columns::{COLUMNS, Column, ColumnType};

/// The records table (with `--on-cluster`: the `Distributed` table).
pub const RECORDS_TABLE: &str = "redis_records_raw";
/// With `--on-cluster`: the per-shard table under [`RECORDS_TABLE`].
pub const RECORDS_LOCAL_TABLE: &str = "redis_records_raw_local";
/// The completed-batch markers.
pub const BATCHES_TABLE: &str = "import_batches_completed";
/// The batch claims of running, finished and dead attempts.
pub const CLAIMS_TABLE: &str = "import_batch_claims";
/// The view over the latest completed batch of each cluster.
pub const VIEW: &str = "redis_records_view";

/// Default `--ttl-days`.
pub const DEFAULT_TTL_DAYS: u32 = 30;

/// Batch claims whose insert is remembered for deduplication (see `claim`).
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
    /// `CREATE ... IF NOT EXISTS ...`, without a trailing semicolon.
    pub ddl: String,
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
const MARKER_COLUMNS: [(&str, &str, &str); 2] = [
    ("cluster", "String", "Cluster name"),
    (
        "batch",
        "DateTime64(9, 'UTC')",
        "Batch timestamp of a dump that completed for every instance",
    ),
];

/// Columns of `import_batch_claims`: name, type, comment. `updated_at` is filled by the server.
const CLAIM_COLUMNS: [(&str, &str, &str); 10] = [
    ("cluster", "String", "Cluster name"),
    ("batch", "DateTime64(9, 'UTC')", "Batch timestamp"),
    (
        "seq",
        "UInt32",
        "Claim number within the batch; claims are exclusive per (cluster, batch, seq)",
    ),
    ("attempt", "String", "Attempt id (random, one per run)"),
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
];

fn column_lines(columns: impl Iterator<Item = (String, String, String)>) -> String {
    let columns: Vec<_> = columns.collect();
    let mut out = String::new();
    for (i, (name, ty, doc)) in columns.iter().enumerate() {
        let sep = if i + 1 == columns.len() { "" } else { "," };
        out.push_str(&format!(
            "    {:<14} {ty} COMMENT {}{sep}\n",
            quote_ident(name),
            quote_str(doc)
        ));
    }
    out
}

fn record_columns() -> Vec<(&'static str, String)> {
    COLUMNS
        .iter()
        .map(|c| (c.name, clickhouse_type(c)))
        .collect()
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
    let ttl = format!("TTL toDateTime(batch) + INTERVAL {ttl_days} DAY");
    let records_cols = column_lines(
        COLUMNS
            .iter()
            .map(|c| (c.name.to_string(), clickhouse_type(c), c.doc.to_string())),
    );
    let stored_records = if on_cluster.is_some() {
        RECORDS_LOCAL_TABLE
    } else {
        RECORDS_TABLE
    };
    let records_comment = "rdbinsight: one row per Redis key per import batch; query \
                           redis_records_view for the latest completed batch";
    let mut objects = Vec::new();
    objects.push(SchemaObject {
        name: stored_records,
        kind: ObjectKind::Table,
        ddl: format!(
            "CREATE TABLE IF NOT EXISTS {table}{on}\n(\n{records_cols})\n\
             ENGINE = {engine}\n\
             PARTITION BY toYYYYMMDD(batch)\n\
             ORDER BY (cluster, batch, instance, db, key)\n\
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
            columns: record_columns(),
        });
    }
    // The markers and claims tables: small, one engine path for all shards.
    let small_table = |name: &'static str,
                       cols: &[(&'static str, &'static str, &'static str)],
                       order_by: &str,
                       version: Option<&str>,
                       settings: &str,
                       comment: &str| SchemaObject {
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
            comment = quote_str(comment),
        ),
        // The types rdbinsight checks, without the defaults.
        columns: cols
            .iter()
            .map(|(n, t, _)| (*n, t.trim_end_matches(" DEFAULT now64(3)").to_string()))
            .collect(),
    };
    objects.push(small_table(
        BATCHES_TABLE,
        &MARKER_COLUMNS,
        "cluster, batch",
        None,
        "",
        "rdbinsight: import batches whose dump completed; written last, after all records",
    ));
    let dedup = if on_cluster.is_some() {
        // Replicated tables deduplicate through Keeper (replicated_deduplication_window).
        String::new()
    } else {
        format!("\nSETTINGS non_replicated_deduplication_window = {CLAIMS_DEDUP_WINDOW}")
    };
    objects.push(small_table(
        CLAIMS_TABLE,
        &CLAIM_COLUMNS,
        "cluster, batch, seq",
        Some("version"),
        &dedup,
        "rdbinsight: which attempt owns which import batch; one row per claim and heartbeat",
    ));
    let global = if on_cluster.is_some() { "GLOBAL " } else { "" };
    objects.push(SchemaObject {
        name: VIEW,
        kind: ObjectKind::View,
        ddl: format!(
            "CREATE VIEW IF NOT EXISTS {view}{on} AS\n\
             SELECT *\n\
             FROM {records}\n\
             WHERE (cluster, batch) {global}IN (\n    \
             SELECT cluster, max(batch)\n    \
             FROM {batches}\n    \
             GROUP BY cluster\n)",
            view = q(VIEW),
            records = q(RECORDS_TABLE),
            batches = q(BATCHES_TABLE),
        ),
        columns: record_columns(),
    });
    objects
}

/// The DDL script printed by `rdbinsight misc clickhouse-schema`.
pub fn schema_sql(ttl_days: u32, on_cluster: Option<&str>) -> String {
    let mut out = String::from(
        "-- rdbinsight ClickHouse schema. Run it in the database given as ?database= in\n\
         -- `into-clickhouse --url`, e.g.:\n\
         --   clickhouse-client --database redis --multiquery < schema.sql\n\
         -- (or let `into-clickhouse --auto-create-tables` create it). Every statement is\n\
         -- CREATE ... IF NOT EXISTS: running it again on an existing database only adds what\n\
         -- is missing.\n",
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
        out.push('\n');
        out.push_str(&object.ddl);
        out.push_str(";\n");
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
            [RECORDS_TABLE, BATCHES_TABLE, CLAIMS_TABLE, VIEW],
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
            objects[3]
                .ddl
                .contains("`my db`.`import_batches_completed`")
        );
        assert_eq!(objects[0].columns.len(), COLUMNS.len());
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
        // A comment per column of every table, and one per table.
        assert_eq!(
            sql.matches("COMMENT").count(),
            COLUMNS.len() + MARKER_COLUMNS.len() + CLAIM_COLUMNS.len() + 3
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
                VIEW
            ]
        );
        for o in &objects {
            assert!(o.ddl.contains(" ON CLUSTER `prod`"), "{}", o.ddl);
        }
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
        assert!(objects[4].ddl.contains("(cluster, batch) GLOBAL IN ("));
        let sql = schema_sql(30, Some("prod"));
        assert!(sql.contains("Distributed('prod', currentDatabase(), 'redis_records_raw_local'"));
    }
}
