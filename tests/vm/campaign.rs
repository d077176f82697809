//! The campaign: 3a cycles on one disk, some boots recorded and handed to the 3b worker.
//!
//! Each cycle is one boot that reports on the chain the previous boot wrote (`check`) and then
//! appends to a chain (`append`: the same one, or a fresh one once a chain is retired). Which
//! chain is due for a check is only moved on once a boot's report is on the report disk: the
//! guest writes it before any writer starts, so a boot cut earlier changed no chain. One more
//! boot at the end only reports. A recorded boot runs a short workload to its end behind
//! `blklogwrites`; its log and the image it started from go to the replay worker, which runs
//! beside the loop (QEMU takes one core, the worker the other).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::check::{self, Expected, Report};
use crate::feeder::{Body, Plan, Rng};
use crate::killloop::{self, Chain, FIRST_LINE_LIMIT, Heard, Kill, SILENCE_LIMIT, millis};
use crate::qemu::{Boot, Env, Vm};
use crate::{blocklog, states};

/// A chain (journal directory) is retired past this many bytes of events.
const CHAIN_BYTES_MAX: u64 = 6 << 20;
/// Replayed states a recording is expected to give before one has (to spread the recordings).
const STATES_PER_RECORDING: u64 = 300;

/// Counts of a campaign; violations fail it.
#[derive(Debug, Default)]
pub struct Tally {
    pub cycles: u64,
    pub notes: BTreeMap<&'static str, u64>,
    pub violations: Vec<String>,
    pub replay: states::Outcome,
    pub recordings: u64,
}

impl Tally {
    fn note(&mut self, what: &'static str) {
        self.add(what, 1);
    }

    fn add(&mut self, what: &'static str, n: u64) {
        *self.notes.entry(what).or_default() += n;
    }
}

/// One boot's plan.
#[derive(Debug)]
struct CyclePlan {
    cycle: u64,
    /// The report-only boot after the last cycle.
    last: bool,
    check: Option<u64>,
    append: Option<u64>,
    plan: Plan,
    sync: &'static str,
    compact: u64,
    lines: u64,
    kill: Kill,
    record: bool,
}

fn chain_name(id: Option<u64>) -> String {
    id.map_or("-".to_string(), |i| format!("c{i}"))
}

pub struct Campaign<'a> {
    env: &'a Env,
    /// The run's scratch directory: `disk.img`, `pre.img` (the disk before the boot),
    /// `report.img`, `log.bin`, `ttyS0.log`, `job-*`.
    s: &'a Path,
    seed: u64,
    rng: Rng,
    started: Instant,
    tally: Tally,
    chains: HashMap<u64, Chain>,
    next_chain: u64,
    current: u64,
    pending: Option<u64>,
    cycles: u64,
    states_wanted: u64,
    planned_states: u64,
    /// The cycle of the last recording (0: none yet).
    last_record: u64,
    jobs: Sender<states::Job>,
}

