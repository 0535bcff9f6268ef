//! Turns a shard's send and receive logs into one result per target: round-trip times from the
//! best stamps available (kernel TX and RX when both exist and are consistent), counters,
//! statistics, errors as sentences, and a `quality` block that says which stamps were used.
//!
//! Sweeps report tens of thousands of targets, so the logs are indexed with flat arrays (probes
//! per target, replies per probe as linked lists) rather than per-target maps, and each result is
//! written straight into the caller's slot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vantage_proto::{
    Detail, Kind, MeasurementResult, Outcome, PacingQuality, PingDetail, PingReply, Quality,
    RttStats, SocketKind, TimestampSource,
};

use super::plan::{Plan, Target};
use super::recv::RecvLog;
use super::send::{NO_KEY, SendLog};
use crate::sock::{Mode, Stamp, icmp};

/// "No entry" in the index arrays.
const NONE: u32 = u32::MAX;

/// How the socket of a shard was opened.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Raw or datagram.
    pub mode: Mode,
    /// Whether the kernel stamps received packets.
    pub rx_stamps: bool,
    /// Notes every result of the shard carries (for example why a datagram socket was used).
    pub notes: Vec<String>,
}

/// Everything `build` reads.
#[derive(Debug)]
pub struct Logs<'a> {
    /// The plan the shard ran.
    pub plan: &'a Plan,
    /// The sender's log.
    pub sent: &'a SendLog,
    /// The receiver's log.
    pub recv: &'a RecvLog,
    /// How the socket was opened.
    pub sock: &'a SocketInfo,
    /// Packets per second within a round (for the pacing figures).
    pub rate: u32,
    /// Whether the run was cancelled.
    pub cancelled: bool,
}

/// Builds the result of every target of the shard and stores it at `out[target.spec]`.
pub fn build(logs: &Logs<'_>, out: &mut [Option<MeasurementResult>]) {
    let plan = logs.plan;
    let t_count = plan.targets.len();
    let p_count = plan.len();

    // Probes of each target, in send order (compressed rows: target t owns
    // by_target[first[t]..first[t + 1]]).
    let mut first = vec![0u32; t_count + 1];
    for &(t, _) in &plan.probes {
        first[t as usize + 1] += 1;
    }
    for t in 0..t_count {
        first[t + 1] += first[t];
    }
    let mut fill = first.clone();
    let mut by_target = vec![0u32; p_count];
    for (n, &(t, _)) in plan.probes.iter().enumerate() {
        by_target[fill[t as usize] as usize] = n as u32;
        fill[t as usize] += 1;
    }

    // Replies of each probe, in arrival order (head and next links into recv.replies).
    let mut head = vec![NONE; p_count];
    let mut tail = vec![NONE; p_count];
    let mut next = vec![NONE; logs.recv.replies.len()];
    for (i, r) in logs.recv.replies.iter().enumerate() {
        let n = r.n as usize;
        if head[n] == NONE {
            head[n] = i as u32;
        } else {
            next[tail[n] as usize] = i as u32;
        }
        tail[n] = i as u32;
    }

    // Errors (ICMP and local send failures) by target; rare, so a map.
    let mut errors: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
    for &(n, errno) in &logs.sent.failed {
        let t = plan.probes[n as usize].0;
        let text = format!("cannot send: {}", describe_errno(errno));
        *errors.entry(t).or_default().entry(text).or_default() += 1;
    }
    for e in &logs.recv.errors {
        let t = plan.probes[e.n as usize].0;
        let text = icmp::describe(plan.key.family, e.icmp_type, e.code, e.info);
        let text = match e.from {
            Some(from) => format!("{text} from {from}"),
            None => text,
        };
        *errors.entry(t).or_default().entry(text).or_default() += 1;
    }

    let mut scratch = Scratch::default();
    for (t, target) in plan.targets.iter().enumerate() {
        let probes = &by_target[first[t] as usize..first[t + 1] as usize];
        let errs = errors.remove(&(t as u32)).unwrap_or_default();
        let r = target_result(logs, target, probes, &head, &next, errs, &mut scratch);
        out[target.spec] = Some(r);
    }
}

/// Buffers reused from target to target.
#[derive(Debug, Default)]
struct Scratch {
    samples: Vec<f64>,
}

