//! Crash-testing your own harness on turnwal's simulated storage.
//!
//! ```text
//! cargo run --example crash_test_harness            # prints "... states checked, 0 violations"
//! cargo run --example crash_test_harness -- --buggy # a harness that promises too early: caught
//! ```
//!
//! Your agent harness makes promises: "this turn is saved" (shown to a user, sent to a queue,
//! a side effect started because the ledger said so). A crash test checks them against every
//! way the machine could die. turnwal's `SimFs` (cargo feature `sim`) is an in-memory file
//! system that knows, for every file and directory, what a power cut would keep. This example:
//!
//! 1. runs the harness once to count its storage operations;
//! 2. for every operation `n`, runs it again on a fresh `SimFs` with the process killed at `n`
//!    (`crash_at`: that operation and every later one fail, like a dead process);
//! 3. cuts the power on what that run left in every way a disk may lose unsynced data
//!    (`Cut::all()`: unsynced writes dropped, kept in part, torn at 512 bytes, garbage, a
//!    zero-filled extension; directory changes dropped or kept in part) with a few seeds
//!    (`power_cut(cut, seed)`);
//! 4. reopens each disk and checks that every event the harness promised is there, that
//!    nothing is there it did not write, and that the session can be resumed and appended to.
//!
//! To test your own harness, replace `harness` below with your code; keep it
//! writing through the `Journal` it is given, and record what it promised in `Promises`.
//!
//! In your own crate: `turnwal = { version = "0.1", features = ["sim"] }` as a
//! dev-dependency, and this loop in a test (`tests/crash.rs`) that asserts 0 violations. Here
//! the feature needs no flag: turnwal's own dev-dependencies turn it on for its examples.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{Value, json};
use turnwal::storage::sim::{Cut, SimFs};
use turnwal::{
    CompactionPolicy, Event, Journal, Options, Status, SyncPolicy, ToolCallState, WriterOptions,
};

/// Where the journal lives on the simulated disk.
const DIR: &str = "/sessions/s1";
/// Seeds per power cut (each picks other pages, sectors, prefixes to keep).
const SEEDS: u64 = 3;

/// What the harness promised before it died.
#[derive(Debug, Default)]
struct Promises {
    /// Every event it tried to append, in order (its seq is its index + 2: seq 1 is the
    /// journal's own `session` event). An append that failed is kept too: it may or may not
    /// have reached the disk, but it is not "invented" if it did.
    attempted: Vec<Event>,
    /// Highest seq whose append returned: survives a process crash (`kill -9`).
    appended: u64,
    /// Highest seq the harness told anyone was durable: survives a power cut.
    durable: u64,
}

/// The harness under test, one turn: a user message, an assistant message calling a tool, the
/// tool's ledger entry made durable before the tool runs, its result, the answer, the turn's
/// end made durable before it is reported. `buggy` promises the end of the turn without
/// waiting for it to be durable (the bug the crash test should catch).
fn harness(journal: &Journal, turn: u64, buggy: bool, p: &mut Promises) -> turnwal::Result<()> {
    // Every append goes through here, so the test knows what was attempted and acknowledged.
    let mut append = |kind: &str, body: Value| -> turnwal::Result<u64> {
        let line = json!({"kind": kind, "turn": turn, "body": body}).to_string();
        let event = Event::from_envelope(&line, 0)?;
        p.attempted.push(event.clone());
        let seq = journal.append(&event)?;
        p.appended = seq;
        Ok(seq)
    };
    append("turn", json!({"event": "started"}))?;
    append(
        "message",
        json!({"id": format!("u{turn}"), "role": "user",
               "parts": [{"type": "text", "text": format!("run step {turn}")}]}),
    )?;
    append(
        "message",
        json!({"id": format!("a{turn}"), "role": "assistant",
               "parts": [{"type": "tool_call", "call_id": format!("c{turn}"), "name": "step",
                          "arguments": "{}"}]}),
    )?;
    // The ledger entry must be durable before the side effect.
    let started = append(
        "tool_run",
        json!({"call_id": format!("c{turn}"), "event": "started"}),
    )?;
    p.durable = journal.wait_durable(started)?;
    // ... the tool runs here ...
    append(
        "message",
        json!({"id": format!("t{turn}"), "role": "tool",
               "parts": [{"type": "tool_result", "call_id": format!("c{turn}"), "content": "ok"}]}),
    )?;
    append(
        "message",
        json!({"id": format!("b{turn}"), "role": "assistant",
               "parts": [{"type": "text", "text": format!("step {turn} done")}]}),
    )?;
    let end = append("turn", json!({"event": "completed"}))?;
    if buggy {
        // BUG: reports the turn as saved while it is only in the (simulated) page cache.
        p.durable = end;
    } else {
        p.durable = journal.wait_durable(end)?;
    }
    Ok(())
}

