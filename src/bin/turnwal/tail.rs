//! `turnwal tail DIR [-f] [--from SEQ]`: prints durable events as export envelopes, one per line;
//! with `-f`, keeps following the journal as a writer appends, rotates and compacts. Read-only.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use turnwal::{Options, Tail};

/// How often `-f` looks for new durable events.
const POLL: Duration = Duration::from_millis(200);

pub fn run(dir: &Path, follow: bool, from: u64) -> u8 {
    let mut tail = Tail::from_seq(dir, Options::default(), from);
    let mut out = std::io::stdout().lock();
    loop {
        let events = match tail.poll() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("turnwal tail: {e}");
                return 2;
            }
        };
        let mut text = String::new();
        for (seq, event) in &events {
            event.write_envelope(*seq, &mut text);
            text.push('\n');
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            // A closed pipe (`turnwal tail -f DIR | head`) ends the follow quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return 0;
            }
            eprintln!("turnwal tail: writing stdout: {e}");
            return 2;
        }
        if !follow {
            return 0;
        }
        std::thread::sleep(POLL);
    }
}
