//! The write cases (1–4, 7) and the machinery every case shares: each case builds its systems
//! over the same pre-generated lines and runs them alternately, round after round.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::params;
use turnwal::{Journal, SyncPolicy};

use crate::Res;
use crate::report::{CaseResult, Entry};
use crate::systems::*;
use crate::workload;

/// The workload seed ("turnwal" in ASCII).
pub const SEED: u64 = 0x0074_7572_6e77_616c;

/// How much each case does: full, `--quick`, or the smoke run under `cargo test`.
pub struct Sizes {
    pub durable_ops: usize,
    pub per_thread_4: usize,
    pub per_thread_16: usize,
    pub per_session_64: usize,
    pub stream_events: usize,
    pub replay_messages: u64,
    pub flat_large: u64,
    pub flat_appends: usize,
    pub rewrite_large: u64,
    pub rewrite_appends_small: usize,
    pub rewrite_appends_large: usize,
    pub prewrite_bytes: u64,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        durable_ops: 3_000,
        per_thread_4: 1_000,
        per_thread_16: 400,
        per_session_64: 40,
        stream_events: 200_000,
        replay_messages: 200_000,
        flat_large: 100_000,
        flat_appends: 2_000,
        rewrite_large: 5_000,
        rewrite_appends_small: 300,
        rewrite_appends_large: 50,
        prewrite_bytes: 64 << 20,
    };
    pub const QUICK: Sizes = Sizes {
        durable_ops: 300,
        per_thread_4: 75,
        per_thread_16: 20,
        per_session_64: 2,
        stream_events: 20_000,
        replay_messages: 20_000,
        flat_large: 20_000,
        flat_appends: 300,
        rewrite_large: 1_000,
        rewrite_appends_small: 100,
        rewrite_appends_large: 30,
        prewrite_bytes: 8 << 20,
    };
    pub const SMOKE: Sizes = Sizes {
        durable_ops: 30,
        per_thread_4: 5,
        per_thread_16: 2,
        per_session_64: 2,
        stream_events: 2_000,
        replay_messages: 1_000,
        flat_large: 1_000,
        flat_appends: 20,
        rewrite_large: 200,
        rewrite_appends_small: 10,
        rewrite_appends_large: 5,
        prewrite_bytes: 1 << 20,
    };
}

/// The flat-append messages counts, for labels.
pub const FLAT_SMALL: u64 = 100;

pub struct Ctx {
    pub rounds: usize,
    pub sizes: Sizes,
    /// Where every fresh directory is made.
    pub scratch: PathBuf,
}

impl Ctx {
    pub fn tempdir(&self, prefix: &str) -> Res<tempfile::TempDir> {
        Ok(tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.scratch)?)
    }
}

/// One timed run of a system in the fresh directory it is given.
type RunFn<'a> = dyn FnMut(&Path) -> Res<Round> + 'a;

/// A system of a case: its name, notes, and one timed run in a fresh directory.
pub struct Sys<'a> {
    name: String,
    notes: String,
    run: Box<RunFn<'a>>,
}

pub fn sys<'a>(name: &str, notes: &str, run: impl FnMut(&Path) -> Res<Round> + 'a) -> Sys<'a> {
    Sys {
        name: name.to_owned(),
        notes: notes.to_owned(),
        run: Box::new(run),
    }
}

/// Runs every system once per round, the order rotated each round (no system always goes
/// first, after the same neighbour), each in a fresh directory removed after it. With
/// `warmup`, each system runs once untimed first (read cases: warm page cache).
pub fn alternate(
    ctx: &Ctx,
    case: &str,
    mut systems: Vec<Sys<'_>>,
    warmup: bool,
) -> Res<Vec<Entry>> {
    let mut entries: Vec<Entry> = systems
        .iter()
        .map(|s| Entry::new(&s.name, &s.notes))
        .collect();
    if warmup {
        for s in &mut systems {
            let dir = ctx.tempdir(case)?;
            (s.run)(dir.path())?;
        }
    }
    let n = systems.len();
    for round in 0..ctx.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let dir = ctx.tempdir(case)?;
            settle();
            let r = (systems[i].run)(dir.path())?;
            eprintln!(
                "  {case} round {}/{}: {:<55} {:>12.0}/s",
                round + 1,
                ctx.rounds,
                systems[i].name,
                r.per_sec()
            );
            entries[i].rounds.push(r.per_sec());
            entries[i].latencies_ns.extend(r.latencies_ns);
        }
    }
    for e in &mut entries {
        e.latencies_ns.sort_unstable();
    }
    Ok(entries)
}

