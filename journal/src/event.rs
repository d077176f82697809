//! The event model: the JSON envelope of docs/EVENTS.md on the way in and out, and the typed fields
//! stored beside the body so that replay never parses JSON.
//!
//! Invariants:
//! - `Event::body` is the body object's JSON text as it came, with insignificant whitespace
//!   removed, so it always fits on one JSONL line and exports JSON-equal to what was appended.
//! - The typed [`Kind`] fields are derived from that same body at append time; they never
//!   disagree with it.

use bincode::{Decode, Encode};
use serde_json::{Map, Value};

use crate::body::Body;
use crate::error::InputError;

/// Largest `turn` number accepted (inclusive): 2^32.
///
/// A turn a second for 136 years, so no real session comes near it; anything above is a bug
/// in the caller (an id, a timestamp or a hash where a counter belongs) and is refused. It is
/// also far below 2^53, so every accepted turn stays exact for JSON consumers that read numbers
/// as IEEE doubles (JavaScript, jq): what `export` prints is what they read back.
pub const TURN_MAX: u64 = 1 << 32;

/// One stored event: timestamp, optional turn, the typed fields and the body JSON text.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct Event {
    /// Milliseconds since the Unix epoch, UTC.
    pub ts_ms: i64,
    /// The agent turn this event belongs to, if the harness said.
    pub turn: Option<u64>,
    /// Kind and the typed fields replay needs.
    pub kind: Kind,
    /// The body object as compact JSON text (shared, not copied, when read from disk).
    pub body: Body,
}

/// The kind of an event with its typed fields.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Kind {
    /// Written once by the journal at creation.
    Session(SessionInfo),
    /// Metadata changes: key and its new value as JSON text, `None` deletes the key.
    Meta(Vec<(String, Option<String>)>),
    /// Turn lifecycle.
    Turn {
        /// What happened to the turn.
        event: TurnEvent,
        /// Why, if given.
        reason: Option<String>,
    },
    /// A message in (possibly final) form.
    Message(MessageInfo),
    /// A streamed fragment of a message part.
    Delta(DeltaInfo),
    /// Token usage of one model call.
    Usage(UsageInfo),
    /// Tool execution ledger.
    ToolRun {
        /// The tool call this run belongs to.
        call_id: String,
        /// Started or finished.
        event: ToolRunEvent,
    },
    /// Messages first appended after `to_seq` leave the active conversation.
    Rewind {
        /// Last seq that stays active.
        to_seq: u64,
        /// Why, if given.
        reason: Option<String>,
    },
    /// An agent-level context boundary.
    Compaction {
        /// The message that summarises what came before.
        summary_message_id: String,
        /// The summary covers events up to this seq.
        through_seq: u64,
        /// Why, if given.
        reason: Option<String>,
    },
    /// `x-<name>`: stored and exported verbatim, ignored by replay semantics.
    Extension {
        /// The part after `x-`.
        name: String,
    },
}

/// Body of the `session` event.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct SessionInfo {
    /// Session id (32 lowercase hex digits for journals turnwal creates).
    pub id: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// The parent session and seq this one was forked from.
    pub fork_of: Option<(String, u64)>,
}

/// Typed fields of a `message` event.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct MessageInfo {
    /// Message id; a later message with the same id supersedes this one.
    pub id: String,
    /// Author role.
    pub role: Role,
    /// `status` if it is a string.
    pub status: Option<String>,
    /// `tool_call` parts: (call_id, name).
    pub tool_calls: Vec<(String, String)>,
    /// `tool_result` parts: (call_id, outcome).
    pub tool_results: Vec<(String, Option<String>)>,
}

/// Typed fields of a `delta` event.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct DeltaInfo {
    /// The message the fragment belongs to.
    pub message_id: String,
    /// Part index inside that message.
    pub index: u32,
    /// Fragment type.
    pub part: DeltaPart,
    /// Text fragment (text / thinking).
    pub text: Option<String>,
    /// Arguments fragment (tool_call).
    pub arguments: Option<String>,
    /// Tool call id (tool_call).
    pub call_id: Option<String>,
    /// Tool name (tool_call).
    pub name: Option<String>,
}

