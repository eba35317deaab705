//! What the advisor's "implement" does for recommendations that are not
//! SQL: a cache rule for a hot read-mostly statement, a pool resize. Both
//! act on the running instance and last until it stops or reloads: the
//! recommendation's record says what was done, and the config is where to
//! make it permanent.

use async_trait::async_trait;
use pgpulse_cache::{Cache, CacheRule as Rule, RuleAction};
use pgpulse_insight::advisor::{Actions, CacheRule, PoolResize};
use pgpulse_proxy::ProxyHandle;

/// The running cache and proxy, as the advisor's actions see them.
#[derive(Debug, Clone)]
pub struct LiveActions {
    /// The result cache, when on.
    pub cache: Option<Cache>,
    /// The proxy.
    pub proxy: ProxyHandle,
}

#[async_trait]
impl Actions for LiveActions {
    async fn add_cache_rule(&self, rule: &CacheRule) -> Result<(), String> {
        let cache = self
            .cache
            .as_ref()
            .ok_or("the result cache is off on this instance (cache.mode = off)")?;
        let fingerprint = u64::from_str_radix(&rule.fingerprint, 16)
            .map_err(|_| format!("not a fingerprint: {:?}", rule.fingerprint))?;
        cache.add_rule(Rule {
            fingerprint: Some(fingerprint),
            table: None,
            action: RuleAction::Allow,
            ttl: None,
        });
        tracing::info!(fingerprint = %rule.fingerprint, "cache rule added by the advisor");
        Ok(())
    }

    async fn resize_pool(&self, resize: &PoolResize) -> Result<(), String> {
        let size = usize::try_from(resize.to).map_err(|_| "pool size out of range".to_owned())?;
        if self.proxy.resize_pool(&resize.database, &resize.user, size) {
            tracing::info!(
                database = %resize.database, user = %resize.user,
                from = resize.from, to = resize.to, "pool resized by the advisor"
            );
            Ok(())
        } else {
            Err(format!(
                "no pool for database {:?} and user {:?} on this instance",
                resize.database, resize.user
            ))
        }
    }
}
