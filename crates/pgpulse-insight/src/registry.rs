//! The table of statistics entries, one per (fingerprint, database, user),
//! bounded by an LRU cap, plus the all-statements series and rate ring. Owned
//! by the aggregator behind a mutex; readers take snapshots.
//!
//! Each entry also accumulates its current *period* (since the last drain):
//! [`Registry::drain_periods`] takes them all and starts a new period; the
//! period of an evicted entry waits in a bounded list for the next drain.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lru::LruCache;
use pgpulse_sql::Fingerprint;
use serde::Serialize;

use crate::clock::{unix_minute, unix_secs};
use crate::series::{Budget, MinuteBucket, MinuteSeries, Rates, SecondRing, dense};
use crate::stats::{Accum, FingerprintStats, Sample, hist_us};

/// Sort order for [`crate::Insight::top`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderBy {
    /// Total time spent, descending.
    TotalTime,
    /// 95th percentile latency, descending.
    P95,
    /// Number of executions, descending.
    Calls,
}

/// What an entry is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub fingerprint: Fingerprint,
    pub database: Arc<str>,
    pub user: Arc<str>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    query: Arc<str>,
    accum: Accum,
    series: MinuteSeries,
    /// Cached p95 for ordering; `None` after a new execution.
    p95: Option<Duration>,
    /// The executions since the last drain; `None` when there were none
    /// (an empty histogram is not kept for idle entries).
    period: Option<Accum>,
}

/// One entry's statistics over the period being drained.
#[derive(Debug)]
pub(crate) struct DrainedPeriod {
    pub key: Key,
    pub query: Arc<str>,
    pub accum: Accum,
}

/// Everything [`Registry::drain_periods`] took: the period `[start, end)`
/// and one row per key that ran in it.
#[derive(Debug)]
pub(crate) struct Drained {
    pub start: SystemTime,
    pub end: SystemTime,
    pub rows: Vec<DrainedPeriod>,
}

impl Entry {
    fn p95(&mut self) -> Duration {
        *self.p95.get_or_insert_with(|| self.accum.quantile(0.95))
    }
}

/// All aggregated state.
#[derive(Debug)]
pub(crate) struct Registry {
    /// foldhash: hashed on every statement (SipHash was measurable).
    entries: LruCache<Key, Entry, foldhash::fast::RandomState>,
    digits: u8,
    retention_minutes: u64,
    budget: Budget,
    all: MinuteSeries,
    all_budget: Budget,
    ring: SecondRing,
    rng: u64,
    pub evicted: u64,
    /// Start of the current period (the previous drain).
    period_start: SystemTime,
    /// Undrained periods of evicted entries, at most `max_evicted_periods`.
    evicted_periods: Vec<DrainedPeriod>,
    max_evicted_periods: usize,
    /// Evicted periods lost because `evicted_periods` was full.
    pub periods_dropped: u64,
}

impl Registry {
    /// An empty registry holding at most `cap` entries, whose first period
    /// starts at `period_start`. Up to `cap` (at least 1,000) periods of
    /// evicted entries wait for the next drain.
    pub fn new(
        cap: NonZeroUsize,
        digits: u8,
        retention: Duration,
        max_buckets: usize,
        period_start: SystemTime,
    ) -> Self {
        let retention_minutes = (retention.as_secs() / 60).max(1);
        Registry {
            entries: LruCache::with_hasher(cap, foldhash::fast::RandomState::default()),
            digits,
            retention_minutes,
            budget: Budget {
                used: 0,
                max: max_buckets,
            },
            all: MinuteSeries::default(),
            all_budget: Budget {
                used: 0,
                max: usize::try_from(retention_minutes).unwrap_or(usize::MAX),
            },
            ring: SecondRing::default(),
            rng: 0x9E37_79B9_7F4A_7C15,
            evicted: 0,
            period_start,
            evicted_periods: Vec::new(),
            max_evicted_periods: cap.get().max(1_000),
            periods_dropped: 0,
        }
    }

