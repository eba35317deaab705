//! What the cache needs to know about one database, read from its system
//! catalogs: function volatility (`pg_proc.provolatile`), which relation
//! names are plain tables safe to cache, row-level security, views resolved
//! to the tables they read, inheritance / partition families, and foreign
//! keys whose `ON DELETE/UPDATE` actions write other tables.
//!
//! Names are matched without their schema, conservatively: a name is
//! cacheable only if *every* relation of that name in the database is, and
//! a write to `a.t` invalidates reads of `b.t` too. Over-invalidating costs
//! hit rate; under-invalidating would serve stale rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::reason::NocacheReason;

/// `pg_proc.provolatile`, the most volatile over all overloads of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Volatility {
    /// `i`: same result for the same arguments, forever.
    Immutable,
    /// `s`: same result within one statement (`now()`, `current_user`).
    Stable,
    /// `v`: anything (`random()`, `nextval()`, writes).
    Volatile,
}

/// A relation name as the cache sees it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// `Err`: reads of this name are never cached, and why.
    pub cacheable: Result<(), NocacheReason>,
    /// The generation keys a read of this name depends on: its family root
    /// for a table; the families of the tables behind a view.
    pub reads: Vec<Arc<str>>,
}

/// One database's catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Function name (lower case as stored) → volatility.
    pub functions: HashMap<String, Volatility>,
    /// Relation name → info.
    pub tables: HashMap<String, TableInfo>,
    /// Table name → family root (partitions and inheritance children map to
    /// the top parent; a write anywhere in a family invalidates all of it).
    pub families: HashMap<String, Arc<str>>,
    /// Family → families written by its foreign keys' cascading actions.
    pub cascades: HashMap<Arc<str>, Vec<Arc<str>>>,
    /// Tables whose rows can be keyed (keyed invalidation), by name.
    pub keyable: HashMap<String, Arc<crate::keyed::KeyTable>>,
    /// When it was read.
    pub loaded_at: Instant,
}

/// Names the SQL analyzer reports as functions that are syntax, not
/// `pg_proc` entries, and are immutable.
const SYNTAX_FUNCTIONS: &[&str] = &[
    "coalesce", "nullif", "greatest", "least", "exists", "array", "row", "cast",
];

/// Stable functions that are safe because the key scopes them (the user and
/// the session variables are in the key).
const KEYED_STABLE: &[&str] = &[];

impl Catalog {
    /// An empty catalog (nothing is cacheable but table-less immutable
    /// expressions).
    pub fn empty() -> Catalog {
        Catalog {
            functions: HashMap::new(),
            tables: HashMap::new(),
            families: HashMap::new(),
            cascades: HashMap::new(),
            keyable: HashMap::new(),
            loaded_at: Instant::now(),
        }
    }

    /// The keyable table with `test_decoding` head `head`.
    pub fn keyable_by_head(&self, head: &str) -> Option<&Arc<crate::keyed::KeyTable>> {
        self.keyable.values().find(|t| t.head == head)
    }

    /// The volatility of a function called as `name` (possibly
    /// schema-qualified); `None` when unknown.
    pub fn function(&self, name: &str) -> Option<Volatility> {
        let bare = bare_name(name);
        if SYNTAX_FUNCTIONS.contains(&bare) || KEYED_STABLE.contains(&bare) {
            return Some(Volatility::Immutable);
        }
        self.functions.get(bare).copied()
    }

    /// The relation `name` (possibly schema-qualified).
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.get(bare_name(name))
    }

    /// The generation keys to bump when table `name` is written: its family
    /// and, transitively, the families its cascading foreign keys write.
    pub fn written_families(&self, name: &str, out: &mut Vec<Arc<str>>) {
        let bare = bare_name(name);
        let root = self
            .families
            .get(bare)
            .cloned()
            .unwrap_or_else(|| Arc::from(bare));
        let mut stack = vec![root];
        while let Some(f) = stack.pop() {
            if out.contains(&f) {
                continue;
            }
            if let Some(next) = self.cascades.get(&f) {
                stack.extend(next.iter().cloned());
            }
            out.push(f);
        }
    }
}

/// The last dot-separated component, without quotes (a dot inside quotes
/// is part of the name).
pub fn bare_name(name: &str) -> &str {
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in name.bytes().enumerate() {
        match c {
            b'"' => in_quotes = !in_quotes,
            b'.' if !in_quotes => start = i + 1,
            _ => {}
        }
    }
    name[start..].trim_matches('"')
}

