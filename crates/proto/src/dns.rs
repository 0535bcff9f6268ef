//! DNS: spec and result detail.
//!
//! A diagnostic query goes to each chosen server separately (or to the system's resolvers when
//! none is given), so the detail holds one answer per server with its own RTT, rcode and sections.

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds};
use crate::{Family, Outcome, SpecError};

/// Default record type.
pub const DEFAULT_QTYPE: &str = "A";
/// Default seconds to wait for each answer.
pub const DEFAULT_TIMEOUT: f64 = 5.0;
/// Default retries after a timeout (Pulse: one).
pub const DEFAULT_RETRIES: u8 = 1;

fn default_qtype() -> String {
    DEFAULT_QTYPE.to_string()
}
fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT
}
fn default_retries() -> u8 {
    DEFAULT_RETRIES
}
fn default_true() -> bool {
    true
}

/// Transport for DNS queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsTransport {
    /// UDP, retried over TCP when the answer is truncated.
    #[default]
    Udp,
    /// TCP only.
    Tcp,
}

/// Parameters of a DNS measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The name to query.
    pub name: String,
    /// Record type, by mnemonic (`AAAA`) or number (`TYPE65` or `65`).
    #[serde(default = "default_qtype")]
    pub qtype: String,
    /// Servers to ask (`IP`, `IP:PORT`, `[IPv6]:PORT` or a host name); the system's resolvers
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Transport.
    #[serde(default)]
    pub transport: DnsTransport,
    /// Set the RD (recursion desired) flag.
    #[serde(default = "default_true")]
    pub recursion: bool,
    /// Set the EDNS DO (DNSSEC OK) bit.
    #[serde(default)]
    pub dnssec: bool,
    /// EDNS UDP payload size to advertise; no EDNS when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edns_size: Option<u16>,
    /// Seconds to wait for each answer.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Retries after a timeout.
    #[serde(default = "default_retries")]
    pub retries: u8,
    /// Address family to use when a server is given by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

impl DnsSpec {
    /// A spec for `name` with every default.
    pub fn new(name: impl Into<String>) -> Self {
        DnsSpec {
            name: name.into(),
            qtype: DEFAULT_QTYPE.into(),
            servers: Vec::new(),
            transport: DnsTransport::Udp,
            recursion: true,
            dnssec: false,
            edns_size: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            family: None,
        }
    }

    /// Checks ranges and cross-field rules. The record type is checked against the engine's
    /// table of types, which lives with the DNS implementation.
    pub fn validate(&self) -> Result<(), SpecError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(SpecError::new("name", "a name to query is required"));
        }
        if name != self.name || name.contains(char::is_whitespace) {
            return Err(SpecError::new(
                "name",
                format!("'{}' contains spaces", self.name),
            ));
        }
        if name.trim_end_matches('.').len() > 253 {
            return Err(SpecError::new(
                "name",
                "a DNS name is at most 253 characters",
            ));
        }
        if self.qtype.trim().is_empty() {
            return Err(SpecError::new(
                "qtype",
                "a record type is required, for example A or AAAA",
            ));
        }
        check_seconds("timeout", self.timeout, 0.01, 60.0)?;
        check_range("retries", self.retries, 0, 10)?;
        if let Some(size) = self.edns_size {
            check_range("edns_size", size, 512, 65535)?;
        }
        if self.servers.len() > 64 {
            return Err(SpecError::new(
                "servers",
                "at most 64 servers per measurement",
            ));
        }
        for s in &self.servers {
            if s.trim().is_empty() || s.contains(char::is_whitespace) {
                return Err(SpecError::new(
                    "servers",
                    format!("'{s}' is not a server address"),
                ));
            }
        }
        Ok(())
    }

    /// Worst-case duration in seconds (servers are asked concurrently).
    pub fn max_duration(&self) -> f64 {
        // A UDP attempt that comes back truncated is followed by a TCP attempt.
        self.timeout * f64::from(self.retries + 1) * 2.0
    }
}

/// One resource record, presented as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// Owner name.
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Class (`IN` …).
    pub class: String,
    /// Type mnemonic (`A`, `MX` …).
    #[serde(rename = "type")]
    pub rtype: String,
    /// Record data in presentation format.
    pub data: String,
}

/// The answer of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsServerResult {
    /// The server asked, as `IP:PORT`.
    pub server: String,
    /// What happened with this server.
    pub outcome: Outcome,
    /// A sentence when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Transport of the answer used (`tcp` after a truncated UDP answer).
    pub transport: DnsTransport,
    /// Whether a UDP answer was truncated and the query retried over TCP.
    #[serde(default)]
    pub tcp_retry: bool,
    /// Attempts made (1 + retries used).
    pub attempts: u8,
    /// RTT of the answer used, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Response code (`NOERROR`, `NXDOMAIN` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// Header flags set (`qr`, `aa`, `tc`, `rd`, `ra`, `ad`, `cd`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Answer section.
    #[serde(default)]
    pub answers: Vec<DnsRecord>,
    /// Authority section.
    #[serde(default)]
    pub authority: Vec<DnsRecord>,
    /// Additional section (the OPT pseudo-record excluded).
    #[serde(default)]
    pub additional: Vec<DnsRecord>,
    /// Size of the response message in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// The answer rendered like `dig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Result payload of a DNS measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsDetail {
    /// The name queried (as sent).
    pub name: String,
    /// The record type queried.
    pub qtype: String,
    /// One entry per server asked.
    pub servers: Vec<DnsServerResult>,
}
