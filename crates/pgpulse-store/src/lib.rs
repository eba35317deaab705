//! Persistence of pgpulse performance data behind one trait, with SQLite
//! (embedded default) and PostgreSQL implementations.
#![warn(missing_docs)]
