//! The session fold: a pure function from events (in seq order) to the materialised session.
//! Uses only the typed fields of each event; never parses a body.
//!
//! Invariants: `apply` takes seqs strictly in order (`last_seq + 1`); derived values (usage
//! totals, partial-message bodies) are computed in [`SessionFold::session`], never kept as
//! running counters that could double count.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;
use turnwal_journal::event::{
    DeltaPart, Event, Kind, Role, ToolRunEvent, TurnEvent, UsageInfo, format_ts,
};

/// The fold refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FoldError {
    /// Seqs must arrive as `last_seq + 1`.
    OutOfOrder {
        /// The seq that should have come.
        expected: u64,
        /// The seq that came.
        got: u64,
    },
}

impl fmt::Display for FoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FoldError::OutOfOrder { expected, got } => {
                write!(f, "event seq {got} out of order (expected {expected})")
            }
        }
    }
}

impl std::error::Error for FoldError {}

/// Status of a message in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// Has its final `message` form.
    Complete,
    /// Only deltas so far.
    Partial,
    /// Only deltas, and the writer crashed.
    Interrupted,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    /// Message id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Seq of its first appearance (delta or message).
    pub first_seq: u64,
    /// Seq of its latest event.
    pub last_seq: u64,
    /// Turn of its latest event.
    pub turn: Option<u64>,
    /// Complete, partial or interrupted.
    pub status: MessageStatus,
    /// False once rewound past.
    pub active: bool,
    /// JSON text of its body (final form, or generated from deltas).
    pub body: String,
}

/// State of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnState {
    /// Started, not ended.
    Open,
    /// Ended normally.
    Completed,
    /// Ended as interrupted.
    Interrupted,
    /// Ended as aborted.
    Aborted,
    /// Ended as failed.
    Failed,
}

/// One turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnView {
    /// Turn number.
    pub turn: u64,
    /// Its state.
    pub state: TurnState,
    /// Seq of `started`.
    pub started_seq: Option<u64>,
    /// Seq of the end event.
    pub ended_seq: Option<u64>,
    /// Reason of the last event that gave one.
    pub reason: Option<String>,
}

/// Whether a tool call has its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCallState {
    /// A `tool_result` answered it.
    Answered {
        /// The result's `outcome`, if any.
        outcome: Option<String>,
    },
    /// No result and no `tool_run started`: the tool never ran.
    NotStarted,
    /// `tool_run started` but no result: it may or may not have had its effect.
    Unknown,
}

/// One tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallView {
    /// Call id.
    pub call_id: String,
    /// Tool name ("" if only a result was seen).
    pub name: String,
    /// The message that issued it ("" if unknown).
    pub message_id: String,
    /// Answered, not started or unknown.
    pub state: ToolCallState,
}

/// The latest usage record of one call_key.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageView {
    /// Seq of the record.
    pub seq: u64,
    /// Its fields.
    pub info: UsageInfo,
}

/// Usage summed over calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTotals {
    /// Model calls.
    pub calls: u64,
    /// Input tokens.
    pub input: u64,
    /// Cache-read input tokens.
    pub cache_read: u64,
    /// Cache-write input tokens.
    pub cache_write: u64,
    /// Output tokens.
    pub output: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
    /// Cost per currency.
    pub cost: BTreeMap<String, f64>,
}

impl UsageTotals {
    fn add(&mut self, u: &UsageInfo) {
        self.calls += 1;
        self.input += u.input_total;
        self.cache_read += u.cache_read.unwrap_or(0);
        self.cache_write += u.cache_write.unwrap_or(0);
        self.output += u.output_total;
        self.reasoning += u.reasoning.unwrap_or(0);
        if let Some((amount, currency)) = &u.cost {
            *self.cost.entry(currency.clone()).or_insert(0.0) += amount;
        }
    }
}

