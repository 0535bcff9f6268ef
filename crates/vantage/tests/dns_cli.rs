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

/// `/etc/netns/NAME/`, whose files `ip netns exec NAME` mounts over `/etc`; removed on drop.
struct NetnsEtc(std::path::PathBuf);

impl NetnsEtc {
    fn new(ns: &str, resolv_conf: &str) -> NetnsEtc {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), resolv_conf).unwrap();
        NetnsEtc(dir)
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // /etc/netns itself too, when nothing else uses it.
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn the_system_resolvers_answer_when_no_server_is_given() {
    // The system's resolver configuration is only swappable inside a namespace: `ip netns exec`
    // mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf, and the test zone's server
    // listens on 127.0.0.1:53 of that namespace (the port resolv.conf implies). Nothing leaves
    // the namespace. The same resolver serves `vantage http`'s name resolution (getaddrinfo).
    if !vantage_testnet::privileged("the_system_resolvers_answer_when_no_server_is_given") {
        return;
    }
    let net = vantage_testnet::Topology::builder()
        .host("h")
        .build()
        .expect("the namespace builds");
    let ns = net.ns("h");
    let _etc = NetnsEtc::new(ns.name(), "nameserver 127.0.0.1\n");
    let bin = env!("CARGO_BIN_EXE_vantage");
    ns.block_on(async {
        let srv = DnsServer::start_at("127.0.0.1:53".parse().unwrap(), Behaviour::Answer)
            .await
            .unwrap();
        let run = |args: &[&str]| {
            let mut c = ns.command(bin);
            c.args(args);
            tokio::process::Command::from(c).output()
        };
        // No @SERVER: resolv.conf's server is asked, and it is exempt from the policy.
        let out = run(&["dns", "www.vantage.test"]).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("www.vantage.test.\t300\tIN\tA\t192.0.2.10"),
            "{stdout}"
        );
        assert!(
            stdout.contains(";; SERVER: 127.0.0.1#53(127.0.0.1) (UDP)"),
            "{stdout}"
        );
        let queried = srv.seen().len();
        assert_eq!(queried, 1);
        // HTTP resolves through the same resolver: a name that does not exist is a DNS failure
        // (exit 2, unknown host) ...
        let out = run(&["http", "http://nope.vantage.test/"]).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("could not resolve nope.vantage.test"),
            "{stderr}"
        );
        // ... and one that resolves to a documentation address is refused by the policy after
        // DNS, or, when allowed, fails to connect (the namespace has no route anywhere).
        let out = run(&["http", "-4", "http://www.vantage.test/"])
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "refusing to connect to www.vantage.test: 192.0.2.10 is a documentation address"
            ),
            "{stderr}"
        );
        let out = run(&[
            "http",
            "-4",
            "--allow-private",
            "--json",
            "http://www.vantage.test/",
        ])
        .await
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["outcome"], "unreachable", "{v}");
        assert_eq!(v["detail"]["remote"], "192.0.2.10:80");
        assert!(v["detail"]["phases"]["dns_ms"].as_f64().is_some());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            srv.seen().len() > queried,
            "getaddrinfo asked the test server"
        );
    });
}
