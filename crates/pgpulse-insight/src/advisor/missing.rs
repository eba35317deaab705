//! Missing indexes: candidate columns from the `WHERE`, `JOIN` and `ORDER
//! BY` of the hottest and slowest statements (`pgpulse_sql::
//! predicate_columns`), kept only for tables with no valid index leading
//! on that column, then validated:
//!
//! - with HypoPG: each affected statement's generic-plan cost before and
//!   after a hypothetical index; recommended when some statement's cost
//!   drops by at least `min_cost_reduction`. Expected benefit: for each
//!   such statement, calls × mean × (1 − after / before), i.e. the cost
//!   ratio applied to the measured mean.
//! - without HypoPG: a heuristic, stated with its lower confidence: the
//!   generic plan sequentially scans a table of at least
//!   `large_table_rows` rows and the column is selective (`pg_stats`
//!   estimates a value matches under 1 % of the rows).
//!
//! A write-heavy table (more rows written than read since the reset) gets
//! the write overhead stated in the rationale.

use std::collections::BTreeMap;

use pgpulse_sql::{StatementKind, analyze, predicate_columns};
use pgpulse_store::{IndexUsage, NewRecommendation};
use serde_json::json;
use tokio_postgres::Client;

use super::AdvisorConfig;
use super::error::AdvisorError;
use super::hypo::{GenericPlan, generic_plan};
use super::ident::{index_name, qualified, quote_ident};
use super::workload::{TableActivity, WorkloadStatement};

/// A (schema, table, column) some statements filter, join or sort on.
type Column = (String, String, String);

/// One statement's verdict for one candidate.
struct Effect<'a> {
    stmt: &'a WorkloadStatement,
    before: f64,
    after: Option<f64>,
}

/// What the validation of one candidate needs from the server.
pub(crate) struct Server<'a> {
    pub client: &'a Client,
    pub hypopg: bool,
    pub indexes: &'a [IndexUsage],
    pub tables: &'a [TableActivity],
}

/// Candidates and their statements, for the statements of `database`.
async fn candidates<'w>(
    client: &Client,
    workload: &'w [WorkloadStatement],
    indexes: &[IndexUsage],
) -> Result<BTreeMap<Column, Vec<&'w WorkloadStatement>>, AdvisorError> {
    let mut out: BTreeMap<Column, Vec<&WorkloadStatement>> = BTreeMap::new();
    for stmt in workload {
        let a = analyze(&stmt.query);
        if !matches!(
            a.kind,
            StatementKind::Select | StatementKind::Update | StatementKind::Delete
        ) {
            continue;
        }
        let Ok(uses) = predicate_columns(&stmt.query) else {
            continue;
        };
        for u in &uses {
            let tables: Vec<_> = match &u.table {
                Some(t) => vec![t.clone()],
                None => a.tables_read.clone(),
            };
            for t in tables {
                let Some((schema, table)) = resolve(client, &t.to_string(), &u.column).await?
                else {
                    continue;
                };
                let indexed = indexes.iter().any(|i| {
                    i.is_valid
                        && i.schema_name == schema
                        && i.table_name == table
                        && i.columns.first() == Some(&u.column)
                });
                if !indexed {
                    let v = out.entry((schema, table, u.column.clone())).or_default();
                    if !v.iter().any(|s| s.fingerprint == stmt.fingerprint) {
                        v.push(stmt);
                    }
                }
                break;
            }
        }
    }
    Ok(out)
}

/// The (schema, table) that `name` resolves to on the server's
/// `search_path`, if it is an ordinary table with `column`.
async fn resolve(
    client: &Client,
    name: &str,
    column: &str,
) -> Result<Option<(String, String)>, AdvisorError> {
    let quoted = name
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".");
    let row = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')
               AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&quoted, &column],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Validates every candidate; returns the recommendations.
