//! Import: sessions written by other agent tools and provider APIs, read into turnwal
//! envelopes (docs/EVENTS.md) and appended to a new journal.
//!
//! ```no_run
//! use turnwal::import::{self, Format};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let text = std::fs::read_to_string("session.jsonl")?;
//! let format = import::detect(&text).unwrap_or(Format::ClaudeCode);
//! let report = import::import_into("sessions/imported", format, &text, turnwal::Options::default())?;
//! println!("{} messages, {} tool calls", report.messages, report.tool_calls);
//! # Ok(()) }
//! ```
//!
//! Two steps, usable apart: [`parse`] (or [`parse_with`]) turns the input into envelopes,
//! checking each against the journal's own parser, so every refusal names a line of the input;
//! [`import_parsed`] (or [`import_into`], both at once) writes them to a new journal.
//!
//! # Bad input
//!
//! A line that is not JSON, or not the shape the format requires, is never skipped silently:
//! by default the whole import fails with [`ImportError::BadLine`] naming the 1-based line (of
//! the input text: for a JSON document, the line where the offending element starts) and
//! nothing is created. With [`ParseOptions::skip_bad_lines`] it is listed in
//! [`Imported::skipped`] and the rest is imported; `turnwal import --skip-bad-lines` then still
//! exits 1. Lines the format has but that carry nothing turnwal keeps (Claude Code's
//! `file-history-snapshot`, Codex's `event_msg` echoes of items, ...) are not bad: they are
//! counted by kind in [`Imported::ignored`].
//!
//! # What every format maps to
//!
//! - **Turns**: a user message that is not only tool results starts a turn, unless the turn
//!   in progress has no assistant message yet (instructions and context injected before the
//!   prompt share its turn). Each turn is `started` at its first message and `completed` when
//!   the next starts; the last one too, unless the input ends with tool calls nobody answered
//!   (then `interrupted`, reason `"import: input ends with unanswered tool calls"`). System
//!   and developer messages before the first prompt belong to no turn.
//! - **Ids**: message ids, call ids, response ids and request ids of the source are kept; a
//!   message the source gave no id gets one from its place (`<prefix>-<line>`); a repeated id
//!   gets a `~2`, `~3` suffix (a later message with the same id would replace the earlier).
//! - **Parts**: `text`, `image` (`{url, detail?}` for OpenAI, `{source}` verbatim for
//!   Anthropic), `thinking`, `tool_call` (`call_id`, `name`, `arguments` as the source had
//!   them: a JSON string for OpenAI, an object for Anthropic) and `tool_result` (`call_id`,
//!   `content`, `is_error?`). Anthropic blocks are kept verbatim (signatures byte for byte);
//!   part types turnwal does not know are kept verbatim too.
//! - **Usage**: one `usage` event per model call, `input.total` counting every input token
//!   (cache reads and writes included), `cache_read`, `cache_write`, `output.total` (reasoning
//!   included) and `reasoning`; the call key is the response or request id where the format
//!   has one.
//! - **Metadata**: one `meta` event first: `source: {format, session_id?, ...}`, `model` (the
//!   last model seen), `title` where the format has one.
//! - **Timestamps**: kept as `ts` where the format has them (Claude Code, Codex, Responses
//!   `created_at`); otherwise the journal stamps the import time.
//! - **Compaction**: the summary becomes a `user` message, followed by a `compaction` event
//!   naming it, with `through_seq` the seq of the event before it.
//!
//! The envelopes carry no `seq`; they are meant for a new journal, where the first appended
//! event gets seq 2 (the journal's `session` event is seq 1): `compaction.through_seq` and
//! `rewind.to_seq` count on it.
//!
//! See each format's module for its details: [`openai_chat`], [`openai_responses`],
//! [`anthropic`], [`claude_code`], [`codex`].

pub mod anthropic;
pub mod claude_code;
pub mod codex;
pub mod openai_chat;
pub mod openai_responses;

