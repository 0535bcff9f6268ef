//! One HTTP request, timed phase by phase: DNS, TCP connect, TLS handshake, time to first byte
//! (request written → response headers) and, when asked, the body download.
//!
//! The phases are separate steps on our side (resolve, `TcpStream::connect`, the TLS connector,
//! then hyper's client connection API on the established stream), so each has its own clock —
//! something pooled clients such as reqwest cannot give. Every step shares the request's one
//! deadline; a timeout names the phase it hit. The connection is dropped after the headers
//! unless the body was asked for, so a large body costs nothing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;
use vantage_proto::{Endpoint, Host, HttpMethod, HttpPhases, HttpSpec, HttpTls, Outcome};

use super::tls;
use crate::{Context, policy, resolve};

/// What one request needs besides the spec.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub url: &'a Url,
    pub method: HttpMethod,
    /// The address to connect to instead of the URL's host, for this hop.
    pub connect_to: Option<&'a Endpoint>,
    pub spec: &'a HttpSpec,
    /// Trust roots; present for https URLs.
    pub roots: Option<Arc<RootCertStore>>,
    pub cx: &'a Context,
}

/// Everything one request produced, complete or not.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    pub remote: Option<SocketAddr>,
    pub phases: HttpPhases,
    pub status: Option<u16>,
    pub reason: Option<&'static str>,
    pub version: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub location: Option<String>,
    pub tls: Option<HttpTls>,
    pub body_bytes: u64,
    pub body_truncated: bool,
    pub throughput_bps: Option<f64>,
    /// Why the request did not complete.
    pub failure: Option<(Outcome, String)>,
    /// Remarks for the result's quality notes.
    pub notes: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs one request.
pub(super) async fn fetch(req: Request<'_>) -> Fetched {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(req.spec.timeout);
    let mut f = Fetched::default();
    if let Err(failure) = steps(&req, start, deadline, &mut f).await {
        f.failure = Some(failure);
    }
    f.phases.total_ms = ms(start.elapsed());
    f
}

type Failure = (Outcome, String);

/// "… timed out after N s": the request's limit ran out during this phase. When earlier phases
/// used a noticeable part of it (a tenth or more), the sentence says how much.
fn timed_out(what: &str, phase_start: Instant, start: Instant, timeout: f64) -> Failure {
    let earlier = (phase_start - start).as_secs_f64();
    let note = if earlier >= 0.1 * timeout {
        format!(" ({} s of it went to earlier phases)", secs_short(earlier))
    } else {
        String::new()
    };
    (
        Outcome::Timeout,
        format!(
            "{what} timed out after {} s{note}",
            crate::dns::secs(timeout)
        ),
    )
}

/// Seconds to two decimals (one from 10 s on), without trailing zeros: `5`, `0.5`, `0.25`.
fn secs_short(s: f64) -> String {
    let rounded = if s >= 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    };
    rounded
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

fn io_failure(what: &str, addr: SocketAddr, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind as K;
    match (e.kind(), e.raw_os_error()) {
        (K::ConnectionRefused, _) => (
            Outcome::Refused,
            format!(
                "{what} {addr} was refused (nothing listens on port {})",
                addr.port()
            ),
        ),
        (K::NetworkUnreachable, _) | (_, Some(libc::ENETUNREACH)) => (
            Outcome::Unreachable,
            format!("{what} {addr} failed: the network is unreachable"),
        ),
        (K::HostUnreachable, _) | (_, Some(libc::EHOSTUNREACH)) => (
            Outcome::Unreachable,
            format!("{what} {addr} failed: the host is unreachable"),
        ),
        (K::ConnectionReset, _) => (
            Outcome::ProtocolError,
            format!("{what} {addr} failed: the connection was reset"),
        ),
        _ => (Outcome::Internal, format!("{what} {addr} failed: {e}")),
    }
}