/// Flushes every dirty page on the machine (the previous run's removal, anything else
/// writing) so that it is not written back inside the next timed window. Best effort.
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
}

pub fn case(
    case: &'static str,
    title: String,
    unit: &'static str,
    reference: &str,
    entries: Vec<Entry>,
) -> CaseResult {
    CaseResult {
        case,
        title,
        unit,
        reference: reference.to_owned(),
        entries,
    }
}

const PARSES: &str = "append_json: parses + validates each envelope";
const PRE_PARSED: &str = "append(&Event): envelopes parsed before the clock starts; the engine's \
                          own path, for reading the cost of ingest (the targets use append_json)";

/// The lines as events, parsed once, outside any timing.
fn events_of(lines: &[String]) -> Res<Vec<turnwal::Event>> {
    Ok(lines
        .iter()
        .map(|l| turnwal::Event::from_envelope(l, 0))
        .collect::<Result<_, _>>()?)
}

/// 1. One writer; each append durable before it returns.
pub fn durable_1_writer(ctx: &Ctx) -> Res<CaseResult> {
    let lines = workload::chat_lines(SEED, "s", ctx.sizes.durable_ops);
    let nl = with_newlines(&lines);
    let prewrite = ctx.sizes.prewrite_bytes;
    let events = events_of(&lines)?;
    let systems = vec![
        sys(TURNWAL_ALWAYS, PARSES, |dir| {
            let (j, _) = Journal::open(dir, turnwal_opts(SyncPolicy::Always))?;
            let r = timed(&lines, |l| Ok(j.append_json(l).map(drop)?))?;
            j.close()?;
            Ok(r)
        }),
        sys(TURNWAL_ALWAYS_EVENTS, PRE_PARSED, |dir| {
            let (j, _) = Journal::open(dir, turnwal_opts(SyncPolicy::Always))?;
            let r = timed(&events, |e| Ok(j.append(e).map(drop)?))?;
            j.close()?;
            Ok(r)
        }),
        sys(OKAYWAL, "one entry, one chunk, commit", |dir| {
            let wal = WriteAheadLog::recover(dir, LogVoid)?;
            let r = timed(&lines, |l| okaywal_append(&wal, l))?;
            wal.shutdown()?;
            Ok(r)
        }),
        sys(SQLITE_FULL, "autocommit INSERT per event", |dir| {
            let conn = sqlite_open(&dir.join("events.db"), "FULL")?;
            sqlite_appends(&conn, &lines, true)
        }),
        sys(
            SQLITE_NORMAL,
            "not durable per commit: WAL synced only at checkpoints",
            |dir| {
                let conn = sqlite_open(&dir.join("events.db"), "NORMAL")?;
                sqlite_appends(&conn, &lines, true)
            },
        ),
        sys(JSONL_FSYNC, "O_APPEND, write + fsync per line", |dir| {
            jsonl_fsync_appends(dir, &nl)
        }),
        sys(
            RAW_CEILING,
            &format!("{} MiB zeros written + fsynced first", prewrite >> 20),
            |dir| raw_ceiling(dir, &nl, prewrite),
        ),
    ];
    let entries = alternate(ctx, "durable_1_writer", systems, false)?;
    Ok(case(
        "durable_1_writer",
        format!(
            "one writer, each append durable before it returns ({} chat events per round: {})",
            lines.len(),
            workload::describe(&lines)
        ),
        "ops/s",
        RAW_CEILING,
        entries,
    ))
}

