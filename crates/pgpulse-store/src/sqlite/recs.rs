//! `optimization_recommendations` (dedupe against open ones, dismissed
//! keys stay dismissed, status and impact) and `performance_baselines`
//! (rolling ones replaced, named ones never overwritten).

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use super::codec::{
    Where, from_json, from_opt_json, from_opt_ts, from_ts, json, paged, query_all, rec_status,
    rec_status_str, ts,
};
use crate::error::StoreError;
use crate::model::{
    Baseline, NewRecommendation, Paged, Recommendation, RecommendationFilter, RecommendationStatus,
    Timestamp,
};

const COLUMNS: &str = "id, created_at, updated_at, status, kind, dedupe_key, database_name, \
     title, rationale, statement, confidence, expected_benefit, details, applied_at, \
     applied_by, impact";

fn decode(r: &Row<'_>) -> Result<Recommendation, StoreError> {
    let status: String = r.get(3)?;
    let benefit: String = r.get(11)?;
    let details: String = r.get(12)?;
    Ok(Recommendation {
        id: r.get(0)?,
        created_at: from_ts(r.get(1)?, "optimization_recommendations.created_at")?,
        updated_at: from_ts(r.get(2)?, "optimization_recommendations.updated_at")?,
        status: rec_status(&status)?,
        rec: NewRecommendation {
            kind: r.get(4)?,
            dedupe_key: r.get(5)?,
            database: r.get(6)?,
            title: r.get(7)?,
            rationale: r.get(8)?,
            statement: r.get(9)?,
            confidence: r.get(10)?,
            expected_benefit: from_json(&benefit, "optimization_recommendations.expected_benefit")?,
            details: from_json(&details, "optimization_recommendations.details")?,
        },
        applied_at: from_opt_ts(r.get(13)?, "optimization_recommendations.applied_at")?,
        applied_by: r.get(14)?,
        impact: from_opt_json(r.get(15)?, "optimization_recommendations.impact")?,
    })
}

/// One recommendation, or `NotFound`.
pub(crate) fn get(conn: &Connection, id: i64) -> Result<Recommendation, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM optimization_recommendations WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => decode(r),
        None => Err(StoreError::NotFound {
            what: "recommendation",
            id,
        }),
    }
}

/// Refreshes the open recommendation of the key, leaves a dismissed key
/// alone, or stores a new one (`true`).
pub(crate) fn upsert(
    conn: &mut Connection,
    rec: &NewRecommendation,
    at: Timestamp,
) -> Result<(Recommendation, bool), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The open one first; else the latest dismissed one.
    let existing: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, status FROM optimization_recommendations \
             WHERE dedupe_key = ?1 AND status IN ('open', 'dismissed') \
             ORDER BY status = 'open' DESC, created_at DESC, id DESC LIMIT 1",
        )?
        .query_row([&rec.dedupe_key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (id, created) = match existing {
        Some((id, status)) if status == "dismissed" => (id, false),
        Some((id, _)) => {
            tx.prepare_cached(
                "UPDATE optimization_recommendations SET updated_at = ?2, kind = ?3, \
                 database_name = ?4, title = ?5, rationale = ?6, statement = ?7, \
                 confidence = ?8, expected_benefit = ?9, details = ?10 WHERE id = ?1",
            )?
            .execute(rusqlite::params![
                id,
                ts(at),
                rec.kind,
                rec.database,
                rec.title,
                rec.rationale,
                rec.statement,
                rec.confidence,
                json(&rec.expected_benefit),
                json(&rec.details),
            ])?;
            (id, false)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO optimization_recommendations (created_at, updated_at, status, \
                 kind, dedupe_key, database_name, title, rationale, statement, confidence, \
                 expected_benefit, details) \
                 VALUES (?1, ?1, 'open', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(rusqlite::params![
                ts(at),
                rec.kind,
                rec.dedupe_key,
                rec.database,
                rec.title,
                rec.rationale,
                rec.statement,
                rec.confidence,
                json(&rec.expected_benefit),
                json(&rec.details),
            ])?;
            (tx.last_insert_rowid(), true)
        }
    };
    let stored = get(&tx, id)?;
    tx.commit()?;
    Ok((stored, created))
}

/// Recommendations matching `f`, newest first.
pub(crate) fn query(
    conn: &mut Connection,
    f: &RecommendationFilter,
) -> Result<Paged<Recommendation>, StoreError> {
    let mut w = Where::default();
    w.eq_opt("kind", f.kind.as_deref());
    if let Some(s) = f.status {
        w.push("status = ?", rec_status_str(s).to_string());
    }
    paged(
        conn,
        COLUMNS,
        "optimization_recommendations",
        &w,
        "created_at DESC, id DESC",
        f.page,
        decode,
    )
}

/// Moves a recommendation to `status`; `Applied` records who and when.
pub(crate) fn set_status(
    conn: &mut Connection,
    id: i64,
    status: RecommendationStatus,
    by: Option<&str>,
    at: Timestamp,
) -> Result<Recommendation, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied = status == RecommendationStatus::Applied;
    let n = tx
        .prepare_cached(
            "UPDATE optimization_recommendations SET status = ?2, updated_at = ?3, \
             applied_at = CASE WHEN ?4 THEN ?3 ELSE applied_at END, \
             applied_by = CASE WHEN ?4 THEN ?5 ELSE applied_by END WHERE id = ?1",
        )?
        .execute(rusqlite::params![
            id,
            rec_status_str(status),
            ts(at),
            applied,
            by
        ])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "recommendation",
            id,
        });
    }
    let stored = get(&tx, id)?;
    tx.commit()?;
    Ok(stored)
}

