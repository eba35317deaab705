//! Triggers + NOTIFY: a statement-level trigger `pgpulse_feed` on every user
//! table calls `public.pgpulse_feed_notify()`, which sends the table's name
//! on channel `pgpulse_feed`. NOTIFY is transactional (delivered at commit,
//! never for a rolled-back write) and deduplicated per transaction.
//!
//! Cost for the application: one `pg_notify` per statement and table
//! written, and at commit NOTIFY takes a cluster-wide lock that serializes
//! the commits of notifying transactions (measurable only under heavy
//! concurrent writes). The triggers stay when pgpulse stops; `DROP FUNCTION
//! public.pgpulse_feed_notify() CASCADE` removes them all.
//!
//! Installation is idempotent and re-run every minute for new tables. A
//! table whose trigger cannot be created (not its owner, lock held too
//! long) is reported once and retried; its external writes are then only
//! bounded by the TTL.

use std::collections::HashSet;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::{CHANNEL, Failure, classify};

/// The function every trigger calls. pgpulse owns it.
pub(super) const FUNCTION: &str = "public.pgpulse_feed_notify";
/// The trigger's name on each table.
pub(super) const TRIGGER: &str = "pgpulse_feed";

/// Which tables get the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every ordinary and partitioned user table (triggers mode).
    All,
    /// Only unlogged ones, whose writes logical decoding never sees.
    Unlogged,
}

/// User tables without the trigger: ordinary (`r`, partitions included:
/// statement triggers are not inherited) and partitioned (`p`), permanent
/// or unlogged, outside the system schemas, not owned by an extension.
/// `$1`: unlogged ones only.
const MISSING: &str = "\
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u') \
      AND (NOT $1 OR c.relpersistence = 'u') \
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
      AND n.nspname !~ '^pg_toast' \
      AND NOT EXISTS (SELECT 1 FROM pg_trigger t \
                      WHERE t.tgrelid = c.oid AND t.tgname = 'pgpulse_feed') \
      AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid \
                        AND d.deptype = 'e')";

fn create_function_sql() -> String {
    format!(
        "CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $pgpulse$\n\
         BEGIN\n\
         \x20 PERFORM pg_catalog.pg_notify('{CHANNEL}', TG_TABLE_NAME);\n\
         \x20 RETURN NULL;\n\
         END\n\
         $pgpulse$;\n\
         COMMENT ON FUNCTION {FUNCTION}() IS \
         'pgpulse change feed: tells pgpulse which table a statement wrote, so its cache \
         drops results read from it. Dropping it (and the pgpulse_feed triggers) is safe \
         while pgpulse is stopped.'"
    )
}

/// Whether some table in scope lacks the trigger (a read-only query).
pub(super) async fn missing(client: &Client, scope: Scope) -> Result<bool, tokio_postgres::Error> {
    let unlogged = scope == Scope::Unlogged;
    let row = client
        .query_one(&format!("SELECT EXISTS (SELECT 1 {MISSING})"), &[&unlogged])
        .await?;
    row.try_get(0)
}

/// Tables whose trigger could not be created, reported once each.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    tables: HashSet<u32>,
}

/// Creates the function (if missing) and the trigger on every table in
/// `scope` that lacks it; returns the names of the tables newly covered.
/// `Failure::Refused` when the function cannot be created.
pub(super) async fn install(
    client: &Client,
    scope: Scope,
    database: &str,
    refusals: &mut Refusals,
) -> Result<Vec<String>, Failure> {
    let unlogged = scope == Scope::Unlogged;
    let rows = client
        .query(
            &format!(
                "SELECT c.oid, format('%I.%I', n.nspname, c.relname), c.relname::text \
                 {MISSING} ORDER BY c.oid"
            ),
            &[&unlogged],
        )
        .await
        .map_err(classify)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    ensure_function(client).await?;
    let mut covered = Vec::new();
    for row in rows {
        let (oid, qualified, name): (u32, String, String) =
            match (row.try_get(0), row.try_get(1), row.try_get(2)) {
                (Ok(o), Ok(q), Ok(n)) => (o, q, n),
                _ => continue,
            };
        // One implicit transaction: the lock timeout applies to this
        // statement only. Creating a trigger takes a lock that conflicts
        // with writers; waiting long would queue the application's writes
        // behind it.
        let sql = format!(
            "SET LOCAL lock_timeout = '500ms'; \
             CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE \
             ON {qualified} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        );
        match client.batch_execute(&sql).await {
            Ok(()) => {
                refusals.tables.remove(&oid);
                covered.push(name);
            }
            Err(e) => match e.as_db_error() {
                // Another pgpulse instance was quicker.
                Some(db) if *db.code() == SqlState::DUPLICATE_OBJECT => {}
                Some(db) => {
                    if refusals.tables.insert(oid) {
                        tracing::warn!(
                            database,
                            table = %qualified,
                            error = %db.message(),
                            "change feed: cannot create the pgpulse_feed trigger; writes to this \
                             table that bypass pgpulse are only bounded by the cache TTL \
                             (retried every minute)"
                        );
                    } else {
                        tracing::debug!(database, table = %qualified, error = %db.message(),
                            "change feed: trigger still not created");
                    }
                }
                None => return Err(Failure::Lost(e.to_string())),
            },
        }
    }
    Ok(covered)
}

async fn function_exists(client: &Client) -> Result<bool, Failure> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'public' AND p.proname = 'pgpulse_feed_notify')",
            &[],
        )
        .await
        .map_err(classify)?;
    row.try_get(0).map_err(|e| Failure::Lost(e.to_string()))
}

async fn ensure_function(client: &Client) -> Result<(), Failure> {
    if function_exists(client).await? {
        return Ok(());
    }
    match client.batch_execute(&create_function_sql()).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let failure = classify(e);
            // Another instance may have created it meanwhile.
            if matches!(failure, Failure::Refused(_)) && function_exists(client).await? {
                return Ok(());
            }
            Err(failure)
        }
    }
}
