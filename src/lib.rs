//! A crash-safe write-ahead turn journal for AI-agent chat sessions: an agent harness appends
//! every message, streaming delta, tool-call event and token-usage event as it happens, and
//! turnwal keeps them in a checksummed, segment-structured log with batched fsyncs. After
//! `kill -9`, an OOM kill or a power cut, opening the journal gives the session back exactly as
//! far as it was durable — never a hole, never garbage, never an older conversation.
//!
//! # The durability contract
//!
//! - **When [`Journal::append`] returns `Ok`, the event is in the kernel**, under every
//!   [`SyncPolicy`]: it survives `kill -9`, an OOM kill, a panic or a closed terminal.
//! - **Durable against power loss** is a second, later point: every event at or below
//!   [`Journal::durable_seq`]. When an event gets there depends on the policy
//!   ([`Options::sync`]):
//!
//!   | [`SyncPolicy`] | when `append` returns, the event is | durable against power loss |
//!   |---|---|---|
//!   | `Always` | durable | before `append` returns (concurrent appenders share one `fdatasync`) |
//!   | `Batch { max_delay, max_bytes }` (the default: 5 ms, 1 MiB) | in the kernel | within `max_delay`, or as soon as `max_bytes` are unsynced, by a background sync |
//!   | `Never` | in the kernel | at [`Journal::sync`], a segment rotation or [`Journal::close`] |
//!
//!   Under any policy, [`Journal::append_durable`], [`Journal::sync`] and
//!   [`Journal::wait_durable`] return only once what they name is durable: call them before
//!   you tell anyone a turn is saved, or before a tool with side effects runs.
//! - **Prefix integrity.** After any crash the journal reads back as events `1..=n` exactly as
//!   appended, for some `n` at least the durable point: contiguous seqs, no duplicates, nothing
//!   that was not appended.
//! - **A torn tail is cut only when it is provably unacknowledged**: a write the crash
//!   interrupted at the end of the last segment, above every durable watermark on disk.
//!   [`Journal::open`] cuts it, keeps its bytes in a `quarantine-*` file, and says so in the
//!   [`RecoveryReport`].
//! - **Corruption is refused, never guessed around.** Damage anywhere else (acknowledged data,
//!   a sealed segment, a gap in the seqs) makes [`Journal::open`] fail with
//!   [`Error::Refused`] and change nothing. [`Journal::open_read_only`] still reads the valid
//!   prefix; salvage ([`Journal::salvage`], [`Journal::repair_salvage`], [`Mode::Salvage`]) is
//!   a separate, explicit act that keeps the damaged bytes and reports exactly which seqs were
//!   lost.
//! - **Fail-stop.** A failed write or fsync is never retried: the journal is poisoned, every
//!   waiter gets the error, and reopening recovers from what is on disk.
//! - **One writer, lock-free readers.** [`Journal::open`] takes an exclusive lock on the
//!   directory; a second writer gets [`turnwal_journal::Error::Locked`] naming the holder (pid,
//!   host, since when). Readers ([`Journal::open_read_only`], [`Tail`], [`Store::list`]) take
//!   no lock, change no byte, and see a consistent prefix while the writer appends and
//!   compacts.
//! - **Crash-safe compaction** ([`Journal::compact`], [`CompactionPolicy`]): a crash at any
//!   step leaves the session before or after it, never less; a snapshot that would hold fewer
//!   messages than the log is refused.
//! - **Private by default**: files `0600`, directories `0700`, symlinks never followed, no path
//!   outside the journal directory touched.
//!
//! # Quick start
//!
//! Events go in as JSON envelopes, `{"kind", "turn"?, "ts"?, "body"}` (the journal assigns
//! the `seq`); see [`Journal::append_json`] for the kinds.
//!
//! ```
//! use turnwal::{Journal, Options, Status, ToolCallState};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let dir = tmp.path().join("session");
//! let (journal, _) = Journal::open(&dir, Options::default())?; // creates it
//! journal.append_json(r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#)?;
//! journal.append_json(r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user",
//!     "parts":[{"type":"text","text":"What is in this directory?"}]}}"#)?;
//! journal.append_json(r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant",
//!     "parts":[{"type":"tool_call","call_id":"c1","name":"ls","arguments":"{}"}]}}"#)?;
//! let durable = journal.sync()?; // seqs 1..=durable now survive a power cut
//! drop(journal); // or a crash: appended events are in the kernel already
//!
//! // Reopen (after a restart, this is where recovery happens) and read the session.
//! let (journal, report) = Journal::open(&dir, Options::default())?;
//! assert_eq!((report.status, report.last_seq), (Status::Clean, durable));
//! let session = journal.session();
//! assert_eq!(session.messages.len(), 2);
//! assert_eq!(session.open_turn, Some(1)); // the turn never ended
//! assert_eq!(session.tool_calls[0].state, ToolCallState::NotStarted);
//! journal.close()?; // final fsync, releases the lock
//! # Ok(()) }
//! ```
//!
//! # Map of the crate
//!
//! - [`Journal`]: one session's journal: [`open`](Journal::open) (with recovery), append,
//!   sync, read the [`Session`], [`compact`](Journal::compact), [`close`](Journal::close).
//! - [`Store`]: many sessions under one root directory, one journal per session id: create,
//!   open, list (damaged ones included, with their status), fork, delete.
//! - [`Tail`]: follows a journal from another thread or process, yielding each durable event
//!   once.
//! - [`Mode`] and [`RecoveryReport`]: what an open does with damage ([`Options::recovery`]),
//!   and what it found and did (the stable JSON of `turnwal verify --json`).
//! - [`Journal::fork`]: a new session that starts from another one's state at a seq.
//! - [`Journal::repair_dangling_tool_calls`]: answers the tool calls a crash left unanswered,
//!   so a provider accepts the history again.
//! - [`provider`]: the session as the message list OpenAI chat completions or Anthropic
//!   Messages accept on resume.
//! - [`import`]: sessions from OpenAI chat and Responses, Anthropic Messages, Claude Code and
//!   Codex CLI, into a new journal.
#![cfg_attr(
    feature = "sim",
    doc = "- [`storage::sim`]: a simulated, power-cut-capable file system (cargo feature `sim`), \
           to crash-test a harness built on turnwal through [`Options::storage`]."
)]
#![cfg_attr(
    not(feature = "sim"),
    doc = "- `storage::sim`: a simulated, power-cut-capable file system (cargo feature `sim`), \
           to crash-test a harness built on turnwal through [`Options::storage`]."
)]
//! - [`turnwal_journal`] (the write path: record format, segments, storage seam, writer, group
//!   commit) and [`turnwal_replay`] (the read path: scan, recovery table, session fold,
//!   snapshots): the crates this one joins; most users need neither directly.

