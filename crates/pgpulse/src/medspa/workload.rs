//! The workload: `clients` concurrent sessions (one connection each, as
//! node-postgres pools hand out), each picking operations from
//! [`MIX`](super::queries::MIX) with a hot-skewed choice of clients and
//! days, timed one by one.
//!
//! Two ways to drive them:
//! - **closed loop** (`rate: None`): each session starts its next
//!   operation as soon as the last one ends, flat out. It measures a
//!   saturated machine: latencies are mostly queueing.
//! - **open loop** (`rate: Some(r)`): operations arrive at random
//!   (Poisson) times, `r` a second on average, whatever the target's
//!   speed, and go to the first free session, as requests reach a web
//!   application. Latency runs from the arrival being handed to the
//!   sessions to the reply, so time spent waiting for a free session
//!   counts (no coordinated omission); the timer's own lateness does not.
//!   Arrivals that find every session busy and the backlog
//!   ([`BACKLOG_PER_SESSION`] per session) full are shed and counted.
//!   Each arrival carries its own RNG seed, so every target gets the same
//!   operations with the same parameters.
//!
//! Statements go out as node-postgres sends them: one unnamed `Parse`,
//! `Bind`, `Describe`, `Execute`, `Sync` per query with typed parameters
//! (`query_typed`); the payment is a `BEGIN` ... `COMMIT` transaction.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row};

use super::data::{self, AHEAD_DAYS, DAY, TODAY};
use super::latency::LatencySummary;
use super::queries::{self as q, Op};

/// What to run, against what.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Where to connect (PostgreSQL or a proxy in front of it), with the
    /// med-spa database.
    pub config: Config,
    /// Concurrent sessions.
    pub clients: usize,
    /// How long to run (operations started before the end finish).
    pub duration: Duration,
    /// RNG seed; in a closed loop session `i` uses `seed + i`.
    pub seed: u64,
    /// Operations per second (open loop), or `None` for a closed loop.
    pub rate: Option<f64>,
}

/// Open loop: arrivals queued per session before new ones are shed.
pub const BACKLOG_PER_SESSION: usize = 8;

/// Latency thresholds of [`WorkloadReport::slow`], ms: pgpulse's default
/// slow-query threshold (1 s) and a tenth of it.
pub const SLOW_THRESHOLDS_MS: [u32; 2] = [100, 1000];

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct WorkloadReport {
    /// From the start of the first operation to the end of the last.
    pub elapsed: Duration,
    /// Read operations that succeeded.
    pub reads: LatencySummary,
    /// Write operations that succeeded (a payment transaction counts once).
    pub writes: LatencySummary,
    /// Every operation that succeeded.
    pub all: LatencySummary,
    /// Per operation, in [`Op`] order.
    pub per_op: Vec<(Op, LatencySummary)>,
    /// Operations that failed.
    pub errors: u64,
    /// The first few failures' messages.
    pub first_errors: Vec<String>,
    /// Operations (reads and writes) that took longer than each of
    /// [`SLOW_THRESHOLDS_MS`].
    pub slow: [u64; 2],
    /// Open loop: arrivals shed because every session was busy and the
    /// backlog was full.
    pub shed: u64,
    /// Open loop: arrivals handed out (completed + failed + shed).
    pub arrivals: u64,
}

impl WorkloadReport {
    /// The share of operations slower than `SLOW_THRESHOLDS_MS[i]`.
    pub fn slow_share(&self, i: usize) -> f64 {
        if self.all.count == 0 {
            0.0
        } else {
            self.slow[i] as f64 / self.all.count as f64
        }
    }

    /// Successful operations per second.
    pub fn queries_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.all.count as f64 / secs
        } else {
            0.0
        }
    }
}

/// The shape of the data set, read once before the run so that the
/// workload fits any [`Size`](super::seed::Size).
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// Highest client id.
    pub clients: i64,
    /// Highest provider id.
    pub providers: i64,
    /// Highest treatment id.
    pub treatments: i64,
    /// Highest inventory id.
    pub inventory: i64,
    /// First appointment id from "today" on (ids follow time).
    pub first_upcoming: i64,
    /// Highest appointment id at the start.
    pub last_appointment: i64,
    /// Highest invoice id.
    pub invoices: i64,
}

