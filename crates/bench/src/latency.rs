//! Latency samples and their summary (percentiles by nearest rank, in microseconds).

use std::time::Duration;

use serde::Serialize;

/// The timings of one measured path, in the order they were taken.
#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Adds one timing.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Number of timings.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no timing was taken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The summary of the timings so far.
    pub fn summary(&self) -> Latency {
        let mut us: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let mean = if us.is_empty() {
            0.0
        } else {
            us.iter().sum::<f64>() / us.len() as f64
        };
        Latency {
            iterations: us.len(),
            p50_us: percentile(&us, 50.0),
            p90_us: percentile(&us, 90.0),
            p99_us: percentile(&us, 99.0),
            mean_us: mean,
            min_us: us.first().copied().unwrap_or(0.0),
            max_us: us.last().copied().unwrap_or(0.0),
        }
    }
}

/// Summary of one path's timings. scripts/bench_vs_ort.py computes onnxruntime's the same way.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Number of timed iterations.
    pub iterations: usize,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile (with fewer than 100 iterations, close to the maximum).
    pub p99_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Fastest iteration.
    pub min_us: f64,
    /// Slowest iteration.
    pub max_us: f64,
}

/// The `p`-th percentile of sorted values by nearest rank: the smallest value with at least p% of
/// the values at or below it (no interpolation, so it is always a measured value).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 99.0), 10.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn summary_of_unsorted_samples() {
        let mut s = Samples::default();
        for us in [30, 10, 20] {
            s.push(Duration::from_micros(us));
        }
        let l = s.summary();
        assert_eq!(l.iterations, 3);
        assert_eq!((l.min_us, l.p50_us, l.max_us), (10.0, 20.0, 30.0));
        assert!((l.mean_us - 20.0).abs() < 1e-9);
    }
}
