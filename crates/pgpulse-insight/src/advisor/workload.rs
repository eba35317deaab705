//! The inputs the advisor judges the workload by: [`WorkloadStatement`]
//! (one normalized statement's figures, from the live [`Insight`]
//! statistics or the store's pattern rows) and [`TableActivity`] (one
//! table's reads, writes and dead tuples from `pg_stat_user_tables`).

use std::collections::BTreeMap;

use pgpulse_store::{Page, PatternFilter, PatternOrder, Store, Window};
use serde::Serialize;
use tokio_postgres::Client;

use super::error::AdvisorError;
use crate::insight::Insight;
use crate::registry::OrderBy;

/// One normalized statement of one database, as the advisor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadStatement {
    /// Fingerprint (16 hex digits).
    pub fingerprint: String,
    /// Normalized text (`$n` parameters).
    pub query: String,
    /// Database name.
    pub database: String,
    /// Executions.
    pub calls: u64,
    /// Sum of durations, ms.
    pub total_ms: f64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Executions answered by the result cache.
    pub cache_hits: u64,
    /// Executions that looked in the cache and missed.
    pub cache_misses: u64,
}

impl WorkloadStatement {
    fn merge(&mut self, o: &WorkloadStatement) {
        self.calls += o.calls;
        self.total_ms += o.total_ms;
        self.mean_ms = self.total_ms / self.calls.max(1) as f64;
        self.p95_ms = self.p95_ms.max(o.p95_ms);
        self.cache_hits += o.cache_hits;
        self.cache_misses += o.cache_misses;
    }
}

/// Merges rows of the same (fingerprint, database) (several users) and
/// orders by total time, largest first.
fn merged(rows: impl IntoIterator<Item = WorkloadStatement>) -> Vec<WorkloadStatement> {
    let mut by: BTreeMap<(String, String), WorkloadStatement> = BTreeMap::new();
    for r in rows {
        match by.get_mut(&(r.fingerprint.clone(), r.database.clone())) {
            Some(m) => m.merge(&r),
            None => {
                by.insert((r.fingerprint.clone(), r.database.clone()), r);
            }
        }
    }
    let mut v: Vec<_> = by.into_values().collect();
    v.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    v
}

/// The `n` hottest (total time) and `n` slowest (p95) statements of the
/// live statistics, merged over users.
pub fn workload_from_insight(insight: &Insight, n: usize) -> Vec<WorkloadStatement> {
    let rows = insight
        .top(n, OrderBy::TotalTime)
        .into_iter()
        .chain(insight.top(n, OrderBy::P95));
    let mut seen = std::collections::HashSet::new();
    merged(
        rows.filter(|s| seen.insert((s.fingerprint, s.database.clone(), s.user.clone())))
            .map(|s| WorkloadStatement {
                fingerprint: s.fingerprint.to_string(),
                query: s.query.to_string(),
                database: s.database.to_string(),
                calls: s.calls,
                total_ms: crate::patterns::ms(s.total_time),
                mean_ms: crate::patterns::ms(s.mean_time),
                p95_ms: crate::patterns::ms(s.p95),
                cache_hits: s.cache_hits,
                cache_misses: s.cache_misses,
            }),
    )
}

/// The `n` hottest and `n` slowest statements of the store's pattern rows
/// in `window`, merged over users. The p95 is exact over the window (the
/// periods' histograms merged); when a period has no histogram it is the
/// worst period's p95.
pub async fn workload_from_store(
    store: &dyn Store,
    window: Window,
    database: Option<&str>,
    n: u32,
) -> Result<Vec<WorkloadStatement>, AdvisorError> {
    let mut rows = Vec::new();
    for order in [PatternOrder::TotalTime, PatternOrder::P95] {
        let filter = PatternFilter {
            window,
            fingerprint: None,
            database: database.map(str::to_string),
            order,
            page: Page {
                limit: n,
                offset: 0,
            },
        };
        rows.extend(store.pattern_summaries(&filter).await?.items);
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = merged(
        rows.into_iter()
            .filter(|s| {
                seen.insert((
                    s.fingerprint.clone(),
                    s.database.clone(),
                    s.user_name.clone(),
                ))
            })
            .map(|s| WorkloadStatement {
                fingerprint: s.fingerprint,
                query: s.query,
                database: s.database,
                calls: u64::try_from(s.calls).unwrap_or(0),
                total_ms: s.total_time_ms,
                mean_ms: s.mean_ms,
                p95_ms: s.p95_ms,
                cache_hits: u64::try_from(s.cache_hits).unwrap_or(0),
                cache_misses: u64::try_from(s.cache_misses).unwrap_or(0),
            }),
    );
    for stmt in &mut out {
        let rows = store.patterns(window, Some(&stmt.fingerprint)).await?;
        let blobs: Vec<&[u8]> = rows
            .iter()
            .filter(|r| r.database == stmt.database)
            .map(|r| r.histogram.as_deref())
            .collect::<Option<_>>()
            .unwrap_or_default();
        if !blobs.is_empty() {
            let h = crate::patterns::merge_histograms(&blobs)?;
            stmt.p95_ms = h.value_at_quantile(0.95) as f64 / 1000.0;
        }
    }
    Ok(out)
}

/// One table's activity since the statistics reset (`pg_stat_user_tables`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableActivity {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Estimated live rows (`n_live_tup`).
    pub n_live_tup: i64,
    /// Dead rows (`n_dead_tup`).
    pub n_dead_tup: i64,
    /// Rows read: `seq_tup_read + idx_tup_fetch`.
    pub rows_read: i64,
    /// Rows written: `n_tup_ins + n_tup_upd + n_tup_del`.
    pub rows_written: i64,
    /// Sequential scans.
    pub seq_scan: i64,
    /// Last vacuum, manual or automatic.
    pub last_vacuum: Option<pgpulse_store::Timestamp>,
}

