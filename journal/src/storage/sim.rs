//! A deterministic, in-memory simulated file system that can lose power (cargo feature `sim`).
//!
//! [`SimFs`] implements [`Storage`], so a journal (or anything built on the storage seam) runs on
//! it unchanged. It keeps, for every file, the bytes that are *live* (what reads see) and the
//! bytes that are *durable* (what the disk holds), and for every directory the entries that are
//! live and the ones that are durable. A power cut ([`SimFs::power_cut`]) turns that into the
//! state a machine could find after reboot, in one of the ways a real disk may lose what was not
//! synced ([`Cut`]).
//!
//! # Model
//!
//! - Paths are plain [`Path`]s, resolved lexically from the root `/` (a relative path is taken
//!   from the root; `.` and `..` are resolved by name, there are no symlinks). Directories are
//!   explicit: the root always exists, [`Storage::create_dir_all`] creates the others.
//! - Files: [`StorageFile::write_at`] and [`StorageFile::set_len`] change the live bytes and
//!   are appended, in order, to the file's list of *unsynced operations*. A write past the end
//!   zero-fills the gap. [`StorageFile::sync_data`] makes the file durable: durable bytes :=
//!   durable bytes with every unsynced operation applied, and the list is cleared.
//! - Directories: a create ([`OpenMode::CreateNew`], [`Storage::try_lock`] of a missing file,
//!   [`Storage::create_dir_all`]), [`Storage::rename`] and [`Storage::remove_file`] change the
//!   live entries of the parent directory and are appended to its list of *pending directory
//!   operations*; [`Storage::sync_dir`] makes that directory's live entries durable. It does not
//!   make the directory's own entry in *its* parent durable: a directory created without a sync
//!   of its parent may vanish at a power cut, with everything in it. A rename within one
//!   directory is one atomic pending operation (after a cut the file has the old name or the new
//!   one); a rename across directories is an unlink pending in the source and a link pending in
//!   the target, each half becoming durable with its own directory.
//! - Files are inodes: a handle keeps reading and writing its inode after the name is removed or
//!   renamed over (as on POSIX).
//! - Locks: [`Storage::try_lock`] takes an exclusive lock on the inode for as long as the
//!   returned handle lives; a second `try_lock` (from any clone of the same `SimFs`) gets
//!   `Ok(None)`.
//! - Reads ([`Storage::exists`], [`Storage::list`], [`StorageFile::read_at`],
//!   [`StorageFile::read_all`]) see live state. `read_all` always copies, never maps.
//! - A directory opened [`OpenMode::ReadOnly`] gives a handle whose `sync_data` is a directory
//!   sync; `sync_dir` of a regular file syncs the file (both as `fsync` does on Linux).
//! - Files live in memory, up to [`MAX_FILE_BYTES`]. A removed file is kept (for the handles
//!   and the not yet durable names that may still reach it) until the `SimFs` is dropped; a
//!   power-cut copy holds only what survived.
//!
//! # Operations, crashes and faults
//!
//! Every *mutating* call (`write_at`, `set_len`, `sync_data`, `sync_dir`, `rename`,
//! `remove_file`, and any call that creates a file or directory) gets the next operation index
//! 0, 1, 2, … when it is called, whatever its outcome; [`SimFs::ops`] counts them and
//! [`SimFs::log`] describes them (file names only) for a failure message.
//!
//! [`SimFs::crash_at`]`(Some(n))` kills the simulated process at operation `n`: that operation
//! and every later mutating one fail with `io::Error::other("simulated power loss")` and change
//! nothing; reads keep working. Then [`SimFs::power_cut`] gives the disk after reboot.
//!
//! [`SimFs::inject`] arms one-shot [`Fault`]s: an fsync that fails with `EIO` and drops the
//! dirty pages, a write that fails with `ENOSPC`, a short write.
//!
//! # Invariants
//!
//! - Durable state changes only through a sync: `sync_data` (file data and size) and `sync_dir`
//!   (directory entries), and the set-up helper [`SimFs::create_dir_all_durable`].
//! - A sync makes durable exactly the file's unsynced operations, applied in order to its
//!   durable bytes. Writes dropped by a failed sync (`EIO`) stay readable (like the Linux page
//!   cache) but no later sync makes them durable: they are no longer unsynced operations.
//! - Without a crash armed and without faults, the sim accepts every call [`RealFs`] accepts
//!   (permissions are not modelled) and fails with the same error kinds on missing or
//!   misplaced paths.
//! - A cut never invents data: every byte it leaves is durable, or was written (possibly by an
//!   unsynced operation the cut kept, possibly overwritten since), or is a zero of a hole or
//!   extension, or, for [`FileCut::Garbage`] only, garbage where an unsynced write changed it.
//! - Determinism: the same calls with the same seeds give the same results. No clock, no hash
//!   order, randomness only from a seeded splitmix64 per file and per directory.
//!
//! [`RealFs`]: super::RealFs

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Bytes, OpenMode, ReadMode, Storage, StorageFile};

/// Page size of the [`FileCut::KeepPages`] cut.
pub const PAGE_BYTES: usize = 4096;
/// Sector size of the [`FileCut::TornLastWrite`] and [`FileCut::Garbage`] cuts.
pub const SECTOR_BYTES: usize = 512;
/// Largest file the sim holds (it is in memory); writing or extending beyond fails with `EFBIG`.
pub const MAX_FILE_BYTES: usize = 1 << 30;
/// How many operation descriptions [`SimFs::log`] keeps (the most recent ones).
pub const LOG_CAPACITY: usize = 10_000;

const ROOT: u64 = 0;
const FILE_SALT: u64 = 0x6669_6c65_2d63_7574; // "file-cut"
const DIR_SALT: u64 = 0x6469_722d_6375_7473; // "dir-cuts"

