//! The ping engine against real kernels in private namespaces: counts, kernel timestamps, the
//! raw and the unprivileged path, IPv4 and IPv6, ICMP errors, timeouts, cancellation, socket
//! options seen on the wire, delay and loss measured against a link impairer's ground truth,
//! and sweeps over AnyIP ranges.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use vantage_probe::sock::{Mode, Options, Protocol, RecvBatch, Socket, icmp};
use vantage_probe::{Context, Privilege, run_many};
use vantage_proto::{
    Detail, Family, MeasurementResult, MeasurementSpec, Outcome, PingDetail, PingSpec, SocketKind,
    TimestampSource,
};
use vantage_testnet::{Impairment, Link, Ns, Topology, privileged};

/// Runs `fut` on a two-thread runtime inside `ns` (a sweep uses one shard per worker thread).
fn block_on_mt<F: Future + Send>(ns: &Ns, fut: F) -> F::Output
where
    F::Output: Send,
{
    ns.run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    })
}

fn spec(target: impl ToString, count: u32, interval: f64) -> PingSpec {
    PingSpec {
        count,
        interval,
        timeout: 1.0,
        ..PingSpec::new(target.to_string())
    }
}

fn detail(r: &MeasurementResult) -> &PingDetail {
    match &r.detail {
        Some(Detail::Ping(d)) => d,
        _ => panic!("no ping detail: {r:?}"),
    }
}

fn cx(privilege: Privilege) -> Context {
    Context {
        privilege,
        ..Context::default()
    }
}

async fn ping_all(specs: Vec<PingSpec>, privilege: Privilege) -> Vec<MeasurementResult> {
    let specs: Vec<MeasurementSpec> = specs.into_iter().map(MeasurementSpec::Ping).collect();
    run_many(&specs, &cx(privilege)).await
}

fn lone_host() -> Topology {
    Topology::builder()
        .host("h")
        .allow_unprivileged_ping("h")
        .build()
        .expect("topology")
}

/// Raw and datagram sockets, IPv4 and IPv6: every request answered, sequence numbers in order,
/// TTL 64, kernel stamps on both sides, and the socket and privilege reported as used.
#[test]
fn ping_loopback_raw_and_unprivileged_both_families() {
    if !privileged("ping_loopback_raw_and_unprivileged_both_families") {
        return;
    }
    let net = lone_host();
    for (privilege, socket) in [
        (Privilege::Raw, SocketKind::Raw),
        (Privilege::Unprivileged, SocketKind::Dgram),
    ] {
        let results = block_on_mt(
            net.ns("h"),
            ping_all(
                vec![spec("127.0.0.1", 5, 0.02), spec("::1", 5, 0.02)],
                privilege,
            ),
        );
        for r in &results {
            let d = detail(r);
            assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
            assert_eq!((d.sent, d.received, d.duplicates), (5, 5, 0), "{r:?}");
            assert_eq!(d.loss, 0.0);
            assert!(d.lost.is_empty());
            let seqs: Vec<u32> = d.replies.iter().map(|p| p.seq).collect();
            assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
            assert!(d.replies.iter().all(|p| p.ttl == Some(64) && p.size == 56));
            let stats = d.rtt_ms.expect("rtt stats");
            assert!(stats.min > 0.0 && stats.max < 5.0, "loopback RTT {stats:?}");
            assert_eq!(r.quality.tx_timestamp, TimestampSource::Kernel, "{r:?}");
            assert_eq!(r.quality.rx_timestamp, TimestampSource::Kernel, "{r:?}");
            assert_eq!(r.quality.socket, Some(socket));
            assert_eq!(r.quality.privileged, socket == SocketKind::Raw);
            // Five requests 20 ms apart: the schedule is kept (bounds loose enough for a busy
            // machine; the pacing figures are reported, whatever the scheduler did).
            assert!(
                r.duration_ms >= 80.0 && r.duration_ms < 5000.0,
                "{}",
                r.duration_ms
            );
            let pacing = r.quality.pacing.expect("pacing reported");
            assert!(
                pacing.avg_ms >= 0.0 && pacing.max_ms >= pacing.avg_ms,
                "{pacing:?}"
            );
        }
        assert_eq!(results[0].target, "127.0.0.1");
        assert_eq!(results[1].target, "::1");
    }
}

