//! `turnwal compact DIR`: folds the log into a new snapshot and removes what it covers.
//!
//! Prints the compaction report as one JSON object with `--json` or when stdout is not a
//! terminal; on a terminal, a summary in words.

use std::path::Path;

use turnwal::{CompactError, CompactionReport, Error, Journal, Options};

use crate::ui::{self, Tone, Ui};

pub fn run(dir: &Path, takeover: bool, json: bool) -> u8 {
    let json = ui::json_unless_terminal(json);
    let progress = ui::Progress::start("compacting", dir);
    let opts = Options {
        create: false,
        takeover,
        compaction: turnwal::CompactionPolicy::manual(),
        ..Options::default()
    };
    let (journal, _) = match Journal::open(dir, opts) {
        Ok(j) => j,
        Err(e) => {
            drop(progress);
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
    drop(progress);
    match result {
        Ok(report) => {
            let printed = if json {
                ui::print_json("compact", &report)
            } else {
                ui::write_stdout("compact", &human(&Ui::stdout(), &report))
            };
            if let Err(e) = closed {
                eprintln!("turnwal compact: closing: {e}");
                return 2;
            }
            ui::exit(printed, 0)
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

/// The summary in words of a compaction.
pub fn human(ui: &Ui, c: &CompactionReport) -> String {
    if c.skipped {
        return format!(
            "{} nothing was appended since the last snapshot (through seq {})\n",
            ui.paint("nothing to compact:", Tone::Good),
            c.through_seq
        );
    }
    format!(
        "{} through seq {} into {}: {} records, {} messages, {}\n  \
         removed {} segment(s) and {} older snapshot(s); appends were held {} µs of {} µs\n",
        ui.paint("compacted", Tone::Good),
        c.through_seq,
        c.snapshot,
        c.records,
        c.messages,
        ui::bytes(c.bytes),
        c.removed_segments.len(),
        c.removed_snapshots.len(),
        c.hold_us,
        c.total_us
    )
}
