//! OpenAI chat completions: `messages` as sent in a request.
//!
//! Accepted input: a JSON array of messages; a request object with `messages` (its `model`
//! goes to `meta.model`); JSONL, one message per line. Wherever a message may be, a
//! `chat.completion` response object may be too (a log that keeps what the API returned): its
//! first choice's message is the assistant message, with the response `id` as message id and
//! its `usage` and `model` as a `usage` event (`created` as `ts`).
//!
//! | chat completions | turnwal |
//! |---|---|
//! | `{role: system\|developer\|user\|assistant, content}` | a message of that role; id: its `id` if it has one, else `chat-<n>` (n-th message) |
//! | `content` string | one `text` part |
//! | `{"type":"text","text"}` | `text` part |
//! | `{"type":"image_url","image_url":{url, detail?}}` | `{"type":"image","url","detail"?}` (a `data:` URL stays one) |
//! | other content parts (`input_audio`, `file`, `refusal`) | kept verbatim (no export carries them) |
//! | `tool_calls: [{id, function: {name, arguments}}]` | `tool_call` parts, `arguments` the JSON string as sent |
//! | `{role: tool, tool_call_id, content}` | a `tool` message with one `tool_result` part, `content` as sent |
//! | `reasoning_content` (DeepSeek and compatible servers) | a `thinking` part `{text}` first |
//! | `name`, `refusal` | kept in the body (and exported back by [`crate::provider::openai`]) |
//! | `usage` of a completion | `input.total` = `prompt_tokens`, `cache_read` = `prompt_tokens_details.cached_tokens`, `output.total` = `completion_tokens`, `reasoning` = `completion_tokens_details.reasoning_tokens` |
//!
//! Refused (a bad line): a message that is not an object, has no or an unknown `role`, the
//! legacy `function` role and `function_call`, a tool call without `id` or `function.name`, a
//! tool message without `tool_call_id`.

use serde_json::{Map, Value, json};

use super::input::{self, Input};
use super::{Builder, ImportError, Msg, Step, bad, chat_tokens, str_of, text_part, unix_ts};

pub(crate) fn read(text: &str, b: &mut Builder) -> Result<(), ImportError> {
    let (t, inp) = input::read(text)?;
    let items = match inp {
        Input::Doc(raw) if raw.get().trim_start().starts_with('[') => input::elements(&t, raw),
        Input::Doc(raw) => match input::fields(&t, raw) {
            Ok(f) if f.contains_key("messages") => {
                if let Some(m) = f
                    .get("model")
                    .and_then(|m| serde_json::from_str::<String>(m.get()).ok())
                {
                    b.meta.insert("model".into(), m.into());
                }
                match f.get("messages") {
                    Some(m) => input::elements(&t, m),
                    None => Ok(Vec::new()),
                }
            }
            Ok(_) => input::value(&t, raw).map(|v| vec![v]),
            Err(e) => Err(e),
        },
        Input::Lines(lines) => {
            let mut out = Vec::new();
            for (line, l) in lines {
                match input::line_value(line, l) {
                    Ok(v) => out.push((line, v)),
                    Err(n) => b.bad(n.line, n.reason)?,
                }
            }
            Ok(out)
        }
    };
    let items = items.map_err(ImportError::BadLine)?;
    for (n, (line, v)) in items.into_iter().enumerate() {
        let r = item(b, line, n + 1, &v);
        b.step(line, r)?;
    }
    Ok(())
}

fn item(b: &mut Builder, line: usize, n: usize, v: &Value) -> Step {
    let Value::Object(o) = v else {
        return bad(format!(
            "expected a message object, found {}",
            super::type_name(v)
        ));
    };
    if let Some(choices) = o.get("choices") {
        return completion(b, line, v, choices);
    }
    let id = str_of(v, "id").map_or_else(|| format!("chat-{n}"), str::to_string);
    let m = message(line, id, v)?;
    b.message(m)?;
    Ok(())
}

/// A `chat.completion` object: its first choice's message, and its usage.
fn completion(b: &mut Builder, line: usize, v: &Value, choices: &Value) -> Step {
    let Some(id) = str_of(v, "id") else {
        return bad("a chat.completion without `id`");
    };
    let Some(first) = choices.as_array().and_then(|c| c.first()) else {
        return bad("`choices` must be a non-empty array");
    };
    let Some(msg) = first.get("message") else {
        return bad("choices[0] has no `message`");
    };
    let ts = unix_ts(v.get("created"));
    let model = str_of(v, "model").unwrap_or("unknown").to_string();
    let mut m = message(line, id.to_string(), msg)?;
    if m.role != "assistant" {
        return bad("choices[0].message must be an assistant message");
    }
    m.ts.clone_from(&ts);
    m.extra.insert("model".into(), model.clone().into());
    if let Some(r) = first.get("finish_reason").filter(|r| r.is_string()) {
        m.extra.insert("finish_reason".into(), r.clone());
    }
    let extra_choices = choices.as_array().map_or(0, |c| c.len().saturating_sub(1));
    for _ in 0..extra_choices {
        b.ignore("choices beyond the first");
    }
    let id = b.message(m)?;
    b.meta.insert("model".into(), model.clone().into());
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        let Some(tokens) = chat_tokens(u) else {
            return bad("`usage` needs prompt_tokens and completion_tokens as integers");
        };
        let mut extra = Map::new();
        extra.insert("message_id".into(), id.into());
        b.usage(line, ts.as_deref(), &id_key(v), &model, &tokens, extra)?;
    }
    Ok(())
}

