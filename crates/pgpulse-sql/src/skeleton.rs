//! The skeleton of a statement: its text with the contents of plain
//! constants blanked out, so that a memo of [`normalize`](crate::normalize)
//! can be keyed by it. Statements with inlined literals (all of the simple
//! protocol's traffic: `... WHERE aid = 42`, `... WHERE aid = 43`) differ
//! in every text but share a skeleton, and normalizing each of them was
//! most of the statistics thread's work per statement.
//!
//! **The contract:** if `skeleton(a)` and `skeleton(b)` both succeed and
//! are equal, then `normalize(a) == normalize(b)`. It holds because a
//! skeleton keeps every byte except the contents of constants whose token
//! boundaries cannot depend on those contents, and normalization never
//! looks at a constant's contents (it replaces each by `$n`):
//! - a number is blanked only when it is a bare run of ASCII digits with
//!   nothing before or after it that the lexer could join to it (a letter,
//!   a digit, `_`, `$`, `.`, a non-ASCII byte): `1.5`, `.5`, `1e5`, `0x1F`,
//!   `1_000` and `t1` stay as they are;
//! - a string is blanked only when it is a standard `'...'` string with no
//!   prefix (`E'`, `B'`, `X'`, `N'`, `U&'` and any other letter, digit or
//!   `&` before the quote stay) and no backslash; its doubled quotes (`''`)
//!   are part of it;
//! - quoted identifiers (`"t1"`) are copied as they are;
//! - comments, `$` (parameters and dollar quotes), backslashes and NUL
//!   bytes make it give up (`None`): the caller normalizes such texts
//!   without the memo. They are rare in application traffic.
//!
//! A blanked constant is written as a NUL byte and a kind byte (`n` or
//! `s`); a statement's text never contains NUL (the protocol ends it with
//! one), so no skeleton equals another text's verbatim bytes.
//! The contract is tested over the test corpus and random texts
//! (`tests/skeleton.rs`): every text rebuilt from a skeleton with other
//! constants must normalize to the same thing.

/// Writes the skeleton of `sql` into `out` (cleared first) and returns how
/// many constants it blanked, or `None` when the text holds something the
/// skeleton does not handle (see the module documentation).
pub fn skeleton(sql: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    out.clear();
    out.reserve(sql.len());
    let mut blanked = 0;
    let mut i = 0;
    while i < sql.len() {
        // Bytes with no rule of their own are copied a run at a time.
        let plain = sql[i..]
            .iter()
            .take_while(|&&b| !SPECIAL[b as usize])
            .count();
        if plain > 0 {
            out.extend_from_slice(&sql[i..i + plain]);
            i += plain;
            continue;
        }
        let b = sql[i];
        match b {
            0 | b'$' | b'\\' => return None,
            b'-' if sql.get(i + 1) == Some(&b'-') => return None,
            b'/' if sql.get(i + 1) == Some(&b'*') => return None,
            b'"' => {
                let end = quoted_end(sql, i)?;
                out.extend_from_slice(&sql[i..end]);
                i = end;
            }
            b'\'' => {
                let before = i.checked_sub(1).map(|p| sql[p]);
                if before.is_some_and(|c| joins(c) || c == b'&') {
                    return None;
                }
                let end = quoted_end(sql, i)?;
                out.extend_from_slice(&[0, b's']);
                blanked += 1;
                i = end;
            }
            b'0'..=b'9' => {
                let end = i + sql[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let before = i.checked_sub(1).map(|p| sql[p]);
                let after = sql.get(end).copied();
                if before.is_some_and(|c| joins(c) || c == b'.')
                    || after.is_some_and(|c| joins(c) || c == b'.')
                {
                    out.extend_from_slice(&sql[i..end]);
                } else {
                    out.extend_from_slice(&[0, b'n']);
                    blanked += 1;
                }
                i = end;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(blanked)
}

/// The bytes [`skeleton`] looks at: NUL, `$`, `\\`, `-`, `/`, quotes and
/// digits.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = matches!(
            b,
            0 | b'$' | b'\\' | b'-' | b'/' | b'"' | b'\'' | b'0'..=b'9'
        );
        i += 1;
    }
    t
};

/// A byte the lexer may join to a number or a string next to it: letters,
/// digits, `_`, `$` and non-ASCII bytes (identifier characters).
fn joins(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The index just past the quoted text that starts at `start` (its quote
/// character doubled inside it stands for itself), or `None` if it is not
/// closed or holds a backslash.
fn quoted_end(sql: &[u8], start: usize) -> Option<usize> {
    let q = sql[start];
    let mut i = start + 1;
    loop {
        match *sql.get(i)? {
            b'\\' | 0 => return None,
            c if c == q => {
                if sql.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sk(s: &str) -> Option<(String, usize)> {
        let mut out = Vec::new();
        let n = skeleton(s.as_bytes(), &mut out)?;
        Some((String::from_utf8_lossy(&out).replace('\0', "#"), n))
    }

    #[test]
    fn blanks_plain_numbers_and_strings() {
        assert_eq!(
            sk("SELECT abalance FROM pgbench_accounts WHERE aid = 4711;"),
            Some((
                "SELECT abalance FROM pgbench_accounts WHERE aid = #n;".into(),
                1
            ))
        );
        assert_eq!(
            sk("UPDATE t SET a = 'it''s', b = -5 WHERE c IN (1,2)"),
            Some(("UPDATE t SET a = #s, b = -#n WHERE c IN (#n,#n)".into(), 4))
        );
        assert_eq!(
            sk(r#"SELECT "t1"."a2" FROM "t1""x" t1"#),
            Some((r#"SELECT "t1"."a2" FROM "t1""x" t1"#.into(), 0))
        );
    }

    #[test]
    fn keeps_numbers_the_lexer_reads_differently() {
        for s in [
            "1.5", ".5", "5.", "1e5", "0x1F", "1_000", "t.5", "1..5", "é5",
        ] {
            let (text, n) = sk(s).unwrap();
            assert_eq!((text.as_str(), n), (s, 0), "{s}");
        }
    }

    #[test]
    fn gives_up_on_what_it_does_not_handle() {
        for s in [
            "SELECT $1",
            "SELECT $$x$$",
            "SELECT 1 -- c",
            "SELECT /* c */ 1",
            "SELECT E'a'",
            "SELECT U&'a'",
            "SELECT x'1F'",
            "SELECT 'a\\'",
            "SELECT 'open",
            "SELECT \"open",
            "SELECT '\0'",
        ] {
            assert_eq!(sk(s), None, "{s}");
        }
    }
}
