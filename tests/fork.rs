//! Fork (resume-and-branch): a child session starts from its parent's state at a seq, records
//! where it came from, continues the parent's seq numbering, and never changes, copies or
//! depends on the parent's log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{CrashAt, dir_state};
use turnwal::{
    CompactionPolicy, Error, Journal, MessageView, Options, SessionFold, Store, SyncPolicy,
};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// A parent with meta, two turns, a message streamed by deltas and finished later, a rewind
/// and usage; returns the seq after turn 1 (the streamed message still partial there).
fn parent(dir: &Path) -> u64 {
    let (j, _) = Journal::open(dir, opts()).unwrap();
    let lines = [
        r#"{"kind":"meta","body":{"title":"parent","model":"a"}}"#,
        r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"u1","role":"user","parts":[{"type":"text","text":"hello"}]}}"#,
        r#"{"kind":"delta","turn":1,"body":{"message_id":"a1","index":0,"type":"text","text":"Hi"}}"#,
        r#"{"kind":"usage","turn":1,"body":{"call_key":"c1","model":"a","input":{"total":10},"output":{"total":2}}}"#,
    ];
    for l in lines {
        j.append_json(l).unwrap();
    }
    let at = j.last_seq();
    let later = [
        r#"{"kind":"delta","turn":1,"body":{"message_id":"a1","index":0,"type":"text","text":" there"}}"#,
        r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"Hi there"}]}}"#,
        r#"{"kind":"usage","turn":1,"body":{"call_key":"c1","model":"a","input":{"total":10},"output":{"total":5},"final":true}}"#,
        r#"{"kind":"turn","turn":1,"body":{"event":"completed"}}"#,
        r#"{"kind":"meta","body":{"title":"renamed","model":null}}"#,
        r#"{"kind":"turn","turn":2,"body":{"event":"started"}}"#,
        r#"{"kind":"message","turn":2,"body":{"id":"u2","role":"user","parts":[{"type":"text","text":"more"}]}}"#,
    ];
    for l in later {
        j.append_json(l).unwrap();
    }
    j.close().unwrap();
    at
}

/// The parent's session at `at`, folded straight from its events.
fn parent_at(dir: &Path, at: u64) -> turnwal::Session {
    let ro = Journal::open_read_only(dir, &opts()).unwrap();
    let mut fold = SessionFold::new();
    for (seq, e) in ro.events.iter().take_while(|(s, _)| *s <= at) {
        fold.apply_shared(*seq, Arc::clone(e)).unwrap();
    }
    fold.session()
}

fn bodies(ms: &[MessageView]) -> Vec<(String, String, u64, u64)> {
    ms.iter()
        .map(|m| (m.id.clone(), m.body.to_string(), m.first_seq, m.last_seq))
        .collect()
}

#[test]
fn a_fork_has_the_parents_state_at_the_seq_and_continues_its_numbering() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, c) = (tmp.path().join("parent"), tmp.path().join("child"));
    let at = parent(&p);
    let before = dir_state(&p);
    let want = parent_at(&p, at);

    let (child, report) = Journal::fork(&p, at, &c, opts()).unwrap();
    assert_eq!(report.last_seq, at);
    let s = child.session();
    assert_eq!(s.fork_of, Some((want.id.clone(), at)));
    assert_ne!(s.id, want.id);
    assert_eq!(bodies(&s.messages), bodies(&want.messages));
    assert_eq!(s.meta, want.meta, "meta as it was at the seq");
    assert_eq!(
        s.usage_total, want.usage_total,
        "usage as it was at the seq"
    );
    assert_eq!(s.open_turn, Some(1), "the turn open at the seq");
    // The streamed message is partial in the child: its final form came after the seq.
    assert!(
        s.messages
            .iter()
            .any(|m| m.id == "a1" && m.body.contains("\"Hi\""))
    );
    // The child continues the parent's numbering.
    let seq = child
        .append_json(r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"text","text":"Hello from the branch"}]}}"#)
        .unwrap();
    assert_eq!(seq, at + 1);
    child.close().unwrap();

    assert_eq!(dir_state(&p), before, "the parent is not changed");
    // The child holds no copy of the parent's log: one snapshot of the folded state, and a log
    // of its own that starts after the seq.
    let names: Vec<String> = dir_state(&c).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "segment-00000000000000000001.twl".to_string(),
            format!("snapshot-{at:020}.jsonl")
        ]
    );
    // The parent goes on independently; compacting and even deleting it leaves the child whole.
    let (pj, _) = Journal::open(&p, opts()).unwrap();
    pj.append_json(r#"{"kind":"meta","body":{"more":1}}"#)
        .unwrap();
    pj.compact().unwrap();
    pj.close().unwrap();
    std::fs::remove_dir_all(&p).unwrap();
    let ro = Journal::open_read_only(&c, &opts()).unwrap();
    assert_eq!(ro.session.fork_of.as_ref().unwrap().1, at);
    assert_eq!(ro.session.last_seq, at + 1);
    let a1 = ro.session.messages.iter().find(|m| m.id == "a1").unwrap();
    assert!(a1.body.contains("branch"), "{}", a1.body);
}

