//! [`Invalidator`]: invalidations applied from outside the data path
//! (the change feed, other instances through Redis, and the proxy's own
//! commits through [`Cache::invalidate_tables`](crate::Cache)).

use std::sync::{Arc, Weak};

use crate::cache::Inner;

/// Applies invalidations that come from outside the data path (the change
/// feed, other instances through Redis) to this instance only. Holds the
/// cache weakly: it does not keep a dropped cache alive.
#[derive(Clone, Debug)]
pub struct Invalidator {
    inner: Weak<Inner>,
}

impl Invalidator {
    pub(crate) fn new(inner: Weak<Inner>) -> Invalidator {
        Invalidator { inner }
    }

    /// Relations (by name, any schema) of `database` changed: their
    /// families, resolved through the catalog, are bumped locally. Returns
    /// the families.
    pub fn tables<'a>(
        &self,
        database: &str,
        tables: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Arc<str>> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        let families = families_of(&inner, database, tables);
        bump_families(&inner, database, &families);
        families
    }

    /// Like [`tables`](Self::tables), and also in Redis (generations bumped,
    /// other instances told): for changes seen by this instance first — its
    /// own writes and its change feed. Without that, an L1 miss after the
    /// invalidation could be answered by a stale L2 entry.
    ///
    /// Redis's queue hears of it *before* the local counters move
    /// (docs/architecture.md, "Redis first"): a lookup stamped after the
    /// local bump must find the invalidation unconfirmed, or its L2 hit —
    /// an entry from before the write — would be kept in L1 under the new
    /// stamp.
    pub fn tables_everywhere<'a>(
        &self,
        database: &str,
        tables: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Arc<str>> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        let families = families_of(&inner, database, tables);
        if let Some(l2) = inner.l2.get() {
            l2.invalidate(database, &families);
        }
        bump_families(&inner, database, &families);
        families
    }

    /// Like [`database`](Self::database), and also in Redis (queued first,
    /// as in [`tables_everywhere`](Self::tables_everywhere)).
    pub fn database_everywhere(&self, database: &str) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(l2) = inner.l2.get()
        {
            l2.invalidate_database(database);
        }
        self.database(database);
    }

    /// Families (already resolved by another instance) changed.
    pub fn families(&self, database: &str, families: &[Arc<str>]) {
        if let Some(inner) = self.inner.upgrade() {
            inner.gens.bump(database, families);
            for f in families {
                inner.stats.invalidation(Some(f));
            }
        }
    }

    /// Whether this instance's change feed for `database` is running and
    /// delivers row images of every logged table
    /// (`Generations::set_keyed_feed`): it then brings other instances'
    /// keyed writes too, and keys them for the L1.
    pub fn keyed_feed(&self, database: &str) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|inner| inner.gens.keyed_feed(database))
    }

    /// Anything in `database` may have changed.
    pub fn database(&self, database: &str) {
        if let Some(inner) = self.inner.upgrade() {
            inner.gens.bump_database(database);
            inner.stats.invalidation(None);
        }
    }

    /// Anything anywhere may have changed (a subscription or feed lost
    /// messages).
    pub fn everything(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.gens.bump_all();
            inner.stats.invalidation(None);
        }
    }

    /// The Redis L2's [`mark`](crate::redis::RedisL2::mark), if there is
    /// an L2.
    pub(crate) fn l2_mark(&self) -> Option<u64> {
        let inner = self.inner.upgrade()?;
        inner.l2.get().map(|l2| l2.mark())
    }

    /// The Redis L2's [`confirmed`](crate::redis::RedisL2::confirmed).
    pub(crate) fn l2_confirmed(&self) -> Option<u64> {
        let inner = self.inner.upgrade()?;
        inner.l2.get().map(|l2| l2.confirmed())
    }

    /// [`RedisL2::record_coverage`](crate::redis::RedisL2::record_coverage).
    pub(crate) fn l2_record_coverage(&self, database: &str, lsn: u64) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(l2) = inner.l2.get()
        {
            l2.record_coverage(database, lsn);
        }
    }

    /// [`RedisL2::coverage`](crate::redis::RedisL2::coverage); `None`
    /// without an L2.
    pub(crate) async fn l2_coverage(&self, database: &str) -> Option<(u64, u64)> {
        let inner = self.inner.upgrade()?;
        let l2 = inner.l2.get()?;
        l2.coverage(database).await
    }

    /// [`RedisL2::note_covered_start`](crate::redis::RedisL2::note_covered_start).
    pub(crate) fn l2_note_covered_start(&self) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(l2) = inner.l2.get()
        {
            l2.note_covered_start();
        }
    }

    /// [`RedisL2::hold`](crate::redis::RedisL2::hold).
    pub(crate) fn l2_hold(&self, database: &str) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(l2) = inner.l2.get()
        {
            l2.hold(database);
        }
    }

    /// [`RedisL2::release`](crate::redis::RedisL2::release).
    pub(crate) fn l2_release(&self, database: &str) {
        if let Some(inner) = self.inner.upgrade()
            && let Some(l2) = inner.l2.get()
        {
            l2.release(database);
        }
    }

    /// The `test_decoding` heads of `database`'s keyable tables that have
    /// keyed reads, each with whether its old rows come too (`REPLICA
    /// IDENTITY FULL`): the change feed fetches their `INSERT` lines, and
    /// for those the `UPDATE` and `DELETE` lines, whole.
    pub(crate) fn keyed_heads(&self, database: &str) -> Vec<(String, bool)> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        let catalog = inner.catalog_of(database);
        catalog
            .map(|c| {
                c.keyable
                    .values()
                    .filter(|t| inner.gens.has_keyed_readers(database, &t.family))
                    .map(|t| (t.head.clone(), t.old_rows))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The change feed's row changes (head → changes) applied as keyed
    /// writes; returns the heads' table names that could not be (to
    /// invalidate whole).
    pub(crate) fn feed_rows(
        &self,
        database: &str,
        inserts: std::collections::BTreeMap<String, Vec<String>>,
    ) -> Vec<String> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        let cache = crate::Cache { inner };
        let mut whole = Vec::new();
        for (head, lines) in inserts {
            if !cache.feed_changes(database, &head, &lines) {
                match crate::feed::head_names(&head) {
                    Some(names) => whole.extend(names),
                    // Cannot happen for a head the catalog produced; be safe.
                    None => cache.invalidator().database_everywhere(database),
                }
            }
        }
        whole
    }

    /// [`Generations::suspend_token`](crate::Generations::suspend_token).
    pub(crate) fn suspend_token(&self, database: &str) -> u64 {
        self.inner
            .upgrade()
            .map_or(0, |i| i.gens.suspend_token(database))
    }

    /// [`Generations::resolve`](crate::Generations::resolve).
    pub(crate) fn resolve(&self, database: &str, token: u64) {
        if let Some(inner) = self.inner.upgrade() {
            inner.gens.resolve(database, token);
        }
    }

    /// [`Generations::set_keyed_feed`](crate::Generations::set_keyed_feed).
    pub(crate) fn set_keyed_feed(&self, database: &str, on: bool) {
        if let Some(inner) = self.inner.upgrade() {
            inner.gens.set_keyed_feed(database, on);
        }
    }

    /// The database's state (for the feed's wake-up).
    pub(crate) fn db_state(&self, database: &str) -> Option<Arc<crate::cache::DbState>> {
        let inner = self.inner.upgrade()?;
        Some(crate::Cache { inner }.db_state(database))
    }

    /// Whether the cache still exists.
    pub fn alive(&self) -> bool {
        self.inner.strong_count() > 0
    }
}

/// The families that writes to `tables` change, through the catalog (the
/// bare names without one).
fn families_of<'a>(
    inner: &Inner,
    database: &str,
    tables: impl IntoIterator<Item = &'a str>,
) -> Vec<Arc<str>> {
    let catalog = inner.catalog_of(database);
    let mut families = Vec::new();
    for t in tables {
        match &catalog {
            Some(c) => c.written_families(t, &mut families),
            None => {
                let f: Arc<str> = Arc::from(crate::catalog::bare_name(t));
                if !families.contains(&f) {
                    families.push(f);
                }
            }
        }
    }
    families
}

/// Bumps `families` locally, with auto mode's write counts and the
/// statistics.
fn bump_families(inner: &Inner, database: &str, families: &[Arc<str>]) {
    inner.gens.bump(database, families);
    inner.auto.written(families);
    for f in families {
        inner.stats.invalidation(Some(f));
    }
}
