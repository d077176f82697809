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
//!   after the n-th acknowledgement, while a large event is written, after a random delay, or
//!   once the writer is done. The next boot's report is checked (I2, I3, I4: `vm/check.rs`)
//!   against every acknowledgement read before the kill. Why killing QEMU is a power cut:
//!   `vm/qemu.rs`.
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
#[path = "vm/campaign.rs"]
mod campaign;
#[path = "vm/check.rs"]
mod check;
#[path = "vm/feeder.rs"]
mod feeder;
#[path = "vm/killloop.rs"]
mod killloop;
#[path = "vm/qemu.rs"]
mod qemu;
#[path = "vm/states.rs"]
mod states;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use campaign::Campaign;
use check::{Expected, Report};
use feeder::{Plan, Rng};
use killloop::{FIRST_LINE_LIMIT, SILENCE_LIMIT};
use qemu::{Boot, Env, Vm};

const CYCLES_ENV: &str = "TURNWAL_VM_CYCLES";
const STATES_ENV: &str = "TURNWAL_VM_STATES";
const SEED_ENV: &str = "TURNWAL_VM_SEED";
const REPLAY_ENV: &str = "TURNWAL_VM_REPLAY";

fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: expected an integer")),
        Err(_) => default,
    }
}

/// The repository.
pub(crate) fn root() -> PathBuf {
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

/// Whether one more failure may be kept (at most 12 a run: each holds 64 MiB images).
pub(crate) fn may_keep() -> bool {
    static KEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    KEPT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 12
}

/// The tier: a campaign of `TURNWAL_VM_CYCLES` kill cycles and `TURNWAL_VM_STATES` replayed
/// states; or, with `TURNWAL_VM_REPLAY=<target/vm/failures/...>` (`tests/vm/replay.sh`), the
/// replay of one kept failure instead.
#[test]
fn vm_powercut() {
    if std::env::var_os(REPLAY_ENV).is_some() {
        replay_saved_failure();
        return;
    }
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
    let t = Campaign::run(&env, &scratch.0, cycles, states_wanted, seed);
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

/// `tests/vm/replay.sh <dir>`: replays a kept failure (`TURNWAL_VM_REPLAY=<dir>`); it fails
/// as the original did, or passes if the bug is fixed.
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
