//! One link session from the agent's side: connect, hello, then jobs in, results out, heartbeats
//! both ways, until the link fails or the agent stops.
//!
//! Results are sent from the outbox in order with at most `max_unacked` in flight; an
//! acknowledgement deletes them from the outbox and frees the window. Every new session starts
//! sending from the beginning of the outbox, so whatever was in flight when a link died is sent
//! again (the server stores each result id once).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use vantage_proto::link::{
    AgentMessage, Capabilities, Hello, LINK_PATH, PROTOCOL_VERSION, ServerMessage,
};

use crate::Error;
use crate::connect::ServerUrl;
use crate::jobs::Jobs;
use crate::outbox::Outbox;
use crate::tls::alert_of;

/// How long the server may take to answer the hello.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    /// The agent is stopping.
    Stopped,
    /// The server closed the link.
    Closed,
    /// The server refused the session with this sentence.
    Refused(String),
    /// The link failed.
    Failed(String),
    /// The server refused our certificate as revoked.
    Revoked,
}

/// What a session needs.
pub(crate) struct Session<'a> {
    pub url: &'a ServerUrl,
    pub tls: Arc<rustls::ClientConfig>,
    pub outbox: &'a Arc<Outbox>,
    pub jobs: &'a Arc<Jobs>,
    pub capabilities: &'a Capabilities,
    pub stop: &'a CancellationToken,
}

fn io_of(e: &tungstenite::Error) -> Option<&std::io::Error> {
    match e {
        tungstenite::Error::Io(io) => Some(io),
        _ => None,
    }
}

fn classify(e: &tungstenite::Error) -> End {
    if let Some(a) = io_of(e).and_then(alert_of) {
        return match a {
            rustls::AlertDescription::CertificateRevoked => End::Revoked,
            other => End::Failed(format!(
                "the server refused this agent's certificate (TLS alert {other:?}); is the agent enrolled with this server?"
            )),
        };
    }
    End::Failed(format!("link failed: {e}"))
}