#![deny(missing_docs)]

mod compaction;
mod error;
mod fork;
pub mod import;
pub mod provider;
mod repair;
mod report;
mod resume;
mod store;
mod tail;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use compaction::{CompactionPolicy, CompactionReport, CompactionStatus};
pub use error::{Error, Result};
pub use repair::{Conflict, DamagedRange, FileNote, MovedAside, SalvageReport, UnverifiedSnapshot};
pub use report::{
    Ignored, PartialMessage, PendingCall, RecoveryReport, ResumeState, SegmentReport,
    SnapshotReport,
};
pub use resume::{AbortedCall, DanglingRepair};
pub use store::{SessionEntry, SessionStatus, Store, TRASH_DIR};
pub use tail::Tail;
pub use turnwal_journal::event::{self, Event, Kind};
pub use turnwal_journal::segment::SessionId;
pub use turnwal_journal::storage::{self, RealFs, Storage};
pub use turnwal_journal::writer::{SyncPolicy, WriterOptions};
pub use turnwal_journal::{Error as JournalError, InputError, LockHolder};
pub use turnwal_replay::compact::CompactError;
pub use turnwal_replay::recover::{Action, Mode, Status};
pub use turnwal_replay::session::{
    MessageStatus, MessageView, Session, SessionFold, ToolCallState, ToolCallView, TurnState,
    TurnView,
};

use turnwal_journal::event::SessionInfo;
use turnwal_journal::segment::{self, TMP_SUFFIX};
use turnwal_journal::writer::{ResumePoint, Writer};
use turnwal_journal::{Error as JError, lock};
use turnwal_replay::recover::{self, apply_cut};
use turnwal_replay::scan::{self, DirScan, Stop};
use turnwal_replay::snapshot::{self, Snapshot};

/// How to open a journal: [`Journal::open`], [`Journal::open_read_only`], [`Store::open`],
/// [`Tail::new`] and the rest all take one.
///
/// Start from [`Options::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use turnwal::{CompactionPolicy, Mode, Options, SyncPolicy};
///
/// let opts = Options {
///     // Durable against power loss within 20 ms of each append.
///     sync: SyncPolicy::Batch { max_delay: Duration::from_millis(20), max_bytes: 4 << 20 },
///     // Refuse to open with any damage, even a torn tail.
///     recovery: Mode::Strict,
///     // Also compact into one snapshot file when the journal is closed.
///     compaction: CompactionPolicy { on_close: true, ..CompactionPolicy::default() },
///     ..Options::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the journal if the directory holds none (default: true). A new journal is only
    /// created in a missing or empty directory.
    pub create: bool,
    /// When appended events become durable against power loss (default:
    /// [`SyncPolicy::Batch`], 5 ms / 1 MiB). Under every policy an event is in the kernel
    /// (`kill -9` safe) when `append` returns.
    pub sync: SyncPolicy,
    /// Segment size, pre-write size, record size limit. Its `sync` field is ignored: the
    /// journal uses [`Options::sync`].
    pub writer: WriterOptions,
    /// What an open does with damage (default: [`Mode::TolerateTornTail`], cut a proven torn
    /// tail and refuse corruption).
    pub recovery: Mode,
    /// The file system (default: [`RealFs`]; the simulated one of `storage::sim` for crash
    /// tests).
    pub storage: Arc<dyn Storage>,
    /// Session id for a new journal (default: random). Ignored when the journal exists.
    pub session_id: Option<SessionId>,
    /// When to compact the log into a snapshot (default: automatically, see
    /// [`CompactionPolicy`]).
    pub compaction: CompactionPolicy,
    /// Take over a writer lock whose holder is provably dead on this host (default: false;
    /// see [`turnwal_journal::lock::take_over`] and the README's "Lock takeover" for the
    /// risks). Not needed after a crash: the kernel releases the lock of a dead process.
    pub takeover: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create: true,
            sync: SyncPolicy::default(),
            writer: WriterOptions::default(),
            recovery: Mode::default(),
            storage: Arc::new(RealFs),
            session_id: None,
            compaction: CompactionPolicy::default(),
            takeover: false,
        }
    }
}

/// An open journal: one session, its single writer, and the materialised session kept up to
/// date as events are appended.
///
/// Get one with [`Journal::open`] (or [`Store::create`] / [`Store::open_session`]). It holds
/// the directory's writer lock until it is closed or dropped. It is `Sync`: share it between
/// threads (by reference or in an [`Arc`]) to append concurrently; each append gets the next
/// seq, and under [`SyncPolicy::Always`] concurrent appenders share one fsync.
///
/// ```
/// use turnwal::{Journal, Options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let (journal, _) = Journal::open(tmp.path().join("s"), Options::default())?;
/// let journal = &journal;
/// let seqs = std::thread::scope(|s| {
///     let workers: Vec<_> = (0..4)
///         .map(|i| s.spawn(move || {
///             let line = format!(r#"{{"kind":"meta","body":{{"worker-{i}":"done"}}}}"#);
///             journal.append_json(&line)
///         }))
///         .collect();
///     workers.into_iter().map(|w| w.join().unwrap()).collect::<turnwal::Result<Vec<u64>>>()
/// })?;
/// assert_eq!(seqs.len(), 4);
/// assert_eq!(journal.last_seq(), 5); // the session event, then four appends
/// assert_eq!(journal.session().meta.len(), 4);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

