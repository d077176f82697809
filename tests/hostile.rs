//! Hostile journal directories (issue 8, part 6): opening a journal from an untrusted source
//! never panics, never hangs, never allocates without bound, and reports what it found.
//!
//! Every case is built afresh for each entry point: `Journal::open_read_only` (default and
//! `Salvage` mode), `Journal::open` for writing in the default mode (must refuse or cut, never
//! splice) and in `Mode::Salvage`, and the CLI `turnwal verify --json` (exit 0, 1 or 2, never a
//! signal). Each library call runs under a watchdog (a hang aborts the test binary after
//! [`HANG`] instead of stalling CI) and a counting global allocator (peak heap growth at most
//! 4 × the bytes on disk + 16 MiB, plus the one codec claim the format allows, see
//! [`CODEC_CLAIM`]). The tests of this file run one at a time (the allocator counts the whole
//! process).
//!
//! Random directories are seeded: the seed is printed, and `TURNWAL_HOSTILE_SEED=<n>` adds one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use turnwal::{
    Action, CompactionPolicy, Error, Journal, Mode, Options, SalvageReport, SessionId, Status,
    SyncPolicy, WriterOptions,
};
use turnwal_journal::event::Event;
use turnwal_journal::record;
use turnwal_journal::segment::{SegmentHeader, segment_name};

#[path = "common/count_alloc.rs"]
mod alloc_count;

/// What one payload decode may allocate, whatever the payload's size: a string or list length
/// claimed inside a checksum-valid frame is bounded by the codec's limit, the format's 64 MiB
/// (briefly; pinned by `journal/tests/limits.rs`). Decodes run one after another.
const CODEC_CLAIM: u64 = 64 << 20;

/// How long one call may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(20);

const OWN: SessionId = SessionId([0x11; 16]);
const FOREIGN: SessionId = SessionId([0x22; 16]);
const OWN_MESSAGES: usize = 80;
const FOREIGN_MESSAGES: usize = 120;

/// The tests of this file run one at a time: the allocator counts the whole process.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Aborts the process if not dropped within [`HANG`].
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn watchdog(what: &str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let what = what.to_string();
    let thread = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(HANG) {
            // Straight to the process's stderr: the harness's capture dies with the abort.
            let msg = format!("hostile: {what} still running after {HANG:?}: it hangs\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
            std::process::abort();
        }
    });
    Watchdog {
        done: Some(tx),
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bytes of the regular files in `dir` (symlinks are not followed: neither is the engine).
fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.path().symlink_metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs `f` under the watchdog and the allocation bound for the bytes in `dir`.
fn guarded<T>(what: &str, dir: &Path, f: impl FnOnce() -> T) -> T {
    let disk = disk_bytes(dir);
    let limit = 4 * disk + (16 << 20) + CODEC_CLAIM;
    let dog = watchdog(what);
    alloc_count::start();
    let out = f();
    let peak = alloc_count::stop();
    drop(dog);
    assert!(
        peak <= limit,
        "{what}: peak heap growth {peak} bytes, over the bound {limit} (4 x {disk} bytes on disk + 16 MiB + one codec claim)"
    );
    out
}

fn opts(mode: Mode) -> Options {
    Options {
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        recovery: mode,
        writer: WriterOptions {
            segment_bytes_max: 8 * 1024,
            prewrite_bytes: 4096,
            ..WriterOptions::default()
        },
        ..Options::default()
    }
}

fn message(prefix: &str, i: usize) -> String {
    format!(
        r#"{{"kind":"message","turn":1,"body":{{"id":"{prefix}{i}","role":"user","parts":[{{"type":"text","text":"{}{i}"}}]}}}}"#,
        "q".repeat(200)
    )
}

// ---------------------------------------------------------------------------------------------
// Template journals, written once per process.

struct Templates {
    /// 80 messages `own0..`, session OWN, several 8 KiB segments, seqs 1..=81.
    own: PathBuf,
    /// The same session compacted after 40 messages: a snapshot, then segments.
    own_compacted: PathBuf,
    /// 120 messages `for0..`, session FOREIGN, seqs 1..=121.
    foreign: PathBuf,
    /// FOREIGN compacted at the end: its snapshot (through seq 121).
    foreign_snapshot: PathBuf,
}

fn write_journal(
    dir: &Path,
    session: SessionId,
    prefix: &str,
    n: usize,
    compact_at: Option<usize>,
) {
    let o = Options {
        session_id: Some(session),
        ..opts(Mode::TolerateTornTail)
    };
    let (j, _) = Journal::open(dir, o).unwrap();
    for i in 0..n {
        if Some(i) == compact_at {
            j.compact().unwrap();
        }
        j.append_json(&message(prefix, i)).unwrap();
    }
    if compact_at == Some(n) {
        j.compact().unwrap();
    }
    j.close().unwrap();
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        // Under target/tmp, not /tmp: statics are never dropped, so this is cleaned up by the
        // next run (directories of processes that are gone).
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("hostile-")
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let base = root.join(format!("hostile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let own = base.join("own");
        write_journal(&own, OWN, "own", OWN_MESSAGES, None);
        let own_compacted = base.join("own-compacted");
        write_journal(&own_compacted, OWN, "own", OWN_MESSAGES, Some(40));
        let foreign = base.join("foreign");
        write_journal(&foreign, FOREIGN, "for", FOREIGN_MESSAGES, None);
        let fc = base.join("foreign-compacted");
        write_journal(
            &fc,
            FOREIGN,
            "for",
            FOREIGN_MESSAGES,
            Some(FOREIGN_MESSAGES),
        );
        let foreign_snapshot = names(&fc, "snapshot-").pop().map(|n| fc.join(n)).unwrap();
        assert!(
            names(&own, "segment-").len() >= 4,
            "the own journal needs 4+ segments"
        );
        Templates {
            own,
            own_compacted,
            foreign,
            foreign_snapshot,
        }
    })
}

/// Names in `dir` starting with `prefix` (no `.tmp`), sorted.
fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && !n.ends_with(".tmp"))
        .collect();
    v.sort();
    v
}

/// Copies the regular files of `from` (no `LOCK`) into a new `to`.
fn copy_journal(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" && e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn seg(id: u64) -> String {
    segment_name(id)
}

// ---------------------------------------------------------------------------------------------
// Running a case through every entry point.

/// What a read-only open reported.
#[derive(Debug)]
struct Ro {
    status: Status,
    action: Action,
    /// (file, kind) of every problem.
    problems: Vec<(String, String)>,
    /// (file, reason) of every snapshot left out.
    ignored: Vec<(String, String)>,
    /// (file, stop) of every segment scanned.
    stops: Vec<(String, String)>,
    snapshot: Option<String>,
    messages: Vec<String>,
    last_seq: u64,
    salvage: Option<SalvageReport>,
}

