//! Salvaging a damaged journal: [`Journal::salvage`] (read-only) and
//! [`Journal::repair_salvage`] (documented there, as the module is private).

use std::ops::RangeInclusive;
use std::path::Path;

use turnwal_journal::event::{self, Kind};
use turnwal_journal::segment::{self, SegmentHeader};
use turnwal_journal::{Error as JError, lock};
use turnwal_replay::compact::{self, Expect};
use turnwal_replay::salvage::{self, Salvaged};
use turnwal_replay::session::SessionFold;

use crate::{Error, Journal, Options, Result, SessionId};

/// What a salvage found and, once installed, what it did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SalvageReport {
    /// The snapshot the salvage started from, if one read whole.
    pub from_snapshot: Option<String>,
    /// Events kept (the snapshot's included).
    pub kept: u64,
    /// The highest kept seq: the new snapshot's `through_seq`.
    pub through_seq: u64,
    /// Messages of the salvaged session.
    pub messages: usize,
    /// Seqs lost, as inclusive ranges.
    pub lost: Vec<RangeInclusive<u64>>,
    /// How many seqs are lost in all.
    pub lost_count: u64,
    /// Byte ranges that did not validate.
    pub damaged: Vec<DamagedRange>,
    /// Segment files left out whole, and why.
    pub skipped: Vec<FileNote>,
    /// Seqs found twice, with the file whose copy was left out.
    pub conflicts: Vec<Conflict>,
    /// Kept from a snapshot that does not read whole (no snapshot did): its readable lines,
    /// which no checksum vouches for.
    pub unverified_snapshot: Option<UnverifiedSnapshot>,
    /// Whether it was installed (false for [`Journal::salvage`]).
    pub installed: bool,
    /// The snapshot written (when installed).
    pub snapshot: Option<String>,
    /// The segment files moved aside, with their new names (when installed).
    pub quarantined: Vec<MovedAside>,
    /// The fresh segment that continues the snapshot (when installed).
    pub new_segment: Option<String>,
}

/// A byte range of a segment in which nothing validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedRange {
    /// The segment file.
    pub file: String,
    /// Where the range starts.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
}

/// A file and why it is mentioned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileNote {
    /// The file.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// A seq found twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// The seq.
    pub seq: u64,
    /// The file whose copy was left out (the first copy, lowest segment and offset, stays).
    pub file: String,
}

/// A file renamed out of the journal, its bytes unchanged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MovedAside {
    /// Its name before.
    pub from: String,
    /// Its name now.
    pub to: String,
}

/// A snapshot that does not read whole, whose readable lines salvage kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnverifiedSnapshot {
    /// The file.
    pub file: String,
    /// Lines (events) kept.
    pub records: u64,
    /// Why it does not read whole.
    pub reason: String,
}

impl Journal {
    /// Reads every valid record of the damaged journal in `dir`, past any damage, and reports
    /// what would be kept and what is lost. Never changes a byte, takes no lock.
    ///
    /// The default open refuses a journal with damage it cannot prove harmless, and that is
    /// right: guessing loses data silently. Salvage is the explicit, logged alternative. It
    /// keeps every record that still validates, in any segment, after any damage, and
    /// renumbers nothing; the report lists the seqs lost and the byte ranges that did not
    /// validate.
    ///
    /// ```
    /// use turnwal::{Error, Journal, Options};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # let (journal, _) = Journal::open(&dir, Options::default())?;
    /// # for value in ["one", "two", "damaged", "four", "five"] {
    /// #     journal.append_json(&format!(r#"{{"kind":"meta","body":{{"k":"{value}"}}}}"#))?;
    /// #     journal.sync()?;
    /// # }
    /// # journal.close()?;
    /// # let segment = std::fs::read_dir(&dir)?
    /// #     .map(|e| e.map(|e| e.path()))
    /// #     .collect::<Result<Vec<_>, _>>()?
    /// #     .into_iter()
    /// #     .find(|p| p.extension().is_some_and(|x| x == "twl"))
    /// #     .ok_or("no segment")?;
    /// # let mut bytes = std::fs::read(&segment)?;
    /// # let at = bytes.windows(7).position(|w| w == b"damaged").ok_or("not found")?;
    /// # bytes[at] ^= 1; // seq 4's checksum no longer matches
    /// # std::fs::write(&segment, bytes)?;
    /// // A record in the middle of the log is damaged: a writable open refuses the journal.
    /// let refused = Journal::open(&dir, Options::default());
    /// assert!(matches!(refused, Err(Error::Refused { .. })));
    ///
    /// let report = Journal::salvage(&dir, &Options::default())?;
    /// assert_eq!(report.lost, vec![4..=4]); // every other seq would be kept
    /// assert_eq!((report.kept, report.installed), (5, false));
    /// # Ok(()) }
    /// ```
    pub fn salvage(dir: impl AsRef<Path>, opts: &Options) -> Result<SalvageReport> {
        let dir = dir.as_ref();
        let sv = read(dir, opts)?;
        let fold = fold(dir, &sv)?;
        Ok(report(&sv, &fold))
    }