/// The kernel TX stamp of probe `n`, if the kernel reported one that is not before the moment
/// user space called send (which would mean the key matched the wrong packet).
fn kernel_tx(sent: &SendLog, recv: &RecvLog, n: usize) -> Option<Stamp> {
    let key = sent.tx_key[n];
    if key == NO_KEY {
        return None;
    }
    let ns = *recv.tx_by_key.get(key as usize)?;
    let st = Stamp::from_nanos(ns);
    (ns != 0 && st >= sent.tx_user[n]).then_some(st)
}

fn target_result(
    logs: &Logs<'_>,
    target: &Target,
    probes: &[u32],
    head: &[u32],
    next: &[u32],
    errors: BTreeMap<String, u32>,
    scratch: &mut Scratch,
) -> MeasurementResult {
    let (plan, sent, recv) = (logs.plan, logs.sent, logs.recv);
    let timeout_ms = target.timeout.as_secs_f64() * 1000.0;
    let mut n_sent = 0u32;
    let mut tx_kernel = 0u32;
    let (mut pacing_sum, mut pacing_max) = (0.0f64, 0.0f64);
    let (mut first_tx, mut last_tx) = (None::<Stamp>, None::<Stamp>);
    let mut lost = Vec::new();
    scratch.samples.clear();
    // Replies with their arrival index, to be put in arrival order.
    let mut per_reply: Vec<(u32, PingReply)> = Vec::new();
    let (mut received, mut duplicates, mut late) = (0u32, 0u32, 0u32);
    let (mut rtt_tx_kernel, mut rtt_rx_kernel) = (0u32, 0u32);
    let mut last_rx = None::<Stamp>;

    for &n in probes {
        let n = n as usize;
        if n >= sent.attempted {
            break;
        }
        let (_, k) = plan.probes[n];
        n_sent += 1;
        let tx_user = sent.tx_user[n];
        first_tx.get_or_insert(tx_user);
        last_tx = Some(tx_user);
        let due = sent.start.after(plan.due(n, logs.rate));
        let lateness = tx_user.ms_since(due).max(0.0);
        pacing_sum += lateness;
        pacing_max = pacing_max.max(lateness);
        let ktx = kernel_tx(sent, recv, n);
        if ktx.is_some() {
            tx_kernel += 1;
        }

        let mut answered = false;
        let mut i = head[n];
        while i != NONE {
            let r = &recv.replies[i as usize];
            let (tx, tx_is_kernel) = match ktx {
                Some(k) if k <= r.rx => (k, true),
                _ => (tx_user, false),
            };
            let rtt = r.rx.ms_since(tx).max(0.0);
            if rtt > timeout_ms {
                late += 1;
            } else {
                let duplicate = answered;
                if duplicate {
                    duplicates += 1;
                } else {
                    answered = true;
                    received += 1;
                    scratch.samples.push(rtt);
                    last_rx = Some(last_rx.map_or(r.rx, |l: Stamp| l.max(r.rx)));
                    rtt_tx_kernel += u32::from(tx_is_kernel);
                    rtt_rx_kernel += u32::from(r.rx_kernel);
                }
                per_reply.push((
                    i,
                    PingReply {
                        seq: k,
                        rtt_ms: rtt,
                        ttl: r.ttl,
                        size: r.size,
                        duplicate,
                    },
                ));
            }
            i = next[i as usize];
        }
        if !answered {
            lost.push(k);
        }
    }
    // Every reply, in arrival order.
    per_reply.sort_by_key(|(i, _)| *i);
    let replies: Vec<PingReply> = per_reply.into_iter().map(|(_, p)| p).collect();

    let loss = if n_sent == 0 {
        0.0
    } else {
        f64::from(n_sent - received) / f64::from(n_sent)
    };
    let icmp_errors: Vec<String> = errors
        .into_iter()
        .map(|(text, count)| {
            if count > 1 {
                format!("{text} ({count} times)")
            } else {
                text
            }
        })
        .collect();

    let timeout_s = target.timeout.as_secs_f64();
    let (outcome, error) = outcome_and_error(
        target,
        n_sent,
        received,
        logs.cancelled,
        icmp_errors.first(),
    );

    let (tx_source, rx_source) = if received > 0 {
        (
            source(rtt_tx_kernel, received),
            source(rtt_rx_kernel, received),
        )
    } else {
        let rx = if logs.sock.rx_stamps {
            TimestampSource::Kernel
        } else {
            TimestampSource::User
        };
        (source(tx_kernel, n_sent), rx)
    };
    let mut notes = logs.sock.notes.clone();
    if received > 0 && tx_source != TimestampSource::Kernel {
        notes.push(format!(
            "{} of {received} round-trip times use a user-space send time: the kernel gave no transmit timestamp",
            received - rtt_tx_kernel
        ));
    }
    if received > 0 && rx_source != TimestampSource::Kernel {
        notes.push(format!(
            "{} of {received} round-trip times use a user-space receive time: the kernel gave no receive timestamp",
            received - rtt_rx_kernel
        ));
    }
    if late > 0 {
        notes.push(format!(
            "{late} repl{} arrived after the {} s timeout and {} not counted",
            if late == 1 { "y" } else { "ies" },
            trim_float(timeout_s),
            if late == 1 { "was" } else { "were" }
        ));
    }

    let started = first_tx.unwrap_or(recv.end);
    let end = if lost.is_empty() {
        last_rx.unwrap_or(started)
    } else {
        let timed_out = last_tx
            .map_or(recv.end, |t| t.after(target.timeout))
            .min(recv.end);
        last_rx.map_or(timed_out, |r| r.max(timed_out))
    };
    let pacing = (n_sent > 0).then(|| PacingQuality {
        avg_ms: pacing_sum / f64::from(n_sent),
        max_ms: pacing_max,
    });

    MeasurementResult {
        id: result_id(started),
        measurement_id: None,
        agent: None,
        kind: Kind::Ping,
        target: String::new(),
        started_at: started.to_utc(),
        duration_ms: end.ms_since(started).max(0.0),
        outcome,
        error,
        detail: Some(Detail::Ping(PingDetail {
            address: target.addr,
            sent: n_sent,
            received,
            duplicates,
            loss,
            rtt_ms: RttStats::from_samples(&scratch.samples),
            replies,
            lost,
            icmp_errors,
        })),
        quality: Quality {
            tx_timestamp: tx_source,
            rx_timestamp: rx_source,
            privileged: logs.sock.mode == Mode::Raw,
            socket: Some(match logs.sock.mode {
                Mode::Raw => SocketKind::Raw,
                Mode::Dgram => SocketKind::Dgram,
            }),
            pacing,
            agent_load: None,
            clock_offset_ms: None,
            notes,
        },
    }
}

