//! Tier 2 of the crash-injection harness (TESTING.md): real `turnwal append` processes,
//! real `kill -9`.
//!
//! The story: an agent harness pipes events into `turnwal append` and treats each
//! `{"durable_through": N}` line as a promise. The process is then SIGKILLed: at a random moment
//! (after a random number of promises and a random short delay, maybe in the middle of writing a
//! 1 MiB event, maybe while it recovers the previous writer's crash or compacts in the
//! background), or exactly at a named step of the protocol (`TURNWAL_KILL_AT`: an append in the
//! kernel but not returned, a group commit before and after its fdatasync, each step of a
//! segment rotation and of a segment's creation, each step of cutting a torn tail). After every
//! kill the journal is read in process with `Journal::open_read_only`, and checked against
//! exactly what was fed:
//!
//! - I1: the recovered last seq is at least the last `durable_through` printed (and no event
//!   recovered before the kill has gone);
//! - I3: the recovered events are a prefix of what was fed: contiguous seqs from 1 (or from the
//!   snapshot's `through_seq + 1` after the events the snapshot retained), every body JSON-equal
//!   to the line fed with that seq, nothing invented; the status is `Clean` or `TornTail`, never
//!   `Corrupt`. Behind a snapshot only superseded deltas and usage records may be missing, and
//!   the `meta` events are one merged event at the last meta seq;
//! - I5: a crash while recovery cuts a torn tail recovers the same prefix again.
//!
//! Journal directories are reused across many kills (each writer recovers the previous one's
//! crash) and fresh ones are started too. Torn writes are made to happen: some random kills wait
//! until the last segment grows (a large write is being copied in) and strike at once; the
//! figures say how many torn tails were then recovered.
//!
//! Size knob: `TURNWAL_CRASH_SCALE` (integer, default 1 = the CI size: over 1,000 real SIGKILLs
//! in total, well under 3 minutes in a debug build on 2 cores) multiplies the number of random
//! kills and of named kill-point runs. Randomness comes from one seed, printed at the start of
//! each test; `TURNWAL_KILL_SEED=<seed>` replays the same plan (syncs, inputs, kill after how
//! many acknowledgements and how long a delay; the exact kill moment stays up to the scheduler).
//! A long campaign: `TURNWAL_CRASH_SCALE=20 cargo test --release --test kill9 -- --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a crash test: any failure must fail loudly, with the seed"
)]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{agent_step, files_with_ext, message};
use turnwal::{Event, Journal, Options, Status};
use turnwal_journal::killpoint;

/// Multiplies the number of kills (default 1: the CI size).
const SCALE_ENV: &str = "TURNWAL_CRASH_SCALE";
/// Replays a run: the seed printed by a test.
const SEED_ENV: &str = "TURNWAL_KILL_SEED";
/// Random kills per unit of scale.
const RANDOM_KILLS: u64 = 1000;
/// How long a writer may take to print the acknowledgements a kill waits for.
const ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a writer that is expected to exit (or kill itself) may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn scale() -> u64 {
    match std::env::var(SCALE_ENV) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|&s| s >= 1)
            .unwrap_or_else(|| panic!("{SCALE_ENV}={v:?}: expected an integer >= 1")),
        Err(_) => 1,
    }
}

/// The test's seed: `TURNWAL_KILL_SEED` (decimal or 0x-hex) or a fresh one; printed.
fn seed(test: &str) -> u64 {
    let seed = match std::env::var(SEED_ENV) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            };
            parsed.unwrap_or_else(|| panic!("{SEED_ENV}={v:?}: expected an integer"))
        }
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            SplitMix64(nanos ^ (u64::from(std::process::id()) << 32)).next()
        }
    };
    println!(
        "kill9 {test}: seed {seed:#018x} (replay: {SEED_ENV}={seed:#018x} cargo test --test kill9 \
         {test}), scale {}",
        scale()
    );
    seed
}

/// A small PRNG (splitmix64): good enough for a test plan, and reproducible from its seed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A derived generator, for a thread of its own.
    fn fork(&mut self) -> SplitMix64 {
        SplitMix64(self.next())
    }
}

fn turnwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_turnwal"))
}

// ---------------------------------------------------------------------------------------------
// What was fed, and what each line must come back as.

/// The parts of an envelope the journal must give back: kind, turn and the body's JSON text.
#[derive(Debug, Clone)]
struct Expected {
    kind: String,
    turn: Option<u64>,
    body: String,
}

/// Splits an envelope of the `common` helpers (`{"kind":..,"turn":..,"body":{..}}`, body last).
fn split_envelope(line: &str) -> Expected {
    let at = line.find(",\"body\":").expect("envelope with a body");
    assert!(line.ends_with('}'), "envelope: {line}");
    let head: serde_json::Value =
        serde_json::from_str(&format!("{}}}", &line[..at])).expect("envelope head");
    Expected {
        kind: head["kind"].as_str().expect("kind").to_string(),
        turn: head["turn"].as_u64(),
        body: line[at + ",\"body\":".len()..line.len() - 1].to_string(),
    }
}

/// One line fed to a writer. Large messages are kept as their recipe, not their bytes.
#[derive(Debug, Clone)]
enum Fed {
    Line(Arc<Expected>),
    Big { id: usize, size: usize },
}

impl Fed {
    fn expected(&self) -> Arc<Expected> {
        match self {
            Fed::Line(e) => Arc::clone(e),
            Fed::Big { id, size } => Arc::new(split_envelope(&message(*id, *size))),
        }
    }

    fn kind(&self) -> &str {
        match self {
            Fed::Line(e) => &e.kind,
            Fed::Big { .. } => "message",
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Fed::Line(e) => e.body.len() + 40,
            Fed::Big { size, .. } => *size + 100,
        }
    }
}

