//! Benchmark of `vantage trace` and `vantage mtr` against `traceroute` and `mtr` on the same
//! 8-hop chain of router namespaces (7 routers, then the destination), in the same run.
//!
//! Every tool runs as its own process inside the client namespace, under `/usr/bin/time -v`
//! (peak RSS); vantage prints its JSON result, whose `duration_ms` (the trace itself, without
//! process start-up) is shown too. Wall time is measured around the process; CPU time is the user + system time the
//! process and its children used (`getrusage(RUSAGE_CHILDREN)` before and after, microseconds,
//! where `time -v` only prints hundredths). Reverse DNS is off for every tool (`-n`): the
//! namespaces reach no resolver.
//!
//! Routers answer a burst of six ICMP errors per source, then one per second (Linux default).
//! Two modes show both sides of that:
//! - **fresh**: every run sends from a new client address, so every router and the
//!   destination have their full burst: this measures the tool itself;
//! - **repeated**: each tool runs back to back from one address of its own, as a monitor
//!   tracing again and again would: a tool that sends more than it needs finds silent hops and
//!   waits for timeouts.
//!
//! A second chain adds 15 ms each way on the link between the third and fourth routers, so the
//! goal "a clean one-round trace completes within the slowest hop's RTT plus 50 ms" can be
//! checked against a real round-trip time.
//!
//! Usage (root): `bench_trace [--runs N] [--repeated N] [--vantage PATH]`; `bench/trace.sh`
//! builds and runs it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};
use vantage_testnet::{Impairment, Link, Topology};

/// Routers between the client and the destination: 8 hops in all.
const ROUTERS: usize = 7;
/// Delay each way on the slow link of the "wan" chain.
const WAN_DELAY_MS: f64 = 15.0;

/// One tool invocation; `{src}` and `{dst}` are replaced per run.
#[derive(Debug, Clone)]
struct Tool {
    label: &'static str,
    program: String,
    args: Vec<&'static str>,
    /// The label of the vantage row this one is compared with (peers only).
    versus: Option<&'static str>,
}

