//! `turnwal demo`: a realistic agent session written by a child process, which is killed with
//! SIGKILL in the middle of a turn; the journal is then reopened and the recovery shown.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use turnwal::{Journal, Options, SyncPolicy};

/// The line the writer prints when it is inside the turn the demo kills.
const MID_TURN: &str = "mid-turn";

pub fn run(dir: Option<PathBuf>) -> u8 {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "turnwal-demo-{}-{}",
            std::process::id(),
            turnwal::event::now_ms()
        ))
    });
    match demo(&dir) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("turnwal demo: {e}");
            1
        }
    }
}

fn demo(dir: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding own executable: {e}"))?;
    println!("turnwal demo — journal in {}\n", dir.display());
    println!("1. A child process plays an agent: user prompts, streamed thinking and text,");
    println!("   tool calls with tool_run ledger entries, usage per model call. Each event is");
    println!("   appended as it happens (sync policy: batch, 5 ms); after turn 2 it compacts.");
    let mut child = Command::new(exe)
        .arg("demo-writer")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning the writer: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from the writer")?;
    let mut acked = 0u64;
    let mut durable = 0u64;
    let mut mid_turn_acks = 0;
    // Somewhere between the streamed reasoning and the long tool run of the third turn.
    let kill_after = 10 + u64::from(std::process::id() % 12);
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the writer: {e}"))?;
        if let Some(rest) = line.strip_prefix("ack ") {
            let mut it = rest
                .split_whitespace()
                .filter_map(|x| x.parse::<u64>().ok());
            acked = it.next().unwrap_or(acked);
            durable = it.next().unwrap_or(durable);
            if mid_turn_acks > 0 {
                mid_turn_acks += 1;
            }
        } else if line == MID_TURN {
            mid_turn_acks = 1;
        } else if let Some(rest) = line.strip_prefix("compacted ") {
            println!("   After turn 2 the writer compacted its log into {rest}.");
        }
        // Kill a few events into the third turn: the assistant is streaming and a tool call
        // has been issued but not answered.
        if mid_turn_acks >= kill_after {
            break;
        }
    }
    child
        .kill()
        .map_err(|e| format!("killing the writer: {e}"))?;
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the writer: {e}"))?;
    println!(
        "\n2. SIGKILL sent mid-turn ({status}). Last event the writer saw acknowledged: seq {acked};"
    );
    println!("   durable (fsynced) through seq {durable}.\n");

    let (journal, report) =
        Journal::open(dir, Options::default()).map_err(|e| format!("reopening: {e}"))?;
    println!("3. Reopened. Recovery report:");
    println!(
        "   status        {}",
        super::verify::status_name(report.status)
    );
    println!("   decision      {} ({:?})", report.case, report.action);
    println!(
        "   records       {} (last seq {})",
        report.records, report.last_seq
    );
    if let Some(snap) = &report.snapshot {
        println!(
            "   snapshot      {} (through seq {}, {} records)",
            snap.file, snap.through_seq, snap.records
        );
    }
    println!("   segments      {} (after the snapshot)", report.segments);
    println!("   torn bytes    {}", report.torn_bytes);
    if let Some(q) = &report.quarantine {
        println!("   quarantine    {q}");
    }
    let lost = acked.saturating_sub(report.last_seq);
    println!("   acknowledged events lost: {lost}");
    let s = journal.session().after_crash();
    println!("\n4. Session {}:", s.id);
    println!("   messages      {}", s.messages.len());
    for m in &s.messages {
        println!(
            "     {:<10} {:<9} {:?} seq {}..{}",
            m.id,
            m.role.as_str(),
            m.status,
            m.first_seq,
            m.last_seq
        );
    }
    println!("   turns");
    for t in &s.turns {
        println!("     turn {:<3} {:?}", t.turn, t.state);
    }
    match s.open_turn {
        Some(t) => println!("   open turn     {t} (interrupted by the crash)"),
        None => println!("   open turn     none"),
    }
    println!("   tool calls");
    for c in &s.tool_calls {
        println!("     {:<8} {:<12} {:?}", c.call_id, c.name, c.state);
    }
    println!("   usage by model");
    for (model, u) in &s.usage_by_model {
        println!(
            "     {model:<18} calls {:>2}  input {:>6}  output {:>5}  cost {:?}",
            u.calls, u.input, u.output, u.cost
        );
    }
    let r = journal
        .repair_dangling_tool_calls()
        .map_err(|e| format!("repairing dangling tool calls: {e}"))?;
    println!("\n5. Resume: repair_dangling_tool_calls (nothing is re-run):");
    for a in &r.answered {
        println!(
            "     {:<8} {:<12} was {:<11} answered as aborted by {} (seq {})",
            a.call_id, a.name, a.was, a.message_id, a.seq
        );
    }
    for (turn, seq) in &r.ended_turns {
        println!("     turn {turn:<3} ended as interrupted (seq {seq})");
    }
    if r.is_empty() {
        println!("     nothing dangled");
    }
    let c = journal.compact().map_err(|e| format!("compacting: {e}"))?;
    println!(
        "\n6. Compacted the recovered session into {}: {} records, {} messages, {} bytes;",
        c.snapshot, c.records, c.messages, c.bytes
    );
    println!(
        "   appends were held for {} µs of its {} µs; {} segment(s) and {} older snapshot(s) removed.",
        c.hold_us,
        c.total_us,
        c.removed_segments.len(),
        c.removed_snapshots.len()
    );
    journal.close().map_err(|e| format!("closing: {e}"))?;
    if lost > 0 {
        return Err(format!("{lost} acknowledged events were lost"));
    }
    println!(
        "\nNothing acknowledged was lost. Inspect with: jq -c . {}",
        dir.join(&c.snapshot).display()
    );
    Ok(())
}

