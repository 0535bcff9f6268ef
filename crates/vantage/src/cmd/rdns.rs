//! `vantage rdns`: PTR names of addresses and of every address in prefixes, resolved
//! concurrently. Exit 1 when some address has no name or its lookup failed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use vantage_lookup::rdns::{PtrStatus, RdnsOptions, ReverseDns};

use super::lookups::{fail, json_line};
use crate::cli::RdnsArgs;
use crate::output::{EXIT_OK, EXIT_SOME_FAILED, print_table, table, usage_error};

pub async fn run(a: RdnsArgs) -> u8 {
    inner(a).await.unwrap_or_else(|code| code)
}

/// Addresses of the targets, prefixes expanded (every address, network and broadcast included:
/// they can have PTR records too).
fn expand(targets: &[String], max: usize) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for t in targets {
        let t = t.trim();
        if let Ok(ip) = t.parse::<IpAddr>() {
            out.push(ip);
        } else if t.contains('/') {
            let net = vantage_lookup::ipcalc::parse_net(t).map_err(|e| e.to_string())?;
            let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
            if host_bits > 32 || out.len() + (1usize << host_bits) > max {
                return Err(format!(
                    "{net} has more addresses than --max-targets allows ({max})"
                ));
            }
            match net {
                ipnet::IpNet::V4(n) => {
                    let (a, b) = (u32::from(n.network()), u32::from(n.broadcast()));
                    out.extend((a..=b).map(|v| IpAddr::from(std::net::Ipv4Addr::from(v))));
                }
                ipnet::IpNet::V6(n) => {
                    let (a, b) = (u128::from(n.network()), u128::from(n.broadcast()));
                    out.extend((a..=b).map(|v| IpAddr::from(std::net::Ipv6Addr::from(v))));
                }
            }
        } else {
            return Err(format!(
                "'{t}' is not an IP address or prefix (e.g. 192.0.2.1, 2001:db8::1, 192.0.2.0/28)"
            ));
        }
        if out.len() > max {
            return Err(format!("more than {max} addresses; raise --max-targets"));
        }
    }
    Ok(out)
}

fn server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("'{s}' is not a DNS server address (IP or IP:PORT, [IPv6]:PORT)"))
}

async fn inner(a: RdnsArgs) -> Result<u8, u8> {
    if !(a.timeout > 0.0 && a.timeout <= 60.0) {
        return Err(usage_error("--timeout must be between 0 and 60 seconds"));
    }
    if a.concurrency == 0 || a.concurrency > 1024 {
        return Err(usage_error("--concurrency must be between 1 and 1024"));
    }
    let ips = expand(&a.targets, a.max_targets).map_err(usage_error)?;
    let servers: Vec<SocketAddr> = a
        .servers
        .iter()
        .map(|s| server(s))
        .collect::<Result<_, _>>()
        .map_err(usage_error)?;
    let opts = RdnsOptions {
        timeout: Duration::from_secs_f64(a.timeout),
        concurrency: a.concurrency,
        ..RdnsOptions::default()
    };
    let resolver = if servers.is_empty() {
        ReverseDns::system(opts)
    } else {
        ReverseDns::with_servers(&servers, opts)
    }
    .map_err(|e| fail(&e))?;
    let pb = crate::output::progress(
        Duration::from_secs_f64(a.timeout * (ips.len() / a.concurrency + 1) as f64),
        format!("reverse DNS of {} addresses", ips.len()),
    );
    let answers = resolver.lookup_many(&ips).await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if a.json {
        for r in &answers {
            json_line(r)?;
        }
    } else {
        let mut t = table(&["ADDRESS", "NAME"], 2);
        for r in &answers {
            let name = match r.status {
                PtrStatus::Ok => r.names.join(" "),
                PtrStatus::NoName => "(no PTR record)".into(),
                PtrStatus::Timeout => "(timeout)".into(),
                PtrStatus::Error => "(lookup failed)".into(),
            };
            t.add_row(vec![r.ip.to_string(), name]);
        }
        print_table(&t);
        let mut errors: Vec<&str> = answers.iter().filter_map(|r| r.error.as_deref()).collect();
        errors.dedup();
        for e in errors.iter().take(5) {
            eprintln!("vantage: {e}");
        }
    }
    Ok(if answers.iter().all(|r| r.status == PtrStatus::Ok) {
        EXIT_OK
    } else {
        EXIT_SOME_FAILED
    })
}
