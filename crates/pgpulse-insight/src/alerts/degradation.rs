//! The degradation detector: a statement's p95, minute by minute from the
//! live series, against its baseline. Robust by construction: only
//! fingerprints present in the baseline are judged, only complete minutes
//! count, each of the last `Y` minutes must have run and be above the
//! baseline's p95 times the ratio, and together they need a minimum of
//! calls. So a single slow minute, a statement that ran twice, or a new
//! statement never raise anything.

use std::time::Duration;

use serde::Serialize;

use super::rules::AlertRules;
use crate::insight::Insight;
use crate::report::{BaselineData, FingerprintBaseline};
use crate::series::MinuteBucket;

/// A statement whose p95 stayed above its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regressed {
    /// Fingerprint (16 hex digits).
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// The baseline's p95, ms.
    pub baseline_p95_ms: f64,
    /// The lowest minute p95 of the window, ms (the level it stayed above).
    pub p95_ms: f64,
    /// The highest minute p95 of the window, ms.
    pub max_p95_ms: f64,
    /// `p95_ms / baseline_p95_ms`.
    pub ratio: f64,
    /// Calls over the window.
    pub calls: u64,
    /// Minutes judged.
    pub minutes: u32,
}

/// Judges minute series against a baseline (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegradationDetector {
    /// p95 above the baseline's times this is slow.
    pub ratio: f64,
    /// Complete minutes in a row that must all be slow.
    pub minutes: u32,
    /// Calls those minutes need together.
    pub min_calls: u64,
}

impl DegradationDetector {
    /// The detector of the rules' `regression_*` settings.
    pub fn from_rules(rules: &AlertRules) -> Self {
        DegradationDetector {
            ratio: rules.regression_ratio,
            minutes: rules.regression_minutes(),
            min_calls: rules.regression_min_calls,
        }
    }

    /// Judges one fingerprint. `series` is oldest first and ends with the
    /// current, still open minute (as [`Insight::series`] returns it), which
    /// is not judged.
    pub fn judge(
        &self,
        fingerprint: &str,
        query: &str,
        base: &FingerprintBaseline,
        series: &[MinuteBucket],
    ) -> Option<Regressed> {
        if base.p95_ms <= 0.0 || self.minutes == 0 {
            return None;
        }
        let complete = series.split_last().map(|(_, rest)| rest).unwrap_or(&[]);
        let n = self.minutes as usize;
        let window = complete.get(complete.len().checked_sub(n)?..)?;
        let threshold = base.p95_ms * self.ratio;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        if !window.iter().all(|b| b.calls > 0 && ms(b.p95) > threshold) {
            return None;
        }
        let calls: u64 = window.iter().map(|b| b.calls).sum();
        if calls < self.min_calls {
            return None;
        }
        let low = window
            .iter()
            .map(|b| ms(b.p95))
            .fold(f64::INFINITY, f64::min);
        let high = window.iter().map(|b| ms(b.p95)).fold(0.0, f64::max);
        Some(Regressed {
            fingerprint: fingerprint.to_string(),
            query: query.to_string(),
            baseline_p95_ms: base.p95_ms,
            p95_ms: low,
            max_p95_ms: high,
            ratio: low / base.p95_ms,
            calls,
            minutes: self.minutes,
        })
    }

    /// Every statement of the live statistics that regressed against
    /// `baseline`, worst ratio first.
    pub fn detect(&self, insight: &Insight, baseline: &BaselineData) -> Vec<Regressed> {
        if baseline.fingerprints.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<Regressed> = insight
            .recent_series(self.minutes.saturating_add(1))
            .into_iter()
            .filter_map(|(fp, query, series)| {
                let key = fp.to_string();
                let base = baseline.fingerprints.get(&key)?;
                self.judge(&key, &query, base, &series)
            })
            .collect();
        out.sort_by(|a, b| {
            b.ratio
                .total_cmp(&a.ratio)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn minute(i: u64, calls: u64, p95_ms: u64) -> MinuteBucket {
        MinuteBucket {
            minute: UNIX_EPOCH + Duration::from_secs(i * 60),
            calls,
            total_time: Duration::from_millis(calls * p95_ms),
            errors: 0,
            p95: Duration::from_millis(p95_ms),
        }
    }

    fn base() -> FingerprintBaseline {
        FingerprintBaseline {
            p95_ms: 10.0,
            mean_ms: 5.0,
            calls_per_min: 10.0,
            ..FingerprintBaseline::default()
        }
    }

    fn detector() -> DegradationDetector {
        DegradationDetector::from_rules(&AlertRules::default())
    }

    /// `p95s` for the complete minutes, then an open minute.
    fn series(p95s: &[(u64, u64)]) -> Vec<MinuteBucket> {
        let mut s: Vec<_> = p95s
            .iter()
            .enumerate()
            .map(|(i, &(calls, p))| minute(i as u64, calls, p))
            .collect();
        s.push(minute(p95s.len() as u64, 1, 1));
        s
    }

    #[test]
    fn a_sustained_regression_is_found() {
        let s = series(&[(10, 9), (10, 30), (10, 31), (10, 40), (10, 32), (10, 33)]);
        let r = detector()
            .judge("fp", "SELECT $1", &base(), &s)
            .expect("regressed");
        assert_eq!((r.calls, r.minutes), (50, 5));
        assert_eq!((r.p95_ms, r.max_p95_ms), (30.0, 40.0));
        assert!((r.ratio - 3.0).abs() < 1e-9);
    }

    #[test]
    fn one_slow_minute_is_not_a_regression() {
        let s = series(&[(10, 10), (10, 12), (10, 90), (10, 11), (10, 10)]);
        assert!(detector().judge("fp", "q", &base(), &s).is_none());
        // Slow but for four minutes only.
        let s = series(&[(10, 10), (10, 30), (10, 30), (10, 30), (10, 30)]);
        assert!(detector().judge("fp", "q", &base(), &s).is_none());
        // Slow while the open minute is fast: the open minute is ignored
        // either way, and four complete minutes are not enough.
        let s = series(&[(10, 30), (10, 30), (10, 30), (10, 30)]);
        assert!(detector().judge("fp", "q", &base(), &s).is_none());
    }

    #[test]
    fn too_few_calls_or_a_silent_minute_are_not_judged() {
        let s = series(&[(3, 30), (3, 30), (3, 30), (3, 30), (3, 30)]);
        assert!(
            detector().judge("fp", "q", &base(), &s).is_none(),
            "15 calls"
        );
        let s = series(&[(10, 30), (10, 30), (0, 0), (10, 30), (10, 30)]);
        assert!(detector().judge("fp", "q", &base(), &s).is_none(), "gap");
        // Exactly at 1.5 times is not above it.
        let s = series(&[(10, 15), (10, 15), (10, 15), (10, 15), (10, 15)]);
        assert!(detector().judge("fp", "q", &base(), &s).is_none());
        let zero = FingerprintBaseline::default();
        let s = series(&[(10, 30), (10, 30), (10, 30), (10, 30), (10, 30)]);
        assert!(detector().judge("fp", "q", &zero, &s).is_none());
    }
}
