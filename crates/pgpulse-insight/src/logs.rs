//! Statements waiting to become `performance_logs` rows: every slow query
//! (until its plan status is final or its grace period is over) and a
//! sample of the others, in a bounded buffer kept next to the slow-query log
//! (one lock, so the EXPLAIN worker's plan reaches both). Also the sampler
//! the aggregator uses and the conversion into store rows.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use pgpulse_store::PerformanceLog;

use crate::event::CacheOutcome;
use crate::patterns::{count, ms, timestamp};
use crate::slow::{PlanStatus, SlowQuery};

/// One statement waiting to be logged. Holds the normalized text only.
#[derive(Debug, Clone)]
pub(crate) struct LogRecord {
    /// The statement (`id` is the slow-log id, 0 for a sampled one).
    pub query: SlowQuery,
    /// Whether it passed the slow threshold.
    pub slow: bool,
    /// What the cache did.
    pub cache: CacheOutcome,
    /// When the aggregator saw it (the grace period runs from here).
    pub seen_at: SystemTime,
}

/// The bounded buffer of records not yet drained.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    /// Slow records in increasing id order (for `set_plan`).
    slow: VecDeque<LogRecord>,
    sampled: Vec<LogRecord>,
    max: usize,
}

impl LogBuffer {
    /// An empty buffer holding at most `max` records.
    pub fn new(max: usize) -> Self {
        LogBuffer {
            slow: VecDeque::new(),
            sampled: Vec::new(),
            max,
        }
    }

    fn full(&self) -> bool {
        self.slow.len() + self.sampled.len() >= self.max
    }

    /// Adds a record; false (and nothing kept) when the buffer is full.
    pub fn push(&mut self, record: LogRecord) -> bool {
        if self.full() {
            return false;
        }
        if record.slow {
            self.slow.push_back(record);
        } else {
            self.sampled.push(record);
        }
        true
    }

    /// Sets the plan of the slow record `id` if it is still waiting.
    pub fn set_plan(&mut self, id: u64, plan: Option<&serde_json::Value>, status: &PlanStatus) {
        let Ok(i) = self.slow.binary_search_by_key(&id, |r| r.query.id) else {
            return;
        };
        let q = &mut self.slow[i].query;
        q.plan_summary = plan.and_then(crate::plan::summary);
        q.plan = plan.cloned();
        q.plan_status = status.clone();
    }

    /// Takes every sampled record and every slow record whose plan status
    /// is final, or that was seen more than `grace` before `now`.
    pub fn drain(&mut self, now: SystemTime, grace: Duration) -> Vec<LogRecord> {
        let mut out = std::mem::take(&mut self.sampled);
        let waited_enough =
            |r: &LogRecord| now.duration_since(r.seen_at).unwrap_or(Duration::ZERO) > grace;
        let mut waiting = VecDeque::new();
        for r in self.slow.drain(..) {
            if r.query.plan_status != PlanStatus::Pending || waited_enough(&r) {
                out.push(r);
            } else {
                waiting.push_back(r);
            }
        }
        self.slow = waiting;
        out
    }

    /// Records waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slow.len() + self.sampled.len()
    }
}

/// Chooses which ordinary statements are logged: each with probability
/// `rate`, from a fixed-seed xorshift stream (reproducible, one multiply-free
/// step per statement).
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    /// Sample when the next random `u64` is below this; `None` = always.
    below: Option<u64>,
    rng: u64,
}