/// The journal's state, shared with a background compaction.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    writer: Writer,
    /// Every append holds this while it writes, so events are folded in seq order, and a
    /// compaction holding it sees no append in flight.
    fold: Mutex<SessionFold>,
    /// The last seq when the journal was opened: messages left partial at or below it were
    /// streamed by a writer that is gone, and are reported interrupted.
    interrupted_through: u64,
    compaction: compaction::State,
}

/// What [`Journal::open_read_only`] read: the newest snapshot and the valid prefix of the log
/// after it, folded, and the report. Reading it never changed a byte. See
/// [`Journal::open_read_only`] for an example.
#[derive(Debug)]
pub struct ReadOnly {
    /// Every stored event in seq order: the snapshot's (superseded events are no longer
    /// stored, so seqs may skip), then every valid event of the log after it. Shared with
    /// `fold`.
    pub events: Vec<(u64, Arc<Event>)>,
    /// The fold of those events (for snapshots).
    pub fold: SessionFold,
    /// The materialised session (partial messages marked interrupted).
    pub session: Session,
    /// What the scan found.
    pub report: RecoveryReport,
}

/// Moves the valid prefix out of a scan: the events of every segment up to and including the
/// first one that does not end cleanly, above the snapshot's `base_seq`. Moving, not cloning:
/// the scan is done with them.
fn take_valid_prefix(scan: &mut DirScan) -> Vec<(u64, Arc<Event>)> {
    let mut out = Vec::new();
    for seg in &mut scan.segments {
        out.append(&mut seg.events);
        if seg.stop != Stop::Clean {
            break;
        }
    }
    let base = scan.base_seq;
    if out.first().is_some_and(|(s, _)| *s <= base) {
        out.retain(|(s, _)| *s > base);
    }
    out
}

/// What opening found: the snapshot, the log after it, the plan and the report.
struct Opened {
    snapshot: Option<Snapshot>,
    scan: DirScan,
    plan: recover::Plan,
    events: Vec<(u64, Arc<Event>)>,
    report: RecoveryReport,
}

/// Loads the newest whole snapshot, scans the segments after it, decides what the scan means,
/// reports it, and moves the valid prefix out (in that order: the report reads per-segment
/// counts before the events leave the scan).
fn load(st: &dyn Storage, dir: &Path, mode: Mode) -> Result<Opened> {
    let (newest, ignored) =
        snapshot::load_newest(st, dir).map_err(|e| JError::io("read", dir, e))?;
    let base = newest.as_ref().map_or(0, |(_, s)| s.through_seq);
    let mut scan = scan::scan_dir_after(st, dir, base)
        .map_err(|(path, source)| JError::io("read", path, source))?;
    if let Some((name, snap)) = &newest
        && scan.gap.is_none()
        && let Some(h) = scan.segments.first().and_then(|s| s.header)
        && h.session_id.to_string() != snap.session_id
    {
        scan.gap = Some(scan::Gap {
            file: name.clone(),
            reason: format!(
                "snapshot is of session {}, the segments of session {}",
                snap.session_id, h.session_id
            ),
            kind: "foreign_snapshot",
        });
    }
    let plan = recover::plan(&scan, mode);
    let mut report = RecoveryReport::new(&scan, &plan, mode);
    let events = take_valid_prefix(&mut scan);
    let snap_records = newest.as_ref().map_or(0, |(_, s)| s.events.len() as u64);
    report.records = snap_records + events.len() as u64;
    report.last_seq = events.last().map_or(base, |(s, _)| *s);
    report.ignored_snapshots = ignored
        .into_iter()
        .map(|(file, reason)| Ignored { file, reason })
        .collect();
    report.snapshot = newest.as_ref().map(|(file, s)| SnapshotReport {
        file: file.clone(),
        through_seq: s.through_seq,
        records: s.events.len() as u64,
        bytes: s.bytes,
    });
    Ok(Opened {
        snapshot: newest.map(|(_, s)| s),
        scan,
        plan,
        events,
        report,
    })
}

/// [`load`] for a reader: safe while a writer appends and compacts. If a compaction removes
/// files between listing and reading, it reads again. Refuses a directory with no journal.
fn load_consistent(st: &dyn Storage, dir: &Path, mode: Mode) -> Result<Opened> {
    must_exist(st, dir)?;
    let mut attempts = 0;
    let opened = loop {
        attempts += 1;
        let before = data_files(st, dir)?;
        let opened = load(st, dir, mode)?;
        if opened.report.status == Status::Clean || attempts >= READ_ATTEMPTS {
            break opened;
        }
        // A compaction may have installed a snapshot and removed the segments it covers
        // while this read was listing or reading them: if the set of snapshots or segments
        // changed, read again. Comparing snapshots alone misses a reader that listed the
        // new snapshot and an old segment the compaction deleted before it was read.
        if data_files(st, dir)? == before {
            break opened;
        }
        std::thread::sleep(Duration::from_millis(u64::from(attempts.min(10))));
    };
    if opened.scan.segments.is_empty() && opened.snapshot.is_none() {
        return Err(JError::NotAJournal {
            dir: dir.into(),
            reason: "no segment files".into(),
        }
        .into());
    }
    Ok(opened)
}

/// What a session list shows of one journal, read without folding the session.
pub(crate) struct Summary {
    pub report: RecoveryReport,
    pub created_at_ms: i64,
    pub fork_of: Option<(String, u64)>,
    pub title: Option<String>,
    pub messages: usize,
    pub last_activity_ms: i64,
}

