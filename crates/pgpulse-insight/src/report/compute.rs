//! The report's arithmetic, on rows already read from the store (no I/O):
//! sums and merged percentiles over the window, per period and per
//! fingerprint; cache hit rates from snapshot counter deltas; pool figures;
//! the top lists; regressions against a baseline.

use std::collections::{BTreeMap, HashMap};

use pgpulse_store::{CacheSnapshot, PoolStat, QueryPattern, Timestamp};

use super::body::{
    BaselineData, Percentiles, PeriodPoint, PoolSummary, Regression, TopQueries, TopQuery,
};
use super::hist::{Merged, decode};

/// Sums of one group of pattern rows (a period or a fingerprint).
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    /// Normalized text (for a fingerprint).
    pub query: String,
    /// Executions.
    pub calls: i64,
    /// Failed executions.
    pub errors: i64,
    /// Sum of durations, ms.
    pub total_ms: f64,
    /// Cache hits counted by the patterns.
    pub cache_hits: i64,
    /// Cache misses counted by the patterns.
    pub cache_misses: i64,
    /// Merged latency distribution.
    pub merged: Merged,
}

impl Group {
    fn add(&mut self, p: &QueryPattern, h: Option<&hdrhistogram::Histogram<u64>>) {
        self.calls += p.calls;
        self.errors += p.errors;
        self.total_ms += p.total_time_ms;
        self.cache_hits += p.cache_hits;
        self.cache_misses += p.cache_misses;
        self.merged.add_pattern(p, h);
    }

    fn add_group(&mut self, g: &Group) {
        self.calls += g.calls;
        self.errors += g.errors;
        self.total_ms += g.total_ms;
        self.cache_hits += g.cache_hits;
        self.cache_misses += g.cache_misses;
        self.merged.add_merged(&g.merged);
    }

    /// Mean duration, ms.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.total_ms / self.calls as f64)
    }

    /// Hit rate from the patterns' own counts.
    pub fn cache_hit_rate(&self) -> Option<f64> {
        ratio(
            self.cache_hits as f64,
            (self.cache_hits + self.cache_misses) as f64,
        )
    }
}

/// One period's sums, kept after its histograms were merged and dropped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeriodSum {
    /// Executions.
    pub calls: i64,
    /// Failed executions.
    pub errors: i64,
    /// Sum of durations, ms.
    pub total_ms: f64,
    /// Cache hits counted by the patterns.
    pub cache_hits: i64,
    /// Cache misses counted by the patterns.
    pub cache_misses: i64,
    /// 95th percentile over the period's statements, ms.
    pub p95_ms: Option<f64>,
}

/// The pattern rows of a window, summed three ways.
#[derive(Debug, Default)]
pub(crate) struct PatternSums {
    /// Everything.
    pub all: Group,
    /// Per (period start, period end), in time order.
    pub periods: BTreeMap<(Timestamp, Timestamp), PeriodSum>,
    /// Per fingerprint (over databases and users).
    pub fingerprints: HashMap<String, Group>,
}

