//! The keyword list of the normalizer: words in it are written in upper case
//! in normalized text, every other unquoted word in lower case. Unquoted
//! identifiers are case-insensitive in PostgreSQL, so the choice changes
//! only how normalized text reads, never what it means.

/// Sorted (byte order), upper case. `is_keyword` matches the same words
/// (a test checks both agree).
#[cfg(test)]
static KEYWORDS: &[&str] = &[
    "ABORT",
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "ASYMMETRIC",
    "AT",
    "BEGIN",
    "BETWEEN",
    "BOTH",
    "BY",
    "CALL",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "CHECKPOINT",
    "CLOSE",
    "CLUSTER",
    "COLLATE",
    "COLUMN",
    "COMMENT",
    "COMMIT",
    "CONCURRENTLY",
    "CONFLICT",
    "CONSTRAINT",
    "COPY",
    "CREATE",
    "CROSS",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURSOR",
    "DEALLOCATE",
    "DECLARE",
    "DEFAULT",
    "DEFERRABLE",
    "DELETE",
    "DESC",
    "DISCARD",
    "DISTINCT",
    "DO",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXECUTE",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FETCH",
    "FILTER",
    "FIRST",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GRANT",
    "GROUP",
    "HAVING",
    "ILIKE",
    "IN",
    "INDEX",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LATERAL",
    "LEADING",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LISTEN",
    "LOCAL",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "LOCK",
    "MATERIALIZED",
    "MERGE",
    "MOVE",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTIFY",
    "NOTNULL",
    "NOWAIT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "ONLY",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "OVERLAPS",
    "PARTITION",
    "PLACING",
    "PREPARE",
    "PRIMARY",
    "REFERENCES",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "RESET",
    "RETURNING",
    "REVOKE",
    "RIGHT",
    "ROLLBACK",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SESSION_USER",
    "SET",
    "SHARE",
    "SHOW",
    "SIMILAR",
    "SKIP",
    "SOME",
    "START",
    "SYMMETRIC",
    "TABLE",
    "TABLESAMPLE",
    "THEN",
    "TIES",
    "TO",
    "TRAILING",
    "TRANSACTION",
    "TRUE",
    "TRUNCATE",
    "UNION",
    "UNIQUE",
    "UNLISTEN",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VARIADIC",
    "VIEW",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHIN",
    "WITHOUT",
];

/// Longest keyword, so a candidate can be upper-cased on the stack.
const MAX_LEN: usize = 24;

