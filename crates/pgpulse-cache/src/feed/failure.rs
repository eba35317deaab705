//! How a feed's setup steps fail ([`Failure`], [`classify`]) and the
//! warnings it gives once ([`Warnings`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Why a setup step failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The connection failed (or a transient error): retry.
    Lost(String),
    /// The server refuses this method (privilege, configuration, missing
    /// plugin): try the next one.
    Refused(String),
}

/// Errors that say the method cannot work here, as opposed to errors that
/// a new connection may not meet.
pub(super) fn classify(e: tokio_postgres::Error) -> Failure {
    let Some(db) = e.as_db_error() else {
        return Failure::Lost(e.to_string());
    };
    let code = db.code().code();
    let refused = code.starts_with("42") // privilege, undefined object
        || code.starts_with("0A") // feature not supported
        || code.starts_with("3F") // schema does not exist
        || code == "55000" // wal_level, or a standby in recovery
        || code == "25006" // read-only transaction (a standby)
        || code == "58P01" // output plugin not installed
        || code == "53400"; // no free replication slot
    if refused {
        Failure::Refused(db.message().to_owned())
    } else {
        Failure::Lost(e.to_string())
    }
}

/// Warnings given once per feed, or at most once per period.
#[derive(Debug, Default)]
pub(super) struct Warnings(HashSet<&'static str>, HashMap<&'static str, Instant>);

impl Warnings {
    /// True the first time `key` is seen.
    pub(super) fn first(&mut self, key: &'static str) -> bool {
        self.0.insert(key)
    }

    /// True the first time `key` is seen and then once `period` has
    /// passed since the last time it was true.
    pub(super) fn every(&mut self, key: &'static str, period: Duration) -> bool {
        let now = Instant::now();
        match self.1.get(key) {
            Some(last) if now.duration_since(*last) < period => false,
            _ => {
                self.1.insert(key, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_warnings_are_given_once_per_period() {
        let mut w = Warnings::default();
        assert!(w.every("slow", Duration::from_secs(60)));
        assert!(!w.every("slow", Duration::from_secs(60)));
        assert!(w.every("other", Duration::from_secs(60)));
        assert!(w.every("slow", Duration::ZERO));
        assert!(w.first("slow"));
        assert!(!w.first("slow"));
    }
}
