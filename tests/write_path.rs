//! The write path through the storage seam: group commit shares fsyncs, a failed fsync
//! poisons the journal without hanging anyone, rotation keeps the chain, and whole sessions
//! round-trip (append → reopen equals what was appended).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Counting, message, opts};
use proptest::prelude::*;
use turnwal::{Error, Journal, Options, Status, SyncPolicy, WriterOptions};

#[test]
fn concurrent_always_appenders_share_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let counting = Arc::new(Counting::default());
    let syncs = Arc::clone(&counting.file_syncs);
    let o = Options {
        sync: SyncPolicy::Always,
        storage: counting,
        ..Options::default()
    };
    let (j, _) = Journal::open(tmp.path(), o).unwrap();
    let before = syncs.load(Ordering::SeqCst);
    let (threads, per_thread) = (8, 200);
    std::thread::scope(|s| {
        for t in 0..threads {
            let j = &j;
            s.spawn(move || {
                for i in 0..per_thread {
                    let seq = j.append_json(&message(t * 1000 + i, 200)).unwrap();
                    assert!(
                        j.durable_seq() >= seq,
                        "Always: durable before append returns"
                    );
                }
            });
        }
    });
    let appends = (threads * per_thread) as u64;
    let used = syncs.load(Ordering::SeqCst) - before;
    assert!(
        used < appends,
        "{used} syncs for {appends} appends: no sharing"
    );
    assert_eq!(j.last_seq(), appends + 1);
    assert_eq!(j.durable_seq(), appends + 1);
    j.close().unwrap();
    let view = Journal::open_read_only(tmp.path(), &Options::default()).unwrap();
    assert_eq!(view.events.len() as u64, appends + 1);
    eprintln!("group commit: {appends} appends, {used} fdatasyncs");
}

#[test]
fn failed_fsync_poisons_and_wakes_every_waiter() {
    let tmp = tempfile::tempdir().unwrap();
    // Creation syncs: the tmp segment, then the session event. Fail everything after that.
    let counting = Arc::new(Counting {
        fail_syncs_after: Some(2),
        ..Counting::default()
    });
    let o = Options {
        sync: SyncPolicy::Always,
        storage: counting,
        ..Options::default()
    };
    let (j, _) = Journal::open(tmp.path(), o).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for t in 0..6 {
            let (j, tx) = (&j, tx.clone());
            s.spawn(move || {
                let r = j.append_json(&message(t, 50));
                tx.send(r.map_err(|e| e.to_string())).unwrap();
            });
        }
        drop(tx);
        for _ in 0..6 {
            // Deadline: a waiter left hanging fails the test instead of blocking it.
            let r = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("a waiter hung");
            assert!(
                r.is_err(),
                "an append claimed durability after the fsync failed"
            );
        }
    });
    assert!(matches!(
        j.append_json(&message(9, 5)),
        Err(Error::Journal(turnwal_journal::Error::Poisoned { .. }))
    ));
    assert!(j.sync().is_err(), "never retried");
    drop(j);
    // Reopen recovers from disk: the session event was durable.
    let (j2, report) = Journal::open(tmp.path(), Options::default()).unwrap();
    assert_ne!(report.status, Status::Corrupt);
    assert!(report.last_seq >= 1);
    j2.close().unwrap();
}

#[test]
fn rotation_keeps_a_contiguous_chain_and_seals_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = WriterOptions {
        segment_bytes_max: 16 << 10,
        prewrite_bytes: 4 << 10,
        ..WriterOptions::default()
    };
    let o = Options {
        sync: SyncPolicy::Never,
        writer: writer.clone(),
        ..Options::default()
    };
    let (j, _) = Journal::open(tmp.path(), o).unwrap();
    for i in 0..300 {
        j.append_json(&message(i, 300)).unwrap();
    }
    j.close().unwrap();
    let view = Journal::open_read_only(tmp.path(), &Options::default()).unwrap();
    assert_eq!(view.report.status, Status::Clean);
    assert!(
        view.report.segments > 5,
        "{} segments",
        view.report.segments
    );
    let seqs: Vec<u64> = view.events.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=301).collect::<Vec<_>>());
    for seg in &view.report.segment_reports[..view.report.segments - 1] {
        assert_eq!(
            seg.bytes, seg.valid_end,
            "sealed segment {} trimmed to its last frame",
            seg.file
        );
        assert!(seg.bytes <= 16 << 10);
    }
    // Reopen and continue across the rotation boundary.
    let (j, r) = Journal::open(
        tmp.path(),
        Options {
            writer,
            ..opts(SyncPolicy::Always)
        },
    )
    .unwrap();
    assert_eq!(r.last_seq, 301);
    assert_eq!(j.append_json(&message(1000, 10)).unwrap(), 302);
    j.close().unwrap();
}

#[test]
fn batch_policy_makes_events_durable_without_explicit_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(SyncPolicy::Batch {
        max_delay: Duration::from_millis(2),
        max_bytes: 1 << 20,
    });
    let (j, _) = Journal::open(tmp.path(), o).unwrap();
    let seq = j.append_json(&message(1, 10)).unwrap();
    let d = j
        .wait_durable_after(seq - 1, Duration::from_secs(10))
        .unwrap();
    assert!(d >= seq, "background flusher never synced");
    j.close().unwrap();
}

