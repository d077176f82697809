//! An agent loop that journals everything it does with turnwal, survives a crash, and shuts down
//! cleanly on SIGTERM and SIGHUP.
//!
//! ```text
//! cargo run --example agent_loop -- /tmp/agent-session 5
//! cargo run --example agent_loop -- /tmp/agent-session 5 --crash-after 30   # aborts mid-turn
//! cargo run --example agent_loop -- /tmp/agent-session 5                    # resumes, finishes
//! cargo run --example agent_loop -- /tmp/agent-session 8 --step-delay-ms 200 &
//! kill -TERM $!                                                             # syncs, closes, exit 0
//! ```
//!
//! Arguments: the journal directory, the number of completed turns the session should reach
//! (running the same command again after a crash finishes the job), and
//! optionally `--crash-after N` (abort the process, like `kill -9`, right after this run's Nth
//! event) and `--step-delay-ms MS` (sleep after each event, so there is time to send a signal).
//!
//! Each turn: the user's message; a streamed model reply (text deltas, then a tool call whose
//! arguments arrive in pieces), its final form and its usage; a `tool_run started` made durable
//! *before* the tool has its side effect; the tool's result; a second streamed reply with its
//! usage; the turn's end. The model is fake and deterministic (no network), the tool is real: it
//! appends a line to `<journal dir>.notes`, so a crash between the two shows why a resumed
//! session must not simply run it again.
//!
//! On start, the journal is opened (this is where recovery after a crash happens), the recovery
//! report's status and resume state are printed, and a turn left interrupted is closed with
//! `repair_dangling_tool_calls()` before the loop goes on with the next turn.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use signal_hook::consts::signal::{SIGHUP, SIGTERM};
use turnwal::{Journal, Options, RecoveryReport, TurnState};

/// The model the fake provider claims to be, in `usage` events.
const MODEL: &str = "fake-model-1";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("agent_loop: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: agent_loop JOURNAL_DIR TURNS [--crash-after N] [--step-delay-ms MS]";

/// The command line.
struct Args {
    dir: PathBuf,
    turns: u64,
    crash_after: Option<u64>,
    step_delay: Duration,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut positional = Vec::new();
        let mut crash_after = None;
        let mut step_delay = Duration::ZERO;
        while let Some(a) = it.next() {
            let mut number = |flag: &str| -> Result<u64, String> {
                let v = it.next().ok_or(format!("{flag} needs a number"))?;
                v.parse()
                    .map_err(|_| format!("{flag}: not a number: {v:?}"))
            };
            match a.as_str() {
                "--crash-after" => crash_after = Some(number("--crash-after")?),
                "--step-delay-ms" => {
                    step_delay = Duration::from_millis(number("--step-delay-ms")?);
                }
                "-h" | "--help" => return Err("help".into()),
                _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
                _ => positional.push(a),
            }
        }
        let [dir, turns] = <[String; 2]>::try_from(positional)
            .map_err(|_| "expected JOURNAL_DIR and TURNS".to_string())?;
        let turns = turns
            .parse()
            .map_err(|_| format!("TURNS: not a number: {turns:?}"))?;
        Ok(Args {
            dir: dir.into(),
            turns,
            crash_after,
            step_delay,
        })
    }
}

/// Why the loop stopped before its last turn.
enum Stop {
    /// SIGTERM or SIGHUP arrived (the signal number).
    Signal(usize),
    /// The journal failed (disk full, I/O error, ...): nothing more can be recorded.
    Journal(turnwal::Error),
}

impl From<turnwal::Error> for Stop {
    fn from(e: turnwal::Error) -> Self {
        Stop::Journal(e)
    }
}