/// What happens to each file's unsynced data at a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileCut {
    /// Every file keeps only its durable bytes.
    DropUnsynced,
    /// Each file keeps a random prefix (possibly empty or all) of its unsynced operations,
    /// applied in order to its durable bytes.
    KeepPrefix,
    /// For each 4 KiB page where the synced-to-be and durable versions differ, a random one of
    /// the two. The size is the new size if any page reaching between the two sizes took the new
    /// version, else the durable size; a byte a chosen version does not have reads as zero.
    KeepPages,
    /// All unsynced operations but the last are kept; the last write is kept only for a random
    /// number (possibly zero, possibly all) of whole 512-byte sectors, counted from its start and
    /// aligned to absolute file offsets 512·k; a last `set_len` is kept or not.
    TornLastWrite,
    /// Like [`FileCut::KeepPages`] with 512-byte sectors, each differing sector being the
    /// durable version, the new version or random garbage. By default a garbage sector keeps
    /// the bytes both versions agree on: only what the unsynced writes changed is scrambled (see
    /// [`SimFs::set_powersafe_overwrite`]).
    Garbage,
    /// The size becomes the new size, but every byte beyond the durable size reads as zero and
    /// every overwrite of durable bytes is dropped (the extension made it, the data did not).
    ZeroExtension,
    /// Live bytes become durable, including bytes a failed sync dropped (the page cache keeps
    /// them): what survives a process crash (`kill -9`).
    KeepAll,
}

impl FileCut {
    /// Every file cut, in declaration order.
    pub const ALL: [FileCut; 7] = [
        FileCut::DropUnsynced,
        FileCut::KeepPrefix,
        FileCut::KeepPages,
        FileCut::TornLastWrite,
        FileCut::Garbage,
        FileCut::ZeroExtension,
        FileCut::KeepAll,
    ];
}

/// What happens to each directory's pending operations at a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DirCut {
    /// Only durable entries survive.
    DropPending,
    /// A random prefix of each directory's pending operations, applied in order to its durable
    /// entries.
    KeepPrefix,
    /// A random subset of each directory's pending operations, applied in order to its durable
    /// entries; a rename whose source is not there (or names another file) is skipped.
    KeepSubset,
    /// Live entries become durable.
    KeepAll,
}

impl DirCut {
    /// Every directory cut, in declaration order.
    pub const ALL: [DirCut; 4] = [
        DirCut::DropPending,
        DirCut::KeepPrefix,
        DirCut::KeepSubset,
        DirCut::KeepAll,
    ];
}

/// A way to lose power: what happens to file data and to directory entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cut {
    /// What happens to unsynced file data.
    pub file: FileCut,
    /// What happens to pending directory operations.
    pub dir: DirCut,
}

impl Cut {
    /// A cut from its two halves.
    pub const fn new(file: FileCut, dir: DirCut) -> Cut {
        Cut { file, dir }
    }

    /// Every combination of [`FileCut`] and [`DirCut`], except that [`FileCut::KeepAll`] pairs
    /// only with [`DirCut::KeepAll`] (that pair is [`Cut::process_crash`]).
    pub fn all() -> Vec<Cut> {
        let mut cuts = Vec::new();
        for file in FileCut::ALL {
            if file == FileCut::KeepAll {
                cuts.push(Cut::process_crash());
            } else {
                cuts.extend(DirCut::ALL.into_iter().map(|dir| Cut { file, dir }));
            }
        }
        cuts
    }

    /// The process died but the machine did not: everything live survives.
    pub const fn process_crash() -> Cut {
        Cut {
            file: FileCut::KeepAll,
            dir: DirCut::KeepAll,
        }
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Cut::process_crash() {
            write!(f, "process crash (files KeepAll, dirs KeepAll)")
        } else {
            write!(f, "power cut (files {:?}, dirs {:?})", self.file, self.dir)
        }
    }
}

/// A one-shot fault: it fires on the chosen call, then the sim behaves normally again.
///
/// Calls are counted from the creation of the [`SimFs`], from 0, whatever handle they go
/// through ([`SimFs::data_syncs`] and [`SimFs::writes`] tell how many happened so far). A call
/// refused because of [`SimFs::crash_at`] is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The `nth_sync`-th `sync_data` of a regular file fails with `EIO` (raw os error 5) and
    /// drops the dirty pages: the file's unsynced operations are discarded. Durable bytes stay as
    /// they were; live bytes too, so reads still show the data, but no later sync makes the
    /// dropped writes durable.
    SyncEio {
        /// Which `sync_data` call (0 = the first).
        nth_sync: u64,
    },
    /// The `nth_write`-th `write_at` fails with `ENOSPC` (raw os error 28) and writes nothing.
    Enospc {
        /// Which `write_at` call (0 = the first).
        nth_write: u64,
    },
    /// The `nth_write`-th `write_at` writes only a prefix (half its length rounded down to a
    /// multiple of 512 bytes, possibly nothing) and then fails with `ENOSPC`.
    ShortWrite {
        /// Which `write_at` call (0 = the first).
        nth_write: u64,
    },
}

