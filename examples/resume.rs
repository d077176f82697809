//! Resuming a session after a crash: what was left open, the repair of dangling tool calls, and
//! the conversation as OpenAI chat messages and as an Anthropic Messages request, ready to send.
//!
//! ```text
//! cargo run --example agent_loop -- /tmp/agent-session 3 --crash-after 40
//! cargo run --example resume -- /tmp/agent-session
//! cargo run --example resume -- --demo /tmp/crashed   # writes a crashed session first
//! ```
//!
//! With `--demo`, the example first writes a session that died mid-tool-call into a new
//! directory: the assistant asked for two tools, one had started (`unknown`: it may have had its
//! effect), the other had not (`not_started`), and a second reply was still streaming.
//!
//! A crash between a `tool_call` and its `tool_result` leaves a history every provider refuses
//! (HTTP 400: a tool call with no result). `repair_dangling_tool_calls()` answers each such call
//! with an explicit `tool_result` (`outcome: "aborted"`, `is_error: true`), saying whether the
//! tool had started, and ends the open turn as `interrupted`. It re-runs nothing and invents no
//! output, and a second call appends nothing. A host that would rather run a `not_started` call
//! now (it never ran) can do that first and append its result; the repair then leaves it alone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use turnwal::provider::{anthropic, openai};
use turnwal::{Journal, MessageStatus, Options, ToolCallState};

fn main() -> ExitCode {
    let mut demo = false;
    let mut dir = None;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--demo" => demo = true,
            _ if a.starts_with('-') || dir.is_some() => {
                eprintln!("usage: resume [--demo] JOURNAL_DIR");
                return ExitCode::from(2);
            }
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: resume [--demo] JOURNAL_DIR");
        return ExitCode::from(2);
    };
    let done = if demo {
        write_crashed_session(&dir).and_then(|()| resume(&dir))
    } else {
        resume(&dir)
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resume: {e}");
            ExitCode::FAILURE
        }
    }
}

fn resume(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    // A journal that must already exist: never create an empty one by mistake.
    let opts = Options {
        create: false,
        ..Options::default()
    };
    // The open recovers: a torn tail that was never acknowledged is cut (and kept aside in a
    // quarantine file), corruption is refused without changing a byte.
    let (journal, report) = Journal::open(dir, opts)?;
    println!(
        "== recovery: status {:?}, {} events, last seq {}, torn bytes cut {}",
        report.status, report.records, report.last_seq, report.torn_bytes
    );

    // What the crash left: the open turn, messages that only have streamed deltas, and tool
    // calls with no result. The same is in `report.resume` (and `turnwal verify --json`).
    let session = journal.session();
    match session.open_turn {
        Some(t) => println!("open turn: {t} (the process died in it)"),
        None => println!("open turn: none"),
    }
    for m in session
        .messages
        .iter()
        .filter(|m| m.status != MessageStatus::Complete)
    {
        // The body of a partial message is built from its deltas: the text streamed so far,
        // and tool calls whose arguments may stop mid-JSON.
        println!(
            "partial message: {} ({:?}, seq {}..={}): {}",
            m.id, m.status, m.first_seq, m.last_seq, m.body
        );
    }
    for c in &session.tool_calls {
        let what = match c.state {
            ToolCallState::Answered { .. } => continue,
            ToolCallState::NotStarted => {
                "not_started: no `tool_run started` in the ledger, the tool never ran"
            }
            ToolCallState::Unknown => {
                "unknown: the tool started and did not report; it may have had its effect"
            }
        };
        println!(
            "pending tool call: {} {} (in message {}): {what}",
            c.call_id, c.name, c.message_id
        );
    }

    // The repair: opt-in, durable when it returns, idempotent.
    let repair = journal.repair_dangling_tool_calls()?;
    if repair.is_empty() {
        println!("repair: nothing dangled");
    }
    for c in &repair.answered {
        println!(
            "repair: {} answered as aborted (it was {}) by message {} at seq {}",
            c.call_id, c.was, c.message_id, c.seq
        );
    }
    for (turn, seq) in &repair.ended_turns {
        println!("repair: turn {turn} ended as interrupted at seq {seq}");
    }
    let again = journal.repair_dangling_tool_calls()?;
    println!(
        "repair again: {}",
        if again.is_empty() {
            "nothing to do (idempotent)"
        } else {
            "appended more?!"
        }
    );

    // The conversation in each provider's shape: every tool result right after the assistant
    // message that called it. Add the next user message (or nothing, to let the model go on
    // after the tool results), set the model and tools, and send.
    let session = journal.session();
    let chat = openai::chat_messages(&session)?;
    println!("== OpenAI chat completions: messages");
    println!("{}", serde_json::to_string_pretty(&chat)?);
    let request = anthropic::messages(&session)?;
    println!("== Anthropic Messages: system and messages");
    println!("{}", serde_json::to_string_pretty(&request)?);

    journal.close()?;
    Ok(())
}

/// Writes a session that died mid-tool-call into `dir` (which must not hold a journal yet).
fn write_crashed_session(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let opts = Options::default();
    let (journal, report) = Journal::open(dir, opts)?;
    if report.last_seq > 1 {
        return Err(format!("{} already holds a session", dir.display()).into());
    }
    for line in [
        r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"s1","role":"system","parts":[{"type":"text","text":"You are a careful ops agent."}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"What is in /srv?"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"tool_call","call_id":"call_ls","name":"ls","arguments":"{\"path\":\"/srv\"}"}]}}"#,
        r#"{"kind":"tool_run","turn":1,"body":{"call_id":"call_ls","event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"t1","role":"tool","parts":[{"type":"tool_result","call_id":"call_ls","content":"app.log\nold.tar"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a2","role":"assistant","parts":[{"type":"text","text":"/srv holds app.log and old.tar."}]}}"#,
        r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#,
        r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"u2","role":"user","parts":[{"type":"text","text":"Delete old.tar and tell me the size of app.log."}]}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"a3","role":"assistant","parts":[{"type":"text","text":"Doing both."},{"type":"tool_call","call_id":"call_rm","name":"rm","arguments":"{\"path\":\"/srv/old.tar\"}"},{"type":"tool_call","call_id":"call_stat","name":"stat","arguments":"{\"path\":\"/srv/app.log\"}"}]}}"#,
        // `rm` started (it may have deleted the file), `stat` never did...
        r#"{"kind":"tool_run","turn":2,"body":{"call_id":"call_rm","event":"started"}}"#,
        // ...and a later reply was streaming when the process died.
        r#"{"kind":"delta","turn":2,"body":{"message_id":"a4","index":0,"type":"text","text":"Deleting old.ta"}}"#,
    ] {
        journal.append_json(line)?;
    }
    journal.sync()?;
    // Dropping the journal without `close()` and without ending the turn is what a crash
    // leaves (the lock goes with the process; nothing else is written).
    drop(journal);
    println!("wrote a session killed mid-tool-call to {}", dir.display());
    Ok(())
}