/// Without CAP_NET_RAW (uid 65534, no capabilities) the automatic choice is the datagram
/// socket, and it says so; without `ping_group_range` there is no socket at all, and the sentence
/// says what to change.
#[test]
fn ping_without_privilege_uses_the_datagram_socket_and_says_so() {
    if !privileged("ping_without_privilege_uses_the_datagram_socket_and_says_so") {
        return;
    }
    let net = lone_host();
    let results = net.ns("h").run_unprivileged(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(ping_all(
                vec![spec("127.0.0.1", 3, 0.01), spec("::1", 3, 0.01)],
                Privilege::Auto,
            ))
    });
    for r in &results {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(detail(r).received, 3);
        assert_eq!(r.quality.socket, Some(SocketKind::Dgram));
        assert!(!r.quality.privileged);
        assert!(
            r.quality.notes.iter().any(|n| n.contains("no CAP_NET_RAW")),
            "{:?}",
            r.quality.notes
        );
        assert_eq!(r.quality.tx_timestamp, TimestampSource::Kernel);
    }
    // Raw sockets refused without the capability: a clear sentence, outcome internal.
    let raw = net.ns("h").run_unprivileged(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(ping_all(vec![spec("127.0.0.1", 1, 0.01)], Privilege::Raw))
    });
    assert_eq!(raw[0].outcome, Outcome::Internal);
    assert!(
        raw[0].error.as_deref().unwrap().contains("CAP_NET_RAW"),
        "{raw:?}"
    );

    let closed = Topology::builder().host("h").build().unwrap();
    let r = closed.ns("h").run_unprivileged(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(ping_all(vec![spec("127.0.0.1", 1, 0.01)], Privilege::Auto))
    });
    let e = r[0].error.as_deref().unwrap();
    assert!(
        e.contains("ping_group_range") && e.contains("CAP_NET_RAW"),
        "{e}"
    );
}

/// Loads an nftables ruleset into a node.
fn nft(net: &Topology, node: &str, ruleset: &str) {
    use std::io::Write;
    let mut child = net
        .ns(node)
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft refused {ruleset}");
}

/// A router that rejects forwarded requests answers with ICMP host / address unreachable:
/// outcome `unreachable`, the sentence names the router; a `blackhole` route answers nothing:
/// outcome `timeout`, every request lost. Both socket kinds, both families. The rejects come
/// from nftables rather than `unreachable` routes because the kernel's route-error limiter
/// (`net.ipv4.route.error_cost`, global, not per namespace) would swallow some of them.
#[test]
fn ping_reports_icmp_errors_and_timeouts() {
    if !privileged("ping_reports_icmp_errors_and_timeouts") {
        return;
    }
    let net = Topology::builder()
        .host("h")
        .router("r")
        .link("h", "r", Link::v4("10.61.0.0/24").v6("fd00:61::/64"))
        .allow_unprivileged_ping("h")
        // The kernel rate-limits ICMP errors per destination; off, so every request gets one.
        .sysctl("r", "net.ipv4.icmp_ratelimit", "0")
        .sysctl("r", "net.ipv6.icmp.ratelimit", "0")
        .build()
        .unwrap();
    let r = net.ns("r");
    let h4 = net.link_v4("h", "r").to_string();
    let h6 = net.link_v6("h", "r").to_string();
    r.ip(&["route", "add", "10.62.0.0/16", "via", &h4]).unwrap();
    r.ip(&["-6", "route", "add", "fd00:62::/64", "via", &h6])
        .unwrap();
    r.ip(&["route", "add", "blackhole", "10.63.0.0/16"])
        .unwrap();
    r.ip(&["-6", "route", "add", "blackhole", "fd00:63::/64"])
        .unwrap();
    nft(
        &net,
        "r",
        "table inet ping_test {\n chain ping_forward {\n type filter hook forward priority 0;\n \
         ip daddr 10.62.0.0/16 reject with icmp type host-unreachable\n \
         ip6 daddr fd00:62::/64 reject with icmpv6 type addr-unreachable\n }\n}\n",
    );
    let router_v4 = net.link_v4("r", "h").to_string();
    let router_v6 = net.link_v6("r", "h").to_string();
    for privilege in [Privilege::Raw, Privilege::Unprivileged] {
        let results = block_on_mt(
            net.ns("h"),
            ping_all(
                vec![
                    spec("10.62.0.9", 3, 0.02),
                    spec("10.63.0.9", 2, 0.02),
                    spec("fd00:62::9", 3, 0.02),
                    spec("fd00:63::9", 2, 0.02),
                ],
                privilege,
            ),
        );
        for (r, router) in [(&results[0], &router_v4), (&results[2], &router_v6)] {
            assert_eq!(r.outcome, Outcome::Unreachable, "{privilege:?} {r:?}");
            let d = detail(r);
            assert_eq!((d.sent, d.received, d.loss), (3, 0, 1.0));
            let e = &d.icmp_errors;
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].contains(&format!("from {router}")), "{e:?}");
            assert!(
                e[0].contains("unreachable") && e[0].contains("(3 times)"),
                "{e:?}"
            );
            assert!(
                r.error.as_deref().unwrap().contains("is unreachable"),
                "{r:?}"
            );
        }
        for r in [&results[1], &results[3]] {
            assert_eq!(r.outcome, Outcome::Timeout, "{privilege:?} {r:?}");
            let d = detail(r);
            assert_eq!(d.lost, vec![0, 1]);
            assert!(d.icmp_errors.is_empty());
            assert!(
                r.error.as_deref().unwrap().contains("no reply from"),
                "{r:?}"
            );
        }
    }
}

