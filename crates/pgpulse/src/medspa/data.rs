//! The fixed parts of the data set: the clinic's "today", names, the
//! treatment catalogue, and how a client's name and e-mail follow from its
//! id (so the workload can look a client up by e-mail without asking).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The clinic's "today": 2025-06-02 00:00 UTC (a Monday), in Unix seconds.
/// A fixed day rather than the wall clock keeps the data set and the
/// workload's parameters identical from run to run.
pub const TODAY: i64 = 1_748_822_400;

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// Appointments span this many days before [`TODAY`]...
pub const HISTORY_DAYS: i64 = 730;
/// ...and this many days from [`TODAY`] on (bookings ahead).
pub const AHEAD_DAYS: i64 = 30;

/// Unix seconds as a `SystemTime` (tokio-postgres sends it as `timestamptz`).
pub fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of Unix seconds (UTC).
pub fn date_text(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS+00` of Unix seconds, for COPY's text format.
pub fn timestamp_text(secs: i64) -> String {
    let s = secs.rem_euclid(DAY);
    format!(
        "{} {:02}:{:02}:{:02}+00",
        date_text(secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Cents as `123.45`.
pub fn money_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

const FIRST_NAMES: [&str; 40] = [
    "Olivia",
    "Emma",
    "Ava",
    "Sophia",
    "Isabella",
    "Mia",
    "Amelia",
    "Harper",
    "Evelyn",
    "Abigail",
    "Emily",
    "Ella",
    "Madison",
    "Scarlett",
    "Victoria",
    "Aria",
    "Grace",
    "Chloe",
    "Camila",
    "Penelope",
    "Riley",
    "Layla",
    "Lillian",
    "Nora",
    "Zoey",
    "Mila",
    "Aubrey",
    "Hannah",
    "Lily",
    "Addison",
    "Liam",
    "Noah",
    "James",
    "Lucas",
    "Mason",
    "Ethan",
    "Daniel",
    "Michael",
    "Jackson",
    "Sebastian",
];

const LAST_NAMES: [&str; 40] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
];

/// A stable 64-bit mix of `x` (splitmix64's finaliser).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// First and last name of person number `id` (`salt` separates clients
/// from providers).
pub fn person_name(id: i64, salt: u64) -> (&'static str, &'static str) {
    let h = mix(id as u64 ^ salt.rotate_left(32));
    (
        FIRST_NAMES[(h % FIRST_NAMES.len() as u64) as usize],
        LAST_NAMES[((h >> 32) % LAST_NAMES.len() as u64) as usize],
    )
}

/// Salt of client names.
pub const CLIENT_SALT: u64 = 1;
/// Salt of provider names.
pub const PROVIDER_SALT: u64 = 2;

/// The e-mail address of client `id` (unique: the id is part of it).
pub fn client_email(id: i64) -> String {
    let (first, last) = person_name(id, CLIENT_SALT);
    format!(
        "{}.{}{id}@example.com",
        first.to_lowercase(),
        last.to_lowercase()
    )
}

/// One line of the treatment catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Treatment {
    /// Name shown to clients.
    pub name: &'static str,
    /// Category for reports.
    pub category: &'static str,
    /// Length of an appointment.
    pub minutes: i64,
    /// Price in cents.
    pub cents: i64,
}

const fn t(name: &'static str, category: &'static str, minutes: i64, dollars: i64) -> Treatment {
    Treatment {
        name,
        category,
        minutes,
        cents: dollars * 100,
    }
}

/// The catalogue (ids 1..=len in this order).
pub const TREATMENTS: [Treatment; 30] = [
    t("Consultation", "consult", 30, 0),
    t("Botox (per area)", "injectables", 30, 350),
    t("Dysport (per area)", "injectables", 30, 320),
    t("Lip filler", "injectables", 45, 700),
    t("Cheek filler", "injectables", 60, 850),
    t("Under-eye filler", "injectables", 45, 800),
    t("Sculptra", "injectables", 60, 900),
    t("Kybella", "injectables", 45, 600),
    t("HydraFacial", "facials", 60, 199),
    t("Signature facial", "facials", 60, 150),
    t("Dermaplaning", "facials", 45, 120),
    t("Light chemical peel", "peels", 30, 150),
    t("Medium chemical peel", "peels", 45, 300),
    t("Microneedling", "skin", 60, 350),
    t("PRP microneedling", "skin", 75, 650),
    t("RF microneedling", "skin", 75, 800),
    t("IPL photofacial", "laser", 45, 400),
    t("Laser resurfacing", "laser", 90, 1200),
    t("Laser hair removal, small area", "laser", 15, 100),
    t("Laser hair removal, medium area", "laser", 30, 200),
    t("Laser hair removal, large area", "laser", 60, 350),
    t("Tattoo removal", "laser", 30, 250),
    t("CoolSculpting (per cycle)", "body", 60, 750),
    t("Body contouring RF", "body", 60, 400),
    t("LED therapy", "wellness", 30, 75),
    t("IV hydration", "wellness", 45, 175),
    t("B12 injection", "wellness", 15, 35),
    t("Brow lamination", "brows & lashes", 45, 90),
    t("Lash lift", "brows & lashes", 45, 95),
    t("Skin check follow-up", "consult", 15, 0),
];

/// Provider titles, by provider id modulo the length.
pub const PROVIDER_TITLES: [&str; 4] = [
    "Nurse injector",
    "Esthetician",
    "Laser technician",
    "Medical director",
];

/// Inventory units and names used to build the stock list.
pub const STOCK: [(&str, &str); 10] = [
    ("vial", "neurotoxin 100u"),
    ("syringe", "hyaluronic filler 1ml"),
    ("kit", "microneedling tips"),
    ("bottle", "peel solution"),
    ("box", "nitrile gloves"),
    ("pack", "gauze pads"),
    ("tube", "numbing cream"),
    ("bag", "IV saline 1l"),
    ("jar", "hydrating serum"),
    ("ampoule", "vitamin B12"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(TODAY), "2025-06-02");
        assert_eq!(
            timestamp_text(TODAY + 9 * 3600 + 30 * 60),
            "2025-06-02 09:30:00+00"
        );
        assert_eq!(date_text(951_782_400), "2000-02-29");
        assert_eq!(date_text(-DAY), "1969-12-31");
        assert_eq!(money_text(35_000), "350.00");
        assert_eq!(money_text(1_999), "19.99");
    }

    #[test]
    fn client_emails_are_stable_and_unique() {
        assert_eq!(client_email(7), client_email(7));
        assert_ne!(client_email(7), client_email(8));
        assert!(client_email(42).ends_with("42@example.com"));
    }
}
