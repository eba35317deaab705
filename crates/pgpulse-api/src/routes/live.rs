//! `GET /connection-pool` and `GET /cache-stats`: the live state from the
//! proxy and the cache, plus the stored snapshots of a window (default:
//! the last hour).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use pgpulse_cache::{CacheStats, ItemStats, MissCause, MissCauses};
use pgpulse_proxy::PoolSnapshot;
use pgpulse_store::{CacheSnapshot, PoolStat, Window};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::query::ApiQuery;
use crate::routes::openapi::{CacheParams, CommonErrors, PoolParams, WindowParams};
use crate::state::ApiState;

fn history_window(state: &ApiState, q: &ApiQuery) -> Result<Window, ApiError> {
    let mut w = q.window()?;
    if w.from.is_none() {
        w.from = Some(w.to.unwrap_or_else(|| state.now()) - chrono::Duration::hours(1));
    }
    Ok(w)
}

/// One pool now, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolNow {
    /// Database of the pool.
    database: String,
    /// User of the pool.
    user_name: String,
    /// `session` or `transaction`.
    mode: &'static str,
    /// Configured size.
    pool_size: usize,
    /// Clients connected.
    clients: usize,
    /// Clients waiting for a server.
    clients_waiting: usize,
    /// Server connections open.
    servers_open: usize,
    /// Servers linked to a client.
    servers_active: usize,
    /// Servers idle in the pool.
    servers_idle: usize,
    /// Servers in use / pool size, 0..=1.
    utilization: f64,
    /// Transactions (cumulative).
    transactions: u64,
    /// Queries (cumulative).
    queries: u64,
    /// Mean wait for a server, ms.
    avg_wait_ms: f64,
    /// Longest wait, ms.
    max_wait_ms: f64,
    /// Bytes from clients.
    bytes_received: u64,
    /// Bytes to clients.
    bytes_sent: u64,
}

impl From<&PoolSnapshot> for PoolNow {
    fn from(p: &PoolSnapshot) -> Self {
        let avg_wait_ms = if p.wait_count == 0 {
            0.0
        } else {
            p.wait_time_us as f64 / p.wait_count as f64 / 1000.0
        };
        PoolNow {
            database: p.key.database.clone(),
            user_name: p.key.user.clone(),
            mode: p.mode.as_str(),
            pool_size: p.size,
            clients: p.clients,
            clients_waiting: p.waiting,
            servers_open: p.servers_open,
            servers_active: p.servers_active,
            servers_idle: p.servers_idle,
            utilization: if p.size == 0 {
                0.0
            } else {
                p.servers_active as f64 / p.size as f64
            },
            transactions: p.xact_count,
            queries: p.query_count,
            avg_wait_ms,
            max_wait_ms: p.max_wait_us as f64 / 1000.0,
            bytes_received: p.bytes_received,
            bytes_sent: p.bytes_sent,
        }
    }
}

/// `GET /connection-pool`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolView {
    /// Whether a proxy is wired (else `current` is empty).
    configured: bool,
    /// The pools now.
    current: Vec<PoolNow>,
    /// Stored snapshots of the window.
    history: Vec<PoolStat>,
}

/// Pools now and their stored history.
#[utoipa::path(
    get,
    path = "/api/performance/connection-pool",
    tag = "live",
    params(WindowParams, PoolParams),
    responses(
        (status = 200, description = "Pools now and their history", body = PoolView),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
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
        .map(PoolNow::from)
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

/// Counters of one table family or fingerprint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemView {
    /// The table family (in `tables` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    /// The fingerprint, 16 hex digits (in `fingerprints` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{16}$")]
    fingerprint: Option<String>,
    /// Served from the cache.
    hits: u64,
    /// Looked up and not found.
    misses: u64,
    /// Stored.
    fills: u64,
    /// Not cached (for a table: always 0).
    refusals: u64,
    /// Times its entries were invalidated (tables only).
    invalidations: u64,
    /// hits / (hits + misses), 0..=1.
    hit_rate: f64,
    /// Its misses by cause.
    miss_causes: MissCausesView,
    /// The most recent reason it was not cached.
    #[schema(required = true)]
    last_refusal: Option<&'static str>,
}

/// Misses by cause, as the in-process cache saw each lookup: what a higher
/// hit rate would need.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MissCausesView {
    /// No entry: first read of the key, dropped earlier as invalid and not
    /// refilled yet, evicted for space, or swept after its TTL.
    cold: u64,
    /// An entry a write may have changed (keyed invalidation narrows it).
    invalidated: u64,
    /// A current entry past its TTL.
    expired: u64,
    /// An entry held while a write through pgpulse waited for the change
    /// feed's rows.
    suspended: u64,
}

impl From<&MissCauses> for MissCausesView {
    fn from(m: &MissCauses) -> Self {
        MissCausesView {
            cold: m.of(MissCause::Cold),
            invalidated: m.of(MissCause::Invalidated),
            expired: m.of(MissCause::Expired),
            suspended: m.of(MissCause::Suspended),
        }
    }
}

impl From<&ItemStats> for ItemView {
    fn from(i: &ItemStats) -> Self {
        ItemView {
            table: None,
            fingerprint: None,
            hits: i.hits,
            misses: i.misses,
            fills: i.fills,
            refusals: i.refusals,
            invalidations: i.invalidations,
            hit_rate: i.hit_rate,
            miss_causes: (&i.miss_causes).into(),
            last_refusal: i.last_refusal.map(|r| r.as_str()),
        }
    }
}

