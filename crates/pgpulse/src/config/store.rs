//! The `[store]` and `[jobs]` sections: where performance history goes,
//! how long each table keeps it, and when the scheduled jobs run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where performance history is stored, and how it gets there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (default `sqlite://pgpulse.db`; a relative path is
    /// beside the config file, else in the working directory) or
    /// `postgres://...` (`PGPULSE_STORE_URL`).
    pub url: String,
    /// PostgreSQL store only: the schema of its tables. Default `pgpulse`.
    pub schema: String,
    /// PostgreSQL store only: the role whose members may read and write the
    /// tables (row-level security). Default: the store URL's user.
    pub admin_role: Option<String>,
    /// How often statistics, logs and cache / pool snapshots are written.
    /// Default 1m.
    #[serde(with = "crate::config::duration")]
    pub flush_interval: Duration,
    /// Share of the statements that are not slow written to
    /// `performance_logs` (slow ones always are). Default 0.01.
    pub log_sample_rate: f64,
    /// How long each table keeps its rows.
    pub retention: RetentionConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://pgpulse.db".to_owned(),
            schema: "pgpulse".to_owned(),
            admin_role: None,
            flush_interval: Duration::from_secs(60),
            log_sample_rate: 0.01,
            retention: RetentionConfig::default(),
        }
    }
}

const DAY: u64 = 24 * 3600;

/// Retention periods per table (rows older are deleted by the retention
/// job, in batches).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Slow and sampled statements. Default 7d.
    #[serde(with = "crate::config::duration")]
    pub performance_logs: Duration,
    /// Per-period statistics per fingerprint. Default 30d.
    #[serde(with = "crate::config::duration")]
    pub query_patterns: Duration,
    /// Server statistics collections. Default 30d.
    #[serde(with = "crate::config::duration")]
    pub database_statistics: Duration,
    /// Index usage collections. Default 30d.
    #[serde(with = "crate::config::duration")]
    pub index_usage_stats: Duration,
    /// Cache snapshots. Default 14d.
    #[serde(with = "crate::config::duration")]
    pub cache_performance: Duration,
    /// Pool snapshots. Default 14d.
    #[serde(with = "crate::config::duration")]
    pub connection_pool_stats: Duration,
    /// Resolved alerts (open ones are never deleted). Default 90d.
    #[serde(with = "crate::config::duration")]
    pub performance_alerts: Duration,
    /// Reports. Default 90d.
    #[serde(with = "crate::config::duration")]
    pub performance_reports: Duration,
    /// Job run records. Default 30d.
    #[serde(with = "crate::config::duration")]
    pub job_runs: Duration,
    /// Audit records of API calls. Default 365d.
    #[serde(with = "crate::config::duration")]
    pub audit_log: Duration,
    /// Rows deleted per transaction. Default 5,000.
    pub batch: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |n: u64| Duration::from_secs(n * DAY);
        RetentionConfig {
            performance_logs: days(7),
            query_patterns: days(30),
            database_statistics: days(30),
            index_usage_stats: days(30),
            cache_performance: days(14),
            connection_pool_stats: days(14),
            performance_alerts: days(90),
            performance_reports: days(90),
            job_runs: days(30),
            audit_log: days(365),
            batch: 5000,
        }
    }
}

/// When the scheduled jobs run: cron expressions (minute hour day month
/// weekday) read in `timezone`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Whether the jobs run at all. Default true.
    pub enabled: bool,
    /// IANA time zone the expressions are read in. Default `UTC`.
    pub timezone: String,
    /// Retention cleanup. Default `0 2 * * *` (daily at 02:00).
    pub retention: String,
    /// Reports over the past period. Default `0 */6 * * *` (every 6 h).
    pub reports: String,
    /// The window each scheduled report covers, up to its run. Default 6h.
    #[serde(with = "crate::config::duration")]
    pub report_window: Duration,
    /// Pattern analysis. Default `0 3 * * *` (daily at 03:00).
    pub pattern_analysis: String,
    /// Server statistics collection. Default `*/5 * * * *`.
    pub database_statistics: String,
    /// Index usage collection. Default `*/15 * * * *`.
    pub index_usage: String,
    /// The index advisor over the busiest statements. Default `30 3 * * *`.
    pub index_advisor: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: true,
            timezone: "UTC".to_owned(),
            retention: "0 2 * * *".to_owned(),
            reports: "0 */6 * * *".to_owned(),
            report_window: Duration::from_secs(6 * 3600),
            pattern_analysis: "0 3 * * *".to_owned(),
            database_statistics: "*/5 * * * *".to_owned(),
            index_usage: "*/15 * * * *".to_owned(),
            index_advisor: "30 3 * * *".to_owned(),
        }
    }
}

/// Alert evaluation and notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate the alert rules at all. Default true.
    pub enabled: bool,
    /// How often the rules are evaluated. Default 30s.
    #[serde(with = "crate::config::duration")]
    pub interval: Duration,
    /// POST each new alert as JSON to this `http://` or `https://` URL
    /// (a Slack incoming webhook with `webhook_slack`). Default: none.
    pub webhook_url: Option<String>,
    /// A CA bundle (PEM) trusted for an `https://` webhook besides the
    /// public web roots. Default: none.
    pub webhook_ca_file: Option<std::path::PathBuf>,
    /// Send Slack's `{"text": ...}` body instead. Default false.
    pub webhook_slack: bool,
    /// Also notify when an alert resolves. Default false.
    pub webhook_on_resolve: bool,
    /// Cache hit rate under which an alert is raised. Default 0.8.
    pub cache_hit_rate_min: f64,
    /// Share of slow statements above which an alert is raised. Default 0.02.
    pub slow_rate_max: f64,
    /// Share of failed statements above which an alert is raised. Default 0.01.
    pub error_rate_max: f64,
    /// Clients waiting longer than this for a server raise an alert.
    /// Default 1s.
    #[serde(with = "crate::config::duration")]
    pub pool_max_wait: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            interval: Duration::from_secs(30),
            webhook_url: None,
            webhook_ca_file: None,
            webhook_slack: false,
            webhook_on_resolve: false,
            cache_hit_rate_min: 0.8,
            slow_rate_max: 0.02,
            error_rate_max: 0.01,
            pool_max_wait: Duration::from_secs(1),
        }
    }
}
