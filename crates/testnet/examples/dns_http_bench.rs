//! `vantage dns` against `dig` and `vantage http` against `curl`, on the same local servers in the
//! same run: the cost of one invocation (wall time, CPU time, peak RSS — each tool is one process
//! per measurement) and the timings each tool reports for a server with a known delay.
//! Run: `bench/dns-http.sh [ROUNDS] [CALLS]`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vantage_testnet::dns_server::{Behaviour, DnsServer};
use vantage_testnet::http_server::{HttpServer, TestCa, Validity, curl_phases};
use vantage_testnet::stats::quantile;

/// Cost of one call of one tool, averaged over a batch.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    wall_ms: f64,
    cpu_ms: f64,
    rss_kb: f64,
}

/// Runs `argv` `calls` times in a row under one `/usr/bin/time` (its CPU times tick in 10 ms, so
/// a batch is needed for per-call figures): wall (measured here) and CPU per call, peak RSS.
async fn batch(argv: &[String], calls: usize, scratch: &Path) -> Cost {
    let report = scratch.join("time.txt");
    let start = Instant::now();
    let status = tokio::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&report)
        .args(["sh", "-c"])
        .arg(format!(
            "for i in $(seq {calls}); do \"$@\" >/dev/null 2>&1 || exit 1; done"
        ))
        .arg("sh")
        .args(argv)
        .status()
        .await
        .expect("/usr/bin/time runs");
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(status.success(), "{argv:?} failed: {status}");
    let text = std::fs::read_to_string(&report).expect("time report");
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().expect("number"))
        .collect();
    let n = calls as f64;
    Cost {
        wall_ms: wall_ms / n,
        cpu_ms: (f[0] + f[1]) * 1000.0 / n,
        rss_kb: f[2],
    }
}

/// Medians over rounds, and the largest RSS seen.
fn summarise(rounds: &[Cost]) -> Cost {
    let pick = |f: fn(&Cost) -> f64| rounds.iter().map(f).collect::<Vec<_>>();
    Cost {
        wall_ms: quantile(&pick(|c| c.wall_ms), 0.5),
        cpu_ms: quantile(&pick(|c| c.cpu_ms), 0.5),
        rss_kb: pick(|c| c.rss_kb).into_iter().fold(0.0, f64::max),
    }
}

async fn json_of(argv: &[String]) -> serde_json::Value {
    let out = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .await
        .expect("vantage runs");
    serde_json::from_slice(&out.stdout).expect("one JSON envelope")
}

