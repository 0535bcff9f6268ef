//! Resolution of a probe target to one address, through the system resolver (getaddrinfo), so
//! `/etc/hosts` and the host's resolver configuration apply exactly as for classic tools.

use std::net::IpAddr;
use std::time::Duration;

use vantage_proto::Family;

use crate::Error;

/// How long name resolution may take before the probe gives up.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves `target` (an address literal, `[v6]` literal, or host name) to one address of the
/// requested family; IPv4 is preferred when no family is given, like iputils `ping`.
pub async fn resolve(target: &str, family: Option<Family>) -> Result<IpAddr, Error> {
    let literal = target
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(target);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return match family {
            Some(f) if Family::of(ip) != f => {
                Err(Error::Invalid(format!("{ip} is not an {f} address")))
            }
            _ => Ok(ip),
        };
    }
    let lookup = tokio::net::lookup_host((target, 0));
    let addrs: Vec<IpAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Err(_) => {
            return Err(Error::Resolve(format!(
                "could not resolve {target}: the resolver did not answer within {} s",
                RESOLVE_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => {
            return Err(Error::Resolve(format!(
                "could not resolve {target}: {}",
                describe_gai_error(&e)
            )));
        }
        Ok(Ok(it)) => it.map(|sa| sa.ip()).collect(),
    };
    let pick = |f: Family| addrs.iter().copied().find(|ip| Family::of(*ip) == f);
    let chosen = match family {
        Some(f) => pick(f),
        None => pick(Family::Ipv4).or_else(|| pick(Family::Ipv6)),
    };
    chosen.ok_or_else(|| match family {
        Some(f) => Error::Resolve(format!("{target} has no {f} address")),
        None => Error::Resolve(format!("{target} has no address")),
    })
}

/// Resolves a host name to every address of the requested family (both families when none is
/// given), in the resolver's order, which is the order a client should try them in.
pub async fn resolve_all(host: &str, family: Option<Family>) -> Result<Vec<IpAddr>, Error> {
    let lookup = tokio::net::lookup_host((host, 0));
    let addrs: Vec<IpAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Err(_) => {
            return Err(Error::Resolve(format!(
                "could not resolve {host}: the resolver did not answer within {} s",
                RESOLVE_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => {
            return Err(Error::Resolve(format!(
                "could not resolve {host}: {}",
                describe_gai_error(&e)
            )));
        }
        Ok(Ok(it)) => it.map(|sa| sa.ip()).collect(),
    };
    let mut out: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for ip in addrs {
        if family.is_none_or(|f| Family::of(ip) == f) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    if out.is_empty() {
        return Err(match family {
            Some(f) => Error::Resolve(format!("{host} has no {f} address")),
            None => Error::Resolve(format!("{host} has no address")),
        });
    }
    Ok(out)
}

fn describe_gai_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("Name or service not known") || text.contains("No address associated") {
        "no such host (the name does not exist)".to_string()
    } else if text.contains("Temporary failure") {
        "the resolver is not reachable or failed temporarily".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_resolve_to_themselves() {
        assert_eq!(
            resolve("192.0.2.1", None).await.unwrap().to_string(),
            "192.0.2.1"
        );
        assert_eq!(
            resolve("[2001:db8::1]", None).await.unwrap().to_string(),
            "2001:db8::1"
        );
    }

    #[tokio::test]
    async fn a_literal_of_the_wrong_family_is_an_error() {
        assert!(resolve("192.0.2.1", Some(Family::Ipv6)).await.is_err());
    }

    #[tokio::test]
    async fn localhost_resolves_from_the_hosts_file() {
        let ip = resolve("localhost", Some(Family::Ipv4)).await.unwrap();
        assert!(ip.is_loopback());
    }

    #[tokio::test]
    async fn the_invalid_tld_never_resolves() {
        // RFC 6761: .invalid names never resolve; no query leaves the machine without a network.
        let e = resolve("nonexistent.invalid", None).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("could not resolve nonexistent.invalid"),
            "{e}"
        );
    }
}
