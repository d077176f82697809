//! Recovery: decides, from a scan, what may be cut and what must be refused, then (separately)
//! applies the cut. The decision is a labelled table ([`CASES`]); a test enumerates every input
//! and checks that exactly one case answers it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use turnwal_journal::storage::{OpenMode, ReadMode, Storage};

use crate::scan::{DirScan, SegmentScan, Stop};

/// How strict recovery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Cut a proven torn tail (keeping its bytes in quarantine); refuse corruption.
    #[default]
    TolerateTornTail,
    /// Refuse any damage, torn tails included.
    Strict,
    /// Cut a proven torn tail like the default; on corruption, keep every record that still
    /// validates past the damage, quarantine the damaged files, renumber nothing, and report
    /// exactly which seqs were lost (explicit: `turnwal repair --salvage`).
    Salvage,
}

/// The kind of stop, as the table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopKind {
    /// Clean end.
    Clean,
    /// Invalid frame or zeros-then-data.
    Damaged,
    /// Valid frame out of the seq chain, or a segment missing from the chain.
    SeqMismatch,
    /// Unreadable segment header.
    BadHeader,
    /// The read failed.
    Io,
}

/// Where the stop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// The last (active) segment: the only place a write can have been interrupted.
    Last,
    /// A sealed segment: fully synced before the next segment existed.
    Sealed,
}

/// Whether the damaged seq was acknowledged durable (at or below some frame's watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ack {
    /// Above every watermark seen: never reported durable.
    Unacknowledged,
    /// At or below a watermark: it had been reported durable.
    Acknowledged,
}

/// What recovery does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do.
    Accept,
    /// Cut the torn tail, keeping its bytes in a quarantine file.
    CutTornTail,
    /// A torn tail, but the mode refuses to cut it.
    RefuseTornTail,
    /// Acknowledged data is damaged: refuse to open for writing.
    RefuseCorrupt,
    /// Acknowledged data is damaged and the mode is [`Mode::Salvage`]: keep every valid record,
    /// quarantine the damage, report what was lost.
    SalvageCorrupt,
    /// The read failed: the open fails.
    FailIo,
}

/// One row of the decision table; `None` (or an empty mode list) matches anything.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Name of the row.
    pub label: &'static str,
    /// Stop kind.
    pub stop: StopKind,
    /// Place, or any.
    pub place: Option<Place>,
    /// Acknowledgement, or any.
    pub ack: Option<Ack>,
    /// The modes this row answers; empty for any.
    pub modes: &'static [Mode],
    /// The action.
    pub action: Action,
}

impl Case {
    /// Whether this row answers the input.
    pub fn matches(&self, stop: StopKind, place: Place, ack: Ack, mode: Mode) -> bool {
        self.stop == stop
            && self.place.is_none_or(|p| p == place)
            && self.ack.is_none_or(|a| a == ack)
            && (self.modes.is_empty() || self.modes.contains(&mode))
    }
}

const fn case(
    label: &'static str,
    stop: StopKind,
    place: Option<Place>,
    ack: Option<Ack>,
    modes: &'static [Mode],
    action: Action,
) -> Case {
    Case {
        label,
        stop,
        place,
        ack,
        modes,
        action,
    }
}

use Ack::*;
use Action::*;
use Place::*;

/// Modes that refuse corruption.
const REFUSING: &[Mode] = &[Mode::TolerateTornTail, Mode::Strict];
/// Modes that cut a proven torn tail.
const CUTTING: &[Mode] = &[Mode::TolerateTornTail, Mode::Salvage];
/// Salvage alone.
const SALVAGE: &[Mode] = &[Mode::Salvage];
/// Any mode.
const ANY: &[Mode] = &[];

