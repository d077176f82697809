//! OpenAI Responses API items.
//!
//! Accepted input: a JSON array or JSONL whose elements are input items (as sent in `input`),
//! output items, response objects (`{"object":"response", id, model, created_at, output,
//! usage}`) or request objects (`{instructions?, input}`); or one such object. A log of a
//! conversation is typically its request's input items followed by each response object.
//!
//! Consecutive model-side items (`reasoning`, assistant `message`, `function_call`, ...) form
//! one assistant message, up to the next user-side item; a response object's `output` is one
//! assistant message whose id is the response id.
//!
//! | Responses | turnwal |
//! |---|---|
//! | `message` (or `{role, content}`) of role `user`, `system`, `developer` | a message of that role; id: its `id`, else `resp-<line>` |
//! | `input_text`, `output_text` | `text` part (`annotations` kept when not empty) |
//! | `input_image` with `image_url` | `{"type":"image","url","detail"?}`; with only a `file_id`: kept verbatim (no export carries it) |
//! | assistant `message` | its text parts, in the assistant message |
//! | `reasoning` | `{"type":"thinking","text"?,"summary","encrypted_content"?,"content"?,"id"?}`: `text` is the summary texts joined by blank lines (absent if there are none), the rest verbatim. No `signature`: Anthropic cannot take it |
//! | `function_call` | `tool_call` part `{call_id, name, arguments, id}` (`arguments` the JSON string) |
//! | `custom_tool_call` | `tool_call` with `arguments` `{"input": <input>}` (as JSON text), `input` verbatim and `custom: true` |
//! | `local_shell_call` | `tool_call` named `local_shell`, `arguments` the `action` as JSON text |
//! | `function_call_output`, `custom_tool_call_output`, `local_shell_call_output` | a `tool` message with one `tool_result`: `content` the output string, or its content items as `text` and `image` items; `{content, success: false}` sets `is_error` |
//! | `web_search_call`, `file_search_call`, `computer_call`, `mcp_call`, ... | kept verbatim as parts of the assistant message (no export carries them) |
//! | response `usage` | `input.total` = `input_tokens`, `cache_read` = `input_tokens_details.cached_tokens`, `output.total` = `output_tokens`, `reasoning` = `output_tokens_details.reasoning_tokens`; call key the response id |
//! | `instructions` | a `system` message `instructions` first |
//! | `item_reference` | ignored (counted): it points at an item stored by the API |

use serde_json::{Map, Value, json};

use super::input::{self, Input};
use super::{
    Builder, ImportError, Msg, Step, bad, responses_tokens, str_of, text_part, type_name, unix_ts,
};

pub(crate) fn read(text: &str, b: &mut Builder) -> Result<(), ImportError> {
    let (t, inp) = input::read(text)?;
    let items = match inp {
        Input::Doc(raw) if raw.get().trim_start().starts_with('[') => {
            input::elements(&t, raw).map_err(ImportError::BadLine)?
        }
        Input::Doc(raw) => vec![input::value(&t, raw).map_err(ImportError::BadLine)?],
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
    let mut items_state = Items::new("resp");
    for (line, v) in items {
        let r = top(b, &mut items_state, line, &v);
        b.step(line, r)?;
    }
    items_state.flush(b)?;
    Ok(())
}

/// One element: a response object, a request object or an item.
fn top(b: &mut Builder, st: &mut Items, line: usize, v: &Value) -> Step {
    if !v.is_object() {
        return bad(format!("expected an item object, found {}", type_name(v)));
    }
    let is_response = str_of(v, "object") == Some("response")
        || (v.get("type").is_none() && v.get("output").is_some_and(Value::is_array));
    if v.get("input").is_some() || v.get("instructions").is_some_and(Value::is_string) {
        request(b, st, line, v)?;
    }
    if is_response {
        return response(b, st, line, v);
    }
    if v.get("input").is_some() || v.get("instructions").is_some() {
        return Ok(());
    }
    st.item(b, line, None, v)
}

fn request(b: &mut Builder, st: &mut Items, line: usize, v: &Value) -> Step {
    if let Some(model) = str_of(v, "model") {
        b.meta.insert("model".into(), model.into());
    }
    if let Some(i) = str_of(v, "instructions") {
        st.flush(b)?;
        b.message(Msg {
            line,
            id: "instructions".into(),
            role: "system",
            parts: vec![text_part(i)],
            ..Msg::default()
        })?;
    }
    match v.get("input") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            st.flush(b)?;
            b.message(Msg {
                line,
                id: format!("{}-{line}", st.prefix),
                role: "user",
                parts: vec![text_part(s)],
                ..Msg::default()
            })?;
            Ok(())
        }
        Some(Value::Array(items)) => {
            for item in items {
                st.item(b, line, None, item)?;
            }
            Ok(())
        }
        Some(other) => bad(format!(
            "`input` must be a string or an array, not {}",
            type_name(other)
        )),
    }
}

