//! `turnwal verify DIR [--json]`: read-only audit.

use std::path::Path;

use turnwal::{Journal, Options, Status};

pub fn run(dir: &Path, json: bool) -> u8 {
    let view = match Journal::open_read_only(dir, &Options::default()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("turnwal verify: {e}");
            return 2;
        }
    };
    let r = &view.report;
    if json {
        match serde_json::to_string(r) {
            Ok(doc) => println!("{doc}"),
            Err(e) => {
                eprintln!("turnwal verify: {e}");
                return 2;
            }
        }
    } else {
        println!("status      {}", status_name(r.status));
        println!("records     {}", r.records);
        println!("last_seq    {}", r.last_seq);
        println!("watermark   {}", r.max_watermark);
        if let Some(s) = &r.snapshot {
            println!(
                "snapshot    {} (through seq {}, {} records, {} bytes)",
                s.file, s.through_seq, s.records, s.bytes
            );
        }
        println!("segments    {}", r.segments);
        for i in &r.ignored_snapshots {
            println!("ignored     {}: {}", i.file, i.reason);
        }
        println!("torn_bytes  {}", r.torn_bytes);
        let resume = &r.resume;
        if let Some(t) = resume.open_turn {
            println!("open turn   {t}");
        }
        for m in &resume.partial_messages {
            println!(
                "partial     message {} (seq {}..{}) {}",
                m.id, m.first_seq, m.last_seq, m.status
            );
        }
        for c in &resume.pending_tool_calls {
            println!(
                "pending     tool call {} ({}) {}",
                c.call_id, c.name, c.state
            );
        }
        for p in &r.problems {
            println!(
                "problem     {} at offset {}: {} ({})",
                p.file, p.offset, p.reason, p.kind
            );
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