mod input;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::event::{self, Event};
use crate::{Journal, Options};

pub use input::detect;

/// A source format.
///
/// ```
/// use turnwal::import::Format;
///
/// assert_eq!("claude-code".parse::<Format>(), Ok(Format::ClaudeCode));
/// assert_eq!(Format::Codex.name(), "codex");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// OpenAI chat-completions messages: a JSON array, JSONL (one message or `chat.completion`
    /// object per line), or a request object with `messages`. See [`openai_chat`].
    OpenAiChat,
    /// OpenAI Responses API items (and response objects with their `usage`). See
    /// [`openai_responses`].
    OpenAiResponses,
    /// Anthropic Messages: a request (`system`, `messages`), a response object, an array or
    /// JSONL of messages. See [`anthropic`].
    AnthropicMessages,
    /// Claude Code session JSONL (`~/.claude/projects/<project>/<session>.jsonl`). See
    /// [`claude_code`].
    ClaudeCode,
    /// Codex CLI rollout JSONL (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`). See
    /// [`codex`].
    Codex,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 5] = [
        Format::OpenAiChat,
        Format::OpenAiResponses,
        Format::AnthropicMessages,
        Format::ClaudeCode,
        Format::Codex,
    ];

    /// The command-line spelling (`openai-chat`, `openai-responses`, `anthropic`,
    /// `claude-code`, `codex`), also written to `meta.source.format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAiChat => "openai-chat",
            Format::OpenAiResponses => "openai-responses",
            Format::AnthropicMessages => "anthropic",
            Format::ClaudeCode => "claude-code",
            Format::Codex => "codex",
        }
    }

    /// Parses [`Format::name`] (and `anthropic-messages`).
    pub fn from_name(s: &str) -> Option<Format> {
        match s {
            "anthropic-messages" => Some(Format::AnthropicMessages),
            _ => Format::ALL.into_iter().find(|f| f.name() == s),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown format {s:?} (one of {})", names.join(", "))
        })
    }
}

/// One append envelope (docs/EVENTS.md, no `seq`) and the input line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// 1-based line of the input (for a JSON document, where the element starts); 0 for the
    /// events the import adds (the `meta` event, turn ends at end of input).
    pub line: usize,
    /// The envelope, one line of JSON, accepted by [`crate::Journal::append_json`].
    pub json: String,
}

/// A line of the input and why it was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineNote {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for LineNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What [`parse`] made of an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The format read.
    pub format: Format,
    /// The envelopes to append, in order (the first is the `meta` event).
    pub events: Vec<Envelope>,
    /// Bad lines left out (only with [`ParseOptions::skip_bad_lines`]; otherwise the first one
    /// is an [`ImportError::BadLine`]).
    pub skipped: Vec<LineNote>,
    /// Lines or items deliberately not imported, counted by kind (`file-history-snapshot`,
    /// `event_msg:agent_message`, `sidechain`, ...).
    pub ignored: BTreeMap<String, usize>,
    /// The source's own session id, if it has one.
    pub source_session_id: Option<String>,
    /// Distinct messages among the events.
    pub messages: usize,
    /// Tool calls among the events.
    pub tool_calls: usize,
}

/// How [`parse_with`] treats bad lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// List bad lines in [`Imported::skipped`] and import the rest, instead of failing on the
    /// first one. A JSON document that does not parse at all still fails.
    pub skip_bad_lines: bool,
}

/// Why an import failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ImportError {
    /// The input is bad at this line (1-based; for a JSON document, where the offending
    /// element starts).
    BadLine(LineNote),
    /// The input holds nothing to import, or its format could not be told.
    Input(String),
    /// The target directory already holds something: import only creates new journals.
    Exists(PathBuf),
    /// Writing the journal failed (the line of the event being appended, if any).
    Journal {
        /// Input line of the event that failed (0 if it was one the import added).
        line: usize,
        /// The journal's error.
        source: crate::Error,
    },
}

