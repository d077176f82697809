//! Promise 7 of the durability contract (README): bad input gets a clear error and changes nothing.
//!
//! - One table of bad envelopes, each refused both through the library (`Journal::append_json`:
//!   the error names the field, `last_seq` is unchanged, a reopen shows exactly the events
//!   before it, the next good append takes the very next seq) and through `turnwal append`
//!   (good lines, the bad line, good lines: exit 1, stderr names the line number and the field,
//!   `export --raw` shows exactly the good lines before it).
//! - Limits: the record size limit (error says the size and the limit, nothing written), the
//!   input line limit of `turnwal append` (refused as soon as it is passed, naming the line and
//!   the limit).
//! - Forged files: a frame whose length field claims ~4 GiB (or 64 MiB beyond the end of the
//!   file), and snapshots whose trailer or header claim huge counts, are reported by
//!   `Journal::open_read_only` without a panic and without allocating for the claim: a counting
//!   global allocator measures the heap high-water mark of the open.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use turnwal::{CompactionPolicy, Error, Journal, Options, Status, SyncPolicy, WriterOptions};

// The counting allocator (per thread, so tests running in parallel do not disturb a measurement).
#[path = "common/count_alloc.rs"]
mod alloc;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The table of bad envelopes.

/// Appended before every bad line (and expected back, exactly, after it is refused).
const GOOD_BEFORE: [&str; 3] = [
    r#"{"kind":"meta","body":{"title":"bad input"}}"#,
    r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
    r#"{"kind":"message","turn":1,"body":{"id":"m-done","role":"assistant","parts":[{"type":"text","text":"final"}]}}"#,
];

/// Offered after the bad line.
const GOOD_AFTER: &str =
    r#"{"kind":"message","turn":1,"body":{"id":"m-after","role":"user","parts":[]}}"#;

struct Case {
    name: &'static str,
    line: &'static [u8],
    /// The field the error must name.
    field: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "invalid JSON",
        line: br#"{"kind":"meta","body":{}"#,
        field: "envelope",
    },
    Case {
        name: "not an object",
        line: br#"["kind","meta"]"#,
        field: "envelope",
    },
    Case {
        name: "trailing garbage",
        line: br#"{"kind":"meta","body":{}} {}"#,
        field: "envelope",
    },
    Case {
        name: "missing kind",
        line: br#"{"body":{}}"#,
        field: "kind",
    },
    Case {
        name: "kind not a string",
        line: br#"{"kind":7,"body":{}}"#,
        field: "kind",
    },
    Case {
        name: "missing body",
        line: br#"{"kind":"meta"}"#,
        field: "body",
    },
    Case {
        name: "body an array",
        line: br#"{"kind":"meta","body":[1]}"#,
        field: "body",
    },
    Case {
        name: "body null",
        line: br#"{"kind":"meta","body":null}"#,
        field: "body",
    },
    Case {
        name: "unknown kind without x-",
        line: br#"{"kind":"note","body":{}}"#,
        field: "kind",
    },
    Case {
        name: "empty extension name",
        line: br#"{"kind":"x-","body":{}}"#,
        field: "kind",
    },
    Case {
        name: "seq supplied",
        line: br#"{"seq":4,"kind":"meta","body":{}}"#,
        field: "seq",
    },
    Case {
        name: "session event",
        line: br#"{"kind":"session","body":{"id":"0123456789abcdef0123456789abcdef","created_at":"2026-11-21T15:04:05.123Z"}}"#,
        field: "kind",
    },
    Case {
        name: "message without id",
        line: br#"{"kind":"message","body":{"role":"user"}}"#,
        field: "body.id",
    },
    Case {
        name: "message without role",
        line: br#"{"kind":"message","body":{"id":"m1"}}"#,
        field: "body.role",
    },
    Case {
        name: "message with unknown role",
        line: br#"{"kind":"message","body":{"id":"m1","role":"robot"}}"#,
        field: "body.role",
    },
    Case {
        name: "delta for a message in final form",
        line: br#"{"kind":"delta","turn":1,"body":{"message_id":"m-done","index":0,"type":"text","text":"late"}}"#,
        field: "body.message_id",
    },
    Case {
        name: "turn negative",
        line: br#"{"kind":"meta","turn":-1,"body":{}}"#,
        field: "turn",
    },
    Case {
        name: "turn a fraction",
        line: br#"{"kind":"meta","turn":1.5,"body":{}}"#,
        field: "turn",
    },
    Case {
        name: "turn a string",
        line: br#"{"kind":"meta","turn":"1","body":{}}"#,
        field: "turn",
    },
    Case {
        name: "turn above 2^32",
        line: br#"{"kind":"meta","turn":4294967297,"body":{}}"#,
        field: "turn",
    },
    Case {
        name: "turn beyond u64",
        line: br#"{"kind":"meta","turn":18446744073709551616,"body":{}}"#,
        field: "turn",
    },
    Case {
        name: "turn event without turn",
        line: br#"{"kind":"turn","body":{"event":"completed"}}"#,
        field: "turn",
    },
    Case {
        name: "ts not a date",
        line: br#"{"kind":"meta","ts":"yesterday","body":{}}"#,
        field: "ts",
    },
    Case {
        name: "ts without offset",
        line: br#"{"kind":"meta","ts":"2026-11-21T15:04:05","body":{}}"#,
        field: "ts",
    },
    Case {
        name: "ts ISO 8601 basic format",
        line: br#"{"kind":"meta","ts":"20261121T150405Z","body":{}}"#,
        field: "ts",
    },
    Case {
        name: "ts a number",
        line: br#"{"kind":"meta","ts":1795273445000,"body":{}}"#,
        field: "ts",
    },
    Case {
        name: "unknown envelope field",
        line: br#"{"kind":"meta","body":{},"sqe":1}"#,
        field: "sqe",
    },
    Case {
        name: "repeated envelope field",
        line: br#"{"kind":"meta","kind":"x-a","body":{}}"#,
        field: "kind",
    },
    Case {
        name: "not UTF-8 (CLI only)",
        line: b"{\"kind\":\"meta\",\"body\":{\"t\":\"\xff\"}}",
        field: "envelope",
    },
];

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// The input error inside `e`, if it is one.
fn input_error(e: &Error) -> Option<&turnwal::InputError> {
    match e {
        Error::Journal(turnwal_journal::Error::Input(i)) => Some(i),
        _ => None,
    }
}

