//! Normalization and fingerprinting: constants become `$n`, comments go,
//! whitespace and case become canonical, and the result is hashed into a
//! stable 64-bit [`Fingerprint`].
//!
//! The rules (pg_stat_statements conventions unless said otherwise):
//! - string and numeric constants (with a unary minus: `-5` and `- 5` are
//!   the same constant) become `$n`, numbered after the highest `$n` already
//!   in the text; `TRUE`, `FALSE` and `NULL` are keywords and stay;
//! - **intentional difference from pg_stat_statements (PG15):** a list made
//!   only of constants collapses to one element, so `IN (1, 2, 3)` and
//!   `IN (7)` both become `IN ($1)`, `ARRAY[1, 2]` becomes `ARRAY[$1]`, and
//!   `VALUES (1, 'a'), (2, 'b')` becomes `VALUES ($1, $2)` when all rows have
//!   the same shape and hold no `$n` parameter;
//! - keywords (see `keywords.rs`) are upper case, other unquoted words lower
//!   case; a quoted identifier that needs no quotes (`"orders"`) loses them;
//! - tokens are separated by one space, except none after `(`, `[`, `.`,
//!   `::` and none before `)`, `]`, `,`, `;`, `.`, `::`, `[`, nor before a `(`
//!   that follows a name (`count(*)`, `t(a, b)`);
//! - trailing semicolons are dropped.
//!
//! The fingerprint is FNV-1a 64 over the bytes of the normalized text, so it
//! is stable across runs, processes and machines, and
//! `fingerprint(normalize(x).text) == normalize(x).fingerprint`.
//!
//! # Performance
//! One lexing pass into a token vector (the only allocation besides the
//! output text), then one emitting pass; [`fingerprint`] skips building the
//! text. Measured in `benches/analyze.rs`.

use std::fmt;

use crate::keywords::is_keyword;
use crate::lexer::{Token, TokenKind as K, tokenize};

/// A stable 64-bit fingerprint of a normalized statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The normalized form of a SQL text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    /// Canonical text with constants replaced by `$n`.
    pub text: String,
    /// FNV-1a 64 of `text`.
    pub fingerprint: Fingerprint,
    /// The highest `$n` in `text` (existing parameters and replaced constants).
    pub param_count: u32,
}

/// Normalizes `sql` (see the module documentation for the rules).
pub fn normalize(sql: &str) -> Normalized {
    let tokens = tokenize(sql);
    let mut sink = TextSink {
        text: String::with_capacity(sql.len() + 8),
        hash: Fnv::new(),
    };
    let param_count = Emitter::new(sql, &tokens, &mut sink).run();
    Normalized {
        fingerprint: Fingerprint(sink.hash.0),
        text: sink.text,
        param_count,
    }
}

/// The fingerprint of `sql`; equal to `normalize(sql).fingerprint` without
/// building the text.
pub fn fingerprint(sql: &str) -> Fingerprint {
    let tokens = tokenize(sql);
    let mut sink = Fnv::new();
    Emitter::new(sql, &tokens, &mut sink).run();
    Fingerprint(sink.0)
}

/// FNV-1a 64-bit: simple, fixed, and fast enough for statements of a few
/// hundred bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(pub(crate) u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Self(Self::OFFSET)
    }

    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
    }

    pub(crate) fn bytes(&mut self, bs: &[u8]) {
        for &b in bs {
            self.byte(b);
        }
    }
}

/// Where normalized output goes: text + hash, or hash only.
trait Sink {
    fn push(&mut self, s: &str);
    /// Pushes `s` with ASCII letters upper- or lower-cased.
    fn push_case(&mut self, s: &str, upper: bool);
}

impl Sink for Fnv {
    fn push(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn push_case(&mut self, s: &str, upper: bool) {
        for &b in s.as_bytes() {
            self.byte(if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            });
        }
    }
}

struct TextSink {
    text: String,
    hash: Fnv,
}

impl Sink for TextSink {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.hash.push(s);
    }

    fn push_case(&mut self, s: &str, upper: bool) {
        let from = self.text.len();
        self.text.push_str(s);
        if let Some(tail) = self.text.get_mut(from..) {
            if upper {
                tail.make_ascii_uppercase();
            } else {
                tail.make_ascii_lowercase();
            }
        }
        self.hash.push_case(s, upper);
    }
}

