//! Compaction: folding the log behind the newest snapshot into a new one, on demand, in the
//! background when the policy says so, and on close if configured. The public side is
//! [`CompactionPolicy`], [`CompactionReport`] and [`CompactionStatus`] (documented there, as the
//! module is private).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;
use turnwal_journal::event;
use turnwal_journal::killpoint::kill_point;
use turnwal_replay::compact::{self, CompactError, Expect};

use crate::{Error, Inner, Result};

/// When the journal compacts its log into a snapshot ([`Options::compaction`]).
///
/// By default: in the background once the log behind the newest snapshot passes 16 MiB or
/// 50 000 events, but not before it is half the snapshot's size. A background compaction holds
/// appends only for a moment (see [`CompactionReport`]); its error, having no caller, is kept
/// in [`CompactionStatus::last_error`].
///
/// ```
/// use turnwal::{CompactionPolicy, Journal, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path().join("s");
/// // Compact in the background past 4 MiB of log, and once more on close.
/// let compaction =
///     CompactionPolicy { log_bytes: Some(4 << 20), on_close: true, ..Default::default() };
/// let (journal, _) = Journal::open(&dir, Options { compaction, ..Options::default() })?;
/// journal.append_json(r#"{"kind":"meta","body":{"title":"t"}}"#)?;
/// journal.close()?;
/// assert!(dir.join("snapshot-00000000000000000002.jsonl").exists());
/// # Ok(()) }
/// ```
///
/// [`Options::compaction`]: crate::Options::compaction
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionPolicy {
    /// Compact in the background once the log behind the newest snapshot holds this many
    /// bytes (default 16 MiB; `None`: never by size).
    pub log_bytes: Option<u64>,
    /// ... or this many events (default 50 000, a few hundred streamed turns; `None`: never by
    /// count).
    pub log_records: Option<u64>,
    /// ... but only once the log is at least this fraction of the snapshot's size (default
    /// 0.5), so a long session is not rewritten for every small step: each byte of the session
    /// is rewritten at most about 1 / ratio times per doubling of the log.
    pub min_log_to_snapshot: f64,
    /// Compact in `close` (default false).
    pub on_close: bool,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            log_bytes: Some(16 << 20),
            log_records: Some(50_000),
            min_log_to_snapshot: 0.5,
            on_close: false,
        }
    }
}

impl CompactionPolicy {
    /// Never compacts by itself; only [`Journal::compact`](crate::Journal::compact) (or
    /// `turnwal compact DIR`) does.
    ///
    /// ```
    /// use turnwal::{CompactionPolicy, Options};
    ///
    /// let opts = Options { compaction: CompactionPolicy::manual(), ..Options::default() };
    /// assert_eq!(opts.compaction.log_bytes, None);
    /// ```
    pub fn manual() -> Self {
        CompactionPolicy {
            log_bytes: None,
            log_records: None,
            min_log_to_snapshot: 0.0,
            on_close: false,
        }
    }
}

/// What one compaction did: [`Journal::compact`](crate::Journal::compact) returns it, and
/// [`CompactionStatus::last`] keeps the last one (background compactions included).
///
/// What a compaction holds, and for how long:
/// - nothing, while it first syncs what is appended so far (appends go on meanwhile);
/// - the journal's fold lock (every append waits) only while it seals the active segment and
///   takes the retained events: one segment rotation (trim + fdatasync of the old segment,
///   which by then holds little unsynced data; create + fdatasync + rename + directory fsync of
///   the new one) plus one pointer copy per retained event. [`CompactionReport::hold_us`]
///   measures it;
/// - its own lock (another compaction waits, appends do not) for the rest: writing, syncing,
///   reading back and verifying the snapshot, renaming it, deleting what it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Nothing was appended since the newest snapshot: nothing written.
    pub skipped: bool,
    /// The snapshot file.
    pub snapshot: String,
    /// Every event at or below this seq is in it.
    pub through_seq: u64,
    /// Events it holds.
    pub records: u64,
    /// Messages it folds to.
    pub messages: usize,
    /// Its size in bytes.
    pub bytes: u64,
    /// Segment files deleted.
    pub removed_segments: Vec<String>,
    /// Older snapshots deleted.
    pub removed_snapshots: Vec<String>,
    /// How long appends were held (µs): sealing the segment and taking the events.
    pub hold_us: u64,
    /// The whole compaction (µs).
    pub total_us: u64,
}

