//! Reading stored events back: the export envelope (`{"seq","ts","kind","turn"?,"body"}`, what
//! [`Event::write_envelope`] writes) as found in snapshots, parsed without building a JSON DOM of
//! every message body.
//!
//! Invariants:
//! - **Same typed fields as on the way in.** For every kind an append envelope may carry, the
//!   [`Kind`] derived here from a body is exactly the one [`Event::from_envelope`] derives from
//!   that body, and a body is refused here exactly when it is refused there (the refusal may be
//!   worded differently).
//! - **`session` reads back.** Unlike an append envelope, a stored envelope may be the journal's
//!   own `session` event: for any [`SessionInfo`] with a non-empty id and a representable
//!   `created_at_ms`, the export line of [`Event::session`] parses back to that same event.
//! - **The body is kept as text.** [`Event::body`] is the stored body's own JSON text with
//!   insignificant whitespace removed (what [`compact_json`] gives; a body the scan finds
//!   already compact is taken as is), never a re-serialisation.
//! - **Strict envelope.** Exactly the fields `seq` (integer ≥ 1), `ts` (RFC 3339 string),
//!   `kind` (string), `body` (object) and optionally `turn` (integer ≤ [`TURN_MAX`], required
//!   for `turn` events); a missing, unknown, repeated or mistyped field is refused, naming it.
//!   `null` is a wrong type here (the writer never writes it).
//! - **Fast path for messages.** A `message` body is read by a borrowed serde pass that looks
//!   only at `id`, `role`, `status` and, per part, `type`, `call_id`, `name`, `outcome`, skipping
//!   everything else without allocating. It is taken only when its answer is certainly the DOM
//!   path's: a body whose DOM parse could fail (surrogate escapes, exponents or very long
//!   numbers, deep nesting) or whose shape is irregular in any way (wrong type, empty id, unknown
//!   role, repeated key, non-object part, tool part without its ids, ...) goes through the same
//!   DOM code as [`Event::from_envelope`], which gives the answer or the refusal.
//! - **Single-pass fast path first.** Every line is first offered to `fast::parse`, which
//!   reads a writer-form `message` envelope (`{"seq":N,"ts":"…Z","kind":"message","turn":T,
//!   "body":{…}}`, compact, as [`Event::write_envelope`] writes it) in one pass over its bytes:
//!   it validates the body as strictly as serde_json, decides what `scan` decides, extracts the
//!   fields `fast_message` extracts and parses the fixed-form timestamp by hand. Its invariant:
//!   **when it returns `Some`, the full path below returns `Ok` with an identical seq and
//!   event**; on anything it is not certain about it returns `None` and the full path decides,
//!   unchanged. So the fast path never changes what is accepted or refused, nor how.
//!   `journal/tests/stored_fast.rs` checks that invariant on writer lines and on
//!   character-level mutations of them.
//! - No panics: every input, however malformed, gives `Ok` or an [`InputError`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::body::Body;
use crate::error::InputError;
use crate::event::find_quote_or_backslash;
use crate::event::{
    Event, Kind, MessageInfo, Role, SessionInfo, TURN_MAX, compact_json, parse_ts, req_str,
    req_u64, typed_kind,
};
use crate::storage::Bytes;

mod fast;

/// Parses one stored (export) envelope into its seq and event.
///
/// Accepts exactly what [`Event::write_envelope`] writes, with JSON whitespace allowed anywhere,
/// including the journal's own `session` event. Refuses, with the offending field named: text
/// that is not one JSON object (`envelope`), an unknown or repeated field, a missing or
/// mistyped `seq` (must be an integer ≥ 1), `ts` (RFC 3339 string), `kind`, `turn` (integer up
/// to [`TURN_MAX`], required for `turn` events) or `body` (object), and every body that
/// [`Event::from_envelope`] would refuse for that kind.
pub fn parse_stored_envelope(line: &str) -> Result<(u64, Event), InputError> {
    parse(line, |body| Body::from(body))
}

