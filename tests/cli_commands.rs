//! The command line for people and scripts: `inspect` and `stats` (text and `--json`, numbers
//! checked on a journal with a snapshot, a torn tail, a pending tool call and two models),
//! `export --format openai|anthropic`, no colour in pipes or with `NO_COLOR`, `--json` on every
//! command, and an example in every command's `--help`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn turnwal(args: &[&str], stdin: &str) -> Output {
    turnwal_env(args, stdin, &[])
}

fn turnwal_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that does not read stdin may exit first: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn one_json(out: &Output) -> Value {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Turn 1 (answered tool call, usage of `claude-sonnet` reported twice under one call key),
/// compacted into a snapshot through seq 11.
const TURN_1: &[&str] = &[
    r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
    r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"list files"}]}}"#,
    r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"Let me look."},{"type":"tool_call","call_id":"c0","name":"ls","arguments":"{}"}]}}"#,
    r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c0","event":"started"}}"#,
    r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c0","event":"finished"}}"#,
    r#"{"kind":"message","turn":1,"body":{"id":"r1","role":"tool","parts":[{"type":"tool_result","call_id":"c0","content":"a b"}]}}"#,
    r#"{"kind":"usage","turn":1,"body":{"call_key":"k1","model":"claude-sonnet","input":{"total":1000,"cache_read":600,"cache_write":100},"output":{"total":200,"reasoning":50},"cost":{"amount":0.01,"currency":"USD"}}}"#,
    r#"{"kind":"usage","turn":1,"body":{"call_key":"k1","model":"claude-sonnet","input":{"total":1200,"cache_read":700,"cache_write":100},"output":{"total":250,"reasoning":60},"cost":{"amount":0.012,"currency":"USD"},"final":true}}"#,
    r#"{"kind":"message","turn":1,"body":{"id":"a2","role":"assistant","parts":[{"type":"text","text":"Two files."}]}}"#,
    r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#,
];

/// Turn 2, cut by a crash: `c1` started and unanswered (unknown), `c2` never started, a
/// second model, a message still streaming (seqs 12..18).
const TURN_2: &[&str] = &[
    r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
    r#"{"kind":"message","turn":2,"body":{"id":"u2","role":"user","parts":[{"type":"text","text":"delete b"}]}}"#,
    r#"{"kind":"message","turn":2,"body":{"id":"a3","role":"assistant","parts":[{"type":"tool_call","call_id":"c1","name":"rm","arguments":"{\"path\":\"b\"}"},{"type":"tool_call","call_id":"c2","name":"ls","arguments":"{}"}]}}"#,
    r#"{"kind":"tool_run","turn":2,"body":{"call_id":"c1","event":"started"}}"#,
    r#"{"kind":"usage","turn":2,"body":{"call_key":"k2","model":"gpt-5","input":{"total":500},"output":{"total":40},"cost":{"amount":0.002,"currency":"USD"}}}"#,
    r#"{"kind":"usage","turn":2,"body":{"call_key":"k3","model":"claude-sonnet","input":{"total":300},"output":{"total":30},"cost":{"amount":0.003,"currency":"USD"}}}"#,
    r#"{"kind":"delta","turn":2,"body":{"message_id":"a4","index":0,"type":"text","text":"Removing"}}"#,
];

fn lines(events: &[&str]) -> String {
    events.iter().map(|l| format!("{l}\n")).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "twl"))
        .collect();
    v.sort();
    v
}

/// The journal of the tests: turn 1 compacted, turn 2 after it, then garbage after the last
/// frame (a torn tail a writer would cut).
fn journal(dir: &Path) {
    ok(turnwal(
        &["append", s(dir), "--sync", "never"],
        &lines(TURN_1),
    ));
    ok(turnwal(&["compact", s(dir)], ""));
    ok(turnwal(
        &["append", s(dir), "--sync", "never"],
        &lines(TURN_2),
    ));
    let last = segments(dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = (bytes.iter().rposition(|&b| b != 0).unwrap() + 1).next_multiple_of(8);
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_at(&[0xCD; 40], end as u64).unwrap();
}

/// The whitespace-separated fields of the first line of `text` whose first field is `first`.
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first:?} in\n{text}"))
}

