//! Timestamps on one clock. Kernel software stamps (`SO_TIMESTAMPING`, `SO_TIMESTAMPNS`) are
//! `CLOCK_REALTIME`, so user-space fallbacks are taken on the same clock: a kernel TX stamp and a
//! user RX stamp (or the reverse) can still be subtracted when only one side has kernel support.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a timestamp was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StampSource {
    /// By the kernel as the packet left or arrived.
    Kernel,
    /// In user space around the system call.
    User,
}

/// A point in time: nanoseconds since the Unix epoch on `CLOCK_REALTIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(i64);

impl Stamp {
    /// The current time, taken in user space.
    pub fn now() -> Stamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Stamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Stamp(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    /// A stamp from a kernel `timespec`.
    pub fn from_timespec(sec: i64, nsec: i64) -> Stamp {
        Stamp(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
    }

    /// A stamp from raw nanoseconds since the epoch.
    pub fn from_nanos(nanos: i64) -> Stamp {
        Stamp(nanos)
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whether the kernel left the stamp empty (all-zero timespec).
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Signed milliseconds from `earlier` to `self`.
    pub fn ms_since(self, earlier: Stamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1e6
    }

    /// The stamp `d` later.
    pub fn after(self, d: Duration) -> Stamp {
        Stamp(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// As a UTC date-time, for result envelopes.
    pub fn to_utc(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_signed_milliseconds() {
        let a = Stamp::from_timespec(10, 500_000_000);
        let b = Stamp::from_timespec(10, 502_250_000);
        assert!((b.ms_since(a) - 2.25).abs() < 1e-9);
        assert!((a.ms_since(b) + 2.25).abs() < 1e-9);
        assert_eq!(a.after(Duration::from_micros(2250)), b);
    }

    #[test]
    fn now_is_on_the_realtime_clock() {
        let now = Stamp::now();
        // After 2020-01-01 and before 2100-01-01: the realtime clock, not a monotonic one.
        assert!(now.as_nanos() > 1_577_836_800 * 1_000_000_000);
        assert!(now.as_nanos() < 4_102_444_800 * 1_000_000_000);
    }
}