impl Facts {
    /// Reads the facts through `client`.
    pub async fn read(client: &Client) -> anyhow::Result<Facts> {
        let today = data::system_time(TODAY);
        let row = client
            .query_one(
                "SELECT (SELECT max(id) FROM clients)::int8, \
                 (SELECT max(id) FROM providers)::int8, \
                 (SELECT max(id) FROM treatments)::int8, \
                 (SELECT max(id) FROM inventory)::int8, \
                 (SELECT min(id) FROM appointments WHERE starts_at >= $1)::int8, \
                 (SELECT max(id) FROM appointments)::int8, \
                 (SELECT max(id) FROM invoices)::int8",
                &[&today],
            )
            .await
            .context("cannot read the med-spa data set (is it seeded?)")?;
        let get = |i: usize| -> anyhow::Result<i64> {
            row.get::<_, Option<i64>>(i)
                .filter(|&v| v > 0)
                .context("the med-spa data set is incomplete")
        };
        Ok(Facts {
            clients: get(0)?,
            providers: get(1)?,
            treatments: get(2)?,
            inventory: get(3)?,
            first_upcoming: get(4)?,
            last_appointment: get(5)?,
            invoices: get(6)?,
        })
    }

    /// The clients read most: the most active fiftieth (at least 10),
    /// 80% of lookups.
    pub fn active_clients(&self) -> i64 {
        (self.clients / 50).max(10).min(self.clients)
    }

    fn client(&self, rng: &mut StdRng) -> i32 {
        let id = if rng.random_bool(0.8) {
            rng.random_range(1..=self.active_clients())
        } else {
            rng.random_range(1..=self.clients)
        };
        id as i32
    }
}

/// A read with its parameters: what the workload runs and what the
/// self-check ([`verify`](super::check::verify)) repeats.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// A provider's day (`day`: days from [`TODAY`]).
    ProviderSchedule {
        /// Provider id.
        provider: i32,
        /// Days from today.
        day: i64,
    },
    /// A client by id.
    ClientById(i32),
    /// A client by e-mail.
    ClientByEmail(String),
    /// A client's treatment history.
    ClientHistory(i32),
    /// The treatments catalogue.
    Catalogue,
    /// The clinic's day.
    DayAppointments(i64),
    /// Revenue by treatment over the year before today.
    RevenueReport,
}

/// Start and end of day `offset` from [`TODAY`].
fn day_bounds(offset: i64) -> (SystemTime, SystemTime) {
    let start = TODAY + offset * DAY;
    (data::system_time(start), data::system_time(start + DAY))
}

impl Read {
    /// Runs it through `client` (one round trip, unnamed statement).
    pub async fn run(&self, client: &Client) -> Result<Vec<Row>, tokio_postgres::Error> {
        match self {
            Read::ProviderSchedule { provider, day } => {
                let (from, to) = day_bounds(*day);
                let p: [(&(dyn ToSql + Sync), Type); 3] = [
                    (provider, Type::INT4),
                    (&from, Type::TIMESTAMPTZ),
                    (&to, Type::TIMESTAMPTZ),
                ];
                client.query_typed(q::PROVIDER_SCHEDULE, &p).await
            }
            Read::ClientById(id) => {
                client
                    .query_typed(q::CLIENT_BY_ID, &[(id, Type::INT4)])
                    .await
            }
            Read::ClientByEmail(email) => {
                client
                    .query_typed(q::CLIENT_BY_EMAIL, &[(email, Type::TEXT)])
                    .await
            }
            Read::ClientHistory(id) => {
                client
                    .query_typed(q::CLIENT_HISTORY, &[(id, Type::INT4)])
                    .await
            }
            Read::Catalogue => client.query_typed(q::CATALOGUE, &[]).await,
            Read::DayAppointments(day) => {
                let (from, to) = day_bounds(*day);
                let p: [(&(dyn ToSql + Sync), Type); 2] =
                    [(&from, Type::TIMESTAMPTZ), (&to, Type::TIMESTAMPTZ)];
                client.query_typed(q::DAY_APPOINTMENTS, &p).await
            }
            Read::RevenueReport => {
                let from = data::system_time(TODAY - 365 * DAY);
                let to = data::system_time(TODAY);
                let p: [(&(dyn ToSql + Sync), Type); 2] =
                    [(&from, Type::TIMESTAMPTZ), (&to, Type::TIMESTAMPTZ)];
                client.query_typed(q::REVENUE_REPORT, &p).await
            }
        }
    }

