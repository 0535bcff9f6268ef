//! What the transport probes (TCP connect, TCP SYN, UDP) share: the source ports a run rotates
//! through and how they are held, when each probe is due, the per-probe log that turns sends,
//! kernel stamps and answers into [`PortProbe`]s, and the verdict: outcome, sentence, quality.
//!
//! Main decisions:
//! - Probe `n` leaves at `start + n × interval` from source port `ports[n mod len]`: consecutive
//!   probes take consecutive ports of the spec's range (netprobify's groups), so every ECMP flow
//!   gets the same number of probes. Without a range the kernel picks one ephemeral port and the
//!   whole run keeps it: one flow, one path, comparable samples (like a ping).
//! - A probe counts as answered only if its answer came within the timeout; an RTT is kernel RX
//!   stamp − kernel TX stamp when both exist, and a missing side is replaced by user-space time
//!   on the same clock (`quality` says which).
//! - Packet probes (SYN, UDP) run as one task: a sender paced by the schedule, readers draining
//!   their sockets and a watcher that ends the run, sharing the log through a mutex that is only
//!   ever taken by that one task (so never contended) and never held across an await. A mutex
//!   rather than a `RefCell` keeps the measurement future `Send`, so agents can spawn it.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;
use vantage_proto::{
    Detail, Family, Kind, MeasurementResult, Outcome, PacingQuality, PortProbe, PortRange,
    ProbeStatus, Quality, SocketKind, TimestampSource,
};

use crate::sock::{Stamp, StampSource, bind_error, icmp};
use crate::{Context, Error};

/// The source ports a run rotates through, in order: the first `count` ports of the spec's
/// range (all of it when the run has more probes). `None` without a range: the caller lets the
/// kernel choose one port and keeps it for the run.
pub(crate) fn ports_in_use(range: Option<PortRange>, count: u32) -> Option<Vec<u16>> {
    let r = range?;
    let n = r.len().min(count.max(1));
    Some((0..n).map(|i| r.nth(i)).collect())
}

/// The source port of probe `seq`.
pub(crate) fn port_for(ports: &[u16], seq: u32) -> u16 {
    ports[seq as usize % ports.len()]
}

/// When probe `seq` is due.
pub(crate) fn due(start: Instant, interval: Duration, seq: u32) -> Instant {
    start + interval.mul_f64(f64::from(seq))
}

/// The unspecified address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Whether the kernel has a route to `dst` and which source address it would use (from
/// `bound` when given): a UDP socket is connected, which sends nothing. `Ok(None)` when there
/// is no route; the sentence for that is the caller's.
pub(crate) fn route_source(dst: IpAddr, bound: Option<IpAddr>) -> Result<Option<IpAddr>, Error> {
    let local = SocketAddr::new(bound.unwrap_or_else(|| unspecified_like(dst)), 0);
    let s = std::net::UdpSocket::bind(local).map_err(|e| bind_error(local, e))?;
    match s.connect(SocketAddr::new(dst, 9)) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::socket(format!("cannot find a route to {dst}"), e)),
    }
    s.local_addr()
        .map(|a| Some(a.ip()))
        .map_err(|e| Error::socket("cannot read the local address of a route lookup", e))
}

/// TCP sockets bound (never listening) to the source ports of a run, held until it ends: while
/// a port is bound, the kernel gives it to no other socket of this host, so no connection of
/// another program can share a probe's four-tuple. Each is bound with `SO_REUSEADDR`, which lets
/// the probe's own sockets bind the same port beside it (neither listens).
#[derive(Debug)]
pub(crate) struct PortHold {
    /// The held ports, in rotation order.
    pub ports: Vec<u16>,
    _sockets: Vec<socket2::Socket>,
}

