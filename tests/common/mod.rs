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
