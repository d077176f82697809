//! Tier 3 of the crash-injection harness (CRASH-TESTING.md): a real Linux kernel loses power.
//!
//! The story: an agent harness on a laptop pipes events into `turnwal append` and treats each
//! `{"durable_through": N}` as a promise; then the battery dies. Tiers 1 and 2 prove the engine
//! against a model of a disk and against a killed process whose page cache survives; neither
//! has ext4's delayed allocation, its journal, its rename and directory-entry ordering, or a
//! disk that reorders what it was not asked to flush. Here a Debian kernel under QEMU (software
//! emulation) runs the static `turnwal` on an ext4 virtio disk, and the plug is pulled.
//!
//! - **3a, kill loop.** One boot per cycle (`tests/vm/init.sh`): mount (ext4 replays its
//!   journal), report what the previous boot's journal now holds (`verify --json`,
//!   `export --raw`, written to a second disk), then feed a writer (`always` or `batch`, some
//!   with `--compact-records N`, events up to 1 MiB) whose acknowledgements stream to the
//!   host on ttyS1. The host SIGKILLs QEMU at a random moment: during the boot and recovery,
//!   after the n-th acknowledgement, after a random delay, or once the writer is done. The next
//!   boot's report is checked (I2, I3, I4: `vm/check.rs`) against every acknowledgement read
//!   before the kill. Why killing QEMU is a power cut: `vm/qemu.rs`.
//! - **3b, block-log replay.** Some boots record every block write and flush of their disk
//!   (QEMU's `blklogwrites`). Offline, every flush point, and random choices of the writes
//!   between two flushes with torn 512-byte sectors, are rebuilt on copies of the image the boot
//!   started from, recovered by `e2fsck -fy` and read by the host's `turnwal` (`vm/states.rs`,
//!   `vm/blocklog.rs`), each checked against the acknowledgements printed before that flush.
//!
//! Knobs: `TURNWAL_VM_CYCLES` (default 5) kill cycles, `TURNWAL_VM_STATES` (default 300) replayed
//! states at least, `TURNWAL_VM_SEED` replays a campaign's choices (the moment a kill lands stays
//! up to the emulator). It prints `vm-powercut: N cycles, M replayed states, V violations`. A
//! failing cycle or state is kept under `target/vm/failures/<name>/` (images, log, seed,
//! acknowledgements, `failure.json`) and `tests/vm/replay.sh <dir>` replays it.
//!
//! The packages it needs are installed by `tests/vm/build.sh` (run first); if that cannot be
//! done the test fails saying so. Builds take turns (a lock under `target/vm`) and each run boots
//! its own copy of what was built, so runs may overlap; QEMU is killed when a run fails or ends
//! (and a guest whose host vanished powers itself off after 20 minutes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a crash test: any failure must fail loudly, with the seed"
)]

#[path = "vm/blocklog.rs"]
mod blocklog;
#[path = "vm/check.rs"]
mod check;
#[path = "vm/feeder.rs"]
mod feeder;
#[path = "vm/qemu.rs"]
mod qemu;
#[path = "vm/states.rs"]
mod states;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use check::{Expected, Report};
use feeder::{Plan, Rng};
use qemu::{Boot, ConsoleLine, Env, Vm};

const CYCLES_ENV: &str = "TURNWAL_VM_CYCLES";
const STATES_ENV: &str = "TURNWAL_VM_STATES";
const SEED_ENV: &str = "TURNWAL_VM_SEED";
const REPLAY_ENV: &str = "TURNWAL_VM_REPLAY";
/// A chain (journal directory) is retired past this many bytes of events.
const CHAIN_BYTES_MAX: u64 = 6 << 20;
/// How long a boot may take to print its first line, and the guest to stay silent after.
const FIRST_LINE_LIMIT: Duration = Duration::from_secs(180);
const SILENCE_LIMIT: Duration = Duration::from_secs(120);

fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected an integer")),
        Err(_) => default,
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A plan as JSON, for `failure.json`.
pub(crate) fn plan_json(p: &Plan) -> serde_json::Value {
    serde_json::json!({"seed": p.seed, "big_one_in": p.big_one_in, "big_min": p.big_min,
                       "big_max": p.big_max})
}

