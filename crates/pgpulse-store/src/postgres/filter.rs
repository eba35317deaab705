//! Shared query plumbing of the PostgreSQL store: a WHERE-clause builder
//! with numbered parameters, paged reads (count + page), and the text
//! encoding of the model's enums.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::error::StoreError;
use crate::model::{Page, Paged, Window};

type Param = Box<dyn ToSql + Sync + Send>;

/// A conjunction of conditions and the parameters they number (`$1`...).
#[derive(Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Filter {
    /// An empty filter (matches every row).
    pub(super) fn new() -> Filter {
        Filter::default()
    }

    /// Adds a parameter and returns its placeholder (`$n`).
    pub(super) fn param<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Adds a condition without parameters.
    pub(super) fn raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_string());
    }

    /// Adds `template` with `?` replaced by the value's placeholder.
    pub(super) fn push<T: ToSql + Sync + Send + 'static>(&mut self, template: &str, value: T) {
        let placeholder = self.param(value);
        self.clauses.push(template.replace('?', &placeholder));
    }

    /// Adds `column = value`.
    pub(super) fn eq<T: ToSql + Sync + Send + 'static>(&mut self, column: &str, value: T) {
        self.push(&format!("{column} = ?"), value);
    }

    /// Adds `column = value` when there is a value.
    pub(super) fn eq_opt<T: ToSql + Sync + Send + 'static>(
        &mut self,
        column: &str,
        value: Option<T>,
    ) {
        if let Some(v) = value {
            self.eq(column, v);
        }
    }

    /// Adds `from <= column < to` for the window's bounds.
    pub(super) fn window(&mut self, column: &str, window: Window) {
        if let Some(from) = window.from {
            self.push(&format!("{column} >= ?"), from);
        }
        if let Some(to) = window.to {
            self.push(&format!("{column} < ?"), to);
        }
    }

    /// ` WHERE a AND b`, or nothing.
    pub(super) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// [`where_sql`](Self::where_sql), leaving the parameters but no
    /// conditions (for a WHERE placed inside a derived table).
    pub(super) fn take_where(&mut self) -> String {
        let sql = self.where_sql();
        self.clauses.clear();
        sql
    }

    /// The parameters in placeholder order.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// `LIMIT $n OFFSET $m` for a page.
    pub(super) fn page_sql(&mut self, page: Page) -> String {
        let limit = self.param(i64::from(page.limit));
        let offset = self.param(i64::try_from(page.offset).unwrap_or(i64::MAX));
        format!(" LIMIT {limit} OFFSET {offset}")
    }
}

/// Reads one page: `SELECT columns FROM from_sql WHERE ... ORDER BY order`
/// and the count of all rows matching the filter.
pub(super) async fn paged<T>(
    client: &Client,
    from_sql: &str,
    columns: &str,
    order: &str,
    mut filter: Filter,
    page: Page,
    map: fn(&Row) -> Result<T, StoreError>,
) -> Result<Paged<T>, StoreError> {
    let where_sql = filter.where_sql();
    let count_sql = format!("SELECT count(*) FROM {from_sql}{where_sql}");
    let total: i64 = client
        .query_one(&count_sql, &filter.params())
        .await?
        .try_get(0)?;
    let page_sql = filter.page_sql(page);
    let sql = format!("SELECT {columns} FROM {from_sql}{where_sql} ORDER BY {order}{page_sql}");
    let rows = client.query(&sql, &filter.params()).await?;
    let items = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
    Ok(Paged {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// The snake_case name serde gives an enum variant (`warning`).
pub(super) fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        // The model's enums are unit variants, which serialize as strings.
        _ => String::new(),
    }
}

/// Parses a stored enum name back.
pub(super) fn parse_enum<T: DeserializeOwned>(
    text: &str,
    column: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| {
        StoreError::Decode {
            column,
            message: e.to_string(),
        }
    })
}

/// Whether the error is a unique violation (SQLSTATE 23505).
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}
