//! Compaction: the snapshot law through the facade, crash safety at every step (through the
//! storage seam, and with real `kill -9` at each named kill point), never shrinking, the
//! policy, and readers running beside it.
//!
//! The story: a long agent session is compacted while the harness keeps appending; whatever
//! happens to the process at any moment of a compaction, reopening gives back the same session,
//! with nothing acknowledged missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{CrashAt, agent_step, dir_state, files_with_ext};
use proptest::prelude::*;
use turnwal::{CompactError, CompactionPolicy, Error, Journal, Options, Session, SyncPolicy};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

fn append_all(j: &Journal, lines: &[String]) {
    for l in lines {
        j.append_json(l).unwrap();
    }
}

fn steps(range: std::ops::Range<usize>) -> Vec<String> {
    range.flat_map(agent_step).collect()
}

/// The session as a reader sees it after reopening.
fn reopened(dir: &Path) -> Session {
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    assert_eq!(
        ro.report.status,
        turnwal::Status::Clean,
        "{:?}",
        ro.report.problems
    );
    ro.session
}

/// The session of the same lines appended to a fresh journal that never compacts.
fn reference(lines: &[String]) -> Session {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    append_all(&j, lines);
    j.close().unwrap();
    anonymous(reopened(tmp.path()))
}

/// The session without what differs between two journals of the same events (id, creation
/// time), as read after a restart (partial messages interrupted).
fn anonymous(s: Session) -> Session {
    let mut s = s.after_crash();
    s.id.clear();
    s.created_at_ms = 0;
    s
}

#[test]
fn compaction_replaces_segments_with_one_snapshot_and_keeps_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let small = Options {
        writer: turnwal::WriterOptions {
            segment_bytes_max: 8 << 10,
            prewrite_bytes: 4 << 10,
            ..Default::default()
        },
        ..opts()
    };
    let (j, _) = Journal::open(dir, small.clone()).unwrap();
    let first = steps(0..30);
    append_all(&j, &first);
    let segs_before = files_with_ext(dir, ".twl");
    assert!(segs_before.len() > 3, "several segments");
    let before = j.session();
    let r = j.compact().unwrap();
    assert!(!r.skipped);
    assert_eq!(r.through_seq, j.last_seq());
    assert_eq!(r.messages, before.messages.len());
    assert!(
        r.records < j.last_seq(),
        "superseded events are folded away"
    );
    assert_eq!(
        files_with_ext(dir, ".jsonl"),
        std::slice::from_ref(&r.snapshot)
    );
    let segs = files_with_ext(dir, ".twl");
    assert_eq!(
        segs.len(),
        1,
        "only the fresh active segment stays: {segs:?}"
    );
    assert_eq!(
        r.removed_segments.len() + 1,
        r.removed_segments.len() + segs.len()
    );
    assert_eq!(j.session(), before, "the live session is unchanged");

    // Nothing new: a second compaction has nothing to do and touches nothing.
    let state = dir_state(dir);
    assert!(j.compact().unwrap().skipped);
    assert_eq!(dir_state(dir), state);

    // Appends continue after the snapshot; a second compaction replaces the first snapshot.
    let second = steps(30..45);
    append_all(&j, &second);
    let live = j.session();
    j.close().unwrap();
    assert_eq!(reopened(dir), live);
    let (j, report) = Journal::open(dir, small).unwrap();
    assert_eq!(report.snapshot.as_ref().unwrap().file, r.snapshot);
    assert_eq!(j.session(), live);
    let r2 = j.compact().unwrap();
    assert_eq!(r2.removed_snapshots, std::slice::from_ref(&r.snapshot));
    assert_eq!(files_with_ext(dir, ".jsonl"), [r2.snapshot]);
    j.close().unwrap();
    let all: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(anonymous(reopened(dir)), reference(&all));
}

