//! The agent hub: who is connected right now, and the way to reach each one.
//!
//! One session per agent: a new link of an agent closes its older one (the agent reconnected
//! before the server noticed the old link died). The hub also remembers when each agent's link
//! went down, so that an `agent_lost` sentence can say when.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vantage_proto::AgentFacts;
use vantage_proto::link::ServerMessage;

use crate::metrics::{LinkError, Metrics};

/// How one agent can be reached.
#[derive(Debug)]
struct Session {
    conn: u64,
    tx: mpsc::Sender<ServerMessage>,
    close: CancellationToken,
    facts: AgentFacts,
}

/// What the hub knows about an agent's link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Start of the current session (None when not connected).
    pub connected_since: Option<DateTime<Utc>>,
    /// When the last session ended (None while connected or never seen since start).
    pub disconnected_at: Option<DateTime<Utc>>,
    /// Last time anything arrived.
    pub last_seen: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<Uuid, Session>,
    links: HashMap<Uuid, LinkInfo>,
    next_conn: u64,
}

/// Connected agents.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere; the map itself is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new session and returns its connection number; an older session of the same
    /// agent is closed.
    pub fn register(
        &self,
        facts: AgentFacts,
        tx: mpsc::Sender<ServerMessage>,
        close: CancellationToken,
        metrics: &Metrics,
    ) -> u64 {
        let now = Utc::now();
        let mut g = self.lock();
        g.next_conn += 1;
        let conn = g.next_conn;
        let id = facts.id;
        let old = g.sessions.insert(
            id,
            Session {
                conn,
                tx,
                close,
                facts,
            },
        );
        match old {
            Some(old) => {
                old.close.cancel();
                metrics.link_error(LinkError::replaced);
            }
            None => metrics.agent_connected(true),
        }
        g.links.insert(
            id,
            LinkInfo {
                connected_since: Some(now),
                disconnected_at: None,
                last_seen: Some(now),
            },
        );
        conn
    }

    /// Removes a session if it is still the current one of its agent.
    pub fn unregister(&self, id: Uuid, conn: u64, metrics: &Metrics) {
        let mut g = self.lock();
        if g.sessions.get(&id).is_some_and(|s| s.conn == conn) {
            g.sessions.remove(&id);
            metrics.agent_connected(false);
            let link = g.links.entry(id).or_default();
            link.connected_since = None;
            link.disconnected_at = Some(Utc::now());
        }
    }

    /// Queues a message for an agent; false when it is not connected or its queue is full (a
    /// full queue means the agent stopped reading, so its session is closed).
    pub fn send(&self, id: Uuid, msg: ServerMessage) -> bool {
        let g = self.lock();
        let Some(s) = g.sessions.get(&id) else {
            return false;
        };
        match s.tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(agent = %id, "agent is not reading its link; closing the session");
                s.close.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Facts of every connected agent, for selection.
    pub fn online(&self) -> Vec<AgentFacts> {
        self.lock()
            .sessions
            .values()
            .map(|s| s.facts.clone())
            .collect()
    }

    /// Whether an agent is connected.
    pub fn is_online(&self, id: Uuid) -> bool {
        self.lock().sessions.contains_key(&id)
    }

    /// Number of connected agents.
    pub fn online_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// What is known about an agent's link.
    pub fn link(&self, id: Uuid) -> LinkInfo {
        self.lock().links.get(&id).copied().unwrap_or_default()
    }

    /// Notes that something arrived from an agent.
    pub fn touch(&self, id: Uuid) {
        if let Some(l) = self.lock().links.get_mut(&id) {
            l.last_seen = Some(Utc::now());
        }
    }

    /// Last-seen times of connected agents (flushed to storage periodically).
    pub fn last_seen(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        let g = self.lock();
        g.sessions
            .keys()
            .filter_map(|id| g.links.get(id).and_then(|l| l.last_seen).map(|t| (*id, t)))
            .collect()
    }

    /// Replaces the facts of a connected agent after its description changed.
    pub fn update_facts(&self, facts: AgentFacts) {
        if let Some(s) = self.lock().sessions.get_mut(&facts.id) {
            s.facts = facts;
        }
    }

    /// Closes an agent's session (revocation).
    pub fn disconnect(&self, id: Uuid) {
        if let Some(s) = self.lock().sessions.get(&id) {
            s.close.cancel();
        }
    }

    /// Closes every session (shutdown).
    pub fn close_all(&self) {
        for s in self.lock().sessions.values() {
            s.close.cancel();
        }
    }
}