/// Asserts that the journal in `dir` holds exactly the session event and `lines`, in order.
fn assert_holds_exactly(dir: &Path, lines: &[&str], ctx: &str) {
    let ro = Journal::open_read_only(dir, &Options::default()).unwrap();
    assert_eq!(ro.report.status, Status::Clean, "{ctx}");
    let kinds: Vec<String> = ro
        .events
        .iter()
        .map(|(_, e)| e.kind.name().into())
        .collect();
    assert_eq!(ro.events.len(), lines.len() + 1, "{ctx}: {kinds:?}");
    assert_eq!(kinds[0], "session", "{ctx}");
    for (i, ((seq, event), line)) in ro.events[1..].iter().zip(lines).enumerate() {
        let input: Value = serde_json::from_str(line).unwrap();
        assert_eq!(*seq, i as u64 + 2, "{ctx}");
        assert_eq!(event.kind.name(), input["kind"].as_str().unwrap(), "{ctx}");
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body, input["body"], "{ctx}: seq {seq}");
    }
}

#[test]
fn every_bad_envelope_is_refused_naming_its_field_and_changes_nothing() {
    for case in CASES {
        let ctx = case.name;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let (j, _) = Journal::open(&dir, opts()).unwrap();
        for line in GOOD_BEFORE {
            j.append_json(line).unwrap();
        }
        let before = j.last_seq();
        assert_eq!(before, GOOD_BEFORE.len() as u64 + 1);

        // The library takes `&str`: a line that is not UTF-8 cannot reach it.
        let Ok(line) = std::str::from_utf8(case.line) else {
            continue;
        };
        let err = j.append_json(line).unwrap_err();
        let input = input_error(&err)
            .unwrap_or_else(|| panic!("{ctx}: not an input error: {err:?} ({err})"));
        assert_eq!(input.field, case.field, "{ctx}: {err}");
        assert!(
            err.to_string().contains(&format!("`{}`", case.field)),
            "{ctx}: the message names the field: {err}"
        );
        assert_eq!(j.last_seq(), before, "{ctx}: no seq taken");
        assert_holds_exactly(&dir, &GOOD_BEFORE, ctx);

        // The journal is unharmed: the next good line takes the very next seq.
        assert_eq!(j.append_json(GOOD_AFTER).unwrap(), before + 1, "{ctx}");
        j.close().unwrap();
        let mut all = GOOD_BEFORE.to_vec();
        all.push(GOOD_AFTER);
        assert_holds_exactly(&dir, &all, ctx);
    }
}

