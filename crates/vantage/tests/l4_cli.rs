//! `vantage tcp` and `vantage udp` end to end through the built binary: exit codes (0 answered,
//! 1 not, 2 bad input), JSON Lines with counters and per-source-port results, the table, and
//! clear sentences for bad input. Loopback tests need no privilege; the SYN and source-port
//! tests run in a namespace pair as root.

use std::net::{IpAddr, TcpListener};
use std::process::Command;

use serde_json::Value;
use vantage_testnet::{Link, Topology};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Run {
    let out = c.output().expect("vantage runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn vantage(args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vantage"));
    c.args(args);
    run(c)
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["tcp", "-p", "0", "127.0.0.1"],
            "invalid -p/--port: port 0 cannot be probed",
        ),
        (
            &["udp", "-p", "0", "127.0.0.1"],
            "invalid -p/--port: port 0 cannot be probed",
        ),
        (
            &[
                "tcp",
                "-p",
                "80",
                "--source-ports",
                "2000-1000",
                "127.0.0.1",
            ],
            "is inverted: the first port must not be above the last",
        ),
        (
            &["udp", "-p", "80", "--source-ports", "0-10", "127.0.0.1"],
            "is not a port range",
        ),
        (
            &["tcp", "-p", "80", "-c", "0", "127.0.0.1"],
            "invalid -c/--count",
        ),
        (
            &["udp", "-p", "80", "-c", "0", "127.0.0.1"],
            "invalid -c/--count",
        ),
        (
            &["tcp", "-p", "80", "-W", "0", "127.0.0.1"],
            "invalid -W/--timeout",
        ),
        (&["tcp", "-p", "70000", "127.0.0.1"], "70000"),
        (&["tcp", "127.0.0.1"], "--port"),
        (
            &["tcp", "-p", "80", "-6", "127.0.0.1"],
            "target 127.0.0.1 is not an IPv6 address",
        ),
        (
            &["tcp", "-p", "80", "nonexistent.invalid"],
            "could not resolve",
        ),
        (
            &["udp", "-p", "80", "nonexistent.invalid"],
            "could not resolve",
        ),
    ];
    for (args, says) in cases {
        let r = vantage(args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

/// A listener on loopback; connections are accepted and kept so none is closed by the server.
fn loopback_listener() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for c in l.incoming().flatten() {
            open.push(c);
        }
    });
    port
}

/// A loopback port nothing listens on (bound once, then closed).
fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