impl ImportError {
    /// The input line at fault, if the error is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ImportError::BadLine(n) => Some(n.line),
            _ => None,
        }
    }

    /// Whether this is bad input (exit 1 on the command line) rather than an environment or
    /// usage error (exit 2): a bad line, nothing to import, or an event the journal refused
    /// (a record over its size limit: a huge inline image, say).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ImportError::BadLine(_) | ImportError::Input(_) => true,
            ImportError::Journal { line, source } => {
                *line > 0
                    && matches!(
                        source,
                        crate::Error::Journal(
                            turnwal_journal::Error::Input(_)
                                | turnwal_journal::Error::RecordTooLarge { .. }
                        )
                    )
            }
            ImportError::Exists(_) => false,
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::BadLine(n) => n.fmt(f),
            ImportError::Input(reason) => f.write_str(reason),
            ImportError::Exists(dir) => write!(
                f,
                "{} exists and is not empty; import creates a new journal",
                dir.display()
            ),
            ImportError::Journal { line: 0, source } => write!(f, "writing the journal: {source}"),
            ImportError::Journal { line, source } => {
                write!(f, "writing the journal (event of line {line}): {source}")
            }
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImportError::Journal { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Parses `input` as `format`, failing on the first bad line. See the module docs.
///
/// ```
/// use turnwal::import::{self, Format};
///
/// let chat = r#"[{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]"#;
/// let imported = import::parse(Format::OpenAiChat, chat).unwrap();
/// assert_eq!(imported.messages, 2);
///
/// let broken = "{\"role\":\"user\",\"content\":\"hi\"}\n{\"role\":";
/// let err = import::parse(Format::OpenAiChat, broken).unwrap_err();
/// assert_eq!(err.line(), Some(2));
/// ```
pub fn parse(format: Format, input: &str) -> Result<Imported, ImportError> {
    parse_with(format, input, &ParseOptions::default())
}

/// Parses `input` as `format`; bad lines fail the parse or are listed, as `opts` says.
///
/// ```
/// use turnwal::import::{self, Format, ParseOptions};
///
/// let text = "{\"role\":\"user\",\"content\":\"hi\"}\nnot json\n{\"role\":\"assistant\",\"content\":\"hello\"}";
/// let opts = ParseOptions { skip_bad_lines: true };
/// let imported = import::parse_with(Format::OpenAiChat, text, &opts).unwrap();
/// assert_eq!(imported.messages, 2);
/// assert_eq!(imported.skipped[0].line, 2);
/// ```
pub fn parse_with(
    format: Format,
    input: &str,
    opts: &ParseOptions,
) -> Result<Imported, ImportError> {
    let mut b = Builder::new(format, opts.skip_bad_lines);
    match format {
        Format::OpenAiChat => openai_chat::read(input, &mut b)?,
        Format::OpenAiResponses => openai_responses::read(input, &mut b)?,
        Format::AnthropicMessages => anthropic::read(input, &mut b)?,
        Format::ClaudeCode => claude_code::read(input, &mut b)?,
        Format::Codex => codex::read(input, &mut b)?,
    }
    b.finish()
}

/// What [`import_into`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The new journal's directory.
    pub dir: PathBuf,
    /// The new journal's session id.
    pub session: String,
    /// The format read.
    pub format: Format,
    /// The source's own session id, if it had one.
    pub source_session_id: Option<String>,
    /// Events appended (the journal's own `session` event not counted).
    pub events: usize,
    /// Messages in the session.
    pub messages: usize,
    /// Tool calls in the session.
    pub tool_calls: usize,
    /// Turns in the session.
    pub turns: usize,
    /// Last seq of the journal (durable).
    pub last_seq: u64,
    /// Bad lines left out.
    pub skipped: Vec<LineNote>,
    /// Lines deliberately not imported, by kind.
    pub ignored: BTreeMap<String, usize>,
}

