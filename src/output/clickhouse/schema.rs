//! The ClickHouse schema: two tables and a view.
//!
//! * `redis_records_raw`: one row per key per import batch (ReplacingMergeTree, partitioned by
//!   batch day, kept `ttl_days` days).
//! * `import_batches_completed`: one `(cluster, batch)` row per *completed* dump, written by
//!   `finalize_batch` after every instance succeeded.
//! * `redis_records_view`: `redis_records_raw` restricted to each cluster's latest completed
//!   batch, so a dump that failed (or is still running) is never visible through it.
//!
//! `rdbinsight misc clickhouse-schema` prints [`schema_sql`]; `--auto-create-tables` runs the
//! same statements, qualified with the URL's database. The columns of `redis_records_raw` are
//! derived from [`crate::record::columns::COLUMNS`].

use crate::record::columns::{COLUMNS, Column, ColumnType};

/// The records table.
pub const RECORDS_TABLE: &str = "redis_records_raw";
/// The completed-batch markers.
pub const BATCHES_TABLE: &str = "import_batches_completed";
/// The view over the latest completed batch of each cluster.
pub const VIEW: &str = "redis_records_view";

/// Default `--ttl-days`.
pub const DEFAULT_TTL_DAYS: u32 = 30;

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

/// One object of the schema and the statement that creates it.
#[derive(Debug, Clone)]
pub struct SchemaObject {
    pub name: &'static str,
    pub kind: ObjectKind,
    /// `CREATE ... IF NOT EXISTS ...`, without a trailing semicolon.
    pub ddl: String,
}

/// `name` as a ClickHouse identifier in backquotes.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        match c {
            '`' => out.push_str("\\`"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

/// `name` as a ClickHouse string literal.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
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

/// The schema objects, in creation order. `database`: qualify names with it (auto-create);
/// `None`: unqualified, for running in the current database (`misc clickhouse-schema`).
pub fn schema_objects(database: Option<&str>, ttl_days: u32) -> Vec<SchemaObject> {
    let q = |name: &str| match database {
        Some(db) => format!("{}.{}", quote_ident(db), quote_ident(name)),
        None => quote_ident(name),
    };
    let mut columns = String::new();
    for (i, column) in COLUMNS.iter().enumerate() {
        let sep = if i + 1 == COLUMNS.len() { "" } else { "," };
        columns.push_str(&format!(
            "    {:<14} {} COMMENT {}{sep}\n",
            quote_ident(column.name),
            clickhouse_type(column),
            quote_str(column.doc)
        ));
    }
    let records = format!(
        "CREATE TABLE IF NOT EXISTS {table}\n(\n{columns})\n\
         ENGINE = ReplacingMergeTree\n\
         PARTITION BY toYYYYMMDD(batch)\n\
         ORDER BY (cluster, batch, instance, db, key)\n\
         TTL toDateTime(batch) + INTERVAL {ttl_days} DAY\n\
         COMMENT 'rdbinsight: one row per Redis key per import batch; query redis_records_view \
         for the latest completed batch'",
        table = q(RECORDS_TABLE),
    );
    let batches = format!(
        "CREATE TABLE IF NOT EXISTS {table}\n(\n    \
         `cluster` String COMMENT 'Cluster name',\n    \
         `batch` DateTime64(9, 'UTC') COMMENT 'Batch timestamp of a dump that completed for every instance'\n)\n\
         ENGINE = ReplacingMergeTree\n\
         ORDER BY (cluster, batch)\n\
         TTL toDateTime(batch) + INTERVAL {ttl_days} DAY\n\
         COMMENT 'rdbinsight: import batches whose dump completed; written last, after all records'",
        table = q(BATCHES_TABLE),
    );
    let view = format!(
        "CREATE VIEW IF NOT EXISTS {view} AS\n\
         SELECT *\n\
         FROM {records}\n\
         WHERE (cluster, batch) IN (\n    \
         SELECT cluster, max(batch)\n    \
         FROM {batches}\n    \
         GROUP BY cluster\n)",
        view = q(VIEW),
        records = q(RECORDS_TABLE),
        batches = q(BATCHES_TABLE),
    );
    vec![
        SchemaObject {
            name: RECORDS_TABLE,
            kind: ObjectKind::Table,
            ddl: records,
        },
        SchemaObject {
            name: BATCHES_TABLE,
            kind: ObjectKind::Table,
            ddl: batches,
        },
        SchemaObject {
            name: VIEW,
            kind: ObjectKind::View,
            ddl: view,
        },
    ]
}

/// The DDL script printed by `rdbinsight misc clickhouse-schema`.
pub fn schema_sql(ttl_days: u32) -> String {
    let mut out = String::from(
        "-- rdbinsight ClickHouse schema. Run it in the database given as ?database= in\n\
         -- `into-clickhouse --url`, e.g.:\n\
         --   clickhouse-client --database redis --multiquery < schema.sql\n\
         -- (or let `into-clickhouse --auto-create-tables` create it).\n",
    );
    out.push_str(&format!(
        "-- Rows are kept {ttl_days} days after their batch timestamp (TTL).\n"
    ));
    for object in schema_objects(None, ttl_days) {
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
        let objects = schema_objects(Some("my db"), 7);
        assert_eq!(objects.len(), 3);
        assert!(objects[0].ddl.contains("`my db`.`redis_records_raw`"));
        assert!(objects[0].ddl.contains("INTERVAL 7 DAY"));
        assert!(
            objects[2]
                .ddl
                .contains("`my db`.`import_batches_completed`")
        );
        let sql = schema_sql(30);
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS `redis_records_raw`"));
        assert!(sql.contains("`key`          String COMMENT 'Key name, raw bytes',"));
        assert!(sql.contains("`type`         LowCardinality(String)"));
        assert!(sql.contains("`expire_at`    Nullable(DateTime64(3, 'UTC'))"));
        assert!(sql.contains("`redis_slot`   Nullable(UInt16) COMMENT"));
        // A comment per column of both tables, and one per table.
        assert_eq!(sql.matches("COMMENT").count(), COLUMNS.len() + 2 + 2);
    }
}
