//! `GET /index-usage`: the latest collection of index statistics, each
//! index flagged `unused`, `duplicate`, `redundant` or `invalid`.

use axum::Json;
use axum::extract::State;
use pgpulse_store::IndexUsage;
use serde::Serialize;

use crate::error::ApiError;
use crate::query::{ApiQuery, Listing};
use crate::routes::openapi::{CommonErrors, IndexParams, PageParams};
use crate::state::ApiState;

/// What is wrong with an index (all false: nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IndexFlags {
    /// Never scanned since the statistics reset, and not unique / primary.
    pub unused: bool,
    /// Another index on the same table has the same column list.
    pub duplicate: bool,
    /// Its columns are a strict prefix of another index's on the same
    /// table (and it enforces no uniqueness).
    pub redundant: bool,
    /// `indisvalid` is false (a failed concurrent build).
    pub invalid: bool,
    /// The indexes it duplicates or is redundant with.
    pub covered_by: Vec<String>,
}

/// One index with its flags.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FlaggedIndex {
    /// The index as collected.
    #[serde(flatten)]
    index: IndexUsage,
    /// What is wrong with it.
    flags: IndexFlags,
}

fn same_table(a: &IndexUsage, b: &IndexUsage) -> bool {
    a.database == b.database && a.schema_name == b.schema_name && a.table_name == b.table_name
}

/// The flags of each index, in the same order.
pub fn flag_indexes(rows: &[IndexUsage]) -> Vec<IndexFlags> {
    rows.iter()
        .enumerate()
        .map(|(i, ix)| {
            let mut f = IndexFlags {
                unused: ix.idx_scan == 0 && !ix.is_unique && !ix.is_primary,
                invalid: !ix.is_valid,
                ..IndexFlags::default()
            };
            for (j, other) in rows.iter().enumerate() {
                if i == j || !same_table(ix, other) || ix.columns.is_empty() {
                    continue;
                }
                if other.columns == ix.columns {
                    f.duplicate = true;
                    f.covered_by.push(other.index_name.clone());
                } else if !ix.is_unique
                    && !ix.is_primary
                    && other.columns.len() > ix.columns.len()
                    && other.columns.starts_with(&ix.columns)
                {
                    f.redundant = true;
                    f.covered_by.push(other.index_name.clone());
                }
            }
            f
        })
        .collect()
}

const FLAG: [(&str, u8); 4] = [
    ("unused", 0),
    ("duplicate", 1),
    ("redundant", 2),
    ("invalid", 3),
];

/// Indexes of the latest collection, optionally only the flagged ones.
#[utoipa::path(
    get,
    path = "/api/performance/index-usage",
    tag = "indexes",
    params(IndexParams, PageParams),
    responses(
        (status = 200, description = "A page of the latest collection's indexes with flags",
         body = Listing<FlaggedIndex>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn index_usage(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<FlaggedIndex>>, ApiError> {
    q.allow(&["database", "table", "flag", "limit", "offset"])?;
    let database = q.name("database")?;
    let table = q.name("table")?;
    let flag = q.choice("flag", &FLAG)?;
    let page = q.page()?;
    let rows = state
        .store()
        .latest_index_usage(database.as_deref())
        .await?;
    let flags = flag_indexes(&rows);
    let items: Vec<FlaggedIndex> = rows
        .into_iter()
        .zip(flags)
        .filter(|(ix, _)| table.as_ref().is_none_or(|t| *t == ix.table_name))
        .filter(|(_, f)| match flag {
            None => true,
            Some(0) => f.unused,
            Some(1) => f.duplicate,
            Some(2) => f.redundant,
            Some(_) => f.invalid,
        })
        .map(|(index, flags)| FlaggedIndex { index, flags })
        .collect();
    Ok(Json(Listing::slice(items, page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(name: &str, table: &str, cols: &[&str], scans: i64, unique: bool) -> IndexUsage {
        IndexUsage {
            id: 0,
            collected_at: chrono::Utc::now(),
            database: "db".into(),
            schema_name: "public".into(),
            table_name: table.into(),
            index_name: name.into(),
            idx_scan: scans,
            idx_tup_read: 0,
            idx_tup_fetch: 0,
            size_bytes: 8192,
            table_size_bytes: 8192,
            is_unique: unique,
            is_primary: false,
            is_valid: name != "broken",
            columns: cols.iter().map(|c| (*c).to_owned()).collect(),
            definition: String::new(),
            stats_reset: None,
        }
    }

    #[test]
    fn flags_follow_the_definitions() {
        let rows = vec![
            ix("a_pkey", "a", &["id"], 0, true),
            ix("a_x", "a", &["x"], 5, false),
            ix("a_x2", "a", &["x"], 0, false),
            ix("a_x_y", "a", &["x", "y"], 3, false),
            ix("a_u_x", "a", &["x", "z"], 3, true),
            ix("b_x", "b", &["x"], 0, false),
            ix("broken", "b", &["q"], 1, false),
        ];
        let f = flag_indexes(&rows);
        assert!(!f[0].unused, "unique indexes are never unused");
        assert!(f[1].duplicate && f[1].redundant && !f[1].unused);
        assert_eq!(f[1].covered_by, ["a_x2", "a_x_y", "a_u_x"]);
        assert!(f[2].duplicate && f[2].unused);
        assert!(!f[3].duplicate && !f[3].redundant);
        assert!(!f[4].redundant, "a unique index enforces something");
        assert!(f[5].unused && !f[5].duplicate, "other table");
        assert!(f[6].invalid && !f[6].unused);
    }
}
