//! `turnwal append DIR [--sync always|batch|never] [--auto-compact] [--compact-records N]
//! [--max-line-bytes N]`.
//!
//! Bad input stops the run: the error names the line (1-based, counting blank lines) and the
//! field; every line before it is appended and made durable, nothing of it or after it is.
//! Lines are read through a bounded reader: a line is never buffered beyond the limit, however
//! long it is and whether or not it ends in a newline.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use turnwal::{InputError, Journal, Options, SyncPolicy};

/// Default longest input line (bytes, newline excluded): the default record limit
/// (`WriterOptions::record_bytes_max`, 16 MiB) plus 1 MiB for the envelope and whitespace, which
/// the stored record does not keep. A line under it may still be refused as a record over the
/// limit; a line over it is refused before it is read whole.
pub const LINE_BYTES_MAX_DEFAULT: u64 = (16 << 20) + (1 << 20);

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
    max_line_bytes: u64,
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
        let r = read_lines(&journal, max_line_bytes);
        done.store(true, Ordering::Release);
        let _ = printer.join();
        r
    });
    // The line that stopped the run is named first, whatever the final sync then says.
    if let Err(msg) = &result {
        eprintln!("turnwal append: {msg}");
    }
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
    u8::from(result.is_err())
}

fn read_lines(journal: &Journal, max_line_bytes: u64) -> Result<(), String> {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        let read = read_line_bounded(&mut reader, &mut buf, max_line_bytes)
            .map_err(|e| format!("reading stdin after line {line_no}: {e}"))?;
        let line = match read {
            Line::End => return Ok(()),
            Line::TooLong => {
                return Err(format!(
                    "line {}: longer than the limit of {max_line_bytes} bytes \
                     (--max-line-bytes); refused before it was read whole",
                    line_no + 1
                ));
            }
            Line::Text(line) => line,
        };
        line_no += 1;
        let text = std::str::from_utf8(line).map_err(|e| {
            let why = InputError::new(
                "envelope",
                format!(
                    "not UTF-8 text (invalid byte at offset {} of the line)",
                    e.valid_up_to()
                ),
            );
            format!("line {line_no}: {why}")
        })?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        journal
            .append_json(text)
            .map_err(|e| format!("line {line_no}: {e}"))?;
    }
}

/// One line read by [`read_line_bounded`].
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// End of input, nothing read.
    End,
    /// A line, without its newline (the last line may lack one).
    Text(&'a [u8]),
    /// The line passed `max` bytes before its end: at most `max + 1` of its bytes were read.
    TooLong,
}

/// Reads the next line of `reader` into `buf` (cleared first), holding at most `max + 1` bytes
/// of it, so memory stays bounded by the limit whatever the input.
fn read_line_bounded<'a>(
    reader: &mut impl BufRead,
    buf: &'a mut Vec<u8>,
    max: u64,
) -> std::io::Result<Line<'a>> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(max.saturating_add(1))
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    let line = buf.strip_suffix(b"\n").unwrap_or(buf);
    if line.len() as u64 > max {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every line of `input` with limit `max`, as the command does.
    fn lines(input: &[u8], max: u64) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut reader = std::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line_bounded(&mut reader, &mut buf, max).unwrap() {
                Line::End => return out,
                Line::Text(l) => out.push(Ok(l.to_vec())),
                Line::TooLong => {
                    assert!(buf.len() as u64 <= max + 1, "buffered {} bytes", buf.len());
                    out.push(Err("too long"));
                    return out;
                }
            }
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_and_one_byte_more_does_not() {
        assert_eq!(
            lines(b"abcd\nxy\nabcd", 4),
            vec![
                Ok(b"abcd".to_vec()),
                Ok(b"xy".to_vec()),
                Ok(b"abcd".to_vec())
            ]
        );
        assert_eq!(
            lines(b"ab\nabcde\nzz\n", 4),
            vec![Ok(b"ab".to_vec()), Err("too long")]
        );
        assert_eq!(
            lines(b"abcde", 4),
            vec![Err("too long")],
            "no newline at all"
        );
        assert_eq!(lines(b"\n\n", 0), vec![Ok(vec![]), Ok(vec![])]);
    }

    #[test]
    fn a_huge_line_without_newline_is_never_buffered_whole() {
        // 64 MiB of input that is never materialised: the reader stops after max + 1 bytes.
        let mut endless = std::io::BufReader::new(std::io::repeat(b'x').take(64 << 20));
        let mut buf = Vec::new();
        let r = read_line_bounded(&mut endless, &mut buf, 1000).unwrap();
        assert_eq!(r, Line::TooLong);
        assert_eq!(buf.len(), 1001);
    }
}