#[derive(Debug, Clone, Default)]
struct Sample {
    /// The measurement's own duration (vantage rows, from its JSON result).
    engine_ms: Option<f64>,
    wall_ms: f64,
    cpu_ms: f64,
    rss_kib: u64,
    hops: usize,
    ok: bool,
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench_trace needs root (network namespaces, raw sockets)");
        std::process::exit(2);
    }
    let mut runs = 7usize;
    let mut repeated = 4usize;
    let mut vantage = PathBuf::from("target/release/vantage");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--repeated" => {
                repeated = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--repeated N")
            }
            "--vantage" => vantage = args.next().map(PathBuf::from).expect("--vantage PATH"),
            other => {
                eprintln!("unknown argument {other}; use --runs N, --repeated N, --vantage PATH");
                std::process::exit(2);
            }
        }
    }
    let vantage = std::fs::canonicalize(&vantage).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build it with cargo build --release)",
            vantage.display()
        )
    });
    let v = vantage.display().to_string();
    let tools = vec![
        tool(
            "vantage mtr -c 1",
            &v,
            &["mtr", "--json", "-n", "-c", "1", "-S", "{src}", "{dst}"],
            None,
        ),
        tool(
            "mtr --report -c 1",
            "mtr",
            &["-n", "--report", "-c", "1", "-a", "{src}", "{dst}"],
            Some("vantage mtr -c 1"),
        ),
        tool(
            "vantage trace -q 1",
            &v,
            &["trace", "--json", "-n", "-q", "1", "-S", "{src}", "{dst}"],
            None,
        ),
        tool(
            "traceroute -I -q 1",
            "traceroute",
            &["-n", "-I", "-q", "1", "-s", "{src}", "{dst}"],
            Some("vantage trace -q 1"),
        ),
        tool(
            "vantage trace",
            &v,
            &["trace", "--json", "-n", "-S", "{src}", "{dst}"],
            None,
        ),
        tool(
            "traceroute -I",
            "traceroute",
            &["-n", "-I", "-s", "{src}", "{dst}"],
            Some("vantage trace"),
        ),
        tool(
            "vantage trace -P udp -q 1",
            &v,
            &[
                "trace", "--json", "-n", "-P", "udp", "-q", "1", "-S", "{src}", "{dst}",
            ],
            None,
        ),
        tool(
            "traceroute -q 1",
            "traceroute",
            &["-n", "-q", "1", "-s", "{src}", "{dst}"],
            Some("vantage trace -P udp -q 1"),
        ),
        tool(
            "vantage trace -P udp",
            &v,
            &["trace", "--json", "-n", "-P", "udp", "-S", "{src}", "{dst}"],
            None,
        ),
        tool(
            "traceroute",
            "traceroute",
            &["-n", "-s", "{src}", "{dst}"],
            Some("vantage trace -P udp"),
        ),
    ];
    // The issue's goals, as (vantage row, peer row, factor the peer must be slower by).
    let goals: [(&str, &str, f64); 3] = [
        ("vantage mtr -c 1", "mtr --report -c 1", 5.0),
        ("vantage trace", "traceroute -q 1", 1.0),
        ("vantage trace -q 1", "traceroute -q 1", 1.0),
    ];
    println!("# vantage trace / mtr vs traceroute and mtr, 8-hop chain (7 routers + destination)");
    println!("# {}", versions(&v));
    println!(
        "# medians of {runs} runs, tools in a new shuffled order each round; wall and CPU in ms; RSS in KiB (/usr/bin/time -v); hops = \
         hops that answered of 8; ratio = peer / vantage (above 1: vantage is better)"
    );
    for wan in [false, true] {
        let (net, dst) = build_chain(wan, runs * tools.len() + repeated * tools.len() + 4);
        let rtt = last_hop_rtt_ms(&net, &dst);
        let name = if wan { "wan" } else { "lan" };
        println!();
        println!(
            "## {name}: {}; RTT to the destination {rtt:.3} ms (ping, median of 5)",
            if wan {
                format!("{WAN_DELAY_MS} ms each way between r3 and r4")
            } else {
                "plain veth links".to_string()
            }
        );
        let mut next_src = 0usize;
        // Fresh: every round runs each tool once, in a new shuffled order. A fixed order would
        // always start the same tool right after the 6 s of mostly idle `mtr --report`, when
        // caches are cold and an idle virtual CPU wakes slowly; shuffled, that falls on a
        // different tool each round and the medians do not see it.
        let mut fresh: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
        let mut order: Vec<usize> = (0..tools.len()).collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(wan);
        for _ in 0..runs {
            shuffle(&mut order, &mut rng);
            for &i in &order {
                let src = client_addr(next_src);
                next_src += 1;
                fresh[i].push(measure(&net, &tools[i], &src, &dst));
            }
        }
        println!();
        println!("### fresh: a new source address per run (every router has its full ICMP burst)");
        print_table(&tools, &fresh);
        let wall = |label: &str| {
            let i = tools
                .iter()
                .position(|t| t.label == label)
                .expect("a tool row");
            median(&fresh[i].iter().map(|s| s.wall_ms).collect::<Vec<_>>())
        };
        let limit = rtt + 50.0;
        for label in ["vantage mtr -c 1", "vantage trace -q 1", "vantage trace"] {
            let ours = wall(label);
            println!(
                "goal: {label} within the destination's RTT + 50 ms = {limit:.1} ms: \
                 {ours:.1} ms, {}",
                if ours <= limit { "met" } else { "NOT met" }
            );
        }
        for (ours, peer, factor) in goals {
            let ratio = wall(peer) / wall(ours);
            println!(
                "goal: {ours} at least {factor}× faster than {peer}: {ratio:.1}×, {}",
                if ratio >= factor { "met" } else { "NOT met" }
            );
        }
        if repeated > 0 && !wan {
            let mut rep: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
            for (i, t) in tools.iter().enumerate() {
                let src = client_addr(next_src);
                next_src += 1;
                for _ in 0..repeated {
                    rep[i].push(measure(&net, t, &src, &dst));
                }
            }
            println!();
            println!(
                "### repeated: {repeated} runs back to back from one source per tool (routers \
                 refill one answer per second)"
            );
            print_repeated(&tools, &rep);
        }
    }
}

