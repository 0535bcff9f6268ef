//! One-time enrolment: generate a key here, send a CSR with the token, store what comes back.
//!
//! The TLS connection trusts only the CA whose fingerprint the token carries, so a token copied
//! over an untrusted channel cannot be used to point the agent at another server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use vantage_proto::link::{ENROLL_PATH, EnrollRequest, EnrollResponse, EnrollToken};

use crate::Error;
use crate::connect::ServerUrl;
use crate::identity::{Identity, State, new_key_and_csr};
use crate::tls::{PinnedCa, fingerprint, provider};

/// What `vantage agent enroll` was asked to do.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// The server's agent URL.
    pub server: String,
    /// The enrolment token.
    pub token: String,
    /// Where to store the identity.
    pub data_dir: PathBuf,
    /// Agent name (the host name when absent).
    pub name: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// ISO 3166 country code.
    pub country: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// AS number.
    pub asn: Option<u32>,
}

/// The host name, for an agent enrolled without `--name`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".to_string())
}

/// Enrols with the server and stores the identity; returns the stored state.
pub async fn enroll(o: &EnrollOptions) -> Result<State, Error> {
    if Identity::exists(&o.data_dir) {
        let s = Identity::read_state(&o.data_dir)?;
        return Err(Error::AlreadyEnrolled {
            dir: o.data_dir.clone(),
            name: s.name,
            id: s.agent_id,
        });
    }
    let token: EnrollToken = o.token.parse().map_err(Error::Config)?;
    let url = ServerUrl::parse(&o.server)?;
    let name = o.name.clone().unwrap_or_else(host_name);
    let (key_pem, csr_pem) = new_key_and_csr(&name)?;
    let req = EnrollRequest {
        token: o.token.trim().to_string(),
        csr: csr_pem,
        name: name.clone(),
        labels: o.labels.clone(),
        country: o.country.clone(),
        city: o.city.clone(),
        region: o.region.clone(),
        asn: o.asn,
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(format!("TLS 1.3 is unavailable: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa::new(&token.ca_fingerprint)))
        .with_no_client_auth();
    let tls = url.connect(Arc::new(cfg)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| Error::Connect(format!("HTTP with {url} failed: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = serde_json::to_vec(&req).map_err(|e| Error::Config(e.to_string()))?;
    let request = hyper::Request::post(ENROLL_PATH)
        .header(hyper::header::HOST, url.authority())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Error::Config(e.to_string()))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| Error::Connect(format!("the enrolment request to {url} failed: {e}")))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Connect(format!("reading the enrolment answer failed: {e}")))?
        .to_bytes();
    if !status.is_success() {
        let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(Error::EnrollRefused(msg));
    }
    let answer: EnrollResponse = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Connect(format!("the enrolment answer is malformed: {e}")))?;
    let ca = CertificateDer::from_pem_slice(answer.ca.as_bytes()).map_err(|e| {
        Error::Tls(format!(
            "the CA certificate in the answer is malformed: {e}"
        ))
    })?;
    if fingerprint(&ca) != token.ca_fingerprint {
        return Err(Error::Tls(
            "the CA certificate in the answer is not the one the token names".into(),
        ));
    }
    let state = State {
        agent_id: answer.agent_id,
        name: answer.name,
        server: url.to_string(),
        ca_fingerprint: token.ca_fingerprint,
        enrolled_at: Utc::now(),
    };
    Identity::save(
        &o.data_dir,
        &state,
        &key_pem,
        &answer.certificate,
        &answer.ca,
    )?;
    // Loading proves the stored key and certificate work together.
    Identity::load(&o.data_dir)?.client_config()?;
    Ok(state)
}
