//! The writer lock: one writer per journal, via the OS lock on `LOCK` in the journal directory.
//! The kernel releases it when the holder dies, so `kill -9` never leaves a stale lock. The file
//! records the holder (pid, host, since) so the next writer's error can name it, and the holder's
//! identity (process start time, boot id, PID namespace) so that an operator can break a lock
//! whose holder is provably dead while the lock itself lives on: a forgotten child process that
//! inherited the descriptor, or a frozen mount ([`take_over`]).

use std::io;
use std::path::Path;

use crate::error::{Error, LockHolder, Result};
use crate::storage::{OpenMode, ReadMode, Storage, StorageFile};

/// Name of the lock file inside the journal directory.
pub const LOCK_FILE: &str = "LOCK";

/// Host name recorded when this host's name cannot be read. Never proves anything.
const UNKNOWN_HOST: &str = "unknown-host";

/// Held for as long as the journal is open for writing.
#[derive(Debug)]
pub struct WriterLock {
    _file: Box<dyn StorageFile>,
    /// Who we recorded as the holder.
    pub holder: LockHolder,
}

/// The holder record as written to `LOCK` (one JSON line). The identity fields are left out
/// when unknown.
#[derive(serde::Serialize)]
struct Record<'a> {
    pid: u32,
    host: &'a str,
    since: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    boot_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid_ns: Option<u32>,
}

/// Takes the writer lock of `dir`, or fails with [`Error::Locked`] naming the holder.
///
/// After taking the OS lock and writing its record, it reads `LOCK` back by name: if the name
/// no longer shows this record, a [`take_over`] unlinked the file between our open and our lock,
/// so the lock we hold is on an orphaned inode and worth nothing; it is released and the call
/// fails with [`Error::Locked`].
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
                start_time: own_start_time(),
                boot_id: boot_id(),
                pid_ns: pid_namespace(),
            };
            let mut text = serde_json::to_vec(&Record {
                pid: holder.pid,
                host: &holder.host,
                since: &holder.since,
                start_time: holder.start_time,
                boot_id: holder.boot_id.as_deref(),
                pid_ns: holder.pid_ns,
            })
            .map_err(|e| Error::io("encode", &path, io::Error::other(e)))?;
            text.push(b'\n');
            // The holder record is advisory (for the error message and for a takeover on this
            // boot; a reboot frees the lock anyway); the OS lock is the truth, so it needs no
            // fsync.
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &path, e))?;
            file.write_at(0, &text)
                .map_err(|e| Error::io("write", &path, e))?;
            match read_lock_bytes(storage, &path).map_err(|e| Error::io("read", &path, e))? {
                Some(now) if now == text => Ok(WriterLock {
                    _file: file,
                    holder,
                }),
                // Lost to a takeover: someone else owns the name now.
                _ => {
                    drop(file);
                    Err(Error::Locked {
                        holder: read_holder(storage, dir).unwrap_or_default(),
                    })
                }
            }
        }
    }
}

/// Reads who holds (or last held) the lock of `dir`. `None` when there is no `LOCK` file or it
/// holds no readable record. Records written before the identity fields existed read with
/// those fields `None`.
pub fn read_holder(storage: &dyn Storage, dir: &Path) -> Option<LockHolder> {
    parse_holder(&read_lock_bytes(storage, &dir.join(LOCK_FILE)).ok()??)
}

/// The bytes of the lock file at `path`, `None` if it does not exist.
fn read_lock_bytes(storage: &dyn Storage, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match storage.open(path, OpenMode::ReadOnly) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(file.read_all(ReadMode::Copy)?.to_vec()))
}

/// Parses a holder record. Missing or malformed identity fields read as `None` (which can only
/// make a takeover refuse); missing or malformed `pid`, `host` or `since` make it unreadable.
fn parse_holder(bytes: &[u8]) -> Option<LockHolder> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(LockHolder {
        pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
        host: v.get("host")?.as_str()?.to_string(),
        since: v.get("since")?.as_str()?.to_string(),
        start_time: v.get("start_time").and_then(serde_json::Value::as_u64),
        boot_id: v
            .get("boot_id")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        pid_ns: v
            .get("pid_ns")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
    })
}

/// Whether the process a lock record names is still the one that took the lock, as far as this
/// host can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The recorded process is running: same pid and same start time, on this boot of this host.
    Alive,
    /// The recorded process is provably gone: its host rebooted since, or no process has its pid
    /// any more, or the pid now belongs to a process that started at another time.
    Dead,
    /// Nothing can be proven from here; the reason says why (another host, a record without
    /// identity, `/proc` unreadable, ...).
    Unknown(String),
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Liveness::Alive => write!(f, "alive"),
            Liveness::Dead => write!(f, "dead"),
            Liveness::Unknown(why) => write!(f, "cannot be proven dead: {why}"),
        }
    }
}

