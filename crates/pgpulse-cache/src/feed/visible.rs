//! Decoded before visible. PostgreSQL writes a commit record to the WAL,
//! then makes the transaction visible to other snapshots
//! (`ProcArrayEndTransaction`). Decoding reads the WAL, so a poll can
//! decode a commit that other sessions cannot see yet. If pgpulse bumped
//! the table then and a reader stamped after the bump but ran its query
//! before the commit became visible, that reader would store the table as
//! it was before the commit under the new stamp: stale until the next
//! write to the table, or the TTL.
//!
//! So every poll reads a snapshot *before* decoding (with the flush
//! position, no extra round trip), and decoding returns the xids of the
//! transactions it decoded. A transaction that was finished in that
//! snapshot was visible before the poll's bump: nothing to do. One that
//! was not is remembered with the tables of its poll, and once a later
//! poll's snapshot shows it finished, those tables are bumped again — after
//! it became visible, so any read made in between is invalidated. Writes
//! through pgpulse never depend on this (their session bumps again at
//! ReadyForQuery, after visibility); writes that bypass pgpulse do.

use std::collections::BTreeSet;

/// A `txid_current_snapshot()`: transactions below `xmin` are finished,
/// those at or above `xmax` had not started, those in `xip` were running.
/// 64-bit (epoch and xid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snap {
    xmax: u64,
    xip: Vec<u64>,
}

impl Snap {
    /// Parses `xmin:xmax:xip,xip,...` (the `txid_snapshot` text form).
    pub fn parse(s: &str) -> Option<Snap> {
        let mut parts = s.splitn(3, ':');
        let _xmin: u64 = parts.next()?.parse().ok()?;
        let xmax: u64 = parts.next()?.parse().ok()?;
        let xip = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(Snap { xmax, xip })
    }

    /// Whether `xid` (32 bits, as decoding gives it) was running or not
    /// yet started: not known to be visible. It is placed at its 32-bit
    /// distance below `xmax` (a decoded transaction is recent: far fewer
    /// than 2^31 transactions old); one at or "above" `xmax` had not
    /// started.
    pub fn unfinished(&self, xid: u32) -> bool {
        // Truncation intended: the low 32 bits of xmax.
        let below = (self.xmax as u32).wrapping_sub(xid);
        if below == 0 || below > 1 << 31 {
            return true;
        }
        match self.xmax.checked_sub(u64::from(below)) {
            Some(full) => self.xip.contains(&full),
            // Before the first transaction: cannot be; be safe.
            None => true,
        }
    }
}

/// What a poll invalidated: tables by relation name, or the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tables {
    Names(BTreeSet<String>),
    Database,
}

impl Tables {
    /// What a poll invalidates: `names`, and the tables of the keyed row
    /// changes' `test_decoding` heads.
    pub fn of<'a>(
        everything: bool,
        names: &BTreeSet<String>,
        heads: impl Iterator<Item = &'a String>,
    ) -> Tables {
        if everything {
            return Tables::Database;
        }
        let mut all = names.clone();
        for head in heads {
            match super::decode::test_decoding_head(head) {
                Some(n) => all.extend(n),
                None => return Tables::Database,
            }
        }
        Tables::Names(all)
    }
}

/// Of the `xids` a poll decoded, those not finished in `snap`, the
/// snapshot read before decoding. Without a snapshot (the server's text did
/// not parse: cannot happen) nothing can be told: none.
pub(super) fn unfinished(snap: Option<&Snap>, xids: &[u32]) -> Vec<u32> {
    snap.map(|s| xids.iter().copied().filter(|x| s.unfinished(*x)).collect())
        .unwrap_or_default()
}

/// Polls kept waiting before they are merged into one (a poll's commits
/// are visible within moments; this only bounds the memory).
const MAX_WAITING: usize = 64;

/// Polls whose transactions were not visible when they were decoded.
#[derive(Debug, Default)]
pub(super) struct Unseen {
    waiting: Vec<(Vec<u32>, Tables)>,
}

