//! Query shapes the aggregator notices per event, for pattern analysis:
//! *bursts* (one session running the same fingerprint many times in a row,
//! back to back: the N+1 signature) and *distinct texts* (how many
//! different raw texts one fingerprint arrived as: literals inlined instead
//! of bind parameters).
//!
//! A session is the `Arc<Session>` of the event (one per client session
//! when the proxy builds it so; `record_ref` shares one per identity and
//! thread, and then concurrent clients overlap, which ends a run). A run
//! continues while the next statement of that session has the same
//! fingerprint and starts after the previous one completed, within
//! [`BURST_GAP`].
//!
//! # Performance
//! On the aggregator thread only (never the recorder): per event one FNV
//! hash of the raw text, two LRU lookups, under a lock taken once per
//! batch. Memory is bounded: [`MAX_SESSIONS`] runs, [`MAX_ENTRIES`]
//! fingerprints with at most [`MAX_TEXTS`] text hashes (8 bytes) each.
//! `observe` costs about 24 ns per event in release (1,000 sessions over
//! 5,000 fingerprints; the ignored test `observe_cost`, 2-core machine
//! shared with other builds), plus the FNV hash of the raw text (about a
//! cycle per byte): small next to normalizing the text on the same thread.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lru::LruCache;
use pgpulse_sql::Fingerprint;
use serde::Serialize;

/// Longest pause between two statements of one run.
pub const BURST_GAP: Duration = Duration::from_millis(100);
/// A run of at least this many calls counts as a burst.
pub const BURST_MIN: u32 = 10;
/// Distinct raw texts remembered per fingerprint (beyond: "at least").
pub const MAX_TEXTS: usize = 64;
/// Sessions whose current run is tracked (least recently used dropped).
pub const MAX_SESSIONS: usize = 4_096;
/// Fingerprints tracked (least recently used dropped).
pub const MAX_ENTRIES: usize = 10_000;

/// One fingerprint's shape since insight started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryShape {
    /// Fingerprint (16 hex digits when serialized).
    #[serde(serialize_with = "ser_fingerprint")]
    pub fingerprint: Fingerprint,
    /// Normalized text.
    pub query: Arc<str>,
    /// Database of its first execution seen.
    pub database: Arc<str>,
    /// User of its first execution seen.
    pub user: Arc<str>,
    /// Executions seen.
    pub calls: u64,
    /// The longest run of back-to-back executions by one session.
    pub max_burst: u32,
    /// Runs that reached [`BURST_MIN`] calls.
    pub bursts: u64,
    /// Distinct raw texts seen (at most [`MAX_TEXTS`]).
    pub distinct_texts: u32,
    /// Whether `distinct_texts` reached the cap (there may be more).
    pub distinct_texts_capped: bool,
}

fn ser_fingerprint<S: serde::Serializer>(f: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(f)
}

/// One event as the tracker needs it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub session: usize,
    pub fingerprint: Fingerprint,
    pub text_hash: u64,
    pub started_at: SystemTime,
    pub completed_at: SystemTime,
    pub query: Arc<str>,
    pub database: Arc<str>,
    pub user: Arc<str>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    fingerprint: Fingerprint,
    len: u32,
    last_end: SystemTime,
}

#[derive(Debug)]
struct Entry {
    shape: QueryShape,
    texts: Vec<u64>,
}

/// The tracker, behind a mutex shared by the aggregator and `Insight`.
#[derive(Debug)]
pub(crate) struct Shapes {
    runs: LruCache<usize, Run>,
    entries: LruCache<Fingerprint, Entry>,
}

impl Default for Shapes {
    fn default() -> Self {
        // Both constants are non-zero.
        let cap = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Shapes {
            runs: LruCache::new(cap(MAX_SESSIONS)),
            entries: LruCache::new(cap(MAX_ENTRIES)),
        }
    }
}

