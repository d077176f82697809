//! Salvage: every valid record a damaged journal still holds, past the damage, with exactly what
//! was lost.
//!
//! The default recovery stops at the first damage it cannot prove harmless (docs/RECOVERY.md). Salvage
//! is the explicit, logged alternative for a journal that refuses to open: it reads every frame
//! that validates (checksum, segment binding, canonical payload) at every 8-byte boundary of
//! every segment, plus the newest snapshot that reads whole, and keeps them all. It renumbers
//! nothing: the seqs it cannot find are listed as lost, and the byte ranges that did not
//! validate are listed as damaged. Reading changes nothing; installing the result is the
//! caller's act (`turnwal repair --salvage`).
//!
//! Invariants:
//! - Every kept event is a frame that validates in its segment, or an event of a snapshot that
//!   reads whole, or (only when no snapshot reads whole) an event of the newest snapshot file
//!   whose header still reads, line by line up to its first bad line, reported as
//!   [`Salvaged::unverified`] since no checksum vouches for those lines; seqs strictly
//!   increase; a seq found twice keeps its first (lowest segment, lowest offset) copy and the
//!   other is reported as a conflict.
//! - `lost` is exactly the seqs above the snapshot's `through_seq` and below the highest kept seq
//!   that no kept event has. Valid frames of seqs a whole snapshot claims (at or below its
//!   `through_seq`) but does not hold (above its last event) are kept, not hidden by the
//!   claim. For an unverified snapshot, the seqs after its last readable line through its
//!   `through_seq` count as lost, though some may have been folded away. Seqs past the highest
//!   kept one cannot be known (never written, or lost with the tail) and are not claimed.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use turnwal_journal::event::Event;
use turnwal_journal::record::{self, FrameError, RECORD_ALIGN};
use turnwal_journal::segment::{self, SEGMENT_HEADER_BYTES, SegmentHeader};
use turnwal_journal::storage::{Bytes, OpenMode, ReadMode, Storage};

use crate::snapshot;

/// Byte range of a segment in which nothing validated (zeros excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The segment file.
    pub file: String,
    /// Where the range starts.
    pub offset: u64,
    /// Its length.
    pub bytes: u64,
}

/// What a salvage read found.
#[derive(Debug, Clone, Default)]
pub struct Salvaged {
    /// The snapshot it started from: (file, through_seq), if one read whole.
    pub snapshot: Option<(String, u64)>,
    /// Every kept event, seqs strictly increasing (the snapshot's first).
    pub events: Vec<(u64, Arc<Event>)>,
    /// Seqs no kept event has, between the snapshot and the highest kept seq, as ranges.
    pub lost: Vec<RangeInclusive<u64>>,
    /// Byte ranges that did not validate.
    pub damaged: Vec<Damaged>,
    /// Segments left out whole: (file, why), e.g. a header of another session.
    pub skipped: Vec<(String, String)>,
    /// Seqs found twice: (seq, file of the copy left out).
    pub conflicts: Vec<(u64, String)>,
    /// Segment files read (ids), whether or not anything in them was kept.
    pub segments: Vec<u64>,
    /// A snapshot that does not read whole, whose readable lines were kept because no snapshot
    /// reads whole: (file, lines kept, why it is not whole).
    pub unverified: Option<(String, u64, String)>,
}

impl Salvaged {
    /// The highest kept seq (0 if nothing was kept).
    pub fn last_seq(&self) -> u64 {
        self.events.last().map_or(0, |(s, _)| *s)
    }

    /// How many seqs are lost in all.
    pub fn lost_count(&self) -> u64 {
        self.lost
            .iter()
            .map(|r| (r.end() - r.start()).saturating_add(1))
            .fold(0, u64::saturating_add)
    }
}

