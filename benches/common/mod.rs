//! Workloads and journals shared by the bench groups: envelopes of an exact size, options,
//! fresh journals in scratch directories and a recorded session to replay.

use tempfile::TempDir;
use turnwal::{CompactionPolicy, Event, Journal, Options, SyncPolicy};

/// The three sync policies, by the name a bench id uses. `batch` is the default (5 ms / 1 MiB).
pub fn policies() -> [(&'static str, SyncPolicy); 3] {
    [
        ("always", SyncPolicy::Always),
        ("batch", SyncPolicy::default()),
        ("never", SyncPolicy::Never),
    ]
}

/// Options with `sync` and compaction off (`CompactionPolicy::manual()`), so that a bench
/// measures its own path and a background compaction never runs beside it.
pub fn options(sync: SyncPolicy) -> Options {
    Options {
        sync,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// Filler text: plain ASCII with nothing to escape, so one character is one byte.
fn filler(len: usize) -> String {
    "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

/// Builds `prefix + filler + suffix`, the filler sized so the whole line is `bytes` long (or
/// just the frame if that is already longer).
fn sized(prefix: &str, suffix: &str, bytes: usize) -> String {
    let text = filler(bytes.saturating_sub(prefix.len() + suffix.len()));
    format!("{prefix}{text}{suffix}")
}

/// A final assistant `message` envelope of `bytes` bytes (one text part), e.g. 1 KiB, a
/// typical chat message, or 16 KiB, a long answer or a tool result.
pub fn message(id: &str, turn: u64, bytes: usize) -> String {
    sized(
        &format!(
            r#"{{"kind":"message","turn":{turn},"body":{{"id":"{id}","role":"assistant","parts":[{{"type":"text","text":""#
        ),
        r#""}]}}"#,
        bytes,
    )
}

/// A streamed text `delta` envelope of `bytes` bytes for `message_id`: a fragment of a few
/// tokens, the most frequent record of a streaming session. The smallest delta envelope (empty
/// text, one-character id) is 85 B; 100 B carries a 14-character fragment.
pub fn delta(message_id: &str, bytes: usize) -> String {
    sized(
        &format!(
            r#"{{"kind":"delta","turn":1,"body":{{"message_id":"{message_id}","index":0,"type":"text","text":""#
        ),
        r#""}}"#,
        bytes,
    )
}

/// Parses an envelope, as `append_json` does before appending.
pub fn event(line: &str) -> Event {
    Event::from_envelope(line, turnwal::event::now_ms()).expect("valid envelope")
}

/// A new, empty journal in its own scratch directory (dropped with it).
pub fn fresh(sync: SyncPolicy) -> (TempDir, Journal) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (journal, _) = Journal::open(tmp.path(), options(sync)).expect("open");
    (tmp, journal)
}

/// A closed journal of `n` distinct 1 KiB messages, eight per turn, all in segments (no
/// snapshot: compaction is off), about 21 MB for 20 000.
pub fn recorded_session(n: usize) -> TempDir {
    let (tmp, journal) = fresh(SyncPolicy::Never);
    append_messages(&journal, n);
    journal.close().expect("close");
    tmp
}

/// Appends `n` distinct 1 KiB messages (ids `m0`, `m1`, ...), eight per turn.
pub fn append_messages(journal: &Journal, n: usize) {
    for i in 0..n {
        journal
            .append_json(&message(&format!("m{i}"), (i / 8) as u64, 1024))
            .expect("append");
    }
}
