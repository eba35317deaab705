//! Authentication: `Authorization: Bearer <token>` where the token is an
//! API key (`pgp_…`, argon2-hashed in the store) or a JWT (HS256 secret or
//! RS256 public key, `exp` required, a configurable role claim). The
//! middleware turns the header into a [`Credential`] or a 401.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pgpulse_insight::Clock;
use pgpulse_store::{ApiKeys, ApiRole, Timestamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::keys;

/// The key JWTs are checked with.
#[derive(Clone)]
pub enum JwtKey {
    /// An HS256 shared secret.
    Hs256Secret(Vec<u8>),
    /// An RS256 public key, PEM.
    Rs256PublicPem(String),
    /// A JWKS document (`{"keys": [...]}`, as an identity provider
    /// publishes it): a token is checked with the key its header's `kid`
    /// names (or the only key), with that key's algorithm (default RS256).
    Jwks(String),
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
            JwtKey::Rs256PublicPem(_) => f.write_str("Rs256PublicPem(..)"),
            JwtKey::Jwks(_) => f.write_str("Jwks(..)"),
        }
    }
}

/// JWT settings.
#[derive(Debug, Clone)]
pub struct JwtOptions {
    /// Verification key.
    pub key: JwtKey,
    /// Claim holding the role (a string or an array of strings); default
    /// `role`.
    pub role_claim: String,
    /// Role value that makes an admin; default `admin`.
    pub admin_value: String,
    /// Required `iss`, if set.
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    pub audience: Option<String>,
}

impl JwtOptions {
    /// Settings with the default claim names.
    pub fn new(key: JwtKey) -> JwtOptions {
        JwtOptions {
            key,
            role_claim: "role".into(),
            admin_value: "admin".into(),
            issuer: None,
            audience: None,
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// Accept JWTs (default: no).
    pub jwt: Option<JwtOptions>,
}

/// Why building the API failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiSetupError {
    /// The JWT key could not be read.
    #[error("jwt key: {0}")]
    JwtKey(String),
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The key's name or the JWT's `sub` (the actor in audit records).
    pub name: String,
    /// Role.
    pub role: ApiRole,
    /// Stable identity for rate limiting (`key:<key_id>` or `jwt:<sub>`).
    pub bucket: String,
}

/// One key JWTs may be signed with.
struct VerifyingKey {
    /// Its `kid`, for JWKS keys that have one.
    kid: Option<String>,
    key: DecodingKey,
    /// Its algorithm, `exp` required, issuer and audience as configured.
    validation: Validation,
}

/// The keys of `j`, each with its validation rules.
fn verifying_keys(j: &JwtOptions) -> Result<Vec<VerifyingKey>, ApiSetupError> {
    let bad = |e: &dyn fmt::Display| ApiSetupError::JwtKey(e.to_string());
    let keys: Vec<(Option<String>, DecodingKey, Algorithm)> = match &j.key {
        JwtKey::Hs256Secret(s) => vec![(None, DecodingKey::from_secret(s), Algorithm::HS256)],
        JwtKey::Rs256PublicPem(pem) => vec![(
            None,
            DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| bad(&e))?,
            Algorithm::RS256,
        )],
        JwtKey::Jwks(text) => {
            let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(text).map_err(|e| bad(&e))?;
            if set.keys.is_empty() {
                return Err(bad(&"the JWKS document has no keys"));
            }
            set.keys
                .iter()
                .map(|k| {
                    let alg = match &k.common.key_algorithm {
                        Some(a) => a.to_string().parse::<Algorithm>().map_err(|e| bad(&e))?,
                        None => Algorithm::RS256,
                    };
                    let key = DecodingKey::from_jwk(k).map_err(|e| bad(&e))?;
                    Ok((k.common.key_id.clone(), key, alg))
                })
                .collect::<Result<_, ApiSetupError>>()?
        }
    };
    Ok(keys
        .into_iter()
        .map(|(kid, key, alg)| {
            let mut v = Validation::new(alg);
            v.set_required_spec_claims(&["exp"]);
            if let Some(iss) = &j.issuer {
                v.set_issuer(&[iss]);
            }
            match &j.audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            VerifyingKey {
                kid,
                key,
                validation: v,
            }
        })
        .collect())
}

