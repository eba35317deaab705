//! Token buckets per credential and per client address, with separate
//! budgets for reads (GET, HEAD) and writes. Time comes from the state's
//! clock, so tests drive refills explicitly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// One budget: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size (requests allowed at once).
    pub burst: u32,
}

/// Rate-limit settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitOptions {
    /// Reads per credential; default 20/s, burst 60.
    pub reads: Budget,
    /// Writes per credential; default 2/s, burst 10.
    pub writes: Budget,
    /// Reads per client address (checked before authentication); default
    /// 50/s, burst 150.
    pub address_reads: Budget,
    /// Writes per client address; default 5/s, burst 25.
    pub address_writes: Budget,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        RateLimitOptions {
            reads: Budget {
                per_second: 20.0,
                burst: 60,
            },
            writes: Budget {
                per_second: 2.0,
                burst: 10,
            },
            address_reads: Budget {
                per_second: 50.0,
                burst: 150,
            },
            address_writes: Budget {
                per_second: 5.0,
                burst: 25,
            },
        }
    }
}

/// Whether a request reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
}

/// Past this many buckets, full (idle) ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    opts: RateLimitOptions,
    buckets: Mutex<HashMap<(String, Class), Bucket>>,
}

impl RateLimiter {
    pub fn new(opts: RateLimitOptions) -> RateLimiter {
        RateLimiter {
            opts,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn budget(&self, address: bool, class: Class) -> Budget {
        match (address, class) {
            (false, Class::Read) => self.opts.reads,
            (false, Class::Write) => self.opts.writes,
            (true, Class::Read) => self.opts.address_reads,
            (true, Class::Write) => self.opts.address_writes,
        }
    }

    /// Takes a token for `key`; `Err(seconds)` to wait when there is none.
    pub fn take(&self, key: &str, address: bool, class: Class, now: SystemTime) -> Result<(), u64> {
        let budget = self.budget(address, class);
        let refill = |b: &Bucket| {
            let dt = now.duration_since(b.at).unwrap_or_default().as_secs_f64();
            (b.tokens + dt * budget.per_second).min(f64::from(budget.burst))
        };
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS {
            map.retain(|_, b| refill(b) < f64::from(budget.burst));
        }
        let b = map.entry((key.to_owned(), class)).or_insert(Bucket {
            tokens: f64::from(budget.burst),
            at: now,
        });
        let tokens = refill(b);
        b.at = now.max(b.at);
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            Ok(())
        } else {
            b.tokens = tokens;
            let wait = if budget.per_second > 0.0 {
                ((1.0 - tokens) / budget.per_second).ceil()
            } else {
                3600.0
            };
            Err((wait as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let rl = RateLimiter::new(RateLimitOptions {
            reads: Budget {
                per_second: 2.0,
                burst: 3,
            },
            ..RateLimitOptions::default()
        });
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        for _ in 0..3 {
            assert_eq!(rl.take("k", false, Class::Read, t0), Ok(()));
        }
        assert_eq!(rl.take("k", false, Class::Read, t0), Err(1));
        // Writes and other keys have their own buckets.
        assert_eq!(rl.take("k", false, Class::Write, t0), Ok(()));
        assert_eq!(rl.take("other", false, Class::Read, t0), Ok(()));
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(rl.take("k", false, Class::Read, t1), Ok(()));
        assert_eq!(rl.take("k", false, Class::Read, t1), Err(1));
    }
}
