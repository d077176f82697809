//! Side-by-side comparison of turnwal with what users would pick instead (`okaywal`, SQLite,
//! a naive JSONL file, an atomic whole-file rewrite) and with the disk's own ceiling.
//!
//! ```text
//! cargo bench --bench compare -- [--rounds N] [--quick] [--json PATH] [--only CASE] [--dir DIR]
//! ```
//!
//! Prints a Markdown table per case and a table of the project's targets, and writes every
//! figure as JSON (default `target/compare.json`). `--quick` shrinks every size for a smoke run
//! (well under a minute); `--only` (repeatable, substring match) picks cases; `--dir` puts the
//! scratch directories elsewhere (default `target/compare-scratch`: the file system matters,
//! and the output names it). Run by `cargo test --benches` (no `--bench` argument), it does a
//! tiny smoke run of every case and writes no JSON.
//!
//! # Why the comparison is fair
//!
//! - **Same bytes.** A fixed, seeded workload (`workload.rs`) is generated before any clock
//!   starts, and every system receives the same envelope JSON lines. turnwal ingests them
//!   through `Journal::append_json`, which parses and validates each envelope and indexes what
//!   replay needs: that is its real cost at its API, and it is paid inside the timed region.
//!   The peers store the line text as given, without parsing it.
//! - **Same durability meaning.** Where a case says "durable", every system returns from an
//!   append only after an fsync/fdatasync covers it: turnwal `SyncPolicy::Always`, okaywal's
//!   `commit`, SQLite `synchronous=FULL` in WAL mode, `fsync` after each JSONL line. SQLite
//!   `synchronous=NORMAL` is listed where useful and labelled *not durable per commit* (it
//!   syncs the WAL only at checkpoints; a power cut loses recent commits).
//! - **Same conditions.** Each round runs every system of a case once, the order rotated every
//!   round, each in a fresh directory on the same file system; setup (opening, pre-writing,
//!   building a session) and teardown (closing, removal) are outside the clock. Figures are
//!   medians over rounds with the min–max spread; the host is noisy, so read ratios within one
//!   run rather than absolute numbers across runs.
//!
//! # The cases
//!
//! 1. `durable_1_writer`: one thread, each append durable before it returns, against the
//!    hardware ceiling: the same records `pwrite`n into a file pre-written with zeros and
//!    fsynced before timing, one `fdatasync` each (no file-size update, no framing, no
//!    parsing: the ceiling of the project's anchors; a measured ceiling, not a proven bound, so
//!    a peer can land slightly above it on a given VM). Also okaywal (an entry + commit per append), SQLite WAL FULL and
//!    NORMAL (an autocommit INSERT per event into `events(session, seq, line)`), naive JSONL.
//! 2. `durable_4_threads`, `durable_16_threads`: threads sharing one turnwal journal (`Always`,
//!    concurrent appenders share an fdatasync) against threads sharing one okaywal log (which
//!    group-commits too); aggregate ops/s and per-op latency.
//! 3. `sessions_64`: 64 sessions in one process, a thread each: a turnwal journal directory per
//!    session against one SQLite database (WAL, FULL) holding the 64 sessions, a connection per
//!    thread, `busy_timeout` high: the layout SQLite users pick for many sessions. SQLite's busy
//!    handler sleeps between retries (1 ms up to 100 ms), which makes that layout very slow, so
//!    the same database behind one shared connection and a mutex runs too, and the target is
//!    taken against whichever SQLite layout is faster.
//! 4. `batch_stream`: one session streaming mostly small deltas as fast as it can: turnwal
//!    `Batch` (5 ms default; background sync; a final `sync()` is timed) against SQLite WAL
//!    NORMAL, autocommit per event (SQLite's own "sync later" setting).
//! 5. `replay_200k`: a session of 200,000 messages plus usage events, built once (untimed) in
//!    each format, read warm (one untimed read first): turnwal `open_read_only` (scan, CRC,
//!    materialised session) against JSONL + serde_json (read the file, parse every line into a
//!    `serde_json::Value`, collect) and SQLite (`SELECT line`, parse each the same way).
//! 6. `open_snapshot_200k`: the same session after `compact()` (one JSONL snapshot), opened
//!    read-only, against the same JSONL + serde_json baseline.
//! 7. `append_flat`: durable append latency (p50) into a session already holding 100 against
//!    100,000 messages (built with `Never`, reopened with `Always`, no compaction in the
//!    window), and the atomic whole-file rewrite (tmp, fsync, rename, directory fsync) at 100
//!    and 5,000 messages, whose cost grows with the session.
//! 8. `replay_memory`: peak heap during `open_read_only` of the 200k session (a counting
//!    global allocator, `compare/alloc.rs`) and peak RSS growth (`VmHWM` after resetting it
//!    through `/proc/self/clear_refs`, after `malloc_trim` so that free heap left by earlier
//!    cases is not reused unseen), each divided by the payload (the sum of the envelope lines'
//!    lengths); the notes split the RSS growth into anonymous and file-backed (mapped segment)
//!    pages. The target is on the heap figure. The JSONL + serde_json read for contrast.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

