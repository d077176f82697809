//! The workload of the VM tier (tier 3): one deterministic, endless agent session per chain.
//!
//! Compiled twice. In the guest it is a static program (`build.sh` compiles this file alone with
//! `rustc`) that prints the envelopes `turnwal append` is fed; on the host `tests/vm_powercut.rs`
//! includes it as a module to know what every seq must hold. The line that must be stored at
//! seq `s` of a chain is the same whichever boot fed it: line `s - 2` of the stream of the chain's
//! seed (seq 1 is the journal's own `session` event). A writer that is cut off and recovers
//! through seq `L` is followed by a feeder started at `L + 1`, which continues the same session,
//! so lines lost in a power cut are appended again, identical, and a step cut in the middle is
//! finished by the next boot.
//!
//! Guest usage: `feeder SEED BIG_ONE_IN BIG_MIN BIG_MAX FROM_SEQ LINES` prints `LINES` lines, the
//! first one being the line of seq `FROM_SEQ`.

use std::collections::VecDeque;
use std::io::Write;

/// A small PRNG (splitmix64), reproducible from its seed on both sides.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// What a chain's stream looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The stream's seed.
    pub seed: u64,
    /// A large user message before a step once in this many steps (0: never).
    pub big_one_in: u64,
    /// Size range of a large message's text, bytes.
    pub big_min: u64,
    /// See `big_min`.
    pub big_max: u64,
}

/// A body too large to keep for every line: built when printed or compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The body's JSON text.
    Text(String),
    /// A user message `id` whose one text part holds `size` bytes.
    Big { id: String, size: u64 },
}

impl Body {
    /// The body's JSON text (compact: what the journal stores and exports).
    pub fn text(&self) -> String {
        match self {
            Body::Text(t) => t.clone(),
            Body::Big { id, size } => {
                let size = *size as usize;
                // Varied bytes, so that a body cut short or shifted never compares equal.
                let unit = format!("{id} the quick brown fox jumps over the lazy dog; ");
                let mut text = unit.repeat(size / unit.len() + 1);
                text.truncate(size);
                format!(
                    r#"{{"id":"{id}","role":"user","parts":[{{"type":"text","text":"{text}"}}]}}"#
                )
            }
        }
    }

    /// Bytes of the body's text, without building it.
    pub fn len(&self) -> u64 {
        match self {
            Body::Text(t) => t.len() as u64,
            Body::Big { id, size } => {
                size + format!(
                    r#"{{"id":"{id}","role":"user","parts":[{{"type":"text","text":""}}]}}"#
                )
                .len() as u64
            }
        }
    }
}

/// One line of the stream: an append envelope without `seq` and `ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The envelope's `kind`.
    pub kind: &'static str,
    /// The envelope's `turn`.
    pub turn: Option<u64>,
    /// The envelope's `body`.
    pub body: Body,
}

impl Line {
    /// The envelope as one JSON line (no newline).
    pub fn envelope(&self) -> String {
        match self.turn {
            Some(t) => format!(
                r#"{{"kind":"{}","turn":{t},"body":{}}}"#,
                self.kind,
                self.body.text()
            ),
            None => format!(r#"{{"kind":"{}","body":{}}}"#, self.kind, self.body.text()),
        }
    }
}

/// The endless stream of a chain: realistic agent steps (a turn, a user question, streamed
/// deltas, the assistant's final message with a tool call, usage records, a tool run and its
/// result, metadata changes, now and then a rewind, a compaction boundary or an extension
/// event) and, before some steps, a large user message (so that a power cut tears writes).
#[derive(Debug, Clone)]
pub struct Stream {
    plan: Plan,
    rng: Rng,
    step: u64,
    pending: VecDeque<Line>,
}

impl Stream {
    /// The stream of `plan`, from its first line (seq 2).
    pub fn new(plan: Plan) -> Stream {
        Stream {
            plan,
            rng: Rng(plan.seed),
            step: 0,
            pending: VecDeque::new(),
        }
    }

    fn text(&mut self, lo: u64, hi: u64) -> String {
        const WORDS: [&str; 12] = [
            "file", "read", "the", "tests", "pass", "now", "build", "error", "fixed", "in",
            "module", "ok",
        ];
        let n = self.rng.range(lo, hi) as usize;
        let mut s = String::with_capacity(n + 8);
        while s.len() < n {
            s.push_str(WORDS[self.rng.below(WORDS.len() as u64) as usize]);
            s.push(' ');
        }
        s.truncate(n);
        s
    }

    fn push(&mut self, kind: &'static str, turn: Option<u64>, body: String) {
        self.pending.push_back(Line {
            kind,
            turn,
            body: Body::Text(body),
        });
    }

