//! The fuzz targets' bodies, replayed on stable over the committed corpus on every `cargo test`.
//!
//! `fuzz/` is a cargo-fuzz crate that needs nightly; its targets call the functions of
//! `fuzz/src/bodies.rs`, included here, so every corpus input (seeds built from real segments,
//! snapshots and envelopes, and every crash the fuzzer ever found, minimised) is checked by CI
//! even without nightly. Each input is also replayed truncated and with single bytes flipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "fuzz bodies assert the properties: a violation must fail loudly"
)]

#[path = "../fuzz/src/bodies.rs"]
mod bodies;

use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus of {target}: {e}"))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_target_has_a_seed_corpus_and_every_input_holds() {
    let mut inputs = 0;
    for (target, body) in bodies::TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "no corpus for {target}");
        for (name, data) in &files {
            let run = |d: &[u8], what: &str| {
                let r = std::panic::catch_unwind(|| body(d));
                if let Err(e) = r {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panic!("fuzz body {target} failed on corpus/{target}/{name} ({what}): {msg}");
                }
            };
            run(data, "as committed");
            inputs += 1;
            // Torn: a few prefixes; damaged: a few single-byte flips.
            let n = data.len();
            for cut in [n / 2, n.saturating_sub(1), n.saturating_sub(7)] {
                run(&data[..cut.min(n)], "truncated");
            }
            for i in [0, n / 3, n / 2, n.saturating_sub(1)] {
                if i < n {
                    let mut d = data.clone();
                    d[i] ^= 0x5a;
                    run(&d, "one byte flipped");
                }
            }
        }
    }
    println!(
        "fuzz corpus: {inputs} inputs replayed through {} targets",
        bodies::TARGETS.len()
    );
}

