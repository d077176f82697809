//! `turnwal verify DIR [--json]`: read-only audit.

use std::path::Path;

use serde_json::{Value, json};
use turnwal::{Journal, MessageStatus, Options, Session, Status, ToolCallState};

pub fn run(dir: &Path, json: bool) -> u8 {
    let view = match Journal::open_read_only(dir, &Options::default()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("turnwal verify: {e}");
            return 2;
        }
    };
    let r = &view.report;
    if json {
        let mut doc = match serde_json::to_value(r) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("turnwal verify: {e}");
                return 2;
            }
        };
        doc["resume"] = resume(&view.session);
        println!("{doc}");
    } else {
        println!("status      {}", status_name(r.status));
        println!("records     {}", r.records);
        println!("last_seq    {}", r.last_seq);
        println!("watermark   {}", r.max_watermark);
        if let Some(s) = &r.snapshot {
            println!(
                "snapshot    {} (through seq {}, {} records, {} bytes)",
                s.file, s.through_seq, s.records, s.bytes
            );
        }
        println!("segments    {}", r.segments);
        for i in &r.ignored_snapshots {
            println!("ignored     {}: {}", i.file, i.reason);
        }
        println!("torn_bytes  {}", r.torn_bytes);
        let s = &view.session;
        if let Some(t) = s.open_turn {
            println!("open turn   {t}");
        }
        for m in s
            .messages
            .iter()
            .filter(|m| m.status != MessageStatus::Complete)
        {
            println!(
                "partial     message {} (seq {}..{})",
                m.id, m.first_seq, m.last_seq
            );
        }
        for c in &s.tool_calls {
            if let Some(state) = pending(&c.state) {
                println!("pending     tool call {} ({}) {state}", c.call_id, c.name);
            }
        }
        for p in &r.problems {
            println!(
                "problem     {} at offset {}: {}",
                p.file, p.offset, p.reason
            );
        }
    }
    match r.status {
        Status::Clean | Status::TornTail => 0,
        Status::Corrupt => 1,
    }
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Clean => "clean",
        Status::TornTail => "torn_tail",
        Status::Corrupt => "corrupt",
    }
}

/// What a harness needs to resume: the turn left open, the messages still partial (interrupted
/// by the crash), and every unanswered tool call with whether it may have run.
fn resume(s: &Session) -> Value {
    json!({
        "open_turn": s.open_turn,
        "partial_messages": s
            .messages
            .iter()
            .filter(|m| m.status != MessageStatus::Complete)
            .map(|m| json!({"id": m.id, "first_seq": m.first_seq, "last_seq": m.last_seq}))
            .collect::<Vec<_>>(),
        "pending_tool_calls": s
            .tool_calls
            .iter()
            .filter_map(|c| {
                pending(&c.state).map(|state| {
                    json!({"call_id": c.call_id, "name": c.name, "message_id": c.message_id, "state": state})
                })
            })
            .collect::<Vec<_>>(),
    })
}

/// `not_started` or `unknown` for an unanswered call.
fn pending(state: &ToolCallState) -> Option<&'static str> {
    match state {
        ToolCallState::Answered { .. } => None,
        ToolCallState::NotStarted => Some("not_started"),
        ToolCallState::Unknown => Some("unknown"),
    }
}
