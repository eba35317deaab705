//! Sequential scans in captured plans: walks an `EXPLAIN (FORMAT JSON)`
//! document (as stored in `performance_logs.plan`, constants scrubbed) and
//! lists every `Seq Scan` node with its table and how many rows it reads.

use serde_json::Value;

/// One sequential scan of a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeqScan {
    /// Schema, when the plan says (`VERBOSE` or a qualified name).
    pub schema: Option<String>,
    /// Table.
    pub table: String,
    /// Rows the scan reads: with ANALYZE, rows returned plus rows removed
    /// by the filter, times the loops; otherwise the planner's estimate of the
    /// rows it returns (a lower bound of what it reads).
    pub rows: f64,
    /// Whether `rows` was measured (ANALYZE) rather than estimated.
    pub measured: bool,
    /// The scan's filter, if any (constants scrubbed).
    pub filter: Option<String>,
}

/// Every `Seq Scan` in `plan` (the top-level array or one plan object).
pub(crate) fn seq_scans(plan: &Value) -> Vec<SeqScan> {
    let mut out = Vec::new();
    walk(plan, &mut out, 0);
    out
}

fn walk(v: &Value, out: &mut Vec<SeqScan>, depth: usize) {
    // Plans are trees of modest depth; the bound guards against a
    // pathological document.
    if depth > 200 {
        return;
    }
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk(i, out, depth + 1)),
        Value::Object(map) => {
            if let Some(plan) = map.get("Plan") {
                walk(plan, out, depth + 1);
            }
            if map.get("Node Type").and_then(Value::as_str) == Some("Seq Scan")
                && let Some(table) = map.get("Relation Name").and_then(Value::as_str)
            {
                let num = |k: &str| map.get(k).and_then(Value::as_f64);
                let (rows, measured) = match num("Actual Rows") {
                    // Per-loop figures (a parallel scan's are averaged over
                    // its processes): times the loops for the rows read.
                    Some(actual) => (
                        (actual + num("Rows Removed by Filter").unwrap_or(0.0))
                            * num("Actual Loops").unwrap_or(1.0).max(1.0),
                        true,
                    ),
                    None => (num("Plan Rows").unwrap_or(0.0), false),
                };
                out.push(SeqScan {
                    schema: map
                        .get("Schema")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    table: table.to_string(),
                    rows,
                    measured,
                    filter: map
                        .get("Filter")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
            if let Some(Value::Array(children)) = map.get("Plans") {
                children.iter().for_each(|c| walk(c, out, depth + 1));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_seq_scans_with_measured_or_estimated_rows() {
        let plan = json!([{ "Plan": {
            "Node Type": "Hash Join", "Plan Rows": 10,
            "Plans": [
                { "Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public",
                  "Plan Rows": 5, "Actual Rows": 4, "Rows Removed by Filter": 49996,
                  "Filter": "(status = $?)" },
                { "Node Type": "Hash", "Plans": [
                    { "Node Type": "Seq Scan", "Relation Name": "users", "Plan Rows": 300 }
                ]},
                { "Node Type": "Index Scan", "Relation Name": "items", "Plan Rows": 1 }
            ]
        }}]);
        let scans = seq_scans(&plan);
        assert_eq!(scans.len(), 2);
        assert_eq!(
            (scans[0].table.as_str(), scans[0].rows, scans[0].measured),
            ("orders", 50_000.0, true)
        );
        assert_eq!(scans[0].schema.as_deref(), Some("public"));
        assert_eq!(scans[0].filter.as_deref(), Some("(status = $?)"));
        assert_eq!(
            (scans[1].table.as_str(), scans[1].rows, scans[1].measured),
            ("users", 300.0, false)
        );
        assert!(seq_scans(&json!("not a plan")).is_empty());
    }
}
