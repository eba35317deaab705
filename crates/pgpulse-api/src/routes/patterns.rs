//! `GET /query-patterns`: pattern summaries from the store over a window,
//! or the live statistics from insight when no window is given.

use axum::Json;
use axum::extract::State;
use pgpulse_insight::{FingerprintStats, OrderBy};
use pgpulse_store::{PatternFilter, PatternOrder, Timestamp, Window};
use serde::Serialize;

use crate::error::ApiError;
use crate::query::{ApiQuery, Listing};
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
#[derive(Debug, Serialize)]
pub(crate) struct LivePattern {
    fingerprint: String,
    query: String,
    database: String,
    user_name: String,
    first_seen: Timestamp,
    last_seen: Timestamp,
    calls: u64,
    rows: u64,
    errors: u64,
    total_time_ms: f64,
    mean_ms: f64,
    min_ms: f64,
    max_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    cache_hits: u64,
    cache_misses: u64,
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
pub(crate) async fn query_patterns(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map(Json)
            .map_err(|e| ApiError::Internal(format!("serialize: {e}")))
    };
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
        return to_json(serde_json::to_value(
            Listing::slice(rows, page).from_source("live"),
        ));
    }
    let stored = state.store().pattern_summaries(&filter).await?;
    to_json(serde_json::to_value(
        Listing::stored(stored, page).from_source("store"),
    ))
}
