//! The JSONL snapshot layout: a header line, one envelope per retained event, a trailer with
//! the record count and a CRC-32 over every preceding byte. Writing only; reading, installing
//! and compaction come later.
//!
//! A snapshot without a valid trailer does not exist: the trailer is written last and covers
//! every byte before it, so a torn or edited snapshot is detectable.

use std::fmt::Write as _;

use serde_json::Value;
use turnwal_journal::event::format_ts;

use crate::session::SessionFold;

/// Format name in the header line.
pub const SNAPSHOT_FORMAT: &str = "turnwal-snapshot";
/// Format version in the header line.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Appends the snapshot of `fold` to `out` (header, one envelope per
/// [`SessionFold::retained`] event, trailer); every line ends with `\n`. The checksum covers
/// only what this call appends, whatever `out` held before.
pub fn write_snapshot(fold: &SessionFold, created_at_ms: i64, out: &mut String) {
    let start = out.len();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "{{\"format\":{},\"version\":{SNAPSHOT_VERSION},\"session\":{},\"through_seq\":{},\"created_at\":{}}}",
        Value::from(SNAPSHOT_FORMAT),
        Value::from(fold.session_id()),
        fold.last_seq(),
        Value::from(format_ts(created_at_ms)),
    );
    let retained = fold.retained();
    for (seq, e) in &retained {
        e.write_envelope(*seq, out);
        out.push('\n');
    }
    let crc = crc32fast::hash(&out.as_bytes()[start..]);
    let _ = writeln!(
        out,
        "{{\"trailer\":{{\"records\":{},\"crc32\":{crc}}}}}",
        retained.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use turnwal_journal::event::{Event, SessionInfo};

    #[test]
    fn header_envelopes_trailer_with_checksum() {
        let mut f = SessionFold::new();
        let info = SessionInfo {
            id: "s\"1".into(),
            created_at_ms: 5,
            fork_of: None,
        };
        f.apply(1, &Event::session(info)).unwrap();
        for (i, l) in [
            r#"{"kind":"usage","body":{"call_key":"k","model":"m","input":{"total":1},"output":{"total":1}}}"#,
            r#"{"kind":"meta","body":{"t":"x"}}"#,
            r#"{"kind":"usage","body":{"call_key":"k","model":"m","input":{"total":2},"output":{"total":1}}}"#,
        ]
        .iter()
        .enumerate()
        {
            f.apply(i as u64 + 2, &Event::from_envelope(l, 0).unwrap())
                .unwrap();
        }
        let mut s = String::from("previous content\n");
        write_snapshot(&f, 1_000, &mut s);
        let snap = &s["previous content\n".len()..];
        assert!(snap.ends_with('\n'));
        let lines: Vec<&str> = snap.lines().collect();
        assert_eq!(lines.len(), 5, "header, 3 retained events, trailer");
        let h: Value = serde_json::from_str(lines[0]).unwrap();
        let want = serde_json::json!({"format":"turnwal-snapshot","version":1,"session":"s\"1",
            "through_seq":4,"created_at":"1970-01-01T00:00:01.000Z"});
        assert_eq!(h, want);
        let seqs: Vec<u64> = lines[1..4]
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, [1, 3, 4], "the superseded usage record is left out");
        let t: Value = serde_json::from_str(lines[4]).unwrap();
        let covered = snap.len() - lines[4].len() - 1;
        let want = serde_json::json!({"trailer":{"records":3,
            "crc32":crc32fast::hash(&snap.as_bytes()[..covered])}});
        assert_eq!(t, want);
    }
}