/// Names that do not resolve are `dns_failure` with a sentence; the other targets of the same
/// run are measured normally.
#[test]
fn ping_unresolvable_names_fail_alone() {
    let results = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let specs = vec![
            MeasurementSpec::Ping(spec("nonexistent.invalid", 1, 0.01)),
            MeasurementSpec::Ping(PingSpec {
                family: Some(Family::Ipv6),
                ..spec("192.0.2.1", 1, 0.01)
            }),
        ];
        run_many(&specs, &Context::default()).await
    });
    assert_eq!(results[0].outcome, Outcome::DnsFailure);
    assert!(
        results[0]
            .error
            .as_deref()
            .unwrap()
            .contains("could not resolve nonexistent.invalid")
    );
    // A spec that fails validation is an internal failure naming the field.
    assert_eq!(results[1].outcome, Outcome::Internal);
    assert!(results[1].error.as_deref().unwrap().contains("family"));
}

/// A host whose context forbids non-global destinations refuses to ping loopback, with the
/// policy's sentence, and sends nothing.
#[test]
fn ping_respects_the_destination_policy() {
    let r = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let cx = Context {
            allow_private: false,
            ..Context::default()
        };
        run_many(&[MeasurementSpec::Ping(spec("127.0.0.1", 1, 0.01))], &cx).await
    });
    assert_eq!(r[0].outcome, Outcome::BlockedByPolicy, "{r:?}");
    assert!(
        r[0].error.as_deref().unwrap().contains("127.0.0.1 is"),
        "{r:?}"
    );
    assert!(r[0].detail.is_none());
}

/// Cancelling returns at once with what was measured.
#[test]
fn ping_cancel_returns_partial_results_promptly() {
    if !privileged("ping_cancel_returns_partial_results_promptly") {
        return;
    }
    let net = lone_host();
    let (r, took) = block_on_mt(net.ns("h"), async {
        let cx = Context::default();
        let cancel = cx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.cancel();
        });
        let t = std::time::Instant::now();
        let specs = vec![MeasurementSpec::Ping(spec("127.0.0.1", 100, 0.05))];
        let r = run_many(&specs, &cx).await;
        (r, t.elapsed())
    });
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let d = detail(&r[0]);
    assert_eq!(r[0].outcome, Outcome::Ok);
    assert!(d.sent >= 3 && d.sent < 100, "{d:?}");
    assert_eq!(d.received, d.sent);
}

