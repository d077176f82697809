//! Import: one fixture per source format (tests/fixtures/import/), faithful to the public
//! formats, imported into a new journal and checked (messages, tool calls paired, thinking
//! signatures and encrypted reasoning byte for byte, usage totals, compaction); then exported
//! as OpenAI chat messages and as Anthropic Messages, the export imported again, and the two
//! sessions compared on everything the target format carries. Plus bad input: a broken line
//! in the middle is named, and nothing is created.
//!
//! What a target does not carry is excluded from the comparison, and only that (the list is
//! the one in `turnwal::provider`'s docs): for OpenAI chat, thinking of any kind, opaque
//! parts, images in tool results, `is_error`, the structure of tool-result content (its text
//! joined by newlines); for Anthropic, unsigned thinking, opaque parts, where system and
//! developer messages were (one `system` text), empty text, image `detail`. For both: message
//! ids and boundaries (Anthropic merges neighbours of one role, chat splits tool results into
//! their own messages), turns, usage, timestamps, metadata, and messages before the last
//! compaction (the export is the model context).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a failure must fail loudly"
)]

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;
use turnwal::import::{self, Format, ImportError, ParseOptions};
use turnwal::provider::{anthropic, openai};
use turnwal::{CompactionPolicy, Journal, Options, Session, SyncPolicy, ToolCallState, TurnState};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// Imports `text` into a new journal and reads the session back from disk.
fn import(format: Format, text: &str) -> (TempDir, Session, import::ImportReport) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("session");
    let report = import::import_into(&dir, format, text, opts())
        .unwrap_or_else(|e| panic!("importing {format}: {e}"));
    let view = Journal::open_read_only(&dir, &opts()).unwrap();
    assert_eq!(view.report.status, turnwal::Status::Clean);
    assert_eq!(report.last_seq, view.session.last_seq);
    (tmp, view.session, report)
}

fn body(s: &Session, id: &str) -> Value {
    let m = s
        .messages
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("no message {id}"));
    serde_json::from_str(&m.body).unwrap()
}

fn parts(s: &Session, id: &str) -> Vec<Value> {
    body(s, id)["parts"].as_array().cloned().unwrap_or_default()
}

fn meta(s: &Session, key: &str) -> Value {
    s.meta
        .get(key)
        .map(|v| serde_json::from_str(v).unwrap())
        .unwrap_or(Value::Null)
}

/// Every tool call is answered.
fn assert_calls_answered(s: &Session, want: usize) {
    assert_eq!(s.tool_calls.len(), want, "{:#?}", s.tool_calls);
    for c in &s.tool_calls {
        assert!(
            matches!(c.state, ToolCallState::Answered { .. }),
            "call {} ({}) is {:?}",
            c.call_id,
            c.name,
            c.state
        );
        assert!(!c.name.is_empty() && !c.message_id.is_empty(), "{c:?}");
    }
}

/// (calls, input, cache_read, cache_write, output, reasoning) over the session.
fn totals(s: &Session) -> (u64, u64, u64, u64, u64, u64) {
    let t = &s.usage_total;
    (
        t.calls,
        t.input,
        t.cache_read,
        t.cache_write,
        t.output,
        t.reasoning,
    )
}

// ---------------------------------------------------------------------------------------
// What each target carries, as a flat stream of atoms in conversation order.

#[derive(Debug, Clone, PartialEq)]
enum Atom {
    /// Text of a message of this role.
    Text(String, String),
    /// An image in a user message: its URL (chat) or its source (Anthropic).
    Image(Value),
    /// A tool call: id, name, arguments as JSON.
    Call(String, String, Value),
    /// A tool result: call id, content as the target holds it, is_error (Anthropic only).
    Result(String, Value, Option<bool>),
    /// Signed thinking: text and signature (Anthropic only).
    Thinking(String, String),
    /// Redacted thinking data (Anthropic only).
    Redacted(String),
}

fn args(v: &Value) -> Value {
    match v {
        Value::String(s) if s.trim().is_empty() => json!({}),
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    }
}

fn image_url(p: &Value) -> String {
    if let Some(u) = p["url"].as_str() {
        return u.to_string();
    }
    let src = &p["source"];
    match src["type"].as_str() {
        Some("base64") => format!(
            "data:{};base64,{}",
            src["media_type"].as_str().unwrap(),
            src["data"].as_str().unwrap()
        ),
        Some("url") => src["url"].as_str().unwrap().to_string(),
        other => panic!("image source {other:?}"),
    }
}

fn image_source(p: &Value) -> Value {
    if p["source"].is_object() {
        return p["source"].clone();
    }
    let url = p["url"].as_str().unwrap();
    match url
        .strip_prefix("data:")
        .and_then(|r| r.split_once(";base64,"))
    {
        Some((media_type, data)) => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        None => json!({"type": "url", "url": url}),
    }
}

