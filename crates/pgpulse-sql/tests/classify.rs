//! End-to-end classification through the public API: kinds, table sets,
//! certainty and the flags the proxy and the cache rely on.

use pgpulse_sql::{
    Analysis, Analyzer, StatementKind as S, TableRef, analyze, fingerprint, normalize,
};

fn names(v: &[TableRef]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(ToString::to_string).collect();
    out.sort();
    out
}

fn reads(a: &Analysis) -> Vec<String> {
    names(&a.tables_read)
}

fn writes(a: &Analysis) -> Vec<String> {
    names(&a.tables_written)
}

#[test]
fn pgbench_tpcb_statements() {
    let upd = analyze("UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 48213;");
    assert_eq!(upd.kind, S::Update);
    assert_eq!(writes(&upd), ["pgbench_accounts"]);
    assert!(upd.certain && upd.may_write && !upd.is_read_only());
    assert_eq!(
        &*upd.normalized,
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
    );

    let sel = analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;");
    assert_eq!(sel.kind, S::Select);
    assert_eq!(reads(&sel), ["pgbench_accounts"]);
    assert!(sel.is_read_only());

    let ins = analyze(
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, 2341, CURRENT_TIMESTAMP);",
    );
    assert_eq!(ins.kind, S::Insert);
    assert_eq!(writes(&ins), ["pgbench_history"]);
    assert!(reads(&ins).is_empty());
    assert_eq!(
        &*ins.normalized,
        "INSERT INTO pgbench_history(tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)"
    );

    // The extended-protocol form has the same shape.
    let ext = analyze("SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    assert_eq!(ext.fingerprint, sel.fingerprint);
    assert!(analyze("BEGIN;").is_transaction_control());
    assert_eq!(analyze("END;").kind, S::Commit);
}

#[test]
fn joins_subqueries_unions_read_every_table() {
    let a = analyze(
        "SELECT c.first_name, t.name FROM appointments a \
         JOIN clients c ON c.id = a.client_id LEFT JOIN treatments t ON t.id = a.treatment_id \
         WHERE a.provider_id IN (SELECT id FROM providers WHERE active) \
         AND EXISTS (SELECT 1 FROM invoices i WHERE i.appointment_id = a.id) \
         UNION ALL SELECT name, NULL FROM spa.rooms",
    );
    assert_eq!(
        reads(&a),
        [
            "appointments",
            "clients",
            "invoices",
            "providers",
            "spa.rooms",
            "treatments"
        ]
    );
    assert!(a.tables_written.is_empty());
    assert!(a.is_read_only());
}

#[test]
fn ctes_and_data_modifying_ctes() {
    let a = analyze(
        "WITH busy AS (SELECT provider_id FROM appointments) SELECT * FROM busy JOIN providers p ON true",
    );
    assert_eq!(reads(&a), ["appointments", "providers"]);
    assert!(a.is_read_only());

    let a = analyze(
        "WITH done AS (UPDATE appointments SET status = 'done' WHERE id = 5 RETURNING client_id) \
         SELECT * FROM clients WHERE id IN (SELECT client_id FROM done)",
    );
    assert_eq!(a.kind, S::Select);
    assert_eq!(writes(&a), ["appointments"]);
    assert!(a.may_write);
    assert!(!a.is_read_only());
}

#[test]
fn dml_with_sources() {
    let a = analyze(
        "INSERT INTO archive.invoices SELECT * FROM invoices WHERE paid_at < now() - interval '1 year'",
    );
    assert_eq!(
        (reads(&a), writes(&a)),
        (
            vec!["invoices".to_owned()],
            vec!["archive.invoices".to_owned()]
        )
    );
    assert_eq!(a.functions, ["now"]);

    let a =
        analyze("UPDATE inventory i SET qty = i.qty - u.used FROM usage u WHERE u.item_id = i.id");
    assert_eq!(
        (reads(&a), writes(&a)),
        (vec!["usage".to_owned()], vec!["inventory".to_owned()])
    );

    let a = analyze("DELETE FROM sessions s USING users u WHERE s.user_id = u.id AND u.disabled");
    assert_eq!(
        (reads(&a), writes(&a)),
        (vec!["users".to_owned()], vec!["sessions".to_owned()])
    );

    let a = analyze(
        "MERGE INTO inventory t USING deliveries d ON t.sku = d.sku \
         WHEN MATCHED THEN UPDATE SET qty = t.qty + d.qty WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (d.sku, d.qty)",
    );
    assert_eq!(a.kind, S::Merge);
    assert_eq!(
        (reads(&a), writes(&a)),
        (vec!["deliveries".to_owned()], vec!["inventory".to_owned()])
    );

    let a = analyze(
        "INSERT INTO clients (email) VALUES ('a@b.c') ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email",
    );
    assert_eq!(writes(&a), ["clients"]);
    assert!(a.certain);
}

