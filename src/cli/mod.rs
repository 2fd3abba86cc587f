//! Command-line interface (clap derive). Every flag has an `RDBINSIGHT_*` environment variable.

pub mod clickhouse;
pub mod completion;
pub mod dump;
pub mod logging;
pub mod report;
pub mod run;
pub mod source;

use clap::{Parser, Subcommand, ValueEnum};

/// What the exit codes mean; shown by `--help` and kept in the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success (for dump: every instance dumped and the batch finalized)
  1    the command failed (one `error:` line says why)
  2    usage: invalid arguments or flag values
  130  interrupted by SIGINT (Ctrl-C)
  143  interrupted by SIGTERM";

/// Turn Redis/Valkey RDB snapshots into one record per key, loaded into Parquet or ClickHouse.
#[derive(Debug, Parser)]
#[command(name = "rdbinsight", version, about, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "RDBINSIGHT_VERBOSE")]
    pub verbose: u8,

    /// Log format on stderr: `text` (coloured on a terminal unless NO_COLOR is set) or `json`
    /// (one JSON object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "RDBINSIGHT_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump the keys of an RDB file or of live instances into an output.
    #[command(after_help = EXIT_CODES)]
    Dump(Box<dump::DumpArgs>),
    /// Make the offline report (HTML and JSON) of a stored batch.
    #[command(subcommand, after_help = EXIT_CODES)]
    Report(Box<report::ReportCommand>),
    /// Helper commands.
    #[command(subcommand)]
    Misc(MiscCommand),
}

#[derive(Debug, Subcommand)]
pub enum MiscCommand {
    /// Print the ClickHouse DDL (tables and view) that `into-clickhouse` needs.
    ClickhouseSchema(clickhouse::ClickHouseSchemaArgs),
    /// Remove an import batch from ClickHouse (its completion marker and rows), so that it can
    /// be written again.
    ClickhouseDropBatch(clickhouse::ClickHouseDropBatchArgs),
    /// Print a shell completion script, e.g. `rdbinsight misc completion --shell bash >
    /// /etc/bash_completion.d/rdbinsight`.
    Completion(completion::CompletionArgs),
}

/// An invalid combination or value of arguments found after parsing: exit code 2, like the
/// usage errors clap reports itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Call `on_signal` for every SIGINT and SIGTERM, in a task of the current (running) tokio
/// runtime. The handlers are installed before this returns, so from then on a signal never
/// takes its default action (ending the process without cleanup).
pub fn on_signals(
    mut on_signal: impl FnMut(rdbinsight::dump::Signal) + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use rdbinsight::dump::Signal;
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => Signal::Int,
                _ = term.recv() => Signal::Term,
            };
            on_signal(sig);
        }
    });
    Ok(())
}

/// The exit code of a failed command: 130 / 143 when interrupted, 2 for usage errors, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(i) = cause.downcast_ref::<rdbinsight::dump::Interrupted>() {
            return i.signal.exit_code();
        }
        if let Some(i) = cause.downcast_ref::<report::ReportInterrupted>() {
            return i.signal.exit_code();
        }
        if cause.is::<UsageError>() {
            return 2;
        }
    }
    1
}