#[path = "compare/alloc.rs"]
mod alloc;
#[path = "compare/cases.rs"]
mod cases;
#[path = "compare/reads.rs"]
mod reads;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/systems.rs"]
mod systems;
#[path = "compare/workload.rs"]
mod workload;

use cases::{Ctx, FLAT_SMALL, REWRITE, Sizes, flat_name};
use reads::Fixture;
use report::{CaseResult, Target};
use systems::*;

/// Errors end the run with a message; a bench has no one to recover for.
type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Every case, in run and print order.
const CASES: [&str; 9] = [
    "durable_1_writer",
    "durable_4_threads",
    "durable_16_threads",
    "sessions_64",
    "batch_stream",
    "replay_200k",
    "open_snapshot_200k",
    "append_flat",
    "replay_memory",
];

const USAGE: &str = "usage: cargo bench --bench compare -- [--rounds N] [--quick] [--json PATH] \
                     [--only CASE]... [--dir SCRATCH_DIR]";

struct Args {
    rounds: Option<usize>,
    quick: bool,
    /// Run by `cargo test` (no `--bench`): a tiny smoke run, no JSON.
    smoke: bool,
    json: Option<PathBuf>,
    only: Vec<String>,
    dir: Option<PathBuf>,
}

fn parse_args() -> Res<Args> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let bench = raw.iter().any(|a| a == "--bench");
    let mut args = Args {
        rounds: None,
        quick: false,
        smoke: false,
        json: None,
        only: Vec::new(),
        dir: None,
    };
    let mut it = raw.into_iter();
    let mut own_flags = false;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--bench" => {}
            "--quick" => args.quick = true,
            "--rounds" => {
                let n: usize = value("--rounds")?.parse()?;
                args.rounds = Some(n.max(1));
            }
            "--json" => args.json = Some(value("--json")?.into()),
            "--dir" => args.dir = Some(value("--dir")?.into()),
            "--only" => args.only.push(value("--only")?),
            "-h" | "--help" => {
                println!("{USAGE}\ncases: {}", CASES.join(", "));
                std::process::exit(0);
            }
            // Under `cargo test` the harness flags (`--nocapture`, filters) are not ours.
            _ if !bench => continue,
            other if other.starts_with('-') => {
                return Err(format!("unknown flag {other}\n{USAGE}").into());
            }
            filter => args.only.push(filter.to_owned()),
        }
        own_flags = true;
    }
    args.smoke = !bench && !own_flags;
    for f in &args.only {
        if !CASES.iter().any(|c| c.contains(f.as_str())) {
            return Err(format!("--only {f}: no such case (cases: {})", CASES.join(", ")).into());
        }
    }
    Ok(args)
}

