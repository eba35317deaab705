//! pgpulse insight: per-fingerprint statistics and histograms, slow-query
//! capture, alerts, baselines, pattern analysis, the index advisor, reports and
//! scheduled jobs.
#![warn(missing_docs)]
