//! Alerts: dedupe while not resolved (occurrences, latest message, highest
//! severity), the open → acknowledged → resolved lifecycle, conflicts and
//! missing ids, filters, newest first.

use pgpulse_store::{Alert, AlertFilter, AlertStatus, NewAlert, Severity, Store};
use serde_json::json;

use super::{MISSING_ID, assert_conflict, assert_not_found, day_window, page, sec};

const DAY: i64 = 4;

/// An alert to raise.
pub fn new_alert(rule: &str, key: &str, severity: Severity, n: i64) -> NewAlert {
    NewAlert {
        rule: rule.to_string(),
        severity,
        dedupe_key: key.to_string(),
        title: format!("{rule} on {key}"),
        message: format!("occurrence {n}: p95 went from 12 ms to 80 ms"),
        fingerprint: (rule == "slow_query").then(|| "00000000000000d5".to_string()),
        details: json!({"occurrence": n, "p95_ms": 80.5, "baseline": {"p95_ms": 12}}),
    }
}

/// The area.
pub async fn run(store: &dyn Store) {
    let first = lifecycle(store).await;
    filters(store, first).await;
}

/// Returns the resolved alert.
async fn lifecycle(store: &dyn Store) -> Alert {
    let key = "slow_query:00000000000000d5";
    let n1 = new_alert("slow_query", key, Severity::Warning, 1);
    let (a, created) = store.raise_alert(&n1, sec(DAY, 10)).await.expect("raise");
    assert!(created);
    assert!(a.id > 0);
    let want = Alert {
        id: a.id,
        created_at: sec(DAY, 10),
        last_seen_at: sec(DAY, 10),
        occurrences: 1,
        rule: n1.rule.clone(),
        severity: Severity::Warning,
        dedupe_key: key.to_string(),
        status: AlertStatus::Open,
        title: n1.title.clone(),
        message: n1.message.clone(),
        fingerprint: n1.fingerprint.clone(),
        details: n1.details.clone(),
        acknowledged_by: None,
        acknowledged_at: None,
        ack_comment: None,
        resolved_at: None,
    };
    assert_eq!(a, want);
    assert_eq!(store.alert(a.id).await.expect("alert"), want);

    // Raised again: the same alert, counted, latest message, higher severity.
    let n2 = new_alert("slow_query", key, Severity::Critical, 2);
    let (b, created) = store.raise_alert(&n2, sec(DAY, 20)).await.expect("raise");
    assert!(!created);
    assert_eq!(b.id, a.id);
    assert_eq!((b.occurrences, b.severity), (2, Severity::Critical));
    assert_eq!((b.created_at, b.last_seen_at), (sec(DAY, 10), sec(DAY, 20)));
    assert_eq!((&b.message, &b.details), (&n2.message, &n2.details));
    // A lower severity does not lower it.
    let (c, _) = store
        .raise_alert(
            &new_alert("slow_query", key, Severity::Info, 3),
            sec(DAY, 30),
        )
        .await
        .expect("raise");
    assert_eq!(
        (c.id, c.occurrences, c.severity),
        (a.id, 3, Severity::Critical)
    );
    assert_eq!(store.alert(a.id).await.expect("alert"), c);

    let ack = store
        .acknowledge_alert(a.id, "alice", Some("looking into it"), sec(DAY, 40))
        .await
        .expect("ack");
    assert_eq!(ack.status, AlertStatus::Acknowledged);
    assert_eq!(ack.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(ack.acknowledged_at, Some(sec(DAY, 40)));
    assert_eq!(ack.ack_comment.as_deref(), Some("looking into it"));
    // Acknowledged again: the newer name wins.
    let ack = store
        .acknowledge_alert(a.id, "bob", None, sec(DAY, 50))
        .await
        .expect("re-ack");
    assert_eq!(ack.acknowledged_by.as_deref(), Some("bob"));
    assert_eq!(ack.acknowledged_at, Some(sec(DAY, 50)));
    assert_eq!(ack.status, AlertStatus::Acknowledged);
    // Still deduplicated while acknowledged, and stays acknowledged.
    let (d, created) = store
        .raise_alert(
            &new_alert("slow_query", key, Severity::Warning, 4),
            sec(DAY, 60),
        )
        .await
        .expect("raise");
    assert!(!created);
    assert_eq!(
        (d.id, d.occurrences, d.status),
        (a.id, 4, AlertStatus::Acknowledged)
    );
    assert_eq!(d.acknowledged_by.as_deref(), Some("bob"));

    assert_eq!(
        store
            .resolve_alerts(key, sec(DAY, 70))
            .await
            .expect("resolve"),
        1
    );
    let r = store.alert(a.id).await.expect("alert");
    assert_eq!(
        (r.status, r.resolved_at),
        (AlertStatus::Resolved, Some(sec(DAY, 70)))
    );
    assert_eq!(r.acknowledged_by.as_deref(), Some("bob"));
    assert_eq!(
        store
            .resolve_alerts(key, sec(DAY, 71))
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        store.alert(a.id).await.expect("alert").resolved_at,
        Some(sec(DAY, 70))
    );

    assert_conflict(
        store
            .acknowledge_alert(a.id, "carol", None, sec(DAY, 80))
            .await,
        "acknowledging a resolved alert",
    );
    assert_not_found(
        store
            .acknowledge_alert(MISSING_ID, "carol", None, sec(DAY, 80))
            .await,
        "acknowledging a missing alert",
    );
    assert_not_found(store.alert(MISSING_ID).await, "missing alert");
    assert_eq!(
        store
            .resolve_alerts("no-such-key", sec(DAY, 80))
            .await
            .expect("none"),
        0
    );
    r
}

async fn filters(store: &dyn Store, resolved: Alert) {
    // After resolution the same key raises a new alert.
    let (again, created) = store
        .raise_alert(
            &new_alert("slow_query", &resolved.dedupe_key, Severity::Warning, 5),
            sec(DAY, 100),
        )
        .await
        .expect("raise");
    assert!(created);
    assert_ne!(again.id, resolved.id);
    assert_eq!((again.occurrences, again.status), (1, AlertStatus::Open));

    let (pool, _) = store
        .raise_alert(
            &new_alert("pool_saturation", "pool:app", Severity::Info, 1),
            sec(DAY, 110),
        )
        .await
        .expect("raise");
    let (crit, _) = store
        .raise_alert(
            &new_alert("slow_query", "slow_query:e6", Severity::Critical, 1),
            sec(DAY, 120),
        )
        .await
        .expect("raise");
    assert_eq!(pool.fingerprint, None);

    let f = AlertFilter {
        window: day_window(DAY),
        page: page(100, 0),
        ..AlertFilter::default()
    };
    let ids = |v: &[Alert]| v.iter().map(|a| a.id).collect::<Vec<_>>();
    let all = store.alerts(&f).await.expect("alerts");
    assert_eq!(all.total, 4);
    assert_eq!(
        ids(&all.items),
        [crit.id, pool.id, again.id, resolved.id],
        "newest first"
    );
    assert_eq!(all.items[3], resolved, "round trip");

    let cases: Vec<(&str, AlertFilter, Vec<i64>)> = vec![
        (
            "open",
            AlertFilter {
                status: Some(AlertStatus::Open),
                ..f.clone()
            },
            vec![crit.id, pool.id, again.id],
        ),
        (
            "resolved",
            AlertFilter {
                status: Some(AlertStatus::Resolved),
                ..f.clone()
            },
            vec![resolved.id],
        ),
        (
            "acknowledged",
            AlertFilter {
                status: Some(AlertStatus::Acknowledged),
                ..f.clone()
            },
            vec![],
        ),
        (
            "at least warning",
            AlertFilter {
                min_severity: Some(Severity::Warning),
                ..f.clone()
            },
            vec![crit.id, again.id, resolved.id],
        ),
        (
            "at least critical",
            AlertFilter {
                min_severity: Some(Severity::Critical),
                ..f.clone()
            },
            vec![crit.id, resolved.id],
        ),
        (
            "at least info",
            AlertFilter {
                min_severity: Some(Severity::Info),
                ..f.clone()
            },
            vec![crit.id, pool.id, again.id, resolved.id],
        ),
        (
            "rule",
            AlertFilter {
                rule: Some("pool_saturation".to_string()),
                ..f.clone()
            },
            vec![pool.id],
        ),
        (
            "window on created_at",
            AlertFilter {
                window: pgpulse_store::Window::between(sec(DAY, 10), sec(DAY, 110)),
                ..f.clone()
            },
            vec![again.id, resolved.id],
        ),
    ];
    for (what, filter, want) in cases {
        let got = store.alerts(&filter).await.expect(what);
        assert_eq!(got.total, want.len() as u64, "{what}: total");
        assert_eq!(ids(&got.items), want, "{what}");
    }
    let p = store
        .alerts(&AlertFilter {
            page: page(2, 1),
            ..f.clone()
        })
        .await
        .expect("page");
    assert_eq!(p.total, 4);
    assert_eq!(ids(&p.items), [pool.id, again.id]);

    // Acknowledge then resolve through the other path, then clean up so the
    // area leaves nothing open.
    let acked = store
        .acknowledge_alert(crit.id, "dana", Some("on it"), sec(DAY, 130))
        .await
        .expect("ack");
    assert_eq!(acked.status, AlertStatus::Acknowledged);
    let acks = store
        .alerts(&AlertFilter {
            status: Some(AlertStatus::Acknowledged),
            ..f.clone()
        })
        .await
        .expect("acked");
    assert_eq!(ids(&acks.items), [crit.id]);
    assert_eq!(
        store
            .resolve_alerts("slow_query:e6", sec(DAY, 140))
            .await
            .expect("resolve"),
        1
    );
    assert_eq!(
        store.alert(pool.id).await.expect("pool").status,
        AlertStatus::Open
    );
}