fn run(args: &Args) -> Result<(), String> {
    // 1. Signals first: from here on, SIGTERM or SIGHUP only sets this number, and the loop
    //    looks at it between two events (the handler itself must not touch the journal).
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [SIGTERM, SIGHUP] {
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }

    // 2. Open: creates the journal, or recovers it after a crash (a torn tail never
    //    acknowledged is cut; corruption is refused, changing nothing).
    let (journal, report) = Journal::open(&args.dir, Options::default())
        .map_err(|e| format!("cannot open {}: {e}", args.dir.display()))?;
    print_recovery(&report);

    // 3. A turn the last run left open (crash) or ended as interrupted (signal) may hold tool
    //    calls with no result, which every provider refuses. Answer them as aborted (this runs
    //    nothing again) and end the open turn; then go on with the next turn.
    let session = journal.session();
    let interrupted = session.open_turn.is_some()
        || session
            .turns
            .last()
            .is_some_and(|t| t.state == TurnState::Interrupted);
    if interrupted || !report.resume.pending_tool_calls.is_empty() {
        let repair = journal
            .repair_dangling_tool_calls()
            .map_err(|e| format!("repair failed: {e}"))?;
        for c in &repair.answered {
            println!(
                "repaired: tool call {} ({}) answered as aborted, it was {}",
                c.call_id, c.name, c.was
            );
        }
        for (turn, seq) in &repair.ended_turns {
            println!("repaired: turn {turn} ended as interrupted (seq {seq})");
        }
    }
    // Turns are numbered on: an interrupted turn keeps its number and is not run again (its
    // user message is in the history; a real agent might ask the user to repeat it).
    let session = journal.session();
    let first = session.turns.last().map_or(1, |t| t.turn + 1);
    let completed = session
        .turns
        .iter()
        .filter(|t| t.state == TurnState::Completed)
        .count() as u64;
    let todo = args.turns.saturating_sub(completed);
    if todo == 0 {
        println!("nothing to do: {completed} turns completed already");
    } else {
        println!("{completed} turns completed so far, running {todo} more from turn {first}");
    }

    // 4. The loop.
    let mut agent = Agent {
        journal: &journal,
        signal: &signal,
        notes: notes_path(&args.dir),
        events: 0,
        crash_after: args.crash_after,
        step_delay: args.step_delay,
        open_turn: None,
    };
    let mut outcome = Ok(());
    for turn in first..first + todo {
        if let Err(stop) = agent.turn(turn) {
            outcome = Err(stop);
            break;
        }
        println!("turn {turn} completed (seq {})", journal.last_seq());
    }
    let open_turn = agent.open_turn;

    // 5. Stop: on a signal, record why the open turn ends; then sync and close whatever
    //    happened, so every event appended is durable when the process exits.
    match outcome {
        Ok(()) => {
            let s = journal.session();
            let cost: Vec<String> = s
                .usage_total
                .cost
                .iter()
                .map(|(cur, amount)| format!("{amount:.6} {cur}"))
                .collect();
            let count = |state| s.turns.iter().filter(|t| t.state == state).count();
            println!(
                "session complete: {} turns completed, {} interrupted; {} messages, \
                 {} tool calls, {} model calls, {} input tokens ({} from cache), \
                 {} output tokens, cost {}",
                count(TurnState::Completed),
                count(TurnState::Interrupted),
                s.messages.len(),
                s.tool_calls.len(),
                s.usage_total.calls,
                s.usage_total.input,
                s.usage_total.cache_read,
                s.usage_total.output,
                cost.join(" + ")
            );
            let durable = journal.close().map_err(|e| format!("close failed: {e}"))?;
            println!("closed: durable through seq {durable}");
            Ok(())
        }
        Err(Stop::Signal(sig)) => {
            let name = if sig == SIGHUP as usize {
                "SIGHUP"
            } else {
                "SIGTERM"
            };
            if let Some(turn) = open_turn {
                let reason = format!("{name}: the agent was asked to stop");
                journal
                    .append_json(
                        &json!({"kind": "turn", "turn": turn,
                                "body": {"event": "interrupted", "reason": reason}})
                        .to_string(),
                    )
                    .map_err(|e| format!("cannot record the interruption: {e}"))?;
            }
            let last = journal.last_seq();
            let durable = journal.close().map_err(|e| format!("close failed: {e}"))?;
            let at = open_turn.map_or("between turns".into(), |t| format!("in turn {t}"));
            println!(
                "stopped by {name} {at} at seq {last}, durable through seq {durable}; \
                 run again to resume"
            );
            Ok(())
        }
        Err(Stop::Journal(e)) => {
            // A failed journal is poisoned: nothing more can be appended. Everything it
            // acknowledged is still recovered by the next open.
            drop(journal);
            Err(format!("journal failed, stopping: {e}"))
        }
    }
}

fn print_recovery(report: &RecoveryReport) {
    println!(
        "opened: status {:?}, action {:?}, {} events recovered, last seq {}",
        report.status, report.action, report.records, report.last_seq
    );
    if let Some(cut) = &report.cut {
        println!(
            "  torn tail cut: {} bytes never acknowledged, at {} offset {}",
            cut.bytes, cut.file, cut.offset
        );
    }
    let r = &report.resume;
    match r.open_turn {
        Some(t) => println!("  resume: turn {t} was left open (interrupted by a crash)"),
        None => println!("  resume: no open turn"),
    }
    for m in &r.partial_messages {
        println!(
            "  resume: message {} has only deltas (seq {}..={}), {}",
            m.id, m.first_seq, m.last_seq, m.status
        );
    }
    for c in &r.pending_tool_calls {
        println!(
            "  resume: tool call {} ({}) has no result: {}",
            c.call_id, c.name, c.state
        );
    }
}

