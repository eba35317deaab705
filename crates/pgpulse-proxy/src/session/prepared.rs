//! Named prepared statements in transaction mode.
//!
//! A client's statement `s1` may run on any server, so pgpulse prepares it on
//! servers under a proxy-wide name derived from its text and parameter types
//! (`pgpulse_<key>`), shared by every client that prepares the same text.
//! Each server remembers which keys it has; a Bind on a server that lacks
//! the statement is preceded by an injected Parse whose reply is swallowed.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use pgpulse_wire::{Message, frontend};

/// A client's named statement.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub key: u64,
    pub server_name: String,
    /// The Parse to send to a server, already renamed.
    pub parse: Message,
    pub text: Arc<str>,
}

impl Prepared {
    pub fn new(query: &str, param_types: &[u32]) -> Prepared {
        let key = statement_key(query, param_types);
        let server_name = format!("pgpulse_{key:016x}");
        Prepared {
            key,
            parse: frontend::parse(&server_name, query, param_types),
            server_name,
            text: Arc::from(query),
        }
    }
}

/// The proxy-wide key of a statement: a 64-bit hash of its text and declared
/// parameter types. `DefaultHasher::new()` uses fixed keys, so the same text
/// maps to the same key in every session of this process.
pub(crate) fn statement_key(query: &str, param_types: &[u32]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    query.hash(&mut h);
    param_types.hash(&mut h);
    h.finish()
}

/// The name in `DEALLOCATE [PREPARE] name | ALL`; `None` for ALL.
pub(crate) fn deallocate_target(sql: &str) -> Option<Option<String>> {
    let rest = strip_word(sql.trim().trim_end_matches(';').trim_end(), "deallocate")?;
    let rest = strip_word(rest, "prepare").unwrap_or(rest);
    if rest.eq_ignore_ascii_case("all") {
        return Some(None);
    }
    if let Some(quoted) = rest.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        return Some(Some(quoted.replace("\"\"", "\"")));
    }
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return None;
    }
    Some(Some(rest.to_ascii_lowercase()))
}

/// `s` without its first word if that word is `word` (any case), trimmed.
fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let tail = &s[word.len()..];
    (head.eq_ignore_ascii_case(word) && tail.starts_with(char::is_whitespace))
        .then(|| tail.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_and_types_share_a_key() {
        let a = Prepared::new("SELECT $1", &[23]);
        let b = Prepared::new("SELECT $1", &[23]);
        let c = Prepared::new("SELECT $1", &[25]);
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        assert_eq!(a.server_name, format!("pgpulse_{:016x}", a.key));
    }

    #[test]
    fn deallocate_forms() {
        assert_eq!(
            deallocate_target("DEALLOCATE _pg3_0"),
            Some(Some("_pg3_0".into()))
        );
        assert_eq!(
            deallocate_target("deallocate prepare \"S 1\";"),
            Some(Some("S 1".into()))
        );
        assert_eq!(deallocate_target("DEALLOCATE ALL"), Some(None));
        assert_eq!(deallocate_target("SELECT 1"), None);
    }
}
