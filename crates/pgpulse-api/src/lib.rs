//! The pgpulse admin REST API (`/api/performance/*`), its authentication and
//! rate limiting, `/metrics`, and the dashboard assets.
#![warn(missing_docs)]
