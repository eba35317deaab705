//! The aggregator thread: drains the event queue in batches, normalizes and
//! fingerprints each statement (off the proxy's hot path), updates the
//! registry, turns slow statements into slow-query records and, within the
//! rate limit, EXPLAIN jobs, and queues the slow ones and a sample of the
//! others for the performance logs.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use pgpulse_sql::Fingerprint;

use crate::clock::Clock;
use crate::event::StatementEvent;
use crate::explain::Job;
use crate::logs::{LogRecord, Sampler};
use crate::params::explainable_text;
use crate::patterns::shapes::{Seen, Shapes, text_hash};
use crate::recorder::{Counters, Msg};
use crate::registry::{Key, Registry};
use crate::slow::{PlanStatus, SlowLog, SlowQuery, TokenBucket};
use crate::stats::Sample;

/// Events aggregated per registry lock.
const BATCH: usize = 256;
/// Sleep between polls of an empty queue (bounds aggregation latency).
/// 20 ms rather than 2: ten times fewer wake-ups competing with the proxy
/// for a small machine's cores (no latency difference was measurable above
/// the run-to-run noise; see BENCHMARKS.md, "pgpulse, stats off"). At 50,000
/// events/s a poll finds ~1,000 events, far below the queue's 65,536.
const POLL: Duration = Duration::from_millis(20);
/// How often retention is applied when idle or busy.
const MAINTAIN_EVERY: Duration = Duration::from_secs(30);

/// State owned by the aggregator thread.
pub(crate) struct Aggregator {
    pub rx: Receiver<Msg>,
    pub registry: Arc<Mutex<Registry>>,
    pub slow: Arc<Mutex<SlowLog>>,
    pub counters: Arc<Counters>,
    pub clock: Arc<dyn Clock>,
    pub threshold: Duration,
    /// The EXPLAIN queue and its rate limit; `None` when disabled.
    pub explain: Option<(Sender<Job>, TokenBucket)>,
    /// Which statements under the threshold are logged.
    pub sampler: Sampler,
    /// Bursts and distinct texts per fingerprint (pattern analysis).
    pub shapes: Arc<Mutex<Shapes>>,
}

/// A normalized event waiting for the registry lock.
struct Prepared {
    event: StatementEvent,
    fingerprint: Fingerprint,
    /// The normalized text (the registry keeps it for a new statement).
    normalized: Arc<str>,
}

impl Aggregator {
    /// Runs until `Shutdown` or until every sender is gone.
    pub fn run(mut self) {
        let mut batch: Vec<Prepared> = Vec::with_capacity(BATCH);
        let mut last_maintain = self.clock.now();
        loop {
            let mut next = match self.rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => {
                    // Poll instead of blocking in `recv`: a parked receiver
                    // makes the next `try_send` on the hot path pay for a
                    // futex wake-up.
                    std::thread::sleep(POLL);
                    None
                }
                Err(TryRecvError::Disconnected) => return,
            };
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Event(e) => {
                        batch.push(prepare(e));
                        while batch.len() < BATCH {
                            match self.rx.try_recv() {
                                Ok(Msg::Event(e)) => batch.push(prepare(e)),
                                Ok(other) => {
                                    next = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        self.process(&mut batch);
                    }
                    Msg::Flush(ack) => self.flush(ack),
                    Msg::Shutdown => return,
                }
            }
            let now = self.clock.now();
            if now.duration_since(last_maintain).unwrap_or(Duration::ZERO) >= MAINTAIN_EVERY {
                self.registry
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .maintain(now);
                last_maintain = now;
            }
        }
    }

    fn flush(&self, ack: Sender<()>) {
        match &self.explain {
            // The worker acknowledges after the jobs queued before.
            Some((jobs, _)) => {
                if let Err(e) = jobs.send(Job::Flush(ack))
                    && let Job::Flush(ack) = e.into_inner()
                {
                    let _ = ack.send(());
                }
            }
            None => {
                let _ = ack.send(());
            }
        }
    }

    fn process(&mut self, batch: &mut Vec<Prepared>) {
        let mut slow = Vec::new();
        let mut sampled = Vec::new();
        let mut seen = Vec::with_capacity(batch.len());
        {
            let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            for (i, p) in batch.iter().enumerate() {
                let e = &p.event;
                let key = Key {
                    fingerprint: p.fingerprint,
                    database: e.session.database.clone(),
                    user: e.session.user.clone(),
                };
                let sample = Sample {
                    duration: e.duration,
                    rows: e.rows,
                    error: e.error.is_some(),
                    cache: e.cache,
                    started_at: e.started_at,
                    completed_at: e.completed_at(),
                };
                let query = reg.record(key, || p.normalized.clone(), &sample);
                seen.push(Seen {
                    session: Arc::as_ptr(&e.session) as usize,
                    fingerprint: p.fingerprint,
                    text_hash: text_hash(&e.text),
                    started_at: e.started_at,
                    completed_at: sample.completed_at,
                    query: query.clone(),
                    database: e.session.database.clone(),
                    user: e.session.user.clone(),
                });
                if e.duration >= self.threshold {
                    slow.push((i, query));
                } else if self.sampler.sample() {
                    sampled.push((i, query));
                }
            }
        }
        {
            let mut shapes = self.shapes.lock().unwrap_or_else(|p| p.into_inner());
            for s in &seen {
                shapes.observe(s);
            }
        }
        self.counters
            .events
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !sampled.is_empty() {
            self.log_sampled(batch, sampled);
        }
        for (i, query) in slow {
            if let Some(p) = batch.get(i) {
                self.slow_query(p, query);
            }
        }
        batch.clear();
    }

