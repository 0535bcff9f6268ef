//! `vantage udp`: datagrams to a closed port, timed by the ICMP port-unreachable.

use vantage_proto::{Detail, MeasurementSpec, UdpSpec};

use super::ports::{Totals, print_target};
use super::{context, print_errors, run_with_progress, validate_all};
use crate::cli::UdpArgs;
use crate::output::{self, quality_phrase};

pub async fn run(a: UdpArgs) -> u8 {
    let specs: Vec<MeasurementSpec> = a
        .targets
        .iter()
        .map(|target| {
            MeasurementSpec::Udp(UdpSpec {
                target: target.clone(),
                port: a.port,
                count: a.count,
                interval: a.interval,
                timeout: a.timeout,
                size: a.size,
                source_ports: a.source_ports,
                source: a.common.source,
                ttl: a.common.ttl,
                tos: a.common.tos,
                df: a.df,
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
    let cx = context(&a.common, 0);
    let results = run_with_progress(&specs, &cx).await;
    if a.common.json {
        if let Err(e) = output::print_json_lines(&results) {
            return output::usage_error(format!("cannot write output: {e}"));
        }
        return output::exit_code(&results);
    }
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match &r.detail {
            Some(Detail::Udp(d)) => {
                println!(
                    "UDP {} ({}) port {}: {}",
                    r.target,
                    d.address,
                    d.port,
                    quality_phrase(&r.quality)
                );
                print_target(
                    &r.target,
                    d.address,
                    d.port,
                    &d.probes,
                    &d.ports,
                    Totals {
                        sent: d.sent,
                        received: d.received,
                        loss: d.loss,
                        rtt: d.rtt_ms.as_ref(),
                        extra: format!(
                            " ({} port unreachable, {} open)",
                            d.port_unreachable, d.open
                        ),
                    },
                );
                if !r.outcome.is_ok() {
                    print_errors(std::slice::from_ref(r));
                }
            }
            _ => print_errors(std::slice::from_ref(r)),
        }
    }
    output::exit_code(&results)
}
