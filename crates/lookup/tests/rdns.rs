//! Reverse DNS against a fake DNS server on loopback: names, several names, IPv6, NXDOMAIN,
//! silence; order kept under concurrency; answers and negative answers cached for their TTL and
//! failures not cached — counted by the queries the server actually received.

mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use support::FakeDns;
use vantage_lookup::rdns::{PtrStatus, RdnsOptions, ReverseDns};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn opts() -> RdnsOptions {
    RdnsOptions {
        timeout: Duration::from_millis(300),
        attempts: 1,
        ..RdnsOptions::default()
    }
}

#[tokio::test]
async fn names_failures_and_the_cache() {
    let names = HashMap::from([
        (ip("192.0.2.1"), vec!["host1.example.test".to_string()]),
        (
            ip("192.0.2.2"),
            vec!["a.example.test".to_string(), "b.example.test".to_string()],
        ),
        (ip("2001:db8::1"), vec!["v6.example.test".to_string()]),
    ]);
    let dns = FakeDns::start(names, vec![ip("192.0.2.99")], 300, 60).await;
    let r = ReverseDns::with_servers(&[dns.addr], opts()).unwrap();
    let ips = [
        ip("192.0.2.1"),
        ip("2001:db8::1"),
        ip("192.0.2.2"),
        ip("192.0.2.3"),
        ip("192.0.2.99"),
    ];
    let started = Instant::now();
    let out = r.lookup_many(&ips).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let got: Vec<(IpAddr, PtrStatus, Vec<String>)> = out
        .iter()
        .map(|a| (a.ip, a.status, a.names.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ip("192.0.2.1"),
                PtrStatus::Ok,
                vec!["host1.example.test".to_string()]
            ),
            (
                ip("2001:db8::1"),
                PtrStatus::Ok,
                vec!["v6.example.test".to_string()]
            ),
            (
                ip("192.0.2.2"),
                PtrStatus::Ok,
                vec!["a.example.test".to_string(), "b.example.test".to_string()]
            ),
            (ip("192.0.2.3"), PtrStatus::NoName, vec![]),
            (ip("192.0.2.99"), PtrStatus::Timeout, vec![]),
        ]
    );
    assert!(out.iter().all(|a| !a.cached));
    let timeout = out[4].error.as_deref().unwrap();
    assert!(timeout.contains("no answer for 192.0.2.99"), "{timeout}");

    // Answers and NXDOMAIN come from the cache now; the timeout is asked again.
    let asked = dns.queries();
    let again = r.lookup_many(&ips[..4]).await;
    assert!(again.iter().all(|a| a.cached), "{again:?}");
    assert_eq!(again[2].names.len(), 2);
    assert_eq!(
        dns.queries(),
        asked,
        "cached answers must not reach the server"
    );
    let retry = r.lookup(ip("192.0.2.99")).await;
    assert!(!retry.cached);
    assert!(dns.queries() > asked);
    assert_eq!(r.cache_len(), 4);
}

#[tokio::test]
async fn a_zero_negative_ttl_is_not_cached() {
    let dns = FakeDns::start(HashMap::new(), vec![], 300, 0).await;
    let r = ReverseDns::with_servers(&[dns.addr], opts()).unwrap();
    assert_eq!(r.lookup(ip("198.51.100.7")).await.status, PtrStatus::NoName);
    let n = dns.queries();
    let a = r.lookup(ip("198.51.100.7")).await;
    assert!(!a.cached);
    assert!(dns.queries() > n);
}

#[tokio::test]
async fn many_addresses_keep_their_order() {
    let names: HashMap<IpAddr, Vec<String>> = (0..=255u8)
        .map(|i| {
            (
                IpAddr::from([198, 51, 100, i]),
                vec![format!("h{i}.example.test")],
            )
        })
        .collect();
    let dns = FakeDns::start(names, vec![], 300, 60).await;
    let r = ReverseDns::with_servers(&[dns.addr], opts()).unwrap();
    let ips: Vec<IpAddr> = (0..=255u8)
        .map(|i| IpAddr::from([198, 51, 100, i]))
        .collect();
    let out = r.lookup_many(&ips).await;
    for (i, a) in out.iter().enumerate() {
        assert_eq!(a.ip, ips[i]);
        assert_eq!(a.names, [format!("h{i}.example.test")], "{a:?}");
    }
}
