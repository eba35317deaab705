//! Findings on existing indexes, from one collection of `IndexUsage` rows
//! (the live catalog or the store's latest `index_usage_stats`): unused,
//! duplicate, redundant and invalid indexes, each a `DROP INDEX
//! CONCURRENTLY` recommendation. Pure: no I/O.
//!
//! - unused: `idx_scan = 0` since a statistics reset at least
//!   `unused_min_stats_age` old, not unique, not a primary key. A reset
//!   that is too recent yields a note instead; a database whose statistics
//!   were never reset is judged with a lower confidence (the counting
//!   period is unknown).
//! - duplicate: same table, same method, key columns, `INCLUDE` list,
//!   predicate and expressions (the definition without the index's name);
//!   the one kept is a primary key, else a unique one, else the most
//!   scanned, else the first by name.
//! - redundant: a non-unique btree index whose key columns are a strict
//!   prefix of another btree index's on the same table (neither partial).
//! - invalid: `indisvalid = false` (a failed concurrent build).

use std::collections::BTreeMap;

use pgpulse_store::{IndexUsage, NewRecommendation, Timestamp};
use serde_json::json;

use super::AdvisorConfig;
use super::ident::qualified;

/// What [`index_findings`] found, and what it could not judge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexFindings {
    /// The recommendations.
    pub recommendations: Vec<NewRecommendation>,
    /// Why something was not judged (a statistics reset too recent).
    pub notes: Vec<String>,
}

/// Judges one collection of index rows (any number of databases).
pub fn index_findings(
    indexes: &[IndexUsage],
    config: &AdvisorConfig,
    now: Timestamp,
) -> IndexFindings {
    let mut out = IndexFindings::default();
    unused(indexes, config, now, &mut out);
    let dropped = duplicates(indexes, &mut out.recommendations);
    redundant(indexes, &dropped, &mut out.recommendations);
    for ix in indexes.iter().filter(|i| !i.is_valid) {
        out.recommendations.push(drop_rec(
            "invalid_index",
            ix,
            format!("Drop invalid index {}", ix.index_name),
            format!(
                "{} is marked invalid (indisvalid = false), typically left by a failed \
                 CREATE INDEX CONCURRENTLY: the planner never uses it but every write to \
                 {}.{} still maintains it ({} bytes).",
                ix.index_name, ix.schema_name, ix.table_name, ix.size_bytes
            ),
            0.95,
            json!({}),
        ));
    }
    out
}

/// "3 days" or, under a day, "5 hours".
fn age(d: chrono::Duration) -> String {
    if d.num_days() >= 1 {
        format!("{} days", d.num_days())
    } else {
        format!("{} hours", d.num_hours())
    }
}