/// Judges whether `holder` is alive, from this host (Linux `/proc`).
///
/// [`Liveness::Dead`] only with proof, and only for a record of this host (same host name) that
/// carries the holder's identity (start time and boot id):
/// - the record's boot id differs from this host's: the host rebooted since, which ended every
///   process of the earlier boot;
/// - same boot and same PID namespace, and `/proc/<pid>` does not exist (with `/proc` showing
///   every process, i.e. not mounted `hidepid`), or its start time differs from the record (the
///   pid was reused).
///
/// Same boot, pid present with the recorded start time: [`Liveness::Alive`]. Everything else
/// (another host name, a record without identity, another PID namespace, an unreadable `/proc`)
/// is [`Liveness::Unknown`] with the reason. Never panics, whatever the record holds.
pub fn holder_liveness(holder: &LockHolder) -> Liveness {
    let Some(here) = host_name_opt() else {
        return Liveness::Unknown("this host's name cannot be read".into());
    };
    if holder.host != here {
        return Liveness::Unknown(format!(
            "it was taken on host {:?}, not on this host ({here:?}); only that host can tell",
            holder.host
        ));
    }
    let (Some(rec_boot), Some(rec_start)) = (&holder.boot_id, holder.start_time) else {
        return Liveness::Unknown(
            "its record has no process start time or boot id (written by an older turnwal)".into(),
        );
    };
    let Some(our_boot) = boot_id() else {
        return Liveness::Unknown("this host's boot id cannot be read".into());
    };
    if *rec_boot != our_boot {
        // Same host name, another boot: the machine rebooted since the lock was taken.
        return Liveness::Dead;
    }
    if holder.pid == 0 {
        return Liveness::Unknown("its record names pid 0".into());
    }
    match (holder.pid_ns, pid_namespace()) {
        (Some(a), Some(b)) if a == b => {}
        (Some(_), Some(_)) => {
            return Liveness::Unknown(
                "it was taken in another PID namespace, where its pid means another process".into(),
            );
        }
        _ => {
            return Liveness::Unknown(
                "its PID namespace is not recorded or cannot be read here".into(),
            );
        }
    }
    if !proc_is_ours() {
        return Liveness::Unknown("/proc does not show this process's PID namespace".into());
    }
    let stat = format!("/proc/{}/stat", holder.pid);
    match std::fs::read_to_string(&stat) {
        Ok(text) => match parse_stat_start_time(&text) {
            Some(t) if t == rec_start => Liveness::Alive,
            // The pid belongs to a process that started at another time: the holder is gone.
            Some(_) => Liveness::Dead,
            None => Liveness::Unknown(format!("{stat} cannot be parsed")),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => match proc_hides_pids() {
            Some(false) => Liveness::Dead,
            Some(true) => Liveness::Unknown(format!(
                "{stat} does not exist, but /proc is mounted with hidepid and may hide it"
            )),
            None => Liveness::Unknown(format!(
                "{stat} does not exist, but the /proc mount options cannot be read"
            )),
        },
        Err(e) => Liveness::Unknown(format!("cannot read {stat}: {e}")),
    }
}

/// How many times [`take_over`] re-judges when the lock changes hands under it.
const TAKEOVER_ATTEMPTS: usize = 3;

/// Takes the writer lock of `dir`, breaking it if its recorded holder is provably dead.
///
/// First [`acquire`]: a holder that died released its OS lock with it, so the common case needs
/// no takeover. If the lock is held, its record is judged with [`holder_liveness`]; only if
/// [`Liveness::Dead`] is `LOCK` unlinked (after checking that it still holds the record judged),
/// the directory fsynced, and a fresh `LOCK` acquired. Whatever still holds the OS lock on the
/// old file keeps it on the orphaned inode, where it excludes nobody. If the lock changes hands
/// meanwhile, the new holder is judged in turn.
///
/// Fails with [`Error::TakeoverRefused`] (changing nothing) when the holder is alive or cannot
/// be proven dead from here, and with [`Error::Locked`] if another process keeps taking the lock
/// first.
///
/// Residual race: a process that takes the old file in the instant between the last check and
/// the unlink (possible only if the stale holder lets go right then) is not seen; [`acquire`]
/// catches it if the unlink comes before its read-back.
pub fn take_over(storage: &dyn Storage, dir: &Path) -> Result<WriterLock> {
    let path = dir.join(LOCK_FILE);
    for _ in 0..TAKEOVER_ATTEMPTS {
        match acquire(storage, dir) {
            Ok(lock) => return Ok(lock),
            Err(Error::Locked { .. }) => {}
            Err(e) => return Err(e),
        }
        let Some(judged) =
            read_lock_bytes(storage, &path).map_err(|e| Error::io("read", &path, e))?
        else {
            continue; // unlinked under us: try again
        };
        let Some(holder) = parse_holder(&judged) else {
            return Err(Error::TakeoverRefused {
                holder: None,
                liveness: Liveness::Unknown("the lock file holds no readable holder record".into()),
            });
        };
        match holder_liveness(&holder) {
            Liveness::Dead => {}
            liveness => {
                return Err(Error::TakeoverRefused {
                    holder: Some(Box::new(holder)),
                    liveness,
                });
            }
        }
        // Unlink only the file judged: a new holder would have rewritten the record.
        let now = read_lock_bytes(storage, &path).map_err(|e| Error::io("read", &path, e))?;
        if now.as_deref() != Some(&judged[..]) {
            continue;
        }
        match storage.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("unlink", &path, e)),
        }
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync dir", dir, e))?;
        match acquire(storage, dir) {
            Ok(lock) => return Ok(lock),
            Err(Error::Locked { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Locked {
        holder: read_holder(storage, dir).unwrap_or_default(),
    })
}

fn host_name_opt() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty() && s != UNKNOWN_HOST)
}

