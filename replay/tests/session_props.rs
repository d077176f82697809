//! Property tests of the session fold against a naive reference model, and of the snapshot law:
//! a fold rebuilt from `retained()` equals the full fold, also after further events.
#![allow(
    clippy::unwrap_used,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use turnwal_journal::event::*;
use turnwal_replay::session::{MessageStatus, SessionFold, ToolCallState};

const IDS: &[&str] = &["m0", "m1", "m2", "m3"];
const CALLS: &[&str] = &["c0", "c1", "c2"];
const KEYS: &[&str] = &["k0", "k1", "k2"];
const MODELS: &[&str] = &["gpt", "claude"];
const CURRENCIES: &[&str] = &["USD", "EUR"];
const META_KEYS: &[&str] = &["a", "b", "c"];

/// What the generator chooses; `to_event` turns it into a typed event with a matching body.
#[derive(Debug, Clone)]
enum Op {
    Meta(Vec<(usize, Option<u8>)>),
    Turn(u64, usize),
    Message {
        id: usize,
        role: usize,
        calls: Vec<usize>,
        results: Vec<(usize, Option<bool>)>,
        text: u8,
    },
    Delta {
        id: usize,
        index: u32,
        part: usize,
        frag: u8,
        call: Option<usize>,
        name: bool,
    },
    Usage {
        key: usize,
        model: usize,
        input: u64,
        output: u64,
        cost: Option<(u8, usize)>,
    },
    ToolRun(usize, bool),
    /// `to_seq` as a fraction (in 1/8) of the seq the rewind lands on.
    Rewind(u8),
    Compaction(usize),
    Ext,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..IDS.len();
    let call = 0..CALLS.len();
    let delta = (
        id.clone(),
        0u32..3,
        0..DeltaPart::ALL.len(),
        0u8..4,
        prop::option::of(call.clone()),
        any::<bool>(),
    )
        .prop_map(|(id, index, part, frag, call, name)| Op::Delta {
            id,
            index,
            part,
            frag,
            call,
            name,
        })
        .boxed();
    prop_oneof![
        prop::collection::vec((0..META_KEYS.len(), prop::option::of(0u8..3)), 1..3)
            .prop_map(Op::Meta),
        (0u64..3, 0..TurnEvent::ALL.len()).prop_map(|(t, e)| Op::Turn(t, e)),
        (
            id.clone(),
            0..Role::ALL.len(),
            prop::collection::vec(call.clone(), 0..2),
            prop::collection::vec((call.clone(), prop::option::of(any::<bool>())), 0..2),
            any::<u8>()
        )
            .prop_map(|(id, role, calls, results, text)| Op::Message {
                id,
                role,
                calls,
                results,
                text
            }),
        // Listed twice: a streamed session is mostly deltas.
        delta.clone(),
        delta,
        (
            0..KEYS.len(),
            0..MODELS.len(),
            0u64..100,
            0u64..100,
            prop::option::of((0u8..8, 0..CURRENCIES.len()))
        )
            .prop_map(|(key, model, input, output, cost)| Op::Usage {
                key,
                model,
                input,
                output,
                cost
            }),
        (call, any::<bool>()).prop_map(|(c, s)| Op::ToolRun(c, s)),
        (0u8..=8).prop_map(Op::Rewind),
        id.prop_map(Op::Compaction),
        Just(Op::Ext),
    ]
}

