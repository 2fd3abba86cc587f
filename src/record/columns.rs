//! The one list of stored columns: name, logical type, nullability and meaning.
//!
//! A stored row is [`super::WriteContext`] + [`super::Record`]. Every store derives its schema
//! from [`COLUMNS`]: the Parquet Arrow schema (`output::parquet::schema`), the ClickHouse DDL and
//! row (`output::clickhouse::schema`), the JSONL field order (`output::jsonl`), and the report's
//! readers read the columns back by these names. Tests in each of those modules check them
//! against this list, so a column cannot be added, renamed or retyped in one place only.
//!
//! The order is the storage order and part of the output contract.
//!
//! Not here: storage columns of one store that are no fact about a key. The ClickHouse output
//! adds one, `attempt` (`output::clickhouse::schema::ATTEMPT_COLUMN`: which run wrote the
//! row, since rows of several attempts of a batch can share its table and the batch's marker
//! names the one shown). Parquet needs none: a batch there is one attempt by its atomic
//! rename.

/// The logical type of a column; each store maps it to its own physical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// UTF-8 text with many distinct values (Arrow `Utf8`, ClickHouse `String`).
    Text,
    /// UTF-8 text with a handful of distinct values (Arrow `Utf8`, ClickHouse
    /// `LowCardinality(String)`).
    Label,
    /// Arbitrary bytes (Arrow `Binary`, ClickHouse `String` holding the raw bytes).
    Bytes,
    /// Unix nanoseconds, UTC (Arrow `Timestamp(ns, UTC)`, ClickHouse `DateTime64(9, 'UTC')`).
    TimestampNanos,
    /// Unix milliseconds, UTC (Arrow `Timestamp(ms, UTC)`, ClickHouse `DateTime64(3, 'UTC')`).
    TimestampMillis,
    UInt8,
    UInt16,
    UInt64,
}

/// One stored column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    /// What the column means (ClickHouse column comments, docs).
    pub doc: &'static str,
    /// Added after the first release: stores written before it lack the column, and readers
    /// treat it as NULL there (the ClickHouse migration adds every such column with
    /// `ADD COLUMN IF NOT EXISTS`, see `output::clickhouse::schema`).
    pub added_later: bool,
}

const fn col(name: &'static str, ty: ColumnType, nullable: bool, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        nullable,
        doc,
        added_later: false,
    }
}

const fn later(column: Column) -> Column {
    Column {
        added_later: true,
        ..column
    }
}

/// The stored columns, in storage order: every store's record columns (the ClickHouse records
/// table appends its storage column `attempt`; see the module docs).
pub const COLUMNS: [Column; 15] = [
    col(
        "cluster",
        ColumnType::Text,
        false,
        "Cluster name (--cluster, or the Codis product name)",
    ),
    col(
        "batch",
        ColumnType::TimestampNanos,
        false,
        "Import batch timestamp: one value per dump, shared by all its instances",
    ),
    col(
        "instance",
        ColumnType::Text,
        false,
        "Instance the key came from (host:port, or --instance)",
    ),
    col(
        "db",
        ColumnType::UInt64,
        false,
        "Database number (SELECT index)",
    ),
    col("key", ColumnType::Bytes, false, "Key name, raw bytes"),
    col(
        "type",
        ColumnType::Label,
        false,
        "Data type: string, list, set, zset, hash, stream, module",
    ),
    col(
        "member_count",
        ColumnType::UInt64,
        false,
        "Elements: 1 for a string; list/set/zset elements; hash fields; stream entries; 0 for a module",
    ),
    col(
        "rdb_size",
        ColumnType::UInt64,
        false,
        "Bytes the key takes in the RDB (type byte, key and value, without expiry/LRU/LFU opcodes)",
    ),
    col(
        "encoding",
        ColumnType::Label,
        false,
        "On-disk encoding, e.g. raw, int, list_pack, quick_list2, skip_list",
    ),
    col(
        "expire_at",
        ColumnType::TimestampMillis,
        true,
        "Absolute expiry time; NULL when the key has no TTL",
    ),
    col(
        "idle_seconds",
        ColumnType::UInt64,
        true,
        "LRU idle time in seconds; NULL unless maxmemory-policy is an LRU policy",
    ),
    col(
        "freq",
        ColumnType::UInt8,
        true,
        "LFU access counter; NULL unless maxmemory-policy is an LFU policy",
    ),
    col(
        "codis_slot",
        ColumnType::UInt16,
        true,
        "Codis slot (crc32(key) % 1024); NULL unless the source is a Codis cluster",
    ),
    col(
        "redis_slot",
        ColumnType::UInt16,
        true,
        "Redis Cluster slot (CRC16 of the hash tag % 16384); NULL unless the source is a Redis Cluster",
    ),
    later(col(
        "mem_size",
        ColumnType::UInt64,
        true,
        "Bytes the allocator holds for this key right after a server loaded the RDB (robj, key, \
         value structures, main-dict and expires-dict entries, each rounded to the allocator's \
         size class; not the keyspace bucket arrays, fragmentation or live history); NULL for \
         module values",
    )),
];

/// The column names, in storage order.
pub fn names() -> impl ExactSizeIterator<Item = &'static str> {
    COLUMNS.iter().map(|c| c.name)
}

/// The column called `name`.
pub fn by_name(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_context_comes_first() {
        let names: Vec<_> = names().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        // WriteContext's three columns lead; the per-key columns follow in Record's order.
        assert_eq!(&names[..3], ["cluster", "batch", "instance"]);
        assert_eq!(by_name("key").map(|c| c.ty), Some(ColumnType::Bytes));
        assert!(by_name("nope").is_none());
        // Exactly the optional facts are nullable.
        let nullable: Vec<_> = COLUMNS
            .iter()
            .filter(|c| c.nullable)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            nullable,
            [
                "expire_at",
                "idle_seconds",
                "freq",
                "codis_slot",
                "redis_slot",
                "mem_size"
            ]
        );
    }
}
