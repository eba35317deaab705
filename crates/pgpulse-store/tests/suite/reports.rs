//! Reports: stored whole, listed newest first without the body, paged.

use pgpulse_store::{Report, ReportSummary, Store, Timestamp};
use serde_json::json;

use super::{MISSING_ID, assert_not_found, page, sec};

const DAY: i64 = 7;

/// A report created at `created_at`.
pub fn report(created_at: Timestamp, n: i64) -> Report {
    Report {
        summary: ReportSummary {
            id: 0,
            created_at,
            window_start: sec(DAY - 1, 0),
            window_end: sec(DAY, 0),
            trigger: if n % 2 == 0 { "scheduled" } else { "manual" }.to_string(),
            title: format!("Daily report {n}"),
        },
        body: json!({"top": [{"fingerprint": "00000000000000a1", "total_ms": 1234.5}],
                     "alerts": n, "notes": "résumé ✓"}),
        html: format!("<!doctype html><h1>Report {n}</h1><p>café ✓</p>"),
    }
}

/// The area.
pub async fn run(store: &dyn Store) {
    let before = store.reports(page(1, 0)).await.expect("reports").total;
    let rows = [
        report(sec(DAY, 20), 2),
        report(sec(DAY, 10), 1),
        report(sec(DAY, 30), 3),
    ];
    let mut ids = Vec::new();
    for r in &rows {
        let id = store.insert_report(r).await.expect("insert");
        assert!(id > 0);
        ids.push(id);
    }
    let stored = |i: usize| {
        let mut r = rows[i].clone();
        r.summary.id = ids[i];
        r
    };
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(
            store.report(id).await.expect("report"),
            stored(i),
            "round trip"
        );
    }
    assert_not_found(store.report(MISSING_ID).await, "missing report");

    let list = store.reports(page(3, 0)).await.expect("list");
    assert_eq!(list.total, before + 3);
    let summaries: Vec<ReportSummary> = [2, 0, 1].iter().map(|&i| stored(i).summary).collect();
    assert_eq!(list.items, summaries, "newest first, metadata only");
    let p = store.reports(page(2, 1)).await.expect("page");
    assert_eq!(p.total, before + 3);
    assert_eq!(p.items, summaries[1..].to_vec());
}
