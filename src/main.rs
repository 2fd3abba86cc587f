//! The `rdbinsight` binary: parse arguments, set up logging (stderr), run, map errors to exit
//! codes (0 only on full success, 1 otherwise, one `error: ...` line with the cause chain).

mod cli;

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Dump(args) => cli::run::run_dump(*args),
        cli::Command::Misc(cli::MiscCommand::ClickhouseSchema(args)) => {
            cli::clickhouse::print_schema(&args)
        }
        cli::Command::Misc(cli::MiscCommand::ClickhouseDropBatch(args)) => {
            cli::clickhouse::drop_batch(args)
        }
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes. A backtrace only when asked for.
            let mut line = format!("error: {err}");
            for cause in err.chain().skip(1) {
                line.push_str(": ");
                line.push_str(&cause.to_string());
            }
            eprintln!("{line}");
            if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
                eprintln!("{}", err.backtrace());
            }
            ExitCode::FAILURE
        }
    }
}
