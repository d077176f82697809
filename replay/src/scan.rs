//! Scanning: reads segments and says where and how each one stops. Never mutates anything.
//!
//! A scan of one segment walks frames from offset 64 while they validate and continue the seq
//! chain. It then classifies the stop: a clean end (EOF, or zeros to EOF), damage (an invalid
//! frame, or zeros followed by data), a seq mismatch (a valid frame out of order), or a bad
//! header. After damage it searches on, at every 8-byte boundary, for valid frames of the same
//! segment: their watermarks tell whether the damaged seq had been acknowledged durable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use turnwal_journal::event::Event;
use turnwal_journal::record::{self, FrameError, RECORD_ALIGN};
use turnwal_journal::segment::{self, SEGMENT_HEADER_BYTES, SegmentHeader};
use turnwal_journal::storage::{Bytes, OpenMode, ReadMode, Storage};

/// How a segment's scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// End of file, or only zeros up to it, right after a valid frame.
    Clean,
    /// An invalid frame (or zeros followed by data) at `offset`.
    Damaged {
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A valid frame whose seq does not continue the chain.
    SeqMismatch {
        /// Where the frame starts.
        offset: u64,
        /// The seq that should have come.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The segment header is unreadable, or does not fit the journal.
    BadHeader {
        /// What is wrong.
        reason: String,
    },
    /// Reading the file failed; never treated as end-of-log.
    Io {
        /// The OS error, as text.
        reason: String,
    },
}

/// A valid frame found after damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundAfter {
    /// Where it starts.
    pub offset: u64,
    /// Its seq.
    pub seq: u64,
    /// Its watermark: every seq at or below was acknowledged durable when it was written.
    pub watermark: u64,
}

/// The scan of one segment file.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    /// Segment id from the file name.
    pub id: u64,
    /// The file.
    pub path: PathBuf,
    /// The header, if it validated.
    pub header: Option<SegmentHeader>,
    /// File size in bytes.
    pub file_len: u64,
    /// Valid events in this segment, in seq order (shared: the fold and the caller's view of
    /// every event hold the same allocation).
    pub events: Vec<(u64, Arc<Event>)>,
    /// Offset right after the last valid frame (64 if none).
    pub valid_end: u64,
    /// Offset after the last non-zero byte of the file.
    pub data_end: u64,
    /// Highest watermark in the valid frames.
    pub max_watermark: u64,
    /// How the scan stopped.
    pub stop: Stop,
    /// Valid frames found after damage.
    pub found_after: Vec<FoundAfter>,
}

impl SegmentScan {
    /// Seq of the last valid event, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.events.last().map(|(s, _)| *s)
    }
}

/// Most frames collected after damage (the rest are not needed to prove anything).
const FOUND_AFTER_MAX: usize = 4096;

/// Scans the bytes of segment `id`. `expected_first_seq` is where the seq chain must continue
/// (`None` for the first segment of the journal: take the header's).
/// Event bodies are left in `buf` (shared, not copied).
pub fn scan_segment(
    buf: &Arc<Bytes>,
    id: u64,
    path: PathBuf,
    expected_first_seq: Option<u64>,
) -> SegmentScan {
    let bytes: &[u8] = buf;
    let data_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1) as u64;
    let mut scan = SegmentScan {
        id,
        path,
        header: None,
        file_len: bytes.len() as u64,
        events: Vec::new(),
        valid_end: SEGMENT_HEADER_BYTES as u64,
        data_end,
        max_watermark: 0,
        stop: Stop::Clean,
        found_after: Vec::new(),
    };
    let header = match SegmentHeader::decode(bytes) {
        Ok(h) => h,
        Err(reason) => {
            scan.stop = Stop::BadHeader { reason };
            return scan;
        }
    };
    scan.header = Some(header);
    if header.segment_id != id {
        scan.stop = Stop::BadHeader {
            reason: format!(
                "header says segment {}, file name says {id}",
                header.segment_id
            ),
        };
        return scan;
    }
    if let Some(first) = expected_first_seq
        && header.first_seq != first
    {
        scan.stop = Stop::SeqMismatch {
            offset: 0,
            expected: first,
            found: header.first_seq,
        };
        return scan;
    }
    // `None` once the chain has reached u64::MAX: no frame may follow.
    let mut expected = Some(header.first_seq);
    let mut off = SEGMENT_HEADER_BYTES;
    loop {
        if off >= bytes.len() {
            break; // EOF right after a valid frame (or the header).
        }
        match record::decode_shared(buf, off, id) {
            Ok((rec, len)) => {
                if Some(rec.header.seq) != expected {
                    scan.stop = Stop::SeqMismatch {
                        offset: off as u64,
                        expected: expected.unwrap_or(u64::MAX),
                        found: rec.header.seq,
                    };
                    break;
                }
                scan.max_watermark = scan.max_watermark.max(rec.header.watermark);
                scan.events.push((rec.header.seq, Arc::new(rec.event)));
                expected = rec.header.seq.checked_add(1);
                off += len;
                scan.valid_end = off as u64;
            }
            Err(FrameError::Zero) if data_end <= off as u64 => break, // zeros to EOF: clean end
            Err(e) => {
                let reason = match e {
                    FrameError::Zero => format!("zeros, then data up to offset {data_end}"),
                    other => other.to_string(),
                };
                scan.stop = Stop::Damaged {
                    offset: off as u64,
                    reason,
                };
                scan.found_after = search_after(bytes, id, off + RECORD_ALIGN, data_end as usize);
                break;
            }
        }
    }
    scan
}