/// Tool-result content as a chat tool message holds it: text, items joined by newlines,
/// images dropped.
fn chat_text(c: &Value) -> Value {
    Value::String(match c {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                    Some("text") => o["text"].as_str().map(str::to_string),
                    Some("image") => None,
                    _ => Some(i.to_string()),
                },
                other => Some(other.to_string()),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    })
}

/// Tool-result content as Anthropic blocks: non-empty text and images (by source).
fn anthropic_blocks(c: &Value) -> Value {
    let mut out = Vec::new();
    match c {
        Value::String(s) if !s.is_empty() => out.push(json!({"text": s})),
        Value::Array(items) => {
            for i in items {
                match i {
                    Value::String(s) if !s.is_empty() => out.push(json!({"text": s})),
                    Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            let t = o["text"].as_str().unwrap();
                            if !t.is_empty() {
                                out.push(json!({"text": t}));
                            }
                        }
                        Some("image") => out.push(json!({"image": image_source(i)})),
                        _ => out.push(json!({"text": i.to_string()})),
                    },
                    Value::String(_) => {}
                    other => out.push(json!({"text": other.to_string()})),
                }
            }
        }
        _ => {}
    }
    Value::Array(out)
}

/// What OpenAI chat carries of the session's context.
fn carried_by_chat(s: &Session) -> Vec<Atom> {
    let mut out = Vec::new();
    for m in s.context() {
        let b: Value = serde_json::from_str(&m.body).unwrap();
        let role = m.role.as_str().to_string();
        for p in b["parts"].as_array().into_iter().flatten() {
            match p["type"].as_str() {
                Some("text") => {
                    out.push(Atom::Text(role.clone(), p["text"].as_str().unwrap().into()))
                }
                Some("image") => out.push(Atom::Image(Value::String(image_url(p)))),
                Some("tool_call") => out.push(Atom::Call(
                    p["call_id"].as_str().unwrap().into(),
                    p["name"].as_str().unwrap().into(),
                    args(&p["arguments"]),
                )),
                Some("tool_result") => out.push(Atom::Result(
                    p["call_id"].as_str().unwrap().into(),
                    chat_text(&p["content"]),
                    None,
                )),
                // Not carried: thinking, redacted thinking, opaque parts.
                _ => {}
            }
        }
    }
    out
}

/// What Anthropic Messages carries of the session's context.
fn carried_by_anthropic(s: &Session) -> Vec<Atom> {
    let mut system: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for m in s.context() {
        let b: Value = serde_json::from_str(&m.body).unwrap();
        let role = m.role.as_str();
        let ps = b["parts"].as_array().cloned().unwrap_or_default();
        if matches!(role, "system" | "developer") {
            let texts: Vec<&str> = ps
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .filter(|t| !t.is_empty())
                .collect();
            if !texts.is_empty() {
                system.push(texts.join("\n"));
            }
            continue;
        }
        for p in &ps {
            match p["type"].as_str() {
                Some("text") => {
                    let t = p["text"].as_str().unwrap();
                    if !t.is_empty() {
                        out.push(Atom::Text(role.into(), t.into()));
                    }
                }
                Some("image") => out.push(Atom::Image(image_source(p))),
                Some("tool_call") => out.push(Atom::Call(
                    p["call_id"].as_str().unwrap().into(),
                    p["name"].as_str().unwrap().into(),
                    args(&p["arguments"]),
                )),
                Some("tool_result") => out.push(Atom::Result(
                    p["call_id"].as_str().unwrap().into(),
                    anthropic_blocks(&p["content"]),
                    Some(p["is_error"].as_bool().unwrap_or(false)),
                )),
                Some("thinking") => {
                    if let Some(sig) = p["signature"].as_str() {
                        let text = p["thinking"].as_str().or(p["text"].as_str()).unwrap();
                        out.push(Atom::Thinking(text.into(), sig.into()));
                    }
                }
                Some("redacted_thinking") => {
                    out.push(Atom::Redacted(p["data"].as_str().unwrap().into()));
                }
                _ => {}
            }
        }
    }
    if !system.is_empty() {
        out.insert(0, Atom::Text("system".into(), system.join("\n\n")));
    }
    out
}

/// Export as chat messages → import → export again: the same export, and the same session on
/// everything chat carries.
fn chat_round_trip(original: &Session) -> Session {
    let exported = openai::chat_messages(original).unwrap();
    let text = serde_json::to_string_pretty(&exported).unwrap();
    let (_tmp, back, _) = import(Format::OpenAiChat, &text);
    assert_eq!(
        openai::chat_messages(&back).unwrap(),
        exported,
        "chat export is not a fixed point"
    );
    assert_eq!(carried_by_chat(&back), carried_by_chat(original));
    assert!(!carried_by_chat(original).is_empty());
    back
}

