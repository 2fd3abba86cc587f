//! The one data model everything shares: a [`Record`] describes one key of an RDB snapshot.
//!
//! The parser fills the per-key fields; the dump pipeline adds the per-instance context
//! ([`WriteContext`]: cluster, batch timestamp, instance) when it hands a record to a writer.
//! A stored row is therefore `WriteContext` + `Record`, with the columns of
//! [`columns::COLUMNS`]. [`BatchContext`] (cluster, batch) names one import batch, for the
//! dump and the report. [`BatchTs`] owns the batch timestamp and its renderings.

mod batch;
pub mod columns;
pub mod expire;

use std::fmt;
use std::sync::Arc;

pub use batch::{BatchTs, BatchTsError};

/// The Redis data type of a key, as reported in the `type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    String,
    List,
    Set,
    ZSet,
    Hash,
    Stream,
    Module,
}

impl RecordType {
    /// Every type, in the order of the `type` column's documentation.
    pub const ALL: [RecordType; 7] = [
        RecordType::String,
        RecordType::List,
        RecordType::Set,
        RecordType::ZSet,
        RecordType::Hash,
        RecordType::Stream,
        RecordType::Module,
    ];

    /// The type whose column value is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The column value (`string list set zset hash stream module`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordType::String => "string",
            RecordType::List => "list",
            RecordType::Set => "set",
            RecordType::ZSet => "zset",
            RecordType::Hash => "hash",
            RecordType::Stream => "stream",
            RecordType::Module => "module",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The on-disk encoding of a value, derived from the RDB type byte (for strings: from the
/// value's length prefix). The names match the established rdbinsight output so existing SQL
/// keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Plain string, or a hashtable-encoded set/hash (types 0, 2, 4).
    Raw,
    /// Integer-encoded string (0xC0/0xC1/0xC2).
    Int,
    /// LZF-compressed string.
    Lzf,
    /// Linked list (type 1).
    List,
    /// Ziplist (types 10, 12, 13).
    ZipList,
    /// Quicklist of ziplists (type 14).
    QuickList,
    /// Quicklist of listpacks / plain nodes (type 18).
    QuickList2,
    /// Intset (type 11).
    IntSet,
    /// Listpack (types 16, 17, 20).
    ListPack,
    /// Skiplist zset (types 3, 5).
    SkipList,
    /// Zipmap (type 9).
    ZipMap,
    /// Hash with field TTLs stored as a hashtable (type 24, pre-GA 22).
    Metadata,
    /// Listpack hash with field TTLs (type 25, pre-GA 23).
    ListPackEx,
    /// Valkey 9 hash with per-field expiry (type 22 under the `VALKEY` magic).
    Hash2,
    /// Stream v1 (type 15).
    ListPacks,
    /// Stream v2 (type 19).
    ListPacks2,
    /// Stream v3 (type 21).
    ListPacks3,
    /// Module value (type 7).
    Module,
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 18] = [
        Encoding::Raw,
        Encoding::Int,
        Encoding::Lzf,
        Encoding::List,
        Encoding::ZipList,
        Encoding::QuickList,
        Encoding::QuickList2,
        Encoding::IntSet,
        Encoding::ListPack,
        Encoding::SkipList,
        Encoding::ZipMap,
        Encoding::Metadata,
        Encoding::ListPackEx,
        Encoding::Hash2,
        Encoding::ListPacks,
        Encoding::ListPacks2,
        Encoding::ListPacks3,
        Encoding::Module,
    ];

