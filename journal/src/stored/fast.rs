//! The single-pass fast path for stored envelopes: the lines the snapshot writer itself produces
//! ([`Event::write_envelope`](crate::event::Event::write_envelope)), read in one pass over the
//! bytes, without serde, without a second scan of the body and without jiff.
//!
//! It accepts exactly this shape, byte for byte, and nothing else:
//!
//! ```text
//! {"seq":N,"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ","kind":"message"|"usage"|"delta"[,"turn":T],"body":{...}}[\n]
//! ```
//!
//! The invariant, which everything here serves: **whenever [`parse`] returns `Some`, the full
//! path of [`super::parse`] returns `Ok` with an identical seq and event** (the same `ts_ms`,
//! `turn`, kind with its typed fields, and body text, which is the same slice of the line). On
//! anything it is not certain about it returns `None` and the full path decides, so declining is
//! always safe and only ever costs time. In detail, `Some` requires:
//!
//! - **Envelope**: the fields in the writer's order and spelling, no whitespace anywhere; `seq`
//!   plain digits without a leading zero, from 1 to `u64::MAX`; `turn` the same from 0 to
//!   [`TURN_MAX`]; the line ends right after the envelope's `}` or after one `\n`.
//! - **Timestamp**: exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 characters, `T` and `Z` upper case),
//!   a real date of the proleptic Gregorian calendar (days per month, leap years) in years
//!   0000–9998, hours 00–23, minutes and seconds 00–59 (no leap second `60`, which jiff clamps).
//!   Converted by hand to ms since the epoch; exact, as every field is whole.
//! - **Body**: JSON exactly as strict as serde_json reads it (RFC 8259: strings without raw
//!   control characters and with only the escapes `\" \\ \/ \b \f \n \r \t \uXXXX`; numbers
//!   `-?(0|[1-9][0-9]*)(\.[0-9]+)?`; `true`, `false`, `null`; commas and colons in place, no
//!   trailing comma), and certain for the full path's scan as well: no whitespace outside
//!   strings (the body is already compact, so it is shared as it is), no surrogate escape
//!   (`\uD800`–`\uDFFF`, paired or not), no exponent, no digit run longer than
//!   [`FAST_DIGITS_MAX`], no nesting deeper than [`FAST_DEPTH_MAX`]. Under these the DOM parse of
//!   the body succeeds, so the full path refuses nothing here.
//! - **Message fields**: exactly the [`MessageInfo`] of the DOM path: top-level `id` a non-empty
//!   string, `role` a known role, `status` a string (any other type reads as none), `parts`
//!   absent, `null` or an array of objects; in each part, `type` `tool_call` needs non-empty
//!   string `call_id` and `name`, `tool_result` a non-empty string `call_id` and an `outcome`
//!   that is absent, `null` or a string; other parts are not looked into. Keys and strings are
//!   compared and taken decoded (escapes resolved). A repeated key among the fields looked at
//!   (where the DOM keeps the last) declines; so does anything the DOM would refuse.
//! - **Usage fields**: exactly the [`UsageInfo`] of the DOM path: `call_key` and `model`
//!   non-empty strings; `input` and `output` objects whose `total` is a plain non-negative
//!   integer and whose `cache_read`, `cache_write`, `reasoning` are absent, `null` or one; `cost`
//!   absent, `null` or an object with a non-empty string `currency` and a numeric `amount` of at
//!   most [`AMOUNT_DIGITS_MAX`] digits (where serde_json's float parse is exact and equals
//!   Rust's); `final` absent, `null` or a boolean. A repeated key declines.
//! - **Delta fields**: exactly the [`DeltaInfo`] of the DOM path: `message_id` a non-empty
//!   string, `index` a plain integer below 2^32, `type` a known part type, `text`,
//!   `arguments`, `call_id`, `name` absent, `null` or strings. A repeated key declines.
//! - Only `message`, `usage` and `delta` events take this path (messages and usage are the bulk
//!   of every snapshot, deltas of a live stream: [`typed_body`] serves the append path too);
//!   every other kind declines.
//!
//! No panics: every index is checked, every arithmetic bounded.

use std::borrow::Cow;

use super::{FAST_DEPTH_MAX, FAST_DIGITS_MAX};
use crate::event::{DeltaInfo, DeltaPart, Kind, MessageInfo, Role, TURN_MAX, UsageInfo};

/// What the fast path read from one line.
#[derive(Debug)]
pub(super) struct Fast<'a> {
    /// The envelope's `seq` (≥ 1).
    pub seq: u64,
    /// The envelope's `ts`, ms since the epoch.
    pub ts_ms: i64,
    /// The envelope's `turn`, if present.
    pub turn: Option<u64>,
    /// The kind with its typed fields.
    pub kind: Kind,
    /// The body's text: a slice of the line, already compact.
    pub body: &'a str,
}

/// Reads `line` if it is a writer-form `message`, `usage` or `delta` envelope the fast path is
/// certain about; `None` otherwise (see the module documentation for what `Some` guarantees).
pub(super) fn parse(line: &str) -> Option<Fast<'_>> {
    let mut p = Cursor::new(line);
    p.eat(b"{\"seq\":")?;
    let seq = p.uint()?;
    if seq == 0 {
        return None;
    }
    p.eat(b",\"ts\":\"")?;
    let ts_ms = timestamp_ms(p.take(24)?)?;
    p.eat(b"\",\"kind\":\"")?;
    let kind_name: &[u8] = if p.eat(b"message\"").is_some() {
        b"message"
    } else if p.eat(b"usage\"").is_some() {
        b"usage"
    } else {
        p.eat(b"delta\"")?;
        b"delta"
    };
    let turn = if p.eat(b",\"turn\":").is_some() {
        let t = p.uint()?;
        if t > TURN_MAX {
            return None;
        }
        Some(t)
    } else {
        None
    };
    p.eat(b",\"body\":")?;
    let start = p.i;
    let kind = p.typed(kind_name)?;
    let body = line.get(start..p.i)?;
    p.eat(b"}")?;
    match line.get(p.i..)? {
        "" | "\n" => {}
        _ => return None,
    }
    Some(Fast {
        seq,
        ts_ms,
        turn,
        kind,
        body,
    })
}

