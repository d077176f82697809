//! The simulated storage keeps its model: what is synced survives every cut, what is not may be
//! lost only in the ways each cut allows, faults and crashes do what they say, and everything is
//! deterministic. Two property tests check every cut against an independent reference model.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure must fail loudly"
)]
#![cfg(feature = "sim")]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use turnwal_journal::storage::sim::{Cut, DirCut, Fault, FileCut, PAGE_BYTES, SECTOR_BYTES, SimFs};
use turnwal_journal::storage::{OpenMode, ReadMode, RealFs, Storage, StorageFile};

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A file at `path` with `bytes` durable (data, and its entry in a durable directory).
fn durable_file(fs: &SimFs, path: &str, bytes: &[u8]) -> Box<dyn StorageFile> {
    let path = p(path);
    fs.create_dir_all_durable(path.parent().unwrap()).unwrap();
    let f = fs.open(path, OpenMode::CreateNew).unwrap();
    f.write_at(0, bytes).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(path.parent().unwrap()).unwrap();
    f
}

fn cuts_except_keep_all() -> impl Iterator<Item = Cut> {
    Cut::all()
        .into_iter()
        .filter(|c| *c != Cut::process_crash())
}

fn raw(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

#[test]
fn cut_all_lists_every_pair_once_and_displays() {
    let all = Cut::all();
    assert_eq!(all.len(), 6 * 4 + 1);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
    assert!(all.contains(&Cut::process_crash()));
    assert!(
        all.iter()
            .filter(|c| c.file == FileCut::KeepAll)
            .all(|c| c.dir == DirCut::KeepAll)
    );
    assert!(all.contains(&Cut::new(FileCut::DropUnsynced, DirCut::KeepAll)));
    let shown = Cut::new(FileCut::TornLastWrite, DirCut::KeepSubset).to_string();
    assert!(
        shown.contains("TornLastWrite") && shown.contains("KeepSubset"),
        "{shown}"
    );
    assert!(Cut::process_crash().to_string().contains("process crash"));
}

#[test]
fn synced_data_survives_every_cut() {
    let fs = SimFs::new();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let f = durable_file(&fs, "/j/seg", &data);
    drop(f);
    for cut in Cut::all() {
        for seed in 0..8 {
            let after = fs.power_cut(cut, seed);
            assert_eq!(
                after.read("/j/seg").as_deref(),
                Some(&data[..]),
                "{cut} {seed}"
            );
            assert_eq!(after.files("/j"), vec!["seg".to_string()]);
        }
    }
}

#[test]
fn unsynced_data_never_survives_drop_unsynced() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", b"durable");
    f.write_at(3, b"LIVE-AND-LONGER").unwrap();
    f.set_len(9000).unwrap();
    f.write_at(20_000, b"far").unwrap();
    assert_eq!(fs.unsynced_files(), 1);
    for dir in DirCut::ALL {
        for seed in 0..16 {
            let after = fs.power_cut(Cut::new(FileCut::DropUnsynced, dir), seed);
            assert_eq!(after.read("/j/seg").unwrap(), b"durable");
            assert_eq!(after.unsynced_files(), 0);
            assert_eq!(after.ops(), 0);
        }
    }
    // and the process crash keeps it all
    let after = fs.power_cut(Cut::process_crash(), 0);
    assert_eq!(after.read("/j/seg"), fs.read("/j/seg"));
}

#[test]
fn keep_prefix_is_a_prefix_of_the_unsynced_operations() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", &[b'.'; 100]);
    let writes: [(u64, &[u8]); 4] = [(0, b"AAAA"), (2, b"BBBB"), (200, b"CC"), (1, b"D")];
    let mut states = vec![b"....".repeat(25)];
    let mut model = states[0].clone();
    for (off, bytes) in writes {
        f.write_at(off, bytes).unwrap();
        let end = off as usize + bytes.len();
        if model.len() < end {
            model.resize(end, 0);
        }
        model[off as usize..end].copy_from_slice(bytes);
        states.push(model.clone());
    }
    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        let got = fs
            .power_cut(Cut::new(FileCut::KeepPrefix, DirCut::DropPending), seed)
            .read("/j/seg")
            .unwrap();
        let k = states
            .iter()
            .position(|s| *s == got)
            .unwrap_or_else(|| panic!("seed {seed}: not a prefix: {got:?}"));
        seen.insert(k);
    }
    assert_eq!(seen.len(), states.len(), "every prefix length occurs");
}

#[test]
fn torn_last_write_is_sector_aligned() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", &[0xAA; 8192]);
    f.write_at(10, b"first").unwrap(); // kept whole: not the last
    f.write_at(700, &[0xBB; 3000]).unwrap();
    let allowed: BTreeSet<usize> = [700, 1024, 1536, 2048, 2560, 3072, 3584, 3700]
        .into_iter()
        .collect();
    let mut seen = BTreeSet::new();
    for seed in 0..300 {
        let got = fs
            .power_cut(Cut::new(FileCut::TornLastWrite, DirCut::KeepAll), seed)
            .read("/j/seg")
            .unwrap();
        assert_eq!(got.len(), 8192);
        assert_eq!(&got[10..15], b"first");
        let end = (700..3700).find(|i| got[*i] != 0xBB).unwrap_or(3700);
        assert!(allowed.contains(&end), "seed {seed}: torn at {end}");
        assert!(got[end..].iter().all(|b| *b == 0xAA) && got[..10].iter().all(|b| *b == 0xAA));
        seen.insert(end);
    }
    assert_eq!(seen, allowed, "every sector boundary, none and all occur");
}

