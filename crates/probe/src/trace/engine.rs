//! The trace's schedule as a state machine without I/O: which probes to send now, what an
//! answer or a timeout changes, and when the trace is over. The caller owns the sockets and the
//! clock and feeds events in, so every rule here is tested with made-up answers.
//!
//! The rules:
//! - A round sends, for each TTL from the first to the horizon, `probes` probes on every flow
//!   at once. TTLs are launched in order while fewer than `window` of them are waiting for their
//!   first answer: all of a short path goes out at once, and every hop that answers (or times
//!   out) lets one more TTL go. Nothing waits hop by hop, yet at most `window` TTLs are ever
//!   sent past the destination before it is found.
//! - The horizon is the max TTL until the destination answers (its lowest TTL then becomes
//!   the horizon) or a router answers "unreachable" (the path ends there). Probes beyond the
//!   horizon still waiting are dropped at once: nobody waits for them, they are not counted.
//! - Rounds start `interval` apart, each once the previous one has sent all its TTLs; rounds
//!   after the first never go past the horizon learnt so far.
//! - An answer after the probe's timeout counts as lost (mtr does the same).
//! - A single-round trace also gives up on a probe early when the answers around it show it
//!   lost, as traceroute does (`-w MAX,HERE,NEAR`): after 3× the round-trip time of another
//!   answer at its TTL, or 10× that of an answer from a later TTL, but never before
//!   [`GIVE_UP_FLOOR`]. A rate-limited or filtered hop then costs tens of milliseconds, not the
//!   full timeout. Rounds of mtr statistics always wait the full timeout, so that their loss
//!   counts only what really never came.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;
use vantage_proto::MplsLabel;

use super::packet::Kind;
use crate::sock::Stamp;

/// Most probes waiting for answers at once: keeps probe numbers (16 bits) unambiguous.
pub(crate) const MAX_IN_FLIGHT: usize = 4096;
/// Highest probe number (0 and 0xffff are not valid UDP checksums).
const MAX_ID: u16 = 0xfffe;
/// Earliest a single-round trace gives up on a probe, whatever the answers around it say:
/// covers the scheduling jitter of busy routers and hosts.
pub(crate) const GIVE_UP_FLOOR: Duration = Duration::from_millis(50);
/// traceroute's HERE and NEAR factors.
const HERE: u32 = 3;
const NEAR: u32 = 10;

/// What a trace sends and how long it waits.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub first_ttl: u8,
    pub max_ttl: u8,
    pub probes: u8,
    pub flows: u16,
    pub rounds: u32,
    pub interval: Duration,
    pub timeout: Duration,
    /// TTLs of a round that may wait for their first answer at once.
    pub window: u8,
    /// Give up early on probes the answers around them show lost (single-round traces).
    pub adaptive: bool,
}

/// One probe and what became of it.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub ttl: u8,
    pub flow: u16,
    pub round: u32,
    pub id: u16,
    /// User-space clock just before the send call.
    pub sent: Stamp,
    /// Kernel stamp of its departure, when the kernel gave one.
    pub tx: Option<Stamp>,
    /// Monotonic launch time, for timeouts.
    pub launched: Instant,
    pub state: State,
}

/// Where a probe stands.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// Sent, no answer yet, not timed out.
    Pending,
    /// Answered in time.
    Answered(Box<Reply>),
    /// No answer within the timeout (or it could not be sent).
    Lost,
    /// Sent past the horizon (beyond the destination): not counted anywhere.
    Beyond,
}

/// An answer as the trace keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub from: IpAddr,
    pub kind: Kind,
    /// Arrival: kernel stamp when `rx_kernel`, user-space otherwise.
    pub rx: Stamp,
    pub rx_kernel: bool,
    pub mpls: Vec<MplsLabel>,
}

impl Probe {
    /// Round-trip time in milliseconds, from the best send stamp available.
    pub fn rtt_ms(&self) -> Option<f64> {
        match &self.state {
            State::Answered(r) => Some(r.rx.ms_since(self.tx.unwrap_or(self.sent)).max(0.0)),
            _ => None,
        }
    }

    pub fn reply(&self) -> Option<&Reply> {
        match &self.state {
            State::Answered(r) => Some(r),
            _ => None,
        }
    }
}

/// One TTL of one round.
#[derive(Debug, Clone, Copy)]
struct Unit {
    pending: u32,
    resolved: bool,
}

#[derive(Debug, Clone)]
struct Round {
    start: Instant,
    /// Next TTL to launch (u16: may pass 255).
    next_ttl: u16,
    /// TTLs launched and still waiting for their first answer.
    waiting: u8,
    /// Round-trip time of the first answer at each TTL (index: TTL).
    first_rtt: Vec<Option<Duration>>,
    /// For each TTL, the shortest of `first_rtt` over the TTLs above it.
    later_rtt: Vec<Option<Duration>>,
}

