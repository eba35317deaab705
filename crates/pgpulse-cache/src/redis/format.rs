//! What pgpulse keeps in Redis: key names, the header stored in front of
//! every L2 entry, and the invalidation message published on the channel.
//! Shared by every instance: change `ENTRY_MAGIC` or the message version
//! when a layout changes, so instances of different versions never misread
//! each other (they then simply miss).
//!
//! Every key and the channel start with `pgpulse:{namespace}:` ([`Names`]):
//! deployments in front of different PostgreSQL clusters may share one
//! Redis (and pub/sub ignores the Redis database number) without sharing
//! entries, generations or invalidations.

use std::sync::Arc;

use crate::key::Key;

/// The names of one namespace's keys and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    namespace: String,
    prefix: String,
    /// `INCR`ed by every invalidation; its value travels in the message, so
    /// a subscriber can tell that it missed one: `pgpulse:{ns}:seq`.
    pub seq: String,
    /// The global epoch, part of every entry's generations (bumped when an
    /// instance lost track of which databases it invalidated):
    /// `pgpulse:{ns}:epoch`.
    pub epoch: String,
    /// The pub/sub channel of invalidations: `pgpulse:{ns}:inval`.
    pub channel: String,
}

impl Names {
    /// The names of `namespace` (see [`valid_namespace`]).
    pub fn new(namespace: &str) -> Names {
        let prefix = format!("pgpulse:{namespace}:");
        Names {
            namespace: namespace.to_owned(),
            seq: format!("{prefix}seq"),
            epoch: format!("{prefix}epoch"),
            channel: format!("{prefix}inval"),
            prefix,
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key of an L2 entry: `pgpulse:{ns}:e:{key hex}`.
    pub fn entry_key(&self, key: Key) -> String {
        format!("{}e:{key}", self.prefix)
    }

    /// The hash of a database's generations: `pgpulse:{ns}:g:{database}`.
    pub fn gens_key(&self, database: &str) -> String {
        format!("{}g:{database}", self.prefix)
    }

    /// The hash of a database's change-feed coverage (fields `n`, the
    /// number of the record, and `lsn`): `pgpulse:{ns}:c:{database}`.
    pub fn coverage_key(&self, database: &str) -> String {
        format!("{}c:{database}", self.prefix)
    }
}

/// The namespace when there is neither `redis.namespace` nor an upstream
/// server to identify (nothing is cacheable then, except in tests that
/// install catalogs by hand).
pub const WITHOUT_UPSTREAM: &str = "default";

/// Whether `namespace` may be used: 1 to 64 ASCII letters, digits, `.`,
/// `_` or `-` (no `:`, so one namespace's keys can never be another's).
pub fn valid_namespace(namespace: &str) -> bool {
    (1..=64).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The field of a database's generation hash that holds its epoch.
pub const DATABASE_FIELD: &str = "*";

/// The hash field of a family's generation: `f:{family}` (the prefix keeps
/// a relation named `*` apart from [`DATABASE_FIELD`]).
pub fn family_field(family: &str) -> String {
    format!("f:{family}")
}

/// Starts every entry; the version is in it.
const ENTRY_MAGIC: &[u8] = b"PGL2\x01";

/// `MAGIC, database, families, generations, reply`: strings are a `u16`
/// length (little endian) and the bytes; generations are `families + 2`
/// `u64`s (global epoch, database epoch, then one per family, in the
/// families' order). `None` when a name is too long to be encoded or `gens`
/// has the wrong length.
pub(super) fn encode_entry(
    database: &str,
    families: &[Arc<str>],
    gens: &[u64],
    reply: &[u8],
) -> Option<Vec<u8>> {
    if gens.len() != families.len() + 2 {
        return None;
    }
    let names: usize = families.iter().map(|f| f.len() + 2).sum();
    let mut out = Vec::with_capacity(
        ENTRY_MAGIC.len() + 4 + database.len() + names + gens.len() * 8 + reply.len(),
    );
    out.extend_from_slice(ENTRY_MAGIC);
    put_str(&mut out, database)?;
    out.extend_from_slice(&u16::try_from(families.len()).ok()?.to_le_bytes());
    for f in families {
        put_str(&mut out, f)?;
    }
    for g in gens {
        out.extend_from_slice(&g.to_le_bytes());
    }
    out.extend_from_slice(reply);
    Some(out)
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    out.extend_from_slice(&u16::try_from(s.len()).ok()?.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// Where the reply starts in a stored entry, if the entry was stored for
/// `database` and exactly these `families` at exactly these `gens` (the
/// current ones): only then may it be served. Anything else — another
/// layout, another catalog's families, an older generation — is a miss.
pub(super) fn current_reply_offset(
    buf: &[u8],
    database: &str,
    families: &[Arc<str>],
    gens: &[u64],
) -> Option<usize> {
    let mut r = Reader { buf, pos: 0 };
    if r.take(ENTRY_MAGIC.len())? != ENTRY_MAGIC || r.str()? != database.as_bytes() {
        return None;
    }
    if usize::from(r.u16()?) != families.len() || gens.len() != families.len() + 2 {
        return None;
    }
    for f in families {
        if r.str()? != f.as_bytes() {
            return None;
        }
    }
    for g in gens {
        if r.u64()? != *g {
            return None;
        }
    }
    Some(r.pos)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn str(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// What an invalidation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every database.
    Everything,
    /// One database, tables unknown.
    Database(Arc<str>),
    /// Families of one database.
    Families(Arc<str>, Vec<Arc<str>>),
    /// Families of one database written with rows in the WAL that the
    /// change feed keys (keyed writes, suspensions: docs/architecture.md,
    /// "Keyed invalidation"). Bumps the same generations in Redis (the L2
    /// stays table-grained); an instance whose own feed decodes the
    /// database with row images leaves its L1 to that feed, any other
    /// applies it as [`Scope::Families`].
    Keyed(Arc<str>, Vec<Arc<str>>),
}

/// A received invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    /// The publishing instance.
    pub origin: u64,
    /// Its [`Names::seq`] value.
    pub seq: u64,
    /// What it covers.
    pub scope: Scope,
}

/// The first part of a message, before the sequence number (the script
/// that bumps the generations inserts it): the origin, 16 hex digits.
pub(super) fn origin_prefix(origin: u64) -> String {
    format!("{origin:016x}")
}

/// The last part of a message: `A` (everything), `D` + database, or `F`
/// (or `K`, keyed) + database + families, each name as `{len}:{bytes}`.
/// Instances from before `K` ignore such a message and resynchronize at
/// the gap it leaves in the sequence: safe, and only during an upgrade.
pub(super) fn encode_scope(scope: &Scope) -> Vec<u8> {
    let mut out = Vec::new();
    let name = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(s.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(s.as_bytes());
    };
    match scope {
        Scope::Everything => out.push(b'A'),
        Scope::Database(db) => {
            out.push(b'D');
            name(&mut out, db);
        }
        Scope::Families(db, families) | Scope::Keyed(db, families) => {
            let keyed = matches!(scope, Scope::Keyed(..));
            out.push(if keyed { b'K' } else { b'F' });
            name(&mut out, db);
            for f in families {
                name(&mut out, f);
            }
        }
    }
    out
}

/// Parses `{origin hex} {seq} {scope}`; `None` for anything malformed
/// (another version's message).
pub(super) fn decode_message(payload: &[u8]) -> Option<Message> {
    let mut parts = payload.splitn(3, |b| *b == b' ');
    let origin = u64::from_str_radix(std::str::from_utf8(parts.next()?).ok()?, 16).ok()?;
    let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let body = parts.next()?;
    let (&kind, mut rest) = body.split_first()?;
    let mut name = || -> Option<Option<Arc<str>>> {
        if rest.is_empty() {
            return Some(None);
        }
        let colon = rest.iter().position(|b| *b == b':')?;
        let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
        let start = colon + 1;
        let bytes = rest.get(start..start.checked_add(len)?)?;
        rest = &rest[start + len..];
        Some(Some(Arc::from(std::str::from_utf8(bytes).ok()?)))
    };
    let scope = match kind {
        b'A' => {
            name()?.is_none().then_some(())?;
            Scope::Everything
        }
        b'D' => {
            let db = name()??;
            name()?.is_none().then_some(())?;
            Scope::Database(db)
        }
        b'F' | b'K' => {
            let db = name()??;
            let mut families = Vec::new();
            while let Some(f) = name()? {
                families.push(f);
            }
            if kind == b'K' {
                Scope::Keyed(db, families)
            } else {
                Scope::Families(db, families)
            }
        }
        _ => return None,
    };
    Some(Message { origin, seq, scope })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fams(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn an_entry_is_current_only_for_its_database_families_and_generations() {
        let f = fams(&["t", "u"]);
        let buf = encode_entry("db", &f, &[7, 1, 2, 3], b"reply").unwrap();
        let at = current_reply_offset(&buf, "db", &f, &[7, 1, 2, 3]).unwrap();
        assert_eq!(&buf[at..], b"reply");
        assert_eq!(current_reply_offset(&buf, "db", &f, &[7, 1, 2, 4]), None);
        assert_eq!(current_reply_offset(&buf, "db", &f, &[8, 1, 2, 3]), None);
        assert_eq!(current_reply_offset(&buf, "db2", &f, &[7, 1, 2, 3]), None);
        let swapped = fams(&["u", "t"]);
        assert_eq!(
            current_reply_offset(&buf, "db", &swapped, &[7, 1, 2, 3]),
            None
        );
        assert_eq!(current_reply_offset(&buf, "db", &f[..1], &[7, 1, 2]), None);
        assert_eq!(
            current_reply_offset(&buf[..10], "db", &f, &[7, 1, 2, 3]),
            None
        );
        assert_eq!(
            current_reply_offset(b"garbage", "db", &f, &[7, 1, 2, 3]),
            None
        );
        assert_eq!(encode_entry("db", &f, &[1, 2], b""), None);
    }

    #[test]
    fn namespaces_keep_keys_apart() {
        let (a, b) = (Names::new("7301"), Names::new("7302"));
        assert_eq!(a.seq, "pgpulse:7301:seq");
        assert_eq!(a.epoch, "pgpulse:7301:epoch");
        assert_eq!(a.channel, "pgpulse:7301:inval");
        assert_eq!(a.gens_key("db"), "pgpulse:7301:g:db");
        assert_ne!(a.gens_key("db"), b.gens_key("db"));
        assert_ne!(a.channel, b.channel);
        for ok in ["7301", "shop-prod_1.eu", &"x".repeat(64)] {
            assert!(valid_namespace(ok), "{ok}");
        }
        for bad in ["", "a:b", "a b", "a}", "é", &"x".repeat(65)] {
            assert!(!valid_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn an_empty_reply_and_no_families_round_trip() {
        let buf = encode_entry("db", &[], &[0, 0], b"").unwrap();
        assert_eq!(
            current_reply_offset(&buf, "db", &[], &[0, 0]),
            Some(buf.len())
        );
    }

    fn message(origin: u64, seq: u64, scope: &Scope) -> Vec<u8> {
        let mut m = format!("{} {seq} ", origin_prefix(origin)).into_bytes();
        m.extend(encode_scope(scope));
        m
    }

    #[test]
    fn messages_round_trip() {
        let scopes = [
            Scope::Everything,
            Scope::Database(Arc::from("my db")),
            Scope::Families(Arc::from("db"), fams(&["t", "a:b c", "", "ü"])),
            Scope::Families(Arc::from(""), Vec::new()),
            Scope::Keyed(Arc::from("db"), fams(&["appointments", "a:b"])),
        ];
        for scope in scopes {
            let m = message(u64::MAX - 3, 42, &scope);
            assert_eq!(
                decode_message(&m),
                Some(Message {
                    origin: u64::MAX - 3,
                    seq: 42,
                    scope
                })
            );
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        for m in [
            &b""[..],
            b"zz 1 A",
            b"0000000000000001 x A",
            b"0000000000000001 1",
            b"0000000000000001 1 ",
            b"0000000000000001 1 Q",
            b"0000000000000001 1 A1:x",
            b"0000000000000001 1 D",
            b"0000000000000001 1 D5:ab",
            b"0000000000000001 1 D2:ab1:x",
            b"0000000000000001 1 Fx:ab",
            b"0000000000000001 1 K",
        ] {
            assert_eq!(decode_message(m), None, "{}", String::from_utf8_lossy(m));
        }
    }
}
