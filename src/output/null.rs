//! An output that discards records: for parse-only runs (`into-null`), which validate a file
//! and measure the parser and pipeline without any writer cost.

use super::{BatchContext, ChunkWriter, OutputError};
use crate::record::{Record, WriteContext};

/// Batch-level null output.
#[derive(Debug, Default)]
pub struct NullOutput;

impl NullOutput {
    pub async fn prepare_batch(&mut self, _batch: &BatchContext) -> Result<(), OutputError> {
        Ok(())
    }

    pub fn writer_for(&self, _b: &BatchContext, _i: &str) -> Result<NullChunkWriter, OutputError> {
        Ok(NullChunkWriter::default())
    }

    pub async fn finalize_batch(&mut self, _batch: &BatchContext) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Counts records and bytes of keys, so the work cannot be optimized away.
#[derive(Debug, Default)]
pub struct NullChunkWriter {
    pub records: u64,
    pub key_bytes: u64,
}

impl ChunkWriter for NullChunkWriter {
    async fn prepare_instance(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    async fn write_record(
        &mut self,
        record: &Record,
        _ctx: &WriteContext,
    ) -> Result<(), OutputError> {
        self.records += 1;
        self.key_bytes += record.key.len() as u64;
        Ok(())
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        tracing::debug!(
            "null output: {} records, {} key bytes",
            self.records,
            self.key_bytes
        );
        Ok(())
    }
}
