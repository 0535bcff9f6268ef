//! The agent port: TLS 1.3 with client certificates, serving enrolment and the link WebSocket.
//!
//! The main decisions:
//! - One port for both: enrolment arrives without a client certificate (the agent has none
//!   yet), so certificates are requested but optional at the TLS level; the link route refuses a
//!   request without one. Any certificate that *is* presented must chain to our CA and be for
//!   client authentication, or the handshake fails.
//! - Revocation is checked inside the handshake, on every handshake: the certificate verifier
//!   looks the agent id up in the server's revoked set, so a revoked agent never gets past TLS
//!   (and revoking also closes its live session, see the hub).
//! - Our own accept loop (tokio-rustls + hyper) instead of `axum::serve`, because handlers
//!   need the verified peer certificate and the address it came from; accepted sockets get
//!   `TCP_NODELAY` (small TLS records otherwise wait on delayed ACKs).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use uuid::Uuid;
use vantage_proto::link::{ENROLL_PATH, EnrollRequest, EnrollResponse, EnrollToken, LINK_PATH};

use crate::Error;
use crate::api::{ApiError, validate};
use crate::app::{App, hash_secret};
use crate::metrics::LinkError;
use crate::pki::agent_id_of;
use crate::store::{AgentRow, TokenUse};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of an agent-port connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The agent id from a verified client certificate, if one was presented.
    pub agent_id: Option<Uuid>,
    /// The address it connected from.
    pub remote: SocketAddr,
}

/// Verifies client certificates against the CA, then refuses revoked agents and certificates
/// that name no agent.
#[derive(Debug)]
struct RevocationCheck {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<RwLock<HashSet<Uuid>>>,
}

