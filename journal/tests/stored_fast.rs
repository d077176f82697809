#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]
//! The single-pass fast path of the stored-envelope parser against the full path.
//!
//! The invariant: whenever the fast path takes a line, the full path (serde envelope, scan,
//! message fast path or DOM, jiff) accepts it with an identical seq and event; and so
//! `parse_stored_envelope` answers every line, taken or not, exactly as the full path does.
//! Checked on writer lines of random events (`Event::write_envelope`), on hand-made writer-form
//! lines whose bodies the append path may refuse, and on random character-level mutations of
//! both (quotes, backslashes, digits, control characters, braces, commas, ...). Regular
//! message lines must be taken, so the invariant is never checked only on declines.

use std::sync::Arc;

mod common;

use common::{Rng, render_str};
use proptest::prelude::*;
use serde_json::Value;
use turnwal_journal::event::{Event, Kind, MessageInfo, Role, TURN_MAX, format_ts};
use turnwal_journal::storage::Bytes;
use turnwal_journal::stored::{
    parse_fast_for_tests, parse_full_for_tests, parse_stored_envelope, parse_stored_envelope_shared,
};

const NOW_MS: i64 = 1_790_000_000_123;

/// Checks the invariant on one line; returns whether the fast path took it.
fn check(line: &str) -> Result<bool, TestCaseError> {
    let full = parse_full_for_tests(line);
    let fast = parse_fast_for_tests(line);
    if let Some(f) = &fast {
        prop_assert_eq!(
            Ok(f.clone()),
            full.clone(),
            "fast path took a line the full path reads otherwise: {:?}",
            line
        );
        // And the full path's scan found the body certain and compact (it shares only then).
        prop_assert!(
            full.as_ref().is_ok_and(|(_, e)| e.body.is_shared()),
            "fast path took a body the full path's scan does not: {:?}",
            line
        );
    }
    prop_assert_eq!(parse_stored_envelope(line), full.clone(), "{:?}", line);
    // The shared variant, with the line inside a larger buffer: the same answer, and a body
    // taken by the fast path stays in the buffer.
    let text = format!("x\n{line}");
    let buf = Arc::new(Bytes::Owned(text.into_bytes()));
    let in_buf = std::str::from_utf8(&buf[2..]).unwrap();
    let shared = parse_stored_envelope_shared(&buf, in_buf);
    prop_assert_eq!(&shared, &full, "{:?}", line);
    if fast.is_some() {
        prop_assert!(shared.unwrap().1.body.is_shared(), "{:?}", line);
    }
    Ok(fast.is_some())
}

// ---------------------------------------------------------------------------------------------
// Text generators.

/// Characters worth having in strings: plain, ones JSON must escape, non-ASCII, non-BMP.
const CHARS: &[char] = &[
    'a',
    'b',
    'z',
    'A',
    '0',
    '9',
    ' ',
    '_',
    '-',
    '.',
    '/',
    '"',
    '\\',
    '\n',
    '\t',
    '\r',
    '\u{0}',
    '\u{1}',
    '\u{8}',
    '\u{c}',
    '\u{1f}',
    '\u{7f}',
    'é',
    '€',
    '\u{2028}',
    '\u{d7ff}',
    '\u{e000}',
    '\u{ffff}',
    '😀',
    '\u{10ffff}',
];

fn random_string(rng: &mut Rng, max: usize) -> String {
    let len = rng.below(max + 1);
    (0..len)
        .map(|_| {
            if rng.one_in(3) {
                *rng.pick(CHARS)
            } else {
                char::from(b'a' + rng.below(26) as u8)
            }
        })
        .collect()
}

