//! rdbinsight: turn Redis/Valkey RDB snapshots into one [`record::Record`] per key and load them
//! where people run SQL (Parquet files, ClickHouse), or print them as JSON lines.
//!
//! Data flows one way: [`source`] (where RDB bytes come from) → [`parser`] (bytes → records) →
//! [`output`] (records → a store), driven by [`dump`]. See `.ai_code/design.md`.

pub mod cancel;
pub mod dump;
pub mod memory;
pub mod metrics;
pub mod output;
pub mod parser;
pub mod record;
pub mod report;
pub mod slot;
pub mod source;