impl PatternSums {
    /// Adds one batch of rows, decoding each histogram once. The periods of
    /// a batch are finished when it is added (their histograms are merged
    /// into the total and dropped, keeping their p95), so that a long
    /// window can be read in slices without holding every period's
    /// histogram: rows of one period must come in one batch (slicing the
    /// window by period start does that).
    pub fn add_rows(&mut self, rows: &[QueryPattern]) {
        let mut batch: BTreeMap<(Timestamp, Timestamp), Group> = BTreeMap::new();
        for p in rows {
            let h = p.histogram.as_deref().and_then(decode);
            batch
                .entry((p.period_start, p.period_end))
                .or_default()
                .add(p, h.as_ref());
            let fp = self.fingerprints.entry(p.fingerprint.clone()).or_default();
            if fp.query.is_empty() {
                fp.query = p.query.clone();
            }
            fp.add(p, h.as_ref());
        }
        for (key, g) in batch {
            self.all.add_group(&g);
            let p95 = g.merged.percentiles().p95_ms;
            let e = self.periods.entry(key).or_default();
            e.calls += g.calls;
            e.errors += g.errors;
            e.total_ms += g.total_ms;
            e.cache_hits += g.cache_hits;
            e.cache_misses += g.cache_misses;
            // A period split over batches (against the rule above) keeps
            // the worse of its parts' p95s.
            e.p95_ms = match (e.p95_ms, p95) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
}

/// Sums the rows in one batch.
#[cfg(test)]
pub(crate) fn sum_patterns(rows: &[QueryPattern]) -> PatternSums {
    let mut sums = PatternSums::default();
    sums.add_rows(rows);
    sums
}

/// `num / den`, none when the denominator is 0.
pub(crate) fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Seconds between two instants (0 when reversed).
pub(crate) fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    ((to - from).num_milliseconds().max(0)) as f64 / 1000.0
}

/// Hit / miss increments between consecutive snapshots of one instance,
/// each stamped with the later snapshot's time. A counter that went down
/// means the instance restarted: its new value is the increment.
pub(crate) fn cache_deltas(snapshots: &[CacheSnapshot]) -> Vec<(Timestamp, i64, i64)> {
    let mut by_instance: BTreeMap<&str, Vec<&CacheSnapshot>> = BTreeMap::new();
    for s in snapshots {
        by_instance.entry(s.instance.as_str()).or_default().push(s);
    }
    let mut out = Vec::new();
    for mut list in by_instance.into_values() {
        list.sort_by_key(|s| s.taken_at);
        for pair in list.windows(2) {
            let (prev, cur) = (pair[0], pair[1]);
            let (h, m) = if cur.hits < prev.hits || cur.misses < prev.misses {
                (cur.hits, cur.misses)
            } else {
                (cur.hits - prev.hits, cur.misses - prev.misses)
            };
            out.push((cur.taken_at, h, m));
        }
    }
    out.sort_by_key(|d| d.0);
    out
}

/// Pool figures over all snapshots.
pub(crate) fn pool_summary(stats: &[PoolStat]) -> PoolSummary {
    let n = stats.len() as f64;
    PoolSummary {
        snapshots: stats.len(),
        mean_utilization: ratio(stats.iter().map(|s| s.utilization).sum(), n),
        max_utilization: stats.iter().map(|s| s.utilization).reduce(f64::max),
        max_clients_waiting: stats.iter().map(|s| s.clients_waiting).max().unwrap_or(0),
        mean_wait_ms: ratio(stats.iter().map(|s| s.avg_wait_ms).sum(), n),
    }
}

/// The index of the period holding `t` (periods sorted by start).
fn period_of(keys: &[(Timestamp, Timestamp)], t: Timestamp) -> Option<usize> {
    let i = keys.partition_point(|(start, _)| *start <= t);
    let i = i.checked_sub(1)?;
    (t < keys[i].1).then_some(i)
}

/// One point per period, with the cache deltas and pool snapshots that
/// fall in it.
pub(crate) fn period_points(
    sums: &PatternSums,
    deltas: &[(Timestamp, i64, i64)],
    pools: &[PoolStat],
) -> Vec<PeriodPoint> {
    let keys: Vec<_> = sums.periods.keys().copied().collect();
    let mut cache = vec![(0i64, 0i64); keys.len()];
    for &(t, h, m) in deltas {
        if let Some(i) = period_of(&keys, t) {
            cache[i].0 += h;
            cache[i].1 += m;
        }
    }
    let mut util = vec![(0.0f64, 0u32); keys.len()];
    for s in pools {
        if let Some(i) = period_of(&keys, s.taken_at) {
            util[i].0 += s.utilization;
            util[i].1 += 1;
        }
    }
    sums.periods
        .iter()
        .enumerate()
        .map(|(i, (&(start, end), g))| PeriodPoint {
            start,
            end,
            statements: g.calls,
            throughput_per_s: ratio(g.calls as f64, seconds(start, end)).unwrap_or(0.0),
            errors: g.errors,
            mean_ms: ratio(g.total_ms, g.calls as f64),
            p95_ms: g.p95_ms,
            cache_hit_rate: ratio(cache[i].0 as f64, (cache[i].0 + cache[i].1) as f64),
            pattern_cache_hit_rate: ratio(
                g.cache_hits as f64,
                (g.cache_hits + g.cache_misses) as f64,
            ),
            pool_utilization: ratio(util[i].0, f64::from(util[i].1)),
        })
        .collect()
}

/// Every fingerprint as a top-list row.
pub(crate) fn fingerprint_rows(sums: &PatternSums) -> Vec<TopQuery> {
    sums.fingerprints
        .iter()
        .map(|(fp, g)| {
            let Percentiles { p95_ms, exact, .. } = g.merged.percentiles();
            TopQuery {
                fingerprint: fp.clone(),
                query: g.query.clone(),
                calls: g.calls,
                total_ms: g.total_ms,
                mean_ms: g.mean_ms().unwrap_or(0.0),
                p95_ms,
                p95_exact: exact,
                errors: g.errors,
            }
        })
        .collect()
}

/// The three top lists, `n` rows each (ties broken by fingerprint so that
/// the order is stable).
pub(crate) fn top_queries(rows: &[TopQuery], n: usize) -> TopQueries {
    let top = |key: &dyn Fn(&TopQuery) -> f64| {
        let mut v: Vec<TopQuery> = rows.to_vec();
        v.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        v.truncate(n);
        v
    };
    TopQueries {
        by_total_time: top(&|q| q.total_ms),
        by_p95: top(&|q| q.p95_ms.unwrap_or(f64::NEG_INFINITY)),
        by_calls: top(&|q| q.calls as f64),
    }
}

/// Statements with at least `min_calls` calls whose p95 is above the
/// baseline's times `threshold`, worst ratio first.
pub(crate) fn regressions(
    rows: &[TopQuery],
    baseline: &BaselineData,
    threshold: f64,
    min_calls: i64,
) -> Vec<Regression> {
    let mut out: Vec<Regression> = rows
        .iter()
        .filter(|q| q.calls >= min_calls)
        .filter_map(|q| {
            let base = baseline.fingerprints.get(&q.fingerprint)?;
            let p95 = q.p95_ms?;
            if base.p95_ms <= 0.0 || p95 <= base.p95_ms * threshold {
                return None;
            }
            Some(Regression {
                fingerprint: q.fingerprint.clone(),
                query: q.query.clone(),
                calls: q.calls,
                baseline_p95_ms: base.p95_ms,
                p95_ms: p95,
                ratio: p95 / base.p95_ms,
                baseline_mean_ms: base.mean_ms,
                mean_ms: q.mean_ms,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.ratio
            .total_cmp(&a.ratio)
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::report::body::FingerprintBaseline;
    use crate::report::hist::tests::blob;

    pub(crate) fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
            .single()
            .expect("time")
    }

    /// A pattern row of fingerprint `fp` for the minute `minute` after t0.
    pub(crate) fn pattern(fp: &str, minute: i64, calls: i64, total_ms: f64) -> QueryPattern {
        let start = t0() + Duration::minutes(minute);
        QueryPattern {
            id: 0,
            fingerprint: fp.to_string(),
            query: format!("SELECT {fp} FROM t WHERE id = $1"),
            database: "app".into(),
            user_name: "u".into(),
            period_start: start,
            period_end: start + Duration::minutes(1),
            calls,
            rows: calls,
            errors: 0,
            total_time_ms: total_ms,
            mean_ms: total_ms / calls as f64,
            min_ms: 0.0,
            max_ms: 0.0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            cache_hits: 0,
            cache_misses: 0,
            histogram: None,
        }
    }

    fn with_hist(mut p: QueryPattern, values_us: &[(u64, u64)]) -> QueryPattern {
        p.histogram = Some(blob(values_us));
        p
    }

    #[test]
    fn sums_per_period_and_fingerprint_with_merged_p95() {
        let rows = vec![
            with_hist(pattern("a", 0, 90, 90.0), &[(1_000, 90)]),
            with_hist(pattern("a", 1, 10, 500.0), &[(50_000, 10)]),
            with_hist(pattern("b", 1, 30, 60.0), &[(2_000, 30)]),
        ];
        let sums = sum_patterns(&rows);
        assert_eq!(sums.all.calls, 130);
        assert_eq!(sums.periods.len(), 2);
        let a = &sums.fingerprints["a"];
        assert_eq!(a.calls, 100);
        assert!((a.mean_ms().expect("mean") - 5.9).abs() < 1e-9);
        // a's 95th value of 100 is one of the ten at 50 ms.
        let p95 = a.merged.percentiles().p95_ms.expect("p95");
        assert!((p95 - 50.0).abs() < 0.5, "{p95}");
        let points = period_points(&sums, &[], &[]);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].statements, 90);
        assert!((points[0].throughput_per_s - 1.5).abs() < 1e-9);
        assert_eq!(points[1].statements, 40);
        // Period 2: 10 at 50 ms and 30 at 2 ms: the 38th value is 50 ms.
        let p95 = points[1].p95_ms.expect("p95");
        assert!((p95 - 50.0).abs() < 0.5, "{p95}");
        assert_eq!(sums.all.merged.count_at_least(10_000), 10);
    }

    #[test]
    fn top_lists_are_ordered_and_cut() {
        let rows = vec![
            with_hist(pattern("a", 0, 100, 100.0), &[(1_000, 100)]),
            with_hist(pattern("b", 0, 10, 900.0), &[(90_000, 10)]),
            with_hist(pattern("c", 0, 50, 250.0), &[(5_000, 50)]),
        ];
        let all = fingerprint_rows(&sum_patterns(&rows));
        let top = top_queries(&all, 2);
        let fps = |v: &[TopQuery]| v.iter().map(|q| q.fingerprint.clone()).collect::<Vec<_>>();
        assert_eq!(fps(&top.by_total_time), ["b", "c"]);
        assert_eq!(fps(&top.by_p95), ["b", "c"]);
        assert_eq!(fps(&top.by_calls), ["a", "c"]);
    }

    #[test]
    fn cache_deltas_per_instance_and_restart() {
        let snap = |inst: &str, min: i64, hits: i64, misses: i64| CacheSnapshot {
            id: 0,
            taken_at: t0() + Duration::minutes(min),
            instance: inst.into(),
            hits,
            misses,
            hit_rate: 0.0,
            entries: 0,
            bytes: 0,
            evictions: 0,
            fills: 0,
            invalidations: 0,
            refusals: 0,
            details: serde_json::Value::Null,
        };
        let snaps = vec![
            snap("x", 0, 100, 100),
            snap("y", 0, 0, 0),
            snap("x", 1, 180, 120),
            snap("y", 1, 10, 30),
            // x restarted: its counters start again from 0.
            snap("x", 2, 5, 5),
        ];
        let d = cache_deltas(&snaps);
        let hits: i64 = d.iter().map(|x| x.1).sum();
        let misses: i64 = d.iter().map(|x| x.2).sum();
        assert_eq!((hits, misses), (80 + 10 + 5, 20 + 30 + 5));
    }

    #[test]
    fn regressions_need_ratio_and_calls() {
        let q = |fp: &str, calls: i64, p95: f64| TopQuery {
            fingerprint: fp.into(),
            query: String::new(),
            calls,
            total_ms: 0.0,
            mean_ms: 1.0,
            p95_ms: Some(p95),
            p95_exact: true,
            errors: 0,
        };
        let rows = vec![
            q("slower", 100, 30.0),
            q("same", 100, 10.0),
            q("rare", 5, 100.0),
            q("new", 100, 100.0),
            q("worst", 20, 100.0),
        ];
        let mut base = BaselineData::default();
        for fp in ["slower", "same", "rare", "worst"] {
            base.fingerprints.insert(
                fp.into(),
                FingerprintBaseline {
                    p95_ms: 10.0,
                    mean_ms: 1.0,
                    calls_per_min: 1.0,
                    ..FingerprintBaseline::default()
                },
            );
        }
        let r = regressions(&rows, &base, 1.5, 20);
        let fps: Vec<_> = r.iter().map(|x| x.fingerprint.as_str()).collect();
        assert_eq!(fps, ["worst", "slower"]);
        assert!((r[1].ratio - 3.0).abs() < 1e-9);
    }

    #[test]
    fn pool_summary_and_period_assignment() {
        let pool = |min: i64, util: f64, waiting: i64| PoolStat {
            id: 0,
            taken_at: t0() + Duration::minutes(min) + Duration::seconds(30),
            instance: "x".into(),
            database: "app".into(),
            user_name: "u".into(),
            mode: "transaction".into(),
            pool_size: 10,
            clients_active: 0,
            clients_waiting: waiting,
            servers_active: 0,
            servers_idle: 0,
            utilization: util,
            avg_wait_ms: 2.0,
            max_wait_ms: 0.0,
            transactions: 0,
            queries: 0,
        };
        let pools = vec![
            pool(0, 0.2, 0),
            pool(0, 0.4, 3),
            pool(1, 0.9, 1),
            pool(7, 1.0, 9),
        ];
        let s = pool_summary(&pools);
        assert!((s.mean_utilization.expect("mean") - 0.625).abs() < 1e-9);
        assert_eq!(s.max_utilization, Some(1.0));
        assert_eq!(s.max_clients_waiting, 9);
        let sums = sum_patterns(&[pattern("a", 0, 1, 1.0), pattern("a", 1, 1, 1.0)]);
        let points = period_points(&sums, &[], &pools);
        assert!((points[0].pool_utilization.expect("p0") - 0.3).abs() < 1e-9);
        assert!((points[1].pool_utilization.expect("p1") - 0.9).abs() < 1e-9);
    }
}
