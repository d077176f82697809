//! The session as OpenAI chat-completions `messages`.
//!
//! | turnwal | chat completions |
//! |---|---|
//! | `system`, `developer`, `user`, `assistant` message | `{role, content}`; `content` is the text when the message has one text part, else an array of `text` and `image_url` parts (`null` for an assistant message with only tool calls) |
//! | `text` part | its text, or `{"type":"text","text"}` |
//! | `image` part (user messages) | `{"type":"image_url","image_url":{"url","detail"?}}`: `url` as is, a `source` of type `base64` as a `data:` URL, a `source` of type `url` as its URL |
//! | `tool_call` part | `tool_calls: [{id, type: "function", function: {name, arguments}}]`; `arguments` a string: an object is serialised, a string is sent as it is (even if it is not valid JSON: the stream of a cut message may have ended inside it) |
//! | `input_audio` and `file` parts (user messages) | verbatim, as content parts |
//! | `name` of the body (a string) | `name` |
//! | `refusal` of an assistant body (a string) | `refusal` |
//! | `tool_result` part | its own `{"role":"tool","tool_call_id","content"}` message, right after the assistant message that made the call; `content` a string (a string as is, an array's text items joined with newlines, any other JSON as its text) |
//!
//! Cannot be carried, dropped:
//! - **thinking** parts (chat completions has no field for reasoning, signed or not; a session
//!   resumed through this shape loses its thinking, and Anthropic signatures in it are
//!   useless here), and every other part type it does not know;
//! - **images inside a tool result** (a tool message holds text only);
//! - a tool result's **`is_error`** and **`outcome`** (its content must say it: the results
//!   [`crate::Journal::repair_dangling_tool_calls`] appends do);
//! - message ids, turns, statuses, and where the results were in the log (see [`super`]).
//!
//! `developer` is sent as `developer`; a model that only knows `system` needs the caller to
//! rename it.

use serde_json::{Map, Value, json};

use super::{Entry, Msg, Obj, Part, ProviderError, ToolResult, conversation};
use crate::Session;
use crate::event::Role;

/// The model context of `session` as chat-completions messages, ready to be the `messages` of
/// a request (append the next user message, or send as is to continue after tool results).
///
/// Fails, naming the message and the field, on a body that is not a JSON object, a part
/// missing a field (`text`, `call_id`, `name`, `arguments`, `content`, an image's `url` or
/// `source`), or a part where chat completions cannot carry it (an image outside a user
/// message). See the module docs for what is dropped.
pub fn chat_messages(session: &Session) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    for entry in conversation(session)? {
        match entry {
            Entry::Message(m) => {
                if let Some(v) = message(&m)? {
                    out.push(v);
                }
            }
            Entry::Results(results) => {
                for r in results {
                    out.push(tool_message(r));
                }
            }
        }
    }
    Ok(out)
}

