//! Provider shapes: the materialised session as the message list a provider accepts on resume.
//!
//! - [`openai::chat_messages`]: OpenAI chat-completions `messages`.
//! - [`anthropic::messages`]: Anthropic Messages `system` and `messages`.
//!
//! Both read the model context ([`Session::context`]: active messages from the last compaction
//! boundary on), parse each message body once, and never panic: a body that is not a JSON
//! object, or a part missing a field the target needs, is a [`ProviderError`] naming the
//! message id and the field (`parts[1].arguments`).
//!
//! # What both do the same way
//!
//! - **Tool results are placed after the call.** Every `tool_result` part (from a `tool` or
//!   `user` message) is moved to just after the assistant message that issued its call, in the
//!   order of that message's calls. Both providers refuse a call whose answer does not follow
//!   it; turnwal keeps results where they were appended (a repair appends them at the end).
//! - **Results nothing in the context asked for are dropped**: a result whose call is not in the
//!   context (rewound, or before the compaction boundary) would be refused as answering an
//!   unknown id. Of several results for one call, the first is kept and the others dropped.
//! - **A call without a result is emitted as it is**: nothing is invented. Run
//!   [`crate::Journal::repair_dangling_tool_calls`] first after a crash, or the provider will
//!   refuse the history.
//! - **Messages cut by a crash** (status partial or interrupted, built from deltas) are kept
//!   with the text they have. Their `tool_call` parts without `call_id` or `name` are dropped
//!   (no result can answer them); their arguments may be truncated JSON (see each shape).
//! - **Where parts may be**: `tool_call` parts only in `assistant` messages; `tool_result` parts
//!   only in `user` and `tool` messages; `image` parts only in `user` messages; `text` parts
//!   anywhere but in `tool` messages. Anything else is [`ProviderError::Unsupported`].
//! - **Carried by neither**: the `outcome` of a tool result (`aborted`, ...; its content says
//!   it), message ids, turns, statuses, timestamps, usage, metadata, compaction boundaries (only
//!   the context from the last one on is exported), rewound messages, and every part type
//!   neither shape knows (opaque provider items: Responses `web_search_call`, chat
//!   `input_audio`, ...) — those are dropped. A message left with nothing to send is omitted.
//!
//! Round trips: importing an export ([`crate::import`], formats `openai-chat` and
//! `anthropic`) and exporting again gives the same export, byte for byte; the session
//! imported back equals the original on everything the target carries (`tests/import.rs`
//! checks both for every import format).
//!
//! # What each format cannot carry
//!
//! OpenAI chat completions (see [`openai`]): thinking parts of any kind (no field for them;
//! dropped), images anywhere but in user messages, images inside tool results (a tool message
//! holds text only; dropped), `is_error` of a tool result (dropped: the content has to say it).
//!
//! Anthropic Messages (see [`anthropic`]): system or developer messages in the middle of the
//! conversation (all of them become the one top-level `system` text, in order; their position
//! is lost), the difference between system and developer, thinking without a `signature`
//! (dropped: the API refuses unsigned thinking), empty text parts (refused by the API;
//! dropped), and message boundaries between consecutive messages of one role (merged, as the
//! API requires alternating roles).
//!
//! The same, side by side (`turnwal export --format ...`; the turnwal JSONL export carries
//! everything):
//!
//! | what the session holds | OpenAI chat | Anthropic Messages |
//! |---|---|---|
//! | text | kept (empty text too) | kept; empty text dropped (the API refuses it) |
//! | system and developer messages | kept in place, role kept | joined, in order, into the one top-level `system`: position and system/developer difference lost |
//! | images in user messages | `image_url` (a `source` becomes a URL; `detail` kept) | `image` with a `source` (a URL becomes a `base64` or `url` source; `detail` dropped) |
//! | images in tool results | dropped (a tool message holds text) | kept |
//! | thinking with an Anthropic `signature`, `redacted_thinking` | dropped | kept byte for byte |
//! | thinking without one (OpenAI reasoning summaries and `encrypted_content`, cut streams) | dropped | dropped |
//! | tool calls | `tool_calls`, arguments as a JSON string | `tool_use`, `input` as an object (arguments must be a JSON object) |
//! | tool results | a `tool` message after the call; content as text (text items joined by newlines); `is_error` dropped | a `tool_result` block after the call; content string or blocks; `is_error` kept |
//! | `outcome` of a tool result | dropped | dropped |
//! | message boundaries | tool results become `tool` messages | neighbours of one role merged |
//! | `name`, `refusal` | kept | dropped |
//! | provider-specific parts | chat `input_audio` and `file` kept; the rest dropped | `document` kept; the rest dropped (Responses `web_search_call`, `server_tool_use`, ...) |
//! | ids, turns, statuses, timestamps, usage, metadata | dropped | dropped |
//! | messages before the last compaction, rewound messages | not exported: the export is the model context | same |