/// Spacing class of the last emitted piece.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Nothing emitted yet.
    Start,
    /// No space may follow (`(`, `[`, `.`, `::`).
    Glue,
    /// A name: a following `(` attaches to it.
    Name,
    /// A semicolon (to fold `;;`).
    Semi,
    /// Anything else.
    Spaced,
}

/// Keyword-like words that end an operand, so a `-` after them is binary.
fn word_ends_operand(w: &str) -> bool {
    const ENDS: &[&str] = &[
        "end",
        "null",
        "true",
        "false",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "current_role",
        "session_user",
        "localtime",
        "localtimestamp",
        "key",
        "first",
        "last",
        "comment",
        "column",
        "index",
        "view",
        "table",
    ];
    !is_keyword(w) || ENDS.iter().any(|e| e.eq_ignore_ascii_case(w))
}

/// Whether a token can end an operand (then a following `-` is binary).
fn ends_operand(src: &str, t: Option<&Token>) -> bool {
    match t {
        None => false,
        Some(t) => match t.kind {
            K::Word => word_ends_operand(t.text(src)),
            K::QuotedIdent | K::String | K::Number | K::Param | K::RParen | K::RBracket => true,
            _ => false,
        },
    }
}

/// A quoted identifier that is a plain lower-case non-keyword name.
fn unquoted_form(q: &str) -> Option<&str> {
    let inner = q.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    let first_ok = b
        .first()
        .is_some_and(|c| c.is_ascii_lowercase() || *c == b'_');
    let rest_ok = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    (first_ok && rest_ok && !is_keyword(inner)).then_some(inner)
}

struct Emitter<'a, S: Sink> {
    src: &'a str,
    toks: &'a [Token],
    sink: &'a mut S,
    prev: Prev,
    next_param: u32,
    max_param: u32,
}

impl<'a, S: Sink> Emitter<'a, S> {
    fn new(src: &'a str, toks: &'a [Token], sink: &'a mut S) -> Self {
        let max_existing = toks
            .iter()
            .filter(|t| t.kind == K::Param)
            .map(|t| parse_param(t.text(src)))
            .max()
            .unwrap_or(0);
        Self {
            src,
            toks,
            sink,
            prev: Prev::Start,
            next_param: max_existing.saturating_add(1),
            max_param: max_existing,
        }
    }

