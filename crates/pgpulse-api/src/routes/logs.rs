//! `GET /logs` and `GET /slow-queries` (stored slow logs with plans; the
//! live slow-query ring while the store has none yet).

use axum::Json;
use axum::extract::State;
use pgpulse_store::{LogFilter, PerformanceLog};

use crate::error::ApiError;
use crate::query::{ApiQuery, Listing};
use crate::routes::openapi::{CommonErrors, LogParams, PageParams, SlowQueryParams, WindowParams};
use crate::routes::{ms, ts};
use crate::state::ApiState;

const LOG_PARAMS: [&str; 9] = [
    "from",
    "to",
    "fingerprint",
    "database",
    "user",
    "min_duration_ms",
    "slow_only",
    "limit",
    "offset",
];

fn log_filter(q: &ApiQuery, slow_only: bool) -> Result<LogFilter, ApiError> {
    Ok(LogFilter {
        window: q.window()?,
        fingerprint: q.fingerprint("fingerprint")?,
        database: q.name("database")?,
        user_name: q.name("user")?,
        min_duration_ms: q.non_negative("min_duration_ms")?,
        slow_only: slow_only || q.bool("slow_only")?.unwrap_or(false),
        page: q.page()?,
    })
}

/// Performance logs, newest first.
#[utoipa::path(
    get,
    path = "/api/performance/logs",
    tag = "logs",
    params(WindowParams, SlowQueryParams, LogParams, PageParams),
    responses(
        (status = 200, description = "A page of stored performance logs, newest first",
         body = Listing<PerformanceLog>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn logs(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<PerformanceLog>>, ApiError> {
    q.allow(&LOG_PARAMS)?;
    let filter = log_filter(&q, false)?;
    let page = filter.page;
    Ok(Json(Listing::stored(
        state.store().logs(&filter).await?,
        page,
    )))
}

/// Slow statements with their plans, newest first.
#[utoipa::path(
    get,
    path = "/api/performance/slow-queries",
    tag = "logs",
    params(WindowParams, SlowQueryParams, PageParams),
    responses(
        (status = 200, description = "Stored slow logs with plans (`source: store`), or \
            insight's live ring while the store has no slow log at all (`source: live`)",
         body = Listing<PerformanceLog>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn slow_queries(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<PerformanceLog>>, ApiError> {
    q.allow(&[
        "from",
        "to",
        "fingerprint",
        "database",
        "user",
        "min_duration_ms",
        "limit",
        "offset",
    ])?;
    let filter = log_filter(&q, true)?;
    let page = filter.page;
    let stored = state.store().logs(&filter).await?;
    if stored.total > 0 {
        return Ok(Json(Listing::stored(stored, page).from_source("store")));
    }
    // Check whether the store has any slow log at all: an empty page for a
    // narrow filter must not fall back to the live ring.
    let any = LogFilter {
        slow_only: true,
        page: pgpulse_store::Page {
            limit: 1,
            offset: 0,
        },
        ..LogFilter::default()
    };
    let Some(insight) = state.inner.insight.as_ref() else {
        return Ok(Json(Listing::stored(stored, page).from_source("store")));
    };
    if state.store().logs(&any).await?.total > 0 {
        return Ok(Json(Listing::stored(stored, page).from_source("store")));
    }
    let live: Vec<PerformanceLog> = insight
        .slow_queries(usize::MAX)
        .into_iter()
        .map(|s| PerformanceLog {
            id: i64::try_from(s.id).unwrap_or(i64::MAX),
            logged_at: ts(s.started_at),
            fingerprint: s.fingerprint.to_string(),
            query: s.query.to_string(),
            database: s.database.to_string(),
            user_name: s.user.to_string(),
            application_name: s.application_name.to_string(),
            duration_ms: ms(s.duration),
            rows: i64::try_from(s.rows).unwrap_or(i64::MAX),
            error: s.error.map(|e| e.to_string()),
            slow: true,
            cache: "unknown".into(),
            plan: s.plan,
            plan_summary: s.plan_summary.or_else(|| Some(s.plan_status.label())),
        })
        .filter(|l| keep(&filter, l))
        .collect();
    Ok(Json(Listing::slice(live, page).from_source("live")))
}

fn keep(f: &LogFilter, l: &PerformanceLog) -> bool {
    f.window.from.is_none_or(|t| l.logged_at >= t)
        && f.window.to.is_none_or(|t| l.logged_at < t)
        && f.fingerprint.as_ref().is_none_or(|x| *x == l.fingerprint)
        && f.database.as_ref().is_none_or(|x| *x == l.database)
        && f.user_name.as_ref().is_none_or(|x| *x == l.user_name)
        && f.min_duration_ms.is_none_or(|x| l.duration_ms >= x)
}
