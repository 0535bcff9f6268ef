//! `vantage ping`: one target gets an iputils-like report; several targets (a list, a file, a
//! CIDR range) share one socket per family in the engine and get one table row each.

use vantage_proto::{Detail, MeasurementResult, MeasurementSpec, PingSpec};

use super::{context, print_errors, run_with_progress, validate_all};
use crate::cli::PingArgs;
use crate::output::{self, ms, pct, quality_phrase, rtt_lines};
use crate::targets;

pub async fn run(a: PingArgs) -> u8 {
    let t0 = std::time::Instant::now();
    let targets = match targets::expand(&a.targets, a.file.as_deref(), a.max_targets) {
        Ok(t) => t,
        Err(e) => return output::usage_error(e),
    };
    let specs: Vec<MeasurementSpec> = targets
        .into_iter()
        .map(|target| {
            MeasurementSpec::Ping(PingSpec {
                target,
                count: a.count,
                interval: a.interval,
                timeout: a.timeout,
                size: a.size,
                ttl: a.common.ttl,
                tos: a.common.tos,
                df: a.df,
                source: a.common.source,
                interface: a.interface.clone(),
                family: a.common.family(),
            })
        })
        .collect();
    if let Err(code) = validate_all(&specs) {
        return code;
    }
    if let Some(code) = super::remote::maybe_run(&a.remote, &specs, a.common.json).await {
        return code;
    }
    let cx = context(&a.common, a.rate);
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_secs_f64() * 1e3,
        "targets expanded"
    );
    let results = run_with_progress(&specs, &cx).await;
    tracing::debug!(elapsed_ms = t0.elapsed().as_secs_f64() * 1e3, "measured");
    if a.common.json {
        if let Err(e) = output::print_json_lines(&results) {
            return output::usage_error(format!("cannot write output: {e}"));
        }
    } else if let [one] = results.as_slice() {
        print_one(one, a.size);
    } else {
        print_many(&results);
    }
    tracing::debug!(elapsed_ms = t0.elapsed().as_secs_f64() * 1e3, "printed");
    let code = output::exit_code(&results);
    output::free_at_exit((results, specs));
    code
}

fn print_one(r: &MeasurementResult, size: u16) {
    let Some(Detail::Ping(d)) = &r.detail else {
        print_errors(std::slice::from_ref(r));
        return;
    };
    println!(
        "PING {} ({}): {} data bytes, {}",
        r.target,
        d.address,
        size,
        quality_phrase(&r.quality)
    );
    for reply in &d.replies {
        let ttl = reply.ttl.map(|t| format!(" ttl={t}")).unwrap_or_default();
        let dup = if reply.duplicate { " (DUP!)" } else { "" };
        // Like iputils: the ICMP message size, payload plus the 8-byte header.
        println!(
            "{} bytes from {}: seq={}{ttl} time={} ms{dup}",
            u32::from(reply.size) + 8,
            d.address,
            reply.seq,
            ms(reply.rtt_ms)
        );
    }
    for e in &d.icmp_errors {
        println!("{e}");
    }
    println!();
    println!("--- {} ping statistics ---", r.target);
    let dups = if d.duplicates > 0 {
        format!(", +{} duplicates", d.duplicates)
    } else {
        String::new()
    };
    println!(
        "{} packets transmitted, {} received{dups}, {} packet loss, time {:.0} ms",
        d.sent,
        d.received,
        pct(d.loss),
        r.duration_ms
    );
    if let Some(stats) = &d.rtt_ms {
        for line in rtt_lines(stats) {
            println!("{line}");
        }
    }
    if !r.outcome.is_ok() {
        print_errors(std::slice::from_ref(r));
    }
}

fn print_many(results: &[MeasurementResult]) {
    let header = [
        "TARGET", "ADDRESS", "SENT", "RECV", "LOSS", "MIN", "AVG", "MAX", "P95", "JITTER",
        "OUTCOME",
    ];
    // Sweeps print tens of thousands of rows: every core formats a share of them.
    let parts = output::par_chunks(results, |chunk| {
        let mut cells = output::Cells::with_rows(header.len(), chunk.len());
        for r in chunk {
            push_row(&mut cells, r);
        }
        cells
    });
    output::print_cells(&header, 2, &parts);
    let answered = results.iter().filter(|r| r.outcome.is_ok()).count();
    println!("\n{answered} of {} targets answered", results.len());
}

/// One target's row of the sweep table.
fn push_row(cells: &mut output::Cells, r: &MeasurementResult) {
    cells.push(&r.target);
    match &r.detail {
        Some(Detail::Ping(d)) => {
            cells.push(d.address);
            cells.push(d.sent);
            cells.push(d.received);
            cells.push(output::Pct(d.loss));
            let s = d.rtt_ms.as_ref();
            for v in [
                s.map(|s| s.min),
                s.map(|s| s.avg),
                s.map(|s| s.max),
                s.map(|s| s.p95),
                s.map(|s| s.jitter),
            ] {
                match v {
                    Some(v) => cells.push(output::Ms(v)),
                    None => cells.push("-"),
                }
            }
        }
        _ => {
            for _ in 0..9 {
                cells.push("-");
            }
        }
    }
    match &r.error {
        Some(e) if !r.outcome.is_ok() => cells.push(format_args!("{}: {e}", r.outcome)),
        _ => cells.push(r.outcome),
    }
}
