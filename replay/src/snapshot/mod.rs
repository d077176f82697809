//! The JSONL snapshot: a header line, one export envelope per retained event, and a trailer with
//! the record count and a CRC-32 over every byte before it. See FORMAT.md, "Snapshot file".
//!
//! Invariants:
//! - A snapshot without a valid trailer does not exist: the trailer is written last and covers
//!   every preceding byte, so a torn, truncated or edited snapshot is refused by [`read`].
//! - Every line is one JSON object and ends with `\n`; bodies are copied verbatim, so `jq` and any
//!   JSONL reader can open the file, and the body of each event is JSON-equal to what was appended.
//! - [`read`] rebuilds the same events [`write()`] was given: the snapshot law of
//!   [`crate::session::SessionFold::retained`] then carries over to files.

mod read;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use turnwal_journal::event::{Event, format_ts};
use turnwal_journal::segment::{self, SEGMENT_HEADER_BYTES, SegmentHeader, TMP_SUFFIX};
use turnwal_journal::storage::{OpenMode, ReadMode, Storage};

use crate::session::SessionFold;

pub use read::{Snapshot, SnapshotError, Unverified, read, read_shared, read_unverified};

/// Format name in the header line.
pub const SNAPSHOT_FORMAT: &str = "turnwal-snapshot";
/// Format version in the header line.
pub const SNAPSHOT_VERSION: u32 = 1;

const NAME_PREFIX: &str = "snapshot-";
const NAME_SUFFIX: &str = ".jsonl";
const NAME_DIGITS: usize = 20;

/// `snapshot-<through_seq, 20 digits>.jsonl`.
pub fn snapshot_name(through_seq: u64) -> String {
    format!("{NAME_PREFIX}{through_seq:0NAME_DIGITS$}{NAME_SUFFIX}")
}

/// The name a snapshot is prepared under before it is verified and renamed.
pub fn snapshot_tmp_name(through_seq: u64) -> String {
    format!("{}{TMP_SUFFIX}", snapshot_name(through_seq))
}

/// The `through_seq` in a snapshot file name; `None` for any other name (tmp files included).
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&s| s > 0)
}

