//! The typed shape of a report's JSON body ([`ReportBody`]), as stored in
//! `performance_reports.body` and read back by the HTML renderer and the
//! API, and the shape of a baseline's `data` ([`BaselineData`]) that the
//! report compares against.
//!
//! Durations are milliseconds, rates are fractions in 0..=1, times are UTC.
//! A figure that cannot be computed (no statements, no snapshots) is `null`.

use std::collections::BTreeMap;

use pgpulse_store::{Alert, Recommendation, Timestamp};
use serde::{Deserialize, Serialize};

/// Everything a report says, computed over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBody {
    /// One line naming the window.
    pub title: String,
    /// When it was generated.
    pub generated_at: Timestamp,
    /// Start of the window (inclusive).
    pub window_start: Timestamp,
    /// End of the window (exclusive).
    pub window_end: Timestamp,
    /// `scheduled` or `manual`.
    pub trigger: String,
    /// The slow-query threshold the slow figures use, ms.
    pub slow_threshold_ms: f64,
    /// Headline figures over the whole window.
    pub summary: Summary,
    /// One point per query-pattern period that has data, oldest first.
    pub periods: Vec<PeriodPoint>,
    /// The statements that cost the most.
    pub top_queries: TopQueries,
    /// Statements slower than in the baseline.
    pub regressions: Regressions,
    /// Alerts raised in the window.
    pub alerts: AlertsSection,
    /// Recommendations still open when the report was made.
    pub recommendations: RecommendationsSection,
}

/// Latency percentiles over a set of statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Whether every period had a histogram, so that the values come from
    /// merging them exactly (to the histogram's precision). When false,
    /// the periods without one contributed their own percentiles.
    pub exact: bool,
}

/// Headline figures of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Statements completed.
    pub statements: i64,
    /// Statements per second over the whole window.
    pub throughput_per_s: f64,
    /// Failed statements.
    pub errors: i64,
    /// `errors / statements`.
    pub error_rate: Option<f64>,
    /// Mean duration, ms (`total time / statements`).
    pub mean_ms: Option<f64>,
    /// Percentiles over all statements.
    pub latency: Percentiles,
    /// Distinct fingerprints seen.
    pub fingerprints: usize,
    /// Statements at or over the slow threshold, counted in the merged
    /// histogram (periods without a histogram are not counted).
    pub slow_statements: u64,
    /// Statements whose period had a histogram (the slow rate's base).
    pub statements_with_histogram: u64,
    /// `slow_statements / statements_with_histogram`.
    pub slow_rate: Option<f64>,
    /// Slow statements in the performance log (captured with plans).
    pub slow_logged: u64,
    /// Result-cache hit rate from the cache snapshots' counter deltas.
    pub cache_hit_rate: Option<f64>,
    /// Cache hits over the window (snapshot deltas).
    pub cache_hits: i64,
    /// Cache misses over the window (snapshot deltas).
    pub cache_misses: i64,
    /// Hit rate from the query patterns' own hit / miss counts.
    pub pattern_cache_hit_rate: Option<f64>,
    /// Pool figures from the pool snapshots.
    pub pool: PoolSummary,
}

/// Connection pool figures over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolSummary {
    /// Pool snapshots read.
    pub snapshots: usize,
    /// Mean of the snapshots' utilization, 0..=1.
    pub mean_utilization: Option<f64>,
    /// Highest utilization of any snapshot.
    pub max_utilization: Option<f64>,
    /// Most clients waiting in any snapshot.
    pub max_clients_waiting: i64,
    /// Mean of the snapshots' mean wait for a server, ms.
    pub mean_wait_ms: Option<f64>,
}

/// The figures of one period (one query-pattern period of the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodPoint {
    /// Start of the period.
    pub start: Timestamp,
    /// End of the period.
    pub end: Timestamp,
    /// Statements completed in it.
    pub statements: i64,
    /// Statements per second in it.
    pub throughput_per_s: f64,
    /// Failed statements.
    pub errors: i64,
    /// Mean duration, ms.
    pub mean_ms: Option<f64>,
    /// 95th percentile over all statements of the period, ms.
    pub p95_ms: Option<f64>,
    /// Cache hit rate from the snapshots taken in the period.
    pub cache_hit_rate: Option<f64>,
    /// Cache hit rate from the period's patterns.
    pub pattern_cache_hit_rate: Option<f64>,
    /// Mean pool utilization of the snapshots taken in the period.
    pub pool_utilization: Option<f64>,
}