impl ImportReport {
    /// The report as the JSON object `turnwal import --json` prints: `{dir, session, format,
    /// source_session_id, events, messages, tool_calls, turns, last_seq, skipped: [{line,
    /// reason}], ignored: {kind: count}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "dir": self.dir.display().to_string(),
            "session": self.session,
            "format": self.format.name(),
            "source_session_id": self.source_session_id,
            "events": self.events,
            "messages": self.messages,
            "tool_calls": self.tool_calls,
            "turns": self.turns,
            "last_seq": self.last_seq,
            "skipped": self.skipped.iter().map(|n| json!({"line": n.line, "reason": n.reason})).collect::<Vec<_>>(),
            "ignored": self.ignored,
        })
    }
}

/// Parses `input` as `format` (strictly: the first bad line fails it) and writes it to a new
/// journal in `dir`. See [`import_parsed`].
///
/// ```
/// use turnwal::import::{self, Format};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("turnwal-doc-import-{}", std::process::id()));
/// let text = r#"{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}"#;
/// let report = import::import_into(&dir, Format::OpenAiResponses, text, turnwal::Options::default())?;
/// assert_eq!(report.messages, 1);
/// let (journal, _) = turnwal::Journal::open(&dir, turnwal::Options::default())?;
/// assert_eq!(journal.session().id, report.session);
/// # journal.close()?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn import_into(
    dir: impl AsRef<Path>,
    format: Format,
    input: &str,
    opts: Options,
) -> Result<ImportReport, ImportError> {
    let imported = parse(format, input)?;
    import_parsed(dir, &imported, opts)
}

