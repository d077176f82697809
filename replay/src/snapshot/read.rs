//! Reading a snapshot: trailer first (a snapshot without a valid trailer does not exist), then
//! the header, then each line through the stored-envelope parser, which keeps bodies as raw
//! JSON text and reads only the typed fields replay needs.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use turnwal_journal::event::{Event, Kind, parse_ts};
use turnwal_journal::storage::Bytes;
use turnwal_journal::stored::parse_stored_envelope_shared;

use super::{SNAPSHOT_FORMAT, SNAPSHOT_VERSION};

/// A snapshot that read back whole.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Session id from the header.
    pub session_id: String,
    /// Every event at or below this seq is folded into the snapshot.
    pub through_seq: u64,
    /// When it was written, ms since the epoch.
    pub created_at_ms: i64,
    /// The retained events, seqs strictly increasing.
    pub events: Vec<(u64, Arc<Event>)>,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Why a snapshot does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    /// 1-based line number (0: the file as a whole).
    pub line: u64,
    /// Byte offset of that line.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(
                f,
                "line {} (offset {}): {}",
                self.line, self.offset, self.reason
            )
        }
    }
}

impl std::error::Error for SnapshotError {}

fn err(line: u64, offset: usize, reason: impl Into<String>) -> SnapshotError {
    SnapshotError {
        line,
        offset: offset as u64,
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<'a> {
    format: &'a str,
    version: u32,
    session: String,
    through_seq: u64,
    created_at: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    trailer: TrailerBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrailerBody {
    records: u64,
    crc32: u32,
}

/// Reads and checks a whole snapshot file.
///
/// Checks, in order: the file ends with a newline; the last line is a trailer whose CRC-32
/// matches every byte before it; the header names this format and version; every line between
/// is a stored envelope with a seq above the previous one and at most `through_seq`; the first
/// is the `session` event of the header's session; the count matches the trailer.
///
/// ```
/// use turnwal_journal::event::{Event, SessionInfo};
/// use turnwal_replay::session::SessionFold;
/// use turnwal_replay::snapshot;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut fold = SessionFold::new();
/// let id = "0123456789abcdef0123456789abcdef".to_string();
/// fold.apply(1, &Event::session(SessionInfo { id, created_at_ms: 0, fork_of: None }))?;
/// let line = r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[]}}"#;
/// fold.apply(2, &Event::from_envelope(line, 0)?)?;
///
/// let mut text = String::new();
/// snapshot::write_fold(&fold, 0, &mut text); // what `snapshot-<seq>.jsonl` holds
/// let snap = snapshot::read(text.as_bytes())?;
/// assert_eq!((snap.through_seq, snap.events.len()), (2, 2));
///
/// // A snapshot without its whole trailer does not exist.
/// let torn = &text.as_bytes()[..text.len() - 5];
/// assert!(snapshot::read(torn).is_err());
/// # Ok(()) }
/// ```
pub fn read(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    read_shared(&Arc::new(Bytes::Owned(bytes.to_vec())))
}

/// [`read`] of `buf`, with the events' bodies left in it (shared, not copied; see
/// [`turnwal_journal::Body`]).
pub fn read_shared(buf: &Arc<Bytes>) -> Result<Snapshot, SnapshotError> {
    let bytes: &[u8] = buf;
    if bytes.last() != Some(&b'\n') {
        return Err(err(
            0,
            bytes.len(),
            "no trailer: the file does not end with a newline",
        ));
    }
    let body_end = bytes.len() - 1;
    let trailer_start = bytes[..body_end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let trailer: Trailer = serde_json::from_slice(&bytes[trailer_start..body_end])
        .map_err(|e| err(0, trailer_start, format!("no valid trailer: {e}")))?;
    let crc = crc32fast::hash(&bytes[..trailer_start]);
    if crc != trailer.trailer.crc32 {
        return Err(err(
            0,
            trailer_start,
            format!(
                "checksum mismatch: trailer says {}, content has {crc}",
                trailer.trailer.crc32
            ),
        ));
    }
    let text = std::str::from_utf8(&bytes[..trailer_start])
        .map_err(|e| err(0, e.valid_up_to(), "not UTF-8"))?;
    let mut lines = text.split_inclusive('\n');
    let header_line = lines.next().ok_or_else(|| err(1, 0, "no header line"))?;
    let h: Header<'_> =
        serde_json::from_str(header_line).map_err(|e| err(1, 0, format!("bad header: {e}")))?;
    if h.format != SNAPSHOT_FORMAT {
        return Err(err(
            1,
            0,
            format!("format {:?} is not {SNAPSHOT_FORMAT}", h.format),
        ));
    }
    if h.version != SNAPSHOT_VERSION {
        return Err(err(
            1,
            0,
            format!(
                "version {} is not supported (this build reads {SNAPSHOT_VERSION})",
                h.version
            ),
        ));
    }
    let created_at_ms = parse_ts(h.created_at)
        .ok_or_else(|| err(1, 0, format!("bad created_at {:?}", h.created_at)))?;

    // The trailer's count is a claim: reserve no more than the file could hold (every line is
    // longer than 32 bytes), so a forged count costs at most half the file's size.
    let claim = trailer.trailer.records.min(trailer_start as u64 / 32);
    let mut events: Vec<(u64, Arc<Event>)> =
        Vec::with_capacity(usize::try_from(claim).unwrap_or(0));
    let mut offset = header_line.len();
    let mut prev = 0u64;
    for (i, line) in lines.enumerate() {
        let n = i as u64 + 2;
        let (seq, event) =
            parse_stored_envelope_shared(buf, line).map_err(|e| err(n, offset, e.to_string()))?;
        if seq <= prev {
            return Err(err(n, offset, format!("seq {seq} does not follow {prev}")));
        }
        if seq > h.through_seq {
            return Err(err(
                n,
                offset,
                format!(
                    "seq {seq} is past the header's through_seq {}",
                    h.through_seq
                ),
            ));
        }
        if events.is_empty() {
            match &event.kind {
                Kind::Session(info) if info.id == h.session => {}
                Kind::Session(info) => {
                    return Err(err(
                        n,
                        offset,
                        format!(
                            "session event is for {}, header says {}",
                            info.id, h.session
                        ),
                    ));
                }
                _ => return Err(err(n, offset, "the first event is not the session event")),
            }
        }
        prev = seq;
        offset += line.len();
        events.push((seq, Arc::new(event)));
    }
    if events.is_empty() {
        return Err(err(
            0,
            trailer_start,
            "holds no events (not even the session event)",
        ));
    }
    if events.len() as u64 != trailer.trailer.records {
        return Err(err(
            0,
            trailer_start,
            format!(
                "trailer counts {} records, the file holds {}",
                trailer.trailer.records,
                events.len()
            ),
        ));
    }
    Ok(Snapshot {
        session_id: h.session,
        through_seq: h.through_seq,
        created_at_ms,
        events,
        bytes: bytes.len() as u64,
    })
}

/// What [`read_unverified`] could read of a snapshot that does not read whole.
#[derive(Debug, Clone)]
pub struct Unverified {
    /// Session id from the header.
    pub session_id: String,
    /// The header's `through_seq`: the snapshot claimed every event through it.
    pub through_seq: u64,
    /// The whole lines that parse as envelopes of this session, in seq order, up to the first
    /// that does not. No checksum vouches for them.
    pub events: Vec<(u64, Arc<Event>)>,
    /// Why reading stopped (the trailer line, a torn line, a line that does not parse).
    pub stopped: SnapshotError,
}

/// Reads what it can of a snapshot whose trailer is missing or does not match, for salvage
/// only: the header, then every whole line that parses as a stored envelope of the header's
/// session, with increasing seqs at most `through_seq` and the session event first, stopping
/// at the first line that is not. `None` when the header itself does not read.
pub fn read_unverified(buf: &Arc<Bytes>) -> Option<Unverified> {
    let bytes: &[u8] = buf;
    let header_end = bytes.iter().position(|&b| b == b'\n')? + 1;
    let h: Header<'_> = serde_json::from_slice(&bytes[..header_end]).ok()?;
    if h.format != SNAPSHOT_FORMAT || h.version != SNAPSHOT_VERSION {
        return None;
    }
    let mut events: Vec<(u64, Arc<Event>)> = Vec::new();
    let mut offset = header_end;
    let mut prev = 0u64;
    let mut n = 1u64;
    let stopped = loop {
        n += 1;
        let Some(len) = bytes[offset..].iter().position(|&b| b == b'\n') else {
            break err(n, offset, "the file ends inside this line");
        };
        let Ok(line) = std::str::from_utf8(&bytes[offset..=offset + len]) else {
            break err(n, offset, "not UTF-8");
        };
        let (seq, event) = match parse_stored_envelope_shared(buf, line) {
            Ok(parsed) => parsed,
            Err(e) => break err(n, offset, e.to_string()),
        };
        let first_ok = !events.is_empty()
            || matches!(&event.kind, Kind::Session(info) if info.id == h.session);
        if seq <= prev || seq > h.through_seq || !first_ok {
            break err(n, offset, format!("seq {seq} does not fit the snapshot"));
        }
        prev = seq;
        offset += len + 1;
        events.push((seq, Arc::new(event)));
    };
    Some(Unverified {
        session_id: h.session,
        through_seq: h.through_seq,
        events,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use turnwal_journal::event::SessionInfo;

    use super::super::{write, write_fold};
    use super::*;
    use crate::session::SessionFold;

    fn sample() -> SessionFold {
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
            r#"{"kind":"message","turn":1,"body":{"id":"m1","role":"user","parts":[{"type":"text","text":"hé \"there\"\n"}]}}"#,
        ]
        .iter()
        .enumerate()
        {
            f.apply(i as u64 + 2, &Event::from_envelope(l, 0).unwrap())
                .unwrap();
        }
        f
    }

    #[test]
    fn header_envelopes_trailer_with_checksum() {
        let f = sample();
        let mut s = String::from("previous content\n");
        write_fold(&f, 1_000, &mut s);
        let snap = &s["previous content\n".len()..];
        assert!(snap.ends_with('\n'));
        let lines: Vec<&str> = snap.lines().collect();
        assert_eq!(lines.len(), 6, "header, 4 retained events, trailer");
        let h: Value = serde_json::from_str(lines[0]).unwrap();
        let want = serde_json::json!({"format":"turnwal-snapshot","version":1,"session":"s\"1",
            "through_seq":5,"created_at":"1970-01-01T00:00:01.000Z"});
        assert_eq!(h, want);
        let seqs: Vec<u64> = lines[1..5]
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            seqs,
            [1, 3, 4, 5],
            "the superseded usage record is left out"
        );
        let t: Value = serde_json::from_str(lines[5]).unwrap();
        let covered = snap.len() - lines[5].len() - 1;
        let want = serde_json::json!({"trailer":{"records":4,
            "crc32":crc32fast::hash(&snap.as_bytes()[..covered])}});
        assert_eq!(t, want);
    }

    #[test]
    fn reads_back_what_was_written() {
        let f = sample();
        let mut s = String::new();
        write_fold(&f, 1_000, &mut s);
        let snap = read(s.as_bytes()).unwrap();
        assert_eq!(snap.session_id, "s\"1");
        assert_eq!(snap.through_seq, 5);
        assert_eq!(snap.created_at_ms, 1_000);
        assert_eq!(snap.events, f.retained());
        assert_eq!(snap.bytes, s.len() as u64);
        let g = SessionFold::from_retained(snap.events, snap.through_seq).unwrap();
        assert_eq!(g.session(), f.session());
    }

    #[test]
    fn chunked_writer_matches_the_one_shot_writer() {
        let f = sample();
        let mut whole = String::new();
        write_fold(&f, 7, &mut whole);
        for chunk in [1, 10, 100, 100_000] {
            let mut out = Vec::new();
            let mut w = super::super::SnapshotWriter::new(
                |b: &[u8]| {
                    out.extend_from_slice(b);
                    Ok(())
                },
                f.session_id(),
                f.last_seq(),
                7,
                chunk,
            );
            for (seq, e) in f.retained() {
                w.event(seq, &e).unwrap();
            }
            let (bytes, records) = w.finish().unwrap();
            assert_eq!(bytes, out.len() as u64);
            assert_eq!(records, 4);
            assert_eq!(out, whole.as_bytes(), "chunk {chunk}");
        }
    }

    /// Every strict prefix of a snapshot (a torn write) and every single-byte change is refused.
    #[test]
    fn torn_or_edited_snapshots_do_not_exist() {
        let mut s = String::new();
        write_fold(&sample(), 1_000, &mut s);
        let b = s.as_bytes();
        for cut in 0..b.len() {
            assert!(read(&b[..cut]).is_err(), "prefix of {cut} bytes accepted");
        }
        for i in 0..b.len() {
            let mut c = b.to_vec();
            c[i] ^= 0x01;
            assert!(read(&c).is_err(), "flip at byte {i} accepted");
        }
    }

    #[test]
    fn refusals_say_where() {
        let ok = {
            let mut s = String::new();
            write_fold(&sample(), 1_000, &mut s);
            s
        };
        // Re-seal edited content with a correct trailer, to reach the checks behind the CRC.
        let reseal = |body: &str, records: u64| {
            format!(
                "{body}{{\"trailer\":{{\"records\":{records},\"crc32\":{}}}}}\n",
                crc32fast::hash(body.as_bytes())
            )
        };
        let lines: Vec<&str> = ok.split_inclusive('\n').collect();
        let body: String = lines[..lines.len() - 1].concat();

        let e = read(reseal(&body, 3).as_bytes()).unwrap_err();
        assert!(e.reason.contains("trailer counts 3"), "{e}");

        let swapped = [lines[0], lines[2], lines[1], lines[3], lines[4]].concat();
        let e = read(reseal(&swapped, 4).as_bytes()).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.reason.contains("not the session event"), "{e}");

        let reordered = [lines[0], lines[1], lines[3], lines[2], lines[4]].concat();
        let e = read(reseal(&reordered, 4).as_bytes()).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.reason.contains("does not follow"), "{e}");

        let future = body.replacen("\"version\":1", "\"version\":2", 1);
        let e = read(reseal(&future, 4).as_bytes()).unwrap_err();
        assert!(e.reason.contains("version 2 is not supported"), "{e}");

        let short_through = body.replacen("\"through_seq\":5", "\"through_seq\":4", 1);
        let e = read(reseal(&short_through, 4).as_bytes()).unwrap_err();
        assert!(e.reason.contains("past the header's through_seq"), "{e}");

        let mut empty = String::new();
        write("s", 0, &[], 0, &mut empty);
        let e = read(empty.as_bytes()).unwrap_err();
        assert!(e.reason.contains("holds no events"), "{e}");
    }
}