/// Reads the journal in `dir` as [`Journal::open_read_only`] does (every frame validated, so
/// the status is the one an open would find), but only looks at each event's typed fields:
/// no session is materialised, no message body is read.
pub(crate) fn summary(dir: &Path, opts: &Options) -> Result<Summary> {
    let opened = load_consistent(opts.storage.as_ref(), dir, opts.recovery)?;
    let snapshot_events = opened.snapshot.iter().flat_map(|s| s.events.iter());
    let mut ids = std::collections::HashSet::<&str>::new();
    let mut out = Summary {
        report: opened.report.clone(),
        created_at_ms: 0,
        fork_of: None,
        title: None,
        messages: 0,
        last_activity_ms: 0,
    };
    for (_, e) in snapshot_events.chain(opened.events.iter()) {
        match &e.kind {
            Kind::Session(info) => {
                out.created_at_ms = info.created_at_ms;
                out.fork_of.clone_from(&info.fork_of);
            }
            Kind::Meta(pairs) => {
                for (_, v) in pairs.iter().filter(|(k, _)| k == "title") {
                    out.title = v
                        .as_deref()
                        .and_then(|v| serde_json::from_str::<String>(v).ok());
                }
            }
            Kind::Message(m) => {
                ids.insert(&m.id);
            }
            Kind::Delta(d) => {
                ids.insert(&d.message_id);
            }
            _ => {}
        }
        out.last_activity_ms = e.ts_ms;
    }
    out.messages = ids.len();
    Ok(out)
}

/// Events in seq order, shared between a fold and whoever reads them.
type SharedEvents = Vec<(u64, Arc<Event>)>;

/// Folds the snapshot, then the log after it. Returns the fold and every event, shared with
/// the fold (no event is copied).
fn fold_all(
    snapshot: Option<Snapshot>,
    log: Vec<(u64, Arc<Event>)>,
) -> Result<(SessionFold, SharedEvents)> {
    let (mut fold, mut all) = match snapshot {
        Some(s) => {
            let fold = SessionFold::from_retained(s.events.iter().cloned(), s.through_seq)
                .map_err(|e| JError::Corrupt {
                    file: PathBuf::from(snapshot::snapshot_name(s.through_seq)),
                    offset: 0,
                    reason: e.to_string(),
                })?;
            (fold, s.events)
        }
        None => (SessionFold::new(), Vec::new()),
    };
    all.reserve(log.len());
    fold.reserve(log.len());
    for (seq, e) in log {
        // The scan guarantees contiguous seqs after the snapshot; a fold error would be a
        // bug: never lose data over it, stop folding and keep what is folded.
        if fold.apply_shared(seq, Arc::clone(&e)).is_err() {
            break;
        }
        all.push((seq, e));
    }
    Ok((fold, all))
}

