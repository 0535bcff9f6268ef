//! The test bed of the TCP and UDP probe tests: `client — r1 — server`, the r1–server link
//! impaired by a known one-way delay, plus what the tests need on the server side: listeners,
//! nftables rules, and a sniffer that shows what actually arrived on the wire.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use vantage_probe::Context;
use vantage_proto::{MeasurementResult, MeasurementSpec};
use vantage_testnet::{Impairment, Link, Topology};

/// One-way delay of the impaired link, each direction.
pub const DELAY_MS: f64 = 10.0;
/// The round trip the probes must measure: twice the one-way delay.
pub const RTT_MS: f64 = 2.0 * DELAY_MS;
/// Largest excess over the impaired round trip a median may show. The impairer forwards each
/// frame at its due time plus its own lateness (sleep, then spin the last 200 µs at SCHED_FIFO:
/// tens of µs at the median on this machine, and the test prints the measured figure), and the
/// frames cross three veth pairs and a router each way (a few µs each); 1.5 ms is far above
/// both yet far below any mistake that matters (a wrong stamp, a retransmission at 1 s, a
/// missing direction of the delay).
pub const RTT_SLACK_MS: f64 = 1.5;

/// `client — r1 — server` with IPv4 and IPv6, the r1–server link delayed by [`DELAY_MS`] each
/// way, and ICMP error rate limits off on the server (Linux sends at most one destination
/// unreachable per second per peer after a burst of 6, which would eat UDP answers).
pub fn bed() -> Topology {
    Topology::builder()
        .host("client")
        .router("r1")
        .host("server")
        .link("client", "r1", Link::v4("10.71.1.0/24").v6("fd71:1::/64"))
        .link(
            "r1",
            "server",
            Link::v4("10.71.2.0/24")
                .v6("fd71:2::/64")
                .impair(Impairment::delay_ms(DELAY_MS)),
        )
        .sysctl("server", "net.ipv4.icmp_ratelimit", "0")
        .sysctl("server", "net.ipv6.icmp.ratelimit", "0")
        .sysctl("r1", "net.ipv4.icmp_ratelimit", "0")
        .sysctl("r1", "net.ipv6.icmp.ratelimit", "0")
        .build()
        .expect("the test bed builds")
}

/// The server's address of a family.
pub fn server(net: &Topology, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(net.v6("server"))
    } else {
        IpAddr::V4(net.v4("server"))
    }
}

/// Resolves the neighbours (ARP / neighbour discovery) along the path from the client to
/// `target` before anything is timed: the first packet of a path otherwise waits for them, on
/// the impaired link for a whole extra round trip. A TCP connect to `port` does it whether the
/// port answers with a SYN-ACK or a reset.
pub fn warm_up(net: &Topology, target: IpAddr, port: u16) {
    net.ns("client").run(move || {
        let _ = std::net::TcpStream::connect_timeout(
            &SocketAddr::new(target, port),
            Duration::from_secs(2),
        );
    });
}

/// Runs measurements from the client namespace (as root) and returns their results.
pub fn measure(net: &Topology, specs: Vec<MeasurementSpec>) -> Vec<MeasurementResult> {
    net.ns("client").block_on(async move {
        let cx = Context::default();
        vantage_probe::run_many(&specs, &cx).await
    })
}

/// Runs one measurement from the client namespace.
pub fn measure_one(net: &Topology, spec: MeasurementSpec) -> MeasurementResult {
    measure(net, vec![spec]).remove(0)
}

/// A TCP listener in the server namespace on `[::]` (both families) and a free port, with a
/// thread accepting connections so the backlog never fills. It keeps them open, like a server
/// waiting for a request: the probes' resets close them. (A server that closes at once sends
/// a FIN that may cross the next probe from the same source port, which makes Linux send that
/// probe's SYN twice — measured correctly, but not the clean wire the tests count.)
pub fn listen_tcp(net: &Topology) -> u16 {
    let l = net.ns("server").run(|| {
        let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)).unwrap();
        s.set_only_v6(false).unwrap();
        s.bind(&"[::]:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        s.listen(1024).unwrap();
        std::net::TcpListener::from(s)
    });
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Ends with the process.
        let mut open = Vec::new();
        for c in l.incoming().flatten() {
            open.push(c);
        }
    });
    port
}

