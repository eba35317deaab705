//! The rows of the ten performance tables (plus job runs and the audit log),
//! as the rest of pgpulse reads and writes them, and the filters the API
//! uses. Both backends map these types one to one onto their columns.
//!
//! Conventions: times are UTC; durations are milliseconds as `f64` (the API
//! shows them as they are); fingerprints are 16 lowercase hex digits, as
//! `SHOW QUERIES` prints them; query texts are normalized (`$n` for
//! constants), never raw. `id` is 0 on a row not yet stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod advice;
mod alerts;
mod collected;
mod runs;
mod statements;

pub use advice::*;
pub use alerts::*;
pub use collected::*;
pub use runs::*;
pub use statements::*;

/// A point in time, UTC.
pub type Timestamp = DateTime<Utc>;

/// A page request: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Rows per page (the API caps it at 1,000).
    pub limit: u32,
    /// Rows skipped.
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 100,
            offset: 0,
        }
    }
}

/// One page of rows and the number of rows matching the filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paged<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Rows matching the filter, over all pages.
    pub total: u64,
}

/// A half-open time window `[from, to)`; a missing end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start.
    pub from: Option<Timestamp>,
    /// Exclusive end.
    pub to: Option<Timestamp>,
}

impl Window {
    /// The window `[from, to)`.
    pub fn between(from: Timestamp, to: Timestamp) -> Window {
        Window {
            from: Some(from),
            to: Some(to),
        }
    }
}
