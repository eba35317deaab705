//! [`PgStore`]: the PostgreSQL backend of the [`Store`] trait. This module
//! owns connecting (options, the connection pool, `search_path`) and routes
//! each trait method to the file that owns its table group; the schema,
//! views, functions and row-level security are the migrations in `sql/`.
//!
//! What a deployment needs to know:
//! - The store lives in its own schema (`pgpulse` by default), created at
//!   the first connect: the user needs `CREATE` on the database, or the
//!   schema must exist and belong to it. Every pooled connection starts
//!   with `-c search_path=<schema>` (appended to the URL's `options`).
//! - Every table has row-level security enabled and forced, with one
//!   policy admitting members of the admin role (default: the connecting
//!   user). Nothing is granted to `PUBLIC`; the admin role gets the tables,
//!   views (`security_invoker`), sequences and functions. A superuser
//!   bypasses row-level security, as PostgreSQL always allows.
//! - The SQL functions (`log_performance_data`, `create_performance_alert`,
//!   `update_query_pattern`, `get_performance_statistics`,
//!   `analyze_query_patterns`, `get_slow_queries`,
//!   `cleanup_performance_data`, `generate_performance_report`) run with
//!   the caller's rights and a fixed `search_path`, so they can be called
//!   schema-qualified from any session. `raise_alert` and `upsert_patterns`
//!   go through them.
//! - Connections honour the store URL's own `sslmode` (default `prefer`)
//!   and `sslrootcert`, through `pgpulse_upstream` like every other direct
//!   connection.

mod alerts;
mod api_keys;
mod baselines;
mod collections;
mod filter;
mod jobs;
mod logs;
mod migrate;
mod patterns;
mod recommendations;
mod reports;
mod retention;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

use crate::error::StoreError;
use crate::model::*;
use crate::store::Store;

/// How long a caller waits for a free pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach and lay out the PostgreSQL store.
#[derive(Clone, PartialEq, Eq)]
pub struct PgStoreOptions {
    /// `postgres://user:pass@host:port/db?...`; its parameters are kept.
    pub url: String,
    /// Schema holding pgpulse's tables (created if missing); default
    /// `pgpulse`. Lower-case letters, digits and `_` only.
    pub schema: String,
    /// Role whose members may read and write the tables (row-level
    /// security); default: the connecting user. It must exist and the
    /// connecting user must be a member. Changing it re-applies the
    /// row-level security migration at the next connect (the old role
    /// keeps its grants but no policy admits it any more).
    pub admin_role: Option<String>,
    /// Connections kept; default 4.
    pub pool_size: usize,
}

impl PgStoreOptions {
    /// Options with the defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> PgStoreOptions {
        PgStoreOptions {
            url: url.into(),
            schema: "pgpulse".to_string(),
            admin_role: None,
            pool_size: 4,
        }
    }
}