/// The cache's global counters since start.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CacheGlobal {
    /// Lookups served from L1 or L2.
    hits: u64,
    /// Lookups that went to the server.
    misses: u64,
    /// hits / (hits + misses), 0..=1.
    hit_rate: f64,
    /// Replies stored.
    fills: u64,
    /// Misses served another session's identical result (single flight).
    coalesced: u64,
    /// Hits served past their TTL while refreshed.
    stale_served: u64,
    /// Writes whose rows were known: only matching reads invalidated.
    keyed_writes: u64,
    /// Writes through pgpulse whose rows came from the change feed.
    suspensions: u64,
    /// Invalidations applied.
    invalidations: u64,
    /// Entries evicted for space.
    evictions: u64,
    /// Misses by cause.
    miss_causes: MissCausesView,
    /// Entries in L1.
    entries: u64,
    /// Weighted size of L1, bytes.
    bytes: u64,
}

/// Redis (L2) counters.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct L2View {
    /// L2 hits.
    hits: u64,
    /// L2 misses.
    misses: u64,
    /// Failed or timed-out Redis operations.
    errors: u64,
    /// Entries written.
    stores: u64,
    /// Entries not written (breaker open, too many in flight).
    stores_skipped: u64,
    /// Invalidations published.
    invalidations_sent: u64,
    /// Other instances' invalidations applied.
    invalidations_received: u64,
    /// Invalidations waiting for Redis.
    invalidations_pending: u64,
    /// Times the L1 was forgotten because invalidations may have been lost.
    resyncs: u64,
    /// Times the circuit breaker opened.
    breaker_trips: u64,
    /// The breaker is open: L1 only.
    breaker_open: bool,
    /// The invalidation subscription is up.
    subscribed: bool,
    /// The key namespace, once known (null before).
    #[schema(required = true)]
    namespace: Option<String>,
    /// Change-feed starts that kept the shared entries (another instance's
    /// feed covered the time before them).
    feed_starts_covered: u64,
    /// Other instances' keyed writes left to this instance's change feed
    /// (which keys them for the L1) instead of invalidating their tables.
    keyed_left_to_feed: u64,
}

/// The cache's live statistics.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CacheLive {
    /// Global counters.
    global: CacheGlobal,
    /// Refusals by reason (only reasons seen).
    refusals: BTreeMap<String, u64>,
    /// Per table family, by name.
    tables: Vec<ItemView>,
    /// Per fingerprint, busiest first (at most `fingerprints`).
    fingerprints: Vec<ItemView>,
    /// Redis counters (null without Redis).
    #[schema(required = true)]
    l2: Option<L2View>,
}

impl CacheLive {
    /// The statistics with at most `per` fingerprints.
    fn new(s: &CacheStats, per: usize) -> CacheLive {
        CacheLive {
            global: CacheGlobal {
                hits: s.hits,
                misses: s.misses,
                hit_rate: s.hit_rate,
                fills: s.fills,
                coalesced: s.coalesced,
                stale_served: s.stale_served,
                keyed_writes: s.keyed_writes,
                suspensions: s.suspensions,
                invalidations: s.invalidations,
                evictions: s.evictions,
                miss_causes: (&s.miss_causes).into(),
                entries: s.entries,
                bytes: s.bytes,
            },
            refusals: s
                .refusals
                .iter()
                .map(|(r, n)| (r.as_str().to_owned(), *n))
                .collect(),
            tables: s
                .tables
                .iter()
                .map(|(t, i)| ItemView {
                    table: Some(t.clone()),
                    ..ItemView::from(i)
                })
                .collect(),
            fingerprints: s
                .fingerprints
                .iter()
                .take(per)
                .map(|(f, i)| ItemView {
                    fingerprint: Some(format!("{f:016x}")),
                    ..ItemView::from(i)
                })
                .collect(),
            l2: s.l2.as_ref().map(|l| L2View {
                hits: l.hits,
                misses: l.misses,
                errors: l.errors,
                stores: l.stores,
                stores_skipped: l.stores_skipped,
                invalidations_sent: l.invalidations_sent,
                invalidations_received: l.invalidations_received,
                invalidations_pending: l.invalidations_pending,
                resyncs: l.resyncs,
                breaker_trips: l.breaker_trips,
                breaker_open: l.breaker_open,
                subscribed: l.subscribed,
                namespace: l.namespace.clone(),
                feed_starts_covered: l.feed_starts_covered,
                keyed_left_to_feed: l.keyed_left_to_feed,
            }),
        }
    }
}

/// `GET /cache-stats`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CacheView {
    /// Whether a cache is wired (else `live` is null).
    configured: bool,
    /// The cache now.
    #[schema(required = true)]
    live: Option<CacheLive>,
    /// Stored snapshots of the window.
    history: Vec<CacheSnapshot>,
}

/// The cache now and its stored snapshots.
#[utoipa::path(
    get,
    path = "/api/performance/cache-stats",
    tag = "live",
    params(WindowParams, CacheParams),
    responses(
        (status = 200, description = "The cache now and its history", body = CacheView),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
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
        .map(|c| CacheLive::new(&c.stats(), per));
    Ok(Json(CacheView {
        configured: state.inner.cache.is_some(),
        live,
        history: state.store().cache_snapshots(window).await?,
    }))
}