#[test]
fn keep_pages_takes_whole_pages() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", &[0u8; 3 * PAGE_BYTES]);
    let live: Vec<u8> = (0..5 * PAGE_BYTES).map(|i| (i % 251) as u8 + 1).collect();
    f.write_at(0, &live).unwrap();
    let mut sizes = BTreeSet::new();
    let mut mixed = false;
    for seed in 0..64 {
        let got = fs
            .power_cut(Cut::new(FileCut::KeepPages, DirCut::DropPending), seed)
            .read("/j/seg")
            .unwrap();
        sizes.insert(got.len());
        let mut kinds = BTreeSet::new();
        for (i, page) in got.chunks(PAGE_BYTES).enumerate() {
            let new = &live[i * PAGE_BYTES..(i + 1) * PAGE_BYTES];
            if page == new {
                kinds.insert("new");
            } else {
                assert!(
                    page.iter().all(|b| *b == 0),
                    "seed {seed} page {i} is mixed"
                );
                kinds.insert("old");
            }
        }
        mixed |= kinds.len() == 2;
        if got.len() == 3 * PAGE_BYTES {
            // no page beyond the durable size was kept
        } else {
            assert_eq!(got.len(), 5 * PAGE_BYTES);
        }
    }
    assert!(mixed, "some cut mixes old and new pages");
    assert_eq!(sizes.len(), 2, "both sizes occur: {sizes:?}");
}

#[test]
fn garbage_only_in_differing_sectors() {
    let setup = |powersafe: bool| {
        let fs = SimFs::new();
        fs.set_powersafe_overwrite(powersafe);
        let f = durable_file(&fs, "/j/seg", &[0x11; 4 * SECTOR_BYTES]);
        f.write_at(SECTOR_BYTES as u64 + 7, &[0x22; 100]).unwrap();
        f.write_at(3 * SECTOR_BYTES as u64, &[0x33; SECTOR_BYTES])
            .unwrap();
        fs
    };
    for powersafe in [true, false] {
        let fs = setup(powersafe);
        let old = fs.durable("/j/seg").unwrap();
        let live = fs.read("/j/seg").unwrap();
        let (mut saw_garbage, mut saw_unchanged_scrambled) = (false, false);
        for seed in 0..64 {
            let got = fs
                .power_cut(Cut::new(FileCut::Garbage, DirCut::KeepPrefix), seed)
                .read("/j/seg")
                .unwrap();
            assert_eq!(got.len(), old.len());
            for s in [0, 2] {
                let r = s * SECTOR_BYTES..(s + 1) * SECTOR_BYTES;
                assert_eq!(
                    got[r.clone()],
                    old[r],
                    "seed {seed}: sector {s} did not change"
                );
            }
            for s in [1, 3] {
                let r = s * SECTOR_BYTES..(s + 1) * SECTOR_BYTES;
                saw_garbage |= got[r.clone()] != old[r.clone()] && got[r.clone()] != live[r];
            }
            // bytes of sector 1 the write did not touch
            let untouched = (SECTOR_BYTES..2 * SECTOR_BYTES).filter(|i| old[*i] == live[*i]);
            let scrambled = untouched.clone().any(|i| got[i] != old[i]);
            assert!(
                !powersafe || !scrambled,
                "seed {seed}: powersafe overwrite broken"
            );
            saw_unchanged_scrambled |= scrambled;
        }
        assert!(saw_garbage);
        assert_eq!(saw_unchanged_scrambled, !powersafe);
        // the setting survives a cut
        let fs = setup(powersafe).power_cut(Cut::process_crash(), 0);
        let f = fs.open(p("/j/seg"), OpenMode::ReadWrite).unwrap();
        f.write_at(0, &[0x44; 10]).unwrap();
        let scrambled = (0..64).any(|seed| {
            let got = fs
                .power_cut(Cut::new(FileCut::Garbage, DirCut::KeepAll), seed)
                .read("/j/seg")
                .unwrap();
            got[10..SECTOR_BYTES].iter().any(|b| *b != 0x11)
        });
        assert_eq!(scrambled, !powersafe);
    }
}

#[test]
fn zero_extension_keeps_size_and_zeroes_content() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", &[b'a'; 1000]);
    f.write_at(0, &[b'b'; 10]).unwrap();
    f.write_at(1000, &[b'c'; 2000]).unwrap();
    for seed in 0..4 {
        let got = fs
            .power_cut(Cut::new(FileCut::ZeroExtension, DirCut::DropPending), seed)
            .read("/j/seg")
            .unwrap();
        assert_eq!(got.len(), 3000);
        assert!(got[..1000].iter().all(|b| *b == b'a'));
        assert!(got[1000..].iter().all(|b| *b == 0));
    }
}

#[test]
fn create_without_sync_dir_can_vanish_and_with_it_survives() {
    let fs = SimFs::new();
    fs.create_dir_all_durable("/j").unwrap();
    let f = fs.open(p("/j/new"), OpenMode::CreateNew).unwrap();
    f.write_at(0, b"data").unwrap();
    f.sync_data().unwrap();
    assert!(!fs.is_durable("/j/new"));
    assert_eq!(fs.pending_dir_ops(), 1);
    let gone = fs.power_cut(Cut::new(FileCut::KeepAll, DirCut::DropPending), 0);
    assert!(!gone.exists(p("/j/new")).unwrap());
    assert!(gone.files("/j").is_empty());
    let kept = fs.power_cut(Cut::new(FileCut::DropUnsynced, DirCut::KeepAll), 0);
    assert_eq!(kept.read("/j/new").unwrap(), b"data");

    fs.sync_dir(p("/j")).unwrap();
    assert!(fs.is_durable("/j/new"));
    for cut in Cut::all() {
        assert_eq!(
            fs.power_cut(cut, 3).read("/j/new").as_deref(),
            Some(&b"data"[..])
        );
    }
}