/// Typed fields of a `usage` event.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct UsageInfo {
    /// Idempotency key: one model call.
    pub call_key: String,
    /// Model name.
    pub model: String,
    /// Input tokens.
    pub input_total: u64,
    /// Input tokens read from cache.
    pub cache_read: Option<u64>,
    /// Input tokens written to cache.
    pub cache_write: Option<u64>,
    /// Output tokens.
    pub output_total: u64,
    /// Reasoning tokens.
    pub reasoning: Option<u64>,
    /// Cost amount and currency.
    pub cost: Option<(f64, String)>,
    /// The provider marked this record final.
    pub is_final: bool,
}

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The JSON spelling.
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s),+ } }
            /// Parses the JSON spelling.
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$v),)+ _ => None } }
        }
    };
}

str_enum!(
    /// Message author.
    Role { /** system */ System = "system", /** developer */ Developer = "developer",
           /** user */ User = "user", /** assistant */ Assistant = "assistant", /** tool */ Tool = "tool" }
);
str_enum!(
    /// Turn lifecycle events.
    TurnEvent { /** started */ Started = "started", /** completed */ Completed = "completed",
                /** interrupted */ Interrupted = "interrupted", /** aborted */ Aborted = "aborted",
                /** failed */ Failed = "failed" }
);
str_enum!(
    /// Delta fragment types.
    DeltaPart { /** text */ Text = "text", /** thinking */ Thinking = "thinking", /** tool_call */ ToolCall = "tool_call" }
);
str_enum!(
    /// Tool run ledger events.
    ToolRunEvent { /** started */ Started = "started", /** finished */ Finished = "finished" }
);

impl Kind {
    /// The kind code stored in the record frame header (see FORMAT.md). Never 0.
    pub fn code(&self) -> u8 {
        match self {
            Kind::Session(_) => 1,
            Kind::Meta(_) => 2,
            Kind::Turn { .. } => 3,
            Kind::Message(_) => 4,
            Kind::Delta(_) => 5,
            Kind::Usage(_) => 6,
            Kind::ToolRun { .. } => 7,
            Kind::Rewind { .. } => 8,
            Kind::Compaction { .. } => 9,
            Kind::Extension { .. } => 10,
        }
    }

    /// Highest kind code in use.
    pub const CODE_MAX: u8 = 10;

    /// The envelope spelling of the kind (`x-<name>` for extensions).
    pub fn name(&self) -> std::borrow::Cow<'_, str> {
        let fixed = match self {
            Kind::Session(_) => "session",
            Kind::Meta(_) => "meta",
            Kind::Turn { .. } => "turn",
            Kind::Message(_) => "message",
            Kind::Delta(_) => "delta",
            Kind::Usage(_) => "usage",
            Kind::ToolRun { .. } => "tool_run",
            Kind::Rewind { .. } => "rewind",
            Kind::Compaction { .. } => "compaction",
            Kind::Extension { name } => return format!("x-{name}").into(),
        };
        fixed.into()
    }
}

impl Event {
    /// Parses one append envelope (JSON text, no `seq`). `now_ms` stamps events without `ts`.
    ///
    /// Refuses, with the offending field named: invalid JSON, a supplied `seq`, a missing or
    /// unknown `kind`, `session` (journal-only), a missing or non-object `body`, a bad `ts` or
    /// `turn`, and kind-specific required fields.
    ///
    /// One serde pass over the envelope with the body kept as text, then one pass over a compact
    /// `message`, `usage` or `delta` body for its typed fields (`crate::stored`); other bodies
    /// are read as a DOM. A repeated envelope field is refused.
    ///
    /// ```
    /// use turnwal_journal::event::{Event, Kind, Role};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let line = r#"{"kind":"message","turn":2,"body":{"id":"a1", "role":"assistant",
    ///     "parts":[{"type":"tool_call","call_id":"c1","name":"grep","arguments":"{}"}]}}"#;
    /// let event = Event::from_envelope(line, turnwal_journal::event::now_ms())?;
    /// assert_eq!(event.turn, Some(2));
    /// let Kind::Message(m) = &event.kind else { unreachable!() };
    /// assert_eq!((m.id.as_str(), m.role), ("a1", Role::Assistant));
    /// assert_eq!(m.tool_calls, [("c1".to_string(), "grep".to_string())]);
    /// assert!(!event.body.as_str().contains(' ')); // stored compact, exported JSON-equal
    ///
    /// let err = Event::from_envelope(r#"{"seq":7,"kind":"meta","body":{}}"#, 0).unwrap_err();
    /// assert_eq!(err.field, "seq"); // the journal assigns seqs
    /// # Ok(()) }
    /// ```
    pub fn from_envelope(text: &str, now_ms: i64) -> Result<Event, InputError> {
        crate::stored::parse_append_envelope(text, now_ms)
    }

