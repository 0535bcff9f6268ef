//! UDP probes against real kernels in network namespaces: a closed port answers with ICMP port
//! unreachable whose round trip is the impaired link's, on the privileged path (raw ICMP
//! listener) and the unprivileged one (error queue), IPv4 and IPv6; a UDP reply counts as open;
//! a filtered port times out; a router's error names the router; source ports rotate per probe
//! as the server sees them, with DF and TOS as asked.

mod l4bed;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use l4bed::{
    RTT_MS, RTT_SLACK_MS, Sniffer, bed, closed_udp_port, measure, measure_one, median, nft,
    per_port, server, unreachable_behind_r1, warm_up,
};
use vantage_probe::Context;
use vantage_proto::{
    Detail, MeasurementResult, MeasurementSpec, Outcome, PortRange, ProbeStatus, SocketKind,
    TimestampSource, UdpDetail, UdpSpec,
};
use vantage_testnet::Topology;

fn spec(target: IpAddr, port: u16, count: u32) -> UdpSpec {
    let mut s = UdpSpec::new(target.to_string(), port);
    s.count = count;
    s.interval = 0.05;
    s.timeout = 1.0;
    s
}

fn detail(r: &MeasurementResult) -> &UdpDetail {
    match &r.detail {
        Some(Detail::Udp(d)) => d,
        other => panic!("no UDP detail in {r:?} ({other:?})"),
    }
}

fn rtts(d: &UdpDetail) -> Vec<f64> {
    d.probes.iter().filter_map(|p| p.rtt_ms).collect()
}

/// Runs UDP specs from the client namespace as uid 65534 without capabilities.
fn measure_unprivileged(net: &Topology, specs: Vec<MeasurementSpec>) -> Vec<MeasurementResult> {
    net.ns("client").block_on_unprivileged(async move {
        assert!(
            !vantage_probe::sock::raw_sockets_allowed(),
            "the test must really run without CAP_NET_RAW"
        );
        vantage_probe::run_many(&specs, &Context::default()).await
    })
}

#[test]
fn exclusive_udp_closed_port_measures_the_link_delay_raw_and_unprivileged_v4_and_v6() {
    if !vantage_testnet::privileged("exclusive_udp_closed_port_measures_the_link_delay") {
        return;
    }
    let net = bed();
    let port = closed_udp_port(&net);
    for v6 in [false, true] {
        warm_up(&net, server(&net, v6), port);
    }
    for privileged in [true, false] {
        for v6 in [false, true] {
            let what = format!("privileged={privileged} v6={v6}");
            let s = MeasurementSpec::Udp(spec(server(&net, v6), port, 10));
            let r = if privileged {
                measure_one(&net, s)
            } else {
                measure_unprivileged(&net, vec![s]).remove(0)
            };
            assert_eq!(r.outcome, Outcome::Ok, "{what}: {r:?}");
            let d = detail(&r);
            assert_eq!(
                (d.sent, d.port_unreachable, d.received),
                (10, 10, 10),
                "{what}"
            );
            let v = rtts(d);
            let (min, med) = (v.iter().copied().fold(f64::MAX, f64::min), median(&v));
            eprintln!("{what}: min {min:.3} ms, median {med:.3} ms (link round trip {RTT_MS} ms)");
            assert!(
                min >= RTT_MS - 0.01,
                "{what}: {min} ms is below the link's delay"
            );
            assert!(
                med <= RTT_MS + RTT_SLACK_MS,
                "{what}: median {med} ms: {v:?}"
            );
            assert_eq!(r.quality.privileged, privileged, "{what}");
            let socket = if privileged {
                SocketKind::Raw
            } else {
                SocketKind::Dgram
            };
            assert_eq!(r.quality.socket, Some(socket), "{what}");
            assert_eq!(r.quality.tx_timestamp, TimestampSource::Kernel, "{what}");
            assert_eq!(r.quality.rx_timestamp, TimestampSource::Kernel, "{what}");
        }
    }
    eprintln!("impairer: {:?}", net.impairer_stats("r1", "server"));
}

