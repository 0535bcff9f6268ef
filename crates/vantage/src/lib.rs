//! The `vantage` command line: one subcommand per measurement kind and tool, a readable table by
//! default and JSON Lines with `--json`.
//!
//! Exit codes are part of the interface so scripts can rely on them: 0 when every target answered,
//! 1 when some did not, 2 on usage or setup errors (bad arguments, unknown host, no permission).

/// Argument definitions (clap).
mod cli;
/// One module per subcommand, and the dispatching `match`.
mod cmd;
/// Which server `--from` and `vantage agents` talk to, and with which token.
mod endpoint;
/// Tables, JSON Lines and exit-code rules shared by the subcommands.
mod output;
/// Expansion of target lists, files and CIDR ranges.
mod targets;

pub use cli::{Cli, Command};
pub use output::{EXIT_OK, EXIT_SETUP, EXIT_SOME_FAILED};

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    cmd::dispatch(cli).await
}

/// Logs go to stderr; `-v` raises the level, `RUST_LOG` overrides it.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
