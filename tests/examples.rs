//! The examples (`examples/*.rs`) run as a new user would run them, and do what they say.
//!
//! - `agent_loop`: aborted mid-turn by `--crash-after` at several points (before the tool call
//!   streams, in the middle of its arguments, after its `tool_run started`, after its result),
//!   a second run resumes and completes; every event the aborted run appended is recovered, and
//!   every tool call has exactly one result, in the journal and in both provider shapes.
//!   SIGTERM and SIGHUP sent to a running loop: exit 0, everything it reported is durable,
//!   the turn it was in ends `interrupted` with the signal as its reason, and a later run
//!   finishes the session.
//! - `resume`: shows `unknown` and `not_started` calls, repairs them, prints both shapes with
//!   every call paired; a second run has nothing to repair.
//! - `crash_test_harness`: `0 violations` over more than 100 states; its `--buggy` harness is
//!   caught.
//!
//! Plain `cargo test` builds the examples before running tests, but `cargo test --test
//! examples` does not. So the first test to need them runs `cargo build --examples` (a no-op
//! when they are up to date) with the profile of this test binary, and takes each example
//! from where it lands: `target/<profile>/examples/<name>`, next to this test's
//! `target/<profile>/deps/`. The `sim` storage `crash_test_harness` uses needs no flag: the
//! package's dev-dependencies enable it for every example and test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use turnwal::provider::{anthropic, openai};
use turnwal::{Journal, Options, Session, Status, TurnState};

/// The path of example `name`, built and up to date.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/examples-<hash> -> target/<profile>
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let profile = profile_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let target_dir = profile_dir.parent().unwrap();
        // Cargo sets CARGO for the tests it runs; run by hand, the binary finds `cargo`.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--examples", "--target-dir"])
            .arg(target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "cargo build --examples failed: {status}");
        profile_dir.join("examples")
    });
    let path = dir.join(name);
    assert!(path.is_file(), "no example binary at {}", path.display());
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    let out = Command::new(example(name)).args(args).output().unwrap();
    eprintln!(
        "$ {name} {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The number right after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> u64 {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in output:\n{text}"));
    text[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in:\n{text}"))
}

fn read_only(dir: &Path) -> turnwal::ReadOnly {
    Journal::open_read_only(dir, &Options::default()).unwrap()
}

/// Per call id: (tool_call parts, tool_result parts) over every message body of the session.
fn calls_and_results(session: &Session) -> BTreeMap<String, (usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in &session.messages {
        let body: Value = serde_json::from_str(&m.body).unwrap();
        for part in body["parts"].as_array().into_iter().flatten() {
            let id = part["call_id"].as_str().unwrap_or_default().to_string();
            match part["type"].as_str() {
                Some("tool_call") => out.entry(id).or_default().0 += 1,
                Some("tool_result") => out.entry(id).or_default().1 += 1,
                _ => {}
            }
        }
    }
    out
}

/// Checks OpenAI chat messages: each tool call is followed, before the next non-tool message,
/// by exactly one `tool` message answering it, and no tool message answers anything else.
fn assert_openai_paired(messages: &[Value]) -> usize {
    let mut calls = 0;
    for (i, m) in messages.iter().enumerate() {
        match m["role"].as_str() {
            Some("assistant") => {
                let ids: Vec<&str> = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| c["id"].as_str().unwrap())
                    .collect();
                let answers: Vec<&str> = messages[i + 1..]
                    .iter()
                    .take_while(|n| n["role"] == "tool")
                    .map(|n| n["tool_call_id"].as_str().unwrap())
                    .collect();
                assert_eq!(answers, ids, "OpenAI: calls and results of message {i}");
                calls += ids.len();
            }
            Some("tool") => assert!(
                i > 0 && matches!(messages[i - 1]["role"].as_str(), Some("assistant" | "tool")),
                "OpenAI: a tool message not after its call: {m}"
            ),
            _ => {}
        }
    }
    calls
}

