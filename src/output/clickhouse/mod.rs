//! ClickHouse output (`into-clickhouse`): records are streamed over HTTP into
//! `redis_records_raw`; a completed dump is then marked in `import_batches_completed`, and
//! `redis_records_view` shows each cluster's latest completed batch. A batch is exactly one
//! complete attempt: every row carries its attempt, the batch's first marker names the one
//! that is shown, and attempts claim the batch in `import_batch_claims` so that a concurrent
//! run is refused early and the rows of dead attempts are removed (see `claim`).
//!
//! * `config`: `--url` / `--proxy-url` / timeouts / `--on-cluster` (validated, redacted).
//! * [`schema`]: the DDL (also printed by `rdbinsight misc clickhouse-schema`).
//! * `schema_check`: a server's schema checked against it, created or migrated
//!   (`--auto-create-tables`), the TTL against the batch timestamp.
//! * `writer`: [`ClickHouseOutput`] (the batch lifecycle) and [`ClickHouseChunkWriter`].
//! * `stream`: one instance's rows as a stream of INSERTs ([`rowbinary`] encodes them).
//! * `attempt`: an attempt's id (64 random bits, never 0; 16 hex digits when shown).
//! * `claim`: batch claims, heartbeats, completion markers, cleanup of dead attempts.
//! * `batch_rows`: a batch's row and marker counts, the deletes, the wait for an attempt's
//!   queries to drain.
//! * `conn`, `http`, `proxy`, `error`: clients, connect timeout, `--proxy-url`, and
//!   one-line errors.

pub(crate) mod attempt;
pub(crate) mod batch_rows;
pub(crate) mod claim;
pub(crate) mod config;
pub(crate) mod conn;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod proxy;
// Public but hidden only for examples/clickhouse_rowbinary.rs: bench/clickhouse.sh encodes the
// rows with the writer's own encoder to time the engine's ingest of exactly these bytes (the
// writer's ceiling). Not part of the API.
#[doc(hidden)]
pub mod rowbinary;
pub mod schema;
pub(crate) mod schema_check;
pub(crate) mod stream;
pub(crate) mod writer;

pub use attempt::AttemptId;
pub use claim::DEFAULT_CLAIM_EXPIRY;
pub use config::{
    ClickHouseConfig, ClickHouseUrl, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT,
    DEFAULT_SEND_TIMEOUT, ProxyUrl, Timeouts, UrlError,
};
pub use writer::{ClickHouseChunkWriter, ClickHouseOutput, DEFAULT_CLEANUP_TIMEOUT};
