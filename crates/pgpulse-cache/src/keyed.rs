//! Keyed invalidation: values, conditions and row images
//! (docs/architecture.md, "Keyed invalidation").
//!
//! A cached read whose `WHERE` compares columns of a *keyable* table
//! ([`KeyTable`]) with values carries those comparisons ([`Conds`]); a
//! write whose rows are known ([`Row`]: an `INSERT ... VALUES` through
//! pgpulse, an `INSERT` line of the change feed) invalidates only the
//! entries whose conditions a row may satisfy. Everything here is
//! conservative in one direction: a value that cannot be read with
//! certainty is *unknown*, an unknown cell satisfies every condition, and a
//! condition whose value is unknown is dropped. So a shape or a type left
//! out costs hit rate, never a stale read.
//!
//! Only three column types are keyed, each compared the way PostgreSQL
//! compares it: integers (`int2`, `int4`, `int8`), `timestamptz` (as
//! microseconds, from a binary value, or a text value with an explicit
//! UTC offset — without one the server would use the session's time zone),
//! and `text` with a deterministic collation (equality only: ordering
//! depends on the collation; ASCII values only, which every client
//! encoding writes alike).

use std::collections::HashMap;
use std::sync::Arc;

use pgpulse_sql::{CmpOp, Operand};

/// The keyed column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `int2`, `int4`, `int8`.
    Int,
    /// `text` (deterministic collation).
    Text,
    /// `timestamptz`.
    Timestamptz,
}

impl ColType {
    /// The type of `pg_type` OID `oid`, if keyed.
    pub fn of_oid(oid: u32) -> Option<ColType> {
        match oid {
            20 | 21 | 23 => Some(ColType::Int),
            25 => Some(ColType::Text),
            1184 => Some(ColType::Timestamptz),
            _ => None,
        }
    }
}

/// A table whose rows can be keyed: a plain, logged table, the only
/// relation of its name, with no inheritance, partitions, rules, user
/// triggers or row-level security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTable {
    /// Its generation family (its own name).
    pub family: Arc<str>,
    /// Its change lines' head in `test_decoding` (`table public.t`).
    pub head: String,
    /// Keyed columns and their types.
    pub columns: HashMap<String, ColType>,
    /// `REPLICA IDENTITY FULL`: the change feed's `UPDATE` and `DELETE`
    /// lines carry whole old rows.
    pub old_rows: bool,
}

/// A comparable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A text.
    Text(Box<str>),
    /// Microseconds since 1970-01-01 00:00 UTC.
    Ts(i64),
}

/// One column of a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL `NULL`: satisfies no comparison.
    Null,
    /// A known value.
    Val(Value),
    /// Not known: satisfies every comparison.
    Unknown,
}

/// A row as a write made it: columns not listed are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row(pub Vec<(String, Cell)>);

/// `column op value`, all of which a row must satisfy to matter to an
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// Column.
    pub column: String,
    /// Operator, column on the left.
    pub op: CmpOp,
    /// Value compared with.
    pub value: Value,
}

/// No conditions (most reads), shared: a lookup is on the hot path, and
/// `Arc::from(Vec::new())` allocates.
pub fn no_conds() -> Arc<[Conds]> {
    static NONE: std::sync::LazyLock<Arc<[Conds]>> =
        std::sync::LazyLock::new(|| Arc::from(Vec::new()));
    NONE.clone()
}

/// The conditions of one read on one keyable table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conds {
    /// The table's family.
    pub family: Arc<str>,
    /// Its conditions (at least one).
    pub conds: Vec<Cond>,
}

impl Conds {
    /// Whether `row` may satisfy every condition.
    pub fn may_match(&self, row: &Row) -> bool {
        self.conds
            .iter()
            .all(|c| match row.0.iter().find(|(name, _)| *name == c.column) {
                None | Some((_, Cell::Unknown)) => true,
                Some((_, Cell::Null)) => false,
                Some((_, Cell::Val(v))) => compare(v, c.op, &c.value),
            })
    }
}

