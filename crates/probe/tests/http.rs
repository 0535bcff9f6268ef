//! HTTP measurements against servers the tests start on loopback: plain, TLS with a CA made per
//! test, HTTP/2, a known time to first byte (cross-checked with curl), redirects, error statuses,
//! expired and mismatched certificates, connect-to with the Host/SNI split, timeouts per phase,
//! body download and the destination policy.

use std::net::SocketAddr;
use std::time::Duration;

use vantage_probe::{Context, run};
use vantage_proto::{
    Detail, Family, HttpDetail, HttpMethod, HttpSpec, MeasurementResult, MeasurementSpec, Outcome,
};
use vantage_testnet::http_server::{HttpServer, ServerCert, TestCa, Validity, curl_phases};
use vantage_testnet::stats::quantile;

fn spec(url: &str) -> HttpSpec {
    let mut s = HttpSpec::new(url);
    s.allow_private = true;
    s.timeout = 5.0;
    s
}

async fn measure(s: HttpSpec) -> MeasurementResult {
    run(&MeasurementSpec::Http(s), &Context::default()).await
}

fn detail(r: &MeasurementResult) -> &HttpDetail {
    match &r.detail {
        Some(Detail::Http(d)) => d,
        other => panic!("no HTTP detail: {other:?} ({:?})", r.error),
    }
}

fn url(addr: SocketAddr, path: &str, https: bool) -> String {
    format!("{}://{addr}{path}", if https { "https" } else { "http" })
}

async fn tls_server(names: &[&str], validity: Validity) -> (TestCa, ServerCert, HttpServer) {
    let ca = TestCa::new();
    let cert = ca.leaf(names, validity);
    let srv = HttpServer::tls(false, &cert).await.unwrap();
    (ca, cert, srv)
}

#[tokio::test]
async fn plain_http_is_timed_by_phase_and_stops_after_the_headers() {
    let srv = HttpServer::plain(false).await.unwrap();
    let r = measure(spec(&url(srv.addr(), "/", false))).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert_eq!(d.status, Some(200));
    assert_eq!(d.http_version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(d.remote.as_deref(), Some(srv.addr().to_string().as_str()));
    assert_eq!(
        d.headers.get("content-type").map(String::as_str),
        Some("text/plain")
    );
    let p = d.phases;
    assert_eq!(p.dns_ms, None, "an address literal needs no DNS");
    assert_eq!(p.tls_ms, None);
    assert_eq!(p.download_ms, None);
    let (connect, ttfb) = (p.connect_ms.unwrap(), p.ttfb_ms.unwrap());
    assert!(connect > 0.0 && ttfb > 0.0);
    assert!(p.total_ms >= connect + ttfb, "{p:?}");
    assert_eq!(d.body_bytes, 0);
    assert!(d.tls.is_none());
    let seen = srv.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].host.as_deref(),
        Some(srv.addr().to_string().as_str())
    );
    assert!(
        seen[0]
            .user_agent
            .as_deref()
            .unwrap()
            .starts_with("vantage/")
    );
}

#[tokio::test]
async fn a_host_name_is_resolved_and_timed() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&format!("http://localhost:{}/", srv.addr().port()));
    s.family = Some(Family::Ipv4);
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert!(d.phases.dns_ms.is_some());
    assert_eq!(d.remote.as_deref(), Some(srv.addr().to_string().as_str()));
    assert_eq!(
        srv.seen()[0].host,
        Some(format!("localhost:{}", srv.addr().port()))
    );
}

#[tokio::test]
async fn head_requests_send_head() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/", false));
    s.method = HttpMethod::Head;
    s.body = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(detail(&r).body_bytes, 0);
    assert_eq!(srv.seen()[0].method, "HEAD");
}

