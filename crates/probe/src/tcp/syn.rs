//! TCP SYN probes: half-open connections crafted on one raw TCP socket.
//!
//! Each probe is a SYN from its rotated source port with a random initial sequence number. The
//! raw socket receives the answers (a kernel BPF filter passes only segments from the probed
//! port to our source ports), and its error queue (`IP_RECVERR`) holds both the kernel TX stamp
//! of every SYN and the ICMP errors about them, quoting our TCP header. Answers are matched by
//! source and destination ports and by the acknowledgement number (our sequence number + 1); ICMP
//! errors by the quoted ports and sequence number. RTT = kernel RX stamp − kernel TX stamp.
//!
//! After a SYN-ACK we send a reset (sequence number = its acknowledgement number), so the
//! target drops the half-open connection at once instead of retransmitting SYN-ACKs. The local
//! kernel resets it as well: the SYN-ACK belongs to no socket of this host, so the kernel answers
//! it with a RST of its own. Holding the source ports bound (a [`PortHold`]) does not change
//! that — only a connected socket or a firewall rule would, and a rule is a system-wide change a
//! probe should not make — but it keeps every other socket of this host off those ports, so no
//! real connection can collide with a probe. Two identical resets are harmless: the first ends
//! the target's half-open state, the second finds nothing. Nothing stays half-open on the target
//! either way.
//!
//! Probes of one source port share a four-tuple. If the next SYN of a port reaches the target
//! before the reset of the previous one (probes closer together than the round trip), the
//! target still holds the old half-open connection, answers the new SYN with a bare ACK of the
//! old one and nothing else: that probe is lost to the probing, not to the network. The run
//! counts such ACKs and says so in `quality.notes`; a range of source ports avoids it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use vantage_proto::{Family, ProbeStatus, SocketKind, TcpSpec, TimestampSource};

use super::segment::{self, ReplyKind};
use crate::l4::{self, Answer, PortHold, Run, Table};
use crate::sock::{self, Mode, Options, Protocol, Received, RecvBatch, SendBatch, Socket, Stamp};
use crate::{Context, Error, Privilege};

/// The sentence when SYN probes cannot get a raw socket.
const NEEDS_RAW: &str = "TCP SYN probes craft packets on a raw socket, which needs CAP_NET_RAW: \
     use connect mode (without --syn), or grant the capability (run as root, or \
     'setcap cap_net_raw+ep' on the binary)";
/// TX-stamp keys of resets start here, far above any probe number.
const RESET_KEYS: u32 = 1 << 31;
/// Receive buffer of the raw socket.
const RECV_BUFFER: usize = 1 << 20;

