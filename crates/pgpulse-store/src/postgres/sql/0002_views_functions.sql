-- pgpulse store, migration 2: the views and the SQL functions. Views are
-- security_invoker (and security_barrier) so that they never bypass the
-- row-level security of the tables they read; functions are SECURITY
-- INVOKER (the default) for the same reason.

CREATE FUNCTION severity_rank(p_severity text) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE p_severity WHEN 'info' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 END
$$;

-- Per fingerprint over the last 24 hours.
CREATE VIEW performance_summary WITH (security_barrier = true, security_invoker = true) AS
SELECT q.fingerprint,
       (array_agg(q.query ORDER BY q.period_start DESC))[1] AS query,
       sum(q.calls)::bigint AS calls,
       sum(q.total_time_ms) AS total_time_ms,
       CASE WHEN sum(q.calls) > 0 THEN sum(q.total_time_ms) / sum(q.calls)::float8 ELSE 0 END
           AS mean_ms,
       max(q.p95_ms) AS worst_p95_ms,
       sum(q.errors)::bigint AS errors,
       CASE WHEN sum(q.cache_hits) + sum(q.cache_misses) > 0
            THEN sum(q.cache_hits)::float8 / (sum(q.cache_hits) + sum(q.cache_misses))::float8
       END AS cache_hit_ratio,
       min(q.period_start) AS first_period,
       max(q.period_end) AS last_period
FROM query_patterns q
WHERE q.period_start >= now() - interval '24 hours'
GROUP BY q.fingerprint;

-- Slow statements grouped by fingerprint.
CREATE VIEW slow_query_analysis WITH (security_barrier = true, security_invoker = true) AS
SELECT l.fingerprint,
       (array_agg(l.query ORDER BY l.logged_at DESC))[1] AS query,
       count(*) AS slow_count,
       avg(l.duration_ms) AS avg_duration_ms,
       max(l.duration_ms) AS max_duration_ms,
       max(l.logged_at) AS last_seen,
       (array_agg(l.plan_summary ORDER BY l.logged_at DESC)
            FILTER (WHERE l.plan_summary IS NOT NULL))[1] AS latest_plan_summary
FROM performance_logs l
WHERE l.slow
GROUP BY l.fingerprint;

-- Alerts counted by status and severity, with the oldest of each group.
CREATE VIEW alert_summary WITH (security_barrier = true, security_invoker = true) AS
SELECT a.status,
       a.severity,
       count(*) AS alerts,
       sum(a.occurrences)::bigint AS occurrences,
       min(a.created_at) AS oldest_created_at,
       max(a.last_seen_at) AS last_seen_at
FROM performance_alerts a
GROUP BY a.status, a.severity;

-- Inserts one performance log row; returns its id.
CREATE FUNCTION log_performance_data(
    p_logged_at timestamptz,
    p_fingerprint text,
    p_query text,
    p_database text,
    p_user_name text,
    p_duration_ms double precision,
    p_rows bigint DEFAULT 0,
    p_error text DEFAULT NULL,
    p_slow boolean DEFAULT false,
    p_cache text DEFAULT 'bypass',
    p_plan jsonb DEFAULT NULL,
    p_plan_summary text DEFAULT NULL,
    p_application_name text DEFAULT ''
) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO performance_logs (logged_at, fingerprint, query, database, user_name,
        application_name, duration_ms, rows, error, slow, cache, plan, plan_summary)
    VALUES (p_logged_at, p_fingerprint, p_query, p_database, p_user_name,
        coalesce(p_application_name, ''), p_duration_ms, coalesce(p_rows, 0), p_error,
        coalesce(p_slow, false), coalesce(p_cache, 'bypass'), p_plan, p_plan_summary)
    RETURNING id
$$;

-- Raises an alert: an unresolved alert with the same key is updated
-- (occurrences + 1, last seen, message, details, the higher severity),
-- otherwise a new one is stored. Returns its id and whether it is new.
CREATE FUNCTION create_performance_alert(
    p_rule text,
    p_severity text,
    p_dedupe_key text,
    p_title text,
    p_message text,
    p_fingerprint text DEFAULT NULL,
    p_details jsonb DEFAULT '{}',
    p_at timestamptz DEFAULT now()
) RETURNS TABLE (alert_id bigint, created boolean)
LANGUAGE sql AS $$
    INSERT INTO performance_alerts AS a (created_at, last_seen_at, occurrences, rule,
        severity, dedupe_key, status, title, message, fingerprint, details)
    VALUES (p_at, p_at, 1, p_rule, p_severity, p_dedupe_key, 'open', p_title, p_message,
        p_fingerprint, coalesce(p_details, '{}'))
    ON CONFLICT (dedupe_key) WHERE status <> 'resolved' DO UPDATE SET
        occurrences = a.occurrences + 1,
        last_seen_at = EXCLUDED.last_seen_at,
        message = EXCLUDED.message,
        details = EXCLUDED.details,
        severity = CASE WHEN severity_rank(EXCLUDED.severity) > severity_rank(a.severity)
                        THEN EXCLUDED.severity ELSE a.severity END
    RETURNING a.id, (a.xmax = 0)
