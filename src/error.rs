//! The facade's error type.

use std::fmt;

use crate::report::RecoveryReport;

/// Errors of [`Journal`](crate::Journal), [`Store`](crate::Store) and [`Tail`](crate::Tail).
///
/// Every error says what and where: the field of a refused envelope, the file and offset of
/// damage, the holder of a lock. [`Error::Journal`] wraps the write path's
/// [`turnwal_journal::Error`] (I/O, poisoned, locked, bad input, record too large, not a
/// journal, ...).
///
/// ```
/// use turnwal::{Error, Journal, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let opts = Options { create: false, ..Options::default() };
/// match Journal::open(tmp.path().join("missing"), opts) {
///     Err(Error::Refused { report, .. }) => println!("damaged: {:?}", report.problems),
///     Err(e) => println!("{e}"), // ".../missing is not a turnwal journal: it does not exist"
///     Ok(_) => unreachable!(),
/// }
/// # Ok(()) }
/// ```
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
    /// [`turnwal_journal::Error::is_disk_full`]): the append was refused, everything
    /// acknowledged before it stays, and reopening after space is freed continues with no gap.
    ///
    /// Here the disk fills up on the simulated storage (cargo feature `sim`):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use turnwal::storage::sim::{Fault, SimFs};
    /// use turnwal::{Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fs = SimFs::new();
    /// let opts = Options { storage: Arc::new(fs.clone()), ..Options::default() };
    /// let (journal, _) = Journal::open("/session", opts)?;
    /// fs.inject(Fault::Enospc { nth_write: fs.writes() }); // the next write fails
    /// let err = journal.append_json(r#"{"kind":"meta","body":{"k":1}}"#).unwrap_err();
    /// assert!(err.is_disk_full());
    /// # Ok(()) }
    /// ```
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

/// Result alias of the facade: `Result<T, turnwal::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
