//! ICMP echo: spec and result detail.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds, check_source_family, check_target};
use crate::{Family, RttStats, SpecError};

/// Default number of echo requests.
pub const DEFAULT_COUNT: u32 = 5;
/// Default seconds between two requests to the same target.
pub const DEFAULT_INTERVAL: f64 = 1.0;
/// Default seconds to wait for a reply after the last request.
pub const DEFAULT_TIMEOUT: f64 = 2.0;
/// Default ICMP payload size in bytes (the classic 56 → 64-byte ICMP message).
pub const DEFAULT_SIZE: u16 = 56;
/// Largest echo payload that fits an IPv4 datagram (65535 − 20 − 8).
pub const MAX_SIZE_V4: u16 = 65507;
/// Largest echo payload that fits an IPv6 packet without jumbograms (65535 − 8).
pub const MAX_SIZE_V6: u16 = 65527;
/// Most echo requests in one measurement.
pub const MAX_COUNT: u32 = 100_000;

fn default_count() -> u32 {
    DEFAULT_COUNT
}
fn default_interval() -> f64 {
    DEFAULT_INTERVAL
}
fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT
}
fn default_size() -> u16 {
    DEFAULT_SIZE
}

/// Parameters of an ICMP echo measurement to one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingSpec {
    /// Host name or IP address.
    pub target: String,
    /// Number of echo requests.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Seconds between requests to this target.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Seconds to wait for each reply.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// ICMP payload bytes.
    #[serde(default = "default_size")]
    pub size: u16,
    /// IPv4 TTL / IPv6 hop limit; the system default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// IPv4 TOS byte / IPv6 traffic class (DSCP × 4 + ECN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    /// Set the IPv4 don't-fragment bit (IPv6 never fragments in transit).
    #[serde(default)]
    pub df: bool,
    /// Source address to send from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// Interface to bind to (SO_BINDTODEVICE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Address family to resolve a host name to; both allowed (IPv4 preferred) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

impl PingSpec {
    /// A spec for `target` with every default.
    pub fn new(target: impl Into<String>) -> Self {
        PingSpec {
            target: target.into(),
            count: DEFAULT_COUNT,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            size: DEFAULT_SIZE,
            ttl: None,
            tos: None,
            df: false,
            source: None,
            interface: None,
            family: None,
        }
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        // Sweeps validate tens of thousands of specs: the target is parsed once.
        let ip = check_target("target", &self.target)?;
        check_range("count", self.count, 1, MAX_COUNT)?;
        check_seconds("interval", self.interval, 0.0001, 3600.0)?;
        check_seconds("timeout", self.timeout, 0.001, 300.0)?;
        let max_size = match (self.family, ip) {
            (Some(Family::Ipv4), _) | (_, Some(IpAddr::V4(_))) => MAX_SIZE_V4,
            _ => MAX_SIZE_V6,
        };
        check_range("size", self.size, 0, max_size)?;
        if self.ttl == Some(0) {
            return Err(SpecError::new(
                "ttl",
                "a TTL of 0 can never leave the host; use 1 to 255",
            ));
        }
        if let Some(ip) = ip {
            if let Some(fam) = self.family
                && Family::of(ip) != fam
            {
                return Err(SpecError::new(
                    "family",
                    format!("target {ip} is not an {fam} address"),
                ));
            }
            check_source_family(self.source, Some(Family::of(ip)))?;
        }
        check_source_family(self.source, self.family)?;
        if let Some(i) = &self.interface
            && (i.is_empty() || i.len() > 15 || i.contains('/') || i.contains(char::is_whitespace))
        {
            return Err(SpecError::new(
                "interface",
                format!("'{i}' is not a valid interface name"),
            ));
        }
        Ok(())
    }

    /// Worst-case duration in seconds: all requests sent, the last one waits the full timeout.
    pub fn max_duration(&self) -> f64 {
        f64::from(self.count.saturating_sub(1)) * self.interval + self.timeout
    }
}

/// One echo reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    /// Sequence number of the request it answers (0-based probe index).
    pub seq: u32,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
    /// TTL / hop limit of the reply, when the socket reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Size of the reply's ICMP payload in bytes.
    pub size: u16,
    /// Whether this is a duplicate of an earlier reply to the same request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// Result payload of a ping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingDetail {
    /// The address actually pinged.
    pub address: IpAddr,
    /// Requests sent.
    pub sent: u32,
    /// Distinct requests answered.
    pub received: u32,
    /// Extra replies to already answered requests.
    pub duplicates: u32,
    /// Fraction of requests unanswered, 0–1.
    pub loss: f64,
    /// RTT summary over first replies; absent when nothing answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<RttStats>,
    /// Every reply, duplicates included, in arrival order.
    pub replies: Vec<PingReply>,
    /// Sequence numbers of requests that got no reply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<u32>,
    /// ICMP errors received instead of replies ("destination unreachable from 192.0.2.9").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icmp_errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    fn spec(f: impl FnOnce(&mut PingSpec)) -> PingSpec {
        let mut s = PingSpec::new("192.0.2.1");
        f(&mut s);
        s
    }

    #[test_case(spec(|s| s.count = 0), "count" ; "zero packets are rejected")]
    #[test_case(spec(|s| s.interval = 0.0), "interval" ; "a zero interval is rejected")]
    #[test_case(spec(|s| s.interval = f64::NAN), "interval" ; "a NaN interval is rejected")]
    #[test_case(spec(|s| s.timeout = -1.0), "timeout" ; "a negative timeout is rejected")]
    #[test_case(spec(|s| s.size = 65508), "size" ; "an IPv4 payload above 65507 is rejected")]
    #[test_case(spec(|s| s.ttl = Some(0)), "ttl" ; "ttl zero is rejected")]
    #[test_case(spec(|s| s.family = Some(Family::Ipv6)), "family" ; "a family contradicting the literal is rejected")]
    #[test_case(spec(|s| s.source = Some("::1".parse().unwrap())), "source" ; "a source of the other family is rejected")]
    #[test_case(spec(|s| s.target = "a b".into()), "target" ; "a target with spaces is rejected")]
    #[test_case(spec(|s| s.interface = Some("eth0/1".into())), "interface" ; "a bad interface name is rejected")]
    fn invalid_specs_name_the_field(s: PingSpec, field: &str) {
        let err = s.validate().unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }

    #[test]
    fn ipv6_allows_larger_payloads() {
        let mut s = PingSpec::new("2001:db8::1");
        s.size = 65527;
        s.validate().unwrap();
    }

    #[test]
    fn max_duration_counts_intervals_and_timeout() {
        let s = spec(|s| {
            s.count = 3;
            s.interval = 0.2;
            s.timeout = 1.0;
        });
        assert!((s.max_duration() - 1.4).abs() < 1e-9);
    }
}
