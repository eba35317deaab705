//! Reads pgpulse's cache counters from its admin console (the virtual
//! database `pgpulse`, `SHOW CACHE`), so that the report can give the hit
//! rate of each scenario against the instance with the cache on.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio_postgres::SimpleQueryMessage;

use super::idle::Credentials;

/// The admin console's virtual database (`pgpulse_proxy`'s
/// `ADMIN_DATABASE`); the user of `DATABASE_URL` may log in to it.
pub const ADMIN_DATABASE: &str = "pgpulse";

/// Cumulative lookups of pgpulse's result cache (`SHOW CACHE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to PostgreSQL.
    pub misses: u64,
}

impl CacheCounters {
    /// The lookups between `earlier` and `self`.
    pub fn since(self, earlier: CacheCounters) -> CacheCounters {
        CacheCounters {
            hits: self.hits.saturating_sub(earlier.hits),
            misses: self.misses.saturating_sub(earlier.misses),
        }
    }

    /// The lookups of two periods together.
    pub fn plus(self, other: CacheCounters) -> CacheCounters {
        CacheCounters {
            hits: self.hits + other.hits,
            misses: self.misses + other.misses,
        }
    }

    /// Hits + misses.
    pub fn lookups(self) -> u64 {
        self.hits + self.misses
    }

    /// Hits per lookup; `None` without lookups.
    pub fn hit_rate(self) -> Option<f64> {
        (self.lookups() > 0).then(|| self.hits as f64 / self.lookups() as f64)
    }
}

/// `SHOW CACHE` on the admin console of the pgpulse at 127.0.0.1:`port`.
pub async fn cache_counters(port: u16, cred: &Credentials) -> anyhow::Result<CacheCounters> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(&cred.user)
        .password(&cred.password)
        .dbname(ADMIN_DATABASE)
        .connect_timeout(Duration::from_secs(10));
    let query = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .context("cannot log in to the admin console")?;
        let driver = tokio::spawn(connection);
        let result = client.simple_query("SHOW CACHE").await;
        drop(client);
        let _ = driver.await;
        parse_show_cache(&result.context("SHOW CACHE")?)
    };
    tokio::time::timeout(Duration::from_secs(15), query)
        .await
        .context("SHOW CACHE timed out")?
}

fn parse_show_cache(messages: &[SimpleQueryMessage]) -> anyhow::Result<CacheCounters> {
    let Some(row) = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) else {
        bail!("SHOW CACHE returned no row (is the cache off?)");
    };
    let number = |column: &str| -> anyhow::Result<u64> {
        row.try_get(column)?
            .with_context(|| format!("SHOW CACHE: {column} is NULL"))?
            .parse()
            .with_context(|| format!("SHOW CACHE: {column} is not a number"))
    };
    Ok(CacheCounters {
        hits: number("hits")?,
        misses: number("misses")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_is_per_interval() {
        let before = CacheCounters {
            hits: 100,
            misses: 50,
        };
        let after = CacheCounters {
            hits: 400,
            misses: 150,
        };
        let d = after.since(before);
        assert_eq!(
            d,
            CacheCounters {
                hits: 300,
                misses: 100
            }
        );
        assert_eq!(d.lookups(), 400);
        assert_eq!(d.hit_rate(), Some(0.75));
        assert_eq!(CacheCounters::default().hit_rate(), None);
        // A restarted (reset) instance does not give negative counts.
        assert_eq!(before.since(after), CacheCounters::default());
    }
}
