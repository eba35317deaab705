//! Recommendations (dedupe against open ones, dismissed stays dismissed,
//! applied sets who and when, impact) and baselines (rolling replaced,
//! named ones conflict).

use pgpulse_store::{
    Baseline, NewRecommendation, Recommendation, RecommendationFilter, RecommendationStatus, Store,
    Timestamp,
};
use serde_json::json;

use super::{MISSING_ID, assert_conflict, assert_not_found, page, sec};

const DAY: i64 = 8;

/// A recommendation to store.
pub fn new_rec(kind: &str, key: &str, n: i64) -> NewRecommendation {
    NewRecommendation {
        kind: kind.to_string(),
        dedupe_key: key.to_string(),
        database: "app".to_string(),
        title: format!("{kind} {key}"),
        rationale: format!("seen {n} times: Seq Scan on orders filtered by client_id"),
        statement: (kind == "missing_index")
            .then(|| "CREATE INDEX CONCURRENTLY ON public.orders (client_id)".to_string()),
        confidence: 0.5 + n as f64 / 8.0,
        expected_benefit: json!({"calls": 1000 * n, "ms_saved": 12.5}),
        details: json!({"fingerprints": ["00000000000000a1"], "n": n}),
    }
}

/// The area.
pub async fn run(store: &dyn Store) {
    recommendations(store).await;
    baselines(store).await;
}

async fn recommendations(store: &dyn Store) {
    let key = "missing_index:app:public.orders(client_id)";
    let r1 = new_rec("missing_index", key, 1);
    let (a, created) = store
        .upsert_recommendation(&r1, sec(DAY, 10))
        .await
        .expect("upsert");
    assert!(created && a.id > 0);
    let want = Recommendation {
        id: a.id,
        created_at: sec(DAY, 10),
        updated_at: sec(DAY, 10),
        status: RecommendationStatus::Open,
        rec: r1.clone(),
        applied_at: None,
        applied_by: None,
        impact: None,
    };
    assert_eq!(a, want);
    assert_eq!(store.recommendation(a.id).await.expect("read"), want);

    // Refreshed while open.
    let r2 = new_rec("missing_index", key, 2);
    let (b, created) = store
        .upsert_recommendation(&r2, sec(DAY, 20))
        .await
        .expect("upsert");
    assert!(!created);
    let refreshed = Recommendation {
        updated_at: sec(DAY, 20),
        rec: r2.clone(),
        ..want.clone()
    };
    assert_eq!(b, refreshed);
    assert_eq!(store.recommendation(a.id).await.expect("read"), refreshed);

    let applied = store
        .set_recommendation_status(
            a.id,
            RecommendationStatus::Applied,
            Some("alice"),
            sec(DAY, 30),
        )
        .await
        .expect("apply");
    assert_eq!(applied.status, RecommendationStatus::Applied);
    assert_eq!(
        (applied.applied_at, applied.applied_by.as_deref()),
        (Some(sec(DAY, 30)), Some("alice"))
    );
    assert_eq!(applied.updated_at, sec(DAY, 30));
    let impact = json!({"before": {"p95_ms": 80.5}, "after": {"p95_ms": 3.25}, "calls": 4200});
    let measured = store
        .set_recommendation_impact(a.id, &impact, sec(DAY, 40))
        .await
        .expect("impact");
    assert_eq!(measured.impact.as_ref(), Some(&impact));
    assert_eq!(
        (measured.status, measured.applied_by.as_deref()),
        (RecommendationStatus::Applied, Some("alice"))
    );
    assert_eq!(store.recommendation(a.id).await.expect("read"), measured);

    // Dismissed stays dismissed: the advisor proposing it again changes nothing.
    let key2 = "unused_index:app:public.orders_old_idx";
    let (d, _) = store
        .upsert_recommendation(&new_rec("unused_index", key2, 1), sec(DAY, 50))
        .await
        .expect("upsert");
    let dismissed = store
        .set_recommendation_status(
            d.id,
            RecommendationStatus::Dismissed,
            Some("bob"),
            sec(DAY, 60),
        )
        .await
        .expect("dismiss");
    assert_eq!(dismissed.status, RecommendationStatus::Dismissed);
    assert_eq!(
        (dismissed.applied_at, dismissed.applied_by.as_deref()),
        (None, None)
    );
    let (again, created) = store
        .upsert_recommendation(&new_rec("unused_index", key2, 7), sec(DAY, 70))
        .await
        .expect("upsert");
    assert!(!created);
    assert_eq!(again, dismissed);
    assert_eq!(store.recommendation(d.id).await.expect("read"), dismissed);

    let (v, _) = store
        .upsert_recommendation(
            &new_rec("vacuum", "vacuum:app:public.orders", 1),
            sec(DAY, 80),
        )
        .await
        .expect("upsert");

    assert_not_found(
        store.recommendation(MISSING_ID).await,
        "missing recommendation",
    );
    assert_not_found(
        store
            .set_recommendation_status(MISSING_ID, RecommendationStatus::Failed, None, sec(DAY, 90))
            .await,
        "status of a missing recommendation",
    );
    assert_not_found(
        store
            .set_recommendation_impact(MISSING_ID, &impact, sec(DAY, 90))
            .await,
        "impact of a missing recommendation",
    );
    rec_filters(store, [a.id, d.id, v.id]).await;
}