/// The plan of a `failure.json`.
pub(crate) fn plan_from_json(v: &serde_json::Value) -> Option<Plan> {
    Some(Plan {
        seed: v["seed"].as_u64()?,
        big_one_in: v["big_one_in"].as_u64()?,
        big_min: v["big_min"].as_u64()?,
        big_max: v["big_max"].as_u64()?,
    })
}

/// A scratch directory (on tmpfs when there is one: every replayed state copies a 64 MiB
/// image), removed when the run ends, however it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            root().join("target/vm/scratch")
        };
        let dir = base.join(format!("turnwal-vm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The build (or a failure that says what is missing), copied into the run's scratch directory:
/// builds take turns (a lock under `target/vm`), and a later build, by another run or by CI,
/// never changes what this run boots. Runs may then overlap; they only share the CPU.
fn env(scratch: &Path) -> Env {
    let dir = root().join("target/vm");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = File::create(dir.join("lock")).unwrap();
    if lock.try_lock().is_err() {
        eprintln!("vm-powercut: another run is building (target/vm/lock); waiting for it");
        lock.lock().unwrap();
    }
    let built = Env::build(&root()).unwrap_or_else(|e| panic!("vm-powercut cannot run: {e}"));
    let own = |p: &Path, name: &str| {
        let to = scratch.join(name);
        std::fs::copy(p, &to).unwrap_or_else(|e| panic!("copying {}: {e}", p.display()));
        to
    };
    Env {
        kernel: own(&built.kernel, "vmlinuz"),
        initrd: own(&built.initrd, "initrd.gz"),
        base_img: own(&built.base_img, "base.img"),
        turnwal: own(&built.turnwal, "turnwal"),
        ..built
    }
}

// ---------------------------------------------------------------------------------------------
// The kill loop.

/// A journal directory (`/c<id>` on the guest's disk) and what is known of it.
struct Chain {
    id: u64,
    plan: Plan,
    exp: Expected,
    /// Highest seq that must be recovered: acknowledged, or recovered by an earlier check.
    floor: u64,
    boots: u64,
    max_boots: u64,
    broken: bool,
}

/// When the host pulls the plug.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the disk is mounted: during the report, or the writer's recovery.
    Early(Duration),
    /// This long after the n-th acknowledgement.
    Acks(u64, Duration),
    /// This long after the writer starts.
    Delay(Duration),
    /// This long after the writer is done (recorded boots: the whole run is in the log).
    Idle(Duration),
}

/// What a boot printed before its power cut.
#[derive(Debug, Default)]
struct Heard {
    lines: Vec<ConsoleLine>,
    /// `(durable_through, block log bytes when read)`.
    acks: Vec<(u64, Option<u64>)>,
    /// The last `TWL` step heard before the cut.
    phase: String,
    writer_exit: Option<String>,
    /// When the writer started, and when the plug was pulled.
    append_at: Option<Instant>,
    cut_at: Option<Instant>,
    odd: Vec<String>,
    trouble: Option<String>,
}

fn millis(rng: &mut Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.range(lo, hi))
}

