//! Traceroute / mtr: spec and result detail.
//!
//! One spec covers both: `rounds: 1` is a classic trace, more rounds give mtr statistics. Paris
//! style (one constant flow identity per path) is the default so ECMP cannot invent hops;
//! `flows > 1` enumerates that many flows (Dublin style) and reports which flow saw which address.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds, check_source_family};
use crate::{Family, SpecError, ensure_target};

/// Default first TTL.
pub const DEFAULT_FIRST_TTL: u8 = 1;
/// Default maximum TTL.
pub const DEFAULT_MAX_TTL: u8 = 30;
/// Default probes per hop per round.
pub const DEFAULT_PROBES: u8 = 3;
/// Default seconds to wait for each probe's answer.
pub const DEFAULT_TIMEOUT: f64 = 2.0;
/// Default seconds between rounds.
pub const DEFAULT_INTERVAL: f64 = 1.0;
/// Default payload bytes of ICMP and UDP probes (with the headers, 60-byte IPv4 packets like
/// classic traceroute's).
pub const DEFAULT_SIZE: u16 = 32;
/// The engine never has more than this many TTLs of a round waiting for answers at once (more
/// for probes whose answers routers do not rate-limit); a hop that answers frees its place for
/// the next TTL. Bounds how far probes run past the destination before it is found.
pub const MIN_TTL_WINDOW: u8 = 8;
/// Seconds a trace waits at most, after its last probe, for reverse DNS names.
pub const RDNS_TIMEOUT: f64 = 2.0;
/// Smallest payload of ICMP and UDP probes: two bytes are adjusted so that the checksum stays
/// constant along a flow (ICMP) or carries the probe's number (UDP), as Paris traceroute does.
pub const MIN_SIZE: u16 = 2;

fn default_first_ttl() -> u8 {
    DEFAULT_FIRST_TTL
}
fn default_max_ttl() -> u8 {
    DEFAULT_MAX_TTL
}
fn default_probes() -> u8 {
    DEFAULT_PROBES
}
fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT
}
fn default_interval() -> f64 {
    DEFAULT_INTERVAL
}
fn default_one_u16() -> u16 {
    1
}
fn default_one_u32() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

/// Protocol of trace probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceProtocol {
    /// ICMP echo requests.
    #[default]
    Icmp,
    /// UDP datagrams (to port 33434 by default).
    Udp,
    /// TCP SYNs (to port 80 by default).
    Tcp,
}

impl TraceProtocol {
    /// The destination port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            TraceProtocol::Icmp => 0,
            TraceProtocol::Udp => 33434,
            TraceProtocol::Tcp => 80,
        }
    }
}

/// Parameters of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Host name or IP address.
    pub target: String,
    /// Probe protocol.
    #[serde(default)]
    pub protocol: TraceProtocol,
    /// Destination port (UDP, TCP); the protocol's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Source port of the first flow (UDP, TCP); chosen by Vantage when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    /// First TTL probed.
    #[serde(default = "default_first_ttl")]
    pub first_ttl: u8,
    /// Last TTL probed.
    #[serde(default = "default_max_ttl")]
    pub max_ttl: u8,
    /// Probes per hop per round (per flow when `flows > 1`).
    #[serde(default = "default_probes")]
    pub probes: u8,
    /// Seconds to wait for each probe's answer. A single-round trace stops waiting earlier for
    /// a probe that the answers around it show lost (traceroute's heuristic: 3× the round-trip
    /// time of another answer at the same TTL, 10× that of a later TTL, never under 50 ms).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Payload bytes of ICMP and UDP probes ([`DEFAULT_SIZE`] when absent, at least
    /// [`MIN_SIZE`]); TCP probes are bare SYNs and take no size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u16>,
    /// Number of flows to enumerate; 1 is Paris (one stable path). Every flow is probed
    /// `probes` times per hop per round.
    #[serde(default = "default_one_u16")]
    pub flows: u16,
    /// Rounds; more than 1 gives mtr statistics.
    #[serde(default = "default_one_u32")]
    pub rounds: u32,
    /// Seconds between rounds.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Resolve hop addresses to names.
    #[serde(default = "default_true")]
    pub rdns: bool,
    /// IPv4 TOS / IPv6 traffic class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    /// Source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// Address family to resolve a host name to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