fn host_name() -> String {
    host_name_opt().unwrap_or_else(|| UNKNOWN_HOST.to_string())
}

/// This boot's id, `None` if unreadable.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// This process's start time in clock ticks after boot.
fn own_start_time() -> Option<u64> {
    parse_stat_start_time(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and `)`, so the fields are counted after the *last* `)`.
fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts with field 3 (state); field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Inode of this process's PID namespace.
fn pid_namespace() -> Option<u32> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    link.to_str()?
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Whether `/proc` is the proc of this process's PID namespace (`/proc/self` is our pid), so
/// that a missing `/proc/<pid>` means a missing process.
fn proc_is_ours() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .is_some_and(|p| p.as_os_str() == std::process::id().to_string().as_str())
}

/// Whether `/proc` is mounted with `hidepid` (hiding other users' processes), from
/// `/proc/self/mounts`; `None` if that cannot be told.
fn proc_hides_pids() -> Option<bool> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    // The last mount on /proc is the visible one.
    let opts = mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, point, fs, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
        (point == "/proc" && fs == "proc").then_some(opts)
    })?;
    Some(opts.split(',').any(|o| {
        o.strip_prefix("hidepid=")
            .is_some_and(|v| v != "0" && v != "off")
    }))
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

    #[test]
    fn stat_start_time_is_field_22_counted_after_the_last_paren() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21 22";
        assert_eq!(
            parse_stat_start_time(&format!("1234 (sh) {tail}")),
            Some(424242)
        );
        // A command name with spaces and parentheses, including a ") " that looks like the end.
        assert_eq!(
            parse_stat_start_time(&format!("1234 (a b) S 9 9 (x)) {tail}\n")),
            Some(424242)
        );
        assert_eq!(
            parse_stat_start_time(&format!("77 ()) ) ) {tail}")),
            Some(424242)
        );
    }

    #[test]
    fn malformed_stat_lines_parse_to_none() {
        for bad in [
            "",
            "1234",
            "1234 (sh",
            "1234 (sh) S 1 2 3",
            "1234 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 20",
            "1234 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20",
        ] {
            assert_eq!(parse_stat_start_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn own_stat_parses() {
        let t = own_start_time().expect("/proc/self/stat");
        assert!(t > 0);
    }

    #[test]
    fn malformed_records_never_panic() {
        for bad in [
            &b""[..],
            b"\xff\xfe",
            b"{",
            b"[]",
            b"{\"pid\":-1,\"host\":\"h\",\"since\":\"s\"}",
            b"{\"pid\":99999999999,\"host\":\"h\",\"since\":\"s\"}",
            b"{\"pid\":1,\"host\":7,\"since\":\"s\"}",
        ] {
            assert_eq!(parse_holder(bad), None, "{bad:?}");
        }
        let odd = parse_holder(
            b"{\"pid\":1,\"host\":\"h\",\"since\":\"s\",\"start_time\":\"x\",\"boot_id\":3,\"pid_ns\":-1}",
        )
        .expect("core fields are fine");
        assert_eq!(
            (odd.start_time, odd.boot_id.as_deref(), odd.pid_ns),
            (None, None, None)
        );
        assert!(matches!(holder_liveness(&odd), Liveness::Unknown(_)));
    }
}
