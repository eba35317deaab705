//! Per-entry accumulation of statement statistics: counts, sum / min / max,
//! Welford mean and variance, an HDR latency histogram (1 µs to 1 h) and the
//! cache outcome counts; and [`FingerprintStats`], the snapshot readers get.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use pgpulse_sql::Fingerprint;
use serde::Serialize;

use crate::event::CacheOutcome;

/// Highest latency the histograms track, in microseconds (1 h); longer
/// statements are recorded as 1 h in the histogram (sum, max and mean keep
/// the real value).
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// A snapshot of the statistics of one normalized statement, for one
/// (database, user), or merged over all of them (then `database` and `user`
/// are `*` when they differ).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FingerprintStats {
    /// The fingerprint of the normalized text (serialized as 16 hex digits).
    #[serde(serialize_with = "ser_fingerprint")]
    pub fingerprint: Fingerprint,
    /// Normalized text (constants replaced by `$n`).
    pub query: Arc<str>,
    /// Database name, or `*` for several.
    pub database: Arc<str>,
    /// User name, or `*` for several.
    pub user: Arc<str>,
    /// Number of executions.
    pub calls: u64,
    /// Rows returned or affected, summed.
    pub rows: u64,
    /// Executions that failed.
    pub errors: u64,
    /// Sum of durations.
    pub total_time: Duration,
    /// Shortest duration.
    pub min_time: Duration,
    /// Longest duration.
    pub max_time: Duration,
    /// Mean duration.
    pub mean_time: Duration,
    /// Population standard deviation of the durations.
    pub stddev_time: Duration,
    /// Median (HDR histogram, 3 significant digits by default).
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Executions served from the result cache.
    pub cache_hits: u64,
    /// Executions that looked in the cache and missed.
    pub cache_misses: u64,
    /// Start of the first execution seen.
    pub first_seen: SystemTime,
    /// Completion of the last execution seen.
    pub last_seen: SystemTime,
}

fn ser_fingerprint<S: serde::Serializer>(f: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(f)
}

/// The running statistics of one entry.
#[derive(Debug, Clone)]
pub(crate) struct Accum {
    pub calls: u64,
    pub rows: u64,
    pub errors: u64,
    pub hits: u64,
    pub misses: u64,
    pub total_ns: u128,
    pub min_ns: u64,
    pub max_ns: u64,
    /// Welford running mean and sum of squared deviations, in nanoseconds.
    mean_ns: f64,
    m2: f64,
    /// Latencies in microseconds; `u32` counts and auto-resizing keep it
    /// small (it only grows to the largest value seen).
    pub hist: Histogram<u32>,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
}

/// One execution, as the accumulator needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub duration: Duration,
    pub rows: u64,
    pub error: bool,
    pub cache: CacheOutcome,
    pub started_at: SystemTime,
    pub completed_at: SystemTime,
}

/// Duration in whole nanoseconds, saturating at `u64::MAX` (584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Duration in microseconds for the histogram, clamped to 1 µs ..= 1 h.
pub(crate) fn hist_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HISTOGRAM_MAX_US)
}

impl Accum {
    /// An empty accumulator whose histogram keeps `digits` significant
    /// digits (validated by the config to be 1..=5).
    pub fn new(digits: u8) -> Accum {
        let hist = Histogram::new(digits)
            .or_else(|_| Histogram::new(3))
            // 3 significant digits is always a valid precision.
            .unwrap_or_else(|_| unreachable!("3 significant digits is valid"));
        Accum {
            calls: 0,
            rows: 0,
            errors: 0,
            hits: 0,
            misses: 0,
            total_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            mean_ns: 0.0,
            m2: 0.0,
            hist,
            first_seen: SystemTime::UNIX_EPOCH,
            last_seen: SystemTime::UNIX_EPOCH,
        }
    }

