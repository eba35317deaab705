//! The testkit's error type: every way starting, driving or stopping a
//! throw-away server can fail, with enough context (command, stderr, log
//! tail, Debian package to install) to fix the problem without a debugger.

use std::path::PathBuf;

/// Everything that can go wrong in the testkit.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A program the testkit needs is not installed.
    #[error("`{program}` not found (searched {searched}); install the Debian package `{package}`")]
    MissingBinary {
        /// The program that was looked for (`initdb`, `psql`, `redis-server`...).
        program: String,
        /// The Debian package that provides it.
        package: &'static str,
        /// Where it was looked for, for the message.
        searched: String,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the testkit was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper program ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, for the message.
        command: String,
        /// How it exited.
        status: String,
        /// Its standard error (and standard output when stderr is empty).
        stderr: String,
    },
    /// A server did not become ready in time, or exited while starting.
    #[error("{what} did not start on port {port}: {reason}\n--- log tail ({log}) ---\n{log_tail}")]
    StartFailed {
        /// `PostgreSQL` or `Redis`.
        what: &'static str,
        /// The port it was meant to listen on.
        port: u16,
        /// Why the testkit gave up.
        reason: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// The operation needs a locally started server but the handle points at
    /// an external one (`PGPULSE_TEST_DATABASE_URL` / `PGPULSE_TEST_REDIS_URL`).
    #[error(
        "`{operation}` is not possible on an external server ({url_var} is set); it needs a server started by the testkit"
    )]
    External {
        /// The refused operation.
        operation: &'static str,
        /// The environment variable that made the handle external.
        url_var: &'static str,
    },
    /// A connection URL could not be used.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL with its password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Running the servers as an unprivileged user (we are root) failed.
    #[error("cannot prepare the unprivileged user for PostgreSQL: {0}")]
    User(String),
    /// The server was already cleaned up (the process is exiting).
    #[error("`{operation}` after the {what} was cleaned up (process exiting)")]
    CleanedUp {
        /// The refused operation.
        operation: &'static str,
        /// `PostgreSQL cluster` or `Redis server`.
        what: &'static str,
    },
    /// Generating the TLS certificate failed.
    #[error("cannot generate the TLS certificate: {0}")]
    Tls(String),
}

impl TestkitError {
    /// True when the error means "this needs a locally started server".
    pub fn is_external(&self) -> bool {
        matches!(self, TestkitError::External { .. })
    }

    /// True when a program is missing (the message names the package).
    pub fn is_missing_binary(&self) -> bool {
        matches!(self, TestkitError::MissingBinary { .. })
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> TestkitError {
        TestkitError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand used across the crate.
pub(crate) type Result<T, E = TestkitError> = std::result::Result<T, E>;
