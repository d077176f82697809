//! `turnwal fork` and `--takeover` through the command line: what an operator sees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use turnwal::{CompactionPolicy, Journal, Options, SyncPolicy};

fn turnwal(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails early (a held lock) exits without reading: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const LINES: &str = concat!(
    r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
    "\n",
    r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"hi"}]}}"#,
    "\n",
    r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"hello"}]}}"#,
    "\n",
);

#[test]
fn fork_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, c) = (tmp.path().join("p"), tmp.path().join("c"));
    assert!(turnwal(&["append", s(&p)], LINES).status.success());
    let out = turnwal(&["fork", s(&p), s(&c), "--at", "3"], "");
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["fork_of"]["seq"], 3);
    assert_eq!(doc["last_seq"], 3);
    let export = turnwal(&["export", s(&c)], "");
    let text = String::from_utf8(export.stdout).unwrap();
    assert!(
        text.contains("\"u1\"") && !text.contains("\"a1\""),
        "{text}"
    );
    assert!(text.contains("fork_of"), "{text}");
    // A seq past the parent's end is refused (exit 1) and creates nothing.
    let c2 = tmp.path().join("c2");
    let out = turnwal(&["fork", s(&p), s(&c2), "--at", "99"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at_seq"));
    assert!(!c2.exists());
}

/// A writer lock held by a live process is never taken over; one whose recorded holder is
/// provably dead (a process that has exited, on this host and boot) is, with `--takeover`
/// only.
#[test]
fn takeover_only_of_a_provably_dead_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let opts = Options {
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    };
    // This test process holds the lock.
    let (held, _) = Journal::open(&dir, opts).unwrap();
    let me = std::process::id().to_string();
    let out = turnwal(&["append", s(&dir)], LINES);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!("pid {me}")),
        "the error names the holder: {err}"
    );
    let out = turnwal(&["append", s(&dir), "--takeover"], LINES);
    assert!(!out.status.success(), "a live holder is never taken over");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("alive"), "{err}");

    // The record now names a process that has exited (the lock itself is still held, as by a
    // forgotten child that inherited the descriptor).
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let lock = dir.join("LOCK");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    record["pid"] = dead_pid.into();
    std::fs::write(&lock, format!("{record}\n")).unwrap();
    let out = turnwal(&["append", s(&dir)], LINES);
    assert!(!out.status.success(), "no takeover unless asked");
    let out = turnwal(&["append", s(&dir), "--takeover"], LINES);
    assert!(out.status.success(), "{out:?}");
    let record: Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    assert_ne!(record["pid"], dead_pid, "the new holder recorded itself");
    drop(held);
    let ro = Journal::open_read_only(&dir, &Options::default()).unwrap();
    assert_eq!(
        ro.session.messages.len(),
        2,
        "the taken-over writer appended"
    );
}
