//! The systems and the timing loops: turnwal through its public API, and each peer doing what
//! its users do, with the same durability meaning.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};
use turnwal::{CompactionPolicy, Journal, Options, SyncPolicy};

use crate::Res;

pub const TURNWAL_ALWAYS: &str = "turnwal Always";
pub const TURNWAL_BATCH: &str = "turnwal Batch (5 ms, default)";
/// The same engine path without the JSON ingest: events parsed before the clock starts.
pub const TURNWAL_ALWAYS_EVENTS: &str = "turnwal Always, pre-parsed events";
pub const TURNWAL_BATCH_EVENTS: &str = "turnwal Batch, pre-parsed events";
pub const TURNWAL_READ: &str = "turnwal open_read_only";
pub const OKAYWAL: &str = "okaywal 0.3 (commit per append)";
pub const SQLITE_FULL: &str = "SQLite WAL synchronous=FULL";
pub const SQLITE_FULL_SHARED: &str = "SQLite WAL synchronous=FULL, one shared connection";
pub const SQLITE_NORMAL: &str = "SQLite WAL synchronous=NORMAL (not durable per commit)";
pub const SQLITE_SELECT: &str = "SQLite SELECT line + serde_json";
pub const JSONL_FSYNC: &str = "naive JSONL (write + fsync per line)";
pub const JSONL_SERDE: &str = "JSONL + serde_json";
pub const RAW_CEILING: &str = "raw ceiling (pwrite pre-written + fdatasync)";

/// One system's run in one round.
pub struct Round {
    pub ops: usize,
    pub elapsed: Duration,
    /// Per-op latencies in ns; empty where the case times only the whole run.
    pub latencies_ns: Vec<u64>,
}

