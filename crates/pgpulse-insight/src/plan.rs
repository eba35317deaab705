//! EXPLAIN JSON post-processing: scrubbing literal values out of a plan's
//! expressions, and the one-line summary shown by `SHOW SLOW_QUERIES`.
//!
//! Plans quote constants in their expressions (`"Filter": "(email =
//! 'a@b.c'::text)"`, `"Index Cond": "(id = 42)"`). Every JSON string in the
//! plan is lexed as SQL and its string and numeric constants are replaced by
//! `$?`; structural strings (node types, relation and index names) contain no
//! constants and come out unchanged. JSON numbers (costs, row counts,
//! timings) are measurements, not literals, and stay.

use pgpulse_sql::lexer::tokenize;
use serde_json::Value;

/// Replaces the constants of every string in `plan` by `$?`.
pub fn scrub(plan: &mut Value) {
    match plan {
        Value::String(s) => {
            if let Some(clean) = scrub_text(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` with its constants replaced, or `None` if it has none.
fn scrub_text(text: &str) -> Option<String> {
    let tokens = tokenize(text);
    if !tokens.iter().any(|t| t.is_constant()) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for t in tokens.iter().filter(|t| t.is_constant()) {
        out.push_str(text.get(pos..t.start)?);
        out.push_str("$?");
        pos = t.end;
    }
    out.push_str(text.get(pos..)?);
    Some(out)
}

/// A one-line summary of the top plan node: node type, relation or index,
/// estimated cost and rows, and the actual time when ANALYZE was used.
pub fn summary(plan: &Value) -> Option<String> {
    let top = plan.get(0).unwrap_or(plan);
    let node = top.get("Plan")?;
    let mut s = node.get("Node Type")?.as_str()?.to_string();
    if let Some(rel) = node.get("Relation Name").and_then(Value::as_str) {
        s.push_str(" on ");
        s.push_str(rel);
    }
    if let Some(idx) = node.get("Index Name").and_then(Value::as_str) {
        s.push_str(" using ");
        s.push_str(idx);
    }
    let num = |k: &str| node.get(k).and_then(Value::as_f64);
    if let (Some(a), Some(b), Some(rows)) =
        (num("Startup Cost"), num("Total Cost"), num("Plan Rows"))
    {
        s.push_str(&format!(" (cost={a:.2}..{b:.2} rows={rows})"));
    }
    if let Some(ms) = num("Actual Total Time") {
        s.push_str(&format!(" (actual {ms:.3} ms)"));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn constants_in_expressions_are_replaced() {
        let mut plan = json!([{"Plan": {
            "Node Type": "Index Scan",
            "Relation Name": "orders_2024",
            "Index Name": "orders_2024_pkey",
            "Index Cond": "(id = 42)",
            "Filter": "((email)::text = 'a@b.c'::text)",
            "Startup Cost": 0.29, "Total Cost": 8.3, "Plan Rows": 1,
            "Plans": [{"Node Type": "Seq Scan", "Filter": "(x > '-1.5'::numeric)"}]
        }}]);
        scrub(&mut plan);
        let p = &plan[0]["Plan"];
        assert_eq!(p["Index Cond"], "(id = $?)");
        assert_eq!(p["Filter"], "((email)::text = $?::text)");
        assert_eq!(p["Plans"][0]["Filter"], "(x > $?::numeric)");
        assert_eq!(p["Relation Name"], "orders_2024");
        assert_eq!(p["Index Name"], "orders_2024_pkey");
        assert_eq!(p["Total Cost"], 8.3);
        assert_eq!(
            summary(&plan).as_deref(),
            Some("Index Scan on orders_2024 using orders_2024_pkey (cost=0.29..8.30 rows=1)")
        );
    }

    #[test]
    fn summary_needs_a_plan() {
        assert_eq!(summary(&json!({"x": 1})), None);
        assert_eq!(
            summary(&json!([{"Plan": {"Node Type": "Result", "Actual Total Time": 1001.5}}]))
                .as_deref(),
            Some("Result (actual 1001.500 ms)")
        );
    }

    proptest! {
        #[test]
        fn scrubbed_strings_keep_no_quoted_literal(secret in "[a-z]{6,12}", n in 100_000u32..999_999) {
            let mut plan = json!({"Filter": format!("((name)::text = '{secret}'::text) AND (n = {n})")});
            scrub(&mut plan);
            let s = plan.to_string();
            prop_assert!(!s.contains(&secret));
            prop_assert!(!s.contains(&n.to_string()));
        }
    }
}