    /// Queues sampled statements for the performance logs (one lock for
    /// the batch).
    fn log_sampled(&self, batch: &[Prepared], sampled: Vec<(usize, Arc<str>)>) {
        let now = self.clock.now();
        let mut dropped = 0;
        let mut log = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        for (i, query) in sampled {
            let Some(p) = batch.get(i) else { continue };
            let mut q = slow_record(p, query);
            q.plan_status = PlanStatus::Disabled;
            let record = LogRecord {
                query: q,
                slow: false,
                cache: p.event.cache,
                seen_at: now,
            };
            if !log.pending.push(record) {
                dropped += 1;
            }
        }
        drop(log);
        if dropped > 0 {
            self.counters
                .logs_dropped
                .fetch_add(dropped, Ordering::Relaxed);
        }
    }

    fn slow_query(&mut self, p: &Prepared, query: Arc<str>) {
        self.counters.slow_queries.fetch_add(1, Ordering::Relaxed);
        let e = &p.event;
        let mut record = slow_record(p, query);
        let now = self.clock.now();
        let job = match &mut self.explain {
            None => {
                record.plan_status = PlanStatus::Disabled;
                None
            }
            Some((_, bucket)) => {
                match explainable_text(&String::from_utf8_lossy(&e.text), e.bind.as_ref()) {
                    Err(why) => {
                        self.counters
                            .explains_not_explainable
                            .fetch_add(1, Ordering::Relaxed);
                        record.plan_status = PlanStatus::NotExplainable(why);
                        None
                    }
                    Ok(sql) if bucket.try_take(now) => Some(sql),
                    Ok(_) => {
                        self.counters
                            .explains_rate_limited
                            .fetch_add(1, Ordering::Relaxed);
                        record.plan_status = PlanStatus::RateLimited;
                        None
                    }
                }
            }
        };
        let (id, kept) = self
            .slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_logged(record, e.cache, now);
        if !kept {
            self.counters.logs_dropped.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(sql), Some((jobs, _))) = (job, &self.explain) {
            let job = Job::Explain {
                id,
                database: e.session.database.clone(),
                sql,
            };
            if jobs.try_send(job).is_err() {
                self.counters
                    .explains_rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                self.slow
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_plan(id, None, PlanStatus::RateLimited);
            }
        }
    }
}

/// The record of a statement, plan pending; holds the normalized text only.
fn slow_record(p: &Prepared, query: Arc<str>) -> SlowQuery {
    let e = &p.event;
    SlowQuery {
        id: 0,
        fingerprint: p.fingerprint,
        query,
        started_at: e.started_at,
        duration: e.duration,
        database: e.session.database.clone(),
        user: e.session.user.clone(),
        application_name: e.session.application_name.clone(),
        rows: e.rows,
        error: e.error,
        plan: None,
        plan_summary: None,
        plan_status: PlanStatus::Pending,
    }
}

fn prepare(mut event: StatementEvent) -> Prepared {
    if let Some((text, fingerprint)) = event.normalized.take() {
        return Prepared {
            event,
            fingerprint,
            normalized: text,
        };
    }
    let (normalized, fingerprint) = normalize_memo(&event.text);
    Prepared {
        event,
        fingerprint,
        normalized,
    }
}

/// Slots of the normalization memo (direct-mapped by text hash).
const MEMO_SLOTS: usize = 1024;
/// Longer texts are normalized every time (not worth keeping).
const MEMO_MAX_TEXT: usize = 2048;

type MemoSlot = Option<(Bytes, Arc<str>, Fingerprint)>;

thread_local! {
    /// Recently normalized texts, keyed by the text itself or, for texts
    /// with inlined constants, by their skeleton ([`pgpulse_sql::skeleton`]:
    /// the text with the constants blanked, which normalizes the same).
    /// Parameterized statements (extended protocol, prepared statements)
    /// repeat the same text; statements with inlined literals (the simple
    /// protocol: `... WHERE aid = 42`) rarely do, but share a skeleton, and
    /// normalizing each of them was most of insight's cost per event
    /// (about 5,600 of pgpulse's 25,000 instructions per forwarded
    /// `pgbench -S` transaction). Bounded: 1,024 keys of at most 2 KiB.
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo { slots: Vec::new(), skeleton: Vec::new() })
    };
}

