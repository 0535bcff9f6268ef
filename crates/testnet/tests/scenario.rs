//! A TOML scenario builds the same network as the same topology written in code.

use vantage_testnet::{Impairment, Link, Topology, privileged};

const CHAIN: &str = include_str!("../scenarios/chain.toml");

/// What a node looks like from inside: global addresses per interface, routes, key sysctls.
fn fingerprint(net: &Topology, node: &str) -> String {
    let ns = net.ns(node);
    let addrs = ns.ip(&["-br", "addr", "show", "scope", "global"]).unwrap();
    // "eth0@if3   UP   10.1.1.1/24 …": drop the peer index, which depends on creation order
    // across namespaces.
    let addrs: Vec<String> = addrs
        .lines()
        .map(|l| {
            let mut words: Vec<&str> = l.split_whitespace().collect();
            if let Some(first) = words.first_mut() {
                *first = first.split('@').next().unwrap_or(first);
            }
            words.join(" ")
        })
        .collect();
    let mut out = addrs.join("\n") + "\n";
    for args in [
        &["-4", "route"][..],
        &["-6", "route", "show", "table", "all"][..],
    ] {
        // Link-local addresses derive from random MAC addresses: leave them out.
        for line in ns.ip(args).unwrap().lines() {
            if !line.starts_with("local fe80:") {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for key in [
        "net.ipv4.ip_forward",
        "net.ipv6.conf.all.forwarding",
        "net.ipv4.ping_group_range",
    ] {
        out.push_str(&format!("{key}={}\n", ns.sysctl(key).unwrap()));
    }
    out
}

#[test]
fn a_toml_scenario_builds_the_same_network_as_code() {
    if !privileged("a_toml_scenario_builds_the_same_network_as_code") {
        return;
    }
    let from_toml = Topology::from_toml(CHAIN).unwrap();
    let from_code = Topology::builder()
        .host("client")
        .router("r1")
        .router("r2")
        .host("server")
        .allow_unprivileged_ping("client")
        .anyip("server", "10.200.0.0/16")
        .anyip("server", "fd00:200::/64")
        .link("client", "r1", Link::v4("10.1.1.0/24").v6("fd00:1:1::/64"))
        .link("r1", "r2", Link::v4("10.1.2.0/24").v6("fd00:1:2::/64"))
        .link(
            "r2",
            "server",
            Link::v4("10.1.3.0/24")
                .v6("fd00:1:3::/64")
                .impair(Impairment::delay_ms(5.0).jitter_ms(0.5))
                .impair_ba(Impairment::delay_ms(5.0).jitter_ms(0.5).loss(0.01)),
        )
        .route("client", "192.0.2.0/24", "10.1.1.2")
        .build()
        .unwrap();
    assert_eq!(from_toml.nodes(), from_code.nodes());
    for node in from_code.nodes() {
        assert_eq!(
            fingerprint(&from_toml, node),
            fingerprint(&from_code, node),
            "node {node}"
        );
    }
    assert_eq!(
        from_toml.impairment("server", "r2"),
        from_code.impairment("server", "r2")
    );
    assert_eq!(from_toml.impairment("server", "r2").loss, 0.01);
    // And it works: the client reaches the AnyIP range through both routers and the delay.
    let out = from_toml
        .ns("client")
        .command("ping")
        .args(["-n", "-c", "2", "-W", "2", "fd00:200::77"])
        .output()
        .unwrap();
    let p = vantage_testnet::tools::parse_ping(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(p.received >= 1, "{p:?}");
    assert!(p.rtts().iter().all(|&r| r >= 9.0), "{p:?}");
}
