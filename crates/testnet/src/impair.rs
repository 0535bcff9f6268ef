//! The userspace link impairer: delay, jitter and loss per direction on a link, since the
//! kernel of the test machines has no `netem`.
//!
//! An impaired link is built as `A —veth— [wire namespace: wa, wb] —veth— B`. Inside the wire
//! namespace, two `AF_PACKET` sockets bound to `wa` and `wb` read every Ethernet frame, and
//! per direction one thread receives, decides loss and schedules the frame, while a second
//! thread sends it out of the other side when it is due. Layer 2 is transparent: ARP and
//! neighbour discovery pass like any frame, so the two ends see one Ethernet segment.
//!
//! Decisions:
//! - **Timing.** A frame's due time is its *kernel receive timestamp* (`SO_TIMESTAMPNS`, taken
//!   when the frame entered the wire namespace) plus the delay, so the receiving thread's
//!   wake-up latency is not added. The sending thread sleeps until [`SPIN`] before the due time
//!   (with a 1 ns timer slack) and then spins, so it sends within a few microseconds of the due
//!   time on an idle machine. The lateness of every sent frame (send time − due time) is
//!   recorded and reported by [`DirectionStats`], so tests can check the impairer's own error.
//! - **Jitter** is uniform in `[delay − jitter, delay + jitter]` (clamped at 0), like netem
//!   without a distribution table. Frames are never reordered unless asked
//!   ([`Impairment::allow_reorder`]): a frame is never due before the one received before it.
//! - **Loss** is an independent Bernoulli draw per frame. ARP and IPv6 neighbour-discovery
//!   frames are never dropped (they are still delayed), so the loss a test measures is exactly
//!   the loss of its own traffic, not a side effect of failed address resolution.
//! - Offloads (checksum, TSO/GSO, GRO) are switched off on the veths of an impaired link, so
//!   every frame is a real, complete, checksummed packet no larger than the MTU.
//! - Parameters can be changed while the link runs ([`Topology::set_impairment`](crate::Topology::set_impairment)),
//!   so a test can start or stop loss in the middle of a measurement.

use std::collections::BinaryHeap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::ns::Ns;
use crate::sys;

/// How long before a frame's due time the sender stops sleeping and starts spinning. Sleeps on
/// this VM overshoot by tens of microseconds; spinning the last stretch makes the send time
/// accurate to a few microseconds at the cost of at most this much CPU per frame.
pub const SPIN: Duration = Duration::from_micros(200);
/// `SCHED_FIFO` priority of the sending threads (low among real-time priorities).
const REALTIME_PRIORITY: i32 = 10;
/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Frames waiting in one direction at most; beyond that, frames are dropped and counted.
const QUEUE_LIMIT: usize = 200_000;
/// Largest frame accepted (offloads are off, so real frames are at most MTU + 14 bytes).
const FRAME_MAX: usize = 65_536 + 64;

/// What a link does to the frames crossing it in one direction: delay, jitter and loss.
///
/// ```
/// use vantage_testnet::Impairment;
/// let wan = Impairment::delay_ms(20.0).jitter_ms(1.0).loss(0.01);
/// let lossy = Impairment::none().loss(0.10);
/// # let _ = (wan, lossy);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Fixed one-way delay added to every frame.
    pub delay: Duration,
    /// Half-width of the uniform jitter added to the delay.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a frame is dropped.
    pub loss: f64,
    /// Whether jitter may reorder frames (off by default).
    pub reorder: bool,
    /// Seed of the loss and jitter random numbers; `None` picks a fresh one.
    pub seed: Option<u64>,
}

impl Impairment {
    /// No impairment: frames pass through the impairer unchanged (the link can be impaired
    /// later with [`Topology::set_impairment`](crate::Topology::set_impairment)).
    pub fn none() -> Self {
        Self::default()
    }

    /// A fixed one-way delay in milliseconds.
    pub fn delay_ms(ms: f64) -> Self {
        Self::delay(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }

    /// A fixed one-way delay.
    pub fn delay(delay: Duration) -> Self {
        Impairment {
            delay,
            ..Self::default()
        }
    }

    /// Adds uniform jitter of ± `ms` milliseconds around the delay.
    pub fn jitter_ms(self, ms: f64) -> Self {
        self.jitter(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }

    /// Adds uniform jitter of ± `jitter` around the delay.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Drops each frame with probability `p` (0.10 = 10 %).
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Lets jitter reorder frames, as a real multi-path network may.
    pub fn allow_reorder(mut self) -> Self {
        self.reorder = true;
        self
    }

    /// Fixes the random seed, to replay the same loss pattern.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.loss) || self.loss.is_nan() {
            return Err(Error::Invalid(format!(
                "loss must be a probability between 0 and 1, not {}",
                self.loss
            )));
        }
        if self.delay > Duration::from_secs(60) || self.jitter > Duration::from_secs(60) {
            return Err(Error::Invalid(
                "delay and jitter must be under 60 seconds".to_string(),
            ));
        }
        Ok(())
    }
}