fn id_key(v: &Value) -> String {
    str_of(v, "id").unwrap_or_default().to_string()
}

/// One chat message as a turnwal message (not emitted).
pub(crate) fn message(line: usize, id: String, v: &Value) -> Step<Msg> {
    let role = match str_of(v, "role") {
        Some("system") => "system",
        Some("developer") => "developer",
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some("tool") => "tool",
        Some("function") => {
            return bad("the legacy `function` role is not supported (use `tool` messages)");
        }
        Some(other) => return bad(format!("unknown role {other:?}")),
        None => return bad("a message needs a string `role`"),
    };
    let mut m = Msg {
        line,
        id,
        role,
        ..Msg::default()
    };
    for key in ["name", "refusal"] {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            m.extra.insert(key.into(), x.clone());
        }
    }
    if role == "tool" {
        let Some(call_id) = str_of(v, "tool_call_id") else {
            return bad("a tool message needs a string `tool_call_id`");
        };
        let content = v.get("content").cloned().unwrap_or(Value::Null);
        m.parts
            .push(json!({"type": "tool_result", "call_id": call_id, "content": content}));
        return Ok(m);
    }
    if role == "assistant"
        && let Some(r) = str_of(v, "reasoning_content").filter(|r| !r.is_empty())
    {
        m.parts.push(json!({"type": "thinking", "text": r}));
    }
    content_parts(v.get("content"), &mut m.parts)?;
    if v.get("function_call").is_some_and(|f| !f.is_null()) {
        return bad("the legacy `function_call` is not supported (use `tool_calls`)");
    }
    if let Some(calls) = v.get("tool_calls").filter(|c| !c.is_null()) {
        if role != "assistant" {
            return bad(format!("`tool_calls` in a {role} message"));
        }
        let Some(calls) = calls.as_array() else {
            return bad("`tool_calls` must be an array");
        };
        for (i, c) in calls.iter().enumerate() {
            m.parts.push(tool_call(i, c)?);
        }
    }
    Ok(m)
}

fn tool_call(i: usize, c: &Value) -> Step<Value> {
    let Some(id) = str_of(c, "id") else {
        return bad(format!("tool_calls[{i}] needs a string `id`"));
    };
    if let Some(custom) = c.get("custom") {
        let Some(name) = str_of(custom, "name") else {
            return bad(format!("tool_calls[{i}].custom needs a string `name`"));
        };
        let input = str_of(custom, "input").unwrap_or_default();
        return Ok(json!({
            "type": "tool_call", "call_id": id, "name": name,
            "arguments": json!({"input": input}).to_string(), "custom": true,
        }));
    }
    let Some(f) = c.get("function") else {
        return bad(format!("tool_calls[{i}] needs a `function`"));
    };
    let Some(name) = str_of(f, "name") else {
        return bad(format!("tool_calls[{i}].function needs a string `name`"));
    };
    let arguments = match f.get("arguments") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(o @ Value::Object(_)) => Value::String(o.to_string()),
        None | Some(Value::Null) => Value::String(String::new()),
        Some(other) => {
            return bad(format!(
                "tool_calls[{i}].function.arguments must be a string, not {}",
                super::type_name(other)
            ));
        }
    };
    Ok(json!({"type": "tool_call", "call_id": id, "name": name, "arguments": arguments}))
}

/// `content` as parts.
fn content_parts(content: Option<&Value>, parts: &mut Vec<Value>) -> Step {
    match content {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            parts.push(text_part(s));
            Ok(())
        }
        Some(Value::Array(items)) => {
            for (i, p) in items.iter().enumerate() {
                match str_of(p, "type") {
                    Some("text") => match str_of(p, "text") {
                        Some(t) => parts.push(text_part(t)),
                        None => return bad(format!("content[{i}] needs a string `text`")),
                    },
                    Some("image_url") => {
                        let (url, detail) = match p.get("image_url") {
                            Some(Value::String(u)) => (Some(u.as_str()), None),
                            Some(o) => (str_of(o, "url"), o.get("detail")),
                            None => (None, None),
                        };
                        let Some(url) = url else {
                            return bad(format!("content[{i}].image_url needs a string `url`"));
                        };
                        let mut img = json!({"type": "image", "url": url});
                        if let Some(d) = detail.filter(|d| d.is_string()) {
                            img["detail"] = d.clone();
                        }
                        parts.push(img);
                    }
                    Some(_) => parts.push(p.clone()),
                    None => return bad(format!("content[{i}] needs a string `type`")),
                }
            }
            Ok(())
        }
        Some(other) => bad(format!(
            "`content` must be a string, an array or null, not {}",
            super::type_name(other)
        )),
    }
}
