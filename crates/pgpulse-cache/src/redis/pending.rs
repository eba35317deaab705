//! Invalidations not yet written to Redis: queued while it is down (or
//! between a caller's `invalidate` and the writer task), replayed when it
//! answers again. Bumps commute and are idempotent for correctness (two
//! bumps invalidate what one does), so the queue is a set: bounded per
//! database, and collapsing to coarser scopes when it overflows.
//!
//! It also knows which databases have an invalidation that Redis has not
//! confirmed yet (queued, or being sent): until it has, the generations in
//! Redis are those from before the write, and an L2 entry filled before it
//! would look current — so this instance must not read L2 for that
//! database (a client reading its own write right after the commit).

use std::collections::HashMap;
use std::sync::Arc;

use super::format::Scope;

/// Families kept per database; past this the database is invalidated as a
/// whole.
pub(super) const MAX_FAMILIES_PER_DB: usize = 1024;
/// Databases kept; past this every database is invalidated (the global
/// epoch).
pub(super) const MAX_DBS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum PendingDb {
    /// Families invalidated whole, and families written keyed only
    /// ([`Scope::Keyed`]; a family is in one list or the other, the whole
    /// invalidation covering the keyed one).
    Families {
        whole: Vec<Arc<str>>,
        keyed: Vec<Arc<str>>,
    },
    Database,
}

impl PendingDb {
    fn messages(&self) -> usize {
        match self {
            PendingDb::Database => 1,
            PendingDb::Families { whole, keyed } => {
                usize::from(!whole.is_empty()) + usize::from(!keyed.is_empty())
            }
        }
    }
}

/// The set of pending invalidations.
#[derive(Debug, Default)]
pub(super) struct Pending {
    everything: bool,
    dbs: HashMap<Arc<str>, PendingDb>,
    /// Invalidations added so far (numbers them).
    added: u64,
    /// Every invalidation numbered up to this is confirmed by Redis.
    confirmed: u64,
    /// Per database, the number of its last invalidation not confirmed.
    last: HashMap<Arc<str>, u64>,
    /// The number of the last global invalidation (or of any, once the
    /// per-database record overflowed).
    last_all: u64,
    /// Databases whose L2 is not read whatever is confirmed (a change feed
    /// deciding how it starts), with how many holds each.
    held: HashMap<Arc<str>, usize>,
}

