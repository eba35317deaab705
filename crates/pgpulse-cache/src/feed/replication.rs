//! Logical decoding through the SQL interface, on an ordinary connection:
//! a temporary slot polled with `pg_logical_slot_get_changes`.
//!
//! Two output plugins:
//! - `test_decoding` (the default): decodes every table of the database,
//!   needs no publication and no superuser, only the REPLICATION attribute.
//! - `pgoutput`, when a publication named [`PUBLICATION`] already exists in
//!   the database: pgpulse decodes what it publishes. pgpulse never creates
//!   it: a publication that publishes UPDATE/DELETE makes PostgreSQL refuse
//!   UPDATE and DELETE on every table it covers that has no replica identity
//!   (no primary key), so `FOR ALL TABLES` would break applications with
//!   such tables. An administrator may create it (`CREATE PUBLICATION
//!   pgpulse_feed FOR ALL TABLES`, superuser in PostgreSQL 15) where every
//!   table has a primary key or `REPLICA IDENTITY FULL`, or where
//!   `test_decoding` (contrib) is not installed.
//!
//! Both polls reduce the changes on the server to distinct (table list or
//! message head) rows, so a transaction writing a million rows costs one row
//! on the wire, not a million.
//!
//! The slot is temporary: PostgreSQL drops it when the session ends *and on
//! any error in the session*, so a dead pgpulse never retains WAL, and the
//! feed treats any error on this connection as a lost feed (reconnect, new
//! slot, database invalidated).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use super::decode::{self, Message};
use super::{Failure, Warnings, classify};

mod setup;
pub(super) use setup::setup;

/// The publication the `pgoutput` decoder reads, when an administrator has
/// created it. pgpulse never creates it (see the module documentation).
pub(crate) const PUBLICATION: &str = "pgpulse_feed";

/// Slot names: this prefix and 16 random hex digits.
const SLOT_PREFIX: &str = "pgpulse_";

/// `test_decoding`, distinct heads of the change lines: everything before
/// the first `": "`, i.e. `table public.t` of `table public.t: UPDATE:
/// id[integer]:1 ...` and `table public.a, public.b` of a TRUNCATE line.
/// `$1`: slot.
///
/// `split_part`, not a regular expression: on pgbench's read/write mix the
/// regular expression that cut out the table list cost about 14 µs of
/// server CPU per change line, six times the decoding itself (psql's
/// `\timing` of `pg_logical_slot_peek_changes` over 8,000 pgbench
/// transactions, 32,000 changes: 66 ms decoding alone, 525 ms with the
/// regular expression, 75-90 ms with `split_part`). A name quoted because it contains `": "` is cut
/// inside its quotes, which leaves an unterminated quoted identifier: the
/// list does not parse ([`decode::test_decoding_head`]) and the database is
/// invalidated, never a wrong table.
///
/// `COMMIT {xid}` lines come too: the transactions decoded, whose
/// visibility `feed/visible.rs` checks.
const POLL_TEST_DECODING: &str = "\
    SELECT DISTINCT split_part(data, ': ', 1) \
    FROM pg_catalog.pg_logical_slot_get_changes($1, $2::text::pg_lsn, NULL, \
         'include-xids', '1', 'skip-empty-xacts', '1') \
    WHERE data LIKE 'table %' OR data LIKE 'COMMIT %'";

/// Like [`POLL_TEST_DECODING`], with the row changes of the tables with
/// keyed reads whole, for keyed invalidation — `INSERT`s of the tables in
/// `$2`, `UPDATE`s and `DELETE`s of those in `$3` (`REPLICA IDENTITY
/// FULL`: without old rows they would only say "the whole table") —
/// unless a table has more than `$4` of them in one poll
/// (then its head only: the whole table is invalidated, and no large
/// transaction's rows are shipped and kept). Used only when `$2` is not
/// empty.
const POLL_TEST_DECODING_ROWS: &str = "\
    WITH c AS MATERIALIZED ( \
        SELECT split_part(data, ': ', 1) AS head, \
               CASE WHEN (split_part(data, ': ', 2) = 'INSERT' \
                          AND split_part(data, ': ', 1) = ANY($2::text[])) \
                      OR (split_part(data, ': ', 2) IN ('UPDATE', 'DELETE') \
                          AND split_part(data, ': ', 1) = ANY($3::text[])) \
                    THEN data END AS line \
        FROM pg_catalog.pg_logical_slot_get_changes($1, $5::text::pg_lsn, NULL, \
             'include-xids', '1', 'skip-empty-xacts', '1') \
        WHERE data LIKE 'table %' OR data LIKE 'COMMIT %'), \
    big AS (SELECT head FROM c WHERE line IS NOT NULL GROUP BY head HAVING count(*) > $4) \
    SELECT DISTINCT CASE WHEN line IS NOT NULL AND head NOT IN (SELECT head FROM big) \
                         THEN line ELSE head END \
    FROM c";