pub mod anthropic;
pub mod openai;

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::event::Role;
use crate::{MessageStatus, MessageView, Session};

/// Why a session could not be put in a provider's shape. Every variant names the message, and
/// all but [`ProviderError::InvalidBody`] the field (a path in the body, like
/// `parts[2].arguments`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderError {
    /// The body is not JSON, or not a JSON object.
    InvalidBody {
        /// The message id.
        message_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A field the target needs is missing, or has the wrong type or value.
    InvalidField {
        /// The message id.
        message_id: String,
        /// Path of the field in the body (`parts[0].text`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The message holds something the target cannot carry where it is (an image in an
    /// assistant message, a tool call in a user message).
    Unsupported {
        /// The message id.
        message_id: String,
        /// Path of the part in the body (`parts[1]`).
        field: String,
        /// What cannot be carried.
        reason: String,
    },
}

impl ProviderError {
    /// The id of the message at fault.
    pub fn message_id(&self) -> &str {
        match self {
            ProviderError::InvalidBody { message_id, .. }
            | ProviderError::InvalidField { message_id, .. }
            | ProviderError::Unsupported { message_id, .. } => message_id,
        }
    }

    /// The field at fault, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ProviderError::InvalidBody { .. } => None,
            ProviderError::InvalidField { field, .. }
            | ProviderError::Unsupported { field, .. } => Some(field),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::InvalidBody { message_id, reason } => {
                write!(f, "message {message_id:?}: body {reason}")
            }
            ProviderError::InvalidField {
                message_id,
                field,
                reason,
            } => write!(f, "message {message_id:?}: {field}: {reason}"),
            ProviderError::Unsupported {
                message_id,
                field,
                reason,
            } => write!(
                f,
                "message {message_id:?}: {field}: cannot be carried: {reason}"
            ),
        }
    }
}

impl std::error::Error for ProviderError {}

/// A JSON object.
pub(crate) type Obj = Map<String, Value>;

/// One message of the context, parsed.
#[derive(Debug)]
pub(crate) struct Msg {
    /// Message id.
    pub(crate) id: String,
    /// Role (from the fold, which took it from the body).
    pub(crate) role: Role,
    /// Built from deltas and never given its final form (a crash or a live stream cut it).
    pub(crate) cut: bool,
    /// Parts with their index in the body's `parts`.
    pub(crate) parts: Vec<(usize, Part)>,
    /// The body's `name`, if it is a string (chat completions carries it).
    pub(crate) name: Option<String>,
    /// The body's `refusal`, if it is a string (chat completions carries it on assistant
    /// messages).
    pub(crate) refusal: Option<String>,
}

