#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]
//! Property tests of the stored-envelope parser: every appendable event round-trips through its
//! export line, the message fast path never disagrees with the DOM path of `from_envelope`, the
//! journal's `session` event reads back, and refusals name the field.

mod common;

use common::{Rng, render_str};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use turnwal_journal::InputError;
use turnwal_journal::event::{
    DeltaPart, Event, Kind, Role, SessionInfo, TURN_MAX, ToolRunEvent, TurnEvent, format_ts,
};
use turnwal_journal::stored::parse_stored_envelope;

const NOW_MS: i64 = 1_790_000_000_123;
const TS: &str = "2026-01-02T03:04:05.678Z";

// ---------------------------------------------------------------------------------------------
// Rendering JSON text with escapes and whitespace a plain serialiser would not produce.

/// Whitespace a plain serialiser would not write.
fn ws(rng: &mut Rng, out: &mut String) {
    while rng.one_in(4) {
        out.push([' ', '\n', '\t', '\r'][(rng.next() % 4) as usize]);
    }
}

/// JSON text of `v` (keys in map order), with random escapes and whitespace.
fn render(v: &Value, rng: &mut Rng, out: &mut String) {
    ws(rng, out);
    match v {
        Value::String(s) => render_str(s, rng, 5, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(x, rng, out);
            }
            ws(rng, out);
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                render_str(k, rng, 5, out);
                ws(rng, out);
                out.push(':');
                render(x, rng, out);
            }
            ws(rng, out);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
    ws(rng, out);
}

fn rendered(v: &Value, seed: u64) -> String {
    let mut out = String::new();
    render(v, &mut Rng::new(seed), &mut out);
    out
}

/// Inserts JSON whitespace after random structural characters outside strings.
fn sprinkle_ws(json: &str, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    let (mut in_str, mut escaped) = (false, false);
    ws(&mut rng, &mut out);
    for c in json.chars() {
        out.push(c);
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if matches!(c, '{' | '}' | '[' | ']' | ':' | ',') {
            ws(&mut rng, &mut out);
        }
    }
    ws(&mut rng, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Non-empty strings, often with quotes, backslashes, control characters and non-BMP text.
fn odd() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_]{1,8}",
        "[a-z\"\\\\/\u{0}-\u{1f}\u{7f} é€😀\u{2028}\u{feff}]{1,8}",
        "\\PC{1,12}",
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

/// Any JSON value (no non-finite floats: JSON has none).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e300f64..1.0e300).prop_map(Value::from),
        odd().prop_map(Value::from),
        Just(Value::from("")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(odd(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn insert_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v);
    }
}

fn part() -> impl Strategy<Value = Value> {
    prop_oneof![
        (odd(), opt(any_json())).prop_map(|(text, extra)| {
            let mut p = json!({"type": "text", "text": text});
            insert_opt(p.as_object_mut().unwrap(), "meta", extra);
            p
        }),
        (odd(), odd(), odd()).prop_map(|(call_id, name, arguments)| {
            json!({"type": "tool_call", "call_id": call_id, "name": name, "arguments": arguments})
        }),
        (
            odd(),
            prop_oneof![
                Just(None),
                Just(Some(Value::Null)),
                odd().prop_map(|s| Some(Value::from(s)))
            ],
            any_json()
        )
            .prop_map(|(call_id, outcome, content)| {
                let mut p = json!({"type": "tool_result", "call_id": call_id, "content": content});
                insert_opt(p.as_object_mut().unwrap(), "outcome", outcome);
                p
            }),
        // Parts the typed fields ignore, whatever their other fields hold.
        (any_json(), any_json())
            .prop_map(|(t, name)| json!({"type": t, "name": name, "call_id": 7})),
        Just(json!({})),
    ]
}

fn status() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        odd().prop_map(|s| Some(Value::from(s))),
        any::<i64>().prop_map(|n| Some(Value::from(n))),
        any::<bool>().prop_map(|b| Some(Value::from(b))),
        Just(Some(json!({"state": "final"}))),
        Just(Some(json!(["final"]))),
    ]
}