impl ClientCertVerifier for RevocationCheck {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let Some(id) = agent_id_of(end_entity) else {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        };
        if self
            .revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
        {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS configuration of the agent port: TLS 1.3 only, our server certificate with the CA
/// behind it, optional client certificates checked as above.
pub(crate) fn tls_config(app: &App) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(app.pki.ca_der().clone())
        .map_err(|e| Error::Pki(format!("the CA certificate is unusable for TLS: {e}")))?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Pki(format!("cannot build the client certificate verifier: {e}")))?;
    let verifier = Arc::new(RevocationCheck {
        inner,
        revoked: app.revoked.clone(),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Pki(format!("TLS 1.3 is unavailable: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(app.pki.server_chain(), app.pki.server_key())
        .map_err(|e| Error::Pki(format!("the server certificate is unusable: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(ENROLL_PATH, post(enroll))
        .route(LINK_PATH, get(link))
        .fallback(|| async {
            ApiError::not_found("this is the Vantage agent port; the API is on the other listener")
        })
        .with_state(app)
}

/// Accepts agent connections until the server stops.
pub(crate) async fn serve(app: Arc<App>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    let router = router(app.clone());
    loop {
        let (tcp, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and similar: wait a little rather than spin.
                    tracing::warn!("accepting an agent connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = app.shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    app.metrics.link_error(LinkError::tls_handshake);
                    tracing::info!(%remote, "agent TLS handshake refused: {e}");
                    return;
                }
                Err(_) => {
                    app.metrics.link_error(LinkError::tls_handshake);
                    tracing::info!(%remote, "agent TLS handshake timed out");
                    return;
                }
            };
            let agent_id = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| agent_id_of(c));
            let peer = Peer { agent_id, remote };
            let svc = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer);
                req
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc))
                .with_upgrades();
            tokio::select! {
                r = conn => if let Err(e) = r { tracing::debug!(%remote, "agent connection ended: {e}") },
                _ = app.shutdown.cancelled() => {}
            }
        });
    }
}

fn refused(app: &App, status: StatusCode, message: impl Into<String>) -> ApiError {
    app.metrics.link_error(LinkError::enrolment_refused);
    ApiError::new(status, "enrolment_refused", message)
}

/// `POST /agent/v1/enroll`: a one-time token and a CSR in, a certificate out.
async fn enroll(
    State(app): State<Arc<App>>,
    axum::Extension(peer): axum::Extension<Peer>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: EnrollRequest = crate::api::parse_json(&headers, &body).inspect_err(|_| {
        app.metrics.link_error(LinkError::enrolment_refused);
    })?;
    let token: EnrollToken = req
        .token
        .parse()
        .map_err(|m: String| refused(&app, StatusCode::BAD_REQUEST, m))?;
    if token.ca_fingerprint != app.pki.fingerprint() {
        return Err(refused(
            &app,
            StatusCode::FORBIDDEN,
            "this enrolment token was issued by another Vantage server (its CA fingerprint differs from this server's)",
        ));
    }
    validate::name(&req.name).map_err(|m| refused(&app, StatusCode::UNPROCESSABLE_ENTITY, m))?;
    validate::labels(&req.labels)
        .map_err(|m| refused(&app, StatusCode::UNPROCESSABLE_ENTITY, m))?;
    let country = req
        .country
        .as_deref()
        .map(validate::country)
        .transpose()
        .map_err(|m| refused(&app, StatusCode::UNPROCESSABLE_ENTITY, m))?;
    for (what, v) in [("the city", &req.city), ("the region", &req.region)] {
        if let Some(v) = v {
            validate::place(what, v)
                .map_err(|m| refused(&app, StatusCode::UNPROCESSABLE_ENTITY, m))?;
        }
    }
    let agent_id = Uuid::now_v7();
    let issued = app
        .pki
        .sign_agent(&req.csr, agent_id, &req.name)
        .map_err(|e| refused(&app, StatusCode::BAD_REQUEST, e.to_string()))?;
    let row = AgentRow {
        id: agent_id,
        name: req.name.clone(),
        labels: req.labels.clone(),
        country,
        city: req.city.clone(),
        region: req.region.clone(),
        asn: req.asn,
        version: None,
        capabilities: None,
        seen_address: Some(peer.remote.ip().to_string()),
        enrolled_at: Utc::now(),
        connected_since: None,
        last_seen: None,
        revoked_at: None,
        cert_serial: issued.serial.clone(),
        cert_not_after: issued.not_after,
        builtin: false,
    };
    match app
        .store
        .enroll_agent(&hash_secret(&token.secret), &row)
        .await?
    {
        TokenUse::Accepted => {}
        TokenUse::Unknown => {
            return Err(refused(
                &app,
                StatusCode::FORBIDDEN,
                "this enrolment token is not known to the server; create one with POST /api/v1/enrollment-tokens",
            ));
        }
        TokenUse::AlreadyUsed => {
            return Err(refused(
                &app,
                StatusCode::FORBIDDEN,
                "this enrolment token was already used; each token enrols one agent, so create a new one",
            ));
        }
        TokenUse::Expired => {
            return Err(refused(
                &app,
                StatusCode::FORBIDDEN,
                "this enrolment token has expired; create a new one",
            ));
        }
    }
    tracing::info!(agent = %agent_id, name = %req.name, from = %peer.remote, "agent enrolled");
    Ok(axum::Json(EnrollResponse {
        agent_id,
        name: req.name,
        certificate: issued.pem,
        ca: app.pki.ca_pem().to_string(),
    })
    .into_response())
}

/// `GET /agent/v1/link`: the WebSocket of an enrolled agent.
async fn link(
    State(app): State<Arc<App>>,
    axum::Extension(peer): axum::Extension<Peer>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Some(agent_id) = peer.agent_id else {
        app.metrics.link_error(LinkError::protocol);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "certificate_required",
            "the agent link needs a client certificate; enrol the agent first",
        ));
    };
    let Some(agent) = app.store.agent(agent_id).await? else {
        app.metrics.link_error(LinkError::protocol);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown_agent",
            "this certificate names an agent the server does not know",
        ));
    };
    if agent.revoked_at.is_some() || app.is_revoked(agent_id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "revoked",
            "this agent has been revoked",
        ));
    }
    Ok(ws
        .max_message_size(16 << 20)
        .on_upgrade(move |socket| crate::session::run(app, socket, agent, peer.remote)))
}