/// Boots, listens, and cuts the power as `kill` says (at once if the guest is idle earlier).
fn boot_and_cut(env: &Env, boot: &Boot, kill: Kill, rng: &mut Rng) -> Heard {
    let vm = match Vm::start(env, boot) {
        Ok(vm) => vm,
        Err(e) => panic!("vm-powercut: {e}"),
    };
    let mut heard = Heard {
        phase: "before boot".into(),
        ..Heard::default()
    };
    let mut kill_at: Option<Instant> = None;
    let mut last_heard = vm.started;
    let mut first = true;
    loop {
        let limit = if first {
            FIRST_LINE_LIMIT
        } else {
            SILENCE_LIMIT
        };
        let silence = last_heard + limit;
        let deadline = kill_at.map_or(silence, |k| k.min(silence));
        match vm.next_line(deadline) {
            Ok(l) => {
                first = false;
                last_heard = l.at;
                let now = l.at;
                if let Some(step) = l.text.strip_prefix("TWL ") {
                    let word = step.split(' ').next().unwrap_or("").to_string();
                    match (word.as_str(), kill) {
                        ("mounted", Kill::Early(d)) => kill_at = Some(now + d),
                        ("append", k) => {
                            heard.append_at = Some(now);
                            if let Kill::Delay(d) = k {
                                kill_at = Some(now + d);
                            }
                        }
                        ("idle", k) => {
                            let d = match k {
                                Kill::Idle(d) => d,
                                _ => millis(rng, 0, 50),
                            };
                            kill_at = Some(kill_at.map_or(now + d, |t| t.min(now + d)));
                        }
                        ("exit", _) => heard.writer_exit = Some(step.to_string()),
                        ("mount-failed" | "no-disk" | "report-failed" | "insmod-failed", _) => {
                            heard.trouble = Some(step.to_string());
                            kill_at = Some(now);
                        }
                        _ => {}
                    }
                    heard.phase = word;
                } else if l.complete {
                    match serde_json::from_str::<serde_json::Value>(&l.text)
                        .ok()
                        .and_then(|v| v["durable_through"].as_u64())
                    {
                        Some(n) => {
                            heard.acks.push((n, l.log_len));
                            if let Kill::Acks(want, d) = kill
                                && heard.acks.len() as u64 == want
                            {
                                kill_at = Some(now + d);
                            }
                        }
                        None => heard.odd.push(l.text.clone()),
                    }
                }
                heard.lines.push(l);
            }
            Err(true) => {
                if kill_at.is_none_or(|k| Instant::now() < k) {
                    heard.trouble = Some(format!(
                        "the guest said nothing for {limit:?} (last step: {})",
                        heard.phase
                    ));
                }
                break;
            }
            Err(false) => {
                heard.trouble = Some(format!("QEMU exited by itself after {}", heard.phase));
                break;
            }
        }
        if kill_at.is_some_and(|k| Instant::now() >= k) {
            break;
        }
    }
    heard.cut_at = Some(Instant::now());
    for l in vm.power_cut() {
        // Printed before the cut, read after it: still acknowledged.
        if l.complete
            && let Some(n) = serde_json::from_str::<serde_json::Value>(&l.text)
                .ok()
                .and_then(|v| v["durable_through"].as_u64())
        {
            heard.acks.push((n, l.log_len));
        }
        heard.lines.push(l);
    }
    heard
}

/// Counts of a campaign; violations fail it.
#[derive(Debug, Default)]
struct Tally {
    cycles: u64,
    notes: BTreeMap<&'static str, u64>,
    violations: Vec<String>,
    replay: states::Outcome,
    recordings: u64,
}

impl Tally {
    fn note(&mut self, what: &'static str) {
        *self.notes.entry(what).or_default() += 1;
    }
}

/// Whether one more failure may be kept (at most 12 a run: each holds 64 MiB images).
pub(crate) fn may_keep() -> bool {
    static KEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    KEPT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 12
}

/// Keeps what replays a failing cycle: the image the check read, the report, the console.
fn keep_kill_failure(
    scratch: &Path,
    name: &str,
    chain: &Chain,
    why: &str,
    seed: u64,
    cycle: u64,
    report: Option<&Report>,
) {
    if !may_keep() {
        return;
    }
    let dir = root().join("target/vm/failures").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::copy(scratch.join("pre.img"), dir.join("disk.img"));
    let _ = std::fs::copy(scratch.join("ttyS0.log"), dir.join("ttyS0.log"));
    if let Some(r) = report {
        let text = format!(
            "verify exit {}\n{}\n{}\nexport exit {}\n{}\n{}",
            r.verify_rc, r.verify, r.verify_err, r.export_rc, r.export_err, r.export
        );
        let _ = std::fs::write(dir.join("report.txt"), text);
    }
    let spec = serde_json::json!({
        "kind": "kill",
        "why": why,
        "seed": seed,
        "cycle": cycle,
        "chain": chain.id,
        "plan": plan_json(&chain.plan),
        "floor": chain.floor,
    });
    let _ = std::fs::write(dir.join("failure.json"), format!("{spec:#}\n"));
}

