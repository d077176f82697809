//! Many sessions: a `Store` creates, opens, lists and deletes them; a damaged or locked session
//! is listed with its status, never hidden; ids are validated before they touch a path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::os::unix::fs::FileExt;
use std::time::Instant;

use turnwal::{CompactionPolicy, Options, SessionStatus, Store, SyncPolicy};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Never,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

fn message(i: usize) -> String {
    format!(
        r#"{{"kind":"message","turn":1,"body":{{"id":"m{i}","role":"user","parts":[{{"type":"text","text":"hello {i}"}}]}}}}"#
    )
}

/// The only segment of a session directory.
fn segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "twl"))
        .collect();
    assert_eq!(segs.len(), 1);
    segs.pop().unwrap()
}

#[test]
fn create_list_open_and_delete_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("sessions"), opts()).unwrap();
    let (a, ja) = store.create().unwrap();
    ja.append_json(r#"{"kind":"meta","body":{"title":"Fix the flaky test"}}"#)
        .unwrap();
    for i in 0..3 {
        ja.append_json(&message(i)).unwrap();
    }
    ja.close().unwrap();
    let (b, jb) = store.create().unwrap();
    jb.close().unwrap();
    // Not sessions: a stray directory and a file.
    std::fs::create_dir(store.root().join("notes")).unwrap();
    std::fs::write(store.root().join("README"), b"x").unwrap();

    let list = store.list().unwrap();
    let mut ids = vec![a.clone(), b.clone()];
    ids.sort();
    assert_eq!(list.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    let ea = list.iter().find(|e| e.id == a).unwrap();
    assert_eq!(ea.title.as_deref(), Some("Fix the flaky test"));
    assert_eq!(ea.messages, 3);
    assert_eq!(ea.status, SessionStatus::Clean);
    assert!(ea.last_activity_ms >= ea.created_at_ms && ea.created_at_ms > 0);

    let (j, _) = store.open_session(&a).unwrap();
    assert_eq!(j.session().messages.len(), 3);
    // A writer holds it: listed as locked, and not deletable.
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .find(|e| e.id == a)
            .unwrap()
            .status,
        SessionStatus::Locked
    );
    assert!(store.delete(&a, false).is_err());
    j.close().unwrap();

    store.delete(&a, false).unwrap();
    assert!(!store.root().join(&a).exists());
    let trash: Vec<_> = std::fs::read_dir(store.root().join(turnwal::TRASH_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(trash.len(), 1);
    assert!(trash[0].starts_with(&a), "{trash:?}");
    store.delete(&b, true).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join(turnwal::TRASH_DIR))
            .unwrap()
            .count(),
        1,
        "purged, not trashed"
    );
}

#[test]
fn ids_are_validated_before_they_touch_a_path() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), opts()).unwrap();
    for bad in [
        "..",
        "../x",
        "a/b",
        "",
        "ABCDEF0123456789ABCDEF0123456789",
        "0123",
    ] {
        assert!(store.path_of(bad).is_err(), "{bad:?}");
        assert!(store.open_session(bad).is_err(), "{bad:?}");
        assert!(store.delete(bad, true).is_err(), "{bad:?}");
    }
    // A valid id that is not in the store: refused, and nothing is created.
    let missing = "0123456789abcdef0123456789abcdef";
    assert!(store.open_session(missing).is_err());
    assert!(!tmp.path().join(missing).exists());
    assert!(store.delete(missing, false).is_err());
}