fn refused(plan: &recover::Plan, report: RecoveryReport) -> Error {
    let (file, offset, reason) = plan
        .problems
        .first()
        .map(|p| (p.file.clone(), p.offset, p.reason.clone()))
        .unwrap_or_default();
    Error::Refused {
        file,
        offset,
        reason,
        report: Box::new(report),
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir` for writing: takes the writer lock, removes stray
    /// tmp files, loads the newest whole snapshot, scans the segments after it, applies the
    /// recovery table (cutting a proven torn tail into quarantine), finishes a compaction that
    /// crashed before deleting what it covered, and resumes appending after the last event.
    ///
    /// Returns the journal and the [`RecoveryReport`] of what the open found and did. Fails with
    /// [`Error::Refused`] on corruption (or on any damage in [`Mode::Strict`]) without changing
    /// anything, and with [`turnwal_journal::Error::Locked`], naming the holder, while another
    /// writer has the journal. In [`Mode::Salvage`] a corrupt journal is salvaged instead (see
    /// [`Journal::repair_salvage`]).
    ///
    /// ```
    /// use turnwal::{Error, Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let tmp = tempfile::tempdir()?;
    /// let dir = tmp.path().join("session");
    /// match Journal::open(&dir, Options::default()) {
    ///     Ok((journal, report)) => {
    ///         if let Some(file) = &report.quarantine {
    ///             eprintln!("cut a torn tail of {} bytes, kept in {file}", report.torn_bytes);
    ///         }
    ///         // ... append ...
    ///         journal.close()?;
    ///     }
    ///     Err(Error::Refused { file, offset, reason, .. }) => {
    ///         // Acknowledged data is damaged: nothing was changed. Read what is valid with
    ///         // `Journal::open_read_only`, or salvage with `Journal::repair_salvage`.
    ///         eprintln!("refused: {file} at {offset}: {reason}");
    ///     }
    ///     Err(e) => return Err(e.into()), // locked by another writer, I/O error, ...
    /// }
    /// # Ok(()) }
    /// ```
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<(Journal, RecoveryReport)> {
        let dir = dir.as_ref();
        let storage = Arc::clone(&opts.storage);
        let st = storage.as_ref();
        let exists = st.exists(dir).map_err(|e| JError::io("stat", dir, e))?;
        if !exists && !opts.create {
            return Err(JError::NotAJournal {
                dir: dir.into(),
                reason: "it does not exist".into(),
            }
            .into());
        }
        if opts.create {
            create_dir_durably(st, dir)?;
        }
        let has_files = !segment::list_segments(st, dir)?.is_empty()
            || !snapshot::list(st, dir)
                .map_err(|e| JError::io("list", dir, e))?
                .is_empty();
        if !has_files && !opts.create {
            return Err(JError::NotAJournal {
                dir: dir.into(),
                reason: "no segment files".into(),
            }
            .into());
        }
        if !has_files && let Some(other) = foreign_file(st, dir)? {
            // Creating a journal among someone else's files (a home directory, a project
            // checkout) is never what was meant: create only in a missing or empty directory.
            return Err(JError::NotAJournal {
                dir: dir.into(),
                reason: format!(
                    "it holds no journal but other files ({other:?}); a new journal is only \
                     created in a missing or empty directory"
                ),
            }
            .into());
        }
        let lock = if opts.takeover {
            lock::take_over(st, dir)?
        } else {
            lock::acquire(st, dir)?
        };
        let removed_tmp = remove_tmp_files(st, dir)?;

        let Opened {
            mut snapshot,
            mut scan,
            plan,
            mut events,
            mut report,
        } = load(st, dir, opts.recovery)?;
        report.removed_tmp = removed_tmp;

        match plan.action {
            Action::Accept => {}
            Action::CutTornTail => {
                if let Some(cut) = &plan.cut {
                    let q = apply_cut(st, dir, cut, event::now_ms())
                        .map_err(|(op, path, e)| JError::io(op, path, e))?;
                    report.cut_applied = true;
                    report.quarantine = Some(recover::file_name(&q));
                }
            }
            Action::RefuseTornTail | Action::RefuseCorrupt => return Err(refused(&plan, report)),
            Action::SalvageCorrupt => {
                // The report keeps what the scan of the damaged journal found; the journal
                // continues from what salvage installed, which must now read clean.
                let salvaged = repair::install(dir, &opts)?;
                let again = load(st, dir, Mode::TolerateTornTail)?;
                if again.plan.action != Action::Accept {
                    return Err(refused(&again.plan, again.report));
                }
                (snapshot, scan, events) = (again.snapshot, again.scan, again.events);
                report.records = again.report.records;
                report.last_seq = again.report.last_seq;
                report.snapshot = again.report.snapshot;
                report.salvage = Some(salvaged);
            }
            Action::FailIo => {
                let p = plan.problems.first();
                return Err(JError::io(
                    "read",
                    dir.join(p.map_or("", |p| p.file.as_str())),
                    std::io::Error::other(p.map_or_else(String::new, |p| p.reason.clone())),
                )
                .into());
            }
        }
        let last_seq = report.last_seq;
        let base = scan.base_seq;
        if let Some(first) = scan.segments.first()
            && base > 0
        {
            // Finish a compaction that crashed after installing its snapshot.
            let removed = turnwal_replay::compact::remove_covered(
                st,
                dir,
                base,
                first.id,
                turnwal_replay::compact::Stage::Open,
            )
            .map_err(Error::Compaction)?;
            report.removed_covered = removed.snapshots;
            report.removed_covered.extend(removed.segments);
        }

        let mut writer_opts = opts.writer.clone();
        writer_opts.sync = opts.sync;
        let snapshot_bytes = snapshot.as_ref().map_or(0, |s| s.bytes);
        let (mut fold, _) = fold_all(snapshot, events)?;
        let log_bytes: u64 = scan
            .segments
            .iter()
            .map(|s| {
                s.valid_end
                    .saturating_sub(segment::SEGMENT_HEADER_BYTES as u64)
            })
            .sum();
        let writer = match scan.segments.last() {
            None => {
                let id = opts.session_id.unwrap_or_else(SessionId::random);
                let ev = Event::session(SessionInfo {
                    id: id.to_string(),
                    created_at_ms: event::now_ms(),
                    fork_of: None,
                });
                let w = Writer::create(Arc::clone(&storage), dir, lock, writer_opts, id, &ev)?;
                fold.apply(1, &ev).map_err(|e| JError::Corrupt {
                    file: dir.into(),
                    offset: 0,
                    reason: e.to_string(),
                })?;
                report.last_seq = 1;
                report.records = 1;
                w
            }
            Some(seg) => {
                let header = seg.header.ok_or_else(|| JError::Corrupt {
                    file: seg.path.clone(),
                    offset: 0,
                    reason: "last segment has no valid header".into(),
                })?;
                let at = ResumePoint {
                    segment: header,
                    head: seg.valid_end,
                    last_seq: last_seq.max(header.first_seq - 1),
                };
                let w = Writer::resume(Arc::clone(&storage), dir, lock, writer_opts, &at)?;
                if at.last_seq == 0 {
                    // Crashed between creating the first segment and making the session event
                    // durable: write it now.
                    let ev = Event::session(SessionInfo {
                        id: header.session_id.to_string(),
                        created_at_ms: header.created_at_ms,
                        fork_of: None,
                    });
                    w.append_with(&ev, |seq, e| {
                        let _ = fold.apply(seq, e);
                    })?;
                    w.sync()?;
                }
                w
            }
        };
        // Whoever left messages partial is gone (this writer holds the lock now): they are
        // interrupted, whether the crash tore the tail or fell between two events.
        let interrupted_through = fold.last_seq();
        report.resume = ResumeState::of(&fold.session().after_crash_at(interrupted_through));
        let compaction =
            compaction::State::new(opts.compaction.clone(), base, snapshot_bytes, log_bytes);
        Ok((
            Journal {
                inner: Arc::new(Inner {
                    dir: dir.to_path_buf(),
                    storage,
                    writer,
                    fold: Mutex::new(fold),
                    interrupted_through,
                    compaction,
                }),
            },
            report,
        ))
    }

    /// Reads the journal in `dir` without taking the lock or changing a byte. Works on a
    /// corrupt journal too: returns the valid prefix and a report that says what is wrong.
    /// Safe while a writer appends and compacts: it sees a consistent prefix (if a compaction
    /// removes files between listing and reading, it reads again).
    ///
    /// The session is read as after a crash: a message still streaming is `Interrupted`. In
    /// [`Mode::Salvage`] it shows what a salvage would keep, and still changes nothing.
    ///
    /// ```
    /// use turnwal::{Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// let (writer, _) = Journal::open(&dir, Options::default())?;
    /// writer.append_json(r#"{"kind":"meta","body":{"title":"Fix the build"}}"#)?;
    ///
    /// // Another thread or process, while the writer holds the lock:
    /// let ro = Journal::open_read_only(&dir, &Options::default())?;
    /// assert_eq!(ro.session.meta["title"], r#""Fix the build""#);
    /// assert_eq!(ro.report.status, turnwal::Status::Clean);
    /// for (seq, event) in &ro.events {
    ///     println!("{seq} {}", event.kind.name());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn open_read_only(dir: impl AsRef<Path>, opts: &Options) -> Result<ReadOnly> {
        let dir = dir.as_ref();
        let st = opts.storage.as_ref();
        let opened = load_consistent(st, dir, opts.recovery)?;
        let mut report = opened.report;
        let (fold, events) = if report.action == Action::SalvageCorrupt {
            // What salvage would install, read-only: nothing on disk changes.
            let (rep, fold, events) = repair::preview(dir, opts)?;
            report.records = rep.kept;
            report.last_seq = rep.through_seq;
            report.salvage = Some(rep);
            (fold, events)
        } else {
            fold_all(opened.snapshot, opened.events)?
        };
        let session = fold.session().after_crash();
        report.resume = ResumeState::of(&session);
        Ok(ReadOnly {
            events,
            fold,
            session,
            report,
        })
    }

    /// Appends `event`. It is in the kernel when this returns (`kill -9` safe); under
    /// [`SyncPolicy::Always`] it is also durable. Returns its seq.
    ///
    /// Refused with nothing written: `session` events, deltas for a message that already has its
    /// final form, records over the size limit. A failed write poisons the journal.
    ///
    /// Build the event from an envelope with [`Event::from_envelope`] (or append the text
    /// directly with [`Journal::append_json`]):
    ///
    /// ```
    /// use turnwal::{Event, Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = Journal::open(tmp.path().join("s"), Options::default())?;
    /// let line = r#"{"kind":"usage","turn":1,"body":{"call_key":"req-1","model":"gpt-5",
    ///     "input":{"total":1200,"cache_read":1000},"output":{"total":80}}}"#;
    /// let event = Event::from_envelope(line, turnwal::event::now_ms())?;
    /// let seq = journal.append(&event)?;
    /// assert_eq!(seq, 2); // seq 1 is the journal's own `session` event
    /// assert_eq!(journal.session().usage_total.input, 1200);
    /// # Ok(()) }
    /// ```
    pub fn append(&self, event: &Event) -> Result<u64> {
        self.append_shared(event, || Arc::new(event.clone()))
    }

    /// [`Journal::append`], with `shared` giving the fold its own handle on the event once it
    /// is written: a copy for a borrowed event, the same allocation for one the journal owns.
    fn append_shared(&self, event: &Event, shared: impl FnOnce() -> Arc<Event>) -> Result<u64> {
        let inner = &self.inner;
        let seq = {
            let mut fold = inner.fold();
            match &event.kind {
                Kind::Session(_) => {
                    return Err(InputError::new(
                        "kind",
                        "session events are written by the journal",
                    )
                    .into());
                }
                Kind::Delta(d) if fold.has_final_message(&d.message_id) => {
                    return Err(InputError::new(
                        "body.message_id",
                        format!("message {:?} already has its final form", d.message_id),
                    )
                    .into());
                }
                _ => {}
            }
            inner.writer.write_with(event, |seq, _| {
                // Seqs come from the writer in order under its lock, so this cannot fail.
                let _ = fold.apply_shared(seq, shared());
            })?
        };
        inner.writer.apply_policy(seq)?;
        compaction::maybe_start(&self.inner, seq);
        Ok(seq)
    }

    /// Parses one JSON envelope and appends it, as [`Journal::append`] does. Returns its seq.
    ///
    /// An envelope is one JSON object: `kind` (required), `turn` (a number; required for
    /// `turn` events), `ts` (RFC 3339; stamped now if absent) and `body` (an object). `seq` must
    /// be absent: the journal assigns it. The body is stored as it came (whitespace removed)
    /// and exported JSON-equal. The kinds:
    ///
    /// | kind | body | meaning |
    /// |---|---|---|
    /// | `meta` | any object | merged key by key into the session metadata; `null` deletes a key |
    /// | `turn` | `{event: started\|completed\|interrupted\|aborted\|failed, reason?}` | a turn's lifecycle |
    /// | `message` | `{id, role: system\|developer\|user\|assistant\|tool, parts?, ...}` | a message; a later one with the same `id` supersedes it (the final form of a streamed message) |
    /// | `delta` | `{message_id, index, type: text\|thinking\|tool_call, text?, arguments?, call_id?, name?}` | a streamed fragment of part `index` of a message |
    /// | `usage` | `{call_key, model, input: {total, ...}, output: {total, ...}, cost?, final?}` | token usage of one model call, idempotent per `call_key` |
    /// | `tool_run` | `{call_id, event: started\|finished}` | the tool ledger: tells a call that never ran from one that may have had its effect |
    /// | `rewind` | `{to_seq, reason?}` | messages appended after `to_seq` leave the active conversation |
    /// | `compaction` | `{summary_message_id, through_seq, reason?}` | an agent-level context boundary (like `/compact`) |
    /// | `x-<name>` | any object | an extension: stored and exported verbatim |
    ///
    /// Message parts turnwal reads are `{"type":"tool_call","call_id","name","arguments"}` and
    /// `{"type":"tool_result","call_id","content","is_error"?,"outcome"?}`; every other part
    /// (text, images, thinking with its signature, provider items) is carried verbatim.
    ///
    /// Bad input is refused with the field named, and nothing is written:
    ///
    /// ```
    /// use turnwal::{Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = Journal::open(tmp.path().join("s"), Options::default())?;
    /// // Stream an answer, then append its final form (which supersedes the deltas).
    /// for text in ["Hel", "lo"] {
    ///     journal.append_json(&format!(r#"{{"kind":"delta","turn":1,"body":{{"message_id":"a1",
    ///         "index":0,"type":"text","text":"{text}"}}}}"#))?;
    /// }
    /// journal.append_json(r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant",
    ///     "parts":[{"type":"text","text":"Hello"}]}}"#)?;
    ///
    /// let refused = journal.append_json(r#"{"kind":"message","body":{"id":"m2"}}"#);
    /// assert!(refused.unwrap_err().to_string().contains("body.role"));
    /// assert_eq!(journal.last_seq(), 4);
    /// # Ok(()) }
    /// ```
    pub fn append_json(&self, line: &str) -> Result<u64> {
        // Parsed here, so the fold can keep this very event instead of a copy.
        let event = Arc::new(Event::from_envelope(line, event::now_ms())?);
        self.append_shared(&event, || Arc::clone(&event))
    }

    /// Appends and waits until the event is durable against power loss, whatever the policy.
    /// Use it for the events a promise hangs on: a `tool_run started` before a tool with side
    /// effects runs, the end of a turn before it is reported saved.
    ///
    /// ```
    /// use turnwal::{Event, Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = Journal::open(tmp.path().join("s"), Options::default())?;
    /// let started = r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c1","event":"started"}}"#;
    /// let event = Event::from_envelope(started, turnwal::event::now_ms())?;
    /// let seq = journal.append_durable(&event)?;
    /// assert!(journal.durable_seq() >= seq);
    /// // ... now run the tool ...
    /// # Ok(()) }
    /// ```
    pub fn append_durable(&self, event: &Event) -> Result<u64> {
        let seq = self.append(event)?;
        self.inner.writer.wait_durable(seq)?;
        Ok(seq)
    }

    /// Makes everything appended so far durable against power loss. Returns the durable
    /// watermark (at least the [`Journal::last_seq`] of when it was called).
    ///
    /// ```
    /// use turnwal::{Journal, Options, SyncPolicy};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let opts = Options { sync: SyncPolicy::Never, ..Options::default() };
    /// let (journal, _) = Journal::open(tmp.path().join("s"), opts)?;
    /// let seq = journal.append_json(r#"{"kind":"meta","body":{"title":"t"}}"#)?;
    /// assert!(journal.durable_seq() < seq); // in the kernel, not yet on the disk
    /// assert_eq!(journal.sync()?, seq);
    /// assert_eq!(journal.durable_seq(), seq);
    /// # Ok(()) }
    /// ```
    pub fn sync(&self) -> Result<u64> {
        Ok(self.inner.writer.sync()?)
    }

    /// Highest seq that is durable against power loss: every event at or below it survives a
    /// power cut. See [`Journal::sync`] for an example.
    pub fn durable_seq(&self) -> u64 {
        self.inner.writer.durable_seq()
    }

    /// Highest seq appended (in the kernel; `kill -9` safe). Seq 1 is the journal's own
    /// `session` event.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// assert_eq!(journal.last_seq(), 1);
    /// # Ok(()) }
    /// ```
    pub fn last_seq(&self) -> u64 {
        self.inner.writer.last_seq()
    }

    /// Blocks until `seq` is durable against power loss, leading a sync if none is in flight;
    /// returns the durable watermark. Fails if `seq` was not appended or the journal is
    /// poisoned.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// let end = journal.append_json(r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#)?;
    /// journal.wait_durable(end)?;
    /// println!("turn 1 saved"); // now true even across a power cut
    /// # Ok(()) }
    /// ```
    pub fn wait_durable(&self, seq: u64) -> Result<u64> {
        Ok(self.inner.writer.wait_durable(seq)?)
    }

    /// Blocks until the durable watermark passes `seen` or `timeout` elapses; returns the
    /// watermark. For a thread that reports progress (as `turnwal append` prints
    /// `{"durable_through": N}`) without syncing anything itself.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// let seen = journal.durable_seq();
    /// journal.append_json(r#"{"kind":"meta","body":{"k":1}}"#)?;
    /// // The default batch policy syncs within 5 ms.
    /// let now = journal.wait_durable_after(seen, Duration::from_secs(5))?;
    /// assert!(now > seen);
    /// # Ok(()) }
    /// ```
    pub fn wait_durable_after(&self, seen: u64, timeout: Duration) -> Result<u64> {
        Ok(self.inner.writer.wait_durable_after(seen, timeout)?)
    }

    /// The materialised session as appended so far: messages in final form (or built from
    /// their deltas), turns, tool calls with their state, usage per call and per model, merged
    /// metadata. Messages a previous writer left streaming are `Interrupted`.
    ///
    /// ```
    /// use turnwal::{MessageStatus, Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = Journal::open(tmp.path().join("s"), Options::default())?;
    /// journal.append_json(r#"{"kind":"message","body":{"id":"u1","role":"user",
    ///     "parts":[{"type":"text","text":"hi"}]}}"#)?;
    /// journal.append_json(r#"{"kind":"delta","body":{"message_id":"a1","index":0,
    ///     "type":"text","text":"Hel"}}"#)?;
    /// let session = journal.session();
    /// let last = &session.messages[1];
    /// assert_eq!((last.id.as_str(), last.status), ("a1", MessageStatus::Partial));
    /// assert_eq!(session.context().len(), 2); // what to send to the model
    /// # Ok(()) }
    /// ```
    pub fn session(&self) -> Session {
        let s = self.inner.fold().session();
        s.after_crash_at(self.inner.interrupted_through)
    }

    /// Compacts now: folds everything appended so far into a new snapshot and removes the
    /// segments and snapshots it covers (see [`CompactionReport`] for what it did and how long
    /// appends waited). Waits for a background compaction in progress first. A snapshot that
    /// would hold fewer messages than the log is refused with [`CompactError::Shrink`] and
    /// nothing on disk changes.
    ///
    /// The snapshot, `snapshot-<through_seq>.jsonl`, is plain JSONL (a header line, one
    /// envelope per line, a trailer with a CRC-32) that `jq` or any JSONL reader can open.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// journal.append_json(r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[]}}"#)?;
    /// let report = journal.compact()?;
    /// assert_eq!((report.through_seq, report.messages), (2, 1));
    /// assert!(journal.dir().join(&report.snapshot).exists());
    /// assert!(journal.compact()?.skipped); // nothing new since
    /// # Ok(()) }
    /// ```
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner.compact()
    }

    /// Compactions so far, the last report and the last background error (a background
    /// compaction has no caller to return its error to).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// journal.compact()?;
    /// let status = journal.compaction_status();
    /// assert_eq!(status.count, 1);
    /// assert!(status.last_error.is_none());
    /// # Ok(()) }
    /// ```
    pub fn compaction_status(&self) -> CompactionStatus {
        self.inner.compaction.status()
    }

    /// Number of group-commit syncs so far (one `fdatasync` each, however many appends it
    /// made durable).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// let before = journal.sync_count();
    /// journal.append_json(r#"{"kind":"meta","body":{"k":1}}"#)?;
    /// journal.sync()?;
    /// assert!(journal.sync_count() > before);
    /// # Ok(()) }
    /// ```
    pub fn sync_count(&self) -> u64 {
        self.inner.writer.sync_count()
    }

    /// The journal directory, as given to [`Journal::open`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let dir = tmp.path().join("s");
    /// let (journal, _) = turnwal::Journal::open(&dir, Default::default())?;
    /// assert_eq!(journal.dir(), dir);
    /// # Ok(()) }
    /// ```
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Waits for a background compaction, compacts if the policy says `on_close`, syncs
    /// everything, stops background work and releases the lock. Returns the durable
    /// watermark: everything appended.
    ///
    /// This is what a SIGTERM or SIGHUP handler should end with. Dropping a journal without
    /// closing it loses nothing that was appended (it is in the kernel), but skips the final
    /// fsync: events after the durable watermark survive a crash of the process, not a power
    /// cut.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let (journal, _) = turnwal::Journal::open(tmp.path().join("s"), Default::default())?;
    /// let seq = journal.append_json(r#"{"kind":"meta","body":{"k":1}}"#)?;
    /// assert_eq!(journal.close()?, seq);
    /// # Ok(()) }
    /// ```
    pub fn close(self) -> Result<u64> {
        self.inner.compaction.join();
        let compacted = if self.inner.compaction.policy().on_close {
            self.inner.compact().map(|_| ())
        } else {
            Ok(())
        };
        let synced = self.inner.writer.close();
        compacted?;
        Ok(synced?)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // A background compaction holds the lock through `inner`: let it finish, so the
        // journal can be reopened as soon as this returns.
        self.inner.compaction.join();
    }
}