/// [`parse_stored_envelope`] of `line`, a line of the text of `buf`, with a body already in
/// compact form left in place: a range of `buf`, not a copy (see [`Body`]; a `line` that does
/// not lie inside `buf` is copied). Accepts and refuses exactly what `parse_stored_envelope`
/// does.
pub fn parse_stored_envelope_shared(
    buf: &Arc<Bytes>,
    line: &str,
) -> Result<(u64, Event), InputError> {
    parse(line, |body| share_in(buf, body))
}

/// `body` as a range of `buf` if it lies inside it ([`Body::shared_str`]), else a copy.
fn share_in(buf: &Arc<Bytes>, body: &str) -> Body {
    Body::shared_str(buf, body).unwrap_or_else(|| Body::from(body))
}

/// Parses `line`; `share` turns a body that is already compact (a slice of `line`) into a
/// [`Body`]. The fast path first; the full path whenever it declines.
fn parse(line: &str, share: impl FnOnce(&str) -> Body) -> Result<(u64, Event), InputError> {
    match fast::parse(line) {
        // The body is the very slice of `line` the full path would share.
        Some(f) => Ok((
            f.seq,
            Event {
                ts_ms: f.ts_ms,
                turn: f.turn,
                kind: f.kind,
                body: share(f.body),
            },
        )),
        None => parse_full(line, share),
    }
}

/// The fast path alone, for tests: `Some` only for lines it takes, the body owned.
#[doc(hidden)]
pub fn parse_fast_for_tests(line: &str) -> Option<(u64, Event)> {
    fast::parse(line).map(|f| {
        (
            f.seq,
            Event {
                ts_ms: f.ts_ms,
                turn: f.turn,
                kind: f.kind,
                body: Body::from(f.body),
            },
        )
    })
}

/// The full path alone (what [`parse_stored_envelope`] does when the fast path declines), for
/// tests. Reads `line` as [`parse_stored_envelope_shared`] reads it from a buffer of its own,
/// so the body is shared exactly when the full path finds it certain and compact.
#[doc(hidden)]
pub fn parse_full_for_tests(line: &str) -> Result<(u64, Event), InputError> {
    let buf = Arc::new(Bytes::Owned(line.as_bytes().to_vec()));
    // The copy's own text, so a body the scan finds compact lies inside `buf`.
    let text = std::str::from_utf8(&buf).unwrap_or(line);
    parse_full(text, |body| share_in(&buf, body))
}

/// The full path: serde reads the envelope, [`scan`] the body, then [`fast_message`] or the
/// DOM the typed fields, and jiff the timestamp.
fn parse_full(line: &str, share: impl FnOnce(&str) -> Body) -> Result<(u64, Event), InputError> {
    let env: RawEnvelope<'_> = serde_json::from_str(line)
        .map_err(|e| InputError::new("envelope", format!("not a JSON object: {e}")))?;
    if let Some((field, reason)) = env.refused {
        return Err(InputError::new(field, reason));
    }

    let seq = match env.seq.map(int_u64) {
        Some(Some(seq)) if seq >= 1 => seq,
        Some(_) => return Err(InputError::new("seq", "must be an integer from 1")),
        None => return Err(InputError::new("seq", "missing")),
    };
    let ts_ms = match env.ts {
        Some(raw) => ts_value(raw, parse_ts)?,
        None => return Err(InputError::new("ts", "missing")),
    };
    let kind_name = kind_field(env.kind)?;
    let turn = env.turn.map(turn_value).transpose()?;
    let body = body_field(env.body)?;

    let scan = scan(body);
    let kind = match kind_name.as_ref() {
        "session" => Kind::Session(session_info(&body_dom(body)?)?),
        "message" => {
            let fast = match scan {
                Scan::Certain { .. } => fast_message(body),
                Scan::Uncertain => None,
            };
            match fast {
                Some(info) => Kind::Message(info),
                None => typed_kind("message", &body_dom(body)?)?,
            }
        }
        other => typed_kind(other, &body_dom(body)?)?,
    };
    if matches!(kind, Kind::Turn { .. }) && turn.is_none() {
        return Err(InputError::new("turn", "required for turn events"));
    }
    Ok((
        seq,
        Event {
            ts_ms,
            turn,
            kind,
            body: match scan {
                Scan::Certain { compact: true } => share(body),
                _ => Body::from(compact_json(body)),
            },
        },
    ))
}

