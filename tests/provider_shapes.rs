//! Provider shapes: a journaled session as the message lists OpenAI chat completions and
//! Anthropic Messages accept on resume.
//!
//! The story that matters: an agent asked for two tools, started one, and the process died.
//! Before `repair_dangling_tool_calls` both shapes hold calls nobody answered (each provider
//! refuses that with HTTP 400); after it, every call has exactly one result, where each
//! provider wants it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tempfile::TempDir;
use turnwal::provider::anthropic::{self, AnthropicRequest};
use turnwal::provider::{ProviderError, openai};
use turnwal::{CompactionPolicy, Journal, Options, Session, SyncPolicy};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// A fresh journal in a temp dir with `lines` appended.
fn journal_with(lines: &[&str]) -> (TempDir, Journal) {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    for line in lines {
        j.append_json(line).unwrap();
    }
    (tmp, j)
}

/// OpenAI's rule: the tool messages right after an assistant message with `tool_calls` answer
/// each of its ids exactly once, and no tool message answers an id no earlier assistant
/// message issued. Globally: every issued id has exactly one tool message.
fn openai_check(msgs: &[Value]) -> Result<(), String> {
    let mut issued = BTreeSet::new();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in msgs.iter().enumerate() {
        match m["role"].as_str() {
            Some("tool") => {
                let id = m["tool_call_id"]
                    .as_str()
                    .ok_or("tool message without id")?;
                if !issued.contains(id) {
                    return Err(format!("message {i}: tool message answers unknown id {id}"));
                }
                *answers.entry(id.to_string()).or_default() += 1;
            }
            Some("assistant") => {
                let ids: Vec<&str> = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c["id"].as_str().unwrap_or_default())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                issued.extend(ids.iter().map(|s| s.to_string()));
                let following: Vec<&str> = msgs[i + 1..]
                    .iter()
                    .take_while(|n| n["role"] == "tool")
                    .map(|n| n["tool_call_id"].as_str().unwrap_or_default())
                    .collect();
                let mut want = ids.clone();
                let mut got = following.clone();
                want.sort_unstable();
                got.sort_unstable();
                if want != got {
                    return Err(format!(
                        "message {i}: calls {ids:?} followed by tool messages {following:?}"
                    ));
                }
            }
            _ => {}
        }
    }
    for id in &issued {
        let n = answers.get(id).copied().unwrap_or(0);
        if n != 1 {
            return Err(format!("call {id} has {n} tool messages"));
        }
    }
    Ok(())
}

