//! Both sides of PostgreSQL authentication: the server side the proxy uses to
//! authenticate its clients (SCRAM-SHA-256 verifier and exchange, md5), and
//! [`ClientAuth`], the state machine that logs the proxy in to a server.
//!
//! Shared primitives (HMAC, PBKDF2 `Hi`, SASLprep, randomness) live here.

mod client;
mod md5;
mod scram;

pub use client::ClientAuth;
pub use md5::{md5_hash, md5_response, verify_md5};
pub use scram::{SCRAM_SHA_256, ScramServer, ScramVerifier};

use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

/// HMAC-SHA-256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC is defined for keys of any length, so construction cannot fail;
    // the fallback only satisfies the type checker.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `Hi()` of RFC 5802: PBKDF2-HMAC-SHA-256 producing one 32-byte block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = Vec::with_capacity(salt.len() + 4);
    block.extend_from_slice(salt);
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut prev = hmac_sha256(password, &block);
    let mut out = prev;
    for _ in 1..iterations {
        prev = hmac_sha256(password, &prev);
        out.iter_mut().zip(prev).for_each(|(o, p)| *o ^= p);
    }
    out
}

/// SASLprep (RFC 4013) as PostgreSQL applies it: when the password is not
/// valid UTF-8 or contains prohibited characters, the raw bytes are used.
fn saslprep(password: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(password) {
        Ok(s) => match stringprep::saslprep(s) {
            Ok(p) => p.into_owned().into_bytes(),
            Err(_) => password.to_vec(),
        },
        Err(_) => password.to_vec(),
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // ThreadRng is a CSPRNG seeded from the OS.
    rand::rng().fill_bytes(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hi_matches_rfc7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
        let salted = hi(b"pencil", &salt, 4096);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(
            base64_encode(&proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_key = hmac_sha256(&salted, b"Server Key");
        assert_eq!(
            base64_encode(&hmac_sha256(&server_key, auth_message.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn saslprep_maps_and_falls_back() {
        // U+00A0 (no-break space) maps to a plain space.
        assert_eq!(saslprep("a\u{a0}b".as_bytes()), b"a b");
        assert_eq!(saslprep(b"\xff\xfe"), b"\xff\xfe");
        // A prohibited control character: raw bytes are kept.
        assert_eq!(saslprep(b"a\x07"), b"a\x07");
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    fn base64_encode(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}
