//! Merging the periods' latency histograms into window percentiles: decoding
//! the stored blobs (HDR V2 + deflate, microseconds), adding them up, and
//! the fallback for periods stored without a histogram.

use hdrhistogram::Histogram;
use pgpulse_store::QueryPattern;

use super::body::Percentiles;
use crate::stats::HISTOGRAM_MAX_US;

/// Decodes one stored histogram; `None` (with a warning) when the blob is
/// unreadable, so that one bad row degrades to the fallback instead of
/// failing the whole report.
pub(crate) fn decode(blob: &[u8]) -> Option<Histogram<u64>> {
    crate::decode_histogram(blob)
        .map_err(
            |e| tracing::warn!(error = %e, "unreadable period histogram; using its percentiles"),
        )
        .ok()
}

/// The sum of several periods' latency distributions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Merged {
    /// Real statements, from the periods' histograms.
    real: Option<Histogram<u64>>,
    /// Stand-ins for the statements of periods without a histogram.
    synthetic: Option<Histogram<u64>>,
    /// Statements whose period contributed a real histogram.
    pub with_histogram: u64,
}

impl Merged {
    /// Adds a decoded period histogram.
    pub fn add(&mut self, h: &Histogram<u64>) {
        if add_into(&mut self.real, h) {
            self.with_histogram += h.len();
        }
    }

    /// Adds another merge.
    pub fn add_merged(&mut self, other: &Merged) {
        if let Some(h) = &other.real {
            self.add(h);
        }
        if let Some(h) = &other.synthetic {
            add_into(&mut self.synthetic, h);
        }
    }

    /// Adds a period that has no (readable) histogram: its calls are spread
    /// over its own p50 / p95 / p99 / max, which keeps the merged
    /// percentiles close to the truth when most periods have histograms.
    pub fn add_fallback(&mut self, p: &QueryPattern) {
        if p.calls <= 0 {
            return;
        }
        let calls = p.calls as u64;
        let at = |frac: f64| (calls as f64 * frac).floor() as u64;
        let (c50, c95, c99) = (at(0.50), at(0.95), at(0.99));
        let parts = [
            (p.p50_ms, c50),
            (p.p95_ms, c95.saturating_sub(c50)),
            (p.p99_ms, c99.saturating_sub(c95)),
            (p.max_ms.max(p.p99_ms), calls.saturating_sub(c99)),
        ];
        let acc = self.synthetic.get_or_insert_with(new_histogram);
        for (ms, n) in parts {
            if n == 0 {
                continue;
            }
            let us = (ms.max(0.0) * 1000.0).round() as u64;
            if let Err(e) = acc.record_n(us.clamp(1, HISTOGRAM_MAX_US), n) {
                tracing::warn!(error = ?e, "fallback percentile not recorded");
            }
        }
    }

    /// Adds one pattern row: its histogram when it has a readable one,
    /// otherwise its percentiles.
    pub fn add_pattern(&mut self, p: &QueryPattern, decoded: Option<&Histogram<u64>>) {
        match decoded {
            Some(h) => self.add(h),
            None => self.add_fallback(p),
        }
    }

    /// The median, 95th and 99th percentiles, ms (none when empty).
    pub fn percentiles(&self) -> Percentiles {
        let combined;
        let hist = match (&self.real, &self.synthetic) {
            (Some(r), Some(s)) => {
                let mut both = r.clone();
                if let Err(e) = both.add(s) {
                    tracing::warn!(error = ?e, "fallback percentiles not merged");
                }
                combined = both;
                Some(&combined)
            }
            (r, s) => r.as_ref().or(s.as_ref()),
        };
        let q = |quantile: f64| {
            hist.filter(|h| !h.is_empty())
                .map(|h| us_to_ms(h.value_at_quantile(quantile)))
        };
        Percentiles {
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            exact: self.synthetic.is_none(),
        }
    }

    /// Statements from real histograms at or over `threshold_us` (to the
    /// histogram's precision: the whole bucket holding the threshold
    /// counts). Periods without a histogram are not counted.
    pub fn count_at_least(&self, threshold_us: u64) -> u64 {
        match &self.real {
            Some(h) if !h.is_empty() && h.max() >= threshold_us => {
                h.count_between(threshold_us, h.max())
            }
            _ => 0,
        }
    }
}