/// `left op right`; values of different kinds may match (unknown).
fn compare(left: &Value, op: CmpOp, right: &Value) -> bool {
    let ord = match (left, right) {
        (Value::Int(a), Value::Int(b)) | (Value::Ts(a), Value::Ts(b)) => a.cmp(b),
        (Value::Text(a), Value::Text(b)) => {
            // Text orders by collation: only equality is decided here.
            return op != CmpOp::Eq || a == b;
        }
        _ => return true,
    };
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    }
}

/// The Bind parameters of a statement, as sent.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// Declared types from the Parse (0: unspecified, the server infers
    /// the column's type); shorter than `values` when not all declared.
    pub types: &'a [u32],
    /// Format codes as the Bind gives them (none: all text; one: all).
    pub formats: &'a [i16],
    /// Values (`None`: NULL).
    pub values: &'a [Option<&'a [u8]>],
}

impl Params<'_> {
    /// No parameters (a simple query).
    pub const NONE: Params<'static> = Params {
        types: &[],
        formats: &[],
        values: &[],
    };

    /// Parameter `n` (1-based) read as a value of a `ty` column.
    pub fn cell(&self, n: u32, ty: ColType) -> Cell {
        let i = (n as usize).wrapping_sub(1);
        let Some(value) = self.values.get(i) else {
            return Cell::Unknown;
        };
        let Some(bytes) = value else {
            return Cell::Null;
        };
        let oid = self.types.get(i).copied().unwrap_or(0);
        let binary = match self.formats {
            [] => false,
            [one] => *one == 1,
            many => many.get(i).is_some_and(|f| *f == 1),
        };
        let cell = if binary {
            binary_value(ty, oid, bytes)
        } else {
            let declared_ok = match ty {
                ColType::Int => matches!(oid, 0 | 20 | 21 | 23),
                ColType::Text => matches!(oid, 0 | 25),
                ColType::Timestamptz => matches!(oid, 0 | 1184),
            };
            std::str::from_utf8(bytes)
                .ok()
                .filter(|_| declared_ok)
                .and_then(|s| text_value(ty, s))
        };
        cell.map_or(Cell::Unknown, Cell::Val)
    }
}

/// A binary parameter: read only when its declared type is the column's
/// (or unspecified, when the server takes the column's type).
fn binary_value(ty: ColType, oid: u32, b: &[u8]) -> Option<Value> {
    match ty {
        ColType::Int => {
            let ok = match oid {
                0 => true,
                20 => b.len() == 8,
                23 => b.len() == 4,
                21 => b.len() == 2,
                _ => false,
            };
            if !ok {
                return None;
            }
            match b.len() {
                2 => Some(Value::Int(i16::from_be_bytes(b.try_into().ok()?).into())),
                4 => Some(Value::Int(i32::from_be_bytes(b.try_into().ok()?).into())),
                8 => Some(Value::Int(i64::from_be_bytes(b.try_into().ok()?))),
                _ => None,
            }
        }
        ColType::Timestamptz if matches!(oid, 0 | 1184) && b.len() == 8 => {
            let since_2000 = i64::from_be_bytes(b.try_into().ok()?);
            since_2000.checked_add(PG_EPOCH_US).map(Value::Ts)
        }
        ColType::Text if matches!(oid, 0 | 25) => text_value(ty, std::str::from_utf8(b).ok()?),
        _ => None,
    }
}