/// Runs every probe of a SYN measurement to `addr`.
pub(super) async fn run(spec: &TcpSpec, addr: IpAddr, cx: &Context) -> Result<Run, Error> {
    if cx.privilege == Privilege::Unprivileged {
        return Err(Error::Permission(format!(
            "{NEEDS_RAW}; raw sockets are turned off for this run (unprivileged mode)"
        )));
    }
    let family = Family::of(addr);
    let Some(src) = l4::route_source(addr, spec.source)? else {
        return Ok(no_route(spec, addr));
    };
    let opts = Options {
        ttl: spec.ttl,
        tos: spec.tos,
        source: Some(src),
        recv_buffer: Some(RECV_BUFFER),
        timestamps: true,
        recv_errors: true,
        ..Options::default()
    };
    let sock = match Socket::open(family, Protocol::Tcp, Mode::Raw, &opts) {
        Err(Error::Permission(_)) => return Err(Error::Permission(NEEDS_RAW.to_string())),
        r => r?,
    };
    let hold = PortHold::tcp(src, l4::ports_in_use(spec.source_ports, spec.count))?;
    let ports = hold.ports.clone();
    let _claim = l4::Claim::new(6, &ports, SocketAddr::new(addr, spec.port))?;
    let (lo, hi) = (
        ports.iter().copied().min().unwrap_or(0),
        ports.iter().copied().max().unwrap_or(0),
    );
    sock.attach_filter(&segment::answer_filter(
        family == Family::Ipv6,
        spec.port,
        lo,
        hi,
    ))
    .map_err(|e| Error::socket("cannot attach the answer filter to the raw TCP socket", e))?;
    sock::settle_rx_stamps().await;

    let isn: Vec<u32> = (0..spec.count).map(|_| rand::random()).collect();
    // (our port, expected acknowledgement number) → probe.
    let by_ack: HashMap<(u16, u32), u32> = (0..spec.count)
        .map(|seq| {
            let port = l4::port_for(&ports, seq);
            ((port, isn[seq as usize].wrapping_add(1)), seq)
        })
        .collect();
    let timeout = Duration::from_secs_f64(spec.timeout);
    let table = Mutex::new(Table::new(spec.count, &ports, timeout));
    let wake = Notify::new();
    let unmatched = Mutex::new(0u32);
    let stale = Mutex::new(0u32);
    let ctx = Ctx {
        sock: &sock,
        addr,
        src,
        dport: spec.port,
        table: &table,
        by_ack: &by_ack,
        wake: &wake,
        unmatched: &unmatched,
        stale: &stale,
    };

    let send = |seq: u32, late_ms: f64| {
        let (ctx, ports, isn) = (&ctx, &ports, &isn);
        async move {
            let mut pkt = Vec::with_capacity(40);
            let tsval = (Stamp::now().as_nanos() / 1_000_000) as u32;
            let port = l4::port_for(ports, seq);
            segment::syn(
                ctx.src,
                port,
                ctx.addr,
                ctx.dport,
                isn[seq as usize],
                tsval,
                &mut pkt,
            );
            ctx.send_probe(seq, &pkt, late_ms).await;
        }
    };
    l4::drive(
        &table,
        &wake,
        spec.count,
        Duration::from_secs_f64(spec.interval),
        cx,
        send,
        ctx.receive(),
    )
    .await;
    ctx.drain_tx_stamps();
    drop(hold);

    let mut notes = Vec::new();
    let unmatched = unmatched
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if unmatched > 0 {
        notes.push(format!(
            "{unmatched} answer(s) from the target matched no probe (unknown acknowledgement \
             number: late answers to an earlier run, or a middlebox rewriting sequence numbers)"
        ));
    }
    let stale = stale
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if stale > 0 {
        notes.push(format!(
            "the target answered {stale} SYN(s) with a bare ACK of an earlier probe from the \
             same source port: it still held that probe's half-open connection and ignored \
             the new SYN, which then counts as lost. Probes of one source port came closer \
             together than the round trip; spread them over more source ports \
             (source_ports) or use a longer interval"
        ));
    }
    let stamp = |on: bool| {
        if on {
            TimestampSource::Kernel
        } else {
            TimestampSource::User
        }
    };
    let (records, unsent) = table
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_records();
    Ok(Run {
        records,
        unsent,
        socket: SocketKind::Raw,
        privileged: true,
        stamps: (stamp(sock.tx_stamps()), stamp(sock.rx_stamps())),
        notes,
    })
}

/// Nothing sent: the host has no route to the target.
fn no_route(spec: &TcpSpec, addr: IpAddr) -> Run {
    Run {
        records: Vec::new(),
        unsent: vec![format!("this host has no route to {addr}"); spec.count as usize],
        socket: SocketKind::Raw,
        privileged: true,
        stamps: (TimestampSource::User, TimestampSource::User),
        notes: Vec::new(),
    }
}

/// What the sender and the receiver of one run share.
struct Ctx<'a> {
    sock: &'a Socket,
    addr: IpAddr,
    src: IpAddr,
    dport: u16,
    table: &'a Mutex<Table>,
    by_ack: &'a HashMap<(u16, u32), u32>,
    wake: &'a Notify,
    unmatched: &'a Mutex<u32>,
    stale: &'a Mutex<u32>,
}

