//! Regression: a new journal's directory must be durable before its first acknowledgement.
//!
//! The story: the simulated power-cut tier (tests/crash_sim.rs) found that creating a journal
//! made its segment, its session event and the first appended event durable, and fsynced the
//! journal directory itself, but never fsynced the directory *containing* it. A directory entry
//! is durable only once its parent is synced, so a power cut right after `append_durable`
//! returned could make the whole journal directory, with everything acknowledged in it, vanish.
//! `Journal::open` now fsyncs the parent of every directory it creates before anything is
//! acknowledged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a regression test: a failure must fail loudly"
)]

use std::sync::Arc;

use turnwal::storage::sim::{Cut, DirCut, FileCut, SimFs};
use turnwal::{Event, Journal, Options, SyncPolicy};

#[test]
fn a_power_cut_after_the_first_durable_append_keeps_the_journal_directory() {
    let fs = SimFs::new();
    let opts = |fs: &SimFs| Options {
        storage: Arc::new(fs.clone()),
        sync: SyncPolicy::Never,
        ..Options::default()
    };
    let (j, _) = Journal::open("/sim/sessions/s1", opts(&fs)).unwrap();
    let event = Event::from_envelope(
        r#"{"kind":"message","body":{"id":"u1","role":"user","parts":[{"type":"text","text":"hi"}]}}"#,
        0,
    )
    .unwrap();
    let seq = j.append_durable(&event).unwrap();
    // The harshest directory cut: every directory change not covered by an fsync of its
    // directory is lost.
    for file in [FileCut::DropUnsynced, FileCut::KeepPages] {
        let disk = fs.power_cut(Cut::new(file, DirCut::DropPending), 1);
        let view = Journal::open_read_only("/sim/sessions/s1", &opts(&disk))
            .expect("the journal directory survived");
        assert_eq!(view.report.last_seq, seq, "{file:?}");
        assert_eq!(view.session.messages.len(), 1);
    }
}