    /// Installs what [`Journal::salvage`] reports as the journal's new state. Refused while a
    /// writer holds the journal, when nothing can be salvaged, or when the session's own first
    /// event is lost.
    ///
    /// Installing, in this order, each step durable before the next:
    /// 1. take the writer lock (refused while a writer holds it);
    /// 2. write the salvaged session as a snapshot through the compaction protocol (tmp, fsync,
    ///    read back and verify, rename, directory fsync) — through the highest salvaged seq;
    /// 3. move every segment file aside as `quarantine-salvaged-<ms>-<name>` and fsync the
    ///    directory: the damaged bytes are kept, never truncated in place (readers may map sealed
    ///    segments);
    /// 4. create a fresh, empty segment that continues the snapshot.
    ///
    /// A crash before step 2's rename leaves the journal as it was; a crash after it leaves one the
    /// next open (in [`crate::Mode::Salvage`], or `turnwal repair --salvage`) finishes from the
    /// snapshot step 2 installed, with nothing more lost. One loss of evidence, not of data: if the
    /// crash falls between step 2 and step 3, the damaged segments are covered by the new snapshot
    /// and the next writer's open deletes them as it deletes any covered segment, instead of their
    /// being kept aside. `tests/repair.rs` rebuilds the state after each step;
    /// `tests/recovery_modes.rs` crashes at every storage operation of a salvaging open.
    ///
    /// Opening with [`Options::recovery`] set to [`crate::Mode::Salvage`] does the same on a
    /// corrupt journal and continues as a writer; `turnwal repair --salvage DIR` is the
    /// command line for it.
    ///
    /// ```
    /// use turnwal::{Journal, Options, Status};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # let (journal, _) = Journal::open(&dir, Options::default())?;
    /// # for value in ["one", "two", "damaged", "four", "five"] {
    /// #     journal.append_json(&format!(r#"{{"kind":"meta","body":{{"k":"{value}"}}}}"#))?;
    /// #     journal.sync()?;
    /// # }
    /// # journal.close()?;
    /// # let segment = std::fs::read_dir(&dir)?
    /// #     .map(|e| e.map(|e| e.path()))
    /// #     .collect::<Result<Vec<_>, _>>()?
    /// #     .into_iter()
    /// #     .find(|p| p.extension().is_some_and(|x| x == "twl"))
    /// #     .ok_or("no segment")?;
    /// # let mut bytes = std::fs::read(&segment)?;
    /// # let at = bytes.windows(7).position(|w| w == b"damaged").ok_or("not found")?;
    /// # bytes[at] ^= 1; // seq 4's checksum no longer matches
    /// # std::fs::write(&segment, bytes)?;
    /// // The journal in `dir` has a damaged record (seq 4) in the middle of its log.
    /// let report = Journal::repair_salvage(&dir, &Options::default())?;
    /// assert_eq!(report.lost, vec![4..=4]);
    /// assert!(report.installed);
    /// println!("damaged bytes kept in {:?}", report.quarantined);
    ///
    /// let (journal, opened) = Journal::open(&dir, Options::default())?;
    /// assert_eq!(opened.status, Status::Clean);
    /// assert_eq!(journal.session().meta["k"], r#""five""#);
    /// # Ok(()) }
    /// ```
    pub fn repair_salvage(dir: impl AsRef<Path>, opts: &Options) -> Result<SalvageReport> {
        let dir = dir.as_ref();
        let st = opts.storage.as_ref();
        let _lock = if opts.takeover {
            lock::take_over(st, dir)?
        } else {
            lock::acquire(st, dir)?
        };
        install(dir, opts)
    }
}

