//! Measures the impairer's accuracy with iputils `ping`: for a range of configured one-way
//! delays, how far the measured round trip is from 2 × delay + the plain path, and the
//! impairer's own lateness; then how many packets per second a pass-through impairer carries
//! compared with a plain veth (flood ping). Needs root. Run: `bench/impairer-accuracy.sh`.

use std::process::Command;
use std::time::Instant;

use vantage_testnet::stats::quantile;
use vantage_testnet::tools::parse_ping;
use vantage_testnet::{Impairment, Link, Topology};

fn ping(net: &Topology, target: &str, args: &[&str]) -> vantage_testnet::tools::PingOutput {
    let out = net
        .ns("client")
        .command("chrt")
        .args(["-f", "20", "ping", "-n"])
        .args(args)
        .arg(target)
        .output()
        .expect("ping runs");
    parse_ping(&String::from_utf8_lossy(&out.stdout)).expect("ping output")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root: the bench builds network namespaces".into());
    }
    let count: usize = std::env::args()
        .nth(1)
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(200);
    let delays = [0.0, 1.0, 5.0, 20.0, 100.0];
    println!(
        "impairer accuracy, {count} pings per row at 10 ms intervals (ping prints ≥10 ms with 0.1 ms resolution)"
    );
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>12} {:>12} {:>12}",
        "delay ms",
        "want RTT",
        "min",
        "median",
        "p99",
        "excess p50",
        "late p50 µs",
        "late p99 µs",
        "late max µs"
    );
    for delay in delays {
        let net = Topology::builder()
            .host("client")
            .host("server")
            .host("far")
            .link("client", "server", Link::v4("10.1.1.0/24"))
            .link(
                "client",
                "far",
                Link::v4("10.1.2.0/24").impair(Impairment::delay_ms(delay)),
            )
            .build()?;
        let plain = net.v4("server").to_string();
        let target = "10.1.2.2";
        ping(&net, target, &["-c", "1", "-W", "2"]);
        ping(&net, &plain, &["-c", "1", "-W", "2"]);
        let n = count.to_string();
        let base = quantile(&ping(&net, &plain, &["-c", &n, "-i", "0.01"]).rtts(), 0.5);
        let p = ping(&net, target, &["-c", &n, "-i", "0.01", "-W", "2"]);
        let r = p.rtts();
        let want = 2.0 * delay + base;
        let stats = net.impairer_stats("client", "far");
        let late =
            |f: fn(&vantage_testnet::DirectionStats) -> f64| f(&stats.a_to_b).max(f(&stats.b_to_a));
        println!(
            "{:>10.1} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>11.3} {:>12.1} {:>12.1} {:>12.1}",
            delay,
            want,
            quantile(&r, 0.0),
            quantile(&r, 0.5),
            quantile(&r, 0.99),
            quantile(&r, 0.5) - want,
            late(|d| d.late_p50_us),
            late(|d| d.late_p99_us),
            late(|d| d.late_max_us),
        );
    }

    println!();
    println!(
        "throughput: flood ping (ping -f) of 20000 packets, plain veth vs pass-through impairer"
    );
    println!(
        "{:>22} {:>10} {:>12} {:>10}",
        "path", "wall s", "packets/s", "lost"
    );
    let net = Topology::builder()
        .host("client")
        .host("server")
        .link("client", "server", Link::v4("10.1.1.0/24"))
        .link(
            "client",
            "server",
            Link::v4("10.1.2.0/24").impair(Impairment::none()),
        )
        .build()?;
    for (name, target) in [
        ("plain veth", "10.1.1.2"),
        ("pass-through impairer", "10.1.2.2"),
    ] {
        let start = Instant::now();
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                net.ns("client").name(),
                "ping",
                "-n",
                "-q",
                "-f",
            ])
            .args(["-c", "20000", "-W", "1", target])
            .output()?;
        let wall = start.elapsed().as_secs_f64();
        let p = parse_ping(&String::from_utf8_lossy(&out.stdout))?;
        println!(
            "{:>22} {:>10.2} {:>12.0} {:>10}",
            name,
            wall,
            p.transmitted as f64 / wall,
            p.lost()
        );
    }
    Ok(())
}
