//! Snapshots of the result cache and the pools for the store
//! (`cache_performance`, `connection_pool_stats`): the counters are
//! cumulative; rates (hit rate, mean wait) are computed against the
//! previous snapshot, so each row says what happened since the one before.

use std::collections::HashMap;

use pgpulse_cache::CacheStats;
use pgpulse_proxy::{PoolKey, PoolMode, PoolSnapshot};
use pgpulse_store::{CacheSnapshot, PoolStat, Timestamp};
use serde_json::json;

/// Per-fingerprint and per-table rows kept in a cache snapshot's details.
const DETAIL_ROWS: usize = 50;

/// Turns successive cache and pool readings into store rows.
#[derive(Debug, Default)]
pub struct Snapshotter {
    instance: String,
    last_cache: Option<(u64, u64)>,
    last_wait: HashMap<PoolKey, (u64, u64)>,
}

impl Snapshotter {
    /// A snapshotter whose rows name `instance`.
    pub fn new(instance: String) -> Self {
        Snapshotter {
            instance,
            ..Snapshotter::default()
        }
    }

    /// The cache row for `stats`: the hit rate is over the lookups since the
    /// previous call (over all lookups for the first).
    pub fn cache(&mut self, stats: &CacheStats, now: Timestamp) -> CacheSnapshot {
        let (prev_hits, prev_misses) = self.last_cache.unwrap_or((0, 0));
        self.last_cache = Some((stats.hits, stats.misses));
        let hits = stats.hits.saturating_sub(prev_hits);
        let misses = stats.misses.saturating_sub(prev_misses);
        let item = |s: &pgpulse_cache::ItemStats| {
            json!({
                "hits": s.hits, "misses": s.misses, "fills": s.fills,
                "refusals": s.refusals, "invalidations": s.invalidations,
                "hit_rate": s.hit_rate,
                "miss_causes": causes(&s.miss_causes),
                "last_refusal": s.last_refusal.map(|r| r.as_str()),
            })
        };
        let details = json!({
            "coalesced": stats.coalesced,
            "stale_served": stats.stale_served,
            "keyed_writes": stats.keyed_writes,
            "suspensions": stats.suspensions,
            "miss_causes": causes(&stats.miss_causes),
            "refusals": stats.refusals.iter()
                .map(|(r, n)| (r.as_str().to_owned(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "fingerprints": stats.fingerprints.iter().take(DETAIL_ROWS)
                .map(|(fp, s)| (format!("{fp:016x}"), item(s)))
                .collect::<serde_json::Map<_, _>>(),
            "tables": stats.tables.iter().take(DETAIL_ROWS)
                .map(|(t, s)| (t.clone(), item(s)))
                .collect::<serde_json::Map<_, _>>(),
            "l2": stats.l2.as_ref().map(|l2| json!({
                "hits": l2.hits, "misses": l2.misses, "errors": l2.errors,
                "breaker_open": l2.breaker_open,
            })),
        });
        CacheSnapshot {
            id: 0,
            taken_at: now,
            instance: self.instance.clone(),
            hits: to_i64(stats.hits),
            misses: to_i64(stats.misses),
            hit_rate: ratio(hits, hits + misses),
            entries: to_i64(stats.entries),
            bytes: to_i64(stats.bytes),
            evictions: to_i64(stats.evictions),
            fills: to_i64(stats.fills),
            invalidations: to_i64(stats.invalidations),
            refusals: to_i64(stats.refusals.iter().map(|(_, n)| n).sum()),
            details,
        }
    }

    /// One row per pool: the mean wait is over the checkouts since the
    /// previous call.
    pub fn pools(&mut self, pools: &[PoolSnapshot], now: Timestamp) -> Vec<PoolStat> {
        let mut seen = HashMap::with_capacity(pools.len());
        let rows = pools
            .iter()
            .map(|p| {
                let (prev_count, prev_time) = self.last_wait.get(&p.key).copied().unwrap_or((0, 0));
                seen.insert(p.key.clone(), (p.wait_count, p.wait_time_us));
                let count = p.wait_count.saturating_sub(prev_count);
                let time = p.wait_time_us.saturating_sub(prev_time);
                PoolStat {
                    id: 0,
                    taken_at: now,
                    instance: self.instance.clone(),
                    database: p.key.database.clone(),
                    user_name: p.key.user.clone(),
                    mode: match p.mode {
                        PoolMode::Session => "session",
                        PoolMode::Transaction => "transaction",
                    }
                    .to_owned(),
                    pool_size: to_i64(p.size as u64),
                    clients_active: to_i64(p.clients.saturating_sub(p.waiting) as u64),
                    clients_waiting: to_i64(p.waiting as u64),
                    servers_active: to_i64(p.servers_active as u64),
                    servers_idle: to_i64(p.servers_idle as u64),
                    utilization: ratio(p.servers_active as u64, p.size as u64),
                    avg_wait_ms: if count == 0 {
                        0.0
                    } else {
                        time as f64 / count as f64 / 1000.0
                    },
                    max_wait_ms: p.max_wait_us as f64 / 1000.0,
                    transactions: to_i64(p.xact_count),
                    queries: to_i64(p.query_count),
                }
            })
            .collect();
        self.last_wait = seen;
        rows
    }
}

/// Misses by cause, as an object keyed by the causes' names.
fn causes(m: &pgpulse_cache::MissCauses) -> serde_json::Value {
    pgpulse_cache::MissCause::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), json!(m.of(*c))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// This instance's name in the store: host name and proxy port, so that
/// several instances sharing a PostgreSQL store can be told apart.
pub fn instance_name(listen_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{listen_port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(wait_count: u64, wait_time_us: u64, active: usize) -> PoolSnapshot {
        PoolSnapshot {
            key: PoolKey {
                database: "medspa".into(),
                user: "app".into(),
            },
            mode: PoolMode::Transaction,
            size: 4,
            clients: 10,
            waiting: 3,
            servers_open: 4,
            servers_active: active,
            servers_idle: 4 - active,
            xact_count: 100,
            query_count: 200,
            xact_time_us: 0,
            query_time_us: 0,
            wait_count,
            wait_time_us,
            max_wait_us: 9_000,
            bytes_received: 0,
            bytes_sent: 0,
        }
    }

    #[test]
    fn pool_rows_rate_waits_since_the_previous_snapshot() {
        let mut s = Snapshotter::new("host:6432".into());
        let now = chrono::Utc::now();
        let first = s.pools(&[pool(10, 10_000, 2)], now);
        assert_eq!(first[0].avg_wait_ms, 1.0);
        assert_eq!(first[0].utilization, 0.5);
        assert_eq!(first[0].clients_active, 7);
        assert_eq!(first[0].clients_waiting, 3);
        // 10 more checkouts that waited 50 ms in all: 5 ms each.
        let second = s.pools(&[pool(20, 60_000, 4)], now);
        assert_eq!(second[0].avg_wait_ms, 5.0);
        assert_eq!(second[0].utilization, 1.0);
        assert_eq!(second[0].max_wait_ms, 9.0);
        // No checkout since: no wait, not the old mean.
        let third = s.pools(&[pool(20, 60_000, 0)], now);
        assert_eq!(third[0].avg_wait_ms, 0.0);
    }
}