$$;

-- Stores one pattern row, merging it into the row of the same
-- (fingerprint, database, user_name, period_start): counts and times add
-- up, min / max combine, percentiles and the histogram are replaced by the
-- newer row's when it has more calls. Returns the row's id.
CREATE FUNCTION update_query_pattern(
    p_fingerprint text,
    p_query text,
    p_database text,
    p_user_name text,
    p_period_start timestamptz,
    p_period_end timestamptz,
    p_calls bigint,
    p_rows bigint,
    p_errors bigint,
    p_total_time_ms double precision,
    p_mean_ms double precision,
    p_min_ms double precision,
    p_max_ms double precision,
    p_p50_ms double precision,
    p_p95_ms double precision,
    p_p99_ms double precision,
    p_cache_hits bigint,
    p_cache_misses bigint,
    p_histogram bytea DEFAULT NULL
) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO query_patterns AS q (fingerprint, query, database, user_name, period_start,
        period_end, calls, rows, errors, total_time_ms, mean_ms, min_ms, max_ms, p50_ms,
        p95_ms, p99_ms, cache_hits, cache_misses, histogram)
    VALUES (p_fingerprint, p_query, p_database, p_user_name, p_period_start, p_period_end,
        p_calls, p_rows, p_errors, p_total_time_ms, p_mean_ms, p_min_ms, p_max_ms, p_p50_ms,
        p_p95_ms, p_p99_ms, p_cache_hits, p_cache_misses, p_histogram)
    ON CONFLICT (fingerprint, database, user_name, period_start) DO UPDATE SET
        query = EXCLUDED.query,
        period_end = greatest(q.period_end, EXCLUDED.period_end),
        calls = q.calls + EXCLUDED.calls,
        rows = q.rows + EXCLUDED.rows,
        errors = q.errors + EXCLUDED.errors,
        total_time_ms = q.total_time_ms + EXCLUDED.total_time_ms,
        mean_ms = CASE WHEN q.calls + EXCLUDED.calls > 0
                       THEN (q.total_time_ms + EXCLUDED.total_time_ms)
                            / (q.calls + EXCLUDED.calls)::float8
                       ELSE 0 END,
        min_ms = least(q.min_ms, EXCLUDED.min_ms),
        max_ms = greatest(q.max_ms, EXCLUDED.max_ms),
        p50_ms = CASE WHEN EXCLUDED.calls > q.calls THEN EXCLUDED.p50_ms ELSE q.p50_ms END,
        p95_ms = CASE WHEN EXCLUDED.calls > q.calls THEN EXCLUDED.p95_ms ELSE q.p95_ms END,
        p99_ms = CASE WHEN EXCLUDED.calls > q.calls THEN EXCLUDED.p99_ms ELSE q.p99_ms END,
        histogram = CASE WHEN EXCLUDED.calls > q.calls THEN EXCLUDED.histogram
                         ELSE q.histogram END,
        cache_hits = q.cache_hits + EXCLUDED.cache_hits,
        cache_misses = q.cache_misses + EXCLUDED.cache_misses
    RETURNING q.id
$$;

