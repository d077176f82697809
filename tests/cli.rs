//! The command-line contract of docs/EVENTS.md: `append` (every sync policy), `export --raw`,
//! `verify --json` exit codes, and the demo. The real `kill -9` of `turnwal append` is in
//! `tests/kill9.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::message;

fn turnwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turnwal"))
}

fn run_with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = turnwal()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn export_raw(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let out = turnwal()
        .args(["export", "--raw"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn append_then_export_raw_returns_every_event() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let lines = [
        r#"{"kind":"meta","body":{"title":"t","n":1}}"#.to_string(),
        r#"{"kind":"turn","turn":1,"ts":"2026-11-21T15:04:05.123Z","body":{"event":"started"}}"#.to_string(),
        message(1, 30),
        r#"{"kind":"x-custom","body":{"deep":{"a":[1,2,{"b":null}]},"u":"\u00e9\n"}}"#.to_string(),
        r#"{"kind":"usage","turn":1,"body":{"call_key":"c","model":"m","input":{"total":5},"output":{"total":7},"cost":{"amount":0.5,"currency":"USD"}}}"#.to_string(),
    ];
    for sync in ["always", "batch", "never"] {
        let d = dir.join(sync);
        let out = run_with_stdin(
            &["append", d.to_str().unwrap(), "--sync", sync],
            &(lines.join("\n") + "\n"),
        );
        assert!(
            out.status.success(),
            "{sync}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout.lines().last(),
            Some(r#"{"durable_through": 6}"#),
            "{sync}: {stdout}"
        );
        let events = export_raw(&d);
        assert_eq!(events.len(), lines.len() + 1);
        assert_eq!(events[0]["kind"], "session");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["seq"], i as u64 + 1, "seq contiguous from 1");
        }
        for (e, line) in events[1..].iter().zip(&lines) {
            let input: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(e["body"], input["body"], "bodies JSON-equal");
            assert_eq!(e["kind"], input["kind"]);
        }
        assert_eq!(events[2]["ts"], "2026-11-21T15:04:05.123Z");
        assert_eq!(events[2]["turn"], 1);
    }
}

#[test]
fn bad_line_exits_non_zero_naming_the_line_and_keeps_what_came_before() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    let input = format!(
        "{}\n{}\n{{\"kind\":\"message\",\"body\":{{\"role\":\"user\"}}}}\n{}\n",
        message(1, 5),
        message(2, 5),
        message(3, 5)
    );
    let out = run_with_stdin(&["append", d.to_str().unwrap(), "--sync", "never"], &input);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("body.id"), "{err}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().last(),
        Some(r#"{"durable_through": 3}"#)
    );
    assert_eq!(
        export_raw(&d).len(),
        3,
        "session + the two lines before the bad one"
    );
}

#[test]
fn verify_json_reports_clean_and_corrupt_with_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("s");
    let input: String = (0..20).map(|i| message(i, 40) + "\n").collect();
    assert!(
        run_with_stdin(&["append", d.to_str().unwrap(), "--sync", "always"], &input)
            .status
            .success()
    );
    let out = turnwal()
        .args(["verify", "--json"])
        .arg(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "clean");
    assert_eq!(v["last_seq"], 21);
    assert_eq!(v["records"], 21);
    assert_eq!(v["segments"], 1);
    assert_eq!(v["torn_bytes"], 0);
    assert_eq!(v["problems"], serde_json::json!([]));
    // Damage an early, acknowledged record.
    let seg = common::only_segment(&d);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let out = turnwal()
        .args(["verify", "--json"])
        .arg(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "corrupt");
    assert!(v["problems"][0]["offset"].as_u64().is_some());
    assert_eq!(
        std::fs::read(&seg).unwrap(),
        bytes,
        "verify changes nothing"
    );
    let out = turnwal()
        .args(["verify"])
        .arg(tmp.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_runs_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = turnwal()
        .arg("demo")
        .arg(tmp.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("acknowledged events lost: 0"), "{stdout}");
    assert!(stdout.contains("open turn     3"), "{stdout}");
    // Recovered from the writer's snapshot plus the segment after it, then compacted again.
    assert!(stdout.contains("snapshot      snapshot-"), "{stdout}");
    let snaps: Vec<_> = std::fs::read_dir(tmp.path().join("demo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
}

/// Every entry of `dir` with its bytes, length and modification time, and the directory's own
/// modification time: what a read-only command must leave exactly as it was.
fn full_state(
    dir: &std::path::Path,
) -> (
    Vec<(String, Vec<u8>, std::time::SystemTime)>,
    std::time::SystemTime,
) {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
                meta.modified().unwrap(),
            )
        })
        .collect();
    v.sort();
    (v, std::fs::metadata(dir).unwrap().modified().unwrap())
}

/// `verify` and `export` never change a byte, a file or a timestamp: not on a clean journal, not
/// on one with a torn tail a writer would cut, not on a corrupt one, not with a stray tmp file a
/// writer would remove, not on a compacted one.
#[test]
fn verify_and_export_never_change_a_byte_or_a_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: String = (0..40).map(|i| message(i, 200) + "\n").collect();
    let mut journals = Vec::new();
    for case in ["clean", "torn", "corrupt", "tmp", "compacted"] {
        let dir = tmp.path().join(case);
        let out = run_with_stdin(
            &["append", dir.to_str().unwrap(), "--sync", "never"],
            &lines,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seg = common::only_segment(&dir);
        let data = std::fs::read(&seg).unwrap();
        let end = data.iter().rposition(|&b| b != 0).unwrap() + 1;
        match case {
            // Garbage right after the last frame: a tail a writer's open would examine and cut.
            "torn" => {
                let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
                std::os::unix::fs::FileExt::write_at(&f, &[0xAB; 100], end as u64 + 8).unwrap();
            }
            // A flipped byte in the middle of the log.
            "corrupt" => {
                let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
                std::os::unix::fs::FileExt::write_at(&f, &[data[end / 2] ^ 0xFF], (end / 2) as u64)
                    .unwrap();
            }
            "tmp" => {
                std::fs::write(dir.join("segment-00000000000000000009.twl.tmp"), b"x").unwrap()
            }
            "compacted" => {
                let out = turnwal().arg("compact").arg(&dir).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            _ => {}
        }
        journals.push((case, dir));
    }
    // Let any later write show in the timestamps.
    std::thread::sleep(std::time::Duration::from_millis(20));
    for (case, dir) in &journals {
        let before = full_state(dir);
        for args in [
            vec!["verify"],
            vec!["verify", "--json"],
            vec!["export"],
            vec!["export", "--raw"],
        ] {
            let out = turnwal().args(&args).arg(dir).output().unwrap();
            assert!(out.status.code().is_some(), "{case} {args:?}");
            assert_eq!(
                full_state(dir),
                before,
                "{case}: {args:?} changed the journal"
            );
        }
    }
}
