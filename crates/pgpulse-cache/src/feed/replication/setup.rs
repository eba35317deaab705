//! Setting a slot up: checks that logical decoding is possible here,
//! prepares the polls and creates the temporary slot (the polling itself
//! is in `replication.rs`).

use super::*;

/// Checks that logical decoding is possible and creates the slot.
/// `Failure::Refused` when it is not possible (wal_level, privilege,
/// plugin missing, no free slot).
pub(in crate::feed) async fn setup(
    client: &Client,
    database: &str,
    warnings: &mut Warnings,
) -> Result<Slot, Failure> {
    let wal_level: String = client
        .query_one("SELECT pg_catalog.current_setting('wal_level')", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(classify)?;
    if wal_level != "logical" {
        return Err(Failure::Refused(format!(
            "wal_level is '{wal_level}' (logical decoding needs wal_level = logical)"
        )));
    }
    let row = client
        .query_one(
            "SELECT rolsuper, rolreplication, \
                    pg_catalog.current_setting('server_version_num')::int \
             FROM pg_catalog.pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(classify)?;
    let (superuser, replication, version): (bool, bool, i32) =
        match (row.try_get(0), row.try_get(1), row.try_get(2)) {
            (Ok(s), Ok(r), Ok(v)) => (s, r, v),
            _ => return Err(Failure::Lost("unexpected pg_roles row".into())),
        };
    if !superuser && !replication {
        return Err(Failure::Refused(
            "the role has neither SUPERUSER nor REPLICATION".into(),
        ));
    }
    quiet(client, database, superuser, version, warnings).await?;
    let publication: Option<bool> = client
        .query_opt(
            "SELECT puballtables AND pubinsert AND pubupdate AND pubdelete AND pubtruncate \
             FROM pg_catalog.pg_publication WHERE pubname = $1",
            &[&PUBLICATION],
        )
        .await
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .map_err(classify)?;
    let complete = publication.unwrap_or(true);
    let decoder = match publication {
        None => Decoder::TestDecoding,
        Some(complete) => {
            if !complete && warnings.first("partial publication") {
                tracing::warn!(
                    database,
                    publication = PUBLICATION,
                    "change feed: the publication does not publish every table and every \
                     action (INSERT, UPDATE, DELETE, TRUNCATE); writes it leaves out that \
                     bypass pgpulse are only bounded by the cache TTL"
                );
            }
            Decoder::PgOutput
        }
    };
    let name = format!("{SLOT_PREFIX}{:016x}", rand::random::<u64>());
    let start = create_slot(client, database, &name, decoder).await?;
    // From here on the slot exists: any error drops it (temporary slots are
    // released on error), so every failure is a lost feed.
    let lost = |e: tokio_postgres::Error| Failure::Lost(e.to_string());
    let poll = client
        .prepare(match decoder {
            Decoder::TestDecoding => POLL_TEST_DECODING,
            Decoder::PgOutput => POLL_PGOUTPUT,
        })
        .await
        .map_err(lost)?;
    let poll_rows = match decoder {
        Decoder::TestDecoding => Some(
            client
                .prepare(POLL_TEST_DECODING_ROWS)
                .await
                .map_err(lost)?,
        ),
        Decoder::PgOutput => None,
    };
    let flushed = client
        .prepare(
            "SELECT pg_catalog.pg_current_wal_flush_lsn()::text, \
                    pg_catalog.pg_current_wal_insert_lsn()::text, \
                    pg_catalog.txid_current_snapshot()::text",
        )
        .await
        .map_err(lost)?;
    // Any error on this connection drops the temporary slot (the server
    // cleans up temporary slots on error), so settling is not tried where
    // it would be refused.
    let may_settle: bool = client
        .query_one(
            "SELECT pg_catalog.has_function_privilege( \
                 'pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(lost)?;
    if !may_settle && warnings.first("settle") {
        tracing::warn!(
            database,
            "change feed: the feed's role may not run pg_logical_emit_message(), so writes \
             through pgpulse whose rows come from the feed hold their table's keyed reads \
             until the WAL writer flushes (up to wal_writer_delay); GRANT EXECUTE ON \
             FUNCTION pg_logical_emit_message(boolean, text, text) to it to avoid that"
        );
    }
    Ok(Slot {
        name,
        decoder,
        poll,
        poll_rows,
        flushed,
        last_flush: None,
        relations: HashMap::new(),
        may_settle,
        start,
        complete,
    })
}

/// PostgreSQL logs two LOG lines ("starting logical decoding for slot",
/// "logical decoding found consistent point") on every
/// `pg_logical_slot_get_changes` call: with a 100 ms poll, twenty lines a
/// second. This session's `log_min_messages` goes to `fatal` (LOG ranks
/// above ERROR in the server log, so `warning` would not do; the session's
/// own errors still reach pgpulse, which logs them) where the role may set
/// it: superuser, or PostgreSQL 15+ `GRANT SET ON PARAMETER
/// log_min_messages`; otherwise one warning here. Runs before the slot
/// exists: an error must not drop it.
async fn quiet(
    client: &Client,
    database: &str,
    superuser: bool,
    version: i32,
    warnings: &mut Warnings,
) -> Result<(), Failure> {
    let allowed = superuser
        || (version >= 150_000
            && client
                .query_one(
                    "SELECT pg_catalog.has_parameter_privilege('log_min_messages', 'SET')",
                    &[],
                )
                .await
                .and_then(|r| r.try_get::<_, bool>(0))
                .map_err(classify)?);
    if allowed {
        client
            .batch_execute("SET log_min_messages = fatal")
            .await
            .map_err(classify)?;
    } else if warnings.first("log") {
        tracing::warn!(
            database,
            "change feed: PostgreSQL logs two LOG lines per poll of the replication slot \
             (while the WAL moves); to silence them, GRANT SET ON PARAMETER \
             log_min_messages to pgpulse's role (PostgreSQL 15+)"
        );
    }
    Ok(())
}

async fn create_slot(
    client: &Client,
    database: &str,
    name: &str,
    decoder: Decoder,
) -> Result<u64, Failure> {
    // Creating a logical slot waits for every transaction running in the
    // cluster to end (it needs a consistent snapshot): say so if it takes a
    // while rather than look stuck.
    let plugin = decoder.plugin();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&name, &plugin];
    let create = client.query_one(
        "SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, $2, true)",
        &params,
    );
    tokio::pin!(create);
    let created = tokio::select! {
        r = &mut create => r,
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!(
                database,
                "change feed: creating the replication slot waits for transactions that \
                 were already running to end"
            );
            create.await
        }
    };
    match created {
        Ok(row) => row
            .try_get::<_, String>(0)
            .ok()
            .as_deref()
            .and_then(parse_lsn)
            .ok_or_else(|| Failure::Lost("the new slot's LSN is unreadable".into())),
        Err(e) => match classify(e) {
            Failure::Refused(why) if decoder == Decoder::TestDecoding => {
                Err(Failure::Refused(format!(
                    "{why} (the test_decoding plugin is part of contrib; alternatively create \
                     publication {PUBLICATION} for pgoutput)"
                )))
            }
            other => Err(other),
        },
    }
}
