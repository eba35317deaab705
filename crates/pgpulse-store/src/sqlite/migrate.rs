//! The SQLite schema and its migrations. Each migration runs in one
//! transaction together with its row in `schema_migrations`, so a crash
//! leaves it either applied and recorded or not at all; reopening applies
//! only what is missing.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// The migrations, in order. Never edit one that shipped: add another.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, V1_SCHEMA),
    (2, V2_VIEWS),
    (3, V3_API_KEYS),
    (4, V4_JOB_CLAIMS),
];

/// Claims of scheduled job occurrences (one run per occurrence among
/// instances sharing the store).
const V4_JOB_CLAIMS: &str = r#"
CREATE TABLE job_claims (
    job TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (job, due_at)
) WITHOUT ROWID;
"#;

/// API keys: argon2 hashes only, never keys (see `keys.rs`).
const V3_API_KEYS: &str = r#"
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'read')),
    hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
);
"#;

/// The ten tables of the design plus `job_runs` and `audit_log`. Times are
/// INTEGER microseconds since the epoch, JSON is TEXT (see `codec.rs`).
const V1_SCHEMA: &str = r#"
CREATE TABLE performance_logs (
    id INTEGER PRIMARY KEY,
    logged_at INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    query_text TEXT NOT NULL,
    database_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    application_name TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    row_count INTEGER NOT NULL,
    error TEXT,
    slow INTEGER NOT NULL,
    cache TEXT NOT NULL,
    plan TEXT,
    plan_summary TEXT
);
CREATE INDEX performance_logs_logged_at ON performance_logs (logged_at);
CREATE INDEX performance_logs_fingerprint ON performance_logs (fingerprint, logged_at);
CREATE INDEX performance_logs_slow ON performance_logs (logged_at) WHERE slow = 1;

CREATE TABLE performance_alerts (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    occurrences INTEGER NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    dedupe_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    fingerprint TEXT,
    details TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at INTEGER,
    ack_comment TEXT,
    resolved_at INTEGER
);
CREATE INDEX performance_alerts_created_at ON performance_alerts (created_at);
CREATE INDEX performance_alerts_status ON performance_alerts (status, created_at);
CREATE UNIQUE INDEX performance_alerts_unresolved_key
    ON performance_alerts (dedupe_key) WHERE status <> 'resolved';

CREATE TABLE database_statistics (
    id INTEGER PRIMARY KEY,
    collected_at INTEGER NOT NULL,
    database_name TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    xact_commit INTEGER NOT NULL,
    xact_rollback INTEGER NOT NULL,
    blks_hit INTEGER NOT NULL,
    blks_read INTEGER NOT NULL,
    buffer_hit_ratio REAL NOT NULL,
    deadlocks INTEGER NOT NULL,
    temp_bytes INTEGER NOT NULL,
    connections TEXT NOT NULL,
    long_running_transactions INTEGER NOT NULL,
    lock_waits INTEGER NOT NULL,
    dead_tuples INTEGER NOT NULL,
    bloat_bytes INTEGER NOT NULL,
    tables TEXT NOT NULL
);
CREATE INDEX database_statistics_collected_at ON database_statistics (collected_at);
CREATE INDEX database_statistics_database ON database_statistics (database_name, collected_at);