/// One part of a message, parsed as far as the shapes need.
#[derive(Debug)]
pub(crate) enum Part {
    /// `{"type":"text","text"}`.
    Text(String),
    /// `{"type":"image",...}`, verbatim.
    Image(Obj),
    /// `{"type":"tool_call",...}`.
    ToolCall(ToolCall),
    /// `{"type":"tool_result",...}`.
    ToolResult(ToolResult),
    /// `{"type":"thinking",...}`, verbatim.
    Thinking(Obj),
    /// Any other part type, verbatim.
    Other(Obj),
}

/// A `tool_call` part.
#[derive(Debug)]
pub(crate) struct ToolCall {
    /// `call_id`.
    pub(crate) call_id: String,
    /// `name`.
    pub(crate) name: String,
    /// `arguments`: a JSON string or an object.
    pub(crate) arguments: Value,
}

/// A `tool_result` part.
#[derive(Debug)]
pub(crate) struct ToolResult {
    /// Id of the message it came from.
    pub(crate) message_id: String,
    /// Its index in that message's parts.
    pub(crate) index: usize,
    /// `call_id`.
    pub(crate) call_id: String,
    /// `content`, any JSON.
    pub(crate) content: Value,
    /// `is_error` (false if absent).
    pub(crate) is_error: bool,
}

/// The context in the order both providers need.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A message without its `tool_result` parts.
    Message(Msg),
    /// The results answering the calls of the message just before, in the order of its calls.
    Results(Vec<ToolResult>),
}

fn invalid(m: &str, field: impl Into<String>, reason: impl Into<String>) -> ProviderError {
    ProviderError::InvalidField {
        message_id: m.to_string(),
        field: field.into(),
        reason: reason.into(),
    }
}

pub(crate) fn unsupported(
    m: &str,
    field: impl Into<String>,
    reason: impl Into<String>,
) -> ProviderError {
    ProviderError::Unsupported {
        message_id: m.to_string(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// A required string field of a part.
fn req_string(m: &str, p: &mut Obj, i: usize, key: &str) -> Result<String, ProviderError> {
    match p.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(m, format!("parts[{i}].{key}"), "must be a string")),
        None => Err(invalid(m, format!("parts[{i}].{key}"), "is missing")),
    }
}

/// Parses one message body and checks each part is allowed in a message of its role.
pub(crate) fn parse_message(view: &MessageView) -> Result<Msg, ProviderError> {
    let id = view.id.as_str();
    let body: Value = serde_json::from_str(&view.body).map_err(|e| ProviderError::InvalidBody {
        message_id: id.to_string(),
        reason: format!("is not valid JSON: {e}"),
    })?;
    let Value::Object(mut body) = body else {
        return Err(ProviderError::InvalidBody {
            message_id: id.to_string(),
            reason: "is not a JSON object".into(),
        });
    };
    let raw = match body.remove("parts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid(id, "parts", "must be an array")),
    };
    let role = view.role;
    let cut = view.status != MessageStatus::Complete;
    let mut parts = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let Value::Object(mut p) = p else {
            return Err(invalid(id, format!("parts[{i}]"), "must be an object"));
        };
        let ty = match p.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(invalid(id, format!("parts[{i}].type"), "must be a string")),
            None => return Err(invalid(id, format!("parts[{i}].type"), "is missing")),
        };
        let part = match ty.as_str() {
            "text" => {
                if role == Role::Tool {
                    return Err(unsupported(
                        id,
                        format!("parts[{i}]"),
                        "a text part in a tool message (tool output goes in a tool_result part)",
                    ));
                }
                Part::Text(req_string(id, &mut p, i, "text")?)
            }
            "image" => {
                if role != Role::User {
                    return Err(unsupported(
                        id,
                        format!("parts[{i}]"),
                        format!(
                            "an image in a {} message (only user messages carry images)",
                            role.as_str()
                        ),
                    ));
                }
                Part::Image(p)
            }
            "tool_call" => {
                if role != Role::Assistant {
                    return Err(unsupported(
                        id,
                        format!("parts[{i}]"),
                        format!("a tool_call in a {} message", role.as_str()),
                    ));
                }
                if cut
                    && !(p.get("call_id").is_some_and(Value::is_string)
                        && p.get("name").is_some_and(Value::is_string))
                {
                    // Cut before its id or name arrived: nothing can answer it.
                    continue;
                }
                let call_id = req_string(id, &mut p, i, "call_id")?;
                let name = req_string(id, &mut p, i, "name")?;
                let arguments = match p.remove("arguments") {
                    Some(a @ (Value::String(_) | Value::Object(_))) => a,
                    None if cut => Value::String(String::new()),
                    Some(_) => {
                        return Err(invalid(
                            id,
                            format!("parts[{i}].arguments"),
                            "must be a JSON string or an object",
                        ));
                    }
                    None => return Err(invalid(id, format!("parts[{i}].arguments"), "is missing")),
                };
                Part::ToolCall(ToolCall {
                    call_id,
                    name,
                    arguments,
                })
            }
            "tool_result" => {
                if !matches!(role, Role::User | Role::Tool) {
                    return Err(unsupported(
                        id,
                        format!("parts[{i}]"),
                        format!("a tool_result in a {} message", role.as_str()),
                    ));
                }
                let call_id = req_string(id, &mut p, i, "call_id")?;
                let Some(content) = p.remove("content") else {
                    return Err(invalid(id, format!("parts[{i}].content"), "is missing"));
                };
                let is_error = match p.remove("is_error") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => b,
                    Some(_) => {
                        return Err(invalid(
                            id,
                            format!("parts[{i}].is_error"),
                            "must be a boolean",
                        ));
                    }
                };
                Part::ToolResult(ToolResult {
                    message_id: id.to_string(),
                    index: i,
                    call_id,
                    content,
                    is_error,
                })
            }
            "thinking" => Part::Thinking(p),
            _ => Part::Other(p),
        };
        parts.push((i, part));
    }
    let mut string = |key: &str| match body.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let name = string("name");
    let refusal = string("refusal").filter(|_| role == Role::Assistant);
    Ok(Msg {
        id: id.to_string(),
        role,
        cut,
        parts,
        name,
        refusal,
    })
}