/// The lines after the heading that starts with `heading`, up to the next blank line.
fn section(text: &str, heading: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn stats_counts_turns_messages_tool_calls_and_usage_per_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    journal(&dir);

    let v = one_json(&turnwal(&["stats", s(&dir), "--json"], ""));
    assert_eq!(v["status"], "torn_tail");
    assert_eq!(v["last_seq"], 18);
    assert_eq!(
        v["turns"],
        json!({"count": 2, "open": 1, "completed": 1, "interrupted": 0, "aborted": 0, "failed": 0})
    );
    assert_eq!(
        v["messages"],
        json!({
            "count": 7,
            "by_role": {"system": 0, "developer": 0, "user": 2, "assistant": 4, "tool": 1},
            "complete": 6, "partial": 0, "interrupted": 1, "rewound": 0
        })
    );
    assert_eq!(
        v["tool_calls"],
        json!({
            "count": 3, "answered": 1, "not_started": 1, "unknown": 1,
            "by_name": {
                "ls": {"count": 2, "answered": 1, "not_started": 1, "unknown": 0},
                "rm": {"count": 1, "answered": 0, "not_started": 0, "unknown": 1}
            }
        })
    );
    // k1 was reported twice: only its latest record counts.
    let sonnet = &v["usage"]["by_model"]["claude-sonnet"];
    let cost = |u: &Value| u["cost"]["USD"].as_f64().unwrap();
    for (field, n) in [
        ("calls", 2),
        ("input", 1500),
        ("cache_read", 700),
        ("cache_write", 100),
        ("output", 280),
        ("reasoning", 60),
    ] {
        assert_eq!(sonnet[field], n, "claude-sonnet {field}: {v}");
    }
    assert!((cost(sonnet) - 0.015).abs() < 1e-9, "{sonnet}");
    let gpt = &v["usage"]["by_model"]["gpt-5"];
    assert_eq!(
        (gpt["calls"].as_u64(), gpt["input"].as_u64()),
        (Some(1), Some(500))
    );
    assert_eq!(
        (gpt["output"].as_u64(), gpt["reasoning"].as_u64()),
        (Some(40), Some(0))
    );
    assert!((cost(gpt) - 0.002).abs() < 1e-9, "{gpt}");
    let total = &v["usage"]["total"];
    for (field, n) in [
        ("calls", 3),
        ("input", 2000),
        ("cache_read", 700),
        ("cache_write", 100),
        ("output", 320),
        ("reasoning", 60),
    ] {
        assert_eq!(total[field], n, "total {field}: {v}");
    }
    assert!((cost(total) - 0.017).abs() < 1e-9, "{total}");

    // The same numbers in the tables.
    let text = ok(turnwal(&["stats", s(&dir)], ""));
    assert_eq!(
        row(&text, "claude-sonnet"),
        [
            "claude-sonnet",
            "2",
            "1500",
            "700",
            "100",
            "280",
            "60",
            "0.015",
            "USD"
        ],
        "{text}"
    );
    assert_eq!(
        row(&text, "gpt-5"),
        ["gpt-5", "1", "500", "0", "0", "40", "0", "0.002", "USD"]
    );
    assert_eq!(row(&text, "rm"), ["rm", "1", "0", "0", "1"]);
    assert_eq!(row(&text, "ls"), ["ls", "2", "1", "1", "0"]);
    let messages = section(&text, "Messages");
    assert_eq!(
        row(&messages, "interrupted")[1],
        "1",
        "a message cut by the crash"
    );
    assert_eq!(row(&section(&text, "Turns"), "open")[1], "1");
    assert_eq!(row(&text, "assistant"), ["assistant", "4"]);
    assert!(
        text.contains("Turns (2)") && text.contains("Tool calls (3)"),
        "{text}"
    );
    // Columns line up: the last column (cost) is right-aligned, so every line of the usage
    // table, header included, has the same width.
    let usage = section(&text, "Usage");
    let widths: Vec<usize> = usage.lines().map(|l| l.chars().count()).collect();
    assert_eq!(widths.len(), 4, "{usage}");
    assert!(widths.iter().all(|&w| w == widths[0]), "{usage}");
}