impl PortHold {
    /// Holds `ports` on `local` (or one port the kernel picks when `None`).
    pub(crate) fn tcp(local: IpAddr, ports: Option<Vec<u16>>) -> Result<PortHold, Error> {
        let wanted = ports.unwrap_or_else(|| vec![0]);
        let mut held = Vec::with_capacity(wanted.len());
        let mut sockets = Vec::with_capacity(wanted.len());
        for port in wanted {
            let addr = SocketAddr::new(local, port);
            let s = tcp_socket(addr.ip())?;
            s.set_reuse_address(true)
                .map_err(|e| Error::socket("cannot set SO_REUSEADDR on a TCP socket", e))?;
            s.bind(&addr.into()).map_err(|e| bind_error(addr, e))?;
            let bound = s
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .map(|a| a.port())
                .ok_or_else(|| {
                    Error::socket(
                        "cannot read a bound port",
                        std::io::Error::other("no address"),
                    )
                })?;
            held.push(bound);
            sockets.push(s);
        }
        Ok(PortHold {
            ports: held,
            _sockets: sockets,
        })
    }
}

/// The (protocol, source port, peer) flows the transport measurements of this process are
/// probing right now.
static CLAIMS: Mutex<Vec<(u8, u16, SocketAddr)>> = Mutex::new(Vec::new());

/// A measurement's claim on its flows, released when dropped.
#[derive(Debug)]
pub(crate) struct Claim(Vec<(u8, u16, SocketAddr)>);

impl Claim {
    /// Claims the flows from `ports` to `peer` for protocol `proto` (6 TCP, 17 UDP). Two
    /// measurements of one process probing the same flow at once would take each other's
    /// answers (UDP) or collide on the target as one four-tuple (TCP), so the second one is
    /// refused with a sentence instead.
    pub(crate) fn new(proto: u8, ports: &[u16], peer: SocketAddr) -> Result<Claim, Error> {
        let mut all = lock(&CLAIMS);
        if let Some(&(_, port, _)) = all
            .iter()
            .find(|(pr, port, p)| *pr == proto && *p == peer && ports.contains(port))
        {
            return Err(Error::Invalid(format!(
                "another measurement is already probing {peer} from source port {port}; the \
                 answers of the two could not be told apart: run them one after another or \
                 give them different source ports"
            )));
        }
        let mine: Vec<_> = ports.iter().map(|&port| (proto, port, peer)).collect();
        all.extend_from_slice(&mine);
        Ok(Claim(mine))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&CLAIMS).retain(|c| !self.0.contains(c));
    }
}

/// A non-blocking TCP socket of `ip`'s family.
pub(crate) fn tcp_socket(ip: IpAddr) -> Result<socket2::Socket, Error> {
    let domain = match ip {
        IpAddr::V4(_) => socket2::Domain::IPV4,
        IpAddr::V6(_) => socket2::Domain::IPV6,
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .map_err(|e| Error::socket("cannot open a TCP socket", e))?;
    s.set_nonblocking(true)
        .map_err(|e| Error::socket("cannot make a TCP socket non-blocking", e))?;
    Ok(s)
}

/// What a transport probe run produced, before it becomes an envelope.
#[derive(Debug)]
pub(crate) struct Run {
    /// One record per probe that left, in send order.
    pub records: Vec<Record>,
    /// Why each probe the kernel refused to send could not leave (no route …). Such probes
    /// are not counted as sent, as classic tools do not count them.
    pub unsent: Vec<String>,
    /// The socket the probes went through.
    pub socket: SocketKind,
    /// Whether raw sockets (CAP_NET_RAW) were used.
    pub privileged: bool,
    /// Where send and receive times would come from (reported when no probe has an RTT).
    pub stamps: (TimestampSource, TimestampSource),
    /// Things a person should know about the numbers.
    pub notes: Vec<String>,
}

/// One probe's fate, ready for the result.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// What the result shows.
    pub probe: PortProbe,
    /// For a probe with an RTT: where its send and receive times came from.
    pub sources: Option<(StampSource, StampSource)>,
    /// How late the probe left behind its schedule, in milliseconds.
    pub late_ms: Option<f64>,
    /// For refusals and unreachables: who said what, as a sentence fragment.
    pub why: Option<String>,
}