#[test]
fn snapshot_file_is_plain_jsonl_with_header_envelopes_and_trailer() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    append_all(&j, &steps(0..5));
    let r = j.compact().unwrap();
    j.close().unwrap();
    let text = std::fs::read_to_string(tmp.path().join(&r.snapshot)).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect();
    assert_eq!(lines[0]["format"], "turnwal-snapshot");
    assert_eq!(lines[0]["through_seq"], r.through_seq);
    assert_eq!(lines[1]["kind"], "session");
    let trailer = &lines[lines.len() - 1]["trailer"];
    assert_eq!(trailer["records"], r.records);
    assert_eq!(lines.len() as u64, r.records + 2);
    let covered = text.len() - text.lines().last().unwrap().len() - 1;
    assert_eq!(
        trailer["crc32"],
        crc32fast::hash(&text.as_bytes()[..covered])
    );
}

#[cfg(unix)]
#[test]
fn snapshot_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts()).unwrap();
    append_all(&j, &steps(0..2));
    let r = j.compact().unwrap();
    let mode = std::fs::metadata(tmp.path().join(&r.snapshot))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A snapshot that would hold fewer messages than the log is refused, and the directory is
/// byte for byte what it was.
#[test]
fn a_shrinking_snapshot_is_refused_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    append_all(&j, &steps(0..4));
    j.close().unwrap();
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    let messages = ro.session.messages.len();
    // The events of the session with one user message left out: a buggy fold, or a metadata
    // save that forgot the messages.
    let events: Vec<(u64, Arc<turnwal::Event>)> = ro
        .fold
        .retained()
        .into_iter()
        .filter(|(_, e)| !e.body.contains(r#""id":"u2""#))
        .collect();
    let before = dir_state(dir);
    let expect = turnwal_replay::compact::Expect {
        session_id: &ro.session.id,
        through_seq: ro.session.last_seq,
        messages,
    };
    let err =
        turnwal_replay::compact::install(&turnwal::RealFs, dir, &events, 0, &expect).unwrap_err();
    match &err {
        CompactError::Shrink {
            snapshot_messages,
            log_messages,
            ..
        } => assert_eq!(
            (*snapshot_messages, *log_messages),
            (messages - 1, messages)
        ),
        other => panic!("expected a shrink refusal, got {other}"),
    }
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(dir_state(dir), before, "nothing on disk changed");

    // The whole metadata-wipe story: a snapshot of no messages at all.
    let only_session = vec![ro.fold.retained()[0].clone()];
    let err = turnwal_replay::compact::install(&turnwal::RealFs, dir, &only_session, 0, &expect)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CompactError::Shrink {
                snapshot_messages: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(dir_state(dir), before);
}

/// Crash (through the storage seam) at every mutating step of a compaction, then at every
/// step of the recovery that finishes it: the session always comes back whole, the files are
/// the old state or the new one, and a later compaction works.
#[test]
fn crash_at_every_step_of_compaction_recovers_before_or_after() {
    let lines = steps(0..12);
    let mut tail = lines.clone();
    // A reply still streaming when the compaction starts: partial messages survive it too.
    tail.push(r#"{"kind":"delta","turn":13,"body":{"message_id":"p","index":0,"type":"text","text":"stream"}}"#.into());
    let want = reference(&tail);
    let mut states = std::collections::BTreeSet::new();
    let mut crash_at = 1;
    loop {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Two segments and an older snapshot, so step 5 has segments and a snapshot to delete.
        let (j, _) = Journal::open(dir, opts()).unwrap();
        append_all(&j, &tail[..40]);
        j.compact().unwrap();
        append_all(&j, &tail[40..]);
        j.close().unwrap();
        let old_snapshot = files_with_ext(dir, ".jsonl");

        let crash = Arc::new(CrashAt::new(crash_at));
        let o = Options {
            storage: crash.clone(),
            ..opts()
        };
        let (j, _) = Journal::open(dir, o).unwrap();
        crash.arm();
        let result = j.compact();
        drop(j);
        if !crash.crashed() {
            result.unwrap();
            break;
        }
        assert!(result.is_err(), "crash at op {crash_at} went unnoticed");
        let snapshots = files_with_ext(dir, ".jsonl");
        let state = if snapshots == old_snapshot {
            "before"
        } else {
            "after"
        };
        states.insert(state);
        assert_eq!(
            anonymous(reopened(dir)),
            want,
            "crash at op {crash_at} ({state}): session differs"
        );

        // Crash again during the writer's open (which finishes the compaction), at each step.
        for again in 1..8 {
            let crash2 = Arc::new(CrashAt::new(again));
            crash2.arm();
            let o = Options {
                storage: crash2.clone(),
                ..opts()
            };
            let opened = Journal::open(dir, o);
            drop(opened);
            assert_eq!(
                anonymous(reopened(dir)),
                want,
                "crash at op {crash_at}, then {again}"
            );
            if !crash2.crashed() {
                break;
            }
        }
        let (j, _) = Journal::open(dir, opts()).unwrap();
        assert_eq!(anonymous(j.session()), want);
        j.compact().unwrap();
        j.close().unwrap();
        assert_eq!(files_with_ext(dir, ".jsonl").len(), 1);
        assert_eq!(files_with_ext(dir, ".twl").len(), 1);
        assert!(files_with_ext(dir, ".tmp").is_empty());
        assert_eq!(anonymous(reopened(dir)), want, "crash at op {crash_at}");
        crash_at += 1;
    }
    println!("compaction crash points checked: {}", crash_at - 1);
    assert!(crash_at > 8, "a compaction has at least 8 mutating steps");
    assert_eq!(
        states.len(),
        2,
        "crashes left both the old and the new state: {states:?}"
    );
}

#[test]
fn background_compaction_follows_the_policy_and_on_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = Options {
        compaction: CompactionPolicy {
            log_records: Some(100),
            log_bytes: None,
            min_log_to_snapshot: 0.0,
            on_close: true,
        },
        ..opts()
    };
    let (j, _) = Journal::open(dir, o.clone()).unwrap();
    let lines = steps(0..60);
    append_all(&j, &lines);
    let live = j.session();
    j.close().unwrap();
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    let snap = ro.report.snapshot.expect("compacted");
    assert_eq!(
        snap.through_seq, ro.session.last_seq,
        "on_close compacted everything"
    );
    assert_eq!(ro.session, live);

    let (j, _) = Journal::open(dir, o).unwrap();
    append_all(&j, &steps(60..120));
    // Background compactions ran while appending (at least every ~100 records).
    // (They run beside the appends: wait for the first to finish, however slow the machine.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let s = j.compaction_status();
        if s.count >= 1 || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(status.count >= 1, "no background compaction ran");
    assert_eq!(status.last_error, None);
    assert!(status.last.unwrap().through_seq >= 100);
    j.close().unwrap();
    let all: Vec<String> = steps(0..120);
    assert_eq!(anonymous(reopened(dir)), reference(&all));
}

#[test]
fn readers_see_a_whole_session_while_compactions_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (j, _) = Journal::open(&dir, opts()).unwrap();
    append_all(&j, &steps(0..5));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (dir, stop) = (dir.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0;
            let mut last = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let ro = Journal::open_read_only(&dir, &opts()).unwrap();
                assert_eq!(ro.report.status, turnwal::Status::Clean, "{:?}", ro.report);
                let n = ro.session.messages.len();
                assert!(
                    n >= last,
                    "a reader saw the session shrink from {last} to {n}"
                );
                last = n;
                reads += 1;
            }
            reads
        })
    };
    for i in 5..40 {
        append_all(&j, &agent_step(i));
        j.compact().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    j.close().unwrap();
}

