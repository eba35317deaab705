//! Auto mode: cache a read pattern once its observed call rate and the
//! read/write ratio of its tables make caching pay.
//!
//! Counts are kept over two consecutive windows (the current one and the
//! one before), so a decision looks back between one and two windows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cache::Plan;
use crate::config::AutoPolicy;
use crate::reason::NocacheReason;

#[derive(Debug, Default)]
struct Window {
    calls: HashMap<u64, u32>,
    reads: HashMap<Arc<str>, u64>,
    writes: HashMap<Arc<str>, u64>,
}

#[derive(Debug)]
struct State {
    started: Instant,
    current: Window,
    previous: Window,
}

#[derive(Debug)]
pub(crate) struct AutoState {
    policy: AutoPolicy,
    state: Mutex<State>,
}

/// Bounds the maps: a window holding more keys than this is cut short.
const MAX_KEYS: usize = 50_000;

impl AutoState {
    pub fn new(policy: AutoPolicy) -> AutoState {
        AutoState {
            policy,
            state: Mutex::new(State {
                started: Instant::now(),
                current: Window::default(),
                previous: Window::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.started.elapsed() >= self.policy.window
            || s.current.calls.len() + s.current.reads.len() > MAX_KEYS
        {
            s.previous = std::mem::take(&mut s.current);
            s.started = Instant::now();
        }
        s
    }

    /// A call of a cacheable pattern.
    pub fn observe(&self, plan: &Plan) {
        let mut s = self.lock();
        *s.current.calls.entry(plan.fingerprint).or_insert(0) += 1;
        for f in plan.families.iter() {
            bump(&mut s.current.reads, f);
        }
    }

    /// Writes to `families`.
    pub fn written(&self, families: &[Arc<str>]) {
        let mut s = self.lock();
        for f in families {
            bump(&mut s.current.writes, f);
        }
    }

    /// Whether auto mode caches `plan` now.
    pub fn admit(&self, plan: &Plan) -> Result<(), NocacheReason> {
        let s = self.lock();
        let calls = s.current.calls.get(&plan.fingerprint).copied().unwrap_or(0)
            + s.previous
                .calls
                .get(&plan.fingerprint)
                .copied()
                .unwrap_or(0);
        if calls < self.policy.min_calls {
            return Err(NocacheReason::AutoCold);
        }
        for f in plan.families.iter() {
            let count = |m: &HashMap<Arc<str>, u64>| m.get(f).copied().unwrap_or(0);
            let reads = count(&s.current.reads) + count(&s.previous.reads);
            let writes = count(&s.current.writes) + count(&s.previous.writes);
            if writes > 0 && (reads as f64) < self.policy.min_read_write_ratio * writes as f64 {
                return Err(NocacheReason::AutoWriteHeavy);
            }
        }
        Ok(())
    }
}

/// Counts one for `key` without cloning it when it is already there.
fn bump(map: &mut HashMap<Arc<str>, u64>, key: &Arc<str>) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.clone(), 1);
        }
    }
}
