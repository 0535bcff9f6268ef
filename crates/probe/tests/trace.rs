//! The trace engine against real routers: network namespaces forwarding packets and answering
//! with the kernel's own ICMP errors. Ground truth is the topology itself (which router sits at
//! which TTL, which link drops what) and the classic tools run over the same path.
//!
//! Linux routers answer a short burst of ICMP errors per destination and then about one per
//! second (`net.ipv4.icmp_ratelimit`, `net.ipv6.icmp.ratelimit`). Tests that are not about rate
//! limiting either stay within the burst (one topology per protocol) or switch the limit off on
//! their routers, and say so.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use vantage_probe::Context;
use vantage_proto::{
    Detail, Family, MeasurementResult, MeasurementSpec, Outcome, TimestampSource, TraceDetail,
    TraceProtocol, TraceSpec,
};
use vantage_testnet::{Impairment, Link, Topology, need_binary, privileged};

/// client — r1 — r2 — … — rN — server, dual stack; link i is 10.40.i.0/24 and fd00:40:i::/64.
fn chain(routers: usize) -> (Topology, Vec<String>) {
    let names: Vec<String> = (1..=routers).map(|i| format!("r{i}")).collect();
    let mut b = Topology::builder().host("client");
    for n in &names {
        b = b.router(n);
    }
    b = b.host("server");
    let mut prev = "client".to_string();
    for (i, n) in names
        .iter()
        .chain(std::iter::once(&"server".to_string()))
        .enumerate()
    {
        b = b.link(
            &prev,
            n,
            Link::v4(&format!("10.40.{}.0/24", i + 1)).v6(&format!("fd00:40:{}::/64", i + 1)),
        );
        prev = n.clone();
    }
    (b.build().expect("chain topology"), names)
}

fn spec(target: IpAddr, protocol: TraceProtocol) -> TraceSpec {
    let mut s = TraceSpec::new(target.to_string());
    s.protocol = protocol;
    s.rdns = false;
    s.timeout = 1.0;
    s
}

fn run_in(net: &Topology, node: &str, spec: TraceSpec) -> (MeasurementResult, TraceDetail) {
    let r = net.ns(node).block_on(async move {
        // As in a long-running agent: the kernel already stamps received packets (a one-shot
        // trace does not wait for that; see the engine).
        vantage_probe::sock::settle_rx_stamps().await;
        vantage_probe::run(&MeasurementSpec::Trace(spec), &Context::default()).await
    });
    let d = match &r.detail {
        Some(Detail::Trace(d)) => d.clone(),
        _ => panic!("no trace detail: {:?} {:?}", r.outcome, r.error),
    };
    (r, d)
}

/// The address each hop answers from: a router's ICMP errors leave through the interface
/// facing the client, with that interface's address.
fn expected_hops(net: &Topology, routers: &[String], family: Family) -> Vec<IpAddr> {
    let mut prev = "client".to_string();
    let mut out = Vec::new();
    for n in routers.iter().chain(std::iter::once(&"server".to_string())) {
        out.push(match family {
            Family::Ipv4 => IpAddr::V4(net.link_v4(n, &prev)),
            Family::Ipv6 => IpAddr::V6(net.link_v6(n, &prev)),
        });
        prev = n.clone();
    }
    out
}

