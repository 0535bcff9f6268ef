//! `vantage mtr`: several rounds of the trace engine, reported like `mtr --report`: per hop
//! Loss%, Snt, Last, Avg, Best, Wrst, StDev and Jttr (here the mean jitter, mtr's Javg). A hop
//! with several responders (ECMP) gets one row per address, each with its own statistics over
//! the flows that reached it.

use vantage_proto::{Detail, MeasurementResult, TraceStats};

use super::print_errors;
use super::trace::{execute, heading, host, marker, spec};
use crate::cli::MtrArgs;
use crate::output::{self, pct};

/// mtr sends one probe per hop per round.
const DEFAULT_PROBES: u8 = 1;

pub async fn run(a: MtrArgs) -> u8 {
    let spec = spec(&a.opts, a.rounds, a.interval, DEFAULT_PROBES);
    execute(spec, &a.opts, print_report).await
}

/// Milliseconds with mtr's one decimal from 10 ms up, more below (sub-millisecond hops are
/// common on LANs and would all read 0.0).
fn one(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn stat_cells(s: Option<&TraceStats>) -> Vec<String> {
    match s {
        Some(s) => [s.last, s.avg, s.best, s.worst, s.stddev, s.jitter]
            .into_iter()
            .map(one)
            .collect(),
        None => vec!["-".to_string(); 6],
    }
}

fn print_report(r: &MeasurementResult) {
    let Some(Detail::Trace(d)) = &r.detail else {
        print_errors(std::slice::from_ref(r));
        return;
    };
    let rounds = format!(", {} rounds", d.rounds);
    println!("{}", heading(r, d, &rounds));
    let mut t = output::table(
        &[
            "HOP", "HOST", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Jttr",
        ],
        2,
    );
    for hop in &d.hops {
        let number = format!("{:>2}.|--", hop.ttl);
        if hop.addrs.is_empty() {
            let mut row = vec![
                number,
                "???".to_string(),
                pct(hop.loss),
                hop.sent.to_string(),
            ];
            row.extend(stat_cells(None));
            t.add_row(row);
            continue;
        }
        for (i, a) in hop.addrs.iter().enumerate() {
            // One responder: the hop's numbers are its numbers.
            let (loss, sent, stats) = if hop.addrs.len() == 1 {
                (hop.loss, hop.sent, hop.rtt_ms)
            } else {
                (a.loss, a.sent, a.rtt_ms)
            };
            let mut name = host(a.ip, a.rdns.as_deref());
            if let Some(why) = &a.unreachable {
                name = format!("{name} {}", marker(why));
            }
            if !a.mpls.is_empty() {
                let labels: Vec<String> = a.mpls.iter().map(|l| l.label.to_string()).collect();
                name = format!("{name} [MPLS {}]", labels.join(","));
            }
            let number = if i == 0 {
                number.clone()
            } else {
                "   |  ".to_string()
            };
            let mut row = vec![number, name, pct(loss), sent.to_string()];
            row.extend(stat_cells(stats.as_ref()));
            t.add_row(row);
        }
    }
    output::print_table(&t);
    if !r.outcome.is_ok() {
        print_errors(std::slice::from_ref(r));
    }
    for note in &r.quality.notes {
        eprintln!("vantage: note: {note}");
    }
}
