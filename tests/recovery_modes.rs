//! Every recovery mode on the same damaged journals (docs/RECOVERY.md, "Modes"): a torn tail,
//! mid-log corruption with valid records after it (in a sealed and in the active segment), a
//! gap in seq, a duplicated seq, a sealed segment ending early, a missing segment, and a
//! snapshot without its trailer (whole lines, and torn mid-line).
//!
//! For each damage and each mode, on a fresh copy: the report names the case (the table row
//! and the problem's `kind`) and the action; a refusing open changes no byte; a read-only open
//! never changes a byte, in any mode; a salvaging open lists exactly the seqs lost, and the
//! journal it leaves opens clean and continues after the highest salvaged seq.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::dir_state;
use turnwal::{
    Action, CompactionPolicy, Error, Journal, Mode, Options, Status, SyncPolicy, WriterOptions,
};

const MESSAGES: usize = 80;

fn opts(mode: Mode) -> Options {
    Options {
        // Always: every frame states the watermark of the one before it, so damage below the
        // last frame is provably acknowledged.
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        recovery: mode,
        writer: WriterOptions {
            segment_bytes_max: 8 * 1024,
            prewrite_bytes: 4096,
            ..WriterOptions::default()
        },
        ..Options::default()
    }
}

fn message(i: usize) -> String {
    let text = "q".repeat(200);
    format!(
        r#"{{"kind":"message","turn":1,"body":{{"id":"m{i}","role":"user","parts":[{{"type":"text","text":"{text}{i}"}}]}}}}"#
    )
}

/// 80 messages over several small segments (seqs 1..=81); with `compact_at`, a compaction
/// after that many messages.
fn journal(dir: &Path, compact_at: Option<usize>) {
    let (j, _) = Journal::open(dir, opts(Mode::TolerateTornTail)).unwrap();
    for i in 0..MESSAGES {
        if Some(i) == compact_at {
            j.compact().unwrap();
        }
        j.append_json(&message(i)).unwrap();
    }
    j.close().unwrap();
}

fn files(dir: &Path, prefix: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(prefix)
                && p.extension().is_some_and(|e| e == ext)
        })
        .collect();
    v.sort();
    v
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    files(dir, "segment-", "twl")
}

/// (offset, length, seq) of every frame of segment file `path`.
fn frames(path: &Path) -> Vec<(usize, usize, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let id = turnwal_journal::segment::SegmentHeader::decode(&bytes)
        .unwrap()
        .segment_id;
    let mut out = Vec::new();
    let mut off = turnwal_journal::segment::SEGMENT_HEADER_BYTES;
    while let Ok((rec, len)) = turnwal_journal::record::decode(&bytes[off..], id) {
        out.push((off, len, rec.header.seq));
        off += len;
    }
    out
}

fn flip(path: &Path, at: usize) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at as u64).unwrap();
    f.write_at(&[b[0] ^ 0xFF], at as u64).unwrap();
}

