//! [`predicate_columns`]: the columns a statement filters, joins or sorts
//! on, each attributed to its table when the text allows it. The index
//! advisor turns these into candidate indexes.
//!
//! Scope: the `WHERE`, `JOIN ... ON` / `USING` and `ORDER BY` clauses of a
//! plain `SELECT` (including each branch of a set operation), and the
//! `WHERE` of `UPDATE` and `DELETE`. A column counts when it is compared
//! directly (`=`, `<`, `>`, `<=`, `>=`, `<>`, `IN`, `BETWEEN`, `LIKE`,
//! `IS NULL`, `= ANY(...)`); columns inside function calls or arithmetic do
//! not (an index on the bare column would not serve them). Subqueries are
//! not entered.

use std::collections::HashMap;

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, Ident, JoinConstraint, JoinOperator, OrderByKind, Query,
    Select, SetExpr, Statement, TableFactor, TableWithJoins,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::error::SqlError;
use crate::tables::TableRef;

/// Which clause a column was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnClause {
    /// A `WHERE` comparison.
    Where,
    /// A join condition.
    Join,
    /// An `ORDER BY` item.
    OrderBy,
}

/// One column a statement filters, joins or sorts on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColumnUse {
    /// The table the column belongs to: resolved through aliases when the
    /// column is qualified, or the only table in scope when it is not.
    /// `None` when an unqualified column could belong to several tables
    /// (resolve it from the catalog).
    pub table: Option<TableRef>,
    /// The column name, lower case unless quoted.
    pub column: String,
    /// Where it was found.
    pub clause: ColumnClause,
}

