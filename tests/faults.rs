//! The worst days: a full disk (simulated, and a real size-limited tmpfs this test mounts), a
//! failing fsync, a short write. Each gives a clear error; everything acknowledged before it
//! survives, also a power cut; after space is freed, reopening continues with no gap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use turnwal::storage::sim::{Cut, DirCut, Fault, FileCut, SimFs};
use turnwal::{CompactionPolicy, Error, Journal, Options, SyncPolicy, WriterOptions};

fn message(i: usize, size: usize) -> String {
    format!(
        r#"{{"kind":"message","turn":1,"body":{{"id":"m{i}","role":"user","parts":[{{"type":"text","text":"{}"}}]}}}}"#,
        "d".repeat(size)
    )
}

fn sim_opts(fs: &SimFs, sync: SyncPolicy) -> Options {
    Options {
        sync,
        storage: Arc::new(fs.clone()),
        compaction: CompactionPolicy::manual(),
        writer: WriterOptions {
            segment_bytes_max: 16 * 1024,
            prewrite_bytes: 4096,
            ..WriterOptions::default()
        },
        ..Options::default()
    }
}

/// The message ids a journal on `fs` holds, read-only.
fn ids(fs: &SimFs, dir: &str) -> Vec<String> {
    let ro = Journal::open_read_only(dir, &sim_opts(fs, SyncPolicy::Always)).unwrap();
    ro.session.messages.iter().map(|m| m.id.clone()).collect()
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

/// The power cuts that lose the most: unsynced data dropped, and torn.
fn harsh_cuts() -> [Cut; 2] {
    [
        Cut::new(FileCut::DropUnsynced, DirCut::DropPending),
        Cut::new(FileCut::TornLastWrite, DirCut::KeepAll),
    ]
}

/// `ENOSPC` on a write: the append fails with a disk-full error, later calls are refused as
/// poisoned (still disk-full), nothing of the refused event is stored, every acknowledged event
/// survives a power cut, and a reopen (the space is back: the fault is one-shot) continues at
/// the next seq.
#[test]
fn simulated_disk_full_refuses_the_append_and_a_reopen_continues_with_no_gap() {
    for (when, short) in [(0, false), (3, false), (0, true)] {
        let fs = SimFs::new();
        fs.create_dir_all_durable("/j").unwrap();
        let (j, _) = Journal::open("/j", sim_opts(&fs, SyncPolicy::Always)).unwrap();
        for i in 0..20 {
            j.append_json(&message(i, 300)).unwrap();
        }
        let acked = j.last_seq();
        let fault = if short {
            Fault::ShortWrite {
                nth_write: fs.writes() + when,
            }
        } else {
            Fault::Enospc {
                nth_write: fs.writes() + when,
            }
        };
        fs.inject(fault);
        let mut n = 20;
        let err = loop {
            match j.append_json(&message(n, 300)) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        let ctx = format!("{fault:?}");
        assert!(err.is_disk_full(), "{ctx}: {err}");
        assert!(err.to_string().contains("disk full"), "{ctx}: {err}");
        let again = j.append_json(&message(999, 10)).unwrap_err();
        assert!(
            matches!(
                &again,
                Error::Journal(turnwal_journal::Error::Poisoned {
                    disk_full: true,
                    ..
                })
            ),
            "{ctx}: {again}"
        );
        assert!(j.sync().is_err(), "{ctx}: a failed write is never retried");
        drop(j);
        // Every acknowledged event survives the harshest power cuts.
        for cut in harsh_cuts() {
            let after = fs.power_cut(cut, 7);
            assert_eq!(ids(&after, "/j"), expected(n), "{ctx}, {cut}");
        }
        // Space is back: a reopen keeps exactly what was acknowledged and continues after it.
        let (j, report) = Journal::open("/j", sim_opts(&fs, SyncPolicy::Always)).unwrap();
        assert_eq!(report.last_seq, acked + (n - 20) as u64, "{ctx}");
        assert_eq!(
            j.append_json(&message(n, 300)).unwrap(),
            report.last_seq + 1
        );
        j.close().unwrap();
        assert_eq!(ids(&fs, "/j"), expected(n + 1), "{ctx}");
    }
}

/// `EIO` from fsync (the kernel dropped the dirty pages): every waiter of the batch gets the
/// error before a deadline, later calls are `Poisoned`, and a reopen after a power cut holds
/// every event acknowledged before the failure.
#[test]
fn simulated_fsync_eio_fails_every_waiter_and_reopen_recovers_every_acknowledged_event() {
    let fs = SimFs::new();
    fs.create_dir_all_durable("/j").unwrap();
    let (j, _) = Journal::open("/j", sim_opts(&fs, SyncPolicy::Always)).unwrap();
    for i in 0..10 {
        j.append_json(&message(i, 100)).unwrap();
    }
    fs.inject(Fault::SyncEio {
        nth_sync: fs.data_syncs(),
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (j, tx) = (&j, tx.clone());
            s.spawn(move || {
                tx.send(j.append_json(&message(100 + t, 100))).unwrap();
            });
        }
        drop(tx);
        let mut failed = 0;
        for _ in 0..8 {
            let r = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("a waiter hung after a failed fsync");
            // A waiter whose event an earlier, successful sync covered may succeed; none may
            // succeed once the failing sync was its own.
            failed += usize::from(r.is_err());
        }
        assert!(failed >= 1, "the failed fsync reached no waiter");
    });
    assert!(matches!(
        j.append_json(&message(200, 10)),
        Err(Error::Journal(turnwal_journal::Error::Poisoned {
            disk_full: false,
            ..
        }))
    ));
    let durable = j.durable_seq();
    drop(j);
    for cut in harsh_cuts() {
        let after = fs.power_cut(cut, 11);
        let ro = Journal::open_read_only("/j", &sim_opts(&after, SyncPolicy::Always)).unwrap();
        assert!(
            ro.report.last_seq >= durable,
            "{cut}: {} < {durable}",
            ro.report.last_seq
        );
        let first: Vec<String> = ro.session.messages[..10]
            .iter()
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(first, expected(10), "{cut}");
        let (j, _) = Journal::open("/j", sim_opts(&after, SyncPolicy::Always)).unwrap();
        j.append_json(&message(300, 10)).unwrap();
        j.close().unwrap();
    }
}

/// A size-limited tmpfs mounted for this test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, bytes: u64) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(at)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test mounts a size-limited tmpfs to fill a real disk, which needs root (or \
             CAP_SYS_ADMIN), as CI has: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A real full disk: a 2 MiB tmpfs, a filler file, and a writer appending until the disk is