fn to_event(op: &Op, seq: u64) -> Event {
    let (turn, kind, body) = match op {
        Op::Meta(pairs) => {
            let mut body = serde_json::Map::new();
            let mut changes = Vec::new();
            for (k, v) in pairs {
                let value = v.map_or(Value::Null, |v| json!({"v": v}));
                body.insert(META_KEYS[*k].into(), value.clone());
            }
            // The journal derives changes from the body object: one per distinct key.
            for (k, v) in &body {
                changes.push((k.clone(), (!v.is_null()).then(|| v.to_string())));
            }
            (None, Kind::Meta(changes), Value::Object(body))
        }
        Op::Turn(t, e) => {
            let event = TurnEvent::ALL[*e];
            let kind = Kind::Turn {
                event,
                reason: Some(format!("r{seq}")),
            };
            (
                Some(*t),
                kind,
                json!({"event": event.as_str(), "reason": format!("r{seq}")}),
            )
        }
        Op::Message {
            id,
            role,
            calls,
            results,
            text,
        } => {
            let mut parts = vec![json!({"type": "text", "text": format!("t{text}")})];
            let mut info = MessageInfo {
                id: IDS[*id].into(),
                role: Role::ALL[*role],
                status: None,
                tool_calls: Vec::new(),
                tool_results: Vec::new(),
            };
            for c in calls {
                let name = format!("tool{c}");
                parts.push(json!({"type": "tool_call", "call_id": CALLS[*c], "name": name, "arguments": "{}"}));
                info.tool_calls.push((CALLS[*c].into(), name));
            }
            for (c, outcome) in results {
                let outcome = outcome.map(|o| if o { "ok" } else { "aborted" }.to_string());
                parts.push(json!({"type": "tool_result", "call_id": CALLS[*c], "content": "", "outcome": outcome}));
                info.tool_results.push((CALLS[*c].into(), outcome));
            }
            let body = json!({"id": IDS[*id], "role": info.role.as_str(), "parts": parts});
            (Some(seq % 3), Kind::Message(info), body)
        }
        Op::Delta {
            id,
            index,
            part,
            frag,
            call,
            name,
        } => {
            let part = DeltaPart::ALL[*part];
            let frag = format!("<{frag}>");
            let is_call = part == DeltaPart::ToolCall;
            let info = DeltaInfo {
                message_id: IDS[*id].into(),
                index: *index,
                part,
                text: (!is_call).then(|| frag.clone()),
                arguments: is_call.then(|| frag.clone()),
                call_id: call.filter(|_| is_call).map(|c| CALLS[c].to_string()),
                name: (is_call && *name).then(|| format!("n{seq}")),
            };
            let mut body =
                json!({"message_id": info.message_id, "index": index, "type": part.as_str()});
            for (k, v) in [
                ("text", &info.text),
                ("arguments", &info.arguments),
                ("call_id", &info.call_id),
                ("name", &info.name),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            (Some(seq % 3), Kind::Delta(info), body)
        }
        Op::Usage {
            key,
            model,
            input,
            output,
            cost,
        } => {
            // Amounts in quarters: sums are exact whatever the order.
            let cost = cost.map(|(q, c)| (f64::from(q) / 4.0, CURRENCIES[c].to_string()));
            let info = UsageInfo {
                call_key: KEYS[*key].into(),
                model: MODELS[*model].into(),
                input_total: *input,
                cache_read: None,
                cache_write: None,
                output_total: *output,
                reasoning: None,
                cost: cost.clone(),
                is_final: false,
            };
            let mut body = json!({"call_key": info.call_key, "model": info.model,
                "input": {"total": input}, "output": {"total": output}});
            if let Some((amount, currency)) = cost {
                body["cost"] = json!({"amount": amount, "currency": currency});
            }
            (None, Kind::Usage(info), body)
        }
        Op::ToolRun(c, started) => {
            let event = if *started {
                ToolRunEvent::Started
            } else {
                ToolRunEvent::Finished
            };
            let body = json!({"call_id": CALLS[*c], "event": event.as_str()});
            (
                None,
                Kind::ToolRun {
                    call_id: CALLS[*c].into(),
                    event,
                },
                body,
            )
        }
        Op::Rewind(eighths) => {
            let to_seq = seq * u64::from(*eighths) / 8;
            (
                None,
                Kind::Rewind {
                    to_seq,
                    reason: None,
                },
                json!({"to_seq": to_seq}),
            )
        }
        Op::Compaction(id) => {
            let kind = Kind::Compaction {
                summary_message_id: IDS[*id].into(),
                through_seq: seq,
                reason: None,
            };
            (
                None,
                kind,
                json!({"summary_message_id": IDS[*id], "through_seq": seq}),
            )
        }
        Op::Ext => (
            None,
            Kind::Extension {
                name: "note".into(),
            },
            json!({"seq": seq}),
        ),
    };
    Event {
        ts_ms: 1_000 * seq as i64,
        turn,
        kind,
        body: body.to_string().into(),
    }
}

fn events(ops: &[Op], with_session: bool) -> Vec<(u64, Event)> {
    let mut out = Vec::new();
    if with_session {
        let info = SessionInfo {
            id: "s".into(),
            created_at_ms: 7,
            fork_of: Some(("p".into(), 3)),
        };
        out.push((1, Event::session(info)));
    }
    for op in ops {
        let seq = out.len() as u64 + 1;
        out.push((seq, to_event(op, seq)));
    }
    out
}

fn fold(evs: &[(u64, Event)]) -> SessionFold {
    let mut f = SessionFold::new();
    for (seq, e) in evs {
        f.apply(*seq, e).unwrap();
    }
    f
}

/// The reference model: every quantity recomputed from the whole event list, naively.
fn check_against_reference(evs: &[(u64, Event)], f: &SessionFold) {
    let s = f.session();
    assert_eq!(s.last_seq, evs.last().map_or(0, |(q, _)| *q));

    // Meta: the last event that mentions a key decides it.
    let mut meta = BTreeMap::new();
    for (_, e) in evs {
        if let Kind::Meta(ch) = &e.kind {
            for (k, v) in ch {
                meta.insert(k.clone(), v.clone());
            }
        }
    }
    let meta: BTreeMap<String, String> = meta
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    assert_eq!(s.meta, meta);

    // Messages, one id at a time.
    let mut order: Vec<(u64, &str)> = Vec::new();
    for id in IDS {
        let refs: Vec<&(u64, Event)> = evs
            .iter()
            .filter(|(_, e)| match &e.kind {
                Kind::Message(m) => m.id == *id,
                Kind::Delta(d) => d.message_id == *id,
                _ => false,
            })
            .collect();
        let Some(first) = refs.first().map(|(q, _)| *q) else {
            assert!(s.messages.iter().all(|m| m.id != *id));
            continue;
        };
        order.push((first, id));
        let v = s.messages.iter().find(|m| m.id == *id).unwrap();
        assert_eq!(v.first_seq, first);
        let finals: Vec<&(u64, Event)> = refs
            .iter()
            .copied()
            .filter(|(_, e)| matches!(e.kind, Kind::Message(_)))
            .collect();
        let first_final = finals.first().map_or(u64::MAX, |(q, _)| *q);
        let applied: Vec<&(u64, Event)> = refs
            .iter()
            .copied()
            .filter(|(q, _)| *q <= first_final)
            .collect();
        assert_eq!(v.last_seq, finals.last().or(applied.last()).unwrap().0);
        assert_eq!(f.has_final_message(id), !finals.is_empty());
        if let Some((_, last)) = finals.last() {
            assert_eq!(v.status, MessageStatus::Complete);
            assert_eq!(v.body, last.body);
        } else {
            assert_eq!(v.status, MessageStatus::Partial);
            let mut parts: BTreeMap<u32, Value> = BTreeMap::new();
            for (_, e) in &applied {
                let Kind::Delta(d) = &e.kind else {
                    unreachable!()
                };
                let p = parts
                    .entry(d.index)
                    .or_insert_with(|| json!({"type": d.part.as_str()}));
                let field = if p["type"] == "tool_call" {
                    "arguments"
                } else {
                    "text"
                };
                let frag = if field == "text" {
                    &d.text
                } else {
                    &d.arguments
                };
                let old = p[field].as_str().unwrap_or("").to_string();
                p[field] = json!(old + frag.as_deref().unwrap_or(""));
                for (k, val) in [("call_id", &d.call_id), ("name", &d.name)] {
                    if p["type"] == "tool_call" && p.get(k).is_none() && val.is_some() {
                        p[k] = json!(val);
                    }
                }
            }
            let want = json!({"id": id, "role": "assistant", "status": "partial",
                "parts": parts.into_values().collect::<Vec<_>>()});
            assert_eq!(serde_json::from_str::<Value>(&v.body).unwrap(), want);
        }
        // Active unless a rewind after its first appearance cut it and no final form came since.
        let cut = evs
            .iter()
            .filter(|(q, e)| {
                *q > first && matches!(e.kind, Kind::Rewind { to_seq, .. } if to_seq < first)
            })
            .map(|(q, _)| *q)
            .max();
        let active = cut.is_none_or(|c| finals.iter().any(|(q, _)| *q > c));
        assert_eq!(v.active, active, "message {id}");
    }
    order.sort();
    let ids: Vec<&str> = s.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, order.into_iter().map(|(_, id)| id).collect::<Vec<_>>());

    // Usage: the latest record per call_key, summed.
    let mut latest = BTreeMap::new();
    for (q, e) in evs {
        if let Kind::Usage(u) = &e.kind {
            latest.insert(u.call_key.clone(), (*q, u.clone()));
        }
    }
    let mut by_seq: Vec<_> = latest.values().cloned().collect();
    by_seq.sort_by_key(|(q, _)| *q);
    assert_eq!(
        s.usage
            .iter()
            .map(|u| (u.seq, u.info.clone()))
            .collect::<Vec<_>>(),
        by_seq
    );
    assert_eq!(s.usage_total.calls, latest.len() as u64);
    assert_eq!(
        s.usage_total.input,
        latest.values().map(|(_, u)| u.input_total).sum::<u64>()
    );
    for model in MODELS {
        let mine: Vec<_> = latest.values().filter(|(_, u)| u.model == *model).collect();
        let t = s.usage_by_model.get(*model);
        assert_eq!(t.map_or(0, |t| t.calls), mine.len() as u64);
        assert_eq!(
            t.map_or(0, |t| t.output),
            mine.iter().map(|(_, u)| u.output_total).sum::<u64>()
        );
        for cur in CURRENCIES {
            let want: f64 = mine
                .iter()
                .filter_map(|(_, u)| u.cost.as_ref().filter(|c| c.1 == *cur).map(|c| c.0))
                .sum();
            let has = mine
                .iter()
                .any(|(_, u)| u.cost.as_ref().is_some_and(|c| c.1 == *cur));
            assert_eq!(
                t.and_then(|t| t.cost.get(*cur)).copied(),
                has.then_some(want)
            );
        }
    }

    // Turns: the last event of each turn decides; the open turn is the highest open one.
    let mut last_turn_event = BTreeMap::new();
    for (_, e) in evs {
        if let Kind::Turn { event, .. } = e.kind {
            last_turn_event.insert(e.turn.unwrap(), event);
        }
    }
    assert_eq!(
        s.turns.iter().map(|t| t.turn).collect::<Vec<_>>(),
        last_turn_event.keys().copied().collect::<Vec<_>>()
    );
    let open = last_turn_event
        .iter()
        .filter(|(_, e)| **e == TurnEvent::Started)
        .map(|(t, _)| *t)
        .max();
    assert_eq!(s.open_turn, open);

    // Tool calls: answered by any result (the last outcome), else unknown if a run started.
    let mut known = BTreeSet::new();
    for (q, e) in evs {
        match &e.kind {
            Kind::Message(m) => {
                known.extend(m.tool_calls.iter().map(|c| c.0.clone()));
                known.extend(m.tool_results.iter().map(|c| c.0.clone()));
            }
            Kind::ToolRun {
                call_id,
                event: ToolRunEvent::Started,
            } => {
                known.insert(call_id.clone());
            }
            Kind::Delta(d) if d.call_id.is_some() && d.name.is_some() => {
                let final_before = evs.iter().any(|(p, e)| {
                    p < q && matches!(&e.kind, Kind::Message(m) if m.id == d.message_id)
                });
                if !final_before {
                    known.insert(d.call_id.clone().unwrap());
                }
            }
            _ => {}
        }
    }
    let got: BTreeSet<String> = s.tool_calls.iter().map(|c| c.call_id.clone()).collect();
    assert_eq!(got, known);
    for c in &s.tool_calls {
        let results: Vec<&Option<String>> = evs
            .iter()
            .filter_map(|(_, e)| match &e.kind {
                Kind::Message(m) => Some(
                    m.tool_results
                        .iter()
                        .filter(|r| r.0 == c.call_id)
                        .map(|r| &r.1),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        let started = evs.iter().any(|(_, e)| matches!(&e.kind, Kind::ToolRun { call_id, event: ToolRunEvent::Started } if *call_id == c.call_id));
        let want = match results.last() {
            Some(o) => ToolCallState::Answered {
                outcome: (*o).clone(),
            },
            None if started => ToolCallState::Unknown,
            None => ToolCallState::NotStarted,
        };
        assert_eq!(c.state, want, "call {}", c.call_id);
    }

    // Context: active messages from the last compaction's summary on.
    let start = evs.iter().rev().find_map(|(_, e)| match &e.kind {
        Kind::Compaction {
            summary_message_id, ..
        } => Some(summary_message_id.clone()),
        _ => None,
    });
    assert_eq!(s.context_start, start);
    let ctx: Vec<&str> = s.context().iter().map(|m| m.id.as_str()).collect();
    let active: Vec<&str> = s
        .messages
        .iter()
        .filter(|m| m.active)
        .map(|m| m.id.as_str())
        .collect();
    let want = match &start {
        Some(id) => active
            .iter()
            .position(|a| a == id)
            .map_or(vec![], |p| active[p..].to_vec()),
        None => active,
    };
    assert_eq!(ctx, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fold_matches_reference(ops in prop::collection::vec(op(), 0..40), with_session in any::<bool>()) {
        let evs = events(&ops, with_session);
        check_against_reference(&evs, &fold(&evs));
    }

    #[test]
    fn snapshot_plus_tail_equals_full_fold(ops in prop::collection::vec(op(), 0..40), with_session in any::<bool>()) {
        let evs = events(&ops, with_session);
        let full = fold(&evs);
        for cut in 0..=evs.len() {
            let prefix = fold(&evs[..cut]);
            let retained = prefix.retained();
            prop_assert!(retained.windows(2).all(|w| w[0].0 < w[1].0));
            let mut g = SessionFold::from_retained(retained.clone(), prefix.last_seq()).unwrap();
            prop_assert_eq!(g.session(), prefix.session());
            prop_assert_eq!(g.retained(), retained, "snapshots are idempotent");
            for (seq, e) in &evs[cut..] {
                g.apply(*seq, e).unwrap();
            }
            prop_assert_eq!(g.session(), full.session());
            prop_assert_eq!(g.retained(), full.retained());
        }
    }

    /// The writer prunes its fold after each compaction: pruning at any point (and again
    /// later) changes neither the session nor what the next snapshot keeps.
    #[test]
    fn pruning_changes_nothing_visible(ops in prop::collection::vec(op(), 0..40), cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..4)) {
        let evs = events(&ops, true);
        let full = fold(&evs);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(evs.len() + 1)).collect();
        at.sort_unstable();
        let mut g = SessionFold::new();
        for (i, (seq, e)) in evs.iter().enumerate() {
            if at.contains(&i) {
                let before = (g.session(), g.retained());
                prop_assert_eq!(&g.prune(), &before.1, "prune returns what it keeps");
                prop_assert_eq!(g.session(), before.0);
                prop_assert_eq!(g.retained(), before.1);
            }
            g.apply(*seq, e).unwrap();
        }
        prop_assert_eq!(g.session(), full.session());
        prop_assert_eq!(g.retained(), full.retained());
    }
}