fn campaign(env: &Env, s: &Path, cycles: u64, states_wanted: u64, seed: u64) -> Tally {
    let campaign_start = Instant::now();
    let failures = root().join("target/vm/failures");
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    std::fs::copy(&env.base_img, s.join("disk.img")).unwrap();
    let boot = |params: Vec<(&'static str, String)>, log: Option<PathBuf>| Boot {
        disk: s.join("disk.img"),
        report: s.join("report.img"),
        log,
        console: s.join("ttyS0.log"),
        params,
    };
    // The replay worker runs beside the kill loop (QEMU takes one core, it takes the other).
    let (jobs_tx, jobs_rx) = mpsc::channel::<states::Job>();
    let worker_env = env.clone();
    let worker_failures = failures.clone();
    let worker = std::thread::spawn(move || {
        let mut all = states::Outcome::default();
        for job in jobs_rx {
            let o = states::run(&worker_env, &job, &worker_failures);
            println!(
                "vm-powercut: {}: {} states ({} flush points, {} windows) in {:.1} s, {} \
                 violations",
                job.name,
                o.states,
                o.flush_states,
                o.window_states,
                o.secs,
                o.violations.len()
            );
            all.states += o.states;
            all.flush_states += o.flush_states;
            all.window_states += o.window_states;
            all.torn_tails += o.torn_tails;
            all.behind_snapshot += o.behind_snapshot;
            all.no_journal += o.no_journal;
            all.fsck_repaired += o.fsck_repaired;
            if all.fsck_example.is_none() {
                all.fsck_example = o.fsck_example;
            }
            all.secs += o.secs;
            all.violations.extend(o.violations);
        }
        all
    });
    let mut chains: HashMap<u64, Chain> = HashMap::new();
    let mut next_chain = 1;
    let mut current = 0;
    let mut pending: Option<u64> = None;
    let mut planned_states = 0u64;
    let record_every = (cycles * 300 / states_wanted.max(1)).max(1);
    for cycle in 1..=cycles + 1 {
        let last_boot = cycle > cycles;
        // The chain to append to.
        let retire = chains.get_mut(&current).is_none_or(|c| {
            c.broken || c.boots >= c.max_boots || c.exp.bytes_through(c.floor) > CHAIN_BYTES_MAX
        });
        if retire && !last_boot {
            current = next_chain;
            next_chain += 1;
            let big_one_in = [0, 2, 6, 20][rng.below(4) as usize];
            let plan = Plan {
                seed: rng.next(),
                big_one_in,
                big_min: 64 << 10,
                big_max: 1 << 20,
            };
            chains.insert(
                current,
                Chain {
                    id: current,
                    plan,
                    exp: Expected::new(plan),
                    floor: 0,
                    boots: 0,
                    max_boots: [1, 3, 10, 30][rng.below(4) as usize],
                    broken: false,
                },
            );
        }
        chains.retain(|id, c| *id == current || (Some(*id) == pending && !c.broken));
        let check = pending.filter(|id| chains.contains_key(id));
        let remaining = cycles.saturating_sub(cycle);
        let record = !last_boot
            && states_wanted > 0
            && planned_states < states_wanted
            && cycle >= 2.min(cycles)
            && ((cycle - 2.min(cycles)).is_multiple_of(record_every)
                || remaining * 300 < states_wanted - planned_states);
        let sync = if rng.below(2) == 0 { "always" } else { "batch" };
        let compact = if record {
            [0, 5, 10][(tally.recordings % 3) as usize]
        } else {
            [0, 0, 5, 10, 40][rng.below(5) as usize]
        };
        let lines = if record {
            rng.range(40, 120)
        } else {
            rng.range(50, 1500)
        };
        let kill = if record {
            Kill::Idle(millis(&mut rng, 0, 300))
        } else {
            match rng.below(10) {
                0 => Kill::Early(millis(&mut rng, 0, 1500)),
                1..=4 => {
                    let most = if sync == "always" { lines } else { 8 };
                    Kill::Acks(rng.range(1, most), millis(&mut rng, 0, 20))
                }
                _ => Kill::Delay(millis(&mut rng, 0, 2500)),
            }
        };
        let chain_name = |id: Option<u64>| id.map_or("-".to_string(), |i| format!("c{i}"));
        let append = (!last_boot).then_some(current);
        let plan = chains[&current].plan;
        let mut params = vec![
            ("nonce", cycle.to_string()),
            ("check", chain_name(check)),
            ("chain", chain_name(append)),
            ("seed", plan.seed.to_string()),
            (
                "big",
                format!("{},{},{}", plan.big_one_in, plan.big_min, plan.big_max),
            ),
            ("sync", sync.to_string()),
            ("compact", compact.to_string()),
            ("lines", lines.to_string()),
        ];
        std::fs::copy(s.join("disk.img"), s.join("pre.img")).unwrap();
        let log = record.then(|| s.join("log.bin"));
        let heard = if last_boot {
            params.push(("end", "poweroff".into()));
            let vm = Vm::start(env, &boot(params, None)).unwrap();
            let (lines, exited) = vm.wait_exit(FIRST_LINE_LIMIT + SILENCE_LIMIT);
            Heard {
                phase: "final".into(),
                trouble: (!exited).then(|| "the final boot did not power off".into()),
                lines,
                ..Heard::default()
            }
        } else {
            boot_and_cut(env, &boot(params, log.clone()), kill, &mut rng)
        };
        let what = format!(
            "cycle {cycle}: check {}, append {} (plan {:?}), --sync {sync}, compact {compact}, \
             {lines} lines, kill {kill:?}, heard up to '{}', {} acks",
            chain_name(check),
            chain_name(append),
            plan,
            heard.phase,
            heard.acks.len()
        );
        if !last_boot {
            tally.cycles += 1;
            tally.note(match heard.phase.as_str() {
                "append" => "kills while appending",
                "exit" | "idle" => "kills after the writer finished",
                _ => "kills during boot, recovery or the report",
            });
        }
        let violation = |tally: &mut Tally, chain: &Chain, why: String, r: Option<&Report>| {
            let name = format!("kill-{seed:016x}-c{cycle}");
            let secs = campaign_start.elapsed().as_secs_f64();
            let v = format!("{name} ({secs:.0} s into the run): {what}: {why}");
            eprintln!("vm-powercut VIOLATION: {v}");
            keep_kill_failure(s, &name, chain, &v, seed, cycle, r);
            tally.violations.push(v);
        };
        if let Some(t) = &heard.trouble {
            let c = &chains[&check.unwrap_or(current)];
            violation(&mut tally, c, t.clone(), None);
            // Start again from an empty disk: what is on this one is no longer known.
            std::fs::copy(&env.base_img, s.join("disk.img")).unwrap();
            for c in chains.values_mut() {
                c.broken = true;
            }
            pending = None;
            if last_boot {
                break;
            }
            continue;
        }
        if let Some(l) = heard.odd.first() {
            let c = &chains[&current];
            violation(
                &mut tally,
                c,
                format!("unexpected console line {l:?}"),
                None,
            );
        }
        // The report of the previous boot's journal, if the guest wrote it before the cut.
        let report = std::fs::read(s.join("report.img"))
            .ok()
            .and_then(|b| Report::from_disk(&b, cycle));
        let mut report_ok = check.is_none();
        let mut found_text = String::from("no report");
        if let (Some(id), Some(r)) = (check, &report) {
            let c = chains.get_mut(&id).unwrap();
            match check::check(r, &mut c.exp, c.floor) {
                Ok(found) => {
                    report_ok = true;
                    found_text = format!(
                        "c{id} recovered through {} (floor {}){}{}",
                        found.last,
                        c.floor,
                        if found.torn_tail { ", torn tail" } else { "" },
                        if found.through > 0 {
                            format!(", snapshot through {}", found.through)
                        } else {
                            String::new()
                        }
                    );
                    c.floor = c.floor.max(found.last);
                    tally.note("reports checked");
                    if found.torn_tail {
                        tally.note("torn tails recovered");
                    }
                    if found.through > 0 {
                        tally.note("checks behind a snapshot");
                    }
                }
                Err(why) => {
                    c.broken = true;
                    let c = &chains[&id];
                    violation(&mut tally, c, why, Some(r));
                }
            }
        } else if check.is_some() {
            tally.note("cuts before the report was written");
        }
        let cut = match (heard.append_at, heard.cut_at) {
            (Some(a), Some(c)) => format!(
                "cut {:.2} s after the writer started",
                c.saturating_duration_since(a).as_secs_f64()
            ),
            _ => "cut before the writer started".into(),
        };
        if last_boot {
            println!("vm-powercut: final boot: {found_text}");
        } else {
            println!(
                "vm-powercut: cycle {cycle}: {found_text}; then {}{} --sync {sync} compact {compact}, \
             {lines} lines, {kill:?}: {cut} (at '{}'), {} acks up to {}",
                chain_name(append),
                if record { " (recorded)" } else { "" },
                heard.phase,
                heard.acks.len(),
                heard.acks.iter().map(|a| a.0).max().unwrap_or(0)
            );
        }
        if last_boot {
            if let (Some(id), None) = (check, &report) {
                let c = &chains[&id];
                violation(&mut tally, c, "the final boot wrote no report".into(), None);
            }
            break;
        }
        if let Some(exit) = &heard.writer_exit
            && !exit.starts_with("exit 0")
        {
            let c = &chains[&current];
            violation(&mut tally, c, format!("the writer failed: {exit}"), None);
        }
        // The writer may have started once the report was written (or when there was none).
        if report.is_some() || check.is_none() {
            pending = Some(current);
            let floor_base = chains[&current].floor;
            let c = chains.get_mut(&current).unwrap();
            c.boots += 1;
            let acked = heard.acks.iter().map(|a| a.0).max().unwrap_or(0);
            c.floor = c.floor.max(acked);
            tally
                .notes
                .entry("acknowledgements read")
                .and_modify(|n| *n += heard.acks.len() as u64)
                .or_insert(heard.acks.len() as u64);
            if let Some(log) = log
                && report_ok
                && !c.broken
            {
                let name = format!("c{cycle}");
                let dir = s.join(format!("job-{cycle}"));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::rename(s.join("pre.img"), dir.join("base.img")).unwrap();
                std::fs::rename(&log, dir.join("log.bin")).unwrap();
                let flushes = blocklog::Log::read(&dir.join("log.bin"), qemu_disk_bytes(env))
                    .map(|l| l.flushes.len() as u64)
                    .unwrap_or(0);
                // One random window per flush point; the last recording fills the budget.
                let deficit = states_wanted.saturating_sub(planned_states + flushes + 1);
                let windows = if remaining == 0 {
                    deficit
                } else {
                    (flushes + 1).min(deficit)
                };
                planned_states += flushes + 1 + windows;
                tally.recordings += 1;
                jobs_tx
                    .send(states::Job {
                        name,
                        dir,
                        chain_id: current,
                        plan,
                        floor: floor_base,
                        acks: heard
                            .acks
                            .iter()
                            .filter_map(|&(n, pos)| Some((n, pos?)))
                            .collect(),
                        windows: windows as usize,
                        seed: rng.next(),
                        cycle,
                        campaign_start,
                    })
                    .unwrap();
            }
        }
    }
    drop(jobs_tx);
    tally.replay = worker.join().unwrap();
    tally
}

