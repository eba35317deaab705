//! Plans of normalized statements and hypothetical indexes (HypoPG).
//!
//! A normalized text has `$n` parameters and no values, so it is planned
//! generically: inside a transaction that is always rolled back,
//! `SET LOCAL plan_cache_mode = force_generic_plan`, `PREPARE` the text,
//! `EXPLAIN (FORMAT JSON) EXECUTE p(NULL, ...)` (the NULLs are never
//! looked at by a generic plan) and `DEALLOCATE` (prepared statements are
//! not transactional). With HypoPG, `hypopg_create_index` adds an index
//! only this session's planner sees; the statement is prepared again after
//! it so the new plan can use it, and `hypopg_reset()` removes it.
//! Nothing here executes the statement or changes the schema.

use serde_json::Value;
use tokio_postgres::Client;

use super::error::AdvisorError;
use super::ident::qualified;

const PREPARED: &str = "pgpulse_advisor_stmt";

/// Whether HypoPG can be used on this connection: installed in the
/// database, or (with `install`) installable: `CREATE EXTENSION IF NOT
/// EXISTS hypopg` succeeds (it needs the package on the server, listed in
/// `pg_available_extensions`, and the right to create the extension).
/// Returns false, not an error, when it is not.
pub async fn ensure_hypopg(client: &Client, install: bool) -> Result<bool, AdvisorError> {
    let available = client
        .query_opt(
            "SELECT installed_version IS NOT NULL FROM pg_available_extensions WHERE name = 'hypopg'",
            &[],
        )
        .await?;
    match available.map(|r| r.try_get::<_, bool>(0)).transpose()? {
        None => Ok(false),
        Some(true) => Ok(true),
        Some(false) if !install => Ok(false),
        Some(false) => match client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            .await
        {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::info!(error = %e, "hypopg is available but cannot be created");
                Ok(false)
            }
        },
    }
}

/// A generic plan of one statement: its top node's total cost and the
/// whole JSON plan.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericPlan {
    /// The top node's `Total Cost`.
    pub total_cost: f64,
    /// `EXPLAIN (FORMAT JSON)` output.
    pub plan: Value,
}

impl GenericPlan {
    /// Whether a `Seq Scan` node reads `schema.table`.
    pub fn seq_scans(&self, schema: &str, table: &str) -> bool {
        fn walk(n: &Value, schema: &str, table: &str) -> bool {
            let here = n["Node Type"] == "Seq Scan"
                && n["Relation Name"] == table
                && (n["Schema"].is_null() || n["Schema"] == schema);
            here || n["Plans"]
                .as_array()
                .is_some_and(|c| c.iter().any(|p| walk(p, schema, table)))
        }
        walk(&self.plan[0]["Plan"], schema, table)
    }
}

/// Plans `query` (`params` parameters) generically; with `hypothetical`
/// = `(schema, table, column)`, with a hypothetical btree index on it
/// (HypoPG must be installed). Statements that cannot be prepared (untyped
/// parameters, not a plannable statement) give `Ok(None)`.
pub async fn generic_plan(
    client: &Client,
    query: &str,
    params: u32,
    hypothetical: Option<(&str, &str, &str)>,
) -> Result<Option<GenericPlan>, AdvisorError> {
    client
        .batch_execute("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
        .await?;
    let result = plan_in_transaction(client, query, params, hypothetical).await;
    // Always undo: the transaction, the prepared statement (not
    // transactional) and any hypothetical index (session memory).
    let _ = client.batch_execute("ROLLBACK").await;
    let _ = client
        .batch_execute(&format!("DEALLOCATE {PREPARED}"))
        .await;
    if hypothetical.is_some() {
        let _ = client.batch_execute("SELECT hypopg_reset()").await;
    }
    match result {
        Ok(plan) => Ok(Some(plan)),
        Err(AdvisorError::Postgres(e)) if e.code().is_some() => {
            tracing::debug!(error = %e, "statement not plannable by the advisor");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn plan_in_transaction(
    client: &Client,
    query: &str,
    params: u32,
    hypothetical: Option<(&str, &str, &str)>,
) -> Result<GenericPlan, AdvisorError> {
    if let Some((schema, table, column)) = hypothetical {
        let ddl = format!(
            "CREATE INDEX ON {} ({})",
            qualified(schema, table),
            super::ident::quote_ident(column)
        );
        client
            .query("SELECT indexrelid FROM hypopg_create_index($1)", &[&ddl])
            .await?;
    }
    client
        .batch_execute(&format!("PREPARE {PREPARED} AS {query}"))
        .await?;
    let args = if params == 0 {
        String::new()
    } else {
        format!("({})", vec!["NULL"; params as usize].join(", "))
    };
    let rows = client
        .simple_query(&format!("EXPLAIN (FORMAT JSON) EXECUTE {PREPARED}{args}"))
        .await?;
    let text = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    let plan: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let total_cost = plan[0]["Plan"]["Total Cost"].as_f64().unwrap_or(f64::NAN);
    Ok(GenericPlan { total_cost, plan })
}