/// A port with no listener in the server namespace (bound once by a socket that is then
/// closed; nothing else runs there to take it).
pub fn closed_port(net: &Topology) -> u16 {
    net.ns("server").run(|| {
        std::net::TcpListener::bind("[::]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
}

/// A UDP port with no socket in the server namespace.
pub fn closed_udp_port(net: &Topology) -> u16 {
    net.ns("server").run(|| {
        std::net::UdpSocket::bind("[::]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
}

/// Makes r1 answer traffic to 10.71.9.0/24 and fd71:9::/64 with ICMP network unreachable
/// (ICMPv6 no route), like a router without a route there; returns those targets.
///
/// A router that really lacks the route answers through Linux's route-error path, which sends
/// at most one unreachable per second per source after a small burst, governed by
/// `net.ipv4.route.error_cost` / `error_burst`: global sysctls no namespace can lift. An
/// nftables reject is answered through `icmp_send` with the namespace's own ICMP rate limit,
/// which the bed turns off, so every probe gets its answer.
pub fn unreachable_behind_r1(net: &Topology) -> [IpAddr; 2] {
    let via4 = net.link_v4("server", "r1").to_string();
    let via6 = net.link_v6("server", "r1").to_string();
    net.ns("r1")
        .ip(&["route", "add", "10.71.9.0/24", "via", &via4])
        .unwrap();
    net.ns("r1")
        .ip(&["-6", "route", "add", "fd71:9::/64", "via", &via6])
        .unwrap();
    nft(
        net,
        "r1",
        "table inet unreachable {\n chain reject_forwarded {\n type filter hook forward priority 0;\n \
         ip daddr 10.71.9.0/24 reject with icmp type net-unreachable\n \
         ip6 daddr fd71:9::/64 reject with icmpv6 type no-route\n }\n}\n",
    );
    ["10.71.9.9".parse().unwrap(), "fd71:9::9".parse().unwrap()]
}

/// Adds an nftables ruleset to a node.
pub fn nft(net: &Topology, node: &str, ruleset: &str) {
    use std::io::Write;
    let mut child = net
        .ns(node)
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nft runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The packet counter of the nftables rule commented `name` in the node's ruleset.
pub fn nft_counter(net: &Topology, node: &str, name: &str) -> u64 {
    let out = net
        .ns(node)
        .command("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("comment \"{name}\"")))
        .unwrap_or_else(|| panic!("no rule named {name} in:\n{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "packets")
        .expect("a counter");
    words[at + 1].parse().unwrap()
}

/// What the server saw of one packet from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags (0 for UDP).
    pub flags: u8,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
    /// IPv4 don't-fragment bit (false for IPv6).
    pub df: bool,
    pub ttl: u8,
}

/// A packet socket on the server's link that records every packet arriving there, with its IP
/// header, for both families.
pub struct Sniffer {
    sock: Socket,
}

impl Sniffer {
    /// Starts capturing on the server's interface towards r1 (`AF_PACKET`, cooked: frames start
    /// at the IP header).
    pub fn start(net: &Topology) -> Sniffer {
        let iface = net.iface("server", "r1").to_string();
        let sock = net.ns("server").run(move || {
            let all = i32::from((libc::ETH_P_ALL as u16).to_be());
            let s = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(all))).unwrap();
            s.bind_device(Some(iface.as_bytes())).unwrap();
            s.set_recv_buffer_size(4 << 20).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        });
        Sniffer { sock }
    }

    /// Every packet of `proto` (6 TCP, 17 UDP) from `from` captured since the last call.
    pub fn take(&self, proto: u8, from: IpAddr) -> Vec<Seen> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = (&self.sock).read(&mut buf) {
            if let Some(s) = parse(&buf[..n], proto, from) {
                out.push(s);
            }
        }
        out
    }
}

fn parse(p: &[u8], proto: u8, from: IpAddr) -> Option<Seen> {
    let (src, next, tos, df, ttl, l4) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0xf) * 4;
            let src = IpAddr::from(<[u8; 4]>::try_from(p.get(12..16)?).ok()?);
            (src, p[9], p[1], p[6] & 0x40 != 0, p[8], p.get(ihl..)?)
        }
        6 => {
            let src = IpAddr::from(<[u8; 16]>::try_from(p.get(8..24)?).ok()?);
            let tc = ((p[0] & 0x0f) << 4) | (p[1] >> 4);
            (src, p[6], tc, false, p[7], p.get(40..)?)
        }
        _ => return None,
    };
    if src != from || next != proto || l4.len() < 8 {
        return None;
    }
    Some(Seen {
        src_port: u16::from_be_bytes([l4[0], l4[1]]),
        dst_port: u16::from_be_bytes([l4[2], l4[3]]),
        flags: if proto == 6 { *l4.get(13)? } else { 0 },
        tos,
        df,
        ttl,
    })
}

/// Counts per source port.
pub fn per_port(seen: &[Seen]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for s in seen {
        *m.entry(s.src_port).or_default() += 1;
    }
    m
}

/// The median of some values.
pub fn median(v: &[f64]) -> f64 {
    vantage_testnet::stats::quantile(v, 0.5)
}

/// Seconds as a spec's `f64`.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