    /// Adds one execution.
    pub fn record(&mut self, s: &Sample) {
        let ns = nanos(s.duration);
        if self.calls == 0 || s.started_at < self.first_seen {
            self.first_seen = s.started_at;
        }
        if s.completed_at > self.last_seen {
            self.last_seen = s.completed_at;
        }
        self.calls += 1;
        self.rows = self.rows.saturating_add(s.rows);
        self.errors += u64::from(s.error);
        match s.cache {
            CacheOutcome::Hit => self.hits += 1,
            CacheOutcome::Miss | CacheOutcome::Filled => self.misses += 1,
            CacheOutcome::Bypass => {}
        }
        self.total_ns += u128::from(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        let x = ns as f64;
        let delta = x - self.mean_ns;
        self.mean_ns += delta / self.calls as f64;
        self.m2 += delta * (x - self.mean_ns);
        // Values are clamped into 1 µs ..= 1 h, which auto-resize always
        // covers; should recording still fail, saturate rather than lose it.
        let us = hist_us(s.duration);
        if self.hist.record(us).is_err() {
            self.hist.saturating_record(us);
        }
    }

    /// Merges `other` into `self` (Chan et al. for the variance).
    pub fn merge(&mut self, other: &Accum) {
        if other.calls == 0 {
            return;
        }
        if self.calls == 0 || other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
        }
        self.last_seen = self.last_seen.max(other.last_seen);
        let (n1, n2) = (self.calls as f64, other.calls as f64);
        let delta = other.mean_ns - self.mean_ns;
        let n = n1 + n2;
        self.mean_ns += delta * n2 / n;
        self.m2 += other.m2 + delta * delta * n1 * n2 / n;
        self.calls += other.calls;
        self.rows = self.rows.saturating_add(other.rows);
        self.errors += other.errors;
        self.hits += other.hits;
        self.misses += other.misses;
        self.total_ns += other.total_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        // Both histograms auto-resize, so adding cannot run out of range.
        let _ = self.hist.add(&other.hist);
    }

