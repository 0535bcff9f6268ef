//! `HOST[:PORT]` endpoints as users write them: `192.0.2.1`, `192.0.2.1:53`, `2001:db8::1`,
//! `[2001:db8::1]:53`, `ns1.example.com`, `ns1.example.com:5353`.
//!
//! DNS servers and HTTP `connect_to` share this syntax, so they share one parser. A bare IPv6
//! literal never carries a port (its colons are ambiguous); brackets are needed for that, as in
//! URLs.

use std::fmt;
use std::net::IpAddr;

use crate::{SpecError, ensure_target};

/// The host part of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An address literal.
    Ip(IpAddr),
    /// A host name, to be resolved.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address or name.
    pub host: Host,
    /// Port; the caller's default when the text had none.
    pub port: u16,
    /// Whether the text named the port explicitly.
    pub explicit_port: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Endpoint {
    /// Parses `text`, using `default_port` when it names none. `field` names the spec field in
    /// errors.
    pub fn parse(field: &str, text: &str, default_port: u16) -> Result<Self, SpecError> {
        let bad_port = |p: &str| {
            SpecError::new(
                field,
                format!("'{text}' has port '{p}'; a port is a number from 1 to 65535"),
            )
        };
        let parse_port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad_port(p)),
            Ok(n) => Ok(n),
        };
        let t = text.trim();
        if t.is_empty() || t != text {
            return Err(SpecError::new(
                field,
                format!("'{text}' is empty or has spaces around it"),
            ));
        }
        // [v6] or [v6]:port
        if let Some(rest) = t.strip_prefix('[') {
            let Some((inner, after)) = rest.split_once(']') else {
                return Err(SpecError::new(
                    field,
                    format!("'{text}' opens a bracket it does not close"),
                ));
            };
            let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| {
                SpecError::new(
                    field,
                    format!("'{inner}' inside brackets is not an IPv6 address"),
                )
            })?;
            let (port, explicit_port) = match after {
                "" => (default_port, false),
                _ => match after.strip_prefix(':') {
                    Some(p) => (parse_port(p)?, true),
                    None => {
                        return Err(SpecError::new(
                            field,
                            format!("'{text}': expected ':PORT' after the bracketed address"),
                        ));
                    }
                },
            };
            return Ok(Endpoint {
                host: Host::Ip(IpAddr::V6(ip)),
                port,
                explicit_port,
            });
        }
        // A bare IPv6 literal: no port possible.
        if t.matches(':').count() > 1 {
            return match t.parse::<std::net::Ipv6Addr>() {
                Ok(ip) => Ok(Endpoint {
                    host: Host::Ip(IpAddr::V6(ip)),
                    port: default_port,
                    explicit_port: false,
                }),
                Err(_) => Err(SpecError::new(
                    field,
                    format!(
                        "'{text}' is not an address; write an IPv6 address with a port as [ADDRESS]:PORT"
                    ),
                )),
            };
        }
        let (host, port, explicit_port) = match t.split_once(':') {
            Some((h, p)) => (h, parse_port(p)?, true),
            None => (t, default_port, false),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Endpoint {
                host: Host::Ip(ip),
                port,
                explicit_port,
            });
        }
        ensure_target(field, host)?;
        Ok(Endpoint {
            host: Host::Name(host.to_string()),
            port,
            explicit_port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("192.0.2.1", "192.0.2.1:53" ; "an IPv4 address takes the default port")]
    #[test_case("192.0.2.1:5353", "192.0.2.1:5353" ; "an IPv4 address with a port")]
    #[test_case("2001:db8::1", "[2001:db8::1]:53" ; "a bare IPv6 address takes the default port")]
    #[test_case("[2001:db8::1]", "[2001:db8::1]:53" ; "a bracketed IPv6 address without port")]
    #[test_case("[::1]:5353", "[::1]:5353" ; "a bracketed IPv6 address with a port")]
    #[test_case("ns1.example.com", "ns1.example.com:53" ; "a name takes the default port")]
    #[test_case("ns1.example.com:853", "ns1.example.com:853" ; "a name with a port")]
    fn endpoints_parse(text: &str, want: &str) {
        assert_eq!(
            Endpoint::parse("servers", text, 53).unwrap().to_string(),
            want
        );
    }

    #[test_case("" ; "empty")]
    #[test_case("192.0.2.1:0" ; "port zero")]
    #[test_case("192.0.2.1:99999" ; "port above 65535")]
    #[test_case("192.0.2.1:x" ; "a port that is a word")]
    #[test_case("[2001:db8::1" ; "an unclosed bracket")]
    #[test_case("[192.0.2.1]:53" ; "an IPv4 address in brackets")]
    #[test_case("[::1]53" ; "garbage after the bracket")]
    #[test_case("2001:db8::zz" ; "a broken IPv6 address")]
    #[test_case("exa mple.com" ; "a name with a space")]
    #[test_case("-x:53" ; "an option-looking name")]
    fn endpoints_reject(text: &str) {
        assert!(Endpoint::parse("servers", text, 53).is_err(), "{text}");
    }

    #[test]
    fn explicit_ports_are_remembered() {
        assert!(
            Endpoint::parse("s", "192.0.2.1:53", 53)
                .unwrap()
                .explicit_port
        );
        assert!(!Endpoint::parse("s", "192.0.2.1", 53).unwrap().explicit_port);
    }
}
