//! The receiving side of a shard: a table indexed by probe number, so matching a reply is an
//! array lookup with no lock and no map. It drains the error queue (TX stamps, and ICMP errors
//! on datagram sockets) and the receive queue in `recvmmsg` batches, and records raw facts only
//! (stamps, TTLs, errors); round-trip times are computed at the end from both sides' logs.

use std::io::ErrorKind;
use std::net::IpAddr;

use vantage_proto::Family;

use super::plan::Plan;
use crate::sock::{MAX_BATCH, Mode, Received, RecvBatch, Socket, Stamp, icmp};

/// One echo reply matched to its probe.
#[derive(Debug, Clone, Copy)]
pub struct ReplyRec {
    /// Probe number.
    pub n: u32,
    /// Arrival time.
    pub rx: Stamp,
    /// Whether `rx` is a kernel stamp.
    pub rx_kernel: bool,
    /// TTL / hop limit of the reply.
    pub ttl: Option<u8>,
    /// ICMP payload bytes of the reply.
    pub size: u16,
}

/// One ICMP error matched to the probe it quotes.
#[derive(Debug, Clone, Copy)]
pub struct ErrorRec {
    /// Probe number.
    pub n: u32,
    /// Who sent the error.
    pub from: Option<IpAddr>,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// MTU for "too big" errors.
    pub info: u32,
}

/// What the receiver saw.
#[derive(Debug)]
pub struct RecvLog {
    /// Replies in arrival order, duplicates included.
    pub replies: Vec<ReplyRec>,
    /// ICMP errors in arrival order.
    pub errors: Vec<ErrorRec>,
    /// Kernel TX stamps by key (0: none).
    pub tx_by_key: Vec<i64>,
    /// Packets that were not ours or did not parse.
    pub foreign: u64,
    /// When the receiver stopped.
    pub end: Stamp,
}

/// Receiving state of one shard.
#[derive(Debug)]
pub struct Receiver {
    family: Family,
    mode: Mode,
    ident: u16,
    log: RecvLog,
    resolved: Vec<bool>,
    resolved_count: usize,
    batch: RecvBatch,
}

impl Receiver {
    /// A receiver for `plan` on a socket of `mode` whose echo identifier is `ident`.
    pub fn new(plan: &Plan, mode: Mode, ident: u16) -> Receiver {
        let total = plan.len();
        let max_size = plan.targets.iter().map(|t| t.size).max().unwrap_or(0);
        let buf_len = usize::from(max_size) + 128;
        let capacity = if buf_len > 8192 { 8 } else { MAX_BATCH };
        Receiver {
            family: plan.key.family,
            mode,
            ident,
            log: RecvLog {
                replies: Vec::with_capacity(total),
                errors: Vec::new(),
                tx_by_key: vec![0; total],
                foreign: 0,
                end: Stamp::from_nanos(0),
            },
            resolved: vec![false; total],
            resolved_count: 0,
            batch: RecvBatch::new(capacity, buf_len),
        }
    }

    /// Probes answered so far, by a reply or an ICMP error.
    pub fn resolved(&self) -> usize {
        self.resolved_count
    }

    /// The log, once receiving is over.
    pub fn finish(mut self) -> RecvLog {
        self.log.end = Stamp::now();
        self.log
    }

