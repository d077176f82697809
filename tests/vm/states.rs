//! 3b: the crash states of a recorded boot, replayed offline.
//!
//! A recorded boot ran with its disk behind `blklogwrites`. For every flush point `k` of its log
//! (and for as many random choices among the writes between two flushes, torn at 512 bytes), the
//! state is built on a copy of the image the boot started from, `e2fsck -fy` recovers the file
//! system as a reboot would (journal replay, then a full check), `debugfs rdump` copies the
//! chain's directory out, and the host's `turnwal verify --json` / `export --raw` read it.
//! The floor at flush `k` is the chain's floor before the boot (acknowledged earlier, or
//! recovered by this boot's own report) and every `durable_through` the boot printed while the
//! log held no more than `k` flushes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::blocklog::{self, Log, State};
use crate::check::{self, Checked, Expected, Report};
use crate::feeder::{Plan, Rng};
use crate::qemu::Env;

/// A recorded boot, ready to be replayed.
#[derive(Debug, Clone)]
pub struct Job {
    /// `c<cycle>`: names the failure directory.
    pub name: String,
    /// Holds `base.img` (the disk before the boot) and `log.bin`; removed when done.
    pub dir: PathBuf,
    pub chain_id: u64,
    pub plan: Plan,
    /// Floor before the boot's writer started.
    pub floor: u64,
    /// `(durable_through, log bytes when the host read it)`.
    pub acks: Vec<(u64, u64)>,
    /// Random window states to add to the flush points.
    pub windows: usize,
    pub seed: u64,
    pub cycle: u64,
    /// When the campaign started (violations say how far into it they were found).
    pub campaign_start: Instant,
}

/// What replaying a job found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub states: u64,
    pub flush_states: u64,
    pub window_states: u64,
    pub torn_tails: u64,
    pub behind_snapshot: u64,
    pub no_journal: u64,
    pub fsck_repaired: u64,
    pub fsck_example: Option<String>,
    pub violations: Vec<String>,
    pub secs: f64,
}

impl Outcome {
    /// Adds another job's counts.
    pub fn merge(&mut self, o: Outcome) {
        self.states += o.states;
        self.flush_states += o.flush_states;
        self.window_states += o.window_states;
        self.torn_tails += o.torn_tails;
        self.behind_snapshot += o.behind_snapshot;
        self.no_journal += o.no_journal;
        self.fsck_repaired += o.fsck_repaired;
        if self.fsck_example.is_none() {
            self.fsck_example = o.fsck_example;
        }
        self.secs += o.secs;
        self.violations.extend(o.violations);
    }
}

/// The states of `log`: every flush point, then `windows` random ones, in flush order.
pub fn plan_states(log: &Log, windows: usize, rng: &mut Rng) -> Vec<State> {
    let flushes = log.flushes.len();
    let mut states: Vec<State> = (0..=flushes)
        .map(|k| State {
            k,
            picks: Vec::new(),
            how: "flush point",
        })
        .collect();
    let with_writes: Vec<usize> = (0..=flushes)
        .filter(|&k| log.window(k).any(|i| log.entries[i].is_write()))
        .collect();
    if !with_writes.is_empty() {
        for _ in 0..windows {
            let k = with_writes[rng.below(with_writes.len() as u64) as usize];
            states.push(State::random(log, k, rng));
        }
    }
    states.sort_by_key(|s| s.k);
    states
}

/// The floor of the state after `k` flushes.
pub fn floor_at(log: &Log, job_floor: u64, acks: &[(u64, u64)], k: usize) -> u64 {
    acks.iter()
        .filter(|(_, pos)| log.flushes_before(*pos) <= k)
        .map(|(n, _)| *n)
        .fold(job_floor, u64::max)
}

