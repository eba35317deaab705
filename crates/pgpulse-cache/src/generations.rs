//! Per-table generation counters (ARCHITECTURE.md rule 4).
//!
//! Every write to a table family bumps its counter; a database-wide epoch
//! covers writes whose tables are unknown and "forget everything" events
//! (a change feed or Redis subscription that lost messages). An entry
//! remembers the *stamp* — epoch plus the sum of its families' counters —
//! taken before its query was sent. Counters only grow, so an unchanged sum
//! means every counter is unchanged: the entry (or the fill) is current.

// foldhash: these maps are read on every statement; SipHash was a
// measurable share of a cache hit (BENCHMARKS.md, session 5).
use foldhash::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct DbGens {
    epoch: u64,
    tables: HashMap<Arc<str>, u64>,
}

/// The counters of every database.
#[derive(Debug, Default)]
pub struct Generations {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by [`Generations::bump_all`]; part of every stamp.
    global: u64,
    dbs: HashMap<Arc<str>, DbGens>,
}

impl Generations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stamp of a read of `families` in `database`.
    pub fn stamp(&self, database: &str, families: &[Arc<str>]) -> u64 {
        let inner = self.lock();
        let mut sum = inner.global;
        if let Some(db) = inner.dbs.get(database) {
            sum = sum.wrapping_add(db.epoch);
            for f in families {
                sum = sum.wrapping_add(db.tables.get(&**f).copied().unwrap_or(0));
            }
        }
        sum
    }

    /// A write to `families` in `database` committed.
    pub fn bump(&self, database: &str, families: &[Arc<str>]) {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        for f in families {
            *db.tables.entry(f.clone()).or_insert(0) += 1;
        }
    }

    /// Something in `database` changed, tables unknown.
    pub fn bump_database(&self, database: &str) {
        let mut inner = self.lock();
        db_mut(&mut inner, database).epoch += 1;
    }

    /// Everything may have changed.
    pub fn bump_all(&self) {
        self.lock().global += 1;
    }
}

fn db_mut<'a>(inner: &'a mut Inner, database: &str) -> &'a mut DbGens {
    if !inner.dbs.contains_key(database) {
        inner.dbs.insert(Arc::from(database), DbGens::default());
    }
    inner.dbs.get_mut(database).expect("inserted just above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_change_only_with_the_families_read() {
        let g = Generations::default();
        let t: Vec<Arc<str>> = vec![Arc::from("t")];
        let u: Vec<Arc<str>> = vec![Arc::from("u")];
        let s_t = g.stamp("db", &t);
        let s_u = g.stamp("db", &u);
        g.bump("db", &t);
        assert_ne!(g.stamp("db", &t), s_t);
        assert_eq!(g.stamp("db", &u), s_u);
        assert_eq!(g.stamp("other", &t), 0);
        let s_u = g.stamp("db", &u);
        g.bump_database("db");
        assert_ne!(g.stamp("db", &u), s_u);
        let s_other = g.stamp("other", &t);
        g.bump_all();
        assert_ne!(g.stamp("other", &t), s_other);
    }
}