fn response(b: &mut Builder, st: &mut Items, line: usize, v: &Value) -> Step {
    let Some(id) = str_of(v, "id") else {
        return bad("a response object without `id`");
    };
    let Some(output) = v.get("output").and_then(Value::as_array) else {
        return bad("a response object needs an `output` array");
    };
    let ts = unix_ts(v.get("created_at"));
    let model = str_of(v, "model").unwrap_or("unknown").to_string();
    st.flush(b)?;
    st.start(line, ts.clone(), Some(id.to_string()));
    if let Some(g) = &mut st.group {
        g.extra.insert("model".into(), model.clone().into());
        if let Some(s) = v.get("status").filter(|s| s.is_string()) {
            g.extra.insert("response_status".into(), s.clone());
        }
    }
    for item in output {
        st.item(b, line, ts.clone(), item)?;
    }
    let message_id = st.flush(b)?;
    b.meta.insert("model".into(), model.clone().into());
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        let Some(tokens) = responses_tokens(u) else {
            return bad("`usage` needs input_tokens and output_tokens as integers");
        };
        let mut extra = Map::new();
        if let Some(m) = message_id {
            extra.insert("message_id".into(), m.into());
        }
        b.usage(line, ts.as_deref(), id, &model, &tokens, extra)?;
    }
    Ok(())
}

/// Consecutive model-side items, becoming one assistant message.
#[derive(Debug, Default)]
struct Group {
    line: usize,
    ts: Option<String>,
    id: Option<String>,
    parts: Vec<Value>,
    extra: Map<String, Value>,
}

/// Items in order, grouped into messages (shared with the Codex rollout reader).
#[derive(Debug)]
pub(crate) struct Items {
    group: Option<Group>,
    /// Prefix of the ids of messages the source gave none.
    prefix: &'static str,
    /// The id of the last assistant message emitted, until taken.
    last_assistant: Option<String>,
}

impl Items {
    pub(crate) fn new(prefix: &'static str) -> Items {
        Items {
            group: None,
            prefix,
            last_assistant: None,
        }
    }

    /// Starts an assistant message, if none is in progress.
    fn start(&mut self, line: usize, ts: Option<String>, id: Option<String>) -> &mut Group {
        self.group.get_or_insert_with(|| Group {
            line,
            ts,
            id,
            ..Group::default()
        })
    }

    fn part(&mut self, line: usize, ts: Option<String>, item: &Value, part: Value) {
        let g = self.start(line, ts, None);
        if g.id.is_none() {
            g.id = str_of(item, "id").map(str::to_string);
        }
        g.parts.push(part);
    }

    /// Emits the assistant message in progress, if any; returns its id.
    pub(crate) fn flush(&mut self, b: &mut Builder) -> Result<Option<String>, ImportError> {
        let Some(g) = self.group.take() else {
            return Ok(None);
        };
        if g.parts.is_empty() {
            return Ok(None);
        }
        let id =
            g.id.unwrap_or_else(|| format!("{}-{}", self.prefix, g.line));
        let id = b.message(Msg {
            line: g.line,
            ts: g.ts,
            id,
            role: "assistant",
            parts: g.parts,
            extra: g.extra,
        })?;
        self.last_assistant = Some(id.clone());
        Ok(Some(id))
    }