/// Export as an Anthropic request → import → export again: the same export, and the same
/// session on everything Anthropic carries.
fn anthropic_round_trip(original: &Session) -> Session {
    let exported = anthropic::messages(original).unwrap();
    let text = serde_json::to_string_pretty(&exported).unwrap();
    let (_tmp, back, _) = import(Format::AnthropicMessages, &text);
    assert_eq!(
        anthropic::messages(&back).unwrap(),
        exported,
        "anthropic export is not a fixed point"
    );
    assert_eq!(carried_by_anthropic(&back), carried_by_anthropic(original));
    assert!(!carried_by_anthropic(original).is_empty());
    back
}

fn round_trips(s: &Session) {
    let chat = chat_round_trip(s);
    let claude = anthropic_round_trip(s);
    // Across targets too: what both carry survives chat → Anthropic and back.
    assert_eq!(
        carried_by_anthropic(&anthropic_round_trip(&chat)),
        carried_by_anthropic(&chat)
    );
    assert_eq!(
        carried_by_chat(&chat_round_trip(&claude)),
        carried_by_chat(&claude)
    );
}

// ---------------------------------------------------------------------------------------
// The five fixtures.

#[test]
fn openai_chat_fixture() {
    let text = fixture("openai_chat.jsonl");
    assert_eq!(import::detect(&text), Some(Format::OpenAiChat));
    let (_tmp, s, report) = import(Format::OpenAiChat, &text);
    assert_eq!(s.messages.len(), 10);
    assert_eq!(report.messages, 10);
    assert_calls_answered(&s, 3);
    assert_eq!(report.tool_calls, 3);
    // Usage: one record per chat.completion, prompt tokens include the cached ones.
    assert_eq!(totals(&s), (4, 6462, 4480, 0, 196, 0));
    assert!(s.usage_by_model.contains_key("gpt-4o-2024-08-06"));
    assert_eq!(meta(&s, "source")["format"], "openai-chat");
    // Ids kept: the completion id is the assistant message id; call ids as sent.
    let first = parts(&s, "chatcmpl-AZx8fQ2mVh3kL9TQe5r1WnGd0pYsB");
    assert_eq!(first[0]["call_id"], "call_Vq2dZkYh8Jw3XnR5tLm0aPcE");
    assert_eq!(
        first[0]["arguments"],
        "{\"flight\":\"LH 401\",\"date\":\"2024-11-21\"}"
    );
    // Images: the data URL and the https URL, each with its detail.
    let user = parts(&s, "chat-2");
    assert_eq!(
        user[1]["url"]
            .as_str()
            .map(|u| u.starts_with("data:image/png;base64,iVBOR")),
        Some(true)
    );
    assert_eq!(user[1]["detail"], "high");
    assert_eq!(
        user[2],
        json!({"type": "image", "url": "https://images.example.com/gates/FRA-A26.jpg", "detail": "low"})
    );
    assert_eq!(body(&s, "chat-7")["name"], "traveller_42");
    assert_eq!(s.turns.len(), 2);
    assert!(s.turns.iter().all(|t| t.state == TurnState::Completed));
    round_trips(&s);
    // The chat export is the fixture's conversation: same roles, tool ids and contents.
    let exported = openai::chat_messages(&s).unwrap();
    assert_eq!(exported.len(), 10);
    assert_eq!(exported[6]["name"], "traveller_42");
}

#[test]
fn openai_responses_fixture() {
    let text = fixture("openai_responses.json");
    assert_eq!(import::detect(&text), Some(Format::OpenAiResponses));
    let (_tmp, s, _) = import(Format::OpenAiResponses, &text);
    // developer, user, response, tool, response, user, response, tool, response.
    assert_eq!(s.messages.len(), 9);
    assert_calls_answered(&s, 2);
    assert_eq!(totals(&s), (4, 9898, 6784, 0, 877, 640));
    // A response's output is one assistant message, id the response id, reasoning first with
    // its encrypted content byte for byte.
    let r1 = parts(&s, "resp_67c8a1f04e2c8190a2b6f1d85e0c4b3a");
    assert_eq!(r1.len(), 2);
    assert_eq!(r1[0]["type"], "thinking");
    assert_eq!(r1[0]["id"], "rs_67c8a1f1b9a48190bd3c0c2f0e7b9d11");
    let src: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        r1[0]["encrypted_content"],
        src[2]["output"][0]["encrypted_content"]
    );
    assert!(
        r1[0].get("signature").is_none(),
        "no Anthropic signature may be invented"
    );
    assert_eq!(r1[1]["type"], "tool_call");
    assert_eq!(r1[1]["call_id"], "call_R4nd0mQ7vXk2LmPzT9aWcE1b");
    assert_eq!(r1[1]["arguments"], src[2]["output"][1]["arguments"]);
    // created_at is the ts of the response's events.
    let view = Journal::open_read_only(_tmp.path().join("session"), &opts()).unwrap();
    let (_, e) = view
        .events
        .iter()
        .find(|(_, e)| matches!(&e.kind, turnwal::Kind::Usage(u) if u.call_key == "resp_67c8a1f04e2c8190a2b6f1d85e0c4b3a"))
        .unwrap();
    assert_eq!(e.ts_ms, 1_741_201_904_000);
    round_trips(&s);
}