#[test]
fn tcp_connect_on_loopback_exits_0_when_open_and_1_when_refused() {
    let open = loopback_listener().to_string();
    let r = vantage(&[
        "tcp",
        "-p",
        &open,
        "-c",
        "3",
        "-i",
        "0.05",
        "--json",
        "127.0.0.1",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = &json_lines(&r.stdout)[0];
    assert_eq!(v["type"], "tcp");
    assert_eq!(v["outcome"], "ok");
    let d = &v["detail"];
    assert_eq!((d["sent"].as_u64(), d["open"].as_u64()), (Some(3), Some(3)));
    assert_eq!(d["mode"], "connect");
    assert_eq!(d["probes"].as_array().unwrap().len(), 3);
    assert_eq!(
        d["ports"][0]["sent"], 3,
        "one kernel-chosen port for the run"
    );
    assert!(d["rtt_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(v["quality"]["socket"], "stream");

    let closed = free_port(false).to_string();
    let r = vantage(&["tcp", "-p", &closed, "-c", "2", "-i", "0.05", "127.0.0.1"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("refused (RST)"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("refused: the host answered with a reset (port closed)"),
        "{}",
        r.stderr
    );
}

#[test]
fn udp_on_loopback_is_answered_by_port_unreachable_and_exits_0() {
    let closed = free_port(true).to_string();
    let r = vantage(&[
        "udp",
        "-p",
        &closed,
        "-c",
        "3",
        "-i",
        "0.05",
        "--json",
        "127.0.0.1",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = &json_lines(&r.stdout)[0];
    assert_eq!(v["outcome"], "ok");
    let d = &v["detail"];
    assert_eq!(d["port_unreachable"], 3);
    assert_eq!(d["probes"][0]["status"], "port_unreachable");
    // Unprivileged or not, the path taken is reported.
    let r = vantage(&[
        "udp",
        "-p",
        &closed,
        "-c",
        "1",
        "--unprivileged",
        "--json",
        "127.0.0.1",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = &json_lines(&r.stdout)[0];
    assert_eq!(v["quality"]["socket"], "dgram");
    assert_eq!(v["quality"]["privileged"], false);
}

fn pair() -> Topology {
    Topology::builder()
        .host("client")
        .host("server")
        .link(
            "client",
            "server",
            Link::v4("10.73.1.0/24").v6("fd73:1::/64"),
        )
        .build()
        .expect("the namespace pair builds")
}

fn listen_in(net: &Topology, node: &str) -> u16 {
    // `[::]` takes IPv4 too (net.ipv6.bindv6only is 0 in a new namespace).
    let l = net.ns(node).run(|| TcpListener::bind("[::]:0").unwrap());
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for c in l.incoming().flatten() {
            open.push(c);
        }
    });
    port
}

#[test]
fn tcp_syn_json_lines_carry_counters_and_per_source_port_results_v4_and_v6() {
    if !vantage_testnet::privileged("tcp_syn_json_lines_carry_counters") {
        return;
    }
    let net = pair();
    let port = listen_in(&net, "server").to_string();
    let targets: [IpAddr; 2] = [net.v4("server").into(), net.v6("server").into()];
    let (t4, t6) = (targets[0].to_string(), targets[1].to_string());
    let mut c = net.ns("client").command(env!("CARGO_BIN_EXE_vantage"));
    c.args([
        "tcp",
        "-p",
        &port,
        "--syn",
        "--source-ports",
        "33000-33003",
        "-c",
        "8",
        "-i",
        "0.02",
        "--json",
        &t4,
        &t6,
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines = json_lines(&r.stdout);
    assert_eq!(lines.len(), 2, "one line per target: {}", r.stdout);
    for (v, target) in lines.iter().zip(targets) {
        assert_eq!(v["target"], target.to_string());
        assert_eq!(v["outcome"], "ok");
        assert_eq!(v["quality"]["socket"], "raw");
        assert_eq!(v["quality"]["privileged"], true);
        let d = &v["detail"];
        assert_eq!(d["mode"], "syn");
        assert_eq!(
            (d["sent"].as_u64(), d["received"].as_u64()),
            (Some(8), Some(8))
        );
        assert_eq!(
            (d["open"].as_u64(), d["refused"].as_u64()),
            (Some(8), Some(0))
        );
        assert_eq!(d["loss"], 0.0);
        let ports = d["ports"].as_array().unwrap();
        let got: Vec<(u64, u64, u64)> = ports
            .iter()
            .map(|p| {
                (
                    p["src_port"].as_u64().unwrap(),
                    p["sent"].as_u64().unwrap(),
                    p["received"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![(33000, 2, 2), (33001, 2, 2), (33002, 2, 2), (33003, 2, 2)]
        );
        assert!(
            ports
                .iter()
                .all(|p| p["rtt_ms"]["avg"].as_f64().unwrap() > 0.0)
        );
    }
    // The table shows the per-port rows and the totals.
    let mut c = net.ns("client").command(env!("CARGO_BIN_EXE_vantage"));
    c.args([
        "tcp",
        "-p",
        &port,
        "--syn",
        "--source-ports",
        "33010-33011",
        "-c",
        "4",
        "-i",
        "0.02",
        &t4,
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("SPORT"), "{}", r.stdout);
    assert!(r.stdout.contains(" 33011 "), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("4 probes sent, 4 answered (4 open, 0 refused), 0% loss"),
        "{}",
        r.stdout
    );
}

#[test]
fn udp_json_lines_carry_per_source_port_results_and_a_filtered_port_exits_1() {
    if !vantage_testnet::privileged("udp_json_lines_carry_per_source_port_results") {
        return;
    }
    let net = pair();
    net.ns("server")
        .set_sysctl("net.ipv4.icmp_ratelimit", "0")
        .unwrap();
    let t4 = net.v4("server").to_string();
    let mut c = net.ns("client").command(env!("CARGO_BIN_EXE_vantage"));
    c.args([
        "udp",
        "-p",
        "33434",
        "--source-ports",
        "40000-40001",
        "-c",
        "4",
        "-i",
        "0.02",
        "--json",
        &t4,
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = &json_lines(&r.stdout)[0];
    let d = &v["detail"];
    assert_eq!(d["port_unreachable"], 4);
    assert_eq!(d["ports"][1]["src_port"], 40001);
    assert_eq!(d["ports"][1]["received"], 2);
    // Nothing answers for an address nobody has: exit 1 with the sentence.
    let dead = "10.73.1.99";
    let mut c = net.ns("client").command(env!("CARGO_BIN_EXE_vantage"));
    c.args(["udp", "-p", "33434", "-c", "1", "-W", "0.3", dead]);
    let r = run(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("UDP probe to 10.73.1.99:33434"),
        "{}",
        r.stderr
    );
}
