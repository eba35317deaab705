//! The rows of the ten performance tables (plus job runs and the audit log),
//! as the rest of pgpulse reads and writes them, and the filters the API
//! uses. Both backends map these types one to one onto their columns.
//!
//! Conventions: times are UTC; durations are milliseconds as `f64` (the API
//! shows them as they are); fingerprints are 16 lowercase hex digits, as
//! `SHOW QUERIES` prints them; query texts are normalized (`$n` for
//! constants), never raw. `id` is 0 on a row not yet stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A point in time, UTC.
pub type Timestamp = DateTime<Utc>;

/// A page request: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Rows per page (the API caps it at 1,000).
    pub limit: u32,
    /// Rows skipped.
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 100,
            offset: 0,
        }
    }
}

/// One page of rows and the number of rows matching the filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paged<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Rows matching the filter, over all pages.
    pub total: u64,
}

/// A half-open time window `[from, to)`; a missing end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start.
    pub from: Option<Timestamp>,
    /// Exclusive end.
    pub to: Option<Timestamp>,
}

impl Window {
    /// The window `[from, to)`.
    pub fn between(from: Timestamp, to: Timestamp) -> Window {
        Window {
            from: Some(from),
            to: Some(to),
        }
    }
}

// ---------------------------------------------------------------------------
// performance_logs

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

// ---------------------------------------------------------------------------
// query_patterns

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

// ---------------------------------------------------------------------------
// performance_alerts

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

/// Where an alert is in its lifecycle: open → acknowledged → resolved
/// (an open alert may also resolve itself when its condition clears).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised and not yet seen.
    Open,
    /// Seen by someone; the condition may still hold.
    Acknowledged,
    /// The condition cleared (or someone closed it).
    Resolved,
}

/// An alert to raise; deduplicated by `dedupe_key` against alerts not yet
/// resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlert {
    /// The rule that raised it (`slow_query`, `p95_regression`, ...).
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Equal keys are one alert while it is not resolved.
    pub dedupe_key: String,
    /// One line for lists.
    pub title: String,
    /// What happened and what to look at.
    pub message: String,
    /// The statement concerned, if any.
    pub fingerprint: Option<String>,
    /// Rule-specific figures.
    pub details: Value,
}

/// A stored alert (`performance_alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Row id.
    pub id: i64,
    /// When it was first raised.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When its condition was last seen.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen_at: Timestamp,
    /// How many times its condition was seen while it was not resolved.
    pub occurrences: i64,
    /// The rule that raised it.
    pub rule: String,
    /// Severity (the highest seen while it was not resolved).
    pub severity: Severity,
    /// Deduplication key.
    pub dedupe_key: String,
    /// Lifecycle state.
    pub status: AlertStatus,
    /// One line for lists.
    pub title: String,
    /// Details for people (the latest occurrence's).
    pub message: String,
    /// The statement concerned, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub fingerprint: Option<String>,
    /// Rule-specific figures (the latest occurrence's).
    pub details: Value,
    /// Who acknowledged it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub acknowledged_by: Option<String>,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub acknowledged_at: Option<Timestamp>,
    /// Their comment.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ack_comment: Option<String>,
    /// When it was resolved.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub resolved_at: Option<Timestamp>,
}

/// Which alerts to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertFilter {
    /// Only this status.
    pub status: Option<AlertStatus>,
    /// Only at least this severity.
    pub min_severity: Option<Severity>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Raised in this window.
    pub window: Window,
    /// Which page (newest first).
    pub page: Page,
}

// ---------------------------------------------------------------------------
// database_statistics and index_usage_stats

/// One collection of server-wide statistics for one database
/// (`database_statistics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatistics {
    /// Row id.
    pub id: i64,
    /// When it was collected.
    pub collected_at: Timestamp,
    /// Database name.
    pub database: String,
    /// `pg_database_size`.
    pub size_bytes: i64,
    /// Committed transactions since the stats reset (`pg_stat_database`).
    pub xact_commit: i64,
    /// Rolled-back transactions.
    pub xact_rollback: i64,
    /// Buffer hits.
    pub blks_hit: i64,
    /// Blocks read from disk.
    pub blks_read: i64,
    /// `blks_hit / (blks_hit + blks_read)`, 0..=1.
    pub buffer_hit_ratio: f64,
    /// Deadlocks detected.
    pub deadlocks: i64,
    /// Bytes written to temporary files.
    pub temp_bytes: i64,
    /// Connections by state from `pg_stat_activity` (`{"active": 3, ...}`).
    pub connections: Value,
    /// Transactions open longer than the long-transaction threshold.
    pub long_running_transactions: i64,
    /// Sessions waiting for a lock.
    pub lock_waits: i64,
    /// Dead tuples over all user tables.
    pub dead_tuples: i64,
    /// Estimated bloat over all user tables, bytes.
    pub bloat_bytes: i64,
    /// Per table: size, index size, live and dead tuples, last (auto)vacuum.
    pub tables: Value,
}

