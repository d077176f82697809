//! Group commit on a durable watermark.
//!
//! Appenders write their record to the kernel themselves (so `append` is kill -9 safe under any
//! policy) and then, if they need durability, call [`Commit::sync_through`]. The first caller
//! that finds no sync in flight becomes the leader: it snapshots `written_seq`, releases the lock,
//! runs one `fdatasync`, and publishes the new `durable_seq`. Everyone who arrived meanwhile
//! waits on the condvar and is covered by that sync or leads the next one, so N concurrent
//! appenders share far fewer than N syncs.
//!
//! Invariants:
//! - `durable_seq <= written_seq`; both only grow.
//! - At most one sync is in flight (`leader`).
//! - The leader flag is reset and every waiter is woken on every exit path, errors and panics
//!   included (a guard on the leader). A failed sync poisons the journal; it is never retried
//!   (fsyncgate: after a failed fsync the kernel may have dropped the dirty pages).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::StorageFile;

/// Shared commit state of one writer.
#[derive(Debug)]
pub struct Commit {
    state: Mutex<State>,
    changed: Condvar,
    flush_wanted: Condvar,
}

#[derive(Debug)]
struct State {
    written_seq: u64,
    durable_seq: u64,
    unsynced_bytes: u64,
    leader: bool,
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    /// The first I/O failure, and whether it was a full disk.
    poisoned: Option<(String, bool)>,
    closed: bool,
    syncs: u64,
    /// Threads blocked on `changed`: a leader that finds none skips the wake-up, which would
    /// otherwise cost a futex call on every durable append of a single writer.
    waiters: u32,
}

/// Resets the leader flag and wakes everyone, however the leader leaves.
struct LeaderGuard<'a> {
    commit: &'a Commit,
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.commit.lock();
            st.leader = false;
            if st.poisoned.is_none() {
                st.poisoned = Some(("a sync leader panicked".into(), false));
            }
            drop(st);
            self.commit.changed.notify_all();
        }
    }
}

