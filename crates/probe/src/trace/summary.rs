//! From the per-probe records to the hop table: per TTL and per responding address, sent,
//! received, loss and mtr's statistics (last, avg, best, worst, sample standard deviation,
//! mean absolute jitter), every statistic computed over answers in send order.
//!
//! An address's `sent` counts the probes of its TTL sent on the flows it answered on: under
//! ECMP each router only ever sees its own flows, so its loss is not diluted by the other
//! branch's probes; with one flow (Paris) it is simply the hop's count.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use vantage_proto::{TraceAddr, TraceHop, TraceProbe, TraceStats};

use super::engine::{Probe, State};
use super::packet::Kind;

/// mtr-style statistics of RTT samples in send order; `None` when there are none.
pub(crate) fn stats(samples: &[f64]) -> Option<TraceStats> {
    let (&last, _) = samples.split_last()?;
    let n = samples.len() as f64;
    let avg = samples.iter().sum::<f64>() / n;
    let stddev = if samples.len() > 1 {
        (samples.iter().map(|x| (x - avg).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let jitter = if samples.len() > 1 {
        samples.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some(TraceStats {
        last,
        avg,
        best: samples.iter().copied().fold(f64::INFINITY, f64::min),
        worst: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        stddev,
        jitter,
    })
}

fn loss(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        0.0
    } else {
        1.0 - f64::from(received.min(sent)) / f64::from(sent)
    }
}

/// The hop table from `first` to `last` TTL. Probes still waiting (a cancelled run) and probes
/// sent past the destination are left out.
pub(crate) fn hops(
    probes: &[Probe],
    first: u8,
    last: u8,
    dst: IpAddr,
    names: &HashMap<IpAddr, String>,
) -> Vec<TraceHop> {
    let mut by_ttl: HashMap<u8, Vec<&Probe>> = HashMap::new();
    for p in probes {
        if matches!(p.state, State::Answered(_) | State::Lost) {
            by_ttl.entry(p.ttl).or_default().push(p);
        }
    }
    (first..=last)
        .map(|ttl| hop(ttl, by_ttl.get(&ttl).map_or(&[][..], |v| v), dst, names))
        .collect()
}

fn hop(ttl: u8, probes: &[&Probe], dst: IpAddr, names: &HashMap<IpAddr, String>) -> TraceHop {
    let rtts: Vec<f64> = probes.iter().filter_map(|p| p.rtt_ms()).collect();
    let sent = probes.len() as u32;
    let received = rtts.len() as u32;
    // Responders in order of first answer.
    let mut order: Vec<IpAddr> = Vec::new();
    for p in probes {
        if let Some(r) = p.reply()
            && !order.contains(&r.from)
        {
            order.push(r.from);
        }
    }
    let addrs = order
        .into_iter()
        .map(|ip| {
            let answers: Vec<&&Probe> = probes
                .iter()
                .filter(|p| p.reply().is_some_and(|r| r.from == ip))
                .collect();
            let flows: BTreeSet<u16> = answers.iter().map(|p| p.flow).collect();
            let sent = probes.iter().filter(|p| flows.contains(&p.flow)).count() as u32;
            let samples: Vec<f64> = answers.iter().filter_map(|p| p.rtt_ms()).collect();
            let received = samples.len() as u32;
            let mpls = answers
                .iter()
                .rev()
                .find_map(|p| p.reply().filter(|r| !r.mpls.is_empty()))
                .map(|r| r.mpls.clone())
                .unwrap_or_default();
            let unreachable = answers.iter().find_map(|p| match p.reply() {
                Some(r) if !r.kind.is_destination_answer(r.from, dst) => match &r.kind {
                    Kind::Unreachable { phrase, .. } => Some(phrase.clone()),
                    _ => None,
                },
                _ => None,
            });
            TraceAddr {
                ip,
                rdns: names.get(&ip).cloned(),
                asn: None,
                as_name: None,
                sent,
                received,
                loss: loss(sent, received),
                rtt_ms: stats(&samples),
                flows: flows.into_iter().collect(),
                mpls,
                unreachable,
            }
        })
        .collect();
    TraceHop {
        ttl,
        addrs,
        sent,
        received,
        loss: loss(sent, received),
        rtt_ms: stats(&rtts),
        probes: probes
            .iter()
            .map(|p| TraceProbe {
                round: p.round,
                flow: p.flow,
                ip: p.reply().map(|r| r.from),
                rtt_ms: p.rtt_ms(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sock::Stamp;
    use crate::trace::engine::Reply;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn statistics_match_mtr_definitions() {
        let s = stats(&[10.0, 14.0, 12.0, 20.0]).unwrap();
        assert!(close(s.last, 20.0));
        assert!(close(s.avg, 14.0));
        assert!(close(s.best, 10.0));
        assert!(close(s.worst, 20.0));
        // Sample variance: (16 + 0 + 4 + 36) / 3.
        assert!(close(s.stddev, (56.0f64 / 3.0).sqrt()));
        // |14−10| + |12−14| + |20−12| = 14 over three differences.
        assert!(close(s.jitter, 14.0 / 3.0));
        let one = stats(&[3.0]).unwrap();
        assert_eq!((one.stddev, one.jitter), (0.0, 0.0));
        assert!(stats(&[]).is_none());
    }

    fn probe(ttl: u8, flow: u16, answer: Option<(&str, f64)>) -> Probe {
        let sent = Stamp::from_nanos(1_000_000_000);
        Probe {
            ttl,
            flow,
            round: 0,
            id: 1,
            sent,
            tx: None,
            launched: tokio::time::Instant::now(),
            state: match answer {
                None => State::Lost,
                Some((ip, ms)) => State::Answered(Box::new(Reply {
                    from: ip.parse().unwrap(),
                    kind: Kind::TimeExceeded,
                    rx: sent.after(std::time::Duration::from_micros((ms * 1000.0) as u64)),
                    rx_kernel: true,
                    mpls: Vec::new(),
                })),
            },
        }
    }

    #[test]
    fn each_ecmp_branch_counts_only_its_own_flows() {
        let dst: IpAddr = "10.9.9.9".parse().unwrap();
        // Flows 0 and 2 go through .2, flow 1 through .3; one probe of flow 2 is lost.
        let probes = vec![
            probe(2, 0, Some(("10.1.2.2", 1.0))),
            probe(2, 1, Some(("10.1.3.2", 2.0))),
            probe(2, 2, None),
            probe(2, 0, Some(("10.1.2.2", 3.0))),
            probe(2, 1, Some(("10.1.3.2", 2.0))),
            probe(2, 2, Some(("10.1.2.2", 5.0))),
        ];
        let mut names = HashMap::new();
        names.insert("10.1.3.2".parse().unwrap(), "b.example".to_string());
        let h = hops(&probes, 2, 2, dst, &names);
        assert_eq!(h.len(), 1);
        let h = &h[0];
        assert_eq!((h.sent, h.received), (6, 5));
        assert!(close(h.loss, 1.0 / 6.0));
        assert_eq!(h.addrs.len(), 2);
        let a = &h.addrs[0];
        assert_eq!(a.ip.to_string(), "10.1.2.2");
        assert_eq!((a.flows.clone(), a.sent, a.received), (vec![0, 2], 4, 3));
        assert!(close(a.loss, 0.25));
        assert!(close(a.rtt_ms.unwrap().avg, 3.0));
        assert_eq!(a.rdns, None);
        let b = &h.addrs[1];
        assert_eq!((b.flows.clone(), b.sent, b.received), (vec![1], 2, 2));
        assert_eq!(b.rdns.as_deref(), Some("b.example"));
        assert_eq!(h.probes.len(), 6);
        assert_eq!(h.probes[2].ip, None);
    }

    #[test]
    fn silent_hops_are_listed_with_their_losses() {
        let dst: IpAddr = "10.9.9.9".parse().unwrap();
        let probes = vec![probe(1, 0, Some(("10.1.1.2", 0.5))), probe(2, 0, None)];
        let h = hops(&probes, 1, 3, dst, &HashMap::new());
        assert_eq!(h.len(), 3);
        assert_eq!((h[1].sent, h[1].received, h[1].loss), (1, 0, 1.0));
        assert!(h[1].addrs.is_empty() && h[1].rtt_ms.is_none());
        assert_eq!((h[2].sent, h[2].received), (0, 0));
    }
}
