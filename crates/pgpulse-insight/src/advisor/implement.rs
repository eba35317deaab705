//! [`implement`]: applies one stored recommendation.
//!
//! A dry run only says what would run. Otherwise, on a direct connection
//! to the recommendation's database (never a pgpulse pool connection):
//! `pg_try_advisory_lock` on a key derived from the recommendation's dedupe
//! key (a second instance gets [`AdvisorError::Busy`]), the recommendation
//! is read again under the lock (one already applied is refused), then its
//! statement runs outside any transaction (`CREATE INDEX CONCURRENTLY`
//! cannot run in one), or the integrator's [`Actions`] callback runs for a
//! cache rule or a pool resize. A failed concurrent build leaves an
//! invalid index behind: it is dropped (`DROP INDEX CONCURRENTLY IF
//! EXISTS`) and the recommendation is marked failed with the SQLSTATE (in
//! its `impact`, the only free-form field the store has for it). Every real
//! attempt writes an audit record (`recommendation.implement`).

use async_trait::async_trait;
use pgpulse_store::{AuditRecord, Recommendation, RecommendationStatus, Store, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_postgres::Client;

use super::error::AdvisorError;
use super::ident::qualified;

/// A result-cache rule to add for one statement (`cache_candidate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheRule {
    /// Database of the statement.
    pub database: String,
    /// Fingerprint to cache.
    pub fingerprint: String,
    /// Its normalized text.
    pub query: String,
    /// The tables it reads (`schema.table`).
    pub tables: Vec<String>,
}

/// A pool size change (`pool_size`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolResize {
    /// Database of the pool.
    pub database: String,
    /// User of the pool.
    pub user: String,
    /// Current size.
    pub from: u32,
    /// New size.
    pub to: u32,
}

/// What the integrator does for recommendations that are not SQL.
#[async_trait]
pub trait Actions: Send + Sync + std::fmt::Debug {
    /// Adds a cache rule; the error text is recorded.
    async fn add_cache_rule(&self, rule: &CacheRule) -> Result<(), String>;
    /// Resizes a pool; the error text is recorded.
    async fn resize_pool(&self, resize: &PoolResize) -> Result<(), String>;
}

/// What [`implement`] needs.
#[derive(Debug)]
pub struct ImplementContext<'a> {
    /// The store holding the recommendation.
    pub store: &'a dyn Store,
    /// The server, for a direct connection with its TLS settings (its
    /// database is replaced by the recommendation's); needs the rights to
    /// create and drop indexes.
    pub server: &'a pgpulse_upstream::Upstream,
    /// Callbacks for cache rules and pool resizes, if the integrator has them.
    pub actions: Option<&'a dyn Actions>,
    /// The time recorded as `applied_at` and in the audit record.
    pub now: Timestamp,
}

/// What [`implement`] did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImplementOutcome {
    /// The recommendation.
    pub recommendation_id: i64,
    /// Its kind.
    pub kind: String,
    /// The SQL that runs (or would), if it is SQL.
    pub statement: Option<String>,
    /// The callback's input, if it is a cache rule or pool resize.
    pub action: Option<Value>,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Whether the statement or callback ran and succeeded.
    pub executed: bool,
    /// The recommendation's status afterwards.
    pub status: RecommendationStatus,
    /// SQLSTATE of a failed statement.
    pub sqlstate: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

enum Plan {
    Sql(String),
    Cache(CacheRule),
    Pool(PoolResize),
}

fn plan(rec: &Recommendation) -> Result<Plan, AdvisorError> {
    let d = &rec.rec.details;
    let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    let not = |why: &str| AdvisorError::NotImplementable {
        id: rec.id,
        why: why.into(),
    };
    match (rec.rec.kind.as_str(), &rec.rec.statement) {
        (_, Some(sql)) => Ok(Plan::Sql(sql.clone())),
        ("cache_candidate", None) => Ok(Plan::Cache(CacheRule {
            database: rec.rec.database.clone(),
            fingerprint: s("fingerprint"),
            query: s("query"),
            tables: serde_json::from_value(d["tables"].clone()).unwrap_or_default(),
        })),
        ("pool_size", None) => Ok(Plan::Pool(PoolResize {
            database: s("database"),
            user: s("user"),
            from: d["from"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| not("no size"))?,
            to: d["to"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| not("no size"))?,
        })),
        _ => Err(not("no statement and no action")),
    }
}

/// The `pg_advisory_lock` key [`implement`] takes for a recommendation:
/// FNV-1a (64 bits) of `pgpulse.advisor:` and its dedupe key, so every
/// instance derives the same key (and an operator can take it to keep
/// pgpulse from applying it).
pub fn advisory_lock_key(dedupe_key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "pgpulse.advisor:".bytes().chain(dedupe_key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Reinterpreting the bits is the point: any 64-bit key is valid.
    h as i64
}

fn implementable(rec: &Recommendation) -> Result<(), AdvisorError> {
    match rec.status {
        RecommendationStatus::Open | RecommendationStatus::Failed => Ok(()),
        s => Err(AdvisorError::NotImplementable {
            id: rec.id,
            why: format!("it is {s:?}").to_lowercase(),
        }),
    }
}

async fn connect(
    server: &pgpulse_upstream::Upstream,
    database: &str,
) -> Result<Client, AdvisorError> {
    let mut server = server.clone();
    server
        .config_mut()
        .dbname(database)
        .application_name("pgpulse-advisor");
    let (client, conn) = server.connect().await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "advisor connection ended");
        }
    });
    Ok(client)
}