/// Compactions of this journal so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionStatus {
    /// Snapshots installed since open.
    pub count: u64,
    /// The last report.
    pub last: Option<CompactionReport>,
    /// The last background compaction's error, if it failed. After a refused (shrinking)
    /// snapshot, background compaction stops for this journal.
    pub last_error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct State {
    policy: CompactionPolicy,
    /// Held for a whole compaction; holds the newest snapshot's `through_seq`.
    serial: Mutex<u64>,
    /// `through_seq` and size of the newest snapshot, readable without a lock.
    through_seq: AtomicU64,
    snapshot_bytes: AtomicU64,
    /// Log bytes behind the snapshot = writer's appended bytes + this.
    log_bias: AtomicI64,
    running: AtomicBool,
    stopped: AtomicBool,
    handle: Mutex<Option<JoinHandle<()>>>,
    status: Mutex<CompactionStatus>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    pub(crate) fn new(
        policy: CompactionPolicy,
        through_seq: u64,
        snapshot_bytes: u64,
        log_bytes: u64,
    ) -> Self {
        State {
            policy,
            serial: Mutex::new(through_seq),
            through_seq: AtomicU64::new(through_seq),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            log_bias: AtomicI64::new(i64::try_from(log_bytes).unwrap_or(i64::MAX)),
            running: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            handle: Mutex::new(None),
            status: Mutex::new(CompactionStatus::default()),
        }
    }

    pub(crate) fn policy(&self) -> &CompactionPolicy {
        &self.policy
    }

    pub(crate) fn status(&self) -> CompactionStatus {
        lock(&self.status).clone()
    }

    /// Waits for a background compaction to finish.
    pub(crate) fn join(&self) {
        let handle = lock(&self.handle).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn due(&self, last_seq: u64, appended_bytes: u64) -> bool {
        let p = &self.policy;
        let records = last_seq.saturating_sub(self.through_seq.load(Ordering::Relaxed));
        let bytes = (i64::try_from(appended_bytes).unwrap_or(i64::MAX))
            .saturating_add(self.log_bias.load(Ordering::Relaxed))
            .max(0) as u64;
        let over =
            p.log_bytes.is_some_and(|b| bytes >= b) || p.log_records.is_some_and(|r| records >= r);
        over && bytes as f64
            >= p.min_log_to_snapshot * self.snapshot_bytes.load(Ordering::Relaxed) as f64
    }
}

/// Starts a background compaction if the policy says it is due and none is running. Cheap when
/// it is not due: two atomic loads.
pub(crate) fn maybe_start(inner: &Arc<Inner>, last_seq: u64) {
    let st = &inner.compaction;
    if st.stopped.load(Ordering::Relaxed)
        || st.running.load(Ordering::Relaxed)
        || !st.due(last_seq, inner.writer.appended_bytes())
        || st.running.swap(true, Ordering::AcqRel)
    {
        return;
    }
    let mut handle = lock(&st.handle);
    if let Some(previous) = handle.take() {
        let _ = previous.join(); // finished: `running` was false
    }
    let bg = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("turnwal-compact".into())
        .spawn(move || {
            let result = bg.compact();
            let st = &bg.compaction;
            if let Err(e) = result {
                if matches!(e, Error::Compaction(CompactError::Shrink { .. })) {
                    st.stopped.store(true, Ordering::Relaxed);
                }
                lock(&st.status).last_error = Some(e.to_string());
            }
            st.running.store(false, Ordering::Release);
        });
    match spawned {
        Ok(h) => *handle = Some(h),
        Err(e) => {
            lock(&st.status).last_error = Some(format!("spawning the compaction thread: {e}"));
            st.running.store(false, Ordering::Release);
        }
    }
}

impl Inner {
    /// One compaction; see the module docs for what it holds and for how long.
    pub(crate) fn compact(&self) -> Result<CompactionReport> {
        let state = &self.compaction;
        let mut serial = lock(&state.serial);
        let started = Instant::now();
        // Sync what is appended so far before holding appends, so the seal below only has to
        // sync what arrives in between (appends go on during this sync).
        self.writer.sync()?;
        let (through, events, messages, session_id, first_live, appended, hold) = {
            let mut fold = self.fold();
            let held = Instant::now();
            let through = fold.last_seq();
            if through <= *serial {
                return Ok(CompactionReport {
                    skipped: true,
                    through_seq: *serial,
                    ..CompactionReport::default()
                });
            }
            let first_live = self.writer.seal()?;
            let appended = self.writer.appended_bytes();
            let events = fold.prune();
            let messages = fold.message_count();
            let session_id = fold.session_id().to_string();
            (
                through,
                events,
                messages,
                session_id,
                first_live,
                appended,
                held.elapsed(),
            )
        };
        kill_point("compact:rotated");
        let expect = Expect {
            session_id: &session_id,
            through_seq: through,
            messages,
        };
        let st = self.storage.as_ref();
        let installed = compact::install(st, &self.dir, &events, event::now_ms(), &expect)
            .map_err(Error::Compaction)?;
        drop(events);
        *serial = through;
        state.through_seq.store(through, Ordering::Relaxed);
        state
            .snapshot_bytes
            .store(installed.bytes, Ordering::Relaxed);
        state.log_bias.store(
            -i64::try_from(appended).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        let removed =
            compact::remove_covered(st, &self.dir, through, first_live, compact::Stage::Compact);
        let mut report = CompactionReport {
            skipped: false,
            snapshot: installed.file,
            through_seq: through,
            records: installed.records,
            messages: installed.messages,
            bytes: installed.bytes,
            removed_segments: Vec::new(),
            removed_snapshots: Vec::new(),
            hold_us: u64::try_from(hold.as_micros()).unwrap_or(u64::MAX),
            total_us: 0,
        };
        let removed = removed.map_err(Error::Compaction);
        if let Ok(r) = &removed {
            report.removed_segments.clone_from(&r.segments);
            report.removed_snapshots.clone_from(&r.snapshots);
        }
        report.total_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        {
            let mut status = lock(&state.status);
            status.count += 1;
            status.last = Some(report.clone());
        }
        // The snapshot is installed either way; files it covers and could not delete are
        // skipped by readers and deleted by the next writer.
        removed?;
        Ok(report)
    }
}
