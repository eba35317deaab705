//! SQL analysis for pgpulse: a PostgreSQL lexer, a normalizer that replaces
//! constants by `$n`, a 64-bit fingerprint, a statement classifier and the
//! sets of tables a statement reads and writes. Pure functions, no I/O.
#![warn(missing_docs)]
