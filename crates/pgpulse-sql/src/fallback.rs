//! Table facts found from lexer tokens alone: maintenance statements
//! (`VACUUM FULL`, `CLUSTER`, `REINDEX`), which `sqlparser` often cannot
//! parse, and the best-effort table sets used when the full parse fails
//! (then the analysis is marked uncertain: these sets may be incomplete).

use crate::kind::{StatementKind, ident_value};
use crate::lexer::{Token, TokenKind as K};
use crate::tables::TableRef;

/// Tables a statement touches according to the lexer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LexTables {
    pub reads: Vec<TableRef>,
    pub writes: Vec<TableRef>,
    /// Whether the sets are known complete.
    pub certain: bool,
}

struct Toks<'a> {
    src: &'a str,
    toks: &'a [Token],
}

impl Toks<'_> {
    fn is(&self, i: usize, w: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.kind == K::Word && t.text(self.src).eq_ignore_ascii_case(w))
    }

    fn is_any(&self, i: usize, ws: &[&str]) -> bool {
        ws.iter().any(|w| self.is(i, w))
    }

    /// A possibly qualified name at `i`: the table and the index after it.
    fn name(&self, i: usize) -> Option<(TableRef, usize)> {
        let mut parts = Vec::new();
        let mut j = i;
        while let Some(t) = self
            .toks
            .get(j)
            .filter(|t| matches!(t.kind, K::Word | K::QuotedIdent))
        {
            parts.push(ident_value(t.text(self.src)));
            j += 1;
            if self.toks.get(j).map(|t| t.kind) != Some(K::Dot) {
                break;
            }
            j += 1;
        }
        let name = parts.pop()?;
        Some((
            TableRef {
                schema: parts.pop(),
                name,
            },
            j,
        ))
    }

    /// Comma-separated names from `i` (each optionally followed by a
    /// parenthesised column list).
    fn name_list(&self, mut i: usize) -> Vec<TableRef> {
        let mut out = Vec::new();
        while let Some((t, next)) = self.name(i) {
            out.push(t);
            i = next;
            if self.toks.get(i).map(|t| t.kind) == Some(K::LParen) {
                while i < self.toks.len() && self.toks[i].kind != K::RParen {
                    i += 1;
                }
                i += 1;
            }
            if self.toks.get(i).map(|t| t.kind) != Some(K::Comma) {
                break;
            }
            i += 1;
        }
        out
    }

    /// Index after an optional parenthesised option list at `i`.
    fn skip_options(&self, i: usize) -> usize {
        if self.toks.get(i).map(|t| t.kind) != Some(K::LParen) {
            return i;
        }
        let mut j = i;
        while j < self.toks.len() && self.toks[j].kind != K::RParen {
            j += 1;
        }
        j + 1
    }
}

const VACUUM_WORDS: &[&str] = &[
    "full",
    "freeze",
    "verbose",
    "analyze",
    "analyse",
    "concurrently",
];

/// `VACUUM FULL t` / `CLUSTER t` / `REINDEX TABLE t` write `t`; plain
/// `VACUUM`, `ANALYZE` and `CHECKPOINT` change no data. Without a table
/// name the statement touches every table: uncertain.
pub(crate) fn maintenance(src: &str, toks: &[Token]) -> LexTables {
    let t = Toks { src, toks };
    let mut out = LexTables {
        certain: true,
        ..LexTables::default()
    };
    if t.is(0, "vacuum") {
        let opts_end = t.skip_options(1);
        let full = (1..opts_end.max(2)).any(|i| t.is(i, "full"));
        let mut i = opts_end;
        while t.is_any(i, VACUUM_WORDS) {
            i += 1;
        }
        let full = full || (opts_end..i).any(|j| t.is(j, "full"));
        if full {
            out.writes = t.name_list(i);
            out.certain = !out.writes.is_empty();
        }
    } else if t.is(0, "cluster") {
        let mut i = t.skip_options(1);
        if t.is(i, "verbose") {
            i += 1;
        }
        out.writes = t.name(i).map(|(n, _)| vec![n]).unwrap_or_default();
        out.certain = !out.writes.is_empty();
    } else if t.is(0, "reindex") {
        let mut i = t.skip_options(1);
        let what = i;
        i += 1;
        if t.is(i, "concurrently") {
            i += 1;
        }
        if t.is(what, "table") {
            out.writes = t.name(i).map(|(n, _)| vec![n]).unwrap_or_default();
        }
        // REINDEX INDEX changes no data; SCHEMA/DATABASE/SYSTEM: every table.
        out.certain = t.is(what, "index") || !out.writes.is_empty();
    }
    out
}

/// Best effort when the full parse failed: names after `FROM`, `JOIN` and
/// `USING` are reads; the target of a DML/COPY kind is a write.
pub(crate) fn guess(src: &str, toks: &[Token], kind: &StatementKind) -> LexTables {
    let t = Toks { src, toks };
    let mut out = LexTables::default();
    let target_after: &[&str] = match kind {
        StatementKind::Insert | StatementKind::Merge => &["into"],
        StatementKind::Update => &["update"],
        StatementKind::Delete => &["from"],
        StatementKind::Copy { from: true, .. } => &["copy"],
        _ => &[],
    };
    let mut target_done = false;
    for i in 0..toks.len() {
        let mut j = i + 1;
        if t.is(j, "only") {
            j += 1;
        }
        if !target_done && t.is_any(i, target_after) {
            target_done = true;
            out.writes.extend(t.name(j).map(|(n, _)| n));
        } else if t.is_any(i, &["from", "join", "using"]) {
            out.reads.extend(
                t.name_list(j)
                    .into_iter()
                    .filter(|n| !n.name.eq_ignore_ascii_case("select")),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;

    fn names(v: &[TableRef]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    fn m(sql: &str) -> LexTables {
        maintenance(sql, &tokenize(sql))
    }

    #[test]
    fn maintenance_writes() {
        assert_eq!(names(&m("VACUUM FULL ANALYZE s.t, u").writes), ["s.t", "u"]);
        assert_eq!(names(&m("VACUUM (FULL, ANALYZE) t (a)").writes), ["t"]);
        assert!(m("VACUUM FULL").writes.is_empty());
        assert!(!m("VACUUM FULL").certain);
        let plain = m("VACUUM (ANALYZE) t");
        assert!(plain.certain && plain.writes.is_empty());
        assert_eq!(names(&m("CLUSTER VERBOSE t USING ix").writes), ["t"]);
        assert!(!m("CLUSTER").certain);
        assert_eq!(names(&m("REINDEX TABLE CONCURRENTLY t").writes), ["t"]);
        assert!(m("REINDEX INDEX ix").certain);
        assert!(!m("REINDEX DATABASE d").certain);
        assert!(m("ANALYZE t").certain && m("CHECKPOINT").certain);
    }

    #[test]
    fn guesses_for_unparsable_statements() {
        let sql = "UPDATE ONLY a SET x = 1 FROM b JOIN c.d ON true WHERE odd syntax";
        let g = guess(sql, &tokenize(sql), &StatementKind::Update);
        assert_eq!(names(&g.writes), ["a"]);
        assert_eq!(names(&g.reads), ["b", "c.d"]);
        assert!(!g.certain);
    }
}
