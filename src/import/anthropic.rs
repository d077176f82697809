//! Anthropic Messages.
//!
//! Accepted input: a request object (`{model?, system?, messages}`); a JSON array or JSONL of
//! messages; one response object. Wherever an assistant message may be, a response object
//! (`{id, type: "message", role: "assistant", model, content, stop_reason, usage}`) may be too
//! (a log that appends what the API returned): its `id` is the message id, its `usage` a
//! `usage` event.
//!
//! | Anthropic | turnwal |
//! |---|---|
//! | `system` (a string, or text blocks) | one `system` message `system` first (blocks verbatim) |
//! | `{role: user\|assistant, content}` | a message of that role; id: its `id`, else `anthropic-<n>` (n-th message) |
//! | `content` string | one `text` part (an empty string: none) |
//! | `text`, `image` (any `source`), `document`, `thinking` (with its `signature`), `redacted_thinking`, `server_tool_use`, `web_search_tool_result`, ... | the block verbatim, as a part: signatures and data byte for byte |
//! | `tool_use {id, name, input}` | `tool_call {call_id, name, arguments}`, `arguments` the `input` object |
//! | `tool_result {tool_use_id, content, is_error}` | `tool_result {call_id, content, is_error?}`, `content` verbatim (a string or blocks), in the user message it came in |
//! | `usage` of a response | `input.total` = `input_tokens` + `cache_read_input_tokens` + `cache_creation_input_tokens`, `cache_read`, `cache_write`, `output.total` = `output_tokens` |
//! | `model`, `stop_reason` of a response | kept in the message body; `model` also as `meta.model` |
//!
//! Refused (a bad line): a message that is not an object, a role other than `user` and
//! `assistant`, a block without `type`, a `tool_use` without `id` or `name`, a `tool_result`
//! without `tool_use_id`.

use serde_json::{Map, Value, json};

use super::input::{self, Input};
use super::{Builder, ImportError, Msg, Step, anthropic_tokens, bad, str_of, text_part, type_name};

pub(crate) fn read(text: &str, b: &mut Builder) -> Result<(), ImportError> {
    let (t, inp) = input::read(text)?;
    let items = match inp {
        Input::Doc(raw) if raw.get().trim_start().starts_with('[') => {
            input::elements(&t, raw).map_err(ImportError::BadLine)?
        }
        Input::Doc(raw) => {
            let f = input::fields(&t, raw).map_err(ImportError::BadLine)?;
            match f.get("messages") {
                Some(messages) => {
                    if let Some(m) = f
                        .get("model")
                        .and_then(|m| serde_json::from_str::<String>(m.get()).ok())
                    {
                        b.meta.insert("model".into(), m.into());
                    }
                    if let Some(s) = f.get("system") {
                        let (line, v) = input::value(&t, s).map_err(ImportError::BadLine)?;
                        let r = system(b, line, &v);
                        b.step(line, r)?;
                    }
                    input::elements(&t, messages).map_err(ImportError::BadLine)?
                }
                None => vec![input::value(&t, raw).map_err(ImportError::BadLine)?],
            }
        }
        Input::Lines(lines) => {
            let mut out = Vec::new();
            for (line, l) in lines {
                match input::line_value(line, l) {
                    Ok(v) => out.push((line, v)),
                    Err(n) => b.bad(n.line, n.reason)?,
                }
            }
            out
        }
    };
    for (n, (line, v)) in items.into_iter().enumerate() {
        let r = message(b, line, n + 1, &v);
        b.step(line, r)?;
    }
    Ok(())
}

fn system(b: &mut Builder, line: usize, v: &Value) -> Step {
    let parts = match v {
        Value::Null => return Ok(()),
        Value::String(s) if s.is_empty() => return Ok(()),
        Value::String(s) => vec![text_part(s)],
        Value::Array(blocks) => {
            for (i, blk) in blocks.iter().enumerate() {
                if str_of(blk, "type") != Some("text") || str_of(blk, "text").is_none() {
                    return bad(format!("system[{i}] must be a text block"));
                }
            }
            blocks.clone()
        }
        other => {
            return bad(format!(
                "`system` must be a string or text blocks, not {}",
                type_name(other)
            ));
        }
    };
    b.message(Msg {
        line,
        id: "system".into(),
        role: "system",
        parts,
        ..Msg::default()
    })?;
    Ok(())
}

fn message(b: &mut Builder, line: usize, n: usize, v: &Value) -> Step {
    if !v.is_object() {
        return bad(format!("expected a message object, found {}", type_name(v)));
    }
    let role = match str_of(v, "role") {
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some("system") => {
            return bad("Anthropic messages have no system role (the system prompt is `system`)");
        }
        Some(other) => return bad(format!("unknown role {other:?}")),
        None => return bad("a message needs a string `role`"),
    };
    let id = str_of(v, "id").map_or_else(|| format!("anthropic-{n}"), str::to_string);
    let parts = content(v.get("content"))?;
    let mut extra = Map::new();
    for key in ["model", "stop_reason", "stop_sequence"] {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            extra.insert(key.into(), x.clone());
        }
    }
    let model = str_of(v, "model").map(str::to_string);
    let id = b.message(Msg {
        line,
        id,
        role,
        parts,
        extra,
        ..Msg::default()
    })?;
    if let Some(m) = &model {
        b.meta.insert("model".into(), m.clone().into());
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        let Some(tokens) = anthropic_tokens(u) else {
            return bad("`usage` needs input_tokens and output_tokens as integers");
        };
        let mut extra = Map::new();
        extra.insert("message_id".into(), id.clone().into());
        let model = model.unwrap_or_else(|| "unknown".into());
        b.usage(line, None, &id, &model, &tokens, extra)?;
    }
    Ok(())
}

/// `content` (a string or blocks) as parts.
pub(crate) fn content(c: Option<&Value>) -> Step<Vec<Value>> {
    match c {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![text_part(s)]),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, blk)| block(i, blk))
            .collect(),
        Some(other) => bad(format!(
            "`content` must be a string or an array of blocks, not {}",
            type_name(other)
        )),
    }
}

/// One content block as a part.
fn block(i: usize, blk: &Value) -> Step<Value> {
    match str_of(blk, "type") {
        Some("tool_use") => {
            let (Some(id), Some(name)) = (str_of(blk, "id"), str_of(blk, "name")) else {
                return bad(format!(
                    "content[{i}]: a tool_use needs string `id` and `name`"
                ));
            };
            let input = blk.get("input").cloned().unwrap_or_else(|| json!({}));
            Ok(json!({"type": "tool_call", "call_id": id, "name": name, "arguments": input}))
        }
        Some("tool_result") => {
            let Some(id) = str_of(blk, "tool_use_id") else {
                return bad(format!(
                    "content[{i}]: a tool_result needs a string `tool_use_id`"
                ));
            };
            let content = blk
                .get("content")
                .cloned()
                .unwrap_or(Value::String(String::new()));
            let mut part = json!({"type": "tool_result", "call_id": id, "content": content});
            if let Some(e) = blk.get("is_error").filter(|e| e.is_boolean()) {
                part["is_error"] = e.clone();
            }
            Ok(part)
        }
        Some(_) => Ok(blk.clone()),
        None => bad(format!("content[{i}] needs a string `type`")),
    }
}