/// Five routers then the server: exactly six hops, each with its one address, every probe
/// answered, the destination at TTL 6, kernel timestamps both ways.
fn five_router_chain(protocol: TraceProtocol, port: Option<u16>) {
    let (net, routers) = chain(5);
    for family in [Family::Ipv4, Family::Ipv6] {
        let want = expected_hops(&net, &routers, family);
        let target = *want.last().unwrap();
        let mut s = spec(target, protocol);
        s.port = port;
        let (r, d) = run_in(&net, "client", s);
        let tag = format!("{protocol:?} {family}");
        assert_eq!(r.outcome, Outcome::Ok, "{tag}: {:?}", r.error);
        assert!(d.reached, "{tag}");
        let got: Vec<Vec<IpAddr>> = d
            .hops
            .iter()
            .map(|h| h.addrs.iter().map(|a| a.ip).collect())
            .collect();
        let want_hops: Vec<Vec<IpAddr>> = want.iter().map(|ip| vec![*ip]).collect();
        assert_eq!(got, want_hops, "{tag}: hop list");
        let ttls: Vec<u8> = d.hops.iter().map(|h| h.ttl).collect();
        assert_eq!(
            ttls,
            vec![1, 2, 3, 4, 5, 6],
            "{tag}: destination answered at TTL 6"
        );
        for h in &d.hops {
            assert_eq!((h.sent, h.received), (3, 3), "{tag}: hop {}", h.ttl);
            let rtt = h.rtt_ms.expect("answered hops have RTTs");
            assert!(rtt.best > 0.0 && rtt.worst < 100.0, "{tag}: {rtt:?}");
        }
        assert_eq!(r.quality.tx_timestamp, TimestampSource::Kernel, "{tag}");
        assert_eq!(r.quality.rx_timestamp, TimestampSource::Kernel, "{tag}");
    }
}

#[test]
fn a_five_router_chain_traces_as_six_hops_with_icmp() {
    if !privileged("a_five_router_chain_traces_as_six_hops_with_icmp") {
        return;
    }
    five_router_chain(TraceProtocol::Icmp, None);
}

#[test]
fn a_five_router_chain_traces_as_six_hops_with_udp() {
    if !privileged("a_five_router_chain_traces_as_six_hops_with_udp") {
        return;
    }
    five_router_chain(TraceProtocol::Udp, None);
}

#[test]
fn a_five_router_chain_traces_as_six_hops_with_tcp_to_a_closed_port() {
    if !privileged("a_five_router_chain_traces_as_six_hops_with_tcp_to_a_closed_port") {
        return;
    }
    // Nothing listens on port 80 of the server: it answers the SYNs with RSTs.
    five_router_chain(TraceProtocol::Tcp, None);
}

#[test]
fn a_tcp_trace_ends_at_an_open_port_with_its_syn_ack() {
    if !privileged("a_tcp_trace_ends_at_an_open_port_with_its_syn_ack") {
        return;
    }
    let (net, routers) = chain(2);
    let v4 = expected_hops(&net, &routers, Family::Ipv4);
    let v6 = expected_hops(&net, &routers, Family::Ipv6);
    let (l4, l6) = net.ns("server").run(|| {
        (
            std::net::TcpListener::bind((v4[2], 0)).unwrap(),
            std::net::TcpListener::bind((v6[2], 0)).unwrap(),
        )
    });
    for (listener, want) in [(&l4, &v4), (&l6, &v6)] {
        let mut s = spec(want[2], TraceProtocol::Tcp);
        s.port = Some(listener.local_addr().unwrap().port());
        let (r, d) = run_in(&net, "client", s);
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        let got: Vec<IpAddr> = d.hops.iter().map(|h| h.addrs[0].ip).collect();
        assert_eq!(&got, want);
    }
    // Half-open: the client's kernel reset every SYN-ACK, so nothing was ever accepted.
    l4.set_nonblocking(true).unwrap();
    assert!(l4.accept().is_err());
}

