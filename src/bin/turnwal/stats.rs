//! `turnwal stats DIR [--json]`: what the session holds — turns, messages, tool calls, usage
//! and cost per model and in total — read-only, from the materialised session.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use turnwal::event::Role;
use turnwal::{Journal, MessageStatus, Options, Session, Status, ToolCallState, TurnState};
use turnwal_replay::session::UsageTotals;

use crate::ui::{self, Cell, Table, Tone, Ui};
use crate::verify::status_name;

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Session id.
    pub session: String,
    /// `clean`, `torn_tail` or `corrupt` (the numbers are of the valid prefix).
    pub status: &'static str,
    /// Last seq read.
    pub last_seq: u64,
    /// Turns.
    pub turns: Turns,
    /// Messages.
    pub messages: Messages,
    /// Tool calls.
    pub tool_calls: ToolCalls,
    /// Usage (latest record per `call_key`) and cost.
    pub usage: Usage,
}

/// Turns by state.
#[derive(Debug, Default, Serialize)]
pub struct Turns {
    /// All turns.
    pub count: u64,
    /// Started, not ended (after a crash: interrupted by it).
    pub open: u64,
    /// Ended `completed`.
    pub completed: u64,
    /// Ended `interrupted`.
    pub interrupted: u64,
    /// Ended `aborted`.
    pub aborted: u64,
    /// Ended `failed`.
    pub failed: u64,
}

/// Messages by role and by status.
#[derive(Debug, Default, Serialize)]
pub struct Messages {
    /// All messages, rewound ones included.
    pub count: u64,
    /// Every role, zero included.
    pub by_role: BTreeMap<&'static str, u64>,
    /// With their final form.
    pub complete: u64,
    /// Only deltas, the stream still open.
    pub partial: u64,
    /// Only deltas, cut by a crash (a read-only view counts every partial message here).
    pub interrupted: u64,
    /// Rewound past (no longer in the conversation).
    pub rewound: u64,
}

/// Counts of tool calls by state.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CallCounts {
    /// All calls.
    pub count: u64,
    /// With a result.
    pub answered: u64,
    /// No result and never started: safe to run.
    pub not_started: u64,
    /// Started, no result: it may have had its effect.
    pub unknown: u64,
}

impl CallCounts {
    fn add(&mut self, state: &ToolCallState) {
        self.count += 1;
        match state {
            ToolCallState::Answered { .. } => self.answered += 1,
            ToolCallState::NotStarted => self.not_started += 1,
            ToolCallState::Unknown => self.unknown += 1,
        }
    }
}

/// Tool calls, in total and per tool name.
#[derive(Debug, Default, Serialize)]
pub struct ToolCalls {
    /// Over every call.
    #[serde(flatten)]
    pub total: CallCounts,
    /// Per tool name (`""` for a result whose call was never seen).
    pub by_name: BTreeMap<String, CallCounts>,
}

/// Usage and cost of some model calls.
#[derive(Debug, Default, Serialize)]
pub struct UsageCounts {
    /// Model calls (distinct `call_key`s).
    pub calls: u64,
    /// Input tokens (cache reads and writes included).
    pub input: u64,
    /// Input tokens read from the cache.
    pub cache_read: u64,
    /// Input tokens written to the cache.
    pub cache_write: u64,
    /// Output tokens (reasoning included).
    pub output: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
    /// Cost per currency.
    pub cost: BTreeMap<String, f64>,
}

impl From<&UsageTotals> for UsageCounts {
    fn from(u: &UsageTotals) -> Self {
        UsageCounts {
            calls: u.calls,
            input: u.input,
            cache_read: u.cache_read,
            cache_write: u.cache_write,
            output: u.output,
            reasoning: u.reasoning,
            cost: u.cost.clone(),
        }
    }
}

/// Usage per model and in total.
#[derive(Debug, Default, Serialize)]
pub struct Usage {
    /// Per model name.
    pub by_model: BTreeMap<String, UsageCounts>,
    /// Over the session.
    pub total: UsageCounts,
}

impl Stats {
    /// The statistics of a materialised session.
    pub fn of(session: &Session, status: Status) -> Stats {
        let mut turns = Turns::default();
        for t in &session.turns {
            turns.count += 1;
            match t.state {
                TurnState::Open => turns.open += 1,
                TurnState::Completed => turns.completed += 1,
                TurnState::Interrupted => turns.interrupted += 1,
                TurnState::Aborted => turns.aborted += 1,
                TurnState::Failed => turns.failed += 1,
            }
        }
        let mut messages = Messages {
            by_role: Role::ALL.iter().map(|r| (r.as_str(), 0)).collect(),
            ..Messages::default()
        };
        for m in &session.messages {
            messages.count += 1;
            *messages.by_role.entry(m.role.as_str()).or_insert(0) += 1;
            match m.status {
                MessageStatus::Complete => messages.complete += 1,
                MessageStatus::Partial => messages.partial += 1,
                MessageStatus::Interrupted => messages.interrupted += 1,
            }
            if !m.active {
                messages.rewound += 1;
            }
        }
        let mut tool_calls = ToolCalls::default();
        for c in &session.tool_calls {
            tool_calls.total.add(&c.state);
            tool_calls
                .by_name
                .entry(c.name.clone())
                .or_default()
                .add(&c.state);
        }
        let usage = Usage {
            by_model: session
                .usage_by_model
                .iter()
                .map(|(m, u)| (m.clone(), UsageCounts::from(u)))
                .collect(),
            total: UsageCounts::from(&session.usage_total),
        };
        Stats {
            session: session.id.clone(),
            status: status_name(status),
            last_seq: session.last_seq,
            turns,
            messages,
            tool_calls,
            usage,
        }
    }