-- Figures over [p_from, p_to): throughput, mean, worst period p95 and error
-- rate from query_patterns; result-cache hit rates from the patterns' own
-- counters and from the cache snapshots (counter deltas per instance).
CREATE FUNCTION get_performance_statistics(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (
    calls bigint,
    throughput_per_s double precision,
    mean_ms double precision,
    worst_p95_ms double precision,
    errors bigint,
    error_rate double precision,
    query_cache_hits bigint,
    query_cache_misses bigint,
    query_cache_hit_rate double precision,
    cache_hit_rate double precision
)
LANGUAGE sql STABLE AS $$
    WITH q AS (
        SELECT coalesce(sum(p.calls), 0)::bigint AS calls,
               coalesce(sum(p.total_time_ms), 0)::float8 AS total,
               coalesce(max(p.p95_ms), 0)::float8 AS p95,
               coalesce(sum(p.errors), 0)::bigint AS errors,
               coalesce(sum(p.cache_hits), 0)::bigint AS hits,
               coalesce(sum(p.cache_misses), 0)::bigint AS misses
        FROM query_patterns p
        WHERE p.period_start >= p_from AND p.period_start < p_to
    ), per_instance AS (
        SELECT greatest(max(c.hits) - min(c.hits), 0) AS dh,
               greatest(max(c.misses) - min(c.misses), 0) AS dm,
               avg(c.hit_rate) AS mean_rate
        FROM cache_performance c
        WHERE c.taken_at >= p_from AND c.taken_at < p_to
        GROUP BY c.instance
    ), c AS (
        SELECT coalesce(sum(dh), 0)::float8 AS dh, coalesce(sum(dm), 0)::float8 AS dm,
               avg(mean_rate) AS mean_rate
        FROM per_instance
    )
    SELECT q.calls,
           q.calls::float8 / nullif(extract(epoch FROM (p_to - p_from))::float8, 0),
           CASE WHEN q.calls > 0 THEN q.total / q.calls ELSE 0 END,
           q.p95,
           q.errors,
           CASE WHEN q.calls > 0 THEN q.errors::float8 / q.calls ELSE 0 END,
           q.hits,
           q.misses,
           CASE WHEN q.hits + q.misses > 0 THEN q.hits::float8 / (q.hits + q.misses) END,
           CASE WHEN c.dh + c.dm > 0 THEN c.dh / (c.dh + c.dm) ELSE c.mean_rate END
    FROM q CROSS JOIN c
$$;

-- The top fingerprints by total time in [p_from, p_to), with their share
-- of the window's total time and their trend against the previous window
-- of equal length (mean_change: mean now / mean before - 1; trend: new,
-- slower (> +10 %), faster (< -10 %) or stable).
CREATE FUNCTION analyze_query_patterns(p_from timestamptz, p_to timestamptz,
    p_limit int DEFAULT 10)
RETURNS TABLE (
    fingerprint text,
    query text,
    calls bigint,
    total_time_ms double precision,
    mean_ms double precision,
    share double precision,
    previous_calls bigint,
    previous_mean_ms double precision,
    mean_change double precision,
    trend text
)
LANGUAGE sql STABLE AS $$
    WITH cur AS (
        SELECT p.fingerprint AS fp,
               (array_agg(p.query ORDER BY p.period_start DESC))[1] AS q,
               sum(p.calls)::bigint AS n,
               sum(p.total_time_ms)::float8 AS t
        FROM query_patterns p
        WHERE p.period_start >= p_from AND p.period_start < p_to
        GROUP BY p.fingerprint
    ), prev AS (
        SELECT p.fingerprint AS fp, sum(p.calls)::bigint AS n,
               sum(p.total_time_ms)::float8 AS t
        FROM query_patterns p
        WHERE p.period_start >= p_from - (p_to - p_from) AND p.period_start < p_from
        GROUP BY p.fingerprint
    ), grand AS (
        SELECT sum(cur.t) AS t FROM cur
    ), joined AS (
        SELECT cur.fp, cur.q, cur.n, cur.t,
               CASE WHEN cur.n > 0 THEN cur.t / cur.n ELSE 0 END AS mean,
               CASE WHEN grand.t > 0 THEN cur.t / grand.t ELSE 0 END AS share,
               coalesce(prev.n, 0) AS prev_n,
               CASE WHEN prev.n > 0 THEN prev.t / prev.n END AS prev_mean
        FROM cur CROSS JOIN grand LEFT JOIN prev ON prev.fp = cur.fp
    )
    SELECT j.fp, j.q, j.n, j.t, j.mean, j.share, j.prev_n, j.prev_mean,
           CASE WHEN j.prev_mean > 0 THEN j.mean / j.prev_mean - 1 END,
           CASE WHEN j.prev_mean IS NULL THEN 'new'
                WHEN j.mean > j.prev_mean * 1.1 THEN 'slower'
                WHEN j.mean < j.prev_mean * 0.9 THEN 'faster'
                ELSE 'stable' END
    FROM joined j
    ORDER BY j.t DESC, j.fp
    LIMIT p_limit
$$;

-- Slow statements logged in [p_from, p_to), per fingerprint, largest total
-- slow time first.
CREATE FUNCTION get_slow_queries(p_from timestamptz, p_to timestamptz,
    p_limit int DEFAULT 20)
RETURNS TABLE (
    fingerprint text,
    query text,
    executions bigint,
    avg_ms double precision,
    max_ms double precision,
    total_ms double precision,
    last_seen timestamptz,
    plan_summary text
)
LANGUAGE sql STABLE AS $$
    SELECT l.fingerprint,
           (array_agg(l.query ORDER BY l.logged_at DESC))[1],
           count(*),
           avg(l.duration_ms),
           max(l.duration_ms),
           sum(l.duration_ms),
           max(l.logged_at),
           (array_agg(l.plan_summary ORDER BY l.logged_at DESC)
                FILTER (WHERE l.plan_summary IS NOT NULL))[1]
    FROM performance_logs l
    WHERE l.slow AND l.logged_at >= p_from AND l.logged_at < p_to
    GROUP BY l.fingerprint
    ORDER BY sum(l.duration_ms) DESC, l.fingerprint
    LIMIT p_limit
$$;

-- Deletes rows older than each table's retention ({"performance_logs":
-- "7 days", ...}, measured back from p_now) in batches of p_batch rows;
-- alerts are deleted only when resolved. Returns the rows deleted per
-- table. One transaction (a function cannot commit); Store's
-- delete_older_than commits per batch.
CREATE FUNCTION cleanup_performance_data(p_retention jsonb, p_batch int DEFAULT 10000,
    p_now timestamptz DEFAULT now())