/// Reads the catalog of the database `client` is connected to.
pub async fn load(client: &tokio_postgres::Client) -> Result<Catalog, tokio_postgres::Error> {
    let mut catalog = Catalog::empty();

    for row in client
        .query(
            "SELECT proname::text, string_agg(DISTINCT provolatile::text, '') \
             FROM pg_proc GROUP BY proname",
            &[],
        )
        .await?
    {
        let name: String = row.get(0);
        let kinds: String = row.get(1);
        let v = if kinds.contains('v') {
            Volatility::Volatile
        } else if kinds.contains('s') {
            Volatility::Stable
        } else {
            Volatility::Immutable
        };
        catalog.functions.insert(name, v);
    }

    // Families: child → parent, resolved to the top.
    let mut parent: HashMap<String, String> = HashMap::new();
    for row in client
        .query(
            "SELECT c.relname::text, p.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent",
            &[],
        )
        .await?
    {
        parent.insert(row.get(0), row.get(1));
    }
    let root_of = |name: &str| -> Arc<str> {
        let mut cur = name.to_owned();
        let mut seen = HashSet::new();
        while let Some(p) = parent.get(&cur) {
            if !seen.insert(cur.clone()) {
                break;
            }
            cur = p.clone();
        }
        Arc::from(cur)
    };
    for child in parent.keys() {
        catalog.families.insert(child.clone(), root_of(child));
    }

    // Relations, aggregated by name.
    let mut views: Vec<String> = Vec::new();
    for row in client
        .query(
            "SELECT c.relname::text, c.relkind::text, c.relpersistence::text, \
                    c.relrowsecurity, n.nspname::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            &[],
        )
        .await?
    {
        let name: String = row.get(0);
        let kind: String = row.get(1);
        let persistence: String = row.get(2);
        let rls: bool = row.get(3);
        let schema: String = row.get(4);
        let verdict = if schema == "pg_catalog" || schema == "information_schema" {
            Err(NocacheReason::SystemCatalog)
        } else if persistence == "t" {
            Err(NocacheReason::UnknownTable)
        } else if rls {
            Err(NocacheReason::RowLevelSecurity)
        } else if kind == "r" || kind == "p" {
            Ok(())
        } else if kind == "v" {
            views.push(name.clone());
            Ok(())
        } else {
            // Materialized views (REFRESH is not in the change feed) and
            // foreign tables (their data lives elsewhere).
            Err(NocacheReason::UnknownTable)
        };
        let family = catalog
            .families
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Arc::from(name.as_str()));
        let entry = catalog.tables.entry(name).or_insert(TableInfo {
            cacheable: Ok(()),
            reads: Vec::new(),
        });
        if entry.cacheable.is_ok() {
            entry.cacheable = verdict;
        }
        if kind != "v" && !entry.reads.contains(&family) {
            entry.reads.push(family);
        }
    }

    // Views: what they read (tables and other views) and any non-immutable
    // function they call.
    let mut view_deps: HashMap<String, Vec<String>> = HashMap::new();
    let mut view_volatile: HashSet<String> = HashSet::new();
    for row in client
        .query(
            "SELECT DISTINCT v.relname::text, t.relname::text \
             FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class \
             JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass \
                              AND d.refclassid = 'pg_class'::regclass \
             JOIN pg_class t ON t.oid = d.refobjid \
             WHERE v.relkind = 'v' AND t.oid <> v.oid",
            &[],
        )
        .await?
    {
        view_deps.entry(row.get(0)).or_default().push(row.get(1));
    }
    for row in client
        .query(
            "SELECT DISTINCT v.relname::text \
             FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class \
             JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass \
                              AND d.refclassid = 'pg_proc'::regclass \
             JOIN pg_proc p ON p.oid = d.refobjid \
             WHERE v.relkind = 'v' AND p.provolatile <> 'i'",
            &[],
        )
        .await?
    {
        view_volatile.insert(row.get(0));
    }
    for view in views {
        let mut reads = Vec::new();
        let mut verdict = if view_volatile.contains(&view) {
            Err(NocacheReason::VolatileFunction)
        } else {
            Ok(())
        };
        let mut stack = vec![view.clone()];
        let mut seen = HashSet::new();
        while let Some(v) = stack.pop() {
            if !seen.insert(v.clone()) {
                continue;
            }
            for dep in view_deps.get(&v).into_iter().flatten() {
                match catalog.tables.get(dep) {
                    Some(info) if view_deps.contains_key(dep) || info.reads.is_empty() => {
                        if view_volatile.contains(dep) {
                            verdict = verdict.and(Err(NocacheReason::VolatileFunction));
                        }
                        verdict = verdict.and(info.cacheable);
                        stack.push(dep.clone());
                    }
                    Some(info) => {
                        verdict = verdict.and(info.cacheable);
                        for f in &info.reads {
                            if !reads.contains(f) {
                                reads.push(f.clone());
                            }
                        }
                    }
                    None => verdict = verdict.and(Err(NocacheReason::UnknownTable)),
                }
            }
        }
        if let Some(info) = catalog.tables.get_mut(&view) {
            info.cacheable = info.cacheable.and(verdict);
            info.reads = reads;
        }
    }

    // Foreign keys whose actions write the referencing table.
    for row in client
        .query(
            "SELECT DISTINCT src.relname::text, dst.relname::text FROM pg_constraint k \
             JOIN pg_class src ON src.oid = k.confrelid JOIN pg_class dst ON dst.oid = k.conrelid \
             WHERE k.contype = 'f' \
               AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))",
            &[],
        )
        .await?
    {
        let src: String = row.get(0);
        let dst: String = row.get(1);
        let src = root_of(&src);
        let dst = root_of(&dst);
        if src != dst {
            let v = catalog.cascades.entry(src).or_default();
            if !v.contains(&dst) {
                v.push(dst);
            }
        }
    }
    load_keyable(client, &mut catalog).await?;
    catalog.loaded_at = Instant::now();
    Ok(catalog)
}

