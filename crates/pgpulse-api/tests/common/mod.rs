//! Shared harness for the API tests: a real store (a `SqliteStore` in a
//! temporary directory; [`pg_store`] gives the PostgreSQL one), an admin API key made through the store,
//! JWTs signed with the test secret, a manual clock, and requests sent with
//! `tower::ServiceExt::oneshot` (no socket).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{EncodingKey, Header};
use pgpulse_api::{
    ApiOptions, ApiState, AuthOptions, JwtKey, JwtOptions, RateLimitOptions, app, create_api_key,
};
use pgpulse_insight::ManualClock;
use pgpulse_store::{ApiKeys, ApiRole, PgStore, PgStoreOptions, SqliteStore, Store, Timestamp};
use pgpulse_testkit::PgCluster;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The HS256 secret JWTs are signed with.
pub const JWT_SECRET: &[u8] = b"test-secret-of-at-least-32-bytes!!";

/// 2026-03-01T12:00:00Z: the clock's start.
pub const T0: u64 = 1_772_366_400;

/// Every endpoint, as (method, path).
pub const ENDPOINTS: [(&str, &str); 21] = [
    ("GET", "/api/performance/status"),
    ("GET", "/api/performance/logs"),
    ("GET", "/api/performance/slow-queries"),
    ("GET", "/api/performance/alerts"),
    ("POST", "/api/performance/alerts/1/acknowledge"),
    ("GET", "/api/performance/query-patterns"),
    ("GET", "/api/performance/index-usage"),
    ("GET", "/api/performance/connection-pool"),
    ("GET", "/api/performance/cache-stats"),
    ("GET", "/api/performance/reports"),
    ("GET", "/api/performance/reports/1"),
    ("POST", "/api/performance/reports/generate"),
    ("GET", "/api/performance/recommendations"),
    ("GET", "/api/performance/baselines"),
    ("POST", "/api/performance/baselines"),
    ("GET", "/api/performance/recommendations/1"),
    ("POST", "/api/performance/recommendations/1/implement"),
    ("POST", "/api/performance/recommendations/1/measure"),
    ("POST", "/api/performance/optimize-indexes"),
    ("POST", "/api/performance/cleanup"),
    ("GET", "/api/performance/dashboard"),
];

/// A store, the clock and an admin key.
pub struct Harness {
    pub store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub admin_key: String,
}

/// The PostgreSQL store in a fresh database of the shared cluster.
pub async fn pg_store(prefix: &str) -> Arc<PgStore> {
    let pg = PgCluster::shared();
    let db = pg.fresh_database(prefix).expect("fresh database");
    Arc::new(
        PgStore::connect(PgStoreOptions::new(pg.url_for(&db)))
            .await
            .expect("connect the store"),
    )
}

impl Harness {
    pub async fn new(prefix: &str) -> Harness {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("pgpulse.db"))
                .await
                .expect("open the store"),
        );
        let clock = Arc::new(ManualClock::at_unix(T0));
        let (admin_key, _) = create_api_key(&*store, "ops-admin", ApiRole::Admin, now(&clock))
            .await
            .expect("create key");
        Harness {
            store,
            _dir: dir,
            clock,
            admin_key,
        }
    }

    /// Options around the harness's store, with JWTs accepted.
    pub fn options(&self) -> ApiOptions {
        let mut o = ApiOptions::new(self.store.clone() as Arc<dyn Store>);
        o.keys = Some(self.store.clone() as Arc<dyn ApiKeys>);
        o.clock = self.clock.clone();
        o.auth = AuthOptions {
            jwt: Some(JwtOptions::new(JwtKey::Hs256Secret(JWT_SECRET.to_vec()))),
        };
        o
    }

    pub fn app(&self) -> Router {
        app(ApiState::new(self.options()).expect("state"))
    }

    pub fn app_with_limits(&self, limits: RateLimitOptions) -> Router {
        let mut o = self.options();
        o.rate_limit = limits;
        app(ApiState::new(o).expect("state"))
    }

    pub fn now(&self) -> Timestamp {
        now(&self.clock)
    }
}

pub fn now(clock: &ManualClock) -> Timestamp {
    use pgpulse_insight::Clock;
    Timestamp::from(clock.now())
}

/// A JWT expiring in an hour with these claims added.
pub fn jwt(claims: Value) -> String {
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let mut c = json!({ "sub": "jwt-user", "exp": exp });
    c.as_object_mut()
        .unwrap()
        .extend(claims.as_object().unwrap().clone());
    jsonwebtoken::encode(
        &Header::default(),
        &c,
        &EncodingKey::from_secret(JWT_SECRET),
    )
    .unwrap()
}

/// A request with an optional bearer token.
pub fn request(method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// Sends a request; returns the status, the response and the body as JSON
/// (`Value::String` when it is not JSON).
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Response<()>, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (parts.status, Response::from_parts(parts, ()), value)
}

/// GET with a token.
pub async fn get(app: &Router, uri: &str, token: &str) -> (StatusCode, Value) {
    let (s, _, v) = send(app, request("GET", uri, Some(token), None)).await;
    (s, v)
}

/// Asserts the JSON error shape and returns the error object.
pub fn assert_error(body: &Value, code: &str) -> Value {
    let e = body
        .get("error")
        .unwrap_or_else(|| panic!("no error object in {body}"));
    assert_eq!(e["code"], code, "{body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        e["request_id"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    e.clone()
}

/// Advances the manual clock.
pub fn advance(clock: &ManualClock, by: Duration) {
    clock.advance(by);
}
