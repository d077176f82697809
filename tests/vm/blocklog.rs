//! The block log QEMU's `blklogwrites` driver records (the format of Linux's dm-log-writes), and
//! the crash states replayed from it.
//!
//! Layout (all integers little-endian; `S` = the log sector size, 512 here): sector 0 holds the
//! super block `{magic u64 = 0x6a736677736872, version u64 = 1, nr_entries u64, sectorsize u32}`;
//! from sector 1 on, each entry is one sector holding `{sector u64, nr_sectors u64, flags u64,
//! data_len u64}` followed by `nr_sectors` sectors of the written data (none for a flush or a
//! discard; zeros for a write-zeroes). Flags: FLUSH 1, FUA 2, DISCARD 4, MARK 8. `sector` and
//! `nr_sectors` count log sectors of the disk. QEMU performs a request on the disk image first,
//! then appends its entry, then completes it to the guest: an entry is in the log before the
//! guest hears its request finished, and a write the guest saw complete before it asked for a
//! flush is logged before that flush. Entries are in the order the requests completed.
//!
//! A replayed state is the disk at a power cut: the base image, then every entry up to and
//! including flush `k` (they were durable), then a random choice among the writes logged after
//! flush `k` and before the next one (acknowledged by the disk but not yet flushed: each may be
//! lost or kept, in any order, and each kept one torn — only some of its 512-byte sectors
//! written; ext4's superblock, two sectors under one checksum, is kept whole or not at all). Writes after flush `k + 1` need not be considered with flush `k`: a state holding
//! one of them is a later state with its own flush.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::feeder::Rng;

const MAGIC: u64 = 0x006a_7366_7773_6872;
const FLUSH: u64 = 1;
const FUA: u64 = 2;
const DISCARD: u64 = 4;
const MARK: u64 = 8;
/// Where ext4's primary superblock lives on the disk.
const SUPERBLOCK: std::ops::Range<u64> = 1024..2048;

/// One logged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Byte offset of the entry's header in the log.
    pub at: u64,
    /// Byte offset of the request on the disk.
    pub disk_offset: u64,
    /// Bytes of the request.
    pub bytes: u64,
    /// FLUSH / FUA / DISCARD / MARK bits.
    pub flags: u64,
    /// Byte offset of the written data in the log (writes only).
    pub data_at: u64,
}

impl Entry {
    pub fn is_flush(&self) -> bool {
        self.flags & FLUSH != 0
    }

    /// A write or discard: something that changes the disk.
    pub fn is_write(&self) -> bool {
        self.flags & MARK == 0 && self.bytes > 0
    }
}

/// A parsed log.
#[derive(Debug, Clone)]
pub struct Log {
    pub entries: Vec<Entry>,
    /// Indexes (in `entries`) of the flushes, and of FUA writes, which are durable once done.
    pub flushes: Vec<usize>,
}

impl Log {
    /// Reads the log of a finished recording. Entries are read in order while their headers are
    /// valid; the super block's count (updated at every flush) must be reached.
    pub fn read(path: &Path, disk_bytes: u64) -> Result<Log, String> {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        let mut sb = [0u8; 28];
        f.read_exact_at(&mut sb, 0)
            .map_err(|e| format!("block log super block: {e}"))?;
        let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if u64_at(&sb, 0) != MAGIC || u64_at(&sb, 8) != 1 {
            return Err("block log: bad magic or version".into());
        }
        let nr_entries = u64_at(&sb, 16);
        let sector = u64::from(u32::from_le_bytes(sb[24..28].try_into().unwrap()));
        if !sector.is_power_of_two() || sector < 512 {
            return Err(format!("block log: sector size {sector}"));
        }
        let mut entries = Vec::new();
        let mut flushes = Vec::new();
        let mut at = sector;
        let mut head = [0u8; 32];
        while at + sector <= len {
            f.read_exact_at(&mut head, at).map_err(|e| e.to_string())?;
            let (s, n, flags) = (u64_at(&head, 0), u64_at(&head, 8), u64_at(&head, 16));
            let known = FLUSH | FUA | DISCARD | MARK;
            if flags & !known != 0 || (flags == 0 && n == 0) {
                break;
            }
            let bytes = n * sector;
            let data_at = at + sector;
            let has_data = flags & DISCARD == 0;
            if (s * sector + bytes > disk_bytes) || (has_data && data_at + bytes > len) {
                break;
            }
            let e = Entry {
                at,
                disk_offset: s * sector,
                bytes,
                flags,
                data_at,
            };
            if e.is_flush() || flags & FUA != 0 {
                flushes.push(entries.len());
            }
            entries.push(e);
            at = data_at + if has_data { bytes } else { 0 };
        }
        if (entries.len() as u64) < nr_entries {
            return Err(format!(
                "block log: {} entries readable, the super block counts {nr_entries}",
                entries.len()
            ));
        }
        Ok(Log { entries, flushes })
    }

    /// How many flushes precede log offset `pos`: an acknowledgement read from the console
    /// when the log was `pos` bytes long is made durable by one of them.
    pub fn flushes_before(&self, pos: u64) -> usize {
        self.flushes
            .iter()
            .take_while(|&&i| self.entries[i].at < pos)
            .count()
    }