impl Inner {
    fn fold(&self) -> MutexGuard<'_, SessionFold> {
        self.fold.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How many times a read-only open reads again when a compaction changed the files under it.
const READ_ATTEMPTS: u32 = 50;

/// Refuses a journal directory that does not exist (a reader never creates one).
pub(crate) fn must_exist(st: &dyn Storage, dir: &Path) -> Result<()> {
    if st.exists(dir).map_err(|e| JError::io("stat", dir, e))? {
        return Ok(());
    }
    Err(JError::NotAJournal {
        dir: dir.into(),
        reason: "it does not exist".into(),
    }
    .into())
}

/// The snapshots and segments in `dir`, as a read-only open compares them before and after
/// reading.
fn data_files(st: &dyn Storage, dir: &Path) -> Result<(Vec<u64>, Vec<u64>)> {
    let snapshots = snapshot::list(st, dir).map_err(|e| JError::io("list", dir, e))?;
    let segments = turnwal_journal::segment::list_segments(st, dir)?;
    Ok((snapshots, segments))
}

/// Creates `dir` and its missing ancestors, and fsyncs the parent of each directory it
/// created: a directory entry is durable only once its parent is synced, and a journal whose
/// directory vanishes at a power cut would lose everything acknowledged in it.
pub(crate) fn create_dir_durably(st: &dyn Storage, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || st.exists(d).map_err(|e| JError::io("stat", d, e))? {
            break;
        }
        missing.push(d);
        p = d.parent();
    }
    st.create_dir_all(dir)
        .map_err(|e| JError::io("mkdir", dir, e))?;
    for d in missing {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            st.sync_dir(parent)
                .map_err(|e| JError::io("fsync dir", parent, e))?;
        }
    }
    Ok(())
}

