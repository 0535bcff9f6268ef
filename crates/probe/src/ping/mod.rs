//! ICMP echo to one target (ping) or many (sweep), over shared sockets.
//!
//! Targets are resolved, then grouped: every target whose socket options and interval agree
//! shares one schedule (a CLI sweep is one group per family). A small group runs on one socket;
//! a big one is split into shards, one socket and one task per worker thread, because the
//! kernel's per-packet work (on loopback and fast links it answers in the sender's own system
//! call) is what limits a sweep. Each shard's single task sends the probes that are due in
//! `sendmmsg` batches, paced at `Context::rate`, and drains replies, ICMP errors and kernel TX
//! stamps with `recvmmsg` into a table indexed by probe number that only it owns, so the receive
//! path takes no lock. Replies are matched by identifier (also filtered in the kernel with BPF
//! on raw sockets), sequence, a random per-run cookie and the probe number in the payload, and
//! must come from the pinged address.
//!
//! The main decision: round-trip time is kernel RX stamp − kernel TX stamp whenever both exist
//! (user-space time replaces a missing side, and `quality` says so), because that removes the
//! scheduling noise of user space. A request counts as answered only if its reply arrives within
//! the spec's timeout.

/// Probe numbering, schedule and payload tags.
mod plan;
/// The receiving side: replies, errors and TX stamps into a per-probe table.
mod recv;
/// Logs into per-target results.
mod report;
/// The sending side: paced, batched sends.
mod send;
/// One socket and the task that sends and receives on it.
mod shard;

use std::time::Duration;

use futures::StreamExt;
use vantage_proto::{Family, Kind, MeasurementResult, PingSpec};

use crate::sock::{self, Mode, Options, Socket, icmp};
use crate::{Context, Error, Privilege};
use plan::{GroupKey, MAX_UNTAGGED_PROBES, Plan, TAG_LEN, Target};
use report::SocketInfo;

/// Host names resolved at the same time, at most.
const RESOLVE_CONCURRENCY: usize = 32;
/// Receive buffer asked for per probe of a group (a queued reply costs the kernel about 1 KiB),
/// so a burst of replies the receiver has not drained yet is queued rather than dropped.
const RCVBUF_PER_PROBE: usize = 1024;
/// Groups with fewer probes use one socket; bigger ones one per worker thread, because on
/// loopback and fast links the kernel's work per packet (which runs in the sending thread) is
/// what limits a sweep.
const SHARD_MIN_PROBES: usize = 4096;
/// Most shards of one group.
const MAX_SHARDS: usize = 8;
/// Receive buffer bounds.
const RCVBUF_MIN: usize = 256 * 1024;
const RCVBUF_MAX: usize = 256 * 1024 * 1024;

