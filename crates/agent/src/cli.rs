//! Arguments of `vantage agent` and of the lean `vantage-agent` binary: one definition for both,
//! so the two cannot drift apart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::{AgentConfig, DEFAULT_DATA_DIR, EnrollOptions, Error, Identity};

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: the agent ran but had to stop (revoked).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or setup (not enrolled, bad token, unreachable server).
pub const EXIT_SETUP: u8 = 2;

const AGENT_EXAMPLES: &str = "Examples:
  vantage agent enroll --server https://vantage.example.net:7781 --token vantage-enroll.… --name fra-1 --country DE --city Frankfurt
  vantage agent                          run the enrolled agent in ./vantage-agent-data
  vantage agent --data-dir /var/lib/vantage-agent --allow-private";

/// `vantage agent [enroll …]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = AGENT_EXAMPLES)]
pub struct AgentArgs {
    /// Enrol instead of running.
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// Options of the running agent.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands of `vantage agent`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Enrol this agent with a server, once: a key is generated here and a certificate request
    /// sent with the one-time token.
    Enroll(EnrollArgs),
}

/// Options of the running agent.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory holding the agent's identity and outbox.
    #[arg(long, value_name = "DIR", env = "VANTAGE_AGENT_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The server's agent URL (default: the one recorded at enrolment).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Allow measurements towards loopback, private and other non-global addresses.
    #[arg(long)]
    pub allow_private: bool,
    /// Never use raw sockets, even with CAP_NET_RAW.
    #[arg(long)]
    pub unprivileged: bool,
}

/// `vantage agent enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The server's agent URL, as printed with the token (https://HOST:PORT).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The one-time enrolment token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "VANTAGE_ENROLL_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// Directory to store the identity in.
    #[arg(long, value_name = "DIR", env = "VANTAGE_AGENT_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Agent name (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// A label, repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// ISO 3166 two-letter country code.
    #[arg(long)]
    pub country: Option<String>,
    /// City.
    #[arg(long)]
    pub city: Option<String>,
    /// Region (state, province, cloud region …).
    #[arg(long)]
    pub region: Option<String>,
    /// Autonomous system number of the agent's network.
    #[arg(long)]
    pub asn: Option<u32>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "'{s}' is not a label; write KEY=VALUE, for example env=prod"
        )),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn fail(e: &Error) -> u8 {
    eprintln!("vantage agent: {e}");
    match e {
        Error::Revoked => EXIT_FAILED,
        _ => EXIT_SETUP,
    }
}

/// Runs `vantage agent …` and returns the exit code.
pub async fn execute(args: AgentArgs) -> u8 {
    match args.command {
        Some(AgentCommand::Enroll(e)) => enroll_cmd(e).await,
        None => run_cmd(args.run).await,
    }
}

async fn enroll_cmd(e: EnrollArgs) -> u8 {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let labels: BTreeMap<String, String> = e.labels.into_iter().collect();
    let opts = EnrollOptions {
        server: e.server,
        token: e.token,
        data_dir: e.data_dir.clone(),
        name: e.name,
        labels,
        country: e.country,
        city: e.city,
        region: e.region,
        asn: e.asn,
    };
    match crate::enroll(&opts).await {
        Ok(state) => {
            if e.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "agent_id": state.agent_id,
                        "name": state.name,
                        "server": state.server,
                        "data_dir": e.data_dir,
                    })
                );
            } else {
                println!(
                    "Enrolled as '{}' ({}) with {}.\nStart it with: vantage agent --data-dir {}",
                    state.name,
                    state.agent_id,
                    state.server,
                    e.data_dir.display()
                );
            }
            EXIT_OK
        }
        Err(err) => fail(&err),
    }
}

async fn run_cmd(r: RunArgs) -> u8 {
    let mut cfg = AgentConfig::new(&r.data_dir);
    cfg.server = r.server;
    cfg.allow_private = r.allow_private;
    if r.unprivileged {
        cfg.privilege = vantage_probe::Privilege::Unprivileged;
    }
    match Identity::read_state(&r.data_dir) {
        Ok(s) => tracing::info!(agent = %s.agent_id, name = %s.name, "starting agent"),
        Err(e) => return fail(&e),
    }
    match crate::run(cfg, shutdown_signal()).await {
        Ok(()) => EXIT_OK,
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_as_key_value() {
        assert_eq!(
            parse_label("env=prod").unwrap(),
            ("env".to_string(), "prod".to_string())
        );
        assert!(parse_label("env").is_err());
        assert!(parse_label("=x").is_err());
    }
}