    /// Adds one execution of the normalized statement `query` (called only
    /// for a new entry); returns the entry's normalized text.
    pub fn record(&mut self, key: Key, query: impl FnOnce() -> Arc<str>, s: &Sample) -> Arc<str> {
        let minute = unix_minute(s.completed_at);
        let us = hist_us(s.duration);
        self.ring.record(unix_secs(s.completed_at), s.error);
        self.all
            .record(minute, us, s.error, &mut self.rng, &mut self.all_budget);
        if !self.entries.contains(&key) {
            let entry = Entry {
                query: query(),
                accum: Accum::new(self.digits),
                series: MinuteSeries::default(),
                p95: None,
                period: None,
            };
            if let Some((old_key, old)) = self.entries.push(key.clone(), entry) {
                self.evicted += 1;
                self.budget.used = self.budget.used.saturating_sub(old.series.closed_len());
                self.keep_evicted_period(old_key, old);
            }
        }
        let digits = self.digits;
        match self.entries.get_mut(&key) {
            Some(e) => {
                e.accum.record(s);
                e.period.get_or_insert_with(|| Accum::new(digits)).record(s);
                e.series
                    .record(minute, us, s.error, &mut self.rng, &mut self.budget);
                e.p95 = None;
                e.query.clone()
            }
            // Just inserted above and the cap is at least 1: always present.
            None => Arc::from(""),
        }
    }

    /// Keeps the undrained period of an evicted entry for the next drain,
    /// unless the list is full (then it is counted as dropped).
    fn keep_evicted_period(&mut self, key: Key, old: Entry) {
        let Some(accum) = old.period else { return };
        if self.evicted_periods.len() >= self.max_evicted_periods {
            self.periods_dropped += 1;
            return;
        }
        self.evicted_periods.push(DrainedPeriod {
            key,
            query: old.query,
            accum,
        });
    }

    /// Takes every entry's period (and those of evicted entries) and starts
    /// a new period at `now`. A key evicted and seen again within the period
    /// gives one row (both parts merged).
    ///
    /// # Performance
    /// Runs under the registry lock: it only moves accumulators (one pass
    /// over the entries, no percentile, no serialization, no I/O).
    pub fn drain_periods(&mut self, now: SystemTime) -> Drained {
        let start = std::mem::replace(&mut self.period_start, now);
        let mut rows = std::mem::take(&mut self.evicted_periods);
        let mut index: HashMap<Key, usize> = HashMap::new();
        if !rows.is_empty() {
            // Rare (evictions in the period): merge repeated keys.
            let mut merged: Vec<DrainedPeriod> = Vec::with_capacity(rows.len());
            for row in rows {
                match index.get(&row.key) {
                    Some(&i) => merged[i].accum.merge(&row.accum),
                    None => {
                        index.insert(row.key.clone(), merged.len());
                        merged.push(row);
                    }
                }
            }
            rows = merged;
        }
        for (key, e) in self.entries.iter_mut() {
            let Some(accum) = e.period.take() else {
                continue;
            };
            match index.get(key) {
                Some(&i) => rows[i].accum.merge(&accum),
                None => rows.push(DrainedPeriod {
                    key: key.clone(),
                    query: e.query.clone(),
                    accum,
                }),
            }
        }
        Drained {
            start,
            end: now,
            rows,
        }
    }

