//! Criterion benches of the engine's own paths: append per policy, and replay.
//! The side-by-side comparison with peers is issue 6 (BENCHMARKS.md).
#![expect(
    clippy::expect_used,
    reason = "a bench harness should abort on a failed setup or append"
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use turnwal::{Journal, Options, SyncPolicy};

fn message(i: usize) -> String {
    let text = "lorem ipsum dolor sit amet ".repeat(36); // ~1 KB, a typical chat message
    format!(
        r#"{{"kind":"message","turn":{},"body":{{"id":"m{i}","role":"assistant","parts":[{{"type":"text","text":"{text}"}}]}}}}"#,
        i / 8
    )
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_1k");
    g.throughput(Throughput::Elements(1));
    for (name, sync) in [
        ("always", SyncPolicy::Always),
        ("batch", SyncPolicy::default()),
        ("never", SyncPolicy::Never),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (j, _) = Journal::open(
            tmp.path(),
            Options {
                sync,
                ..Options::default()
            },
        )
        .expect("open");
        let line = message(1);
        let event = turnwal::Event::from_envelope(&line, 0).expect("valid");
        g.bench_function(name, |b| {
            b.iter(|| j.append(black_box(&event)).expect("append"))
        });
        j.close().expect("close");
    }
    g.finish();
}

fn replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    let n = 20_000;
    g.throughput(Throughput::Elements(n as u64));
    let tmp = tempfile::tempdir().expect("tempdir");
    let (j, _) = Journal::open(
        tmp.path(),
        Options {
            sync: SyncPolicy::Never,
            ..Options::default()
        },
    )
    .expect("open");
    for i in 0..n {
        j.append_json(&message(i)).expect("append");
    }
    j.close().expect("close");
    g.bench_function("open_read_only_20k_messages", |b| {
        b.iter_batched(
            || (),
            |()| Journal::open_read_only(tmp.path(), &Options::default()).expect("read"),
            BatchSize::PerIteration,
        )
    });
    // The same session, compacted: one JSONL snapshot, bodies kept as raw text.
    let (j, _) = Journal::open(tmp.path(), manual(SyncPolicy::Never)).expect("open");
    j.compact().expect("compact");
    j.close().expect("close");
    g.bench_function("open_read_only_20k_messages_from_snapshot", |b| {
        b.iter_batched(
            || (),
            |()| Journal::open_read_only(tmp.path(), &Options::default()).expect("read"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn manual(sync: SyncPolicy) -> Options {
    Options {
        sync,
        compaction: turnwal::CompactionPolicy::manual(),
        ..Options::default()
    }
}

/// A whole compaction of a 20k-message session (about 21 MB), and how long appends were held.
fn compact(c: &mut Criterion) {
    let mut g = c.benchmark_group("compact");
    g.sample_size(10);
    let n = 20_000;
    g.throughput(Throughput::Elements(n as u64));
    let mut holds = Vec::new();
    g.bench_function("compact_20k_messages", |b| {
        b.iter_batched(
            || {
                let tmp = tempfile::tempdir().expect("tempdir");
                let (j, _) = Journal::open(tmp.path(), manual(SyncPolicy::Never)).expect("open");
                for i in 0..n {
                    j.append_json(&message(i)).expect("append");
                }
                (tmp, j)
            },
            |(tmp, j)| {
                let r = j.compact().expect("compact");
                holds.push(r.hold_us);
                (tmp, j)
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

criterion_group!(benches, append, replay, compact);
criterion_main!(benches);