/// 2. N threads sharing one log; each append durable before it returns.
pub fn durable_threads(ctx: &Ctx, threads: usize) -> Res<CaseResult> {
    let per = if threads <= 4 {
        ctx.sizes.per_thread_4
    } else {
        ctx.sizes.per_thread_16
    };
    let lines = workload::chat_lines(SEED ^ threads as u64, "s", per * threads);
    let chunks: Vec<&[String]> = lines.chunks(per).collect();
    let systems = vec![
        sys(TURNWAL_ALWAYS, PARSES, |dir| {
            let (j, _) = Journal::open(dir, turnwal_opts(SyncPolicy::Always))?;
            let (r, _) = threaded(vec![&j; threads], &chunks, |j, l| {
                Ok(j.append_json(l).map(drop)?)
            })?;
            j.close()?;
            Ok(r)
        }),
        sys(OKAYWAL, "one entry + commit per append", |dir| {
            let wal = WriteAheadLog::recover(dir, LogVoid)?;
            let (r, clones) = threaded(vec![wal.clone(); threads], &chunks, |w, l| {
                okaywal_append(w, l)
            })?;
            drop(clones);
            wal.shutdown()?;
            Ok(r)
        }),
    ];
    let name = if threads <= 4 {
        "durable_4_threads"
    } else {
        "durable_16_threads"
    };
    let entries = alternate(ctx, name, systems, false)?;
    Ok(case(
        name,
        format!(
            "{threads} threads share one log, each append durable before it returns \
             ({per} appends per thread per round; aggregate ops/s, per-op latency)"
        ),
        "ops/s",
        OKAYWAL,
        entries,
    ))
}

/// 3. 64 sessions in one process: a journal each, against one SQLite database holding them.
pub fn sessions_64(ctx: &Ctx) -> Res<CaseResult> {
    const SESSIONS: usize = 64;
    let per = ctx.sizes.per_session_64;
    let sessions: Vec<Vec<String>> = (0..SESSIONS)
        .map(|i| workload::chat_lines(SEED + 64 + i as u64, &format!("s{i}"), per))
        .collect();
    let chunks: Vec<&[String]> = sessions.iter().map(Vec::as_slice).collect();
    let systems = vec![
        sys(
            TURNWAL_ALWAYS,
            "a journal directory per session, a thread each",
            |dir| {
                let mut journals = Vec::with_capacity(SESSIONS);
                for i in 0..SESSIONS {
                    let (j, _) =
                        Journal::open(dir.join(format!("s{i}")), turnwal_opts(SyncPolicy::Always))?;
                    journals.push(j);
                }
                let (r, journals) =
                    threaded(journals, &chunks, |j, l| Ok(j.append_json(l).map(drop)?))?;
                for j in journals {
                    j.close()?;
                }
                Ok(r)
            },
        ),
        sys(
            SQLITE_FULL,
            "one database, a connection per thread, busy_timeout 600 s, autocommit INSERT",
            |dir| {
                let db = dir.join("events.db");
                let mut conns = Vec::with_capacity(SESSIONS);
                for i in 0..SESSIONS {
                    conns.push((sqlite_open(&db, "FULL")?, format!("s{i}"), 0i64));
                }
                let (r, conns) = threaded(conns, &chunks, |(conn, session, seq), l| {
                    *seq += 1;
                    conn.prepare_cached(INSERT)?
                        .execute(params![session.as_str(), *seq, l])?;
                    Ok(())
                })?;
                drop(conns);
                Ok(r)
            },
        ),
        sys(
            SQLITE_FULL_SHARED,
            "one database, one connection shared behind a mutex (no busy-wait sleeps)",
            |dir| {
                let conn = std::sync::Mutex::new(sqlite_open(&dir.join("events.db"), "FULL")?);
                let states = (0..SESSIONS)
                    .map(|i| (&conn, format!("s{i}"), 0i64))
                    .collect();
                let (r, _) = threaded(states, &chunks, |(conn, session, seq), l| {
                    *seq += 1;
                    let conn = conn.lock().map_err(|_| "SQLite mutex poisoned")?;
                    conn.prepare_cached(INSERT)?
                        .execute(params![session.as_str(), *seq, l])?;
                    Ok(())
                })?;
                Ok(r)
            },
        ),
    ];
    let entries = alternate(ctx, "sessions_64", systems, false)?;
    Ok(case(
        "sessions_64",
        format!(
            "{SESSIONS} sessions in one process, {SESSIONS} threads, each append durable \
             ({per} appends per session per round; aggregate ops/s)"
        ),
        "ops/s",
        SQLITE_FULL,
        entries,
    ))
}

