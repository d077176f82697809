//! The writer: appends frames to the active segment, pre-writes ahead of the head, rotates,
//! and poisons itself on the first failed write or sync.
//!
//! `append` hands the frame to the kernel (`write_at`) before it returns, under every policy,
//! so a `kill -9` after `append` returned never loses the event. Durability against power loss
//! comes from the group commit ([`crate::group_commit`]) according to [`SyncPolicy`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::group_commit::Commit;
use crate::lock::WriterLock;
use crate::record::{self, EncodeError, PAYLOAD_BYTES_MAX};
use crate::segment::{self, SEGMENT_HEADER_BYTES, SegmentHeader, SessionId};
use crate::storage::{Storage, StorageFile};

/// The highest seq a journal holds: one below `u64::MAX`, so `seq + 1` never overflows.
pub const SEQ_MAX: u64 = u64::MAX - 1;

/// When appended events become durable against power loss.
///
/// Under every policy an appended event is in the kernel (written, not yet synced) before
/// `append` returns, so it survives the death of the process; the policy decides when it
/// survives a power cut too. The default is [`SyncPolicy::Batch`] with 5 ms and 1 MiB.
///
/// ```
/// # use turnwal_journal::writer::SyncPolicy;
/// use std::time::Duration;
///
/// // Each append durable before it returns (concurrent appends share one fdatasync).
/// let strict = SyncPolicy::Always;
/// // Durable within 20 ms, or as soon as 4 MiB are unsynced.
/// let batched =
///     SyncPolicy::Batch { max_delay: Duration::from_millis(20), max_bytes: 4 << 20 };
/// // Durable only at an explicit sync, a segment rotation or close.
/// let manual = SyncPolicy::Never;
/// # let _ = (strict, batched, manual);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Each `append` returns once its event is durable; concurrent appenders share one sync.
    Always,
    /// A background thread syncs at most `max_delay` after a write, sooner once `max_bytes`
    /// are unsynced; past twice `max_bytes` unsynced, appenders wait (backpressure).
    /// `durable_seq()` and `wait_durable(seq)` tell what is durable.
    Batch {
        /// Longest time a write stays unsynced.
        max_delay: Duration,
        /// Unsynced bytes that trigger a sync at once.
        max_bytes: u64,
    },
    /// Only explicit `sync()` (and rotation, and `close`) make events durable.
    Never,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Batch {
            max_delay: Duration::from_millis(5),
            max_bytes: 1 << 20,
        }
    }
}

/// Sizes and policy of a writer. The defaults suit agent sessions; smaller segments and
/// pre-writes make crash tests rotate and extend often.
///
/// ```
/// # use turnwal_journal::writer::WriterOptions;
/// let small = WriterOptions {
///     segment_bytes_max: 64 << 10,
///     prewrite_bytes: 4 << 10,
///     ..WriterOptions::default()
/// };
/// # let _ = small;
/// ```
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Durability policy.
    pub sync: SyncPolicy,
    /// A segment is sealed and a new one started once the next frame would pass this size.
    /// 64 MiB: a long agent session (thousands of turns) fits in a few segments, a rotation
    /// (one fdatasync + create + directory fsync, a few ms) is amortised over ~60k events, and
    /// compaction can drop whole segments.
    pub segment_bytes_max: u64,
    /// Zeros written (and synced) ahead of the write head. 1 MiB: an fdatasync over pre-written
    /// space avoids the file-size metadata update (~100 µs instead of ~150 µs on ext4), while a
    /// small idle session wastes at most 1 MiB.
    pub prewrite_bytes: u64,
    /// Largest payload accepted (bytes); at most the format's 64 MiB.
    pub record_bytes_max: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            sync: SyncPolicy::default(),
            segment_bytes_max: 64 << 20,
            prewrite_bytes: 1 << 20,
            record_bytes_max: 16 << 20,
        }
    }
}

/// Where a recovered journal continues.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    /// The last (active) segment.
    pub segment: SegmentHeader,
    /// Offset after its last valid frame.
    pub head: u64,
    /// Seq of the last valid event.
    pub last_seq: u64,
}