/// A valid append body for some kind, with its kind name.
fn body() -> impl Strategy<Value = (String, Value)> {
    let message = (
        odd(),
        prop::sample::select(Role::ALL.to_vec()),
        status(),
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            prop::collection::vec(part(), 0..5).prop_map(|p| Some(Value::from(p)))
        ],
        opt(any_json()),
    )
        .prop_map(|(id, role, status, parts, extra)| {
            let mut b = json!({"id": id, "role": role.as_str()});
            let m = b.as_object_mut().unwrap();
            insert_opt(m, "status", status);
            insert_opt(m, "parts", parts);
            insert_opt(m, "metadata", extra);
            ("message".to_string(), b)
        });
    let delta = (
        odd(),
        any::<u32>(),
        prop::sample::select(DeltaPart::ALL.to_vec()),
        opt(odd()),
        opt(odd()),
        opt(odd()),
        opt(odd()),
    )
        .prop_map(
            |(message_id, index, part, text, arguments, call_id, name)| {
                let mut b =
                    json!({"message_id": message_id, "index": index, "type": part.as_str()});
                let m = b.as_object_mut().unwrap();
                insert_opt(m, "text", text.map(Value::from));
                insert_opt(m, "arguments", arguments.map(Value::from));
                insert_opt(m, "call_id", call_id.map(Value::from));
                insert_opt(m, "name", name.map(Value::from));
                ("delta".to_string(), b)
            },
        );
    let usage = (
        (
            odd(),
            odd(),
            any::<u64>(),
            opt(any::<u64>()),
            opt(any::<u64>()),
        ),
        (any::<u64>(), opt(any::<u64>())),
        opt((-1.0e9f64..1.0e9, odd())),
        opt(any::<bool>()),
    )
        .prop_map(
            |((call_key, model, input, read, write), (output, reasoning), cost, fin)| {
                let mut i = json!({"total": input});
                insert_opt(
                    i.as_object_mut().unwrap(),
                    "cache_read",
                    read.map(Value::from),
                );
                insert_opt(
                    i.as_object_mut().unwrap(),
                    "cache_write",
                    write.map(Value::from),
                );
                let mut o = json!({"total": output});
                insert_opt(
                    o.as_object_mut().unwrap(),
                    "reasoning",
                    reasoning.map(Value::from),
                );
                let mut b = json!({"call_key": call_key, "model": model, "input": i, "output": o});
                let m = b.as_object_mut().unwrap();
                insert_opt(
                    m,
                    "cost",
                    cost.map(|(amount, currency)| json!({"amount": amount, "currency": currency})),
                );
                insert_opt(m, "final", fin.map(Value::from));
                ("usage".to_string(), b)
            },
        );
    let meta = prop::collection::btree_map(odd(), prop_oneof![Just(Value::Null), any_json()], 0..5)
        .prop_map(|m| ("meta".to_string(), Value::Object(m.into_iter().collect())));
    let turn =
        (prop::sample::select(TurnEvent::ALL.to_vec()), opt(odd())).prop_map(|(event, reason)| {
            let mut b = json!({"event": event.as_str()});
            insert_opt(
                b.as_object_mut().unwrap(),
                "reason",
                reason.map(Value::from),
            );
            ("turn".to_string(), b)
        });
    let tool_run =
        (odd(), prop::sample::select(ToolRunEvent::ALL.to_vec())).prop_map(|(call_id, event)| {
            let b = json!({"call_id": call_id, "event": event.as_str(), "exit_code": 0});
            ("tool_run".to_string(), b)
        });
    let rewind = (any::<u64>(), opt(odd())).prop_map(|(to_seq, reason)| {
        let mut b = json!({"to_seq": to_seq});
        insert_opt(
            b.as_object_mut().unwrap(),
            "reason",
            reason.map(Value::from),
        );
        ("rewind".to_string(), b)
    });
    let compaction = (odd(), any::<u64>(), opt(odd())).prop_map(|(id, through, reason)| {
        let mut b = json!({"summary_message_id": id, "through_seq": through});
        insert_opt(
            b.as_object_mut().unwrap(),
            "reason",
            reason.map(Value::from),
        );
        ("compaction".to_string(), b)
    });
    let ext = (
        "[a-zA-Z0-9._-]{1,64}",
        prop::collection::btree_map(odd(), any_json(), 0..4),
    )
        .prop_map(|(name, m)| (format!("x-{name}"), Value::Object(m.into_iter().collect())));
    prop_oneof![
        4 => message,
        1 => delta,
        1 => usage,
        1 => meta,
        1 => turn,
        1 => tool_run,
        1 => rewind,
        1 => compaction,
        1 => ext,
    ]
}