/// client — r1 — {r2a, r2b} — r3 — server, with r1 splitting traffic for the server over r2a
/// and r2b by a hash of addresses and ports (`fib_multipath_hash_policy = 1`).
fn ecmp() -> Topology {
    let mut b = Topology::builder()
        .host("client")
        .router("r1")
        .router("r2a")
        .router("r2b")
        .router("r3")
        .host("server")
        .link(
            "client",
            "r1",
            Link::v4("10.41.1.0/24").v6("fd00:41:1::/64"),
        )
        .link("r1", "r2a", Link::v4("10.41.2.0/24").v6("fd00:41:2::/64"))
        .link("r1", "r2b", Link::v4("10.41.3.0/24").v6("fd00:41:3::/64"))
        .link("r2a", "r3", Link::v4("10.41.4.0/24").v6("fd00:41:4::/64"))
        .link("r2b", "r3", Link::v4("10.41.5.0/24").v6("fd00:41:5::/64"))
        .link(
            "r3",
            "server",
            Link::v4("10.41.6.0/24").v6("fd00:41:6::/64"),
        )
        .sysctl("r1", "net.ipv4.fib_multipath_hash_policy", "1")
        .sysctl("r1", "net.ipv6.fib_multipath_hash_policy", "1");
    // Many flows per round: the routers' (and the server's port unreachable) ICMP rate limit
    // would hide some of them; rate limits are not what this test is about.
    for r in ["r1", "r2a", "r2b", "r3", "server"] {
        b = b
            .sysctl(r, "net.ipv4.icmp_ratelimit", "0")
            .sysctl(r, "net.ipv6.icmp.ratelimit", "0");
    }
    let net = b.build().expect("ecmp topology");
    let r1 = net.ns("r1");
    r1.ip(&[
        "route",
        "replace",
        "10.41.6.0/24",
        "nexthop",
        "via",
        "10.41.2.2",
        "nexthop",
        "via",
        "10.41.3.2",
    ])
    .expect("IPv4 multipath route");
    r1.ip(&[
        "-6",
        "route",
        "replace",
        "fd00:41:6::/64",
        "nexthop",
        "via",
        "fd00:41:2::2",
        "nexthop",
        "via",
        "fd00:41:3::2",
    ])
    .expect("IPv6 multipath route");
    net
}

#[test]
fn ecmp_shows_both_branches_with_multipath_discovery_and_one_path_per_flow_in_paris_mode() {
    if !privileged(
        "ecmp_shows_both_branches_with_multipath_discovery_and_one_path_per_flow_in_paris_mode",
    ) {
        return;
    }
    let net = ecmp();
    let cases = [
        (TraceProtocol::Udp, Family::Ipv4),
        (TraceProtocol::Udp, Family::Ipv6),
        (TraceProtocol::Tcp, Family::Ipv4),
        (TraceProtocol::Tcp, Family::Ipv6),
    ];
    for (protocol, family) in cases {
        let tag = format!("{protocol:?} {family}");
        let (target, branches): (IpAddr, BTreeSet<IpAddr>) = match family {
            Family::Ipv4 => (
                net.link_v4("server", "r3").into(),
                [
                    net.link_v4("r2a", "r1").into(),
                    net.link_v4("r2b", "r1").into(),
                ]
                .into(),
            ),
            Family::Ipv6 => (
                net.link_v6("server", "r3").into(),
                [
                    net.link_v6("r2a", "r1").into(),
                    net.link_v6("r2b", "r1").into(),
                ]
                .into(),
            ),
        };
        // Multipath discovery: 16 flows, 4 rounds. The chance that 16 flows all hash onto
        // one of two branches is 2 × 2⁻¹⁶.
        let mut s = spec(target, protocol);
        s.flows = 16;
        s.probes = 1;
        s.rounds = 4;
        s.interval = 0.05;
        let (r, d) = run_in(&net, "client", s);
        assert_eq!(r.outcome, Outcome::Ok, "{tag}: {:?}", r.error);
        assert_eq!(d.hops.len(), 4, "{tag}: r1, r2a|r2b, r3, server");
        let split = &d.hops[1];
        let seen: BTreeSet<IpAddr> = split.addrs.iter().map(|a| a.ip).collect();
        assert_eq!(seen, branches, "{tag}: both branches at the split hop");
        // The branches' flows partition the 16 flows.
        let mut all: Vec<u16> = split.addrs.iter().flat_map(|a| a.flows.clone()).collect();
        all.sort();
        assert_eq!(all, (0..16).collect::<Vec<u16>>(), "{tag}: {split:?}");
        // Paris: every flow kept one path through every round, at every hop.
        for hop in &d.hops {
            let mut per_flow: HashMap<u16, BTreeSet<IpAddr>> = HashMap::new();
            for p in &hop.probes {
                if let Some(ip) = p.ip {
                    per_flow.entry(p.flow).or_default().insert(ip);
                }
            }
            assert_eq!(
                per_flow.len(),
                16,
                "{tag}: hop {} answered every flow",
                hop.ttl
            );
            for (flow, ips) in per_flow {
                assert_eq!(
                    ips.len(),
                    1,
                    "{tag}: flow {flow} at hop {}: {ips:?}",
                    hop.ttl
                );
            }
        }

        // Paris with one flow: 10 rounds, always the same branch.
        let mut s = spec(target, protocol);
        s.probes = 1;
        s.rounds = 10;
        s.interval = 0.02;
        let (_, d) = run_in(&net, "client", s);
        let split = &d.hops[1];
        assert_eq!(
            split.addrs.len(),
            1,
            "{tag}: one flow, one branch: {split:?}"
        );
        assert_eq!((split.sent, split.received), (10, 10), "{tag}");
    }
}