#[tokio::test]
async fn tls_with_a_test_ca_verifies_and_reports_the_chain() {
    let (ca, _, srv) = tls_server(&["localhost", "127.0.0.1"], Validity::Current).await;
    let mut s = spec(&url(srv.addr(), "/", true));
    s.ca_cert = Some(ca.pem().to_string());
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert_eq!(d.status, Some(200));
    assert!(d.phases.tls_ms.is_some_and(|t| t > 0.0));
    let tls = d.tls.as_ref().unwrap();
    assert!(tls.verified, "{:?}", tls.verify_error);
    assert_eq!(tls.verify_error, None);
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
    assert_eq!(tls.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(tls.chain.len(), 2);
    let leaf = &tls.chain[0];
    assert_eq!(leaf.subject, "CN=localhost");
    assert_eq!(leaf.issuer, "CN=Vantage Test CA");
    assert_eq!(leaf.sans, ["localhost", "127.0.0.1"]);
    // Valid until midnight UTC 90 days from today.
    assert!((89..=90).contains(&leaf.days_left), "{}", leaf.days_left);
    assert!(!leaf.serial.is_empty());
    assert_eq!(tls.chain[1].subject, "CN=Vantage Test CA");
    // IP literal URLs send no SNI (RFC 6066).
    assert_eq!(srv.seen()[0].sni, None);
}

#[tokio::test]
async fn an_untrusted_ca_is_a_tls_failure_with_the_reason() {
    let (_ca, _, srv) = tls_server(&["127.0.0.1"], Validity::Current).await;
    let r = measure(spec(&url(srv.addr(), "/", true))).await;
    assert_eq!(r.outcome, Outcome::TlsFailure);
    let e = r.error.clone().unwrap();
    assert!(
        e.starts_with("TLS certificate verification failed for 127.0.0.1: unknown issuer"),
        "{e}"
    );
    let tls = detail(&r).tls.as_ref().unwrap();
    assert!(!tls.verified);
    assert_eq!(
        tls.chain.len(),
        2,
        "the chain is reported even when it fails"
    );
    assert!(srv.seen().is_empty(), "no request after a failed handshake");
}

#[tokio::test]
async fn http2_is_negotiated_through_alpn() {
    let (ca, _, srv) = tls_server(&["127.0.0.1"], Validity::Current).await;
    let mut s = spec(&url(srv.addr(), "/whoami", true));
    s.ca_cert = Some(ca.pem().to_string());
    s.http2 = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert_eq!(d.http_version.as_deref(), Some("HTTP/2"));
    assert_eq!(d.tls.as_ref().unwrap().alpn.as_deref(), Some("h2"));
    assert_eq!(srv.seen()[0].version, "HTTP/2.0");
    assert_eq!(
        srv.seen()[0].host,
        Some(srv.addr().to_string()),
        ":authority carries the URL's host and port"
    );
}

#[tokio::test]
async fn http2_prior_knowledge_works_on_plain_http() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/", false));
    s.http2 = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(detail(&r).http_version.as_deref(), Some("HTTP/2"));
    assert_eq!(srv.seen()[0].version, "HTTP/2.0");
}

#[tokio::test]
async fn redirects_are_reported_not_followed_by_default() {
    let srv = HttpServer::plain(false).await.unwrap();
    let r = measure(spec(&url(srv.addr(), "/redirect/2", false))).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let d = detail(&r);
    assert_eq!(d.status, Some(302));
    assert_eq!(
        d.headers.get("location").map(String::as_str),
        Some("/redirect/1")
    );
    assert!(d.redirects.is_empty());
    assert_eq!(srv.seen().len(), 1);
}

#[tokio::test]
async fn followed_redirects_time_every_hop() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/redirect/2", false));
    s.follow_redirects = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert_eq!(d.status, Some(200));
    assert_eq!(d.url, url(srv.addr(), "/", false));
    let hops: Vec<(&str, u16, Option<&str>)> = d
        .redirects
        .iter()
        .map(|h| (h.url.as_str(), h.status, h.location.as_deref()))
        .collect();
    let u = |p: &str| url(srv.addr(), p, false);
    let (u2, u1, u0) = (u("/redirect/2"), u("/redirect/1"), u("/redirect/0"));
    assert_eq!(
        hops,
        [
            (u2.as_str(), 302, Some("/redirect/1")),
            (u1.as_str(), 302, Some("/redirect/0")),
            (u0.as_str(), 302, Some("/")),
        ]
    );
    for h in &d.redirects {
        assert!(h.phases.connect_ms.is_some() && h.phases.ttfb_ms.is_some());
        assert_eq!(h.remote.as_deref(), Some(srv.addr().to_string().as_str()));
    }
    let paths: Vec<String> = srv.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/redirect/2", "/redirect/1", "/redirect/0", "/"]);
}