/// What answered a packet probe.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// Its meaning.
    pub status: ProbeStatus,
    /// When it arrived.
    pub at: Stamp,
    /// Whether `at` is a kernel stamp.
    pub kernel: bool,
    /// The address that answered, when it is not the target (a router's ICMP error).
    pub from: Option<IpAddr>,
    /// A sentence fragment for refusals and unreachables.
    pub why: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    port: u16,
    /// User-space time just before the send call.
    sent: Option<Stamp>,
    late_ms: f64,
    /// Kernel TX stamp.
    tx: Option<Stamp>,
    answer: Option<Answer>,
    /// The kernel refused to send it (no route …): why.
    failed: Option<String>,
}

/// The log of a packet probe run (TCP SYN, UDP): sends, TX stamps and answers per probe.
#[derive(Debug)]
pub(crate) struct Table {
    timeout: Duration,
    entries: Vec<Entry>,
    /// (socket index, TX-stamp key) → probe.
    keys: HashMap<(usize, u32), u32>,
    /// Probes sent or failed so far (they leave in order).
    resolved: u32,
}

impl Table {
    /// A log for probes `0..count` whose source ports follow `ports`.
    pub(crate) fn new(count: u32, ports: &[u16], timeout: Duration) -> Table {
        Table {
            timeout,
            entries: (0..count)
                .map(|seq| Entry {
                    port: port_for(ports, seq),
                    ..Entry::default()
                })
                .collect(),
            keys: HashMap::new(),
            resolved: 0,
        }
    }

    /// Probe `seq` left through socket `sock` at user time `at`, `late_ms` behind schedule;
    /// `key` is its TX-stamp key when the socket stamps.
    pub(crate) fn sent(
        &mut self,
        seq: u32,
        at: Stamp,
        late_ms: f64,
        sock: usize,
        key: Option<u32>,
    ) {
        let e = &mut self.entries[seq as usize];
        e.sent = Some(at);
        e.late_ms = late_ms;
        if let Some(k) = key {
            self.keys.insert((sock, k), seq);
        }
        self.resolved = self.resolved.max(seq + 1);
    }

    /// Probe `seq` could not be sent: the kernel refused it, for the reason `why`.
    pub(crate) fn send_failed(&mut self, seq: u32, why: String, late_ms: f64) {
        let e = &mut self.entries[seq as usize];
        e.failed = Some(why);
        e.late_ms = late_ms;
        self.resolved = self.resolved.max(seq + 1);
    }

    /// A kernel TX stamp for the packet sent through `sock` under `key` (other keys, such as
    /// those of resets, are ignored).
    pub(crate) fn tx_stamp(&mut self, sock: usize, key: u32, at: Stamp) {
        if let Some(&seq) = self.keys.get(&(sock, key)) {
            self.entries[seq as usize].tx = Some(at);
        }
    }

    /// Records the answer to probe `seq`; the first answer counts. Returns whether it was new.
    pub(crate) fn answer(&mut self, seq: u32, answer: Answer) -> bool {
        let Some(e) = self.entries.get_mut(seq as usize) else {
            return false;
        };
        if e.sent.is_none() || e.answer.is_some() {
            return false;
        }
        e.answer = Some(answer);
        true
    }

    /// Whether probe `seq` was sent and is still unanswered.
    pub(crate) fn waiting(&self, seq: u32) -> bool {
        self.entries
            .get(seq as usize)
            .is_some_and(|e| e.sent.is_some() && e.answer.is_none())
    }

    /// The oldest sent, unanswered probe from source port `port`: the probe an answer that
    /// cannot be told apart by its content belongs to.
    pub(crate) fn oldest_waiting(&self, port: u16) -> Option<u32> {
        (0..self.resolved).find(|&seq| self.entries[seq as usize].port == port && self.waiting(seq))
    }