/// Anthropic's rules: the first message is from the user, roles alternate, and each
/// `tool_use` id has exactly one `tool_result` in the user message right after it, before any
/// other block; no `tool_result` answers an id the message before did not issue.
fn anthropic_check(req: &AnthropicRequest) -> Result<(), String> {
    let msgs = &req.messages;
    if msgs.first().map(|m| &m["role"]) != Some(&json!("user")) {
        return Err("the first message is not from the user".into());
    }
    for (i, pair) in msgs.windows(2).enumerate() {
        if pair[0]["role"] == pair[1]["role"] {
            return Err(format!("messages {i} and {} have one role", i + 1));
        }
    }
    let blocks = |m: &Value, ty: &str, key: &str| -> Vec<String> {
        m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == ty)
            .map(|b| b[key].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for (i, m) in msgs.iter().enumerate() {
        let results = blocks(m, "tool_result", "tool_use_id");
        let content = m["content"].as_array().cloned().unwrap_or_default();
        if content
            .iter()
            .skip(results.len())
            .any(|b| b["type"] == "tool_result")
        {
            return Err(format!("message {i}: a tool_result after another block"));
        }
        let asked = if i == 0 {
            Vec::new()
        } else {
            blocks(&msgs[i - 1], "tool_use", "id")
        };
        if let Some(r) = results.iter().find(|r| !asked.contains(r)) {
            return Err(format!(
                "message {i}: tool_result for {r} not asked just before"
            ));
        }
        let uses = blocks(m, "tool_use", "id");
        if uses.is_empty() {
            continue;
        }
        let next = msgs
            .get(i + 1)
            .map(|n| blocks(n, "tool_result", "tool_use_id"))
            .unwrap_or_default();
        for id in &uses {
            let n = next.iter().filter(|r| *r == id).count();
            if n != 1 {
                return Err(format!(
                    "message {i}: tool_use {id} has {n} results right after"
                ));
            }
        }
    }
    Ok(())
}

/// Both checks on both shapes of `session`.
fn check_both(session: &Session) -> (Result<(), String>, Result<(), String>) {
    let o = openai::chat_messages(session).unwrap();
    let a = anthropic::messages(session).unwrap();
    (openai_check(&o), anthropic_check(&a))
}

#[test]
fn a_session_killed_mid_tool_call_pairs_every_call_with_one_result_in_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    for line in [
        r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"tidy /tmp"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"Listing, then cleaning."},{"type":"tool_call","call_id":"c1","name":"ls","arguments":"{\"path\":\"/tmp\"}"},{"type":"tool_call","call_id":"c2","name":"rm","arguments":{"path":"/tmp/x"}}]}}"#,
        r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c2","event":"started"}}"#,
    ] {
        j.append_json(line).unwrap();
    }
    drop(j); // killed: no result for either call, the turn still open, no close

    let (j, _) = Journal::open(dir, opts()).unwrap();
    let before = j.session();
    assert_eq!(before.open_turn, Some(1));
    let (o, a) = check_both(&before);
    let o = o.expect_err("OpenAI: two calls without results must fail the check");
    let a = a.expect_err("Anthropic: two tool_use without results must fail the check");
    assert!(o.contains("c1") || o.contains("c2"), "{o}");
    assert!(a.contains("c1"), "{a}");
    assert_eq!(
        anthropic::messages(&before).unwrap().messages.len(),
        2,
        "user, assistant: nothing invented before the repair"
    );

    let repair = j.repair_dangling_tool_calls().unwrap();
    assert_eq!(repair.answered.len(), 2);
    let after = j.session();
    let (o, a) = check_both(&after);
    o.unwrap();
    a.unwrap();

    // OpenAI: the assistant message, then one tool message per call, in call order.
    let chat = openai::chat_messages(&after).unwrap();
    let roles: Vec<&str> = chat.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool"]);
    assert_eq!(
        chat[1]["tool_calls"],
        json!([
            {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\":\"/tmp\"}"}},
            {"id": "c2", "type": "function", "function": {"name": "rm", "arguments": "{\"path\":\"/tmp/x\"}"}},
        ])
    );
    assert_eq!(chat[1]["content"], "Listing, then cleaning.");
    for (m, id) in chat[2..].iter().zip(["c1", "c2"]) {
        assert_eq!(m["tool_call_id"], id);
        assert!(m["content"].as_str().unwrap().contains("aborted"), "{m}");
    }
    assert!(
        chat[3]["content"]
            .as_str()
            .unwrap()
            .contains("may have had its effect"),
        "the started call says it may have run"
    );

    // Anthropic: user, assistant (text + two tool_use), user (two error results).
    let req = anthropic::messages(&after).unwrap();
    assert_eq!(req.system, None);
    let roles: Vec<&str> = req
        .messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        req.messages[1]["content"][2],
        json!({"type": "tool_use", "id": "c2", "name": "rm", "input": {"path": "/tmp/x"}})
    );
    let results = req.messages[2]["content"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (b, id) in results.iter().zip(["c1", "c2"]) {
        assert_eq!(
            (&b["type"], &b["tool_use_id"], &b["is_error"]),
            (&json!("tool_result"), &json!(id), &json!(true))
        );
    }

    // Reopened again (as the next resume would), the shapes are the same.
    drop(j);
    let (j, _) = Journal::open(dir, opts()).unwrap();
    assert_eq!(openai::chat_messages(&j.session()).unwrap(), chat);
    assert_eq!(anthropic::messages(&j.session()).unwrap(), req);
    j.close().unwrap();
}