/// e2fsck, then the chain's directory copied out and read by the host's CLI. Also returns
/// e2fsck's output when it repaired more than the superblock's lazy counters.
pub fn read_state(
    env: &Env,
    img: &Path,
    chain_id: u64,
    out: &Path,
) -> Result<(Report, Option<String>), String> {
    let fsck = Command::new(&env.e2fsck)
        .args(["-f", "-y"])
        .arg(img)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    let code = fsck.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&fsck.stdout);
    if !(0..=1).contains(&code) {
        return Err(format!(
            "e2fsck -fy exit {code}: the file system did not recover: {}",
            check::preview(&text)
        ));
    }
    // The superblock's free block and inode totals are not journaled (the kernel recounts them
    // at mount): e2fsck fixing them is no repair. Anything else it fixes is one.
    let fixes = text.lines().filter(|l| l.ends_with("? yes")).count();
    let lazy = text
        .lines()
        .filter(|l| {
            l.starts_with("Free blocks count wrong (") || l.starts_with("Free inodes count wrong (")
        })
        .count();
    let repaired = fixes > lazy;
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let dump = Command::new(&env.debugfs)
        .arg("-R")
        .arg(format!("rdump /c{chain_id} {}", out.display()))
        .arg(img)
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    let dir = out.join(format!("c{chain_id}"));
    let report = if dir.is_dir() {
        Report::of_dir(&env.turnwal, &dir)?
    } else if String::from_utf8_lossy(&dump.stderr).contains("File not found") {
        Report {
            verify_rc: 2,
            verify_err: "the chain directory is not a turnwal journal: it does not exist".into(),
            ..Report::default()
        }
    } else {
        return Err(format!(
            "debugfs rdump failed: {}",
            String::from_utf8_lossy(&dump.stderr).trim()
        ));
    };
    let what = || {
        let lines: Vec<&str> = text.lines().collect();
        let mut fixed: Vec<String> = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if l.ends_with("? yes") && i > 0 {
                fixed.push(format!("{} {l}", lines[i - 1].trim()));
            }
        }
        fixed.join(" / ")
    };
    Ok((report, repaired.then(what)))
}

/// Replays every state of `job`; failing states are kept under `failures`.
pub fn run(env: &Env, job: &Job, failures: &Path) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome::default();
    let result = run_inner(env, job, failures, &mut out);
    if let Err(e) = result {
        out.violations
            .push(format!("{}: replay could not run: {e}", job.name));
    }
    out.secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&job.dir);
    out
}

fn run_inner(env: &Env, job: &Job, failures: &Path, out: &mut Outcome) -> Result<(), String> {
    let base = job.dir.join("base.img");
    let log_path = job.dir.join("log.bin");
    let disk_bytes = std::fs::metadata(&base).map_err(|e| e.to_string())?.len();
    let log = Log::read(&log_path, disk_bytes)?;
    let log_file = File::open(&log_path).map_err(|e| e.to_string())?;
    let mut rng = Rng(job.seed);
    let states = plan_states(&log, job.windows, &mut rng);
    let mut exp = Expected::new(job.plan);
    // The image through flush `at_k`, advanced as the (sorted) states need.
    let cursor = job.dir.join("cursor.img");
    std::fs::copy(&base, &cursor).map_err(|e| e.to_string())?;
    let cursor_file = std::fs::OpenOptions::new()
        .write(true)
        .open(&cursor)
        .map_err(|e| e.to_string())?;
    let mut at_k = 0;
    let mut buf = Vec::new();
    let img = job.dir.join("state.img");
    let dump = job.dir.join("dump");
    for (n, state) in states.iter().enumerate() {
        if state.k > at_k {
            let from = log.window(at_k).start;
            let to = log.flushes[state.k - 1] + 1;
            blocklog::apply_range(&log_file, &cursor_file, &log, from..to, &mut buf)
                .map_err(|e| e.to_string())?;
            at_k = state.k;
        }
        blocklog::build_state(&log_file, &log, &cursor, state, &img).map_err(|e| e.to_string())?;
        let floor = floor_at(&log, job.floor, &job.acks, state.k);
        out.states += 1;
        if state.picks.is_empty() && state.how == "flush point" {
            out.flush_states += 1;
        } else {
            out.window_states += 1;
        }
        let verdict = read_state(env, &img, job.chain_id, &dump).and_then(|(report, fix)| {
            if let Some(fix) = fix {
                out.fsck_repaired += 1;
                if out.fsck_example.is_none() {
                    out.fsck_example = Some(format!("{} state {n}: {fix}", job.name));
                }
            }
            check::check(&report, &mut exp, floor).map(|c| (c, report))
        });
        match verdict {
            Ok((c, _)) => note(out, c),
            Err(why) => {
                let name = format!("state-{:016x}-{}-{n}", job.seed, job.name);
                let why = format!(
                    "{name} ({:.0} s into the run): flush {} of {}, {} ({} writes picked), floor \
                     {floor}: {why}",
                    job.campaign_start.elapsed().as_secs_f64(),
                    state.k,
                    log.flushes.len(),
                    state.how,
                    state.picks.len()
                );
                eprintln!("vm-powercut VIOLATION: {why}");
                let kept = failures.join(&name);
                if keep_failure(job, state, floor, &why, &kept) {
                    // The state as the power cut left it, before e2fsck touched it.
                    let _ = blocklog::build_state(
                        &log_file,
                        &log,
                        &cursor,
                        state,
                        &kept.join("state.img"),
                    );
                }
                out.violations.push(why);
            }
        }
    }
    Ok(())
}

