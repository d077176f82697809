//! The real file system: std::fs, positioned I/O, memmap2 for sealed data, the OS file lock.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{Bytes, OpenMode, ReadMode, Storage, StorageFile};

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl StorageFile for RealFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn read_all(&self, mode: ReadMode) -> io::Result<Bytes> {
        let len = self.len()?;
        if mode == ReadMode::Map && len > 0 {
            return map(&self.0).map(Bytes::Mapped);
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large"))?;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match self.0.read_at(&mut buf[done..], done as u64)? {
                0 => break, // shrunk while reading: return what exists
                n => done += n,
            }
        }
        buf.truncate(done);
        Ok(Bytes::Owned(buf))
    }
}

#[expect(
    unsafe_code,
    reason = "memmap2 needs unsafe; only sealed segments, which no one truncates, are mapped"
)]
fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the engine maps only sealed segments. A writer never truncates or rewrites a sealed
    // segment; compaction unlinks it, which keeps an existing mapping valid.
    unsafe { memmap2::Mmap::map(file) }
}

impl Storage for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        match DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
        let meta = fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        // umask may have narrowed the mode; it must never be wider than 0700.
        if meta.permissions().mode() & 0o777 != DIR_MODE {
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        // O_NONBLOCK: opening a FIFO for reading blocks until a writer opens it, so a FIFO
        // named like a journal file would hang the open; on a regular file the flag does
        // nothing. Anything but a regular file is refused right after the open.
        o.custom_flags(libc_o_nofollow() | libc::O_NONBLOCK);
        match mode {
            OpenMode::CreateNew => o.read(true).write(true).create_new(true).mode(FILE_MODE),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::ReadOnly => o.read(true),
        };
        let file = o.open(path)?;
        if !file.metadata()?.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if mode == OpenMode::CreateNew {
            file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        }
        Ok(Box::new(RealFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc_o_nofollow())
            .open(path)?;
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(RealFile(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// O_NOFOLLOW: the journal never follows a symlink inside its directory to write elsewhere.
fn libc_o_nofollow() -> i32 {
    libc::O_NOFOLLOW
}
