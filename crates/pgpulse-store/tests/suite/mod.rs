//! The store test suite: every `Store` method, exercised with assertions a
//! user would notice, run unchanged on every backend (`tests/sqlite.rs`,
//! `tests/postgres.rs`).
//!
//! Run it on a fresh store. Each area writes in its own day of 2026 (and
//! retention in 2001) and reads back through windows where the trait has
//! them, so areas do not see each other's rows; the few unwindowed reads
//! (reports, audit, baselines, recommendations) compare against what was
//! there before the area ran.
//!
//! Timestamps carry odd microseconds so that a backend that rounds to the
//! millisecond fails; JSON values use integers, strings and binary-exact
//! floats so that `jsonb` normalisation cannot change them.

#![allow(dead_code)]

pub mod alerts;
pub mod logs;
pub mod patterns;
pub mod recs;
pub mod reports;
pub mod retention;
pub mod runs;
pub mod stats;

use chrono::DateTime;
use pgpulse_store::{Page, Store, StoreError, Timestamp, Window};

/// 2026-01-01T00:00:00Z in microseconds.
const BASE_2026: i64 = 1_767_225_600_000_000;
const DAY: i64 = 86_400_000_000;

/// A time `micros` after the start of day `day` (0-based) of 2026.
pub fn at(day: i64, micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(BASE_2026 + day * DAY + micros).expect("time in range")
}

/// Seconds (with odd microseconds) into day `day` of 2026.
pub fn sec(day: i64, secs: i64) -> Timestamp {
    at(day, secs * 1_000_000 + 123_457)
}

/// The whole of day `day`.
pub fn day_window(day: i64) -> Window {
    Window::between(at(day, 0), at(day + 1, 0))
}

/// A page.
pub fn page(limit: u32, offset: u64) -> Page {
    Page { limit, offset }
}

/// Asserts an error is `NotFound`.
pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(e) if e.is_not_found() => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// Asserts an error is `Conflict`.
pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(e) if e.is_conflict() => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

/// Floats computed by the store (means) compared with a tolerance.
pub fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

/// An id that no table holds.
pub const MISSING_ID: i64 = 987_654_321;

/// Every area, in an order where retention (which deletes) runs last.
pub async fn run_all(store: &dyn Store) {
    assert!(!store.backend().is_empty());
    store.ping().await.expect("ping");
    logs::run(store).await;
    patterns::run(store).await;
    alerts::run(store).await;
    stats::run(store).await;
    reports::run(store).await;
    recs::run(store).await;
    runs::run(store).await;
    retention::run(store).await;
}
