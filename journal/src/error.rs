//! The journal crate's one error type. Every variant carries the evidence: what and where.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A refused append input: which field, and why. Nothing was written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The offending field, e.g. `body.role`, `kind`, `envelope`.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

impl InputError {
    /// Builds an input error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InputError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for InputError {}

/// Who holds a journal's writer lock, as recorded in its lock file.
///
/// `pid`, `host` and `since` name the holder in messages. The identity fields prove, on the
/// holder's own host, whether that process is still the one that took the lock (see
/// [`crate::lock::holder_liveness`]); they are `None` in records written before they existed,
/// or when this host could not tell them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockHolder {
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder.
    pub host: String,
    /// When the lock was taken (RFC 3339).
    pub since: String,
    /// Start time of the holder process, in clock ticks after boot (field 22 of
    /// `/proc/<pid>/stat`): tells the holder from a later process that reuses its pid.
    pub start_time: Option<u64>,
    /// Boot id of the holder's host (`/proc/sys/kernel/random/boot_id`): tells this boot from an
    /// earlier one.
    pub boot_id: Option<String>,
    /// Inode of the holder's PID namespace (`/proc/self/ns/pid`): its pid means the same process
    /// only in the same namespace.
    pub pid_ns: Option<u32>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {} since {}", self.pid, self.host, self.since)
    }
}

/// Errors of the write path.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operation on a file or directory failed.
    Io {
        /// What was being done (`write`, `fdatasync`, `rename`, ...).
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An earlier write or sync failed; the journal refuses all further work until reopened.
    Poisoned {
        /// The first error, as text.
        cause: String,
        /// Whether that error was a full disk (`ENOSPC`, `EDQUOT`): free space, then reopen.
        disk_full: bool,
    },
    /// Another process holds the writer lock.
    Locked {
        /// Who holds it.
        holder: LockHolder,
    },
    /// [`crate::lock::take_over`] refused to break the writer lock: its holder is alive, or
    /// cannot be proven dead from here. Nothing was changed.
    TakeoverRefused {
        /// Who holds it, as recorded; `None` when the lock file holds no readable record.
        holder: Option<Box<LockHolder>>,
        /// Why the holder is not known to be dead ([`crate::lock::Liveness::Alive`] or
        /// [`crate::lock::Liveness::Unknown`]).
        liveness: crate::lock::Liveness,
    },
    /// The input was refused.
    Input(InputError),
    /// A record is larger than the configured limit.
    RecordTooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Bytes on disk are not what the format allows.
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory is not a turnwal journal (and creating one was not asked for).
    NotAJournal {
        /// The directory.
        dir: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The journal was closed.
    Closed,
}

impl Error {
    /// Wraps an I/O error with its operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this is, or was caused by, a full disk (`ENOSPC`) or quota (`EDQUOT`): the
    /// append was refused, everything acknowledged before it stays, and reopening after space
    /// is freed continues with no gap.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_disk_full(source),
            Error::Poisoned { disk_full, .. } => *disk_full,
            _ => false,
        }
    }
}

/// Whether an OS error means the disk (or the quota) is full.
fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } if is_disk_full(source) => write!(
                f,
                "disk full: {op} {}: {source} (everything acknowledged before it stays; free \
                 space, then reopen)",
                path.display()
            ),
            Error::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::Poisoned { cause, .. } => {
                write!(
                    f,
                    "journal poisoned by an earlier I/O failure ({cause}); reopen to recover"
                )
            }
            Error::Locked { holder } => write!(f, "journal is locked by {holder}"),
            Error::TakeoverRefused { holder, liveness } => {
                match holder {
                    Some(h) => write!(f, "lock takeover refused: the journal is locked by {h}")?,
                    None => write!(
                        f,
                        "lock takeover refused: the journal is locked by a holder its lock \
                         file does not name"
                    )?,
                }
                match liveness {
                    crate::lock::Liveness::Alive => write!(f, ", which is alive"),
                    crate::lock::Liveness::Dead => write!(f, ", which is dead"),
                    crate::lock::Liveness::Unknown(why) => {
                        write!(f, ", which cannot be proven dead: {why}")
                    }
                }
            }
            Error::Input(e) => e.fmt(f),
            Error::RecordTooLarge { size, limit } => {
                write!(
                    f,
                    "record of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            Error::Corrupt {
                file,
                offset,
                reason,
            } => {
                write!(f, "corrupt {} at offset {offset}: {reason}", file.display())
            }
            Error::NotAJournal { dir, reason } => {
                write!(f, "{} is not a turnwal journal: {reason}", dir.display())
            }
            Error::Closed => write!(f, "journal is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Input(e) => Some(e),
            _ => None,
        }
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e)
    }
}

/// Result alias of the journal crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
