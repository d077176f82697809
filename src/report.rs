//! The recovery report: what opening a journal found and did, as a typed value and a stable
//! JSON document (`turnwal verify --json`).

use serde::Serialize;
use turnwal_replay::recover::{Action, Cut, Mode, Plan, Problem, Status, file_name};
use turnwal_replay::scan::{DirScan, Stop};
use turnwal_replay::session::{MessageStatus, Session, ToolCallState};

/// What the scan of one segment found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentReport {
    /// File name.
    pub file: String,
    /// Segment id.
    pub id: u64,
    /// File size.
    pub bytes: u64,
    /// Valid records read.
    pub records: u64,
    /// First and last valid seq.
    pub first_seq: Option<u64>,
    /// Last valid seq.
    pub last_seq: Option<u64>,
    /// `clean`, `damaged`, `seq_mismatch`, `bad_header` or `io_error`.
    pub stop: &'static str,
    /// Where the scan stopped, if not at a clean end: the byte offset of the damage (0 for the
    /// header or the read).
    pub stop_offset: Option<u64>,
    /// Why it stopped there, if not at a clean end.
    pub stop_reason: Option<String>,
    /// Offset after the last valid record.
    pub valid_end: u64,
    /// Highest watermark in its valid records.
    pub max_watermark: u64,
}

/// The snapshot a journal was opened from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotReport {
    /// File name.
    pub file: String,
    /// Every event at or below this seq is folded into it.
    pub through_seq: u64,
    /// Events it holds.
    pub records: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// A file left out of the journal, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// File name.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// What opening (or verifying) a journal found, and what it did about it.
///
/// Every open returns one: [`Journal::open`] (what it found and did),
/// [`Journal::open_read_only`] (what it found; it changes nothing). Its JSON form (serde) is
/// what `turnwal verify --json` prints, and its shape is stable: fields are only added.
///
/// Read [`status`](Self::status) and [`action`](Self::action) for what happened,
/// [`problems`](Self::problems) for where, and [`resume`](Self::resume) for where the
/// conversation stands before a harness continues it. Here the writer died mid-turn, with a
/// tool call running, an answer streaming, and its last write torn:
///
/// ```
/// use std::os::unix::fs::FileExt;
/// use turnwal::{Action, Journal, Options, Status};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path().join("s");
/// # let (journal, _) = Journal::open(&dir, Options::default())?;
/// # journal.append_json(r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#)?;
/// # journal.append_json(r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant",
/// #     "parts":[{"type":"tool_call","call_id":"c1","name":"make","arguments":"{}"}]}}"#)?;
/// # journal.append_json(r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c1",
/// #     "event":"started"}}"#)?;
/// # journal.append_json(r#"{"kind":"delta","turn":1,"body":{"message_id":"a2","index":0,
/// #     "type":"text","text":"Build"}}"#)?;
/// # drop(journal);
/// # let seg = Journal::open_read_only(&dir, &Options::default())?.report.segment_reports[0].clone();
/// # std::fs::OpenOptions::new().write(true).open(dir.join(&seg.file))?
/// #     .write_all_at(b"half a record", seg.valid_end)?;
/// let (journal, report) = Journal::open(&dir, Options::default())?;
/// assert_eq!((report.status, report.action), (Status::TornTail, Action::CutTornTail));
/// if let Some(file) = &report.quarantine {
///     println!("cut a torn tail of {} bytes, kept in {file}", report.torn_bytes);
/// }
/// let resume = &report.resume;
/// assert_eq!(resume.open_turn, Some(1));
/// assert_eq!(resume.pending_tool_calls[0].state, "unknown"); // started, no result
/// assert_eq!(resume.partial_messages[0].status, "interrupted");
/// println!("{}", serde_json::to_string_pretty(&report)?); // as `turnwal verify --json`
/// # drop(journal);
/// # Ok(()) }
/// ```
///
/// [`Journal::open`]: crate::Journal::open
/// [`Journal::open_read_only`]: crate::Journal::open_read_only
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// `clean`, `torn_tail` or `corrupt`.
    pub status: Status,
    /// Recovery mode used.
    pub mode: Mode,
    /// What the decision table said.
    pub action: Action,
    /// The table row that decided.
    pub case: &'static str,
    /// Events recovered: those of the snapshot plus the valid records of the log after it.
    pub records: u64,
    /// Last seq recovered (0 for none).
    pub last_seq: u64,
    /// The newest snapshot that read back whole, if any; the log is applied after it.
    pub snapshot: Option<SnapshotReport>,
    /// Newer snapshot files that did not read back whole (never used, never deleted).
    pub ignored_snapshots: Vec<Ignored>,
    /// Segments wholly covered by the snapshot (left by a compaction that crashed before
    /// deleting them): not read.
    pub covered_segments: Vec<String>,
    /// Covered segments and older snapshots a writer deleted on open, finishing such a
    /// compaction.
    pub removed_covered: Vec<String>,
    /// Highest durable watermark stated on disk.
    pub max_watermark: u64,
    /// Number of segment files.
    pub segments: usize,
    /// Per segment.
    pub segment_reports: Vec<SegmentReport>,
    /// Non-zero bytes of a torn tail (cut, or that would be cut).
    pub torn_bytes: u64,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// The torn tail, if any.
    pub cut: Option<Cut>,
    /// Whether the cut was applied (only a writable open cuts).
    pub cut_applied: bool,
    /// Quarantine file holding the cut bytes.
    pub quarantine: Option<String>,
    /// Stray `*.tmp` files removed by a writer.
    pub removed_tmp: Vec<String>,
    /// Where the session stands for a harness that resumes it.
    pub resume: ResumeState,
    /// In [`Mode::Salvage`] on a corrupt journal: what was kept and exactly which seqs were
    /// lost; installed by a writable open, a preview for a read-only one.
    pub salvage: Option<crate::SalvageReport>,
}

