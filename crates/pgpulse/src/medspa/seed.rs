//! Seeding: the schema, then every table loaded with `COPY ... FROM STDIN`
//! from a seeded RNG, so that two runs of the same [`Size`] produce the
//! same rows, then sequences and statistics.
//!
//! # Performance
//! Rows are generated here and streamed in ~256 KiB chunks: at
//! [`Size::Demo`] (about 1.4 million rows over seven tables) the load is
//! bounded by PostgreSQL's index maintenance, not by the generator.

use std::fmt::Write as _;
use std::pin::Pin;

use anyhow::Context;
use bytes::Bytes;
use futures::SinkExt;
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_postgres::{Client, CopyInSink};

use super::data::{
    self, AHEAD_DAYS, CLIENT_SALT, DAY, HISTORY_DAYS, PROVIDER_SALT, PROVIDER_TITLES, STOCK, TODAY,
    TREATMENTS,
};
use super::schema;

/// How much data to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The size: 50,000 clients, 500,000 appointments.
    Demo,
    /// For tests and `pgpulse bench --quick`: 2,000 clients, 20,000
    /// appointments.
    Quick,
}

impl Size {
    /// Clients (ids 1..=n).
    pub fn clients(self) -> i64 {
        match self {
            Size::Demo => 50_000,
            Size::Quick => 2_000,
        }
    }

    /// Appointments, spread evenly over the two years before "today" and
    /// the month after.
    pub fn appointments(self) -> i64 {
        match self {
            Size::Demo => 500_000,
            Size::Quick => 20_000,
        }
    }

    /// Providers (injectors, estheticians, ...).
    pub fn providers(self) -> i64 {
        match self {
            Size::Demo => 60,
            Size::Quick => 8,
        }
    }

    /// Lines of stock.
    pub fn inventory(self) -> i64 {
        match self {
            Size::Demo => 300,
            Size::Quick => 60,
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Size::Demo => "demo",
            Size::Quick => "quick",
        }
    }
}

/// The RNG seed of the data set.
const SEED: u64 = 0x6d65_6473_7061; // "medspa"

/// Creates the schema in the (empty) database `client` is connected to and
/// loads a data set of `size`, advancing `progress` by rows loaded (its
/// length is set here). Pass `ProgressBar::hidden()` for no output;
/// indicatif draws nothing when standard error is not a terminal.
pub async fn seed(client: &Client, size: Size, progress: &ProgressBar) -> anyhow::Result<()> {
    client
        .batch_execute(schema::CREATE)
        .await
        .context("cannot create the med-spa schema")?;
    // Invoices and payments are about 0.8 per appointment each.
    let estimate = size.providers()
        + TREATMENTS.len() as i64
        + size.clients()
        + size.inventory()
        + size.appointments() * 26 / 10;
    progress.set_length(estimate.unsigned_abs());
    let mut rng = StdRng::seed_from_u64(SEED);
    load_providers(client, size, &mut rng, progress).await?;
    load_treatments(client, progress).await?;
    load_clients(client, size, &mut rng, progress).await?;
    load_inventory(client, size, &mut rng, progress).await?;
    let invoices = load_appointments(client, size, &mut rng, progress).await?;
    load_invoices_and_payments(client, &invoices, &mut rng, progress).await?;
    progress.set_message("sequences and statistics");
    client.batch_execute(&schema::finish_sql()).await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    progress.set_length(progress.position());
    Ok(())
}

/// One `COPY table (columns) FROM STDIN` in text format.
struct CopyWriter<'a> {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    buf: String,
    pending_rows: u64,
    progress: &'a ProgressBar,
}

/// Bytes buffered before a chunk goes to the server.
const CHUNK: usize = 256 * 1024;

impl<'a> CopyWriter<'a> {
    async fn start(
        client: &Client,
        table: &str,
        columns: &str,
        progress: &'a ProgressBar,
    ) -> anyhow::Result<CopyWriter<'a>> {
        progress.set_message(table.to_owned());
        let sink = client
            .copy_in(&format!("COPY {table} ({columns}) FROM STDIN"))
            .await
            .with_context(|| format!("COPY {table}"))?;
        Ok(CopyWriter {
            sink: Box::pin(sink),
            buf: String::with_capacity(CHUNK + 1024),
            pending_rows: 0,
            progress,
        })
    }

    /// Appends one row: tab-separated fields in COPY's text format (the
    /// generated values contain no tab, newline or backslash; `\N` is NULL).
    async fn row(&mut self, fields: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
        let _ = self.buf.write_fmt(fields);
        self.buf.push('\n');
        self.pending_rows += 1;
        if self.buf.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + 1024));
        self.sink.send(Bytes::from(chunk)).await?;
        self.progress.inc(self.pending_rows);
        self.pending_rows = 0;
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<u64> {
        self.flush().await?;
        Ok(self.sink.as_mut().finish().await?)
    }
}

