//! The socket layer against the real kernel: echo requests out through `sendmmsg`, replies in
//! through `recvmmsg`, kernel RX and TX stamps present and matched by key, in all four modes
//! (raw and datagram, IPv4 and IPv6), and ICMP errors from a real router namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use vantage_probe::sock::{Mode, Options, Protocol, RecvBatch, SendBatch, Socket, Stamp, icmp};
use vantage_proto::Family;
use vantage_testnet::{Link, Topology};

fn opts() -> Options {
    Options {
        timestamps: true,
        recv_ttl: true,
        recv_errors: true,
        ..Options::default()
    }
}

/// Sends three echo requests to `dst` and returns (seq → (rtt kernel ms, ttl)), the TX-stamp
/// keys seen, and whether any echo request was delivered to the socket.
async fn echo_three(
    family: Family,
    mode: Mode,
    dst: IpAddr,
) -> (BTreeMap<u16, (f64, u8)>, BTreeSet<u32>, bool) {
    vantage_probe::sock::settle_rx_stamps().await;
    let s = Socket::open(family, Protocol::Icmp, mode, &opts()).expect("open");
    s.set_icmp_filter(icmp::ping_types(family)).expect("filter");
    assert!(
        s.rx_stamps() && s.tx_stamps(),
        "kernel stamps must be granted"
    );
    let id = s.local_id().unwrap_or(0x5157);
    let mut batch = SendBatch::new();
    for seq in 0..3u16 {
        let mut pkt = Vec::new();
        icmp::echo_request(family, id, seq, b"vantage-sock-test", &mut pkt);
        batch.push(SocketAddr::new(dst, 0), &pkt, 1000 + u32::from(seq));
    }
    let mut sent = 0;
    while sent < batch.len() {
        sent += s.send(&mut batch, sent).await.expect("send");
    }
    let keys: BTreeMap<u32, u16> = (0..3).map(|i| (batch.key(i).unwrap(), i as u16)).collect();
    let mut tx: BTreeMap<u16, Stamp> = BTreeMap::new();
    let mut rx: BTreeMap<u16, (Stamp, u8)> = BTreeMap::new();
    let mut seen_keys = BTreeSet::new();
    let mut saw_request = false;
    let mut rb = RecvBatch::new(16, 2048);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while (rx.len() < 3 || tx.len() < 3) && tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), s.ready()).await;
        while let Ok(n) = s.try_recv_errors(&mut rb) {
            for i in 0..n {
                let (key, st) = rb
                    .get(i)
                    .tx_stamp()
                    .expect("only TX stamps on the error queue");
                seen_keys.insert(key);
                tx.insert(keys[&key], st);
            }
        }
        while let Ok(n) = s.try_recv(&mut rb) {
            for i in 0..n {
                let r = rb.get(i);
                let data = match (family, mode) {
                    (Family::Ipv4, Mode::Raw) => icmp::strip_ipv4(r.data).unwrap().1,
                    _ => r.data,
                };
                match icmp::parse(family, data) {
                    Some(icmp::Message::EchoReply {
                        id: rid,
                        seq,
                        payload,
                    }) if rid == id => {
                        assert_eq!(payload, b"vantage-sock-test");
                        rx.insert(seq, (r.stamp.expect("RX stamp"), r.ttl.expect("TTL")));
                    }
                    Some(icmp::Message::EchoRequest { .. }) => saw_request = true,
                    _ => {}
                }
            }
        }
    }
    let out = rx
        .iter()
        .map(|(seq, (st, ttl))| (*seq, (st.ms_since(tx[seq]), *ttl)))
        .collect();
    (out, seen_keys, saw_request)
}