    /// The encoding whose column value is `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The column value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Int => "int",
            Encoding::Lzf => "lzf",
            Encoding::List => "list",
            Encoding::ZipList => "zip_list",
            Encoding::QuickList => "quick_list",
            Encoding::QuickList2 => "quick_list2",
            Encoding::IntSet => "int_set",
            Encoding::ListPack => "list_pack",
            Encoding::SkipList => "skip_list",
            Encoding::ZipMap => "zip_map",
            Encoding::Metadata => "metadata",
            Encoding::ListPackEx => "list_pack_ex",
            Encoding::Hash2 => "hash2",
            Encoding::ListPacks => "list_packs",
            Encoding::ListPacks2 => "list_packs2",
            Encoding::ListPacks3 => "list_packs3",
            Encoding::Module => "module",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key of a snapshot, as the parser saw it. Values are never kept: only counts and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Database number from the last SELECTDB (0 before any).
    pub db: u64,
    /// Raw key bytes (integer-encoded keys become their decimal text; LZF keys decompressed).
    pub key: Vec<u8>,
    pub r#type: RecordType,
    /// string 1; list/set/zset elements; hash field-value pairs; stream length; module 0.
    pub member_count: u64,
    /// Bytes on disk from the value-type byte through the end of the value (type byte, encoded
    /// key and encoded value), excluding preceding EXPIRETIME/IDLE/FREQ opcodes.
    pub rdb_size: u64,
    pub encoding: Encoding,
    /// Absolute expiry in Unix milliseconds (EXPIRETIME seconds are scaled by 1000); always
    /// within ±[`expire::MAX_EXPIRE_MS`]: whoever builds a record passes the RDB's value through
    /// [`expire::expire_at_ms`] (beyond it: `None`), and writers store it as it is.
    pub expire_at_ms: Option<i64>,
    /// LRU idle time from the IDLE opcode.
    pub idle_seconds: Option<u64>,
    /// LFU counter from the FREQ opcode.
    pub freq: Option<u8>,
    /// Codis slot (CRC32 mod 1024); filled when the source is a Codis cluster.
    pub codis_slot: Option<u16>,
    /// Redis Cluster slot (CRC16 mod 16384); filled when the source is a Redis Cluster.
    pub redis_slot: Option<u16>,
    /// Bytes of RAM the key takes once a server loaded the RDB, per the instance's memory
    /// model (`crate::memory`); `None` where no model applies (module values) or none was
    /// asked for.
    pub mem_size: Option<u64>,
}

/// An empty record (a string key of no bytes in db 0): a slot the parser fills with
/// [`crate::parser::RdbParser::next_record_into`], reusing its key buffer.
impl Default for Record {
    fn default() -> Self {
        Record {
            db: 0,
            key: Vec::new(),
            r#type: RecordType::String,
            member_count: 0,
            rdb_size: 0,
            encoding: Encoding::Raw,
            expire_at_ms: None,
            idle_seconds: None,
            freq: None,
            codis_slot: None,
            redis_slot: None,
            mem_size: None,
        }
    }
}

/// What a dump learned about one instance besides its keys: the memory model its records'
/// `mem_size` follow and the RDB's own figures. Handed to the instance's writer before
/// `finalize_instance` (Parquet keeps it in the file's metadata, ClickHouse in a table), so
/// the report can name the model and reconcile the totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceSummary {
    /// The model, as `crate::memory::Model::describe` names it (`None`: no `mem_size`).
    pub memory_model: Option<String>,
    /// The model is the nearest one for a server it was not validated on.
    pub memory_approximate: bool,
    /// What the RDB said wrote it: `redis 7.2.4`, `valkey 8.0.1`.
    pub rdb_server: Option<String>,
    /// The RDB's `used-mem` aux field: the server's whole `used_memory` when it saved.
    pub used_mem: Option<u64>,
    /// The keyspace dicts' bucket arrays (from the RESIZEDB hints), not in any key's
    /// `mem_size`.
    pub keyspace_tables: Option<u64>,
}

/// One import batch of one cluster: what identifies a batch, for the dump (its outputs) and
/// the report (the batch it reads) alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchContext {
    pub cluster: String,
    pub batch: BatchTs,
}

impl BatchContext {
    /// The context of `instance`'s writer in this batch.
    pub fn write_context(&self, instance: &str) -> WriteContext {
        WriteContext {
            cluster: self.cluster.as_str().into(),
            batch: self.batch,
            instance: instance.into(),
        }
    }
}

/// Per-instance context: which cluster, which import batch and which instance the records of a
/// writer belong to. Handed to a writer once, when it is created (`Output::writer_for`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteContext {
    pub cluster: Arc<str>,
    pub batch: BatchTs,
    pub instance: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in RecordType::ALL {
            assert_eq!(RecordType::parse(t.as_str()), Some(t));
        }
        for e in Encoding::ALL {
            assert_eq!(Encoding::parse(e.as_str()), Some(e));
        }
        assert_eq!(RecordType::parse("zset"), Some(RecordType::ZSet));
        assert_eq!(Encoding::parse("nope"), None);
    }
}