/// The tool's side effects go to a file beside the journal (never inside it: the journal
/// directory holds the journal's files only).
fn notes_path(dir: &Path) -> PathBuf {
    let mut p = dir.as_os_str().to_owned();
    p.push(".notes");
    PathBuf::from(p)
}

/// The loop's state.
struct Agent<'a> {
    journal: &'a Journal,
    signal: &'a AtomicUsize,
    notes: PathBuf,
    /// Events appended by this run.
    events: u64,
    crash_after: Option<u64>,
    step_delay: Duration,
    /// The turn started and not yet ended.
    open_turn: Option<u64>,
}

impl Agent<'_> {
    /// Appends one event of `turn`: the single place the loop writes to the journal, so it is
    /// also where it notices a signal (before writing) and where `--crash-after` strikes
    /// (after writing). Returns the event's seq.
    fn emit(&mut self, turn: u64, kind: &str, body: Value) -> Result<u64, Stop> {
        let sig = self.signal.load(Ordering::SeqCst);
        if sig != 0 {
            return Err(Stop::Signal(sig));
        }
        let line = json!({"kind": kind, "turn": turn, "body": body}).to_string();
        // Returns once the event is in the kernel: a process crash from here on keeps it.
        // `SyncPolicy::Batch` (the default) makes it durable within a few milliseconds;
        // `append_durable` or `wait_durable` wait for that where it matters.
        let seq = self.journal.append_json(&line)?;
        self.events += 1;
        if self.crash_after == Some(self.events) {
            eprintln!(
                "agent_loop: --crash-after {}: aborting after seq {seq} ({kind})",
                self.events
            );
            let _ = std::io::stdout().flush();
            std::process::abort();
        }
        if !self.step_delay.is_zero() {
            std::thread::sleep(self.step_delay);
        }
        Ok(seq)
    }

    /// One turn of the conversation.
    fn turn(&mut self, turn: u64) -> Result<(), Stop> {
        self.emit(turn, "turn", json!({"event": "started"}))?;
        self.open_turn = Some(turn);
        let task = format!("Note down that step {turn} is done, then confirm.");
        self.emit(
            turn,
            "message",
            json!({"id": format!("u{turn}"), "role": "user",
                   "parts": [{"type": "text", "text": task}]}),
        )?;

        // First model call: it answers with text and a tool call.
        let reply = self.model_call(turn, 1, &format!("a{turn}-1"))?;
        for (call_id, name, arguments) in reply {
            // The ledger entry is made durable *before* the side effect: if the process dies
            // while the tool runs, resume reports the call as `unknown` (it may have had its
            // effect), never as `not_started` (safe to run again).
            self.emit(
                turn,
                "tool_run",
                json!({"call_id": call_id, "event": "started"}),
            )?;
            self.journal.sync()?;
            let (content, is_error) = match run_tool(&self.notes, &call_id, &name, &arguments) {
                Ok(out) => (out, false),
                Err(e) => (e, true),
            };
            self.emit(
                turn,
                "message",
                json!({"id": format!("t{turn}-{call_id}"), "role": "tool",
                       "parts": [{"type": "tool_result", "call_id": call_id,
                                  "content": content, "is_error": is_error}]}),
            )?;
        }

        // Second model call: it reads the tool result and answers.
        self.model_call(turn, 2, &format!("a{turn}-2"))?;

        let seq = self.emit(turn, "turn", json!({"event": "completed"}))?;
        self.open_turn = None;
        // The turn is over: make sure it is durable before telling anyone.
        self.journal.wait_durable(seq)?;
        Ok(())
    }

    /// Streams one model reply into the journal: each chunk as a `delta` as it arrives, then
    /// the final `message` (which supersedes the deltas), then the call's `usage`. Returns the
    /// tool calls the reply asked for: (call id, name, arguments).
    fn model_call(
        &mut self,
        turn: u64,
        call: u32,
        message_id: &str,
    ) -> Result<Vec<(String, String, String)>, Stop> {
        let mut text = String::new();
        let mut calls: Vec<(String, String, String)> = Vec::new();
        let mut usage = None;
        for chunk in FakeModel::stream(turn, call) {
            match chunk {
                Chunk::Text(t) => {
                    self.emit(
                        turn,
                        "delta",
                        json!({"message_id": message_id, "index": 0, "type": "text", "text": t}),
                    )?;
                    text.push_str(&t);
                }
                Chunk::ToolCall { call_id, name } => {
                    // A tool call is one part of the message (index 1 here, after the text);
                    // its first delta names it, later ones carry argument pieces.
                    self.emit(
                        turn,
                        "delta",
                        json!({"message_id": message_id, "index": 1 + calls.len(),
                               "type": "tool_call", "call_id": call_id, "name": name}),
                    )?;
                    calls.push((call_id, name, String::new()));
                }
                Chunk::Arguments(piece) => {
                    self.emit(
                        turn,
                        "delta",
                        json!({"message_id": message_id, "index": calls.len(),
                               "type": "tool_call", "arguments": piece}),
                    )?;
                    if let Some(c) = calls.last_mut() {
                        c.2.push_str(&piece);
                    }
                }
                Chunk::Usage(u) => usage = Some(u),
            }
        }
        let mut parts = vec![json!({"type": "text", "text": text})];
        parts.extend(calls.iter().map(|(call_id, name, arguments)| {
            json!({"type": "tool_call", "call_id": call_id, "name": name, "arguments": arguments})
        }));
        self.emit(
            turn,
            "message",
            json!({"id": message_id, "role": "assistant", "parts": parts}),
        )?;
        if let Some(u) = usage {
            // One usage record per model call, keyed by `call_key`: a retry that reports the
            // same call again replaces it instead of counting it twice.
            self.emit(
                turn,
                "usage",
                json!({"call_key": format!("turn-{turn}-call-{call}"), "model": MODEL,
                       "input": {"total": u.input, "cache_read": u.cache_read,
                                 "cache_write": u.cache_write},
                       "output": {"total": u.output},
                       "cost": {"amount": u.cost(), "currency": "USD"}, "final": true}),
            )?;
        }
        Ok(calls)
    }
}

