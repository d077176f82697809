//! Tier 1 of the crash-injection harness: simulated power loss, in process, on every run.
//!
//! The story: a kill -9 loop cannot catch a missing fsync, because the page cache survives the
//! process. Here the journal runs on a simulated file system that knows, for every file and
//! directory, what is live and what is durable. A workload (appends, syncs, rotations, one
//! compaction) is run once to count its storage operations; then, for every operation, it is run
//! again with the power cut right before that operation, and the state left behind is cut in
//! every way a disk may lose unsynced data (dropped, a prefix kept, random pages kept, the last
//! write torn at 512 B, garbage, a zero-filled extension; directory changes dropped, a prefix or
//! any subset kept). Each resulting disk is recovered and checked against a reference model:
//!
//! - I1 after a process crash every append that returned is recovered;
//! - I2 after a power cut every event reported durable is recovered;
//! - I3 the recovered log is an exact prefix of what was appended (nothing invented, nothing
//!   reordered, no gap) and the journal is never reported corrupt;
//! - I4 a crash at any step of compaction recovers the same session (before or after it);
//! - I5 recovery is idempotent: a power cut during recovery's own writes recovers the same.
//!
//! Size knob: `TURNWAL_CRASH_SCALE` (default 1, the CI size: at least 100,000 crash states).
//! A failure prints the workload, the crash point, the cut and its seed; add it to
//! `regressions()` below as a named case.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failure must fail loudly"
)]

#[path = "common/crash_model.rs"]
mod crash_model;

use std::fmt;
use std::sync::Arc;

use crash_model::{Acked, DIR, Recovered, Step, Workload, check, event_line, options, run};
use proptest::prelude::*;
use turnwal::storage::sim::{Cut, Fault, SimFs};
use turnwal::{Event, Journal, SyncPolicy};

fn scale() -> u64 {
    std::env::var("TURNWAL_CRASH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Counts of what the harness checked.
#[derive(Debug, Default)]
struct Tally {
    states: u64,
    recoveries_cut: u64,
}

/// I5: recovery on `disk` (a writer's open) is cut by a power loss at its `at`-th operation;
/// recovering again keeps everything the disk held before (`before`, its read-only view) and
/// agrees with an uninterrupted recovery. Returns whether the recovery was really cut.
fn check_recovery_cut(
    disk: &SimFs,
    before: Option<&Recovered>,
    acked: &Acked,
    at: u64,
    cut: Cut,
    seed: u64,
) -> Result<bool, String> {
    let clean = disk.power_cut(Cut::process_crash(), 0);
    let full = match Journal::open(DIR, options(&clean, SyncPolicy::Never)) {
        Ok((j, _)) => {
            drop(j);
            check(&clean.power_cut(Cut::process_crash(), 0), acked, false)?
        }
        Err(e) => return Err(format!("a writer refused the recovered disk: {e}")),
    };
    let copy = disk.power_cut(Cut::process_crash(), 0);
    copy.crash_at(Some(at));
    drop(Journal::open(DIR, options(&copy, SyncPolicy::Never)));
    if !copy.crashed() {
        return Ok(false);
    }
    let again = copy.power_cut(cut, seed);
    let after = check(&again, acked, false)?;
    let kept = before.map_or(0, |b| b.events.len());
    let (Some(full), Some(after)) = (full, after) else {
        return if kept == 0 {
            Ok(true)
        } else {
            Err(format!(
                "I5: recovery cut at op {at} ({cut}) lost the journal"
            ))
        };
    };
    let before_events = before.map_or(&[][..], |b| &b.events[..]);
    // What recovery itself writes (a missing session event) carries a new timestamp, so only
    // what the disk held is compared, and the recovered length.
    if after.events.len() < kept
        || after.events[..kept] != *before_events
        || after.last_seq > full.last_seq.max(before.map_or(0, |b| b.last_seq))
    {
        return Err(format!(
            "I5: recovery cut at op {at} ({cut}) recovers through {}, the disk held {}, \
             an uninterrupted recovery {}",
            after.last_seq,
            before.map_or(0, |b| b.last_seq),
            full.last_seq
        ));
    }
    Ok(true)
}

struct Failure {
    workload: Workload,
    crash_at: u64,
    cut: String,
    seed: u64,
    what: String,
    log: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "crash-sim violation: {}\n  workload {:?} {:?}\n  power cut before op #{} ({}), seed {}",
            self.what,
            self.workload.policy,
            self.workload.steps,
            self.crash_at,
            self.cut,
            self.seed
        )?;
        writeln!(f, "  operations up to the cut:")?;
        for l in self.log.iter().rev().take(24).rev() {
            writeln!(f, "    {l}")?;
        }
        Ok(())
    }
}

