//! Field types shared by several measurement kinds, and the one validation error type.
//!
//! Specs travel as JSON, so every numeric domain (ports, TTLs, durations) is checked once in
//! `validate()`; errors name the field and say in a sentence what a valid value looks like.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Address family preference for resolving a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl Family {
    /// The family of a concrete address.
    pub fn of(ip: std::net::IpAddr) -> Self {
        if ip.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// An inclusive range of ports, written `A-B` (or a single `A`).
///
/// Used for source-port rotation: consecutive probes take consecutive ports so that ECMP hashing
/// spreads them over the parallel paths (netprobify's groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port, inclusive.
    pub first: u16,
    /// Last port, inclusive; never below `first`.
    pub last: u16,
}

impl PortRange {
    /// A range holding one port.
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Number of ports in the range.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Always false: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The port used by probe number `n` (0-based): rotates through the range.
    pub fn nth(&self, n: u32) -> u16 {
        let offset = n % self.len();
        // The offset is below the range length, so the sum stays within u16.
        (u32::from(self.first) + offset) as u16
    }

    /// Iterates over every port of the range.
    pub fn iter(&self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl FromStr for PortRange {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            SpecError::new(
                "source_ports",
                format!(
                    "'{s}' is not a port range; write FIRST-LAST with ports from 1 to 65535, for example 33000-33099"
                ),
            )
        };
        let (a, b) = match s.trim().split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let first: u16 = a.parse().map_err(|_| bad())?;
        let last: u16 = b.parse().map_err(|_| bad())?;
        if first == 0 || last == 0 {
            return Err(bad());
        }
        if last < first {
            return Err(SpecError::new(
                "source_ports",
                format!("port range '{s}' is inverted: the first port must not be above the last"),
            ));
        }
        Ok(PortRange { first, last })
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Port(u16),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Port(0) => Err(serde::de::Error::custom(
                "port 0 is not a valid source port",
            )),
            Raw::Port(p) => Ok(PortRange::single(p)),
        }
    }
}

/// A spec that failed validation: which field, and a sentence saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The offending field, as named in JSON (`count`, `interval`, `target` …).
    pub field: String,
    /// What is wrong and what would be right, for a person.
    pub message: String,
}

impl SpecError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks that a target is a plausible host name or IP address literal.
///
/// It does not resolve anything; it rejects what can never work (empty, spaces, option-looking
/// strings, over-long names) so the error is immediate and clear.
pub fn ensure_target(field: &str, target: &str) -> Result<(), SpecError> {
    check_target(field, target).map(|_| ())
}

/// [`ensure_target`], also returning the address when the target is an IP address literal (not
/// bracketed), so callers that need it do not parse it again.
pub(crate) fn check_target(field: &str, target: &str) -> Result<Option<IpAddr>, SpecError> {
    let t = target.trim();
    if t.is_empty() {
        return Err(SpecError::new(field, "a target is required"));
    }
    if t != target {
        return Err(SpecError::new(
            field,
            format!("target '{target}' has leading or trailing spaces"),
        ));
    }
    if t.starts_with('-') {
        return Err(SpecError::new(
            field,
            format!("target '{t}' looks like an option, not a host name or address"),
        ));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    // Bracketed IPv6 literals are accepted as written in URLs.
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        && inner.parse::<std::net::Ipv6Addr>().is_ok()
    {
        return Ok(None);
    }
    let name = t.strip_suffix('.').unwrap_or(t);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(SpecError::new(
            field,
            format!("'{t}' is neither an IP address nor a valid host name"),
        ));
    }
    Ok(None)
}

/// Checks a duration in seconds lies within `[min, max]`.
pub(crate) fn check_seconds(field: &str, value: f64, min: f64, max: f64) -> Result<(), SpecError> {
    if !value.is_finite() || value < min || value > max {
        return Err(SpecError::new(
            field,
            format!("{value} s is out of range; use a value from {min} to {max} seconds"),
        ));
    }
    Ok(())
}

/// Checks an integer lies within `[min, max]`.
pub(crate) fn check_range<T>(field: &str, value: T, min: T, max: T) -> Result<(), SpecError>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(SpecError::new(
            field,
            format!("{value} is out of range; use a value from {min} to {max}"),
        ));
    }
    Ok(())
}

/// Checks that a literal source address matches the family asked for, if both are given.
pub(crate) fn check_source_family(
    source: Option<std::net::IpAddr>,
    family: Option<Family>,
) -> Result<(), SpecError> {
    if let (Some(src), Some(fam)) = (source, family)
        && Family::of(src) != fam
    {
        return Err(SpecError::new(
            "source",
            format!("source address {src} is not an {fam} address, but {fam} was requested"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("33000-33099", 33000, 33099 ; "a plain range parses")]
    #[test_case("80", 80, 80 ; "a single port is a range of one")]
    #[test_case(" 1 - 2 ", 1, 2 ; "spaces around the dash are tolerated")]
    fn port_range_parses(s: &str, first: u16, last: u16) {
        assert_eq!(s.parse::<PortRange>().unwrap(), PortRange { first, last });
    }

    #[test_case("0-10" ; "port zero is rejected")]
    #[test_case("10-5" ; "an inverted range is rejected")]
    #[test_case("a-b" ; "words are rejected")]
    #[test_case("1-70000" ; "ports above 65535 are rejected")]
    fn port_range_rejects(s: &str) {
        assert!(s.parse::<PortRange>().is_err());
    }

    #[test]
    fn port_range_rotates() {
        let r = PortRange {
            first: 100,
            last: 102,
        };
        let seq: Vec<u16> = (0..5).map(|n| r.nth(n)).collect();
        assert_eq!(seq, vec![100, 101, 102, 100, 101]);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn port_range_json_round_trip() {
        let r: PortRange = serde_json::from_str("\"65000-65001\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"65000-65001\"");
        let r: PortRange = serde_json::from_str("443").unwrap();
        assert_eq!(r, PortRange::single(443));
    }

    #[test_case("192.0.2.1", true ; "an IPv4 literal is accepted")]
    #[test_case("2001:db8::1", true ; "an IPv6 literal is accepted")]
    #[test_case("[2001:db8::1]", true ; "a bracketed IPv6 literal is accepted")]
    #[test_case("example.com", true ; "a host name is accepted")]
    #[test_case("example.com.", true ; "a fully qualified name is accepted")]
    #[test_case("", false ; "an empty target is rejected")]
    #[test_case("-c 5", false ; "an option-looking target is rejected")]
    #[test_case("a b", false ; "a name with a space is rejected")]
    #[test_case("exa$mple.com", false ; "a name with a dollar is rejected")]
    #[test_case("bad-.com", false ; "a label ending in a dash is rejected")]
    fn targets(t: &str, ok: bool) {
        assert_eq!(ensure_target("target", t).is_ok(), ok, "{t}");
    }
}