    /// Drains both queues as far as the reactor says they are readable. A batch that comes back
    /// short means the queue is empty for now; the reactor is re-armed by the next call.
    pub fn drain(&mut self, sock: &Socket, plan: &Plan) {
        let mut batch = std::mem::replace(&mut self.batch, RecvBatch::new(1, 1));
        let cap = batch.capacity();
        while let Ok(n) = sock.try_recv_errors(&mut batch) {
            self.on_errqueue(plan, &batch);
            if n < cap {
                break;
            }
        }
        let mut socket_errors = 0;
        loop {
            match sock.try_recv(&mut batch) {
                Ok(n) => {
                    self.on_packets(plan, &batch);
                    if n < cap {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // A pending socket error (an ICMP error reported as EHOSTUNREACH on a raw
                // socket) is returned once by a receive call; the packets are still there.
                Err(_) if socket_errors < 16 => socket_errors += 1,
                Err(_) => break,
            }
        }
        self.batch = batch;
    }

    /// Drains both queues directly, whatever the reactor believes: the last look before the
    /// results are built.
    pub fn drain_now(&mut self, sock: &Socket, plan: &Plan) {
        let mut batch = std::mem::replace(&mut self.batch, RecvBatch::new(1, 1));
        for _ in 0..100_000 {
            match sock.recv_now(&mut batch, true) {
                Ok(n) if n > 0 => self.on_errqueue(plan, &batch),
                _ => break,
            }
        }
        for _ in 0..100_000 {
            match sock.recv_now(&mut batch, false) {
                Ok(n) if n > 0 => self.on_packets(plan, &batch),
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => continue,
            }
        }
        self.batch = batch;
    }

    fn on_errqueue(&mut self, plan: &Plan, batch: &RecvBatch) {
        for r in batch.iter() {
            if let Some((key, stamp)) = r.tx_stamp() {
                if let Some(slot) = self.log.tx_by_key.get_mut(key as usize) {
                    *slot = stamp.as_nanos();
                }
                continue;
            }
            match r.error {
                Some(e) if e.is_icmp() => self.on_dgram_error(plan, &r, e),
                _ => self.log.foreign += 1,
            }
        }
    }

    /// An ICMP error from a datagram socket's error queue: the data is our request.
    fn on_dgram_error(&mut self, plan: &Plan, r: &Received<'_>, e: crate::sock::ExtendedError) {
        let data = r.data;
        if data.len() < 8 {
            self.log.foreign += 1;
            return;
        }
        let seq = u16::from_be_bytes([data[6], data[7]]);
        let n = plan.probe_of(seq, &data[8..]).or_else(|| {
            let dst = r.from?.ip();
            plan.probe_of_quoted(dst, seq)
        });
        match n {
            Some(n) => self.error(n, e.offender, e.icmp_type, e.icmp_code, e.info),
            None => self.log.foreign += 1,
        }
    }

    fn on_packets(&mut self, plan: &Plan, batch: &RecvBatch) {
        let family = plan.key.family;
        for r in batch.iter() {
            let (body, ttl, src) = match (family, self.mode) {
                (Family::Ipv4, Mode::Raw) => match icmp::strip_ipv4(r.data) {
                    Some((ip, rest)) => (rest, Some(ip.ttl), Some(ip.src)),
                    None => {
                        self.log.foreign += 1;
                        continue;
                    }
                },
                _ => (r.data, r.ttl, r.from.map(|a| a.ip())),
            };
            match icmp::parse(family, body) {
                Some(icmp::Message::EchoReply { id, seq, payload }) => {
                    let ours = self.mode == Mode::Dgram || id == self.ident;
                    let n = plan.probe_of(seq, payload).filter(|_| ours);
                    let from_target = |n: usize| {
                        let t = plan.probes[n].0 as usize;
                        src == Some(plan.targets[t].addr)
                    };
                    match n {
                        Some(n) if from_target(n) => {
                            let (rx, rx_kernel) = match r.stamp {
                                Some(s) => (s, true),
                                None => (Stamp::now(), false),
                            };
                            self.log.replies.push(ReplyRec {
                                n: n as u32,
                                rx,
                                rx_kernel,
                                ttl,
                                size: payload.len().min(usize::from(u16::MAX)) as u16,
                            });
                            self.resolve(n);
                        }
                        _ => self.log.foreign += 1,
                    }
                }
                Some(icmp::Message::Error {
                    icmp_type,
                    code,
                    info,
                    quoted: Some(q),
                }) => {
                    let n = q.echo().and_then(|(id, seq, payload)| {
                        if id != self.ident {
                            return None;
                        }
                        if payload.len() >= super::plan::TAG_LEN {
                            plan.probe_of(seq, payload)
                        } else {
                            plan.probe_of_quoted(q.dst, seq)
                        }
                    });
                    match n {
                        Some(n) => self.error(n, src, icmp_type, code, info),
                        None => self.log.foreign += 1,
                    }
                }
                _ => self.log.foreign += 1,
            }
        }
    }

    fn error(&mut self, n: usize, from: Option<IpAddr>, icmp_type: u8, code: u8, info: u32) {
        if !icmp::is_delivery_failure(self.family, icmp_type) {
            // A redirect or source quench: the request went on, its reply may still come.
            return;
        }
        self.log.errors.push(ErrorRec {
            n: n as u32,
            from,
            icmp_type,
            code,
            info,
        });
        self.resolve(n);
    }

    fn resolve(&mut self, n: usize) {
        if !self.resolved[n] {
            self.resolved[n] = true;
            self.resolved_count += 1;
        }
    }
}