struct Memo {
    slots: Vec<MemoSlot>,
    /// Reused buffer for the skeleton of the text being looked up.
    skeleton: Vec<u8>,
}

fn memo_slot(key: &[u8]) -> usize {
    (foldhash::fast::FixedState::with_seed(0x5eed).hash_one(key) as usize) % MEMO_SLOTS
}

/// `text` normalized (valid UTF-8 borrows; invalid bytes are replaced
/// lossily), from the memo when it or a text with the same skeleton was
/// seen recently.
fn normalize_memo(text: &Bytes) -> (Arc<str>, Fingerprint) {
    let normalize = || {
        let n = match std::str::from_utf8(text) {
            Ok(t) => pgpulse_sql::normalize(t),
            Err(_) => pgpulse_sql::normalize(&String::from_utf8_lossy(text)),
        };
        (Arc::<str>::from(n.text), n.fingerprint)
    };
    if text.len() > MEMO_MAX_TEXT {
        return normalize();
    }
    MEMO.with(|memo| {
        let memo = &mut *memo.borrow_mut();
        if memo.slots.is_empty() {
            memo.slots.resize(MEMO_SLOTS, None);
        }
        let slot = memo_slot(text);
        if let Some((t, n, f)) = &memo.slots[slot]
            && t[..] == text[..]
        {
            return (n.clone(), *f);
        }
        // A skeleton with no constant blanked is the text itself: keyed
        // by the text. Only valid UTF-8 gets a skeleton (normalization of
        // invalid bytes goes through a lossy copy).
        let blanked = match std::str::from_utf8(text) {
            Ok(_) => pgpulse_sql::skeleton(text, &mut memo.skeleton).unwrap_or(0),
            Err(_) => 0,
        };
        if blanked == 0 {
            let (n, f) = normalize();
            memo.slots[slot] = Some((text.clone(), n.clone(), f));
            return (n, f);
        }
        let slot = memo_slot(&memo.skeleton);
        if let Some((t, n, f)) = &memo.slots[slot]
            && t[..] == memo.skeleton[..]
        {
            return (n.clone(), *f);
        }
        let (n, f) = normalize();
        memo.slots[slot] = Some((Bytes::copy_from_slice(&memo.skeleton), n.clone(), f));
        (n, f)
    })
}

#[cfg(test)]
mod memo_tests {
    use super::*;

    #[test]
    fn memo_returns_what_normalize_returns() {
        let texts = [
            "SELECT * FROM t WHERE id = $1",
            "select *   from t where id = 42",
            "SELECT * FROM t WHERE id = $1",
            "UPDATE t SET a = 'x' WHERE id = 7",
        ];
        for t in texts {
            let want = pgpulse_sql::normalize(t);
            let (text, fp) = normalize_memo(&Bytes::from(t));
            assert_eq!(&*text, want.text.as_str());
            assert_eq!(fp, want.fingerprint);
        }
        // A repeated text is served from the memo (the same allocation).
        let a = normalize_memo(&Bytes::from_static(b"SELECT 1 FROM u WHERE k = $1"));
        let b = normalize_memo(&Bytes::from_static(b"SELECT 1 FROM u WHERE k = $1"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
    }

    #[test]
    fn texts_that_differ_in_their_constants_share_one_memo_entry() {
        let a = normalize_memo(&Bytes::from_static(
            b"SELECT abalance FROM pgbench_accounts WHERE aid = 4711",
        ));
        let b = normalize_memo(&Bytes::from_static(
            b"SELECT abalance FROM pgbench_accounts WHERE aid = 12",
        ));
        assert!(Arc::ptr_eq(&a.0, &b.0), "the second came from the memo");
        assert_eq!(
            &*b.0,
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
        );
        // A different shape is not confused with it.
        let c = normalize_memo(&Bytes::from_static(
            b"SELECT abalance FROM pgbench_accounts WHERE aid = 1.5",
        ));
        assert_eq!(
            c.1,
            pgpulse_sql::normalize("SELECT abalance FROM pgbench_accounts WHERE aid = 1.5")
                .fingerprint
        );
        let d = normalize_memo(&Bytes::from_static(
            b"SELECT abalance FROM pgbench_accounts WHERE aid IN (1, 2)",
        ));
        assert_eq!(
            &*d.0,
            "SELECT abalance FROM pgbench_accounts WHERE aid IN ($1)"
        );
    }

    #[test]
    fn memo_handles_invalid_utf8_and_long_texts() {
        let (text, _) = normalize_memo(&Bytes::from_static(b"SELECT '\xff' FROM t"));
        assert_eq!(&*text, "SELECT $1 FROM t");
        let long = format!("SELECT {} FROM t", "a, ".repeat(2000) + "b");
        let (text, fp) = normalize_memo(&Bytes::from(long.clone()));
        assert_eq!(fp, pgpulse_sql::normalize(&long).fingerprint);
        assert!(text.len() > MEMO_MAX_TEXT);
    }
}
