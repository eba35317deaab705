//! Oracle test: pgpulse fingerprints against PostgreSQL's own
//! `pg_stat_statements` query ids, over `tests/corpus.sql`.
//!
//! Every corpus entry runs in order in one psql session (so `BEGIN` ...
//! `COMMIT` sequences work); after each one a snapshot of
//! `pg_stat_statements` shows which query id it was counted under. Two
//! entries agree when "same query id" and "same pgpulse fingerprint" group
//! them the same way. Intentional differences are listed, not failed:
//! - pgpulse collapses constant lists (`IN (1, 2)` = `IN (3)`, multi-row
//!   `VALUES`, `ARRAY[...]`), PostgreSQL 15 does not;
//! - PostgreSQL 15 hashes utility statements by their raw text (so `SET x
//!   = 1` and `SET x = 2` differ), pgpulse normalizes their constants too;
//! - PostgreSQL jumbles the parse tree: column aliases do not count (pgpulse
//!   keeps them: they change the reply a cache would replay), `a <> b` =
//!   `a != b`, and constants of different types (`200` vs `300.00`) differ
//!   (pgpulse writes both as `$n`).
//!
//! The test fails if the corpus does not run cleanly on PostgreSQL 15, or if
//! the agreement falls under 80%.

use std::collections::{BTreeMap, HashMap};

use pgpulse_sql::{Fingerprint, StatementKind, analyze};
use pgpulse_testkit::PgCluster;

const SNAPSHOT: &str = "SELECT /* pgpulse_oracle_snapshot */ coalesce(string_agg(queryid::text || ':' || calls, ',' ORDER BY queryid), '') \
     FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND query NOT LIKE '%pgpulse_oracle_snapshot%'";

fn corpus() -> Vec<String> {
    include_str!("corpus.sql")
        .split("\n-- @@\n")
        .map(str::trim)
        .filter(|e| !pgpulse_sql::normalize(e).text.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_snapshot(line: &str) -> HashMap<i64, i64> {
    line.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((k.trim().parse().ok()?, v.trim().parse().ok()?))
        })
        .collect()
}

/// Runs the corpus; returns, per entry, the query id whose call count grew
/// by one (None when zero or several grew: nested or untracked statements).
fn run_corpus(pg: &PgCluster, db: &str, entries: &[String]) -> Vec<Option<i64>> {
    let mut cmd = pg.command("psql").expect("psql");
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        db,
        "-c",
        SNAPSHOT,
    ]);
    for e in entries {
        cmd.args(["-c", "\\o /dev/null", "-c", e, "-c", "\\o", "-c", SNAPSHOT]);
    }
    let out = cmd.output().expect("run psql");
    assert!(
        out.status.success(),
        "corpus failed on PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let snaps: Vec<HashMap<i64, i64>> = stdout.lines().map(parse_snapshot).collect();
    assert_eq!(
        snaps.len(),
        entries.len() + 1,
        "one snapshot per entry plus the first"
    );
    snaps
        .windows(2)
        .map(|w| {
            let grown: Vec<i64> = w[1]
                .iter()
                .filter(|(q, c)| **c > w[0].get(q).copied().unwrap_or(0))
                .map(|(q, _)| *q)
                .collect();
            (grown.len() == 1).then(|| grown[0])
        })
        .collect()
}

#[test]
fn fingerprints_agree_with_pg_stat_statements() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("sql_oracle").expect("database");
    pg.psql(&db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .expect("extension");
    pg.psql(&db, include_str!("corpus_schema.sql"))
        .expect("schema");
    pg.psql(&db, "SELECT pg_stat_statements_reset()")
        .expect("reset");

    let entries = corpus();
    assert!(entries.len() >= 200, "corpus has {} entries", entries.len());
    let qids = run_corpus(pg, &db, &entries);

    let rows: Vec<(usize, i64, Fingerprint, bool)> = entries
        .iter()
        .zip(&qids)
        .enumerate()
        .filter_map(|(i, (e, q))| {
            let a = analyze(e);
            let utility = !matches!(
                a.kind,
                StatementKind::Select
                    | StatementKind::Insert
                    | StatementKind::Update
                    | StatementKind::Delete
                    | StatementKind::Merge
            );
            q.map(|q| (i, q, a.fingerprint, utility))
        })
        .collect();
    let mut by_qid: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    let mut by_fp: BTreeMap<Fingerprint, Vec<usize>> = BTreeMap::new();
    for (i, q, fp, _) in &rows {
        by_qid.entry(*q).or_default().push(*i);
        by_fp.entry(*fp).or_default().push(*i);
    }
    let mut agree = 0;
    let mut report = Vec::new();
    for (i, q, fp, utility) in &rows {
        let (same_q, same_fp) = (&by_qid[q], &by_fp[fp]);
        if same_q == same_fp {
            agree += 1;
            continue;
        }
        let why = if same_fp.len() > same_q.len() && !utility {
            "pgpulse merges (constant lists collapsed, or int vs numeric constants)"
        } else if *utility {
            "utility statement (PG15 hashes its raw text)"
        } else {
            "PostgreSQL merges (parse tree: column aliases are not jumbled, `<>` = `!=`)"
        };
        report.push(format!("  [{why}] {}", entries[*i].replace('\n', " ")));
    }
    let pct = 100.0 * f64::from(agree) / rows.len().max(1) as f64;
    println!(
        "pg_stat_statements oracle: {agree}/{} entries agree ({pct:.1}%), {} entries not attributable",
        rows.len(),
        entries.len() - rows.len()
    );
    for line in &report {
        println!("{line}");
    }
    assert!(
        rows.len() * 10 >= entries.len() * 8,
        "too few entries attributed to a query id"
    );
    assert!(pct >= 80.0, "agreement {pct:.1}% is under 80%");
}
