//! The `turnwal` command line. Contract (EVENTS.md): `append`, `export`, `verify`; plus
//! `compact`, `repair`, `tail` and `demo`.
//! Every error exits non-zero with a message on stderr.

mod append;
mod compact;
mod demo;
mod export;
mod fork;
mod repair;
mod tail;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "turnwal",
    version,
    about = "Crash-safe write-ahead turn journal for AI-agent chat sessions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Durability policy on the command line.
#[derive(Clone, Copy, ValueEnum, Debug)]
pub enum SyncArg {
    /// Every append durable before the next line is read.
    Always,
    /// Background sync every 5 ms or 1 MiB.
    Batch,
    /// Sync only at end of input.
    Never,
}

impl SyncArg {
    fn policy(self) -> turnwal::SyncPolicy {
        match self {
            SyncArg::Always => turnwal::SyncPolicy::Always,
            SyncArg::Batch => turnwal::SyncPolicy::default(),
            SyncArg::Never => turnwal::SyncPolicy::Never,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Append JSONL envelopes from stdin (creating the journal if missing).
    ///
    /// Prints `{"durable_through": N}` after each completed fsync and once more at the end.
    /// A bad line stops the run with exit 1 and an error naming the line; every line before it
    /// is appended and durable.
    ///
    /// Example: `echo '{"kind":"meta","body":{"title":"t"}}' | turnwal append ./s1 --sync always`
    Append {
        /// Journal directory.
        dir: PathBuf,
        /// Durability policy.
        #[arg(long, value_enum, default_value = "batch")]
        sync: SyncArg,
        /// Compact in the background as the library does by default (past 16 MiB or 50 000
        /// events behind the snapshot). Off unless given: `export --raw` then shows every
        /// appended event until `turnwal compact` is run.
        #[arg(long)]
        auto_compact: bool,
        /// Compact in the background every N events behind the snapshot, whatever their size
        /// (implies --auto-compact): a compaction-heavy writer, for crash tests.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        compact_records: Option<u64>,
        /// Take over the writer lock if its holder is provably dead on this host (see the
        /// README, "Lock takeover"; not needed after a crash).
        #[arg(long)]
        takeover: bool,
        /// Longest input line in bytes, newline excluded (default 17 MiB: the 16 MiB record
        /// limit plus room for the envelope). A longer line is refused, naming it, as soon as
        /// the limit is passed, without reading it whole.
        #[arg(long, value_name = "N", default_value_t = append::LINE_BYTES_MAX_DEFAULT,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_line_bytes: u64,
    },
    /// Print the session (snapshot layout) or, with --raw, every stored event. Read-only.
    ///
    /// Example: `turnwal export ./s1 --raw | jq .kind`
    Export {
        /// Journal directory.
        dir: PathBuf,
        /// Every stored event in seq order, one envelope per line.
        #[arg(long)]
        raw: bool,
    },
    /// Print the durable events as export envelopes, one per line; with -f, keep following.
    ///
    /// Read-only and lock-free: works while a writer appends, rotates and compacts. An event is
    /// printed once it is durable (up to the watermark in the log while a writer holds the
    /// lock, everything valid once none does), each exactly once, in seq order; events a
    /// compaction folded away before they were seen are skipped.
    ///
    /// Example: `turnwal tail -f ./s1 | jq -c 'select(.kind == "message") | .body.id'`
    Tail {
        /// Journal directory.
        dir: PathBuf,
        /// Keep following (poll every 200 ms) until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Start at this seq instead of the first event.
        #[arg(long, value_name = "SEQ", default_value_t = 1)]
        from: u64,
    },
    /// Repair a journal: cut a proven torn tail, or with --salvage keep every valid record past
    /// the damage and move the damaged segments aside.
    ///
    /// Without --salvage it does what a writer's open does and refuses corruption (exit 1).
    /// With --salvage it installs every record that still validates as the journal's state
    /// (a new snapshot and a fresh segment), keeps the damaged files as quarantine-salvaged-*,
    /// and reports the seqs lost. --dry-run changes nothing and says what would be done.
    /// Prints one JSON object. Exit 0 done, 1 refused, 2 error.
    ///
    /// Example: `turnwal repair ./s1 --salvage --dry-run | jq .report.salvage.lost`
    Repair {
        /// Journal directory.
        dir: PathBuf,
        /// Keep every valid record past the damage (explicit, logged; renumbers nothing).
        #[arg(long)]
        salvage: bool,
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take over the writer lock if its holder is provably dead on this host.
        #[arg(long)]
        takeover: bool,
    },
    /// Audit a journal without changing it. Exit 0 clean or torn tail, 1 corrupt, 2 error.
    ///
    /// Example: `turnwal verify ./s1 --json`
    Verify {
        /// Journal directory.
        dir: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fold the log into a new JSONL snapshot and delete the segments it covers.
    ///
    /// Takes the writer lock (fails if a writer holds it). Prints one JSON object: snapshot
    /// file, through_seq, records, messages, bytes, removed files, hold_us and total_us.
    /// Exit 0 done (or nothing to do), 1 refused (corrupt journal, or a snapshot that would
    /// shrink the session), 2 error.
    ///
    /// Example: `turnwal compact ./s1 && jq -c .kind ./s1/snapshot-*.jsonl`
    Compact {
        /// Journal directory.
        dir: PathBuf,
        /// Take over the writer lock if its holder is provably dead on this host.
        #[arg(long)]
        takeover: bool,
    },
    /// Start a new session from another one's state at a seq (resume-and-branch).
    ///
    /// Reads the parent only (a live writer may keep appending to it). The child records
    /// `fork_of: {session, seq}`, starts from a snapshot of the parent's state at SEQ and
    /// continues its seq numbering; it never depends on the parent's files. Prints one JSON
    /// object: session, fork_of, last_seq. Exit 0 done, 1 refused (bad seq, compacted past
    /// it, corrupt parent, existing child), 2 error.
    ///
    /// Example: `turnwal fork ./s1 ./s1-retry --at 42 && turnwal export ./s1-retry`
    Fork {
        /// Parent journal directory.
        parent: PathBuf,
        /// The new session's directory (must not exist).
        child: PathBuf,
        /// The parent's seq to branch after.
        #[arg(long, value_name = "SEQ")]
        at: u64,
    },
    /// Write a realistic agent session in a child process, kill -9 it mid-turn, recover, report.
    ///
    /// Example: `turnwal demo`
    Demo {
        /// Where to put the demo journal (default: a new directory under the temp dir).
        dir: Option<PathBuf>,
    },
    /// The demo's writer process (internal).
    #[command(hide = true)]
    DemoWriter {
        /// Journal directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Append {
            dir,
            sync,
            auto_compact,
            compact_records,
            takeover,
            max_line_bytes,
        } => append::run(
            &dir,
            sync.policy(),
            auto_compact,
            compact_records,
            takeover,
            max_line_bytes,
        ),
        Command::Export { dir, raw } => export::run(&dir, raw),
        Command::Verify { dir, json } => verify::run(&dir, json),
        Command::Repair {
            dir,
            salvage,
            dry_run,
            takeover,
        } => repair::run(&dir, salvage, dry_run, takeover),
        Command::Tail { dir, follow, from } => tail::run(&dir, follow, from),
        Command::Compact { dir, takeover } => compact::run(&dir, takeover),
        Command::Fork { parent, child, at } => fork::run(&parent, &child, at),
        Command::Demo { dir } => demo::run(dir),
        Command::DemoWriter { dir } => demo::writer(&dir),
    };
    ExitCode::from(code)
}