/// The recovery decision table (docs/RECOVERY.md, "Where a scan can stop" and "Modes").
pub const CASES: &[Case] = &[
    case("clean end", StopKind::Clean, None, None, ANY, Accept),
    case(
        "torn tail, cut",
        StopKind::Damaged,
        Some(Last),
        Some(Unacknowledged),
        CUTTING,
        CutTornTail,
    ),
    case(
        "torn tail, strict",
        StopKind::Damaged,
        Some(Last),
        Some(Unacknowledged),
        &[Mode::Strict],
        RefuseTornTail,
    ),
    case(
        "damaged acknowledged record in the active segment",
        StopKind::Damaged,
        Some(Last),
        Some(Acknowledged),
        REFUSING,
        RefuseCorrupt,
    ),
    case(
        "damaged acknowledged record in the active segment, salvaged",
        StopKind::Damaged,
        Some(Last),
        Some(Acknowledged),
        SALVAGE,
        SalvageCorrupt,
    ),
    case(
        "damage in a sealed segment",
        StopKind::Damaged,
        Some(Sealed),
        None,
        REFUSING,
        RefuseCorrupt,
    ),
    case(
        "damage in a sealed segment, salvaged",
        StopKind::Damaged,
        Some(Sealed),
        None,
        SALVAGE,
        SalvageCorrupt,
    ),
    case(
        "seq gap or duplicate",
        StopKind::SeqMismatch,
        None,
        None,
        REFUSING,
        RefuseCorrupt,
    ),
    case(
        "seq gap or duplicate, salvaged",
        StopKind::SeqMismatch,
        None,
        None,
        SALVAGE,
        SalvageCorrupt,
    ),
    case(
        "bad segment header",
        StopKind::BadHeader,
        None,
        None,
        REFUSING,
        RefuseCorrupt,
    ),
    case(
        "bad segment header, salvaged",
        StopKind::BadHeader,
        None,
        None,
        SALVAGE,
        SalvageCorrupt,
    ),
    case("read failed", StopKind::Io, None, None, ANY, FailIo),
];

/// Looks the input up in [`CASES`]. Total: the table test proves every input has one row.
pub fn decide(stop: StopKind, place: Place, ack: Ack, mode: Mode) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.matches(stop, place, ack, mode))
        .unwrap_or(&CASES[CASES.len() - 1])
}

/// Overall state of a journal's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every segment ends cleanly.
    Clean,
    /// Only a never-acknowledged torn tail is damaged.
    TornTail,
    /// Acknowledged data is damaged, or the files do not form a chain.
    Corrupt,
}

/// A problem found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// Byte offset.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// Which case this is, for people and scripts: `torn_tail`, `mid_log_corruption` (an
    /// invalid record with valid records after it), `acknowledged_tail_lost` (the end of the
    /// last segment is damaged below the durable watermark), `sealed_segment_ends_early`,
    /// `seq_gap`, `seq_duplicate`, `missing_segment`, `bad_segment_header`, `foreign_segment`
    /// (a segment of another session), `foreign_snapshot`, `io_error`.
    pub kind: &'static str,
}

/// A torn tail to cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cut {
    /// Segment id.
    pub segment_id: u64,
    /// The file.
    pub file: String,
    /// Cut here: the end of the last valid frame.
    pub offset: u64,
    /// Non-zero bytes removed (offset to the last non-zero byte).
    pub bytes: u64,
}

/// What a scan means, per the table.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Overall status.
    pub status: Status,
    /// The action of the deciding stop.
    pub action: Action,
    /// The label of the deciding table row.
    pub case: &'static str,
    /// The tail to cut, for `CutTornTail` (and reported for `RefuseTornTail`).
    pub cut: Option<Cut>,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
    /// Highest watermark seen anywhere.
    pub max_watermark: u64,
}

fn stop_kind(s: &Stop) -> StopKind {
    match s {
        Stop::Clean => StopKind::Clean,
        Stop::Damaged { .. } => StopKind::Damaged,
        Stop::SeqMismatch { .. } => StopKind::SeqMismatch,
        Stop::BadHeader { .. } => StopKind::BadHeader,
        Stop::Io { .. } => StopKind::Io,
    }
}

