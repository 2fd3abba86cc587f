//! The `rdbinsight` binary: parse arguments, set up logging (stderr), run, map errors to exit
//! codes (see [`cli::EXIT_CODES`]): one `error: ...` line with the cause chain on failure.

mod cli;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use cli::logging::{self, Stderr};

fn run(cli: cli::Cli, env: cli::run::DumpEnv) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Dump(args) => cli::run::run_dump(*args, env),
        cli::Command::Report(cmd) => cli::report::run_report(*cmd),
        cli::Command::Misc(cli::MiscCommand::ClickhouseSchema(args)) => {
            cli::clickhouse::print_schema(&args)
        }
        cli::Command::Misc(cli::MiscCommand::ClickhouseDropBatch(args)) => {
            cli::clickhouse::drop_batch(args)
        }
        cli::Command::Misc(cli::MiscCommand::Completion(args)) => {
            cli::completion::write(args.shell, &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Allocations of at least this many bytes get their own mapping, returned to the system when
/// freed. glibc starts at 128 KiB but raises the limit to the largest block freed so far (up
/// to 32 MiB): after one huge key, every later huge buffer (a 10 MiB key, its Parquet page)
/// would come from the heap, whose freed space is kept (+20 MiB peak on 40 keys of 10 MiB).
/// A fixed limit keeps large buffers out of the heap; ordinary buffers (micro-batches, pages,
/// read blocks: at most a few MiB) stay below it and are reused as before.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 4 << 20;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt sets one of glibc's allocator parameters: it takes two integers, no
    // pointers, and takes the allocator's own lock; called before any other thread starts.
    // A refused value (returns 0) leaves glibc's default, which is only a larger peak.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    // Usage errors: clap prints them and exits with 2.
    let cli = cli::Cli::parse();
    // Progress bars only on a terminal; the log writer prints above them.
    let bars = std::io::stderr()
        .is_terminal()
        .then(rdbinsight::dump::terminal_bars);
    let stderr = Stderr::new(bars.clone());
    logging::init(cli.verbose, cli.log_format, stderr.clone());
    let format = cli.log_format;
    let env = cli::run::DumpEnv {
        bars,
        stderr: stderr.clone(),
    };
    match run(cli, env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let line = logging::error_line(&err);
            let code = cli::exit_code(&err);
            tracing::debug!("error details: {err:?}");
            match format {
                cli::LogFormat::Text => stderr.line(&line),
                cli::LogFormat::Json => tracing::error!(exit_code = code, "{line}"),
            }
            ExitCode::from(code)
        }
    }
}
