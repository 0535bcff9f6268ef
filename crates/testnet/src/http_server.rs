//! An HTTP/1.1 + HTTP/2 test server on loopback, plain or TLS, with a test CA made per test.
//!
//! Routes (all GET or HEAD):
//! - `/` — 200, a short text body;
//! - `/slow/MS` — waits MS milliseconds before sending the headers (a known time to first byte);
//! - `/status/CODE` — answers CODE;
//! - `/redirect/N` — 302 to `/redirect/N-1`, and `/redirect/0` to `/`;
//! - `/goto?URL` — 302 to URL (percent-decoding is not needed for the URLs tests use);
//! - `/bytes/N` — 200 with a body of N bytes;
//! - `/whoami` — 200 with `x-seen-host`, `x-seen-sni` and `x-seen-version` headers.
//!
//! Accepted sockets get `TCP_NODELAY` (Nagle plus delayed ACK would add tens of milliseconds to
//! small TLS records). Every request is recorded for the test to inspect.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A certificate authority made for one test.
#[derive(Debug)]
pub struct TestCa {
    pem: String,
    der: CertificateDer<'static>,
    params: CertificateParams,
    key: KeyPair,
}

/// How long a leaf certificate is valid, relative to today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday for 90 days.
    Current,
    /// From 60 days ago to 30 days ago.
    Expired,
}

/// A certificate chain and key for a TLS server.
#[derive(Debug)]
pub struct ServerCert {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// The date `days` days from today (UTC), as year, month, day.
fn ymd(days: i64) -> (i32, u8, u8) {
    use chrono::Datelike;
    let d = chrono::Utc::now().date_naive() + chrono::TimeDelta::days(days);
    // Month and day always fit in a byte.
    (d.year(), d.month() as u8, d.day() as u8)
}

impl TestCa {
    /// A fresh CA (ECDSA P-256), valid from yesterday for a year.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params
            .distinguished_name
            .push(DnType::CommonName, "Vantage Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (from, to) = (ymd(-1), ymd(365));
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(to.0, to.1, to.2);
        let key = KeyPair::generate().expect("key generation");
        let cert = params.self_signed(&key).expect("CA self-signs");
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }

    /// The CA certificate in PEM, to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn leaf(&self, names: &[&str], validity: Validity) -> ServerCert {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("valid test names");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("test"));
        let (from, to) = match validity {
            Validity::Current => (ymd(-1), ymd(90)),
            Validity::Expired => (ymd(-60), ymd(-30)),
        };
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(to.0, to.1, to.2);
        let key = KeyPair::generate().expect("key generation");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("CA signs");
        ServerCert {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The Host header, or the `:authority` for HTTP/2.
    pub host: Option<String>,
    /// The TLS server name the client sent (SNI), for TLS connections.
    pub sni: Option<String>,
    /// The User-Agent header.
    pub user_agent: Option<String>,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    /// A plain HTTP server (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub async fn plain(ipv6: bool) -> std::io::Result<HttpServer> {
        Self::start(loopback(ipv6), None).await
    }

    /// A plain HTTP server on `ip` (an address of a test namespace), port chosen by the kernel.
    pub async fn plain_at(ip: IpAddr) -> std::io::Result<HttpServer> {
        Self::start(ip, None).await
    }

    /// A TLS server presenting `cert`, offering h2 and http/1.1 through ALPN.
    pub async fn tls(ipv6: bool, cert: &ServerCert) -> std::io::Result<HttpServer> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                cert.chain.clone(),
                PrivateKeyDer::Pkcs8(cert.key.clone_key()),
            )
            .map_err(std::io::Error::other)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::start(
            loopback(ipv6),
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    async fn start(
        ip: IpAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let _ = tcp.set_nodelay(true);
                    let (seen, tls) = (seen.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            None => serve(tcp, None, seen).await,
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(tcp).await {
                                    let sni = stream.get_ref().1.server_name().map(str::to_string);
                                    serve(stream, sni, seen).await;
                                }
                            }
                        }
                    });
                }
            })
        };
        Ok(HttpServer { addr, seen, task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Phase times curl reports for one request, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurlPhases {
    /// TCP handshake (`time_connect - time_namelookup`).
    pub connect_ms: f64,
    /// TLS handshake (`time_appconnect - time_connect`), 0 for plain HTTP.
    pub tls_ms: f64,
    /// Request sent to first byte (`time_starttransfer - time_pretransfer`).
    pub ttfb_ms: f64,
}

/// Runs `curl` once on `url` (trusting `cafile` when given) and returns its phase times. The
/// caller checks that curl is installed (`need_binary`).
pub async fn curl_phases(url: &str, cafile: Option<&std::path::Path>) -> CurlPhases {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "--max-time", "10", "-w"]).arg(
        "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer}",
    );
    if let Some(ca) = cafile {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.arg(url).output().await.expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let t: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().expect("curl prints seconds") * 1000.0)
        .collect();
    assert_eq!(t.len(), 5, "curl said: {text}");
    CurlPhases {
        connect_ms: t[1] - t[0],
        tls_ms: if t[2] > 0.0 { t[2] - t[1] } else { 0.0 },
        ttfb_ms: t[4] - t[3],
    }
}

fn loopback(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

async fn serve<S>(io: S, sni: Option<String>, seen: Arc<Mutex<Vec<SeenRequest>>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let (sni, seen) = (sni.clone(), seen.clone());
        async move { Ok::<_, Infallible>(route(req, sni, &seen).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

fn text(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut r = text(302, "moved\n");
    if let Ok(v) = hyper::header::HeaderValue::from_str(location) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
}

async fn route(
    req: Request<Incoming>,
    sni: Option<String>,
    seen: &Mutex<Vec<SeenRequest>>,
) -> Response<Full<Bytes>> {
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let host = header(hyper::header::HOST).or_else(|| req.uri().authority().map(|a| a.to_string()));
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let version = format!("{:?}", req.version());
    if let Ok(mut s) = seen.lock() {
        s.push(SeenRequest {
            method: req.method().to_string(),
            path: path.clone(),
            version: version.clone(),
            host: host.clone(),
            sni: sni.clone(),
            user_agent: header(hyper::header::USER_AGENT),
        });
    }
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    match parts.as_slice() {
        [""] => text(200, "hello from the vantage test server\n"),
        ["slow", ms] => {
            let ms: u64 = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(200, "slow hello\n")
        }
        ["status", code] => text(code.parse().unwrap_or(500), format!("status {code}\n")),
        ["redirect", n] => match n.parse::<u32>() {
            Ok(0) => redirect("/"),
            Ok(n) => redirect(&format!("/redirect/{}", n - 1)),
            Err(_) => text(400, "bad redirect count\n"),
        },
        ["bytes", n] => {
            let n: usize = n.parse().unwrap_or(0);
            text(200, vec![b'x'; n])
        }
        ["whoami"] => {
            let mut r = text(200, "who am i\n");
            let h = r.headers_mut();
            let mut set = |name: &'static str, v: Option<&str>| {
                if let Some(v) = v.and_then(|v| hyper::header::HeaderValue::from_str(v).ok()) {
                    h.insert(name, v);
                }
            };
            set("x-seen-host", host.as_deref());
            set("x-seen-sni", sni.as_deref());
            set("x-seen-version", Some(&version));
            r
        }
        _ if path.starts_with("/goto?") => redirect(&path["/goto?".len()..]),
        _ => text(404, "not found\n"),
    }
}