    /// The read of `op` (a read operation) with skewed parameters: most
    /// lookups are of active clients and of today.
    fn pick(op: Op, rng: &mut StdRng, f: &Facts) -> Read {
        match op {
            Op::ProviderSchedule => {
                let roll: f64 = rng.random();
                let day = if roll < 0.7 {
                    0
                } else if roll < 0.9 {
                    rng.random_range(-3..=3)
                } else {
                    rng.random_range(-30..AHEAD_DAYS)
                };
                Read::ProviderSchedule {
                    provider: rng.random_range(1..=f.providers) as i32,
                    day,
                }
            }
            Op::ClientByEmail => Read::ClientByEmail(data::client_email(i64::from(f.client(rng)))),
            Op::ClientHistory => Read::ClientHistory(f.client(rng)),
            Op::Catalogue => Read::Catalogue,
            Op::DayAppointments => Read::DayAppointments(if rng.random_bool(0.85) {
                0
            } else {
                rng.random_range(-7..=7)
            }),
            Op::RevenueReport => Read::RevenueReport,
            _ => Read::ClientById(f.client(rng)),
        }
    }
}

/// Runs one write operation.
async fn write(
    client: &mut Client,
    op: Op,
    rng: &mut StdRng,
    f: &Facts,
) -> Result<(), tokio_postgres::Error> {
    match op {
        Op::Book => {
            let start = TODAY
                + rng.random_range(1..=AHEAD_DAYS) * DAY
                + 9 * 3600
                + rng.random_range(0..18) * 1800;
            let treatment = rng.random_range(1..=f.treatments) as i32;
            let (client_id, provider) = (f.client(rng), rng.random_range(1..=f.providers) as i32);
            let (from, to) = (data::system_time(start), data::system_time(start + 3600));
            let p: [(&(dyn ToSql + Sync), Type); 5] = [
                (&client_id, Type::INT4),
                (&provider, Type::INT4),
                (&treatment, Type::INT4),
                (&from, Type::TIMESTAMPTZ),
                (&to, Type::TIMESTAMPTZ),
            ];
            client.query_typed(q::BOOK, &p).await.map(drop)
        }
        Op::Cancel => {
            let id = rng.random_range(f.first_upcoming..=f.last_appointment);
            client
                .execute_typed(q::CANCEL, &[(&id, Type::INT8)])
                .await
                .map(drop)
        }
        Op::Payment => {
            // Recent invoices are the ones still open.
            let id = rng.random_range((f.invoices - f.invoices / 20).max(1)..=f.invoices);
            let method = ["card", "card", "card", "cash", "gift_card"][rng.random_range(0..5)];
            let tx = client.transaction().await?;
            tx.execute_typed(q::PAY, &[(&id, Type::INT8), (&method, Type::TEXT)])
                .await?;
            tx.execute_typed(q::MARK_PAID, &[(&id, Type::INT8)]).await?;
            tx.commit().await
        }
        _ => {
            let (used, id) = (
                rng.random_range(1..=3_i32),
                rng.random_range(1..=f.inventory) as i32,
            );
            client
                .execute_typed(q::USE_STOCK, &[(&used, Type::INT4), (&id, Type::INT4)])
                .await
                .map(drop)
        }
    }
}

/// Connects to `config`, driving the connection on a task.
pub async fn connect(config: &Config) -> anyhow::Result<Client> {
    let (client, connection) = config.connect(NoTls).await.context("cannot connect")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The message of an error, with PostgreSQL's text when it has one.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// What one session measured.
#[derive(Debug, Default)]
struct Session {
    samples: BTreeMap<Op, Vec<u32>>,
    errors: u64,
    first_errors: Vec<String>,
}

impl Session {
    fn record(&mut self, op: Op, started: Instant, result: Result<(), tokio_postgres::Error>) {
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        match result {
            Ok(()) => self.samples.entry(op).or_default().push(micros),
            Err(e) => {
                self.errors += 1;
                if self.first_errors.len() < 3 {
                    self.first_errors
                        .push(format!("{}: {}", op.name(), error_text(&e)));
                }
            }
        }
    }
}

/// Picks one operation with `rng` and runs it.
async fn one_operation(
    client: &mut Client,
    rng: &mut StdRng,
    facts: &Facts,
) -> (Op, Result<(), tokio_postgres::Error>) {
    let op = Op::pick(rng.random_range(0..1000));
    let result = if op.writes() {
        write(client, op, rng, facts).await
    } else {
        Read::pick(op, rng, facts).run(client).await.map(drop)
    };
    (op, result)
}

/// A closed-loop session: the next operation starts when the last ends.
async fn session(mut client: Client, facts: Facts, seed: u64, deadline: Instant) -> Session {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Session::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let (op, result) = one_operation(&mut client, &mut rng, &facts).await;
        out.record(op, started, result);
        if client.is_closed() {
            break;
        }
    }
    out
}

