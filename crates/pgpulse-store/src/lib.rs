//! Persistence of pgpulse performance data behind one trait, [`Store`],
//! with SQLite (embedded default, [`SqliteStore`]) and PostgreSQL
//! ([`PgStore`]) implementations that pass the same test suite.
//!
//! The tables are the ten of the design (`performance_logs`,
//! `performance_alerts`, `database_statistics`, `cache_performance`,
//! `query_patterns`, `index_usage_stats`, `connection_pool_stats`,
//! `performance_reports`, `optimization_recommendations`,
//! `performance_baselines`) plus `job_runs` and `audit_log`. Migrations are
//! applied when a store is opened.
//!
//! Writes come from background tasks (the insight flusher, collectors,
//! jobs, the API), never from the proxy's data path.
#![warn(missing_docs)]

mod error;
mod keys;
pub mod model;
mod open;
mod postgres;
mod sqlite;
mod store;

pub use error::StoreError;
pub use keys::{ApiKeyRecord, ApiKeys, ApiRole, NewApiKey};
pub use model::*;
pub use open::{Opened, open};
pub use postgres::{PgStore, PgStoreOptions};
pub use sqlite::SqliteStore;
pub use store::Store;

/// Days of job claims kept (`Store::claim_job_occurrence`): far longer
/// than any job's period, so a late instance never claims an old occurrence
/// again.
pub const CLAIMS_KEPT_DAYS: i64 = 7;
