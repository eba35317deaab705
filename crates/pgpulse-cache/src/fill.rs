//! The L1 side of lookups and fills: whether an entry is current, and
//! completing a miss (the reply is stored unless it is too large or a
//! table it read changed while the statement ran).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::cache::{Cache, Fill, Plan};
use crate::generations::Currency;
use crate::key::Key;
use crate::keyed::Conds;
use crate::l1::Entry;
use crate::reason::NocacheReason;
use crate::stats::MissCause;

impl Fill {
    /// The statement succeeded and `bytes` is its whole reply: store it,
    /// unless it is too large or a table it read changed meanwhile.
    pub fn complete(self, bytes: Bytes) -> Result<(), NocacheReason> {
        let inner = &self.cache.inner;
        if bytes.len() > inner.config.max_entry_bytes {
            inner
                .stats
                .refusal(self.plan.fingerprint, NocacheReason::TooLarge);
            return Err(NocacheReason::TooLarge);
        }
        let Currency::Current(seqs) = inner.gens.current(
            &self.plan.database,
            &self.plan.families,
            &self.keyed,
            self.stamp,
            &self.seqs,
        ) else {
            inner
                .stats
                .refusal(self.plan.fingerprint, NocacheReason::StaleFill);
            return Err(NocacheReason::StaleFill);
        };
        self.cache.l1_put(
            self.key,
            &self.plan,
            self.stamp,
            &self.keyed,
            &seqs,
            bytes.clone(),
        );
        if let (Some(l2), Some(gens)) = (inner.l2.get(), self.l2_gens.as_ref()) {
            l2.store(
                &self.plan.database,
                self.key,
                bytes,
                &self.plan.families,
                gens.clone(),
                self.plan.ttl,
            );
        }
        inner.stats.fill(&self.plan);
        Ok(())
    }

    /// The statement will not be stored, for `reason`.
    pub fn abandon(self, reason: NocacheReason) {
        self.cache
            .inner
            .stats
            .refusal(self.plan.fingerprint, reason);
    }

    /// The plan.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Largest reply that will be stored.
    pub fn max_bytes(&self) -> usize {
        self.cache.inner.config.max_entry_bytes
    }
}

impl Cache {
    /// Whether entry `e` of a read of `plan` is current. `(stamp, keyed,
    /// seqs)` is the lookup's own stamp: when the entry has the same
    /// conditions (the common case: same key, same text and parameters)
    /// its stamp decides without another lock unless keyed writes came
    /// since; any other entry is checked against its own conditions.
    pub(crate) fn current(
        &self,
        e: &Entry,
        plan: &Plan,
        stamp: u64,
        keyed: &[Conds],
        lookup_seqs: &[u64],
    ) -> Currency {
        if std::ptr::eq(&*e.keyed, keyed) || *e.keyed == *keyed {
            if e.stamp != stamp {
                return Currency::Stale;
            }
            let same = e.seqs.len() == lookup_seqs.len()
                && e.seqs
                    .iter()
                    .zip(lookup_seqs)
                    .all(|(a, b)| a.load(Ordering::Relaxed) == *b);
            if same {
                return Currency::Current(Vec::new());
            }
        }
        let seqs: Vec<u64> = e.seqs.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        let c = self
            .inner
            .gens
            .current(&plan.database, &plan.families, &e.keyed, e.stamp, &seqs);
        if let Currency::Current(now) = &c {
            for (slot, v) in e.seqs.iter().zip(now) {
                slot.store(*v, Ordering::Relaxed);
            }
        }
        c
    }
}

/// An L1 entry as a lookup sees it.
pub(crate) enum L1State {
    Fresh(Bytes),
    /// Past its TTL, not invalidated, within the stale-while-revalidate
    /// window.
    Stale(Bytes),
    /// Not served, and why.
    Absent(MissCause),
}

impl Cache {
    pub(crate) fn l1_get(
        &self,
        key: Key,
        plan: &Plan,
        stamp: u64,
        keyed: &[Conds],
        seqs: &[u64],
    ) -> Option<Bytes> {
        match self.l1_state(key, plan, stamp, keyed, seqs) {
            L1State::Fresh(b) => Some(b),
            _ => None,
        }
    }

    /// The L1 entry for `key`, if current: fresh, or past its TTL but
    /// within the stale-while-revalidate window.
    pub(crate) fn l1_state(
        &self,
        key: Key,
        plan: &Plan,
        stamp: u64,
        keyed: &[Conds],
        seqs: &[u64],
    ) -> L1State {
        let Some(e) = self.inner.l1.get(&key) else {
            return L1State::Absent(MissCause::Cold);
        };
        let now = Instant::now();
        let cause = match self.current(&e, plan, stamp, keyed, seqs) {
            // Kept: current again once the change feed's rows are in.
            Currency::Pending => return L1State::Absent(MissCause::Suspended),
            Currency::Stale => MissCause::Invalidated,
            Currency::Current(_) => {
                if e.expires > now {
                    return L1State::Fresh(e.bytes.clone());
                }
                if let Some(window) = self.inner.config.stale_while_revalidate
                    && now < e.expires + window
                {
                    return L1State::Stale(e.bytes.clone());
                }
                MissCause::Expired
            }
        };
        // Invalidated (never served, whatever the policy) or too old.
        self.inner.l1.remove(&key);
        L1State::Absent(cause)
    }

    pub(crate) fn l1_put(
        &self,
        key: Key,
        plan: &Plan,
        stamp: u64,
        keyed: &Arc<[Conds]>,
        seqs: &[u64],
        bytes: Bytes,
    ) {
        if !keyed.is_empty() {
            self.inner
                .gens
                .note_keyed_reader(&plan.database, keyed.iter().map(|c| c.family.clone()));
        }
        self.inner.l1.insert(
            key,
            Entry {
                bytes,
                stamp,
                expires: Instant::now() + plan.ttl,
                keyed: keyed.clone(),
                seqs: seqs.iter().map(|&s| AtomicU64::new(s)).collect(),
            },
        );
    }
}
