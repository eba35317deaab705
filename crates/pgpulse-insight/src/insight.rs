//! [`Insight`], the handle that starts the aggregator (and the EXPLAIN
//! worker) and serves the live read API: top statements, one fingerprint,
//! time series, rates, slow queries and counters; and the drains the
//! flusher (`flush.rs`) writes to the store.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use pgpulse_sql::Fingerprint;
use pgpulse_store::{PerformanceLog, QueryPattern};

use crate::aggregator::Aggregator;
use crate::clock::{Clock, SystemClock};
use crate::config::InsightConfig;
use crate::error::InsightError;
use crate::flush::Retry;
use crate::logs::Sampler;
use crate::patterns::shapes::{QueryShape, Shapes};
use crate::recorder::{CounterSnapshot, Counters, Msg, Recorder};
use crate::registry::{Key, OrderBy, Registry};
use crate::series::{MinuteBucket, Rates};
use crate::slow::{SlowLog, SlowQuery, TokenBucket};
use crate::stats::FingerprintStats;

/// Handle on a running insight instance. Cheap to clone; the read methods
/// take a short lock on the aggregated state.
#[derive(Debug, Clone)]
pub struct Insight {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: Sender<Msg>,
    registry: Arc<Mutex<Registry>>,
    slow: Arc<Mutex<SlowLog>>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// How long a slow query waits for its plan before being logged.
    log_plan_grace: Duration,
    /// Rows a failed flush keeps for the next one.
    retry: Mutex<Retry>,
    /// Bursts and distinct texts per fingerprint.
    shapes: Arc<Mutex<Shapes>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the threads finish what is queued and exit; do not wait.
        let _ = self.tx.send_timeout(Msg::Shutdown, Duration::from_secs(1));
    }
}

impl Insight {
    /// Starts insight with the system clock.
    pub fn start(config: InsightConfig) -> Result<Insight, InsightError> {
        Insight::start_with_clock(config, Arc::new(SystemClock))
    }

    /// Starts insight with an explicit clock (tests drive time with
    /// [`crate::ManualClock`]). Spawns the aggregator thread and, when
    /// EXPLAIN is configured, the EXPLAIN thread (no tokio runtime needed).
    pub fn start_with_clock(
        config: InsightConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Insight, InsightError> {
        config.validate()?;
        let cap = NonZeroUsize::new(config.max_fingerprints)
            .ok_or_else(|| InsightError::Config("max_fingerprints must be at least 1".into()))?;
        let registry = Arc::new(Mutex::new(Registry::new(
            cap,
            config.histogram_digits,
            config.series_retention,
            config.max_series_buckets,
            clock.now(),
        )));
        let slow = Arc::new(Mutex::new(SlowLog::new(
            config.slow_log_capacity,
            config.max_pending_logs,
        )));
        let counters = Arc::new(Counters::default());
        let shapes = Arc::new(Mutex::new(Shapes::default()));
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity);
        let mut threads = Vec::new();
        let explain = match config.explain.clone() {
            None => None,
            Some(ec) => {
                let per_minute = ec.per_minute;
                let cap = usize::try_from(per_minute)
                    .unwrap_or(usize::MAX)
                    .clamp(1, 1024);
                let (jtx, jrx) = crossbeam_channel::bounded(cap);
                threads.push(crate::explain::spawn(
                    ec,
                    jrx,
                    slow.clone(),
                    counters.clone(),
                )?);
                Some((jtx, TokenBucket::new(per_minute)))
            }
        };
        let aggregator = Aggregator {
            rx,
            registry: registry.clone(),
            slow: slow.clone(),
            counters: counters.clone(),
            clock: clock.clone(),
            threshold: config.slow_threshold,
            explain,
            sampler: Sampler::new(config.log_sample_rate),
            shapes: shapes.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name("pgpulse-insight".into())
                .spawn(move || aggregator.run())?,
        );
        Ok(Insight {
            inner: Arc::new(Inner {
                tx,
                registry,
                slow,
                counters,
                clock,
                threads: Mutex::new(threads),
                log_plan_grace: config.log_plan_grace,
                retry: Mutex::new(Retry::new(config.max_retry_rows)),
                shapes,
            }),
        })
    }

    /// A recorder feeding this instance (give one to the proxy's observer).
    pub fn recorder(&self) -> Recorder {
        Recorder::new(self.inner.tx.clone(), self.inner.counters.clone())
    }

