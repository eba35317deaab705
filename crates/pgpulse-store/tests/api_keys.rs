//! `ApiKeys` on both stores: create, find by key id, duplicate key ids,
//! revoke (idempotent, first time kept), last use, unknown ids.

use chrono::DateTime;
use pgpulse_store::{ApiKeys, ApiRole, NewApiKey, PgStore, PgStoreOptions, SqliteStore, Timestamp};
use pgpulse_testkit::PgCluster;

fn t(secs: i64) -> Timestamp {
    DateTime::from_timestamp_micros(1_772_366_400_000_000 + secs * 1_000_000 + 123_457)
        .expect("time")
}

fn key(key_id: &str, name: &str, role: ApiRole) -> NewApiKey {
    NewApiKey {
        key_id: key_id.into(),
        name: name.into(),
        role,
        hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${key_id}"),
        created_at: t(0),
    }
}

async fn suite(s: &dyn ApiKeys) {
    let a = s
        .create_api_key(&key("abcdEFGH", "ops", ApiRole::Admin))
        .await
        .expect("create");
    assert!(a.id > 0);
    assert_eq!(
        (a.name.as_str(), a.role, a.created_at),
        ("ops", ApiRole::Admin, t(0))
    );
    assert_eq!((a.revoked_at, a.last_used_at), (None, None));
    let b = s
        .create_api_key(&key("zzzz-___", "viewer", ApiRole::Read))
        .await
        .expect("create");
    let dup = s
        .create_api_key(&key("abcdEFGH", "other", ApiRole::Read))
        .await;
    assert!(dup.is_err_and(|e| e.is_conflict()), "key ids are unique");

    let found = s
        .api_key_by_key_id("abcdEFGH")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(found, a);
    assert!(
        found.hash.ends_with("abcdEFGH"),
        "the hash is stored as given"
    );
    assert_eq!(
        s.api_key_by_key_id("abcdefgh").await.expect("find"),
        None,
        "case matters"
    );

    s.touch_api_key(a.id, t(60)).await.expect("touch");
    s.touch_api_key(a.id, t(30)).await.expect("older touch");
    let touched = s
        .api_key_by_key_id("abcdEFGH")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(
        touched.last_used_at,
        Some(t(60)),
        "last use never goes back"
    );

    let r = s.revoke_api_key(b.id, t(100)).await.expect("revoke");
    assert_eq!(r.revoked_at, Some(t(100)));
    let again = s.revoke_api_key(b.id, t(200)).await.expect("revoke again");
    assert_eq!(
        again.revoked_at,
        Some(t(100)),
        "the first revocation is kept"
    );
    assert!(
        s.revoke_api_key(999_999, t(0))
            .await
            .is_err_and(|e| e.is_not_found())
    );

    let all = s.api_keys().await.expect("list");
    let names: Vec<_> = all
        .iter()
        .map(|k| (k.name.as_str(), k.revoked_at.is_some()))
        .collect();
    assert_eq!(names, [("ops", false), ("viewer", true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_api_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("k.db"))
        .await
        .expect("open");
    suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_api_keys_with_row_level_security() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("api_keys").expect("fresh database");
    let store = PgStore::connect(PgStoreOptions::new(pg.url_for(&db)))
        .await
        .expect("connect");
    suite(&store).await;
    let rls = pg
        .psql(&db, "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'api_keys'")
        .expect("psql");
    assert_eq!(rls.trim(), "t");

    // Another admin role: the api_keys policy follows it, like the others.
    let role = format!("{db}_adm2");
    pg.psql(&db, &format!("CREATE ROLE {role}")).expect("role");
    drop(store);
    let _store = PgStore::connect(PgStoreOptions {
        admin_role: Some(role.clone()),
        ..PgStoreOptions::new(pg.url_for(&db))
    })
    .await
    .expect("reconnect with another admin role");
    let quals = pg
        .psql(
            &db,
            "SELECT tablename || ':' || qual FROM pg_policies \
             WHERE tablename IN ('api_keys', 'audit_log') ORDER BY tablename",
        )
        .expect("psql");
    let lines: Vec<&str> = quals.lines().collect();
    assert_eq!(lines.len(), 2, "{quals}");
    for line in lines {
        assert!(line.contains(&role), "{line}");
    }
}
