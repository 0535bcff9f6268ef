//! The result envelope every measurement produces, whatever its kind and wherever it ran.
//!
//! Failures are data, not errors: a timed-out ping is a result with `outcome: timeout` and a
//! sentence in `error`. `quality` says how far to trust the numbers (where timestamps came from,
//! how late sends were), which no classic tool reports.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DnsDetail, HttpDetail, Kind, PingDetail, TcpDetail, TraceDetail, UdpDetail};

/// What happened, from a closed taxonomy. The string forms are stable: they are metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target answered as expected (for ping: at least one reply).
    Ok,
    /// Nothing answered within the timeout.
    Timeout,
    /// The target actively refused (TCP RST, DNS REFUSED, ICMP port unreachable for TCP).
    Refused,
    /// A router or the host said the destination cannot be reached (ICMP unreachable, no route).
    Unreachable,
    /// The target name could not be resolved.
    DnsFailure,
    /// The TLS handshake or certificate verification failed.
    TlsFailure,
    /// The HTTP server answered with an error status.
    HttpStatus,
    /// The destination policy forbids this target (for example a private address).
    BlockedByPolicy,
    /// The answer was malformed or not what the protocol allows.
    ProtocolError,
    /// The agent disconnected or missed the job's deadline.
    AgentLost,
    /// The measurement was cancelled before it finished.
    Cancelled,
    /// Vantage itself failed (socket setup, permissions, a bug). The sentence says what.
    Internal,
}

impl Outcome {
    /// Every outcome, in a stable order.
    pub const ALL: [Outcome; 12] = [
        Outcome::Ok,
        Outcome::Timeout,
        Outcome::Refused,
        Outcome::Unreachable,
        Outcome::DnsFailure,
        Outcome::TlsFailure,
        Outcome::HttpStatus,
        Outcome::BlockedByPolicy,
        Outcome::ProtocolError,
        Outcome::AgentLost,
        Outcome::Cancelled,
        Outcome::Internal,
    ];

    /// The stable snake_case name (JSON value and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
            Outcome::DnsFailure => "dns_failure",
            Outcome::TlsFailure => "tls_failure",
            Outcome::HttpStatus => "http_status",
            Outcome::BlockedByPolicy => "blocked_by_policy",
            Outcome::ProtocolError => "protocol_error",
            Outcome::AgentLost => "agent_lost",
            Outcome::Cancelled => "cancelled",
            Outcome::Internal => "internal",
        }
    }

    /// Whether the target answered as expected.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a timestamp came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampSource {
    /// Taken by the kernel as the packet left or arrived (SO_TIMESTAMPING / SO_TIMESTAMPNS).
    Kernel,
    /// Taken in user space around the system call: includes scheduling delay.
    #[default]
    User,
    /// Mixed: some samples kernel-stamped, some not.
    Mixed,
}

/// The kind of socket a probe used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketKind {
    /// Raw IP socket (needs CAP_NET_RAW).
    Raw,
    /// Unprivileged ICMP datagram socket, or plain UDP.
    Dgram,
    /// Stream socket (TCP connect).
    Stream,
}

/// How late sends were against their schedule, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PacingQuality {
    /// Mean delay of a send behind its scheduled time.
    pub avg_ms: f64,
    /// Worst delay of a send behind its scheduled time.
    pub max_ms: f64,
}

/// How much to trust the numbers of a result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quality {
    /// Source of send timestamps.
    pub tx_timestamp: TimestampSource,
    /// Source of receive timestamps.
    pub rx_timestamp: TimestampSource,
    /// Whether the probe ran with raw-socket privilege (CAP_NET_RAW).
    pub privileged: bool,
    /// The socket type used, when the kind has a choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<SocketKind>,
    /// Send-pacing delay behind schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<PacingQuality>,
    /// One-minute load average of the host per CPU when the probe ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_load: Option<f64>,
    /// Estimated offset of the agent's clock from the server's, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    /// Free-form notes a person should read (for example why a fallback was used).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The kind-specific payload of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Detail {
    /// ICMP echo detail.
    Ping(PingDetail),
    /// TCP detail.
    Tcp(TcpDetail),
    /// UDP detail.
    Udp(UdpDetail),
    /// Traceroute / mtr detail.
    Trace(TraceDetail),
    /// DNS detail.
    Dns(DnsDetail),
    /// HTTP detail. Boxed: it is twice the size of the others, and a sweep holds tens of
    /// thousands of results whose detail is a ping's.
    Http(Box<HttpDetail>),
}

impl Detail {
    /// The kind this payload belongs to.
    pub fn kind(&self) -> Kind {
        match self {
            Detail::Ping(_) => Kind::Ping,
            Detail::Tcp(_) => Kind::Tcp,
            Detail::Udp(_) => Kind::Udp,
            Detail::Trace(_) => Kind::Trace,
            Detail::Dns(_) => Kind::Dns,
            Detail::Http(_) => Kind::Http,
        }
    }
}

/// One answer to one measurement from one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementResult {
    /// Unique id of this result; re-sends of the same result keep it (idempotent storage).
    pub id: Uuid,
    /// The measurement this result answers, when it ran on behalf of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_id: Option<Uuid>,
    /// The agent that produced it, when it ran on an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The measurement kind.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The target as given (host, name or URL).
    pub target: String,
    /// When the measurement started (UTC).
    pub started_at: DateTime<Utc>,
    /// Wall time the measurement took, in milliseconds.
    pub duration_ms: f64,
    /// What happened.
    pub outcome: Outcome,
    /// A sentence for a person when the outcome is not `ok` (or something notable happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Kind-specific payload; absent when the measurement failed before producing any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// How much to trust the numbers.
    pub quality: Quality,
}

impl MeasurementResult {
    /// A result that carries only an outcome and a sentence (no payload), started now.
    pub fn failure(
        kind: Kind,
        target: impl Into<String>,
        outcome: Outcome,
        error: impl Into<String>,
    ) -> Self {
        MeasurementResult {
            id: Uuid::now_v7(),
            measurement_id: None,
            agent: None,
            kind,
            target: target.into(),
            started_at: Utc::now(),
            duration_ms: 0.0,
            outcome,
            error: Some(error.into()),
            detail: None,
            quality: Quality::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_strings_are_the_serde_names() {
        for o in Outcome::ALL {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
            let back: Outcome = serde_json::from_str(&json).unwrap();
            assert_eq!(back, o);
        }
    }

    #[test]
    fn failure_envelope_serializes_without_empty_fields() {
        let r = MeasurementResult::failure(
            Kind::Ping,
            "nonexistent.invalid",
            Outcome::DnsFailure,
            "could not resolve",
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["type"], "ping");
        assert_eq!(v["outcome"], "dns_failure");
        assert!(v.get("detail").is_none());
        assert!(v.get("agent").is_none());
        let back: MeasurementResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
