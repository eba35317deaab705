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
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_keep_url_parameters_and_name_the_schema() {
    let (_pg, db, url) = fresh("store_options");
    let bad = PgStore::connect(PgStoreOptions {
        schema: "Bad-Name".to_string(),
        ..PgStoreOptions::new(url.clone())
    })
    .await
    .expect_err("a schema name that needs quoting");
    assert!(
        matches!(bad, pgpulse_store::StoreError::InvalidUrl(_)),
        "{bad}"
    );

    let with_params = format!("{url}?application_name=pulse_opts&options=-c%20work_mem%3D8MB");
    let store = PgStore::connect(PgStoreOptions {
        schema: "pulse_custom".to_string(),
        pool_size: 2,
        ..PgStoreOptions::new(with_params)
    })
    .await
    .expect("connect");
    store
        .audit(&suite::runs::audit_record(suite::sec(5, 1), "opts", 1))
        .await
        .expect("write");
    let c = client(&url).await;
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'pulse_custom'",
            &[],
        )
        .await
        .expect("pg_tables")
        .get(0);
    assert_eq!(
        tables, 15,
        "twelve tables, api_keys, job_claims and schema_migrations"
    );
    let audit: i64 = c
        .query_one("SELECT count(*) FROM pulse_custom.audit_log", &[])
        .await
        .expect("audit rows")
        .get(0);
    assert_eq!(audit, 1);
    // The pooled connection is idle, with the URL's application_name.
    let named: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'pulse_opts'",
            &[&db],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    assert!(named >= 1, "no store connection named pulse_opts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_raises_and_recommendations_dedupe_to_one_row() {
    let (_pg, _db, url) = fresh("store_dedupe_race");
    // Two stores, as two pgpulse instances sharing the database would be.
    let stores = [store_on(&url).await, store_on(&url).await];
    let mut tasks = Vec::new();
    for i in 0..8_i64 {
        let store = stores[(i % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let severity = if i == 7 {
                pgpulse_store::Severity::Critical
            } else {
                pgpulse_store::Severity::Warning
            };
            let alert = suite::alerts::new_alert("slow_query", "race", severity, i);
            let rec = suite::recs::new_rec("missing_index", "race", i);
            let mut created = 0;
            for j in 0..5 {
                let at = suite::sec(6, i * 10 + j);
                created += i64::from(store.raise_alert(&alert, at).await.expect("raise").1);
                created += i64::from(store.upsert_recommendation(&rec, at).await.expect("rec").1);
            }
            created
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += t.await.expect("task");
    }
    assert_eq!(created, 2, "one new alert and one new recommendation");
    let alerts = stores[0]
        .alerts(&pgpulse_store::AlertFilter::default())
        .await
        .expect("alerts");
    assert_eq!(alerts.total, 1);
    assert_eq!(alerts.items[0].occurrences, 40);
    assert_eq!(alerts.items[0].severity, pgpulse_store::Severity::Critical);
    let recs = stores[1]
        .recommendations(&pgpulse_store::RecommendationFilter::default())
        .await
        .expect("recommendations");
    assert_eq!(recs.total, 1);
}
