//! `GET /api/performance/status` (health of the store, pools and cache,
//! throughput, latency, open alerts) and the unauthenticated `/healthz` and
//! `/readyz`.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use pgpulse_store::{AlertFilter, AlertStatus, Page};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::query::ApiQuery;
use crate::routes::ms;
use crate::state::ApiState;

/// Minutes of live series the status latency covers.
const LATENCY_MINUTES: u32 = 5;

fn live_json(state: &ApiState) -> (Value, Value) {
    let Some(insight) = &state.inner.insight else {
        return (Value::Null, Value::Null);
    };
    let r = insight.rates();
    let throughput = json!({
        "qps": r.qps, "errors_per_second": r.errors_per_second, "error_rate": r.error_rate,
        "calls_last_minute": r.calls_last_minute,
    });
    let series = insight.series_all(LATENCY_MINUTES);
    let calls: u64 = series.iter().map(|b| b.calls).sum();
    let total: f64 = series.iter().map(|b| ms(b.total_time)).sum();
    // The worst minute's p95: series keep per-minute percentiles only.
    let p95 = series
        .iter()
        .filter(|b| b.calls > 0)
        .map(|b| ms(b.p95))
        .fold(0.0, f64::max);
    let latency = json!({
        "minutes": LATENCY_MINUTES,
        "calls": calls,
        "mean_ms": if calls == 0 { 0.0 } else { total / calls as f64 },
        "p95_ms": p95,
    });
    (throughput, latency)
}

/// Overall health and the headline figures.
pub(crate) async fn status(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
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
    let pool = pools.as_ref().map(|ps| {
        json!({
            "pools": ps.len(),
            "clients": ps.iter().map(|p| p.clients).sum::<usize>(),
            "clients_waiting": ps.iter().map(|p| p.waiting).sum::<usize>(),
            "servers_open": ps.iter().map(|p| p.servers_open).sum::<usize>(),
        })
    });
    let cache = state.inner.cache.as_ref().map(|c| {
        let s = c.stats();
        json!({ "mode": format!("{:?}", c.mode()).to_lowercase(), "hit_rate": s.hit_rate,
                "hits": s.hits, "misses": s.misses, "entries": s.entries, "bytes": s.bytes })
    });
    let (throughput, latency) = live_json(&state);
    Ok(Json(json!({
        "status": if store_ok { "ok" } else { "degraded" },
        "store": { "backend": state.store().backend(), "ok": store_ok },
        "pool": pool,
        "cache": cache,
        "throughput": throughput,
        "latency": latency,
        "open_alerts": open_alerts,
    })))
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