#[test]
fn oversized_record_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = WriterOptions {
        record_bytes_max: 1000,
        ..WriterOptions::default()
    };
    let (j, _) = Journal::open(
        tmp.path(),
        Options {
            writer,
            ..opts(SyncPolicy::Always)
        },
    )
    .unwrap();
    j.append_json(&message(1, 10)).unwrap();
    match j.append_json(&message(2, 5000)) {
        Err(Error::Journal(turnwal_journal::Error::RecordTooLarge { size, limit })) => {
            assert_eq!(limit, 1000);
            assert!(size > 5000);
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(
        j.append_json(&message(3, 10)).unwrap(),
        3,
        "no seq consumed, not poisoned"
    );
    j.close().unwrap();
}

#[test]
fn delta_for_a_finished_message_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(tmp.path(), opts(SyncPolicy::Never)).unwrap();
    j.append_json(r#"{"kind":"message","body":{"id":"a","role":"assistant"}}"#)
        .unwrap();
    let e = j
        .append_json(
            r#"{"kind":"delta","body":{"message_id":"a","index":0,"type":"text","text":"x"}}"#,
        )
        .unwrap_err();
    assert!(e.to_string().contains("body.message_id"), "{e}");
    assert_eq!(j.last_seq(), 2);
    j.close().unwrap();
}

fn arb_envelope() -> impl Strategy<Value = String> {
    let id = prop::sample::select(vec!["m1", "m2", "m3", "m4"]);
    prop_oneof![
        (id.clone(), "[a-z ]{0,40}", prop::sample::select(vec!["user", "assistant", "tool"])).prop_map(|(id, t, role)| format!(
            r#"{{"kind":"message","turn":1,"body":{{"id":"{id}","role":"{role}","parts":[{{"type":"text","text":"{t}"}}],"n":1.5e3}}}}"#
        )),
        ("[a-z]{1,5}", prop::option::of(0u64..1000)).prop_map(|(k, v)| match v {
            Some(v) => format!(r#"{{"kind":"meta","body":{{"{k}":{v}}}}}"#),
            None => format!(r#"{{"kind":"meta","body":{{"{k}":null}}}}"#),
        }),
        (prop::sample::select(vec!["k1", "k2"]), 0u64..10_000, 0u64..500).prop_map(|(k, i, o)| format!(
            r#"{{"kind":"usage","body":{{"call_key":"{k}","model":"m","input":{{"total":{i}}},"output":{{"total":{o}}}}}}}"#
        )),
        (1u64..5, prop::sample::select(vec!["started", "completed", "interrupted"])).prop_map(|(t, e)| format!(
            r#"{{"kind":"turn","turn":{t},"ts":"2026-01-02T03:04:05.678Z","body":{{"event":"{e}"}}}}"#
        )),
        "[ -~]{0,30}".prop_map(|s| format!(r#"{{"kind":"x-note","body":{{"s":{}}}}}"#, serde_json::Value::String(s))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// append → reopen gives back every event, bodies JSON-equal, and the same session.
    #[test]
    fn whole_sessions_round_trip(lines in prop::collection::vec(arb_envelope(), 0..40), small_segments in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let writer = if small_segments {
            WriterOptions { segment_bytes_max: 2048, prewrite_bytes: 512, ..WriterOptions::default() }
        } else {
            WriterOptions::default()
        };
        let (j, _) = Journal::open(tmp.path(), Options { writer, ..opts(SyncPolicy::Never) }).unwrap();
        for l in &lines {
            j.append_json(l).unwrap();
        }
        let live = j.session();
        j.close().unwrap();
        let view = Journal::open_read_only(tmp.path(), &Options::default()).unwrap();
        prop_assert_eq!(view.report.status, Status::Clean);
        prop_assert_eq!(view.events.len(), lines.len() + 1);
        for ((seq, ev), line) in view.events[1..].iter().zip(&lines) {
            let input: serde_json::Value = serde_json::from_str(line).unwrap();
            let stored: serde_json::Value = serde_json::from_str(&ev.body).unwrap();
            prop_assert_eq!(&stored, &input["body"], "seq {}", seq);
            prop_assert_eq!(ev.kind.name(), input["kind"].as_str().unwrap());
        }
        prop_assert_eq!(view.session, live);
    }
}

#[test]
fn batch_policy_bounds_the_unsynced_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    // A flusher that effectively never fires on time: only backpressure can keep up.
    let max_bytes = 8 << 10;
    let o = opts(SyncPolicy::Batch {
        max_delay: Duration::from_secs(3600),
        max_bytes,
    });
    let (j, _) = Journal::open(tmp.path(), o).unwrap();
    let mut max_behind_bytes = 0u64;
    for i in 0..400 {
        let seq = j.append_json(&message(i, 500)).unwrap();
        // Each event is ~600 bytes on disk: seqs not yet durable measure the bytes at risk.
        max_behind_bytes = max_behind_bytes.max((seq - j.durable_seq()) * 600);
    }
    assert!(j.durable_seq() > 1, "backpressure never synced");
    assert!(
        max_behind_bytes <= 3 * max_bytes,
        "{max_behind_bytes} bytes at risk, bound {max_bytes}"
    );
    j.close().unwrap();
}
