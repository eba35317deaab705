//! API keys: the [`ApiKeys`] trait both stores implement, and the stored
//! record. Only an argon2 hash of a key is stored, with a short non-secret
//! `key_id` (the key's first characters) to find its row; the key itself is
//! shown once, when it is created, and never stored.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::Timestamp;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    /// Every endpoint, reads and writes.
    Admin,
    /// Authenticated, but not an admin (`/metrics` only).
    Read,
}

impl ApiRole {
    /// `admin` or `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Admin => "admin",
            ApiRole::Read => "read",
        }
    }

    /// Parses `admin` or `read`.
    pub fn parse(s: &str) -> Option<ApiRole> {
        match s {
            "admin" => Some(ApiRole::Admin),
            "read" => Some(ApiRole::Read),
            _ => None,
        }
    }
}

/// A key to store (`api_keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// Short, non-secret lookup prefix; unique.
    pub key_id: String,
    /// Who the key is for (the actor in audit records).
    pub name: String,
    /// Role.
    pub role: ApiRole,
    /// PHC string of the argon2 hash of the whole key.
    pub hash: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A stored key (`api_keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Row id.
    pub id: i64,
    /// Short, non-secret lookup prefix.
    pub key_id: String,
    /// Who the key is for.
    pub name: String,
    /// Role.
    pub role: ApiRole,
    /// PHC string of the argon2 hash (never shown by the API).
    #[serde(skip_serializing)]
    pub hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<Timestamp>,
    /// When it last authenticated a request (updated at most once a
    /// minute).
    pub last_used_at: Option<Timestamp>,
}

/// Storage of API keys. Implemented by both stores.
#[async_trait]
pub trait ApiKeys: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new key; a taken `key_id` is a `Conflict`.
    async fn create_api_key(&self, key: &NewApiKey) -> Result<ApiKeyRecord, StoreError>;
    /// Every key, revoked ones too, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes a key by row id (revoking twice keeps the first time);
    /// `NotFound` if there is no such key.
    async fn revoke_api_key(&self, id: i64, at: Timestamp) -> Result<ApiKeyRecord, StoreError>;
    /// The key with this `key_id`, if any.
    async fn api_key_by_key_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Records that the key authenticated a request at `at`.
    async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), StoreError>;
}