/// One statement in a top list (summed over databases and users).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopQuery {
    /// Fingerprint (16 hex digits).
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// Executions.
    pub calls: i64,
    /// Sum of durations, ms.
    pub total_ms: f64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// 95th percentile over the window, ms.
    pub p95_ms: Option<f64>,
    /// Whether `p95_ms` comes from histograms only.
    pub p95_exact: bool,
    /// Failed executions.
    pub errors: i64,
}

/// The three top lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopQueries {
    /// Largest total time first.
    pub by_total_time: Vec<TopQuery>,
    /// Highest p95 first.
    pub by_p95: Vec<TopQuery>,
    /// Most calls first.
    pub by_calls: Vec<TopQuery>,
}

/// A statement whose p95 rose above the baseline's by the regression ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Fingerprint.
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// Executions in the window.
    pub calls: i64,
    /// p95 in the baseline, ms.
    pub baseline_p95_ms: f64,
    /// p95 in the window, ms.
    pub p95_ms: f64,
    /// `p95_ms / baseline_p95_ms`.
    pub ratio: f64,
    /// Mean in the baseline, ms.
    pub baseline_mean_ms: f64,
    /// Mean in the window, ms.
    pub mean_ms: f64,
}

/// The comparison with a baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Regressions {
    /// The baseline's name, when one was found.
    pub baseline: Option<String>,
    /// Start of the window the baseline was made from.
    pub baseline_window_start: Option<Timestamp>,
    /// End of that window.
    pub baseline_window_end: Option<Timestamp>,
    /// Why there is no comparison (no baseline, unreadable data).
    pub note: Option<String>,
    /// The ratio used.
    pub ratio_threshold: f64,
    /// The least calls a statement needs to be judged.
    pub min_calls: i64,
    /// Statements that regressed, worst ratio first.
    pub items: Vec<Regression>,
}

/// Alerts raised in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsSection {
    /// All alerts raised in the window.
    pub total: u64,
    /// Of which critical.
    pub critical: u64,
    /// Of which warnings.
    pub warning: u64,
    /// Of which informational.
    pub info: u64,
    /// The newest ones (at most the options' list limit).
    pub items: Vec<Alert>,
}

/// Recommendations still open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecommendationsSection {
    /// Open recommendations.
    pub total: u64,
    /// The newest ones (at most the options' list limit).
    pub items: Vec<Recommendation>,
}

/// The `data` of a stored baseline: per-fingerprint and global reference
/// figures. Produced by the advisor's baseline job, read by reports and
/// degradation checks. Unknown keys are ignored so that producers may add
/// figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineData {
    /// Per fingerprint (16 hex digits).
    #[serde(default)]
    pub fingerprints: BTreeMap<String, FingerprintBaseline>,
    /// Over all statements.
    #[serde(default)]
    pub global: GlobalBaseline,
}

/// One fingerprint's reference figures (percentiles from the merged period
/// histograms; `p50_ms`, `p99_ms` and `calls` were added by the baseline
/// job and default to 0 in older baselines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FingerprintBaseline {
    /// Median, ms.
    #[serde(default)]
    pub p50_ms: f64,
    /// 99th percentile, ms.
    #[serde(default)]
    pub p99_ms: f64,
    /// Executions in the baseline's window.
    #[serde(default)]
    pub calls: i64,
    /// 95th percentile, ms.
    #[serde(default)]
    pub p95_ms: f64,
    /// Mean duration, ms.
    #[serde(default)]
    pub mean_ms: f64,
    /// Executions per minute.
    #[serde(default)]
    pub calls_per_min: f64,
}

/// Reference figures over all statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalBaseline {
    /// Median, ms.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Statements per second over the window.
    #[serde(default)]
    pub throughput_per_s: Option<f64>,
    /// Statements in the window.
    #[serde(default)]
    pub calls: i64,
    /// 95th percentile, ms.
    #[serde(default)]
    pub p95_ms: Option<f64>,
    /// Mean duration, ms.
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// Executions per minute.
    #[serde(default)]
    pub calls_per_min: Option<f64>,
    /// `errors / calls`.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Result-cache hit rate.
    #[serde(default)]
    pub cache_hit_rate: Option<f64>,
}
