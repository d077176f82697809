//! Installing a snapshot, in exactly the order of docs/RECOVERY.md ("Compaction order"), and
//! removing what it covers. Each step is a named kill point (see `turnwal_journal::killpoint`).
//!
//! 1. write `snapshot-<through_seq>.jsonl.tmp`;
//! 2. fdatasync it;
//! 3. read it back and verify it: trailer, count, session, `through_seq`, and that it folds to
//!    the same number of messages as the log it replaces (a snapshot that would shrink the
//!    session is refused, and the tmp file removed: nothing on disk changes);
//! 4. rename it to `snapshot-<through_seq>.jsonl`, fsync the directory;
//! 5. only then ([`remove_covered`]) delete the segments wholly at or below `through_seq` and
//!    older snapshots, and fsync the directory.
//!
//! A crash before step 4's rename leaves only a tmp file, which readers ignore and a writer
//! removes: the old state. A crash after it leaves the new snapshot plus covered files, which
//! readers skip and a writer deletes: the new state. Either way the session is the same.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use turnwal_journal::event::Event;
use turnwal_journal::killpoint::kill_point;
use turnwal_journal::segment;
use turnwal_journal::storage::{OpenMode, ReadMode, Storage};

use crate::session::SessionFold;
use crate::snapshot::{self, SnapshotWriter};

/// Bytes handed to the file per write while a snapshot is written.
const WRITE_CHUNK: usize = 1 << 20;

/// Why a compaction step failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CompactError {
    /// A file operation failed.
    Io {
        /// The operation.
        op: &'static str,
        /// The file (name only).
        file: String,
        /// The OS error.
        source: io::Error,
    },
    /// The snapshot did not read back as written.
    Verify {
        /// The file (name only).
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The snapshot holds fewer messages than the log it would replace: refused, not installed.
    Shrink {
        /// The file (name only).
        file: String,
        /// Messages the snapshot folds to.
        snapshot_messages: usize,
        /// Messages in the log it would replace.
        log_messages: usize,
    },
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::Io { op, file, source } => write!(f, "{op} {file}: {source}"),
            CompactError::Verify { file, reason } => {
                write!(f, "snapshot {file} failed verification: {reason}")
            }
            CompactError::Shrink {
                file,
                snapshot_messages,
                log_messages,
            } => write!(
                f,
                "refused to install snapshot {file}: it holds {snapshot_messages} messages, \
                 the log it would replace holds {log_messages}; nothing was changed"
            ),
        }
    }
}

impl std::error::Error for CompactError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CompactError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err<'a>(op: &'static str, file: &'a str) -> impl FnOnce(io::Error) -> CompactError + 'a {
    move |source| CompactError::Io {
        op,
        file: file.to_string(),
        source,
    }
}

/// What the snapshot must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The journal's session id.
    pub session_id: &'a str,
    /// The last seq the snapshot covers.
    pub through_seq: u64,
    /// Messages in the log it replaces (the live fold's count).
    pub messages: usize,
}

/// An installed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// File name.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Events it holds.
    pub records: u64,
    /// Messages it folds to.
    pub messages: usize,
}

/// Steps 1–4: writes `events` as `snapshot-<through_seq>.jsonl` crash-safely and verifies it
/// before it can be seen. On any failure before the rename the tmp file is removed (best
/// effort; a writer's open removes any left) and nothing else is touched.
pub fn install(
    st: &dyn Storage,
    dir: &Path,
    events: &[(u64, Arc<Event>)],
    created_at_ms: i64,
    expect: &Expect<'_>,
) -> Result<Installed, CompactError> {
    let name = snapshot::snapshot_name(expect.through_seq);
    let tmp_name = snapshot::snapshot_tmp_name(expect.through_seq);
    let tmp = dir.join(&tmp_name);
    if st.exists(&tmp).map_err(io_err("stat", &tmp_name))? {
        st.remove_file(&tmp).map_err(io_err("unlink", &tmp_name))?;
    }
    let result = write_and_verify(st, &tmp, &tmp_name, events, created_at_ms, expect);
    let installed = match result {
        Ok(i) => i,
        Err(e) => {
            let _ = st.remove_file(&tmp);
            return Err(e);
        }
    };
    kill_point("compact:verified");
    st.rename(&tmp, &dir.join(&name))
        .map_err(io_err("rename", &tmp_name))?;
    kill_point("compact:renamed");
    st.sync_dir(dir).map_err(io_err("fsync dir", "."))?;
    kill_point("compact:dir-synced");
    Ok(Installed {
        file: name,
        ..installed
    })
}

