//! `optimization_recommendations`: storing recommendations deduplicated by
//! key (an open one is refreshed, a dismissed one stays dismissed), moving
//! them through their lifecycle and recording their measured impact.

use tokio_postgres::Row;

use super::PgStore;
use super::filter::{Filter, enum_text, is_unique_violation, paged, parse_enum};
use crate::error::StoreError;
use crate::model::{
    NewRecommendation, Paged, Recommendation, RecommendationFilter, RecommendationStatus, Timestamp,
};

const COLUMNS: &str = "id, created_at, updated_at, status, kind, dedupe_key, database, title, \
     rationale, statement, confidence, expected_benefit, details, applied_at, applied_by, \
     impact";

/// Stores `rec` unless an open or dismissed one has its key; returns the
/// stored row and whether it is new.
pub(super) async fn upsert(
    store: &PgStore,
    rec: &NewRecommendation,
    at: Timestamp,
) -> Result<(Recommendation, bool), StoreError> {
    let mut client = store.conn().await?;
    let tx = client.transaction().await?;
    // Serialises upserts of one key (two advisors at once store it once).
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('pgpulse-rec:' || $1, 0))",
        &[&rec.dedupe_key],
    )
    .await?;
    let current = tx
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM optimization_recommendations \
                 WHERE dedupe_key = $1 AND status IN ('open', 'dismissed') \
                 ORDER BY status = 'open' DESC, id DESC LIMIT 1"
            ),
            &[&rec.dedupe_key],
        )
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?;
    let (sql, created) = match &current {
        Some(r) if r.status == RecommendationStatus::Dismissed => return Ok((r.clone(), false)),
        Some(_) => (
            format!(
                "UPDATE optimization_recommendations SET updated_at = $10, kind = $1, \
                 database = $3, title = $4, rationale = $5, statement = $6, confidence = $7, \
                 expected_benefit = $8, details = $9 \
                 WHERE dedupe_key = $2 AND status = 'open' RETURNING {COLUMNS}"
            ),
            false,
        ),
        None => (
            format!(
                "INSERT INTO optimization_recommendations (kind, dedupe_key, database, title, \
                 rationale, statement, confidence, expected_benefit, details, created_at, \
                 updated_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 'open') RETURNING {COLUMNS}"
            ),
            true,
        ),
    };
    let row = tx
        .query_one(
            &sql,
            &[
                &rec.kind,
                &rec.dedupe_key,
                &rec.database,
                &rec.title,
                &rec.rationale,
                &rec.statement,
                &rec.confidence,
                &rec.expected_benefit,
                &rec.details,
                &at,
            ],
        )
        .await?;
    let stored = from_row(&row)?;
    tx.commit().await?;
    Ok((stored, created))
}

/// One recommendation by id.
pub(super) async fn one(store: &PgStore, id: i64) -> Result<Recommendation, StoreError> {
    let client = store.conn().await?;
    let sql = format!("SELECT {COLUMNS} FROM optimization_recommendations WHERE id = $1");
    match client.query_opt(&sql, &[&id]).await? {
        Some(row) => from_row(&row),
        None => Err(not_found(id)),
    }
}

/// One page of recommendations, newest first.
pub(super) async fn list(
    store: &PgStore,
    filter: &RecommendationFilter,
) -> Result<Paged<Recommendation>, StoreError> {
    let mut f = Filter::new();
    f.eq_opt("kind", filter.kind.clone());
    f.eq_opt("status", filter.status.map(|s| enum_text(&s)));
    let client = store.conn().await?;
    paged(
        &client,
        "optimization_recommendations",
        COLUMNS,
        "created_at DESC, id DESC",
        f,
        filter.page,
        from_row,
    )
    .await
}

/// Moves a recommendation to `status`; `Applied` also sets who and when.
pub(super) async fn set_status(
    store: &PgStore,
    id: i64,
    status: RecommendationStatus,
    by: Option<&str>,
    at: Timestamp,
) -> Result<Recommendation, StoreError> {
    let client = store.conn().await?;
    let applied = status == RecommendationStatus::Applied;
    let sql = format!(
        "UPDATE optimization_recommendations SET status = $2, updated_at = $4, \
         applied_by = CASE WHEN $5 THEN $3 ELSE applied_by END, \
         applied_at = CASE WHEN $5 THEN $4 ELSE applied_at END \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let result = client
        .query_opt(&sql, &[&id, &enum_text(&status), &by, &at, &applied])
        .await;
    match result {
        Ok(Some(row)) => from_row(&row),
        Ok(None) => Err(not_found(id)),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
            "recommendation {id} cannot reopen: another open recommendation has its key"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Records the measured effect of a recommendation.
pub(super) async fn set_impact(
    store: &PgStore,
    id: i64,
    impact: &serde_json::Value,
    at: Timestamp,
) -> Result<Recommendation, StoreError> {
    let client = store.conn().await?;
    let sql = format!(
        "UPDATE optimization_recommendations SET impact = $2, updated_at = $3 \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    match client.query_opt(&sql, &[&id, impact, &at]).await? {
        Some(row) => from_row(&row),
        None => Err(not_found(id)),
    }
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: "recommendation",
        id,
    }
}

fn from_row(row: &Row) -> Result<Recommendation, StoreError> {
    Ok(Recommendation {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        status: parse_enum(
            row.try_get("status")?,
            "optimization_recommendations.status",
        )?,
        rec: NewRecommendation {
            kind: row.try_get("kind")?,
            dedupe_key: row.try_get("dedupe_key")?,
            database: row.try_get("database")?,
            title: row.try_get("title")?,
            rationale: row.try_get("rationale")?,
            statement: row.try_get("statement")?,
            confidence: row.try_get("confidence")?,
            expected_benefit: row.try_get("expected_benefit")?,
            details: row.try_get("details")?,
        },
        applied_at: row.try_get("applied_at")?,
        applied_by: row.try_get("applied_by")?,
        impact: row.try_get("impact")?,
    })
}
