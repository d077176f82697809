//! The JSONL snapshot layout: a header line, one envelope per retained event, a trailer with
//! the record count and a CRC-32 over every preceding byte. Writing only; reading, installing
//! and compaction come with issue 3.

use serde_json::Value;

use crate::session::SessionFold;

/// Format name in the header line.
pub const SNAPSHOT_FORMAT: &str = "turnwal-snapshot";
/// Format version in the header line.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Appends the snapshot of `fold` to `out`; every line ends with `\n`.
pub fn write_snapshot(fold: &SessionFold, created_at_ms: i64, out: &mut String) {
    let start = out.len();
    let session = fold.session();
    out.push_str(&format!(
        "{{\"format\":\"{SNAPSHOT_FORMAT}\",\"version\":{SNAPSHOT_VERSION},\"session\":{},\"through_seq\":{},\"created_at\":\"{}\"}}\n",
        Value::String(session.id),
        fold.last_seq(),
        turnwal_journal::event::format_ts(created_at_ms)
    ));
    let retained = fold.retained();
    for (seq, e) in &retained {
        e.write_envelope(*seq, out);
        out.push('\n');
    }
    let crc = crc32fast::hash(&out.as_bytes()[start..]);
    out.push_str(&format!(
        "{{\"trailer\":{{\"records\":{},\"crc32\":{crc}}}}}\n",
        retained.len()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use turnwal_journal::event::Event;

    #[test]
    fn header_envelopes_trailer_with_checksum() {
        let mut f = SessionFold::new();
        for (i, l) in [
            r#"{"kind":"x-a","body":{"k":1}}"#,
            r#"{"kind":"meta","body":{"t":"x"}}"#,
        ]
        .iter()
        .enumerate()
        {
            f.apply(i as u64 + 1, &Event::from_envelope(l, 0).unwrap())
                .unwrap();
        }
        let mut s = String::new();
        write_snapshot(&f, 0, &mut s);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 4);
        let h: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(h["through_seq"], 2);
        let t: Value = serde_json::from_str(lines[3]).unwrap();
        assert_eq!(t["trailer"]["records"], 2);
        let body_len = s.len() - lines[3].len() - 1;
        assert_eq!(
            t["trailer"]["crc32"],
            crc32fast::hash(&s.as_bytes()[..body_len])
        );
    }
}
