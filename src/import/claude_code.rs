//! Claude Code session JSONL (`~/.claude/projects/<project>/<session>.jsonl`).
//!
//! Each line is one object with a `type`. Claude Code writes **one line per content block of
//! an assistant message**, every line repeating the message's `message.id`, `requestId` and
//! (a snapshot of) its `usage`. The import merges the blocks of one `message.id` into one
//! turnwal message, placed at its first line, and counts its usage once: one `usage` event per
//! (`requestId`, `message.id`), with the usage of its last line (`call_key`
//! `<requestId>:<message.id>`). A block repeated verbatim on a later line is kept once.
//!
//! | Claude Code line | turnwal |
//! |---|---|
//! | `user` | a `user` message, id its `uuid`; `message.content` as Anthropic content (see [`super::anthropic`]): `tool_result` blocks become `tool_result` parts, `text`, `image`, `document` verbatim |
//! | `assistant` | a merged `assistant` message, id its `message.id`; blocks as Anthropic content (`thinking` with its `signature` verbatim, `tool_use` as `tool_call`); `model` and `stop_reason` in the body; `source.uuids` lists the lines merged |
//! | `usage` of an assistant message | one `usage` event: `input.total` = `input_tokens` + `cache_read_input_tokens` + `cache_creation_input_tokens`, `cache_read`, `cache_write`, `output.total` = `output_tokens`; none for `<synthetic>` messages |
//! | `system` with `subtype: "compact_boundary"` and the next `user` line with `isCompactSummary` | the summary as a `user` message, then a `compaction` event (`reason`: the `trigger`, `pre_tokens`) |
//! | `summary` | `meta.title` (the last one) |
//! | `isSidechain: true` lines (a sub-agent's conversation) | not in the conversation (counted as `sidechain`); their usage is kept, with `sidechain: true` |
//! | a user prompt whose `parentUuid` is an earlier line than the one before it (an edited, re-sent prompt) | a `rewind` to that line first: the abandoned branch stays in the history, out of the conversation |
//! | a user line `[Request interrupted by user...]` | the turn in progress ends `interrupted`; the line is kept as a message |
//! | `isMeta` user lines | kept, with `is_meta: true` |
//! | `sessionId`, `cwd`, `version`, `gitBranch` (first line that has them) | `meta.source` |
//! | `timestamp` | `ts` |
//! | other lines (`file-history-snapshot`, `queue-operation`, `progress`, `attachment`, other `system` subtypes, ...) | ignored, counted by type |
//!
//! `toolUseResult` (Claude Code's rich copy of a tool result, for its UI) is not kept: the
//! `tool_result` block is what the model saw. Refused (a bad line): a line that is not a JSON
//! object, has no `type`, a `user` or `assistant` line without a `message` object, and what
//! [`super::anthropic`] refuses in its content.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::input::{self, Input};
use super::{Builder, ImportError, Msg, Step, anthropic_tokens, bad, str_of, type_name};

/// An assistant message's lines, merged.
#[derive(Debug, Default)]
struct Merged {
    blocks: Vec<Value>,
    uuids: Vec<String>,
    /// (request id, usage, line, ts) of the last line of each request.
    usage: Vec<(String, Value, usize, Option<Value>)>,
    stop_reason: Option<Value>,
    emitted: bool,
}

pub(crate) fn read(text: &str, b: &mut Builder) -> Result<(), ImportError> {
    let (_, inp) = input::read(text)?;
    let lines = match inp {
        Input::Lines(lines) => lines,
        Input::Doc(raw) => vec![(1, raw.get())],
    };
    let mut parsed: Vec<(usize, Value)> = Vec::with_capacity(lines.len());
    for (line, l) in lines {
        match input::line_value(line, l) {
            Ok(v) if v.is_object() => parsed.push((line, v)),
            Ok(v) => b.bad(
                line,
                format!("expected a JSON object, found {}", type_name(&v)),
            )?,
            Err(n) => b.bad(n.line, n.reason)?,
        }
    }
    // Pass 1: merge the lines of each assistant message.
    let mut merged: HashMap<String, Merged> = HashMap::new();
    for (line, v) in &parsed {
        if str_of(v, "type") != Some("assistant") {
            continue;
        }
        let Some(msg) = v.get("message") else {
            continue;
        };
        let Some(id) = str_of(msg, "id") else {
            continue;
        };
        let m = merged.entry(id.to_string()).or_default();
        if let Some(Value::Array(blocks)) = msg.get("content") {
            for blk in blocks {
                if !m.blocks.contains(blk) {
                    m.blocks.push(blk.clone());
                }
            }
        }
        if let Some(u) = str_of(v, "uuid") {
            m.uuids.push(u.to_string());
        }
        if let Some(s) = msg.get("stop_reason").filter(|s| !s.is_null()) {
            m.stop_reason = Some(s.clone());
        }
        if let Some(u) = msg.get("usage").filter(|u| u.is_object()) {
            let request = str_of(v, "requestId").unwrap_or_default().to_string();
            let entry = (
                request.clone(),
                u.clone(),
                *line,
                v.get("timestamp").cloned(),
            );
            match m.usage.iter_mut().find(|(r, ..)| *r == request) {
                Some(slot) => *slot = entry,
                None => m.usage.push(entry),
            }
        }
    }
    // Pass 2: emit in line order.
    let mut st = State {
        merged,
        anchors: HashMap::new(),
        prev_uuid: None,
        boundary: None,
        source_done: false,
    };
    for (line, v) in &parsed {
        let r = st.line(b, *line, v);
        b.step(*line, r)?;
    }
    Ok(())
}

