//! The bodies of the fuzz targets, one function per target. Each panics exactly when a property
//! of turnwal is violated, and never otherwise, whatever the input.
//!
//! Shared: `fuzz/fuzz_targets/*.rs` call them under libFuzzer (nightly), and the root crate's
//! `tests/fuzz_corpus.rs` includes this file with `#[path]` and replays every committed corpus
//! input through them on stable, in every `cargo test`.

#[path = "../../tests/common/crash_model.rs"]
mod crash_model;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arbitrary::Unstructured;
use turnwal::storage::sim::{Cut, SimFs};
use turnwal::storage::{OpenMode, Storage};
use turnwal::{Event, Journal, Options, Status, SyncPolicy};
use turnwal_journal::record::{self, PAYLOAD_BYTES_MAX, RECORD_HEADER_BYTES};
use turnwal_journal::segment::{self, SegmentHeader, SessionId};
use turnwal_journal::stored::parse_stored_envelope;

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: &[(&str, Body)] = &[
    ("decode_record", decode_record),
    ("replay_segment", replay_segment),
    ("torn_workload", torn_workload),
    ("snapshot_parse", snapshot_parse),
    ("append_input", append_input),
];

/// Arbitrary bytes as a frame: decoding never panics, and anything accepted re-encodes to the
/// same bytes (a frame is never accepted that the writer could not have written).
pub fn decode_record(data: &[u8]) {
    let segment_id = 1;
    if let Ok((rec, len)) = record::decode(data, segment_id) {
        let mut again = Vec::new();
        let n = record::encode(
            rec.header.seq,
            segment_id,
            rec.header.watermark,
            &rec.event,
            PAYLOAD_BYTES_MAX,
            &mut again,
        )
        .expect("an accepted frame re-encodes");
        // The accepted length spans the checksummed bytes and at most the padding after them
        // (at the end of a file the padding may be cut short).
        let covered = RECORD_HEADER_BYTES + rec.header.len as usize;
        assert!(
            covered <= len && len <= n,
            "accepted {len} bytes, checksummed {covered}, a re-encoded frame is {n}"
        );
        assert_eq!(&again[..covered], &data[..covered], "re-encoding differs");
    }
}

const DIR: &str = "/fuzz/s";

fn sim_options(fs: &SimFs) -> Options {
    Options {
        storage: Arc::new(fs.clone()),
        sync: SyncPolicy::Never,
        create: false,
        compaction: turnwal::CompactionPolicy::manual(),
        ..Options::default()
    }
}

fn put(fs: &SimFs, path: &Path, bytes: &[u8]) {
    let f = fs.open(path, OpenMode::CreateNew).expect("create");
    f.write_at(0, bytes).expect("write");
    f.sync_data().expect("sync");
}

/// A valid segment 1 holding the session event and `n` small messages.
fn valid_segment(n: u8) -> (Vec<u8>, Vec<Event>) {
    let id = SessionId([3; 16]);
    let header = SegmentHeader {
        segment_id: 1,
        first_seq: 1,
        session_id: id,
        created_at_ms: 1_000,
    };
    let mut bytes = header.encode().to_vec();
    let mut events = vec![Event::session(turnwal::event::SessionInfo {
        id: id.to_string(),
        created_at_ms: 1_000,
        fork_of: None,
    })];
    for i in 0..n {
        let line = format!(
            r#"{{"ts":"2026-11-21T10:00:00.000Z","kind":"message","body":{{"id":"m{i}","role":"user","parts":[{{"type":"text","text":"t{i}"}}]}}}}"#
        );
        events.push(Event::from_envelope(&line, 0).expect("valid"));
    }
    for (i, e) in events.iter().enumerate() {
        let seq = i as u64 + 1;
        record::encode(seq, 1, seq - 1, e, PAYLOAD_BYTES_MAX, &mut bytes).expect("encode");
    }
    (bytes, events)
}

/// Arbitrary bytes as a segment, or appended to a valid segment (torn and garbage tails):
/// replay never panics, returns a prefix of the valid records, and a writer's recovery (which
/// cuts a proven torn tail) followed by a second replay gives the same result.
pub fn replay_segment(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (bytes, written) = if mode & 1 == 0 {
        (rest.to_vec(), Vec::new())
    } else {
        let (mut b, w) = valid_segment(mode >> 1);
        b.extend_from_slice(rest);
        (b, w)
    };
    let fs = SimFs::new();
    fs.create_dir_all_durable(DIR).expect("mkdir");
    let seg = PathBuf::from(DIR).join(segment::segment_name(1));
    put(&fs, &seg, &bytes);

    let first = match Journal::open_read_only(DIR, &sim_options(&fs)) {
        Ok(v) => v,
        Err(_) => return, // not a journal at all: refused with an error, fine
    };
    // The valid records written before the tail are all recovered, in order, unchanged.
    assert!(
        first.events.len() >= written.len(),
        "a tail destroyed valid records: {} of {} recovered",
        first.events.len(),
        written.len()
    );
    for ((seq, e), w) in first.events.iter().zip(&written) {
        assert_eq!(e.as_ref(), w, "seq {seq} differs from what was written");
    }
    for (i, (seq, _)) in first.events.iter().enumerate() {
        assert_eq!(
            *seq,
            i as u64 + 1,
            "recovered seqs are not contiguous from 1"
        );
    }

    // A writer recovers (cutting only a proven torn tail); reading again gives the same prefix.
    let writable = Options {
        create: false,
        ..sim_options(&fs)
    };
    let before = fs.read(&seg);
    match Journal::open(DIR, writable) {
        Ok((j, _)) => {
            drop(j);
            let second = Journal::open_read_only(DIR, &sim_options(&fs)).expect("reads again");
            assert_eq!(second.report.status, Status::Clean, "recovery left damage");
            assert!(
                second.events.len() >= first.events.len(),
                "recovery lost recovered events"
            );
            for ((s1, e1), (s2, e2)) in first.events.iter().zip(&second.events) {
                assert_eq!((s1, e1), (s2, e2), "recovery changed a recovered event");
            }
        }
        Err(_) => {
            // Refused: nothing it read was changed.
            assert_eq!(fs.read(&seg), before, "a refused open changed the segment");
        }
    }
}

