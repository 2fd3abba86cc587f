//! ClickHouse output (`into-clickhouse`): records are streamed over HTTP into
//! `redis_records_raw`; a completed dump is then marked in `import_batches_completed`, and
//! `redis_records_view` shows each cluster's latest completed batch. A batch is exactly one
//! complete attempt: attempts claim it in `import_batch_claims`, and the rows of an attempt
//! that failed, was interrupted or killed are removed (see [`claim`]).
//!
//! * [`config`]: `--url` / `--proxy-url` / timeouts / `--on-cluster` (validated, redacted).
//! * [`schema`]: the DDL (also printed by `rdbinsight misc clickhouse-schema`).
//! * [`writer`]: [`ClickHouseOutput`] and [`ClickHouseChunkWriter`].
//! * [`stream`]: one instance's rows as a stream of INSERTs ([`rowbinary`] encodes them).
//! * [`claim`]: batch claims, heartbeats, cleanup of dead attempts.
//! * [`conn`], [`http`], [`proxy`], [`error`]: clients, connect timeout, `--proxy-url`, and
//!   one-line errors.

pub mod claim;
pub mod config;
pub mod conn;
pub mod error;
pub mod http;
pub mod proxy;
pub mod rowbinary;
pub mod schema;
pub mod stream;
pub mod writer;

pub use config::{ClickHouseConfig, ClickHouseUrl, ProxyUrl, Timeouts, UrlError};
pub use writer::{ClickHouseChunkWriter, ClickHouseOutput};