struct State {
    merged: HashMap<String, Merged>,
    /// Line uuid → seq of the last event when that line was read (where a branch from it
    /// rewinds to).
    anchors: HashMap<String, u64>,
    prev_uuid: Option<String>,
    /// The compact boundary waiting for its summary: (uuid, trigger, preTokens).
    boundary: Option<(Option<String>, Option<String>, Option<Value>)>,
    source_done: bool,
}

impl State {
    fn line(&mut self, b: &mut Builder, line: usize, v: &Value) -> Step {
        let Some(ty) = str_of(v, "type") else {
            return bad("a line needs a string `type`");
        };
        let ts = b.item_ts(line, v.get("timestamp"))?;
        if !self.source_done && v.get("sessionId").is_some() {
            self.source_done = true;
            for (from, to) in [
                ("sessionId", "session_id"),
                ("cwd", "cwd"),
                ("version", "version"),
                ("gitBranch", "git_branch"),
            ] {
                if let Some(x) = v.get(from).filter(|x| x.is_string()) {
                    b.source.insert(to.into(), x.clone());
                }
            }
        }
        let sidechain = v.get("isSidechain").and_then(Value::as_bool) == Some(true);
        let uuid = str_of(v, "uuid").map(str::to_string);
        match ty {
            "user" | "assistant" if sidechain => {
                b.ignore("sidechain");
                if ty == "assistant" {
                    self.sidechain_usage(b, v)?;
                }
                return Ok(());
            }
            "user" => self.user(b, line, ts.as_deref(), v)?,
            "assistant" => self.assistant(b, line, ts.as_deref(), v)?,
            "system" if str_of(v, "subtype") == Some("compact_boundary") => {
                let meta = v.get("compactMetadata");
                self.boundary = Some((
                    uuid.clone(),
                    meta.and_then(|m| str_of(m, "trigger")).map(str::to_string),
                    meta.and_then(|m| m.get("preTokens")).cloned(),
                ));
            }
            "system" => b.ignore(format!(
                "system:{}",
                str_of(v, "subtype").unwrap_or("(no subtype)")
            )),
            "summary" => match str_of(v, "summary") {
                Some(s) => {
                    b.meta.insert("title".into(), s.into());
                }
                None => return bad("a summary line needs a string `summary`"),
            },
            other => b.ignore(other),
        }
        if !sidechain && let Some(u) = uuid {
            self.anchors.insert(u.clone(), b.last_seq());
            self.prev_uuid = Some(u);
        }
        Ok(())
    }

    fn user(&mut self, b: &mut Builder, line: usize, ts: Option<&str>, v: &Value) -> Step {
        let Some(msg) = v.get("message").filter(|m| m.is_object()) else {
            return bad("a user line needs a `message` object");
        };
        let parts = super::anthropic::content(msg.get("content"))?;
        let prompt = parts
            .iter()
            .any(|p| str_of(p, "type") != Some("tool_result"));
        // An edited prompt re-sent from an earlier point: the lines after that point leave the
        // conversation.
        if prompt
            && let Some(parent) = str_of(v, "parentUuid")
            && self.prev_uuid.as_deref() != Some(parent)
            && let Some(&to) = self.anchors.get(parent)
        {
            b.rewind(
                line,
                ts,
                to,
                "claude-code: prompt re-sent from an earlier message",
            )?;
        }
        let interrupted = parts.iter().any(|p| {
            str_of(p, "type") == Some("text")
                && str_of(p, "text").is_some_and(|t| t.starts_with("[Request interrupted by user"))
        });
        if interrupted {
            b.end_turn(line, ts, "interrupted", Some("interrupted by the user"))?;
        }
        let mut source = Map::new();
        if let Some(u) = v.get("uuid").filter(|u| u.is_string()) {
            source.insert("uuid".into(), u.clone());
        }
        if let Some(p) = v.get("parentUuid").filter(|p| p.is_string()) {
            source.insert("parent_uuid".into(), p.clone());
        }
        let mut extra = Map::new();
        extra.insert("source".into(), Value::Object(source));
        if v.get("isMeta").and_then(Value::as_bool) == Some(true) {
            extra.insert("is_meta".into(), true.into());
        }
        let summary = v.get("isCompactSummary").and_then(Value::as_bool) == Some(true);
        if summary {
            extra.insert("compact_summary".into(), true.into());
        }
        let id = str_of(v, "uuid").map_or_else(|| format!("claude-code-{line}"), str::to_string);
        let id = b.message(Msg {
            line,
            ts: ts.map(str::to_string),
            id,
            role: "user",
            parts,
            extra,
        })?;
        if summary {
            let (boundary, trigger, pre_tokens) = self.boundary.take().unwrap_or_default();
            let mut extra = Map::new();
            extra.insert(
                "reason".into(),
                trigger.unwrap_or_else(|| "compact".into()).into(),
            );
            if let Some(p) = pre_tokens {
                extra.insert("pre_tokens".into(), p);
            }
            if let Some(u) = boundary {
                extra.insert("boundary_uuid".into(), u.into());
            }
            b.compaction(line, ts, &id, extra)?;
        }
        Ok(())
    }

