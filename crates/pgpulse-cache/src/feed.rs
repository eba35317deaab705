//! The change feed: writes that bypass pgpulse (other clients, triggers,
//! functions, cascades) invalidate the cache within about one poll interval
//! (ARCHITECTURE.md, "Cache correctness rules", rule 5). One task per
//! database, started by the catalog loader once the catalog is read.
//!
//! # Methods
//! - **Logical decoding** ([`FeedMode::Replication`], Auto's first choice):
//!   a temporary slot on an ordinary connection, polled every `feed_poll`
//!   (module `replication`). Needs `wal_level = logical` and a role with
//!   REPLICATION (or superuser). Only committed transactions are decoded: a
//!   rolled-back write invalidates nothing. Unlogged tables are not in the
//!   WAL, so they get the triggers below.
//! - **Triggers + NOTIFY** ([`FeedMode::Triggers`], Auto's fallback when
//!   decoding is refused): a statement-level trigger on every user table
//!   (module `triggers`), re-installed every minute for new tables. Needs
//!   ownership of the tables (and CREATE on schema `public`).
//! - **Off**: when neither can be set up (one warning), or configured:
//!   only the TTL bounds staleness after writes pgpulse cannot see.
//!
//! # Delay
//! Decoding: up to one poll interval plus the query. A poll settles WAL
//! inserted but not flushed (asynchronous commits, `synchronous_commit =
//! off`) and decodes up to the settled position, so it neither misses
//! those commits nor waits for the WAL writer (`replication::SETTLE`).
//! Measured in the stale-read test on 2 cores with two CPU hogs: polls of
//! 5 ms at the median, 12 ms at p90; from the start of one poll to the end
//! of the next, 114 ms at the median, 150 ms at p90, 517 ms at most.
//! A poll waits at least four times as long as the previous one took
//! (`next_poll`), but the previous poll, the wait and the next together
//! stay within [`WINDOW`] (600 ms), the feed's share of the 1 s bound;
//! polls slower than half of that run back to back. Triggers: a few
//! milliseconds after the commit.
//!
//! # Cost (measured 2026-12-07, pgbench's read/write mix, 2 cores)
//! Decoding is the cache's largest cost on a write-heavy workload. At
//! about 2,500 transactions a second the polling session's backend used
//! 69-75 µs of CPU per pgbench transaction (100 µs before the poll cut
//! lines with `split_part` instead of a regular expression) and was busy
//! about half of the wall time. Most of it is not decoding the new WAL
//! (about 8 µs per transaction, measured with `pg_logical_slot_peek_changes`
//! over 8,000 transactions) but decoding again: every
//! `pg_logical_slot_get_changes` call starts at the slot's `restart_lsn`,
//! which only moves when the server logs a snapshot of running transactions
//! (every 15 s, by the background writer; 7 to 26 MB of WAL behind in that
//! run). Polling less often divides the re-reading (a poll every 0.25 s:
//! busy 47% of the time; every 0.5 s: 31%) at the price of staleness after
//! writes that bypass pgpulse (`cache.feed_poll`); the back-off under
//! "Delay" does that only when polls are expensive.
//! Streaming the slot (`START_REPLICATION`: each record decoded once) was
//! built and measured: walsender 47 µs + pgpulse 22 µs per transaction, no
//! gain, not kept. What does cut it: the *ticker* (module `snapshot`) makes
//! the server log that snapshot whenever the slot is 1 MiB behind (27-31 µs
//! per transaction in all at ~2,100 TPS, 39-54 µs without).
//!
//! # Gaps and losses
//! Whenever the feed (re)starts, and whenever its connection is lost or a
//! reconnection attempt fails (every 100 ms doubling to 5 s), everything
//! cached for the database is invalidated: writes in between may have been
//! missed. Entries filled while the feed is down are thus dropped within
//! 5 s of being filled.
//!
//! # Coverage: several instances and the Redis L2
//! A feed's start invalidation must reach Redis too (another instance may
//! have filled L2 entries from before a write nobody decoded), and that
//! empties the database's L2 for every instance: with it, every instance
//! start or feed reconnection threw away what the others had cached. So a
//! decoding feed records its progress in Redis: after a poll, once Redis
//! has confirmed the invalidations of everything it decoded, it records
//! "every change committed up to LSN L is invalidated in Redis"
//! (`pgpulse:{ns}:c:{database}`, fields `n`, a record number, and `lsn`).
//! A starting feed reads the record number just before creating its slot,
//! then waits up to [`COVERAGE_WAIT`](coverage::COVERAGE_WAIT) for a *newer* record with an LSN at
//! or past its slot's consistent point: every change committed before that point
//! was then invalidated in Redis by a feed that is running now, and every
//! later one is decoded by this feed, so it invalidates only its own L1.
//! Otherwise (no other feed, Redis down or slow, triggers mode, a partial
//! publication, unlogged tables without triggers) it invalidates the
//! database everywhere, as before. Only records newer than the slot count:
//! one from before a restore or a rollback of the server could claim LSNs
//! of a history that is gone, while a feed polling now decodes the
//! server's current history. (A claim is recorded right after the poll
//! that proves it, within the Redis operation timeout, 250 ms: a server
//! cannot be stopped, restored and restarted, and a slot made on it, in
//! between.) Each claim holds by induction: a feed records only after its
//! own start was either a database-wide invalidation or covered this way.
//! The writer of the claim need not stay alive: what it claims was done.
//!
//! # Not seen
//! DDL (ALTER, DROP, CREATE, RENAME; schema changes through pgpulse reload
//! the catalog, others are picked up by the periodic catalog refresh), tables
//! owned by an extension (triggers mode), tables the feed's role may not put
//! a trigger on (triggers mode, one warning each), and in pgoutput mode
//! whatever the publication leaves out.