    fn text(&self, i: usize) -> &'a str {
        self.toks.get(i).map_or("", |t| t.text(self.src))
    }

    fn kind(&self, i: usize) -> Option<K> {
        self.toks.get(i).map(|t| t.kind)
    }

    /// Runs the whole emission; returns the highest parameter number.
    fn run(mut self) -> u32 {
        let mut end = self.toks.len();
        while end > 0 && self.toks[end - 1].kind == K::Semicolon {
            end -= 1;
        }
        let mut i = 0;
        // (index of the first collapsed row's `)`, index to resume at)
        let mut values_skip: Option<(usize, usize)> = None;
        while i < end {
            if values_skip.is_none() && self.is_word(i, "values") {
                values_skip = self.collapsible_values(i + 1);
            }
            i = self.step(i);
            if let Some((close, resume)) = values_skip
                && i > close
            {
                i = resume.max(i);
                values_skip = None;
            }
        }
        self.max_param
    }

    fn is_word(&self, i: usize, w: &str) -> bool {
        self.kind(i) == Some(K::Word) && self.text(i).eq_ignore_ascii_case(w)
    }

    /// Emits the token(s) at `i`; returns the index of the next token.
    fn step(&mut self, i: usize) -> usize {
        if let Some(next) = self.constant_at(i) {
            self.emit_param();
            return next;
        }
        let open = match self.kind(i + 1) {
            Some(K::LParen) if self.is_word(i, "in") => Some(K::RParen),
            Some(K::LBracket) if self.is_word(i, "array") => Some(K::RBracket),
            _ => None,
        };
        if let Some(close) = open
            && let Some(after) = self.collapse_list(i, close)
        {
            return after;
        }
        self.emit_token(i);
        i + 1
    }

    /// If a constant (with an optional unary minus) starts at `i`, the index
    /// just past it.
    fn constant_at(&self, i: usize) -> Option<usize> {
        let t = self.toks.get(i)?;
        if t.is_constant() {
            return Some(i + 1);
        }
        let unary = t.kind == K::Operator
            && t.text(self.src) == "-"
            && self.kind(i + 1) == Some(K::Number)
            && !ends_operand(self.src, i.checked_sub(1).and_then(|p| self.toks.get(p)));
        unary.then_some(i + 2)
    }

    /// `IN (c, c, ...)` / `ARRAY[c, ...]` made only of constants with the
    /// same optional cast: emits `IN ($n)` and returns the index after the
    /// closing bracket.
    fn collapse_list(&mut self, kw: usize, close: K) -> Option<usize> {
        let mut i = kw + 2;
        let mut cast: Option<&str> = None;
        let mut first = true;
        loop {
            i = self.constant_at(i)?;
            let this_cast = if self.kind(i) == Some(K::Cast) && self.kind(i + 1) == Some(K::Word) {
                i += 2;
                Some(self.text(i - 1))
            } else {
                None
            };
            if first {
                cast = this_cast;
                first = false;
            } else if !eq_ci(cast, this_cast) {
                return None;
            }
            match self.kind(i) {
                Some(K::Comma) => i += 1,
                Some(k) if k == close => break,
                _ => return None,
            }
        }
        self.emit_token(kw);
        self.emit_token(kw + 1);
        self.emit_param();
        if let Some(c) = cast {
            self.piece(Piece::Cast);
            self.sink.push("::");
            let kw = is_keyword(c);
            self.piece(if kw { Piece::Spaced } else { Piece::Name });
            self.sink.push_case(c, kw);
        }
        self.emit_token(i);
        Some(i + 1)
    }

    /// For `VALUES (...), (...)` starting at `open`: if every row has the same
    /// shape and there is no `$n` inside, (index of the first row's `)`,
    /// index after the last row).
    fn collapsible_values(&self, open: usize) -> Option<(usize, usize)> {
        let mut rows: Vec<(usize, usize)> = Vec::new();
        let mut i = open;
        while self.kind(i) == Some(K::LParen) {
            let close = self.matching(i)?;
            rows.push((i, close));
            if self.kind(close + 1) == Some(K::Comma) && self.kind(close + 2) == Some(K::LParen) {
                i = close + 2;
            } else {
                break;
            }
        }
        if rows.len() < 2 {
            return None;
        }
        let first = rows[0];
        if self.toks[first.0..=first.1]
            .iter()
            .any(|t| t.kind == K::Param)
        {
            return None;
        }
        if rows[1..].iter().all(|r| self.same_shape(first, *r)) {
            rows.last().map(|last| (first.1, last.1 + 1))
        } else {
            None
        }
    }

    fn matching(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for (j, t) in self.toks.iter().enumerate().skip(open) {
            match t.kind {
                K::LParen => depth += 1,
                K::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(j);
                    }
                }
                K::Semicolon => return None,
                _ => {}
            }
        }
        None
    }

    /// Two token ranges normalize to the same text (constants aside).
    fn same_shape(&self, a: (usize, usize), b: (usize, usize)) -> bool {
        let (mut i, mut j) = (a.0, b.0);
        loop {
            match (i > a.1, j > b.1) {
                (true, true) => return true,
                (false, false) => {}
                _ => return false,
            }
            match (self.constant_at(i), self.constant_at(j)) {
                (Some(ni), Some(nj)) => {
                    i = ni;
                    j = nj;
                }
                (None, None) => {
                    let (ti, tj) = (self.toks[i], self.toks[j]);
                    if ti.kind != tj.kind || ti.kind == K::Param {
                        return false;
                    }
                    if !ti.text(self.src).eq_ignore_ascii_case(tj.text(self.src)) {
                        return false;
                    }
                    i += 1;
                    j += 1;
                }
                _ => return false,
            }
        }
    }

    fn emit_param(&mut self) {
        let n = self.next_param;
        self.next_param = n.saturating_add(1);
        self.max_param = self.max_param.max(n);
        self.piece(Piece::Spaced);
        let mut buf = [0u8; 11];
        buf[0] = b'$';
        let mut digits = [0u8; 10];
        let mut len = 0;
        let mut v = n;
        loop {
            digits[len] = b'0' + (v % 10) as u8;
            len += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for k in 0..len {
            buf[1 + k] = digits[len - 1 - k];
        }
        // Only ASCII digits and `$` were written.
        if let Ok(s) = std::str::from_utf8(&buf[..=len]) {
            self.sink.push(s);
        }
        self.prev = Prev::Spaced;
    }

    fn emit_token(&mut self, i: usize) {
        let Some(t) = self.toks.get(i).copied() else {
            return;
        };
        let text = t.text(self.src);
        match t.kind {
            K::Word => {
                let kw = is_keyword(text);
                self.piece(if kw { Piece::Spaced } else { Piece::Name });
                self.sink.push_case(text, kw);
            }
            K::QuotedIdent => {
                self.piece(Piece::Name);
                self.sink.push(unquoted_form(text).unwrap_or(text));
            }
            K::Semicolon => {
                if matches!(self.prev, Prev::Start | Prev::Semi) {
                    return;
                }
                self.piece(Piece::Semi);
                self.sink.push(";");
            }
            K::LParen => {
                self.piece(Piece::Open);
                self.sink.push(text);
            }
            K::LBracket => {
                self.piece(Piece::Bracket);
                self.sink.push(text);
            }
            K::RParen | K::RBracket | K::Comma => {
                self.piece(Piece::Close);
                self.sink.push(text);
            }
            K::Dot | K::Cast => {
                self.piece(Piece::Cast);
                self.sink.push(text);
            }
            _ => {
                self.piece(Piece::Spaced);
                self.sink.push(text);
            }
        }
    }

    /// Writes the separator the spacing rules ask for before a piece, and
    /// records the piece's class.
    fn piece(&mut self, p: Piece) {
        let space = match p {
            Piece::Close | Piece::Cast | Piece::Bracket | Piece::Semi => false,
            Piece::Open => !matches!(self.prev, Prev::Name | Prev::Glue | Prev::Start),
            Piece::Spaced | Piece::Name => !matches!(self.prev, Prev::Glue | Prev::Start),
        };
        if space {
            self.sink.push(" ");
        }
        self.prev = match p {
            Piece::Open | Piece::Bracket | Piece::Cast => Prev::Glue,
            Piece::Name => Prev::Name,
            Piece::Semi => Prev::Semi,
            Piece::Close | Piece::Spaced => Prev::Spaced,
        };
    }
}

