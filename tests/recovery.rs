//! Recovery against damaged bytes on disk, on the real file system.
//!
//! The story these tests guard against: a crash leaves a half-written last record, or zeros from
//! preallocation, or a bit flip in the middle of a session. A log that "truncates at the first
//! invalid record" silently loses acknowledged data in the last case; a log that refuses every
//! torn tail makes a kill -9 fatal. turnwal must cut exactly the unacknowledged tail and refuse
//! everything else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use common::{message, only_segment, opts};
use turnwal::{Action, Error, Journal, Options, Status, SyncPolicy};

/// Writes `n` messages with `Never` (so no frame carries a watermark above 1) and returns the
/// segment bytes and the end offset of each frame.
fn unsynced_journal(dir: &std::path::Path, n: usize) -> (Vec<u8>, Vec<u64>) {
    let (j, _) = Journal::open(dir, opts(SyncPolicy::Never)).unwrap();
    for i in 0..n {
        j.append_json(&message(i, 50 + i * 7)).unwrap();
    }
    j.close().unwrap();
    let seg = only_segment(dir);
    let bytes = std::fs::read(&seg).unwrap();
    let view = Journal::open_read_only(dir, &Options::default()).unwrap();
    assert_eq!(view.report.status, Status::Clean);
    let ends = frame_ends(&bytes);
    assert_eq!(ends.len(), n + 1, "session event + messages");
    (bytes, ends)
}

/// End offsets of the frames, read from the length fields.
fn frame_ends(bytes: &[u8]) -> Vec<u64> {
    let mut off = 64usize;
    let mut ends = Vec::new();
    while off + 40 <= bytes.len() && bytes[off..off + 40].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        off = (off + 40 + len).next_multiple_of(8);
        ends.push(off as u64);
    }
    ends
}

#[test]
fn torn_tail_at_every_byte_of_the_last_record_recovers_the_records_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (bytes, ends) = unsynced_journal(&src, 4);
    let last_start = ends[ends.len() - 2] as usize;
    let last_end = ends[ends.len() - 1] as usize;
    for cut in last_start..last_end {
        // Both shapes of a torn write: the file ends at the cut, and the rest is zero-filled.
        for zero_fill in [false, true] {
            let dir = tmp.path().join(format!("cut-{cut}-{zero_fill}"));
            std::fs::create_dir(&dir).unwrap();
            let mut torn = bytes[..cut].to_vec();
            if zero_fill {
                torn.resize(bytes.len(), 0);
            }
            std::fs::write(dir.join(only_segment(&src).file_name().unwrap()), &torn).unwrap();
            let (j, report) = Journal::open(&dir, Options::default()).unwrap();
            assert_eq!(report.last_seq, 4, "cut at {cut} (zero fill {zero_fill})");
            if cut == last_start {
                assert_eq!(
                    report.status,
                    Status::Clean,
                    "cut exactly at a boundary is a clean end"
                );
            } else {
                assert_eq!(report.status, Status::TornTail, "cut at {cut}");
                assert_eq!(report.action, Action::CutTornTail);
                assert!(report.cut_applied);
                let q = dir.join(report.quarantine.as_ref().unwrap());
                // The quarantine keeps the cut bytes up to the last non-zero one.
                let torn = &bytes[last_start..cut];
                let kept = torn.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                assert_eq!(std::fs::read(q).unwrap(), &torn[..kept], "cut at {cut}");
                assert_eq!(report.torn_bytes, kept as u64);
            }
            // The journal continues after the cut with no gap.
            assert_eq!(j.append_json(&message(99, 10)).unwrap(), 5);
            j.close().unwrap();
            let view = Journal::open_read_only(&dir, &Options::default()).unwrap();
            assert_eq!(view.report.status, Status::Clean);
            let seqs: Vec<u64> = view.events.iter().map(|(s, _)| *s).collect();
            assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        }
    }
}

