//! `api_keys` on SQLite: the [`ApiKeys`] implementation of [`SqliteStore`].

use async_trait::async_trait;
use rusqlite::{ErrorCode, Row};

use super::SqliteStore;
use super::codec::{from_opt_ts, from_ts, query_all, ts};
use crate::error::StoreError;
use crate::keys::{ApiKeyRecord, ApiKeys, ApiRole, NewApiKey};
use crate::model::Timestamp;

const COLUMNS: &str = "id, key_id, name, role, hash, created_at, revoked_at, last_used_at";

fn decode(r: &Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    let role: String = r.get(3)?;
    Ok(ApiKeyRecord {
        id: r.get(0)?,
        key_id: r.get(1)?,
        name: r.get(2)?,
        role: ApiRole::parse(&role).ok_or_else(|| StoreError::Decode {
            column: "api_keys.role",
            message: format!("unknown role {role:?}"),
        })?,
        hash: r.get(4)?,
        created_at: from_ts(r.get(5)?, "api_keys.created_at")?,
        revoked_at: from_opt_ts(r.get(6)?, "api_keys.revoked_at")?,
        last_used_at: from_opt_ts(r.get(7)?, "api_keys.last_used_at")?,
    })
}

fn one(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(decode).transpose()
}

#[async_trait]
impl ApiKeys for SqliteStore {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let key = key.clone();
        self.write(move |c| {
            let inserted = c
                .prepare_cached(
                    "INSERT INTO api_keys (key_id, name, role, hash, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(rusqlite::params![
                    key.key_id,
                    key.name,
                    key.role.as_str(),
                    key.hash,
                    ts(key.created_at)
                ]);
            match inserted {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    return Err(StoreError::Conflict(
                        "an API key with this key id exists".into(),
                    ));
                }
                other => other?,
            };
            let id = c.last_insert_rowid();
            one(
                c,
                &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
                [id],
            )?
            .ok_or(StoreError::NotFound {
                what: "api key",
                id,
            })
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|c| {
            query_all(
                c,
                &format!("SELECT {COLUMNS} FROM api_keys ORDER BY id"),
                &[],
                decode,
            )
        })
        .await
    }

    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<ApiKeyRecord, StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            )?
            .execute((id, ts(at)))?;
            one(
                c,
                &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
                [id],
            )?
            .ok_or(StoreError::NotFound {
                what: "api key",
                id,
            })
        })
        .await
    }

    async fn api_key_by_key_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |c| {
            one(
                c,
                &format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = ?1"),
                [key_id],
            )
        })
        .await
    }

    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE api_keys SET last_used_at = max(COALESCE(last_used_at, ?2), ?2) \
                 WHERE id = ?1",
            )?
            .execute((id, ts(at)))?;
            Ok(())
        })
        .await
    }
}
