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