impl Pending {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.dbs.is_empty()
    }

    /// How many messages a replay would publish.
    pub fn len(&self) -> usize {
        usize::from(self.everything) + self.dbs.values().map(PendingDb::messages).sum::<usize>()
    }

    /// Adds one invalidation, unconfirmed until a [`take`](Self::take)
    /// that includes it is [`confirmed`](Self::confirmed).
    pub fn add(&mut self, scope: Scope) {
        if matches!(&scope, Scope::Families(_, f) | Scope::Keyed(_, f) if f.is_empty()) {
            return;
        }
        self.added += 1;
        let n = self.added;
        match &scope {
            Scope::Everything => self.last_all = n,
            Scope::Database(db) | Scope::Families(db, _) | Scope::Keyed(db, _) => {
                if self.last.len() >= MAX_DBS && !self.last.contains_key(db) {
                    self.last.clear();
                    self.last_all = n;
                } else {
                    self.last.insert(db.clone(), n);
                }
            }
        }
        self.merge(scope);
    }

    /// The number of the last invalidation added.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Every invalidation numbered up to this is confirmed by Redis.
    pub fn confirmed_upto(&self) -> u64 {
        self.confirmed
    }

    /// Holds `database` (see [`unconfirmed`](Self::unconfirmed)).
    pub fn hold(&mut self, database: &str) {
        *self.held.entry(Arc::from(database)).or_insert(0) += 1;
    }

    /// Ends one [`hold`](Self::hold) of `database`.
    pub fn release(&mut self, database: &str) {
        if let Some(n) = self.held.get_mut(database) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(database);
            }
        }
    }

    /// Whether `database` has an invalidation Redis has not confirmed, or
    /// is held.
    pub fn unconfirmed(&self, database: &str) -> bool {
        self.held.contains_key(database)
            || self.added > self.confirmed
                && (self.last_all > self.confirmed
                    || self.last.get(database).is_some_and(|n| *n > self.confirmed))
    }

    /// Everything taken by the [`take`](Self::take) that returned `upto`
    /// is in Redis.
    pub fn confirmed(&mut self, upto: u64) {
        if upto > self.confirmed {
            self.confirmed = upto;
            let c = upto;
            self.last.retain(|_, n| *n > c);
        }
    }

    /// Puts back what could not be sent (still unconfirmed).
    pub fn requeue(&mut self, scope: Scope) {
        self.merge(scope);
    }

    fn merge(&mut self, scope: Scope) {
        if self.everything {
            return;
        }
        let (db, families, is_keyed) = match scope {
            Scope::Everything => {
                self.everything = true;
                self.dbs.clear();
                return;
            }
            Scope::Database(db) => (db, None, false),
            Scope::Families(_, families) | Scope::Keyed(_, families) if families.is_empty() => {
                return;
            }
            Scope::Families(db, families) => (db, Some(families), false),
            Scope::Keyed(db, families) => (db, Some(families), true),
        };
        if !self.dbs.contains_key(&db) && self.dbs.len() >= MAX_DBS {
            self.everything = true;
            self.dbs.clear();
            return;
        }
        let slot = self.dbs.entry(db).or_insert_with(|| PendingDb::Families {
            whole: Vec::new(),
            keyed: Vec::new(),
        });
        match families {
            None => *slot = PendingDb::Database,
            Some(new) => {
                if let PendingDb::Families { whole, keyed } = slot {
                    for f in new {
                        if whole.contains(&f) {
                            continue;
                        }
                        if is_keyed {
                            if !keyed.contains(&f) {
                                keyed.push(f);
                            }
                        } else {
                            keyed.retain(|k| *k != f);
                            whole.push(f);
                        }
                    }
                    if whole.len() + keyed.len() > MAX_FAMILIES_PER_DB {
                        *slot = PendingDb::Database;
                    }
                }
            }
        }
    }

    /// Takes everything, in the order to send it: the global invalidation
    /// first (it covers the rest), then one per database; and the number
    /// to confirm once all of it is sent.
    pub fn take(&mut self) -> (Vec<Scope>, u64) {
        let mut out = Vec::with_capacity(self.len());
        if std::mem::take(&mut self.everything) {
            out.push(Scope::Everything);
            self.dbs.clear();
        }
        for (db, p) in self.dbs.drain() {
            match p {
                PendingDb::Database => out.push(Scope::Database(db)),
                PendingDb::Families { whole, keyed } => {
                    if !whole.is_empty() {
                        out.push(Scope::Families(db.clone(), whole));
                    }
                    if !keyed.is_empty() {
                        out.push(Scope::Keyed(db, keyed));
                    }
                }
            }
        }
        (out, self.added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fams(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn families_merge_and_a_database_covers_them() {
        let mut p = Pending::default();
        assert!(p.is_empty());
        p.add(Scope::Families(Arc::from("a"), fams(&["t"])));
        p.add(Scope::Families(Arc::from("a"), fams(&["u", "t"])));
        p.add(Scope::Families(Arc::from("b"), fams(&["t"])));
        p.add(Scope::Database(Arc::from("b")));
        p.add(Scope::Families(Arc::from("b"), fams(&["v"])));
        assert_eq!(p.len(), 2);
        let (mut got, _) = p.take();
        got.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            got,
            vec![
                Scope::Database(Arc::from("b")),
                Scope::Families(Arc::from("a"), fams(&["t", "u"])),
            ]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn a_whole_invalidation_covers_a_keyed_one() {
        let mut p = Pending::default();
        let db = || Arc::from("a");
        p.add(Scope::Keyed(db(), fams(&["t", "u"])));
        p.add(Scope::Families(db(), fams(&["t"])));
        p.add(Scope::Keyed(db(), fams(&["t", "v"])));
        assert_eq!(p.len(), 2);
        let (mut got, _) = p.take();
        got.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            got,
            vec![
                Scope::Families(db(), fams(&["t"])),
                Scope::Keyed(db(), fams(&["u", "v"])),
            ]
        );
        p.add(Scope::Keyed(db(), fams(&["t"])));
        p.add(Scope::Database(db()));
        p.add(Scope::Keyed(db(), fams(&["t"])));
        assert_eq!(p.take().0, vec![Scope::Database(db())]);
        p.add(Scope::Keyed(db(), Vec::new()));
        assert!(p.is_empty());
    }

    #[test]
    fn overflow_collapses_to_coarser_scopes() {
        let mut p = Pending::default();
        for i in 0..=MAX_FAMILIES_PER_DB {
            p.add(Scope::Families(
                Arc::from("a"),
                vec![Arc::from(format!("t{i}"))],
            ));
        }
        assert_eq!(p.take().0, vec![Scope::Database(Arc::from("a"))]);
        for i in 0..=MAX_DBS {
            p.add(Scope::Database(Arc::from(format!("db{i}"))));
        }
        assert_eq!(p.len(), 1);
        p.add(Scope::Database(Arc::from("x")));
        assert_eq!(p.take().0, vec![Scope::Everything]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_database_is_unconfirmed_until_its_batch_is_sent() {
        let mut p = Pending::default();
        assert!(!p.unconfirmed("a"));
        p.add(Scope::Families(Arc::from("a"), fams(&["t"])));
        assert!(p.unconfirmed("a") && !p.unconfirmed("b"));
        let (batch, upto) = p.take();
        assert!(p.unconfirmed("a"), "being sent is not confirmed");
        // Sending failed: back in the queue, still unconfirmed.
        batch.into_iter().for_each(|s| p.requeue(s));
        assert!(p.unconfirmed("a"));
        let (_, upto2) = p.take();
        assert_eq!(upto, upto2);
        // Added while the batch is in flight: not covered by it.
        p.add(Scope::Database(Arc::from("b")));
        p.confirmed(upto2);
        assert!(!p.unconfirmed("a"));
        assert!(p.unconfirmed("b"));
        let (_, upto3) = p.take();
        p.confirmed(upto3);
        assert!(!p.unconfirmed("b"));
        p.add(Scope::Everything);
        assert!(p.unconfirmed("anything"));
        let (_, upto4) = p.take();
        p.confirmed(upto4);
        assert!(!p.unconfirmed("anything"));
    }

    #[test]
    fn many_unconfirmed_databases_block_all() {
        let mut p = Pending::default();
        for i in 0..=MAX_DBS {
            p.add(Scope::Database(Arc::from(format!("db{i}"))));
        }
        assert!(p.unconfirmed("db0") && p.unconfirmed("never seen"));
        let (_, upto) = p.take();
        p.confirmed(upto);
        assert!(!p.unconfirmed("db0") && !p.unconfirmed("never seen"));
    }

    #[test]
    fn a_held_database_is_unconfirmed_until_every_hold_is_released() {
        let mut p = Pending::default();
        p.hold("a");
        p.hold("a");
        assert!(p.unconfirmed("a") && !p.unconfirmed("b"));
        p.release("a");
        assert!(p.unconfirmed("a"), "one hold left");
        p.release("a");
        assert!(!p.unconfirmed("a"));
        // Releasing more than was held changes nothing.
        p.release("a");
        assert!(!p.unconfirmed("a"));
        // A hold and a pending invalidation: both must end.
        p.hold("a");
        p.add(Scope::Database(Arc::from("a")));
        p.release("a");
        assert!(p.unconfirmed("a"));
        let (_, upto) = p.take();
        p.confirmed(upto);
        assert!(!p.unconfirmed("a"));
    }
}