/// 2000-01-01 in Unix microseconds.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A value in PostgreSQL's text form, as a `ty` column's input function
/// would read it; `None` when not certain.
pub fn text_value(ty: ColType, s: &str) -> Option<Value> {
    match ty {
        ColType::Int => {
            let t = s.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r');
            let t = t.strip_prefix('+').unwrap_or(t);
            if t.is_empty()
                || !t
                    .bytes()
                    .enumerate()
                    .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == b'-'))
            {
                return None;
            }
            t.parse().ok().map(Value::Int)
        }
        // ASCII only: it reads the same in every client encoding, while
        // other bytes would be converted by the server when the client's
        // encoding is not the server's.
        ColType::Text => s.is_ascii().then(|| Value::Text(s.into())),
        ColType::Timestamptz => timestamptz(s).map(Value::Ts),
    }
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.frac]]` followed by `Z` or `±HH[:MM]`, in
/// Unix microseconds. Anything else (no offset, named zones, BC, special
/// values) is `None`.
fn timestamptz(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b' '))
    {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    let mut micros = 0;
    if b.get(at) == Some(&b':') {
        second = num(at + 1, 2)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            let digits = &s[start..at];
            if digits.is_empty() || digits.len() > 6 {
                return None;
            }
            micros = digits.parse::<i64>().ok()? * 10_i64.pow(6 - digits.len() as u32);
        }
    }
    let offset = match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let oh = num(at + 1, 2)?;
            let om = match b.len() - at {
                3 => 0,
                6 if b[at + 3] == b':' => num(at + 4, 2)?,
                _ => return None,
            };
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An operand of a statement as a `ty` value.
pub fn operand_cell(op: &Operand, ty: ColType, params: &Params<'_>) -> Cell {
    match op {
        Operand::Param(n) => params.cell(*n, ty),
        Operand::Null => Cell::Null,
        Operand::Number(n) if ty == ColType::Int => {
            text_value(ty, n).map_or(Cell::Unknown, Cell::Val)
        }
        Operand::Number(_) => Cell::Unknown,
        Operand::Str(s) => text_value(ty, s).map_or(Cell::Unknown, Cell::Val),
    }
}

/// The conditions of a read's filters on keyable tables, resolved with its
/// parameters. Tables of the read that are not keyable, and conditions on
/// columns not keyed or with values not known, are left out.
pub fn resolve(
    filters: &[pgpulse_sql::TableFilters],
    keyable: &HashMap<String, Arc<KeyTable>>,
    params: &Params<'_>,
) -> Vec<Conds> {
    let mut out: Vec<Conds> = Vec::new();
    for tf in filters {
        let Some(table) = keyable.get(&tf.table.name) else {
            continue;
        };
        let mut conds = Vec::new();
        for f in &tf.filters {
            let Some(&ty) = table.columns.get(&f.column) else {
                continue;
            };
            if ty == ColType::Text && f.op != CmpOp::Eq {
                continue;
            }
            if let Cell::Val(value) = operand_cell(&f.operand, ty, params) {
                conds.push(Cond {
                    column: f.column.clone(),
                    op: f.op,
                    value,
                });
            }
        }
        if !conds.is_empty() {
            out.push(Conds {
                family: table.family.clone(),
                conds,
            });
        }
    }
    out
}

/// The rows of an `INSERT ... VALUES` into a keyable table, resolved with
/// its parameters.
pub fn inserted(
    rows: &pgpulse_sql::InsertedRows,
    table: &KeyTable,
    params: &Params<'_>,
) -> Vec<Row> {
    rows.rows
        .iter()
        .map(|values| {
            Row(rows
                .columns
                .iter()
                .zip(values)
                .filter_map(|(col, v)| {
                    let ty = *table.columns.get(col)?;
                    let cell = v
                        .as_ref()
                        .map_or(Cell::Unknown, |op| operand_cell(op, ty, params));
                    Some((col.clone(), cell))
                })
                .collect())
        })
        .collect()
}

/// A `test_decoding` column list (`id[integer]:1 name[text]:'a''b' x[text]:null`)
/// as raw cells: `Some(text)` for a value, `None` for `null`; `None`
/// when it does not parse (the caller invalidates the whole table).
/// `unchanged-toast-datum` and other unquoted words are kept as text and
/// fail to read as any keyed type but text — where they are refused
/// because [`feed_row`] only reads text from quoted values.
pub fn test_decoding_columns(s: &str) -> Option<Vec<FeedColumn>> {
    match columns_until(s, None)? {
        (cols, end) if end == s.len() => Some(cols),
        _ => None,
    }
}

/// The columns of `s` up to `stop` (at a column's start) or the end, and
/// where they ended.
fn columns_until(s: &str, stop: Option<&str>) -> Option<(Vec<FeedColumn>, usize)> {
    let b = s.as_bytes();
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        if stop.is_some_and(|m| s[at..].starts_with(m)) {
            return Some((out, at));
        }
        // Name: bare up to '[', or "quoted" with "" doubled.
        let name = if b[at] == b'"' {
            let mut name = String::new();
            at += 1;
            loop {
                let rest = s.get(at..)?;
                let end = rest.find('"')?;
                name.push_str(&rest[..end]);
                at += end + 1;
                if b.get(at) == Some(&b'"') {
                    name.push('"');
                    at += 1;
                } else {
                    break;
                }
            }
            name
        } else {
            let end = s[at..].find('[')?;
            let name = &s[at..at + end];
            if name.is_empty() || name.contains(' ') {
                return None;
            }
            at += end;
            name.to_owned()
        };
        if b.get(at) != Some(&b'[') {
            return None;
        }
        let close = s[at..].find("]:")?;
        at += close + 2;
        let (value, quoted) = if b.get(at) == Some(&b'\'') {
            let mut v = String::new();
            at += 1;
            loop {
                let rest = s.get(at..)?;
                let end = rest.find('\'')?;
                v.push_str(&rest[..end]);
                at += end + 1;
                if b.get(at) == Some(&b'\'') {
                    v.push('\'');
                    at += 1;
                } else {
                    break;
                }
            }
            (Some(v), true)
        } else {
            let end = s[at..].find(' ').map_or(b.len(), |e| at + e);
            let word = &s[at..end];
            at = end;
            if word == "null" {
                (None, false)
            } else {
                (Some(word.to_owned()), false)
            }
        };
        out.push(FeedColumn {
            name,
            value,
            quoted,
        });
        match b.get(at) {
            None => {}
            Some(b' ') => at += 1,
            Some(_) => return None,
        }
    }
    Some((out, at))
}

/// The rows of one `test_decoding` change of `table` (the line after
/// `table <name>: `): the new row of an `INSERT`, the old and new rows of
/// an `UPDATE` that carries its old row (`REPLICA IDENTITY FULL`, or a
/// changed key: then only the key's columns are known), the old row of a
/// `DELETE` (all columns with `REPLICA IDENTITY FULL`, else the key's).
/// `None` when the old row of an `UPDATE` is missing (any row may have
/// changed) or the line does not parse: the caller invalidates the table.
pub fn feed_change(change: &str, table: &KeyTable) -> Option<Vec<Row>> {
    if let Some(cols) = change.strip_prefix("INSERT: ") {
        return Some(vec![feed_row(&test_decoding_columns(cols)?, table)]);
    }
    if let Some(cols) = change.strip_prefix("DELETE: ") {
        // `(no-tuple-data)` without a replica identity: unknown.
        if cols.starts_with('(') {
            return None;
        }
        return Some(vec![feed_row(&test_decoding_columns(cols)?, table)]);
    }
    let rest = change.strip_prefix("UPDATE: old-key: ")?;
    let (old, end) = columns_until(rest, Some("new-tuple: "))?;
    let new = test_decoding_columns(rest.get(end..)?.strip_prefix("new-tuple: ")?)?;
    if old.is_empty() {
        return None;
    }
    Some(vec![feed_row(&old, table), feed_row(&new, table)])
}

/// One column of a `test_decoding` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedColumn {
    /// Name, unquoted.
    pub name: String,
    /// Value text, unquoted; `None` for `null`.
    pub value: Option<String>,
    /// Whether the value was quoted.
    pub quoted: bool,
}

/// A `test_decoding` row as a [`Row`] of `table`'s keyed columns.
pub fn feed_row(columns: &[FeedColumn], table: &KeyTable) -> Row {
    Row(columns
        .iter()
        .filter_map(
            |FeedColumn {
                 name,
                 value,
                 quoted,
             }| {
                let ty = *table.columns.get(name)?;
                let cell = match value {
                    None => Cell::Null,
                    // Text values are always quoted; an unquoted word in a
                    // text column is `unchanged-toast-datum`.
                    Some(_) if ty == ColType::Text && !quoted => Cell::Unknown,
                    Some(v) => text_value(ty, v).map_or(Cell::Unknown, Cell::Val),
                };
                Some((name.clone(), cell))
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyTable {
        KeyTable {
            family: Arc::from("appointments"),
            head: "table public.appointments".into(),
            old_rows: true,
            columns: [
                ("id", ColType::Int),
                ("provider_id", ColType::Int),
                ("starts_at", ColType::Timestamptz),
                ("status", ColType::Text),
            ]
            .into_iter()
            .map(|(n, t)| (n.to_owned(), t))
            .collect(),
        }
    }

    #[test]
    fn timestamps_with_offsets_only() {
        let noon = timestamptz("2025-06-02 12:00:00+00").expect("parses");
        assert_eq!(noon, (1_748_822_400 + 12 * 3600) * 1_000_000);
        assert_eq!(timestamptz("2025-06-02T14:00:00.000+02:00"), Some(noon));
        assert_eq!(timestamptz("2025-06-02T12:00:00Z"), Some(noon));
        assert_eq!(timestamptz("2025-06-02 07:00-05"), Some(noon));
        assert_eq!(
            timestamptz("2025-06-02 12:00:00.5+00"),
            Some(noon + 500_000)
        );
        for bad in [
            "2025-06-02 12:00:00",
            "2025-06-02",
            "infinity",
            "2025-06-02 12:00:00 Europe/Paris",
            "2025-13-02 12:00:00+00",
            "2025-06-02 12:00:00.1234567+00",
        ] {
            assert_eq!(timestamptz(bad), None, "{bad}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn parameters_by_type_and_format() {
        let ts = (1_748_822_400_i64 * 1_000_000 - PG_EPOCH_US).to_be_bytes();
        let four = 7_i32.to_be_bytes();
        let values: [Option<&[u8]>; 5] = [Some(&four), Some(&ts), Some(b"42"), None, Some(b"4.5")];
        let p = Params {
            types: &[23, 1184, 0, 0, 1700],
            formats: &[1, 1, 0, 0, 0],
            values: &values,
        };
        assert_eq!(p.cell(1, ColType::Int), Cell::Val(Value::Int(7)));
        assert_eq!(
            p.cell(2, ColType::Timestamptz),
            Cell::Val(Value::Ts(1_748_822_400_000_000))
        );
        assert_eq!(p.cell(3, ColType::Int), Cell::Val(Value::Int(42)));
        assert_eq!(p.cell(4, ColType::Int), Cell::Null);
        assert_eq!(p.cell(5, ColType::Int), Cell::Unknown);
        assert_eq!(p.cell(6, ColType::Int), Cell::Unknown);
        // A binary int4 read as int8 is not trusted.
        let p = Params {
            types: &[20],
            formats: &[1],
            values: &values[..1],
        };
        assert_eq!(p.cell(1, ColType::Int), Cell::Unknown);
        // Declared `timestamp` (no zone) for a timestamptz column: unknown.
        let p = Params {
            types: &[1114],
            formats: &[],
            values: &[Some(b"2025-06-02 12:00:00+00")],
        };
        assert_eq!(p.cell(1, ColType::Timestamptz), Cell::Unknown);
    }

    #[test]
    fn rows_match_conditions_conservatively() {
        let conds = Conds {
            family: Arc::from("appointments"),
            conds: vec![
                Cond {
                    column: "provider_id".into(),
                    op: CmpOp::Eq,
                    value: Value::Int(3),
                },
                Cond {
                    column: "starts_at".into(),
                    op: CmpOp::Ge,
                    value: Value::Ts(100),
                },
                Cond {
                    column: "starts_at".into(),
                    op: CmpOp::Lt,
                    value: Value::Ts(200),
                },
            ],
        };
        let row = |p: Cell, s: Cell| Row(vec![("provider_id".into(), p), ("starts_at".into(), s)]);
        let int = |v| Cell::Val(Value::Int(v));
        let ts = |v| Cell::Val(Value::Ts(v));
        assert!(conds.may_match(&row(int(3), ts(150))));
        assert!(!conds.may_match(&row(int(4), ts(150))));
        assert!(!conds.may_match(&row(int(3), ts(200))));
        assert!(conds.may_match(&row(int(3), ts(100))));
        assert!(conds.may_match(&row(Cell::Unknown, ts(150))));
        assert!(!conds.may_match(&row(Cell::Null, ts(150))));
        assert!(conds.may_match(&Row(vec![("provider_id".into(), int(3))])));
        assert!(conds.may_match(&row(Cell::Val(Value::Text("3".into())), ts(150))));
        // Text decides equality only.
        let text = Conds {
            family: Arc::from("t"),
            conds: vec![Cond {
                column: "status".into(),
                op: CmpOp::Eq,
                value: Value::Text("booked".into()),
            }],
        };
        let status = |s: &str| Row(vec![("status".into(), Cell::Val(Value::Text(s.into())))]);
        assert!(text.may_match(&status("booked")));
        assert!(!text.may_match(&status("Booked")));
        // Beyond ASCII the client's encoding could change the bytes.
        assert_eq!(text_value(ColType::Text, "café"), None);
    }

    #[test]
    fn test_decoding_rows() {
        let cols = test_decoding_columns(
            "id[bigint]:5 provider_id[integer]:3 starts_at[timestamp with time zone]:'2025-06-02 12:00:00+00' \
             status[text]:'it''s' \"Odd \"\" col\"[integer[]]:'{1,2}' note[text]:null big[text]:unchanged-toast-datum",
        )
        .expect("parses");
        assert_eq!(cols.len(), 7);
        assert_eq!(cols[4].name, "Odd \" col");
        assert_eq!(cols[5].value, None);
        let row = feed_row(&cols, &table());
        assert_eq!(
            row.0,
            vec![
                ("id".into(), Cell::Val(Value::Int(5))),
                ("provider_id".into(), Cell::Val(Value::Int(3))),
                (
                    "starts_at".into(),
                    Cell::Val(Value::Ts(1_748_865_600_000_000))
                ),
                ("status".into(), Cell::Val(Value::Text("it's".into()))),
            ]
        );
        for bad in ["id[bigint]", "id:5", "id[bigint]:'open", "\"x[int]:1"] {
            assert!(test_decoding_columns(bad).is_none(), "{bad}");
        }
        let toast = test_decoding_columns("status[text]:unchanged-toast-datum").expect("parses");
        assert_eq!(
            feed_row(&toast, &table()).0,
            vec![("status".into(), Cell::Unknown)]
        );
    }

    #[test]
    fn test_decoding_changes() {
        let t = table();
        let int = |v| Cell::Val(Value::Int(v));
        let rows = feed_change(
            "UPDATE: old-key: id[bigint]:5 provider_id[integer]:3 status[text]:'new-tuple: x' \
             new-tuple: id[bigint]:5 provider_id[integer]:4 status[text]:'done'",
            &t,
        )
        .expect("an update with its old row");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0[1], ("provider_id".into(), int(3)));
        assert_eq!(
            rows[0].0[2].1,
            Cell::Val(Value::Text("new-tuple: x".into()))
        );
        assert_eq!(rows[1].0[1], ("provider_id".into(), int(4)));
        // Without its old row an update may have changed anything.
        assert_eq!(
            feed_change("UPDATE: id[bigint]:5 provider_id[integer]:4", &t),
            None
        );
        assert_eq!(
            feed_change("UPDATE: old-key: new-tuple: id[bigint]:5", &t),
            None
        );
        // A delete with only its key: the other columns are unknown.
        assert_eq!(
            feed_change("DELETE: id[bigint]:5", &t),
            Some(vec![Row(vec![("id".into(), int(5))])])
        );
        assert_eq!(feed_change("DELETE: (no-tuple-data)", &t), None);
        assert_eq!(feed_change("TRUNCATE: (no-flags)", &t), None);
        assert_eq!(feed_change("INSERT: id[bigint]:5 x", &t), None);
    }

    #[test]
    fn inserted_rows_resolve_their_parameters() {
        let ins = pgpulse_sql::inserted_rows(
            "INSERT INTO appointments (provider_id, starts_at, status, note) \
             VALUES ($1, $2, 'booked', 'x')",
        )
        .expect("insert");
        let values: [Option<&[u8]>; 2] = [Some(b"3"), Some(b"2025-06-02T14:00:00+02:00")];
        let p = Params {
            types: &[],
            formats: &[],
            values: &values,
        };
        let rows = inserted(&ins, &table(), &p);
        assert_eq!(
            rows,
            vec![Row(vec![
                ("provider_id".into(), Cell::Val(Value::Int(3))),
                (
                    "starts_at".into(),
                    Cell::Val(Value::Ts(1_748_865_600_000_000))
                ),
                ("status".into(), Cell::Val(Value::Text("booked".into()))),
            ])]
        );
    }
}
