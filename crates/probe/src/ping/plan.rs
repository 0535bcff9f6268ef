//! What one shared socket will send: its targets, the probe numbering, the send schedule and the
//! payload that lets a reply be matched to its probe.
//!
//! Probes are numbered `n = 0, 1, …` in send order, round by round: round `k` sends request `k`
//! of every target that still has one. The number travels in the payload next to a random
//! per-run cookie (`[cookie: 8][n: 4][pattern…]`), and its low 16 bits are the ICMP sequence,
//! so a reply is matched by identifier, sequence, cookie and number together, and a reply from an
//! earlier run or another program never matches. Payloads too short for the cookie (under 12
//! bytes) fall back to the sequence alone; such groups are capped at 65 536 probes so the
//! sequence stays unique.

use std::net::IpAddr;
use std::time::Duration;

use vantage_proto::Family;

use crate::sock::{Options, icmp};

/// Bytes of the payload that identify a probe: cookie (8) and probe number (4).
pub const TAG_LEN: usize = 12;
/// Most probes in a group whose payload cannot carry the probe number.
pub const MAX_UNTAGGED_PROBES: usize = 1 << 16;

/// One target of a group.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index of the spec in the caller's list.
    pub spec: usize,
    /// The address pinged.
    pub addr: IpAddr,
    /// Echo requests to send.
    pub count: u32,
    /// How long each request waits for its reply.
    pub timeout: Duration,
    /// Payload bytes.
    pub size: u16,
}

/// Everything that must be equal for targets to share one socket and one schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupKey {
    /// Address family of the socket.
    pub family: Family,
    /// Socket options (TTL, TOS, DF, source, interface).
    pub options: Options,
    /// Seconds between two requests to the same target.
    pub interval: f64,
    /// Whether payloads carry the probe tag (every target's size ≥ [`TAG_LEN`]).
    pub tagged: bool,
}

/// The probes of one socket, in send order.
#[derive(Debug)]
pub struct Plan {
    /// Socket and schedule parameters.
    pub key: GroupKey,
    /// Targets, in the order their results are returned.
    pub targets: Vec<Target>,
    /// For each probe number: (target index, request number within the target).
    pub probes: Vec<(u32, u32)>,
    /// For each probe number: its position within its round (for pacing).
    pub slot_in_round: Vec<u32>,
    /// Random per-run cookie carried in every payload.
    pub cookie: u64,
    /// ICMP identifier for raw sockets (datagram sockets get theirs from the kernel).
    pub ident: u16,
    /// The longest reply wait of any target.
    pub max_timeout: Duration,
}

impl Plan {
    /// Numbers the probes of `targets` round by round.
    pub fn new(key: GroupKey, targets: Vec<Target>) -> Plan {
        let rounds = targets.iter().map(|t| t.count).max().unwrap_or(0);
        let total: usize = targets.iter().map(|t| t.count as usize).sum();
        let mut probes = Vec::with_capacity(total);
        let mut slot_in_round = Vec::with_capacity(total);
        for k in 0..rounds {
            let mut slot = 0u32;
            for (i, t) in targets.iter().enumerate() {
                if k < t.count {
                    probes.push((i as u32, k));
                    slot_in_round.push(slot);
                    slot += 1;
                }
            }
        }
        let max_timeout = targets.iter().map(|t| t.timeout).max().unwrap_or_default();
        Plan {
            key,
            targets,
            probes,
            slot_in_round,
            cookie: rand::random(),
            ident: rand::random(),
            max_timeout,
        }
    }

    /// Splits the targets into `parts` plans (round-robin, so each part gets a similar share of
    /// every round), each with its own cookie and a distinct identifier.
    pub fn split(self, parts: usize) -> Vec<Plan> {
        let parts = parts.max(1);
        let mut buckets: Vec<Vec<Target>> = (0..parts).map(|_| Vec::new()).collect();
        for (i, t) in self.targets.into_iter().enumerate() {
            buckets[i % parts].push(t);
        }
        let mut plans: Vec<Plan> = Vec::with_capacity(parts);
        for targets in buckets.into_iter().filter(|b| !b.is_empty()) {
            let mut p = Plan::new(self.key.clone(), targets);
            while plans.iter().any(|q| q.ident == p.ident) {
                p.ident = rand::random();
            }
            plans.push(p);
        }
        plans
    }

    /// Number of probes.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// When probe `n` is due, counted from the start of the run: its round times the interval,
    /// plus its place in the round at `rate` packets per second (0: no spacing).
    pub fn due(&self, n: usize, rate: u32) -> Duration {
        let (_, k) = self.probes[n];
        let round = Duration::from_secs_f64(self.key.interval * f64::from(k));
        if rate == 0 {
            round
        } else {
            round + Duration::from_secs_f64(f64::from(self.slot_in_round[n]) / f64::from(rate))
        }
    }

    /// Appends the echo request of probe `n` to `out`.
    pub fn packet(&self, n: usize, ident: u16, out: &mut Vec<u8>) {
        let (t, _) = self.probes[n];
        let size = usize::from(self.targets[t as usize].size);
        icmp::echo_request_with(self.key.family, ident, n as u16, size, out, |p| {
            fill_payload(p, self.cookie, n as u32)
        });
    }

