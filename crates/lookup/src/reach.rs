//! Which addresses the WHOIS and RDAP clients may connect to.
//!
//! On a workstation the CLI may talk to any server the user names. A server that answers lookups
//! for API users must not: a WHOIS referral or an RDAP redirect comes from a remote answer, so
//! without a check a crafted answer could make the server open connections into the networks
//! behind it. [`Reach::public_only`] allows globally reachable addresses (per the IANA
//! special-purpose registries) plus the networks an administrator lists; every address is checked
//! after name resolution, so a public name that resolves to a private address is refused too.
//!
//! Decision: the check sits where the connection is made (the WHOIS connect, reqwest's resolver
//! and its redirect policy), not on the query text, because referral targets and redirect URLs
//! are only known while the lookup runs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::special::classify;

/// Where lookups may connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    public_only: bool,
    allowed: Vec<IpNet>,
}

impl Reach {
    /// Any address (the CLI: the user chooses the servers).
    pub fn anywhere() -> Reach {
        Reach::default()
    }

    /// Globally reachable addresses, plus the networks in `allowed`.
    pub fn public_only(allowed: Vec<IpNet>) -> Reach {
        Reach {
            public_only: true,
            allowed,
        }
    }

    /// Whether connections are restricted at all.
    pub fn is_restricted(&self) -> bool {
        self.public_only
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if !self.public_only || self.allowed.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        let c = classify(ip);
        !c.is_special() || c.globally_reachable == Some(true)
    }

    /// The error for a refused address of `server`.
    pub fn refusal(&self, server: &str, ip: IpAddr) -> Error {
        Error::Upstream(format!(
            "{server} is at {ip} ({}); this server's lookups only contact public addresses \
             (an administrator can allow a network with lookup.allowed_networks)",
            classify(ip).label
        ))
    }

    /// Keeps the permitted addresses of `server`; an error when none is left.
    pub fn filter(&self, server: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>> {
        let Some(first) = addrs.first().copied() else {
            return Ok(addrs);
        };
        let kept: Vec<SocketAddr> = addrs.into_iter().filter(|a| self.permits(a.ip())).collect();
        if kept.is_empty() {
            return Err(self.refusal(server, first.ip()));
        }
        Ok(kept)
    }

    /// A reqwest resolver that resolves with the system and drops refused addresses.
    pub(crate) fn resolver(&self) -> Arc<ReachResolver> {
        Arc::new(ReachResolver {
            reach: self.clone(),
        })
    }
}

/// reqwest's name resolution under a [`Reach`].
#[derive(Debug)]
pub(crate) struct ReachResolver {
    reach: Reach,
}

impl reqwest::dns::Resolve for ReachResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.reach.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = reach.filter(&host, addrs)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_only_refuses_internal_networks_unless_allowed() {
        let r = Reach::public_only(vec!["10.1.0.0/16".parse().unwrap()]);
        for bad in [
            "127.0.0.1",
            "10.2.3.4",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!r.permits(ip(bad)), "{bad} must be refused");
        }
        for good in ["193.0.6.139", "10.1.2.3", "2001:67c:2e8::1", "8.8.8.8"] {
            assert!(r.permits(ip(good)), "{good} must be allowed");
        }
        assert!(Reach::anywhere().permits(ip("127.0.0.1")));
    }

    #[test]
    fn filter_keeps_public_addresses_and_names_the_refused_one() {
        let r = Reach::public_only(Vec::new());
        let a: SocketAddr = "127.0.0.1:43".parse().unwrap();
        let b: SocketAddr = "193.0.6.139:43".parse().unwrap();
        assert_eq!(r.filter("x", vec![a, b]).unwrap(), vec![b]);
        let e = r.filter("whois.evil.test", vec![a]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("whois.evil.test is at 127.0.0.1"), "{text}");
        assert!(text.contains("allowed_networks"), "{text}");
    }
}
