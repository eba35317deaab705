//! The `[api]` section: who may call `/api/performance/*` and how often.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The admin API's credentials and limits. API keys themselves live in the
/// store (`pgpulse api-key create|list|revoke`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the API, the dashboard and `/metrics`. Default true.
    pub enabled: bool,
    /// Accept HS256 JWTs signed with this secret (`PGPULSE_JWT_SECRET`).
    /// Default: none.
    pub jwt_secret: Option<String>,
    /// Accept RS256 JWTs verified with this PEM public key. Default: none.
    pub jwt_public_key: Option<PathBuf>,
    /// Accept JWTs verified with the keys of this JWKS file (as an identity
    /// provider publishes it; the token's `kid` picks the key). Default: none.
    pub jwt_jwks_file: Option<PathBuf>,
    /// JWT claim holding the role (a string or an array). Default `role`.
    pub jwt_role_claim: String,
    /// Role value that makes an admin. Default `admin`.
    pub jwt_admin_value: String,
    /// Required `iss`, if set. Default: none.
    pub jwt_issuer: Option<String>,
    /// Required `aud`, if set. Default: none.
    pub jwt_audience: Option<String>,
    /// Bearer token required by `/metrics` (`PGPULSE_METRICS_TOKEN`).
    /// Default: none (open on the HTTP listen address).
    pub metrics_token: Option<String>,
    /// Reads per second per credential. Default 20 (burst 60).
    pub reads_per_second: f64,
    /// Read burst per credential. Default 60.
    pub reads_burst: u32,
    /// Writes per second per credential. Default 2 (burst 10).
    pub writes_per_second: f64,
    /// Write burst per credential. Default 10.
    pub writes_burst: u32,
    /// Reverse proxies (addresses or networks, `10.0.0.0/8`) in front of
    /// the API: requests from them are rate-limited per the client address
    /// their `X-Forwarded-For` names (`PGPULSE_TRUSTED_PROXIES`,
    /// comma-separated). Default: none (the TCP peer's address).
    pub trusted_proxies: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_jwks_file: None,
            jwt_role_claim: "role".to_owned(),
            jwt_admin_value: "admin".to_owned(),
            jwt_issuer: None,
            jwt_audience: None,
            metrics_token: None,
            reads_per_second: 20.0,
            reads_burst: 60,
            writes_per_second: 2.0,
            writes_burst: 10,
            trusted_proxies: Vec::new(),
        }
    }
}
