//! `PgStore` against a real PostgreSQL (the testkit's), each test in a
//! fresh database: the shared store suite, row-level security on every
//! table, the SQL functions and views on seeded rows, and concurrent
//! connects racing on the migrations.

mod suite;

use pgpulse_store::{PgStore, PgStoreOptions, Store};
use pgpulse_testkit::PgCluster;

/// A fresh database and its URL (superuser).
fn fresh(prefix: &str) -> (&'static PgCluster, String, String) {
    let pg = PgCluster::shared();
    let db = pg.fresh_database(prefix).expect("fresh database");
    let url = pg.url_for(&db);
    (pg, db, url)
}

async fn store_on(url: &str) -> PgStore {
    PgStore::connect(PgStoreOptions::new(url))
        .await
        .expect("connect the store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_suite_passes() {
    let (_pg, _db, url) = fresh("pg_suite");
    let store = store_on(&url).await;
    assert_eq!(store.backend(), "postgres");
    suite::run_all(&store).await;
}