/// The child: writes turns until killed.
pub fn writer(dir: &Path) -> u8 {
    let opts = Options {
        sync: SyncPolicy::default(),
        ..Options::default()
    };
    let (journal, _) = match Journal::open(dir, opts) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("demo writer: {e}");
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    let mut emit = |line: String| -> Result<(), String> {
        let seq = journal.append_json(&line).map_err(|e| e.to_string())?;
        let _ = writeln!(out, "ack {seq} {}", journal.durable_seq());
        let _ = out.flush();
        std::thread::sleep(Duration::from_millis(3));
        Ok(())
    };
    let mut run = || -> Result<(), String> {
        emit(r#"{"kind":"meta","body":{"title":"Fix the flaky test","model":"claude-sonnet","cwd":"~/src/app"}}"#.into())?;
        for turn in 1..=3u64 {
            if turn == 3 {
                // A long session compacts now and then; do it once here, so the crash below
                // is recovered from a snapshot plus the segments after it.
                let c = journal.compact().map_err(|e| e.to_string())?;
                let _ = writeln!(
                    std::io::stdout(),
                    "compacted {} (through seq {})",
                    c.snapshot,
                    c.through_seq
                );
                let _ = writeln!(std::io::stdout(), "{MID_TURN}");
            }
            play_turn(turn, &mut emit)?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("demo writer: {e}");
            1
        }
    }
}

fn play_turn(turn: u64, emit: &mut impl FnMut(String) -> Result<(), String>) -> Result<(), String> {
    let (user, thought, call, args, answer) = match turn {
        1 => (
            "Why does test_upload fail one run in ten?",
            "The test shares a temp dir between cases.",
            "grep",
            r#"{\"pattern\":\"tmpdir\"}"#,
            "Both cases use the same temp directory.",
        ),
        2 => (
            "Fix it, please.",
            "Give each case its own directory.",
            "edit_file",
            r#"{\"path\":\"tests/upload.rs\"}"#,
            "Each case now gets a fresh directory.",
        ),
        _ => (
            "Run the whole suite a hundred times.",
            "This will take a while; run it in a loop.",
            "shell",
            r#"{\"cmd\":\"for i in $(seq 100); do cargo test; done\"}"#,
            "All 100 runs passed.",
        ),
    };
    let t = turn;
    emit(format!(
        r#"{{"kind":"turn","turn":{t},"body":{{"event":"started"}}}}"#
    ))?;
    emit(format!(
        r#"{{"kind":"message","turn":{t},"body":{{"id":"u{t}","role":"user","parts":[{{"type":"text","text":"{user}"}}]}}}}"#
    ))?;
    let a = format!("a{t}");
    for chunk in thought.split_inclusive(' ') {
        emit(format!(
            r#"{{"kind":"delta","turn":{t},"body":{{"message_id":"{a}","index":0,"type":"thinking","text":"{chunk}"}}}}"#
        ))?;
    }
    let call_id = format!("call_{t}");
    emit(format!(
        r#"{{"kind":"delta","turn":{t},"body":{{"message_id":"{a}","index":1,"type":"tool_call","call_id":"{call_id}","name":"{call}","arguments":"{args}"}}}}"#
    ))?;
    emit(format!(
        r#"{{"kind":"message","turn":{t},"body":{{"id":"{a}","role":"assistant","parts":[{{"type":"thinking","text":"{thought}","signature":"sig-{t}"}},{{"type":"tool_call","call_id":"{call_id}","name":"{call}","arguments":"{args}"}}]}}}}"#
    ))?;
    emit(format!(
        r#"{{"kind":"usage","turn":{t},"body":{{"call_key":"req-{t}a","model":"claude-sonnet","input":{{"total":{},"cache_read":{}}},"output":{{"total":{}}},"cost":{{"amount":0.0{t}2,"currency":"USD"}},"final":true}}}}"#,
        1200 * t,
        800 * t,
        90 + t
    ))?;
    emit(format!(
        r#"{{"kind":"tool_run","turn":{t},"body":{{"call_id":"{call_id}","event":"started"}}}}"#
    ))?;
    if turn == 3 {
        // The long tool run: the demo kills the writer somewhere in here.
        for i in 0..200 {
            emit(format!(
                r#"{{"kind":"x-progress","turn":{t},"body":{{"call_id":"{call_id}","run":{i}}}}}"#
            ))?;
        }
    }
    emit(format!(
        r#"{{"kind":"tool_run","turn":{t},"body":{{"call_id":"{call_id}","event":"finished"}}}}"#
    ))?;
    emit(format!(
        r#"{{"kind":"message","turn":{t},"body":{{"id":"r{t}","role":"tool","parts":[{{"type":"tool_result","call_id":"{call_id}","content":"ok"}}]}}}}"#
    ))?;
    let f = format!("f{t}");
    for chunk in answer.split_inclusive(' ') {
        emit(format!(
            r#"{{"kind":"delta","turn":{t},"body":{{"message_id":"{f}","index":0,"type":"text","text":"{chunk}"}}}}"#
        ))?;
    }
    emit(format!(
        r#"{{"kind":"message","turn":{t},"body":{{"id":"{f}","role":"assistant","parts":[{{"type":"text","text":"{answer}"}}]}}}}"#
    ))?;
    emit(format!(
        r#"{{"kind":"usage","turn":{t},"body":{{"call_key":"req-{t}b","model":"claude-haiku","input":{{"total":{}}},"output":{{"total":{}}},"final":true}}}}"#,
        300 * t,
        40 + t
    ))?;
    emit(format!(
        r#"{{"kind":"turn","turn":{t},"body":{{"event":"completed"}}}}"#
    ))?;
    Ok(())
}