    fn fill(&mut self) {
        let i = self.step;
        self.step += 1;
        let t = Some(i + 1);
        if self.plan.big_one_in > 0 && self.rng.below(self.plan.big_one_in) == 0 {
            let size = self.rng.range(self.plan.big_min, self.plan.big_max);
            self.pending.push_back(Line {
                kind: "message",
                turn: t,
                body: Body::Big {
                    id: format!("b{i}"),
                    size,
                },
            });
        }
        self.push("turn", t, r#"{"event":"started"}"#.into());
        let q = self.text(10, 300);
        self.push(
            "message",
            t,
            format!(r#"{{"id":"u{i}","role":"user","parts":[{{"type":"text","text":"{q}"}}]}}"#),
        );
        let deltas = self.rng.range(1, 4);
        for k in 0..deltas {
            let frag = self.text(3, 60);
            self.push(
                "delta",
                t,
                format!(r#"{{"message_id":"a{i}","index":0,"type":"text","text":"{frag}{k}"}}"#),
            );
        }
        let call = self.rng.below(3) != 0;
        if call {
            self.push(
                "delta",
                t,
                format!(
                    r#"{{"message_id":"a{i}","index":1,"type":"tool_call","call_id":"c{i}","name":"sh","arguments":"{{\"cmd\":"}}"#
                ),
            );
        }
        let long = if self.rng.below(10) == 0 {
            16_000
        } else {
            3_000
        };
        let answer = self.text(20, long);
        let tool_part = if call {
            format!(r#",{{"type":"tool_call","call_id":"c{i}","name":"sh","arguments":"{{}}"}}"#)
        } else {
            String::new()
        };
        self.push(
            "message",
            t,
            format!(
                r#"{{"id":"a{i}","role":"assistant","parts":[{{"type":"text","text":"{answer}"}}{tool_part}]}}"#
            ),
        );
        for k in 0..self.rng.range(1, 2) {
            let total = 100 * (i + 1) + k;
            let output = self.rng.below(500);
            self.push(
                "usage",
                t,
                format!(
                    r#"{{"call_key":"k{i}","model":"m{}","input":{{"total":{total}}},"output":{{"total":{}}}}}"#,
                    i % 2,
                    output
                ),
            );
        }
        if call {
            self.push(
                "tool_run",
                t,
                format!(r#"{{"call_id":"c{i}","event":"started"}}"#),
            );
            let out = self.text(2, 400);
            self.push(
                "message",
                t,
                format!(
                    r#"{{"id":"t{i}","role":"tool","parts":[{{"type":"tool_result","call_id":"c{i}","outcome":"ok","text":"{out}"}}]}}"#
                ),
            );
            self.push(
                "tool_run",
                t,
                format!(r#"{{"call_id":"c{i}","event":"finished"}}"#),
            );
        }
        if self.rng.below(3) == 0 {
            let cwd = if self.rng.below(3) == 0 {
                "null".to_string()
            } else {
                format!(r#""/w/{i}""#)
            };
            self.push(
                "meta",
                None,
                format!(r#"{{"title":"step {i}","cwd":{cwd}}}"#),
            );
        }
        match self.rng.below(12) {
            0 => self.push("rewind", t, format!(r#"{{"to_seq":{}}}"#, i * 3)),
            1 => self.push(
                "compaction",
                t,
                format!(
                    r#"{{"summary_message_id":"u{i}","through_seq":{}}}"#,
                    i * 10
                ),
            ),
            2 => self.push("x-note", t, format!(r#"{{"step":{i},"ok":true}}"#)),
            _ => {}
        }
        self.push("turn", t, r#"{"event":"completed"}"#.into());
    }
}

impl Iterator for Stream {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        while self.pending.is_empty() {
            self.fill();
        }
        self.pending.pop_front()
    }
}

/// The guest program: prints the stream from a seq on. Exits quietly when the reader goes away
/// (the writer died).
#[allow(
    dead_code,
    reason = "the host includes this file as a module and never calls main"
)]
fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or(u64::MAX))
        .collect();
    let [seed, big_one_in, big_min, big_max, from_seq, lines] = args[..] else {
        eprintln!("usage: feeder SEED BIG_ONE_IN BIG_MIN BIG_MAX FROM_SEQ LINES");
        std::process::exit(2);
    };
    let plan = Plan {
        seed,
        big_one_in,
        big_min,
        big_max,
    };
    let skip = from_seq.saturating_sub(2) as usize;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for line in Stream::new(plan).skip(skip).take(lines as usize) {
        let mut text = line.envelope();
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
    let _ = out.flush();
}
