//! `vantage dns`: dig-like arguments (`NAME [TYPE] @SERVER…`) mapped onto a `DnsSpec`; each
//! server's answer printed the way dig prints it, then a table when several servers were asked.
//!
//! Exit codes: 0 when every server answered NOERROR, 1 when some did not (NXDOMAIN, SERVFAIL,
//! REFUSED, timeout …), 2 for bad input, a server name that does not resolve, or a server the
//! destination policy refuses (the sentence names `--allow-private`).

use vantage_proto::{
    Detail, DnsDetail, DnsSpec, DnsTransport, Endpoint, MeasurementResult, MeasurementSpec,
    Outcome, defaults,
};

use super::{print_errors, run_single};
use crate::cli::DnsArgs;
use crate::output::{self, EXIT_OK, EXIT_SETUP, EXIT_SOME_FAILED, ms};

pub async fn run(a: DnsArgs) -> u8 {
    let spec = match build_spec(&a) {
        Ok(s) => s,
        Err(e) => return output::usage_error(e),
    };
    run_single(
        MeasurementSpec::Dns(spec),
        a.json,
        &a.remote,
        print_human,
        exit_code,
    )
    .await
}

/// Splits dig-style arguments and maps the flags onto a spec (validated by the caller).
fn build_spec(a: &DnsArgs) -> Result<DnsSpec, String> {
    let mut name = None;
    let mut qtype = a.qtype.clone();
    let mut servers = Vec::new();
    for arg in &a.args {
        if let Some(server) = arg.strip_prefix('@') {
            if server.is_empty() {
                return Err("'@' must be followed by a server, for example @192.0.2.53".into());
            }
            servers.push(with_port(server, a.port));
        } else if name.is_none() {
            name = Some(arg.clone());
        } else if qtype.is_none() {
            qtype = Some(arg.clone());
        } else {
            return Err(format!(
                "unexpected argument '{arg}': give one NAME, at most one record TYPE (or -t TYPE) and any @SERVERs"
            ));
        }
    }
    let Some(name) = name else {
        return Err("a NAME to query is required, for example: vantage dns example.com".into());
    };
    let mut spec = DnsSpec::new(name);
    if let Some(t) = qtype {
        spec.qtype = t;
    }
    spec.servers = servers;
    spec.transport = if a.tcp {
        DnsTransport::Tcp
    } else {
        DnsTransport::Udp
    };
    spec.recursion = !a.norecurse;
    spec.dnssec = a.dnssec;
    spec.edns_size = a.edns_size;
    spec.timeout = a.timeout;
    spec.retries = a.retries;
    spec.allow_private = a.allow_private;
    spec.family = a.family.family();
    Ok(spec)
}

/// Applies `-p PORT` to a server written without a port; anything unparsable is left for
/// validation to explain.
fn with_port(server: &str, port: u16) -> String {
    match Endpoint::parse("servers", server, port) {
        Ok(ep) if !ep.explicit_port && port != defaults::DNS_PORT => ep.to_string(),
        _ => server.to_string(),
    }
}

fn exit_code(results: &[MeasurementResult]) -> u8 {
    results.iter().map(exit_code_one).max().unwrap_or(EXIT_OK)
}

fn exit_code_one(r: &MeasurementResult) -> u8 {
    let Some(Detail::Dns(d)) = &r.detail else {
        return if r.outcome.is_ok() {
            EXIT_OK
        } else {
            EXIT_SETUP
        };
    };
    let setup = d.servers.iter().any(|s| {
        matches!(s.outcome, Outcome::Internal | Outcome::BlockedByPolicy)
            // A server name that did not resolve: no answer, so no rcode.
            || (s.outcome == Outcome::DnsFailure && s.rcode.is_none())
    });
    if setup {
        EXIT_SETUP
    } else if d.servers.iter().all(|s| s.outcome.is_ok()) {
        EXIT_OK
    } else {
        EXIT_SOME_FAILED
    }
}

fn print_human(r: &MeasurementResult) {
    let Some(Detail::Dns(d)) = &r.detail else {
        print_errors(std::slice::from_ref(r));
        return;
    };
    println!("; <<>> vantage dns <<>> {} {}", d.name, d.qtype);
    for s in &d.servers {
        println!();
        match &s.text {
            Some(text) => println!("{text}"),
            None => println!(
                ";; {}: {}",
                s.server,
                s.error.as_deref().unwrap_or("no answer")
            ),
        }
    }
    if d.servers.len() > 1 {
        println!();
        print_table(d);
    }
    if !r.outcome.is_ok() {
        print_errors(std::slice::from_ref(r));
    }
}

fn print_table(d: &DnsDetail) {
    let mut t = output::table(
        &["SERVER", "STATUS", "RTT", "ANSWERS", "TRANSPORT", "OUTCOME"],
        1,
    );
    for s in &d.servers {
        let transport = match (s.transport, s.tcp_retry) {
            (_, true) => "udp→tcp",
            (DnsTransport::Udp, false) => "udp",
            (DnsTransport::Tcp, false) => "tcp",
        };
        t.add_row(vec![
            s.server.clone(),
            s.rcode.clone().unwrap_or_else(|| "-".into()),
            s.rtt_ms.map(ms).unwrap_or_else(|| "-".into()),
            s.answers.len().to_string(),
            transport.to_string(),
            s.outcome.to_string(),
        ]);
    }
    output::print_table(&t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_flag_applies_only_to_servers_without_one() {
        assert_eq!(with_port("127.0.0.1", 5353), "127.0.0.1:5353");
        assert_eq!(with_port("::1", 5353), "[::1]:5353");
        assert_eq!(with_port("127.0.0.1:53", 5353), "127.0.0.1:53");
        assert_eq!(with_port("127.0.0.1", 53), "127.0.0.1");
        assert_eq!(with_port("bad:port:x", 5353), "bad:port:x");
    }
}