/// The problem a segment's stop is, named by its case.
fn problem(seg: &SegmentScan, place: Place, ack: Ack) -> Option<Problem> {
    let file = file_name(&seg.path);
    let (offset, reason, kind) = match &seg.stop {
        Stop::Clean => return None,
        Stop::Damaged { offset, reason } => {
            let kind = match (place, ack) {
                (Last, Unacknowledged) => "torn_tail",
                _ if !seg.found_after.is_empty() => "mid_log_corruption",
                (Last, Acknowledged) => "acknowledged_tail_lost",
                (Sealed, _) => "sealed_segment_ends_early",
            };
            (*offset, reason.clone(), kind)
        }
        Stop::SeqMismatch {
            offset,
            expected,
            found,
        } => (
            *offset,
            format!("expected seq {expected}, found {found}"),
            if found > expected {
                "seq_gap"
            } else {
                "seq_duplicate"
            },
        ),
        Stop::BadHeader { reason } if reason.starts_with("belongs to session") => {
            (0, reason.clone(), "foreign_segment")
        }
        Stop::BadHeader { reason } => (0, reason.clone(), "bad_segment_header"),
        Stop::Io { reason } => (0, format!("read failed: {reason}"), "io_error"),
    };
    Some(Problem {
        file,
        offset,
        reason,
        kind,
    })
}