impl Ro {
    fn has(&self, file: &str, kind: &str) -> bool {
        self.problems.iter().any(|(f, k)| f == file && k == kind)
    }
}

/// What a writable open did.
#[derive(Debug)]
enum Open {
    Refused {
        case: String,
        problems: Vec<(String, String)>,
    },
    Failed(String),
    Opened {
        status: Status,
        action: Action,
        cut_applied: bool,
        messages: Vec<String>,
        last_seq: u64,
        salvage: Option<Box<SalvageReport>>,
    },
}

#[derive(Debug)]
struct Cli {
    code: i32,
    json: Option<serde_json::Value>,
    stderr: String,
}

#[derive(Debug)]
struct Seen {
    ro: Result<Ro, String>,
    ro_salvage: Result<Ro, String>,
    open: Open,
    salvage: Open,
    cli: Cli,
}

/// Every entry in `dir` (no `LOCK`): name, type, and the bytes (files) or target (symlinks).
fn dir_state(dir: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut v: Vec<(String, String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let t = e.file_type().unwrap();
            let (kind, content) = if t.is_file() {
                ("file", std::fs::read(e.path()).unwrap())
            } else if t.is_symlink() {
                let target = std::fs::read_link(e.path()).unwrap();
                (
                    "symlink",
                    target.to_string_lossy().into_owned().into_bytes(),
                )
            } else if t.is_dir() {
                ("dir", Vec::new())
            } else {
                ("other", Vec::new())
            };
            (name, kind.to_string(), content)
        })
        .collect();
    v.sort();
    v
}

fn problems_of(p: &[turnwal_replay::recover::Problem]) -> Vec<(String, String)> {
    p.iter()
        .map(|p| (p.file.clone(), p.kind.to_string()))
        .collect()
}

fn read_only(what: &str, dir: &Path, mode: Mode) -> Result<Ro, String> {
    let before = dir_state(dir);
    let got = guarded(what, dir, || {
        Journal::open_read_only(dir, &opts(mode)).map(|v| Ro {
            status: v.report.status,
            action: v.report.action,
            problems: problems_of(&v.report.problems),
            ignored: v
                .report
                .ignored_snapshots
                .iter()
                .map(|i| (i.file.clone(), i.reason.clone()))
                .collect(),
            stops: v
                .report
                .segment_reports
                .iter()
                .map(|s| (s.file.clone(), s.stop.to_string()))
                .collect(),
            snapshot: v.report.snapshot.as_ref().map(|s| s.file.clone()),
            messages: v.session.messages.iter().map(|m| m.id.clone()).collect(),
            last_seq: v.session.last_seq,
            salvage: v.report.salvage.clone(),
        })
    });
    assert_eq!(
        dir_state(dir),
        before,
        "{what}: a read-only open changed files"
    );
    got.map_err(|e| e.to_string())
}

fn writable(what: &str, dir: &Path, mode: Mode) -> Open {
    let before = dir_state(dir);
    let got = guarded(what, dir, || match Journal::open(dir, opts(mode)) {
        Ok((j, report)) => {
            let s = j.session();
            let last_seq = j.last_seq();
            j.close().unwrap();
            Open::Opened {
                status: report.status,
                action: report.action,
                cut_applied: report.cut_applied,
                messages: s.messages.iter().map(|m| m.id.clone()).collect(),
                last_seq,
                salvage: report.salvage.clone().map(Box::new),
            }
        }
        Err(Error::Refused { report, .. }) => Open::Refused {
            case: report.case.to_string(),
            problems: problems_of(&report.problems),
        },
        Err(e) => Open::Failed(e.to_string()),
    });
    match &got {
        // (A salvaging open installs before it checks the result again: a refusal then
        // leaves the salvage installed, by design.)
        Open::Refused { .. } if mode != Mode::Salvage => {
            assert_eq!(dir_state(dir), before, "{what}: a refusal changed files");
        }
        Open::Opened { status, .. } if mode == Mode::TolerateTornTail => {
            assert_ne!(*status, Status::Corrupt, "{what}: opened a corrupt journal");
        }
        _ => {}
    }
    if let Open::Opened { .. } = got {
        // What a writer leaves opens clean, in the strictest mode.
        let again = read_only(&format!("{what}, reread"), dir, Mode::Strict);
        let again = again.unwrap_or_else(|e| panic!("{what}: reread: {e}"));
        assert_eq!(again.status, Status::Clean, "{what}: reread: {again:?}");
    }
    got
}

