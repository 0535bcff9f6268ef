//! Latency statistics from per-packet samples.
//!
//! The per-packet list is always kept in results; these summaries are derived from it so that any
//! consumer (CLI, server, UI) can recompute and check them. Definitions follow the classic tools
//! so numbers compare directly: `mdev` is iputils ping's (population standard deviation),
//! percentiles interpolate linearly between closest ranks (netprobify, numpy's default), and
//! `jitter` is the mean absolute difference between consecutive samples in send order (mtr's
//! "Javg", RFC 3550's difference without smoothing).

use serde::{Deserialize, Serialize};

/// Summary of a set of round-trip times, all in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RttStats {
    /// Smallest sample.
    pub min: f64,
    /// Arithmetic mean.
    pub avg: f64,
    /// Largest sample.
    pub max: f64,
    /// Population standard deviation (iputils `mdev`).
    pub mdev: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean absolute difference between consecutive samples, in send order.
    pub jitter: f64,
}

impl RttStats {
    /// Computes the summary of `samples` (milliseconds, in send order). `None` when empty.
    pub fn from_samples(samples: &[f64]) -> Option<RttStats> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let sum: f64 = samples.iter().sum();
        let avg = sum / n;
        let var = samples.iter().map(|x| (x - avg) * (x - avg)).sum::<f64>() / n;
        let jitter = if samples.len() < 2 {
            0.0
        } else {
            samples.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>()
                / (samples.len() - 1) as f64
        };
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(RttStats {
            min: sorted[0],
            avg,
            max: sorted[sorted.len() - 1],
            mdev: var.sqrt(),
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            p99: percentile(&sorted, 99.0),
            jitter,
        })
    }
}

/// The `p`-th percentile (0–100) of an ascending slice, interpolating linearly between the
/// closest ranks (rank `k = (n − 1) · p / 100`). Returns NaN for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let k = (n - 1) as f64 * (p.clamp(0.0, 100.0) / 100.0);
            let lo = k.floor() as usize;
            let hi = k.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn empty_has_no_stats() {
        assert!(RttStats::from_samples(&[]).is_none());
    }

    #[test]
    fn single_sample_is_every_statistic() {
        let s = RttStats::from_samples(&[4.0]).unwrap();
        assert_eq!(
            (s.min, s.avg, s.max, s.p50, s.p99),
            (4.0, 4.0, 4.0, 4.0, 4.0)
        );
        assert_eq!((s.mdev, s.jitter), (0.0, 0.0));
    }

    #[test]
    fn matches_hand_computed_values() {
        // Send order 1, 3, 2, 4: sorted 1, 2, 3, 4.
        let s = RttStats::from_samples(&[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!(close(s.avg, 2.5));
        // Population variance of 1..4 is 1.25.
        assert!(close(s.mdev, 1.25_f64.sqrt()));
        // k = 3 × 0.5 = 1.5 → between 2 and 3.
        assert!(close(s.p50, 2.5));
        // k = 3 × 0.95 = 2.85 → 3 + 0.85.
        assert!(close(s.p95, 3.85));
        // |3−1| + |2−3| + |4−2| = 5 over 3 differences.
        assert!(close(s.jitter, 5.0 / 3.0));
    }

    #[test]
    fn percentile_agrees_with_numpy_linear_on_101_points() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        for p in [0.0, 1.0, 50.0, 95.0, 99.0, 100.0] {
            assert!(close(percentile(&v, p), p));
        }
    }
}
