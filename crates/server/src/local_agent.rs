//! The built-in local agent: the same agent code as any other, run in the server process and
//! connected over loopback through the real agent port, so a fresh install answers measurements
//! at once and exercises the very path remote agents use.
//!
//! It is enrolled directly (the server signs its CSR without a token) on first start, and again
//! whenever its identity no longer matches the server's CA or database.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;
use vantage_agent::identity::{State, new_key_and_csr};
use vantage_agent::{AgentConfig, Identity};

use crate::Error;
use crate::app::App;
use crate::store::AgentRow;

fn local_err(e: impl std::fmt::Display) -> Error {
    Error::LocalAgent(e.to_string())
}

/// Whether the identity in `dir` belongs to this server.
async fn usable(app: &App, dir: &std::path::Path) -> bool {
    let Ok(state) = Identity::read_state(dir) else {
        return false;
    };
    if state.ca_fingerprint != app.pki.fingerprint() {
        return false;
    }
    matches!(app.store.agent(state.agent_id).await, Ok(Some(a)) if a.revoked_at.is_none())
}

/// Enrols the local agent if needed and starts it; it stops with the server.
pub(crate) async fn start(
    app: &Arc<App>,
    agent_addr: SocketAddr,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let dir = app.config.data_dir.join("local-agent");
    let dial = match agent_addr.ip() {
        IpAddr::V4(a) if a.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), agent_addr.port())
        }
        IpAddr::V6(a) if a.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), agent_addr.port())
        }
        _ => agent_addr,
    };
    let url = format!("https://{dial}");
    if !usable(app, &dir).await {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
        }
        let name = vantage_agent::host_name();
        let (key, csr) = new_key_and_csr(&name).map_err(local_err)?;
        let id = Uuid::now_v7();
        let issued = app.pki.sign_agent(&csr, id, &name)?;
        let now = Utc::now();
        app.store
            .insert_agent(&AgentRow {
                id,
                name: name.clone(),
                labels: BTreeMap::from([("builtin".to_string(), "true".to_string())]),
                country: None,
                city: None,
                region: None,
                asn: None,
                version: None,
                capabilities: None,
                seen_address: None,
                enrolled_at: now,
                connected_since: None,
                last_seen: None,
                revoked_at: None,
                cert_serial: issued.serial,
                cert_not_after: issued.not_after,
                builtin: true,
            })
            .await?;
        let state = State {
            agent_id: id,
            name,
            server: url.clone(),
            ca_fingerprint: app.pki.fingerprint().to_string(),
            enrolled_at: now,
        };
        Identity::save(&dir, &state, &key, &issued.pem, app.pki.ca_pem()).map_err(local_err)?;
        tracing::info!(agent = %id, "built-in local agent enrolled");
    }
    let mut cfg = AgentConfig::new(&dir);
    cfg.server = Some(url);
    // The server's own host is the operator's: private targets are its business.
    cfg.allow_private = true;
    cfg.min_backoff = Duration::from_millis(100);
    cfg.max_backoff = Duration::from_secs(5);
    let stop = app.shutdown.clone();
    Ok(tokio::spawn(async move {
        if let Err(e) = vantage_agent::run(cfg, stop.cancelled_owned()).await {
            tracing::error!("the built-in local agent stopped: {e}");
        }
    }))
}
