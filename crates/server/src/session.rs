//! One agent's link session on the server: hello, welcome, jobs out, results in, heartbeats
//! both ways, until either side goes quiet or the session is closed (revocation, replacement,
//! shutdown).
//!
//! Sending runs in its own task fed by a bounded queue (the hub's handle to this agent), so a
//! slow socket never blocks the reader; the reader forwards results to the lifecycle writer,
//! which acknowledges them on that same queue once they are stored.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use vantage_proto::link::{AgentMessage, PROTOCOL_VERSION, ServerMessage, Welcome};

use crate::app::App;
use crate::metrics::LinkError;
use crate::store::AgentRow;

/// Messages queued for one agent before the session counts as stuck.
const QUEUE: usize = 8192;

fn text(m: &ServerMessage) -> Message {
    Message::Text(m.encode().into())
}

/// Runs the session of `agent` on an upgraded WebSocket.
pub(crate) async fn run(app: Arc<App>, socket: WebSocket, agent: AgentRow, remote: SocketAddr) {
    let id = agent.id;
    let (mut sink, mut stream) = socket.split();
    let hb_timeout = Duration::from_secs_f64(app.config.heartbeat_timeout);
    let hb_interval = Duration::from_secs_f64(app.config.heartbeat_interval);

    // 1. The hello.
    let hello = match tokio::time::timeout(hb_timeout, stream.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => match AgentMessage::decode(&t) {
            Ok(Some(AgentMessage::Hello(h))) => h,
            other => {
                app.metrics.link_error(LinkError::protocol);
                tracing::warn!(agent = %id, "link opened without a hello: {other:?}");
                let _ = sink
                    .send(text(&ServerMessage::Refused {
                        reason: "the first message on the link must be a hello".into(),
                    }))
                    .await;
                return;
            }
        },
        _ => {
            app.metrics.link_error(LinkError::protocol);
            tracing::info!(agent = %id, "link closed before a hello arrived");
            return;
        }
    };
    if hello.protocol != PROTOCOL_VERSION {
        app.metrics.link_error(LinkError::protocol);
        let reason = format!(
            "this server speaks link protocol {PROTOCOL_VERSION} and the agent speaks {}; run the same Vantage version on both",
            hello.protocol
        );
        tracing::warn!(agent = %id, "{reason}");
        let _ = sink.send(text(&ServerMessage::Refused { reason })).await;
        let _ = sink.close().await;
        return;
    }
    let now = Utc::now();
    if let Err(e) = app
        .store
        .record_connect(
            id,
            &hello.agent_version,
            &hello.capabilities,
            &remote.ip().to_string(),
            now,
        )
        .await
    {
        tracing::error!(agent = %id, "cannot record the connection: {e}");
        return;
    }

    // 2. Welcome, then register so jobs can flow.
    let welcome = ServerMessage::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        agent_id: id,
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        heartbeat_interval_ms: hb_interval.as_millis() as u64,
        heartbeat_timeout_ms: hb_timeout.as_millis() as u64,
        max_unacked: app.config.max_unacked,
    });
    if sink.send(text(&welcome)).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<ServerMessage>(QUEUE);
    let close = app.shutdown.child_token();
    let conn = app
        .hub
        .register(agent.facts(), tx.clone(), close.clone(), &app.metrics);
    tracing::info!(agent = %id, name = %agent.name, from = %remote, version = %hello.agent_version, "agent connected");

    // 3. Jobs it should be running but does not hold (queued while it was away, or lost in a
    // restart on either side).
    let held: HashSet<_> = hello.held_jobs.iter().copied().collect();
    let pending = app.coord.pending_for(id, &held, app.config.result_grace);
    let mut sent = Vec::with_capacity(pending.len());
    for job in pending {
        let job_id = job.job_id;
        if app.hub.send(id, ServerMessage::Job(job)) {
            sent.push(job_id);
        }
    }
    app.coord.dispatched(sent).await;

    // 4. The sender: queued messages and our heartbeats.
    let writer_close = close.clone();
    let writer_app = app.clone();
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(hb_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0u64;
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = tick.tick() => { seq += 1; ServerMessage::Heartbeat { seq } }
                _ = writer_close.cancelled() => {
                    let _ = sink.send(Message::Close(Some(CloseFrame {
                        code: axum::extract::ws::close_code::AWAY,
                        reason: "session closed by the server".into(),
                    }))).await;
                    break;
                }
            };
            if sink.send(text(&msg)).await.is_err() {
                writer_app.metrics.link_error(LinkError::io);
                writer_close.cancel();
                break;
            }
        }
    });

    // 5. The reader.
    loop {
        let next = tokio::select! {
            _ = close.cancelled() => break,
            n = tokio::time::timeout(hb_timeout, stream.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                app.metrics.link_error(LinkError::heartbeat_timeout);
                tracing::info!(agent = %id, "no heartbeat for {} s; closing the link", hb_timeout.as_secs_f64());
                break;
            }
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Err(e))) => {
                app.metrics.link_error(LinkError::io);
                tracing::info!(agent = %id, "link read failed: {e}");
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        app.hub.touch(id);
        let Message::Text(t) = msg else { continue };
        match AgentMessage::decode(&t) {
            Ok(Some(AgentMessage::JobResult { job_id, result })) => {
                app.coord.result(id, job_id, result, tx.clone()).await;
            }
            Ok(Some(AgentMessage::Heartbeat { .. })) | Ok(None) => {}
            Ok(Some(AgentMessage::Hello(_))) => {
                app.metrics.link_error(LinkError::protocol);
                tracing::warn!(agent = %id, "second hello on one link; closing it");
                break;
            }
            Err(e) => {
                app.metrics.link_error(LinkError::protocol);
                tracing::warn!(agent = %id, "closing the link: {e}");
                break;
            }
        }
    }
    close.cancel();
    let _ = writer.await;
    app.hub.unregister(id, conn, &app.metrics);
    if let Some(at) = app.hub.link(id).last_seen
        && let Err(e) = app.store.record_seen(&[(id, at)]).await
    {
        tracing::warn!(agent = %id, "cannot record last-seen time: {e}");
    }
    tracing::info!(agent = %id, name = %agent.name, "agent disconnected");
}