    /// The value at `q` (0..=1) in the histogram, capped by the true maximum.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.calls == 0 {
            return Duration::ZERO;
        }
        let us = self.hist.value_at_quantile(q);
        Duration::from_micros(us).min(Duration::from_nanos(self.max_ns))
    }

    /// Mean and population standard deviation.
    pub fn mean_stddev(&self) -> (Duration, Duration) {
        if self.calls == 0 {
            return (Duration::ZERO, Duration::ZERO);
        }
        let var = (self.m2 / self.calls as f64).max(0.0);
        (
            Duration::from_nanos(self.mean_ns.round() as u64),
            Duration::from_nanos(var.sqrt().round() as u64),
        )
    }

    /// A snapshot with the given identity.
    pub fn snapshot(
        &self,
        fingerprint: Fingerprint,
        query: Arc<str>,
        database: Arc<str>,
        user: Arc<str>,
    ) -> FingerprintStats {
        let (mean, stddev) = self.mean_stddev();
        FingerprintStats {
            fingerprint,
            query,
            database,
            user,
            calls: self.calls,
            rows: self.rows,
            errors: self.errors,
            total_time: Duration::from_nanos(u64::try_from(self.total_ns).unwrap_or(u64::MAX)),
            min_time: Duration::from_nanos(if self.calls == 0 { 0 } else { self.min_ns }),
            max_time: Duration::from_nanos(self.max_ns),
            mean_time: mean,
            stddev_time: stddev,
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            cache_hits: self.hits,
            cache_misses: self.misses,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(us: u64) -> Sample {
        Sample {
            duration: Duration::from_micros(us),
            rows: 1,
            error: false,
            cache: CacheOutcome::Bypass,
            started_at: SystemTime::UNIX_EPOCH,
            completed_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn within(actual: Duration, expected_us: u64, rel: f64) -> bool {
        let a = actual.as_secs_f64() * 1e6;
        (a - expected_us as f64).abs() <= expected_us as f64 * rel
    }

    #[test]
    fn percentiles_of_uniform_1_to_10000_us() {
        let mut a = Accum::new(3);
        for us in 1..=10_000 {
            a.record(&sample(us));
        }
        let s = a.snapshot(Fingerprint(1), "q".into(), "d".into(), "u".into());
        assert_eq!(s.calls, 10_000);
        assert!(within(s.p50, 5_000, 0.001), "{:?}", s.p50);
        assert!(within(s.p95, 9_500, 0.001), "{:?}", s.p95);
        assert!(within(s.p99, 9_900, 0.001), "{:?}", s.p99);
        assert!(within(s.p999, 9_990, 0.001), "{:?}", s.p999);
        assert_eq!(s.min_time, Duration::from_micros(1));
        assert_eq!(s.max_time, Duration::from_micros(10_000));
        assert_eq!(s.total_time, Duration::from_micros(10_000 * 10_001 / 2));
        assert!(within(s.mean_time, 5_000, 0.0002), "{:?}", s.mean_time);
        // Population stddev of 1..=n is sqrt((n^2 - 1) / 12).
        let expected = ((10_000f64 * 10_000.0 - 1.0) / 12.0).sqrt();
        assert!(
            within(s.stddev_time, expected as u64, 0.001),
            "{:?}",
            s.stddev_time
        );
    }

    #[test]
    fn mean_and_stddev_of_a_known_set() {
        // 2, 4, 4, 4, 5, 5, 7, 9 ms: mean 5 ms, population stddev 2 ms.
        let mut a = Accum::new(3);
        for ms in [2, 4, 4, 4, 5, 5, 7, 9] {
            a.record(&sample(ms * 1000));
        }
        let (mean, sd) = a.mean_stddev();
        assert_eq!(mean, Duration::from_millis(5));
        assert_eq!(sd, Duration::from_millis(2));
    }

    #[test]
    fn outliers_beyond_an_hour_are_clamped_in_the_histogram_only() {
        let mut a = Accum::new(3);
        a.record(&sample(2 * HISTOGRAM_MAX_US));
        assert_eq!(a.max_ns, 2 * HISTOGRAM_MAX_US * 1000);
        let p = a.quantile(1.0);
        assert!(within(p, HISTOGRAM_MAX_US, 0.001), "{p:?}");
    }

    #[test]
    fn cache_outcomes_and_errors_are_counted() {
        let mut a = Accum::new(3);
        for cache in [
            CacheOutcome::Hit,
            CacheOutcome::Hit,
            CacheOutcome::Miss,
            CacheOutcome::Filled,
            CacheOutcome::Bypass,
        ] {
            a.record(&Sample {
                cache,
                error: cache == CacheOutcome::Miss,
                ..sample(10)
            });
        }
        assert_eq!((a.hits, a.misses, a.errors, a.calls), (2, 2, 1, 5));
    }

    proptest! {
        #[test]
        fn merge_equals_recording_everything_in_one(
            xs in proptest::collection::vec(1u64..5_000_000, 1..60),
            ys in proptest::collection::vec(1u64..5_000_000, 0..60),
        ) {
            let mut one = Accum::new(3);
            let (mut left, mut right) = (Accum::new(3), Accum::new(3));
            for &x in &xs { one.record(&sample(x)); left.record(&sample(x)); }
            for &y in &ys { one.record(&sample(y)); right.record(&sample(y)); }
            left.merge(&right);
            prop_assert_eq!(left.calls, one.calls);
            prop_assert_eq!(left.total_ns, one.total_ns);
            prop_assert_eq!(left.min_ns, one.min_ns);
            prop_assert_eq!(left.max_ns, one.max_ns);
            let (m1, s1) = left.mean_stddev();
            let (m2, s2) = one.mean_stddev();
            prop_assert!((m1.as_nanos() as i128 - m2.as_nanos() as i128).abs() <= 2);
            prop_assert!((s1.as_nanos() as i128 - s2.as_nanos() as i128).abs() <= 2_000);
            prop_assert_eq!(left.quantile(0.95), one.quantile(0.95));
        }

        #[test]
        fn percentiles_are_ordered_and_bounded(xs in proptest::collection::vec(1u64..100_000_000, 1..200)) {
            let mut a = Accum::new(3);
            for &x in &xs { a.record(&sample(x)); }
            let s = a.snapshot(Fingerprint(0), "q".into(), "d".into(), "u".into());
            // HDR reports a bucket's highest equivalent value, never below the sample.
            prop_assert!(s.min_time <= s.p50);
            prop_assert!(s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.p999);
            prop_assert!(s.p999 <= s.max_time);
        }
    }
}
