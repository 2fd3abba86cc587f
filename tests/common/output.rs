//! The output lifecycle, driven the way `dump::run` drives it, for tests of one output at a
//! time (no parser, no source): records in, then the test reads the store back.

use rdbinsight::output::{BatchContext, ChunkWriter, Output, OutputError};
use rdbinsight::record::{BatchTs, Record};

/// A batch context.
pub fn batch(cluster: &str, nanos: i64) -> BatchContext {
    BatchContext {
        cluster: cluster.to_string(),
        batch: BatchTs::from_nanos(nanos),
    }
}

/// One instance through its writer: `writer_for`, `prepare_instance`, every record,
/// `finalize_instance`.
pub async fn write_instance<O: Output>(
    output: &mut O,
    batch: &BatchContext,
    instance: &str,
    records: &[Record],
) -> Result<(), OutputError> {
    let mut w = output.writer_for(batch.write_context(instance))?;
    w.prepare_instance().await?;
    for r in records {
        w.write_record(r).await?;
    }
    w.finalize_instance().await
}

/// A whole batch: `prepare_batch`, every instance in turn, `finalize_batch`. On the first
/// error the output is aborted (as the pipeline does) and the error returned.
pub async fn write_batch<O: Output>(
    output: &mut O,
    batch: &BatchContext,
    instances: &[(&str, &[Record])],
) -> Result<(), OutputError> {
    output.prepare_batch(batch).await?;
    let mut result = Ok(());
    for (instance, records) in instances {
        result = write_instance(output, batch, instance, records).await;
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = output.finalize_batch().await;
    }
    if result.is_err() {
        output.abort_batch().await;
    }
    result
}