CREATE TABLE cache_performance (
    id INTEGER PRIMARY KEY,
    taken_at INTEGER NOT NULL,
    instance TEXT NOT NULL,
    hits INTEGER NOT NULL,
    misses INTEGER NOT NULL,
    hit_rate REAL NOT NULL,
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    evictions INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    invalidations INTEGER NOT NULL,
    refusals INTEGER NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX cache_performance_taken_at ON cache_performance (taken_at);

CREATE TABLE query_patterns (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    query_text TEXT NOT NULL,
    database_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    total_time_ms REAL NOT NULL,
    mean_ms REAL NOT NULL,
    min_ms REAL NOT NULL,
    max_ms REAL NOT NULL,
    p50_ms REAL NOT NULL,
    p95_ms REAL NOT NULL,
    p99_ms REAL NOT NULL,
    cache_hits INTEGER NOT NULL,
    cache_misses INTEGER NOT NULL,
    histogram BLOB,
    UNIQUE (fingerprint, database_name, user_name, period_start)
);
CREATE INDEX query_patterns_period_start ON query_patterns (period_start);

CREATE TABLE index_usage_stats (
    id INTEGER PRIMARY KEY,
    collected_at INTEGER NOT NULL,
    database_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    index_name TEXT NOT NULL,
    idx_scan INTEGER NOT NULL,
    idx_tup_read INTEGER NOT NULL,
    idx_tup_fetch INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    table_size_bytes INTEGER NOT NULL,
    is_unique INTEGER NOT NULL,
    is_primary INTEGER NOT NULL,
    is_valid INTEGER NOT NULL,
    columns TEXT NOT NULL,
    definition TEXT NOT NULL,
    stats_reset INTEGER
);
CREATE INDEX index_usage_stats_collected_at ON index_usage_stats (collected_at);
CREATE INDEX index_usage_stats_database ON index_usage_stats (database_name, collected_at);

CREATE TABLE connection_pool_stats (
    id INTEGER PRIMARY KEY,
    taken_at INTEGER NOT NULL,
    instance TEXT NOT NULL,
    database_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    mode TEXT NOT NULL,
    pool_size INTEGER NOT NULL,
    clients_active INTEGER NOT NULL,
    clients_waiting INTEGER NOT NULL,
    servers_active INTEGER NOT NULL,
    servers_idle INTEGER NOT NULL,
    utilization REAL NOT NULL,
    avg_wait_ms REAL NOT NULL,
    max_wait_ms REAL NOT NULL,
    transactions INTEGER NOT NULL,
    queries INTEGER NOT NULL
);
CREATE INDEX connection_pool_stats_taken_at ON connection_pool_stats (taken_at);

CREATE TABLE performance_reports (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    trigger_kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    html TEXT NOT NULL
);
CREATE INDEX performance_reports_created_at ON performance_reports (created_at);

CREATE TABLE optimization_recommendations (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'applied', 'failed', 'dismissed')),
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    database_name TEXT NOT NULL,
    title TEXT NOT NULL,
    rationale TEXT NOT NULL,
    statement TEXT,
    confidence REAL NOT NULL,
    expected_benefit TEXT NOT NULL,
    details TEXT NOT NULL,
    applied_at INTEGER,
    applied_by TEXT,
    impact TEXT
);
CREATE INDEX optimization_recommendations_created_at
    ON optimization_recommendations (created_at);
CREATE INDEX optimization_recommendations_key
    ON optimization_recommendations (dedupe_key, status);
CREATE UNIQUE INDEX optimization_recommendations_open_key
    ON optimization_recommendations (dedupe_key) WHERE status = 'open';

CREATE TABLE performance_baselines (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    rolling INTEGER NOT NULL,
    data TEXT NOT NULL,
    thresholds TEXT NOT NULL
);

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    rows_affected INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_runs_started_at ON job_runs (started_at);
CREATE INDEX job_runs_job ON job_runs (job, started_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
"#;

/// The design's three views, for people reading the file with `sqlite3`.
/// Times are shown as ISO-8601 UTC text.
const V2_VIEWS: &str = r#"
CREATE VIEW performance_summary AS
SELECT fingerprint,
       max(query_text) AS query_text,
       database_name,
       sum(calls) AS calls,
       sum(total_time_ms) AS total_time_ms,
       CASE WHEN sum(calls) > 0 THEN sum(total_time_ms) / sum(calls) ELSE 0.0 END AS mean_ms,
       max(max_ms) AS max_ms,
       max(p95_ms) AS worst_p95_ms,
       sum(errors) AS errors,
       sum(cache_hits) AS cache_hits,
       strftime('%Y-%m-%dT%H:%M:%fZ', min(period_start) / 1000000.0, 'unixepoch') AS first_period,
       strftime('%Y-%m-%dT%H:%M:%fZ', max(period_end) / 1000000.0, 'unixepoch') AS last_period
FROM query_patterns
GROUP BY fingerprint, database_name;

CREATE VIEW slow_query_analysis AS
SELECT fingerprint,
       max(query_text) AS query_text,
       database_name,
       count(*) AS slow_count,
       avg(duration_ms) AS mean_ms,
       max(duration_ms) AS max_ms,
       strftime('%Y-%m-%dT%H:%M:%fZ', max(logged_at) / 1000000.0, 'unixepoch') AS last_seen,
       count(plan) AS with_plan
FROM performance_logs
WHERE slow = 1
GROUP BY fingerprint, database_name;

CREATE VIEW alert_summary AS
SELECT rule,
       severity,
       status,
       count(*) AS alerts,
       sum(occurrences) AS occurrences,
       strftime('%Y-%m-%dT%H:%M:%fZ', max(last_seen_at) / 1000000.0, 'unixepoch') AS last_seen
FROM performance_alerts
GROUP BY rule, severity, status;
"#;

/// Applies the migrations not yet recorded; returns the schema version.
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let mut current = 0;
    for &(version, sql) in MIGRATIONS {
        // IMMEDIATE: a second process opening the same file waits here
        // (busy timeout) instead of applying the same migration twice.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !applied {
            let failed = |e: rusqlite::Error| StoreError::Migration {
                version,
                message: e.to_string(),
            };
            tx.execute_batch(sql).map_err(failed)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                (version, chrono::Utc::now().timestamp_micros()),
            )
            .map_err(failed)?;
            tracing::info!(version, "store: applied SQLite migration");
        }
        tx.commit()?;
        current = version;
    }
    Ok(current)
}
