//! Following a journal as it grows: [`Tail`] (documented there, as the module is private).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Event, Journal, Options, ReadOnly, Result};

/// A follower of one journal directory: yields every event once, in seq order, once it is
/// durable, from another thread or another process, while a writer appends, rotates and
/// compacts (what `turnwal tail -f` does).
///
/// Each [`Tail::poll`] is a read-only open ([`Journal::open_read_only`]): it takes no lock,
/// changes no byte, reads again if a compaction swaps files under it, maps only sealed
/// segments and snapshots (which nothing shrinks) and reads the active segment with `read`, so
/// a writer cutting a torn tail or compacting can never fault it.
///
/// **What counts as durable.** While a writer holds the journal's lock, a reader knows an event
/// is durable only from the log itself: every frame carries the writer's durable watermark when
/// it was written, and a snapshot holds only synced events. So a poll yields events up to the
/// highest watermark it sees (or the snapshot's `through_seq`), one sync behind the writer.
/// When no process holds the lock (the writer closed, with its final sync, or died), everything
/// valid on disk is yielded.
///
/// **After a compaction** a tail that had fallen behind sees the compacted form: superseded
/// deltas and usage records folded into a snapshot are no longer stored, so they are skipped;
/// every event still stored is yielded exactly once.
///
/// Each poll rereads the journal: its cost grows with the session, not with what changed. Poll
/// at human speed (the CLI's `tail -f` polls every 200 ms).
///
/// ```
/// use turnwal::{Journal, Options, Tail};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path().join("s");
/// let (journal, _) = Journal::open(&dir, Options::default())?;
/// let mut tail = Tail::new(&dir, Options::default());
/// journal.append_json(r#"{"kind":"meta","body":{"step":1}}"#)?;
/// journal.sync()?;
/// journal.append_json(r#"{"kind":"meta","body":{"step":2}}"#)?;
///
/// // The writer holds the lock: seq 3's frame says seqs up to 2 are durable.
/// let seqs: Vec<u64> = tail.poll()?.iter().map(|(seq, _)| *seq).collect();
/// assert_eq!(seqs, [1, 2]);
///
/// journal.close()?; // its final sync; with no writer, all that is valid on disk is yielded
/// let seqs: Vec<u64> = tail.poll()?.iter().map(|(seq, _)| *seq).collect();
/// assert_eq!(seqs, [3]);
/// assert!(tail.poll()?.is_empty()); // each event once
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Tail {
    dir: PathBuf,
    opts: Options,
    next: u64,
}

impl Tail {
    /// Follows `dir` from its first event. Reads nothing yet: the directory need not exist
    /// until the first [`Tail::poll`]. See [`Tail`] for an example.
    pub fn new(dir: impl AsRef<Path>, opts: Options) -> Tail {
        Tail::from_seq(dir, opts, 1)
    }

    /// Follows `dir` from seq `next` on (events below it are not yielded): to resume following
    /// where an earlier tail stopped ([`Tail::next_seq`]).
    ///
    /// ```
    /// use turnwal::{Options, Tail};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # let (journal, _) = turnwal::Journal::open(&dir, Default::default())?;
    /// # journal.append_json(r#"{"kind":"meta","body":{"k":1}}"#)?;
    /// # journal.close()?;
    /// let mut tail = Tail::from_seq(&dir, Options::default(), 2);
    /// assert_eq!(tail.poll()?[0].0, 2); // seq 1 is skipped
    /// # Ok(()) }
    /// ```
    pub fn from_seq(dir: impl AsRef<Path>, opts: Options, next: u64) -> Tail {
        Tail {
            dir: dir.as_ref().to_path_buf(),
            opts,
            next: next.max(1),
        }
    }

    /// The seq the next yielded event will have at least: one past the last seq yielded (or
    /// known durable but no longer stored, after a compaction).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # let (journal, _) = turnwal::Journal::open(&dir, Default::default())?;
    /// # journal.close()?;
    /// let mut tail = turnwal::Tail::new(&dir, Default::default());
    /// assert_eq!(tail.next_seq(), 1);
    /// tail.poll()?; // the journal's `session` event
    /// assert_eq!(tail.next_seq(), 2);
    /// # Ok(()) }
    /// ```
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The events that became durable since the last poll, in seq order, each once. Each poll
    /// rereads the journal read-only (see [`Tail`]); poll at human speed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # let (journal, _) = turnwal::Journal::open(&dir, Default::default())?;
    /// # journal.append_json(r#"{"kind":"meta","body":{"k":1}}"#)?;
    /// # journal.close()?;
    /// let mut tail = turnwal::Tail::new(&dir, Default::default());
    /// while tail.next_seq() <= 2 {
    ///     for (seq, event) in tail.poll()? {
    ///         println!("{seq} {} {}", event.kind.name(), event.body.as_str());
    ///     }
    ///     std::thread::sleep(Duration::from_millis(200));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn poll(&mut self) -> Result<Vec<(u64, Arc<Event>)>> {
        let ro = Journal::open_read_only(&self.dir, &self.opts)?;
        let durable = durable_bound(&ro, &self.dir);
        let out: Vec<(u64, Arc<Event>)> = ro
            .events
            .into_iter()
            .filter(|(seq, _)| *seq >= self.next && *seq <= durable)
            .collect();
        // Seqs at or below the bound that are not stored (folded into a snapshot) never will be.
        self.next = self.next.max(durable.saturating_add(1));
        if let Some((last, _)) = out.last() {
            self.next = self.next.max(last + 1);
        }
        Ok(out)
    }
}

/// Highest seq known durable from what is on disk: everything valid when no process holds the
/// lock; else the highest watermark any frame carries, or the snapshot's `through_seq`.
fn durable_bound(ro: &ReadOnly, dir: &Path) -> u64 {
    let r = &ro.report;
    if !turnwal_journal::lock::is_held(dir) {
        return r.last_seq;
    }
    let snapshot = r.snapshot.as_ref().map_or(0, |s| s.through_seq);
    r.max_watermark.max(snapshot).min(r.last_seq)
}
