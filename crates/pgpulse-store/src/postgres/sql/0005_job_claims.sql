-- pgpulse store, migration 5: claims of scheduled job occurrences, so that
-- instances sharing this store run each occurrence of a job once (the
-- first to claim it), with the same row-level security as the other
-- tables. Applied again (idempotently) when the admin role changes.
CREATE TABLE IF NOT EXISTS job_claims (
    job        text NOT NULL,
    due_at     timestamptz NOT NULL,
    claimed_by text NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (job, due_at)
);
DO $rls$
DECLARE
    v_admin text := {{admin_role_literal}};
BEGIN
    ALTER TABLE job_claims ENABLE ROW LEVEL SECURITY;
    ALTER TABLE job_claims FORCE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS pgpulse_admin_only ON job_claims;
    -- As in migration 3: the sub-select is one InitPlan per statement.
    EXECUTE format('CREATE POLICY pgpulse_admin_only ON job_claims FOR ALL '
                   'USING ((SELECT pg_has_role(current_user, %L, ''member''))) '
                   'WITH CHECK ((SELECT pg_has_role(current_user, %L, ''member'')))',
                   v_admin, v_admin);
    REVOKE ALL ON job_claims FROM PUBLIC;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON job_claims TO %I', v_admin);
END
$rls$;