/// A direction across a link `(a, b)` as it was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the first node of the link to the second.
    AtoB,
    /// From the second node of the link to the first.
    BtoA,
}

/// Counters and timing error of one direction of an impaired link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectionStats {
    /// Frames received from the sending side.
    pub received: u64,
    /// Frames sent on to the other side.
    pub forwarded: u64,
    /// Frames dropped by the configured loss.
    pub lost: u64,
    /// Frames dropped because the queue was full or the frame was too large.
    pub overflow: u64,
    /// Frames whose kernel receive timestamp was missing (userspace time used instead).
    pub unstamped: u64,
    /// Lateness of sent frames (send time − due time), median, in microseconds.
    pub late_p50_us: f64,
    /// Lateness, 99th percentile, in microseconds.
    pub late_p99_us: f64,
    /// Lateness, maximum, in microseconds.
    pub late_max_us: f64,
}

/// Counters of both directions of an impaired link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkStats {
    /// From the first node of the link to the second.
    pub a_to_b: DirectionStats,
    /// From the second node of the link to the first.
    pub b_to_a: DirectionStats,
}

/// Shared state of one direction.
#[derive(Debug)]
struct Lane {
    params: Mutex<Impairment>,
    queue: Mutex<Queue>,
    wake: Condvar,
    received: AtomicU64,
    forwarded: AtomicU64,
    lost: AtomicU64,
    overflow: AtomicU64,
    unstamped: AtomicU64,
    /// Lateness samples in nanoseconds (bounded; the newest are dropped beyond the bound).
    lateness: Mutex<Vec<u64>>,
}

#[derive(Debug, Default)]
struct Queue {
    heap: BinaryHeap<Pending>,
    seq: u64,
    last_due: Option<Instant>,
}

#[derive(Debug)]
struct Pending {
    due: Instant,
    seq: u64,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    // BinaryHeap is a max-heap: the earliest (due, seq) must compare greatest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

const LATENESS_SAMPLES: usize = 1_000_000;

impl Lane {
    fn new(params: Impairment) -> Self {
        Lane {
            params: Mutex::new(params),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            received: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            overflow: AtomicU64::new(0),
            unstamped: AtomicU64::new(0),
            lateness: Mutex::new(Vec::new()),
        }
    }