impl Sampler {
    /// A sampler keeping a fraction `rate` (0..=1) of the statements.
    pub fn new(rate: f64) -> Self {
        let below = if rate >= 1.0 {
            None
        } else {
            // Exact enough: 2^-64 granularity.
            Some((rate.max(0.0) * u64::MAX as f64) as u64)
        };
        Sampler {
            below,
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    /// Whether to log the next statement.
    pub fn sample(&mut self) -> bool {
        match self.below {
            None => true,
            Some(0) => false,
            Some(below) => crate::series::xorshift(&mut self.rng) < below,
        }
    }
}

/// The store row of a drained record.
pub(crate) fn to_log(r: LogRecord) -> PerformanceLog {
    let q = r.query;
    let plan_summary = match (&q.plan, r.slow) {
        (Some(_), _) => q.plan_summary,
        (None, false) => None,
        (None, true) if q.plan_status == PlanStatus::Pending => {
            Some("plan not ready within the grace period".into())
        }
        (None, true) => Some(q.plan_status.label()),
    };
    PerformanceLog {
        id: 0,
        logged_at: timestamp(q.started_at),
        fingerprint: q.fingerprint.to_string(),
        query: q.query.to_string(),
        database: q.database.to_string(),
        user_name: q.user.to_string(),
        application_name: q.application_name.to_string(),
        duration_ms: ms(q.duration),
        rows: count(q.rows),
        error: q.error.map(|s| s.to_string()),
        slow: r.slow,
        cache: cache_label(r.cache).into(),
        plan: q.plan,
        plan_summary,
    }
}

fn cache_label(c: CacheOutcome) -> &'static str {
    match c {
        CacheOutcome::Hit => "hit",
        CacheOutcome::Miss => "miss",
        CacheOutcome::Filled => "filled",
        CacheOutcome::Bypass => "bypass",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgpulse_sql::Fingerprint;
    use std::time::UNIX_EPOCH;

    fn record(id: u64, slow: bool, seen_secs: u64) -> LogRecord {
        LogRecord {
            query: SlowQuery {
                id,
                fingerprint: Fingerprint(id),
                query: "SELECT * FROM t WHERE id = $1".into(),
                started_at: UNIX_EPOCH + Duration::from_secs(seen_secs),
                duration: Duration::from_millis(1500),
                database: "d".into(),
                user: "u".into(),
                application_name: "a".into(),
                rows: 3,
                error: None,
                plan: None,
                plan_summary: None,
                plan_status: if slow {
                    PlanStatus::Pending
                } else {
                    PlanStatus::Disabled
                },
            },
            slow,
            cache: CacheOutcome::Miss,
            seen_at: UNIX_EPOCH + Duration::from_secs(seen_secs),
        }
    }

    #[test]
    fn slow_records_wait_for_their_plan_or_the_grace_period() {
        let mut b = LogBuffer::new(10);
        assert!(b.push(record(1, true, 100)));
        assert!(b.push(record(2, true, 100)));
        assert!(b.push(record(0, false, 100)));
        let plan = serde_json::json!([{"Plan": {"Node Type": "Result"}}]);
        b.set_plan(2, Some(&plan), &PlanStatus::Captured);
        let grace = Duration::from_secs(30);
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        let first: Vec<(u64, bool)> = b
            .drain(t(110), grace)
            .iter()
            .map(|r| (r.query.id, r.slow))
            .collect();
        assert_eq!(first, [(0, false), (2, true)]);
        assert_eq!(b.len(), 1);
        assert!(
            b.drain(t(130), grace).is_empty(),
            "exactly 30 s is not over"
        );
        let late = b.drain(t(131), grace);
        assert_eq!(late.len(), 1);
        let row = to_log(late.into_iter().next().expect("one"));
        assert_eq!((row.slow, row.plan.is_none()), (true, true));
        assert_eq!(
            row.plan_summary.as_deref(),
            Some("plan not ready within the grace period")
        );
        assert_eq!(
            (row.duration_ms, row.rows, row.cache.as_str()),
            (1500.0, 3, "miss")
        );
        assert_eq!(row.fingerprint, Fingerprint(1).to_string());
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut b = LogBuffer::new(2);
        assert!(b.push(record(1, true, 0)));
        assert!(b.push(record(0, false, 0)));
        assert!(!b.push(record(2, true, 0)));
        assert!(!b.push(record(0, false, 0)));
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn the_sampler_keeps_about_its_rate() {
        let kept = |rate: f64| {
            let mut s = Sampler::new(rate);
            (0..100_000).filter(|_| s.sample()).count()
        };
        assert_eq!(kept(0.0), 0);
        assert_eq!(kept(1.0), 100_000);
        let one_percent = kept(0.01);
        assert!((800..=1_200).contains(&one_percent), "{one_percent}");
        let half = kept(0.5);
        assert!((49_000..=51_000).contains(&half), "{half}");
    }
}
