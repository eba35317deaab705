//! The cache's keyed-invalidation entry points: conditions of a read,
//! rows of an `INSERT` through pgpulse, rows of the change feed
//! (docs/architecture.md, "Keyed invalidation"; the values and matching
//! are in [`crate::keyed`]).

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use pgpulse_sql::{InsertedRows, TableFilters};

use crate::cache::{Cache, Plan};
use crate::catalog::Catalog;
use crate::keyed::{self, Conds, Params, Row, no_conds};

/// Raw texts kept per memo before it is cleared.
const MEMO_TEXTS: usize = 4096;

/// What the raw texts of statements say about rows, parsed once per text.
/// Keyed by the raw text, never by an analysis (which texts that differ
/// only in literals share).
#[derive(Default)]
pub(crate) struct Memo {
    filters: TextMemo<Arc<[TableFilters]>>,
    inserts: TextMemo<Arc<InsertedRows>>,
}

type TextMemo<T> = Mutex<HashMap<Arc<str>, Option<T>>>;

fn remember<T: Clone>(
    map: &TextMemo<T>,
    text: &str,
    make: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    if let Some(v) = map.lock().unwrap_or_else(|p| p.into_inner()).get(text) {
        return v.clone();
    }
    let v = make(text);
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= MEMO_TEXTS {
        m.clear();
    }
    m.insert(Arc::from(text), v.clone());
    v
}

impl Cache {
    /// The loaded catalog of `database`, if any.
    pub(crate) fn catalog_of(&self, database: &str) -> Option<Arc<Catalog>> {
        self.inner.catalog_of(database)
    }

    /// The conditions that `text` (the raw statement text of a read
    /// planned as `plan`), run with `params`, puts on keyable tables; empty
    /// when none (the entry is then invalidated by any write to the tables
    /// it reads). Pass to [`lookup_keyed`](Cache::lookup_keyed).
    pub fn read_conditions(&self, plan: &Plan, text: &str, params: &Params<'_>) -> Arc<[Conds]> {
        if !plan.keyable || !self.inner.config.keyed {
            return no_conds();
        }
        let Some(catalog) = self.catalog_of(&plan.database) else {
            return no_conds();
        };
        let Some(filters) = remember(&self.inner.memo.filters, text, |t| {
            pgpulse_sql::select_filters(t).map(Arc::from)
        }) else {
            return no_conds();
        };
        let conds = keyed::resolve(&filters, &catalog.keyable, params);
        if conds.is_empty() {
            no_conds()
        } else {
            Arc::from(conds)
        }
    }

    /// How the loaded catalog of `database` keys `table`, if it does.
    pub fn keyable(&self, database: &str, table: &str) -> Option<Arc<keyed::KeyTable>> {
        if !self.inner.config.keyed {
            return None;
        }
        self.catalog_of(database)?
            .keyable
            .get(crate::catalog::bare_name(table))
            .cloned()
    }

    /// Whether an `INSERT` into `table` may be applied as keyed writes
    /// (the table is keyable and has keyed reads): worth keeping its text
    /// and parameters until its commit.
    pub fn keys_inserts(&self, database: &str, table: &str) -> bool {
        self.inner.config.keyed
            && self.catalog_of(database).is_some_and(|c| {
                c.keyable
                    .get(crate::catalog::bare_name(table))
                    .is_some_and(|t| self.inner.gens.has_keyed_readers(database, &t.family))
            })
    }

    /// An `INSERT` into `table` through pgpulse committed; `text` is its
    /// raw text, `params` its Bind's. When its rows are known and the table
    /// is keyable, only the cached reads whose conditions they may satisfy
    /// are invalidated here (Redis and the other instances invalidate the
    /// whole table) and `true` is returned; otherwise nothing is done and
    /// the caller invalidates the table as usual.
    pub fn invalidate_inserted(
        &self,
        database: &str,
        table: &str,
        text: &str,
        params: &Params<'_>,
    ) -> bool {
        let Some(key_table) = self.keyable(database, table) else {
            return false;
        };
        // Parsing the text pays only when a read keyed on the table exists.
        if !self
            .inner
            .gens
            .has_keyed_readers(database, &key_table.family)
        {
            return false;
        }
        let Some(ins) = remember(&self.inner.memo.inserts, text, |t| {
            pgpulse_sql::inserted_rows(t).map(Arc::new)
        }) else {
            return false;
        };
        if ins.table.name != crate::catalog::bare_name(table) {
            return false;
        }
        let rows = keyed::inserted(&ins, &key_table, params);
        self.keyed_write(database, &key_table.family, rows)
    }