#[derive(Debug)]
struct Active {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    header: SegmentHeader,
    head: u64,
    prewritten_end: u64,
    next_seq: u64,
    buf: Vec<u8>,
}

/// The single writer of a journal directory.
#[derive(Debug)]
pub struct Writer {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    opts: WriterOptions,
    active: Mutex<Active>,
    commit: Arc<Commit>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    appended_bytes: AtomicU64,
    _lock: WriterLock,
}

impl Writer {
    /// Creates a new journal in `dir` (which must hold no segment) and writes its `session`
    /// event durably as seq 1.
    pub fn create(
        storage: Arc<dyn Storage>,
        dir: &Path,
        lock: WriterLock,
        opts: WriterOptions,
        session_id: SessionId,
        session_event: &Event,
    ) -> Result<Writer> {
        let header = SegmentHeader {
            segment_id: 1,
            first_seq: 1,
            session_id,
            created_at_ms: session_event.ts_ms,
        };
        let file: Arc<dyn StorageFile> =
            segment::create_segment(storage.as_ref(), dir, &header, opts.prewrite_bytes)?.into();
        let prewritten_end = file.len().map_err(|e| Error::io("stat", dir, e))?;
        let writer = Writer::start(
            storage,
            dir,
            lock,
            opts,
            file,
            header,
            SEGMENT_HEADER_BYTES as u64,
            prewritten_end,
            0,
        )?;
        let seq = writer.write_with(session_event, |_, _| {})?;
        writer.commit.sync_through(seq)?;
        Ok(writer)
    }