/// The typed fields of `body`, a whole body object of kind `kind` (`message`, `usage` or
/// `delta`), read in one pass: exactly what the DOM path derives, or `None` whenever the fast
/// path is not certain (the same rules as for a snapshot line's body, including that the body
/// is already compact). For the append path, which has its envelope parsed already.
pub(super) fn typed_body(kind: &str, body: &str) -> Option<Kind> {
    let mut p = Cursor::new(body);
    let kind = p.typed(kind.as_bytes())?;
    (p.i == body.len()).then_some(kind)
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SS.mmmZ`, for a valid date and time
/// in years 0000–9998 (all inside jiff's range); `None` for anything else.
fn timestamp_ms(t: &[u8]) -> Option<i64> {
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        mo0,
        mo1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
        b'.',
        f0,
        f1,
        f2,
        b'Z',
    ] = t
    else {
        return None;
    };
    let num = |digits: &[u8]| {
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let year = num(&[y0, y1, y2, y3])?;
    let month = num(&[mo0, mo1])?;
    let day = num(&[d0, d1])?;
    let hour = num(&[h0, h1])?;
    let minute = num(&[mi0, mi1])?;
    let second = num(&[s0, s1])?;
    let milli = num(&[f0, f1, f2])?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => return None,
    };
    if year > 9998 || !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's `days_from_civil`).
/// For month 1..=12, day 1..=31 and small years; no overflow there.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A JSON string as found in the text: its raw content between the quotes (a slice of the
/// line between two `"`, so UTF-8), valid and without surrogate escapes.
#[derive(Clone, Copy, Debug)]
struct Str<'a> {
    raw: &'a [u8],
    /// The content holds at least one escape.
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The decoded string.
    fn text(self) -> Option<Cow<'a, str>> {
        let raw = std::str::from_utf8(self.raw).ok()?;
        if self.escaped {
            unescape(raw).map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(raw))
        }
    }

    /// The decoded string as bytes, for comparing (only a string with escapes is decoded).
    #[inline(always)]
    fn bytes(self) -> Option<Cow<'a, [u8]>> {
        if self.escaped {
            self.text().map(|t| Cow::Owned(t.into_owned().into_bytes()))
        } else {
            Some(Cow::Borrowed(self.raw))
        }
    }
}