#[test]
fn a_router_whose_time_exceeded_is_dropped_is_a_silent_hop_and_the_trace_goes_on() {
    if !privileged("a_router_whose_time_exceeded_is_dropped_is_a_silent_hop_and_the_trace_goes_on")
        || need_binary(
            "a_router_whose_time_exceeded_is_dropped_is_a_silent_hop_and_the_trace_goes_on",
            "nft",
        )
        .is_none()
    {
        return;
    }
    let (net, routers) = chain(3);
    let out = net
        .ns("r2")
        .command("nft")
        .arg(
            "add table inet silent; \
             add chain inet silent out { type filter hook output priority 0; }; \
             add rule inet silent out icmp type time-exceeded drop; \
             add rule inet silent out icmpv6 type time-exceeded drop",
        )
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for protocol in [TraceProtocol::Icmp, TraceProtocol::Udp] {
        for family in [Family::Ipv4, Family::Ipv6] {
            let tag = format!("{protocol:?} {family}");
            let want = expected_hops(&net, &routers, family);
            // Two probes per hop: four per router over the two protocols, within the burst.
            let mut s = spec(want[3], protocol);
            s.timeout = 2.0;
            s.probes = 2;
            let (r, d) = run_in(&net, "client", s);
            assert_eq!(r.outcome, Outcome::Ok, "{tag}: {:?}", r.error);
            // The hops behind it answered, so the silent one was given up after 50 ms (10× their
            // round trip, floored), not after the 2 s timeout.
            assert!(r.duration_ms < 1000.0, "{tag}: took {} ms", r.duration_ms);
            let got: Vec<Option<IpAddr>> = d
                .hops
                .iter()
                .map(|h| h.addrs.first().map(|a| a.ip))
                .collect();
            assert_eq!(
                got,
                vec![Some(want[0]), None, Some(want[2]), Some(want[3])],
                "{tag}"
            );
            assert_eq!((d.hops[1].sent, d.hops[1].received), (2, 0), "{tag}");
            assert_eq!(d.hops[1].loss, 1.0, "{tag}");
        }
    }
}

