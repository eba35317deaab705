//! The admin console tables as plain data: `SHOW QUERIES` and
//! `SHOW SLOW_QUERIES` (the proxy's console renders them as row sets).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::insight::Insight;
use crate::registry::OrderBy;

/// Columns of `SHOW QUERIES`.
pub const SHOW_QUERIES_COLUMNS: [&str; 11] = [
    "fingerprint",
    "query",
    "calls",
    "rows",
    "errors",
    "total_ms",
    "mean_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cache_hits",
];

/// Columns of `SHOW SLOW_QUERIES`.
pub const SHOW_SLOW_QUERIES_COLUMNS: [&str; 7] = [
    "time",
    "duration_ms",
    "database",
    "user",
    "application_name",
    "query",
    "plan",
];

/// A console table: column names and rows of optional text values.
pub type Table = (Vec<&'static str>, Vec<Vec<Option<String>>>);

impl Insight {
    /// `SHOW QUERIES`: the `limit` entries with the most total time.
    pub fn show_queries(&self, limit: usize) -> Table {
        let rows = self
            .top(limit, OrderBy::TotalTime)
            .into_iter()
            .map(|s| {
                vec![
                    Some(s.fingerprint.to_string()),
                    Some(s.query.to_string()),
                    Some(s.calls.to_string()),
                    Some(s.rows.to_string()),
                    Some(s.errors.to_string()),
                    Some(ms(s.total_time)),
                    Some(ms(s.mean_time)),
                    Some(ms(s.p50)),
                    Some(ms(s.p95)),
                    Some(ms(s.p99)),
                    Some(s.cache_hits.to_string()),
                ]
            })
            .collect();
        (SHOW_QUERIES_COLUMNS.to_vec(), rows)
    }

    /// `SHOW SLOW_QUERIES`: the newest `limit` slow queries, newest first;
    /// `plan` is the plan summary or why there is none.
    pub fn show_slow_queries(&self, limit: usize) -> Table {
        let rows = self
            .slow_queries(limit)
            .into_iter()
            .map(|q| {
                let plan = q
                    .plan_summary
                    .clone()
                    .unwrap_or_else(|| q.plan_status.label());
                vec![
                    Some(utc(q.started_at)),
                    Some(ms(q.duration)),
                    Some(q.database.to_string()),
                    Some(q.user.to_string()),
                    Some(q.application_name.to_string()),
                    Some(q.query.to_string()),
                    Some(plan),
                ]
            })
            .collect();
        (SHOW_SLOW_QUERIES_COLUMNS.to_vec(), rows)
    }
}

/// Milliseconds with three decimals.
fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// `YYYY-MM-DD HH:MM:SS.mmmZ` (UTC).
pub(crate) fn utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // leap year
        assert_eq!(utc(t), "2024-02-29 12:34:56.789Z");
        assert_eq!(ms(Duration::from_micros(1_234_567)), "1234.567");
    }
}