#[test]
fn a_fork_of_a_fork_and_a_fork_of_a_live_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("parent");
    parent(&p);
    // The parent's writer stays open: a fork only reads.
    let (live, _) = Journal::open(&p, opts()).unwrap();
    let last = live.last_seq();
    let (c1, _) = Journal::fork(&p, last, tmp.path().join("c1"), opts()).unwrap();
    let id1 = c1.session().id;
    c1.append_json(r#"{"kind":"meta","body":{"branch":1}}"#)
        .unwrap();
    let at = c1.last_seq();
    c1.close().unwrap();
    let (c2, _) = Journal::fork(tmp.path().join("c1"), at, tmp.path().join("c2"), opts()).unwrap();
    let s = c2.session();
    assert_eq!(s.fork_of, Some((id1, at)));
    assert_eq!(s.meta.get("branch").map(String::as_str), Some("1"));
    assert_eq!(s.messages.len(), live.session().messages.len());
    c2.close().unwrap();
    live.close().unwrap();
}

#[test]
fn a_fork_is_refused_with_nothing_created() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("parent");
    let at = parent(&p);
    let c = tmp.path().join("child");
    let refused = |parent: &Path, seq: u64, child: &Path| {
        let e = Journal::fork(parent, seq, child, opts())
            .map(|_| ())
            .unwrap_err();
        assert!(!child.exists() || child == tmp.path(), "{e}");
        e.to_string()
    };
    assert!(refused(&p, 0, &c).contains("at_seq"));
    assert!(refused(&p, 1000, &c).contains("at_seq"));
    assert!(refused(&p, at, tmp.path()).contains("exists"));
    // Compacted past the seq: the state there is no longer on disk.
    let (pj, _) = Journal::open(&p, opts()).unwrap();
    pj.compact().unwrap();
    let through = pj.last_seq();
    pj.close().unwrap();
    assert!(refused(&p, at, &c).contains("compacted through"));
    // At or after the snapshot works.
    let (cj, _) = Journal::fork(&p, through, &c, opts()).unwrap();
    cj.close().unwrap();
    // A corrupt parent is refused.
    let q = tmp.path().join("corrupt");
    parent(&q);
    let seg = q.join("segment-00000000000000000001.twl");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 0xFF;
    std::fs::write(&seg, bytes).unwrap();
    assert_eq!(
        Journal::open_read_only(&q, &opts()).unwrap().report.status,
        turnwal::Status::Corrupt
    );
    assert!(refused(&q, 2, &tmp.path().join("c3")).contains("corrupt"));
    // Not a journal at all.
    assert!(matches!(
        Journal::fork(tmp.path().join("nothing"), 1, tmp.path().join("c4"), opts()),
        Err(Error::Journal(_))
    ));
    assert!(!tmp.path().join("c4").exists());
}

/// A crash at every mutating storage operation of a fork leaves either no child or a whole one,
/// never a half-made journal under the child's name, and never touches the parent.
#[test]
fn a_crash_anywhere_in_a_fork_leaves_no_child_or_a_whole_one() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("parent");
    let at = parent(&p);
    let before = dir_state(&p);
    let want = bodies(&parent_at(&p, at).messages);
    let mut whole = 0;
    for crash_at in 1.. {
        let c = tmp.path().join(format!("child-{crash_at}"));
        let crash = Arc::new(CrashAt::new(crash_at));
        crash.arm();
        let o = Options {
            storage: crash.clone(),
            ..opts()
        };
        let result = Journal::fork(&p, at, &c, o).map(|(j, _)| drop(j));
        assert_eq!(dir_state(&p), before, "crash at {crash_at}");
        if c.exists() {
            let ro = Journal::open_read_only(&c, &opts()).unwrap();
            assert_eq!(bodies(&ro.session.messages), want, "crash at {crash_at}");
            assert_eq!(ro.session.fork_of.as_ref().unwrap().1, at);
            whole += 1;
        }
        if result.is_ok() && !crash.crashed() {
            // The last run did not crash: every operation before it was a crash point.
            assert!(crash_at > 5, "only {crash_at} operations");
            // Crashes before the rename leave no child; after it (directory sync, the child's
            // first open), a whole one.
            assert!(whole > 1 && whole < crash_at, "{whole} of {crash_at}");
            eprintln!(
                "fork: {} crash points: {} left no child, {} a whole one, none a half-made one",
                crash_at - 1,
                crash_at - whole,
                whole - 1
            );
            break;
        }
        assert!(crash_at < 200, "the fork never finished");
    }
}

#[test]
fn store_forks_and_lists_where_a_session_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), opts()).unwrap();
    let (pid, pj) = store.create().unwrap();
    pj.append_json(r#"{"kind":"meta","body":{"title":"p"}}"#)
        .unwrap();
    pj.close().unwrap();
    let (cid, cj) = store.fork(&pid, 2).unwrap();
    cj.close().unwrap();
    assert!(store.fork("../etc", 1).is_err(), "ids are validated");
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    let child = list.iter().find(|e| e.id == cid).unwrap();
    assert_eq!(child.fork_of, Some((pid.clone(), 2)));
    assert_eq!(child.title.as_deref(), Some("p"));
    assert!(list.iter().find(|e| e.id == pid).unwrap().fork_of.is_none());
}
