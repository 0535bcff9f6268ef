//! The built-in certificate authority: no EasyRSA, no copying keys around.
//!
//! On first start the server creates a CA (ECDSA P-256, ten years) in `<data_dir>/pki`, key files
//! readable by the owner only. At every start it issues itself a fresh server certificate (one
//! year) for the names in the configuration, so a changed name never needs manual steps; agents
//! pin the CA, not the server certificate. Agents send a CSR at enrolment; the server keeps
//! only the public key from it and overwrites everything else: subject, the agent's identity as
//! a `urn:vantage:agent:<uuid>` URI name, client-auth usage only, explicit validity (rcgen's
//! default would be the year 4096).

use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Error;

/// Prefix of the URI subject alternative name that carries an agent's id.
pub const AGENT_URI_PREFIX: &str = "urn:vantage:agent:";
/// Lifetime of agent certificates.
pub const AGENT_CERT_DAYS: i64 = 365;
const CA_DAYS: i64 = 3650;
const SERVER_CERT_DAYS: i64 = 365;

/// A certificate issued to an agent.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// PEM text.
    pub pem: String,
    /// Serial number, hex.
    pub serial: String,
    /// Expiry.
    pub not_after: DateTime<Utc>,
}

/// The CA and the server's own certificate.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    fingerprint: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key_der: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a DER certificate, lowercase hex (the CA fingerprint enrolment tokens carry).
pub fn fingerprint(der: &[u8]) -> String {
    hex(&Sha256::digest(der))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn pki_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Pki(format!("{what}: {e}"))
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // A little backdating tolerates clocks a few minutes apart.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // keep it positive
    SerialNumber::from_slice(&bytes)
}

/// Writes a file readable by the owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("write", path, e))
}

impl Pki {
    /// Loads the CA from `dir` (creating it on first start) and issues a server certificate
    /// for `names` (DNS names or IP addresses).
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Pki, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let key_path = dir.join("ca.key");
        let cert_path = dir.join("ca.crt");
        let (ca_key, ca_pem) = if key_path.exists() && cert_path.exists() {
            let key_pem =
                std::fs::read_to_string(&key_path).map_err(|e| Error::io("read", &key_path, e))?;
            let ca_pem = std::fs::read_to_string(&cert_path)
                .map_err(|e| Error::io("read", &cert_path, e))?;
            (
                KeyPair::from_pem(&key_pem).map_err(pki_err("the CA key is unreadable"))?,
                ca_pem,
            )
        } else {
            let key = KeyPair::generate().map_err(pki_err("cannot generate the CA key"))?;
            let mut params = CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, "Vantage agent CA");
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Vantage");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.serial_number = Some(random_serial());
            validity(&mut params, CA_DAYS);
            let cert = params
                .self_signed(&key)
                .map_err(pki_err("cannot create the CA certificate"))?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem())
                .map_err(|e| Error::io("write", &cert_path, e))?;
            (key, cert.pem())
        };
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| Error::Pki(format!("the CA certificate is unreadable: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key)
            .map_err(pki_err("the CA certificate is unusable"))?;
        let fingerprint = fingerprint(&ca_der);

        // A fresh server certificate at every start.
        let server_key = KeyPair::generate().map_err(pki_err("cannot generate the server key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Vantage server");
        let mut sans = Vec::new();
        for n in names {
            if let Ok(ip) = n.parse::<IpAddr>() {
                sans.push(SanType::IpAddress(ip));
            } else {
                let name = n
                    .clone()
                    .try_into()
                    .map_err(|e| Error::Pki(format!("'{n}' is not a valid server name: {e}")))?;
                sans.push(SanType::DnsName(name));
            }
        }
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, SERVER_CERT_DAYS);
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .map_err(pki_err("cannot issue the server certificate"))?;
        write_private(
            &dir.join("server.key"),
            server_key.serialize_pem().as_bytes(),
        )?;
        let server_crt = dir.join("server.crt");
        std::fs::write(&server_crt, server_cert.pem())
            .map_err(|e| Error::io("write", &server_crt, e))?;

        Ok(Pki {
            server_chain: vec![server_cert.der().clone(), ca_der.clone()],
            server_key_der: server_key.serialize_der(),
            issuer,
            ca_der,
            ca_pem,
            fingerprint,
        })
    }

    /// SHA-256 of the CA certificate, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The server certificate followed by the CA (agents pin the CA from this chain at
    /// enrolment).
    pub fn server_chain(&self) -> Vec<CertificateDer<'static>> {
        self.server_chain.clone()
    }

    /// The server's private key.
    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.server_key_der.clone().into())
    }

    /// Signs an agent's CSR: only its public key is used.
    pub fn sign_agent(
        &self,
        csr_pem: &str,
        agent_id: Uuid,
        name: &str,
    ) -> Result<IssuedCert, Error> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::Pki(format!("the certificate signing request is invalid: {e}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let uri = format!("{AGENT_URI_PREFIX}{agent_id}")
            .try_into()
            .map_err(|e| Error::Pki(format!("cannot encode the agent id: {e}")))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let serial = random_serial();
        let serial_hex = hex(&serial.to_bytes());
        params.serial_number = Some(serial);
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, AGENT_CERT_DAYS);
        let not_after =
            DateTime::from_timestamp(params.not_after.unix_timestamp(), 0).unwrap_or_default();
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(pki_err("cannot sign the agent certificate"))?;
        Ok(IssuedCert {
            pem: cert.pem(),
            serial: serial_hex,
            not_after,
        })
    }
}

/// The agent id in a client certificate (its `urn:vantage:agent:` URI name).
pub fn agent_id_of(cert: &[u8]) -> Option<Uuid> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert).ok()?;
    let san = x509.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => u
            .strip_prefix(AGENT_URI_PREFIX)
            .and_then(|id| Uuid::parse_str(id).ok()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(name: &str) -> (KeyPair, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        // Whatever the agent asks for is overwritten.
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let req = params.serialize_request(&key).unwrap();
        (key, req.pem().unwrap())
    }

    #[test]
    fn the_ca_is_created_once_with_private_keys_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::load_or_create(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let b = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
        use std::os::unix::fs::PermissionsExt;
        for f in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // The CA is valid for ten years, not until 4096.
        let (_, ca) = x509_parser::parse_x509_certificate(a.ca_der()).unwrap();
        let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
            / (365 * 86400);
        assert_eq!(years, 10);
        assert!(ca.is_ca());
    }

    #[test]
    fn agent_certificates_carry_the_id_and_only_client_auth() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        let (_key, csr) = csr("asks-for-anything");
        let id = Uuid::now_v7();
        let issued = pki.sign_agent(&csr, id, "lab-1").unwrap();
        let der = CertificateDer::from_pem_slice(issued.pem.as_bytes()).unwrap();
        assert_eq!(agent_id_of(&der), Some(id));
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(!x.is_ca(), "a CA flag in the CSR must be ignored");
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let days =
            (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86400;
        assert!((365..=366).contains(&days), "{days}");
        assert!(x.subject().to_string().contains("lab-1"));
        assert_eq!(hex(x.raw_serial()), issued.serial);
    }

    #[test]
    fn garbage_csrs_are_refused_with_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        let e = pki.sign_agent("not a csr", Uuid::nil(), "x").unwrap_err();
        assert!(e.to_string().contains("signing request is invalid"), "{e}");
    }
}