/// Whether `word` (any case) is in the keyword list.
///
/// # Performance
/// Dispatches on length, then a `matches!` over byte-string literals: about
/// five times faster than a binary search over `KEYWORDS` (which calls
/// `memcmp` per probe), measured with `benches/analyze.rs`.
pub fn is_keyword(word: &str) -> bool {
    let b = word.as_bytes();
    if b.len() > MAX_LEN || b.len() < 2 {
        return false;
    }
    let mut buf = [0u8; MAX_LEN];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_uppercase();
    }
    let up = &buf[..b.len()];
    match b.len() {
        2 => matches!(
            up,
            b"AS" | b"AT" | b"BY" | b"DO" | b"IN" | b"IS" | b"NO" | b"ON" | b"OR" | b"TO"
        ),
        3 => matches!(
            up,
            b"ALL" | b"AND" | b"ANY" | b"ASC" | b"END" | b"FOR" | b"KEY" | b"NOT" | b"SET"
        ),
        4 => matches!(
            up,
            b"BOTH"
                | b"CALL"
                | b"CASE"
                | b"CAST"
                | b"COPY"
                | b"DESC"
                | b"DROP"
                | b"ELSE"
                | b"FROM"
                | b"FULL"
                | b"INTO"
                | b"JOIN"
                | b"LAST"
                | b"LEFT"
                | b"LIKE"
                | b"LOCK"
                | b"MOVE"
                | b"NULL"
                | b"ONLY"
                | b"OVER"
                | b"ROWS"
                | b"SHOW"
                | b"SKIP"
                | b"SOME"
                | b"THEN"
                | b"TIES"
                | b"TRUE"
                | b"VIEW"
                | b"WHEN"
                | b"WITH"
        ),
        5 => matches!(
            up,
            b"ABORT"
                | b"ALTER"
                | b"ARRAY"
                | b"BEGIN"
                | b"CHECK"
                | b"CLOSE"
                | b"CROSS"
                | b"FALSE"
                | b"FETCH"
                | b"FIRST"
                | b"GRANT"
                | b"GROUP"
                | b"ILIKE"
                | b"INDEX"
                | b"INNER"
                | b"LIMIT"
                | b"LOCAL"
                | b"MERGE"
                | b"NULLS"
                | b"ORDER"
                | b"OUTER"
                | b"RESET"
                | b"RIGHT"
                | b"SHARE"
                | b"START"
                | b"TABLE"
                | b"UNION"
                | b"USING"
                | b"WHERE"
        ),
        6 => matches!(
            up,
            b"COLUMN"
                | b"COMMIT"
                | b"CREATE"
                | b"CURSOR"
                | b"DELETE"
                | b"EXCEPT"
                | b"EXISTS"
                | b"FILTER"
                | b"HAVING"
                | b"INSERT"
                | b"ISNULL"
                | b"LISTEN"
                | b"NOTIFY"
                | b"NOWAIT"
                | b"OFFSET"
                | b"REVOKE"
                | b"SELECT"
                | b"UNIQUE"
                | b"UPDATE"
                | b"VACUUM"
                | b"VALUES"
                | b"WINDOW"
                | b"WITHIN"
        ),
        7 => matches!(
            up,
            b"ANALYZE"
                | b"BETWEEN"
                | b"CASCADE"
                | b"CLUSTER"
                | b"COLLATE"
                | b"COMMENT"
                | b"DECLARE"
                | b"DEFAULT"
                | b"DISCARD"
                | b"EXECUTE"
                | b"EXPLAIN"
                | b"FOREIGN"
                | b"LATERAL"
                | b"LEADING"
                | b"NATURAL"
                | b"NOTHING"
                | b"NOTNULL"
                | b"PLACING"
                | b"PREPARE"
                | b"PRIMARY"
                | b"REFRESH"
                | b"REINDEX"
                | b"RELEASE"
                | b"SIMILAR"
                | b"WITHOUT"
        ),
        8 => matches!(
            up,
            b"CONFLICT"
                | b"DISTINCT"
                | b"INTERVAL"
                | b"OVERLAPS"
                | b"ROLLBACK"
                | b"TRAILING"
                | b"TRUNCATE"
                | b"UNLISTEN"
                | b"VARIADIC"
        ),
        9 => matches!(
            up,
            b"INTERSECT" | b"LOCALTIME" | b"PARTITION" | b"RETURNING" | b"SAVEPOINT" | b"SYMMETRIC"
        ),
        10 => matches!(
            up,
            b"ASYMMETRIC"
                | b"CHECKPOINT"
                | b"CONSTRAINT"
                | b"DEALLOCATE"
                | b"DEFERRABLE"
                | b"REFERENCES"
        ),
        11 => matches!(up, b"TABLESAMPLE" | b"TRANSACTION"),
        12 => matches!(
            up,
            b"CONCURRENTLY"
                | b"CURRENT_DATE"
                | b"CURRENT_ROLE"
                | b"CURRENT_TIME"
                | b"CURRENT_USER"
                | b"MATERIALIZED"
                | b"SESSION_USER"
        ),
        14 => matches!(up, b"LOCALTIMESTAMP"),
        17 => matches!(up, b"CURRENT_TIMESTAMP"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_upper_and_short() {
        assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            KEYWORDS
                .iter()
                .all(|k| k.len() <= MAX_LEN && *k == k.to_ascii_uppercase())
        );
    }

    #[test]
    fn matcher_agrees_with_list() {
        for k in KEYWORDS {
            assert!(is_keyword(k), "{k}");
            assert!(is_keyword(&k.to_ascii_lowercase()), "{k}");
        }
        for w in ["SELEC", "SELECTS", "FROMM", "A", "ORDERS", "NOW"] {
            assert!(!is_keyword(w), "{w}");
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert!(is_keyword("select"));
        assert!(is_keyword("SeLeCt"));
        assert!(is_keyword("WHERE"));
        assert!(!is_keyword("orders"));
        assert!(!is_keyword("now"));
        assert!(!is_keyword("é"));
    }
}