    /// The first reading of an append envelope, a DOM of the whole of it, kept as the reference
    /// `from_envelope` is tested against (`journal/tests/stored_fast.rs`). Not for use: slower,
    /// and it keeps the last of a repeated envelope field instead of refusing it.
    #[doc(hidden)]
    pub fn from_envelope_reference(text: &str, now_ms: i64) -> Result<Event, InputError> {
        let env: Map<String, Value> = serde_json::from_str(text)
            .map_err(|e| InputError::new("envelope", format!("not a JSON object: {e}")))?;
        for key in env.keys() {
            if !matches!(key.as_str(), "seq" | "ts" | "kind" | "turn" | "body") {
                // An empty key still gets a field to name: the envelope itself.
                return Err(if key.is_empty() {
                    InputError::new("envelope", "unknown field \"\" (an empty key)")
                } else {
                    InputError::new(key, "unknown envelope field")
                });
            }
        }
        if env.contains_key("seq") {
            return Err(InputError::new(
                "seq",
                "must be absent: the journal assigns it",
            ));
        }
        let kind_name = match env.get("kind") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(InputError::new("kind", "must be a string")),
            None => return Err(InputError::new("kind", "missing")),
        };
        let ts_ms = match env.get("ts") {
            None | Some(Value::Null) => now_ms,
            Some(Value::String(s)) => {
                parse_ts_rfc3339(s).ok_or_else(|| InputError::new("ts", ts_refusal(s)))?
            }
            Some(_) => return Err(InputError::new("ts", "must be a string")),
        };
        let turn = match env.get("turn") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(t) if t <= TURN_MAX => Some(t),
                _ => {
                    return Err(InputError::new(
                        "turn",
                        format!("must be an integer from 0 to {TURN_MAX}"),
                    ));
                }
            },
        };
        let body = match env.get("body") {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(InputError::new("body", "must be a JSON object")),
            None => return Err(InputError::new("body", "missing")),
        };
        let kind = typed_kind(kind_name, body)?;
        if matches!(kind, Kind::Turn { .. }) && turn.is_none() {
            return Err(InputError::new("turn", "required for turn events"));
        }
        // Keep the body's own text (not a re-serialisation): numbers and key order stay as sent.
        let raw = raw_body(text)?;
        Ok(Event {
            ts_ms,
            turn,
            kind,
            body: Body::from(raw),
        })
    }

    /// Builds the journal's own `session` event.
    pub fn session(info: SessionInfo) -> Event {
        let mut body = Map::new();
        body.insert("id".into(), Value::String(info.id.clone()));
        body.insert(
            "created_at".into(),
            Value::String(format_ts(info.created_at_ms)),
        );
        if let Some((parent, seq)) = &info.fork_of {
            let mut f = Map::new();
            f.insert("session".into(), Value::String(parent.clone()));
            f.insert("seq".into(), Value::from(*seq));
            body.insert("fork_of".into(), Value::Object(f));
        }
        let created_at_ms = info.created_at_ms;
        Event {
            ts_ms: created_at_ms,
            turn: None,
            kind: Kind::Session(info),
            body: Body::from(Value::Object(body).to_string()),
        }
    }

    /// Writes the export envelope of this event as one JSON line (without the newline): what
    /// `turnwal export --raw` and snapshot files hold, `{"seq","ts","kind","turn"?,"body"}`.
    ///
    /// ```
    /// use turnwal_journal::event::Event;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let event = Event::from_envelope(r#"{"kind":"meta","body":{"title": "t"}}"#, 0)?;
    /// let mut line = String::new();
    /// event.write_envelope(42, &mut line);
    /// let expected = r#"{"seq":42,"ts":"1970-01-01T00:00:00.000Z","kind":"meta","#;
    /// assert_eq!(line, format!(r#"{expected}"body":{{"title":"t"}}}}"#));
    /// # Ok(()) }
    /// ```
    pub fn write_envelope(&self, seq: u64, out: &mut String) {
        use std::fmt::Write as _;
        // Infallible: writing to a String.
        let _ = write!(
            out,
            "{{\"seq\":{seq},\"ts\":\"{}\",\"kind\":",
            format_ts(self.ts_ms)
        );
        out.push_str(&Value::String(self.kind.name().into_owned()).to_string());
        if let Some(t) = self.turn {
            let _ = write!(out, ",\"turn\":{t}");
        }
        out.push_str(",\"body\":");
        out.push_str(&self.body);
        out.push('}');
    }
}