#[test]
fn loss_on_one_link_shows_at_the_hops_behind_it_within_binomial_bounds() {
    if !privileged("loss_on_one_link_shows_at_the_hops_behind_it_within_binomial_bounds") {
        return;
    }
    const LOSS: f64 = 0.25;
    const ROUNDS: u32 = 200;
    // client — r1 — r2 ~(25 % loss towards r3)~ r3 — server. Rounds come every 20 ms, far
    // faster than routers' default ICMP rate limit allows, so it is off here.
    let mut b = Topology::builder()
        .host("client")
        .router("r1")
        .router("r2")
        .router("r3")
        .host("server")
        .link("client", "r1", Link::v4("10.42.1.0/24"))
        .link("r1", "r2", Link::v4("10.42.2.0/24"))
        .link(
            "r2",
            "r3",
            Link::v4("10.42.3.0/24").impair_ab(Impairment::none().loss(LOSS)),
        )
        .link("r3", "server", Link::v4("10.42.4.0/24"));
    for n in ["r1", "r2", "r3", "server"] {
        b = b.sysctl(n, "net.ipv4.icmp_ratelimit", "0");
    }
    let net = b.build().expect("lossy chain");
    let mut s = spec(net.link_v4("server", "r3").into(), TraceProtocol::Icmp);
    s.probes = 1;
    s.rounds = ROUNDS;
    s.interval = 0.02;
    s.timeout = 0.5;
    let (r, d) = run_in(&net, "client", s);
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(d.rounds, ROUNDS);
    assert_eq!(d.hops.len(), 4);
    let (lo, hi) = vantage_testnet::stats::binomial_interval(u64::from(ROUNDS), LOSS, 0.999);
    for h in &d.hops {
        assert_eq!(h.sent, ROUNDS, "hop {}", h.ttl);
        let lost = u64::from(h.sent - h.received);
        if h.ttl <= 2 {
            assert_eq!(lost, 0, "hop {} is before the lossy link", h.ttl);
        } else {
            assert!(
                (lo..=hi).contains(&lost),
                "hop {}: {lost} of {ROUNDS} lost, expected {lo}–{hi} for {LOSS}",
                h.ttl
            );
        }
    }
    // Every probe the trace counts as lost was dropped by the impairer (which may also have
    // dropped probes sent past the destination in the first round, not counted).
    let dropped = net.impairer_stats("r2", "r3").a_to_b.lost;
    let counted: u64 = d.hops.iter().map(|h| u64::from(h.sent - h.received)).sum();
    assert!(
        counted <= dropped && dropped <= counted + 16,
        "trace lost {counted}, impairer dropped {dropped}"
    );
}

/// Hop addresses printed by `traceroute -n` / `mtr --report -n` (one address per hop line).
fn tool_hops(stdout: &str, mtr: bool) -> Vec<Option<IpAddr>> {
    stdout
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            if mtr {
                let hop = words.first()?.strip_suffix(".|--")?;
                hop.parse::<u8>().ok()?;
                Some(words.get(1)?.parse().ok())
            } else {
                words.first()?.parse::<u8>().ok()?;
                Some(words.get(1)?.parse().ok())
            }
        })
        .collect()
}