impl Ctx<'_> {
    /// Sends one SYN and logs it (or why it could not leave).
    async fn send_probe(&self, seq: u32, pkt: &[u8], late_ms: f64) {
        let mut batch = SendBatch::new();
        batch.push(SocketAddr::new(self.addr, 0), pkt, seq);
        let mut retried = false;
        loop {
            // An ICMP error about an earlier SYN would fail this send without sending it.
            let _ = self.sock.take_error();
            let at = Stamp::now();
            match self.sock.send(&mut batch, 0).await {
                Ok(_) => {
                    l4::lock(self.table).sent(seq, at, late_ms, 0, batch.key(0));
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

    /// Drains answers, ICMP errors and TX stamps until the run ends, resetting every SYN-ACK.
    async fn receive(&self) {
        let mut rb = RecvBatch::new(32, 2048);
        let mut resets: Vec<(u16, u32)> = Vec::new();
        let mut reset_key = RESET_KEYS;
        loop {
            if self.sock.ready().await.is_err() {
                return;
            }
            self.drain_errors(&mut rb);
            for _ in 0..64 {
                match self.sock.try_recv(&mut rb) {
                    Ok(n) => {
                        for i in 0..n {
                            if let Some(reset) = self.on_segment(&rb.get(i)) {
                                resets.push(reset);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A pending ICMP error reported by the receive call; it is on the error
                    // queue as well, drained above or on the next round.
                    Err(_) => continue,
                }
            }
            if !resets.is_empty() {
                let mut batch = SendBatch::new();
                for (port, seq) in resets.drain(..) {
                    let mut pkt = Vec::with_capacity(20);
                    segment::reset(self.src, port, self.addr, self.dport, seq, &mut pkt);
                    batch.push(SocketAddr::new(self.addr, 0), &pkt, reset_key);
                    reset_key = reset_key.wrapping_add(1).max(RESET_KEYS);
                }
                let mut from = 0;
                while from < batch.len() {
                    // A reset that cannot leave is skipped: the kernel's own reset follows.
                    let _ = self.sock.take_error();
                    from += self.sock.send(&mut batch, from).await.unwrap_or(1);
                }
            }
        }
    }

    /// Handles one received segment; returns the reset to send when it is a SYN-ACK.
    fn on_segment(&self, r: &Received<'_>) -> Option<(u16, u32)> {
        let (from, tcp) = match self.addr {
            IpAddr::V4(_) => {
                let (info, rest) = sock::icmp::strip_ipv4(r.data)?;
                (info.src, rest)
            }
            IpAddr::V6(_) => (r.from?.ip(), r.data),
        };
        if from != self.addr {
            return None;
        }
        let reply = segment::parse_reply(tcp)?;
        if reply.sport != self.dport {
            return None;
        }
        let Some(&seq) = self.by_ack.get(&(reply.dport, reply.ack)) else {
            *l4::lock(self.unmatched) += 1;
            return None;
        };
        if reply.kind == ReplyKind::Ack {
            // The target answered a later SYN of this port with an acknowledgement of probe
            // `seq`: it still held that half-open connection and ignored the new SYN.
            *l4::lock(self.stale) += 1;
            return None;
        }
        let (at, kernel) = r.stamp.map_or_else(|| (Stamp::now(), false), |s| (s, true));
        let status = match reply.kind {
            ReplyKind::SynAck => ProbeStatus::Open,
            ReplyKind::Reset => ProbeStatus::Refused,
            ReplyKind::Ack => return None,
        };
        let answer = Answer {
            status,
            at,
            kernel,
            from: None,
            why: None,
        };
        if l4::lock(self.table).answer(seq, answer) {
            self.wake.notify_one();
        }
        // Every SYN-ACK gets a reset, retransmitted ones too.
        (reply.kind == ReplyKind::SynAck).then_some((reply.dport, reply.ack))
    }

    /// Reads the error queue: TX stamps and ICMP errors quoting our SYNs.
    fn drain_errors(&self, rb: &mut RecvBatch) {
        for _ in 0..64 {
            let n = match self.sock.try_recv_errors(rb) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            for i in 0..n {
                self.on_error_entry(&rb.get(i));
            }
        }
    }

    /// A last read of TX stamps that arrived after the final answer.
    fn drain_tx_stamps(&self) {
        let mut rb = RecvBatch::new(32, 256);
        for _ in 0..64 {
            let Ok(n) = self.sock.recv_now(&mut rb, true) else {
                return;
            };
            for i in 0..n {
                self.on_error_entry(&rb.get(i));
            }
        }
    }

    fn on_error_entry(&self, r: &Received<'_>) {
        if let Some((key, at)) = r.tx_stamp() {
            l4::lock(self.table).tx_stamp(0, key, at);
            return;
        }
        let Some(e) = r.error.filter(|e| e.is_icmp()) else {
            return;
        };
        // The entry carries our TCP header as the router quoted it: ports, then the sequence
        // number (every router quotes at least these eight bytes).
        let q = r.data;
        if q.len() < 8 || r.from.is_some_and(|f| f.ip() != self.addr) {
            return;
        }
        let sport = u16::from_be_bytes([q[0], q[1]]);
        let dport = u16::from_be_bytes([q[2], q[3]]);
        let isn = u32::from_be_bytes([q[4], q[5], q[6], q[7]]);
        if dport != self.dport {
            return;
        }
        let Some(&seq) = self.by_ack.get(&(sport, isn.wrapping_add(1))) else {
            return;
        };
        let family = Family::of(self.addr);
        let (from, why) = l4::icmp_why(self.addr, e.offender, e.icmp_type, e.icmp_code, e.info);
        let status = if from.is_none() && l4::is_port_unreachable(family, e.icmp_type, e.icmp_code)
        {
            ProbeStatus::Refused
        } else {
            ProbeStatus::Unreachable
        };
        let (at, kernel) = r.stamp.map_or_else(|| (Stamp::now(), false), |s| (s, true));
        let answer = Answer {
            status,
            at,
            kernel,
            from,
            why: Some(why),
        };
        if l4::lock(self.table).answer(seq, answer) {
            self.wake.notify_one();
        }
    }
}
