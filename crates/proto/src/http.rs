//! HTTP: spec and result detail.
//!
//! Each phase (DNS, TCP connect, TLS, time to first byte, download) is measured separately; the
//! request stops after the headers unless the body is asked for. `connect_to` separates the
//! address connected from the URL's host (which stays the Host header and TLS SNI), so one server
//! of a pool can be tested by address.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds};
use crate::{Family, SpecError};

/// Default overall timeout in seconds.
pub const DEFAULT_TIMEOUT: f64 = 10.0;
/// Default redirect limit when following.
pub const DEFAULT_MAX_REDIRECTS: u8 = 10;
/// Default body cap in bytes when downloading.
pub const DEFAULT_BODY_LIMIT: u64 = 10 * 1024 * 1024;

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT
}
fn default_max_redirects() -> u8 {
    DEFAULT_MAX_REDIRECTS
}
fn default_body_limit() -> u64 {
    DEFAULT_BODY_LIMIT
}

/// Request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    #[default]
    Get,
    /// HEAD.
    Head,
}

/// Parameters of an HTTP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Method.
    #[serde(default)]
    pub method: HttpMethod,
    /// `HOST:PORT` to connect to instead of the URL's host (which stays Host and SNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_to: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Offer HTTP/2 through ALPN (prior knowledge for `http://`).
    #[serde(default)]
    pub http2: bool,
    /// Follow redirects, timing each hop.
    #[serde(default)]
    pub follow_redirects: bool,
    /// Redirect limit when following.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u8,
    /// Download the body (up to `body_limit` bytes) and report throughput.
    #[serde(default)]
    pub body: bool,
    /// Body cap in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: u64,
    /// Do not verify the server certificate (still reported).
    #[serde(default)]
    pub insecure: bool,
    /// Allow non-global destinations (loopback, private, link-local …), if the agent permits it.
    #[serde(default)]
    pub allow_private: bool,
    /// Overall timeout in seconds.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Address family to resolve the host to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

impl HttpSpec {
    /// A spec for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        HttpSpec {
            url: url.into(),
            method: HttpMethod::Get,
            connect_to: None,
            headers: BTreeMap::new(),
            http2: false,
            follow_redirects: false,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            body: false,
            body_limit: DEFAULT_BODY_LIMIT,
            insecure: false,
            allow_private: false,
            timeout: DEFAULT_TIMEOUT,
            family: None,
        }
    }

    /// Checks ranges and cross-field rules (the URL's full syntax is checked by the engine).
    pub fn validate(&self) -> Result<(), SpecError> {
        let lower = self.url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(SpecError::new(
                "url",
                format!("'{}' is not an http:// or https:// URL", self.url),
            ));
        }
        if self.url.len() > 8192 || self.url.contains(char::is_whitespace) {
            return Err(SpecError::new(
                "url",
                "the URL contains spaces or is over 8192 characters",
            ));
        }
        if let Some(c) = &self.connect_to
            && (c.is_empty() || c.contains(char::is_whitespace))
        {
            return Err(SpecError::new(
                "connect_to",
                format!("'{c}' is not HOST:PORT"),
            ));
        }
        check_seconds("timeout", self.timeout, 0.01, 300.0)?;
        check_range("max_redirects", self.max_redirects, 0, 50)?;
        for (k, v) in &self.headers {
            let name_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !name_ok || v.contains(['\r', '\n']) {
                return Err(SpecError::new(
                    "headers",
                    format!("header '{k}' is not valid"),
                ));
            }
        }
        Ok(())
    }

    /// Worst-case duration in seconds.
    pub fn max_duration(&self) -> f64 {
        if self.follow_redirects {
            self.timeout * f64::from(self.max_redirects + 1)
        } else {
            self.timeout
        }
    }
}

/// Durations of the phases of one request, in milliseconds. A phase that did not happen (no DNS
/// for an address literal, no TLS for `http://`) is absent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpPhases {
    /// Name resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    /// TCP handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    /// From request sent to the response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    /// Body download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_ms: Option<f64>,
    /// Start to finish.
    pub total_ms: f64,
}

/// One certificate of the chain the server presented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpTlsCertificate {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Subject alternative names.
    #[serde(default)]
    pub sans: Vec<String>,
    /// Validity start (RFC 3339).
    pub not_before: String,
    /// Validity end (RFC 3339).
    pub not_after: String,
    /// Days until `not_after` (negative when expired).
    pub days_left: i64,
    /// Serial number in hex.
    pub serial: String,
}

/// TLS session facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpTls {
    /// Protocol version (`TLSv1.3`).
    pub version: String,
    /// Cipher suite.
    pub cipher: String,
    /// ALPN protocol negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// Whether the chain verified against the trust roots for the name.
    pub verified: bool,
    /// Why verification failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// Certificates as presented, leaf first.
    pub chain: Vec<HttpTlsCertificate>,
}

/// One hop of a followed redirect chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRedirectHop {
    /// URL requested.
    pub url: String,
    /// Status answered.
    pub status: u16,
    /// Where it pointed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Address connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Phase timings of this hop.
    pub phases: HttpPhases,
}

/// Result payload of an HTTP measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpDetail {
    /// Final URL requested.
    pub url: String,
    /// Address actually connected (`IP:PORT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Protocol (`HTTP/1.1`, `HTTP/2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    /// Response headers (repeated names joined with `, `).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Phase timings of the final request.
    pub phases: HttpPhases,
    /// TLS facts, for `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<HttpTls>,
    /// Body bytes read (0 when stopped after the headers).
    #[serde(default)]
    pub body_bytes: u64,
    /// Whether the body hit the size cap.
    #[serde(default)]
    pub body_truncated: bool,
    /// Download throughput in bytes per second, when the body was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_bps: Option<f64>,
    /// Earlier hops when redirects were followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<HttpRedirectHop>,
}
