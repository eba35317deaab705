//! Per database, a background task that reads the catalog at first use,
//! again every `catalog_refresh` and after DDL, and starts the change feed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::cache::{Cache, DbState, Inner};

pub(crate) fn start(cache: &Cache, database: &str, db: Arc<DbState>) {
    let Some(mut pg) = cache.inner.config.upstream.clone() else {
        tracing::debug!(database, "cache: no upstream URL, catalog not read");
        return;
    };
    pg.config_mut().dbname(database);
    let weak = Arc::downgrade(&cache.inner);
    let database: Arc<str> = Arc::from(database);
    cache.inner.own(tokio::spawn(run(weak, database, db, pg)));
}

async fn run(
    weak: Weak<Inner>,
    database: Arc<str>,
    db: Arc<DbState>,
    pg: pgpulse_upstream::Upstream,
) {
    let mut backoff = Duration::from_millis(100);
    let mut feed_started = false;
    loop {
        let refresh = match weak.upgrade() {
            Some(inner) => inner.config.catalog_refresh,
            None => return,
        };
        match load_once(&pg).await {
            Ok(catalog) => {
                backoff = Duration::from_millis(100);
                let Some(inner) = weak.upgrade() else { return };
                let cache = Cache { inner };
                // The L2 of this database is not read from the moment
                // statements can be cached until the feed has decided how it
                // starts (feed.rs, "Coverage"): entries in Redis may predate
                // writes that no feed saw.
                let hold = (!feed_started)
                    .then(|| crate::feed::Hold::new(cache.invalidator(), database.clone()));
                cache.set_catalog(&database, catalog);
                tracing::debug!(database = %database, "cache: catalog loaded");
                if let Some(hold) = hold {
                    feed_started = true;
                    let config = &cache.inner.config;
                    let handle = crate::feed::spawn(
                        pg.clone(),
                        database.clone(),
                        config.feed,
                        config.feed_poll,
                        cache.invalidator(),
                        hold,
                    );
                    cache.inner.own(handle);
                }
                drop(cache);
                let _ = tokio::time::timeout(refresh, db.reload.notified()).await;
            }
            Err(e) => {
                tracing::warn!(database = %database, error = %e, "cache: cannot read the catalog");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn load_once(
    pg: &pgpulse_upstream::Upstream,
) -> Result<crate::catalog::Catalog, tokio_postgres::Error> {
    let (client, connection) = pg.connect().await?;
    let driver = tokio::spawn(connection);
    let result = crate::catalog::load(&client).await;
    drop(client);
    let _ = driver.await;
    result
}