mod coverage;
mod decode;
mod failure;
mod pending;
mod replication;
mod schedule;
mod snapshot;
mod triggers;
mod unlogged;
mod visible;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use crate::config::FeedMode;
use crate::invalidator::Invalidator;

use coverage::Claims;
pub(crate) use coverage::Hold;
/// The relation names of a `test_decoding` head (`table public.t`).
pub(crate) fn head_names(head: &str) -> Option<Vec<String>> {
    decode::test_decoding_head(head)
}
use failure::{Failure, Warnings, classify};
use replication::{Decoder, Slot};
use schedule::{WAKE_GAP, WINDOW, next_poll, resolve_soon};
use triggers::Scope;

/// The NOTIFY channel of the triggers.
pub(crate) const CHANNEL: &str = "pgpulse_feed";
/// `application_name` of the feed's connections (to find them in
/// `pg_stat_activity`).
pub(crate) const APPLICATION_NAME: &str = "pgpulse feed";

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A session that ran this long resets the reconnection backoff.
const STABLE: Duration = Duration::from_secs(10);
/// How often triggers are installed on tables that lack them.
const REINSTALL: Duration = Duration::from_secs(60);
/// Starts the change feed of one database.
pub(crate) fn spawn(
    pg: pgpulse_upstream::Upstream,
    database: Arc<str>,
    mode: FeedMode,
    poll: Duration,
    invalidator: Invalidator,
    hold: Hold,
) -> tokio::task::JoinHandle<()> {
    let mut pg = pg;
    pg.config_mut().application_name(APPLICATION_NAME);
    if pg.config().get_connect_timeout().is_none() {
        pg.config_mut().connect_timeout(Duration::from_secs(10));
    }
    // A dead server or network must end the session even while a poll is
    // waiting for its reply.
    pg.config_mut()
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(30));
    let feed = Feed {
        pg,
        database,
        mode,
        poll: poll.max(Duration::from_millis(1)),
        invalidator,
        warnings: Warnings::default(),
        refusals: triggers::Refusals::default(),
        unlogged_uncovered: false,
        claims: Claims::default(),
        hold: Some(hold),
    };
    tokio::spawn(feed.run())
}

/// A connection whose notifications on [`CHANNEL`] arrive on `notes`; the
/// channel closes when the connection ends.
struct Conn {
    client: tokio_postgres::Client,
    notes: mpsc::UnboundedReceiver<String>,
}

async fn connect(pg: &pgpulse_upstream::Upstream) -> Result<Conn, tokio_postgres::Error> {
    let (client, mut connection) = pg.connect().await?;
    let (tx, notes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                    let _ = tx.send(n.payload().to_owned());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "change feed: connection ended");
                    break;
                }
            }
        }
    });
    Ok(Conn { client, notes })
}

/// How the feed of a session works.
enum Method {
    /// Logical decoding (plus triggers on unlogged tables).
    Decoding(Slot),
    /// Triggers + NOTIFY on every table.
    Triggers,
}

