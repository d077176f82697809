//! The recovery report's JSON document is stable and documented: every key `turnwal verify
//! --json` and `turnwal repair` print, over journals in every state (clean, torn with a
//! snapshot and a pending tool call, an ignored snapshot, corrupt, salvaged), is a key of the
//! example in the README, and the top-level keys are exactly the README's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Every key path of `v`: `a.b` for objects, `a[].b` for array elements.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                paths(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn documented() -> Value {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("<!-- report-example -->").unwrap();
    let end = readme.find("<!-- /report-example -->").unwrap();
    let block = &readme[start..end];
    let json = &block[block.find("```json").unwrap() + 7..block.rfind("```").unwrap()];
    serde_json::from_str(json).unwrap()
}

fn run(args: &[&str], stdin: &str) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A command that fails early exits without reading: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn append(dir: &Path, lines: &str) {
    run(
        &["append", dir.to_str().unwrap(), "--sync", "always"],
        lines,
    );
}

fn message(i: usize) -> String {
    format!(
        "{{\"kind\":\"message\",\"turn\":1,\"body\":{{\"id\":\"m{i}\",\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"text\":\"{}\"}}]}}}}\n",
        "x".repeat(100)
    )
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "twl"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_key_printed_is_documented() {
    let doc = documented();
    let mut allowed = BTreeSet::new();
    paths(&doc, "", &mut allowed);
    let top: BTreeSet<&String> = doc.as_object().unwrap().keys().collect();

    let tmp = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    let d = |name: &str| tmp.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Clean.
    append(&d("clean"), &message(1));
    reports.push(run(&["verify", &s(&d("clean")), "--json"], ""));

    // Compacted, then a pending tool call, a streaming message and a torn tail.
    let torn = d("torn");
    append(&torn, &message(1));
    run(&["compact", &s(&torn)], "");
    append(
        &torn,
        concat!(
            r#"{"kind":"turn","turn":1,"body":{"event":"started"}}"#,
            "\n",
            r#"{"kind":"message","turn":1,"body":{"id":"a1","role":"assistant","parts":[{"type":"tool_call","call_id":"c1","name":"ls","arguments":"{}"}]}}"#,
            "\n",
            r#"{"kind":"tool_run","turn":1,"body":{"call_id":"c1","event":"started"}}"#,
            "\n",
            r#"{"kind":"delta","turn":1,"body":{"message_id":"a2","index":0,"type":"text","text":"Here"}}"#,
            "\n"
        ),
    );
    let last = segments(&torn).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = (bytes.iter().rposition(|&b| b != 0).unwrap() + 1).next_multiple_of(8);
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_at(&[0xCD; 40], end as u64).unwrap();
    // A newer snapshot that does not read whole is ignored.
    std::fs::write(torn.join("snapshot-00000000000000000099.jsonl"), b"{}\n").unwrap();
    reports.push(run(&["verify", &s(&torn), "--json"], ""));
    let r = run(&["repair", &s(&torn)], "");
    reports.push(r["report"].clone());

    // Corrupt, then salvaged (dry run and installed).
    let bad = d("corrupt");
    let lines: String = (0..40).map(message).collect();
    append(&bad, &lines);
    let first = &segments(&bad)[0];
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(first)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, 64 + 8 * 60).unwrap();
    f.write_at(&[b[0] ^ 0xFF], 64 + 8 * 60).unwrap();
    reports.push(run(&["verify", &s(&bad), "--json"], ""));
    reports.push(run(&["repair", &s(&bad), "--salvage", "--dry-run"], "")["report"].clone());
    let installed = run(&["repair", &s(&bad), "--salvage"], "");
    assert_eq!(
        installed["report"]["salvage"]["installed"], true,
        "{installed}"
    );
    reports.push(installed["report"].clone());

    let mut seen = BTreeSet::new();
    for r in &reports {
        let keys: BTreeSet<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, top, "top-level keys differ from the README's: {r}");
        paths(r, "", &mut seen);
    }
    let undocumented: Vec<&String> = seen.difference(&allowed).collect();
    assert!(
        undocumented.is_empty(),
        "printed but not in the README: {undocumented:?}"
    );
    // The journals above exercise every object the README shows.
    for must in [
        "snapshot.through_seq",
        "ignored_snapshots[].reason",
        "segment_reports[].stop_reason",
        "problems[].kind",
        "cut.offset",
        "resume.pending_tool_calls[].state",
        "resume.partial_messages[].status",
        "salvage.lost[].start",
        "salvage.damaged[].bytes",
        "salvage.quarantined[].to",
    ] {
        assert!(seen.contains(must), "no journal printed {must}");
    }
}