fn size_mb(bytes: i64) -> f64 {
    (bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0
}

fn drop_rec(
    kind: &str,
    ix: &IndexUsage,
    title: String,
    rationale: String,
    confidence: f64,
    extra: serde_json::Value,
) -> NewRecommendation {
    let mut details = json!({
        "schema": ix.schema_name, "table": ix.table_name, "index": ix.index_name,
        "columns": ix.columns, "definition": ix.definition, "idx_scan": ix.idx_scan,
        "size_bytes": ix.size_bytes, "fingerprints": [],
    });
    if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    NewRecommendation {
        kind: kind.into(),
        dedupe_key: format!(
            "{kind}:{}:{}.{}",
            ix.database, ix.schema_name, ix.index_name
        ),
        database: ix.database.clone(),
        title,
        rationale,
        statement: Some(format!(
            "DROP INDEX CONCURRENTLY {}",
            qualified(&ix.schema_name, &ix.index_name)
        )),
        confidence,
        expected_benefit: json!({
            "space_freed_bytes": ix.size_bytes,
            "write_overhead_removed": true,
        }),
        details,
    }
}

fn unused(indexes: &[IndexUsage], config: &AdvisorConfig, now: Timestamp, out: &mut IndexFindings) {
    let min_age =
        chrono::Duration::from_std(config.unused_min_stats_age).unwrap_or(chrono::Duration::MAX);
    let mut too_recent = BTreeMap::new();
    for ix in indexes {
        if ix.idx_scan != 0 || ix.is_unique || ix.is_primary || !ix.is_valid {
            continue;
        }
        let (since, confidence) = match ix.stats_reset {
            Some(reset) if now - reset < min_age => {
                too_recent.insert(ix.database.clone(), reset);
                continue;
            }
            Some(reset) => (
                format!("since the statistics reset {} ago", age(now - reset)),
                0.8,
            ),
            None => (
                "since statistics began (never reset, so the period is unknown)".into(),
                0.5,
            ),
        };
        out.recommendations.push(drop_rec(
            "unused_index",
            ix,
            format!("Drop unused index {}", ix.index_name),
            format!(
                "{} on {}.{} ({}) has not been scanned {since}; it takes {} MB and slows \
                 every insert and update of the table ({} MB).",
                ix.index_name,
                ix.schema_name,
                ix.table_name,
                ix.columns.join(", "),
                size_mb(ix.size_bytes),
                size_mb(ix.table_size_bytes),
            ),
            confidence,
            json!({ "stats_reset": ix.stats_reset }),
        ));
    }
    for (db, reset) in too_recent {
        out.notes.push(format!(
            "{db}: statistics were reset {} ago, less than the {} days needed to \
             call an index unused; unused indexes not judged",
            age(now - reset),
            config.unused_min_stats_age.as_secs() / 86_400
        ));
    }
}

/// The definition without `CREATE [UNIQUE] INDEX name`: what makes two
/// indexes equal (table, method, keys, INCLUDE, predicate).
fn shape(ix: &IndexUsage) -> Option<&str> {
    ix.definition.find(" ON ").map(|p| &ix.definition[p..])
}

/// Reports duplicates; returns the (database, schema, index) recommended
/// for dropping.
fn duplicates(
    indexes: &[IndexUsage],
    recs: &mut Vec<NewRecommendation>,
) -> Vec<(String, String, String)> {
    let mut groups: BTreeMap<(&str, &str), Vec<&IndexUsage>> = BTreeMap::new();
    for ix in indexes.iter().filter(|i| i.is_valid) {
        if let Some(s) = shape(ix) {
            groups.entry((&ix.database, s)).or_default().push(ix);
        }
    }
    let mut dropped = Vec::new();
    for group in groups.into_values().filter(|g| g.len() > 1) {
        let mut g = group;
        g.sort_by(|a, b| {
            (b.is_primary, b.is_unique, b.idx_scan)
                .cmp(&(a.is_primary, a.is_unique, a.idx_scan))
                .then_with(|| a.index_name.cmp(&b.index_name))
        });
        let keep = g[0];
        for ix in g.iter().skip(1).filter(|i| !i.is_primary) {
            recs.push(drop_rec(
                "duplicate_index",
                ix,
                format!("Drop duplicate index {}", ix.index_name),
                format!(
                    "{} duplicates {} on {}.{} (same columns ({}) in the same order, same \
                     method and predicate); {} scans vs {}; dropping it frees {} MB.{}",
                    ix.index_name,
                    keep.index_name,
                    ix.schema_name,
                    ix.table_name,
                    ix.columns.join(", "),
                    ix.idx_scan,
                    keep.idx_scan,
                    size_mb(ix.size_bytes),
                    if ix.is_unique {
                        " It is unique: if a constraint uses it, drop the constraint instead."
                    } else {
                        ""
                    }
                ),
                if ix.is_unique { 0.6 } else { 0.9 },
                json!({ "kept_index": keep.index_name }),
            ));
            dropped.push((
                ix.database.clone(),
                ix.schema_name.clone(),
                ix.index_name.clone(),
            ));
        }
    }
    dropped
}

fn is_plain_btree(ix: &IndexUsage) -> bool {
    ix.is_valid && ix.definition.contains(" USING btree ") && !ix.definition.contains(" WHERE ")
}

fn redundant(
    indexes: &[IndexUsage],
    dropped: &[(String, String, String)],
    recs: &mut Vec<NewRecommendation>,
) {
    for a in indexes.iter().filter(|i| is_plain_btree(i) && !i.is_unique) {
        let already = dropped
            .iter()
            .any(|(d, s, n)| *d == a.database && *s == a.schema_name && *n == a.index_name);
        if already {
            continue;
        }
        let wider = indexes.iter().find(|b| {
            is_plain_btree(b)
                && b.database == a.database
                && b.schema_name == a.schema_name
                && b.table_name == a.table_name
                && b.columns.len() > a.columns.len()
                && b.columns.starts_with(&a.columns)
        });
        let Some(b) = wider else { continue };
        recs.push(drop_rec(
            "redundant_index",
            a,
            format!("Drop redundant index {}", a.index_name),
            format!(
                "The columns of {} ({}) are a prefix of {} ({}) on {}.{}, which serves \
                 the same lookups; {} scans on it since the reset; dropping it frees {} MB.",
                a.index_name,
                a.columns.join(", "),
                b.index_name,
                b.columns.join(", "),
                a.schema_name,
                a.table_name,
                a.idx_scan,
                size_mb(a.size_bytes),
            ),
            0.7,
            json!({ "covering_index": b.index_name }),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn ix(name: &str, cols: &[&str], def_tail: &str) -> IndexUsage {
        IndexUsage {
            id: 0,
            collected_at: Utc.timestamp_opt(1_700_000_000, 0).single().expect("ts"),
            database: "db".into(),
            schema_name: "public".into(),
            table_name: "t".into(),
            index_name: name.into(),
            idx_scan: 5,
            idx_tup_read: 0,
            idx_tup_fetch: 0,
            size_bytes: 8192,
            table_size_bytes: 81920,
            is_unique: false,
            is_primary: false,
            is_valid: true,
            columns: cols.iter().map(|c| c.to_string()).collect(),
            definition: format!("CREATE INDEX {name} ON public.t USING btree {def_tail}"),
            stats_reset: None,
        }
    }

    fn kinds(f: &IndexFindings) -> Vec<(String, String)> {
        f.recommendations
            .iter()
            .map(|r| {
                (
                    r.kind.clone(),
                    r.details["index"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn unused_waits_for_an_old_enough_reset() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("ts");
        let mut a = ix("t_a", &["a"], "(a)");
        a.idx_scan = 0;
        a.stats_reset = Some(now - chrono::Duration::days(2));
        let mut pk = ix("t_pkey", &["id"], "(id)");
        pk.idx_scan = 0;
        pk.is_primary = true;
        pk.is_unique = true;
        let rows = vec![a.clone(), pk];
        let f = index_findings(&rows, &AdvisorConfig::default(), now);
        assert!(f.recommendations.is_empty(), "{f:?}");
        assert_eq!(f.notes.len(), 1);
        assert!(f.notes[0].contains("2 days ago"), "{}", f.notes[0]);

        a.stats_reset = Some(now - chrono::Duration::days(8));
        let f = index_findings(&[a], &AdvisorConfig::default(), now);
        assert_eq!(kinds(&f), [("unused_index".into(), "t_a".into())]);
        let r = &f.recommendations[0];
        assert_eq!(
            r.statement.as_deref(),
            Some("DROP INDEX CONCURRENTLY \"public\".\"t_a\"")
        );
        assert!(r.rationale.contains("8 days ago"), "{}", r.rationale);
        assert_eq!(r.dedupe_key, "unused_index:db:public.t_a");
    }

    #[test]
    fn duplicates_redundant_and_invalid() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).single().expect("ts");
        let mut uq = ix("t_b_uq", &["b"], "(b)");
        uq.is_unique = true;
        uq.definition = "CREATE UNIQUE INDEX t_b_uq ON public.t USING btree (b)".into();
        let mut bad = ix("t_c_bad", &["c"], "(c)");
        bad.is_valid = false;
        let rows = vec![
            ix("t_b", &["b"], "(b)"),
            uq,
            ix("t_x", &["x"], "(x)"),
            ix("t_x_y", &["x", "y"], "(x, y)"),
            ix("t_x_part", &["x"], "(x) WHERE (x > 0)"),
            bad,
        ];
        let f = index_findings(&rows, &AdvisorConfig::default(), now);
        let mut k = kinds(&f);
        k.sort();
        assert_eq!(
            k,
            [
                ("duplicate_index".into(), "t_b".into()),
                ("invalid_index".into(), "t_c_bad".into()),
                ("redundant_index".into(), "t_x".into()),
            ]
        );
        let dup = &f
            .recommendations
            .iter()
            .find(|r| r.kind == "duplicate_index");
        assert_eq!(
            dup.map(|r| &r.details["kept_index"]),
            Some(&json!("t_b_uq"))
        );
    }
}