/// Parses an RFC 3339 timestamp with an offset into ms since the epoch (floored).
///
/// The reader of stored text (snapshot lines, snapshot headers): as lenient as jiff, which also
/// takes ISO 8601 and RFC 9557 forms, and the years before 0000 [`format_ts`] may write. Append
/// input goes through the strict [`parse_ts_rfc3339`].
pub fn parse_ts(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Parses a `ts` of an append envelope: exactly the `date-time` of RFC 3339 (section 5.6),
/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`, with `T` and `Z` in either case and a space
/// for `T` (the note in 5.6), into ms since the epoch (floored). jiff then checks the calendar
/// (no 30 February, no hour 24) and the range it represents (years 0000 to 9999, minus a day
/// at the far end); a leap second `:60` reads as `:59`.
///
/// Refuses what jiff alone would take but RFC 3339 does not: no seconds, the basic format
/// (`20261121T150405Z`), signed or six-digit years, `+0100` or `+01` offsets, a comma before
/// the fraction, a `[zone]` annotation. Such a `ts` is read back differently by other tools.
pub fn parse_ts_rfc3339(s: &str) -> Option<i64> {
    is_rfc3339_shape(s.as_bytes())
        .then(|| parse_ts(s))
        .flatten()
}

/// Whether `b` has the shape of an RFC 3339 `date-time` (digits where digits go; ranges are
/// jiff's to check).
fn is_rfc3339_shape(b: &[u8]) -> bool {
    // full-date "T" partial-time without the fraction: 19 bytes.
    const SHAPE: &[u8; 19] = b"dddd-dd-ddTdd:dd:dd";
    let Some((head, rest)) = b.split_at_checked(SHAPE.len()) else {
        return false;
    };
    let head_ok = head.iter().zip(SHAPE).all(|(&c, &want)| match want {
        b'd' => c.is_ascii_digit(),
        b'T' => matches!(c, b'T' | b't' | b' '),
        _ => c == want,
    });
    if !head_ok {
        return false;
    }
    // secfrac = "." 1*DIGIT
    let rest = match rest.strip_prefix(b".") {
        Some(frac) => {
            let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return false;
            }
            frac.get(digits..).unwrap_or_default()
        }
        None => rest,
    };
    // time-offset = "Z" / ("+" / "-") time-hour ":" time-minute
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Why `ts` text was refused, with an example of what is accepted.
pub(crate) fn ts_refusal(s: &str) -> String {
    format!(
        "not an RFC 3339 timestamp with offset (like 2026-11-21T15:04:05.123Z or \
         2026-11-21T16:04:05+01:00): {s:?}"
    )
}

/// Formats ms since the epoch as RFC 3339 UTC with millisecond precision.
pub fn format_ts(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// Current time in ms since the epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn raw_body(text: &str) -> Result<String, InputError> {
    #[derive(serde::Deserialize)]
    struct BodyOnly<'a> {
        #[serde(borrow)]
        body: &'a serde_json::value::RawValue,
    }
    let b: BodyOnly<'_> = serde_json::from_str(text)
        .map_err(|e| InputError::new("body", format!("unreadable: {e}")))?;
    Ok(compact_json(b.body.get()))
}

/// Removes whitespace outside strings from valid JSON text.
///
/// Copies runs between whitespace bytes, and skips string contents eight bytes at a time: the
/// text of a message is most of its body, and this runs on every append.
pub fn compact_json(json: &str) -> String {
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut i, mut run) = (0, 0);
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += 1;
                // To the closing quote, stepping over escapes.
                loop {
                    match find_quote_or_backslash(b.get(i..).unwrap_or_default()) {
                        Some(off) if b.get(i + off) == Some(&b'\\') => i += off + 2,
                        Some(off) => {
                            i += off + 1;
                            break;
                        }
                        None => {
                            i = b.len();
                            break;
                        }
                    }
                }
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                // ASCII bytes: both ends of the run are character boundaries.
                out.push_str(json.get(run..i).unwrap_or_default());
                i += 1;
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(json.get(run..).unwrap_or_default());
    out
}

/// Index of the first `"` or `\\` in `s`, eight bytes at a time.
pub(crate) fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    // Whether any byte of `w` is zero (exact: no false positives or negatives).
    let has_zero = |w: u64| (w.wrapping_sub(ONES) & !w & HIGHS) != 0;
    let mut at = 0;
    for chunk in s.chunks_exact(8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_ne_bytes(bytes);
        if has_zero(w ^ QUOTES) || has_zero(w ^ BACKSLASHES) {
            break;
        }
        at += 8;
    }
    s.get(at..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|off| at + off)
}