#[test]
fn a_stream_cut_inside_tool_call_arguments_resumes_in_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    for line in [
        r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"run ls"}]}}"#,
        r#"{"kind":"delta","turn":1,"body":{"message_id":"a1","index":0,"type":"thinking","text":"unsigned"}}"#,
        r#"{"kind":"delta","turn":1,"body":{"message_id":"a1","index":1,"type":"text","text":"Sure"}}"#,
        r#"{"kind":"delta","turn":1,"body":{"message_id":"a1","index":2,"type":"tool_call","call_id":"c1","name":"sh","arguments":"{\"cmd\":\"l"}}"#,
        r#"{"kind":"delta","turn":1,"body":{"message_id":"a1","index":3,"type":"tool_call","arguments":"{"}}"#,
    ] {
        j.append_json(line).unwrap();
    }
    drop(j);
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    let (o, a) = check_both(&j.session());
    assert!(
        o.is_err() && a.is_err(),
        "c1 is unanswered before the repair"
    );
    j.repair_dangling_tool_calls().unwrap();
    let s = j.session();
    let (o, a) = check_both(&s);
    o.unwrap();
    a.unwrap();

    let chat = openai::chat_messages(&s).unwrap();
    assert_eq!(
        chat[1],
        json!({"role": "assistant", "content": "Sure", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "sh", "arguments": "{\"cmd\":\"l"}}
        ]}),
        "truncated arguments as they were; the part with no call id dropped; thinking dropped"
    );
    let req = anthropic::messages(&s).unwrap();
    assert_eq!(
        req.messages[1]["content"],
        json!([
            {"type": "text", "text": "Sure"},
            {"type": "tool_use", "id": "c1", "name": "sh", "input": {}},
        ]),
        "unsigned thinking dropped, cut arguments as an empty input"
    );
}

/// As an Anthropic stream gives it: base64 with `+`, `/` and `=`, here written with a JSON
/// escape in the body so a re-encoding would show.
const SIGNATURE: &str = "EqQBCkgIARABGAIiQL+/u6bCH0lBUz+kxq9w3m/O1Vv+a8TnY2K3PbQe5F1Hn0JhZQ==";

#[test]
fn thinking_signature_is_kept_byte_for_byte_in_anthropic_and_dropped_in_openai() {
    // The body holds the signature with `+` written as `\u002b`: JSON-equal, other bytes.
    let escaped = SIGNATURE.replace('+', "\\u002b");
    let assistant = format!(
        r#"{{"kind":"message","turn":1,"body":{{"id":"a1","role":"assistant","parts":[{{"type":"thinking","thinking":"The user wants ls.\nRun it.","signature":"{escaped}"}},{{"type":"thinking","text":"from elsewhere, unsigned"}},{{"type":"redacted_thinking","data":"RZ9w=="}},{{"type":"tool_call","call_id":"c1","name":"ls","arguments":"{{}}"}}]}}}}"#
    );
    let (_tmp, j) = journal_with(&[
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"ls"}]}}"#,
        &assistant,
        r#"{"kind":"message","turn":1,"body":{"id":"t1","role":"tool","parts":[{"type":"tool_result","call_id":"c1","content":"a b"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a2","role":"assistant","parts":[{"type":"thinking","thinking":"done","signature":"c2ln"},{"type":"text","text":"a and b"}]}}"#,
    ]);
    let s = j.session();
    let req = anthropic::messages(&s).unwrap();
    let a1 = req.messages[1]["content"].as_array().unwrap();
    assert_eq!(
        a1[0],
        json!({"type": "thinking", "thinking": "The user wants ls.\nRun it.", "signature": SIGNATURE})
    );
    let sig = a1[0]["signature"].as_str().unwrap();
    assert_eq!(sig.as_bytes(), SIGNATURE.as_bytes());
    let wire = serde_json::to_string(&req).unwrap();
    assert!(
        wire.contains(&format!("\"signature\":\"{SIGNATURE}\"")),
        "on the wire too"
    );
    assert_eq!(
        a1[1],
        json!({"type": "redacted_thinking", "data": "RZ9w=="})
    );
    assert_eq!(
        a1[2]["type"], "tool_use",
        "the unsigned thinking is dropped"
    );
    assert_eq!(a1.len(), 3);
    assert_eq!(req.messages[3]["content"][0]["signature"], "c2ln");
    anthropic_check(&req).unwrap();

    let chat = openai::chat_messages(&s).unwrap();
    let text = serde_json::to_string(&chat).unwrap();
    assert!(!text.contains("thinking") && !text.contains("EqQB") && !text.contains("RZ9w"));
    assert_eq!(chat[1]["content"], Value::Null, "only tool calls left");
    assert_eq!(chat[3], json!({"role": "assistant", "content": "a and b"}));
    openai_check(&chat).unwrap();
}

