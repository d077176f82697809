//! Shared test helpers: a storage wrapper that counts (and can fail) syncs through the seam.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use turnwal::storage::{Bytes, OpenMode, ReadMode, Storage, StorageFile};
use turnwal::{Options, RealFs, SyncPolicy};

/// Counts `sync_data` calls on files, and fails every sync after `fail_syncs_after` of them.
#[derive(Debug, Default)]
pub struct Counting {
    pub file_syncs: Arc<AtomicU64>,
    pub writes: Arc<AtomicU64>,
    pub fail_syncs_after: Option<u64>,
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn StorageFile>,
    syncs: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    fail_after: Option<u64>,
}

impl StorageFile for CountingFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write_at(offset, buf)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_after.is_some_and(|k| n > k) {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        self.inner.sync_data()
    }
    fn read_all(&self, mode: ReadMode) -> io::Result<Bytes> {
        self.inner.read_all(mode)
    }
}

impl Storage for Counting {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        RealFs.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(CountingFile {
            inner: RealFs.open(path, mode)?,
            syncs: Arc::clone(&self.file_syncs),
            writes: Arc::clone(&self.writes),
            fail_after: self.fail_syncs_after,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        RealFs.try_lock(path)
    }
}

pub fn opts(sync: SyncPolicy) -> Options {
    Options {
        sync,
        ..Options::default()
    }
}

/// A message envelope with a body of about `size` bytes.
pub fn message(i: usize, size: usize) -> String {
    let text = "x".repeat(size);
    format!(
        r#"{{"kind":"message","turn":{},"body":{{"id":"m{i}","role":"user","parts":[{{"type":"text","text":"{text}"}}]}}}}"#,
        i / 4 + 1
    )
}

pub fn only_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "twl"))
        .collect();
    segs.sort();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.remove(0)
}

/// A process crash through the storage seam: once armed, the `crash_at`-th mutating operation
/// (write, set_len, sync, create, rename, unlink, directory sync; counted from 1) and every one
/// after it fails, as if the process had died there. What reached the file system before stays,
/// as it does after `kill -9`. Reads keep working, so the dying code's own reads still succeed.
#[derive(Debug)]
pub struct CrashAt {
    pub armed: Arc<std::sync::atomic::AtomicBool>,
    pub ops: Arc<AtomicU64>,
    pub crash_at: u64,
}

impl CrashAt {
    pub fn new(crash_at: u64) -> Self {
        CrashAt {
            armed: Arc::default(),
            ops: Arc::default(),
            crash_at,
        }
    }
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
    /// Counts one mutating operation; `Err` once the crash point is reached.
    fn step(armed: &std::sync::atomic::AtomicBool, ops: &AtomicU64, at: u64) -> io::Result<()> {
        if !armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        if ops.fetch_add(1, Ordering::SeqCst) + 1 >= at {
            return Err(io::Error::other("simulated crash"));
        }
        Ok(())
    }
    /// Whether the crash point was reached.
    pub fn crashed(&self) -> bool {
        self.ops.load(Ordering::SeqCst) >= self.crash_at
    }
}

#[derive(Debug)]
struct CrashFile {
    inner: Box<dyn StorageFile>,
    armed: Arc<std::sync::atomic::AtomicBool>,
    ops: Arc<AtomicU64>,
    at: u64,
}

impl CrashFile {
    fn step(&self) -> io::Result<()> {
        CrashAt::step(&self.armed, &self.ops, self.at)
    }
}

impl StorageFile for CrashFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.step()?;
        self.inner.write_at(offset, buf)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.step()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.step()?;
        self.inner.sync_data()
    }
    fn read_all(&self, mode: ReadMode) -> io::Result<Bytes> {
        self.inner.read_all(mode)
    }
}

