//! Collections: database statistics, index usage (latest collection per
//! database), cache snapshots and pool snapshots; round trips, windows,
//! oldest first.

use pgpulse_store::{
    CacheSnapshot, DatabaseStatistics, IndexUsage, PoolStat, Store, Timestamp, Window,
};
use serde_json::json;

use super::{day_window, sec};

const DAY: i64 = 5;

/// One database statistics row.
pub fn db_stats(database: &str, collected_at: Timestamp, n: i64) -> DatabaseStatistics {
    DatabaseStatistics {
        id: 0,
        collected_at,
        database: database.to_string(),
        size_bytes: 8_000_000_000 + n,
        xact_commit: 1_000_000 * n,
        xact_rollback: 12 * n,
        blks_hit: 990_000 * n,
        blks_read: 10_000 * n,
        buffer_hit_ratio: 0.75,
        deadlocks: n,
        temp_bytes: 1 << 33,
        connections: json!({"active": 3, "idle": 10, "idle in transaction": n}),
        long_running_transactions: 1,
        lock_waits: 2,
        dead_tuples: 5000 + n,
        bloat_bytes: 1 << 20,
        tables: json!([{"table": "public.orders", "size_bytes": 1048576, "dead_tuples": 17,
                        "last_autovacuum": "2026-01-05T00:00:00Z"}]),
    }
}

/// One index usage row.
pub fn index_row(database: &str, collected_at: Timestamp, index: &str, scans: i64) -> IndexUsage {
    IndexUsage {
        id: 0,
        collected_at,
        database: database.to_string(),
        schema_name: "public".to_string(),
        table_name: "orders".to_string(),
        index_name: index.to_string(),
        idx_scan: scans,
        idx_tup_read: scans * 10,
        idx_tup_fetch: scans * 9,
        size_bytes: 16_384,
        table_size_bytes: 1 << 30,
        is_unique: index.ends_with("_key"),
        is_primary: index.ends_with("_pkey"),
        is_valid: !index.contains("invalid"),
        columns: vec!["client_id".to_string(), "lower(email)".to_string()],
        definition: format!(
            "CREATE INDEX {index} ON public.orders USING btree (client_id, lower(email))"
        ),
        stats_reset: (scans % 2 == 0).then(|| sec(DAY - 1, 5)),
    }
}

/// One cache snapshot.
pub fn cache_row(instance: &str, taken_at: Timestamp, n: i64) -> CacheSnapshot {
    CacheSnapshot {
        id: 0,
        taken_at,
        instance: instance.to_string(),
        hits: 900 * n,
        misses: 100 * n,
        hit_rate: 0.875,
        entries: 40 + n,
        bytes: 1_000_000,
        evictions: n,
        fills: 100 * n,
        invalidations: 3,
        refusals: 7,
        details: json!({"tables": {"orders": {"hits": 12}}, "refusals": {"volatile": 7}}),
    }
}

/// One pool snapshot.
pub fn pool_row(database: &str, taken_at: Timestamp, n: i64) -> PoolStat {
    PoolStat {
        id: 0,
        taken_at,
        instance: "pgpulse-1".to_string(),
        database: database.to_string(),
        user_name: "app_user".to_string(),
        mode: if n % 2 == 0 { "transaction" } else { "session" }.to_string(),
        pool_size: 20,
        clients_active: n,
        clients_waiting: 0,
        servers_active: n,
        servers_idle: 20 - n,
        utilization: 0.25,
        avg_wait_ms: 0.5,
        max_wait_ms: 2.25,
        transactions: 1000 * n,
        queries: 3000 * n,
    }
}

/// The area.
pub async fn run(store: &dyn Store) {
    database_statistics(store).await;
    index_usage(store).await;
    cache_and_pools(store).await;
}

async fn database_statistics(store: &dyn Store) {
    let rows = [
        db_stats("app", sec(DAY, 30), 3),
        db_stats("app", sec(DAY, 10), 1),
        db_stats("billing", sec(DAY, 20), 2),
    ];
    let mut ids = Vec::new();
    for r in &rows {
        ids.push(store.insert_database_statistics(r).await.expect("insert"));
    }
    assert!(ids.iter().all(|&id| id > 0) && ids[0] != ids[1] && ids[1] != ids[2]);
    let with_id = |i: usize| DatabaseStatistics {
        id: ids[i],
        ..rows[i].clone()
    };

    let all = store
        .database_statistics(day_window(DAY), None)
        .await
        .expect("read");
    assert_eq!(
        all,
        vec![with_id(1), with_id(2), with_id(0)],
        "oldest first, round trip"
    );
    let app = store
        .database_statistics(day_window(DAY), Some("app"))
        .await
        .expect("read");
    assert_eq!(app, vec![with_id(1), with_id(0)]);
    let narrow = store
        .database_statistics(Window::between(sec(DAY, 10), sec(DAY, 30)), None)
        .await
        .expect("read");
    assert_eq!(narrow, vec![with_id(1), with_id(2)], "[from, to)");
    let none = store
        .database_statistics(day_window(DAY), Some("nowhere"))
        .await
        .expect("read");
    assert!(none.is_empty());
}

