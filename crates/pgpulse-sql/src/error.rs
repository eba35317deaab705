//! The crate's error type. Public functions never fail (an unparsable
//! statement is analysed as "uncertain"), so this only carries the reason a
//! full parse failed, which ends up in `Analysis::uncertain_reason`.

/// Errors inside the SQL analysis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// `sqlparser` could not parse the statement.
    #[error("parse error: {0}")]
    Parse(String),
}
