//! TCP probing: spec and result detail, shared per-probe and per-source-port types.
//!
//! Two modes. `connect` times a full handshake through the kernel (unprivileged). `syn` crafts the
//! SYN on a raw socket, matches the SYN-ACK, RST or ICMP error, and resets the half-open
//! connection; it measures the network, not the remote application, and can rotate source ports
//! per packet to cover ECMP paths. Results are kept per probe, per source port and in total.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds, check_source_family};
use crate::{Family, PortRange, RttStats, SpecError, ensure_target};

/// Default number of probes.
pub const DEFAULT_COUNT: u32 = 3;
/// Default seconds between probes.
pub const DEFAULT_INTERVAL: f64 = 1.0;
/// Default seconds to wait for each answer.
pub const DEFAULT_TIMEOUT: f64 = 2.0;
/// Most probes in one measurement.
pub const MAX_COUNT: u32 = 100_000;

pub(crate) fn default_count() -> u32 {
    DEFAULT_COUNT
}
pub(crate) fn default_interval() -> f64 {
    DEFAULT_INTERVAL
}
pub(crate) fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT
}

/// How a TCP probe is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpMode {
    /// Full handshake through the kernel; works without privileges.
    #[default]
    Connect,
    /// Half-open: raw SYN, answer matched, then RST. Needs CAP_NET_RAW.
    Syn,
}

/// Parameters of a TCP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// Host name or IP address.
    pub target: String,
    /// Destination port.
    pub port: u16,
    /// Connect or SYN.
    #[serde(default)]
    pub mode: TcpMode,
    /// Number of probes.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Seconds between probes.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Seconds to wait for each answer.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
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
    /// Address family to resolve a host name to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

impl TcpSpec {
    /// A spec for `target:port` with every default.
    pub fn new(target: impl Into<String>, port: u16) -> Self {
        TcpSpec {
            target: target.into(),
            port,
            mode: TcpMode::Connect,
            count: DEFAULT_COUNT,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            source_ports: None,
            source: None,
            ttl: None,
            tos: None,
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
        )
    }

    /// Worst-case duration in seconds.
    pub fn max_duration(&self) -> f64 {
        f64::from(self.count.saturating_sub(1)) * self.interval + self.timeout
    }
}

/// Validation shared by the TCP and UDP specs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn validate_l4(
    target: &str,
    port: u16,
    count: u32,
    interval: f64,
    timeout: f64,
    ttl: Option<u8>,
    source: Option<IpAddr>,
    family: Option<Family>,
) -> Result<(), SpecError> {
    ensure_target("target", target)?;
    if port == 0 {
        return Err(SpecError::new(
            "port",
            "port 0 cannot be probed; use 1 to 65535",
        ));
    }
    check_range("count", count, 1, MAX_COUNT)?;
    check_seconds("interval", interval, 0.0001, 3600.0)?;
    check_seconds("timeout", timeout, 0.001, 300.0)?;
    if ttl == Some(0) {
        return Err(SpecError::new(
            "ttl",
            "a TTL of 0 can never leave the host; use 1 to 255",
        ));
    }
    if let Ok(ip) = target.parse::<IpAddr>() {
        if let Some(fam) = family
            && Family::of(ip) != fam
        {
            return Err(SpecError::new(
                "family",
                format!("target {ip} is not an {fam} address"),
            ));
        }
        check_source_family(source, Some(Family::of(ip)))?;
    }
    check_source_family(source, family)
}

/// What became of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// TCP: handshake completed or SYN-ACK received. UDP: a UDP reply came back.
    Open,
    /// TCP: RST received.
    Refused,
    /// UDP: ICMP port unreachable from the target (the expected answer of a UDP probe).
    PortUnreachable,
    /// ICMP error from the path (network/host unreachable, administratively prohibited …).
    Unreachable,
    /// No answer within the timeout.
    Timeout,
}

impl ProbeStatus {
    /// Whether the target (or the path) answered at all.
    pub fn answered(self) -> bool {
        !matches!(self, ProbeStatus::Timeout)
    }
}

/// One probe of a TCP or UDP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortProbe {
    /// Probe index, 0-based, in send order.
    pub seq: u32,
    /// Source port used.
    pub src_port: u16,
    /// What happened.
    pub status: ProbeStatus,
    /// Round-trip time in milliseconds, when answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Address that answered, when it is not the target (an ICMP error from a router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpAddr>,
}

/// Totals for one source port (one ECMP flow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortSummary {
    /// The source port.
    pub src_port: u16,
    /// Probes sent from it.
    pub sent: u32,
    /// Probes answered.
    pub received: u32,
    /// Fraction unanswered, 0–1.
    pub loss: f64,
    /// RTT summary of the answered probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<RttStats>,
}