impl Campaign<'_> {
    /// Runs `cycles` cycles and at least `states_wanted` replayed states in `scratch`.
    pub fn run(env: &Env, scratch: &Path, cycles: u64, states_wanted: u64, seed: u64) -> Tally {
        let (jobs, worker) = replay_worker(env);
        std::fs::copy(&env.base_img, scratch.join("disk.img")).unwrap();
        let mut c = Campaign {
            env,
            s: scratch,
            seed,
            rng: Rng(seed),
            started: Instant::now(),
            tally: Tally::default(),
            chains: HashMap::new(),
            next_chain: 1,
            current: 0,
            pending: None,
            cycles,
            states_wanted,
            planned_states: 0,
            last_record: 0,
            jobs,
        };
        for cycle in 1..=cycles + 1 {
            let p = c.plan(cycle);
            std::fs::copy(c.s.join("disk.img"), c.s.join("pre.img")).unwrap();
            let heard = c.boot(&p);
            c.after(&p, &heard);
        }
        let Campaign {
            jobs, mut tally, ..
        } = c;
        drop(jobs);
        tally.replay = worker.join().unwrap();
        tally
    }

    /// Chooses the chains, the workload, the moment of the cut, and whether to record.
    fn plan(&mut self, cycle: u64) -> CyclePlan {
        let last = cycle > self.cycles;
        let rng = &mut self.rng;
        let retire = self.chains.get_mut(&self.current).is_none_or(|c| {
            c.broken || c.boots >= c.max_boots || c.exp.bytes_through(c.floor) > CHAIN_BYTES_MAX
        });
        if retire && !last {
            self.current = self.next_chain;
            self.next_chain += 1;
            let plan = Plan {
                seed: rng.next(),
                big_one_in: [0, 2, 6, 20][rng.below(4) as usize],
                big_min: 64 << 10,
                big_max: 1 << 20,
            };
            let chain = Chain {
                id: self.current,
                plan,
                exp: Expected::new(plan),
                floor: 0,
                boots: 0,
                max_boots: [1, 3, 10, 30][rng.below(4) as usize],
                broken: false,
            };
            self.chains.insert(self.current, chain);
        }
        let (current, pending) = (self.current, self.pending);
        self.chains
            .retain(|id, c| *id == current || (Some(*id) == pending && !c.broken));
        let check = pending.filter(|id| self.chains.contains_key(id));
        // Recordings from cycle 2 on, spread evenly over the cycles left: as many as the
        // states still wanted need, at the states a recording gave so far.
        let deficit = self.states_wanted.saturating_sub(self.planned_states);
        let per = match self.tally.recordings {
            0 => STATES_PER_RECORDING,
            n => (self.planned_states / n).max(1),
        };
        let needed = deficit.div_ceil(per);
        let left = self.cycles.saturating_sub(cycle) + 1;
        let record = !last
            && deficit > 0
            && cycle >= 2.min(self.cycles)
            && (cycle - self.last_record) * needed >= left;
        let sync = if rng.below(2) == 0 { "always" } else { "batch" };
        let compact = if record {
            [0, 5, 10][(self.tally.recordings % 3) as usize]
        } else {
            [0, 0, 5, 10, 40][rng.below(5) as usize]
        };
        let lines = if record {
            rng.range(40, 120)
        } else {
            rng.range(50, 1500)
        };
        let kill = if record {
            Kill::Idle(millis(rng, 0, 300))
        } else {
            let bigs = self.chains[&current].plan.big_one_in > 0;
            match rng.below(10) {
                0 => Kill::Early(millis(rng, 0, 1500)),
                1..=3 => {
                    let most = if sync == "always" { lines } else { 8 };
                    Kill::Acks(rng.range(1, most), millis(rng, 0, 20))
                }
                4..=5 if bigs => Kill::BeforeBig(millis(rng, 0, 40)),
                // A writer takes about 2 ms a line here: cut it while it runs, mostly.
                _ => Kill::Delay(millis(rng, 0, (200 + 2 * lines).min(2500))),
            }
        };
        CyclePlan {
            cycle,
            last,
            check,
            append: (!last).then_some(current),
            plan: self.chains[&current].plan,
            sync,
            compact,
            lines,
            kill,
            record,
        }
    }

    fn boot(&mut self, p: &CyclePlan) -> Heard {
        let mut params = vec![
            ("nonce", p.cycle.to_string()),
            ("check", chain_name(p.check)),
            ("chain", chain_name(p.append)),
            ("seed", p.plan.seed.to_string()),
            (
                "big",
                format!(
                    "{},{},{}",
                    p.plan.big_one_in, p.plan.big_min, p.plan.big_max
                ),
            ),
            ("sync", p.sync.to_string()),
            ("compact", p.compact.to_string()),
            ("lines", p.lines.to_string()),
        ];
        let s = self.s;
        let mut boot = Boot {
            disk: s.join("disk.img"),
            report: s.join("report.img"),
            log: p.record.then(|| s.join("log.bin")),
            console: s.join("ttyS0.log"),
            params: Vec::new(),
        };
        if p.last {
            params.push(("end", "poweroff".into()));
            boot.params = params;
            let vm = Vm::start(self.env, &boot).unwrap_or_else(|e| panic!("vm-powercut: {e}"));
            let (lines, exited) = vm.wait_exit(FIRST_LINE_LIMIT + SILENCE_LIMIT);
            return Heard {
                phase: "final".into(),
                trouble: (!exited).then(|| "the final boot did not power off".into()),
                lines,
                ..Heard::default()
            };
        }
        boot.params = params;
        let mut big_next = HashSet::new();
        if let Kill::BeforeBig(_) = p.kill {
            // From the floor on: the writer starts at most a batch past it.
            let c = self.chains.get_mut(&self.current).unwrap();
            let from = c.floor.max(1);
            for seq in from..from + p.lines + 2000 {
                if (seq + 1..=seq + 4).any(|s| matches!(c.exp.at(s).body, Body::Big { .. })) {
                    big_next.insert(seq);
                }
            }
        }
        killloop::boot_and_cut(self.env, &boot, p.kill, &big_next, &mut self.rng)
    }

    /// Records a violation of cycle `p` on `chain` and keeps what replays it.
    fn violation(
        &mut self,
        p: &CyclePlan,
        heard: &Heard,
        chain: u64,
        why: &str,
        r: Option<&Report>,
    ) {
        let name = format!("kill-{:016x}-c{}", self.seed, p.cycle);
        let v = format!(
            "{name} ({:.0} s into the run): cycle {}: check {}, append {} (plan {:?}), --sync \
             {}, compact {}, {} lines, kill {:?}, heard up to '{}', {} acks: {why}",
            self.started.elapsed().as_secs_f64(),
            p.cycle,
            chain_name(p.check),
            chain_name(p.append),
            p.plan,
            p.sync,
            p.compact,
            p.lines,
            p.kill,
            heard.phase,
            heard.acks.len()
        );
        eprintln!("vm-powercut VIOLATION: {v}");
        if let Some(c) = self.chains.get(&chain) {
            keep_kill_failure(self.s, &name, c, &v, self.seed, p.cycle, r);
        }
        self.tally.violations.push(v);
    }

    /// Checks the boot's report, updates the chains, hands a recording over.
    fn after(&mut self, p: &CyclePlan, heard: &Heard) {
        if !p.last {
            self.tally.cycles += 1;
            self.tally.note(match heard.phase.as_str() {
                "append" => "kills while appending",
                "exit" | "idle" => "kills after the writer finished",
                _ => "kills during boot, recovery or the report",
            });
        }
        if let Some(t) = &heard.trouble {
            self.violation(p, heard, p.check.unwrap_or(self.current), t, None);
            // Start again from an empty disk: what is on this one is no longer known.
            std::fs::copy(&self.env.base_img, self.s.join("disk.img")).unwrap();
            for c in self.chains.values_mut() {
                c.broken = true;
            }
            self.pending = None;
            return;
        }
        if let Some(l) = heard.odd.first() {
            let why = format!("unexpected console line {l:?}");
            self.violation(p, heard, self.current, &why, None);
        }
        // The report on the previous boot's journal, if the guest wrote it before the cut.
        let report = std::fs::read(self.s.join("report.img"))
            .ok()
            .and_then(|b| Report::from_disk(&b, p.cycle));
        let found = self.check_report(p, heard, report.as_ref());
        self.print(p, heard, &found);
        if p.last {
            if let (Some(id), None) = (p.check, &report) {
                self.violation(p, heard, id, "the final boot wrote no report", None);
            }
            return;
        }
        if let Some(exit) = &heard.writer_exit
            && !exit.starts_with("exit 0")
        {
            let why = format!("the writer failed: {exit}");
            self.violation(p, heard, self.current, &why, None);
        }
        // The writer may have started once the report was written (or when there was none).
        if report.is_none() && p.check.is_some() {
            return;
        }
        self.pending = Some(self.current);
        let c = self.chains.get_mut(&self.current).unwrap();
        let floor_before = c.floor;
        c.boots += 1;
        c.floor = c
            .floor
            .max(heard.acks.iter().map(|a| a.0).max().unwrap_or(0));
        let usable = !c.broken && (p.check.is_none() || found.is_ok());
        self.tally
            .add("acknowledgements read", heard.acks.len() as u64);
        if p.record && usable {
            self.hand_over(p, heard, floor_before);
        }
    }

    /// Checks the report against the chain due; `Err` if there was none or it failed.
    fn check_report(
        &mut self,
        p: &CyclePlan,
        heard: &Heard,
        report: Option<&Report>,
    ) -> Result<String, String> {
        let (Some(id), Some(r)) = (p.check, report) else {
            if p.check.is_some() {
                self.tally.note("cuts before the report was written");
            }
            return Err("no report".into());
        };
        let c = self.chains.get_mut(&id).unwrap();
        match check::check(r, &mut c.exp, c.floor) {
            Ok(found) => {
                let text = format!(
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
                self.tally.note("reports checked");
                if found.torn_tail {
                    self.tally.note("torn tails recovered");
                }
                if found.through > 0 {
                    self.tally.note("checks behind a snapshot");
                }
                Ok(text)
            }
            Err(why) => {
                c.broken = true;
                self.violation(p, heard, id, &why, Some(r));
                Err(why)
            }
        }
    }

    fn print(&self, p: &CyclePlan, heard: &Heard, found: &Result<String, String>) {
        let found = match found {
            Ok(t) => t.as_str(),
            Err(_) => "no report",
        };
        if p.last {
            println!("vm-powercut: final boot: {found}");
            return;
        }
        let cut = match (heard.append_at, heard.cut_at) {
            (Some(a), Some(c)) => format!(
                "cut {:.2} s after the writer started",
                c.saturating_duration_since(a).as_secs_f64()
            ),
            _ => "cut before the writer started".into(),
        };
        println!(
            "vm-powercut: cycle {}: {found}; then {}{} --sync {} compact {}, {} lines, {:?}: {cut} \
             (at '{}'), {} acks up to {}",
            p.cycle,
            chain_name(p.append),
            if p.record { " (recorded)" } else { "" },
            p.sync,
            p.compact,
            p.lines,
            p.kill,
            heard.phase,
            heard.acks.len(),
            heard.acks.iter().map(|a| a.0).max().unwrap_or(0)
        );
    }

    /// Sends a recorded boot to the replay worker: every flush point, and one random window
    /// per flush point (the last recording fills the budget).
    fn hand_over(&mut self, p: &CyclePlan, heard: &Heard, floor: u64) {
        let dir = self.s.join(format!("job-{}", p.cycle));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::rename(self.s.join("pre.img"), dir.join("base.img")).unwrap();
        std::fs::rename(self.s.join("log.bin"), dir.join("log.bin")).unwrap();
        let disk_bytes = std::fs::metadata(&self.env.base_img).map_or(0, |m| m.len());
        let flushes = blocklog::Log::read(&dir.join("log.bin"), disk_bytes)
            .map_or(0, |l| l.flushes.len() as u64);
        let deficit = self
            .states_wanted
            .saturating_sub(self.planned_states + flushes + 1);
        let windows = if p.cycle >= self.cycles {
            deficit
        } else {
            (flushes + 1).min(deficit)
        };
        self.planned_states += flushes + 1 + windows;
        self.tally.recordings += 1;
        self.last_record = p.cycle;
        let job = states::Job {
            name: format!("c{}", p.cycle),
            dir,
            chain_id: self.current,
            plan: p.plan,
            floor,
            acks: heard
                .acks
                .iter()
                .filter_map(|&(n, pos)| Some((n, pos?)))
                .collect(),
            windows: windows as usize,
            seed: self.rng.next(),
            cycle: p.cycle,
            campaign_start: self.started,
        };
        self.jobs.send(job).unwrap();
    }
}

/// The replay worker: runs the jobs it is sent, in order, and sums what they found.
fn replay_worker(env: &Env) -> (Sender<states::Job>, JoinHandle<states::Outcome>) {
    let (tx, rx) = mpsc::channel::<states::Job>();
    let env = env.clone();
    let failures = crate::root().join("target/vm/failures");
    let worker = std::thread::spawn(move || {
        let mut all = states::Outcome::default();
        for job in rx {
            let o = states::run(&env, &job, &failures);
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
            all.merge(o);
        }
        all
    });
    (tx, worker)
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
    if !crate::may_keep() {
        return;
    }
    let dir: PathBuf = crate::root().join("target/vm/failures").join(name);
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
        "plan": crate::plan_json(&chain.plan),
        "floor": chain.floor,
    });
    let _ = std::fs::write(dir.join("failure.json"), format!("{spec:#}\n"));
}