/// What is about to be written, for the spacing rules.
#[derive(Clone, Copy)]
enum Piece {
    Open,
    Bracket,
    Close,
    Cast,
    Semi,
    Name,
    Spaced,
}

fn eq_ci(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// `$n` → n (saturating; a malformed number counts as 0).
fn parse_param(p: &str) -> u32 {
    p.bytes()
        .skip(1)
        .try_fold(0u32, |acc, d| {
            d.is_ascii_digit()
                .then(|| acc.saturating_mul(10).saturating_add(u32::from(d - b'0')))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s).text
    }

    #[test]
    fn same_statement_different_constants_and_layout() {
        let a = normalize("SELECT * FROM t WHERE a = 1");
        let b = normalize("select *  from T where a=2 -- c");
        assert_eq!(a.text, "SELECT * FROM t WHERE a = $1");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.param_count, 1);
    }

    #[test]
    fn different_tables_differ() {
        assert_ne!(
            fingerprint("SELECT * FROM orders_2024_01 WHERE id = 1"),
            fingerprint("SELECT * FROM orders_2024_02 WHERE id = 1")
        );
        assert_ne!(
            fingerprint("SELECT a FROM t"),
            fingerprint("SELECT b FROM t")
        );
    }

    #[test]
    fn fingerprint_matches_normalize_and_hash_of_text() {
        for s in [
            "SELECT 1",
            "select a, b from t where x in (1,2) and y = 'z'",
            "",
            ";;",
        ] {
            let norm = normalize(s);
            assert_eq!(fingerprint(s), norm.fingerprint);
            let mut h = Fnv::new();
            h.bytes(norm.text.as_bytes());
            assert_eq!(h.0, norm.fingerprint.0);
        }
    }

    #[test]
    fn display_is_16_hex_digits() {
        assert_eq!(Fingerprint(0xab).to_string(), "00000000000000ab");
    }

    #[test]
    fn params_numbered_after_existing() {
        let r = normalize("SELECT * FROM t WHERE a = $2 AND b = 'x' AND c = $1");
        assert_eq!(r.text, "SELECT * FROM t WHERE a = $2 AND b = $3 AND c = $1");
        assert_eq!(r.param_count, 3);
    }

    #[test]
    fn keywords_true_false_null_stay() {
        assert_eq!(n("select true, null, FALSE"), "SELECT TRUE, NULL, FALSE");
    }

    #[test]
    fn negative_numbers() {
        assert_eq!(n("SELECT -5"), "SELECT $1");
        assert_eq!(
            fingerprint("select a from t where x = -5"),
            fingerprint("select a from t where x = - 5")
        );
        assert_eq!(
            fingerprint("select a from t where x = -5"),
            fingerprint("select a from t where x = 7")
        );
        assert_eq!(n("SELECT a - 5 FROM t"), "SELECT a - $1 FROM t");
        assert_eq!(n("SELECT a-5 FROM t"), "SELECT a - $1 FROM t");
        assert_eq!(n("SELECT (a) - 5"), "SELECT (a) - $1");
    }

    #[test]
    fn in_lists_collapse() {
        assert_eq!(
            n("SELECT * FROM t WHERE id IN (1, 2, 3)"),
            "SELECT * FROM t WHERE id IN ($1)"
        );
        assert_eq!(
            fingerprint("SELECT * FROM t WHERE id IN (1, 2, 3)"),
            fingerprint("select * from t where id in (42)")
        );
        assert_eq!(
            n("SELECT 1 WHERE x IN ('a'::text, 'b'::TEXT) AND y = 2"),
            "SELECT $1 WHERE x IN ($2::text) AND y = $3"
        );
        // Mixed lists are not collapsed.
        assert_eq!(
            n("SELECT * FROM t WHERE id IN ($1, 2)"),
            "SELECT * FROM t WHERE id IN ($1, $2)"
        );
        assert_eq!(
            n("SELECT * FROM t WHERE id IN (a, 2)"),
            "SELECT * FROM t WHERE id IN (a, $1)"
        );
        assert_eq!(
            n("SELECT * FROM t WHERE id IN (SELECT 1)"),
            "SELECT * FROM t WHERE id IN (SELECT $1)"
        );
        assert_eq!(n("SELECT ARRAY[1, -2, 3]"), "SELECT ARRAY[$1]");
    }

    #[test]
    fn values_rows_collapse() {
        assert_eq!(
            n("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (-3, 'z')"),
            "INSERT INTO t(a, b) VALUES ($1, $2)"
        );
        assert_eq!(
            fingerprint("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')"),
            fingerprint("INSERT INTO t (a, b) VALUES (5, 'q')")
        );
        // Different shapes keep all rows.
        assert_eq!(
            n("INSERT INTO t VALUES (1, NULL), (2, 'y') RETURNING id"),
            "INSERT INTO t VALUES ($1, NULL), ($2, $3) RETURNING id"
        );
        assert_eq!(
            n("INSERT INTO t VALUES ($1), ($2)"),
            "INSERT INTO t VALUES ($1), ($2)"
        );
        assert_eq!(n("VALUES (now()), (now()) ;"), "VALUES (now())");
    }

    #[test]
    fn spacing_case_and_quotes() {
        assert_eq!(
            n("SELECT  count(*),T.\"A\", \"b\" ,x::INT,arr[1] FROM S.T  ;  "),
            "SELECT count(*), t.\"A\", b, x::int, arr[$1] FROM s.t"
        );
        assert_eq!(n("select \"select\" from t"), "SELECT \"select\" FROM t");
        assert_eq!(n("SELECT 1; select 2;;"), "SELECT $1; SELECT $2");
        assert_eq!(n("/* only a comment */"), "");
    }

    #[test]
    fn idempotent_on_own_output() {
        for s in [
            "SELECT * FROM t WHERE id IN (1, 2, 3) AND x = -1",
            "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
            "UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 33;",
            "SELECT a->>'k', b @> '{}'::jsonb FROM t WHERE c <> $1",
        ] {
            let once = normalize(s);
            let twice = normalize(&once.text);
            assert_eq!(once.text, twice.text, "{s}");
        }
    }
}
