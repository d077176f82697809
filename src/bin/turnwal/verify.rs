//! `turnwal verify DIR [--json]`: read-only audit.

use std::path::Path;

use turnwal::{Journal, Options, Status};

use crate::ui::{self, Tone, Ui};

pub fn run(dir: &Path, json: bool) -> u8 {
    let view = {
        let _progress = ui::Progress::start("verifying", dir);
        match Journal::open_read_only(dir, &Options::default()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("turnwal verify: {e}");
                return 2;
            }
        }
    };
    let r = &view.report;
    if json {
        if let Err(code) = ui::print_json("verify", r) {
            return code;
        }
    } else {
        let mut out = String::new();
        let tone = match r.status {
            Status::Clean => Tone::Good,
            Status::TornTail => Tone::Warn,
            Status::Corrupt => Tone::Bad,
        };
        out += &format!(
            "status      {}\n",
            Ui::stdout().paint(status_name(r.status), tone)
        );
        out += &format!("records     {}\n", r.records);
        out += &format!("last_seq    {}\n", r.last_seq);
        out += &format!("watermark   {}\n", r.max_watermark);
        if let Some(s) = &r.snapshot {
            out += &format!(
                "snapshot    {} (through seq {}, {} records, {} bytes)\n",
                s.file, s.through_seq, s.records, s.bytes
            );
        }
        out += &format!("segments    {}\n", r.segments);
        for i in &r.ignored_snapshots {
            out += &format!("ignored     {}: {}\n", i.file, i.reason);
        }
        out += &format!("torn_bytes  {}\n", r.torn_bytes);
        let resume = &r.resume;
        if let Some(t) = resume.open_turn {
            out += &format!("open turn   {t}\n");
        }
        for m in &resume.partial_messages {
            out += &format!(
                "partial     message {} (seq {}..{}) {}\n",
                m.id, m.first_seq, m.last_seq, m.status
            );
        }
        for c in &resume.pending_tool_calls {
            out += &format!(
                "pending     tool call {} ({}) {}\n",
                c.call_id, c.name, c.state
            );
        }
        for p in &r.problems {
            out += &format!(
                "problem     {} at offset {}: {} ({})\n",
                p.file, p.offset, p.reason, p.kind
            );
        }
        if let Err(code) = ui::write_stdout("verify", &out) {
            return code;
        }
    }
    match r.status {
        Status::Clean | Status::TornTail => 0,
        Status::Corrupt => 1,
    }
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Clean => "clean",
        Status::TornTail => "torn_tail",
        Status::Corrupt => "corrupt",
    }
}