    /// The time probe `seq` left: the kernel stamp when known, else the user one.
    fn left_at(&self, seq: usize) -> Option<Stamp> {
        let e = &self.entries[seq];
        e.tx.or(e.sent)
    }

    /// Whether every probe was sent and each is answered or past its deadline.
    pub(crate) fn finished(&self, now: Stamp) -> bool {
        self.resolved as usize == self.entries.len()
            && (0..self.entries.len()).all(|i| {
                let e = &self.entries[i];
                e.sent.is_none()
                    || e.answer.is_some()
                    || e.sent.is_some_and(|s| now >= s.after(self.timeout))
            })
    }

    /// The earliest deadline of a probe still waiting.
    pub(crate) fn next_deadline(&self) -> Option<Stamp> {
        self.entries
            .iter()
            .filter(|e| e.answer.is_none())
            .filter_map(|e| e.sent.map(|s| s.after(self.timeout)))
            .min()
    }

    /// One record per probe that left, in send order, and the reasons of those that could not.
    pub(crate) fn into_records(self) -> (Vec<Record>, Vec<String>) {
        let timeout_ms = self.timeout.as_secs_f64() * 1000.0;
        let unsent = self.entries[..self.resolved as usize]
            .iter()
            .filter_map(|e| e.failed.clone())
            .collect();
        let records = (0..self.resolved as usize)
            .filter(|&i| self.entries[i].failed.is_none())
            .map(|i| {
                let e = &self.entries[i];
                let mut probe = PortProbe {
                    seq: i as u32,
                    src_port: e.port,
                    status: ProbeStatus::Timeout,
                    rtt_ms: None,
                    from: None,
                };
                let mut rec = Record {
                    probe: probe.clone(),
                    sources: None,
                    late_ms: Some(e.late_ms),
                    why: None,
                };
                if let (Some(a), Some(left)) = (&e.answer, self.left_at(i)) {
                    let rtt = a.at.ms_since(left);
                    if rtt <= timeout_ms {
                        probe.status = a.status;
                        probe.rtt_ms = Some(rtt.max(0.0));
                        probe.from = a.from;
                        rec.why = a.why.clone();
                        let tx = if e.tx.is_some() {
                            StampSource::Kernel
                        } else {
                            StampSource::User
                        };
                        let rx = if a.kernel {
                            StampSource::Kernel
                        } else {
                            StampSource::User
                        };
                        rec.sources = Some((tx, rx));
                    }
                }
                rec.probe = probe;
                rec
            })
            .collect();
        (records, unsent)
    }
}

