//! A counting wrapper around the system allocator, for the tests that prove hostile bytes cost
//! no memory (`tests/bad_input.rs`, `tests/hostile.rs`, `journal/tests/limits.rs`, each
//! including this file with `#[path]`; it installs the test binary's global allocator).
//!
//! Two measures: [`peak_of`] counts the calling thread only, so tests running in parallel do
//! not disturb it; [`start`]/[`stop`] count every thread (for work done on helper threads),
//! and the caller keeps other tests out (e.g. a lock).
#![allow(
    unsafe_code,
    dead_code,
    reason = "a global allocator implements the unsafe GlobalAlloc trait; each test binary uses \
              one of the two measures"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

thread_local! {
    /// Counting on in this thread.
    static ON: Cell<bool> = const { Cell::new(false) };
    /// Net live heap bytes allocated (minus freed) by this thread since `peak_of` began.
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    /// The maximum of `CURRENT`.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

static ALL_ON: AtomicBool = AtomicBool::new(false);
static ALL_CURRENT: AtomicIsize = AtomicIsize::new(0);
static ALL_PEAK: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    if ALL_ON.load(Relaxed) {
        let now = ALL_CURRENT.fetch_add(delta, Relaxed) + delta;
        ALL_PEAK.fetch_max(now, Relaxed);
    }
    // `try_with`: never panic inside the allocator, even while the thread is torn down.
    if ON.try_with(Cell::get).unwrap_or(false)
        && let Ok(now) = CURRENT.try_with(|c| {
            c.set(c.get() + delta);
            c.get()
        })
    {
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    }
}

// SAFETY (all methods): every call is forwarded unchanged to `System`, which upholds the
// GlobalAlloc contract; the wrapper only counts sizes and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
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

/// Runs `f` and returns its result and the peak net heap growth of this thread during it.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, u64) {
    CURRENT.with(|c| c.set(0));
    PEAK.with(|p| p.set(0));
    ON.with(|o| o.set(true));
    let out = f();
    ON.with(|o| o.set(false));
    (out, PEAK.with(Cell::get).max(0) as u64)
}

/// Starts counting every thread's allocations from zero.
pub fn start() {
    ALL_CURRENT.store(0, Relaxed);
    ALL_PEAK.store(0, Relaxed);
    ALL_ON.store(true, Relaxed);
}

/// Stops counting; returns the peak net heap growth of all threads since [`start`].
pub fn stop() -> u64 {
    ALL_ON.store(false, Relaxed);
    ALL_PEAK.load(Relaxed).max(0) as u64
}
