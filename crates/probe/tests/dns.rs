//! DNS measurements against servers the tests start on loopback: an authoritative server for a
//! test zone (answers cross-checked with `dig` on the same server), a silent server, a closed
//! port, truncation, NXDOMAIN, SERVFAIL, REFUSED, IPv6 and the destination policy.

use std::time::Duration;

use vantage_probe::{Context, run};
use vantage_proto::{
    Detail, DnsDetail, DnsRecord, DnsServerResult, DnsSpec, DnsTransport, Family,
    MeasurementResult, MeasurementSpec, Outcome,
};
use vantage_testnet::dns_server::{BIG_COUNT, Behaviour, DnsServer};

fn spec(name: &str, qtype: &str, server: &str) -> DnsSpec {
    let mut s = DnsSpec::new(name);
    s.qtype = qtype.into();
    s.servers = vec![server.into()];
    s.allow_private = true;
    s.timeout = 2.0;
    s
}

async fn measure(s: DnsSpec) -> MeasurementResult {
    run(&MeasurementSpec::Dns(s), &Context::default()).await
}

fn detail(r: &MeasurementResult) -> &DnsDetail {
    match &r.detail {
        Some(Detail::Dns(d)) => d,
        other => panic!("no DNS detail: {other:?} ({:?})", r.error),
    }
}

fn only_server(r: &MeasurementResult) -> &DnsServerResult {
    let d = detail(r);
    assert_eq!(d.servers.len(), 1, "{d:?}");
    &d.servers[0]
}

/// What dig reports: status and the answer and authority sections.
#[derive(Debug, Default)]
struct Dig {
    status: String,
    answer: Vec<DnsRecord>,
    authority: Vec<DnsRecord>,
}

fn parse_record(line: &str) -> DnsRecord {
    // NAME TTL CLASS TYPE DATA…, separated by tabs or spaces; DATA keeps its inner spaces.
    let mut rest = line.trim();
    let mut field = || {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let f = rest[..end].to_string();
        rest = rest[end..].trim_start();
        f
    };
    let (name, ttl, class, rtype) = (field(), field(), field(), field());
    DnsRecord {
        name,
        ttl: ttl.parse().expect("dig TTL"),
        class,
        rtype,
        data: rest.to_string(),
    }
}

async fn dig(server: std::net::SocketAddr, name: &str, qtype: &str) -> Dig {
    // Asynchronous, so the server tasks on this test's runtime keep answering meanwhile.
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args([
            "+noall",
            "+comments",
            "+answer",
            "+authority",
            "+tries=1",
            "+time=2",
        ])
        .args([name, qtype])
        .output()
        .await
        .expect("dig runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut d = Dig::default();
    let mut section = "";
    for line in text.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or_default().to_string();
        } else if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
        } else if line.starts_with(';') || line.trim().is_empty() {
            if line.starts_with(";;") {
                section = "";
            }
        } else if section == "answer" {
            d.answer.push(parse_record(line));
        } else if section == "authority" {
            d.authority.push(parse_record(line));
        }
    }
    assert!(!d.status.is_empty(), "dig said:\n{text}");
    d
}

#[tokio::test]
async fn answers_match_dig_on_the_same_server() {
    let Some(_) = vantage_testnet::need_binary("answers_match_dig_on_the_same_server", "dig")
    else {
        return;
    };
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let addr = srv.addr().to_string();
    let cases = [
        ("www.vantage.test", "A"),
        ("www.vantage.test", "AAAA"),
        ("alias.vantage.test", "A"),
        ("vantage.test", "MX"),
        ("vantage.test", "SOA"),
        ("vantage.test", "NS"),
        ("txt.vantage.test", "TXT"),
        ("generic.vantage.test", "TYPE65534"),
        ("big.vantage.test", "A"),
        ("www.vantage.test", "MX"),
        ("nope.vantage.test", "A"),
    ];
    for (name, qtype) in cases {
        let r = measure(spec(name, qtype, &addr)).await;
        let ours = only_server(&r);
        let theirs = dig(srv.addr(), name, qtype).await;
        let what = format!("{name} {qtype}");
        assert_eq!(
            ours.rcode.as_deref(),
            Some(theirs.status.as_str()),
            "{what}"
        );
        assert_eq!(ours.answers, theirs.answer, "{what}: answer section");
        assert_eq!(
            ours.authority, theirs.authority,
            "{what}: authority section"
        );
        assert!(ours.rtt_ms.is_some_and(|v| v > 0.0), "{what}");
        let text = ours.text.as_deref().unwrap_or_default();
        assert!(
            text.contains(&format!("status: {}", theirs.status)),
            "{what}: {text}"
        );
    }
    // The cases really covered what they claim.
    let big = measure(spec("big.vantage.test", "A", &addr)).await;
    assert_eq!(only_server(&big).answers.len(), usize::from(BIG_COUNT));
}