    fn stats(&self) -> DirectionStats {
        let mut late = lock(&self.lateness).clone();
        late.sort_unstable();
        let pct = |q: f64| -> f64 {
            if late.is_empty() {
                return 0.0;
            }
            let i = ((late.len() - 1) as f64 * q).round() as usize;
            late[i] as f64 / 1000.0
        };
        DirectionStats {
            received: self.received.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            unstamped: self.unstamped.load(Ordering::Relaxed),
            late_p50_us: pct(0.5),
            late_p99_us: pct(0.99),
            late_max_us: pct(1.0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking impairer thread must not take the whole test bed down with poison errors.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running impairer of one link: four threads (receive and send, per direction).
#[derive(Debug)]
pub(crate) struct Impairer {
    stop: Arc<AtomicBool>,
    lanes: [Arc<Lane>; 2],
    threads: Vec<JoinHandle<()>>,
}

impl Impairer {
    /// Opens the packet sockets on `wa` (towards A) and `wb` (towards B) inside `wire` and
    /// starts forwarding. Returns once the sockets are bound: frames sent after that are seen.
    pub(crate) fn start(wire: &Ns, ab: Impairment, ba: Impairment) -> Result<Self> {
        ab.validate()?;
        ba.validate()?;
        let (sock_a, sock_b) = wire.run(|| -> Result<(OwnedFd, OwnedFd)> {
            let a = sys::packet_socket("wa", POLL)
                .map_err(|e| Error::io("cannot open a packet socket on the wire side A", e))?;
            let b = sys::packet_socket("wb", POLL)
                .map_err(|e| Error::io("cannot open a packet socket on the wire side B", e))?;
            Ok((a, b))
        })?;
        let sock_a = Arc::new(sock_a);
        let sock_b = Arc::new(sock_b);
        let stop = Arc::new(AtomicBool::new(false));
        let lanes = [Arc::new(Lane::new(ab)), Arc::new(Lane::new(ba))];
        let mut threads = Vec::new();
        for (lane, rx, tx, dir) in [
            (&lanes[0], &sock_a, &sock_b, "ab"),
            (&lanes[1], &sock_b, &sock_a, "ba"),
        ] {
            let (l, r, t, s) = (lane.clone(), rx.clone(), tx.clone(), stop.clone());
            threads.push(spawn(format!("impair-rx-{dir}"), move || {
                receiver(&l, &r, &t, &s)
            })?);
            let (l, t, s) = (lane.clone(), tx.clone(), stop.clone());
            threads.push(spawn(format!("impair-tx-{dir}"), move || {
                sender(&l, &t, &s)
            })?);
        }
        Ok(Impairer {
            stop,
            lanes,
            threads,
        })
    }

    pub(crate) fn set(&self, dir: Direction, params: Impairment) -> Result<()> {
        params.validate()?;
        let lane = match dir {
            Direction::AtoB => &self.lanes[0],
            Direction::BtoA => &self.lanes[1],
        };
        *lock(&lane.params) = params;
        Ok(())
    }

    pub(crate) fn params(&self, dir: Direction) -> Impairment {
        match dir {
            Direction::AtoB => *lock(&self.lanes[0].params),
            Direction::BtoA => *lock(&self.lanes[1].params),
        }
    }

    pub(crate) fn stats(&self) -> LinkStats {
        LinkStats {
            a_to_b: self.lanes[0].stats(),
            b_to_a: self.lanes[1].stats(),
        }
    }

    /// Stops the threads and waits for them (at most about [`POLL`]).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for lane in &self.lanes {
            lane.wake.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Impairer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| Error::io("cannot start an impairer thread", e))
}

/// True for frames that resolve addresses (ARP, IPv6 neighbour/router discovery), which loss
/// never drops.
fn is_resolution(frame: &[u8]) -> bool {
    let Some(ethertype) = frame.get(12..14) else {
        return false;
    };
    match u16::from_be_bytes([ethertype[0], ethertype[1]]) {
        0x0806 => true,
        0x86dd => {
            // IPv6 header (40 bytes) directly followed by ICMPv6 (next header 58), types
            // 133–137 (router/neighbour solicitation and advertisement, redirect).
            frame.get(14 + 6) == Some(&58)
                && frame.get(14 + 40).is_some_and(|t| (133..=137).contains(t))
        }
        _ => false,
    }
}

fn receiver(lane: &Lane, sock: &OwnedFd, sock_out: &OwnedFd, stop: &AtomicBool) {
    // A frame's due time is fixed by its kernel timestamp, but a receiver descheduled for
    // longer than the delay would still enqueue it late: it runs at real-time priority too.
    if let Err(e) = sys::make_thread_realtime(REALTIME_PRIORITY) {
        tracing::debug!("impairer receiver runs without real-time priority: {e}");
    }
    let mut buf = vec![0u8; FRAME_MAX];
    let mut rng: Option<(Option<u64>, StdRng)> = None;
    while !stop.load(Ordering::Relaxed) {
        let (len, stamp) = match sys::recv_frame(sock, &mut buf) {
            Ok(sys::Received::Frame(len, stamp)) => (len, stamp),
            Ok(sys::Received::Idle) => continue,
            Ok(sys::Received::Truncated) => {
                lane.received.fetch_add(1, Ordering::Relaxed);
                lane.overflow.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    tracing::warn!("impairer receive failed, link stops forwarding: {e}");
                }
                return;
            }
        };
        let now = Instant::now();
        lane.received.fetch_add(1, Ordering::Relaxed);
        // Map the kernel's wall-clock receive time onto the monotonic clock.
        let arrival = match stamp.and_then(|s| SystemTime::now().duration_since(s).ok()) {
            Some(age) if age < Duration::from_secs(1) => now.checked_sub(age).unwrap_or(now),
            _ => {
                lane.unstamped.fetch_add(1, Ordering::Relaxed);
                now
            }
        };
        let params = *lock(&lane.params);
        let rng = match &mut rng {
            Some((seed, r)) if *seed == params.seed => r,
            slot => {
                let r = match params.seed {
                    Some(s) => StdRng::seed_from_u64(s),
                    None => StdRng::from_os_rng(),
                };
                &mut slot.insert((params.seed, r)).1
            }
        };
        let frame = &buf[..len];
        if params.loss > 0.0 && !is_resolution(frame) && rng.random::<f64>() < params.loss {
            lane.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut delay = params.delay.as_secs_f64();
        if !params.jitter.is_zero() {
            let j = params.jitter.as_secs_f64();
            delay = (delay + rng.random_range(-j..=j)).max(0.0);
        }
        let mut due = arrival + Duration::from_secs_f64(delay);
        let mut q = lock(&lane.queue);
        if q.heap.len() >= QUEUE_LIMIT {
            lane.overflow.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if !params.reorder
            && let Some(last) = q.last_due
        {
            due = due.max(last);
        }
        q.last_due = Some(due);
        if q.heap.is_empty() && due <= Instant::now() {
            // Already due (no delay) and nothing queued before it: send it from here, which
            // spares the hand-over to the sending thread (a wake-up of tens of µs).
            drop(q);
            forward(lane, sock_out, frame, due);
            continue;
        }
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Pending {
            due,
            seq,
            frame: frame.to_vec(),
        });
        drop(q);
        lane.wake.notify_one();
    }
}

/// Sends a frame on and records how late it left.
fn forward(lane: &Lane, sock: &OwnedFd, frame: &[u8], due: Instant) {
    // Lateness is taken when the send starts: the send itself is the veth's own cost, the
    // same as on an unimpaired link.
    let late = Instant::now().saturating_duration_since(due);
    match sys::send_frame(sock, frame) {
        Ok(()) => {
            lane.forwarded.fetch_add(1, Ordering::Relaxed);
            let mut l = lock(&lane.lateness);
            if l.len() < LATENESS_SAMPLES {
                l.push(late.as_nanos() as u64);
            }
        }
        Err(e) => {
            lane.overflow.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("impairer could not send a frame: {e}");
        }
    }
}

fn sender(lane: &Lane, sock: &OwnedFd, stop: &AtomicBool) {
    // Sleep precisely: the default 50 µs timer slack would be added to every wake-up.
    let _ = nix::sys::prctl::set_timerslack(1);
    // Real-time priority: sending on time must not wait for a compiler to yield the core.
    // Spinning is bounded by SPIN per frame and the kernel's RT throttling still applies.
    if let Err(e) = sys::make_thread_realtime(REALTIME_PRIORITY) {
        tracing::debug!("impairer sender runs without real-time priority: {e}");
    }
    let mut q = lock(&lane.queue);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(next) = q.heap.peek() else {
            q = lane
                .wake
                .wait_timeout(q, POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            continue;
        };
        let due = next.due;
        let now = Instant::now();
        if due > now + SPIN {
            // Sleep until shortly before it is due; an earlier frame (reordering) wakes us.
            let wait = (due - now - SPIN).min(POLL);
            q = lane
                .wake
                .wait_timeout(q, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            continue;
        }
        if due > now {
            drop(q);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            q = lock(&lane.queue);
            continue; // re-check: with reordering an earlier frame may have arrived
        }
        let Some(p) = q.heap.pop() else { continue };
        drop(q);
        forward(lane, sock, &p.frame, p.due);
        q = lock(&lane.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_and_neighbour_discovery_are_recognised() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(is_resolution(&arp));

        let mut ns = vec![0u8; 14 + 40 + 24];
        ns[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        ns[14 + 6] = 58;
        ns[14 + 40] = 135;
        assert!(is_resolution(&ns));
        ns[14 + 40] = 128; // echo request
        assert!(!is_resolution(&ns));

        let mut v4 = vec![0u8; 60];
        v4[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert!(!is_resolution(&v4));
        assert!(!is_resolution(&[0u8; 5]));
    }

    #[test]
    fn queue_pops_earliest_due_first() {
        let t = Instant::now();
        let mut h = BinaryHeap::new();
        for (ms, seq) in [(5, 1), (1, 2), (3, 3), (1, 4)] {
            h.push(Pending {
                due: t + Duration::from_millis(ms),
                seq,
                frame: Vec::new(),
            });
        }
        let order: Vec<u64> = std::iter::from_fn(|| h.pop().map(|p| p.seq)).collect();
        assert_eq!(order, vec![2, 4, 3, 1]);
    }

    #[test]
    fn invalid_loss_is_rejected() {
        assert!(Impairment::none().loss(1.5).validate().is_err());
        assert!(Impairment::none().loss(-0.1).validate().is_err());
        assert!(Impairment::none().loss(f64::NAN).validate().is_err());
        assert!(Impairment::delay_ms(20.0).loss(0.1).validate().is_ok());
    }
}