/// A structured workload (appends, syncs, rotations through tiny segments, compactions,
/// reopens), a crash point and a power-cut transform, run on the simulated storage: the
/// recovered disk satisfies the contract's invariants (the crash harness's check).
pub fn torn_workload(data: &[u8]) {
    use crash_model::{Step, Workload, check, run};
    let mut u = Unstructured::new(data);
    let always: bool = u.arbitrary().unwrap_or(false);
    let n = u.int_in_range(0..=24u8).unwrap_or(0);
    let mut steps = Vec::new();
    for _ in 0..n {
        let size = u.int_in_range(0..=900usize).unwrap_or(10);
        steps.push(match u.int_in_range(0..=7u8).unwrap_or(0) {
            0..=2 => Step::Append(size),
            3 => Step::AppendDurable(size),
            4 => Step::Sync,
            5 | 6 => Step::Compact,
            _ => Step::Reopen,
        });
    }
    let crash_at = u.int_in_range(0..=600u64).unwrap_or(0);
    let cuts = Cut::all();
    let cut = cuts[u.choose_index(cuts.len()).unwrap_or(0)];
    let seed: u64 = u.arbitrary().unwrap_or(0);
    let w = Workload {
        policy: if always {
            SyncPolicy::Always
        } else {
            SyncPolicy::Never
        },
        steps,
    };
    let fs = SimFs::new();
    fs.crash_at(Some(crash_at));
    let acked = run(&fs, &w);
    let disk = fs.power_cut(cut, seed);
    if let Err(what) = check(&disk, &acked, cut == Cut::process_crash()) {
        panic!(
            "violation: {what}\n  workload {:?} {:?}, crash before op #{crash_at}, {cut}, seed {seed}",
            w.policy, w.steps
        );
    }
}

/// Arbitrary bytes as a JSONL snapshot: reading never panics; a snapshot that does not read
/// back whole is never used, even when it is the newest file of a journal.
pub fn snapshot_parse(data: &[u8]) {
    let parsed = turnwal_replay::snapshot::read(data);
    if let Ok(s) = &parsed {
        // Accepted: a trailer whose checksum covers everything before it, every line a stored
        // envelope with increasing seqs.
        assert!(s.events.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(s.events.iter().all(|(q, _)| *q <= s.through_seq));
    }
    // Beside a real journal, under a name newer than anything in it.
    let fs = SimFs::new();
    fs.create_dir_all_durable(DIR).expect("mkdir");
    let (seg, _) = valid_segment(2);
    put(
        &fs,
        &PathBuf::from(DIR).join(segment::segment_name(1)),
        &seg,
    );
    let name = turnwal_replay::snapshot::snapshot_name(u64::MAX / 2);
    put(&fs, &PathBuf::from(DIR).join(&name), data);
    let view = Journal::open_read_only(DIR, &sim_options(&fs)).expect("the journal reads");
    if parsed.is_err() {
        assert!(
            view.report.snapshot.is_none(),
            "an invalid snapshot was used"
        );
        assert_eq!(view.report.ignored_snapshots.len(), 1);
        assert_eq!(view.report.status, Status::Clean);
        assert_eq!(view.report.last_seq, 3);
    }
}

/// Arbitrary bytes as one `turnwal append` input line: a clear error naming a field, or an
/// event that is stored and exports JSON-equal (and reads back from its export line).
pub fn append_input(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return; // the CLI refuses a line that is not UTF-8 before parsing it
    };
    let event = match Event::from_envelope(line, 5_000) {
        Ok(e) => e,
        Err(e) => {
            assert!(!e.field.is_empty(), "an error without a field: {e}");
            return;
        }
    };
    // Stored as a frame and read back.
    let mut frame = Vec::new();
    if record::encode(2, 1, 1, &event, PAYLOAD_BYTES_MAX, &mut frame).is_err() {
        return; // over the record size limit: refused with an error
    }
    let (rec, _) = record::decode(&frame, 1).expect("a frame it wrote decodes");
    assert_eq!(rec.event, event, "the stored event differs");
    // Exported, the body is JSON-equal to the input's body, and the kind and turn are kept.
    let mut out = String::new();
    rec.event.write_envelope(2, &mut out);
    let input: serde_json::Value = serde_json::from_str(line).expect("accepted input is JSON");
    let export: serde_json::Value = serde_json::from_str(&out).expect("export is JSON");
    assert_eq!(export["body"], input["body"], "body not JSON-equal");
    assert_eq!(export["kind"], input["kind"]);
    if let Some(t) = input.get("turn").filter(|t| !t.is_null()) {
        assert_eq!(&export["turn"], t);
    }
    // The export line reads back to the same event (what a snapshot does).
    let (seq, back) = parse_stored_envelope(&out).expect("an export line reads back");
    assert_eq!((seq, &back), (2, &event));
}
