//! `turnwal repair DIR [--salvage] [--dry-run]`: the explicit repairs, in the recovery modes of
//! RECOVERY.md.
//!
//! - Without `--salvage` (`tolerate_torn_tail`): what a writer's open does — cut a proven torn
//!   tail into a quarantine file — and nothing else; corruption is refused (exit 1), pointing at
//!   `--salvage`.
//! - `--salvage` (`salvage`): the same for a torn tail; on corruption, keep every valid record
//!   past the damage, install it as the journal's state and move the damaged segments aside.
//! - `--dry-run`: the same read, as a read-only open: says what would be done, changes nothing.
//!
//! Prints one JSON object `{"mode", "dry_run", "report"}` (plus `"refused": true` when refused);
//! the report is the recovery report, with `salvage` when salvage kept and lost something.
//! Exit 0 done (or nothing to do), 1 refused, 2 error.

use std::path::Path;

use serde_json::json;
use turnwal::{CompactionPolicy, Error, Journal, Mode, Options, Status};

pub fn run(dir: &Path, salvage: bool, dry_run: bool, takeover: bool) -> u8 {
    let (mode, name) = if salvage {
        (Mode::Salvage, "salvage")
    } else {
        (Mode::TolerateTornTail, "tolerate_torn_tail")
    };
    let opts = Options {
        create: false,
        compaction: CompactionPolicy::manual(),
        recovery: mode,
        takeover,
        ..Options::default()
    };
    if dry_run {
        return match Journal::open_read_only(dir, &opts) {
            Ok(ro) => {
                let refused = ro.report.status == Status::Corrupt && ro.report.salvage.is_none();
                let mut doc = json!({"mode": name, "dry_run": true, "report": ro.report});
                if refused {
                    doc["refused"] = json!(true);
                }
                print(&doc, u8::from(refused))
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
                &json!({"mode": name, "dry_run": false, "report": report}),
                code,
            )
        }
        Err(Error::Refused { report, .. }) => {
            if !salvage {
                eprintln!(
                    "turnwal repair: the journal is corrupt where it matters; nothing was changed. \
                     `turnwal repair --salvage --dry-run` shows what a salvage would keep and lose."
                );
            }
            print(
                &json!({"mode": name, "dry_run": false, "refused": true, "report": report}),
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