/// A number's text: mostly plain, sometimes with an exponent or near the digit-run limit.
fn random_number(rng: &mut Rng) -> String {
    match rng.below(40) {
        0..=3 => format!("{}", rng.next() as i64),
        4..=6 => format!("{}", rng.next()),
        7..=10 => Value::from((rng.next() % 10_000) as f64 / 8.0 - 500.0).to_string(),
        11 => Value::from(f64::from_bits(rng.next() >> 2)).to_string(),
        12 => format!("{}e{}", rng.below(10), rng.below(400)),
        13 => format!("-{}.{}E-{}", rng.below(10), rng.below(100), rng.below(20)),
        14 => format!("1{}", "0".repeat(296 + rng.below(8))),
        15 => format!("0.{}", "5".repeat(296 + rng.below(8))),
        16 => "-0".to_string(),
        17 => "0.0".to_string(),
        18 => "0".to_string(),
        19 => "-0.05".to_string(),
        _ => format!("{}", rng.below(1000)),
    }
}

/// Random JSON text (valid), `depth` levels deep at most.
fn random_json(rng: &mut Rng, depth: usize, out: &mut String) {
    let kinds = if depth == 0 { 5 } else { 8 };
    match rng.below(kinds) {
        0 => {
            let literal: &&str = rng.pick(&["true", "false", "null"]);
            out.push_str(literal);
        }
        1 | 2 => out.push_str(&random_number(rng)),
        3 | 4 => {
            let s = random_string(rng, 12);
            render_str(&s, rng, 8, out);
        }
        5 | 6 => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                let k = random_string(rng, 6);
                render_str(&k, rng, 8, out);
                out.push(':');
                random_json(rng, depth - 1, out);
            }
            out.push('}');
        }
        _ => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                random_json(rng, depth - 1, out);
            }
            out.push(']');
        }
    }
}

/// Nested arrays around the depth limits of the fast path (64) and serde_json (128).
fn deep(rng: &mut Rng) -> String {
    let n = *rng.pick(&[58, 60, 61, 62, 63, 64, 65, 66, 127, 128, 129]);
    if rng.one_in(2) {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    } else {
        format!("{}null{}", "{\"a\":".repeat(n), "}".repeat(n))
    }
}

/// A string field's value text: usually regular, sometimes not (empty, escaped, mistyped).
fn string_field(rng: &mut Rng, regular: &str) -> String {
    let mut out = String::new();
    match rng.below(30) {
        0 => out.push_str("\"\""),
        1 => out.push_str("null"),
        2 => random_json(rng, 1, &mut out),
        3 => render_str(&random_string(rng, 6), rng, 8, &mut out),
        4..=7 => render_str(regular, rng, 8, &mut out),
        _ => out.push_str(&Value::from(regular).to_string()),
    }
    out
}

/// A key's text: usually plain, sometimes escaped.
fn key(rng: &mut Rng, name: &str) -> String {
    let mut out = String::new();
    if rng.one_in(12) {
        render_str(name, &mut Rng::new(rng.next() | 0b1000), 8, &mut out);
        // Force at least one escape: spell the first character as \u00XX.
        if let Some(c) = name.chars().next() {
            out = format!("\"\\u{:04x}{}\"", c as u32, &name[c.len_utf8()..]);
        }
    } else {
        out = Value::from(name).to_string();
    }
    out
}

