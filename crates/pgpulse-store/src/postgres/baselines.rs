//! `performance_baselines`: saving (a rolling baseline replaces the rolling
//! baseline of the same name; any other name clash is a conflict) and
//! reading baselines.

use tokio_postgres::Row;

use super::PgStore;
use super::filter::is_unique_violation;
use crate::error::StoreError;
use crate::model::Baseline;

const COLUMNS: &str = "id, name, created_at, window_start, window_end, rolling, data, thresholds";

/// Stores `b`, replacing a rolling baseline of the same name when `b` is
/// rolling too.
pub(super) async fn save(store: &PgStore, b: &Baseline) -> Result<Baseline, StoreError> {
    let mut client = store.conn().await?;
    let tx = client.transaction().await?;
    let existing = tx
        .query_opt(
            "SELECT rolling FROM performance_baselines WHERE name = $1 FOR UPDATE",
            &[&b.name],
        )
        .await?;
    let sql = match existing {
        None => format!(
            "INSERT INTO performance_baselines (name, created_at, window_start, window_end, \
             rolling, data, thresholds) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ),
        Some(row) if b.rolling && row.try_get::<_, bool>(0)? => format!(
            "UPDATE performance_baselines SET created_at = $2, window_start = $3, \
             window_end = $4, rolling = $5, data = $6, thresholds = $7 \
             WHERE name = $1 RETURNING {COLUMNS}"
        ),
        Some(_) => return Err(taken(&b.name)),
    };
    let row = tx
        .query_one(
            &sql,
            &[
                &b.name,
                &b.created_at,
                &b.window_start,
                &b.window_end,
                &b.rolling,
                &b.data,
                &b.thresholds,
            ],
        )
        .await
        .map_err(|e| {
            // Another instance stored the name between our read and insert.
            if is_unique_violation(&e) {
                taken(&b.name)
            } else {
                e.into()
            }
        })?;
    let stored = from_row(&row)?;
    tx.commit().await?;
    Ok(stored)
}

fn taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a baseline named {name:?} exists and only a rolling baseline replaces a rolling one"
    ))
}

/// Every baseline, newest first.
pub(super) async fn list(store: &PgStore) -> Result<Vec<Baseline>, StoreError> {
    let client = store.conn().await?;
    let sql =
        format!("SELECT {COLUMNS} FROM performance_baselines ORDER BY created_at DESC, id DESC");
    client
        .query(&sql, &[])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// One baseline by name.
pub(super) async fn one(store: &PgStore, name: &str) -> Result<Option<Baseline>, StoreError> {
    let client = store.conn().await?;
    let sql = format!("SELECT {COLUMNS} FROM performance_baselines WHERE name = $1");
    client
        .query_opt(&sql, &[&name])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

fn from_row(row: &Row) -> Result<Baseline, StoreError> {
    Ok(Baseline {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        window_start: row.try_get("window_start")?,
        window_end: row.try_get("window_end")?,
        rolling: row.try_get("rolling")?,
        data: row.try_get("data")?,
        thresholds: row.try_get("thresholds")?,
    })
}