/// `pgoutput` (protocol 1), distinct messages, row changes cut to their tag
/// and relation id, Begin to its tag and xid (`feed/visible.rs`), commits,
/// origins, types and logical messages left out. `$1`: slot, `$2`:
/// publication.
const POLL_PGOUTPUT: &str = "\
    SELECT DISTINCT CASE WHEN substring(data FROM 1 FOR 1) \
                              IN ('\\x49'::bytea, '\\x55'::bytea, '\\x44'::bytea) \
                         THEN substring(data FROM 1 FOR 5) \
                         WHEN substring(data FROM 1 FOR 1) = '\\x42'::bytea \
                         THEN '\\x42'::bytea || substring(data FROM 18 FOR 4) ELSE data END \
    FROM pg_catalog.pg_logical_slot_get_binary_changes($1, $3::text::pg_lsn, NULL, \
         'proto_version', '1', 'publication_names', $2) \
    WHERE substring(data FROM 1 FOR 1) NOT IN \
          ('\\x43'::bytea, '\\x4f'::bytea, '\\x59'::bytea, '\\x4d'::bytea)";

/// Settles the WAL before a poll that finds WAL inserted but not yet
/// flushed: reads the WAL insert position, then commits a transaction that
/// wrote WAL — an empty transactional logical message, which no poll
/// returns (they keep change lines and leave messages out) — so that its
/// commit flushes the WAL past that position. The poll then decodes up to
/// exactly that position (`upto_lsn`), which is a record boundary.
///
/// Decoding reads flushed WAL only, and a record that straddles the
/// flushed position is waited for, in 1 ms sleeps, until something
/// flushes the rest. With asynchronous commits the WAL writer flushes
/// whole pages every `wal_writer_delay` (200 ms), so the flushed position
/// is usually inside a record, and polls that did not settle took 100-200
/// ms under a few hundred writes a second, nearly all of it waiting
/// (10 ms polls at `wal_writer_delay = 10ms`). The feed's back-off then
/// stretched the time between polls, and writes that bypassed pgpulse
/// were read stale past the 1 s bound in CI. Settled and bounded, the
/// same polls take a few milliseconds.
///
/// It also resolves suspensions (`feed/pending.rs`) in one poll: they need
/// the feed to have decoded up to an insert position read after them.
/// (A transaction with only an xid, `txid_current()`, writes no WAL before
/// its commit and so commits asynchronously: no flush.) `local`: the
/// flush on this server is what decoding needs, not a synchronous
/// standby's.
const SETTLE: &str = "BEGIN READ WRITE; \
    SET LOCAL synchronous_commit = local; \
    SELECT pg_catalog.pg_current_wal_insert_lsn()::text, \
           pg_catalog.pg_logical_emit_message(true, 'pgpulse.settle', ''); \
    COMMIT";

/// The output plugin in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoder {
    /// contrib `test_decoding`, every table.
    TestDecoding,
    /// `pgoutput` with publication [`PUBLICATION`].
    PgOutput,
}

impl Decoder {
    pub(super) fn plugin(self) -> &'static str {
        match self {
            Decoder::TestDecoding => "test_decoding",
            Decoder::PgOutput => "pgoutput",
        }
    }
}

/// Tables a poll saw written.
#[derive(Debug, Default)]
pub(super) struct Touched {
    /// Relation names (`pg_class.relname`).
    pub names: BTreeSet<String>,
    /// Something could not be attributed: invalidate the whole database.
    pub everything: bool,
    /// Row changes of keyed tables: head → changes (`INSERT: ...`,
    /// `UPDATE: ...`, `DELETE: ...`).
    pub rows: std::collections::BTreeMap<String, Vec<String>>,
    /// `pg_current_wal_insert_lsn()` when the poll began: everything
    /// committed before is decoded once `decoded_upto` reaches it.
    pub insert_lsn: Option<u64>,
    /// The transactions decoded (their xids).
    pub xids: Vec<u32>,
    /// A snapshot read before decoding (`feed/visible.rs`).
    pub snapshot: Option<super::visible::Snap>,
    /// How long the poll's steps took: reading the positions, settling,
    /// decoding (for the feed's slow-poll warning).
    pub steps: [Duration; 3],
}

