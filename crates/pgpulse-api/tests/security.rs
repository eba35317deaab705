//! Authentication, roles, rate limits and request ids on every endpoint,
//! against a real store: 401 without or with wrong credentials (with
//! `WWW-Authenticate: Bearer` and the JSON error), 403 for a valid
//! non-admin JWT, 429 with `Retry-After` past the budget, revoked keys
//! refused, `x-request-id` echoed or generated.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use common::*;
use pgpulse_api::{Budget, RateLimitOptions, create_api_key, generate_key};
use pgpulse_store::{ApiKeys, ApiRole};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_missing_and_wrong_credentials() {
    let h = Harness::new("api_401").await;
    // Many refusals in a row: the address budget is not what is tested here.
    let app = h.app_with_limits(roomy());
    let expired = {
        let c = json!({ "sub": "old", "role": "admin", "exp": 1_000_000_000u64 });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
        )
        .unwrap()
    };
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "role": "admin" }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
    )
    .unwrap();
    let other_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "role": "admin", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    )
    .unwrap();
    // Right key id, wrong secret: the row is found, argon2 says no.
    let mut forged = h.admin_key.clone();
    forged.replace_range(
        20..24,
        if &forged[20..24] == "AAAA" {
            "BBBB"
        } else {
            "AAAA"
        },
    );
    let wrong: [Option<&str>; 7] = [
        None,
        Some(&generate_key()),
        Some(&forged),
        Some("not-a-token"),
        Some(&expired),
        Some(&no_exp),
        Some(&other_secret),
    ];
    for (method, path) in ENDPOINTS {
        for token in wrong {
            let (status, resp, body) = send(&app, request(method, path, token, None)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            assert_error(&body, "unauthorized");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_forbids_a_non_admin_credential() {
    let h = Harness::new("api_403").await;
    // Many refusals in a row: the address budget is not what is tested here.
    let app = h.app_with_limits(roomy());
    let reader = jwt(json!({ "role": "viewer" }));
    let no_role = jwt(json!({}));
    let (read_key, _) = create_api_key(&*h.store, "reader", ApiRole::Read, h.now())
        .await
        .unwrap();
    for (method, path) in ENDPOINTS {
        for token in [&reader, &no_role, &read_key] {
            let (status, _, body) = send(&app, request(method, path, Some(token), None)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_error(&body, "forbidden");
        }
    }
    // The role claim may be an array; the admin value is configurable.
    let admin_in_array = jwt(json!({ "role": ["viewer", "admin"] }));
    let (s, _) = get(&app, "/api/performance/status", &admin_in_array).await;
    assert_eq!(s, StatusCode::OK);
    let mut o = h.options();
    o.auth.jwt.as_mut().unwrap().role_claim = "groups".into();
    o.auth.jwt.as_mut().unwrap().admin_value = "dba".into();
    let app2 = pgpulse_api::app(pgpulse_api::ApiState::new(o).unwrap());
    let dba = jwt(json!({ "groups": "dba" }));
    assert_eq!(
        get(&app2, "/api/performance/status", &dba).await.0,
        StatusCode::OK
    );
    let plain_admin = jwt(json!({ "role": "admin" }));
    assert_eq!(
        get(&app2, "/api/performance/status", &plain_admin).await.0,
        StatusCode::FORBIDDEN
    );
}

fn roomy() -> RateLimitOptions {
    let lots = Budget {
        per_second: 1000.0,
        burst: 100_000,
    };
    RateLimitOptions {
        reads: lots,
        writes: lots,
        address_reads: lots,
        address_writes: lots,
    }
}

fn tight() -> RateLimitOptions {
    let one = Budget {
        per_second: 0.5,
        burst: 1,
    };
    RateLimitOptions {
        reads: one,
        writes: one,
        ..RateLimitOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_429_past_the_budget() {
    let h = Harness::new("api_429").await;
    for (method, path) in ENDPOINTS {
        // A fresh limiter per endpoint: the budget is one request.
        let app = h.app_with_limits(tight());
        let (first, _, _) = send(&app, request(method, path, Some(&h.admin_key), None)).await;
        assert_ne!(first, StatusCode::TOO_MANY_REQUESTS, "{method} {path}");
        let (status, resp, body) =
            send(&app, request(method, path, Some(&h.admin_key), None)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{method} {path}");
        assert_eq!(resp.headers()["retry-after"], "2", "1 token at 0.5/s");
        assert_error(&body, "rate_limited");
    }
    // Reads and writes have separate budgets; time refills them.
    let app = h.app_with_limits(tight());
    let status = "/api/performance/status";
    assert_eq!(get(&app, status, &h.admin_key).await.0, StatusCode::OK);
    assert_eq!(
        get(&app, status, &h.admin_key).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (s, _, _) = send(
        &app,
        request("POST", "/api/performance/cleanup", Some(&h.admin_key), None),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the write budget is untouched");
    advance(&h.clock, Duration::from_secs(2));
    assert_eq!(get(&app, status, &h.admin_key).await.0, StatusCode::OK);
    // Another credential has its own bucket.
    let other = jwt(json!({ "role": "admin", "sub": "someone-else" }));
    assert_eq!(get(&app, status, &other).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_is_limited_before_authentication() {
    let h = Harness::new("api_addr").await;
    let app = h.app_with_limits(RateLimitOptions {
        address_reads: Budget {
            per_second: 0.1,
            burst: 3,
        },
        ..RateLimitOptions::default()
    });
    let from = |ip: &str| {
        let mut r = request("GET", "/api/performance/status", Some("pgp_guess"), None);
        let addr: SocketAddr = format!("{ip}:5000").parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(addr));
        r
    };
    for _ in 0..3 {
        assert_eq!(
            send(&app, from("10.1.1.1")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (s, resp, body) = send(&app, from("10.1.1.1")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "10");
    assert_error(&body, "rate_limited");
    assert_eq!(
        send(&app, from("10.1.1.2")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Behind a trusted reverse proxy (the application, a load balancer), the
/// address limit applies per forwarded client, not to the proxy as a
/// whole; an untrusted peer cannot pick its bucket with the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited() {
    let h = Harness::new("api_xff").await;
    let mut o = h.options();
    o.rate_limit = RateLimitOptions {
        address_reads: Budget {
            per_second: 0.1,
            burst: 2,
        },
        ..RateLimitOptions::default()
    };
    o.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = pgpulse_api::app(pgpulse_api::ApiState::new(o).unwrap());
    let via = |peer: &str, forwarded: Option<&str>| {
        let mut r = request("GET", "/api/performance/status", Some("pgp_guess"), None);
        let addr: SocketAddr = format!("{peer}:5000").parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(addr));
        if let Some(f) = forwarded {
            r.headers_mut()
                .insert("x-forwarded-for", f.parse().unwrap());
        }
        r
    };
    // Two browsers behind the application: separate budgets.
    for _ in 0..2 {
        let s = send(&app, via("127.0.0.1", Some("198.51.100.1"))).await.0;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        send(&app, via("127.0.0.1", Some("198.51.100.1"))).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, via("127.0.0.1", Some("198.51.100.2"))).await.0,
        StatusCode::UNAUTHORIZED,
        "another client behind the same proxy has its own budget"
    );
    // A client that forges the header in front of the proxy still lands in
    // its own bucket (the proxy appended its real address).
    assert_eq!(
        send(&app, via("127.0.0.1", Some("198.51.100.2, 198.51.100.1")))
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An untrusted peer is its own client, whatever it claims.
    for _ in 0..2 {
        let s = send(&app, via("203.0.113.5", Some("198.51.100.3"))).await.0;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        send(&app, via("203.0.113.5", Some("198.51.100.4"))).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, via("127.0.0.1", Some("198.51.100.3"))).await.0,
        StatusCode::UNAUTHORIZED,
        "the untrusted peer's claims charged nobody else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_keys_are_refused_and_use_is_recorded() {
    let h = Harness::new("api_revoke").await;
    let app = h.app();
    let (key, rec) = create_api_key(&*h.store, "ci-bot", ApiRole::Admin, h.now())
        .await
        .unwrap();
    assert_eq!(
        get(&app, "/api/performance/status", &key).await.0,
        StatusCode::OK
    );
    let seen = h
        .store
        .api_key_by_key_id(&rec.key_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_used_at, Some(h.now()));
    h.store.revoke_api_key(rec.id, h.now()).await.unwrap();
    let (s, _, body) = send(
        &app,
        request("GET", "/api/performance/status", Some(&key), None),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revocation applies at once");
    assert_error(&body, "unauthorized");
    // The other key still works.
    assert_eq!(
        get(&app, "/api/performance/status", &h.admin_key).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_generated_and_errors_carry_them() {
    let h = Harness::new("api_rid").await;
    let app = h.app();
    let mut r = request(
        "GET",
        "/api/performance/logs?nope=1",
        Some(&h.admin_key),
        None,
    );
    r.headers_mut()
        .insert("x-request-id", "client-42".parse().unwrap());
    let (s, resp, body) = send(&app, r).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["x-request-id"], "client-42");
    assert_eq!(
        assert_error(&body, "bad_request")["request_id"],
        "client-42"
    );
    // An insane id is replaced.
    let mut r = request("GET", "/healthz", None, None);
    r.headers_mut()
        .insert("x-request-id", "a b".parse().unwrap());
    let (s, resp, _) = send(&app, r).await;
    assert_eq!(s, StatusCode::OK);
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 16);
    assert_ne!(id, "a b");
    // Wrong methods and unknown routes get the JSON shape too.
    let (s, _, body) = send(
        &app,
        request("GET", "/api/performance/cleanup", Some(&h.admin_key), None),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");
    let (s, _, body) = send(&app, request("DELETE", "/healthz", None, None)).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");
    let (s, _, body) = send(&app, request("GET", "/nowhere", None, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_token() {
    let h = Harness::new("api_health").await;
    let app = h.app();
    let (s, _, body) = send(&app, request("GET", "/healthz", None, None)).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, _, body) = send(&app, request("GET", "/readyz", None, None)).await;
    assert_eq!(
        (s, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let (s, resp, body) = send(&app, request("GET", "/metrics", None, None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        body.as_str()
            .unwrap()
            .contains("# TYPE pgpulse_up gauge\npgpulse_up 1\n")
    );
    let mut o = h.options();
    o.metrics_token = Some("scrape-me".into());
    let app = pgpulse_api::app(pgpulse_api::ApiState::new(o).unwrap());
    let (s, _, _) = send(&app, request("GET", "/metrics", None, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(&app, request("GET", "/metrics", Some("wrong"), None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(&app, request("GET", "/metrics", Some("scrape-me"), None)).await;
    assert_eq!(s, StatusCode::OK);
    let (reader, _) = create_api_key(&*h.store, "grafana", ApiRole::Read, h.now())
        .await
        .unwrap();
    let (s, _, _) = send(&app, request("GET", "/metrics", Some(&reader), None)).await;
    assert_eq!(s, StatusCode::OK, "a read key may scrape");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_routes_get_the_same_protection_and_the_credential() {
    use axum::Extension;
    use axum::routing::post;
    use pgpulse_api::{ApiState, Credential, RequestId, app_with, audit};

    async fn implement(
        axum::extract::State(state): axum::extract::State<ApiState>,
        Extension(cred): Extension<Credential>,
        Extension(rid): Extension<RequestId>,
    ) -> Result<String, pgpulse_api::ApiError> {
        audit(
            &state,
            &cred,
            &rid,
            "recommendation.dismiss",
            "recommendation:7",
            json!({}),
        )
        .await?;
        Ok(cred.name)
    }
    let h = Harness::new("api_extra").await;
    let extra = axum::Router::new().route("/recommendations/{id}/dismiss", post(implement));
    let app = app_with(ApiState::new(h.options()).unwrap(), extra);
    let uri = "/api/performance/recommendations/7/dismiss";
    let (s, _, body) = send(&app, request("POST", uri, None, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&body, "unauthorized");
    let viewer = jwt(json!({ "role": "viewer" }));
    assert_eq!(
        send(&app, request("POST", uri, Some(&viewer), None))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, _, body) = send(&app, request("POST", uri, Some(&h.admin_key), None)).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, Some("ops-admin")));
    let log = pgpulse_store::Store::audit_log(&*h.store, Default::default())
        .await
        .unwrap();
    assert_eq!(log.items[0].action, "recommendation.dismiss");
    assert_eq!(log.items[0].actor, "ops-admin");
}