impl Unseen {
    /// A poll that invalidated `tables` decoded `unfinished` transactions
    /// ([`unfinished`]): its tables wait for them (nothing to wait for
    /// when empty).
    pub fn wait(&mut self, unfinished: Vec<u32>, tables: Tables) {
        if unfinished.is_empty() {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            // Bounded: the polls waiting so far wait together, for the
            // whole database.
            let mut all = Vec::new();
            for (xids, _) in self.waiting.drain(..) {
                all.extend(xids);
            }
            self.waiting.push((all, Tables::Database));
        }
        self.waiting.push((unfinished, tables));
    }

    /// With a new snapshot: the tables whose transactions are all
    /// finished now, to invalidate again.
    pub fn finished(&mut self, snap: Option<&Snap>) -> Vec<Tables> {
        let Some(snap) = snap else {
            return Vec::new();
        };
        let mut out = Vec::new();
        self.waiting.retain_mut(|(xids, tables)| {
            xids.retain(|x| snap.unfinished(*x));
            if xids.is_empty() {
                out.push(std::mem::replace(tables, Tables::Database));
                false
            } else {
                true
            }
        });
        out
    }

    /// Whether some poll waits for its transactions.
    pub fn waiting(&self) -> bool {
        !self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_parse_and_tell_unfinished_transactions() {
        let s = Snap::parse("100:105:100,103").unwrap();
        assert!(!s.unfinished(99), "below xmin: finished");
        assert!(s.unfinished(100) && s.unfinished(103), "running");
        assert!(!s.unfinished(101) && !s.unfinished(104), "finished");
        assert!(s.unfinished(105) && s.unfinished(200), "not started");
        assert_eq!(Snap::parse("7:7:").unwrap().xip, Vec::<u64>::new());
        assert!(Snap::parse("7:x:").is_none() && Snap::parse("7").is_none());
        // Across an epoch: xmax = 2^32 + 5, xid 4294967290 is the
        // previous epoch's (finished), 3 is this one's.
        let e = (1u64 << 32) + 5;
        let s = Snap::parse(&format!("{}:{e}:{}", e - 20, (1u64 << 32) + 3)).unwrap();
        assert!(!s.unfinished(4_294_967_290));
        assert!(s.unfinished(3), "running in this epoch");
        assert!(!s.unfinished(4), "finished in this epoch");
        assert!(s.unfinished(5) && s.unfinished(6), "not started");
    }

    #[test]
    fn polls_wait_until_their_transactions_are_visible() {
        let names = |n: &[&str]| Tables::Names(n.iter().map(|s| s.to_string()).collect());
        let mut u = Unseen::default();
        let before = Snap::parse("10:12:10").unwrap();
        // 9 and 11 finished before the poll: nothing to do.
        u.wait(unfinished(Some(&before), &[9, 11]), names(&["a"]));
        assert!(!u.waiting());
        // 10 was running, 12 had not started.
        u.wait(unfinished(Some(&before), &[10, 11]), names(&["b"]));
        u.wait(unfinished(Some(&before), &[12]), Tables::Database);
        u.wait(unfinished(None, &[10]), names(&["c"]));
        assert!(u.waiting());
        assert_eq!(
            u.finished(Some(&Snap::parse("10:13:10").unwrap())),
            vec![Tables::Database]
        );
        assert_eq!(u.finished(None), vec![]);
        assert_eq!(
            u.finished(Some(&Snap::parse("13:13:").unwrap())),
            vec![names(&["b"])]
        );
        assert!(!u.waiting());
        // Bounded: 200 polls wait as at most 64.
        for i in 0..200 {
            u.wait(unfinished(Some(&before), &[10]), names(&[&i.to_string()]));
        }
        assert!(u.waiting.len() <= MAX_WAITING);
        let n = u.waiting.len();
        assert_eq!(u.finished(Some(&Snap::parse("11:13:").unwrap())).len(), n);
        assert!(!u.waiting());
    }
}