impl TraceSpec {
    /// A spec for `target` with every default.
    pub fn new(target: impl Into<String>) -> Self {
        TraceSpec {
            target: target.into(),
            protocol: TraceProtocol::Icmp,
            port: None,
            source_port: None,
            first_ttl: DEFAULT_FIRST_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            probes: DEFAULT_PROBES,
            timeout: DEFAULT_TIMEOUT,
            size: None,
            flows: 1,
            rounds: 1,
            interval: DEFAULT_INTERVAL,
            rdns: true,
            tos: None,
            source: None,
            family: None,
        }
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        ensure_target("target", &self.target)?;
        check_range("first_ttl", self.first_ttl, 1, 255)?;
        check_range("max_ttl", self.max_ttl, 1, 255)?;
        if self.first_ttl > self.max_ttl {
            return Err(SpecError::new(
                "first_ttl",
                format!(
                    "the TTL range is inverted: first TTL {} is above max TTL {}",
                    self.first_ttl, self.max_ttl
                ),
            ));
        }
        check_range("probes", self.probes, 1, 10)?;
        check_seconds("timeout", self.timeout, 0.01, 60.0)?;
        check_range("flows", self.flows, 1, 256)?;
        check_range("rounds", self.rounds, 1, 10_000)?;
        check_seconds("interval", self.interval, 0.0, 3600.0)?;
        if let Some(size) = self.size {
            if self.protocol == TraceProtocol::Tcp {
                return Err(SpecError::new(
                    "size",
                    "TCP trace probes are bare SYNs without payload; size applies to ICMP and UDP",
                ));
            }
            check_range("size", size, MIN_SIZE, 65000)?;
        }
        if let Some(sport) = self.source_port {
            if sport == 0 {
                return Err(SpecError::new(
                    "source_port",
                    "source port 0 cannot be used; use 1 to 65535 or leave it out",
                ));
            }
            if u32::from(sport) + u32::from(self.flows) - 1 > 65535 {
                return Err(SpecError::new(
                    "source_port",
                    format!(
                        "{} flows from source port {sport} would run past port 65535; use a lower \
                         source port",
                        self.flows
                    ),
                ));
            }
        }
        if self.port == Some(0) {
            return Err(SpecError::new(
                "port",
                "port 0 cannot be probed; use 1 to 65535",
            ));
        }
        if self.protocol == TraceProtocol::Icmp
            && (self.port.is_some() || self.source_port.is_some())
        {
            return Err(SpecError::new(
                "port",
                "ICMP traces have no ports; drop the port or choose protocol udp or tcp",
            ));
        }
        if let Ok(ip) = self.target.parse::<IpAddr>() {
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
        check_source_family(self.source, self.family)
    }

    /// Worst-case duration in seconds, when no hop ever answers: the engine keeps at most
    /// [`MIN_TTL_WINDOW`] TTLs waiting at once, so a round launches its TTLs in that many
    /// timeouts at most; rounds start `interval` apart but never before the previous round has
    /// launched every TTL; the last probes then wait one timeout, and names take at most
    /// [`RDNS_TIMEOUT`] more.
    pub fn max_duration(&self) -> f64 {
        let ttls = f64::from(self.max_ttl.saturating_sub(self.first_ttl)) + 1.0;
        let launch = ((ttls / f64::from(MIN_TTL_WINDOW)).ceil() - 1.0).max(0.0) * self.timeout;
        let rounds = f64::from(self.rounds.max(1));
        let rdns = if self.rdns { RDNS_TIMEOUT } else { 0.0 };
        (rounds - 1.0) * self.interval.max(launch) + launch + self.timeout + rdns
    }
}

/// mtr-style statistics for a hop or an address, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TraceStats {
    /// Most recent RTT.
    pub last: f64,
    /// Mean RTT.
    pub avg: f64,
    /// Best (lowest) RTT.
    pub best: f64,
    /// Worst (highest) RTT.
    pub worst: f64,
    /// Sample standard deviation.
    pub stddev: f64,
    /// Mean absolute difference of consecutive RTTs.
    pub jitter: f64,
}