/// The simulated file system. Clones share the same state (hand one to the engine as an
/// `Arc<dyn Storage>` and inspect it through another); [`SimFs::power_cut`] makes an
/// independent one.
///
/// What a power cut keeps of a file written, synced, then written again:
///
/// ```
/// use std::path::Path;
/// use turnwal_journal::storage::sim::{Cut, DirCut, FileCut, SimFs};
/// use turnwal_journal::storage::{OpenMode, Storage};
///
/// # fn main() -> std::io::Result<()> {
/// let fs = SimFs::new();
/// fs.create_dir_all_durable("/j")?;
/// let file = fs.open(Path::new("/j/log"), OpenMode::CreateNew)?;
/// file.write_at(0, b"synced")?;
/// file.sync_data()?;
/// fs.sync_dir(Path::new("/j"))?; // the name, too, is durable now
/// file.write_at(6, b", not synced")?;
/// assert_eq!(fs.read("/j/log").as_deref(), Some(&b"synced, not synced"[..]));
///
/// let lost_power = fs.power_cut(Cut::new(FileCut::DropUnsynced, DirCut::DropPending), 0);
/// assert_eq!(lost_power.read("/j/log").as_deref(), Some(&b"synced"[..]));
/// let killed = fs.power_cut(Cut::process_crash(), 0); // kill -9: the page cache survives
/// assert_eq!(killed.read("/j/log").as_deref(), Some(&b"synced, not synced"[..]));
/// # Ok(()) }
/// ```
///
/// A crash test runs the code under test once per operation index `n`, with
/// [`SimFs::crash_at`]`(Some(n))`, then checks every [`Cut::all`] of what it left (as
/// `turnwal`'s `examples/crash_test_harness.rs` does for a whole agent harness):
///
/// ```
/// # use std::path::Path;
/// # use turnwal_journal::storage::sim::{Cut, SimFs};
/// # use turnwal_journal::storage::{OpenMode, Storage};
/// // The code under test: write a file durably, and say when it is.
/// fn save(fs: &SimFs, promised: &mut bool) -> std::io::Result<()> {
///     let file = fs.open(Path::new("/j/state"), OpenMode::CreateNew)?;
///     file.write_at(0, b"v1")?;
///     file.sync_data()?;
///     fs.sync_dir(Path::new("/j"))?;
///     *promised = true;
///     Ok(())
/// }
///
/// fn fresh() -> std::io::Result<SimFs> {
///     let fs = SimFs::new();
///     fs.create_dir_all_durable("/j")?;
///     Ok(fs)
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let ops = { let fs = fresh()?; save(&fs, &mut false)?; fs.ops() };
/// for n in 0..=ops {
///     let fs = fresh()?;
///     fs.crash_at(Some(n)); // operation n and every later one fail: the process died there
///     let mut promised = false;
///     let _ = save(&fs, &mut promised);
///     for cut in Cut::all() {
///         for seed in 0..3 {
///             let state = fs.power_cut(cut, seed).read("/j/state");
///             if promised {
///                 assert_eq!(state.as_deref(), Some(&b"v1"[..]), "{cut} at operation {n}");
///             }
///         }
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.st();
        f.debug_struct("SimFs")
            .field("ops", &st.ops)
            .field("dirs", &st.dirs.len())
            .field("files", &st.inodes.len())
            .field("crash_at", &st.crash_at)
            .field("crashed", &st.crashed)
            .finish()
    }
}

impl SimFs {
    /// An empty file system: only the root directory `/`.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// How many mutating operations were called so far (each got the index it was called with,
    /// from 0). Calls refused after a crash count too.
    pub fn ops(&self) -> u64 {
        self.st().ops
    }

    /// How many `write_at` calls reached the file system so far (for [`Fault::Enospc`] and
    /// [`Fault::ShortWrite`]).
    pub fn writes(&self) -> u64 {
        self.st().writes
    }

    /// How many `sync_data` calls on regular files reached the file system so far (for
    /// [`Fault::SyncEio`]).
    pub fn data_syncs(&self) -> u64 {
        self.st().data_syncs
    }

    /// Descriptions of the recent mutating operations, oldest first (at most
    /// [`LOG_CAPACITY`]), e.g. `"#12 write segment-00000000000000000001.twl @4096 len 120"`.
    /// The first operation refused by a crash is logged as `"#n power lost before: …"`.
    pub fn log(&self) -> Vec<String> {
        self.st().log.iter().cloned().collect()
    }

    /// Arms (or with `None` disarms) the simulated death of the process: operation index `at`
    /// and every later mutating operation fail with `simulated power loss` and change nothing.
    /// Resets [`SimFs::crashed`].
    pub fn crash_at(&self, at: Option<u64>) {
        let mut st = self.st();
        st.crash_at = at;
        st.crashed = false;
    }

    /// Whether the armed crash triggered (some operation was refused).
    pub fn crashed(&self) -> bool {
        self.st().crashed
    }

    /// Whether a [`FileCut::Garbage`] sector keeps the bytes its durable and new versions
    /// agree on (`true`, the default: a write never damages bytes it does not change, the
    /// "powersafe overwrite" SQLite assumes of modern disks), or is garbage through and through,
    /// durable bytes sharing the sector included (`false`: a disk that may scramble a whole sector
    /// it was writing). Carried over by [`SimFs::power_cut`].
    pub fn set_powersafe_overwrite(&self, on: bool) {
        self.st().powersafe_overwrite = on;
    }

    /// Arms a one-shot fault.
    pub fn inject(&self, fault: Fault) {
        self.st().faults.push(fault);
    }

