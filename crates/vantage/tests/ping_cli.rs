//! `vantage ping` end to end: the built binary run inside private namespaces, with JSON Lines
//! checked field by field, the iputils-like text, exit codes 0 / 1 / 2, the unprivileged path
//! (uid 65534, no capabilities) and bad input refused with a sentence.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use vantage_testnet::{Link, Topology, privileged};

const VANTAGE: &str = env!("CARGO_BIN_EXE_vantage");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("vantage runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn here(args: &[&str]) -> Run {
    let mut c = Command::new(VANTAGE);
    c.args(args);
    run(c)
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A host with loopback, a v4+v6 AnyIP range, and a router that blackholes 10.70.9.0/24.
fn bed() -> Topology {
    let net = Topology::builder()
        .host("h")
        .router("r")
        .link("h", "r", Link::v4("10.70.0.0/24").v6("fd00:70::/64"))
        .anyip("h", "10.71.0.0/24")
        .anyip("h", "fd00:71::/120")
        .allow_unprivileged_ping("h")
        .build()
        .expect("topology");
    net.ns("r")
        .ip(&["route", "add", "blackhole", "10.70.9.0/24"])
        .unwrap();
    net
}

#[test]
fn json_lines_carry_the_documented_fields_and_exit_0() {
    if !privileged("json_lines_carry_the_documented_fields_and_exit_0") {
        return;
    }
    let net = bed();
    let mut c = net.ns("h").command(VANTAGE);
    c.args([
        "ping",
        "-c",
        "3",
        "-i",
        "0.02",
        "--json",
        "127.0.0.1",
        "::1",
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = lines(&r.stdout);
    assert_eq!(v.len(), 2, "one line per target: {}", r.stdout);
    for (j, target) in v.iter().zip(["127.0.0.1", "::1"]) {
        assert_eq!(j["type"], "ping");
        assert_eq!(j["target"], target);
        assert_eq!(j["outcome"], "ok");
        let d = &j["detail"];
        assert_eq!(d["sent"], 3);
        assert_eq!(d["received"], 3);
        assert_eq!(d["loss"], 0.0);
        for k in ["min", "avg", "max", "mdev", "p50", "p95", "p99"] {
            let x = d["rtt_ms"][k]
                .as_f64()
                .unwrap_or_else(|| panic!("rtt_ms.{k}"));
            assert!(x > 0.0 && x < 10.0, "rtt_ms.{k} = {x}");
        }
        let replies = d["replies"].as_array().unwrap();
        assert_eq!(replies.len(), 3);
        for (i, p) in replies.iter().enumerate() {
            assert_eq!(p["seq"], i);
            assert_eq!(p["ttl"], 64);
            assert!(p["rtt_ms"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(j["quality"]["tx_timestamp"], "kernel");
        assert_eq!(j["quality"]["rx_timestamp"], "kernel");
        assert_eq!(j["quality"]["socket"], "raw");
    }
}

#[test]
fn a_single_target_prints_like_iputils() {
    if !privileged("a_single_target_prints_like_iputils") {
        return;
    }
    let net = bed();
    let mut c = net.ns("h").command(VANTAGE);
    c.args(["ping", "-c", "2", "-i", "0.02", "127.0.0.1"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with(
            "PING 127.0.0.1 (127.0.0.1): 56 data bytes, raw socket, kernel timestamps"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("64 bytes from 127.0.0.1: seq=0 ttl=64 time="),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("2 packets transmitted, 2 received, 0% packet loss"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("rtt min/avg/max/mdev = "), "{}", r.stdout);
}

#[test]
fn a_sweep_prints_a_row_per_target_and_exits_1_when_some_do_not_answer() {
    if !privileged("a_sweep_prints_a_row_per_target_and_exits_1_when_some_do_not_answer") {
        return;
    }
    let net = bed();
    // 254 AnyIP addresses answer; two blackholed ones do not.
    let mut c = net.ns("h").command(VANTAGE);
    c.args([
        "ping",
        "-c",
        "1",
        "-W",
        "0.3",
        "10.71.0.0/24",
        "10.70.9.1",
        "10.70.9.2",
    ]);
    let r = run(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let rows: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("10.")).collect();
    assert_eq!(rows.len(), 256, "{}", r.stdout);
    assert!(rows[0].starts_with("10.71.0.1 "), "{}", rows[0]);
    assert!(
        rows[255].contains("timeout: no reply from 10.70.9.2"),
        "{}",
        rows[255]
    );
    assert!(
        r.stdout.contains("254 of 256 targets answered"),
        "{}",
        r.stdout
    );

    // The same from a file, in JSON, over IPv6.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    let list: String = (1..=255).map(|i| format!("fd00:71::{i:x}\n")).collect();
    std::fs::write(&file, format!("# lab\n{list}")).unwrap();
    let mut c = net.ns("h").command(VANTAGE);
    c.args(["ping", "-c", "1", "--json", "-f"]).arg(&file);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = lines(&r.stdout);
    assert_eq!(v.len(), 255);
    assert!(v.iter().all(|j| j["outcome"] == "ok"));
    assert_eq!(v[16]["target"], "fd00:71::11");
}

/// A copy of the binary in a directory user 65534 can read.
fn copy_for_nobody() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("vantage");
    std::fs::copy(VANTAGE, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

#[test]
fn without_privilege_the_datagram_socket_is_used_and_reported() {
    if !privileged("without_privilege_the_datagram_socket_is_used_and_reported") {
        return;
    }
    let net = bed();
    let (_dir, bin) = copy_for_nobody();
    let mut c = net.ns("h").command_unprivileged(&bin);
    c.args([
        "ping",
        "-c",
        "2",
        "-i",
        "0.02",
        "--json",
        "127.0.0.1",
        "::1",
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for j in lines(&r.stdout) {
        assert_eq!(j["outcome"], "ok");
        assert_eq!(j["quality"]["socket"], "dgram");
        assert_eq!(j["quality"]["privileged"], false);
        assert_eq!(j["quality"]["tx_timestamp"], "kernel");
        assert!(j["quality"]["notes"].to_string().contains("no CAP_NET_RAW"));
    }
    // --raw without the capability: a setup error, exit 2, a sentence naming the capability.
    let mut c = net.ns("h").command_unprivileged(&bin);
    c.args(["ping", "-c", "1", "--raw", "127.0.0.1"]);
    let r = run(c);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("CAP_NET_RAW"), "{}", r.stderr);
}

#[test]
fn bad_input_is_a_sentence_and_exit_2() {
    // None of these sends a packet, so no privilege is needed.
    for (args, expect) in [
        (
            vec!["ping", "-c", "1", "nonexistent.invalid"],
            "could not resolve nonexistent.invalid",
        ),
        (
            vec!["ping", "-c", "1", "10.0.0.0/33"],
            "'10.0.0.0/33' is not a valid CIDR range",
        ),
        (vec!["ping", "-c", "0", "127.0.0.1"], "invalid -c/--count"),
        (
            vec!["ping", "-s", "65508", "127.0.0.1"],
            "invalid -s/--size",
        ),
        (vec!["ping", "-s", "70000", "127.0.0.1"], "70000"),
        (
            vec!["ping", "-i", "0", "127.0.0.1"],
            "invalid -i/--interval",
        ),
        (vec!["ping", "-6", "127.0.0.1"], "not an IPv6 address"),
    ] {
        let r = here(&args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(expect), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}
