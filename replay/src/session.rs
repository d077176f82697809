//! The session fold: a pure function from events (in seq order) to the materialised session.
//! Uses only the typed fields of each event; never parses a body.
//!
//! Invariants: `apply` takes seqs strictly in order (`last_seq + 1`; `apply_sparse` allows the
//! gaps of a snapshot, never going back); derived values (usage totals, partial-message bodies)
//! are computed in [`SessionFold::session`], never kept as running counters that could double
//! count.

use std::collections::{BTreeMap, BTreeSet};

/// Keyed by ids from the journal: a fast hash with a per-process random seed, so ids crafted
/// to collide cannot be prepared in advance.
type HashMap<K, V> = foldhash::HashMap<K, V>;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use turnwal_journal::Body;
use turnwal_journal::event::{DeltaPart, Event, Kind, Role, ToolRunEvent, TurnEvent, UsageInfo};

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
    /// JSON text of its body (final form, or generated from deltas); shared with the event.
    pub body: Body,
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
    /// The highest-numbered turn still open, if any (after a crash: interrupted by it).
    pub open_turn: Option<u64>,
    /// Tool calls in order of appearance.
    pub tool_calls: Vec<ToolCallView>,
    /// Latest usage per call_key, ordered by the seq of that latest record.
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
    /// The model context: active messages from the last compaction's summary on. This is what
    /// to send a model when the session resumes (the provider shapes of `turnwal` read it).
    ///
    /// ```
    /// # use turnwal_journal::event::{Event, SessionInfo};
    /// # use turnwal_replay::session::SessionFold;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut fold = SessionFold::new();
    /// # let id = "0123456789abcdef0123456789abcdef".to_string();
    /// # fold.apply(1, &Event::session(SessionInfo { id, created_at_ms: 0, fork_of: None }))?;
    /// let lines = [
    ///     r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[]}}"#,
    ///     r#"{"kind":"message","body":{"id":"sum","role":"user","parts":[]}}"#,
    ///     r#"{"kind":"compaction","body":{"summary_message_id":"sum","through_seq":2}}"#,
    ///     r#"{"kind":"message","body":{"id":"u2","role":"user","parts":[]}}"#,
    /// ];
    /// for (seq, line) in (2..).zip(lines) {
    ///     fold.apply(seq, &Event::from_envelope(line, 0)?)?;
    /// }
    /// let session = fold.session();
    /// let context: Vec<&str> = session.context().iter().map(|m| m.id.as_str()).collect();
    /// assert_eq!(context, ["sum", "u2"]); // u1 stays in `messages`, not in the context
    /// # Ok(()) }
    /// ```
    pub fn context(&self) -> Vec<&MessageView> {
        let active = self.messages.iter().filter(|m| m.active);
        match &self.context_start {
            Some(id) => active.skip_while(|m| &m.id != id).collect(),
            None => active.collect(),
        }
    }

    /// The session as read after a crash: partial messages are interrupted.
    pub fn after_crash(self) -> Session {
        self.after_crash_at(u64::MAX)
    }

    /// [`Session::after_crash`] for the messages a gone writer left partial: those whose last
    /// event is at or below `seq` (the last seq when the journal was reopened). A message
    /// streamed after that is this writer's, and stays partial.
    pub fn after_crash_at(mut self, seq: u64) -> Session {
        for m in &mut self.messages {
            if m.status == MessageStatus::Partial && m.last_seq <= seq {
                m.status = MessageStatus::Interrupted;
            }
        }
        self
    }
}

/// Fragments of one part of a streamed message, concatenated.
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
    /// Seq of the first `message` event: deltas before it were applied, deltas after it ignored.
    first_final: Option<u64>,
    /// Parts built from deltas while the message is partial; dropped once final.
    deltas: BTreeMap<u32, DeltaPartAcc>,
}