/// The tool: appends a note to a file. A real side effect, which is why its `tool_run started`
/// must be durable before it runs.
fn run_tool(notes: &Path, call_id: &str, name: &str, arguments: &str) -> Result<String, String> {
    if name != "append_note" {
        return Err(format!("unknown tool {name:?}"));
    }
    let args: Value = serde_json::from_str(arguments).map_err(|e| format!("bad arguments: {e}"))?;
    let note = args["note"].as_str().ok_or("bad arguments: no \"note\"")?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(notes)
        .map_err(|e| format!("cannot open {}: {e}", notes.display()))?;
    writeln!(f, "{call_id} {note}").map_err(|e| format!("cannot write: {e}"))?;
    Ok(format!("appended 1 line to {}", notes.display()))
}

/// What a streaming model API sends, reduced to what an agent journals.
enum Chunk {
    /// A piece of the reply's text.
    Text(String),
    /// A tool call begins.
    ToolCall { call_id: String, name: String },
    /// A piece of the current tool call's JSON arguments.
    Arguments(String),
    /// Token counts, at the end of the stream.
    Usage(Usage),
}

/// Token counts of one model call.
struct Usage {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

impl Usage {
    /// Dollars, at made-up prices per million tokens: input 3, cache read 0.3, cache write
    /// 3.75, output 15.
    fn cost(&self) -> f64 {
        let fresh = self.input - self.cache_read - self.cache_write;
        (fresh as f64 * 3.0
            + self.cache_read as f64 * 0.3
            + self.cache_write as f64 * 3.75
            + self.output as f64 * 15.0)
            / 1e6
    }
}

/// A deterministic stand-in for a streaming model API.
struct FakeModel;

impl FakeModel {
    /// The chunks of model call `call` (1 or 2) of `turn`.
    fn stream(turn: u64, call: u32) -> Vec<Chunk> {
        let context = 800 + 400 * turn + 150 * u64::from(call);
        let usage = Usage {
            input: context,
            cache_read: if turn == 1 && call == 1 {
                0
            } else {
                context - 300
            },
            cache_write: 120,
            output: 40 + 5 * turn,
        };
        if call == 1 {
            let args = json!({"note": format!("step {turn} is done")}).to_string();
            let (a, rest) = args.split_at(args.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            vec![
                Chunk::Text("I'll write".into()),
                Chunk::Text(" that down.".into()),
                Chunk::ToolCall {
                    call_id: format!("call_{turn}"),
                    name: "append_note".into(),
                },
                Chunk::Arguments(a.into()),
                Chunk::Arguments(b.into()),
                Chunk::Arguments(c.into()),
                Chunk::Usage(usage),
            ]
        } else {
            vec![
                Chunk::Text("Noted:".into()),
                Chunk::Text(format!(" step {turn} is")),
                Chunk::Text(" recorded.".into()),
                Chunk::Usage(usage),
            ]
        }
    }
}
