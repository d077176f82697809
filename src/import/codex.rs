//! Codex CLI rollout JSONL (`~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`).
//!
//! Each line is `{timestamp, type, payload}`. Response items carry no ids in a rollout, so
//! messages get `codex-<line>` (the line of their first item).
//!
//! | rollout line | turnwal |
//! |---|---|
//! | `session_meta` | `meta.source`: `session_id` (`payload.id`), `cwd`, `cli_version`, `originator`, `source`, `model_provider`, `started_at`; `git` as `meta.git`; `instructions` as `meta.instructions` |
//! | `response_item` | as an OpenAI Responses item (see [`super::openai_responses`]): user and developer `message`s, `function_call_output`s, ... as their own messages; consecutive model-side items (`reasoning` with `encrypted_content`, assistant `message`, `function_call`, `custom_tool_call`, `local_shell_call`, `web_search_call`) as one assistant message, up to the next user-side item or `token_count` |
//! | `event_msg` `token_count` with `info` | a `usage` event from `info.last_token_usage`: `input.total` = `input_tokens` (cached included), `cache_read` = `cached_input_tokens`, `output.total` = `output_tokens` (reasoning included), `reasoning` = `reasoning_output_tokens`; model from the latest `turn_context`; `call_key` `codex:<line>`; `info.total_token_usage` kept as `cumulative`. A `token_count` whose `total_token_usage` equals the previous one is Codex repeating itself (it does, e.g. after a rate-limit update): ignored, so the session total is the rollout's last `total_token_usage` |
//! | `event_msg` `turn_aborted` | the turn in progress ends `aborted`, with its `reason` |
//! | other `event_msg`s (`user_message`, `agent_message`, `agent_reasoning`, `exec_command_end`, `task_started`, ...) | ignored (counted): they echo the response items, which are what the model saw |
//! | `turn_context` | its `model` is the model of the usage that follows, and `meta.model` |
//! | `compacted` | the summary (`payload.message`) as a `user` message, then a `compaction` event (`reason: "compacted"`); `replacement_history` kept verbatim in the summary message's body |
//! | `timestamp` | `ts` |
//!
//! The older rollout layout (a first line `{id, timestamp, instructions}`, then bare response
//! items and `{"record_type": "state"}` lines) is read too. Refused (a bad line): a line that
//! is not a JSON object, a `type` missing or unknown, a `payload` that is not an object, and
//! what the Responses reader refuses in an item.

use serde_json::{Map, Value};

use super::input::{self, Input};
use super::openai_responses::Items;
use super::{Builder, ImportError, Msg, Step, Tokens, bad, str_of, text_part, type_name, u64_of};

pub(crate) fn read(text: &str, b: &mut Builder) -> Result<(), ImportError> {
    let (_, inp) = input::read(text)?;
    let lines = match inp {
        Input::Lines(lines) => lines,
        Input::Doc(raw) => vec![(1, raw.get())],
    };
    let mut st = State {
        items: Items::new("codex"),
        model: None,
        last_total: None,
    };
    for (line, l) in lines {
        let v = match input::line_value(line, l) {
            Ok(v) => v,
            Err(n) => {
                b.bad(n.line, n.reason)?;
                continue;
            }
        };
        let r = st.line(b, line, &v);
        b.step(line, r)?;
    }
    st.items.flush(b)?;
    Ok(())
}

struct State {
    items: Items,
    model: Option<String>,
    /// `total_token_usage` of the last `token_count` imported.
    last_total: Option<Value>,
}

impl State {
    fn line(&mut self, b: &mut Builder, line: usize, v: &Value) -> Step {
        if !v.is_object() {
            return bad(format!("expected a JSON object, found {}", type_name(v)));
        }
        let ts = b.item_ts(line, v.get("timestamp"))?;
        let Some(payload) = v.get("payload") else {
            return self.legacy(b, line, ts, v);
        };
        if !payload.is_object() {
            return bad(format!(
                "`payload` must be an object, not {}",
                type_name(payload)
            ));
        }
        match str_of(v, "type") {
            Some("session_meta") => {
                self.session_meta(b, payload);
                Ok(())
            }
            Some("response_item") => self.items.item(b, line, ts, payload),
            Some("turn_context") => {
                if let Some(m) = str_of(payload, "model") {
                    self.model = Some(m.to_string());
                    b.meta.insert("model".into(), m.into());
                }
                Ok(())
            }
            Some("event_msg") => self.event(b, line, ts, payload),
            Some("compacted") => {
                self.items.flush(b)?;
                let summary = str_of(payload, "message").unwrap_or_default();
                let mut extra = Map::new();
                if let Some(h) = payload.get("replacement_history").filter(|h| !h.is_null()) {
                    extra.insert("replacement_history".into(), h.clone());
                }
                extra.insert("compact_summary".into(), true.into());
                let parts = if summary.is_empty() {
                    Vec::new()
                } else {
                    vec![text_part(summary)]
                };
                let id = b.message(Msg {
                    line,
                    ts: ts.clone(),
                    id: format!("codex-{line}"),
                    role: "user",
                    parts,
                    extra,
                })?;
                let mut extra = Map::new();
                extra.insert("reason".into(), "compacted".into());
                b.compaction(line, ts.as_deref(), &id, extra)?;
                Ok(())
            }
            Some(other) => bad(format!("unknown rollout line type {other:?}")),
            None => bad("a rollout line needs a string `type`"),
        }
    }

