//! UDP probes: datagrams to a (normally closed) port, timed by the ICMP port unreachable the
//! target sends back (netprobify's UDPunreachable), or by a UDP reply when the port is open.
//!
//! One ordinary UDP socket per source port, connected to the target, sends the probes (kernel
//! TX stamps on its error queue). Connected and bound with `SO_REUSEADDR`, the sockets of
//! several measurements of a run (one per target) share the source ports of a range, and the
//! kernel hands each the replies and errors of its own target. The answers are read one of two
//! ways:
//! - **privileged** (CAP_NET_RAW): a raw ICMP socket sees every ICMP error and its quoted header;
//!   the quoted UDP ports say which socket, the quoted payload which probe. (The UDP sockets,
//!   without `IP_RECVERR`, only get a pending error, cleared before each send.)
//! - **unprivileged**: each UDP socket has `IP_RECVERR` / `IPV6_RECVERR`, and the kernel puts the
//!   ICMP errors about its datagrams on its error queue, with the sender, type, code, a kernel
//!   RX stamp and the quoted payload. No capability is needed.
//!
//! Matching: every datagram starts with an 8-byte tag (a random cookie of the run and the probe
//! number) when `size` allows, and errors that quote it (Linux hosts quote up to 576 bytes,
//! routers at least the 8-byte UDP header) match exactly. Without the tag an answer goes to the
//! oldest unanswered probe of its source port, which is exact when probes of one port do not
//! overlap (interval × ports ≥ timeout).
//!
//! Statuses: ICMP port unreachable from the target → `port_unreachable` (the expected answer);
//! a UDP datagram back from the target's port → `open`; any other ICMP error (host or network
//! unreachable, administratively prohibited, time exceeded) → `unreachable`, with the router
//! that sent it. Outcome `ok` when any probe got port unreachable or a reply.
//!
//! Beware: hosts rate-limit ICMP errors (Linux: `net.ipv4.icmp_ratelimit`, 1 s with a burst of
//! 6 per peer, for destination unreachable; `net.ipv6.icmp.ratelimit` likewise), so probes
//! faster than that lose answers that were never lost on the network.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::time::Instant;
use vantage_proto::{
    Detail, Family, Kind, MeasurementResult, ProbeStatus, SocketKind, TimestampSource, UdpDetail,
    UdpSpec,
};

use crate::l4::{self, Answer, Run, Table};
use crate::sock::{
    self, Mode, Options, Protocol, Received, RecvBatch, SendBatch, Socket, Stamp, icmp,
};
use crate::{Context, Error, Privilege, policy, resolve};

/// Bytes of the tag at the start of each datagram: cookie (4) and probe number (4).
const TAG_LEN: usize = 8;
/// Why a UDP probe timed out, in general terms.
const TIMEOUT_HINT: &str = "no ICMP port unreachable came back: the host may be down, or it or \
     a firewall on the path does not send, filters or rate-limits ICMP errors";

/// Runs one UDP measurement.
pub(crate) async fn run(spec: &UdpSpec, cx: &Context) -> MeasurementResult {
    let started_at = Utc::now();
    let start = Instant::now();
    let fail = |e: Error| {
        l4::failure(
            Kind::Udp,
            &spec.target,
            started_at,
            start,
            e.outcome(),
            e.to_string(),
        )
    };
    // UDP specs have no per-spec opt-in for non-global targets (like ping): the host's
    // context decides (the CLI permits them; agents serving remote users may not).
    let resolved = resolve(&spec.target, spec.family).await;
    let addr = match resolved.and_then(|a| policy::check(a, true, cx).map(|()| a)) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let run = match probe(spec, addr, cx).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let what = format!("UDP probe to {}", l4::host_port(addr, spec.port));
    let (outcome, error) = l4::verdict(
        &what,
        spec.timeout,
        &run.records,
        &run.unsent,
        &[ProbeStatus::PortUnreachable, ProbeStatus::Open],
        TIMEOUT_HINT,
    );
    let quality = l4::quality(
        &run.records,
        &run.unsent,
        run.stamps,
        run.privileged,
        run.socket,
        run.notes,
    );
    let probes = run.records.into_iter().map(|r| r.probe).collect();
    l4::envelope(
        Kind::Udp,
        &spec.target,
        started_at,
        start,
        outcome,
        error,
        Detail::Udp(UdpDetail::from_probes(addr, spec.port, probes)),
        quality,
    )
}

