//! Turn-level resume: a session killed mid-tool-call is repaired into one a provider accepts.
//!
//! The story: an agent asked for two tools, started one of them, and the process died. On
//! resume, `repair_dangling_tool_calls` answers both calls as aborted (telling which one may
//! have run), ends the open turn as interrupted, and a second repair changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::collections::BTreeMap;

use serde_json::Value;
use turnwal::{CompactionPolicy, Journal, Options, SyncPolicy};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// Turn 1 ends normally with an answered call; turn 2 asks for `c2` (never started) and `c3`
/// (started, no result), and the process dies.
fn killed_mid_tool_call(j: &Journal) {
    for line in [
        r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"list files"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"tool_call","call_id":"c1","name":"ls","arguments":"{}"}]}}"#,
        r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c1","event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"t1","role":"tool","parts":[{"type":"tool_result","call_id":"c1","content":"a b"}]}}"#,
        r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#,
        r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"a2","role":"assistant","parts":[{"type":"tool_call","call_id":"c2","name":"read","arguments":"{}"},{"type":"tool_call","call_id":"c3","name":"rm","arguments":"{}"}]}}"#,
        r#"{"kind":"tool_run","turn":2,"body":{"call_id":"c3","event":"started"}}"#,
    ] {
        j.append_json(line).unwrap();
    }
}

/// Per call id: (tool_call parts, tool_result parts) over every message body.
fn calls_and_results(session: &turnwal::Session) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in &session.messages {
        let body: Value = serde_json::from_str(&m.body).unwrap();
        for part in body["parts"].as_array().into_iter().flatten() {
            let id = part["call_id"].as_str().unwrap_or_default().to_string();
            match part["type"].as_str() {
                Some("tool_call") => out.entry(id).or_default().0 += 1,
                Some("tool_result") => out.entry(id).or_default().1 += 1,
                _ => {}
            }
        }
    }
    out
}

#[test]
fn a_session_killed_mid_tool_call_resumes_with_every_call_answered_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    killed_mid_tool_call(&j);
    j.sync().unwrap();
    drop(j); // the process dies: nothing more is written
    let (j, _) = Journal::open(dir, opts()).unwrap();
    let before = j.session();
    assert_eq!(before.open_turn, Some(2));
    let unanswered: Vec<_> = calls_and_results(&before)
        .into_iter()
        .filter(|(_, (_, results))| *results == 0)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(unanswered, ["c2", "c3"]);

    let repair = j.repair_dangling_tool_calls().unwrap();
    let answered: Vec<_> = repair
        .answered
        .iter()
        .map(|a| (a.call_id.as_str(), a.was, a.name.as_str()))
        .collect();
    assert_eq!(
        answered,
        [("c2", "not_started", "read"), ("c3", "unknown", "rm")]
    );
    assert_eq!(repair.ended_turns.len(), 1);
    assert_eq!(repair.ended_turns[0].0, 2);
    assert!(
        j.durable_seq() >= repair.ended_turns[0].1,
        "the repair is durable when it returns"
    );

    let after = j.session();
    assert_eq!(after.open_turn, None);
    for (id, (calls, results)) in calls_and_results(&after) {
        assert_eq!((calls, results), (1, 1), "call {id}");
    }
    for a in &repair.answered {
        let m = after
            .messages
            .iter()
            .find(|m| m.id == a.message_id)
            .unwrap();
        let body: Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(body["role"], "tool");
        assert_eq!(body["parts"][0]["outcome"], "aborted");
        assert_eq!(body["parts"][0]["is_error"], true);
        assert_eq!(m.turn, Some(2), "in the turn of the call");
    }
    assert!(
        after
            .tool_calls
            .iter()
            .all(|c| matches!(c.state, turnwal::ToolCallState::Answered { .. }))
    );

    // Idempotent: nothing dangles any more, nothing is appended.
    let last = j.last_seq();
    assert!(j.repair_dangling_tool_calls().unwrap().is_empty());
    assert_eq!(j.last_seq(), last);
    j.close().unwrap();

    // And it is what a reopen sees.
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    assert_eq!(ro.session.open_turn, None);
    assert_eq!(calls_and_results(&ro.session).len(), 3);
}

/// A message id the repair would use is already the harness's: the repair picks another, so
/// the harness's message is not superseded.
#[test]
fn the_repair_never_supersedes_an_existing_message() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    j.append_json(r#"{"kind":"message","turn":1,"body":{"id":"turnwal-aborted-c9","role":"user","parts":[{"type":"text","text":"mine"}]}}"#).unwrap();
    j.append_json(r#"{"kind":"message","turn":1,"body":{"id":"a","role":"assistant","parts":[{"type":"tool_call","call_id":"c9","name":"x","arguments":"{}"}]}}"#).unwrap();
    let repair = j.repair_dangling_tool_calls().unwrap();
    assert_eq!(repair.answered.len(), 1);
    assert_eq!(repair.answered[0].message_id, "turnwal-aborted-c9-2");
    assert!(repair.ended_turns.is_empty(), "no turn was started");
    let s = j.session();
    let mine = s
        .messages
        .iter()
        .find(|m| m.id == "turnwal-aborted-c9")
        .unwrap();
    assert!(mine.body.contains("mine"));
    j.close().unwrap();
}

/// A session with nothing dangling is left alone: no event, no sync needed.
#[test]
fn a_clean_session_is_not_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    j.append_json(r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#)
        .unwrap();
    j.append_json(r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#)
        .unwrap();
    let last = j.last_seq();
    assert!(j.repair_dangling_tool_calls().unwrap().is_empty());
    assert_eq!(j.last_seq(), last);
    j.close().unwrap();
}

/// `turnwal verify --json` says what a harness needs to resume: the open turn and each pending
/// call with whether it may have run; after the repair, nothing.
#[test]
fn verify_json_reports_what_resume_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    killed_mid_tool_call(&j);
    j.close().unwrap();
    let verify = || -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_turnwal"))
            .args(["verify", "--json"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let doc = verify();
    assert_eq!(doc["status"], "clean");
    assert_eq!(doc["resume"]["open_turn"], 2);
    let pending: Vec<(String, String)> = doc["resume"]["pending_tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["call_id"].as_str().unwrap().to_string(),
                c["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pending,
        [
            ("c2".to_string(), "not_started".to_string()),
            ("c3".to_string(), "unknown".to_string())
        ]
    );
    let (j, _) = Journal::open(dir, opts()).unwrap();
    j.repair_dangling_tool_calls().unwrap();
    j.close().unwrap();
    let doc = verify();
    assert_eq!(doc["resume"]["open_turn"], Value::Null);
    assert_eq!(doc["resume"]["pending_tool_calls"], serde_json::json!([]));
}
