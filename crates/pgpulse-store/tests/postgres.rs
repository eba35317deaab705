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

/// The current window of the function tests and helpers for its times.
fn t0() -> pgpulse_store::Timestamp {
    suite::at(100, 0)
}

fn minutes(m: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::minutes(m)
}

fn figures(calls: i64, total: f64, p95: f64) -> suite::patterns::Figures {
    suite::patterns::Figures {
        calls,
        total,
        min: 0.5,
        max: p95 * 2.0,
        pct: (p95 / 2.0, p95, p95 * 1.5),
    }
}

const FP_A: &str = "000000000000fa01";
const FP_B: &str = "000000000000fb02";
const FP_D: &str = "000000000000fd04";
const FP_S: &str = "000000000000f505";

/// Pattern rows in [t0, t0 + 1 h) and the hour before, cache snapshots of
/// two instances, and slow statement logs. `pattern` derives errors
/// (calls / 10), cache hits (calls / 4) and misses (calls / 5).
async fn seed_figures(store: &PgStore) {
    use suite::patterns::pattern;
    let t0 = t0();
    store
        .upsert_patterns(&[
            pattern(FP_A, "app", t0, figures(40, 200.0, 20.0)),
            pattern(FP_A, "app", t0 + minutes(10), figures(20, 100.0, 35.0)),
            pattern(FP_B, "app", t0 + minutes(20), figures(60, 600.0, 50.0)),
            pattern(FP_D, "app", t0 + minutes(30), figures(10, 100.0, 15.0)),
            // The previous hour: A was twice as fast, D about the same.
            pattern(FP_A, "app", t0 - minutes(30), figures(20, 50.0, 9.0)),
            pattern(FP_D, "app", t0 - minutes(30), figures(10, 105.0, 14.0)),
            // After the window: ignored.
            pattern(
                FP_B,
                "app",
                t0 + minutes(60),
                figures(1000, 99_000.0, 900.0),
            ),
        ])
        .await
        .expect("patterns");
    let mut snapshots = vec![
        suite::stats::cache_row("i1", t0 + minutes(1), 1),
        suite::stats::cache_row("i1", t0 + minutes(31), 4),
        suite::stats::cache_row("i1", t0 + minutes(90), 100),
    ];
    let mut i2a = suite::stats::cache_row("i2", t0 + minutes(5), 0);
    (i2a.hits, i2a.misses) = (500, 500);
    let mut i2b = suite::stats::cache_row("i2", t0 + minutes(6), 0);
    (i2b.hits, i2b.misses) = (1500, 1500);
    snapshots.extend([i2a, i2b]);
    for s in &snapshots {
        store
            .insert_cache_snapshot(s)
            .await
            .expect("cache snapshot");
    }
    let log = |minute: i64, ms: f64, slow: bool, plan: Option<&str>| {
        let mut l = suite::logs::log_row(1);
        l.fingerprint = FP_S.to_string();
        l.query = "SELECT * FROM orders WHERE client_id = $1".to_string();
        l.logged_at = t0 + minutes(minute);
        l.duration_ms = ms;
        l.slow = slow;
        l.plan_summary = plan.map(str::to_string);
        l
    };
    store
        .insert_logs(&[
            log(10, 1000.0, true, Some("Seq Scan on orders")),
            log(20, 2000.0, true, Some("Index Scan using orders_client_id")),
            log(30, 3000.0, true, None),
            log(40, 5000.0, false, None),
            log(-120, 9000.0, true, Some("before the window")),
        ])
        .await
        .expect("logs");
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_functions_compute_figures_from_the_tables() {
    let (_pg, _db, url) = fresh("store_functions");
    let store = store_on(&url).await;
    seed_figures(&store).await;
    let c = client(&url).await;
    let (from, to) = (t0(), t0() + minutes(60));

    let s = c
        .query_one(
            "SELECT * FROM pgpulse.get_performance_statistics($1, $2)",
            &[&from, &to],
        )
        .await
        .expect("get_performance_statistics");
    assert_eq!(s.get::<_, i64>("calls"), 130);
    close(s.get("throughput_per_s"), 130.0 / 3600.0, "throughput");
    close(s.get("mean_ms"), 1000.0 / 130.0, "mean");
    close(s.get("worst_p95_ms"), 50.0, "worst p95");
    assert_eq!(s.get::<_, i64>("errors"), 4 + 2 + 6 + 1);
    close(s.get("error_rate"), 13.0 / 130.0, "error rate");
    // Hits 10 + 5 + 15 + 2, misses 8 + 4 + 12 + 2.
    close(
        s.get("query_cache_hit_rate"),
        32.0 / 58.0,
        "pattern cache hit rate",
    );
    // Counter deltas: i1 2700 hits / 300 misses, i2 1000 / 1000.
    close(s.get("cache_hit_rate"), 3700.0 / 5000.0, "cache hit rate");

    let rows = c
        .query(
            "SELECT * FROM pgpulse.analyze_query_patterns($1, $2, 2)",
            &[&from, &to],
        )
        .await
        .expect("analyze_query_patterns");
    let got: Vec<(String, f64, f64, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get("fingerprint"),
                r.get("total_time_ms"),
                r.get("share"),
                r.get("trend"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (FP_B.to_string(), 600.0, 0.6, "new".to_string()),
            (FP_A.to_string(), 300.0, 0.3, "slower".to_string()),
        ]
    );
    close(rows[1].get("mean_change"), 1.0, "A's mean doubled");
    assert_eq!(rows[1].get::<_, i64>("previous_calls"), 20);
    let d = c
        .query(
            "SELECT * FROM pgpulse.analyze_query_patterns($1, $2, 10)",
            &[&from, &to],
        )
        .await
        .expect("analyze all");
    assert_eq!(d.len(), 3);
    assert_eq!(d[2].get::<_, &str>("trend"), "stable");

    let slow = c
        .query(
            "SELECT * FROM pgpulse.get_slow_queries($1, $2, 5)",
            &[&from, &to],
        )
        .await
        .expect("get_slow_queries");
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].get::<_, &str>("fingerprint"), FP_S);
    assert_eq!(slow[0].get::<_, i64>("executions"), 3);
    close(slow[0].get("avg_ms"), 2000.0, "avg");
    close(slow[0].get("max_ms"), 3000.0, "max");
    close(slow[0].get("total_ms"), 6000.0, "total");
    assert_eq!(
        slow[0].get::<_, pgpulse_store::Timestamp>("last_seen"),
        t0() + minutes(30)
    );
    assert_eq!(
        slow[0].get::<_, &str>("plan_summary"),
        "Index Scan using orders_client_id"
    );

    // Alerts through the SQL function dedupe like raise_alert.
    let raise = "SELECT alert_id, created FROM pgpulse.create_performance_alert(\
                 'p95_regression', $1, 'p95:fb02', 'p95 up', $2, NULL, '{}', $3)";
    let first = c
        .query_one(raise, &[&"warning", &"first", &(t0() + minutes(5))])
        .await
        .expect("create alert");
    let second = c
        .query_one(raise, &[&"critical", &"second", &(t0() + minutes(6))])
        .await
        .expect("dedupe alert");
    let id: i64 = first.get(0);
    assert_eq!(
        (first.get::<_, bool>(1), second.get::<_, bool>(1)),
        (true, false)
    );
    assert_eq!(second.get::<_, i64>(0), id);
    let alert = store.alert(id).await.expect("alert");
    assert_eq!(alert.occurrences, 2);
    assert_eq!(alert.severity, pgpulse_store::Severity::Critical);
    assert_eq!(alert.message, "second");

    let report: serde_json::Value = c
        .query_one(
            "SELECT pgpulse.generate_performance_report($1, $2)",
            &[&from, &to],
        )
        .await
        .expect("generate_performance_report")
        .get(0);
    assert_eq!(report["statistics"]["calls"], 130);
    assert_eq!(report["top_queries"][0]["fingerprint"], FP_B);
    assert_eq!(report["top_queries"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["slow_queries"][0]["executions"], 3);
    assert_eq!(report["alerts"]["raised"], 1);
    assert_eq!(report["alerts"]["by_severity"]["critical"], 1);

    // log_performance_data stores one row the store reads back.
    let id: i64 = c
        .query_one(
            "SELECT pgpulse.log_performance_data($1, '000000000000fe06', 'SELECT $1', \
             'app', 'app_user', 12.5, p_slow => true, p_plan_summary => 'Result')",
            &[&(t0() + minutes(50))],
        )
        .await
        .expect("log_performance_data")
        .get(0);
    let logs = store
        .logs(&pgpulse_store::LogFilter {
            fingerprint: Some("000000000000fe06".to_string()),
            ..Default::default()
        })
        .await
        .expect("logs");
    assert_eq!(logs.total, 1);
    assert_eq!(logs.items[0].id, id);
    assert!(logs.items[0].slow);
    close(logs.items[0].duration_ms, 12.5, "duration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_query_pattern_merges_like_upsert_patterns() {
    let (_pg, _db, url) = fresh("store_merge_fn");
    let store = store_on(&url).await;
    let c = client(&url).await;
    let start = t0();
    let call = "SELECT pgpulse.update_query_pattern('000000000000ab07', 'SELECT $1', 'app', \
                'u', $1, $2, $3, 0, 0, $4, $5, $6, $7, 1.0, $8, 9.0, 0, 0, NULL)";
    let end = start + minutes(1);
    let a: i64 = c
        .query_one(
            call,
            &[
                &start, &end, &10_i64, &100.0_f64, &10.0_f64, &2.0_f64, &30.0_f64, &20.0_f64,
            ],
        )
        .await
        .expect("first")
        .get(0);
    let b: i64 = c
        .query_one(
            call,
            &[
                &start, &end, &30_i64, &150.0_f64, &5.0_f64, &1.0_f64, &25.0_f64, &12.0_f64,
            ],
        )
        .await
        .expect("merge")
        .get(0);
    assert_eq!(a, b, "one row per key and period");
    let rows = store
        .patterns(pgpulse_store::Window::default(), Some("000000000000ab07"))
        .await
        .expect("patterns");
    assert_eq!(rows.len(), 1);
    let p = &rows[0];
    assert_eq!(p.calls, 40);
    close(p.total_time_ms, 250.0, "total");
    close(p.mean_ms, 250.0 / 40.0, "mean");
    close(p.min_ms, 1.0, "min");
    close(p.max_ms, 30.0, "max");
    close(p.p95_ms, 12.0, "p95 of the row with more calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_performance_data_deletes_exactly_the_old_rows() {
    let (_pg, _db, url) = fresh("store_cleanup");
    let store = store_on(&url).await;
    let now = t0();
    let days = chrono::TimeDelta::days;
    let logs: Vec<_> = [10, 9, 8, 1, 0]
        .iter()
        .map(|d| {
            let mut l = suite::logs::log_row(2);
            l.logged_at = now - days(*d);
            l
        })
        .collect();
    store.insert_logs(&logs).await.expect("logs");
    let alert =
        |key: &str| suite::alerts::new_alert("slow_query", key, pgpulse_store::Severity::Info, 1);
    store
        .raise_alert(&alert("old-resolved"), now - days(10))
        .await
        .expect("alert");
    store
        .resolve_alerts("old-resolved", now - days(9))
        .await
        .expect("resolve");
    store
        .raise_alert(&alert("old-open"), now - days(10))
        .await
        .expect("alert");
    store
        .raise_alert(&alert("new-resolved"), now - days(1))
        .await
        .expect("alert");
    store
        .resolve_alerts("new-resolved", now)
        .await
        .expect("resolve");
    store
        .record_job_run(&suite::runs::job_run(
            "cleanup",
            now - days(30),
            pgpulse_store::JobOutcome::Ok,
            1,
        ))
        .await
        .expect("job run");

    let c = client(&url).await;
    let deleted: Vec<(String, i64)> = c
        .query(
            "SELECT table_name, deleted FROM pgpulse.cleanup_performance_data(\
             '{\"performance_logs\": \"7 days\", \"performance_alerts\": \"7 days\", \
               \"job_runs\": \"90 days\"}', 2, $1)",
            &[&now],
        )
        .await
        .expect("cleanup")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        deleted,
        vec![
            ("job_runs".to_string(), 0),
            ("performance_alerts".to_string(), 1),
            ("performance_logs".to_string(), 3),
        ]
    );
    let left = store
        .logs(&pgpulse_store::LogFilter::default())
        .await
        .expect("logs");
    let mut times: Vec<_> = left.items.iter().map(|l| l.logged_at).collect();
    times.sort();
    assert_eq!(times, vec![now - days(1), now]);
    let alerts = store
        .alerts(&pgpulse_store::AlertFilter::default())
        .await
        .expect("alerts");
    let mut keys: Vec<_> = alerts.items.iter().map(|a| a.dedupe_key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, vec!["new-resolved", "old-open"]);
    let err = c
        .query(
            "SELECT * FROM pgpulse.cleanup_performance_data('{\"pg_class\": \"1 day\"}')",
            &[],
        )
        .await
        .expect_err("only the store's tables");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22023"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_summarise_patterns_slow_logs_and_alerts() {
    use suite::patterns::pattern;
    let (_pg, _db, url) = fresh("store_views");
    let store = store_on(&url).await;
    // performance_summary covers the last 24 hours of the server's clock.
    let now = chrono::Utc::now();
    store
        .upsert_patterns(&[
            pattern(FP_A, "app", now - minutes(90), figures(40, 200.0, 20.0)),
            pattern(FP_A, "billing", now - minutes(30), figures(20, 100.0, 35.0)),
            pattern(
                FP_A,
                "app",
                now - minutes(60 * 30),
                figures(1000, 1.0, 99.0),
            ),
        ])
        .await
        .expect("patterns");
    seed_figures(&store).await;
    let alert = |key: &str, severity| suite::alerts::new_alert("slow_query", key, severity, 1);
    use pgpulse_store::Severity::{Critical, Warning};
    store
        .raise_alert(&alert("v1", Warning), t0())
        .await
        .expect("alert");
    store
        .raise_alert(&alert("v1", Warning), t0() + minutes(1))
        .await
        .expect("again");
    store
        .raise_alert(&alert("v2", Warning), t0() + minutes(2))
        .await
        .expect("alert");
    store
        .raise_alert(&alert("v3", Critical), t0() + minutes(3))
        .await
        .expect("alert");
    store
        .resolve_alerts("v3", t0() + minutes(4))
        .await
        .expect("resolve");

    let c = client(&url).await;
    let s = c
        .query_one(
            "SELECT * FROM pgpulse.performance_summary WHERE fingerprint = $1",
            &[&FP_A],
        )
        .await
        .expect("performance_summary");
    assert_eq!(s.get::<_, i64>("calls"), 60);
    close(s.get("total_time_ms"), 300.0, "total");
    close(s.get("mean_ms"), 5.0, "mean");
    close(s.get("worst_p95_ms"), 35.0, "worst p95");
    assert_eq!(s.get::<_, i64>("errors"), 6);
    close(
        s.get("cache_hit_ratio"),
        15.0 / (15.0 + 12.0),
        "cache hit ratio",
    );

    let v = c
        .query_one(
            "SELECT * FROM pgpulse.slow_query_analysis WHERE fingerprint = $1",
            &[&FP_S],
        )
        .await
        .expect("slow_query_analysis");
    assert_eq!(v.get::<_, i64>("slow_count"), 4);
    close(v.get("avg_duration_ms"), 15_000.0 / 4.0, "avg");
    close(v.get("max_duration_ms"), 9000.0, "max");
    assert_eq!(
        v.get::<_, pgpulse_store::Timestamp>("last_seen"),
        t0() + minutes(30)
    );
    assert_eq!(
        v.get::<_, &str>("latest_plan_summary"),
        "Index Scan using orders_client_id"
    );

    let summary: Vec<(String, String, i64, i64, pgpulse_store::Timestamp)> = c
        .query(
            "SELECT status, severity, alerts, occurrences, oldest_created_at \
             FROM pgpulse.alert_summary ORDER BY status, severity",
            &[],
        )
        .await
        .expect("alert_summary")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("open".to_string(), "warning".to_string(), 2, 3, t0()),
            (
                "resolved".to_string(),
                "critical".to_string(),
                1,
                1,
                t0() + minutes(3)
            ),
        ]
    );
}