fn check(family: Family, mode: Mode, dst: &str) {
    if !vantage_testnet::privileged(&format!("sock_echo_{family}_{mode:?}")) {
        return;
    }
    let net = Topology::builder()
        .host("h")
        .allow_unprivileged_ping("h")
        .build()
        .unwrap();
    let dst: IpAddr = dst.parse().unwrap();
    let (replies, keys, saw_request) = net.ns("h").block_on(echo_three(family, mode, dst));
    assert_eq!(replies.len(), 3, "{family} {mode:?}: {replies:?}");
    for (seq, (rtt, ttl)) in &replies {
        assert!(
            *rtt > 0.0 && *rtt < 50.0,
            "seq {seq}: kernel RTT {rtt} ms on loopback"
        );
        assert_eq!(*ttl, 64, "loopback replies keep the default TTL");
    }
    assert_eq!(
        keys,
        BTreeSet::from([1000, 1001, 1002]),
        "keys as requested per packet"
    );
    assert!(!saw_request, "the ICMP filter keeps echo requests away");
}

#[test]
fn sock_echo_raw_ipv4() {
    check(Family::Ipv4, Mode::Raw, "127.0.0.1");
}

#[test]
fn sock_echo_raw_ipv6() {
    check(Family::Ipv6, Mode::Raw, "::1");
}

#[test]
fn sock_echo_dgram_ipv4() {
    check(Family::Ipv4, Mode::Dgram, "127.0.0.1");
}

#[test]
fn sock_echo_dgram_ipv6() {
    check(Family::Ipv6, Mode::Dgram, "::1");
}

/// A router namespace with an unreachable route answers with ICMP host unreachable; the datagram
/// socket gets it on its error queue with the offender and our original request.
#[test]
fn sock_icmp_errors_reach_datagram_and_raw_sockets() {
    if !vantage_testnet::privileged("sock_icmp_errors_reach_datagram_and_raw_sockets") {
        return;
    }
    let net = Topology::builder()
        .host("h")
        .router("r")
        .link("h", "r", Link::v4("10.77.0.0/24"))
        .allow_unprivileged_ping("h")
        .build()
        .unwrap();
    net.ns("r")
        .ip(&["route", "add", "unreachable", "10.99.0.0/16"])
        .unwrap();
    let router: IpAddr = net.link_v4("r", "h").into();
    for mode in [Mode::Dgram, Mode::Raw] {
        let got = net.ns("h").block_on(async move {
            let s = Socket::open(Family::Ipv4, Protocol::Icmp, mode, &opts()).unwrap();
            s.set_icmp_filter(icmp::ping_types(Family::Ipv4)).unwrap();
            let mut pkt = Vec::new();
            icmp::echo_request(
                Family::Ipv4,
                s.local_id().unwrap_or(77),
                5,
                b"cookie",
                &mut pkt,
            );
            let mut batch = SendBatch::new();
            batch.push("10.99.1.1:0".parse().unwrap(), &pkt, 0);
            s.send(&mut batch, 0).await.unwrap();
            let mut rb = RecvBatch::new(8, 1024);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < deadline {
                let _ = tokio::time::timeout(Duration::from_millis(100), s.ready()).await;
                if let Ok(n) = s.try_recv_errors(&mut rb) {
                    for i in 0..n {
                        let r = rb.get(i);
                        if let Some(e) = r.error.filter(|e| e.is_icmp()) {
                            let q = icmp::parse(Family::Ipv4, r.data);
                            let seq = match q {
                                Some(icmp::Message::EchoRequest { seq, .. }) => seq,
                                other => {
                                    panic!("error queue should return our request, got {other:?}")
                                }
                            };
                            return (
                                e.icmp_type,
                                e.icmp_code,
                                e.offender,
                                seq,
                                r.from.map(|a| a.ip()),
                            );
                        }
                    }
                }
                if let Ok(n) = s.try_recv(&mut rb) {
                    for i in 0..n {
                        let r = rb.get(i);
                        let (ip, body) = icmp::strip_ipv4(r.data).unwrap();
                        if let Some(icmp::Message::Error {
                            icmp_type,
                            code,
                            quoted: Some(q),
                            ..
                        }) = icmp::parse(Family::Ipv4, body)
                        {
                            let (_, seq, _) = q.echo().expect("quoted echo request");
                            return (icmp_type, code, Some(ip.src), seq, Some(q.dst));
                        }
                    }
                }
            }
            panic!("no ICMP error within 3 s ({mode:?})");
        });
        let (ty, code, offender, seq, dst) = got;
        assert_eq!((ty, code), (3, 1), "{mode:?}: host unreachable");
        assert_eq!(offender, Some(router), "{mode:?}");
        assert_eq!(seq, 5, "{mode:?}");
        assert_eq!(dst, Some("10.99.1.1".parse().unwrap()), "{mode:?}");
    }
}

