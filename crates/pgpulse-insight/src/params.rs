//! Builds the statement to EXPLAIN from the text and the `Bind` parameters.
//!
//! PostgreSQL 15 has no `EXPLAIN (GENERIC_PLAN)` (it arrived in 16), and
//! binding parameters of unknown type through a client is awkward, so the
//! text-format parameter values are substituted into the text as quoted
//! literals (`$1` → `'42'`, NULL → `NULL`). A quoted literal is of type
//! `unknown`, resolved from context exactly like an untyped parameter, so the
//! plan is the one PostgreSQL would choose for those values. Limits:
//! - binary-format parameters cannot be turned into text without their types:
//!   such statements are not explained;
//! - where the client declared parameter types in `Parse` and the context does
//!   not determine them (`SELECT $1 + $2`), resolution may differ or fail;
//! - the explain connection sets `standard_conforming_strings = on`, so the
//!   only character to escape inside a literal is `'`.
//!
//! The substituted text lives only for the EXPLAIN call and is never stored.

use pgpulse_sql::StatementKind;
use pgpulse_sql::lexer::{TokenKind, tokenize};
use pgpulse_wire::Message;
use pgpulse_wire::frontend::Bind;

/// The statement text with parameters inlined, ready to follow `EXPLAIN`;
/// the error says why it cannot be explained.
pub(crate) fn explainable_text(text: &str, bind: Option<&Message>) -> Result<String, &'static str> {
    let analysis = pgpulse_sql::analyze(text);
    match analysis.kind {
        StatementKind::Select
        | StatementKind::Insert
        | StatementKind::Update
        | StatementKind::Delete
        | StatementKind::Merge => {}
        StatementKind::Multi => return Err("several statements"),
        _ => return Err("not a plannable statement"),
    }
    let values = match bind {
        Some(msg) => literals(msg)?,
        None => Vec::new(),
    };
    inline(text, &values)
}

/// The `Bind`'s parameters as SQL literals.
fn literals(msg: &Message) -> Result<Vec<String>, &'static str> {
    let bind = Bind::parse(msg).map_err(|_| "malformed Bind")?;
    bind.params
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            None => Ok("NULL".to_string()),
            Some(_) if bind.param_format(i) != 0 => Err("binary parameters"),
            Some(bytes) => {
                let s = std::str::from_utf8(bytes).map_err(|_| "parameter is not UTF-8")?;
                Ok(quote_literal(s))
            }
        })
        .collect()
}

/// `'value'` with `'` doubled (standard_conforming_strings = on).
pub(crate) fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Replaces each `$n` token (outside strings, comments and identifiers) by
/// `values[n - 1]`.
fn inline(text: &str, values: &[String]) -> Result<String, &'static str> {
    let mut out = String::with_capacity(text.len() + values.iter().map(String::len).sum::<usize>());
    let mut pos = 0;
    for t in tokenize(text).iter().filter(|t| t.kind == TokenKind::Param) {
        let n: usize = t
            .text(text)
            .get(1..)
            .and_then(|d| d.parse().ok())
            .ok_or("bad parameter reference")?;
        let value = n
            .checked_sub(1)
            .and_then(|i| values.get(i))
            .ok_or("parameter without a value")?;
        out.push_str(text.get(pos..t.start).ok_or("bad token span")?);
        out.push_str(value);
        pos = t.end;
    }
    out.push_str(text.get(pos..).ok_or("bad token span")?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use pgpulse_wire::frontend::BIND_TAG;

    /// A `Bind` of the unnamed portal and statement with the given text
    /// parameters (format code `format` for all).
    pub(crate) fn bind(params: &[Option<&str>], format: i16) -> Message {
        Message::build(BIND_TAG, |b| {
            b.put_u8(0);
            b.put_u8(0);
            b.put_i16(1);
            b.put_i16(format);
            b.put_i16(params.len() as i16);
            for p in params {
                match p {
                    None => b.put_i32(-1),
                    Some(v) => {
                        b.put_i32(v.len() as i32);
                        b.put_slice(v.as_bytes());
                    }
                }
            }
            b.put_i16(0);
        })
    }

    #[test]
    fn params_become_quoted_literals() {
        let msg = bind(&[Some("42"), Some("O'Brien"), None], 0);
        let out = explainable_text(
            "SELECT * FROM t WHERE id = $1 AND name = $2 AND x IS NOT DISTINCT FROM $3 AND s = '$1' -- $2",
            Some(&msg),
        );
        assert_eq!(
            out.as_deref(),
            Ok(
                "SELECT * FROM t WHERE id = '42' AND name = 'O''Brien' AND x IS NOT DISTINCT FROM NULL AND s = '$1' -- $2"
            )
        );
    }

    #[test]
    fn unexplainable_statements_say_why() {
        assert_eq!(
            explainable_text("BEGIN", None),
            Err("not a plannable statement")
        );
        assert_eq!(
            explainable_text("SELECT 1; SELECT 2", None),
            Err("several statements")
        );
        assert_eq!(
            explainable_text("SELECT $1", None),
            Err("parameter without a value")
        );
        let msg = bind(&[Some("\0\0\0\x01")], 1);
        assert_eq!(
            explainable_text("SELECT $1", Some(&msg)),
            Err("binary parameters")
        );
        let msg = bind(&[Some("1")], 0);
        assert_eq!(
            explainable_text("SELECT $1, $2", Some(&msg)),
            Err("parameter without a value")
        );
        assert_eq!(
            explainable_text("SELECT 1", None).as_deref(),
            Ok("SELECT 1")
        );
    }

    proptest::proptest! {
        #[test]
        fn quoted_literal_lexes_as_one_string(s in "\\PC{0,40}") {
            let q = quote_literal(&s);
            let toks = tokenize(&q);
            proptest::prop_assert_eq!(toks.len(), 1);
            proptest::prop_assert_eq!(toks[0].kind, TokenKind::String);
        }
    }
}