/// The state machine.
#[derive(Debug)]
pub(crate) struct Tracer {
    sched: Schedule,
    /// Every probe sent, in send order.
    pub probes: Vec<Probe>,
    pending: HashMap<u16, usize>,
    deadlines: VecDeque<(Instant, usize)>,
    units: HashMap<(u32, u8), Unit>,
    rounds: Vec<Round>,
    last_id: u16,
    /// Lowest TTL at which the destination answered.
    pub dest_ttl: Option<u8>,
    /// Lowest TTL at which a router answered "unreachable".
    pub stop_ttl: Option<u8>,
}

impl Tracer {
    pub fn new(sched: Schedule, first_id: u16) -> Tracer {
        Tracer {
            sched,
            probes: Vec::new(),
            pending: HashMap::new(),
            deadlines: VecDeque::new(),
            units: HashMap::new(),
            rounds: Vec::new(),
            last_id: first_id.clamp(1, MAX_ID) - 1,
            dest_ttl: None,
            stop_ttl: None,
        }
    }

    /// The highest TTL still worth probing.
    pub fn horizon(&self) -> u8 {
        let mut h = self.sched.max_ttl;
        for t in [self.dest_ttl, self.stop_ttl].into_iter().flatten() {
            h = h.min(t);
        }
        h
    }

    /// Rounds started so far.
    pub fn rounds_started(&self) -> u32 {
        self.rounds.len() as u32
    }

    /// Creates the probes due at `now` (state `Pending`, stamps to be filled in by the sender)
    /// and returns their indices in send order.
    pub fn launch(&mut self, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        let per_ttl = usize::from(self.sched.probes) * usize::from(self.sched.flows);
        loop {
            if self.round_due(now) {
                self.rounds.push(Round {
                    start: now,
                    next_ttl: u16::from(self.sched.first_ttl),
                    waiting: 0,
                    first_rtt: vec![None; 256],
                    later_rtt: vec![None; 256],
                });
            }
            let horizon = u16::from(self.horizon());
            let Some(r) = self.rounds.last() else { break };
            if r.next_ttl > horizon || r.waiting >= self.sched.window {
                break;
            }
            if !self.pending.is_empty() && self.pending.len() + per_ttl > MAX_IN_FLIGHT {
                break;
            }
            let round = (self.rounds.len() - 1) as u32;
            let ttl = r.next_ttl as u8;
            for _ in 0..self.sched.probes {
                for flow in 0..self.sched.flows {
                    let id = self.next_id();
                    let idx = self.probes.len();
                    self.probes.push(Probe {
                        ttl,
                        flow,
                        round,
                        id,
                        sent: Stamp::now(),
                        tx: None,
                        launched: now,
                        state: State::Pending,
                    });
                    self.pending.insert(id, idx);
                    self.deadlines.push_back((now + self.sched.timeout, idx));
                    out.push(idx);
                }
            }
            self.units.insert(
                (round, ttl),
                Unit {
                    pending: per_ttl as u32,
                    resolved: false,
                },
            );
            let r = self.rounds.last_mut().expect("a round exists");
            r.next_ttl += 1;
            r.waiting += 1;
        }
        out
    }

    fn round_due(&self, now: Instant) -> bool {
        if self.rounds.len() as u32 >= self.sched.rounds {
            return false;
        }
        match self.rounds.last() {
            None => true,
            Some(r) => {
                r.next_ttl > u16::from(self.horizon()) && now >= r.start + self.sched.interval
            }
        }
    }

    fn next_id(&mut self) -> u16 {
        // At most MAX_IN_FLIGHT of the 65534 numbers are taken, so this ends quickly.
        loop {
            self.last_id = if self.last_id >= MAX_ID {
                1
            } else {
                self.last_id + 1
            };
            if !self.pending.contains_key(&self.last_id) {
                return self.last_id;
            }
        }
    }

    /// The waiting probe with number `id`, if any.
    pub fn pending_probe(&self, id: u16) -> Option<&Probe> {
        self.pending.get(&id).map(|&i| &self.probes[i])
    }

