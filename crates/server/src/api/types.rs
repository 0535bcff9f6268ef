//! Bodies of the REST API: what clients send and get back. The CLI's `--from` client reads the
//! same types, so the server and its client cannot drift apart.
//!
//! Measurement specs and result envelopes are `vantage-proto` types, embedded as they are; the
//! OpenAPI document describes them as objects and points at their `type` tag.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use uuid::Uuid;
use vantage_proto::link::Capabilities;
use vantage_proto::{MeasurementResult, MeasurementSpec};

use crate::model::{AgentStatus, EntryStatus, MeasurementStatus};

/// Body of `POST /measurements`: the spec's own fields (tagged by `type`) with `agents` beside
/// them. Documented by hand because the spec fields depend on `type`.
#[derive(Debug)]
pub struct MeasurementRequest;

impl PartialSchema for MeasurementRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "A measurement spec (the fields of its kind, see `type`) with the agent selector \
                 `agents` beside them. Unknown fields are rejected. Example: \
                 {\"type\":\"ping\",\"target\":\"192.0.2.1\",\"count\":3,\"interval\":0.2,\"agents\":\"country:DE@3\"}",
            ))
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(["ping", "tcp", "udp", "trace", "dns", "http"]))
                    .description(Some("Measurement kind; decides which other fields apply.")),
            )
            .required("type")
            .property(
                "agents",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .description(Some(
                        "Agent selector: alternatives separated by ',' (OR), atoms joined by '+' \
                         (AND), optional '@N' limit; atoms are 'all', 'msm:<id>' or key:value with \
                         key id, name, country, city, region, asn or a label key; '*' wildcards.",
                    ))
                    .examples(["country:DE+asn:3320@2, name:lab-1"]),
            )
            .required("agents")
            .property(
                "target",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .description(Some("Host or address (ping, tcp, udp, trace).")),
            )
            .additional_properties(Some(RefOr::T(Schema::Object(
                ObjectBuilder::new().build(),
            ))))
            .into()
    }
}

impl ToSchema for MeasurementRequest {}

/// An agent named in a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentRef {
    /// Agent id.
    pub id: Uuid,
    /// Agent name.
    pub name: String,
    /// ISO 3166 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AS number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// Answer to `POST /measurements` (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeasurementCreated {
    /// Measurement id.
    pub id: Uuid,
    /// Always `running` on creation.
    pub status: MeasurementStatus,
    /// The agents chosen.
    pub agents: Vec<AgentRef>,
    /// Selector alternatives that matched no connected agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
    /// When agents that have not answered will count as lost.
    pub deadline: DateTime<Utc>,
}

/// One selected agent's part of a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntryView {
    /// The agent.
    pub agent: AgentRef,
    /// Where its job stands.
    pub status: EntryStatus,
    /// Why it is lost, as a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// True when the result arrived after the deadline (it then replaced `agent_lost`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// The result envelope (for `agent_lost`, one with outcome `agent_lost` and the sentence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<MeasurementResult>,
}

/// Number of jobs in each status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EntryCounts {
    /// Not yet handed to the agent.
    pub queued: u32,
    /// Handed to the agent.
    pub running: u32,
    /// Result received.
    pub done: u32,
    /// The agent could not run it.
    pub failed: u32,
    /// No result by the deadline.
    pub agent_lost: u32,
}

impl EntryCounts {
    /// Counts from a status → count map.
    pub fn from_map(m: &BTreeMap<EntryStatus, u32>) -> Self {
        let g = |s| m.get(&s).copied().unwrap_or(0);
        EntryCounts {
            queued: g(EntryStatus::Queued),
            running: g(EntryStatus::Running),
            done: g(EntryStatus::Done),
            failed: g(EntryStatus::Failed),
            agent_lost: g(EntryStatus::AgentLost),
        }
    }

    /// Adds one job in a status.
    pub fn add(&mut self, s: EntryStatus) {
        match s {
            EntryStatus::Queued => self.queued += 1,
            EntryStatus::Running => self.running += 1,
            EntryStatus::Done => self.done += 1,
            EntryStatus::Failed => self.failed += 1,
            EntryStatus::AgentLost => self.agent_lost += 1,
        }
    }

    /// All jobs.
    pub fn total(&self) -> u32 {
        self.queued + self.running + self.done + self.failed + self.agent_lost
    }
}

/// A measurement with every selected agent's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeasurementView {
    /// Measurement id.
    pub id: Uuid,
    /// The spec (tagged by `type`).
    #[schema(value_type = Object)]
    pub spec: MeasurementSpec,
    /// The selector as given.
    pub agents: String,
    /// Running or finished.
    pub status: MeasurementStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When unanswered agents count as lost.
    pub deadline: DateTime<Utc>,
    /// When the last agent finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Jobs by status.
    pub counts: EntryCounts,
    /// One entry per selected agent.
    pub results: Vec<EntryView>,
}

/// A measurement in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeasurementSummary {
    /// Measurement id.
    pub id: Uuid,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Target.
    pub target: String,
    /// The selector as given.
    pub agents: String,
    /// Running or finished.
    pub status: MeasurementStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the last agent finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Jobs by status.
    pub counts: EntryCounts,
}

/// A page of measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeasurementPage {
    /// The measurements, newest first.
    pub items: Vec<MeasurementSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /measurements`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MeasurementQuery {
    /// Only this kind (ping, tcp, udp, trace, dns, http).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only this status (running, finished).
    pub status: Option<String>,
    /// Only this exact target.
    pub target: Option<String>,
    /// Only measurements that selected this agent id.
    pub agent: Option<String>,
    /// Created at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Created before this time (RFC 3339).
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<String>,
}

/// An agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// Agent id (also in its certificate).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Online, offline or revoked.
    pub status: AgentStatus,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// ISO 3166 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AS number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Capabilities announced in its last hello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<Capabilities>,
    /// Address it connected from, as the server saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_address: Option<String>,
    /// Start of the current session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<DateTime<Utc>>,
    /// Last time anything arrived from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// Enrolment time.
    pub enrolled_at: DateTime<Utc>,
    /// When its certificate expires.
    pub certificate_expires_at: DateTime<Utc>,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it is the server's built-in agent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub builtin: bool,
}

/// A list of agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// The agents, oldest enrolment first.
    pub items: Vec<AgentView>,
}

/// Present-but-null clears a field; absent leaves it alone.
fn some_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /agents/{id}`: fields to change; `null` clears a location field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    /// New name.
    pub name: Option<String>,
    /// New labels (replace all).
    pub labels: Option<BTreeMap<String, String>>,
    /// ISO 3166 country code, or null.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    /// City, or null.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<String>)]
    pub city: Option<Option<String>>,
    /// Region, or null.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Option<String>>,
    /// AS number, or null.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<u32>)]
    pub asn: Option<Option<u32>>,
}

/// Body of `POST /enrollment-tokens` (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentTokenRequest {
    /// Lifetime in seconds (10 s to 30 days; the server's default when absent).
    pub ttl_seconds: Option<f64>,
}

/// A new enrolment token. The secret is shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentTokenCreated {
    /// The token to pass to `vantage agent enroll --token`.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// SHA-256 of the CA certificate, also inside the token.
    pub ca_fingerprint: String,
    /// The URL agents dial.
    pub agent_url: String,
    /// The complete enrolment command.
    pub command: String,
}

/// The error envelope of every failed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_body`, `invalid_field`, `not_found` …).
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// Extra structured facts (for example the offending `field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// `/healthz` and `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is not ready.
    pub status: String,
    /// Connected agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents_connected: Option<usize>,
}
