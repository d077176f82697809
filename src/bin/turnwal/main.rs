//! The `turnwal` command line. Contract (docs/EVENTS.md): `append`, `export`, `verify`; plus
//! `inspect`, `stats`, `import`, `compact`, `repair`, `fork`, `tail` and `demo`.
//! Every error exits non-zero with a message on stderr; `--json` works on every command.

mod append;
mod compact;
mod demo;
mod export;
mod fork;
mod import;
mod inspect;
mod repair;
mod stats;
mod tail;
mod ui;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes and output conventions, shown by `turnwal --help`.
const TOP_AFTER_HELP: &str = "\
Exit codes (every command):
  0  done; for verify, inspect, stats and export: the journal reads clean or ends in a torn
     tail (never acknowledged, so nothing is lost)
  1  refused, corrupt journal, or bad input (the message names the file and offset, the line,
     or the message and field)
  2  usage error or I/O error (a missing journal, an unreadable file)

Output: text for people by default, in aligned tables; colour only when stdout is a terminal
and NO_COLOR is unset or empty. --json on every command prints JSON with a stable shape, shown
in `turnwal <command> --help` (fields are only ever added). compact, repair and fork print
their JSON whenever stdout is not a terminal, as they always did; append, export and tail
always print JSON (Lines). Long reads of journals of 32 MiB or more show a spinner on stderr,
on a terminal only.

Examples:
  turnwal demo                                  # a session killed with kill -9, recovered
  turnwal inspect ./s1                          # files, seq ranges, watermarks, lock holder
  turnwal stats ./s1                            # turns, messages, tool calls, usage, cost
  turnwal import ./s2 ~/.claude/projects/-home-me-app/7f3c2a91.jsonl
  turnwal export ./s1 --format openai > messages.json
  turnwal verify ./s1 --json | jq .status";

