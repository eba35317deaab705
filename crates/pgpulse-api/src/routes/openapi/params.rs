//! The query parameters of each endpoint as `IntoParams` types, for the
//! document only: the handlers read them through [`crate::query::ApiQuery`],
//! whose checks these mirror (names, types, bounds, allowed words). The
//! `openapi` test compares each endpoint's documented names with the
//! names the handler allows.
#![allow(dead_code)] // describes parameters; never built

use pgpulse_store::{AlertStatus, PatternOrder, RecommendationStatus, Severity};
use utoipa::{IntoParams, ToSchema};

/// `limit` and `offset`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Rows per page (default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
    /// Rows skipped (default 0).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64, default = 0)]
    offset: Option<u64>,
}

/// `from` and `to`: a half-open window `[from, to)`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WindowParams {
    /// Inclusive start, RFC 3339 (`2026-01-31T12:00:00Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Exclusive end, RFC 3339; must be after `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
}

/// The filters of `/slow-queries` (and, with `slow_only`, of `/logs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SlowQueryParams {
    /// Only this fingerprint (16 hexadecimal digits).
    #[param(pattern = "^[0-9a-fA-F]{16}$")]
    fingerprint: Option<String>,
    /// Only this database.
    #[param(max_length = 256)]
    database: Option<String>,
    /// Only this user.
    #[param(max_length = 256)]
    user: Option<String>,
    /// Only statements at least this slow, ms.
    #[param(minimum = 0)]
    min_duration_ms: Option<f64>,
}

/// `/logs`' own filter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogParams {
    /// Only statements over the slow threshold (`true`/`false`, `1`/`0`).
    slow_only: Option<bool>,
}

/// `/alerts`' filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertParams {
    /// Only this status.
    #[param(inline)]
    status: Option<AlertStatus>,
    /// Only at least this severity.
    #[param(inline)]
    severity: Option<Severity>,
    /// Only this rule (`slow_query`, `p95_regression`, ...).
    #[param(max_length = 256)]
    rule: Option<String>,
}

/// `/query-patterns`' filters (no window: insight's live statistics).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PatternParams {
    /// Only this fingerprint (16 hexadecimal digits).
    #[param(pattern = "^[0-9a-fA-F]{16}$")]
    fingerprint: Option<String>,
    /// Only this database.
    #[param(max_length = 256)]
    database: Option<String>,
    /// Order, largest first (default `total_time`).
    #[param(inline)]
    sort: Option<PatternOrder>,
}

/// An index flag to filter on.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum IndexFlag {
    /// Never scanned, not unique or primary.
    Unused,
    /// Same columns as another index.
    Duplicate,
    /// A strict prefix of another index.
    Redundant,
    /// A failed concurrent build.
    Invalid,
}

/// `/index-usage`'s filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IndexParams {
    /// Only this database.
    #[param(max_length = 256)]
    database: Option<String>,
    /// Only this table.
    #[param(max_length = 256)]
    table: Option<String>,
    /// Only indexes with this flag.
    #[param(inline)]
    flag: Option<IndexFlag>,
}

/// `/connection-pool`'s parameters (the window defaults to the last hour).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PoolParams {
    /// Only this database.
    #[param(max_length = 256)]
    database: Option<String>,
}

/// `/cache-stats`' parameters (the window defaults to the last hour).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CacheParams {
    /// Most per-fingerprint rows in `live.fingerprints` (default 100).
    #[param(minimum = 0, maximum = 10_000, default = 100)]
    fingerprints: Option<u64>,
}

/// How a report is rendered.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ReportFormat {
    /// The report as JSON.
    Json,
    /// Its self-contained HTML page.
    Html,
}

/// `/reports/{id}`'s parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportParams {
    /// `json` or `html` (without it: HTML when `Accept` has `text/html`).
    #[param(inline)]
    format: Option<ReportFormat>,
}

/// `/recommendations`' filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecommendationParams {
    /// Only this kind (`missing_index`, `unused_index`, ...).
    #[param(max_length = 256)]
    kind: Option<String>,
    /// Only this status.
    #[param(inline)]
    status: Option<RecommendationStatus>,
}

/// `/baselines`' filter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BaselineParams {
    /// Only the baseline of this name.
    #[param(max_length = 256)]
    name: Option<String>,
}
