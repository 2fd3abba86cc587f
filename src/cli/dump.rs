//! `rdbinsight dump <source> ... <output> ...`

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Instances dumped at once (default: number of cores, at most 8).
    #[arg(long, env = "RDBINSIGHT_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,

    /// Do not verify the RDB CRC64 checksum.
    #[arg(long, env = "RDBINSIGHT_SKIP_CHECKSUM")]
    pub skip_checksum: bool,

    /// Serve Prometheus metrics on http://ADDR/metrics while the dump runs (e.g.
    /// 127.0.0.1:9187): per instance records, bytes, state and duration, process memory and
    /// CPU. The address is bound before the dump starts; a busy address is an error.
    #[arg(long, env = "RDBINSIGHT_PROMETHEUS", value_name = "ADDR")]
    pub prometheus: Option<String>,

    /// Write the final metrics, the exit status and the last success time to PATH when the
    /// dump ends, also when it fails (atomically, in the format of node_exporter's textfile
    /// collector: name it *.prom in the collector's directory).
    #[arg(long, env = "RDBINSIGHT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Memory model of `mem_size`: the server whose layout to follow (default: the RDB's
    /// `redis-ver`/`valkey-ver`; a live source's `INFO`).
    #[arg(long, env = "RDBINSIGHT_MEMORY_VERSION", value_name = "SERVER",
          value_parser = ["redis-6.2", "redis-7.0", "redis-7.2", "redis-7.4", "valkey-8.0"])]
    pub memory_version: Option<String>,

    /// Allocator of the server that loads the RDB: jemalloc (bundled build: release
    /// tarballs, official images; the default), jemalloc-16 (distribution packages, e.g.
    /// Debian's; `MEMORY MALLOC-STATS` says `Quantum size: 16`) or libc. Live sources detect
    /// it where `MEMORY MALLOC-STATS` is allowed.
    #[arg(long, env = "RDBINSIGHT_MEMORY_ALLOCATOR", value_name = "ALLOCATOR",
          value_parser = ["jemalloc", "jemalloc-16", "libc"])]
    pub memory_allocator: Option<String>,

    /// The loading server's settings, where not the version's defaults: NAME=VALUE,...
    /// (hash/zset/set limits such as hash-max-listpack-entries, list-max-listpack-size,
    /// maxmemory, maxmemory-policy, cluster-enabled=yes). Live sources read them with
    /// `CONFIG GET` where allowed; these override.
    #[arg(long, env = "RDBINSIGHT_MEMORY_CONFIG", value_name = "LIST")]
    pub memory_config: Option<String>,

    /// Do not compute `mem_size` (left NULL).
    #[arg(long, env = "RDBINSIGHT_NO_MEMORY")]
    pub no_memory: bool,

    #[command(subcommand)]
    pub source: SourceCommand,
}

impl DumpArgs {
    /// The memory model's inputs given by flags (`None` with --no-memory).
    pub fn memory_options(
        &self,
    ) -> Result<Option<rdbinsight::memory::MemoryOptions>, rdbinsight::memory::SettingError> {
        use rdbinsight::memory::{Allocator, MemoryOptions, ServerVersion};
        if self.no_memory {
            return Ok(None);
        }
        let mut o = MemoryOptions {
            version: self
                .memory_version
                .as_deref()
                .and_then(ServerVersion::parse),
            allocator: self.memory_allocator.as_deref().and_then(Allocator::parse),
            ..MemoryOptions::default()
        };
        if let Some(list) = &self.memory_config {
            o.apply_config_list(list)?;
        }
        Ok(Some(o))
    }
}

/// What every source takes after its own flags: the batch flags, then the output subcommand.
#[derive(Debug, Args)]
pub struct CommonSourceArgs {
    /// Batch (import) timestamp, RFC 3339 (default: now).
    #[arg(long, env = "RDBINSIGHT_BATCH_TIMESTAMP")]
    pub batch_timestamp: Option<String>,
    /// Accept a --batch-timestamp more than 5 minutes in the future. Such a batch stays the
    /// latest one (the ClickHouse view, the newest Parquet batch) until that time has passed.
    #[arg(long, env = "RDBINSIGHT_ALLOW_FUTURE_BATCH")]
    pub allow_future_batch: bool,
    /// Where the records go.
    #[command(subcommand)]
    pub output: OutputCommand,
}

/// What every live source (standalone, cluster, Codis) takes after its own flags.
#[derive(Debug, Args)]
pub struct LiveSourceArgs {
    #[command(flatten)]
    pub conn: ConnectionArgs,
    #[command(flatten)]
    pub common: CommonSourceArgs,
}

/// Variants are named after their subcommands (`from-*`).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Read an RDB file.
    FromFile(FromFileArgs),
    /// Stream the snapshot of a live standalone Redis over replication (nothing saved to disk).
    FromStandalone(FromStandaloneArgs),
    /// Stream every shard of a Redis Cluster (a replica of each shard preferred).
    FromCluster(FromClusterArgs),
    /// Stream every group of a Codis cluster, found through its dashboard.
    FromCodis(FromCodisArgs),
}

impl SourceCommand {
    /// The arguments every source has (the batch flags and the output).
    pub fn common(&self) -> &CommonSourceArgs {
        match self {
            SourceCommand::FromFile(a) => &a.common,
            SourceCommand::FromStandalone(a) => &a.live.common,
            SourceCommand::FromCluster(a) => &a.live.common,
            SourceCommand::FromCodis(a) => &a.live.common,
        }
    }

