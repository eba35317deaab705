//! Completing a miss: the reply is stored unless it is too large or a
//! table it read changed while the statement ran.

use bytes::Bytes;

use std::sync::Arc;

use std::sync::atomic::Ordering;

use crate::cache::{Fill, Plan};
use crate::generations::Currency;
use crate::keyed::Conds;
use crate::l1::Entry;
use crate::reason::NocacheReason;

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

impl crate::Cache {
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
