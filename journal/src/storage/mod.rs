//! The storage seam: every file operation of the engine goes through [`Storage`].
//!
//! Production uses [`RealFs`]. Tests plug in wrappers that count or fail operations, and the
//! simulated, power-cut-capable storage. The seam is deliberately narrow, so an implementation
//! sees every write, every sync and every directory change.
//!
//! Contract every implementation keeps:
//! - files are created `0600`, directories `0700`, symlinks are never followed on open;
//! - `write_at` writes the whole buffer or fails; it makes nothing durable;
//! - `sync_data` makes a file's data (and size) durable; `sync_dir` makes a directory's entries
//!   (creates, renames, unlinks) durable;
//! - a lock taken with `try_lock` is released when its handle is dropped or the process dies.

mod real;
// The simulated, power-cut-capable file system, for crash tests (cargo feature `sim`).
#[cfg(feature = "sim")]
pub mod sim;

use std::fmt::Debug;
use std::io;
use std::ops::Deref;
use std::path::Path;

pub use real::RealFs;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new file (mode 0600); fails if it exists.
    CreateNew,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Open an existing file for reading.
    ReadOnly,
}

/// How to read a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Memory-map if the implementation can: only for files nobody will shrink or rewrite
    /// (sealed segments, installed snapshots). Bodies read from a mapping stay in it for as long
    /// as the events live (`Body`), so this is a promise for the session's lifetime.
    Map,
    /// Copy into memory: for files a writer may still truncate.
    Copy,
}

/// The bytes of a whole file, mapped or copied.
pub enum Bytes {
    /// A read-only memory map.
    Mapped(memmap2::Mmap),
    /// An owned copy.
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

/// An open file.
pub trait StorageFile: Send + Sync + Debug {
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Current size in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or zero-extends to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// fdatasync: makes data and size durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Reads the whole file.
    fn read_all(&self, mode: ReadMode) -> io::Result<Bytes>;
}

/// A file system as the engine sees it.
pub trait Storage: Send + Sync + Debug {
    /// Creates `dir` (mode 0700) and missing parents; fine if it exists as a directory.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` exists (without following a final symlink).
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Names of the entries in `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// fsync of a directory: makes its entries durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens or creates `path` (0600) and takes an exclusive lock on it without waiting.
    /// `Ok(None)` when another holder has it. The lock lives as long as the returned file.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>>;
}
