//! `vantage whois`: the parsed key fields, the referral chain and the last server's raw answer.
//! Exit 1 when the registry has no record or a server failed.

use std::time::Duration;

use vantage_lookup::whois::{Server, WhoisAnswer, WhoisClient, WhoisSummary};

use super::lookups::{fail, json_line, print_block};
use crate::cli::WhoisArgs;
use crate::output::{EXIT_OK, EXIT_SOME_FAILED, usage_error};

pub async fn run(a: WhoisArgs) -> u8 {
    inner(a).await.unwrap_or_else(|code| code)
}

async fn inner(a: WhoisArgs) -> Result<u8, u8> {
    if !(a.timeout > 0.0 && a.timeout <= 300.0) {
        return Err(usage_error("--timeout must be between 0 and 300 seconds"));
    }
    if a.max_hops == 0 || a.max_hops > 10 {
        return Err(usage_error("--max-hops must be between 1 and 10"));
    }
    let server = Server::parse(&a.server).map_err(|e| fail(&e))?;
    let client = WhoisClient::new()
        .timeout(Duration::from_secs_f64(a.timeout))
        .max_hops(a.max_hops)
        .follow(!a.no_follow);
    let ans = client
        .query(&a.query, Some(&server))
        .await
        .map_err(|e| fail(&e))?;
    if a.json {
        json_line(&ans)?;
    } else {
        print_answer(&ans, a.brief);
    }
    if let Some(e) = &ans.error {
        eprintln!("vantage: {e}");
    }
    Ok(if ans.found { EXIT_OK } else { EXIT_SOME_FAILED })
}

fn print_answer(ans: &WhoisAnswer, brief: bool) {
    let chain: Vec<&str> = ans.hops.iter().map(|h| h.server.as_str()).collect();
    let s: &WhoisSummary = &ans.summary;
    let list = |v: &[String]| v.join(" ");
    print_block(&[
        ("Query", ans.query.text.clone()),
        ("Servers", chain.join(" → ")),
        ("Domain", s.domain.clone().unwrap_or_default()),
        ("Registrar", s.registrar.clone().unwrap_or_default()),
        ("Range", s.range.clone().unwrap_or_default()),
        ("CIDR", list(&s.cidr)),
        ("Net name", s.netname.clone().unwrap_or_default()),
        ("AS", s.asn.clone().unwrap_or_default()),
        ("AS name", s.as_name.clone().unwrap_or_default()),
        ("Organisation", s.organisation.clone().unwrap_or_default()),
        ("Country", s.country.clone().unwrap_or_default()),
        ("Created", s.created.clone().unwrap_or_default()),
        ("Updated", s.updated.clone().unwrap_or_default()),
        ("Expires", s.expires.clone().unwrap_or_default()),
        ("Name servers", list(&s.name_servers)),
        ("Status", list(&s.status)),
        ("Abuse", s.abuse_email.clone().unwrap_or_default()),
        ("Note", ans.note.clone().unwrap_or_default()),
    ]);
    if !ans.found && ans.error.is_none() {
        println!("(the last server has no record for {})", ans.query.text);
    }
    if !brief && let Some(last) = ans.hops.last() {
        println!();
        println!("--- {} ---", last.server);
        print!("{}", last.text);
        if !last.text.ends_with('\n') {
            println!();
        }
    }
}
