//! Parsing what the change feed receives: pgoutput messages (protocol
//! version 1), the table lists of `test_decoding` lines, and trigger
//! payloads. Every parser returns `None` on anything unexpected; the caller
//! then invalidates the whole database. Nothing here panics on any input.

/// One pgoutput message, reduced to what invalidation needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Message {
    /// `R`: relation `relid` is named `name` (schema dropped: the cache
    /// matches names without their schema).
    Relation {
        /// The relation's OID.
        relid: u32,
        /// `pg_class.relname`.
        name: String,
    },
    /// `I`, `U`, `D`: a row of `relid` changed.
    Change(u32),
    /// `T`: these relations were truncated.
    Truncate(Vec<u32>),
    /// `B`: a transaction begins, with its xid (the poll cuts the message
    /// to tag and xid).
    Begin(u32),
    /// `C`, `O`, `Y`, `M` (and a `B` without its xid): nothing to
    /// invalidate.
    Ignored,
}

/// Parses one pgoutput message; `None` if it is malformed or unknown.
pub(super) fn pgoutput(msg: &[u8]) -> Option<Message> {
    let (&tag, body) = msg.split_first()?;
    match tag {
        b'R' => {
            let relid = u32_at(body, 0)?;
            let rest = body.get(4..)?;
            let (_schema, rest) = cstring(rest)?;
            let (name, _) = cstring(rest)?;
            // Relation names arrive in the server encoding: a name that is
            // not UTF-8 cannot be matched to the catalog.
            let name = std::str::from_utf8(name).ok()?;
            if name.is_empty() {
                return None;
            }
            Some(Message::Relation {
                relid,
                name: name.to_owned(),
            })
        }
        // The server-side query may cut these to their first 5 bytes (tag
        // and relation id): the rest is row data.
        b'I' | b'U' | b'D' => u32_at(body, 0).map(Message::Change),
        b'T' => {
            let n = usize::try_from(u32_at(body, 0)?).ok()?;
            // nrels, options byte, nrels relation ids, nothing after.
            if body.len() != 5usize.checked_add(n.checked_mul(4)?)? {
                return None;
            }
            (0..n)
                .map(|i| u32_at(body, 5 + 4 * i))
                .collect::<Option<Vec<_>>>()
                .map(Message::Truncate)
        }
        // Cut to its xid by the poll; whole: final LSN, time, xid.
        b'B' if body.len() == 4 => u32_at(body, 0).map(Message::Begin),
        b'B' if body.len() == 20 => u32_at(body, 16).map(Message::Begin),
        b'B' | b'C' | b'O' | b'Y' | b'M' => Some(Message::Ignored),
        _ => None,
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// A NUL-terminated string and what follows it.
fn cstring(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = b.iter().position(|&c| c == 0)?;
    Some((&b[..end], &b[end + 1..]))
}

/// The relation names of a `test_decoding` change line from its head, as
/// the feed's query cuts it out (everything before the first `": "`):
/// `table public.t` for a row change, `table public.a, "My Schema"."B"` for
/// a TRUNCATE. `None` when the head does not parse (a quoted name that
/// contains `": "` was cut inside its quotes; any unexpected line).
pub(super) fn test_decoding_head(head: &str) -> Option<Vec<String>> {
    test_decoding_tables(head.strip_prefix("table ")?)
}

/// The relation names of a `test_decoding` change line's table list
/// (a [`test_decoding_head`] without `table `): `public.t` for a row change,
/// `public.a, "My Schema"."B"` for a TRUNCATE (names quoted by
/// `quote_identifier`). Returns the relation names without their schemas.
pub(super) fn test_decoding_tables(list: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = list;
    loop {
        let (_schema, r) = identifier(rest)?;
        let r = r.strip_prefix('.')?;
        let (name, r) = identifier(r)?;
        out.push(name);
        if r.is_empty() {
            return Some(out);
        }
        rest = r.strip_prefix(", ")?;
    }
}

/// One identifier as `quote_identifier` prints it, and what follows.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(mut r) = s.strip_prefix('"') {
        let mut out = String::new();
        loop {
            let i = r.find('"')?;
            out.push_str(&r[..i]);
            r = &r[i + 1..];
            match r.strip_prefix('"') {
                Some(after) => {
                    out.push('"');
                    r = after;
                }
                None if out.is_empty() => return None,
                None => return Some((out, r)),
            }
        }
    }
    let end = s.find(['.', ',', ':', ' ', '"']).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].to_owned(), &s[end..]))
}