#[tokio::test]
async fn too_many_redirects_stop_at_the_limit() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/redirect/5", false));
    s.follow_redirects = true;
    s.max_redirects = 2;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::ProtocolError);
    assert!(
        r.error
            .clone()
            .unwrap()
            .starts_with("gave up after 2 redirects")
    );
    assert_eq!(detail(&r).redirects.len(), 2);
    assert_eq!(srv.seen().len(), 3);
}

#[tokio::test]
async fn error_statuses_are_http_status_with_the_code() {
    let srv = HttpServer::plain(false).await.unwrap();
    let target = url(srv.addr(), "/status/503", false);
    let r = measure(spec(&target)).await;
    assert_eq!(r.outcome, Outcome::HttpStatus);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("{target} answered 503 Service Unavailable").as_str())
    );
    assert_eq!(detail(&r).status, Some(503));
    let r = measure(spec(&url(srv.addr(), "/status/404", false))).await;
    assert_eq!(r.outcome, Outcome::HttpStatus);
    let r = measure(spec(&url(srv.addr(), "/status/204", false))).await;
    assert_eq!(r.outcome, Outcome::Ok);
}

#[tokio::test]
async fn an_expired_certificate_fails_and_insecure_still_reports_it() {
    let (ca, _, srv) = tls_server(&["127.0.0.1"], Validity::Expired).await;
    let mut s = spec(&url(srv.addr(), "/", true));
    s.ca_cert = Some(ca.pem().to_string());
    let r = measure(s.clone()).await;
    assert_eq!(r.outcome, Outcome::TlsFailure);
    let e = r.error.unwrap();
    assert!(
        e.starts_with(
            "TLS certificate verification failed for 127.0.0.1: the certificate expired on"
        ),
        "{e}"
    );
    assert!(
        e.contains("(30 days ago)") || e.contains("(31 days ago)"),
        "{e}"
    );
    s.insecure = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let tls = detail(&r).tls.clone().unwrap();
    assert!(!tls.verified);
    assert!(tls.verify_error.unwrap().contains("expired"));
    assert!(tls.chain[0].days_left < 0);
    assert_eq!(detail(&r).status, Some(200));
    assert!(!r.quality.notes.is_empty());
}

#[tokio::test]
async fn a_name_mismatch_fails_and_insecure_still_reports_it() {
    let (ca, _, srv) = tls_server(&["other.example"], Validity::Current).await;
    let mut s = spec(&url(srv.addr(), "/", true));
    s.ca_cert = Some(ca.pem().to_string());
    let r = measure(s.clone()).await;
    assert_eq!(r.outcome, Outcome::TlsFailure);
    assert_eq!(
        r.error.as_deref(),
        Some(
            "TLS certificate verification failed for 127.0.0.1: name mismatch: the certificate \
             is not valid for 127.0.0.1 (it names other.example)"
        )
    );
    s.insecure = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let tls = detail(&r).tls.clone().unwrap();
    assert!(!tls.verified);
    assert!(tls.verify_error.unwrap().starts_with("name mismatch"));
}

#[tokio::test]
async fn connect_to_keeps_the_urls_host_as_host_header_and_sni() {
    let (ca, _, srv) = tls_server(&["www.vantage.example"], Validity::Current).await;
    let mut s = spec("https://www.vantage.example/whoami");
    s.connect_to = Some(srv.addr().to_string());
    s.ca_cert = Some(ca.pem().to_string());
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert!(d.tls.as_ref().unwrap().verified);
    assert_eq!(d.phases.dns_ms, None, "the name is never resolved");
    assert_eq!(d.remote.as_deref(), Some(srv.addr().to_string().as_str()));
    let seen = &srv.seen()[0];
    assert_eq!(seen.host.as_deref(), Some("www.vantage.example"));
    assert_eq!(seen.sni.as_deref(), Some("www.vantage.example"));
    assert_eq!(
        d.headers.get("x-seen-sni").map(String::as_str),
        Some("www.vantage.example")
    );
}

#[tokio::test]
async fn connect_to_without_a_port_uses_the_urls_port() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&format!(
        "http://www.vantage.example:{}/whoami",
        srv.addr().port()
    ));
    s.connect_to = Some("127.0.0.1".into());
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(
        srv.seen()[0].host,
        Some(format!("www.vantage.example:{}", srv.addr().port()))
    );
}