async fn load_providers(
    client: &Client,
    size: Size,
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut w = CopyWriter::start(
        client,
        "providers",
        "id, first_name, last_name, email, title, active, hired_on",
        progress,
    )
    .await?;
    for id in 1..=size.providers() {
        let (first, last) = data::person_name(id, PROVIDER_SALT);
        let title = PROVIDER_TITLES[(id as usize) % PROVIDER_TITLES.len()];
        let active = !rng.random_bool(0.05);
        let hired = TODAY - rng.random_range(90..3650) * DAY;
        w.row(format_args!(
            "{id}\t{first}\t{last}\t{}.{}.p{id}@clinic.example\t{title}\t{active}\t{}",
            first.to_lowercase(),
            last.to_lowercase(),
            data::date_text(hired)
        ))
        .await?;
    }
    w.finish().await?;
    Ok(())
}

async fn load_treatments(client: &Client, progress: &ProgressBar) -> anyhow::Result<()> {
    let mut w = CopyWriter::start(
        client,
        "treatments",
        "id, name, category, duration_minutes, price, active",
        progress,
    )
    .await?;
    for (i, t) in TREATMENTS.iter().enumerate() {
        // One retired treatment, so that "active" filters something.
        let active = t.name != "Dysport (per area)";
        w.row(format_args!(
            "{}\t{}\t{}\t{}\t{}\t{active}",
            i + 1,
            t.name,
            t.category,
            t.minutes,
            data::money_text(t.cents)
        ))
        .await?;
    }
    w.finish().await?;
    Ok(())
}

const CLIENT_NOTES: [&str; 5] = [
    "prefers morning appointments",
    "sensitive skin",
    "allergic to lidocaine",
    "referred by a friend",
    "VIP membership",
];

async fn load_clients(
    client: &Client,
    size: Size,
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut w = CopyWriter::start(
        client,
        "clients",
        "id, first_name, last_name, email, phone, date_of_birth, marketing_opt_in, notes, \
         created_at",
        progress,
    )
    .await?;
    let n = size.clients();
    // Sign-ups over five years, older ids first.
    let span = 5 * 365 * DAY;
    for id in 1..=n {
        let (first, last) = data::person_name(id, CLIENT_SALT);
        let birth = if rng.random_bool(0.7) {
            data::date_text(rng.random_range(-10 * 365..35 * 365) * DAY)
        } else {
            "\\N".to_owned()
        };
        let notes = if rng.random_bool(0.1) {
            CLIENT_NOTES[rng.random_range(0..CLIENT_NOTES.len())]
        } else {
            "\\N"
        };
        let created = TODAY - span + span * (id - 1) / n + rng.random_range(0..DAY);
        w.row(format_args!(
            "{id}\t{first}\t{last}\t{}\t(555) {:03}-{:04}\t{birth}\t{}\t{notes}\t{}",
            data::client_email(id),
            rng.random_range(100..1000),
            rng.random_range(0..10_000),
            rng.random_bool(0.4),
            data::timestamp_text(created)
        ))
        .await?;
    }
    w.finish().await?;
    Ok(())
}

async fn load_inventory(
    client: &Client,
    size: Size,
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut w = CopyWriter::start(
        client,
        "inventory",
        "id, sku, name, treatment_id, unit, quantity, reorder_level, updated_at",
        progress,
    )
    .await?;
    for id in 1..=size.inventory() {
        let (unit, name) = STOCK[(id as usize) % STOCK.len()];
        let treatment = if rng.random_bool(0.8) {
            rng.random_range(1..=TREATMENTS.len()).to_string()
        } else {
            "\\N".to_owned()
        };
        w.row(format_args!(
            "{id}\tSKU-{id:05}\t{name} (lot {})\t{treatment}\t{unit}\t{}\t{}\t{}",
            rng.random_range(1000..10_000),
            rng.random_range(0..500),
            rng.random_range(10..60),
            data::timestamp_text(TODAY - rng.random_range(0..30 * DAY))
        ))
        .await?;
    }
    w.finish().await?;
    Ok(())
}

