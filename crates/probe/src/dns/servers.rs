//! Which servers a DNS measurement asks: the ones the spec names (resolved, then checked against
//! the destination policy), or the system's resolvers from `/etc/resolv.conf`.
//!
//! The system's resolvers are exempt from the policy: they are the host's own configuration
//! (often 127.0.0.53 or a LAN router), not a destination a remote user chose, so asking them
//! opens no path into the agent's network that ordinary name resolution does not.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::Path;

use vantage_proto::{DnsSpec, Endpoint, Family, Host, Outcome, defaults};

use crate::{Context, policy, resolve};

/// Where the system's resolvers are configured.
pub(super) const RESOLV_CONF: &str = "/etc/resolv.conf";

/// One server to ask, or why it cannot be asked.
#[derive(Debug, Clone)]
pub(super) struct Server {
    /// The server as the user wrote it (or as resolv.conf lists it).
    pub given: String,
    /// The address to query, or the outcome and sentence that stop it.
    pub addr: Result<SocketAddr, (Outcome, String)>,
}

/// The servers of `spec`, in order; an error sentence when there are none to ask.
pub(super) async fn choose(spec: &DnsSpec, cx: &Context) -> Result<Vec<Server>, String> {
    if spec.servers.is_empty() {
        return system(Path::new(RESOLV_CONF), spec.family);
    }
    let endpoints = spec
        .server_endpoints()
        .map_err(|e| format!("invalid server: {}", e.message))?;
    let lookups = endpoints
        .into_iter()
        .zip(&spec.servers)
        .map(|(ep, given)| given_server(ep, given.clone(), spec, cx));
    Ok(futures::future::join_all(lookups).await)
}

async fn given_server(ep: Endpoint, given: String, spec: &DnsSpec, cx: &Context) -> Server {
    let ip = match &ep.host {
        Host::Ip(ip) => Ok(*ip),
        // The first address of the name, like dig's @name.
        Host::Name(name) => resolve::resolve_all(name, spec.family)
            .await
            .map(|all| all[0])
            .map_err(|e| {
                (
                    Outcome::DnsFailure,
                    format!("cannot ask DNS server {given}: {e}"),
                )
            }),
    };
    let addr = ip.and_then(|ip| {
        policy::check(ip, spec.allow_private, cx)
            .map(|()| SocketAddr::new(ip, ep.port))
            .map_err(|e| {
                (
                    Outcome::BlockedByPolicy,
                    format!("DNS server {given} refused by policy: {e}"),
                )
            })
    });
    Server { given, addr }
}

/// The `nameserver` lines of a resolv.conf, filtered by family.
fn system(path: &Path, family: Option<Family>) -> Result<Vec<Server>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "no DNS server given and the system's resolvers cannot be read from {}: {e}",
            path.display()
        )
    })?;
    let servers: Vec<Server> = parse_resolv_conf(&text)
        .into_iter()
        .filter(|a| family.is_none_or(|f| Family::of(a.ip()) == f))
        .map(|a| Server {
            given: a.ip().to_string(),
            addr: Ok(a),
        })
        .collect();
    if servers.is_empty() {
        let which = family.map(|f| format!("{f} ")).unwrap_or_default();
        return Err(format!(
            "no DNS server given and {} lists no {which}nameserver; name one with @SERVER",
            path.display()
        ));
    }
    Ok(servers)
}

/// Nameserver addresses of a resolv.conf text (port 53; `fe80::1%eth0` scopes resolved to the
/// interface index).
fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        let (ip_text, scope) = match addr.split_once('%') {
            Some((ip, scope)) => (ip, Some(scope)),
            None => (addr, None),
        };
        let Ok(ip) = ip_text.parse::<IpAddr>() else {
            continue;
        };
        let sa = match (ip, scope) {
            (IpAddr::V6(v6), Some(scope)) => {
                let index = scope
                    .parse::<u32>()
                    .ok()
                    .or_else(|| nix::net::if_::if_nametoindex(scope).ok());
                match index {
                    Some(i) => SocketAddr::V6(SocketAddrV6::new(v6, defaults::DNS_PORT, 0, i)),
                    None => continue,
                }
            }
            _ => SocketAddr::new(ip, defaults::DNS_PORT),
        };
        out.push(sa);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_are_read_in_order() {
        let text = "# generated\nsearch example.com\nnameserver 192.0.2.53\n\
                    nameserver 2001:db8::53 # v6\n  nameserver   198.51.100.53\n\
                    nameserver fe80::1%1\nnameserver bogus\noptions ndots:2\n";
        let got: Vec<String> = parse_resolv_conf(text)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "192.0.2.53:53",
                "[2001:db8::53]:53",
                "198.51.100.53:53",
                "[fe80::1%1]:53"
            ]
        );
    }

    #[test]
    fn a_resolv_conf_without_nameservers_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "search example.com\nnameserver 192.0.2.53\n").unwrap();
        let e = system(&path, Some(Family::Ipv6)).unwrap_err();
        assert!(e.contains("lists no IPv6 nameserver"), "{e}");
        let ok = system(&path, None).unwrap();
        assert_eq!(ok.len(), 1);
        let e = system(&dir.path().join("missing"), None).unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
    }
}
