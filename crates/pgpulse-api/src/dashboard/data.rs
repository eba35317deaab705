//! `GET /api/performance/dashboard`: everything the dashboard's first paint
//! needs in one call (`?only=live` for the part it polls every few
//! seconds: status, series, rates, live cache and pools).

use axum::Json;
use axum::extract::State;
use pgpulse_store::{
    AlertFilter, AlertStatus, Baseline, CacheSnapshot, Page, PoolStat, RecommendationFilter,
    RecommendationStatus, Window,
};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::query::{ApiQuery, Listing};
use crate::routes::{cache_stats, connection_pool, ms, slow_queries, status};
use crate::state::ApiState;

/// Minutes of live series the dashboard charts.
pub const SERIES_MINUTES: u32 = 60;
/// Rows of each list on the first page.
const FIRST_PAGE: u32 = 20;
/// Slow queries shown.
const SLOW_QUERIES: u32 = 10;
/// Reports shown.
const REPORTS: u32 = 5;

fn page(limit: u32) -> Page {
    Page { limit, offset: 0 }
}

/// The insight series of the last hour, column-wise (uPlot's layout):
/// `t` (unix seconds of each minute), calls, qps, mean, p95, errors.
fn series_json(state: &ApiState) -> Value {
    let Some(insight) = &state.inner.insight else {
        return Value::Null;
    };
    let buckets = insight.series_all(SERIES_MINUTES);
    let unix = |b: &pgpulse_insight::MinuteBucket| {
        b.minute
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let mean = |b: &pgpulse_insight::MinuteBucket| {
        if b.calls == 0 {
            Value::Null
        } else {
            json!(ms(b.total_time) / b.calls as f64)
        }
    };
    // The current minute is still filling: its rate is over the seconds
    // elapsed (at least 10, so a minute just begun does not spike).
    let now = state.now_system();
    let seconds = |b: &pgpulse_insight::MinuteBucket| {
        now.duration_since(b.minute)
            .map_or(60.0, |d| d.as_secs_f64().clamp(10.0, 60.0))
    };
    // A minute without calls has no latency: null leaves a gap in the chart.
    let p95 = |b: &pgpulse_insight::MinuteBucket| {
        if b.calls == 0 {
            Value::Null
        } else {
            json!(ms(b.p95))
        }
    };
    json!({
        "minutes": SERIES_MINUTES,
        "t": buckets.iter().map(unix).collect::<Vec<_>>(),
        "calls": buckets.iter().map(|b| b.calls).collect::<Vec<_>>(),
        "qps": buckets.iter().map(|b| b.calls as f64 / seconds(b)).collect::<Vec<_>>(),
        "mean_ms": buckets.iter().map(mean).collect::<Vec<_>>(),
        "p95_ms": buckets.iter().map(p95).collect::<Vec<_>>(),
        "errors": buckets.iter().map(|b| b.errors).collect::<Vec<_>>(),
    })
}

/// Stored cache hit rates of the last hour, column-wise.
fn cache_history(rows: &[CacheSnapshot]) -> Value {
    json!({
        "t": rows.iter().map(|r| r.taken_at.timestamp()).collect::<Vec<_>>(),
        "hit_rate": rows.iter().map(|r| r.hit_rate).collect::<Vec<_>>(),
    })
}

/// Stored pool utilization of the last hour: servers in use over pool
/// size, summed over the pools of each snapshot time, column-wise.
fn pool_history(rows: &[PoolStat]) -> Value {
    let mut points: Vec<(i64, i64, i64)> = Vec::new();
    for r in rows {
        let t = r.taken_at.timestamp();
        match points.last_mut() {
            Some(p) if p.0 == t => {
                p.1 += r.servers_active;
                p.2 += r.pool_size;
            }
            _ => points.push((t, r.servers_active, r.pool_size)),
        }
    }
    json!({
        "t": points.iter().map(|p| p.0).collect::<Vec<_>>(),
        "utilization": points.iter().map(|p| if p.2 == 0 { 0.0 } else { p.1 as f64 / p.2 as f64 })
            .collect::<Vec<_>>(),
    })
}

/// A baseline without its per-fingerprint figures (they can be large).
fn baseline_summary(b: &Baseline) -> Value {
    let fingerprints = b.data.get("fingerprints").and_then(|f| {
        f.as_array()
            .map(Vec::len)
            .or(f.as_object().map(|o| o.len()))
    });
    json!({
        "id": b.id, "name": b.name, "created_at": b.created_at,
        "window_start": b.window_start, "window_end": b.window_end,
        "rolling": b.rolling, "fingerprints": fingerprints, "thresholds": b.thresholds,
    })
}

/// The live pools and cache exactly as `/connection-pool` (`current`) and
/// `/cache-stats` (`live`, without fingerprints) show them; their history
/// is asked from now on, so it is empty and costs one indexed query each.
async fn pools_and_cache(state: &ApiState) -> Result<(Value, Value), ApiError> {
    let now = state
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let q = ApiQuery::from_pairs(&[("from", &now)]);
    let Json(pools) = connection_pool(State(state.clone()), q).await?;
    let q = ApiQuery::from_pairs(&[("from", &now), ("fingerprints", "0")]);
    let Json(cache) = cache_stats(State(state.clone()), q).await?;
    let field = |v: Result<Value, serde_json::Error>, k: &str| {
        v.map(|mut v| v[k].take())
            .map_err(|e| ApiError::Internal(format!("dashboard: {e}")))
    };
    Ok((
        field(serde_json::to_value(pools), "current")?,
        field(serde_json::to_value(cache), "live")?,
    ))
}

/// The part of the dashboard that changes every second.
async fn live_json(state: &ApiState) -> Result<Value, ApiError> {
    let Json(status) = status::status(State(state.clone()), ApiQuery::default()).await?;
    let (pools, cache) = pools_and_cache(state).await?;
    let rates = state.inner.insight.as_ref().map(|i| i.rates());
    Ok(json!({
        "generated_at": state.now(),
        "status": status,
        "rates": rates,
        "series": series_json(state),
        "cache": cache,
        "pools": pools,
    }))
}

/// The stored cache and pool snapshots of the last hour (the snapshot job
/// writes them every minute or so: the page reads them with the lists).
async fn history_json(state: &ApiState) -> Result<Value, ApiError> {
    let hour = Window {
        from: Some(state.now() - chrono::Duration::minutes(i64::from(SERIES_MINUTES))),
        to: None,
    };
    Ok(json!({
        "cache": cache_history(&state.store().cache_snapshots(hour).await?),
        "pools": pool_history(&state.store().pool_stats(hour).await?),
    }))
}

/// The slower-moving part: stored history, open and acknowledged alerts,
/// slow queries, open recommendations, baselines, reports.
async fn lists_json(state: &ApiState) -> Result<Value, ApiError> {
    let store = state.store();
    let alerts_with = |status| AlertFilter {
        status: Some(status),
        page: page(FIRST_PAGE),
        ..AlertFilter::default()
    };
    let open = store.alerts(&alerts_with(AlertStatus::Open)).await?;
    let acked = store
        .alerts(&alerts_with(AlertStatus::Acknowledged))
        .await?;
    let limit = SLOW_QUERIES.to_string();
    let slow_q = ApiQuery::from_pairs(&[("limit", &limit)]);
    let Json(slow) = slow_queries(State(state.clone()), slow_q).await?;
    let recs = store
        .recommendations(&RecommendationFilter {
            status: Some(RecommendationStatus::Open),
            page: page(FIRST_PAGE),
            ..RecommendationFilter::default()
        })
        .await?;
    let baselines: Vec<Value> = store
        .baselines()
        .await?
        .iter()
        .map(baseline_summary)
        .collect();
    let reports = store.reports(page(REPORTS)).await?;
    Ok(json!({
        "history": history_json(state).await?,
        "alerts": Listing::stored(open, page(FIRST_PAGE)),
        "acknowledged_alerts": Listing::stored(acked, page(FIRST_PAGE)),
        "slow_queries": slow,
        "recommendations": Listing::stored(recs, page(FIRST_PAGE)),
        "baselines": Listing::slice(baselines, page(FIRST_PAGE)),
        "reports": Listing::stored(reports, page(REPORTS)),
    }))
}

/// The dashboard's data; `only=live` leaves the history and lists out
/// (the page polls that part every 2 s).
pub(crate) async fn dashboard(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    q.allow(&["only"])?;
    let live_only = q.choice("only", &[("live", true)])?.unwrap_or(false);
    let mut out = live_json(&state).await?;
    if !live_only
        && let (Some(o), Value::Object(lists)) = (out.as_object_mut(), lists_json(&state).await?)
    {
        o.extend(lists);
    }
    Ok(Json(out))
}
