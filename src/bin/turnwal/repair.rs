//! `turnwal repair DIR [--salvage] [--dry-run]`: the explicit repairs, in the recovery modes of
//! docs/RECOVERY.md.
//!
//! - Without `--salvage` (`tolerate_torn_tail`): what a writer's open does — cut a proven torn
//!   tail into a quarantine file — and nothing else; corruption is refused (exit 1), pointing at
//!   `--salvage`.
//! - `--salvage` (`salvage`): the same for a torn tail; on corruption, keep every valid record
//!   past the damage, install it as the journal's state and move the damaged segments aside.
//! - `--dry-run`: the same read, as a read-only open: says what would be done, changes nothing.
//!
//! Prints one JSON object `{"mode", "dry_run", "report"}` (plus `"refused": true` when refused)
//! with `--json` or when stdout is not a terminal; the report is the recovery report, with
//! `salvage` when salvage kept and lost something. On a terminal, a summary in words.
//! Exit 0 done (or nothing to do), 1 refused, 2 error.

use std::path::Path;

use serde_json::json;
use turnwal::{CompactionPolicy, Error, Journal, Mode, Options, RecoveryReport, Status};

use crate::ui::{self, Cell, Tone, Ui};

pub fn run(dir: &Path, salvage: bool, dry_run: bool, takeover: bool, json: bool) -> u8 {
    let json = ui::json_unless_terminal(json);
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
                print(&doc, json, &ro.report, u8::from(refused))
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
                json,
                &report,
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
                json,
                &report,
                1,
            )
        }
        Err(e) => fail(&e),
    }
}

fn print(doc: &serde_json::Value, json: bool, report: &RecoveryReport, code: u8) -> u8 {
    let printed = if json {
        ui::print_json("repair", doc)
    } else {
        let refused = doc["refused"] == json!(true);
        let dry_run = doc["dry_run"] == json!(true);
        let mode = doc["mode"].as_str().unwrap_or("");
        ui::write_stdout(
            "repair",
            &human(&Ui::stdout(), mode, dry_run, refused, report),
        )
    };
    ui::exit(printed, code)
}

/// The summary in words of a repair (or of what it would do).
pub fn human(ui: &Ui, mode: &str, dry_run: bool, refused: bool, r: &RecoveryReport) -> String {
    let would = |done: &str, planned: &str| if dry_run { planned } else { done }.to_string();
    let (headline, tone) = if refused {
        (
            "refused: the journal is corrupt where it matters; nothing was changed".to_string(),
            Tone::Bad,
        )
    } else if let Some(s) = &r.salvage {
        (
            format!(
                "{} {} events through seq {}, {} {} event(s)",
                would("salvaged: kept", "a salvage would keep"),
                s.kept,
                s.through_seq,
                would("lost", "and lose"),
                s.lost_count
            ),
            if s.lost_count > 0 {
                Tone::Warn
            } else {
                Tone::Good
            },
        )
    } else if let Some(cut) = &r.cut {
        (
            format!(
                "{} a torn tail of {} bytes at {} offset {} (never acknowledged: nothing lost)",
                would("cut", "would cut"),
                cut.bytes,
                cut.file,
                cut.offset
            ),
            Tone::Warn,
        )
    } else {
        (
            "nothing to repair: the journal reads clean".to_string(),
            Tone::Good,
        )
    };
    let mut out = format!(
        "{} ({mode}{})\n",
        ui.paint(&headline, tone),
        if dry_run {
            ", dry run: nothing changed"
        } else {
            ""
        }
    );
    let mut rows: Vec<(&str, Cell)> = vec![
        (
            "status",
            format!("{} ({})", ui::name(&r.status), r.case).into(),
        ),
        ("action", ui::name(&r.action).into()),
        (
            "records",
            format!("{} (last seq {})", r.records, r.last_seq).into(),
        ),
    ];
    if let Some(q) = &r.quarantine {
        rows.push(("quarantine", q.as_str().into()));
    }
    if let Some(s) = &r.salvage {
        let lost: Vec<String> = s
            .lost
            .iter()
            .map(|l| {
                if l.start() == l.end() {
                    l.start().to_string()
                } else {
                    format!("{}..{}", l.start(), l.end())
                }
            })
            .collect();
        rows.push((
            "lost seqs",
            Cell::new(
                if lost.is_empty() {
                    "none".to_string()
                } else {
                    lost.join(", ")
                },
                if lost.is_empty() {
                    Tone::Good
                } else {
                    Tone::Warn
                },
            ),
        ));
        for d in &s.damaged {
            rows.push((
                "damaged",
                format!("{} at offset {} ({} bytes)", d.file, d.offset, d.bytes).into(),
            ));
        }
        for k in &s.skipped {
            rows.push(("skipped", format!("{}: {}", k.file, k.reason).into()));
        }
        if let Some(snap) = &s.snapshot {
            rows.push(("snapshot", snap.as_str().into()));
        }
        for m in &s.quarantined {
            rows.push(("moved aside", format!("{} -> {}", m.from, m.to).into()));
        }
        if let Some(seg) = &s.new_segment {
            rows.push(("new segment", seg.as_str().into()));
        }
    }
    out += &ui.kv(2, &rows);
    for p in &r.problems {
        out += &format!(
            "  {}\n",
            ui.paint(
                &format!(
                    "problem: {} at offset {}: {} ({})",
                    p.file, p.offset, p.reason, p.kind
                ),
                if r.status == Status::Corrupt {
                    Tone::Bad
                } else {
                    Tone::Warn
                }
            )
        );
    }
    out
}

fn fail(e: &Error) -> u8 {
    eprintln!("turnwal repair: {e}");
    match e {
        Error::Journal(turnwal_journal::Error::Corrupt { .. }) => 1,
        _ => 2,
    }
}