/// One index as `pg_stat_user_indexes` saw it at one collection
/// (`index_usage_stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexUsage {
    /// Row id.
    pub id: i64,
    /// When it was collected.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub collected_at: Timestamp,
    /// Database name.
    pub database: String,
    /// Schema name.
    pub schema_name: String,
    /// Table name.
    pub table_name: String,
    /// Index name.
    pub index_name: String,
    /// Index scans since the stats reset.
    pub idx_scan: i64,
    /// Index entries returned.
    pub idx_tup_read: i64,
    /// Live rows fetched.
    pub idx_tup_fetch: i64,
    /// Size of the index.
    pub size_bytes: i64,
    /// Size of its table.
    pub table_size_bytes: i64,
    /// Whether it is unique.
    pub is_unique: bool,
    /// Whether it backs the primary key.
    pub is_primary: bool,
    /// `pg_index.indisvalid` (false after a failed concurrent build).
    pub is_valid: bool,
    /// Key columns (or expressions) in order.
    pub columns: Vec<String>,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// When the database's statistics were last reset.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub stats_reset: Option<Timestamp>,
}

// ---------------------------------------------------------------------------
// cache_performance and connection_pool_stats

/// The result cache's counters at one moment (`cache_performance`). The
/// counters are cumulative since pgpulse started; rates come from two rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheSnapshot {
    /// Row id.
    pub id: i64,
    /// When it was taken.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub taken_at: Timestamp,
    /// The instance that took it (several may share a store).
    pub instance: String,
    /// Lookups answered from the cache.
    pub hits: i64,
    /// Lookups that missed.
    pub misses: i64,
    /// `hits / (hits + misses)` since the previous snapshot, 0..=1.
    pub hit_rate: f64,
    /// Entries held.
    pub entries: i64,
    /// Bytes held.
    pub bytes: i64,
    /// Entries evicted.
    pub evictions: i64,
    /// Entries filled.
    pub fills: i64,
    /// Invalidations.
    pub invalidations: i64,
    /// Statements refused.
    pub refusals: i64,
    /// Per table, per fingerprint and refusal reasons.
    pub details: Value,
}

/// One pool's state at one moment (`connection_pool_stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolStat {
    /// Row id.
    pub id: i64,
    /// When it was taken.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub taken_at: Timestamp,
    /// The instance that took it.
    pub instance: String,
    /// Database of the pool.
    pub database: String,
    /// User of the pool.
    pub user_name: String,
    /// `session` or `transaction`.
    pub mode: String,
    /// Configured size.
    pub pool_size: i64,
    /// Clients linked to a server.
    pub clients_active: i64,
    /// Clients waiting for a server.
    pub clients_waiting: i64,
    /// Servers linked to a client.
    pub servers_active: i64,
    /// Servers idle in the pool.
    pub servers_idle: i64,
    /// Servers in use / pool size, 0..=1.
    pub utilization: f64,
    /// Mean wait for a server since the previous snapshot.
    pub avg_wait_ms: f64,
    /// Longest current wait.
    pub max_wait_ms: f64,
    /// Transactions (cumulative).
    pub transactions: i64,
    /// Queries (cumulative).
    pub queries: i64,
}

// ---------------------------------------------------------------------------
// performance_reports

/// A report's metadata (`performance_reports` without the body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportSummary {
    /// Row id.
    pub id: i64,
    /// When it was generated.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Start of the window it covers.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub window_start: Timestamp,
    /// End of the window.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub window_end: Timestamp,
    /// `scheduled` or `manual`.
    pub trigger: String,
    /// One line.
    pub title: String,
}

/// A whole report: its metadata, JSON body and HTML rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// Metadata.
    #[serde(flatten)]
    pub summary: ReportSummary,
    /// The report's figures.
    pub body: Value,
    /// The self-contained HTML page.
    #[serde(skip)]
    pub html: String,
}

// ---------------------------------------------------------------------------
// optimization_recommendations

/// A recommendation's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecommendationStatus {
    /// Proposed, not acted on.
    Open,
    /// Implemented by pgpulse.
    Applied,
    /// Implementing it failed.
    Failed,
    /// Dismissed by an admin, or no longer true.
    Dismissed,
}

/// A recommendation to store; deduplicated by `dedupe_key` against open
/// ones (the stored one is refreshed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRecommendation {
    /// `missing_index`, `unused_index`, `duplicate_index`, `invalid_index`,
    /// `cache_candidate`, `pool_size`, `vacuum`.
    pub kind: String,
    /// Equal keys are one recommendation while it is open.
    pub dedupe_key: String,
    /// Database concerned.
    pub database: String,
    /// One line.
    pub title: String,
    /// Why, with the evidence.
    pub rationale: String,
    /// What implementing it runs, if it is a statement.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub statement: Option<String>,
    /// 0..=1: how sure the advisor is.
    pub confidence: f64,
    /// Expected benefit (calls × time saved, ...).
    pub expected_benefit: Value,
    /// Kind-specific figures (fingerprints affected, costs, sizes).
    pub details: Value,
}

