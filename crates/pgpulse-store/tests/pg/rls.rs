//! Row-level security: only members of the admin role see or write rows,
//! on every table, even for a role holding table grants; views and
//! functions are closed to PUBLIC; changing the admin role moves access.

use pgpulse_store::{PgStore, PgStoreOptions, Store};

use super::{TABLES, client, count, fresh, store_on, url_as};
use crate::suite;

/// One row in each of the fourteen tables, through the store.
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
    assert!(
        store
            .claim_job_occurrence("cleanup", t, "rls")
            .await
            .expect("job claim")
    );
    pgpulse_store::ApiKeys::create_api_key(
        store,
        &pgpulse_store::NewApiKey {
            key_id: "rlskey01".into(),
            name: "rls".into(),
            role: pgpulse_store::ApiRole::Admin,
            hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created_at: t,
        },
    )
    .await
    .expect("api key");
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
    // the fourteen tables, to show that row-level security itself keeps it
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

    tables_admit_only_members(&admin_client, &ops_client, &app_client).await;
    views_and_functions_are_closed(&admin_client, &app_client, &app).await;

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

/// Every table: the admin and a member see rows; the application role,
/// holding SELECT and INSERT grants, sees none and cannot insert.
async fn tables_admit_only_members(
    admin_client: &tokio_postgres::Client,
    ops_client: &tokio_postgres::Client,
    app_client: &tokio_postgres::Client,
) {
    for table in TABLES {
        assert!(
            count(admin_client, table).await.expect("admin count") >= 1,
            "{table}"
        );
        assert!(
            count(ops_client, table).await.expect("ops count") >= 1,
            "{table}"
        );
        assert_eq!(
            count(app_client, table).await.expect("app count"),
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
    assert_eq!(flags, 14);
}

async fn views_and_functions_are_closed(
    admin_client: &tokio_postgres::Client,
    app_client: &tokio_postgres::Client,
    app: &str,
) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_admin_role_moves_access_to_the_new_role() {
    let (pg, db, url) = fresh("store_admin_change");
    let (owner, g1, g2, r1, r2) = (
        format!("{db}_owner"),
        format!("{db}_g1"),
        format!("{db}_g2"),
        format!("{db}_r1"),
        format!("{db}_r2"),
    );
    pg.psql(
        &db,
        &format!(
            "CREATE ROLE {owner} LOGIN PASSWORD 'pw'; GRANT CREATE ON DATABASE {db} TO {owner}; \
             CREATE ROLE {g1}; CREATE ROLE {g2}; GRANT {g1}, {g2} TO {owner}; \
             CREATE ROLE {r1} LOGIN PASSWORD 'pw' IN ROLE {g1}; \
             CREATE ROLE {r2} LOGIN PASSWORD 'pw' IN ROLE {g2}"
        ),
    )
    .expect("roles");
    let owner_url = url_as(&url, &owner, "pw");
    let connect = |role: &str, url: &str| {
        PgStore::connect(PgStoreOptions {
            admin_role: Some(role.to_string()),
            ..PgStoreOptions::new(url)
        })
    };
    let store = connect(&g1, &owner_url).await.expect("connect for g1");
    store
        .audit(&suite::runs::audit_record(suite::sec(3, 1), "admin", 1))
        .await
        .expect("audit");
    let c1 = client(&url_as(&url, &r1, "pw")).await;
    let c2 = client(&url_as(&url, &r2, "pw")).await;
    assert_eq!(count(&c1, "audit_log").await.expect("r1 reads"), 1);
    let denied = count(&c2, "audit_log").await.expect_err("r2 has no grant");
    assert_eq!(denied.as_db_error().map(|e| e.code().code()), Some("42501"));

    drop(store);
    let store = connect(&g2, &owner_url).await.expect("connect for g2");
    assert_eq!(
        store
            .audit_log(suite::page(10, 0))
            .await
            .expect("audit")
            .total,
        1
    );
    assert_eq!(count(&c2, "audit_log").await.expect("r2 reads"), 1);
    assert_eq!(
        count(&c1, "audit_log").await.expect("r1 keeps its grant"),
        0
    );

    // A store whose own user is not an admin member would see nothing.
    let err = connect(&g2, &url_as(&url, &r1, "pw"))
        .await
        .expect_err("r1 is not a member of g2");
    assert!(err.to_string().contains("not a member"), "{err}");
}