/// File name (not the full path): reports never reveal where the journal lives.
pub fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Applies the table to every segment; the first stop that is not `Accept` decides.
pub fn plan(scan: &DirScan, mode: Mode) -> Plan {
    let max_watermark = scan.max_watermark();
    let mut problems: Vec<Problem> = Vec::new();
    let mut decided: Option<(&'static Case, &SegmentScan)> = None;
    for (i, seg) in scan.segments.iter().enumerate() {
        let place = if i + 1 == scan.segments.len() {
            Last
        } else {
            Sealed
        };
        let expected = seg.last_seq().map_or_else(
            || seg.header.map_or(0, |h| h.first_seq),
            |s| s.saturating_add(1),
        );
        let ack = if expected <= max_watermark {
            Acknowledged
        } else {
            Unacknowledged
        };
        problems.extend(problem(seg, place, ack));
        let c = decide(stop_kind(&seg.stop), place, ack, mode);
        if c.action != Accept && decided.is_none() {
            decided = Some((c, seg));
        }
    }
    for id in &scan.missing {
        problems.push(Problem {
            file: turnwal_journal::segment::segment_name(*id),
            offset: 0,
            reason: "segment missing from the chain".into(),
            kind: "missing_segment",
        });
    }
    if let Some(gap) = &scan.gap {
        problems.push(Problem {
            file: gap.file.clone(),
            offset: 0,
            reason: gap.reason.clone(),
            kind: gap.kind,
        });
    }
    let (case, seg) = match decided {
        Some((c, s)) => (c, Some(s)),
        None if !scan.missing.is_empty() || scan.gap.is_some() => (
            decide(StopKind::SeqMismatch, Sealed, Acknowledged, mode),
            None,
        ),
        None => (&CASES[0], None),
    };
    let status = match case.action {
        Accept => Status::Clean,
        CutTornTail | RefuseTornTail => Status::TornTail,
        RefuseCorrupt | SalvageCorrupt | FailIo => Status::Corrupt,
    };
    let cut = match (case.action, seg) {
        (CutTornTail | RefuseTornTail, Some(s)) => Some(Cut {
            segment_id: s.id,
            file: file_name(&s.path),
            offset: s.valid_end,
            bytes: s.data_end.saturating_sub(s.valid_end),
        }),
        _ => None,
    };
    Plan {
        status,
        action: case.action,
        case: case.label,
        cut,
        problems,
        max_watermark,
    }
}

/// Name of the quarantine file for a cut.
pub fn quarantine_name(cut: &Cut, now_ms: i64) -> String {
    format!(
        "quarantine-{:020}-{:020}-{now_ms}.bin",
        cut.segment_id, cut.offset
    )
}

/// Cuts a torn tail: copies its bytes to a quarantine file (synced, directory synced), then
/// truncates the segment at the cut and syncs it. A crash anywhere in here recovers the same way
/// again: until the truncation is durable the tail is still there and still torn.
pub fn apply_cut(
    storage: &dyn Storage,
    dir: &Path,
    cut: &Cut,
    now_ms: i64,
) -> Result<PathBuf, (&'static str, PathBuf, std::io::Error)> {
    let seg_path = dir.join(&cut.file);
    let seg = storage
        .open(&seg_path, OpenMode::ReadWrite)
        .map_err(|e| ("open", seg_path.clone(), e))?;
    let bytes = seg
        .read_all(ReadMode::Copy)
        .map_err(|e| ("read", seg_path.clone(), e))?;
    let start = usize::try_from(cut.offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = usize::try_from(cut.offset + cut.bytes)
        .unwrap_or(usize::MAX)
        .min(bytes.len())
        .max(start);
    let q_path = dir.join(quarantine_name(cut, now_ms));
    let q = storage
        .open(&q_path, OpenMode::CreateNew)
        .map_err(|e| ("create", q_path.clone(), e))?;
    q.write_at(0, &bytes[start..end])
        .map_err(|e| ("write", q_path.clone(), e))?;
    q.sync_data()
        .map_err(|e| ("fdatasync", q_path.clone(), e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| ("fsync dir", dir.to_path_buf(), e))?;
    turnwal_journal::killpoint::kill_point("recover:quarantined");
    seg.set_len(cut.offset)
        .map_err(|e| ("truncate", seg_path.clone(), e))?;
    turnwal_journal::killpoint::kill_point("recover:truncated");
    seg.sync_data()
        .map_err(|e| ("fdatasync", seg_path.clone(), e))?;
    Ok(q_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOPS: [StopKind; 5] = [
        StopKind::Clean,
        StopKind::Damaged,
        StopKind::SeqMismatch,
        StopKind::BadHeader,
        StopKind::Io,
    ];
    const PLACES: [Place; 2] = [Last, Sealed];
    const ACKS: [Ack; 2] = [Unacknowledged, Acknowledged];
    const MODES: [Mode; 3] = [Mode::TolerateTornTail, Mode::Strict, Mode::Salvage];

    /// Every input matches exactly one row: no holes, no overlaps.
    #[test]
    fn every_input_has_exactly_one_case() {
        for stop in STOPS {
            for place in PLACES {
                for ack in ACKS {
                    for mode in MODES {
                        let rows: Vec<&str> = CASES
                            .iter()
                            .filter(|c| c.matches(stop, place, ack, mode))
                            .map(|c| c.label)
                            .collect();
                        assert_eq!(
                            rows.len(),
                            1,
                            "{stop:?} {place:?} {ack:?} {mode:?} -> {rows:?}"
                        );
                    }
                }
            }
        }
    }

    /// Every row is reachable and the safety rules hold across the whole input space.
    #[test]
    fn table_never_cuts_what_was_acknowledged_or_sealed() {
        let mut used = std::collections::HashSet::new();
        for stop in STOPS {
            for place in PLACES {
                for ack in ACKS {
                    for mode in MODES {
                        let c = decide(stop, place, ack, mode);
                        used.insert(c.label);
                        if c.action == CutTornTail {
                            assert_eq!(
                                (stop, place, ack),
                                (StopKind::Damaged, Last, Unacknowledged)
                            );
                            assert_ne!(mode, Mode::Strict);
                        }
                        // Only Salvage ever goes past corruption, and only there.
                        assert_eq!(
                            c.action == SalvageCorrupt,
                            mode == Mode::Salvage
                                && matches!(
                                    (stop, place, ack),
                                    (StopKind::Damaged, _, Acknowledged)
                                        | (StopKind::Damaged, Sealed, _)
                                        | (StopKind::SeqMismatch | StopKind::BadHeader, _, _)
                                ),
                            "{stop:?} {place:?} {ack:?} {mode:?}"
                        );
                        if mode == Mode::Salvage && c.action != SalvageCorrupt {
                            let other = decide(stop, place, ack, Mode::TolerateTornTail);
                            assert_eq!(
                                c.action, other.action,
                                "salvage differs only on corruption"
                            );
                        }
                        if stop == StopKind::Io {
                            assert_eq!(c.action, FailIo, "an I/O error is never end-of-log");
                        }
                        if stop == StopKind::Clean {
                            assert_eq!(c.action, Accept);
                        }
                    }
                }
            }
        }
        assert_eq!(used.len(), CASES.len(), "unreachable rows");
    }
}
