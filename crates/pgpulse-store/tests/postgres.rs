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
    let (_pg, _db, url) = fresh("store_suite");
    let store = store_on(&url).await;
    assert_eq!(store.backend(), "postgres");
    suite::run_all(&store).await;
}

/// The twelve tables, every one under row-level security.
const TABLES: [&str; 12] = [
    "performance_logs",
    "performance_alerts",
    "database_statistics",
    "cache_performance",
    "query_patterns",
    "index_usage_stats",
    "connection_pool_stats",
    "performance_reports",
    "optimization_recommendations",
    "performance_baselines",
    "job_runs",
    "audit_log",
];

/// `base` with another user and password.
fn url_as(base: &str, user: &str, password: &str) -> String {
    let mut url = url::Url::parse(base).expect("url");
    url.set_username(user).expect("user");
    url.set_password(Some(password)).expect("password");
    url.to_string()
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// One row in each of the twelve tables, through the store.
async fn seed_every_table(store: &PgStore) {
    use suite::*;
    let t = sec(200, 5);
    store
        .insert_logs(&[logs::log_row(1), logs::log_row(9)])
        .await
        .expect("logs");
    store
        .raise_alert(
            &alerts::new_alert("slow_query", "rls", pgpulse_store::Severity::Warning, 1),
            t,
        )
        .await
        .expect("alert");
    store
        .insert_database_statistics(&stats::db_stats("app", t, 1))
        .await
        .expect("db stats");
    store
        .insert_cache_snapshot(&stats::cache_row("i1", t, 1))
        .await
        .expect("cache");
    let f = patterns::Figures {
        calls: 10,
        total: 25.5,
        min: 1.0,
        max: 9.0,
        pct: (2.0, 8.0, 9.0),
    };
    store
        .upsert_patterns(&[patterns::pattern("00000000000000aa", "app", t, f)])
        .await
        .expect("patterns");
    store
        .insert_index_usage(&[stats::index_row("app", t, "items_pkey", 5)])
        .await
        .expect("index usage");
    store
        .insert_pool_stats(&[stats::pool_row("app", t, 1)])
        .await
        .expect("pools");
    store
        .insert_report(&reports::report(t, 1))
        .await
        .expect("report");
    store
        .upsert_recommendation(&recs::new_rec("missing_index", "rls", 1), t)
        .await
        .expect("recommendation");
    store
        .save_baseline(&recs::baseline("rolling", true, t, 1))
        .await
        .expect("baseline");
    store
        .record_job_run(&runs::job_run(
            "cleanup",
            t,
            pgpulse_store::JobOutcome::Ok,
            1,
        ))
        .await
        .expect("job run");
    store
        .audit(&runs::audit_record(t, "admin", 1))
        .await
        .expect("audit");
}

async fn count(client: &tokio_postgres::Client, table: &str) -> Result<i64, tokio_postgres::Error> {
    client
        .query_one(&format!("SELECT count(*) FROM pgpulse.{table}"), &[])
        .await?
        .try_get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_admits_only_members_of_the_admin_role() {
    let (pg, db, url) = fresh("store_rls");
    let (admin, ops, app) = (
        format!("{db}_admin"),
        format!("{db}_ops"),
        format!("{db}_app"),
    );
    pg.psql(
        &db,
        &format!(
            "CREATE ROLE {admin} LOGIN PASSWORD 'admin-pw'; \
             CREATE ROLE {ops} LOGIN PASSWORD 'ops-pw'; GRANT {admin} TO {ops}; \
             CREATE ROLE {app} LOGIN PASSWORD 'app-pw'; \
             GRANT CREATE ON DATABASE {db} TO {admin}"
        ),
    )
    .expect("roles");
    // The store connects as the (non-superuser) admin role: it owns the
    // tables, and FORCE makes the policy apply to the owner too.
    let admin_url = url_as(&url, &admin, "admin-pw");
    let store = store_on(&admin_url).await;
    assert_eq!(store.admin_role(), admin);
    seed_every_table(&store).await;

    let admin_client = client(&admin_url).await;
    // Give the application role the grants a careless operator might on
    // the twelve tables, to show that row-level security itself keeps it
    // out.
    let tables: Vec<String> = TABLES.iter().map(|t| format!("pgpulse.{t}")).collect();
    admin_client
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA pgpulse TO {app}; \
             GRANT SELECT, INSERT ON {} TO {app}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA pgpulse TO {app}",
            tables.join(", ")
        ))
        .await
        .expect("grants to the application role");
    let ops_client = client(&url_as(&url, &ops, "ops-pw")).await;
    let app_client = client(&url_as(&url, &app, "app-pw")).await;

    for table in TABLES {
        assert!(
            count(&admin_client, table).await.expect("admin count") >= 1,
            "{table}"
        );
        assert!(
            count(&ops_client, table).await.expect("ops count") >= 1,
            "{table}"
        );
        assert_eq!(
            count(&app_client, table).await.expect("app count"),
            0,
            "{table}"
        );
        let err = app_client
            .execute(&format!("INSERT INTO pgpulse.{table} DEFAULT VALUES"), &[])
            .await
            .expect_err("the application role cannot insert");
        let db_err = err.as_db_error().expect("a server error");
        assert_eq!(db_err.code().code(), "42501", "{table}: {db_err}");
        assert!(
            db_err.message().contains("row-level security"),
            "{table}: {db_err}"
        );
    }
    let flags: i64 = admin_client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgpulse'::regnamespace \
             AND relkind = 'r' AND relrowsecurity AND relforcerowsecurity \
             AND relname <> 'schema_migrations'",
            &[],
        )
        .await
        .expect("pg_class")
        .get(0);
    assert_eq!(flags, 12);

    // Nothing is granted to PUBLIC: views and functions are closed to the
    // application role; with a grant, a view still shows it nothing.
    for object in [
        "SELECT * FROM pgpulse.alert_summary",
        "SELECT * FROM pgpulse.performance_summary",
        "SELECT * FROM pgpulse.slow_query_analysis",
        "SELECT * FROM pgpulse.get_performance_statistics(now() - interval '1 day', now())",
        "SELECT pgpulse.cleanup_performance_data('{}')",
    ] {
        let err = app_client.query(object, &[]).await.expect_err(object);
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("42501"),
            "{object}: {err}"
        );
    }
    admin_client
        .batch_execute(&format!("GRANT SELECT ON pgpulse.alert_summary TO {app}"))
        .await
        .expect("grant view");
    let seen = app_client
        .query("SELECT * FROM pgpulse.alert_summary", &[])
        .await
        .expect("view with a grant");
    assert!(seen.is_empty(), "the view bypassed row-level security");
    let admin_seen = admin_client
        .query("SELECT * FROM pgpulse.alert_summary", &[])
        .await
        .expect("admin view");
    assert_eq!(admin_seen.len(), 1);

    // A second admin, as a member, works through the store too.
    let ops_store = PgStore::connect(PgStoreOptions {
        admin_role: Some(admin.clone()),
        ..PgStoreOptions::new(url_as(&url, &ops, "ops-pw"))
    })
    .await
    .expect("a member connects");
    let page = ops_store
        .logs(&pgpulse_store::LogFilter::default())
        .await
        .expect("member reads logs");
    assert_eq!(page.total, 2);
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
    assert_eq!(versions, vec![1, 2, 3]);
}