#[test]
fn rename_without_dir_sync_may_leave_old_name_with_it_the_new() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/x.tmp", b"payload");
    drop(f);
    fs.rename(p("/j/x.tmp"), p("/j/x")).unwrap();
    assert_eq!(fs.files("/j"), vec!["x".to_string()]);
    let old = fs.power_cut(Cut::new(FileCut::DropUnsynced, DirCut::DropPending), 0);
    assert_eq!(old.files("/j"), vec!["x.tmp".to_string()]);
    assert_eq!(old.read("/j/x.tmp").unwrap(), b"payload");
    let mut outcomes = BTreeSet::new();
    for seed in 0..32 {
        outcomes.insert(
            fs.power_cut(Cut::new(FileCut::DropUnsynced, DirCut::KeepSubset), seed)
                .files("/j"),
        );
    }
    assert_eq!(
        outcomes,
        BTreeSet::from([vec!["x".to_string()], vec!["x.tmp".to_string()]]),
        "the rename is atomic: one name or the other"
    );
    fs.sync_dir(p("/j")).unwrap();
    for cut in Cut::all() {
        let after = fs.power_cut(cut, 1);
        assert_eq!(after.files("/j"), vec!["x".to_string()], "{cut}");
        assert_eq!(after.read("/j/x").unwrap(), b"payload");
    }
}

#[test]
fn rename_replaces_and_across_directories_is_two_halves() {
    let fs = SimFs::new();
    durable_file(&fs, "/a/f", b"one");
    durable_file(&fs, "/a/g", b"two");
    fs.create_dir_all_durable("/b").unwrap();
    fs.rename(p("/a/f"), p("/a/g")).unwrap();
    assert_eq!(fs.read("/a/g").unwrap(), b"one");
    fs.rename(p("/a/g"), p("/b/h")).unwrap();
    assert_eq!(fs.files("/a"), Vec::<String>::new());
    assert_eq!(fs.read("/b/h").unwrap(), b"one");
    fs.sync_dir(p("/b")).unwrap();
    // /b's link is durable, /a's unlinks are not: the file may be reachable twice
    let cut = fs.power_cut(Cut::new(FileCut::DropUnsynced, DirCut::DropPending), 0);
    assert_eq!(cut.read("/b/h").unwrap(), b"one");
    assert_eq!(cut.files("/a"), vec!["f".to_string(), "g".to_string()]);
    assert_eq!(cut.read("/a/g").unwrap(), b"two");
}

#[test]
fn crash_at_stops_all_mutation_and_counts_ops() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/j")).unwrap(); // op 0
    let f = fs.open(p("/j/seg"), OpenMode::CreateNew).unwrap(); // op 1
    f.write_at(0, b"hello").unwrap(); // op 2
    assert_eq!(fs.ops(), 3);
    fs.crash_at(Some(4));
    f.sync_data().unwrap(); // op 3
    assert!(!fs.crashed());
    let before_durable = fs.durable("/j/seg");
    let is_loss = |r: io::Result<()>| {
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "simulated power loss");
    };
    is_loss(f.write_at(5, b"world")); // op 4
    assert!(fs.crashed());
    is_loss(f.set_len(0));
    is_loss(f.sync_data());
    is_loss(fs.sync_dir(p("/j")));
    is_loss(fs.rename(p("/j/seg"), p("/j/other")));
    is_loss(fs.remove_file(p("/j/seg")));
    is_loss(fs.create_dir_all(p("/k")));
    is_loss(fs.open(p("/j/new"), OpenMode::CreateNew).map(drop));
    is_loss(fs.try_lock(p("/j/LOCK")).map(drop));
    assert_eq!(fs.ops(), 13);
    // nothing changed, reads work
    assert_eq!(fs.read("/j/seg").unwrap(), b"hello");
    assert_eq!(fs.durable("/j/seg"), before_durable);
    assert_eq!(fs.files("/j"), vec!["seg".to_string()]);
    assert!(!fs.exists(p("/k")).unwrap());
    let mut buf = [0u8; 5];
    assert_eq!(f.read_at(0, &mut buf).unwrap(), 5);
    assert_eq!(&*f.read_all(ReadMode::Map).unwrap(), b"hello");
    let log = fs.log();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log[2], "#2 write seg @0 len 5");
    assert!(
        log[4].starts_with("#4 power lost before: write seg"),
        "{log:?}"
    );
    // the cut copy is fresh
    let after = fs.power_cut(Cut::process_crash(), 0);
    assert!(!after.crashed());
    assert_eq!(after.ops(), 0);
    assert!(after.log().is_empty());
    after
        .open(p("/j/seg"), OpenMode::ReadWrite)
        .unwrap()
        .write_at(0, b"J")
        .unwrap();
    assert_eq!(
        fs.read("/j/seg").unwrap(),
        b"hello",
        "the original is untouched"
    );
}

#[test]
fn crash_at_zero_refuses_everything() {
    let fs = SimFs::new();
    fs.crash_at(Some(0));
    assert!(fs.create_dir_all(p("/j")).is_err());
    assert!(fs.crashed());
    assert!(!fs.exists(p("/j")).unwrap());
    fs.crash_at(None);
    assert!(!fs.crashed());
    fs.create_dir_all(p("/j")).unwrap();
    assert!(fs.exists(p("/j")).unwrap());
}

