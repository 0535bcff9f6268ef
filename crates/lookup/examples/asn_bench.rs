//! Benchmark driver for `bench/lookup-asn.sh`: loads a table and times lookups of the
//! addresses in a file (one per line), printing one JSON line. Not a test.
//!
//! Usage: `asn_bench vantage DATA_DIR ADDRS [ROUNDS]` (the table `vantage data update asn`
//! installed) or `asn_bench mmdb FILE.mmdb ADDRS [ROUNDS]` (the maxminddb crate on an MMDB file,
//! the peer for the same addresses), or `asn_bench none - ADDRS` (the addresses alone, the
//! memory baseline).

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::time::Instant;

use vantage_lookup::DataDir;
use vantage_lookup::asn::AsnTable;

/// Looks every address up `rounds` times; returns the best round's seconds, the hits and a
/// checksum of the answers (so the work cannot be optimised away and drivers can be compared).
fn rounds_of(
    rounds: usize,
    addrs: &[IpAddr],
    f: impl Fn(IpAddr) -> Option<u64>,
) -> (f64, u64, u64) {
    let mut best = f64::MAX;
    let (mut hits, mut sum) = (0u64, 0u64);
    for _ in 0..rounds {
        let t = Instant::now();
        hits = 0;
        sum = 0;
        for &ip in addrs {
            if let Some(v) = f(ip) {
                hits += 1;
                sum = sum.wrapping_add(v);
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, hits, sum)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: asn_bench vantage|mmdb DATA_DIR|FILE.mmdb ADDRS [ROUNDS]");
        std::process::exit(2);
    }
    let rounds: usize = args.get(4).and_then(|r| r.parse().ok()).unwrap_or(3);
    let f = std::fs::File::open(&args[3]).expect("address file");
    let addrs: Vec<IpAddr> = BufReader::new(f)
        .lines()
        .map(|l| l.expect("line").trim().parse().expect("address"))
        .collect();
    let (load_ms, best_s, hits, checksum) = match args[1].as_str() {
        "vantage" => {
            let t0 = Instant::now();
            let table = AsnTable::load(&DataDir::new(&args[2]).asn_table()).expect("table");
            let load_ms = t0.elapsed().as_secs_f64() * 1e3;
            let (best, hits, sum) = rounds_of(rounds, &addrs, |ip| {
                table.find(ip).map(|r| u64::from(r.asn))
            });
            (load_ms, best, hits, sum)
        }
        "mmdb" => {
            #[derive(serde::Deserialize)]
            struct Rec<'a> {
                #[serde(borrow, default)]
                country_code: Option<&'a str>,
            }
            let t0 = Instant::now();
            let reader = maxminddb::Reader::open_readfile(&args[2]).expect("mmdb");
            let load_ms = t0.elapsed().as_secs_f64() * 1e3;
            let (best, hits, sum) = rounds_of(rounds, &addrs, |ip| {
                let r = reader.lookup(ip).ok()?;
                let rec = r.decode::<Rec>().ok()??;
                rec.country_code.map(|cc| u64::from(cc.as_bytes()[0]))
            });
            (load_ms, best, hits, sum)
        }
        "none" => {
            // Baseline: the addresses alone, for the memory the tables add on top.
            let hits = addrs.iter().filter(|a| a.is_ipv4()).count() as u64;
            (0.0, 1.0, hits, 0)
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    };
    let line = format!(
        "{{\"mode\":\"{}\",\"addresses\":{},\"load_ms\":{load_ms:.1},\"best_round_s\":{best_s:.4},\"lookups_per_s\":{:.0},\"hits\":{hits},\"checksum\":{checksum}}}\n",
        args[1],
        addrs.len(),
        addrs.len() as f64 / best_s
    );
    std::io::stdout()
        .write_all(line.as_bytes())
        .expect("stdout");
}
