//! `vantage trace`: the classic per-hop listing, one line per TTL with every probe's time and
//! each responding address where it changes (traceroute's format); with `--flows`, one line per
//! responding address with the flows that reached it. Also what `vantage mtr` shares: flags to
//! spec, running, JSON, exit codes.
//!
//! Exit codes: 0 the destination answered, 1 it did not (timeout, a router's unreachable),
//! 2 bad input, an unknown host or no permission for raw sockets.

use std::net::IpAddr;

use vantage_proto::{
    Detail, MeasurementResult, MeasurementSpec, TraceDetail, TraceHop, TraceProtocol, TraceSpec,
    defaults,
};

use super::{cancel_on_ctrl_c, print_errors, run_with_progress, validate_all};
use crate::cli::{TraceArgs, TraceOpts};
use crate::output::{self, ms};

pub async fn run(a: TraceArgs) -> u8 {
    let default_probes = if a.opts.flows > 1 {
        1
    } else {
        defaults::TRACE_PROBES
    };
    let spec = spec(&a.opts, 1, defaults::TRACE_INTERVAL, default_probes);
    execute(spec, &a.opts, print_listing).await
}

/// The spec for the shared flags; `rounds`, `interval` and the default probes per hop are the
/// subcommand's.
pub(super) fn spec(o: &TraceOpts, rounds: u32, interval: f64, default_probes: u8) -> TraceSpec {
    TraceSpec {
        target: o.target.clone(),
        protocol: o.protocol,
        port: o.port,
        source_port: o.source_port,
        first_ttl: o.first_ttl,
        max_ttl: o.max_ttl,
        probes: o.probes.unwrap_or(default_probes),
        timeout: o.timeout,
        size: o.size,
        flows: o.flows,
        rounds,
        interval,
        rdns: !o.no_dns,
        tos: o.tos,
        source: o.source,
        family: o.family(),
    }
}

/// Validates, runs and prints one trace spec; returns the exit code.
pub(super) async fn execute(spec: TraceSpec, o: &TraceOpts, render: fn(&MeasurementResult)) -> u8 {
    let json = o.json;
    let specs = [MeasurementSpec::Trace(spec)];
    if let Err(code) = validate_all(&specs) {
        return code;
    }
    if let Some(code) = super::remote::maybe_run(&o.remote, &specs, json).await {
        return code;
    }
    let cx = cancel_on_ctrl_c(vantage_probe::Context::default());
    let results = run_with_progress(&specs, &cx).await;
    if json {
        if let Err(e) = output::print_json_lines(&results) {
            return output::usage_error(format!("cannot write output: {e}"));
        }
    } else {
        for r in &results {
            render(r);
        }
    }
    output::exit_code(&results)
}

/// The heading line both renderings start with.
pub(super) fn heading(r: &MeasurementResult, d: &TraceDetail, extra: &str) -> String {
    let proto = match d.protocol {
        TraceProtocol::Icmp => "ICMP",
        TraceProtocol::Udp => "UDP",
        TraceProtocol::Tcp => "TCP",
    };
    let flows = if d.flows > 1 {
        format!(", {} flows", d.flows)
    } else {
        String::new()
    };
    let target = if r.target == d.address.to_string() {
        r.target.clone()
    } else {
        format!("{} ({})", r.target, d.address)
    };
    format!(
        "trace to {target}, {proto}{flows}{extra}, {}",
        output::quality_phrase(&r.quality)
    )
}

/// An address with its name when it has one: `name (ip)`.
pub(super) fn host(ip: IpAddr, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{n} ({ip})"),
        None => ip.to_string(),
    }
}

/// traceroute's markers for a router's "unreachable": !H, !N, !P, !X, or the phrase.
pub(super) fn marker(phrase: &str) -> String {
    let m = if phrase.contains("host unreachable") || phrase.contains("address unreachable") {
        "!H"
    } else if phrase.contains("network unreachable") || phrase.contains("no route") {
        "!N"
    } else if phrase.contains("protocol unreachable") {
        "!P"
    } else if phrase.contains("prohibited") {
        "!X"
    } else {
        return format!("!<{phrase}>");
    };
    m.to_string()
}