fn qemu_disk_bytes(env: &Env) -> u64 {
    std::fs::metadata(&env.base_img)
        .map(|m| m.len())
        .unwrap_or(0)
}

#[test]
fn vm_powercut() {
    let started = Instant::now();
    let scratch = Scratch::new();
    let env = env(&scratch.0);
    let built = started.elapsed();
    let cycles = knob(CYCLES_ENV, 5);
    let states_wanted = knob(STATES_ENV, 300);
    let seed = std::env::var(SEED_ENV).map_or_else(
        |_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Rng(nanos ^ (u64::from(std::process::id()) << 32)).next()
        },
        |v| {
            let v = v.trim();
            v.strip_prefix("0x")
                .map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| panic!("{SEED_ENV}={v:?}: expected an integer"))
        },
    );
    println!(
        "vm-powercut: seed {seed:#018x} (replay the plan: {SEED_ENV}={seed:#018x}), {cycles} \
         cycles, at least {states_wanted} replayed states; build {:.1} s",
        built.as_secs_f64()
    );
    let t = campaign(&env, &scratch.0, cycles, states_wanted, seed);
    let r = &t.replay;
    let violations = t.violations.len() + r.violations.len();
    let notes: Vec<String> = t.notes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "vm-powercut: {} cycles, {} replayed states, {violations} violations\n\
         vm-powercut: 3a: {}\n\
         vm-powercut: 3b: {} recordings; {} flush points + {} reordered/torn windows; {} torn \
         tails recovered, {} behind a snapshot, {} before the journal existed, {} needing \
         e2fsck repairs beyond its journal; {:.0} ms per state\n\
         vm-powercut: {:.0} s in all",
        t.cycles,
        r.states,
        notes.join(", "),
        t.recordings,
        r.flush_states,
        r.window_states,
        r.torn_tails,
        r.behind_snapshot,
        r.no_journal,
        r.fsck_repaired,
        r.secs * 1000.0 / r.states.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    if let Some(e) = &r.fsck_example {
        println!("vm-powercut: e2fsck repair example: {e}");
    }
    assert!(
        violations == 0,
        "vm-powercut: {violations} violations (seed {seed:#018x}; kept under target/vm/failures, \
         replay one with tests/vm/replay.sh <dir>):\n{}\n{}",
        t.violations.join("\n"),
        r.violations.join("\n")
    );
    assert!(
        t.cycles >= cycles && r.states >= states_wanted.min(1),
        "vm-powercut: ran {} cycles and {} states, wanted {cycles} and {states_wanted}",
        t.cycles,
        r.states
    );
}

