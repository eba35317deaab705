//! Feeds arbitrary UTF-8 to the normalizer and the analyser: nothing may
//! panic, and the invariants the cache relies on must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgpulse_sql::{StatementKind, analyze, fingerprint, normalize};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let n = normalize(sql);
    assert_eq!(fingerprint(sql), n.fingerprint);
    let a = analyze(sql);
    assert_eq!(a.fingerprint, n.fingerprint);
    // A statement that certainly writes nothing must not list written tables.
    if a.certain && !a.may_write {
        assert!(a.tables_written.is_empty(), "{sql:?}");
    }
    // Writing kinds always say they may write.
    if matches!(
        a.kind,
        StatementKind::Insert | StatementKind::Update | StatementKind::Delete | StatementKind::Merge
    ) {
        assert!(a.may_write, "{sql:?}");
    }
});