/// Parses one append envelope (no `seq`; `ts` and `turn` optional, `null` meaning absent): what
/// [`Event::from_envelope`] does, in one serde pass over the envelope plus, for `message`,
/// `usage` and `delta` bodies already in compact form, one pass of [`fast::typed_body`] over
/// the body; any other body goes through the DOM path and [`compact_json`].
///
/// Accepts exactly what the DOM reading of the whole envelope accepted, with the same event,
/// except that a repeated envelope field is refused (the DOM kept the last one silently);
/// `journal/tests/stored_fast.rs` checks it against [`Event::from_envelope_reference`].
pub(crate) fn parse_append_envelope(text: &str, now_ms: i64) -> Result<Event, InputError> {
    let env: RawEnvelope<'_> = serde_json::from_str(text)
        .map_err(|e| InputError::new("envelope", format!("not a JSON object: {e}")))?;
    if let Some((field, reason)) = env.refused {
        return Err(InputError::new(field, reason));
    }
    if env.seq.is_some() {
        return Err(InputError::new(
            "seq",
            "must be absent: the journal assigns it",
        ));
    }
    let kind_name = kind_field(env.kind)?;
    let ts_ms = match present(env.ts) {
        Some(raw) => ts_value(raw, crate::event::parse_ts_rfc3339)?,
        None => now_ms,
    };
    let turn = present(env.turn).map(turn_value).transpose()?;
    let body = body_field(env.body)?;
    let (kind, body) = match fast::typed_body(&kind_name, body) {
        // Taken only when the body is compact: its text is its own compact form.
        Some(kind) => (kind, Body::from(body)),
        None => (
            typed_kind(&kind_name, &body_dom(body)?)?,
            Body::from(compact_json(body)),
        ),
    };
    if matches!(kind, Kind::Turn { .. }) && turn.is_none() {
        return Err(InputError::new("turn", "required for turn events"));
    }
    Ok(Event {
        ts_ms,
        turn,
        kind,
        body,
    })
}

/// On append, `null` means absent for `ts` and `turn`.
fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get() != "null")
}

/// `ts`: an RFC 3339 timestamp string read by `parse` (strict on append, lenient on stored
/// text), as ms since the epoch.
fn ts_value(raw: &RawValue, parse: fn(&str) -> Option<i64>) -> Result<i64, InputError> {
    match classify(raw) {
        Json::Str(s) => {
            parse(&s).ok_or_else(|| InputError::new("ts", crate::event::ts_refusal(&s)))
        }
        Json::Invalid => Err(InputError::new("ts", "not valid Unicode text")),
        Json::Null | Json::Other => Err(InputError::new("ts", "must be a string")),
    }
}

/// `kind`: present, and a string.
fn kind_field(raw: Option<&RawValue>) -> Result<Cow<'_, str>, InputError> {
    match raw.map(classify) {
        Some(Json::Str(s)) => Ok(s),
        Some(Json::Invalid) => Err(InputError::new("kind", "not valid Unicode text")),
        Some(_) => Err(InputError::new("kind", "must be a string")),
        None => Err(InputError::new("kind", "missing")),
    }
}

/// `turn`: an integer from 0 to [`TURN_MAX`].
fn turn_value(raw: &RawValue) -> Result<u64, InputError> {
    int_u64(raw)
        .filter(|&t| t <= TURN_MAX)
        .ok_or_else(|| InputError::new("turn", format!("must be an integer from 0 to {TURN_MAX}")))
}

/// `body`: present, and an object; its text.
fn body_field(raw: Option<&RawValue>) -> Result<&str, InputError> {
    match raw {
        Some(b) if b.get().starts_with('{') => Ok(b.get()),
        Some(_) => Err(InputError::new("body", "must be a JSON object")),
        None => Err(InputError::new("body", "missing")),
    }
}

