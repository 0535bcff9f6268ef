//! `vantage trace` and `vantage mtr` end to end: the binary run inside a namespace of a router
//! chain (text, JSON, exit codes), and bad input rejected with exit code 2 before anything is
//! sent.

use std::net::IpAddr;
use std::process::Output;

use vantage_testnet::{Link, Topology, need_binary, privileged};

fn vantage() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_vantage"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn bad_input_exits_2_with_a_sentence_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["trace", "-f", "9", "-m", "3", "192.0.2.1"],
            "invalid -f/--first-ttl: the TTL range is inverted",
        ),
        (
            &["trace", "-P", "sctp", "192.0.2.1"],
            "unknown protocol 'sctp'; use icmp, udp or tcp",
        ),
        (
            &["trace", "-P", "tcp", "-s", "100", "192.0.2.1"],
            "invalid -s/--size: TCP trace probes are bare SYNs",
        ),
        (
            &["trace", "-p", "53", "192.0.2.1"],
            "invalid -p/--port: ICMP traces have no ports",
        ),
        (
            &["mtr", "-q", "11", "192.0.2.1"],
            "invalid -q/--queries: 11 is out of range",
        ),
        (
            &["trace", "-P", "udp", "--flows", "0", "192.0.2.1"],
            "invalid --flows: 0 is out of range",
        ),
        (
            &[
                "trace",
                "-P",
                "udp",
                "--source-port",
                "65535",
                "--flows",
                "2",
                "192.0.2.1",
            ],
            "invalid --source-port: 2 flows from source port 65535",
        ),
        (&["mtr", "-c", "0", "192.0.2.1"], "invalid -c/--count"),
        (&["trace", "-s", "1", "192.0.2.1"], "invalid -s/--size"),
        (&["trace", "-m", "300", "192.0.2.1"], "invalid value '300'"),
        (&["trace", "-w", "0", "192.0.2.1"], "invalid -W/--timeout"),
        (&["trace", "-4", "2001:db8::1"], "is not an IPv4 address"),
        (&["trace", "-x"], "unexpected argument"),
    ];
    for (args, want) in cases {
        let out = vantage().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(want), "{args:?}: {}", text(&out));
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing half-written on stdout"
        );
    }
}

/// client — r1 — r2 — server, dual stack.
fn chain() -> Topology {
    Topology::builder()
        .host("client")
        .router("r1")
        .router("r2")
        .host("server")
        .link(
            "client",
            "r1",
            Link::v4("10.43.1.0/24").v6("fd00:43:1::/64"),
        )
        .link("r1", "r2", Link::v4("10.43.2.0/24").v6("fd00:43:2::/64"))
        .link(
            "r2",
            "server",
            Link::v4("10.43.3.0/24").v6("fd00:43:3::/64"),
        )
        .build()
        .expect("chain")
}