    /// The arguments of a live source (`None` for a file).
    pub fn live(&self) -> Option<&LiveSourceArgs> {
        match self {
            SourceCommand::FromFile(_) => None,
            SourceCommand::FromStandalone(a) => Some(&a.live),
            SourceCommand::FromCluster(a) => Some(&a.live),
            SourceCommand::FromCodis(a) => Some(&a.live),
        }
    }
}

#[derive(Debug, Args)]
pub struct FromFileArgs {
    /// The RDB file.
    #[arg(long, env = "RDBINSIGHT_PATH")]
    pub path: PathBuf,
    /// Cluster name (the `cluster` column).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: String,
    /// Instance name (the `instance` column), e.g. the host:port the file came from.
    #[arg(long, env = "RDBINSIGHT_INSTANCE")]
    pub instance: String,
    #[command(flatten)]
    pub common: CommonSourceArgs,
}

/// Credentials and TLS for live sources.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectionArgs {
    /// ACL user name (AUTH user password).
    #[arg(long, env = "RDBINSIGHT_USERNAME")]
    pub username: Option<String>,
    /// Password (AUTH password). Prefer the environment variable over the flag.
    #[arg(long, env = "RDBINSIGHT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Connect with TLS (system roots).
    #[arg(long, env = "RDBINSIGHT_TLS")]
    pub tls: bool,
    /// CA certificate (PEM) to trust for TLS; implies --tls.
    #[arg(long, env = "RDBINSIGHT_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Do not verify the server's TLS certificate; implies --tls.
    #[arg(long, env = "RDBINSIGHT_TLS_INSECURE")]
    pub tls_insecure: bool,
    /// Client certificate chain (PEM) for servers with `tls-auth-clients yes`; needs
    /// --tls-key; implies --tls.
    #[arg(long, env = "RDBINSIGHT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, env = "RDBINSIGHT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds allowed for the TCP connection and the TLS handshake.
    #[arg(long, env = "RDBINSIGHT_CONNECT_TIMEOUT", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds without any byte from the server before giving up: each reply of the
    /// handshake (AUTH, PING, REPLCONF, PSYNC; a loading server answers late), then each read
    /// of the snapshot (a big master may prepare it for minutes; keep-alive newlines count).
    #[arg(long, env = "RDBINSIGHT_READ_TIMEOUT", default_value_t = 600)]
    pub read_timeout: u64,
}

#[derive(Debug, Args)]
pub struct FromStandaloneArgs {
    /// The server, HOST:PORT.
    #[arg(long, env = "RDBINSIGHT_ADDR")]
    pub addr: String,
    /// Cluster name (the `cluster` column).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: String,
    #[command(flatten)]
    pub live: LiveSourceArgs,
}

#[derive(Debug, Args)]
pub struct FromClusterArgs {
    /// Seed nodes, HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "RDBINSIGHT_NODES", value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// Cluster name (the `cluster` column).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: String,
    /// Fail instead of reading a master when a shard has no healthy replica.
    #[arg(long, env = "RDBINSIGHT_REQUIRE_SLAVE")]
    pub require_slave: bool,
    #[command(flatten)]
    pub live: LiveSourceArgs,
}

#[derive(Debug, Args)]
pub struct FromCodisArgs {
    /// Codis dashboard URL, e.g. http://dashboard:18080.
    #[arg(long, env = "RDBINSIGHT_DASHBOARD")]
    pub dashboard: String,
    /// Cluster name (default: the Codis product name).
    #[arg(long, env = "RDBINSIGHT_CLUSTER")]
    pub cluster: Option<String>,
    /// Fail instead of reading a master or read replica when a group has no spare replica.
    #[arg(long, env = "RDBINSIGHT_REQUIRE_SLAVE")]
    pub require_slave: bool,
    #[command(flatten)]
    pub live: LiveSourceArgs,
}

/// Variants are named after their subcommands (`into-*`).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Subcommand)]
pub enum OutputCommand {
    /// One JSON object per record, one per line.
    IntoJsonl(IntoJsonlArgs),
    /// Parquet files under a directory (the embedded default).
    IntoParquet(IntoParquetArgs),
    /// A ClickHouse database over HTTP.
    IntoClickhouse(super::clickhouse::IntoClickHouseArgs),
    /// Discard the records: parse and validate only (for checks and benchmarks).
    IntoNull,
}

#[derive(Debug, Args)]
pub struct IntoJsonlArgs {
    /// Output file, or '-' for stdout.
    #[arg(long, short, env = "RDBINSIGHT_OUTPUT", default_value = "-")]
    pub output: String,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ParquetCompression {
    Zstd,
    Snappy,
    Lz4,
    None,
}

#[derive(Debug, Args)]
pub struct IntoParquetArgs {
    /// Root directory; files go to DIR/cluster=<cluster>/batch=<timestamp>/<instance>.parquet.
    #[arg(long, env = "RDBINSIGHT_DIR")]
    pub dir: PathBuf,
    /// Column compression.
    #[arg(long, env = "RDBINSIGHT_COMPRESSION", value_enum, default_value_t = ParquetCompression::Zstd)]
    pub compression: ParquetCompression,
}