    /// The state after a power loss, as a new independent file system: every file and directory
    /// cut as `cut` says with randomness from `seed` (per file and per directory), everything
    /// live equal to durable, no handles, no locks, no operations counted, no crash or fault
    /// armed. Files and directories no longer reachable from the root are gone. `self` is not
    /// changed, so one recorded crash point can be cut many ways.
    pub fn power_cut(&self, cut: Cut, seed: u64) -> SimFs {
        let st = self.st();
        let mut out = State {
            next_id: st.next_id,
            powersafe_overwrite: st.powersafe_overwrite,
            ..State::default()
        };
        out.dirs.clear();
        let mut queue = VecDeque::from([ROOT]);
        let mut seen = BTreeSet::from([ROOT]);
        let mut files = BTreeSet::new();
        while let Some(id) = queue.pop_front() {
            let Some(dir) = st.dirs.get(&id) else {
                continue;
            };
            let mut entries = dir.after_cut(cut.dir, &mut stream(seed, id, DIR_SALT));
            entries.retain(|_, e| match *e {
                Entry::File(i) => st.inodes.contains_key(&i),
                Entry::Dir(d) => st.dirs.contains_key(&d),
            });
            for e in entries.values() {
                match *e {
                    Entry::File(i) => {
                        files.insert(i);
                    }
                    Entry::Dir(d) => {
                        if seen.insert(d) {
                            queue.push_back(d);
                        }
                    }
                }
            }
            out.dirs.insert(
                id,
                Dir {
                    name: dir.name.clone(),
                    live: entries.clone(),
                    durable: entries,
                    pending: Vec::new(),
                },
            );
        }
        for id in files {
            if let Some(inode) = st.inodes.get(&id) {
                let bytes = inode.after_cut(
                    cut.file,
                    st.powersafe_overwrite,
                    &mut stream(seed, id, FILE_SALT),
                );
                out.inodes.insert(
                    id,
                    Inode {
                        name: inode.name.clone(),
                        live: bytes.clone(),
                        durable: bytes,
                        unsynced: Vec::new(),
                    },
                );
            }
        }
        SimFs {
            state: Arc::new(Mutex::new(out)),
        }
    }

    /// Set-up helper: creates `dir` and its missing ancestors as if they had existed before the
    /// test (durable at once, not counted as operations, not logged, never refused by a crash).
    pub fn create_dir_all_durable(&self, dir: impl AsRef<Path>) -> io::Result<()> {
        let mut st = self.st();
        let mut cur = ROOT;
        for name in components(dir.as_ref()) {
            let child = match st.dir(cur)?.live.get(&name).copied() {
                Some(Entry::Dir(d)) => d,
                Some(Entry::File(_)) => return Err(os(libc::ENOTDIR)),
                None => {
                    let id = st.new_id();
                    st.dirs.insert(id, Dir::named(&name));
                    id
                }
            };
            let parent = st.dir_mut(cur)?;
            parent.live.insert(name.clone(), Entry::Dir(child));
            parent.durable.insert(name, Entry::Dir(child));
            cur = child;
        }
        Ok(())
    }

    /// Names of the regular files (not directories) live in `dir`, sorted; empty if `dir` does
    /// not exist.
    pub fn files(&self, dir: impl AsRef<Path>) -> Vec<String> {
        let st = self.st();
        let Ok(Entry::Dir(id)) = st.lookup(dir.as_ref()) else {
            return Vec::new();
        };
        st.dirs.get(&id).map_or_else(Vec::new, |d| {
            d.live
                .iter()
                .filter(|(_, e)| matches!(e, Entry::File(_)))
                .filter_map(|(n, _)| n.to_str().map(str::to_string))
                .collect()
        })
    }

    /// The live bytes of the file at `path` (what a read sees), or `None` if there is none.
    pub fn read(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let st = self.st();
        match st.lookup(path.as_ref()).ok()? {
            Entry::File(i) => st.inodes.get(&i).map(|n| n.live.clone()),
            Entry::Dir(_) => None,
        }
    }

    /// The durable bytes of the file that `path` names now (live name), or `None` if there is
    /// none. Whether the name itself is durable is a separate matter ([`SimFs::is_durable`]).
    pub fn durable(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let st = self.st();
        match st.lookup(path.as_ref()).ok()? {
            Entry::File(i) => st.inodes.get(&i).map(|n| n.durable.clone()),
            Entry::Dir(_) => None,
        }
    }

    /// Whether `path` resolves through durable directory entries alone (it would survive a
    /// [`DirCut::DropPending`] cut).
    pub fn is_durable(&self, path: impl AsRef<Path>) -> bool {
        let st = self.st();
        let mut cur = Entry::Dir(ROOT);
        for name in components(path.as_ref()) {
            let Entry::Dir(d) = cur else {
                return false;
            };
            match st.dirs.get(&d).and_then(|d| d.durable.get(&name)) {
                Some(e) => cur = *e,
                None => return false,
            }
        }
        true
    }

    /// How many files reachable by a live name have unsynced operations.
    pub fn unsynced_files(&self) -> usize {
        let st = self.st();
        st.live_files()
            .iter()
            .filter(|i| st.inodes.get(i).is_some_and(|n| !n.unsynced.is_empty()))
            .count()
    }

    /// How many directory operations are pending (not yet made durable by `sync_dir`), over all
    /// directories reachable by a live name.
    pub fn pending_dir_ops(&self) -> usize {
        let st = self.st();
        st.live_dirs()
            .iter()
            .filter_map(|d| st.dirs.get(d))
            .map(|d| d.pending.len())
            .sum()
    }
}

