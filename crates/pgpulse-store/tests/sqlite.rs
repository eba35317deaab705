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
        assert_eq!(store.schema_versions().await.expect("versions"), vec![1]);
        store.insert_logs(&rows).await.expect("insert");
        let b = suite::recs::baseline("rolling", true, suite::sec(1, 0), 1);
        store.save_baseline(&b).await.expect("baseline");
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(
        store.schema_versions().await.expect("versions"),
        vec![1],
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