impl Session<'_> {
    /// Runs one session; `established` is set once the server welcomed the agent.
    pub(crate) async fn run(&self, established: &mut bool) -> End {
        let tls = match self.url.connect(self.tls.clone()).await {
            Ok(t) => t,
            Err(e) => return End::Failed(e.to_string()),
        };
        let request = format!("wss://{}{LINK_PATH}", self.url.authority());
        let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
        let ws = tokio::time::timeout(
            WELCOME_TIMEOUT,
            tokio_tungstenite::client_async_with_config(request, tls, Some(config)),
        )
        .await;
        let mut ws = match ws {
            Err(_) => return End::Failed("the WebSocket handshake timed out".into()),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_default();
                if resp.status() == 403 && body.contains("revoked") {
                    return End::Revoked;
                }
                return End::Refused(format!("HTTP {}: {body}", resp.status()));
            }
            Ok(Err(e)) => return classify(&e),
            Ok(Ok((ws, _))) => ws,
        };
        let hello = AgentMessage::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: self.capabilities.clone(),
            held_jobs: self.jobs.held(),
        });
        if let Err(e) = ws.send(Message::text(hello.encode())).await {
            return classify(&e);
        }
        let welcome = loop {
            match tokio::time::timeout(WELCOME_TIMEOUT, ws.next()).await {
                Err(_) => return End::Failed("the server did not answer the hello".into()),
                Ok(None) => return End::Closed,
                Ok(Some(Err(e))) => return classify(&e),
                Ok(Some(Ok(Message::Text(t)))) => match ServerMessage::decode(&t) {
                    Ok(Some(ServerMessage::Welcome(w))) => break w,
                    Ok(Some(ServerMessage::Refused { reason })) => return End::Refused(reason),
                    Ok(_) => continue,
                    Err(e) => return End::Failed(e.to_string()),
                },
                Ok(Some(Ok(Message::Close(_)))) => return End::Closed,
                Ok(Some(Ok(_))) => continue,
            }
        };
        *established = true;
        tracing::info!(server = %self.url, agent = %welcome.agent_id, "link established");
        let hb_every = Duration::from_millis(welcome.heartbeat_interval_ms.max(10));
        let hb_timeout = Duration::from_millis(welcome.heartbeat_timeout_ms.max(50));
        let window = welcome.max_unacked.max(1) as usize;

        let (mut sink, mut stream) = ws.split();
        let mut tick = tokio::time::interval(hb_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0u64;
        let mut last_rx = tokio::time::Instant::now();
        // Position of the last result sent in this session, and the ids in flight.
        let mut cursor: Option<u64> = None;
        let mut in_flight: std::collections::HashSet<uuid::Uuid> = Default::default();
        loop {
            // Fill the window from the outbox.
            in_flight.retain(|id| self.outbox.holds(*id));
            while in_flight.len() < window {
                let Some((pos, entry)) = self.outbox.next_after(cursor) else {
                    break;
                };
                if let Err(e) = sink.send(Message::text(entry.message)).await {
                    return classify(&e);
                }
                cursor = Some(pos);
                in_flight.insert(entry.result_id);
            }
            tokio::select! {
                _ = self.stop.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return End::Stopped;
                }
                _ = self.outbox.added.notified() => {}
                _ = tick.tick() => {
                    if last_rx.elapsed() > hb_timeout {
                        return End::Failed(format!(
                            "nothing heard from the server for {:.1} s",
                            hb_timeout.as_secs_f64()
                        ));
                    }
                    seq += 1;
                    let hb = AgentMessage::Heartbeat { seq };
                    if let Err(e) = sink.send(Message::text(hb.encode())).await {
                        return classify(&e);
                    }
                }
                m = stream.next() => {
                    last_rx = tokio::time::Instant::now();
                    match m {
                        None | Some(Ok(Message::Close(_))) => return End::Closed,
                        Some(Err(e)) => return classify(&e),
                        Some(Ok(Message::Text(t))) => match ServerMessage::decode(&t) {
                            Ok(Some(ServerMessage::Job(job))) => self.jobs.start(job),
                            Ok(Some(ServerMessage::Ack { result_ids })) => {
                                self.outbox.ack(&result_ids).await;
                                for id in &result_ids {
                                    in_flight.remove(id);
                                }
                            }
                            Ok(Some(ServerMessage::Cancel { job_id })) => self.jobs.cancel(job_id),
                            Ok(Some(ServerMessage::Refused { reason })) => return End::Refused(reason),
                            Ok(Some(ServerMessage::Heartbeat { .. } | ServerMessage::Welcome(_))) | Ok(None) => {}
                            Err(e) => return End::Failed(e.to_string()),
                        },
                        Some(Ok(_)) => {}
                    }
                }
            }
        }
    }
}

/// Runs sessions until `stop`, reconnecting with exponential backoff and jitter. Returns an
/// error only when retrying cannot help (the agent was revoked).
pub(crate) async fn run_forever(
    s: Session<'_>,
    min_backoff: Duration,
    max_backoff: Duration,
) -> Result<(), Error> {
    let mut backoff = min_backoff;
    loop {
        let mut established = false;
        let end = s.run(&mut established).await;
        match &end {
            End::Stopped => return Ok(()),
            End::Revoked => return Err(Error::Revoked),
            End::Closed => tracing::info!(server = %s.url, "the server closed the link"),
            End::Refused(r) => tracing::error!(server = %s.url, "the server refused the link: {r}"),
            End::Failed(r) => tracing::warn!(server = %s.url, "{r}"),
        }
        if established {
            backoff = min_backoff;
        }
        // Full jitter between half and all of the current step, so a restarted server is not hit
        // by every agent at the same instant.
        let step = backoff.as_secs_f64();
        let delay = Duration::from_secs_f64(step * (0.5 + 0.5 * rand::random::<f64>()));
        backoff = (backoff * 2).min(max_backoff);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = s.stop.cancelled() => return Ok(()),
        }
    }
}
