//! The med-spa workload: a realistic schema (clients, providers, treatments,
//! appointments, invoices, payments, inventory), a fast deterministic
//! seeder, a concurrent read-mostly workload with per-query latencies, and
//! a self-check that what the workload read through a proxy equals what
//! PostgreSQL holds.
//!
//! `pgpulse bench` runs it against PostgreSQL directly and through pgpulse
//! with the cache off and on; `pgpulse demo` can call [`seed`] and
//! [`run_workload`] the same way.
//!
//! Two flaws are deliberate, so that the advisor and the alerts (later
//! issues) have something real to find:
//! - **Missing index**: `appointments (client_id)` (a foreign key without
//!   an index). A client's treatment history ([`queries::CLIENT_HISTORY`],
//!   about 6% of the workload) scans the whole appointments table.
//! - **Slow report**: revenue by treatment over a year
//!   ([`queries::REVENUE_REPORT`]): there is no index on `payments
//!   (paid_at)`, so it scans and hash-joins payments, invoices and
//!   appointments (hundreds of ms at [`Size::Demo`]).
//!
//! Files: `schema.rs` (DDL), `data.rs` (names, catalogue, clock),
//! `seed.rs` (COPY), `queries.rs` (the statements and the mix),
//! `workload.rs` (the clients), `latency.rs` (percentiles), `check.rs`
//! (the stale-read check).
//!
//! `tests/medspa.rs` compiles these files into the test crate (an inline
//! `#[path]` module listing the same submodules), so the submodules refer
//! to each other by `super::file::Item` and never through `crate::`.

mod check;
mod data;
mod latency;
mod queries;
mod schema;
mod seed;
mod workload;

pub use check::{CheckReport, verify};
#[cfg(test)]
pub use latency::LatencySummary;
pub use seed::{Size, seed};
pub use workload::{
    BACKLOG_PER_SESSION, WorkloadOptions, WorkloadReport, connect, run as run_workload,
};