/// Reads what can be salvaged and installs it (steps 2–4 of the module documentation). The
/// caller holds the writer lock: [`Journal::repair_salvage`], or [`Journal::open`] in
/// [`crate::Mode::Salvage`].
pub(crate) fn install(dir: &Path, opts: &Options) -> Result<SalvageReport> {
    let st = opts.storage.as_ref();
    let sv = read(dir, opts)?;
    let fold = fold(dir, &sv)?;
    let mut rep = report(&sv, &fold);
    let Some((_, first)) = sv.events.first() else {
        return Err(refused(dir, "nothing valid to salvage"));
    };
    let Kind::Session(info) = &first.kind else {
        return Err(refused(dir, "the session's own first event is lost"));
    };
    let session_id = SessionId::parse(&info.id)
        .ok_or_else(|| refused(dir, "the session id is not one turnwal writes"))?;
    let through = sv.last_seq();
    if through == u64::MAX {
        return Err(refused(dir, "the highest seq leaves no room for another"));
    }
    let expect = Expect {
        session_id: &info.id,
        through_seq: through,
        messages: fold.message_count(),
    };
    let installed = compact::install(st, dir, &fold.retained(), event::now_ms(), &expect)
        .map_err(Error::Compaction)?;
    rep.snapshot = Some(installed.file);
    let stamp = event::now_ms();
    for &id in &sv.segments {
        let name = segment::segment_name(id);
        let aside = format!("quarantine-salvaged-{stamp}-{name}");
        st.rename(&dir.join(&name), &dir.join(&aside))
            .map_err(|e| JError::io("rename", dir.join(&name), e))?;
        rep.quarantined.push(MovedAside {
            from: name,
            to: aside,
        });
    }
    st.sync_dir(dir)
        .map_err(|e| JError::io("fsync dir", dir, e))?;
    let segment_id = match sv.segments.last() {
        None => 1,
        Some(id) => id
            .checked_add(1)
            .ok_or_else(|| refused(dir, "the highest segment id leaves no room for another"))?,
    };
    let header = SegmentHeader {
        segment_id,
        first_seq: through + 1,
        session_id,
        created_at_ms: event::now_ms(),
    };
    segment::create_segment(st, dir, &header, opts.writer.prewrite_bytes)?;
    rep.new_segment = Some(segment::segment_name(header.segment_id));
    rep.installed = true;
    Ok(rep)
}

/// The events a salvage keeps, in seq order.
type Kept = Vec<(u64, std::sync::Arc<event::Event>)>;

/// What salvage would keep of the journal in `dir`, read-only: the report and the kept events
/// (for a read-only open in [`crate::Mode::Salvage`]).
pub(crate) fn preview(dir: &Path, opts: &Options) -> Result<(SalvageReport, SessionFold, Kept)> {
    let sv = read(dir, opts)?;
    let fold = fold(dir, &sv)?;
    let rep = report(&sv, &fold);
    Ok((rep, fold, sv.events))
}

fn read(dir: &Path, opts: &Options) -> Result<Salvaged> {
    let st = opts.storage.as_ref();
    crate::must_exist(st, dir)?;
    Ok(salvage::salvage(st, dir).map_err(|e| JError::io("salvage", dir, e))?)
}

fn fold(dir: &Path, sv: &Salvaged) -> Result<SessionFold> {
    SessionFold::from_retained(sv.events.iter().cloned(), sv.last_seq())
        .map_err(|e| refused(dir, &format!("the salvaged events do not fold: {e}")))
}

fn report(sv: &Salvaged, fold: &SessionFold) -> SalvageReport {
    SalvageReport {
        from_snapshot: sv.snapshot.as_ref().map(|(f, _)| f.clone()),
        kept: sv.events.len() as u64,
        through_seq: sv.last_seq(),
        messages: fold.message_count(),
        lost: sv.lost.clone(),
        lost_count: sv.lost_count(),
        damaged: sv
            .damaged
            .iter()
            .map(|d| DamagedRange {
                file: d.file.clone(),
                offset: d.offset,
                bytes: d.bytes,
            })
            .collect(),
        skipped: sv
            .skipped
            .iter()
            .map(|(file, reason)| FileNote {
                file: file.clone(),
                reason: reason.clone(),
            })
            .collect(),
        conflicts: sv
            .conflicts
            .iter()
            .map(|(seq, file)| Conflict {
                seq: *seq,
                file: file.clone(),
            })
            .collect(),
        unverified_snapshot: sv.unverified.as_ref().map(|(file, records, reason)| {
            UnverifiedSnapshot {
                file: file.clone(),
                records: *records,
                reason: reason.clone(),
            }
        }),
        installed: false,
        snapshot: None,
        quarantined: Vec::new(),
        new_segment: None,
    }
}

/// A salvage that cannot go on: the journal is damaged beyond what salvage keeps.
fn refused(dir: &Path, reason: &str) -> Error {
    JError::Corrupt {
        file: dir.into(),
        offset: 0,
        reason: format!("salvage refused: {reason}"),
    }
    .into()
}
