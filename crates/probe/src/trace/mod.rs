//! Traceroute and mtr: which routers a packet crosses to reach a target, and how each of them
//! answers over repeated rounds.
//!
//! Main decisions (ARCHITECTURE.md says more):
//! - **Our own engine on the shared raw sockets** rather than trippy-core: kernel RX and TX
//!   timestamps (trippy stamps in user space), one tokio task instead of a thread per trace,
//!   and control over how many probes are in flight, which is what keeps routers' ICMP rate
//!   limits from turning hops silent.
//! - **Paris by default**: every probe of a flow keeps the same flow identity (ports, and the
//!   ICMP checksum), and carries its number where load balancers do not look (`packet`).
//!   `flows > 1` enumerates that many flows, Dublin style, and reports which flow saw which
//!   address.
//! - **All TTLs in flight at once**, within a sliding window (`engine`): a clean path of any
//!   length under the window costs one round trip, and the trace ends the moment every hop up
//!   to the destination has answered, without waiting for probes sent past it.
//! - Raw sockets only: ICMP answers are read from a raw ICMP socket, TCP answers from the raw
//!   TCP socket the SYNs leave on. Without `CAP_NET_RAW` the trace fails with a sentence that
//!   says how to grant it.
//! - Hop ASNs are not the engine's business: [`HopEnricher`] lets the lookup crate fill them in
//!   afterwards.

/// The schedule: what to send when, what answers and timeouts change (no I/O).
mod engine;
/// ICMP extensions: MPLS label stacks (RFC 4884 / 4950).
mod ext;
/// Probe packets with constant flow identity, and recognising answers to them.
mod packet;
/// Reverse DNS of hop addresses: concurrent, cached, bounded in time.
mod rdns;
/// Per-hop and per-address statistics from the per-probe records.
mod summary;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use tokio::time::Instant;
use vantage_proto::{
    Detail, Family, Kind as MeasurementKind, MeasurementResult, Outcome, Quality, SocketKind,
    TimestampSource, TraceAddr, TraceDetail, TraceProtocol, TraceSpec, defaults,
};

use crate::sock::{self, Mode, Options, Protocol, RecvBatch, SendBatch, Socket, Stamp, icmp};
use crate::{Context, Error, Privilege};
use engine::{Reply, Schedule, State, Tracer};
use packet::{Flow, Wire};

/// TTLs that may wait for their first answer at once, for probes whose destination answers
/// are not rate-limited ICMP errors (echo replies, SYN-ACK / RST).
const WINDOW: u8 = 16;
/// Receive buffer of the raw sockets: room for every answer of a large burst.
const RECV_BUFFER: usize = 1 << 20;
/// Packets read per system call, and the room for each (ICMP errors quote up to 576 bytes
/// for IPv4, 1280 for IPv6).
const RECV_BATCH: usize = 32;
const RECV_BUF_LEN: usize = 2048;

/// Fills in what the engine does not know about a hop address — its origin AS and AS name,
/// from the lookup crate — after a trace. The engine never depends on the lookup crate; whoever
/// holds both (the CLI, the agent) calls [`enrich`].
pub trait HopEnricher {
    /// Completes one responding address (`asn`, `as_name` …) in place.
    fn enrich(&self, addr: &mut TraceAddr);
}

/// Runs `enricher` over every responding address of a trace result; other results are left
/// alone.
pub fn enrich(result: &mut MeasurementResult, enricher: &dyn HopEnricher) {
    if let Some(Detail::Trace(d)) = &mut result.detail {
        for hop in &mut d.hops {
            for addr in &mut hop.addrs {
                enricher.enrich(addr);
            }
        }
    }
}

/// Runs one trace.
pub(crate) async fn run(spec: &TraceSpec, cx: &Context) -> MeasurementResult {
    let started_at = Utc::now();
    let start = Instant::now();
    let fail = |outcome: Outcome, error: String| {
        let mut r =
            MeasurementResult::failure(MeasurementKind::Trace, &spec.target, outcome, error);
        r.started_at = started_at;
        r.duration_ms = start.elapsed().as_secs_f64() * 1e3;
        r
    };
    let setup = match Setup::new(spec, cx).await {
        Ok(s) => s,
        Err(SetupError::Unreachable(e)) => return fail(Outcome::Unreachable, e),
        Err(SetupError::Engine(e)) => return fail(e.outcome(), e.to_string()),
    };
    let mut result = setup.trace(spec, cx).await;
    result.started_at = started_at;
    result.duration_ms = start.elapsed().as_secs_f64() * 1e3;
    result
}

enum SetupError {
    Unreachable(String),
    Engine(Error),
}

