//! Time series: per-minute buckets (calls, total time, errors, p95) kept
//! sparsely for a bounded retention under a global bucket budget, and a
//! 60-slot per-second ring for the current rates.
//!
//! Buckets are keyed by the completion minute of each statement, so the
//! series follow the events' own timestamps; the injected clock only decides
//! what "now" and "too old" mean.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Samples kept per open minute to compute its p95 (reservoir beyond this).
const RESERVOIR: usize = 512;

/// One minute of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MinuteBucket {
    /// Start of the minute.
    pub minute: SystemTime,
    /// Statements completed in that minute.
    pub calls: u64,
    /// Their total duration.
    pub total_time: Duration,
    /// How many failed.
    pub errors: u64,
    /// 95th percentile of their durations (exact up to 512 statements per
    /// minute, from a uniform sample beyond; for series merged over several
    /// databases or users, the largest of their p95s).
    pub p95: Duration,
}

/// A closed minute, compact (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Closed {
    minute: u32,
    calls: u32,
    errors: u32,
    p95_us: u32,
    total_us: u64,
}

/// The minute still receiving statements.
#[derive(Debug, Clone)]
struct Open {
    minute: u64,
    calls: u64,
    errors: u64,
    total_us: u64,
    samples: Vec<u32>,
}

impl Open {
    fn new(minute: u64) -> Open {
        Open {
            minute,
            calls: 0,
            errors: 0,
            total_us: 0,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, us: u64, error: bool, rng: &mut u64) {
        self.calls += 1;
        self.errors += u64::from(error);
        self.total_us = self.total_us.saturating_add(us);
        let v = u32::try_from(us).unwrap_or(u32::MAX);
        if self.samples.len() < RESERVOIR {
            self.samples.push(v);
        } else {
            // Algorithm R: keep each of the `calls` samples with equal chance.
            let j = xorshift(rng) % self.calls;
            if let Some(slot) = self.samples.get_mut(j as usize) {
                *slot = v;
            }
        }
    }

    fn p95_us(&self) -> u32 {
        let mut s = self.samples.clone();
        s.sort_unstable();
        nearest_rank(&s, 0.95)
    }

    fn close(&self) -> Closed {
        Closed {
            minute: u32::try_from(self.minute).unwrap_or(u32::MAX),
            calls: u32::try_from(self.calls).unwrap_or(u32::MAX),
            errors: u32::try_from(self.errors).unwrap_or(u32::MAX),
            p95_us: self.p95_us(),
            total_us: self.total_us,
        }
    }
}

/// The nearest-rank percentile of sorted values (0 for none).
fn nearest_rank(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A small, fast PRNG for reservoir sampling (no need for quality here).
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// The shared limit on closed buckets over all series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub used: usize,
    pub max: usize,
}

/// A sparse per-minute series: closed minutes oldest first, then the open one.
#[derive(Debug, Clone, Default)]
pub(crate) struct MinuteSeries {
    closed: VecDeque<Closed>,
    open: Option<Open>,
}

impl MinuteSeries {
    /// Records one statement completed in `minute`.
    pub fn record(
        &mut self,
        minute: u64,
        us: u64,
        error: bool,
        rng: &mut u64,
        budget: &mut Budget,
    ) {
        match &mut self.open {
            Some(open) if open.minute == minute => open.add(us, error, rng),
            Some(open) if open.minute > minute => self.add_late(minute, us, error, budget),
            _ => {
                if let Some(old) = self.open.take() {
                    self.push_closed(old.close(), budget);
                }
                let mut open = Open::new(minute);
                open.add(us, error, rng);
                self.open = Some(open);
            }
        }
    }

    /// A statement for a minute already closed (it completed out of order).
    fn add_late(&mut self, minute: u64, us: u64, error: bool, budget: &mut Budget) {
        let m = u32::try_from(minute).unwrap_or(u32::MAX);
        match self.closed.binary_search_by_key(&m, |c| c.minute) {
            Ok(i) => {
                let c = &mut self.closed[i];
                c.calls = c.calls.saturating_add(1);
                c.errors = c.errors.saturating_add(u32::from(error));
                c.total_us = c.total_us.saturating_add(us);
                // Its samples are gone: the p95 stays as computed at close.
            }
            Err(i) => {
                if budget.used >= budget.max {
                    return;
                }
                budget.used += 1;
                let p = u32::try_from(us).unwrap_or(u32::MAX);
                let c = Closed {
                    minute: m,
                    calls: 1,
                    errors: u32::from(error),
                    p95_us: p,
                    total_us: us,
                };
                self.closed.insert(i, c);
            }
        }
    }

