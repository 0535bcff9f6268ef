//! Rendering shared by the TCP and UDP subcommands: per-probe lines, the per-source-port table
//! (one row per ECMP flow) and the totals.

use std::net::IpAddr;

use vantage_proto::{PortProbe, PortSummary, ProbeStatus, RttStats};

use crate::output::{self, ms, pct, rtt_lines};

/// Totals of one target, as the TCP and UDP details both carry them.
pub struct Totals<'a> {
    pub sent: u32,
    pub received: u32,
    pub loss: f64,
    pub rtt: Option<&'a RttStats>,
    pub extra: String,
}

/// Prints the probes, the per-port table when several source ports were used, and the totals.
pub fn print_target(
    target: &str,
    address: IpAddr,
    port: u16,
    probes: &[PortProbe],
    ports: &[PortSummary],
    totals: Totals<'_>,
) {
    for p in probes {
        let rtt = p
            .rtt_ms
            .map(|v| format!(" time={} ms", ms(v)))
            .unwrap_or_default();
        let from = p.from.map(|f| format!(" from {f}")).unwrap_or_default();
        println!(
            "{address}:{port} seq={} sport={} {}{rtt}{from}",
            p.seq,
            p.src_port,
            status_word(p.status)
        );
    }
    if ports.len() > 1 {
        println!();
        let mut t = output::table(&["SPORT", "SENT", "RECV", "LOSS", "MIN", "AVG", "MAX"], 0);
        for s in ports {
            let f = |v: Option<f64>| v.map(ms).unwrap_or_else(|| "-".into());
            let r = s.rtt_ms.as_ref();
            t.add_row(vec![
                s.src_port.to_string(),
                s.sent.to_string(),
                s.received.to_string(),
                pct(s.loss),
                f(r.map(|r| r.min)),
                f(r.map(|r| r.avg)),
                f(r.map(|r| r.max)),
            ]);
        }
        output::print_table(&t);
    }
    println!();
    println!("--- {target} port {port} statistics ---");
    println!(
        "{} probes sent, {} answered{}, {} loss",
        totals.sent,
        totals.received,
        totals.extra,
        pct(totals.loss)
    );
    if let Some(stats) = totals.rtt {
        for line in rtt_lines(stats) {
            println!("{line}");
        }
    }
}

fn status_word(s: ProbeStatus) -> &'static str {
    match s {
        ProbeStatus::Open => "open",
        ProbeStatus::Refused => "refused (RST)",
        ProbeStatus::PortUnreachable => "port unreachable",
        ProbeStatus::Unreachable => "unreachable",
        ProbeStatus::Timeout => "timeout",
    }
}
