//! `performance_reports`, `optimization_recommendations` and
//! `performance_baselines`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

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