async fn steps(
    req: &Request<'_>,
    start: Instant,
    deadline: Instant,
    f: &mut Fetched,
) -> Result<(), Failure> {
    let spec = req.spec;
    let url = req.url;
    let https = url.scheme() == "https";
    let url_port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    // Where to connect: the connect-to endpoint, or the URL's host.
    let (host, port) = match req.connect_to {
        Some(ep) => (ep.host.clone(), ep.port),
        None => match url.host() {
            Some(url::Host::Ipv4(ip)) => (Host::Ip(IpAddr::V4(ip)), url_port),
            Some(url::Host::Ipv6(ip)) => (Host::Ip(IpAddr::V6(ip)), url_port),
            Some(url::Host::Domain(d)) => (Host::Name(d.to_string()), url_port),
            None => return Err((Outcome::Internal, format!("{url} names no host"))),
        },
    };

    // DNS.
    let candidates = match &host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            let t = Instant::now();
            let r = tokio::time::timeout_at(deadline, resolve::resolve_all(name, spec.family))
                .await
                .map_err(|_| timed_out(&format!("DNS lookup of {name}"), t, start, spec.timeout))?;
            f.phases.dns_ms = Some(ms(t.elapsed()));
            r.map_err(|e| (Outcome::DnsFailure, e.to_string()))?
        }
    };

    // Policy, on the addresses the name resolved to: connect to the first one allowed.
    let mut refusals = Vec::new();
    let mut chosen = None;
    for ip in &candidates {
        match policy::check(*ip, spec.allow_private, req.cx) {
            Ok(()) => {
                chosen = Some(*ip);
                break;
            }
            Err(e) => refusals.push(e.to_string()),
        }
    }
    let Some(ip) = chosen else {
        return Err((
            Outcome::BlockedByPolicy,
            format!("refusing to connect to {host}: {}", refusals.join("; ")),
        ));
    };
    if !refusals.is_empty() {
        f.notes.push(format!(
            "skipped addresses the destination policy refuses: {}",
            refusals.join("; ")
        ));
    }
    let addr = SocketAddr::new(ip, port);
    f.remote = Some(addr);

    // TCP connect.
    let t = Instant::now();
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out(&format!("TCP connect to {addr}"), t, start, spec.timeout))?
        .map_err(|e| io_failure("TCP connect to", addr, &e))?;
    f.phases.connect_ms = Some(ms(t.elapsed()));
    let _ = tcp.set_nodelay(true);

    if !https {
        return exchange(tcp, spec.http2, req, start, deadline, f).await;
    }

    // TLS: SNI and verification use the URL's host, whatever address was connected.
    let sni_host = url.host_str().unwrap_or_default();
    let server_name = match url.host() {
        Some(url::Host::Ipv4(ip)) => ServerName::IpAddress(IpAddr::V4(ip).into()),
        Some(url::Host::Ipv6(ip)) => ServerName::IpAddress(IpAddr::V6(ip).into()),
        _ => ServerName::try_from(sni_host.to_string()).map_err(|_| {
            (
                Outcome::Internal,
                format!("'{sni_host}' cannot be a TLS server name"),
            )
        })?,
    };
    let roots = req.roots.clone().ok_or_else(|| {
        (
            Outcome::Internal,
            "no trust roots were loaded for an https request".to_string(),
        )
    })?;
    let (config, verifier) =
        tls::client_config(roots, spec.insecure, spec.http2).map_err(|e| (Outcome::Internal, e))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let t = Instant::now();
    let handshake = tokio::time::timeout_at(deadline, connector.connect(server_name, tcp)).await;
    let now = Utc::now();
    let seen = verifier.seen();
    let chain: Vec<_> = seen
        .chain
        .iter()
        .filter_map(|c| tls::describe_cert(c, now))
        .collect();
    let verify_error = seen
        .error
        .as_ref()
        .map(|e| tls::verify_reason(e, sni_host, chain.first()));
    let stream = match handshake {
        Err(_) => {
            return Err(timed_out(
                &format!("TLS handshake with {addr}"),
                t,
                start,
                spec.timeout,
            ));
        }
        Ok(Err(e)) => {
            if seen.checked {
                f.tls = Some(HttpTls {
                    version: "unknown".into(),
                    cipher: "unknown".into(),
                    alpn: None,
                    verified: false,
                    verify_error: verify_error.clone(),
                    chain,
                });
            }
            let sentence = match (&verify_error, spec.insecure) {
                (Some(reason), false) => {
                    format!("TLS certificate verification failed for {sni_host}: {reason}")
                }
                _ => format!("TLS handshake with {addr} failed: {}", tls_error_text(&e)),
            };
            return Err((Outcome::TlsFailure, sentence));
        }
        Ok(Ok(s)) => s,
    };
    f.phases.tls_ms = Some(ms(t.elapsed()));
    let conn = stream.get_ref().1;
    let version = conn
        .protocol_version()
        .map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            other => format!("{other:?}"),
        })
        .unwrap_or_else(|| "unknown".into());
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".into());
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let h2 = alpn.as_deref() == Some("h2");
    if let Some(reason) = &verify_error {
        f.notes.push(format!(
            "the certificate did not verify ({reason}); insecure mode went on regardless"
        ));
    }
    f.tls = Some(HttpTls {
        version,
        cipher,
        alpn,
        verified: seen.checked && seen.error.is_none(),
        verify_error,
        chain,
    });
    exchange(stream, h2, req, start, deadline, f).await
}

/// The text of a TLS handshake error: rustls' own error when there is one.
fn tls_error_text(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("the server sent the TLS alert {alert:?}")
        }
        Some(rustls::Error::NoApplicationProtocol) => {
            "the server accepts none of the offered protocols (ALPN)".into()
        }
        Some(r) => r.to_string(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake".into()
        }
        None => e.to_string(),
    }
}

enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

