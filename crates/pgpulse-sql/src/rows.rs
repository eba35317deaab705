//! Row-level facts for keyed invalidation (docs/architecture.md, "Keyed
//! invalidation"): which plain comparisons a `SELECT`'s `WHERE` puts on
//! each table it reads ([`select_filters`]), and which rows an
//! `INSERT ... VALUES` writes ([`inserted_rows`]).
//!
//! Both work on the *raw* text, never on a shared [`Analysis`](crate::Analysis):
//! the analyzer shares one analysis between texts that differ only in
//! literals, and a filter's literal belongs to its own text. Both return
//! `None` for anything outside the narrow shapes they accept; the cache
//! then falls back to invalidating whole tables, so a shape left out costs
//! hit rate, never correctness.
//!
//! Why a top-level `WHERE` conjunct `t.c op v` on a table `t` named once in
//! the statement is enough: every row of the result that involves a row
//! `r` of `t` is built from `r`'s columns and passes the `WHERE`, so if
//! `r.c op v` is false, `r` contributes nothing — whatever the joins (a
//! comparison with a null-extended `t` is never true), aggregates, `DISTINCT`
//! or windows (all computed after `WHERE`). A table named a second time
//! (a self-join, a subquery, a CTE) is left out: the second reference is
//! not filtered.

use sqlparser::ast::{
    BinaryOperator, Expr, ObjectName, SetExpr, Statement, TableFactor, TableObject, UnaryOperator,
    Value, visit_relations,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

use crate::tables::TableRef;

/// A comparison operator, column on the left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped (`v < c` is `c > v`).
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }
}

/// A value as the statement gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    /// `$n`, the n-th Bind parameter (1-based).
    Param(u32),
    /// A numeric literal as written (`42`, `-7`, `1.5`).
    Number(String),
    /// A string literal, unescaped.
    Str(String),
    /// `NULL`.
    Null,
}

/// `column op operand`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Column name (lower case unless quoted).
    pub column: String,
    /// Operator, column on the left.
    pub op: CmpOp,
    /// What the column is compared with.
    pub operand: Operand,
}

/// The filters on one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFilters {
    /// The table as named.
    pub table: TableRef,
    /// Its top-level `WHERE` comparisons (all must hold for a row to count).
    pub filters: Vec<Filter>,
}

/// The rows of an `INSERT ... VALUES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertedRows {
    /// Target table.
    pub table: TableRef,
    /// The column list, as written.
    pub columns: Vec<String>,
    /// One value per column per row; `None` where it is not a plain value
    /// (an expression, `DEFAULT`, a function call).
    pub rows: Vec<Vec<Option<Operand>>>,
}

fn parse_one(sql: &str) -> Option<Statement> {
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    if stmts.len() != 1 {
        return None;
    }
    stmts.pop()
}

/// The top-level `WHERE` comparisons of a single-`SELECT` statement, per
/// table named exactly once in it; tables without any are left out.
/// `None` for other statements (set operations, `WITH`, derived tables or
/// table functions in `FROM`, several statements, parse errors).
pub fn select_filters(sql: &str) -> Option<Vec<TableFilters>> {
    let stmt = parse_one(sql)?;
    let Statement::Query(q) = &stmt else {
        return None;
    };
    if q.with.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    // (table, name it is referred to by)
    let mut from: Vec<(TableRef, String)> = Vec::new();
    for twj in &s.from {
        let factors = std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation));
        for f in factors {
            let TableFactor::Table {
                name, alias, args, ..
            } = f
            else {
                return None;
            };
            if args.is_some() {
                return None;
            }
            let t = TableRef::from_object_name(name)?;
            let refname = match alias {
                Some(a) if a.columns.is_empty() => ident(&a.name),
                Some(_) => return None,
                None => t.name.clone(),
            };
            from.push((t, refname));
        }
    }
    // Every relation named anywhere (subqueries, joins, FROM), to keep
    // only the tables named once.
    let mut named: Vec<TableRef> = Vec::new();
    let _ = visit_relations(&stmt, |n: &ObjectName| {
        if let Some(t) = TableRef::from_object_name(n) {
            named.push(t);
        }
        ControlFlow::<()>::Continue(())
    });
    let once = |t: &TableRef| named.iter().filter(|n| n.name == t.name).count() == 1;
    let mut out: Vec<TableFilters> = Vec::new();
    let Some(selection) = &s.selection else {
        return Some(out);
    };
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    for c in conjuncts {
        for (qualifier, column, op, operand) in comparisons(c) {
            let target = match &qualifier {
                Some(q) => from.iter().position(|(_, r)| r == q),
                None if from.len() == 1 => Some(0),
                None => None,
            };
            let Some(i) = target else { continue };
            let table = &from[i].0;
            if !once(table) || from.iter().filter(|(t, _)| t.name == table.name).count() != 1 {
                continue;
            }
            let filter = Filter {
                column,
                op,
                operand,
            };
            match out.iter_mut().find(|tf| tf.table == *table) {
                Some(tf) => tf.filters.push(filter),
                None => out.push(TableFilters {
                    table: table.clone(),
                    filters: vec![filter],
                }),
            }
        }
    }
    Some(out)
}

fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

type Comparison = (Option<String>, String, CmpOp, Operand);

/// The `column op operand` comparisons one conjunct states: one for a
/// plain comparison, two for `BETWEEN`, none for anything else.
fn comparisons(e: &Expr) -> Vec<Comparison> {
    match e {
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => CmpOp::Eq,
                BinaryOperator::Lt => CmpOp::Lt,
                BinaryOperator::LtEq => CmpOp::Le,
                BinaryOperator::Gt => CmpOp::Gt,
                BinaryOperator::GtEq => CmpOp::Ge,
                _ => return Vec::new(),
            };
            if let (Some((q, c)), Some(v)) = (column(left), operand(right)) {
                vec![(q, c, op, v)]
            } else if let (Some(v), Some((q, c))) = (operand(left), column(right)) {
                vec![(q, c, op.flipped(), v)]
            } else {
                Vec::new()
            }
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => match (column(expr), operand(low), operand(high)) {
            (Some((q, c)), Some(lo), Some(hi)) => {
                vec![(q.clone(), c.clone(), CmpOp::Ge, lo), (q, c, CmpOp::Le, hi)]
            }
            _ => Vec::new(),
        },
        Expr::Nested(inner) => comparisons(inner),
        _ => Vec::new(),
    }
}

fn ident(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// `c` or `q.c`.
fn column(e: &Expr) -> Option<(Option<String>, String)> {
    match e {
        Expr::Identifier(c) => Some((None, ident(c))),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            Some((Some(ident(&parts[0])), ident(&parts[1])))
        }
        _ => None,
    }
}

/// A plain value: `$n`, a number (with a sign), a string, `NULL`.
fn operand(e: &Expr) -> Option<Operand> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => {
                let n: u32 = p.strip_prefix('$')?.parse().ok()?;
                (n > 0).then_some(Operand::Param(n))
            }
            Value::Number(n, false) => Some(Operand::Number(n.clone())),
            Value::SingleQuotedString(s) => Some(Operand::Str(s.clone())),
            Value::Null => Some(Operand::Null),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, false) if !n.starts_with('-') => {
                    Some(Operand::Number(format!("-{n}")))
                }
                _ => None,
            },
            _ => None,
        },
        Expr::Nested(inner) => operand(inner),
        _ => None,
    }
}