/// Builds the seed corpus from real segments, snapshots and envelopes the engine produces, and
/// checks that the committed corpus holds every seed (by name). With
/// `TURNWAL_WRITE_FUZZ_CORPUS=1` it rewrites `fuzz/corpus` instead (after a format change).
#[test]
fn the_committed_corpus_holds_every_seed() {
    use turnwal::{CompactionPolicy, Journal, Options, SyncPolicy, WriterOptions};
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let rewrite = std::env::var_os("TURNWAL_WRITE_FUZZ_CORPUS").is_some();
    let scratch = tempfile::tempdir().unwrap();
    let root = if rewrite {
        committed.clone()
    } else {
        scratch.path().to_path_buf()
    };
    let made = std::cell::RefCell::new(Vec::new());
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
        made.borrow_mut().push(format!("{target}/{name}"));
    };
    // A small realistic session in small segments, then compacted.
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        sync: SyncPolicy::Never,
        writer: WriterOptions {
            segment_bytes_max: 4096,
            prewrite_bytes: 0,
            ..WriterOptions::default()
        },
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    };
    let lines: Vec<String> = (0..3).flat_map(seed_step).collect();
    let (j, _) = Journal::open(tmp.path(), opts.clone()).unwrap();
    for l in &lines {
        j.append_json(l).unwrap();
    }
    j.close().unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "twl"))
        .collect();
    segs.sort();
    let first = std::fs::read(&segs[0]).unwrap();
    // decode_record: each frame of the first segment.
    let mut off = 64;
    let mut k = 0;
    while let Ok((_, len)) = turnwal_journal::record::decode(&first[off..], 1) {
        if k < 6 {
            write(
                "decode_record",
                &format!("frame-{k}"),
                &first[off..off + len],
            );
        }
        off += len;
        k += 1;
    }
    // replay_segment: a whole real segment; a torn one; valid segments with garbage tails.
    let mut whole = vec![0u8];
    whole.extend_from_slice(&first);
    write("replay_segment", "real-segment", &whole);
    let mut torn = vec![0u8];
    torn.extend_from_slice(&first[..first.len() - 13]);
    write("replay_segment", "real-segment-torn", &torn);
    write(
        "replay_segment",
        "valid-3-zero-tail",
        &[[7u8].as_slice(), &[0; 64]].concat(),
    );
    write(
        "replay_segment",
        "valid-2-garbage-tail",
        &[5u8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3],
    );
    let mut frame_tail = vec![3u8];
    frame_tail.extend_from_slice(&first[64..64 + 40]);
    write("replay_segment", "valid-1-header-of-a-frame", &frame_tail);
    // snapshot_parse: a real snapshot, and an export of the same session.
    let (j, _) = Journal::open(tmp.path(), opts).unwrap();
    let r = j.compact().unwrap();
    j.close().unwrap();
    let snap = std::fs::read(tmp.path().join(&r.snapshot)).unwrap();
    write("snapshot_parse", "real-snapshot", &snap);
    write(
        "snapshot_parse",
        "real-snapshot-torn",
        &snap[..snap.len() - 9],
    );
    write("snapshot_parse", "empty", b"");
    // append_input: every kind of line, and refusals.
    for (i, l) in lines.iter().enumerate().take(14) {
        write("append_input", &format!("line-{i:02}"), l.as_bytes());
    }
    for (name, l) in [
        ("bad-kind", r#"{"kind":"nope","body":{}}"#),
        ("seq-given", r#"{"seq":3,"kind":"meta","body":{}}"#),
        ("not-json", "{\"kind\":"),
        (
            "extension",
            r#"{"kind":"x-note","ts":"2026-11-21T10:00:00+02:00","body":{"a":[1,{"b":null}],"u":"\u00e9\n"}}"#,
        ),
    ] {
        write("append_input", name, l.as_bytes());
    }
    // torn_workload: structured bytes read by `arbitrary`; a spread of shapes.
    for (i, seed) in [
        &[1u8, 6, 0, 50, 1, 0, 3, 20, 4, 0, 2, 0, 0, 200, 5, 9, 1, 2][..],
        &[
            0, 12, 2, 255, 3, 1, 5, 0, 6, 100, 7, 3, 1, 1, 0, 44, 2, 3, 4, 5, 6, 7, 8, 9,
        ],
        &[
            1, 24, 0, 1, 0, 1, 0, 1, 0, 1, 4, 4, 5, 5, 6, 6, 7, 7, 3, 3, 2, 2, 1, 1, 9, 9, 9,
        ],
        &[0, 3, 1, 0, 0, 0, 0, 0, 0, 0],
    ]
    .iter()
    .enumerate()
    {
        write("torn_workload", &format!("shape-{i}"), seed);
    }
    let made = made.into_inner();
    assert!(made.len() > 30);
    for name in &made {
        assert!(
            committed.join(name).exists(),
            "fuzz/corpus/{name} is missing: rewrite the corpus with TURNWAL_WRITE_FUZZ_CORPUS=1"
        );
    }
}

/// One realistic agent step, every kind of event (kept here so the corpus does not depend on
/// other test helpers).
fn seed_step(i: usize) -> Vec<String> {
    let t = i + 1;
    vec![
        format!(r#"{{"kind":"turn","turn":{t},"body":{{"event":"started"}}}}"#),
        format!(
            r#"{{"kind":"message","turn":{t},"body":{{"id":"u{i}","role":"user","parts":[{{"type":"text","text":"question {i}"}}]}}}}"#
        ),
        format!(
            r#"{{"kind":"delta","turn":{t},"body":{{"message_id":"a{i}","index":0,"type":"text","text":"Let me"}}}}"#
        ),
        format!(
            r#"{{"kind":"delta","turn":{t},"body":{{"message_id":"a{i}","index":1,"type":"tool_call","call_id":"c{i}","name":"sh","arguments":"{{}}"}}}}"#
        ),
        format!(
            r#"{{"kind":"message","turn":{t},"body":{{"id":"a{i}","role":"assistant","parts":[{{"type":"text","text":"Let me"}},{{"type":"tool_call","call_id":"c{i}","name":"sh","arguments":"{{}}"}}]}}}}"#
        ),
        format!(
            r#"{{"kind":"usage","turn":{t},"body":{{"call_key":"k{i}","model":"m","input":{{"total":10,"cache_read":2}},"output":{{"total":5}},"cost":{{"amount":0.01,"currency":"USD"}}}}}}"#
        ),
        format!(
            r#"{{"kind":"tool_run","turn":{t},"body":{{"call_id":"c{i}","event":"started"}}}}"#
        ),
        format!(
            r#"{{"kind":"message","turn":{t},"body":{{"id":"r{i}","role":"tool","parts":[{{"type":"tool_result","call_id":"c{i}","outcome":"ok"}}]}}}}"#
        ),
        format!(r#"{{"kind":"meta","body":{{"title":"step {i}","cwd":null}}}}"#),
        format!(
            r#"{{"kind":"rewind","turn":{t},"body":{{"to_seq":{}}}}}"#,
            i * 3
        ),
        format!(
            r#"{{"kind":"compaction","turn":{t},"body":{{"summary_message_id":"u{i}","through_seq":{}}}}}"#,
            i * 5
        ),
        format!(r#"{{"kind":"turn","turn":{t},"body":{{"event":"completed"}}}}"#),
    ]
}
