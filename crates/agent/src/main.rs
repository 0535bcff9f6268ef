//! `vantage-agent`: the lean agent binary for small hosts. It links the agent and the engine, no
//! server code; arguments are those of `vantage agent`.

use std::process::ExitCode;

use clap::Parser;

/// The Vantage agent: connects out to the server over mutual TLS and runs measurements.
#[derive(Debug, Parser)]
#[command(name = "vantage-agent", version)]
struct Cli {
    /// More log output on stderr (-v debug, -vv trace); info by default.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(flatten)]
    agent: vantage_agent::cli::AgentArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vantage-agent: cannot start the async runtime: {e}");
            return ExitCode::from(vantage_agent::cli::EXIT_SETUP);
        }
    };
    ExitCode::from(runtime.block_on(vantage_agent::cli::execute(cli.agent)))
}