/// The materialised session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    /// Session id.
    pub id: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Parent session and seq, for forks.
    pub fork_of: Option<(String, u64)>,
    /// Merged metadata: key → JSON text of the value.
    pub meta: BTreeMap<String, String>,
    /// Messages in order of first appearance.
    pub messages: Vec<MessageView>,
    /// Turns, ascending.
    pub turns: Vec<TurnView>,
    /// The turn still open, if any.
    pub open_turn: Option<u64>,
    /// Tool calls in order of appearance.
    pub tool_calls: Vec<ToolCallView>,
    /// Latest usage per call_key, in order of first appearance.
    pub usage: Vec<UsageView>,
    /// Totals per model.
    pub usage_by_model: BTreeMap<String, UsageTotals>,
    /// Totals over the session.
    pub usage_total: UsageTotals,
    /// Summary message id of the last compaction boundary.
    pub context_start: Option<String>,
    /// Last seq folded.
    pub last_seq: u64,
}

impl Session {
    /// The model context: active messages from the last compaction's summary on.
    pub fn context(&self) -> Vec<&MessageView> {
        let active = self.messages.iter().filter(|m| m.active);
        match &self.context_start {
            Some(id) => active.skip_while(|m| &m.id != id).collect(),
            None => active.collect(),
        }
    }

    /// The session as read after a crash: partial messages are interrupted.
    pub fn after_crash(mut self) -> Session {
        for m in &mut self.messages {
            if m.status == MessageStatus::Partial {
                m.status = MessageStatus::Interrupted;
            }
        }
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct DeltaPartAcc {
    part: Option<DeltaPart>,
    text: String,
    call_id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct MessageState {
    view: MessageView,
    final_seq: Option<u64>,
    deltas: BTreeMap<u32, DeltaPartAcc>,
    delta_seqs: Vec<u64>,
}

/// Folds events into a [`Session`], keeping what a snapshot needs.
#[derive(Debug, Clone, Default)]
pub struct SessionFold {
    session: Session,
    messages: Vec<MessageState>,
    by_id: HashMap<String, usize>,
    calls: HashMap<String, usize>,
    usage_keys: HashMap<String, usize>,
    last_meta_seq: Option<u64>,
    events: Vec<(u64, Event)>,
}

impl SessionFold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Last seq applied.
    pub fn last_seq(&self) -> u64 {
        self.session.last_seq
    }

    /// Whether message `id` has its final form.
    pub fn has_final_message(&self, id: &str) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|&i| self.messages[i].final_seq.is_some())
    }

    fn call(&mut self, call_id: &str, name: &str, message_id: &str) -> &mut ToolCallView {
        let i = *self.calls.entry(call_id.to_string()).or_insert_with(|| {
            self.session.tool_calls.push(ToolCallView {
                call_id: call_id.to_string(),
                name: String::new(),
                message_id: String::new(),
                state: ToolCallState::NotStarted,
            });
            self.session.tool_calls.len() - 1
        });
        let c = &mut self.session.tool_calls[i];
        if c.name.is_empty() {
            c.name = name.to_string();
        }
        if c.message_id.is_empty() {
            c.message_id = message_id.to_string();
        }
        c
    }

    fn message(&mut self, id: &str, role: Role, seq: u64) -> usize {
        if let Some(&i) = self.by_id.get(id) {
            return i;
        }
        self.messages.push(MessageState {
            view: MessageView {
                id: id.to_string(),
                role,
                first_seq: seq,
                last_seq: seq,
                turn: None,
                status: MessageStatus::Partial,
                active: true,
                body: String::new(),
            },
            final_seq: None,
            deltas: BTreeMap::new(),
            delta_seqs: Vec::new(),
        });
        self.by_id.insert(id.to_string(), self.messages.len() - 1);
        self.messages.len() - 1
    }

