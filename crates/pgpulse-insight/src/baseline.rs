//! Baselines: the reference figures of a window, per fingerprint (p50, p95,
//! p99 from the merged period histograms, mean, calls per minute) and over
//! all statements (the same plus throughput, error rate and the result
//! cache's hit rate from its snapshots' counter deltas), stored as a
//! [`Baseline`] whose `data` is a [`BaselineData`]. The rolling baseline
//! (`rolling`, the last 7 days by default) is the one alerts and reports
//! compare with; [`refresh_rolling_baseline`] replaces it.

use std::time::Duration;

use pgpulse_store::{Baseline, Store, Timestamp, Window};
use serde::{Deserialize, Serialize};

use crate::error::InsightError;
use crate::report::compute::{PatternSums, cache_deltas, ratio, seconds};
use crate::report::{BaselineData, FingerprintBaseline, GlobalBaseline};

/// The name of the rolling baseline.
pub const ROLLING: &str = "rolling";

/// The rolling baseline's default span: 7 days.
pub const DEFAULT_ROLLING_SPAN: Duration = Duration::from_secs(7 * 24 * 3600);

/// How much of the window is read at once (bounds the rows in memory; each
/// period is read whole in one slice because slices cut on period start).
const READ_SLICE: chrono::Duration = chrono::Duration::hours(1);

/// The thresholds stored with a baseline (what comparisons against it use).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineThresholds {
    /// A statement regressed when its p95 is above the baseline's times
    /// this. Default 1.5.
    pub regression_ratio: f64,
    /// Statements with fewer calls are not judged. Default 20.
    pub min_calls: i64,
}

impl Default for BaselineThresholds {
    fn default() -> Self {
        BaselineThresholds {
            regression_ratio: 1.5,
            min_calls: 20,
        }
    }
}

/// The reference figures of `[start, end)` from the store's pattern rows
/// and cache snapshots (nothing is stored).
pub async fn baseline_data(
    store: &dyn Store,
    start: Timestamp,
    end: Timestamp,
) -> Result<BaselineData, InsightError> {
    if end <= start {
        return Err(InsightError::Analysis(format!(
            "baseline window ends ({end}) before it starts ({start})"
        )));
    }
    let mut sums = PatternSums::default();
    let mut from = start;
    while from < end {
        let to = (from + READ_SLICE).min(end);
        sums.add_rows(&store.patterns(Window::between(from, to), None).await?);
        from = to;
    }
    let minutes = seconds(start, end) / 60.0;
    let fingerprints = sums
        .fingerprints
        .iter()
        .filter(|(_, g)| g.calls > 0)
        .map(|(fp, g)| {
            let p = g.merged.percentiles();
            let fb = FingerprintBaseline {
                p50_ms: p.p50_ms.unwrap_or(0.0),
                p95_ms: p.p95_ms.unwrap_or(0.0),
                p99_ms: p.p99_ms.unwrap_or(0.0),
                mean_ms: g.mean_ms().unwrap_or(0.0),
                calls: g.calls,
                calls_per_min: ratio(g.calls as f64, minutes).unwrap_or(0.0),
            };
            (fp.clone(), fb)
        })
        .collect();
    let snapshots = store.cache_snapshots(Window::between(start, end)).await?;
    let (hits, misses) = cache_deltas(&snapshots)
        .iter()
        .fold((0i64, 0i64), |(h, m), d| (h + d.1, m + d.2));
    let all = &sums.all;
    let p = all.merged.percentiles();
    let global = GlobalBaseline {
        p50_ms: p.p50_ms,
        p95_ms: p.p95_ms,
        p99_ms: p.p99_ms,
        mean_ms: all.mean_ms(),
        calls: all.calls,
        calls_per_min: ratio(all.calls as f64, minutes),
        throughput_per_s: ratio(all.calls as f64, seconds(start, end)),
        error_rate: ratio(all.errors as f64, all.calls as f64),
        cache_hit_rate: ratio(hits as f64, (hits + misses) as f64),
    };
    Ok(BaselineData {
        fingerprints,
        global,
    })
}

/// Computes the baseline of `window` (both ends needed) and saves it as
/// `name` (a rolling baseline replaces the rolling one of that name; a
/// name taken otherwise is the store's `Conflict`). Returns the stored row.
pub async fn make_baseline(
    store: &dyn Store,
    name: &str,
    window: Window,
    rolling: bool,
    thresholds: &BaselineThresholds,
    now: Timestamp,
) -> Result<Baseline, InsightError> {
    let (Some(start), Some(end)) = (window.from, window.to) else {
        return Err(InsightError::Analysis(
            "a baseline needs a window with both ends".to_string(),
        ));
    };
    let data = baseline_data(store, start, end).await?;
    let json = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| InsightError::Analysis(format!("baseline does not serialize: {e}")))
    };
    let baseline = Baseline {
        id: 0,
        name: name.to_string(),
        created_at: now,
        window_start: start,
        window_end: end,
        rolling,
        data: json(serde_json::to_value(&data))?,
        thresholds: json(serde_json::to_value(thresholds))?,
    };
    Ok(store.save_baseline(&baseline).await?)
}

/// Recomputes the rolling baseline over the `span` that ends at `now` and
/// replaces the stored one. When the span holds no statement at all (a new
/// install, a long outage) nothing is saved and the previous baseline is
/// kept: `None`.
pub async fn refresh_rolling_baseline(
    store: &dyn Store,
    now: Timestamp,
    span: Duration,
) -> Result<Option<Baseline>, InsightError> {
    let span = chrono::Duration::from_std(span)
        .map_err(|_| InsightError::Analysis("baseline span out of range".to_string()))?;
    let start = now
        .checked_sub_signed(span)
        .ok_or_else(|| InsightError::Analysis("baseline span out of range".to_string()))?;
    let any = store
        .pattern_summaries(&pgpulse_store::PatternFilter {
            window: Window::between(start, now),
            page: pgpulse_store::Page {
                limit: 1,
                offset: 0,
            },
            ..Default::default()
        })
        .await?;
    if any.total == 0 {
        return Ok(None);
    }
    let b = make_baseline(
        store,
        ROLLING,
        Window::between(start, now),
        true,
        &BaselineThresholds::default(),
        now,
    )
    .await?;
    Ok(Some(b))
}
