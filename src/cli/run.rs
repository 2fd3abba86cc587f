//! Turning parsed arguments into a dump plan and an output, then running it.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::dump::{CommonSourceArgs, DumpArgs, OutputCommand, ParquetCompression};
use rdbinsight::dump::{self, DumpPlan, DumpSummary, Progress};
use rdbinsight::output::BatchContext;
use rdbinsight::output::clickhouse::ClickHouseOutput;
use rdbinsight::output::jsonl::{JsonlOutput, JsonlTarget};
use rdbinsight::output::null::NullOutput;
use rdbinsight::output::parquet::{self as pq, ParquetOutput};
use rdbinsight::parser::ParseOptions;
use rdbinsight::record::BatchTs;

/// Default `--concurrency`: the number of cores, at most 8.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Parse `--batch-timestamp` (RFC 3339) or take the current time.
pub fn batch_timestamp(common: &CommonSourceArgs) -> anyhow::Result<BatchTs> {
    match &common.batch_timestamp {
        Some(s) => BatchTs::parse_rfc3339(s).context("invalid --batch-timestamp"),
        None => Ok(BatchTs::now()),
    }
}

/// Build the output the command names and run the dump into it.
async fn run_into(
    cmd: &OutputCommand,
    plan: DumpPlan,
    progress: Arc<Progress>,
) -> anyhow::Result<DumpSummary> {
    match cmd {
        OutputCommand::IntoJsonl(a) => {
            let target = if a.output == "-" {
                JsonlTarget::Stdout
            } else {
                JsonlTarget::File(PathBuf::from(&a.output))
            };
            dump::run(plan, JsonlOutput::new(target), progress).await
        }
        OutputCommand::IntoParquet(a) => {
            let compression = match a.compression {
                ParquetCompression::Zstd => pq::ParquetCompression::Zstd,
                ParquetCompression::Snappy => pq::ParquetCompression::Snappy,
                ParquetCompression::Lz4 => pq::ParquetCompression::Lz4,
                ParquetCompression::None => pq::ParquetCompression::None,
            };
            dump::run(plan, ParquetOutput::new(&a.dir, compression), progress).await
        }
        OutputCommand::IntoNull => dump::run(plan, NullOutput, progress).await,
        OutputCommand::IntoClickhouse(a) => {
            let output = ClickHouseOutput::from_args(
                &a.url,
                a.proxy_url.as_deref(),
                a.auto_create_tables,
                a.ttl_days,
            )?;
            dump::run(plan, output, progress).await
        }
    }
}

/// Run `rdbinsight dump ...`.
pub fn run_dump(args: DumpArgs) -> anyhow::Result<()> {
    let concurrency = args
        .concurrency
        .map(usize::from)
        .unwrap_or_else(default_concurrency);
    let parse = ParseOptions {
        verify_checksum: !args.skip_checksum,
    };
    if args.skip_checksum {
        tracing::warn!("CRC64 checksum verification is disabled (--skip-checksum)");
    }
    let source = super::source::plan(&args.source)?;
    let batch = BatchContext {
        cluster: source.cluster,
        batch: batch_timestamp(args.source.common())?,
    };
    let plan = DumpPlan {
        batch,
        instances: source.instances,
        concurrency,
        parse,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(concurrency.clamp(2, 8))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = Progress::new(std::io::stderr().is_terminal());
    let summary = runtime.block_on(run_into(args.source.output(), plan, progress))?;
    let secs = summary.elapsed.as_secs_f64();
    tracing::info!(
        "dump complete: {} records from {} instance(s) in {:.2}s ({:.0} records/s)",
        summary.records,
        summary.instances,
        secs,
        summary.records as f64 / secs.max(1e-9)
    );
    Ok(())
}