/// 4. One session streaming as fast as it can under a background-sync policy.
pub fn batch_stream(ctx: &Ctx) -> Res<CaseResult> {
    let lines = workload::stream_lines(SEED + 4, ctx.sizes.stream_events);
    let events = events_of(&lines)?;
    let systems = vec![
        sys(TURNWAL_BATCH_EVENTS, PRE_PARSED, |dir| {
            let (j, _) = Journal::open(dir, turnwal_opts(SyncPolicy::default()))?;
            let start = Instant::now();
            let mut r = timed_total(&events, |e| Ok(j.append(e).map(drop)?))?;
            j.sync()?;
            r.elapsed = start.elapsed();
            j.close()?;
            Ok(r)
        }),
        sys(
            TURNWAL_BATCH,
            "append_json per event, sync() at the end (timed); default compaction policy",
            |dir| {
                let (j, _) = Journal::open(dir, turnwal_opts(SyncPolicy::default()))?;
                let start = Instant::now();
                let mut r = timed_total(&lines, |l| Ok(j.append_json(l).map(drop)?))?;
                j.sync()?;
                r.elapsed = start.elapsed();
                j.close()?;
                Ok(r)
            },
        ),
        sys(SQLITE_NORMAL, "autocommit INSERT per event", |dir| {
            let conn = sqlite_open(&dir.join("events.db"), "NORMAL")?;
            sqlite_appends(&conn, &lines, false)
        }),
    ];
    let entries = alternate(ctx, "batch_stream", systems, false)?;
    Ok(case(
        "batch_stream",
        format!(
            "one session streaming deltas, messages and usage as fast as possible ({})",
            workload::describe(&lines)
        ),
        "events/s",
        SQLITE_NORMAL,
        entries,
    ))
}

pub fn flat_name(system: &str, messages: u64) -> String {
    format!("{system} @ {messages} messages")
}

pub const REWRITE: &str = "atomic whole-file rewrite";

const FLAT_TURNWAL: &str =
    "built with Never, reopened with Always; manual compaction (none in the window)";
const FLAT_REWRITE: &str = "tmp + fsync + rename + dir fsync per append";

/// A journal holding `prefix` (built untimed), then `tail` appended under `Always`, each timed.
fn turnwal_flat<'a>(
    prefix: &'a [String],
    tail: &'a [String],
) -> impl FnMut(&Path) -> Res<Round> + 'a {
    move |dir| {
        build_journal(dir, prefix)?;
        let (j, _) = Journal::open(dir, turnwal_manual(SyncPolicy::Always))?;
        let r = timed(tail, |l| Ok(j.append_json(l).map(drop)?))?;
        j.close()?;
        Ok(r)
    }
}

/// A session file holding `prefix` (written untimed), then `tail` appended by rewrites.
fn rewrite_flat<'a>(
    prefix: &'a [String],
    tail: &'a [String],
) -> impl FnMut(&Path) -> Res<Round> + 'a {
    move |dir| {
        let mut rw = Rewrite::new(dir, prefix)?;
        timed(tail, |l| rw.append(l))
    }
}

/// 7. Append latency against session length.
pub fn append_flat(ctx: &Ctx) -> Res<CaseResult> {
    let s = &ctx.sizes;
    // One chat; the shorter sessions are its prefixes (the generator is deterministic).
    let large = workload::chat_messages(SEED + 7, "s", s.flat_large);
    let small = &large[..workload::chat_messages(SEED + 7, "s", FLAT_SMALL).len()];
    let medium = &large[..workload::chat_messages(SEED + 7, "s", s.rewrite_large).len()];
    // The same appended lines for every system: a continuation with its own ids.
    let tail = workload::chat_lines(SEED + 77, "tail", s.flat_appends);
    let rw_small = &tail[..s.rewrite_appends_small.min(tail.len())];
    let rw_large = &tail[..s.rewrite_appends_large.min(tail.len())];
    let reference = flat_name(TURNWAL_ALWAYS, FLAT_SMALL);
    let systems = vec![
        sys(&reference, FLAT_TURNWAL, turnwal_flat(small, &tail)),
        sys(
            &flat_name(TURNWAL_ALWAYS, s.flat_large),
            FLAT_TURNWAL,
            turnwal_flat(&large, &tail),
        ),
        sys(
            &flat_name(REWRITE, FLAT_SMALL),
            FLAT_REWRITE,
            rewrite_flat(small, rw_small),
        ),
        sys(
            &flat_name(REWRITE, s.rewrite_large),
            FLAT_REWRITE,
            rewrite_flat(medium, rw_large),
        ),
    ];
    let entries = alternate(ctx, "append_flat", systems, false)?;
    Ok(case(
        "append_flat",
        format!(
            "durable append latency against session length ({} appends to turnwal, {} / {} \
             rewrites per round; p50 is the figure)",
            tail.len(),
            rw_small.len(),
            rw_large.len()
        ),
        "appends/s",
        &reference,
        entries,
    ))
}
