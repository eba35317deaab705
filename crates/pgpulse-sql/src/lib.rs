//! SQL analysis for pgpulse: a PostgreSQL lexer, a normalizer that replaces
//! constants by `$n`, a 64-bit fingerprint, a statement classifier and the
//! sets of tables a statement reads and writes. Pure functions, no I/O.
//!
//! Two levels: [`normalize`] / [`fingerprint`] run a hand-written lexer on
//! every statement (about a microsecond); [`analyze`] adds a full parse with
//! `sqlparser` that finds tables and functions, and [`Analyzer`] memoises it
//! per distinct text. When the analysis cannot be sure of what a statement
//! writes it says so: `certain = false` (and `may_write = true` unless the
//! statement is clearly read-only), which a cache must treat as "invalidate
//! everything".
#![warn(missing_docs)]

mod analysis;
mod analyzer;
mod error;
mod fallback;
mod keywords;
mod kind;
pub mod lexer;
mod normalize;
mod tables;

pub use analysis::{Analysis, analyze};
pub use analyzer::Analyzer;
pub use error::SqlError;
pub use kind::StatementKind;
pub use normalize::{Fingerprint, Normalized, fingerprint, normalize};
pub use tables::TableRef;