async fn dig_query_time(argv: &[String]) -> f64 {
    let out = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .await
        .expect("dig runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(";; Query time: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("dig prints its query time")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let vantage: PathBuf = args
        .next()
        .expect("usage: dns_http_bench VANTAGE_BIN [ROUNDS] [CALLS]")
        .into();
    let rounds: usize = args.next().map_or(5, |v| v.parse().expect("ROUNDS"));
    let calls: usize = args.next().map_or(20, |v| v.parse().expect("CALLS"));
    let v = vantage.to_string_lossy().into_owned();

    let scratch = std::env::temp_dir().join(format!("vantage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let dns = DnsServer::start(false, Behaviour::Answer)
        .await
        .expect("dns server");
    let slow_dns = DnsServer::start(false, Behaviour::Delay(Duration::from_millis(20)))
        .await
        .expect("dns server");
    let ca = TestCa::new();
    let cafile = scratch.join("ca.pem");
    std::fs::write(&cafile, ca.pem()).expect("CA file");
    let ca_path = cafile.to_string_lossy().into_owned();
    let plain = HttpServer::plain(false).await.expect("http server");
    let tls = HttpServer::tls(false, &ca.leaf(&["127.0.0.1"], Validity::Current))
        .await
        .expect("https server");

    let d = dns.addr();
    let (dip, dport) = (d.ip().to_string(), d.port().to_string());
    let http_url = format!("http://{}/", plain.addr());
    let https_url = format!("https://{}/", tls.addr());
    let cases: Vec<(&str, Vec<String>, &str, Vec<String>)> = vec![
        (
            "dns A (UDP)",
            strings(&[
                &v,
                "dns",
                "--allow-private",
                &format!("@{d}"),
                "www.vantage.test",
            ]),
            "dig",
            strings(&[
                "dig",
                &format!("@{dip}"),
                "-p",
                &dport,
                "+tries=1",
                "www.vantage.test",
            ]),
        ),
        (
            "http GET",
            strings(&[&v, "http", "--allow-private", &http_url]),
            "curl",
            strings(&["curl", "-s", "-o", "/dev/null", &http_url]),
        ),
        (
            "https GET (TLS 1.3)",
            strings(&[
                &v,
                "http",
                "--allow-private",
                "--cacert",
                &ca_path,
                &https_url,
            ]),
            "curl",
            strings(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--cacert",
                &ca_path,
                &https_url,
            ]),
        ),
    ];

    println!(
        "Per invocation: median over {rounds} rounds of the mean of {calls} calls; same servers, same run"
    );
    println!(
        "{:<22} {:<8} {:>10} {:>10} {:>9} {:>11} {:>10}",
        "case", "tool", "wall ms", "cpu ms", "RSS MB", "wall ratio", "cpu ratio"
    );
    for (label, ours, peer, theirs) in &cases {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            // Interleaved, so drift on a shared machine hits both tools alike.
            a.push(batch(ours, calls, &scratch).await);
            b.push(batch(theirs, calls, &scratch).await);
        }
        let (ca_, cb) = (summarise(&a), summarise(&b));
        for (tool, c) in [("vantage", ca_), (*peer, cb)] {
            let ratio = |x: f64, y: f64| format!("{:.2}", x / y);
            println!(
                "{:<22} {:<8} {:>10.2} {:>10.2} {:>9.1} {:>11} {:>10}",
                label,
                tool,
                c.wall_ms,
                c.cpu_ms,
                c.rss_kb / 1024.0,
                ratio(c.wall_ms, cb.wall_ms),
                ratio(c.cpu_ms, cb.cpu_ms)
            );
        }
    }

    // Reported timings against a known server delay.
    let n = calls.max(5);
    let s = slow_dns.addr();
    let ours = strings(&[
        &v,
        "dns",
        "--json",
        "--allow-private",
        &format!("@{s}"),
        "www.vantage.test",
    ]);
    let theirs = strings(&[
        "dig",
        &format!("@{}", s.ip()),
        "-p",
        &s.port().to_string(),
        "+tries=1",
        "www.vantage.test",
    ]);
    let (mut rv, mut rd) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let j = json_of(&ours).await;
        rv.push(
            j["detail"]["servers"][0]["rtt_ms"]
                .as_f64()
                .expect("rtt_ms"),
        );
        rd.push(dig_query_time(&theirs).await);
    }
    let slow_url = format!("https://{}/slow/50", tls.addr());
    let ours = strings(&[
        &v,
        "http",
        "--json",
        "--allow-private",
        "--cacert",
        &ca_path,
        &slow_url,
    ]);
    let (mut tv, mut tc, mut lv, mut lc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let j = json_of(&ours).await;
        tv.push(j["detail"]["phases"]["ttfb_ms"].as_f64().expect("ttfb_ms"));
        lv.push(j["detail"]["phases"]["tls_ms"].as_f64().expect("tls_ms"));
        let c = curl_phases(&slow_url, Some(&cafile)).await;
        tc.push(c.ttfb_ms);
        lc.push(c.tls_ms);
    }
    println!();
    println!("Reported timings, median of {n} (known server delay in brackets):");
    println!(
        "  DNS RTT [20 ms]:         vantage {:>7.2} ms   dig {:>5.0} ms (dig prints whole ms)",
        quantile(&rv, 0.5),
        quantile(&rd, 0.5)
    );
    println!(
        "  HTTPS TTFB [50 ms]:      vantage {:>7.2} ms   curl {:>7.2} ms",
        quantile(&tv, 0.5),
        quantile(&tc, 0.5)
    );
    println!(
        "  TLS handshake:           vantage {:>7.2} ms   curl {:>7.2} ms",
        quantile(&lv, 0.5),
        quantile(&lc, 0.5)
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
