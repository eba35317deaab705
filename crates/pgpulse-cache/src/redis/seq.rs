//! Which invalidation sequence numbers this instance has accounted for.
//!
//! Every invalidation `INCR`s the sequence ([`Names::seq`](super::format::Names::seq)) and
//! publishes the value, in one script, so messages leave Redis in sequence
//! order. `covered` is the watermark below which every number was either
//! received, or is covered by a local "forget everything" (a resync). The
//! instance's own numbers need no message (it applied them before
//! publishing); they are remembered apart, so that counting them as seen
//! cannot hide someone else's lost message with a lower number.

use std::collections::BTreeSet;

/// Own sequence numbers remembered beyond the watermark; past this the
/// oldest are forgotten (at worst an unneeded resync).
const MAX_OWN: usize = 4096;

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Seqs {
    covered: u64,
    own: BTreeSet<u64>,
}

impl Seqs {
    /// The watermark.
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// A fresh subscription: everything up to `seq` (read after
    /// subscribing) is covered by the resync done on subscribing.
    pub fn reset(&mut self, seq: u64) {
        self.covered = seq;
        self.own.retain(|s| *s > seq);
    }

    /// This instance published `seq`.
    pub fn own(&mut self, seq: u64) {
        if seq > self.covered {
            self.own.insert(seq);
            if self.own.len() > MAX_OWN {
                self.own.pop_first();
            }
        }
    }

    /// A message with `seq` arrived. Returns true when messages of other
    /// instances between the watermark and it were lost.
    pub fn received(&mut self, seq: u64) -> bool {
        let lost = seq > 0 && self.lost_up_to(seq - 1);
        self.advance(seq);
        lost
    }

    /// Whether a number in `(covered, seq]` is neither received nor own.
    pub fn lost_up_to(&self, seq: u64) -> bool {
        if seq <= self.covered {
            return false;
        }
        let missing = seq - self.covered;
        let own = self.own.range(self.covered + 1..=seq).count() as u64;
        own < missing
    }

    /// Everything up to `seq` is accounted for (received, or resynced).
    pub fn advance(&mut self, seq: u64) {
        if seq > self.covered {
            self.covered = seq;
            self.own.retain(|s| *s > seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_losses_unless_own() {
        let mut s = Seqs::default();
        s.reset(10);
        assert!(!s.received(11));
        assert!(!s.received(11), "a duplicate is not a loss");
        s.own(13);
        assert!(!s.lost_up_to(11));
        assert!(s.lost_up_to(12), "12 is someone else's and was not seen");
        assert!(!s.received(12));
        assert!(!s.lost_up_to(13), "13 is our own");
        assert!(!s.received(14), "13 (own) is not a loss");
        assert_eq!(s.covered(), 14);
        assert!(s.received(16), "15 was lost");
        assert!(
            !s.received(3),
            "a lower number (late or Redis reset) is no gap"
        );
        assert_eq!(s.covered(), 16);
        s.own(2);
        assert!(!s.lost_up_to(16));
    }

    #[test]
    fn reset_goes_back() {
        let mut s = Seqs::default();
        s.advance(100);
        s.own(101);
        s.reset(5);
        assert_eq!(s.covered(), 5);
        assert!(s.lost_up_to(6));
    }
}
