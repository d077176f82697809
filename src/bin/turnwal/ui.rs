//! Terminal output: aligned tables and key/value lists, colour only on a terminal and never
//! with `NO_COLOR` (<https://no-color.org>), a progress spinner on stderr for long reads of
//! large journals (only when stderr is a terminal), and JSON on stdout.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// Whether a command whose default output was JSON before it had a human form prints JSON:
/// with `--json`, or when stdout is not a terminal (a pipe, a file: scripts get what they
/// always got).
pub fn json_unless_terminal(json_flag: bool) -> bool {
    json_flag || !std::io::stdout().is_terminal()
}

/// The snake_case JSON name of a serialisable enum value (`cut_torn_tail`).
pub fn name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Whether `NO_COLOR` asks for no colour: set and not empty.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// How a piece of text is shown when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// As it is.
    Plain,
    /// Good news (clean, answered).
    Good,
    /// Worth a look (torn tail, pending, partial).
    Warn,
    /// Bad news (corrupt, refused).
    Bad,
    /// Secondary (units, notes).
    Dim,
    /// Headings.
    Bold,
}

impl Tone {
    fn sgr(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("32"),
            Tone::Warn => Some("33"),
            Tone::Bad => Some("1;31"),
            Tone::Dim => Some("2"),
            Tone::Bold => Some("1"),
        }
    }
}

/// Where human text goes, and whether it may be coloured.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    colour: bool,
}

impl Ui {
    /// For stdout: colour only if stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn stdout() -> Ui {
        Ui {
            colour: std::io::stdout().is_terminal() && !no_color(),
        }
    }

    /// Never coloured (unit tests).
    #[cfg(test)]
    pub fn plain() -> Ui {
        Ui { colour: false }
    }

    /// `text` in `tone` (unchanged when colour is off).
    pub fn paint(&self, text: &str, tone: Tone) -> String {
        match (self.colour, tone.sgr()) {
            (true, Some(code)) => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }

    /// A section heading line.
    pub fn heading(&self, text: &str) -> String {
        format!("{}\n", self.paint(text, Tone::Bold))
    }

    /// `key  value` lines, keys padded to the longest, indented by `indent` spaces.
    pub fn kv(&self, indent: usize, rows: &[(&str, Cell)]) -> String {
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let pad = width - k.chars().count();
            let _ = writeln!(
                out,
                "{:indent$}{}{:pad$}  {}",
                "",
                self.paint(k, Tone::Dim),
                "",
                self.paint(&v.text, v.tone)
            );
        }
        out
    }
}

/// One cell of a table or value of a key/value list.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    tone: Tone,
}

impl Cell {
    /// `text` shown in `tone`.
    pub fn new(text: impl Into<String>, tone: Tone) -> Cell {
        Cell {
            text: text.into(),
            tone,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::new(text, Tone::Plain)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::new(text, Tone::Plain)
    }
}

macro_rules! cell_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell {
            fn from(n: $t) -> Cell {
                Cell::new(n.to_string(), Tone::Plain)
            }
        }
    )*};
}
cell_from_number!(u64, usize, u32, i64);

/// An aligned table: a header row and rows of cells, columns separated by two spaces, numbers
/// right-aligned where asked. Widths count characters (colour codes are added after padding).
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<Cell>>,
    indent: usize,
}

impl Table {
    /// A table with these column headers, all left-aligned, indented by two spaces.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_string()).collect(),
            right: vec![false; headers.len()],
            rows: Vec::new(),
            indent: 2,
        }
    }

    /// Right-aligns the columns at these indices.
    pub fn right(mut self, cols: &[usize]) -> Table {
        for &c in cols {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    /// Adds a row (missing cells are empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, no trailing spaces.
    pub fn render(&self, ui: &Ui) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::new(h.clone(), Tone::Dim))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = " ".repeat(self.indent);
            let empty = Cell::from("");
            for (i, (width, right)) in widths.iter().zip(&self.right).enumerate() {
                let c = row.get(i).unwrap_or(&empty);
                let pad = width.saturating_sub(c.text.chars().count());
                let last = i + 1 == n;
                let painted = ui.paint(&c.text, c.tone);
                if *right {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(&painted);
                } else {
                    line.push_str(&painted);
                    if !last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Bytes as a short human size (`512 B`, `1.5 KiB`, `16.0 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A cost amount: up to six decimals, trailing zeros dropped.
pub fn amount(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
}

/// `Some(x)` as text, `None` as `-`.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Writes `text` to stdout and flushes. A closed pipe (`turnwal stats DIR | head -1`) is not an
/// error; anything else is, with exit code 2.
pub fn write_stdout(cmd: &str, text: &str) -> Result<(), u8> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            eprintln!("turnwal {cmd}: writing stdout: {e}");
            Err(2)
        }
    }
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(cmd: &str, value: &impl Serialize) -> Result<(), u8> {
    match serde_json::to_string(value) {
        Ok(mut s) => {
            s.push('\n');
            write_stdout(cmd, &s)
        }
        Err(e) => {
            eprintln!("turnwal {cmd}: {e}");
            Err(2)
        }
    }
}

/// Collapses a `Result<(), u8>` of printing into an exit code: `code` if printing worked.
pub fn exit(printed: Result<(), u8>, code: u8) -> u8 {
    match printed {
        Ok(()) => code,
        Err(c) => c,
    }
}

/// Journals at least this large get a progress spinner on a terminal.
pub const PROGRESS_MIN_BYTES: u64 = 32 << 20;

/// Total size of the journal's data files (segments and snapshots) in `dir`; 0 if unreadable.
pub fn journal_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            (name.starts_with("segment-") && name.ends_with(".twl"))
                || (name.starts_with("snapshot-") && name.ends_with(".jsonl"))
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// A spinner on stderr while a long operation runs; cleared when dropped. Shown only when
/// stderr is a terminal and the journal is at least [`PROGRESS_MIN_BYTES`]: the library reads
/// a journal in one call, so there is no per-record progress to show, only that it is working.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Starts a spinner saying `what` (`reading`, `compacting`) the journal in `dir`.
    pub fn start(what: &str, dir: &Path) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let total = journal_bytes(dir);
        if total < PROGRESS_MIN_BYTES {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        let style = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(format!("{what} {} ({})", dir.display(), bytes(total)));
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(bar))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_leave_no_trailing_spaces() {
        let mut t = Table::new(&["name", "n", "note"]).right(&[1]);
        t.row(vec!["a".into(), 5u64.into(), "".into()]);
        t.row(vec!["longer".into(), 12345u64.into(), "x".into()]);
        let s = t.render(&Ui::plain());
        assert_eq!(
            s,
            "  name        n  note\n  a           5\n  longer  12345  x\n"
        );
    }

    #[test]
    fn plain_ui_never_colours() {
        let ui = Ui::plain();
        assert_eq!(ui.paint("x", Tone::Bad), "x");
        let colour = Ui { colour: true };
        assert_eq!(colour.paint("x", Tone::Good), "\x1b[32mx\x1b[0m");
        assert_eq!(colour.paint("x", Tone::Plain), "x");
    }

    #[test]
    fn sizes_and_amounts() {
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(16 << 20), "16.0 MiB");
        assert_eq!(amount(0.012), "0.012");
        assert_eq!(amount(3.0), "3");
        assert_eq!(amount(0.0), "0");
    }
}