/// The envelope's fields as raw JSON text, before any type check.
#[derive(Default)]
struct RawEnvelope<'a> {
    seq: Option<&'a RawValue>,
    ts: Option<&'a RawValue>,
    kind: Option<&'a RawValue>,
    turn: Option<&'a RawValue>,
    body: Option<&'a RawValue>,
    /// The first unknown or repeated field, in document order, and why it is refused.
    refused: Option<(String, &'static str)>,
}

impl<'de> Deserialize<'de> for RawEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A map only: serde_json would also feed a derived struct from a JSON array.
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = RawEnvelope::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            // Every value is taken as raw text, so a mistyped one still leaves the map readable
            // and is refused afterwards, with its field named.
            let value: &'de RawValue = map.next_value()?;
            let slot = match key.as_ref() {
                "seq" => &mut env.seq,
                "ts" => &mut env.ts,
                "kind" => &mut env.kind,
                "turn" => &mut env.turn,
                "body" => &mut env.body,
                _ => {
                    if env.refused.is_none() {
                        env.refused = Some(if key.is_empty() {
                            ("envelope".to_string(), "unknown field \"\" (an empty key)")
                        } else {
                            (key.into_owned(), "unknown envelope field")
                        });
                    }
                    continue;
                }
            };
            if slot.is_some() {
                if env.refused.is_none() {
                    env.refused = Some((key.into_owned(), "repeated envelope field"));
                }
            } else {
                *slot = Some(value);
            }
        }
        Ok(env)
    }
}

/// An object key, borrowed from the input unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A raw JSON value, classified as [`Value`] would see it where only strings matter.
enum Json<'a> {
    /// A string, decoded.
    Str(Cow<'a, str>),
    /// `null`.
    Null,
    /// Any other value.
    Other,
    /// A string that does not decode (a lone surrogate escape).
    Invalid,
}

fn classify(raw: &RawValue) -> Json<'_> {
    let text = raw.get();
    if !text.starts_with('"') {
        return if text == "null" {
            Json::Null
        } else {
            Json::Other
        };
    }
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        // Valid JSON string text without escapes is its own value.
        Some(inner) if !inner.contains('\\') => Json::Str(Cow::Borrowed(inner)),
        _ => match serde_json::from_str::<String>(text) {
            Ok(s) => Json::Str(Cow::Owned(s)),
            Err(_) => Json::Invalid,
        },
    }
}

/// A JSON integer from 0 to `u64::MAX` written plainly (no sign, fraction or exponent).
fn int_u64(raw: &RawValue) -> Option<u64> {
    // Raw number text never starts with `+`, the one thing `u64::from_str` accepts beyond JSON.
    raw.get().parse().ok()
}

/// The body as a DOM, parsed exactly as deep as in an envelope (one level below the top), so
/// serde_json's nesting limit refuses the same bodies it refuses in [`Event::from_envelope`].
fn body_dom(body: &str) -> Result<Map<String, Value>, InputError> {
    let mut wrapped = String::with_capacity(body.len() + 2);
    wrapped.push('[');
    wrapped.push_str(body);
    wrapped.push(']');
    let (map,): (Map<String, Value>,) = serde_json::from_str(&wrapped)
        .map_err(|e| InputError::new("body", format!("not a readable JSON object: {e}")))?;
    Ok(map)
}

