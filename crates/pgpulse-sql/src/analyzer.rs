//! [`Analyzer`]: a bounded, thread-safe memo of [`Analysis`] keyed by the
//! raw SQL text, so a text seen before costs one hash and one lookup, and
//! behind it a second memo keyed by the *normalized* text, so a statement
//! that differs from one seen before only in its literal values (every
//! simple-protocol query with inlined values) costs a normalization (about
//! a microsecond) instead of a full parse (tens of microseconds).
//!
//! The analysis of a text depends on its literals only for `SET` (the
//! value): those are never shared through the normalized memo.
//!
//! The memo is split into shards, each a `Mutex<HashMap>`, to keep lock
//! contention low; the analysis itself runs outside the lock (two threads
//! may analyse the same new text at once, which is harmless). Entries keep
//! their text, so a 64-bit hash collision can never return the analysis of
//! another statement. When a shard is full an arbitrary entry is evicted.

// foldhash: these maps are read on every statement; SipHash was a
// measurable share of a cache hit (BENCHMARKS.md, session 5).
use foldhash::{HashMap, HashMapExt};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::analysis::{Analysis, analyze};
use crate::normalize::Fnv;

const SHARDS: usize = 16;

struct Entry {
    text: Box<str>,
    analysis: Arc<Analysis>,
}

/// Memoising analyser; cheap to share between threads (`Send + Sync`).
pub struct Analyzer {
    shards: Vec<Mutex<HashMap<u64, Entry>>>,
    /// Keyed by the normalized text.
    normalized: Vec<Mutex<HashMap<u64, Entry>>>,
    per_shard: usize,
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analyzer")
            .field("entries", &self.len())
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl Default for Analyzer {
    /// Room for 10,000 distinct texts.
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl Analyzer {
    /// An analyser remembering about `capacity` distinct texts (at least
    /// one per shard).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            normalized: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
        }
    }

    /// The analysis of `sql`, computed once per distinct text while it stays
    /// in the memo.
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        let mut h = Fnv::new();
        h.bytes(sql.as_bytes());
        let key = h.0;
        let shard = &self.shards[(key % SHARDS as u64) as usize];
        {
            // A poisoned lock only means another thread panicked while
            // holding it; the map itself is still consistent.
            let map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = map.get(&key)
                && *e.text == *sql
            {
                return Arc::clone(&e.analysis);
            }
        }
        // Same statement, other literals?
        let norm = crate::normalize::normalize(sql);
        let norm_key = norm.fingerprint.0;
        let norm_shard = &self.normalized[(norm_key % SHARDS as u64) as usize];
        {
            let map = norm_shard.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = map.get(&norm_key)
                && *e.text == *norm.text
            {
                return Arc::clone(&e.analysis);
            }
        }
        let analysis = Arc::new(analyze(sql));
        self.insert(shard, key, sql, &analysis);
        if !literal_dependent(&analysis) {
            self.insert(norm_shard, norm_key, &norm.text, &analysis);
        }
        analysis
    }

    fn insert(
        &self,
        shard: &Mutex<HashMap<u64, Entry>>,
        key: u64,
        text: &str,
        analysis: &Arc<Analysis>,
    ) {
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.per_shard
            && !map.contains_key(&key)
            && let Some(victim) = map.keys().next().copied()
        {
            map.remove(&victim);
        }
        map.insert(
            key,
            Entry {
                text: text.into(),
                analysis: Arc::clone(analysis),
            },
        );
    }

    /// Number of texts currently memoised.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether nothing is memoised.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the analysis carries a literal value (a `SET`'s), so it must not
/// be shared with texts that differ only in literals.
fn literal_dependent(a: &Analysis) -> bool {
    matches!(a.kind, crate::kind::StatementKind::Set { .. })
        || a.parts.iter().any(literal_dependent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memoises_per_text() {
        let an = Analyzer::new(100);
        let a = an.analyze("SELECT * FROM t WHERE a = 1");
        let b = an.analyze("SELECT * FROM t WHERE a = 1");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(an.len(), 1);
        // Other literals: the normalized memo answers, nothing is parsed
        // or added to the raw-text memo.
        let c = an.analyze("SELECT * FROM t WHERE a = 2");
        assert!(Arc::ptr_eq(&a, &c));
        assert_eq!(an.len(), 1);
    }

    #[test]
    fn stays_bounded() {
        let an = Analyzer::new(32);
        for i in 0..1000 {
            let _ = an.analyze(&format!("SELECT {i} FROM t{i}"));
        }
        assert!(an.len() <= 32, "{}", an.len());
        assert!(!an.is_empty());
    }

    #[test]
    fn shared_between_threads() {
        let an = Arc::new(Analyzer::default());
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let an = Arc::clone(&an);
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| {
                            an.analyze(&format!("SELECT * FROM t WHERE a = {}", i % 10 + k))
                                .fingerprint
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let fps: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        assert!(fps.windows(2).all(|w| w[0] == w[1]));
        // Texts parsed before the normalized memo knew the statement.
        assert!((1..=13).contains(&an.len()), "{}", an.len());
    }
}

#[cfg(test)]
mod normalized_memo_tests {
    use super::*;
    use crate::kind::StatementKind;

    #[test]
    fn literals_share_an_analysis_but_set_values_do_not() {
        let a = Analyzer::new(100);
        let x = a.analyze("SELECT v FROM t WHERE id = 1");
        let y = a.analyze("SELECT v FROM t WHERE id = 2");
        assert!(Arc::ptr_eq(&x, &y), "one parse for both");
        let s1 = a.analyze("SET search_path = a");
        let s2 = a.analyze("SET search_path = b");
        match (&s1.kind, &s2.kind) {
            (StatementKind::Set { value: v1, .. }, StatementKind::Set { value: v2, .. }) => {
                assert_ne!(v1, v2);
            }
            other => panic!("{other:?}"),
        }
    }
}
