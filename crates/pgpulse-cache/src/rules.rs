//! Rules added while pgpulse runs (the advisor's "cache this statement"):
//! kept beside the configured ones, which they follow in order.

use crate::cache::Cache;
use crate::config::CacheRule;

impl Cache {
    /// Adds a rule at run time (the advisor's "cache this statement"),
    /// checked after the configured ones, and forgets every memoised plan
    /// so that the next statements are judged with it. Rules added this way
    /// last until the process stops (put them in the config to keep them).
    pub fn add_rule(&self, rule: CacheRule) {
        self.inner
            .added_rules
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
        let dbs = self.inner.dbs.read().unwrap_or_else(|p| p.into_inner());
        for db in dbs.values() {
            db.plans.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    /// The rules added at run time.
    pub fn added_rules(&self) -> Vec<CacheRule> {
        self.inner
            .added_rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