/// A file in `dir` that no journal writes (the first, by name), if any: anything but `LOCK`,
/// segments, snapshots, their `*.tmp` files and `quarantine-*` files.
fn foreign_file(st: &dyn Storage, dir: &Path) -> Result<Option<String>> {
    let mut names = st.list(dir).map_err(|e| JError::io("list", dir, e))?;
    names.sort();
    Ok(names.into_iter().find(|n| {
        let base = n.strip_suffix(TMP_SUFFIX).unwrap_or(n);
        !(base == lock::LOCK_FILE
            || base.starts_with("quarantine-")
            || segment::parse_segment_name(base).is_some()
            || snapshot::parse_snapshot_name(base).is_some())
    }))
}

/// Removes `*.tmp` files a crash left behind (never part of the journal).
fn remove_tmp_files(st: &dyn Storage, dir: &Path) -> Result<Vec<String>> {
    let names = st.list(dir).map_err(|e| JError::io("list", dir, e))?;
    let tmp: Vec<String> = names
        .into_iter()
        .filter(|n| n.ends_with(TMP_SUFFIX))
        .collect();
    for name in &tmp {
        let p = dir.join(name);
        st.remove_file(&p)
            .map_err(|e| JError::io("unlink", &p, e))?;
    }
    if !tmp.is_empty() {
        st.sync_dir(dir)
            .map_err(|e| JError::io("fsync dir", dir, e))?;
    }
    Ok(tmp)
}
