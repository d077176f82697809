//! Lock takeover on the real file system: `take_over` breaks the writer lock only when the
//! recorded holder is provably dead on this host, and otherwise refuses, changing nothing.
//!
//! A stale lock is staged by taking the lock in this process with `acquire` (the OS lock then
//! really is held) and rewriting the record in the same inode to name another holder.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use turnwal_journal::lock::{
    LOCK_FILE, Liveness, WriterLock, acquire, holder_liveness, is_held, read_holder, take_over,
};
use turnwal_journal::storage::RealFs;
use turnwal_journal::{Error, LockHolder};

/// A fresh directory under the system temp dir, removed on drop (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "turnwal-takeover-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn lock_file(&self) -> PathBuf {
        self.0.join(LOCK_FILE)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Field 22 of `/proc/self/stat`, parsed here independently of the crate.
fn own_start_time() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    pid
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Rewrites the record in the (locked) LOCK file in place: same inode.
fn write_record(dir: &TempDir, record: &serde_json::Value) {
    let before = inode(&dir.lock_file());
    std::fs::write(dir.lock_file(), format!("{record}\n")).unwrap();
    assert_eq!(inode(&dir.lock_file()), before, "rewritten in place");
}

/// A full record for `h`, as `acquire` writes it.
fn record_of(h: &LockHolder) -> serde_json::Value {
    serde_json::json!({
        "pid": h.pid,
        "host": h.host,
        "since": h.since,
        "start_time": h.start_time,
        "boot_id": h.boot_id,
        "pid_ns": h.pid_ns,
    })
}

/// Takes the lock in this process: the OS lock is really held for the life of the result.
fn hold(dir: &TempDir) -> WriterLock {
    acquire(&RealFs, dir.path()).unwrap()
}

/// `take_over` must refuse, with `Unknown` (or `Alive` when `alive`), and change nothing.
fn assert_refused(dir: &TempDir, alive: bool) -> String {
    let ino = inode(&dir.lock_file());
    let bytes = std::fs::read(dir.lock_file()).unwrap();
    let err = take_over(&RealFs, dir.path()).unwrap_err();
    let msg = err.to_string();
    match &err {
        Error::TakeoverRefused { liveness, .. } => {
            if alive {
                assert_eq!(*liveness, Liveness::Alive, "{msg}");
            } else {
                assert!(matches!(liveness, Liveness::Unknown(_)), "{msg}");
            }
        }
        other => panic!("expected TakeoverRefused, got {other:?}"),
    }
    assert!(msg.contains("refused"), "{msg}");
    assert_eq!(inode(&dir.lock_file()), ino, "LOCK was not replaced");
    assert_eq!(
        std::fs::read(dir.lock_file()).unwrap(),
        bytes,
        "LOCK was not rewritten"
    );
    msg
}

#[test]
fn acquire_records_this_process_identity() {
    let dir = TempDir::new("identity");
    let lock = hold(&dir);
    let h = &lock.holder;
    assert_eq!(h.pid, std::process::id());
    assert_eq!(h.start_time, Some(own_start_time()));
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(h.boot_id.as_deref(), Some(boot.trim()));
    assert!(h.pid_ns.is_some());
    assert_eq!(read_holder(&RealFs, dir.path()).as_ref(), Some(h));
    let text = std::fs::read_to_string(dir.lock_file()).unwrap();
    assert!(
        text.starts_with("{\"pid\":") && text.ends_with("}\n"),
        "{text}"
    );
    // Display still names pid, host, since, and nothing more.
    assert_eq!(
        h.to_string(),
        format!("pid {} on {} since {}", h.pid, h.host, h.since)
    );
}