/// What the target sees of one echo request: (TTL, TOS, DF, source).
fn capture_request(target: &Ns, send: impl FnOnce()) -> (u8, u8, bool, IpAddr) {
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    std::thread::scope(|s| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let capture = s.spawn(move || {
            target.run(|| {
                rt().block_on(async {
                    let sock =
                        Socket::open(Family::Ipv4, Protocol::Icmp, Mode::Raw, &Options::default())
                            .unwrap();
                    sock.set_icmp_filter(&[icmp::V4_ECHO_REQUEST]).unwrap();
                    ready_tx.send(()).unwrap();
                    let mut b = RecvBatch::new(4, 2048);
                    tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut b))
                        .await
                        .expect("no echo request arrived")
                        .unwrap();
                    let p = b.get(0).data;
                    let flags = p[6] >> 5;
                    let src = IpAddr::from([p[12], p[13], p[14], p[15]]);
                    (p[8], p[1], flags & 0b010 != 0, src)
                })
            })
        });
        ready_rx.recv().unwrap();
        send();
        capture.join().unwrap()
    })
}

/// TTL, TOS, DF and the source address from the spec are what the target receives; a TTL too
/// small for the path comes back as "time to live exceeded" from the router where it ran out;
/// too big a payload with DF set is refused locally, and fragmented without it.
#[test]
fn ping_socket_options_reach_the_wire() {
    if !privileged("ping_socket_options_reach_the_wire") {
        return;
    }
    let net = Topology::builder()
        .host("h")
        .router("r")
        .host("t")
        .link("h", "r", Link::v4("10.64.1.0/24"))
        .link("r", "t", Link::v4("10.64.2.0/24"))
        // Both "time exceeded" errors must come back, not only the first of a burst.
        .sysctl("r", "net.ipv4.icmp_ratelimit", "0")
        .build()
        .unwrap();
    let t = net.v4("t").to_string();
    net.ns("h")
        .ip(&["addr", "add", "10.64.1.77/24", "dev", net.iface("h", "r")])
        .unwrap();
    let (ttl, tos, df, src) = capture_request(net.ns("t"), || {
        let s = PingSpec {
            ttl: Some(9),
            tos: Some(0xb8),
            df: true,
            source: Some("10.64.1.77".parse().unwrap()),
            ..spec(&t, 1, 0.01)
        };
        let r = block_on_mt(net.ns("h"), ping_all(vec![s], Privilege::Raw));
        assert_eq!(r[0].outcome, Outcome::Ok, "{r:?}");
    });
    // One router on the way decrements the TTL once.
    assert_eq!((ttl, tos, df), (8, 0xb8, true));
    assert_eq!(src, "10.64.1.77".parse::<IpAddr>().unwrap());

    let r = block_on_mt(
        net.ns("h"),
        ping_all(
            vec![
                PingSpec {
                    ttl: Some(1),
                    ..spec(&t, 2, 0.01)
                },
                PingSpec {
                    size: 3000,
                    df: true,
                    ..spec(&t, 1, 0.01)
                },
                PingSpec {
                    size: 3000,
                    ..spec(&t, 2, 0.01)
                },
            ],
            Privilege::Raw,
        ),
    );
    assert_eq!(r[0].outcome, Outcome::Unreachable, "{r:?}");
    let router = net.link_v4("r", "h");
    assert_eq!(
        detail(&r[0]).icmp_errors,
        vec![format!("time to live exceeded from {router} (2 times)")]
    );
    assert_eq!(r[1].outcome, Outcome::Unreachable, "{r:?}");
    assert!(
        detail(&r[1]).icmp_errors[0].contains("message too long"),
        "{r:?}"
    );
    assert_eq!(r[2].outcome, Outcome::Ok, "{r:?}");
    assert!(detail(&r[2]).replies.iter().all(|p| p.size == 3000));
}

