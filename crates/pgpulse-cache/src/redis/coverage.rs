//! The change feeds' coverage records (`feed/coverage.rs`) and what they
//! need of the L2: the invalidation marks Redis has confirmed, the records
//! themselves, and the holds that keep a database's L2 unread while a feed
//! decides how it starts.

use std::time::Instant;

use super::{OP_TIMEOUT, RedisL2, bump, within};

impl RedisL2 {
    /// The number of the last invalidation queued here so far: once
    /// [`confirmed`](Self::confirmed) reaches it, everything this instance
    /// queued before the call is in Redis.
    pub fn mark(&self) -> u64 {
        self.shared.pending().added()
    }

    /// Every invalidation queued here and numbered up to this is in Redis.
    pub fn confirmed(&self) -> u64 {
        self.shared.pending().confirmed_upto()
    }

    /// Stops this instance from reading the L2 of `database` until as many
    /// [`release`](Self::release)s (a change feed deciding how it starts).
    pub fn hold(&self, database: &str) {
        self.shared.pending().hold(database);
    }

    /// Ends one [`hold`](Self::hold).
    pub fn release(&self, database: &str) {
        self.shared.pending().release(database);
    }

    /// Counts a change-feed start that relied on another feed's coverage.
    pub fn note_covered_start(&self) {
        bump(&self.shared.counters.feed_starts_covered);
    }

    /// Records, in the background, that every change of `database`
    /// committed up to WAL position `lsn` is invalidated in Redis (a change
    /// feed's claim; `feed.rs`, "Coverage"). Skipped while the breaker is
    /// not closed or the namespace is unknown: a missing record only makes
    /// a starting feed invalidate the database, as it would without any.
    pub fn record_coverage(&self, database: &str, lsn: u64) {
        let s = &self.shared;
        let (Some(names), true) = (s.names(), s.breaker.is_closed()) else {
            return;
        };
        let key = names.coverage_key(database);
        let shared = s.clone();
        self.runtime.spawn(async move {
            let mut conn = shared.conn.clone();
            let lsn = lsn.to_string();
            let keys = [key.as_str()];
            let args = [lsn.as_bytes()];
            let run = shared.coverage_lua.run(&mut conn, &keys, &args);
            match within(OP_TIMEOUT, run).await {
                Ok(_) => shared.breaker.success(),
                Err(e) => shared.failed("coverage", &e),
            }
        });
    }

    /// The last coverage record of `database`: `(number, lsn)`, `(0, 0)`
    /// when there is none; `None` when Redis cannot say (down, slow,
    /// namespace unknown, a malformed record).
    pub async fn coverage(&self, database: &str) -> Option<(u64, u64)> {
        let s = &self.shared;
        let names = s.names()?;
        if !s.breaker.allow(Instant::now()) {
            return None;
        }
        let mut conn = s.conn.clone();
        let mut get = redis::cmd("HMGET");
        get.arg(names.coverage_key(database)).arg("n").arg("lsn");
        match within(
            OP_TIMEOUT,
            get.query_async::<(Option<u64>, Option<u64>)>(&mut conn),
        )
        .await
        {
            Ok((n, lsn)) => {
                s.breaker.success();
                Some((n.unwrap_or(0), lsn.unwrap_or(0)))
            }
            Err(e) => {
                s.failed("coverage", &e);
                None
            }
        }
    }
}
