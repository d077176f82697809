//! `turnwal append DIR [--sync always|batch|never] [--auto-compact] [--compact-records N]`.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use turnwal::{Journal, Options, SyncPolicy};

/// Longest accepted input line (bytes): larger than any record the journal accepts by default.
const LINE_BYTES_MAX: usize = 32 << 20;

fn print_durable(n: u64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{{\"durable_through\": {n}}}");
    let _ = out.flush();
}

/// `auto_compact`: use the library's background compaction policy. Off by default, so that
/// `export --raw` shows every appended event until `turnwal compact` is run.
/// `compact_records`: compact in the background every N events behind the snapshot, whatever
/// their size or the snapshot's (a compaction-heavy writer, for crash tests).
pub fn run(
    dir: &Path,
    sync: SyncPolicy,
    auto_compact: bool,
    compact_records: Option<u64>,
    takeover: bool,
) -> u8 {
    let compaction = match (compact_records, auto_compact) {
        (Some(n), _) => turnwal::CompactionPolicy {
            log_records: Some(n),
            log_bytes: None,
            min_log_to_snapshot: 0.0,
            ..turnwal::CompactionPolicy::default()
        },
        (None, true) => turnwal::CompactionPolicy::default(),
        (None, false) => turnwal::CompactionPolicy::manual(),
    };
    let (journal, _report) = match Journal::open(
        dir,
        Options {
            sync,
            compaction,
            takeover,
            ..Options::default()
        },
    ) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("turnwal append: {e}");
            return 1;
        }
    };
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        // Reports each advance of the durable watermark as soon as the sync completes.
        let printer = s.spawn(|| {
            let mut seen = journal.durable_seq();
            while !done.load(Ordering::Acquire) {
                match journal.wait_durable_after(seen, Duration::from_millis(50)) {
                    Ok(d) if d > seen => {
                        print_durable(d);
                        seen = d;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let r = read_lines(&journal);
        done.store(true, Ordering::Release);
        let _ = printer.join();
        r
    });
    // Whatever happened, everything appended before is made durable and reported.
    let synced = journal.sync();
    match synced {
        Ok(d) => print_durable(d),
        Err(e) => {
            eprintln!("turnwal append: final sync failed: {e}");
            return 1;
        }
    }
    if let Err(e) = journal.close() {
        eprintln!("turnwal append: close: {e}");
        return 1;
    }
    match result {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("turnwal append: {msg}");
            1
        }
    }
}

fn read_lines(journal: &Journal) -> Result<(), String> {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut reader, LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("reading stdin after line {line_no}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.len() > LINE_BYTES_MAX {
            return Err(format!(
                "line {line_no}: longer than {LINE_BYTES_MAX} bytes"
            ));
        }
        let text =
            std::str::from_utf8(&buf).map_err(|e| format!("line {line_no}: not UTF-8: {e}"))?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        journal
            .append_json(text)
            .map_err(|e| format!("line {line_no}: {e}"))?;
    }
}