// ---------------------------------------------------------------------------------------------
// The command line.

fn turnwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turnwal"))
}

/// Runs `turnwal append DIR --sync never ARGS` with `input` on stdin (written from a thread, its
/// errors ignored: the command may exit before reading it all).
fn append_cli(dir: &Path, args: &[&str], input: Vec<u8>) -> std::process::Output {
    let mut child = turnwal()
        .arg("append")
        .arg(dir)
        .args(["--sync", "never"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn export_raw(dir: &Path) -> Vec<Value> {
    let out = turnwal()
        .args(["export", "--raw"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `export --raw` of `dir` is the session event and exactly `lines`, bodies JSON-equal.
fn assert_exports_exactly(dir: &Path, lines: &[&str], ctx: &str) {
    let events = export_raw(dir);
    assert_eq!(events.len(), lines.len() + 1, "{ctx}: {events:?}");
    assert_eq!(events[0]["kind"], "session", "{ctx}");
    for (i, (e, line)) in events[1..].iter().zip(lines).enumerate() {
        let input: Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["seq"], i as u64 + 2, "{ctx}");
        assert_eq!(e["kind"], input["kind"], "{ctx}");
        assert_eq!(e["body"], input["body"], "{ctx}");
    }
}

/// Asserts a refused run: exit 1, stderr naming `line N` and `needle`, the final durable line
/// covering exactly the lines before it.
fn assert_refused(out: &std::process::Output, line_no: usize, needle: &str, ctx: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{ctx}: {stderr}");
    assert!(
        stderr.contains(&format!("line {line_no}: ")) && stderr.contains(needle),
        "{ctx}: stderr names line {line_no} and {needle}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{ctx}: {stderr}");
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().last(),
        Some(format!("{{\"durable_through\": {line_no}}}").as_str()),
        "{ctx}: session + the {} lines before the bad one are durable",
        line_no - 1
    );
}

#[test]
fn cli_refuses_every_bad_line_naming_line_and_field_and_keeps_what_came_before() {
    for case in CASES {
        let ctx = case.name;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let mut input = Vec::new();
        for line in GOOD_BEFORE {
            input.extend_from_slice(line.as_bytes());
            input.push(b'\n');
        }
        input.extend_from_slice(case.line);
        input.push(b'\n');
        input.extend_from_slice(format!("{GOOD_AFTER}\n{GOOD_AFTER}\n").as_bytes());
        let out = append_cli(&dir, &[], input);
        let bad_line = GOOD_BEFORE.len() + 1;
        assert_refused(&out, bad_line, &format!("`{}`", case.field), ctx);
        assert_exports_exactly(&dir, &GOOD_BEFORE, ctx);
    }
}

/// An `x-pad` line of exactly `len` bytes.
fn line_of(len: usize) -> String {
    let empty = r#"{"kind":"x-pad","body":{"p":""}}"#;
    assert!(len >= empty.len());
    format!(
        r#"{{"kind":"x-pad","body":{{"p":"{}"}}}}"#,
        "x".repeat(len - empty.len())
    )
}

#[test]
fn cli_line_of_exactly_the_limit_passes_and_one_byte_more_is_refused_naming_line_and_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (at, over) = (line_of(1000), line_of(1001));
    let input = format!("{at}\n{over}\n{at}\n").into_bytes();
    let out = append_cli(&dir, &["--max-line-bytes", "1000"], input);
    assert_refused(&out, 2, "longer than the limit of 1000 bytes", "limit 1000");
    assert_exports_exactly(&dir, &[&at], "limit 1000");

    // Usage errors: no zero, no negative, no text.
    for bad in ["0", "-1", "lots"] {
        let out = append_cli(&dir, &["--max-line-bytes", bad], Vec::new());
        assert_eq!(out.status.code(), Some(2), "--max-line-bytes {bad}");
    }
}

#[test]
fn cli_default_line_limit_refuses_a_line_just_over_17_mib_without_a_newline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let limit = 17 * MIB as usize;
    let mut input = format!("{}\n", GOOD_BEFORE[0]).into_bytes();
    // One byte over the default limit, and no newline: the reader stops at the limit.
    input.extend(std::iter::repeat_n(b' ', limit + 1));
    let out = append_cli(&dir, &[], input);
    assert_refused(
        &out,
        2,
        &format!("longer than the limit of {limit} bytes (--max-line-bytes)"),
        "default limit",
    );
    assert_exports_exactly(&dir, &GOOD_BEFORE[..1], "default limit");
}

// ---------------------------------------------------------------------------------------------
// The record size limit.

#[test]
fn record_over_the_size_limit_is_refused_saying_size_and_limit_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let o = Options {
        writer: WriterOptions {
            record_bytes_max: 1024,
            ..WriterOptions::default()
        },
        ..opts()
    };
    let (j, _) = Journal::open(&dir, o.clone()).unwrap();
    j.append_json(GOOD_BEFORE[0]).unwrap();
    let before = j.last_seq();
    let (fits, too_big) = (line_of(900), line_of(1100));
    let err = j.append_json(&too_big).unwrap_err();
    let Error::Journal(turnwal_journal::Error::RecordTooLarge { size, limit }) = err else {
        panic!("not RecordTooLarge: {err:?}");
    };
    assert_eq!(limit, 1024);
    assert!(size > 1024 && size < 1200, "payload size {size}");
    assert_eq!(
        err.to_string(),
        format!("record of {size} bytes exceeds the limit of 1024 bytes")
    );
    assert_eq!(j.last_seq(), before, "no seq taken");
    assert_holds_exactly(&dir, &GOOD_BEFORE[..1], "too large");
    assert_eq!(j.append_json(&fits).unwrap(), before + 1);
    j.close().unwrap();
    assert_holds_exactly(&dir, &[GOOD_BEFORE[0], &fits], "after too large");
}

#[test]
fn cli_record_over_the_default_16_mib_limit_is_refused_naming_line_size_and_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // Under the 17 MiB line limit, over the 16 MiB record limit.
    let big = line_of(16 * MIB as usize + 100);
    let input = format!("{}\n{big}\n{}\n", GOOD_BEFORE[0], GOOD_BEFORE[1]).into_bytes();
    let out = append_cli(&dir, &[], input);
    assert_refused(
        &out,
        2,
        "exceeds the limit of 16777216 bytes",
        "16 MiB record",
    );
    assert_exports_exactly(&dir, &GOOD_BEFORE[..1], "16 MiB record");
}