/// A temporary logical replication slot of the feed's connection.
#[derive(Debug)]
pub(super) struct Slot {
    /// Its name.
    pub name: String,
    /// Its output plugin.
    pub decoder: Decoder,
    poll: Statement,
    /// `test_decoding` with rows ([`POLL_TEST_DECODING_ROWS`]).
    poll_rows: Option<Statement>,
    /// `pg_current_wal_flush_lsn()`.
    flushed: Statement,
    /// Where the last decoding call stopped: the flushed position read
    /// before it, or the settled one. Decoding reads flushed WAL only, so
    /// while the flushed position stays there, there is nothing to decode
    /// (and no call, no decoding work, no log lines).
    last_flush: Option<String>,
    /// pgoutput: relation id → name, from Relation messages and pg_class.
    relations: HashMap<u32, String>,
    /// The feed's role may run [`SETTLE`] (checked once: an error on the
    /// feed's connection would drop its temporary slot).
    may_settle: bool,
    /// The slot's consistent point: every transaction committed after it
    /// is decoded, none committed before.
    pub start: u64,
    /// Whether the slot sees every write to a logged table (test_decoding,
    /// or a publication of every table and action): only then may its
    /// progress be recorded as coverage (`feed.rs`, "Coverage").
    pub complete: bool,
}

/// A `pg_lsn` in its text form (`16/B374D848`) as a number.
pub(super) fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

impl Slot {
    /// Every transaction committed up to this WAL position has been
    /// decoded and handed to the caller (`None` before the first poll that
    /// decoded anything).
    pub(super) fn decoded_upto(&self) -> Option<u64> {
        self.last_flush.as_deref().and_then(parse_lsn)
    }

    /// Consumes the changes decoded since the last poll. WAL inserted but
    /// not flushed is settled first ([`SETTLE`]), and decoding stops at the
    /// settled position, so that the call never waits for the WAL writer.
    pub(super) async fn poll(
        &mut self,
        client: &Client,
        keyed_heads: &[(String, bool)],
    ) -> Result<Touched, tokio_postgres::Error> {
        let mut touched = Touched::default();
        let began = std::time::Instant::now();
        let positions = client.query_one(&self.flushed, &[]).await?;
        touched.steps[0] = began.elapsed();
        let flush: String = positions.try_get(0)?;
        let insert = parse_lsn(positions.try_get(1)?);
        touched.snapshot = super::visible::Snap::parse(positions.try_get(2)?);
        // Where this poll's decoding stops: the flushed position, or the
        // settled one when WAL lies beyond the flushed position. `None`
        // (no limit) only where settling is not allowed.
        let upto = match (parse_lsn(&flush), insert) {
            (Some(f), Some(i)) if i > f => self.settle(client).await?,
            _ => Some(flush.clone()),
        };
        touched.steps[1] = began.elapsed() - touched.steps[0];
        touched.insert_lsn = upto.as_deref().and_then(parse_lsn).or(insert);
        let decoded = upto.clone().unwrap_or(flush);
        if self.last_flush.as_deref() == Some(decoded.as_str()) {
            return Ok(touched);
        }
        let upto = upto.as_deref();
        match self.decoder {
            Decoder::TestDecoding => {
                let rows = match &self.poll_rows {
                    Some(with_rows) if !keyed_heads.is_empty() => {
                        let most = crate::generations::LOG_ROWS as i64;
                        let all: Vec<&str> = keyed_heads.iter().map(|(h, _)| h.as_str()).collect();
                        let full: Vec<&str> = keyed_heads
                            .iter()
                            .filter(|(_, old_rows)| *old_rows)
                            .map(|(h, _)| h.as_str())
                            .collect();
                        client
                            .query(with_rows, &[&self.name, &all, &full, &most, &upto])
                            .await?
                    }
                    _ => client.query(&self.poll, &[&self.name, &upto]).await?,
                };
                for row in rows {
                    let head: &str = row.try_get(0)?;
                    if let Some(xid) = head.strip_prefix("COMMIT ") {
                        match xid.parse() {
                            Ok(xid) => touched.xids.push(xid),
                            Err(_) => touched.everything = true,
                        }
                        continue;
                    }
                    if let Some((table, change)) = head.split_once(": ")
                        && keyed_heads.iter().any(|(h, _)| h == table)
                        && !change.is_empty()
                    {
                        touched
                            .rows
                            .entry(table.to_owned())
                            .or_default()
                            .push(change.to_owned());
                        continue;
                    }
                    match decode::test_decoding_head(head) {
                        Some(names) => touched.names.extend(names),
                        None => touched.everything = true,
                    }
                }
            }
            Decoder::PgOutput => {
                let rows = client
                    .query(&self.poll, &[&self.name, &PUBLICATION, &upto])
                    .await?;
                let mut messages = Vec::with_capacity(rows.len());
                for row in &rows {
                    messages.push(decode::pgoutput(row.try_get::<_, &[u8]>(0)?));
                }
                self.attribute(client, messages, &mut touched).await?;
            }
        }
        touched.steps[2] = began.elapsed() - touched.steps[0] - touched.steps[1];
        // Everything committed up to `decoded` (read before the call, a
        // record boundary when settled) has been decoded.
        self.last_flush = Some(decoded);
        Ok(touched)
    }

