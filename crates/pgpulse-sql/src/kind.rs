//! The quick, keyword-based statement classifier that runs on lexer tokens
//! (no parse): [`StatementKind`], splitting a string into statements, and
//! the facts a kind implies (`SET` name and value, `EXPLAIN ANALYZE`,
//! `SELECT ... INTO`, data-modifying CTEs).

use crate::lexer::{Token, TokenKind as K};

/// What kind of statement a SQL text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `TABLE t`, or `WITH ... SELECT`.
    Select,
    /// `INSERT` (also `WITH ... INSERT`).
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `MERGE`.
    Merge,
    /// Schema changes and privileges: `CREATE`, `ALTER`, `DROP`, `TRUNCATE`,
    /// `COMMENT`, `GRANT`, `REVOKE`, `REFRESH MATERIALIZED VIEW`, and
    /// `SELECT ... INTO` (which creates a table).
    Ddl,
    /// `COPY`: `from` = `COPY t FROM ...` (writes into the table), `to` =
    /// `COPY ... TO ...` (reads). Both false if the direction is unclear.
    Copy {
        /// `COPY ... FROM` (STDIN, a file or a program): a write.
        from: bool,
        /// `COPY ... TO` (STDOUT, a file or a program): a read.
        to: bool,
    },
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT` (the whole transaction).
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint,
    /// `RELEASE [SAVEPOINT] name`.
    Release,
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo,
    /// `PREPARE name AS ...` (SQL-level prepared statement).
    Prepare,
    /// `EXECUTE name (...)`: what it runs is not known from its text.
    Execute,
    /// `DEALLOCATE [PREPARE] name | ALL`.
    Deallocate,
    /// `SET [SESSION | LOCAL] name { TO | = } value` and the special forms
    /// (`SET TIME ZONE` → `timezone`, `SET ROLE` → `role`,
    /// `SET SESSION AUTHORIZATION` → `session_authorization`).
    Set {
        /// The parameter name, lower case (dotted names kept whole).
        name: String,
        /// The value as written (trimmed source text).
        value: String,
        /// `SET LOCAL` (lasts until the end of the transaction).
        local: bool,
    },
    /// `RESET name` (`Some`) or `RESET ALL` (`None`).
    Reset {
        /// The parameter name, lower case; `None` for `RESET ALL`.
        name: Option<String>,
    },
    /// `SHOW name`.
    Show,
    /// `LISTEN channel`.
    Listen,
    /// `NOTIFY channel [, payload]`.
    Notify,
    /// `UNLISTEN channel | *`.
    Unlisten,
    /// `DISCARD ALL | PLANS | SEQUENCES | TEMP`.
    Discard,
    /// `EXPLAIN [ANALYZE] statement`.
    Explain,
    /// `VACUUM`, `ANALYZE`, `REINDEX`, `CLUSTER`, `CHECKPOINT`.
    Maintenance,
    /// `LOCK [TABLE] name`.
    Lock,
    /// `CALL procedure(...)`.
    Call,
    /// `DO $$ ... $$`.
    Do,
    /// Any other utility statement (`DECLARE`, `FETCH`, `COMMIT PREPARED`...).
    Other,
    /// No statement at all (only whitespace, comments or semicolons).
    Empty,
    /// Several statements in one string; see `Analysis::parts`.
    Multi,
}

/// What the quick classifier found for one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Quick {
    pub kind: StatementKind,
    /// `EXPLAIN` with the `ANALYZE` option (the statement runs).
    pub explain_analyze: bool,
    /// A CTE body is `INSERT`/`UPDATE`/`DELETE`/`MERGE`.
    pub cte_writes: bool,
    /// `SELECT ... INTO` (creates a table).
    pub select_into: bool,
}

/// Splits a token list into statements at `;` (empty statements dropped);
/// returns token index ranges.
pub(crate) fn split_statements(toks: &[Token]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.kind == K::Semicolon {
            if i > start {
                out.push(start..i);
            }
            start = i + 1;
        }
    }
    if toks.len() > start {
        out.push(start..toks.len());
    }
    out
}

/// Token-walking helper over one statement.
struct Cursor<'a> {
    src: &'a str,
    toks: &'a [Token],
}

impl<'a> Cursor<'a> {
    fn word(&self, i: usize) -> Option<&'a str> {
        self.toks
            .get(i)
            .filter(|t| t.kind == K::Word)
            .map(|t| t.text(self.src))
    }

    fn is(&self, i: usize, w: &str) -> bool {
        self.word(i).is_some_and(|x| x.eq_ignore_ascii_case(w))
    }

    fn kind(&self, i: usize) -> Option<K> {
        self.toks.get(i).map(|t| t.kind)
    }

    /// Index just past the parenthesis group opening at `i`.
    fn skip_group(&self, i: usize) -> usize {
        let mut depth = 0usize;
        for (j, t) in self.toks.iter().enumerate().skip(i) {
            match t.kind {
                K::LParen => depth += 1,
                K::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
        }
        self.toks.len()
    }

    /// Whether `w` occurs as a word at parenthesis depth 0 from `from`.
    fn top_level_word(&self, from: usize, w: &str) -> Option<usize> {
        let mut depth = 0usize;
        for (j, t) in self.toks.iter().enumerate().skip(from) {
            match t.kind {
                K::LParen => depth += 1,
                K::RParen => depth = depth.saturating_sub(1),
                K::Word if depth == 0 && t.text(self.src).eq_ignore_ascii_case(w) => {
                    return Some(j);
                }
                _ => {}
            }
        }
        None
    }

    /// Source text from token `i` to the end, trimmed.
    fn rest(&self, i: usize) -> String {
        match (self.toks.get(i), self.toks.last()) {
            (Some(a), Some(b)) => self.src.get(a.start..b.end).unwrap_or("").trim().to_owned(),
            _ => String::new(),
        }
    }
}

/// Classifies one statement (tokens without the trailing `;`).
pub(crate) fn classify(src: &str, toks: &[Token]) -> Quick {
    let c = Cursor { src, toks };
    let mut i = 0;
    while c.kind(i) == Some(K::LParen) {
        i += 1;
    }
    let mut q = Quick {
        kind: StatementKind::Empty,
        explain_analyze: false,
        cte_writes: false,
        select_into: false,
    };
    if c.is(i, "with") {
        i = skip_ctes(&c, i + 1, &mut q.cte_writes);
    }
    q.kind = match c.word(i).map(str::to_ascii_lowercase).as_deref() {
        None if toks.is_empty() => StatementKind::Empty,
        None => StatementKind::Other,
        Some(w) => kind_of_word(&c, i, w, &mut q),
    };
    q
}

/// Skips `[RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (body), ...`;
/// returns the index of the main statement's first word.
fn skip_ctes(c: &Cursor<'_>, mut i: usize, writes: &mut bool) -> usize {
    if c.is(i, "recursive") {
        i += 1;
    }
    while i < c.toks.len() {
        i += 1; // the CTE name
        if c.kind(i) == Some(K::LParen) {
            i = c.skip_group(i);
        }
        while c.word(i).is_some() && !c.is(i, "select") {
            i += 1; // AS, NOT, MATERIALIZED
        }
        if c.kind(i) != Some(K::LParen) {
            return i;
        }
        let body = i + 1;
        if ["insert", "update", "delete", "merge"]
            .iter()
            .any(|w| c.is(body, w))
        {
            *writes = true;
        }
        i = c.skip_group(i);
        // SEARCH / CYCLE clauses: skip words until the comma or main verb.
        if c.kind(i) == Some(K::Comma) {
            i += 1;
        } else {
            return i;
        }
    }
    i
}

fn kind_of_word(c: &Cursor<'_>, i: usize, w: &str, q: &mut Quick) -> StatementKind {
    use StatementKind as S;
    match w {
        "select" => {
            q.select_into = c.top_level_word(i + 1, "into").is_some();
            if q.select_into { S::Ddl } else { S::Select }
        }
        "values" | "table" => S::Select,
        "insert" => S::Insert,
        "update" => S::Update,
        "delete" => S::Delete,
        "merge" => S::Merge,
        "create" | "alter" | "drop" | "truncate" | "comment" | "grant" | "revoke" | "refresh"
        | "security" | "import" | "reassign" => S::Ddl,
        "copy" => S::Copy {
            from: c.top_level_word(i + 1, "from").is_some(),
            to: c.top_level_word(i + 1, "to").is_some(),
        },
        "begin" | "start" => S::Begin,
        "commit" | "end" if c.is(i + 1, "prepared") => S::Other,
        "commit" | "end" => S::Commit,
        "rollback" if c.is(i + 1, "prepared") => S::Other,
        "rollback" | "abort" if c.top_level_word(i + 1, "to").is_some() => S::RollbackTo,
        "rollback" | "abort" => S::Rollback,
        "savepoint" => S::Savepoint,
        "release" => S::Release,
        "prepare" if c.is(i + 1, "transaction") => S::Other,
        "prepare" => S::Prepare,
        "execute" => S::Execute,
        "deallocate" => S::Deallocate,
        "set" => set_kind(c, i + 1),
        "reset" => reset_kind(c, i + 1),
        "show" => S::Show,
        "listen" => S::Listen,
        "notify" => S::Notify,
        "unlisten" => S::Unlisten,
        "discard" => S::Discard,
        "explain" => {
            q.explain_analyze = explain_analyze(c, i + 1);
            S::Explain
        }
        "vacuum" | "analyze" | "analyse" | "reindex" | "cluster" | "checkpoint" => S::Maintenance,
        "lock" => S::Lock,
        "call" => S::Call,
        "do" => S::Do,
        _ => S::Other,
    }
}

fn set_kind(c: &Cursor<'_>, mut i: usize) -> StatementKind {
    let mut local = false;
    if c.is(i, "local") {
        local = true;
        i += 1;
    } else if c.is(i, "session") && !c.is(i + 1, "authorization") && !c.is(i + 1, "characteristics")
    {
        i += 1;
    }
    let (name, value_at) = if c.is(i, "time") && c.is(i + 1, "zone") {
        ("timezone".to_owned(), i + 2)
    } else if c.is(i, "session") && c.is(i + 1, "authorization") {
        ("session_authorization".to_owned(), i + 2)
    } else {
        // A possibly dotted name (`myapp.tenant_id`).
        let mut name = String::new();
        let mut j = i;
        while let Some(t) = c
            .toks
            .get(j)
            .filter(|t| matches!(t.kind, K::Word | K::QuotedIdent))
        {
            name.push_str(&ident_value(t.text(c.src)));
            j += 1;
            if c.kind(j) != Some(K::Dot) {
                break;
            }
            name.push('.');
            j += 1;
        }
        (name, j)
    };
    let value_at = match c.toks.get(value_at) {
        Some(t) if t.kind == K::Operator && t.text(c.src) == "=" => value_at + 1,
        Some(_) if c.is(value_at, "to") => value_at + 1,
        _ => value_at,
    };
    StatementKind::Set {
        name,
        value: c.rest(value_at),
        local,
    }
}

fn reset_kind(c: &Cursor<'_>, i: usize) -> StatementKind {
    let name = if c.is(i, "all") {
        None
    } else if c.is(i, "time") && c.is(i + 1, "zone") {
        Some("timezone".to_owned())
    } else if c.is(i, "session") && c.is(i + 1, "authorization") {
        Some("session_authorization".to_owned())
    } else {
        Some(
            c.rest(i)
                .chars()
                .filter(|ch| !ch.is_whitespace())
                .collect::<String>(),
        )
        .map(|s| ident_value(&s))
    };
    StatementKind::Reset { name }
}

/// `EXPLAIN ANALYZE ...` or `EXPLAIN (ANALYZE [TRUE|ON|1], ...)`.
fn explain_analyze(c: &Cursor<'_>, i: usize) -> bool {
    if c.is(i, "analyze") || c.is(i, "analyse") {
        return true;
    }
    if c.kind(i) != Some(K::LParen) {
        return false;
    }
    let end = c.skip_group(i);
    (i + 1..end).any(|j| {
        (c.is(j, "analyze") || c.is(j, "analyse"))
            && !(c.is(j + 1, "false") || c.is(j + 1, "off"))
            && c.toks.get(j + 1).is_none_or(|t| t.text(c.src) != "0")
    })
}

/// An identifier's value: quoted → inner text with `""` undoubled, else
/// lower case.
pub(crate) fn ident_value(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => s.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::tokenize;
    use StatementKind as S;

    fn kind(sql: &str) -> StatementKind {
        classify(sql, &tokenize(sql)).kind
    }

    #[test]
    fn dml_and_queries() {
        assert_eq!(kind("SELECT 1"), S::Select);
        assert_eq!(kind("(select 1) union (select 2)"), S::Select);
        assert_eq!(kind("VALUES (1)"), S::Select);
        assert_eq!(kind("TABLE t"), S::Select);
        assert_eq!(kind("insert into t values (1)"), S::Insert);
        assert_eq!(kind("UPDATE t SET a = 1"), S::Update);
        assert_eq!(kind("DELETE FROM t"), S::Delete);
        assert_eq!(
            kind("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE"),
            S::Merge
        );
        assert_eq!(kind("SELECT * INTO new_t FROM t"), S::Ddl);
        assert_eq!(kind(""), S::Empty);
        assert_eq!(kind("-- nothing"), S::Empty);
    }

    #[test]
    fn with_clauses_find_the_main_verb() {
        let sql =
            "WITH RECURSIVE a(x) AS (SELECT 1), b AS MATERIALIZED (SELECT 2) SELECT * FROM a, b";
        assert_eq!(kind(sql), S::Select);
        let sql = "WITH d AS (DELETE FROM t RETURNING *) INSERT INTO log SELECT * FROM d";
        let q = classify(sql, &tokenize(sql));
        assert_eq!(q.kind, S::Insert);
        assert!(q.cte_writes);
        let sql = "WITH d AS NOT MATERIALIZED (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d";
        let q = classify(sql, &tokenize(sql));
        assert_eq!(q.kind, S::Select);
        assert!(q.cte_writes);
    }

    #[test]
    fn transaction_control() {
        assert_eq!(kind("BEGIN"), S::Begin);
        assert_eq!(
            kind("start transaction isolation level serializable"),
            S::Begin
        );
        assert_eq!(kind("COMMIT"), S::Commit);
        assert_eq!(kind("end"), S::Commit);
        assert_eq!(kind("ROLLBACK"), S::Rollback);
        assert_eq!(kind("abort"), S::Rollback);
        assert_eq!(kind("ROLLBACK TO SAVEPOINT s1"), S::RollbackTo);
        assert_eq!(kind("rollback work to s1"), S::RollbackTo);
        assert_eq!(kind("SAVEPOINT s1"), S::Savepoint);
        assert_eq!(kind("RELEASE SAVEPOINT s1"), S::Release);
        assert_eq!(kind("COMMIT PREPARED 'x'"), S::Other);
        assert_eq!(kind("PREPARE TRANSACTION 'x'"), S::Other);
    }

    #[test]
    fn set_and_reset() {
        let set = |name: &str, value: &str, local| S::Set {
            name: name.into(),
            value: value.into(),
            local,
        };
        assert_eq!(
            kind("SET search_path TO public, \"$user\""),
            set("search_path", "public, \"$user\"", false)
        );
        assert_eq!(
            kind("set local statement_timeout = '5s'"),
            set("statement_timeout", "'5s'", true)
        );
        assert_eq!(
            kind("SET SESSION TIME ZONE 'UTC'"),
            set("timezone", "'UTC'", false)
        );
        assert_eq!(kind("SET ROLE admin"), set("role", "admin", false));
        assert_eq!(
            kind("SET SESSION AUTHORIZATION bob"),
            set("session_authorization", "bob", false)
        );
        assert_eq!(
            kind("SET myapp.Tenant_Id = 42"),
            set("myapp.tenant_id", "42", false)
        );
        assert_eq!(kind("RESET ALL"), S::Reset { name: None });
        assert_eq!(
            kind("reset Search_Path"),
            S::Reset {
                name: Some("search_path".into())
            }
        );
    }

    #[test]
    fn utility_statements() {
        assert_eq!(
            kind("COPY t FROM STDIN"),
            S::Copy {
                from: true,
                to: false
            }
        );
        assert_eq!(
            kind("COPY (SELECT * FROM a) TO STDOUT"),
            S::Copy {
                from: false,
                to: true
            }
        );
        assert_eq!(kind("PREPARE p AS SELECT 1"), S::Prepare);
        assert_eq!(kind("EXECUTE p(1)"), S::Execute);
        assert_eq!(kind("DEALLOCATE ALL"), S::Deallocate);
        assert_eq!(kind("SHOW work_mem"), S::Show);
        assert_eq!(kind("LISTEN ch"), S::Listen);
        assert_eq!(kind("NOTIFY ch, 'x'"), S::Notify);
        assert_eq!(kind("UNLISTEN *"), S::Unlisten);
        assert_eq!(kind("DISCARD ALL"), S::Discard);
        assert_eq!(kind("VACUUM (ANALYZE) t"), S::Maintenance);
        assert_eq!(kind("ANALYZE t"), S::Maintenance);
        assert_eq!(kind("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"), S::Lock);
        assert_eq!(kind("CALL p(1)"), S::Call);
        assert_eq!(kind("DO $$ BEGIN END $$"), S::Do);
        assert_eq!(kind("DECLARE c CURSOR FOR SELECT 1"), S::Other);
        assert_eq!(kind("TRUNCATE t"), S::Ddl);
        assert_eq!(kind("create index on t (a)"), S::Ddl);
    }

    #[test]
    fn explain_analyze_option() {
        let ea = |s: &str| classify(s, &tokenize(s)).explain_analyze;
        assert!(ea("EXPLAIN ANALYZE SELECT 1"));
        assert!(ea("EXPLAIN (ANALYZE, BUFFERS) SELECT 1"));
        assert!(ea("EXPLAIN (ANALYZE true) SELECT 1"));
        assert!(!ea("EXPLAIN (ANALYZE false) SELECT 1"));
        assert!(!ea("EXPLAIN SELECT 1"));
    }

    #[test]
    fn splitting() {
        let sql = "SELECT 1; ; SELECT ';'; BEGIN";
        let toks = tokenize(sql);
        assert_eq!(split_statements(&toks).len(), 3);
        assert!(split_statements(&tokenize(" ; ;")).is_empty());
    }
}
