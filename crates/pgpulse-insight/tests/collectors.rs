//! The catalog collectors against a real PostgreSQL: dead tuples and the
//! bloat estimate, unused / unique / expression / primary-key indexes, an
//! invalid index left by a failed `CREATE INDEX CONCURRENTLY`, a long open
//! transaction, a session waiting on a lock — and collection not queueing
//! behind the `ACCESS EXCLUSIVE` lock that session waits for.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pgpulse_insight::collect::{TableStats, collect_database_statistics, collect_index_usage};
use pgpulse_store::IndexUsage;
use pgpulse_testkit::PgCluster;
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database with a churned table (1,000 live and 1,000 dead tuples,
/// autovacuum off), four indexes (one used, one never used, one unique,
/// one on an expression), an invalid unique index and a small `locked`
/// table. Statistics are reset first so `stats_reset` is set.
fn setup(pg: &PgCluster) -> String {
    let db = pg.fresh_database("collect").expect("database");
    pg.psql(&db, "SELECT pg_stat_reset()").expect("reset");
    pg.psql(
        &db,
        "CREATE TABLE churn (id int PRIMARY KEY, v int NOT NULL, code text NOT NULL)
           WITH (autovacuum_enabled = false);
         INSERT INTO churn SELECT g, g, 'c' || (g % 10) FROM generate_series(1, 1000) g;
         CREATE INDEX churn_v_unused ON churn (v);
         CREATE UNIQUE INDEX churn_code_v ON churn (code, v);
         CREATE INDEX churn_lower_code ON churn (lower(code));
         UPDATE churn SET v = v + 1000;
         CREATE TABLE locked (id int);
         INSERT INTO locked SELECT generate_series(1, 10);",
    )
    .expect("schema");
    pg.psql(
        &db,
        "SET enable_seqscan = off; SET enable_bitmapscan = off;
         SELECT id FROM churn WHERE id = 5; SELECT id FROM churn WHERE id = 6;",
    )
    .expect("two primary key scans");
    let err = pg
        .psql(
            &db,
            "CREATE UNIQUE INDEX CONCURRENTLY churn_code_uniq ON churn (code)",
        )
        .expect_err("duplicate codes must fail the unique build");
    assert!(
        err.to_string().contains("could not create unique index"),
        "{err}"
    );
    db
}

fn table<'a>(tables: &'a [TableStats], name: &str) -> &'a TableStats {
    tables
        .iter()
        .find(|t| t.table == name)
        .unwrap_or_else(|| panic!("table {name} in {tables:#?}"))
}

fn index<'a>(rows: &'a [IndexUsage], name: &str) -> &'a IndexUsage {
    rows.iter()
        .find(|i| i.index_name == name)
        .unwrap_or_else(|| panic!("index {name} in {rows:#?}"))
}