/// Adds `h` into `acc` (taking a copy of it when `acc` is empty); false when
/// it could not be merged.
fn add_into(acc: &mut Option<Histogram<u64>>, h: &Histogram<u64>) -> bool {
    match acc {
        None => {
            let mut own = h.clone();
            // Later periods may hold longer statements than this one's range.
            own.auto(true);
            *acc = Some(own);
            true
        }
        Some(a) => match a.add(h) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = ?e, "period histogram not merged");
                false
            }
        },
    }
}

/// A fresh histogram with the aggregator's range and precision (2 digits).
fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 2)
        .or_else(|_| Histogram::new(2))
        // Cannot fail: 2 significant digits is within hdrhistogram's 0..=5.
        .unwrap_or_else(|_| unreachable!("hdrhistogram rejects 2 significant digits"));
    h.auto(true);
    h
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
pub(crate) mod tests {
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

    use super::*;

    pub(crate) fn blob(values_us: &[(u64, u64)]) -> Vec<u8> {
        let mut h = Histogram::<u32>::new_with_bounds(1, HISTOGRAM_MAX_US, 2).expect("hist");
        for &(v, n) in values_us {
            h.record_n(v, n as u32).expect("record");
        }
        let mut out = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut out)
            .expect("serialize");
        out
    }

    #[test]
    fn merged_percentiles_are_those_of_all_values() {
        // Period 1: 90 statements at 1 ms; period 2: 10 at 50 ms.
        // Separately their p95s are 1 ms and 50 ms; together the p95 is 50 ms
        // (the 95th value is in the slow ten) and the p50 is 1 ms.
        let a = decode(&blob(&[(1_000, 90)])).expect("a");
        let b = decode(&blob(&[(50_000, 10)])).expect("b");
        let mut m = Merged::default();
        m.add(&a);
        m.add(&b);
        let p = m.percentiles();
        assert!(p.exact);
        let p50 = p.p50_ms.expect("p50");
        let p95 = p.p95_ms.expect("p95");
        assert!((p50 - 1.0).abs() < 0.01, "p50 {p50}");
        assert!((p95 - 50.0).abs() < 0.5, "p95 {p95}");
        assert_eq!(m.with_histogram, 100);
        assert_eq!(m.count_at_least(10_000), 10);
        assert_eq!(m.count_at_least(100_000), 0);
    }

    #[test]
    fn histograms_of_different_ranges_merge() {
        let small = decode(&blob(&[(100, 5)])).expect("small");
        let big = decode(&blob(&[(3_000_000_000, 5)])).expect("big");
        let mut m = Merged::default();
        m.add(&small);
        m.add(&big);
        assert_eq!(m.with_histogram, 10);
        let p99 = m.percentiles().p99_ms.expect("p99");
        assert!(p99 > 2_900_000.0, "p99 {p99}");
    }

    #[test]
    fn periods_without_histogram_use_their_percentiles() {
        let a = decode(&blob(&[(1_000, 100)])).expect("a");
        let mut row = crate::report::compute::tests::pattern("aa", 0, 100, 100.0);
        row.p50_ms = 20.0;
        row.p95_ms = 40.0;
        row.p99_ms = 60.0;
        row.max_ms = 80.0;
        let mut m = Merged::default();
        m.add(&a);
        m.add_fallback(&row);
        let p = m.percentiles();
        assert!(!p.exact);
        // 200 statements: 100 at 1 ms, 50 at 20, 45 at 40, 4 at 60, 1 at 80.
        let p95 = p.p95_ms.expect("p95");
        assert!((p95 - 40.0).abs() < 0.5, "p95 {p95}");
        // The stand-ins are not counted as slow statements.
        assert_eq!(m.count_at_least(10_000), 0);
        assert_eq!(m.with_histogram, 100);
    }

    #[test]
    fn garbage_blob_is_none() {
        assert!(decode(b"not a histogram").is_none());
        assert!(decode(&[]).is_none());
    }

    #[test]
    fn empty_merge_has_no_percentiles() {
        let m = Merged::default();
        assert_eq!(m.percentiles().p95_ms, None);
        assert_eq!(m.count_at_least(1), 0);
    }
}
