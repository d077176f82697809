//! `turnwal demo`: a realistic agent session written by a child process, which is killed with
//! SIGKILL in the middle of a turn; the journal is then reopened and the recovery shown.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use turnwal::{Journal, Options, SyncPolicy};

/// The line the writer prints when it is inside the turn the demo kills.
const MID_TURN: &str = "mid-turn";

pub fn run(dir: Option<PathBuf>, json: bool) -> u8 {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "turnwal-demo-{}-{}",
            std::process::id(),
            turnwal::event::now_ms()
        ))
    });
    match demo(&dir, json) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("turnwal demo: {e}");
            1
        }
    }
}

fn demo(dir: &Path, json: bool) -> Result<(), String> {
    // The story in words, unless --json asked for one JSON object at the end instead.
    macro_rules! say {
        ($($t:tt)*) => {
            if !json {
                println!($($t)*);
            }
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding own executable: {e}"))?;
    say!("turnwal demo — journal in {}\n", dir.display());
    say!("1. A child process plays an agent: user prompts, streamed thinking and text,");
    say!("   tool calls with tool_run ledger entries, usage per model call. Each event is");
    say!("   appended as it happens (sync policy: batch, 5 ms); after turn 2 it compacts.");
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
            say!("   After turn 2 the writer compacted its log into {rest}.");
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
    say!(
        "\n2. SIGKILL sent mid-turn ({status}). Last event the writer saw acknowledged: seq {acked};"
    );
    say!("   durable (fsynced) through seq {durable}.\n");

    let (journal, report) =
        Journal::open(dir, Options::default()).map_err(|e| format!("reopening: {e}"))?;
    say!("3. Reopened. Recovery report:");
    say!(
        "   status        {}",
        super::verify::status_name(report.status)
    );
    say!("   decision      {} ({:?})", report.case, report.action);
    say!(
        "   records       {} (last seq {})",
        report.records,
        report.last_seq
    );
    if let Some(snap) = &report.snapshot {
        say!(
            "   snapshot      {} (through seq {}, {} records)",
            snap.file,
            snap.through_seq,
            snap.records
        );
    }
    say!("   segments      {} (after the snapshot)", report.segments);
    say!("   torn bytes    {}", report.torn_bytes);
    if let Some(q) = &report.quarantine {
        say!("   quarantine    {q}");
    }
    let lost = acked.saturating_sub(report.last_seq);
    say!("   acknowledged events lost: {lost}");
    let s = journal.session().after_crash();
    say!("\n4. Session {}:", s.id);
    say!("   messages      {}", s.messages.len());
    for m in &s.messages {
        say!(
            "     {:<10} {:<9} {:?} seq {}..{}",
            m.id,
            m.role.as_str(),
            m.status,
            m.first_seq,
            m.last_seq
        );
    }
    say!("   turns");
    for t in &s.turns {
        say!("     turn {:<3} {:?}", t.turn, t.state);
    }
    match s.open_turn {
        Some(t) => say!("   open turn     {t} (interrupted by the crash)"),
        None => say!("   open turn     none"),
    }
    say!("   tool calls");
    for c in &s.tool_calls {
        say!("     {:<8} {:<12} {:?}", c.call_id, c.name, c.state);
    }
    say!("   usage by model");
    for (model, u) in &s.usage_by_model {
        say!(
            "     {model:<18} calls {:>2}  input {:>6}  output {:>5}  cost {:?}",
            u.calls,
            u.input,
            u.output,
            u.cost
        );
    }
    let r = journal
        .repair_dangling_tool_calls()
        .map_err(|e| format!("repairing dangling tool calls: {e}"))?;
    say!("\n5. Resume: repair_dangling_tool_calls (nothing is re-run):");
    for a in &r.answered {
        say!(
            "     {:<8} {:<12} was {:<11} answered as aborted by {} (seq {})",
            a.call_id,
            a.name,
            a.was,
            a.message_id,
            a.seq
        );
    }
    for (turn, seq) in &r.ended_turns {
        say!("     turn {turn:<3} ended as interrupted (seq {seq})");
    }
    if r.is_empty() {
        say!("     nothing dangled");
    }
    let c = journal.compact().map_err(|e| format!("compacting: {e}"))?;
    say!(
        "\n6. Compacted the recovered session into {}: {} records, {} messages, {} bytes;",
        c.snapshot,
        c.records,
        c.messages,
        c.bytes
    );
    say!(
        "   appends were held for {} µs of its {} µs; {} segment(s) and {} older snapshot(s) removed.",
        c.hold_us,
        c.total_us,
        c.removed_segments.len(),
        c.removed_snapshots.len()
    );
    journal.close().map_err(|e| format!("closing: {e}"))?;
    if json {
        let doc = json!({
            "dir": dir.display().to_string(),
            "killed_at": {"acknowledged": acked, "durable": durable},
            "recovery": report,
            "lost": lost,
            "session": {
                "id": s.id,
                "messages": s.messages.len(),
                "open_turn": s.open_turn,
                "tool_calls": s.tool_calls.len(),
            },
            "repaired": {
                "answered": r.answered.iter().map(|a| json!({
                    "call_id": a.call_id, "name": a.name, "was": a.was,
                    "message_id": a.message_id, "seq": a.seq,
                })).collect::<Vec<_>>(),
                "ended_turns": r.ended_turns.iter()
                    .map(|(turn, seq)| json!({"turn": turn, "seq": seq}))
                    .collect::<Vec<_>>(),
            },
            "compaction": c,
        });
        if crate::ui::print_json("demo", &doc).is_err() {
            return Err("writing stdout failed".into());
        }
    }
    if lost > 0 {
        return Err(format!("{lost} acknowledged events were lost"));
    }
    say!(
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