/// Opens the sockets and runs every probe.
async fn probe(spec: &UdpSpec, addr: IpAddr, cx: &Context) -> Result<Run, Error> {
    let family = Family::of(addr);
    let listener = icmp_listener(family, cx.privilege)?;
    if l4::route_source(addr, spec.source)?.is_none() {
        return Ok(no_route(spec, addr, listener.is_some()));
    }
    let wanted = l4::ports_in_use(spec.source_ports, spec.count).unwrap_or_else(|| vec![0]);
    let mut socks = Vec::with_capacity(wanted.len());
    for port in wanted {
        let opts = Options {
            ttl: spec.ttl,
            tos: spec.tos,
            df: match family {
                Family::Ipv4 => Some(spec.df),
                Family::Ipv6 => spec.df.then_some(true),
            },
            source: spec.source,
            source_port: Some(port),
            // Other measurements of this run (other targets) may use the same ports.
            reuse_address: true,
            timestamps: true,
            recv_errors: listener.is_none(),
            ..Options::default()
        };
        let sock = Socket::open(family, Protocol::Udp, Mode::Dgram, &opts)?;
        sock.connect(SocketAddr::new(addr, spec.port))
            .map_err(|e| Error::socket(format!("cannot connect a UDP socket to {addr}"), e))?;
        socks.push(sock);
    }
    let ports: Vec<u16> = socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::socket("cannot read the port of a UDP socket", e))?;
    let _claim = l4::Claim::new(17, &ports, SocketAddr::new(addr, spec.port))?;
    sock::settle_rx_stamps().await;

    let cookie: u32 = rand::random();
    let tagged = usize::from(spec.size) >= TAG_LEN;
    let timeout = Duration::from_secs_f64(spec.timeout);
    let table = Mutex::new(Table::new(spec.count, &ports, timeout));
    let wake = Notify::new();
    let ctx = Ctx {
        socks: &socks,
        ports: &ports,
        addr,
        dport: spec.port,
        cookie,
        tagged,
        table: &table,
        wake: &wake,
    };
    let send = |seq: u32, late_ms: f64| {
        let ctx = &ctx;
        async move {
            let mut payload = vec![0u8; usize::from(spec.size)];
            let mut tag = [0u8; TAG_LEN];
            tag[..4].copy_from_slice(&ctx.cookie.to_be_bytes());
            tag[4..].copy_from_slice(&seq.to_be_bytes());
            let n = payload.len().min(TAG_LEN);
            payload[..n].copy_from_slice(&tag[..n]);
            ctx.send_probe(seq, &payload, late_ms).await;
        }
    };
    let receive = async {
        let readers = socks.iter().enumerate().map(|(i, _)| ctx.read_udp(i));
        match &listener {
            Some(l) => {
                futures::future::join(futures::future::join_all(readers), ctx.read_icmp(l)).await;
            }
            None => {
                futures::future::join_all(readers).await;
            }
        }
    };
    l4::drive(
        &table,
        &wake,
        spec.count,
        Duration::from_secs_f64(spec.interval),
        cx,
        send,
        receive,
    )
    .await;
    ctx.drain_tx_stamps();

    let stamp = |on: bool| {
        if on {
            TimestampSource::Kernel
        } else {
            TimestampSource::User
        }
    };
    let rx = match &listener {
        Some(l) => l.rx_stamps(),
        None => socks.iter().all(|s| s.rx_stamps()),
    };
    let (records, unsent) = table
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_records();
    Ok(Run {
        records,
        unsent,
        socket: if listener.is_some() {
            SocketKind::Raw
        } else {
            SocketKind::Dgram
        },
        privileged: listener.is_some(),
        stamps: (stamp(socks.iter().all(|s| s.tx_stamps())), stamp(rx)),
        notes: Vec::new(),
    })
}