fn ts() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(TS.to_string())),
        Just(Some("2026-11-21T15:04:05.123456789+01:00".to_string())),
        Just(Some("1969-12-31T23:59:59.9995-00:30".to_string())),
        (0i64..4_102_444_800_000).prop_map(|ms| Some(format_ts(ms))),
    ]
}

/// An append envelope: fields in a random order, rendered with escapes and whitespace.
fn append_envelope(
    kind: &str,
    ts: Option<&str>,
    turn: Option<u64>,
    body: &str,
    seed: u64,
) -> String {
    let mut rng = Rng::new(seed);
    let mut fields = vec![format!("\"kind\":{}", {
        let mut s = String::new();
        render_str(kind, &mut rng, 5, &mut s);
        s
    })];
    if let Some(ts) = ts {
        fields.push(format!("\"ts\":\"{ts}\""));
    }
    if let Some(t) = turn {
        fields.push(format!("\"turn\":{t}"));
    }
    fields.push(format!("\"body\":{body}"));
    let rot = (rng.next() % fields.len() as u64) as usize;
    fields.rotate_left(rot);
    format!("{{{}}}", fields.join(","))
}

fn export_line(e: &Event, seq: u64) -> String {
    let mut line = String::new();
    e.write_envelope(seq, &mut line);
    line
}

fn field_of<T: std::fmt::Debug>(r: Result<T, InputError>) -> String {
    match r {
        Ok(v) => panic!("accepted as {v:?}"),
        Err(e) => e.field,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Round trip: append envelope -> Event -> export line -> the same (seq, Event).

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_appendable_event_round_trips_through_its_export_line(
        (kind, body) in body(),
        ts in ts(),
        turn in opt(0..=TURN_MAX),
        seq in 1u64..,
        seed in any::<u64>(),
    ) {
        let turn = if kind == "turn" { Some(turn.unwrap_or(1)) } else { turn };
        let text = append_envelope(&kind, ts.as_deref(), turn, &rendered(&body, seed), seed);
        let e = Event::from_envelope(&text, NOW_MS)
            .unwrap_or_else(|err| panic!("generated envelope refused: {err}\n{text}"));
        let line = export_line(&e, seq);
        prop_assert_eq!(parse_stored_envelope(&line), Ok((seq, e.clone())), "{}", line);
        // Whitespace anywhere outside strings changes nothing.
        let spaced = sprinkle_ws(&line, seed.rotate_left(17));
        prop_assert_eq!(parse_stored_envelope(&spaced), Ok((seq, e)), "{}", spaced);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The message fast path agrees with the DOM path of `from_envelope`, shape by shape.

/// JSON text of odd values: wrong types, escapes, lone surrogates, numbers beyond f64.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1.5".to_string()),
        Just("1e5".to_string()),
        Just("1e400".to_string()),
        Just("-1E+400".to_string()),
        Just(format!("1{}", "0".repeat(320))),
        Just("\"\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("\"\\udc00x\"".to_string()),
        Just("\"a\\ud83d\\ude00b\"".to_string()),
        Just("\"\\uD83D\\uDE00\"".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        Just("{\"a\":[1,{\"b\":null}],\"a\":2}".to_string()),
        Just(format!("{}{}", "[".repeat(130), "]".repeat(130))),
        Just(format!("{}{}", "[".repeat(70), "]".repeat(70))),
        odd().prop_map(|s| Value::from(s).to_string()),
    ]
}

/// A field's JSON text: mostly a fine non-empty string, else empty, escaped, junk or absent.
fn field_text(fine: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        40 => Just(Some(format!("\"{fine}\""))),
        6 => "[a-z0-9]{1,6}".prop_map(|s| Some(format!("\"{s}\""))),
        1 => Just(Some("\"\"".to_string())),
        2 => Just(Some(format!("\"\\u00{:02x}{}\"", fine.as_bytes()[0], &fine[1..]))),
        1 => Just(Some("\" \"".to_string())),
        2 => Just(None),
        2 => junk().prop_map(Some),
    ]
}

/// One object's entries, in a random order, sometimes with one key repeated (the DOM keeps the
/// last) or spelled with an escape.
fn object_text(
    entries: Vec<(&'static str, Option<String>)>,
    extra: Vec<(String, String)>,
    repeat: Option<(usize, String)>,
    escape_key: Option<usize>,
    rot: usize,
) -> String {
    let mut out: Vec<String> = Vec::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        if let Some(v) = v {
            let key = if escape_key == Some(i) {
                format!("\\u00{:02x}{}", k.as_bytes()[0], &k[1..])
            } else {
                (*k).to_string()
            };
            out.push(format!("\"{key}\":{v}"));
        }
    }
    for (k, v) in extra {
        out.push(format!("\"{k}\":{v}"));
    }
    if !out.is_empty() {
        let n = out.len();
        out.rotate_left(rot % n);
    }
    if let Some((i, v)) = repeat
        && let Some((k, _)) = entries.get(i % entries.len().max(1))
    {
        out.push(format!("\"{k}\":{v}"));
    }
    format!("{{{}}}", out.join(","))
}

fn extra_entries() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                6 => Just("text".to_string()),
                6 => Just("content".to_string()),
                1 => Just("\\ud800".to_string()),
                1 => Just("\\u0041".to_string()),
            ],
            prop_oneof![8 => Just("\"some text\"".to_string()), 1 => junk()],
        ),
        0..3,
    )
}