impl From<Error> for SetupError {
    fn from(e: Error) -> Self {
        SetupError::Engine(e)
    }
}

/// Sockets and packet parameters of one trace.
struct Setup {
    wire: Wire,
    flows: Vec<Flow>,
    /// Raw ICMP socket: every answer but TCP's; sends ICMP probes.
    icmp: Socket,
    /// Raw UDP or TCP socket that sends those probes (and receives TCP answers).
    l4: Option<Socket>,
    /// Sockets bound to the flows' source ports so nothing else on the host takes them.
    _reserved: Vec<socket2::Socket>,
}

impl Setup {
    async fn new(spec: &TraceSpec, cx: &Context) -> Result<Setup, SetupError> {
        let dst = crate::resolve(&spec.target, spec.family).await?;
        let family = Family::of(dst);
        let dport = spec.port.unwrap_or(spec.protocol.default_port());
        let src = match spec.source {
            Some(s) => s,
            None => route_source(dst, dport.max(1))
                .map_err(|e| SetupError::Unreachable(format!("there is no route to {dst}: {e}")))?,
        };
        if cx.privilege == Privilege::Unprivileged {
            return Err(Error::Permission(
                "cannot trace: traces need raw sockets (CAP_NET_RAW), and unprivileged mode was \
                 asked for"
                    .into(),
            )
            .into());
        }
        let need_raw = |e: Error| match e {
            Error::Permission(m) => Error::Permission(format!("cannot trace: {m}")),
            other => other,
        };
        let base = Options {
            source: Some(src),
            timestamps: true,
            recv_buffer: Some(RECV_BUFFER),
            ..Options::default()
        };
        let icmp_opts = Options {
            tos: spec.tos.filter(|_| spec.protocol == TraceProtocol::Icmp),
            ..base.clone()
        };
        let icmp = Socket::open(family, Protocol::Icmp, Mode::Raw, &icmp_opts).map_err(need_raw)?;
        // Only what can answer a probe reaches the socket: errors, and echo replies (with our
        // identifier, filtered in the kernel) only when the probes are echo requests.
        let mut accept: Vec<u8> = match family {
            Family::Ipv4 => vec![
                icmp::V4_DEST_UNREACH,
                icmp::V4_TIME_EXCEEDED,
                icmp::V4_PARAM_PROBLEM,
            ],
            Family::Ipv6 => vec![
                icmp::V6_DEST_UNREACH,
                icmp::V6_PACKET_TOO_BIG,
                icmp::V6_TIME_EXCEEDED,
                icmp::V6_PARAM_PROBLEM,
            ],
        };
        let ident: u16 = rand::random();
        if spec.protocol == TraceProtocol::Icmp {
            accept.push(match family {
                Family::Ipv4 => icmp::V4_ECHO_REPLY,
                Family::Ipv6 => icmp::V6_ECHO_REPLY,
            });
            icmp.set_echo_id_filter(ident)
                .map_err(|e| Error::socket("cannot filter the ICMP socket", e))?;
        }
        icmp.set_icmp_filter(&accept)
            .map_err(|e| Error::socket("cannot filter the ICMP socket", e))?;
        let l4_opts = Options {
            tos: spec.tos,
            ..base
        };
        let (l4, reserved, sports) = match spec.protocol {
            TraceProtocol::Icmp => (None, Vec::new(), vec![0; usize::from(spec.flows)]),
            TraceProtocol::Udp | TraceProtocol::Tcp => {
                let proto = if spec.protocol == TraceProtocol::Udp {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                let sock = Socket::open(family, proto, Mode::Raw, &l4_opts).map_err(need_raw)?;
                let (reserved, ports) =
                    reserve_ports(spec.protocol, src, spec.flows, spec.source_port)?;
                (Some(sock), reserved, ports)
            }
        };
        let checksum_base: u16 = rand::random_range(0x1000..0xdf00);
        let flows = sports
            .into_iter()
            .enumerate()
            .map(|(f, sport)| Flow {
                sport,
                icmp_checksum: checksum_base + f as u16,
            })
            .collect();
        let size = match spec.protocol {
            TraceProtocol::Tcp => 0,
            _ => usize::from(spec.size.unwrap_or(defaults::TRACE_SIZE)),
        };
        Ok(Setup {
            wire: Wire {
                protocol: spec.protocol,
                family,
                src,
                dst,
                dport,
                ident,
                cookie: rand::random(),
                size,
            },
            flows,
            icmp,
            l4,
            _reserved: reserved,
        })
    }

    /// The socket probes leave on.
    fn sender(&self) -> &Socket {
        self.l4.as_ref().unwrap_or(&self.icmp)
    }

    async fn trace(self, spec: &TraceSpec, cx: &Context) -> MeasurementResult {
        // The kernel turns receive stamps on for the whole system a moment after the first
        // socket asks (our sockets just did). Waiting for that costs a one-shot trace on a LAN
        // more than the trace itself (1–3 ms measured), so only check once, without waiting:
        // answers that arrive before the switch are timed in user space, and `quality` says so.
        // Long-running processes (agents, mtr rounds after the first) keep stamping on.
        let _ = sock::settle_rx_stamps().now_or_never();
        let window = match spec.protocol {
            // The destination's port unreachables are rate-limited like routers' errors:
            // send fewer probes past it.
            TraceProtocol::Udp => defaults::TRACE_MIN_TTL_WINDOW,
            TraceProtocol::Icmp | TraceProtocol::Tcp => WINDOW,
        };
        let sched = Schedule {
            first_ttl: spec.first_ttl,
            max_ttl: spec.max_ttl,
            probes: spec.probes,
            flows: spec.flows,
            rounds: spec.rounds,
            interval: Duration::from_secs_f64(spec.interval),
            timeout: Duration::from_secs_f64(spec.timeout),
            window,
            adaptive: spec.rounds == 1,
        };
        let mut run = Run {
            setup: &self,
            tracer: Tracer::new(sched, rand::random_range(1..0xfffe)),
            names: spec.rdns.then(rdns::Names::default),
            keys: HashMap::new(),
            rb: RecvBatch::new(RECV_BATCH, RECV_BUF_LEN),
            send_errors: Vec::new(),
        };
        let cancelled = run.run(cx).await;
        run.final_drain();
        let names = match run.names.take() {
            Some(n) => {
                n.finish(Instant::now() + Duration::from_secs_f64(defaults::TRACE_RDNS_TIMEOUT))
                    .await
            }
            None => HashMap::new(),
        };
        self.result(spec, &run, cancelled, &names)
    }

    fn result(
        &self,
        spec: &TraceSpec,
        run: &Run<'_>,
        cancelled: bool,
        names: &HashMap<IpAddr, String>,
    ) -> MeasurementResult {
        let t = &run.tracer;
        let launched_max = t
            .probes
            .iter()
            .filter(|p| !matches!(p.state, State::Beyond))
            .map(|p| p.ttl)
            .max();
        let last = t
            .dest_ttl
            .or(t.stop_ttl)
            .or(launched_max)
            .unwrap_or(spec.first_ttl.saturating_sub(1));
        let hops = summary::hops(&t.probes, spec.first_ttl, last, self.wire.dst, names);
        let reached = t.dest_ttl.is_some();
        let (outcome, error) = if reached {
            (Outcome::Ok, None)
        } else if cancelled {
            (
                Outcome::Cancelled,
                Some("the trace was cancelled before it finished".to_string()),
            )
        } else if let Some(stop) = t.stop_ttl {
            let hop = hops.iter().find(|h| h.ttl == stop);
            let (ip, why) = hop
                .and_then(|h| h.addrs.iter().find(|a| a.unreachable.is_some()))
                .map(|a| (a.ip.to_string(), a.unreachable.clone().unwrap_or_default()))
                .unwrap_or_default();
            (
                Outcome::Unreachable,
                Some(format!(
                    "{} was not reached: hop {stop} ({ip}) answered {why}",
                    self.wire.dst
                )),
            )
        } else {
            let answered = hops
                .iter()
                .rev()
                .find(|h| !h.addrs.is_empty())
                .map(|h| {
                    format!(
                        "the last hop that answered was {} ({})",
                        h.ttl, h.addrs[0].ip
                    )
                })
                .unwrap_or_else(|| "no hop answered".to_string());
            (
                Outcome::Timeout,
                Some(format!(
                    "{} did not answer within {} hops; {answered}",
                    self.wire.dst, spec.max_ttl
                )),
            )
        };
        let mut quality = Quality {
            privileged: true,
            socket: Some(SocketKind::Raw),
            ..Quality::default()
        };
        let answered: Vec<&engine::Probe> =
            t.probes.iter().filter(|p| p.reply().is_some()).collect();
        let tx_kernel = answered.iter().filter(|p| p.tx.is_some()).count();
        let rx_kernel = answered
            .iter()
            .filter(|p| p.reply().is_some_and(|r| r.rx_kernel))
            .count();
        quality.tx_timestamp = source(tx_kernel, answered.len());
        quality.rx_timestamp = source(rx_kernel, answered.len());
        let per_hop_per_second = f64::from(spec.probes) * f64::from(spec.flows)
            / spec.interval.max(spec.timeout.min(1.0));
        if spec.rounds > 1 && per_hop_per_second > 1.0 {
            quality.notes.push(format!(
                "{} probes per hop every {} s: routers commonly answer about one per second to \
                 the same source after a short burst (Linux: net.ipv4.icmp_ratelimit), so some \
                 loss at intermediate hops may be rate limiting, not packet loss",
                u32::from(spec.probes) * u32::from(spec.flows),
                spec.interval
            ));
        }
        if !run.send_errors.is_empty() {
            quality.notes.push(format!(
                "{} probes could not be sent (counted as lost): {}",
                run.send_errors.len(),
                run.send_errors[0]
            ));
        }
        MeasurementResult {
            id: uuid::Uuid::now_v7(),
            measurement_id: None,
            agent: None,
            kind: MeasurementKind::Trace,
            target: spec.target.clone(),
            started_at: Utc::now(),
            duration_ms: 0.0,
            outcome,
            error,
            detail: Some(Detail::Trace(TraceDetail {
                address: self.wire.dst,
                protocol: spec.protocol,
                reached,
                rounds: t.rounds_started(),
                flows: spec.flows,
                hops,
            })),
            quality,
        }
    }
}

fn source(kernel: usize, total: usize) -> TimestampSource {
    if total > 0 && kernel == total {
        TimestampSource::Kernel
    } else if kernel == 0 {
        TimestampSource::User
    } else {
        TimestampSource::Mixed
    }
}

/// The address the kernel would send from to reach `dst` (a connected UDP socket sends
/// nothing, it only looks the route up).
fn route_source(dst: IpAddr, port: u16) -> io::Result<IpAddr> {
    let any: IpAddr = match dst {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let s = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    s.connect(SocketAddr::new(dst, port))?;
    Ok(s.local_addr()?.ip())
}

/// Binds one socket per flow to its source port (`first + flow`, or one the kernel picks) so
/// that no other program on the host uses the port while the trace runs.
fn reserve_ports(
    protocol: TraceProtocol,
    src: IpAddr,
    flows: u16,
    first: Option<u16>,
) -> Result<(Vec<socket2::Socket>, Vec<u16>), Error> {
    use socket2::{Domain, Protocol as P, Type};
    let domain = if src.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let (ty, proto, name) = match protocol {
        TraceProtocol::Tcp => (Type::STREAM, P::TCP, "TCP"),
        _ => (Type::DGRAM, P::UDP, "UDP"),
    };
    let mut socks = Vec::new();
    let mut ports = Vec::new();
    for f in 0..flows {
        let port = first.map_or(0, |p| p.saturating_add(f));
        let s = socket2::Socket::new(domain, ty, Some(proto))
            .map_err(|e| Error::socket(format!("cannot open a {name} socket"), e))?;
        s.bind(&SocketAddr::new(src, port).into()).map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse {
                Error::Invalid(format!(
                    "{name} source port {port} is already in use on {src}; choose another"
                ))
            } else {
                Error::socket(
                    format!("cannot bind a {name} socket to {src} port {port}"),
                    e,
                )
            }
        })?;
        let bound = s
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(port, |a| a.port());
        ports.push(bound);
        socks.push(s);
    }
    Ok((socks, ports))
}

