//! The bed itself, proven with real tools: forwarding, TTLs, AnyIP, running code inside
//! namespaces, privilege dropping, cleanup and isolation between parallel topologies.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;

use vantage_testnet::tools::parse_ping;
use vantage_testnet::{Link, Topology, privileged};

fn ping(
    net: &Topology,
    from: &str,
    target: impl ToString,
    count: u32,
) -> vantage_testnet::tools::PingOutput {
    let out = net
        .ns(from)
        .command("ping")
        .args(["-n", "-c", &count.to_string(), "-i", "0.01", "-W", "2"])
        .arg(target.to_string())
        .output()
        .expect("ping runs");
    parse_ping(&String::from_utf8_lossy(&out.stdout)).expect("ping output parses")
}

fn chain() -> Topology {
    Topology::builder()
        .host("client")
        .router("r1")
        .router("r2")
        .router("r3")
        .host("server")
        .link("client", "r1", Link::v4("10.1.1.0/24").v6("fd00:1:1::/64"))
        .link("r1", "r2", Link::v4("10.1.2.0/24").v6("fd00:1:2::/64"))
        .link("r2", "r3", Link::v4("10.1.3.0/24").v6("fd00:1:3::/64"))
        .link("r3", "server", Link::v4("10.1.4.0/24").v6("fd00:1:4::/64"))
        .build()
        .expect("the chain builds")
}

#[test]
fn three_router_chain_forwards_v4_and_v6_and_each_hop_decrements_ttl() {
    if !privileged("three_router_chain_forwards_v4_and_v6_and_each_hop_decrements_ttl") {
        return;
    }
    let net = chain();
    assert_eq!(net.v4("server"), Ipv4Addr::new(10, 1, 4, 2));
    assert_eq!(net.link_v4("r3", "server"), Ipv4Addr::new(10, 1, 4, 1));
    assert_eq!(net.iface("r2", "r3"), "eth1");
    // Replies from the far end cross three routers: 64 − 3 = 61, for IPv4 TTL and IPv6 hop limit.
    for target in [net.v4("server").to_string(), net.v6("server").to_string()] {
        let p = ping(&net, "client", &target, 3);
        assert_eq!(p.received, 3, "no full answer from {target}: {p:?}");
        assert!(p.replies.iter().all(|r| r.1 == 61), "{target}: {p:?}");
    }
    // One router fewer, one more hop of TTL left: each router really forwards and decrements.
    let p = ping(&net, "client", net.link_v4("r3", "r2"), 2);
    assert!(p.replies.iter().all(|r| r.1 == 62), "{p:?}");
    let p = ping(&net, "client", net.link_v6("r1", "client"), 2);
    assert!(p.replies.iter().all(|r| r.1 == 64), "{p:?}");
    // The reverse direction is routed as well.
    let p = ping(&net, "server", net.v6("client"), 2);
    assert_eq!(p.received, 2, "{p:?}");
    // Hosts do not forward.
    assert_eq!(net.ns("client").sysctl("net.ipv4.ip_forward").unwrap(), "0");
    assert_eq!(net.ns("r2").sysctl("net.ipv4.ip_forward").unwrap(), "1");
    assert_eq!(
        net.ns("r2").sysctl("net.ipv6.conf.all.forwarding").unwrap(),
        "1"
    );
}

