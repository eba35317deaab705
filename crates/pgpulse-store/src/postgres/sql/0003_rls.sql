-- pgpulse store, migration 3: row-level security. Every table enables and
-- forces RLS with one policy that lets only members of the admin role
-- ({{admin_role_literal}} when this migration ran) read or write a row;
-- nothing is granted to PUBLIC; the admin role gets the tables, views,
-- sequences and functions. Functions get a fixed search_path.
DO $rls$
DECLARE
    v_admin text := {{admin_role_literal}};
    v_schema text := current_schema();
    v_table text;
    v_fn regprocedure;
BEGIN
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'pgpulse store: the schema is not on the search_path';
    END IF;
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', v_schema);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, v_admin);
    FOREACH v_table IN ARRAY ARRAY['performance_logs', 'performance_alerts',
        'database_statistics', 'cache_performance', 'query_patterns', 'index_usage_stats',
        'connection_pool_stats', 'performance_reports', 'optimization_recommendations',
        'performance_baselines', 'job_runs', 'audit_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', v_table);
        EXECUTE format('DROP POLICY IF EXISTS pgpulse_admin_only ON %I', v_table);
        -- The sub-select makes the check an InitPlan: evaluated once per
        -- statement rather than once per row.
        EXECUTE format('CREATE POLICY pgpulse_admin_only ON %I FOR ALL '
                       'USING ((SELECT pg_has_role(current_user, %L, ''member''))) '
                       'WITH CHECK ((SELECT pg_has_role(current_user, %L, ''member'')))',
                       v_table, v_admin, v_admin);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', v_table);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', v_table, v_admin);
    END LOOP;
    EXECUTE 'REVOKE ALL ON schema_migrations FROM PUBLIC';
    FOREACH v_table IN ARRAY ARRAY['performance_summary', 'slow_query_analysis',
        'alert_summary'] LOOP
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', v_table);
        EXECUTE format('GRANT SELECT ON %I TO %I', v_table, v_admin);
    END LOOP;
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC', v_schema);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   v_schema, v_admin);
    FOR v_fn IN SELECT p.oid::regprocedure FROM pg_proc p
                WHERE p.pronamespace = v_schema::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', v_fn, v_schema);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn, v_admin);
    END LOOP;
END
$rls$;