RETURNS TABLE (table_name text, deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
    v_keep text;
    v_column text;
    v_extra text;
    v_cutoff timestamptz;
    v_n bigint;
    v_total bigint;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'cleanup_performance_data: batch must be positive'
            USING ERRCODE = '22023';
    END IF;
    FOR v_table, v_keep IN SELECT e.key, e.value FROM jsonb_each_text(p_retention) e
                            ORDER BY e.key LOOP
        v_column := CASE v_table
            WHEN 'performance_logs' THEN 'logged_at'
            WHEN 'performance_alerts' THEN 'created_at'
            WHEN 'database_statistics' THEN 'collected_at'
            WHEN 'cache_performance' THEN 'taken_at'
            WHEN 'query_patterns' THEN 'period_start'
            WHEN 'index_usage_stats' THEN 'collected_at'
            WHEN 'connection_pool_stats' THEN 'taken_at'
            WHEN 'performance_reports' THEN 'created_at'
            WHEN 'job_runs' THEN 'started_at'
            WHEN 'audit_log' THEN 'at'
        END;
        IF v_column IS NULL THEN
            RAISE EXCEPTION 'cleanup_performance_data: no retention for table %', v_table
                USING ERRCODE = '22023';
        END IF;
        v_extra := CASE WHEN v_table = 'performance_alerts'
                        THEN ' AND status = ''resolved''' ELSE '' END;
        v_cutoff := p_now - v_keep::interval;
        v_total := 0;
        LOOP
            EXECUTE format('DELETE FROM %I WHERE ctid = ANY(ARRAY('
                           'SELECT ctid FROM %I WHERE %I < $1%s LIMIT $2))',
                           v_table, v_table, v_column, v_extra)
                USING v_cutoff, p_batch;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            v_total := v_total + v_n;
            EXIT WHEN v_n < p_batch;
        END LOOP;
        table_name := v_table;
        deleted := v_total;
        RETURN NEXT;
    END LOOP;
END
$$;

-- A summary of [p_from, p_to) as one JSON document: statistics, top
-- patterns with trends, slow statements, alerts and open recommendations.
CREATE FUNCTION generate_performance_report(p_from timestamptz, p_to timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'window', jsonb_build_object('from', p_from, 'to', p_to),
        'statistics', (SELECT to_jsonb(s) FROM get_performance_statistics(p_from, p_to) s),
        'top_queries', coalesce((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.total_time_ms DESC)
                                 FROM analyze_query_patterns(p_from, p_to, 10) a), '[]'),
        'slow_queries', coalesce((SELECT jsonb_agg(to_jsonb(g) ORDER BY g.total_ms DESC)
                                  FROM get_slow_queries(p_from, p_to, 10) g), '[]'),
        'alerts', jsonb_build_object(
            'raised', (SELECT count(*) FROM performance_alerts a
                       WHERE a.created_at >= p_from AND a.created_at < p_to),
            'unresolved', (SELECT count(*) FROM performance_alerts a
                           WHERE a.status <> 'resolved'),
            'by_severity', coalesce((SELECT jsonb_object_agg(x.severity, x.n) FROM (
                SELECT a.severity, count(*) AS n FROM performance_alerts a
                WHERE a.created_at >= p_from AND a.created_at < p_to
                GROUP BY a.severity) x), '{}')),
        'recommendations', jsonb_build_object(
            'open', (SELECT count(*) FROM optimization_recommendations r
                     WHERE r.status = 'open'))
    )
$$;