/// One message without its results, or `None` if nothing in it can be sent.
fn message(m: &Msg) -> Result<Option<Value>, ProviderError> {
    let mut content = Vec::new();
    let mut calls = Vec::new();
    for (i, p) in &m.parts {
        match p {
            Part::Text(t) => content.push(json!({"type": "text", "text": t})),
            Part::Image(img) => content.push(image_url(&m.id, *i, img)?),
            Part::ToolCall(c) => {
                let arguments = match &c.arguments {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                calls.push(json!({
                    "id": c.call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": arguments},
                }));
            }
            // Chat's own user content parts, from a chat import: verbatim.
            Part::Other(o)
                if m.role == Role::User
                    && matches!(
                        o.get("type").and_then(Value::as_str),
                        Some("input_audio" | "file")
                    ) =>
            {
                content.push(Value::Object(o.clone()));
            }
            Part::ToolResult(_) | Part::Thinking(_) | Part::Other(_) => {}
        }
    }
    if content.is_empty() && calls.is_empty() && m.refusal.is_none() {
        return Ok(None);
    }
    let content = match content.as_mut_slice() {
        [] => Value::Null,
        [one] if one["type"] == "text" => one["text"].take(),
        _ => Value::Array(content),
    };
    let mut o = Map::new();
    o.insert("role".into(), m.role.as_str().into());
    o.insert("content".into(), content);
    if let Some(name) = &m.name {
        o.insert("name".into(), name.clone().into());
    }
    if let Some(refusal) = &m.refusal {
        o.insert("refusal".into(), refusal.clone().into());
    }
    if !calls.is_empty() {
        o.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Some(Value::Object(o)))
}

/// An `image` part as an `image_url` content part.
fn image_url(id: &str, i: usize, img: &Obj) -> Result<Value, ProviderError> {
    let url = match (img.get("url"), img.get("source")) {
        (Some(Value::String(u)), _) => u.clone(),
        (Some(_), _) => {
            return Err(super::invalid(
                id,
                format!("parts[{i}].url"),
                "must be a string",
            ));
        }
        (None, Some(Value::Object(src))) => source_url(id, i, src)?,
        (None, Some(_)) => {
            return Err(super::invalid(
                id,
                format!("parts[{i}].source"),
                "must be an object",
            ));
        }
        (None, None) => {
            return Err(super::invalid(
                id,
                format!("parts[{i}].url"),
                "is missing (an image needs a url or a source)",
            ));
        }
    };
    let mut image = Map::new();
    image.insert("url".into(), url.into());
    if let Some(d) = img.get("detail").filter(|d| d.is_string()) {
        image.insert("detail".into(), d.clone());
    }
    Ok(json!({"type": "image_url", "image_url": image}))
}

/// The URL of an Anthropic-style image `source`: a `data:` URL for base64, the URL for url.
fn source_url(id: &str, i: usize, src: &Obj) -> Result<String, ProviderError> {
    let field = |k: &str| match src.get(k) {
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(super::invalid(
            id,
            format!("parts[{i}].source.{k}"),
            "must be a string",
        )),
    };
    match field("type")? {
        "base64" => Ok(format!(
            "data:{};base64,{}",
            field("media_type")?,
            field("data")?
        )),
        "url" => Ok(field("url")?.to_string()),
        other => Err(super::unsupported(
            id,
            format!("parts[{i}].source"),
            format!("an image source of type {other:?} (chat completions takes a URL)"),
        )),
    }
}

/// A `tool_result` as a `tool` message.
fn tool_message(r: ToolResult) -> Value {
    json!({
        "role": "tool",
        "tool_call_id": r.call_id,
        "content": tool_content(r.content),
    })
}

/// Tool output as the text a tool message holds.
fn tool_content(content: Value) -> String {
    match content {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Array(items) => {
            let texts: Vec<String> = items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s),
                    Value::Object(mut o) => match o.get("type").and_then(Value::as_str) {
                        Some("text") if o.get("text").is_some_and(Value::is_string) => {
                            o.remove("text").and_then(|t| match t {
                                Value::String(s) => Some(s),
                                _ => None,
                            })
                        }
                        Some("image") => None,
                        _ => Some(Value::Object(o).to_string()),
                    },
                    other => Some(other.to_string()),
                })
                .collect();
            texts.join("\n")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_content_keeps_text_and_drops_images() {
        assert_eq!(tool_content(json!("ok")), "ok");
        assert_eq!(tool_content(Value::Null), "");
        assert_eq!(tool_content(json!({"n": 1})), r#"{"n":1}"#);
        let mixed = json!([
            "a",
            {"type": "text", "text": "b"},
            {"type": "image", "url": "data:image/png;base64,AAAA"},
            {"k": true},
            3
        ]);
        assert_eq!(tool_content(mixed), "a\nb\n{\"k\":true}\n3");
    }

    #[test]
    fn image_sources_become_urls() {
        let part = |v: Value| v.as_object().cloned().unwrap_or_default();
        let b64 = part(
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}, "detail": "low"}),
        );
        assert_eq!(
            image_url("m", 0, &b64).ok(),
            Some(
                json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}})
            )
        );
        let file = part(json!({"type": "image", "source": {"type": "file", "file_id": "f"}}));
        assert!(matches!(
            image_url("m", 2, &file),
            Err(ProviderError::Unsupported { field, .. }) if field == "parts[2].source"
        ));
        let none = part(json!({"type": "image"}));
        assert_eq!(
            image_url("m", 1, &none)
                .err()
                .and_then(|e| e.field().map(str::to_string)),
            Some("parts[1].url".to_string())
        );
    }
}