/// Pings every spec; results come back in the order of `specs`.
pub(crate) async fn run_many(specs: &[&PingSpec], cx: &Context) -> Vec<MeasurementResult> {
    let slots = Slots::start(specs.len());
    // Results known before any probe is sent (unresolvable or refused targets).
    let mut early: Vec<(usize, MeasurementResult)> = Vec::new();
    let resolved = resolve_all(specs).await;

    let mut groups: Vec<(GroupKey, Vec<Target>, usize)> = Vec::new();
    for (i, (spec, addr)) in specs.iter().zip(resolved).enumerate() {
        // Ping specs have no per-spec opt-in: non-global targets are measured when the host's
        // context permits them (the CLI does; agents serving remote users may not).
        let addr = match addr.and_then(|a| crate::policy::check(a, true, cx).map(|()| a)) {
            Ok(a) => a,
            Err(e) => {
                early.push((i, failure(spec, &e)));
                continue;
            }
        };
        let family = Family::of(addr);
        let key = GroupKey {
            family,
            options: Options {
                ttl: spec.ttl,
                tos: spec.tos,
                // Without --df the kernel's default applies (path MTU discovery: DF on packets
                // that fit, local fragmentation of bigger ones), as with iputils ping.
                df: spec.df.then_some(true),
                source: spec.source,
                interface: spec.interface.clone(),
                ..Options::default()
            },
            interval: spec.interval,
            tagged: usize::from(spec.size) >= TAG_LEN,
        };
        let count = spec.count as usize;
        let target = Target {
            spec: i,
            addr,
            count: spec.count,
            timeout: Duration::from_secs_f64(spec.timeout),
            size: spec.size,
        };
        let fits = |g: &(GroupKey, Vec<Target>, usize)| {
            g.0 == key && (key.tagged || g.2 + count <= MAX_UNTAGGED_PROBES)
        };
        match groups.iter_mut().find(|g| fits(g)) {
            Some(g) => {
                g.1.push(target);
                g.2 += count;
            }
            None => groups.push((key, vec![target], count)),
        }
    }

    // Every shard of every group runs at once (an IPv4 and an IPv6 sweep overlap); results are
    // written into their slots as the shards finish.
    sock::settle_rx_stamps().await;
    let mut plans = Vec::new();
    for (key, targets, _) in groups {
        let plan = Plan::new(key, targets);
        let shards = shard_count(plan.len());
        if shards > 1 {
            plans.extend(plan.split(shards));
        } else {
            plans.push(plan);
        }
    }
    // `Context::rate` is for the whole run: each shard gets the share of its probes, so all
    // shards pace their rounds alike and together send at the rate asked for.
    let total: usize = plans.iter().map(Plan::len).sum();
    let mut running = Vec::new();
    for plan in plans {
        let rate = share_of_rate(cx.rate, plan.len(), total);
        match open_shard_socket(&plan, cx) {
            Ok((socket, info)) => {
                let task = tokio::spawn(shard::run(socket, plan, rate, cx.cancel.clone()));
                running.push((task, info, rate));
            }
            Err(e) => {
                for t in &plan.targets {
                    early.push((t.spec, failure(specs[t.spec], &e)));
                }
            }
        }
    }
    let mut results = slots.ready().await;
    for (i, r) in early {
        results[i] = Some(r);
    }
    for (task, info, rate) in running {
        match task.await {
            Ok((plan, sent, received)) => {
                tracing::debug!(
                    probes = plan.len(),
                    replies = received.replies.len(),
                    foreign = received.foreign,
                    "ping shard done"
                );
                let logs = report::Logs {
                    plan: &plan,
                    sent: &sent,
                    recv: &received,
                    sock: &info,
                    rate,
                    cancelled: cx.cancel.is_cancelled(),
                };
                report::build(&logs, &mut results);
            }
            // A panicked shard leaves its slots empty; they are reported as internal failures
            // below rather than lost.
            Err(e) => tracing::error!("a ping shard failed: {e}"),
        }
    }
    for (slot, spec) in results.iter_mut().zip(specs) {
        match slot {
            Some(r) => r.target.clone_from(&spec.target),
            None => {
                *slot = Some(failure(
                    spec,
                    &Error::Invalid("the ping engine failed before reporting this target".into()),
                ));
            }
        }
    }
    // Every slot is filled now. Mapping the vector's own iterator lets the standard library
    // reuse its memory for the results instead of copying them into a new one.
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| unreachable!("every result slot was filled above")))
        .collect()
}

/// One result slot per spec. A big sweep's slots (400 bytes each: 24 MB for 60 000 targets) are
/// made on a blocking thread while this one resolves and plans the targets: the kernel takes a
/// page fault for every 4 KiB of fresh memory, about 9 ms that would otherwise delay the first
/// probe while the other core idles. Small runs make them in place; a thread would cost more.
enum Slots {
    Ready(Vec<Option<MeasurementResult>>),
    Making(
        usize,
        tokio::task::JoinHandle<Vec<Option<MeasurementResult>>>,
    ),
}

impl Slots {
    fn start(n: usize) -> Self {
        if n < SHARD_MIN_PROBES {
            Slots::Ready(empty_slots(n))
        } else {
            Slots::Making(n, tokio::task::spawn_blocking(move || empty_slots(n)))
        }
    }

    async fn ready(self) -> Vec<Option<MeasurementResult>> {
        match self {
            Slots::Ready(v) => v,
            Slots::Making(n, task) => match task.await {
                Ok(v) => v,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled by a runtime shutting down: made here instead.
                Err(_) => empty_slots(n),
            },
        }
    }
}

fn empty_slots(n: usize) -> Vec<Option<MeasurementResult>> {
    let mut v = Vec::new();
    v.resize_with(n, || None);
    v
}

/// Resolves every target: address literals at once, names a few at a time.
async fn resolve_all(specs: &[&PingSpec]) -> Vec<Result<std::net::IpAddr, Error>> {
    let mut out = Vec::with_capacity(specs.len());
    let mut names = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let family = s.family.or(s.source.map(Family::of));
        match s.target.parse::<std::net::IpAddr>() {
            Ok(ip) if family.is_none_or(|f| Family::of(ip) == f) => out.push(Ok(ip)),
            _ => {
                out.push(Err(Error::Invalid(String::new())));
                names.push((i, s.target.clone(), family));
            }
        }
    }
    let resolved: Vec<(usize, Result<std::net::IpAddr, Error>)> = futures::stream::iter(
        names
            .into_iter()
            .map(|(i, target, family)| async move { (i, crate::resolve(&target, family).await) }),
    )
    .buffer_unordered(RESOLVE_CONCURRENCY)
    .collect()
    .await;
    for (i, r) in resolved {
        out[i] = r;
    }
    out
}

