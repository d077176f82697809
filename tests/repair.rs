//! Explicit repair on damaged journals: what the default open refuses, `turnwal repair`
//! refuses too and changes nothing; `--salvage --dry-run` names exactly the seqs lost and
//! changes nothing; `--salvage` keeps every valid record past the damage, moves the damaged
//! files aside, and leaves a journal a writer opens and continues.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::dir_state;
use serde_json::Value;
use turnwal::{CompactionPolicy, Error, Journal, Mode, Options, Status, SyncPolicy, WriterOptions};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        writer: WriterOptions {
            segment_bytes_max: 8 * 1024,
            prewrite_bytes: 4096,
            ..WriterOptions::default()
        },
        ..Options::default()
    }
}

fn message(i: usize) -> String {
    let text = "z".repeat(200);
    format!(
        r#"{{"kind":"message","turn":1,"body":{{"id":"m{i}","role":"user","parts":[{{"type":"text","text":"{text}{i}"}}]}}}}"#
    )
}

/// A journal of 80 messages over several small segments (seqs 1..=81).
fn journal(dir: &Path) {
    let (j, _) = Journal::open(dir, opts()).unwrap();
    for i in 0..80 {
        j.append_json(&message(i)).unwrap();
    }
    j.close().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("segment-")
                && p.extension().is_some_and(|e| e == "twl")
        })
        .collect();
    v.sort();
    v
}

/// (offset, seq) of every frame of segment `id` in `bytes`.
fn frames(bytes: &[u8], id: u64) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut off = 64;
    while let Ok((rec, len)) = turnwal_journal::record::decode(&bytes[off..], id) {
        out.push((off, rec.header.seq));
        off += len;
    }
    out
}

/// Flips a payload byte of the fourth frame of the first segment, a mid-log corruption with
/// valid records after it; returns that frame's seq.
fn corrupt_fourth_frame(dir: &Path) -> u64 {
    let first = &segments(dir)[0];
    let bytes = std::fs::read(first).unwrap();
    let (off, seq) = frames(&bytes, 1)[3];
    let f = std::fs::OpenOptions::new().write(true).open(first).unwrap();
    f.write_at(&[bytes[off + 50] ^ 0xFF], (off + 50) as u64)
        .unwrap();
    seq
}

fn repair(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .arg("repair")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), doc)
}

/// The seq ranges a repair's report says were lost (none when no salvage was needed).
fn lost(doc: &Value) -> Vec<(u64, u64)> {
    doc["report"]["salvage"]["lost"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| (r["start"].as_u64().unwrap(), r["end"].as_u64().unwrap()))
        .collect()
}

/// The session ids (message ids) a journal opens with, after a salvage.
fn message_ids(dir: &Path) -> Vec<String> {
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    assert_eq!(ro.report.status, Status::Clean, "{:?}", ro.report.problems);
    ro.session.messages.iter().map(|m| m.id.clone()).collect()
}

