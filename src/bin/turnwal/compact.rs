//! `turnwal compact DIR`: folds the log into a new snapshot and removes what it covers.

use std::path::Path;

use turnwal::{CompactError, Error, Journal, Options};

pub fn run(dir: &Path, takeover: bool) -> u8 {
    let opts = Options {
        create: false,
        takeover,
        compaction: turnwal::CompactionPolicy::manual(),
        ..Options::default()
    };
    let (journal, _) = match Journal::open(dir, opts) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("turnwal compact: {e}");
            return if matches!(e, Error::Refused { .. }) {
                1
            } else {
                2
            };
        }
    };
    let result = journal.compact();
    let closed = journal.close();
    match result {
        Ok(report) => {
            match serde_json::to_string(&report) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("turnwal compact: {e}"),
            }
            if let Err(e) = closed {
                eprintln!("turnwal compact: closing: {e}");
                return 2;
            }
            0
        }
        Err(e) => {
            eprintln!("turnwal compact: {e}");
            match e {
                Error::Compaction(CompactError::Shrink { .. } | CompactError::Verify { .. }) => 1,
                _ => 2,
            }
        }
    }
}
