//! Turning parsed arguments into a dump plan and an output, then running it.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow};

use super::dump::{CommonSourceArgs, DumpArgs, OutputCommand, ParquetCompression};
use rdbinsight::dump::{self, DumpPlan, Progress};
use rdbinsight::output::clickhouse::ClickHouseOutput;
use rdbinsight::output::jsonl::{JsonlOutput, JsonlTarget};
use rdbinsight::output::parquet::{self as pq, ParquetOutput};
use rdbinsight::output::{BatchContext, Output};
use rdbinsight::parser::ParseOptions;

/// Default `--concurrency`: the number of cores, at most 8.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Parse `--batch-timestamp` (RFC 3339) or take the current time, as Unix nanoseconds.
pub fn batch_timestamp(common: &CommonSourceArgs) -> anyhow::Result<i64> {
    match &common.batch_timestamp {
        Some(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("--batch-timestamp '{s}' is not an RFC 3339 timestamp"))?;
            t.timestamp_nanos_opt()
                .ok_or_else(|| anyhow!("--batch-timestamp '{s}' is out of range"))
        }
        None => chrono::Utc::now()
            .timestamp_nanos_opt()
            .ok_or_else(|| anyhow!("the system clock is out of range")),
    }
}

fn build_output(cmd: &OutputCommand) -> anyhow::Result<Output> {
    match cmd {
        OutputCommand::IntoJsonl(a) => {
            let target = if a.output == "-" {
                JsonlTarget::Stdout
            } else {
                JsonlTarget::File(PathBuf::from(&a.output))
            };
            Ok(Output::Jsonl(JsonlOutput::new(target)))
        }
        OutputCommand::IntoParquet(a) => {
            let compression = match a.compression {
                ParquetCompression::Zstd => pq::ParquetCompression::Zstd,
                ParquetCompression::Snappy => pq::ParquetCompression::Snappy,
                ParquetCompression::Lz4 => pq::ParquetCompression::Lz4,
                ParquetCompression::None => pq::ParquetCompression::None,
            };
            Ok(Output::Parquet(ParquetOutput::new(&a.dir, compression)))
        }
        OutputCommand::IntoNull => Ok(Output::Null(rdbinsight::output::null::NullOutput)),
        OutputCommand::IntoClickhouse(a) => Ok(Output::ClickHouse(ClickHouseOutput::from_args(
            &a.url,
            a.proxy_url.as_deref(),
            a.auto_create_tables,
            a.ttl_days,
        )?)),
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
        batch_ts_nanos: batch_timestamp(args.source.common())?,
    };
    let output = build_output(args.source.output())?;
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
    let summary = runtime.block_on(dump::run(plan, output, progress))?;
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