fn note(out: &mut Outcome, c: Checked) {
    if c.last == 0 {
        out.no_journal += 1;
    }
    if c.torn_tail {
        out.torn_tails += 1;
    }
    if c.through > 0 {
        out.behind_snapshot += 1;
    }
}

/// Keeps what replays a failing state: the base image, the log, the state spec and the floor.
fn keep_failure(job: &Job, state: &State, floor: u64, why: &str, dir: &Path) -> bool {
    if !crate::may_keep() {
        return false;
    }
    let _ = std::fs::create_dir_all(dir);
    for f in ["base.img", "log.bin"] {
        let _ = std::fs::copy(job.dir.join(f), dir.join(f));
    }
    let picks: Vec<serde_json::Value> = state
        .picks
        .iter()
        .map(|(i, s)| serde_json::json!([i, s]))
        .collect();
    let spec = serde_json::json!({
        "kind": "state",
        "why": why,
        "seed": job.seed,
        "cycle": job.cycle,
        "chain": job.chain_id,
        "plan": crate::plan_json(&job.plan),
        "job_floor": job.floor,
        "floor": floor,
        "acks": job.acks,
        "state": { "k": state.k, "how": state.how, "picks": picks },
    });
    std::fs::write(dir.join("failure.json"), format!("{spec:#}\n")).is_ok()
}

/// Replays a kept state (`tests/vm/replay.sh`): rebuilds it from `base.img` + `log.bin`, checks
/// it is the kept `state.img`, and checks it again. Returns the verdict as text.
pub fn replay(env: &Env, dir: &Path, spec: &serde_json::Value) -> Result<String, String> {
    let base = dir.join("base.img");
    let log_path = dir.join("log.bin");
    let disk_bytes = std::fs::metadata(&base).map_err(|e| e.to_string())?.len();
    let log = Log::read(&log_path, disk_bytes)?;
    let log_file = File::open(&log_path).map_err(|e| e.to_string())?;
    let st = &spec["state"];
    let state = State {
        k: st["k"].as_u64().ok_or("state.k")? as usize,
        picks: st["picks"]
            .as_array()
            .ok_or("state.picks")?
            .iter()
            .map(|p| {
                let i = p[0].as_u64().unwrap_or(0) as usize;
                let s = p[1]
                    .as_array()
                    .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect());
                (i, s)
            })
            .collect(),
        how: "replayed",
    };
    let work = std::env::temp_dir().join(format!("turnwal-vm-replay-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let cursor = work.join("cursor.img");
    std::fs::copy(&base, &cursor).map_err(|e| e.to_string())?;
    let cursor_file = std::fs::OpenOptions::new()
        .write(true)
        .open(&cursor)
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    if state.k > 0 {
        let to = log.flushes[state.k - 1] + 1;
        blocklog::apply_range(&log_file, &cursor_file, &log, 0..to, &mut buf)
            .map_err(|e| e.to_string())?;
    }
    let img = work.join("state.img");
    blocklog::build_state(&log_file, &log, &cursor, &state, &img).map_err(|e| e.to_string())?;
    let same = std::fs::read(&img).ok() == std::fs::read(dir.join("state.img")).ok();
    let plan = crate::plan_from_json(&spec["plan"]).ok_or("plan")?;
    let chain = spec["chain"].as_u64().ok_or("chain")?;
    let floor = spec["floor"].as_u64().ok_or("floor")?;
    let verdict = read_state(env, &img, chain, &work.join("dump")).and_then(|(report, _)| {
        check::check(&report, &mut Expected::new(plan), floor)
            .map(|c| format!("passes now: {c:?}"))
            .map_err(|why| {
                format!(
                    "{why}\nverify: {}\n{}",
                    check::preview(report.verify.trim()),
                    report.verify_err.trim()
                )
            })
    });
    let _ = std::fs::remove_dir_all(&work);
    let rebuilt = if same {
        "rebuilt state identical to the kept state.img"
    } else {
        "rebuilt state DIFFERS from the kept state.img"
    };
    match verdict {
        Ok(v) => Ok(format!("{rebuilt}; {v}")),
        Err(e) => Err(format!("{rebuilt}; still fails: {e}")),
    }
}
