//! The keyword list of the normalizer: words in it are written in upper case
//! in normalized text, every other unquoted word in lower case. Unquoted
//! identifiers are case-insensitive in PostgreSQL, so the choice changes
//! only how normalized text reads, never what it means.

/// Sorted (byte order), upper case: searched with a binary search.
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
    KEYWORDS.binary_search_by(|k| k.as_bytes().cmp(up)).is_ok()
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
    fn lookup_ignores_case() {
        assert!(is_keyword("select"));
        assert!(is_keyword("SeLeCt"));
        assert!(is_keyword("WHERE"));
        assert!(!is_keyword("orders"));
        assert!(!is_keyword("now"));
        assert!(!is_keyword("é"));
    }
}
