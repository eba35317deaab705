//! The pgpulse query-result cache: keys, entries (reply bytes), the in-process
//! L1, the Redis L2, per-table generations and the invalidation bus.
//!
//! The proxy asks [`Cache::plan`] whether a statement may be cached, builds a
//! [`Key`] with [`KeyBuilder`], calls [`Cache::lookup`], and on a miss runs
//! the statement and hands its reply to [`Fill::complete`]. Writes that go
//! through the proxy call [`Cache::invalidate_tables`] at commit; the change
//! feed and Redis pub/sub apply the others through an [`Invalidator`].
//! `docs/architecture.md`, "The cache as built", explains the rules.
#![warn(missing_docs)]

mod cache;
pub mod catalog;
mod config;
mod feed;
mod fill;
mod generations;
mod invalidator;
mod key;
pub mod keyed;
mod keyed_ops;
mod l1;
mod loader;
mod plan;
mod policy;
mod reason;
pub mod redis;
mod rules;
mod stats;

pub use cache::{Cache, Fill, Lookup, Plan};
pub use catalog::{Catalog, TableInfo, Volatility};
pub use config::{AutoPolicy, CacheConfig, CacheMode, CacheRule, FeedMode, RuleAction};
pub use generations::Generations;
pub use invalidator::Invalidator;
pub use key::{Key, KeyBuilder};
pub use reason::NocacheReason;
pub use stats::{CacheStats, ItemStats, MissCause, MissCauses};