impl PortSummary {
    /// Groups probes by source port (ascending) and summarises each group.
    pub fn group(probes: &[PortProbe]) -> Vec<PortSummary> {
        let mut ports: Vec<u16> = probes.iter().map(|p| p.src_port).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
            .into_iter()
            .map(|port| {
                let mine: Vec<&PortProbe> = probes.iter().filter(|p| p.src_port == port).collect();
                let rtts: Vec<f64> = mine.iter().filter_map(|p| p.rtt_ms).collect();
                let sent = mine.len() as u32;
                let received = mine.iter().filter(|p| p.status.answered()).count() as u32;
                PortSummary {
                    src_port: port,
                    sent,
                    received,
                    loss: loss_ratio(sent, received),
                    rtt_ms: RttStats::from_samples(&rtts),
                }
            })
            .collect()
    }
}

/// `1 − received / sent`, 0 when nothing was sent.
pub(crate) fn loss_ratio(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        0.0
    } else {
        1.0 - f64::from(received.min(sent)) / f64::from(sent)
    }
}

/// Result payload of a TCP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpDetail {
    /// The address probed.
    pub address: IpAddr,
    /// Destination port.
    pub port: u16,
    /// Mode used.
    pub mode: TcpMode,
    /// Probes sent.
    pub sent: u32,
    /// Probes answered in any way (SYN-ACK, RST or ICMP error).
    pub received: u32,
    /// Probes answered with an open port.
    pub open: u32,
    /// Probes answered with a RST.
    pub refused: u32,
    /// Fraction of probes with no answer at all, 0–1.
    pub loss: f64,
    /// RTT summary of the answered probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<RttStats>,
    /// Every probe in send order.
    pub probes: Vec<PortProbe>,
    /// Totals per source port.
    pub ports: Vec<PortSummary>,
}

impl TcpDetail {
    /// Builds the detail and its totals from the per-probe list.
    pub fn from_probes(address: IpAddr, port: u16, mode: TcpMode, probes: Vec<PortProbe>) -> Self {
        let sent = probes.len() as u32;
        let received = probes.iter().filter(|p| p.status.answered()).count() as u32;
        let open = probes
            .iter()
            .filter(|p| p.status == ProbeStatus::Open)
            .count() as u32;
        let refused = probes
            .iter()
            .filter(|p| p.status == ProbeStatus::Refused)
            .count() as u32;
        let rtts: Vec<f64> = probes.iter().filter_map(|p| p.rtt_ms).collect();
        TcpDetail {
            address,
            port,
            mode,
            sent,
            received,
            open,
            refused,
            loss: loss_ratio(sent, received),
            rtt_ms: RttStats::from_samples(&rtts),
            ports: PortSummary::group(&probes),
            probes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(seq: u32, src_port: u16, status: ProbeStatus, rtt: Option<f64>) -> PortProbe {
        PortProbe {
            seq,
            src_port,
            status,
            rtt_ms: rtt,
            from: None,
        }
    }

    #[test]
    fn totals_and_per_port_groups_agree_with_the_probe_list() {
        let probes = vec![
            probe(0, 100, ProbeStatus::Open, Some(1.0)),
            probe(1, 101, ProbeStatus::Timeout, None),
            probe(2, 100, ProbeStatus::Refused, Some(3.0)),
            probe(3, 101, ProbeStatus::Open, Some(2.0)),
        ];
        let d = TcpDetail::from_probes("192.0.2.1".parse().unwrap(), 80, TcpMode::Syn, probes);
        assert_eq!((d.sent, d.received, d.open, d.refused), (4, 3, 2, 1));
        assert!((d.loss - 0.25).abs() < 1e-12);
        assert_eq!(d.ports.len(), 2);
        assert_eq!(
            (d.ports[0].src_port, d.ports[0].sent, d.ports[0].received),
            (100, 2, 2)
        );
        assert_eq!(
            (d.ports[1].src_port, d.ports[1].sent, d.ports[1].received),
            (101, 2, 1)
        );
        assert!((d.ports[1].loss - 0.5).abs() < 1e-12);
        assert_eq!(d.rtt_ms.unwrap().max, 3.0);
    }

    #[test]
    fn port_zero_and_zero_count_are_rejected() {
        assert_eq!(
            TcpSpec::new("192.0.2.1", 0).validate().unwrap_err().field,
            "port"
        );
        let mut s = TcpSpec::new("192.0.2.1", 80);
        s.count = 0;
        assert_eq!(s.validate().unwrap_err().field, "count");
    }

    #[test]
    fn mode_defaults_to_connect_and_source_ports_parse() {
        let s: TcpSpec = serde_json::from_str(
            r#"{"target":"192.0.2.1","port":443,"source_ports":"65000-65001"}"#,
        )
        .unwrap();
        assert_eq!(s.mode, TcpMode::Connect);
        assert_eq!(s.source_ports.unwrap().len(), 2);
    }
}