/// Tables whose rows can be keyed: plain and logged (the change feed sees
/// their rows), the only relation of their name (names are matched
/// without schema), outside inheritance and partitioning, without rules or
/// user triggers (which could change or add rows pgpulse does not see in
/// a statement), without row-level security; and their columns of the
/// keyed types (`keyed::ColType`), not generated, text only with a
/// deterministic collation.
const KEYABLE: &str = "\
    SELECT c.relname::text, \
           format('table %s.%s', quote_ident(n.nspname), quote_ident(c.relname)), \
           a.attname::text, a.atttypid::oid, c.relreplident = 'f' \
    FROM pg_class c \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
    WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND NOT c.relrowsecurity \
      AND NOT c.relhassubclass AND NOT c.relispartition AND NOT c.relhasrules \
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND n.nspname NOT LIKE 'pg\\_%' \
      AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) \
      AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) \
      AND (SELECT count(*) FROM pg_class o WHERE o.relname = c.relname) = 1 \
      AND a.atttypid IN (20, 21, 23, 25, 1184) AND a.attgenerated = '' \
      AND (a.atttypid <> 25 OR EXISTS (SELECT 1 FROM pg_collation co \
           WHERE co.oid = a.attcollation AND co.collisdeterministic))";

async fn load_keyable(
    client: &tokio_postgres::Client,
    catalog: &mut Catalog,
) -> Result<(), tokio_postgres::Error> {
    use crate::keyed::{ColType, KeyTable};
    let mut tables: HashMap<String, KeyTable> = HashMap::new();
    for row in client.query(KEYABLE, &[]).await? {
        let name: String = row.get(0);
        let head: String = row.get(1);
        let column: String = row.get(2);
        let oid: u32 = row.get(3);
        let old_rows: bool = row.get(4);
        let Some(ty) = ColType::of_oid(oid) else {
            continue;
        };
        tables
            .entry(name.clone())
            .or_insert_with(|| KeyTable {
                family: Arc::from(name.as_str()),
                head,
                columns: HashMap::new(),
                old_rows,
            })
            .columns
            .insert(column, ty);
    }
    catalog.keyable = tables
        .into_iter()
        // A table keyed only if its name is its own family and no cascade
        // writes it (cascaded writes are table-wide anyway, but keep it
        // simple to reason about).
        .filter(|(name, _)| !catalog.families.contains_key(name))
        .map(|(n, t)| (n, Arc::new(t)))
        .collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names() {
        assert_eq!(bare_name("public.t"), "t");
        assert_eq!(bare_name("t"), "t");
        assert_eq!(bare_name("\"My.Table\""), "My.Table");
        assert_eq!(bare_name("s.\"T\""), "T");
    }

    #[test]
    fn written_families_follow_cascades_once() {
        let mut c = Catalog::empty();
        c.families.insert("orders_2024".into(), Arc::from("orders"));
        c.cascades
            .insert(Arc::from("clients"), vec![Arc::from("orders")]);
        c.cascades
            .insert(Arc::from("orders"), vec![Arc::from("clients")]);
        let mut out = Vec::new();
        c.written_families("public.clients", &mut out);
        assert_eq!(out, vec![Arc::from("clients"), Arc::from("orders")]);
        let mut out = Vec::new();
        c.written_families("orders_2024", &mut out);
        assert_eq!(out, vec![Arc::from("orders"), Arc::from("clients")]);
    }
}
