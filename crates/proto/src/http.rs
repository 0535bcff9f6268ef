//! HTTP: spec and result detail.
//!
//! Each phase (DNS, TCP connect, TLS, time to first byte, download) is measured separately; the
//! request stops after the headers unless the body is asked for. `connect_to` separates the
//! address connected from the URL's host (which stays the Host header and TLS SNI), so one server
//! of a pool can be tested by address.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{check_range, check_seconds};
use crate::{Endpoint, Family, Host, SpecError};

/// Default overall timeout in seconds.
pub const DEFAULT_TIMEOUT: f64 = 10.0;
/// Default redirect limit when following.
pub const DEFAULT_MAX_REDIRECTS: u8 = 10;
/// Default body cap in bytes when downloading.
pub const DEFAULT_BODY_LIMIT: u64 = 10 * 1024 * 1024;
/// Largest body cap accepted.
pub const MAX_BODY_LIMIT: u64 = 1 << 30;
/// Largest `ca_cert` text accepted, in bytes.
pub const MAX_CA_CERT_LEN: usize = 256 * 1024;

/// Request headers the engine manages itself: connection handling and the (absent) request body.
const MANAGED_HEADERS: [&str; 7] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

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
    /// Extra trust anchors (PEM certificates) added to the system's roots, like curl's
    /// `--cacert`: for servers with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
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
            ca_cert: None,
        }
    }

    /// The URL, parsed (valid after [`HttpSpec::validate`]).
    pub fn parsed_url(&self) -> Result<url::Url, SpecError> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            SpecError::new("url", format!("'{}' is not a valid URL: {e}", self.url))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SpecError::new(
                "url",
                format!(
                    "'{}' has the scheme '{}'; use http:// or https://",
                    self.url,
                    url.scheme()
                ),
            ));
        }
        if url.host().is_none() {
            return Err(SpecError::new(
                "url",
                format!("'{}' names no host", self.url),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SpecError::new(
                "url",
                "credentials in the URL are not supported; send an Authorization header instead",
            ));
        }
        Ok(url)
    }

    /// The `connect_to` endpoint; its port defaults to `default_port` (the URL's).
    pub fn connect_endpoint(&self, default_port: u16) -> Result<Option<Endpoint>, SpecError> {
        self.connect_to
            .as_deref()
            .map(|c| Endpoint::parse("connect_to", c, default_port))
            .transpose()
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
        let url = self.parsed_url()?;
        if let (Some(url::Host::Ipv4(_)), Some(Family::Ipv6))
        | (Some(url::Host::Ipv6(_)), Some(Family::Ipv4)) = (url.host(), self.family)
        {
            return Err(SpecError::new(
                "family",
                format!(
                    "the URL's host is an address of the other family than the {} requested",
                    self.family.map(|f| f.to_string()).unwrap_or_default()
                ),
            ));
        }
        if let Some(ep) = self.connect_endpoint(1)?
            && let (Host::Ip(ip), Some(fam)) = (&ep.host, self.family)
            && Family::of(*ip) != fam
        {
            return Err(SpecError::new(
                "connect_to",
                format!("{ip} is not an {fam} address, but {fam} was requested"),
            ));
        }
        check_seconds("timeout", self.timeout, 0.01, 300.0)?;
        check_range("max_redirects", self.max_redirects, 0, 50)?;
        check_range("body_limit", self.body_limit, 1, MAX_BODY_LIMIT)?;
        for (k, v) in &self.headers {
            check_header(k, v)?;
        }
        if let Some(pem) = &self.ca_cert {
            if pem.len() > MAX_CA_CERT_LEN {
                return Err(SpecError::new(
                    "ca_cert",
                    format!("the CA certificates are over {MAX_CA_CERT_LEN} bytes"),
                ));
            }
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(SpecError::new(
                    "ca_cert",
                    "no PEM certificate found (a '-----BEGIN CERTIFICATE-----' block)",
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

/// Checks one request header: an RFC 9110 token as name, a value without control characters
/// (tabs allowed), and not one of the headers the engine manages.
fn check_header(name: &str, value: &str) -> Result<(), SpecError> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(SpecError::new(
            "headers",
            format!(
                "'{name}' is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            ),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SpecError::new(
            "headers",
            format!("the value of header '{name}' contains control characters"),
        ));
    }
    if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(SpecError::new(
            "headers",
            format!("header '{name}' is managed by the HTTP client and cannot be set"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    fn spec(f: impl FnOnce(&mut HttpSpec)) -> Result<(), SpecError> {
        let mut s = HttpSpec::new("https://example.com/path?q=1");
        f(&mut s);
        s.validate()
    }

    #[test]
    fn good_specs_pass() {
        spec(|_| {}).unwrap();
        spec(|s| s.url = "http://[2001:db8::1]:8080/".into()).unwrap();
        spec(|s| s.connect_to = Some("192.0.2.1:8443".into())).unwrap();
        spec(|s| s.connect_to = Some("[2001:db8::1]".into())).unwrap();
        spec(|s| {
            s.headers
                .insert("X-Test".into(), "a value\twith tab".into());
        })
        .unwrap();
        spec(|s| {
            s.headers.insert("Host".into(), "other.example".into());
        })
        .unwrap();
    }

    #[test_case(|s: &mut HttpSpec| s.url = "ftp://example.com/".into(), "url" ; "an unknown scheme is refused")]
    #[test_case(|s: &mut HttpSpec| s.url = "http://".into(), "url" ; "a URL without host is refused")]
    #[test_case(|s: &mut HttpSpec| s.url = "http://exa mple.com/".into(), "url" ; "a URL with a space is refused")]
    #[test_case(|s: &mut HttpSpec| s.url = "http://[::1/".into(), "url" ; "a broken IPv6 URL is refused")]
    #[test_case(|s: &mut HttpSpec| s.url = "http://example.com:99999/".into(), "url" ; "a port over 65535 is refused")]
    #[test_case(|s: &mut HttpSpec| s.url = "http://user:pw@example.com/".into(), "url" ; "credentials in the URL are refused")]
    #[test_case(|s: &mut HttpSpec| s.connect_to = Some("192.0.2.1:0".into()), "connect_to" ; "port zero in connect_to is refused")]
    #[test_case(|s: &mut HttpSpec| s.connect_to = Some("a b".into()), "connect_to" ; "a connect_to with a space is refused")]
    #[test_case(|s: &mut HttpSpec| { s.headers.insert("Bad Name".into(), "x".into()); }, "headers" ; "a header name with a space is refused")]
    #[test_case(|s: &mut HttpSpec| { s.headers.insert("X-A".into(), "a\r\nX-B: injected".into()); }, "headers" ; "a header value with CRLF is refused")]
    #[test_case(|s: &mut HttpSpec| { s.headers.insert("Content-Length".into(), "5".into()); }, "headers" ; "a managed header is refused")]
    #[test_case(|s: &mut HttpSpec| s.body_limit = 0, "body_limit" ; "a zero body cap is refused")]
    #[test_case(|s: &mut HttpSpec| s.ca_cert = Some("not a pem".into()), "ca_cert" ; "a CA that is not PEM is refused")]
    #[test_case(|s: &mut HttpSpec| { s.url = "http://192.0.2.1/".into(); s.family = Some(Family::Ipv6) }, "family" ; "a literal of the other family is refused")]
    fn bad_specs_name_the_field(f: fn(&mut HttpSpec), field: &str) {
        let e = spec(f).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
}