/// Folds events into a [`Session`], keeping what a snapshot needs.
///
/// ```
/// use turnwal_journal::event::{Event, SessionInfo};
/// use turnwal_replay::session::{SessionFold, ToolCallState};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut fold = SessionFold::new();
/// let id = "0123456789abcdef0123456789abcdef".to_string();
/// fold.apply(1, &Event::session(SessionInfo { id, created_at_ms: 0, fork_of: None }))?;
/// let lines = [
///     r#"{"kind":"message","body":{"id":"a1","role":"assistant",
///         "parts":[{"type":"tool_call","call_id":"c1","name":"ls","arguments":"{}"}]}}"#,
///     r#"{"kind":"message","body":{"id":"t1","role":"tool",
///         "parts":[{"type":"tool_result","call_id":"c1","content":"README.md"}]}}"#,
/// ];
/// for (seq, line) in (2..).zip(lines) {
///     fold.apply(seq, &Event::from_envelope(line, 0)?)?;
/// }
/// let session = fold.session();
/// assert_eq!(session.messages.len(), 2);
/// assert_eq!(session.tool_calls[0].state, ToolCallState::Answered { outcome: None });
/// assert!(fold.apply(9, &Event::from_envelope(lines[0], 0)?).is_err()); // seqs come in order
/// # Ok(()) }
/// ```
///
/// The snapshot law: a fold rebuilt with [`SessionFold::from_retained`] from `retained()` and
/// `last_seq()` gives the same `session()` and `retained()`, and stays equal under further events.
#[derive(Debug, Clone, Default)]
pub struct SessionFold {
    /// Everything but `messages` and the usage totals, which `session()` derives.
    session: Session,
    messages: Vec<MessageState>,
    by_id: HashMap<String, usize>,
    calls: HashMap<String, usize>,
    usage_keys: HashMap<String, usize>,
    open_turns: BTreeSet<u64>,
    last_meta_seq: Option<u64>,
    /// The events `retained()` chooses from: every event folded, minus what `prune` dropped.
    /// Shared, so a snapshot can take them without copying bodies.
    events: Vec<(u64, Arc<Event>)>,
}