fn verify_cli(what: &str, dir: &Path) -> Cli {
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .args(["verify", "--json"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: turnwal verify still running after {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{what}: turnwal verify died by a signal: {stderr}"));
    assert!((0..=2).contains(&code), "{what}: exit {code}: {stderr}");
    let json = serde_json::from_slice(&out.stdout).ok();
    Cli { code, json, stderr }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Clean => "clean",
        Status::TornTail => "torn_tail",
        Status::Corrupt => "corrupt",
    }
}

/// Every view holds messages of one session only: never spliced.
fn one_session(what: &str, messages: &[String]) {
    let own = messages.iter().filter(|m| m.starts_with("own")).count();
    assert!(
        own == 0 || own == messages.len(),
        "{what}: messages of two sessions spliced: {messages:?}"
    );
}

fn open_messages(o: &Open) -> &[String] {
    match o {
        Open::Opened { messages, .. } => messages,
        _ => &[],
    }
}

/// Builds the case afresh for every entry point and runs them all; checks what holds for
/// every case (nothing changed by readers and refusals, no splice, the CLI agrees with the
/// library). The caller checks what this case must report.
fn run_case(name: &str, build: &dyn Fn(&Path)) -> Seen {
    run_case_with(name, build, &|_| {})
}

/// [`run_case`], with `after` called on each directory once its entry point is done.
fn run_case_with(name: &str, build: &dyn Fn(&Path), after: &dyn Fn(&Path)) -> Seen {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = |label: &str| {
        let d = tmp.path().join(label);
        build(&d);
        d
    };
    let d = fresh("ro");
    let ro = read_only(&format!("{name}: read-only"), &d, Mode::TolerateTornTail);
    after(&d);
    let d = fresh("ros");
    let ro_salvage = read_only(&format!("{name}: read-only salvage"), &d, Mode::Salvage);
    after(&d);
    let d = fresh("open");
    let open = writable(&format!("{name}: open"), &d, Mode::TolerateTornTail);
    after(&d);
    let d = fresh("salvage");
    let salvage = writable(&format!("{name}: open salvage"), &d, Mode::Salvage);
    after(&d);
    let d = fresh("cli");
    let cli = verify_cli(&format!("{name}: verify"), &d);
    after(&d);

    for (label, r) in [("read-only", &ro), ("read-only salvage", &ro_salvage)] {
        if let Ok(r) = r {
            one_session(&format!("{name}: {label}"), &r.messages);
        }
    }
    one_session(&format!("{name}: open"), open_messages(&open));
    one_session(&format!("{name}: open salvage"), open_messages(&salvage));
    // The CLI says what the library says.
    match &ro {
        Ok(r) => {
            let want = if r.status == Status::Corrupt { 1 } else { 0 };
            assert_eq!(cli.code, want, "{name}: verify: {}", cli.stderr);
            let json = cli.json.as_ref().unwrap();
            assert_eq!(json["status"], status_name(r.status), "{name}: verify");
            let kinds: Vec<(String, String)> = json["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["file"].as_str().unwrap().to_string(),
                        p["kind"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            assert_eq!(kinds, r.problems, "{name}: verify");
        }
        Err(e) => assert_eq!(
            cli.code, 2,
            "{name}: read-only failed ({e}), verify did not"
        ),
    }
    let seen = Seen {
        ro,
        ro_salvage,
        open,
        salvage,
        cli,
    };
    eprintln!("hostile: {name}: {:?}", summary(&seen));
    seen
}

/// One line per case for the log.
fn summary(s: &Seen) -> String {
    let ro = match &s.ro {
        Ok(r) => format!("{:?}/{:?} {:?}", r.status, r.action, r.problems),
        Err(e) => format!("error: {e}"),
    };
    let open = |o: &Open| match o {
        Open::Refused { case, .. } => format!("refused ({case})"),
        Open::Failed(e) => format!("failed: {e}"),
        Open::Opened {
            status,
            action,
            last_seq,
            ..
        } => format!("opened {status:?}/{action:?} through {last_seq}"),
    };
    format!(
        "ro {ro}; open {}; salvage {}; verify exit {}",
        open(&s.open),
        open(&s.salvage),
        s.cli.code
    )
}

fn ro(seen: &Seen) -> &Ro {
    seen.ro
        .as_ref()
        .unwrap_or_else(|e| panic!("read-only open failed: {e}"))
}

/// The problems of a refusal whose table row is `want_case`.
fn assert_refused<'a>(what: &str, o: &'a Open, want_case: &str) -> &'a [(String, String)] {
    match o {
        Open::Refused { case, problems } => {
            assert_eq!(case, want_case, "{what}");
            problems
        }
        other => panic!("{what}: expected a refusal ({want_case}), got {other:?}"),
    }
}

/// The own journal's messages `own0..ownN`, in order.
fn own_messages(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("own{i}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Files from elsewhere: a foreign segment, renamed and duplicated segments, a foreign snapshot.

/// Own segment `id` replaced by the foreign journal's segment of the same id.
fn foreign_same_id(id: u64) -> impl Fn(&Path) {
    move |d: &Path| {
        let t = templates();
        copy_journal(&t.own, d);
        std::fs::copy(t.foreign.join(seg(id)), d.join(seg(id))).unwrap();
    }
}

#[test]
fn foreign_segment_with_the_same_id_is_reported_never_spliced() {
    let _s = serial();
    let seen = run_case("foreign segment as segment 2", &foreign_same_id(2));
    let r = ro(&seen);
    assert_eq!(
        (r.status, r.action),
        (Status::Corrupt, Action::RefuseCorrupt)
    );
    assert!(r.has(&seg(2), "foreign_segment"), "{r:?}");
    assert!(r.messages.iter().all(|m| m.starts_with("own")));
    assert!(!r.messages.is_empty(), "segment 1 is still read");
    let refused = assert_refused("open", &seen.open, "bad segment header");
    assert!(
        refused.contains(&(seg(2), "foreign_segment".into())),
        "{refused:?}"
    );
    match &seen.salvage {
        Open::Opened {
            messages, salvage, ..
        } => {
            let s = salvage.as_ref().unwrap();
            assert!(
                s.skipped
                    .iter()
                    .any(|f| f.file == seg(2) && f.reason.contains("belongs to session")),
                "{s:?}"
            );
            assert_eq!(messages.len() as u64, OWN_MESSAGES as u64 - s.lost_count);
            assert!(s.lost_count > 0);
        }
        other => panic!("salvage: {other:?}"),
    }

    // The first segment replaced: the journal's session is then the foreign one (nothing on
    // disk says otherwise), and every own segment after it is reported as foreign instead.
    let seen = run_case("foreign segment as segment 1", &foreign_same_id(1));
    let r = ro(&seen);
    assert_eq!(r.status, Status::Corrupt);
    assert!(r.has(&seg(2), "foreign_segment"), "{r:?}");
    assert_refused("open", &seen.open, "bad segment header");
}

#[test]
fn foreign_segment_as_an_extra_id_is_reported_never_spliced() {
    let _s = serial();
    let t = templates();
    let next = names(&t.own, "segment-").len() as u64 + 1;
    assert!(t.foreign.join(seg(next)).exists());
    let seen = run_case("foreign segment as an extra id", &|d: &Path| {
        copy_journal(&t.own, d);
        std::fs::copy(t.foreign.join(seg(next)), d.join(seg(next))).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(
        (r.status, r.action),
        (Status::Corrupt, Action::RefuseCorrupt)
    );
    assert!(r.has(&seg(next), "foreign_segment"), "{r:?}");
    assert_eq!(r.messages, own_messages(0..OWN_MESSAGES));
    assert_refused("open", &seen.open, "bad segment header");
    match &seen.salvage {
        Open::Opened {
            messages, salvage, ..
        } => {
            assert_eq!(*messages, own_messages(0..OWN_MESSAGES));
            let s = salvage.as_ref().unwrap();
            assert_eq!(s.lost_count, 0);
            assert!(s.skipped.iter().any(|f| f.file == seg(next)), "{s:?}");
        }
        other => panic!("salvage: {other:?}"),
    }
}

#[test]
fn segments_renamed_out_of_order_are_reported_not_read() {
    let _s = serial();
    let seen = run_case("segments 1 and 2 swapped", &|d: &Path| {
        let t = templates();
        copy_journal(&t.own, d);
        std::fs::copy(t.own.join(seg(1)), d.join(seg(2))).unwrap();
        std::fs::copy(t.own.join(seg(2)), d.join(seg(1))).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(
        (r.status, r.action),
        (Status::Corrupt, Action::RefuseCorrupt)
    );
    assert!(r.has(&seg(1), "bad_segment_header"), "{r:?}");
    assert!(r.has(&seg(2), "bad_segment_header"), "{r:?}");
    assert!(
        r.messages.is_empty(),
        "nothing read in the wrong order: {r:?}"
    );
    assert_refused("open", &seen.open, "bad segment header");
    // Salvage keeps only frames bound to the segment they are in: the session event went
    // with segment 1's bytes, so there is nothing it may install.
    assert!(
        matches!(&seen.salvage, Open::Failed(e) if e.contains("salvage refused")),
        "{:?}",
        seen.salvage
    );
}

#[test]
fn a_duplicated_segment_is_reported() {
    let _s = serial();
    let seen = run_case("segment 2 also as segment 3", &|d: &Path| {
        let t = templates();
        copy_journal(&t.own, d);
        std::fs::copy(t.own.join(seg(2)), d.join(seg(3))).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(
        (r.status, r.action),
        (Status::Corrupt, Action::RefuseCorrupt)
    );
    assert!(r.has(&seg(3), "bad_segment_header"), "{r:?}");
    assert_refused("open", &seen.open, "bad segment header");
    match &seen.salvage {
        Open::Opened {
            messages, salvage, ..
        } => {
            let s = salvage.as_ref().unwrap();
            assert!(s.lost_count > 0, "segment 3's seqs are lost: {s:?}");
            assert_eq!(messages.len() as u64, OWN_MESSAGES as u64 - s.lost_count);
            assert!(s.conflicts.is_empty(), "{s:?}");
        }
        other => panic!("salvage: {other:?}"),
    }
}

#[test]
fn regression_foreign_snapshot_is_ignored_and_the_own_data_reads() {
    let _s = serial();
    let t = templates();
    let snap_name = t.foreign_snapshot.file_name().unwrap().to_owned();
    for (label, base) in [("uncompacted", &t.own), ("compacted", &t.own_compacted)] {
        let name = format!("foreign snapshot in an {label} journal");
        let seen = run_case(&name, &|d: &Path| {
            copy_journal(base, d);
            std::fs::copy(&t.foreign_snapshot, d.join(&snap_name)).unwrap();
        });
        let r = ro(&seen);
        let foreign = snap_name.to_string_lossy();
        let reported = r.has(&foreign, "foreign_snapshot")
            || r.ignored
                .iter()
                .any(|(f, why)| *f == foreign && why.contains("session"));
        assert!(reported, "{name}: {r:?}");
        assert_eq!(r.messages, own_messages(0..OWN_MESSAGES), "{name}");
        assert_eq!(r.status, Status::Clean, "{name}: {r:?}");
        match &seen.open {
            Open::Opened { messages, .. } => {
                assert_eq!(*messages, own_messages(0..OWN_MESSAGES), "{name}");
            }
            other => panic!("{name}: open: {other:?}"),
        }
        assert_eq!(open_messages(&seen.salvage), own_messages(0..OWN_MESSAGES));
    }

    // The own snapshot lost its trailer: a salvage keeps its readable lines (unverified), never
    // those of the foreign snapshot, though the foreign one is newer and reads whole.
    let own_snap = names(&t.own_compacted, "snapshot-").pop().unwrap();
    let name = "foreign snapshot, own snapshot without its trailer";
    let seen = run_case(name, &|d: &Path| {
        copy_journal(&t.own_compacted, d);
        let bytes = std::fs::read(d.join(&own_snap)).unwrap();
        let body = &bytes[..bytes.len() - 1];
        let trailer_at = body.iter().rposition(|&b| b == b'\n').unwrap() + 1;
        std::fs::write(d.join(&own_snap), &bytes[..trailer_at]).unwrap();
        std::fs::copy(&t.foreign_snapshot, d.join(&snap_name)).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(r.status, Status::Corrupt, "{name}: {r:?}");
    assert_eq!(r.snapshot, None, "{name}");
    let rs = seen.ro_salvage.as_ref().unwrap();
    let sv = rs.salvage.as_ref().unwrap();
    assert_eq!(
        sv.unverified_snapshot.as_ref().map(|u| u.file.as_str()),
        Some(own_snap.as_str()),
        "{name}: {sv:?}"
    );
    assert_eq!(rs.messages, own_messages(0..OWN_MESSAGES), "{name}");
    assert_eq!(open_messages(&seen.salvage), own_messages(0..OWN_MESSAGES));
}

// ---------------------------------------------------------------------------------------------
// Numbers at the end of their range: saturating math, never an overflow panic (the test
// profile has debug assertions, so an overflow would panic).

/// `bytes` (a snapshot) with its header edited by `edit` and the trailer's checksum redone.
fn reseal_snapshot(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let trailer: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    let mut header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    edit(&mut header);
    let mut body = format!("{header}\n");
    for l in &lines[1..] {
        body.push_str(l);
    }
    let records = &trailer["trailer"]["records"];
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!(
        "{{\"trailer\":{{\"records\":{records},\"crc32\":{crc}}}}}\n"
    ));
    body.into_bytes()
}

fn snapshot_file(through: u64) -> String {
    format!("snapshot-{through:020}.jsonl")
}

/// The own compacted journal with its snapshot claiming `through` (renamed to match);
/// `keep_original`: the real snapshot stays too.
fn own_snapshot_claiming(through: u64, keep_original: bool) -> impl Fn(&Path) {
    move |d: &Path| {
        let t = templates();
        copy_journal(&t.own_compacted, d);
        let real = names(d, "snapshot-").pop().unwrap();
        let bytes = std::fs::read(d.join(&real)).unwrap();
        let edited = reseal_snapshot(&bytes, |h| h["through_seq"] = through.into());
        if !keep_original {
            std::fs::remove_file(d.join(&real)).unwrap();
        }
        std::fs::write(d.join(snapshot_file(through)), edited).unwrap();
    }
}

#[test]
fn regression_snapshot_through_seq_u64_max_does_not_overflow() {
    let _s = serial();
    for keep in [false, true] {
        let name = format!("snapshot through u64::MAX (original kept: {keep})");
        let seen = run_case(&name, &own_snapshot_claiming(u64::MAX, keep));
        let r = ro(&seen);
        // The log ends below what the snapshot claims: a gap, refused for writing.
        assert_eq!(
            (r.status, r.action),
            (Status::Corrupt, Action::RefuseCorrupt),
            "{name}"
        );
        assert!(
            r.problems.iter().any(|(_, k)| k == "seq_gap"),
            "{name}: {r:?}"
        );
        assert_refused(&name, &seen.open, "seq gap or duplicate");
        // Salvage keeps the log's frames the snapshot claims but does not hold.
        let rs = seen.ro_salvage.as_ref().unwrap();
        assert_eq!(rs.messages, own_messages(0..OWN_MESSAGES), "{name}");
        let sv = rs.salvage.as_ref().unwrap();
        assert_eq!(
            (sv.through_seq, sv.lost_count),
            (OWN_MESSAGES as u64 + 1, 0),
            "{name}"
        );
        // Installed, but the forged snapshot is still the newest and still claims more than
        // the log holds: the re-check after installing refuses.
        assert!(
            matches!(seen.salvage, Open::Refused { .. }),
            "{name}: {:?}",
            seen.salvage
        );
    }
}

/// The own compacted journal whose snapshot claims u64::MAX: a salvage keeps the frames of
/// seqs the snapshot claims but does not hold (it used to skip every frame at or below the
/// claim, losing seqs 42..=81 without reporting them lost).
#[test]
fn regression_salvage_keeps_frames_a_snapshot_claims_but_does_not_hold() {
    let _s = serial();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("j");
    own_snapshot_claiming(u64::MAX, false)(&d);
    let sv = guarded("salvage preview", &d, || {
        Journal::salvage(&d, &opts(Mode::Salvage))
    });
    let sv = sv.unwrap();
    assert_eq!(sv.through_seq, OWN_MESSAGES as u64 + 1, "{sv:?}");
    assert_eq!(sv.messages, OWN_MESSAGES, "{sv:?}");
    assert!(sv.lost.is_empty(), "{sv:?}");
}

/// A frame of `event` as segment `id` writes it, at `seq` with watermark `wm`.
fn frame(seq: u64, id: u64, wm: u64, event: &Event, out: &mut Vec<u8>) {
    record::encode(seq, id, wm, event, 1 << 20, out).unwrap();
}

fn own_session_event() -> Event {
    Event::session(turnwal::event::SessionInfo {
        id: OWN.to_string(),
        created_at_ms: 0,
        fork_of: None,
    })
}

fn msg_event(i: usize) -> Event {
    Event::from_envelope(&message("own", i), 0).unwrap()
}

/// A segment file: header (own session), then one message frame per seq of `seqs`.
fn segment_bytes(id: u64, first_seq: u64, seqs: &[u64]) -> Vec<u8> {
    let mut out = SegmentHeader {
        segment_id: id,
        first_seq,
        session_id: OWN,
        created_at_ms: 0,
    }
    .encode()
    .to_vec();
    for (i, &s) in seqs.iter().enumerate() {
        let e = if s == 1 {
            own_session_event()
        } else {
            msg_event(i)
        };
        frame(s, id, s - 1, &e, &mut out);
    }
    out
}

/// The own snapshot, claiming through `m - 2`, under its name.
fn snapshot_through(d: &Path, through: u64) {
    let t = templates();
    let real = names(&t.own_compacted, "snapshot-").pop().unwrap();
    let bytes = std::fs::read(t.own_compacted.join(real)).unwrap();
    let edited = reseal_snapshot(&bytes, |h| h["through_seq"] = through.into());
    std::fs::write(d.join(snapshot_file(through)), edited).unwrap();
}

#[test]
fn regression_frames_up_to_seq_u64_max_do_not_overflow() {
    let _s = serial();
    let m = u64::MAX;
    // The only segment starts at u64::MAX - 1 and holds the last two seqs there are.
    let seen = run_case("first segment at u64::MAX - 1", &|d: &Path| {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join(seg(1)), segment_bytes(1, m - 1, &[m - 1, m])).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(
        (r.status, r.action),
        (Status::Corrupt, Action::RefuseCorrupt),
        "{r:?}"
    );
    assert!(r.has(&seg(1), "seq_gap"), "{r:?}");
    assert_refused("open", &seen.open, "seq gap or duplicate");

    // A segment after the own journal's last one, starting near u64::MAX.
    let seen = run_case("extra segment at u64::MAX - 1", &|d: &Path| {
        let t = templates();
        copy_journal(&t.own, d);
        let next = names(d, "segment-").len() as u64 + 1;
        std::fs::write(d.join(seg(next)), segment_bytes(next, m - 1, &[m - 1, m])).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(r.status, Status::Corrupt, "{r:?}");
    assert!(r.problems.iter().any(|(_, k)| k == "seq_gap"), "{r:?}");
    assert_eq!(r.messages, own_messages(0..OWN_MESSAGES));
    assert_refused("open", &seen.open, "seq gap or duplicate");
}

/// Past a chain that reached u64::MAX nothing can follow: a segment whose header says
/// u64::MAX again (and whose frame repeats it) is a duplicate, never read as a continuation.
#[test]
fn regression_nothing_continues_a_chain_past_u64_max() {
    let _s = serial();
    let m = u64::MAX;
    let seen = run_case("a segment after seq u64::MAX", &|d: &Path| {
        std::fs::create_dir_all(d).unwrap();
        snapshot_through(d, m - 2);
        std::fs::write(d.join(seg(1)), segment_bytes(1, m - 1, &[m - 1, m])).unwrap();
        std::fs::write(d.join(seg(2)), segment_bytes(2, m, &[m])).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(
        (r.status, r.action),
        (Status::Corrupt, Action::RefuseCorrupt),
        "{r:?}"
    );
    assert!(r.has(&seg(2), "seq_duplicate"), "{r:?}");
    assert_eq!(r.last_seq, m);
    assert_refused("open", &seen.open, "seq gap or duplicate");
}

/// A snapshot through u64::MAX - 2 and a segment that continues it to u64::MAX: a clean chain
/// that reads, with no room for another seq. The writer's open panicked (`last_seq + 1`
/// overflowed); it now refuses, naming the seq.
#[test]
fn regression_a_clean_chain_ending_at_u64_max_is_refused_for_writing() {
    let _s = serial();
    let m = u64::MAX;
    let seen = run_case("chain ending at u64::MAX", &|d: &Path| {
        std::fs::create_dir_all(d).unwrap();
        snapshot_through(d, m - 2);
        std::fs::write(d.join(seg(1)), segment_bytes(1, m - 1, &[m - 1, m])).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(r.status, Status::Clean, "{r:?}");
    assert_eq!(r.last_seq, m);
    assert!(
        !matches!(seen.open, Open::Opened { .. }),
        "a writer cannot continue after u64::MAX: {:?}",
        seen.open
    );
}

#[test]
fn regression_segment_ids_near_u64_max_do_not_overflow() {
    let _s = serial();
    let m = u64::MAX;
    let seen = run_case("segment ids u64::MAX - 3 and u64::MAX", &|d: &Path| {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join(seg(m - 3)), segment_bytes(m - 3, 1, &[1, 2])).unwrap();
        std::fs::write(d.join(seg(m)), segment_bytes(m, 3, &[3])).unwrap();
    });
    let r = ro(&seen);
    assert_eq!(r.status, Status::Corrupt, "{r:?}");
    assert!(r.has(&seg(m - 2), "missing_segment"), "{r:?}");
    assert!(r.has(&seg(m - 1), "missing_segment"), "{r:?}");
    assert_refused("open", &seen.open, "seq gap or duplicate");
    assert!(
        !matches!(seen.salvage, Open::Opened { .. }),
        "no segment id is left after u64::MAX: {:?}",
        seen.salvage
    );
}

// ---------------------------------------------------------------------------------------------
// Names that look like journal files but are directories, symlinks or FIFOs.

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

/// The own journal with `name` replaced by what `make` creates there.
fn own_with(name: String, make: fn(&Path)) -> impl Fn(&Path) {
    move |d: &Path| {
        copy_journal(&templates().own, d);
        let p = d.join(&name);
        let _ = std::fs::remove_file(&p);
        make(&p);
    }
}

fn make_dir(p: &Path) {
    std::fs::create_dir(p).unwrap();
}

#[test]
fn directories_named_like_journal_files_are_reported() {
    let _s = serial();
    let t = templates();
    let last = names(&t.own, "segment-").len() as u64;
    for id in [2, last, last + 1] {
        let name = format!("directory as segment {id}");
        let seen = run_case(&name, &own_with(seg(id), make_dir));
        let r = ro(&seen);
        assert_eq!(
            (r.status, r.action),
            (Status::Corrupt, Action::FailIo),
            "{name}"
        );
        assert!(r.has(&seg(id), "io_error"), "{name}: {r:?}");
        assert!(
            matches!(&seen.open, Open::Failed(e) if e.contains(&seg(id))),
            "{name}: {:?}",
            seen.open
        );
    }
    // A directory named like a snapshot: never used, reported as ignored.
    let name = "directory as a snapshot";
    let seen = run_case(name, &own_with(snapshot_file(1000), make_dir));
    let r = ro(&seen);
    assert_eq!(r.status, Status::Clean, "{r:?}");
    assert!(
        r.ignored.iter().any(|(f, _)| *f == snapshot_file(1000)),
        "{r:?}"
    );
    assert_eq!(r.messages, own_messages(0..OWN_MESSAGES));
    assert!(matches!(seen.open, Open::Opened { .. }), "{:?}", seen.open);
}

/// Where a symlink case keeps its target: outside the journal directory.
fn elsewhere(d: &Path) -> PathBuf {
    let mut s = d.as_os_str().to_owned();
    s.push("-elsewhere");
    PathBuf::from(s).join("target")
}

/// What the target of a symlink named `name` holds: the real file's bytes for a segment.
fn target_bytes(name: &str) -> Vec<u8> {
    let real = templates().own.join(name);
    std::fs::read(real).unwrap_or_else(|_| b"not a journal file\n".to_vec())
}

/// The own journal with `name` a symlink to a copy of the real file, outside the journal.
fn symlinked(name: String) -> impl Fn(&Path) {
    move |d: &Path| {
        copy_journal(&templates().own, d);
        let tgt = elsewhere(d);
        std::fs::create_dir_all(tgt.parent().unwrap()).unwrap();
        std::fs::write(&tgt, target_bytes(&name)).unwrap();
        let _ = std::fs::remove_file(d.join(&name));
        std::os::unix::fs::symlink(&tgt, d.join(&name)).unwrap();
    }
}

/// The symlink's target is unchanged, and the name is still the symlink (or was moved aside).
fn symlink_untouched(name: &str) -> impl Fn(&Path) {
    move |d: &Path| {
        assert_eq!(
            std::fs::read(elsewhere(d)).unwrap(),
            target_bytes(name),
            "{name}: the symlink's target changed"
        );
        let link = d.join(name).symlink_metadata();
        assert!(
            link.as_ref().map_or(true, |m| m.is_symlink()),
            "{name}: the symlink was replaced: {link:?}"
        );
    }
}

#[test]
fn symlinks_named_like_segments_are_not_followed() {
    let _s = serial();
    let t = templates();
    let last = names(&t.own, "segment-").len() as u64;
    for id in [2, last] {
        let name = format!("symlink as segment {id}");
        let seen = run_case_with(&name, &symlinked(seg(id)), &symlink_untouched(&seg(id)));
        let r = ro(&seen);
        // O_NOFOLLOW: the file is not read through the link; the error names it.
        assert_eq!(
            (r.status, r.action),
            (Status::Corrupt, Action::FailIo),
            "{name}"
        );
        assert!(r.has(&seg(id), "io_error"), "{name}: {r:?}");
        assert!(
            matches!(&seen.open, Open::Failed(e) if e.contains(&seg(id))),
            "{name}: {:?}",
            seen.open
        );
        assert!(
            seen.cli
                .json
                .as_ref()
                .unwrap()
                .to_string()
                .contains(&seg(id))
        );
    }
}

#[test]
fn a_symlink_named_like_a_snapshot_is_ignored() {
    let _s = serial();
    let t = templates();
    let snap = names(&t.own_compacted, "snapshot-").pop().unwrap();
    let s2 = snap.clone();
    let build = move |d: &Path| {
        copy_journal(&t.own_compacted, d);
        let tgt = elsewhere(d);
        std::fs::create_dir_all(tgt.parent().unwrap()).unwrap();
        std::fs::rename(d.join(&s2), &tgt).unwrap();
        std::os::unix::fs::symlink(&tgt, d.join(&s2)).unwrap();
    };
    let seen = run_case("symlink as the snapshot", &build);
    let r = ro(&seen);
    assert!(
        r.ignored
            .iter()
            .any(|(f, why)| *f == snap && why.contains("read failed")),
        "{r:?}"
    );
    assert_eq!(r.snapshot, None);
    // Without it the log starts after a hole: the events it held are reported missing.
    assert_eq!(r.status, Status::Corrupt, "{r:?}");
    assert!(r.problems.iter().any(|(_, k)| k == "seq_gap"), "{r:?}");
    assert_refused("open", &seen.open, "seq gap or duplicate");
}

#[test]
fn a_symlinked_lock_file_is_not_followed() {
    let _s = serial();
    let seen = run_case_with(
        "symlink as LOCK",
        &symlinked("LOCK".into()),
        &symlink_untouched("LOCK"),
    );
    let r = ro(&seen);
    assert_eq!(r.status, Status::Clean, "readers take no lock: {r:?}");
    assert!(
        matches!(&seen.open, Open::Failed(e) if e.contains("LOCK")),
        "{:?}",
        seen.open
    );
}

fn make_fifo(p: &Path) {
    mkfifo(p);
}

#[test]
fn regression_fifos_named_like_journal_files_do_not_hang() {
    let _s = serial();
    let t = templates();
    let last = names(&t.own, "segment-").len() as u64;
    for id in [2, last, last + 1] {
        let name = format!("FIFO as segment {id}");
        let seen = run_case(&name, &own_with(seg(id), make_fifo));
        let r = ro(&seen);
        assert_eq!(
            (r.status, r.action),
            (Status::Corrupt, Action::FailIo),
            "{name}"
        );
        assert!(r.has(&seg(id), "io_error"), "{name}: {r:?}");
        assert!(
            matches!(&seen.open, Open::Failed(e) if e.contains(&seg(id))),
            "{name}: {:?}",
            seen.open
        );
    }
    let name = "FIFO as a snapshot";
    let seen = run_case(name, &own_with(snapshot_file(1000), make_fifo));
    let r = ro(&seen);
    assert_eq!(r.status, Status::Clean, "{r:?}");
    assert!(
        r.ignored.iter().any(|(f, _)| *f == snapshot_file(1000)),
        "{r:?}"
    );
    assert!(matches!(seen.open, Open::Opened { .. }), "{:?}", seen.open);

    let seen = run_case("FIFO as LOCK", &own_with("LOCK".into(), make_fifo));
    assert_eq!(ro(&seen).status, Status::Clean);
    assert!(
        matches!(&seen.open, Open::Failed(e) if e.contains("LOCK")),
        "{:?}",
        seen.open
    );
}

// ---------------------------------------------------------------------------------------------
// Random directories: files named like segments and snapshots, 0 B to 1 MiB, seeded.

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// 0 B to 1 MiB, most of them small (log-uniform), now and then exactly 1 MiB.
    fn size(&mut self) -> usize {
        if self.chance(10) {
            return 1 << 20;
        }
        let e = self.below(21);
        self.below(1 << e) as usize
    }
}

/// The seeds of this run: fixed ones, plus `TURNWAL_HOSTILE_SEED` if set.
fn seeds() -> Vec<u64> {
    let mut v: Vec<u64> = (1..=12).collect();
    if let Some(s) = std::env::var("TURNWAL_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        v.push(s);
    }
    v
}

/// Segment ids for a random directory: contiguous from 1, with gaps, or at the top of u64.
fn random_ids(rng: &mut Rng, n: usize) -> Vec<u64> {
    let mut ids = match rng.below(3) {
        0 => (1..=n as u64).collect::<Vec<_>>(),
        1 => (0..n).map(|_| 1 + rng.below(40)).collect(),
        _ => (0..n)
            .map(|i| u64::MAX - rng.below(70) * (i as u64 % 2))
            .collect(),
    };
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn random_through(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => u64::MAX - rng.below(3),
        _ => 1 + rng.below(300),
    }
}

/// A directory of pure random bytes: (name, bytes) of every file.
fn random_files(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(seed);
    let mut files = Vec::new();
    let n = 1 + rng.below(6) as usize;
    for id in random_ids(&mut rng, n) {
        let n = rng.size();
        files.push((seg(id), rng.bytes(n)));
    }
    for _ in 0..rng.below(4) {
        let through = random_through(&mut rng);
        let n = rng.size();
        files.push((snapshot_file(through), rng.bytes(n)));
    }
    files
}

/// A frame with any header fields and payload, its checksum right (so the checks behind it
/// are reached).
fn raw_frame(seq: u64, id: u64, wm: u64, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 40];
    f[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    f[8..16].copy_from_slice(&seq.to_le_bytes());
    f[16..24].copy_from_slice(&id.to_le_bytes());
    f[24..32].copy_from_slice(&wm.to_le_bytes());
    f[32] = kind;
    f[36..40].copy_from_slice(b"TWR1");
    f.extend_from_slice(payload);
    let mut h = crc32fast::Hasher::new();
    h.update(&f[4..]);
    let crc = h.finalize();
    f[..4].copy_from_slice(&crc.to_le_bytes());
    f.resize(f.len().next_multiple_of(8), 0);
    f
}

/// A segment that looks right for a while: a valid header (now and then of another session,
/// id or first seq), then valid frames, hostile frames with valid checksums (lengths and
/// counts claiming up to 64 MiB), random bytes and zero runs.
fn structured_segment(rng: &mut Rng, id: u64, first_seq: u64, size: usize) -> Vec<u8> {
    let header_id = if rng.chance(85) { id } else { 1 + rng.below(5) };
    let first = match rng.below(10) {
        0 => u64::MAX - rng.below(3),
        1 => 1 + rng.below(200),
        _ => first_seq,
    };
    let session = if rng.chance(90) { OWN } else { FOREIGN };
    let mut out = SegmentHeader {
        segment_id: header_id,
        first_seq: first,
        session_id: session,
        created_at_ms: rng.next() as i64,
    }
    .encode()
    .to_vec();
    if rng.chance(5) {
        let at = rng.below(64) as usize;
        out[at] ^= 1 << rng.below(8);
    }
    let mut seq = first;
    let mut i = 0;
    while out.len() < size {
        i += 1;
        match rng.below(10) {
            0..=4 => {
                let wm = if rng.chance(80) {
                    seq.saturating_sub(1)
                } else {
                    rng.below(seq.max(1))
                };
                let e = if seq == 1 {
                    own_session_event()
                } else {
                    msg_event(i)
                };
                if seq >= 1 && wm < seq {
                    frame(seq, header_id, wm, &e, &mut out);
                }
                seq = if rng.chance(90) {
                    seq.saturating_add(1)
                } else {
                    1 + rng.below(300)
                };
            }
            5 => {
                // Bincode claims: a string or list length of up to 64 MiB in a tiny payload.
                let mut p = vec![0u8, 0, 9, 253];
                p.extend_from_slice(&(rng.below(64 << 20)).to_le_bytes());
                let tail = rng.below(64) as usize;
                p.extend(rng.bytes(tail));
                let kind = 1 + rng.below(10) as u8;
                out.extend(raw_frame(seq.max(1), header_id, 0, kind, &p));
            }
            6 => {
                let n = 1 + rng.below(300) as usize;
                let payload = rng.bytes(n);
                let kind = rng.below(12) as u8;
                out.extend(raw_frame(
                    rng.next().max(1),
                    header_id,
                    rng.next(),
                    kind,
                    &payload,
                ));
            }
            7 => {
                let n = rng.below(5000) as usize;
                out.resize(out.len() + n, 0);
            }
            _ => {
                let n = rng.below(2000) as usize;
                out.extend(rng.bytes(n));
            }
        }
    }
    out.truncate(size.max(if rng.chance(50) { out.len() } else { 0 }));
    out
}

/// A snapshot that looks right for a while: a header of either session with any
/// `through_seq`, envelope lines of the own journal, garbage lines, deep nesting, and a
/// trailer with the right checksum (mostly) and any record count, up to u64::MAX.
fn structured_snapshot(rng: &mut Rng, through: u64, size: usize, pool: &[String]) -> Vec<u8> {
    let session = if rng.chance(85) { OWN } else { FOREIGN };
    let mut body = format!(
        "{{\"format\":\"turnwal-snapshot\",\"version\":{},\"session\":\"{session}\",\"through_seq\":{through},\"created_at\":\"2026-01-01T00:00:00.000Z\"}}\n",
        if rng.chance(95) { 1 } else { rng.below(5) }
    );
    let mut records = 0u64;
    while body.len() < size {
        match rng.below(10) {
            0..=6 => {
                let k = if records == 0 && rng.chance(80) {
                    0
                } else {
                    rng.below(pool.len() as u64) as usize
                };
                body.push_str(&pool[k]);
                records += 1;
            }
            7 => {
                let depth = rng.below(100_000) as usize;
                body.push_str(&"[".repeat(depth));
                body.push('\n');
            }
            8 => {
                let n = rng.below(3000) as usize;
                body.push_str(&format!(
                    "{{\"seq\":{},\"x\":\"{}\"}}\n",
                    rng.next(),
                    "y".repeat(n)
                ));
            }
            _ => {
                let n = rng.below(500) as usize;
                let junk: String = rng
                    .bytes(n)
                    .iter()
                    .map(|&b| char::from(b'a' + b % 26))
                    .collect();
                body.push_str(&junk);
                body.push('\n');
            }
        }
    }
    let claimed = match rng.below(5) {
        0 => 1 << 24,
        1 => u64::MAX,
        2 => rng.next() >> rng.below(64),
        _ => records,
    };
    let crc = if rng.chance(85) {
        crc32fast::hash(body.as_bytes())
    } else {
        rng.next() as u32
    };
    body.push_str(&format!(
        "{{\"trailer\":{{\"records\":{claimed},\"crc32\":{crc}}}}}\n"
    ));
    let mut bytes = body.into_bytes();
    if rng.chance(10) {
        let cut = rng.below(bytes.len() as u64) as usize;
        bytes.truncate(cut);
    }
    bytes
}

/// Envelope lines of the own journal's snapshot (the session event first).
fn envelope_pool() -> Vec<String> {
    let t = templates();
    let snap = names(&t.own_compacted, "snapshot-").pop().unwrap();
    let text = std::fs::read_to_string(t.own_compacted.join(snap)).unwrap();
    let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    lines[1..lines.len() - 1].to_vec()
}

fn structured_files(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(seed ^ 0xA5A5_A5A5_A5A5_A5A5);
    let pool = envelope_pool();
    let mut files = Vec::new();
    let mut first_seq = 1 + if rng.chance(30) { rng.below(100) } else { 0 };
    let n = 1 + rng.below(6) as usize;
    for id in random_ids(&mut rng, n) {
        let size = rng.size();
        files.push((seg(id), structured_segment(&mut rng, id, first_seq, size)));
        first_seq = first_seq.saturating_add(rng.below(50));
    }
    for _ in 0..rng.below(4) {
        let through = random_through(&mut rng);
        let size = rng.size().min(256 << 10);
        files.push((
            snapshot_file(through),
            structured_snapshot(&mut rng, through, size, &pool),
        ));
    }
    files
}

fn write_files(d: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(d).unwrap();
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
}

#[test]
fn random_bytes_named_like_journal_files_are_reported_as_corrupt() {
    let _s = serial();
    for seed in seeds() {
        let files = random_files(seed);
        let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
        let name = format!(
            "random bytes, seed {seed} ({} files, {bytes} bytes)",
            files.len()
        );
        eprintln!("hostile: {name}: TURNWAL_HOSTILE_SEED={seed}");
        let seen = run_case(&name, &|d: &Path| write_files(d, &files));
        let r = ro(&seen);
        // No header of random bytes validates: every segment is a bad header, every
        // snapshot is ignored, nothing is read, and nothing may be written.
        assert_eq!(
            (r.status, r.action),
            (Status::Corrupt, Action::RefuseCorrupt),
            "{name}"
        );
        for (file, _) in files.iter().filter(|(f, _)| f.starts_with("segment-")) {
            assert!(r.has(file, "bad_segment_header"), "{name}: {file}: {r:?}");
            assert!(
                r.stops.contains(&(file.clone(), "bad_header".into())),
                "{name}: {file}: {r:?}"
            );
        }
        for (file, _) in files.iter().filter(|(f, _)| f.starts_with("snapshot-")) {
            assert!(
                r.ignored.iter().any(|(f, _)| f == file),
                "{name}: {file}: {r:?}"
            );
        }
        assert!(r.messages.is_empty(), "{name}");
        assert_refused(&name, &seen.open, "bad segment header");
        assert!(
            matches!(&seen.salvage, Open::Failed(e) if e.contains("nothing valid to salvage")),
            "{name}: {:?}",
            seen.salvage
        );
    }
}

#[test]
fn structured_garbage_named_like_journal_files_is_reported() {
    let _s = serial();
    for seed in seeds() {
        let files = structured_files(seed);
        let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
        let name = format!(
            "structured garbage, seed {seed} ({} files, {bytes} bytes)",
            files.len()
        );
        eprintln!("hostile: {name}: TURNWAL_HOSTILE_SEED={seed}");
        let seen = run_case(&name, &|d: &Path| write_files(d, &files));
        // Whatever it holds, a read-only open reports every segment it scanned, and a writer
        // opens only what reads clean or with a cut torn tail.
        if let Ok(r) = &seen.ro {
            if r.status == Status::Clean {
                assert!(r.problems.is_empty(), "{name}: {r:?}");
            } else {
                assert!(!r.problems.is_empty(), "{name}: {r:?}");
            }
            if let Open::Opened {
                status,
                cut_applied,
                ..
            } = &seen.open
            {
                assert_ne!(
                    r.status,
                    Status::Corrupt,
                    "{name}: opened what reads corrupt"
                );
                assert_eq!(*cut_applied, *status == Status::TornTail, "{name}");
            }
        }
    }
}
