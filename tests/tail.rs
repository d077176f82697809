//! Live readers: a `Tail` follows a journal while a writer appends, rotates and compacts, and
//! sees every durable event exactly once, in order, without ever failing.
//!
//! Size knob: `TURNWAL_TAIL_SECONDS` (default 3; the documented long run is 60).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use turnwal::{CompactionPolicy, Journal, Options, SyncPolicy, Tail, WriterOptions};

fn seconds() -> u64 {
    std::env::var("TURNWAL_TAIL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Small segments (so the writer rotates often) and no automatic compaction (the writer
/// compacts on its own schedule).
fn writer_opts() -> Options {
    Options {
        sync: SyncPolicy::default(),
        writer: WriterOptions {
            segment_bytes_max: 64 * 1024,
            prewrite_bytes: 16 * 1024,
            ..WriterOptions::default()
        },
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// Only messages and turn events: a compaction folds none of them away, so the tail must see
/// every seq the journal ever assigned.
fn line(i: u64) -> String {
    if i.is_multiple_of(10) {
        format!(
            r#"{{"kind":"turn","turn":{},"body":{{"event":"started"}}}}"#,
            i / 10
        )
    } else {
        let text = "y".repeat(100 + (i as usize * 37) % 900);
        format!(
            r#"{{"kind":"message","turn":{},"body":{{"id":"m{i}","role":"assistant","parts":[{{"type":"text","text":"{text}"}}]}}}}"#,
            i / 10
        )
    }
}

#[test]
fn a_tail_sees_every_durable_event_once_while_the_writer_rotates_and_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (j, _) = Journal::open(&dir, writer_opts()).unwrap();
    let j = Arc::new(j);
    // seq → the line appended there (seq 1 is the journal's own session event).
    let appended: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (j, appended, stop) = (Arc::clone(&j), Arc::clone(&appended), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            let mut compactions = 0;
            // Compact when the session has doubled since the last time (as the library's
            // policy bounds rewrites), from 700 events on, rotating many times in between.
            let mut next_compaction = 700;
            while !stop.load(Ordering::SeqCst) {
                let l = line(i);
                let seq = j.append_json(&l).unwrap();
                appended.lock().unwrap().insert(seq, l);
                i += 1;
                if i == next_compaction {
                    j.compact().unwrap();
                    compactions += 1;
                    next_compaction *= 2;
                }
                if i.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            (i, compactions)
        })
    };
    let mut tail = Tail::new(&dir, Options::default());
    let mut seen: Vec<(u64, Arc<turnwal::Event>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut polls = 0u64;
    while Instant::now() < deadline {
        let events = tail.poll().unwrap();
        let durable = j.durable_seq();
        for (seq, _) in &events {
            assert!(
                *seq <= durable,
                "seq {seq} yielded before it was durable ({durable})"
            );
        }
        seen.extend(events);
        polls += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    let (appends, compactions) = writer.join().unwrap();
    let last = j.last_seq();
    let Ok(j) = Arc::try_unwrap(j) else {
        panic!("the writer thread still holds the journal")
    };
    j.close().unwrap();
    // The tail follows while the writer holds the lock (from the watermarks), not only once it
    // is gone.
    let live = seen.len();
    assert!(
        live > 1,
        "while the writer ran the tail saw {live} of {last} events"
    );
    // The writer is gone: everything valid is yielded now.
    seen.extend(tail.poll().unwrap());
    println!(
        "tail: {polls} polls, {live} events seen live and {} after close, {appends} appends, \
         {compactions} compactions, last seq {last}",
        seen.len() - live
    );
    assert!(
        compactions >= 1 || seconds() < 2,
        "the writer never compacted"
    );
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    let appended = appended.lock().unwrap();
    for (seq, event) in &seen[1..] {
        let want = turnwal::Event::from_envelope(&appended[seq], event.ts_ms).unwrap();
        assert_eq!(event.kind, want.kind, "seq {seq}");
        assert_eq!(event.body, want.body, "seq {seq}");
    }
    // Nothing new: a further poll yields nothing.
    assert!(tail.poll().unwrap().is_empty());
}

#[test]
fn turnwal_tail_prints_what_export_raw_prints_once_the_writer_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (j, _) = Journal::open(dir, writer_opts()).unwrap();
    for i in 1..40 {
        j.append_json(&line(i)).unwrap();
    }
    j.compact().unwrap();
    for i in 40..60 {
        j.append_json(&line(i)).unwrap();
    }
    j.close().unwrap();
    let bin = env!("CARGO_BIN_EXE_turnwal");
    let tail = Command::new(bin).arg("tail").arg(dir).output().unwrap();
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let export = Command::new(bin)
        .args(["export", "--raw"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!tail.stdout.is_empty());
    assert_eq!(
        String::from_utf8(tail.stdout).unwrap(),
        String::from_utf8(export.stdout).unwrap()
    );
    let from = Command::new(bin)
        .args(["tail", "--from", "50"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8(from.stdout).unwrap();
    assert_eq!(text.lines().count(), 11, "seqs 50..=60");
    assert!(text.starts_with("{\"seq\":50,"));
}

/// `turnwal tail -f` follows a live `turnwal append` in another process: every appended event
/// comes out, once, in order, while the writer still runs.
#[test]
fn turnwal_tail_f_follows_a_writer_in_another_process() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let bin = env!("CARGO_BIN_EXE_turnwal");
    let mut writer = Command::new(bin)
        .args(["append", dir.to_str().unwrap(), "--sync", "always"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = writer.stdin.take().unwrap();
    input
        .write_all(format!("{}\n", line(1)).as_bytes())
        .unwrap();
    input.flush().unwrap();
    // The journal exists once the writer has opened it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("LOCK").exists() {
        assert!(
            Instant::now() < deadline,
            "the writer never created the journal"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut tail = Command::new(bin)
        .args(["tail", "-f"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // A watchdog: should the tail never print what is expected, it is killed, its output
    // ends, and the test fails instead of hanging.
    let pid = tail.id().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !done.load(Ordering::SeqCst) {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        })
    };
    let n = 40u64;
    for i in 2..=n {
        input
            .write_all(format!("{}\n", line(i)).as_bytes())
            .unwrap();
        input.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // Read until the tail printed the session event and all n events, while the writer is
    // still running (its stdin is open), except what the watermark cannot prove yet: the last
    // few events come out once the writer ends.
    let mut out = BufReader::new(tail.stdout.take().unwrap());
    let mut seqs = Vec::new();
    let mut text = String::new();
    while seqs.len() < (n as usize).saturating_sub(3) {
        text.clear();
        assert!(out.read_line(&mut text).unwrap() > 0, "tail ended early");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        seqs.push(v["seq"].as_u64().unwrap());
    }
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the writer must still be running"
    );
    drop(input);
    assert!(writer.wait().unwrap().success());
    while seqs.len() < n as usize + 1 {
        text.clear();
        assert!(out.read_line(&mut text).unwrap() > 0, "tail ended early");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        seqs.push(v["seq"].as_u64().unwrap());
    }
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    tail.kill().unwrap();
    tail.wait().unwrap();
    assert_eq!(seqs, (1..=n + 1).collect::<Vec<_>>());
}