/// A part: usually an object with a type and the fields a tool part needs, each possibly
/// missing, empty, mistyped or repeated; sometimes not an object at all.
fn part_text() -> impl Strategy<Value = String> {
    let type_text = prop_oneof![
        4 => Just(Some("\"tool_call\"".to_string())),
        4 => Just(Some("\"tool_result\"".to_string())),
        2 => Just(Some("\"text\"".to_string())),
        1 => Just(Some("\"tool\\u005fcall\"".to_string())),
        1 => Just(Some("\"tool_result \"".to_string())),
        1 => Just(None),
        1 => junk().prop_map(Some),
    ];
    let outcome_text = prop_oneof![
        6 => Just(Some("\"ok\"".to_string())),
        2 => Just(Some("null".to_string())),
        2 => Just(None),
        1 => junk().prop_map(Some),
    ];
    let object = (
        type_text,
        field_text("c1"),
        field_text("sh"),
        outcome_text,
        extra_entries(),
        prop::option::weighted(0.15, (any::<usize>(), junk())),
        prop::option::weighted(0.1, any::<usize>()),
        any::<usize>(),
    )
        .prop_map(|(t, call_id, name, outcome, extra, repeat, esc, rot)| {
            let entries = vec![
                ("type", t),
                ("call_id", call_id),
                ("name", name),
                ("outcome", outcome),
            ];
            object_text(entries, extra, repeat, esc.map(|e| e % 4), rot)
        });
    prop_oneof![
        12 => object,
        1 => Just("[\"tool_call\",\"c\",\"n\",null]".to_string()),
        1 => Just("[\"tool_result\",\"c\",\"ok\"]".to_string()),
        1 => junk(),
    ]
}

/// A message body as text: usually regular, with irregularities of every kind mixed in.
fn message_body_text() -> impl Strategy<Value = String> {
    let role = prop_oneof![
        24 => prop::sample::select(Role::ALL.to_vec()).prop_map(|r| Some(format!("\"{}\"", r.as_str()))),
        1 => Just(Some("\"us\\u0065r\"".to_string())),
        1 => Just(Some("\"robot\"".to_string())),
        1 => Just(Some("\"User\"".to_string())),
        1 => Just(None),
        1 => junk().prop_map(Some),
    ];
    let status = prop_oneof![
        2 => Just(None),
        2 => Just(Some("\"final\"".to_string())),
        1 => Just(Some("\"str\\u0065aming\"".to_string())),
        2 => junk().prop_map(Some),
    ];
    let parts = prop_oneof![
        1 => Just(None),
        8 => prop::collection::vec(part_text(), 0..5).prop_map(|p| Some(format!("[{}]", p.join(",")))),
        1 => junk().prop_map(Some),
    ];
    (
        field_text("m1"),
        role,
        status,
        parts,
        extra_entries(),
        prop::option::weighted(0.1, (any::<usize>(), junk())),
        prop::option::weighted(0.1, any::<usize>()),
        (any::<usize>(), any::<u64>()),
    )
        .prop_map(
            |(id, role, status, parts, extra, repeat, esc, (rot, seed))| {
                let entries = vec![
                    ("id", id),
                    ("role", role),
                    ("status", status),
                    ("parts", parts),
                ];
                let body = object_text(entries, extra, repeat, esc.map(|e| e % 4), rot);
                sprinkle_ws(&body, seed)
            },
        )
}

