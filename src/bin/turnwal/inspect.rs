//! `turnwal inspect DIR [--json]`: the journal's files and what they hold — segments, snapshots,
//! watermarks, the writer lock, quarantine files — read-only and lock-free.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};
use turnwal::{Journal, Options, ReadOnly, Status};
use turnwal_journal::lock::{self, Liveness};
use turnwal_replay::recover::Problem;
use turnwal_replay::snapshot;

use crate::ui::{self, Cell, Table, Tone, Ui};
use crate::verify::status_name;

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// The directory, as given.
    pub dir: String,
    /// Who the session is.
    pub session: SessionInfo,
    /// `clean`, `torn_tail` or `corrupt`.
    pub status: &'static str,
    /// The recovery table's row for what was found.
    pub case: &'static str,
    /// Events readable (snapshot plus log).
    pub records: u64,
    /// Last readable seq.
    pub last_seq: u64,
    /// Segment files in id order (the last one is the active one).
    pub segments: Vec<Segment>,
    /// Segments wholly covered by the snapshot (a compaction crashed before deleting them).
    pub covered_segments: Vec<String>,
    /// Snapshot files, newest first.
    pub snapshots: Vec<SnapshotFile>,
    /// Durability as stated on disk.
    pub watermarks: Watermarks,
    /// The writer lock.
    pub lock: LockInfo,
    /// `quarantine-*` files: cut torn tails and salvaged segments.
    pub quarantine: Vec<FileSize>,
    /// `*.tmp` files a crash left (a writer's open removes them).
    pub tmp_files: Vec<FileSize>,
    /// Every problem found (as in `verify --json`).
    pub problems: Vec<Problem>,
    /// Total size of segments and snapshots.
    pub bytes: u64,
}

/// Identity of the session.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// `{session, seq}` if it is a fork.
    pub fork_of: Option<Value>,
    /// The `title` metadata value, if it is a string.
    pub title: Option<String>,
}

/// One segment file.
#[derive(Debug, Serialize)]
pub struct Segment {
    /// File name.
    pub file: String,
    /// Segment id.
    pub id: u64,
    /// File size (preallocated: includes the zeroed room not yet written).
    pub bytes: u64,
    /// Valid records.
    pub records: u64,
    /// First valid seq.
    pub first_seq: Option<u64>,
    /// Last valid seq.
    pub last_seq: Option<u64>,
    /// `sealed` (a later segment exists) or `active` (the last one, where appends go).
    pub state: &'static str,
    /// Highest durable watermark its records state.
    pub max_watermark: u64,
    /// `clean`, `damaged`, `seq_mismatch`, `bad_header` or `io_error`.
    pub stop: &'static str,
    /// Where the scan stopped, if not at a clean end.
    pub stop_offset: Option<u64>,
    /// Why.
    pub stop_reason: Option<String>,
    /// Offset after the last valid record.
    pub valid_end: u64,
}

/// One snapshot file.
#[derive(Debug, Serialize)]
pub struct SnapshotFile {
    /// File name.
    pub file: String,
    /// Seq it folds through (from its name).
    pub through_seq: u64,
    /// Size.
    pub bytes: u64,
    /// Events it holds (known for the one in use).
    pub records: Option<u64>,
    /// `in_use` (the newest that reads whole), `ignored` (newer, does not read whole) or
    /// `superseded` (older than the one in use; a writer's open removes it).
    pub state: &'static str,
    /// Why it is ignored.
    pub reason: Option<String>,
}

/// Watermarks: what the files say is durable.
#[derive(Debug, Serialize)]
pub struct Watermarks {
    /// Highest durable watermark any record states.
    pub max_stated: u64,
    /// The snapshot in use folds through this seq (0 for none); a snapshot holds only synced
    /// events.
    pub snapshot_through: u64,
    /// Last readable seq.
    pub last_seq: u64,
    /// What a reader can count as durable: everything readable when no writer holds the lock,
    /// else the higher of the two above (one sync behind the writer).
    pub durable_through: u64,
}

/// The writer lock.
#[derive(Debug, Serialize)]
pub struct LockInfo {
    /// Whether a process holds it now.
    pub held: bool,
    /// The holder recorded in `LOCK` (the current one if held, else the last one), if any.
    pub holder: Option<Holder>,
}

/// A lock holder record.
#[derive(Debug, Serialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it took the lock (RFC 3339).
    pub since: String,
    /// `alive`, `dead` or `unknown`, as far as this host can tell.
    pub liveness: &'static str,
    /// Why it cannot be told, for `unknown`.
    pub liveness_reason: Option<String>,
}

/// A file and its size.
#[derive(Debug, Serialize)]
pub struct FileSize {
    /// File name.
    pub file: String,
    /// Size.
    pub bytes: u64,
}