#[test]
fn anyip_range_answers_random_addresses_and_nothing_outside_it() {
    if !privileged("anyip_range_answers_random_addresses_and_nothing_outside_it") {
        return;
    }
    let Some(fping) = vantage_testnet::need_binary(
        "anyip_range_answers_random_addresses_and_nothing_outside_it",
        "fping",
    ) else {
        return;
    };
    let net = Topology::builder()
        .host("client")
        .router("r1")
        .host("server")
        .link("client", "r1", Link::v4("10.1.1.0/24").v6("fd00:1:1::/64"))
        .link("r1", "server", Link::v4("10.1.2.0/24").v6("fd00:1:2::/64"))
        .anyip("server", "10.200.0.0/16")
        .anyip("server", "fd00:200::/64")
        .build()
        .unwrap();
    let mut targets: Vec<String> = (0..40)
        .map(|_| {
            let x: u16 = rand::random();
            format!("10.200.{}.{}", x >> 8, x & 0xff)
        })
        .collect();
    targets.extend((0..20).map(|_| {
        let x: u64 = rand::random();
        format!("fd00:200::{:x}:{:x}", x >> 48, x & 0xffff)
    }));
    let out = net
        .ns("client")
        .command(&fping)
        .args(["-c", "1", "-t", "1000", "-q"])
        .args(&targets)
        .output()
        .unwrap();
    // fping -q prints one summary per target on stderr: "addr : xmt/rcv/%loss = 1/1/0%".
    let summary = String::from_utf8_lossy(&out.stderr);
    let answered = summary.lines().filter(|l| l.contains("1/1/0%")).count();
    assert_eq!(answered, targets.len(), "fping said:\n{summary}");
    assert!(out.status.success());
    // An address just outside the range has no route at the last router: no answer.
    let p = ping(&net, "client", "10.201.0.1", 1);
    assert_eq!(p.received, 0, "{p:?}");
}

#[test]
fn code_and_async_code_run_inside_namespaces() {
    if !privileged("code_and_async_code_run_inside_namespaces") {
        return;
    }
    let net = Topology::builder()
        .host("a")
        .host("b")
        .link("a", "b", Link::v4("10.9.0.0/30").v6("fd00:9::/64"))
        .build()
        .unwrap();
    let b_addr = IpAddr::V6(net.v6("b"));
    // A UDP echo server on b (tokio, inside b's namespace), a blocking client in a.
    let server = UdpSocket::bind(std::net::SocketAddr::new(b_addr, 0));
    assert!(
        server.is_err(),
        "b's address must not exist in the test's own namespace"
    );
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            net.ns("b").block_on(async {
                let sock = tokio::net::UdpSocket::bind((b_addr, 0)).await.unwrap();
                port_tx.send(sock.local_addr().unwrap().port()).unwrap();
                let mut buf = [0u8; 64];
                let (n, from) = sock.recv_from(&mut buf).await.unwrap();
                sock.send_to(&buf[..n], from).await.unwrap();
            })
        });
        let port = port_rx.recv().unwrap();
        let reply = net.ns("a").run(|| {
            let sock = UdpSocket::bind("[::]:0").unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            sock.send_to(b"hello", (b_addr, port)).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from.ip())
        });
        assert_eq!(reply, (b"hello".to_vec(), b_addr));
    });
    // A panic inside `run` reaches the caller with its message.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        net.ns("a").run(|| panic!("inner failure"))
    }));
    let msg = caught.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"inner failure"));
}