/// Implements recommendation `rec_id` as `actor` (see the module doc).
pub async fn implement(
    rec_id: i64,
    dry_run: bool,
    actor: &str,
    ctx: &ImplementContext<'_>,
) -> Result<ImplementOutcome, AdvisorError> {
    let rec = ctx.store.recommendation(rec_id).await?;
    implementable(&rec)?;
    let p = plan(&rec)?;
    let mut out = ImplementOutcome {
        recommendation_id: rec.id,
        kind: rec.rec.kind.clone(),
        statement: match &p {
            Plan::Sql(s) => Some(s.clone()),
            _ => None,
        },
        action: match &p {
            Plan::Sql(_) => None,
            Plan::Cache(c) => Some(json!({ "cache_rule": c })),
            Plan::Pool(r) => Some(json!({ "pool_resize": r })),
        },
        dry_run,
        executed: false,
        status: rec.status,
        sqlstate: None,
        error: None,
    };
    if dry_run {
        return Ok(out);
    }
    let client = connect(ctx.server, &rec.rec.database).await?;
    let key = advisory_lock_key(&rec.rec.dedupe_key);
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .get(0);
    if !locked {
        return Err(AdvisorError::Busy(rec.id));
    }
    let result = run_locked(&client, &rec, p, actor, ctx, &mut out).await;
    let _ = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await;
    result.map(|()| out)
}

async fn run_locked(
    client: &Client,
    rec: &Recommendation,
    p: Plan,
    actor: &str,
    ctx: &ImplementContext<'_>,
    out: &mut ImplementOutcome,
) -> Result<(), AdvisorError> {
    // Another instance may have applied it between our read and the lock.
    implementable(&ctx.store.recommendation(rec.id).await?)?;
    let failure: Option<(Option<String>, String)> = match &p {
        Plan::Sql(sql) => match client.batch_execute(sql).await {
            Ok(()) => None,
            Err(e) => {
                let state = e.code().map(|c| c.code().to_string());
                let msg = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string());
                drop_leftover(client, rec).await;
                Some((state, msg))
            }
        },
        Plan::Cache(c) => call(ctx, |a| Box::pin(a.add_cache_rule(c))).await,
        Plan::Pool(r) => call(ctx, |a| Box::pin(a.resize_pool(r))).await,
    };
    let (status, outcome) = match &failure {
        None => (RecommendationStatus::Applied, "applied"),
        Some(_) => (RecommendationStatus::Failed, "failed"),
    };
    ctx.store
        .audit(&AuditRecord {
            id: 0,
            at: ctx.now,
            actor: actor.to_string(),
            action: "recommendation.implement".into(),
            target: format!("recommendation:{}", rec.id),
            details: json!({
                "dry_run": false, "kind": rec.rec.kind, "statement": out.statement,
                "action": out.action, "outcome": outcome,
                "sqlstate": failure.as_ref().and_then(|f| f.0.clone()),
                "error": failure.as_ref().map(|f| f.1.clone()),
            }),
        })
        .await?;
    let stored = ctx
        .store
        .set_recommendation_status(rec.id, status, Some(actor), ctx.now)
        .await?;
    out.status = stored.status;
    out.executed = failure.is_none();
    if let Some((state, msg)) = failure {
        ctx.store
            .set_recommendation_impact(
                rec.id,
                &json!({ "failed": { "sqlstate": state, "error": msg, "at": ctx.now } }),
                ctx.now,
            )
            .await?;
        out.sqlstate = state;
        out.error = Some(msg);
    }
    Ok(())
}

type ActionFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;

async fn call<'a>(
    ctx: &'a ImplementContext<'_>,
    f: impl FnOnce(&'a dyn Actions) -> ActionFuture<'a>,
) -> Option<(Option<String>, String)> {
    match ctx.actions {
        None => Some((None, "no actions configured for this kind".into())),
        Some(a) => f(a).await.err().map(|e| (None, e)),
    }
}

/// After a failed `CREATE INDEX CONCURRENTLY`, drops the invalid index it
/// may have left (the name is the recommendation's).
async fn drop_leftover(client: &Client, rec: &Recommendation) {
    let d = &rec.rec.details;
    if rec.rec.kind != "missing_index" {
        return;
    }
    let (Some(schema), Some(index)) = (d["schema"].as_str(), d["index"].as_str()) else {
        return;
    };
    let invalid: bool = client
        .query_opt(
            "SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
            &[&qualified(schema, index)],
        )
        .await
        .ok()
        .flatten()
        .is_some_and(|r| r.get(0));
    if invalid {
        let sql = format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            qualified(schema, index)
        );
        if let Err(e) = client.batch_execute(&sql).await {
            tracing::warn!(error = %e, index, "cannot drop the invalid leftover index");
        }
    }
}
