//! The Vantage server: REST API, agent hub, built-in PKI and storage.
//!
//! A user asks one question (`POST /api/v1/measurements` with a spec and an agent selector) and
//! gets every selected agent's answer, live over Server-Sent Events and stored, never silently
//! incomplete: each agent ends with a result or a status saying why not. Agents dial in over TLS
//! 1.3 with certificates the server's own CA issued at enrolment, and keep a WebSocket link.
//!
//! The main decisions: the agent link carries the very `vantage-proto` types the REST API uses
//! (no protobuf twins); every status change goes through one batching writer that acknowledges
//! results only after they are committed (see `lifecycle`); storage is one query code path
//! designed to run on SQLite now and PostgreSQL later (see `store`).
//!
//! Tests and the CLI start it with [`start`] (port-0 listeners work) or [`run`].

/// The agent port: TLS, enrolment and the link WebSocket.
mod agent_port;
/// REST API, OpenAPI document, health and metrics.
pub mod api;
/// Shared state and live events.
mod app;
/// A client of the REST API.
pub mod client;
/// Configuration: flags, environment, file.
pub mod config;
/// The error type.
mod error;
/// Connected agents.
mod hub;
/// Measurement lifecycle and the batching writer.
mod lifecycle;
/// The built-in local agent.
mod local_agent;
/// The server's own metrics.
mod metrics;
/// Statuses and roles.
pub mod model;
/// The certificate authority.
pub mod pki;
/// Start and stop.
mod server;
/// One agent's link session.
mod session;
/// Storage.
pub mod store;

pub use api::openapi;
pub use client::{Client, EventStream, StreamEvent};
pub use config::{ServerConfig, ServerOverrides};
pub use error::Error;
pub use lifecycle::JOB_SLACK_SECS;
pub use server::{RunningServer, run, start};
