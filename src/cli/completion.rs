//! `rdbinsight misc completion --shell SHELL`: a completion script generated from the clap
//! definitions by `clap_complete`, so it always matches the real subcommands and flags.

use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(long, value_enum, env = "RDBINSIGHT_SHELL")]
    pub shell: Shell,
}

/// Write the script for `shell` to `out`.
pub fn write(shell: Shell, out: &mut dyn std::io::Write) {
    let mut cmd = super::Cli::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
}
