//! Advice that is not about indexes, all pure functions of figures the
//! caller gathered:
//!
//! - [`cache_candidates`]: hot, read-only statements the result cache does
//!   not serve (hits ≈ 0 with many calls), with the hit rate to expect from
//!   the read/write ratio of their tables (a write to a table invalidates
//!   its cached results, so roughly `reads / (reads + writes)`).
//! - [`pool_advice`]: grow a pool when clients wait while its servers are
//!   busy; shrink it when it is mostly idle and nobody waits.
//! - [`vacuum_advice`]: tables whose dead-tuple share is high.

use pgpulse_sql::analyze;
use pgpulse_store::NewRecommendation;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AdvisorConfig;
use super::ident::qualified;
use super::workload::{TableActivity, WorkloadStatement};

/// Hot, read-only statements that the cache does not serve.
pub fn cache_candidates(
    workload: &[WorkloadStatement],
    tables: &[TableActivity],
    config: &AdvisorConfig,
) -> Vec<NewRecommendation> {
    let mut out = Vec::new();
    for s in workload {
        let a = analyze(&s.query);
        let hit_share = s.cache_hits as f64 / s.calls.max(1) as f64;
        if s.calls < config.cache_min_calls || hit_share > 0.01 || !a.is_read_only() {
            continue;
        }
        let used: Vec<&TableActivity> = a
            .tables_read
            .iter()
            .filter_map(|t| {
                tables.iter().find(|x| {
                    x.table == t.name && t.schema.as_deref().is_none_or(|sch| sch == x.schema)
                })
            })
            .collect();
        if used.is_empty() || used.len() != a.tables_read.len() {
            continue; // views, functions, other databases: cannot judge
        }
        let reads: i64 = used.iter().map(|t| t.rows_read).sum();
        let writes: i64 = used.iter().map(|t| t.rows_written).sum();
        let expected = reads as f64 / (reads + writes).max(1) as f64;
        if expected < config.cache_min_expected_hit_rate {
            continue;
        }
        let names: Vec<String> = used
            .iter()
            .map(|t| format!("{}.{}", t.schema, t.table))
            .collect();
        out.push(NewRecommendation {
            kind: "cache_candidate".into(),
            dedupe_key: format!("cache_candidate:{}:{}", s.database, s.fingerprint),
            database: s.database.clone(),
            title: format!("Cache statement {}", s.fingerprint),
            rationale: format!(
                "{} calls (mean {:.2} ms, {:.0} ms in total) with {} cache hits; it only reads \
                 {}, which saw {reads} rows read vs {writes} written, so about {:.0}% of \
                 lookups should hit once cached.",
                s.calls,
                s.mean_ms,
                s.total_ms,
                s.cache_hits,
                names.join(", "),
                expected * 100.0
            ),
            statement: None,
            confidence: 0.6,
            expected_benefit: json!({
                "expected_hit_rate": expected,
                "time_saved_ms": s.total_ms * expected,
            }),
            details: json!({
                "fingerprint": s.fingerprint, "fingerprints": [s.fingerprint],
                "query": s.query, "tables": names,
            }),
        });
    }
    out
}

/// One pool's figures for [`pool_advice`], as the integrator measures them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolInput {
    /// Database of the pool.
    pub database: String,
    /// User of the pool.
    pub user: String,
    /// Configured size.
    pub pool_size: u32,
    /// Mean share of the pool's servers in use over the window, 0..=1.
    pub utilization: f64,
    /// Clients that had to wait for a server in the window.
    pub waits: u64,
    /// Mean wait of those clients, ms.
    pub avg_wait_ms: f64,
    /// The server's `max_connections` minus other users' needs: the size
    /// the pool may not exceed.
    pub max_size: u32,
}

/// Grow a saturated pool, shrink an idle one; `None` when it looks right.
pub fn pool_advice(p: &PoolInput, config: &AdvisorConfig) -> Option<NewRecommendation> {
    let (to, why, confidence) = if p.waits > 0 && p.utilization >= config.pool_busy {
        let grown = ((p.pool_size as f64 * 1.5).ceil() as u32)
            .max(p.pool_size + 1)
            .min(p.max_size);
        if grown <= p.pool_size {
            return None;
        }
        let why = format!(
            "{} clients waited (mean {:.1} ms) while {:.0}% of the {} servers were busy.",
            p.waits,
            p.avg_wait_ms,
            p.utilization * 100.0,
            p.pool_size
        );
        (grown, why, 0.7)
    } else if p.waits == 0 && p.utilization < config.pool_idle && p.pool_size > 2 {
        let shrunk = ((p.pool_size as f64 * p.utilization * 2.0).ceil() as u32).max(2);
        let why = format!(
            "Nobody waited and only {:.0}% of the {} servers were in use: {shrunk} would \
             leave twice the observed need and free server connections.",
            p.utilization * 100.0,
            p.pool_size
        );
        (shrunk, why, 0.5)
    } else {
        return None;
    };
    Some(NewRecommendation {
        kind: "pool_size".into(),
        dedupe_key: format!("pool_size:{}:{}", p.database, p.user),
        database: p.database.clone(),
        title: format!(
            "Resize pool {}/{} from {} to {to}",
            p.database, p.user, p.pool_size
        ),
        rationale: why,
        statement: None,
        confidence,
        expected_benefit: json!({ "waits_avoided": if to > p.pool_size { p.waits } else { 0 } }),
        details: json!({
            "database": p.database, "user": p.user, "from": p.pool_size, "to": to,
            "utilization": p.utilization, "waits": p.waits, "avg_wait_ms": p.avg_wait_ms,
            "fingerprints": [],
        }),
    })
}

