//! The session as the `system` and `messages` of an Anthropic Messages request.
//!
//! | turnwal | Anthropic Messages |
//! |---|---|
//! | `system` and `developer` messages | the top-level `system` text: each message's text parts joined with newlines, messages joined with blank lines, in order |
//! | `user` message | `{"role":"user","content":[...]}` with `text` and `image` blocks |
//! | `assistant` message | `{"role":"assistant","content":[...]}` with `text`, `thinking`, `redacted_thinking` and `tool_use` blocks, in the order of the parts |
//! | `text` part | `{"type":"text","text"}`; an empty text is dropped (the API refuses it) |
//! | `image` part (user messages) | `{"type":"image","source"}`: a `source` verbatim; a `url` as a `base64` source if it is a `data:` URL, else as a `url` source |
//! | `thinking` part with a `signature` (assistant) | `{"type":"thinking","thinking","signature"}`: the text from `thinking` (or `text`, as deltas build it), the signature byte-for-byte |
//! | `redacted_thinking` part (assistant) | verbatim |
//! | `document` part (user) | verbatim |
//! | `tool_call` part | `{"type":"tool_use","id","name","input"}`: `input` is `arguments` as an object (a string is parsed; an empty string is `{}`) |
//! | `tool_result` part | `{"type":"tool_result","tool_use_id","content","is_error"}` in the `user` message right after the assistant message that made the call, before any other block of that message |
//!
//! Consecutive messages of one role are merged into one (the API requires roles to
//! alternate), so a message's blocks may share a message with its neighbours'.
//!
//! Cannot be carried, dropped:
//! - **thinking without a `signature`** (from another provider, or cut mid-stream): the API
//!   refuses unsigned thinking; thinking outside assistant messages;
//! - **where system and developer messages were**, and which was which: there is one `system`;
//! - a tool result's **`outcome`** (`is_error` is kept; the content says the rest);
//! - **empty text**, every part type it does not know, message ids, turns and statuses;
//! - the arguments of a tool call **cut mid-stream** that are not valid JSON: `input` is `{}`
//!   (a complete message with invalid arguments is an error instead).
//!
//! Not checked: that the conversation starts with a user message (the API requires it; a
//! context starting with an assistant message is returned as it is — nothing is invented).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Entry, Msg, Obj, Part, ProviderError, ToolCall, ToolResult, conversation};
use crate::Session;
use crate::event::Role;

/// The part of an Anthropic Messages request a session gives: set `model`, `max_tokens`,
/// tools and the rest, and send. Serialises to `{"system"?, "messages"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnthropicRequest {
    /// The text of every system and developer message in the context, or `None` if there is
    /// none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `{"role":"user"|"assistant","content":[blocks]}` objects, roles alternating.
    pub messages: Vec<Value>,
}

/// The model context of `session` as an Anthropic Messages request's `system` and
/// `messages`.
///
/// Fails, naming the message and the field, on a body that is not a JSON object, a part
/// missing a field (`text`, `call_id`, `name`, `arguments`, `content`, a signed thinking's
/// text, an image's `url` or `source`), tool-call arguments that are not a JSON object (in a
/// complete message), or a part where the API cannot carry it. See the module docs for what is
/// dropped.
pub fn messages(session: &Session) -> Result<AnthropicRequest, ProviderError> {
    let mut system: Vec<String> = Vec::new();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for entry in conversation(session)? {
        match entry {
            Entry::Message(m) => match m.role {
                Role::System | Role::Developer => {
                    let text: Vec<&str> = m
                        .parts
                        .iter()
                        .filter_map(|(_, p)| match p {
                            Part::Text(t) if !t.is_empty() => Some(t.as_str()),
                            _ => None,
                        })
                        .collect();
                    if !text.is_empty() {
                        system.push(text.join("\n"));
                    }
                }
                Role::User => push(&mut out, "user", user_blocks(&m)?),
                Role::Assistant => push(&mut out, "assistant", assistant_blocks(&m)?),
                // Tool messages hold only results, taken out into `Entry::Results`.
                Role::Tool => {}
            },
            Entry::Results(results) => {
                let blocks = results
                    .into_iter()
                    .map(result_block)
                    .collect::<Result<Vec<_>, _>>()?;
                push(&mut out, "user", blocks);
            }
        }
    }
    Ok(AnthropicRequest {
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: out
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    })
}

/// Appends `blocks` as a message of `role`, merged into the last message if it has that role.
fn push(out: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match out.last_mut() {
        Some((r, content)) if *r == role => content.extend(blocks),
        _ => out.push((role, blocks)),
    }
}

fn text_block(t: &str) -> Option<Value> {
    (!t.is_empty()).then(|| json!({"type": "text", "text": t}))
}

