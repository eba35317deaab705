//! `job_runs`, `audit_log`, and the tables retention applies to.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

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
