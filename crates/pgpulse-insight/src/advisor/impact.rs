//! [`measure_impact`]: the measured effect of an applied recommendation.
//! The affected statements (`details.fingerprints`) are compared over a
//! window before `applied_at` and the same length after it (cut at `now`),
//! from the store's pattern rows: calls and mean from the summed counts and
//! times, p95 from the merged period histograms (exact within the HDR
//! precision; rows without a histogram fall back to the worst period p95,
//! flagged `approximate`).

use std::time::Duration;

use pgpulse_store::{QueryPattern, Recommendation, Store, Timestamp, Window};
use serde::Serialize;

use super::error::AdvisorError;
use crate::patterns::merge_histograms;

/// Calls each side needs before a change is reported.
pub const MIN_CALLS: i64 = 10;

/// One side (before or after) of an impact measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactSide {
    /// The window measured.
    pub from: Timestamp,
    /// Its end (exclusive).
    pub to: Timestamp,
    /// Executions of the affected statements.
    pub calls: i64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// The p95 is the worst period's, not a merged one.
    pub approximate: bool,
}

/// The measured effect, as stored in the recommendation's `impact`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Impact {
    /// `measured`, or `not enough calls yet` (fewer than [`MIN_CALLS`](super::IMPACT_MIN_CALLS) on
    /// a side), or `no affected statements`.
    pub status: String,
    /// The fingerprints compared.
    pub fingerprints: Vec<String>,
    /// Before `applied_at`.
    pub before: ImpactSide,
    /// After `applied_at`.
    pub after: ImpactSide,
    /// Change of the p95, % (negative is faster); `None` unless measured.
    pub p95_change_pct: Option<f64>,
    /// Change of the mean, %.
    pub mean_change_pct: Option<f64>,
    /// When it was measured.
    pub measured_at: Timestamp,
}

/// Measures and stores (`set_recommendation_impact`) the impact of `rec`.
pub async fn measure_impact(
    store: &dyn Store,
    rec: &Recommendation,
    window: Duration,
    now: Timestamp,
) -> Result<Impact, AdvisorError> {
    let applied = rec.applied_at.ok_or(AdvisorError::NotApplied(rec.id))?;
    let span = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::days(365));
    let fingerprints: Vec<String> =
        serde_json::from_value(rec.rec.details["fingerprints"].clone()).unwrap_or_default();
    let before_w = Window::between(applied - span, applied);
    let after_w = Window::between(applied, (applied + span).min(now).max(applied));
    let (mut before_rows, mut after_rows) = (Vec::new(), Vec::new());
    for fp in &fingerprints {
        let keep = |r: &QueryPattern| r.database == rec.rec.database;
        before_rows.extend(
            store
                .patterns(before_w, Some(fp))
                .await?
                .into_iter()
                .filter(keep),
        );
        after_rows.extend(
            store
                .patterns(after_w, Some(fp))
                .await?
                .into_iter()
                .filter(keep),
        );
    }
    let before = side(&before_rows, before_w)?;
    let after = side(&after_rows, after_w)?;
    let pct = |b: f64, a: f64| {
        if b > 0.0 {
            Some((a - b) / b * 100.0)
        } else {
            None
        }
    };
    let (status, p95, mean) = if fingerprints.is_empty() {
        ("no affected statements", None, None)
    } else if before.calls < MIN_CALLS || after.calls < MIN_CALLS {
        ("not enough calls yet", None, None)
    } else {
        (
            "measured",
            pct(before.p95_ms, after.p95_ms),
            pct(before.mean_ms, after.mean_ms),
        )
    };
    let impact = Impact {
        status: status.into(),
        fingerprints,
        before,
        after,
        p95_change_pct: p95,
        mean_change_pct: mean,
        measured_at: now,
    };
    let value = serde_json::to_value(&impact).unwrap_or(serde_json::Value::Null);
    store.set_recommendation_impact(rec.id, &value, now).await?;
    Ok(impact)
}

fn side(rows: &[QueryPattern], w: Window) -> Result<ImpactSide, AdvisorError> {
    let calls: i64 = rows.iter().map(|r| r.calls).sum();
    let total: f64 = rows.iter().map(|r| r.total_time_ms).sum();
    let blobs: Vec<&[u8]> = rows.iter().filter_map(|r| r.histogram.as_deref()).collect();
    let approximate = blobs.len() != rows.len();
    let p95_ms = if approximate {
        rows.iter().map(|r| r.p95_ms).fold(0.0, f64::max)
    } else if rows.is_empty() {
        0.0
    } else {
        merge_histograms(&blobs)?.value_at_quantile(0.95) as f64 / 1000.0
    };
    Ok(ImpactSide {
        from: w.from.unwrap_or_default(),
        to: w.to.unwrap_or_default(),
        calls,
        mean_ms: if calls > 0 { total / calls as f64 } else { 0.0 },
        p95_ms,
        approximate,
    })
}