/// The context, parsed, with every answered call's result moved to just after the message
/// that issued the call (first result per call; results for calls not in the context
/// dropped).
pub(crate) fn conversation(session: &Session) -> Result<Vec<Entry>, ProviderError> {
    let msgs = session
        .context()
        .into_iter()
        .map(parse_message)
        .collect::<Result<Vec<_>, _>>()?;
    let issued: HashSet<String> = msgs
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|(_, p)| match p {
            Part::ToolCall(c) => Some(c.call_id.clone()),
            _ => None,
        })
        .collect();
    let mut results: HashMap<String, ToolResult> = HashMap::new();
    let mut stripped = Vec::with_capacity(msgs.len());
    for mut m in msgs {
        let mut kept = Vec::with_capacity(m.parts.len());
        for (i, p) in std::mem::take(&mut m.parts) {
            match p {
                Part::ToolResult(r) => {
                    if issued.contains(&r.call_id) {
                        results.entry(r.call_id.clone()).or_insert(r);
                    }
                }
                other => kept.push((i, other)),
            }
        }
        m.parts = kept;
        stripped.push(m);
    }
    let mut out = Vec::with_capacity(stripped.len() * 2);
    for m in stripped {
        let answered: Vec<ToolResult> = m
            .parts
            .iter()
            .filter_map(|(_, p)| match p {
                Part::ToolCall(c) => results.remove(&c.call_id),
                _ => None,
            })
            .collect();
        out.push(Entry::Message(m));
        if !answered.is_empty() {
            out.push(Entry::Results(answered));
        }
    }
    Ok(out)
}

/// A `data:<media type>;base64,<data>` URL split into media type and data.
pub(crate) fn split_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    Some((media_type, data))
}
