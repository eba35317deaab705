//! The hot-path side: [`Recorder`] puts statement events on a bounded queue
//! for the aggregator thread and never waits; a full queue drops the event
//! and counts it. Also the shared counters.
//!
//! # Performance
//! `record` is one `try_send` on a bounded `crossbeam-channel` (a lock-free
//! array queue) plus, for [`Recorder::record_ref`], one copy of the text and
//! a lookup of the identity strings in a small per-thread cache. No shared
//! counter is touched unless the event is dropped (a contended atomic would
//! cost as much as the send). Measured by `benches/recorder.rs`.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};
use pgpulse_sql::Fingerprint;
use pgpulse_wire::Message;
use serde::Serialize;

use crate::event::{CacheOutcome, Session, SqlState, StatementEvent};

/// What travels on the queue.
#[derive(Debug)]
pub(crate) enum Msg {
    Event(StatementEvent),
    /// Acknowledge once everything queued before is aggregated (and
    /// explained).
    Flush(crossbeam_channel::Sender<()>),
    Shutdown,
}

/// Counters shared by the recorder, aggregator and EXPLAIN worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub events: AtomicU64,
    pub dropped: AtomicU64,
    pub slow_queries: AtomicU64,
    pub explains_run: AtomicU64,
    pub explains_failed: AtomicU64,
    pub explains_rate_limited: AtomicU64,
    pub explains_not_explainable: AtomicU64,
    pub logs_dropped: AtomicU64,
    pub patterns_flushed: AtomicU64,
    pub logs_flushed: AtomicU64,
    pub flush_failures: AtomicU64,
    pub flush_dropped: AtomicU64,
}

/// A snapshot of the insight counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Events aggregated.
    pub events: u64,
    /// Events dropped because the queue was full (or insight had stopped).
    pub dropped: u64,
    /// Entries evicted by the fingerprint cap.
    pub evicted: u64,
    /// Entries currently held.
    pub fingerprints: u64,
    /// Closed per-minute buckets held over all entries.
    pub series_buckets: u64,
    /// Slow queries seen.
    pub slow_queries: u64,
    /// EXPLAINs that produced a plan.
    pub explains_run: u64,
    /// EXPLAINs that failed or timed out.
    pub explains_failed: u64,
    /// Slow queries not explained because of the rate limit (or a full
    /// EXPLAIN queue).
    pub explains_skipped: u64,
    /// Slow queries that cannot be explained (utility statements, binary
    /// parameters, several statements).
    pub explains_not_explainable: u64,
    /// Undrained periods of evicted entries lost because too many entries
    /// were evicted between two drains (more than `max_fingerprints`, at
    /// least 1,000).
    pub periods_dropped: u64,
    /// Slow or sampled statements not logged because the buffer of
    /// `max_pending_logs` was full.
    pub logs_dropped: u64,
    /// `query_patterns` rows written to the store.
    pub patterns_flushed: u64,
    /// `performance_logs` rows written to the store.
    pub logs_flushed: u64,
    /// Store writes that failed (their rows were kept for the next flush).
    pub flush_failures: u64,
    /// Rows lost because the retry buffer (`max_retry_rows`) overflowed
    /// during a store outage.
    pub flush_dropped: u64,
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        evicted: u64,
        fingerprints: usize,
        series_buckets: usize,
        periods_dropped: u64,
    ) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            events: get(&self.events),
            dropped: get(&self.dropped),
            evicted,
            fingerprints: fingerprints as u64,
            series_buckets: series_buckets as u64,
            slow_queries: get(&self.slow_queries),
            explains_run: get(&self.explains_run),
            explains_failed: get(&self.explains_failed),
            explains_skipped: get(&self.explains_rate_limited),
            explains_not_explainable: get(&self.explains_not_explainable),
            periods_dropped,
            logs_dropped: get(&self.logs_dropped),
            patterns_flushed: get(&self.patterns_flushed),
            logs_flushed: get(&self.logs_flushed),
            flush_failures: get(&self.flush_failures),
            flush_dropped: get(&self.flush_dropped),
        }
    }
}

/// A borrowed statement event, field for field the proxy's `QueryEvent`:
/// [`Recorder::record_ref`] copies what it needs.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// Database name.
    pub database: &'a str,
    /// User name.
    pub user: &'a str,
    /// The client's `application_name`.
    pub application_name: &'a str,
    /// The statement text as sent.
    pub text: &'a str,
    /// The raw `Bind` of an extended-protocol execute.
    pub bind: Option<&'a Message>,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// Duration.
    pub duration: Duration,
    /// Rows returned or affected.
    pub rows: u64,
    /// SQLSTATE if it failed.
    pub error: Option<&'a str>,
    /// What the cache did.
    pub cache: CacheOutcome,
    /// The text's normalized form and fingerprint, if already made (see
    /// [`StatementEvent::normalized`]).
    pub normalized: Option<(&'a Arc<str>, Fingerprint)>,
}

/// The handle the proxy calls for every statement. Cheap to clone; `Send +
/// Sync`. Never blocks.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: Sender<Msg>,
    counters: Arc<Counters>,
}

impl Recorder {
    pub(crate) fn new(tx: Sender<Msg>, counters: Arc<Counters>) -> Self {
        Recorder { tx, counters }
    }