/// `through_seq` of every snapshot file in `dir`, ascending.
pub fn list(st: &dyn Storage, dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut v: Vec<u64> = st
        .list(dir)?
        .iter()
        .filter_map(|n| parse_snapshot_name(n))
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// What [`load_newest`] found: the snapshot with its file name, and the newer files that did
/// not read back whole (or are of another session), with why.
pub type Loaded = (Option<(String, Snapshot)>, Vec<(String, String)>);

/// The session of the segments of `dir`: that of the lowest-id segment whose header reads and
/// names the segment it is in. `None` when no segment header reads.
pub fn segments_session(st: &dyn Storage, dir: &Path) -> Option<String> {
    let ids = segment::list_segments(st, dir).ok()?;
    ids.into_iter().find_map(|id| {
        let f = st
            .open(&segment::segment_path(dir, id), OpenMode::ReadOnly)
            .ok()?;
        let mut buf = [0u8; SEGMENT_HEADER_BYTES];
        let n = f.read_at(0, &mut buf).ok()?;
        let h = SegmentHeader::decode(&buf[..n]).ok()?;
        (h.segment_id == id).then(|| h.session_id.to_string())
    })
}

/// The newest snapshot of `dir` that reads back whole and is of the session its segments are
/// of, with its file name, and every newer snapshot file that did not, with why (a snapshot
/// of another session, e.g. copied in from another journal, is never used: its `through_seq`
/// would hide the journal's own events). A snapshot file that is not used is never deleted by
/// a reader.
pub fn load_newest(st: &dyn Storage, dir: &Path) -> std::io::Result<Loaded> {
    let mut ignored = Vec::new();
    let snapshots = list(st, dir)?;
    let session = if snapshots.is_empty() {
        None
    } else {
        segments_session(st, dir)
    };
    for through in snapshots.into_iter().rev() {
        let name = snapshot_name(through);
        // Installed snapshots are never written again, so mapping them is safe.
        let bytes = st
            .open(&dir.join(&name), OpenMode::ReadOnly)
            .and_then(|f| f.read_all(ReadMode::Map));
        let result = match bytes {
            Ok(b) => read_shared(&Arc::new(b)).map_err(|e| e.to_string()),
            Err(e) => Err(format!("read failed: {e}")),
        };
        match result {
            Ok(s) if s.through_seq == through => match &session {
                Some(own) if *own != s.session_id => ignored.push((
                    name,
                    format!(
                        "foreign snapshot: of session {}, the segments are of session {own}",
                        s.session_id
                    ),
                )),
                _ => return Ok((Some((name, s)), ignored)),
            },
            Ok(s) => ignored.push((
                name,
                format!("its header says through_seq {}", s.through_seq),
            )),
            Err(reason) => ignored.push((name, reason)),
        }
    }
    Ok((None, ignored))
}

/// Writes a snapshot in pieces of about `chunk` bytes to `sink`, computing the trailer's
/// checksum on the way, so a large session never needs a second copy in memory.
pub struct SnapshotWriter<F> {
    sink: F,
    buf: String,
    chunk: usize,
    crc: crc32fast::Hasher,
    records: u64,
    bytes: u64,
}

impl<F: FnMut(&[u8]) -> std::io::Result<()>> SnapshotWriter<F> {
    /// Starts a snapshot: writes the header line.
    pub fn new(
        sink: F,
        session_id: &str,
        through_seq: u64,
        created_at_ms: i64,
        chunk: usize,
    ) -> Self {
        let mut w = SnapshotWriter {
            sink,
            buf: String::with_capacity(chunk.min(1 << 20) + 4096),
            chunk: chunk.max(1),
            crc: crc32fast::Hasher::new(),
            records: 0,
            bytes: 0,
        };
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            w.buf,
            "{{\"format\":{},\"version\":{SNAPSHOT_VERSION},\"session\":{},\"through_seq\":{through_seq},\"created_at\":{}}}",
            Value::from(SNAPSHOT_FORMAT),
            Value::from(session_id),
            Value::from(format_ts(created_at_ms)),
        );
        w
    }

    /// Adds one event line.
    pub fn event(&mut self, seq: u64, event: &Event) -> std::io::Result<()> {
        event.write_envelope(seq, &mut self.buf);
        self.buf.push('\n');
        self.records += 1;
        if self.buf.len() >= self.chunk {
            self.flush_covered()?;
        }
        Ok(())
    }

    fn flush_covered(&mut self) -> std::io::Result<()> {
        self.crc.update(self.buf.as_bytes());
        self.bytes += self.buf.len() as u64;
        let r = (self.sink)(self.buf.as_bytes());
        self.buf.clear();
        r
    }

    /// Writes the trailer; returns the snapshot's size in bytes and its record count.
    pub fn finish(mut self) -> std::io::Result<(u64, u64)> {
        self.flush_covered()?;
        let crc = self.crc.clone().finalize();
        let _ = writeln!(
            self.buf,
            "{{\"trailer\":{{\"records\":{},\"crc32\":{crc}}}}}",
            self.records
        );
        self.bytes += self.buf.len() as u64;
        (self.sink)(self.buf.as_bytes())?;
        Ok((self.bytes, self.records))
    }
}

/// Appends the whole snapshot of `events` to `out` (header, one envelope per event, trailer).
/// The checksum covers only what this call appends, whatever `out` held before. See [`read`]
/// for an example (with [`write_fold`]).
pub fn write(
    session_id: &str,
    through_seq: u64,
    events: &[(u64, Arc<Event>)],
    created_at_ms: i64,
    out: &mut String,
) {
    let mut w = SnapshotWriter::new(
        |b: &[u8]| {
            out.push_str(&String::from_utf8_lossy(b));
            Ok(())
        },
        session_id,
        through_seq,
        created_at_ms,
        usize::MAX,
    );
    for (seq, e) in events {
        // The sink cannot fail.
        let _ = w.event(*seq, e);
    }
    let _ = w.finish();
}

/// Appends the snapshot of `fold` (its [`SessionFold::retained`] events, through its
/// `last_seq`) to `out`.
pub fn write_fold(fold: &SessionFold, created_at_ms: i64, out: &mut String) {
    write(
        fold.session_id(),
        fold.last_seq(),
        &fold.retained(),
        created_at_ms,
        out,
    );
}
