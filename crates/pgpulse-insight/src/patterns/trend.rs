//! `slowing_down`: each fingerprint's exact p95 per day (merged period
//! histograms) over the last days, and the robust test "the last day's p95
//! is above the median of the previous days' times a ratio", with minimum
//! calls per day and a minimum absolute increase so that noise on fast
//! statements does not count.

use std::collections::HashMap;

use pgpulse_store::{Store, Timestamp, Window};

use crate::error::InsightError;
use crate::report::hist::{Merged, decode};

/// One fingerprint's figures for one day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Day {
    pub calls: i64,
    pub p95_ms: f64,
}

/// A fingerprint's days, most recent first (index 0 is the last 24 h).
#[derive(Debug, Clone, Default)]
pub(crate) struct Trend {
    pub query: String,
    pub database: String,
    pub days: Vec<Option<Day>>,
}

/// Reads `days` days ending at `now`, one hour of rows at a time.
pub(crate) async fn daily(
    store: &dyn Store,
    now: Timestamp,
    days: u32,
) -> Result<HashMap<String, Trend>, InsightError> {
    let mut out: HashMap<String, Trend> = HashMap::new();
    for d in 0..days {
        let end = now - chrono::Duration::days(i64::from(d));
        let start = end - chrono::Duration::days(1);
        let mut day: HashMap<String, (String, String, i64, Merged)> = HashMap::new();
        let mut from = start;
        while from < end {
            let to = from + chrono::Duration::hours(1);
            for p in store.patterns(Window::between(from, to), None).await? {
                let e = day
                    .entry(p.fingerprint.clone())
                    .or_insert_with(|| (p.query.clone(), p.database.clone(), 0, Merged::default()));
                e.2 += p.calls;
                let h = p.histogram.as_deref().and_then(decode);
                e.3.add_pattern(&p, h.as_ref());
            }
            from = to;
        }
        for (fp, (query, database, calls, merged)) in day {
            let t = out.entry(fp).or_insert_with(|| Trend {
                query,
                database,
                days: vec![None; days as usize],
            });
            if let (Some(p95_ms), Some(slot)) =
                (merged.percentiles().p95_ms, t.days.get_mut(d as usize))
            {
                *slot = Some(Day { calls, p95_ms });
            }
        }
    }
    Ok(out)
}

/// What made a fingerprint "slowing down".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slowing {
    pub last: Day,
    pub median_p95_ms: f64,
    pub days_compared: usize,
}

/// The median of the previous days (those with `min_calls`, at least 3)
/// against the last day.
pub(crate) fn judge(
    t: &Trend,
    ratio: f64,
    min_calls: i64,
    min_increase_ms: f64,
) -> Option<Slowing> {
    let last = (*t.days.first()?)?;
    if last.calls < min_calls {
        return None;
    }
    let mut prev: Vec<f64> = t.days[1..]
        .iter()
        .flatten()
        .filter(|d| d.calls >= min_calls)
        .map(|d| d.p95_ms)
        .collect();
    if prev.len() < 3 {
        return None;
    }
    prev.sort_by(f64::total_cmp);
    let n = prev.len();
    let median = if n % 2 == 1 {
        prev[n / 2]
    } else {
        (prev[n / 2 - 1] + prev[n / 2]) / 2.0
    };
    (last.p95_ms > median * ratio && last.p95_ms - median >= min_increase_ms).then_some(Slowing {
        last,
        median_p95_ms: median,
        days_compared: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(days: &[(i64, f64)]) -> Trend {
        Trend {
            days: days
                .iter()
                .map(|&(calls, p95_ms)| (calls > 0).then_some(Day { calls, p95_ms }))
                .collect(),
            ..Trend::default()
        }
    }

    #[test]
    fn the_last_day_against_the_median_of_the_previous() {
        let up = trend(&[
            (500, 30.0),
            (500, 10.0),
            (500, 11.0),
            (500, 90.0),
            (500, 9.0),
        ]);
        let s = judge(&up, 1.5, 100, 1.0).expect("slowing");
        assert_eq!((s.median_p95_ms, s.days_compared), (10.5, 4));
        // One bad previous day does not hide it, nor make a false one.
        let flat = trend(&[
            (500, 12.0),
            (500, 10.0),
            (500, 11.0),
            (500, 90.0),
            (500, 9.0),
        ]);
        assert!(judge(&flat, 1.5, 100, 1.0).is_none());
        // Too few calls, too little history, too small an increase.
        assert!(
            judge(
                &trend(&[(50, 30.0), (500, 10.0), (500, 10.0), (500, 10.0)]),
                1.5,
                100,
                1.0
            )
            .is_none()
        );
        assert!(
            judge(
                &trend(&[(500, 30.0), (500, 10.0), (0, 0.0), (500, 10.0)]),
                1.5,
                100,
                1.0
            )
            .is_none()
        );
        assert!(
            judge(
                &trend(&[(500, 0.3), (500, 0.1), (500, 0.1), (500, 0.1)]),
                1.5,
                100,
                1.0
            )
            .is_none()
        );
    }
}
