//! [`AlertRules`]: the thresholds of every alert rule, with their defaults,
//! and the rule names (which are also the prefixes of the dedupe keys).

use std::time::Duration;

/// Rule names as stored in `performance_alerts.rule`.
pub mod rule {
    /// A statement over the slow threshold (key `slow_query:<fingerprint>`).
    pub const SLOW_QUERY: &str = "slow_query";
    /// A statement's p95 above its baseline (key `p95_regression:<fingerprint>`).
    pub const P95_REGRESSION: &str = "p95_regression";
    /// Too many statements over the slow threshold (key `slow_query_rate`).
    pub const SLOW_QUERY_RATE: &str = "slow_query_rate";
    /// Too many failed statements (key `error_rate`).
    pub const ERROR_RATE: &str = "error_rate";
    /// The result cache answers too few lookups (key `cache_hit_rate`).
    pub const CACHE_HIT_RATE: &str = "cache_hit_rate";
    /// Clients wait too long for a server (key `pool_saturation:<db>/<user>`).
    pub const POOL_SATURATION: &str = "pool_saturation";
    /// PostgreSQL does not answer (key `server_unreachable`).
    pub const SERVER_UNREACHABLE: &str = "server_unreachable";
    /// Transactions open too long (key `long_running_transactions`).
    pub const LONG_TRANSACTIONS: &str = "long_running_transactions";
    /// Sessions waiting for locks (key `lock_waits`).
    pub const LOCK_WAITS: &str = "lock_waits";

    /// Every rule the engine owns.
    pub const ALL: [&str; 9] = [
        SLOW_QUERY,
        P95_REGRESSION,
        SLOW_QUERY_RATE,
        ERROR_RATE,
        CACHE_HIT_RATE,
        POOL_SATURATION,
        SERVER_UNREACHABLE,
        LONG_TRANSACTIONS,
        LOCK_WAITS,
    ];
}

/// The thresholds of the alert rules. A rate rule judges nothing until its
/// minimum number of statements (or lookups) was seen, so that a quiet
/// minute with one failure does not raise a 100 % error rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// A fingerprint's slow queries raise at most one alert occurrence per
    /// window, and its alert resolves after a window without one.
    /// Default 15 min.
    pub slow_query_window: Duration,
    /// The baseline the p95 regression rule compares with. Default `rolling`.
    pub baseline: String,
    /// A statement regressed when its p95 is above the baseline's p95 times
    /// this (1.5: 50 % above). Default 1.5.
    pub regression_ratio: f64,
    /// ... in each of this many complete minutes in a row. Default 5 min.
    pub regression_for: Duration,
    /// ... with at least this many calls over those minutes. Default 20.
    pub regression_min_calls: u64,
    /// Above this ratio (times the baseline) a regression is critical.
    /// Default 3.0.
    pub regression_critical_ratio: f64,
    /// Share of statements over the slow threshold (since the previous
    /// evaluation) that raises `slow_query_rate`. Default 0.02 (2 %).
    pub slow_rate_max: f64,
    /// Share of failed statements over the last minute that raises
    /// `error_rate`. Default 0.01 (1 %); five times it is critical.
    pub error_rate_max: f64,
    /// Statements needed before the slow and error rates are judged.
    /// Default 100.
    pub rate_min_calls: u64,
    /// Cache hit rate under which `cache_hit_rate` is raised. Default 0.8.
    pub cache_hit_rate_min: f64,
    /// Cache lookups needed before the hit rate is judged (lookups add up
    /// over evaluations until there are this many). Default 100.
    pub cache_min_lookups: u64,
    /// A pool whose waiting clients waited longer than this is saturated.
    /// Default 1 s; five times it is critical.
    pub pool_max_wait: Duration,
    /// More long-running transactions than this raise an alert. Default 0.
    pub long_transactions_max: u64,
    /// More sessions waiting for a lock than this raise an alert. Default 0.
    pub lock_waits_max: u64,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            slow_query_window: Duration::from_secs(15 * 60),
            baseline: "rolling".to_string(),
            regression_ratio: 1.5,
            regression_for: Duration::from_secs(5 * 60),
            regression_min_calls: 20,
            regression_critical_ratio: 3.0,
            slow_rate_max: 0.02,
            error_rate_max: 0.01,
            rate_min_calls: 100,
            cache_hit_rate_min: 0.8,
            cache_min_lookups: 100,
            pool_max_wait: Duration::from_secs(1),
            long_transactions_max: 0,
            lock_waits_max: 0,
        }
    }
}

impl AlertRules {
    /// The regression window in whole minutes (at least 1).
    pub fn regression_minutes(&self) -> u32 {
        u32::try_from(self.regression_for.as_secs() / 60)
            .unwrap_or(u32::MAX)
            .max(1)
    }
}
