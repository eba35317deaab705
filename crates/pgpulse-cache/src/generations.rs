//! Per-table generation counters (ARCHITECTURE.md rule 4).
//!
//! Every write to a table family bumps its counter; a database-wide epoch
//! covers writes whose tables are unknown and "forget everything" events
//! (a change feed or Redis subscription that lost messages). An entry
//! remembers the *stamp* — epoch plus the sum of its families' counters —
//! taken before its query was sent. Counters only grow, so an unchanged sum
//! means every counter is unchanged: the entry (or the fill) is current.
//!
//! Keyed writes (docs/architecture.md, "Keyed invalidation") count apart:
//! each family has a table-wide counter and a keyed one, and keeps its last
//! [`LOG_ROWS`] keyed writes' rows. A read with conditions on a family
//! stamps only its table-wide counter and remembers the keyed counter;
//! it is current while the stamp is unchanged and no keyed write since
//! that point has a row that may satisfy its conditions
//! ([`Generations::current`]). Every other read stamps both counters, so
//! any write to the family invalidates it, as before.

// foldhash: these maps are read on every statement; SipHash was a
// measurable share of a cache hit (BENCHMARKS.md, session 5).
use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use crate::keyed::{Conds, Row};

#[derive(Debug, Default)]
struct DbGens {
    epoch: u64,
    tables: HashMap<Arc<str>, Family>,
    /// Suspensions made ([`Generations::suspend`]).
    suspends: u64,
    /// Suspensions up to this one are resolved by the change feed.
    resolved: u64,
    /// A change feed that delivers row images runs (suspensions allowed).
    keyed_feed: bool,
}

/// Whether a keyed read is current.
#[derive(Debug, PartialEq, Eq)]
pub enum Currency {
    /// Current at these keyed counters.
    Current(Vec<u64>),
    /// A write to one of its keyed families waits for the change feed's
    /// rows: not current now, but may be again (keep the entry).
    Pending,
    /// Invalidated.
    Stale,
}

/// Keyed writes remembered per family; a read older than the oldest one
/// kept is invalid.
pub const LOG_ROWS: usize = 4096;