impl SessionFold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `events` more events (about as many messages, at most), so a replay that
    /// knows how many it will fold does not grow and rehash its tables along the way.
    pub fn reserve(&mut self, events: usize) {
        self.events.reserve(events);
        self.messages.reserve(events);
        self.by_id.reserve(events);
    }

    /// Rebuilds a fold from a snapshot: `events` as [`SessionFold::retained`] returned them
    /// (strictly increasing seqs, gaps allowed) and the snapshot's `through_seq`.
    pub fn from_retained<I, E>(events: I, through_seq: u64) -> Result<Self, FoldError>
    where
        I: IntoIterator<Item = (u64, E)>,
        E: Into<Arc<Event>>,
    {
        let events = events.into_iter();
        let mut fold = Self::new();
        fold.reserve(events.size_hint().0);
        for (seq, e) in events {
            fold.apply_sparse_shared(seq, e.into())?;
        }
        fold.advance_to(through_seq)?;
        Ok(fold)
    }

    /// Last seq applied.
    pub fn last_seq(&self) -> u64 {
        self.session.last_seq
    }

    /// The session id from the `session` event ("" before it).
    pub fn session_id(&self) -> &str {
        &self.session.id
    }

    /// Whether message `id` has its final form.
    pub fn has_final_message(&self, id: &str) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|&i| self.messages[i].first_final.is_some())
    }

    /// Applies event `seq`; it must be `last_seq() + 1`.
    pub fn apply(&mut self, seq: u64, event: &Event) -> Result<(), FoldError> {
        self.apply_shared(seq, Arc::new(event.clone()))
    }

    /// Like [`SessionFold::apply`], keeping `event` itself (shared) instead of a copy.
    pub fn apply_shared(&mut self, seq: u64, event: Arc<Event>) -> Result<(), FoldError> {
        let expected = self.session.last_seq + 1;
        if seq != expected {
            return Err(FoldError::OutOfOrder { expected, got: seq });
        }
        self.fold_event(seq, event);
        Ok(())
    }

    /// Applies a snapshot event: `seq` must be above `last_seq()`, gaps are allowed because a
    /// snapshot leaves superseded events out.
    pub fn apply_sparse(&mut self, seq: u64, event: &Event) -> Result<(), FoldError> {
        self.apply_sparse_shared(seq, Arc::new(event.clone()))
    }

    fn apply_sparse_shared(&mut self, seq: u64, event: Arc<Event>) -> Result<(), FoldError> {
        let expected = self.session.last_seq + 1;
        if seq < expected {
            return Err(FoldError::OutOfOrder { expected, got: seq });
        }
        self.fold_event(seq, event);
        Ok(())
    }

    /// Drops superseded events from the fold's own log (see [`SessionFold::retained`]), so
    /// memory follows the snapshot's size, not the log's. Changes neither `session()` nor
    /// `retained()`, now or after further events. Returns the retained events (shared).
    pub fn prune(&mut self) -> Vec<(u64, Arc<Event>)> {
        self.events = self.retained();
        self.events.clone()
    }

    /// Number of messages in the session (final, partial or inactive).
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    /// Moves `last_seq()` to a snapshot's `through_seq` (events left out after the last kept
    /// one, such as ignored deltas). Refuses to go backwards.
    pub fn advance_to(&mut self, seq: u64) -> Result<(), FoldError> {
        if seq < self.session.last_seq {
            let expected = self.session.last_seq;
            return Err(FoldError::OutOfOrder { expected, got: seq });
        }
        self.session.last_seq = seq;
        Ok(())
    }

    fn call(&mut self, call_id: &str, name: &str, message_id: &str) -> &mut ToolCallView {
        let calls = &mut self.session.tool_calls;
        let i = *self.calls.entry(call_id.to_string()).or_insert_with(|| {
            calls.push(ToolCallView {
                call_id: call_id.to_string(),
                name: String::new(),
                message_id: String::new(),
                state: ToolCallState::NotStarted,
            });
            calls.len() - 1
        });
        let c = &mut calls[i];
        if c.name.is_empty() {
            c.name = name.to_string();
        }
        if c.message_id.is_empty() {
            c.message_id = message_id.to_string();
        }
        c
    }

    fn message(&mut self, id: &str, role: Role, seq: u64) -> &mut MessageState {
        // Looked up before `entry`, which would allocate the key even when it is there.
        if let Some(&i) = self.by_id.get(id) {
            return &mut self.messages[i];
        }
        let messages = &mut self.messages;
        let i = *self.by_id.entry(id.to_string()).or_insert_with(|| {
            messages.push(MessageState {
                view: MessageView {
                    id: id.to_string(),
                    role,
                    first_seq: seq,
                    last_seq: seq,
                    turn: None,
                    status: MessageStatus::Partial,
                    active: true,
                    body: Body::default(),
                },
                first_final: None,
                deltas: BTreeMap::new(),
            });
            messages.len() - 1
        });
        &mut messages[i]
    }

    fn fold_event(&mut self, seq: u64, shared: Arc<Event>) {
        self.session.last_seq = seq;
        self.events.push((seq, Arc::clone(&shared)));
        let event = shared.as_ref();
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
                self.turn(seq, event.turn.unwrap_or(0), *te, reason.as_ref());
            }
            Kind::Message(info) => {
                let m = self.message(&info.id, info.role, seq);
                m.first_final.get_or_insert(seq);
                m.deltas = BTreeMap::new(); // superseded; frees the fragments
                m.view.role = info.role;
                m.view.last_seq = seq;
                m.view.turn = event.turn;
                m.view.status = MessageStatus::Complete;
                // Appended again after a rewind: back in the conversation.
                m.view.active = true;
                m.view.body = event.body.clone();
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
                let m = self.message(&d.message_id, Role::Assistant, seq);
                if m.first_final.is_some() {
                    return; // superseded already; the journal refuses these at append
                }
                m.view.last_seq = seq;
                m.view.turn = event.turn;
                let acc = m.deltas.entry(d.index).or_default();
                let fragment = match *acc.part.get_or_insert(d.part) {
                    DeltaPart::ToolCall => d.arguments.as_ref(),
                    DeltaPart::Text | DeltaPart::Thinking => d.text.as_ref(),
                };
                if let Some(f) = fragment {
                    acc.text.push_str(f);
                }
                if acc.call_id.is_none() {
                    acc.call_id.clone_from(&d.call_id);
                }
                if acc.name.is_none() {
                    acc.name.clone_from(&d.name);
                }
                if let (Some(c), Some(n)) = (&d.call_id, &d.name) {
                    self.call(c, n, &d.message_id);
                }
            }
            Kind::Usage(u) => {
                let view = UsageView {
                    seq,
                    info: u.clone(),
                };
                match self.usage_keys.get(&u.call_key) {
                    Some(&i) => self.session.usage[i] = view,
                    None => {
                        let i = self.session.usage.len();
                        self.usage_keys.insert(u.call_key.clone(), i);
                        self.session.usage.push(view);
                    }
                }
            }
            Kind::ToolRun {
                call_id,
                event: ToolRunEvent::Started,
            } => {
                let c = self.call(call_id, "", "");
                if c.state == ToolCallState::NotStarted {
                    c.state = ToolCallState::Unknown;
                }
            }
            // A finished run without a result stays unknown: only a result answers a call.
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
    }

    fn turn(&mut self, seq: u64, turn: u64, te: TurnEvent, reason: Option<&String>) {
        let turns = &mut self.session.turns;
        let pos = match turns.binary_search_by_key(&turn, |t| t.turn) {
            Ok(p) => p,
            Err(p) => {
                let view = TurnView {
                    turn,
                    state: TurnState::Open,
                    started_seq: None,
                    ended_seq: None,
                    reason: None,
                };
                turns.insert(p, view);
                p
            }
        };
        let t = &mut turns[pos];
        if let Some(r) = reason {
            t.reason = Some(r.clone());
        }
        t.state = match te {
            TurnEvent::Started => TurnState::Open,
            TurnEvent::Completed => TurnState::Completed,
            TurnEvent::Interrupted => TurnState::Interrupted,
            TurnEvent::Aborted => TurnState::Aborted,
            TurnEvent::Failed => TurnState::Failed,
        };
        if te == TurnEvent::Started {
            t.started_seq = Some(seq);
            t.ended_seq = None;
            self.open_turns.insert(turn);
        } else {
            t.ended_seq = Some(seq);
            self.open_turns.remove(&turn);
        }
        self.session.open_turn = self.open_turns.last().copied();
    }

    /// The materialised session.
    pub fn session(&self) -> Session {
        let mut s = self.session.clone();
        s.messages = self
            .messages
            .iter()
            .map(|m| {
                let mut v = m.view.clone();
                if m.first_final.is_none() {
                    v.body = Body::from(partial_body(&v.id, &m.deltas));
                }
                v
            })
            .collect();
        // By the seq of the latest record: first appearance of a call_key is not kept by a
        // snapshot (earlier records are dropped), the latest record's seq is.
        s.usage.sort_by_key(|u| u.seq);
        for u in &s.usage {
            s.usage_total.add(&u.info);
            let model = s.usage_by_model.entry(u.info.model.clone()).or_default();
            model.add(&u.info);
        }
        s
    }

    /// The events a snapshot keeps, in seq order: all but superseded `usage` records and the
    /// superseded deltas of messages with a final form; every `meta` event is replaced by one
    /// merged `meta` event at the last meta seq.
    ///
    /// Of a superseded message's deltas two kinds stay, because the session shows their
    /// effect: its first delta (the message's `first_seq` and place in the conversation) and
    /// deltas carrying `call_id` and `name` (they registered tool calls).
    ///
    /// Bodies are shared, not copied: this costs one pointer per retained event.
    pub fn retained(&self) -> Vec<(u64, Arc<Event>)> {
        let mut out = Vec::with_capacity(self.events.len());
        for (seq, e) in &self.events {
            let keep = match &e.kind {
                Kind::Delta(d) => self.by_id.get(&d.message_id).is_some_and(|&i| {
                    let m = &self.messages[i];
                    m.first_final.is_none_or(|f| {
                        *seq < f
                            && (*seq == m.view.first_seq
                                || (d.call_id.is_some() && d.name.is_some()))
                    })
                }),
                Kind::Usage(u) => self
                    .usage_keys
                    .get(&u.call_key)
                    .is_some_and(|&i| self.session.usage[i].seq == *seq),
                Kind::Meta(_) => {
                    if self.last_meta_seq == Some(*seq) {
                        out.push((*seq, Arc::new(self.merged_meta(e))));
                    }
                    false
                }
                _ => true,
            };
            if keep {
                out.push((*seq, Arc::clone(e)));
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
            body: Body::from(body),
        }
    }
}