/// The raw ICMP socket of the privileged path, when the privilege allows it: `Raw` requires
/// it, `Auto` takes it when CAP_NET_RAW is there, `Unprivileged` never opens it.
fn icmp_listener(family: Family, privilege: Privilege) -> Result<Option<Socket>, Error> {
    if privilege == Privilege::Unprivileged {
        return Ok(None);
    }
    let opts = Options {
        timestamps: true,
        recv_buffer: Some(1 << 20),
        ..Options::default()
    };
    let s = match Socket::open(family, Protocol::Icmp, Mode::Raw, &opts) {
        Ok(s) => s,
        Err(Error::Permission(_)) if privilege == Privilege::Auto => return Ok(None),
        Err(e) => return Err(e),
    };
    let errors: &[u8] = match family {
        Family::Ipv4 => &[
            icmp::V4_DEST_UNREACH,
            icmp::V4_TIME_EXCEEDED,
            icmp::V4_PARAM_PROBLEM,
        ],
        Family::Ipv6 => &[
            icmp::V6_DEST_UNREACH,
            icmp::V6_PACKET_TOO_BIG,
            icmp::V6_TIME_EXCEEDED,
            icmp::V6_PARAM_PROBLEM,
        ],
    };
    s.set_icmp_filter(errors)
        .map_err(|e| Error::socket("cannot set the ICMP filter of the raw socket", e))?;
    Ok(Some(s))
}

/// Nothing sent: the host has no route to the target.
fn no_route(spec: &UdpSpec, addr: IpAddr, privileged: bool) -> Run {
    Run {
        records: Vec::new(),
        unsent: vec![format!("this host has no route to {addr}"); spec.count as usize],
        socket: if privileged {
            SocketKind::Raw
        } else {
            SocketKind::Dgram
        },
        privileged,
        stamps: (TimestampSource::User, TimestampSource::User),
        notes: Vec::new(),
    }
}

/// What the sender and the readers of one run share.
struct Ctx<'a> {
    socks: &'a [Socket],
    ports: &'a [u16],
    addr: IpAddr,
    dport: u16,
    cookie: u32,
    tagged: bool,
    table: &'a Mutex<Table>,
    wake: &'a Notify,
}