#[tokio::test]
async fn the_policy_refuses_loopback_unless_allowed() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/", false));
    s.allow_private = false;
    let r = measure(s.clone()).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    let e = r.error.unwrap();
    assert!(
        e.starts_with("refusing to connect to 127.0.0.1: 127.0.0.1 is a loopback address"),
        "{e}"
    );
    assert!(e.contains("--allow-private"), "{e}");
    // A name that resolves to loopback is refused on the address it resolves to.
    let mut by_name = s.clone();
    by_name.url = format!("http://localhost:{}/", srv.addr().port());
    let r = measure(by_name).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    assert!(detail(&r).phases.dns_ms.is_some(), "refused after DNS");
    // So is a public-looking URL sent to loopback with connect-to.
    let mut split = s.clone();
    split.url = "http://www.vantage.example/".into();
    split.connect_to = Some(srv.addr().to_string());
    let r = measure(split).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    // The spec allows it but the host does not.
    s.allow_private = true;
    let strict = Context {
        allow_private: false,
        ..Context::default()
    };
    let r = run(&MeasurementSpec::Http(s), &strict).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    assert!(r.error.unwrap().contains("this agent does not permit"));
    assert!(srv.seen().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn an_ipv6_server_is_reached_over_ipv6() {
    let ca = TestCa::new();
    let cert = ca.leaf(&["::1"], Validity::Current);
    let srv = HttpServer::tls(true, &cert).await.unwrap();
    assert!(srv.addr().is_ipv6());
    let mut s = spec(&format!("https://[::1]:{}/", srv.addr().port()));
    s.ca_cert = Some(ca.pem().to_string());
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let d = detail(&r);
    assert_eq!(d.remote, Some(format!("[::1]:{}", srv.addr().port())));
    assert!(d.tls.as_ref().unwrap().verified);
    assert_eq!(d.tls.as_ref().unwrap().chain[0].sans, ["::1"]);
}

#[tokio::test]
async fn the_body_is_downloaded_when_asked_up_to_the_cap() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/bytes/300000", false));
    s.body = true;
    let r = measure(s.clone()).await;
    let d = detail(&r);
    assert_eq!(d.body_bytes, 300_000);
    assert!(!d.body_truncated);
    assert!(d.phases.download_ms.is_some());
    let tp = d.throughput_bps.unwrap();
    let expect = 300_000.0 / (d.phases.download_ms.unwrap() / 1000.0);
    assert!((tp - expect).abs() / expect < 1e-9, "{tp} vs {expect}");
    s.body_limit = 1000;
    let r = measure(s).await;
    let d = detail(&r);
    assert_eq!(d.body_bytes, 1000);
    assert!(d.body_truncated);
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = measure(spec(&format!("http://127.0.0.1:{port}/"))).await;
    assert_eq!(r.outcome, Outcome::Refused);
    assert_eq!(
        r.error.as_deref(),
        Some(
            format!("TCP connect to 127.0.0.1:{port} was refused (nothing listens on port {port})")
                .as_str()
        )
    );
}

#[tokio::test]
async fn a_full_accept_queue_makes_the_tcp_connect_time_out() {
    // A listener with backlog 0 whose queue is already full drops further SYNs, so the
    // handshake never completes: the TCP phase times out.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(c);
        }
    }
    let mut s = spec(&url(addr, "/", false));
    s.timeout = 0.5;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("TCP connect to {addr} timed out after 0.5 s").as_str())
    );
}

#[tokio::test]
async fn a_silent_tls_server_makes_the_handshake_time_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut s = spec(&url(addr, "/", true));
    s.timeout = 0.3;
    let r = measure(s).await;
    hold.abort();
    assert_eq!(r.outcome, Outcome::Timeout, "{:?}", r.error);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("TLS handshake with {addr} timed out after 0.3 s").as_str())
    );
    assert!(detail(&r).phases.connect_ms.is_some());
}

