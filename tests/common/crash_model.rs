//! The crash model shared by the simulated power-cut tier (`tests/crash_sim.rs`) and the
//! `torn_workload` fuzz target (`fuzz/src/bodies.rs`): a workload of appends, syncs, compactions
//! and reopens run on the simulated storage until it crashes, what it was told (appended,
//! durable), and the check of a recovered disk against that (I1-I4 of TESTING.md).
//!
//! Included with `#[path]` by both, so it uses only the `turnwal` crate (feature `sim`).
#![allow(dead_code, reason = "each includer uses a different subset")]

use std::fmt;
use std::sync::Arc;

use turnwal::storage::sim::SimFs;
use turnwal::{
    CompactionPolicy, Event, Journal, Options, Session, SessionFold, SessionId, Status, SyncPolicy,
    WriterOptions,
};

/// Where the journal lives on the simulated storage.
pub const DIR: &str = "/sim/sessions/s1";

/// One step of a workload.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Append an event of about this many body bytes.
    Append(usize),
    /// Append and wait until durable.
    AppendDurable(usize),
    /// `sync()`.
    Sync,
    /// `compact()`.
    Compact,
    /// Close and reopen the journal (recovery of a clean journal).
    Reopen,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Append(n) => write!(f, "A{n}"),
            Step::AppendDurable(n) => write!(f, "D{n}"),
            Step::Sync => write!(f, "S"),
            Step::Compact => write!(f, "C"),
            Step::Reopen => write!(f, "R"),
        }
    }
}

/// A workload: a policy and steps.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Durability policy.
    pub policy: SyncPolicy,
    /// The steps.
    pub steps: Vec<Step>,
}

/// The event appended by step `i` (deterministic: explicit timestamps, a mix of kinds that
/// compaction folds: deltas superseded by a final message, usage re-reported, metadata).
pub fn event_line(i: usize, size: usize) -> String {
    let ts = format!("2026-11-21T10:00:{:02}.{:03}Z", i % 60, i % 1000);
    let text = "x".repeat(size);
    match i % 5 {
        0 => format!(
            r#"{{"ts":"{ts}","kind":"delta","turn":1,"body":{{"message_id":"m{}","index":0,"type":"text","text":"{text}"}}}}"#,
            i / 5
        ),
        1 => format!(
            r#"{{"ts":"{ts}","kind":"message","turn":1,"body":{{"id":"m{}","role":"assistant","parts":[{{"type":"text","text":"{text}"}}]}}}}"#,
            i / 5
        ),
        2 => format!(
            r#"{{"ts":"{ts}","kind":"usage","body":{{"call_key":"k{}","model":"m","input":{{"total":{i}}},"output":{{"total":1}}}}}}"#,
            i % 2
        ),
        3 => format!(
            r#"{{"ts":"{ts}","kind":"meta","body":{{"k{}":"{text}"}}}}"#,
            i % 3
        ),
        _ => format!(
            r#"{{"ts":"{ts}","kind":"message","turn":2,"body":{{"id":"u{i}","role":"user","parts":[{{"type":"text","text":"{text}"}}]}}}}"#
        ),
    }
}

pub fn options(fs: &SimFs, policy: SyncPolicy) -> Options {
    Options {
        storage: Arc::new(fs.clone()),
        sync: policy,
        writer: WriterOptions {
            // Tiny segments and pre-writes: rotations and pre-write extensions in a few appends.
            segment_bytes_max: 1536,
            prewrite_bytes: 512,
            ..WriterOptions::default()
        },
        compaction: CompactionPolicy::manual(),
        session_id: Some(SessionId([7; 16])),
        ..Options::default()
    }
}

/// What the workload was told before the crash.
#[derive(Debug, Default, Clone)]
pub struct Acked {
    /// Events appended, in seq order from seq 2 (seq 1 is the session event).
    pub fed: Vec<Event>,
    /// Highest seq whose append returned.
    pub appended: u64,
    /// Highest seq reported durable.
    pub durable: u64,
}

