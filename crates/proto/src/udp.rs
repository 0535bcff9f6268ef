//! UDP probing: datagrams to a (normally closed) port, timed by the ICMP port-unreachable.
//!
//! Network devices that ignore TCP SYNs still answer UDP to a closed port with an ICMP error,
//! which makes this the probe of choice for routers and switches (netprobify's UDPunreachable).
//! The ICMP error is matched to its probe by the quoted UDP header, so source ports can rotate.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::common::check_range;
use crate::tcp::{default_count, default_interval, default_timeout, loss_ratio, validate_l4};
use crate::{Family, PortProbe, PortRange, PortSummary, ProbeStatus, RttStats, SpecError};

/// Default UDP payload in bytes.
pub const DEFAULT_SIZE: u16 = 32;

fn default_size() -> u16 {
    DEFAULT_SIZE
}

/// Parameters of a UDP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSpec {
    /// Host name or IP address.
    pub target: String,
    /// Destination port (normally a closed one).
    pub port: u16,
    /// Number of probes.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Seconds between probes.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Seconds to wait for each answer.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// UDP payload bytes.
    #[serde(default = "default_size")]
    pub size: u16,
    /// Source ports to rotate through, one per probe; the kernel picks when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ports: Option<PortRange>,
    /// Source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// IPv4 TTL / IPv6 hop limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// IPv4 TOS / IPv6 traffic class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    /// Set the IPv4 don't-fragment bit.
    #[serde(default)]
    pub df: bool,
    /// Address family to resolve a host name to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

impl UdpSpec {
    /// A spec for `target:port` with every default.
    pub fn new(target: impl Into<String>, port: u16) -> Self {
        UdpSpec {
            target: target.into(),
            port,
            count: crate::tcp::DEFAULT_COUNT,
            interval: crate::tcp::DEFAULT_INTERVAL,
            timeout: crate::tcp::DEFAULT_TIMEOUT,
            size: DEFAULT_SIZE,
            source_ports: None,
            source: None,
            ttl: None,
            tos: None,
            df: false,
            family: None,
        }
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_l4(
            &self.target,
            self.port,
            self.count,
            self.interval,
            self.timeout,
            self.ttl,
            self.source,
            self.family,
        )?;
        check_range("size", self.size, 0, crate::ping::MAX_SIZE_V4)
    }

    /// Worst-case duration in seconds.
    pub fn max_duration(&self) -> f64 {
        f64::from(self.count.saturating_sub(1)) * self.interval + self.timeout
    }
}

/// Result payload of a UDP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UdpDetail {
    /// The address probed.
    pub address: IpAddr,
    /// Destination port.
    pub port: u16,
    /// Probes sent.
    pub sent: u32,
    /// Probes answered (port unreachable, a UDP reply, or an ICMP error from the path).
    pub received: u32,
    /// Probes answered with ICMP port unreachable from the target.
    pub port_unreachable: u32,
    /// Probes answered with a UDP datagram (the port is open).
    pub open: u32,
    /// Fraction of probes with no answer, 0–1.
    pub loss: f64,
    /// RTT summary of the answered probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<RttStats>,
    /// Every probe in send order.
    pub probes: Vec<PortProbe>,
    /// Totals per source port.
    pub ports: Vec<PortSummary>,
}

impl UdpDetail {
    /// Builds the detail and its totals from the per-probe list.
    pub fn from_probes(address: IpAddr, port: u16, probes: Vec<PortProbe>) -> Self {
        let sent = probes.len() as u32;
        let received = probes.iter().filter(|p| p.status.answered()).count() as u32;
        let count = |s: ProbeStatus| probes.iter().filter(|p| p.status == s).count() as u32;
        let rtts: Vec<f64> = probes.iter().filter_map(|p| p.rtt_ms).collect();
        UdpDetail {
            address,
            port,
            sent,
            received,
            port_unreachable: count(ProbeStatus::PortUnreachable),
            open: count(ProbeStatus::Open),
            loss: loss_ratio(sent, received),
            rtt_ms: RttStats::from_samples(&rtts),
            ports: PortSummary::group(&probes),
            probes,
        }
    }
}