#[test]
fn anthropic_fixture() {
    let text = fixture("anthropic_messages.json");
    assert_eq!(import::detect(&text), Some(Format::AnthropicMessages));
    let (_tmp, s, _) = import(Format::AnthropicMessages, &text);
    // system, user, assistant, user (results), assistant, user, assistant.
    assert_eq!(s.messages.len(), 7);
    assert_calls_answered(&s, 2);
    // input.total counts cache reads and writes; Anthropic's input_tokens does not.
    assert_eq!(totals(&s), (3, 13767, 8102, 2148, 820, 0));
    let src: Value = serde_json::from_str(&text).unwrap();
    // Thinking signatures and redacted data byte for byte, in the session and in the export.
    let a1 = parts(&s, "msg_01JzV7c3kQwXb9yTn4RfMe2a");
    assert_eq!(a1[0], src["messages"][1]["content"][0]);
    let a2 = parts(&s, "msg_01Kq2Wd8nRy5Vt3Lm7PxZc9b");
    assert_eq!(a2[0], src["messages"][3]["content"][0]);
    assert_eq!(a2[1], src["messages"][3]["content"][1]);
    let exported = anthropic::messages(&s).unwrap();
    assert_eq!(
        exported.messages[1]["content"][0],
        src["messages"][1]["content"][0]
    );
    assert_eq!(
        exported.messages[3]["content"][0],
        src["messages"][3]["content"][0]
    );
    assert_eq!(
        exported.messages[3]["content"][1],
        src["messages"][3]["content"][1]
    );
    // The error result keeps is_error; the other keeps its text and image blocks.
    let results = parts(&s, "anthropic-3");
    assert_eq!(results[1]["is_error"], true);
    assert_eq!(
        results[0]["content"],
        src["messages"][2]["content"][0]["content"]
    );
    // Images: base64 and URL sources verbatim.
    let user = parts(&s, "anthropic-1");
    assert_eq!(user[1], src["messages"][0]["content"][1]);
    assert_eq!(user[2], src["messages"][0]["content"][2]);
    assert_eq!(meta(&s, "model"), "claude-sonnet-4-5-20250929");
    round_trips(&s);
}

/// The usage of a Claude Code file summed line by line, as a naive reader would: every
/// content-block line repeats its message's usage.
fn claude_code_naive_output(text: &str) -> (u64, u64) {
    let mut lines = 0;
    let mut output = 0;
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if let Some(u) = v["message"]["usage"].as_object() {
            lines += 1;
            output += u["output_tokens"].as_u64().unwrap();
        }
    }
    (lines, output)
}