    /// A line of the older layout: no `payload`.
    fn legacy(&mut self, b: &mut Builder, line: usize, ts: Option<String>, v: &Value) -> Step {
        if v.get("record_type").is_some() {
            b.ignore("record_type");
            return Ok(());
        }
        if v.get("type").is_none() && v.get("id").is_some() {
            self.session_meta(b, v);
            return Ok(());
        }
        match str_of(v, "type") {
            Some(_) => self.items.item(b, line, ts, v),
            None => bad("a rollout line needs `type` and `payload`"),
        }
    }

    fn session_meta(&mut self, b: &mut Builder, p: &Value) {
        for (from, to) in [
            ("id", "session_id"),
            ("cwd", "cwd"),
            ("cli_version", "cli_version"),
            ("originator", "originator"),
            ("source", "source"),
            ("model_provider", "model_provider"),
            ("timestamp", "started_at"),
        ] {
            if let Some(x) = p.get(from).filter(|x| !x.is_null()) {
                b.source.insert(to.into(), x.clone());
            }
        }
        if let Some(g) = p.get("git").filter(|g| !g.is_null()) {
            b.meta.insert("git".into(), g.clone());
        }
        if let Some(i) = p.get("instructions").filter(|i| i.is_string()) {
            b.meta.insert("instructions".into(), i.clone());
        }
    }

    fn event(&mut self, b: &mut Builder, line: usize, ts: Option<String>, p: &Value) -> Step {
        match str_of(p, "type") {
            Some("token_count") => {
                let Some(info) = p.get("info").filter(|i| !i.is_null()) else {
                    b.ignore("event_msg:token_count (no info)");
                    return Ok(());
                };
                let total = info.get("total_token_usage").cloned();
                if total.is_some() && total == self.last_total {
                    b.ignore("event_msg:token_count (repeated)");
                    return Ok(());
                }
                let Some(last) = info.get("last_token_usage").filter(|l| l.is_object()) else {
                    return bad("a token_count's info needs a `last_token_usage` object");
                };
                let Some(tokens) = codex_tokens(last) else {
                    return bad(
                        "`last_token_usage` needs input_tokens and output_tokens as integers",
                    );
                };
                let message_id = self.items.flush_for_usage(b)?;
                let mut extra = Map::new();
                if let Some(t) = &total {
                    extra.insert("cumulative".into(), t.clone());
                }
                if let Some(m) = message_id {
                    extra.insert("message_id".into(), m.into());
                }
                let model = self.model.clone().unwrap_or_else(|| "unknown".into());
                b.usage(
                    line,
                    ts.as_deref(),
                    &format!("codex:{line}"),
                    &model,
                    &tokens,
                    extra,
                )?;
                self.last_total = total;
                Ok(())
            }
            Some("turn_aborted") => {
                self.items.flush(b)?;
                let reason = str_of(p, "reason").unwrap_or("aborted");
                b.end_turn(line, ts.as_deref(), "aborted", Some(reason))?;
                Ok(())
            }
            Some(other) => {
                b.ignore(format!("event_msg:{other}"));
                Ok(())
            }
            None => bad("an event_msg payload needs a string `type`"),
        }
    }
}

/// A Codex token usage object (OpenAI counting: cached and reasoning tokens included).
fn codex_tokens(u: &Value) -> Option<Tokens> {
    Some(Tokens {
        input: u64_of(u, "input_tokens")?,
        cache_read: u64_of(u, "cached_input_tokens"),
        cache_write: None,
        output: u64_of(u, "output_tokens")?,
        reasoning: u64_of(u, "reasoning_output_tokens"),
    })
}
