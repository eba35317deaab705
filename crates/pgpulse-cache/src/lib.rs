//! The pgpulse query-result cache: keys, entries (reply bytes), the in-process
//! L1, the Redis L2, per-table generations and the invalidation bus.
#![warn(missing_docs)]
