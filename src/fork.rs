//! Fork: [`Journal::fork`] (documented there, as the module is private).

use std::path::Path;
use std::sync::Arc;

use turnwal_journal::event::{self, Event, Kind, SessionInfo};
use turnwal_journal::segment::{self, SegmentHeader, SessionId};
use turnwal_journal::{Error as JError, InputError, lock};
use turnwal_replay::compact::{self, Expect};
use turnwal_replay::session::SessionFold;

use crate::{Error, Journal, Mode, Options, RecoveryReport, Result, Status};

impl Journal {
    /// Creates, in `child_dir` (which must not exist), a new session whose state is that of
    /// the session in `parent_dir` at `at_seq`, and opens it for writing: resume-and-branch,
    /// recording where it came from. The child's id is `opts.session_id` or a random one; its
    /// next append gets seq `at_seq + 1`.
    ///
    /// The parent is only read (a read-only open: no lock, no byte changed), so a live writer may
    /// keep appending to it. The child is a journal of its own:
    ///
    /// - its `session` event (seq 1) names it and carries `fork_of: {session, seq}`;
    /// - a snapshot through `at_seq` holds the parent's *materialised* state at that seq (final
    ///   messages, merged meta, folded deltas and usage; the parent's own session event replaced
    ///   by the child's). The parent's log is neither copied nor rewritten; the child does not
    ///   depend on it either, so compacting, repairing or deleting the parent later never changes
    ///   the child;
    /// - its log continues at `at_seq + 1`: seqs are not renumbered, so a `rewind` or `compaction`
    ///   event of the parent that names a seq means the same in the child.
    ///
    /// The child is built in a hidden sibling directory (`.<name>.forking-<pid>-<ms>`), every file
    /// synced, then renamed into place and the parent directory synced: a crash leaves either no
    /// child or a whole one (and at most a stray hidden directory, never listed as a session).
    ///
    /// Limits: a parent compacted past `at_seq` no longer holds its state at `at_seq` (superseded
    /// deltas and message forms are folded away), so forking there is refused; fork at or after the
    /// parent's snapshot. A corrupt parent is refused (repair it first); a torn tail is not part
    /// of the parent's state and is ignored.
    ///
    /// Refused, with nothing created: `at_seq` 0 or past the parent's last seq, a parent
    /// compacted past `at_seq`, a corrupt parent, an existing `child_dir`, a child id equal to
    /// the parent's.
    ///
    /// ```
    /// use turnwal::{Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let (parent_dir, child_dir) = (tmp.path().join("parent"), tmp.path().join("child"));
    /// let (parent, _) = Journal::open(&parent_dir, Options::default())?;
    /// parent.append_json(r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[]}}"#)?;
    /// let at = parent
    ///     .append_json(r#"{"kind":"message","body":{"id":"a1","role":"assistant","parts":[]}}"#)?;
    /// parent.append_json(r#"{"kind":"message","body":{"id":"u2","role":"user","parts":[]}}"#)?;
    ///
    /// // Branch from the state after `a1`, while the parent's writer goes on.
    /// let (child, _) = Journal::fork(&parent_dir, at, &child_dir, Options::default())?;
    /// let session = child.session();
    /// assert_eq!(session.messages.len(), 2);
    /// assert_eq!(session.fork_of, Some((parent.session().id, at)));
    /// let next = child.append_json(r#"{"kind":"meta","body":{"branch":"retry"}}"#)?;
    /// assert_eq!(next, at + 1); // seqs continue, not renumbered
    /// # Ok(()) }
    /// ```
    pub fn fork(
        parent_dir: impl AsRef<Path>,
        at_seq: u64,
        child_dir: impl AsRef<Path>,
        opts: Options,
    ) -> Result<(Journal, RecoveryReport)> {
        let (parent_dir, child_dir) = (parent_dir.as_ref(), child_dir.as_ref());
        let st = opts.storage.as_ref();
        let read_opts = Options {
            recovery: Mode::TolerateTornTail,
            ..opts.clone()
        };
        let parent = Journal::open_read_only(parent_dir, &read_opts)?;
        if parent.report.status == Status::Corrupt {
            return Err(refused(
                parent_dir,
                "the parent is corrupt; repair it before forking",
            ));
        }
        let last = parent.report.last_seq;
        if at_seq == 0 || at_seq > last {
            return Err(InputError::new(
                "at_seq",
                format!("{at_seq} is not a seq of the parent (1..={last})"),
            )
            .into());
        }
        if let Some(s) = &parent.report.snapshot
            && at_seq < s.through_seq
        {
            return Err(InputError::new(
                "at_seq",
                format!(
                    "the parent is compacted through seq {}, so its state at {at_seq} is no \
                     longer on disk; fork at {} or later",
                    s.through_seq, s.through_seq
                ),
            )
            .into());
        }
        let parent_id = parent.session.id.clone();
        let child_id = opts.session_id.unwrap_or_else(SessionId::random);
        if child_id.to_string() == parent_id {
            return Err(InputError::new("session_id", "the child needs an id of its own").into());
        }
        let now = event::now_ms();
        let session = Arc::new(Event::session(SessionInfo {
            id: child_id.to_string(),
            created_at_ms: now,
            fork_of: Some((parent_id, at_seq)),
        }));
        let mut events: Vec<(u64, Arc<Event>)> = parent
            .events
            .into_iter()
            .take_while(|(seq, _)| *seq <= at_seq)
            .collect();
        match events.first_mut() {
            Some((1, e)) if matches!(e.kind, Kind::Session(_)) => *e = session,
            _ => return Err(refused(parent_dir, "the parent has no session event")),
        }
        let fold = SessionFold::from_retained(events, at_seq)
            .map_err(|e| refused(parent_dir, &format!("the parent does not fold: {e}")))?;

        if st
            .exists(child_dir)
            .map_err(|e| JError::io("stat", child_dir, e))?
        {
            return Err(InputError::new(
                "child_dir",
                format!("{} exists; a fork creates its own", child_dir.display()),
            )
            .into());
        }
        let name = child_dir
            .file_name()
            .ok_or_else(|| InputError::new("child_dir", "names no directory"))?
            .to_string_lossy()
            .into_owned();
        let building =
            child_dir.with_file_name(format!(".{name}.forking-{}-{now}", std::process::id()));
        crate::create_dir_durably(st, &building)?;
        let built = build(&building, &fold, child_id, at_seq, &opts);
        let moved = built.and_then(|()| {
            st.rename(&building, child_dir)
                .map_err(|e| JError::io("rename", &building, e))?;
            let parent_of = child_dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            st.sync_dir(parent_of)
                .map_err(|e| JError::io("fsync dir", parent_of, e).into())
        });
        if let Err(e) = moved {
            let _ = std::fs::remove_dir_all(&building);
            return Err(e);
        }
        Journal::open(
            child_dir,
            Options {
                create: false,
                session_id: None,
                ..opts
            },
        )
    }
}

/// Writes the child's snapshot through `at_seq` and its first, empty segment after it.
fn build(
    dir: &Path,
    fold: &SessionFold,
    child: SessionId,
    at_seq: u64,
    opts: &Options,
) -> Result<()> {
    let st = opts.storage.as_ref();
    let _lock = lock::acquire(st, dir)?;
    let id = child.to_string();
    let expect = Expect {
        session_id: &id,
        through_seq: at_seq,
        messages: fold.message_count(),
    };
    compact::install(st, dir, &fold.retained(), event::now_ms(), &expect)
        .map_err(Error::Compaction)?;
    let first_seq = at_seq
        .checked_add(1)
        .ok_or_else(|| refused(dir, "no seq is left after at_seq"))?;
    let header = SegmentHeader {
        segment_id: 1,
        first_seq,
        session_id: child,
        created_at_ms: event::now_ms(),
    };
    segment::create_segment(st, dir, &header, opts.writer.prewrite_bytes)?;
    Ok(())
}

fn refused(dir: &Path, reason: &str) -> Error {
    JError::Corrupt {
        file: dir.into(),
        offset: 0,
        reason: format!("fork refused: {reason}"),
    }
    .into()
}