pub(crate) async fn missing_indexes(
    server: &Server<'_>,
    workload: &[WorkloadStatement],
    config: &AdvisorConfig,
) -> Result<Vec<NewRecommendation>, AdvisorError> {
    let hot: Vec<WorkloadStatement> = workload
        .iter()
        .filter(|s| s.calls >= config.min_calls)
        .cloned()
        .collect();
    let mut recs = Vec::new();
    let mut before: BTreeMap<String, Option<GenericPlan>> = BTreeMap::new();
    for ((schema, table, column), stmts) in candidates(server.client, &hot, server.indexes).await? {
        let mut effects = Vec::new();
        let mut heuristic = false;
        for stmt in stmts {
            let params = analyze(&stmt.query).param_count;
            if !before.contains_key(&stmt.fingerprint) {
                let p = generic_plan(server.client, &stmt.query, params, None).await?;
                before.insert(stmt.fingerprint.clone(), p);
            }
            let Some(plan) = before.get(&stmt.fingerprint).and_then(Option::as_ref) else {
                continue;
            };
            heuristic |= !server.hypopg && plan.seq_scans(&schema, &table);
            let cost = plan.total_cost;
            let after = if server.hypopg {
                generic_plan(
                    server.client,
                    &stmt.query,
                    params,
                    Some((&schema, &table, &column)),
                )
                .await?
                .map(|p| p.total_cost)
            } else {
                None
            };
            effects.push(Effect {
                stmt,
                before: cost,
                after,
            });
        }
        let col = (schema.as_str(), table.as_str(), column.as_str());
        let rec = if server.hypopg {
            validated(server, col, &effects, config)
        } else if heuristic {
            heuristic_rec(server, col, &effects, config).await?
        } else {
            None
        };
        recs.extend(rec);
    }
    Ok(recs)
}

/// The rationale's write-overhead sentence (empty unless the table is
/// write-heavy) and the table's figures for `details`.
fn write_overhead(
    tables: &[TableActivity],
    schema: &str,
    table: &str,
    config: &AdvisorConfig,
) -> (String, serde_json::Value) {
    let Some(t) = tables
        .iter()
        .find(|t| t.schema == schema && t.table == table)
    else {
        return (String::new(), json!(null));
    };
    let figures = json!({
        "rows_written": t.rows_written, "rows_read": t.rows_read,
        "write_ratio": if t.write_ratio().is_finite() { json!(t.write_ratio()) } else { json!(null) },
        "live_rows": t.n_live_tup,
    });
    if t.write_ratio() >= config.write_heavy_ratio {
        let text = format!(
            " Write overhead: {schema}.{table} is write-heavy ({} rows written vs {} read \
             since the reset); every insert, and every update of the column, also \
             maintains this index.",
            t.rows_written, t.rows_read
        );
        (text, figures)
    } else {
        (String::new(), figures)
    }
}