#[tokio::test]
async fn a_name_that_exists_is_ok_with_its_records_and_flags() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = measure(spec("www.vantage.test", "A", &srv.addr().to_string())).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.error, None);
    let s = only_server(&r);
    assert_eq!(s.server, srv.addr().to_string());
    assert_eq!(s.transport, DnsTransport::Udp);
    assert!(!s.tcp_retry);
    assert_eq!(s.attempts, 1);
    assert_eq!(s.flags, ["qr", "aa", "rd"]);
    let data: Vec<&str> = s.answers.iter().map(|a| a.data.as_str()).collect();
    assert_eq!(data, ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(s.answers[0].name, "www.vantage.test.");
    assert_eq!(s.answers[0].ttl, 300);
    // Message size: header 12 + question (18 + 4) + two A records (2 + 10 + 4 each with a
    // compressed owner name).
    assert_eq!(s.size, Some(12 + 22 + 2 * 16));
    let seen = srv.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].recursion_desired);
    assert_eq!(seen[0].edns_size, None);
}

#[tokio::test]
async fn nodata_is_ok_with_the_soa_in_authority() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = measure(spec("www.vantage.test", "MX", &srv.addr().to_string())).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let s = only_server(&r);
    assert!(s.answers.is_empty());
    assert_eq!(s.authority.len(), 1);
    assert_eq!(s.authority[0].rtype, "SOA");
}

#[tokio::test]
async fn nxdomain_is_a_dns_failure_that_says_so() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = measure(spec("nope.vantage.test", "A", &srv.addr().to_string())).await;
    assert_eq!(r.outcome, Outcome::DnsFailure);
    let s = only_server(&r);
    assert_eq!(s.rcode.as_deref(), Some("NXDOMAIN"));
    let e = r.error.as_deref().unwrap();
    assert_eq!(
        e,
        format!(
            "DNS lookup failed: {} answered NXDOMAIN: nope.vantage.test. does not exist",
            srv.addr()
        )
    );
    assert_eq!(s.error.as_deref(), Some(e));
}

#[tokio::test]
async fn servfail_is_a_dns_failure_that_says_so() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = measure(spec("servfail.vantage.test", "A", &srv.addr().to_string())).await;
    assert_eq!(r.outcome, Outcome::DnsFailure);
    assert_eq!(only_server(&r).rcode.as_deref(), Some("SERVFAIL"));
    assert!(r.error.unwrap().contains("answered SERVFAIL"));
}

#[tokio::test]
async fn refused_answers_are_refused() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    // Outside the server's zone.
    let r = measure(spec("www.example.com", "A", &srv.addr().to_string())).await;
    assert_eq!(r.outcome, Outcome::Refused);
    assert_eq!(only_server(&r).rcode.as_deref(), Some("REFUSED"));
    let e = r.error.unwrap();
    assert!(e.starts_with("DNS lookup refused: "), "{e}");
    assert!(e.contains("answered REFUSED"), "{e}");
}