    /// Records an answer, arrived at `now`, to the waiting probe `id`; false when no probe
    /// waits for it (late, duplicate, or someone else's).
    pub fn answer(&mut self, id: u16, reply: Reply, dst: IpAddr, now: Instant) -> bool {
        let Some(idx) = self.pending.remove(&id) else {
            return false;
        };
        let destination = reply.kind.is_destination_answer(reply.from, dst);
        let unreachable = matches!(reply.kind, Kind::Unreachable { .. }) && !destination;
        let (round, ttl) = (self.probes[idx].round, self.probes[idx].ttl);
        let rtt = now.saturating_duration_since(self.probes[idx].launched);
        self.probes[idx].state = State::Answered(Box::new(reply));
        if let Some(r) = self.rounds.get_mut(round as usize)
            && r.first_rtt[usize::from(ttl)].is_none()
        {
            r.first_rtt[usize::from(ttl)] = Some(rtt);
            let mut best: Option<Duration> = None;
            for t in (0..256).rev() {
                r.later_rtt[t] = best;
                if let Some(x) = r.first_rtt[t] {
                    best = Some(best.map_or(x, |b| b.min(x)));
                }
            }
        }
        self.settle(round, ttl, true);
        if destination {
            self.dest_ttl = Some(self.dest_ttl.map_or(ttl, |d| d.min(ttl)));
            self.cut();
        } else if unreachable {
            self.stop_ttl = Some(self.stop_ttl.map_or(ttl, |d| d.min(ttl)));
            self.cut();
        }
        true
    }

    /// A probe that could not be sent: lost at once.
    pub fn unsent(&mut self, idx: usize) {
        let p = &self.probes[idx];
        if matches!(p.state, State::Pending) && self.pending.remove(&p.id).is_some() {
            let (round, ttl) = (p.round, p.ttl);
            self.probes[idx].state = State::Lost;
            self.settle(round, ttl, false);
        }
    }

    /// One probe of (round, ttl) stopped waiting; `answered` says whether it was an answer.
    fn settle(&mut self, round: u32, ttl: u8, answered: bool) {
        let Some(u) = self.units.get_mut(&(round, ttl)) else {
            return;
        };
        u.pending = u.pending.saturating_sub(1);
        if !u.resolved && (answered || u.pending == 0) {
            u.resolved = true;
            if let Some(r) = self.rounds.get_mut(round as usize) {
                r.waiting = r.waiting.saturating_sub(1);
            }
        }
    }

    /// Drops every waiting probe beyond the horizon.
    fn cut(&mut self) {
        let h = self.horizon();
        let beyond: Vec<u16> = self
            .pending
            .iter()
            .filter(|&(_, &i)| self.probes[i].ttl > h)
            .map(|(&id, _)| id)
            .collect();
        for id in beyond {
            if let Some(i) = self.pending.remove(&id) {
                let (round, ttl) = (self.probes[i].round, self.probes[i].ttl);
                self.probes[i].state = State::Beyond;
                self.settle(round, ttl, false);
            }
        }
    }