    /// Keyed writes of `rows` to `family` (a keyable table) committed:
    /// applied locally, and as a table invalidation in Redis. `false` when
    /// no keyed read of the family was ever stored (nothing done).
    pub(crate) fn keyed_write(&self, database: &str, family: &Arc<str>, rows: Vec<Row>) -> bool {
        if rows.len() > crate::generations::LOG_ROWS
            || !self.inner.gens.has_keyed_readers(database, family)
        {
            return false;
        }
        // Redis first (`Invalidator::tables_everywhere`).
        self.written_elsewhere(database, family);
        // Cannot fail now (a family never loses its keyed readers); if it
        // did, the caller's whole-table invalidation would cover it.
        if !self.inner.gens.bump_rows(database, family, rows) {
            return false;
        }
        self.inner.stats.keyed_write();
        true
    }

    /// What every keyed write to `family` tells beyond this instance's L1:
    /// auto mode's write counts, the statistics, and Redis (a
    /// table-grained invalidation for the L2; the other instances' feeds
    /// key it for their L1, [`RedisL2::invalidate_keyed`](crate::redis::RedisL2::invalidate_keyed)).
    fn written_elsewhere(&self, database: &str, family: &Arc<str>) {
        let families = std::slice::from_ref(family);
        self.inner.auto.written(families);
        self.inner.stats.invalidation(Some(family));
        if let Some(l2) = self.inner.l2.get() {
            l2.invalidate_keyed(database, families);
        }
    }

    /// Change-feed lines of the table with `test_decoding` head `head`
    /// (each the change after `table <name>: `): `true` when they were
    /// applied as keyed writes, `false` when the caller must invalidate
    /// the table (not keyable, no keyed reads, a line without the rows).
    pub(crate) fn feed_changes(&self, database: &str, head: &str, lines: &[String]) -> bool {
        let Some(catalog) = self.catalog_of(database) else {
            return false;
        };
        let Some(table) = catalog.keyable_by_head(head) else {
            return false;
        };
        let mut rows = Vec::with_capacity(lines.len());
        for line in lines {
            match keyed::feed_change(line, table) {
                Some(r) => rows.extend(r),
                None => return false,
            }
        }
        self.keyed_write(database, &table.family.clone(), rows)
    }

    /// A write through pgpulse to `table` committed whose rows are not
    /// known (an `UPDATE`, a `DELETE`, an `INSERT ... SELECT`: `insert`):
    /// when a change feed delivers its rows (for an `UPDATE` or `DELETE`,
    /// the table has `REPLICA IDENTITY FULL`) and the table has keyed
    /// reads, they are
    /// suspended until the feed brings the rows
    /// ([`Generations::suspend`](crate::Generations::suspend)), the feed
    /// is woken, Redis invalidates the table, and `true` is returned;
    /// otherwise the caller invalidates the table.
    pub fn suspend_table(&self, database: &str, table: &str, insert: bool) -> bool {
        let Some(key_table) = self.keyable(database, table) else {
            return false;
        };
        let family = &key_table.family;
        // Without old rows the feed's `UPDATE` and `DELETE` lines say
        // only "the whole table": no use waiting for them.
        if !(insert || key_table.old_rows) || !self.inner.gens.may_suspend(database, family) {
            return false;
        }
        // What its foreign keys' actions write, the usual way.
        let mut cascades = Vec::new();
        if let Some(catalog) = self.catalog_of(database) {
            catalog.written_families(table, &mut cascades);
        }
        cascades.retain(|f| f != family);
        if !cascades.is_empty() {
            self.invalidator()
                .tables_everywhere(database, cascades.iter().map(|f| &**f));
        }
        // Redis first (`Invalidator::tables_everywhere`), then the
        // suspension; a feed that stopped in between leaves the table to
        // the caller.
        self.written_elsewhere(database, family);
        if !self.inner.gens.suspend(database, family) {
            return false;
        }
        self.inner.stats.suspension();
        // The catalog is loaded: the database's state exists.
        self.db_state(database).feed_wake.notify_one();
        true
    }
}