#[test]
fn inspect_shows_segments_snapshot_watermarks_and_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    journal(&dir);

    let out = turnwal(&["inspect", s(&dir), "--json"], "");
    assert_eq!(out.status.code(), Some(0), "a torn tail is not an error");
    let v = one_json(&out);
    assert_eq!(v["status"], "torn_tail");
    assert_eq!(v["last_seq"], 18);
    assert_eq!(
        v["records"].as_u64(),
        Some(v["snapshots"][0]["records"].as_u64().unwrap() + 7)
    );
    assert_eq!(v["session"]["id"].as_str().unwrap().len(), 32);
    assert!(v["session"]["created"].as_str().unwrap().ends_with('Z'));
    let snaps = v["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{v}");
    assert_eq!(snaps[0]["file"], "snapshot-00000000000000000011.jsonl");
    assert_eq!(snaps[0]["through_seq"], 11);
    assert_eq!(snaps[0]["state"], "in_use");
    assert!(snaps[0]["bytes"].as_u64().unwrap() > 0);
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 1, "compaction left one fresh segment: {v}");
    let seg = &segs[0];
    assert_eq!(seg["state"], "active");
    assert_eq!(
        (seg["first_seq"].as_u64(), seg["last_seq"].as_u64()),
        (Some(12), Some(18))
    );
    assert_eq!(seg["records"], 7);
    assert_eq!(seg["stop"], "damaged");
    assert_eq!(seg["stop_offset"], seg["valid_end"]);
    assert_eq!(v["problems"][0]["kind"], "torn_tail");
    let w = &v["watermarks"];
    assert_eq!(w["snapshot_through"], 11);
    assert_eq!(w["last_seq"], 18);
    assert_eq!(
        w["durable_through"], 18,
        "no writer holds it: all valid is durable"
    );
    assert!(w["max_stated"].as_u64().unwrap() <= 18);
    assert_eq!(v["lock"]["held"], false);
    let holder = &v["lock"]["holder"];
    assert!(
        holder["pid"].as_u64().unwrap() > 0,
        "the last writer is recorded: {v}"
    );
    assert!(!holder["host"].as_str().unwrap().is_empty());
    assert_eq!(v["quarantine"], json!([]));

    let text = ok(turnwal(&["inspect", s(&dir)], ""));
    for must in [
        "torn_tail",
        "snapshot-00000000000000000011.jsonl",
        "in_use",
        "12..18",
        "active",
        "durable through",
        "free (last held by pid",
    ] {
        assert!(text.contains(must), "{must:?} missing in\n{text}");
    }
    let seg_row = row(&text, segs[0]["file"].as_str().unwrap()).join(" ");
    assert!(seg_row.contains(" 7 12..18 active "), "{seg_row}");

    // After a repair the torn tail is in a quarantine file, and the journal reads clean.
    ok(turnwal(&["repair", s(&dir)], ""));
    let v = one_json(&turnwal(&["inspect", s(&dir), "--json"], ""));
    assert_eq!(v["status"], "clean");
    let q = v["quarantine"].as_array().unwrap();
    assert_eq!(q.len(), 1, "{v}");
    assert!(q[0]["file"].as_str().unwrap().starts_with("quarantine-"));
    assert!(q[0]["bytes"].as_u64().unwrap() >= 40);
    let text = ok(turnwal(&["inspect", s(&dir)], ""));
    assert!(text.contains("a torn tail cut by recovery"), "{text}");

    // A held lock is shown with its holder, alive.
    let (held, _) = turnwal::Journal::open(&dir, turnwal::Options::default()).unwrap();
    let v = one_json(&turnwal(&["inspect", s(&dir), "--json"], ""));
    assert_eq!(v["lock"]["held"], true);
    assert_eq!(v["lock"]["holder"]["pid"], std::process::id());
    assert_eq!(v["lock"]["holder"]["liveness"], "alive");
    drop(held);

    let out = turnwal(&["inspect", s(&tmp.path().join("missing"))], "");
    assert_eq!(out.status.code(), Some(2));
    let out = turnwal(&["stats", s(&tmp.path().join("missing"))], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_as_openai_and_anthropic_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    journal(&dir);

    let out = turnwal(&["export", s(&dir), "--format", "openai"], "");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 tool call(s) have no result"), "{err}");
    assert!(err.contains("torn tail"), "{err}");
    let v = one_json(&out);
    let msgs = v.as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant",
            "assistant"
        ],
        "{v}"
    );
    assert_eq!(msgs[0]["content"], "list files");
    assert_eq!(msgs[1]["tool_calls"][0]["id"], "c0");
    assert_eq!(msgs[1]["tool_calls"][0]["function"]["name"], "ls");
    assert_eq!(
        msgs[2],
        json!({"role": "tool", "tool_call_id": "c0", "content": "a b"})
    );
    assert_eq!(msgs[5]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        msgs[6]["content"], "Removing",
        "the interrupted message keeps its text"
    );
    // --json prints the same document.
    assert_eq!(
        one_json(&turnwal(
            &["export", s(&dir), "--format", "openai", "--json"],
            ""
        )),
        v
    );

    let v = one_json(&turnwal(&["export", s(&dir), "--format", "anthropic"], ""));
    assert!(v.get("system").is_none(), "no system message: {v}");
    let msgs = v["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant"
        ],
        "{v}"
    );
    assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
    assert_eq!(msgs[1]["content"][1]["input"], json!({}));
    // The tool result is regrouped into the user message after the call.
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "c0");
    assert_eq!(msgs[2]["content"][0]["content"], "a b");
    assert_eq!(msgs[3]["content"][0]["text"], "Two files.");
    // Consecutive assistant messages (a3's calls, a4's text) are merged: roles alternate.
    let last = msgs[5]["content"].as_array().unwrap();
    assert_eq!(last.len(), 3, "{v}");

    // turnwal --json: the default JSONL as one array, line for line.
    let lines: Vec<Value> = ok(turnwal(&["export", s(&dir)], ""))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let array = one_json(&turnwal(&["export", s(&dir), "--json"], ""));
    assert_eq!(array, Value::Array(lines));
    let raw: Vec<Value> = ok(turnwal(&["export", s(&dir), "--raw"], ""))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let array = one_json(&turnwal(&["export", s(&dir), "--raw", "--json"], ""));
    assert_eq!(array, Value::Array(raw));

    let out = turnwal(&["export", s(&dir), "--raw", "--format", "openai"], "");
    assert_eq!(out.status.code(), Some(2), "--raw is turnwal's only");
    let out = turnwal(&["export", s(&dir), "--format", "xml"], "");
    assert_eq!(out.status.code(), Some(2));
}