#[test]
fn claude_code_fixture() {
    let text = fixture("claude_code.jsonl");
    assert_eq!(import::detect(&text), Some(Format::ClaudeCode));
    let (tmp, s, report) = import(Format::ClaudeCode, &text);
    // The four lines of msg_01XFDUDY... are one message: thinking, text and two tool calls.
    let a = parts(&s, "msg_01XFDUDYJgAACzvnptvVoYEL");
    let types: Vec<&str> = a.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["thinking", "text", "tool_call", "tool_call"]);
    assert_eq!(
        body(&s, "msg_01XFDUDYJgAACzvnptvVoYEL")["source"]["uuids"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    // The signature byte for byte, in the session and in the Anthropic export.
    let src: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let thinking = &src[2]["message"]["content"][0];
    assert_eq!(thinking["type"], "thinking");
    assert_eq!(a[0], *thinking);
    // 16 messages of the main conversation; the sub-agent's two lines are not among them.
    assert_eq!(s.messages.len(), 16);
    assert_eq!(report.ignored.get("sidechain"), Some(&2));
    assert_eq!(report.ignored.get("file-history-snapshot"), Some(&1));
    assert_calls_answered(&s, 5);
    // Usage counted once per message and request: 8 model calls (7 in the conversation, 1 of
    // the sub-agent), although 12 lines carry a usage.
    let (naive_calls, naive_output) = claude_code_naive_output(&text);
    assert_eq!((naive_calls, naive_output), (12, 2878));
    assert_eq!(totals(&s), (8, 77880, 69144, 6857, 1374, 0));
    assert_ne!(s.usage_total.output, naive_output);
    // Compaction: the summary line starts the model context.
    let summary = "d6a5f8e7-3b9a-4e0d-8a6f-8f7b2c3d4e56";
    assert_eq!(s.context_start.as_deref(), Some(summary));
    let context: Vec<&str> = s.context().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(context.len(), 5);
    assert_eq!(context[0], summary);
    assert_eq!(body(&s, summary)["compact_summary"], true);
    let view = Journal::open_read_only(tmp.path().join("session"), &opts()).unwrap();
    let compaction = view
        .events
        .iter()
        .find_map(|(_, e)| match &e.kind {
            turnwal::Kind::Compaction {
                summary_message_id,
                through_seq,
                reason,
            } => Some((summary_message_id.clone(), *through_seq, reason.clone())),
            _ => None,
        })
        .unwrap();
    let summary_seq = s
        .messages
        .iter()
        .find(|m| m.id == summary)
        .unwrap()
        .first_seq;
    assert_eq!(
        compaction,
        (summary.to_string(), summary_seq - 1, Some("manual".into()))
    );
    // Metadata and timestamps from the file.
    assert_eq!(meta(&s, "title"), "Fix ISO offset minutes in date parser");
    assert_eq!(
        meta(&s, "source")["session_id"],
        "7f3c2a91-4b6e-4d2a-9c1f-5e8b0d7a6c34"
    );
    assert_eq!(
        report.source_session_id.as_deref(),
        Some("7f3c2a91-4b6e-4d2a-9c1f-5e8b0d7a6c34")
    );
    let first_user = view
        .events
        .iter()
        .find(|(_, e)| matches!(&e.kind, turnwal::Kind::Message(m) if m.id == "0b6e1f52-3c1a-4a8e-9f63-2d5b7c9e1a04"))
        .unwrap();
    let want = turnwal::event::parse_ts(src[1]["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(first_user.1.ts_ms, want);
    assert_eq!(s.turns.len(), 3);
    round_trips(&s);
}

#[test]
fn codex_fixture() {
    let text = fixture("codex_rollout.jsonl");
    assert_eq!(import::detect(&text), Some(Format::Codex));
    let (_tmp, s, report) = import(Format::Codex, &text);
    assert_eq!(s.messages.len(), 13);
    // shell (function_call), apply_patch (custom_tool_call), local_shell_call.
    assert_calls_answered(&s, 3);
    let names: Vec<&str> = s.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["shell", "apply_patch", "local_shell"]);
    // Usage: last_token_usage of each token_count, the repeated one ignored: the session total
    // is the rollout's last total_token_usage.
    let src: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last_total = src
        .iter()
        .rev()
        .find(|l| l["payload"]["type"] == "token_count")
        .map(|l| l["payload"]["info"]["total_token_usage"].clone())
        .unwrap();
    assert_eq!(
        totals(&s),
        (
            5,
            last_total["input_tokens"].as_u64().unwrap(),
            last_total["cached_input_tokens"].as_u64().unwrap(),
            0,
            last_total["output_tokens"].as_u64().unwrap(),
            last_total["reasoning_output_tokens"].as_u64().unwrap(),
        )
    );
    assert_eq!(totals(&s), (5, 22302, 16128, 0, 1256, 704));
    assert_eq!(
        report.ignored.get("event_msg:token_count (repeated)"),
        Some(&1)
    );
    assert!(s.usage_by_model.contains_key("gpt-5-codex"));
    // Reasoning and the call of one response are one assistant message; the encrypted
    // reasoning byte for byte.
    let first = parts(&s, "codex-7");
    assert_eq!(
        first[0]["encrypted_content"],
        src[6]["payload"]["encrypted_content"]
    );
    assert_eq!(first[1]["call_id"], "call_kQ3m8ZpR2xV7nT1yL5wA9cE4");
    // The custom tool's free-form input is kept, and wrapped as JSON arguments.
    let patch = parts(&s, "codex-14");
    assert_eq!(patch[1]["input"], src[14]["payload"]["input"]);
    assert_eq!(
        args(&patch[1]["arguments"])["input"],
        src[14]["payload"]["input"]
    );
    // Compaction: the summary starts the context.
    assert_eq!(s.context_start.as_deref(), Some("codex-22"));
    assert_eq!(
        parts(&s, "codex-22")[0]["text"],
        src[21]["payload"]["message"]
    );
    assert_eq!(s.context().len(), 6);
    // The last turn was aborted by the user.
    assert_eq!(
        s.turns.last().map(|t| (t.state, t.reason.clone())),
        Some((TurnState::Aborted, Some("interrupted".into())))
    );
    assert_eq!(
        meta(&s, "source")["session_id"],
        "0199f1c2-7a3b-7d41-9e2a-5b8c6d4e3f21"
    );
    assert_eq!(meta(&s, "git")["branch"], "main");
    round_trips(&s);
}

// ---------------------------------------------------------------------------------------
// Bad input.

#[test]
fn a_broken_line_in_the_middle_is_named_and_nothing_is_created() {
    let text = fixture("claude_code_bad_line.jsonl");
    let err = import::parse(Format::ClaudeCode, &text).unwrap_err();
    assert_eq!(err.line(), Some(6), "{err}");
    assert!(err.is_bad_input());
    assert!(
        err.to_string().starts_with("line 6: not valid JSON"),
        "{err}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let err = import::import_into(&dir, Format::ClaudeCode, &text, opts()).unwrap_err();
    assert_eq!(err.line(), Some(6));
    assert!(!dir.exists(), "a refused import creates nothing");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no stray build directory"
    );
    // Skipping is explicit, and the skipped line is listed.
    let lenient = import::parse_with(
        Format::ClaudeCode,
        &text,
        &ParseOptions {
            skip_bad_lines: true,
        },
    )
    .unwrap();
    assert_eq!(lenient.skipped.len(), 1);
    assert_eq!(lenient.skipped[0].line, 6);
    let report = import::import_parsed(&dir, &lenient, opts()).unwrap();
    assert_eq!(report.skipped, lenient.skipped);
    assert!(report.messages > 0);
}

#[test]
fn codex_bad_line_is_named() {
    let text = fixture("codex_rollout.jsonl");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[14] = r#"{"timestamp":"2025-10-16T18:20:48.000Z","type":"response_item","payload":{"type":"function_call","name":"shell"}}"#;
    let broken = lines.join("\n");
    let err = import::parse(Format::Codex, &broken).unwrap_err();
    assert_eq!(err.line(), Some(15), "{err}");
    assert!(err.to_string().contains("call_id"), "{err}");
    lines[14] = "{\"timestamp\":\"2025-10-16T18:20:48.000Z\",\"type\":\"respo";
    let err = import::parse(Format::Codex, &lines.join("\n")).unwrap_err();
    assert_eq!(err.line(), Some(15), "{err}");
    lines[14] =
        r#"{"timestamp":"yesterday","type":"event_msg","payload":{"type":"agent_message"}}"#;
    let err = import::parse(Format::Codex, &lines.join("\n")).unwrap_err();
    assert_eq!(err.line(), Some(15), "{err}");
    assert!(err.to_string().contains("timestamp"), "{err}");
}

#[test]
fn a_bad_element_of_a_json_document_is_named_by_its_line() {
    let text = fixture("openai_responses.json");
    // The second function_call_output loses its call_id.
    let target = text
        .find("\"call_id\": \"call_Ch4rtK9pQ2wE7rT1yU5iO3pA\",\n    \"output\"")
        .unwrap();
    let broken = format!(
        "{}\"id\": \"x\",{}",
        &text[..target],
        &text[target + "\"call_id\": \"call_Ch4rtK9pQ2wE7rT1yU5iO3pA\",".len()..]
    );
    let err = import::parse(Format::OpenAiResponses, &broken).unwrap_err();
    // The element starts on the line of its `{`.
    let brace = text[..target].rfind('{').unwrap();
    let element_line = text[..brace].matches('\n').count() + 1;
    assert_eq!(text.lines().nth(element_line - 1).map(str::trim), Some("{"));
    assert_eq!(err.line(), Some(element_line), "{err}");
    // A syntax error in a document names the line serde stopped at.
    let cut = text.replacen(
        "\"created_at\": 1741201910,",
        "\"created_at\": 1741201910,,",
        1,
    );
    let err = import::parse(Format::OpenAiResponses, &cut).unwrap_err();
    let want = cut.lines().position(|l| l.contains(",,")).unwrap() + 1;
    assert_eq!(err.line(), Some(want), "{err}");
}

#[test]
fn bad_messages_are_refused_with_their_reason() {
    let cases: &[(Format, &str, usize, &str)] = &[
        (
            Format::OpenAiChat,
            "{\"role\":\"user\",\"content\":\"hi\"}\n\"just a string\"\n",
            2,
            "expected a message object",
        ),
        (
            Format::OpenAiChat,
            "{\"role\":\"user\",\"content\":\"hi\"}\n\n{\"role\":\"wizard\",\"content\":\"x\"}\n",
            3,
            "unknown role",
        ),
        (
            Format::OpenAiChat,
            "{\"role\":\"tool\",\"content\":\"x\"}",
            1,
            "tool_call_id",
        ),
        (
            Format::AnthropicMessages,
            "{\"role\":\"user\",\"content\":\"hi\"}\n{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"name\":\"x\",\"input\":{}}]}\n",
            2,
            "tool_use needs",
        ),
        (
            Format::ClaudeCode,
            "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hi\"}}\n{\"type\":\"assistant\"}\n",
            2,
            "message",
        ),
        (
            Format::Codex,
            "{\"timestamp\":\"2025-10-16T18:20:00Z\",\"type\":\"mystery\",\"payload\":{}}",
            1,
            "unknown rollout line type",
        ),
    ];
    for (format, text, line, reason) in cases {
        let err = import::parse(*format, text).unwrap_err();
        assert_eq!(err.line(), Some(*line), "{format}: {err}");
        assert!(err.to_string().contains(reason), "{format}: {err}");
    }
    // Nothing to import is not a success either.
    let err = import::parse(Format::Codex, "\n\n").unwrap_err();
    assert!(matches!(err, ImportError::Input(_)), "{err}");
    let err = import::parse(
        Format::ClaudeCode,
        "{\"type\":\"summary\",\"summary\":\"t\",\"leafUuid\":\"u\"}\n",
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Input(_)), "{err}");
}

#[test]
fn import_refuses_an_existing_journal_or_a_non_empty_directory() {
    let text = fixture("openai_chat.jsonl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    import::import_into(&dir, Format::OpenAiChat, &text, opts()).unwrap();
    let before = Journal::open_read_only(&dir, &opts()).unwrap().session;
    let err = import::import_into(&dir, Format::OpenAiChat, &text, opts()).unwrap_err();
    assert!(matches!(err, ImportError::Exists(_)), "{err}");
    assert_eq!(
        Journal::open_read_only(&dir, &opts()).unwrap().session,
        before
    );
    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    import::import_into(&empty, Format::OpenAiChat, &text, opts()).unwrap();
    assert_eq!(
        Journal::open_read_only(&empty, &opts())
            .unwrap()
            .session
            .messages
            .len(),
        10
    );
}

// ---------------------------------------------------------------------------------------
// Other shapes of the same formats.

#[test]
fn claude_code_edited_prompt_rewinds_the_abandoned_branch() {
    let line = |uuid: &str, parent: Option<&str>, ty: &str, message: Value| {
        json!({"parentUuid": parent, "isSidechain": false, "sessionId": "s1", "type": ty, "message": message, "uuid": uuid, "timestamp": "2025-10-14T09:00:00.000Z"}).to_string()
    };
    let asst = |id: &str, text: &str| json!({"id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": text}], "usage": {"input_tokens": 10, "output_tokens": 5}});
    let text = [
        line(
            "u1",
            None,
            "user",
            json!({"role": "user", "content": "first question"}),
        ),
        line("a1", Some("u1"), "assistant", asst("msg_1", "first answer")),
        line(
            "u2",
            Some("a1"),
            "user",
            json!({"role": "user", "content": "a follow-up I regret"}),
        ),
        line(
            "a2",
            Some("u2"),
            "assistant",
            asst("msg_2", "an answer to it"),
        ),
        // Edited: sent again from after a1.
        line(
            "u3",
            Some("a1"),
            "user",
            json!({"role": "user", "content": "the better follow-up"}),
        ),
        line(
            "a3",
            Some("u3"),
            "assistant",
            asst("msg_3", "a better answer"),
        ),
    ]
    .join("\n");
    let (_tmp, s, _) = import(Format::ClaudeCode, &text);
    let active: Vec<&str> = s.context().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(active, ["u1", "msg_1", "u3", "msg_3"]);
    assert_eq!(
        s.messages.len(),
        6,
        "the abandoned branch stays in the history"
    );
    assert_eq!(s.usage_total.calls, 3);
}