#[test]
fn copy_truncate_and_ddl() {
    let a = analyze("COPY clients (id, email) FROM STDIN WITH (FORMAT csv)");
    assert_eq!(
        a.kind,
        S::Copy {
            from: true,
            to: false
        }
    );
    assert_eq!(writes(&a), ["clients"]);
    assert!(a.may_write);

    let a = analyze("COPY (SELECT * FROM invoices) TO STDOUT");
    assert_eq!(
        a.kind,
        S::Copy {
            from: false,
            to: true
        }
    );
    assert_eq!(reads(&a), ["invoices"]);
    assert!(!a.may_write);

    for (sql, w) in [
        ("TRUNCATE TABLE audit_log", "audit_log"),
        ("ALTER TABLE clients ADD COLUMN vip boolean", "clients"),
        ("DROP TABLE old_stuff", "old_stuff"),
        (
            "CREATE INDEX CONCURRENTLY ix ON appointments (starts_at)",
            "appointments",
        ),
        ("COMMENT ON TABLE clients IS 'people'", "clients"),
        ("REFRESH MATERIALIZED VIEW daily_revenue", "daily_revenue"),
        ("CREATE TABLE t2 AS SELECT * FROM clients", "t2"),
        ("SELECT * INTO t3 FROM clients", "t3"),
        ("VACUUM FULL clients", "clients"),
        ("CLUSTER clients USING clients_pkey", "clients"),
        ("REINDEX TABLE clients", "clients"),
    ] {
        let a = analyze(sql);
        assert!(a.may_write, "{sql}");
        assert!(a.certain, "{sql}");
        assert_eq!(writes(&a), [w], "{sql}");
    }
    assert_eq!(analyze("SELECT * INTO t3 FROM clients").kind, S::Ddl);
    assert_eq!(analyze("VACUUM FULL clients").kind, S::Maintenance);
}

#[test]
fn uncertain_statements_may_write() {
    for sql in [
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "GRANT SELECT ON clients TO reporting",
        "DO $$ BEGIN DELETE FROM clients; END $$",
        "CALL archive_old(30)",
        "EXECUTE upd(1, 2)",
        "CREATE PUBLICATION p FOR ALL TABLES",
        "VACUUM FULL",
    ] {
        let a = analyze(sql);
        assert!(!a.certain, "{sql}");
        assert!(a.may_write, "{sql}");
        assert!(a.uncertain_reason.is_some(), "{sql}");
        assert!(!a.is_read_only(), "{sql}");
    }
    // Plain VACUUM/ANALYZE change no data.
    let a = analyze("VACUUM (ANALYZE) clients");
    assert!(a.certain && !a.may_write);
}

#[test]
fn transaction_control_and_session_statements() {
    for (sql, k) in [
        ("BEGIN ISOLATION LEVEL REPEATABLE READ", S::Begin),
        ("COMMIT", S::Commit),
        ("ROLLBACK", S::Rollback),
        ("SAVEPOINT a", S::Savepoint),
        ("RELEASE SAVEPOINT a", S::Release),
        ("ROLLBACK TO SAVEPOINT a", S::RollbackTo),
    ] {
        let a = analyze(sql);
        assert_eq!(a.kind, k, "{sql}");
        assert!(
            a.is_transaction_control() && a.certain && !a.may_write,
            "{sql}"
        );
    }
    let a = analyze("SET LOCAL search_path TO tenant_7, public");
    assert_eq!(
        a.kind,
        S::Set {
            name: "search_path".into(),
            value: "tenant_7, public".into(),
            local: true
        }
    );
    assert!(a.certain && !a.may_write && !a.is_transaction_control());
    assert_eq!(analyze("RESET ALL").kind, S::Reset { name: None });
    let show = analyze("SHOW server_version");
    assert_eq!(show.kind, S::Show);
    assert!(show.is_read_only());
    for (sql, k) in [
        ("LISTEN events", S::Listen),
        ("NOTIFY events, 'x'", S::Notify),
        ("UNLISTEN *", S::Unlisten),
        ("DISCARD ALL", S::Discard),
        (
            "PREPARE q(int) AS SELECT * FROM clients WHERE id = $1",
            S::Prepare,
        ),
        ("DEALLOCATE q", S::Deallocate),
        ("LOCK TABLE clients IN SHARE MODE", S::Lock),
    ] {
        let a = analyze(sql);
        assert_eq!(a.kind, k, "{sql}");
        assert!(a.certain && !a.may_write, "{sql}");
    }
}

#[test]
fn explain_runs_only_with_analyze() {
    let a = analyze("EXPLAIN DELETE FROM clients");
    assert_eq!(a.kind, S::Explain);
    assert!(!a.may_write && a.tables_written.is_empty());
    let a = analyze("EXPLAIN (ANALYZE, BUFFERS) DELETE FROM clients WHERE id = 1");
    assert!(a.may_write);
    assert_eq!(writes(&a), ["clients"]);
    let a = analyze("EXPLAIN ANALYZE SELECT * FROM clients");
    assert!(!a.may_write && a.certain);
    assert!(!a.is_read_only(), "EXPLAIN output is not a cacheable read");
}

