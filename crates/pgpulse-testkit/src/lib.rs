//! Throw-away PostgreSQL clusters and Redis servers started from the local
//! binaries on free ports, for pgpulse tests, benchmarks and the demo.
//!
//! ```no_run
//! use pgpulse_testkit::{PgCluster, RedisServer};
//! let pg = PgCluster::shared();                 // one cluster per test binary
//! let db = pg.fresh_database("my_test").unwrap(); // isolation between tests
//! let url = pg.url_for(&db);                    // postgres://pgpulse:...@127.0.0.1:PORT/db
//! let redis = RedisServer::start().unwrap();    // stopped and deleted on drop
//! # let _ = (url, redis.url());
//! ```
//!
//! # What a local PostgreSQL cluster is
//! `initdb` into a fresh directory (`/tmp/pgpulse-pg-XXXXXX`), superuser
//! `pgpulse` with a random password (see [`PgCluster::password`]), SCRAM-SHA-256
//! over TCP on 127.0.0.1, `trust` on the unix socket (in that directory),
//! `pg_stat_statements` preloaded, `wal_level = logical`, 10 replication
//! slots and WAL senders, 300 connections, and durability off (`fsync`,
//! `synchronous_commit`, `full_page_writes`) for speed. Programs are found via
//! `pg_config --bindir`, then `/usr/lib/postgresql/*/bin` (highest version
//! first), then `PATH`; a missing one gives an error naming the Debian
//! package to install.
//!
//! # Running as root
//! PostgreSQL refuses to run as root. When the test process is root,
//! `initdb`, `pg_ctl` and so the server run as `postgres` (or, if that user
//! does not exist, `pgpulse-test`, created once with `useradd --system
//! --no-create-home`) through `runuser -u USER --`; the cluster directory is
//! created under `/tmp` with mode 0755 and `chown`ed to that user. Client
//! programs (`psql`, `pgbench`) and Redis run as the test process.
//!
//! # Cleanup guarantees
//! - Dropping a [`PgCluster`] or [`RedisServer`] stops the server and deletes
//!   its directory before `drop` returns — also when a test panics, since
//!   unwinding drops the handle.
//! - [`PgCluster::shared`] / [`RedisServer::shared`] live in statics, which
//!   never drop: they are cleaned up by an `atexit` hook when the test binary
//!   exits (successfully or with failed tests).
//! - If the test binary is killed (`SIGKILL`, Ctrl-C, a CI timeout), a
//!   per-server watchdog — a tiny `sh` process in its own process group
//!   blocked reading a pipe from the test process — sees the pipe close when
//!   the kernel reaps the process, stops the server (`SIGQUIT` to the
//!   postmaster, `SIGKILL` to Redis) and deletes the directory. The same
//!   watchdog performs the normal drop cleanup, so that path is exercised by
//!   every test. (Module `cleanup` has the details.)
//!
//! # External servers
//! With `PGPULSE_TEST_DATABASE_URL` / `PGPULSE_TEST_REDIS_URL` set,
//! [`PgCluster::start`] / [`RedisServer::start`] return handles on those
//! servers instead ([`PgCluster::from_url`] / [`RedisServer::from_url`] do
//! the same explicitly). Accessors are derived from the URL; operations that
//! need the local process (restart, stop, kill...) return
//! [`TestkitError::External`].
#![warn(missing_docs)]

mod bins;
mod browser;
mod cleanup;
mod error;
mod external;
mod pg;
mod privilege;
mod redis;

pub use browser::{Screenshot, artifacts_dir, screenshot};
pub use error::TestkitError;
pub use external::{DATABASE_URL_VAR, REDIS_URL_VAR};
pub use pg::{PgCluster, PgOptions, StopMode, TlsFiles, generate_tls};
pub use redis::RedisServer;

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read
/// the port, close). Servers started on it retry with another port if it
/// was taken in between.
///
/// # Panics
/// If no socket can be bound on 127.0.0.1 at all (no loopback interface).
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("pgpulse-testkit: cannot bind 127.0.0.1:0: {e}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn free_port_is_bindable() {
        let port = super::free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