#[derive(Debug, Default)]
struct Family {
    /// Table-wide writes.
    all: u64,
    /// Keyed writes.
    keyed: u64,
    /// The last keyed writes: (value of `keyed` after it, its rows).
    log: std::collections::VecDeque<(u64, Arc<[Row]>)>,
    /// Rows in `log`.
    rows: usize,
    /// A read with conditions on this family has been stored: keyed
    /// writes are worth resolving.
    keyed_readers: bool,
    /// The last suspension of this family; pending while above the
    /// database's `resolved`.
    pending_upto: u64,
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
        self.stamp_keyed(database, families, &[]).0
    }

    /// The stamp of a read of `families` with conditions `keyed` on some
    /// of them: their keyed writes are left out of the stamp, and the
    /// keyed counter of each is returned (in `keyed`'s order) to check
    /// them with [`current`](Self::current).
    pub fn stamp_keyed(
        &self,
        database: &str,
        families: &[Arc<str>],
        keyed: &[Conds],
    ) -> (u64, Vec<u64>) {
        stamp_in(&self.lock(), database, families, keyed)
    }

    /// Whether a read stamped `(stamp, seqs)` by
    /// [`stamp_keyed`](Self::stamp_keyed) is still current, and if so at
    /// which keyed counters (to check from next time).
    pub fn current(
        &self,
        database: &str,
        families: &[Arc<str>],
        keyed: &[Conds],
        stamp: u64,
        seqs: &[u64],
    ) -> Currency {
        let inner = self.lock();
        let (now, now_seqs) = stamp_in(&inner, database, families, keyed);
        if now != stamp || seqs.len() != keyed.len() {
            return Currency::Stale;
        }
        if now_seqs == seqs {
            return Currency::Current(now_seqs);
        }
        let Some(db) = inner.dbs.get(database) else {
            return Currency::Stale;
        };
        let mut pending = false;
        for (c, &since) in keyed.iter().zip(seqs) {
            let Some(fam) = db.tables.get(&c.family) else {
                return Currency::Stale;
            };
            if fam.keyed == since {
                continue;
            }
            // The write right after `since` must still be in the log.
            if fam.log.front().is_none_or(|(first, _)| *first > since + 1) {
                return Currency::Stale;
            }
            for (seq, rows) in fam.log.iter().rev() {
                if *seq <= since {
                    break;
                }
                if rows.iter().any(|r| c.may_match(r)) {
                    return Currency::Stale;
                }
            }
            pending |= fam.pending_upto > db.resolved;
        }
        if pending {
            Currency::Pending
        } else {
            Currency::Current(now_seqs)
        }
    }

    /// A write to `family` whose rows pgpulse does not know (an `UPDATE`
    /// through pgpulse) committed: keyed reads of it are not served until
    /// the change feed has delivered the rows (applied with
    /// [`bump_rows`](Self::bump_rows), or the whole family bumped) and
    /// [`resolve`](Self::resolve)d this suspension; any other read is
    /// invalidated now. `false` (nothing done) without a feed that
    /// delivers rows or without keyed reads: the caller bumps the family.
    pub fn suspend(&self, database: &str, family: &Arc<str>) -> bool {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        if !db.keyed_feed {
            return false;
        }
        db.suspends += 1;
        let token = db.suspends;
        let fam = db.tables.entry(family.clone()).or_default();
        if !fam.keyed_readers {
            db.suspends -= 1;
            return false;
        }
        fam.pending_upto = token;
        fam.keyed += 1;
        let seq = fam.keyed;
        fam.log.push_back((seq, Arc::from(Vec::new())));
        true
    }

    /// Whether [`suspend`](Self::suspend) would suspend `family` now.
    pub fn may_suspend(&self, database: &str, family: &str) -> bool {
        self.lock().dbs.get(database).is_some_and(|db| {
            db.keyed_feed && db.tables.get(family).is_some_and(|f| f.keyed_readers)
        })
    }

    /// The last suspension made in `database`: once the change feed has
    /// decoded everything committed before this was read, it may
    /// [`resolve`](Self::resolve) it.
    pub fn suspend_token(&self, database: &str) -> u64 {
        self.lock().dbs.get(database).map_or(0, |db| db.suspends)
    }

    /// Suspensions up to `token` are resolved: their rows were applied.
    pub fn resolve(&self, database: &str, token: u64) {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        db.resolved = db.resolved.max(token);
    }

    /// Whether a change feed that delivers row images of every logged
    /// table runs in `database`.
    pub fn keyed_feed(&self, database: &str) -> bool {
        self.lock()
            .dbs
            .get(database)
            .is_some_and(|db| db.keyed_feed)
    }

    /// A change feed that delivers row images started (`true`) or stopped
    /// in `database`. Stopping resolves every suspension by invalidating
    /// the whole database: their rows will never come.
    pub fn set_keyed_feed(&self, database: &str, on: bool) {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        if !on && db.resolved < db.suspends {
            db.epoch += 1;
            db.resolved = db.suspends;
        }
        db.keyed_feed = on;
    }

    /// Keyed writes of `rows` to `family` committed. `false` (nothing
    /// done) when no read with conditions on the family was ever stored,
    /// or for more than [`LOG_ROWS`] rows: the caller bumps the whole
    /// family instead, which is cheaper.
    pub fn bump_rows(&self, database: &str, family: &Arc<str>, rows: Vec<Row>) -> bool {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        let fam = db.tables.entry(family.clone()).or_default();
        if !fam.keyed_readers || rows.len() > LOG_ROWS {
            return false;
        }
        fam.keyed += 1;
        fam.rows += rows.len();
        let seq = fam.keyed;
        fam.log.push_back((seq, rows.into()));
        while fam.rows > LOG_ROWS && fam.log.len() > 1 {
            if let Some((_, old)) = fam.log.pop_front() {
                fam.rows -= old.len();
            }
        }
        true
    }

    /// A read with conditions on `families` was stored.
    pub fn note_keyed_reader(&self, database: &str, families: impl Iterator<Item = Arc<str>>) {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        for f in families {
            db.tables.entry(f).or_default().keyed_readers = true;
        }
    }

    /// Whether a read with conditions on `family` was ever stored.
    pub fn has_keyed_readers(&self, database: &str, family: &str) -> bool {
        self.lock()
            .dbs
            .get(database)
            .and_then(|db| db.tables.get(family))
            .is_some_and(|f| f.keyed_readers)
    }

    /// A write to `families` in `database` committed.
    pub fn bump(&self, database: &str, families: &[Arc<str>]) {
        let mut inner = self.lock();
        let db = db_mut(&mut inner, database);
        for f in families {
            let fam = db.tables.entry(f.clone()).or_default();
            fam.all += 1;
            // Reads stamped before this are invalid whatever the log says.
            fam.log.clear();
            fam.rows = 0;
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

fn stamp_in(
    inner: &Inner,
    database: &str,
    families: &[Arc<str>],
    keyed: &[Conds],
) -> (u64, Vec<u64>) {
    let mut sum = inner.global;
    let mut seqs = vec![0; keyed.len()];
    if let Some(db) = inner.dbs.get(database) {
        sum = sum.wrapping_add(db.epoch);
        for f in families {
            let Some(fam) = db.tables.get(&**f) else {
                continue;
            };
            sum = sum.wrapping_add(fam.all);
            match keyed.iter().position(|c| c.family == *f) {
                Some(i) => seqs[i] = fam.keyed,
                None => sum = sum.wrapping_add(fam.keyed),
            }
        }
    }
    (sum, seqs)
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

    #[test]
    fn keyed_reads_survive_only_rows_that_cannot_match() {
        use crate::keyed::{Cell, Cond, Conds, Row, Value};
        use pgpulse_sql::CmpOp;
        let g = Generations::default();
        let fam: Arc<str> = Arc::from("ap");
        let families = vec![fam.clone(), Arc::from("clients")];
        let conds = vec![Conds {
            family: fam.clone(),
            conds: vec![Cond {
                column: "provider".into(),
                op: CmpOp::Eq,
                value: Value::Int(1),
            }],
        }];
        let row = |p: i64| Row(vec![("provider".into(), Cell::Val(Value::Int(p)))]);
        // No keyed reader yet: the caller must bump the table.
        assert!(!g.bump_rows("db", &fam, vec![row(2)]));
        g.note_keyed_reader("db", std::iter::once(fam.clone()));
        let (stamp, seqs) = g.stamp_keyed("db", &families, &conds);
        let plain = g.stamp("db", &families);
        assert!(g.bump_rows("db", &fam, vec![row(2), row(3)]));
        // The keyed read is current; a read without conditions is not.
        let Currency::Current(seqs) = g.current("db", &families, &conds, stamp, &seqs) else {
            panic!("rows of other providers");
        };
        assert_ne!(g.stamp("db", &families), plain);
        // A row that matches, or one whose value is unknown, invalidates.
        for bad in [
            row(1),
            Row(vec![("provider".into(), Cell::Unknown)]),
            Row::default(),
        ] {
            let (stamp, seqs) = g.stamp_keyed("db", &families, &conds);
            assert!(g.bump_rows("db", &fam, vec![row(5), bad.clone()]));
            assert!(
                g.current("db", &families, &conds, stamp, &seqs) == Currency::Stale,
                "{bad:?}"
            );
        }
        // A fill whose check started before a matching write is refused
        // even after later, unrelated writes.
        assert!(g.current("db", &families, &conds, stamp, &seqs) == Currency::Stale);
        // A table-wide write invalidates keyed reads.
        let (stamp, seqs) = g.stamp_keyed("db", &families, &conds);
        g.bump("db", std::slice::from_ref(&fam));
        assert!(g.current("db", &families, &conds, stamp, &seqs) == Currency::Stale);
        // So does a write to another family the read depends on.
        let (stamp, seqs) = g.stamp_keyed("db", &families, &conds);
        g.bump("db", &[Arc::from("clients")]);
        assert!(g.current("db", &families, &conds, stamp, &seqs) == Currency::Stale);
        // And rows that fell out of the log: unknown, so invalid.
        let (stamp, seqs) = g.stamp_keyed("db", &families, &conds);
        for _ in 0..=LOG_ROWS {
            assert!(g.bump_rows("db", &fam, vec![row(9)]));
        }
        assert!(g.current("db", &families, &conds, stamp, &seqs) == Currency::Stale);
        let (stamp, seqs) = g.stamp_keyed("db", &families, &conds);
        assert!(g.bump_rows("db", &fam, vec![row(9)]));
        assert!(matches!(
            g.current("db", &families, &conds, stamp, &seqs),
            Currency::Current(_)
        ));
    }
}