#[test]
fn locking_functions_and_catalogs() {
    for clause in [
        "FOR UPDATE",
        "FOR SHARE",
        "FOR NO KEY UPDATE",
        "FOR KEY SHARE SKIP LOCKED",
    ] {
        let a = analyze(&format!("SELECT * FROM appointments WHERE id = 1 {clause}"));
        assert!(a.locking, "{clause}");
        assert!(a.certain, "{clause}");
        assert!(!a.is_read_only(), "{clause}");
    }
    assert!(!analyze("SELECT * FROM appointments").locking);

    let a = analyze(
        "SELECT now(), random(), nextval('invoice_no'), Public.Calc_Tax(total) FROM invoices",
    );
    assert_eq!(a.functions, ["now", "random", "nextval", "public.calc_tax"]);

    assert!(analyze("SELECT relname FROM pg_catalog.pg_class").touches_catalog);
    assert!(analyze("SELECT * FROM pg_stat_activity").touches_catalog);
    assert!(
        analyze("SELECT * FROM information_schema.columns WHERE table_name = 'x'").touches_catalog
    );
    assert!(!analyze("SELECT pg_backend_pid()").touches_catalog);
    assert!(!analyze("SELECT * FROM clients").touches_catalog);
}

#[test]
fn multi_statement_strings() {
    let a = analyze(
        "BEGIN; UPDATE clients SET vip = true WHERE id = 1; SELECT * FROM invoices; COMMIT;",
    );
    assert_eq!(a.kind, S::Multi);
    assert_eq!(a.statement_count, 4);
    assert_eq!(a.parts.len(), 4);
    assert_eq!(a.parts[1].kind, S::Update);
    assert_eq!(writes(&a), ["clients"]);
    assert_eq!(reads(&a), ["invoices"]);
    assert!(a.may_write && a.certain);
    assert!(!a.is_read_only());
    assert_eq!(
        &*a.normalized,
        "BEGIN; UPDATE clients SET vip = TRUE WHERE id = $1; SELECT * FROM invoices; COMMIT"
    );

    let e = analyze(" ; -- nothing\n");
    assert_eq!(e.kind, S::Empty);
    assert_eq!(e.statement_count, 0);
    assert!(e.certain && !e.may_write);
}

#[test]
fn unparsable_reads_stay_uncertain_and_writes_are_guessed() {
    // sqlparser cannot parse this PostgreSQL syntax; the lexer still knows
    // it is an UPDATE of `clients`.
    let a = analyze(
        "UPDATE clients SET (a, b) = ROW(1, 2) WHERE ctid = ANY(SELECT ctid FROM clients TABLESAMPLE BERNOULLI (1) REPEATABLE (7)) !!",
    );
    assert!(!a.certain);
    assert!(a.may_write);
    assert!(writes(&a).contains(&"clients".to_owned()));
}

#[test]
fn analyzer_and_free_functions_agree() {
    let an = Analyzer::new(64);
    let sql = "SELECT * FROM clients WHERE email = 'x@y.z'";
    let memo = an.analyze(sql);
    let direct = analyze(sql);
    assert_eq!(memo.fingerprint, direct.fingerprint);
    assert_eq!(memo.fingerprint, fingerprint(sql));
    assert_eq!(&*memo.normalized, normalize(sql).text);
    assert_eq!(memo.tables_read, direct.tables_read);
}

#[test]
fn corpus_entries_are_single_statements_and_mostly_certain() {
    let entries: Vec<&str> = include_str!("corpus.sql")
        .split("\n-- @@\n")
        .map(str::trim)
        .filter(|e| analyze(e).kind != S::Empty)
        .collect();
    assert!(entries.len() >= 200);
    let mut uncertain = Vec::new();
    for e in &entries {
        let a = analyze(e);
        assert_eq!(a.statement_count, 1, "{e}");
        assert_eq!(a.fingerprint, fingerprint(e), "{e}");
        if !a.certain {
            // Only statements whose effect is invisible in their text may
            // stay uncertain: code (DO, CALL, EXECUTE, functions), privileges
            // and objects without tables.
            assert!(
                matches!(a.kind, S::Ddl | S::Do | S::Call | S::Execute),
                "unexpectedly uncertain: {e}: {:?}",
                a.uncertain_reason
            );
            assert!(a.may_write, "{e}");
            uncertain.push(*e);
        }
        if matches!(a.kind, S::Insert | S::Update | S::Delete | S::Merge) {
            assert!(!a.tables_written.is_empty(), "{e}");
        }
    }
    assert!(uncertain.len() <= 15, "{uncertain:#?}");
}