fn mpls_line(hop: &TraceHop) -> Option<String> {
    let labels: Vec<String> = hop
        .addrs
        .iter()
        .flat_map(|a| &a.mpls)
        .map(|l| {
            format!(
                "<MPLS:L={},E={},S={},T={}>",
                l.label,
                l.tc,
                u8::from(l.s),
                l.ttl
            )
        })
        .collect();
    (!labels.is_empty()).then(|| format!("     {}", labels.join(" ")))
}

fn print_listing(r: &MeasurementResult) {
    let Some(Detail::Trace(d)) = &r.detail else {
        print_errors(std::slice::from_ref(r));
        return;
    };
    println!("{}", heading(r, d, ""));
    for hop in &d.hops {
        if d.flows > 1 {
            print_flows_hop(hop);
        } else {
            print_classic_hop(hop);
        }
        if let Some(line) = mpls_line(hop) {
            println!("{line}");
        }
    }
    if !r.outcome.is_ok() {
        print_errors(std::slice::from_ref(r));
    }
}

/// ` 3  name (10.1.3.2)  0.081 ms  *  other (10.1.4.2)  0.090 ms`: an address is printed when
/// it differs from the previous answer's.
fn print_classic_hop(hop: &TraceHop) {
    let mut line = format!("{:>2} ", hop.ttl);
    let mut last: Option<IpAddr> = None;
    for p in &hop.probes {
        match (p.ip, p.rtt_ms) {
            (Some(ip), Some(rtt)) => {
                if last != Some(ip) {
                    let a = hop.addrs.iter().find(|a| a.ip == ip);
                    line.push_str(&format!(" {}", host(ip, a.and_then(|a| a.rdns.as_deref()))));
                    last = Some(ip);
                }
                line.push_str(&format!("  {} ms", ms(rtt)));
                if let Some(why) = hop
                    .addrs
                    .iter()
                    .find(|a| a.ip == ip)
                    .and_then(|a| a.unreachable.as_deref())
                {
                    line.push_str(&format!(" {}", marker(why)));
                }
            }
            _ => line.push_str(" *"),
        }
    }
    if hop.probes.is_empty() {
        line.push_str(" (not probed)");
    }
    println!("{line}");
}

/// One line per responding address with the flows that reached it.
fn print_flows_hop(hop: &TraceHop) {
    if hop.addrs.is_empty() {
        println!("{:>2}  * ({} probes, no answer)", hop.ttl, hop.sent);
        return;
    }
    for (i, a) in hop.addrs.iter().enumerate() {
        let ttl = if i == 0 {
            format!("{:>2}", hop.ttl)
        } else {
            "  ".to_string()
        };
        let flows: Vec<String> = a.flows.iter().map(u16::to_string).collect();
        let rtt = a
            .rtt_ms
            .map(|s| format!("  avg {} ms", ms(s.avg)))
            .unwrap_or_default();
        let lost = if a.received < a.sent {
            format!("  {}/{} answered", a.received, a.sent)
        } else {
            String::new()
        };
        let why = a
            .unreachable
            .as_deref()
            .map(|w| format!(" {}", marker(w)))
            .unwrap_or_default();
        println!(
            "{ttl}  {}  flows {}{rtt}{lost}{why}",
            host(a.ip, a.rdns.as_deref()),
            flows.join(",")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_phrases_become_traceroute_markers() {
        assert_eq!(marker("destination host unreachable"), "!H");
        assert_eq!(marker("destination network unreachable"), "!N");
        assert_eq!(marker("communication administratively prohibited"), "!X");
        assert_eq!(marker("no route to destination"), "!N");
        assert_eq!(marker("source route failed"), "!<source route failed>");
    }
}
