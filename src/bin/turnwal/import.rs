//! `turnwal import DIR [--from FORMAT] [FILE|-] [--json] [--skip-bad-lines]`: a session written
//! by another tool, read into a new journal (see `turnwal::import`).
//!
//! Prints a summary: aligned `key value` lines, or with `--json` one object `{dir, session,
//! format, source_session_id, events, messages, tool_calls, turns, last_seq, skipped: [{line,
//! reason}], ignored: {kind: count}}`. Exit 0 imported; 1 bad input (the line is named on
//! stderr and nothing is created; with `--skip-bad-lines` the rest is imported, the bad lines
//! listed, and the exit is still 1), or a format `auto` cannot tell; 2 any other error (the
//! directory holds something already, I/O).

use std::io::Read;
use std::path::Path;

use turnwal::import::{self, Format, ImportError, ParseOptions};
use turnwal::{CompactionPolicy, Options, SyncPolicy};

/// What `--from` takes: `auto` (detect) and every format's name.
pub const FORMAT_NAMES: [&str; 6] = [
    "auto",
    "openai-chat",
    "openai-responses",
    "anthropic",
    "claude-code",
    "codex",
];

fn read_input(input: Option<&Path>) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    match input {
        None => std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading stdin: {e}"))?,
        Some(p) if p == Path::new("-") => std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading stdin: {e}"))?,
        Some(p) => {
            bytes = std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            bytes.len()
        }
    };
    Ok(bytes)
}

/// Runs the command; returns the exit code.
pub fn run(dir: &Path, from: &str, input: Option<&Path>, json: bool, skip_bad_lines: bool) -> u8 {
    let bytes = match read_input(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("turnwal import: {e}");
            return 2;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            eprintln!("turnwal import: line {line}: not UTF-8");
            return 1;
        }
    };
    let format = if from == "auto" {
        match import::detect(&text) {
            Some(f) => f,
            None => {
                eprintln!(
                    "turnwal import: cannot tell the format of the input; pass --from ({})",
                    FORMAT_NAMES[1..].join(", ")
                );
                return 1;
            }
        }
    } else {
        match from.parse::<Format>() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("turnwal import: {e}");
                return 2;
            }
        }
    };
    let fail = |e: ImportError| {
        eprintln!("turnwal import: {e}");
        if e.is_bad_input() { 1 } else { 2 }
    };
    let imported = match import::parse_with(format, &text, &ParseOptions { skip_bad_lines }) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let opts = Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    };
    let report = match import::import_parsed(dir, &imported, opts) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    for n in &report.skipped {
        eprintln!("turnwal import: skipped {n}");
    }
    if json {
        println!("{}", report.to_json());
    } else {
        let rows: Vec<(&str, String)> = vec![
            ("imported", report.dir.display().to_string()),
            ("session", report.session.clone()),
            ("format", report.format.name().to_string()),
            (
                "source id",
                report
                    .source_session_id
                    .clone()
                    .unwrap_or_else(|| "-".into()),
            ),
            ("events", report.events.to_string()),
            ("messages", report.messages.to_string()),
            ("tool calls", report.tool_calls.to_string()),
            ("turns", report.turns.to_string()),
            ("last seq", report.last_seq.to_string()),
            (
                "ignored",
                if report.ignored.is_empty() {
                    "-".into()
                } else {
                    report
                        .ignored
                        .iter()
                        .map(|(k, n)| format!("{k} x{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
            ("skipped", report.skipped.len().to_string()),
        ];
        for (k, v) in rows {
            println!("{k:<11} {v}");
        }
    }
    if report.skipped.is_empty() { 0 } else { 1 }
}