/// Tables with at least `vacuum_min_dead` dead rows making up at least
/// `vacuum_dead_share` of the table.
pub fn vacuum_advice(
    database: &str,
    tables: &[TableActivity],
    config: &AdvisorConfig,
) -> Vec<NewRecommendation> {
    tables
        .iter()
        .filter(|t| {
            t.n_dead_tup >= config.vacuum_min_dead && t.dead_share() >= config.vacuum_dead_share
        })
        .map(|t| NewRecommendation {
            kind: "vacuum".into(),
            dedupe_key: format!("vacuum:{database}:{}.{}", t.schema, t.table),
            database: database.to_string(),
            title: format!("Vacuum {}.{}", t.schema, t.table),
            rationale: format!(
                "{}.{} has {} dead rows, {:.0}% of its rows; last vacuum: {}. Scans read \
                 them and the table grows until they are vacuumed.",
                t.schema,
                t.table,
                t.n_dead_tup,
                t.dead_share() * 100.0,
                t.last_vacuum
                    .map_or_else(|| "never".to_string(), |v| v.to_rfc3339())
            ),
            statement: Some(format!(
                "VACUUM (ANALYZE) {}",
                qualified(&t.schema, &t.table)
            )),
            confidence: 0.8,
            expected_benefit: json!({ "dead_rows_reclaimed": t.n_dead_tup }),
            details: json!({
                "schema": t.schema, "table": t.table, "n_dead_tup": t.n_dead_tup,
                "n_live_tup": t.n_live_tup, "dead_share": t.dead_share(), "fingerprints": [],
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, read: i64, written: i64, live: i64, dead: i64) -> TableActivity {
        TableActivity {
            schema: "public".into(),
            table: name.into(),
            n_live_tup: live,
            n_dead_tup: dead,
            rows_read: read,
            rows_written: written,
            seq_scan: 0,
            last_vacuum: None,
        }
    }

    fn stmt(q: &str, calls: u64, hits: u64) -> WorkloadStatement {
        WorkloadStatement {
            fingerprint: "00000000000000aa".into(),
            query: q.into(),
            database: "db".into(),
            calls,
            total_ms: calls as f64 * 2.0,
            mean_ms: 2.0,
            p95_ms: 3.0,
            cache_hits: hits,
            cache_misses: calls - hits,
        }
    }

    #[test]
    fn read_mostly_uncached_statements_are_cache_candidates() {
        let c = AdvisorConfig::default();
        let tables = [
            table("services", 9_000, 1_000, 10, 0),
            table("logins", 10, 1_000, 10, 0),
        ];
        let recs = cache_candidates(
            &[
                stmt("SELECT * FROM services WHERE id = $1", 5_000, 0),
                stmt("SELECT * FROM logins WHERE id = $1", 5_000, 0),
                stmt("SELECT * FROM services WHERE id = $1", 5_000, 2_000),
                stmt("UPDATE services SET a = $1", 5_000, 0),
                stmt("SELECT * FROM services WHERE id = $1", 10, 0),
            ],
            &tables,
            &c,
        );
        assert_eq!(recs.len(), 1, "{recs:#?}");
        assert_eq!(recs[0].expected_benefit["expected_hit_rate"], json!(0.9));
        assert!(
            recs[0].rationale.contains("about 90%"),
            "{}",
            recs[0].rationale
        );
    }

    #[test]
    fn pools_grow_when_saturated_and_shrink_when_idle() {
        let c = AdvisorConfig::default();
        let mut p = PoolInput {
            database: "db".into(),
            user: "app".into(),
            pool_size: 10,
            utilization: 0.97,
            waits: 120,
            avg_wait_ms: 40.0,
            max_size: 100,
        };
        let r = pool_advice(&p, &c).expect("grow");
        assert_eq!(
            (r.details["from"].clone(), r.details["to"].clone()),
            (json!(10), json!(15))
        );
        p.max_size = 10;
        assert!(pool_advice(&p, &c).is_none(), "capped by max_size");
        p.waits = 0;
        p.utilization = 0.1;
        let r = pool_advice(&p, &c).expect("shrink");
        assert_eq!(r.details["to"], json!(2));
        p.utilization = 0.5;
        assert!(pool_advice(&p, &c).is_none());
    }

    #[test]
    fn vacuum_when_dead_rows_are_many_and_a_large_share() {
        let c = AdvisorConfig::default();
        let recs = vacuum_advice(
            "db",
            &[
                table("churn", 0, 0, 50_000, 50_000),
                table("small", 0, 0, 10, 90),
                table("big", 0, 0, 10_000_000, 50_000),
            ],
            &c,
        );
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].statement.as_deref(),
            Some("VACUUM (ANALYZE) \"public\".\"churn\"")
        );
    }
}