fn failure(spec: &PingSpec, e: &Error) -> MeasurementResult {
    MeasurementResult::failure(Kind::Ping, spec.target.clone(), e.outcome(), e.to_string())
}

/// Opens the socket of one shard and applies the ICMP filters.
fn open_shard_socket(plan: &Plan, cx: &Context) -> Result<(Socket, SocketInfo), Error> {
    let family = plan.key.family;
    let opts = Options {
        recv_buffer: Some((plan.len() * RCVBUF_PER_PROBE).clamp(RCVBUF_MIN, RCVBUF_MAX)),
        timestamps: true,
        recv_ttl: true,
        ..plan.key.options.clone()
    };
    let socket = Socket::open_icmp(family, cx.privilege, &opts)?;
    let mut notes = Vec::new();
    if let Err(e) = socket
        .set_icmp_filter(icmp::ping_types(family))
        .and_then(|()| socket.set_echo_id_filter(plan.ident))
    {
        notes.push(format!(
            "the kernel refused the ICMP socket filters ({e}); other ICMP traffic was filtered in user space"
        ));
    }
    if cx.privilege == Privilege::Auto && socket.mode() == Mode::Dgram {
        notes.push("no CAP_NET_RAW: used an unprivileged ICMP datagram socket".to_string());
    }
    let info = SocketInfo {
        mode: socket.mode(),
        rx_stamps: socket.rx_stamps(),
        notes,
    };
    Ok((socket, info))
}

/// The packets per second of a shard holding `probes` of the run's `total`; 0 (unpaced) stays 0.
fn share_of_rate(rate: u32, probes: usize, total: usize) -> u32 {
    if rate == 0 || total == 0 {
        return rate;
    }
    let share = (u64::from(rate) * probes as u64).div_ceil(total as u64);
    u32::try_from(share).unwrap_or(u32::MAX).max(1)
}

/// Shards for a group of `probes`: one per worker thread of the runtime for big sweeps, one
/// otherwise.
fn shard_count(probes: usize) -> usize {
    if probes < SHARD_MIN_PROBES {
        return 1;
    }
    let workers = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1);
    workers.clamp(1, MAX_SHARDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shard socket's receive buffer holds a burst of 60 000 replies and their 60 000 TX
    /// stamps that nobody reads until the last request is out: no reply is lost to a full
    /// queue even when the receiving side falls behind completely.
    #[test]
    fn exclusive_a_burst_of_60000_unread_replies_fits_the_receive_buffer() {
        if !vantage_testnet::privileged(
            "exclusive_a_burst_of_60000_unread_replies_fits_the_receive_buffer",
        ) {
            return;
        }
        let net = vantage_testnet::Topology::builder()
            .host("h")
            .anyip("h", "10.200.0.0/16")
            .build()
            .unwrap();
        let (replies, stamps) = net.ns("h").block_on(async {
            let targets = (0..60_000u32)
                .map(|i| Target {
                    spec: i as usize,
                    addr: std::net::IpAddr::from([10, 200, (i / 250) as u8, (i % 250 + 1) as u8]),
                    count: 1,
                    timeout: Duration::from_secs(1),
                    size: 56,
                })
                .collect();
            let key = GroupKey {
                family: Family::Ipv4,
                options: Options::default(),
                interval: 1.0,
                tagged: true,
            };
            let plan = Plan::new(key, targets);
            sock::settle_rx_stamps().await;
            let (socket, _) = open_shard_socket(&plan, &Context::default()).unwrap();
            let mut tx = send::Sender::new(&plan, 0, plan.ident);
            while !tx.done(&plan) {
                tx.send_due(&socket, &plan).await;
            }
            let mut rx = recv::Receiver::new(&plan, socket.mode(), plan.ident);
            rx.drain_now(&socket, &plan);
            let log = rx.finish();
            (
                log.replies.len(),
                log.tx_by_key.iter().filter(|t| **t != 0).count(),
            )
        });
        assert_eq!(replies, 60_000, "replies dropped by a full receive queue");
        assert_eq!(stamps, 60_000, "TX stamps dropped by a full receive queue");
    }

    #[test]
    fn the_rate_is_shared_in_proportion_to_probes() {
        assert_eq!(share_of_rate(0, 10, 20), 0);
        assert_eq!(share_of_rate(5000, 30_000, 60_000), 2500);
        assert_eq!(share_of_rate(1000, 1, 60_000), 1);
        assert_eq!(share_of_rate(3, 1, 2), 2);
    }
}