async fn xact_start(client: &Client, pid: i32) -> DateTime<Utc> {
    client
        .query_one(
            "SELECT xact_start FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("xact_start")
        .get(0)
}

async fn pid(client: &Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_see_bloat_indexes_long_transactions_and_lock_waits() {
    let pg = PgCluster::shared();
    let db = setup(pg);
    let url = pg.url_for(&db);

    // A long open transaction, then a lock holder and a session queued
    // behind its ACCESS EXCLUSIVE lock.
    let long = connect(&url).await;
    long.batch_execute("BEGIN; SELECT 1").await.expect("begin");
    let holder = connect(&url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let waiter = connect(&url).await;
    let waiter_pid = pid(&waiter).await;
    let waiting = tokio::spawn(async move {
        waiter
            .query_one("SELECT count(*) FROM locked", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
    });

    let collector = connect(&url).await;
    // Wait for the waiter to be queued (a state, not a schedule).
    let mut queued = false;
    for _ in 0..500 {
        let row = collector
            .query_one(
                "SELECT coalesce(wait_event_type, '') FROM pg_stat_activity WHERE pid = $1",
                &[&waiter_pid],
            )
            .await
            .expect("activity");
        if row.get::<_, String>(0) == "Lock" {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(queued, "the waiter never queued behind the lock");

    // "now" such that the long transaction is older than 5 minutes and the
    // holder's is not (no waiting: the reference time is chosen).
    let long_start = xact_start(&collector, pid(&long).await).await;
    let holder_start = xact_start(&collector, pid(&holder).await).await;
    assert!(long_start < holder_start);
    let now = holder_start + chrono::Duration::minutes(5) - (holder_start - long_start) / 2;

    let stats = tokio::time::timeout(
        Duration::from_secs(30),
        collect_database_statistics(&collector, now, Duration::from_secs(300)),
    )
    .await
    .expect("collection must not queue behind the lock")
    .expect("database statistics");

    assert_eq!(stats.database, db);
    assert_eq!(stats.collected_at, now);
    assert_eq!(stats.long_running_transactions, 1, "{stats:#?}");
    assert_eq!(stats.lock_waits, 1, "{stats:#?}");
    assert_eq!(stats.connections["idle in transaction"], 2, "{stats:#?}");
    assert!(
        stats.connections["active"].as_i64() >= Some(1),
        "{stats:#?}"
    );
    assert!(stats.size_bytes > 0 && stats.xact_commit > 0, "{stats:#?}");
    assert!((0.0..=1.0).contains(&stats.buffer_hit_ratio));

    let tables: Vec<TableStats> = serde_json::from_value(stats.tables.clone()).expect("tables");
    let churn = table(&tables, "churn");
    assert_eq!(
        (churn.n_live_tup, churn.n_dead_tup),
        (1000, 1000),
        "{churn:#?}"
    );
    assert!(churn.table_bytes > 0 && churn.index_bytes > 0, "{churn:#?}");
    assert_eq!(churn.total_bytes, churn.table_bytes + churn.index_bytes);
    assert_eq!(
        churn.bloat_bytes,
        (churn.table_bytes as f64 / 2.0).round() as i64
    );
    assert!(!churn.size_estimated);
    assert_eq!((churn.last_vacuum, churn.last_autovacuum), (None, None));
    let locked = table(&tables, "locked");
    assert!(locked.size_estimated, "{locked:#?}");
    assert_eq!(locked.n_dead_tup, 0);
    assert_eq!(stats.dead_tuples, 1000);
    assert_eq!(stats.bloat_bytes, churn.bloat_bytes + locked.bloat_bytes);

    let rows = tokio::time::timeout(
        Duration::from_secs(30),
        collect_index_usage(&collector, now),
    )
    .await
    .expect("index collection must not queue behind the lock")
    .expect("index usage");
    let names: Vec<&str> = rows.iter().map(|r| r.index_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "churn_code_uniq",
            "churn_code_v",
            "churn_lower_code",
            "churn_pkey",
            "churn_v_unused"
        ]
    );
    let reset: Option<DateTime<Utc>> = collector
        .query_one(
            "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .expect("stats_reset")
        .get(0);
    assert!(reset.is_some());
    for r in &rows {
        assert_eq!(
            (r.database.as_str(), r.schema_name.as_str()),
            (db.as_str(), "public")
        );
        assert_eq!((r.table_name.as_str(), r.collected_at), ("churn", now));
        assert_eq!(r.stats_reset, reset);
        assert!(r.table_size_bytes > 0);
    }

    let pkey = index(&rows, "churn_pkey");
    assert!(pkey.is_primary && pkey.is_unique && pkey.is_valid);
    assert_eq!(pkey.idx_scan, 2, "{pkey:#?}");
    assert_eq!(pkey.columns, ["id"]);

    let unused = index(&rows, "churn_v_unused");
    assert_eq!(unused.idx_scan, 0);
    assert!(!unused.is_unique && !unused.is_primary && unused.is_valid);
    assert!(unused.size_bytes > 0);
    assert_eq!(unused.columns, ["v"]);

    let unique = index(&rows, "churn_code_v");
    assert!(unique.is_unique && !unique.is_primary && unique.is_valid);
    assert_eq!(unique.columns, ["code", "v"]);
    assert_eq!(
        unique.definition,
        "CREATE UNIQUE INDEX churn_code_v ON public.churn USING btree (code, v)"
    );

    let expr = index(&rows, "churn_lower_code");
    assert_eq!(expr.columns, ["lower(code)"]);

    let invalid = index(&rows, "churn_code_uniq");
    assert!(!invalid.is_valid && invalid.is_unique, "{invalid:#?}");
    assert_eq!(invalid.columns, ["code"]);

    // Releasing the lock lets the waiter finish.
    holder.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(waiting.await.expect("join").expect("count"), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_jobs_store_their_rows_and_fail_cleanly_when_unreachable() {
    use pgpulse_insight::jobs::{
        CollectorConfig, DatabaseStatsJob, IndexUsageJob, Job, JobContext,
    };
    use pgpulse_store::{SqliteStore, Store, Window};
    use std::sync::Arc;

    let pg = PgCluster::shared();
    let db = pg.fresh_database("collect_job").expect("database");
    pg.psql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v int); CREATE INDEX t_v ON t (v);
         INSERT INTO t SELECT g, g FROM generate_series(1, 100) g",
    )
    .expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("store"),
    );
    let now = Utc::now();
    let ctx = JobContext::new("database_statistics", now, now, store.clone());
    let config = CollectorConfig::new(pg.url_for(&db).parse().expect("url"));
    assert_eq!(DatabaseStatsJob::new(config.clone()).run(&ctx).await, Ok(1));
    let message = ctx.take_message().expect("message");
    assert!(message.starts_with(&format!("{db}: ")), "{message}");
    let stored = store
        .database_statistics(Window::default(), Some(&db))
        .await
        .expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].database, db);
    let tables: Vec<TableStats> = serde_json::from_value(stored[0].tables.clone()).expect("tables");
    assert_eq!(table(&tables, "t").n_live_tup, 100);

    let ctx = JobContext::new("index_usage", now, now, store.clone());
    assert_eq!(IndexUsageJob::new(config).run(&ctx).await, Ok(2));
    let latest = store.latest_index_usage(Some(&db)).await.expect("read");
    let mut names: Vec<&str> = latest.iter().map(|i| i.index_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["t_pkey", "t_v"]);

    // Nobody listens on this port: the run fails with a message, no row.
    let port = pgpulse_testkit::free_port();
    let unreachable = CollectorConfig::new(
        format!("postgres://u:p@127.0.0.1:{port}/{db}")
            .parse()
            .expect("url"),
    );
    let ctx = JobContext::new("database_statistics", now, now, store.clone());
    let err = DatabaseStatsJob::new(unreachable)
        .run(&ctx)
        .await
        .expect_err("unreachable");
    assert!(err.contains("upstream PostgreSQL"), "{err}");
    assert_eq!(
        store
            .database_statistics(Window::default(), Some(&db))
            .await
            .expect("read")
            .len(),
        1
    );
}
