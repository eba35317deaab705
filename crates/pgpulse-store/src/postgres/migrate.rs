//! Schema migrations of the PostgreSQL store: the SQL files in `sql/`,
//! applied in order at connect, each recorded in `schema_migrations`. All
//! of it runs in one transaction holding a transaction-scoped advisory
//! lock, so two instances starting together apply each migration once and
//! the second finds nothing to do.

use deadpool_postgres::Object;

use crate::error::StoreError;

/// One migration: its version, name and SQL.
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        sql: include_str!("sql/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "views_functions",
        sql: include_str!("sql/0002_views_functions.sql"),
    },
    Migration {
        version: 3,
        name: "rls",
        sql: include_str!("sql/0003_rls.sql"),
    },
    Migration {
        version: 4,
        name: "api_keys",
        sql: include_str!("sql/0004_api_keys.sql"),
    },
    Migration {
        version: 5,
        name: "job_claims",
        sql: include_str!("sql/0005_job_claims.sql"),
    },
];

/// The advisory lock key: a constant for pgpulse mixed with the schema
/// name (FNV-1a), so that stores in different schemas of one database do
/// not wait for each other.
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "pgpulse-store-migrate:".bytes().chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// `'text'` as a SQL string literal.
pub(super) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The migrations rendered with the admin role (row-level security of the
/// performance tables, then `api_keys` and `job_claims` with their
/// policies), applied again when the role changes; all are idempotent.
const ROLE_VERSIONS: [i32; 3] = [3, 4, 5];

/// Applies the migrations not yet recorded, and the row-level security
/// migrations again if `admin_role` is not the role they were applied for.
/// `schema` was checked to be a plain identifier; the connection's
/// `search_path` is already `schema`.
pub(super) async fn run(
    client: &mut Object,
    schema: &str,
    admin_role: &str,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now(),
             admin_role text)"
    ))
    .await?;
    let applied: Vec<(i32, Option<String>)> = tx
        .query(
            &format!("SELECT version, admin_role FROM {schema}.schema_migrations"),
            &[],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    for m in MIGRATIONS {
        let version = i32::try_from(m.version).unwrap_or(i32::MAX);
        let done = applied.iter().find(|(v, _)| *v == version);
        let role_changed = ROLE_VERSIONS.contains(&version)
            && done.is_some_and(|(_, role)| role.as_deref() != Some(admin_role));
        if done.is_some() && !role_changed {
            continue;
        }
        let sql = m
            .sql
            .replace("{{admin_role_literal}}", &quote_literal(admin_role));
        tx.batch_execute(&sql)
            .await
            .map_err(|e| StoreError::Migration {
                version: m.version,
                message: describe(&e),
            })?;
        let role = ROLE_VERSIONS.contains(&version).then_some(admin_role);
        tx.execute(
            &format!(
                "INSERT INTO {schema}.schema_migrations (version, name, admin_role) \
                 VALUES ($1, $2, $3) ON CONFLICT (version) DO UPDATE \
                 SET admin_role = EXCLUDED.admin_role, applied_at = now()"
            ),
            &[&version, &m.name, &role],
        )
        .await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            schema,
            again = role_changed,
            "store migration applied"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// Fails unless the connecting user is a member of `admin_role`: the
/// policies would hide every row from the store itself.
pub(super) async fn check_membership(client: &Object, admin_role: &str) -> Result<(), StoreError> {
    let member: bool = client
        .query_one(
            "SELECT pg_has_role(current_user, $1, 'member')",
            &[&admin_role],
        )
        .await?
        .try_get(0)?;
    if member {
        Ok(())
    } else {
        Err(StoreError::InvalidUrl(format!(
            "the store's user is not a member of its admin role {admin_role:?}, \
             so row-level security would hide every row from it"
        )))
    }
}

/// The server's message (with detail and hint) rather than "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(context) = db.where_() {
                text.push_str(&format!(" [{context}]"));
            }
            text
        }
        None => e.to_string(),
    }
}
