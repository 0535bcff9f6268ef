//! DNS: spec and result detail.
//!
//! A diagnostic query goes to each chosen server separately (or to the system's resolvers when
//! none is given), so the detail holds one answer per server with its own RTT, rcode and sections.

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds};
use crate::{Endpoint, Family, Host, Outcome, SpecError};

/// Default record type.
pub const DEFAULT_QTYPE: &str = "A";
/// Default seconds to wait for each answer.
pub const DEFAULT_TIMEOUT: f64 = 5.0;
/// Default retries after a timeout (Pulse: one).
pub const DEFAULT_RETRIES: u8 = 1;
/// Port of a server given without one.
pub const DEFAULT_PORT: u16 = 53;
/// EDNS payload size used when DNSSEC records are asked for without a size (DNS flag day 2020).
pub const DEFAULT_EDNS_SIZE: u16 = 1232;

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
    /// Allow servers at non-global addresses (loopback, private, link-local …), if the agent
    /// permits it. The system's own resolvers are always allowed.
    #[serde(default)]
    pub allow_private: bool,
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
            allow_private: false,
        }
    }

    /// The numeric record type asked for (validated by [`DnsSpec::validate`]).
    pub fn qtype_code(&self) -> Option<u16> {
        rr_type_code(&self.qtype)
    }

    /// The servers as endpoints (port 53 when none is given).
    pub fn server_endpoints(&self) -> Result<Vec<Endpoint>, SpecError> {
        self.servers
            .iter()
            .map(|s| Endpoint::parse("servers", s, DEFAULT_PORT))
            .collect()
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
        check_labels(name)?;
        if self.qtype.trim().is_empty() {
            return Err(SpecError::new(
                "qtype",
                "a record type is required, for example A or AAAA",
            ));
        }
        match rr_type_code(&self.qtype) {
            None => {
                return Err(SpecError::new(
                    "qtype",
                    format!(
                        "'{}' is not a DNS record type; use a mnemonic such as A, AAAA, MX, TXT or a number such as TYPE65 or 65",
                        self.qtype
                    ),
                ));
            }
            Some(0) => {
                return Err(SpecError::new(
                    "qtype",
                    "record type 0 is reserved and cannot be queried",
                ));
            }
            Some(code @ (251 | 252)) => {
                return Err(SpecError::new(
                    "qtype",
                    format!(
                        "{} is a zone transfer, which is not a DNS measurement; query SOA or NS instead",
                        rr_type_name(code)
                    ),
                ));
            }
            Some(41) => {
                return Err(SpecError::new(
                    "qtype",
                    "OPT is the EDNS pseudo-record and cannot be queried; use --edns-size or --dnssec",
                ));
            }
            Some(_) => {}
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
        for ep in self.server_endpoints()? {
            if let (Host::Ip(ip), Some(fam)) = (&ep.host, self.family)
                && Family::of(*ip) != fam
            {
                return Err(SpecError::new(
                    "servers",
                    format!("server {ip} is not an {fam} address, but {fam} was requested"),
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
    /// RTT of the answer used, in milliseconds: from the query written to the answer read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// TCP handshake time, in milliseconds, when the answer came over TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
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

/// Checks the labels of a query name: the root `.` alone, or labels of 1 to 63 printable
/// characters separated by single dots.
fn check_labels(name: &str) -> Result<(), SpecError> {
    if name == "." {
        return Ok(());
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    for label in body.split('.') {
        if label.is_empty() {
            return Err(SpecError::new(
                "name",
                format!("'{name}' has an empty label (two dots in a row, or a leading dot)"),
            ));
        }
        if label.len() > 63 {
            return Err(SpecError::new(
                "name",
                format!("'{label}' is longer than the 63 characters a DNS label may have"),
            ));
        }
        if label.chars().any(|c| c.is_control()) {
            return Err(SpecError::new(
                "name",
                format!("'{name}' contains control characters"),
            ));
        }
    }
    Ok(())
}

/// Resource record types of the IANA registry ("DNS Parameters", RR TYPEs), mnemonic and code.
const RR_TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("MD", 3),
    ("MF", 4),
    ("CNAME", 5),
    ("SOA", 6),
    ("MB", 7),
    ("MG", 8),
    ("MR", 9),
    ("NULL", 10),
    ("WKS", 11),
    ("PTR", 12),
    ("HINFO", 13),
    ("MINFO", 14),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("X25", 19),
    ("ISDN", 20),
    ("RT", 21),
    ("NSAP", 22),
    ("NSAP-PTR", 23),
    ("SIG", 24),
    ("KEY", 25),
    ("PX", 26),
    ("GPOS", 27),
    ("AAAA", 28),
    ("LOC", 29),
    ("NXT", 30),
    ("EID", 31),
    ("NIMLOC", 32),
    ("SRV", 33),
    ("ATMA", 34),
    ("NAPTR", 35),
    ("KX", 36),
    ("CERT", 37),
    ("A6", 38),
    ("DNAME", 39),
    ("SINK", 40),
    ("OPT", 41),
    ("APL", 42),
    ("DS", 43),
    ("SSHFP", 44),
    ("IPSECKEY", 45),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("DHCID", 49),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("HIP", 55),
    ("NINFO", 56),
    ("RKEY", 57),
    ("TALINK", 58),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("DSYNC", 66),
    ("SPF", 99),
    ("UINFO", 100),
    ("UID", 101),
    ("GID", 102),
    ("UNSPEC", 103),
    ("NID", 104),
    ("L32", 105),
    ("L64", 106),
    ("LP", 107),
    ("EUI48", 108),
    ("EUI64", 109),
    ("TKEY", 249),
    ("TSIG", 250),
    ("IXFR", 251),
    ("AXFR", 252),
    ("MAILB", 253),
    ("MAILA", 254),
    ("ANY", 255),
    ("URI", 256),
    ("CAA", 257),
    ("AVC", 258),
    ("DOA", 259),
    ("AMTRELAY", 260),
    ("RESINFO", 261),
    ("WALLET", 262),
    ("CLA", 263),
    ("IPN", 264),
    ("TA", 32768),
    ("DLV", 32769),
];

/// The code of a record type given by mnemonic (`AAAA`, any case), generic name (`TYPE65`,
/// RFC 3597) or number (`65`); `None` when it is none of these.
pub fn rr_type_code(text: &str) -> Option<u16> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u16>() {
        return Some(n);
    }
    if let Some(digits) = t
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("TYPE"))
        .map(|_| &t[4..])
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return digits.parse().ok();
    }
    if t == "*" {
        return Some(255);
    }
    RR_TYPES
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(t))
        .map(|&(_, c)| c)
}

/// The mnemonic of a record type code, or its RFC 3597 generic name (`TYPE65534`).
pub fn rr_type_name(code: u16) -> String {
    RR_TYPES
        .iter()
        .find(|&&(_, c)| c == code)
        .map(|&(m, _)| m.to_string())
        .unwrap_or_else(|| format!("TYPE{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("A", 1 ; "a mnemonic")]
    #[test_case("aaaa", 28 ; "a lower-case mnemonic")]
    #[test_case("TYPE65", 65 ; "an RFC 3597 generic name")]
    #[test_case("type65", 65 ; "a lower-case generic name")]
    #[test_case("65", 65 ; "a bare number")]
    #[test_case("NSAP-PTR", 23 ; "a mnemonic with a dash")]
    #[test_case("*", 255 ; "the star is ANY")]
    fn record_types_parse(text: &str, code: u16) {
        assert_eq!(rr_type_code(text), Some(code));
    }

    #[test_case("AAAAA" ; "an unknown mnemonic")]
    #[test_case("TYPE" ; "a generic name without number")]
    #[test_case("TYPE70000" ; "a generic number over 65535")]
    #[test_case("70000" ; "a number over 65535")]
    #[test_case("TYPEx1" ; "a generic name with letters")]
    fn record_types_reject(text: &str) {
        assert_eq!(rr_type_code(text), None);
    }

    #[test]
    fn record_type_names_round_trip() {
        for &(m, c) in RR_TYPES {
            assert_eq!(rr_type_code(m), Some(c));
            assert_eq!(rr_type_name(c), m);
        }
        assert_eq!(rr_type_name(65534), "TYPE65534");
    }

    fn spec(f: impl FnOnce(&mut DnsSpec)) -> Result<(), SpecError> {
        let mut s = DnsSpec::new("www.example.com");
        f(&mut s);
        s.validate()
    }

    #[test]
    fn the_default_spec_is_valid() {
        spec(|_| {}).unwrap();
        spec(|s| s.name = ".".into()).unwrap();
        spec(|s| s.name = "_dmarc.example.com.".into()).unwrap();
    }

    #[test_case(|s: &mut DnsSpec| s.qtype = "AAAAA".into(), "qtype" ; "an unknown type is refused")]
    #[test_case(|s: &mut DnsSpec| s.qtype = "AXFR".into(), "qtype" ; "zone transfers are refused")]
    #[test_case(|s: &mut DnsSpec| s.qtype = "0".into(), "qtype" ; "type zero is refused")]
    #[test_case(|s: &mut DnsSpec| s.name = "a..b".into(), "name" ; "an empty label is refused")]
    #[test_case(|s: &mut DnsSpec| s.name = "x".repeat(64), "name" ; "a long label is refused")]
    #[test_case(|s: &mut DnsSpec| s.servers = vec!["192.0.2.1:0".into()], "servers" ; "port zero is refused")]
    #[test_case(|s: &mut DnsSpec| { s.servers = vec!["::1".into()]; s.family = Some(Family::Ipv4) }, "servers" ; "a server of the wrong family is refused")]
    #[test_case(|s: &mut DnsSpec| s.edns_size = Some(100), "edns_size" ; "a tiny EDNS size is refused")]
    #[test_case(|s: &mut DnsSpec| s.timeout = 0.0, "timeout" ; "a zero timeout is refused")]
    fn bad_specs_name_the_field(f: fn(&mut DnsSpec), field: &str) {
        let e = spec(f).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }

    #[test]
    fn unknown_type_sentence_shows_how_to_write_one() {
        let e = spec(|s| s.qtype = "AAAAA".into()).unwrap_err();
        assert!(e.message.contains("TYPE65"), "{e}");
    }
}