    /// Marks every probe whose timeout has passed at `now` as lost.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, idx)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            self.lose(idx);
        }
        if self.sched.adaptive {
            let given_up: Vec<usize> = self
                .pending
                .values()
                .copied()
                .filter(|&i| self.give_up_at(i).is_some_and(|d| d <= now))
                .collect();
            for i in given_up {
                self.lose(i);
            }
        }
    }

    fn lose(&mut self, idx: usize) {
        let p = &self.probes[idx];
        if matches!(p.state, State::Pending) && self.pending.remove(&p.id).is_some() {
            let (round, ttl) = (p.round, p.ttl);
            self.probes[idx].state = State::Lost;
            self.settle(round, ttl, false);
        }
    }

    /// When a single-round trace stops waiting for probe `idx` because other answers show it
    /// lost; `None` while nothing says so.
    fn give_up_at(&self, idx: usize) -> Option<Instant> {
        let p = &self.probes[idx];
        let r = self.rounds.get(p.round as usize)?;
        let t = usize::from(p.ttl);
        let here = r.first_rtt[t].map(|x| x * HERE);
        let near = r.later_rtt[t].map(|x| x * NEAR);
        let wait = match (here, near) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(p.launched + wait.max(GIVE_UP_FLOOR).min(self.sched.timeout))
    }

    /// When something will change without an answer: the next timeout or the next round.
    pub fn next_deadline(&self) -> Option<Instant> {
        let fixed = self
            .deadlines
            .iter()
            .find(|&&(_, i)| matches!(self.probes[i].state, State::Pending))
            .map(|&(d, _)| d);
        let adaptive = if self.sched.adaptive {
            self.pending
                .values()
                .filter_map(|&i| self.give_up_at(i))
                .min()
        } else {
            None
        };
        let timeout = match (fixed, adaptive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let round = match self.rounds.last() {
            Some(r)
                if (self.rounds.len() as u32) < self.sched.rounds
                    && r.next_ttl > u16::from(self.horizon()) =>
            {
                Some(r.start + self.sched.interval)
            }
            _ => None,
        };
        match (timeout, round) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether every round has sent everything and nothing waits any more.
    pub fn finished(&self) -> bool {
        self.rounds.len() as u32 >= self.sched.rounds
            && self
                .rounds
                .last()
                .is_some_and(|r| r.next_ttl > u16::from(self.horizon()))
            && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(max_ttl: u8, probes: u8, flows: u16, rounds: u32, window: u8) -> Schedule {
        Schedule {
            first_ttl: 1,
            max_ttl,
            probes,
            flows,
            rounds,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            window,
            adaptive: false,
        }
    }

    const DST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9));

    fn router(ttl: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(10, 1, ttl, 2))
    }

    fn reply(from: IpAddr, kind: Kind) -> Reply {
        Reply {
            from,
            kind,
            rx: Stamp::now(),
            rx_kernel: false,
            mpls: Vec::new(),
        }
    }

    /// Answers every waiting probe the way a chain of routers ending at `dest` at TTL `d`
    /// would, in TTL order, launching whatever each answer allows; returns the TTLs sent.
    fn answer_chain(t: &mut Tracer, now: Instant, d: u8) -> Vec<u8> {
        let mut sent: Vec<u8> = Vec::new();
        loop {
            let new = t.launch(now);
            sent.extend(new.iter().map(|&i| t.probes[i].ttl));
            let mut waiting: Vec<(u8, u16)> = t
                .pending
                .iter()
                .map(|(&id, &i)| (t.probes[i].ttl, id))
                .collect();
            waiting.sort();
            let Some(&(ttl, id)) = waiting.first() else {
                break;
            };
            let r = if ttl >= d {
                reply(DST, Kind::EchoReply)
            } else {
                reply(router(ttl), Kind::TimeExceeded)
            };
            assert!(t.answer(id, r, DST, now));
        }
        sent
    }

    #[test]
    fn a_short_path_goes_out_at_once_and_ends_without_waiting() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(30, 3, 1, 1, 8), 1);
        let first = t.launch(now);
        // Eight TTLs, three probes each, all at once.
        assert_eq!(first.len(), 24);
        let sent = answer_chain(&mut t, now, 5);
        assert_eq!(t.dest_ttl, Some(5));
        assert!(t.finished(), "no timeout is needed on a clean path");
        // While hops 1–4 answered, the window slid on to TTL 4 + 8 and no further; what went
        // past the destination is not counted.
        assert_eq!(sent.iter().max(), Some(&12));
        assert!(
            t.probes
                .iter()
                .filter(|p| p.ttl > 5)
                .all(|p| matches!(p.state, State::Beyond))
        );
    }

    #[test]
    fn answers_let_the_window_slide_to_a_far_destination() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(30, 1, 1, 1, 4), 1);
        assert_eq!(t.launch(now).len(), 4);
        let sent = answer_chain(&mut t, now, 12);
        assert_eq!(t.dest_ttl, Some(12));
        assert!(t.finished());
        // The window never let more than 4 TTLs past the last answered one: at most TTL 15.
        assert_eq!(sent.iter().max(), Some(&15));
    }

    #[test]
    fn silent_hops_hold_their_place_until_the_timeout() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(10, 1, 1, 1, 2), 1);
        let ids: Vec<u16> = t.launch(now).iter().map(|&i| t.probes[i].id).collect();
        assert_eq!(ids.len(), 2);
        // TTL 1 answers, TTL 2 is silent: only TTL 3 may go.
        assert!(t.answer(ids[0], reply(router(1), Kind::TimeExceeded), DST, now));
        let ms = Duration::from_millis(1);
        assert_eq!(t.launch(now + ms).len(), 1);
        assert!(t.launch(now + ms).is_empty());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(2)));
        // After the timeout TTL 2 is lost and frees its place.
        t.expire(now + Duration::from_secs(2));
        assert!(matches!(t.probes[1].state, State::Lost));
        assert_eq!(t.launch(now + Duration::from_secs(2)).len(), 1);
    }

    #[test]
    fn an_unreachable_from_a_router_ends_the_path_there() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(30, 1, 1, 1, 8), 1);
        let ids: Vec<u16> = t.launch(now).iter().map(|&i| t.probes[i].id).collect();
        let unreach = Kind::Unreachable {
            code: 1,
            phrase: "destination host unreachable".into(),
        };
        assert!(t.answer(ids[0], reply(router(1), Kind::TimeExceeded), DST, now));
        assert!(t.answer(ids[1], reply(router(2), unreach), DST, now));
        assert_eq!((t.stop_ttl, t.dest_ttl, t.horizon()), (Some(2), None, 2));
        assert!(t.finished());
    }

    #[test]
    fn later_rounds_start_after_the_interval_and_stop_at_the_destination() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(30, 1, 1, 3, 8), 1);
        answer_chain(&mut t, now, 3);
        assert_eq!(t.rounds_started(), 1);
        assert!(!t.finished());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(t.launch(now + Duration::from_millis(999)).is_empty());
        let r2 = t.launch(now + Duration::from_secs(1));
        let ttls: Vec<u8> = r2.iter().map(|&i| t.probes[i].ttl).collect();
        assert_eq!(
            ttls,
            vec![1, 2, 3],
            "round 2 probes only up to the destination"
        );
        // Round 2 is lost entirely; round 3 starts one interval after round 2 did.
        t.expire(now + Duration::from_secs(3));
        assert_eq!(t.launch(now + Duration::from_secs(3)).len(), 3);
        t.expire(now + Duration::from_secs(5));
        assert!(t.finished());
        assert_eq!(t.rounds_started(), 3);
    }

    #[test]
    fn flows_multiply_the_probes_of_each_ttl_and_late_answers_are_ignored() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(1, 2, 3, 1, 8), 1);
        let new = t.launch(now);
        assert_eq!(new.len(), 6);
        let flows: Vec<u16> = new.iter().map(|&i| t.probes[i].flow).collect();
        assert_eq!(flows, vec![0, 1, 2, 0, 1, 2]);
        let id = t.probes[new[0]].id;
        t.expire(now + Duration::from_secs(2));
        assert!(!t.answer(
            id,
            reply(router(1), Kind::TimeExceeded),
            DST,
            now + Duration::from_secs(2)
        ));
        assert!(t.finished());
    }

    #[test]
    fn probe_numbers_skip_zero_and_those_still_waiting() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(2, 1, 1, 1, 8), MAX_ID);
        let ids: Vec<u16> = t.launch(now).iter().map(|&i| t.probes[i].id).collect();
        assert_eq!(ids, vec![MAX_ID, 1]);
    }

    #[test]
    fn a_single_round_gives_up_on_probes_the_answers_around_them_show_lost() {
        let now = Instant::now();
        let mut s = sched(5, 2, 1, 1, 8);
        s.adaptive = true;
        let mut t = Tracer::new(s, 1);
        let ids: Vec<(u8, u16)> = t
            .launch(now)
            .iter()
            .map(|&i| (t.probes[i].ttl, t.probes[i].id))
            .collect();
        let at = |ms: u64| now + Duration::from_millis(ms);
        // TTL 1: one of two probes answers after 40 ms (the other is rate-limited away).
        assert!(t.answer(ids[0].1, reply(router(1), Kind::TimeExceeded), DST, at(40)));
        // TTL 3 answers after 15 ms; TTL 2 stays silent.
        assert!(t.answer(ids[4].1, reply(router(3), Kind::TimeExceeded), DST, at(15)));
        // TTL 3's second probe may wait 3 × 15 ms, raised to the floor of 50 ms; TTL 1's
        // second probe 3 × 40 ms = 120 ms; TTL 2's probes 10 × 15 ms = 150 ms.
        assert_eq!(t.next_deadline(), Some(at(50)));
        t.expire(at(50));
        assert!(matches!(t.probes[5].state, State::Lost));
        assert_eq!(t.next_deadline(), Some(at(120)));
        t.expire(at(120));
        assert!(matches!(t.probes[1].state, State::Lost));
        assert!(matches!(t.probes[2].state, State::Pending));
        t.expire(at(149));
        assert!(matches!(t.probes[3].state, State::Pending));
        t.expire(at(150));
        assert!(matches!(t.probes[2].state, State::Lost));
        assert!(matches!(t.probes[3].state, State::Lost));
        // Fast answers never push the wait under the floor.
        assert!(t.answer(ids[6].1, reply(router(4), Kind::TimeExceeded), DST, at(1)));
        assert_eq!(t.give_up_at(7), Some(now + GIVE_UP_FLOOR));
    }

    #[test]
    fn rounds_of_statistics_always_wait_the_full_timeout() {
        let now = Instant::now();
        let mut t = Tracer::new(sched(3, 2, 1, 2, 8), 1);
        let ids: Vec<u16> = t.launch(now).iter().map(|&i| t.probes[i].id).collect();
        assert!(t.answer(ids[0], reply(router(1), Kind::TimeExceeded), DST, now));
        t.expire(now + Duration::from_millis(1999));
        assert!(matches!(t.probes[1].state, State::Pending));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
    }
}
