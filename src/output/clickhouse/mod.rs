//! ClickHouse output (`into-clickhouse`): records are streamed over HTTP into
//! `redis_records_raw`; a completed dump is then marked in `import_batches_completed`, and
//! `redis_records_view` shows each cluster's latest completed batch.
//!
//! * [`config`]: `--url` / `--proxy-url` parsing and validation (redacted display).
//! * [`schema`]: the DDL (also printed by `rdbinsight misc clickhouse-schema`).
//! * [`writer`]: [`ClickHouseOutput`] and [`ClickHouseChunkWriter`].
//! * [`proxy`]: the HTTP forward-proxy connector behind `--proxy-url`.

pub mod config;
pub mod proxy;
pub mod schema;
pub mod writer;

pub use config::{ClickHouseConfig, ClickHouseUrl, ProxyUrl, UrlError};
pub use writer::{ClickHouseChunkWriter, ClickHouseOutput};
