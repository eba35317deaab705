//! The full-parse half of the analysis: runs `sqlparser` (PostgreSQL
//! dialect) over one statement and collects the tables read and written,
//! the functions called and the locking clauses, with a reason whenever the
//! statement's effect on tables cannot be known from its text.
//!
//! Rules: the target of `INSERT`/`UPDATE`/`DELETE`/`MERGE`/`COPY FROM`, a
//! created/altered/dropped/truncated table, view or materialized view,
//! `CREATE INDEX ON t`, `COMMENT ON TABLE t`, `REFRESH MATERIALIZED VIEW v`
//! and `SELECT ... INTO t` are writes; every other table reference (joins,
//! subqueries, CTE bodies, `USING`, `FROM`, `INSERT ... SELECT` sources) is a
//! read. A name that matches a CTE in scope is not a table. DDL whose
//! effect on tables is unknown (functions, types, schemas, privileges...)
//! is reported as uncertain.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    CascadeOption, CommentObject, CopySource, Expr, FromTable, ObjectName, ObjectType, Query,
    Select, SetExpr, Statement, TableFactor, TableObject, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::error::SqlError;

/// A table (or view) name as written: lower case unless quoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// The schema, when the name was schema-qualified.
    pub schema: Option<String>,
    /// The table name.
    pub name: String,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl TableRef {
    /// Whether this names a system catalog: `pg_catalog.*`,
    /// `information_schema.*`, or an unqualified `pg_*`.
    pub fn is_catalog(&self) -> bool {
        match self.schema.as_deref() {
            Some(s) => s == "pg_catalog" || s == "information_schema",
            None => self.name.starts_with("pg_"),
        }
    }

    /// From a parsed object name: the last two parts (a database prefix is
    /// dropped); lower case unless quoted.
    pub(crate) fn from_object_name(n: &ObjectName) -> Option<Self> {
        let mut parts = n.0.iter().rev().map(|p| p.as_ident().map(ident_value));
        let name = parts.next()??;
        let schema = parts.next().flatten();
        Some(Self { schema, name })
    }
}

fn ident_value(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// What the full parse found in one statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deep {
    pub reads: Vec<TableRef>,
    pub writes: Vec<TableRef>,
    pub functions: Vec<String>,
    pub locking: bool,
    /// Why the write set may be incomplete, if it may.
    pub uncertain: Option<String>,
}

/// Parses one statement and collects its tables and functions.
pub(crate) fn deep_analyze(sql: &str) -> Result<Deep, SqlError> {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| SqlError::Parse(e.to_string()))?;
    let mut c = Collector::default();
    for s in &stmts {
        let _ = s.visit(&mut c);
    }
    if stmts.len() != 1 && c.deep.uncertain.is_none() {
        c.deep.uncertain = Some(format!("parser saw {} statements", stmts.len()));
    }
    let mut d = c.deep;
    dedup(&mut d.reads);
    dedup(&mut d.writes);
    dedup(&mut d.functions);
    Ok(d)
}

fn dedup<T: Eq + std::hash::Hash + Clone>(v: &mut Vec<T>) {
    let mut seen = HashSet::with_capacity(v.len());
    v.retain(|x| seen.insert(x.clone()));
}

#[derive(Default)]
struct Collector {
    deep: Deep,
    /// Names of the CTEs in scope, one entry per enclosing query.
    ctes: Vec<Vec<String>>,
    /// Write targets that will also be visited as a table factor (UPDATE,
    /// DELETE, MERGE): the first such visit is the target, not a read.
    pending_targets: Vec<TableRef>,
}

impl Collector {
    fn write(&mut self, n: &ObjectName) {
        match TableRef::from_object_name(n) {
            Some(t) => self.deep.writes.push(t),
            None => self.uncertain("unusual write target name"),
        }
    }

    fn write_factor(&mut self, f: &TableFactor) {
        match f {
            TableFactor::Table { name, .. } => {
                self.write(name);
                if let Some(t) = TableRef::from_object_name(name) {
                    self.pending_targets.push(t);
                }
            }
            _ => self.uncertain("write target is not a plain table"),
        }
    }

    fn uncertain(&mut self, why: &str) {
        if self.deep.uncertain.is_none() {
            self.deep.uncertain = Some(why.to_owned());
        }
    }

    fn function(&mut self, n: &ObjectName) {
        let name =
            n.0.iter()
                .map(|p| p.as_ident().map_or_else(|| p.to_string(), ident_value))
                .collect::<Vec<_>>()
                .join(".");
        self.deep.functions.push(name);
    }

    fn is_cte(&self, t: &TableRef) -> bool {
        t.schema.is_none() && self.ctes.iter().any(|s| s.contains(&t.name))
    }

