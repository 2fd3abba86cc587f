//! Turning parsed arguments into a dump plan and an output, then running it.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::dump::{
    CommonSourceArgs, ConnectionArgs, DumpArgs, OutputCommand, ParquetCompression, SourceCommand,
};
use rdbinsight::dump::{self, DumpPlan, DumpSummary, Progress};
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
    let (cluster, common, instances, output_cmd) = match &args.source {
        SourceCommand::FromFile(a) => {
            let instance = Instance {
                name: a.instance.clone(),
                slots: SlotKind::None,
                opener: InstanceOpener::File(a.path.clone()),
            };
            (a.cluster.clone(), &a.common, vec![instance], &a.output)
        }
        SourceCommand::FromStandalone(a) => {
            let instance = Instance {
                name: a.addr.clone(),
                slots: SlotKind::None,
                opener: InstanceOpener::Standalone(connection_config(&a.addr, &a.conn)),
            };
            (a.cluster.clone(), &a.common, vec![instance], &a.output)
        }
        SourceCommand::FromCluster(a) => {
            let conn = connection_config("", &a.conn);
            let instances = cluster::discover(&a.nodes, &conn, a.require_slave)
                .context("cannot discover the Redis Cluster topology")?;
            (a.cluster.clone(), &a.common, instances, &a.output)
        }
        SourceCommand::FromCodis(a) => {
            let conn = connection_config("", &a.conn);
            let (product, instances) = codis::discover(&a.dashboard, &conn, a.require_slave)
                .context("cannot discover the Codis topology")?;
            let cluster = match (&a.cluster, product) {
                (Some(c), _) => c.clone(),
                (None, Some(p)) => p,
                (None, None) => bail!(
                    "the Codis dashboard reports no product name; name the cluster with --cluster"
                ),
            };
            (cluster, &a.common, instances, &a.output)
        }
    };
    let batch = BatchContext {
        cluster,
        batch: batch_timestamp(common)?,
    };
    let plan = DumpPlan {
        batch,
        instances,
        concurrency,
        parse,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(concurrency.clamp(2, 8))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = Progress::new(std::io::stderr().is_terminal());
    let summary = runtime.block_on(run_into(output_cmd, plan, progress))?;
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
}