/// Checks Anthropic messages: roles alternate, and each `tool_use` is answered by exactly one
/// `tool_result` in the next (user) message, which answers nothing else.
fn assert_anthropic_paired(messages: &[Value]) -> usize {
    let mut calls = 0;
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            assert_ne!(
                m["role"],
                messages[i - 1]["role"],
                "Anthropic: roles alternate"
            );
        }
        let blocks = |v: &Value, ty: &str, key: &str| -> Vec<String> {
            v["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b["type"] == ty)
                .map(|b| b[key].as_str().unwrap().to_string())
                .collect()
        };
        let uses = blocks(m, "tool_use", "id");
        let next = messages.get(i + 1).cloned().unwrap_or(Value::Null);
        assert_eq!(
            blocks(&next, "tool_result", "tool_use_id"),
            uses,
            "Anthropic: calls of message {i} and results in the next"
        );
        calls += uses.len();
    }
    calls
}

/// Every tool call of the session has exactly one result: in the journal and in both shapes.
/// Returns the number of calls.
fn assert_every_call_answered_once(session: &Session) -> usize {
    let pairs = calls_and_results(session);
    for (id, (calls, results)) in &pairs {
        assert_eq!((*calls, *results), (1, 1), "call {id}: (calls, results)");
    }
    let chat = openai::chat_messages(session).unwrap();
    let request = anthropic::messages(session).unwrap();
    assert_eq!(assert_openai_paired(&chat), pairs.len());
    assert_eq!(assert_anthropic_paired(&request.messages), pairs.len());
    pairs.len()
}

