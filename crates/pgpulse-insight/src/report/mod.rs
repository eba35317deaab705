//! Performance reports: what happened over a window (throughput, exact
//! latency percentiles from the merged period histograms, errors, slow
//! statements, cache and pool figures, top statements, regressions against
//! a baseline, alerts and open recommendations), as a JSON body and one
//! self-contained HTML page, stored in `performance_reports`.
//!
//! ```text
//! Store ──patterns, snapshots, logs, alerts, recommendations, baseline──►
//!   build.rs (reads) ─► compute.rs (sums, merges) ─► ReportBody
//!   ─► html.rs + svg.rs (page) ─► Store::insert_report
//! ```
//!
//! The scheduler's job is a thin wrapper the integrator writes around
//! [`generate_report_for_last`].

mod body;
mod build;
pub(crate) mod compute;
pub(crate) mod hist;
mod html;
mod svg;

use std::time::Duration;

use pgpulse_store::{Report, Store, Timestamp, Window};

pub use body::{
    AlertsSection, BaselineData, FingerprintBaseline, GlobalBaseline, Percentiles, PeriodPoint,
    PoolSummary, RecommendationsSection, Regression, Regressions, ReportBody, Summary, TopQueries,
    TopQuery,
};
pub use build::build_report;
pub use html::{render_html, render_report};

use crate::error::InsightError;

/// What a report computes and how much it lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// A statement at least this long is slow. Default 1,000 ms
    /// (`PERFORMANCE_SLOW_QUERY_THRESHOLD`).
    pub slow_threshold: Duration,
    /// The baseline to compare with; `None` means `rolling`. Default `None`.
    pub baseline: Option<String>,
    /// A statement regressed when its p95 is above the baseline's p95 times
    /// this. Default 1.5.
    pub regression_ratio: f64,
    /// Statements with fewer calls in the window are not judged. Default 20.
    pub min_calls: i64,
    /// Rows in each top list. Default 10.
    pub top_n: usize,
    /// Most alerts and recommendations listed (all are counted). Default 100.
    pub list_limit: u32,
    /// `scheduled` or `manual`, stored with the report. Default `manual`.
    pub trigger: String,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            slow_threshold: Duration::from_millis(1000),
            baseline: None,
            regression_ratio: 1.5,
            min_calls: 20,
            top_n: 10,
            list_limit: 100,
            trigger: "manual".to_string(),
        }
    }
}

/// Builds, renders and stores the report of `window` (both ends needed);
/// returns the stored report with its id.
pub async fn generate_report(
    store: &dyn Store,
    window: Window,
    options: &ReportOptions,
    now: Timestamp,
) -> Result<Report, InsightError> {
    let (Some(start), Some(end)) = (window.from, window.to) else {
        return Err(InsightError::Report(
            "a report needs a window with both ends".to_string(),
        ));
    };
    let body = build::build_body(store, start, end, &options.trigger, options, now).await?;
    let html = render_html(&body);
    let mut report = build::to_report(&body, now)?;
    report.html = html;
    report.summary.id = store.insert_report(&report).await?;
    Ok(report)
}

/// [`generate_report`] over the `period` that ends at `now` (what a
/// scheduled job calls: `generate_report_for_last(store, 1 h, ..)` every
/// hour).
pub async fn generate_report_for_last(
    store: &dyn Store,
    period: Duration,
    options: &ReportOptions,
    now: Timestamp,
) -> Result<Report, InsightError> {
    let period = chrono::Duration::from_std(period)
        .map_err(|_| InsightError::Report("report period out of range".to_string()))?;
    let start = now
        .checked_sub_signed(period)
        .ok_or_else(|| InsightError::Report("report period out of range".to_string()))?;
    generate_report(store, Window::between(start, now), options, now).await
}
