//! `turnwal export DIR [--raw] [--format turnwal|openai|anthropic] [--json]`: read-only.
//!
//! - `turnwal` (default): the session in snapshot layout, one JSON object per line (docs/EVENTS.md);
//!   `--raw`: every stored event as an envelope per line. With `--json`, the same objects as
//!   one JSON array on one line.
//! - `openai`: the model context as OpenAI chat-completions `messages`: one JSON array.
//! - `anthropic`: the model context as an Anthropic Messages request's `{"system"?,
//!   "messages"}`: one JSON object.
//!
//! A torn tail is reported on stderr and not exported (exit 0); on a corrupt journal the
//! valid prefix is exported and the exit code is 1. A session the provider shape cannot carry
//! (a field missing, an image in an assistant message) exits 1 naming the message and field.

use std::path::Path;

use clap::ValueEnum;
use turnwal::{Journal, Options, ReadOnly, Status, ToolCallState};

use crate::ui;

/// What `export` writes.
#[derive(Clone, Copy, ValueEnum, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// The session in turnwal snapshot layout (JSONL), or every event with --raw.
    #[default]
    Turnwal,
    /// OpenAI chat-completions `messages` (one JSON array).
    Openai,
    /// Anthropic Messages `{"system", "messages"}` (one JSON object).
    Anthropic,
}

impl Format {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Turnwal => "turnwal",
            Format::Openai => "openai",
            Format::Anthropic => "anthropic",
        }
    }
}

/// Lines of JSON objects as one JSON array (each line is a whole JSON value).
fn as_array(lines: &str) -> String {
    let mut out = String::with_capacity(lines.len() + 3);
    out.push('[');
    for (i, l) in lines.lines().filter(|l| !l.is_empty()).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(l);
    }
    out.push_str("]\n");
    out
}

/// The text to print, or the exit code of a failure (already reported).
fn render(view: &ReadOnly, raw: bool, format: Format, json: bool) -> Result<String, u8> {
    let provider_error = |e: turnwal::provider::ProviderError| {
        eprintln!(
            "turnwal export: cannot write the session as {}: {e}",
            format.name()
        );
        1
    };
    match format {
        Format::Turnwal => {
            let mut text = String::new();
            if raw {
                for (seq, event) in &view.events {
                    event.write_envelope(*seq, &mut text);
                    text.push('\n');
                }
            } else {
                // The header's created_at is the session's creation time, not now: exporting
                // the same session twice (or before and after `compact`) gives the same bytes.
                let created = view.session.created_at_ms;
                turnwal_replay::snapshot::write_fold(&view.fold, created, &mut text);
            }
            Ok(if json { as_array(&text) } else { text })
        }
        Format::Openai => {
            let messages =
                turnwal::provider::openai::chat_messages(&view.session).map_err(provider_error)?;
            json_line(&messages)
        }
        Format::Anthropic => {
            let request =
                turnwal::provider::anthropic::messages(&view.session).map_err(provider_error)?;
            json_line(&request)
        }
    }
}

/// `value` as one line of JSON.
fn json_line(value: &impl serde::Serialize) -> Result<String, u8> {
    match serde_json::to_string(value) {
        Ok(mut s) => {
            s.push('\n');
            Ok(s)
        }
        Err(e) => {
            eprintln!("turnwal export: {e}");
            Err(2)
        }
    }
}

pub fn run(dir: &Path, raw: bool, format: Format, json: bool) -> u8 {
    if raw && format != Format::Turnwal {
        eprintln!(
            "turnwal export: --raw prints turnwal envelopes; it cannot be combined with \
             --format {}",
            format.name()
        );
        return 2;
    }
    let view = {
        let _progress = ui::Progress::start("reading", dir);
        match Journal::open_read_only(dir, &Options::default()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("turnwal export: {e}");
                return 2;
            }
        }
    };
    let text = match render(&view, raw, format, json) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if let Err(code) = ui::write_stdout("export", &text) {
        return code;
    }
    if format != Format::Turnwal {
        let pending = view
            .session
            .tool_calls
            .iter()
            .filter(|c| !matches!(c.state, ToolCallState::Answered { .. }))
            .count();
        if pending > 0 {
            eprintln!(
                "turnwal export: note: {pending} tool call(s) have no result; the provider \
                 refuses such a history until each is answered \
                 (Journal::repair_dangling_tool_calls)"
            );
        }
    }
    match view.report.status {
        Status::Clean => 0,
        Status::TornTail => {
            if let Some(cut) = &view.report.cut {
                eprintln!(
                    "turnwal export: torn tail in {} at offset {} ({} bytes) not exported",
                    cut.file, cut.offset, cut.bytes
                );
            }
            0
        }
        Status::Corrupt => {
            for p in &view.report.problems {
                eprintln!(
                    "turnwal export: corrupt: {} at offset {}: {}",
                    p.file, p.offset, p.reason
                );
            }
            eprintln!(
                "turnwal export: exported the {} events before the damage",
                view.events.len()
            );
            1
        }
    }
}
