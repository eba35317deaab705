//! Property tests: no input makes the analysis panic, normalization is a
//! fixed point on its own output, and layout (whitespace, comments, case)
//! never changes a fingerprint.

use pgpulse_sql::{Analyzer, analyze, fingerprint, normalize};
use proptest::prelude::*;

/// Tokens that can be separated by any whitespace or comment without
/// changing how PostgreSQL (or our lexer) splits them.
const VOCAB: &[&str] = &[
    "SELECT",
    "select",
    "FROM",
    "WHERE",
    "AND",
    "IN",
    "VALUES",
    "INSERT",
    "INTO",
    "UPDATE",
    "SET",
    "t",
    "T",
    "orders_2024_01",
    "s.t",
    "\"Quoted\"",
    "\"plain\"",
    "a",
    "b",
    "count",
    "(",
    ")",
    ",",
    "=",
    "<>",
    "->>",
    "@>",
    "-",
    "+",
    "*",
    "::",
    "int",
    "1",
    "42",
    "-7",
    "1.5e-3",
    ".5",
    "0x1F",
    "'str'",
    "'it''s'",
    "E'\\''",
    "$$ ' $$",
    "$q$ x $q$",
    "$1",
    "$2",
    "TRUE",
    "NULL",
    "[",
    "]",
    ";",
    "ARRAY",
    "JOIN",
    "ON",
    "FOR",
    "UPDATE",
];

const SEPARATORS: &[&str] = &[
    " ",
    "  ",
    "\t",
    " /* c */ ",
    "/* /* nested */ */",
    " -- line\n",
    " \t ",
];

fn tokens() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_never_panics(s in any::<String>()) {
        let n = normalize(&s);
        prop_assert_eq!(fingerprint(&s), n.fingerprint);
        let a = analyze(&s);
        prop_assert_eq!(a.fingerprint, n.fingerprint);
    }

    #[test]
    fn sql_like_strings_never_panic(s in "[a-zA-Z0-9_ '\"$;:.,()\\[\\]*/+<>=!@#%^&|`?~\\\\-]{0,80}") {
        let n = normalize(&s);
        prop_assert_eq!(fingerprint(&s), n.fingerprint);
        let a = Analyzer::new(8).analyze(&s);
        prop_assert_eq!(a.fingerprint, n.fingerprint);
        // Uncertain statements that are not clearly reads must say they may write.
        if !a.certain && a.kind != pgpulse_sql::StatementKind::Select {
            prop_assert!(a.may_write || !a.tables_written.is_empty() || !matches!(
                a.kind,
                pgpulse_sql::StatementKind::Insert
                    | pgpulse_sql::StatementKind::Update
                    | pgpulse_sql::StatementKind::Delete
                    | pgpulse_sql::StatementKind::Merge
                    | pgpulse_sql::StatementKind::Ddl
            ));
        }
    }

    #[test]
    fn normalization_is_idempotent(toks in tokens()) {
        let sql = toks.join(" ");
        let once = normalize(&sql);
        let twice = normalize(&once.text);
        prop_assert_eq!(&twice.text, &once.text, "input: {}", sql);
        prop_assert_eq!(twice.fingerprint, once.fingerprint);
    }

    #[test]
    fn layout_does_not_change_the_fingerprint(
        toks in tokens(),
        seps in prop::collection::vec(prop::sample::select(SEPARATORS), 40),
    ) {
        let plain = toks.join(" ");
        let mut spaced = String::from(" ");
        for (tok, sep) in toks.iter().zip(&seps) {
            spaced.push_str(tok);
            spaced.push_str(sep);
        }
        prop_assert_eq!(fingerprint(&plain), fingerprint(&spaced), "{} vs {}", plain, spaced);
    }

    #[test]
    fn constants_do_not_change_the_fingerprint(a in any::<i64>(), b in "[a-z ']{0,12}") {
        let quoted = b.replace('\'', "''");
        let x = format!("SELECT * FROM clients WHERE id = {a} AND name = '{quoted}'");
        prop_assert_eq!(fingerprint(&x), fingerprint("SELECT * FROM clients WHERE id = 1 AND name = 'x'"));
    }
}
