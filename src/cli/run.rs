//! Turning parsed arguments into a dump plan and an output, then running it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow};

use super::UsageError;
use super::dump::{CommonSourceArgs, DumpArgs, OutputCommand, ParquetCompression};
use super::logging::Stderr;
use rdbinsight::dump::{self, DumpPlan, DumpSummary, Interrupted, Progress};
use rdbinsight::metrics::{self, RunOutcome};
use rdbinsight::output::BatchContext;
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
            dump::run(plan, super::clickhouse::output(a)?, progress).await
        }
    }
}

/// How far ahead of this machine's clock a `--batch-timestamp` may be without
/// `--allow-future-batch` (clock skew between the host that picked it and this one).
pub const MAX_FUTURE_BATCH: Duration = Duration::from_secs(5 * 60);

/// Refuse a batch more than [`MAX_FUTURE_BATCH`] ahead of `now` unless `allow_future`: it
/// would stay "the latest batch" (the ClickHouse view, the newest Parquet batch) until then.
pub fn check_batch_time(
    batch: BatchTs,
    now: BatchTs,
    allow_future: bool,
) -> Result<(), UsageError> {
    let ahead = batch.nanos().saturating_sub(now.nanos());
    let limit = MAX_FUTURE_BATCH.as_nanos() as i64;
    if allow_future || ahead <= limit {
        return Ok(());
    }
    Err(UsageError(format!(
        "--batch-timestamp {} is {} ahead of this machine's clock ({}): that batch would stay the \
         latest one (the ClickHouse view, the newest Parquet batch) until then; use a current \
         time, or pass --allow-future-batch if this is intended",
        batch.rfc3339(),
        human_duration(Duration::from_nanos(ahead.unsigned_abs())),
        now.rfc3339()
    )))
}

/// `3d 4h`, `2h 5m`, `7m 3s`: two units are enough to read a distance in time.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("{m}m {secs}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Everything the binary's `dump` needs from `main`.
pub struct DumpEnv {
    /// The terminal's progress bars (stderr is a terminal), shared with the log writer.
    pub bars: Option<indicatif::MultiProgress>,
    /// Where the signal listener prints its lines.
    pub stderr: Stderr,
}

/// Run `rdbinsight dump ...`, then write `--metrics-file` (also on failure).
pub fn run_dump(args: DumpArgs, env: DumpEnv) -> anyhow::Result<()> {
    // Found before the dump, not after the batch was published.
    if let Some(path) = &args.metrics_file {
        metrics::check_file(path).map_err(|e| {
            UsageError(format!(
                "--metrics-file {} cannot be written: {e}",
                path.display(),
            ))
        })?;
    }
    let progress = Progress::with_bars(env.bars);
    let cluster_hint = super::source::cluster_arg(&args.source);
    let result = run_dump_inner(&args, &progress, env.stderr);
    if let Some(path) = &args.metrics_file {
        let outcome = RunOutcome {
            cluster: progress.cluster().or(cluster_hint).unwrap_or_default(),
            exit_status: match &result {
                Ok(()) => 0,
                Err(e) => super::exit_code(e),
            },
            ended: SystemTime::now(),
        };
        if let Err(e) = metrics::write_file(path, &progress, &outcome) {
            let e = anyhow::Error::new(e)
                .context(format!("cannot write --metrics-file {}", path.display()));
            // The dump's own error, if any, is what the user must see first.
            return match result {
                Ok(()) => Err(e),
                Err(dump_err) => {
                    tracing::error!("{}", super::logging::error_text(&e));
                    Err(dump_err)
                }
            };
        }
    }
    result
}

