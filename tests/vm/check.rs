//! What a journal holds after a power cut, and the check of I2/I3 (and I4 across compactions)
//! against the acknowledgements.
//!
//! A report is what `turnwal verify --json` and `turnwal export --raw` say about a journal
//! directory: run by the guest at boot (3a) or on the host against a replayed image (3b). It is
//! checked against the chain's stream (`feeder.rs`: the line every seq must hold) and its floor
//! (the highest `durable_through` printed, and the last seq recovered by an earlier check):
//!
//! - the status is clean or a torn tail, never corrupt, and both commands succeed;
//! - I2: the last seq is at least the floor;
//! - I3: seqs strictly increase; after the snapshot's `through_seq` they are contiguous up to the
//!   last seq; seq 1 is the session; every other event is the line fed for its seq (kind, turn,
//!   body); nothing is invented. Behind a snapshot (I4: compaction) only superseded deltas and
//!   usage records and all but the last meta event may be missing, and the last meta event is
//!   the merge of every meta change up to it.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use crate::feeder::{Body, Line, Plan, Stream};

/// What the two commands said about a journal directory.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub verify_rc: i32,
    pub verify: String,
    pub verify_err: String,
    pub export_rc: i32,
    pub export: String,
    pub export_err: String,
}

impl Report {
    /// Parses the guest's report disk: `TWLREPORT <nonce>`, then `<name> <len>` + bytes per
    /// file, then `END <nonce>`. `None` unless complete and of this boot.
    pub fn from_disk(bytes: &[u8], nonce: u64) -> Option<Report> {
        let mut rest = bytes.strip_prefix(format!("TWLREPORT {nonce}\n").as_bytes())?;
        let mut r = Report::default();
        for name in [
            "verify.rc",
            "verify.json",
            "verify.err",
            "export.rc",
            "export.jsonl",
            "export.err",
        ] {
            let n = rest.iter().position(|&b| b == b'\n')?;
            let (got, len) = std::str::from_utf8(&rest[..n]).ok()?.split_once(' ')?;
            if got != name {
                return None;
            }
            let len: usize = len.trim().parse().ok()?;
            let text = String::from_utf8_lossy(rest.get(n + 1..n + 1 + len)?).into_owned();
            rest = &rest[n + 1 + len..];
            match name {
                "verify.rc" => r.verify_rc = text.trim().parse().ok()?,
                "verify.json" => r.verify = text,
                "verify.err" => r.verify_err = text,
                "export.rc" => r.export_rc = text.trim().parse().ok()?,
                "export.jsonl" => r.export = text,
                _ => r.export_err = text,
            }
        }
        rest.starts_with(format!("END {nonce}\n").as_bytes())
            .then_some(r)
    }

    /// Runs the host's `turnwal verify --json` and `export --raw` on `dir`.
    pub fn of_dir(turnwal: &Path, dir: &Path) -> Result<Report, String> {
        let run = |args: &[&str]| {
            Command::new(turnwal)
                .args(args)
                .arg(dir)
                .output()
                .map_err(|e| format!("running {}: {e}", turnwal.display()))
        };
        let v = run(&["verify", "--json"])?;
        let x = run(&["export", "--raw"])?;
        Ok(Report {
            verify_rc: v.status.code().unwrap_or(-1),
            verify: String::from_utf8_lossy(&v.stdout).into_owned(),
            verify_err: String::from_utf8_lossy(&v.stderr).into_owned(),
            export_rc: x.status.code().unwrap_or(-1),
            export: String::from_utf8_lossy(&x.stdout).into_owned(),
            export_err: String::from_utf8_lossy(&x.stderr).into_owned(),
        })
    }
}

/// A chain's stream, generated as far as needed.
#[derive(Debug, Clone)]
pub struct Expected {
    stream: Stream,
    lines: Vec<Line>,
}

impl Expected {
    pub fn new(plan: Plan) -> Expected {
        Expected {
            stream: Stream::new(plan),
            lines: Vec::new(),
        }
    }

    /// The line fed for `seq` (≥ 2).
    pub fn at(&mut self, seq: u64) -> &Line {
        let k = (seq - 2) as usize;
        while self.lines.len() <= k {
            let l = self.stream.next().unwrap();
            self.lines.push(l);
        }
        &self.lines[k]
    }

    /// Bytes of the bodies of seqs 2..=last.
    pub fn bytes_through(&mut self, last: u64) -> u64 {
        (2..=last).map(|s| self.at(s).body.len()).sum()
    }
}

/// What a passing check found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checked {
    /// Last seq recovered (0: no journal).
    pub last: u64,
    pub torn_tail: bool,
    /// The snapshot's `through_seq` (0: none).
    pub through: u64,
}

/// One exported envelope, its body left as text.
struct Exported<'a> {
    seq: u64,
    kind: String,
    turn: Option<u64>,
    body: &'a str,
}

fn parse_export_line(line: &str) -> Result<Exported<'_>, String> {
    let at = line
        .find(",\"body\":")
        .ok_or_else(|| format!("export line without a body: {}", preview(line)))?;
    if !line.ends_with('}') {
        return Err(format!("export line not an object: {}", preview(line)));
    }
    let head: serde_json::Value = serde_json::from_str(&format!("{}}}", &line[..at]))
        .map_err(|e| format!("export line head ({e}): {}", preview(line)))?;
    Ok(Exported {
        seq: head["seq"].as_u64().ok_or("export line without a seq")?,
        kind: head["kind"].as_str().unwrap_or("").to_string(),
        turn: head["turn"].as_u64(),
        body: &line[at + ",\"body\":".len()..line.len() - 1],
    })
}