/// A relation name (exactly as in `pg_class.relname`) as
/// [`Invalidator::tables`](crate::Invalidator::tables) takes it: quoted when
/// it contains a dot. `None` for a name the cache's name matching cannot
/// represent (one containing `"`): the caller invalidates the database.
pub(super) fn table_ref(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('"') {
        None
    } else if name.contains('.') {
        Some(format!("\"{name}\""))
    } else {
        Some(name.to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn relation(relid: u32, schema: &str, name: &str) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&relid.to_be_bytes());
        m.extend_from_slice(schema.as_bytes());
        m.push(0);
        m.extend_from_slice(name.as_bytes());
        m.push(0);
        m.extend_from_slice(&[b'd', 0, 0]); // replica identity, 0 columns
        m
    }

    #[test]
    fn pgoutput_messages() {
        assert_eq!(
            pgoutput(&relation(16394, "public", "pk")),
            Some(Message::Relation {
                relid: 16394,
                name: "pk".into()
            })
        );
        // Real bytes from PostgreSQL 15: INSERT into relation 0x400a.
        let insert = [0x49, 0, 0, 0x40, 0x0a, b'N', 0, 2, b't', 0, 0, 0, 1, b'2'];
        assert_eq!(pgoutput(&insert), Some(Message::Change(0x400a)));
        assert_eq!(pgoutput(&insert[..5]), Some(Message::Change(0x400a)));
        assert_eq!(pgoutput(b"U\0\0\0\x07"), Some(Message::Change(7)));
        assert_eq!(pgoutput(b"D\0\0\0\x07"), Some(Message::Change(7)));
        assert_eq!(
            pgoutput(&[b'T', 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 2]),
            Some(Message::Truncate(vec![1, 2]))
        );
        // Begin, cut by the poll (tag, xid) or whole (LSN, time, xid).
        assert_eq!(pgoutput(b"B\0\0\x01\x02"), Some(Message::Begin(0x102)));
        let mut begin = vec![b'B'];
        begin.extend_from_slice(&[0; 16]);
        begin.extend_from_slice(&7u32.to_be_bytes());
        assert_eq!(pgoutput(&begin), Some(Message::Begin(7)));
        for tag in [b'B', b'C', b'O', b'Y', b'M'] {
            assert_eq!(pgoutput(&[tag, 1, 2]), Some(Message::Ignored));
        }
    }

    #[test]
    fn malformed_pgoutput_is_refused_not_panicked() {
        let bad: &[&[u8]] = &[
            b"",
            b"I",
            b"I\0\0\0",
            b"R\0\0\0\x01public",             // no NUL after the schema
            b"R\0\0\0\x01public\0t",          // no NUL after the name
            b"R\0\0\0\x01public\0\0",         // empty name
            b"R\0\0\0\x01public\0\xff\xfe\0", // not UTF-8
            &[b'T', 0, 0, 0, 2, 0, 0, 0, 0, 1],
            &[b'T', 0, 0, 0, 1, 0, 0, 0, 0, 1, 9],
            &[b'T', 0xff, 0xff, 0xff, 0xff, 0],
            b"Zwhatever",
        ];
        for m in bad {
            assert_eq!(pgoutput(m), None, "{m:?}");
        }
        // Every prefix of a valid message parses or is refused.
        let r = relation(1, "s", "t");
        for i in 0..r.len() {
            let _ = pgoutput(&r[..i]);
        }
    }

    #[test]
    fn test_decoding_lists() {
        assert_eq!(test_decoding_tables("public.t").unwrap(), ["t"]);
        assert_eq!(
            test_decoding_tables(r#"public.pk, "We.ird"."Ta, b:le", public.nopk"#).unwrap(),
            ["pk", "Ta, b:le", "nopk"]
        );
        assert_eq!(
            test_decoding_tables(r#""a""b"."c""d""""#).unwrap(),
            [r#"c"d""#]
        );
        for bad in [
            "",
            "t",
            "public.",
            ".t",
            "public.t,",
            "public.t, ",
            "public.t ,s.u",
            r#""unterminated.t"#,
            r#"s."""#,
            "public.t: INSERT:",
        ] {
            assert_eq!(test_decoding_tables(bad), None, "{bad}");
        }
    }

    /// What the feed's poll query does to a line: `split_part(data, ': ', 1)`.
    fn head(line: &str) -> &str {
        line.split(": ").next().unwrap_or(line)
    }

    #[test]
    fn test_decoding_heads() {
        let line = "table public.pgbench_accounts: UPDATE: aid[integer]:7 abalance[integer]:-5";
        assert_eq!(
            test_decoding_head(head(line)).unwrap(),
            ["pgbench_accounts"]
        );
        let line = r#"table public.a, "My Schema"."B": TRUNCATE: cascade"#;
        assert_eq!(test_decoding_head(head(line)).unwrap(), ["a", "B"]);
        let line = r#"table public."My.Table": INSERT: id[integer]:1"#;
        assert_eq!(test_decoding_head(head(line)).unwrap(), ["My.Table"]);
        // A name with ": " inside (quoted by quote_identifier): the cut lands
        // inside the quotes, which never parses, so the database is
        // invalidated rather than a wrong table.
        for line in [
            r#"table public."a: b": INSERT: id[integer]:1"#,
            r#"table public."x: INSERT: y": INSERT: id[integer]:1"#,
            r#"table public."p"": q": DELETE: id[integer]:1"#,
            r#"table public.a, public."b: c": TRUNCATE: (no-flags)"#,
            r#"table "s: t".u: INSERT: id[integer]:1"#,
        ] {
            assert_eq!(test_decoding_head(head(line)), None, "{line}");
        }
        for bad in [
            "",
            "table ",
            "BEGIN",
            "COMMIT",
            "message: x",
            "table public.t",
        ] {
            assert_eq!(
                test_decoding_head(head(bad)).is_some(),
                bad == "table public.t",
                "{bad}"
            );
        }
    }

    #[test]
    fn table_refs_round_trip_through_bare_name() {
        for name in ["t", "My Table", "a.b", "ünï"] {
            let r = table_ref(name).unwrap();
            assert_eq!(crate::catalog::bare_name(&r), name);
        }
        assert_eq!(table_ref(r#"a"b"#), None);
        assert_eq!(table_ref(""), None);
    }
}
