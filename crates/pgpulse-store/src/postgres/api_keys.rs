//! `api_keys` on PostgreSQL: the [`ApiKeys`] implementation of [`PgStore`].

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::PgStore;
use crate::error::StoreError;
use crate::keys::{ApiKeyRecord, ApiKeys, ApiRole, NewApiKey};
use crate::model::Timestamp;

const COLUMNS: &str = "id, key_id, name, role, hash, created_at, revoked_at, last_used_at";

fn from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        name: row.try_get("name")?,
        role: ApiRole::parse(&role).ok_or_else(|| StoreError::Decode {
            column: "api_keys.role",
            message: format!("unknown role {role:?}"),
        })?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

#[async_trait]
impl ApiKeys for PgStore {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        let client = self.conn().await?;
        let sql = format!(
            "INSERT INTO api_keys (key_id, name, role, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        let role = key.role.as_str();
        match client
            .query_one(
                &sql,
                &[&key.key_id, &key.name, &role, &key.hash, &key.created_at],
            )
            .await
        {
            Ok(row) => from_row(&row),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Conflict(
                "an API key with this key id exists".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let client = self.conn().await?;
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id");
        client
            .query(&sql, &[])
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<ApiKeyRecord, StoreError> {
        let client = self.conn().await?;
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING {COLUMNS}"
        );
        match client.query_opt(&sql, &[&id, &at]).await? {
            Some(row) => from_row(&row),
            None => Err(StoreError::NotFound {
                what: "api key",
                id,
            }),
        }
    }

    async fn api_key_by_key_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.conn().await?;
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = $1");
        client
            .query_opt(&sql, &[&key_id])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        let client = self.conn().await?;
        client
            .execute(
                "UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1",
                &[&id, &at],
            )
            .await?;
        Ok(())
    }
}