    /// Runs [`SETTLE`]: the insert position it read, now flushed (`None`
    /// where the feed's role may not). An error here has dropped the slot
    /// with the session's temporary slots, like any error of a poll.
    async fn settle(&mut self, client: &Client) -> Result<Option<String>, tokio_postgres::Error> {
        if !self.may_settle {
            return Ok(None);
        }
        let messages = client.simple_query(SETTLE).await?;
        Ok(messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }))
    }

    /// pgoutput: turns messages into table names. Rows come back without
    /// their order (DISTINCT), so Relation messages are read first; a
    /// relation renamed within one poll invalidates every name it had.
    async fn attribute(
        &mut self,
        client: &Client,
        messages: Vec<Option<Message>>,
        touched: &mut Touched,
    ) -> Result<(), tokio_postgres::Error> {
        if self.relations.len() > 100_000 {
            self.relations.clear();
        }
        let mut named: HashMap<u32, Vec<String>> = HashMap::new();
        for m in &messages {
            if let Some(Message::Relation { relid, name }) = m {
                named.entry(*relid).or_default().push(name.clone());
                self.relations.insert(*relid, name.clone());
            }
        }
        let mut unknown = BTreeSet::new();
        for m in messages {
            let relids = match m {
                None => {
                    touched.everything = true;
                    continue;
                }
                Some(Message::Change(relid)) => vec![relid],
                Some(Message::Truncate(relids)) => relids,
                Some(Message::Begin(xid)) => {
                    touched.xids.push(xid);
                    continue;
                }
                Some(Message::Relation { .. } | Message::Ignored) => continue,
            };
            for relid in relids {
                if let Some(names) = named.get(&relid) {
                    touched.names.extend(names.iter().cloned());
                } else if let Some(name) = self.relations.get(&relid) {
                    touched.names.insert(name.clone());
                } else {
                    unknown.insert(relid);
                }
            }
        }
        for relid in unknown {
            let row = client
                .query_opt(
                    "SELECT relname::text FROM pg_catalog.pg_class WHERE oid = $1",
                    &[&relid],
                )
                .await?;
            match row {
                Some(row) => {
                    let name: String = row.try_get(0)?;
                    self.relations.insert(relid, name.clone());
                    touched.names.insert(name);
                }
                // Dropped since: nothing to name, be safe.
                None => touched.everything = true,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connect(config: &tokio_postgres::Config) -> Client {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    }

    /// A poll decodes everything committed before it began, up to the
    /// insert position it reports (so it resolves every suspension made
    /// before it at once), and never waits for the WAL writer: it settles
    /// the WAL that lies beyond the flushed position (an open
    /// transaction's, an asynchronous commit's) and stops decoding there.
    /// On a cluster of its own whose WAL writer flushes every 10 s, a poll
    /// that read up to the flushed position missed the asynchronous
    /// commit, and one that read a record straddling it waited seconds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_decodes_up_to_its_insert_position_without_waiting() {
        let pg = pgpulse_testkit::PgCluster::start().expect("cluster");
        if !pg.is_external() {
            for sql in [
                "ALTER SYSTEM SET wal_writer_delay = '10s'",
                "SELECT pg_reload_conf()",
            ] {
                pg.psql("postgres", sql).expect("wal_writer_delay");
            }
        }
        let db = pg.fresh_database("feed_settle").expect("database");
        pg.psql(&db, "CREATE TABLE s (id int)").expect("schema");
        let config: tokio_postgres::Config = pg.url_for(&db).parse().expect("url");
        let client = connect(&config).await;
        let mut slot = setup(&client, &db, &mut Warnings::default())
            .await
            .expect("slot");
        let (open, lazy) = (connect(&config).await, connect(&config).await);
        open.batch_execute("BEGIN; INSERT INTO s VALUES (1)")
            .await
            .unwrap();
        for round in 0..10 {
            lazy.batch_execute("SET synchronous_commit = off; INSERT INTO s VALUES (2)")
                .await
                .unwrap();
            // More WAL after the commit, none of it flushed.
            open.batch_execute("INSERT INTO s SELECT g FROM generate_series(1, 300) g")
                .await
                .unwrap();
            let touched = tokio::time::timeout(Duration::from_secs(5), slot.poll(&client, &[]))
                .await
                .unwrap_or_else(|_| panic!("round {round}: the poll waited for the WAL writer"))
                .unwrap();
            let (insert, decoded) = (touched.insert_lsn.unwrap(), slot.decoded_upto().unwrap());
            assert!(
                insert <= decoded,
                "round {round}: insert {insert:x}, decoded {decoded:x}"
            );
            assert!(touched.names.contains("s"), "round {round}: {touched:?}");
        }
        assert!(slot.may_settle);
    }

    /// Where the feed's role may not settle (here: logical messages revoked
    /// from it), the feed polls as before. Trying anyway failed the poll's
    /// statement, and any error drops the session's temporary slot: the
    /// first version of settling lost the feed this way (this test).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_that_may_not_settle_polls_as_before() {
        let pg = pgpulse_testkit::PgCluster::shared();
        let db = pg.fresh_database("feed_settle_refused").expect("database");
        let role = format!("r_{db}");
        pg.psql(
            &db,
            &format!(
                "CREATE ROLE {role} LOGIN REPLICATION PASSWORD 'feed-test'; \
                 REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) \
                   FROM PUBLIC; \
                 REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, bytea) \
                   FROM PUBLIC; \
                 CREATE TABLE s (id int); GRANT ALL ON s TO {role}"
            ),
        )
        .expect("schema");
        let mut config: tokio_postgres::Config = pg.url_for(&db).parse().expect("url");
        config.user(&role).password("feed-test");
        let client = connect(&config).await;
        let mut slot = setup(&client, &db, &mut Warnings::default())
            .await
            .expect("slot");
        let writer = connect(&config).await;
        for round in 0..2 {
            writer
                .batch_execute("INSERT INTO s VALUES (1)")
                .await
                .unwrap();
            // The testkit's server commits asynchronously: the write is
            // decodable once the WAL writer has flushed it.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let touched = slot
                    .poll(&client, &[])
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
                if touched.names.contains("s") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round}: the write was never decoded"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(!slot.may_settle);
        }
        let idle = client.simple_query("SELECT 1").await.expect("usable");
        assert!(!idle.is_empty());
    }

    /// A poll returns the xids of the transactions it decoded, and a
    /// snapshot read before decoding that says whether they were visible
    /// then (`feed/visible.rs`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_names_the_transactions_it_decoded_and_whether_they_were_visible() {
        for decoder in [Decoder::TestDecoding, Decoder::PgOutput] {
            decoded_xids(decoder).await;
        }
    }

    async fn decoded_xids(decoder: Decoder) {
        let pg = pgpulse_testkit::PgCluster::shared();
        let db = pg.fresh_database("feed_xids").expect("database");
        let publication = match decoder {
            Decoder::PgOutput => format!("CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES;"),
            Decoder::TestDecoding => String::new(),
        };
        pg.psql(&db, &format!("CREATE TABLE s (id int); {publication}"))
            .expect("schema");
        let config: tokio_postgres::Config = pg.url_for(&db).parse().expect("url");
        let client = connect(&config).await;
        let mut slot = setup(&client, &db, &mut Warnings::default())
            .await
            .expect("slot");
        assert_eq!(slot.decoder, decoder);
        let writer = connect(&config).await;
        writer
            .batch_execute("BEGIN; INSERT INTO s VALUES (1)")
            .await
            .unwrap();
        let full: i64 = writer
            .query_one("SELECT txid_current()", &[])
            .await
            .unwrap()
            .get(0);
        let xid = u32::try_from(full & 0xFFFF_FFFF).unwrap();
        let during = slot.poll(&client, &[]).await.unwrap();
        assert!(during.snapshot.expect("a snapshot").unfinished(xid));
        assert!(!during.xids.contains(&xid));
        writer.batch_execute("COMMIT").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let touched = slot.poll(&client, &[]).await.unwrap();
            if touched.names.contains("s") {
                assert_eq!(touched.xids, vec![xid], "{:?}", slot.decoder);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never decoded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = slot.poll(&client, &[]).await.unwrap();
        assert!(!after.snapshot.expect("a snapshot").unfinished(xid));
    }

    #[test]
    fn lsns_parse_into_ordered_numbers() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B_3748));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        // The high part counts for more than any low part.
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        for bad in ["", "0", "/1", "1/", "G/0", "0/100000000", "1/2/3"] {
            assert_eq!(parse_lsn(bad), None, "{bad:?}");
        }
    }
}
