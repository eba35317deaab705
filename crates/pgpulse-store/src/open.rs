//! [`open`]: the store named by a URL, as the configuration gives it.

use std::path::Path;
use std::sync::Arc;

use crate::error::StoreError;
use crate::keys::ApiKeys;
use crate::postgres::{PgStore, PgStoreOptions};
use crate::sqlite::SqliteStore;
use crate::store::Store;

/// An opened store, seen through each of its traits.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The performance tables.
    pub store: Arc<dyn Store>,
    /// The API keys (same database).
    pub keys: Arc<dyn ApiKeys>,
}

/// Opens (and migrates) the store at `url`: `sqlite://PATH` — a relative
/// PATH is taken relative to `base_dir` (the config file's directory, or
/// the working directory) — or `postgres://...` / `postgresql://...`, whose
/// schema and admin role come from `pg` (the URL itself is kept whole).
pub async fn open(url: &str, base_dir: &Path, pg: PgStoreOptions) -> Result<Opened, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::InvalidUrl(
                "sqlite:// needs a file path, such as sqlite://pgpulse.db".into(),
            ));
        }
        let path = Path::new(path);
        let path = if path.is_absolute() {
            path.to_owned()
        } else {
            base_dir.join(path)
        };
        let store = Arc::new(SqliteStore::open(&path).await?);
        Ok(Opened {
            store: store.clone(),
            keys: store,
        })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts = PgStoreOptions {
            url: url.to_owned(),
            ..pg
        };
        let store = Arc::new(PgStore::connect(opts).await?);
        Ok(Opened {
            store: store.clone(),
            keys: store,
        })
    } else {
        Err(StoreError::InvalidUrl(
            "expected sqlite://PATH or postgres://...".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relative_sqlite_paths_are_beside_the_base_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(
            "sqlite://sub/pgpulse.db",
            dir.path(),
            PgStoreOptions::new(""),
        )
        .await
        .expect("open");
        assert_eq!(store.store.backend(), "sqlite");
        store.store.ping().await.expect("ping");
        assert!(store.keys.api_keys().await.expect("keys").is_empty());
        assert!(dir.path().join("sub/pgpulse.db").exists());
    }

    #[tokio::test]
    async fn other_schemes_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        for url in ["mysql://x", "sqlite://"] {
            let err = open(url, dir.path(), PgStoreOptions::new(""))
                .await
                .expect_err(url);
            assert!(matches!(err, StoreError::InvalidUrl(_)), "{url}: {err}");
        }
    }
}