#[test]
fn agent_loop_aborted_mid_turn_resumes_with_every_call_answered_once() {
    // Turn 1 is events 1-18 of the run; in turn 2: 20 the user message, 23 the tool call's
    // first delta, 25 a piece of its arguments, 29 `tool_run started`, 30 the tool result.
    for (crash_after, state) in [
        (20, None),
        (23, Some("not_started")),
        (25, Some("not_started")),
        (29, Some("unknown")),
        (30, None),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("session");
        let d = dir.to_str().unwrap();
        let out = run(
            "agent_loop",
            &[d, "3", "--crash-after", &crash_after.to_string()],
        );
        assert_eq!(
            out.status.signal(),
            Some(6),
            "--crash-after {crash_after}: aborted (SIGABRT)"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let acked = number_after(&stderr, "aborting after seq ");
        assert!(stdout(&out).contains("turn 1 completed"));
        // Everything the aborted run appended is there (a process crash loses nothing that
        // was appended), and turn 2 is open.
        let ro = read_only(&dir);
        assert_ne!(ro.report.status, Status::Corrupt);
        assert_eq!(ro.report.last_seq, acked, "--crash-after {crash_after}");
        assert_eq!(ro.session.open_turn, Some(2));
        let pending: Vec<_> = ro.report.resume.pending_tool_calls.iter().collect();
        match state {
            None => assert!(pending.is_empty(), "{pending:?}"),
            Some(s) => {
                assert_eq!(pending.len(), 1, "{pending:?}");
                assert_eq!(
                    (pending[0].call_id.as_str(), pending[0].state),
                    ("call_2", s)
                );
            }
        }

        let out = run("agent_loop", &[d, "3"]);
        assert!(out.status.success(), "the second run succeeds");
        let text = stdout(&out);
        assert!(text.contains("resume: turn 2 was left open"), "{text}");
        if let Some(s) = state {
            assert!(
                text.contains(&format!(
                    "repaired: tool call call_2 (append_note) answered as aborted, it was {s}"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("repaired: turn 2 ended as interrupted"),
            "{text}"
        );
        assert!(
            text.contains("session complete: 3 turns completed, 1 interrupted"),
            "{text}"
        );

        let ro = read_only(&dir);
        assert_eq!(ro.report.status, Status::Clean);
        assert_eq!(ro.session.open_turn, None);
        let states: Vec<_> = ro.session.turns.iter().map(|t| (t.turn, t.state)).collect();
        assert_eq!(
            states,
            [
                (1, TurnState::Completed),
                (2, TurnState::Interrupted),
                (3, TurnState::Completed),
                (4, TurnState::Completed),
            ]
        );
        let calls = assert_every_call_answered_once(&ro.session);
        // Turn 2's call exists once its first delta is written.
        assert_eq!(calls, if crash_after < 23 { 3 } else { 4 });
        // The tool ran at most once per call, and never for the aborted one.
        let notes = std::fs::read_to_string(format!("{d}.notes")).unwrap();
        let ran: Vec<&str> = notes.lines().filter_map(|l| l.split(' ').next()).collect();
        let expect: &[&str] = if crash_after == 30 {
            &["call_1", "call_2", "call_3", "call_4"]
        } else {
            &["call_1", "call_3", "call_4"]
        };
        assert_eq!(ran, expect, "--crash-after {crash_after}");
    }
}

/// Starts `agent_loop DIR TURNS --step-delay-ms 15`, waits until it reports `turn N
/// completed` lines `after` times, sends `signal`, and returns (exit status, stdout).
fn signal_agent_loop(dir: &str, turns: u64, after: usize, signal: &str) -> (i32, String) {
    let mut child = Command::new(example("agent_loop"))
        .args([dir, &turns.to_string(), "--step-delay-ms", "15"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let mut completed = 0;
    let start = Instant::now();
    while completed < after {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended early:\n{text}"
        );
        completed += usize::from(line.contains(" completed (seq "));
        text.push_str(&line);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "too slow:\n{text}"
        );
    }
    // Mid-turn: a few events into the next turn.
    std::thread::sleep(Duration::from_millis(100));
    let pid = child.id().to_string();
    let kill = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(kill.success());
    reader.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    eprintln!("$ agent_loop {dir} {turns} (then kill {signal})\n{text}");
    (status.code().unwrap_or(-1), text)
}

/// Every `turn N completed (seq S)` line the loop printed is in the journal, as printed.
fn assert_reported_turns_present(ro: &turnwal::ReadOnly, text: &str) {
    for line in text.lines().filter(|l| l.contains(" completed (seq ")) {
        let turn = number_after(line, "turn ");
        let seq = number_after(line, "(seq ");
        let t = ro.session.turns.iter().find(|t| t.turn == turn).unwrap();
        assert_eq!(
            (t.state, t.ended_seq),
            (TurnState::Completed, Some(seq)),
            "{line}"
        );
    }
}

#[test]
fn sigterm_and_sighup_make_agent_loop_sync_close_and_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("session");
    let d = dir.to_str().unwrap();
    let mut interrupted = Vec::new();
    for (signal, name, after) in [("-TERM", "SIGTERM", 1), ("-HUP", "SIGHUP", 2)] {
        let (code, text) = signal_agent_loop(d, 50, after, signal);
        assert_eq!(code, 0, "{name}: exit 0\n{text}");
        let seq = number_after(&text, " at seq ");
        let durable = number_after(&text, "durable through seq ");
        assert_eq!(durable, seq, "{name}: everything durable on exit");
        let ro = read_only(&dir);
        assert_eq!(ro.report.status, Status::Clean, "{name}: closed cleanly");
        assert_eq!(ro.report.last_seq, seq, "{name}");
        assert_reported_turns_present(&ro, &text);
        assert_eq!(ro.session.open_turn, None);
        // The signal lands mid-turn (or, on a very slow machine, between two turns).
        if text.contains(&format!("stopped by {name} between turns")) {
            continue;
        }
        let turn = number_after(&text, &format!("stopped by {name} in turn "));
        let t = ro.session.turns.iter().find(|t| t.turn == turn).unwrap();
        assert_eq!(t.state, TurnState::Interrupted, "{name}");
        assert!(
            t.reason.as_deref().unwrap_or_default().starts_with(name),
            "{name}: {:?}",
            t.reason
        );
        interrupted.push(turn);
    }
    // A run without a signal repairs what the signals left and finishes.
    let completed_before = read_only(&dir)
        .session
        .turns
        .iter()
        .filter(|t| t.state == TurnState::Completed)
        .count() as u64;
    let target = completed_before + 2;
    let out = run("agent_loop", &[d, &target.to_string()]);
    assert!(out.status.success());
    let text = stdout(&out);
    let want = format!(
        "session complete: {target} turns completed, {} interrupted",
        interrupted.len()
    );
    assert!(text.contains(&want), "{want:?} not in:\n{text}");
    let ro = read_only(&dir);
    for turn in interrupted {
        let t = ro.session.turns.iter().find(|t| t.turn == turn).unwrap();
        assert_eq!(t.state, TurnState::Interrupted);
    }
    assert_every_call_answered_once(&ro.session);
}

/// The JSON document printed after `header`, up to the next `== ` line or the end.
fn json_after(text: &str, header: &str) -> Value {
    let start = text
        .find(header)
        .unwrap_or_else(|| panic!("{header:?} not in:\n{text}"))
        + header.len();
    let rest = &text[start..];
    let end = rest.find("\n== ").unwrap_or(rest.len());
    serde_json::from_str(&rest[..end]).unwrap()
}

#[test]
fn resume_repairs_and_prints_both_shapes_with_every_call_paired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("crashed");
    let d = dir.to_str().unwrap();
    let out = run("resume", &["--demo", d]);
    assert!(out.status.success());
    let text = stdout(&out);
    for want in [
        "open turn: 2",
        "partial message: a4",
        "pending tool call: call_rm rm (in message a3): unknown",
        "pending tool call: call_stat stat (in message a3): not_started",
        "repair: call_rm answered as aborted (it was unknown)",
        "repair: call_stat answered as aborted (it was not_started)",
        "repair: turn 2 ended as interrupted",
        "repair again: nothing to do (idempotent)",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let chat = json_after(&text, "== OpenAI chat completions: messages\n");
    assert_eq!(assert_openai_paired(chat.as_array().unwrap()), 3);
    let request = json_after(&text, "== Anthropic Messages: system and messages\n");
    assert_eq!(request["system"], "You are a careful ops agent.");
    assert_eq!(
        assert_anthropic_paired(request["messages"].as_array().unwrap()),
        3
    );
    let aborted = &request["messages"][6]["content"];
    assert_eq!(aborted[0]["tool_use_id"], "call_rm");
    assert_eq!(aborted[0]["is_error"], true);
    assert!(
        aborted[0]["content"]
            .as_str()
            .unwrap()
            .contains("may have had its effect")
    );

    // Run again: nothing left to repair, the same conversation.
    let again = run("resume", &[d]);
    assert!(again.status.success());
    let text2 = stdout(&again);
    assert!(text2.contains("open turn: none"), "{text2}");
    assert!(text2.contains("repair: nothing dangled"), "{text2}");
    assert_eq!(
        json_after(&text2, "== OpenAI chat completions: messages\n"),
        chat
    );

    // On a journal the agent loop left with a tool call cut mid-arguments.
    let dir = tmp.path().join("agent");
    let d = dir.to_str().unwrap();
    let out = run("agent_loop", &[d, "3", "--crash-after", "25"]);
    assert_eq!(out.status.signal(), Some(6));
    let out = run("resume", &[d]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("partial message: a2-1"), "{text}");
    assert!(text.contains("repair: call_2 answered as aborted (it was not_started)"));
    let chat = json_after(&text, "== OpenAI chat completions: messages\n");
    assert_eq!(assert_openai_paired(chat.as_array().unwrap()), 2);
    let request = json_after(&text, "== Anthropic Messages: system and messages\n");
    assert_eq!(
        assert_anthropic_paired(request["messages"].as_array().unwrap()),
        2
    );
}

#[test]
fn crash_test_harness_checks_over_100_states_and_catches_the_buggy_harness() {
    let out = run("crash_test_harness", &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains(" states checked, 0 violations"), "{text}");
    let line = text.lines().last().unwrap();
    let states = number_after(&format!(" {line}"), " ");
    assert!(states > 100, "{line}");

    let out = run("crash_test_harness", &["--buggy"]);
    assert!(!out.status.success(), "the buggy harness fails");
    let text = stdout(&out);
    assert!(text.contains("VIOLATION: recovered through seq"), "{text}");
    let line = text.lines().last().unwrap();
    let violations = number_after(line, "states checked, ");
    assert!(violations > 0, "{line}");
}
