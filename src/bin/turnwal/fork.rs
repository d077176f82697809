//! `turnwal fork PARENT CHILD --at SEQ`: a new session from the parent's state at SEQ.
//!
//! Prints one JSON object `{"session", "fork_of": {"session", "seq"}, "last_seq"}` with
//! `--json` or when stdout is not a terminal; on a terminal, a sentence. Exit 0 done, 1 refused
//! (the seq, the parent or the child directory does not allow it), 2 error.

use std::path::Path;

use serde_json::json;
use turnwal::{CompactionPolicy, Error, Journal, Options};

use crate::ui::{self, Tone, Ui};

pub fn run(parent: &Path, child: &Path, at: u64, json: bool) -> u8 {
    let json = ui::json_unless_terminal(json);
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
    let printed = if json {
        ui::print_json("fork", &doc)
    } else {
        let ui = Ui::stdout();
        ui::write_stdout(
            "fork",
            &format!(
                "{} {} (session {}) from {} at seq {}; its next event will be seq {}\n",
                ui.paint("forked", Tone::Good),
                child.display(),
                s.id,
                parent.display(),
                at,
                s.last_seq + 1
            ),
        )
    };
    ui::exit(printed, 0)
}