// ---------------------------------------------------------------------------------------------
// Forged files: claims are checked against what is there before anything is allocated.

/// A closed journal in `dir` holding the session event and `GOOD_BEFORE`; its last segment.
fn journal_with_events(dir: &Path) -> PathBuf {
    let (j, _) = Journal::open(dir, opts()).unwrap();
    for line in GOOD_BEFORE {
        j.append_json(line).unwrap();
    }
    j.close().unwrap();
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("segment-") && !name.contains("tmp")
        })
        .collect();
    segments.sort();
    segments.pop().expect("a segment")
}

/// Offset after the last valid frame of the segment at `path`, and its segment id and last seq.
fn valid_end(path: &Path) -> (usize, u64, u64) {
    use turnwal_journal::record;
    use turnwal_journal::segment::{SEGMENT_HEADER_BYTES, SegmentHeader};
    let bytes = std::fs::read(path).unwrap();
    let id = SegmentHeader::decode(&bytes).unwrap().segment_id;
    let (mut off, mut last) = (SEGMENT_HEADER_BYTES, 0);
    while let Ok((rec, len)) = record::decode(&bytes[off..], id) {
        last = rec.header.seq;
        off += len;
    }
    (off, id, last)
}

/// A 40-byte frame header claiming a payload of `len` bytes (checksum not matching).
fn forged_header(len: u32, seq: u64, segment_id: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(40);
    h.extend_from_slice(&0xdead_beef_u32.to_le_bytes()); // crc32
    h.extend_from_slice(&len.to_le_bytes());
    h.extend_from_slice(&seq.to_le_bytes());
    h.extend_from_slice(&segment_id.to_le_bytes());
    h.extend_from_slice(&(seq - 1).to_le_bytes()); // watermark
    h.extend_from_slice(&[10, 0, 0, 0]); // kind x-, flags, reserved
    h.extend_from_slice(b"TWR1");
    h
}