/// A stored recommendation (`optimization_recommendations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    /// Row id.
    pub id: i64,
    /// When it was first made.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    /// Lifecycle state.
    pub status: RecommendationStatus,
    /// What was recommended.
    #[serde(flatten)]
    pub rec: NewRecommendation,
    /// When it was implemented.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub applied_at: Option<Timestamp>,
    /// By whom.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub applied_by: Option<String>,
    /// The measured effect after implementing (before / after figures).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub impact: Option<Value>,
}

/// Which recommendations to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecommendationFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this status.
    pub status: Option<RecommendationStatus>,
    /// Which page (newest first).
    pub page: Page,
}

// ---------------------------------------------------------------------------
// performance_baselines

/// A named reference to compare the present with (`performance_baselines`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Baseline {
    /// Row id.
    pub id: i64,
    /// Unique name (`rolling` is the default rolling baseline).
    pub name: String,
    /// When it was made.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Start of the window it was made from.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub window_start: Timestamp,
    /// End of that window.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub window_end: Timestamp,
    /// Whether it is recomputed over a sliding window.
    pub rolling: bool,
    /// Per fingerprint and global figures.
    pub data: Value,
    /// Thresholds used against it.
    pub thresholds: Value,
}

// ---------------------------------------------------------------------------
// job runs and audit

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    /// It finished.
    Ok,
    /// It failed (see the message).
    Failed,
    /// It was due while its previous run was still going.
    Skipped,
}

/// One run of a scheduled job (`job_runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// Row id.
    pub id: i64,
    /// Job name.
    pub job: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// How it ended.
    pub outcome: JobOutcome,
    /// Rows it deleted, wrote or analysed.
    pub rows_affected: i64,
    /// What it says (an error's text when it failed).
    pub message: String,
}

/// One mutating call, for the audit trail (`audit_log`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Row id.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who (API key name or JWT subject).
    pub actor: String,
    /// What (`alert.acknowledge`, `recommendation.implement`, ...).
    pub action: String,
    /// On what (`alert:12`).
    pub target: String,
    /// Request id, dry run, statement run, outcome.
    pub details: Value,
}

// ---------------------------------------------------------------------------
// retention

/// The tables with a retention period, and the time column it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetainedTable {
    /// `performance_logs.logged_at`.
    PerformanceLogs,
    /// `performance_alerts.created_at` (resolved alerts only).
    PerformanceAlerts,
    /// `database_statistics.collected_at`.
    DatabaseStatistics,
    /// `cache_performance.taken_at`.
    CachePerformance,
    /// `query_patterns.period_start`.
    QueryPatterns,
    /// `index_usage_stats.collected_at`.
    IndexUsageStats,
    /// `connection_pool_stats.taken_at`.
    ConnectionPoolStats,
    /// `performance_reports.created_at`.
    PerformanceReports,
    /// `job_runs.started_at`.
    JobRuns,
    /// `audit_log.at`.
    AuditLog,
}

impl RetainedTable {
    /// Every table with a retention period.
    pub const ALL: [RetainedTable; 10] = [
        RetainedTable::PerformanceLogs,
        RetainedTable::PerformanceAlerts,
        RetainedTable::DatabaseStatistics,
        RetainedTable::CachePerformance,
        RetainedTable::QueryPatterns,
        RetainedTable::IndexUsageStats,
        RetainedTable::ConnectionPoolStats,
        RetainedTable::PerformanceReports,
        RetainedTable::JobRuns,
        RetainedTable::AuditLog,
    ];

    /// The table's name.
    pub fn table(self) -> &'static str {
        match self {
            RetainedTable::PerformanceLogs => "performance_logs",
            RetainedTable::PerformanceAlerts => "performance_alerts",
            RetainedTable::DatabaseStatistics => "database_statistics",
            RetainedTable::CachePerformance => "cache_performance",
            RetainedTable::QueryPatterns => "query_patterns",
            RetainedTable::IndexUsageStats => "index_usage_stats",
            RetainedTable::ConnectionPoolStats => "connection_pool_stats",
            RetainedTable::PerformanceReports => "performance_reports",
            RetainedTable::JobRuns => "job_runs",
            RetainedTable::AuditLog => "audit_log",
        }
    }

    /// The time column the retention period is measured on.
    pub fn time_column(self) -> &'static str {
        match self {
            RetainedTable::PerformanceLogs => "logged_at",
            RetainedTable::PerformanceAlerts => "created_at",
            RetainedTable::DatabaseStatistics => "collected_at",
            RetainedTable::CachePerformance => "taken_at",
            RetainedTable::QueryPatterns => "period_start",
            RetainedTable::IndexUsageStats => "collected_at",
            RetainedTable::ConnectionPoolStats => "taken_at",
            RetainedTable::PerformanceReports => "created_at",
            RetainedTable::JobRuns => "started_at",
            RetainedTable::AuditLog => "at",
        }
    }
}
