//! Helpers of the PostgreSQL tests: fresh databases, connections as other
//! roles, and the seeded figures the function and view tests check.

mod functions;
mod rls;
mod views;

use pgpulse_store::{PgStore, PgStoreOptions, Store};
use pgpulse_testkit::PgCluster;

use crate::suite;

/// A fresh database, its name and URL (superuser).
pub fn fresh(prefix: &str) -> (&'static PgCluster, String, String) {
    let pg = PgCluster::shared();
    let db = pg.fresh_database(prefix).expect("fresh database");
    let url = pg.url_for(&db);
    (pg, db, url)
}

pub async fn store_on(url: &str) -> PgStore {
    PgStore::connect(PgStoreOptions::new(url))
        .await
        .expect("connect the store")
}

/// The fourteen tables, every one under row-level security.
pub const TABLES: [&str; 14] = [
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
    "api_keys",
    "job_claims",
];

/// `base` with another user and password.
pub fn url_as(base: &str, user: &str, password: &str) -> String {
    let mut url = url::Url::parse(base).expect("url");
    url.set_username(user).expect("user");
    url.set_password(Some(password)).expect("password");
    url.to_string()
}

pub async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

pub async fn count(
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<i64, tokio_postgres::Error> {
    client
        .query_one(&format!("SELECT count(*) FROM pgpulse.{table}"), &[])
        .await?
        .try_get(0)
}

/// The current window of the function tests and helpers for its times.
pub fn t0() -> pgpulse_store::Timestamp {
    suite::at(100, 0)
}

pub fn minutes(m: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::minutes(m)
}

pub fn figures(calls: i64, total: f64, p95: f64) -> suite::patterns::Figures {
    suite::patterns::Figures {
        calls,
        total,
        min: 0.5,
        max: p95 * 2.0,
        pct: (p95 / 2.0, p95, p95 * 1.5),
    }
}

pub const FP_A: &str = "000000000000fa01";
pub const FP_B: &str = "000000000000fb02";
pub const FP_D: &str = "000000000000fd04";
pub const FP_S: &str = "000000000000f505";

/// Pattern rows in [t0, t0 + 1 h) and the hour before, cache snapshots of
/// two instances, and slow statement logs. `pattern` derives errors
/// (calls / 10), cache hits (calls / 4) and misses (calls / 5).
pub async fn seed_figures(store: &PgStore) {
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

pub fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}