impl Ctx<'_> {
    /// Sends probe `seq` from its port's socket and logs it (or why it could not leave).
    async fn send_probe(&self, seq: u32, payload: &[u8], late_ms: f64) {
        let i = seq as usize % self.socks.len();
        let sock = &self.socks[i];
        let mut batch = SendBatch::new();
        batch.push(SocketAddr::new(self.addr, self.dport), payload, seq);
        let mut retried = false;
        loop {
            // An ICMP error about an earlier probe would fail this send without sending it.
            let _ = sock.take_error();
            let at = Stamp::now();
            match sock.send(&mut batch, 0).await {
                Ok(_) => {
                    l4::lock(self.table).sent(seq, at, late_ms, i, batch.key(0));
                    return;
                }
                Err(e) if !retried && l4::maybe_pending_icmp(&e) => retried = true,
                Err(e) => {
                    let why = l4::local_why(&e, self.addr);
                    l4::lock(self.table).send_failed(seq, why, late_ms);
                    return;
                }
            }
        }
    }

    /// The probe an answer quoting `data` (our payload from its start) belongs to: the tagged
    /// probe when the tag was quoted (none when the tag is another run's), else the oldest
    /// waiting probe of `port`.
    fn which(&self, port: u16, data: &[u8]) -> Option<u32> {
        if self.tagged && data.len() >= TAG_LEN {
            let cookie = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let seq = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            let t = l4::lock(self.table);
            let ours = cookie == self.cookie && l4::port_for(self.ports, seq) == port;
            return (ours && t.waiting(seq)).then_some(seq);
        }
        l4::lock(self.table).oldest_waiting(port)
    }

    fn record(&self, seq: u32, answer: Answer) {
        if l4::lock(self.table).answer(seq, answer) {
            self.wake.notify_one();
        }
    }

    /// The meaning of an ICMP error about a probe.
    fn icmp_answer(
        &self,
        offender: Option<IpAddr>,
        ty: u8,
        code: u8,
        info: u32,
        at: Stamp,
        kernel: bool,
    ) -> Answer {
        let (from, why) = l4::icmp_why(self.addr, offender, ty, code, info);
        let port_unreachable =
            from.is_none() && l4::is_port_unreachable(Family::of(self.addr), ty, code);
        Answer {
            status: if port_unreachable {
                ProbeStatus::PortUnreachable
            } else {
                ProbeStatus::Unreachable
            },
            at,
            kernel,
            from,
            why: (!port_unreachable).then_some(why),
        }
    }

    /// Reads socket `i`: replies from the target's port, TX stamps and (unprivileged) ICMP
    /// errors from its error queue.
    async fn read_udp(&self, i: usize) {
        let sock = &self.socks[i];
        let port = self.ports[i];
        let mut rb = RecvBatch::new(16, 2048);
        loop {
            if sock.ready().await.is_err() {
                return;
            }
            for _ in 0..64 {
                let n = match sock.try_recv_errors(&mut rb) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                };
                for k in 0..n {
                    self.on_error_entry(i, port, &rb.get(k));
                }
            }
            for _ in 0..64 {
                let n = match sock.try_recv(&mut rb) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A pending ICMP error reported by the receive call: it is on the error
                    // queue too (unprivileged) or seen by the raw socket (privileged).
                    Err(_) => continue,
                };
                for k in 0..n {
                    let r = rb.get(k);
                    if r.from != Some(SocketAddr::new(self.addr, self.dport)) {
                        continue;
                    }
                    let Some(seq) = self.which(port, r.data) else {
                        continue;
                    };
                    let (at, kernel) = r.stamp.map_or_else(|| (Stamp::now(), false), |s| (s, true));
                    self.record(
                        seq,
                        Answer {
                            status: ProbeStatus::Open,
                            at,
                            kernel,
                            from: None,
                            why: None,
                        },
                    );
                }
            }
        }
    }

    fn on_error_entry(&self, i: usize, port: u16, r: &Received<'_>) {
        if let Some((key, at)) = r.tx_stamp() {
            l4::lock(self.table).tx_stamp(i, key, at);
            return;
        }
        let Some(e) = r.error.filter(|e| e.is_icmp()) else {
            return;
        };
        // `from` is the datagram's destination; `data` its payload as quoted.
        if r.from
            .is_some_and(|f| f.ip() != self.addr || f.port() != self.dport)
        {
            return;
        }
        let Some(seq) = self.which(port, r.data) else {
            return;
        };
        let (at, kernel) = r.stamp.map_or_else(|| (Stamp::now(), false), |s| (s, true));
        let answer = self.icmp_answer(e.offender, e.icmp_type, e.icmp_code, e.info, at, kernel);
        self.record(seq, answer);
    }

    /// Reads the raw ICMP socket (privileged path): errors quoting one of our datagrams.
    async fn read_icmp(&self, s: &Socket) {
        let family = Family::of(self.addr);
        let mut rb = RecvBatch::new(16, 2048);
        loop {
            let n = match s.recv(&mut rb).await {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => continue,
            };
            for k in 0..n {
                let r = rb.get(k);
                let (offender, msg) = match family {
                    Family::Ipv4 => match icmp::strip_ipv4(r.data) {
                        Some((info, rest)) => (Some(info.src), rest),
                        None => continue,
                    },
                    Family::Ipv6 => (r.from.map(|a| a.ip()), r.data),
                };
                let Some(icmp::Message::Error {
                    icmp_type,
                    code,
                    info,
                    quoted: Some(q),
                }) = icmp::parse(family, msg)
                else {
                    continue;
                };
                if q.dst != self.addr || q.protocol != 17 {
                    continue;
                }
                let Some((sport, dport)) = q.ports() else {
                    continue;
                };
                if dport != self.dport || !self.ports.contains(&sport) {
                    continue;
                }
                let payload = q.transport.get(8..).unwrap_or(&[]);
                let Some(seq) = self.which(sport, payload) else {
                    continue;
                };
                let (at, kernel) = r.stamp.map_or_else(|| (Stamp::now(), false), |s| (s, true));
                let answer = self.icmp_answer(offender, icmp_type, code, info, at, kernel);
                self.record(seq, answer);
            }
        }
    }

    /// A last read of TX stamps that arrived after the final answer.
    fn drain_tx_stamps(&self) {
        let mut rb = RecvBatch::new(32, 256);
        for (i, s) in self.socks.iter().enumerate() {
            for _ in 0..64 {
                let Ok(n) = s.recv_now(&mut rb, true) else {
                    break;
                };
                for k in 0..n {
                    if let Some((key, at)) = rb.get(k).tx_stamp() {
                        l4::lock(self.table).tx_stamp(i, key, at);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_measurement_future_is_send_so_agents_can_spawn_it() {
        let cx = Context::default();
        let spec = UdpSpec::new("192.0.2.1", 33434);
        assert_send(&run(&spec, &cx));
    }

    #[tokio::test]
    async fn a_non_global_target_is_refused_when_the_host_forbids_it() {
        let cx = Context {
            allow_private: false,
            ..Context::default()
        };
        let r = run(&UdpSpec::new("10.1.2.3", 33434), &cx).await;
        assert_eq!(r.outcome, vantage_proto::Outcome::BlockedByPolicy);
        assert!(r.detail.is_none(), "nothing was sent");
    }
}
