//! Moving the slot's restart point forward while writes pour in.
//!
//! Every `pg_logical_slot_get_changes` call decodes again from the slot's
//! `restart_lsn` (module `feed`, "Cost"), and PostgreSQL moves that point
//! only past a snapshot of running transactions in the WAL. The background
//! writer logs one every 15 s, so under heavy writes each poll decodes up
//! to 15 s of WAL again. PostgreSQL 16 has `pg_log_standby_snapshot()` to
//! log one on demand; PostgreSQL 15 logs one whenever a logical slot is
//! created (`ReplicationSlotReserveWal`), so there a *ticker* creates a
//! temporary slot and drops it again. Measured on 2 cores under pgbench's
//! read/write mix: the feed's backend used 25 µs of CPU per transaction
//! with a tick every second, 39-54 µs without.
//!
//! The ticker runs on a connection of its own (a slot being created waits
//! for the transactions running at that moment to end, bounded here by
//! `statement_timeout`; an error on the feed's connection would drop the
//! feed's slot). Once a second it reads how far the feed's slot's restart
//! point is behind the WAL, and ticks only when that is more than
//! [`TICK_LAG`] and at least two replication slots are free, so it never
//! takes the last slot another feed or a replica may need. Nothing depends
//! on it: a failed tick is logged at debug level and the feed polls on as
//! before.

use std::time::Duration;

use tokio_postgres::Client;

/// `application_name` of the ticker's connection.
pub(crate) const APPLICATION_NAME: &str = "pgpulse feed ticker";
/// How often the ticker looks at the slot.
const EVERY: Duration = Duration::from_secs(1);
/// After a failure (connection, permission), the ticker waits this long.
const AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Restart points further behind the WAL than this are moved.
pub(super) const TICK_LAG: i64 = 1 << 20;
/// Names of the ticker's temporary slots: this prefix and random digits
/// (not `pgpulse_`, the feed's slots).
const TICK_PREFIX: &str = "pgpulsetick_";

/// The slot's lag and whether a tick may take a slot. `$1`: the slot.
const LOOK: &str = "\
    SELECT (SELECT (pg_catalog.pg_current_wal_lsn() - restart_lsn)::int8 \
              FROM pg_catalog.pg_replication_slots WHERE slot_name = $1), \
           pg_catalog.current_setting('max_replication_slots')::int \
             - (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int, \
           pg_catalog.current_setting('server_version_num')::int";

/// The ticker of one feed session; stops when dropped.
pub(super) struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts ticking for the feed's slot `slot` (output plugin `plugin`).
pub(super) fn spawn(
    mut pg: pgpulse_upstream::Upstream,
    slot: String,
    plugin: &'static str,
) -> Ticker {
    pg.config_mut().application_name(APPLICATION_NAME);
    Ticker(tokio::spawn(run(pg, slot, plugin)))
}

async fn run(pg: pgpulse_upstream::Upstream, slot: String, plugin: &'static str) {
    let mut use_function = true;
    loop {
        let client = match pg.connect().await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client
            }
            Err(e) => {
                tracing::debug!(error = %e, "change feed ticker: cannot connect");
                tokio::time::sleep(AFTER_FAILURE).await;
                continue;
            }
        };
        if let Err(e) = client
            .batch_execute(
                "SET statement_timeout = '2s'; SET idle_in_transaction_session_timeout = 0",
            )
            .await
        {
            tracing::debug!(error = %e, "change feed ticker: set-up failed");
            tokio::time::sleep(AFTER_FAILURE).await;
            continue;
        }
        loop {
            tokio::time::sleep(EVERY).await;
            if let Err(e) = tick_if_behind(&client, &slot, plugin, &mut use_function).await {
                tracing::debug!(error = %e, "change feed ticker: tick failed");
                if client.is_closed() {
                    break;
                }
                tokio::time::sleep(AFTER_FAILURE).await;
            }
        }
    }
}

/// One look at the slot, and a tick when it is behind: `Ok(true)` when a
/// snapshot was logged.
async fn tick_if_behind(
    client: &Client,
    slot: &str,
    plugin: &str,
    use_function: &mut bool,
) -> Result<bool, tokio_postgres::Error> {
    let row = client.query_one(LOOK, &[&slot]).await?;
    let lag: Option<i64> = row.try_get(0)?;
    let free: i32 = row.try_get(1)?;
    let version: i32 = row.try_get(2)?;
    if lag.is_none_or(|lag| lag < TICK_LAG) {
        return Ok(false);
    }
    if version >= 160_000 && *use_function {
        match client
            .simple_query("SELECT pg_catalog.pg_log_standby_snapshot()")
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) => {
                // Superuser only unless granted: fall back to a slot.
                tracing::debug!(error = %e,
                    "change feed ticker: pg_log_standby_snapshot() refused, creating slots instead");
                *use_function = false;
            }
        }
    }
    if free < 2 {
        return Ok(false);
    }
    let name = format!("{TICK_PREFIX}{:016x}", rand::random::<u64>());
    // Creating the slot logs the snapshot at once; it may then wait for
    // running transactions (statement_timeout ends that: the snapshot is in
    // the WAL either way, and a temporary slot goes away on error).
    let created = client
        .execute(
            "SELECT 1 FROM pg_catalog.pg_create_logical_replication_slot($1, $2, true)",
            &[&name, &plugin],
        )
        .await;
    match created {
        Ok(_) => {
            client
                .execute("SELECT pg_catalog.pg_drop_replication_slot($1)", &[&name])
                .await?;
            Ok(true)
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => Ok(true),
        Err(e) => Err(e),
    }
}