#[test]
fn unprivileged_helpers_really_lack_raw_sockets_and_obey_ping_group_range() {
    if !privileged("unprivileged_helpers_really_lack_raw_sockets_and_obey_ping_group_range") {
        return;
    }
    let net = Topology::builder()
        .host("a")
        .host("b")
        .link("a", "b", Link::v4("10.9.0.0/30").v6("fd00:9::/64"))
        .build()
        .unwrap();
    let ns = net.ns("a");
    let icmp_dgram = || {
        socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::ICMPV4),
        )
        .map(drop)
        .map_err(|e| e.raw_os_error())
    };
    let raw = || {
        socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::ICMPV4),
        )
        .map(drop)
        .map_err(|e| e.raw_os_error())
    };
    // As root, raw sockets work; a new namespace forbids ICMP datagram sockets (range "1 0").
    assert_eq!(ns.sysctl("net.ipv4.ping_group_range").unwrap(), "1\t0");
    assert_eq!(ns.run(raw), Ok(()));
    // As nobody: no raw socket, and no datagram socket until the range allows it.
    let uid = ns.run_unprivileged(|| nix::unistd::getuid().as_raw());
    assert_eq!(uid, 65534);
    assert_eq!(ns.run_unprivileged(raw), Err(Some(libc::EPERM)));
    assert_eq!(ns.run_unprivileged(icmp_dgram), Err(Some(libc::EACCES)));
    ns.allow_unprivileged_ping().unwrap();
    assert_eq!(ns.run_unprivileged(icmp_dgram), Ok(()));
    // The test's own thread kept its privileges.
    assert!(nix::unistd::geteuid().is_root());
    // The same for a command: iputils ping as nobody works only through the datagram socket.
    // A copy of ping, because the installed one has file capabilities.
    let dir = tempfile::tempdir().unwrap();
    let ping_copy = dir.path().join("ping");
    let system_ping = vantage_testnet::need_binary("unprivileged_helpers", "ping").unwrap();
    std::fs::copy(system_ping, &ping_copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = net.v4("b").to_string();
    let as_nobody = |ns: &vantage_testnet::Ns| {
        ns.command_unprivileged(&ping_copy)
            .args(["-n", "-c", "1", "-W", "2", &target])
            .output()
            .unwrap()
    };
    assert!(as_nobody(ns).status.success());
    ns.set_ping_group_range(1, 0).unwrap();
    let denied = as_nobody(ns);
    assert!(
        !denied.status.success(),
        "ping worked without any socket right"
    );
    let id = ns.command_unprivileged("id").arg("-u").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "65534");
}

fn namespace_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn drop_removes_namespaces_and_kills_processes_inside() {
    if !privileged("drop_removes_namespaces_and_kills_processes_inside") {
        return;
    }
    let net = Topology::builder()
        .host("a")
        .router("r")
        .host("b")
        .link("a", "r", Link::v4("10.9.1.0/24"))
        .link(
            "r",
            "b",
            Link::v4("10.9.2.0/24").impair(vantage_testnet::Impairment::none()),
        )
        .build()
        .unwrap();
    let mut names: Vec<String> = ["a", "r", "b"]
        .iter()
        .map(|n| net.ns(n).name().to_string())
        .collect();
    names.push(
        net.wire("r", "b")
            .expect("impaired link has a wire")
            .name()
            .to_string(),
    );
    assert!(
        names
            .iter()
            .all(|n| namespace_exists(n) && n.starts_with("vt-"))
    );
    let mut sleeper = net.ns("b").command("sleep").arg("300").spawn().unwrap();
    // Wait until the child is inside the namespace (ip netns exec has exec'd into sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while net.ns("b").pids().is_empty() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(net.ns("b").pids(), vec![sleeper.id() as i32]);
    drop(net);
    assert!(
        names.iter().all(|n| !namespace_exists(n)),
        "left over: {names:?}"
    );
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "the process inside was not killed");
}

#[test]
fn a_panicking_test_still_cleans_up() {
    if !privileged("a_panicking_test_still_cleans_up") {
        return;
    }
    let mut names = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let net = Topology::builder()
            .host("a")
            .host("b")
            .link(
                "a",
                "b",
                Link::v4("10.9.0.0/30").impair(vantage_testnet::Impairment::delay_ms(1.0)),
            )
            .build()
            .unwrap();
        names.push(net.ns("a").name().to_string());
        names.push(net.ns("b").name().to_string());
        names.push(net.wire("a", "b").unwrap().name().to_string());
        panic!("the test failed");
    }));
    assert!(result.is_err());
    assert_eq!(names.len(), 3);
    assert!(
        names.iter().all(|n| !namespace_exists(n)),
        "left over: {names:?}"
    );
}

#[test]
fn stale_namespaces_of_dead_processes_are_removed() {
    if !privileged("stale_namespaces_of_dead_processes_are_removed") {
        return;
    }
    // pid_max is at most 2^22, so this pid can never be alive.
    let stale = format!("vt-99999999-0-n-stale{}", std::process::id());
    let status = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(status.success());
    // Our own live namespaces must survive the sweep.
    let net = Topology::builder()
        .host("a")
        .host("b")
        .link("a", "b", Link::v4("10.9.0.0/30"))
        .build()
        .unwrap();
    assert!(
        !namespace_exists(&stale),
        "build() did not sweep the stale namespace"
    );
    vantage_testnet::cleanup_stale();
    assert!(namespace_exists(net.ns("a").name()));
}