#[tokio::test]
async fn a_silent_server_times_out_after_every_attempt() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let mut s = spec("www.vantage.test", "A", &addr.to_string());
    s.timeout = 0.3;
    s.retries = 1;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Timeout);
    assert_eq!(
        r.error.as_deref(),
        Some(
            format!("DNS lookup timed out: {addr} did not answer within 0.3 s (2 attempts)")
                .as_str()
        )
    );
    let srv = only_server(&r);
    assert_eq!(srv.attempts, 2);
    assert_eq!(srv.rtt_ms, None);
    // Two attempts of 0.3 s each really were waited for.
    assert!(r.duration_ms >= 600.0, "{}", r.duration_ms);
    // Both queries reached the socket.
    let mut buf = [0u8; 512];
    for _ in 0..2 {
        let n = tokio::time::timeout(Duration::from_secs(1), silent.recv(&mut buf))
            .await
            .expect("query arrived")
            .unwrap();
        assert!(n > 12);
    }
}

#[tokio::test]
async fn a_closed_udp_port_is_refused_at_once() {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut s = spec("www.vantage.test", "A", &format!("127.0.0.1:{port}"));
    s.timeout = 5.0;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Refused, "{:?}", r.error);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("ICMP port unreachable"),
        "{:?}",
        r.error
    );
    assert!(r.duration_ms < 1000.0, "{}", r.duration_ms);
}

#[tokio::test]
async fn a_truncated_udp_answer_is_retried_over_tcp() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = measure(spec("big.vantage.test", "A", &srv.addr().to_string())).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let s = only_server(&r);
    assert!(s.tcp_retry);
    assert_eq!(s.transport, DnsTransport::Tcp);
    assert_eq!(s.attempts, 2);
    assert!(s.connect_ms.is_some());
    assert!(!s.flags.contains(&"tc".to_string()));
    assert_eq!(s.answers.len(), usize::from(BIG_COUNT));
    assert!(s.size.unwrap() > 512);
    let transports: Vec<&str> = srv.seen().iter().map(|q| q.transport).collect();
    assert_eq!(transports, ["udp", "tcp"]);
    assert!(!r.quality.notes.is_empty());
    let text = s.text.as_deref().unwrap();
    assert!(
        text.starts_with(";; Truncated, retrying in TCP mode."),
        "{text}"
    );
    // With a large enough EDNS buffer the same answer fits in UDP.
    let mut big_buffer = spec("big.vantage.test", "A", &srv.addr().to_string());
    big_buffer.edns_size = Some(4096);
    let r = measure(big_buffer).await;
    let s = only_server(&r);
    assert!(!s.tcp_retry);
    assert_eq!(s.transport, DnsTransport::Udp);
    assert_eq!(s.answers.len(), usize::from(BIG_COUNT));
}

#[tokio::test]
async fn a_server_that_always_truncates_is_answered_over_tcp() {
    let srv = DnsServer::start(false, Behaviour::TruncateUdp)
        .await
        .unwrap();
    let r = measure(spec("www.vantage.test", "A", &srv.addr().to_string())).await;
    let s = only_server(&r);
    assert!(s.tcp_retry);
    assert_eq!(s.answers.len(), 2);
}

#[tokio::test]
async fn tcp_only_queries_use_tcp_and_time_the_handshake() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let mut s = spec("www.vantage.test", "AAAA", &srv.addr().to_string());
    s.transport = DnsTransport::Tcp;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let s = only_server(&r);
    assert_eq!(s.transport, DnsTransport::Tcp);
    assert!(!s.tcp_retry);
    assert!(s.connect_ms.is_some());
    assert_eq!(s.answers[0].data, "2001:db8::10");
    assert_eq!(srv.seen()[0].transport, "tcp");
    assert!(s.text.as_deref().unwrap().contains("(TCP)"));
}

#[tokio::test]
async fn flags_and_edns_options_reach_the_server() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let mut s = spec("www.vantage.test", "A", &srv.addr().to_string());
    s.recursion = false;
    s.dnssec = true;
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok);
    let mut s = spec("www.vantage.test", "A", &srv.addr().to_string());
    s.edns_size = Some(4000);
    measure(s).await;
    let seen = srv.seen();
    assert!(!seen[0].recursion_desired);
    assert!(seen[0].dnssec_ok);
    assert_eq!(seen[0].edns_size, Some(1232));
    assert!(seen[1].recursion_desired);
    assert!(!seen[1].dnssec_ok);
    assert_eq!(seen[1].edns_size, Some(4000));
    let text = only_server(&r).text.clone().unwrap();
    assert!(
        text.contains("; EDNS: version: 0, flags: do; udp: 1232"),
        "{text}"
    );
}