impl RecoveryReport {
    /// Builds the report of a scan and its plan (before anything is applied). The recovered
    /// prefix (`records`, `last_seq`) is filled in by whoever takes it out of the scan.
    ///
    /// Every open builds its report itself; this is for tools that scan a journal with
    /// [`turnwal_replay`] directly.
    ///
    /// ```
    /// use turnwal::{Mode, RecoveryReport, Status};
    /// use turnwal_replay::{recover, scan};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # turnwal::Journal::open(&dir, Default::default())?.0.close()?;
    /// let scan = scan::scan_dir(&turnwal::RealFs, &dir).map_err(|(_, e)| e)?;
    /// let plan = recover::plan(&scan, Mode::Strict);
    /// let report = RecoveryReport::new(&scan, &plan, Mode::Strict);
    /// assert_eq!((report.status, report.segments), (Status::Clean, 1));
    /// # Ok(()) }
    /// ```
    pub fn new(scan: &DirScan, plan: &Plan, mode: Mode) -> Self {
        let segment_reports = scan
            .segments
            .iter()
            .map(|s| SegmentReport {
                file: file_name(&s.path),
                id: s.id,
                bytes: s.file_len,
                records: s.events.len() as u64,
                first_seq: s.events.first().map(|(q, _)| *q),
                last_seq: s.last_seq(),
                stop: match s.stop {
                    Stop::Clean => "clean",
                    Stop::Damaged { .. } => "damaged",
                    Stop::SeqMismatch { .. } => "seq_mismatch",
                    Stop::BadHeader { .. } => "bad_header",
                    Stop::Io { .. } => "io_error",
                },
                stop_offset: match &s.stop {
                    Stop::Clean => None,
                    Stop::Damaged { offset, .. } | Stop::SeqMismatch { offset, .. } => {
                        Some(*offset)
                    }
                    Stop::BadHeader { .. } | Stop::Io { .. } => Some(0),
                },
                stop_reason: match &s.stop {
                    Stop::Clean => None,
                    Stop::Damaged { reason, .. }
                    | Stop::BadHeader { reason }
                    | Stop::Io { reason } => Some(reason.clone()),
                    Stop::SeqMismatch {
                        expected, found, ..
                    } => Some(format!("expected seq {expected}, found {found}")),
                },
                valid_end: s.valid_end,
                max_watermark: s.max_watermark,
            })
            .collect();
        RecoveryReport {
            status: plan.status,
            mode,
            action: plan.action,
            case: plan.case,
            records: 0,
            last_seq: 0,
            snapshot: None,
            ignored_snapshots: Vec::new(),
            covered_segments: scan
                .covered
                .iter()
                .map(|&id| turnwal_journal::segment::segment_name(id))
                .collect(),
            removed_covered: Vec::new(),
            max_watermark: plan.max_watermark,
            segments: scan.segments.len(),
            segment_reports,
            torn_bytes: plan.cut.as_ref().map_or(0, |c| c.bytes),
            problems: plan.problems.clone(),
            cut: plan.cut.clone(),
            cut_applied: false,
            quarantine: None,
            removed_tmp: Vec::new(),
            resume: ResumeState::default(),
            salvage: None,
        }
    }
}