    /// Emits the assistant message in progress, if any, and returns the id of the last
    /// assistant message emitted since the previous call (the message a usage report that
    /// follows belongs to).
    pub(crate) fn flush_for_usage(
        &mut self,
        b: &mut Builder,
    ) -> Result<Option<String>, ImportError> {
        self.flush(b)?;
        Ok(self.last_assistant.take())
    }

    /// Handles one item at `line` (`ts` for Codex lines).
    pub(crate) fn item(
        &mut self,
        b: &mut Builder,
        line: usize,
        ts: Option<String>,
        v: &Value,
    ) -> Step {
        if !v.is_object() {
            return bad(format!("expected an item object, found {}", type_name(v)));
        }
        let ty = match str_of(v, "type") {
            Some(t) => t,
            None if v.get("role").is_some() => "message",
            None => return bad("an item needs a string `type`"),
        };
        match ty {
            "message" => self.message(b, line, ts, v),
            "reasoning" => {
                let summary = v
                    .get("summary")
                    .cloned()
                    .unwrap_or(Value::Array(Vec::new()));
                let text: Vec<&str> = summary
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| str_of(s, "text"))
                    .collect();
                let mut part = json!({"type": "thinking", "summary": summary});
                if !text.is_empty() {
                    part["text"] = text.join("\n\n").into();
                }
                for key in ["encrypted_content", "content", "id"] {
                    if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
                        part[key] = x.clone();
                    }
                }
                self.part(line, ts, v, part);
                Ok(())
            }
            "function_call" => {
                let (Some(call_id), Some(name)) = (str_of(v, "call_id"), str_of(v, "name")) else {
                    return bad("a function_call needs string `call_id` and `name`");
                };
                let arguments = match v.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(o) => o.to_string(),
                };
                let mut part = json!({"type": "tool_call", "call_id": call_id, "name": name, "arguments": arguments});
                if let Some(id) = v.get("id").filter(|x| x.is_string()) {
                    part["id"] = id.clone();
                }
                self.part(line, ts, v, part);
                Ok(())
            }
            "custom_tool_call" => {
                let (Some(call_id), Some(name)) = (str_of(v, "call_id"), str_of(v, "name")) else {
                    return bad("a custom_tool_call needs string `call_id` and `name`");
                };
                let input = str_of(v, "input").unwrap_or_default();
                let mut part = json!({
                    "type": "tool_call", "call_id": call_id, "name": name,
                    "arguments": json!({"input": input}).to_string(),
                    "input": input, "custom": true,
                });
                if let Some(id) = v.get("id").filter(|x| x.is_string()) {
                    part["id"] = id.clone();
                }
                self.part(line, ts, v, part);
                Ok(())
            }
            "local_shell_call" => {
                let Some(call_id) = str_of(v, "call_id").or_else(|| str_of(v, "id")) else {
                    return bad("a local_shell_call needs a string `call_id` or `id`");
                };
                let action = v.get("action").cloned().unwrap_or(Value::Null);
                let mut part = json!({
                    "type": "tool_call", "call_id": call_id, "name": "local_shell",
                    "arguments": action.to_string(),
                });
                if let Some(s) = v.get("status").filter(|x| x.is_string()) {
                    part["status"] = s.clone();
                }
                self.part(line, ts, v, part);
                Ok(())
            }
            "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
                // A local_shell_call_output names its call by `id`.
                let call_id = match ty {
                    "local_shell_call_output" => str_of(v, "call_id").or_else(|| str_of(v, "id")),
                    _ => str_of(v, "call_id"),
                };
                let Some(call_id) = call_id else {
                    return bad(format!("a {ty} needs a string `call_id`"));
                };
                let (content, is_error) = output(v.get("output"));
                let mut result =
                    json!({"type": "tool_result", "call_id": call_id, "content": content});
                if is_error {
                    result["is_error"] = true.into();
                }
                self.flush(b)?;
                let id = str_of(v, "id")
                    .filter(|_| ty != "local_shell_call_output")
                    .map_or_else(|| format!("{}-{line}", self.prefix), str::to_string);
                b.message(Msg {
                    line,
                    ts,
                    id,
                    role: "tool",
                    parts: vec![result],
                    ..Msg::default()
                })?;
                Ok(())
            }
            "item_reference" | "ghost_snapshot" => {
                b.ignore(ty);
                Ok(())
            }
            "web_search_call"
            | "file_search_call"
            | "computer_call"
            | "computer_call_output"
            | "image_generation_call"
            | "code_interpreter_call"
            | "mcp_call"
            | "mcp_list_tools"
            | "mcp_approval_request"
            | "mcp_approval_response"
            | "compaction"
            | "compaction_summary" => {
                self.part(line, ts, v, v.clone());
                Ok(())
            }
            other => {
                b.ignore(format!("item:{other}"));
                Ok(())
            }
        }
    }

    fn message(&mut self, b: &mut Builder, line: usize, ts: Option<String>, v: &Value) -> Step {
        let role = match str_of(v, "role") {
            Some("user") => "user",
            Some("assistant") => "assistant",
            Some("system") => "system",
            Some("developer") => "developer",
            Some(other) => return bad(format!("unknown role {other:?}")),
            None => return bad("a message needs a string `role`"),
        };
        let mut parts = Vec::new();
        match v.get("content") {
            Some(Value::String(s)) => parts.push(text_part(s)),
            Some(Value::Array(items)) => {
                for (i, c) in items.iter().enumerate() {
                    parts.push(content_part(i, c)?);
                }
            }
            None | Some(Value::Null) => {}
            Some(other) => {
                return bad(format!(
                    "`content` must be a string or an array, not {}",
                    type_name(other)
                ));
            }
        }
        if role == "assistant" {
            let g = self.start(line, ts, None);
            if g.id.is_none() {
                g.id = str_of(v, "id").map(str::to_string);
            }
            g.parts.extend(parts);
            return Ok(());
        }
        self.flush(b)?;
        let id = str_of(v, "id").map_or_else(|| format!("{}-{line}", self.prefix), str::to_string);
        b.message(Msg {
            line,
            ts,
            id,
            role,
            parts,
            ..Msg::default()
        })?;
        Ok(())
    }
}

