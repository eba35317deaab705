//! The circuit breaker in front of Redis: after [`FAILURES_TO_OPEN`]
//! consecutive failures it opens for [`OPEN_FOR`], during which lookups
//! return at once and stores are skipped; then one probe is let through
//! (half-open): its success closes the breaker, its failure opens it again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failures (errors or timeouts) that open the breaker.
pub(super) const FAILURES_TO_OPEN: u32 = 3;
/// How long the breaker stays open before a probe.
pub(super) const OPEN_FOR: Duration = Duration::from_secs(2);
/// A probe that reports nothing within this time (its caller was dropped)
/// is forgotten, and another one is let through.
pub(super) const PROBE_LOST_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_until: Instant },
}

#[derive(Debug)]
struct State {
    failures: u32,
    mode: Mode,
}

/// The breaker. The lock is held for a few instructions, never across an
/// `.await`.
#[derive(Debug)]
pub(super) struct Breaker {
    state: Mutex<State>,
    trips: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: Mutex::new(State {
                failures: 0,
                mode: Mode::Closed,
            }),
            trips: AtomicU64::new(0),
        }
    }
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an operation may go to Redis now. When this returns true the
    /// caller must report [`success`](Self::success) or
    /// [`failure`](Self::failure) (in half-open state it is the probe).
    pub fn allow(&self, now: Instant) -> bool {
        let mut s = self.lock();
        match s.mode {
            Mode::Closed => true,
            Mode::Open { until } if now < until => false,
            Mode::HalfOpen { probe_until } if now < probe_until => false,
            Mode::Open { .. } | Mode::HalfOpen { .. } => {
                s.mode = Mode::HalfOpen {
                    probe_until: now + PROBE_LOST_AFTER,
                };
                true
            }
        }
    }

    /// Closed: operations that may be skipped (stores) only go when this
    /// is true; they are never probes.
    pub fn is_closed(&self) -> bool {
        self.lock().mode == Mode::Closed
    }

    /// An operation succeeded: Redis answers.
    pub fn success(&self) {
        let mut s = self.lock();
        s.failures = 0;
        s.mode = Mode::Closed;
    }

    /// An operation failed. Returns true when this opened a closed breaker
    /// (a trip).
    pub fn failure(&self, now: Instant) -> bool {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        let (open, trip) = match s.mode {
            Mode::Closed => (
                s.failures >= FAILURES_TO_OPEN,
                s.failures >= FAILURES_TO_OPEN,
            ),
            // The probe failed: open again (not a new trip).
            Mode::HalfOpen { .. } => (true, false),
            // A late answer of an operation started before it opened.
            Mode::Open { .. } => (false, false),
        };
        if open {
            s.mode = Mode::Open {
                until: now + OPEN_FOR,
            };
        }
        if trip {
            self.trips.fetch_add(1, Ordering::Relaxed);
        }
        trip
    }

    /// Times it opened from closed.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let b = Breaker::default();
        let t0 = Instant::now();
        assert!(b.allow(t0));
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        b.success();
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert!(b.failure(t0), "third consecutive failure trips");
        assert_eq!(b.trips(), 1);
        assert!(!b.allow(t0));
        assert!(!b.is_closed());
        assert!(!b.allow(t0 + OPEN_FOR - Duration::from_millis(1)));
        // Half-open: one probe only.
        let t1 = t0 + OPEN_FOR;
        assert!(b.allow(t1));
        assert!(!b.allow(t1));
        assert!(!b.is_closed());
        // The probe fails: open again, not a new trip.
        assert!(!b.failure(t1));
        assert_eq!(b.trips(), 1);
        assert!(!b.allow(t1 + Duration::from_millis(10)));
        let t2 = t1 + OPEN_FOR;
        assert!(b.allow(t2));
        b.success();
        assert!(b.is_closed());
        assert!(b.allow(t2));
    }

    #[test]
    fn a_lost_probe_is_replaced() {
        let b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_TO_OPEN {
            b.failure(t0);
        }
        let t1 = t0 + OPEN_FOR;
        assert!(b.allow(t1));
        assert!(!b.allow(t1 + PROBE_LOST_AFTER - Duration::from_millis(1)));
        assert!(b.allow(t1 + PROBE_LOST_AFTER));
    }

    #[test]
    fn late_failures_while_open_do_not_extend_it() {
        let b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_TO_OPEN {
            b.failure(t0);
        }
        assert!(!b.failure(t0 + Duration::from_secs(1)));
        assert!(b.allow(t0 + OPEN_FOR));
    }
}
