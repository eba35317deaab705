//! The stale-read check: after a run, the workload's own reads (same
//! statements, same parameters, so a cache would answer them) go through
//! the target and straight to PostgreSQL; every row must match byte for
//! byte. Nothing writes while it runs, and every write of the run went
//! through the target, so any difference is a stale or wrong answer.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Config, Row};

use super::data;
use super::workload::{Facts, Read, connect, error_text};

/// What the check compared and what differed.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Reads compared.
    pub compared: u64,
    /// One line per read whose answers differ (a stale read is a data bug).
    pub stale: Vec<String>,
}

impl CheckReport {
    /// True when every answer matched.
    pub fn is_clean(&self) -> bool {
        self.stale.is_empty()
    }
}

/// A column's value as PostgreSQL sent it (binary format), or NULL.
#[derive(Debug, PartialEq, Eq)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn raw_rows(rows: &[Row]) -> Result<Vec<Vec<Raw>>, tokio_postgres::Error> {
    rows.iter()
        .map(|r| (0..r.len()).map(|i| r.try_get::<_, Raw>(i)).collect())
        .collect()
}

/// The reads compared: the most active clients and a spread of others
/// (profile by id and by e-mail, history), every provider's schedule for
/// today and the next two days, the clinic's days around today, the
/// catalogue and the revenue report.
fn sample(f: &Facts) -> Vec<Read> {
    let mut rng = StdRng::seed_from_u64(0x00c4_ec4a);
    let mut clients: Vec<i64> = (1..=f.active_clients().min(20)).collect();
    clients.extend((0..20).map(|_| rng.random_range(1..=f.clients)));
    let mut reads = Vec::new();
    for id in clients {
        reads.push(Read::ClientById(id as i32));
        reads.push(Read::ClientByEmail(data::client_email(id)));
        reads.push(Read::ClientHistory(id as i32));
    }
    for provider in 1..=f.providers.min(60) {
        for day in 0..3 {
            reads.push(Read::ProviderSchedule {
                provider: provider as i32,
                day,
            });
        }
    }
    reads.extend((-1..=7).map(Read::DayAppointments));
    reads.push(Read::Catalogue);
    reads.push(Read::RevenueReport);
    reads
}

/// Compares the sample's answers through `target` with PostgreSQL's at
/// `direct` (both with the med-spa database). Errors on either side are
/// failures of the check, not stale reads.
pub async fn verify(target: &Config, direct: &Config) -> anyhow::Result<CheckReport> {
    let through = connect(target).await?;
    let pg = connect(direct).await?;
    let facts = Facts::read(&pg).await?;
    let mut report = CheckReport::default();
    for read in sample(&facts) {
        let got = answer(&through, &read).await.map_err(|e| {
            anyhow::anyhow!("self-check {read:?} through the target: {}", error_text(&e))
        })?;
        let want = answer(&pg, &read)
            .await
            .map_err(|e| anyhow::anyhow!("self-check {read:?} directly: {}", error_text(&e)))?;
        report.compared += 1;
        if got != want {
            let first = got.iter().zip(&want).position(|(a, b)| a != b);
            report.stale.push(format!(
                "{read:?}: {} rows through the target, {} in PostgreSQL{}",
                got.len(),
                want.len(),
                first.map_or_else(String::new, |i| format!(", first difference at row {i}"))
            ));
        }
    }
    Ok(report)
}

async fn answer(client: &Client, read: &Read) -> Result<Vec<Vec<Raw>>, tokio_postgres::Error> {
    raw_rows(&read.run(client).await?)
}