/// A thousand sessions, some torn, some corrupt, one locked: all listed, each with its status.
#[test]
fn listing_a_thousand_sessions_names_every_status() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), opts()).unwrap();
    let mut ids = Vec::new();
    for n in 0..1000 {
        let (id, j) = store.create().unwrap();
        for i in 0..(n % 5) + 2 {
            j.append_json(&message(i)).unwrap();
        }
        j.close().unwrap();
        ids.push(id);
    }
    let mut expected = std::collections::BTreeMap::new();
    for (n, id) in ids.iter().enumerate() {
        let dir = store.root().join(id);
        let status = match n % 100 {
            // Garbage right after the last frame: a torn tail.
            7 => {
                let seg = segment(&dir);
                let data = std::fs::read(&seg).unwrap();
                let end = data.iter().rposition(|&b| b != 0).unwrap() + 1;
                let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
                f.write_at(&[0xAB; 64], end.next_multiple_of(8) as u64)
                    .unwrap();
                SessionStatus::Torn
            }
            // A flipped byte in the first record after the session event: corruption.
            13 => {
                let seg = segment(&dir);
                let data = std::fs::read(&seg).unwrap();
                let at = 64 + 40 + 8; // inside the first frame's payload
                let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
                f.write_at(&[data[at] ^ 0xFF], at as u64).unwrap();
                SessionStatus::Corrupt
            }
            _ => SessionStatus::Clean,
        };
        expected.insert(id.clone(), status);
    }
    let (locked, _held) = (ids[500].clone(), store.open_session(&ids[500]).unwrap());
    expected.insert(locked, SessionStatus::Locked);

    let t = Instant::now();
    let list = store.list().unwrap();
    let took = t.elapsed();
    println!("store: listed {} sessions in {took:?}", list.len());
    assert_eq!(list.len(), 1000);
    let got: std::collections::BTreeMap<_, _> =
        list.iter().map(|e| (e.id.clone(), e.status)).collect();
    assert_eq!(got, expected);
    for e in &list {
        match e.status {
            SessionStatus::Clean | SessionStatus::Locked => {}
            _ => assert!(
                e.problem.is_some(),
                "{} {:?} without a reason",
                e.id,
                e.status
            ),
        }
    }
}

/// Listing reads typed fields without replaying; it must agree with a full read-only open on
/// title, message count, creation time, last activity and fork_of, whatever the history:
/// superseded and streamed messages, a title set and then deleted, a compaction, a fork.
#[test]
fn listing_without_replay_agrees_with_a_full_open() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), opts()).unwrap();
    let histories: [&[&str]; 4] = [
        &[r#"{"kind":"meta","body":{"title":"first"}}"#],
        &[
            r#"{"kind":"meta","body":{"title":"gone"}}"#,
            r#"{"kind":"delta","turn":1,"body":{"message_id":"a","index":0,"type":"text","text":"x"}}"#,
            r#"{"kind":"message","turn":1,"body":{"id":"a","role":"assistant","parts":[]}}"#,
            r#"{"kind":"delta","turn":1,"body":{"message_id":"b","index":0,"type":"text","text":"y"}}"#,
            r#"{"kind":"meta","body":{"title":null}}"#,
        ],
        &[
            r#"{"kind":"meta","body":{"title":"compacted"}}"#,
            "COMPACT",
            r#"{"kind":"message","turn":1,"body":{"id":"m0","role":"user","parts":[]}}"#,
        ],
        &[r#"{"kind":"meta","body":{"title":7}}"#],
    ];
    let mut ids = Vec::new();
    for h in histories {
        let (id, j) = store.create().unwrap();
        for i in 0..3 {
            j.append_json(&message(i)).unwrap();
        }
        for line in h {
            if *line == "COMPACT" {
                j.compact().unwrap();
            } else {
                j.append_json(line).unwrap();
            }
        }
        j.close().unwrap();
        ids.push(id);
    }
    let (fork, j) = store.fork(&ids[1], 5).unwrap();
    j.close().unwrap();
    ids.push(fork);
    let list = store.list().unwrap();
    assert_eq!(list.len(), ids.len());
    for e in &list {
        let ro = turnwal::Journal::open_read_only(store.path_of(&e.id).unwrap(), &opts()).unwrap();
        let s = &ro.session;
        let title = s
            .meta
            .get("title")
            .and_then(|v| serde_json::from_str::<String>(v).ok());
        assert_eq!(e.title, title, "{}", e.id);
        assert_eq!(e.messages, s.messages.len(), "{}", e.id);
        assert_eq!(e.created_at_ms, s.created_at_ms, "{}", e.id);
        assert_eq!(e.fork_of, s.fork_of, "{}", e.id);
        assert_eq!(
            e.last_activity_ms,
            ro.events.last().unwrap().1.ts_ms,
            "{}",
            e.id
        );
    }
    let titles: Vec<Option<&str>> = ids
        .iter()
        .map(|id| list.iter().find(|e| &e.id == id).unwrap().title.as_deref())
        .collect();
    assert_eq!(
        titles,
        [Some("first"), None, Some("compacted"), None, Some("gone")]
    );
}