    fn push_closed(&mut self, c: Closed, budget: &mut Budget) {
        if budget.used >= budget.max {
            // Over budget: this series keeps its length by dropping its own
            // oldest minute; a series without history cannot grow.
            if self.closed.pop_front().is_none() {
                return;
            }
        } else {
            budget.used += 1;
        }
        self.closed.push_back(c);
    }

    /// Drops closed minutes before `oldest_minute`.
    pub fn prune(&mut self, oldest_minute: u64, budget: &mut Budget) {
        while let Some(c) = self.closed.front() {
            if u64::from(c.minute) >= oldest_minute {
                break;
            }
            self.closed.pop_front();
            budget.used = budget.used.saturating_sub(1);
        }
        if self.open.as_ref().is_some_and(|o| o.minute < oldest_minute) {
            self.open = None;
        }
    }

    /// Number of closed buckets (what the budget counts).
    pub fn closed_len(&self) -> usize {
        self.closed.len()
    }

    /// Whether nothing at all is recorded.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_none()
    }

    /// Adds this series into `dense`, whose slot `i` is minute `first + i`.
    /// p95s merge by maximum.
    pub fn fill(&self, first: u64, dense: &mut [MinuteBucket]) {
        let mut put = |minute: u64, calls: u64, errors: u64, total_us: u64, p95_us: u32| {
            let Some(i) = minute.checked_sub(first) else {
                return;
            };
            let Some(b) = usize::try_from(i).ok().and_then(|i| dense.get_mut(i)) else {
                return;
            };
            b.calls += calls;
            b.errors += errors;
            b.total_time += Duration::from_micros(total_us);
            b.p95 = b.p95.max(Duration::from_micros(u64::from(p95_us)));
        };
        for c in &self.closed {
            put(
                u64::from(c.minute),
                u64::from(c.calls),
                u64::from(c.errors),
                c.total_us,
                c.p95_us,
            );
        }
        if let Some(o) = &self.open {
            put(o.minute, o.calls, o.errors, o.total_us, o.p95_us());
        }
    }
}

/// Empty dense buckets for `minutes` minutes ending with the minute of `now`.
pub(crate) fn dense(now_minute: u64, minutes: u32) -> (u64, Vec<MinuteBucket>) {
    let n = u64::from(minutes.max(1));
    let first = (now_minute + 1).saturating_sub(n);
    let buckets = (first..=now_minute)
        .map(|m| MinuteBucket {
            minute: UNIX_EPOCH + Duration::from_secs(m * 60),
            calls: 0,
            total_time: Duration::ZERO,
            errors: 0,
            p95: Duration::ZERO,
        })
        .collect();
    (first, buckets)
}

/// Statement and error rates over the last minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// Statements per second, averaged over the last 60 s.
    pub qps: f64,
    /// Failed statements per second, averaged over the last 60 s.
    pub errors_per_second: f64,
    /// Fraction of statements that failed in the last 60 s (0 when none ran).
    pub error_rate: f64,
    /// Statements completed in the last 60 s.
    pub calls_last_minute: u64,
    /// Statements failed in the last 60 s.
    pub errors_last_minute: u64,
}

/// 60 one-second slots of (second, calls, errors).
#[derive(Debug, Clone)]
pub(crate) struct SecondRing {
    slots: [(u64, u64, u64); 60],
}

impl Default for SecondRing {
    fn default() -> Self {
        SecondRing {
            slots: [(u64::MAX, 0, 0); 60],
        }
    }
}

impl SecondRing {
    /// Counts one statement completed in second `sec`.
    pub fn record(&mut self, sec: u64, error: bool) {
        let slot = &mut self.slots[(sec % 60) as usize];
        if slot.0 != sec {
            if slot.0 != u64::MAX && slot.0 > sec {
                return; // older than what the slot holds: out of the window
            }
            *slot = (sec, 0, 0);
        }
        slot.1 += 1;
        slot.2 += u64::from(error);
    }

    /// Rates over the 60 seconds ending with second `now_sec`.
    pub fn rates(&self, now_sec: u64) -> Rates {
        let (mut calls, mut errors) = (0, 0);
        for &(sec, c, e) in &self.slots {
            if sec != u64::MAX && sec <= now_sec && sec + 60 > now_sec {
                calls += c;
                errors += e;
            }
        }
        Rates {
            qps: calls as f64 / 60.0,
            errors_per_second: errors as f64 / 60.0,
            error_rate: if calls == 0 {
                0.0
            } else {
                errors as f64 / calls as f64
            },
            calls_last_minute: calls,
            errors_last_minute: errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            used: 0,
            max: 1_000,
        }
    }

