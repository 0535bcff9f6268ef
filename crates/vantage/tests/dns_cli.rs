//! `vantage dns` end to end: the binary against a DNS server the test starts on loopback.
//! Exit codes (0 NOERROR, 1 a failed answer, 2 bad input or policy), dig-style text and JSON.

mod common;

use common::vantage;
use std::net::SocketAddr;

use vantage_testnet::dns_server::{Behaviour, DnsServer};

fn at(addr: SocketAddr) -> String {
    format!("@{addr}")
}

#[tokio::test]
async fn an_answer_prints_like_dig_and_exits_0() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = vantage(&[
        "dns",
        "--allow-private",
        &at(srv.addr()),
        "www.vantage.test",
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("status: NOERROR"), "{}", r.stdout);
    assert!(r.stdout.contains(";; flags: qr aa rd;"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("www.vantage.test.\t300\tIN\tA\t192.0.2.10"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!(";; SERVER: 127.0.0.1#{}", srv.addr().port())),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn a_positional_type_and_the_port_flag_work_like_dig() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let port = srv.addr().port().to_string();
    let r = vantage(&[
        "dns",
        "--allow-private",
        "vantage.test",
        "MX",
        "-p",
        &port,
        "@127.0.0.1",
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("MX\t10 mx1.vantage.test."),
        "{}",
        r.stdout
    );
    assert_eq!(srv.seen()[0].qtype, 15);
}

#[tokio::test]
async fn nxdomain_exits_1_with_the_sentence() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = vantage(&[
        "dns",
        "--allow-private",
        &at(srv.addr()),
        "nope.vantage.test",
    ])
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("status: NXDOMAIN"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("answered NXDOMAIN: nope.vantage.test. does not exist"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn a_silent_server_exits_1_with_the_timeout_sentence() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let r = vantage(&[
        "dns",
        "--allow-private",
        "-W",
        "0.2",
        "--retries",
        "1",
        &at(addr),
        "www.vantage.test",
    ])
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "DNS lookup timed out: {addr} did not answer within 0.2 s (2 attempts)"
        )),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn json_output_is_one_envelope() {
    let srv = DnsServer::start(true, Behaviour::Answer).await.unwrap();
    let r = vantage(&[
        "dns",
        "--json",
        "--allow-private",
        "-t",
        "AAAA",
        &at(srv.addr()),
        "www.vantage.test",
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["type"], "dns");
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["detail"]["type"], "dns");
    assert_eq!(v["detail"]["qtype"], "AAAA");
    let server = &v["detail"]["servers"][0];
    assert_eq!(server["server"], srv.addr().to_string());
    assert_eq!(server["answers"][0]["data"], "2001:db8::10");
    assert!(server["rtt_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn a_loopback_server_needs_allow_private() {
    let srv = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let r = vantage(&["dns", &at(srv.addr()), "www.vantage.test"]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is a loopback address"), "{}", r.stderr);
    assert!(r.stderr.contains("--allow-private"), "{}", r.stderr);
    assert!(srv.seen().is_empty());
}

#[tokio::test]
async fn bad_input_exits_2_with_a_sentence() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["dns", "-t", "AAAAA", "example.com"],
            "invalid -t/--type: 'AAAAA' is not a DNS record type",
        ),
        (
            &["dns", "example.com", "BOGUS"],
            "invalid -t/--type: 'BOGUS' is not a DNS record type",
        ),
        (
            &["dns", "example.com", "A", "extra"],
            "unexpected argument 'extra'",
        ),
        (&["dns", "@192.0.2.53"], "a NAME to query is required"),
        (
            &["dns", "example.com", "@192.0.2.53:0"],
            "invalid @SERVER: '192.0.2.53:0' has port '0'",
        ),
        (&["dns", "-W", "0", "example.com"], "invalid -W/--timeout"),
    ];
    for (args, want) in cases {
        let r = vantage(args).await;
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}