impl Commit {
    /// New commit state: everything through `durable_seq` is durable, `file` is the active segment.
    pub fn new(durable_seq: u64, file: Arc<dyn StorageFile>, path: PathBuf) -> Commit {
        Commit {
            state: Mutex::new(State {
                written_seq: durable_seq,
                durable_seq,
                unsynced_bytes: 0,
                leader: false,
                file,
                path,
                poisoned: None,
                closed: false,
                syncs: 0,
                waiters: 0,
            }),
            changed: Condvar::new(),
            flush_wanted: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain counters behind, never a broken invariant
        // we rely on; keep serving (and report poison through `poisoned`).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails with [`Error::Poisoned`] or [`Error::Closed`] if the journal can take no more work.
    pub fn check(&self) -> Result<()> {
        check(&self.lock())
    }

    /// Highest seq covered by a completed sync.
    pub fn durable_seq(&self) -> u64 {
        self.lock().durable_seq
    }

    /// Bytes written but not yet covered by a completed sync.
    pub fn unsynced_bytes(&self) -> u64 {
        self.lock().unsynced_bytes
    }

    /// Highest seq handed to the kernel.
    pub fn written_seq(&self) -> u64 {
        self.lock().written_seq
    }

    /// How many syncs of the active segment the group commit has run.
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// Records that `seq` (of `bytes` bytes) is in the kernel. Returns the unsynced byte count.
    pub fn written(&self, seq: u64, bytes: u64) -> u64 {
        let mut st = self.lock();
        debug_assert!(seq > st.written_seq);
        st.written_seq = seq;
        st.unsynced_bytes += bytes;
        st.unsynced_bytes
    }

    /// Latches the first I/O failure (`disk_full`: it was `ENOSPC` or `EDQUOT`) and wakes every
    /// waiter.
    pub fn poison(&self, cause: String, disk_full: bool) {
        let mut st = self.lock();
        if st.poisoned.is_none() {
            st.poisoned = Some((cause, disk_full));
        }
        drop(st);
        self.changed.notify_all();
        self.flush_wanted.notify_all();
    }

    /// After a segment was sealed by the writer itself (synced outside the group commit):
    /// everything written is durable; `file` is the new active segment.
    pub fn sealed(&self, file: Arc<dyn StorageFile>, path: PathBuf) {
        let mut st = self.lock();
        st.durable_seq = st.written_seq;
        st.unsynced_bytes = 0;
        st.file = file;
        st.path = path;
        drop(st);
        self.changed.notify_all();
    }

    /// Blocks until every seq `<= seq` is durable, leading a sync if none is in flight.
    /// Returns the durable watermark.
    pub fn sync_through(&self, seq: u64) -> Result<u64> {
        let mut st = self.lock();
        if seq > st.written_seq {
            return Err(Error::Input(crate::error::InputError::new(
                "seq",
                format!("{seq} has not been appended (last is {})", st.written_seq),
            )));
        }
        loop {
            check(&st)?;
            if st.durable_seq >= seq {
                return Ok(st.durable_seq);
            }
            if st.leader {
                st.waiters += 1;
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                st.waiters -= 1;
                continue;
            }
            st.leader = true;
            let target = st.written_seq;
            let target_bytes = st.unsynced_bytes;
            let file = Arc::clone(&st.file);
            let path = st.path.clone();
            drop(st);

            let mut guard = LeaderGuard {
                commit: self,
                armed: true,
            };
            crate::killpoint::kill_point("commit:before-sync");
            let result = file.sync_data();
            st = self.lock();
            guard.armed = false;
            st.leader = false;
            st.syncs += 1;
            match result {
                Ok(()) => {
                    crate::killpoint::kill_point("commit:after-sync");
                    // The file may have been swapped by a rotation meanwhile; the rotation
                    // synced the old one itself, so `target` is durable either way.
                    if target > st.durable_seq {
                        st.durable_seq = target;
                        st.unsynced_bytes = st.unsynced_bytes.saturating_sub(target_bytes);
                    }
                }
                Err(e) => {
                    if st.poisoned.is_none() {
                        let err = Error::io("fdatasync", &path, e);
                        let full = err.is_disk_full();
                        st.poisoned = Some((err.to_string(), full));
                    }
                }
            }
            if st.waiters > 0 {
                self.changed.notify_all();
            }
        }
    }

    /// Syncs everything written so far.
    pub fn sync_all(&self) -> Result<u64> {
        let written = self.written_seq();
        self.sync_through(written)
    }

    /// Waits until `durable_seq` exceeds `seen`, the timeout passes, or the journal fails.
    pub fn wait_durable_after(&self, seen: u64, timeout: Duration) -> Result<u64> {
        let mut st = self.lock();
        st.waiters += 1;
        let (mut st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| {
                s.durable_seq <= seen && s.poisoned.is_none() && !s.closed
            })
            .unwrap_or_else(|p| p.into_inner());
        st.waiters -= 1;
        if let Some((cause, disk_full)) = &st.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
                disk_full: *disk_full,
            });
        }
        Ok(st.durable_seq)
    }

    /// Wakes the background flusher (batch policy): on the first unsynced write and once the
    /// byte bound is reached.
    pub fn want_flush(&self) {
        self.flush_wanted.notify_one();
    }

    /// The background flusher's wait: first for any unsynced write, then up to `max_delay` more
    /// (cut short once `max_bytes` are unsynced). Returns false when the journal is closed or
    /// poisoned.
    pub fn flusher_wait(&self, max_delay: Duration, max_bytes: u64) -> bool {
        let mut st = self.lock();
        while !st.closed && st.poisoned.is_none() && st.unsynced_bytes == 0 {
            st = self
                .flush_wanted
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
        let (st, _) = self
            .flush_wanted
            .wait_timeout_while(st, max_delay, |s| {
                !s.closed && s.poisoned.is_none() && s.unsynced_bytes < max_bytes
            })
            .unwrap_or_else(|p| p.into_inner());
        !st.closed && st.poisoned.is_none()
    }

    /// Marks the journal closed: later calls fail with [`Error::Closed`]; waiters wake.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
        self.flush_wanted.notify_all();
    }
}

fn check(st: &State) -> Result<()> {
    if let Some((cause, disk_full)) = &st.poisoned {
        return Err(Error::Poisoned {
            cause: cause.clone(),
            disk_full: *disk_full,
        });
    }
    if st.closed {
        return Err(Error::Closed);
    }
    Ok(())
}
