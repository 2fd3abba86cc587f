//! Turning parsed arguments into a dump plan and an output, then running it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};

use super::UsageError;
use super::dump::{
    CommonSourceArgs, ConnectionArgs, DumpArgs, OutputCommand, ParquetCompression, SourceCommand,
};
use super::logging::Stderr;
use rdbinsight::dump::{self, DumpPlan, DumpSummary, Interrupted, Progress, Signal};
use rdbinsight::metrics::{self, RunOutcome};
use rdbinsight::output::BatchContext;
use rdbinsight::output::jsonl::{JsonlOutput, JsonlTarget};
use rdbinsight::output::null::NullOutput;
use rdbinsight::output::parquet::{self as pq, ParquetOutput};
use rdbinsight::parser::ParseOptions;
use rdbinsight::record::BatchTs;
use rdbinsight::source::standalone::{StandaloneConfig, TlsOptions};
use rdbinsight::source::{Instance, InstanceOpener, SlotKind, cluster, codis};

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

/// Shortest time allowed for each handshake reply, whatever `--connect-timeout` says.
const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection settings for live sources (the address is filled in per instance).
pub fn connection_config(addr: &str, conn: &ConnectionArgs) -> StandaloneConfig {
    let tls = (conn.tls || conn.tls_ca.is_some() || conn.tls_insecure).then(|| TlsOptions {
        ca_file: conn.tls_ca.clone(),
        insecure: conn.tls_insecure,
    });
    if conn.tls_insecure {
        tracing::warn!("TLS certificates are not verified (--tls-insecure)");
    }
    let connect_timeout = Duration::from_secs(conn.connect_timeout);
    StandaloneConfig {
        addr: addr.to_string(),
        username: conn.username.clone(),
        password: conn.password.clone(),
        tls,
        connect_timeout,
        handshake_timeout: connect_timeout.max(MIN_HANDSHAKE_TIMEOUT),
        read_timeout: Duration::from_secs(conn.read_timeout),
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

/// What a dump needs before it can start: the cluster name and the instances (discovery of a
/// live topology is blocking network I/O, so it runs off the async threads).
type Discovery = Box<dyn FnOnce() -> anyhow::Result<(String, Vec<Instance>)> + Send>;

/// The parts of the source command the dump needs, with discovery still to run.
fn resolve_source(
    source: &SourceCommand,
) -> (Option<String>, &CommonSourceArgs, Discovery, &OutputCommand) {
    match source {
        SourceCommand::FromFile(a) => {
            let instance = Instance {
                name: a.instance.clone(),
                slots: SlotKind::None,
                opener: InstanceOpener::File(a.path.clone()),
            };
            let cluster = a.cluster.clone();
            let found: Discovery = Box::new(move || Ok((cluster, vec![instance])));
            (Some(a.cluster.clone()), &a.common, found, &a.output)
        }
        SourceCommand::FromStandalone(a) => {
            let instance = Instance {
                name: a.addr.clone(),
                slots: SlotKind::None,
                opener: InstanceOpener::Standalone(connection_config(&a.addr, &a.conn)),
            };
            let cluster = a.cluster.clone();
            let found: Discovery = Box::new(move || Ok((cluster, vec![instance])));
            (Some(a.cluster.clone()), &a.common, found, &a.output)
        }
        SourceCommand::FromCluster(a) => {
            let conn = connection_config("", &a.conn);
            let (nodes, require_slave, cluster) =
                (a.nodes.clone(), a.require_slave, a.cluster.clone());
            let found: Discovery = Box::new(move || {
                let instances = cluster::discover(&nodes, &conn, require_slave)
                    .context("cannot discover the Redis Cluster topology")?;
                Ok((cluster, instances))
            });
            (Some(a.cluster.clone()), &a.common, found, &a.output)
        }
        SourceCommand::FromCodis(a) => {
            let conn = connection_config("", &a.conn);
            let (dashboard, require_slave, cluster) =
                (a.dashboard.clone(), a.require_slave, a.cluster.clone());
            let found: Discovery = Box::new(move || {
                let (product, instances) = codis::discover(&dashboard, &conn, require_slave)
                    .context("cannot discover the Codis topology")?;
                let cluster = match (cluster, product) {
                    (Some(c), _) => c,
                    (None, Some(p)) => p,
                    (None, None) => bail!(
                        "the Codis dashboard reports no product name; name the cluster with \
                         --cluster"
                    ),
                };
                Ok((cluster, instances))
            });
            (a.cluster.clone(), &a.common, found, &a.output)
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
    let progress = Progress::with_bars(env.bars);
    let (cluster_hint, _, _, _) = resolve_source(&args.source);
    let result = run_dump_inner(&args, &progress, env.stderr);
    if let Some(path) = &args.metrics_file {
        let outcome = RunOutcome {
            cluster: progress
                .instances()
                .first()
                .map(|s| s.cluster().to_string())
                .or(cluster_hint)
                .unwrap_or_default(),
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
                    tracing::error!("{}", super::logging::error_line(&e));
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
    let parse = ParseOptions {
        verify_checksum: !args.skip_checksum,
    };
    let (_, common, discovery, output_cmd) = resolve_source(&args.source);
    let batch_ts = batch_timestamp(common).map_err(|e| UsageError(format!("{e:#}")))?;
    check_batch_time(batch_ts, BatchTs::now(), common.allow_future_batch)?;
    let listener = match &args.prometheus {
        Some(addr) => Some(
            metrics::bind(addr).with_context(|| format!("cannot listen on --prometheus {addr}"))?,
        ),
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
        let (cluster, instances) = tokio::select! {
            found = tokio::task::spawn_blocking(discovery) => {
                found.map_err(|e| anyhow!("source discovery failed: {e}"))??
            }
            signal = interrupt.fired() => {
                return Err(Interrupted { signal, after_prepare: false }.into());
            }
        };
        let plan = DumpPlan {
            batch: BatchContext {
                cluster,
                batch: batch_ts,
            },
            instances,
            concurrency,
            parse,
        };
        run_into(output_cmd, plan, Arc::clone(progress)).await
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

/// SIGINT and SIGTERM stop the dump cleanly (see [`rdbinsight::dump::interrupt`]); a second
/// one while it cleans up exits at once with the same code (what is left behind is removed by
/// the next run).
fn listen_for_signals(progress: Arc<Progress>, stderr: Stderr) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => Signal::Int,
                _ = term.recv() => Signal::Term,
            };
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
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_config_from_args() {
        let mut args = ConnectionArgs {
            username: Some("u".into()),
            password: Some("p".into()),
            connect_timeout: 5,
            read_timeout: 90,
            ..Default::default()
        };
        let cfg = connection_config("h:1", &args);
        assert_eq!(cfg.addr, "h:1");
        assert!(cfg.tls.is_none());
        assert_eq!(cfg.connect_timeout, Duration::from_secs(5));
        assert_eq!(cfg.handshake_timeout, MIN_HANDSHAKE_TIMEOUT);
        assert_eq!(cfg.read_timeout, Duration::from_secs(90));
        assert_eq!(cfg.username.as_deref(), Some("u"));

        args.tls_ca = Some(PathBuf::from("/ca.pem"));
        let tls = connection_config("h:1", &args)
            .tls
            .expect("--tls-ca implies TLS");
        assert_eq!(tls.ca_file, Some(PathBuf::from("/ca.pem")));
        assert!(!tls.insecure);

        args.tls_ca = None;
        args.tls_insecure = true;
        let tls = connection_config("h:1", &args)
            .tls
            .expect("--tls-insecure implies TLS");
        assert!(tls.insecure);

        args.tls_insecure = false;
        args.tls = true;
        assert!(connection_config("h:1", &args).tls.is_some());
    }

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