/// Runs `w` on `fs` until the first error (the simulated crash). Returns what was acknowledged.
pub fn run(fs: &SimFs, w: &Workload) -> Acked {
    let mut acked = Acked::default();
    let Ok((mut j, _)) = Journal::open(DIR, options(fs, w.policy)) else {
        return acked;
    };
    acked.appended = j.last_seq();
    acked.durable = j.durable_seq();
    for (i, step) in w.steps.iter().enumerate() {
        let ok = match step {
            Step::Append(n) | Step::AppendDurable(n) => {
                let e = Event::from_envelope(&event_line(i, *n), 0).unwrap();
                let r = if matches!(step, Step::Append(_)) {
                    j.append(&e)
                } else {
                    j.append_durable(&e)
                };
                match r {
                    Ok(seq) => {
                        acked.fed.push(e);
                        acked.appended = seq;
                        true
                    }
                    Err(_) => {
                        // Written or not, it was never acknowledged; the model keeps it as a
                        // candidate so that recovering it is not "invented".
                        acked.fed.push(e);
                        false
                    }
                }
            }
            Step::Sync => j.sync().is_ok(),
            Step::Compact => j.compact().is_ok(),
            Step::Reopen => {
                acked.durable = acked.durable.max(j.durable_seq());
                let closed = j.close().is_ok();
                match Journal::open(DIR, options(fs, w.policy)) {
                    Ok((nj, _)) if closed => {
                        j = nj;
                        true
                    }
                    _ => return acked,
                }
            }
        };
        acked.durable = acked.durable.max(j.durable_seq());
        if !ok {
            return acked;
        }
    }
    acked.durable = acked.durable.max(j.durable_seq());
    acked
}

/// The session the reference model expects for the first `n` events.
pub fn reference_session(acked: &Acked, session_event: &Event, n: u64) -> Session {
    let mut fold = SessionFold::new();
    fold.apply(1, session_event).unwrap();
    for (i, e) in acked
        .fed
        .iter()
        .enumerate()
        .take(n.saturating_sub(1) as usize)
    {
        fold.apply(i as u64 + 2, e).unwrap();
    }
    fold.session().after_crash()
}

/// What one recovered disk looks like: last seq, the events, the session.
#[derive(Debug, PartialEq)]
pub struct Recovered {
    /// Last seq recovered.
    pub last_seq: u64,
    /// Every stored event.
    pub events: Vec<(u64, Event)>,
    /// The session.
    pub session: Session,
}

/// Checks one disk state against the model. `Err` describes the violation.
pub fn check(
    disk: &SimFs,
    acked: &Acked,
    process_crash: bool,
) -> Result<Option<Recovered>, String> {
    let ro = match Journal::open_read_only(DIR, &options(disk, SyncPolicy::Never)) {
        Ok(ro) => ro,
        Err(e) => {
            // No journal at all is fine only if nothing was ever acknowledged.
            if acked.durable == 0 && (!process_crash || acked.appended == 0) {
                return Ok(None);
            }
            return Err(format!(
                "unreadable although seq {} was durable: {e}",
                acked.durable
            ));
        }
    };
    let r = &ro.report;
    if r.status == Status::Corrupt {
        return Err(format!("reported corrupt: {:?}", r.problems));
    }
    let last = r.last_seq;
    let must = if process_crash {
        acked.appended
    } else {
        acked.durable
    };
    if last < must {
        return Err(format!(
            "I{}: recovered through seq {last}, but seq {must} was {}",
            if process_crash { 1 } else { 2 },
            if process_crash {
                "appended"
            } else {
                "reported durable"
            }
        ));
    }
    if last > acked.fed.len() as u64 + 1 {
        return Err(format!(
            "I3: recovered seq {last}, only {} were appended",
            acked.fed.len() + 1
        ));
    }
    // I3: every stored event is the one appended with that seq; contiguous after the snapshot.
    let through = r.snapshot.as_ref().map_or(0, |s| s.through_seq);
    let mut prev = 0;
    for (seq, e) in &ro.events {
        if *seq <= prev || (*seq > through + 1 && *seq != prev + 1) {
            return Err(format!(
                "I3: seq {seq} after {prev} (snapshot through {through})"
            ));
        }
        prev = *seq;
        if *seq == 1 {
            continue;
        }
        let fed = &acked.fed[(*seq - 2) as usize];
        // A snapshot replaces the meta events it covers by one merged meta event.
        let merged_meta = *seq <= through && matches!(e.kind, turnwal::Kind::Meta(_));
        if !merged_meta && e.as_ref() != fed {
            return Err(format!("I3: seq {seq} is not what was appended"));
        }
    }
    if ro.events.is_empty() {
        // A first segment whose session event never became durable: the next writer writes it.
        return Ok(Some(Recovered {
            last_seq: 0,
            events: Vec::new(),
            session: ro.session,
        }));
    }
    // I4: the session is the one of the recovered prefix, snapshot or not.
    let session_event = ro
        .events
        .first()
        .filter(|(s, _)| *s == 1)
        .map(|(_, e)| e.as_ref().clone())
        .ok_or("the session event is missing")?;
    let want = reference_session(acked, &session_event, last);
    if ro.session != want {
        return Err(format!(
            "I4: the session of seqs 1..={last} differs from the model"
        ));
    }
    Ok(Some(Recovered {
        last_seq: last,
        events: ro
            .events
            .iter()
            .map(|(s, e)| (*s, e.as_ref().clone()))
            .collect(),
        session: ro.session,
    }))
}