/// Names and sizes of the files in `dir`, sorted by name.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Inspection {
    /// Reads the files of `dir` around its read-only view.
    pub fn of(dir: &Path, view: &ReadOnly) -> Inspection {
        let r = &view.report;
        let s = &view.session;
        let listing = files(dir);
        let n = r.segment_reports.len();
        let segments = r
            .segment_reports
            .iter()
            .enumerate()
            .map(|(i, sr)| Segment {
                file: sr.file.clone(),
                id: sr.id,
                bytes: sr.bytes,
                records: sr.records,
                first_seq: sr.first_seq,
                last_seq: sr.last_seq,
                state: if i + 1 == n { "active" } else { "sealed" },
                max_watermark: sr.max_watermark,
                stop: sr.stop,
                stop_offset: sr.stop_offset,
                stop_reason: sr.stop_reason.clone(),
                valid_end: sr.valid_end,
            })
            .collect();
        let in_use = r.snapshot.as_ref();
        let mut snapshots: Vec<SnapshotFile> = listing
            .iter()
            .filter_map(|(name, bytes)| {
                let through = snapshot::parse_snapshot_name(name)?;
                let ignored = r.ignored_snapshots.iter().find(|i| &i.file == name);
                let (state, records, reason) = match (in_use, ignored) {
                    (_, Some(i)) => ("ignored", None, Some(i.reason.clone())),
                    (Some(u), None) if &u.file == name => ("in_use", Some(u.records), None),
                    _ => ("superseded", None, None),
                };
                Some(SnapshotFile {
                    file: name.clone(),
                    through_seq: through,
                    bytes: *bytes,
                    records,
                    state,
                    reason,
                })
            })
            .collect();
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.through_seq));
        let held = lock::is_held(dir);
        let holder = lock::read_holder(&turnwal::RealFs, dir).map(|h| {
            let (liveness, liveness_reason) = match lock::holder_liveness(&h) {
                Liveness::Alive => ("alive", None),
                Liveness::Dead => ("dead", None),
                Liveness::Unknown(why) => ("unknown", Some(why)),
            };
            Holder {
                pid: h.pid,
                host: h.host,
                since: h.since,
                liveness,
                liveness_reason,
            }
        });
        let snapshot_through = in_use.map_or(0, |u| u.through_seq);
        let durable_through = if held {
            r.max_watermark.max(snapshot_through).min(r.last_seq)
        } else {
            r.last_seq
        };
        let pick = |pred: &dyn Fn(&str) -> bool| -> Vec<FileSize> {
            listing
                .iter()
                .filter(|(n, _)| pred(n))
                .map(|(n, b)| FileSize {
                    file: n.clone(),
                    bytes: *b,
                })
                .collect()
        };
        let title = s
            .meta
            .get("title")
            .and_then(|v| serde_json::from_str::<String>(v).ok());
        Inspection {
            dir: dir.display().to_string(),
            session: SessionInfo {
                id: s.id.clone(),
                created_at_ms: s.created_at_ms,
                created: turnwal::event::format_ts(s.created_at_ms),
                fork_of: s
                    .fork_of
                    .as_ref()
                    .map(|(p, q)| json!({"session": p, "seq": q})),
                title,
            },
            status: status_name(r.status),
            case: r.case,
            records: r.records,
            last_seq: r.last_seq,
            segments,
            covered_segments: r.covered_segments.clone(),
            bytes: r.segment_reports.iter().map(|s| s.bytes).sum::<u64>()
                + snapshots.iter().map(|s| s.bytes).sum::<u64>(),
            snapshots,
            watermarks: Watermarks {
                max_stated: r.max_watermark,
                snapshot_through,
                last_seq: r.last_seq,
                durable_through,
            },
            lock: LockInfo { held, holder },
            quarantine: pick(&|n| n.starts_with("quarantine-")),
            tmp_files: pick(&|n| n.ends_with(".tmp")),
            problems: r.problems.clone(),
        }
    }

    /// The human form.
    pub fn render(&self, ui: &Ui) -> String {
        let mut out = String::new();
        let s = &self.session;
        let status_tone = match self.status {
            "clean" => Tone::Good,
            "torn_tail" => Tone::Warn,
            _ => Tone::Bad,
        };
        let mut rows: Vec<(&str, Cell)> = vec![
            ("dir", self.dir.as_str().into()),
            ("session", s.id.as_str().into()),
            (
                "created",
                format!("{} ({} ms)", s.created, s.created_at_ms).into(),
            ),
        ];
        if let Some(t) = &s.title {
            rows.push(("title", t.as_str().into()));
        }
        if let Some(f) = &s.fork_of {
            rows.push((
                "fork of",
                format!(
                    "session {} at seq {}",
                    f["session"].as_str().unwrap_or(""),
                    f["seq"]
                )
                .into(),
            ));
        }
        rows.push((
            "status",
            Cell::new(format!("{} ({})", self.status, self.case), status_tone),
        ));
        rows.push((
            "records",
            format!("{} (last seq {})", self.records, self.last_seq).into(),
        ));
        rows.push(("size", ui::bytes(self.bytes).into()));
        out += &ui.kv(0, &rows);
        out.push('\n');

        out += &ui.heading(&format!("Segments ({})", self.segments.len()));
        let mut t = Table::new(&[
            "file",
            "id",
            "bytes",
            "records",
            "seqs",
            "state",
            "watermark",
            "stop",
        ])
        .right(&[1, 2, 3, 6]);
        for g in &self.segments {
            let seqs = match (g.first_seq, g.last_seq) {
                (Some(a), Some(b)) => format!("{a}..{b}"),
                _ => "-".into(),
            };
            let stop = match (&g.stop_offset, &g.stop_reason) {
                (Some(o), Some(r)) => format!("{} at {o}: {r}", g.stop),
                _ => g.stop.to_string(),
            };
            let tone = if g.stop == "clean" {
                Tone::Good
            } else if self.status == "torn_tail" {
                Tone::Warn
            } else {
                Tone::Bad
            };
            t.row(vec![
                g.file.as_str().into(),
                g.id.into(),
                ui::bytes(g.bytes).into(),
                g.records.into(),
                seqs.into(),
                g.state.into(),
                g.max_watermark.into(),
                Cell::new(stop, tone),
            ]);
        }
        out += &t.render(ui);
        for c in &self.covered_segments {
            out += &format!(
                "  {}\n",
                ui.paint(
                    &format!("{c}: covered by the snapshot (a writer's open removes it)"),
                    Tone::Dim
                )
            );
        }
        out.push('\n');

        out += &ui.heading(&format!("Snapshots ({})", self.snapshots.len()));
        if self.snapshots.is_empty() {
            out += "  none\n";
        } else {
            let mut t =
                Table::new(&["file", "through_seq", "records", "bytes", "state"]).right(&[1, 2, 3]);
            for sn in &self.snapshots {
                let state = match &sn.reason {
                    Some(r) => Cell::new(format!("{}: {r}", sn.state), Tone::Warn),
                    None if sn.state == "in_use" => Cell::new(sn.state, Tone::Good),
                    None => Cell::new(sn.state, Tone::Dim),
                };
                t.row(vec![
                    sn.file.as_str().into(),
                    sn.through_seq.into(),
                    ui::opt(sn.records).into(),
                    ui::bytes(sn.bytes).into(),
                    state,
                ]);
            }
            out += &t.render(ui);
        }
        out.push('\n');

        let w = &self.watermarks;
        out += &ui.heading("Watermarks");
        out += &ui.kv(
            2,
            &[
                ("max stated", w.max_stated.into()),
                ("snapshot through", w.snapshot_through.into()),
                ("last seq", w.last_seq.into()),
                ("durable through", w.durable_through.into()),
            ],
        );
        out.push('\n');

        out += &ui.heading("Lock");
        let holder = |h: &Holder| {
            let mut s = format!("pid {} on {} since {}", h.pid, h.host, h.since);
            if self.lock.held {
                s += &format!(" ({})", h.liveness);
            }
            s
        };
        let lock = match (self.lock.held, &self.lock.holder) {
            (true, Some(h)) => Cell::new(format!("held by {}", holder(h)), Tone::Warn),
            (true, None) => Cell::new("held (holder record unreadable)", Tone::Warn),
            (false, Some(h)) => Cell::new(format!("free (last held by {})", holder(h)), Tone::Good),
            (false, None) => Cell::new("free (never taken)", Tone::Good),
        };
        out += &ui.kv(2, &[("writer", lock)]);

        if !self.quarantine.is_empty() || !self.tmp_files.is_empty() {
            out.push('\n');
            out += &ui.heading(&format!(
                "Quarantine and leftovers ({})",
                self.quarantine.len() + self.tmp_files.len()
            ));
            let mut t = Table::new(&["file", "bytes", "what"]).right(&[1]);
            for q in &self.quarantine {
                let what = if q.file.starts_with("quarantine-salvaged-") {
                    "a damaged segment salvage moved aside"
                } else {
                    "a torn tail cut by recovery"
                };
                t.row(vec![
                    q.file.as_str().into(),
                    ui::bytes(q.bytes).into(),
                    what.into(),
                ]);
            }
            for q in &self.tmp_files {
                t.row(vec![
                    q.file.as_str().into(),
                    ui::bytes(q.bytes).into(),
                    "left by a crash; a writer's open removes it".into(),
                ]);
            }
            out += &t.render(ui);
        }

        if !self.problems.is_empty() {
            out.push('\n');
            out += &ui.heading(&format!("Problems ({})", self.problems.len()));
            for p in &self.problems {
                out += &format!(
                    "  {}\n",
                    ui.paint(
                        &format!(
                            "{} at offset {}: {} ({})",
                            p.file, p.offset, p.reason, p.kind
                        ),
                        if self.status == "corrupt" {
                            Tone::Bad
                        } else {
                            Tone::Warn
                        }
                    )
                );
            }
        }
        out
    }
}

pub fn run(dir: &Path, json: bool) -> u8 {
    let view = {
        let _progress = ui::Progress::start("reading", dir);
        match Journal::open_read_only(dir, &Options::default()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("turnwal inspect: {e}");
                return 2;
            }
        }
    };
    let inspection = Inspection::of(dir, &view);
    let printed = if json {
        ui::print_json("inspect", &inspection)
    } else {
        ui::write_stdout("inspect", &inspection.render(&Ui::stdout()))
    };
    let code = match view.report.status {
        Status::Clean | Status::TornTail => 0,
        Status::Corrupt => 1,
    };
    ui::exit(printed, code)
}
