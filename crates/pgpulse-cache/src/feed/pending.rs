//! Resolving suspensions (`Generations::suspend`): a write through pgpulse
//! whose rows it does not know holds its table's keyed reads until the
//! change feed has decoded everything committed before the suspension.
//!
//! Before each poll the feed notes the last suspension made (`token`);
//! the poll reads `pg_current_wal_insert_lsn()` after that, so every
//! suspension up to `token` was made after its commit, whose WAL ends at
//! or before that position. Once the feed has decoded up to the position
//! (`decoded_upto`, the flush position a poll read before decoding), the
//! rows of those commits were applied (as keyed writes, or the whole
//! table) and the suspensions are resolved. Waiting for the flush
//! position, not only the next poll, keeps this right with
//! `synchronous_commit = off`, where a commit is acknowledged before its
//! WAL is flushed and decodable. A poll that finds WAL beyond the flushed
//! position settles it first (`replication::SETTLE`), so that the flushed
//! position passes the insert position it reads and one poll resolves
//! them; if it still cannot (settling not allowed), the next poll comes
//! soon (`feed::resolve_soon`), not after the regular interval.

use std::collections::VecDeque;

use crate::invalidator::Invalidator;

/// Suspension tokens waiting for the feed to decode up to a position.
#[derive(Debug, Default)]
pub(super) struct Pending {
    waiting: VecDeque<(u64, u64)>,
    /// The last token queued (tokens only grow).
    seen: u64,
}

impl Pending {
    /// After a poll that began with suspension `token` and read insert
    /// position `insert_lsn`, with everything up to `decoded_upto` decoded
    /// and applied: resolves what can be.
    pub(super) fn after_poll(
        &mut self,
        invalidator: &Invalidator,
        database: &str,
        token: u64,
        insert_lsn: Option<u64>,
        decoded_upto: Option<u64>,
    ) {
        if let Some(lsn) = insert_lsn
            && token > self.seen
        {
            self.waiting.push_back((token, lsn));
            self.seen = token;
        }
        let Some(done) = decoded_upto else { return };
        let mut resolved = None;
        while let Some(&(t, lsn)) = self.waiting.front() {
            if lsn > done {
                break;
            }
            resolved = Some(t);
            self.waiting.pop_front();
        }
        if let Some(t) = resolved {
            invalidator.resolve(database, t);
        }
    }

    /// Whether suspensions still wait for a later poll.
    pub(super) fn waiting(&self) -> bool {
        !self.waiting.is_empty()
    }
}

/// While alive, the database's feed delivers row images
/// (`Generations::set_keyed_feed`).
pub(super) struct KeyedFeed(Invalidator, String);

impl KeyedFeed {
    pub(super) fn start(invalidator: &Invalidator, database: &str) -> KeyedFeed {
        invalidator.set_keyed_feed(database, true);
        KeyedFeed(invalidator.clone(), database.to_owned())
    }
}

impl Drop for KeyedFeed {
    fn drop(&mut self) {
        self.0.set_keyed_feed(&self.1, false);
    }
}
