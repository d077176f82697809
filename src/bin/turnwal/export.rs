//! `turnwal export DIR [--raw]`: read-only.

use std::io::Write;
use std::path::Path;

use turnwal::{Journal, Options, Status};

pub fn run(dir: &Path, raw: bool) -> u8 {
    let view = match Journal::open_read_only(dir, &Options::default()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("turnwal export: {e}");
            return 2;
        }
    };
    let mut text = String::new();
    if raw {
        for (seq, event) in &view.events {
            event.write_envelope(*seq, &mut text);
            text.push('\n');
        }
    } else {
        // The header's created_at is the session's creation time, not now: exporting the same
        // session twice (or before and after `compact`) gives the same bytes.
        let created = view.session.created_at_ms;
        turnwal_replay::snapshot::write_fold(&view.fold, created, &mut text);
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        eprintln!("turnwal export: writing stdout: {e}");
        return 2;
    }
    match view.report.status {
        Status::Clean => 0,
        Status::TornTail => {
            if let Some(cut) = &view.report.cut {
                eprintln!(
                    "turnwal export: torn tail in {} at offset {} ({} bytes) not exported",
                    cut.file, cut.offset, cut.bytes
                );
            }
            0
        }
        Status::Corrupt => {
            for p in &view.report.problems {
                eprintln!(
                    "turnwal export: corrupt: {} at offset {}: {}",
                    p.file, p.offset, p.reason
                );
            }
            eprintln!(
                "turnwal export: exported the {} events before the damage",
                view.events.len()
            );
            1
        }
    }
}