/// Locks the log of a run. Only the run's own task takes it, so it is never contended; a panic
/// while it was held cannot leave it half-updated in a way that matters, so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a packet probe to its end: `send(seq, late_ms)` at each probe's due time (it records
/// into the table), `receive` draining answers meanwhile (it notifies `wake` after each), until
/// every probe is answered or past its deadline, or the run is cancelled.
pub(crate) async fn drive<S, SF, R>(
    table: &Mutex<Table>,
    wake: &Notify,
    count: u32,
    interval: Duration,
    cx: &Context,
    mut send: S,
    receive: R,
) where
    S: FnMut(u32, f64) -> SF,
    SF: Future<Output = ()>,
    R: Future<Output = ()>,
{
    let start = Instant::now();
    let sender = async {
        for seq in 0..count {
            let at = due(start, interval, seq);
            tokio::time::sleep_until(at).await;
            let late_ms = Instant::now().saturating_duration_since(at).as_secs_f64() * 1000.0;
            send(seq, late_ms).await;
            wake.notify_one();
        }
        // Keep the select below waiting for the watcher once everything has left.
        std::future::pending::<()>().await;
    };
    let watcher = async {
        loop {
            let (done, next) = {
                let t = lock(table);
                (t.finished(Stamp::now()), t.next_deadline())
            };
            if done {
                return;
            }
            let wait = next
                .map(|d| {
                    let ns = d.as_nanos() - Stamp::now().as_nanos();
                    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
                })
                .unwrap_or(Duration::from_secs(1))
                // A millisecond past the deadline, so `finished` sees it passed.
                + Duration::from_millis(1);
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    };
    let receiver = async {
        receive.await;
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = watcher => {}
        () = cx.cancel.cancelled() => {}
        () = sender => {}
        () = receiver => {}
    }
}

/// The envelope's outcome and sentence from the probes' fates.
///
/// `what` names the measurement ("TCP connect to 192.0.2.1:443"); `ok` lists the statuses that
/// mean the target answered as a probe of this kind expects.
pub(crate) fn verdict(
    what: &str,
    timeout: f64,
    records: &[Record],
    unsent: &[String],
    ok: &[ProbeStatus],
    timeout_hint: &str,
) -> (Outcome, Option<String>) {
    let first = |s: ProbeStatus| records.iter().find(|r| r.probe.status == s);
    if records.iter().any(|r| ok.contains(&r.probe.status)) {
        return (Outcome::Ok, None);
    }
    if let Some(r) = first(ProbeStatus::Refused) {
        let why = r
            .why
            .clone()
            .unwrap_or_else(|| "the host answered with a reset (port closed)".to_string());
        return (Outcome::Refused, Some(format!("{what} refused: {why}")));
    }
    if let Some(r) = first(ProbeStatus::Unreachable) {
        let why = r
            .why
            .clone()
            .unwrap_or_else(|| "the destination is unreachable".to_string());
        return (Outcome::Unreachable, Some(format!("{what} failed: {why}")));
    }
    if let Some(why) = unsent.first() {
        return (Outcome::Unreachable, Some(format!("{what} failed: {why}")));
    }
    if records.is_empty() {
        return (
            Outcome::Cancelled,
            Some(format!("{what} was cancelled before any probe completed")),
        );
    }
    let n = records.len();
    let probes = if n == 1 {
        "the probe".to_string()
    } else {
        format!("any of the {n} probes")
    };
    (
        Outcome::Timeout,
        Some(format!(
            "{what} timed out: no answer to {probes} within {} each ({timeout_hint})",
            seconds(timeout)
        )),
    )
}

/// `2 s`, `0.5 s`.
pub(crate) fn seconds(s: f64) -> String {
    format!("{} s", (s * 1000.0).round() / 1000.0)
}

/// How far to trust the numbers: where the RTTs' times came from (`default` when no probe has
/// an RTT: what the sockets would have given), pacing, privilege and socket.
pub(crate) fn quality(
    records: &[Record],
    unsent: &[String],
    default: (TimestampSource, TimestampSource),
    privileged: bool,
    socket: SocketKind,
    mut notes: Vec<String>,
) -> Quality {
    if let Some(why) = unsent.first() {
        notes.push(format!(
            "{} probe(s) could not be sent and are not counted: {why}",
            unsent.len()
        ));
    }
    let agg = |pick: fn(&(StampSource, StampSource)) -> StampSource, dflt: TimestampSource| {
        let mut kernel = false;
        let mut user = false;
        for s in records.iter().filter_map(|r| r.sources.as_ref()) {
            match pick(s) {
                StampSource::Kernel => kernel = true,
                StampSource::User => user = true,
            }
        }
        match (kernel, user) {
            (true, true) => TimestampSource::Mixed,
            (true, false) => TimestampSource::Kernel,
            (false, true) => TimestampSource::User,
            (false, false) => dflt,
        }
    };
    let lates: Vec<f64> = records.iter().filter_map(|r| r.late_ms).collect();
    let pacing = (!lates.is_empty()).then(|| PacingQuality {
        avg_ms: lates.iter().sum::<f64>() / lates.len() as f64,
        max_ms: lates.iter().copied().fold(0.0, f64::max),
    });
    Quality {
        tx_timestamp: agg(|s| s.0, default.0),
        rx_timestamp: agg(|s| s.1, default.1),
        privileged,
        socket: Some(socket),
        pacing,
        notes,
        ..Quality::default()
    }
}

/// The result envelope of a run that produced a detail.
#[allow(clippy::too_many_arguments)]
pub(crate) fn envelope(
    kind: Kind,
    target: &str,
    started_at: DateTime<Utc>,
    start: Instant,
    outcome: Outcome,
    error: Option<String>,
    detail: Detail,
    quality: Quality,
) -> MeasurementResult {
    MeasurementResult {
        id: Uuid::now_v7(),
        measurement_id: None,
        agent: None,
        kind,
        target: target.to_string(),
        started_at,
        duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        outcome,
        error,
        detail: Some(detail),
        quality,
    }
}

/// The envelope of a run that could not start.
pub(crate) fn failure(
    kind: Kind,
    target: &str,
    started_at: DateTime<Utc>,
    start: Instant,
    outcome: Outcome,
    error: String,
) -> MeasurementResult {
    let mut r = MeasurementResult::failure(kind, target, outcome, error);
    r.started_at = started_at;
    r.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    r
}

/// Whether an ICMP type and code mean "port unreachable".
pub(crate) fn is_port_unreachable(family: Family, icmp_type: u8, code: u8) -> bool {
    match family {
        Family::Ipv4 => icmp_type == icmp::V4_DEST_UNREACH && code == 3,
        Family::Ipv6 => icmp_type == icmp::V6_DEST_UNREACH && code == 4,
    }
}

/// Who sent an ICMP error about a probe to `target` (`None` when it is the target itself) and
/// what it said, as a sentence fragment: "10.0.1.1 reported destination host unreachable".
pub(crate) fn icmp_why(
    target: IpAddr,
    offender: Option<IpAddr>,
    icmp_type: u8,
    code: u8,
    info: u32,
) -> (Option<IpAddr>, String) {
    let family = Family::of(target);
    let said = icmp::describe(family, icmp_type, code, info);
    match offender {
        Some(o) if o != target => (Some(o), format!("{o} reported {said}")),
        _ => (None, format!("{target} answered with ICMP {said}")),
    }
}

/// Why the kernel refused at once to send a probe (or start a connect) to `dst`, as a sentence
/// fragment.
pub(crate) fn local_why(e: &io::Error, dst: IpAddr) -> String {
    match e.raw_os_error() {
        Some(libc::ENETUNREACH) => format!("this host has no route to {dst}"),
        Some(libc::EHOSTUNREACH) => format!(
            "{dst} is unreachable from this host (no route, or no answer to ARP / neighbour \
             discovery on the local link)"
        ),
        Some(libc::EHOSTDOWN) => {
            format!("{dst} is down (no answer to ARP / neighbour discovery on the local link)")
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "a firewall rule on this host refused to send the packet".to_string()
        }
        Some(libc::EMSGSIZE) => {
            "the packet is larger than the path MTU and may not be fragmented".to_string()
        }
        _ => format!("the kernel refused to send the packet ({e})"),
    }
}

/// Whether a failed send may have failed only because an ICMP error about an earlier packet was
/// pending on the socket (the kernel reports it on the next send instead of sending); such a
/// send is worth one retry.
pub(crate) fn maybe_pending_icmp(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::ENOPROTOOPT
                | libc::EMSGSIZE
                | libc::EACCES
        )
    )
}

