//! Slow-query records: the bounded log readers see (with, under the same
//! lock, the records waiting to be flushed as performance logs), the plan
//! status of each record, and the token bucket that limits how many
//! EXPLAINs run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pgpulse_sql::Fingerprint;
use serde::Serialize;

use crate::event::{CacheOutcome, SqlState};
use crate::logs::{LogBuffer, LogRecord};

/// Whether a slow query has a plan, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum PlanStatus {
    /// EXPLAIN is queued or running.
    Pending,
    /// The plan is in `SlowQuery::plan`.
    Captured,
    /// EXPLAIN capture is not configured.
    Disabled,
    /// Skipped: the EXPLAIN rate limit was reached.
    RateLimited,
    /// Skipped: the statement cannot be explained (the reason says why).
    NotExplainable(&'static str),
    /// EXPLAIN failed; the SQLSTATE if the server reported one (the message
    /// is not kept: it may quote literal values).
    Failed(Option<String>),
    /// EXPLAIN did not finish within the timeout.
    TimedOut,
}

impl PlanStatus {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            PlanStatus::Pending => "pending".into(),
            PlanStatus::Captured => "captured".into(),
            PlanStatus::Disabled => "explain disabled".into(),
            PlanStatus::RateLimited => "skipped: rate limit".into(),
            PlanStatus::NotExplainable(why) => format!("not explainable: {why}"),
            PlanStatus::Failed(Some(code)) => format!("explain failed: {code}"),
            PlanStatus::Failed(None) => "explain failed".into(),
            PlanStatus::TimedOut => "explain timed out".into(),
        }
    }
}

/// One statement slower than the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowQuery {
    /// Sequence number, increasing.
    pub id: u64,
    /// Fingerprint of the normalized text (16 hex digits when serialized).
    #[serde(serialize_with = "ser_fingerprint")]
    pub fingerprint: Fingerprint,
    /// Normalized text: literals are never stored.
    pub query: Arc<str>,
    /// When it started.
    pub started_at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// Database name.
    pub database: Arc<str>,
    /// User name.
    pub user: Arc<str>,
    /// The client's `application_name`.
    pub application_name: Arc<str>,
    /// Rows returned or affected.
    pub rows: u64,
    /// SQLSTATE if it failed.
    pub error: Option<SqlState>,
    /// The `EXPLAIN (FORMAT JSON)` output (the top-level array), with string
    /// and numeric constants in expressions replaced by `$?` unless
    /// `keep_literals` is set.
    pub plan: Option<serde_json::Value>,
    /// One-line summary of the plan's top node (`Seq Scan on t (cost=..)`).
    pub plan_summary: Option<String>,
    /// Whether a plan was captured, and why not.
    pub plan_status: PlanStatus,
}

fn ser_fingerprint<S: serde::Serializer>(f: &Fingerprint, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(f)
}

/// The last `capacity` slow queries, oldest first, and the statements
/// waiting to be flushed as performance logs.
#[derive(Debug)]
pub(crate) struct SlowLog {
    records: VecDeque<SlowQuery>,
    capacity: usize,
    next_id: u64,
    /// Slow and sampled statements not yet drained.
    pub pending: LogBuffer,
}

impl SlowLog {
    /// A log of `capacity` records whose flush buffer holds `max_pending`.
    pub fn new(capacity: usize, max_pending: usize) -> Self {
        SlowLog {
            records: VecDeque::new(),
            capacity: capacity.max(1),
            next_id: 1,
            pending: LogBuffer::new(max_pending),
        }
    }

    /// [`SlowLog::push`], and queues the record for the performance logs;
    /// returns the id and whether the flush buffer had room.
    pub fn push_logged(
        &mut self,
        q: SlowQuery,
        cache: CacheOutcome,
        seen_at: SystemTime,
    ) -> (u64, bool) {
        let id = self.push(q);
        let kept = match self.records.back() {
            Some(stored) => self.pending.push(LogRecord {
                query: stored.clone(),
                slow: true,
                cache,
                seen_at,
            }),
            None => false,
        };
        (id, kept)
    }

    /// Adds a record (its `id` is assigned here) and returns the id.
    pub fn push(&mut self, mut q: SlowQuery) -> u64 {
        q.id = self.next_id;
        self.next_id += 1;
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(q);
        self.next_id - 1
    }

    /// Sets the plan of record `id` if it is still kept (in the log or in
    /// the flush buffer).
    pub fn set_plan(&mut self, id: u64, plan: Option<serde_json::Value>, status: PlanStatus) {
        self.pending.set_plan(id, plan.as_ref(), &status);
        let Ok(i) = self.records.binary_search_by_key(&id, |r| r.id) else {
            return;
        };
        let r = &mut self.records[i];
        r.plan_summary = plan.as_ref().and_then(crate::plan::summary);
        r.plan = plan;
        r.plan_status = status;
    }

    /// The newest `limit` records, newest first.
    pub fn newest(&self, limit: usize) -> Vec<SlowQuery> {
        self.records.iter().rev().take(limit).cloned().collect()
    }
}

/// A token bucket refilled continuously at `per_minute` tokens a minute,
/// holding at most `per_minute`; time comes from the caller (the clock).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    per_minute: f64,
    tokens: f64,
    last: Option<SystemTime>,
}

impl TokenBucket {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        TokenBucket {
            per_minute,
            tokens: per_minute,
            last: None,
        }
    }

    /// Takes a token if one is available at `now`.
    pub fn try_take(&mut self, now: SystemTime) -> bool {
        if let Some(last) = self.last {
            // A clock going backwards refills nothing.
            let elapsed = now.duration_since(last).unwrap_or(Duration::ZERO);
            self.tokens =
                (self.tokens + elapsed.as_secs_f64() * self.per_minute / 60.0).min(self.per_minute);
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn record(n: u64) -> SlowQuery {
        SlowQuery {
            id: 0,
            fingerprint: Fingerprint(n),
            query: "SELECT $1".into(),
            started_at: UNIX_EPOCH,
            duration: Duration::from_secs(2),
            database: "d".into(),
            user: "u".into(),
            application_name: "a".into(),
            rows: 0,
            error: None,
            plan: None,
            plan_summary: None,
            plan_status: PlanStatus::Pending,
        }
    }

    #[test]
    fn log_is_bounded_and_newest_first() {
        let mut log = SlowLog::new(3, 10);
        for n in 1..=5 {
            log.push(record(n));
        }
        let ids: Vec<u64> = log.newest(10).iter().map(|r| r.id).collect();
        assert_eq!(ids, [5, 4, 3]);
        log.set_plan(
            4,
            Some(serde_json::json!([{"Plan": {"Node Type": "Result"}}])),
            PlanStatus::Captured,
        );
        log.set_plan(1, None, PlanStatus::Captured); // evicted: ignored
        let r = &log.newest(2)[1];
        assert_eq!((r.id, &r.plan_status), (4, &PlanStatus::Captured));
        assert_eq!(r.plan_summary.as_deref(), Some("Result"));
    }

    #[test]
    fn bucket_allows_burst_then_refills_with_time() {
        let mut b = TokenBucket::new(30);
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let taken = (0..1000).filter(|_| b.try_take(t0)).count();
        assert_eq!(taken, 30);
        // 30 a minute = one every 2 s.
        assert!(!b.try_take(t0 + Duration::from_secs(1)));
        assert!(b.try_take(t0 + Duration::from_secs(2)));
        assert!(!b.try_take(t0 + Duration::from_secs(2)));
        // Going backwards refills nothing.
        assert!(!b.try_take(t0));
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| b.try_take(later)).count(), 30);
    }
}