fn run_dump_inner(args: &DumpArgs, progress: &Arc<Progress>, stderr: Stderr) -> anyhow::Result<()> {
    let concurrency = args
        .concurrency
        .map(usize::from)
        .unwrap_or_else(default_concurrency);
    let memory = args
        .memory_options()
        .map_err(|e| UsageError(format!("--memory-config: {e}")))?;
    let parse = ParseOptions {
        verify_checksum: !args.skip_checksum,
        memory,
    };
    let common = args.source.common();
    let batch_ts = batch_timestamp(common).map_err(|e| UsageError(format!("{e:#}")))?;
    check_batch_time(batch_ts, BatchTs::now(), common.allow_future_batch)?;
    // TLS files are read and checked here, before any connection.
    let source = super::source::prepare(&args.source)?;
    let listener = match &args.prometheus {
        Some(addr) => Some(metrics::bind(addr).map_err(|e| -> anyhow::Error {
            // Not an address: a usage error. A busy or forbidden one stays a failure.
            if e.kind() == std::io::ErrorKind::InvalidInput {
                UsageError(format!("--prometheus {addr}: {e}")).into()
            } else {
                anyhow::Error::new(e).context(format!("cannot listen on --prometheus {addr}"))
            }
        })?),
        None => None,
    };
    if args.skip_checksum {
        tracing::warn!("CRC64 checksum verification is disabled (--skip-checksum)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(concurrency.clamp(2, 8))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        listen_for_signals(Arc::clone(progress), stderr)?;
        let _server = match listener {
            Some(l) => {
                let addr = l.local_addr().ok();
                let task =
                    metrics::serve(l, Arc::clone(progress)).context("cannot serve --prometheus")?;
                if let Some(a) = addr {
                    tracing::info!("metrics on http://{a}/metrics");
                }
                Some(AbortOnDrop(task))
            }
            None => None,
        };
        let interrupt = progress.interrupt().clone();
        // Discovering a live topology is blocking network I/O: off the async threads.
        let found = tokio::select! {
            found = tokio::task::spawn_blocking(move || source.resolve()) => {
                found.map_err(|e| anyhow!("source discovery failed: {e}"))??
            }
            signal = interrupt.fired() => {
                return Err(Interrupted { signal, after_prepare: false }.into());
            }
        };
        let plan = DumpPlan {
            batch: BatchContext {
                cluster: found.cluster,
                batch: batch_ts,
            },
            instances: found.instances,
            concurrency,
            parse,
        };
        run_into(&common.output, plan, Arc::clone(progress)).await
    });
    // Parser threads blocked on a source that ignores cancellation (a FIFO) must not keep the
    // process alive: the dump is over.
    runtime.shutdown_background();
    let summary = result?;
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

/// Aborts a task when dropped (the metrics server lives as long as the dump).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGINT and SIGTERM stop the dump cleanly (see [`rdbinsight::dump::Interrupt`]); a second
/// one while it cleans up exits at once with the same code (what is left behind is removed by
/// the next run).
fn listen_for_signals(progress: Arc<Progress>, stderr: Stderr) -> anyhow::Result<()> {
    super::on_signals(move |sig| {
        let interrupt = progress.interrupt();
        if !interrupt.fire(sig) {
            progress.clear_bars();
            stderr.line(&format!(
                "error: {sig} again: exiting at once without cleaning up (the next run \
                 removes what this one left)"
            ));
            std::process::exit(i32::from(sig.exit_code()));
        }
        if interrupt.is_committing() {
            tracing::warn!(
                "{sig}: the batch is being finalized; letting that finish (send {sig} \
                 again to exit at once)"
            );
        } else {
            tracing::debug!("{sig}: stopping the dump and removing this run's output");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_far_in_the_future_is_refused_unless_allowed() {
        let now = BatchTs::parse_rfc3339("2025-01-01T00:00:00Z").unwrap();
        let at = |s: &str| BatchTs::parse_rfc3339(s).unwrap();
        assert!(check_batch_time(now, now, false).is_ok());
        assert!(
            check_batch_time(at("2024-01-01T00:00:00Z"), now, false).is_ok(),
            "past"
        );
        assert!(
            check_batch_time(at("2025-01-01T00:05:00Z"), now, false).is_ok(),
            "skew"
        );
        let err = check_batch_time(at("2025-01-03T04:00:00Z"), now, false)
            .expect_err("2 days ahead")
            .to_string();
        assert!(err.contains("2d 4h ahead"), "{err}");
        assert!(err.contains("--allow-future-batch"), "{err}");
        assert!(check_batch_time(at("2025-01-01T00:05:01Z"), now, false).is_err());
        assert!(check_batch_time(at("2030-01-01T00:00:00Z"), now, true).is_ok());
    }
}