/// The cargo target directory: the bench binary lives in `<target>/<profile>/deps/`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|t| t.is_dir())
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// "ext4 (/dev/vda on /)": the mount holding `dir`, from /proc/mounts.
fn filesystem(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "unknown (no /proc/mounts)".to_owned();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (device, point, fstype) = (f.first()?, f.get(1)?.replace("\\040", " "), f.get(2)?);
            dir.starts_with(&point)
                .then(|| (point.len(), format!("{fstype} ({device} on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_owned(), |(_, fs)| fs)
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let (sizes, mode) = if args.smoke {
        (Sizes::SMOKE, "smoke (cargo test)")
    } else if args.quick {
        (Sizes::QUICK, "quick")
    } else {
        (Sizes::FULL, "full")
    };
    let target = target_dir();
    let scratch = args
        .dir
        .clone()
        .unwrap_or_else(|| target.join("compare-scratch"));
    std::fs::create_dir_all(&scratch)?;
    let ctx = Ctx {
        rounds: args.rounds.unwrap_or(if args.smoke { 1 } else { 5 }),
        sizes,
        scratch: scratch.clone(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = first_line("/proc/sys/kernel/osrelease");
    let fs = filesystem(&scratch);
    let cpu = cpu_model();
    println!("# turnwal: side-by-side comparison with peers\n");
    println!("- machine: {cores} cores ({cpu}), kernel {kernel}");
    println!("- scratch directories on: {fs}");
    println!("- mode: {mode}, {} rounds; medians over rounds", ctx.rounds);
    println!(
        "- every system receives the same pre-generated envelope JSON lines; turnwal ingests \
         them with `append_json`, which parses and validates each envelope (its real cost, \
         timed); peers store the line text"
    );
    println!(
        "- each round runs every system of a case once, order rotated, each in a fresh \
         directory; setup and teardown untimed"
    );

    let selected: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|c| args.only.is_empty() || args.only.iter().any(|f| c.contains(f.as_str())))
        .collect();
    let started = Instant::now();
    let mut fixture: Option<Fixture> = None;
    let mut results: Vec<CaseResult> = Vec::new();
    for name in selected {
        eprintln!("{name} ...");
        let case_started = Instant::now();
        cases::settle();
        let needs_fixture = matches!(name, "replay_200k" | "open_snapshot_200k" | "replay_memory");
        if needs_fixture && fixture.is_none() {
            fixture = Some(Fixture::build(&ctx)?);
        }
        let result = match (name, fixture.as_mut()) {
            ("durable_1_writer", _) => cases::durable_1_writer(&ctx)?,
            ("durable_4_threads", _) => cases::durable_threads(&ctx, 4)?,
            ("durable_16_threads", _) => cases::durable_threads(&ctx, 16)?,
            ("sessions_64", _) => cases::sessions_64(&ctx)?,
            ("batch_stream", _) => cases::batch_stream(&ctx)?,
            ("replay_200k", Some(fx)) => reads::replay(&ctx, fx)?,
            ("open_snapshot_200k", Some(fx)) => reads::open_snapshot(&ctx, fx)?,
            ("append_flat", _) => cases::append_flat(&ctx)?,
            ("replay_memory", Some(fx)) => reads::replay_memory(&ctx, fx)?,
            _ => return Err(format!("case {name} has no runner").into()),
        };
        result.print();
        eprintln!(
            "{name} done in {:.1} s",
            case_started.elapsed().as_secs_f64()
        );
        results.push(result);
    }
    drop(fixture);

    let total = started.elapsed().as_secs_f64();
    if args.smoke {
        println!(
            "\nsmoke run under `cargo test` ({total:.0} s): every case ran once at tiny sizes, \
             unoptimised; these figures are not measurements and no target is evaluated. Run \
             `cargo bench --bench compare` for those."
        );
        return Ok(());
    }
    let targets = targets(&results, &ctx.sizes);
    report::print_targets(&targets, args.quick);
    println!("\nran in {total:.0} s");

    let json_path = args.json.unwrap_or_else(|| target.join("compare.json"));
    let doc = json!({
        "machine": {"cores": cores, "cpu": cpu, "kernel": kernel, "filesystem": fs},
        "mode": mode,
        "rounds": ctx.rounds,
        "seconds": total,
        "entries": results.iter().flat_map(CaseResult::json).collect::<Vec<_>>(),
        "targets": targets.iter().map(Target::json).collect::<Vec<_>>(),
    });
    if let Some(parent) = json_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")?;
    let shown = json_path.canonicalize().unwrap_or(json_path);
    println!("JSON written to {}", shown.display());
    Ok(())
}

/// The issue's targets, from whichever cases ran.
fn targets(results: &[CaseResult], sizes: &Sizes) -> Vec<Target> {
    let find = |case: &str| results.iter().find(|r| r.case == case);
    let median = |case: &str, system: &str| find(case)?.get(system).map(report::Entry::median);
    let ratio = |case: &str, a: &str, b: &str| Some(median(case, a)? / median(case, b)?);
    let fmt =
        |case: &str, system: &str| median(case, system).map_or("–".to_owned(), report::thousands);
    let vs = |case: &str, a: &str, b: &str, unit: &str| {
        format!("turnwal {} vs {} {unit}", fmt(case, a), fmt(case, b))
    };
    let at_least = |target: &str, ratio: Option<f64>, threshold: f64, detail: String| Target {
        target: target.to_owned(),
        ratio,
        threshold,
        at_least: true,
        detail,
    };

    let d1 = "durable_1_writer";
    // Two SQLite layouts hold the 64 sessions: a connection per thread (the busy handler sleeps
    // between retries) and one shared connection. The target is against the faster one.
    let sqlite_64 = [SQLITE_FULL, SQLITE_FULL_SHARED]
        .into_iter()
        .max_by(|a, b| {
            let m = |s| median("sessions_64", s).unwrap_or(0.0);
            m(a).total_cmp(&m(b))
        })
        .unwrap_or(SQLITE_FULL);
    let mut out = vec![
        at_least(
            "one writer, each append durable: ≥ 0.95 × raw ceiling",
            ratio(d1, TURNWAL_ALWAYS, RAW_CEILING),
            0.95,
            vs(d1, TURNWAL_ALWAYS, RAW_CEILING, "ops/s"),
        ),
        at_least(
            "one writer, each append durable: ≥ 1.0 × okaywal",
            ratio(d1, TURNWAL_ALWAYS, OKAYWAL),
            1.0,
            vs(d1, TURNWAL_ALWAYS, OKAYWAL, "ops/s"),
        ),
        at_least(
            "one writer, each append durable: ≥ 1.25 × SQLite FULL",
            ratio(d1, TURNWAL_ALWAYS, SQLITE_FULL),
            1.25,
            vs(d1, TURNWAL_ALWAYS, SQLITE_FULL, "ops/s"),
        ),
        at_least(
            "16 threads: ≥ 1.5 × okaywal at 16 threads",
            ratio("durable_16_threads", TURNWAL_ALWAYS, OKAYWAL),
            1.5,
            vs("durable_16_threads", TURNWAL_ALWAYS, OKAYWAL, "ops/s"),
        ),
        at_least(
            "64 sessions: aggregate ≥ 3 × SQLite FULL holding the same 64 sessions",
            ratio("sessions_64", TURNWAL_ALWAYS, sqlite_64),
            3.0,
            format!(
                "{} (the faster SQLite layout)",
                vs("sessions_64", TURNWAL_ALWAYS, sqlite_64, "ops/s")
            ),
        ),
        at_least(
            "batch_stream: ≥ 500,000 events/s",
            median("batch_stream", TURNWAL_BATCH).map(|m| m / 500_000.0),
            1.0,
            format!(
                "turnwal {} events/s (ratio to 500,000)",
                fmt("batch_stream", TURNWAL_BATCH)
            ),
        ),
        at_least(
            "batch_stream: ≥ 8 × SQLite NORMAL",
            ratio("batch_stream", TURNWAL_BATCH, SQLITE_NORMAL),
            8.0,
            vs("batch_stream", TURNWAL_BATCH, SQLITE_NORMAL, "events/s"),
        ),
        at_least(
            "replay 200k warm: ≥ 8 × JSONL + serde_json",
            ratio("replay_200k", TURNWAL_READ, JSONL_SERDE),
            8.0,
            vs("replay_200k", TURNWAL_READ, JSONL_SERDE, "messages/s"),
        ),
        at_least(
            "open from snapshot 200k: ≥ 2 × JSONL + serde_json",
            ratio("open_snapshot_200k", TURNWAL_READ, JSONL_SERDE),
            2.0,
            vs(
                "open_snapshot_200k",
                TURNWAL_READ,
                JSONL_SERDE,
                "messages/s",
            ),
        ),
    ];

    let (small, large) = (
        flat_name(TURNWAL_ALWAYS, FLAT_SMALL),
        flat_name(TURNWAL_ALWAYS, sizes.flat_large),
    );
    let p50 = |system: &str| find("append_flat")?.get(system)?.latency_us(0.5);
    let flat = p50(&large).zip(p50(&small));
    let (rw_small, rw_large) = (
        p50(&flat_name(REWRITE, FLAT_SMALL)),
        p50(&flat_name(REWRITE, sizes.rewrite_large)),
    );
    out.push(Target {
        target: format!(
            "append cost at {} vs {FLAT_SMALL} messages: ratio ≤ 1.1",
            report::thousands(sizes.flat_large as f64)
        ),
        ratio: flat.map(|(l, s)| l / s),
        threshold: 1.1,
        at_least: false,
        detail: match (flat, rw_small.zip(rw_large)) {
            (Some((l, s)), Some((rs, rl))) => format!(
                "p50 {s:.0} → {l:.0} µs; atomic rewrite {rs:.0} → {rl:.0} µs ({:.1}×) at \
                 {FLAT_SMALL} → {} messages",
                rl / rs,
                sizes.rewrite_large
            ),
            (Some((l, s)), None) => format!("p50 {s:.0} → {l:.0} µs"),
            _ => "–".to_owned(),
        },
    });

    let mem = find("replay_memory")
        .and_then(|r| r.get(TURNWAL_READ))
        .and_then(|e| e.memory.as_ref());
    out.push(Target {
        target: "replay peak memory: ≤ 1.5 × payload bytes".to_owned(),
        ratio: mem.map(report::Memory::heap_ratio),
        threshold: 1.5,
        at_least: false,
        detail: mem.map_or("–".to_owned(), |m| {
            format!(
                "peak heap {:.0} MB for {:.0} MB payload; peak RSS delta {}",
                m.peak_heap_bytes as f64 / 1e6,
                m.payload_bytes as f64 / 1e6,
                m.rss_ratio()
                    .map_or("n/a".to_owned(), |r| format!("{r:.2}× payload"))
            )
        }),
    });
    out
}
