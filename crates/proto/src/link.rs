//! The agent link: messages between an agent and the server, and the enrolment exchange.
//!
//! The agent dials out to the server's agent port (TLS 1.3, client certificate) and opens a
//! WebSocket at [`LINK_PATH`]; every frame is one JSON text message, tagged by `type`. The
//! specs and results inside are the very types the REST API uses, so no converters exist.
//!
//! The main decisions, which a gRPC stack would otherwise have given us:
//! - a versioned handshake: the agent's [`Hello`] carries [`PROTOCOL_VERSION`]; the server
//!   answers [`Welcome`] or [`ServerMessage::Refused`] with a sentence, then closes;
//! - heartbeats both ways at the interval the server announces; a side that hears nothing for
//!   [`Welcome::heartbeat_timeout_ms`] ends the session (the agent then reconnects);
//! - job ids for correlation and a hard deadline per job ([`Job::timeout_ms`]);
//! - acknowledgements: the agent keeps every result in its on-disk outbox until the server
//!   acknowledges its id, and has at most [`Welcome::max_unacked`] results in flight (the
//!   bounded window is the backpressure); result ids make re-sends idempotent;
//! - forward compatibility: a message of an unknown `type` decodes to `None` and is ignored, so
//!   a newer peer may add messages within one protocol version.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Kind, MeasurementResult, MeasurementSpec};

/// Version of the link protocol spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;
/// Path of the WebSocket on the agent port.
pub const LINK_PATH: &str = "/agent/v1/link";
/// Path of the enrolment request on the agent port (the only path usable without a client
/// certificate).
pub const ENROLL_PATH: &str = "/agent/v1/enroll";

/// What an agent can do, announced in its hello.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Whether the agent can open raw sockets (CAP_NET_RAW): TCP SYN probes, raw ICMP.
    pub raw_sockets: bool,
    /// Whether the host has IPv4 connectivity configured.
    pub ipv4: bool,
    /// Whether the host has IPv6 connectivity configured.
    pub ipv6: bool,
    /// Measurement kinds this agent's engine can run.
    pub kinds: Vec<Kind>,
}

/// First message of the agent on a new link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the agent.
    pub protocol: u32,
    /// The agent software version.
    pub agent_version: String,
    /// What the agent can do.
    pub capabilities: Capabilities,
    /// Jobs the agent still holds (running, or finished with the result in its outbox), so the
    /// server does not send them again.
    #[serde(default)]
    pub held_jobs: Vec<Uuid>,
}

/// The server's answer to a valid hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// [`PROTOCOL_VERSION`] the session will speak.
    pub protocol: u32,
    /// The agent's id as the server knows it (from its certificate).
    pub agent_id: Uuid,
    /// The server software version.
    pub server_version: String,
    /// Send a heartbeat at least this often, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// End the session when nothing arrived for this long, in milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Most results the agent may have sent and not yet seen acknowledged.
    pub max_unacked: u32,
}

/// One measurement for one agent to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Correlates the result with this job (one job per agent per measurement).
    pub job_id: Uuid,
    /// The measurement this job belongs to.
    pub measurement_id: Uuid,
    /// What to measure.
    pub spec: MeasurementSpec,
    /// Hard deadline, in milliseconds from receipt: the agent stops the measurement then and
    /// reports what it has.
    pub timeout_ms: u64,
}

/// Messages from the agent to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Opens the session.
    Hello(Hello),
    /// Liveness.
    Heartbeat {
        /// Increments with each heartbeat of a session.
        seq: u64,
    },
    /// A finished job's result (also re-sent from the outbox after a reconnect).
    JobResult {
        /// The job.
        job_id: Uuid,
        /// The result envelope; its `id` makes re-sends idempotent.
        result: Box<MeasurementResult>,
    },
}

/// Messages from the server to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Accepts the hello; the session is open.
    Welcome(Welcome),
    /// Refuses the session (protocol mismatch, revoked agent …); the server closes after it.
    Refused {
        /// Why, for a person.
        reason: String,
    },
    /// Liveness.
    Heartbeat {
        /// Increments with each heartbeat of a session.
        seq: u64,
    },
    /// Run a measurement.
    Job(Job),
    /// Stop a job early; its result (with what was measured so far) is still sent.
    Cancel {
        /// The job.
        job_id: Uuid,
    },
    /// These results are stored; the agent may delete them from its outbox.
    Ack {
        /// Result ids.
        result_ids: Vec<Uuid>,
    },
}

/// A link message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed link message: {0}")]
pub struct LinkDecodeError(String);

/// Decodes a message, returning `None` for a well-formed message of a type this build does not
/// know (a newer peer), and an error for anything else.
fn decode<T: serde::de::DeserializeOwned>(
    text: &str,
    known: &[&str],
) -> Result<Option<T>, LinkDecodeError> {
    match serde_json::from_str::<T>(text) {
        Ok(m) => Ok(Some(m)),
        Err(e) => {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|_| LinkDecodeError(e.to_string()))?;
            match v.get("type").and_then(|t| t.as_str()) {
                Some(t) if !known.contains(&t) => Ok(None),
                _ => Err(LinkDecodeError(e.to_string())),
            }
        }
    }
}

impl AgentMessage {
    /// Decodes a text frame; `Ok(None)` means an unknown message type to be ignored.
    pub fn decode(text: &str) -> Result<Option<Self>, LinkDecodeError> {
        decode(text, &["hello", "heartbeat", "job_result"])
    }