async fn rec_filters(store: &dyn Store, [applied, dismissed, vacuum]: [i64; 3]) {
    let all = |f: RecommendationFilter| async move {
        let got = store.recommendations(&f).await.expect("recommendations");
        (
            got.total,
            got.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        )
    };
    let base = RecommendationFilter {
        page: page(100, 0),
        ..RecommendationFilter::default()
    };
    let (total, ids) = all(base.clone()).await;
    assert!(total >= 3);
    let mine: Vec<i64> = ids
        .into_iter()
        .filter(|id| [applied, dismissed, vacuum].contains(id))
        .collect();
    assert_eq!(mine, [vacuum, dismissed, applied], "newest first");
    let (_, ids) = all(RecommendationFilter {
        kind: Some("vacuum".to_string()),
        ..base.clone()
    })
    .await;
    assert!(ids.contains(&vacuum) && !ids.contains(&applied));
    let (_, ids) = all(RecommendationFilter {
        status: Some(RecommendationStatus::Dismissed),
        ..base.clone()
    })
    .await;
    assert!(ids.contains(&dismissed) && !ids.contains(&vacuum) && !ids.contains(&applied));
    let (total, ids) = all(RecommendationFilter {
        kind: Some("missing_index".to_string()),
        status: Some(RecommendationStatus::Applied),
        ..base.clone()
    })
    .await;
    assert!(ids.contains(&applied) && total == ids.len() as u64);
    let (t_all, _) = all(base.clone()).await;
    let (t_page, ids) = all(RecommendationFilter {
        page: page(1, 1),
        ..base
    })
    .await;
    assert_eq!(
        (t_page, ids.len()),
        (t_all, 1),
        "total counts every match, items one page"
    );
}

/// A baseline.
pub fn baseline(name: &str, rolling: bool, created_at: Timestamp, n: i64) -> Baseline {
    Baseline {
        id: 0,
        name: name.to_string(),
        created_at,
        window_start: sec(DAY - 7, 0),
        window_end: sec(DAY, 0),
        rolling,
        data: json!({"global": {"p95_ms": 10 + n}, "fingerprints": {"00000000000000a1": {"p95_ms": 4.5}}}),
        thresholds: json!({"p95_regression": 1.5, "n": n}),
    }
}

async fn baselines(store: &dyn Store) {
    let name = format!("rolling-{}", DAY);
    let b1 = baseline(&name, true, sec(DAY, 100), 1);
    let s1 = store.save_baseline(&b1).await.expect("save");
    assert!(s1.id > 0);
    assert_eq!(
        s1,
        Baseline {
            id: s1.id,
            ..b1.clone()
        }
    );
    assert_eq!(store.baseline(&name).await.expect("read"), Some(s1.clone()));

    // Rolling over rolling: replaced.
    let b2 = baseline(&name, true, sec(DAY, 200), 2);
    let s2 = store.save_baseline(&b2).await.expect("replace");
    assert_eq!(
        s2,
        Baseline {
            id: s2.id,
            ..b2.clone()
        }
    );
    assert_eq!(store.baseline(&name).await.expect("read"), Some(s2.clone()));

    let named = baseline("before-orders-index", false, sec(DAY, 300), 3);
    let sn = store.save_baseline(&named).await.expect("save named");
    assert_conflict(
        store
            .save_baseline(&baseline("before-orders-index", false, sec(DAY, 400), 4))
            .await,
        "named over named",
    );
    assert_conflict(
        store
            .save_baseline(&baseline("before-orders-index", true, sec(DAY, 400), 4))
            .await,
        "rolling over named",
    );
    assert_conflict(
        store
            .save_baseline(&baseline(&name, false, sec(DAY, 400), 4))
            .await,
        "named over rolling",
    );
    assert_eq!(
        store.baseline("before-orders-index").await.expect("read"),
        Some(sn.clone()),
        "unchanged"
    );
    assert_eq!(
        store.baseline(&name).await.expect("read"),
        Some(s2.clone()),
        "unchanged"
    );
    assert_eq!(
        store.baseline("no-such-baseline").await.expect("read"),
        None
    );

    let all = store.baselines().await.expect("baselines");
    let mine: Vec<Baseline> = all
        .into_iter()
        .filter(|b| b.name == name || b.name == "before-orders-index")
        .collect();
    assert_eq!(mine, vec![sn, s2], "one row per name, newest first");
}
