//! The writer lock: one writer per journal, via the OS lock on `LOCK` in the journal directory.
//! The kernel releases it when the holder dies, so `kill -9` never leaves a stale lock. The file
//! records the holder (pid, host, since) so the next writer's error can name it.

use std::path::Path;

use crate::error::{Error, LockHolder, Result};
use crate::storage::{OpenMode, ReadMode, Storage, StorageFile};

/// Name of the lock file inside the journal directory.
pub const LOCK_FILE: &str = "LOCK";

/// Held for as long as the journal is open for writing.
#[derive(Debug)]
pub struct WriterLock {
    _file: Box<dyn StorageFile>,
    /// Who we recorded as the holder.
    pub holder: LockHolder,
}

/// Takes the writer lock of `dir`, or fails with [`Error::Locked`] naming the holder.
pub fn acquire(storage: &dyn Storage, dir: &Path) -> Result<WriterLock> {
    let path = dir.join(LOCK_FILE);
    match storage
        .try_lock(&path)
        .map_err(|e| Error::io("lock", &path, e))?
    {
        None => Err(Error::Locked {
            holder: read_holder(storage, dir).unwrap_or_default(),
        }),
        Some(file) => {
            let holder = LockHolder {
                pid: std::process::id(),
                host: host_name(),
                since: crate::event::format_ts(crate::event::now_ms()),
            };
            let text = format!(
                "{{\"pid\":{},\"host\":{},\"since\":\"{}\"}}\n",
                holder.pid,
                serde_json::Value::String(holder.host.clone()),
                holder.since
            );
            // The holder record is advisory (for the error message); the OS lock is the truth,
            // so it needs no fsync.
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &path, e))?;
            file.write_at(0, text.as_bytes())
                .map_err(|e| Error::io("write", &path, e))?;
            Ok(WriterLock {
                _file: file,
                holder,
            })
        }
    }
}

/// Reads who holds (or last held) the lock of `dir`.
pub fn read_holder(storage: &dyn Storage, dir: &Path) -> Option<LockHolder> {
    let file = storage
        .open(&dir.join(LOCK_FILE), OpenMode::ReadOnly)
        .ok()?;
    let bytes = file.read_all(ReadMode::Copy).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(LockHolder {
        pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
        host: v.get("host")?.as_str()?.to_string(),
        since: v.get("since")?.as_str()?.to_string(),
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Whether some process holds the OS lock on `dir`'s `LOCK` file, read from `/proc/locks`
/// without touching the lock (taking it to test, even for a moment, could make a writer's open
/// fail). `false` when there is no `LOCK` file (no writer ever opened the journal); `true` when
/// `/proc/locks` cannot be read, the answer that is never wrong for a reader (it only waits for
/// proof of durability in the log). Linux; on the real file system only.
pub fn is_held(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir.join(LOCK_FILE)) else {
        return false;
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return true;
    };
    // `/proc/locks` names a file as major:minor:inode, the device numbers in hex.
    let dev = meta.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    locks
        .lines()
        .any(|l| l.split_whitespace().any(|field| field == id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{RealFs, Storage};

    #[test]
    fn is_held_sees_a_live_lock_and_not_a_released_one() {
        let dir = std::env::temp_dir().join(format!("turnwal-lock-test-{}", std::process::id()));
        RealFs.create_dir_all(&dir).unwrap();
        assert!(!is_held(&dir), "no LOCK file yet");
        let lock = acquire(&RealFs, &dir).unwrap();
        assert!(is_held(&dir), "held by this process");
        drop(lock);
        assert!(!is_held(&dir), "released");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