    /// Encodes as a text frame.
    pub fn encode(&self) -> String {
        // Serialising these plain data types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerMessage {
    /// Decodes a text frame; `Ok(None)` means an unknown message type to be ignored.
    pub fn decode(text: &str) -> Result<Option<Self>, LinkDecodeError> {
        decode(
            text,
            &["welcome", "refused", "heartbeat", "job", "cancel", "ack"],
        )
    }

    /// Encodes as a text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The enrolment request an agent sends (HTTPS POST to [`ENROLL_PATH`], no client certificate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time enrolment token, as printed by the server.
    pub token: String,
    /// PEM certificate signing request for the key the agent generated (the key never leaves
    /// the agent).
    pub csr: String,
    /// Requested agent name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// ISO 3166 two-letter country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// The server's answer to a successful enrolment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The id the server gave the agent (also in its certificate).
    pub agent_id: Uuid,
    /// The agent's name as stored.
    pub name: String,
    /// PEM certificate for the agent's key, signed by the server's CA.
    pub certificate: String,
    /// PEM certificate of the server's CA.
    pub ca: String,
}

/// Parts of an enrolment token: `vantage-enroll.<secret>.<sha256 of the CA certificate, hex>`.
///
/// The fingerprint lets the agent trust the server on first contact even over an untrusted
/// network, as `kubeadm join --discovery-token-ca-cert-hash` does; the secret authorises one
/// enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollToken {
    /// The one-time secret (URL-safe characters).
    pub secret: String,
    /// SHA-256 of the CA certificate (DER), lowercase hex.
    pub ca_fingerprint: String,
}

/// Prefix of every enrolment token.
pub const ENROLL_TOKEN_PREFIX: &str = "vantage-enroll";

impl std::fmt::Display for EnrollToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{ENROLL_TOKEN_PREFIX}.{}.{}",
            self.secret, self.ca_fingerprint
        )
    }
}

impl std::str::FromStr for EnrollToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "'{}' is not an enrolment token; it looks like {ENROLL_TOKEN_PREFIX}.<secret>.<64 hex digits>, as printed by POST /api/v1/enrollment-tokens",
                s.chars().take(24).collect::<String>()
            )
        };
        let mut parts = s.trim().split('.');
        let (Some(prefix), Some(secret), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if prefix != ENROLL_TOKEN_PREFIX
            || secret.len() < 16
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || fp.len() != 64
            || !fp.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad());
        }
        Ok(EnrollToken {
            secret: secret.to_string(),
            ca_fingerprint: fp.to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, PingSpec};

    #[test]
    fn messages_round_trip_with_a_type_tag() {
        let job = ServerMessage::Job(Job {
            job_id: Uuid::from_u128(1),
            measurement_id: Uuid::from_u128(2),
            spec: MeasurementSpec::Ping(PingSpec::new("192.0.2.1")),
            timeout_ms: 5000,
        });
        let text = job.encode();
        assert!(text.contains(r#""type":"job""#), "{text}");
        assert_eq!(ServerMessage::decode(&text).unwrap(), Some(job));

        let r = MeasurementResult::failure(Kind::Ping, "192.0.2.1", Outcome::Timeout, "no reply");
        let msg = AgentMessage::JobResult {
            job_id: Uuid::from_u128(1),
            result: Box::new(r),
        };
        assert_eq!(AgentMessage::decode(&msg.encode()).unwrap(), Some(msg));
    }

    #[test]
    fn unknown_message_types_are_ignored_but_garbage_is_an_error() {
        assert_eq!(
            ServerMessage::decode(r#"{"type":"reboot","now":true}"#).unwrap(),
            None
        );
        assert_eq!(
            AgentMessage::decode(r#"{"type":"telemetry"}"#).unwrap(),
            None
        );
        assert!(ServerMessage::decode("not json").is_err());
        assert!(ServerMessage::decode(r#"{"type":"ack","result_ids":"x"}"#).is_err());
        assert!(AgentMessage::decode(r#"{"seq":1}"#).is_err());
    }

    #[test]
    fn enrolment_tokens_parse_and_print() {
        let fp = "ab".repeat(32);
        let t: EnrollToken = format!("vantage-enroll.s3cr3t-s3cr3t_s3cr3t.{fp}")
            .parse()
            .unwrap();
        assert_eq!(t.secret, "s3cr3t-s3cr3t_s3cr3t");
        assert_eq!(t.ca_fingerprint, fp);
        assert_eq!(t.to_string().parse::<EnrollToken>().unwrap(), t);
        for bad in [
            "",
            "vantage-enroll.short.abcd",
            &format!("other.s3cr3t-s3cr3t_s3cr3t.{fp}"),
            &format!("vantage-enroll.s3cr3t-s3cr3t_s3cr3t.{fp}.x"),
            &format!("vantage-enroll.s3cr3t s3cr3t_s3cr3t.{fp}"),
        ] {
            assert!(bad.parse::<EnrollToken>().is_err(), "{bad}");
        }
    }

    #[test]
    fn enrolment_requests_reject_unknown_fields() {
        let e = serde_json::from_str::<EnrollRequest>(
            r#"{"token":"t","csr":"c","name":"n","colour":"red"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"));
    }
}
