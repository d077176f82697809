//! The read cases (5, 6, 8): one session built once in every format, read warm.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::params;
use turnwal::{Journal, Options, SyncPolicy};

use crate::Res;
use crate::alloc;
use crate::cases::{Ctx, SEED, alternate, case, sys};
use crate::report::{CaseResult, Entry, Memory, median};
use crate::systems::*;
use crate::workload::Chat;

/// The session of the replay cases, in each format; built once, not timed.
pub struct Fixture {
    dir: tempfile::TempDir,
    pub turnwal: PathBuf,
    pub jsonl: PathBuf,
    pub sqlite: PathBuf,
    pub messages: usize,
    pub lines: usize,
    /// Sum of the envelope line lengths.
    pub payload_bytes: u64,
    snapshot: Option<PathBuf>,
}

impl Fixture {
    pub fn build(ctx: &Ctx) -> Res<Fixture> {
        let dir = ctx.tempdir("replay-fixture")?;
        let turnwal = dir.path().join("turnwal");
        let jsonl = dir.path().join("session.jsonl");
        let sqlite = dir.path().join("events.db");
        let started = Instant::now();
        let mut chat = Chat::new(SEED + 5, "s");
        let mut lines = Vec::new();
        let (mut count, mut payload_bytes) = (0usize, 0u64);
        let conn = sqlite_open(&sqlite, "NORMAL")?;
        conn.execute_batch("BEGIN")?;
        let mut insert = conn.prepare(INSERT)?;
        let (j, _) = Journal::open(&turnwal, turnwal_manual(SyncPolicy::Never))?;
        // In batches, so the whole session is never held as strings here.
        while chat.messages() < ctx.sizes.replay_messages || !chat.next_is_message() {
            let line = chat.next_line();
            count += 1;
            payload_bytes += line.len() as u64;
            j.append_json(&line)?;
            insert.execute(params!["s", count as i64, line])?;
            lines.push(line);
            if lines.len() == 10_000 {
                append_jsonl(&jsonl, &lines)?;
                lines.clear();
            }
        }
        append_jsonl(&jsonl, &lines)?;
        j.close()?;
        drop(insert);
        conn.execute_batch("COMMIT")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        std::fs::File::open(&jsonl)?.sync_all()?;
        eprintln!(
            "  replay fixture: {} messages, {count} events, {:.1} MB payload, built in {:.1} s",
            chat.messages(),
            payload_bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        Ok(Fixture {
            dir,
            turnwal,
            jsonl,
            sqlite,
            messages: chat.messages() as usize,
            lines: count,
            payload_bytes,
            snapshot: None,
        })
    }

    /// A copy of the journal compacted into one JSONL snapshot (made on first use).
    fn snapshot(&mut self) -> Res<PathBuf> {
        if let Some(p) = &self.snapshot {
            return Ok(p.clone());
        }
        let to = self.dir.path().join("turnwal-snapshot");
        copy_dir(&self.turnwal, &to)?;
        let (j, _) = Journal::open(&to, turnwal_manual(SyncPolicy::Never))?;
        let started = Instant::now();
        let report = j.compact()?;
        j.close()?;
        eprintln!(
            "  snapshot fixture: compacted in {:.1} s ({report:?})",
            started.elapsed().as_secs_f64()
        );
        self.snapshot = Some(to.clone());
        Ok(to)
    }
}

/// Times `read`, checks that it read `expect` records; the rate counts `messages`. `read`
/// returns what it built with the count, and that is dropped only after the clock stops, so
/// every system's teardown stays outside the timing.
fn read_round<T>(
    messages: usize,
    expect: usize,
    read: impl FnOnce() -> Res<(T, usize)>,
) -> Res<Round> {
    let start = Instant::now();
    let (kept, got) = read()?;
    let elapsed = start.elapsed();
    drop(black_box(kept));
    if got != expect {
        return Err(format!("read {got} records, expected {expect}").into());
    }
    Ok(Round {
        ops: messages,
        elapsed,
        latencies_ns: Vec::new(),
    })
}

/// Opens read-only (the session is materialised); returns it with its message count.
fn turnwal_read(dir: &Path) -> Res<(turnwal::ReadOnly, usize)> {
    let ro = Journal::open_read_only(dir, &Options::default())?;
    let n = ro.session.messages.len();
    Ok((ro, n))
}

/// The values `read` parsed, with their count.
fn values_read(
    read: impl FnOnce() -> Res<Vec<serde_json::Value>>,
) -> Res<(Vec<serde_json::Value>, usize)> {
    let v = read()?;
    let n = v.len();
    Ok((v, n))
}

/// Adds "N ms median" to each entry's notes (read cases).
fn note_ms(entries: &mut [Entry], messages: usize) {
    for e in entries {
        let ms = messages as f64 / e.median() * 1e3;
        e.notes = format!("{ms:.0} ms median; {}", e.notes);
    }
}

/// 5. Warm replay of the whole session.
pub fn replay(ctx: &Ctx, fx: &Fixture) -> Res<CaseResult> {
    let (m, lines) = (fx.messages, fx.lines);
    let systems = vec![
        sys(
            TURNWAL_READ,
            "segments scanned + CRC-checked, session materialised",
            |_| read_round(m, m, || turnwal_read(&fx.turnwal)),
        ),
        sys(
            JSONL_SERDE,
            "read file, parse each line to Value, collect",
            |_| read_round(m, lines, || values_read(|| jsonl_replay(&fx.jsonl))),
        ),
        sys(
            SQLITE_SELECT,
            "SELECT ... ORDER BY rowid, parse each line",
            |_| read_round(m, lines, || values_read(|| sqlite_replay(&fx.sqlite))),
        ),
    ];
    let mut entries = alternate(ctx, "replay_200k", systems, true)?;
    note_ms(&mut entries, m);
    Ok(case(
        "replay_200k",
        format!(
            "warm read of a session of {m} messages + {} usage events ({:.0} MB of envelopes)",
            lines - m,
            fx.payload_bytes as f64 / 1e6
        ),
        "messages/s",
        JSONL_SERDE,
        entries,
    ))
}

/// 6. Warm open of the same session compacted into one JSONL snapshot.
pub fn open_snapshot(ctx: &Ctx, fx: &mut Fixture) -> Res<CaseResult> {
    let snap = fx.snapshot()?;
    let (m, lines, jsonl) = (fx.messages, fx.lines, fx.jsonl.clone());
    let systems = vec![
        sys(
            TURNWAL_READ,
            "snapshot + checksum trailer verified, session folded",
            |_| read_round(m, m, || turnwal_read(&snap)),
        ),
        sys(
            JSONL_SERDE,
            "read file, parse each line to Value, collect",
            |_| read_round(m, lines, || values_read(|| jsonl_replay(&jsonl))),
        ),
    ];
    let mut entries = alternate(ctx, "open_snapshot_200k", systems, true)?;
    note_ms(&mut entries, m);
    Ok(case(
        "open_snapshot_200k",
        format!("warm open of the {m}-message session after compact() (one JSONL snapshot)"),
        "messages/s",
        JSONL_SERDE,
        entries,
    ))
}

/// 8. Peak memory of a replay, against the session's payload.
pub fn replay_memory(ctx: &Ctx, fx: &Fixture) -> Res<CaseResult> {
    let m = fx.messages;
    let mut entries = vec![
        Entry::new(TURNWAL_READ, "peak heap during the call, result alive"),
        Entry::new(JSONL_SERDE, "for contrast: file text + Values"),
    ];
    let mut heap: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut rss: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    // RSS growth while the result is alive: anonymous, file-backed (mapped segments).
    let mut split: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    // Warm the page cache for both, untimed.
    drop(Journal::open_read_only(&fx.turnwal, &Options::default())?);
    drop(jsonl_replay(&fx.jsonl)?);
    for round in 0..ctx.rounds {
        for k in 0..2 {
            let i = (k + round) % 2;
            let rss_before = alloc::reset_peak_rss();
            let split_before = alloc::rss_split();
            alloc::start();
            let start = Instant::now();
            let (got, expect, kept): (usize, usize, Box<dyn std::any::Any>) = if i == 0 {
                let ro = Journal::open_read_only(&fx.turnwal, &Options::default())?;
                (ro.session.messages.len(), m, Box::new(ro))
            } else {
                let v = jsonl_replay(&fx.jsonl)?;
                (v.len(), fx.lines, Box::new(v))
            };
            let elapsed = start.elapsed();
            let peak_heap = alloc::stop();
            let peak_rss = alloc::peak_rss();
            if let (Some((a0, f0)), Some((a1, f1))) = (split_before, alloc::rss_split()) {
                split[i].push((a1 as f64 - a0 as f64, f1 as f64 - f0 as f64));
            }
            drop(black_box(kept));
            if got != expect {
                return Err(format!("read {got} records, expected {expect}").into());
            }
            heap[i].push(peak_heap as f64);
            if let (Some(before), Some(peak)) = (rss_before, peak_rss) {
                rss[i].push(peak.saturating_sub(before) as f64);
            }
            entries[i].rounds.push(m as f64 / elapsed.as_secs_f64());
            eprintln!(
                "  replay_memory round {}/{}: {:<30} peak heap {:.1} MB",
                round + 1,
                ctx.rounds,
                entries[i].system,
                peak_heap as f64 / 1e6
            );
        }
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if !split[i].is_empty() {
            let anon: Vec<f64> = split[i].iter().map(|s| s.0).collect();
            let file: Vec<f64> = split[i].iter().map(|s| s.1).collect();
            e.notes += &format!(
                "; RSS after the call: anonymous {:+.0} MB, file-backed (mapped) {:+.0} MB",
                median(&anon) / 1e6,
                median(&file) / 1e6
            );
        }
        e.memory = Some(Memory {
            payload_bytes: fx.payload_bytes,
            peak_heap_bytes: median(&heap[i]) as u64,
            peak_rss_delta_bytes: (!rss[i].is_empty()).then(|| median(&rss[i]) as u64),
        });
    }
    Ok(case(
        "replay_memory",
        format!(
            "peak memory of a read of the {m}-message session (log, not snapshot), against its \
             payload (sum of envelope line lengths); RSS from VmHWM after clear_refs"
        ),
        "messages/s",
        JSONL_SERDE,
        entries,
    ))
}