    #[test]
    fn minutes_roll_over_and_p95_is_per_minute() {
        let (mut s, mut b, mut rng) = (MinuteSeries::default(), budget(), 7u64);
        for us in 1..=100 {
            s.record(10, us, us % 10 == 0, &mut rng, &mut b);
        }
        s.record(12, 5_000, false, &mut rng, &mut b);
        assert_eq!(s.closed_len(), 1);
        assert_eq!(b.used, 1);
        let (first, mut d) = dense(12, 3);
        assert_eq!(first, 10);
        s.fill(first, &mut d);
        assert_eq!(d[0].calls, 100);
        assert_eq!(d[0].errors, 10);
        assert_eq!(d[0].total_time, Duration::from_micros(5050));
        assert_eq!(d[0].p95, Duration::from_micros(95));
        assert_eq!(d[1].calls, 0);
        assert_eq!(d[2].calls, 1);
        assert_eq!(d[2].p95, Duration::from_micros(5_000));
        assert_eq!(d[2].minute, UNIX_EPOCH + Duration::from_secs(720));
    }

    #[test]
    fn late_statements_join_their_closed_minute() {
        let (mut s, mut b, mut rng) = (MinuteSeries::default(), budget(), 7u64);
        s.record(10, 100, false, &mut rng, &mut b);
        s.record(11, 100, false, &mut rng, &mut b);
        s.record(10, 300, true, &mut rng, &mut b);
        s.record(5, 300, true, &mut rng, &mut b);
        let (first, mut d) = dense(11, 7);
        s.fill(first, &mut d);
        assert_eq!((d[0].calls, d[0].errors), (1, 1));
        assert_eq!((d[5].calls, d[5].errors), (2, 1));
        assert_eq!(d[5].total_time, Duration::from_micros(400));
        assert_eq!(b.used, 2);
    }

    #[test]
    fn prune_drops_old_minutes_and_returns_budget() {
        let (mut s, mut b, mut rng) = (MinuteSeries::default(), budget(), 7u64);
        for m in 0..10 {
            s.record(m, 1, false, &mut rng, &mut b);
        }
        assert_eq!(b.used, 9);
        s.prune(5, &mut b);
        assert_eq!(s.closed_len(), 4);
        assert_eq!(b.used, 4);
        s.prune(100, &mut b);
        assert!(s.is_empty());
        assert_eq!(b.used, 0);
    }

    #[test]
    fn budget_caps_closed_buckets() {
        let mut b = Budget { used: 0, max: 3 };
        let (mut s1, mut s2, mut rng) = (MinuteSeries::default(), MinuteSeries::default(), 7u64);
        for m in 0..10 {
            s1.record(m, 1, false, &mut rng, &mut b);
        }
        assert_eq!(s1.closed_len(), 3);
        for m in 0..10 {
            s2.record(m, 1, false, &mut rng, &mut b);
        }
        assert_eq!(
            s2.closed_len(),
            0,
            "no budget left for a new series' history"
        );
        assert_eq!(b.used, 3);
        let (first, mut d) = dense(9, 10);
        s1.fill(first, &mut d);
        let minutes: Vec<u64> = d.iter().filter(|x| x.calls > 0).map(|x| x.calls).collect();
        assert_eq!(minutes.len(), 4, "three closed plus the open minute");
    }

    #[test]
    fn reservoir_keeps_p95_close_for_busy_minutes() {
        let (mut s, mut b, mut rng) = (MinuteSeries::default(), budget(), 99u64);
        for i in 0..100_000u64 {
            s.record(1, i % 1000 + 1, false, &mut rng, &mut b);
        }
        let (first, mut d) = dense(1, 1);
        s.fill(first, &mut d);
        let p = d[0].p95.as_micros();
        assert!((900..=1000).contains(&p), "{p}");
    }

    #[test]
    fn second_ring_counts_the_last_sixty_seconds() {
        let mut r = SecondRing::default();
        for sec in 100..=160 {
            r.record(sec, sec % 2 == 0);
        }
        let rates = r.rates(160);
        assert_eq!(rates.calls_last_minute, 60); // seconds 101..=160
        assert_eq!(rates.errors_last_minute, 30);
        assert!((rates.qps - 1.0).abs() < 1e-9);
        assert!((rates.error_rate - 0.5).abs() < 1e-9);
        assert_eq!(r.rates(300).calls_last_minute, 0);
        assert_eq!(r.rates(300).error_rate, 0.0);
    }
}
