//! API key material: making a key (`pgp_` + 32 random bytes in base64url,
//! shown once), its non-secret `key_id`, and the argon2 hash that is stored
//! and verified. The binary's `pgpulse api-key create` calls
//! [`create_api_key`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pgpulse_store::{ApiKeyRecord, ApiKeys, ApiRole, NewApiKey, StoreError, Timestamp};

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "pgp_";
/// Characters of the key (after the prefix) used as its `key_id`.
pub const KEY_ID_LEN: usize = 8;
/// Length of the base64url text of 32 bytes.
const SECRET_LEN: usize = 43;

/// What can go wrong making a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Hashing failed (argon2 parameters).
    #[error("hashing the key failed: {0}")]
    Hash(String),
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The name is empty or too long.
    #[error("a key name must have 1 to 128 characters")]
    BadName,
}

/// A fresh random key (`pgp_<43 base64url chars>`).
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The `key_id` of a well-formed key, `None` if it is not one.
pub fn key_id(token: &str) -> Option<&str> {
    let secret = token.strip_prefix(KEY_PREFIX)?;
    (secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| &secret[..KEY_ID_LEN])
}

/// The argon2id hash (PHC string) of a key.
pub fn hash_key(token: &str) -> Result<String, KeyError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| KeyError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(token.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| KeyError::Hash(e.to_string()))
}

/// Whether `token` matches a stored hash. Argon2's comparison of the
/// derived bytes is constant time.
pub fn verify_key(token: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(token.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Makes and stores a key; returns the key (show it once: it cannot be
/// recovered) and its record.
pub async fn create_api_key(
    keys: &dyn ApiKeys,
    name: &str,
    role: ApiRole,
    at: Timestamp,
) -> Result<(String, ApiKeyRecord), KeyError> {
    if name.is_empty() || name.len() > 128 {
        return Err(KeyError::BadName);
    }
    let token = generate_key();
    let id = key_id(&token)
        .ok_or_else(|| KeyError::Hash("generated key is malformed".into()))?
        .to_owned();
    let hash = hash_key(&token)?;
    let record = keys
        .create_api_key(&NewApiKey {
            key_id: id,
            name: name.to_owned(),
            role,
            hash,
            created_at: at,
        })
        .await?;
    Ok((token, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_verify() {
        let k = generate_key();
        assert!(k.starts_with("pgp_"));
        assert_eq!(k.len(), 4 + 43);
        assert_eq!(key_id(&k).map(str::len), Some(KEY_ID_LEN));
        let h = hash_key(&k).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_key(&k, &h));
        let other = generate_key();
        assert!(!verify_key(&other, &h));
        assert_ne!(k, other);
    }

    #[test]
    fn malformed_keys_have_no_key_id() {
        assert_eq!(key_id("pgp_short"), None);
        assert_eq!(
            key_id("xyz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            None
        );
        assert_eq!(
            key_id("pgp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"),
            None
        );
    }
}
