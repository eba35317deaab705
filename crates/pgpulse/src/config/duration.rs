//! Durations in the config: read with humantime (`"90d"`, `"250ms"`,
//! `"1h 30m"`), written in the largest unit that divides them exactly
//! (`"90d"`, not humantime's `"2months 29days 2h 52m 48s"`: it counts a
//! month as 30.44 days), so `pgpulse check-config` prints what a user
//! would write. Used as `#[serde(with = "duration")]`, for `Duration` and
//! `Option<Duration>` fields alike.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// `d` as `<n><unit>` in the largest exact unit of d, h, m, s, ms (else µs).
pub fn format(d: Duration) -> String {
    const UNITS: [(u128, &str); 5] = [
        (86_400_000_000, "d"),
        (3_600_000_000, "h"),
        (60_000_000, "m"),
        (1_000_000, "s"),
        (1_000, "ms"),
    ];
    let micros = d.as_micros();
    if micros == 0 {
        return "0s".into();
    }
    for (size, unit) in UNITS {
        if micros.is_multiple_of(size) {
            return format!("{}{unit}", micros / size);
        }
    }
    format!("{micros}us")
}

/// The types this module reads and writes.
pub trait Value {
    /// The text written, if any.
    fn text(&self) -> Option<String>;
}

impl Value for Duration {
    fn text(&self) -> Option<String> {
        Some(format(*self))
    }
}

impl Value for Option<Duration> {
    fn text(&self) -> Option<String> {
        self.map(format)
    }
}

/// Writes `v` (see [`format`]); `None` as a missing value.
pub fn serialize<T: Value, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    match v.text() {
        Some(text) => s.serialize_str(&text),
        None => s.serialize_none(),
    }
}

/// Reads a humantime duration.
pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
where
    humantime_serde::Serde<T>: Deserialize<'de>,
    D: Deserializer<'de>,
{
    humantime_serde::deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_in_the_largest_exact_unit_and_read_back() {
        for (d, text) in [
            (Duration::from_secs(90 * 86_400), "90d"),
            (Duration::from_secs(365 * 86_400), "365d"),
            (Duration::from_secs(6 * 3600), "6h"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1500us"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(format(d), text);
            assert_eq!(humantime::parse_duration(text).ok(), Some(d), "{text}");
        }
    }
}