impl Method {
    fn describe(&self) -> String {
        match self {
            Method::Decoding(slot) => format!(
                "logical decoding ({}, slot {})",
                match slot.decoder {
                    Decoder::TestDecoding => "test_decoding",
                    Decoder::PgOutput => "pgoutput",
                },
                slot.name
            ),
            Method::Triggers => "triggers + NOTIFY".to_owned(),
        }
    }
}

/// How a session ended.
enum End {
    /// The cache is gone.
    Exit,
    /// No method can be set up: the feed is off.
    Off(String),
    /// Connection lost or a step failed; `ran`: how long it worked.
    Lost { error: String, ran: Duration },
}

struct Feed {
    pg: pgpulse_upstream::Upstream,
    database: Arc<str>,
    mode: FeedMode,
    poll: Duration,
    invalidator: Invalidator,
    warnings: Warnings,
    refusals: triggers::Refusals,
    /// Decoding mode: some unlogged table has no trigger (its writes are
    /// not in the WAL), so the slot's progress is not coverage.
    unlogged_uncovered: bool,
    /// This session's coverage claims waiting for Redis.
    claims: Claims,
    /// The first session's hold, taken before the catalog was installed.
    hold: Option<Hold>,
}

impl Feed {
    async fn run(mut self) {
        let database = self.database.clone();
        if self.mode == FeedMode::Off {
            tracing::debug!(database = %database, "change feed off (configured): TTL only");
            return;
        }
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        loop {
            if !self.invalidator.alive() {
                return;
            }
            match self.session().await {
                End::Exit => return,
                End::Off(why) => {
                    tracing::warn!(
                        database = %database,
                        reason = %why,
                        "change feed off: writes that bypass pgpulse are only bounded by the \
                         cache TTL"
                    );
                    return;
                }
                End::Lost { error, ran } => {
                    // Changes may have been missed, and entries filled from
                    // now on until the feed is back would not be invalidated.
                    self.invalidate_database();
                    if ran >= STABLE {
                        backoff = BACKOFF_MIN;
                    }
                    if failing {
                        tracing::debug!(database = %database, error = %error, "change feed: still down");
                    } else {
                        tracing::warn!(
                            database = %database,
                            error = %error,
                            "change feed lost: cached results of this database invalidated; \
                             reconnecting"
                        );
                    }
                    failing = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
    }

    /// Connects, sets a method up, serves until the connection fails.
    async fn session(&mut self) -> End {
        let lost = |error: String| End::Lost {
            error,
            ran: Duration::ZERO,
        };
        // The last coverage record before this feed's slot exists: only a
        // newer one can cover the time before it (module doc, "Coverage").
        let hold = match self.hold.take() {
            Some(h) => h,
            None => Hold::new(self.invalidator.clone(), self.database.clone()),
        };
        let seen = self.coverage_seen().await;
        let mut conn = match connect(&self.pg).await {
            Ok(c) => c,
            Err(e) => return lost(e.to_string()),
        };
        let mut method = match self.establish(&conn).await {
            Ok(m) => m,
            Err(Failure::Lost(e)) => return lost(e),
            Err(Failure::Refused(why)) => return End::Off(why),
        };
        // Anything written before the feed existed is unknown, unless
        // another feed provably invalidated it in Redis (module doc,
        // "Coverage"); this instance's L1 is invalidated either way.
        self.claims = Claims::default();
        let covered = match (&method, seen) {
            (Method::Decoding(slot), Some(seen)) if slot.complete && !self.unlogged_uncovered => {
                self.covered_by_others(seen, slot.start).await
            }
            _ => false,
        };
        if covered {
            self.invalidator.database(&self.database);
            self.invalidator.l2_note_covered_start();
            tracing::debug!(database = %self.database,
                "change feed: another instance's feed covers the time before this one; \
                 Redis entries kept");
        } else {
            self.invalidate_database();
        }
        // The invalidation, if any, is queued: it keeps the L2 unread until
        // Redis confirms it.
        drop(hold);
        tracing::info!(
            database = %self.database,
            method = %method.describe(),
            "change feed ready"
        );
        let started = Instant::now();
        match self.serve(&mut conn, &mut method).await {
            None => End::Exit,
            Some(error) => End::Lost {
                error,
                ran: started.elapsed(),
            },
        }
    }

    async fn establish(&mut self, conn: &Conn) -> Result<Method, Failure> {
        // Role defaults must not cut a long poll short. LISTEN first: no
        // notification sent once a trigger exists is missed.
        conn.client
            .batch_execute(&format!(
                "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; \
                 LISTEN {CHANNEL}"
            ))
            .await
            .map_err(classify)?;
        let decoding = match self.mode {
            FeedMode::Replication | FeedMode::Auto => {
                replication::setup(&conn.client, &self.database, &mut self.warnings).await
            }
            FeedMode::Triggers | FeedMode::Off => Err(Failure::Refused("not configured".into())),
        };
        match decoding {
            Ok(slot) => {
                self.cover_unlogged(&conn.client).await?;
                return Ok(Method::Decoding(slot));
            }
            Err(Failure::Lost(e)) => return Err(Failure::Lost(e)),
            Err(Failure::Refused(why)) if self.mode == FeedMode::Replication => {
                return Err(Failure::Refused(format!("logical decoding: {why}")));
            }
            Err(Failure::Refused(why)) => {
                if self.mode == FeedMode::Auto && self.warnings.first("no decoding") {
                    tracing::info!(
                        database = %self.database,
                        reason = %why,
                        "change feed: logical decoding not available, using triggers + NOTIFY"
                    );
                }
            }
        }
        // Triggers on this connection: no slot here, so an error is harmless.
        match triggers::install(&conn.client, Scope::All, &self.database, &mut self.refusals).await
        {
            Ok(_) => Ok(Method::Triggers),
            Err(Failure::Refused(why)) => Err(Failure::Refused(format!("triggers: {why}"))),
            Err(lost) => Err(lost),
        }
    }

    /// Runs a set-up session; `None` when the cache is gone, else why the
    /// session ended.
    async fn serve(&mut self, conn: &mut Conn, method: &mut Method) -> Option<String> {
        let _ticker = match method {
            Method::Decoding(slot) => Some(snapshot::spawn(
                self.pg.clone(),
                slot.name.clone(),
                slot.decoder.plugin(),
            )),
            Method::Triggers => None,
        };
        // Rows of every logged table: writes through pgpulse may wait
        // for them (suspensions), until this session ends.
        let keyed = matches!(method, Method::Decoding(s) if s.complete && s.decoder == Decoder::TestDecoding);
        let _keyed = keyed.then(|| pending::KeyedFeed::start(&self.invalidator, &self.database));
        let wake = self.invalidator.db_state(&self.database)?;
        let mut pending = pending::Pending::default();
        let mut unseen = visible::Unseen::default();
        let mut last_poll = tokio::time::Instant::now();
        let poll = tokio::time::sleep(self.poll);
        tokio::pin!(poll);
        let mut reinstall =
            tokio::time::interval_at(tokio::time::Instant::now() + REINSTALL, REINSTALL);
        reinstall.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                note = conn.notes.recv() => {
                    let Some(first) = note else {
                        return Some("connection closed".into());
                    };
                    let mut names = vec![first];
                    while let Ok(n) = conn.notes.try_recv() {
                        names.push(n);
                    }
                    self.invalidate(names);
                }
                () = wake.feed_wake.notified() => {
                    // A suspension waits: poll now, but not more often than
                    // every `WAKE_GAP` however many writes wake it.
                    let at = (last_poll + WAKE_GAP).max(tokio::time::Instant::now());
                    if at < poll.deadline() {
                        poll.as_mut().reset(at);
                    }
                }
                () = &mut poll => {
                    if !self.invalidator.alive() {
                        return None;
                    }
                    let polled = Instant::now();
                    last_poll = tokio::time::Instant::now();
                    let late = last_poll.saturating_duration_since(poll.deadline());
                    if late > WINDOW / 2 && self.warnings.every("late poll", Duration::from_secs(60)) {
                        tracing::warn!(database = %self.database, late_ms = late.as_millis() as u64,
                            "change feed: a poll started late (the runtime is overloaded); \
                             writes that bypass pgpulse may be served stale for longer than 1 s");
                    }
                    let mut next = self.poll;
                    if let Method::Decoding(slot) = method {
                        let heads = self.invalidator.keyed_heads(&self.database);
                        let token = self.invalidator.suspend_token(&self.database);
                        let result = slot.poll(&conn.client, &heads).await;
                        let took = polled.elapsed();
                        next = next_poll(self.poll, took);
                        match result {
                            Ok(touched) => {
                                if took > WINDOW / 2 {
                                    self.slow_poll(took, touched.steps);
                                }
                                let again = unseen.finished(touched.snapshot.as_ref());
                                let unfinished = visible::unfinished(touched.snapshot.as_ref(), &touched.xids);
                                let tables = (!unfinished.is_empty()).then(|| visible::Tables::of(
                                    touched.everything, &touched.names, touched.rows.keys()));
                                if touched.everything {
                                    self.invalidate_database();
                                } else {
                                    let keyed = self.invalidator.feed_rows(&self.database, touched.rows);
                                    self.invalidate(touched.names.into_iter().chain(keyed));
                                }
                                // Commits not yet visible before the bumps: their
                                // tables are invalidated again once they are.
                                if let Some(tables) = tables {
                                    unseen.wait(unfinished, tables);
                                }
                                for t in again {
                                    match t {
                                        visible::Tables::Names(n) => self.invalidate(n),
                                        visible::Tables::Database => self.invalidate_database(),
                                    }
                                }
                                pending.after_poll(&self.invalidator, &self.database, token,
                                    touched.insert_lsn, slot.decoded_upto());
                                if pending.waiting() || unseen.waiting() {
                                    next = next.min(resolve_soon(took));
                                }
                            }
                            Err(e) => return Some(e.to_string()),
                        }
                        // Notifications (unlogged tables' triggers) that
                        // arrived before the poll's reply are for commits
                        // before its position: invalidated before the claim.
                        let mut names = Vec::new();
                        while let Ok(n) = conn.notes.try_recv() {
                            names.push(n);
                        }
                        if !names.is_empty() {
                            self.invalidate(names);
                        }
                        if slot.complete && !self.unlogged_uncovered {
                            self.claims.claim(&self.invalidator, &self.database, slot.decoded_upto());
                        }
                    } else if conn.client.is_closed() {
                        return Some("connection closed".into());
                    }
                    poll.as_mut().reset(tokio::time::Instant::now() + next);
                }
                _ = reinstall.tick() => {
                    let result = match method {
                        Method::Decoding(_) => self.cover_unlogged(&conn.client).await,
                        Method::Triggers => {
                            match triggers::install(
                                &conn.client, Scope::All, &self.database, &mut self.refusals,
                            ).await {
                                Ok(covered) => {
                                    self.invalidate(covered);
                                    Ok(())
                                }
                                Err(Failure::Refused(why)) => {
                                    // The function was dropped (with its
                                    // triggers) and cannot be created again.
                                    if self.warnings.first("function") {
                                        tracing::warn!(database = %self.database, reason = %why,
                                            "change feed: cannot create the trigger function; \
                                             new tables are not covered");
                                    }
                                    Ok(())
                                }
                                Err(lost) => Err(lost),
                            }
                        }
                    };
                    if let Err(Failure::Lost(e) | Failure::Refused(e)) = result {
                        return Some(e);
                    }
                }
            }
        }
    }

    /// Relations (by `relname`) were written: invalidates them, or the
    /// whole database for a name the cache cannot match.
    ///
    /// Also bumps the generations in Redis: L2 entries are checked against
    /// those, so an L1 miss after a feed invalidation must not find a
    /// stale L2 entry.
    fn invalidate(&self, names: impl IntoIterator<Item = String>) {
        let mut refs = BTreeSet::new();
        for name in names {
            match decode::table_ref(&name) {
                Some(r) => {
                    refs.insert(r);
                }
                None => {
                    self.invalidate_database();
                    return;
                }
            }
        }
        if !refs.is_empty() {
            self.invalidator
                .tables_everywhere(&self.database, refs.iter().map(String::as_str));
        }
    }

    /// A poll took so long that the 1 s bound is at risk: says where the
    /// time went (at most one warning a minute, the rest at debug level).
    fn slow_poll(&mut self, took: Duration, steps: [Duration; 3]) {
        let ms = |d: Duration| d.as_millis() as u64;
        let (took, positions, settle, decode) =
            (ms(took), ms(steps[0]), ms(steps[1]), ms(steps[2]));
        if self.warnings.every("slow poll", Duration::from_secs(60)) {
            tracing::warn!(database = %self.database, took, positions, settle, decode,
                "change feed: a poll took longer than 300 ms (milliseconds per step); \
                 writes that bypass pgpulse may be served stale for longer than 1 s");
        } else {
            tracing::debug!(database = %self.database, took, positions, settle, decode,
                "change feed: slow poll");
        }
    }

    /// Anything in the database may have changed.
    fn invalidate_database(&self) {
        self.invalidator.database_everywhere(&self.database);
    }
}
