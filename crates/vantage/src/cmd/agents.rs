//! `vantage agents`: the server's agents, one row each (or one JSON object per line), read with
//! `vantage_server::client` from `GET /api/v1/agents`; `vantage agents token` creates a one-time
//! enrolment token (`POST /api/v1/enrollment-tokens`) and prints the command that uses it.

use vantage_server::api::types::AgentView;

use super::remote::{client_for, location};
use crate::cli::{AgentsArgs, AgentsCommand, AgentsTokenArgs};
use crate::output::{self, EXIT_OK};

pub async fn run(a: AgentsArgs) -> u8 {
    if let Some(AgentsCommand::Token(t)) = a.command {
        return token(t).await;
    }
    let client = match client_for(&a.conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let list = match client.agents().await {
        Ok(l) => l,
        Err(e) => return output::usage_error(super::remote::describe_client_error(&e)),
    };
    if a.json {
        for agent in &list.items {
            match serde_json::to_string(agent) {
                Ok(line) => println!("{line}"),
                Err(e) => return output::usage_error(format!("cannot write output: {e}")),
            }
        }
        return EXIT_OK;
    }
    if list.items.is_empty() {
        println!("No agents yet. Enrol one with `vantage agent enroll` (see `vantage server`).");
        return EXIT_OK;
    }
    let header = [
        "NAME",
        "STATUS",
        "LOCATION",
        "LABELS",
        "VERSION",
        "ADDRESS",
        "LAST SEEN",
        "ID",
    ];
    let rows: Vec<Vec<String>> = list.items.iter().map(row).collect();
    output::print_rows(&header, header.len(), &rows);
    EXIT_OK
}

fn row(a: &AgentView) -> Vec<String> {
    let dash = || "-".to_string();
    let mut labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if labels.is_empty() {
        labels.push(dash());
    }
    vec![
        a.name.clone(),
        a.status.to_string(),
        location(
            a.city.as_deref(),
            a.region.as_deref(),
            a.country.as_deref(),
            a.asn,
        ),
        labels.join(","),
        a.version.clone().unwrap_or_else(dash),
        a.seen_address.clone().unwrap_or_else(dash),
        a.last_seen
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(dash),
        a.id.to_string(),
    ]
}

async fn token(a: AgentsTokenArgs) -> u8 {
    let client = match client_for(&a.conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let t = match client.create_enrollment_token(a.ttl).await {
        Ok(t) => t,
        Err(e) => return output::usage_error(super::remote::describe_client_error(&e)),
    };
    if a.json {
        return match serde_json::to_string(&t) {
            Ok(line) => {
                println!("{line}");
                EXIT_OK
            }
            Err(e) => output::usage_error(format!("cannot write output: {e}")),
        };
    }
    println!(
        "Enrolment token (one use, valid until {}):",
        t.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("  {}", t.token);
    println!("On the agent's host, enrol it (add --name, --label k=v, --country … as needed):");
    println!("  {}", t.command);
    println!("then run it: vantage agent   (or vantage-agent, the same flags)");
    EXIT_OK
}
