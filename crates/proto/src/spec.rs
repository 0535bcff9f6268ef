//! The closed set of measurement kinds.
//!
//! `MeasurementSpec` is internally tagged by `type`, and every variant's struct rejects unknown
//! fields, so `{"type":"ping","target":"192.0.2.1","cuont":3}` is an error, not a silent default.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DnsSpec, HttpSpec, PingSpec, SpecError, TcpSpec, TraceSpec, UdpSpec};

/// One measurement to run once, of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MeasurementSpec {
    /// ICMP echo.
    Ping(PingSpec),
    /// TCP handshake (connect) or half-open SYN probing.
    Tcp(TcpSpec),
    /// UDP to a closed port, timed by the ICMP port-unreachable.
    Udp(UdpSpec),
    /// Traceroute / mtr.
    Trace(TraceSpec),
    /// DNS query.
    Dns(DnsSpec),
    /// HTTP(S) request timed by phase.
    Http(HttpSpec),
}

/// The kind of a measurement, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// ICMP echo.
    Ping,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Traceroute / mtr.
    Trace,
    /// DNS.
    Dns,
    /// HTTP.
    Http,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 6] = [
        Kind::Ping,
        Kind::Tcp,
        Kind::Udp,
        Kind::Trace,
        Kind::Dns,
        Kind::Http,
    ];

    /// The stable lowercase name used in JSON, URLs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ping => "ping",
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
            Kind::Trace => "trace",
            Kind::Dns => "dns",
            Kind::Http => "http",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                SpecError::new(
                    "type",
                    format!(
                        "unknown measurement type '{s}'; use one of ping, tcp, udp, trace, dns, http"
                    ),
                )
            })
    }
}

impl MeasurementSpec {
    /// The kind of this spec.
    pub fn kind(&self) -> Kind {
        match self {
            MeasurementSpec::Ping(_) => Kind::Ping,
            MeasurementSpec::Tcp(_) => Kind::Tcp,
            MeasurementSpec::Udp(_) => Kind::Udp,
            MeasurementSpec::Trace(_) => Kind::Trace,
            MeasurementSpec::Dns(_) => Kind::Dns,
            MeasurementSpec::Http(_) => Kind::Http,
        }
    }

    /// What the measurement is aimed at: a host, a DNS name or a URL.
    pub fn target(&self) -> &str {
        match self {
            MeasurementSpec::Ping(s) => &s.target,
            MeasurementSpec::Tcp(s) => &s.target,
            MeasurementSpec::Udp(s) => &s.target,
            MeasurementSpec::Trace(s) => &s.target,
            MeasurementSpec::Dns(s) => &s.name,
            MeasurementSpec::Http(s) => &s.url,
        }
    }

    /// Checks every range and cross-field rule. The single gate before anything runs.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            MeasurementSpec::Ping(s) => s.validate(),
            MeasurementSpec::Tcp(s) => s.validate(),
            MeasurementSpec::Udp(s) => s.validate(),
            MeasurementSpec::Trace(s) => s.validate(),
            MeasurementSpec::Dns(s) => s.validate(),
            MeasurementSpec::Http(s) => s.validate(),
        }
    }

    /// An upper bound on how long the measurement can take when everything times out, in
    /// seconds. Schedulers derive job deadlines from it.
    pub fn max_duration(&self) -> f64 {
        match self {
            MeasurementSpec::Ping(s) => s.max_duration(),
            MeasurementSpec::Tcp(s) => s.max_duration(),
            MeasurementSpec::Udp(s) => s.max_duration(),
            MeasurementSpec::Trace(s) => s.max_duration(),
            MeasurementSpec::Dns(s) => s.max_duration(),
            MeasurementSpec::Http(s) => s.max_duration(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_example_parses_and_validates() {
        let spec: MeasurementSpec = serde_json::from_str(
            r#"{"type":"ping","target":"192.0.2.1","count":3,"interval":0.2}"#,
        )
        .unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.kind(), Kind::Ping);
        assert_eq!(spec.target(), "192.0.2.1");
    }

    #[test]
    fn unknown_fields_are_rejected_inside_a_tagged_variant() {
        let err = serde_json::from_str::<MeasurementSpec>(
            r#"{"type":"ping","target":"192.0.2.1","cuont":3}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cuont"), "{err}");
    }

    #[test]
    fn unknown_types_are_rejected() {
        let err = serde_json::from_str::<MeasurementSpec>(r#"{"type":"smoke","target":"x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("smoke"), "{err}");
    }

    #[test]
    fn every_kind_round_trips_through_json_with_its_defaults() {
        let specs = [
            r#"{"type":"ping","target":"192.0.2.1"}"#,
            r#"{"type":"tcp","target":"192.0.2.1","port":443}"#,
            r#"{"type":"udp","target":"192.0.2.1","port":33434}"#,
            r#"{"type":"trace","target":"192.0.2.1"}"#,
            r#"{"type":"dns","name":"example.com"}"#,
            r#"{"type":"http","url":"https://example.com/"}"#,
        ];
        for text in specs {
            let spec: MeasurementSpec = serde_json::from_str(text).unwrap();
            spec.validate().unwrap_or_else(|e| panic!("{text}: {e}"));
            let again: MeasurementSpec =
                serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(spec, again);
            assert!(spec.max_duration() > 0.0);
        }
    }

    #[test]
    fn kinds_parse_from_their_names() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
        }
        assert!("icmp".parse::<Kind>().is_err());
    }
}