/// Typed fields of the journal's `session` event (see [`Event::session`]). Unknown body fields
/// are ignored, as in every other body.
fn session_info(b: &Map<String, Value>) -> Result<SessionInfo, InputError> {
    let id = req_str(b, "id", "body.id")?.to_string();
    let created_at_ms = match b.get("created_at") {
        Some(Value::String(s)) => parse_ts(s).ok_or_else(|| {
            InputError::new(
                "body.created_at",
                format!("not an RFC 3339 timestamp with offset: {s:?}"),
            )
        })?,
        Some(_) => return Err(InputError::new("body.created_at", "must be a string")),
        None => return Err(InputError::new("body.created_at", "missing")),
    };
    let fork_of = match b.get("fork_of") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) => {
            let parent = match f.get("session") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(InputError::new("body.fork_of.session", "must be a string"));
                }
                None => return Err(InputError::new("body.fork_of.session", "missing")),
            };
            Some((parent, req_u64(f, "seq", "body.fork_of.seq")?))
        }
        Some(_) => return Err(InputError::new("body.fork_of", "must be an object")),
    };
    Ok(SessionInfo {
        id,
        created_at_ms,
        fork_of,
    })
}

/// Deepest nesting (the body object counts 1) the fast path takes; far below serde_json's limit.
const FAST_DEPTH_MAX: u32 = 64;
/// Longest digit run the fast path takes; an f64 overflows only from 309 integer digits.
const FAST_DIGITS_MAX: u32 = 300;

/// What one pass over a body's (valid JSON) text tells.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// Building a DOM of it certainly succeeds, i.e. the lenient skipping of the fast path
    /// accepts nothing the DOM parse refuses. `compact`: no whitespace outside strings, so the
    /// text is its own [`compact_json`].
    Certain {
        /// The text has no insignificant whitespace.
        compact: bool,
    },
    /// The DOM parse might refuse it: the DOM path decides.
    Uncertain,
}

/// serde_json skips values without decoding `\u` escapes, computing numbers or counting depth,
/// while its DOM parse refuses lone surrogates, numbers beyond f64 and nesting past its limit.
/// So a body is [`Scan::Certain`] only without any surrogate escape (paired or not), exponent,
/// long digit run or deep nesting: rare in real bodies, and then the DOM path is merely slower.
fn scan(json: &str) -> Scan {
    let b = json.as_bytes();
    let mut i = 0;
    let (mut depth, mut digits, mut compact) = (0u32, 0u32, true);
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'"' => {
                digits = 0;
                // Inside a string: only `"` and `\` matter.
                loop {
                    let Some(off) = find_quote_or_backslash(b.get(i..).unwrap_or_default()) else {
                        return Scan::Uncertain;
                    };
                    i += off;
                    let q = b.get(i).copied();
                    i += 1;
                    if q == Some(b'"') {
                        break;
                    }
                    match b.get(i) {
                        Some(b'u') => {
                            if let (Some(d), Some(h)) = (b.get(i + 1), b.get(i + 2))
                                && matches!(d, b'd' | b'D')
                                && matches!(h, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                            {
                                return Scan::Uncertain;
                            }
                            i += 5;
                        }
                        Some(_) => i += 1,
                        None => return Scan::Uncertain,
                    }
                }
            }
            b'{' | b'[' => {
                digits = 0;
                depth += 1;
                if depth > FAST_DEPTH_MAX {
                    return Scan::Uncertain;
                }
            }
            b'}' | b']' => {
                digits = 0;
                depth = depth.saturating_sub(1);
            }
            b'0'..=b'9' => {
                digits += 1;
                if digits > FAST_DIGITS_MAX {
                    return Scan::Uncertain;
                }
            }
            // In valid JSON an `e` right after a digit is an exponent (`true`/`false` have none).
            b'e' | b'E' if digits > 0 => return Scan::Uncertain,
            b' ' | b'\n' | b'\r' | b'\t' => {
                digits = 0;
                compact = false;
            }
            _ => digits = 0,
        }
    }
    Scan::Certain { compact }
}

/// The fast path: the typed fields of a regular message body, or `None` whenever anything is
/// irregular (the DOM path then decides). Only for bodies that [`scan`] finds certain.
fn fast_message(body: &str) -> Option<MessageInfo> {
    let m: FastMessage<'_> = serde_json::from_str(body).ok()?;
    let id = match classify(m.id?) {
        Json::Str(s) if !s.is_empty() => s.into_owned(),
        _ => return None,
    };
    let role = match classify(m.role?) {
        Json::Str(s) => Role::parse(&s)?,
        _ => return None,
    };
    let status = match m.status.map(classify) {
        None | Some(Json::Null | Json::Other) => None,
        Some(Json::Str(s)) => Some(s.into_owned()),
        Some(Json::Invalid) => return None,
    };
    let (tool_calls, tool_results) = m.parts.map(|p| (p.calls, p.results)).unwrap_or_default();
    Some(MessageInfo {
        id,
        role,
        status,
        tool_calls,
        tool_results,
    })
}