/// With the kernel's default `ping_group_range`, a datagram ICMP socket is refused even to root,
/// and the error says which sysctl to change; raw TCP and UDP sockets open for root.
#[test]
fn sock_open_errors_name_the_fix_and_other_protocols_open() {
    if !vantage_testnet::privileged("sock_open_errors_name_the_fix_and_other_protocols_open") {
        return;
    }
    let net = Topology::builder().host("h").build().unwrap();
    let (dgram, raw_tcp, raw_udp, dgram_udp) = net.ns("h").block_on(async {
        let d = Socket::open(
            Family::Ipv4,
            Protocol::Icmp,
            Mode::Dgram,
            &Options::default(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string());
        let t =
            Socket::open(Family::Ipv6, Protocol::Tcp, Mode::Raw, &Options::default()).map(|_| ());
        let u =
            Socket::open(Family::Ipv4, Protocol::Udp, Mode::Raw, &Options::default()).map(|_| ());
        let du = Socket::open(Family::Ipv6, Protocol::Udp, Mode::Dgram, &opts()).map(|_| ());
        (d, t.is_ok(), u.is_ok(), du.is_ok())
    });
    let e = dgram.unwrap_err();
    assert!(e.contains("ping_group_range is '1 0'"), "{e}");
    assert!(raw_tcp && raw_udp && dgram_udp);
    assert!(vantage_probe::sock::raw_sockets_allowed());
}

/// A parked socket (off the reactor) still sends and reads; waiting needs it registered, and
/// once registered again the reactor knows at once of replies that arrived while it was parked.
#[test]
fn sock_parked_socket_sends_and_reads_and_wakes_after_unpark() {
    if !vantage_testnet::privileged("sock_parked_socket_sends_and_reads_and_wakes_after_unpark") {
        return;
    }
    let net = Topology::builder().host("h").build().unwrap();
    let (wait_parked, woke, replies, stamps) = net.ns("h").block_on(async {
        vantage_probe::sock::settle_rx_stamps().await;
        let s = Socket::open(Family::Ipv4, Protocol::Icmp, Mode::Raw, &opts()).expect("open");
        s.set_icmp_filter(icmp::ping_types(Family::Ipv4)).unwrap();
        let s = s.park();
        assert!(s.is_parked());
        let mut batch = SendBatch::new();
        for seq in 0..3u16 {
            let mut pkt = Vec::new();
            icmp::echo_request(Family::Ipv4, 0x7a11, seq, b"parked", &mut pkt);
            batch.push("127.0.0.1:0".parse().unwrap(), &pkt, u32::from(seq));
        }
        let mut sent = 0;
        while sent < batch.len() {
            sent += s
                .send(&mut batch, sent)
                .await
                .expect("a parked socket sends");
        }
        let wait_parked = s.ready().await.is_err();
        // The replies and stamps arrive while nobody is registered for them.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (s, registered) = s.unpark();
        registered.expect("registers again");
        assert!(!s.is_parked());
        let woke = tokio::time::timeout(Duration::from_secs(1), s.ready())
            .await
            .is_ok_and(|r| r.is_ok());
        let mut rb = RecvBatch::new(16, 2048);
        let replies = s.try_recv(&mut rb).unwrap_or(0);
        let stamps = s.try_recv_errors(&mut rb).unwrap_or(0);
        (wait_parked, woke, replies, stamps)
    });
    assert!(
        wait_parked,
        "waiting on a parked socket is refused, not hung"
    );
    assert!(
        woke,
        "replies queued while parked wake the task once registered"
    );
    assert_eq!(replies, 3, "the three echo replies");
    assert_eq!(stamps, 3, "the three TX stamps");
}