/// Checks the refusal, the dry run and the salvage of a journal damaged so that exactly `gone`
/// seqs are lost; returns the repaired journal's message ids.
fn salvage_loses_exactly(dir: &Path, gone: (u64, u64)) -> Vec<String> {
    // Both recovery modes of an open refuse this damage: it is not a torn tail.
    for mode in [Mode::TolerateTornTail, Mode::Strict] {
        let o = Options {
            recovery: mode,
            ..opts()
        };
        assert!(
            matches!(Journal::open(dir, o), Err(Error::Refused { .. })),
            "{mode:?}"
        );
    }
    let before = dir_state(dir);
    let (code, _) = repair(dir, &[]);
    assert_eq!(code, 1, "the default repair refuses corruption");
    assert_eq!(dir_state(dir), before, "and changes nothing");
    let (code, doc) = repair(dir, &["--salvage", "--dry-run"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(lost(&doc), [gone]);
    assert_eq!(doc["report"]["salvage"]["installed"], false);
    assert_eq!(dir_state(dir), before, "a dry run changes nothing");

    let (code, doc) = repair(dir, &["--salvage"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(lost(&doc), [gone]);
    assert_eq!(doc["report"]["salvage"]["installed"], true);
    // The damaged bytes are kept aside, not truncated.
    for q in doc["report"]["salvage"]["quarantined"].as_array().unwrap() {
        let aside = dir.join(q["to"].as_str().unwrap());
        let original = before
            .iter()
            .find(|(name, _)| name == q["from"].as_str().unwrap())
            .unwrap();
        assert_eq!(std::fs::read(aside).unwrap(), original.1);
    }
    // A writer opens it and continues after the salvaged seqs.
    let through = doc["report"]["salvage"]["through_seq"].as_u64().unwrap();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    assert_eq!(j.append_json(&message(1000)).unwrap(), through + 1);
    j.close().unwrap();
    // Nothing more is lost on a second look.
    let (_, doc) = repair(dir, &["--salvage", "--dry-run"]);
    assert!(lost(&doc).is_empty(), "{doc}");
    message_ids(dir)
}

#[test]
fn mid_log_corruption_with_valid_records_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    journal(dir);
    let seq = corrupt_fourth_frame(dir);
    let ids = salvage_loses_exactly(dir, (seq, seq));
    let gone = format!("m{}", seq - 2); // seq 1 is the session event, m0 is seq 2
    assert!(!ids.contains(&gone));
    assert_eq!(ids.len(), 80, "79 salvaged and one appended after");
}

#[test]
fn a_missing_segment_in_the_middle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    journal(dir);
    let segs = segments(dir);
    assert!(segs.len() >= 3, "{segs:?}");
    let bytes = std::fs::read(&segs[1]).unwrap();
    let fr = frames(&bytes, 2);
    let range = (fr[0].1, fr.last().unwrap().1);
    std::fs::remove_file(&segs[1]).unwrap();
    let ids = salvage_loses_exactly(dir, range);
    assert_eq!(ids.len() as u64, 80 - (range.1 - range.0 + 1) + 1);
}

#[test]
fn a_sealed_segment_ending_early() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    journal(dir);
    let first = &segments(dir)[0];
    let bytes = std::fs::read(first).unwrap();
    let fr = frames(&bytes, 1);
    let (cut_at, first_lost) = fr[fr.len() - 3];
    let last = fr.last().unwrap().1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(cut_at as u64 + 10)
        .unwrap();
    salvage_loses_exactly(dir, (first_lost, last));
}

/// A torn tail is the default repair's job: `--dry-run` names the cut and changes nothing, the
/// repair cuts it into a quarantine file.
#[test]
fn a_torn_tail_is_cut_by_the_default_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    journal(dir);
    let last = segments(dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_at(&[0xCD; 48], end.next_multiple_of(8) as u64)
        .unwrap();
    let before = dir_state(dir);
    // Strict refuses even a proven torn tail, and changes nothing.
    let strict = Options {
        recovery: Mode::Strict,
        ..opts()
    };
    assert!(matches!(
        Journal::open(dir, strict),
        Err(Error::Refused { .. })
    ));
    assert_eq!(dir_state(dir), before);
    let (code, doc) = repair(dir, &["--dry-run"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["report"]["status"], "torn_tail");
    assert_eq!(dir_state(dir), before);
    let (code, doc) = repair(dir, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["report"]["cut_applied"], true, "{doc}");
    assert!(std::fs::read_dir(dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("quarantine-")
    }));
    assert_eq!(message_ids(dir).len(), 80);
}

/// A crash during `repair --salvage`: after the snapshot's rename (the damaged segments still in
/// place), and after the segments were moved aside (no fresh segment yet). Running the repair
/// again finishes it, with the same session and nothing more lost.
#[test]
fn a_salvage_interrupted_after_each_step_finishes_when_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join("damaged");
    journal(&damaged);
    corrupt_fourth_frame(&damaged);
    let copy = |name: &str| {
        let to = tmp.path().join(name);
        std::fs::create_dir(&to).unwrap();
        for e in std::fs::read_dir(&damaged).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };
    let after_rename = copy("after-rename");
    let done = copy("done");
    let (code, doc) = repair(&done, &["--salvage"]);
    assert_eq!(code, 0, "{doc}");
    let want = message_ids(&done);
    let snapshot = doc["report"]["salvage"]["snapshot"].as_str().unwrap();
    let fresh = doc["report"]["salvage"]["new_segment"].as_str().unwrap();

    // Crash after the rename: the snapshot is there, the damaged segments too.
    std::fs::copy(done.join(snapshot), after_rename.join(snapshot)).unwrap();
    // Crash after the segments were moved aside: no fresh segment yet.
    let after_quarantine = copy("after-quarantine");
    for e in std::fs::read_dir(&done).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), after_quarantine.join(e.file_name())).unwrap();
    }
    std::fs::remove_file(after_quarantine.join(fresh)).unwrap();
    for f in segments(&after_quarantine) {
        std::fs::remove_file(f).unwrap(); // only the damaged originals' copies remain aside
    }
    for dir in [&after_rename, &after_quarantine] {
        let (code, doc) = repair(dir, &["--salvage"]);
        assert_eq!(code, 0, "{}: {doc}", dir.display());
        assert!(lost(&doc).is_empty(), "{}: {doc}", dir.display());
        assert_eq!(message_ids(dir), want, "{}", dir.display());
        let (j, _) = Journal::open(dir, opts()).unwrap();
        j.append_json(&message(2000)).unwrap();
        j.close().unwrap();
    }
}

/// Salvage reads whatever bytes it is given: a valid journal with bytes overwritten at random,
/// truncated, or mostly garbage. It never panics, and never keeps a record that was not
/// written: every event it keeps is the one appended at that seq.
#[test]
fn salvage_never_panics_on_hostile_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    journal(&base);
    let written: std::collections::BTreeMap<u64, std::sync::Arc<turnwal::Event>> =
        Journal::open_read_only(&base, &opts())
            .unwrap()
            .events
            .into_iter()
            .collect();
    let mut kept_total = 0;
    let originals: Vec<(PathBuf, Vec<u8>)> = segments(&base)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..60 {
        for (p, b) in &originals {
            let mut bytes = b.clone();
            match round % 3 {
                0 => {
                    for _ in 0..(next() % 20) {
                        let at = (next() as usize) % bytes.len();
                        bytes[at] = next() as u8;
                    }
                }
                1 => bytes.truncate((next() as usize) % bytes.len()),
                _ => {
                    for byte in bytes.iter_mut().skip(64) {
                        if next() % 7 == 0 {
                            *byte = next() as u8;
                        }
                    }
                }
            }
            std::fs::write(p, &bytes).unwrap();
        }
        let sv = turnwal_replay::salvage::salvage(&turnwal::RealFs, &base).unwrap();
        for (seq, event) in &sv.events {
            assert_eq!(Some(event), written.get(seq), "round {round}: seq {seq}");
        }
        kept_total += sv.events.len();
        // The facade folds what was kept, or refuses clearly.
        if let Err(e) = Journal::salvage(&base, &opts()) {
            assert!(e.to_string().contains("salvage refused"), "{e}");
        }
    }
    assert!(kept_total > 0, "the damage must leave something to keep");
}