impl TableActivity {
    /// Writes per row read (`∞` as `f64::INFINITY` when nothing was read).
    pub fn write_ratio(&self) -> f64 {
        if self.rows_read == 0 {
            if self.rows_written == 0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            self.rows_written as f64 / self.rows_read as f64
        }
    }

    /// Dead rows over live plus dead rows, 0..=1.
    pub fn dead_share(&self) -> f64 {
        let all = self.n_live_tup.max(0) + self.n_dead_tup.max(0);
        if all == 0 {
            0.0
        } else {
            self.n_dead_tup.max(0) as f64 / all as f64
        }
    }
}

/// The tables of a stored `database_statistics` row as [`TableActivity`]
/// (for vacuum advice without a connection): dead and live rows and the
/// last vacuum; reads and writes are not in that row and are 0.
pub fn tables_from_statistics(stats: &pgpulse_store::DatabaseStatistics) -> Vec<TableActivity> {
    let tables: Vec<crate::collect::TableStats> =
        serde_json::from_value(stats.tables.clone()).unwrap_or_default();
    tables
        .into_iter()
        .map(|t| TableActivity {
            schema: t.schema,
            table: t.table,
            n_live_tup: t.n_live_tup,
            n_dead_tup: t.n_dead_tup,
            rows_read: 0,
            rows_written: 0,
            seq_scan: 0,
            last_vacuum: t.last_vacuum.max(t.last_autovacuum),
        })
        .collect()
}

/// Reads every user table's activity of the connection's database.
pub async fn table_activity(client: &Client) -> Result<Vec<TableActivity>, AdvisorError> {
    let rows = client
        .query(
            "SELECT schemaname::text, relname::text, n_live_tup, n_dead_tup,
                    coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0),
                    n_tup_ins + n_tup_upd + n_tup_del, coalesce(seq_scan, 0),
                    greatest(last_vacuum, last_autovacuum)
             FROM pg_stat_user_tables ORDER BY 1, 2",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TableActivity {
                schema: r.try_get(0)?,
                table: r.try_get(1)?,
                n_live_tup: r.try_get(2)?,
                n_dead_tup: r.try_get(3)?,
                rows_read: r.try_get::<_, Option<i64>>(4)?.unwrap_or(0),
                rows_written: r.try_get::<_, Option<i64>>(5)?.unwrap_or(0),
                seq_scan: r.try_get(6)?,
                last_vacuum: r.try_get(7)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(fp: &str, calls: u64, total: f64, p95: f64) -> WorkloadStatement {
        WorkloadStatement {
            fingerprint: fp.into(),
            query: "q".into(),
            database: "db".into(),
            calls,
            total_ms: total,
            mean_ms: total / calls as f64,
            p95_ms: p95,
            cache_hits: 0,
            cache_misses: calls,
        }
    }

    #[test]
    fn stored_statistics_tables_feed_vacuum_advice() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("ts");
        let stats = pgpulse_store::DatabaseStatistics {
            id: 1,
            collected_at: at,
            database: "db".into(),
            size_bytes: 0,
            xact_commit: 0,
            xact_rollback: 0,
            blks_hit: 0,
            blks_read: 0,
            buffer_hit_ratio: 0.0,
            deadlocks: 0,
            temp_bytes: 0,
            connections: serde_json::json!({}),
            long_running_transactions: 0,
            lock_waits: 0,
            dead_tuples: 30_000,
            bloat_bytes: 0,
            tables: serde_json::json!([{
                "schema": "public", "table": "churn", "total_bytes": 1, "table_bytes": 1,
                "index_bytes": 0, "n_live_tup": 30000, "n_dead_tup": 30000, "bloat_bytes": 0,
                "last_vacuum": null, "last_autovacuum": at, "size_estimated": false
            }]),
        };
        let tables = tables_from_statistics(&stats);
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].dead_share(), 0.5);
        assert_eq!(tables[0].last_vacuum, Some(at));
        let recs =
            crate::advisor::vacuum_advice("db", &tables, &crate::advisor::AdvisorConfig::default());
        assert_eq!(recs.len(), 1);
        assert!(recs[0].rationale.contains("50%"), "{}", recs[0].rationale);
    }

    #[test]
    fn users_merge_and_order_by_total_time() {
        let m = merged([
            w("a", 10, 100.0, 20.0),
            w("b", 1, 500.0, 500.0),
            w("a", 30, 100.0, 5.0),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].fingerprint, "b");
        assert_eq!(
            (m[1].calls, m[1].total_ms, m[1].mean_ms, m[1].p95_ms),
            (40, 200.0, 5.0, 20.0)
        );
    }
}