/// Decodes the escapes of valid string content (checked by [`Cursor::string`]).
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(k) = rest.find('\\') {
        out.push_str(rest.get(..k)?);
        let esc = rest.get(k + 1..)?.as_bytes();
        let (c, used) = match esc.first()? {
            b'"' => ('"', 1),
            b'\\' => ('\\', 1),
            b'/' => ('/', 1),
            b'b' => ('\u{8}', 1),
            b'f' => ('\u{c}', 1),
            b'n' => ('\n', 1),
            b'r' => ('\r', 1),
            b't' => ('\t', 1),
            b'u' => (char::from_u32(hex4(esc.get(1..5)?)?)?, 5),
            _ => return None,
        };
        out.push(c);
        rest = rest.get(k + 1 + used..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// The value of four hex digits.
fn hex4(h: &[u8]) -> Option<u32> {
    if h.len() != 4 {
        return None;
    }
    h.iter().try_fold(0u32, |acc, &c| {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        Some(acc * 16 + u32::from(v))
    })
}

/// A value the typed fields look at, as much as they need of it.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    /// Not present in the object.
    Absent,
    /// A string.
    Str(Str<'a>),
    /// `null`.
    Null,
    /// Anything else (a number, boolean, object or array; validated).
    Other,
}

impl<'a> Val<'a> {
    /// Stores `v` into an absent slot; a repeated key (where the DOM would keep the last)
    /// declines.
    fn set(&mut self, v: Val<'a>) -> Option<()> {
        match self {
            Val::Absent => {
                *self = v;
                Some(())
            }
            _ => None,
        }
    }

    /// `opt_str`: `Some(None)` when absent or `null`, `Some(Some(text))` for a string (empty
    /// allowed), `None` (decline) for anything else.
    fn optional(self) -> Option<Option<String>> {
        match self {
            Val::Absent | Val::Null => Some(None),
            Val::Str(s) => Some(Some(s.text()?.into_owned())),
            Val::Other => None,
        }
    }

    /// `req_str`: a non-empty string, decoded.
    fn required(self) -> Option<String> {
        match self {
            Val::Str(s) => {
                let t = s.text()?;
                (!t.is_empty()).then(|| t.into_owned())
            }
            _ => None,
        }
    }
}

/// Position in the line being read.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            b: s.as_bytes(),
            i: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Consumes `lit` if the text continues with it.
    fn eat(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i.checked_add(lit.len())?;
        if self.b.get(self.i..end)? == lit {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// Consumes one byte if it is `c`.
    fn eat_byte(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The next `n` bytes, consumed.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.i.checked_add(n)?;
        let t = self.b.get(self.i..end)?;
        self.i = end;
        Some(t)
    }

    /// A plain unsigned integer: `0` or digits without a leading zero, fitting in a u64.
    fn uint(&mut self) -> Option<u64> {
        match self.peek()? {
            b'0' => {
                self.i += 1;
                (!matches!(self.peek(), Some(b'0'..=b'9'))).then_some(0)
            }
            b'1'..=b'9' => {
                let mut v = 0u64;
                while let Some(c @ b'0'..=b'9') = self.peek() {
                    v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                    self.i += 1;
                }
                Some(v)
            }
            _ => None,
        }
    }

    /// A string starting at its opening quote; validated (no raw control character, only
    /// JSON's escapes), and declined if it holds a surrogate escape.
    #[inline(always)]
    fn string(&mut self) -> Option<Str<'a>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i += find_special(self.b.get(i..)?)?;
            match *self.b.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i = escape_end(self.b, i)?;
                }
                // A raw control character.
                _ => return None,
            }
        }
        let raw = self.b.get(start..i)?;
        self.i = i + 1;
        Some(Str { raw, escaped })
    }

    /// A number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, each digit run at most [`FAST_DIGITS_MAX`]
    /// long; an exponent declines.
    fn number(&mut self) -> Option<()> {
        self.eat_byte(b'-');
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.eat_byte(b'.') {
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        Some(())
    }

    /// One to [`FAST_DIGITS_MAX`] digits.
    fn digits(&mut self) -> Option<()> {
        let run = self
            .b
            .get(self.i..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if run == 0 || run > FAST_DIGITS_MAX as usize {
            return None;
        }
        self.i += run;
        Some(())
    }

    /// Any value, validated and skipped. `outer` is the nesting level around it (the body
    /// object is level 1).
    fn value(&mut self, outer: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(outer + 1),
            b'[' => self.array(outer + 1),
            b't' => self.eat(b"true"),
            b'f' => self.eat(b"false"),
            b'n' => self.eat(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A value as far as the typed fields look at it.
    #[inline(always)]
    fn field(&mut self, outer: u32) -> Option<Val<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Val::Str),
            b'n' => self.eat(b"null").map(|()| Val::Null),
            _ => self.value(outer).map(|()| Val::Other),
        }
    }

    /// An object at nesting `level`, skipped.
    fn object(&mut self, level: u32) -> Option<()> {
        self.object_with(level, |p, _key| p.value(level))
    }

    /// An object at nesting `level`; `entry` reads each value, given its key (the cursor is
    /// at the value).
    fn object_with(
        &mut self,
        level: u32,
        mut entry: impl FnMut(&mut Self, Str<'a>) -> Option<()>,
    ) -> Option<()> {
        if level > FAST_DEPTH_MAX || !self.eat_byte(b'{') {
            return None;
        }
        if self.eat_byte(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            if !self.eat_byte(b':') {
                return None;
            }
            entry(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array at nesting `level`, skipped.
    fn array(&mut self, level: u32) -> Option<()> {
        self.array_with(level, |p| p.value(level))
    }

    /// An array at nesting `level`; `element` reads each element (the cursor is at it).
    fn array_with(
        &mut self,
        level: u32,
        mut element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if level > FAST_DEPTH_MAX || !self.eat_byte(b'[') {
            return None;
        }
        if self.eat_byte(b']') {
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A `message` body (level 1), validated, with the typed fields the DOM path would give.
    fn message_body(&mut self) -> Option<MessageInfo> {
        let (mut id, mut role, mut status) = (Val::Absent, Val::Absent, Val::Absent);
        let mut parts: Option<Parts> = None;
        self.object_with(1, |p, key| match key.bytes()?.as_ref() {
            b"id" => id.set(p.field(1)?),
            b"role" => role.set(p.field(1)?),
            b"status" => status.set(p.field(1)?),
            b"parts" => {
                if parts.is_some() {
                    return None;
                }
                parts = Some(p.parts()?);
                Some(())
            }
            _ => p.value(1),
        })?;
        let role = match role {
            // `Role::parse`, on the bytes.
            Val::Str(s) => {
                let name = s.bytes()?;
                Role::ALL
                    .iter()
                    .copied()
                    .find(|r| r.as_str().as_bytes() == name.as_ref())?
            }
            _ => return None,
        };
        let status = match status {
            Val::Str(s) => Some(s.text()?.into_owned()),
            Val::Absent | Val::Null | Val::Other => None,
        };
        let parts = parts.unwrap_or_default();
        Some(MessageInfo {
            id: id.required()?,
            role,
            status,
            tool_calls: parts.calls,
            tool_results: parts.results,
        })
    }

    /// A body of kind `kind` (level 1), validated, with its typed fields; `None` for other kinds.
    fn typed(&mut self, kind: &[u8]) -> Option<Kind> {
        match kind {
            b"message" => self.message_body().map(Kind::Message),
            b"usage" => self.usage_body().map(Kind::Usage),
            b"delta" => self.delta_body().map(Kind::Delta),
            _ => None,
        }
    }

    /// A `delta` body (level 1), validated, with the typed fields the DOM path would give:
    /// `message_id` a non-empty string, `index` a plain integer fitting in 32 bits, `type` a
    /// known part type, `text`, `arguments`, `call_id`, `name` absent, `null` or strings (empty
    /// allowed). A repeated key declines.
    fn delta_body(&mut self) -> Option<DeltaInfo> {
        let (mut message_id, mut part) = (Val::Absent, Val::Absent);
        let (mut text, mut arguments, mut call_id, mut name) =
            (Val::Absent, Val::Absent, Val::Absent, Val::Absent);
        let mut index = None;
        self.object_with(1, |p, key| match key.bytes()?.as_ref() {
            b"message_id" => message_id.set(p.field(1)?),
            b"index" => once(&mut index, p.count_or_null()??),
            b"type" => part.set(p.field(1)?),
            b"text" => text.set(p.field(1)?),
            b"arguments" => arguments.set(p.field(1)?),
            b"call_id" => call_id.set(p.field(1)?),
            b"name" => name.set(p.field(1)?),
            _ => p.value(1),
        })?;
        let part = match part {
            // `DeltaPart::parse`, on the bytes.
            Val::Str(s) => {
                let name = s.bytes()?;
                DeltaPart::ALL
                    .iter()
                    .copied()
                    .find(|d| d.as_str().as_bytes() == name.as_ref())?
            }
            _ => return None,
        };
        Some(DeltaInfo {
            message_id: message_id.required()?,
            index: u32::try_from(index?).ok()?,
            part,
            text: text.optional()?,
            arguments: arguments.optional()?,
            call_id: call_id.optional()?,
            name: name.optional()?,
        })
    }

    /// A `usage` body (level 1), validated, with the typed fields the DOM path would give.
    /// Token counts must be plain non-negative integers (or `null` where optional); a `cost`
    /// amount is taken only when it has at most [`AMOUNT_DIGITS_MAX`] digits, where serde_json's
    /// float parse and Rust's correctly rounded one agree; anything else declines.
    fn usage_body(&mut self) -> Option<UsageInfo> {
        let (mut call_key, mut model) = (Val::Absent, Val::Absent);
        let mut input = None;
        let mut output = None;
        let mut cost: Option<Option<(f64, String)>> = None;
        let mut is_final: Option<bool> = None;
        self.object_with(1, |p, key| match key.bytes()?.as_ref() {
            b"call_key" => call_key.set(p.field(1)?),
            b"model" => model.set(p.field(1)?),
            b"input" => once(
                &mut input,
                p.counts(2, [b"total", b"cache_read", b"cache_write"])?,
            ),
            b"output" => once(&mut output, p.counts(2, [b"total", b"reasoning"])?),
            b"cost" => {
                let c = if p.peek()? == b'n' {
                    p.eat(b"null")?;
                    None
                } else {
                    Some(p.cost()?)
                };
                once(&mut cost, c)
            }
            b"final" => {
                let f = match p.peek()? {
                    b't' => p.eat(b"true").map(|()| true)?,
                    b'f' => p.eat(b"false").map(|()| false)?,
                    b'n' => p.eat(b"null").map(|()| false)?,
                    _ => return None,
                };
                once(&mut is_final, f)
            }
            _ => p.value(1),
        })?;
        let [input_total, cache_read, cache_write] = input?;
        let [output_total, reasoning] = output?;
        Some(UsageInfo {
            call_key: call_key.required()?,
            model: model.required()?,
            // `req_u64`: present and an integer; `opt_u64`: absent, null or an integer.
            input_total: input_total??,
            cache_read: cache_read.flatten(),
            cache_write: cache_write.flatten(),
            output_total: output_total??,
            reasoning: reasoning.flatten(),
            cost: cost.flatten(),
            is_final: is_final.unwrap_or(false),
        })
    }

    /// An object (at nesting `level`) of counts: for each of `keys`, absent (`None`), `null`
    /// (`Some(None)`) or a plain non-negative integer; other keys are skipped. A repeated key,
    /// or a count that is any other value, declines.
    fn counts<const N: usize>(
        &mut self,
        level: u32,
        keys: [&[u8]; N],
    ) -> Option<[Option<Option<u64>>; N]> {
        let mut out = [None; N];
        self.object_with(level, |p, key| {
            let key = key.bytes()?;
            match keys.iter().position(|k| *k == key.as_ref()) {
                Some(i) => {
                    let v = p.count_or_null()?;
                    once(out.get_mut(i)?, v)
                }
                None => p.value(level),
            }
        })?;
        Some(out)
    }

    /// `null`, or a non-negative integer written without fraction or exponent (what
    /// `Value::as_u64` gives a number for); anything else declines.
    fn count_or_null(&mut self) -> Option<Option<u64>> {
        match self.peek()? {
            b'n' => self.eat(b"null").map(|()| None),
            b'0'..=b'9' => {
                let v = self.uint()?;
                if matches!(self.peek(), Some(b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    return None;
                }
                Some(Some(v))
            }
            _ => None,
        }
    }

    /// A `cost` object (level 2): `amount` a number of at most [`AMOUNT_DIGITS_MAX`] digits and
    /// `currency` a non-empty string; other keys skipped.
    fn cost(&mut self) -> Option<(f64, String)> {
        let (mut amount, mut currency) = (None, Val::Absent);
        self.object_with(2, |p, key| match key.bytes()?.as_ref() {
            b"amount" => {
                let start = p.i;
                p.number()?;
                let text = p.b.get(start..p.i)?;
                let digits = text.iter().filter(|c| c.is_ascii_digit()).count();
                if digits > AMOUNT_DIGITS_MAX {
                    return None;
                }
                let v: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
                once(&mut amount, v)
            }
            b"currency" => currency.set(p.field(2)?),
            _ => p.value(2),
        })?;
        Some((amount?, currency.required()?))
    }

    /// The value of a message's `parts` (level 1): `null`, or an array (level 2) of part
    /// objects (level 3), with their tool calls and results.
    fn parts(&mut self) -> Option<Parts> {
        let mut parts = Parts::default();
        if self.peek()? == b'n' {
            self.eat(b"null")?;
            return Some(parts);
        }
        self.array_with(2, |p| {
            let (mut kind, mut call_id, mut name, mut outcome) =
                (Val::Absent, Val::Absent, Val::Absent, Val::Absent);
            p.object_with(3, |p, key| match key.bytes()?.as_ref() {
                b"type" => kind.set(p.field(3)?),
                b"call_id" => call_id.set(p.field(3)?),
                b"name" => name.set(p.field(3)?),
                b"outcome" => outcome.set(p.field(3)?),
                _ => p.value(3),
            })?;
            let Val::Str(kind) = kind else {
                // Like the DOM path, a part without a string type is not looked into.
                return Some(());
            };
            match kind.bytes()?.as_ref() {
                b"tool_call" => parts.calls.push((call_id.required()?, name.required()?)),
                b"tool_result" => {
                    let outcome = match outcome {
                        Val::Absent | Val::Null => None,
                        Val::Str(s) => Some(s.text()?.into_owned()),
                        Val::Other => return None,
                    };
                    parts.results.push((call_id.required()?, outcome));
                }
                _ => {}
            }
            Some(())
        })?;
        Some(parts)
    }
}

/// Most digits of a `cost.amount` the fast path takes. With at most 15 digits the significand
/// is below 2^53 and its power of ten at most 10^15, both exact in an f64, so serde_json's
/// quick float parse (one multiplication or division of exact values) is correctly rounded,
/// like Rust's: the two agree. Longer amounts go the full way.
const AMOUNT_DIGITS_MAX: usize = 15;

/// Fills an empty slot; a second value (a repeated key, where the DOM keeps the last)
/// declines.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    match slot {
        None => {
            *slot = Some(v);
            Some(())
        }
        Some(_) => None,
    }
}

/// The tool parts of a message.
#[derive(Default)]
struct Parts {
    calls: Vec<(String, String)>,
    results: Vec<(String, Option<String>)>,
}

/// Index just past the escape starting at the backslash at `at`; `None` for an invalid escape
/// or a surrogate `\uD800`–`\uDFFF` (which the full path's scan leaves to the DOM).
#[inline(always)]
fn escape_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 2),
        b'u' => {
            let unit = hex4(b.get(at + 2..at + 6)?)?;
            if (0xD800..=0xDFFF).contains(&unit) {
                return None;
            }
            Some(at + 6)
        }
        _ => None,
    }
}

/// Index of the first byte of `s` that ends a run of plain string content: `"`, `\\` or a
/// control character (below 0x20). Eight bytes first (short strings: keys, ids, names), then
/// 32 at a time (string contents are most of a body), then eight, then one.
#[inline(always)]
fn find_special(s: &[u8]) -> Option<usize> {
    let tz = |hit: u64| (hit.trailing_zeros() / 8) as usize;
    let mut at = 0;
    if let Some(first) = s.get(..8) {
        let hit = special_bits(first)?;
        if hit != 0 {
            return Some(tz(hit));
        }
        at = 8;
    }
    let mut blocks = s.get(at..)?.chunks_exact(32);
    for block in &mut blocks {
        let (a, b) = block.split_at(16);
        let (a0, a1) = a.split_at(8);
        let (b0, b1) = b.split_at(8);
        let h = [
            special_bits(a0)?,
            special_bits(a1)?,
            special_bits(b0)?,
            special_bits(b1)?,
        ];
        if h[0] | h[1] | h[2] | h[3] != 0 {
            let off = match h {
                [h0, ..] if h0 != 0 => tz(h0),
                [_, h1, ..] if h1 != 0 => 8 + tz(h1),
                [_, _, h2, _] if h2 != 0 => 16 + tz(h2),
                [_, _, _, h3] => 24 + tz(h3),
            };
            return Some(at + off);
        }
        at += 32;
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for word in &mut words {
        let hit = special_bits(word)?;
        if hit != 0 {
            return Some(at + tz(hit));
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|off| at + off)
}

/// For eight bytes (little-endian): a word whose lowest set bit is the high bit of the first
/// byte that is `"`, `\` or below 0x20, and 0 if there is none.
///
/// Per byte, `x - k` wraps (setting the high bit) exactly for a byte below k, as long as no
/// lower byte borrowed, and no byte below the first match borrows. `(w ^ 0x02) < 0x21` holds
/// exactly for bytes below 0x20 and for `"` (0x22 ^ 0x02 = 0x20; xor with 0x02 keeps 0x00..0x1f
/// among themselves), `(w ^ 0x5c) < 0x01` exactly for `\`. `!w` keeps the high bit of ASCII
/// bytes only, and none of the matches has it, so a byte 0x80 or above never counts. Bytes
/// above the first match may show up too (borrows travel upwards); they never matter.
#[inline(always)]
fn special_bits(eight: &[u8]) -> Option<u64> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const TWOS: u64 = u64::from_le_bytes([0x02; 8]);
    const BELOW: u64 = u64::from_le_bytes([0x21; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    let w = u64::from_le_bytes(<[u8; 8]>::try_from(eight).ok()?);
    Some(((w ^ TWOS).wrapping_sub(BELOW) | (w ^ BACKSLASHES).wrapping_sub(ONES)) & !w & HIGHS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, format_ts, parse_ts};
    use crate::stored::{
        Scan, parse_fast_for_tests, parse_full_for_tests, parse_stored_envelope, scan,
    };

    const TS: &str = "2026-01-02T03:04:05.678Z";

    fn line(body: &str) -> String {
        format!("{{\"seq\":7,\"ts\":\"{TS}\",\"kind\":\"message\",\"turn\":3,\"body\":{body}}}\n")
    }

    /// The fast path takes `line`, and the full path gives exactly the same (its scan finding
    /// the body certain and compact).
    fn takes(line: &str) -> (u64, Event) {
        let fast = parse_fast_for_tests(line).unwrap_or_else(|| panic!("declined: {line}"));
        assert_eq!(Ok(fast.clone()), parse_full_for_tests(line), "{line}");
        assert_eq!(Ok(fast.clone()), parse_stored_envelope(line), "{line}");
        assert_eq!(
            scan(&fast.1.body),
            Scan::Certain { compact: true },
            "{line}"
        );
        fast
    }

    /// The fast path declines `line`; what `parse_stored_envelope` answers is the full path's.
    fn declines(line: &str) {
        assert_eq!(parse_fast_for_tests(line), None, "taken: {line}");
        assert_eq!(
            parse_stored_envelope(line),
            parse_full_for_tests(line),
            "{line}"
        );
    }

    fn takes_body(body: &str) -> MessageInfo {
        match takes(&line(body)).1.kind {
            Kind::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn declines_body(body: &str) {
        declines(&line(body));
    }

    /// The body with `v` as the value of an extra field, taken or declined as `ok` says.
    fn value(v: &str, ok: bool) {
        let body = format!(r#"{{"id":"m","role":"user","x":{v}}}"#);
        if ok {
            takes_body(&body);
        } else {
            declines_body(&body);
        }
        // The same inside a text part, one level deeper.
        let body = format!(
            r#"{{"id":"m","role":"user","parts":[{{"type":"text","text":{v}}}],"y":[{v}]}}"#
        );
        if ok {
            takes_body(&body);
        } else {
            declines_body(&body);
        }
    }

    #[test]
    fn writer_lines_are_taken_whole() {
        let body = r#"{"id":"m1","role":"assistant","status":"final","parts":[{"type":"text","text":"a \"b\" \u00e9 \\ \/ \b\f\n\r\t é😀"},{"type":"tool_call","call_id":"c1","name":"sh","arguments":"{\"x\":[1,2]}"},{"type":"tool_result","call_id":"c0","outcome":null,"content":[{"n":-1.5,"t":true,"f":false,"z":null,"e":{},"a":[]}]},{"type":"tool_result","call_id":"c\n2","outcome":"ok"},{"type":"tool_result","call_id":"c3"}]}"#;
        let (seq, e) = takes(&line(body));
        assert_eq!(seq, 7);
        assert_eq!(e.turn, Some(3));
        assert_eq!(e.ts_ms, 1_767_323_045_678);
        assert_eq!(e.body, body);
        let Kind::Message(m) = e.kind else {
            panic!("not a message")
        };
        assert_eq!(m.id, "m1");
        assert_eq!(m.role, Role::Assistant);
        assert_eq!(m.status.as_deref(), Some("final"));
        assert_eq!(m.tool_calls, vec![("c1".to_string(), "sh".to_string())]);
        assert_eq!(
            m.tool_results,
            vec![
                ("c0".to_string(), None),
                ("c\n2".to_string(), Some("ok".to_string())),
                ("c3".to_string(), None),
            ]
        );
        // Without the newline, without a turn, with the smallest and largest seq.
        let bare = format!(
            "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{{\"id\":\"m\",\"role\":\"user\"}}}}"
        );
        assert_eq!(takes(&bare).1.turn, None);
        let max = bare.replace("\"seq\":1,", &format!("\"seq\":{},", u64::MAX));
        assert_eq!(takes(&max).0, u64::MAX);
    }

    #[test]
    fn envelope_must_be_the_writers_exactly() {
        let ok = line(r#"{"id":"m","role":"user"}"#);
        takes(&ok);
        let variants = [
            ok.replace("\"seq\":7", "\"seq\":0"),
            ok.replace("\"seq\":7", "\"seq\":07"),
            ok.replace("\"seq\":7", "\"seq\":-7"),
            ok.replace("\"seq\":7", "\"seq\":7.0"),
            ok.replace("\"seq\":7", "\"seq\":7e0"),
            ok.replace("\"seq\":7", "\"seq\":\"7\""),
            ok.replace("\"seq\":7", "\"seq\":18446744073709551616"),
            ok.replace("\"seq\":7", "\"seq\":99999999999999999999"),
            ok.replace("\"turn\":3", "\"turn\":03"),
            ok.replace("\"turn\":3", "\"turn\":-3"),
            ok.replace("\"turn\":3", "\"turn\":null"),
            ok.replace("\"turn\":3", &format!("\"turn\":{}", TURN_MAX + 1)),
            ok.replace("\"kind\":\"message\"", "\"kind\":\"messag\\u0065\""),
            ok.replace("\"kind\":\"message\"", "\"kind\":\"delta\""),
            ok.replace("\"kind\":\"message\"", "\"kind\":\"x-message\""),
            ok.replace("\"seq\":7,", "") + "",
            ok.replace("{\"seq\":7,", "{\"ts\":\"x\",\"seq\":7,"),
            ok.replace(",\"turn\":3", ",\"turn\":3,\"turn\":3"),
            ok.replace(",\"body\":", ",\"extra\":1,\"body\":"),
            ok.replace("}\n", ",\"body\":{}}\n"),
            ok.replace("}\n", "}\n\n"),
            ok.replace("}\n", "}\r\n"),
            ok.replace("}\n", "} "),
            ok.replace("}\n", "}x"),
            ok.replace("}\n", ""),
            format!(" {ok}"),
            ok.replace("\"seq\":7", "\"seq\": 7"),
            ok.replace("{\"seq\"", "{ \"seq\""),
        ];
        for v in &variants {
            declines(v);
        }
        assert_eq!(
            takes(&ok.replace("\"turn\":3", "\"turn\":0")).1.turn,
            Some(0)
        );
        assert_eq!(
            takes(&ok.replace("\"turn\":3", &format!("\"turn\":{TURN_MAX}")))
                .1
                .turn,
            Some(TURN_MAX)
        );
        // Reordered fields are fine for the full path, not for this one.
        declines(&format!(
            "{{\"ts\":\"{TS}\",\"seq\":7,\"kind\":\"message\",\"body\":{{\"id\":\"m\",\"role\":\"user\"}}}}"
        ));
        declines(&format!(
            "{{\"seq\":7,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{{\"id\":\"m\",\"role\":\"user\"}},\"turn\":3}}"
        ));
    }

    #[test]
    fn timestamps_are_the_fixed_form_only() {
        let with_ts = |ts: &str| {
            format!(
                "{{\"seq\":7,\"ts\":\"{ts}\",\"kind\":\"message\",\"body\":{{\"id\":\"m\",\"role\":\"user\"}}}}"
            )
        };
        for ts in [
            "1970-01-01T00:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "2000-02-29T12:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "0000-01-01T00:00:00.000Z",
            "0000-02-29T00:00:00.000Z",
            "0001-03-01T00:00:00.001Z",
            "1600-02-29T00:00:00.000Z",
            "9998-12-31T23:59:59.999Z",
            "2026-12-31T23:59:59.999Z",
            "2026-04-30T10:00:00.000Z",
        ] {
            let (_, e) = takes(&with_ts(ts));
            assert_eq!(Some(e.ts_ms), parse_ts(ts), "{ts}");
        }
        for ts in [
            "2026-02-29T00:00:00.000Z",
            "1900-02-29T00:00:00.000Z",
            "2100-02-29T00:00:00.000Z",
            "2026-02-30T00:00:00.000Z",
            "2026-04-31T00:00:00.000Z",
            "2026-06-31T00:00:00.000Z",
            "2026-09-31T00:00:00.000Z",
            "2026-11-31T00:00:00.000Z",
            "2026-01-32T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-00-01T00:00:00.000Z",
            "2026-01-00T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-01-01T23:60:00.000Z",
            "2026-12-31T23:59:60.000Z",
            "9999-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2026-01-01t00:00:00.000Z",
            "2026-01-01T00:00:00.000z",
            "2026-01-01 00:00:00.000Z",
            "2026-01-01T00:00:00.000+00:00",
            "2026-01-01T00:00:00.000-00:00",
            "2026-01-01T01:00:00.000+01:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.00Z",
            "2026-01-01T00:00:00.0000Z",
            "2026-01-01T00:00:00,000Z",
            "2026-1-01T00:00:00.000Z",
            "+2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:0a.000Z",
            "2026-01-01T00:00:00.00aZ",
            "2026/01/01T00:00:00.000Z",
            "20260101T000000.000Z",
            "",
        ] {
            declines(&with_ts(ts));
        }
    }

    #[test]
    fn timestamp_matches_jiff_on_every_day_of_some_years() {
        // Every day of years around each leap rule, at an odd time of day.
        for year in [
            0, 1, 4, 99, 100, 399, 400, 1582, 1899, 1900, 1969, 1970, 1999, 2000, 2023,
        ]
        .into_iter()
        .chain([2024, 2025, 2100, 2400, 9996, 9998])
        {
            for month in 1..=12 {
                for day in 1..=31 {
                    let ts = format!("{year:04}-{month:02}-{day:02}T13:57:09.041Z");
                    assert_eq!(timestamp_ms(ts.as_bytes()), parse_ts(&ts), "{ts}");
                }
            }
        }
        // And what the writer writes, over the whole range taken.
        let mut ms: i64 = -62_167_219_200_000; // 0000-01-01
        while ms < 253_370_764_800_000 {
            // 9999-01-01
            let ts = format_ts(ms);
            assert_eq!(timestamp_ms(ts.as_bytes()), Some(ms), "{ts}");
            ms += 86_400_000 * 7 + 3_600_000 * 5 + 60_000 * 7 + 1_013;
        }
    }

    #[test]
    fn strings_refuse_raw_control_characters() {
        for c in 0u8..0x20 {
            let raw = char::from(c);
            for body in [
                format!(r#"{{"id":"m","role":"user","x":"a{raw}b"}}"#),
                format!(r#"{{"id":"m{raw}","role":"user"}}"#),
                format!(r#"{{"id":"m","role":"user","k{raw}":1}}"#),
                format!(
                    r#"{{"id":"m","role":"user","parts":[{{"type":"text","text":"{}{raw}"}}]}}"#,
                    "long text ".repeat(5)
                ),
            ] {
                declines_body(&body);
                assert!(parse_full_for_tests(&line(&body)).is_err(), "{body:?}");
            }
        }
        // DEL and everything from 0x80 up are plain content.
        takes_body("{\"id\":\"m\",\"role\":\"user\",\"x\":\"a\u{7f}b\u{80}\u{2028}\u{ffff}\"}");
    }

    #[test]
    fn escapes_are_checked_and_decoded() {
        for ok in [
            r#""\"""#,
            r#""\\""#,
            r#""\/""#,
            r#""\b\f\n\r\t""#,
            r#""\u0000\u001f\u0041\u00e9\u00E9\u20ac\uD7FF\uE000\uffff\uFFFF""#,
            r#""x\\""#,
            r#""\\\"""#,
        ] {
            value(ok, true);
        }
        for bad in [
            r#""\x""#,
            r#""\'""#,
            r#""\a""#,
            r#""\U0041""#,
            r#""\u""#,
            r#""\u12""#,
            r#""\u123""#,
            r#""\u12G4""#,
            r#""\u 123""#,
            r#""\""#,
            r#""\\\""#,
            "\"\\\u{e9}\"",
        ] {
            value(bad, false);
        }
        // Surrogates, paired or not, are left to the full path (the DOM refuses lone ones).
        for s in [
            r#""\uD800""#,
            r#""\ud800""#,
            r#""\uDBFF""#,
            r#""\uDC00""#,
            r#""\udfff""#,
            r#""\uD83D\uDE00""#,
            r#""a\ud83d\ude00b""#,
        ] {
            value(s, false);
        }
        // Decoded where the typed fields look.
        let m = takes_body(
            r#"{"\u0069d":"m\u0031","role":"us\u0065r","st\u0061tus":"fin\/al","parts":[{"typ\u0065":"tool\u005fcall","c\u0061ll_id":"c\"1","n\u0061me":"s\\h"},{"type":"tool_result","call_id":"\u00e9","outcome":"\u20ac"}]}"#,
        );
        assert_eq!(m.id, "m1");
        assert_eq!(m.role, Role::User);
        assert_eq!(m.status.as_deref(), Some("fin/al"));
        assert_eq!(m.tool_calls, vec![("c\"1".to_string(), "s\\h".to_string())]);
        assert_eq!(
            m.tool_results,
            vec![("é".to_string(), Some("€".to_string()))]
        );
        assert_eq!(
            unescape(r#"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9"#).as_deref(),
            Some("a\"b\\c/d\u{8}\u{c}\n\r\tAé")
        );
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for ok in [
            "0",
            "-0",
            "1",
            "-1",
            "10",
            "0.5",
            "-0.5",
            "1.50",
            "123456789012345678901234567890",
            "-12.000",
            "0.0",
        ] {
            value(ok, true);
        }
        for bad in [
            "01",
            "-01",
            "00",
            "1.",
            ".5",
            "-",
            "+1",
            "1e5",
            "1E5",
            "1e-5",
            "2.5E+3",
            "0e0",
            "0x10",
            "NaN",
            "Infinity",
            "-Infinity",
            "1.2.3",
            "--1",
            "1-",
            "0-",
            "- 1",
        ] {
            value(bad, false);
        }
        let run = |n: usize| "9".repeat(n);
        value(&run(300), true);
        value(&run(301), false);
        value(&format!("1.{}", run(300)), true);
        value(&format!("1.{}", run(301)), false);
        value(&format!("-{}.{}", run(300), run(300)), true);
    }

    #[test]
    fn literals_and_structure_are_exact() {
        for ok in [
            "true",
            "false",
            "null",
            "{}",
            "[]",
            "[[]]",
            r#"{"a":{}}"#,
            r#"[1,"a",{}]"#,
        ] {
            value(ok, true);
        }
        for bad in [
            "tru",
            "nul",
            "fals",
            "True",
            "NULL",
            "truee",
            "nulll",
            "[1,]",
            "[,1]",
            "[1,,2]",
            "[1 2]",
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a":1,,"b":2}"#,
            r#"{"a"1}"#,
            r#"{"a":}"#,
            r#"{"a"}"#,
            r#"{a:1}"#,
            r#"{1:1}"#,
            r#"{"a":1"b":2}"#,
            "[",
            "]",
            "{",
            "}",
            r#"{"a":[}"#,
            r#"["a"}"#,
            "''",
            "'a'",
            "undefined",
            "",
        ] {
            value(bad, false);
        }
        // The body itself.
        for bad in [
            r#"{"id":"m","role":"user",}"#,
            r#"{"id":"m","role":"user""#,
            r#"{"id":"m""role":"user"}"#,
            r#"{"id":"m","role":"user"}}"#,
            r#"["id","m"]"#,
            r#""x""#,
            "null",
        ] {
            declines_body(bad);
        }
    }

    #[test]
    fn nesting_is_bounded_like_the_scan() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // The body counts 1: 63 more levels are the deepest taken.
        takes_body(&format!(r#"{{"id":"m","role":"user","x":{}}}"#, nest(63)));
        declines_body(&format!(r#"{{"id":"m","role":"user","x":{}}}"#, nest(64)));
        let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        takes_body(&format!(
            r#"{{"id":"m","role":"user","x":{}}}"#,
            objects(63)
        ));
        declines_body(&format!(
            r#"{{"id":"m","role":"user","x":{}}}"#,
            objects(64)
        ));
        // Inside parts: body 1, array 2, part 3, so 61 more.
        let part = |n: usize| {
            format!(
                r#"{{"id":"m","role":"user","parts":[{{"type":"text","x":{}}}]}}"#,
                nest(n)
            )
        };
        takes_body(&part(61));
        declines_body(&part(62));
        // Width is not depth.
        takes_body(&format!(
            r#"{{"id":"m","role":"user","x":[{}]}}"#,
            vec![r#"{"b":[]}"#; 500].join(",")
        ));
    }

    #[test]
    fn whitespace_outside_strings_declines() {
        for ws in [" ", "\n", "\r", "\t"] {
            for body in [
                format!(r#"{{"id":"m",{ws}"role":"user"}}"#),
                format!(r#"{{"id":{ws}"m","role":"user"}}"#),
                format!(r#"{{"id"{ws}:"m","role":"user"}}"#),
                format!(r#"{{{ws}"id":"m","role":"user"}}"#),
                format!(r#"{{"id":"m","role":"user"{ws}}}"#),
                format!(r#"{{"id":"m","role":"user","x":[1,{ws}2]}}"#),
                format!(r#"{{"id":"m","role":"user","x":[1{ws}]}}"#),
            ] {
                declines_body(&body);
            }
        }
        let m = takes_body(r#"{"id":"m 1","role":"user","x":" \n\t "}"#);
        assert_eq!(m.id, "m 1");
    }

    #[test]
    fn message_fields_follow_the_dom() {
        // Declined: each is refused by the DOM path or read differently by it.
        for body in [
            r#"{"role":"user"}"#,
            r#"{"id":"","role":"user"}"#,
            r#"{"id":1,"role":"user"}"#,
            r#"{"id":null,"role":"user"}"#,
            r#"{"id":"m"}"#,
            r#"{"id":"m","role":"robot"}"#,
            r#"{"id":"m","role":""}"#,
            r#"{"id":"m","role":"User"}"#,
            r#"{"id":"m","role":7}"#,
            r#"{"id":"m","role":"user","parts":{}}"#,
            r#"{"id":"m","role":"user","parts":"x"}"#,
            r#"{"id":"m","role":"user","parts":3}"#,
            r#"{"id":"m","role":"user","parts":[1]}"#,
            r#"{"id":"m","role":"user","parts":[null]}"#,
            r#"{"id":"m","role":"user","parts":[["tool_call","c","n"]]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"c"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","name":"n"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"","name":"n"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"c","name":""}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":1,"name":"n"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"c","name":null}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_result"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_result","call_id":"c","outcome":3}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_result","call_id":"c","outcome":{}}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_result","call_id":"c","outcome":false}]}"#,
            // Repeated keys the typed fields read (the DOM keeps the last).
            r#"{"id":"a","role":"user","id":"b"}"#,
            r#"{"id":"a","role":"user","role":"tool"}"#,
            r#"{"id":"a","role":"user","status":"x","status":"y"}"#,
            r#"{"id":"a","role":"user","status":1,"status":"y"}"#,
            r#"{"id":"a","role":"user","parts":[],"parts":null}"#,
            r#"{"id":"a","role":"user","parts":null,"parts":[]}"#,
            r#"{"id":"a","\u0069d":"b","role":"user"}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"text","type":"tool_call","call_id":"c","name":"n"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"c","call_id":"d","name":"n"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_call","call_id":"c","name":"n","name":"o"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"tool_result","call_id":"c","outcome":"a","outcome":"b"}]}"#,
            r#"{"id":"m","role":"user","parts":[{"type":"text","outcome":1,"outcome":2}]}"#,
        ] {
            declines_body(body);
        }
        // Taken: every irregularity the DOM path reads the same way.
        let m = takes_body(r#"{"id":"m","role":"tool","status":7}"#);
        assert_eq!((m.role, m.status), (Role::Tool, None));
        assert_eq!(
            takes_body(r#"{"id":"m","role":"user","status":null}"#).status,
            None
        );
        assert_eq!(
            takes_body(r#"{"id":"m","role":"user","status":{"a":"b"}}"#).status,
            None
        );
        assert_eq!(
            takes_body(r#"{"id":"m","role":"user","status":["x"]}"#).status,
            None
        );
        assert_eq!(
            takes_body(r#"{"id":"m","role":"user","status":""}"#)
                .status
                .as_deref(),
            Some("")
        );
        for role in Role::ALL {
            let m = takes_body(&format!(r#"{{"id":"m","role":"{}"}}"#, role.as_str()));
            assert_eq!(m.role, *role);
        }
        let m = takes_body(
            r#"{"parts":[{"type":5,"call_id":1},{"name":"x"},{},{"type":"image","name":[]},{"type":null},{"type":"tool_calls","call_id":3},{"type":"Tool_call"},{"type":"text","text":"x","text":"y"}],"role":"user","id":"m","x":1,"x":2,"":0,"":1}"#,
        );
        assert!(m.tool_calls.is_empty() && m.tool_results.is_empty());
        assert!(
            takes_body(r#"{"id":"m","role":"user","parts":null}"#)
                .tool_calls
                .is_empty()
        );
        assert!(
            takes_body(r#"{"id":"m","role":"user","parts":[]}"#)
                .tool_calls
                .is_empty()
        );
        let m = takes_body(
            r#"{"id":"m","role":"assistant","parts":[{"name":"n2","call_id":"c2","type":"tool_call"},{"type":"tool_call","call_id":"c1","name":"n1","call_ID":5}]}"#,
        );
        assert_eq!(
            m.tool_calls,
            vec![("c2".into(), "n2".into()), ("c1".into(), "n1".into())]
        );
        // A part's fields are only looked at in its own object, not deeper.
        let m = takes_body(
            r#"{"id":"m","role":"user","parts":[{"type":"text","x":{"type":"tool_call","type":1}}],"y":{"id":"","role":7,"parts":5}}"#,
        );
        assert!(m.tool_calls.is_empty());
    }

    fn usage_line(body: &str) -> String {
        format!("{{\"seq\":9,\"ts\":\"{TS}\",\"kind\":\"usage\",\"body\":{body}}}\n")
    }

    fn takes_usage(body: &str) -> UsageInfo {
        match takes(&usage_line(body)).1.kind {
            Kind::Usage(u) => u,
            other => panic!("not usage: {other:?}"),
        }
    }

    #[test]
    fn usage_fields_follow_the_dom() {
        let u = takes_usage(
            r#"{"call_key":"k1","model":"m","input":{"total":10,"cache_read":3,"cache_write":null},"output":{"total":7,"reasoning":2,"x":[1]},"cost":{"amount":0.0123,"currency":"USD"},"final":true,"extra":{"a":"b"}}"#,
        );
        assert_eq!(
            (u.input_total, u.cache_read, u.cache_write),
            (10, Some(3), None)
        );
        assert_eq!((u.output_total, u.reasoning), (7, Some(2)));
        assert_eq!(u.cost, Some((0.0123, "USD".to_string())));
        assert!(u.is_final);
        let u = takes_usage(
            r#"{"call_key":"k\u0031","model":"m","input":{"total":0},"output":{"total":18446744073709551615},"cost":null,"final":null}"#,
        );
        assert_eq!(u.call_key, "k1");
        assert_eq!(u.output_total, u64::MAX);
        assert_eq!((u.cost, u.is_final), (None, false));
        for amount in [
            "0",
            "-0",
            "12",
            "-3.5",
            "0.1",
            "123456789012345",
            "0.00000000000001",
        ] {
            takes_usage(&format!(
                r#"{{"call_key":"k","model":"m","input":{{"total":1}},"output":{{"total":1}},"cost":{{"amount":{amount},"currency":"EUR"}}}}"#
            ));
        }
        for body in [
            // Counts that are not plain non-negative integers, or missing, or null where required.
            r#"{"call_key":"k","model":"m","input":{"total":1.0},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":-1},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":null},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":null,"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":18446744073709551616},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1,"cache_read":"3"},"output":{"total":1}}"#,
            // Repeated keys, at either level.
            r#"{"call_key":"k","model":"m","input":{"total":1,"total":2},"output":{"total":1}}"#,
            r#"{"call_key":"k","call_key":"j","model":"m","input":{"total":1},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"final":true,"final":false}"#,
            // Strings required, a bad `final`, a cost the fast path leaves to serde_json.
            r#"{"call_key":"","model":"m","input":{"total":1},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":7,"input":{"total":1},"output":{"total":1}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"final":1}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"cost":{"amount":0.1234567890123456,"currency":"USD"}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"cost":{"amount":1e3,"currency":"USD"}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"cost":{"amount":"1","currency":"USD"}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"cost":{"currency":"USD"}}"#,
            r#"{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1},"cost":{"amount":1}}"#,
        ] {
            declines(&usage_line(body));
        }
    }

    /// Amounts the fast path takes parse as serde_json parses them, on many random decimals.
    #[test]
    fn cost_amounts_agree_with_serde_json() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut taken = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 15) as usize;
            let int_digits = ((x >> 8) % (digits as u64 + 1)) as usize;
            let mut text: String = (0..digits)
                .map(|i| char::from(b'0' + ((x >> (i * 4 % 60)) % 10) as u8))
                .collect();
            if int_digits < digits {
                text.insert(int_digits.max(1).min(digits), '.');
                if text.ends_with('.') {
                    text.push('5');
                }
            }
            let text = text.trim_start_matches('0');
            let text = if text.is_empty() || text.starts_with('.') {
                format!("0{text}")
            } else {
                text.to_string()
            };
            let body = format!(
                r#"{{"call_key":"k","model":"m","input":{{"total":1}},"output":{{"total":1}},"cost":{{"amount":{text},"currency":"USD"}}}}"#
            );
            let line = usage_line(&body);
            if parse_fast_for_tests(&line).is_some() {
                takes(&line);
                taken += 1;
            } else {
                declines(&line);
            }
        }
        assert!(taken > 15_000, "only {taken} amounts taken");
    }

    fn delta_line(body: &str) -> String {
        format!("{{\"seq\":9,\"ts\":\"{TS}\",\"kind\":\"delta\",\"turn\":1,\"body\":{body}}}\n")
    }

    #[test]
    fn delta_fields_follow_the_dom() {
        let d = match takes(&delta_line(
            r#"{"message_id":"m\u0031","index":4294967295,"type":"tool_call","arguments":"{\"a\"","call_id":"c","name":null,"text":"","x":1}"#,
        ))
        .1
        .kind
        {
            Kind::Delta(d) => d,
            other => panic!("not a delta: {other:?}"),
        };
        assert_eq!(d.message_id, "m1");
        assert_eq!(d.index, u32::MAX);
        assert_eq!(d.part, DeltaPart::ToolCall);
        assert_eq!(d.arguments.as_deref(), Some("{\"a\""));
        assert_eq!((d.call_id.as_deref(), d.name.as_deref()), (Some("c"), None));
        assert_eq!(d.text.as_deref(), Some(""));
        for body in [
            r#"{"message_id":"m","index":4294967296,"type":"text"}"#,
            r#"{"message_id":"m","index":null,"type":"text"}"#,
            r#"{"message_id":"m","index":1.0,"type":"text"}"#,
            r#"{"message_id":"m","type":"text"}"#,
            r#"{"message_id":"","index":0,"type":"text"}"#,
            r#"{"message_id":"m","index":0,"type":"image"}"#,
            r#"{"message_id":"m","index":0}"#,
            r#"{"message_id":"m","index":0,"type":"text","text":5}"#,
            r#"{"message_id":"m","index":0,"type":"text","text":"a","text":"b"}"#,
            r#"{"message_id":"m","index":0,"index":1,"type":"text"}"#,
        ] {
            declines(&delta_line(body));
        }
    }

    /// The append path's use: a whole body, compact, of a kind the fast path reads.
    #[test]
    fn typed_body_reads_whole_bodies_only() {
        let body = r#"{"message_id":"m","index":0,"type":"text","text":"x"}"#;
        assert!(matches!(typed_body("delta", body), Some(Kind::Delta(_))));
        assert_eq!(typed_body("delta", &format!("{body} ")), None);
        assert_eq!(typed_body("delta", &format!("{body}{{}}")), None);
        assert_eq!(typed_body("turn", r#"{"event":"started"}"#), None);
        assert_eq!(
            typed_body("message", r#"{"id":"m","role":"user"}"#).map(|k| k.code()),
            Some(
                Kind::Message(MessageInfo {
                    id: "m".into(),
                    role: Role::User,
                    status: None,
                    tool_calls: vec![],
                    tool_results: vec![]
                })
                .code()
            )
        );
    }

    #[test]
    fn other_kinds_are_left_to_the_full_path() {
        for (kind, body) in [
            ("turn", r#"{"event":"started"}"#),
            ("meta", r#"{"a":1}"#),
            ("x-note", r#"{}"#),
        ] {
            declines(&format!(
                "{{\"seq\":7,\"ts\":\"{TS}\",\"kind\":\"{kind}\",\"turn\":3,\"body\":{body}}}"
            ));
        }
    }

    /// The reference for [`find_special`].
    fn naive(s: &[u8]) -> Option<usize> {
        s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)
    }

    #[test]
    fn find_special_finds_the_first_of_every_byte_everywhere() {
        // Every byte value at every offset of strings long enough for every loop, over a
        // background of ASCII and of bytes with the high bit (which must never count).
        for fill in [b'a', 0x80, 0xff, 0x21] {
            for len in 0..76 {
                let base = vec![fill; len];
                assert_eq!(find_special(&base), naive(&base), "{fill:#x} {len}");
                for at in 0..len {
                    for c in 0..=255u8 {
                        let mut s = base.clone();
                        if let Some(x) = s.get_mut(at) {
                            *x = c;
                        }
                        assert_eq!(find_special(&s), naive(&s), "{fill:#x} {len} {at} {c:#x}");
                        // A second special byte later changes nothing.
                        s.push(b'"');
                        assert_eq!(find_special(&s), naive(&s), "{fill:#x} {len} {at} {c:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn find_special_on_pseudo_random_words() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 70) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (x.rotate_left(i as u32 * 7) & 0xff) as u8;
                    // Mostly content, sometimes anything.
                    if b.is_multiple_of(5) {
                        b.wrapping_mul(31)
                    } else {
                        b | 0x20
                    }
                })
                .collect();
            assert_eq!(find_special(&s), naive(&s), "{s:?}");
        }
    }
}