/// Sends the request on an established stream and reads the answer.
async fn exchange<S>(
    io: S,
    h2: bool,
    req: &Request<'_>,
    start: Instant,
    deadline: Instant,
    f: &mut Fetched,
) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let spec = req.spec;
    let addr = f.remote.map(|a| a.to_string()).unwrap_or_default();
    let protocol_failure = |what: &str, e: hyper::Error| {
        (
            Outcome::ProtocolError,
            format!("{what} with {addr} failed: {e}"),
        )
    };
    let (mut sender, driver) = if h2 {
        let (s, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| protocol_failure("the HTTP/2 handshake", e))?;
        (
            Sender::H2(s),
            tokio::spawn(async move { conn.await.is_ok() }),
        )
    } else {
        let (s, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| protocol_failure("the HTTP/1.1 handshake", e))?;
        (
            Sender::H1(s),
            tokio::spawn(async move { conn.await.is_ok() }),
        )
    };
    // The connection task dies with this function, so an unread body is never downloaded.
    let _abort = AbortOnDrop(driver);
    let request = build_request(req, h2).map_err(|e| (Outcome::Internal, e))?;

    let t = Instant::now();
    let response = match &mut sender {
        Sender::H1(s) => {
            tokio::time::timeout_at(deadline, async {
                s.ready().await?;
                s.send_request(request).await
            })
            .await
        }
        Sender::H2(s) => {
            tokio::time::timeout_at(deadline, async {
                s.ready().await?;
                s.send_request(request).await
            })
            .await
        }
    };
    let response = response
        .map_err(|_| {
            timed_out(
                &format!("waiting for the response from {addr}"),
                t,
                start,
                spec.timeout,
            )
        })?
        .map_err(|e| {
            if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
                (
                    Outcome::ProtocolError,
                    format!("{addr} closed the connection without answering the request"),
                )
            } else {
                protocol_failure("the request", e)
            }
        })?;
    let headers_at = Instant::now();
    f.phases.ttfb_ms = Some(ms(headers_at - t));
    let status = response.status();
    f.status = Some(status.as_u16());
    f.reason = status.canonical_reason();
    f.version = Some(
        match response.version() {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_11 => "HTTP/1.1",
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/?",
        }
        .to_string(),
    );
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        f.headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    f.location = response
        .headers()
        .get(http::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());

    if !spec.body || req.method == HttpMethod::Head {
        return Ok(());
    }
    let mut body = response.into_body();
    let limit = spec.body_limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| {
                let mut t = timed_out(
                    &format!("the body download from {addr}"),
                    headers_at,
                    start,
                    spec.timeout,
                );
                t.1.push_str(&format!(" ({} bytes read)", f.body_bytes));
                t
            })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| protocol_failure("the body download", e))?;
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if f.body_bytes + len > limit {
                f.body_bytes = limit;
                f.body_truncated = true;
                break;
            }
            f.body_bytes += len;
        }
    }
    let download = headers_at.elapsed();
    f.phases.download_ms = Some(ms(download));
    if download.as_secs_f64() > 0.0 {
        f.throughput_bps = Some(f.body_bytes as f64 / download.as_secs_f64());
    }
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<bool>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The request: origin-form URI and Host header for HTTP/1.1; absolute URI (whose authority
/// becomes `:authority`) for HTTP/2. A user's Host header replaces the URL's authority.
fn build_request(req: &Request<'_>, h2: bool) -> Result<http::Request<Empty<Bytes>>, String> {
    let url = req.url;
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let host_override = req
        .spec
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let path = if path.is_empty() { "/" } else { path };
    let method = match req.method {
        HttpMethod::Get => http::Method::GET,
        HttpMethod::Head => http::Method::HEAD,
    };
    let mut b = http::Request::builder().method(method);
    if h2 {
        let auth = host_override.unwrap_or(authority);
        let uri = http::Uri::builder()
            .scheme(url.scheme())
            .authority(auth.as_str())
            .path_and_query(path)
            .build()
            .map_err(|e| {
                format!("cannot form the HTTP/2 request for {url} (authority '{auth}'): {e}")
            })?;
        b = b.uri(uri).version(http::Version::HTTP_2);
    } else {
        b = b
            .uri(path)
            .header(http::header::HOST, host_override.unwrap_or(authority));
    }
    let mut has_agent = false;
    let mut has_accept = false;
    for (k, v) in &req.spec.headers {
        if k.eq_ignore_ascii_case("host") {
            continue;
        }
        has_agent |= k.eq_ignore_ascii_case("user-agent");
        has_accept |= k.eq_ignore_ascii_case("accept");
        b = b.header(k.as_str(), v.as_str());
    }
    if !has_agent {
        b = b.header(
            http::header::USER_AGENT,
            concat!("vantage/", env!("CARGO_PKG_VERSION")),
        );
    }
    if !has_accept {
        b = b.header(http::header::ACCEPT, "*/*");
    }
    b.body(Empty::new())
        .map_err(|e| format!("cannot form the request for {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_seconds_keep_what_matters() {
        assert_eq!(secs_short(5.0), "5");
        assert_eq!(secs_short(0.5012), "0.5");
        assert_eq!(secs_short(0.254), "0.25");
        assert_eq!(secs_short(12.34), "12.3");
    }
}
