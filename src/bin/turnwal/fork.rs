//! `turnwal fork PARENT CHILD --at SEQ`: a new session from the parent's state at SEQ.
//!
//! Prints one JSON object `{"session", "fork_of": {"session", "seq"}, "last_seq"}`. Exit 0
//! done, 1 refused (the seq, the parent or the child directory does not allow it), 2 error.

use std::path::Path;

use serde_json::json;
use turnwal::{CompactionPolicy, Error, Journal, Options};

pub fn run(parent: &Path, child: &Path, at: u64) -> u8 {
    let opts = Options {
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    };
    let (journal, _) = match Journal::fork(parent, at, child, opts) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("turnwal fork: {e}");
            return match e {
                Error::Journal(
                    turnwal_journal::Error::Input(_) | turnwal_journal::Error::Corrupt { .. },
                ) => 1,
                _ => 2,
            };
        }
    };
    let s = journal.session();
    let doc = json!({
        "session": s.id,
        "fork_of": s.fork_of.as_ref().map(|(p, q)| json!({"session": p, "seq": q})),
        "last_seq": s.last_seq,
    });
    if let Err(e) = journal.close() {
        eprintln!("turnwal fork: {e}");
        return 2;
    }
    println!("{doc}");
    0
}