fn user_blocks(m: &Msg) -> Result<Vec<Value>, ProviderError> {
    let mut blocks = Vec::new();
    for (i, p) in &m.parts {
        match p {
            Part::Text(t) => blocks.extend(text_block(t)),
            Part::Image(img) => blocks.push(image_block(&m.id, &format!("parts[{i}]"), img)?),
            // Anthropic's own document blocks, from an Anthropic or Claude Code import.
            Part::Other(o) if o.get("type").and_then(Value::as_str) == Some("document") => {
                blocks.push(Value::Object(o.clone()));
            }
            // Tool calls are refused outside assistant messages when parsing; results were
            // taken out; thinking and unknown parts cannot be carried in a user message.
            Part::ToolCall(_) | Part::ToolResult(_) | Part::Thinking(_) | Part::Other(_) => {}
        }
    }
    Ok(blocks)
}

fn assistant_blocks(m: &Msg) -> Result<Vec<Value>, ProviderError> {
    let mut blocks = Vec::new();
    for (i, p) in &m.parts {
        match p {
            Part::Text(t) => blocks.extend(text_block(t)),
            Part::Thinking(th) => blocks.extend(thinking_block(&m.id, *i, th)?),
            Part::Other(o)
                if o.get("type").and_then(Value::as_str) == Some("redacted_thinking") =>
            {
                blocks.push(Value::Object(o.clone()));
            }
            Part::ToolCall(c) => blocks.push(tool_use_block(m, *i, c)?),
            Part::Image(_) | Part::ToolResult(_) | Part::Other(_) => {}
        }
    }
    Ok(blocks)
}

/// A signed thinking part as a `thinking` block; `None` for unsigned thinking.
fn thinking_block(id: &str, i: usize, th: &Obj) -> Result<Option<Value>, ProviderError> {
    let signature = match th.get("signature") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(super::invalid(
                id,
                format!("parts[{i}].signature"),
                "must be a string",
            ));
        }
    };
    let text = match (th.get("thinking"), th.get("text")) {
        (Some(Value::String(t)), _) | (None, Some(Value::String(t))) => t,
        _ => {
            return Err(super::invalid(
                id,
                format!("parts[{i}].thinking"),
                "a signed thinking part needs its text as a string in `thinking` or `text`",
            ));
        }
    };
    Ok(Some(
        json!({"type": "thinking", "thinking": text, "signature": signature}),
    ))
}

fn tool_use_block(m: &Msg, i: usize, c: &ToolCall) -> Result<Value, ProviderError> {
    let field = || format!("parts[{i}].arguments");
    let input = match &c.arguments {
        Value::Object(o) => Value::Object(o.clone()),
        Value::String(s) if s.trim().is_empty() => Value::Object(Map::new()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ if m.cut => Value::Object(Map::new()),
            Ok(_) => {
                return Err(super::invalid(
                    &m.id,
                    field(),
                    "must hold a JSON object (tool_use input is an object)",
                ));
            }
            Err(e) => {
                return Err(super::invalid(
                    &m.id,
                    field(),
                    format!("is not valid JSON: {e}"),
                ));
            }
        },
        // `parse_message` lets only strings and objects through.
        _ => Value::Object(Map::new()),
    };
    Ok(json!({"type": "tool_use", "id": c.call_id, "name": c.name, "input": input}))
}

/// An `image` part (or an image inside tool output) as an `image` block.
fn image_block(id: &str, field: &str, img: &Obj) -> Result<Value, ProviderError> {
    let source = match (img.get("source"), img.get("url")) {
        (Some(Value::Object(src)), _) => Value::Object(src.clone()),
        (Some(_), _) => {
            return Err(super::invalid(
                id,
                format!("{field}.source"),
                "must be an object",
            ));
        }
        (None, Some(Value::String(url))) => match super::split_data_url(url) {
            Some((media_type, data)) => {
                json!({"type": "base64", "media_type": media_type, "data": data})
            }
            None => json!({"type": "url", "url": url}),
        },
        (None, Some(_)) => {
            return Err(super::invalid(
                id,
                format!("{field}.url"),
                "must be a string",
            ));
        }
        (None, None) => {
            return Err(super::invalid(
                id,
                format!("{field}.url"),
                "is missing (an image needs a url or a source)",
            ));
        }
    };
    Ok(json!({"type": "image", "source": source}))
}

fn result_block(r: ToolResult) -> Result<Value, ProviderError> {
    let content = match r.content {
        Value::String(s) => Value::String(s),
        Value::Null => Value::String(String::new()),
        Value::Array(items) => {
            let mut blocks = Vec::with_capacity(items.len());
            for (j, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) => blocks.extend(text_block(&s)),
                    Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                        Some("text") if o.get("text").is_some_and(Value::is_string) => {
                            blocks
                                .extend(o.get("text").and_then(Value::as_str).and_then(text_block));
                        }
                        Some("image") => blocks.push(image_block(
                            &r.message_id,
                            &format!("parts[{}].content[{j}]", r.index),
                            &o,
                        )?),
                        _ => blocks.extend(text_block(&Value::Object(o).to_string())),
                    },
                    other => blocks.extend(text_block(&other.to_string())),
                }
            }
            if blocks.is_empty() {
                Value::String(String::new())
            } else {
                Value::Array(blocks)
            }
        }
        other => Value::String(other.to_string()),
    };
    Ok(json!({
        "type": "tool_result",
        "tool_use_id": r.call_id,
        "content": content,
        "is_error": r.is_error,
    }))
}
