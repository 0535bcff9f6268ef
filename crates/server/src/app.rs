//! The state every part of the server shares, and the events that flow from result storage to
//! live streams.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Error;
use crate::api::lookup::LookupService;
use crate::api::types::{EntryCounts, EntryView};
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::lifecycle::Coordinator;
use crate::metrics::Metrics;
use crate::model::{MeasurementStatus, Role};
use crate::pki::{Pki, hex};
use crate::store::{ApiTokenRow, Store};

/// Something live streams want to know.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job reached a final status (or a late result replaced `agent_lost`).
    Entry {
        /// The measurement.
        measurement_id: Uuid,
        /// The entry as the API shows it.
        entry: Box<EntryView>,
    },
    /// Every job of a measurement is final.
    Finished {
        /// The measurement.
        measurement_id: Uuid,
        /// Final counts.
        counts: EntryCounts,
    },
}

impl Event {
    /// The measurement the event belongs to.
    pub fn measurement_id(&self) -> Uuid {
        match self {
            Event::Entry { measurement_id, .. } | Event::Finished { measurement_id, .. } => {
                *measurement_id
            }
        }
    }
}

/// A token the server accepts, without its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInfo {
    /// Token id.
    pub id: Uuid,
    /// What it may do.
    pub role: Role,
}

/// SHA-256 of a secret, hex: API and enrolment token secrets are stored only as this. The
/// secrets are 256-bit random values, so a fast hash is as good as a slow one here.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A new random secret: 32 bytes, URL-safe base64 without padding.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Prefix of API tokens, so a leaked one is recognisable in logs and scanners.
pub const API_TOKEN_PREFIX: &str = "vt_";

/// Shared server state.
#[derive(Debug)]
pub struct App {
    /// The configuration it started with.
    pub config: ServerConfig,
    /// Storage.
    pub store: Store,
    /// The CA.
    pub pki: Pki,
    /// Connected agents.
    pub hub: Hub,
    /// Measurement lifecycle.
    pub coord: Coordinator,
    /// Own metrics.
    pub metrics: Metrics,
    /// Live events for streams.
    pub events: broadcast::Sender<Arc<Event>>,
    /// Accepted API tokens by hash.
    tokens: RwLock<HashMap<String, TokenInfo>>,
    /// Revoked agent ids, checked in every TLS handshake.
    pub revoked: Arc<RwLock<HashSet<Uuid>>>,
    /// The URL agents dial.
    pub agent_url: String,
    /// Cancelled when the server stops.
    pub shutdown: CancellationToken,
    /// Lookups over the data directory (the lookup API).
    pub lookup: LookupService,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: ServerConfig,
        store: Store,
        pki: Pki,
        coord: Coordinator,
        tokens: Vec<ApiTokenRow>,
        revoked: HashSet<Uuid>,
        agent_url: String,
        shutdown: CancellationToken,
        lookup: LookupService,
    ) -> App {
        let (events, _) = broadcast::channel(8192);
        let tokens = tokens
            .into_iter()
            .filter(|t| t.revoked_at.is_none())
            .map(|t| {
                (
                    t.token_hash,
                    TokenInfo {
                        id: t.id,
                        role: t.role,
                    },
                )
            })
            .collect();
        App {
            config,
            store,
            pki,
            hub: Hub::default(),
            coord,
            metrics: Metrics::new(),
            events,
            tokens: RwLock::new(tokens),
            revoked: Arc::new(RwLock::new(revoked)),
            agent_url,
            shutdown,
            lookup,
        }
    }

    /// The token a bearer secret stands for, if any.
    pub fn authenticate(&self, secret: &str) -> Option<TokenInfo> {
        let h = hash_secret(secret);
        self.tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
            .copied()
    }

    /// Creates and stores an API token, returning its secret (shown once).
    pub async fn create_api_token(&self, name: &str, role: Role) -> Result<String, Error> {
        let secret = format!("{API_TOKEN_PREFIX}{}", new_secret());
        self.add_api_token(name, role, &secret).await?;
        Ok(secret)
    }

    /// Stores an API token with a given secret (from `VANTAGE_ADMIN_TOKEN`) unless it exists.
    pub async fn add_api_token(&self, name: &str, role: Role, secret: &str) -> Result<(), Error> {
        let hash = hash_secret(secret);
        if self.authenticate(secret).is_some() {
            return Ok(());
        }
        let row = ApiTokenRow {
            id: Uuid::now_v7(),
            name: name.to_string(),
            role,
            token_hash: hash.clone(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        self.store.insert_api_token(&row).await?;
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, TokenInfo { id: row.id, role });
        Ok(())
    }

    /// Whether any API token exists.
    pub fn has_tokens(&self) -> bool {
        !self
            .tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Whether an agent is revoked.
    pub fn is_revoked(&self, id: Uuid) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    /// Publishes an event to live streams (nobody listening is fine).
    pub fn publish(&self, e: Event) {
        let _ = self.events.send(Arc::new(e));
    }

    /// Sets the measurement gauges from storage.
    pub async fn refresh_measurement_gauges(&self) -> Result<(), Error> {
        let counts = self.store.measurement_counts().await?;
        for s in MeasurementStatus::ALL {
            self.metrics
                .set_measurements(*s, counts.get(s).copied().unwrap_or(0) as i64);
        }
        Ok(())
    }
}
