//! `GET /api/performance/status` (health of the store, pools and cache,
//! throughput, latency, open alerts) and the unauthenticated `/healthz` and
//! `/readyz`.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use pgpulse_store::{AlertFilter, AlertStatus, Page};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::query::ApiQuery;
use crate::routes::ms;
use crate::routes::openapi::CommonErrors;
use crate::state::ApiState;

/// Minutes of live series the status latency covers.
const LATENCY_MINUTES: u32 = 5;

/// `ok`, or `degraded` while the store does not answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Health {
    /// The store answers.
    Ok,
    /// The store does not answer its ping.
    Degraded,
}

/// The store's health.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoreHealth {
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// Whether it answered a ping.
    ok: bool,
}

/// The proxy's pools, summed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolTotals {
    /// Pools open.
    pools: usize,
    /// Clients connected.
    clients: usize,
    /// Clients waiting for a server.
    clients_waiting: usize,
    /// Server connections open.
    servers_open: usize,
}

/// The result cache's headline figures.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CacheHeadline {
    /// `off`, `auto` or `all`.
    #[schema(pattern = "^(off|auto|all)$")]
    mode: String,
    /// hits / (hits + misses) since start, 0..=1.
    hit_rate: f64,
    /// Lookups answered from the cache.
    hits: u64,
    /// Lookups that missed.
    misses: u64,
    /// Entries held.
    entries: u64,
    /// Bytes held.
    bytes: u64,
}

/// Insight's current rates.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Throughput {
    /// Statements per second over the last minute.
    qps: f64,
    /// Failed statements per second.
    errors_per_second: f64,
    /// Failed / all, 0..=1.
    error_rate: f64,
    /// Statements completed in the last minute.
    calls_last_minute: u64,
}

/// Latency over the last minutes of insight's live series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Latency {
    /// Minutes covered.
    minutes: u32,
    /// Statements completed.
    calls: u64,
    /// Mean duration, ms.
    mean_ms: f64,
    /// The worst minute's p95, ms.
    p95_ms: f64,
}

/// `GET /status`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// Overall state.
    status: Health,
    /// The store.
    store: StoreHealth,
    /// Pools (null without a proxy).
    #[schema(required = true)]
    pool: Option<PoolTotals>,
    /// Cache (null without a cache).
    #[schema(required = true)]
    cache: Option<CacheHeadline>,
    /// Rates (null without insight).
    #[schema(required = true)]
    throughput: Option<Throughput>,
    /// Latency (null without insight).
    #[schema(required = true)]
    latency: Option<Latency>,
    /// Open alerts (null while the store does not answer).
    #[schema(required = true)]
    open_alerts: Option<u64>,
}

fn live_figures(state: &ApiState) -> (Option<Throughput>, Option<Latency>) {
    let Some(insight) = &state.inner.insight else {
        return (None, None);
    };
    let r = insight.rates();
    let throughput = Throughput {
        qps: r.qps,
        errors_per_second: r.errors_per_second,
        error_rate: r.error_rate,
        calls_last_minute: r.calls_last_minute,
    };
    let series = insight.series_all(LATENCY_MINUTES);
    let calls: u64 = series.iter().map(|b| b.calls).sum();
    let total: f64 = series.iter().map(|b| ms(b.total_time)).sum();
    // The worst minute's p95: series keep per-minute percentiles only.
    let p95 = series
        .iter()
        .filter(|b| b.calls > 0)
        .map(|b| ms(b.p95))
        .fold(0.0, f64::max);
    let latency = Latency {
        minutes: LATENCY_MINUTES,
        calls,
        mean_ms: if calls == 0 {
            0.0
        } else {
            total / calls as f64
        },
        p95_ms: p95,
    };
    (Some(throughput), Some(latency))
}

/// Overall health and the headline figures.
#[utoipa::path(
    get,
    path = "/api/performance/status",
    tag = "status",
    responses(
        (status = 200, description = "Health and headline figures", body = StatusView),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn status(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<StatusView>, ApiError> {
    q.allow(&[])?;
    let store_ok = state.store().ping().await.is_ok();
    let open_alerts = if store_ok {
        let f = AlertFilter {
            status: Some(AlertStatus::Open),
            page: Page {
                limit: 1,
                offset: 0,
            },
            ..AlertFilter::default()
        };
        Some(state.store().alerts(&f).await?.total)
    } else {
        None
    };
    let pools = state.inner.proxy.as_ref().map(|p| p.pools());
    let pool = pools.as_ref().map(|ps| PoolTotals {
        pools: ps.len(),
        clients: ps.iter().map(|p| p.clients).sum(),
        clients_waiting: ps.iter().map(|p| p.waiting).sum(),
        servers_open: ps.iter().map(|p| p.servers_open).sum(),
    });
    let cache = state.inner.cache.as_ref().map(|c| {
        let s = c.stats();
        CacheHeadline {
            mode: format!("{:?}", c.mode()).to_lowercase(),
            hit_rate: s.hit_rate,
            hits: s.hits,
            misses: s.misses,
            entries: s.entries,
            bytes: s.bytes,
        }
    });
    let (throughput, latency) = live_figures(&state);
    Ok(Json(StatusView {
        status: if store_ok {
            Health::Ok
        } else {
            Health::Degraded
        },
        store: StoreHealth {
            backend: state.store().backend(),
            ok: store_ok,
        },
        pool,
        cache,
        throughput,
        latency,
        open_alerts,
    }))
}

/// The process is up.
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The store answers (else 503).
pub(crate) async fn readyz(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    match state.store().ping().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!(error = %e, "readyz: store ping failed");
            Err(ApiError::Unavailable("store unavailable"))
        }
    }
}