type Obj = Map<String, Value>;

pub(crate) fn req_str<'a>(o: &'a Obj, key: &str, field: &str) -> Result<&'a str, InputError> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(InputError::new(field, "must not be empty")),
        Some(_) => Err(InputError::new(field, "must be a string")),
        None => Err(InputError::new(field, "missing")),
    }
}

fn opt_str(o: &Obj, key: &str, field: &str) -> Result<Option<String>, InputError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(InputError::new(field, "must be a string")),
    }
}

pub(crate) fn req_u64(o: &Obj, key: &str, field: &str) -> Result<u64, InputError> {
    match o.get(key) {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| InputError::new(field, "must be a non-negative integer")),
        None => Err(InputError::new(field, "missing")),
    }
}

fn opt_u64(o: &Obj, key: &str, field: &str) -> Result<Option<u64>, InputError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| InputError::new(field, "must be a non-negative integer")),
    }
}

fn req_obj<'a>(o: &'a Obj, key: &str, field: &str) -> Result<&'a Obj, InputError> {
    match o.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(InputError::new(field, "must be an object")),
        None => Err(InputError::new(field, "missing")),
    }
}

fn req_enum<T>(
    o: &Obj,
    key: &str,
    field: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, InputError> {
    let s = req_str(o, key, field)?;
    parse(s).ok_or_else(|| InputError::new(field, format!("unknown value {s:?}")))
}

pub(crate) fn typed_kind(kind: &str, b: &Obj) -> Result<Kind, InputError> {
    Ok(match kind {
        "session" => {
            return Err(InputError::new(
                "kind",
                "session events are written by the journal, not appendable",
            ));
        }
        "meta" => Kind::Meta(
            b.iter()
                .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| v.to_string())))
                .collect(),
        ),
        "turn" => Kind::Turn {
            event: req_enum(b, "event", "body.event", TurnEvent::parse)?,
            reason: opt_str(b, "reason", "body.reason")?,
        },
        "message" => Kind::Message(message_info(b)?),
        "delta" => {
            let index = req_u64(b, "index", "body.index")?;
            let index = u32::try_from(index)
                .map_err(|_| InputError::new("body.index", "must fit in 32 bits"))?;
            Kind::Delta(DeltaInfo {
                message_id: req_str(b, "message_id", "body.message_id")?.to_string(),
                index,
                part: req_enum(b, "type", "body.type", DeltaPart::parse)?,
                text: opt_str(b, "text", "body.text")?,
                arguments: opt_str(b, "arguments", "body.arguments")?,
                call_id: opt_str(b, "call_id", "body.call_id")?,
                name: opt_str(b, "name", "body.name")?,
            })
        }
        "usage" => {
            let input = req_obj(b, "input", "body.input")?;
            let output = req_obj(b, "output", "body.output")?;
            let cost = match b.get("cost") {
                None | Some(Value::Null) => None,
                Some(Value::Object(c)) => {
                    let amount = c
                        .get("amount")
                        .and_then(Value::as_f64)
                        .ok_or_else(|| InputError::new("body.cost.amount", "must be a number"))?;
                    Some((
                        amount,
                        req_str(c, "currency", "body.cost.currency")?.to_string(),
                    ))
                }
                Some(_) => return Err(InputError::new("body.cost", "must be an object")),
            };
            let is_final = match b.get("final") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(f)) => *f,
                Some(_) => return Err(InputError::new("body.final", "must be a boolean")),
            };
            Kind::Usage(UsageInfo {
                call_key: req_str(b, "call_key", "body.call_key")?.to_string(),
                model: req_str(b, "model", "body.model")?.to_string(),
                input_total: req_u64(input, "total", "body.input.total")?,
                cache_read: opt_u64(input, "cache_read", "body.input.cache_read")?,
                cache_write: opt_u64(input, "cache_write", "body.input.cache_write")?,
                output_total: req_u64(output, "total", "body.output.total")?,
                reasoning: opt_u64(output, "reasoning", "body.output.reasoning")?,
                cost,
                is_final,
            })
        }
        "tool_run" => Kind::ToolRun {
            call_id: req_str(b, "call_id", "body.call_id")?.to_string(),
            event: req_enum(b, "event", "body.event", ToolRunEvent::parse)?,
        },
        "rewind" => Kind::Rewind {
            to_seq: req_u64(b, "to_seq", "body.to_seq")?,
            reason: opt_str(b, "reason", "body.reason")?,
        },
        "compaction" => Kind::Compaction {
            summary_message_id: req_str(b, "summary_message_id", "body.summary_message_id")?
                .to_string(),
            through_seq: req_u64(b, "through_seq", "body.through_seq")?,
            reason: opt_str(b, "reason", "body.reason")?,
        },
        other => match other.strip_prefix("x-") {
            Some(name) if valid_extension_name(name) => Kind::Extension {
                name: name.to_string(),
            },
            _ => {
                return Err(InputError::new(
                    "kind",
                    format!("unknown kind {other:?} (extensions are spelled x-<name>)"),
                ));
            }
        },
    })
}

