//! Criterion benches of the engine's own paths. The side-by-side comparison with peers is issue
//! 6 (BENCHMARKS.md).
//!
//! - `append`: one append from one thread, until it returns. Ids `append/<policy>/<record>`:
//!   policy `always` (the append includes its `fdatasync`), `batch` (the default, 5 ms / 1 MiB,
//!   synced in the background) or `never` (in the kernel only); record `delta_100b`,
//!   `message_1k` or `message_16k` appended pre-parsed (`Journal::append(&Event)`), and
//!   `message_1k_json` through `Journal::append_json` (parse included). Sizes are envelope bytes
//!   (the smallest delta envelope is 85 B; this one carries a 14-character fragment);
//!   throughput in envelope bytes.
//! - `group_commit`: durable appends (`always`, 1 KiB messages) from 1, 4 or 16 threads sharing
//!   one journal, so concurrent appenders share `fdatasync`s (`group_commit/<n>_threads`).
//!   Throughput in appends of all threads together, over the wall time from the threads' start
//!   to the last one's end. Prints the appends per `fdatasync`.
//! - `replay`: opening a 20 000-message session (about 21 MB), read-only (scan, fold,
//!   materialise: `replay/open_read_only/...`) and as the writer (lock, replay, resume the
//!   active segment, ready to append: `replay/open/...`), from its segments (`.../segments`)
//!   and, after `compact()`, from its snapshot (`.../snapshot`). Throughput in messages.
//! - `compact`: one whole compaction of that session (`compact/compact_20k_messages`); prints
//!   how long appends were held (median and range).
//!
//! Every journal lives in a scratch directory with compaction off (`CompactionPolicy::manual()`),
//! so no background compaction runs beside a bench. Append benches start a fresh journal for
//! each sample, outside the timing, so memory and disk follow one sample, not the whole run.
//! Sample counts and times are set per group so the whole run takes a few minutes on 2 cores;
//! `cargo bench --bench journal -- --test` runs every bench once.
#![expect(
    clippy::expect_used,
    reason = "a bench harness should abort on a failed setup or append"
)]

mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use turnwal::{Journal, Options, SyncPolicy};

/// Envelope sizes of the appended records.
const DELTA_BYTES: usize = 100;
const MESSAGE_BYTES: usize = 1024;
const LARGE_MESSAGE_BYTES: usize = 16 * 1024;

/// Messages in the session the replay and compaction benches open and fold.
const SESSION_MESSAGES: usize = 20_000;

/// Appends `iters` times to a fresh journal under `sync` and returns the time the appends took
/// (opening and closing the journal are not timed).
fn timed_appends(
    sync: SyncPolicy,
    iters: u64,
    mut append: impl FnMut(&Journal) -> turnwal::Result<u64>,
) -> Duration {
    let (_tmp, journal) = common::fresh(sync);
    let start = Instant::now();
    for _ in 0..iters {
        black_box(append(&journal).expect("append"));
    }
    let elapsed = start.elapsed();
    journal.close().expect("close");
    elapsed
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let delta = common::delta("a1", DELTA_BYTES);
    let message = common::message("m1", 1, MESSAGE_BYTES);
    let large = common::message("m2", 1, LARGE_MESSAGE_BYTES);
    for (policy, sync) in common::policies() {
        for (record, line) in [
            ("delta_100b", &delta),
            ("message_1k", &message),
            ("message_16k", &large),
        ] {
            let event = common::event(line);
            g.throughput(Throughput::Bytes(line.len() as u64));
            g.bench_function(BenchmarkId::new(policy, record), |b| {
                b.iter_custom(|iters| timed_appends(sync, iters, |j| j.append(black_box(&event))))
            });
        }
        g.throughput(Throughput::Bytes(message.len() as u64));
        g.bench_function(BenchmarkId::new(policy, "message_1k_json"), |b| {
            b.iter_custom(|iters| {
                timed_appends(sync, iters, |j| j.append_json(black_box(&message)))
            })
        });
    }
    g.finish();
}

