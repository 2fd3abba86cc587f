//! An output that discards records: for parse-only runs (`into-null`), which validate a file
//! and measure the parser and pipeline without any writer cost.

use super::{BatchContext, ChunkWriter, Output, OutputError};
use crate::record::{Record, WriteContext};

/// Batch-level null output.
#[derive(Debug, Default)]
pub struct NullOutput;

impl Output for NullOutput {
    type Writer = NullChunkWriter;

    async fn prepare_batch(&mut self, _batch: &BatchContext) -> Result<(), OutputError> {
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<NullChunkWriter, OutputError> {
        Ok(NullChunkWriter {
            ctx,
            records: 0,
            key_bytes: 0,
        })
    }

    async fn finalize_batch(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Counts records and bytes of keys, so the work cannot be optimized away.
#[derive(Debug)]
pub struct NullChunkWriter {
    ctx: WriteContext,
    pub records: u64,
    pub key_bytes: u64,
}

impl ChunkWriter for NullChunkWriter {
    async fn write_record(&mut self, record: &Record) -> Result<(), OutputError> {
        self.records += 1;
        self.key_bytes += record.key.len() as u64;
        Ok(())
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        tracing::debug!(
            "null output: instance {}: {} records, {} key bytes",
            self.ctx.instance,
            self.records,
            self.key_bytes
        );
        Ok(())
    }
}
