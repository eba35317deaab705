//! `GET /query-patterns`: pattern summaries from the store over a window,
//! or the live statistics from insight when no window is given.

use axum::Json;
use axum::extract::State;
use pgpulse_insight::{FingerprintStats, OrderBy};
use pgpulse_store::{PatternFilter, PatternOrder, PatternSummary, Timestamp, Window};
use serde::Serialize;
use utoipa::openapi::schema::AnyOfBuilder;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::query::{ApiQuery, Listing};
use crate::routes::openapi::{CommonErrors, PageParams, PatternParams, WindowParams};
use crate::routes::{ms, ts};
use crate::state::ApiState;

const SORT: [(&str, PatternOrder); 4] = [
    ("total_time", PatternOrder::TotalTime),
    ("p95", PatternOrder::P95),
    ("calls", PatternOrder::Calls),
    ("mean", PatternOrder::Mean),
];

/// How many live entries are considered at most.
const LIVE_MAX: usize = 10_000;

/// One live statement's statistics (insight's view since start).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LivePattern {
    /// Fingerprint of the normalized text.
    #[schema(pattern = "^[0-9a-f]{16}$")]
    fingerprint: String,
    /// Normalized text.
    query: String,
    /// Database name.
    database: String,
    /// User name.
    user_name: String,
    /// First execution seen.
    #[schema(value_type = String, format = DateTime)]
    first_seen: Timestamp,
    /// Last execution seen.
    #[schema(value_type = String, format = DateTime)]
    last_seen: Timestamp,
    /// Executions completed.
    calls: u64,
    /// Rows returned or affected.
    rows: u64,
    /// Failed executions.
    errors: u64,
    /// Sum of durations.
    total_time_ms: f64,
    /// Mean duration.
    mean_ms: f64,
    /// Shortest duration.
    min_ms: f64,
    /// Longest duration.
    max_ms: f64,
    /// Median.
    p50_ms: f64,
    /// 95th percentile.
    p95_ms: f64,
    /// 99th percentile.
    p99_ms: f64,
    /// Executions answered by the cache.
    cache_hits: u64,
    /// Executions that missed the cache.
    cache_misses: u64,
}

/// `GET /query-patterns`: live statistics or stored summaries.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum PatternListing {
    /// No window: insight's statistics since start (`source: live`).
    Live(Listing<LivePattern>),
    /// A window: the store's summaries (`source: store`).
    Store(Listing<PatternSummary>),
}

// By hand: an untagged enum derives `oneOf`, and an empty page matches
// both shapes; `anyOf` says what the body is.
impl PartialSchema for PatternListing {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(<Listing<LivePattern> as PartialSchema>::schema())
            .item(<Listing<PatternSummary> as PartialSchema>::schema())
            .description(Some(
                "Live statistics (`source: live`) or stored summaries (`source: store`)",
            ))
            .into()
    }
}

impl ToSchema for PatternListing {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        // Listing<T> leaves T's own schema to the caller.
        for (name, schema) in [
            (LivePattern::name(), LivePattern::schema()),
            (PatternSummary::name(), PatternSummary::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
        <Listing<LivePattern> as ToSchema>::schemas(schemas);
        <Listing<PatternSummary> as ToSchema>::schemas(schemas);
    }
}

impl From<FingerprintStats> for LivePattern {
    fn from(s: FingerprintStats) -> Self {
        LivePattern {
            fingerprint: s.fingerprint.to_string(),
            query: s.query.to_string(),
            database: s.database.to_string(),
            user_name: s.user.to_string(),
            first_seen: ts(s.first_seen),
            last_seen: ts(s.last_seen),
            calls: s.calls,
            rows: s.rows,
            errors: s.errors,
            total_time_ms: ms(s.total_time),
            mean_ms: ms(s.mean_time),
            min_ms: ms(s.min_time),
            max_ms: ms(s.max_time),
            p50_ms: ms(s.p50),
            p95_ms: ms(s.p95),
            p99_ms: ms(s.p99),
            cache_hits: s.cache_hits,
            cache_misses: s.cache_misses,
        }
    }
}

/// Query patterns, largest first by `sort`.
#[utoipa::path(
    get,
    path = "/api/performance/query-patterns",
    tag = "patterns",
    params(WindowParams, PatternParams, PageParams),
    responses(
        (status = 200, description = "Without a window: insight's live statistics \
            (`source: live`); with one: the store's summaries (`source: store`)",
         body = PatternListing),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn query_patterns(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<PatternListing>, ApiError> {
    q.allow(&[
        "from",
        "to",
        "fingerprint",
        "database",
        "sort",
        "limit",
        "offset",
    ])?;
    let filter = PatternFilter {
        window: q.window()?,
        fingerprint: q.fingerprint("fingerprint")?,
        database: q.name("database")?,
        order: q.choice("sort", &SORT)?.unwrap_or_default(),
        page: q.page()?,
    };
    let page = filter.page;
    if filter.window == Window::default()
        && let Some(insight) = &state.inner.insight
    {
        let order = match filter.order {
            PatternOrder::TotalTime | PatternOrder::Mean => OrderBy::TotalTime,
            PatternOrder::P95 => OrderBy::P95,
            PatternOrder::Calls => OrderBy::Calls,
        };
        let mut rows: Vec<FingerprintStats> = insight
            .top(LIVE_MAX, order)
            .into_iter()
            .filter(|s| {
                filter
                    .fingerprint
                    .as_ref()
                    .is_none_or(|f| *f == s.fingerprint.to_string())
                    && filter.database.as_ref().is_none_or(|d| **d == *s.database)
            })
            .collect();
        if filter.order == PatternOrder::Mean {
            rows.sort_by_key(|s| std::cmp::Reverse(s.mean_time));
        }
        let rows: Vec<LivePattern> = rows.into_iter().map(LivePattern::from).collect();
        return Ok(Json(PatternListing::Live(
            Listing::slice(rows, page).from_source("live"),
        )));
    }
    let stored = state.store().pattern_summaries(&filter).await?;
    Ok(Json(PatternListing::Store(
        Listing::stored(stored, page).from_source("store"),
    )))
}