fn tool(
    label: &'static str,
    program: &str,
    args: &[&'static str],
    versus: Option<&'static str>,
) -> Tool {
    Tool {
        label,
        program: program.to_string(),
        args: args.to_vec(),
        versus,
    }
}

fn versions(vantage: &str) -> String {
    let first_line = |c: &mut Command| {
        c.output()
            .map(|o| {
                let t = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&t)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_else(|e| format!("unavailable: {e}"))
    };
    format!(
        "{}; {}; {}; kernel {}",
        first_line(Command::new(vantage).arg("--version")),
        first_line(Command::new("mtr").arg("--version")),
        first_line(Command::new("traceroute").arg("--version")),
        first_line(Command::new("uname").arg("-r")),
    )
}

/// The chain, with `sources` extra addresses on the client (10.50.1.10 up); returns it and the
/// destination's address.
fn build_chain(wan: bool, sources: usize) -> (Topology, String) {
    let mut b = Topology::builder().host("client");
    let names: Vec<String> = (1..=ROUTERS).map(|i| format!("r{i}")).collect();
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
        let mut link = Link::v4(&format!("10.50.{}.0/24", i + 1));
        if wan && i == 3 {
            link = link.impair(Impairment::delay_ms(WAN_DELAY_MS));
        }
        b = b.link(&prev, n, link);
        prev = n.clone();
    }
    let net = b.build().expect("chain topology");
    assert!(sources < 240, "too many source addresses for one /24");
    let mut cmds = String::new();
    for i in 0..sources {
        cmds.push_str(&format!("addr add {}/24 dev eth0\n", client_addr(i)));
    }
    let mut child = Command::new("ip")
        .args(["-n", net.ns("client").name(), "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("ip");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cmds.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "adding client addresses");
    let dst = net.link_v4("server", &names[ROUTERS - 1]).to_string();
    (net, dst)
}

fn client_addr(i: usize) -> String {
    format!("10.50.1.{}", 10 + i)
}

fn last_hop_rtt_ms(net: &Topology, dst: &str) -> f64 {
    let out = net
        .ns("client")
        .command("ping")
        .args(["-n", "-c", "5", "-i", "0.2", dst])
        .output()
        .expect("ping");
    let p = vantage_testnet::tools::parse_ping(&String::from_utf8_lossy(&out.stdout))
        .expect("ping output");
    median(&p.rtts())
}

fn cpu_children_ms() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
    ms(u.user_time()) + ms(u.system_time())
}

/// Runs one tool once inside the client namespace.
fn measure(net: &Topology, t: &Tool, src: &str, dst: &str) -> Sample {
    let args: Vec<String> = t
        .args
        .iter()
        .map(|a| a.replace("{src}", src).replace("{dst}", dst))
        .collect();
    net.ns("client").run(|| {
        let cpu0 = cpu_children_ms();
        let start = Instant::now();
        let out = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(&t.program)
            .args(&args)
            .output()
            .expect("run /usr/bin/time");
        let wall_ms = start.elapsed().as_secs_f64() * 1e3;
        let cpu_ms = cpu_children_ms() - cpu0;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let rss_kib = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let json: Option<serde_json::Value> = serde_json::from_str(&stdout).ok();
        let (engine_ms, hops) = match &json {
            Some(v) => (
                v["duration_ms"].as_f64(),
                v["detail"]["hops"].as_array().map_or(0, |h| {
                    h.iter()
                        .filter(|h| h["addrs"].as_array().is_some_and(|a| !a.is_empty()))
                        .count()
                }),
            ),
            None => (None, answered_hops(&stdout)),
        };
        Sample {
            engine_ms,
            wall_ms,
            cpu_ms,
            rss_kib,
            hops,
            ok: out.status.success(),
        }
    })
}

/// Hops with an address in the output of any of the four tools: lines that start with the hop
/// number (`3`, `3.|--`) followed by an address.
fn answered_hops(stdout: &str) -> usize {
    let mut hops = std::collections::BTreeSet::new();
    for line in stdout.lines() {
        let mut w = line.split_whitespace();
        let (Some(n), Some(addr)) = (w.next(), w.next()) else {
            continue;
        };
        let n = n.trim_end_matches(".|--");
        if let (Ok(n), Ok(_)) = (n.parse::<u8>(), addr.parse::<IpAddr>()) {
            hops.insert(n);
        }
    }
    hops.len()
}

/// Fisher–Yates with xorshift64: reproducible from the seed, no dependency.
fn shuffle(v: &mut [usize], state: &mut u64) {
    for i in (1..v.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = (*state % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Row {
    engine: Option<f64>,
    wall: f64,
    cpu: f64,
    rss: f64,
    hops: f64,
    failed: usize,
}

fn summarise(samples: &[Sample]) -> Row {
    let col = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    let engine: Vec<f64> = samples.iter().filter_map(|s| s.engine_ms).collect();
    Row {
        engine: (!engine.is_empty()).then(|| median(&engine)),
        wall: col(|s| s.wall_ms),
        cpu: col(|s| s.cpu_ms),
        rss: col(|s| s.rss_kib as f64),
        hops: col(|s| s.hops as f64),
        failed: samples.iter().filter(|s| !s.ok).count(),
    }
}

fn print_table(tools: &[Tool], samples: &[Vec<Sample>]) {
    let rows: Vec<Row> = samples.iter().map(|s| summarise(s)).collect();
    println!(
        "| tool | wall ms | CPU ms | peak RSS KiB | hops | failed runs | wall ratio | CPU ratio \
         | trace itself ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (t, r) in tools.iter().zip(&rows) {
        let (wr, cr) = match t
            .versus
            .and_then(|v| tools.iter().position(|x| x.label == v))
        {
            Some(j) => (
                format!("{:.1}× vs {}", r.wall / rows[j].wall, tools[j].label),
                format!("{:.1}×", r.cpu / rows[j].cpu),
            ),
            None => ("".into(), "".into()),
        };
        let engine = r.engine.map(|e| format!("{e:.1}")).unwrap_or_default();
        println!(
            "| {} | {:.1} | {:.1} | {:.0} | {:.0}/8 | {} | {wr} | {cr} | {engine} |",
            t.label, r.wall, r.cpu, r.rss, r.hops, r.failed
        );
    }
}

fn print_repeated(tools: &[Tool], samples: &[Vec<Sample>]) {
    println!("| tool | wall ms per run | hops answered per run | total wall s |");
    println!("|---|---|---|---:|");
    for (t, s) in tools.iter().zip(samples) {
        let walls: Vec<String> = s.iter().map(|x| format!("{:.0}", x.wall_ms)).collect();
        let hops: Vec<String> = s.iter().map(|x| x.hops.to_string()).collect();
        let total: f64 = s.iter().map(|x| x.wall_ms).sum::<f64>() / 1e3;
        println!(
            "| {} | {} | {} | {total:.1} |",
            t.label,
            walls.join(" "),
            hops.join(" ")
        );
    }
}
