//! Per-period statistics as the store keeps them: the conversion of a
//! drained period into a [`QueryPattern`] row (times in ms, the period's HDR
//! histogram serialized), and [`merge_histograms`], which decodes and adds
//! such histograms so that reports get exact percentiles over several
//! periods.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use pgpulse_store::QueryPattern;

use crate::error::InsightError;
use crate::registry::{Drained, DrainedPeriod};

pub mod analysis;
mod plans;
pub(crate) mod shapes;
mod trend;

/// Milliseconds as the store keeps durations (one rounding: `0.246`, not
/// `0.24600000000000002` as seconds times 1000 would give).
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// A wall-clock time as a store timestamp (UTC).
pub(crate) fn timestamp(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

/// A count as the store's `i64` (saturating).
pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The rows of one drain, one per key that ran in the period.
pub(crate) fn to_patterns(drained: &Drained) -> Vec<QueryPattern> {
    let (start, end) = (timestamp(drained.start), timestamp(drained.end));
    drained
        .rows
        .iter()
        .filter(|r| r.accum.calls > 0)
        .map(|r| to_pattern(r, start, end))
        .collect()
}

fn to_pattern(row: &DrainedPeriod, start: DateTime<Utc>, end: DateTime<Utc>) -> QueryPattern {
    let a = &row.accum;
    let total = Duration::from_nanos(u64::try_from(a.total_ns).unwrap_or(u64::MAX));
    QueryPattern {
        id: 0,
        fingerprint: row.key.fingerprint.to_string(),
        query: row.query.to_string(),
        database: row.key.database.to_string(),
        user_name: row.key.user.to_string(),
        period_start: start,
        period_end: end,
        calls: count(a.calls),
        rows: count(a.rows),
        errors: count(a.errors),
        total_time_ms: ms(total),
        mean_ms: ms(total) / a.calls.max(1) as f64,
        min_ms: ms(Duration::from_nanos(a.min_ns)),
        max_ms: ms(Duration::from_nanos(a.max_ns)),
        p50_ms: ms(a.quantile(0.50)),
        p95_ms: ms(a.quantile(0.95)),
        p99_ms: ms(a.quantile(0.99)),
        cache_hits: count(a.hits),
        cache_misses: count(a.misses),
        histogram: serialize(&a.hist),
    }
}

/// The histogram in the V2 + deflate format (values in microseconds), or
/// `None` if serialization fails (then only the percentiles are stored).
fn serialize(hist: &Histogram<u32>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match V2DeflateSerializer::new().serialize(hist, &mut out) {
        Ok(_) => Some(out),
        Err(e) => {
            tracing::warn!(error = ?e, "cannot serialize a period histogram");
            None
        }
    }
}

/// Decodes one histogram stored in [`QueryPattern::histogram`] (HDR V2,
/// deflated or not; values in microseconds).
pub fn decode_histogram(bytes: &[u8]) -> Result<Histogram<u64>, InsightError> {
    let mut reader = bytes;
    Deserializer::new()
        .deserialize::<u64, _>(&mut reader)
        .map_err(|e| InsightError::Histogram(format!("{e:?}")))
}

/// Decodes the histograms of several periods and adds them up: the
/// percentiles of the result are those of all their samples together
/// (within the HDR precision they were recorded with). Values are
/// microseconds; an empty slice gives an empty histogram.
///
/// ```
/// # fn f(rows: &[pgpulse_store::QueryPattern]) -> Result<(), pgpulse_insight::InsightError> {
/// let blobs: Vec<&[u8]> = rows.iter().filter_map(|r| r.histogram.as_deref()).collect();
/// let merged = pgpulse_insight::merge_histograms(&blobs)?;
/// let p95_ms = merged.value_at_quantile(0.95) as f64 / 1000.0;
/// # Ok(()) }
/// ```
pub fn merge_histograms(blobs: &[&[u8]]) -> Result<Histogram<u64>, InsightError> {
    let bad = |e: &dyn std::fmt::Debug| InsightError::Histogram(format!("{e:?}"));
    let Some((first, rest)) = blobs.split_first() else {
        return Histogram::<u64>::new(3).map_err(|e| bad(&e));
    };
    // Start from the first so the result keeps the recorded precision: with
    // equal precisions the sum equals one histogram of all the samples.
    let mut merged = decode_histogram(first)?;
    // A decoded histogram has fixed bounds; later periods may reach further.
    merged.auto(true);
    for blob in rest {
        merged.add(&decode_histogram(blob)?).map_err(|e| bad(&e))?;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::CacheOutcome;
    use crate::registry::Key;
    use crate::stats::{Accum, Sample};
    use pgpulse_sql::Fingerprint;
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    fn period(us: impl Iterator<Item = u64>, digits: u8) -> DrainedPeriod {
        let mut accum = Accum::new(digits);
        for v in us {
            accum.record(&Sample {
                duration: Duration::from_micros(v),
                rows: 2,
                error: v % 10 == 0,
                cache: CacheOutcome::Hit,
                started_at: UNIX_EPOCH,
                completed_at: UNIX_EPOCH,
            });
        }
        DrainedPeriod {
            key: Key {
                fingerprint: Fingerprint(0xab),
                database: Arc::from("db"),
                user: Arc::from("u"),
            },
            query: Arc::from("SELECT $1"),
            accum,
        }
    }

    fn drained(rows: Vec<DrainedPeriod>) -> Drained {
        Drained {
            start: UNIX_EPOCH + Duration::from_secs(60),
            end: UNIX_EPOCH + Duration::from_secs(120),
            rows,
        }
    }

    #[test]
    fn a_period_becomes_a_row_in_milliseconds() {
        let d = drained(vec![period(1_000..=100_000, 3)]);
        let rows = to_patterns(&d);
        assert_eq!(rows.len(), 1);
        let p = &rows[0];
        assert_eq!(p.fingerprint, "00000000000000ab");
        assert_eq!(
            (&*p.query, &*p.database, &*p.user_name),
            ("SELECT $1", "db", "u")
        );
        assert_eq!(p.period_start.timestamp(), 60);
        assert_eq!(p.period_end.timestamp(), 120);
        assert_eq!((p.calls, p.rows, p.errors), (99_001, 198_002, 9_901));
        assert_eq!((p.cache_hits, p.cache_misses), (99_001, 0));
        assert_eq!((p.min_ms, p.max_ms), (1.0, 100.0));
        assert!((p.mean_ms - 50.5).abs() < 1e-9, "{}", p.mean_ms);
        assert!((p.p50_ms - 50.5).abs() <= 0.06, "{}", p.p50_ms);
        assert!((p.p95_ms - 95.05).abs() <= 0.1, "{}", p.p95_ms);
        assert!((p.p99_ms - 99.01).abs() <= 0.1, "{}", p.p99_ms);
        // The histogram decodes to the one recorded.
        let h = decode_histogram(p.histogram.as_deref().expect("histogram")).expect("decode");
        assert_eq!(h.len(), 99_001);
        let recorded = &d.rows[0].accum.hist;
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            assert_eq!(
                h.value_at_quantile(q),
                recorded.value_at_quantile(q),
                "q {q}"
            );
        }
        assert!((ms(Duration::from_micros(h.value_at_quantile(0.95))) - p.p95_ms).abs() < 1e-9);
        assert!(decode_histogram(b"not a histogram").is_err());
        // Empty periods make no row.
        assert!(to_patterns(&drained(vec![period(0..0, 3)])).is_empty());
    }

    #[test]
    fn merged_period_histograms_equal_one_histogram_of_all_samples() {
        for digits in [2, 3] {
            let a = to_patterns(&drained(vec![period(1..=50_000, digits)]));
            let b = to_patterns(&drained(vec![period((1..=5_000).map(|v| v * 400), digits)]));
            let all = period((1..=50_000).chain((1..=5_000).map(|v| v * 400)), digits);
            let blobs: Vec<&[u8]> = a
                .iter()
                .chain(&b)
                .filter_map(|r| r.histogram.as_deref())
                .collect();
            assert_eq!(blobs.len(), 2);
            let merged = merge_histograms(&blobs).expect("merge");
            assert_eq!(merged.len(), 55_000);
            for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
                assert_eq!(
                    merged.value_at_quantile(q),
                    all.accum.hist.value_at_quantile(q),
                    "q {q} digits {digits}"
                );
            }
        }
        assert_eq!(merge_histograms(&[]).expect("empty").len(), 0);
    }
}
