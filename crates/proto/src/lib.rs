//! The Vantage contract.
//!
//! Everything that crosses a boundary — the REST body, the stored row, the message to an agent and
//! the CLI's parsed arguments — is a type from this crate. It is pure data (serde), with no sockets
//! and no runtime, so every other crate can depend on it cheaply and agree on one meaning.
//!
//! The main decision: a measurement is one [`MeasurementSpec`] (a closed enum, one struct per kind,
//! one [`MeasurementSpec::validate`]) and every answer is one [`MeasurementResult`] envelope whose
//! `detail` is kind-specific and whose `outcome` comes from the closed [`Outcome`] taxonomy.

/// Shared field types: address family, port ranges, validation errors.
mod common;
/// DNS measurement spec and detail.
mod dns;
/// `HOST[:PORT]` endpoints (DNS servers, HTTP connect-to).
mod endpoint;
/// HTTP measurement spec and detail.
mod http;
/// Agent ⇄ server link messages and the enrolment exchange.
pub mod link;
/// ICMP echo measurement spec and detail.
mod ping;
/// The result envelope, outcome taxonomy and quality metadata.
mod result;
/// Agent selectors: grammar, validation and selection.
pub mod selector;
/// The closed set of measurement kinds.
mod spec;
/// Latency statistics computed from per-packet samples.
mod stats;
/// TCP (connect and SYN) measurement spec and detail.
mod tcp;
/// Traceroute / mtr measurement spec and detail.
mod trace;
/// UDP (port-unreachable) measurement spec and detail.
mod udp;

pub use common::{Family, PortRange, SpecError, ensure_target};
pub use dns::{
    DnsDetail, DnsRecord, DnsServerResult, DnsSpec, DnsTransport, rr_type_code, rr_type_name,
};
pub use endpoint::{Endpoint, Host};
pub use http::{
    HttpDetail, HttpMethod, HttpPhases, HttpRedirectHop, HttpSpec, HttpTls, HttpTlsCertificate,
};
pub use ping::{PingDetail, PingReply, PingSpec};
pub use result::{
    Detail, MeasurementResult, Outcome, PacingQuality, Quality, SocketKind, TimestampSource,
};
pub use selector::{AgentFacts, Selection, Selector, SelectorError};
pub use spec::{Kind, MeasurementSpec};
pub use stats::{RttStats, percentile};
pub use tcp::{PortProbe, PortSummary, ProbeStatus, TcpDetail, TcpMode, TcpSpec};
pub use trace::{
    MplsLabel, TraceAddr, TraceDetail, TraceHop, TraceProbe, TraceProtocol, TraceSpec, TraceStats,
};
pub use udp::{UdpDetail, UdpSpec};

/// Default values of spec fields, for front ends that show them (`--help`, forms).
pub mod defaults {
    pub use crate::dns::{
        DEFAULT_EDNS_SIZE as DNS_EDNS_SIZE, DEFAULT_PORT as DNS_PORT, DEFAULT_QTYPE as DNS_QTYPE,
        DEFAULT_RETRIES as DNS_RETRIES, DEFAULT_TIMEOUT as DNS_TIMEOUT,
    };
    pub use crate::http::{
        DEFAULT_BODY_LIMIT as HTTP_BODY_LIMIT, DEFAULT_MAX_REDIRECTS as HTTP_MAX_REDIRECTS,
        DEFAULT_TIMEOUT as HTTP_TIMEOUT,
    };
    pub use crate::ping::{
        DEFAULT_COUNT as PING_COUNT, DEFAULT_INTERVAL as PING_INTERVAL, DEFAULT_SIZE as PING_SIZE,
        DEFAULT_TIMEOUT as PING_TIMEOUT,
    };
    pub use crate::tcp::{
        DEFAULT_COUNT as L4_COUNT, DEFAULT_INTERVAL as L4_INTERVAL, DEFAULT_TIMEOUT as L4_TIMEOUT,
    };
    pub use crate::trace::{
        DEFAULT_FIRST_TTL as TRACE_FIRST_TTL, DEFAULT_INTERVAL as TRACE_INTERVAL,
        DEFAULT_MAX_TTL as TRACE_MAX_TTL, DEFAULT_PROBES as TRACE_PROBES,
        DEFAULT_SIZE as TRACE_SIZE, DEFAULT_TIMEOUT as TRACE_TIMEOUT, MIN_SIZE as TRACE_MIN_SIZE,
        MIN_TTL_WINDOW as TRACE_MIN_TTL_WINDOW, RDNS_TIMEOUT as TRACE_RDNS_TIMEOUT,
    };
    pub use crate::udp::DEFAULT_SIZE as UDP_SIZE;
}
