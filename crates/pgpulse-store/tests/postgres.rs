//! `PgStore` against a real PostgreSQL (the testkit's), each test in a
//! fresh database: the shared store suite and concurrent connects racing on
//! the migrations here; row-level security, the SQL functions and the views
//! in `pg/`.

mod pg;
mod suite;

use pg::{client, fresh, store_on};
use pgpulse_store::{PgStore, PgStoreOptions, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_suite_passes() {
    let (_pg, _db, url) = fresh("store_suite");
    let store = store_on(&url).await;
    assert_eq!(store.backend(), "postgres");
    suite::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_on_a_fresh_database_all_succeed() {
    let (_pg, _db, url) = fresh("store_race");
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(PgStoreOptions::new(url)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for c in connects {
        stores.push(c.await.expect("task").expect("connect"));
    }
    for (i, store) in stores.iter().enumerate() {
        store.ping().await.expect("ping");
        store
            .audit(&suite::runs::audit_record(
                suite::sec(1, i as i64),
                "race",
                i as i64,
            ))
            .await
            .expect("write");
    }
    // Reconnecting applies nothing again.
    let again = store_on(&url).await;
    let total = again
        .audit_log(suite::page(10, 0))
        .await
        .expect("audit")
        .total;
    assert_eq!(total, 4);
    let c = client(&url).await;
    let versions: Vec<i32> = c
        .query(
            "SELECT version FROM pgpulse.schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("migrations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
}