#[test]
fn eio_drops_dirty_pages_and_a_later_sync_does_not_resurrect_them() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", b"old-old-old");
    f.write_at(0, b"NEW").unwrap();
    fs.inject(Fault::SyncEio {
        nth_sync: fs.data_syncs(),
    });
    let e = f.sync_data().unwrap_err();
    assert_eq!(raw(&e), Some(5));
    assert_eq!(
        fs.read("/j/seg").unwrap(),
        b"NEW-old-old",
        "the page cache still shows it"
    );
    assert_eq!(fs.durable("/j/seg").unwrap(), b"old-old-old");
    assert_eq!(fs.unsynced_files(), 0);
    assert!(fs.log().last().unwrap().contains("EIO"), "{:?}", fs.log());
    // a later write elsewhere and a successful sync
    f.write_at(8, b"XYZ").unwrap();
    f.sync_data().unwrap();
    assert_eq!(fs.durable("/j/seg").unwrap(), b"old-old-XYZ");
    assert_eq!(fs.read("/j/seg").unwrap(), b"NEW-old-XYZ");
    for cut in cuts_except_keep_all() {
        for seed in 0..4 {
            assert_eq!(
                fs.power_cut(cut, seed).read("/j/seg").unwrap(),
                b"old-old-XYZ",
                "{cut}"
            );
        }
    }
    // the fault fired once
    f.write_at(0, b"N2").unwrap();
    f.sync_data().unwrap();
    assert_eq!(fs.durable("/j/seg").unwrap(), b"N2d-old-XYZ");
}

#[test]
fn eio_of_an_extension_then_sync_keeps_the_old_size() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", b"abc");
    f.write_at(3, b"def").unwrap();
    fs.inject(Fault::SyncEio {
        nth_sync: fs.data_syncs(),
    });
    assert!(f.sync_data().is_err());
    f.sync_data().unwrap();
    assert_eq!(fs.durable("/j/seg").unwrap(), b"abc");
    f.write_at(7, b"g").unwrap();
    f.sync_data().unwrap();
    assert_eq!(fs.durable("/j/seg").unwrap(), b"abc\0\0\0\0g");
}

#[test]
fn enospc_writes_nothing() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", b"0123456789");
    fs.inject(Fault::Enospc {
        nth_write: fs.writes(),
    });
    let e = f.write_at(5, &[b'x'; 2000]).unwrap_err();
    assert_eq!(raw(&e), Some(28));
    assert_eq!(fs.read("/j/seg").unwrap(), b"0123456789");
    assert_eq!(fs.unsynced_files(), 0);
    f.write_at(5, b"y").unwrap();
    assert_eq!(fs.read("/j/seg").unwrap(), b"01234y6789");
}

#[test]
fn short_write_writes_a_prefix() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", b"");
    fs.inject(Fault::ShortWrite {
        nth_write: fs.writes() + 1,
    });
    f.write_at(0, b"ok").unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 200) as u8 + 1).collect();
    let e = f.write_at(100, &data).unwrap_err();
    assert_eq!(raw(&e), Some(28));
    let got = fs.read("/j/seg").unwrap();
    assert_eq!(got.len(), 100 + 1024, "half of 3000 rounded down to 512");
    assert_eq!(&got[100..], &data[..1024]);
    // a short write of less than a sector writes nothing
    fs.inject(Fault::ShortWrite {
        nth_write: fs.writes(),
    });
    assert!(f.write_at(0, &[9; 1000]).is_err());
    assert_eq!(fs.read("/j/seg").unwrap(), got);
}

#[test]
fn same_seed_same_result_different_seeds_differ() {
    let build = || {
        let fs = SimFs::new();
        fs.create_dir_all_durable("/j").unwrap();
        for n in 0..4u8 {
            let f = fs
                .open(&PathBuf::from(format!("/j/f{n}")), OpenMode::CreateNew)
                .unwrap();
            for k in 0..6u64 {
                f.write_at(k * 1500 + u64::from(n), &[n + k as u8 + 1; 1700])
                    .unwrap();
                if k == 2 && n % 2 == 0 {
                    f.sync_data().unwrap();
                }
            }
            if n == 1 {
                fs.sync_dir(p("/j")).unwrap();
            }
        }
        fs.rename(p("/j/f3"), p("/j/f0")).unwrap();
        fs
    };
    let (a, b) = (build(), build());
    assert_eq!(a.log(), b.log());
    let snapshot = |fs: &SimFs| -> Vec<(String, Vec<u8>)> {
        fs.files("/j")
            .into_iter()
            .map(|n| {
                let bytes = fs.read(format!("/j/{n}")).unwrap();
                (n, bytes)
            })
            .collect()
    };
    for cut in Cut::all() {
        let mut distinct = BTreeSet::new();
        for seed in 0..24 {
            let x = snapshot(&a.power_cut(cut, seed));
            assert_eq!(x, snapshot(&b.power_cut(cut, seed)), "{cut} seed {seed}");
            assert_eq!(x, snapshot(&a.power_cut(cut, seed)), "cutting twice, {cut}");
            distinct.insert(x);
        }
        let random = !matches!(
            (cut.file, cut.dir),
            (
                FileCut::DropUnsynced | FileCut::ZeroExtension | FileCut::KeepAll,
                DirCut::DropPending | DirCut::KeepAll
            )
        );
        assert_eq!(
            distinct.len() > 1,
            random,
            "{cut}: {} outcomes",
            distinct.len()
        );
    }
}