/// Durable appends from several threads sharing one journal: the group commit.
fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let mut shared = Vec::new();
    for threads in [1_usize, 4, 16] {
        // One message id per thread, each appended again and again (a later message with the
        // same id supersedes the earlier one).
        let events: Vec<_> = (0..threads)
            .map(|k| common::event(&common::message(&format!("t{k}"), 1, MESSAGE_BYTES)))
            .collect();
        let (mut appends, mut syncs) = (0_u64, 0_u64);
        g.bench_function(
            BenchmarkId::from_parameter(format!("{threads}_threads")),
            |b| {
                b.iter_custom(|iters| {
                    let (_tmp, journal) = common::fresh(SyncPolicy::Always);
                    let syncs_before = journal.sync_count();
                    let start_line = Barrier::new(threads + 1);
                    let n = threads as u64;
                    let elapsed = thread::scope(|s| {
                        let handles: Vec<_> = events
                            .iter()
                            .zip(0_u64..)
                            .map(|(event, k)| {
                                let share = iters / n + u64::from(k < iters % n);
                                let (journal, start_line) = (&journal, &start_line);
                                s.spawn(move || {
                                    start_line.wait();
                                    for _ in 0..share {
                                        black_box(journal.append(event).expect("append"));
                                    }
                                })
                            })
                            .collect();
                        start_line.wait();
                        let start = Instant::now();
                        for h in handles {
                            h.join().expect("appender thread");
                        }
                        start.elapsed()
                    });
                    appends += iters;
                    syncs += journal.sync_count() - syncs_before;
                    journal.close().expect("close");
                    elapsed
                })
            },
        );
        shared.push((threads, appends, syncs));
    }
    g.finish();
    for (threads, appends, syncs) in shared {
        println!(
            "group_commit/{threads}_threads: {:.1} appends per fdatasync ({appends} appends, {syncs} syncs)",
            appends as f64 / syncs.max(1) as f64
        );
    }
}

/// Checks what a replay bench is about to open: every message, and a snapshot or not.
fn check_session(dir: &Path, from_snapshot: bool) {
    let read = Journal::open_read_only(dir, &Options::default()).expect("read");
    assert_eq!(
        read.session.messages.len(),
        SESSION_MESSAGES,
        "every message"
    );
    assert_eq!(
        read.report.snapshot.is_some(),
        from_snapshot,
        "snapshot or not"
    );
}

/// Opening `dir` read-only: scan, fold, materialise. The result is dropped untimed.
fn bench_open_read_only(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, dir: &Path) {
    g.bench_function(id, |b| {
        b.iter_batched(
            || (),
            |()| Journal::open_read_only(dir, &Options::default()).expect("read"),
            BatchSize::PerIteration,
        )
    });
}

/// Opening `dir` as the writer, ready to append (under the default sync policy). Closing is
/// not timed.
fn bench_open_writer(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, dir: &Path) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (journal, report) =
                    Journal::open(dir, common::options(SyncPolicy::default())).expect("open");
                total += start.elapsed();
                black_box(report);
                journal.close().expect("close");
            }
            total
        })
    });
}

fn replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(SESSION_MESSAGES as u64));
    let tmp = common::recorded_session(SESSION_MESSAGES);
    check_session(tmp.path(), false);
    bench_open_read_only(&mut g, "open_read_only/segments", tmp.path());
    bench_open_writer(&mut g, "open/segments", tmp.path());
    // The same session, compacted: one JSONL snapshot, bodies kept as raw text.
    let (journal, _) = Journal::open(tmp.path(), common::options(SyncPolicy::Never)).expect("open");
    journal.compact().expect("compact");
    journal.close().expect("close");
    check_session(tmp.path(), true);
    bench_open_read_only(&mut g, "open_read_only/snapshot", tmp.path());
    bench_open_writer(&mut g, "open/snapshot", tmp.path());
    g.finish();
}

/// A whole compaction of a 20k-message session (about 21 MB), and how long appends were held.
fn compact(c: &mut Criterion) {
    let mut g = c.benchmark_group("compact");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(SESSION_MESSAGES as u64));
    let mut holds = Vec::new();
    g.bench_function("compact_20k_messages", |b| {
        b.iter_batched(
            || {
                let (tmp, journal) = common::fresh(SyncPolicy::Never);
                common::append_messages(&journal, SESSION_MESSAGES);
                (tmp, journal)
            },
            |(tmp, journal)| {
                let r = journal.compact().expect("compact");
                holds.push(r.hold_us);
                (tmp, journal)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    holds.sort_unstable();
    if let (Some(min), Some(max)) = (holds.first(), holds.last()) {
        println!(
            "compact/compact_20k_messages: appends held {} us median ({min}..{max} us, {} runs)",
            holds[holds.len() / 2],
            holds.len()
        );
    }
}

criterion_group!(benches, append, group_commit, replay, compact);
criterion_main!(benches);
