//! [`Analysis`] and [`analyze`]: combines the normalizer, the quick
//! classifier, the full parse and the lexer fallbacks into one verdict per
//! SQL text, including multi-statement strings.
//!
//! Certainty rules: a statement is `certain` when its kind alone settles
//! its effect (transaction control, `SET`, `SHOW`...) or when the full parse
//! succeeded and every part of it is modelled. Otherwise `certain = false`,
//! and `may_write = true` unless the statement is clearly read-only.

use std::sync::Arc;

use crate::fallback::{self, LexTables};
use crate::kind::{Quick, StatementKind, classify, split_statements};
use crate::lexer::{Token, TokenKind, tokenize};
use crate::normalize::{Fingerprint, normalize};
use crate::tables::{Deep, TableRef, deep_analyze};

/// Everything pgpulse knows about a SQL text.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Fingerprint of the normalized text.
    pub fingerprint: Fingerprint,
    /// Normalized text (constants replaced by `$n`).
    pub normalized: Arc<str>,
    /// Statement kind; [`StatementKind::Multi`] for several statements.
    pub kind: StatementKind,
    /// Tables read (deduplicated, in order of appearance).
    pub tables_read: Vec<TableRef>,
    /// Tables written (possibly incomplete when `certain` is false).
    pub tables_written: Vec<TableRef>,
    /// Functions called, lower case unless quoted, schema-qualified as written.
    pub functions: Vec<String>,
    /// A `FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE` clause is present.
    pub locking: bool,
    /// A system catalog (`pg_catalog.*`, `information_schema.*`, `pg_*`) is
    /// referenced.
    pub touches_catalog: bool,
    /// The table sets and `may_write` are known to be complete.
    pub certain: bool,
    /// The statement may change table data or schema.
    pub may_write: bool,
    /// Number of statements in the text (0 for an empty text).
    pub statement_count: usize,
    /// The highest `$n` in the normalized text.
    pub param_count: u32,
    /// Why `certain` is false, when it is.
    pub uncertain_reason: Option<String>,
    /// One analysis per statement when `kind` is `Multi`, else empty.
    pub parts: Vec<Analysis>,
}

