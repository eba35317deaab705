//! The store suite on SQLite, plus what only SQLite has: reopening a file
//! (migrations idempotent, data kept) and WAL mode.

mod suite;

use pgpulse_store::{LogFilter, Page, SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_passes_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("pgpulse.db"))
        .await
        .expect("open");
    assert_eq!(store.backend(), "sqlite");
    suite::run_all(&store).await;
}

/// Reopening a file applies no migration twice, keeps every row, and the
/// reopened store takes writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pgpulse.db");
    let rows: Vec<_> = (0..4).map(suite::logs::log_row).collect();
    {
        let store = SqliteStore::open(&path).await.expect("open");
        assert_eq!(
            store.schema_versions().await.expect("versions"),
            vec![1, 2, 3, 4]
        );
        store.insert_logs(&rows).await.expect("insert");
        let b = suite::recs::baseline("rolling", true, suite::sec(1, 0), 1);
        store.save_baseline(&b).await.expect("baseline");
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(
        store.schema_versions().await.expect("versions"),
        vec![1, 2, 3, 4],
        "no migration applied twice"
    );
    let filter = LogFilter {
        page: Page {
            limit: 100,
            offset: 0,
        },
        ..LogFilter::default()
    };
    let got = store.logs(&filter).await.expect("logs");
    assert_eq!(got.total, 4);
    let mut want: Vec<_> = rows.clone();
    want.reverse();
    let got: Vec<_> = got
        .items
        .into_iter()
        .map(|mut l| {
            l.id = 0;
            l
        })
        .collect();
    assert_eq!(got, want);
    assert!(store.baseline("rolling").await.expect("baseline").is_some());
    store.insert_logs(&rows).await.expect("insert after reopen");
    assert_eq!(store.logs(&filter).await.expect("logs").total, 8);
    // A third open beside the second (two processes on one file) is fine.
    let third = SqliteStore::open(&path).await.expect("open beside");
    assert_eq!(third.logs(&filter).await.expect("logs").total, 8);
}

/// The file is in WAL mode, with its -wal file beside it, and a read
/// runs while the writer is inside a transaction (readers never wait for a
/// flush).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_mode_is_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pgpulse.db");
    let store = SqliteStore::open(&path).await.expect("open");
    assert_eq!(store.journal_mode().await.expect("mode"), "wal");
    store
        .insert_logs(&[suite::logs::log_row(1)])
        .await
        .expect("insert");
    assert!(dir.path().join("pgpulse.db-wal").exists());

    // Another connection (another process, say) holds a write transaction
    // open; the store's reader still answers from the last commit.
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM performance_logs;")
        .expect("hold write lock");
    let got = store
        .logs(&LogFilter::default())
        .await
        .expect("read beside a writer");
    assert_eq!(got.total, 1);
    other.execute_batch("ROLLBACK").expect("rollback");
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal", "WAL persists in the file");
}

/// The design's views answer from the tables, as `sqlite3` users see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_summarise_the_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("pgpulse.db");
    let store = SqliteStore::open(&path)
        .await
        .expect("open creates the directory");
    let rows: Vec<_> = (0..10).map(suite::logs::log_row).collect();
    store.insert_logs(&rows).await.expect("insert");
    for n in 0..3 {
        let a = suite::alerts::new_alert("slow_query", "k", pgpulse_store::Severity::Warning, n);
        store
            .raise_alert(&a, suite::sec(1, n))
            .await
            .expect("raise");
    }
    let c = rusqlite::Connection::open(&path).expect("open");
    // Slow rows are 8 (FP_A, app, admin) and 9 (FP_B, billing, with plan).
    let slow: Vec<(String, i64, f64, i64)> = c
        .prepare("SELECT fingerprint, slow_count, max_ms, with_plan FROM slow_query_analysis ORDER BY fingerprint")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        slow,
        vec![
            ("00000000000000a1".to_string(), 1, 84.0, 0),
            ("00000000000000b2".to_string(), 1, 94.5, 1)
        ]
    );
    let (alerts, occurrences, last): (i64, i64, String) = c
        .query_row(
            "SELECT alerts, occurrences, last_seen FROM alert_summary WHERE status = 'open'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("alert_summary");
    assert_eq!((alerts, occurrences), (1, 3));
    assert_eq!(last, "2026-01-02T00:00:02.123Z");
}

/// Writers from many tasks at once all land (the writer connection
/// serialises them; no SQLITE_BUSY reaches the caller).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("pgpulse.db"))
        .await
        .expect("open");
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let rows: Vec<_> = (0..10).map(suite::logs::log_row).collect();
            for _ in 0..5 {
                store.insert_logs(&rows).await.expect("insert");
                let r =
                    suite::runs::job_run("w", suite::sec(2, t), pgpulse_store::JobOutcome::Ok, t);
                store.record_job_run(&r).await.expect("run");
                store.logs(&LogFilter::default()).await.expect("read");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(
        store.logs(&LogFilter::default()).await.expect("logs").total,
        400
    );
    assert_eq!(
        store.job_runs(Some("w"), 1000).await.expect("runs").len(),
        40
    );
}

/// A file from before migration 2 (its views and its row removed) gets
/// exactly the missing migration on open, with its data untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_applies_only_missing_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pgpulse.db");
    {
        let store = SqliteStore::open(&path).await.expect("open");
        store
            .insert_logs(&[suite::logs::log_row(9)])
            .await
            .expect("insert");
    }
    let c = rusqlite::Connection::open(&path).expect("open");
    c.execute_batch(
        "DROP VIEW performance_summary; DROP VIEW slow_query_analysis; DROP VIEW alert_summary;
         DELETE FROM schema_migrations WHERE version = 2;",
    )
    .expect("downgrade to version 1");
    drop(c);

    let store = SqliteStore::open(&path).await.expect("upgrade");
    assert_eq!(
        store.schema_versions().await.expect("versions"),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        store.logs(&LogFilter::default()).await.expect("logs").total,
        1
    );
    let c = rusqlite::Connection::open(&path).expect("open");
    let slow: i64 = c
        .query_row("SELECT slow_count FROM slow_query_analysis", [], |r| {
            r.get(0)
        })
        .expect("view back");
    assert_eq!(slow, 1);
}