    /// The human form.
    pub fn render(&self, ui: &Ui) -> String {
        let mut out = String::new();
        let status_tone = match self.status {
            "clean" => Tone::Good,
            "torn_tail" => Tone::Warn,
            _ => Tone::Bad,
        };
        out += &ui.kv(
            0,
            &[
                ("session", self.session.as_str().into()),
                ("status", Cell::new(self.status, status_tone)),
                ("last seq", self.last_seq.into()),
            ],
        );
        out.push('\n');

        let t = &self.turns;
        out += &ui.heading(&format!("Turns ({})", t.count));
        let mut table = Table::new(&["state", "turns"]).right(&[1]);
        for (name, n, tone) in [
            ("completed", t.completed, Tone::Good),
            ("open", t.open, Tone::Warn),
            ("interrupted", t.interrupted, Tone::Warn),
            ("aborted", t.aborted, Tone::Warn),
            ("failed", t.failed, Tone::Bad),
        ] {
            table.row(vec![
                name.into(),
                Cell::new(n.to_string(), if n > 0 { tone } else { Tone::Plain }),
            ]);
        }
        out += &table.render(ui);
        out.push('\n');

        let m = &self.messages;
        out += &ui.heading(&format!("Messages ({})", m.count));
        // Roles in conversation order; roles with no message are left out here (not in JSON).
        let mut table = Table::new(&["role", "messages"]).right(&[1]);
        for role in Role::ALL {
            let n = m.by_role.get(role.as_str()).copied().unwrap_or(0);
            if n > 0 {
                table.row(vec![role.as_str().into(), n.into()]);
            }
        }
        out += &table.render(ui);
        let warn = |n: u64| Cell::new(n.to_string(), if n > 0 { Tone::Warn } else { Tone::Plain });
        let mut table = Table::new(&["status", "messages"]).right(&[1]);
        table.row(vec!["complete".into(), m.complete.into()]);
        table.row(vec!["partial".into(), warn(m.partial)]);
        table.row(vec!["interrupted".into(), warn(m.interrupted)]);
        table.row(vec!["rewound".into(), m.rewound.into()]);
        out += &table.render(ui);
        out.push('\n');

        let c = &self.tool_calls;
        out += &ui.heading(&format!("Tool calls ({})", c.total.count));
        let mut table = Table::new(&["tool", "calls", "answered", "not_started", "unknown"])
            .right(&[1, 2, 3, 4]);
        let row = |name: &str, n: &CallCounts| {
            vec![
                name.into(),
                n.count.into(),
                n.answered.into(),
                warn(n.not_started),
                warn(n.unknown),
            ]
        };
        for (name, n) in &c.by_name {
            table.row(row(if name.is_empty() { "(unknown)" } else { name }, n));
        }
        if c.by_name.len() != 1 {
            table.row(row("total", &c.total));
        }
        out += &table.render(ui);
        out.push('\n');

        let u = &self.usage;
        out += &ui.heading(&format!("Usage ({} model calls)", u.total.calls));
        let mut table = Table::new(&[
            "model",
            "calls",
            "input",
            "cache_read",
            "cache_write",
            "output",
            "reasoning",
            "cost",
        ])
        .right(&[1, 2, 3, 4, 5, 6, 7]);
        let row = |name: &str, n: &UsageCounts| {
            let cost = n
                .cost
                .iter()
                .map(|(cur, v)| format!("{} {cur}", ui::amount(*v)))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                name.into(),
                n.calls.into(),
                n.input.into(),
                n.cache_read.into(),
                n.cache_write.into(),
                n.output.into(),
                n.reasoning.into(),
                if cost.is_empty() {
                    "-".into()
                } else {
                    cost.into()
                },
            ]
        };
        for (model, n) in &u.by_model {
            table.row(row(if model.is_empty() { "(none)" } else { model }, n));
        }
        table.row(row("total", &u.total));
        out += &table.render(ui);
        out
    }
}

pub fn run(dir: &Path, json: bool) -> u8 {
    let view = {
        let _progress = ui::Progress::start("reading", dir);
        match Journal::open_read_only(dir, &Options::default()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("turnwal stats: {e}");
                return 2;
            }
        }
    };
    let stats = Stats::of(&view.session, view.report.status);
    let printed = if json {
        ui::print_json("stats", &stats)
    } else {
        ui::write_stdout("stats", &stats.render(&Ui::stdout()))
    };
    let code = match view.report.status {
        Status::Clean | Status::TornTail => 0,
        Status::Corrupt => {
            eprintln!(
                "turnwal stats: the journal is corrupt; these are the numbers of the {} events \
                 before the damage (`turnwal verify {}` says where)",
                view.report.records,
                dir.display()
            );
            1
        }
    };
    ui::exit(printed, code)
}