/// full. The append fails with a disk-full error; every acknowledged event is on disk; after
/// the filler is removed, a reopen continues at the next seq with no gap. Then the same through
/// the command line: `turnwal append` stops with an error saying the disk is full.
#[test]
fn real_disk_full_on_a_small_tmpfs() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = Mount::tmpfs(&tmp.path().join("mnt"), 2 << 20);
    let filler = mnt.0.join("filler");
    std::fs::write(&filler, vec![1u8; 512 << 10]).unwrap();
    let dir = mnt.0.join("j");
    let opts = || Options {
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        writer: WriterOptions {
            segment_bytes_max: 256 << 10,
            prewrite_bytes: 64 << 10,
            ..WriterOptions::default()
        },
        ..Options::default()
    };
    let (j, _) = Journal::open(&dir, opts()).unwrap();
    let mut n = 0;
    let err = loop {
        match j.append_json(&message(n, 4000)) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 10_000, "a 2 MiB disk never filled");
    };
    assert!(err.is_disk_full(), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(n > 100, "only {n} events fitted");
    drop(j);
    // Every acknowledged event is on disk, and nothing else: the refused one may be there
    // whole (tmpfs wrote the record, then failed on the pre-written zeros after it), as an
    // unacknowledged write may, but nothing invented and no gap (I1, I3).
    let ro = Journal::open_read_only(&dir, &opts()).unwrap();
    let got: Vec<String> = ro.session.messages.iter().map(|m| m.id.clone()).collect();
    assert!(
        got == expected(n) || got == expected(n + 1),
        "acknowledged {n}, on disk {}",
        got.len()
    );

    std::fs::remove_file(&filler).unwrap();
    let (j, report) = Journal::open(&dir, opts()).unwrap();
    assert_eq!(report.last_seq, ro.report.last_seq);
    assert_eq!(
        j.append_json(&message(9999, 4000)).unwrap(),
        report.last_seq + 1,
        "no gap"
    );
    j.close().unwrap();
    eprintln!("disk-full: {n} events of 4 KB filled a 2 MiB tmpfs; reopened after freeing 512 KiB");

    // The command line says so too, and exits non-zero.
    let small = Mount::tmpfs(&tmp.path().join("mnt-cli"), 4 << 20);
    let lines: String = (0..1000).map(|i| message(i, 4000) + "\n").collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .arg("append")
        .arg(small.0.join("cli"))
        .args(["--sync", "always"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(lines.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("disk full"), "{stderr}");
    assert!(
        stderr.contains("line "),
        "the error names the line: {stderr}"
    );
}