    /// Applies event `seq`; it must be `last_seq() + 1`.
    pub fn apply(&mut self, seq: u64, event: &Event) -> Result<(), FoldError> {
        let expected = self.session.last_seq + 1;
        if seq != expected {
            return Err(FoldError::OutOfOrder { expected, got: seq });
        }
        self.session.last_seq = seq;
        self.events.push((seq, event.clone()));
        match &event.kind {
            Kind::Session(info) => {
                self.session.id.clone_from(&info.id);
                self.session.created_at_ms = info.created_at_ms;
                self.session.fork_of.clone_from(&info.fork_of);
            }
            Kind::Meta(changes) => {
                self.last_meta_seq = Some(seq);
                for (k, v) in changes {
                    match v {
                        Some(v) => self.session.meta.insert(k.clone(), v.clone()),
                        None => self.session.meta.remove(k),
                    };
                }
            }
            Kind::Turn { event: te, reason } => {
                let turn = event.turn.unwrap_or(0);
                let pos = match self.session.turns.binary_search_by_key(&turn, |t| t.turn) {
                    Ok(p) => p,
                    Err(p) => {
                        let view = TurnView {
                            turn,
                            state: TurnState::Open,
                            started_seq: None,
                            ended_seq: None,
                            reason: None,
                        };
                        self.session.turns.insert(p, view);
                        p
                    }
                };
                let t = &mut self.session.turns[pos];
                if reason.is_some() {
                    t.reason.clone_from(reason);
                }
                match te {
                    TurnEvent::Started => {
                        t.state = TurnState::Open;
                        t.started_seq = Some(seq);
                        t.ended_seq = None;
                    }
                    end => {
                        t.state = match end {
                            TurnEvent::Completed => TurnState::Completed,
                            TurnEvent::Interrupted => TurnState::Interrupted,
                            TurnEvent::Aborted => TurnState::Aborted,
                            _ => TurnState::Failed,
                        };
                        t.ended_seq = Some(seq);
                    }
                }
                self.session.open_turn = self
                    .session
                    .turns
                    .iter()
                    .rev()
                    .find(|t| t.state == TurnState::Open)
                    .map(|t| t.turn);
            }
            Kind::Message(info) => {
                let i = self.message(&info.id, info.role, seq);
                let m = &mut self.messages[i];
                m.final_seq = Some(seq);
                m.view.role = info.role;
                m.view.last_seq = seq;
                m.view.turn = event.turn;
                m.view.status = MessageStatus::Complete;
                m.view.active = true;
                m.view.body.clone_from(&event.body);
                for (call_id, name) in &info.tool_calls {
                    self.call(call_id, name, &info.id);
                }
                for (call_id, outcome) in &info.tool_results {
                    self.call(call_id, "", "").state = ToolCallState::Answered {
                        outcome: outcome.clone(),
                    };
                }
            }
            Kind::Delta(d) => {
                let i = self.message(&d.message_id, Role::Assistant, seq);
                let m = &mut self.messages[i];
                if m.final_seq.is_some() {
                    return Ok(()); // superseded already; the journal refuses these at append
                }
                m.view.last_seq = seq;
                m.view.turn = event.turn;
                m.delta_seqs.push(seq);
                let acc = m.deltas.entry(d.index).or_default();
                acc.part.get_or_insert(d.part);
                if let Some(t) = d.text.as_ref().or(d.arguments.as_ref()) {
                    acc.text.push_str(t);
                }
                if acc.call_id.is_none() {
                    acc.call_id.clone_from(&d.call_id);
                }
                if acc.name.is_none() {
                    acc.name.clone_from(&d.name);
                }
                if let (Some(c), Some(n)) = (&d.call_id, &d.name) {
                    let id = d.message_id.clone();
                    self.call(c, n, &id);
                }
            }
            Kind::Usage(u) => match self.usage_keys.get(&u.call_key) {
                Some(&i) => {
                    self.session.usage[i] = UsageView {
                        seq,
                        info: u.clone(),
                    }
                }
                None => {
                    self.usage_keys
                        .insert(u.call_key.clone(), self.session.usage.len());
                    self.session.usage.push(UsageView {
                        seq,
                        info: u.clone(),
                    });
                }
            },
            Kind::ToolRun {
                call_id,
                event: ToolRunEvent::Started,
            } => {
                let c = self.call(call_id, "", "");
                if c.state == ToolCallState::NotStarted {
                    c.state = ToolCallState::Unknown;
                }
            }
            Kind::ToolRun {
                event: ToolRunEvent::Finished,
                ..
            }
            | Kind::Extension { .. } => {}
            Kind::Rewind { to_seq, .. } => {
                for m in &mut self.messages {
                    if m.view.first_seq > *to_seq {
                        m.view.active = false;
                    }
                }
            }
            Kind::Compaction {
                summary_message_id, ..
            } => {
                self.session.context_start = Some(summary_message_id.clone());
            }
        }
        Ok(())
    }

    /// The materialised session.
    pub fn session(&self) -> Session {
        let mut s = self.session.clone();
        s.messages = self
            .messages
            .iter()
            .map(|m| {
                let mut v = m.view.clone();
                if m.final_seq.is_none() {
                    v.body = partial_body(&v.id, &m.deltas);
                }
                v
            })
            .collect();
        for u in &s.usage {
            s.usage_total.add(&u.info);
            s.usage_by_model
                .entry(u.info.model.clone())
                .or_default()
                .add(&u.info);
        }
        s
    }

