//! md5 password authentication as PostgreSQL defines it: the stored form
//! `"md5" + hex(md5(password || user))` and the salted challenge response
//! `"md5" + hex(md5(hex(md5(password || user)) || salt))`.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `s` has the stored md5 form (`md5` + 32 lowercase hex digits).
fn is_md5_hash(s: &str) -> bool {
    s.len() == 35
        && s.starts_with("md5")
        && s[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The md5 password hash PostgreSQL stores in `pg_authid`:
/// `"md5" + md5(password || user)`.
pub fn md5_hash(user: &str, password: &str) -> String {
    format!("md5{}", md5_hex(&[password.as_bytes(), user.as_bytes()]))
}

/// What a client sends in answer to `AuthenticationMD5Password`. Accepts the
/// plaintext password or its stored md5 hash (as PgBouncer does).
pub fn md5_response(user: &str, password_or_md5_hash: &str, salt: [u8; 4]) -> String {
    let stored = if is_md5_hash(password_or_md5_hash) {
        password_or_md5_hash.to_owned()
    } else {
        md5_hash(user, password_or_md5_hash)
    };
    format!("md5{}", md5_hex(&[&stored.as_bytes()[3..], &salt]))
}

/// Checks a client's md5 response against a stored plaintext password or md5
/// hash, in constant time. A SCRAM verifier cannot check an md5 response, so
/// it never matches.
pub fn verify_md5(user: &str, stored: &str, salt: [u8; 4], response: &str) -> bool {
    if stored.starts_with("SCRAM-SHA-256$") {
        return false;
    }
    let expected = md5_response(user, stored, salt);
    expected.as_bytes().ct_eq(response.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            md5_hash("postgres", "postgres"),
            "md53175bce1d3201d16594cebf9d7eb3f9d"
        );
        // The same vector postgres-protocol tests its client against.
        assert_eq!(
            md5_response("md5_user", "password", [0x2a, 0x3d, 0x8f, 0xe0]),
            "md562af4dd09bbb41884907a838a3233294"
        );
        assert_eq!(
            md5_response(
                "md5_user",
                &md5_hash("md5_user", "password"),
                [0x2a, 0x3d, 0x8f, 0xe0]
            ),
            "md562af4dd09bbb41884907a838a3233294"
        );
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong() {
        let salt = [9, 8, 7, 6];
        let resp = md5_response("alice", "pw", salt);
        assert!(verify_md5("alice", "pw", salt, &resp));
        assert!(verify_md5("alice", &md5_hash("alice", "pw"), salt, &resp));
        assert!(!verify_md5("alice", "pw2", salt, &resp));
        assert!(!verify_md5("bob", "pw", salt, &resp));
        assert!(!verify_md5("alice", "pw", [0, 0, 0, 0], &resp));
        assert!(!verify_md5("alice", "pw", salt, ""));
        let scram = crate::ScramVerifier::from_password("pw").to_string_pg();
        assert!(!verify_md5("alice", &scram, salt, &resp));
    }
}