    fn read(&mut self, t: TableRef) {
        if let Some(p) = self.pending_targets.iter().position(|x| *x == t) {
            self.pending_targets.swap_remove(p);
        } else if !self.is_cte(&t) {
            self.deep.reads.push(t);
        }
    }

    fn select_into(&mut self, s: &Select) {
        let Some(into) = &s.into else { return };
        for e in &into.targets {
            let name = match e {
                Expr::Identifier(i) => Some(ObjectName::from(vec![i.clone()])),
                Expr::CompoundIdentifier(v) => Some(ObjectName::from(v.clone())),
                _ => None,
            };
            match name {
                Some(n) => self.write(&n),
                None => self.uncertain("SELECT INTO target"),
            }
        }
    }

    fn ddl(&mut self, s: &Statement) {
        match s {
            Statement::CreateTable(ct) => self.write(&ct.name),
            Statement::CreateView(cv) => self.write(&cv.name),
            Statement::CreateIndex(ci) => self.write(&ci.table_name),
            Statement::AlterTable(at) => self.write(&at.name),
            Statement::AlterView(av) => self.write(&av.name),
            Statement::RefreshMaterializedView(r) => self.write(&r.name),
            Statement::Truncate(t) => {
                t.table_names.iter().for_each(|t| self.write(&t.name));
                if matches!(t.cascade, Some(CascadeOption::Cascade)) {
                    self.uncertain("TRUNCATE CASCADE empties referencing tables too");
                }
            }
            // Renaming or dropping an index changes no query result.
            Statement::AlterIndex { .. } => {}
            Statement::Drop { cascade: true, .. } => {
                self.uncertain("DROP CASCADE removes dependent objects too");
            }
            Statement::Drop {
                object_type, names, ..
            } => match object_type {
                ObjectType::Table
                | ObjectType::View
                | ObjectType::MaterializedView
                | ObjectType::Sequence => {
                    names.iter().for_each(|n| self.write(n));
                }
                ObjectType::Index => {}
                _ => self.uncertain("DROP of an object whose dependent tables are unknown"),
            },
            Statement::Comment {
                object_type,
                object_name,
                ..
            } => match object_type {
                CommentObject::Table | CommentObject::View | CommentObject::MaterializedView => {
                    self.write(object_name);
                }
                CommentObject::Column => {
                    let mut table = object_name.clone();
                    table.0.pop();
                    self.write(&table);
                }
                _ => {}
            },
            Statement::Copy { source, to, .. } => match source {
                CopySource::Table { table_name, .. } if !to => self.write(table_name),
                CopySource::Table { table_name, .. } => {
                    if let Some(t) = TableRef::from_object_name(table_name) {
                        self.read(t);
                    }
                }
                CopySource::Query(_) => {}
            },
            _ => self.uncertain("statement whose effect on tables is not modelled"),
        }
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let names = q
            .with
            .as_ref()
            .map(|w| {
                w.cte_tables
                    .iter()
                    .map(|c| ident_value(&c.alias.name))
                    .collect()
            })
            .unwrap_or_default();
        self.ctes.push(names);
        if !q.locks.is_empty() {
            self.deep.locking = true;
        }
        if let SetExpr::Table(t) = q.body.as_ref()
            && let Some(name) = &t.table_name
        {
            self.read(TableRef {
                schema: t.schema_name.as_ref().map(ident_value),
                name: ident_value(name),
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        self.select_into(s);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
        match f {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.function(name),
            TableFactor::Table { name, .. } => match TableRef::from_object_name(name) {
                Some(t) => self.read(t),
                None => self.uncertain("unusual table name"),
            },
            TableFactor::Function { name, .. } => self.function(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            self.function(&f.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        match s {
            Statement::Query(_) | Statement::Explain { .. } => {}
            Statement::Insert(ins) => match &ins.table {
                TableObject::TableName(n) => self.write(n),
                _ => self.uncertain("INSERT into a table function"),
            },
            Statement::Update(u) => self.write_factor(&u.table.relation),
            Statement::Delete(d) => {
                d.tables.iter().for_each(|n| self.write(n));
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
                from.iter().for_each(|t| self.write_factor(&t.relation));
            }
            Statement::Merge(m) => self.write_factor(&m.table),
            Statement::Call(f) => {
                self.function(&f.name);
                self.uncertain("CALL runs a procedure");
            }
            other => self.ddl(other),
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TableRef {
        match s.split_once('.') {
            Some((a, b)) => TableRef {
                schema: Some(a.into()),
                name: b.into(),
            },
            None => TableRef {
                schema: None,
                name: s.into(),
            },
        }
    }

    fn rw(sql: &str) -> (Vec<String>, Vec<String>) {
        let d = deep_analyze(sql).expect("parses");
        let mut r: Vec<String> = d.reads.iter().map(ToString::to_string).collect();
        let mut w: Vec<String> = d.writes.iter().map(ToString::to_string).collect();
        r.sort();
        w.sort();
        (r, w)
    }

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn table_ref_display_and_catalog() {
        assert_eq!(t("a.b").to_string(), "a.b");
        assert!(t("pg_catalog.pg_class").is_catalog());
        assert!(t("pg_stat_activity").is_catalog());
        assert!(t("information_schema.tables").is_catalog());
        assert!(!t("public.pg_like_name").is_catalog());
    }

    #[test]
    fn joins_subqueries_and_case() {
        let sql = "SELECT * FROM Clients c JOIN public.\"Appointments\" a ON a.client_id = c.id \
                   WHERE c.id IN (SELECT client_id FROM invoices) UNION SELECT * FROM x";
        assert_eq!(
            rw(sql),
            (
                v(&["clients", "invoices", "public.Appointments", "x"]),
                v(&[])
            )
        );
    }

    #[test]
    fn ctes_are_not_tables_and_modifying_ctes_write() {
        let sql = "WITH recent AS (SELECT * FROM appointments) SELECT * FROM recent";
        assert_eq!(rw(sql), (v(&["appointments"]), v(&[])));
        let sql = "WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) \
                   INSERT INTO archive SELECT * FROM moved";
        assert_eq!(rw(sql), (v(&[]), v(&["archive", "queue"])));
    }

    #[test]
    fn dml_targets_and_sources() {
        assert_eq!(rw("INSERT INTO a SELECT * FROM b"), (v(&["b"]), v(&["a"])));
        assert_eq!(
            rw("UPDATE a SET x = b.x FROM b WHERE a.id = b.id"),
            (v(&["b"]), v(&["a"]))
        );
        assert_eq!(
            rw("DELETE FROM a USING b WHERE a.id = b.id"),
            (v(&["b"]), v(&["a"]))
        );
        assert_eq!(
            rw(
                "MERGE INTO stock s USING deliveries d ON s.id = d.id WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty"
            ),
            (v(&["deliveries"]), v(&["stock"]))
        );
        // A self-join in UPDATE ... FROM reads the table as well.
        assert_eq!(
            rw("UPDATE a SET x = 1 FROM a AS a2 WHERE a.id = a2.id"),
            (v(&["a"]), v(&["a"]))
        );
    }

    #[test]
    fn ddl_writes() {
        assert_eq!(rw("TRUNCATE a, s.b"), (v(&[]), v(&["a", "s.b"])));
        assert_eq!(rw("CREATE INDEX ix ON t (a)"), (v(&[]), v(&["t"])));
        assert_eq!(rw("ALTER TABLE t ADD COLUMN c int"), (v(&[]), v(&["t"])));
        assert_eq!(rw("DROP TABLE IF EXISTS a, b"), (v(&[]), v(&["a", "b"])));
        assert_eq!(
            rw("CREATE TABLE n AS SELECT * FROM o"),
            (v(&["o"]), v(&["n"]))
        );
        assert_eq!(rw("SELECT * INTO n FROM o"), (v(&["o"]), v(&["n"])));
        assert_eq!(rw("REFRESH MATERIALIZED VIEW mv"), (v(&[]), v(&["mv"])));
        assert_eq!(rw("COMMENT ON TABLE t IS 'x'"), (v(&[]), v(&["t"])));
        assert_eq!(rw("COPY t FROM STDIN"), (v(&[]), v(&["t"])));
        assert_eq!(rw("COPY t TO STDOUT"), (v(&["t"]), v(&[])));
        for sql in ["DROP TABLE t CASCADE", "TRUNCATE t CASCADE"] {
            assert!(
                deep_analyze(sql).expect("parses").uncertain.is_some(),
                "{sql}"
            );
        }
        assert!(
            deep_analyze("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
                .expect("parses")
                .uncertain
                .is_some()
        );
    }

    #[test]
    fn functions_and_locking() {
        let d = deep_analyze("SELECT now(), pg_catalog.lower(x), nextval('s') FROM t FOR UPDATE")
            .expect("parses");
        assert_eq!(d.functions, v(&["now", "pg_catalog.lower", "nextval"]));
        assert!(d.locking);
        let d = deep_analyze("SELECT * FROM generate_series(1, 3) g").expect("parses");
        assert_eq!(d.functions, v(&["generate_series"]));
        assert!(d.reads.is_empty());
    }
}