    /// The events a snapshot keeps, in seq order: all but superseded deltas and usage records;
    /// every `meta` event is replaced by one merged `meta` event at the last meta seq.
    pub fn retained(&self) -> Vec<(u64, Event)> {
        let mut out = Vec::with_capacity(self.events.len());
        for (seq, e) in &self.events {
            let keep = match &e.kind {
                Kind::Delta(d) => self
                    .by_id
                    .get(&d.message_id)
                    .is_some_and(|&i| self.messages[i].final_seq.is_none()),
                Kind::Usage(u) => self
                    .usage_keys
                    .get(&u.call_key)
                    .is_some_and(|&i| self.session.usage[i].seq == *seq),
                Kind::Meta(_) => {
                    if self.last_meta_seq == Some(*seq) {
                        out.push((*seq, self.merged_meta(e)));
                    }
                    false
                }
                _ => true,
            };
            if keep {
                out.push((*seq, e.clone()));
            }
        }
        out
    }

    fn merged_meta(&self, last: &Event) -> Event {
        let mut body = String::from("{");
        for (i, (k, v)) in self.session.meta.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&Value::String(k.clone()).to_string());
            body.push(':');
            body.push_str(v);
        }
        body.push('}');
        let changes = self
            .session
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        Event {
            ts_ms: last.ts_ms,
            turn: last.turn,
            kind: Kind::Meta(changes),
            body,
        }
    }

    /// Creation time of the session, RFC 3339.
    pub fn created_at(&self) -> String {
        format_ts(self.session.created_at_ms)
    }
}