/// `parse_stored_envelope` of an export line with `body` against `from_envelope` of the append
/// envelope with the same body: both accept with the same kind and body text, or both refuse.
fn assert_agree(kind: &str, body: &str) -> Result<(), TestCaseError> {
    let append = format!("{{\"ts\":\"{TS}\",\"kind\":\"{kind}\",\"turn\":1,\"body\":{body}}}");
    let stored =
        format!("{{\"seq\":9,\"ts\":\"{TS}\",\"kind\":\"{kind}\",\"turn\":1,\"body\":{body}}}");
    match (
        parse_stored_envelope(&stored),
        Event::from_envelope(&append, NOW_MS),
    ) {
        (Ok((seq, s)), Ok(d)) => {
            prop_assert_eq!(seq, 9);
            prop_assert_eq!(s, d, "{}", body);
        }
        (Err(_), Err(_)) => {}
        (s, d) => {
            return Err(TestCaseError::fail(format!(
                "disagree on {body}\n stored: {s:?}\n append: {d:?}"
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn message_fast_path_agrees_with_the_dom_path(body in message_body_text()) {
        assert_agree("message", &body)?;
    }

    #[test]
    fn every_kind_agrees_with_from_envelope_on_odd_bodies(
        kind in prop::sample::select(vec![
            "message", "delta", "usage", "meta", "turn", "tool_run", "rewind", "compaction",
            "x-a", "x-", "bogus", "session",
        ]),
        entries in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "id", "role", "event", "reason", "call_id", "to_seq", "through_seq",
                    "summary_message_id", "message_id", "index", "type", "call_key", "model",
                    "input", "output", "cost", "final",
                ]),
                prop_oneof![
                    junk(),
                    Just("\"started\"".to_string()),
                    Just("\"text\"".to_string()),
                    Just("{\"total\":3}".to_string()),
                    Just("{\"amount\":1,\"currency\":\"EUR\"}".to_string()),
                    Just("4294967296".to_string()),
                ],
            ),
            0..8,
        ),
    ) {
        let entries: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let body = format!("{{{}}}", entries.join(","));
        if kind == "session" {
            // Appending it is refused; reading it back is not: only check it never panics.
            let _ = parse_stored_envelope(&format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{body}}}"
            ));
        } else {
            assert_agree(kind, &body)?;
        }
    }
}

#[test]
fn nesting_limit_is_the_same_as_on_append() {
    let mut saw = (false, false);
    for depth in 100..140 {
        let nest = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for (kind, body) in [
            (
                "message",
                format!("{{\"id\":\"m\",\"role\":\"user\",\"x\":{nest}}}"),
            ),
            ("meta", format!("{{\"x\":{nest}}}")),
            ("x-deep", format!("{{\"x\":{nest}}}")),
        ] {
            assert_agree(kind, &body).unwrap();
            let append = format!("{{\"kind\":\"{kind}\",\"body\":{body}}}");
            match Event::from_envelope(&append, NOW_MS) {
                Ok(_) => saw.0 = true,
                Err(_) => saw.1 = true,
            }
        }
    }
    assert_eq!(saw, (true, true), "the limit lies inside the range tried");
}