/// The columns `sql` (one statement) filters, joins or sorts on, in order
/// of appearance, without duplicates.
pub fn predicate_columns(sql: &str) -> Result<Vec<ColumnUse>, SqlError> {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| SqlError::Parse(e.to_string()))?;
    let mut out = Vec::new();
    for s in &stmts {
        match s {
            Statement::Query(q) => query(q, &mut out),
            Statement::Update(u) => {
                let scope = Scope::from_tables(std::slice::from_ref(&u.table));
                if let Some(w) = &u.selection {
                    scope.expr(w, ColumnClause::Where, &mut out);
                }
            }
            Statement::Delete(d) => {
                let tables = match &d.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                let scope = Scope::from_tables(tables);
                if let Some(w) = &d.selection {
                    scope.expr(w, ColumnClause::Where, &mut out);
                }
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    Ok(out)
}

fn query(q: &Query, out: &mut Vec<ColumnUse>) {
    let scope = set_expr(&q.body, out);
    if let (Some(ob), Some(scope)) = (&q.order_by, scope)
        && let OrderByKind::Expressions(items) = &ob.kind
    {
        for i in items {
            scope.column(&i.expr, ColumnClause::OrderBy, out);
        }
    }
}

/// Collects a query body; returns the scope of its (first) `SELECT` for
/// the `ORDER BY`.
fn set_expr(body: &SetExpr, out: &mut Vec<ColumnUse>) -> Option<Scope> {
    match body {
        SetExpr::Select(s) => Some(select(s, out)),
        SetExpr::Query(q) => {
            query(q, out);
            None
        }
        SetExpr::SetOperation { left, right, .. } => {
            let scope = set_expr(left, out);
            set_expr(right, out);
            scope
        }
        _ => None,
    }
}

fn select(s: &Select, out: &mut Vec<ColumnUse>) -> Scope {
    let scope = Scope::from_tables(&s.from);
    for twj in &s.from {
        for j in &twj.joins {
            match join_constraint(&j.join_operator) {
                Some(JoinConstraint::On(e)) => scope.expr(e, ColumnClause::Join, out),
                Some(JoinConstraint::Using(cols)) => {
                    for c in cols {
                        if let Some(id) = c.0.last().and_then(|p| p.as_ident()) {
                            // Both sides join on it; attribute to the joined table.
                            let table = table_of(&j.relation).map(|(t, _)| t);
                            out.push(ColumnUse {
                                table,
                                column: ident_value(id),
                                clause: ColumnClause::Join,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(w) = &s.selection {
        scope.expr(w, ColumnClause::Where, out);
    }
    scope
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    use JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c) => Some(c),
        _ => None,
    }
}

fn ident_value(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// A plain table in a `FROM` item and the name it is referred to by.
fn table_of(f: &TableFactor) -> Option<(TableRef, String)> {
    match f {
        TableFactor::Table { name, alias, .. } => {
            let t = TableRef::from_object_name(name)?;
            let refname = alias
                .as_ref()
                .map_or_else(|| t.name.clone(), |a| ident_value(&a.name));
            Some((t, refname))
        }
        _ => None,
    }
}

/// The tables of one `FROM` list by the name they are referred to.
struct Scope {
    by_name: HashMap<String, TableRef>,
    /// Number of `FROM` items (tables, subqueries, functions).
    items: usize,
}

impl Scope {
    fn from_tables(from: &[TableWithJoins]) -> Scope {
        let mut by_name = HashMap::new();
        let mut items = 0;
        for twj in from {
            for f in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
                items += 1;
                if let Some((t, refname)) = table_of(f) {
                    by_name.insert(refname, t);
                }
            }
        }
        Scope { by_name, items }
    }

    /// Walks a boolean condition through `AND` / `OR` / `NOT` / parentheses.
    fn expr(&self, e: &Expr, clause: ColumnClause, out: &mut Vec<ColumnUse>) {
        use BinaryOperator as B;
        match e {
            Expr::BinaryOp { left, op, right } => match op {
                B::And | B::Or => {
                    self.expr(left, clause, out);
                    self.expr(right, clause, out);
                }
                B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                    self.column(left, clause, out);
                    self.column(right, clause, out);
                }
                _ => {}
            },
            Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => {
                self.expr(inner, clause, out)
            }
            Expr::In { expr, .. }
            | Expr::Between { expr, .. }
            | Expr::Like { expr, .. }
            | Expr::ILike { expr, .. }
            | Expr::IsNull(expr)
            | Expr::IsNotNull(expr)
            | Expr::IsTrue(expr)
            | Expr::IsFalse(expr) => self.column(expr, clause, out),
            Expr::AnyOp { left, .. } | Expr::AllOp { left, .. } => self.column(left, clause, out),
            _ => {}
        }
    }

    /// Records `e` if it is a bare (possibly qualified) column.
    fn column(&self, e: &Expr, clause: ColumnClause, out: &mut Vec<ColumnUse>) {
        let (qualifier, col) = match e {
            Expr::Identifier(i) => (None, i),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                (Some(&parts[parts.len() - 2]), &parts[parts.len() - 1])
            }
            Expr::Nested(inner) => return self.column(inner, clause, out),
            _ => return,
        };
        let table = match qualifier {
            Some(q) => self.by_name.get(&ident_value(q)).cloned(),
            None if self.items == 1 => self.by_name.values().next().cloned(),
            None => None,
        };
        if qualifier.is_some() && table.is_none() {
            // Qualified by something that is not a plain table in scope
            // (a subquery alias, an outer query's table): not indexable here.
            return;
        }
        out.push(ColumnUse {
            table,
            column: ident_value(col),
            clause,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Option<TableRef> {
        Some(TableRef {
            schema: None,
            name: name.into(),
        })
    }

    fn uses(sql: &str) -> Vec<(Option<String>, String, ColumnClause)> {
        predicate_columns(sql)
            .expect("parses")
            .into_iter()
            .map(|c| (c.table.map(|t| t.to_string()), c.column, c.clause))
            .collect()
    }

    #[test]
    fn where_columns_of_one_table_are_attributed_to_it() {
        let c = predicate_columns(
            "SELECT * FROM appointments WHERE client_id = $1 AND starts_at > $2 ORDER BY starts_at",
        )
        .expect("parses");
        assert_eq!(
            c,
            vec![
                ColumnUse {
                    table: t("appointments"),
                    column: "client_id".into(),
                    clause: ColumnClause::Where
                },
                ColumnUse {
                    table: t("appointments"),
                    column: "starts_at".into(),
                    clause: ColumnClause::Where
                },
                ColumnUse {
                    table: t("appointments"),
                    column: "starts_at".into(),
                    clause: ColumnClause::OrderBy
                },
            ]
        );
    }

    #[test]
    fn aliases_and_joins_resolve_to_tables() {
        let c = uses(
            "SELECT a.id FROM public.appointments a JOIN clients c ON c.id = a.client_id \
             WHERE c.\"Email\" = $1 OR a.status IN ($2, $3)",
        );
        assert_eq!(
            c,
            vec![
                (Some("clients".into()), "id".into(), ColumnClause::Join),
                (
                    Some("public.appointments".into()),
                    "client_id".into(),
                    ColumnClause::Join
                ),
                (Some("clients".into()), "Email".into(), ColumnClause::Where),
                (
                    Some("public.appointments".into()),
                    "status".into(),
                    ColumnClause::Where
                ),
            ]
        );
    }

    #[test]
    fn unqualified_columns_of_several_tables_stay_unresolved() {
        let c = uses("SELECT * FROM a, b WHERE x = $1 AND b.y BETWEEN $2 AND $3");
        assert_eq!(
            c,
            vec![
                (None, "x".into(), ColumnClause::Where),
                (Some("b".into()), "y".into(), ColumnClause::Where),
            ]
        );
    }

    #[test]
    fn update_and_delete_where_and_functions_ignored() {
        assert_eq!(
            uses("UPDATE t SET v = $1 WHERE id = $2 AND lower(name) = $3"),
            vec![(Some("t".into()), "id".into(), ColumnClause::Where)]
        );
        assert_eq!(
            uses("DELETE FROM t WHERE created_at < $1 AND deleted IS NULL"),
            vec![
                (Some("t".into()), "created_at".into(), ColumnClause::Where),
                (Some("t".into()), "deleted".into(), ColumnClause::Where),
            ]
        );
        assert!(uses("INSERT INTO t VALUES ($1)").is_empty());
        assert!(predicate_columns("SELEC nonsense").is_err());
    }

    #[test]
    fn using_joins_and_set_operations() {
        assert_eq!(
            uses(
                "SELECT * FROM a JOIN b USING (k) WHERE a.z = $1 UNION SELECT * FROM c WHERE w = $2"
            ),
            vec![
                (Some("b".into()), "k".into(), ColumnClause::Join),
                (Some("a".into()), "z".into(), ColumnClause::Where),
                (Some("c".into()), "w".into(), ColumnClause::Where),
            ]
        );
    }
}
