//! Coverage (see the parent module's doc, "Coverage"): the claims a
//! decoding feed records in Redis, the wait of a starting feed for another
//! feed's claim, and the hold that keeps the L2 unread meanwhile.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::Feed;
use crate::invalidator::Invalidator;

/// How long a starting feed waits for another feed's coverage record
/// (module doc, "Coverage"); a running feed records within a poll or two.
pub(super) const COVERAGE_WAIT: Duration = Duration::from_secs(2);
/// Coverage claims waiting for Redis to confirm their invalidations.
const MAX_CLAIMS: usize = 64;

/// Keeps this instance from reading the Redis L2 of a database while it
/// lives (a feed deciding whether its start invalidates the database in
/// Redis); released when dropped.
pub(crate) struct Hold {
    invalidator: Invalidator,
    database: Arc<str>,
}

impl Hold {
    pub(crate) fn new(invalidator: Invalidator, database: Arc<str>) -> Hold {
        invalidator.l2_hold(&database);
        Hold {
            invalidator,
            database,
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.invalidator.l2_release(&self.database);
    }
}

/// Whether coverage record `(number, lsn)` covers a slot whose
/// consistent point is `start`, when `seen` was the record number read
/// before the slot was made: newer than the slot, and at or past its start.
fn covers((number, lsn): (u64, u64), seen: u64, start: u64) -> bool {
    number > seen && lsn >= start
}

/// A session's claims: (LSN decoded up to, the L2 mark after its
/// invalidations were queued), oldest first, recorded once Redis confirms
/// the mark.
#[derive(Debug, Default)]
pub(super) struct Claims {
    pending: VecDeque<(u64, u64)>,
    /// The last LSN recorded.
    recorded: u64,
}

impl Claims {
    /// After a poll: everything committed up to `upto` is decoded and its
    /// invalidations queued. Records the newest claim whose invalidations
    /// Redis has confirmed.
    pub(super) fn claim(&mut self, invalidator: &Invalidator, database: &str, upto: Option<u64>) {
        let (Some(mark), Some(confirmed)) = (invalidator.l2_mark(), invalidator.l2_confirmed())
        else {
            return;
        };
        if let Some(lsn) = upto
            && lsn > self.recorded
            && self.pending.back().is_none_or(|(last, _)| lsn > *last)
        {
            if self.pending.len() == MAX_CLAIMS {
                self.pending.pop_front();
            }
            self.pending.push_back((lsn, mark));
        }
        let mut ready = None;
        while let Some(&(lsn, m)) = self.pending.front() {
            if m > confirmed {
                break;
            }
            ready = Some(lsn);
            self.pending.pop_front();
        }
        if let Some(lsn) = ready {
            self.recorded = lsn;
            invalidator.l2_record_coverage(database, lsn);
        }
    }
}

impl Feed {
    /// The current coverage record's number, read before the slot is
    /// made; `None` without an L2, or when Redis does not answer within
    /// [`COVERAGE_WAIT`] (its namespace may be resolving right after the
    /// instance started).
    pub(super) async fn coverage_seen(&self) -> Option<u64> {
        self.invalidator.l2_mark()?;
        let deadline = tokio::time::Instant::now() + COVERAGE_WAIT;
        loop {
            if let Some((seen, _)) = self.invalidator.l2_coverage(&self.database).await {
                return Some(seen);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to [`COVERAGE_WAIT`] for a coverage record newer than
    /// `seen` (read before the slot was made) that reaches `start`, the
    /// slot's consistent point (module doc, "Coverage").
    pub(super) async fn covered_by_others(&self, seen: u64, start: u64) -> bool {
        let deadline = tokio::time::Instant::now() + COVERAGE_WAIT;
        loop {
            tokio::time::sleep(self.poll.min(Duration::from_millis(100))).await;
            match self.invalidator.l2_coverage(&self.database).await {
                Some(record) if covers(record, seen, start) => return true,
                Some(_) => {}
                None => return false,
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn only_a_newer_record_at_or_past_the_slot_covers_it() {
        // Newer, and past the slot's start: covered.
        assert!(covers((8, 1000), 7, 900));
        assert!(covers((8, 900), 7, 900));
        // Newer but short of the start: writes just before it are unknown.
        assert!(!covers((8, 899), 7, 900));
        // Far past the start, but not newer than the slot: it may claim a
        // history that a restore or rollback threw away.
        assert!(!covers((7, u64::MAX), 7, 900));
        assert!(!covers((3, u64::MAX), 7, 900));
        // No record at all (number 0).
        assert!(!covers((0, 0), 0, 900));
    }
}