/// One content item of a message.
fn content_part(i: usize, c: &Value) -> Step<Value> {
    match str_of(c, "type") {
        Some("input_text" | "output_text" | "text") => {
            let Some(t) = str_of(c, "text") else {
                return bad(format!("content[{i}] needs a string `text`"));
            };
            let mut p = text_part(t);
            if let Some(a) = c
                .get("annotations")
                .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
            {
                p["annotations"] = a.clone();
            }
            Ok(p)
        }
        Some("input_image") => match str_of(c, "image_url") {
            Some(url) => {
                let mut p = json!({"type": "image", "url": url});
                if let Some(d) = c.get("detail").filter(|d| d.is_string()) {
                    p["detail"] = d.clone();
                }
                Ok(p)
            }
            None => Ok(c.clone()),
        },
        Some(_) => Ok(c.clone()),
        None => bad(format!("content[{i}] needs a string `type`")),
    }
}

/// A tool output as tool-result content, and whether it reports an error.
fn output(o: Option<&Value>) -> (Value, bool) {
    match o {
        None | Some(Value::Null) => (Value::String(String::new()), false),
        Some(Value::String(s)) => (Value::String(s.clone()), false),
        Some(Value::Array(items)) => (
            Value::Array(
                items
                    .iter()
                    .map(|c| match str_of(c, "type") {
                        Some("input_text" | "output_text") => {
                            text_part(str_of(c, "text").unwrap_or_default())
                        }
                        Some("input_image") if str_of(c, "image_url").is_some() => {
                            json!({"type": "image", "url": str_of(c, "image_url")})
                        }
                        _ => c.clone(),
                    })
                    .collect(),
            ),
            false,
        ),
        Some(Value::Object(obj)) if obj.contains_key("content") => {
            let failed = obj.get("success").and_then(Value::as_bool) == Some(false);
            let (content, _) = output(obj.get("content"));
            (content, failed)
        }
        Some(other) => (other.clone(), false),
    }
}