/// The outcome and its sentence: ok with one reply; otherwise cancelled, unreachable (only
/// errors came back) or timeout (nothing came back).
fn outcome_and_error(
    target: &Target,
    sent: u32,
    received: u32,
    cancelled: bool,
    first_error: Option<&String>,
) -> (Outcome, Option<String>) {
    let addr: IpAddr = target.addr;
    if received > 0 {
        (Outcome::Ok, None)
    } else if cancelled && sent < target.count {
        (
            Outcome::Cancelled,
            Some(format!(
                "cancelled after {sent} of {} echo requests, before any reply",
                target.count
            )),
        )
    } else if let Some(first) = first_error {
        (
            Outcome::Unreachable,
            Some(format!("{addr} is unreachable: {first}")),
        )
    } else {
        (
            Outcome::Timeout,
            Some(format!(
                "no reply from {addr}: {sent} echo request{} unanswered within {} s each",
                if sent == 1 { "" } else { "s" },
                trim_float(target.timeout.as_secs_f64())
            )),
        )
    }
}

/// A time-ordered (v7) result id, with random bits from the thread's generator rather than a
/// system call per result.
fn result_id(at: Stamp) -> uuid::Uuid {
    let millis = u64::try_from(at.as_nanos() / 1_000_000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random::<[u8; 10]>()).into_uuid()
}

fn source(kernel: u32, of: u32) -> TimestampSource {
    if of > 0 && kernel == of {
        TimestampSource::Kernel
    } else if kernel == 0 {
        TimestampSource::User
    } else {
        TimestampSource::Mixed
    }
}

/// `2` rather than `2.0`, `0.5` as is.
fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A local send error as a network engineer would say it.
fn describe_errno(errno: i32) -> String {
    match errno {
        libc::ENETUNREACH => "network is unreachable (no route in the local routing table)".into(),
        libc::EHOSTUNREACH => "no route to host".into(),
        libc::EACCES => "permission denied (a broadcast address, or a local firewall rule)".into(),
        libc::EPERM => "a local firewall rule refused the packet".into(),
        libc::EMSGSIZE => "message too long for the path MTU with don't-fragment set".into(),
        libc::EADDRNOTAVAIL => "the source address is not available".into(),
        libc::ENOBUFS => "the interface queue stayed full for 2 s".into(),
        0 => "unknown error".into(),
        e => std::io::Error::from_raw_os_error(e)
            .to_string()
            .split(" (os error")
            .next()
            .unwrap_or_default()
            .to_lowercase(),
    }
}
