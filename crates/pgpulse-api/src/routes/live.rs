//! `GET /connection-pool` and `GET /cache-stats`: the live state from the
//! proxy and the cache, plus the stored snapshots of a window (default:
//! the last hour).

use axum::Json;
use axum::extract::State;
use pgpulse_cache::{CacheStats, ItemStats};
use pgpulse_proxy::PoolSnapshot;
use pgpulse_store::{CacheSnapshot, PoolStat, Window};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::query::ApiQuery;
use crate::state::ApiState;

fn history_window(state: &ApiState, q: &ApiQuery) -> Result<Window, ApiError> {
    let mut w = q.window()?;
    if w.from.is_none() {
        w.from = Some(w.to.unwrap_or_else(|| state.now()) - chrono::Duration::hours(1));
    }
    Ok(w)
}

/// One pool now, as the API shows it.
pub(crate) fn pool_json(p: &PoolSnapshot) -> Value {
    let avg_wait_ms = if p.wait_count == 0 {
        0.0
    } else {
        p.wait_time_us as f64 / p.wait_count as f64 / 1000.0
    };
    json!({
        "database": p.key.database,
        "user_name": p.key.user,
        "mode": p.mode.as_str(),
        "pool_size": p.size,
        "clients": p.clients,
        "clients_waiting": p.waiting,
        "servers_open": p.servers_open,
        "servers_active": p.servers_active,
        "servers_idle": p.servers_idle,
        "utilization": if p.size == 0 { 0.0 } else { p.servers_active as f64 / p.size as f64 },
        "transactions": p.xact_count,
        "queries": p.query_count,
        "avg_wait_ms": avg_wait_ms,
        "max_wait_ms": p.max_wait_us as f64 / 1000.0,
        "bytes_received": p.bytes_received,
        "bytes_sent": p.bytes_sent,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct PoolView {
    configured: bool,
    current: Vec<Value>,
    history: Vec<PoolStat>,
}

/// Pools now and their stored history.
pub(crate) async fn connection_pool(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<PoolView>, ApiError> {
    q.allow(&["from", "to", "database"])?;
    let window = history_window(&state, &q)?;
    let database = q.name("database")?;
    let keep = |db: &str| database.as_ref().is_none_or(|d| d == db);
    let current = state
        .inner
        .proxy
        .as_ref()
        .map(|p| p.pools())
        .unwrap_or_default()
        .iter()
        .filter(|p| keep(&p.key.database))
        .map(pool_json)
        .collect();
    let history = state
        .store()
        .pool_stats(window)
        .await?
        .into_iter()
        .filter(|p| keep(&p.database))
        .collect();
    Ok(Json(PoolView {
        configured: state.inner.proxy.is_some(),
        current,
        history,
    }))
}

fn item_json(i: &ItemStats) -> Value {
    json!({
        "hits": i.hits, "misses": i.misses, "fills": i.fills, "refusals": i.refusals,
        "invalidations": i.invalidations, "hit_rate": i.hit_rate,
        "last_refusal": i.last_refusal.map(|r| r.as_str()),
    })
}

/// The cache's live statistics as JSON (at most `per` fingerprints).
pub(crate) fn cache_json(s: &CacheStats, per: usize) -> Value {
    json!({
        "global": {
            "hits": s.hits, "misses": s.misses, "hit_rate": s.hit_rate, "fills": s.fills,
            "coalesced": s.coalesced, "stale_served": s.stale_served,
            "invalidations": s.invalidations, "evictions": s.evictions,
            "entries": s.entries, "bytes": s.bytes,
        },
        "refusals": s.refusals.iter().map(|(r, n)| (r.as_str().to_owned(), json!(n)))
            .collect::<serde_json::Map<String, Value>>(),
        "tables": s.tables.iter().map(|(t, i)| {
            let mut v = item_json(i);
            v["table"] = json!(t);
            v
        }).collect::<Vec<_>>(),
        "fingerprints": s.fingerprints.iter().take(per).map(|(f, i)| {
            let mut v = item_json(i);
            v["fingerprint"] = json!(format!("{f:016x}"));
            v
        }).collect::<Vec<_>>(),
        "l2": s.l2.as_ref().map(|l| json!({
            "hits": l.hits, "misses": l.misses, "errors": l.errors, "stores": l.stores,
        })),
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct CacheView {
    configured: bool,
    live: Option<Value>,
    history: Vec<CacheSnapshot>,
}

/// The cache now and its stored snapshots.
pub(crate) async fn cache_stats(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<CacheView>, ApiError> {
    q.allow(&["from", "to", "fingerprints"])?;
    let window = history_window(&state, &q)?;
    let per = q.u64_in("fingerprints", 0, 10_000)?.unwrap_or(100) as usize;
    let live = state
        .inner
        .cache
        .as_ref()
        .map(|c| cache_json(&c.stats(), per));
    Ok(Json(CacheView {
        configured: state.inner.cache.is_some(),
        live,
        history: state.store().cache_snapshots(window).await?,
    }))
}
