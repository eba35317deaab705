//! Insight configuration: queue and memory bounds, the slow-query threshold,
//! the EXPLAIN capture settings and what is kept for the performance store. Plain structs; the binary fills them
//! from its TOML/env config.

use std::time::Duration;

use crate::error::InsightError;

/// Configuration of the recorder, aggregator and slow-query capture.
#[derive(Debug, Clone)]
pub struct InsightConfig {
    /// Capacity of the event queue between the proxy and the aggregator;
    /// events beyond it are dropped and counted. Default 65,536.
    pub queue_capacity: usize,
    /// Maximum number of distinct (fingerprint, database, user) entries kept;
    /// the least recently used is evicted and counted. Default 5,000.
    pub max_fingerprints: usize,
    /// A statement taking at least this long is a slow query. Default 1,000 ms
    /// (`PERFORMANCE_SLOW_QUERY_THRESHOLD`).
    pub slow_threshold: Duration,
    /// Number of slow-query records kept (oldest dropped). Default 1,000.
    pub slow_log_capacity: usize,
    /// How far back the per-minute time series reach. Default 24 h.
    pub series_retention: Duration,
    /// Total number of closed per-minute buckets kept over all entries
    /// (about 32 bytes each). When reached, an entry adding a bucket drops
    /// its own oldest one. Default 2,000,000 (about 64 MB).
    pub max_series_buckets: usize,
    /// Significant digits of the latency histograms (1 µs to 1 h). Default 2
    /// (percentiles within 1%), chosen for memory: 5,000 entries stay under
    /// about 65 MB, where 3 digits could take several hundred.
    /// Memory per entry grows with it: with 3 digits a histogram holding
    /// values up to 1 s takes about 45 KB, up to 1 h about 94 KB; with 2
    /// digits about 6 to 13 KB.
    pub histogram_digits: u8,
    /// EXPLAIN capture of slow queries; `None` disables it (slow queries are
    /// still recorded, without plans). Default `None`.
    pub explain: Option<ExplainConfig>,
    /// Fraction (0..=1) of the statements under the slow threshold that are
    /// also written to `performance_logs` (slow ones always are); 0 logs
    /// none. Default 0.01.
    pub log_sample_rate: f64,
    /// Statements (slow and sampled) held for the next flush at most; more
    /// are dropped and counted (`logs_dropped`). Default 10,000.
    pub max_pending_logs: usize,
    /// How long a slow query waits for its EXPLAIN before it is flushed
    /// without a plan. Default 30 s.
    pub log_plan_grace: Duration,
    /// Rows of each kind (patterns, logs) kept for the next attempt when the
    /// store fails; beyond it the oldest are dropped and counted
    /// (`flush_dropped`). Default 50,000.
    pub max_retry_rows: usize,
}

impl Default for InsightConfig {
    fn default() -> Self {
        InsightConfig {
            queue_capacity: 65_536,
            max_fingerprints: 5_000,
            slow_threshold: Duration::from_millis(1_000),
            slow_log_capacity: 1_000,
            series_retention: Duration::from_secs(24 * 3600),
            max_series_buckets: 2_000_000,
            histogram_digits: 2,
            explain: None,
            log_sample_rate: 0.01,
            max_pending_logs: 10_000,
            log_plan_grace: Duration::from_secs(30),
            max_retry_rows: 50_000,
        }
    }
}

impl InsightConfig {
    /// Checks the bounds; the error names the offending field.
    pub fn validate(&self) -> Result<(), InsightError> {
        let bad = |m: &str| Err(InsightError::Config(m.to_string()));
        if self.queue_capacity == 0 {
            return bad("queue_capacity must be at least 1");
        }
        if self.max_fingerprints == 0 {
            return bad("max_fingerprints must be at least 1");
        }
        if self.slow_log_capacity == 0 {
            return bad("slow_log_capacity must be at least 1");
        }
        if self.series_retention < Duration::from_secs(60) {
            return bad("series_retention must be at least one minute");
        }
        if !(1..=5).contains(&self.histogram_digits) {
            return bad("histogram_digits must be between 1 and 5");
        }
        if !(0.0..=1.0).contains(&self.log_sample_rate) {
            return bad("log_sample_rate must be between 0 and 1");
        }
        if self.explain.as_ref().is_some_and(|e| e.per_minute == 0) {
            return bad("explain.per_minute must be at least 1");
        }
        Ok(())
    }
}

/// How slow queries are explained.
#[derive(Debug, Clone)]
pub struct ExplainConfig {
    /// The PostgreSQL server itself (never the proxy), with its TLS
    /// settings. Its database is replaced by the slow statement's database.
    pub server: pgpulse_upstream::Upstream,
    /// EXPLAINs allowed per minute (token bucket, burst = this number).
    /// Default 30.
    pub per_minute: u32,
    /// Run `EXPLAIN (ANALYZE, BUFFERS)`: the statement is executed again,
    /// inside a transaction that is rolled back. Default false.
    pub analyze: bool,
    /// Give up on one EXPLAIN (connect + run) after this long. Default 10 s.
    pub timeout: Duration,
    /// Keep literal values in plans. By default every string and numeric
    /// constant in a plan's expressions is replaced by `$?`. Default false.
    pub keep_literals: bool,
}

impl ExplainConfig {
    /// Defaults with the given server.
    pub fn new(server: pgpulse_upstream::Upstream) -> Self {
        ExplainConfig {
            server,
            per_minute: 30,
            analyze: false,
            timeout: Duration::from_secs(10),
            keep_literals: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_the_field() {
        assert!(InsightConfig::default().validate().is_ok());
        let c = InsightConfig {
            max_fingerprints: 0,
            ..InsightConfig::default()
        };
        let e = c.validate().expect_err("must fail").to_string();
        assert!(e.contains("max_fingerprints"), "{e}");
        for rate in [-0.1, 1.5, f64::NAN] {
            let c = InsightConfig {
                log_sample_rate: rate,
                ..InsightConfig::default()
            };
            let e = c.validate().expect_err("must fail").to_string();
            assert!(e.contains("log_sample_rate"), "{e}");
        }
        let c = InsightConfig {
            explain: Some(ExplainConfig::new(
                "postgres://u:p@127.0.0.1:5432/db".parse().expect("url"),
            )),
            ..InsightConfig::default()
        };
        assert!(c.validate().is_ok());
    }
}
