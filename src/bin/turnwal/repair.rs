//! `turnwal repair DIR [--salvage] [--dry-run]`: the explicit repairs.
//!
//! - Without `--salvage`: what a writer's open does — cut a proven torn tail into a quarantine
//!   file — and nothing else; corruption is refused (exit 1), pointing at `--salvage`.
//! - `--salvage`: keep every valid record past the damage, install it as the journal's state,
//!   move the damaged segments aside (`Journal::repair_salvage`).
//! - `--dry-run`: say what would be done; change nothing.
//!
//! Prints one JSON object. Exit 0 done (or nothing to do), 1 refused, 2 error.

use std::path::Path;

use serde_json::json;
use turnwal::{CompactionPolicy, Error, Journal, Options, Status};

pub fn run(dir: &Path, salvage: bool, dry_run: bool) -> u8 {
    let opts = Options {
        create: false,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    };
    if salvage {
        let result = if dry_run {
            Journal::salvage(dir, &opts)
        } else {
            Journal::repair_salvage(dir, &opts)
        };
        return match result {
            Ok(r) => print(
                &json!({"mode": "salvage", "dry_run": dry_run, "salvage": r}),
                0,
            ),
            Err(e) => fail(&e),
        };
    }
    if dry_run {
        return match Journal::open_read_only(dir, &opts) {
            Ok(ro) => {
                let code = u8::from(ro.report.status == Status::Corrupt);
                print(
                    &json!({"mode": "tolerate_torn_tail", "dry_run": true, "report": ro.report}),
                    code,
                )
            }
            Err(e) => fail(&e),
        };
    }
    match Journal::open(dir, opts) {
        Ok((journal, report)) => {
            let code = match journal.close() {
                Ok(_) => 0,
                Err(e) => return fail(&e),
            };
            print(
                &json!({"mode": "tolerate_torn_tail", "dry_run": false, "report": report}),
                code,
            )
        }
        Err(Error::Refused { report, .. }) => {
            eprintln!(
                "turnwal repair: the journal is corrupt where it matters; nothing was changed. \
                 `turnwal repair --salvage --dry-run` shows what a salvage would keep and lose."
            );
            print(
                &json!({"mode": "tolerate_torn_tail", "dry_run": false, "refused": true, "report": report}),
                1,
            )
        }
        Err(e) => fail(&e),
    }
}

fn print(doc: &serde_json::Value, code: u8) -> u8 {
    println!("{doc}");
    code
}

fn fail(e: &Error) -> u8 {
    eprintln!("turnwal repair: {e}");
    match e {
        Error::Journal(turnwal_journal::Error::Corrupt { .. }) => 1,
        _ => 2,
    }
}