#[test]
fn other_shapes_of_each_format() {
    // A chat request object.
    let req = json!({"model": "gpt-4.1", "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]});
    assert_eq!(import::detect(&req.to_string()), Some(Format::OpenAiChat));
    let i = import::parse(
        Format::OpenAiChat,
        &serde_json::to_string_pretty(&req).unwrap(),
    )
    .unwrap();
    assert_eq!(i.messages, 3);
    assert_eq!(
        i.events.iter().map(|e| e.line).filter(|l| *l > 0).min(),
        Some(3)
    );
    // One Anthropic response object.
    let resp = json!({"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}});
    assert_eq!(
        import::detect(&resp.to_string()),
        Some(Format::AnthropicMessages)
    );
    let (_tmp, s, _) = import(Format::AnthropicMessages, &resp.to_string());
    assert_eq!((s.messages.len(), s.usage_total.calls), (1, 1));
    // A Responses request with instructions and a string input, then its response.
    let text = [
        json!({"model": "gpt-5", "instructions": "Answer in French.", "input": "Hello?"}).to_string(),
        json!({"id": "resp_1", "object": "response", "created_at": 1741201904, "model": "gpt-5", "output": [{"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "Bonjour ?", "annotations": []}]}], "usage": {"input_tokens": 12, "output_tokens": 4}}).to_string(),
    ]
    .join("\n");
    assert_eq!(import::detect(&text), Some(Format::OpenAiResponses));
    let (_tmp, s, _) = import(Format::OpenAiResponses, &text);
    let ids: Vec<&str> = s.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["instructions", "resp-1", "resp_1"]);
    // The older Codex layout: a bare first line, bare items, state records.
    let legacy = [
        json!({"id": "5973b6c0-94b8-487b-a530-2aeb6098ae0e", "timestamp": "2025-04-23T21:12:31.000Z", "instructions": null}).to_string(),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}).to_string(),
        json!({"record_type": "state"}).to_string(),
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}).to_string(),
    ]
    .join("\n");
    assert_eq!(import::detect(&legacy), Some(Format::Codex));
    let i = import::parse(Format::Codex, &legacy).unwrap();
    assert_eq!(i.messages, 2);
    assert_eq!(
        i.source_session_id.as_deref(),
        Some("5973b6c0-94b8-487b-a530-2aeb6098ae0e")
    );
}

#[test]
fn formats_have_stable_names() {
    for f in Format::ALL {
        assert_eq!(Format::from_name(f.name()), Some(f));
        assert_eq!(f.name().parse::<Format>(), Ok(f));
    }
    assert!("jsonl".parse::<Format>().is_err());
}

// ---------------------------------------------------------------------------------------
// The command line.

fn turnwal(args: &[&str], stdin: Option<&str>) -> (u8, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        // A command that refuses before reading stdin closes it: not a test failure.
        let _ = input.write_all(s.as_bytes());
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1) as u8,
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn cli_import_json_human_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/codex_rollout.jsonl");
    let dir = tmp.path().join("codex");
    let (code, out, err) = turnwal(
        &[
            "import",
            dir.to_str().unwrap(),
            "--from",
            "codex",
            file.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["format"], "codex");
    assert_eq!(doc["messages"], 13);
    assert_eq!(doc["tool_calls"], 3);
    assert_eq!(doc["skipped"], json!([]));
    assert!(doc["session"].as_str().is_some_and(|s| s.len() == 32));
    assert!(doc["events"].as_u64().is_some_and(|n| n > 13));
    // Auto-detection from stdin, human output.
    let dir2 = tmp.path().join("claude");
    let text = fixture("claude_code.jsonl");
    let (code, out, err) = turnwal(&["import", dir2.to_str().unwrap(), "-"], Some(&text));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("format") && l.ends_with("claude-code")),
        "{out}"
    );
    // An existing journal: exit 2.
    let (code, _, err) = turnwal(
        &[
            "import",
            dir2.to_str().unwrap(),
            "--from",
            "claude-code",
            "-",
        ],
        Some(&text),
    );
    assert_eq!(code, 2, "{err}");
    // A bad line: exit 1, the line named, nothing created.
    let dir3 = tmp.path().join("bad");
    let bad = fixture("claude_code_bad_line.jsonl");
    let (code, _, err) = turnwal(
        &["import", dir3.to_str().unwrap(), "--from", "claude-code"],
        Some(&bad),
    );
    assert_eq!(code, 1);
    assert!(err.contains("line 6"), "{err}");
    assert!(!dir3.exists());
    // Skipping bad lines: imported, listed, still exit 1.
    let (code, out, _) = turnwal(
        &[
            "import",
            dir3.to_str().unwrap(),
            "--from",
            "claude-code",
            "--skip-bad-lines",
            "--json",
        ],
        Some(&bad),
    );
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["skipped"][0]["line"], 6);
    assert!(dir3.exists());
}

