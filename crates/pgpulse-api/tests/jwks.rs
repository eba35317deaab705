//! JWTs checked against a JWKS document (as an identity provider publishes
//! it): the key the token's `kid` names verifies it; an unknown `kid`, a
//! token signed by another key, or no `kid` among several keys is a 401.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use common::{Harness, get};
use pgpulse_api::{ApiState, AuthOptions, JwtKey, JwtOptions, app};
use serde_json::json;

/// A fresh RSA key: (private PEM, JWK parameters `n`, `e`).
fn rsa_key(dir: &std::path::Path, name: &str) -> (Vec<u8>, String, String) {
    let key = dir.join(format!("{name}.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey failed");
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.trim().strip_prefix("Modulus=").unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // openssl's default public exponent is 65537.
    (
        std::fs::read(key).unwrap(),
        b64.encode(bytes),
        "AQAB".into(),
    )
}

fn sign(private: &[u8], kid: Option<&str>, role: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let exp = chrono::Utc::now().timestamp() + 600;
    jsonwebtoken::encode(
        &header,
        &json!({ "sub": "sso-user", "role": role, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_rsa_pem(private).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_are_checked_with_the_key_their_kid_names() {
    let h = Harness::new("api_jwks").await;
    let dir = tempfile::tempdir().unwrap();
    let (one, n1, e1) = rsa_key(dir.path(), "one");
    let (two, n2, e2) = rsa_key(dir.path(), "two");
    let (other, _, _) = rsa_key(dir.path(), "other");
    let jwks = json!({ "keys": [
        { "kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": n1, "e": e1 },
        { "kty": "RSA", "kid": "k2", "use": "sig", "n": n2, "e": e2 },
    ]});
    let mut o = h.options();
    o.auth = AuthOptions {
        jwt: Some(JwtOptions::new(JwtKey::Jwks(jwks.to_string()))),
    };
    let app = app(ApiState::new(o).unwrap());
    let status = "/api/performance/status";
    for (token, want) in [
        (sign(&one, Some("k1"), "admin"), StatusCode::OK),
        (sign(&two, Some("k2"), "admin"), StatusCode::OK),
        (sign(&one, Some("k1"), "viewer"), StatusCode::FORBIDDEN),
        // Signed by k1 but naming k2, signed by a key not in the set, an
        // unknown kid, and no kid among two keys: refused.
        (sign(&one, Some("k2"), "admin"), StatusCode::UNAUTHORIZED),
        (sign(&other, Some("k1"), "admin"), StatusCode::UNAUTHORIZED),
        (sign(&one, Some("k9"), "admin"), StatusCode::UNAUTHORIZED),
        (sign(&one, None, "admin"), StatusCode::UNAUTHORIZED),
    ] {
        let (got, body) = get(&app, status, &token).await;
        assert_eq!(got, want, "{body}");
    }
}

#[tokio::test]
async fn a_jwks_document_without_keys_is_refused_at_start() {
    let h = Harness::new("api_jwks_empty").await;
    let mut o = h.options();
    o.auth = AuthOptions {
        jwt: Some(JwtOptions::new(JwtKey::Jwks(r#"{"keys": []}"#.into()))),
    };
    assert!(ApiState::new(o).is_err());
}
