//! The agent's identity on disk: its key (generated here, never sent anywhere), its certificate,
//! the server's CA, and a small state file naming the server and the agent id.
//!
//! Files in the data directory: `agent.key` (mode 0600), `agent.crt`, `ca.crt`, `agent.toml`.
//! The state file is written last, so a directory with a state file always holds a complete
//! identity.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;
use crate::tls::PrivateCa;

/// The private key file.
pub const KEY_FILE: &str = "agent.key";
/// The certificate file.
pub const CERT_FILE: &str = "agent.crt";
/// The server CA file.
pub const CA_FILE: &str = "ca.crt";
/// The state file.
pub const STATE_FILE: &str = "agent.toml";

/// What the agent remembers about its enrolment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The id the server gave this agent.
    pub agent_id: Uuid,
    /// Its name at enrolment.
    pub name: String,
    /// The server's agent URL (`https://host:port`).
    pub server: String,
    /// SHA-256 of the server's CA certificate.
    pub ca_fingerprint: String,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
}

/// A loaded identity.
pub struct Identity {
    /// The state file.
    pub state: State,
    key_der: Vec<u8>,
    cert: CertificateDer<'static>,
    ca: CertificateDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Generates a key pair (ECDSA P-256) and a CSR for it; returns (key PEM, CSR PEM).
pub fn new_key_and_csr(name: &str) -> Result<(String, String), Error> {
    let key = KeyPair::generate().map_err(|e| Error::Tls(format!("cannot generate a key: {e}")))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|e| Error::Tls(format!("cannot create the certificate request: {e}")))?;
    Ok((key.serialize_pem(), csr))
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("write", path, e))
}

fn read(path: PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))
}

impl Identity {
    /// Whether `dir` holds an identity.
    pub fn exists(dir: &Path) -> bool {
        dir.join(STATE_FILE).is_file()
    }

    /// Reads the state file only.
    pub fn read_state(dir: &Path) -> Result<State, Error> {
        let path = dir.join(STATE_FILE);
        if !path.is_file() {
            return Err(Error::NotEnrolled(dir.to_path_buf()));
        }
        toml::from_str(&read(path.clone())?).map_err(|e| Error::Corrupt {
            path,
            detail: e.to_string(),
        })
    }

    /// Stores an identity (directory mode 0700, key 0600), the state file last.
    pub fn save(
        dir: &Path,
        state: &State,
        key_pem: &str,
        cert_pem: &str,
        ca_pem: &str,
    ) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("restrict", dir, e))?;
        write_file(&dir.join(KEY_FILE), key_pem.as_bytes(), true)?;
        write_file(&dir.join(CERT_FILE), cert_pem.as_bytes(), false)?;
        write_file(&dir.join(CA_FILE), ca_pem.as_bytes(), false)?;
        let text = toml::to_string(state).map_err(|e| Error::Corrupt {
            path: dir.join(STATE_FILE),
            detail: e.to_string(),
        })?;
        write_file(&dir.join(STATE_FILE), text.as_bytes(), false)
    }

    /// Loads the identity in `dir`.
    pub fn load(dir: &Path) -> Result<Identity, Error> {
        let state = Self::read_state(dir)?;
        let corrupt = |file: &str, detail: String| Error::Corrupt {
            path: dir.join(file),
            detail,
        };
        let key_pem = read(dir.join(KEY_FILE))?;
        let key_der = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| corrupt(KEY_FILE, e.to_string()))?
        {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            _ => return Err(corrupt(KEY_FILE, "not a PKCS#8 key".into())),
        };
        let cert = CertificateDer::from_pem_slice(read(dir.join(CERT_FILE))?.as_bytes())
            .map_err(|e| corrupt(CERT_FILE, e.to_string()))?;
        let ca = CertificateDer::from_pem_slice(read(dir.join(CA_FILE))?.as_bytes())
            .map_err(|e| corrupt(CA_FILE, e.to_string()))?;
        if crate::tls::fingerprint(&ca) != state.ca_fingerprint {
            return Err(corrupt(
                CA_FILE,
                "its fingerprint differs from the one recorded at enrolment".into(),
            ));
        }
        Ok(Identity {
            state,
            key_der,
            cert,
            ca,
        })
    }

    /// The TLS client configuration of the link: TLS 1.3, this agent's certificate, trust in
    /// the server's CA only.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let verifier = Arc::new(PrivateCa::new(self.ca.clone())?);
        let key = PrivateKeyDer::Pkcs8(self.key_der.clone().into());
        let cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::Tls(format!("TLS 1.3 is unavailable: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.cert.clone()], key)
            .map_err(|e| Error::Tls(format!("the agent certificate is unusable: {e}")))?;
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_and_a_partial_directory_is_not_enrolled() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("agent");
        assert!(matches!(Identity::load(&d), Err(Error::NotEnrolled(_))));
        let (key, _csr) = new_key_and_csr("lab-1").unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
        let ca_pem = ca.cert.pem();
        let state = State {
            agent_id: Uuid::nil(),
            name: "lab-1".into(),
            server: "https://127.0.0.1:7781".into(),
            ca_fingerprint: crate::tls::fingerprint(ca.cert.der()),
            enrolled_at: Utc::now(),
        };
        Identity::save(&d, &state, &key, &ca_pem, &ca_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let id = Identity::load(&d).unwrap();
        assert_eq!(id.state, state);
        // A swapped CA file is detected.
        let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        std::fs::write(d.join(CA_FILE), other.cert.pem()).unwrap();
        let e = Identity::load(&d).unwrap_err();
        assert!(e.to_string().contains("fingerprint"), "{e}");
    }
}
