//! The ClickHouse flags (`into-clickhouse`, `misc clickhouse-schema`,
//! `misc clickhouse-drop-batch`) and how they become a [`ClickHouseOutput`].

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use rdbinsight::output::BatchContext;
use rdbinsight::output::clickhouse::schema::{DEFAULT_TTL_DAYS, schema_sql};
use rdbinsight::output::clickhouse::{
    ClickHouseConfig, ClickHouseOutput, DEFAULT_CLAIM_EXPIRY, DEFAULT_CLEANUP_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, DEFAULT_SEND_TIMEOUT, Timeouts,
};
use rdbinsight::record::BatchTs;

/// Where ClickHouse is and how long each step of a request may take.
#[derive(Debug, Args, Clone)]
pub struct ClickHouseConnArgs {
    /// http[s]://[user[:pass]@]host:port?database=DB
    #[arg(long, env = "RDBINSIGHT_CLICKHOUSE_URL", hide_env_values = true)]
    pub url: String,
    /// HTTP proxy for the ClickHouse connection.
    #[arg(long, env = "RDBINSIGHT_PROXY_URL")]
    pub proxy_url: Option<String>,
    /// Sharded ClickHouse: the cluster name (from the servers' remote_servers). Rows go to
    /// redis_records_raw_local on each shard through the Distributed table redis_records_raw,
    /// synchronously; DDL and deletes run ON CLUSTER.
    #[arg(long, env = "RDBINSIGHT_ON_CLUSTER")]
    pub on_cluster: Option<String>,
    #[command(flatten)]
    pub timeouts: ClickHouseTimeoutArgs,
    /// Seconds without a heartbeat after which a running attempt's claim on its batch is
    /// considered dead, and the next run removes its rows. A live attempt heartbeats every
    /// 1/12 of this and stops itself after 1/2 without success.
    #[arg(long, env = "RDBINSIGHT_CH_CLAIM_EXPIRY", default_value_t = DEFAULT_CLAIM_EXPIRY.as_secs(), value_parser = clap::value_parser!(u64).range(3..))]
    pub ch_claim_expiry: u64,
    /// Seconds a failed or interrupted dump may spend removing its rows and releasing its
    /// claim; after that it exits, leaving rows that are never shown (the next run removes
    /// them once the claim expires, or `misc clickhouse-drop-batch` does).
    #[arg(long, env = "RDBINSIGHT_CH_CLEANUP_TIMEOUT", default_value_t = DEFAULT_CLEANUP_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub ch_cleanup_timeout: u64,
}

/// How long each step of a ClickHouse request may take (the dump's, the report's and the
/// `misc` commands' flags alike).
#[derive(Debug, Args, Clone)]
pub struct ClickHouseTimeoutArgs {
    /// Seconds to wait for a connection to ClickHouse (TCP, and TLS for https://).
    #[arg(long, env = "RDBINSIGHT_CH_CONNECT_TIMEOUT", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub ch_connect_timeout: u64,
    /// Seconds ClickHouse may take to accept the next chunk of an INSERT (a paused or hung
    /// server stops reading).
    #[arg(long, env = "RDBINSIGHT_CH_SEND_TIMEOUT", default_value_t = DEFAULT_SEND_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub ch_send_timeout: u64,
    /// Seconds ClickHouse may take to answer a request once it is sent (a query, DDL, an
    /// INSERT's acknowledgement).
    #[arg(long, env = "RDBINSIGHT_CH_RESPONSE_TIMEOUT", default_value_t = DEFAULT_RESPONSE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub ch_response_timeout: u64,
}

impl ClickHouseTimeoutArgs {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(self.ch_connect_timeout),
            send: Duration::from_secs(self.ch_send_timeout),
            response: Duration::from_secs(self.ch_response_timeout),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct IntoClickHouseArgs {
    #[command(flatten)]
    pub conn: ClickHouseConnArgs,
    /// Create missing tables and the view (and the database).
    #[arg(long, env = "RDBINSIGHT_AUTO_CREATE_TABLES")]
    pub auto_create_tables: bool,
    /// Days a batch is kept (the table TTL), used when creating tables. A batch timestamp older
    /// than the table's TTL is refused.
    #[arg(long, env = "RDBINSIGHT_TTL_DAYS", default_value_t = DEFAULT_TTL_DAYS)]
    pub ttl_days: u32,
}

#[derive(Debug, Args)]
pub struct ClickHouseSchemaArgs {
    /// Days a batch is kept (the table TTL).
    #[arg(long, env = "RDBINSIGHT_TTL_DAYS", default_value_t = DEFAULT_TTL_DAYS)]
    pub ttl_days: u32,
    /// The sharded schema for this ClickHouse cluster (ON CLUSTER, Replicated tables, a
    /// Distributed redis_records_raw).
    #[arg(long, env = "RDBINSIGHT_ON_CLUSTER")]
    pub on_cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct ClickHouseDropBatchArgs {
    #[command(flatten)]
    pub conn: ClickHouseConnArgs,
    /// Cluster name (the `cluster` column).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: String,
    /// The batch timestamp, RFC 3339 (as printed by rdbinsight).
    #[arg(long, env = "RDBINSIGHT_BATCH")]
    pub batch: String,
}

/// The output `into-clickhouse` describes (`ttl_days` and `auto_create` given for
/// `drop-batch`, which creates nothing).
fn build(
    conn: &ClickHouseConnArgs,
    auto_create: bool,
    ttl_days: u32,
) -> anyhow::Result<ClickHouseOutput> {
    let mut config =
        ClickHouseConfig::new(&conn.url, conn.proxy_url.as_deref(), auto_create, ttl_days)?
            .with_on_cluster(conn.on_cluster.as_deref())?;
    config.timeouts = conn.timeouts.timeouts();
    let mut output = ClickHouseOutput::new(config)?;
    output.set_claim_expiry(Duration::from_secs(conn.ch_claim_expiry));
    output.set_cleanup_timeout(Duration::from_secs(conn.ch_cleanup_timeout));
    Ok(output)
}

/// The output of `into-clickhouse`.
pub fn output(args: &IntoClickHouseArgs) -> anyhow::Result<ClickHouseOutput> {
    build(&args.conn, args.auto_create_tables, args.ttl_days)
}

/// `rdbinsight misc clickhouse-schema`.
pub fn print_schema(args: &ClickHouseSchemaArgs) -> anyhow::Result<()> {
    let on_cluster = ClickHouseConfig::on_cluster_name(args.on_cluster.as_deref())?;
    print!("{}", schema_sql(args.ttl_days, on_cluster.as_deref()));
    Ok(())
}

/// `rdbinsight misc clickhouse-drop-batch`.
pub fn drop_batch(args: ClickHouseDropBatchArgs) -> anyhow::Result<()> {
    let batch = BatchContext {
        cluster: args.cluster.clone(),
        batch: BatchTs::parse_rfc3339(&args.batch).context("invalid --batch")?,
    };
    let mut output = build(&args.conn, false, DEFAULT_TTL_DAYS)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (rows, markers) = runtime
        .block_on(output.drop_batch(&batch))
        .with_context(|| {
            format!(
                "cannot drop batch {} of cluster {}",
                batch.batch, batch.cluster
            )
        })?;
    tracing::info!(
        "dropped batch {} of cluster {}: {rows} rows{}",
        batch.batch,
        batch.cluster,
        if markers > 0 {
            " and its completion marker"
        } else {
            " (it was not complete)"
        }
    );
    Ok(())
}