/// The event loop of one trace: sends what the schedule says, reads answers and TX stamps,
/// times probes out.
struct Run<'a> {
    setup: &'a Setup,
    tracer: Tracer,
    names: Option<rdns::Names>,
    /// TX-stamp key → probe index.
    keys: HashMap<u32, usize>,
    rb: RecvBatch,
    send_errors: Vec<String>,
}

impl Run<'_> {
    /// Runs until the schedule is done; true when cancelled first.
    async fn run(&mut self, cx: &Context) -> bool {
        let mut packet = Vec::with_capacity(self.setup.wire.probe_len());
        let mut batch = SendBatch::new();
        loop {
            let now = Instant::now();
            self.tracer.expire(now);
            let new = self.tracer.launch(now);
            if !new.is_empty() {
                self.send(&new, &mut batch, &mut packet).await;
                // Answers may already be queued (loopback, very near hops).
                self.drain();
                continue;
            }
            if self.tracer.finished() {
                return false;
            }
            let deadline = self
                .tracer
                .next_deadline()
                .unwrap_or(now + Duration::from_secs(1));
            let l4 = async {
                match &self.setup.l4 {
                    Some(s) => s.ready().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cx.cancel.cancelled() => return true,
                _ = self.setup.icmp.ready() => {}
                _ = l4 => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
            self.drain();
        }
    }

    async fn send(&mut self, new: &[usize], batch: &mut SendBatch, packet: &mut Vec<u8>) {
        let setup = self.setup;
        let dst = SocketAddr::new(setup.wire.dst, 0);
        batch.clear();
        for &i in new {
            let p = &self.tracer.probes[i];
            packet.clear();
            setup
                .wire
                .build(setup.flows[usize::from(p.flow)], p.id, packet);
            batch.push_with_ttl(dst, packet, i as u32, p.ttl);
        }
        let mut from = 0;
        let mut retried = false;
        while from < batch.len() {
            let stamp = Stamp::now();
            for &i in &new[from..] {
                self.tracer.probes[i].sent = stamp;
            }
            match setup.sender().send(batch, from).await {
                Ok(n) => {
                    for (j, &i) in new.iter().enumerate().skip(from).take(n) {
                        if let Some(k) = batch.key(j) {
                            self.keys.insert(k, i);
                        }
                    }
                    from += n;
                    retried = false;
                }
                // An ICMP error about an earlier probe is reported on the next send as a
                // pending socket error (port unreachable → ECONNREFUSED …): the packet itself
                // did not go, so try it once more.
                Err(_) if !retried => retried = true,
                Err(e) => {
                    self.send_errors
                        .push(format!("TTL {}: {e}", self.tracer.probes[new[from]].ttl));
                    self.tracer.unsent(new[from]);
                    from += 1;
                    retried = false;
                }
            }
        }
    }

    /// Reads everything queued on the sockets: answers, TX stamps, stray packets.
    fn drain(&mut self) {
        let setup = self.setup;
        // The ICMP socket: answers (and the TX stamps of ICMP probes).
        for _ in 0..64 {
            match setup.icmp.try_recv(&mut self.rb) {
                Ok(_) => self.on_packets(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A pending socket error (an ICMP error about an ICMP probe): cleared now.
                Err(_) => {}
            }
        }
        if let Some(l4) = &setup.l4 {
            for _ in 0..64 {
                match l4.try_recv(&mut self.rb) {
                    Ok(_) => self.on_packets(false),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {}
                }
            }
        }
        for _ in 0..64 {
            match setup.sender().try_recv_errors(&mut self.rb) {
                Ok(_) => self.on_tx_stamps(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {}
            }
        }
    }

    /// After the loop: TX stamps still queued belong to answered probes too.
    fn final_drain(&mut self) {
        let sender = self.setup.sender();
        for _ in 0..64 {
            match sender.recv_now(&mut self.rb, true) {
                Ok(n) if n > 0 => self.on_tx_stamps(),
                _ => break,
            }
        }
    }

    fn on_tx_stamps(&mut self) {
        for r in self.rb.iter() {
            if let Some((key, stamp)) = r.tx_stamp()
                && let Some(&i) = self.keys.get(&key)
            {
                self.tracer.probes[i].tx = Some(stamp);
            }
        }
    }

    /// Handles a batch read from the ICMP socket (`icmp`) or the UDP/TCP socket.
    fn on_packets(&mut self, icmp_socket: bool) {
        let wire = &self.setup.wire;
        let mut answers = Vec::new();
        for r in self.rb.iter() {
            let (from, data) = match wire.family {
                Family::Ipv4 => match icmp::strip_ipv4(r.data) {
                    Some((info, rest)) => (info.src, rest),
                    None => continue,
                },
                Family::Ipv6 => match r.from {
                    Some(a) => (a.ip(), r.data),
                    None => continue,
                },
            };
            let answer = if icmp_socket {
                wire.match_icmp(from, data)
            } else {
                wire.match_tcp(from, data)
            };
            if let Some(a) = answer {
                let (rx, rx_kernel) = match r.stamp {
                    Some(s) => (s, true),
                    None => (Stamp::now(), false),
                };
                answers.push((a, rx, rx_kernel));
            }
        }
        let mut seen = HashSet::new();
        let now = Instant::now();
        for (a, rx, rx_kernel) in answers {
            let Some(p) = self.tracer.pending_probe(a.id) else {
                continue;
            };
            // The quoted source port must be the probe's flow's: anything else is another
            // program's packet that happens to carry the same number.
            if a.sport
                .is_some_and(|s| s != self.setup.flows[usize::from(p.flow)].sport)
            {
                continue;
            }
            let from = a.from;
            let reply = Reply {
                from,
                kind: a.kind,
                rx,
                rx_kernel,
                mpls: a.mpls,
            };
            if self.tracer.answer(a.id, reply, wire.dst, now)
                && let Some(n) = &mut self.names
                && seen.insert(from)
            {
                n.start(from);
            }
        }
    }
}
