//! `performance_logs` and `query_patterns`: executed statements and the
//! per-period statistics of each normalized one, with their filters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

/// One executed statement: every slow one (with its plan) and a sample of
/// the others (`performance_logs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PerformanceLog {
    /// Row id.
    pub id: i64,
    /// When the statement started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub logged_at: Timestamp,
    /// Fingerprint of the normalized text.
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// Database name.
    pub database: String,
    /// User name.
    pub user_name: String,
    /// The client's `application_name`.
    pub application_name: String,
    /// How long it took.
    pub duration_ms: f64,
    /// Rows returned or affected.
    pub rows: i64,
    /// SQLSTATE when it failed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub error: Option<String>,
    /// Whether it passed the slow-query threshold.
    pub slow: bool,
    /// Cache outcome: `hit`, `miss`, `filled` or `bypass`.
    pub cache: String,
    /// `EXPLAIN (FORMAT JSON)` output, constants scrubbed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub plan: Option<Value>,
    /// One line about the plan's top node, or why there is no plan.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub plan_summary: Option<String>,
}

/// Which performance logs to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Time range on `logged_at`.
    pub window: Window,
    /// Only this fingerprint.
    pub fingerprint: Option<String>,
    /// Only this database.
    pub database: Option<String>,
    /// Only this user.
    pub user_name: Option<String>,
    /// Only statements at least this slow.
    pub min_duration_ms: Option<f64>,
    /// Only statements over the slow threshold.
    pub slow_only: bool,
    /// Which page (newest first).
    pub page: Page,
}

/// The statistics of one normalized statement for one (database, user)
/// over one period (`query_patterns`; one row per key and period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPattern {
    /// Row id.
    pub id: i64,
    /// Fingerprint of the normalized text.
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// Database name.
    pub database: String,
    /// User name.
    pub user_name: String,
    /// Start of the period (inclusive).
    pub period_start: Timestamp,
    /// End of the period (exclusive).
    pub period_end: Timestamp,
    /// Executions completed in the period.
    pub calls: i64,
    /// Rows returned or affected.
    pub rows: i64,
    /// Failed executions.
    pub errors: i64,
    /// Sum of durations.
    pub total_time_ms: f64,
    /// Mean duration.
    pub mean_ms: f64,
    /// Shortest duration.
    pub min_ms: f64,
    /// Longest duration.
    pub max_ms: f64,
    /// Median of the period.
    pub p50_ms: f64,
    /// 95th percentile of the period.
    pub p95_ms: f64,
    /// 99th percentile of the period.
    pub p99_ms: f64,
    /// Executions answered by the result cache.
    pub cache_hits: i64,
    /// Executions that looked in the cache and missed.
    pub cache_misses: i64,
    /// The period's latency histogram (HDR V2 + deflate, microseconds), so
    /// that percentiles over several periods can be merged exactly.
    #[serde(skip)]
    pub histogram: Option<Vec<u8>>,
}

/// How pattern summaries are ordered (largest first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PatternOrder {
    /// Sum of durations.
    #[default]
    TotalTime,
    /// Highest period p95.
    P95,
    /// Executions.
    Calls,
    /// Mean duration.
    Mean,
}

/// Which query patterns to summarize.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatternFilter {
    /// Periods starting in this window.
    pub window: Window,
    /// Only this fingerprint.
    pub fingerprint: Option<String>,
    /// Only this database.
    pub database: Option<String>,
    /// Order.
    pub order: PatternOrder,
    /// Which page.
    pub page: Page,
}

/// One fingerprint's statistics summed over the periods of a window (for
/// each database and user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatternSummary {
    /// Fingerprint of the normalized text.
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// Database name.
    pub database: String,
    /// User name.
    pub user_name: String,
    /// Start of the first period.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub first_period: Timestamp,
    /// End of the last period.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_period: Timestamp,
    /// Executions.
    pub calls: i64,
    /// Rows.
    pub rows: i64,
    /// Failed executions.
    pub errors: i64,
    /// Sum of durations.
    pub total_time_ms: f64,
    /// `total_time_ms / calls`.
    pub mean_ms: f64,
    /// Longest duration.
    pub max_ms: f64,
    /// The highest p95 of any period in the window (the worst period; exact
    /// window percentiles come from merging the histograms).
    pub p95_ms: f64,
    /// The highest p99 of any period in the window.
    pub p99_ms: f64,
    /// Cache hits.
    pub cache_hits: i64,
    /// Cache misses.
    pub cache_misses: i64,
}