#[test]
fn zero_filled_tail_is_a_clean_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, _) = unsynced_journal(tmp.path(), 3);
    let seg = only_segment(tmp.path());
    let mut padded = bytes.clone();
    padded.resize(bytes.len() + (3 << 20), 0);
    std::fs::write(&seg, &padded).unwrap();
    let (j, report) = Journal::open(tmp.path(), Options::default()).unwrap();
    assert_eq!(report.status, Status::Clean);
    assert_eq!(report.last_seq, 4);
    assert!(report.quarantine.is_none());
    j.close().unwrap();
}

#[test]
fn flipped_byte_in_an_acknowledged_record_is_corruption_never_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Always: every later frame carries a watermark covering the earlier ones.
    let (j, _) = Journal::open(dir, opts(SyncPolicy::Always)).unwrap();
    for i in 0..6 {
        j.append_json(&message(i, 100)).unwrap();
    }
    j.close().unwrap();
    let seg = only_segment(dir);
    let good = std::fs::read(&seg).unwrap();
    let ends = frame_ends(&good);
    // Damage record seq 3 (frames end at ends[0] = session, ends[1] = seq 2, ...).
    for pos in [
        ends[1] as usize + 2,
        ends[1] as usize + 20,
        ends[1] as usize + 45,
    ] {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        std::fs::write(&seg, &bad).unwrap();
        match Journal::open(dir, Options::default()) {
            Err(Error::Refused { report, offset, .. }) => {
                assert_eq!(report.status, Status::Corrupt, "flip at {pos}");
                assert_eq!(offset, ends[1]);
            }
            other => panic!("flip at {pos}: expected a refusal, got {other:?}"),
        }
        assert_eq!(
            std::fs::read(&seg).unwrap(),
            bad,
            "a refused open changes nothing"
        );
        let view = Journal::open_read_only(dir, &Options::default()).unwrap();
        assert_eq!(view.report.status, Status::Corrupt);
        assert_eq!(
            view.events.len(),
            2,
            "read-only open returns the prefix before the damage"
        );
        assert!(!dir.read_dir().unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("quarantine")
        }));
    }
}

#[test]
fn strict_mode_refuses_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, ends) = unsynced_journal(tmp.path(), 2);
    let seg = only_segment(tmp.path());
    // Cut in the middle of the last frame (not just its padding).
    std::fs::write(&seg, &bytes[..(ends[1] + ends[2]) as usize / 2]).unwrap();
    let strict = Options {
        recovery: turnwal::Mode::Strict,
        ..Options::default()
    };
    assert!(matches!(
        Journal::open(tmp.path(), strict),
        Err(Error::Refused { .. })
    ));
    let (_, report) = Journal::open(tmp.path(), Options::default()).unwrap();
    assert_eq!(report.status, Status::TornTail);
}

#[test]
fn second_writer_gets_the_lock_error_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), Options::default()).unwrap();
    match Journal::open(tmp.path(), Options::default()) {
        Err(Error::Journal(turnwal_journal::Error::Locked { holder })) => {
            assert_eq!(holder.pid, std::process::id());
            assert!(!holder.host.is_empty());
            assert!(holder.since.ends_with('Z'));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // Readers need no lock.
    assert!(Journal::open_read_only(tmp.path(), &Options::default()).is_ok());
    j.close().unwrap();
    let (j2, _) = Journal::open(tmp.path(), Options::default()).unwrap();
    j2.close().unwrap();
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (j, _) = Journal::open(&dir, Options::default()).unwrap();
    j.append_json(&message(1, 10)).unwrap();
    j.close().unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            p.display()
        );
    }
}

#[test]
fn segment_from_another_journal_is_refused_not_spliced_in() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        let (j, _) = Journal::open(d, opts(SyncPolicy::Never)).unwrap();
        j.append_json(&message(1, 10)).unwrap();
        j.close().unwrap();
    }
    // A copy of a's first segment posing as b's second: right name, right id, wrong session.
    let foreign = std::fs::read(only_segment(&a)).unwrap();
    let mut header = turnwal_journal::segment::SegmentHeader::decode(&foreign).unwrap();
    header.segment_id = 2;
    header.first_seq = 3;
    std::fs::write(b.join("segment-00000000000000000002.twl"), header.encode()).unwrap();
    match Journal::open(&b, Options::default()) {
        Err(Error::Refused { reason, .. }) => assert!(reason.contains("session"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
