//! PostgreSQL protocol v3 for pgpulse: a framing codec, typed frontend and
//! backend messages kept as `Bytes` and parsed lazily, startup / SSL / GSS /
//! cancel packets, and server-side SCRAM-SHA-256 and md5 authentication.
#![warn(missing_docs)]
