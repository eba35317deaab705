//! The statements of the workload, as a Node.js application would send
//! them (extended protocol, `$n` parameters, times as `timestamptz`), and
//! the mix: which operation runs how often.

/// A provider's day: `$1` provider, `$2`..`$3` the day.
pub const PROVIDER_SCHEDULE: &str = "SELECT a.id, a.starts_at, a.ends_at, a.status, \
     c.id AS client_id, c.first_name, c.last_name, t.name AS treatment \
     FROM appointments a \
     JOIN clients c ON c.id = a.client_id \
     JOIN treatments t ON t.id = a.treatment_id \
     WHERE a.provider_id = $1 AND a.starts_at >= $2 AND a.starts_at < $3 \
     ORDER BY a.starts_at, a.id";

/// A client's profile by id.
pub const CLIENT_BY_ID: &str = "SELECT id, first_name, last_name, email, phone, date_of_birth, \
     marketing_opt_in, notes, created_at FROM clients WHERE id = $1";

/// A client's profile by e-mail (log-in, front-desk search).
pub const CLIENT_BY_EMAIL: &str = "SELECT id, first_name, last_name, email, phone, \
     date_of_birth, marketing_opt_in, notes, created_at FROM clients WHERE email = $1";

/// A client's treatment history: filters on `appointments.client_id`,
/// which has no index (deliberately), so it scans every appointment.
pub const CLIENT_HISTORY: &str = "SELECT a.id, a.starts_at, a.status, t.name AS treatment, \
     t.category, p.first_name AS provider_first, p.last_name AS provider_last \
     FROM appointments a \
     JOIN treatments t ON t.id = a.treatment_id \
     JOIN providers p ON p.id = a.provider_id \
     WHERE a.client_id = $1 \
     ORDER BY a.starts_at DESC, a.id DESC LIMIT 50";

/// The treatments catalogue (booking page).
pub const CATALOGUE: &str = "SELECT id, name, category, duration_minutes, price \
     FROM treatments WHERE active ORDER BY category, name";

/// The clinic's day (front desk): `$1`..`$2` the day.
pub const DAY_APPOINTMENTS: &str = "SELECT a.id, a.starts_at, a.status, \
     c.first_name, c.last_name, p.last_name AS provider, t.name AS treatment \
     FROM appointments a \
     JOIN clients c ON c.id = a.client_id \
     JOIN providers p ON p.id = a.provider_id \
     JOIN treatments t ON t.id = a.treatment_id \
     WHERE a.starts_at >= $1 AND a.starts_at < $2 \
     ORDER BY a.starts_at, a.id";

/// Revenue by treatment over `$1`..`$2` (a year): slow on purpose, there
/// is no index on `payments (paid_at)`.
pub const REVENUE_REPORT: &str = "SELECT t.category, t.name, count(*) AS payments, \
     sum(pay.amount) AS revenue \
     FROM payments pay \
     JOIN invoices i ON i.id = pay.invoice_id \
     JOIN appointments a ON a.id = i.appointment_id \
     JOIN treatments t ON t.id = a.treatment_id \
     WHERE pay.paid_at >= $1 AND pay.paid_at < $2 \
     GROUP BY t.category, t.name \
     ORDER BY revenue DESC, t.name";

/// Book: `$1` client, `$2` provider, `$3` treatment, `$4`..`$5` the slot.
pub const BOOK: &str = "INSERT INTO appointments \
     (client_id, provider_id, treatment_id, starts_at, ends_at, status, created_at) \
     VALUES ($1, $2, $3, $4, $5, 'booked', now()) RETURNING id";

/// Cancel a booked appointment.
pub const CANCEL: &str =
    "UPDATE appointments SET status = 'cancelled' WHERE id = $1 AND status = 'booked'";

/// Record a payment of an invoice in full (first statement of the
/// payment transaction).
pub const PAY: &str = "INSERT INTO payments (invoice_id, amount, method, paid_at) \
     SELECT id, total, $2, now() FROM invoices WHERE id = $1 AND total > 0";

/// Mark the invoice paid (second statement of the payment transaction).
pub const MARK_PAID: &str = "UPDATE invoices SET status = 'paid' WHERE id = $1";

/// Use stock.
pub const USE_STOCK: &str = "UPDATE inventory SET quantity = greatest(quantity - $1, 0), \
     updated_at = now() WHERE id = $2";

/// One operation of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`PROVIDER_SCHEDULE`].
    ProviderSchedule,
    /// [`CLIENT_BY_ID`].
    ClientById,
    /// [`CLIENT_BY_EMAIL`].
    ClientByEmail,
    /// [`CLIENT_HISTORY`] (missing index).
    ClientHistory,
    /// [`CATALOGUE`].
    Catalogue,
    /// [`DAY_APPOINTMENTS`].
    DayAppointments,
    /// [`REVENUE_REPORT`] (slow).
    RevenueReport,
    /// [`BOOK`].
    Book,
    /// [`CANCEL`].
    Cancel,
    /// [`PAY`] and [`MARK_PAID`] in one transaction.
    Payment,
    /// [`USE_STOCK`].
    UseStock,
}

/// The mix, per 1,000 operations: 90% reads, 10% writes. Front-desk and
/// provider screens (schedules, the day, profiles) dominate; the yearly
/// report is rare, as an owner's dashboard is.
pub const MIX: [(Op, u32); 11] = [
    (Op::ProviderSchedule, 190),
    (Op::ClientById, 220),
    (Op::ClientByEmail, 100),
    (Op::ClientHistory, 60),
    (Op::Catalogue, 130),
    (Op::DayAppointments, 199),
    (Op::RevenueReport, 1),
    (Op::Book, 40),
    (Op::Cancel, 20),
    (Op::Payment, 30),
    (Op::UseStock, 10),
];

impl Op {
    /// True for the operations that change data.
    pub fn writes(self) -> bool {
        matches!(self, Op::Book | Op::Cancel | Op::Payment | Op::UseStock)
    }

    /// The operation for a number in `0..1000`.
    pub fn pick(roll: u32) -> Op {
        let mut left = roll;
        for (op, weight) in MIX {
            if left < weight {
                return op;
            }
            left -= weight;
        }
        Op::ClientById
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::ProviderSchedule => "provider schedule",
            Op::ClientById => "client by id",
            Op::ClientByEmail => "client by e-mail",
            Op::ClientHistory => "client history",
            Op::Catalogue => "catalogue",
            Op::DayAppointments => "day's appointments",
            Op::RevenueReport => "revenue report",
            Op::Book => "book",
            Op::Cancel => "cancel",
            Op::Payment => "payment",
            Op::UseStock => "use stock",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_ninety_percent_reads() {
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u32>(), 1000);
        let writes: u32 = MIX
            .iter()
            .filter(|(op, _)| op.writes())
            .map(|(_, w)| w)
            .sum();
        assert_eq!(writes, 100);
        assert_eq!(Op::pick(0), Op::ProviderSchedule);
        assert_eq!(Op::pick(999), Op::UseStock);
        let counts = (0..1000).fold(std::collections::BTreeMap::new(), |mut m, r| {
            *m.entry(Op::pick(r)).or_insert(0u32) += 1;
            m
        });
        for (op, weight) in MIX {
            assert_eq!(counts[&op], weight, "{op:?}");
        }
    }
}