impl Round {
    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

fn ns(since: Instant) -> u64 {
    since.elapsed().as_nanos() as u64
}

/// Times `op` on each item in turn, and each op on its own.
pub fn timed<T>(items: &[T], mut op: impl FnMut(&T) -> Res<()>) -> Res<Round> {
    let mut latencies_ns = Vec::with_capacity(items.len());
    let start = Instant::now();
    for item in items {
        let t = Instant::now();
        op(item)?;
        latencies_ns.push(ns(t));
    }
    Ok(Round {
        ops: items.len(),
        elapsed: start.elapsed(),
        latencies_ns,
    })
}

/// Times the whole loop only (per-op clocks would cost a visible share at ~1 µs per op).
pub fn timed_total<T>(items: &[T], mut op: impl FnMut(&T) -> Res<()>) -> Res<Round> {
    let start = Instant::now();
    for item in items {
        op(item)?;
    }
    Ok(Round {
        ops: items.len(),
        elapsed: start.elapsed(),
        latencies_ns: Vec::new(),
    })
}

/// One thread per state, each appending its chunk, all released at once by a barrier; the
/// aggregate rate is every op over the wall time from release to the last thread's end. The
/// states come back to the caller so that closing them (a SQLite checkpoint on close, say) is
/// not timed.
pub fn threaded<T: Send>(
    states: Vec<T>,
    chunks: &[&[String]],
    op: impl Fn(&mut T, &str) -> Res<()> + Sync,
) -> Res<(Round, Vec<T>)> {
    let barrier = Barrier::new(states.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = states
            .into_iter()
            .zip(chunks)
            .map(|(mut state, chunk)| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || -> Res<(T, Vec<u64>)> {
                    barrier.wait();
                    let mut lat = Vec::with_capacity(chunk.len());
                    for line in *chunk {
                        let t = Instant::now();
                        op(&mut state, line)?;
                        lat.push(ns(t));
                    }
                    Ok((state, lat))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let elapsed = start.elapsed();
        let (mut states, mut latencies_ns) = (Vec::new(), Vec::new());
        for j in joined {
            let (state, lat) = j.map_err(|_| "a benchmark thread panicked")??;
            states.push(state);
            latencies_ns.extend(lat);
        }
        let ops = latencies_ns.len();
        Ok((
            Round {
                ops,
                elapsed,
                latencies_ns,
            },
            states,
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// turnwal

/// Default options but the sync policy.
pub fn turnwal_opts(sync: SyncPolicy) -> Options {
    Options {
        sync,
        ..Options::default()
    }
}

/// No background compaction: for fixtures, and where a compaction would land inside the
/// timed window of a case about something else.
pub fn turnwal_manual(sync: SyncPolicy) -> Options {
    Options {
        sync,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------------------------
// okaywal

pub use okaywal::{LogVoid, WriteAheadLog};

/// One entry of one chunk, committed (okaywal fsyncs each commit, group-committing
/// concurrent ones).
pub fn okaywal_append(wal: &WriteAheadLog, line: &str) -> Res<()> {
    let mut entry = wal.begin_entry()?;
    entry.write_chunk(line.as_bytes())?;
    entry.commit()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SQLite

pub const INSERT: &str = "INSERT INTO events (session, seq, line) VALUES (?1, ?2, ?3)";

/// A connection in WAL mode with `synchronous` = `sync` ("FULL": each commit fsyncs the WAL;
/// "NORMAL": only checkpoints sync), the events table created if missing.
pub fn sqlite_open(path: &Path, sync: &str) -> Res<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(600))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        return Err(format!("SQLite refused WAL mode: {mode}").into());
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync};
         CREATE TABLE IF NOT EXISTS events (session TEXT, seq INTEGER, line TEXT);"
    ))?;
    Ok(conn)
}

/// One autocommit INSERT per event, `session` "s", seq from 1.
pub fn sqlite_appends(conn: &Connection, lines: &[String], per_op: bool) -> Res<Round> {
    let mut st = conn.prepare(INSERT)?;
    let mut seq = 0i64;
    let op = |line: &String| -> Res<()> {
        seq += 1;
        st.execute(params!["s", seq, line])?;
        Ok(())
    };
    if per_op {
        timed(lines, op)
    } else {
        timed_total(lines, op)
    }
}

/// Reads a session back in seq order (rows of a session are inserted in seq order, so rowid
/// order is seq order; no index needed, as none was paid for on insert) and parses each line.
pub fn sqlite_replay(path: &Path) -> Res<Vec<serde_json::Value>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = conn.prepare("SELECT line FROM events WHERE session = ?1 ORDER BY rowid")?;
    let mut rows = st.query(["s"])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(serde_json::from_str(row.get_ref(0)?.as_str()?)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Files

/// The JSONL + serde_json baseline: read the file, parse each line into a `Value`, collect.
pub fn jsonl_replay(path: &Path) -> Res<Vec<serde_json::Value>> {
    let text = fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        out.push(serde_json::from_str(line)?);
    }
    Ok(out)
}

/// Appends `lines` to a JSONL file (a fixture: not synced here).
pub fn append_jsonl(path: &Path, lines: &[String]) -> Res<()> {
    let mut w = BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?);
    for line in lines {
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// Naive JSONL: an O_APPEND file, one write and one fsync per line (`lines` end in '\n').
pub fn jsonl_fsync_appends(dir: &Path, lines: &[Vec<u8>]) -> Res<Round> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("session.jsonl"))?;
    timed(lines, |line| {
        f.write_all(line)?;
        f.sync_all()?;
        Ok(())
    })
}

/// The hardware ceiling of one durable writer: `prewrite` bytes of zeros written and fsynced
/// before timing, then each record `pwrite`n in sequence over them and `fdatasync`ed. Nothing
/// can do one durable append per sync faster on this disk.
pub fn raw_ceiling(dir: &Path, lines: &[Vec<u8>], prewrite: u64) -> Res<Round> {
    let f = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(dir.join("raw"))?;
    let need: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < prewrite.max(need) {
        f.write_all_at(&zeros, at)?;
        at += zeros.len() as u64;
    }
    f.sync_all()?;
    let mut off = 0u64;
    timed(lines, |line| {
        f.write_all_at(line, off)?;
        f.sync_data()?;
        off += line.len() as u64;
        Ok(())
    })
}

/// What several agent tools do: rewrite the whole session file atomically on every append
/// (write a tmp file, fsync it, rename it over the session, fsync the directory).
pub struct Rewrite<'a> {
    dir: &'a Path,
    content: Vec<u8>,
}

impl<'a> Rewrite<'a> {
    /// A session file holding `prefix`, written the same way (not timed).
    pub fn new(dir: &'a Path, prefix: &[String]) -> Res<Self> {
        let mut r = Rewrite {
            dir,
            content: Vec::new(),
        };
        for line in prefix {
            r.content.extend_from_slice(line.as_bytes());
            r.content.push(b'\n');
        }
        r.save()?;
        Ok(r)
    }

    pub fn append(&mut self, line: &str) -> Res<()> {
        self.content.extend_from_slice(line.as_bytes());
        self.content.push(b'\n');
        self.save()
    }

    fn save(&self) -> Res<()> {
        let tmp = self.dir.join("session.jsonl.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&self.content)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join("session.jsonl"))?;
        File::open(self.dir)?.sync_all()?;
        Ok(())
    }
}

/// Lines with their newline, as a file-appending peer writes them.
pub fn with_newlines(lines: &[String]) -> Vec<Vec<u8>> {
    lines
        .iter()
        .map(|l| {
            let mut b = Vec::with_capacity(l.len() + 1);
            b.extend_from_slice(l.as_bytes());
            b.push(b'\n');
            b
        })
        .collect()
}

/// Copies the files of a journal directory (flat) into `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Opens a journal, appends every line, closes it (all untimed: fixtures).
pub fn build_journal(dir: &Path, lines: &[String]) -> Res<()> {
    let (j, _) = Journal::open(dir, turnwal_manual(SyncPolicy::Never))?;
    for line in lines {
        j.append_json(line)?;
    }
    j.close()?;
    Ok(())
}