#[derive(Parser)]
#[command(
    name = "turnwal",
    version,
    about = "Crash-safe write-ahead turn journal for AI-agent chat sessions",
    long_about = "Crash-safe write-ahead turn journal for AI-agent chat sessions.\n\n\
        A journal is a directory: checksummed segment files, an optional JSONL snapshot, a \
        LOCK file. These commands append to it, read it, audit it, repair it and export it \
        in the shapes other tools read. Run `turnwal <command> --help` for each one's \
        output, JSON shape and examples.",
    after_help = TOP_AFTER_HELP
)]
struct Cli {
    /// Print JSON instead of text (the shape is in each command's --help).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Durability policy on the command line.
#[derive(Clone, Copy, ValueEnum, Debug)]
pub enum SyncArg {
    /// Every append durable before the next line is read.
    Always,
    /// Background sync every 5 ms or 1 MiB.
    Batch,
    /// Sync only at end of input.
    Never,
}

impl SyncArg {
    fn policy(self) -> turnwal::SyncPolicy {
        match self {
            SyncArg::Always => turnwal::SyncPolicy::Always,
            SyncArg::Batch => turnwal::SyncPolicy::default(),
            SyncArg::Never => turnwal::SyncPolicy::Never,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Append JSONL envelopes from stdin (creating the journal if missing).
    ///
    /// Reads one envelope per line (docs/EVENTS.md; no `seq`) and appends each. Prints
    /// `{"durable_through": N}` after each completed fsync and once more at the end. A bad line
    /// stops the run with exit 1 and an error naming the line and the field; every line
    /// before it is appended and durable.
    #[command(after_help = "\
Output (with or without --json): JSON Lines, one {\"durable_through\": N} per completed fsync
and one at the end of input.

Exit codes: 0 every line appended and durable; 1 a bad line (named), or the journal could not
be opened or synced (locked by another writer, corrupt, disk full).

Examples:
  echo '{\"kind\":\"meta\",\"body\":{\"title\":\"t\"}}' | turnwal append ./s1 --sync always
  my-agent --events | turnwal append ./s1 --auto-compact")]
    Append {
        /// Journal directory.
        dir: PathBuf,
        /// Durability policy.
        #[arg(long, value_enum, default_value = "batch")]
        sync: SyncArg,
        /// Compact in the background as the library does by default (past 16 MiB or 50 000
        /// events behind the snapshot). Off unless given: `export --raw` then shows every
        /// appended event until `turnwal compact` is run.
        #[arg(long)]
        auto_compact: bool,
        /// Compact in the background every N events behind the snapshot, whatever their size
        /// (implies --auto-compact): a compaction-heavy writer, for crash tests.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        compact_records: Option<u64>,
        /// Take over the writer lock if its holder is provably dead on this host (see the
        /// README, "Lock takeover"; not needed after a crash).
        #[arg(long)]
        takeover: bool,
        /// Longest input line in bytes, newline excluded (default 17 MiB: the 16 MiB record
        /// limit plus room for the envelope). A longer line is refused, naming it, as soon as
        /// the limit is passed, without reading it whole.
        #[arg(long, value_name = "N", default_value_t = append::LINE_BYTES_MAX_DEFAULT,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_line_bytes: u64,
    },
    /// Show a journal's files: segments, snapshots, watermarks, lock holder, quarantine.
    ///
    /// Read-only and lock-free (safe while a writer appends). Per segment: size, records, seq
    /// range, sealed or active, highest durable watermark stated, where and why the scan
    /// stopped. Per snapshot: the seq it folds through, records, size, in use, superseded or
    /// ignored (and why). The writer lock: held or free, the recorded holder (pid, host, since)
    /// and whether it is alive. Quarantine files left by recovery and salvage.
    #[command(after_help = "\
JSON (--json), one object:
  {\"dir\", \"session\": {\"id\", \"created_at_ms\", \"created\", \"fork_of\", \"title\"},
   \"status\", \"case\", \"records\", \"last_seq\", \"bytes\",
   \"segments\": [{\"file\", \"id\", \"bytes\", \"records\", \"first_seq\", \"last_seq\",
                 \"state\" (sealed|active), \"max_watermark\", \"stop\", \"stop_offset\",
                 \"stop_reason\", \"valid_end\"}],
   \"covered_segments\": [file],
   \"snapshots\": [{\"file\", \"through_seq\", \"bytes\", \"records\",
                  \"state\" (in_use|superseded|ignored), \"reason\"}],
   \"watermarks\": {\"max_stated\", \"snapshot_through\", \"last_seq\", \"durable_through\"},
   \"lock\": {\"held\", \"holder\": {\"pid\", \"host\", \"since\", \"liveness\", \"liveness_reason\"}},
   \"quarantine\": [{\"file\", \"bytes\"}], \"tmp_files\": [{\"file\", \"bytes\"}],
   \"problems\": [{\"file\", \"offset\", \"reason\", \"kind\"}]}

Exit codes: 0 clean or torn tail, 1 corrupt (still shown), 2 error.

Examples:
  turnwal inspect ./s1
  turnwal inspect ./s1 --json | jq '.segments[] | {file, first_seq, last_seq, state}'")]
    Inspect {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Count what a session holds: turns, messages, tool calls, usage and cost per model.
    ///
    /// Read-only, from the materialised session. Turns by state; messages by role and status
    /// (complete, partial, interrupted by a crash, rewound); tool calls answered, not started
    /// (safe to run) or unknown (started, no result), per tool; usage per model and in total
    /// (input, cache reads and writes, output, reasoning, cost per currency), counting the
    /// latest record of each model call once.
    #[command(after_help = "\
JSON (--json), one object:
  {\"session\", \"status\", \"last_seq\",
   \"turns\": {\"count\", \"open\", \"completed\", \"interrupted\", \"aborted\", \"failed\"},
   \"messages\": {\"count\", \"by_role\": {\"system\", \"developer\", \"user\", \"assistant\", \"tool\"},
                \"complete\", \"partial\", \"interrupted\", \"rewound\"},
   \"tool_calls\": {\"count\", \"answered\", \"not_started\", \"unknown\",
                  \"by_name\": {NAME: {\"count\", \"answered\", \"not_started\", \"unknown\"}}},
   \"usage\": {\"by_model\": {MODEL: USAGE}, \"total\": USAGE}}
  USAGE = {\"calls\", \"input\", \"cache_read\", \"cache_write\", \"output\", \"reasoning\",
           \"cost\": {CURRENCY: amount}}

Exit codes: 0 clean or torn tail, 1 corrupt (the numbers of the valid prefix), 2 error.

Examples:
  turnwal stats ./s1
  turnwal stats ./s1 --json | jq .usage.total.cost")]
    Stats {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Print the session (turnwal, OpenAI or Anthropic shape) or, with --raw, every event.
    ///
    /// Read-only. The default is the materialised session in snapshot layout (byte-identical
    /// before and after `compact`); --raw prints every stored event. --format openai and
    /// --format anthropic print the model context as those APIs take it on resume: tool
    /// results right after the call that asked for them (Anthropic: regrouped into user
    /// messages), roles alternating for Anthropic. A torn tail is reported on stderr and not
    /// exported.
    #[command(after_help = "\
Output:
  --format turnwal (default): JSON Lines, the session in snapshot layout (header, events,
    trailer); with --raw, every stored event as an envelope. --json: the same objects as one
    JSON array.
  --format openai: one JSON array, the chat-completions `messages`
    ([{\"role\", \"content\", \"tool_calls\"?, \"tool_call_id\"?}, ...]).
  --format anthropic: one JSON object, {\"system\"?, \"messages\": [{\"role\", \"content\": [blocks]}]}.
  (openai and anthropic print the same with or without --json.)

Not carried by openai/anthropic: message ids, turns, statuses, usage, metadata, a tool
result's outcome; openai also drops thinking and is_error, anthropic unsigned thinking and
where system messages were (see the README, \"Provider shapes\").

Exit codes: 0 exported, 1 corrupt journal (the valid prefix is exported) or a session the
format cannot carry (message and field named), 2 error.

Examples:
  turnwal export ./s1 --raw | jq -c .kind
  turnwal export ./s1 --format openai | jq '.[-1]'
  turnwal export ./s1 --format anthropic > request.json")]
    Export {
        /// Journal directory.
        dir: PathBuf,
        /// Every stored event in seq order, one envelope per line (turnwal format only).
        #[arg(long)]
        raw: bool,
        /// Output shape.
        #[arg(long, value_enum, default_value = "turnwal")]
        format: export::Format,
    },
    /// Print the durable events as export envelopes, one per line; with -f, keep following.
    ///
    /// Read-only and lock-free: works while a writer appends, rotates and compacts. An event is
    /// printed once it is durable (up to the watermark in the log while a writer holds the
    /// lock, everything valid once none does), each exactly once, in seq order; events a
    /// compaction folded away before they were seen are skipped.
    #[command(after_help = "\
Output (with or without --json): JSON Lines, one envelope {\"seq\", \"ts\", \"kind\", \"turn\"?,
\"body\"} per event.

Exit codes: 0 (also when the reader of a pipe goes away), 2 error.

Examples:
  turnwal tail -f ./s1 | jq -c 'select(.kind == \"message\") | .body.id'
  turnwal tail ./s1 --from 120")]
    Tail {
        /// Journal directory.
        dir: PathBuf,
        /// Keep following (poll every 200 ms) until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Start at this seq instead of the first event.
        #[arg(long, value_name = "SEQ", default_value_t = 1)]
        from: u64,
    },
    /// Repair a journal: cut a proven torn tail, or with --salvage keep what validates.
    ///
    /// Cuts a proven torn tail into a quarantine file, or with --salvage keeps every valid
    /// record past the damage and moves the damaged segments aside.
    ///
    /// Without --salvage it does what a writer's open does and refuses corruption (exit 1).
    /// With --salvage it installs every record that still validates as the journal's state
    /// (a new snapshot and a fresh segment), keeps the damaged files as quarantine-salvaged-*,
    /// and reports the seqs lost. --dry-run changes nothing and says what would be done.
    #[command(after_help = "\
Output: a summary in words on a terminal; with --json, or whenever stdout is not a terminal,
one JSON object {\"mode\", \"dry_run\", \"refused\"?, \"report\"}, where report is the recovery
report of `turnwal verify --json` (README, \"Recovery modes and the recovery report\").

Exit codes: 0 done (or nothing to do), 1 refused (corruption without --salvage), 2 error.

Examples:
  turnwal repair ./s1
  turnwal repair ./s1 --salvage --dry-run --json | jq .report.salvage.lost
  turnwal repair ./s1 --salvage")]
    Repair {
        /// Journal directory.
        dir: PathBuf,
        /// Keep every valid record past the damage (explicit, logged; renumbers nothing).
        #[arg(long)]
        salvage: bool,
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take over the writer lock if its holder is provably dead on this host.
        #[arg(long)]
        takeover: bool,
    },
    /// Audit a journal without changing it: clean, torn tail or corrupt, and where.
    ///
    /// Reads every segment and snapshot and checks every record's checksum and seq, as a
    /// writer's open would, and says what it found; nothing on disk changes.
    #[command(after_help = "\
JSON (--json): the recovery report, one object with at least \"status\" (clean|torn_tail|
corrupt), \"last_seq\", \"records\", \"segments\", \"torn_bytes\" and \"problems\"
([{\"file\", \"offset\", \"reason\", \"kind\"}]); the full shape is in the README, \"Recovery
modes and the recovery report\".

Exit codes: 0 clean or torn tail (recoverable, nothing acknowledged lost), 1 corrupt, 2 error.

Examples:
  turnwal verify ./s1
  turnwal verify ./s1 --json | jq '.status, .problems'")]
    Verify {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Fold the log into a new JSONL snapshot and delete the segments it covers.
    ///
    /// Takes the writer lock (fails if a writer holds it). Nothing to do if nothing was
    /// appended since the last snapshot.
    #[command(after_help = "\
Output: a summary in words on a terminal; with --json, or whenever stdout is not a terminal,
one JSON object {\"skipped\", \"snapshot\", \"through_seq\", \"records\", \"messages\", \"bytes\",
\"removed_segments\", \"removed_snapshots\", \"hold_us\", \"total_us\"}.

Exit codes: 0 done (or nothing to do), 1 refused (corrupt journal, or a snapshot that would
shrink the session), 2 error (a writer holds the lock, I/O).

Examples:
  turnwal compact ./s1
  turnwal compact ./s1 --json | jq .through_seq && jq -c .kind ./s1/snapshot-*.jsonl")]
    Compact {
        /// Journal directory.
        dir: PathBuf,
        /// Take over the writer lock if its holder is provably dead on this host.
        #[arg(long)]
        takeover: bool,
    },
    /// Import a session from another tool (Claude Code, Codex, OpenAI, Anthropic) into a new
    /// journal.
    #[command(after_help = "\
Formats: openai-chat (a JSON array of chat-completions messages, a request with `messages`, or
JSONL), openai-responses (Responses API items), anthropic (a Messages request or response),
claude-code (a session JSONL from ~/.claude/projects/...; its per-block lines are merged by
message id and its repeated usage counted once per request), codex (a Codex CLI rollout JSONL:
session_meta, response_item, event_msg token counts, compacted). `auto` detects the format.

Output: aligned key/value lines; with --json one object {dir, session, format,
source_session_id, events, messages, tool_calls, turns, last_seq, skipped:[{line, reason}],
ignored:{kind: count}}.

Exit codes: 0 imported, 1 bad input (the line is named and nothing is created; with
--skip-bad-lines the rest is imported and it still exits 1) or a format not detected, 2 error
(the directory exists and is not empty, I/O).

Examples:
  turnwal import ./s1 ~/.claude/projects/-home-me-app/7f3c2a91.jsonl
  turnwal import ./s2 --from codex ~/.codex/sessions/2025/10/16/rollout-1.jsonl --json
  turnwal import ./s3 --from openai-chat messages.json && turnwal export ./s3 --format anthropic")]
    Import {
        /// Journal directory to create (must not exist, or be empty).
        dir: PathBuf,
        /// Source format (`auto`: detect it).
        #[arg(long, value_name = "FORMAT", default_value = "auto",
              value_parser = clap::builder::PossibleValuesParser::new(import::FORMAT_NAMES))]
        from: String,
        /// Input file (`-` or absent: stdin).
        file: Option<PathBuf>,
        /// Import around bad lines (listed; exit 1) instead of refusing the input.
        #[arg(long)]
        skip_bad_lines: bool,
    },
    /// Start a new session from another one's state at a seq (resume-and-branch).
    ///
    /// Reads the parent only (a live writer may keep appending to it). The child records
    /// `fork_of: {session, seq}`, starts from a snapshot of the parent's state at SEQ and
    /// continues its seq numbering; it never depends on the parent's files.
    #[command(after_help = "\
Output: a sentence on a terminal; with --json, or whenever stdout is not a terminal, one JSON
object {\"session\", \"fork_of\": {\"session\", \"seq\"}, \"last_seq\"}.

Exit codes: 0 done, 1 refused (a seq of 0 or past the end, compacted past it, a corrupt parent,
an existing child), 2 error.

Examples:
  turnwal fork ./s1 ./s1-retry --at 42 && turnwal export ./s1-retry")]
    Fork {
        /// Parent journal directory.
        parent: PathBuf,
        /// The new session's directory (must not exist).
        child: PathBuf,
        /// The parent's seq to branch after.
        #[arg(long, value_name = "SEQ")]
        at: u64,
    },
    /// Write a realistic agent session in a child process, kill -9 it mid-turn, recover, report.
    ///
    /// The child appends prompts, streamed thinking and text, tool calls and usage; it is
    /// killed in the middle of a tool run. The journal is reopened, the recovery shown, the
    /// dangling tool call answered as aborted and the session compacted.
    #[command(after_help = "\
JSON (--json), one object instead of the story: {\"dir\", \"killed_at\": {\"acknowledged\",
\"durable\"}, \"recovery\": recovery report, \"lost\", \"session\": {\"id\", \"messages\",
\"open_turn\", \"tool_calls\"}, \"repaired\": {\"answered\": [{\"call_id\", \"name\", \"was\",
\"message_id\", \"seq\"}], \"ended_turns\": [{\"turn\", \"seq\"}]}, \"compaction\": compact's object}.

Exit codes: 0 nothing acknowledged was lost, 1 otherwise or on failure.

Examples:
  turnwal demo
  turnwal demo ./demo-session && turnwal inspect ./demo-session")]
    Demo {
        /// Where to put the demo journal (default: a new directory under the temp dir).
        dir: Option<PathBuf>,
    },
    /// The demo's writer process (internal).
    #[command(hide = true)]
    DemoWriter {
        /// Journal directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let code = match cli.command {
        // `--json` changes nothing: append always prints JSON Lines (docs/EVENTS.md).
        Command::Append {
            dir,
            sync,
            auto_compact,
            compact_records,
            takeover,
            max_line_bytes,
        } => append::run(
            &dir,
            sync.policy(),
            auto_compact,
            compact_records,
            takeover,
            max_line_bytes,
        ),
        Command::Inspect { dir } => inspect::run(&dir, json),
        Command::Stats { dir } => stats::run(&dir, json),
        Command::Export { dir, raw, format } => export::run(&dir, raw, format, json),
        Command::Verify { dir } => verify::run(&dir, json),
        Command::Repair {
            dir,
            salvage,
            dry_run,
            takeover,
        } => repair::run(&dir, salvage, dry_run, takeover, json),
        // `--json` changes nothing: tail always prints JSON Lines.
        Command::Tail { dir, follow, from } => tail::run(&dir, follow, from),
        Command::Compact { dir, takeover } => compact::run(&dir, takeover, json),
        Command::Fork { parent, child, at } => fork::run(&parent, &child, at, json),
        Command::Import {
            dir,
            from,
            file,
            skip_bad_lines,
        } => import::run(&dir, &from, file.as_deref(), json, skip_bad_lines),
        Command::Demo { dir } => demo::run(dir, json),
        Command::DemoWriter { dir } => demo::writer(&dir),
    };
    ExitCode::from(code)
}