/// The journal options of the test: the simulated disk, small segments (so that a few turns
/// rotate segments and extend pre-written space, which is where crash bugs hide), and no
/// background work (compaction, batch sync), so the same run does the same operations.
fn options(fs: &SimFs) -> Options {
    Options {
        storage: Arc::new(fs.clone()),
        sync: SyncPolicy::Never,
        writer: WriterOptions {
            segment_bytes_max: 2048,
            prewrite_bytes: 512,
            ..WriterOptions::default()
        },
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// One life of the harness: two turns, a clean close and reopen, a third turn. Stops at the
/// first error, which under `crash_at` is the simulated death of the process.
fn run(fs: &SimFs, buggy: bool) -> Promises {
    let mut p = Promises::default();
    let mut life = || -> turnwal::Result<()> {
        let (journal, _) = Journal::open(DIR, options(fs))?;
        p.appended = journal.last_seq();
        harness(&journal, 1, buggy, &mut p)?;
        harness(&journal, 2, buggy, &mut p)?;
        p.durable = journal.close()?;
        let (journal, _) = Journal::open(DIR, options(fs))?;
        harness(&journal, 3, buggy, &mut p)?;
        Ok(())
    };
    let _ = life();
    p
}

/// Checks one disk after a crash. `process_crash`: the machine survived (the page cache
/// too), so every append that returned must be there, not only what was durable.
fn check(disk: &SimFs, p: &Promises, process_crash: bool) -> Result<(), String> {
    let must = if process_crash { p.appended } else { p.durable };
    let view = match Journal::open_read_only(DIR, &options(disk)) {
        Ok(v) => v,
        // No journal at all is fine only if nothing was promised.
        Err(_) if must == 0 => return Ok(()),
        Err(e) => return Err(format!("unreadable, although seq {must} was promised: {e}")),
    };
    if view.report.status == Status::Corrupt {
        return Err(format!("reported corrupt: {:?}", view.report.problems));
    }
    if view.report.last_seq < must {
        return Err(format!(
            "recovered through seq {}, but seq {must} was promised",
            view.report.last_seq
        ));
    }
    // Nothing invented, nothing reordered: each recovered event is the one the harness
    // appended with that seq.
    for (seq, e) in &view.events {
        if *seq == 1 {
            continue; // the journal's own session event
        }
        let idx = usize::try_from(seq - 2).map_err(|e| e.to_string())?;
        if p.attempted.get(idx) != Some(e.as_ref()) {
            return Err(format!("seq {seq} is not what the harness appended: {e:?}"));
        }
    }
    // The session resumes: a writer opens it, answers what the crash left dangling, and
    // appends again.
    let (journal, _) =
        Journal::open(DIR, options(disk)).map_err(|e| format!("a writer cannot reopen: {e}"))?;
    journal
        .repair_dangling_tool_calls()
        .map_err(|e| format!("repair failed: {e}"))?;
    let session = journal.session();
    if let Some(c) = session
        .tool_calls
        .iter()
        .find(|c| !matches!(c.state, ToolCallState::Answered { .. }))
    {
        return Err(format!("call {} unanswered after the repair", c.call_id));
    }
    let next = Event::from_envelope(r#"{"kind":"meta","body":{"resumed":true}}"#, 0)
        .map_err(|e| e.to_string())?;
    journal
        .append_durable(&next)
        .map_err(|e| format!("cannot append after recovery: {e}"))?;
    Ok(())
}

fn main() -> ExitCode {
    let buggy = std::env::args().any(|a| a == "--buggy");
    // 1. How many storage operations does one uncrashed life take?
    let probe = SimFs::new();
    let promised = run(&probe, buggy);
    let total = probe.ops();
    println!(
        "the harness appends {} events in {total} storage operations",
        promised.attempted.len()
    );

    // 2-4. Kill it before each of them, cut the power every way, check every disk.
    let (mut states, mut violations) = (0u64, 0u64);
    for crash_at in 0..=total {
        let fs = SimFs::new();
        fs.crash_at(Some(crash_at));
        let p = run(&fs, buggy);
        for cut in Cut::all() {
            let process_crash = cut == Cut::process_crash();
            for seed in 0..if process_crash { 1 } else { SEEDS } {
                let disk = fs.power_cut(cut, seed);
                states += 1;
                if let Err(what) = check(&disk, &p, process_crash) {
                    violations += 1;
                    if violations <= 3 {
                        report(&fs, crash_at, cut, seed, &what);
                    }
                }
            }
        }
    }
    println!("{states} states checked, {violations} violations");
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a violation with what is needed to replay it: the crash point, the cut, the seed,
/// and the last storage operations before the crash.
fn report(fs: &SimFs, crash_at: u64, cut: Cut, seed: u64, what: &str) {
    println!("VIOLATION: {what}\n  killed before operation #{crash_at}, then {cut}, seed {seed}");
    let log = fs.log();
    for line in log.iter().skip(log.len().saturating_sub(6)) {
        println!("    {line}");
    }
}