/// The generated body of a message known only from deltas.
fn partial_body(id: &str, deltas: &BTreeMap<u32, DeltaPartAcc>) -> String {
    let parts: Vec<Value> = deltas
        .values()
        .map(|d| {
            let kind = d.part.unwrap_or(DeltaPart::Text);
            let mut p = serde_json::Map::new();
            p.insert("type".into(), kind.as_str().into());
            match kind {
                DeltaPart::ToolCall => {
                    if let Some(c) = &d.call_id {
                        p.insert("call_id".into(), c.as_str().into());
                    }
                    if let Some(n) = &d.name {
                        p.insert("name".into(), n.as_str().into());
                    }
                    p.insert("arguments".into(), d.text.as_str().into());
                }
                DeltaPart::Text | DeltaPart::Thinking => {
                    p.insert("text".into(), d.text.as_str().into());
                }
            }
            Value::Object(p)
        })
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("id".into(), id.into());
    body.insert("role".into(), "assistant".into());
    body.insert("parts".into(), Value::Array(parts));
    body.insert("status".into(), "partial".into());
    Value::Object(body).to_string()
}
#[cfg(test)]
mod tests {
    use super::*;
    use turnwal_journal::event::SessionInfo;

    fn ev(line: &str) -> Event {
        Event::from_envelope(line, 0).unwrap()
    }