/// A link delayed by 10 ms each way measures a 20 ms round trip. Ground truth is the
/// impairer's configured delay plus its own measured lateness; the tolerance (1 ms above, 0.1
/// ms below) covers two veth hops and the namespace's stack at a few tens of microseconds each,
/// plus the impairer's lateness p99 reported for this very run.
#[test]
fn exclusive_ping_measures_a_known_delay() {
    if !privileged("exclusive_ping_measures_a_known_delay") {
        return;
    }
    let net = Topology::builder()
        .host("a")
        .host("b")
        .link(
            "a",
            "b",
            Link::v4("10.65.0.0/24")
                .v6("fd00:65::/64")
                .impair(Impairment::delay_ms(10.0)),
        )
        .build()
        .unwrap();
    let specs = vec![spec(net.v4("b"), 30, 0.02), spec(net.v6("b"), 30, 0.02)];
    let results = block_on_mt(net.ns("a"), ping_all(specs, Privilege::Auto));
    let stats = net.impairer_stats("a", "b");
    let slack_ms = (stats.a_to_b.late_p99_us + stats.b_to_a.late_p99_us) / 1000.0;
    for r in &results {
        let d = detail(r);
        assert_eq!(d.received, 30, "{r:?}");
        let s = d.rtt_ms.unwrap();
        assert!(
            s.p50 >= 19.9 && s.p50 <= 21.0 + slack_ms,
            "median {} ms for a 20 ms path (impairer lateness p99 sum {slack_ms} ms)",
            s.p50
        );
        assert!(s.min >= 19.9, "min {} below the impaired delay", s.min);
        assert_eq!(r.quality.tx_timestamp, TimestampSource::Kernel);
        assert_eq!(r.quality.rx_timestamp, TimestampSource::Kernel);
    }
}

/// 10 % loss on the way out: the lost requests are exactly those the impairer dropped, and
/// their number is inside the 99.9 % binomial interval for 1000 requests. IPv6 is off on the
/// sending host, so no other frame (MLD reports, router solicitations) crosses the lossy
/// direction and the impairer's drop counter counts our requests only.
#[test]
fn exclusive_ping_loss_matches_the_impairer_and_binomial_bounds() {
    if !privileged("exclusive_ping_loss_matches_the_impairer_and_binomial_bounds") {
        return;
    }
    let net = Topology::builder()
        .host("a")
        .host("b")
        .sysctl("a", "net.ipv6.conf.all.disable_ipv6", "1")
        .sysctl("a", "net.ipv6.conf.default.disable_ipv6", "1")
        .link(
            "a",
            "b",
            Link::v4("10.66.0.0/24").impair_ab(Impairment::none().loss(0.10)),
        )
        .build()
        .unwrap();
    let before = net.impairer_stats("a", "b").a_to_b;
    let s = PingSpec {
        timeout: 0.5,
        ..spec(net.v4("b"), 1000, 0.002)
    };
    let results = block_on_mt(net.ns("a"), ping_all(vec![s], Privilege::Auto));
    let after = net.impairer_stats("a", "b").a_to_b;
    let d = detail(&results[0]);
    let dropped = after.lost - before.lost;
    assert_eq!(d.sent, 1000);
    assert_eq!(
        u64::from(d.sent - d.received),
        dropped,
        "lost = impairer drops"
    );
    assert_eq!(d.lost.len() as u64, dropped);
    let (lo, hi) = vantage_testnet::stats::binomial_interval(1000, 0.10, 0.999);
    assert!(
        (lo..=hi).contains(&dropped),
        "{dropped} outside [{lo}, {hi}]"
    );
    assert!((d.loss - dropped as f64 / 1000.0).abs() < 1e-12);
}