    /// The probe a reply (or the request quoted in an error) belongs to, from its sequence and
    /// payload; `None` when the cookie is not ours or the number is out of range.
    pub fn probe_of(&self, seq: u16, payload: &[u8]) -> Option<usize> {
        let n = if self.key.tagged {
            let cookie = u64::from_be_bytes(payload.get(0..8)?.try_into().ok()?);
            if cookie != self.cookie {
                return None;
            }
            let n = u32::from_be_bytes(payload.get(8..12)?.try_into().ok()?) as usize;
            if n as u16 != seq {
                return None;
            }
            n
        } else {
            usize::from(seq)
        };
        (n < self.probes.len()).then_some(n)
    }

    /// For an ICMP error quoting only the first 8 bytes of our request (no cookie): the probe
    /// to `dst` whose sequence is `seq`.
    pub fn probe_of_quoted(&self, dst: IpAddr, seq: u16) -> Option<usize> {
        let t = self.targets.iter().position(|t| t.addr == dst)? as u32;
        // Probe numbers of target t are those with probes[n].0 == t; few enough to scan by
        // sequence: only numbers congruent to seq modulo 65 536 qualify.
        let mut n = usize::from(seq);
        while n < self.probes.len() {
            if self.probes[n].0 == t {
                return Some(n);
            }
            n += 1 << 16;
        }
        None
    }
}

/// Writes the tag (cookie, probe number) and a byte pattern into a payload.
fn fill_payload(p: &mut [u8], cookie: u64, n: u32) {
    for (i, b) in p.iter_mut().enumerate() {
        *b = i as u8;
    }
    if p.len() >= TAG_LEN {
        p[0..8].copy_from_slice(&cookie.to_be_bytes());
        p[8..12].copy_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(spec: usize, addr: &str, count: u32, size: u16) -> Target {
        Target {
            spec,
            addr: addr.parse().unwrap(),
            count,
            timeout: Duration::from_secs(1),
            size,
        }
    }

    fn key(tagged: bool) -> GroupKey {
        GroupKey {
            family: Family::Ipv4,
            options: Options::default(),
            interval: 0.5,
            tagged,
        }
    }

    #[test]
    fn probes_are_numbered_round_by_round() {
        let p = Plan::new(
            key(true),
            vec![target(0, "192.0.2.1", 2, 56), target(1, "192.0.2.2", 3, 56)],
        );
        assert_eq!(p.probes, vec![(0, 0), (1, 0), (0, 1), (1, 1), (1, 2)]);
        assert_eq!(p.slot_in_round, vec![0, 1, 0, 1, 0]);
        // Round 1 starts one interval in; at 10 pps the second of a round is 0.1 s later.
        assert_eq!(p.due(3, 10), Duration::from_millis(600));
        assert_eq!(p.due(4, 0), Duration::from_secs(1));
    }

    #[test]
    fn a_tagged_reply_maps_back_to_its_probe_and_a_foreign_cookie_does_not() {
        let p = Plan::new(key(true), vec![target(0, "192.0.2.1", 3, 56)]);
        let mut pkt = Vec::new();
        p.packet(2, 7, &mut pkt);
        assert_eq!(pkt.len(), 8 + 56);
        let seq = u16::from_be_bytes([pkt[6], pkt[7]]);
        assert_eq!(p.probe_of(seq, &pkt[8..]), Some(2));
        let mut other = pkt[8..].to_vec();
        other[0] ^= 1;
        assert_eq!(p.probe_of(seq, &other), None, "another run's cookie");
        assert_eq!(
            p.probe_of(seq + 1, &pkt[8..]),
            None,
            "sequence and number disagree"
        );
    }

    #[test]
    fn splitting_keeps_every_target_once_with_distinct_identifiers() {
        let targets = (0..10)
            .map(|i| target(i, &format!("192.0.2.{i}"), 2, 56))
            .collect();
        let parts = Plan::new(key(true), targets).split(3);
        assert_eq!(parts.len(), 3);
        let mut specs: Vec<usize> = parts
            .iter()
            .flat_map(|p| p.targets.iter().map(|t| t.spec))
            .collect();
        specs.sort();
        assert_eq!(specs, (0..10).collect::<Vec<_>>());
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), 20);
        assert!(
            parts[0].ident != parts[1].ident
                && parts[1].ident != parts[2].ident
                && parts[0].ident != parts[2].ident
        );
    }

    #[test]
    fn short_payloads_match_on_the_sequence_alone() {
        let p = Plan::new(key(false), vec![target(0, "192.0.2.1", 4, 0)]);
        let mut pkt = Vec::new();
        p.packet(3, 7, &mut pkt);
        assert_eq!(pkt.len(), 8);
        assert_eq!(p.probe_of(3, &[]), Some(3));
        assert_eq!(p.probe_of(4, &[]), None);
    }

    #[test]
    fn quoted_headers_without_payload_find_the_probe_by_destination() {
        let p = Plan::new(
            key(true),
            vec![target(0, "192.0.2.1", 2, 56), target(1, "192.0.2.2", 2, 56)],
        );
        assert_eq!(p.probe_of_quoted("192.0.2.2".parse().unwrap(), 3), Some(3));
        assert_eq!(p.probe_of_quoted("192.0.2.2".parse().unwrap(), 2), None);
        assert_eq!(p.probe_of_quoted("192.0.2.9".parse().unwrap(), 0), None);
    }
}