/// Records the measured effect of a recommendation.
pub(crate) fn set_impact(
    conn: &mut Connection,
    id: i64,
    impact: &serde_json::Value,
    at: Timestamp,
) -> Result<Recommendation, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx
        .prepare_cached(
            "UPDATE optimization_recommendations SET impact = ?2, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(rusqlite::params![id, json(impact), ts(at)])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "recommendation",
            id,
        });
    }
    let stored = get(&tx, id)?;
    tx.commit()?;
    Ok(stored)
}

const BASELINE_COLUMNS: &str =
    "id, name, created_at, window_start, window_end, rolling, data, thresholds";

fn decode_baseline(r: &Row<'_>) -> Result<Baseline, StoreError> {
    let data: String = r.get(6)?;
    let thresholds: String = r.get(7)?;
    Ok(Baseline {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: from_ts(r.get(2)?, "performance_baselines.created_at")?,
        window_start: from_ts(r.get(3)?, "performance_baselines.window_start")?,
        window_end: from_ts(r.get(4)?, "performance_baselines.window_end")?,
        rolling: r.get(5)?,
        data: from_json(&data, "performance_baselines.data")?,
        thresholds: from_json(&thresholds, "performance_baselines.thresholds")?,
    })
}

/// Stores a baseline; replaces one of the same name only when both roll.
pub(crate) fn save_baseline(conn: &mut Connection, b: &Baseline) -> Result<Baseline, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing: Option<(i64, bool)> = tx
        .prepare_cached("SELECT id, rolling FROM performance_baselines WHERE name = ?1")?
        .query_row([&b.name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let params = rusqlite::params![
        b.name,
        ts(b.created_at),
        ts(b.window_start),
        ts(b.window_end),
        b.rolling,
        json(&b.data),
        json(&b.thresholds),
    ];
    let id = match existing {
        None => {
            tx.prepare_cached(
                "INSERT INTO performance_baselines (name, created_at, window_start, window_end, \
                 rolling, data, thresholds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params)?;
            tx.last_insert_rowid()
        }
        Some((id, true)) if b.rolling => {
            tx.prepare_cached(
                "UPDATE performance_baselines SET created_at = ?2, window_start = ?3, \
                 window_end = ?4, rolling = ?5, data = ?6, thresholds = ?7 WHERE name = ?1",
            )?
            .execute(params)?;
            id
        }
        Some(_) => {
            return Err(StoreError::Conflict(format!(
                "baseline {:?} exists and only a rolling baseline replaces a rolling one",
                b.name
            )));
        }
    };
    tx.commit()?;
    Ok(Baseline { id, ..b.clone() })
}

/// Every baseline, newest first.
pub(crate) fn baselines(conn: &Connection) -> Result<Vec<Baseline>, StoreError> {
    let sql = format!(
        "SELECT {BASELINE_COLUMNS} FROM performance_baselines ORDER BY created_at DESC, id DESC"
    );
    query_all(conn, &sql, &[], decode_baseline)
}

/// One baseline by name.
pub(crate) fn baseline(conn: &Connection, name: &str) -> Result<Option<Baseline>, StoreError> {
    let sql = format!("SELECT {BASELINE_COLUMNS} FROM performance_baselines WHERE name = ?1");
    Ok(query_all(conn, &sql, &[&name], decode_baseline)?.pop())
}