/// Finds valid frames of segment `id` at aligned offsets in `from..data_end`.
fn search_after(bytes: &[u8], id: u64, from: usize, data_end: usize) -> Vec<FoundAfter> {
    let mut found = Vec::new();
    let mut off = from.next_multiple_of(RECORD_ALIGN);
    while off < data_end && found.len() < FOUND_AFTER_MAX {
        match record::decode(&bytes[off..], id) {
            Ok((rec, len)) => {
                found.push(FoundAfter {
                    offset: off as u64,
                    seq: rec.header.seq,
                    watermark: rec.header.watermark,
                });
                off += len.max(RECORD_ALIGN);
            }
            Err(_) => off += RECORD_ALIGN,
        }
    }
    found
}

/// The scan of a whole journal directory.
#[derive(Debug, Clone, Default)]
pub struct DirScan {
    /// Segments in id order (those a snapshot covers wholly are left out).
    pub segments: Vec<SegmentScan>,
    /// Problems with the set of files itself (missing segment ids).
    pub missing: Vec<u64>,
    /// The snapshot's `through_seq` the scan started after (0: no snapshot). Events at or
    /// below it in the first segment are the snapshot's, not the log's.
    pub base_seq: u64,
    /// Segments wholly at or below `base_seq`: left over by a compaction that crashed before
    /// deleting them. Not scanned; a writer deletes them.
    pub covered: Vec<u64>,
    /// The segments do not continue the snapshot (or, with none, do not start at seq 1).
    pub gap: Option<Gap>,
}

/// The segments do not continue what comes before them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The file where the chain breaks (empty: no segment at all).
    pub file: String,
    /// What is wrong.
    pub reason: String,
    /// The problem kind it reports ([`crate::recover::Problem::kind`]): `seq_gap`,
    /// `foreign_snapshot`.
    pub kind: &'static str,
}

impl DirScan {
    /// Highest watermark stated by any valid frame, before or after damage, in any segment;
    /// at least `base_seq`, since compaction makes every event it covers durable first.
    pub fn max_watermark(&self) -> u64 {
        let frames = self
            .segments
            .iter()
            .flat_map(|s| {
                std::iter::once(s.max_watermark).chain(s.found_after.iter().map(|f| f.watermark))
            })
            .max()
            .unwrap_or(0);
        frames.max(self.base_seq)
    }
}

/// Scans every segment of `dir`. Sealed segments are memory-mapped (no one shrinks them); the
/// last one is copied, since a writer may still truncate it. The chain of seqs continues across
/// segments; scanning goes on after a damaged segment so later watermarks are seen.
pub fn scan_dir(storage: &dyn Storage, dir: &Path) -> Result<DirScan, (PathBuf, std::io::Error)> {
    scan_dir_after(storage, dir, 0)
}

/// Like [`scan_dir`], for a journal whose snapshot holds every event through `base_seq`.
///
/// Segments wholly at or below `base_seq` are skipped (listed in [`DirScan::covered`]): a
/// segment is wholly covered when a later segment's header says it starts at or before
/// `base_seq + 1`. Scanning starts at the last segment that starts at or before
/// `base_seq + 1`. Recorded as a [`DirScan::gap`]: no segment at all, a first segment that
/// starts after `base_seq + 1`, or segments whose clean chain ends below `base_seq`.
pub fn scan_dir_after(
    storage: &dyn Storage,
    dir: &Path,
    base_seq: u64,
) -> Result<DirScan, (PathBuf, std::io::Error)> {
    let mut ids = match segment::list_segments(storage, dir) {
        Ok(ids) => ids,
        Err(turnwal_journal::Error::Io { path, source, .. }) => return Err((path, source)),
        Err(e) => return Err((dir.to_path_buf(), std::io::Error::other(e.to_string()))),
    };
    let mut out = DirScan {
        base_seq,
        ..DirScan::default()
    };
    if base_seq > 0 {
        let mut start = 0;
        for (i, &id) in ids.iter().enumerate() {
            match read_header(storage, &segment::segment_path(dir, id)) {
                Some(h) if h.first_seq <= base_seq.saturating_add(1) => start = i,
                _ => break,
            }
        }
        out.covered = ids.drain(..start).collect();
    }
    scan_ids(storage, dir, &ids, &mut out);
    if base_seq > 0 || !out.segments.is_empty() {
        out.gap = snapshot_gap(&out, base_seq);
    }
    Ok(out)
}

