//! Turn-level resume: [`Journal::repair_dangling_tool_calls`] (documented there, as the module
//! is private).

use serde_json::json;

use crate::{Journal, Result};
use turnwal_replay::session::{ToolCallState, TurnState};

/// What [`Journal::repair_dangling_tool_calls`] appended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DanglingRepair {
    /// One entry per call answered, in the order the calls appeared.
    pub answered: Vec<AbortedCall>,
    /// Turns that were open, now ended as `interrupted`: (turn, seq of the end event).
    pub ended_turns: Vec<(u64, u64)>,
}

impl DanglingRepair {
    /// Whether nothing needed repair (and nothing was appended). See
    /// [`Journal::repair_dangling_tool_calls`] for an example.
    pub fn is_empty(&self) -> bool {
        self.answered.is_empty() && self.ended_turns.is_empty()
    }
}

/// One tool call answered as aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortedCall {
    /// The call id.
    pub call_id: String,
    /// The tool name, if known.
    pub name: String,
    /// `not_started` or `unknown`, as the ledger said before the repair.
    pub was: &'static str,
    /// Id of the `tool` message appended with the result.
    pub message_id: String,
    /// Its seq.
    pub seq: u64,
}

impl Journal {
    /// Answers every tool call that has no result with an explicit `tool_result` part
    /// (`outcome: "aborted"`, `is_error: true`), in a `tool` message of its own, and ends every
    /// open turn as `interrupted`; then syncs, so the repair is durable when this returns.
    /// Opt-in and idempotent: nothing is re-run, nothing is appended when nothing dangles.
    ///
    /// After a crash mid-tool-call the conversation holds a `tool_call` with no `tool_result`,
    /// and every provider refuses such a history (HTTP 400). Nothing is invented: the result
    /// says the call was aborted, and whether the tool had started (`unknown`: it may have had
    /// its effect) or not (`not_started`), from the `tool_run` ledger. Call it before resuming
    /// the agent loop, with no other appender running (the calls it answers are the ones
    /// unanswered when it looks).
    ///
    /// Each result goes into the turn of the message that issued the call (or, if unknown, the
    /// open turn). Message ids are `turnwal-aborted-<call_id>`, with a numeric suffix if that id
    /// is taken: a message with an existing id would supersede that message.
    ///
    /// The [`RecoveryReport::resume`](crate::RecoveryReport::resume) of the open lists the calls
    /// it will answer.
    ///
    /// ```
    /// use turnwal::{Journal, Options, ToolCallState};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let dir = tmp.path().join("s");
    /// # let (journal, _) = Journal::open(&dir, Options::default())?;
    /// # journal.append_json(r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#)?;
    /// # journal.append_json(r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant",
    /// #     "parts":[{"type":"tool_call","call_id":"c1","name":"rm","arguments":"{}"}]}}"#)?;
    /// # journal.append_json(r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c1",
    /// #     "event":"started"}}"#)?;
    /// # drop(journal);
    /// // The writer died while tool call `c1` was running.
    /// let (journal, report) = Journal::open(&dir, Options::default())?;
    /// assert_eq!(report.resume.pending_tool_calls[0].state, "unknown");
    ///
    /// let repair = journal.repair_dangling_tool_calls()?;
    /// assert_eq!(repair.answered[0].call_id, "c1");
    /// assert_eq!(repair.ended_turns.len(), 1); // turn 1, now `interrupted`
    /// let session = journal.session();
    /// let outcome = Some("aborted".to_string());
    /// assert_eq!(session.tool_calls[0].state, ToolCallState::Answered { outcome });
    ///
    /// assert!(journal.repair_dangling_tool_calls()?.is_empty()); // idempotent
    /// # Ok(()) }
    /// ```
    pub fn repair_dangling_tool_calls(&self) -> Result<DanglingRepair> {
        let session = self.session();
        let mut repair = DanglingRepair::default();
        // Ids in use, the repair's own included as it adds them.
        let mut taken: std::collections::HashSet<String> =
            session.messages.iter().map(|m| m.id.clone()).collect();
        for call in &session.tool_calls {
            let was = match call.state {
                ToolCallState::Answered { .. } => continue,
                ToolCallState::NotStarted => "not_started",
                ToolCallState::Unknown => "unknown",
            };
            let turn = session
                .messages
                .iter()
                .find(|m| m.id == call.message_id)
                .and_then(|m| m.turn)
                .or(session.open_turn);
            let base = format!("turnwal-aborted-{}", call.call_id);
            let mut message_id = base.clone();
            let mut n = 2;
            while taken.contains(&message_id) {
                message_id = format!("{base}-{n}");
                n += 1;
            }
            let content = format!(
                "The tool call was aborted: the session was interrupted before it returned a \
                 result, and it was not run again ({}).",
                if was == "unknown" {
                    "it had started, so it may have had its effect"
                } else {
                    "it had not started"
                }
            );
            let mut envelope = json!({
                "kind": "message",
                "body": {
                    "id": message_id,
                    "role": "tool",
                    "parts": [{
                        "type": "tool_result",
                        "call_id": call.call_id,
                        "content": content,
                        "is_error": true,
                        "outcome": "aborted",
                    }],
                },
            });
            if let Some(t) = turn {
                envelope["turn"] = json!(t);
            }
            let seq = self.append_json(&envelope.to_string())?;
            taken.insert(message_id.clone());
            repair.answered.push(AbortedCall {
                call_id: call.call_id.clone(),
                name: call.name.clone(),
                was,
                message_id,
                seq,
            });
        }
        for t in session.turns.iter().filter(|t| t.state == TurnState::Open) {
            let envelope = json!({
                "kind": "turn",
                "turn": t.turn,
                "body": {
                    "event": "interrupted",
                    "reason": "the session was interrupted with this turn open \
                               (repair_dangling_tool_calls)",
                },
            });
            let seq = self.append_json(&envelope.to_string())?;
            repair.ended_turns.push((t.turn, seq));
        }
        if !repair.is_empty() {
            self.sync()?;
        }
        Ok(repair)
    }
}