impl fmt::Debug for PgStoreOptions {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStoreOptions")
            .field("schema", &self.schema)
            .field("admin_role", &self.admin_role)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// The PostgreSQL store: a pool of connections whose `search_path` is the
/// store's schema. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    schema: String,
    admin_role: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("admin_role", &self.admin_role)
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgStore {
    /// Connects, creates the schema if needed and applies the migrations
    /// not applied yet (under an advisory lock, so that instances starting
    /// together do not race).
    pub async fn connect(opts: PgStoreOptions) -> Result<PgStore, StoreError> {
        check_identifier(&opts.schema)?;
        let mut server = pgpulse_upstream::Upstream::from_url(&opts.url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let tls = server.make_tls();
        let config = server.config_mut();
        // Every connection, including ones the pool opens later, starts
        // with the schema first on its search_path.
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => {
                format!("{o} -c search_path={}", opts.schema)
            }
            _ => format!("-c search_path={}", opts.schema),
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("pgpulse-store");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config.clone(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let mut client = pool.get().await.map_err(pool_error)?;
        let admin_role = match opts.admin_role {
            Some(role) => role,
            None => client
                .query_one("SELECT current_user::text", &[])
                .await?
                .try_get(0)?,
        };
        migrate::check_membership(&client, &admin_role).await?;
        migrate::run(&mut client, &opts.schema, &admin_role).await?;
        drop(client);
        Ok(PgStore {
            pool,
            schema: opts.schema,
            admin_role,
        })
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The role whose members may read and write the tables.
    pub fn admin_role(&self) -> &str {
        &self.admin_role
    }

    /// A pooled connection.
    async fn conn(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// Accepts plain lower-case identifiers only, so that the schema name can
/// go unquoted into the connection options and the migrations.
fn check_identifier(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::InvalidUrl(format!(
            "store schema {name:?}: use lower-case letters, digits and _"
        )))
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
        other => StoreError::Pool(other.to_string()),
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn insert_logs(&self, rows: &[PerformanceLog]) -> Result<u64, StoreError> {
        logs::insert(self, rows).await
    }

    async fn logs(&self, filter: &LogFilter) -> Result<Paged<PerformanceLog>, StoreError> {
        logs::list(self, filter).await
    }

    async fn upsert_patterns(&self, rows: &[QueryPattern]) -> Result<u64, StoreError> {
        patterns::upsert(self, rows).await
    }

    async fn patterns(
        &self,
        window: Window,
        fingerprint: Option<&str>,
    ) -> Result<Vec<QueryPattern>, StoreError> {
        patterns::list(self, window, fingerprint).await
    }

    async fn pattern_summaries(
        &self,
        filter: &PatternFilter,
    ) -> Result<Paged<PatternSummary>, StoreError> {
        patterns::summaries(self, filter).await
    }

    async fn raise_alert(
        &self,
        alert: &NewAlert,
        at: Timestamp,
    ) -> Result<(Alert, bool), StoreError> {
        alerts::raise(self, alert, at).await
    }

    async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: Timestamp,
    ) -> Result<Alert, StoreError> {
        alerts::acknowledge(self, id, by, comment, at).await
    }

    async fn resolve_alerts(&self, dedupe_key: &str, at: Timestamp) -> Result<u64, StoreError> {
        alerts::resolve(self, dedupe_key, at).await
    }

    async fn alert(&self, id: i64) -> Result<Alert, StoreError> {
        alerts::one(self, id).await
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Paged<Alert>, StoreError> {
        alerts::list(self, filter).await
    }

    async fn insert_database_statistics(
        &self,
        row: &DatabaseStatistics,
    ) -> Result<i64, StoreError> {
        collections::insert_database_statistics(self, row).await
    }

    async fn database_statistics(
        &self,
        window: Window,
        database: Option<&str>,
    ) -> Result<Vec<DatabaseStatistics>, StoreError> {
        collections::database_statistics(self, window, database).await
    }

    async fn insert_index_usage(&self, rows: &[IndexUsage]) -> Result<u64, StoreError> {
        collections::insert_index_usage(self, rows).await
    }

    async fn latest_index_usage(
        &self,
        database: Option<&str>,
    ) -> Result<Vec<IndexUsage>, StoreError> {
        collections::latest_index_usage(self, database).await
    }

    async fn insert_cache_snapshot(&self, row: &CacheSnapshot) -> Result<i64, StoreError> {
        collections::insert_cache_snapshot(self, row).await
    }

    async fn cache_snapshots(&self, window: Window) -> Result<Vec<CacheSnapshot>, StoreError> {
        collections::cache_snapshots(self, window).await
    }

    async fn insert_pool_stats(&self, rows: &[PoolStat]) -> Result<u64, StoreError> {
        collections::insert_pool_stats(self, rows).await
    }

    async fn pool_stats(&self, window: Window) -> Result<Vec<PoolStat>, StoreError> {
        collections::pool_stats(self, window).await
    }

    async fn insert_report(&self, report: &Report) -> Result<i64, StoreError> {
        reports::insert(self, report).await
    }

    async fn reports(&self, page: Page) -> Result<Paged<ReportSummary>, StoreError> {
        reports::list(self, page).await
    }

    async fn report(&self, id: i64) -> Result<Report, StoreError> {
        reports::one(self, id).await
    }

    async fn upsert_recommendation(
        &self,
        rec: &NewRecommendation,
        at: Timestamp,
    ) -> Result<(Recommendation, bool), StoreError> {
        recommendations::upsert(self, rec, at).await
    }

    async fn recommendation(&self, id: i64) -> Result<Recommendation, StoreError> {
        recommendations::one(self, id).await
    }

    async fn recommendations(
        &self,
        filter: &RecommendationFilter,
    ) -> Result<Paged<Recommendation>, StoreError> {
        recommendations::list(self, filter).await
    }

    async fn set_recommendation_status(
        &self,
        id: i64,
        status: RecommendationStatus,
        by: Option<&str>,
        at: Timestamp,
    ) -> Result<Recommendation, StoreError> {
        recommendations::set_status(self, id, status, by, at).await
    }

    async fn set_recommendation_impact(
        &self,
        id: i64,
        impact: &serde_json::Value,
        at: Timestamp,
    ) -> Result<Recommendation, StoreError> {
        recommendations::set_impact(self, id, impact, at).await
    }

    async fn save_baseline(&self, baseline: &Baseline) -> Result<Baseline, StoreError> {
        baselines::save(self, baseline).await
    }

    async fn baselines(&self) -> Result<Vec<Baseline>, StoreError> {
        baselines::list(self).await
    }

    async fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        baselines::one(self, name).await
    }

    async fn record_job_run(&self, run: &JobRun) -> Result<i64, StoreError> {
        jobs::record_run(self, run).await
    }

    async fn job_runs(&self, job: Option<&str>, limit: u32) -> Result<Vec<JobRun>, StoreError> {
        jobs::runs(self, job, limit).await
    }

    async fn claim_job_occurrence(
        &self,
        job: &str,
        due_at: Timestamp,
        claimant: &str,
    ) -> Result<bool, StoreError> {
        jobs::claim(self, job, due_at, claimant).await
    }

    async fn audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        jobs::audit(self, record).await
    }

    async fn audit_log(&self, page: Page) -> Result<Paged<AuditRecord>, StoreError> {
        jobs::audit_log(self, page).await
    }

    async fn delete_older_than(
        &self,
        table: RetainedTable,
        cutoff: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError> {
        retention::delete_older_than(self, table, cutoff, batch).await
    }
}