impl Analysis {
    /// Certainly a plain read: a `SELECT`-like or `SHOW` statement, fully
    /// understood, that writes nothing and takes no row locks (`FOR UPDATE`
    /// and friends make it false). A multi-statement string is never
    /// read-only here; inspect `parts` if needed. Function volatility is not
    /// judged here (`SELECT nextval('s')` is "read-only" by this test): check
    /// `functions` against `pg_proc.provolatile` before caching.
    pub fn is_read_only(&self) -> bool {
        self.certain
            && !self.may_write
            && !self.locking
            && matches!(self.kind, StatementKind::Select | StatementKind::Show)
    }

    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`.
    pub fn is_transaction_control(&self) -> bool {
        use StatementKind as S;
        matches!(
            self.kind,
            S::Begin | S::Commit | S::Rollback | S::Savepoint | S::Release | S::RollbackTo
        )
    }
}

/// Analyses `sql` (no memo; see [`crate::Analyzer`] for the memoised form).
pub fn analyze(sql: &str) -> Analysis {
    let toks = tokenize(sql);
    let ranges = split_statements(&toks);
    if ranges.len() <= 1 {
        let r = ranges.first().cloned().unwrap_or(0..0);
        return analyze_single(sql, &toks[r]);
    }
    let parts: Vec<Analysis> = ranges
        .iter()
        .map(|r| {
            let (a, b) = (toks[r.start].start, toks[r.end - 1].end);
            let part = sql.get(a..b).unwrap_or("");
            analyze_single(part, &tokenize(part))
        })
        .collect();
    combine(sql, parts)
}

fn combine(sql: &str, parts: Vec<Analysis>) -> Analysis {
    let norm = normalize(sql);
    let mut a = Analysis {
        fingerprint: norm.fingerprint,
        normalized: norm.text.into(),
        kind: StatementKind::Multi,
        tables_read: Vec::new(),
        tables_written: Vec::new(),
        functions: Vec::new(),
        locking: parts.iter().any(|p| p.locking),
        touches_catalog: parts.iter().any(|p| p.touches_catalog),
        certain: parts.iter().all(|p| p.certain),
        may_write: parts.iter().any(|p| p.may_write),
        statement_count: parts.len(),
        param_count: norm.param_count,
        uncertain_reason: parts.iter().find_map(|p| p.uncertain_reason.clone()),
        parts: Vec::new(),
    };
    for p in &parts {
        union(&mut a.tables_read, &p.tables_read);
        union(&mut a.tables_written, &p.tables_written);
        union(&mut a.functions, &p.functions);
    }
    a.parts = parts;
    a
}

fn union<T: PartialEq + Clone>(into: &mut Vec<T>, from: &[T]) {
    for x in from {
        if !into.contains(x) {
            into.push(x.clone());
        }
    }
}

/// The first word of a statement, lower case.
fn first_word(sql: &str, toks: &[Token]) -> String {
    toks.iter()
        .find(|t| t.kind == TokenKind::Word)
        .map(|t| t.text(sql).to_ascii_lowercase())
        .unwrap_or_default()
}

fn analyze_single(sql: &str, toks: &[Token]) -> Analysis {
    use StatementKind as S;
    let norm = normalize(sql);
    let quick = classify(sql, toks);
    let mut a = Analysis {
        fingerprint: norm.fingerprint,
        normalized: norm.text.into(),
        kind: quick.kind.clone(),
        tables_read: Vec::new(),
        tables_written: Vec::new(),
        functions: Vec::new(),
        locking: false,
        touches_catalog: false,
        certain: true,
        may_write: false,
        statement_count: usize::from(quick.kind != S::Empty),
        param_count: norm.param_count,
        uncertain_reason: None,
        parts: Vec::new(),
    };
    match &quick.kind {
        S::Select
        | S::Insert
        | S::Update
        | S::Delete
        | S::Merge
        | S::Ddl
        | S::Copy { .. }
        | S::Explain => {
            with_parse(&mut a, sql, toks, &quick);
        }
        S::Maintenance => {
            let lt = fallback::maintenance(sql, toks);
            a.may_write = !lt.writes.is_empty() || !lt.certain;
            apply_lex(&mut a, lt, "maintenance of every table");
        }
        S::Execute | S::Call | S::Do => unknown(&mut a, "runs code not visible in the text"),
        S::Other
            if matches!(
                first_word(sql, toks).as_str(),
                "declare" | "fetch" | "move" | "close"
            ) => {}
        S::Other => unknown(&mut a, "utility statement not modelled"),
        _ => {}
    }
    // The lexer sees every locking clause, also where the parser failed.
    a.locking |= has_locking_clause(sql, toks);
    a.touches_catalog = a
        .tables_read
        .iter()
        .chain(&a.tables_written)
        .any(TableRef::is_catalog)
        || (!a.certain && mentions_catalog(sql, toks));
    a
}

fn unknown(a: &mut Analysis, why: &str) {
    a.certain = false;
    a.may_write = true;
    a.uncertain_reason = Some(why.to_owned());
}

fn apply_lex(a: &mut Analysis, lt: LexTables, why: &str) {
    if !lt.certain {
        a.certain = false;
        a.uncertain_reason = Some(why.to_owned());
    }
    a.tables_read = lt.reads;
    a.tables_written = lt.writes;
}

/// Runs the full parse and sets tables, functions, certainty and
/// `may_write` from it (or from the lexer guess if the parse fails).
fn with_parse(a: &mut Analysis, sql: &str, toks: &[Token], quick: &Quick) {
    use StatementKind as S;
    // sqlparser misses some PostgreSQL syntax; retry on forms with the same
    // tables and functions: a rewrite, then the normalized text (which has
    // no `U&'...' UESCAPE` or continued strings left).
    let first = match parser_friendly(sql, toks) {
        Some(rewritten) => deep_analyze(&rewritten),
        None => deep_analyze(sql),
    };
    let parsed = first.or_else(|e| deep_analyze(&a.normalized).map_err(|_| e));
    match parsed {
        Ok(Deep {
            reads,
            writes,
            functions,
            locking,
            uncertain,
        }) => {
            a.tables_read = reads;
            a.tables_written = writes;
            a.functions = functions;
            a.locking = locking;
            if let Some(why) = uncertain {
                a.certain = false;
                a.uncertain_reason = Some(why);
            }
        }
        Err(e) => {
            let guess = fallback::guess(sql, toks, &quick.kind);
            apply_lex(a, guess, &e.to_string());
        }
    }
    let clearly_read = match &a.kind {
        S::Select => !quick.cte_writes,
        S::Copy {
            from: false,
            to: true,
        } => true,
        S::Explain => !quick.explain_analyze || (a.tables_written.is_empty() && a.certain),
        _ => false,
    };
    if a.kind == S::Explain && !quick.explain_analyze {
        // Plain EXPLAIN plans the statement without running it.
        a.tables_written.clear();
    }
    a.may_write = !a.tables_written.is_empty() || !clearly_read;
    if quick.cte_writes && a.tables_written.is_empty() {
        a.certain = false;
    }
}

/// A copy of `sql` that sqlparser 0.64 can parse where the original uses
/// syntax it lacks: `FOR NO KEY UPDATE` / `FOR KEY SHARE` (written as
/// `FOR UPDATE` / `FOR SHARE`; the lexer reports locking anyway) and
/// `TABLE t` (written as `SELECT * FROM t`). `None` when nothing changes.
fn parser_friendly(sql: &str, toks: &[Token]) -> Option<String> {
    let is = |i: usize, w: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == TokenKind::Word && t.text(sql).eq_ignore_ascii_case(w))
    };
    // (byte range to replace, replacement)
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let first = toks
        .iter()
        .position(|t| t.kind != TokenKind::LParen)
        .unwrap_or(0);
    if is(first, "table") {
        edits.push((toks[first].start, toks[first].end, "SELECT * FROM"));
    }
    for i in 0..toks.len() {
        if is(i, "for") && is(i + 1, "no") && is(i + 2, "key") && is(i + 3, "update") {
            edits.push((toks[i + 1].start, toks[i + 2].end, ""));
        } else if is(i, "for") && is(i + 1, "key") && is(i + 2, "share") {
            edits.push((toks[i + 1].start, toks[i + 1].end, ""));
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut at = 0;
    for (start, end, with) in edits {
        out.push_str(sql.get(at..start)?);
        out.push_str(with);
        at = end;
    }
    out.push_str(sql.get(at..)?);
    Some(out)
}

/// `FOR UPDATE`, `FOR SHARE`, `FOR NO KEY UPDATE`, `FOR KEY SHARE`.
fn has_locking_clause(sql: &str, toks: &[Token]) -> bool {
    let is = |i: usize, w: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == TokenKind::Word && t.text(sql).eq_ignore_ascii_case(w))
    };
    (0..toks.len()).any(|i| {
        is(i, "for")
            && (is(i + 1, "update")
                || is(i + 1, "share")
                || (is(i + 1, "no") && is(i + 2, "key"))
                || (is(i + 1, "key") && is(i + 2, "share")))
    })
}

/// Lexer scan for catalog names, used when the parse did not settle it.
fn mentions_catalog(sql: &str, toks: &[Token]) -> bool {
    toks.iter().enumerate().any(|(i, t)| {
        let w = t.text(sql);
        t.kind == TokenKind::Word
            && (w.eq_ignore_ascii_case("pg_catalog")
                || w.eq_ignore_ascii_case("information_schema")
                || (w.len() > 3
                    && w.as_bytes()[..3].eq_ignore_ascii_case(b"pg_")
                    && toks.get(i + 1).is_none_or(|n| n.kind != TokenKind::LParen)))
    })
}