/// `192.0.2.1:80`, `[2001:db8::1]:80`.
pub(crate) fn host_port(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: ProbeStatus, why: Option<&str>) -> Record {
        Record {
            probe: PortProbe {
                seq: 0,
                src_port: 1,
                status,
                rtt_ms: None,
                from: None,
            },
            sources: None,
            late_ms: None,
            why: why.map(str::to_string),
        }
    }

    #[test]
    fn ports_rotate_through_the_used_part_of_the_range() {
        let r: PortRange = "33000-33099".parse().unwrap();
        let used = ports_in_use(Some(r), 4).unwrap();
        assert_eq!(used, vec![33000, 33001, 33002, 33003]);
        let seq: Vec<u16> = (0..8).map(|n| port_for(&used, n)).collect();
        assert_eq!(
            seq,
            vec![33000, 33001, 33002, 33003, 33000, 33001, 33002, 33003]
        );
        let small: PortRange = "40000-40001".parse().unwrap();
        assert_eq!(ports_in_use(Some(small), 5).unwrap(), vec![40000, 40001]);
        assert_eq!(ports_in_use(None, 5), None);
    }

    #[test]
    fn a_flow_is_claimed_by_one_measurement_at_a_time() {
        let peer: SocketAddr = "192.0.2.77:33434".parse().unwrap();
        let other: SocketAddr = "192.0.2.78:33434".parse().unwrap();
        let a = Claim::new(17, &[40000, 40001], peer).unwrap();
        let e = Claim::new(17, &[40001, 40002], peer).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "another measurement is already probing 192.0.2.77:33434 from source port 40001"
            ),
            "{e}"
        );
        // Another peer, or another protocol, is another flow.
        let b = Claim::new(17, &[40001], other).unwrap();
        let c = Claim::new(6, &[40001], peer).unwrap();
        drop((a, b, c));
        let _again = Claim::new(17, &[40001], peer).unwrap();
    }

    #[test]
    fn an_open_port_wins_over_refusals_and_timeouts() {
        let recs = [
            rec(ProbeStatus::Timeout, None),
            rec(ProbeStatus::Refused, None),
            rec(ProbeStatus::Open, None),
        ];
        let (o, e) = verdict("TCP", 2.0, &recs, &[], &[ProbeStatus::Open], "");
        assert_eq!((o, e), (Outcome::Ok, None));
    }

    #[test]
    fn refusals_and_unreachables_carry_their_reason() {
        let (o, e) = verdict(
            "TCP connect to 10.0.0.2:81",
            2.0,
            &[rec(ProbeStatus::Refused, None)],
            &[],
            &[ProbeStatus::Open],
            "",
        );
        assert_eq!(o, Outcome::Refused);
        assert_eq!(
            e.unwrap(),
            "TCP connect to 10.0.0.2:81 refused: the host answered with a reset (port closed)"
        );
        let (o, e) = verdict(
            "UDP probe to 10.0.0.2:33434",
            2.0,
            &[
                rec(ProbeStatus::Timeout, None),
                rec(
                    ProbeStatus::Unreachable,
                    Some("10.0.1.1 reported destination host unreachable"),
                ),
            ],
            &[],
            &[ProbeStatus::PortUnreachable, ProbeStatus::Open],
            "",
        );
        assert_eq!(o, Outcome::Unreachable);
        assert_eq!(
            e.unwrap(),
            "UDP probe to 10.0.0.2:33434 failed: 10.0.1.1 reported destination host unreachable"
        );
    }

    #[test]
    fn silence_is_a_timeout_with_the_count_and_the_wait() {
        let (o, e) = verdict(
            "TCP SYN probe to 10.0.0.2:80",
            1.5,
            &[
                rec(ProbeStatus::Timeout, None),
                rec(ProbeStatus::Timeout, None),
            ],
            &[],
            &[ProbeStatus::Open],
            "a firewall may drop them",
        );
        assert_eq!(o, Outcome::Timeout);
        assert_eq!(
            e.unwrap(),
            "TCP SYN probe to 10.0.0.2:80 timed out: no answer to any of the 2 probes within \
             1.5 s each (a firewall may drop them)"
        );
        let (o, _) = verdict("x", 1.0, &[], &[], &[ProbeStatus::Open], "");
        assert_eq!(o, Outcome::Cancelled);
        let (o, e) = verdict(
            "UDP probe to 10.9.9.9:53",
            1.0,
            &[],
            &["this host has no route to 10.9.9.9".to_string()],
            &[ProbeStatus::Open],
            "",
        );
        assert_eq!(o, Outcome::Unreachable);
        assert_eq!(
            e.unwrap(),
            "UDP probe to 10.9.9.9:53 failed: this host has no route to 10.9.9.9"
        );
    }

    #[test]
    fn answers_count_only_within_the_timeout_and_prefer_kernel_stamps() {
        let mut t = Table::new(3, &[7, 8], Duration::from_millis(100));
        let t0 = Stamp::from_nanos(1_000_000_000);
        t.sent(0, t0, 0.5, 0, Some(10));
        t.sent(1, t0.after(Duration::from_millis(10)), 1.5, 0, Some(11));
        t.send_failed(2, "no route".into(), 0.0);
        // Kernel TX stamp for probe 0, 0.2 ms after the user stamp.
        t.tx_stamp(0, 10, t0.after(Duration::from_micros(200)));
        t.tx_stamp(0, 99, t0); // an unknown key (a reset) is ignored
        assert_eq!(t.oldest_waiting(7), Some(0));
        assert_eq!(t.oldest_waiting(8), Some(1));
        let a = |at: Stamp, kernel: bool| Answer {
            status: ProbeStatus::Open,
            at,
            kernel,
            from: None,
            why: None,
        };
        assert!(t.answer(0, a(t0.after(Duration::from_micros(20_200)), true)));
        assert!(
            !t.answer(0, a(t0.after(Duration::from_millis(30)), true)),
            "first wins"
        );
        // Probe 1 answered 150 ms after it left: too late.
        assert!(t.answer(1, a(t0.after(Duration::from_millis(160)), false)));
        assert!(t.finished(t0.after(Duration::from_millis(200))));
        let (r, unsent) = t.into_records();
        assert_eq!(r.len(), 2, "the unsent probe is not a record");
        assert_eq!(unsent, vec!["no route".to_string()]);
        assert_eq!(r[0].probe.status, ProbeStatus::Open);
        assert!((r[0].probe.rtt_ms.unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(
            r[0].sources,
            Some((StampSource::Kernel, StampSource::Kernel))
        );
        assert_eq!(r[1].probe.status, ProbeStatus::Timeout);
        assert_eq!(r[1].probe.rtt_ms, None);
        let q = quality(
            &r,
            &unsent,
            (TimestampSource::User, TimestampSource::User),
            true,
            SocketKind::Raw,
            vec![],
        );
        assert_eq!(q.tx_timestamp, TimestampSource::Kernel);
        assert_eq!(q.pacing.unwrap().max_ms, 1.5);
        assert_eq!(
            q.notes,
            vec!["1 probe(s) could not be sent and are not counted: no route".to_string()]
        );
    }

    #[test]
    fn a_run_is_not_finished_while_probes_wait_or_are_unsent() {
        let mut t = Table::new(2, &[7], Duration::from_millis(100));
        let t0 = Stamp::from_nanos(5_000_000_000);
        t.sent(0, t0, 0.0, 0, None);
        assert!(
            !t.finished(t0.after(Duration::from_millis(500))),
            "probe 1 unsent"
        );
        t.sent(1, t0.after(Duration::from_millis(10)), 0.0, 0, None);
        assert!(!t.finished(t0.after(Duration::from_millis(50))));
        assert_eq!(
            t.next_deadline(),
            Some(t0.after(Duration::from_millis(100)))
        );
        assert!(t.finished(t0.after(Duration::from_millis(111))));
    }
}