/// Whether a stored body is JSON-equal to the expected text (identical text first: cheap).
fn body_equal(stored: &str, expected: &str) -> bool {
    if stored == expected {
        return true;
    }
    match (
        serde_json::from_str::<serde_json::Value>(stored),
        serde_json::from_str::<serde_json::Value>(expected),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn event_matches(e: &Event, x: &Expected) -> Result<(), String> {
    let kind = e.kind.name();
    if kind != x.kind || e.turn != x.turn {
        return Err(format!(
            "kind/turn {kind}/{:?}, fed {}/{:?}",
            e.turn, x.kind, x.turn
        ));
    }
    if !body_equal(&e.body, &x.body) {
        return Err(format!(
            "body differs: stored {}, fed {}",
            preview(&e.body),
            preview(&x.body)
        ));
    }
    Ok(())
}

fn preview(s: &str) -> String {
    if s.len() <= 160 {
        return s.to_string();
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

/// How the feeder makes its lines.
#[derive(Debug, Clone)]
struct FeedPlan {
    rng: SplitMix64,
    /// Agent steps (`common::agent_step`): a realistic session.
    steps: bool,
    /// A large message before a step once in this many (0: never; with `steps` false: every line).
    big_one_in: u64,
    /// Size range of the large messages (bytes of text).
    big_bytes: (usize, usize),
    /// Stop after this many lines (then stdin is closed: the writer syncs and exits).
    max_lines: usize,
}

impl FeedPlan {
    fn steps(rng: SplitMix64, max_lines: usize) -> FeedPlan {
        FeedPlan {
            rng,
            steps: true,
            big_one_in: 0,
            big_bytes: (64 << 10, 1 << 20),
            max_lines,
        }
    }
}

struct FeedOut {
    fed: Vec<Fed>,
    next_step: usize,
    next_msg: usize,
}

/// Writes lines to the writer's stdin from a thread of its own until the plan ends or the
/// writer dies (the write fails). Returns every line it started to write, in order. Step and
/// message numbers are never reused in a directory: a delta for a message that already has its
/// final form would be refused.
fn feed(
    mut stdin: ChildStdin,
    mut plan: FeedPlan,
    mut step: usize,
    mut msg: usize,
) -> JoinHandle<FeedOut> {
    std::thread::spawn(move || {
        let mut fed = Vec::new();
        'feed: while fed.len() < plan.max_lines {
            if !plan.steps || (plan.big_one_in > 0 && plan.rng.below(plan.big_one_in) == 0) {
                let (lo, hi) = plan.big_bytes;
                let size = plan.rng.range(lo as u64, hi as u64) as usize;
                let line = message(msg, size) + "\n";
                fed.push(Fed::Big { id: msg, size });
                msg += 1;
                if stdin.write_all(line.as_bytes()).is_err() {
                    break 'feed;
                }
            }
            if plan.steps {
                let lines = agent_step(step);
                step += 1;
                for line in lines {
                    if fed.len() >= plan.max_lines {
                        break 'feed;
                    }
                    fed.push(Fed::Line(Arc::new(split_envelope(&line))));
                    if stdin.write_all((line + "\n").as_bytes()).is_err() {
                        break 'feed;
                    }
                }
            }
        }
        FeedOut {
            fed,
            next_step: step,
            next_msg: msg,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// A journal directory and everything known about it.

/// A journal directory reused across writers, with the model of its content.
#[derive(Debug, Clone)]
struct Chain {
    dir: PathBuf,
    /// `fed[k]` is the line stored at seq `k + 2` (seq 1 is the journal's session event); only
    /// lines at or below the recovered last seq are kept once a kill is checked.
    fed: Vec<Fed>,
    /// Last seq recovered by the previous check (0: no event).
    last: u64,
    next_step: usize,
    next_msg: usize,
    /// Writers run in it so far.
    runs: u64,
}

impl Chain {
    fn new(dir: PathBuf) -> Chain {
        Chain {
            dir,
            fed: Vec::new(),
            last: 0,
            next_step: 0,
            next_msg: 0,
            runs: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.fed.iter().map(Fed::bytes).sum()
    }

    /// A copy of the directory and its model (for runs that start from the same state).
    fn copy_to(&self, dir: PathBuf) -> Chain {
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&self.dir).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        Chain {
            dir,
            runs: 0,
            ..self.clone()
        }
    }
}

/// How a writer run ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// It exits by itself (end of input, or its own kill point).
    Exit,
    /// SIGKILL once it has printed `acks` acknowledgements, after `delay`; with `mid_write`,
    /// then as soon as its last segment grows (a large write is in progress: the kill tears it).
    Kill {
        acks: u64,
        delay: Duration,
        mid_write: bool,
    },
}

#[derive(Debug)]
struct Run {
    status: ExitStatus,
    /// Highest `durable_through` printed (0: none).
    acked: u64,
    /// `durable_through` lines printed.
    acks: u64,
    /// Output lines that are not a `durable_through` line.
    odd_output: Vec<String>,
    stderr: String,
    /// The acknowledgements waited for did not come in time.
    timed_out: bool,
    /// Killed while the last segment was growing.
    mid_write: bool,
}

impl Run {
    fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }
}

/// Runs `turnwal append DIR --sync SYNC [extra]` on the chain, fed by `plan`, ended by `end`,
/// with `TURNWAL_KILL_AT` set to `kill_at` if given. The lines it was fed join the model.
fn run_writer(
    chain: &mut Chain,
    sync: &str,
    extra: &[&str],
    kill_at: Option<&str>,
    plan: FeedPlan,
    end: End,
) -> Run {
    let err_path = chain.dir.with_extension("stderr");
    let mut cmd = turnwal();
    cmd.arg("append")
        .arg(&chain.dir)
        .args(["--sync", sync])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(&err_path).unwrap());
    match kill_at {
        Some(p) => cmd.env(killpoint::ENV, p),
        None => cmd.env_remove(killpoint::ENV),
    };
    let mut child = cmd.spawn().unwrap();
    chain.runs += 1;
    let feeder = feed(
        child.stdin.take().unwrap(),
        plan,
        chain.next_step,
        chain.next_msg,
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Result<u64, String>>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let n = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["durable_through"].as_u64());
            if tx.send(n.ok_or(line)).is_err() {
                break;
            }
        }
    });
    let mut acked = 0;
    let mut acks = 0;
    let mut odd_output = Vec::new();
    let mut take = |r: Result<u64, String>, acked: &mut u64, acks: &mut u64| match r {
        Ok(n) => {
            *acked = (*acked).max(n);
            *acks += 1;
        }
        Err(line) => odd_output.push(line),
    };
    let mut timed_out = false;
    let mut mid_write = false;
    let status = match end {
        End::Kill {
            acks: want,
            delay,
            mid_write: on_growth,
        } => {
            let deadline = Instant::now() + ACK_TIMEOUT;
            while acks < want {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(r) => take(r, &mut acked, &mut acks),
                    Err(RecvTimeoutError::Timeout) => {
                        timed_out = true;
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            if on_growth {
                mid_write = wait_for_growth(&chain.dir, Duration::from_millis(300));
            }
            let _ = child.kill();
            child.wait().unwrap()
        }
        End::Exit => {
            let deadline = Instant::now() + RUN_TIMEOUT;
            loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if Instant::now() > deadline {
                    timed_out = true;
                    let _ = child.kill();
                    break child.wait().unwrap();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    reader.join().unwrap();
    // Everything the writer printed before it died counts as acknowledged.
    for r in rx.try_iter() {
        take(r, &mut acked, &mut acks);
    }
    let out = feeder.join().unwrap();
    chain.fed.extend(out.fed);
    chain.next_step = out.next_step;
    chain.next_msg = out.next_msg;
    Run {
        status,
        acked,
        acks,
        odd_output,
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
        mid_write,
    }
}

/// Polls the size of the newest segment of `dir` until it grows (true) or `limit` passes.
/// The writer extends a segment only by a write that also pre-writes 1 MiB of zeros, and the
/// size grows page by page while that write is copied in: a kill now lands inside it.
fn wait_for_growth(dir: &Path, limit: Duration) -> bool {
    let newest = || files_with_ext(dir, ".twl").pop().map(|n| dir.join(n));
    let len = |p: &Option<PathBuf>| {
        p.as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    };
    let deadline = Instant::now() + limit;
    let mut seg = if dir.exists() { newest() } else { None };
    let mut size = len(&seg);
    let mut polls = 0u64;
    while Instant::now() < deadline {
        polls += 1;
        if polls.is_multiple_of(256) && dir.exists() {
            let s = newest();
            if s != seg {
                seg = s;
                size = len(&seg);
                continue;
            }
        }
        let now = len(&seg);
        if now > size && size.is_some() {
            return true;
        }
        size = now;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The check.

/// What a check found.
#[derive(Debug)]
struct Checked {
    last: u64,
    status: Status,
    /// The snapshot's `through_seq` (0: no snapshot).
    through: u64,
    events: Vec<(u64, Arc<Event>)>,
}

/// Reads the chain's journal without changing it and checks I1 and I3 against the model:
/// `acked` is the highest `durable_through` the last writer printed. On success the model
/// keeps only the lines recovered.
fn check(chain: &mut Chain, acked: u64) -> Result<Checked, String> {
    let checked = check_journal(chain, acked)?;
    let keep = usize::try_from(checked.last.saturating_sub(1)).unwrap();
    chain.fed.truncate(keep);
    chain.last = checked.last;
    Ok(checked)
}

fn check_journal(chain: &Chain, acked: u64) -> Result<Checked, String> {
    let ro = match Journal::open_read_only(&chain.dir, &Options::default()) {
        Ok(ro) => ro,
        Err(turnwal::Error::Journal(turnwal_journal::Error::NotAJournal { reason, .. })) => {
            // Killed before the first segment was renamed into place: nothing was appended.
            if chain.last > 0 || acked > 0 {
                return Err(format!(
                    "no journal ({reason}), but {} events were recovered before and \
                     durable_through {acked} was printed",
                    chain.last
                ));
            }
            return Ok(Checked {
                last: 0,
                status: Status::Clean,
                through: 0,
                events: Vec::new(),
            });
        }
        Err(e) => return Err(format!("open_read_only failed: {e}")),
    };
    let report = &ro.report;
    if !matches!(report.status, Status::Clean | Status::TornTail) {
        return Err(format!(
            "status {:?} ({}): {:?}",
            report.status, report.case, report.problems
        ));
    }
    let last = report.last_seq;
    // I1: every acknowledged event is recovered; so is every event recovered before.
    if last < acked {
        return Err(format!(
            "ACKNOWLEDGED EVENTS LOST: durable_through {acked} was printed, recovered through \
             seq {last}"
        ));
    }
    if last < chain.last {
        return Err(format!(
            "RECOVERED EVENTS LOST: seq {} was recovered before, now only through {last}",
            chain.last
        ));
    }
    let through = report.snapshot.as_ref().map_or(0, |s| s.through_seq);
    let events = &ro.events;
    // I3: seqs strictly increase; after the snapshot they are contiguous up to `last`.
    let mut prev = 0;
    for (seq, _) in events {
        if *seq <= prev {
            return Err(format!("seq {seq} after seq {prev}"));
        }
        prev = *seq;
    }
    let log: Vec<u64> = events
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s > through)
        .collect();
    for (k, seq) in log.iter().enumerate() {
        if *seq != through + 1 + k as u64 {
            return Err(format!(
                "gap: expected seq {} after the snapshot through {through}, found {seq}",
                through + 1 + k as u64
            ));
        }
    }
    if log.last().copied().unwrap_or(through) != last {
        return Err(format!(
            "the report says last seq {last}, the events after the snapshot through {through} \
             end at {:?}",
            log.last()
        ));
    }
    // Nothing invented; every body JSON-equal to the line fed with that seq.
    let fed_at = |seq: u64| -> Option<&Fed> { chain.fed.get(usize::try_from(seq).ok()? - 2) };
    let last_meta = chain
        .fed
        .iter()
        .take(usize::try_from(through.saturating_sub(1)).unwrap())
        .rposition(|f| f.kind() == "meta")
        .map(|k| k as u64 + 2);
    for (seq, e) in events {
        if *seq == 1 {
            if e.kind.name() != "session" {
                return Err(format!(
                    "seq 1 is a {} event, not the session",
                    e.kind.name()
                ));
            }
            continue;
        }
        let Some(fed) = fed_at(*seq) else {
            return Err(format!(
                "INVENTED: seq {seq} recovered, only {} lines were fed",
                chain.fed.len()
            ));
        };
        let x = if *seq <= through && fed.kind() == "meta" {
            // Behind a snapshot the meta events are one merged event at the last meta seq.
            if Some(*seq) != last_meta {
                return Err(format!(
                    "meta seq {seq} kept behind the snapshot (last meta seq {last_meta:?})"
                ));
            }
            merged_meta(chain, *seq)
        } else {
            fed.expected()
        };
        event_matches(e, &x).map_err(|why| format!("seq {seq}: {why}"))?;
    }
    // Behind a snapshot only superseded deltas and usage records may be missing.
    if through > 0 {
        let present: std::collections::HashSet<u64> = events.iter().map(|(s, _)| *s).collect();
        if !present.contains(&1) {
            return Err("the snapshot lost the session event".into());
        }
        for seq in 2..=through {
            let Some(fed) = fed_at(seq) else { break };
            let may_go = matches!(fed.kind(), "delta" | "usage")
                || (fed.kind() == "meta" && Some(seq) != last_meta);
            if !may_go && !present.contains(&seq) {
                return Err(format!(
                    "LOST behind the snapshot through {through}: the {} event at seq {seq}",
                    fed.kind()
                ));
            }
        }
    }
    Ok(Checked {
        last,
        status: report.status,
        through,
        events: ro.events.clone(),
    })
}

/// The merged meta event a snapshot keeps at `seq`, the last meta seq it covers: every meta
/// change fed up to there, later wins, `null` deletes.
fn merged_meta(chain: &Chain, seq: u64) -> Arc<Expected> {
    let mut meta = serde_json::Map::new();
    let mut turn = None;
    for fed in &chain.fed[..usize::try_from(seq - 1).unwrap()] {
        if fed.kind() != "meta" {
            continue;
        }
        let x = fed.expected();
        turn = x.turn;
        let body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&x.body).unwrap();
        for (k, v) in body {
            if v.is_null() {
                meta.remove(&k);
            } else {
                meta.insert(k, v);
            }
        }
    }
    Arc::new(Expected {
        kind: "meta".into(),
        turn,
        body: serde_json::Value::Object(meta).to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Counts of one test, printed at its end; violations fail it.
#[derive(Debug)]
struct Tally {
    test: &'static str,
    seed: u64,
    kills: u64,
    lost: u64,
    points: BTreeMap<String, u64>,
    notes: BTreeMap<&'static str, u64>,
    violations: Vec<String>,
}

impl Tally {
    fn new(test: &'static str) -> Tally {
        Tally {
            test,
            seed: seed(test),
            kills: 0,
            lost: 0,
            points: BTreeMap::new(),
            notes: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    /// An empty tally of the same test and seed, for a worker.
    fn fork(&self) -> Tally {
        Tally {
            test: self.test,
            seed: self.seed,
            kills: 0,
            lost: 0,
            points: BTreeMap::new(),
            notes: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    /// Adds a worker's counts.
    fn merge(&mut self, other: Tally) {
        self.kills += other.kills;
        self.lost += other.lost;
        for (k, v) in other.points {
            *self.points.entry(k).or_default() += v;
        }
        for (k, v) in other.notes {
            *self.notes.entry(k).or_default() += v;
        }
        self.violations.extend(other.violations);
    }

    fn note(&mut self, what: &'static str) {
        *self.notes.entry(what).or_default() += 1;
    }

    fn violation(&mut self, cycle: u64, what: &str, why: &str) {
        let v = format!("seed {:#018x}, cycle {cycle} ({what}): {why}", self.seed);
        eprintln!("kill9 {} VIOLATION: {v}", self.test);
        self.violations.push(v);
    }

    /// Records a kill and checks it; `Err` (already recorded) if the chain's state is unknown.
    fn after_kill(
        &mut self,
        cycle: u64,
        what: &str,
        chain: &mut Chain,
        run: &Run,
    ) -> Result<Checked, ()> {
        if let Some(line) = run.odd_output.first() {
            self.violation(cycle, what, &format!("unexpected output line {line:?}"));
        }
        if run.timed_out {
            self.violation(
                cycle,
                what,
                &format!(
                    "the writer stalled ({} acknowledgements, stderr: {})",
                    run.acks,
                    run.stderr.trim()
                ),
            );
        }
        if run.killed() {
            self.kills += 1;
        } else {
            self.violation(
                cycle,
                what,
                &format!(
                    "not killed by SIGKILL: {:?}, stderr: {}",
                    run.status,
                    run.stderr.trim()
                ),
            );
        }
        let before = chain.last;
        match check(chain, run.acked) {
            Ok(c) => {
                if c.status == Status::TornTail {
                    self.note("torn tails recovered");
                }
                if c.through > 0 {
                    self.note("checks behind a snapshot");
                }
                Ok(c)
            }
            Err(why) => {
                if let Ok(ro) = Journal::open_read_only(&chain.dir, &Options::default()) {
                    self.lost += run.acked.max(before).saturating_sub(ro.report.last_seq);
                }
                self.violation(cycle, what, &why);
                Err(())
            }
        }
    }

    /// Runs a writer that must end normally: appends `lines` more and checks that all of them
    /// (and everything before) come back.
    fn append_normally(
        &mut self,
        cycle: u64,
        what: &str,
        chain: &mut Chain,
        sync: &str,
        plan: FeedPlan,
    ) -> Result<Checked, ()> {
        let run = run_writer(chain, sync, &[], None, plan, End::Exit);
        if !run.status.success() || run.timed_out {
            self.violation(
                cycle,
                what,
                &format!(
                    "the next writer failed: {:?}, stderr: {}",
                    run.status,
                    run.stderr.trim()
                ),
            );
            return Err(());
        }
        let fed = chain.fed.len() as u64;
        match check(chain, run.acked) {
            Ok(c) if c.last == run.acked && c.last == fed + 1 && c.status == Status::Clean => Ok(c),
            Ok(c) => {
                self.violation(
                    cycle,
                    what,
                    &format!(
                        "after a normal writer: last seq {}, durable_through {}, {} lines \
                         fed in all, status {:?}",
                        c.last, run.acked, fed, c.status
                    ),
                );
                Err(())
            }
            Err(why) => {
                self.violation(cycle, &format!("{what}, then a normal writer"), &why);
                Err(())
            }
        }
    }

    fn finish(self) {
        // One print, so that the figures of tests running in parallel do not interleave.
        let mut text = format!(
            "kill9 {} (seed {:#018x}):\nkill9: {} kills, {} acknowledged events lost",
            self.test, self.seed, self.kills, self.lost
        );
        if !self.points.is_empty() {
            let points: Vec<String> = self
                .points
                .iter()
                .map(|(p, n)| format!("{p} {n}"))
                .collect();
            text += &format!("\nkill9: per point: {}", points.join(", "));
        }
        if !self.notes.is_empty() {
            let notes: Vec<String> = self.notes.iter().map(|(p, n)| format!("{p} {n}")).collect();
            text += &format!("\nkill9: {}", notes.join(", "));
        }
        println!("{text}");
        assert!(
            self.violations.is_empty() && self.lost == 0,
            "kill9 {}: {} violations, {} acknowledged events lost (replay with {SEED_ENV}={:#018x}):\n{}",
            self.test,
            self.violations.len(),
            self.lost,
            self.seed,
            self.violations.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Random kills.

/// SIGKILL `turnwal append` at random moments: after a random number of acknowledgements
/// and/or a random short delay, under every sync policy, with and without a compaction every 40
/// events, with realistic agent steps and now and then a 64 KiB-1 MiB message (so that kills
/// land mid-write). Directories are reused for up to 40 writers, then a fresh one starts.
/// Two workers, each with its own directories, kill in parallel (most of a cycle is waiting).
#[test]
fn random_kills_lose_no_acknowledged_event() {
    let mut tally = Tally::new("random_kills_lose_no_acknowledged_event");
    let mut rng = SplitMix64(tally.seed);
    let target = RANDOM_KILLS * scale();
    let tmp = tempfile::tempdir().unwrap();
    let workers: Vec<(u64, SplitMix64, Tally)> = (0..RANDOM_WORKERS)
        .map(|w| {
            let share = target / RANDOM_WORKERS + u64::from(w < target % RANDOM_WORKERS);
            (share, rng.fork(), tally.fork())
        })
        .collect();
    let done: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(w, (share, rng, mut t))| {
                let dir = tmp.path().join(format!("w{w}"));
                s.spawn(move || {
                    random_kills(&mut t, w, rng, share, &dir);
                    t
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for t in done {
        tally.merge(t);
    }
    tally.finish();
}

/// Parallel workers of the random kills.
const RANDOM_WORKERS: u64 = 2;

/// One worker of [`random_kills_lose_no_acknowledged_event`]: `target` kills in `tmp`.
fn random_kills(tally: &mut Tally, worker: usize, mut rng: SplitMix64, target: u64, tmp: &Path) {
    std::fs::create_dir_all(tmp).unwrap();
    let mut chain: Option<(Chain, u64)> = None;
    let mut chains = 0;
    let mut cycle = 0;
    while tally.kills < target && cycle < target * 2 {
        cycle += 1;
        let (c, chain_len) = chain.get_or_insert_with(|| {
            chains += 1;
            let len = [1, 5, 20, 40][rng.below(4) as usize];
            (Chain::new(tmp.join(format!("c{chains}"))), len)
        });
        let sync = ["always", "batch", "never"][(cycle % 3) as usize];
        let compact = (cycle / 3) % 2 == 1;
        let extra: &[&str] = if compact {
            &["--compact-records", "40"]
        } else {
            &[]
        };
        let mut plan = FeedPlan::steps(rng.fork(), usize::MAX);
        plan.big_one_in = [0, 20, 4, 1][rng.below(4) as usize];
        // `never` without compaction prints nothing until the end: kill it blind.
        let acks = match (sync, compact) {
            ("never", false) => 0,
            // Acknowledged only by the compactions' syncs: a few.
            ("never", true) => rng.below(3),
            _ => rng.below(7),
        };
        let delay = Duration::from_micros(match rng.below(8) {
            0 => 0,
            1..=3 => rng.below(2_000),
            4..=6 => rng.below(15_000),
            _ => rng.below(60_000),
        });
        // With large messages, one kill in three waits for a large write to be in progress.
        let mid_write = plan.big_one_in > 0 && rng.below(3) == 0;
        let what = format!(
            "worker {worker}: {} writer {} (seq {} recovered), --sync {sync}{}, a large message \
             before 1 step in {}, kill after {acks} acks + {delay:?}{}",
            c.dir.file_name().unwrap().to_string_lossy(),
            c.runs + 1,
            c.last,
            if compact { " --compact-records 40" } else { "" },
            plan.big_one_in,
            if mid_write { " + mid-write" } else { "" },
        );
        let end = End::Kill {
            acks,
            delay,
            mid_write,
        };
        let run = run_writer(c, sync, extra, None, plan, end);
        if run.mid_write {
            tally.note("kills mid-write");
        }
        tally.note(match sync {
            "always" => "kills under always",
            "batch" => "kills under batch",
            _ => "kills under never",
        });
        if compact {
            tally.note("kills with --compact-records 40");
        }
        if run.acks == 0 {
            tally.note("kills before any acknowledgement");
        }
        let ok = tally.after_kill(cycle, &what, c, &run).is_ok();
        // Start afresh after a violation (the model is no longer known), at the chain's end,
        // or once it is large (every writer and every check reads all of it).
        if !ok || c.runs >= *chain_len || c.bytes() > 2 << 20 {
            let _ = std::fs::remove_dir_all(&c.dir);
            chain = None;
        }
    }
    tally.notes.insert("directories", chains);
}

// ---------------------------------------------------------------------------------------------
// Named kill points.

/// What a named kill-point run must recover exactly, beyond I1 and I3.
#[derive(Debug, Clone, Copy)]
enum Exact {
    /// Nothing more is known.
    None,
    /// The last seq recovered is this many past the one recovered before the run.
    Past(u64),
    /// Every line fed is recovered.
    AllFed,
}

/// One named kill-point run.
#[derive(Debug, Clone)]
struct PointRun {
    point: String,
    sync: &'static str,
    compact: bool,
    lines: usize,
    exact: Exact,
    /// The acknowledgements printed stay below the last seq (the kill came before the
    /// watermark covering it advanced).
    unacked_last: bool,
}

fn point_run(point: impl Into<String>, sync: &'static str, compact: bool) -> PointRun {
    PointRun {
        point: point.into(),
        sync,
        compact,
        lines: 400,
        exact: Exact::None,
        unacked_last: false,
    }
}

/// Runs `p` on the chain: the writer must die by SIGKILL at the point; then I1/I3, the exact
/// expectation, and a normal writer appending more.
fn kill_at_point(
    tally: &mut Tally,
    cycle: u64,
    chain: &mut Chain,
    p: &PointRun,
    rng: &mut SplitMix64,
) {
    let what = format!(
        "{} writer {} (seq {} recovered), TURNWAL_KILL_AT={} --sync {}{}",
        chain.dir.file_name().unwrap().to_string_lossy(),
        chain.runs + 1,
        chain.last,
        p.point,
        p.sync,
        if p.compact {
            " --compact-records 40"
        } else {
            ""
        }
    );
    let extra: &[&str] = if p.compact {
        &["--compact-records", "40"]
    } else {
        &[]
    };
    let before = chain.last;
    let mut plan = FeedPlan::steps(rng.fork(), p.lines);
    plan.big_one_in = 10;
    plan.big_bytes = (64 << 10, 256 << 10);
    let run = run_writer(chain, p.sync, extra, Some(&p.point), plan, End::Exit);
    let fed_now = chain.fed.len() as u64;
    *tally
        .points
        .entry(p.point.split('@').next().unwrap().to_string())
        .or_default() += 1;
    let Ok(c) = tally.after_kill(cycle, &what, chain, &run) else {
        return;
    };
    let expected_last = match p.exact {
        Exact::None => None,
        Exact::Past(n) => Some(before + n),
        Exact::AllFed => Some(fed_now + 1),
    };
    if let Some(x) = expected_last
        && c.last != x
    {
        tally.violation(
            cycle,
            &what,
            &format!("recovered through seq {}, expected exactly {x}", c.last),
        );
    }
    if p.unacked_last && run.acked >= c.last && c.last > 0 {
        tally.violation(
            cycle,
            &what,
            &format!(
                "durable_through {} printed, but the kill came before seq {} was durable",
                run.acked, c.last
            ),
        );
    }
    let more = FeedPlan::steps(rng.fork(), 30);
    let _ = tally.append_normally(cycle, &what, chain, "batch", more);
}

/// A real SIGKILL at each step of an append, a group commit, a compaction's rotation and a
/// segment's creation, and of a background compaction (`TURNWAL_KILL_AT`, with `@n` variants),
/// in fresh directories and in one directory per round reused by the other runs; after each,
/// I1/I3, what the step fixes exactly (e.g. `append:written@n`: exactly n more events), and a
/// normal writer appending more.
#[test]
fn kill_points_of_append_commit_and_rotation() {
    let mut tally = Tally::new("kill_points_of_append_commit_and_rotation");
    let mut rng = SplitMix64(tally.seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut cycle = 0;
    let mut fresh_n = 0;
    let mut reused_runs = 0;
    for round in 0..scale() {
        // One directory reused by every run of the round that is not in a fresh one.
        let mut reused = Chain::new(tmp.path().join(format!("reused{round}")));
        let n = 2 + round % 10 + rng.below(6); // the `@n` of this round
        let mut runs: Vec<(bool, PointRun)> = Vec::new();
        // An append: the frame is in the kernel when the writer dies, so it is recovered.
        for (fresh, sync, at) in [
            (true, "always", 1),
            (true, "batch", n),
            (false, "never", 7),
            (false, "always", n),
        ] {
            let mut r = point_run(format!("append:written@{at}"), sync, false);
            r.exact = Exact::Past(at);
            runs.push((fresh, r));
        }
        // A group commit under `always`: one sync per append (the first is the session
        // event's, in a fresh journal); the event is written but its watermark never printed.
        for point in ["commit:before-sync", "commit:after-sync"] {
            for (fresh, at) in [(true, 1), (true, n), (false, 3)] {
                let mut r = point_run(format!("{point}@{at}"), "always", false);
                r.exact = Exact::Past(at);
                r.unacked_last = true;
                runs.push((fresh, r));
            }
            // Under `batch` the number of syncs depends on timing (a fast release build may
            // take the whole input in one background sync plus the final one): only the first
            // sync is sure to happen.
            runs.push((false, point_run(format!("{point}@1"), "batch", false)));
            // Under `never` the only sync is the last one, at the end of the input (after the
            // session event's, in a fresh journal): everything fed is in the kernel.
            for fresh in [true, false] {
                let at = if fresh { 2 } else { 1 };
                let mut r = point_run(format!("{point}@{at}"), "never", false);
                r.lines = 60;
                r.exact = Exact::AllFed;
                r.unacked_last = true;
                runs.push((fresh, r));
            }
        }
        // Rotations of a compaction every 40 events (rotation by size: see the next test). A
        // later compaction must start before the input ends: those runs sync every append.
        let m = 1 + rng.below(2);
        for (fresh, point, sync) in [
            (true, "rotate:sealed".to_string(), "batch"),
            (false, format!("rotate:sealed@{m}"), "always"),
            (true, "rotate:created".to_string(), "never"),
            (false, format!("rotate:created@{m}"), "always"),
            // In a fresh directory the first segment is created before anything is written.
            (true, "segment:tmp-synced".to_string(), "batch"),
            (true, format!("segment:tmp-synced@{}", m + 1), "always"),
            (false, format!("segment:tmp-synced@{m}"), "always"),
            (false, "segment:tmp-synced".to_string(), "never"),
        ] {
            let mut r = point_run(point, sync, true);
            r.lines = 10_000;
            runs.push((fresh, r));
        }
        // Every compaction step, in the background of a writer.
        for (k, point) in killpoint::POINTS
            .iter()
            .filter(|p| p.starts_with("compact:"))
            .enumerate()
        {
            let sync = ["always", "batch", "never"][k % 3];
            let mut r = point_run(*point, sync, true);
            r.lines = 3000;
            runs.push((k % 2 == 0, r));
        }
        for (fresh, r) in runs {
            cycle += 1;
            if fresh {
                fresh_n += 1;
                let mut chain = Chain::new(tmp.path().join(format!("f{fresh_n}")));
                kill_at_point(&mut tally, cycle, &mut chain, &r, &mut rng);
                if r.point == "segment:tmp-synced" && !files_with_ext(&chain.dir, ".tmp").is_empty()
                {
                    tally.violation(cycle, &r.point, "the next writer left the .tmp file");
                }
                let _ = std::fs::remove_dir_all(&chain.dir);
            } else {
                kill_at_point(&mut tally, cycle, &mut reused, &r, &mut rng);
            }
        }
        reused_runs += reused.runs;
        let _ = std::fs::remove_dir_all(&reused.dir);
    }
    tally
        .notes
        .insert("writers in reused directories", reused_runs);
    tally.finish();
}

/// A real SIGKILL at each step of a rotation forced by size (the default segment is 64 MiB: a
/// journal of 61 events of 1 MiB is built once, copied for each run, then fed 1 MiB events).
#[test]
fn kill_points_of_rotation_by_size() {
    let mut tally = Tally::new("kill_points_of_rotation_by_size");
    let mut rng = SplitMix64(tally.seed);
    let tmp = tempfile::tempdir().unwrap();
    let mib = 1 << 20;
    let big = |rng: &mut SplitMix64, lines: usize| FeedPlan {
        rng: rng.fork(),
        steps: false,
        big_one_in: 1,
        big_bytes: (mib, mib),
        max_lines: lines,
    };
    let mut base = Chain::new(tmp.path().join("base"));
    let run = run_writer(&mut base, "never", &[], None, big(&mut rng, 61), End::Exit);
    assert!(run.status.success(), "{}", run.stderr);
    check(&mut base, run.acked).unwrap();
    assert_eq!(base.last, 62);
    let segments = files_with_ext(&base.dir, ".twl");
    assert_eq!(segments.len(), 1, "{segments:?}");
    let mut cycle = 0;
    for round in 0..scale() {
        for (point, sync) in [
            ("rotate:sealed", "batch"),
            ("rotate:created", "always"),
            ("segment:tmp-synced", "never"),
        ] {
            cycle += 1;
            let what = format!("round {round}, TURNWAL_KILL_AT={point} --sync {sync}");
            let mut chain = base.copy_to(tmp.path().join(format!("r{cycle}")));
            let run = run_writer(
                &mut chain,
                sync,
                &[],
                Some(point),
                big(&mut rng, 4),
                End::Exit,
            );
            *tally.points.entry(point.to_string()).or_default() += 1;
            if tally.after_kill(cycle, &what, &mut chain, &run).is_err() {
                continue;
            }
            let (twl, tmpf) = (
                files_with_ext(&chain.dir, ".twl").len(),
                files_with_ext(&chain.dir, ".tmp").len(),
            );
            let expected = match point {
                "rotate:sealed" => (1, 0),
                "rotate:created" => (2, 0),
                _ => (1, 1),
            };
            if (twl, tmpf) != expected {
                tally.violation(
                    cycle,
                    &what,
                    &format!("{twl} segments and {tmpf} tmp files left, expected {expected:?}"),
                );
            }
            if chain.last <= base.last {
                tally.violation(cycle, &what, "killed before any new event was written");
            }
            // A normal writer goes on, rotating if it has not been done.
            if tally
                .append_normally(cycle, &what, &mut chain, sync, big(&mut rng, 3))
                .is_ok()
                && (files_with_ext(&chain.dir, ".twl").len() != 2
                    || !files_with_ext(&chain.dir, ".tmp").is_empty())
            {
                tally.violation(
                    cycle,
                    &what,
                    "after the next writer: not two segments and no tmp",
                );
            }
            let _ = std::fs::remove_dir_all(&chain.dir);
        }
    }
    tally.finish();
}

/// Produces a torn tail in a fresh journal: appends, then cuts the last segment in the middle
/// of its last frame (a large message), as a kill mid-write of that frame leaves it.
fn torn_journal(chain: &mut Chain, rng: &mut SplitMix64, sync: &'static str) -> Checked {
    let run = run_writer(
        chain,
        sync,
        &[],
        None,
        FeedPlan::steps(rng.fork(), 40),
        End::Exit,
    );
    assert!(run.status.success(), "{}", run.stderr);
    check(chain, run.acked).unwrap();
    let end_before = last_valid_end(&chain.dir);
    let last_before = chain.last;
    let plan = FeedPlan {
        rng: rng.fork(),
        steps: false,
        big_one_in: 1,
        big_bytes: (256 << 10, 512 << 10),
        max_lines: 1,
    };
    let run = run_writer(chain, sync, &[], None, plan, End::Exit);
    assert!(run.status.success(), "{}", run.stderr);
    let end_after = last_valid_end(&chain.dir);
    assert!(end_after > end_before + (256 << 10));
    let segment = chain
        .dir
        .join(files_with_ext(&chain.dir, ".twl").pop().unwrap());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap();
    f.set_len(end_before + (end_after - end_before) / 2)
        .unwrap();
    drop(f);
    // The cut frame was appended by hand, not acknowledged by a kill: forget it.
    let torn = check(chain, 0).unwrap();
    assert_eq!(torn.status, Status::TornTail, "a torn tail was made");
    assert_eq!(torn.last, last_before);
    torn
}

fn last_valid_end(dir: &Path) -> u64 {
    let ro = Journal::open_read_only(dir, &Options::default()).unwrap();
    ro.report.segment_reports.last().unwrap().valid_end
}

/// I5: a real SIGKILL while a writer's open cuts a torn tail (after the quarantine, after the
/// truncation) leaves the same recovered prefix, and the next writer recovers it again.
#[test]
fn kill_points_of_recovery_are_idempotent() {
    let mut tally = Tally::new("kill_points_of_recovery_are_idempotent");
    let mut rng = SplitMix64(tally.seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut cycle = 0;
    for round in 0..scale() {
        for (k, kills) in [
            &["recover:quarantined", "recover:truncated"][..],
            &["recover:truncated"],
            &["recover:quarantined", "recover:quarantined"],
        ]
        .iter()
        .enumerate()
        {
            cycle += 1;
            let sync = ["always", "batch", "never"][(k + round as usize) % 3];
            let mut chain = Chain::new(tmp.path().join(format!("t{cycle}")));
            let torn = torn_journal(&mut chain, &mut rng, sync);
            for point in kills.iter() {
                let what = format!("TURNWAL_KILL_AT={point} --sync {sync} of {kills:?}");
                let plan = FeedPlan::steps(rng.fork(), 20);
                let run = run_writer(&mut chain, sync, &[], Some(point), plan, End::Exit);
                *tally.points.entry(point.to_string()).or_default() += 1;
                let Ok(c) = tally.after_kill(cycle, &what, &mut chain, &run) else {
                    break;
                };
                // The same prefix, event for event.
                let same = c.events.len() == torn.events.len()
                    && c.events
                        .iter()
                        .zip(&torn.events)
                        .all(|((s, e), (t, f))| s == t && e == f);
                if !same {
                    tally.violation(
                        cycle,
                        &what,
                        &format!(
                            "recovered a different prefix: {} events through {}, before {} \
                             through {}",
                            c.events.len(),
                            c.last,
                            torn.events.len(),
                            torn.last
                        ),
                    );
                }
                let expected = if *point == "recover:truncated" {
                    Status::Clean
                } else {
                    Status::TornTail
                };
                if c.status != expected {
                    tally.violation(
                        cycle,
                        &what,
                        &format!("status {:?}, expected {expected:?}", c.status),
                    );
                }
                if files_with_ext(&chain.dir, ".bin").is_empty() {
                    tally.violation(cycle, &what, "no quarantine file");
                }
            }
            let what = format!("--sync {sync}, after {kills:?}");
            let plan = FeedPlan::steps(rng.fork(), 20);
            let _ = tally.append_normally(cycle, &what, &mut chain, sync, plan);
            let _ = std::fs::remove_dir_all(&chain.dir);
        }
    }
    tally.finish();
}