fn partial_body(id: &str, deltas: &BTreeMap<u32, DeltaPartAcc>) -> String {
    let parts: Vec<Value> = deltas
        .values()
        .map(|d| {
            let mut p = serde_json::Map::new();
            let kind = d.part.unwrap_or(DeltaPart::Text);
            p.insert("type".into(), Value::String(kind.as_str().into()));
            match kind {
                DeltaPart::ToolCall => {
                    p.insert(
                        "call_id".into(),
                        d.call_id.clone().map_or(Value::Null, Value::String),
                    );
                    p.insert(
                        "name".into(),
                        d.name.clone().map_or(Value::Null, Value::String),
                    );
                    p.insert("arguments".into(), Value::String(d.text.clone()));
                }
                DeltaPart::Text | DeltaPart::Thinking => {
                    p.insert("text".into(), Value::String(d.text.clone()));
                }
            }
            Value::Object(p)
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("id".into(), Value::String(id.into()));
    body.insert("role".into(), Value::String("assistant".into()));
    body.insert("parts".into(), Value::Array(parts));
    body.insert("status".into(), Value::String("partial".into()));
    Value::Object(body).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(lines: &[&str]) -> SessionFold {
        let mut f = SessionFold::new();
        for (i, l) in lines.iter().enumerate() {
            let e = Event::from_envelope(l, 0).unwrap();
            f.apply(i as u64 + 1, &e).unwrap();
        }
        f
    }

    #[test]
    fn deltas_build_a_partial_message_that_the_final_form_supersedes() {
        let mut f = fold(&[
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"Hel"}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"lo"}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":1,"type":"tool_call","call_id":"c1","name":"sh","arguments":"{\"a\""}}"#,
        ]);
        let s = f.session();
        assert_eq!(s.messages.len(), 1);
        assert_eq!(s.messages[0].status, MessageStatus::Partial);
        let body: Value = serde_json::from_str(&s.messages[0].body).unwrap();
        assert_eq!(body["parts"][0]["text"], "Hello");
        assert_eq!(body["parts"][1]["arguments"], "{\"a\"");
        assert_eq!(s.tool_calls[0].state, ToolCallState::NotStarted);
        assert_eq!(
            s.clone().after_crash().messages[0].status,
            MessageStatus::Interrupted
        );
        let e = Event::from_envelope(
            r#"{"kind":"message","body":{"id":"a","role":"assistant","parts":[]}}"#,
            0,
        )
        .unwrap();
        f.apply(4, &e).unwrap();
        assert!(f.has_final_message("a"));
        let s = f.session();
        assert_eq!(s.messages[0].status, MessageStatus::Complete);
        assert_eq!(s.messages[0].first_seq, 1);
        assert_eq!(f.retained().len(), 1, "superseded deltas are dropped");
    }

    #[test]
    fn tool_calls_are_answered_not_started_or_unknown() {
        let s = fold(&[
            r#"{"kind":"message","body":{"id":"a","role":"assistant","parts":[{"type":"tool_call","call_id":"c1","name":"x"},{"type":"tool_call","call_id":"c2","name":"y"},{"type":"tool_call","call_id":"c3","name":"z"}]}}"#,
            r#"{"kind":"tool_run","body":{"call_id":"c2","event":"started"}}"#,
            r#"{"kind":"tool_run","body":{"call_id":"c3","event":"started"}}"#,
            r#"{"kind":"message","body":{"id":"r","role":"tool","parts":[{"type":"tool_result","call_id":"c3","content":"ok","outcome":"done"}]}}"#,
        ])
        .session();
        let states: Vec<_> = s.tool_calls.iter().map(|c| c.state.clone()).collect();
        assert_eq!(
            states,
            vec![
                ToolCallState::NotStarted,
                ToolCallState::Unknown,
                ToolCallState::Answered {
                    outcome: Some("done".into())
                }
            ]
        );
    }

    #[test]
    fn usage_is_idempotent_per_call_key_and_totals_are_derived() {
        let f = fold(&[
            r#"{"kind":"usage","body":{"call_key":"k","model":"m1","input":{"total":10},"output":{"total":1}}}"#,
            r#"{"kind":"usage","body":{"call_key":"k","model":"m1","input":{"total":30},"output":{"total":3},"cost":{"amount":0.5,"currency":"USD"}}}"#,
            r#"{"kind":"usage","body":{"call_key":"j","model":"m2","input":{"total":5},"output":{"total":2}}}"#,
        ]);
        let s = f.session();
        assert_eq!(s.usage_total.input, 35);
        assert_eq!(s.usage_total.calls, 2);
        assert_eq!(s.usage_by_model["m1"].output, 3);
        assert_eq!(s.usage_by_model["m1"].cost["USD"], 0.5);
        assert_eq!(
            f.retained().iter().map(|(q, _)| *q).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn meta_merges_deletes_and_retains_one_event() {
        let f = fold(&[
            r#"{"kind":"meta","body":{"a":1,"b":"x"}}"#,
            r#"{"kind":"x-n","body":{}}"#,
            r#"{"kind":"meta","body":{"a":null,"c":[1]}}"#,
        ]);
        let s = f.session();
        assert_eq!(s.meta.len(), 2);
        assert_eq!(s.meta["c"], "[1]");
        let r = f.retained();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0, 3);
        assert_eq!(r[1].1.body, r#"{"b":"x","c":[1]}"#);
    }

    #[test]
    fn turns_rewind_and_compaction() {
        let s = fold(&[
            r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
            r#"{"kind":"message","body":{"id":"m1","role":"user"}}"#,
            r#"{"kind":"message","body":{"id":"m2","role":"assistant"}}"#,
            r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#,
            r#"{"kind":"rewind","body":{"to_seq":2}}"#,
            r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
            r#"{"kind":"message","body":{"id":"s","role":"system"}}"#,
            r#"{"kind":"compaction","body":{"summary_message_id":"s","through_seq":7}}"#,
            r#"{"kind":"message","body":{"id":"m3","role":"user"}}"#,
        ])
        .session();
        assert_eq!(s.open_turn, Some(2));
        assert_eq!(s.turns[0].state, TurnState::Completed);
        assert!(!s.messages[1].active, "m2 rewound");
        assert!(s.messages[0].active);
        let ctx: Vec<&str> = s.context().iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ctx, vec!["s", "m3"]);
    }

    #[test]
    fn out_of_order_is_an_error() {
        let mut f = SessionFold::new();
        let e = Event::from_envelope(r#"{"kind":"x-a","body":{}}"#, 0).unwrap();
        assert_eq!(
            f.apply(2, &e),
            Err(FoldError::OutOfOrder {
                expected: 1,
                got: 2
            })
        );
    }
}
