//! The optimization advisor: finds what to change in a database, stores it
//! as recommendations, implements one on request and measures its effect.
//!
//! ```text
//! advise(ctx) ─┬─ collect_index_usage ──► index_findings   (unused, duplicate,
//!              │   (live catalog)                          redundant, invalid)
//!              ├─ workload (Insight::top / store patterns) ─► missing_indexes
//!              │   predicate_columns → HypoPG costs (or heuristic)
//!              ├─ pg_stat_user_tables ──► cache_candidates, vacuum_advice
//!              ├─ PoolInput (integrator) ──► pool_advice
//!              └─► Store::upsert_recommendation (dedupe by key; dismissed stays)
//! implement(id, dry_run, actor, ctx) ─► advisory lock ─► DDL on a direct
//!              connection, or Actions callback ─► audit ─► status applied / failed
//! measure_impact(store, rec, window, now) ─► pattern rows before / after
//!              applied_at, merged histograms ─► set_recommendation_impact
//! ```
//!
//! Every connection to the analysed server is a direct `tokio_postgres`
//! client the caller opens (never a pgpulse pool connection): the advisor
//! prepares statements, sets `plan_cache_mode` and creates hypothetical
//! indexes on it, all undone before it returns.

mod advice;
mod error;
mod hypo;
mod ident;
mod impact;
mod implement;
mod indexes;
mod missing;
mod workload;

use std::time::Duration;

use pgpulse_store::{NewRecommendation, Recommendation, Store, Timestamp};
use tokio_postgres::Client;

pub use advice::{PoolInput, cache_candidates, pool_advice, vacuum_advice};
pub use error::AdvisorError;
pub use hypo::{GenericPlan, ensure_hypopg, generic_plan};
pub use ident::{index_name, qualified, quote_ident};
pub use impact::{Impact, ImpactSide, MIN_CALLS as IMPACT_MIN_CALLS, measure_impact};
pub use implement::{
    Actions, CacheRule, ImplementContext, ImplementOutcome, PoolResize, advisory_lock_key,
    implement,
};
pub use indexes::{IndexFindings, index_findings};
pub use workload::{
    TableActivity, WorkloadStatement, table_activity, tables_from_statistics,
    workload_from_insight, workload_from_store,
};

/// The advisor's thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvisorConfig {
    /// How old the statistics reset must be before an index with no scan
    /// is called unused. Default 7 days.
    pub unused_min_stats_age: Duration,
    /// The planned-cost drop (0..=1) a hypothetical index must bring to
    /// some statement to be recommended. Default 0.5.
    pub min_cost_reduction: f64,
    /// Validate index candidates with HypoPG when it is available.
    /// Default true; false uses the heuristic.
    pub use_hypopg: bool,
    /// When HypoPG is packaged on the server but not created in the
    /// database, run `CREATE EXTENSION IF NOT EXISTS hypopg` (it needs the
    /// right to create extensions). Default true.
    pub install_hypopg: bool,
    /// Statements with fewer calls are not considered for indexes.
    /// Default 10.
    pub min_calls: u64,
    /// Without HypoPG, tables smaller than this (rows) are not judged.
    /// Default 10,000.
    pub large_table_rows: i64,
    /// A table writing at least this many rows per row read is
    /// write-heavy (the rationale states the index's write overhead).
    /// Default 1.0.
    pub write_heavy_ratio: f64,
    /// Calls a statement needs to be a cache candidate. Default 1,000.
    pub cache_min_calls: u64,
    /// The lowest expected hit rate worth a cache recommendation.
    /// Default 0.5.
    pub cache_min_expected_hit_rate: f64,
    /// Pool utilization (0..=1) from which waits mean "too small".
    /// Default 0.9.
    pub pool_busy: f64,
    /// Pool utilization below which an unwaited pool is "too large".
    /// Default 0.25.
    pub pool_idle: f64,
    /// Dead rows a table needs before vacuum is advised. Default 10,000.
    pub vacuum_min_dead: i64,
    /// Dead share (0..=1) from which vacuum is advised. Default 0.2.
    pub vacuum_dead_share: f64,
}

impl Default for AdvisorConfig {
    fn default() -> Self {
        AdvisorConfig {
            unused_min_stats_age: Duration::from_secs(7 * 86_400),
            min_cost_reduction: 0.5,
            use_hypopg: true,
            install_hypopg: true,
            min_calls: 10,
            large_table_rows: 10_000,
            write_heavy_ratio: 1.0,
            cache_min_calls: 1_000,
            cache_min_expected_hit_rate: 0.5,
            pool_busy: 0.9,
            pool_idle: 0.25,
            vacuum_min_dead: 10_000,
            vacuum_dead_share: 0.2,
        }
    }
}

/// What one [`advise`] needs.
#[derive(Debug)]
pub struct AdviseContext<'a> {
    /// Where recommendations are stored.
    pub store: &'a dyn Store,
    /// A direct connection to the analysed database (not a pool's).
    pub client: &'a Client,
    /// The workload to judge (statements of other databases are ignored).
    pub workload: &'a [WorkloadStatement],
    /// Pools to judge, as the integrator measured them.
    pub pools: &'a [PoolInput],
}

/// What one [`advise`] found and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AdviseRun {
    /// The stored recommendations (new or refreshed; a dismissed key is
    /// returned as it is, still dismissed).
    pub recommendations: Vec<Recommendation>,
    /// What could not be judged, and why.
    pub notes: Vec<String>,
    /// Whether HypoPG validated the index candidates.
    pub hypopg: bool,
}

/// Analyses the connection's database and stores the recommendations.
pub async fn advise(
    ctx: &AdviseContext<'_>,
    config: &AdvisorConfig,
    now: Timestamp,
) -> Result<AdviseRun, AdvisorError> {
    let database: String = ctx
        .client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    let indexes = crate::collect::collect_index_usage(ctx.client, now).await?;
    let found = index_findings(&indexes, config, now);
    let mut notes = found.notes;
    let mut recs: Vec<NewRecommendation> = found.recommendations;
    let tables = table_activity(ctx.client).await?;
    let hypopg = config.use_hypopg && ensure_hypopg(ctx.client, config.install_hypopg).await?;
    if !hypopg {
        notes.push(
            "HypoPG is not available: missing indexes are judged by a heuristic \
             (lower confidence, no estimated gain)"
                .into(),
        );
    }
    let workload: Vec<WorkloadStatement> = ctx
        .workload
        .iter()
        .filter(|s| s.database == database)
        .cloned()
        .collect();
    let server = missing::Server {
        client: ctx.client,
        hypopg,
        indexes: &indexes,
        tables: &tables,
    };
    recs.extend(missing::missing_indexes(&server, &workload, config).await?);
    recs.extend(cache_candidates(&workload, &tables, config));
    recs.extend(vacuum_advice(&database, &tables, config));
    recs.extend(
        ctx.pools
            .iter()
            .filter(|p| p.database == database)
            .filter_map(|p| pool_advice(p, config)),
    );
    let mut stored = Vec::with_capacity(recs.len());
    for r in &recs {
        stored.push(ctx.store.upsert_recommendation(r, now).await?.0);
    }
    Ok(AdviseRun {
        recommendations: stored,
        notes,
        hypopg,
    })
}