#[test]
fn damage_to_events_the_snapshot_covers_is_corruption_not_a_torn_tail() {
    // A compaction leaves the snapshot and a fresh segment; make the log end below the snapshot
    // by replacing the fresh segment with a copy of an older one.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    append_all(&j, &steps(0..3));
    j.compact().unwrap();
    j.close().unwrap();
    for seg in files_with_ext(dir, ".twl") {
        std::fs::remove_file(dir.join(seg)).unwrap();
    }
    match Journal::open(dir, opts()) {
        Err(Error::Refused { reason, .. }) => {
            assert!(
                reason.contains("no segment continues the snapshot"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    assert_eq!(ro.report.status, turnwal::Status::Corrupt);
    assert!(
        !ro.session.messages.is_empty(),
        "the snapshot is still readable"
    );
}

#[test]
fn a_damaged_newest_snapshot_is_ignored_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    append_all(&j, &steps(0..3));
    j.compact().unwrap();
    append_all(&j, &steps(3..6));
    let live = j.session();
    j.close().unwrap();
    // A copy of the log's end as a newer "snapshot" that does not read back: it must not count.
    let bogus = dir.join(turnwal_replay::snapshot::snapshot_name(10_000));
    std::fs::write(&bogus, b"{\"format\":\"turnwal-snapshot\"}\n").unwrap();
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    assert_eq!(ro.report.status, turnwal::Status::Clean);
    assert_eq!(ro.report.ignored_snapshots.len(), 1);
    assert_eq!(ro.session, live);
    assert!(bogus.exists(), "a reader never deletes");
}

/// Bits of a workload the law test draws from.
fn op() -> impl Strategy<Value = (u8, u8)> {
    (0u8..8, 0u8..4)
}

fn line(op: (u8, u8), i: usize) -> String {
    let (kind, k) = op;
    let id = format!("m{k}");
    match kind {
        0 => format!(
            r#"{{"kind":"message","turn":1,"body":{{"id":"{id}","role":"user","parts":[{{"type":"text","text":"v{i}"}}]}}}}"#
        ),
        1 => format!(
            r#"{{"kind":"delta","turn":1,"body":{{"message_id":"d{i}_{k}","index":{k},"type":"text","text":"f{i}"}}}}"#
        ),
        2 => format!(
            r#"{{"kind":"usage","body":{{"call_key":"k{k}","model":"m","input":{{"total":{i}}},"output":{{"total":1}}}}}}"#
        ),
        3 => format!(
            r#"{{"kind":"meta","body":{{"k{k}":{}}}}}"#,
            if i.is_multiple_of(3) {
                "null".into()
            } else {
                format!("{i}")
            }
        ),
        4 => format!(r#"{{"kind":"rewind","body":{{"to_seq":{}}}}}"#, i / 2),
        5 => format!(
            r#"{{"kind":"turn","turn":{k},"body":{{"event":"{}"}}}}"#,
            if i.is_multiple_of(2) {
                "started"
            } else {
                "completed"
            }
        ),
        6 => format!(
            r#"{{"kind":"message","body":{{"id":"t{i}","role":"tool","parts":[{{"type":"tool_result","call_id":"c{k}"}}]}}}}"#
        ),
        _ => format!(
            r#"{{"kind":"compaction","body":{{"summary_message_id":"{id}","through_seq":{i}}}}}"#
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The law through the journal: for every point of a random workload, compacting there
    /// (and optionally again later) and reopening gives the session of the full log.
    #[test]
    fn snapshot_plus_later_segments_equals_the_full_log(
        ops in prop::collection::vec(op(), 1..24),
        second in any::<prop::sample::Index>(),
    ) {
        let lines: Vec<String> = ops.iter().enumerate().map(|(i, o)| line(*o, i)).collect();
        let want = reference(&lines);
        for cut in 0..=lines.len() {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let (j, _) = Journal::open(dir, opts()).unwrap();
            append_all(&j, &lines[..cut]);
            j.compact().unwrap();
            let again = cut + second.index(lines.len() - cut + 1);
            append_all(&j, &lines[cut..again]);
            j.compact().unwrap();
            append_all(&j, &lines[again..]);
            prop_assert_eq!(anonymous(j.session()), want.clone(), "live, cut {}", cut);
            j.close().unwrap();
            prop_assert_eq!(anonymous(reopened(dir)), want.clone(), "reopened, cut {}", cut);
        }
    }
}

#[test]
fn a_stray_snapshot_tmp_is_ignored_by_readers_and_removed_by_a_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    append_all(&j, &steps(0..3));
    let live = j.session();
    j.close().unwrap();
    // What a crash between writing and renaming leaves: a whole, valid-looking snapshot under
    // its tmp name. It must not count until renamed.
    let mut text = String::new();
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    turnwal_replay::snapshot::write_fold(&ro.fold, 0, &mut text);
    let name = turnwal_replay::snapshot::snapshot_tmp_name(ro.session.last_seq);
    std::fs::write(dir.join(&name), &text).unwrap();

    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    assert!(
        ro.report.snapshot.is_none(),
        "a tmp snapshot is not a snapshot"
    );
    assert_eq!(ro.session, live.clone().after_crash());
    assert!(dir.join(&name).exists(), "readers change nothing");

    let (j, report) = Journal::open(dir, opts()).unwrap();
    assert_eq!(report.removed_tmp, std::slice::from_ref(&name));
    assert!(!dir.join(&name).exists());
    assert_eq!(j.session(), live);
}

/// Storage for a reader that runs `hook` once, on the first segment it opens, just before
/// opening it: the moment between listing the directory and reading a file that the last step
/// of a compaction (deleting covered segments) can fall into.
struct BeforeSegmentRead {
    hook: std::sync::Mutex<Option<Hook>>,
}

type Hook = Box<dyn FnOnce(&Path) + Send>;

impl std::fmt::Debug for BeforeSegmentRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeSegmentRead")
    }
}

impl turnwal::Storage for BeforeSegmentRead {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        turnwal::RealFs.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        turnwal::RealFs.exists(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        turnwal::RealFs.list(dir)
    }
    fn open(
        &self,
        path: &Path,
        mode: turnwal::storage::OpenMode,
    ) -> std::io::Result<Box<dyn turnwal::storage::StorageFile>> {
        if path.extension().is_some_and(|e| e == "twl") {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook(path);
            }
        }
        turnwal::RealFs.open(path, mode)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        turnwal::RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        turnwal::RealFs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        turnwal::RealFs.sync_dir(dir)
    }
    fn try_lock(
        &self,
        path: &Path,
    ) -> std::io::Result<Option<Box<dyn turnwal::storage::StorageFile>>> {
        turnwal::RealFs.try_lock(path)
    }
}

/// Found by CI in `readers_see_a_whole_session_while_compactions_run`: a reader listed the
/// newest snapshot and an old segment it covers; the compaction, in its last step, deleted the
/// segment before the reader opened it; and the reader reported the journal corrupt because the
/// set of snapshots had not changed. A reader must compare every file it listed, and read again.
#[test]
fn regression_reader_lists_a_covered_segment_that_a_compaction_then_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (j, _) = Journal::open(&dir, opts()).unwrap();
    append_all(&j, &steps(0..4));
    j.sync().unwrap();
    // The state between a compaction's rename and its deletes: the new snapshot, and the old
    // segments it covers still in place.
    let old: Vec<(String, Vec<u8>)> = files_with_ext(&dir, ".twl")
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    j.compact().unwrap();
    j.close().unwrap();
    for (name, bytes) in &old {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let storage = BeforeSegmentRead {
        hook: std::sync::Mutex::new(Some(Box::new(|path: &Path| {
            // The compaction's last step, just before the reader opens the segment.
            std::fs::remove_file(path).unwrap();
        }))),
    };
    let ro_opts = Options {
        storage: Arc::new(storage),
        ..opts()
    };
    let ro = Journal::open_read_only(&dir, &ro_opts).unwrap();
    for (name, _) in &old {
        assert!(
            !dir.join(name).exists(),
            "the hook must have removed {name}"
        );
    }
    assert_eq!(
        ro.report.status,
        turnwal::Status::Clean,
        "{:?}",
        ro.report.problems
    );
    assert_eq!(anonymous(ro.session), reference(&steps(0..4)));
}

/// Replay leaves bodies in the files' bytes instead of copying them, from segments and from a
/// snapshot alike; the session is the same either way.
#[test]
fn replayed_bodies_are_shared_with_the_files_not_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, opts()).unwrap();
    append_all(&j, &steps(0..6));
    j.close().unwrap();
    let from_log = Journal::open_read_only(dir, &opts()).unwrap();
    assert!(!from_log.session.messages.is_empty());
    for m in &from_log.session.messages {
        assert!(m.body.is_shared(), "{} was copied", m.id);
    }
    let (j, _) = Journal::open(dir, opts()).unwrap();
    j.compact().unwrap();
    j.close().unwrap();
    let from_snapshot = Journal::open_read_only(dir, &opts()).unwrap();
    for m in &from_snapshot.session.messages {
        assert!(m.body.is_shared(), "{} was copied", m.id);
    }
    assert_eq!(
        anonymous(from_snapshot.session),
        anonymous(from_log.session)
    );
}
