//! TLS for HTTP measurements: a client configuration per request whose certificate verifier
//! records what it saw, so the result can show the chain and *why* verification failed — also
//! when `insecure` lets the handshake go on.
//!
//! Main decisions:
//! - One crypto provider, aws-lc-rs, passed explicitly (no process-wide default to install).
//! - Trust roots are the system's (what curl uses, honouring `SSL_CERT_FILE`), loaded once per
//!   process; Mozilla's bundle (webpki-roots) only when the system has none, so a minimal
//!   container still verifies public sites. A spec's `ca_cert` adds anchors on top.
//! - The verifier wraps rustls' WebPKI verifier: it stores the presented chain and the
//!   verification error, and in insecure mode returns success anyway. Handshake signatures are
//!   always checked (the server must hold the key of the certificate it shows).

use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use vantage_proto::HttpTlsCertificate;

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Initialises the crypto library once per process (CPU feature detection, seeding the random
/// generator, the key-exchange code paths), so the first handshake of a process is not charged
/// for it — curl likewise initialises OpenSSL before its clock starts.
pub(super) fn warm_up() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let p = provider();
        let mut buf = [0u8; 32];
        let _ = p.secure_random.fill(&mut buf);
        for group in &p.kx_groups {
            let _ = group.start();
        }
    });
}

/// The system's trust roots (or Mozilla's when the system has none), loaded once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(native.certs);
            if store.is_empty() {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(store)
        })
        .clone()
}

/// The roots for one request: the system's plus the spec's extra anchors.
pub(super) fn roots(extra_pem: Option<&str>) -> Result<Arc<RootCertStore>, String> {
    let base = system_roots();
    let Some(pem) = extra_pem else {
        return Ok(base);
    };
    let mut store = (*base).clone();
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the CA certificates given cannot be read: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("a CA certificate given is not usable as a trust anchor: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err("the CA certificates given contain no certificate".into());
    }
    Ok(Arc::new(store))
}

/// What the verifier saw during one handshake.
#[derive(Debug, Default, Clone)]
pub(super) struct Seen {
    /// Certificates as presented, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The verification error, when the chain did not verify.
    pub error: Option<rustls::Error>,
    /// Whether verification ran at all.
    pub checked: bool,
}

/// A WebPKI verifier that remembers the chain and the verdict.
#[derive(Debug)]
pub(super) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
    seen: Mutex<Seen>,
}

impl RecordingVerifier {
    /// What was seen (an empty record when no certificate came).
    pub fn seen(&self) -> Seen {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            seen.error = verdict.as_ref().err().cloned();
            seen.checked = true;
        }
        if self.insecure {
            Ok(ServerCertVerified::assertion())
        } else {
            verdict
        }
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

/// A client configuration for one request and its recording verifier.
pub(super) fn client_config(
    roots: Arc<RootCertStore>,
    insecure: bool,
    http2: bool,
) -> Result<(Arc<ClientConfig>, Arc<RecordingVerifier>), String> {
    let provider = provider();
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let verifier = Arc::new(RecordingVerifier {
        inner,
        insecure,
        seen: Mutex::new(Seen::default()),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((Arc::new(config), verifier))
}

/// One certificate in the result's terms; `None` when it cannot be parsed.
pub(super) fn describe_cert(
    der: &CertificateDer<'_>,
    now: DateTime<Utc>,
) -> Option<HttpTlsCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let time = |ts: i64| DateTime::<Utc>::from_timestamp(ts, 0);
    let not_before = time(cert.validity().not_before.timestamp())?;
    let not_after = time(cert.validity().not_after.timestamp())?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => ip_from_bytes(b),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>();
    Some(HttpTlsCertificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: not_before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        not_after: not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        days_left: (not_after - now).num_seconds().div_euclid(86_400),
        serial,
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b)
            .ok()
            .map(|a| std::net::Ipv4Addr::from(a).to_string()),
        16 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| std::net::Ipv6Addr::from(a).to_string()),
        _ => None,
    }
}

/// Why verification failed, as a sentence fragment ("the certificate expired …").
pub(super) fn verify_reason(
    e: &rustls::Error,
    host: &str,
    leaf: Option<&HttpTlsCertificate>,
) -> String {
    let names = || {
        leaf.map(|l| l.sans.join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "no names".into())
    };
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => match leaf {
                Some(l) => format!(
                    "the certificate expired on {} ({} days ago)",
                    l.not_after, -l.days_left
                ),
                None => "the certificate has expired".into(),
            },
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                match leaf {
                    Some(l) => format!("the certificate is not valid before {}", l.not_before),
                    None => "the certificate is not valid yet".into(),
                }
            }
            // The names come from our parse of the leaf: rustls' context carries them in its
            // own debug notation.
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "name mismatch: the certificate is not valid for {host} (it names {})",
                    names()
                )
            }
            CertificateError::UnknownIssuer => match leaf {
                Some(l) if l.subject == l.issuer => format!(
                    "unknown issuer: the certificate is self-signed ({}) and not trusted",
                    l.subject
                ),
                Some(l) => format!(
                    "unknown issuer: the chain does not lead to a trusted root (issuer {})",
                    l.issuer
                ),
                None => "unknown issuer: the chain does not lead to a trusted root".into(),
            },
            CertificateError::BadSignature => "a certificate signature is invalid".into(),
            CertificateError::Revoked => "the certificate has been revoked".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the certificate is not meant for TLS servers (extended key usage)".into()
            }
            CertificateError::BadEncoding => "the certificate is malformed".into(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_anchors_must_be_certificates() {
        assert!(
            roots(Some(
                "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
            ))
            .is_err()
        );
        let e = roots(Some("no pem here")).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
    }

    #[test]
    fn ip_sans_are_written_as_addresses() {
        assert_eq!(ip_from_bytes(&[127, 0, 0, 1]).as_deref(), Some("127.0.0.1"));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_from_bytes(&v6).as_deref(), Some("::1"));
        assert_eq!(ip_from_bytes(&[1, 2, 3]), None);
    }
}