    fn fold(lines: &[&str]) -> SessionFold {
        let mut f = SessionFold::new();
        for (i, l) in lines.iter().enumerate() {
            f.apply(i as u64 + 1, &ev(l)).unwrap();
        }
        f
    }

    /// The snapshot law on one workload: rebuilt from `retained()` it is the same session.
    fn assert_snapshot_law(f: &SessionFold) {
        let g = SessionFold::from_retained(f.retained(), f.last_seq()).unwrap();
        assert_eq!(g.session(), f.session());
        assert_eq!(g.retained(), f.retained());
    }

    #[test]
    fn session_event_sets_identity() {
        let mut f = SessionFold::new();
        let info = SessionInfo {
            id: "abc".into(),
            created_at_ms: 42,
            fork_of: Some(("parent".into(), 7)),
        };
        f.apply(1, &Event::session(info)).unwrap();
        let s = f.session();
        assert_eq!((s.id.as_str(), s.created_at_ms), ("abc", 42));
        assert_eq!(s.fork_of, Some(("parent".to_string(), 7)));
        assert_eq!(f.session_id(), "abc");
        assert_snapshot_law(&f);
    }

    #[test]
    fn meta_merges_deletes_later_wins_and_retains_one_event() {
        let f = fold(&[
            r#"{"kind":"meta","body":{"a":1,"b":"x"}}"#,
            r#"{"kind":"x-n","body":{}}"#,
            r#"{"kind":"meta","body":{"a":null,"b":"y","c":[1]}}"#,
            r#"{"kind":"x-n","body":{}}"#,
        ]);
        let s = f.session();
        assert_eq!(s.meta.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(
            (s.meta["b"].as_str(), s.meta["c"].as_str()),
            (r#""y""#, "[1]")
        );
        let r = f.retained();
        assert_eq!(r.iter().map(|(q, _)| *q).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(r[1].1.body, r#"{"b":"y","c":[1]}"#);
        assert_snapshot_law(&f);
        let none = fold(&[r#"{"kind":"x-n","body":{}}"#]);
        assert_eq!(none.retained().len(), 1, "no meta event, none invented");
    }

    #[test]
    fn turns_open_end_and_reopen() {
        let s = fold(&[
            r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
            r#"{"kind":"turn","turn":1,"body":{"event":"failed","reason":"boom"}}"#,
            r#"{"kind":"turn","turn":3,"body":{"event":"started"}}"#,
            r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
            r#"{"kind":"turn","turn":3,"body":{"event":"aborted"}}"#,
        ])
        .session();
        assert_eq!(
            s.turns.iter().map(|t| t.turn).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let t1 = &s.turns[0];
        assert_eq!(
            (t1.state, t1.started_seq, t1.ended_seq),
            (TurnState::Failed, Some(1), Some(2))
        );
        assert_eq!(t1.reason.as_deref(), Some("boom"));
        assert_eq!(s.turns[2].state, TurnState::Aborted);
        assert_eq!(s.open_turn, Some(2), "turn 3 ended; 2 is still open");
        let s = fold(&[
            r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
            r#"{"kind":"turn","turn":1,"body":{"event":"interrupted"}}"#,
        ])
        .session();
        assert_eq!(
            (s.turns[0].state, s.open_turn),
            (TurnState::Interrupted, None)
        );
    }

    #[test]
    fn deltas_build_a_partial_body_by_part_index() {
        let f = fold(&[
            r#"{"kind":"delta","turn":4,"body":{"message_id":"a","index":2,"type":"tool_call","call_id":"c1","arguments":"{\"x\""}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"thinking","text":"hm"}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":2,"type":"tool_call","call_id":"c9","name":"sh","arguments":":1}"}}"#,
            r#"{"kind":"delta","turn":5,"body":{"message_id":"a","index":0,"type":"thinking","text":" ok"}}"#,
        ]);
        let m = &f.session().messages[0];
        assert_eq!(
            (m.role, m.status, m.first_seq, m.last_seq),
            (Role::Assistant, MessageStatus::Partial, 1, 4)
        );
        assert_eq!(m.turn, Some(5));
        let body: Value = serde_json::from_str(&m.body).unwrap();
        let want = serde_json::json!({"id":"a","role":"assistant","status":"partial","parts":[
            {"type":"thinking","text":"hm ok"},
            {"type":"tool_call","call_id":"c1","name":"sh","arguments":"{\"x\":1}"}]});
        assert_eq!(
            body, want,
            "parts by index, index 1 skipped, first call_id/name kept"
        );
        assert!(!f.has_final_message("a"));
        assert_snapshot_law(&f);
    }

    #[test]
    fn final_message_supersedes_deltas_and_later_deltas_are_ignored() {
        let f = fold(&[
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"Hel"}}"#,
            r#"{"kind":"message","body":{"id":"u","role":"user"}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":1,"type":"tool_call","call_id":"c1","name":"sh"}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"lo"}}"#,
            r#"{"kind":"message","turn":2,"body":{"id":"a","role":"assistant","status":"partial","parts":[{"type":"text","text":"Hello"}]}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"!"}}"#,
        ]);
        assert!(f.has_final_message("a"));
        let s = f.session();
        assert_eq!(
            s.messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["a", "u"]
        );
        let a = &s.messages[0];
        assert_eq!(
            (a.status, a.first_seq, a.last_seq, a.turn),
            (MessageStatus::Complete, 1, 5, Some(2))
        );
        assert!(a.body.contains("Hello") && !a.body.contains('!'));
        assert_eq!(s.last_seq, 6);
        let kept: Vec<u64> = f.retained().iter().map(|(q, _)| *q).collect();
        assert_eq!(
            kept,
            [1, 2, 3, 5],
            "first delta and the call-carrying one stay"
        );
        assert_snapshot_law(&f);
    }

    #[test]
    fn tool_calls_not_started_unknown_answered() {
        let f = fold(&[
            r#"{"kind":"message","body":{"id":"r0","role":"tool","parts":[{"type":"tool_result","call_id":"c0","content":""}]}}"#,
            r#"{"kind":"message","body":{"id":"a","role":"assistant","parts":[{"type":"tool_call","call_id":"c1","name":"x"},{"type":"tool_call","call_id":"c2","name":"y"},{"type":"tool_call","call_id":"c3","name":"z"}]}}"#,
            r#"{"kind":"tool_run","body":{"call_id":"c2","event":"started"}}"#,
            r#"{"kind":"tool_run","body":{"call_id":"c2","event":"finished"}}"#,
            r#"{"kind":"tool_run","body":{"call_id":"c3","event":"started"}}"#,
            r#"{"kind":"message","body":{"id":"r","role":"tool","parts":[{"type":"tool_result","call_id":"c3","content":"ok","outcome":"done"}]}}"#,
            r#"{"kind":"tool_run","body":{"call_id":"c3","event":"started"}}"#,
        ]);
        let s = f.session();
        let got: Vec<_> = s
            .tool_calls
            .iter()
            .map(|c| {
                (
                    c.call_id.as_str(),
                    c.name.as_str(),
                    c.message_id.as_str(),
                    c.state.clone(),
                )
            })
            .collect();
        let done = ToolCallState::Answered {
            outcome: Some("done".into()),
        };
        assert_eq!(
            got,
            [
                ("c0", "", "", ToolCallState::Answered { outcome: None }),
                ("c1", "x", "a", ToolCallState::NotStarted),
                ("c2", "y", "a", ToolCallState::Unknown),
                ("c3", "z", "a", done),
            ]
        );
        assert_snapshot_law(&f);
    }

    #[test]
    fn usage_is_idempotent_per_call_key_and_totals_are_derived() {
        let f = fold(&[
            r#"{"kind":"usage","body":{"call_key":"k","model":"m1","input":{"total":10},"output":{"total":1}}}"#,
            r#"{"kind":"usage","body":{"call_key":"j","model":"m2","input":{"total":5,"cache_read":4},"output":{"total":2,"reasoning":1},"cost":{"amount":1.0,"currency":"EUR"}}}"#,
            r#"{"kind":"usage","body":{"call_key":"k","model":"m1","input":{"total":30,"cache_write":3},"output":{"total":3},"cost":{"amount":0.5,"currency":"USD"}}}"#,
        ]);
        let s = f.session();
        let t = &s.usage_total;
        assert_eq!(
            (
                t.calls,
                t.input,
                t.cache_read,
                t.cache_write,
                t.output,
                t.reasoning
            ),
            (2, 35, 4, 3, 5, 1)
        );
        assert_eq!((t.cost["USD"], t.cost["EUR"]), (0.5, 1.0));
        assert_eq!(
            (s.usage_by_model["m1"].calls, s.usage_by_model["m1"].input),
            (1, 30)
        );
        assert_eq!(s.usage.iter().map(|u| u.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(
            f.retained().iter().map(|(q, _)| *q).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(f.session(), s, "session() does not accumulate");
        assert_snapshot_law(&f);
    }

    #[test]
    fn rewind_deactivates_and_reappend_reactivates_and_compaction_sets_context() {
        let f = fold(&[
            r#"{"kind":"message","body":{"id":"m1","role":"user"}}"#,
            r#"{"kind":"message","body":{"id":"m2","role":"assistant"}}"#,
            r#"{"kind":"message","body":{"id":"m3","role":"assistant"}}"#,
            r#"{"kind":"rewind","body":{"to_seq":1}}"#,
            r#"{"kind":"message","body":{"id":"m3","role":"assistant"}}"#,
            r#"{"kind":"message","body":{"id":"s","role":"system"}}"#,
            r#"{"kind":"message","body":{"id":"m4","role":"user"}}"#,
        ]);
        let s = f.session();
        let active: Vec<bool> = s.messages.iter().map(|m| m.active).collect();
        assert_eq!(active, [true, false, true, true, true]);
        let ids = |v: Vec<&MessageView>| v.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(s.context()), ["m1", "m3", "s", "m4"]);
        let mut g = f.clone();
        let c = ev(r#"{"kind":"compaction","body":{"summary_message_id":"s","through_seq":6}}"#);
        g.apply(8, &c).unwrap();
        let s = g.session();
        assert_eq!(s.context_start.as_deref(), Some("s"));
        assert_eq!(ids(s.context()), ["s", "m4"]);
        assert_snapshot_law(&g);
    }

    #[test]
    fn after_crash_interrupts_partial_messages_only() {
        let f = fold(&[
            r#"{"kind":"message","body":{"id":"u","role":"user"}}"#,
            r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"x"}}"#,
        ]);
        let s = f.session().after_crash();
        let st: Vec<_> = s.messages.iter().map(|m| m.status).collect();
        assert_eq!(st, [MessageStatus::Complete, MessageStatus::Interrupted]);
        assert_eq!((s.open_turn, s.turns[0].state), (Some(1), TurnState::Open));
    }

    #[test]
    fn seqs_must_be_in_order() {
        let mut f = SessionFold::new();
        let e = ev(r#"{"kind":"x-a","body":{}}"#);
        assert_eq!(
            f.apply(2, &e),
            Err(FoldError::OutOfOrder {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            f.apply(0, &e),
            Err(FoldError::OutOfOrder {
                expected: 1,
                got: 0
            })
        );
        f.apply_sparse(5, &e).unwrap();
        assert!(f.apply_sparse(5, &e).is_err());
        assert!(f.advance_to(4).is_err());
        f.advance_to(9).unwrap();
        assert_eq!(f.last_seq(), 9);
        f.apply(10, &e).unwrap();
        assert!(
            FoldError::OutOfOrder {
                expected: 1,
                got: 2
            }
            .to_string()
            .contains("expected 1")
        );
    }
}