/// Reads every valid record of the journal in `dir`. Never changes a byte.
pub fn salvage(st: &dyn Storage, dir: &Path) -> std::io::Result<Salvaged> {
    let mut out = Salvaged::default();
    let (newest, ignored) = snapshot::load_newest(st, dir)?;
    let mut session = None;
    let mut own_session: Option<Option<String>> = None;
    // `from`: the snapshot's last event, after which the log's seqs are kept; `skip`: seqs at
    // or below it are the snapshot's (an unverified snapshot's claim, through its
    // `through_seq`: those not read are lost); `folded`: seqs at or below it that no frame
    // holds were folded into a whole snapshot, not lost. A whole snapshot whose header claims
    // seqs past its last event (e.g. a forged `through_seq` of u64::MAX) does not hide the
    // valid frames of those seqs: they are kept.
    let (from, skip, folded) = match newest {
        Some((file, snap)) => {
            let through = snap.through_seq;
            let last = snap.events.last().map_or(through, |(s, _)| *s);
            out.events = snap.events;
            out.snapshot = Some((file, through));
            (last, last, through)
        }
        // The newest snapshot file whose header reads, of the segments' session (a foreign
        // snapshot is never a source).
        None => match ignored.iter().find_map(|(file, reason)| {
            let buf = st
                .open(&dir.join(file), OpenMode::ReadOnly)
                .and_then(|f| f.read_all(ReadMode::Copy))
                .ok()?;
            let u = snapshot::read_unverified(&Arc::new(buf))?;
            let own = own_session
                .get_or_insert_with(|| snapshot::segments_session(st, dir))
                .as_ref()
                .is_none_or(|own| *own == u.session_id);
            (own && !u.events.is_empty()).then(|| (file.clone(), reason.clone(), u))
        }) {
            Some((file, reason, u)) => {
                let last = u.events.last().map_or(0, |(s, _)| *s);
                out.unverified = Some((file, u.events.len() as u64, reason));
                out.events = u.events;
                (last, u.through_seq, 0)
            }
            None => (0, 0, 0),
        },
    };
    let mut found: Vec<(u64, Arc<Event>, String)> = Vec::new();
    for id in segment::list_segments(st, dir).map_err(|e| std::io::Error::other(e.to_string()))? {
        out.segments.push(id);
        let path = segment::segment_path(dir, id);
        let file = segment::segment_name(id);
        // Copied, never mapped: a salvage may run on files that are about to be moved.
        let buf = match st
            .open(&path, OpenMode::ReadOnly)
            .and_then(|f| f.read_all(ReadMode::Copy))
        {
            Ok(b) => Arc::new(b),
            Err(e) => {
                out.skipped.push((file, format!("read failed: {e}")));
                continue;
            }
        };
        match SegmentHeader::decode(&buf) {
            Ok(h) if h.segment_id != id => {
                out.skipped
                    .push((file, format!("header says segment {}", h.segment_id)));
                continue;
            }
            Ok(h) => match session {
                None => session = Some(h.session_id),
                Some(s) if s != h.session_id => {
                    out.skipped.push((
                        file,
                        format!("belongs to session {}, not {s}", h.session_id),
                    ));
                    continue;
                }
                Some(_) => {}
            },
            // A bad header does not hide the frames after it: they carry their own binding.
            Err(_) => out.damaged.push(Damaged {
                file: file.clone(),
                offset: 0,
                bytes: SEGMENT_HEADER_BYTES as u64,
            }),
        }
        for (seq, event) in frames(&buf, id, &file, &mut out.damaged) {
            found.push((seq, event, file.clone()));
        }
    }
    // Stable: for a seq found twice, the first copy (lowest segment, lowest offset) stays.
    found.sort_by_key(|(seq, _, _)| *seq);
    let mut prev = from;
    for (seq, event, file) in found {
        if seq <= skip {
            continue; // the snapshot's
        }
        if prev < skip {
            // An unverified snapshot cut short: what it claimed after its last readable line.
            out.lost.push(prev + 1..=skip);
            prev = skip;
        }
        if seq == prev {
            out.conflicts.push((seq, file));
            continue;
        }
        let gap = prev.max(folded).saturating_add(1);
        if seq > gap {
            out.lost.push(gap..=seq - 1);
        }
        prev = seq;
        out.events.push((seq, event));
    }
    if prev < skip {
        out.lost.push(prev + 1..=skip);
    }
    Ok(out)
}

/// Every frame of segment `id` in `buf` that validates, at 8-byte boundaries from the header
/// on; the ranges between them that are not zeros go to `damaged`.
fn frames(
    buf: &Arc<Bytes>,
    id: u64,
    file: &str,
    damaged: &mut Vec<Damaged>,
) -> Vec<(u64, Arc<Event>)> {
    let data_end = buf.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER_BYTES;
    let mut bad_from: Option<usize> = None;
    let flush = |from: Option<usize>, to: usize, damaged: &mut Vec<Damaged>| {
        if let Some(from) = from
            && buf.get(from..to).is_some_and(|b| b.iter().any(|&x| x != 0))
        {
            damaged.push(Damaged {
                file: file.to_string(),
                offset: from as u64,
                bytes: (to - from) as u64,
            });
        }
    };
    while off < data_end {
        match record::decode_shared(buf, off, id) {
            Ok((rec, len)) => {
                flush(bad_from.take(), off, damaged);
                out.push((rec.header.seq, Arc::new(rec.event)));
                off += len.max(RECORD_ALIGN);
            }
            Err(FrameError::Zero) => {
                flush(bad_from.take(), off, damaged);
                off += RECORD_ALIGN;
            }
            Err(_) => {
                bad_from.get_or_insert(off);
                off += RECORD_ALIGN;
            }
        }
    }
    flush(bad_from.take(), data_end, damaged);
    out
}