impl Storage for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st();
        let names = components(dir);
        // Walk the existing part without counting anything.
        let mut cur = ROOT;
        let mut depth = 0;
        for name in &names {
            match st.dir(cur)?.live.get(name) {
                Some(Entry::Dir(d)) => {
                    cur = *d;
                    depth += 1;
                }
                Some(Entry::File(_)) => {
                    return Err(if depth + 1 == names.len() {
                        io::Error::new(io::ErrorKind::NotADirectory, "not a directory")
                    } else {
                        os(libc::ENOTDIR)
                    });
                }
                None => break,
            }
        }
        if depth == names.len() {
            return Ok(());
        }
        let desc = format!("mkdir {}", display_name(dir));
        st.op(desc, |st| {
            for name in names.into_iter().skip(depth) {
                let id = st.new_id();
                st.dirs.insert(id, Dir::named(&name));
                let parent = st.dir_mut(cur)?;
                parent.live.insert(name.clone(), Entry::Dir(id));
                parent.pending.push(DirOp::Link {
                    name,
                    entry: Entry::Dir(id),
                });
                cur = id;
            }
            Ok(())
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        match self.st().lookup(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.st();
        match st.lookup(dir)? {
            Entry::Dir(d) => Ok(st
                .dir(d)?
                .live
                .keys()
                .filter_map(|n| n.to_str().map(str::to_string))
                .collect()),
            Entry::File(_) => Err(os(libc::ENOTDIR)),
        }
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut st = self.st();
        let node = match mode {
            OpenMode::ReadOnly | OpenMode::ReadWrite => {
                let node = st.lookup(path)?;
                if mode == OpenMode::ReadWrite && matches!(node, Entry::Dir(_)) {
                    return Err(os(libc::EISDIR));
                }
                node
            }
            OpenMode::CreateNew => {
                let desc = format!("create {}", display_name(path));
                st.op(desc, |st| {
                    let (parent, name) = st.parent_of(path, libc::EEXIST)?;
                    if st.dir(parent)?.live.contains_key(&name) {
                        return Err(os(libc::EEXIST));
                    }
                    Ok(Entry::File(st.create_file(parent, name)?))
                })?
            }
        };
        Ok(Box::new(st.handle(
            &self.state,
            node,
            mode != OpenMode::ReadOnly,
        )))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st();
        let desc = format!("rename {} -> {}", display_name(from), display_name(to));
        st.op(desc, |st| st.rename(from, to))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        let desc = format!("remove {}", display_name(path));
        st.op(desc, |st| {
            let (parent, name) = st.parent_of(path, libc::EISDIR)?;
            let dir = st.dir_mut(parent)?;
            match dir.live.get(&name) {
                None => Err(os(libc::ENOENT)),
                Some(Entry::Dir(_)) => Err(os(libc::EISDIR)),
                Some(Entry::File(_)) => {
                    dir.live.remove(&name);
                    dir.pending.push(DirOp::Unlink { name });
                    Ok(())
                }
            }
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st();
        let desc = format!("sync_dir {}", display_name(dir));
        st.op(desc, |st| match st.lookup(dir)? {
            Entry::Dir(d) => {
                st.dir_mut(d)?.sync();
                Ok(())
            }
            // fsync of a regular file opened by name: makes it durable.
            Entry::File(i) => {
                st.inode_mut(i)?.sync();
                Ok(())
            }
        })
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        let mut st = self.st();
        let ino = match st.lookup(path) {
            Ok(Entry::File(i)) => i,
            Ok(Entry::Dir(_)) => return Err(os(libc::EISDIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let desc = format!("create+lock {}", display_name(path));
                st.op(desc, |st| {
                    let (parent, name) = st.parent_of(path, libc::EISDIR)?;
                    st.create_file(parent, name)
                })?
            }
            Err(e) => return Err(e),
        };
        if st.locks.contains_key(&ino) {
            return Ok(None);
        }
        let mut file = st.handle(&self.state, Entry::File(ino), true);
        st.locks.insert(ino, file.handle);
        file.holds_lock = true;
        Ok(Some(Box::new(file)))
    }
}

/// An open file (or directory, opened read-only) of a [`SimFs`].
struct SimFile {
    state: Arc<Mutex<State>>,
    node: Entry,
    writable: bool,
    handle: u64,
    holds_lock: bool,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("node", &self.node)
            .field("writable", &self.writable)
            .field("holds_lock", &self.holds_lock)
            .finish()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        if self.holds_lock
            && let Entry::File(ino) = self.node
        {
            let mut st = lock(&self.state);
            if st.locks.get(&ino) == Some(&self.handle) {
                st.locks.remove(&ino);
            }
        }
    }
}

impl SimFile {
    /// The inode of a regular file opened for writing.
    fn writable_inode(&self) -> io::Result<u64> {
        match self.node {
            Entry::File(i) if self.writable => Ok(i),
            _ => Err(os(libc::EBADF)),
        }
    }

    /// The inode of a regular file.
    fn inode(&self) -> io::Result<u64> {
        match self.node {
            Entry::File(i) => Ok(i),
            Entry::Dir(_) => Err(os(libc::EISDIR)),
        }
    }
}

impl StorageFile for SimFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut st = lock(&self.state);
        let desc = format!(
            "write {} @{offset} len {}",
            st.name_of(self.node),
            buf.len()
        );
        st.op(desc, |st| {
            let ino = self.writable_inode()?;
            let start = usize::try_from(offset).map_err(|_| os(libc::EFBIG))?;
            start
                .checked_add(buf.len())
                .filter(|end| *end <= MAX_FILE_BYTES)
                .ok_or_else(|| os(libc::EFBIG))?;
            let nth = st.writes;
            st.writes += 1;
            let mut data = buf;
            let mut result = Ok(());
            match st.take_fault(|f| {
                matches!(f, Fault::Enospc { nth_write } | Fault::ShortWrite { nth_write }
                    if *nth_write == nth)
            }) {
                Some(Fault::Enospc { .. }) => {
                    st.note = Some("injected ENOSPC, nothing written".to_string());
                    return Err(os(libc::ENOSPC));
                }
                Some(Fault::ShortWrite { .. }) => {
                    let keep = buf.len() / 2 / SECTOR_BYTES * SECTOR_BYTES;
                    data = buf.get(..keep).unwrap_or_default();
                    st.note = Some(format!("injected short write: {keep} bytes, then ENOSPC"));
                    result = Err(os(libc::ENOSPC));
                }
                _ => {}
            }
            if !data.is_empty() {
                st.inode_mut(ino)?.apply(FileOp::Write {
                    offset: start,
                    data: data.to_vec(),
                });
            }
            result
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let st = lock(&self.state);
        let ino = self.inode()?;
        let live = &st.inode(ino)?.live;
        let Some(start) = usize::try_from(offset).ok().filter(|s| *s < live.len()) else {
            return Ok(0);
        };
        let src = live.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        let st = lock(&self.state);
        match self.node {
            Entry::File(i) => Ok(st.inode(i)?.live.len() as u64),
            Entry::Dir(_) => Ok(0),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = lock(&self.state);
        let desc = format!("set_len {} {len}", st.name_of(self.node));
        st.op(desc, |st| {
            let ino = self.writable_inode().map_err(|_| os(libc::EINVAL))?;
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= MAX_FILE_BYTES)
                .ok_or_else(|| os(libc::EFBIG))?;
            st.inode_mut(ino)?.apply(FileOp::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = lock(&self.state);
        let desc = format!("sync_data {}", st.name_of(self.node));
        st.op(desc, |st| match self.node {
            // fsync of a directory handle is a directory sync.
            Entry::Dir(d) => {
                st.dir_mut(d)?.sync();
                Ok(())
            }
            Entry::File(ino) => {
                let nth = st.data_syncs;
                st.data_syncs += 1;
                if st
                    .take_fault(|f| matches!(f, Fault::SyncEio { nth_sync } if *nth_sync == nth))
                    .is_some()
                {
                    let inode = st.inode_mut(ino)?;
                    let dropped = inode.unsynced.len();
                    inode.unsynced.clear();
                    st.note = Some(format!(
                        "injected EIO, {dropped} unsynced operations dropped"
                    ));
                    return Err(os(libc::EIO));
                }
                st.inode_mut(ino)?.sync();
                Ok(())
            }
        })
    }

    fn read_all(&self, _mode: ReadMode) -> io::Result<Bytes> {
        let st = lock(&self.state);
        Ok(Bytes::Owned(st.inode(self.inode()?)?.live.clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// State

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn power_loss() -> io::Error {
    io::Error::other("simulated power loss")
}

/// The normalized components of `path`, from the root.
fn components(path: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The last component of `path` for the log (`/` for the root).
fn display_name(path: &Path) -> String {
    components(path)
        .last()
        .map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Clone)]
enum FileOp {
    Write { offset: usize, data: Vec<u8> },
    SetLen(usize),
}

impl FileOp {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            FileOp::Write { offset, data } => {
                let end = offset + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                if let Some(dst) = bytes.get_mut(*offset..end) {
                    dst.copy_from_slice(data);
                }
            }
            FileOp::SetLen(len) => bytes.resize(*len, 0),
        }
    }
}

fn replay(base: &[u8], ops: &[FileOp]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for op in ops {
        op.apply(&mut bytes);
    }
    bytes
}

#[derive(Debug, Clone)]
enum DirOp {
    Link {
        name: OsString,
        entry: Entry,
    },
    Unlink {
        name: OsString,
    },
    Rename {
        from: OsString,
        to: OsString,
        entry: Entry,
    },
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<OsString, Entry>) {
        match self {
            DirOp::Link { name, entry } => {
                entries.insert(name.clone(), *entry);
            }
            DirOp::Unlink { name } => {
                entries.remove(name);
            }
            DirOp::Rename { from, to, entry } => {
                if entries.get(from) == Some(entry) {
                    entries.remove(from);
                    entries.insert(to.clone(), *entry);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Dir {
    /// Last component of the directory's name, for the log.
    name: String,
    live: BTreeMap<OsString, Entry>,
    durable: BTreeMap<OsString, Entry>,
    pending: Vec<DirOp>,
}

impl Dir {
    fn named(name: &OsString) -> Dir {
        Dir {
            name: name.to_string_lossy().into_owned(),
            ..Dir::default()
        }
    }

    fn sync(&mut self) {
        self.durable = self.live.clone();
        self.pending.clear();
    }

    fn after_cut(&self, cut: DirCut, rng: &mut SplitMix64) -> BTreeMap<OsString, Entry> {
        match cut {
            DirCut::DropPending => self.durable.clone(),
            DirCut::KeepAll => self.live.clone(),
            DirCut::KeepPrefix => {
                let keep = rng.below(self.pending.len() as u64 + 1) as usize;
                let mut entries = self.durable.clone();
                for op in self.pending.iter().take(keep) {
                    op.apply(&mut entries);
                }
                entries
            }
            DirCut::KeepSubset => {
                let mut entries = self.durable.clone();
                for op in &self.pending {
                    if rng.coin() {
                        op.apply(&mut entries);
                    }
                }
                entries
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// Last component of the file's latest name, for the log.
    name: String,
    live: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<FileOp>,
}

impl Inode {
    fn apply(&mut self, op: FileOp) {
        op.apply(&mut self.live);
        self.unsynced.push(op);
    }

    /// What a successful sync makes durable.
    fn target(&self) -> Vec<u8> {
        replay(&self.durable, &self.unsynced)
    }

    fn sync(&mut self) {
        if !self.unsynced.is_empty() {
            self.durable = self.target();
            self.unsynced.clear();
        }
    }

    fn after_cut(&self, cut: FileCut, powersafe: bool, rng: &mut SplitMix64) -> Vec<u8> {
        match cut {
            FileCut::DropUnsynced => self.durable.clone(),
            FileCut::KeepAll => self.live.clone(),
            FileCut::KeepPrefix => {
                let keep = rng.below(self.unsynced.len() as u64 + 1) as usize;
                replay(&self.durable, self.unsynced.get(..keep).unwrap_or_default())
            }
            FileCut::TornLastWrite => {
                let Some((last, rest)) = self.unsynced.split_last() else {
                    return self.durable.clone();
                };
                let mut bytes = replay(&self.durable, rest);
                match last {
                    FileOp::SetLen(_) => {
                        if rng.coin() {
                            last.apply(&mut bytes);
                        }
                    }
                    FileOp::Write { offset, data } => {
                        let keep = torn_prefix(*offset, data.len(), rng);
                        if keep > 0 {
                            FileOp::Write {
                                offset: *offset,
                                data: data.get(..keep).unwrap_or_default().to_vec(),
                            }
                            .apply(&mut bytes);
                        }
                    }
                }
                bytes
            }
            FileCut::KeepPages => mix(&self.durable, &self.target(), PAGE_BYTES, false, false, rng),
            FileCut::Garbage => mix(
                &self.durable,
                &self.target(),
                SECTOR_BYTES,
                true,
                powersafe,
                rng,
            ),
            FileCut::ZeroExtension => {
                let size = self.target().len();
                let mut bytes = self.durable.clone();
                bytes.truncate(size);
                bytes.resize(size, 0);
                bytes
            }
        }
    }
}

/// How many bytes of a write of `len` bytes at `offset` a tear keeps: 0, a prefix ending on an
/// absolute sector boundary, or all of it; uniformly among these.
fn torn_prefix(offset: usize, len: usize, rng: &mut SplitMix64) -> usize {
    if len == 0 {
        return 0;
    }
    let end = offset + len;
    let first = (offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
    let inner = if first < end {
        (end - 1 - first) / SECTOR_BYTES + 1
    } else {
        0
    };
    match rng.below(inner as u64 + 2) as usize {
        0 => 0,
        k if k <= inner => first + (k - 1) * SECTOR_BYTES - offset,
        _ => len,
    }
}

/// Block `u` of `bytes` (shorter or empty past the end).
fn block(bytes: &[u8], u: usize, unit: usize) -> &[u8] {
    let start = (u * unit).min(bytes.len());
    let end = ((u + 1) * unit).min(bytes.len());
    bytes.get(start..end).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Durable,
    New,
    Garbage,
}

/// Per `unit`-sized block where `durable` and `new` differ, a random source; see
/// [`FileCut::KeepPages`] and [`FileCut::Garbage`]. With `powersafe`, a garbage block keeps
/// the bytes both versions agree on.
fn mix(
    durable: &[u8],
    new: &[u8],
    unit: usize,
    garbage: bool,
    powersafe: bool,
    rng: &mut SplitMix64,
) -> Vec<u8> {
    let (lo, hi) = (durable.len().min(new.len()), durable.len().max(new.len()));
    let sources: Vec<Source> = (0..hi.div_ceil(unit))
        .map(|u| {
            if block(durable, u, unit) == block(new, u, unit) {
                Source::Durable
            } else if garbage {
                match rng.below(3) {
                    0 => Source::Durable,
                    1 => Source::New,
                    _ => Source::Garbage,
                }
            } else if rng.coin() {
                Source::New
            } else {
                Source::Durable
            }
        })
        .collect();
    let size = if durable.len() == new.len()
        || sources
            .get(lo / unit..)
            .unwrap_or_default()
            .iter()
            .all(|s| *s == Source::Durable)
    {
        durable.len()
    } else {
        new.len()
    };
    (0..size)
        .map(|i| match sources.get(i / unit) {
            Some(Source::New) => new.get(i).copied().unwrap_or(0),
            Some(Source::Garbage) => {
                let (d, n) = (durable.get(i).copied(), new.get(i).copied());
                match (powersafe, d.unwrap_or(0) == n.unwrap_or(0)) {
                    (true, true) => d.unwrap_or(0),
                    _ => rng.next_u64() as u8,
                }
            }
            Some(Source::Durable) | None => durable.get(i).copied().unwrap_or(0),
        })
        .collect()
}

#[derive(Debug)]
struct State {
    ops: u64,
    writes: u64,
    data_syncs: u64,
    crash_at: Option<u64>,
    crashed: bool,
    faults: Vec<Fault>,
    /// A remark of the running operation for its log line (a fault fired).
    note: Option<String>,
    log: VecDeque<String>,
    next_id: u64,
    next_handle: u64,
    dirs: BTreeMap<u64, Dir>,
    inodes: BTreeMap<u64, Inode>,
    /// Locked inode → handle holding the lock.
    locks: BTreeMap<u64, u64>,
    /// See [`SimFs::set_powersafe_overwrite`].
    powersafe_overwrite: bool,
}

impl Default for State {
    fn default() -> State {
        State {
            ops: 0,
            writes: 0,
            data_syncs: 0,
            crash_at: None,
            crashed: false,
            faults: Vec::new(),
            note: None,
            log: VecDeque::new(),
            next_id: ROOT + 1,
            next_handle: 0,
            dirs: BTreeMap::from([(
                ROOT,
                Dir {
                    name: "/".to_string(),
                    ..Dir::default()
                },
            )]),
            inodes: BTreeMap::new(),
            locks: BTreeMap::new(),
            powersafe_overwrite: true,
        }
    }
}

impl State {
    /// Runs one mutating operation: gives it the next index, refuses it after a crash, logs it.
    fn op<T>(
        &mut self,
        desc: String,
        f: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> io::Result<T> {
        let index = self.ops;
        self.ops += 1;
        if self.crash_at.is_some_and(|at| index >= at) {
            if !self.crashed {
                self.crashed = true;
                self.push_log(format!("#{index} power lost before: {desc}"));
            }
            return Err(power_loss());
        }
        self.note = None;
        let result = f(self);
        let line = match (&result, self.note.take()) {
            (Ok(_), _) => format!("#{index} {desc}"),
            (Err(e), Some(note)) => format!("#{index} {desc} -> {e} ({note})"),
            (Err(e), None) => format!("#{index} {desc} -> {e}"),
        };
        self.push_log(line);
        result
    }

    fn push_log(&mut self, line: String) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    fn take_fault(&mut self, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(pick)?;
        Some(self.faults.remove(i))
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn dir(&self, id: u64) -> io::Result<&Dir> {
        self.dirs.get(&id).ok_or_else(|| os(libc::ENOENT))
    }

    fn dir_mut(&mut self, id: u64) -> io::Result<&mut Dir> {
        self.dirs.get_mut(&id).ok_or_else(|| os(libc::ENOENT))
    }

    fn inode(&self, id: u64) -> io::Result<&Inode> {
        self.inodes.get(&id).ok_or_else(|| os(libc::ENOENT))
    }

    fn inode_mut(&mut self, id: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&id).ok_or_else(|| os(libc::ENOENT))
    }

    fn name_of(&self, node: Entry) -> String {
        match node {
            Entry::File(i) => self.inodes.get(&i).map(|n| n.name.clone()),
            Entry::Dir(d) => self.dirs.get(&d).map(|d| d.name.clone()),
        }
        .unwrap_or_default()
    }

    /// Resolves `path` through live entries.
    fn lookup(&self, path: &Path) -> io::Result<Entry> {
        self.lookup_components(&components(path))
    }

    fn lookup_components(&self, names: &[OsString]) -> io::Result<Entry> {
        let mut cur = Entry::Dir(ROOT);
        for name in names {
            cur = match cur {
                Entry::Dir(d) => *self
                    .dir(d)?
                    .live
                    .get(name)
                    .ok_or_else(|| os(libc::ENOENT))?,
                Entry::File(_) => return Err(os(libc::ENOTDIR)),
            };
        }
        Ok(cur)
    }

    /// The live parent directory of `path` and the last name; `root_errno` if `path` is the
    /// root.
    fn parent_of(&self, path: &Path, root_errno: i32) -> io::Result<(u64, OsString)> {
        let mut names = components(path);
        let name = names.pop().ok_or_else(|| os(root_errno))?;
        match self.lookup_components(&names)? {
            Entry::Dir(d) => Ok((d, name)),
            Entry::File(_) => Err(os(libc::ENOTDIR)),
        }
    }

    fn create_file(&mut self, parent: u64, name: OsString) -> io::Result<u64> {
        let id = self.new_id();
        let dir = self.dir_mut(parent)?;
        dir.live.insert(name.clone(), Entry::File(id));
        dir.pending.push(DirOp::Link {
            name: name.clone(),
            entry: Entry::File(id),
        });
        self.inodes.insert(
            id,
            Inode {
                name: name.to_string_lossy().into_owned(),
                ..Inode::default()
            },
        );
        Ok(id)
    }

    fn handle(&mut self, state: &Arc<Mutex<State>>, node: Entry, writable: bool) -> SimFile {
        let handle = self.next_handle;
        self.next_handle += 1;
        SimFile {
            state: Arc::clone(state),
            node,
            writable,
            handle,
            holds_lock: false,
        }
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (src, from_name) = self.parent_of(from, libc::EBUSY)?;
        let entry = *self
            .dir(src)?
            .live
            .get(&from_name)
            .ok_or_else(|| os(libc::ENOENT))?;
        let (dst, to_name) = self.parent_of(to, libc::EBUSY)?;
        if let Entry::Dir(_) = entry {
            let (f, t) = (components(from), components(to));
            if t.len() > f.len() && t.starts_with(&f) {
                return Err(os(libc::EINVAL)); // a directory into its own subtree
            }
        }
        match (entry, self.dir(dst)?.live.get(&to_name).copied()) {
            (_, Some(old)) if old == entry => return Ok(()), // same file: nothing to do
            (Entry::File(_), Some(Entry::Dir(_))) => return Err(os(libc::EISDIR)),
            (Entry::Dir(_), Some(Entry::File(_))) => return Err(os(libc::ENOTDIR)),
            (Entry::Dir(_), Some(Entry::Dir(d))) if !self.dir(d)?.live.is_empty() => {
                return Err(os(libc::ENOTEMPTY));
            }
            _ => {}
        }
        if src == dst {
            let dir = self.dir_mut(src)?;
            dir.live.remove(&from_name);
            dir.live.insert(to_name.clone(), entry);
            dir.pending.push(DirOp::Rename {
                from: from_name,
                to: to_name.clone(),
                entry,
            });
        } else {
            let dir = self.dir_mut(src)?;
            dir.live.remove(&from_name);
            dir.pending.push(DirOp::Unlink { name: from_name });
            let dir = self.dir_mut(dst)?;
            dir.live.insert(to_name.clone(), entry);
            dir.pending.push(DirOp::Link {
                name: to_name.clone(),
                entry,
            });
        }
        let name = to_name.to_string_lossy().into_owned();
        match entry {
            Entry::File(i) => self.inode_mut(i)?.name = name,
            Entry::Dir(d) => self.dir_mut(d)?.name = name,
        }
        Ok(())
    }

    /// Directories reachable from the root by live names.
    fn live_dirs(&self) -> BTreeSet<u64> {
        let mut seen = BTreeSet::from([ROOT]);
        let mut queue = VecDeque::from([ROOT]);
        while let Some(d) = queue.pop_front() {
            for e in self.dirs.get(&d).into_iter().flat_map(|d| d.live.values()) {
                if let Entry::Dir(c) = *e
                    && seen.insert(c)
                {
                    queue.push_back(c);
                }
            }
        }
        seen
    }

    /// Files reachable from the root by live names.
    fn live_files(&self) -> BTreeSet<u64> {
        self.live_dirs()
            .iter()
            .filter_map(|d| self.dirs.get(d))
            .flat_map(|d| d.live.values())
            .filter_map(|e| match *e {
                Entry::File(i) => Some(i),
                Entry::Dir(_) => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// splitmix64: a tiny, fast, well-mixed seeded generator.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
}

/// The generator of one file or directory (`id`) for one cut seed.
fn stream(seed: u64, id: u64, salt: u64) -> SplitMix64 {
    let mut mixer = SplitMix64(seed ^ salt);
    let a = mixer.next_u64();
    let mut mixer = SplitMix64(a ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    SplitMix64(mixer.next_u64())
}