async fn index_usage(store: &dyn Store) {
    let (db_a, db_b) = ("idx_app", "idx_billing");
    let first = vec![
        index_row(db_a, sec(DAY, 100), "orders_pkey", 10),
        index_row(db_a, sec(DAY, 100), "orders_client_idx", 0),
    ];
    let second = vec![
        index_row(db_a, sec(DAY, 200), "orders_pkey", 25),
        index_row(db_a, sec(DAY, 200), "orders_client_idx", 1),
        index_row(db_a, sec(DAY, 200), "orders_email_invalid", 0),
    ];
    let other = vec![index_row(db_b, sec(DAY, 150), "invoices_number_key", 7)];
    assert_eq!(store.insert_index_usage(&first).await.expect("insert"), 2);
    assert_eq!(store.insert_index_usage(&second).await.expect("insert"), 3);
    assert_eq!(store.insert_index_usage(&other).await.expect("insert"), 1);
    assert_eq!(store.insert_index_usage(&[]).await.expect("empty"), 0);

    let key = |r: &IndexUsage| (r.database.clone(), r.index_name.clone());
    let normalise = |mut v: Vec<IndexUsage>| {
        assert!(v.iter().all(|r| r.id > 0));
        v.iter_mut().for_each(|r| r.id = 0);
        v.sort_by_key(key);
        v
    };
    let mut want_a = second.clone();
    want_a.sort_by_key(key);
    let a = store.latest_index_usage(Some(db_a)).await.expect("latest");
    assert_eq!(
        normalise(a),
        want_a,
        "only the latest collection, every field"
    );

    let all = store.latest_index_usage(None).await.expect("latest");
    let mine: Vec<IndexUsage> = all
        .into_iter()
        .filter(|r| r.database == db_a || r.database == db_b)
        .collect();
    let mut want = second.clone();
    want.extend(other.clone());
    want.sort_by_key(key);
    assert_eq!(normalise(mine), want, "latest of each database");
    assert!(
        store
            .latest_index_usage(Some("nowhere"))
            .await
            .expect("latest")
            .is_empty()
    );
}

async fn cache_and_pools(store: &dyn Store) {
    let snaps = [
        cache_row("pgpulse-1", sec(DAY, 400), 2),
        cache_row("pgpulse-1", sec(DAY, 300), 1),
        cache_row("pgpulse-2", sec(DAY + 1, 300), 9),
    ];
    let mut ids = Vec::new();
    for s in &snaps {
        ids.push(store.insert_cache_snapshot(s).await.expect("insert"));
    }
    let got = store.cache_snapshots(day_window(DAY)).await.expect("read");
    assert_eq!(
        got,
        vec![
            CacheSnapshot {
                id: ids[1],
                ..snaps[1].clone()
            },
            CacheSnapshot {
                id: ids[0],
                ..snaps[0].clone()
            },
        ],
        "oldest first, window, round trip"
    );

    let pools = vec![
        pool_row("app", sec(DAY, 500), 4),
        pool_row("billing", sec(DAY, 500), 3),
        pool_row("app", sec(DAY, 560), 5),
        pool_row("app", sec(DAY - 1, 500), 1),
    ];
    assert_eq!(store.insert_pool_stats(&pools).await.expect("insert"), 4);
    assert_eq!(store.insert_pool_stats(&[]).await.expect("empty"), 0);
    let got = store.pool_stats(day_window(DAY)).await.expect("read");
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|p| p.id > 0));
    let mut got: Vec<PoolStat> = got.into_iter().map(|p| PoolStat { id: 0, ..p }).collect();
    assert_eq!(got[2], pools[2], "oldest first");
    got[..2].sort_by(|a, b| a.database.cmp(&b.database));
    assert_eq!(&got[..2], &pools[..2]);
}
