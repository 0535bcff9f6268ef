//! `vantage server`: loads the configuration through `vantage_server::config` (flags over
//! `VANTAGE_*` variables over the TOML file), starts the server and runs it until Ctrl-C or
//! SIGTERM.
//!
//! Start-up facts go to stdout (logs go to stderr): the addresses actually bound — port 0 picks a
//! free one, so scripts and tests read them here — the CA fingerprint and, on first start only,
//! the admin token, which is never shown again. `--json` prints the same as one JSON line.

use serde::Serialize;
use vantage_server::{ServerConfig, ServerOverrides};

use crate::cli::ServerArgs;
use crate::output::{self, EXIT_OK};

/// What `vantage server` prints once it accepts connections.
#[derive(Debug, Serialize)]
struct Started {
    /// API base URL.
    api: String,
    /// Address of the agent port.
    agent_listen: String,
    /// URL agents dial.
    agent_url: String,
    /// SHA-256 of the CA certificate.
    ca_fingerprint: String,
    /// Data directory.
    data_dir: String,
    /// Whether the built-in agent runs.
    local_agent: bool,
    /// The admin token created on this start (first start only).
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_token: Option<String>,
    /// Measurements resumed from before the start.
    resumed: usize,
}

pub async fn run(a: ServerArgs) -> u8 {
    let overrides = ServerOverrides {
        data_dir: a.data_dir,
        listen: a.listen,
        agent_listen: a.agent_listen,
        local_agent: a.no_local_agent.then_some(false),
        agent_url: a.agent_url,
    };
    let config = match ServerConfig::load(a.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => return output::usage_error(e),
    };
    let local_agent = config.local_agent;
    let data_dir = config.data_dir.display().to_string();
    let server = match vantage_server::start(config).await {
        Ok(s) => s,
        Err(e) => return output::usage_error(format!("the server cannot start: {e}")),
    };
    let api = format!("http://{}", server.api_addr);
    let started = Started {
        api: api.clone(),
        agent_listen: server.agent_addr.to_string(),
        agent_url: server.agent_url.clone(),
        ca_fingerprint: server.ca_fingerprint.clone(),
        data_dir,
        local_agent,
        admin_token: server.first_admin_token.clone(),
        resumed: server.resumed,
    };
    if a.json {
        match serde_json::to_string(&started) {
            Ok(line) => println!("{line}"),
            Err(e) => tracing::error!("cannot print the start-up facts: {e}"),
        }
    } else {
        print_started(&started);
    }
    vantage_agent::cli::shutdown_signal().await;
    eprintln!("vantage: stopping the server");
    server.stop().await;
    EXIT_OK
}

fn print_started(s: &Started) {
    println!("Vantage server is running (Ctrl-C stops it).");
    println!(
        "  API:     {}   (OpenAPI: {}/api/v1/openapi.json)",
        s.api, s.api
    );
    println!(
        "  agents:  {}   (agent port {})",
        s.agent_url, s.agent_listen
    );
    println!("  CA:      SHA-256 {}", s.ca_fingerprint);
    println!("  data:    {}", s.data_dir);
    println!(
        "  built-in local agent: {}",
        if s.local_agent { "on" } else { "off" }
    );
    if s.resumed > 0 {
        println!("  resumed {} unfinished measurement(s)", s.resumed);
    }
    let token = match &s.admin_token {
        Some(t) => {
            println!();
            println!("Admin API token (shown only this once; keep it):");
            println!("  {t}");
            t.as_str()
        }
        None => "<your token>",
    };
    println!();
    println!("Use it from another terminal:");
    println!("  export VANTAGE_SERVER={} VANTAGE_TOKEN={token}", s.api);
    println!("  vantage agents");
    println!("  vantage ping --from all -c 3 127.0.0.1");
    println!("  vantage agents token      enrol another agent: prints the command for its host");
}
