//! The fixed, seeded workload: envelope JSON lines, generated before any timing starts, the
//! same bytes for every system.
//!
//! - Chat (`Chat`): `message` envelopes whose *line* length is log-normal (median 780 B,
//!   σ = 0.7), clamped to 200–4096 B, mean ≈ 1 KB; roles alternate user / assistant; ids are
//!   unique within the session; `turn` counts user–assistant pairs; after every fourth message
//!   a `usage` envelope (`call_key`, `model`, `input.total`, `output.total`).
//! - Stream (`stream_lines`): a streamed conversation: a user message, then 20–60 small
//!   `delta` envelopes (≈ 85–105 B) of the assistant's reply, then its final `message` (which
//!   supersedes the deltas), and a `usage` per two replies (one per four messages).
//!
//! A tiny splitmix64 generator keeps the workload identical across runs and machines without a
//! dependency.

use serde_json::json;

/// splitmix64: small, fast, and good enough to shape a workload.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A message line length: log-normal, median 780 B, σ 0.7, clamped to 200–4096 B.
    pub fn line_len(&mut self) -> usize {
        let x = (780f64.ln() + 0.7 * self.normal()).exp();
        x.clamp(200.0, 4096.0) as usize
    }
}

const WORDS: [&str; 48] = [
    "the",
    "session",
    "journal",
    "append",
    "tool",
    "call",
    "result",
    "model",
    "assistant",
    "user",
    "file",
    "function",
    "returns",
    "error",
    "fixed",
    "test",
    "passes",
    "because",
    "value",
    "crash",
    "recovery",
    "segment",
    "snapshot",
    "message",
    "stream",
    "delta",
    "turn",
    "usage",
    "token",
    "context",
    "window",
    "summary",
    "index",
    "buffer",
    "write",
    "read",
    "commit",
    "durable",
    "latency",
    "path",
    "config",
    "option",
    "struct",
    "trait",
    "async",
    "review",
    "diff",
    "patch",
];

/// Text of about `len` bytes: words, punctuation, now and then a quote or a newline (which JSON
/// escapes), like chat text.
fn text(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        s.push_str(WORDS[rng.range(0, WORDS.len() - 1)]);
        match rng.range(0, 39) {
            0 => s.push_str(".\n"),
            1 => s.push_str(", \""),
            2 => s.push_str("\" "),
            3..=5 => s.push_str(". "),
            _ => s.push(' '),
        }
    }
    s.truncate(len);
    s
}

/// An envelope line with one text part whose whole line is about `line_len` bytes.
fn message_line(rng: &mut Rng, turn: u64, id: &str, role: &str, line_len: usize) -> String {
    let line = |text: &str| {
        json!({"kind": "message", "turn": turn,
            "body": {"id": id, "role": role, "parts": [{"type": "text", "text": text}]}})
        .to_string()
    };
    let shell = line("").len();
    let mut body = text(rng, line_len.saturating_sub(shell).max(8));
    // Escapes (quotes, newlines) lengthen the line: trim the text by the excess.
    let excess = line(&body).len().saturating_sub(line_len.max(shell + 8));
    body.truncate(body.len() - excess.min(body.len()));
    line(&body)
}

fn usage_line(rng: &mut Rng, turn: u64, call: u64, label: &str) -> String {
    let model = if call.is_multiple_of(3) {
        "model-small"
    } else {
        "model-large"
    };
    json!({"kind": "usage", "turn": turn, "body": {
        "call_key": format!("{label}-c{call}"), "model": model,
        "input": {"total": rng.range(500, 60_000)}, "output": {"total": rng.range(20, 4_000)}}})
    .to_string()
}

/// A chat session as an endless sequence of envelope lines.
pub struct Chat {
    rng: Rng,
    label: String,
    messages: u64,
    calls: u64,
    usage_due: bool,
}

impl Chat {
    /// `label` prefixes ids and call keys, so sessions and parts of one are distinct.
    pub fn new(seed: u64, label: &str) -> Self {
        Chat {
            rng: Rng::new(seed),
            label: label.to_owned(),
            messages: 0,
            calls: 0,
            usage_due: false,
        }
    }

    /// Messages produced so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Whether the next line is a message (and not a usage event).
    pub fn next_is_message(&self) -> bool {
        !self.usage_due
    }

    pub fn next_line(&mut self) -> String {
        let turn = self.messages / 2 + 1;
        if self.usage_due {
            self.usage_due = false;
            self.calls += 1;
            return usage_line(&mut self.rng, turn - 1, self.calls, &self.label);
        }
        let role = if self.messages.is_multiple_of(2) {
            "user"
        } else {
            "assistant"
        };
        let id = format!("{}-m{}", self.label, self.messages);
        let len = self.rng.line_len();
        let line = message_line(&mut self.rng, turn, &id, role, len);
        self.messages += 1;
        self.usage_due = self.messages.is_multiple_of(4);
        line
    }
}

/// The first `n` lines of a chat.
pub fn chat_lines(seed: u64, label: &str, n: usize) -> Vec<String> {
    let mut chat = Chat::new(seed, label);
    (0..n).map(|_| chat.next_line()).collect()
}

/// A chat holding exactly `messages` messages (and the usage events due among them).
pub fn chat_messages(seed: u64, label: &str, messages: u64) -> Vec<String> {
    let mut chat = Chat::new(seed, label);
    let mut out = Vec::new();
    while chat.messages() < messages || !chat.next_is_message() {
        out.push(chat.next_line());
    }
    out
}

/// `n` lines of a streamed conversation: mostly small deltas, some messages and usage.
pub fn stream_lines(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    let (mut msg, mut calls) = (0u64, 0u64);
    while out.len() < n {
        let turn = msg / 2 + 1;
        let len = rng.line_len();
        out.push(message_line(
            &mut rng,
            turn,
            &format!("m{msg}"),
            "user",
            len,
        ));
        msg += 1;
        let id = format!("m{msg}");
        for _ in 0..rng.range(20, 60) {
            let len = rng.range(4, 24);
            let frag = text(&mut rng, len);
            out.push(
                json!({"kind": "delta", "turn": turn, "body": {
                    "message_id": id, "index": 0, "type": "text", "text": frag}})
                .to_string(),
            );
        }
        let len = rng.line_len();
        out.push(message_line(&mut rng, turn, &id, "assistant", len));
        msg += 1;
        if msg.is_multiple_of(4) {
            calls += 1;
            out.push(usage_line(&mut rng, turn, calls, "s"));
        }
    }
    out.truncate(n);
    out
}

/// Sizes of the message lines and the share of each kind, for the printed description.
pub fn describe(lines: &[String]) -> String {
    let is = |l: &String, kind: &str| l.contains(&format!(r#""kind":"{kind}""#));
    let messages: Vec<usize> = lines
        .iter()
        .filter(|l| is(l, "message"))
        .map(String::len)
        .collect();
    let deltas = lines.iter().filter(|l| is(l, "delta")).count();
    let usage = lines.iter().filter(|l| is(l, "usage")).count();
    let total: usize = lines.iter().map(String::len).sum();
    let mut out = format!(
        "{} events, mean {} B: {} messages (line mean {} B, {}–{} B)",
        lines.len(),
        total / lines.len().max(1),
        messages.len(),
        messages.iter().sum::<usize>() / messages.len().max(1),
        messages.iter().min().unwrap_or(&0),
        messages.iter().max().unwrap_or(&0),
    );
    if deltas > 0 {
        out += &format!(", {deltas} deltas");
    }
    out + &format!(", {usage} usage")
}