#[test]
fn a_lock_whose_holder_is_provably_dead_is_taken_over() {
    let dir = TempDir::new("dead");
    let stale = hold(&dir);
    let mut ghost = stale.holder.clone();
    ghost.pid = dead_pid();
    write_record(&dir, &record_of(&ghost));
    let old_ino = inode(&dir.lock_file());

    match acquire(&RealFs, dir.path()) {
        Err(Error::Locked { holder }) => assert_eq!(holder, ghost),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(holder_liveness(&ghost), Liveness::Dead);

    let lock = take_over(&RealFs, dir.path()).unwrap();
    assert_ne!(inode(&dir.lock_file()), old_ino, "a fresh LOCK file");
    let now = read_holder(&RealFs, dir.path()).unwrap();
    assert_eq!(now, lock.holder);
    assert_eq!(now.pid, std::process::id());
    assert_eq!(now.start_time, Some(own_start_time()));
    assert!(is_held(dir.path()), "the fresh LOCK is locked");
    // The new lock excludes: a second writer is refused, naming us.
    match acquire(&RealFs, dir.path()) {
        Err(Error::Locked { holder }) => assert_eq!(holder, lock.holder),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(stale); // still held its OS lock on the orphaned inode until here
}

#[test]
fn a_live_holder_is_not_taken_over() {
    let dir = TempDir::new("alive");
    let lock = hold(&dir);
    // The record names this live process with its true start time.
    assert_eq!(lock.holder.start_time, Some(own_start_time()));
    assert_eq!(holder_liveness(&lock.holder), Liveness::Alive);
    let msg = assert_refused(&dir, true);
    assert!(msg.contains("alive"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
}

#[test]
fn a_holder_on_another_host_is_not_taken_over() {
    let dir = TempDir::new("other-host");
    let lock = hold(&dir);
    let mut remote = lock.holder.clone();
    remote.host = "some-other-host.invalid".into();
    remote.pid = dead_pid();
    write_record(&dir, &record_of(&remote));
    assert!(matches!(holder_liveness(&remote), Liveness::Unknown(_)));
    let msg = assert_refused(&dir, false);
    assert!(msg.contains("some-other-host.invalid"), "{msg}");
    assert!(msg.contains("cannot be proven dead"), "{msg}");
}

#[test]
fn an_old_record_without_identity_is_not_taken_over() {
    let dir = TempDir::new("old-record");
    let lock = hold(&dir);
    let old = serde_json::json!({
        "pid": dead_pid(),
        "host": lock.holder.host,
        "since": lock.holder.since,
    });
    write_record(&dir, &old);
    let h = read_holder(&RealFs, dir.path()).expect("an old record still reads");
    assert_eq!(
        (h.start_time, h.boot_id.as_ref(), h.pid_ns),
        (None, None, None)
    );
    assert!(matches!(holder_liveness(&h), Liveness::Unknown(_)));
    let msg = assert_refused(&dir, false);
    assert!(msg.contains("start time"), "{msg}");
}

#[test]
fn a_malformed_record_is_not_taken_over() {
    let dir = TempDir::new("malformed");
    let _lock = hold(&dir);
    std::fs::write(dir.lock_file(), b"{\"pid\": \xff garbage").unwrap();
    assert_eq!(read_holder(&RealFs, dir.path()), None);
    let msg = assert_refused(&dir, false);
    assert!(msg.contains("no readable holder record"), "{msg}");
}

#[test]
fn a_free_lock_is_just_acquired() {
    let dir = TempDir::new("free");
    // No LOCK file at all.
    let lock = take_over(&RealFs, dir.path()).unwrap();
    assert_eq!(lock.holder.pid, std::process::id());
    let ino = inode(&dir.lock_file());
    drop(lock);
    // A LOCK file left by a holder that is gone (the kernel released its OS lock), even one
    // naming a dead pid: taken as is, not unlinked.
    let mut ghost = read_holder(&RealFs, dir.path()).unwrap();
    ghost.pid = dead_pid();
    write_record(&dir, &record_of(&ghost));
    let lock = take_over(&RealFs, dir.path()).unwrap();
    assert_eq!(
        inode(&dir.lock_file()),
        ino,
        "same file, no takeover needed"
    );
    assert_eq!(read_holder(&RealFs, dir.path()).unwrap(), lock.holder);
}

#[test]
fn another_boot_of_this_host_is_dead() {
    let dir = TempDir::new("reboot");
    let stale = hold(&dir);
    let mut before_reboot = stale.holder.clone();
    // Even this very pid and start time: they were of another boot.
    before_reboot.boot_id = Some("00000000-0000-4000-8000-000000000000".into());
    assert_eq!(holder_liveness(&before_reboot), Liveness::Dead);
    write_record(&dir, &record_of(&before_reboot));
    let old_ino = inode(&dir.lock_file());
    let lock = take_over(&RealFs, dir.path()).unwrap();
    assert_ne!(inode(&dir.lock_file()), old_ino);
    assert_eq!(read_holder(&RealFs, dir.path()).unwrap(), lock.holder);
    drop(stale);
}

#[test]
fn a_reused_pid_is_dead() {
    let dir = TempDir::new("reused-pid");
    let lock = hold(&dir);
    // This process's pid, but a start time it does not have: another process had the pid.
    let mut earlier = lock.holder.clone();
    earlier.start_time = Some(own_start_time().wrapping_sub(1));
    assert_eq!(holder_liveness(&earlier), Liveness::Dead);
    // Another PID namespace: the pid proves nothing.
    let mut foreign = lock.holder.clone();
    foreign.pid = dead_pid();
    foreign.pid_ns = foreign.pid_ns.map(|n| n ^ 1);
    assert!(matches!(holder_liveness(&foreign), Liveness::Unknown(_)));
}