    /// Queues `event` for aggregation. Returns false (and counts a drop) if
    /// the queue is full or insight has stopped; never waits.
    pub fn record(&self, event: StatementEvent) -> bool {
        match self.tx.try_send(Msg::Event(event)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a borrowed event: shares the `Bind` frame (a refcount), and
    /// takes the session identity and the text from small per-thread caches,
    /// so repeated statements of the same sessions allocate nothing (a text
    /// not in the cache is copied once).
    pub fn record_ref(&self, e: &EventRef<'_>) -> bool {
        let event = StatementEvent {
            session: session(e.database, e.user, e.application_name),
            text: text(e.text),
            bind: e.bind.cloned(),
            started_at: e.started_at,
            duration: e.duration,
            rows: e.rows,
            error: e.error.map(|c| SqlState::new(c).unwrap_or(INTERNAL_ERROR)),
            cache: e.cache,
            normalized: e.normalized.map(|(text, fp)| (text.clone(), fp)),
        };
        self.record(event)
    }
}

/// `XX000`, for error codes that are not valid SQLSTATEs.
const INTERNAL_ERROR: SqlState = match SqlState::new_const(*b"XX000") {
    Some(s) => s,
    None => panic!("XX000 is a valid SQLSTATE"),
};

/// Session identities cached per thread.
const SESSION_SLOTS: usize = 16;
/// Statement texts cached per thread (direct-mapped).
const TEXT_SLOTS: usize = 256;
/// Texts longer than this are always copied (not worth caching).
const TEXT_CACHE_MAX: usize = 4096;

thread_local! {
    static SESSIONS: RefCell<Vec<Arc<Session>>> = const { RefCell::new(Vec::new()) };
    static TEXTS: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

/// A `Session` equal to (database, user, application), shared with earlier
/// calls on this thread when possible (a tokio worker serves many sessions,
/// mostly of a few databases, users and applications).
fn session(database: &str, user: &str, app: &str) -> Arc<Session> {
    SESSIONS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let same = |s: &&Arc<Session>| {
            &*s.database == database && &*s.user == user && &*s.application_name == app
        };
        if let Some(hit) = slots.iter().find(same) {
            return hit.clone();
        }
        let new = Session::new(database, user, app);
        if slots.len() == SESSION_SLOTS {
            slots.remove(0);
        }
        slots.push(new.clone());
        new
    })
}

/// `text` as `Bytes`, shared with an earlier equal text on this thread when
/// it is still cached: the hot path then costs a compare and a refcount
/// instead of an allocation here and a cross-thread free in the aggregator.
fn text(text: &str) -> Bytes {
    let b = text.as_bytes();
    if b.len() > TEXT_CACHE_MAX {
        return Bytes::copy_from_slice(b);
    }
    TEXTS.with(|cell| {
        let mut slots = cell.borrow_mut();
        if slots.is_empty() {
            slots.resize(TEXT_SLOTS, Bytes::new());
        }
        let slot = &mut slots[text_slot(b)];
        if slot.as_ref() != b {
            // `from(Vec)` then one clone turns the buffer into a shared one
            // now, so that later hits are plain refcount increments.
            *slot = Bytes::from(b.to_vec());
        }
        slot.clone()
    })
}

/// A cheap slot index from the length and the first and last 8 bytes.
fn text_slot(b: &[u8]) -> usize {
    let word = |s: &[u8]| {
        let mut w = [0u8; 8];
        let n = s.len().min(8);
        w[..n].copy_from_slice(&s[..n]);
        u64::from_le_bytes(w)
    };
    let tail = &b[b.len().saturating_sub(8)..];
    let h =
        (word(b) ^ word(tail).rotate_left(29) ^ b.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 56) as usize % TEXT_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_and_counts_without_waiting() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let counters = Arc::new(Counters::default());
        let r = Recorder::new(tx, counters.clone());
        let e = StatementEvent::new(
            Session::new("d", "u", ""),
            "SELECT 1",
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
        );
        let accepted: Vec<bool> = (0..5).map(|_| r.record(e.clone())).collect();
        assert_eq!(accepted, [true, true, false, false, false]);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(rx.len(), 2);
        drop(rx);
        assert!(!r.record(e));
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn record_ref_copies_and_interns() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let r = Recorder::new(tx, Arc::new(Counters::default()));
        let text = String::from("SELECT 42");
        let e = EventRef {
            database: "db",
            user: "u",
            application_name: "app",
            text: &text,
            bind: None,
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(3),
            rows: 1,
            error: Some("bad!"),
            cache: CacheOutcome::Hit,
            normalized: None,
        };
        assert!(r.record_ref(&e));
        assert!(r.record_ref(&e));
        drop(text);
        let got: Vec<StatementEvent> = rx
            .try_iter()
            .filter_map(|m| match m {
                Msg::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0].text[..], b"SELECT 42");
        assert!(Arc::ptr_eq(&got[0].session, &got[1].session));
        assert_eq!(
            got[0].text.as_ptr(),
            got[1].text.as_ptr(),
            "cached text is shared"
        );
        assert_eq!(&*got[0].session.application_name, "app");
        assert_eq!(
            got[0].error.map(|s| s.to_string()).as_deref(),
            Some("XX000")
        );
    }

    proptest::proptest! {
        #[test]
        fn cached_text_always_equals_its_input(texts in proptest::collection::vec("[a-c ]{0,20}", 1..50)) {
            for t in texts.iter().chain(texts.iter().rev()) {
                proptest::prop_assert_eq!(&text(t)[..], t.as_bytes());
            }
            let long = "x".repeat(TEXT_CACHE_MAX + 1);
            proptest::prop_assert_eq!(&text(&long)[..], long.as_bytes());
        }
    }
}
