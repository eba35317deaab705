//! Throw-away PostgreSQL clusters and Redis servers started from the local
//! binaries on free ports, for pgpulse tests, benchmarks and the demo.
#![warn(missing_docs)]