/// The message fields the typed kind needs. `null` fields read as absent, like in the DOM path;
/// a repeated field is a serde error, hence the DOM path.
#[derive(Deserialize)]
struct FastMessage<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    role: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    parts: Option<FastParts>,
}

/// The tool parts of `parts`, read element by element without collecting the others.
#[derive(Default)]
struct FastParts {
    calls: Vec<(String, String)>,
    results: Vec<(String, Option<String>)>,
}

impl<'de> Deserialize<'de> for FastParts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(PartsVisitor)
    }
}

struct PartsVisitor;

impl<'de> Visitor<'de> for PartsVisitor {
    type Value = FastParts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of part objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FastParts, A::Error> {
        let mut parts = FastParts::default();
        while let Some(p) = seq.next_element_seed(PartSeed)? {
            let irregular = || de::Error::custom("irregular part");
            match p.kind.map(classify) {
                Some(Json::Str(t)) if t == "tool_call" => {
                    let call_id = required_str(p.call_id).ok_or_else(irregular)?;
                    let name = required_str(p.name).ok_or_else(irregular)?;
                    parts.calls.push((call_id, name));
                }
                Some(Json::Str(t)) if t == "tool_result" => {
                    let call_id = required_str(p.call_id).ok_or_else(irregular)?;
                    let outcome = match p.outcome.map(classify) {
                        None | Some(Json::Null) => None,
                        Some(Json::Str(s)) => Some(s.into_owned()),
                        Some(Json::Other | Json::Invalid) => return Err(irregular()),
                    };
                    parts.results.push((call_id, outcome));
                }
                // Like the DOM path, any other part (or a non-string type) is not looked into.
                Some(Json::Invalid) => return Err(irregular()),
                _ => {}
            }
        }
        Ok(parts)
    }
}

/// A non-empty string, as `req_str` wants it.
fn required_str(raw: Option<&RawValue>) -> Option<String> {
    match classify(raw?) {
        Json::Str(s) if !s.is_empty() => Some(s.into_owned()),
        _ => None,
    }
}

/// The fields of one part the typed kind needs, as raw text. Present fields only: `null` stays
/// `Some("null")`, as the DOM keeps it.
#[derive(Default)]
struct FastPart<'a> {
    kind: Option<&'a RawValue>,
    call_id: Option<&'a RawValue>,
    name: Option<&'a RawValue>,
    outcome: Option<&'a RawValue>,
}

struct PartSeed;

