//! Memory measurement for `replay_memory`: a counting wrapper around the system allocator (the
//! bench binary's `#[global_allocator]`) and the kernel's peak-RSS counter.
//!
//! Counting is off except between [`start`] and [`stop`], so the other cases pay one relaxed
//! load per allocation. While on, `CURRENT` is the net change of live heap bytes since
//! [`start`] (it may go negative: frees of older blocks) and `PEAK` its maximum: the heap
//! high-water mark of the measured call, above what was live before it.
#![expect(
    unsafe_code,
    reason = "a global allocator implements the unsafe GlobalAlloc trait by calling System"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

static ON: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    if ON.load(Relaxed) {
        let now = CURRENT.fetch_add(delta, Relaxed) + delta;
        PEAK.fetch_max(now, Relaxed);
    }
}

// SAFETY (all methods): every call is forwarded unchanged to `System`, which upholds the
// GlobalAlloc contract; the wrapper only counts sizes and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees (layout of non-zero size).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by this allocator (hence by System) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees about `ptr`, `layout`, `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Starts counting from zero.
pub fn start() {
    CURRENT.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    ON.store(true, Relaxed);
}

/// Stops counting; returns the peak net heap growth since [`start`], in bytes.
pub fn stop() -> u64 {
    ON.store(false, Relaxed);
    PEAK.load(Relaxed).max(0) as u64
}

/// Returns the allocator's free memory to the kernel, so that a later peak RSS counts pages
/// the measured call needed, not pages an earlier case left resident and free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory of glibc's arenas; callable at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// Trims the heap, then resets the kernel's peak RSS (`VmHWM`) to the current RSS; returns the
/// current RSS in bytes. `None` where `/proc/self/clear_refs` is not writable.
pub fn reset_peak_rss() -> Option<u64> {
    trim();
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_bytes("VmRSS:")
}

/// The current anonymous and file-backed RSS (`RssAnon`, `RssFile`: mapped files count in
/// RSS too, though the kernel can drop those clean pages at any time), in bytes.
pub fn rss_split() -> Option<(u64, u64)> {
    Some((status_bytes("RssAnon:")?, status_bytes("RssFile:")?))
}

/// The peak RSS (`VmHWM`) in bytes.
pub fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
