//! What a `pgpulse bench` run does, derived from its arguments.

use std::path::PathBuf;

use super::BenchArgs;
use super::medspa::MedspaPlan;
use super::pgbench::{Protocol, Scenario, Script};
use super::report::{DIRECT, PGPULSE_CACHE_OFF, PGPULSE_CACHE_ON};

/// The time budget of a full run (the limit), set-up included.
pub(super) const FULL_RUN_BUDGET_SECONDS: u64 = 15 * 60;

/// What to run, derived from the arguments.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) scale: u32,
    /// Read-only scenarios first, writing ones ([`Script::writes`]) last.
    pub(super) throughput: Vec<Scenario>,
    pub(super) latency: Scenario,
    pub(super) idle_clients: usize,
    pub(super) pool_size: u32,
    pub(super) output: PathBuf,
    /// The med-spa runs (against [`MEDSPA_TARGETS`] targets).
    pub(super) medspa: MedspaPlan,
}

/// The med-spa workload runs against PostgreSQL and pgpulse with the cache
/// off and on, then, after the advisor's index, against
/// [`MEDSPA_INDEXED_TARGETS`].
pub(super) const MEDSPA_TARGETS: [&str; 3] = [DIRECT, PGPULSE_CACHE_OFF, PGPULSE_CACHE_ON];
/// The med-spa runs after the advisor's index recommendations.
pub(super) const MEDSPA_INDEXED_TARGETS: [&str; 2] = [DIRECT, PGPULSE_CACHE_ON];

impl Plan {
    pub(super) fn from_args(args: &BenchArgs) -> Plan {
        let seconds = args
            .duration
            // 15 s per pgbench run: a full run measured 13 min 19 s with
            // 20 s (2 cores, 2026-12-07), too close to the 15-minute
            // budget once `make bench` builds the release binary first.
            .unwrap_or(if args.quick { 5 } else { 15 })
            .max(1);
        let clients = args.clients.max(1);
        let scenario = |protocol: Protocol, threads: u32| Scenario {
            name: protocol.as_str().to_owned(),
            script: Script::SelectOnly,
            protocol,
            clients,
            threads: threads.clamp(1, clients),
            seconds,
        };
        let tpcb = Scenario {
            name: TPCB_SCENARIO.into(),
            script: Script::TpcbLike,
            ..scenario(Protocol::Simple, 2)
        };
        Plan {
            scale: if args.quick { 1 } else { 10 },
            throughput: vec![
                scenario(Protocol::Simple, 2),
                scenario(Protocol::Extended, 2),
                // pgbench 15 prepares synchronously on first use: with
                // fewer threads than clients, a client waiting for a pool
                // slot blocks its thread-mates, which may hold the slots.
                scenario(Protocol::Prepared, clients),
                Scenario {
                    name: "extended, 100k hot rows".into(),
                    script: Script::HotSelect,
                    ..scenario(Protocol::Extended, 2)
                },
                // Writes (balances, history): after every read-only run.
                tpcb,
            ],
            latency: Scenario {
                name: "1 client, extended".into(),
                script: Script::SelectOnly,
                protocol: Protocol::Extended,
                clients: 1,
                threads: 1,
                seconds: seconds.min(10),
            },
            idle_clients: args
                .idle_clients
                .unwrap_or(if args.quick { 1_000 } else { 10_000 }),
            pool_size: args.pool_size.max(1),
            output: args.output.clone(),
            medspa: {
                let seconds = args
                    .medspa_seconds
                    .unwrap_or(if args.quick { 4 } else { 20 })
                    .max(1);
                MedspaPlan {
                    size: if args.quick {
                        crate::medspa::Size::Quick
                    } else {
                        crate::medspa::Size::Demo
                    },
                    warmup_seconds: (seconds / 4).max(2),
                    seconds,
                    clients,
                    rate: args
                        .medspa_rate
                        .filter(|r| r.is_finite() && *r > 0.0)
                        .unwrap_or(if args.quick { 40.0 } else { 100.0 }),
                }
            },
        }
    }

    /// Seconds of timed pgbench runs against `targets` targets, plus the
    /// med-spa runs (warm-up included) against [`MEDSPA_TARGETS`].
    pub(super) fn total_seconds(&self, targets: usize) -> u64 {
        let per_target: u64 = self.throughput.iter().map(|s| s.seconds).sum();
        let medspa = (self.medspa.warmup_seconds + self.medspa.seconds)
            * (MEDSPA_TARGETS.len() + MEDSPA_INDEXED_TARGETS.len()) as u64;
        (per_target + self.latency.seconds) * targets as u64 + medspa
    }

    /// A generous estimate of what is not a timed pgbench run: starting
    /// PostgreSQL and the poolers, pgbench's connections and log reading
    /// (30 s), `pgbench -i` (~1 s per scale unit) and the idle-memory
    /// readings of two poolers (~6 s per 1,000 clients; a debug build
    /// took 62 s for all of this at scale 1 with 10,000 clients), plus
    /// seeding the med-spa data set and its self-checks (60 s at the demo
    /// size, 5 s at the quick one).
    pub(super) fn overhead_seconds(&self) -> u64 {
        let medspa = match self.medspa.size {
            crate::medspa::Size::Demo => 60,
            crate::medspa::Size::Quick => 5,
        };
        30 + u64::from(self.scale) + (self.idle_clients as u64 * 6).div_ceil(1000) + medspa
    }

    /// One line describing the settings of the pgbench runs, for the report.
    pub(super) fn settings(&self) -> String {
        let s = &self.throughput[0];
        format!(
            "`pgbench -i -s {scale}`; per target `pgbench -n -S -c {c} -j {j} -T {t} -M MODE -l` \
         (`-j {c}` for `-M prepared`: pgbench 15 prepares synchronously and would deadlock \
         itself behind a transaction-mode pooler with fewer threads than clients), targets \
         run one after the other within each scenario; latency: `-c 1 -j 1 -T {lt} -M extended`; \
         `{tpcb}`: the default TPC-B-like mix, `-M simple`, which writes, so it runs after \
         all the others, in two passes of `-T {half}` per target, in order then in reverse \
         (ABBA: no target always gets the most-written database), figures over both; \
         both poolers in transaction \
         mode with pool size {pool}; three pgpulse processes run `serve` with its zero-config \
         defaults plus, for \"cache off\", `PGPULSE_CACHE_MODE=off`, for \"stats off\", \
         `PGPULSE_STATS=off PGPULSE_CACHE_MODE=off`, and for \"cache on\", \
         `PGPULSE_CACHE_MODE=auto` (the default); cache hit rate: hits / (hits + misses) \
         of `SHOW CACHE` on pgpulse's admin console, read before and after each run; \
         percentiles from pgbench's per-transaction logs",
            tpcb = TPCB_SCENARIO,
            scale = self.scale,
            c = s.clients,
            j = s.threads,
            t = s.seconds,
            half = s.seconds.div_ceil(2),
            lt = self.latency.seconds,
            pool = self.pool_size,
        )
    }

    /// The read-only throughput scenarios, then the latency run, then the
    /// writing scenarios: what runs, in order, each against every target.
    pub(super) fn run_order(&self) -> Vec<&Scenario> {
        let (writing, reading): (Vec<&Scenario>, Vec<&Scenario>) =
            self.throughput.iter().partition(|s| s.script.writes());
        reading
            .into_iter()
            .chain(std::iter::once(&self.latency))
            .chain(writing)
            .collect()
    }
}

/// Name of the TPC-B-like scenario in the report.
pub(super) const TPCB_SCENARIO: &str = "tpcb mix (simple)";