#[test]
fn a_multi_turn_conversation_maps_to_both_shapes() {
    let (_tmp, j) = journal_with(&[
        r#"{"kind":"message","body":{"id":"s1","role":"system","parts":[{"type":"text","text":"Be terse."}]}}"#,
        r#"{"kind":"message","body":{"id":"d1","role":"developer","parts":[{"type":"text","text":"Use metric."}]}}"#,
        r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"What is in /tmp?"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"Looking."},{"type":"tool_call","call_id":"c1","name":"ls","arguments":{"path":"/tmp"}}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"t1","role":"tool","parts":[{"type":"tool_result","call_id":"c1","content":"a.txt\nb.txt","outcome":"done"}]}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a2","role":"assistant","parts":[{"type":"text","text":"Two files."}]}}"#,
        r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#,
        r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"u2","role":"user","parts":[{"type":"text","text":"Which is this?"},{"type":"image","url":"data:image/png;base64,iVBORw0KGgo="}]}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"u3","role":"user","parts":[{"type":"text","text":"And count lines."}]}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"a3","role":"assistant","parts":[{"type":"tool_call","call_id":"c2","name":"view","arguments":"{\"n\":1}"},{"type":"tool_call","call_id":"c3","name":"wc","arguments":""}]}}"#,
        // The user spoke before the results were written, and they came in the other order.
        r#"{"kind":"message","turn":2,"body":{"id":"u4","role":"user","parts":[{"type":"text","text":"Quick."}]}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"t3","role":"user","parts":[{"type":"tool_result","call_id":"c3","content":[{"type":"text","text":"3"}],"is_error":true},{"type":"tool_result","call_id":"c2","content":"a cat"}]}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"a4","role":"assistant","parts":[{"type":"text","text":"A cat; wc failed."}]}}"#,
        r#"{"kind":"turn","turn":2,"body":{"event":"completed"}}"#,
    ]);
    let s = j.session();
    let chat = openai::chat_messages(&s).unwrap();
    let want = json!([
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": "Use metric."},
        {"role": "user", "content": "What is in /tmp?"},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\":\"/tmp\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt\nb.txt"},
        {"role": "assistant", "content": "Two files."},
        {"role": "user", "content": [
            {"type": "text", "text": "Which is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "user", "content": "And count lines."},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "view", "arguments": "{\"n\":1}"}},
            {"id": "c3", "type": "function", "function": {"name": "wc", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "a cat"},
        {"role": "tool", "tool_call_id": "c3", "content": "3"},
        {"role": "user", "content": "Quick."},
        {"role": "assistant", "content": "A cat; wc failed."},
    ]);
    assert_eq!(Value::Array(chat.clone()), want);
    openai_check(&chat).unwrap();

    let req = anthropic::messages(&s).unwrap();
    assert_eq!(req.system.as_deref(), Some("Be terse.\n\nUse metric."));
    let want = json!([
        {"role": "user", "content": [{"type": "text", "text": "What is in /tmp?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "c1", "name": "ls", "input": {"path": "/tmp"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "a.txt\nb.txt", "is_error": false}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Two files."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Which is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "And count lines."}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "c2", "name": "view", "input": {"n": 1}},
            {"type": "tool_use", "id": "c3", "name": "wc", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c2", "content": "a cat", "is_error": false},
            {"type": "tool_result", "tool_use_id": "c3", "content": [{"type": "text", "text": "3"}], "is_error": true},
            {"type": "text", "text": "Quick."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat; wc failed."}]},
    ]);
    assert_eq!(Value::Array(req.messages.clone()), want);
    anthropic_check(&req).unwrap();
    let wire = serde_json::to_value(&req).unwrap();
    assert_eq!(wire["system"], "Be terse.\n\nUse metric.");
    assert_eq!(wire["messages"], want);
}

#[test]
fn only_the_active_context_is_sent() {
    let (_tmp, j) = journal_with(&[
        r#"{"kind":"message","body":{"id":"u0","role":"user","parts":[{"type":"text","text":"old"}]}}"#,
        r#"{"kind":"message","body":{"id":"a0","role":"assistant","parts":[{"type":"tool_call","call_id":"c0","name":"ls","arguments":"{}"}]}}"#,
        r#"{"kind":"message","body":{"id":"sum","role":"user","parts":[{"type":"text","text":"Summary: listed files."}]}}"#,
        r#"{"kind":"compaction","body":{"summary_message_id":"sum","through_seq":3}}"#,
        // The result of a call before the boundary: no call in the context asked for it.
        r#"{"kind":"message","body":{"id":"t0","role":"tool","parts":[{"type":"tool_result","call_id":"c0","content":"x"}]}}"#,
        r#"{"kind":"message","body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"ok"}]}}"#,
    ]);
    // Rewound past a wrong answer.
    let seq = j
        .append_json(r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[{"type":"text","text":"next"}]}}"#)
        .unwrap();
    j.append_json(r#"{"kind":"message","body":{"id":"bad","role":"assistant","parts":[{"type":"text","text":"wrong"}]}}"#)
        .unwrap();
    j.append_json(&format!(r#"{{"kind":"rewind","body":{{"to_seq":{seq}}}}}"#))
        .unwrap();
    let s = j.session();
    let chat = openai::chat_messages(&s).unwrap();
    assert_eq!(
        Value::Array(chat.clone()),
        json!([
            {"role": "user", "content": "Summary: listed files."},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "next"},
        ])
    );
    openai_check(&chat).unwrap();
    let req = anthropic::messages(&s).unwrap();
    assert_eq!(req.messages.len(), 3);
    anthropic_check(&req).unwrap();
}

#[test]
fn an_invalid_body_is_an_error_naming_the_message() {
    let (_tmp, j) = journal_with(&[
        r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[{"type":"text","text":"hi"}]}}"#,
        r#"{"kind":"message","body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"hello"}]}}"#,
    ]);
    let mut s = j.session();
    s.messages[1].body = "{\"id\":\"a1\",\"parts\":[".into();
    for err in [
        openai::chat_messages(&s).unwrap_err(),
        anthropic::messages(&s).unwrap_err(),
    ] {
        assert!(
            matches!(&err, ProviderError::InvalidBody { message_id, .. } if message_id == "a1"),
            "{err:?}"
        );
        assert_eq!(err.message_id(), "a1");
        let text = err.to_string();
        assert!(
            text.contains("\"a1\"") && text.contains("not valid JSON"),
            "{text}"
        );
    }
    s.messages[1].body = "[1, 2]".into();
    assert!(matches!(
        openai::chat_messages(&s),
        Err(ProviderError::InvalidBody { .. })
    ));
}

#[test]
fn a_part_missing_a_field_or_out_of_place_is_an_error_naming_message_and_field() {
    let cases: [(&str, &str, &str); 6] = [
        (
            r#"{"id":"m1","role":"user","parts":[{"type":"text","text":"ok"},{"type":"text"}]}"#,
            "m1",
            "parts[1].text",
        ),
        (
            r#"{"id":"m2","role":"assistant","parts":[{"type":"tool_call","call_id":"c","name":"n"}]}"#,
            "m2",
            "parts[0].arguments",
        ),
        (
            r#"{"id":"m3","role":"tool","parts":[{"type":"tool_result","call_id":"c"}]}"#,
            "m3",
            "parts[0].content",
        ),
        (
            r#"{"id":"m4","role":"tool","parts":[{"type":"tool_result","call_id":"c","content":"x","is_error":"yes"}]}"#,
            "m4",
            "parts[0].is_error",
        ),
        (
            r#"{"id":"m5","role":"assistant","parts":[{"type":"image","url":"https://x/y.png"}]}"#,
            "m5",
            "parts[0]",
        ),
        (
            r#"{"id":"m6","role":"user","parts":[{"type":"image"}]}"#,
            "m6",
            "parts[0].url",
        ),
    ];
    for (body, id, field) in cases {
        let (_tmp, j) = journal_with(&[&format!(r#"{{"kind":"message","body":{body}}}"#)]);
        let s = j.session();
        for err in [
            openai::chat_messages(&s).unwrap_err(),
            anthropic::messages(&s).unwrap_err(),
        ] {
            assert_eq!((err.message_id(), err.field()), (id, Some(field)), "{err}");
            let text = err.to_string();
            assert!(text.contains(id) && text.contains(field), "{text}");
        }
    }

    // Arguments that are not JSON in a complete message: Anthropic needs an object and says
    // so; OpenAI takes the string as it is.
    let (_tmp, j) = journal_with(&[
        r#"{"kind":"message","body":{"id":"u","role":"user","parts":[{"type":"text","text":"go"}]}}"#,
        r#"{"kind":"message","body":{"id":"a9","role":"assistant","parts":[{"type":"text","text":"x"},{"type":"tool_call","call_id":"c","name":"n","arguments":"{oops"}]}}"#,
    ]);
    let s = j.session();
    let err = anthropic::messages(&s).unwrap_err();
    assert_eq!(
        (err.message_id(), err.field()),
        ("a9", Some("parts[1].arguments"))
    );
    assert_eq!(
        openai::chat_messages(&s).unwrap()[1]["tool_calls"][0]["function"]["arguments"],
        "{oops"
    );
}
