//! The jobs layer's error type: registering jobs, reading the jobs
//! configuration, and what collector jobs report when they fail.

use thiserror::Error;

/// Errors of the scheduler, its configuration and the collector jobs.
#[derive(Debug, Error)]
pub enum JobsError {
    /// A cron expression does not parse (five fields: minute, hour, day of
    /// month, month, day of week).
    #[error("job `{job}`: invalid cron expression `{expr}`: {reason}")]
    InvalidCron {
        /// The job's name.
        job: String,
        /// The expression as given.
        expr: String,
        /// What the parser said.
        reason: String,
    },
    /// Two jobs with one name.
    #[error("job `{0}` is already registered")]
    DuplicateJob(String),
    /// No job has this name.
    #[error("no job named `{0}`")]
    UnknownJob(String),
    /// A manual run's task was cancelled (the runtime is shutting down).
    #[error("job run interrupted: {0}")]
    Interrupted(String),
    /// The time zone is not an IANA name known to chrono-tz.
    #[error("invalid jobs timezone `{0}` (expected an IANA name such as `Europe/Paris`)")]
    InvalidTimezone(String),
    /// A configuration value is unusable; the message names the field.
    #[error("invalid jobs configuration: {0}")]
    Config(String),
    /// Connecting to the upstream server did not finish in time.
    #[error("connecting to the upstream server timed out after {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// PostgreSQL failed (connecting or collecting).
    #[error("upstream PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] pgpulse_store::StoreError),
}
