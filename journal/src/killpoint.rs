//! Named kill points: a test hook that makes the process kill itself (SIGKILL) at a chosen step,
//! so crash tests hit each step of a protocol deterministically instead of by timing.
//!
//! Set `TURNWAL_KILL_AT=<name>` (or `<name>@<n>` for the n-th time the step is reached, from 1)
//! in the environment of a process using turnwal. Unset, every kill point is one relaxed atomic
//! load after the first call. The names are listed in [`POINTS`] and in the README.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the kill point.
pub const ENV: &str = "TURNWAL_KILL_AT";

/// Every kill point: the steps of an append, a group commit, a rotation and a segment creation;
/// those of a writer's open cutting a torn tail; the steps of a compaction in the order it
/// reaches them; then those of a writer's open finishing a compaction that crashed after
/// installing its snapshot.
pub const POINTS: &[&str] = &[
    // `Writer::write_with`: the frame is in the kernel, the append has not returned.
    "append:written",
    // `Commit::sync_through`: the group-commit leader is about to fdatasync.
    "commit:before-sync",
    // `Commit::sync_through`: the fdatasync returned Ok, the durable watermark not yet advanced.
    "commit:after-sync",
    // `Writer::rotate`: the old segment is trimmed and synced, the next not yet created.
    "rotate:sealed",
    // `Writer::rotate`: the next segment exists, a frame that caused the rotation not written.
    "rotate:created",
    // `segment::create_segment`: the tmp file is fdatasynced, not yet renamed into place.
    "segment:tmp-synced",
    // `recover::apply_cut`: the quarantine file and directory are synced, nothing truncated.
    "recover:quarantined",
    // `recover::apply_cut`: the segment is truncated at the cut, not yet fdatasynced.
    "recover:truncated",
    "compact:rotated",
    "compact:tmp-written",
    "compact:tmp-synced",
    "compact:verified",
    "compact:renamed",
    "compact:dir-synced",
    "compact:deleted-one",
    "compact:done",
    "open:deleted-one",
    "open:done",
];

struct Target {
    name: String,
    nth: u64,
    hits: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static T: OnceLock<Option<Target>> = OnceLock::new();
    T.get_or_init(|| {
        let v = std::env::var(ENV).ok()?;
        let (name, nth) = match v.split_once('@') {
            Some((n, k)) => (n.to_string(), k.parse().ok().filter(|&k| k >= 1)?),
            None => (v, 1),
        };
        Some(Target {
            name,
            nth,
            hits: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Kills the process with SIGKILL if `name` is the configured kill point (and this is the
/// configured hit). Nothing is flushed or unwound: exactly what `kill -9` leaves behind.
pub fn kill_point(name: &str) {
    if let Some(t) = target()
        && t.name == name
        && t.hits.fetch_add(1, Ordering::Relaxed) + 1 == t.nth
    {
        sigkill_self();
    }
}

#[expect(unsafe_code, reason = "one libc call: kill(getpid(), SIGKILL)")]
fn sigkill_self() {
    // SAFETY: getpid and kill have no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}
