//! The command-line contract of EVENTS.md, and a real `kill -9` of `turnwal append`.
//!
//! The story: an agent harness pipes events into `turnwal append` and treats each
//! `{"durable_through": N}` line as a promise. The process is then killed with SIGKILL at a random
//! moment, possibly mid-write. Every event up to the last promise must come back, as a contiguous
//! prefix with nothing invented.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// SIGKILL `turnwal append` after a random number of acknowledgements; every acknowledged event
/// must be recovered. Big events make torn writes likely. Knob: TURNWAL_KILL_CYCLES.
#[test]
fn kill_9_of_append_loses_no_acknowledged_event() {
    let cycles: u64 = std::env::var("TURNWAL_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for cycle in 0..cycles {
        let dir = tmp.path().join(format!("c{cycle}"));
        let sync = ["always", "batch", "never"][(cycle % 3) as usize];
        let mut child = turnwal()
            .args(["append", dir.to_str().unwrap(), "--sync", sync])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let feeder = std::thread::spawn(move || {
            for i in 0..5000 {
                let size = if i % 10 == 9 { 256 << 10 } else { 300 };
                if stdin
                    .write_all((message(i, size) + "\n").as_bytes())
                    .is_err()
                {
                    break;
                }
            }
        });
        // `never` prints only at the end: kill it blind, after a random delay.
        let wanted_acks = if sync == "never" { 0 } else { 1 + next() % 6 };
        let mut acked = 0u64;
        let mut seen = 0;
        let lines = BufReader::new(stdout).lines();
        if wanted_acks == 0 {
            std::thread::sleep(Duration::from_millis(5 + next() % 50));
        }
        for line in lines.take_while(|_| wanted_acks > 0) {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            acked = v["durable_through"].as_u64().unwrap();
            seen += 1;
            if seen >= wanted_acks {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(next() % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = feeder.join();
        // A blind kill can land before the first segment exists: then nothing was acknowledged.
        let has_segment = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".twl"))
            })
            .unwrap_or(false);
        let events = if has_segment {
            let out = turnwal()
                .args(["verify", "--json"])
                .arg(&dir)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "cycle {cycle}: {report}");
            export_raw(&dir)
        } else {
            assert_eq!(acked, 0, "cycle {cycle}: acknowledged without a segment");
            Vec::new()
        };
        assert!(
            events.len() as u64 >= acked,
            "cycle {cycle} ({sync}): acknowledged {acked}, recovered {}",
            events.len()
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["seq"], i as u64 + 1, "cycle {cycle}: contiguous prefix");
            if i > 0 {
                assert_eq!(
                    e["body"]["id"],
                    format!("m{}", i - 1),
                    "cycle {cycle}: nothing invented, in order"
                );
            }
        }
        // And the journal opens for writing again, continuing after the prefix.
        let out = run_with_stdin(
            &["append", dir.to_str().unwrap()],
            &(message(99_999, 5) + "\n"),
        );
        assert!(
            out.status.success(),
            "cycle {cycle}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A kill between creating the first segment and writing its session event leaves no
        // event; reopening writes the session event first.
        assert_eq!(
            export_raw(&dir).len(),
            events.len().max(1) + 1,
            "cycle {cycle}"
        );
    }
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
