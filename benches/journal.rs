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
    g.finish();
}

criterion_group!(benches, append, replay);
criterion_main!(benches);
