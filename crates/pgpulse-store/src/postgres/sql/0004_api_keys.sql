-- pgpulse store, migration 4: API keys (argon2 hashes only, never keys),
-- with the same row-level security as the other tables. Applied again
-- (idempotently) when the admin role changes, like migration 3.
CREATE TABLE IF NOT EXISTS api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id       text NOT NULL UNIQUE,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'read')),
    hash         text NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
DO $rls$
DECLARE
    v_admin text := {{admin_role_literal}};
BEGIN
    ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
    ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS pgpulse_admin_only ON api_keys;
    -- As in migration 3: the sub-select is one InitPlan per statement.
    EXECUTE format('CREATE POLICY pgpulse_admin_only ON api_keys FOR ALL '
                   'USING ((SELECT pg_has_role(current_user, %L, ''member''))) '
                   'WITH CHECK ((SELECT pg_has_role(current_user, %L, ''member'')))',
                   v_admin, v_admin);
    REVOKE ALL ON api_keys FROM PUBLIC;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO %I', v_admin);
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE api_keys_id_seq TO %I', v_admin);
END
$rls$;
