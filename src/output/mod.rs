//! Where records go. An [`Output`] is prepared once per dump (`prepare_batch`), hands out one
//! [`ChunkWriterEnum`] per instance, and is finalized once after every instance succeeded
//! (`finalize_batch`).
//!
//! Instance lifecycle ([`ChunkWriter`]): `prepare_instance` → `write_record` once per record,
//! in parser order → `finalize_instance`. Records arrive **one at a time**; there is no batch
//! write API. A writer buffers only what its format needs (Parquet: one 10,000-row micro-batch;
//! ClickHouse: the `Inserter`'s in-flight INSERT, capped near 32 MiB).
//!
//! Failure semantics: no writer retries. The first error from any writer (or parser) ends the
//! whole dump; `finalize_batch` is then never called, so the batch is never marked complete
//! (Parquet: no `batch=` directory appears; ClickHouse: no `import_batches_completed` row).
//! A writer dropped without `finalize_instance` leaves only temporary output behind.

pub mod clickhouse;
pub mod jsonl;
pub mod null;
pub mod parquet;

use crate::record::{Record, WriteContext};

/// Errors from writers, carrying enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl OutputError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OutputError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Context of one dump (one import batch).
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub cluster: String,
    /// Batch timestamp, Unix nanoseconds UTC.
    pub batch_ts_nanos: i64,
}

/// One instance's writer. Implementations are driven by [`crate::dump`]; see the module docs
/// for the lifecycle and failure semantics.
#[allow(async_fn_in_trait)]
pub trait ChunkWriter {
    /// Open whatever the instance writes into (a temp file, an INSERT stream).
    async fn prepare_instance(&mut self) -> Result<(), OutputError>;
    /// Append one record. May flush an internal micro-batch.
    async fn write_record(
        &mut self,
        record: &Record,
        ctx: &WriteContext,
    ) -> Result<(), OutputError>;
    /// Flush what is buffered and make the instance's output durable (but not yet visible as a
    /// completed batch: that is `finalize_batch`'s job).
    async fn finalize_instance(&mut self) -> Result<(), OutputError>;
}

/// Static dispatch over the concrete writers.
pub enum ChunkWriterEnum {
    Jsonl(jsonl::JsonlChunkWriter),
    Null(null::NullChunkWriter),
    Parquet(parquet::ParquetChunkWriter),
    ClickHouse(clickhouse::ClickHouseChunkWriter),
}

impl ChunkWriter for ChunkWriterEnum {
    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        match self {
            ChunkWriterEnum::Jsonl(w) => w.prepare_instance().await,
            ChunkWriterEnum::Null(w) => w.prepare_instance().await,
            ChunkWriterEnum::Parquet(w) => w.prepare_instance().await,
            ChunkWriterEnum::ClickHouse(w) => w.prepare_instance().await,
        }
    }

    #[inline]
    async fn write_record(
        &mut self,
        record: &Record,
        ctx: &WriteContext,
    ) -> Result<(), OutputError> {
        match self {
            ChunkWriterEnum::Jsonl(w) => w.write_record(record, ctx).await,
            ChunkWriterEnum::Null(w) => w.write_record(record, ctx).await,
            ChunkWriterEnum::Parquet(w) => w.write_record(record, ctx).await,
            ChunkWriterEnum::ClickHouse(w) => w.write_record(record, ctx).await,
        }
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        match self {
            ChunkWriterEnum::Jsonl(w) => w.finalize_instance().await,
            ChunkWriterEnum::Null(w) => w.finalize_instance().await,
            ChunkWriterEnum::Parquet(w) => w.finalize_instance().await,
            ChunkWriterEnum::ClickHouse(w) => w.finalize_instance().await,
        }
    }
}

/// A configured destination, at batch level.
pub enum Output {
    Jsonl(jsonl::JsonlOutput),
    Null(null::NullOutput),
    Parquet(parquet::ParquetOutput),
    ClickHouse(clickhouse::ClickHouseOutput),
}

impl Output {
    /// Called once before any instance starts.
    pub async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        match self {
            Output::Jsonl(o) => o.prepare_batch(batch).await,
            Output::Null(o) => o.prepare_batch(batch).await,
            Output::Parquet(o) => o.prepare_batch(batch).await,
            Output::ClickHouse(o) => o.prepare_batch(batch).await,
        }
    }

    /// A new writer for one instance (its `prepare_instance` is called by the pipeline).
    pub fn writer_for(
        &self,
        batch: &BatchContext,
        instance: &str,
    ) -> Result<ChunkWriterEnum, OutputError> {
        match self {
            Output::Jsonl(o) => o.writer_for(batch, instance).map(ChunkWriterEnum::Jsonl),
            Output::Null(o) => o.writer_for(batch, instance).map(ChunkWriterEnum::Null),
            Output::Parquet(o) => o.writer_for(batch, instance).map(ChunkWriterEnum::Parquet),
            Output::ClickHouse(o) => o
                .writer_for(batch, instance)
                .map(ChunkWriterEnum::ClickHouse),
        }
    }

    /// Called once after every instance finalized successfully: makes the batch visible.
    pub async fn finalize_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        match self {
            Output::Jsonl(o) => o.finalize_batch(batch).await,
            Output::Null(o) => o.finalize_batch(batch).await,
            Output::Parquet(o) => o.finalize_batch(batch).await,
            Output::ClickHouse(o) => o.finalize_batch(batch).await,
        }
    }
}