/// Writes `imported` to a new journal in `dir`, which must not exist or be empty (an existing
/// journal is refused with [`ImportError::Exists`]).
///
/// The journal is built in a hidden sibling directory (`.<name>.importing-<pid>-<ms>`), synced
/// and closed, then renamed into place and the parent directory synced: a crash or an error
/// leaves no half-imported journal in `dir` (at most a stray hidden directory, which an error
/// removes). `opts.sync` applies while appending; everything is durable when this returns.
pub fn import_parsed(
    dir: impl AsRef<Path>,
    imported: &Imported,
    opts: Options,
) -> Result<ImportReport, ImportError> {
    let dir = dir.as_ref();
    let st = std::sync::Arc::clone(&opts.storage);
    let jerr = |line: usize| move |e: crate::Error| ImportError::Journal { line, source: e };
    let io = |op: &'static str, p: &Path, e: std::io::Error| ImportError::Journal {
        line: 0,
        source: turnwal_journal::Error::io(op, p, e).into(),
    };
    let exists = st.exists(dir).map_err(|e| io("stat", dir, e))?;
    if exists && !st.list(dir).map_err(|e| io("list", dir, e))?.is_empty() {
        return Err(ImportError::Exists(dir.to_path_buf()));
    }
    let name = dir
        .file_name()
        .ok_or_else(|| ImportError::Input(format!("{} names no directory", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let building = dir.with_file_name(format!(
        ".{name}.importing-{}-{}",
        std::process::id(),
        event::now_ms()
    ));
    let built = (|| {
        let (journal, _) = Journal::open(
            &building,
            Options {
                create: true,
                ..opts
            },
        )
        .map_err(jerr(0))?;
        for e in &imported.events {
            journal.append_json(&e.json).map_err(jerr(e.line))?;
        }
        journal.sync().map_err(jerr(0))?;
        let session = journal.session();
        let report = ImportReport {
            dir: dir.to_path_buf(),
            session: session.id.clone(),
            format: imported.format,
            source_session_id: imported.source_session_id.clone(),
            events: imported.events.len(),
            messages: session.messages.len(),
            tool_calls: session.tool_calls.len(),
            turns: session.turns.len(),
            last_seq: session.last_seq,
            skipped: imported.skipped.clone(),
            ignored: imported.ignored.clone(),
        };
        journal.close().map_err(jerr(0))?;
        // An empty `dir` is replaced by the rename (POSIX rename(2) onto an empty directory).
        st.rename(&building, dir)
            .map_err(|e| io("rename", &building, e))?;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        st.sync_dir(parent)
            .map_err(|e| io("fsync dir", parent, e))?;
        Ok(report)
    })();
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    built
}

/// Builds the envelopes of one import: turns, the meta event, seq bookkeeping, checks.
#[derive(Debug)]
pub(crate) struct Builder {
    format: Format,
    skip_bad: bool,
    /// `out[0]` is the meta event, filled in by `finish`.
    out: Vec<Envelope>,
    /// `meta.source` beyond `format`.
    pub(crate) source: Map<String, Value>,
    /// Other meta keys (`title`, `model`, ...).
    pub(crate) meta: Map<String, Value>,
    /// Current turn (0: none yet).
    turn: u64,
    /// Whether the current turn has an assistant message.
    replied: bool,
    /// Whether the current turn has been started and not ended.
    turn_open: bool,
    /// Calls issued and not answered yet: (seq of the message, call id).
    open_calls: Vec<(u64, String)>,
    ids: HashMap<String, usize>,
    /// Seq of the last message event.
    last_message_seq: u64,
    first_ts: Option<String>,
    skipped: Vec<LineNote>,
    ignored: BTreeMap<String, usize>,
    tool_calls: usize,
    message_ids: HashSet<String>,
}

/// A message to emit.
#[derive(Debug, Default)]
pub(crate) struct Msg {
    pub(crate) line: usize,
    pub(crate) ts: Option<String>,
    pub(crate) id: String,
    pub(crate) role: &'static str,
    pub(crate) parts: Vec<Value>,
    /// More body fields (`model`, `source`, `name`, ...).
    pub(crate) extra: Map<String, Value>,
}

/// Token counts of one model call, turnwal's way (see the module docs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub(crate) input: u64,
    pub(crate) cache_read: Option<u64>,
    pub(crate) cache_write: Option<u64>,
    pub(crate) output: u64,
    pub(crate) reasoning: Option<u64>,
}

impl Builder {
    fn new(format: Format, skip_bad: bool) -> Builder {
        Builder {
            format,
            skip_bad,
            out: vec![Envelope {
                line: 0,
                json: String::new(),
            }],
            source: Map::new(),
            meta: Map::new(),
            turn: 0,
            replied: false,
            turn_open: false,
            open_calls: Vec::new(),
            ids: HashMap::new(),
            last_message_seq: 0,
            first_ts: None,
            skipped: Vec::new(),
            ignored: BTreeMap::new(),
            tool_calls: 0,
            message_ids: HashSet::new(),
        }
    }

    /// The seq the next event will get in a new journal.
    pub(crate) fn next_seq(&self) -> u64 {
        self.out.len() as u64 + 2
    }

    /// Seq of the last event so far (1: the journal's `session` event).
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq() - 1
    }

    /// A bad line: an error, or a note if bad lines are skipped.
    pub(crate) fn bad(
        &mut self,
        line: usize,
        reason: impl Into<String>,
    ) -> Result<(), ImportError> {
        let note = LineNote {
            line,
            reason: reason.into(),
        };
        if self.skip_bad {
            self.skipped.push(note);
            Ok(())
        } else {
            Err(ImportError::BadLine(note))
        }
    }

    /// Counts a line or item deliberately not imported.
    pub(crate) fn ignore(&mut self, kind: impl Into<String>) {
        *self.ignored.entry(kind.into()).or_default() += 1;
    }

    /// Normalises a source timestamp to RFC 3339 UTC (ms); `None` if absent, an error naming
    /// the line if it is not a timestamp.
    pub(crate) fn ts(&self, line: usize, v: Option<&Value>) -> Result<Option<String>, LineNote> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => event::parse_ts(s)
                .map(|ms| Some(event::format_ts(ms)))
                .ok_or_else(|| LineNote {
                    line,
                    reason: format!("timestamp {s:?} is not RFC 3339"),
                }),
            Some(other) => Err(LineNote {
                line,
                reason: format!("timestamp must be a string, not {other}"),
            }),
        }
    }

    fn push(
        &mut self,
        line: usize,
        ts: Option<&str>,
        kind: &str,
        turn: Option<u64>,
        body: Value,
    ) -> Result<(), ImportError> {
        let mut env = Map::new();
        if let Some(ts) = ts {
            env.insert("ts".into(), ts.into());
            if self.first_ts.is_none() {
                self.first_ts = Some(ts.to_string());
            }
        }
        env.insert("kind".into(), kind.into());
        if let Some(t) = turn {
            env.insert("turn".into(), t.into());
        }
        env.insert("body".into(), body);
        let json = Value::Object(env).to_string();
        // The journal's own parser: what it refuses is named here, with the line, instead of
        // half-way through writing the journal.
        Event::from_envelope(&json, 0).map_err(|e| {
            ImportError::BadLine(LineNote {
                line,
                reason: format!("makes a {kind} event the journal refuses: {e}"),
            })
        })?;
        self.out.push(Envelope { line, json });
        Ok(())
    }

    fn turn_event(
        &mut self,
        line: usize,
        ts: Option<&str>,
        event: &str,
        reason: Option<&str>,
    ) -> Result<(), ImportError> {
        let mut body = json!({"event": event});
        if let Some(r) = reason {
            body["reason"] = r.into();
        }
        self.push(line, ts, "turn", Some(self.turn), body)
    }

    fn start_turn(&mut self, line: usize, ts: Option<&str>) -> Result<(), ImportError> {
        if self.turn_open {
            self.turn_event(line, ts, "completed", None)?;
        }
        self.turn += 1;
        self.replied = false;
        self.turn_open = true;
        self.turn_event(line, ts, "started", None)
    }

    /// Emits a message, starting a turn first where the module docs say.
    pub(crate) fn message(&mut self, mut m: Msg) -> Result<String, ImportError> {
        let prompt = m.role == "user"
            && (m.parts.is_empty()
                || m.parts
                    .iter()
                    .any(|p| p.get("type").and_then(Value::as_str) != Some("tool_result")));
        if (prompt && (!self.turn_open || self.replied))
            || (m.role == "assistant" && !self.turn_open)
        {
            self.start_turn(m.line, m.ts.as_deref())?;
        }
        if m.role == "assistant" {
            self.replied = true;
        }
        let n = self.ids.entry(m.id.clone()).or_default();
        *n += 1;
        if *n > 1 {
            m.id = format!("{}~{n}", m.id);
        }
        let seq = self.next_seq();
        for p in &m.parts {
            let call_id = p.get("call_id").and_then(Value::as_str);
            match (p.get("type").and_then(Value::as_str), call_id) {
                (Some("tool_call"), Some(c)) => {
                    self.tool_calls += 1;
                    self.open_calls.push((seq, c.to_string()));
                }
                (Some("tool_result"), Some(c)) => self.open_calls.retain(|(_, o)| o != c),
                _ => {}
            }
        }
        let mut body = m.extra;
        body.insert("id".into(), m.id.clone().into());
        body.insert("role".into(), m.role.into());
        body.insert("parts".into(), Value::Array(m.parts));
        let turn = (self.turn > 0).then_some(self.turn);
        self.push(
            m.line,
            m.ts.as_deref(),
            "message",
            turn,
            Value::Object(body),
        )?;
        self.last_message_seq = seq;
        self.message_ids.insert(m.id.clone());
        Ok(m.id)
    }

    /// Emits a usage event.
    pub(crate) fn usage(
        &mut self,
        line: usize,
        ts: Option<&str>,
        call_key: &str,
        model: &str,
        t: &Tokens,
        extra: Map<String, Value>,
    ) -> Result<(), ImportError> {
        let mut input = json!({"total": t.input});
        if let Some(c) = t.cache_read {
            input["cache_read"] = c.into();
        }
        if let Some(c) = t.cache_write {
            input["cache_write"] = c.into();
        }
        let mut output = json!({"total": t.output});
        if let Some(r) = t.reasoning {
            output["reasoning"] = r.into();
        }
        let mut body = extra;
        body.insert("call_key".into(), call_key.into());
        body.insert("model".into(), model.into());
        body.insert("input".into(), input);
        body.insert("output".into(), output);
        body.insert("final".into(), true.into());
        let turn = (self.turn > 0).then_some(self.turn);
        self.push(line, ts, "usage", turn, Value::Object(body))
    }

    /// Emits a compaction boundary whose summary is message `summary_id`, just emitted.
    pub(crate) fn compaction(
        &mut self,
        line: usize,
        ts: Option<&str>,
        summary_id: &str,
        extra: Map<String, Value>,
    ) -> Result<(), ImportError> {
        let mut body = extra;
        body.insert("summary_message_id".into(), summary_id.into());
        // The summary covers every event before the summary message.
        let through = self.last_message_seq.saturating_sub(1).max(1);
        body.insert("through_seq".into(), through.into());
        let turn = (self.turn > 0).then_some(self.turn);
        self.push(line, ts, "compaction", turn, Value::Object(body))
    }

    /// Emits a rewind to `to_seq` (messages first appended after it leave the conversation),
    /// if any message would leave it.
    pub(crate) fn rewind(
        &mut self,
        line: usize,
        ts: Option<&str>,
        to_seq: u64,
        reason: &str,
    ) -> Result<(), ImportError> {
        if self.last_message_seq <= to_seq {
            return Ok(());
        }
        self.open_calls.retain(|(s, _)| *s <= to_seq);
        let turn = (self.turn > 0).then_some(self.turn);
        self.push(
            line,
            ts,
            "rewind",
            turn,
            json!({"to_seq": to_seq, "reason": reason}),
        )
    }

    /// Ends the current turn as `event` (`aborted`, ...) with `reason`.
    pub(crate) fn end_turn(
        &mut self,
        line: usize,
        ts: Option<&str>,
        event: &str,
        reason: Option<&str>,
    ) -> Result<(), ImportError> {
        if !self.turn_open {
            return Ok(());
        }
        self.turn_open = false;
        self.turn_event(line, ts, event, reason)
    }

    fn finish(mut self) -> Result<Imported, ImportError> {
        if self.turn_open {
            if self.open_calls.is_empty() {
                self.turn_event(0, None, "completed", None)?;
            } else {
                self.turn_event(
                    0,
                    None,
                    "interrupted",
                    Some("import: input ends with unanswered tool calls"),
                )?;
            }
        }
        if self.message_ids.is_empty() {
            return Err(ImportError::Input(format!(
                "no messages found: is this {} input?",
                self.format
            )));
        }
        let source_session_id = self
            .source
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut source = Map::new();
        source.insert("format".into(), self.format.name().into());
        source.append(&mut self.source);
        let mut meta = std::mem::take(&mut self.meta);
        meta.insert("source".into(), Value::Object(source));
        let mut env = Map::new();
        if let Some(ts) = &self.first_ts {
            env.insert("ts".into(), ts.clone().into());
        }
        env.insert("kind".into(), "meta".into());
        env.insert("body".into(), Value::Object(meta));
        let json = Value::Object(env).to_string();
        Event::from_envelope(&json, 0)
            .map_err(|e| ImportError::Input(format!("the session's metadata is refused: {e}")))?;
        self.out[0] = Envelope { line: 0, json };
        Ok(Imported {
            format: self.format,
            events: self.out,
            skipped: self.skipped,
            ignored: self.ignored,
            source_session_id,
            messages: self.message_ids.len(),
            tool_calls: self.tool_calls,
        })
    }
}

