//! Command-line interface (clap derive). Every flag has an `RDBINSIGHT_*` environment variable.

pub mod clickhouse;
pub mod dump;
pub mod run;

use clap::{Parser, Subcommand};

/// Turn Redis/Valkey RDB snapshots into one record per key, loaded into Parquet or ClickHouse.
#[derive(Debug, Parser)]
#[command(name = "rdbinsight", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "RDBINSIGHT_VERBOSE")]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump the keys of an RDB file or of live instances into an output.
    Dump(Box<dump::DumpArgs>),
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
}