#[test]
fn parallel_topologies_with_the_same_names_and_prefixes_do_not_collide() {
    if !privileged("parallel_topologies_with_the_same_names_and_prefixes_do_not_collide") {
        return;
    }
    let results: Vec<(u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let net = Topology::builder()
                        .host("client")
                        .router("r1")
                        .host("server")
                        .link("client", "r1", Link::v4("10.1.1.0/24").v6("fd00:1:1::/64"))
                        .link("r1", "server", Link::v4("10.1.2.0/24").v6("fd00:1:2::/64"))
                        .build()
                        .unwrap();
                    let p = ping(&net, "client", net.v6("server"), 3);
                    (p.received, net.ns("client").name().to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|r| r.0 == 3), "{results:?}");
    let mut names: Vec<&String> = results.iter().map(|r| &r.1).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 4);
}

#[test]
fn sysctls_routes_and_mtu_from_the_builder_are_applied() {
    if !privileged("sysctls_routes_and_mtu_from_the_builder_are_applied") {
        return;
    }
    let net = Topology::builder()
        .host("a")
        .router("r")
        .host("b")
        .link("a", "r", Link::v4("10.9.1.0/24").mtu(1400))
        .link("r", "b", Link::v4("10.9.2.0/24"))
        .allow_unprivileged_ping("a")
        .sysctl("b", "net.ipv4.conf.eth0.rp_filter", "2")
        .route("a", "192.0.2.0/24", "10.9.1.2")
        .no_default_routes()
        .build()
        .unwrap();
    assert_eq!(
        net.ns("a").sysctl("net.ipv4.ping_group_range").unwrap(),
        "0\t2147483647"
    );
    assert_eq!(
        net.ns("b").sysctl("net.ipv4.conf.eth0.rp_filter").unwrap(),
        "2"
    );
    let routes = net.ns("a").ip(&["-4", "route"]).unwrap();
    assert!(routes.contains("192.0.2.0/24 via 10.9.1.2"), "{routes}");
    assert!(routes.contains("10.9.2.0/24 via 10.9.1.2"), "{routes}");
    assert!(!routes.contains("default"), "{routes}");
    let link = net.ns("a").ip(&["link", "show", "eth0"]).unwrap();
    assert!(link.contains("mtu 1400"), "{link}");
}

#[test]
fn invalid_topologies_are_rejected_with_a_clear_reason() {
    // No root needed: descriptions are checked before anything is created.
    let cases = [
        (
            Topology::builder()
                .host("a")
                .link("a", "b", Link::v4("10.0.0.0/24")),
            "unknown node 'b'",
        ),
        (Topology::builder().host("a").host("a"), "declared twice"),
        (Topology::builder().host("a b"), "letters, digits"),
        (
            Topology::builder()
                .host("a")
                .host("b")
                .link("a", "b", Link::v4("10.0.0.0/33")),
            "not an IPv4 prefix",
        ),
        (
            Topology::builder()
                .host("a")
                .host("b")
                .link("a", "b", Link::v4("10.0.0.0/31")),
            "too small",
        ),
        (
            Topology::builder().host("a").host("b").link(
                "a",
                "b",
                Link::v4("10.0.0.0/24").impair(vantage_testnet::Impairment::none().loss(2.0)),
            ),
            "probability",
        ),
        (
            Topology::builder().host("a").anyip("a", "10.200.0.0/99"),
            "not a prefix",
        ),
        (
            Topology::builder()
                .host("a")
                .route("a", "10.0.0.0/8", "fd00::1"),
            "mixes",
        ),
        (
            Topology::builder()
                .host("a")
                .sysctl("a", "kernel.pid_max", "1"),
            "not a network",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().expect_err(expected).to_string();
        assert!(err.contains(expected), "'{err}' does not say '{expected}'");
    }
}