fn valid_extension_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn message_info(b: &Obj) -> Result<MessageInfo, InputError> {
    let mut info = MessageInfo {
        id: req_str(b, "id", "body.id")?.to_string(),
        role: req_enum(b, "role", "body.role", Role::parse)?,
        status: b.get("status").and_then(Value::as_str).map(str::to_string),
        tool_calls: Vec::new(),
        tool_results: Vec::new(),
    };
    let parts = match b.get("parts") {
        None | Some(Value::Null) => return Ok(info),
        Some(Value::Array(p)) => p,
        Some(_) => return Err(InputError::new("body.parts", "must be an array")),
    };
    for (i, part) in parts.iter().enumerate() {
        let Some(p) = part.as_object() else {
            return Err(InputError::new(
                format!("body.parts[{i}]"),
                "must be an object",
            ));
        };
        match p.get("type").and_then(Value::as_str) {
            Some("tool_call") => {
                let call_id = req_str(p, "call_id", &format!("body.parts[{i}].call_id"))?;
                let name = req_str(p, "name", &format!("body.parts[{i}].name"))?;
                info.tool_calls
                    .push((call_id.to_string(), name.to_string()));
            }
            Some("tool_result") => {
                let call_id = req_str(p, "call_id", &format!("body.parts[{i}].call_id"))?;
                let outcome = opt_str(p, "outcome", &format!("body.parts[{i}].outcome"))?;
                info.tool_results.push((call_id.to_string(), outcome));
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Event, InputError> {
        Event::from_envelope(s, 1_000)
    }

    #[test]
    fn message_keeps_body_text_and_extracts_tool_calls() -> Result<(), InputError> {
        let e = parse(
            r#"{"kind":"message","turn":2,"body":{"id":"m1","role":"assistant","parts":[{"type":"text","text":"a b"},{"type":"tool_call","call_id":"c1","name":"sh","arguments":"{}"}]}}"#,
        )?;
        assert_eq!(e.turn, Some(2));
        assert_eq!(e.ts_ms, 1_000);
        let Kind::Message(m) = &e.kind else {
            return Err(InputError::new("test", "not a message"));
        };
        assert_eq!(m.role, Role::Assistant);
        assert_eq!(m.tool_calls, vec![("c1".to_string(), "sh".to_string())]);
        assert!(
            e.body.contains("\"a b\""),
            "whitespace inside strings is kept"
        );
        Ok(())
    }

    #[test]
    fn whitespace_outside_strings_is_removed() -> Result<(), InputError> {
        let e = parse("{\"kind\":\"x-note\",\"body\": {\"a\" :\t[1, 2],\n \"b\":\"x \\\" y\"}}")?;
        assert_eq!(e.body, "{\"a\":[1,2],\"b\":\"x \\\" y\"}");
        Ok(())
    }

    /// Found by the `append_input` fuzz target: an envelope with an empty key was refused with
    /// an error naming the field "", which says nothing. It now names the envelope.
    #[test]
    fn regression_an_empty_envelope_key_is_named() {
        let e = parse(r#"{"kind":"rewind","":{"to_seq":0}}"#).unwrap_err();
        assert_eq!(e.field, "envelope");
        assert!(e.reason.contains("empty key"), "{e}");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("not json", "envelope"),
            (r#"{"seq":1,"kind":"meta","body":{}}"#, "seq"),
            (r#"{"body":{}}"#, "kind"),
            (r#"{"kind":"session","body":{}}"#, "kind"),
            (r#"{"kind":"bogus","body":{}}"#, "kind"),
            (r#"{"kind":"meta"}"#, "body"),
            (r#"{"kind":"meta","body":[]}"#, "body"),
            (r#"{"kind":"message","body":{"role":"user"}}"#, "body.id"),
            (
                r#"{"kind":"message","body":{"id":"m","role":"robot"}}"#,
                "body.role",
            ),
            (r#"{"kind":"meta","turn":-1,"body":{}}"#, "turn"),
            (r#"{"kind":"meta","turn":99999999999999,"body":{}}"#, "turn"),
            (r#"{"kind":"turn","body":{"event":"started"}}"#, "turn"),
            (r#"{"kind":"meta","ts":"yesterday","body":{}}"#, "ts"),
            (r#"{"kind":"meta","ts":"20261121T150405Z","body":{}}"#, "ts"),
            (r#"{"kind":"meta","ts":1795273445000,"body":{}}"#, "ts"),
            (r#"{"kind":"meta","turn":4294967297,"body":{}}"#, "turn"),
            (r#"{"kind":"meta","turn":1.5,"body":{}}"#, "turn"),
            (r#"{"kind":"message","body":{"id":"m"}}"#, "body.role"),
            (r#"{"kind":"meta","extra":1,"body":{}}"#, "extra"),
            (
                r#"{"kind":"usage","body":{"call_key":"k","model":"m","input":{},"output":{"total":1}}}"#,
                "body.input.total",
            ),
        ];
        for (input, field) in cases {
            match parse(input) {
                Ok(e) => panic!("{input} was accepted as {e:?}"),
                Err(err) => assert_eq!(err.field, field, "{input}: {err}"),
            }
        }
    }

    /// Append `ts` is RFC 3339 `date-time` and nothing else jiff would also take; both readings
    /// of an append envelope agree.
    #[test]
    fn append_ts_is_strict_rfc3339() {
        let accepted = [
            ("2026-11-21T15:04:05Z", 1_795_273_445_000),
            ("2026-11-21t15:04:05z", 1_795_273_445_000),
            ("2026-11-21 15:04:05Z", 1_795_273_445_000),
            ("2026-11-21T15:04:05.123456789Z", 1_795_273_445_123),
            ("2026-11-21T16:04:05.5+01:00", 1_795_273_445_500),
            ("2026-11-21T15:04:05-00:00", 1_795_273_445_000),
            ("2026-11-21T15:04:60Z", 1_795_273_499_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
        ];
        for (ts, ms) in accepted {
            let line = format!(r#"{{"kind":"meta","ts":"{ts}","body":{{}}}}"#);
            for parsed in [
                Event::from_envelope(&line, 0),
                Event::from_envelope_reference(&line, 0),
            ] {
                assert_eq!(parsed.map(|e| e.ts_ms), Ok(ms), "{ts}");
            }
        }
        let refused = [
            "yesterday",
            "",
            "2026-11-21",
            "2026-11-21T15:04:05",
            "2026-11-21T15:04Z",
            "20261121T150405Z",
            "+002026-11-21T15:04:05Z",
            "-000001-11-21T15:04:05Z",
            "2026-11-21T15:04:05,5Z",
            "2026-11-21T15:04:05.Z",
            "2026-11-21T15:04:05+0100",
            "2026-11-21T15:04:05+01",
            "2026-11-21T15:04:05+01:00:00",
            "2026-11-21T15:04:05+01:00[Europe/Paris]",
            "2026-11-21T15:04:05Z ",
            "2026-02-30T15:04:05Z",
            "2026-11-21T24:00:00Z",
            "2026-1-21T15:04:05Z",
            "２026-11-21T15:04:05Z",
        ];
        for ts in refused {
            let line = format!(r#"{{"kind":"meta","ts":"{ts}","body":{{}}}}"#);
            for parsed in [
                Event::from_envelope(&line, 0),
                Event::from_envelope_reference(&line, 0),
            ] {
                let err = parsed.expect_err(ts);
                assert_eq!(err.field, "ts", "{ts}: {err}");
                assert!(err.reason.contains("RFC 3339"), "{ts}: {err}");
            }
        }
    }

    #[test]
    fn envelope_round_trips_through_export() -> Result<(), InputError> {
        let input = r#"{"ts":"2026-11-21T15:04:05.123+01:00","kind":"usage","turn":3,"body":{"call_key":"k1","model":"m","input":{"total":10,"cache_read":2},"output":{"total":5},"cost":{"amount":0.25,"currency":"USD"},"final":true}}"#;
        let e = parse(input)?;
        let mut line = String::new();
        e.write_envelope(7, &mut line);
        assert_eq!(
            line,
            r#"{"seq":7,"ts":"2026-11-21T14:04:05.123Z","kind":"usage","turn":3,"body":{"call_key":"k1","model":"m","input":{"total":10,"cache_read":2},"output":{"total":5},"cost":{"amount":0.25,"currency":"USD"},"final":true}}"#
        );
        Ok(())
    }

    #[test]
    fn kind_codes_are_distinct_and_nonzero() {
        assert_eq!(Kind::CODE_MAX, 10);
        let k = Kind::Extension { name: "a".into() };
        assert_eq!(k.code(), Kind::CODE_MAX);
        assert_eq!(k.name(), "x-a");
    }
    /// The char-by-char definition `compact_json` must agree with.
    fn compact_reference(json: &str) -> String {
        let mut out = String::new();
        let (mut in_str, mut escaped) = (false, false);
        for c in json.chars() {
            if in_str {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                }
            } else if c == '"' {
                in_str = true;
                out.push(c);
            } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn compact_json_keeps_strings_and_drops_whitespace_between_tokens() {
        let cases = [
            "{ \"a b\" : [ 1 , 2 ] }",
            "{\"t\":\"x \\\" y \\\\\" , \"u\" :\"\\u00e9 é\"}",
            "{\"long\":\"0123456789abcdef 0123456789 \\\"quoted\\\" tail\"}\n",
            "{}",
            " \t\r\n{ } ",
        ];
        for c in cases {
            assert_eq!(compact_json(c), compact_reference(c), "{c:?}");
            let a: Value = serde_json::from_str(c).unwrap();
            let b: Value = serde_json::from_str(&compact_json(c)).unwrap();
            assert_eq!(a, b, "{c:?}");
        }
    }

    proptest::proptest! {
        /// Any JSON text, however spaced and escaped, compacts like the reference and parses
        /// to the same value.
        #[test]
        fn compact_json_matches_its_reference(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("\"".to_string()),
                    proptest::strategy::Just("\\".to_string()),
                    proptest::strategy::Just(" ".to_string()),
                    proptest::strategy::Just("\n".to_string()),
                    "[a-z{}:,\\[\\]0-9é]{0,12}",
                ],
                0..40,
            ),
        ) {
            let text: String = parts.concat();
            proptest::prop_assert_eq!(compact_json(&text), compact_reference(&text));
            let value = Value::String(text);
            let spaced = serde_json::to_string_pretty(&serde_json::json!({"k": [value, 1]})).unwrap();
            let back: Value = serde_json::from_str(&compact_json(&spaced)).unwrap();
            proptest::prop_assert_eq!(back, serde_json::from_str::<Value>(&spaced).unwrap());
        }
    }
}