#[test]
fn a_frame_claiming_4_gib_is_reported_without_allocating_for_it() {
    for (claim, what) in [
        (u32::MAX, "4 GiB: over the format's 64 MiB"),
        (64 << 20, "64 MiB: within the format, beyond the file"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let seg = journal_with_events(&dir);

        // Baseline: the same open of the intact journal.
        let (intact, baseline) =
            alloc::peak_of(|| Journal::open_read_only(&dir, &Options::default()));
        let intact = intact.unwrap();
        assert_eq!(intact.report.status, Status::Clean);

        let (end, id, last) = valid_end(&seg);
        let mut frame = forged_header(claim, last + 1, id);
        frame.extend_from_slice(b"payload!"); // a few bytes of what the claim says follow
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &frame, end as u64).unwrap();
        f.set_len((end + frame.len()) as u64).unwrap();
        drop(f);

        // The frame decoder alone: nothing allocated at all.
        let bytes = std::fs::read(&seg).unwrap();
        let (decoded, decode_peak) =
            alloc::peak_of(|| turnwal_journal::record::decode(&bytes[end..], id).map(|_| ()));
        let why = decoded.unwrap_err().to_string();
        assert!(
            decode_peak <= 256,
            "{what}: {decode_peak} B, only the message: {why}"
        );

        // The whole read-only open: reported, not a panic, and no allocation for the claim.
        let (ro, peak) = alloc::peak_of(|| Journal::open_read_only(&dir, &Options::default()));
        let ro = ro.unwrap();
        assert_ne!(ro.report.status, Status::Clean, "{what}");
        let problem = &ro.report.problems[0];
        assert_eq!(problem.offset, end as u64, "{what}: {problem:?}");
        assert_eq!(ro.events.len(), intact.events.len(), "{what}");
        assert_eq!(ro.report.last_seq, last, "{what}");
        assert!(
            peak < baseline + MIB,
            "{what}: open peaked at {peak} bytes, intact {baseline}"
        );
        eprintln!(
            "{what}: frame decode peak {decode_peak} B ({why}); open_read_only peak {peak} B \
             (intact journal {baseline} B); status {:?}: {}",
            ro.report.status, problem.reason
        );
    }
}

/// Replaces the trailer (last line) of the snapshot at `path` with one claiming `records`, with
/// a correct checksum, after `edit` has rewritten the lines before it.
fn reseal_snapshot(path: &Path, records: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.pop(); // the trailer
    edit(&mut lines);
    let content: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let crc = crc32fast::hash(content.as_bytes());
    let sealed = format!("{content}{{\"trailer\":{{\"records\":{records},\"crc32\":{crc}}}}}\n");
    std::fs::write(path, sealed).unwrap();
}

#[test]
fn a_snapshot_claiming_huge_counts_is_reported_without_allocating_for_them() {
    /// Rewrites the snapshot's lines before the trailer.
    type Edit = fn(&mut Vec<String>);
    let cases: [(&str, &str, Edit); 3] = [
        (
            "trailer claims 2^64-1 records",
            "18446744073709551615",
            |_| {},
        ),
        ("trailer claims 2^24 records", "16777216", |_| {}),
        (
            "header claims through_seq 2^64-1, a line seq 2^64-1",
            "5",
            |lines| {
                let h: &mut String = &mut lines[0];
                let mut v: Value = serde_json::from_str(h).unwrap();
                v["through_seq"] = Value::from(u64::MAX);
                *h = v.to_string();
                let last = lines.last_mut().unwrap();
                let mut v: Value = serde_json::from_str(last).unwrap();
                v["seq"] = Value::from(u64::MAX);
                *last = v.to_string();
            },
        ),
    ];
    for (what, records, edit) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let (j, _) = Journal::open(&dir, opts()).unwrap();
        for line in GOOD_BEFORE {
            j.append_json(line).unwrap();
        }
        j.compact().unwrap();
        j.close().unwrap();
        let snap = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("snapshot-") && name.ends_with(".jsonl")
            })
            .expect("a snapshot");
        let (_, baseline) = alloc::peak_of(|| Journal::open_read_only(&dir, &Options::default()));
        reseal_snapshot(&snap, records, edit);

        let (ro, peak) = alloc::peak_of(|| Journal::open_read_only(&dir, &Options::default()));
        let outcome = match &ro {
            Ok(ro) => format!("{:?}, {} events", ro.report.status, ro.events.len()),
            Err(e) => format!("refused: {e}"),
        };
        if let Ok(ro) = &ro {
            assert_ne!(ro.report.status, Status::Clean, "{what}: {outcome}");
        }
        eprintln!("{what}: open_read_only peak {peak} B (intact {baseline} B): {outcome}");
        assert!(
            peak < baseline + MIB,
            "{what}: open peaked at {peak} bytes, intact {baseline}: {outcome}"
        );
    }
}