/// An open-loop arrival: when it was handed to the sessions, and the seed
/// of the RNG that picks its operation and parameters.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Instant,
    seed: u64,
}

type Arrivals = std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Arrival>>>;

/// An open-loop session: takes arrivals until the queue closes.
async fn serve_arrivals(mut client: Client, facts: Facts, arrivals: Arrivals) -> Session {
    let mut out = Session::default();
    loop {
        let next = arrivals.lock().await.recv().await;
        let Some(arrival) = next else { break };
        let mut rng = StdRng::seed_from_u64(arrival.seed);
        let (op, result) = one_operation(&mut client, &mut rng, &facts).await;
        out.record(op, arrival.at, result);
        if client.is_closed() {
            break;
        }
    }
    out
}

/// Hands out arrivals at Poisson times, `rate` a second, until `deadline`;
/// returns how many there were and how many of them were shed. The times
/// follow from `seed` alone, not from how fast the target answers.
async fn dispatch(
    tx: tokio::sync::mpsc::Sender<Arrival>,
    rate: f64,
    seed: u64,
    deadline: Instant,
) -> (u64, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut due = Instant::now();
    let (mut arrivals, mut shed) = (0, 0);
    loop {
        // Exponential gaps: 1 - U is in (0, 1], so the logarithm is finite.
        let u: f64 = rng.random();
        due += Duration::from_secs_f64(-(1.0 - u).ln() / rate);
        if due >= deadline {
            return (arrivals, shed);
        }
        tokio::time::sleep_until(due.into()).await;
        let arrival = Arrival {
            at: Instant::now(),
            seed: rng.random(),
        };
        arrivals += 1;
        if tx.try_send(arrival).is_err() {
            shed += 1;
        }
    }
}

/// Runs the workload: connects every session first, then runs them all
/// for `opts.duration`.
pub async fn run(opts: &WorkloadOptions) -> anyhow::Result<WorkloadReport> {
    let facts = Facts::read(&connect(&opts.config).await?).await?;
    let mut clients = Vec::with_capacity(opts.clients);
    for _ in 0..opts.clients.max(1) {
        clients.push(connect(&opts.config).await?);
    }
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut shed = None;
    let tasks: Vec<_> = match opts.rate {
        None => clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                tokio::spawn(session(
                    c,
                    facts,
                    opts.seed.wrapping_add(i as u64),
                    deadline,
                ))
            })
            .collect(),
        Some(rate) => {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "the rate must be positive, got {rate}"
            );
            let (tx, rx) = tokio::sync::mpsc::channel(clients.len() * BACKLOG_PER_SESSION);
            let rx: Arrivals = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
            shed = Some(tokio::spawn(dispatch(tx, rate, opts.seed, deadline)));
            clients
                .into_iter()
                .map(|c| tokio::spawn(serve_arrivals(c, facts, rx.clone())))
                .collect()
        }
    };
    let mut by_op: BTreeMap<Op, Vec<u32>> = BTreeMap::new();
    let mut report = WorkloadReport::default();
    for task in tasks {
        let s = task.await.context("a workload session panicked")?;
        for (op, samples) in s.samples {
            by_op.entry(op).or_default().extend(samples);
        }
        report.errors += s.errors;
        for e in s.first_errors {
            if report.first_errors.len() < 5 {
                report.first_errors.push(e);
            }
        }
    }
    if let Some(shed) = shed {
        (report.arrivals, report.shed) = shed.await.context("the dispatcher panicked")?;
    }
    report.elapsed = started.elapsed();
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    for (op, samples) in by_op {
        if op.writes() {
            writes.extend_from_slice(&samples);
        } else {
            reads.extend_from_slice(&samples);
        }
        report
            .per_op
            .push((op, LatencySummary::from_micros(samples)));
    }
    let all: Vec<u32> = reads.iter().chain(&writes).copied().collect();
    for (count, ms) in report.slow.iter_mut().zip(SLOW_THRESHOLDS_MS) {
        *count = all.iter().filter(|&&us| us > ms * 1000).count() as u64;
    }
    report.reads = LatencySummary::from_micros(reads);
    report.writes = LatencySummary::from_micros(writes);
    report.all = LatencySummary::from_micros(all);
    Ok(report)
}
