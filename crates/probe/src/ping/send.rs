//! The sending side of a shard: walks the plan in probe order and sends whatever is due in
//! `sendmmsg` batches, recording send times, TX-stamp keys and local send errors.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::plan::Plan;
use crate::sock::{MAX_BATCH, SendBatch, Socket, Stamp};

/// A probe due less than this far ahead is sent now rather than after a sleep: tokio timers
/// have millisecond resolution, so shorter sleeps only add lateness.
const SEND_AHEAD: Duration = Duration::from_micros(500);
/// `tx_key` value of a probe whose TX-stamp key is unknown.
pub const NO_KEY: u32 = u32::MAX;

/// What the sender did.
#[derive(Debug)]
pub struct SendLog {
    /// Start of the schedule (user-space clock).
    pub start: Stamp,
    /// Probes attempted, in order: every probe below this number was handed to the kernel or
    /// failed locally; the rest were never sent (cancelled).
    pub attempted: usize,
    /// Per probe: user-space time just before its send call.
    pub tx_user: Vec<Stamp>,
    /// Per probe: the key its kernel TX stamp is reported under, or [`NO_KEY`].
    pub tx_key: Vec<u32>,
    /// Probes the kernel refused to send, with the errno.
    pub failed: Vec<(u32, i32)>,
}

/// Sending state of one shard.
#[derive(Debug)]
pub struct Sender {
    log: SendLog,
    start: Instant,
    rate: u32,
    ident: u16,
    batch: SendBatch,
    pkt: Vec<u8>,
    /// When the last probe was handed to the kernel.
    pub last: Instant,
}

impl Sender {
    /// A sender for `plan` whose schedule starts now; `ident` is the echo identifier to write.
    pub fn new(plan: &Plan, rate: u32, ident: u16) -> Sender {
        let total = plan.len();
        Sender {
            log: SendLog {
                start: Stamp::now(),
                attempted: 0,
                tx_user: vec![Stamp::from_nanos(0); total],
                tx_key: vec![NO_KEY; total],
                failed: Vec::new(),
            },
            start: Instant::now(),
            rate,
            ident,
            batch: SendBatch::new(),
            pkt: Vec::with_capacity(64),
            last: Instant::now(),
        }
    }

    /// Whether every probe was attempted.
    pub fn done(&self, plan: &Plan) -> bool {
        self.log.attempted >= plan.len()
    }

    /// Probes attempted so far.
    pub fn attempted(&self) -> usize {
        self.log.attempted
    }

    /// Probes that failed locally (never answerable).
    pub fn failed(&self) -> usize {
        self.log.failed.len()
    }

    /// When the next probe is due; `None` when all were sent.
    pub fn next_due(&self, plan: &Plan) -> Option<Instant> {
        (!self.done(plan)).then(|| self.start + plan.due(self.log.attempted, self.rate))
    }

    /// Sends up to one batch of the probes that are due now; returns how many were attempted.
    pub async fn send_due(&mut self, sock: &Socket, plan: &Plan) -> usize {
        let first = self.log.attempted;
        let horizon = Instant::now() + SEND_AHEAD;
        let mut n = first;
        while n < plan.len()
            && n - first < MAX_BATCH
            && self.start + plan.due(n, self.rate) <= horizon
        {
            self.pkt.clear();
            plan.packet(n, self.ident, &mut self.pkt);
            let (t, _) = plan.probes[n];
            let dst = SocketAddr::new(plan.targets[t as usize].addr, 0);
            self.batch.push(dst, &self.pkt, n as u32);
            n += 1;
        }
        if n == first {
            return 0;
        }
        let mut from = 0;
        while from < self.batch.len() {
            let t = Stamp::now();
            match sock.send(&mut self.batch, from).await {
                Ok(m) => {
                    for j in from..from + m {
                        self.log.tx_user[first + j] = t;
                        self.log.tx_key[first + j] = self.batch.key(j).unwrap_or(NO_KEY);
                    }
                    from += m;
                }
                Err(e) => {
                    self.log.tx_user[first + from] = t;
                    self.log
                        .failed
                        .push(((first + from) as u32, e.raw_os_error().unwrap_or(0)));
                    from += 1;
                }
            }
        }
        self.batch.clear();
        self.log.attempted = n;
        self.last = Instant::now();
        n - first
    }

    /// The log, once sending is over.
    pub fn finish(self) -> SendLog {
        self.log
    }
}