#[tokio::test]
async fn a_slow_server_makes_the_wait_for_headers_time_out() {
    let srv = HttpServer::plain(false).await.unwrap();
    let mut s = spec(&url(srv.addr(), "/slow/3000", false));
    s.timeout = 0.3;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Timeout);
    assert_eq!(
        r.error.as_deref(),
        Some(
            format!(
                "waiting for the response from {} timed out after 0.3 s",
                srv.addr()
            )
            .as_str()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_time_to_first_byte_matches_the_server_delay_and_curl() {
    let Some(_) = vantage_testnet::need_binary(
        "exclusive_time_to_first_byte_matches_the_server_delay_and_curl",
        "curl",
    ) else {
        return;
    };
    // The server sleeps 150 ms before sending the headers. On loopback the rest of the TTFB is
    // well under a millisecond, so our TTFB must be 150 ms plus scheduling noise: 60 ms of slack
    // covers a busy two-core machine (the test runs alone). curl measures the same server in
    // the same test; the medians of three runs must agree within 25 ms.
    const DELAY: f64 = 150.0;
    let ca = TestCa::new();
    let cert = ca.leaf(&["127.0.0.1"], Validity::Current);
    let dir = tempfile::tempdir().unwrap();
    let cafile = dir.path().join("ca.pem");
    std::fs::write(&cafile, ca.pem()).unwrap();
    let plain = HttpServer::plain(false).await.unwrap();
    let tls = HttpServer::tls(false, &cert).await.unwrap();
    for (srv, https) in [(&plain, false), (&tls, true)] {
        let target = url(srv.addr(), &format!("/slow/{DELAY}"), https);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let mut s = spec(&target);
            s.ca_cert = Some(ca.pem().to_string());
            let r = measure(s).await;
            assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
            let p = detail(&r).phases;
            ours.push(p.ttfb_ms.unwrap());
            assert!(p.connect_ms.unwrap() < 50.0, "{p:?}");
            if https {
                assert!(p.tls_ms.unwrap() < 200.0, "{p:?}");
            }
            let c = curl_phases(&target, https.then_some(cafile.as_path())).await;
            assert!(c.connect_ms < 50.0 && c.tls_ms < 200.0, "{c:?}");
            theirs.push(c.ttfb_ms);
        }
        let (ours, theirs) = (quantile(&ours, 0.5), quantile(&theirs, 0.5));
        println!("{target}: TTFB median of 3: vantage {ours:.2} ms, curl {theirs:.2} ms");
        assert!(
            (DELAY..DELAY + 60.0).contains(&ours),
            "{target}: our TTFB {ours:.1} ms for a {DELAY} ms delay"
        );
        assert!(
            (DELAY..DELAY + 60.0).contains(&theirs),
            "{target}: curl's TTFB {theirs:.1} ms"
        );
        assert!(
            (ours - theirs).abs() < 25.0,
            "{target}: ours {ours:.1} ms, curl {theirs:.1} ms"
        );
    }
}

#[test]
fn a_redirect_to_loopback_is_refused_by_the_policy() {
    // The first hop must be a global address, which loopback is not: a test namespace answers
    // for 198.20.0.0/24 (AnyIP), a globally routed range that never leaves the namespace.
    if !vantage_testnet::privileged("a_redirect_to_loopback_is_refused_by_the_policy") {
        return;
    }
    let net = vantage_testnet::Topology::builder()
        .host("web")
        .anyip("web", "198.20.0.0/24")
        .build()
        .expect("the namespace builds");
    net.ns("web").block_on(async {
        let global = HttpServer::plain_at("198.20.0.7".parse().unwrap())
            .await
            .unwrap();
        let inner = HttpServer::plain(false).await.unwrap();
        let target = format!(
            "http://{}/goto?http://{}/secret",
            global.addr(),
            inner.addr()
        );
        let mut s = HttpSpec::new(&target);
        s.follow_redirects = true;
        let r = measure(s.clone()).await;
        assert_eq!(r.outcome, Outcome::BlockedByPolicy, "{:?}", r.error);
        let e = r.error.clone().unwrap();
        assert!(
            e.starts_with("refusing to connect to 127.0.0.1: 127.0.0.1 is a loopback address"),
            "{e}"
        );
        let d = detail(&r);
        assert_eq!(d.redirects.len(), 1);
        assert_eq!(d.redirects[0].status, 302);
        assert_eq!(global.seen().len(), 1);
        assert!(
            inner.seen().is_empty(),
            "the redirect target was never contacted"
        );
        // Allowed, the same chain reaches the inner server.
        s.allow_private = true;
        let r = measure(s).await;
        assert_eq!(r.outcome, Outcome::HttpStatus, "{:?}", r.error);
        assert_eq!(detail(&r).status, Some(404));
        assert_eq!(inner.seen()[0].path, "/secret");
    });
}
