//! Building a report: reading the window's rows from the store and turning
//! them into a [`ReportBody`] (the arithmetic is in `compute.rs`).

use pgpulse_store::{
    AlertFilter, LogFilter, Page, RecommendationFilter, RecommendationStatus, Report,
    ReportSummary, Severity, Store, Timestamp, Window,
};

use super::ReportOptions;
use super::body::{
    AlertsSection, BaselineData, RecommendationsSection, Regressions, ReportBody, Summary, TopQuery,
};
use super::compute::{
    PatternSums, cache_deltas, fingerprint_rows, period_points, pool_summary, ratio, regressions,
    seconds, top_queries,
};
use crate::error::InsightError;

/// Builds the report of `[window_start, window_end)`: its metadata and JSON
/// body (a serialized [`ReportBody`]); `html` is left empty (see
/// [`super::render_html`]). Nothing is stored.
pub async fn build_report(
    store: &dyn Store,
    window_start: Timestamp,
    window_end: Timestamp,
    trigger: &str,
    options: &ReportOptions,
    now: Timestamp,
) -> Result<Report, InsightError> {
    let body = build_body(store, window_start, window_end, trigger, options, now).await?;
    to_report(&body, now)
}

/// The report of a body (without HTML, id 0).
pub(crate) fn to_report(body: &ReportBody, now: Timestamp) -> Result<Report, InsightError> {
    let json = serde_json::to_value(body)
        .map_err(|e| InsightError::Report(format!("body does not serialize: {e}")))?;
    Ok(Report {
        summary: ReportSummary {
            id: 0,
            created_at: now,
            window_start: body.window_start,
            window_end: body.window_end,
            trigger: body.trigger.clone(),
            title: body.title.clone(),
        },
        body: json,
        html: String::new(),
    })
}

/// Reads the window's rows and computes the typed body.
pub(crate) async fn build_body(
    store: &dyn Store,
    window_start: Timestamp,
    window_end: Timestamp,
    trigger: &str,
    options: &ReportOptions,
    now: Timestamp,
) -> Result<ReportBody, InsightError> {
    if window_end <= window_start {
        return Err(InsightError::Report(format!(
            "window ends ({window_end}) before it starts ({window_start})"
        )));
    }
    let window = Window::between(window_start, window_end);
    let sums = read_patterns(store, window_start, window_end).await?;
    let snapshots = store.cache_snapshots(window).await?;
    let pools = store.pool_stats(window).await?;
    let slow_logged = store
        .logs(&LogFilter {
            window,
            slow_only: true,
            page: Page {
                limit: 1,
                offset: 0,
            },
            ..LogFilter::default()
        })
        .await?
        .total;

    let deltas = cache_deltas(&snapshots);
    let (hits, misses) = deltas.iter().fold((0, 0), |(h, m), d| (h + d.1, m + d.2));
    let threshold_us = options.slow_threshold.as_micros().min(u128::from(u64::MAX)) as u64;
    let slow_statements = sums.all.merged.count_at_least(threshold_us);
    let all = &sums.all;
    let summary = Summary {
        statements: all.calls,
        throughput_per_s: ratio(all.calls as f64, seconds(window_start, window_end)).unwrap_or(0.0),
        errors: all.errors,
        error_rate: ratio(all.errors as f64, all.calls as f64),
        mean_ms: all.mean_ms(),
        latency: all.merged.percentiles(),
        fingerprints: sums.fingerprints.len(),
        slow_statements,
        statements_with_histogram: all.merged.with_histogram,
        slow_rate: ratio(slow_statements as f64, all.merged.with_histogram as f64),
        slow_logged,
        cache_hit_rate: ratio(hits as f64, (hits + misses) as f64),
        cache_hits: hits,
        cache_misses: misses,
        pattern_cache_hit_rate: all.cache_hit_rate(),
        pool: pool_summary(&pools),
    };
    let rows = fingerprint_rows(&sums);
    Ok(ReportBody {
        title: title(window_start, window_end),
        generated_at: now,
        window_start,
        window_end,
        trigger: trigger.to_string(),
        slow_threshold_ms: options.slow_threshold.as_secs_f64() * 1000.0,
        summary,
        periods: period_points(&sums, &deltas, &pools),
        top_queries: top_queries(&rows, options.top_n),
        regressions: compare_with_baseline(store, &rows, options).await?,
        alerts: alerts(store, window, options.list_limit).await?,
        recommendations: open_recommendations(store, options.list_limit).await?,
    })
}

