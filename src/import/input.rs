//! Reading the input text: one JSON document or JSONL, with the line of every element, and
//! telling the format.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use super::{Format, ImportError, LineNote, str_of};

/// The input text, with the offsets where its lines start.
#[derive(Debug)]
pub(crate) struct Text<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Text<'a> {
    fn new(text: &'a str) -> Text<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Text { text, line_starts }
    }

    /// The 1-based line where `raw` (a slice of this text) starts.
    pub(crate) fn line_of(&self, raw: &RawValue) -> usize {
        let offset = (raw.get().as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        self.line_at(offset.min(self.text.len()))
    }

    fn line_at(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// The input, read.
#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// One JSON document (an array or an object).
    Doc(&'a RawValue),
    /// JSONL: every non-blank line with its 1-based number.
    Lines(Vec<(usize, &'a str)>),
}

/// Strips a UTF-8 byte order mark.
fn strip_bom(input: &str) -> &str {
    input.strip_prefix('\u{feff}').unwrap_or(input)
}

fn non_blank_lines(text: &str) -> Vec<(usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect()
}

/// Reads `input` as one JSON document if it is one, else as JSONL. A document starting with
/// `[` that does not parse is bad at the line of the syntax error; so is a text that is
/// neither a document nor JSONL whose first line parses.
pub(crate) fn read(input: &str) -> Result<(Text<'_>, Input<'_>), ImportError> {
    let text = strip_bom(input);
    let t = Text::new(text);
    let first = text.trim_start().chars().next();
    if first.is_none() {
        return Err(ImportError::Input("the input is empty".into()));
    }
    let doc = serde_json::from_str::<&RawValue>(text);
    match doc {
        Ok(raw) => {
            let trimmed = raw.get().trim_start();
            if trimmed.starts_with('[') || trimmed.starts_with('{') {
                return Ok((t, Input::Doc(raw)));
            }
            Err(ImportError::BadLine(LineNote {
                line: t.line_of(raw),
                reason: "the input is a JSON value that is neither an array nor an object".into(),
            }))
        }
        Err(e) => {
            let lines = non_blank_lines(text);
            let first_line_parses = lines
                .first()
                .is_some_and(|(_, l)| serde_json::from_str::<&RawValue>(l).is_ok());
            if first != Some('[') && first_line_parses {
                Ok((t, Input::Lines(lines)))
            } else {
                Err(ImportError::BadLine(LineNote {
                    line: e.line().max(1),
                    reason: format!(
                        "not valid JSON at column {}: {}",
                        e.column(),
                        without_position(&e)
                    ),
                }))
            }
        }
    }
}

/// The elements of a JSON array, with their lines.
pub(crate) fn elements(t: &Text<'_>, raw: &RawValue) -> Result<Vec<(usize, Value)>, LineNote> {
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|e| LineNote {
        line: t.line_of(raw),
        reason: format!("expected a JSON array: {e}"),
    })?;
    items
        .into_iter()
        .map(|r| {
            let line = t.line_of(r);
            serde_json::from_str::<Value>(r.get())
                .map(|v| (line, v))
                .map_err(|e| LineNote {
                    line,
                    reason: format!("not valid JSON: {e}"),
                })
        })
        .collect()
}

/// The fields of a JSON object, raw (so arrays inside can be read with their lines).
pub(crate) fn fields<'a>(
    t: &Text<'_>,
    raw: &'a RawValue,
) -> Result<BTreeMap<String, &'a RawValue>, LineNote> {
    serde_json::from_str(raw.get()).map_err(|e| LineNote {
        line: t.line_of(raw),
        reason: format!("expected a JSON object: {e}"),
    })
}

/// A raw value, parsed.
pub(crate) fn value(t: &Text<'_>, raw: &RawValue) -> Result<(usize, Value), LineNote> {
    let line = t.line_of(raw);
    serde_json::from_str(raw.get())
        .map(|v| (line, v))
        .map_err(|e| LineNote {
            line,
            reason: format!("not valid JSON: {e}"),
        })
}

/// One JSONL line, parsed.
pub(crate) fn line_value(line: usize, text: &str) -> Result<Value, LineNote> {
    serde_json::from_str::<Value>(text).map_err(|e| LineNote {
        line,
        reason: format!(
            "not valid JSON at column {}: {}",
            e.column(),
            without_position(&e)
        ),
    })
}

/// A serde_json error's message without its `at line L column C` (the line is the input's,
/// named separately).
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The format of `input`, best effort: decisive fields of the first lines or elements (Codex's
/// `payload` envelopes, Claude Code's `sessionId`/`parentUuid`, Responses item types,
/// Anthropic blocks, chat `tool_calls` and `image_url`). `None` if nothing tells: then pass a
/// format explicitly. Messages with only string content are read as OpenAI chat.
///
/// ```
/// use turnwal::import::{self, Format};
///
/// let rollout = r#"{"timestamp":"2025-10-16T18:20:00.114Z","type":"session_meta","payload":{"id":"0199f1c2"}}"#;
/// assert_eq!(import::detect(rollout), Some(Format::Codex));
/// let anthropic = r#"{"system":"Be brief.","messages":[{"role":"user","content":"hi"}]}"#;
/// assert_eq!(import::detect(anthropic), Some(Format::AnthropicMessages));
/// assert_eq!(import::detect("hello"), None);
/// ```
pub fn detect(input: &str) -> Option<Format> {
    let text = strip_bom(input);
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return classify_doc(&v);
    }
    let mut any_message = false;
    let mut first = None;
    for (i, (_, line)) in non_blank_lines(text).into_iter().take(200).enumerate() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        // The older Codex layout starts with a bare `{id, timestamp, instructions}`.
        if i == 0
            && v.get("id").is_some_and(Value::is_string)
            && v.get("timestamp").is_some_and(Value::is_string)
            && v.get("type").is_none()
            && v.get("role").is_none()
        {
            return Some(Format::Codex);
        }
        match classify_item(&v) {
            // The session files name themselves on every line; an item format only by the
            // items it happens to have, so any of their lines wins.
            Guess::Is(f @ (Format::Codex | Format::ClaudeCode)) => return Some(f),
            Guess::Is(f) => {
                first.get_or_insert(f);
            }
            Guess::Message => any_message = true,
            Guess::Unknown => {}
        }
    }
    first.or(any_message.then_some(Format::OpenAiChat))
}

