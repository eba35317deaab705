//! `performance_alerts`: alerts, their lifecycle and their filter.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

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