/// Checks bearer tokens.
pub(crate) struct Authenticator {
    keys: Option<Arc<dyn ApiKeys>>,
    jwt: Option<(Vec<VerifyingKey>, JwtOptions)>,
    clock: Arc<dyn Clock>,
    /// Key row id → SHA-256 of the token that last passed argon2, so that
    /// argon2 (tens of ms) runs once per key, not once per request.
    verified: Mutex<HashMap<i64, [u8; 32]>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.is_some())
            .field("jwt", &self.jwt.as_ref().map(|j| &j.1))
            .finish()
    }
}

/// Seconds between two `last_used_at` updates of one key.
const TOUCH_EVERY_SECS: i64 = 60;

impl Authenticator {
    pub fn new(
        opts: AuthOptions,
        keys: Option<Arc<dyn ApiKeys>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Authenticator, ApiSetupError> {
        let jwt = opts
            .jwt
            .map(|j| Ok::<_, ApiSetupError>((verifying_keys(&j)?, j)))
            .transpose()?;
        Ok(Authenticator {
            keys,
            jwt,
            clock,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The credential of an `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Credential, ApiError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        if token.starts_with(keys::KEY_PREFIX) {
            self.api_key(token).await
        } else {
            self.jwt(token)
        }
    }

    async fn api_key(&self, token: &str) -> Result<Credential, ApiError> {
        const BAD: ApiError = ApiError::Unauthorized("invalid credentials");
        let store = self.keys.as_ref().ok_or(BAD)?;
        let key_id = keys::key_id(token).ok_or(BAD)?;
        let rec = store.api_key_by_key_id(key_id).await?.ok_or(BAD)?;
        if rec.revoked_at.is_some() {
            return Err(BAD);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = self.verified_lock().get(&rec.id).copied();
        let ok = match known {
            Some(d) => bool::from(d.ct_eq(&digest)),
            None => false,
        } || {
            let (t, h) = (token.to_owned(), rec.hash.clone());
            let good = tokio::task::spawn_blocking(move || keys::verify_key(&t, &h))
                .await
                .map_err(|e| ApiError::Internal(format!("argon2 task: {e}")))?;
            if good {
                self.verified_lock().insert(rec.id, digest);
            }
            good
        };
        if !ok {
            return Err(BAD);
        }
        let now = Timestamp::from(self.clock.now());
        if rec
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= TOUCH_EVERY_SECS)
            && let Err(e) = store.touch_api_key(rec.id, now).await
        {
            tracing::warn!(error = %e, key_id, "could not record the key's last use");
        }
        Ok(Credential {
            name: rec.name,
            role: rec.role,
            bucket: format!("key:{}", rec.key_id),
        })
    }

    fn jwt(&self, token: &str) -> Result<Credential, ApiError> {
        const BAD: ApiError = ApiError::Unauthorized("invalid credentials");
        let (keys, opts) = self.jwt.as_ref().ok_or(BAD)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| BAD)?;
        // The key the header names; without a `kid`, the only key there is.
        let key = match &header.kid {
            Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid.as_str())),
            None if keys.len() == 1 => keys.first(),
            None => None,
        }
        .ok_or(BAD)?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &key.validation)
            .map_err(|_| BAD)?;
        let claims = data.claims;
        let admin = match claims.get(&opts.role_claim) {
            Some(serde_json::Value::String(s)) => *s == opts.admin_value,
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .any(|v| v.as_str() == Some(opts.admin_value.as_str())),
            _ => false,
        };
        let sub = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .unwrap_or("jwt")
            .to_owned();
        Ok(Credential {
            bucket: format!("jwt:{sub}"),
            name: sub,
            role: if admin { ApiRole::Admin } else { ApiRole::Read },
        })
    }

    fn verified_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, [u8; 32]>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}