/// An object's text from entries, in a random order, sometimes with one repeated.
fn object(rng: &mut Rng, mut entries: Vec<(String, String)>) -> String {
    for i in (1..entries.len()).rev() {
        let j = rng.below(i + 1);
        entries.swap(i, j);
    }
    if !entries.is_empty() && rng.one_in(15) {
        let (k, _) = entries[rng.below(entries.len())].clone();
        let mut v = String::new();
        random_json(rng, 1, &mut v);
        entries.push((k, v));
    }
    let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// A part of a message: text, tool call or result, usually regular.
fn part(rng: &mut Rng) -> String {
    let mut e = Vec::new();
    let regular_type = *rng.pick(&["text", "tool_call", "tool_result", "thinking", "image"]);
    if !rng.one_in(15) {
        e.push((key(rng, "type"), string_field(rng, regular_type)));
    }
    if !rng.one_in(15) {
        let id = format!("call_{}", rng.below(1000));
        e.push((key(rng, "call_id"), string_field(rng, &id)));
    }
    if !rng.one_in(8) {
        e.push((key(rng, "name"), string_field(rng, "shell")));
    }
    if rng.one_in(2) {
        let mut v = String::new();
        match rng.below(10) {
            0..=2 => v.push_str("null"),
            3 => random_json(rng, 1, &mut v),
            _ => render_str(&random_string(rng, 8), rng, 8, &mut v),
        }
        e.push((key(rng, "outcome"), v));
    }
    for _ in 0..rng.below(3) {
        let name = *rng.pick(&["text", "arguments", "content", "meta"]);
        let mut v = String::new();
        if rng.one_in(2) {
            render_str(&random_string(rng, 200), rng, 8, &mut v);
        } else if rng.one_in(10) {
            v = deep(rng);
        } else {
            random_json(rng, 3, &mut v);
        }
        e.push((key(rng, name), v));
    }
    if rng.one_in(25) {
        let mut v = String::new();
        random_json(rng, 1, &mut v);
        return v; // not an object
    }
    object(rng, e)
}

/// A message body's text: usually one the append path takes, sometimes an irregular one.
fn message_body(rng: &mut Rng) -> String {
    let mut e = Vec::new();
    if !rng.one_in(20) {
        let id = format!("msg_{}", rng.below(100_000));
        e.push((key(rng, "id"), string_field(rng, &id)));
    }
    if !rng.one_in(20) {
        let role = rng.pick(Role::ALL).as_str();
        e.push((key(rng, "role"), string_field(rng, role)));
    }
    if rng.one_in(2) {
        e.push((key(rng, "status"), string_field(rng, "final")));
    }
    match rng.below(6) {
        0 => {}
        1 => e.push((key(rng, "parts"), "null".to_string())),
        2 if rng.one_in(4) => {
            let mut v = String::new();
            random_json(rng, 1, &mut v);
            e.push((key(rng, "parts"), v));
        }
        _ => {
            let parts: Vec<String> = (0..rng.below(5)).map(|_| part(rng)).collect();
            e.push((key(rng, "parts"), format!("[{}]", parts.join(","))));
        }
    }
    for _ in 0..rng.below(3) {
        let name = random_string(rng, 5);
        let mut k = String::new();
        render_str(&name, rng, 8, &mut k);
        let mut v = String::new();
        if rng.one_in(12) {
            v = deep(rng);
        } else {
            random_json(rng, 3, &mut v);
        }
        e.push((k, v));
    }
    object(rng, e)
}

/// A body of another kind, valid for it or not.
fn other_body(rng: &mut Rng) -> (&'static str, String) {
    let kind = *rng.pick(&[
        "delta",
        "usage",
        "turn",
        "tool_run",
        "meta",
        "rewind",
        "compaction",
        "x-note",
    ]);
    let body = match kind {
        "delta" => format!(
            r#"{{"message_id":"m{}","index":{},"type":"text","text":{}}}"#,
            rng.below(100),
            rng.below(10),
            Value::from(random_string(rng, 20))
        ),
        "usage" => format!(
            r#"{{"call_key":"k","model":"m","input":{{"total":{}}},"output":{{"total":{}}},"cost":{{"amount":{},"currency":"USD"}}}}"#,
            rng.below(1000),
            rng.below(1000),
            random_number(rng)
        ),
        "turn" => r#"{"event":"started"}"#.to_string(),
        "tool_run" => r#"{"call_id":"c","event":"finished"}"#.to_string(),
        "rewind" => format!(r#"{{"to_seq":{}}}"#, rng.below(100)),
        "compaction" => r#"{"summary_message_id":"m","through_seq":3}"#.to_string(),
        _ => {
            let mut v = String::new();
            random_json(rng, 2, &mut v);
            format!(r#"{{"a":{v}}}"#)
        }
    };
    (kind, body)
}

fn random_ts(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => "2026-11-21T15:04:05.123456789+01:00".to_string(),
        1 => format_ts(-((rng.next() % 62_000_000_000_000) as i64)),
        _ => format_ts((rng.next() % 253_000_000_000_000) as i64),
    }
}

/// A writer-form line: through `from_envelope` and `write_envelope` when the append path takes
/// the body, else assembled by hand in the same layout.
fn writer_line(seed: u64) -> String {
    let rng = &mut Rng::new(seed);
    let (kind, body) = if rng.one_in(6) {
        other_body(rng)
    } else {
        ("message", message_body(rng))
    };
    let turn = match rng.below(6) {
        0 => None,
        1 => Some(TURN_MAX + 1 - rng.below(3) as u64),
        2 => Some(0),
        _ => Some(rng.below(1000) as u64),
    };
    let seq = if rng.one_in(10) {
        u64::MAX - rng.below(3) as u64
    } else if rng.one_in(8) {
        1 + rng.below(3) as u64
    } else {
        1 + rng.below(100_000) as u64
    };
    let ts = random_ts(rng);
    let turn_field = turn.map(|t| format!(",\"turn\":{t}")).unwrap_or_default();
    let append = format!("{{\"kind\":\"{kind}\",\"ts\":\"{ts}\"{turn_field},\"body\":{body}}}");
    let mut line = match Event::from_envelope(&append, NOW_MS) {
        Ok(e) => {
            let mut line = String::new();
            e.write_envelope(seq, &mut line);
            line
        }
        Err(_) => format!(
            "{{\"seq\":{seq},\"ts\":\"{}\",\"kind\":\"{kind}\"{turn_field},\"body\":{body}}}",
            format_ts(rng.next() as i64 % 4_000_000_000_000)
        ),
    };
    if rng.one_in(2) {
        line.push('\n');
    }
    line
}

/// Characters a mutation inserts or writes over another: the JSON grammar's sharp edges.
const MUTANTS: &[char] = &[
    '"', '"', '"', '\\', '\\', '\\', '0', '1', '5', '9', '0', '{', '}', '[', ']', ',', ',', ':',
    ' ', '\n', '\t', '\r', '\u{0}', '\u{1}', '\u{1f}', '\u{7f}', 'e', 'E', '-', '+', '.', 'u', 'd',
    'D', '8', 'b', 'f', 'n', 't', 'r', 'l', 's', '/', 'x', 'é', '😀', 'T', 'Z', 'z',
];

/// Snippets a mutation inserts or writes over others: bad and good escapes, number edges,
/// structure edges.
const SNIPPETS: &[&str] = &[
    "\\x",
    "\\'",
    "\\a",
    "\\U0041",
    "\\u12",
    "\\u12G4",
    "\\uD800",
    "\\udfff",
    "\\uD83D\\uDE00",
    "\\u00e9",
    "\\u0000",
    "\\ ",
    "\\\\",
    "\\\"",
    "\\/",
    "\\n",
    "01",
    "00",
    "-0",
    "0.",
    ".5",
    "1e5",
    "1E-2",
    "+1",
    "-",
    "0",
    ",]",
    ",}",
    "[,",
    "{,",
    ",,",
    "::",
    "\"\"",
    "null",
    "true",
    "nul",
    "tru",
    "{}",
    "[]",
    "\u{0}",
    "\u{1f}",
];

/// A timestamp of the fixed form, its fields anywhere in their digits' range (so often not a
/// real date or time).
fn odd_ts(rng: &mut Rng) -> String {
    let year = match rng.below(4) {
        0 => rng.below(10_000),
        1 => *rng.pick(&[0, 1, 1600, 1900, 1969, 1970, 2000, 2100, 9998, 9999]),
        _ => 1990 + rng.below(50),
    };
    let month = if rng.one_in(4) {
        rng.below(20)
    } else {
        1 + rng.below(12)
    };
    let day = if rng.one_in(4) {
        rng.below(40)
    } else {
        26 + rng.below(6)
    };
    let (h, m, s) = if rng.one_in(3) {
        (rng.below(30), rng.below(70), rng.below(70))
    } else {
        (rng.below(24), rng.below(60), rng.below(60))
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        rng.below(1000)
    )
}

/// `line` with a few characters inserted, deleted or replaced, or its timestamp replaced.
fn mutate(line: &str, seed: u64) -> String {
    let rng = &mut Rng::new(seed);
    if rng.one_in(6)
        && let Some(at) = line.find("\"ts\":\"")
        && let Some(old) = line.get(at + 6..at + 30)
    {
        return line.replacen(old, &odd_ts(rng), 1);
    }
    if rng.one_in(6) {
        // The envelope's integers at their edges.
        let field = *rng.pick(&["\"seq\":", "\"turn\":"]);
        if let Some(at) = line.find(field) {
            let start = at + field.len();
            let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
            let max = TURN_MAX.to_string();
            let over = (TURN_MAX + 1).to_string();
            let with = *rng.pick(&[
                "0",
                "00",
                "01",
                "-1",
                "-0",
                "1.0",
                "1e3",
                "1",
                "18446744073709551615",
                "18446744073709551616",
                "99999999999999999999",
                &max,
                &over,
                "\"1\"",
                "null",
            ]);
            return format!("{}{with}{}", &line[..start], &line[start + digits..]);
        }
    }
    let mut chars: Vec<char> = line.chars().collect();
    let edits = if rng.one_in(2) { 1 } else { 2 + rng.below(3) };
    for _ in 0..edits {
        let at = rng.below(chars.len() + 1);
        if rng.one_in(4) {
            let snippet = *rng.pick(SNIPPETS);
            let len = if rng.one_in(2) {
                0
            } else {
                snippet.chars().count()
            };
            let end = (at + len).min(chars.len());
            chars.splice(at..end, snippet.chars());
            continue;
        }
        let c = *rng.pick(MUTANTS);
        match rng.below(4) {
            0 | 1 => chars.insert(at, c),
            2 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

/// The append path against its reference, the DOM reading of the whole envelope: whatever
/// `from_envelope` accepts, the reference accepts with the same event; whatever the reference
/// accepts and `from_envelope` refuses has a repeated envelope field.
fn check_append(line: &str) -> Result<(), TestCaseError> {
    let new = Event::from_envelope(line, NOW_MS);
    let reference = Event::from_envelope_reference(line, NOW_MS);
    match (&new, &reference) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{:?}", line),
        (Ok(_), Err(e)) => prop_assert!(false, "taken, refused by the reference ({e}): {line:?}"),
        (Err(e), Ok(_)) => prop_assert!(
            e.to_string().contains("repeated envelope field"),
            "refused ({e}), taken by the reference: {line:?}"
        ),
        (Err(_), Err(_)) => {}
    }
    Ok(())
}

/// A writer line as an append envelope: without its `seq`.
fn append_line(seed: u64) -> String {
    let line = writer_line(seed);
    match line.find(',') {
        Some(comma) if line.starts_with("{\"seq\":") => format!("{{{}", &line[comma + 1..]),
        _ => line,
    }
}

// ---------------------------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn writer_lines_read_the_same_on_both_paths(seed in any::<u64>()) {
        check(&writer_line(seed))?;
    }

    #[test]
    fn append_envelopes_read_as_the_reference_reads_them(seed in any::<u64>(), m in any::<u64>()) {
        let line = append_line(seed);
        check_append(&line)?;
        for i in 0..8u64 {
            check_append(&mutate(&line, m.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))))?;
        }
    }

    #[test]
    fn mutated_writer_lines_read_the_same_on_both_paths(seed in any::<u64>(), m in any::<u64>()) {
        let line = writer_line(seed);
        for i in 0..8u64 {
            check(&mutate(&line, m.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))))?;
        }
    }
}