/// 60 000 AnyIP addresses, one request each, as fast as the socket takes them: every target
/// answers, every RTT is kernel-stamped, results come back in input order.
#[test]
fn exclusive_sweep_60000_anyip_targets_all_answer() {
    if !privileged("exclusive_sweep_60000_anyip_targets_all_answer") {
        return;
    }
    let net = Topology::builder()
        .host("h")
        .anyip("h", "10.200.0.0/16")
        .build()
        .unwrap();
    let targets: Vec<String> = (0..60_000u32)
        .map(|i| format!("10.200.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let specs = targets.iter().map(|t| spec(t, 1, 1.0)).collect();
    let results = block_on_mt(net.ns("h"), ping_all(specs, Privilege::Auto));
    assert_eq!(results.len(), 60_000);
    let mut not_ok = 0;
    for (r, t) in results.iter().zip(&targets) {
        assert_eq!(&r.target, t);
        if r.outcome != Outcome::Ok {
            not_ok += 1;
            continue;
        }
        let d = detail(r);
        assert_eq!(d.address.to_string(), *t);
        assert_eq!(r.quality.tx_timestamp, TimestampSource::Kernel);
        assert_eq!(r.quality.rx_timestamp, TimestampSource::Kernel);
    }
    assert_eq!(not_ok, 0, "every AnyIP target answers");
}

/// An IPv4 and an IPv6 AnyIP range swept in one run (two groups, each on its own sockets), raw
/// and unprivileged: every target answers.
#[test]
fn exclusive_sweep_ipv4_and_ipv6_ranges_raw_and_unprivileged() {
    if !privileged("exclusive_sweep_ipv4_and_ipv6_ranges_raw_and_unprivileged") {
        return;
    }
    let net = Topology::builder()
        .host("h")
        .anyip("h", "10.201.0.0/20")
        .anyip("h", "fd00:201::/116")
        .allow_unprivileged_ping("h")
        .build()
        .unwrap();
    let mut specs: Vec<PingSpec> = (1..4095u32)
        .map(|i| spec(format!("10.201.{}.{}", i >> 8, i & 255), 1, 1.0))
        .collect();
    specs.extend((1..4096u32).map(|i| spec(format!("fd00:201::{i:x}"), 1, 1.0)));
    for privilege in [Privilege::Raw, Privilege::Unprivileged] {
        let results = block_on_mt(net.ns("h"), ping_all(specs.clone(), privilege));
        let failed: Vec<_> = results
            .iter()
            .filter(|r| r.outcome != Outcome::Ok)
            .collect();
        assert!(
            failed.is_empty(),
            "{privilege:?}: {} failed, first {:?}",
            failed.len(),
            failed.first()
        );
        let v6 = results
            .iter()
            .filter(|r| detail(r).address.is_ipv6())
            .count();
        assert_eq!(v6, 4095);
    }
}

/// vantage and iputils `ping` on the same impaired path (1 ms each way), interleaved in rounds so
/// both see the same conditions: their medians agree within 50 µs. iputils stamps the send in
/// user space before `sendmsg` and the receive in the kernel; vantage stamps both in the kernel,
/// so it may read a few microseconds less, never more than the syscall path.
#[test]
fn exclusive_ping_agrees_with_iputils_within_50_us() {
    let name = "exclusive_ping_agrees_with_iputils_within_50_us";
    if !privileged(name) {
        return;
    }
    let Some(iputils) = vantage_testnet::need_binary(name, "ping") else {
        return;
    };
    let net = Topology::builder()
        .host("a")
        .host("b")
        .link(
            "a",
            "b",
            Link::v4("10.67.0.0/24").impair(Impairment::delay_ms(1.0)),
        )
        .build()
        .unwrap();
    let b = net.v4("b").to_string();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let r = block_on_mt(
            net.ns("a"),
            ping_all(vec![spec(&b, 20, 0.01)], Privilege::Raw),
        );
        ours.extend(detail(&r[0]).replies.iter().map(|p| p.rtt_ms));
        let out = net
            .ns("a")
            .command(&iputils)
            .args(["-n", "-c", "20", "-i", "0.01", "-W", "1", &b])
            .output()
            .unwrap();
        let p = vantage_testnet::tools::parse_ping(&String::from_utf8_lossy(&out.stdout)).unwrap();
        theirs.extend(p.rtts());
    }
    assert_eq!(ours.len(), 100);
    assert_eq!(theirs.len(), 100);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[49] + v[50]) / 2.0
    };
    let (m_ours, m_theirs) = (median(&mut ours), median(&mut theirs));
    let diff_us = (m_ours - m_theirs).abs() * 1000.0;
    assert!(
        diff_us <= 50.0,
        "vantage median {m_ours:.4} ms, iputils {m_theirs:.4} ms: {diff_us:.1} µs apart"
    );
    assert!(
        (1.9..2.5).contains(&m_ours),
        "a 2 ms round trip measured {m_ours} ms"
    );
}