fn write_and_verify(
    st: &dyn Storage,
    tmp: &Path,
    tmp_name: &str,
    events: &[(u64, Arc<Event>)],
    created_at_ms: i64,
    expect: &Expect<'_>,
) -> Result<Installed, CompactError> {
    let file = st
        .open(tmp, OpenMode::CreateNew)
        .map_err(io_err("create", tmp_name))?;
    let mut at = 0u64;
    let mut w = SnapshotWriter::new(
        |b: &[u8]| {
            file.write_at(at, b)?;
            at += b.len() as u64;
            Ok(())
        },
        expect.session_id,
        expect.through_seq,
        created_at_ms,
        WRITE_CHUNK,
    );
    for (seq, e) in events {
        w.event(*seq, e).map_err(io_err("write", tmp_name))?;
    }
    let (bytes, records) = w.finish().map_err(io_err("write", tmp_name))?;
    kill_point("compact:tmp-written");
    file.sync_data().map_err(io_err("fdatasync", tmp_name))?;
    kill_point("compact:tmp-synced");
    drop(file);

    // Read back what the file system returns, not what was meant to be written.
    let verify = |reason: String| CompactError::Verify {
        file: tmp_name.to_string(),
        reason,
    };
    let back = st
        .open(tmp, OpenMode::ReadOnly)
        .and_then(|f| f.read_all(ReadMode::Copy))
        .map_err(io_err("read back", tmp_name))?;
    let snap = snapshot::read_shared(&Arc::new(back)).map_err(|e| verify(e.to_string()))?;
    if snap.bytes != bytes || snap.events.len() as u64 != records {
        return Err(verify(format!(
            "wrote {bytes} bytes and {records} records, read back {} and {}",
            snap.bytes,
            snap.events.len()
        )));
    }
    if snap.session_id != expect.session_id || snap.through_seq != expect.through_seq {
        return Err(verify(format!(
            "reads back as session {} through seq {}, expected {} through {}",
            snap.session_id, snap.through_seq, expect.session_id, expect.through_seq
        )));
    }
    let fold = SessionFold::from_retained(snap.events, snap.through_seq)
        .map_err(|e| verify(e.to_string()))?;
    let messages = fold.message_count();
    if messages < expect.messages {
        return Err(CompactError::Shrink {
            file: tmp_name.to_string(),
            snapshot_messages: messages,
            log_messages: expect.messages,
        });
    }
    if messages != expect.messages {
        return Err(verify(format!(
            "folds to {messages} messages, the log holds {}",
            expect.messages
        )));
    }
    Ok(Installed {
        file: tmp_name.to_string(),
        bytes,
        records,
        messages,
    })
}

/// Files step 5 removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Segment files.
    pub segments: Vec<String>,
    /// Older snapshot files.
    pub snapshots: Vec<String>,
}

/// Step 5: deletes segments with an id below `first_live_segment` (all wholly at or below
/// `through_seq`) and snapshots older than `through_seq`, then fsyncs the directory. Only call
/// it once `snapshot-<through_seq>.jsonl` is installed. `stage` names the kill points:
/// `compact` (step 5 of a compaction) or `open` (a writer finishing a crashed one).
pub fn remove_covered(
    st: &dyn Storage,
    dir: &Path,
    through_seq: u64,
    first_live_segment: u64,
    stage: Stage,
) -> Result<Removed, CompactError> {
    let names = st.list(dir).map_err(io_err("list", "."))?;
    let mut doomed: Vec<(bool, u64, String)> = names
        .into_iter()
        .filter_map(|n| {
            if let Some(id) = segment::parse_segment_name(&n) {
                return (id < first_live_segment).then_some((true, id, n));
            }
            let s = snapshot::parse_snapshot_name(&n)?;
            (s < through_seq).then_some((false, s, n))
        })
        .collect();
    let mut removed = Removed::default();
    if doomed.is_empty() {
        return Ok(removed);
    }
    // Any order is safe once the new snapshot is installed: a crash midway leaves covered
    // files that readers skip and the next writer deletes. Older snapshots go first.
    doomed.sort();
    let (deleted_one, done) = match stage {
        Stage::Compact => ("compact:deleted-one", "compact:done"),
        Stage::Open => ("open:deleted-one", "open:done"),
    };
    for (is_segment, _, name) in doomed {
        st.remove_file(&dir.join(&name))
            .map_err(io_err("unlink", &name))?;
        kill_point(deleted_one);
        if is_segment {
            removed.segments.push(name);
        } else {
            removed.snapshots.push(name);
        }
    }
    st.sync_dir(dir).map_err(io_err("fsync dir", "."))?;
    kill_point(done);
    Ok(removed)
}

/// Who removes covered files (names the kill points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Step 5 of a compaction.
    Compact,
    /// A writer's open, finishing a compaction that crashed after its rename.
    Open,
}