impl Storage for CrashAt {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        RealFs.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        if mode == OpenMode::CreateNew {
            CrashAt::step(&self.armed, &self.ops, self.crash_at)?;
        }
        Ok(Box::new(CrashFile {
            inner: RealFs.open(path, mode)?,
            armed: Arc::clone(&self.armed),
            ops: Arc::clone(&self.ops),
            at: self.crash_at,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        CrashAt::step(&self.armed, &self.ops, self.crash_at)?;
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        CrashAt::step(&self.armed, &self.ops, self.crash_at)?;
        RealFs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        CrashAt::step(&self.armed, &self.ops, self.crash_at)?;
        RealFs.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        RealFs.try_lock(path)
    }
}

/// Every file of `dir` with its bytes, sorted by name (the `LOCK` file excluded: its content is
/// advisory and rewritten by every writer).
pub fn dir_state(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Names of the files of `dir` with the given extension, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

/// A realistic agent session step `i`: turns, user messages, streamed assistant replies with
/// deltas then a final form, tool calls with runs and results, usage re-reported per call,
/// metadata changes, now and then a rewind or a context compaction.
pub fn agent_step(i: usize) -> Vec<String> {
    let turn = i + 1;
    let m = format!("a{i}");
    let call = format!("call{i}");
    let mut v = vec![
        format!(r#"{{"kind":"turn","turn":{turn},"body":{{"event":"started"}}}}"#),
        format!(
            r#"{{"kind":"message","turn":{turn},"body":{{"id":"u{i}","role":"user","parts":[{{"type":"text","text":"question {i} \u00e9"}}]}}}}"#
        ),
    ];
    for (k, frag) in ["Let me ", "look at ", "that."].iter().enumerate() {
        v.push(format!(
            r#"{{"kind":"delta","turn":{turn},"body":{{"message_id":"{m}","index":0,"type":"text","text":"{frag}{k}"}}}}"#
        ));
    }
    v.push(format!(
        r#"{{"kind":"delta","turn":{turn},"body":{{"message_id":"{m}","index":1,"type":"tool_call","call_id":"{call}","name":"sh","arguments":"{{\"cmd\":"}}}}"#
    ));
    v.push(format!(
        r#"{{"kind":"message","turn":{turn},"body":{{"id":"{m}","role":"assistant","parts":[{{"type":"text","text":"Let me look at that."}},{{"type":"tool_call","call_id":"{call}","name":"sh","arguments":"{{}}"}}]}}}}"#
    ));
    for total in [10 * turn, 20 * turn] {
        v.push(format!(
            r#"{{"kind":"usage","turn":{turn},"body":{{"call_key":"k{i}","model":"m{}","input":{{"total":{total}}},"output":{{"total":5}}}}}}"#,
            i % 2
        ));
    }
    v.push(format!(
        r#"{{"kind":"tool_run","turn":{turn},"body":{{"call_id":"{call}","event":"started"}}}}"#
    ));
    v.push(format!(
        r#"{{"kind":"message","turn":{turn},"body":{{"id":"t{i}","role":"tool","parts":[{{"type":"tool_result","call_id":"{call}","outcome":"ok","text":"done"}}]}}}}"#
    ));
    v.push(format!(
        r#"{{"kind":"meta","body":{{"title":"step {i}","cwd":{}}}}}"#,
        if i.is_multiple_of(3) {
            "null".to_string()
        } else {
            format!("\"/w/{i}\"")
        }
    ));
    if i % 5 == 4 {
        v.push(format!(
            r#"{{"kind":"rewind","turn":{turn},"body":{{"to_seq":{}}}}}"#,
            i * 3
        ));
    }
    if i % 7 == 6 {
        v.push(format!(
            r#"{{"kind":"compaction","turn":{turn},"body":{{"summary_message_id":"u{i}","through_seq":{}}}}}"#,
            i * 10
        ));
    }
    v.push(format!(
        r#"{{"kind":"turn","turn":{turn},"body":{{"event":"completed"}}}}"#
    ));
    v
}
