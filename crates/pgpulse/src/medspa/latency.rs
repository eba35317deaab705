//! Latency samples (µs) reduced to count, mean and nearest-rank
//! percentiles. A sorted `Vec` is exact and cheap at the workload's
//! volumes (a few hundred thousand samples per run).

/// Count, mean and percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

impl LatencySummary {
    /// The summary of `samples` (µs, any order); all zero when empty.
    pub fn from_micros(mut samples: Vec<u32>) -> LatencySummary {
        if samples.is_empty() {
            return LatencySummary::default();
        }
        samples.sort_unstable();
        let sum: u64 = samples.iter().map(|&s| u64::from(s)).sum();
        let at = |p: f64| {
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            f64::from(samples[rank.clamp(1, samples.len()) - 1]) / 1000.0
        };
        LatencySummary {
            count: samples.len() as u64,
            mean_ms: sum as f64 / samples.len() as f64 / 1000.0,
            p50_ms: at(50.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = LatencySummary::from_micros((1..=100).rev().map(|v| v * 1000).collect());
        assert_eq!(s.count, 100);
        assert_eq!(s.mean_ms, 50.5);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(
            LatencySummary::from_micros(vec![]),
            LatencySummary::default()
        );
        assert_eq!(LatencySummary::from_micros(vec![1500]).p99_ms, 1.5);
    }
}