    fn assistant(&mut self, b: &mut Builder, line: usize, ts: Option<&str>, v: &Value) -> Step {
        let Some(msg) = v.get("message").filter(|m| m.is_object()) else {
            return bad("an assistant line needs a `message` object");
        };
        let model = str_of(msg, "model").unwrap_or("unknown").to_string();
        let mut extra = Map::new();
        extra.insert("model".into(), model.clone().into());
        let (id, blocks, usage) =
            match str_of(msg, "id").and_then(|id| self.merged.get_mut(id).map(|m| (id, m))) {
                Some((_, m)) if m.emitted => return Ok(()),
                Some((id, m)) => {
                    m.emitted = true;
                    if let Some(s) = &m.stop_reason {
                        extra.insert("stop_reason".into(), s.clone());
                    }
                    extra.insert("source".into(), json!({"uuids": m.uuids}));
                    (
                        id.to_string(),
                        Value::Array(std::mem::take(&mut m.blocks)),
                        std::mem::take(&mut m.usage),
                    )
                }
                None => {
                    let id = str_of(v, "uuid")
                        .map_or_else(|| format!("claude-code-{line}"), str::to_string);
                    if let Some(s) = msg.get("stop_reason").filter(|s| !s.is_null()) {
                        extra.insert("stop_reason".into(), s.clone());
                    }
                    let usage = msg
                        .get("usage")
                        .filter(|u| u.is_object())
                        .map(|u| {
                            let request = str_of(v, "requestId").unwrap_or_default().to_string();
                            (request, u.clone(), line, v.get("timestamp").cloned())
                        })
                        .into_iter()
                        .collect();
                    (
                        id,
                        msg.get("content").cloned().unwrap_or(Value::Null),
                        usage,
                    )
                }
            };
        let parts = super::anthropic::content(Some(&blocks))?;
        if model != "unknown" {
            b.meta.insert("model".into(), model.clone().into());
        }
        let id = b.message(Msg {
            line,
            ts: ts.map(str::to_string),
            id,
            role: "assistant",
            parts,
            extra,
        })?;
        if model == "<synthetic>" {
            return Ok(());
        }
        for (request, u, uline, uts) in usage {
            let Some(tokens) = anthropic_tokens(&u) else {
                return bad("`message.usage` needs input_tokens and output_tokens as integers");
            };
            let uts = b.item_ts(uline, uts.as_ref())?;
            let mut extra = Map::new();
            extra.insert("message_id".into(), id.clone().into());
            if !request.is_empty() {
                extra.insert("request_id".into(), request.clone().into());
            }
            let key = if request.is_empty() {
                id.clone()
            } else {
                format!("{request}:{id}")
            };
            b.usage(uline, uts.as_deref(), &key, &model, &tokens, extra)?;
        }
        Ok(())
    }

    /// A sub-agent's usage: counted (once per message and request), not in the conversation.
    fn sidechain_usage(&mut self, b: &mut Builder, v: &Value) -> Step {
        let Some(msg) = v.get("message") else {
            return Ok(());
        };
        let model = str_of(msg, "model").unwrap_or("unknown").to_string();
        let Some(id) = str_of(msg, "id") else {
            return Ok(());
        };
        let Some(m) = self.merged.get_mut(id) else {
            return Ok(());
        };
        if m.emitted || model == "<synthetic>" {
            return Ok(());
        }
        m.emitted = true;
        for (request, u, uline, uts) in std::mem::take(&mut m.usage) {
            let Some(tokens) = anthropic_tokens(&u) else {
                return bad("`message.usage` needs input_tokens and output_tokens as integers");
            };
            let uts = b.item_ts(uline, uts.as_ref())?;
            let mut extra = Map::new();
            extra.insert("sidechain".into(), true.into());
            extra.insert("request_id".into(), request.clone().into());
            b.usage(
                uline,
                uts.as_deref(),
                &format!("{request}:{id}"),
                &model,
                &tokens,
                extra,
            )?;
        }
        Ok(())
    }
}