/// An MPLS label stack entry from an ICMP extension (RFC 4950).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MplsLabel {
    /// Label value.
    pub label: u32,
    /// Traffic class (experimental) bits.
    pub tc: u8,
    /// Bottom of stack.
    pub s: bool,
    /// TTL.
    pub ttl: u8,
}

/// One address that answered at a hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceAddr {
    /// The responding address.
    pub ip: IpAddr,
    /// Its reverse DNS name, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdns: Option<String>,
    /// Origin AS number, when a lookup filled it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// AS name, when a lookup filled it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
    /// Probes of this hop attributed to this address (sent on flows that reached it).
    pub sent: u32,
    /// Answers from this address.
    pub received: u32,
    /// Fraction of its probes unanswered, 0–1.
    pub loss: f64,
    /// RTT statistics of its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<TraceStats>,
    /// Flow ids (0-based) whose probes this address answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<u16>,
    /// MPLS label stack seen in its ICMP extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpls: Vec<MplsLabel>,
    /// When this address answered "destination unreachable" rather than forwarding (a router
    /// ending the path, or a filter): the reason, e.g. "communication administratively
    /// prohibited". Not set for the destination's own port unreachable, which is its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// One probe of a hop: the per-packet record every statistic is derived from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceProbe {
    /// Round it was sent in (0-based).
    pub round: u32,
    /// Flow it belonged to (0-based).
    pub flow: u16,
    /// The address that answered; absent when nothing did within the timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Round-trip time of the answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// One TTL of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceHop {
    /// The TTL probed.
    pub ttl: u8,
    /// Every address that answered at this TTL (several under ECMP).
    pub addrs: Vec<TraceAddr>,
    /// Probes sent with this TTL.
    pub sent: u32,
    /// Answers received for this TTL.
    pub received: u32,
    /// Fraction of this TTL's probes unanswered, 0–1.
    pub loss: f64,
    /// RTT statistics over all answers at this TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<TraceStats>,
    /// Every probe sent with this TTL, in send order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<TraceProbe>,
}

/// Result payload of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceDetail {
    /// The address traced.
    pub address: IpAddr,
    /// Protocol used.
    pub protocol: TraceProtocol,
    /// Whether the destination answered.
    pub reached: bool,
    /// Rounds completed.
    pub rounds: u32,
    /// Flows enumerated.
    pub flows: u16,
    /// Hops from the first TTL to the destination (or the max TTL).
    pub hops: Vec<TraceHop>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverted_ttl_range_is_rejected() {
        let mut s = TraceSpec::new("192.0.2.1");
        s.first_ttl = 10;
        s.max_ttl = 5;
        let e = s.validate().unwrap_err();
        assert_eq!(e.field, "first_ttl");
        assert!(e.message.contains("inverted"));
    }

    #[test]
    fn payloads_too_small_for_paris_are_rejected() {
        let mut s = TraceSpec::new("192.0.2.1");
        s.size = Some(1);
        assert_eq!(s.validate().unwrap_err().field, "size");
        s.size = Some(MIN_SIZE);
        s.validate().unwrap();
        s.protocol = TraceProtocol::Tcp;
        assert!(s.validate().unwrap_err().message.contains("bare SYNs"));
    }

    #[test]
    fn flows_must_fit_above_the_source_port() {
        let mut s = TraceSpec::new("192.0.2.1");
        s.protocol = TraceProtocol::Udp;
        s.source_port = Some(65530);
        s.flows = 6;
        s.validate().unwrap();
        s.flows = 7;
        assert_eq!(s.validate().unwrap_err().field, "source_port");
    }

    #[test]
    fn icmp_with_a_port_is_rejected() {
        let mut s = TraceSpec::new("192.0.2.1");
        s.port = Some(80);
        assert_eq!(s.validate().unwrap_err().field, "port");
        s.protocol = TraceProtocol::Tcp;
        s.validate().unwrap();
    }
}