/// A UDP echo server in the server namespace (both families); returns its port.
fn echo_server(net: &Topology) -> u16 {
    let s = net.ns("server").run(|| {
        let s = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
        s.set_only_v6(false).unwrap();
        s.bind(&"[::]:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        std::net::UdpSocket::from(s)
    });
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    port
}

#[test]
fn udp_replies_count_as_open_and_filtered_ports_time_out() {
    if !vantage_testnet::privileged("udp_replies_count_as_open") {
        return;
    }
    let net = bed();
    let echo = echo_server(&net);
    let filtered = closed_udp_port(&net);
    nft(
        &net,
        "server",
        &format!(
            "table inet probe {{\n chain in {{\n type filter hook input priority 0;\n \
             udp dport {filtered} drop\n }}\n}}\n"
        ),
    );
    let mut specs = Vec::new();
    for v6 in [false, true] {
        specs.push(MeasurementSpec::Udp(spec(server(&net, v6), echo, 3)));
        let mut s = spec(server(&net, v6), filtered, 2);
        s.timeout = 0.4;
        specs.push(MeasurementSpec::Udp(s));
    }
    let privileged = measure(&net, specs.clone());
    let unprivileged = measure_unprivileged(&net, specs);
    for r in privileged.iter().chain(&unprivileged) {
        let d = detail(r);
        let what = format!(
            "{}:{} privileged={}",
            d.address, d.port, r.quality.privileged
        );
        if d.port == echo {
            assert_eq!(r.outcome, Outcome::Ok, "{what}: {r:?}");
            assert_eq!((d.sent, d.open, d.port_unreachable), (3, 3, 0), "{what}");
            assert!(rtts(d).iter().all(|v| *v >= RTT_MS - 0.01), "{what}");
        } else {
            assert_eq!(r.outcome, Outcome::Timeout, "{what}: {r:?}");
            assert_eq!((d.sent, d.received), (2, 0), "{what}");
            let e = r.error.as_deref().unwrap();
            assert!(
                e.contains("timed out") && e.contains("no ICMP port unreachable came back"),
                "{what}: {e}"
            );
        }
    }
}

#[test]
fn udp_errors_from_a_router_name_the_router() {
    if !vantage_testnet::privileged("udp_errors_from_a_router_name_the_router") {
        return;
    }
    let net = bed();
    let [t4, t6] = unreachable_behind_r1(&net);
    let targets: [(IpAddr, IpAddr); 2] = [
        (t4, net.link_v4("r1", "client").into()),
        (t6, net.link_v6("r1", "client").into()),
    ];
    let specs: Vec<MeasurementSpec> = targets
        .iter()
        .map(|(t, _)| MeasurementSpec::Udp(spec(*t, 33434, 2)))
        .collect();
    let privileged = measure(&net, specs.clone());
    let unprivileged = measure_unprivileged(&net, specs);
    for (i, (target, router)) in targets.iter().enumerate() {
        for r in [&privileged[i], &unprivileged[i]] {
            let what = format!("{target} privileged={}", r.quality.privileged);
            assert_eq!(r.outcome, Outcome::Unreachable, "{what}: {r:?}");
            let d = detail(r);
            assert!(
                d.probes
                    .iter()
                    .all(|p| p.status == ProbeStatus::Unreachable && p.from == Some(*router)),
                "{what}: {:?}",
                d.probes
            );
            let e = r.error.as_deref().unwrap();
            assert!(
                e.contains(&format!("failed: {router} reported")),
                "{what}: {e}"
            );
        }
    }
}

#[test]
fn udp_source_ports_rotate_per_probe_with_df_and_tos_on_the_wire() {
    if !vantage_testnet::privileged("udp_source_ports_rotate_per_probe") {
        return;
    }
    let net = bed();
    let port = closed_udp_port(&net);
    for v6 in [false, true] {
        warm_up(&net, server(&net, v6), port);
    }
    let sniffer = Sniffer::start(&net);
    // (privileged, IPv6, DF, payload size): the tagged and the untagged (size < 8) matching,
    // both paths, both families.
    let cases = [
        (true, false, true, 32u16),
        (false, false, false, 32),
        (true, true, false, 4),
        (false, true, true, 0),
    ];
    for (privileged, v6, df, size) in cases {
        let what = format!("privileged={privileged} v6={v6} df={df} size={size}");
        let first = if privileged { 35000 } else { 35100 };
        let mut s = spec(server(&net, v6), port, 16);
        s.interval = 0.02;
        s.size = size;
        s.df = df;
        s.tos = Some(0xb8);
        s.source_ports = Some(PortRange {
            first,
            last: first + 3,
        });
        let m = MeasurementSpec::Udp(s);
        let r = if privileged {
            measure_one(&net, m)
        } else {
            measure_unprivileged(&net, vec![m]).remove(0)
        };
        assert_eq!(r.outcome, Outcome::Ok, "{what}: {r:?}");
        let d = detail(&r);
        let want: Vec<u16> = (0..16).map(|n| first + (n % 4) as u16).collect();
        let got: Vec<u16> = d.probes.iter().map(|p| p.src_port).collect();
        assert_eq!(got, want, "{what}");
        assert_eq!(d.port_unreachable, 16, "{what}: {:?}", d.probes);
        for p in &d.ports {
            assert_eq!((p.sent, p.received), (4, 4), "{what}: port {}", p.src_port);
        }
        let client: IpAddr = if v6 {
            net.v6("client").into()
        } else {
            net.v4("client").into()
        };
        let seen = sniffer.take(17, client);
        let expect: BTreeMap<u16, usize> = (first..first + 4).map(|p| (p, 4)).collect();
        assert_eq!(
            per_port(&seen),
            expect,
            "{what}: datagrams seen by the server"
        );
        for s in &seen {
            assert_eq!(s.dst_port, port);
            assert_eq!(s.tos, 0xb8, "{what}: TOS / traffic class");
            if !v6 {
                assert_eq!(s.df, df, "{what}: the DF bit");
            }
        }
    }
}

#[test]
fn udp_measurements_of_several_targets_share_a_source_port_range() {
    if !vantage_testnet::privileged("udp_measurements_of_several_targets_share_a_source_port_range")
    {
        return;
    }
    let net = bed();
    let port = closed_udp_port(&net);
    // The server and the router r1 both answer a closed port with port unreachable.
    let targets: [IpAddr; 2] = [server(&net, false), net.link_v4("r1", "client").into()];
    let make = |t: IpAddr| {
        let mut s = spec(t, port, 6);
        s.source_ports = Some(PortRange {
            first: 37000,
            last: 37001,
        });
        MeasurementSpec::Udp(s)
    };
    let specs: Vec<MeasurementSpec> = targets.iter().map(|t| make(*t)).collect();
    for results in [
        measure(&net, specs.clone()),
        measure_unprivileged(&net, specs),
    ] {
        for (r, t) in results.iter().zip(targets) {
            let what = format!("{t} privileged={}", r.quality.privileged);
            assert_eq!(r.outcome, Outcome::Ok, "{what}: {r:?}");
            let d = detail(r);
            assert_eq!(
                (d.sent, d.port_unreachable),
                (6, 6),
                "{what}: {:?}",
                d.probes
            );
            assert!(
                d.probes.iter().all(|p| p.from.is_none()),
                "{what}: answered by {t}"
            );
        }
    }
    // The same target twice from the same ports: the second is refused, not silently starved.
    let results = measure(&net, vec![make(targets[0]), make(targets[0])]);
    assert_eq!(results[0].outcome, Outcome::Ok, "{:?}", results[0]);
    assert_eq!(results[1].outcome, Outcome::Internal, "{:?}", results[1]);
    assert!(
        results[1]
            .error
            .as_deref()
            .unwrap()
            .contains("another measurement is already probing"),
        "{:?}",
        results[1]
    );
}