/// A JSON value's type, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v[key]` as a string, if it is one.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `v[key]` as a u64, if it is one.
pub(crate) fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// Why one item of the input was not imported.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The item is bad: skippable, reported with its line.
    Bad(String),
    /// Stop the import.
    Fatal(ImportError),
}

impl From<ImportError> for Fail {
    fn from(e: ImportError) -> Self {
        Fail::Fatal(e)
    }
}

/// The outcome of importing one item.
pub(crate) type Step<T = ()> = Result<T, Fail>;

/// A bad item.
pub(crate) fn bad<T>(reason: impl Into<String>) -> Step<T> {
    Err(Fail::Bad(reason.into()))
}

impl Builder {
    /// Reports the outcome of importing the item of `line`.
    pub(crate) fn step(&mut self, line: usize, r: Step) -> Result<(), ImportError> {
        match r {
            Ok(()) => Ok(()),
            Err(Fail::Bad(reason)) => self.bad(line, reason),
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    /// [`Builder::ts`] for an item.
    pub(crate) fn item_ts(&self, line: usize, v: Option<&Value>) -> Step<Option<String>> {
        self.ts(line, v).map_err(|n| Fail::Bad(n.reason))
    }
}

/// A Unix time in seconds as RFC 3339.
pub(crate) fn unix_ts(v: Option<&Value>) -> Option<String> {
    let secs = v?.as_f64()?;
    // Saturating float-to-int cast; any sane time fits.
    Some(event::format_ts((secs * 1000.0) as i64))
}

/// Usage of an OpenAI chat completion (`prompt_tokens`, `completion_tokens`, details).
pub(crate) fn chat_tokens(u: &Value) -> Option<Tokens> {
    openai_tokens(u, "prompt", "completion")
}

/// Usage of an OpenAI response (`input_tokens`, `output_tokens`, details).
pub(crate) fn responses_tokens(u: &Value) -> Option<Tokens> {
    openai_tokens(u, "input", "output")
}

/// OpenAI's usage shape, whose two APIs name the sides differently: `<input>_tokens`,
/// `<input>_tokens_details.cached_tokens`, `<output>_tokens`,
/// `<output>_tokens_details.reasoning_tokens`.
fn openai_tokens(u: &Value, input: &str, output: &str) -> Option<Tokens> {
    let details = |side: &str, key: &str| {
        u.get(format!("{side}_tokens_details"))
            .and_then(|d| u64_of(d, key))
    };
    Some(Tokens {
        input: u64_of(u, &format!("{input}_tokens"))?,
        cache_read: details(input, "cached_tokens"),
        cache_write: None,
        output: u64_of(u, &format!("{output}_tokens"))?,
        reasoning: details(output, "reasoning_tokens"),
    })
}

/// Usage of an Anthropic message: `input_tokens` excludes the cache, turnwal's total does not.
pub(crate) fn anthropic_tokens(u: &Value) -> Option<Tokens> {
    let fresh = u64_of(u, "input_tokens")?;
    let read = u64_of(u, "cache_read_input_tokens");
    let write = u64_of(u, "cache_creation_input_tokens");
    Some(Tokens {
        // Saturating: the counts come from the input, and bad input never panics.
        input: fresh
            .saturating_add(read.unwrap_or(0))
            .saturating_add(write.unwrap_or(0)),
        cache_read: read,
        cache_write: write,
        output: u64_of(u, "output_tokens")?,
        reasoning: None,
    })
}

/// A text part.
pub(crate) fn text_part(text: &str) -> Value {
    json!({"type": "text", "text": text})
}