fn run_in(net: &Topology, args: &[&str]) -> Output {
    net.ns("client")
        .command(env!("CARGO_BIN_EXE_vantage"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn trace_lists_every_hop_and_exits_0_when_the_destination_answers() {
    if !privileged("trace_lists_every_hop_and_exits_0_when_the_destination_answers") {
        return;
    }
    let net = chain();
    let hops = [
        net.link_v4("r1", "client").to_string(),
        net.link_v4("r2", "r1").to_string(),
        net.link_v4("server", "r2").to_string(),
    ];
    let out = run_in(&net, &["trace", "-n", &hops[2]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("trace to {}, ICMP, raw socket", hops[2])),
        "{stdout}"
    );
    assert_eq!(lines.len(), 4, "{stdout}");
    for (i, hop) in hops.iter().enumerate() {
        let words: Vec<&str> = lines[i + 1].split_whitespace().collect();
        assert_eq!(words[0], (i + 1).to_string(), "{stdout}");
        assert_eq!(words[1], hop, "{stdout}");
        // Three probes, three times.
        assert_eq!(words.iter().filter(|w| **w == "ms").count(), 3, "{stdout}");
    }

    // IPv6, UDP, JSON: the detail as the issue specifies it.
    let target = net.link_v6("server", "r2").to_string();
    let out = run_in(
        &net,
        &["trace", "-n", "-P", "udp", "-q", "2", "--json", &target],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "trace");
    assert_eq!(v["outcome"], "ok");
    let d = &v["detail"];
    assert_eq!(d["reached"], true);
    assert_eq!(d["protocol"], "udp");
    let hops = d["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 3);
    assert_eq!(hops[0]["ttl"], 1);
    assert_eq!(
        hops[0]["addrs"][0]["ip"],
        net.link_v6("r1", "client").to_string()
    );
    assert_eq!(hops[2]["addrs"][0]["ip"], target);
    for h in hops {
        let a = &h["addrs"][0];
        assert_eq!(
            (a["sent"].as_u64(), a["received"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(a["loss"], 0.0);
        for k in ["last", "avg", "best", "worst", "stddev", "jitter"] {
            assert!(a["rtt_ms"][k].as_f64().is_some(), "{k} in {a}");
        }
        assert!(a.get("rdns").is_none(), "-n resolves nothing");
    }
}

#[test]
fn mtr_reports_per_hop_statistics_over_its_rounds() {
    if !privileged("mtr_reports_per_hop_statistics_over_its_rounds") {
        return;
    }
    let net = chain();
    let target = net.link_v4("server", "r2").to_string();
    // Three rounds at one per second stay within what the routers answer.
    let out = run_in(&net, &["mtr", "-n", "-c", "3", &target]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("3 rounds"), "{stdout}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "HOP", "HOST", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Jttr"
        ]
    );
    assert_eq!(lines.len(), 5, "{stdout}");
    let last: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(
        &last[..4],
        ["3.|--", target.as_str(), "0%", "3"],
        "{stdout}"
    );

    let out = run_in(
        &net,
        &["mtr", "-n", "-c", "2", "-i", "0.5", "--json", &target],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["detail"]["rounds"], 2);
    for h in v["detail"]["hops"].as_array().unwrap() {
        assert_eq!(h["sent"], 2, "{h}");
        assert_eq!(h["probes"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn an_unreached_destination_exits_1_with_the_last_hop_that_answered() {
    let name = "an_unreached_destination_exits_1_with_the_last_hop_that_answered";
    if !privileged(name) || need_binary(name, "nft").is_none() {
        return;
    }
    let net = chain();
    let out = net
        .ns("server")
        .command("nft")
        .arg(
            "add table inet mute; \
             add chain inet mute in { type filter hook input priority 0; }; \
             add rule inet mute in icmp type echo-request drop",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let target = net.link_v4("server", "r2").to_string();
    let out = run_in(
        &net,
        &["trace", "-n", "-q", "1", "-m", "4", "-w", "0.2", &target],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 5, "hops 1 to 4: {stdout}");
    assert!(
        stdout.lines().last().unwrap().ends_with(" 4  *"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r2: IpAddr = net.link_v4("r2", "r1").into();
    assert!(
        stderr.contains(&format!(
            "{target} did not answer within 4 hops; the last hop that answered was 2 ({r2})"
        )),
        "{stderr}"
    );
}

#[test]
fn without_raw_socket_rights_trace_exits_2_and_says_how_to_grant_them() {
    if !privileged("without_raw_socket_rights_trace_exits_2_and_says_how_to_grant_them") {
        return;
    }
    let net = chain();
    let target = net.link_v4("server", "r2").to_string();
    let out = net
        .ns("client")
        .command_unprivileged(env!("CARGO_BIN_EXE_vantage"))
        .args(["trace", "-n", &target])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot trace: raw IPv4 sockets need CAP_NET_RAW"),
        "{}",
        text(&out)
    );
}

#[test]
fn hop_names_come_from_the_system_resolver_unless_n_is_given() {
    if !privileged("hop_names_come_from_the_system_resolver_unless_n_is_given") {
        return;
    }
    // Loopback: one hop, named in /etc/hosts, so nothing leaves the machine.
    let out = vantage()
        .args(["trace", "-q", "1", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 1  localhost (127.0.0.1)  "), "{stdout}");
    let out = vantage()
        .args(["mtr", "-n", "-c", "1", "--json", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["detail"]["hops"][0]["addrs"][0].get("rdns").is_none());
    let out = vantage()
        .args(["mtr", "-c", "1", "--json", "127.0.0.1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["detail"]["hops"][0]["addrs"][0]["rdns"], "localhost");
}