enum Guess {
    Is(Format),
    /// A `{role, content}` message any of the message formats could hold.
    Message,
    Unknown,
}

fn classify_doc(v: &Value) -> Option<Format> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => {
            if o.contains_key("input")
                || o.get("object").and_then(Value::as_str) == Some("response")
            {
                return Some(Format::OpenAiResponses);
            }
            if o.contains_key("choices") {
                return Some(Format::OpenAiChat);
            }
            match o.get("messages") {
                Some(Value::Array(m)) => {
                    if o.contains_key("system") {
                        return Some(Format::AnthropicMessages);
                    }
                    m.iter().collect()
                }
                _ => vec![v],
            }
        }
        _ => return None,
    };
    let mut any_message = false;
    for item in items {
        match classify_item(item) {
            Guess::Is(f) => return Some(f),
            Guess::Message => any_message = true,
            Guess::Unknown => {}
        }
    }
    any_message.then_some(Format::OpenAiChat)
}

const CODEX_TYPES: &[&str] = &[
    "session_meta",
    "response_item",
    "event_msg",
    "turn_context",
    "compacted",
];

const RESPONSES_TYPES: &[&str] = &[
    "function_call",
    "function_call_output",
    "reasoning",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "local_shell_call_output",
    "web_search_call",
    "item_reference",
];

fn classify_item(v: &Value) -> Guess {
    let ty = str_of(v, "type");
    if v.get("payload").is_some() && ty.is_some_and(|t| CODEX_TYPES.contains(&t)) {
        return Guess::Is(Format::Codex);
    }
    if v.get("record_type").is_some() {
        return Guess::Is(Format::Codex);
    }
    if v.get("sessionId").is_some()
        || v.get("parentUuid").is_some()
        || (ty == Some("summary") && v.get("leafUuid").is_some())
    {
        return Guess::Is(Format::ClaudeCode);
    }
    match str_of(v, "object") {
        Some("response") => return Guess::Is(Format::OpenAiResponses),
        Some("chat.completion") => return Guess::Is(Format::OpenAiChat),
        _ => {}
    }
    if ty.is_some_and(|t| RESPONSES_TYPES.contains(&t)) {
        return Guess::Is(Format::OpenAiResponses);
    }
    if v.get("tool_calls").is_some() || v.get("tool_call_id").is_some() {
        return Guess::Is(Format::OpenAiChat);
    }
    if ty == Some("message") && v.get("stop_reason").is_some() {
        return Guess::Is(Format::AnthropicMessages);
    }
    let Some(role) = str_of(v, "role") else {
        return Guess::Unknown;
    };
    if role == "tool" {
        return Guess::Is(Format::OpenAiChat);
    }
    if let Some(Value::Array(parts)) = v.get("content") {
        for p in parts {
            match str_of(p, "type") {
                Some("input_text" | "output_text" | "input_image" | "input_file") => {
                    return Guess::Is(Format::OpenAiResponses);
                }
                Some("image_url" | "input_audio") => return Guess::Is(Format::OpenAiChat),
                Some(
                    "tool_use" | "tool_result" | "thinking" | "redacted_thinking" | "image"
                    | "document",
                ) => return Guess::Is(Format::AnthropicMessages),
                _ => {}
            }
        }
    }
    Guess::Message
}