fn base_rec(
    (schema, table, column): (&str, &str, &str),
    effects: &[&Effect<'_>],
    database: &str,
) -> NewRecommendation {
    let name = index_name(table, column);
    NewRecommendation {
        kind: "missing_index".into(),
        dedupe_key: format!("missing_index:{database}:{schema}.{table}({column})"),
        database: database.to_string(),
        title: format!("Create an index on {schema}.{table} ({column})"),
        rationale: String::new(),
        statement: Some(format!(
            "CREATE INDEX CONCURRENTLY {} ON {} ({})",
            quote_ident(&name),
            qualified(schema, table),
            quote_ident(column)
        )),
        confidence: 0.0,
        expected_benefit: json!(null),
        details: json!({
            "schema": schema, "table": table, "column": column, "index": name,
            "fingerprints": effects.iter().map(|e| e.stmt.fingerprint.clone()).collect::<Vec<_>>(),
        }),
    }
}

fn validated(
    server: &Server<'_>,
    col: (&str, &str, &str),
    effects: &[Effect<'_>],
    config: &AdvisorConfig,
) -> Option<NewRecommendation> {
    let helped: Vec<&Effect<'_>> = effects
        .iter()
        .filter(|e| {
            e.after.is_some_and(|a| {
                e.before > 0.0 && (e.before - a) / e.before >= config.min_cost_reduction
            })
        })
        .collect();
    let database = helped.first()?.stmt.database.clone();
    let mut rec = base_rec(col, &helped, &database);
    let mut saved_ms = 0.0;
    let mut lines = Vec::new();
    let mut per = Vec::new();
    for e in &helped {
        let after = e.after.unwrap_or(e.before);
        let ratio = after / e.before;
        let saved = e.stmt.calls as f64 * e.stmt.mean_ms * (1.0 - ratio);
        saved_ms += saved;
        lines.push(format!(
            "{} ({} calls, mean {:.2} ms, p95 {:.2} ms): plan cost {:.0} -> {:.0} (-{:.0}%)",
            e.stmt.fingerprint,
            e.stmt.calls,
            e.stmt.mean_ms,
            e.stmt.p95_ms,
            e.before,
            after,
            (1.0 - ratio) * 100.0
        ));
        per.push(json!({
            "fingerprint": e.stmt.fingerprint, "query": e.stmt.query, "calls": e.stmt.calls,
            "mean_ms": e.stmt.mean_ms, "p95_ms": e.stmt.p95_ms, "cost_before": e.before,
            "cost_after": after, "estimated_mean_after_ms": e.stmt.mean_ms * ratio,
        }));
    }
    let (overhead, table_figures) = write_overhead(server.tables, col.0, col.1, config);
    rec.rationale = format!(
        "HypoPG: a hypothetical index on {}.{} ({}) lowers the planned cost of {} \
         statement(s) by at least {:.0}%: {}. Estimated time saved: {:.0} ms over the \
         observed calls.{overhead}",
        col.0,
        col.1,
        col.2,
        helped.len(),
        config.min_cost_reduction * 100.0,
        lines.join("; "),
        saved_ms
    );
    rec.confidence = 0.85;
    rec.expected_benefit = json!({ "time_saved_ms": saved_ms, "method": "hypopg" });
    if let Some(d) = rec.details.as_object_mut() {
        d.insert("statements".into(), json!(per));
        d.insert("table_activity".into(), table_figures);
    }
    Some(rec)
}

async fn heuristic_rec(
    server: &Server<'_>,
    col: (&str, &str, &str),
    effects: &[Effect<'_>],
    config: &AdvisorConfig,
) -> Result<Option<NewRecommendation>, AdvisorError> {
    let (schema, table, column) = col;
    let row = server
        .client
        .query_opt(
            "SELECT c.reltuples::float8,
                    (SELECT CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * c.reltuples
                                 ELSE s.n_distinct END::float8
                     FROM pg_stats s WHERE s.schemaname = $1 AND s.tablename = $2
                       AND s.attname = $3)
             FROM pg_class c WHERE c.oid = to_regclass($4)",
            &[&schema, &table, &column, &qualified(schema, table)],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let rows: f64 = row.try_get(0)?;
    let distinct: Option<f64> = row.try_get(1)?;
    let selective = distinct.is_some_and(|d| d >= 100.0);
    let Some(first) = effects.first() else {
        return Ok(None);
    };
    if rows < config.large_table_rows as f64 || !selective {
        return Ok(None);
    }
    let all: Vec<&Effect<'_>> = effects.iter().collect();
    let mut rec = base_rec(col, &all, &first.stmt.database);
    let (overhead, table_figures) = write_overhead(server.tables, schema, table, config);
    let calls: u64 = effects.iter().map(|e| e.stmt.calls).sum();
    rec.rationale = format!(
        "Heuristic, confidence 0.4 (HypoPG is not available, so the gain is not \
         estimated): the plan of \
         {} statement(s) ({calls} calls) scans {schema}.{table} ({rows:.0} rows) \
         sequentially while filtering on {column}, which has about {:.0} distinct values \
         (a value matches about {:.2}% of the rows).{overhead}",
        effects.len(),
        distinct.unwrap_or(0.0),
        100.0 / distinct.unwrap_or(1.0).max(1.0),
    );
    rec.confidence = 0.4;
    rec.expected_benefit = json!({ "time_saved_ms": null, "method": "heuristic" });
    if let Some(d) = rec.details.as_object_mut() {
        d.insert("table_activity".into(), table_figures);
        d.insert("table_rows".into(), json!(rows));
    }
    Ok(Some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_heavy_tables_state_the_overhead() {
        let t = |read, written| TableActivity {
            schema: "public".into(),
            table: "events".into(),
            n_live_tup: 1_000,
            n_dead_tup: 0,
            rows_read: read,
            rows_written: written,
            seq_scan: 0,
            last_vacuum: None,
        };
        let c = AdvisorConfig::default();
        let (text, figures) = write_overhead(&[t(100, 5_000)], "public", "events", &c);
        assert!(
            text.contains("write-heavy (5000 rows written vs 100 read"),
            "{text}"
        );
        assert_eq!(figures["write_ratio"], json!(50.0));
        let (text, figures) = write_overhead(&[t(0, 10)], "public", "events", &c);
        assert!(!text.is_empty());
        assert_eq!(figures["write_ratio"], json!(null));
        let (text, _) = write_overhead(&[t(5_000, 100)], "public", "events", &c);
        assert!(text.is_empty());
        let (text, figures) = write_overhead(&[t(1, 1)], "public", "other", &c);
        assert!(text.is_empty() && figures.is_null());
    }
}
