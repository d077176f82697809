//! `turnwal compact` from outside: export is the same before and after, the snapshot parses
//! line by line with a plain JSON parser, covered segments are gone; and a real SIGKILL at each
//! named kill point of a compaction recovers the old or the new state, never less.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{agent_step, files_with_ext};

fn turnwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turnwal"))
}

fn run(args: &[&str], dir: &Path) -> Output {
    turnwal().args(args).arg(dir).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Feeds `input` to `turnwal append --sync never [extra] DIR` and waits for success.
fn append(dir: &Path, extra: &[&str], input: &str) {
    let mut child = turnwal()
        .args(["append", "--sync", "never"])
        .args(extra)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Appends agent steps `steps` through `turnwal append`.
fn session(dir: &Path, steps: std::ops::Range<usize>) {
    let input: String = steps.flat_map(agent_step).map(|l| l + "\n").collect();
    append(dir, &[], &input);
}

#[test]
fn export_is_the_same_before_and_after_compact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    session(&dir, 0..20);
    let export = ok(run(&["export"], &dir));
    let raw_before = ok(run(&["export", "--raw"], &dir));
    let segments_before = files_with_ext(&dir, ".twl");

    let out = ok(run(&["compact"], &dir));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let snapshot = report["snapshot"].as_str().unwrap().to_string();
    assert_eq!(
        ok(run(&["export"], &dir)),
        export,
        "same session, same bytes"
    );

    // The snapshot parses line by line with a plain JSON parser.
    let text = std::fs::read_to_string(dir.join(&snapshot)).unwrap();
    for (i, l) in text.lines().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        assert!(v.is_object());
    }
    // The segments it covers are gone; only the fresh active one is left.
    let segments_after = files_with_ext(&dir, ".twl");
    assert_eq!(segments_after.len(), 1);
    assert!(!segments_before.contains(&segments_after[0]));
    assert_eq!(
        report["removed_segments"].as_array().unwrap().len(),
        segments_before.len()
    );

    // --raw now prints what is stored: superseded events are folded away, the rest is equal.
    let raw_after = ok(run(&["export", "--raw"], &dir));
    let before: Vec<serde_json::Value> = raw_before
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let after: Vec<serde_json::Value> = raw_after
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(after.len() < before.len());
    for e in &after {
        if e["kind"] != "meta" {
            assert!(before.contains(e), "{e} was not stored before");
        }
    }

    // Appending goes on; verify is clean; a second compact replaces the snapshot.
    session(&dir, 20..25);
    let export2 = ok(run(&["export"], &dir));
    let v: serde_json::Value = serde_json::from_str(&ok(run(&["verify", "--json"], &dir))).unwrap();
    assert_eq!(v["status"], "clean");
    assert_eq!(v["snapshot"]["file"], snapshot.as_str());
    ok(run(&["compact"], &dir));
    assert_eq!(ok(run(&["export"], &dir)), export2);
    assert_eq!(files_with_ext(&dir, ".jsonl").len(), 1);

    // Nothing to do: exit 0, "skipped".
    let v: serde_json::Value = serde_json::from_str(ok(run(&["compact"], &dir)).trim()).unwrap();
    assert_eq!(v["skipped"], true);
}

#[test]
fn compact_of_a_missing_journal_fails_without_creating_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nope");
    let out = run(&["compact"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.exists());
}