#[tokio::test]
async fn an_ipv6_server_is_asked_over_ipv6() {
    let srv = DnsServer::start(true, Behaviour::Answer).await.unwrap();
    let addr = srv.addr();
    assert!(addr.is_ipv6());
    let r = measure(spec("www.vantage.test", "AAAA", &addr.to_string())).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    let s = only_server(&r);
    assert_eq!(s.server, format!("[::1]:{}", addr.port()));
    assert_eq!(s.answers[0].data, "2001:db8::10");
}

#[tokio::test]
async fn a_server_given_by_name_is_resolved_first() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let mut s = spec(
        "www.vantage.test",
        "A",
        &format!("localhost:{}", srv.addr().port()),
    );
    s.family = Some(Family::Ipv4);
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(only_server(&r).server, srv.addr().to_string());
}

#[tokio::test]
async fn several_servers_are_asked_and_each_keeps_its_outcome() {
    let good = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let refusing = DnsServer::start(false, Behaviour::RefuseAll).await.unwrap();
    let mut s = spec("www.vantage.test", "A", &good.addr().to_string());
    s.servers.push(refusing.addr().to_string());
    let r = measure(s).await;
    let d = detail(&r);
    assert_eq!(d.servers.len(), 2);
    assert_eq!(d.servers[0].outcome, Outcome::Ok);
    assert_eq!(d.servers[1].outcome, Outcome::Refused);
    assert_eq!(r.outcome, Outcome::Refused);
    assert!(r.error.unwrap().contains(&refusing.addr().to_string()));
}

#[tokio::test]
async fn loopback_servers_are_refused_by_policy_unless_allowed() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let mut s = spec("www.vantage.test", "A", &srv.addr().to_string());
    s.allow_private = false;
    let r = measure(s.clone()).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    let e = r.error.unwrap();
    assert!(e.contains("127.0.0.1 is a loopback address"), "{e}");
    assert!(e.contains("--allow-private"), "{e}");
    // Allowed by the spec but not by the host.
    s.allow_private = true;
    let strict = Context {
        allow_private: false,
        ..Context::default()
    };
    let r = run(&MeasurementSpec::Dns(s.clone()), &strict).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    // A name resolving to loopback is refused too: the check is on the address.
    s.allow_private = false;
    s.servers = vec![format!("localhost:{}", srv.addr().port())];
    let r = measure(s).await;
    assert_eq!(r.outcome, Outcome::BlockedByPolicy);
    // Nothing reached the server.
    assert!(srv.seen().is_empty());
}

#[tokio::test]
async fn exclusive_a_slow_answer_is_timed_and_a_late_one_still_counts() {
    // The server sleeps 150 ms before answering. The RTT must cover the sleep and little more:
    // loopback adds well under a millisecond; 60 ms of slack absorbs scheduling on a busy
    // two-core machine (the test runs alone).
    let srv = DnsServer::start(false, Behaviour::Delay(Duration::from_millis(150)))
        .await
        .unwrap();
    let r = measure(spec("www.vantage.test", "A", &srv.addr().to_string())).await;
    let rtt = only_server(&r).rtt_ms.unwrap();
    assert!((150.0..210.0).contains(&rtt), "rtt {rtt} ms");
    // With a 100 ms timeout the first attempt gives up, the retry goes out at ~100 ms, and the
    // answer to the first attempt arrives at ~150 ms: it is accepted and timed against the
    // first attempt, not the second.
    let mut s = spec("www.vantage.test", "A", &srv.addr().to_string());
    s.timeout = 0.1;
    s.retries = 2;
    let r = measure(s).await;
    let a = only_server(&r);
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(a.attempts, 2);
    let rtt = a.rtt_ms.unwrap();
    assert!((150.0..210.0).contains(&rtt), "rtt {rtt} ms");
}