#[test]
fn hop_lists_agree_with_traceroute_and_mtr_on_the_same_chain() {
    let name = "hop_lists_agree_with_traceroute_and_mtr_on_the_same_chain";
    if !privileged(name) || need_binary(name, "traceroute").is_none() {
        return;
    }
    let Some(_) = need_binary(name, "mtr") else {
        return;
    };
    let (net, routers) = chain(4);
    // Each router answers five probes below: within the burst Linux allows. The server's port
    // unreachables are not limited: traceroute's 16 parallel UDP probes run past it and would
    // leave nothing of its burst for the next tool.
    net.ns("server")
        .set_sysctl("net.ipv4.icmp_ratelimit", "0")
        .unwrap();
    net.ns("server")
        .set_sysctl("net.ipv6.icmp.ratelimit", "0")
        .unwrap();
    for family in [Family::Ipv4, Family::Ipv6] {
        let want: Vec<Option<IpAddr>> = expected_hops(&net, &routers, family)
            .into_iter()
            .map(Some)
            .collect();
        let target = want.last().unwrap().unwrap().to_string();
        let fam = if family == Family::Ipv4 { "-4" } else { "-6" };
        let run = |args: &[&str]| {
            let out = net
                .ns("client")
                .command(args[0])
                .args(&args[1..])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let tr_icmp = tool_hops(
            &run(&["traceroute", fam, "-n", "-I", "-q", "1", &target]),
            false,
        );
        let tr_udp = tool_hops(&run(&["traceroute", fam, "-n", "-q", "1", &target]), false);
        let mtr = tool_hops(
            &run(&["mtr", fam, "-n", "--report", "-c", "1", &target]),
            true,
        );
        assert_eq!(tr_icmp, want, "{family}: traceroute -I");
        assert_eq!(tr_udp, want, "{family}: traceroute (UDP)");
        assert_eq!(mtr, want, "{family}: mtr --report");
        for protocol in [TraceProtocol::Icmp, TraceProtocol::Udp] {
            let mut s = spec(want.last().unwrap().unwrap(), protocol);
            s.probes = 1;
            let (_, d) = run_in(&net, "client", s);
            let ours: Vec<Option<IpAddr>> = d
                .hops
                .iter()
                .map(|h| h.addrs.first().map(|a| a.ip))
                .collect();
            assert_eq!(ours, tr_icmp, "{family} {protocol:?}: ours vs traceroute");
        }
    }
}

#[test]
fn a_trace_without_raw_socket_rights_fails_with_a_sentence() {
    if !privileged("a_trace_without_raw_socket_rights_fails_with_a_sentence") {
        return;
    }
    let (net, routers) = chain(1);
    let target = expected_hops(&net, &routers, Family::Ipv4)[1];
    let r = net.ns("client").block_on_unprivileged(async move {
        let s = spec(target, TraceProtocol::Icmp);
        vantage_probe::run(&MeasurementSpec::Trace(s), &Context::default()).await
    });
    assert_eq!(r.outcome, Outcome::Internal);
    let e = r.error.unwrap();
    assert!(
        e.starts_with("cannot trace: raw IPv4 sockets need CAP_NET_RAW"),
        "{e}"
    );
}

#[test]
fn concurrent_traces_in_one_process_keep_their_answers_apart() {
    if !privileged("concurrent_traces_in_one_process_keep_their_answers_apart") {
        return;
    }
    // Every raw ICMP socket of the process sees every ICMP error: six traces at once (three
    // protocols, two families) must each take only their own.
    let (net, routers) = chain(3);
    let v4 = expected_hops(&net, &routers, Family::Ipv4);
    let v6 = expected_hops(&net, &routers, Family::Ipv6);
    let mut specs = Vec::new();
    for want in [&v4, &v6] {
        for protocol in [TraceProtocol::Icmp, TraceProtocol::Udp, TraceProtocol::Tcp] {
            let mut s = spec(*want.last().unwrap(), protocol);
            s.probes = 1;
            specs.push(MeasurementSpec::Trace(s));
        }
    }
    let results = net.ns("client").block_on(async move {
        vantage_probe::sock::settle_rx_stamps().await;
        vantage_probe::run_many(&specs, &Context::default()).await
    });
    assert_eq!(results.len(), 6);
    for (i, r) in results.iter().enumerate() {
        let want = if i < 3 { &v4 } else { &v6 };
        let Some(Detail::Trace(d)) = &r.detail else {
            panic!("trace {i}: {:?}", r.error)
        };
        let got: Vec<IpAddr> = d
            .hops
            .iter()
            .flat_map(|h| h.addrs.iter().map(|a| a.ip))
            .collect();
        assert_eq!(&got, want, "trace {i} ({:?})", d.protocol);
        assert!(
            d.hops.iter().all(|h| (h.sent, h.received) == (1, 1)),
            "trace {i}"
        );
    }
}

#[test]
fn the_asn_extension_point_fills_in_every_responding_address() {
    if !privileged("the_asn_extension_point_fills_in_every_responding_address") {
        return;
    }
    struct Private;
    impl vantage_probe::HopEnricher for Private {
        fn enrich(&self, addr: &mut vantage_proto::TraceAddr) {
            if let IpAddr::V4(v4) = addr.ip
                && v4.is_private()
            {
                addr.asn = Some(64512);
                addr.as_name = Some(format!("private {}", v4.octets()[2]));
            }
        }
    }
    let (net, routers) = chain(2);
    let want = expected_hops(&net, &routers, Family::Ipv4);
    let (mut r, _) = run_in(&net, "client", spec(want[2], TraceProtocol::Icmp));
    vantage_probe::enrich_trace(&mut r, &Private);
    let Some(Detail::Trace(d)) = &r.detail else {
        panic!()
    };
    let names: Vec<Option<String>> = d.hops.iter().map(|h| h.addrs[0].as_name.clone()).collect();
    assert_eq!(
        names,
        vec![
            Some("private 1".to_string()),
            Some("private 2".to_string()),
            Some("private 3".to_string())
        ]
    );
    assert!(d.hops.iter().all(|h| h.addrs[0].asn == Some(64512)));
}