/// Where a recovered session stands, turn by turn: what a harness must look at before it
/// continues. [`RecoveryReport::resume`] holds it; see [`RecoveryReport`] for an example.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResumeState {
    /// The highest-numbered turn still open (interrupted by the crash, if there was one).
    pub open_turn: Option<u64>,
    /// Messages that only have deltas: `partial`, or `interrupted` after a crash.
    pub partial_messages: Vec<PartialMessage>,
    /// Tool calls with no result.
    pub pending_tool_calls: Vec<PendingCall>,
}

/// A message with no final form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartialMessage {
    /// Message id.
    pub id: String,
    /// Seq of its first delta.
    pub first_seq: u64,
    /// Seq of its last delta.
    pub last_seq: u64,
    /// `partial` or `interrupted`.
    pub status: &'static str,
}

/// A tool call with no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingCall {
    /// Call id.
    pub call_id: String,
    /// Tool name.
    pub name: String,
    /// The message that issued it.
    pub message_id: String,
    /// `not_started` (no `tool_run started`: safe to run) or `unknown` (started, no result:
    /// it may have had its effect; the host decides).
    pub state: &'static str,
}

impl ResumeState {
    /// Reads it off a materialised session: what an open reports, for any session.
    ///
    /// ```
    /// use turnwal::{Journal, Options, ResumeState};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let (journal, _) = Journal::open(tmp.path().join("s"), Options::default())?;
    /// journal.append_json(r#"{"kind":"turn","turn":3,"body":{"event":"started"}}"#)?;
    /// let state = ResumeState::of(&journal.session());
    /// assert_eq!(state.open_turn, Some(3));
    /// assert!(state.pending_tool_calls.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn of(s: &Session) -> Self {
        ResumeState {
            open_turn: s.open_turn,
            partial_messages: s
                .messages
                .iter()
                .filter_map(|m| {
                    let status = match m.status {
                        MessageStatus::Complete => return None,
                        MessageStatus::Partial => "partial",
                        MessageStatus::Interrupted => "interrupted",
                    };
                    Some(PartialMessage {
                        id: m.id.clone(),
                        first_seq: m.first_seq,
                        last_seq: m.last_seq,
                        status,
                    })
                })
                .collect(),
            pending_tool_calls: s
                .tool_calls
                .iter()
                .filter_map(|c| {
                    let state = match c.state {
                        ToolCallState::Answered { .. } => return None,
                        ToolCallState::NotStarted => "not_started",
                        ToolCallState::Unknown => "unknown",
                    };
                    Some(PendingCall {
                        call_id: c.call_id.clone(),
                        name: c.name.clone(),
                        message_id: c.message_id.clone(),
                        state,
                    })
                })
                .collect(),
        }
    }
}