/// How much of the window is read at once: bounds the rows (and period
/// histograms) held in memory for long windows.
const READ_SLICE: chrono::Duration = chrono::Duration::hours(1);

/// Reads and sums the window's pattern rows one slice at a time (by period
/// start, so that each period is read whole in one slice).
async fn read_patterns(
    store: &dyn Store,
    start: Timestamp,
    end: Timestamp,
) -> Result<PatternSums, InsightError> {
    let mut sums = PatternSums::default();
    let mut from = start;
    while from < end {
        let to = (from + READ_SLICE).min(end);
        sums.add_rows(&store.patterns(Window::between(from, to), None).await?);
        from = to;
    }
    Ok(sums)
}

/// `Performance report 2026-01-05 10:00 – 11:00 UTC` (the date repeated
/// when the window spans days).
fn title(start: Timestamp, end: Timestamp) -> String {
    let end_fmt = if start.date_naive() == end.date_naive() {
        "%H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    format!(
        "Performance report {} – {} UTC",
        start.format("%Y-%m-%d %H:%M"),
        end.format(end_fmt)
    )
}

/// Regressions against the options' baseline (or `rolling`).
async fn compare_with_baseline(
    store: &dyn Store,
    rows: &[TopQuery],
    options: &ReportOptions,
) -> Result<Regressions, InsightError> {
    let name = options.baseline.as_deref().unwrap_or("rolling");
    let mut out = Regressions {
        ratio_threshold: options.regression_ratio,
        min_calls: options.min_calls,
        ..Regressions::default()
    };
    let Some(baseline) = store.baseline(name).await? else {
        out.note = Some(format!("no baseline named '{name}' yet"));
        return Ok(out);
    };
    out.baseline = Some(baseline.name.clone());
    out.baseline_window_start = Some(baseline.window_start);
    out.baseline_window_end = Some(baseline.window_end);
    match serde_json::from_value::<BaselineData>(baseline.data) {
        Ok(data) => {
            out.items = regressions(rows, &data, options.regression_ratio, options.min_calls);
        }
        Err(e) => {
            tracing::warn!(baseline = name, error = %e, "baseline data unreadable");
            out.note = Some(format!("baseline '{name}' has unreadable data"));
        }
    }
    Ok(out)
}

/// Alerts raised in the window: counts per severity and the newest ones.
async fn alerts(
    store: &dyn Store,
    window: Window,
    limit: u32,
) -> Result<AlertsSection, InsightError> {
    let count = |min_severity: Option<Severity>| AlertFilter {
        min_severity,
        window,
        page: Page {
            limit: 1,
            offset: 0,
        },
        ..AlertFilter::default()
    };
    let total = store.alerts(&count(None)).await?.total;
    let at_least_warning = store.alerts(&count(Some(Severity::Warning))).await?.total;
    let critical = store.alerts(&count(Some(Severity::Critical))).await?.total;
    let items = store
        .alerts(&AlertFilter {
            window,
            page: Page { limit, offset: 0 },
            ..AlertFilter::default()
        })
        .await?
        .items;
    Ok(AlertsSection {
        total,
        critical,
        warning: at_least_warning.saturating_sub(critical),
        info: total.saturating_sub(at_least_warning),
        items,
    })
}

/// Recommendations still open, newest first.
async fn open_recommendations(
    store: &dyn Store,
    limit: u32,
) -> Result<RecommendationsSection, InsightError> {
    let page = store
        .recommendations(&RecommendationFilter {
            status: Some(RecommendationStatus::Open),
            page: Page { limit, offset: 0 },
            ..RecommendationFilter::default()
        })
        .await?;
    Ok(RecommendationsSection {
        total: page.total,
        items: page.items,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn titles() {
        let a = Utc
            .with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
            .single()
            .expect("a");
        let b = Utc
            .with_ymd_and_hms(2026, 1, 5, 11, 0, 0)
            .single()
            .expect("b");
        let c = Utc
            .with_ymd_and_hms(2026, 1, 6, 10, 0, 0)
            .single()
            .expect("c");
        assert_eq!(
            title(a, b),
            "Performance report 2026-01-05 10:00 – 11:00 UTC"
        );
        assert_eq!(
            title(a, c),
            "Performance report 2026-01-05 10:00 – 2026-01-06 10:00 UTC"
        );
    }
}