#[test]
fn each_targets_own_parts_survive_its_round_trip() {
    // Chat's audio and file parts, in a user message.
    let chat = json!([
        {"role": "user", "content": [
            {"type": "text", "text": "Transcribe this and summarise the attached contract."},
            {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEA", "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}}
        ]},
        {"role": "assistant", "content": "Here is the summary.", "refusal": null}
    ]);
    let (_tmp, s, _) = import(Format::OpenAiChat, &chat.to_string());
    let exported = openai::chat_messages(&s).unwrap();
    assert_eq!(exported[0]["content"], chat[0]["content"]);
    chat_round_trip(&s);
    // Anthropic's document blocks.
    let req = json!({"messages": [
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}, "title": "contract.pdf"},
            {"type": "text", "text": "Summarise this."}
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is a lease."}]}
    ]});
    let (_tmp, s, _) = import(Format::AnthropicMessages, &req.to_string());
    let exported = anthropic::messages(&s).unwrap();
    assert_eq!(
        exported.messages[0]["content"],
        req["messages"][0]["content"]
    );
    anthropic_round_trip(&s);
}

#[test]
fn an_event_over_the_record_limit_names_its_line_and_creates_nothing() {
    let text = fixture("anthropic_messages.json");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let mut small = opts();
    small.writer.record_bytes_max = 700;
    let err = import::import_into(&dir, Format::AnthropicMessages, &text, small).unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(
        matches!(err, ImportError::Journal { line, .. } if line > 0),
        "{err}"
    );
    assert!(!dir.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Usage counts near u64::MAX (Anthropic's input total adds the cache counts) never overflow:
/// the import saturates instead of panicking on hostile numbers.
#[test]
fn regression_huge_usage_counts_do_not_overflow() {
    let max = u64::MAX;
    let doc = json!({
        "model": "claude-x",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "id": "msg_1", "content": [{"type": "text", "text": "hello"}],
             "usage": {"input_tokens": max, "cache_read_input_tokens": max,
                       "cache_creation_input_tokens": max, "output_tokens": max}}
        ]
    });
    let imported = import::parse(Format::AnthropicMessages, &doc.to_string()).unwrap();
    let usage: Vec<Value> = imported
        .events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.json).unwrap())
        .filter(|v| v["kind"] == "usage")
        .collect();
    assert_eq!(usage.len(), 1, "{:?}", imported.events);
    assert_eq!(usage[0]["body"]["input"]["total"], max);
}