/// Every crash point of `w`, crossed with every cut; `seeds` seeds per cut; I5 on a sample.
fn explore(w: &Workload, seeds: u64, tally: &mut Tally) -> Result<(), Box<Failure>> {
    let probe = SimFs::new();
    run(&probe, w);
    let total = probe.ops();
    let mut rng = w.steps.len() as u64 * 7919 + total;
    for crash_at in 0..=total {
        let fs = SimFs::new();
        fs.crash_at(Some(crash_at));
        let acked = run(&fs, w);
        for cut in Cut::all() {
            let process_crash = cut == Cut::process_crash();
            for seed in 0..if process_crash { 1 } else { seeds } {
                let disk = fs.power_cut(cut, seed);
                tally.states += 1;
                let fail = |what: String| {
                    Box::new(Failure {
                        workload: w.clone(),
                        crash_at,
                        cut: cut.to_string(),
                        seed,
                        what,
                        log: fs.log(),
                    })
                };
                let before = check(&disk, &acked, process_crash).map_err(fail)?;
                // I5 on one in eight states: cut the recovery itself somewhere.
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (rng >> 33).is_multiple_of(8) {
                    let at = (rng >> 40) % 12;
                    let cuts = Cut::all();
                    let cut2 = cuts[((rng >> 20) as usize) % cuts.len()];
                    if check_recovery_cut(&disk, before.as_ref(), &acked, at, cut2, seed)
                        .map_err(|e| fail(format!("{e} [then {cut2}]")))?
                    {
                        tally.recoveries_cut += 1;
                        tally.states += 1;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Every workload of up to three steps (appends small and page-spanning, durable appends, syncs,
/// one compaction), under `Always` and `Never`.
fn systematic() -> Vec<Workload> {
    let kinds = [
        Step::Append(20),
        Step::Append(700),
        Step::AppendDurable(40),
        Step::Sync,
        Step::Compact,
        Step::Reopen,
    ];
    let mut out = Vec::new();
    let mut seqs: Vec<Vec<Step>> = vec![vec![]];
    for _ in 0..3 {
        let next: Vec<Vec<Step>> = seqs
            .iter()
            .flat_map(|s| {
                kinds.iter().map(move |k| {
                    let mut v = s.clone();
                    v.push(k.clone());
                    v
                })
            })
            .filter(|s| s.iter().filter(|k| **k == Step::Compact).count() <= 1)
            .collect();
        out.extend(next.iter().cloned());
        seqs = next;
    }
    let mut ws = Vec::new();
    for steps in out {
        // Always makes every append durable on its own: syncs and durable appends add nothing.
        ws.push(Workload {
            policy: SyncPolicy::Never,
            steps: steps.clone(),
        });
        if !steps
            .iter()
            .any(|s| matches!(s, Step::Sync | Step::AppendDurable(_)))
        {
            ws.push(Workload {
                policy: SyncPolicy::Always,
                steps,
            });
        }
    }
    ws
}

/// Cases that once failed, kept by name.
fn regressions() -> Vec<(&'static str, Workload)> {
    vec![(
        // A journal's directory was created without syncing its parent: a power cut right
        // after the first acknowledged append could make the whole journal vanish.
        "journal directory entry made durable before the first acknowledgement",
        Workload {
            policy: SyncPolicy::Always,
            steps: vec![Step::Append(20)],
        },
    )]
}

#[test]
fn regression_cases() {
    let mut tally = Tally::default();
    for (name, w) in regressions() {
        if let Err(f) = explore(&w, 2, &mut tally) {
            panic!("regression {name:?}:\n{f}");
        }
    }
}

#[test]
fn every_crash_point_of_every_small_workload() {
    let mut tally = Tally::default();
    let workloads = systematic();
    let seeds = scale();
    for w in &workloads {
        if let Err(f) = explore(w, seeds, &mut tally) {
            panic!("{f}");
        }
    }
    println!(
        "crash-sim: {} states ({} with recovery cut again), {} workloads, 0 violations",
        tally.states,
        tally.recoveries_cut,
        workloads.len()
    );
    assert!(
        tally.states >= 100_000 * scale(),
        "the CI size must check at least 100,000 states per scale unit, checked {}",
        tally.states
    );
}

/// Faults instead of (and then followed by) a power cut: a failed fdatasync that drops the
/// dirty pages, a full disk, a short write. The journal must fail-stop (poison), report nothing
/// durable that is not, and every cut of what is left must recover to the model.
#[test]
fn faults_then_every_power_cut() {
    let mut tally = Tally::default();
    let mut faults = 0;
    let workloads: Vec<Workload> = systematic()
        .into_iter()
        .filter(|w| w.steps.len() == 3)
        .step_by(5)
        .collect();
    for w in &workloads {
        let probe = SimFs::new();
        run(&probe, w);
        let mut injected: Vec<Fault> = (0..probe.data_syncs())
            .map(|nth_sync| Fault::SyncEio { nth_sync })
            .collect();
        for nth_write in 0..probe.writes() {
            injected.push(Fault::Enospc { nth_write });
            injected.push(Fault::ShortWrite { nth_write });
        }
        for fault in injected {
            let fs = SimFs::new();
            fs.inject(fault);
            let acked = run(&fs, w);
            faults += 1;
            for cut in Cut::all() {
                let disk = fs.power_cut(cut, faults);
                tally.states += 1;
                if let Err(what) = check(&disk, &acked, cut == Cut::process_crash()) {
                    panic!(
                        "crash-sim violation after {fault:?}: {what}\n  workload {:?} {:?}, {cut}, seed {faults}",
                        w.policy, w.steps
                    );
                }
            }
        }
    }
    println!(
        "crash-sim (faults): {faults} faults, {} states, 0 violations",
        tally.states
    );
    assert!(faults > 100);
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1usize..900).prop_map(Step::Append),
        2 => (1usize..200).prop_map(Step::AppendDurable),
        2 => Just(Step::Sync),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

/// Long random workloads (10-40 steps), generated and, on failure, shrunk by proptest; the seed
/// of each run is printed by proptest on failure.
#[test]
fn random_long_workloads() {
    use proptest::test_runner::{Config, TestRunner};
    let strategy = (prop::collection::vec(step(), 10..40), any::<bool>());
    let mut runner = TestRunner::new(Config {
        cases: 6 * scale() as u32,
        failure_persistence: None,
        ..Config::default()
    });
    let states = std::cell::Cell::new(0u64);
    let result = runner.run(&strategy, |(steps, always)| {
        let w = Workload {
            policy: if always {
                SyncPolicy::Always
            } else {
                SyncPolicy::Never
            },
            steps,
        };
        let mut tally = Tally::default();
        let explored = explore(&w, 1, &mut tally);
        states.set(states.get() + tally.states);
        if let Err(f) = explored {
            prop_assert!(false, "{}", f);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    println!(
        "crash-sim (random): {} workloads, {} states, 0 violations",
        6 * scale(),
        states.get()
    );
}

#[test]
fn the_model_is_not_vacuous() {
    // Sanity of the harness itself: a crash-free run acknowledges everything, and the checker
    // refuses a disk that lost an acknowledged event.
    let w = Workload {
        policy: SyncPolicy::Always,
        steps: vec![Step::Append(20), Step::Append(20)],
    };
    let fs = SimFs::new();
    let acked = run(&fs, &w);
    assert_eq!((acked.appended, acked.durable), (3, 3));
    let disk = fs.power_cut(Cut::process_crash(), 0);
    assert!(check(&disk, &acked, false).unwrap().is_some());
    let mut more = acked.clone();
    more.durable = 4;
    more.fed
        .push(Event::from_envelope(&event_line(9, 5), 0).unwrap());
    let err = check(&disk, &more, false).unwrap_err();
    assert!(err.starts_with("I2"), "{err}");
}

/// The README's "Crash-testing your own harness" example, kept compiling and true.
#[test]
fn readme_example_holds() {
    let event = Event::from_envelope(&event_line(4, 10), 0).unwrap();
    let fs = SimFs::new();
    let opts = turnwal::Options {
        storage: Arc::new(fs.clone()),
        ..Default::default()
    };
    let (journal, _) = turnwal::Journal::open("/sessions/s1", opts).unwrap();
    let durable = journal.append_durable(&event).unwrap();
    for cut in Cut::all() {
        let disk = fs.power_cut(cut, 7);
        let opts = turnwal::Options {
            storage: Arc::new(disk),
            ..Default::default()
        };
        let view = turnwal::Journal::open_read_only("/sessions/s1", &opts).unwrap();
        assert!(view.report.last_seq >= durable, "{cut}");
    }
}
