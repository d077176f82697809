//! The facade's error type.

use std::fmt;

use crate::report::RecoveryReport;

/// Errors of [`crate::Journal`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// From the write path (I/O, poisoned, locked, bad input, record too large, ...).
    Journal(turnwal_journal::Error),
    /// Opening for writing was refused: acknowledged data is damaged, or a torn tail in
    /// `Strict` mode. Nothing was changed; `open_read_only` still reads the valid prefix.
    Refused {
        /// File with the first problem.
        file: String,
        /// Offset of the first problem.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// The full report.
        report: Box<RecoveryReport>,
    },
    /// A compaction step failed. Nothing appended is lost: before the snapshot's rename the
    /// log is untouched; after it, only files the snapshot covers are left to delete.
    Compaction(turnwal_replay::compact::CompactError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Journal(e) => e.fmt(f),
            Error::Refused {
                file,
                offset,
                reason,
                report,
            } => write!(
                f,
                "refusing to open for writing ({}): {file} at offset {offset}: {reason}",
                report.case
            ),
            Error::Compaction(e) => write!(f, "compaction: {e}"),
        }
    }
}

impl Error {
    /// Whether this is, or was caused by, a full disk or quota (see
    /// [`turnwal_journal::Error::is_disk_full`]).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Journal(e) if e.is_disk_full())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Journal(e) => Some(e),
            Error::Refused { .. } => None,
            Error::Compaction(e) => Some(e),
        }
    }
}

impl From<turnwal_journal::Error> for Error {
    fn from(e: turnwal_journal::Error) -> Self {
        Error::Journal(e)
    }
}

impl From<turnwal_journal::InputError> for Error {
    fn from(e: turnwal_journal::InputError) -> Self {
        Error::Journal(e.into())
    }
}

/// Result alias of the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;