/// The rows of a plain `INSERT INTO t (columns) VALUES (...), ...`:
/// no `ON CONFLICT`, no `WITH`, no `SELECT` source, an explicit column
/// list. `None` otherwise.
pub fn inserted_rows(sql: &str) -> Option<InsertedRows> {
    let Statement::Insert(ins) = parse_one(sql)? else {
        return None;
    };
    if ins.on.is_some()
        || ins.or.is_some()
        || ins.columns.is_empty()
        || !ins.assignments.is_empty()
        || ins.partitioned.is_some()
    {
        return None;
    }
    let TableObject::TableName(name) = &ins.table else {
        return None;
    };
    let table = TableRef::from_object_name(name)?;
    let columns = ins
        .columns
        .iter()
        .map(|c| match c.0.as_slice() {
            [part] => part.as_ident().map(ident),
            _ => None,
        })
        .collect::<Option<Vec<String>>>()?;
    let source = ins.source.as_ref()?;
    if source.with.is_some() {
        return None;
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    let mut rows = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        if row.content.len() != columns.len() {
            return None;
        }
        rows.push(row.content.iter().map(operand).collect());
    }
    Some(InsertedRows {
        table,
        columns,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u32) -> Operand {
        Operand::Param(n)
    }

    fn f(column: &str, op: CmpOp, operand: Operand) -> Filter {
        Filter {
            column: column.into(),
            op,
            operand,
        }
    }

    #[test]
    fn filters_of_a_join_go_to_their_tables() {
        let got = select_filters(
            "SELECT a.id FROM appointments a JOIN clients c ON c.id = a.client_id \
             WHERE a.provider_id = $1 AND a.starts_at >= $2 AND $3 > a.starts_at \
             AND c.vip AND (c.id = 5) ORDER BY a.starts_at",
        )
        .expect("a select");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].table.name, "appointments");
        assert_eq!(
            got[0].filters,
            vec![
                f("provider_id", CmpOp::Eq, p(1)),
                f("starts_at", CmpOp::Ge, p(2)),
                f("starts_at", CmpOp::Lt, p(3)),
            ]
        );
        assert_eq!(got[1].table.name, "clients");
        assert_eq!(
            got[1].filters,
            vec![f("id", CmpOp::Eq, Operand::Number("5".into()))]
        );
    }

    #[test]
    fn unqualified_columns_only_with_one_table() {
        let one = select_filters("SELECT * FROM clients WHERE email = $1 AND id BETWEEN -1 AND 9")
            .expect("select");
        assert_eq!(
            one[0].filters,
            vec![
                f("email", CmpOp::Eq, p(1)),
                f("id", CmpOp::Ge, Operand::Number("-1".into())),
                f("id", CmpOp::Le, Operand::Number("9".into())),
            ]
        );
        let two = select_filters("SELECT * FROM a JOIN b ON a.x = b.x WHERE y = $1").expect("ok");
        assert!(two.is_empty());
    }

    #[test]
    fn a_table_named_twice_has_no_filters() {
        for sql in [
            "SELECT * FROM t a JOIN t b ON a.p = b.id WHERE a.x = $1",
            "SELECT * FROM t WHERE t.x = $1 AND t.y IN (SELECT y FROM t WHERE z = 1)",
            "SELECT * FROM t WHERE t.x = $1 OR t.y = $2",
            "SELECT * FROM t WHERE NOT t.x = $1",
        ] {
            let got = select_filters(sql).expect("a select");
            assert!(got.is_empty(), "{sql}: {got:?}");
        }
        for sql in [
            "WITH w AS (SELECT 1) SELECT * FROM t WHERE x = $1",
            "SELECT * FROM t WHERE x = $1 UNION SELECT * FROM u WHERE x = $1",
            "SELECT * FROM (SELECT * FROM t) s WHERE s.x = $1",
            "SELECT * FROM generate_series(1, 3) g WHERE g = $1",
            "UPDATE t SET x = 1 WHERE y = $1",
            "SELECT 1; SELECT 2",
        ] {
            assert!(select_filters(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn a_subquery_on_another_table_keeps_the_filters() {
        let got = select_filters(
            "SELECT * FROM t WHERE t.x = $1 AND t.y IN (SELECT y FROM u WHERE u.z = 1)",
        )
        .expect("select");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].filters, vec![f("x", CmpOp::Eq, p(1))]);
    }

    #[test]
    fn rows_of_an_insert() {
        let got = inserted_rows(
            "INSERT INTO public.appointments (client_id, provider_id, status, created_at, note) \
             VALUES ($1, $2, 'booked', now(), NULL), (7, -2, 'x''y', DEFAULT, $3) RETURNING id",
        )
        .expect("an insert");
        assert_eq!(got.table.schema.as_deref(), Some("public"));
        assert_eq!(got.table.name, "appointments");
        assert_eq!(
            got.columns,
            ["client_id", "provider_id", "status", "created_at", "note"]
        );
        assert_eq!(
            got.rows,
            vec![
                vec![
                    Some(p(1)),
                    Some(p(2)),
                    Some(Operand::Str("booked".into())),
                    None,
                    Some(Operand::Null)
                ],
                vec![
                    Some(Operand::Number("7".into())),
                    Some(Operand::Number("-2".into())),
                    Some(Operand::Str("x'y".into())),
                    None,
                    Some(p(3))
                ],
            ]
        );
    }

    #[test]
    fn other_inserts_are_not_rows() {
        for sql in [
            "INSERT INTO t VALUES (1, 2)",
            "INSERT INTO t (a) SELECT a FROM u",
            "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING",
            "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2",
            "WITH x AS (DELETE FROM u RETURNING a) INSERT INTO t (a) SELECT a FROM x",
            "INSERT INTO t (a, b) VALUES (1)",
            "UPDATE t SET a = 1",
        ] {
            assert!(inserted_rows(sql).is_none(), "{sql}");
        }
    }
}
