//! Cache keys: a 128-bit XXH3 digest of everything that can change a
//! statement's result (ARCHITECTURE.md, "Cache correctness rules", rule 1).
//!
//! Every field is length-prefixed before it is hashed, so `("ab", "c")` and
//! `("a", "bc")` never collide by construction; 128 bits make an accidental
//! collision (which would serve another query's rows) negligible: about
//! 2^-64 after 2^32 distinct keys.

use std::fmt;

use xxhash_rust::xxh3::xxh3_128;

/// A cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub u128);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:032x})", self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Builds a [`Key`] field by field. The caller decides which fields make up
/// the key; the proxy feeds: protocol shape, database, user, the client's
/// session variables (search_path, role, TimeZone, ...), the statement
/// text, parameter values and formats, and result formats.
///
/// The fields are gathered into one buffer and hashed once at
/// [`finish`](KeyBuilder::finish): XXH3's one-shot digest equals its
/// streaming digest of the same bytes (a test checks it, so keys in a
/// shared L2 stay valid), and it costs a fraction of a streaming update per
/// field (about 1,500 instructions per key with a streaming hasher, most of
/// it its set-up and per-call overhead).
#[derive(Clone)]
pub struct KeyBuilder {
    buf: Vec<u8>,
}

impl fmt::Debug for KeyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyBuilder").finish_non_exhaustive()
    }
}

impl KeyBuilder {
    /// A key for `database` and `user`; `shape` names the request form
    /// (e.g. `b"Q"` for a simple query, the tags of an extended batch).
    pub fn new(shape: &[u8], database: &str, user: &str) -> KeyBuilder {
        let mut b = KeyBuilder {
            buf: Vec::with_capacity(256),
        };
        // A version tag: change it when the key layout changes, so entries
        // written to a shared L2 by an older pgpulse are never read.
        b.bytes(b"pgpulse-key-v1");
        b.bytes(shape);
        b.str(database);
        b.str(user);
        b
    }

    /// Adds a length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(&(v.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(v);
        self
    }

    /// Adds a length-prefixed string.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// Adds an optional byte string (`None` is distinct from empty, as a
    /// NULL parameter is distinct from an empty one).
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => {
                self.buf.extend_from_slice(&u64::MAX.to_le_bytes());
            }
            Some(v) => {
                self.bytes(v);
            }
        }
        self
    }

    /// Adds a number.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// The key.
    pub fn finish(&self) -> Key {
        Key(xxh3_128(&self.buf))
    }
}

/// Hashes a [`Key`] for the L1's maps: the key is already a uniform
/// 128-bit digest, so folding it is enough (SipHash over it was about 5% of
/// pgpulse's CPU on a cache-hit workload).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Key`; a plain FNV-1a for anything else.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64);
    }
}

/// Builds [`KeyHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasherBuilder;

impl std::hash::BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: impl Fn(&mut KeyBuilder)) -> Key {
        let mut b = KeyBuilder::new(b"Q", "db", "alice");
        f(&mut b);
        b.finish()
    }

    #[test]
    fn fields_are_delimited() {
        assert_ne!(
            key(|b| {
                b.str("ab").str("c");
            }),
            key(|b| {
                b.str("a").str("bc");
            })
        );
        assert_ne!(
            key(|b| {
                b.opt_bytes(None);
            }),
            key(|b| {
                b.opt_bytes(Some(b""));
            })
        );
    }

    #[test]
    fn keys_are_the_streaming_digest_of_the_fields() {
        // Keys written to a shared L2 by builds that hashed field by field
        // (streaming XXH3) must still be found.
        let mut streaming = xxhash_rust::xxh3::Xxh3::new();
        for (field, v) in [
            (&b"pgpulse-key-v1"[..], None),
            (&b"Q"[..], None),
            (&b"db"[..], None),
            (&b"alice"[..], None),
            (&b"SELECT 1"[..], Some(7_u64)),
        ] {
            streaming.update(&(field.len() as u64).to_le_bytes());
            streaming.update(field);
            if let Some(v) = v {
                streaming.update(&v.to_le_bytes());
            }
        }
        streaming.update(&u64::MAX.to_le_bytes());
        let built = key(|b| {
            b.str("SELECT 1").u64(7).opt_bytes(None);
        });
        assert_eq!(built, Key(streaming.digest128()));
    }

    #[test]
    fn database_user_and_shape_are_in_the_key() {
        let base = KeyBuilder::new(b"Q", "db", "alice").finish();
        assert_eq!(base, KeyBuilder::new(b"Q", "db", "alice").finish());
        assert_ne!(base, KeyBuilder::new(b"Q", "db", "bob").finish());
        assert_ne!(base, KeyBuilder::new(b"Q", "db2", "alice").finish());
        assert_ne!(base, KeyBuilder::new(b"PBDE", "db", "alice").finish());
    }
}