impl<'de> DeserializeSeed<'de> for PartSeed {
    type Value = FastPart<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // A map only: a derived struct would also accept a JSON array here.
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PartSeed {
    type Value = FastPart<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a part object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut part = FastPart::default();
        while let Some(key) = map.next_key::<PartKey>()? {
            let slot = match key {
                PartKey::Type => &mut part.kind,
                PartKey::CallId => &mut part.call_id,
                PartKey::Name => &mut part.name,
                PartKey::Outcome => &mut part.outcome,
                PartKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom("repeated part field"));
            }
            *slot = Some(map.next_value()?);
        }
        Ok(part)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum PartKey {
    Type,
    CallId,
    Name,
    Outcome,
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::message_info;

    fn dom(body: &str) -> Option<MessageInfo> {
        message_info(&body_dom(body).ok()?).ok()
    }

    #[test]
    fn fast_path_takes_regular_messages() {
        let bodies = [
            r#"{"id":"m1","role":"assistant","status":"final","parts":[{"type":"text","text":"a \"b\" \u00e9"},{"type":"tool_call","call_id":"c1","name":"sh","arguments":"{\"x\":[1,2]}"},{"type":"tool_result","call_id":"c0","outcome":null,"content":[{"n":1.5}]},{"type":"tool_result","call_id":"c\n2","outcome":"ok"}]}"#,
            r#"{"id":"m\u0032","role":"us\u0065r","status":7,"parts":null,"extra":{"deep":[true,false,null]}}"#,
            r#"{"id":"m","role":"tool","parts":[{"type":5,"call_id":1},{"name":"x"},{"type":"image","name":[]}]}"#,
        ];
        for body in bodies {
            assert_ne!(scan(body), Scan::Uncertain, "{body}");
            let fast = fast_message(body);
            assert!(fast.is_some(), "fast path refused {body}");
            assert_eq!(fast, dom(body), "{body}");
        }
    }

    #[test]
    fn fast_path_declines_irregular_messages() {
        let bodies = [
            r#"{"id":"","role":"user"}"#,
            r#"{"id":1,"role":"user"}"#,
            r#"{"id":"m","role":"robot"}"#,
            r#"{"id":"m","role":"user","role":"tool"}"#,
            r#"{"id":"m","role":"user","parts":{}}"#,
            r#"{"id":"m","role":"user","parts":[["tool_call","c","n",null]]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"c"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_result","call_id":"c","outcome":3}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"text","type":"tool_call"}]}"#,
        ];
        for body in bodies {
            assert_eq!(fast_message(body), None, "{body}");
        }
    }

    #[test]
    fn scan_flags_what_skipping_would_miss() {
        let certain = Scan::Certain { compact: true };
        assert_eq!(
            scan(r#"{"a":[1,-2.5,0,true,false,null,"e\"\\u12"],"e":"1e5","b":"x y\tz"}"#),
            certain
        );
        for body in [
            r#"{"a":1e5}"#,
            r#"{"a":2.5E-3}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\uDC00"}"#,
            r#"{"\ud800":1}"#,
        ] {
            assert_eq!(scan(body), Scan::Uncertain, "{body}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(scan(&deep), Scan::Uncertain);
        let deep_enough = format!("{{\"a\":{}{}}}", "[".repeat(63), "]".repeat(63));
        assert_eq!(scan(&deep_enough), certain);
        // Depth is nesting, not the number of containers.
        let wide = format!("{{\"a\":[{}]}}", vec!["{\"b\":[]}"; 500].join(","));
        assert_eq!(scan(&wide), certain);
        let long = format!("{{\"a\":{}}}", "9".repeat(301));
        assert_eq!(scan(&long), Scan::Uncertain);
    }

    #[test]
    fn scan_sees_whitespace_outside_strings_only() {
        // Strings long enough for the eight-byte search, escapes at every offset around it.
        for pad in 0..20 {
            let s = format!("{}\\\" \\\\{}", "x ".repeat(pad), " y".repeat(pad));
            for body in [
                format!("{{\"a\":\"{s}\",\"b\":[\"{s}\",1]}}"),
                format!("{{\"a\":\"{s}\", \"b\":[\"{s}\",1]}}"),
                format!("{{\"a\":\"{s}\",\"b\":[\"{s}\",1]\n}}"),
                format!("{{\"{s}\":\"\\\\\",\"b\":\t1}}"),
            ] {
                let Scan::Certain { compact } = scan(&body) else {
                    panic!("uncertain: {body}");
                };
                assert_eq!(compact, compact_json(&body) == body, "{body}");
            }
        }
    }

    #[test]
    fn find_quote_or_backslash_finds_the_first() {
        for len in 0..40 {
            for at in 0..len {
                for c in [b'"', b'\\'] {
                    let mut s = vec![b'a'; len];
                    if let Some(x) = s.get_mut(at) {
                        *x = c;
                    }
                    s.push(b'"');
                    assert_eq!(find_quote_or_backslash(&s), Some(at), "{len} {at}");
                }
            }
            assert_eq!(find_quote_or_backslash(&vec![0xc3; len]), None);
        }
    }
}