/// A message body a provider shape cannot carry is an error naming the message and field.
#[test]
fn export_names_the_message_a_format_cannot_carry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    ok(turnwal(
        &["append", s(&dir)],
        concat!(
            r#"{"kind":"message","body":{"id":"x1","role":"assistant","parts":[{"type":"image","url":"https://example.invalid/a.png"}]}}"#,
            "\n"
        ),
    ));
    for format in ["openai", "anthropic"] {
        let out = turnwal(&["export", s(&dir), "--format", format], "");
        assert_eq!(out.status.code(), Some(1), "{format}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("\"x1\"") && err.contains("parts[0]"),
            "{format}: {err}"
        );
        assert!(out.stdout.is_empty(), "{format}: nothing printed");
    }
}

/// The human form of every command that has one: what runs in a pipe.
fn human_commands(dir: &Path, child: &Path) -> Vec<Vec<String>> {
    let d = s(dir).to_string();
    vec![
        vec!["inspect".into(), d.clone()],
        vec!["stats".into(), d.clone()],
        vec!["verify".into(), d.clone()],
        vec!["repair".into(), d.clone(), "--dry-run".into()],
        vec![
            "export".into(),
            d.clone(),
            "--format".into(),
            "openai".into(),
        ],
        vec![
            "fork".into(),
            d.clone(),
            s(child).into(),
            "--at".into(),
            "14".into(),
        ],
        vec!["--help".into()],
    ]
}