/// A regular message: plain ids, a known role, tool parts with their ids, text of any
/// characters as serde_json writes it (no surrogate escapes), plain numbers.
fn regular_message() -> impl Strategy<Value = (String, MessageInfo)> {
    let text = "\\PC{0,300}";
    let id = "[a-zA-Z0-9_é-]{1,20}";
    let part = prop_oneof![
        text.prop_map(|t| (serde_json::json!({"type": "text", "text": t}), None, None)),
        (id, id, text).prop_map(|(c, n, args)| {
            (
                serde_json::json!({"type": "tool_call", "call_id": c, "name": n, "arguments": args}),
                Some((c, n)),
                None,
            )
        }),
        (id, prop::option::of(id), any::<i32>(), any::<bool>()).prop_map(|(c, o, n, b)| {
            (
                serde_json::json!({"type": "tool_result", "call_id": c, "outcome": o, "content": [{"n": n, "b": b, "x": null, "f": 0.5}]}),
                None,
                Some((c, o)),
            )
        }),
    ];
    (
        id,
        prop::sample::select(Role::ALL.to_vec()),
        prop::option::of(id),
        prop::collection::vec(part, 0..6),
    )
        .prop_map(|(id, role, status, parts)| {
            let mut info = MessageInfo {
                id: id.clone(),
                role,
                status: status.clone(),
                tool_calls: Vec::new(),
                tool_results: Vec::new(),
            };
            let mut values = Vec::new();
            for (v, call, result) in parts {
                values.push(v);
                info.tool_calls.extend(call);
                info.tool_results.extend(result);
            }
            let mut body = serde_json::json!({"id": id, "role": role.as_str(), "parts": values});
            if let Some(s) = status {
                body["status"] = Value::from(s);
            }
            (body.to_string(), info)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn regular_messages_are_taken_with_their_fields(
        (body, info) in regular_message(),
        seq in 1u64..,
        turn in prop::option::of(0..=TURN_MAX),
        ts_ms in -62_167_219_200_000i64..253_370_764_800_000,
        newline in any::<bool>(),
    ) {
        let turn_field = turn.map(|t| format!(",\"turn\":{t}")).unwrap_or_default();
        let append = format!("{{\"kind\":\"message\",\"ts\":\"{}\"{turn_field},\"body\":{body}}}", format_ts(ts_ms));
        let event = Event::from_envelope(&append, NOW_MS).unwrap();
        let mut line = String::new();
        event.write_envelope(seq, &mut line);
        if newline {
            line.push('\n');
        }
        prop_assert!(check(&line)?, "a regular message line was declined: {}", line);
        let (s, e) = parse_fast_for_tests(&line).unwrap();
        prop_assert_eq!(s, seq);
        prop_assert_eq!(e.ts_ms, ts_ms);
        prop_assert_eq!(e.turn, turn);
        prop_assert_eq!(&e.body, &body);
        prop_assert_eq!(e.kind, Kind::Message(info));
    }
}

/// The generators are not vacuous: a good share of writer lines, and of their mutations, is
/// taken by the fast path (where the invariant has teeth), and a good share is declined.
#[test]
fn the_generators_exercise_both_paths() {
    let (mut lines, mut taken, mut mutants, mut mutants_taken, mut full_ok_declined) =
        (0, 0, 0, 0, 0);
    for seed in 0..3000u64 {
        let line = writer_line(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        lines += 1;
        if check(&line).unwrap() {
            taken += 1;
        } else if parse_full_for_tests(&line).is_ok() {
            full_ok_declined += 1;
        }
        for i in 0..8 {
            mutants += 1;
            if check(&mutate(&line, seed * 8 + i)).unwrap() {
                mutants_taken += 1;
            }
        }
    }
    println!(
        "stored_fast: {taken}/{lines} writer lines taken ({full_ok_declined} declined that the \
         full path reads), {mutants_taken}/{mutants} mutants taken"
    );
    assert!(taken * 4 > lines, "{taken}/{lines}");
    assert!(full_ok_declined * 10 > lines, "{full_ok_declined}/{lines}");
    assert!(mutants_taken * 25 > mutants, "{mutants_taken}/{mutants}");
    assert!(
        mutants_taken * 10 < mutants * 9,
        "{mutants_taken}/{mutants}"
    );
}