/// `tests/vm/replay.sh <dir>`: replays a kept failure (`TURNWAL_VM_REPLAY=<dir>`).
#[test]
#[ignore = "run by tests/vm/replay.sh with TURNWAL_VM_REPLAY set"]
fn replay_saved_failure() {
    let dir = PathBuf::from(
        std::env::var(REPLAY_ENV).expect("TURNWAL_VM_REPLAY=<target/vm/failures/...>"),
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("failure.json")).unwrap()).unwrap();
    println!("vm-powercut replay of {}: {}", dir.display(), spec["why"]);
    let scratch = Scratch::new();
    let env = env(&scratch.0);
    let verdict = match spec["kind"].as_str() {
        Some("state") => states::replay(&env, &dir, &spec),
        Some("kill") => replay_kill(&env, &scratch.0, &dir, &spec),
        other => panic!("failure.json: unknown kind {other:?}"),
    };
    match verdict {
        Ok(v) => println!("vm-powercut replay: {v}"),
        Err(e) => panic!("vm-powercut replay: {e}"),
    }
}

/// Boots the kept image once more, reporting on the chain only, and checks the report.
fn replay_kill(
    env: &Env,
    s: &Path,
    dir: &Path,
    spec: &serde_json::Value,
) -> Result<String, String> {
    std::fs::copy(dir.join("disk.img"), s.join("disk.img")).map_err(|e| e.to_string())?;
    let chain = spec["chain"].as_u64().ok_or("chain")?;
    let plan = plan_from_json(&spec["plan"]).ok_or("plan")?;
    let floor = spec["floor"].as_u64().ok_or("floor")?;
    let boot = Boot {
        disk: s.join("disk.img"),
        report: s.join("report.img"),
        log: None,
        console: s.join("ttyS0.log"),
        params: vec![
            ("nonce", "1".into()),
            ("check", format!("c{chain}")),
            ("end", "poweroff".into()),
        ],
    };
    let vm = Vm::start(env, &boot)?;
    let (lines, _) = vm.wait_exit(FIRST_LINE_LIMIT + SILENCE_LIMIT);
    for l in &lines {
        println!("guest: {}", check::preview(&l.text));
    }
    let bytes = std::fs::read(s.join("report.img")).map_err(|e| e.to_string())?;
    let report = Report::from_disk(&bytes, 1).ok_or("the guest wrote no report")?;
    check::check(&report, &mut Expected::new(plan), floor)
        .map(|c| format!("passes now: {c:?}"))
        .map_err(|why| format!("still fails: {why}"))
}