    /// Entry indexes after flush `k` (0: from the start) and before flush `k + 1`.
    pub fn window(&self, k: usize) -> std::ops::Range<usize> {
        let start = if k == 0 { 0 } else { self.flushes[k - 1] + 1 };
        let end = self.flushes.get(k).copied().unwrap_or(self.entries.len());
        start..end
    }
}

/// One replayed state: everything through flush `k`, then `picks` from the window after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Flushes applied (0: none; the base image plus picks).
    pub k: usize,
    /// Window writes applied after them, in log order, each with the 512-byte sectors kept
    /// (`None`: all of it).
    pub picks: Vec<(usize, Option<Vec<u64>>)>,
    /// How the picks were chosen, for the figures and the failure report.
    pub how: &'static str,
}

impl State {
    /// A random crash state after flush `k`: `mode` chooses a prefix of the window, a prefix
    /// whose last write is torn, any subset, or any subset with every write torn.
    pub fn random(log: &Log, k: usize, rng: &mut Rng) -> State {
        let writes: Vec<usize> = log
            .window(k)
            .filter(|&i| log.entries[i].is_write())
            .collect();
        let n = writes.len() as u64;
        let torn = |i: usize, rng: &mut Rng| -> Option<Vec<u64>> {
            let e = &log.entries[i];
            let sectors = e.bytes / 512;
            if sectors <= 1 {
                return None;
            }
            // Either a prefix (in-order transfer) or any subset of the sectors.
            let mut kept: Vec<u64> = if rng.below(2) == 0 {
                (0..rng.below(sectors)).collect()
            } else {
                (0..sectors).filter(|_| rng.below(2) == 0).collect()
            };
            // ext4's superblock (disk bytes 1024..2048, two sectors) persists whole or not at
            // all: its checksum covers both halves, a torn one leaves a file system no tool
            // opens (e2fsck stops at the checksum), and a disk with 4 KiB physical sectors
            // writes it atomically. The one place this model is kinder than any-512-bytes.
            let sb = SUPERBLOCK.start.saturating_sub(e.disk_offset) / 512;
            if e.disk_offset <= SUPERBLOCK.start && e.disk_offset + e.bytes >= SUPERBLOCK.end {
                let whole = kept.contains(&sb);
                kept.retain(|&s| s != sb && s != sb + 1);
                if whole {
                    kept.extend([sb, sb + 1]);
                    kept.sort_unstable();
                }
            }
            Some(kept)
        };
        let (how, picks) = match rng.below(4) {
            0 => {
                let m = rng.range(0, n) as usize;
                ("prefix", writes[..m].iter().map(|&i| (i, None)).collect())
            }
            1 => {
                let m = rng.range(1, n.max(1)) as usize;
                let mut p: Vec<_> = writes[..m.min(writes.len())]
                    .iter()
                    .map(|&i| (i, None))
                    .collect();
                if let Some(last) = p.last_mut() {
                    last.1 = torn(last.0, rng);
                }
                ("prefix, last torn", p)
            }
            2 => (
                "subset",
                writes
                    .iter()
                    .filter(|_| rng.below(2) == 0)
                    .map(|&i| (i, None))
                    .collect(),
            ),
            _ => {
                let mut p = Vec::new();
                for &i in &writes {
                    if rng.below(2) == 0 {
                        p.push((i, torn(i, rng)));
                    }
                }
                ("subset, torn", p)
            }
        };
        State { k, picks, how }
    }
}

/// Applies entry `e` of the log to the image, keeping only `sectors` (512-byte units) if given.
pub fn apply(
    log_file: &File,
    img: &File,
    e: &Entry,
    sectors: Option<&[u64]>,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    if !e.is_write() {
        return Ok(());
    }
    buf.resize(e.bytes as usize, 0);
    if e.flags & DISCARD != 0 {
        // Discarded blocks read back as anything; zeros is what the replay tools write.
        buf.fill(0);
    } else {
        log_file.read_exact_at(buf, e.data_at)?;
    }
    match sectors {
        None => img.write_all_at(buf, e.disk_offset),
        Some(list) => {
            for &s in list {
                let at = (s * 512) as usize;
                img.write_all_at(&buf[at..at + 512], e.disk_offset + at as u64)?;
            }
            Ok(())
        }
    }
}

/// Applies entries `range` in full.
pub fn apply_range(
    log_file: &File,
    img: &File,
    log: &Log,
    range: std::ops::Range<usize>,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    for e in &log.entries[range] {
        apply(log_file, img, e, None, buf)?;
    }
    Ok(())
}

/// Builds `state` in `out`: a copy of `at_k` (the base with everything through flush `k`
/// applied), then the picks.
pub fn build_state(
    log_file: &File,
    log: &Log,
    at_k: &Path,
    state: &State,
    out: &Path,
) -> io::Result<()> {
    std::fs::copy(at_k, out)?;
    let img = std::fs::OpenOptions::new().write(true).open(out)?;
    let mut buf = Vec::new();
    for (i, sectors) in &state.picks {
        apply(
            log_file,
            &img,
            &log.entries[*i],
            sectors.as_deref(),
            &mut buf,
        )?;
    }
    Ok(())
}