fn read_header(storage: &dyn Storage, path: &Path) -> Option<SegmentHeader> {
    let f = storage.open(path, OpenMode::ReadOnly).ok()?;
    let mut buf = [0u8; SEGMENT_HEADER_BYTES];
    let n = f.read_at(0, &mut buf).ok()?;
    SegmentHeader::decode(&buf[..n]).ok()
}

/// Whether the scanned segments continue a snapshot through `base` (with no snapshot,
/// `base` is 0 and the log must start at seq 1: segments that start later mean the events
/// before them are gone, e.g. with a snapshot that no longer reads whole).
fn snapshot_gap(scan: &DirScan, base: u64) -> Option<Gap> {
    let gap = |file: String, reason: String| Gap {
        file,
        reason,
        kind: "seq_gap",
    };
    let Some(first) = scan.segments.first() else {
        return Some(gap(
            String::new(),
            format!("no segment continues the snapshot through seq {base}"),
        ));
    };
    let name = crate::recover::file_name(&first.path);
    let h = first.header?; // a bad header is reported by the scan itself
    if h.first_seq > base.saturating_add(1) {
        let held = if base == 0 {
            "no snapshot that reads whole holds the events before it".to_string()
        } else {
            format!("the snapshot ends at seq {base}")
        };
        return Some(gap(
            name,
            format!(
                "starts at seq {}, but {held}: events {}..{} are missing",
                h.first_seq,
                base.saturating_add(1),
                h.first_seq - 1
            ),
        ));
    }
    // Only a clean chain can be judged here; damage is reported by the scan.
    if scan.segments.iter().any(|s| s.stop != Stop::Clean) {
        return None;
    }
    let last = scan.segments.last()?;
    let end = last
        .last_seq()
        .or_else(|| last.header.map(|h| h.first_seq - 1))
        .unwrap_or(0);
    (end < base).then(|| {
        gap(
            crate::recover::file_name(&last.path),
            format!("the log ends at seq {end}, below the snapshot's through_seq {base}"),
        )
    })
}

fn scan_ids(storage: &dyn Storage, dir: &Path, ids: &[u64], out: &mut DirScan) {
    let mut expected_first: Option<u64> = None;
    let mut prev_id: Option<u64> = None;
    let mut session = None;
    let mut chain_full = false;
    for (i, &id) in ids.iter().enumerate() {
        if let Some(p) = prev_id {
            // At most 64 per gap; ids near u64::MAX must not overflow.
            out.missing.extend(p + 1..id.min(p.saturating_add(65)));
        }
        prev_id = Some(id);
        let path = segment::segment_path(dir, id);
        let mode = if i + 1 == ids.len() {
            ReadMode::Copy
        } else {
            ReadMode::Map
        };
        let bytes = storage
            .open(&path, OpenMode::ReadOnly)
            .and_then(|f| f.read_all(mode));
        let scan = match bytes {
            Ok(bytes) => {
                let mut scan = scan_segment(&Arc::new(bytes), id, path, expected_first);
                // Every segment of a journal carries the same session id: a segment copied in
                // from another journal is refused, not spliced in.
                if let Some(h) = scan.header {
                    match session {
                        None => session = Some(h.session_id),
                        Some(first) if first != h.session_id => {
                            scan.events.clear();
                            scan.stop = Stop::BadHeader {
                                reason: format!("belongs to session {}, not {first}", h.session_id),
                            };
                        }
                        Some(_) => {}
                    }
                }
                if chain_full
                    && let Some(h) = scan.header
                    && !matches!(scan.stop, Stop::BadHeader { .. })
                {
                    scan.events.clear();
                    scan.stop = Stop::SeqMismatch {
                        offset: 0,
                        expected: u64::MAX,
                        found: h.first_seq,
                    };
                }
                scan
            }
            Err(e) => SegmentScan {
                id,
                path,
                header: None,
                file_len: 0,
                events: Vec::new(),
                valid_end: 0,
                data_end: 0,
                max_watermark: 0,
                stop: Stop::Io {
                    reason: e.to_string(),
                },
                found_after: Vec::new(),
            },
        };
        expected_first = match (scan.last_seq(), scan.header) {
            // The chain reached u64::MAX: whatever segment follows cannot continue it (it
            // is checked against u64::MAX, and its frames could only repeat seqs).
            (Some(u64::MAX), _) => {
                chain_full = true;
                Some(u64::MAX)
            }
            (Some(last), _) => Some(last + 1),
            (None, Some(h)) => Some(h.first_seq),
            (None, None) => expected_first,
        };
        out.segments.push(scan);
    }
}
