-- pgpulse store, migration 1: the twelve tables and the indexes the Store
-- trait's queries use. Runs with search_path set to the store's schema.

CREATE TABLE performance_logs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at        timestamptz NOT NULL,
    fingerprint      text NOT NULL,
    query            text NOT NULL,
    database         text NOT NULL,
    user_name        text NOT NULL,
    application_name text NOT NULL DEFAULT '',
    duration_ms      double precision NOT NULL,
    rows             bigint NOT NULL DEFAULT 0,
    error            text,
    slow             boolean NOT NULL DEFAULT false,
    cache            text NOT NULL DEFAULT 'bypass',
    plan             jsonb,
    plan_summary     text
);
CREATE INDEX performance_logs_logged_at ON performance_logs (logged_at DESC, id DESC);
CREATE INDEX performance_logs_fingerprint ON performance_logs (fingerprint, logged_at DESC);
CREATE INDEX performance_logs_slow ON performance_logs (logged_at DESC) WHERE slow;

CREATE TABLE performance_alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    occurrences     bigint NOT NULL DEFAULT 1,
    rule            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    dedupe_key      text NOT NULL,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acknowledged', 'resolved')),
    title           text NOT NULL,
    message         text NOT NULL,
    fingerprint     text,
    details         jsonb NOT NULL DEFAULT '{}',
    acknowledged_by text,
    acknowledged_at timestamptz,
    ack_comment     text,
    resolved_at     timestamptz
);
-- One unresolved alert per key: raise_alert's ON CONFLICT target.
CREATE UNIQUE INDEX performance_alerts_open_key
    ON performance_alerts (dedupe_key) WHERE status <> 'resolved';
CREATE INDEX performance_alerts_created_at ON performance_alerts (created_at DESC, id DESC);
CREATE INDEX performance_alerts_status ON performance_alerts (status, severity);
CREATE INDEX performance_alerts_resolved ON performance_alerts (created_at)
    WHERE status = 'resolved';

CREATE TABLE database_statistics (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collected_at              timestamptz NOT NULL,
    database                  text NOT NULL,
    size_bytes                bigint NOT NULL,
    xact_commit               bigint NOT NULL,
    xact_rollback             bigint NOT NULL,
    blks_hit                  bigint NOT NULL,
    blks_read                 bigint NOT NULL,
    buffer_hit_ratio          double precision NOT NULL,
    deadlocks                 bigint NOT NULL,
    temp_bytes                bigint NOT NULL,
    connections               jsonb NOT NULL DEFAULT '{}',
    long_running_transactions bigint NOT NULL,
    lock_waits                bigint NOT NULL,
    dead_tuples               bigint NOT NULL,
    bloat_bytes               bigint NOT NULL,
    tables                    jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX database_statistics_collected_at ON database_statistics (collected_at, id);
CREATE INDEX database_statistics_database ON database_statistics (database, collected_at);

CREATE TABLE cache_performance (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    taken_at      timestamptz NOT NULL,
    instance      text NOT NULL,
    hits          bigint NOT NULL,
    misses        bigint NOT NULL,
    hit_rate      double precision NOT NULL,
    entries       bigint NOT NULL,
    bytes         bigint NOT NULL,
    evictions     bigint NOT NULL,
    fills         bigint NOT NULL,
    invalidations bigint NOT NULL,
    refusals      bigint NOT NULL,
    details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX cache_performance_taken_at ON cache_performance (taken_at, id);

CREATE TABLE query_patterns (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint   text NOT NULL,
    query         text NOT NULL,
    database      text NOT NULL,
    user_name     text NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    calls         bigint NOT NULL,
    rows          bigint NOT NULL,
    errors        bigint NOT NULL,
    total_time_ms double precision NOT NULL,
    mean_ms       double precision NOT NULL,
    min_ms        double precision NOT NULL,
    max_ms        double precision NOT NULL,
    p50_ms        double precision NOT NULL,
    p95_ms        double precision NOT NULL,
    p99_ms        double precision NOT NULL,
    cache_hits    bigint NOT NULL,
    cache_misses  bigint NOT NULL,
    histogram     bytea,
    UNIQUE (fingerprint, database, user_name, period_start)
);
CREATE INDEX query_patterns_period_start ON query_patterns (period_start);

CREATE TABLE index_usage_stats (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collected_at     timestamptz NOT NULL,
    database         text NOT NULL,
    schema_name      text NOT NULL,
    table_name       text NOT NULL,
    index_name       text NOT NULL,
    idx_scan         bigint NOT NULL,
    idx_tup_read     bigint NOT NULL,
    idx_tup_fetch    bigint NOT NULL,
    size_bytes       bigint NOT NULL,
    table_size_bytes bigint NOT NULL,
    is_unique        boolean NOT NULL,
    is_primary       boolean NOT NULL,
    is_valid         boolean NOT NULL,
    columns          text[] NOT NULL DEFAULT '{}',
    definition       text NOT NULL,
    stats_reset      timestamptz
);
CREATE INDEX index_usage_stats_latest ON index_usage_stats (database, collected_at DESC);
CREATE INDEX index_usage_stats_collected_at ON index_usage_stats (collected_at);

CREATE TABLE connection_pool_stats (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    taken_at        timestamptz NOT NULL,
    instance        text NOT NULL,
    database        text NOT NULL,
    user_name       text NOT NULL,
    mode            text NOT NULL,
    pool_size       bigint NOT NULL,
    clients_active  bigint NOT NULL,
    clients_waiting bigint NOT NULL,
    servers_active  bigint NOT NULL,
    servers_idle    bigint NOT NULL,
    utilization     double precision NOT NULL,
    avg_wait_ms     double precision NOT NULL,
    max_wait_ms     double precision NOT NULL,
    transactions    bigint NOT NULL,
    queries         bigint NOT NULL
);
CREATE INDEX connection_pool_stats_taken_at ON connection_pool_stats (taken_at, id);

CREATE TABLE performance_reports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at   timestamptz NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    trigger      text NOT NULL,
    title        text NOT NULL,
    body         jsonb NOT NULL,
    html         text NOT NULL
);
CREATE INDEX performance_reports_created_at ON performance_reports (created_at DESC, id DESC);

CREATE TABLE optimization_recommendations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'applied', 'failed', 'dismissed')),
    kind             text NOT NULL,
    dedupe_key       text NOT NULL,
    database         text NOT NULL,
    title            text NOT NULL,
    rationale        text NOT NULL,
    statement        text,
    confidence       double precision NOT NULL,
    expected_benefit jsonb NOT NULL DEFAULT '{}',
    details          jsonb NOT NULL DEFAULT '{}',
    applied_at       timestamptz,
    applied_by       text,
    impact           jsonb
);
CREATE INDEX optimization_recommendations_key ON optimization_recommendations (dedupe_key, status);
-- One open recommendation per key.
CREATE UNIQUE INDEX optimization_recommendations_open_key
    ON optimization_recommendations (dedupe_key) WHERE status = 'open';
CREATE INDEX optimization_recommendations_created_at
    ON optimization_recommendations (created_at DESC, id DESC);

CREATE TABLE performance_baselines (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    rolling      boolean NOT NULL,
    data         jsonb NOT NULL,
    thresholds   jsonb NOT NULL
);

CREATE TABLE job_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job           text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    rows_affected bigint NOT NULL,
    message       text NOT NULL
);
CREATE INDEX job_runs_started_at ON job_runs (started_at DESC, id DESC);
CREATE INDEX job_runs_job ON job_runs (job, started_at DESC);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