#[test]
fn no_colour_in_a_pipe_or_with_no_color() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    journal(&dir);
    for (i, env) in [vec![], vec![("NO_COLOR", "1")]].into_iter().enumerate() {
        for args in human_commands(&dir, &tmp.path().join(format!("child{i}"))) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = turnwal_env(&args, "", &env);
            assert!(out.status.code().is_some());
            assert!(
                !out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b),
                "{args:?} {env:?} printed an escape: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

/// On a terminal (a pty from `script`, where it exists), colour is on unless `NO_COLOR` is
/// set and not empty; `compact`, `repair` and `fork` print words instead of JSON.
#[test]
fn colour_and_words_only_on_a_terminal() {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script to give the command a terminal");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    journal(&dir);
    let bin = env!("CARGO_BIN_EXE_turnwal");
    let on_tty = |cmd: &str, no_color: Option<&str>| -> String {
        let mut c = Command::new(script);
        c.args(["-qec", &format!("{bin} {cmd}"), "/dev/null"]);
        match no_color {
            Some(v) => c.env("NO_COLOR", v),
            None => c.env_remove("NO_COLOR"),
        };
        let out = c.stdin(Stdio::null()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let inspect = format!("inspect {}", s(&dir));
    assert!(
        on_tty(&inspect, None).contains('\x1b'),
        "coloured on a terminal"
    );
    assert!(
        on_tty(&inspect, Some("")).contains('\x1b'),
        "an empty NO_COLOR is unset"
    );
    let plain = on_tty(&inspect, Some("1"));
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(plain.contains("Segments (1)"), "{plain}");

    let repair = on_tty(&format!("repair {} --dry-run", s(&dir)), Some("1"));
    assert!(repair.contains("would cut a torn tail of"), "{repair}");
    assert!(!repair.contains("\"report\""), "{repair}");
    let json = on_tty(&format!("repair {} --dry-run --json", s(&dir)), Some("1"));
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["dry_run"], true);
    let child = tmp.path().join("c");
    let fork = on_tty(
        &format!("fork {} {} --at 14", s(&dir), s(&child)),
        Some("1"),
    );
    assert!(fork.contains("forked") && fork.contains("seq 15"), "{fork}");
    let compact = on_tty(&format!("compact {}", s(&dir)), Some("1"));
    assert!(
        compact.contains("compacted through seq 18 into"),
        "{compact}"
    );
}

/// Every command takes `--json` and prints JSON: one document, or JSON Lines for the
/// streaming ones (`append`, `tail`, `export` without `--json`).
#[test]
fn every_command_accepts_json_and_prints_valid_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let d = s(&dir).to_string();
    let out = turnwal(&["append", &d, "--json"], &lines(TURN_1));
    let text = ok(out);
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["durable_through"].is_u64(), "{l}");
    }
    let child = tmp.path().join("c");
    let demo = tmp.path().join("demo");
    let single: Vec<Vec<&str>> = vec![
        vec!["inspect", &d],
        vec!["stats", &d],
        vec!["verify", &d],
        vec!["export", &d],
        vec!["export", &d, "--raw"],
        vec!["export", &d, "--format", "openai"],
        vec!["export", &d, "--format", "anthropic"],
        vec!["repair", &d],
        vec!["repair", &d, "--dry-run"],
        vec!["fork", &d, s(&child), "--at", "5"],
        vec!["compact", &d],
        vec!["demo", s(&demo)],
    ];
    for args in &single {
        let mut args = args.clone();
        args.push("--json");
        let out = turnwal(&args, "");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = one_json(&out);
        assert!(v.is_object() || v.is_array(), "{args:?}: {v}");
    }
    // --json before the command works too.
    let v = one_json(&turnwal(&["--json", "stats", &d], ""));
    assert_eq!(v["turns"]["completed"], 1);
    // The demo's object says nothing was lost.
    let v = one_json(&turnwal(
        &["demo", s(&tmp.path().join("demo2")), "--json"],
        "",
    ));
    assert_eq!(v["lost"], 0, "{v}");
    assert!(v["compaction"]["snapshot"].is_string(), "{v}");
    // Streams: every line is JSON.
    let text = ok(turnwal(&["tail", &d, "--json"], ""));
    assert!(text.lines().count() > 5);
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["seq"].is_u64(), "{l}");
    }
}

/// The subcommands `turnwal --help` lists.
fn subcommands() -> Vec<String> {
    let help = ok(turnwal(&["--help"], ""));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_help_has_an_example_and_the_top_one_the_exit_codes() {
    let top = ok(turnwal(&["--help"], ""));
    for must in ["Exit codes", "NO_COLOR", "--json", "Example"] {
        assert!(top.contains(must), "{must:?} missing in\n{top}");
    }
    let commands = subcommands();
    for must in [
        "append", "inspect", "stats", "export", "tail", "repair", "verify", "compact", "fork",
        "demo",
    ] {
        assert!(
            commands.iter().any(|c| c == must),
            "{must} not listed: {commands:?}"
        );
    }
    for c in &commands {
        let help = ok(turnwal(&[c, "--help"], ""));
        assert!(
            help.contains("Example"),
            "`turnwal {c} --help` has no example:\n{help}"
        );
        assert!(
            help.contains("--json"),
            "`turnwal {c} --help` lists no --json:\n{help}"
        );
        assert!(
            help.contains("Exit codes"),
            "`turnwal {c} --help` has no exit codes:\n{help}"
        );
    }
}
