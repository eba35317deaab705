//! SQL analysis for pgpulse: a PostgreSQL lexer, a normalizer that replaces
//! constants by `$n`, a 64-bit fingerprint, a statement classifier and the
//! sets of tables a statement reads and writes. Pure functions, no I/O.
//!
//! Two levels: [`normalize`] / [`fingerprint`] run a hand-written lexer on
//! every statement (about a microsecond); [`analyze`] adds a full parse with
//! `sqlparser` that finds tables and functions, and [`Analyzer`] memoises it
//! per distinct text; [`predicate_columns`] lists the columns a statement
//! filters, joins or sorts on (for the index advisor). When the analysis cannot be sure of what a statement
//! writes it says so: `certain = false` (and `may_write = true` unless the
//! statement is clearly read-only), which a cache must treat as "invalidate
//! everything".
//!
//! What the integrator must know:
//! - `tables_read` names views as written: a view's base tables (and tables
//!   read inside functions) are not known statically; resolve them from the
//!   catalog before relying on table-based invalidation.
//! - Triggers, foreign-key cascades and rules can write tables that no
//!   statement text names; only the change feed sees those writes.
//! - `may_write` does not judge functions: `SELECT f()` is a read here even
//!   if `f` writes; check `functions` against `pg_proc.provolatile`.
//! - `Set { value }` is the raw value text (quotes kept), for GUC tracking.
//! - The normalized text of a multi-statement string keeps `; ` between
//!   statements; each statement's own analysis is in `Analysis::parts`.
//!
//! # Performance
//! Measured with `benches/analyze.rs` over `tests/corpus.sql` (258
//! statements, release build, 2-core machine shared with other builds):
//! normalize + fingerprint ≈ 0.36 µs median per statement under 300 bytes,
//! cold `analyze` ≈ 10 µs per statement, memo hit ≈ 0.1 µs.
#![warn(missing_docs)]

mod analysis;
mod analyzer;
mod columns;
mod error;
mod fallback;
mod keywords;
mod kind;
pub mod lexer;
mod normalize;
mod rows;
mod skeleton;
mod tables;

pub use analysis::{Analysis, analyze};
pub use analyzer::Analyzer;
pub use columns::{ColumnClause, ColumnUse, predicate_columns};
pub use error::SqlError;
pub use kind::StatementKind;
pub use normalize::{Fingerprint, Normalized, fingerprint, normalize};
pub use rows::{CmpOp, Filter, InsertedRows, Operand, TableFilters, inserted_rows, select_filters};
pub use skeleton::skeleton;
pub use tables::TableRef;
