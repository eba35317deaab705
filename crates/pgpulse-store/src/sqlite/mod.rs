//! [`SqliteStore`], the embedded default store: opening the file, its
//! pragmas, and how blocking SQLite calls are kept off the tokio runtime.
//!
//! Two connections: one writer and one reader, each behind its own mutex
//! and only ever used inside `spawn_blocking`. In WAL mode the reader runs
//! beside the writer (API reads never wait for a flush), while writes are
//! serialised by the writer mutex rather than by SQLite's busy loop. Every
//! call is one short transaction; batch inserts are one transaction with
//! cached prepared statements. Retention deletes in batches, taking the
//! writer once per batch so that flushes interleave with a long cleanup.

mod alerts;
mod api_keys;
mod codec;
mod logs;
mod migrate;
mod patterns;
mod recs;
mod reports;
mod runs;
mod stats;
mod store_impl;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;

/// How long a connection waits for a lock held by another process (or the
/// other connection) before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (the store has about 60).
const STATEMENT_CACHE: usize = 128;

/// The SQLite store: a file in WAL mode with one writer and one reader
/// connection. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`: WAL mode,
    /// `synchronous=NORMAL`, a 5 s busy timeout, foreign keys on, and the
    /// migrations not yet applied. Async because opening and migrating
    /// block; the work runs on the blocking pool.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || SqliteStore::open_blocking(path))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn open_blocking(path: PathBuf) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::InvalidUrl(format!(
                    "sqlite store directory {} cannot be created: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        configure_writer(&writer)?;
        // WAL is a property of the file: set once by the writer, it holds
        // for every later connection.
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Conflict(format!(
                "sqlite store {} cannot use WAL (journal mode {mode})",
                path.display()
            )));
        }
        migrate::migrate(&mut writer)?;
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        configure(&reader)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file's journal mode as SQLite reports it (`wal` once open).
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        self.read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .await
    }

    /// The schema versions applied, oldest first.
    pub async fn schema_versions(&self) -> Result<Vec<u32>, StoreError> {
        self.read(|c| {
            codec::query_all(
                c,
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
                |r| Ok(r.get(0)?),
            )
        })
        .await
    }

    /// Runs `f` on the writer connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Task("sqlite writer lock poisoned".to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` on the reader connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .reader
                .lock()
                .map_err(|_| StoreError::Task("sqlite reader lock poisoned".to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// The writer's larger page cache and less frequent checkpoints.
///
/// # Performance
/// With SQLite's defaults (a 2 MiB cache, a checkpoint every 1,000 WAL
/// pages) the writer re-reads evicted index pages from the OS and copies
/// the same hot pages (the indexes' right edges, interior pages) into the
/// file at every checkpoint; `performance_logs` inserts spent two thirds
/// of their CPU in the kernel. A cache of up to 16 MiB (grown only as
/// used) and a checkpoint every 8,000 pages (32 MiB of WAL, below the
/// 64 MiB `journal_size_limit`) cut the CPU per inserted row by about 15 %
/// in `cargo run --release -p pgpulse-store --example flush_rate` (15.1 to
/// 12.8 µs per row, user + system, on a shared 2-core box).
fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 8000;")?;
    Ok(())
}

/// Per-connection settings. `synchronous=NORMAL` in WAL mode syncs at
/// checkpoints only: a power cut may lose the last commits but never
/// corrupts the file, the right trade for performance data. The WAL file
/// is truncated back to 64 MiB after a checkpoint so that a burst does
/// not leave it large.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA journal_size_limit = 67108864;",
    )?;
    Ok(())
}