    /// Continues a recovered journal at `at`. The active segment is synced first, so everything
    /// recovered counts as durable.
    pub fn resume(
        storage: Arc<dyn Storage>,
        dir: &Path,
        lock: WriterLock,
        opts: WriterOptions,
        at: &ResumePoint,
    ) -> Result<Writer> {
        let path = segment::segment_path(dir, at.segment.segment_id);
        let file: Arc<dyn StorageFile> = storage
            .open(&path, crate::storage::OpenMode::ReadWrite)
            .map_err(|e| Error::io("open", &path, e))?
            .into();
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        Writer::start(
            storage,
            dir,
            lock,
            opts,
            file,
            at.segment,
            at.head,
            len,
            at.last_seq,
        )
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor shared by create and resume"
    )]
    fn start(
        storage: Arc<dyn Storage>,
        dir: &Path,
        lock: WriterLock,
        mut opts: WriterOptions,
        file: Arc<dyn StorageFile>,
        header: SegmentHeader,
        head: u64,
        prewritten_end: u64,
        last_seq: u64,
    ) -> Result<Writer> {
        opts.record_bytes_max = opts.record_bytes_max.min(PAYLOAD_BYTES_MAX);
        let path = segment::segment_path(dir, header.segment_id);
        if last_seq >= SEQ_MAX {
            return Err(Error::Corrupt {
                file: path,
                offset: head,
                reason: format!("the log ends at seq {last_seq}: no seq is left to append"),
            });
        }
        let commit = Arc::new(Commit::new(last_seq, Arc::clone(&file), path.clone()));
        let active = Active {
            file,
            path,
            header,
            head,
            prewritten_end,
            next_seq: last_seq + 1,
            buf: Vec::new(),
        };
        let flusher = match opts.sync {
            SyncPolicy::Batch {
                max_delay,
                max_bytes,
            } => {
                let commit = Arc::clone(&commit);
                let handle = std::thread::Builder::new()
                    .name("turnwal-flush".into())
                    .spawn(move || {
                        while commit.flusher_wait(max_delay, max_bytes) {
                            // A failure poisons the commit state; the loop then ends.
                            let _ = commit.sync_all();
                        }
                    })
                    .map_err(|e| Error::io("spawn flusher", dir, e))?;
                Some(handle)
            }
            SyncPolicy::Always | SyncPolicy::Never => None,
        };
        Ok(Writer {
            storage,
            dir: dir.to_path_buf(),
            opts,
            active: Mutex::new(active),
            commit,
            flusher: Mutex::new(flusher),
            appended_bytes: AtomicU64::new(0),
            _lock: lock,
        })
    }

    fn active(&self) -> MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `event` to the kernel, calls `written(seq, event)` while still holding the write
    /// lock (so callers can fold events in seq order), then applies the sync policy.
    pub fn append_with(&self, event: &Event, written: impl FnOnce(u64, &Event)) -> Result<u64> {
        let seq = self.write_with(event, written)?;
        self.apply_policy(seq)?;
        Ok(seq)
    }

    /// The durability half of an append: under `Always`, waits (or leads a sync) until `seq`
    /// is durable; otherwise returns at once.
    ///
    /// Under `Batch` the data at risk is bounded: once more than twice `max_bytes` are unsynced
    /// (the flusher is not keeping up with a slow disk), appenders wait for a sync.
    pub fn apply_policy(&self, seq: u64) -> Result<()> {
        match self.opts.sync {
            SyncPolicy::Always => self.commit.sync_through(seq).map(|_| ()),
            SyncPolicy::Batch { max_bytes, .. }
                if self.commit.unsynced_bytes() > max_bytes.saturating_mul(2) =>
            {
                self.commit.sync_through(seq).map(|_| ())
            }
            SyncPolicy::Batch { .. } | SyncPolicy::Never => Ok(()),
        }
    }

    /// [`Writer::append_with`] without a callback.
    pub fn append(&self, event: &Event) -> Result<u64> {
        self.append_with(event, |_, _| {})
    }

    /// The kernel half of an append: encodes `event`, writes it at the head (rotating first if
    /// the segment is full), and calls `written(seq, event)` before releasing the write lock.
    /// A refused event (too large) writes nothing; a failed write poisons the journal.
    pub fn write_with(&self, event: &Event, written: impl FnOnce(u64, &Event)) -> Result<u64> {
        let mut a = self.active();
        self.commit.check()?;
        let seq = a.next_seq;
        if seq > SEQ_MAX {
            return Err(Error::Corrupt {
                file: a.path.clone(),
                offset: a.head,
                reason: format!("seq {SEQ_MAX} was the last a journal can hold"),
            });
        }
        let mut frame_len = self.encode(&mut a, seq, event)?;
        if a.head + frame_len as u64 > self.opts.segment_bytes_max
            && a.head > SEGMENT_HEADER_BYTES as u64
        {
            self.rotate(&mut a)?;
            frame_len = self.encode(&mut a, seq, event)?;
        }
        let end = a.head + frame_len as u64;
        if end > a.prewritten_end {
            // Pre-write zeros ahead of the head in the same write, so the next syncs overwrite
            // space whose size is already durable.
            let target = (end + self.opts.prewrite_bytes).next_multiple_of(4096);
            let target = target.min(self.opts.segment_bytes_max.max(end));
            let zeros = usize::try_from(target - end).unwrap_or(0);
            let new_len = a.buf.len() + zeros;
            a.buf.resize(new_len, 0);
            a.prewritten_end = target;
        }
        if let Err(e) = a.file.write_at(a.head, &a.buf) {
            let err = Error::io("write", &a.path, e);
            self.commit.poison(err.to_string(), err.is_disk_full());
            return Err(err);
        }
        a.head = end;
        a.next_seq = seq + 1;
        self.appended_bytes
            .fetch_add(frame_len as u64, Ordering::Relaxed);
        written(seq, event);
        let unsynced = self.commit.written(seq, frame_len as u64);
        drop(a);
        if let SyncPolicy::Batch { max_bytes, .. } = self.opts.sync
            && (unsynced == frame_len as u64 || unsynced >= max_bytes)
        {
            self.commit.want_flush();
        }
        crate::killpoint::kill_point("append:written");
        Ok(seq)
    }

    fn encode(&self, a: &mut Active, seq: u64, event: &Event) -> Result<usize> {
        let watermark = self.commit.durable_seq();
        let segment_id = a.header.segment_id;
        a.buf.clear();
        record::encode(
            seq,
            segment_id,
            watermark,
            event,
            self.opts.record_bytes_max,
            &mut a.buf,
        )
        .map_err(|e| match e {
            EncodeError::TooLarge { size, limit } => Error::RecordTooLarge { size, limit },
            EncodeError::Codec(why) => Error::Input(crate::error::InputError::new("event", why)),
        })
    }

    /// Seals the active segment (trim the pre-written zeros, fdatasync: after this, nothing in
    /// it can be torn) and starts the next one. Any failure poisons the journal.
    fn rotate(&self, a: &mut Active) -> Result<()> {
        let result = (|| -> Result<(Arc<dyn StorageFile>, SegmentHeader, u64)> {
            a.file
                .set_len(a.head)
                .map_err(|e| Error::io("truncate", &a.path, e))?;
            a.file
                .sync_data()
                .map_err(|e| Error::io("fdatasync", &a.path, e))?;
            crate::killpoint::kill_point("rotate:sealed");
            let segment_id = a
                .header
                .segment_id
                .checked_add(1)
                .ok_or_else(|| Error::Corrupt {
                    file: a.path.clone(),
                    offset: 0,
                    reason: "no segment id is left after this one".into(),
                })?;
            let header = SegmentHeader {
                segment_id,
                first_seq: a.next_seq,
                session_id: a.header.session_id,
                created_at_ms: crate::event::now_ms(),
            };
            let file: Arc<dyn StorageFile> = segment::create_segment(
                self.storage.as_ref(),
                &self.dir,
                &header,
                self.opts.prewrite_bytes,
            )?
            .into();
            let prewritten_end = file.len().map_err(|e| Error::io("stat", &self.dir, e))?;
            crate::killpoint::kill_point("rotate:created");
            Ok((file, header, prewritten_end))
        })();
        match result {
            Ok((file, header, prewritten_end)) => {
                let path = segment::segment_path(&self.dir, header.segment_id);
                self.commit.sealed(Arc::clone(&file), path.clone());
                a.file = file;
                a.path = path;
                a.header = header;
                a.head = SEGMENT_HEADER_BYTES as u64;
                a.prewritten_end = prewritten_end;
                Ok(())
            }
            Err(e) => {
                self.commit.poison(e.to_string(), e.is_disk_full());
                Err(e)
            }
        }
    }

    /// Seals the active segment if it holds any record, and starts the next one. Afterwards
    /// every event appended so far is in a sealed, fdatasynced segment, and the active
    /// segment (whose id is returned) starts at `last_seq() + 1`. Call it while no append can
    /// run (compaction holds the journal's fold lock) to know exactly where the cut is.
    pub fn seal(&self) -> Result<u64> {
        let mut a = self.active();
        self.commit.check()?;
        if a.head > SEGMENT_HEADER_BYTES as u64 {
            self.rotate(&mut a)?;
        }
        Ok(a.header.segment_id)
    }

    /// Frame bytes written since this writer started (all segments).
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes.load(Ordering::Relaxed)
    }

    /// Makes everything appended so far durable; returns the durable watermark.
    pub fn sync(&self) -> Result<u64> {
        self.commit.sync_all()
    }

    /// Blocks until `seq` is durable (leading a sync if needed).
    pub fn wait_durable(&self, seq: u64) -> Result<u64> {
        self.commit.sync_through(seq)
    }

    /// Highest seq covered by a completed sync.
    pub fn durable_seq(&self) -> u64 {
        self.commit.durable_seq()
    }

    /// Highest seq appended.
    pub fn last_seq(&self) -> u64 {
        self.commit.written_seq()
    }

    /// Waits until the durable watermark passes `seen` or `timeout` elapses.
    pub fn wait_durable_after(&self, seen: u64, timeout: Duration) -> Result<u64> {
        self.commit.wait_durable_after(seen, timeout)
    }

    /// Number of group-commit syncs run so far (for tests and stats).
    pub fn sync_count(&self) -> u64 {
        self.commit.sync_count()
    }

    /// The options in force.
    pub fn options(&self) -> &WriterOptions {
        &self.opts
    }

    /// Syncs, stops the flusher and refuses further work. Returns the durable watermark.
    pub fn close(&self) -> Result<u64> {
        let synced = self.commit.sync_all();
        self.stop();
        synced
    }

    fn stop(&self) {
        self.commit.close();
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Everything appended is already in the kernel; just stop the flusher thread.
        self.stop();
    }
}