pub fn preview(s: &str) -> String {
    if s.len() <= 160 {
        return s.to_string();
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

fn body_equal(stored: &str, expected: &str) -> bool {
    stored == expected
        || matches!(
            (
                serde_json::from_str::<serde_json::Value>(stored),
                serde_json::from_str::<serde_json::Value>(expected),
            ),
            (Ok(a), Ok(b)) if a == b
        )
}

/// The merged meta event a snapshot keeps at `seq` (the last meta seq it covers).
fn merged_meta(exp: &mut Expected, seq: u64) -> String {
    let mut meta = serde_json::Map::new();
    for s in 2..=seq {
        let l = exp.at(s);
        if l.kind != "meta" {
            continue;
        }
        let Body::Text(text) = &l.body else { continue };
        let body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap_or_default();
        for (k, v) in body {
            if v.is_null() {
                meta.remove(&k);
            } else {
                meta.insert(k, v);
            }
        }
    }
    serde_json::Value::Object(meta).to_string()
}

/// Checks `r` against the chain's stream and `floor`.
pub fn check(r: &Report, exp: &mut Expected, floor: u64) -> Result<Checked, String> {
    if r.verify_rc == 2 && r.verify_err.contains("is not a turnwal journal") {
        // No journal yet: the writer died before its first segment was in place.
        if floor > 0 {
            return Err(format!(
                "ACKNOWLEDGED EVENTS LOST: no journal ({}), floor {floor}",
                r.verify_err.trim()
            ));
        }
        return Ok(Checked::default());
    }
    if r.verify_rc != 0 || r.export_rc != 0 {
        return Err(format!(
            "verify exit {} ({}), export exit {} ({}); verify: {}",
            r.verify_rc,
            r.verify_err.trim(),
            r.export_rc,
            r.export_err.trim(),
            preview(r.verify.trim())
        ));
    }
    let v: serde_json::Value = serde_json::from_str(r.verify.trim())
        .map_err(|e| format!("verify --json output ({e}): {}", preview(&r.verify)))?;
    let status = v["status"].as_str().unwrap_or("?");
    if status != "clean" && status != "torn_tail" {
        return Err(format!(
            "status {status} ({}): {}",
            v["case"],
            preview(&v["problems"].to_string())
        ));
    }
    let last = v["last_seq"].as_u64().ok_or("verify: no last_seq")?;
    if last < floor {
        return Err(format!(
            "ACKNOWLEDGED EVENTS LOST: recovered through seq {last}, but seq {floor} was \
             reported durable (or recovered before)"
        ));
    }
    let through = v["snapshot"]["through_seq"].as_u64().unwrap_or(0);
    let mut events = Vec::new();
    for line in r.export.lines() {
        events.push(parse_export_line(line)?);
    }
    let mut prev = 0;
    for e in &events {
        if e.seq <= prev {
            return Err(format!("seq {} after seq {prev}", e.seq));
        }
        prev = e.seq;
    }
    let log: Vec<u64> = events
        .iter()
        .map(|e| e.seq)
        .filter(|&s| s > through)
        .collect();
    for (k, &seq) in log.iter().enumerate() {
        if seq != through + 1 + k as u64 {
            return Err(format!(
                "gap: expected seq {} after the snapshot through {through}, found {seq}",
                through + 1 + k as u64
            ));
        }
    }
    if log.last().copied().unwrap_or(through) != last {
        return Err(format!(
            "verify says last seq {last}, the export ends at {:?} (snapshot through {through})",
            log.last()
        ));
    }
    let last_meta = (2..=through).rev().find(|&s| exp.at(s).kind == "meta");
    for e in &events {
        if e.seq == 1 {
            if e.kind != "session" {
                return Err(format!("seq 1 is a {} event, not the session", e.kind));
            }
            continue;
        }
        let line = exp.at(e.seq).clone();
        let (kind, turn) = (line.kind, line.turn);
        let body = if e.seq <= through && kind == "meta" {
            if Some(e.seq) != last_meta {
                return Err(format!(
                    "meta seq {} kept behind the snapshot (last meta seq {last_meta:?})",
                    e.seq
                ));
            }
            merged_meta(exp, e.seq)
        } else {
            line.body.text()
        };
        if e.kind != kind || e.turn != turn {
            return Err(format!(
                "seq {}: kind/turn {}/{:?}, fed {kind}/{turn:?}",
                e.seq, e.kind, e.turn
            ));
        }
        if !body_equal(e.body, &body) {
            return Err(format!(
                "seq {}: body differs: stored {}, fed {}",
                e.seq,
                preview(e.body),
                preview(&body)
            ));
        }
    }
    if through > 0 {
        let present: HashSet<u64> = events.iter().map(|e| e.seq).collect();
        if !present.contains(&1) {
            return Err("the snapshot lost the session event".into());
        }
        for seq in 2..=through {
            let kind = exp.at(seq).kind;
            let may_go =
                matches!(kind, "delta" | "usage") || (kind == "meta" && Some(seq) != last_meta);
            if !may_go && !present.contains(&seq) {
                return Err(format!(
                    "LOST behind the snapshot through {through}: the {kind} event at seq {seq}"
                ));
            }
        }
    }
    Ok(Checked {
        last,
        torn_tail: status == "torn_tail",
        through,
    })
}