/// What each mode must do with one damaged journal.
struct Expect {
    /// The problem kind the report must name.
    kind: &'static str,
    /// (action, table row) for TolerateTornTail, Strict, Salvage.
    tolerate: (Action, &'static str),
    strict: (Action, &'static str),
    salvage: (Action, &'static str),
    /// Exactly the seqs a salvage loses, as inclusive ranges.
    lost: Vec<(u64, u64)>,
    /// Whether the salvage keeps lines of a snapshot without a valid trailer.
    unverified: bool,
}

const SEALED: &str = "damage in a sealed segment";
const SEALED_S: &str = "damage in a sealed segment, salvaged";
const GAP: &str = "seq gap or duplicate";
const GAP_S: &str = "seq gap or duplicate, salvaged";

fn corrupt(kind: &'static str, row: &'static str, salvaged: &'static str) -> Expect {
    Expect {
        kind,
        tolerate: (Action::RefuseCorrupt, row),
        strict: (Action::RefuseCorrupt, row),
        salvage: (Action::SalvageCorrupt, salvaged),
        lost: Vec::new(),
        unverified: false,
    }
}

fn torn_tail(dir: &Path) -> Expect {
    journal(dir, None);
    let last = segments(dir).pop().unwrap();
    let end = frames(&last).last().map(|(o, l, _)| o + l).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_at(&[0xCD; 40], end as u64).unwrap();
    Expect {
        kind: "torn_tail",
        tolerate: (Action::CutTornTail, "torn tail, cut"),
        strict: (Action::RefuseTornTail, "torn tail, strict"),
        salvage: (Action::CutTornTail, "torn tail, cut"),
        lost: Vec::new(),
        unverified: false,
    }
}

fn mid_log_sealed(dir: &Path) -> Expect {
    journal(dir, None);
    let first = &segments(dir)[0];
    let (off, _, seq) = frames(first)[3];
    flip(first, off + 50);
    Expect {
        lost: vec![(seq, seq)],
        ..corrupt("mid_log_corruption", SEALED, SEALED_S)
    }
}

fn mid_log_active(dir: &Path) -> Expect {
    journal(dir, None);
    let last = segments(dir).pop().unwrap();
    let fr = frames(&last);
    assert!(fr.len() >= 3, "{fr:?}");
    let (off, _, seq) = fr[fr.len() - 2];
    flip(&last, off + 50);
    Expect {
        lost: vec![(seq, seq)],
        ..corrupt(
            "mid_log_corruption",
            "damaged acknowledged record in the active segment",
            "damaged acknowledged record in the active segment, salvaged",
        )
    }
}

/// Rewrites the first segment with frame `k` taken out (`dup`: copied once more after itself).
/// Frames are bound to their segment and seq, not their offset, so the result is a chain of
/// valid frames with a hole (or a repeat) in its seqs.
fn splice(dir: &Path, k: usize, dup: bool) -> u64 {
    let first = &segments(dir)[0];
    let bytes = std::fs::read(first).unwrap();
    let (off, len, seq) = frames(first)[k];
    let mut out = bytes[..off + len].to_vec();
    if dup {
        out.extend_from_slice(&bytes[off..off + len]);
    } else {
        out.truncate(off);
    }
    out.extend_from_slice(&bytes[off + len..]);
    std::fs::write(first, &out).unwrap();
    seq
}

fn seq_gap(dir: &Path) -> Expect {
    journal(dir, None);
    let seq = splice(dir, 5, false);
    Expect {
        lost: vec![(seq, seq)],
        ..corrupt("seq_gap", GAP, GAP_S)
    }
}

fn seq_duplicate(dir: &Path) -> Expect {
    journal(dir, None);
    splice(dir, 5, true);
    corrupt("seq_duplicate", GAP, GAP_S)
}

fn sealed_ends_early(dir: &Path) -> Expect {
    journal(dir, None);
    let first = &segments(dir)[0];
    let fr = frames(first);
    let (cut_at, _, first_lost) = fr[fr.len() - 3];
    let last = fr.last().unwrap().2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(cut_at as u64 + 10)
        .unwrap();
    Expect {
        lost: vec![(first_lost, last)],
        ..corrupt("sealed_segment_ends_early", SEALED, SEALED_S)
    }
}

fn missing_segment(dir: &Path) -> Expect {
    journal(dir, None);
    let segs = segments(dir);
    assert!(segs.len() >= 3, "{segs:?}");
    let fr = frames(&segs[1]);
    let range = (fr[0].2, fr.last().unwrap().2);
    std::fs::remove_file(&segs[1]).unwrap();
    Expect {
        lost: vec![range],
        ..corrupt("missing_segment", GAP, GAP_S)
    }
}

/// A compacted journal whose snapshot lost its trailer line (`mid_line`: torn inside the line
/// before it too). The segments it covered are gone, so the log starts after a hole.
fn snapshot_without_trailer(dir: &Path, mid_line: bool) -> Expect {
    journal(dir, Some(40));
    let snap = files(dir, "snapshot-", "jsonl").pop().unwrap();
    let bytes = std::fs::read(&snap).unwrap();
    let body = &bytes[..bytes.len() - 1];
    let trailer_at = body.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let mut keep = trailer_at;
    let mut lost = Vec::new();
    if mid_line {
        // Tear the last event line in half: its seq is lost with it.
        let line_at = bytes[..trailer_at - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let line: serde_json::Value =
            serde_json::from_slice(&bytes[line_at..trailer_at - 1]).unwrap();
        let seq = line["seq"].as_u64().unwrap();
        lost.push((seq, seq));
        keep = line_at + (trailer_at - line_at) / 2;
    }
    std::fs::write(&snap, &bytes[..keep]).unwrap();
    Expect {
        lost,
        unverified: true,
        ..corrupt("seq_gap", GAP, GAP_S)
    }
}

fn mode_expect(e: &Expect, mode: Mode) -> (Action, &'static str) {
    match mode {
        Mode::TolerateTornTail => e.tolerate,
        Mode::Strict => e.strict,
        Mode::Salvage => e.salvage,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn check(name: &str, damage: fn(&Path) -> Expect) {
    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join("damaged");
    let expect = damage(&damaged);
    let written = MESSAGES as u64 + 1;
    for mode in [Mode::TolerateTornTail, Mode::Strict, Mode::Salvage] {
        let ctx = format!("{name}, {mode:?}");
        let (action, row) = mode_expect(&expect, mode);
        let dir = tmp.path().join(format!("{mode:?}"));
        copy_dir(&damaged, &dir);
        let before = dir_state(&dir);

        // Read-only, in every mode: names the case, changes nothing.
        let ro = Journal::open_read_only(&dir, &opts(mode)).unwrap();
        let r = &ro.report;
        assert_eq!((r.action, r.case), (action, row), "{ctx}: {:?}", r.problems);
        assert!(
            r.problems.iter().any(|p| p.kind == expect.kind),
            "{ctx}: want {} in {:?}",
            expect.kind,
            r.problems
        );
        if expect.unverified {
            assert!(
                r.ignored_snapshots
                    .iter()
                    .any(|i| i.reason.contains("trailer")),
                "{ctx}: {:?}",
                r.ignored_snapshots
            );
        }
        assert_eq!(
            r.salvage.is_some(),
            action == Action::SalvageCorrupt,
            "{ctx}"
        );
        if let Some(s) = &r.salvage {
            assert!(!s.installed, "{ctx}: a read-only open installs nothing");
            let lost: Vec<(u64, u64)> = s.lost.iter().map(|r| (*r.start(), *r.end())).collect();
            assert_eq!(lost, expect.lost, "{ctx}");
            assert_eq!(ro.session.last_seq, s.through_seq, "{ctx}");
        }
        assert_eq!(
            dir_state(&dir),
            before,
            "{ctx}: a read-only open changed files"
        );

        // A writable open.
        match Journal::open(&dir, opts(mode)) {
            Err(Error::Refused { report, .. }) => {
                assert!(
                    matches!(action, Action::RefuseCorrupt | Action::RefuseTornTail),
                    "{ctx}: refused, expected {action:?}"
                );
                assert_eq!(report.case, row, "{ctx}");
                assert_eq!(dir_state(&dir), before, "{ctx}: a refusal changed files");
            }
            Err(e) => panic!("{ctx}: {e}"),
            Ok((j, report)) => {
                assert_eq!((report.action, report.case), (action, row), "{ctx}");
                let lost_count: u64 = expect.lost.iter().map(|(a, b)| b - a + 1).sum();
                match action {
                    Action::CutTornTail => {
                        assert!(report.cut_applied, "{ctx}");
                        assert_eq!(j.last_seq(), written, "{ctx}");
                    }
                    Action::SalvageCorrupt => {
                        let s = report.salvage.as_ref().unwrap();
                        assert!(s.installed, "{ctx}");
                        assert_eq!(s.lost_count, lost_count, "{ctx}");
                        assert_eq!(
                            s.unverified_snapshot.is_some(),
                            expect.unverified,
                            "{ctx}: {:?}",
                            s.unverified_snapshot
                        );
                        assert_eq!(j.last_seq(), s.through_seq, "{ctx}");
                        let messages = j.session().messages.len() as u64;
                        assert_eq!(messages, MESSAGES as u64 - lost_count, "{ctx}");
                    }
                    other => panic!("{ctx}: opened, expected {other:?}"),
                }
                let next = j.last_seq() + 1;
                assert_eq!(j.append_json(&message(1000)).unwrap(), next, "{ctx}");
                j.close().unwrap();
                // What it leaves opens clean in the strictest mode, and keeps the new event.
                let (j, report) = Journal::open(&dir, opts(Mode::Strict)).unwrap();
                assert_eq!(report.status, Status::Clean, "{ctx}: {:?}", report.problems);
                assert_eq!(j.last_seq(), next, "{ctx}");
                j.close().unwrap();
            }
        }
    }
}

#[test]
fn torn_tail_in_every_mode() {
    check("torn tail", torn_tail);
}

#[test]
fn mid_log_corruption_in_a_sealed_segment_in_every_mode() {
    check("mid-log corruption, sealed", mid_log_sealed);
}

#[test]
fn mid_log_corruption_in_the_active_segment_in_every_mode() {
    check("mid-log corruption, active", mid_log_active);
}

#[test]
fn seq_gap_in_every_mode() {
    check("seq gap", seq_gap);
}

#[test]
fn seq_duplicate_in_every_mode() {
    check("seq duplicate", seq_duplicate);
}

#[test]
fn sealed_segment_ending_early_in_every_mode() {
    check("sealed segment ends early", sealed_ends_early);
}

#[test]
fn missing_segment_in_every_mode() {
    check("missing segment", missing_segment);
}

#[test]
fn snapshot_without_trailer_in_every_mode() {
    check("snapshot without trailer", |d| {
        snapshot_without_trailer(d, false)
    });
}

#[test]
fn snapshot_torn_mid_line_in_every_mode() {
    check("snapshot torn mid-line", |d| {
        snapshot_without_trailer(d, true)
    });
}

/// A crash at every storage operation of a salvaging open: opening again in Salvage mode
/// finishes it, with the same session as an uninterrupted salvage and nothing more lost; the
/// damaged bytes are never truncated in place.
#[test]
fn a_salvage_interrupted_at_every_storage_operation_finishes_on_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join("damaged");
    mid_log_sealed(&damaged);
    let reference = tmp.path().join("reference");
    copy_dir(&damaged, &reference);
    let (j, _) = Journal::open(&reference, opts(Mode::Salvage)).unwrap();
    let want: Vec<String> = j.session().messages.iter().map(|m| m.id.clone()).collect();
    j.close().unwrap();
    let original_first = std::fs::read(&segments(&damaged)[0]).unwrap();
    for crash_at in 1.. {
        let dir = tmp.path().join(format!("crash-{crash_at}"));
        copy_dir(&damaged, &dir);
        let crash = std::sync::Arc::new(common::CrashAt::new(crash_at));
        crash.arm();
        let o = Options {
            storage: crash.clone(),
            ..opts(Mode::Salvage)
        };
        let finished = Journal::open(&dir, o).map(drop).is_ok() && !crash.crashed();
        // The first segment's bytes are still somewhere: in place or moved aside.
        let kept = std::fs::read_dir(&dir)
            .unwrap()
            .any(|e| std::fs::read(e.unwrap().path()).is_ok_and(|b| b == original_first));
        assert!(
            kept,
            "crash at {crash_at}: the damaged segment's bytes are gone"
        );
        let (j, _) = Journal::open(&dir, opts(Mode::Salvage)).unwrap();
        let got: Vec<String> = j.session().messages.iter().map(|m| m.id.clone()).collect();
        assert_eq!(got, want, "crash at {crash_at}");
        j.close().unwrap();
        let (_, report) = Journal::open(&dir, opts(Mode::Strict)).unwrap();
        assert_eq!(report.status, Status::Clean, "crash at {crash_at}");
        if finished {
            eprintln!(
                "salvage: {} crash points, each finished by the next open",
                crash_at - 1
            );
            assert!(crash_at > 5);
            break;
        }
        assert!(crash_at < 500, "the salvage never finished");
    }
}