#[test]
fn lenient_skipping_does_not_leak_into_messages() {
    // Texts a skip-only parser accepts but the DOM refuses: each must be refused here too.
    for junk in [
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "1e400",
        "-1e400",
        &format!("1{}", "0".repeat(400)),
    ] {
        for body in [
            format!("{{\"id\":\"m\",\"role\":\"user\",\"content\":{junk}}}"),
            format!(
                "{{\"id\":\"m\",\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"text\":{junk}}}]}}"
            ),
            format!(
                "{{\"id\":\"m\",\"role\":\"user\",\"parts\":[{{\"type\":\"tool_call\",\"call_id\":\"c\",\"name\":\"n\",\"arguments\":{junk}}}]}}"
            ),
        ] {
            let line =
                format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}");
            assert_eq!(field_of(parse_stored_envelope(&line)), "body", "{line}");
            assert_agree("message", &body).unwrap();
        }
    }
    // A part given as an array is refused, though it lists a tool call's fields in order.
    let body = r#"{"id":"m","role":"assistant","parts":[["tool_call","c1","sh",null]]}"#;
    let line = format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}");
    assert_eq!(field_of(parse_stored_envelope(&line)), "body.parts[0]");
}

#[test]
fn repeated_body_keys_read_as_on_append_last_wins() {
    let body = r#"{"id":"a","role":"user","id":"b","parts":[{"type":"text","type":"tool_call","call_id":"c","name":"n"}]}"#;
    let line = format!("{{\"seq\":2,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}");
    let (_, e) = parse_stored_envelope(&line).unwrap();
    let Kind::Message(m) = &e.kind else {
        panic!("not a message: {e:?}")
    };
    assert_eq!(m.id, "b");
    assert_eq!(m.tool_calls, vec![("c".to_string(), "n".to_string())]);
    assert_agree("message", body).unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. The session event, and refusals of the envelope.

fn session_round_trip(info: SessionInfo, seq: u64) -> Result<(), TestCaseError> {
    let e = Event::session(info);
    let line = export_line(&e, seq);
    prop_assert_eq!(parse_stored_envelope(&line), Ok((seq, e)), "{}", line);
    Ok(())
}

#[test]
fn session_event_reads_back() {
    session_round_trip(
        SessionInfo {
            id: "0123456789abcdef0123456789abcdef".into(),
            created_at_ms: 1_790_000_000_123,
            fork_of: None,
        },
        1,
    )
    .unwrap();
    session_round_trip(
        SessionInfo {
            id: "child".into(),
            created_at_ms: -1,
            fork_of: Some(("parent \"p\"\n".into(), 42)),
        },
        1,
    )
    .unwrap();
    let line = r#"{"seq":1,"ts":"2026-01-02T03:04:05.678Z","kind":"session","body":{"id":"s","created_at":"2026-01-02T03:04:05.678Z","fork_of":{"session":"p","seq":3}}}"#;
    let (_, e) = parse_stored_envelope(line).unwrap();
    assert_eq!(
        e.kind,
        Kind::Session(SessionInfo {
            id: "s".into(),
            created_at_ms: 1_767_323_045_678,
            fork_of: Some(("p".into(), 3)),
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_session_event_reads_back(
        id in odd(),
        // Every instant jiff represents, as `format_ts` writes it.
        created_at_ms in -377_705_116_800_000i64..=253_402_207_200_999,
        fork_of in opt((any::<String>(), any::<u64>())),
        seq in 1u64..,
    ) {
        session_round_trip(SessionInfo { id, created_at_ms, fork_of }, seq)?;
    }
}

#[test]
fn refusals_name_the_field() {
    let body = r#"{"id":"m","role":"user"}"#;
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "envelope"),
        ("".into(), "envelope"),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}} x"),
            "envelope",
        ),
        // An array holding the fields in order is not an envelope.
        (format!("[1,\"{TS}\",\"message\",{body}]"), "envelope"),
        (
            format!("{{\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!("{{\"seq\":0,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!("{{\"seq\":-1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!("{{\"seq\":1.0,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!("{{\"seq\":\"1\",\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!("{{\"seq\":null,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!(
                "{{\"seq\":18446744073709551616,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"
            ),
            "seq",
        ),
        (
            format!("{{\"seq\":1,\"kind\":\"message\",\"body\":{body}}}"),
            "ts",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"yesterday\",\"kind\":\"message\",\"body\":{body}}}"),
            "ts",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"2026-01-02T03:04:05\",\"kind\":\"message\",\"body\":{body}}}"
            ),
            "ts",
        ),
        (
            format!("{{\"seq\":1,\"ts\":1767323045678,\"kind\":\"message\",\"body\":{body}}}"),
            "ts",
        ),
        (
            format!("{{\"seq\":1,\"ts\":null,\"kind\":\"message\",\"body\":{body}}}"),
            "ts",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"body\":{body}}}"),
            "kind",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":4,\"body\":{body}}}"),
            "kind",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"bogus\",\"body\":{body}}}"),
            "kind",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\"}}"),
            "body",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":[]}}"),
            "body",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":\"{{}}\"}}"),
            "body",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"turn\":-1,\"body\":{body}}}"
            ),
            "turn",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"turn\":{},\"body\":{body}}}",
                TURN_MAX + 1
            ),
            "turn",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"turn\":null,\"body\":{body}}}"
            ),
            "turn",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"turn\",\"body\":{{\"event\":\"started\"}}}}"
            ),
            "turn",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"extra\":1,\"body\":{body}}}"
            ),
            "extra",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body},\"s\\u0065q\":2}}"
            ),
            "seq",
        ),
        (
            format!("{{\"seq\":1,\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body}}}"),
            "seq",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{body},\"body\":{body}}}"
            ),
            "body",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{{\"role\":\"user\"}}}}"
            ),
            "body.id",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{{\"id\":\"m\",\"role\":\"robot\"}}}}"
            ),
            "body.role",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"message\",\"body\":{{\"id\":\"m\",\"role\":\"user\",\"parts\":[{{\"type\":\"tool_call\",\"call_id\":\"c\"}}]}}}}"
            ),
            "body.parts[0].name",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"created_at\":\"{TS}\"}}}}"
            ),
            "body.id",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"id\":\"\",\"created_at\":\"{TS}\"}}}}"
            ),
            "body.id",
        ),
        (
            format!("{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"id\":\"s\"}}}}"),
            "body.created_at",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"id\":\"s\",\"created_at\":\"then\"}}}}"
            ),
            "body.created_at",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"id\":\"s\",\"created_at\":\"{TS}\",\"fork_of\":[]}}}}"
            ),
            "body.fork_of",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"id\":\"s\",\"created_at\":\"{TS}\",\"fork_of\":{{\"seq\":1}}}}}}"
            ),
            "body.fork_of.session",
        ),
        (
            format!(
                "{{\"seq\":1,\"ts\":\"{TS}\",\"kind\":\"session\",\"body\":{{\"id\":\"s\",\"created_at\":\"{TS}\",\"fork_of\":{{\"session\":\"p\",\"seq\":-1}}}}}}"
            ),
            "body.fork_of.seq",
        ),
    ];
    for (line, field) in cases {
        match parse_stored_envelope(&line) {
            Ok(v) => panic!("{line} was accepted as {v:?}"),
            Err(err) => assert_eq!(err.field, field, "{line}: {err}"),
        }
    }
}

#[test]
fn written_envelopes_parse_with_whitespace_and_reordered_fields() {
    let line = format!(
        "\n {{ \"body\" : {{ \"id\" : \"m 1\" , \"role\":\"user\" }} ,\t\"kind\":\"message\", \"turn\" : 3, \"ts\":\"{TS}\" , \"seq\" : 12 }} \r\n"
    );
    let (seq, e) = parse_stored_envelope(&line).unwrap();
    assert_eq!(seq, 12);
    assert_eq!(e.turn, Some(3));
    assert_eq!(e.body, r#"{"id":"m 1","role":"user"}"#);
    assert_eq!(e.ts_ms, 1_767_323_045_678);
}

/// Found by the `append_input` fuzz target (on the append path, which this parser mirrors): an
/// envelope with an empty key was refused naming the field "", which says nothing.
#[test]
fn regression_an_empty_envelope_key_is_named() {
    let e = parse_stored_envelope(
        r#"{"seq":2,"ts":"2026-11-21T10:00:00.000Z","kind":"meta","":1,"body":{}}"#,
    )
    .unwrap_err();
    assert_eq!(e.field, "envelope");
    assert!(e.reason.contains("empty key"), "{e}");
}
