//! The Vantage agent.
//!
//! An agent dials out to the server's agent port (so it works behind NAT), over TLS 1.3 with the
//! client certificate it got at enrolment, and keeps one WebSocket link open: it receives jobs,
//! runs them with the measurement engine under their hard deadlines, and sends results back.
//! It reconnects with exponential backoff and jitter when the link drops.
//!
//! The main decision: every result goes to an on-disk outbox before it is sent and leaves it only
//! when the server acknowledges it, so a link cut, a server restart or an agent restart loses
//! nothing; result ids make the re-sends idempotent on the server.
//!
//! This crate links no server code; the lean `vantage-agent` binary is built from it, and the
//! server runs the same [`run`] in process as its built-in local agent.

/// Command-line arguments shared by `vantage agent` and `vantage-agent`.
pub mod cli;
/// Reaching the server: URL parsing, TCP and TLS.
mod connect;
/// One-time enrolment.
mod enroll;
/// The error type.
mod error;
/// Key, certificate, CA and state files.
pub mod identity;
/// Running jobs under their deadlines.
mod jobs;
/// Link sessions and the reconnect loop.
mod link;
/// The on-disk outbox.
mod outbox;
/// How the agent trusts the server.
mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vantage_probe::Privilege;
use vantage_proto::Kind;
use vantage_proto::link::Capabilities;

pub use connect::{DEFAULT_PORT, ServerUrl};
pub use enroll::{EnrollOptions, enroll, host_name};
pub use error::Error;
pub use identity::Identity;
pub use outbox::Outbox;
pub use tls::fingerprint;

/// Default data directory of an agent.
pub const DEFAULT_DATA_DIR: &str = "./vantage-agent-data";

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where its identity and outbox live.
    pub data_dir: PathBuf,
    /// The server's agent URL; the one recorded at enrolment when absent.
    pub server: Option<String>,
    /// Which sockets probes may use.
    pub privilege: Privilege,
    /// Whether probes may target non-global addresses (loopback, RFC 1918 …).
    pub allow_private: bool,
    /// First reconnect delay.
    pub min_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
    /// Whether outbox writes are synced to disk (only tests and benchmarks on a throw-away
    /// directory turn this off).
    pub outbox_fsync: bool,
}

impl AgentConfig {
    /// Defaults for an agent keeping its state in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        AgentConfig {
            data_dir: data_dir.into(),
            server: None,
            privilege: Privilege::Auto,
            allow_private: false,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            outbox_fsync: true,
        }
    }
}

/// What this host can do: raw sockets, and which address families have a route. Checking a
/// route opens a UDP socket and connects it, which sends nothing.
pub fn capabilities() -> Capabilities {
    use socket2::{Domain, Protocol, Socket, Type};
    let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).is_ok();
    let route = |addr: &str| {
        std::net::UdpSocket::bind(if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .and_then(|s| s.connect(addr))
        .is_ok()
    };
    Capabilities {
        raw_sockets: raw,
        ipv4: route("192.0.2.1:9"),
        ipv6: route("[2001:db8::1]:9"),
        kinds: Kind::ALL.to_vec(),
    }
}

/// Runs the agent until `shutdown` completes or the agent is revoked.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    // One process-wide crypto provider; installing twice is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let identity = Identity::load(&config.data_dir)?;
    let server = config
        .server
        .clone()
        .unwrap_or_else(|| identity.state.server.clone());
    let url = ServerUrl::parse(&server)?;
    let tls = identity.client_config()?;
    let outbox = Arc::new(Outbox::open(
        &config.data_dir.join("outbox"),
        config.outbox_fsync,
    )?);
    if !outbox.is_empty() {
        tracing::info!(
            results = outbox.len(),
            "results from before are waiting in the outbox"
        );
    }
    let jobs = Arc::new(jobs::Jobs::new(
        identity.state.agent_id,
        config.privilege,
        config.allow_private,
        outbox.clone(),
    ));
    let caps = capabilities();
    let stop = CancellationToken::new();
    let session = link::Session {
        url: &url,
        tls,
        outbox: &outbox,
        jobs: &jobs,
        capabilities: &caps,
        stop: &stop,
    };
    let forever = link::run_forever(session, config.min_backoff, config.max_backoff);
    tokio::pin!(forever);
    let early = tokio::select! {
        r = &mut forever => Some(r),
        _ = shutdown => None,
    };
    let result = match early {
        Some(r) => r,
        None => {
            // Let the session say goodbye to the server.
            stop.cancel();
            forever.await
        }
    };
    // Jobs still running report what they measured into the outbox for the next start.
    jobs.stop(Duration::from_secs(2)).await;
    result
}