#[test]
fn try_lock_is_exclusive_and_released_on_drop() {
    let fs = SimFs::new();
    fs.create_dir_all_durable("/j").unwrap();
    let held = fs.try_lock(p("/j/LOCK")).unwrap().expect("free");
    assert_eq!(fs.ops(), 1, "creating the lock file is an operation");
    assert_eq!(fs.pending_dir_ops(), 1);
    let other = fs.clone();
    assert!(other.try_lock(p("/j/LOCK")).unwrap().is_none());
    assert_eq!(fs.ops(), 1, "locking an existing file is not");
    held.write_at(0, b"holder").unwrap();
    // a power-cut copy has no locks
    let after = fs.power_cut(Cut::process_crash(), 0);
    assert!(after.try_lock(p("/j/LOCK")).unwrap().is_some());
    // an ordinary open of the locked file works and does not lock
    let reader = fs.open(p("/j/LOCK"), OpenMode::ReadOnly).unwrap();
    assert_eq!(&*reader.read_all(ReadMode::Copy).unwrap(), b"holder");
    drop(held);
    let again = other
        .try_lock(p("/j/LOCK"))
        .unwrap()
        .expect("released on drop");
    assert_eq!(&*again.read_all(ReadMode::Copy).unwrap(), b"holder");
    drop(reader);
    assert!(fs.try_lock(p("/j/LOCK")).unwrap().is_none());
    assert_eq!(raw(&fs.try_lock(p("/j")).unwrap_err()), Some(libc::EISDIR));
    assert_eq!(
        fs.try_lock(p("/nope/LOCK")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn a_directory_created_without_syncing_its_parent_vanishes_at_drop_pending() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/data/sessions/s1")).unwrap();
    assert_eq!(fs.ops(), 1);
    assert_eq!(fs.pending_dir_ops(), 3);
    assert!(fs.exists(p("/data/sessions")).unwrap());
    let f = fs
        .open(p("/data/sessions/s1/seg"), OpenMode::CreateNew)
        .unwrap();
    f.write_at(0, b"acked").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(p("/data/sessions/s1")).unwrap();
    let cut = fs.power_cut(Cut::new(FileCut::KeepAll, DirCut::DropPending), 0);
    assert!(!cut.exists(p("/data")).unwrap());
    assert!(cut.read("/data/sessions/s1/seg").is_none());
    // syncing the parents makes the chain durable
    fs.sync_dir(p("/data/sessions")).unwrap();
    fs.sync_dir(p("/data")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    assert_eq!(fs.pending_dir_ops(), 0);
    for cut in Cut::all() {
        assert_eq!(
            fs.power_cut(cut, 9)
                .read("/data/sessions/s1/seg")
                .as_deref(),
            Some(&b"acked"[..]),
            "{cut}"
        );
    }
}

#[test]
fn errors_and_listing_match_the_contract() {
    let fs = SimFs::new();
    assert!(fs.exists(p("/")).unwrap());
    assert_eq!(
        fs.open(p("/a/f"), OpenMode::ReadWrite).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        fs.open(p("/a/f"), OpenMode::CreateNew).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(fs.ops(), 1, "a failed create is an operation too");
    fs.create_dir_all(p("/a/sub")).unwrap();
    fs.create_dir_all(p("/a/sub")).unwrap();
    fs.create_dir_all(p("/a")).unwrap();
    assert_eq!(fs.ops(), 2, "an existing directory is no operation");
    drop(fs.open(p("/a/f"), OpenMode::CreateNew).unwrap());
    assert_eq!(
        fs.open(p("/a/f"), OpenMode::CreateNew).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        fs.open(p("/a/missing"), OpenMode::ReadOnly)
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
    let mut names = fs.list(p("/a")).unwrap();
    names.sort();
    assert_eq!(names, vec!["f".to_string(), "sub".to_string()]);
    assert_eq!(fs.files("/a"), vec!["f".to_string()]);
    assert!(fs.create_dir_all(p("/a/f")).is_err());
    assert!(fs.create_dir_all(p("/a/f/x")).is_err());
    assert_eq!(
        fs.remove_file(p("/a/nope")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        raw(&fs.remove_file(p("/a/sub")).unwrap_err()),
        Some(libc::EISDIR)
    );
    assert_eq!(
        fs.rename(p("/a/nope"), p("/a/x")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        fs.list(p("/nope")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        fs.sync_dir(p("/nope")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    // a read-only handle cannot write
    let ro = fs.open(p("/a/f"), OpenMode::ReadOnly).unwrap();
    assert!(ro.write_at(0, b"x").is_err());
    assert!(ro.set_len(3).is_err());
    assert!(ro.is_empty().unwrap());
    // relative and dotted paths resolve from the root
    assert!(fs.exists(p("a/./sub/../f")).unwrap());
    // a directory opened read-only can be fsynced (as a directory)
    let d = fs.open(p("/a"), OpenMode::ReadOnly).unwrap();
    fs.sync_dir(p("/")).unwrap();
    assert!(fs.is_durable("/a"));
    assert!(!fs.is_durable("/a/f"));
    d.sync_data().unwrap();
    assert!(fs.is_durable("/a/f"));
}

#[test]
fn an_unlinked_file_stays_readable_and_writable_through_its_handle() {
    let fs = SimFs::new();
    let f = durable_file(&fs, "/j/seg", b"abc");
    fs.remove_file(p("/j/seg")).unwrap();
    assert!(!fs.exists(p("/j/seg")).unwrap());
    f.write_at(3, b"def").unwrap();
    assert_eq!(&*f.read_all(ReadMode::Copy).unwrap(), b"abcdef");
    assert_eq!(f.len().unwrap(), 6);
    f.sync_data().unwrap();
    // the unlink was not synced: the old name still reaches the (synced) inode
    let cut = fs.power_cut(Cut::new(FileCut::DropUnsynced, DirCut::DropPending), 0);
    assert_eq!(cut.read("/j/seg").unwrap(), b"abcdef");
    fs.sync_dir(p("/j")).unwrap();
    assert!(
        fs.power_cut(Cut::process_crash(), 0)
            .read("/j/seg")
            .is_none()
    );
}

#[test]
fn the_log_names_files_only() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/deep/dir")).unwrap();
    let f = fs
        .open(p("/deep/dir/segment-1.twl.tmp"), OpenMode::CreateNew)
        .unwrap();
    f.write_at(4096, &[1; 120]).unwrap();
    f.set_len(8192).unwrap();
    f.sync_data().unwrap();
    fs.rename(
        p("/deep/dir/segment-1.twl.tmp"),
        p("/deep/dir/segment-1.twl"),
    )
    .unwrap();
    f.write_at(0, b"x").unwrap();
    fs.sync_dir(p("/deep/dir")).unwrap();
    fs.remove_file(p("/deep/dir/segment-1.twl")).unwrap();
    assert!(fs.rename(p("/deep/dir/none"), p("/deep/dir/x")).is_err());
    let log = fs.log();
    assert_eq!(
        log[..8],
        [
            "#0 mkdir dir",
            "#1 create segment-1.twl.tmp",
            "#2 write segment-1.twl.tmp @4096 len 120",
            "#3 set_len segment-1.twl.tmp 8192",
            "#4 sync_data segment-1.twl.tmp",
            "#5 rename segment-1.twl.tmp -> segment-1.twl",
            "#6 write segment-1.twl @0 len 1",
            "#7 sync_dir dir",
        ]
    );
    assert_eq!(log[8], "#8 remove segment-1.twl");
    assert!(log[9].starts_with("#9 rename none -> x -> "), "{}", log[9]);
    assert!(log.iter().all(|l| !l.contains("deep")));
}

/// The sim accepts what the real file system accepts and reads back the same bytes.
#[test]
fn agrees_with_the_real_file_system_on_live_state() {
    let root = std::env::temp_dir().join(format!("turnwal-sim-vs-real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sim = SimFs::new();
    let fses: [(&dyn Storage, PathBuf); 2] = [(&RealFs, root.clone()), (&sim, PathBuf::from("/t"))];
    let mut seen = Vec::new();
    for (fs, base) in fses {
        let j = base.join("j");
        fs.create_dir_all(&j).unwrap();
        let f = fs.open(&j.join("a"), OpenMode::CreateNew).unwrap();
        f.write_at(10, b"hello").unwrap();
        f.set_len(12).unwrap();
        f.write_at(0, b"x").unwrap();
        f.sync_data().unwrap();
        fs.rename(&j.join("a"), &j.join("b")).unwrap();
        let g = fs.open(&j.join("c"), OpenMode::CreateNew).unwrap();
        g.write_at(0, b"gone").unwrap();
        fs.rename(&j.join("b"), &j.join("c")).unwrap();
        fs.sync_dir(&j).unwrap();
        let lock = fs.try_lock(&j.join("LOCK")).unwrap().unwrap();
        lock.write_at(0, b"me").unwrap();
        let mut names = fs.list(&j).unwrap();
        names.sort();
        let mut buf = [0u8; 64];
        let n = f.read_at(3, &mut buf).unwrap();
        seen.push((
            names,
            fs.exists(&j.join("b")).unwrap(),
            fs.open(&j.join("c"), OpenMode::ReadOnly)
                .unwrap()
                .read_all(ReadMode::Copy)
                .unwrap()
                .to_vec(),
            g.read_all(ReadMode::Copy).unwrap().to_vec(),
            buf[..n].to_vec(),
            f.read_at(100, &mut buf).unwrap(),
            fs.open(&j.join("c"), OpenMode::CreateNew)
                .unwrap_err()
                .kind(),
        ));
    }
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(seen[0], seen[1]);
}

// ---------------------------------------------------------------------------------------------
// Property tests against a reference model

#[derive(Debug, Clone)]
enum FOp {
    Write {
        file: usize,
        offset: usize,
        len: usize,
        byte: u8,
    },
    SetLen {
        file: usize,
        len: usize,
    },
    Sync {
        file: usize,
    },
    SyncEio {
        file: usize,
    },
    Enospc {
        file: usize,
        offset: usize,
        len: usize,
    },
    Short {
        file: usize,
        offset: usize,
        len: usize,
        byte: u8,
    },
}

fn fop() -> impl Strategy<Value = FOp> {
    let file = 0..3usize;
    prop_oneof![
        6 => (file.clone(), 0..12_000usize, 0..5_000usize, 1..=255u8)
            .prop_map(|(file, offset, len, byte)| FOp::Write { file, offset, len, byte }),
        2 => (file.clone(), 0..14_000usize).prop_map(|(file, len)| FOp::SetLen { file, len }),
        3 => file.clone().prop_map(|file| FOp::Sync { file }),
        1 => file.clone().prop_map(|file| FOp::SyncEio { file }),
        1 => (file.clone(), 0..9_000usize, 1..3_000usize)
            .prop_map(|(file, offset, len)| FOp::Enospc { file, offset, len }),
        1 => (file, 0..9_000usize, 1..3_000usize, 1..=255u8)
            .prop_map(|(file, offset, len, byte)| FOp::Short { file, offset, len, byte }),
    ]
}

/// What the test expects of one file: its durable bytes, live bytes, and the writes and
/// truncations since the last sync (or dropped by a failed one).
#[derive(Debug, Clone, Default)]
struct FileModel {
    durable: Vec<u8>,
    live: Vec<u8>,
    unsynced: Vec<MOp>,
}

#[derive(Debug, Clone)]
enum MOp {
    Write(usize, Vec<u8>),
    SetLen(usize),
}

fn apply(bytes: &mut Vec<u8>, op: &MOp) {
    match op {
        MOp::Write(off, data) => {
            if bytes.len() < off + data.len() {
                bytes.resize(off + data.len(), 0);
            }
            bytes[*off..off + data.len()].copy_from_slice(data);
        }
        MOp::SetLen(len) => bytes.resize(*len, 0),
    }
}

fn replay(base: &[u8], ops: &[MOp]) -> Vec<u8> {
    let mut b = base.to_vec();
    for op in ops {
        apply(&mut b, op);
    }
    b
}

impl FileModel {
    fn push(&mut self, op: MOp) {
        apply(&mut self.live, &op);
        self.unsynced.push(op);
    }
    fn target(&self) -> Vec<u8> {
        replay(&self.durable, &self.unsynced)
    }
}

/// Whether each `unit`-block of `got` is the durable or the new version (zero where a version
/// has no byte); with `garbage`, blocks where the two differ may hold anything.
fn blocks_ok(got: &[u8], d: &[u8], t: &[u8], unit: usize, garbage: bool) -> Result<(), String> {
    if got.len() != d.len() && got.len() != t.len() {
        return Err(format!(
            "size {} is neither {} nor {}",
            got.len(),
            d.len(),
            t.len()
        ));
    }
    let at = |b: &[u8], i: usize| b.get(i).copied().unwrap_or(0);
    for (u, block) in got.chunks(unit).enumerate() {
        let r = u * unit..u * unit + block.len();
        let clip = |b: &[u8]| b[r.start.min(b.len())..(u * unit + unit).min(b.len())].to_vec();
        let differ = clip(d) != clip(t);
        let is = |v: &[u8]| r.clone().all(|i| got[i] == at(v, i));
        if !(is(d) || is(t) || garbage && differ) {
            return Err(format!("block {u} is neither version"));
        }
        // powersafe overwrite (the default): garbage only where the versions differ
        if r.clone()
            .any(|i| at(d, i) == at(t, i) && got[i] != at(d, i))
        {
            return Err(format!("block {u} scrambled a byte no write changed"));
        }
        if !differ && !is(d) {
            return Err(format!("block {u} did not differ yet changed"));
        }
    }
    Ok(())
}

fn check_file(cut: FileCut, got: &[u8], m: &FileModel) -> Result<(), String> {
    let (d, t) = (&m.durable, m.target());
    match cut {
        FileCut::DropUnsynced => (got == &d[..]).then_some(()).ok_or("not durable".into()),
        FileCut::KeepAll => (got == &m.live[..]).then_some(()).ok_or("not live".into()),
        FileCut::KeepPrefix => (0..=m.unsynced.len())
            .any(|k| replay(d, &m.unsynced[..k]) == got)
            .then_some(())
            .ok_or("no prefix".into()),
        FileCut::TornLastWrite => {
            let Some((last, rest)) = m.unsynced.split_last() else {
                return (got == &d[..])
                    .then_some(())
                    .ok_or("nothing unsynced".into());
            };
            let base = replay(d, rest);
            let candidates: Vec<Vec<u8>> = match last {
                MOp::SetLen(_) => vec![base.clone(), replay(&base, std::slice::from_ref(last))],
                MOp::Write(off, data) => (0..=data.len())
                    .filter(|k| *k == 0 || *k == data.len() || (off + k) % SECTOR_BYTES == 0)
                    .map(|k| {
                        let mut b = base.clone();
                        if k > 0 {
                            apply(&mut b, &MOp::Write(*off, data[..k].to_vec()));
                        }
                        b
                    })
                    .collect(),
            };
            candidates
                .contains(&got.to_vec())
                .then_some(())
                .ok_or("not a sector-aligned tear of the last write".into())
        }
        FileCut::KeepPages => blocks_ok(got, d, &t, PAGE_BYTES, false),
        FileCut::Garbage => blocks_ok(got, d, &t, SECTOR_BYTES, true),
        FileCut::ZeroExtension => {
            let mut want = d.clone();
            want.truncate(t.len());
            want.resize(t.len(), 0);
            (got == &want[..])
                .then_some(())
                .ok_or("not a zero extension".into())
        }
    }
}

/// A pending directory operation of the reference model: (removed name, added (name, tag)).
type PendingOp = (Option<String>, Option<(String, u64)>);

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Random writes, truncations, syncs and faults on three files; every cut of the result is,
    /// byte for byte, what the cut's rule allows from the reference model.
    #[test]
    fn every_cut_of_random_file_operations_follows_the_model(
        ops in prop::collection::vec(fop(), 0..40),
        seed in any::<u64>(),
    ) {
        let fs = SimFs::new();
        fs.create_dir_all_durable("/d").unwrap();
        let names = ["/d/a", "/d/b", "/d/c"];
        let handles: Vec<_> = names.iter().map(|n| fs.open(p(n), OpenMode::CreateNew).unwrap()).collect();
        fs.sync_dir(p("/d")).unwrap();
        let mut model = vec![FileModel::default(); 3];
        for op in &ops {
            match *op {
                FOp::Write { file, offset, len, byte } => {
                    handles[file].write_at(offset as u64, &vec![byte; len]).unwrap();
                    if len > 0 {
                        model[file].push(MOp::Write(offset, vec![byte; len]));
                    }
                }
                FOp::SetLen { file, len } => {
                    handles[file].set_len(len as u64).unwrap();
                    model[file].push(MOp::SetLen(len));
                }
                FOp::Sync { file } => {
                    handles[file].sync_data().unwrap();
                    let m = &mut model[file];
                    m.durable = m.target();
                    m.unsynced.clear();
                }
                FOp::SyncEio { file } => {
                    fs.inject(Fault::SyncEio { nth_sync: fs.data_syncs() });
                    prop_assert_eq!(handles[file].sync_data().unwrap_err().raw_os_error(), Some(5));
                    model[file].unsynced.clear();
                }
                FOp::Enospc { file, offset, len } => {
                    fs.inject(Fault::Enospc { nth_write: fs.writes() });
                    prop_assert_eq!(handles[file].write_at(offset as u64, &vec![7; len]).unwrap_err().raw_os_error(), Some(28));
                }
                FOp::Short { file, offset, len, byte } => {
                    fs.inject(Fault::ShortWrite { nth_write: fs.writes() });
                    prop_assert!(handles[file].write_at(offset as u64, &vec![byte; len]).is_err());
                    let keep = len / 2 / 512 * 512;
                    if keep > 0 {
                        model[file].push(MOp::Write(offset, vec![byte; keep]));
                    }
                }
            }
        }
        for (i, n) in names.iter().enumerate() {
            prop_assert_eq!(fs.read(n).unwrap(), model[i].live.clone(), "live {}", n);
            prop_assert_eq!(fs.durable(n).unwrap(), model[i].durable.clone(), "durable {}", n);
        }
        for cut in Cut::all() {
            for s in [seed, seed ^ 1, seed.wrapping_add(77)] {
                let after = fs.power_cut(cut, s);
                for (i, n) in names.iter().enumerate() {
                    let got = after.read(n).unwrap();
                    if let Err(why) = check_file(cut.file, &got, &model[i]) {
                        prop_assert!(false, "{} seed {} file {}: {}", cut, s, n, why);
                    }
                    // every byte is durable, live or zero (or anything, for garbage), where
                    // the cut applies no overwritten intermediate state
                    if matches!(cut.file, FileCut::KeepPages | FileCut::ZeroExtension | FileCut::DropUnsynced | FileCut::KeepAll) {
                        let m = &model[i];
                        for (k, b) in got.iter().enumerate() {
                            prop_assert!(
                                m.durable.get(k) == Some(b) || m.live.get(k) == Some(b) || *b == 0,
                                "{} byte {} of {}", cut, k, n
                            );
                        }
                    }
                }
                prop_assert_eq!(after.unsynced_files(), 0);
                prop_assert_eq!(after.pending_dir_ops(), 0);
            }
        }
    }

    /// Random creates, renames, removes and directory syncs in two directories; every cut keeps
    /// exactly the durable names, all live names, a prefix of the pending operations, or only
    /// names that once existed, as its rule says.
    #[test]
    fn every_cut_of_random_directory_operations_follows_the_model(
        ops in prop::collection::vec((0..4u8, 0..2usize, 0..3usize, 0..2usize, 0..3usize), 0..30),
        seed in any::<u64>(),
    ) {
        let fs = SimFs::new();
        fs.create_dir_all_durable("/a").unwrap();
        fs.create_dir_all_durable("/b").unwrap();
        let dirs = ["/a", "/b"];
        type Map = BTreeMap<String, u64>;
        let mut live: [Map; 2] = Default::default();
        let mut durable: [Map; 2] = Default::default();
        let mut pending: [Vec<PendingOp>; 2] = Default::default();
        let mut ever: BTreeSet<(usize, String, u64)> = BTreeSet::new();
        let mut next_tag = 0u64;
        let path = |d: usize, n: usize| format!("{}/n{n}", dirs[d]);
        for (kind, d, n, d2, n2) in ops {
            let name = format!("n{n}");
            match kind {
                0 => {
                    let r = fs.open(p(&path(d, n)), OpenMode::CreateNew);
                    if live[d].contains_key(&name) {
                        prop_assert_eq!(r.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
                    } else {
                        let f = r.unwrap();
                        f.write_at(0, &next_tag.to_le_bytes()).unwrap();
                        f.sync_data().unwrap();
                        live[d].insert(name.clone(), next_tag);
                        pending[d].push((None, Some((name.clone(), next_tag))));
                        ever.insert((d, name, next_tag));
                        next_tag += 1;
                    }
                }
                1 => {
                    let r = fs.rename(p(&path(d, n)), p(&path(d2, n2)));
                    let to = format!("n{n2}");
                    match live[d].get(&name).copied() {
                        None => prop_assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotFound),
                        Some(tag) => {
                            r.unwrap();
                            if (d, &name) != (d2, &to) {
                                live[d].remove(&name);
                                live[d2].insert(to.clone(), tag);
                                ever.insert((d2, to.clone(), tag));
                                if d == d2 {
                                    pending[d].push((Some(name), Some((to, tag))));
                                } else {
                                    pending[d].push((Some(name), None));
                                    pending[d2].push((None, Some((to, tag))));
                                }
                            }
                        }
                    }
                }
                2 => {
                    let r = fs.remove_file(p(&path(d, n)));
                    if live[d].remove(&name).is_some() {
                        r.unwrap();
                        pending[d].push((Some(name), None));
                    } else {
                        prop_assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotFound);
                    }
                }
                _ => {
                    fs.sync_dir(p(dirs[d])).unwrap();
                    durable[d] = live[d].clone();
                    pending[d].clear();
                }
            }
        }
        // A pending op: (removed name, added (name, tag)); a same-directory rename moves only
        // the file it moved.
        let apply_dir = |m: &mut Map, op: &PendingOp| match op {
            (Some(from), Some((to, tag))) => {
                if m.get(from) == Some(tag) {
                    m.remove(from);
                    m.insert(to.clone(), *tag);
                }
            }
            (Some(from), None) => { m.remove(from); }
            (None, Some((to, tag))) => { m.insert(to.clone(), *tag); }
            (None, None) => {}
        };
        for cut in Cut::all() {
            for s in [seed, seed ^ 5] {
                let after = fs.power_cut(cut, s);
                for d in 0..2 {
                    let got: Map = after
                        .files(dirs[d])
                        .into_iter()
                        .map(|n| {
                            let bytes = after.read(format!("{}/{n}", dirs[d])).unwrap();
                            (n, u64::from_le_bytes(bytes.try_into().unwrap()))
                        })
                        .collect();
                    match cut.dir {
                        DirCut::DropPending => prop_assert_eq!(&got, &durable[d], "{}", cut),
                        DirCut::KeepAll => prop_assert_eq!(&got, &live[d], "{}", cut),
                        DirCut::KeepPrefix => {
                            let ok = (0..=pending[d].len()).any(|k| {
                                let mut m = durable[d].clone();
                                pending[d][..k].iter().for_each(|op| apply_dir(&mut m, op));
                                m == got
                            });
                            prop_assert!(ok, "{} dir {}: {:?} is no prefix", cut, dirs[d], got);
                        }
                        DirCut::KeepSubset => {
                            for (n, tag) in &got {
                                prop_assert!(
                                    ever.contains(&(d, n.clone(), *tag)),
                                    "{} invented {}/{} = {}", cut, dirs[d], n, tag
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