/// What an invoice needs from its completed appointment.
#[derive(Debug, Clone, Copy)]
struct Billable {
    appointment_id: i64,
    client_id: i64,
    ends_at: i64,
    cents: i64,
}

/// The hot tenth of clients: they book half of all appointments, as
/// regulars do.
pub fn regulars(clients: i64) -> i64 {
    (clients / 10).max(1)
}

async fn load_appointments(
    client: &Client,
    size: Size,
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<Billable>> {
    let mut w = CopyWriter::start(
        client,
        "appointments",
        "id, client_id, provider_id, treatment_id, starts_at, ends_at, status, notes, created_at",
        progress,
    )
    .await?;
    let n = size.appointments();
    let days = HISTORY_DAYS + AHEAD_DAYS;
    let first_day = TODAY - HISTORY_DAYS * DAY;
    let mut billable = Vec::with_capacity(n as usize);
    // Ids follow time, as they do when appointments are booked over years.
    for i in 0..n {
        let id = i + 1;
        let day = first_day + (i * days / n) * DAY;
        // 30-minute slots from 09:00 to 17:30.
        let starts = day + 9 * 3600 + rng.random_range(0..18) * 1800;
        let treatment = rng.random_range(0..TREATMENTS.len());
        let ends = starts + TREATMENTS[treatment].minutes * 60;
        let provider = rng.random_range(1..=size.providers());
        let client_id = if rng.random_bool(0.5) {
            rng.random_range(1..=regulars(size.clients()))
        } else {
            rng.random_range(1..=size.clients())
        };
        let roll: f64 = rng.random();
        let status = if day < TODAY {
            match roll {
                r if r < 0.85 => "completed",
                r if r < 0.94 => "cancelled",
                _ => "no_show",
            }
        } else if roll < 0.93 {
            "booked"
        } else {
            "cancelled"
        };
        let notes = if rng.random_bool(0.05) {
            "first visit"
        } else {
            "\\N"
        };
        let created = starts - rng.random_range(1..=30) * DAY - rng.random_range(0..DAY);
        w.row(format_args!(
            "{id}\t{client_id}\t{provider}\t{}\t{}\t{}\t{status}\t{notes}\t{}",
            treatment + 1,
            data::timestamp_text(starts),
            data::timestamp_text(ends),
            data::timestamp_text(created)
        ))
        .await?;
        if status == "completed" {
            billable.push(Billable {
                appointment_id: id,
                client_id,
                ends_at: ends,
                cents: TREATMENTS[treatment].cents,
            });
        }
    }
    w.finish().await?;
    Ok(billable)
}

async fn load_invoices_and_payments(
    client: &Client,
    billable: &[Billable],
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let mut paid = Vec::with_capacity(billable.len());
    let mut w = CopyWriter::start(
        client,
        "invoices",
        "id, appointment_id, client_id, issued_at, subtotal, tax, total, status",
        progress,
    )
    .await?;
    for (i, b) in billable.iter().enumerate() {
        let id = i as i64 + 1;
        let tax = b.cents * 8 / 100;
        let total = b.cents + tax;
        // Recent invoices are more often still open.
        let open_odds = if b.ends_at > TODAY - 14 * DAY {
            0.3
        } else {
            0.03
        };
        let status = if total > 0 && rng.random_bool(open_odds) {
            "open"
        } else {
            "paid"
        };
        w.row(format_args!(
            "{id}\t{}\t{}\t{}\t{}\t{}\t{}\t{status}",
            b.appointment_id,
            b.client_id,
            data::timestamp_text(b.ends_at),
            data::money_text(b.cents),
            data::money_text(tax),
            data::money_text(total),
        ))
        .await?;
        if status == "paid" && total > 0 {
            paid.push((id, total, b.ends_at));
        }
    }
    w.finish().await?;
    let mut w = CopyWriter::start(
        client,
        "payments",
        "invoice_id, amount, method, paid_at",
        progress,
    )
    .await?;
    for (invoice, total, issued) in paid {
        let method = match rng.random_range(0..100) {
            0..80 => "card",
            80..88 => "cash",
            88..95 => "gift_card",
            _ => "financing",
        };
        w.row(format_args!(
            "{invoice}\t{}\t{method}\t{}",
            data::money_text(total),
            data::timestamp_text(issued + rng.random_range(0..3600))
        ))
        .await?;
    }
    w.finish().await?;
    Ok(())
}