/// Runs `turnwal compact DIR` with the kill point `point` set; it must die by SIGKILL.
fn compact_killed_at(dir: &Path, point: &str) {
    let out = turnwal()
        .arg("compact")
        .arg(dir)
        .env(turnwal_journal::killpoint::ENV, point)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{point}: not killed ({:?}, {})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real SIGKILL at every named kill point of `turnwal compact`.
#[test]
fn kill_9_at_each_compaction_step_recovers_old_or_new_state() {
    let mut states = std::collections::BTreeMap::new();
    let points = turnwal_journal::killpoint::POINTS
        .iter()
        .filter(|p| p.starts_with("compact:"));
    for point in points {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        session(&dir, 0..8);
        ok(run(&["compact"], &dir)); // an older snapshot, for step 5 to delete
        session(&dir, 8..16);
        let export = ok(run(&["export"], &dir));
        let old_snapshot = files_with_ext(&dir, ".jsonl");

        compact_killed_at(&dir, point);
        let state = if files_with_ext(&dir, ".jsonl") == old_snapshot {
            "old"
        } else {
            "new"
        };
        states.insert(*point, state);
        // Readers see the same session at once, before any writer has cleaned up.
        assert_eq!(ok(run(&["export"], &dir)), export, "{point}");
        let v: serde_json::Value =
            serde_json::from_str(&ok(run(&["verify", "--json"], &dir))).unwrap();
        assert_eq!(v["status"], "clean", "{point}: {v}");
        // A writer finishes or redoes the compaction; the session is still the same.
        ok(run(&["compact"], &dir));
        assert_eq!(ok(run(&["export"], &dir)), export, "{point}");
        assert_eq!(files_with_ext(&dir, ".jsonl").len(), 1, "{point}");
        assert_eq!(files_with_ext(&dir, ".twl").len(), 1, "{point}");
        assert!(files_with_ext(&dir, ".tmp").is_empty(), "{point}");
    }
    println!("kill points: {states:?}");
    assert!(states.values().any(|s| *s == "old") && states.values().any(|s| *s == "new"));
}

/// Crash again while the next writer finishes a compaction (recovery is idempotent, I5).
#[test]
fn kill_9_while_a_writer_finishes_a_crashed_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    session(&dir, 0..6);
    ok(run(&["compact"], &dir));
    session(&dir, 6..12);
    let export = ok(run(&["export"], &dir));
    let kill = |point: &str| {
        compact_killed_at(&dir, point);
        assert_eq!(
            ok(run(&["export"], &dir)),
            export,
            "after a kill at {point}"
        );
    };
    // Installed, nothing deleted yet: an old snapshot and covered segments are left over.
    kill("compact:renamed");
    assert_eq!(files_with_ext(&dir, ".jsonl").len(), 2);
    let v: serde_json::Value = serde_json::from_str(&ok(run(&["verify", "--json"], &dir))).unwrap();
    assert!(!v["covered_segments"].as_array().unwrap().is_empty(), "{v}");
    // The next writer deletes them on open; kill it after its first delete, then after all.
    kill("open:deleted-one");
    kill("open:done");
    let out = ok(run(&["compact"], &dir));
    assert!(out.contains("\"skipped\":true"), "already compacted: {out}");
    assert_eq!(files_with_ext(&dir, ".jsonl").len(), 1);
    assert_eq!(files_with_ext(&dir, ".twl").len(), 1);
    assert_eq!(ok(run(&["export"], &dir)), export);
}

/// `turnwal append` leaves the log raw unless `--auto-compact` asks for the library's policy;
/// either way the session exported is the same.
#[test]
fn append_compacts_in_the_background_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    // 80 messages of 256 KiB: past the 16 MiB default threshold.
    let input: String = (0..80)
        .map(|i| common::message(i, 256 << 10) + "\n")
        .collect();
    let mut exports = Vec::new();
    for (name, flag) in [("raw", None), ("auto", Some("--auto-compact"))] {
        let dir = tmp.path().join(name);
        append(&dir, flag.as_slice(), &input);
        let snapshots = files_with_ext(&dir, ".jsonl");
        assert_eq!(
            snapshots.is_empty(),
            flag.is_none(),
            "{name}: {snapshots:?}"
        );
        let raw = ok(run(&["export", "--raw"], &dir));
        assert_eq!(
            raw.lines().count(),
            81,
            "{name}: nothing superseded, all stored"
        );
        exports.push(ok(run(&["export"], &dir)));
    }
    // Same events, different session ids: compare everything but the ids.
    let strip = |s: &str| -> Vec<serde_json::Value> {
        s.lines()
            .skip(2)
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("ts");
                v
            })
            .filter(|v| v.get("trailer").is_none())
            .collect()
    };
    assert_eq!(strip(&exports[0]), strip(&exports[1]));
}
