//! Files and paths: sessions are private (files 0600, directories 0700, whatever the umask),
//! the journal never follows a symlink inside its directory to read or write elsewhere, and a
//! directory that is not a journal is said to be one, not filled with journal files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failure must fail loudly"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use turnwal::{CompactionPolicy, Journal, Options, Store, SyncPolicy};

fn opts() -> Options {
    Options {
        sync: SyncPolicy::Always,
        compaction: CompactionPolicy::manual(),
        ..Options::default()
    }
}

const LINE: &str = r#"{"kind":"message","turn":1,"body":{"id":"m","role":"user","parts":[]}}"#;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file the journal makes (segments, snapshot, lock, quarantine) is 0600 and every
/// directory 0700, under a umask of 000, 022 and 077 alike. The umask is per process, so each
/// run is a `turnwal` process started by a shell that set it.
#[test]
fn files_0600_and_directories_0700_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_turnwal");
    for umask in ["000", "022", "077"] {
        let dir = tmp
            .path()
            .join(format!("u{umask}"))
            .join("nested")
            .join("j");
        let script = format!(
            "umask {umask} && printf '%s\\n' '{LINE}' | {bin} append \"$1\" --sync always >/dev/null \
             && {bin} compact \"$1\" >/dev/null \
             && printf 'garbage-bytes-of-a-torn-tail' >> \"$1\"/segment-00000000000000000002.twl \
             && {bin} repair \"$1\" >/dev/null"
        );
        let st = Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "umask {umask}");
        let mut files = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "umask {umask}: {}", p.display());
            files += 1;
        }
        assert!(files >= 4, "segment, snapshot, LOCK, quarantine: {files}");
        for d in [&dir, &dir.parent().unwrap().to_path_buf()] {
            assert_eq!(mode(d), 0o700, "umask {umask}: {}", d.display());
        }
    }
}

/// A symlink planted in the journal directory under a name the journal uses is never followed:
/// the open fails naming the file, and the target outside is left as it was.
#[test]
fn symlinks_inside_the_journal_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, b"precious").unwrap();
    for name in [
        "LOCK",
        "segment-00000000000000000001.twl",
        "segment-00000000000000000002.twl",
        "snapshot-00000000000000000009.jsonl",
    ] {
        let dir = tmp.path().join(format!("j-{name}"));
        let (j, _) = Journal::open(&dir, opts()).unwrap();
        j.append_json(LINE).unwrap();
        j.close().unwrap();
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        // Writers and readers alike refuse or ignore it; none reads or writes the target.
        let w = Journal::open(&dir, opts()).map(|(j, _)| j.close());
        let r = Journal::open_read_only(&dir, &opts());
        let loops = |t: &str| t.contains("symbolic links") && t.contains(name);
        if name.starts_with("snapshot") {
            // A snapshot that cannot be read is ignored (and never deleted); the log is whole.
            assert!(w.is_ok_and(|c| c.is_ok()), "{name}");
            let ro = r.unwrap();
            assert!(ro.report.snapshot.is_none(), "{name}");
            assert!(
                ro.report
                    .ignored_snapshots
                    .iter()
                    .any(|i| loops(&format!("{}{}", i.file, i.reason)))
            );
        } else {
            let e = w.map(|_| ()).unwrap_err().to_string();
            assert!(loops(&e), "{name}: {e}");
            if name != "LOCK" {
                // A reader reports the segment it cannot read, never reads the target.
                let ro = r.unwrap();
                assert!(
                    ro.report
                        .problems
                        .iter()
                        .any(|p| p.kind == "io_error" && p.file == name),
                    "{name}: {:?}",
                    ro.report.problems
                );
            }
        }
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious", "{name}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{name}"
        );
    }
}

/// A stray `*.tmp` symlink (where a writer will create its next file) is removed as a stray,
/// never written through.
#[test]
fn a_symlinked_tmp_file_is_removed_not_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, b"precious").unwrap();
    let dir = tmp.path().join("j");
    let (j, _) = Journal::open(&dir, opts()).unwrap();
    j.close().unwrap();
    let link = dir.join("snapshot-00000000000000000002.jsonl.tmp");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let (j, report) = Journal::open(&dir, opts()).unwrap();
    assert!(report.removed_tmp.iter().any(|f| f.ends_with(".jsonl.tmp")));
    j.append_json(LINE).unwrap();
    j.compact().unwrap();
    j.close().unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
}

/// Opening a directory that is not a journal says so: with `create: false` always, and with
/// `create: true` when it already holds other files. Nothing is created in it.
#[test]
fn a_directory_that_is_not_a_journal_is_said_to_be_one() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes.txt"), b"mine").unwrap();
    let before: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for create in [false, true] {
        let e = Journal::open(&home, Options { create, ..opts() })
            .map(|_| ())
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("not a turnwal journal"), "{text}");
        let after: Vec<_> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(after, before, "create={create}: files were made");
    }
    assert!(Journal::open_read_only(&home, &opts()).is_err());
    // The command line says so too, with an error exit.
    let out = Command::new(env!("CARGO_BIN_EXE_turnwal"))
        .args(["verify"])
        .arg(&home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // An empty directory is a fine place for a new journal.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Journal::open(&empty, opts()).unwrap().0.close().unwrap();
}

/// Session ids from callers and names from disk are validated before they become paths.
#[test]
fn session_ids_and_names_from_disk_are_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("root"), opts()).unwrap();
    for bad in [
        "..",
        "../x",
        "/etc",
        "a/b",
        "",
        "ABCDEF0123456789ABCDEF0123456789",
        "0123",
    ] {
        assert!(store.path_of(bad).is_err(), "{bad:?}");
        assert!(store.open_session(bad).is_err(), "{bad:?}");
        assert!(store.delete(bad, true).is_err(), "{bad:?}");
    }
    // Names on disk that are not session ids are not sessions, and files named almost like
    // segments are not segments.
    std::fs::create_dir(store.root().join("..hidden")).unwrap();
    let (id, j) = store.create().unwrap();
    j.close().unwrap();
    let dir = store.path_of(&id).unwrap();
    std::fs::write(dir.join("segment-1.twl"), b"x").unwrap();
    std::fs::write(dir.join("segment-00000000000000000001.twl.bak"), b"x").unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].status,
        turnwal::SessionStatus::Clean,
        "{:?}",
        list[0].problem
    );
}