/// FNV-1a 64 of the raw text (a text identity, not a security hash).
pub(crate) fn text_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Shapes {
    /// Adds one event.
    pub fn observe(&mut self, s: &Seen) {
        let next = Run {
            fingerprint: s.fingerprint,
            len: 1,
            last_end: s.completed_at,
        };
        let len = match self.runs.get_mut(&s.session) {
            Some(r)
                if r.fingerprint == s.fingerprint
                    && s.started_at >= r.last_end
                    && s.started_at
                        .duration_since(r.last_end)
                        .unwrap_or(Duration::MAX)
                        <= BURST_GAP =>
            {
                r.len = r.len.saturating_add(1);
                r.last_end = s.completed_at;
                r.len
            }
            Some(r) => {
                *r = next;
                1
            }
            None => {
                self.runs.put(s.session, next);
                1
            }
        };
        let e = self.entries.get_or_insert_mut(s.fingerprint, || Entry {
            shape: QueryShape {
                fingerprint: s.fingerprint,
                query: s.query.clone(),
                database: s.database.clone(),
                user: s.user.clone(),
                calls: 0,
                max_burst: 0,
                bursts: 0,
                distinct_texts: 0,
                distinct_texts_capped: false,
            },
            texts: Vec::new(),
        });
        let shape = &mut e.shape;
        shape.calls += 1;
        shape.max_burst = shape.max_burst.max(len);
        if len == BURST_MIN {
            shape.bursts += 1;
        }
        if !shape.distinct_texts_capped && !e.texts.contains(&s.text_hash) {
            if e.texts.len() < MAX_TEXTS {
                e.texts.push(s.text_hash);
                shape.distinct_texts = e.texts.len() as u32;
            } else {
                shape.distinct_texts_capped = true;
            }
        }
    }

    /// Every tracked fingerprint's shape.
    pub fn snapshot(&self) -> Vec<QueryShape> {
        self.entries.iter().map(|(_, e)| e.shape.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn seen(session: usize, fp: u64, text: &str, start_ms: u64, ms: u64) -> Seen {
        let start = UNIX_EPOCH + Duration::from_millis(start_ms);
        Seen {
            session,
            fingerprint: Fingerprint(fp),
            text_hash: text_hash(text.as_bytes()),
            started_at: start,
            completed_at: start + Duration::from_millis(ms),
            query: Arc::from("q"),
            database: Arc::from("db"),
            user: Arc::from("u"),
        }
    }

    fn shape(s: &Shapes, fp: u64) -> QueryShape {
        s.snapshot()
            .into_iter()
            .find(|x| x.fingerprint == Fingerprint(fp))
            .expect("shape")
    }

    #[test]
    fn back_to_back_runs_of_one_session_are_bursts() {
        let mut s = Shapes::default();
        for i in 0..25 {
            s.observe(&seen(1, 7, "SELECT $1", i * 3, 2));
        }
        // Interleaved with another statement: runs restart.
        for i in 0..25 {
            let fp = if i % 2 == 0 { 8 } else { 9 };
            s.observe(&seen(2, fp, "x", 1000 + i * 3, 2));
        }
        // Overlapping executions (concurrent clients sharing an identity).
        for i in 0..25 {
            s.observe(&seen(3, 10, "y", 5000 + i, 5));
        }
        // A pause longer than the gap ends the run.
        for i in 0..25 {
            s.observe(&seen(4, 11, "z", 9000 + i * 200, 1));
        }
        let a = shape(&s, 7);
        assert_eq!(
            (a.calls, a.max_burst, a.bursts, a.distinct_texts),
            (25, 25, 1, 1)
        );
        assert_eq!(shape(&s, 8).max_burst, 1);
        assert_eq!(shape(&s, 10).max_burst, 1);
        assert_eq!(shape(&s, 11).max_burst, 1);
    }

    /// Cost of `observe` (run in release with `--ignored --nocapture`; it
    /// prints, asserts nothing about speed): 1,000 sessions over 5,000
    /// fingerprints, texts of about 60 bytes.
    #[test]
    #[ignore]
    fn observe_cost() {
        let texts: Vec<String> = (0..5_000)
            .map(|i| format!("SELECT * FROM table_{i} WHERE id = {i} AND status = 'open'"))
            .collect();
        let events: Vec<Seen> = (0..200_000u64)
            .map(|i| {
                let t = &texts[(i * 7 % 5_000) as usize];
                seen((i % 1_000) as usize, i * 7 % 5_000, t, i, 1)
            })
            .collect();
        let mut s = Shapes::default();
        let start = std::time::Instant::now();
        for _ in 0..5 {
            for e in &events {
                s.observe(e);
            }
        }
        let per = start.elapsed().as_nanos() as f64 / (5.0 * events.len() as f64);
        println!("Shapes::observe: {per:.0} ns per event");
        assert_eq!(s.snapshot().len(), 5_000);
    }

    #[test]
    fn distinct_texts_are_counted_up_to_the_cap() {
        let mut s = Shapes::default();
        for i in 0..10 {
            s.observe(&seen(i, 1, &format!("SELECT {i}"), 0, 1));
            s.observe(&seen(i, 2, "SELECT $1", 0, 1));
        }
        assert_eq!(shape(&s, 1).distinct_texts, 10);
        assert_eq!(shape(&s, 2).distinct_texts, 1);
        for i in 0..200 {
            s.observe(&seen(0, 3, &format!("SELECT {i}"), 0, 1));
        }
        let c = shape(&s, 3);
        assert_eq!(
            (c.distinct_texts, c.distinct_texts_capped),
            (MAX_TEXTS as u32, true)
        );
    }
}