    /// Waits until every event recorded before this call is aggregated and
    /// every EXPLAIN it caused has finished. For tests and orderly shutdown;
    /// blocks, so never call it on the proxy's hot path.
    pub fn flush(&self) -> Result<(), InsightError> {
        let (ack, done) = crossbeam_channel::bounded(1);
        self.inner
            .tx
            .send(Msg::Flush(ack))
            .map_err(|_| InsightError::Stopped)?;
        done.recv().map_err(|_| InsightError::Stopped)
    }

    /// Processes what is queued, then stops the threads and waits for them.
    /// Recorders still alive drop their events from then on.
    pub fn shutdown(&self) {
        let _ = self.inner.tx.send(Msg::Shutdown);
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The `n` entries (per fingerprint, database and user) with the largest
    /// total time, p95 or call count.
    ///
    /// # Performance
    /// Ordering by p95 computes each changed entry's percentile (tens of µs
    /// each) under the lock the aggregator needs; fine for a dashboard
    /// refreshing every few seconds, not for a tight loop.
    pub fn top(&self, n: usize, order_by: OrderBy) -> Vec<FingerprintStats> {
        self.registry().top(n, order_by)
    }

    /// The statistics of a fingerprint merged over all databases and users
    /// (`database` / `user` are `*` when several).
    pub fn get(&self, fingerprint: Fingerprint) -> Option<FingerprintStats> {
        self.registry().get(fingerprint)
    }

    /// The statistics of a fingerprint for one database and user.
    pub fn get_for(
        &self,
        fingerprint: Fingerprint,
        database: &str,
        user: &str,
    ) -> Option<FingerprintStats> {
        let key = Key {
            fingerprint,
            database: Arc::from(database),
            user: Arc::from(user),
        };
        self.registry().get_exact(&key)
    }

    /// Per-minute buckets of a fingerprint for the last `minutes` minutes
    /// (capped by the retention), oldest first, one per minute including
    /// empty ones; the last is the current, still open minute.
    pub fn series(&self, fingerprint: Fingerprint, minutes: u32) -> Vec<MinuteBucket> {
        let now = self.inner.clock.now();
        self.registry().series(fingerprint, minutes, now)
    }

    /// Per-minute buckets (as [`Insight::series`]) of every fingerprint that
    /// ran in the last `minutes` minutes, with its normalized text, in one
    /// pass (what the degradation detector reads each evaluation).
    pub fn recent_series(&self, minutes: u32) -> Vec<(Fingerprint, Arc<str>, Vec<MinuteBucket>)> {
        let now = self.inner.clock.now();
        self.registry().recent_series(minutes, now)
    }

    /// Per-minute buckets of all statements.
    pub fn series_all(&self, minutes: u32) -> Vec<MinuteBucket> {
        let now = self.inner.clock.now();
        self.registry().series_all(minutes, now)
    }

    /// Statement and error rates over the last 60 seconds.
    pub fn rates(&self) -> Rates {
        let now = self.inner.clock.now();
        self.registry().rates(now)
    }

    /// Per fingerprint since the start: the longest back-to-back run by
    /// one session and how many distinct raw texts it arrived as (see
    /// [`QueryShape`]); what pattern analysis reads for N+1 and
    /// unparameterized statements.
    pub fn query_shapes(&self) -> Vec<QueryShape> {
        self.inner
            .shapes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot()
    }

    /// The newest `limit` slow queries, newest first.
    pub fn slow_queries(&self, limit: usize) -> Vec<SlowQuery> {
        self.inner
            .slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .newest(limit)
    }

    /// Counters: events, drops, evictions, slow queries, EXPLAINs, flushes.
    pub fn counters(&self) -> CounterSnapshot {
        let (evicted, len, buckets, periods_dropped) = {
            let r = self.registry();
            (r.evicted, r.len(), r.series_buckets(), r.periods_dropped)
        };
        self.inner
            .counters
            .snapshot(evicted, len, buckets, periods_dropped)
    }

    /// The statistics of every (fingerprint, database, user) that ran since
    /// the previous drain (or the start), one `query_patterns` row each for
    /// the period `[previous drain, now)`, and starts a new period.
    ///
    /// Statements still in the queue count in the next period (call
    /// [`Insight::flush`] first to include them). Evicted entries keep
    /// their period until this drain.
    ///
    /// # Performance
    /// The registry lock is held only to move the period accumulators out;
    /// percentiles and histogram serialization (a few µs per row) run after.
    pub fn drain_patterns(&self) -> Vec<QueryPattern> {
        let now = self.inner.clock.now();
        let drained = self.registry().drain_periods(now);
        crate::patterns::to_patterns(&drained)
    }

    /// The statements to write to `performance_logs` since the previous
    /// drain: every slow query whose plan status is final (captured, failed,
    /// rate-limited, ...) or that waited longer than `log_plan_grace` (then
    /// without its plan), and the sampled others. Normalized text only.
    pub fn drain_logs(&self) -> Vec<PerformanceLog> {
        let now = self.inner.clock.now();
        let records = self
            .inner
            .slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .drain(now, self.inner.log_plan_grace);
        records.into_iter().map(crate::logs::to_log).collect()
    }

    /// The flusher's retry buffer and the shared counters.
    pub(crate) fn retry(&self) -> (&Mutex<Retry>, &Counters) {
        (&self.inner.retry, &self.inner.counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::event::{CacheOutcome, SqlState, StatementEvent};
    use crate::slow::PlanStatus;
    use std::time::{SystemTime, UNIX_EPOCH};

    const T0: u64 = 1_700_000_040; // a minute boundary

    fn start(config: InsightConfig) -> (Insight, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let insight = Insight::start_with_clock(config, clock.clone()).expect("start");
        (insight, clock)
    }

    fn event(text: &str, at: SystemTime, ms: u64) -> StatementEvent {
        let session = crate::Session::new("db", "alice", "app");
        let mut e = StatementEvent::new(session, text.to_string(), at, Duration::from_millis(ms));
        e.rows = 1;
        e
    }

    #[test]
    fn statements_are_normalized_and_aggregated() {
        let (ins, clock) = start(InsightConfig::default());
        let r = ins.recorder();
        let t0 = clock.now();
        for i in 1..=100u64 {
            let mut e = event(&format!("select * from t where id = {i}"), t0, i);
            e.cache = if i % 4 == 0 {
                CacheOutcome::Hit
            } else {
                CacheOutcome::Miss
            };
            e.error = (i % 10 == 0).then(|| SqlState::new("57014")).flatten();
            assert!(r.record(e));
        }
        assert!(r.record(event("SELECT now()", t0, 500)));
        ins.flush().expect("flush");
        let top = ins.top(10, OrderBy::Calls);
        assert_eq!(top.len(), 2);
        let s = &top[0];
        assert_eq!(&*s.query, "SELECT * FROM t WHERE id = $1");
        assert_eq!(
            (s.calls, s.rows, s.errors, s.cache_hits, s.cache_misses),
            (100, 100, 10, 25, 75)
        );
        assert_eq!(s.total_time, Duration::from_millis(5050));
        // HDR reports the top of the value's bucket: within 1 % with the
        // default 2 significant digits.
        assert!(
            s.p50 >= Duration::from_millis(50) && s.p50 <= Duration::from_micros(50_500),
            "{:?}",
            s.p50
        );
        assert!(
            s.p95 >= Duration::from_millis(95) && s.p95 <= Duration::from_micros(95_950),
            "{:?}",
            s.p95
        );
        assert_eq!(s.max_time, Duration::from_millis(100));
        assert_eq!(ins.get(s.fingerprint).map(|g| g.calls), Some(100));
        assert_eq!(
            ins.get_for(s.fingerprint, "db", "alice").map(|g| g.calls),
            Some(100)
        );
        assert!(ins.get_for(s.fingerprint, "db", "bob").is_none());
        assert_eq!(ins.top(1, OrderBy::TotalTime)[0].fingerprint, s.fingerprint);
        assert_eq!(ins.top(1, OrderBy::P95)[0].query.as_ref(), "SELECT now()");
        let c = ins.counters();
        assert_eq!(
            (c.events, c.dropped, c.slow_queries, c.fingerprints),
            (101, 0, 0, 2)
        );
        // All completed within the first minute.
        clock.advance(Duration::from_secs(30));
        let rates = ins.rates();
        assert_eq!(
            (rates.calls_last_minute, rates.errors_last_minute),
            (101, 10)
        );
        clock.advance(Duration::from_secs(60));
        assert_eq!(ins.rates().calls_last_minute, 0);
        ins.shutdown();
    }

    #[test]
    fn minute_buckets_roll_over_with_the_injected_clock() {
        let (ins, clock) = start(InsightConfig::default());
        let r = ins.recorder();
        let t0 = clock.now();
        for m in 0..3u64 {
            for k in 0..=m {
                let at = t0 + Duration::from_secs(m * 60 + k);
                assert!(r.record(event("SELECT 1", at, 10 * (m + 1))));
            }
        }
        ins.flush().expect("flush");
        clock.advance(Duration::from_secs(2 * 60 + 5));
        let fp = ins.top(1, OrderBy::Calls)[0].fingerprint;
        let s = ins.series(fp, 5);
        assert_eq!(s.len(), 5);
        assert_eq!(
            s.iter().map(|b| b.calls).collect::<Vec<_>>(),
            [0, 0, 1, 2, 3]
        );
        assert_eq!(s[4].p95, Duration::from_millis(30));
        assert_eq!(s[4].total_time, Duration::from_millis(90));
        assert_eq!(s[4].minute, UNIX_EPOCH + Duration::from_secs(T0 + 120));
        assert_eq!(ins.series_all(5), s);
        assert_eq!(ins.counters().series_buckets, 2);
        // The window moves with the clock, not with new events.
        clock.advance(Duration::from_secs(10 * 60));
        assert!(ins.series(fp, 5).iter().all(|b| b.calls == 0));
        assert_eq!(ins.series(fp, 20).iter().map(|b| b.calls).sum::<u64>(), 6);
        ins.shutdown();
    }

    #[test]
    fn fingerprint_cap_evicts_and_counts() {
        let config = InsightConfig {
            max_fingerprints: 3,
            ..InsightConfig::default()
        };
        let (ins, clock) = start(config);
        let r = ins.recorder();
        for t in ["a", "b", "c", "a", "d", "e"] {
            assert!(r.record(event(&format!("SELECT * FROM {t}"), clock.now(), 1)));
        }
        ins.flush().expect("flush");
        let c = ins.counters();
        assert_eq!((c.fingerprints, c.evicted, c.events), (3, 2, 6));
        let mut left: Vec<String> = ins
            .top(10, OrderBy::Calls)
            .iter()
            .map(|s| s.query.to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["SELECT * FROM a", "SELECT * FROM d", "SELECT * FROM e"]
        );
    }

    #[test]
    fn slow_queries_without_explain_keep_only_normalized_text() {
        let config = InsightConfig {
            slow_threshold: Duration::from_millis(100),
            ..InsightConfig::default()
        };
        let (ins, clock) = start(config);
        let r = ins.recorder();
        assert!(r.record(event(
            "SELECT * FROM patients WHERE name = 'Jane Doe'",
            clock.now(),
            250
        )));
        assert!(r.record(event("SELECT 1", clock.now(), 99)));
        ins.flush().expect("flush");
        let slow = ins.slow_queries(10);
        assert_eq!(slow.len(), 1);
        let q = &slow[0];
        assert_eq!(&*q.query, "SELECT * FROM patients WHERE name = $1");
        assert_eq!(
            (q.duration, &*q.application_name),
            (Duration::from_millis(250), "app")
        );
        assert_eq!(q.plan_status, PlanStatus::Disabled);
        assert!(!serde_json::to_string(&slow).expect("json").contains("Jane"));
        let (cols, rows) = ins.show_slow_queries(10);
        assert_eq!(cols, crate::SHOW_SLOW_QUERIES_COLUMNS);
        assert_eq!(rows[0][1].as_deref(), Some("250.000"));
        assert_eq!(rows[0][6].as_deref(), Some("explain disabled"));
        let (cols, rows) = ins.show_queries(10);
        assert_eq!(cols.len(), 11);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0][1].as_deref(),
            Some("SELECT * FROM patients WHERE name = $1")
        );
        assert_eq!(rows[0][5].as_deref(), Some("250.000"));
        assert_eq!(ins.counters().slow_queries, 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let config = InsightConfig {
            queue_capacity: 1,
            ..InsightConfig::default()
        };
        let (ins, clock) = start(config);
        let r = ins.recorder();
        let sent = 10_000;
        let accepted = (0..sent)
            .filter(|_| r.record(event("SELECT 1", clock.now(), 1)))
            .count() as u64;
        ins.flush().expect("flush");
        let c = ins.counters();
        assert!(
            c.dropped > 0,
            "a one-slot queue cannot keep up with a tight loop"
        );
        assert_eq!(c.dropped, sent - accepted);
        assert_eq!(c.events, accepted);
        ins.shutdown();
        assert!(!r.record(event("SELECT 1", clock.now(), 1)));
        assert_eq!(ins.counters().dropped, sent - accepted + 1);
    }

    #[test]
    fn drain_patterns_gives_one_row_per_key_and_period() {
        let (ins, clock) = start(InsightConfig::default());
        let r = ins.recorder();
        for i in 1..=10u64 {
            let mut e = event(&format!("SELECT * FROM t WHERE id = {i}"), clock.now(), i);
            e.error = (i == 3).then(|| SqlState::new("23505")).flatten();
            e.cache = CacheOutcome::Filled;
            assert!(r.record(e));
        }
        assert!(r.record(event("SELECT 1", clock.now(), 1)));
        ins.flush().expect("flush");
        clock.advance(Duration::from_secs(60));
        let mut rows = ins.drain_patterns();
        rows.sort_by_key(|p| std::cmp::Reverse(p.calls));
        assert_eq!(rows.len(), 2);
        let p = &rows[0];
        assert_eq!(p.query, "SELECT * FROM t WHERE id = $1");
        assert_eq!(
            p.fingerprint,
            ins.top(1, OrderBy::Calls)[0].fingerprint.to_string()
        );
        assert_eq!(p.fingerprint.len(), 16);
        assert_eq!((p.calls, p.rows, p.errors), (10, 10, 1));
        assert_eq!((p.cache_hits, p.cache_misses), (0, 10));
        assert_eq!((p.min_ms, p.max_ms, p.total_time_ms), (1.0, 10.0, 55.0));
        assert_eq!((&*p.database, &*p.user_name), ("db", "alice"));
        assert_eq!(p.period_start.timestamp(), T0 as i64);
        assert_eq!(p.period_end.timestamp(), T0 as i64 + 60);
        // Nothing ran since: nothing to drain. Then a second period.
        assert!(ins.drain_patterns().is_empty());
        assert!(r.record(event("SELECT 1", clock.now(), 7)));
        ins.flush().expect("flush");
        clock.advance(Duration::from_secs(60));
        let rows = ins.drain_patterns();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].calls, rows[0].max_ms), (1, 7.0));
        assert_eq!(rows[0].period_start.timestamp(), T0 as i64 + 60);
        assert_eq!(rows[0].period_end.timestamp(), T0 as i64 + 120);
        // The live statistics still add up everything.
        assert_eq!(ins.top(2, OrderBy::Calls)[1].calls, 2);
        ins.shutdown();
    }

    #[test]
    fn drain_logs_has_slow_queries_and_the_sample() {
        let sampled = |rate: f64| {
            let config = InsightConfig {
                slow_threshold: Duration::from_millis(100),
                log_sample_rate: rate,
                ..InsightConfig::default()
            };
            let (ins, clock) = start(config);
            let r = ins.recorder();
            for i in 0..50 {
                assert!(r.record(event(&format!("SELECT {i}"), clock.now(), 5)));
            }
            assert!(r.record(event(
                "SELECT * FROM p WHERE name = 'Jane'",
                clock.now(),
                250
            )));
            ins.flush().expect("flush");
            let logs = ins.drain_logs();
            assert!(ins.drain_logs().is_empty(), "drained once");
            ins.shutdown();
            logs
        };
        for (rate, others) in [(0.0, 0), (1.0, 50)] {
            let logs = sampled(rate);
            assert_eq!(logs.len(), 1 + others, "rate {rate}");
            let slow: Vec<_> = logs.iter().filter(|l| l.slow).collect();
            assert_eq!(slow.len(), 1);
            let s = slow[0];
            assert_eq!(s.query, "SELECT * FROM p WHERE name = $1");
            assert_eq!((s.duration_ms, s.rows), (250.0, 1));
            assert_eq!(s.plan_summary.as_deref(), Some("explain disabled"));
            assert_eq!((&*s.application_name, &*s.cache), ("app", "bypass"));
            assert!(logs.iter().all(|l| l.query == "SELECT $1" || l.slow));
            let json = serde_json::to_string(&logs).expect("json");
            assert!(!json.contains("Jane"), "{json}");
        }
    }

    #[test]
    fn the_log_buffer_is_bounded_and_counts_drops() {
        let config = InsightConfig {
            log_sample_rate: 1.0,
            max_pending_logs: 5,
            ..InsightConfig::default()
        };
        let (ins, clock) = start(config);
        let r = ins.recorder();
        for _ in 0..8 {
            assert!(r.record(event("SELECT 1", clock.now(), 1)));
        }
        ins.flush().expect("flush");
        assert_eq!(ins.counters().logs_dropped, 3);
        assert_eq!(ins.drain_logs().len(), 5);
        ins.shutdown();
    }
}