    /// Drops minutes older than the retention, relative to `now`.
    pub fn maintain(&mut self, now: SystemTime) {
        let oldest = (unix_minute(now) + 1).saturating_sub(self.retention_minutes);
        for (_, e) in self.entries.iter_mut() {
            e.series.prune(oldest, &mut self.budget);
        }
        self.all.prune(oldest, &mut self.all_budget);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `n` entries with the largest `order` value.
    pub fn top(&mut self, n: usize, order: OrderBy) -> Vec<FingerprintStats> {
        let mut rows: Vec<(u128, &Key, &mut Entry)> = self
            .entries
            .iter_mut()
            .map(|(k, e)| {
                let v = match order {
                    OrderBy::TotalTime => e.accum.total_ns,
                    OrderBy::Calls => u128::from(e.accum.calls),
                    OrderBy::P95 => e.p95().as_nanos(),
                };
                (v, k, e)
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.fingerprint.cmp(&b.1.fingerprint)));
        rows.into_iter()
            .take(n)
            .map(|(_, k, e)| snapshot(k, e))
            .collect()
    }

    /// The statistics of `fingerprint` merged over databases and users.
    pub fn get(&self, fingerprint: Fingerprint) -> Option<FingerprintStats> {
        let mut found = self
            .entries
            .iter()
            .filter(|(k, _)| k.fingerprint == fingerprint);
        let (k0, e0) = found.next()?;
        let (mut acc, mut db, mut user) = (e0.accum.clone(), k0.database.clone(), k0.user.clone());
        for (k, e) in found {
            acc.merge(&e.accum);
            if k.database != db {
                db = Arc::from("*");
            }
            if k.user != user {
                user = Arc::from("*");
            }
        }
        Some(acc.snapshot(fingerprint, e0.query.clone(), db, user))
    }

    /// The statistics of one (fingerprint, database, user).
    pub fn get_exact(&self, key: &Key) -> Option<FingerprintStats> {
        self.entries.peek(key).map(|e| {
            e.accum.snapshot(
                key.fingerprint,
                e.query.clone(),
                key.database.clone(),
                key.user.clone(),
            )
        })
    }

    /// Per-minute buckets of `fingerprint` (all databases and users) for the
    /// `minutes` minutes ending now, oldest first.
    pub fn series(
        &self,
        fingerprint: Fingerprint,
        minutes: u32,
        now: SystemTime,
    ) -> Vec<MinuteBucket> {
        let minutes = self.clamp_minutes(minutes);
        let (first, mut out) = dense(unix_minute(now), minutes);
        for (_, e) in self
            .entries
            .iter()
            .filter(|(k, _)| k.fingerprint == fingerprint)
        {
            e.series.fill(first, &mut out);
        }
        out
    }

    /// Per-minute buckets of every fingerprint that completed a statement
    /// in the last `minutes` minutes (merged over databases and users, as
    /// [`Registry::series`]), with its text; one pass under the lock.
    pub fn recent_series(
        &self,
        minutes: u32,
        now: SystemTime,
    ) -> Vec<(Fingerprint, Arc<str>, Vec<MinuteBucket>)> {
        let minutes = self.clamp_minutes(minutes);
        let (first, empty) = dense(unix_minute(now), minutes);
        let mut out: HashMap<Fingerprint, (Arc<str>, Vec<MinuteBucket>)> = HashMap::new();
        for (k, e) in self.entries.iter() {
            if unix_minute(e.accum.last_seen) < first {
                continue;
            }
            let slot = out
                .entry(k.fingerprint)
                .or_insert_with(|| (e.query.clone(), empty.clone()));
            e.series.fill(first, &mut slot.1);
        }
        out.into_iter().map(|(fp, (q, s))| (fp, q, s)).collect()
    }

    /// Per-minute buckets of all statements.
    pub fn series_all(&self, minutes: u32, now: SystemTime) -> Vec<MinuteBucket> {
        let (first, mut out) = dense(unix_minute(now), self.clamp_minutes(minutes));
        self.all.fill(first, &mut out);
        out
    }

    fn clamp_minutes(&self, minutes: u32) -> u32 {
        minutes.min(u32::try_from(self.retention_minutes).unwrap_or(u32::MAX))
    }

    /// Rates over the minute ending now.
    pub fn rates(&self, now: SystemTime) -> Rates {
        self.ring.rates(unix_secs(now))
    }

    /// Closed buckets held over all entries.
    pub fn series_buckets(&self) -> usize {
        self.budget.used
    }
}

fn snapshot(k: &Key, e: &Entry) -> FingerprintStats {
    e.accum.snapshot(
        k.fingerprint,
        e.query.clone(),
        k.database.clone(),
        k.user.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CacheOutcome;
    use std::time::UNIX_EPOCH;

    fn key(fp: u64, db: &str) -> Key {
        Key {
            fingerprint: Fingerprint(fp),
            database: db.into(),
            user: "u".into(),
        }
    }

    fn sample(at_secs: u64, ms: u64) -> Sample {
        let started_at = UNIX_EPOCH + Duration::from_secs(at_secs);
        Sample {
            duration: Duration::from_millis(ms),
            rows: 2,
            error: false,
            cache: CacheOutcome::Bypass,
            started_at,
            completed_at: started_at + Duration::from_millis(ms),
        }
    }

    fn registry(cap: usize) -> Registry {
        let cap = NonZeroUsize::new(cap).expect("nonzero");
        Registry::new(
            cap,
            3,
            Duration::from_secs(24 * 3600),
            1_000_000,
            UNIX_EPOCH,
        )
    }

    #[test]
    fn lru_cap_evicts_least_recently_used_and_counts() {
        let mut r = registry(3);
        for fp in 1..=3 {
            r.record(key(fp, "d"), || "q".into(), &sample(0, 1));
        }
        // Touch 1 so that 2 is the least recently used.
        r.record(key(1, "d"), || "q".into(), &sample(1, 1));
        r.record(key(4, "d"), || "q".into(), &sample(2, 1));
        assert_eq!(r.len(), 3);
        assert_eq!(r.evicted, 1);
        assert!(r.get(Fingerprint(2)).is_none());
        assert_eq!(r.get(Fingerprint(1)).map(|s| s.calls), Some(2));
        r.record(key(5, "d"), || "q".into(), &sample(3, 1));
        assert_eq!(r.evicted, 2);
        assert!(r.get(Fingerprint(3)).is_none());
    }

    #[test]
    fn get_merges_databases_and_top_orders() {
        let mut r = registry(10);
        r.record(key(1, "a"), || "q1".into(), &sample(0, 10));
        r.record(key(1, "b"), || "q1".into(), &sample(0, 30));
        for _ in 0..5 {
            r.record(key(2, "a"), || "q2".into(), &sample(0, 5));
        }
        let s = r.get(Fingerprint(1)).expect("present");
        assert_eq!((s.calls, s.rows, &*s.database, &*s.user), (2, 4, "*", "u"));
        assert_eq!(s.total_time, Duration::from_millis(40));
        assert_eq!(s.mean_time, Duration::from_millis(20));
        assert_eq!(s.stddev_time, Duration::from_millis(10));
        let by_calls: Vec<u64> = r
            .top(10, OrderBy::Calls)
            .iter()
            .map(|s| s.fingerprint.0)
            .collect();
        assert_eq!(by_calls, [2, 1, 1]);
        let by_p95 = r.top(1, OrderBy::P95);
        assert_eq!((by_p95[0].fingerprint.0, &*by_p95[0].database), (1, "b"));
        let by_total: Vec<u128> = r
            .top(10, OrderBy::TotalTime)
            .iter()
            .map(|s| s.total_time.as_millis())
            .collect();
        assert_eq!(by_total, [30, 25, 10]);
        assert_eq!(r.get_exact(&key(1, "a")).map(|s| s.calls), Some(1));
    }

    #[test]
    fn series_and_rates_follow_the_clock() {
        let mut r = registry(10);
        // Minute 100 gets 3 statements, minute 102 gets 1.
        for s in [6000, 6010, 6059] {
            r.record(key(1, "d"), || "q".into(), &sample(s, 1));
        }
        assert_eq!(
            r.rates(UNIX_EPOCH + Duration::from_secs(6059))
                .calls_last_minute,
            3
        );
        assert_eq!(
            r.rates(UNIX_EPOCH + Duration::from_secs(6060))
                .calls_last_minute,
            2
        );
        r.record(key(1, "d"), || "q".into(), &sample(6130, 1));
        let now = UNIX_EPOCH + Duration::from_secs(6130);
        let s = r.series(Fingerprint(1), 3, now);
        assert_eq!(s.iter().map(|b| b.calls).collect::<Vec<_>>(), [3, 0, 1]);
        assert_eq!(r.series_all(3, now).iter().map(|b| b.calls).sum::<u64>(), 4);
        assert_eq!(r.rates(now).calls_last_minute, 1);
        // A day later everything has aged out.
        let later = now + Duration::from_secs(24 * 3600);
        r.maintain(later);
        assert_eq!(r.series_buckets(), 0);
        assert!(
            r.series(Fingerprint(1), 1440, later)
                .iter()
                .all(|b| b.calls == 0)
        );
        // The cumulative statistics stay.
        assert_eq!(r.get(Fingerprint(1)).map(|s| s.calls), Some(4));
    }

    fn calls_by_fp(d: &Drained) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = d
            .rows
            .iter()
            .map(|r| (r.key.fingerprint.0, r.accum.calls))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn periods_are_taken_by_the_drain_and_restart() {
        let mut r = registry(10);
        for _ in 0..3 {
            r.record(key(1, "d"), || "q1".into(), &sample(5, 10));
        }
        r.record(key(2, "d"), || "q2".into(), &sample(5, 20));
        let t1 = UNIX_EPOCH + Duration::from_secs(60);
        let d = r.drain_periods(t1);
        assert_eq!((d.start, d.end), (UNIX_EPOCH, t1));
        assert_eq!(calls_by_fp(&d), [(1, 3), (2, 1)]);
        let one = d.rows.iter().find(|r| r.key.fingerprint.0 == 1);
        assert_eq!(one.map(|r| &*r.query), Some("q1"));
        // The next period has only what ran since, and starts at t1.
        r.record(key(2, "d"), || "q2".into(), &sample(70, 30));
        let t2 = t1 + Duration::from_secs(60);
        let d = r.drain_periods(t2);
        assert_eq!((d.start, d.end), (t1, t2));
        assert_eq!(calls_by_fp(&d), [(2, 1)]);
        assert_eq!(d.rows[0].accum.max_ns, 30_000_000);
        assert!(r.drain_periods(t2).rows.is_empty());
        // The cumulative statistics are untouched.
        assert_eq!(r.get(Fingerprint(2)).map(|s| s.calls), Some(2));
    }

    #[test]
    fn evicted_entries_keep_their_period_until_the_drain() {
        let mut r = registry(1);
        r.record(key(1, "d"), || "q1".into(), &sample(0, 1));
        r.record(key(1, "d"), || "q1".into(), &sample(0, 1));
        r.record(key(2, "d"), || "q2".into(), &sample(0, 1)); // evicts 1
        r.record(key(1, "d"), || "q1".into(), &sample(0, 1)); // evicts 2
        assert_eq!(r.evicted, 2);
        let d = r.drain_periods(UNIX_EPOCH + Duration::from_secs(60));
        // Key 1's evicted part and its new entry give one row.
        assert_eq!(calls_by_fp(&d), [(1, 3), (2, 1)]);
        assert_eq!(r.periods_dropped, 0);
        // At most so many evicted periods wait; more are counted as dropped.
        r.max_evicted_periods = 1;
        r.record(key(3, "d"), || "q3".into(), &sample(0, 1)); // evicts 1 (drained: nothing kept)
        r.record(key(4, "d"), || "q4".into(), &sample(0, 1)); // evicts 3
        r.record(key(5, "d"), || "q5".into(), &sample(0, 1)); // evicts 4: list full
        assert_eq!(r.periods_dropped, 1);
        let d = r.drain_periods(UNIX_EPOCH + Duration::from_secs(120));
        assert_eq!(calls_by_fp(&d), [(3, 1), (5, 1)]);
    }
}
